/* sink: durable JSON lines and syslog for verdict records (see sink.h). */
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "authres.h"
#include "json.h"
#include "tlsrpt.h"

#define SET_SLOTS (SINK_DEDUPE_KEYS * 2u) /* open addressing, half full at most */

struct keyset {
	uint64_t *slot; /* 0 = empty (a key of 0 is stored as 1) */
	unsigned n;
};

struct sink {
	int fd;
	bool dirty;
	int log_fd; /* unbound datagram socket for syslog, -1 when off */
	struct sockaddr_un log_addr;
	socklen_t log_addrlen;
	struct sink_config cfg;
	char *path;
	char *ident;
	char *authserv_id;
	struct keyset gen[2]; /* gen[0] current, gen[1] previous */
	struct sink_stats st;
};

static uint64_t
key_of(uint64_t id, uint64_t ts)
{
	uint64_t k = id * 0x9E3779B97F4A7C15ull ^ (ts + 0x632BE59BD9B4E019ull);
	k ^= k >> 31;
	return k ? k : 1;
}

static bool
set_has(const struct keyset *s, uint64_t k)
{
	for (uint32_t i = (uint32_t)k % SET_SLOTS;; i = (i + 1) % SET_SLOTS) {
		if (s->slot[i] == 0)
			return false;
		if (s->slot[i] == k)
			return true;
	}
}

static void
remember(struct sink *s, uint64_t k)
{
	if (set_has(&s->gen[0], k))
		return;
	if (s->gen[0].n >= SINK_DEDUPE_KEYS) { /* the older generation goes */
		uint64_t *old = s->gen[1].slot;
		s->gen[1] = s->gen[0];
		memset(old, 0, SET_SLOTS * sizeof(uint64_t));
		s->gen[0].slot = old;
		s->gen[0].n = 0;
	}
	uint32_t i = (uint32_t)k % SET_SLOTS;
	while (s->gen[0].slot[i])
		i = (i + 1) % SET_SLOTS;
	s->gen[0].slot[i] = k;
	s->gen[0].n++;
}

static bool
seen(const struct sink *s, uint64_t k)
{
	return set_has(&s->gen[0], k) || set_has(&s->gen[1], k);
}

static uint64_t
field_u64(const char *line, const char *name)
{
	const char *p = strstr(line, name);
	return p ? strtoull(p + strlen(name), NULL, 10) : 0;
}

/* Remember the keys in the last dedupe_bytes of the file. */
static void
load_tail(struct sink *s)
{
	struct stat stt;
	if (s->fd < 0 || s->cfg.dedupe_bytes == 0 || fstat(s->fd, &stt) != 0 || stt.st_size == 0)
		return;
	off_t start = stt.st_size > (off_t)s->cfg.dedupe_bytes ? stt.st_size - s->cfg.dedupe_bytes : 0;
	size_t len = (size_t)(stt.st_size - start);
	char *buf = malloc(len + 1);
	if (!buf)
		return;
	ssize_t got = pread(s->fd, buf, len, start);
	if (got > 0) {
		buf[got] = '\0';
		char *line = buf;
		if (start > 0) { /* the first line is cut: skip it */
			char *nl = strchr(buf, '\n');
			line = nl ? nl + 1 : buf + got;
		}
		while (*line) {
			char *nl = strchr(line, '\n');
			if (!nl) /* a torn last line (crash mid-write) has no newline: not counted */
				break;
			*nl = '\0';
			if (strstr(line, "\"record_id\":"))
				remember(s, key_of(field_u64(line, "\"record_id\":"),
						   field_u64(line, "\"record_ts_usec\":")));
			line = nl + 1;
		}
	}
	free(buf);
}

static int
open_file(struct sink *s, char *why, size_t whylen)
{
	s->fd = -1;
	if (!s->path || !*s->path)
		return 0;
	s->fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (s->fd < 0) {
		snprintf(why, whylen, "%s: %s", s->path, strerror(errno));
		return -1;
	}
	/* a torn line left by a crash mid-write is ended, so the next event
	 * starts a line of its own; the ids already there are remembered */
	struct stat st;
	char last;
	int rfd = open(s->path, O_RDONLY | O_CLOEXEC);
	if (rfd >= 0) {
		if (fstat(rfd, &st) == 0 && st.st_size > 0 &&
		    pread(rfd, &last, 1, st.st_size - 1) == 1 && last != '\n' &&
		    write(s->fd, "\n", 1) != 1) {
			snprintf(why, whylen, "%s: %s", s->path, strerror(errno));
			close(rfd);
			return -1;
		}
		int wfd = s->fd;
		s->fd = rfd; /* load_tail reads through s->fd */
		load_tail(s);
		s->fd = wfd;
		close(rfd);
	}
	return 0;
}

static int
configure(struct sink *s, const struct sink_config *cfg)
{
	free(s->path);
	free(s->ident);
	free(s->authserv_id);
	s->cfg = *cfg;
	s->path = strdup(cfg->json_file ? cfg->json_file : "");
	s->ident = strdup(cfg->syslog_ident ? cfg->syslog_ident : "wireseal-cp");
	s->authserv_id = strdup(cfg->authserv_id ? cfg->authserv_id : "localhost");
	if (!s->path || !s->ident || !s->authserv_id)
		return -1;
	if (s->log_fd >= 0) {
		close(s->log_fd);
		s->log_fd = -1;
	}
	if (cfg->syslog) {
		const char *p = cfg->syslog_socket && *cfg->syslog_socket ? cfg->syslog_socket : "/dev/log";
		size_t n = strlen(p);
		if (n >= sizeof(s->log_addr.sun_path))
			return -1;
		memset(&s->log_addr, 0, sizeof(s->log_addr));
		s->log_addr.sun_family = AF_UNIX;
		memcpy(s->log_addr.sun_path, p, n);
		s->log_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
		s->log_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (s->log_fd < 0)
			return -1;
	}
	return 0;
}

struct sink *
sink_open(const struct sink_config *cfg, char *why, size_t whylen)
{
	struct sink *s = calloc(1, sizeof(*s));
	if (!s)
		goto oom;
	s->fd = -1;
	s->log_fd = -1;
	for (int g = 0; g < 2; g++)
		if (!(s->gen[g].slot = calloc(SET_SLOTS, sizeof(uint64_t))))
			goto oom;
	if (configure(s, cfg) != 0)
		goto oom;
	if (open_file(s, why, whylen) != 0)
		goto fail;
	return s;
oom:
	snprintf(why, whylen, "out of memory");
fail:
	sink_close(s);
	return NULL;
}

int
sink_reopen(struct sink *s, const struct sink_config *cfg, char *why, size_t whylen)
{
	sink_sync(s);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (configure(s, cfg) != 0) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	s->st.reopens++;
	return open_file(s, why, whylen);
}

void
sink_close(struct sink *s)
{
	if (!s)
		return;
	sink_sync(s);
	if (s->fd >= 0)
		close(s->fd);
	if (s->log_fd >= 0)
		close(s->log_fd);
	free(s->gen[0].slot);
	free(s->gen[1].slot);
	free(s->path);
	free(s->ident);
	free(s->authserv_id);
	free(s);
}

int
sink_chown(struct sink *s, unsigned uid, unsigned gid)
{
	return s->fd < 0 ? 0 : fchown(s->fd, uid, gid);
}

static void
timestamp(uint64_t usec, char *out, size_t cap)
{
	time_t t = (time_t)(usec / 1000000u);
	struct tm tm;
	gmtime_r(&t, &tm);
	char base[32];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, cap, "%s.%06u+0000", base, (unsigned)(usec % 1000000u));
}

static void
jstr(struct json *j, const char *key, struct cpm_str s)
{
	json_key(j, key);
	json_strn(j, s.p ? s.p : "", s.len);
}

static void
common(struct json *j, const char *type, uint64_t id, uint64_t flow, uint64_t ts,
       const struct cpm_endpoint *c, const struct cpm_endpoint *sv)
{
	char tsb[48];
	timestamp(ts, tsb, sizeof(tsb));
	json_key(j, "timestamp");
	json_str(j, tsb);
	json_key(j, "event_type");
	json_str(j, type);
	json_key(j, "flow_id");
	json_int(j, (long long)flow);
	json_key(j, "record_id");
	json_int(j, (long long)id);
	json_key(j, "record_ts_usec");
	json_int(j, (long long)ts);
	jstr(j, "src_ip", c->ip);
	json_key(j, "src_port");
	json_int(j, c->port);
	jstr(j, "dest_ip", sv->ip);
	json_key(j, "dest_port");
	json_int(j, sv->port);
}

/* Writes the memstream's line to the file; 0 or -1. */
static int
emit(struct sink *s, char *line, size_t len)
{
	if (len > SINK_LINE_MAX) {
		s->st.errors++;
		return -1;
	}
	if (s->fd < 0)
		return 0;
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(s->fd, line + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			s->st.errors++;
			return -1;
		}
		off += (size_t)n;
	}
	s->dirty = true;
	return 0;
}

static void
spf_json(struct json *j, const struct pol_verdict *v)
{
	json_key(j, "spf");
	json_obj(j);
	json_key(j, "result");
	json_str(j, spf_result_name(v->spf.result));
	json_key(j, "domain");
	json_str(j, v->spf.domain);
	if (v->spf.mechanism[0]) {
		json_key(j, "mechanism");
		json_str(j, v->spf.mechanism);
	}
	json_key(j, "reason");
	json_str(j, v->spf.reason);
	json_obj_end(j);
}

static void
dmarc_json(struct json *j, const struct pol_verdict *v)
{
	json_key(j, "dmarc");
	json_obj(j);
	json_key(j, "result");
	json_str(j, v->dmarc_evaluated ? dmarc_res_name(v->dmarc.result) : "none");
	if (v->dmarc_evaluated) {
		const struct dmarc_result *d = &v->dmarc;
		json_key(j, "from_domain");
		json_str(j, d->from_domain);
		json_key(j, "record_domain");
		json_str(j, d->record_domain);
		json_key(j, "org_domain");
		json_str(j, d->org_domain);
		json_key(j, "policy");
		json_str(j, dmarc_policy_name(d->policy));
		json_key(j, "spf_aligned");
		json_bool(j, d->spf_aligned);
		json_key(j, "dkim_aligned");
		json_bool(j, d->dkim_aligned);
		json_key(j, "reason");
		json_str(j, d->reason);
	} else {
		json_key(j, "reason");
		json_str(j, v->override ? "skipped by a domain override" :
			    v->dmarc_error[0] ? v->dmarc_error : "not evaluated");
	}
	json_key(j, "disposition");
	json_str(j, v->disposition);
	if (v->override) {
		json_key(j, "override");
		json_str(j, v->override);
	}
	if (v->arc.applied) {
		json_key(j, "arc_override");
		json_obj(j);
		json_key(j, "sealer");
		json_str(j, v->arc.sealer);
		json_key(j, "instance");
		json_int(j, v->arc.instance);
		json_key(j, "reason");
		json_str(j, v->arc.reason);
		json_obj_end(j);
	}
	json_obj_end(j);
}

static char *
dup_cs(struct cpm_str s)
{
	char *p = malloc(s.len + 1);
	if (p)
		cpm_str_copy(s, p, s.len + 1);
	return p;
}

char *
sink_authres(const struct sink *s, const struct cpm_message *m, const struct pol_verdict *v)
{
	struct authres ar;
	authres_init(&ar, s->authserv_id);
	for (uint32_t i = 0; i < m->ndkim; i++) {
		char *d = dup_cs(m->dkim[i].d), *sel = dup_cs(m->dkim[i].s), *a = dup_cs(m->dkim[i].a);
		char *res = dup_cs(m->dkim[i].result), *why = dup_cs(m->dkim[i].reason);
		if (d && sel && a && res && why) {
			struct authres_prop props[] = {
				{"header", "d", *d ? d : NULL},
				{"header", "s", *sel ? sel : NULL},
				{"header", "a", *a ? a : NULL},
			};
			authres_add(&ar, "dkim", res, *why && strcmp(res, "pass") ? why : NULL, props, 3);
		}
		free(d), free(sel), free(a), free(res), free(why);
	}
	if (m->ndkim == 0)
		authres_add(&ar, "dkim", "none", NULL, NULL, 0);
	struct authres_prop sp[] = {{"smtp", "mailfrom", v->spf.domain[0] ? v->spf.domain : NULL}};
	authres_add(&ar, "spf", spf_result_name(v->spf.result), NULL, sp, 1);
	struct authres_prop dp[] = {{"header", "from",
				     v->dmarc_evaluated && v->dmarc.from_domain[0] ? v->dmarc.from_domain : NULL}};
	authres_add(&ar, "dmarc", v->dmarc_evaluated ? dmarc_res_name(v->dmarc.result) : "none",
		    v->arc.applied ? "overridden by a trusted ARC sealer" : NULL, dp, 1);
	static const char *const chain[] = {"none", "pass", "fail"};
	authres_add(&ar, "arc", chain[m->arc_chain <= CPM_ARC_FAIL ? m->arc_chain : 0], NULL, NULL, 0);
	const char *val = authres_value(&ar);
	char *out = val ? strdup(val) : NULL;
	authres_free(&ar);
	return out;
}

/* One syslog datagram (RFC 3164 form, facility mail, severity info), sent
 * without blocking: a missing or full syslog daemon costs a counted error,
 * never a stall (the JSON file is the durable sink). */
static void __attribute__((format(printf, 2, 3)))
slog(struct sink *s, const char *fmt, ...)
{
	char msg[2048];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	char ts[32];
	strftime(ts, sizeof(ts), "%b %e %H:%M:%S", &tm);
	int n = snprintf(msg, sizeof(msg), "<%d>%s %s[%d]: ", 2 * 8 + 6, ts, s->ident, (int)getpid());
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len >= sizeof(msg))
		len = sizeof(msg) - 1; /* long lines are cut: syslog is the convenience copy */
	if (sendto(s->log_fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&s->log_addr,
		   s->log_addrlen) < 0)
		s->st.syslog_errors++;
	else
		s->st.syslog_sent++;
}

int
sink_message(struct sink *s, const struct cpm_message *m, const struct pol_verdict *v)
{
	uint64_t k = key_of(m->record_id, m->ts_usec);
	if (seen(s, k)) {
		s->st.duplicates++;
		return 1;
	}
	char *line = NULL, *ar = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&line, &len);
	if (!f) {
		s->st.errors++;
		return -1;
	}
	struct json j;
	json_begin(&j, f);
	common(&j, "message", m->record_id, m->flow_id, m->ts_usec, &m->client, &m->server);
	json_key(&j, "smtp");
	json_obj(&j);
	jstr(&j, "helo", m->helo);
	jstr(&j, "mail_from", m->mail_from);
	json_key(&j, "rcpt_to");
	json_arr(&j);
	for (uint32_t i = 0; i < m->nrcpts; i++)
		json_strn(&j, m->rcpts[i].p ? m->rcpts[i].p : "", m->rcpts[i].len);
	json_arr_end(&j);
	json_key(&j, "starttls");
	json_bool(&j, m->starttls);
	json_key(&j, "transaction");
	json_int(&j, m->transaction);
	json_obj_end(&j);
	json_key(&j, "from");
	json_arr(&j);
	for (uint32_t i = 0; i < m->nfrom; i++)
		json_strn(&j, m->from[i].p ? m->from[i].p : "", m->from[i].len);
	json_arr_end(&j);
	/* the verdict: the object `wireseal verify --json` prints, completed */
	json_key(&j, "verdict");
	json_obj(&j);
	json_key(&j, "dkim");
	json_arr(&j);
	for (uint32_t i = 0; i < m->ndkim; i++) {
		json_obj(&j);
		jstr(&j, "d", m->dkim[i].d);
		jstr(&j, "s", m->dkim[i].s);
		jstr(&j, "a", m->dkim[i].a);
		jstr(&j, "result", m->dkim[i].result);
		jstr(&j, "reason", m->dkim[i].reason);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	spf_json(&j, v);
	dmarc_json(&j, v);
	json_key(&j, "arc");
	json_obj(&j);
	json_key(&j, "chain");
	static const char *const chain[] = {"none", "pass", "fail"};
	json_str(&j, chain[m->arc_chain <= CPM_ARC_FAIL ? m->arc_chain : 0]);
	json_key(&j, "aar");
	json_arr(&j);
	for (uint32_t i = 0; i < m->narc; i++)
		json_strn(&j, m->arc[i].aar.p ? m->arc[i].aar.p : "", m->arc[i].aar.len);
	json_arr_end(&j);
	json_obj_end(&j);
	ar = sink_authres(s, m, v);
	json_key(&j, "authres");
	json_str(&j, ar);
	json_obj_end(&j);
	json_end(&j);
	int rc = fclose(f) == 0 ? emit(s, line, len) : -1;
	if (rc == 0) {
		remember(s, k);
		s->st.written++;
		if (s->log_fd >= 0)
			slog(s, "message record_id=%llu flow_id=%llu %s disposition=%s",
			       (unsigned long long)m->record_id, (unsigned long long)m->flow_id,
			       ar ? ar : "", v->disposition);
	}
	free(line);
	free(ar);
	return rc;
}

static const char *
cert_name(enum sts_cert c)
{
	static const char *const n[] = {"valid", "host-mismatch", "expired", "not-trusted",
					"other-failure", "not-assessable"};
	return (unsigned)c <= STS_CERT_NOT_ASSESSABLE ? n[c] : "?";
}

static void
jtime(struct json *j, const char *key, int64_t t)
{
	char b[21];
	tlsrpt_datetime_format(t, b);
	json_key(j, key);
	json_str(j, b);
}

static void
sts_json(struct json *j, const struct cpm_session *m, const struct cpsts_eval *e)
{
	json_obj(j);
	json_key(j, "result");
	json_str(j, sts_result_name(e->v.result));
	json_key(j, "reason");
	json_str(j, e->v.reason != STS_RT_NONE ? sts_result_type_name(e->v.reason) : NULL);
	json_key(j, "reason_code");
	json_str(j, e->v.reason_code);
	json_key(j, "enforce");
	json_bool(j, e->v.enforce);
	json_key(j, "policy_domain");
	json_str(j, e->domain[0] ? e->domain : NULL);
	json_key(j, "policy_domain_source");
	json_str(j, cpsts_source_name(e->source));
	json_key(j, "policy");
	json_str(j, sts_resolve_status_name(e->res));
	json_key(j, "mode");
	json_str(j, e->res == STS_RES_POLICY ? sts_mode_name(e->policy.mode) : NULL);
	json_key(j, "policy_id");
	json_str(j, e->policy_id[0] ? e->policy_id : NULL);
	json_key(j, "from_cache");
	json_bool(j, e->from_cache);
	json_key(j, "fetch_error");
	json_str(j, e->res == STS_RES_FAILED && e->fetch_report != STS_RT_NONE
			    ? sts_result_type_name(e->fetch_report) : NULL);
	json_key(j, "mx_host");
	json_str(j, e->mx_host);
	json_key(j, "mx_source");
	json_str(j, cpsts_mx_source_name(e->mx_source));
	json_key(j, "mx_matched");
	if (e->res == STS_RES_POLICY)
		json_bool(j, e->mx_matched);
	else
		json_null(j);
	json_key(j, "cert");
	json_str(j, cert_name(e->cert));
	json_key(j, "anomalies");
	json_arr(j);
	for (uint32_t i = 0; i < m->nanomalies; i++)
		json_strn(j, m->anomalies[i].name.p ? m->anomalies[i].name.p : "", m->anomalies[i].name.len);
	json_arr_end(j);
	json_key(j, "why");
	json_str(j, e->why);
	json_obj_end(j);
}

int
sink_session(struct sink *s, const struct cpm_session *m, const struct cpsts_result *sts)
{
	uint64_t k = key_of(m->record_id, m->ts_usec);
	if (seen(s, k)) {
		s->st.duplicates++;
		return 1;
	}
	char *line = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&line, &len);
	if (!f) {
		s->st.errors++;
		return -1;
	}
	struct json j;
	json_begin(&j, f);
	common(&j, "session", m->record_id, m->flow_id, m->ts_usec, &m->client, &m->server);
	json_key(&j, "smtp");
	json_obj(&j);
	jstr(&j, "helo", m->helo);
	json_key(&j, "starttls_offered");
	json_bool(&j, m->starttls_offered);
	json_key(&j, "starttls_used");
	json_bool(&j, m->starttls_used);
	json_key(&j, "transactions");
	json_int(&j, m->transactions);
	json_key(&j, "rcpt_domains");
	json_arr(&j);
	for (uint32_t i = 0; i < m->nrcpt_domains; i++)
		json_strn(&j, m->rcpt_domains[i].p ? m->rcpt_domains[i].p : "", m->rcpt_domains[i].len);
	json_arr_end(&j);
	jstr(&j, "end_reason", m->end_reason);
	/* the reply to each command in order, [command, code], as the
	 * dataplane's session line has them */
	json_key(&j, "replies");
	json_arr(&j);
	for (uint32_t i = 0; i < m->nreplies; i++) {
		json_arr(&j);
		json_strn(&j, m->replies[i].verb.p ? m->replies[i].verb.p : "", m->replies[i].verb.len);
		json_int(&j, m->replies[i].code);
		json_arr_end(&j);
	}
	json_arr_end(&j);
	if (m->replies_over) {
		json_key(&j, "replies_over");
		json_int(&j, (long long)m->replies_over);
	}
	json_obj_end(&j);
	const struct cpm_tls *t = &m->tls;
	json_key(&j, "tls");
	json_obj(&j);
	json_key(&j, "client_hello");
	json_bool(&j, t->client_hello);
	json_key(&j, "server_hello");
	json_bool(&j, t->server_hello);
	json_key(&j, "version");
	json_str(&j, sts_tls_version_name(t->version));
	json_key(&j, "version_offered_max");
	json_str(&j, sts_tls_version_name(t->version_offered_max));
	json_key(&j, "resumed");
	json_bool(&j, t->resumed);
	/* null without a server_name, as the dataplane's session line says it */
	if (t->sni.len) {
		jstr(&j, "sni", t->sni);
	} else {
		json_key(&j, "sni");
		json_null(&j);
	}
	json_key(&j, "cert_seen");
	json_bool(&j, t->cert_seen);
	if (t->cert_seen) {
		json_key(&j, "cert_names");
		json_arr(&j);
		for (uint32_t i = 0; i < t->ncert_names; i++)
			json_strn(&j, t->cert_names[i].p ? t->cert_names[i].p : "", t->cert_names[i].len);
		json_arr_end(&j);
		jtime(&j, "not_before", t->not_before);
		jtime(&j, "not_after", t->not_after);
		jstr(&j, "issuer", t->issuer);
		json_key(&j, "chain_trusted");
		json_bool(&j, t->chain_trusted);
	}
	json_obj_end(&j);
	json_key(&j, "anomalies");
	json_arr(&j);
	for (uint32_t i = 0; i < m->nanomalies; i++) {
		json_obj(&j);
		jstr(&j, "name", m->anomalies[i].name);
		json_key(&j, "dir");
		json_str(&j, m->anomalies[i].dir == CPM_DIR_S2C ? "s2c" : "c2s");
		json_key(&j, "offset");
		json_int(&j, (long long)m->anomalies[i].offset);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	if (sts && sts->n) {
		json_key(&j, "sts");
		sts_json(&j, m, &sts->ev[0]);
		if (sts->n > 1) {
			json_key(&j, "sts_additional");
			json_arr(&j);
			for (unsigned i = 1; i < sts->n; i++)
				sts_json(&j, m, &sts->ev[i]);
			json_arr_end(&j);
		}
	}
	json_end(&j);
	int rc = fclose(f) == 0 ? emit(s, line, len) : -1;
	if (rc == 0) {
		remember(s, k);
		s->st.written++;
		if (s->log_fd >= 0)
			slog(s, "session record_id=%llu flow_id=%llu transactions=%u sts=%s%s%s",
			       (unsigned long long)m->record_id, (unsigned long long)m->flow_id,
			       m->transactions, sts && sts->n ? sts_result_name(sts->ev[0].v.result) : "-",
			       sts && sts->n && sts->ev[0].domain[0] ? " policy_domain=" : "",
			       sts && sts->n ? sts->ev[0].domain : "");
	}
	free(line);
	return rc;
}

int
sink_sync(struct sink *s)
{
	if (!s->dirty || s->fd < 0)
		return 0;
	if (fdatasync(s->fd) != 0) {
		s->st.errors++;
		return -1;
	}
	s->dirty = false;
	s->st.syncs++;
	return 0;
}

const struct sink_stats *
sink_stats(const struct sink *s)
{
	return &s->st;
}
