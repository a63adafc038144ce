/*
 * wireseal-cp: the control-plane daemon.
 *
 *   wireseal-cp -c FILE [--check-config]     run / only check the configuration
 *   wireseal-cp --directives                 list every configuration directive
 *
 * One libevent loop drives everything: the cpm listener and its dataplane
 * connections (KEY_REQUEST -> DNS -> KEY_ANSWER; MESSAGE_RECORD -> policy ->
 * sinks -> ACK; SESSION_RECORD -> MTA-STS verdict -> TLS-RPT counts -> sinks
 * -> ACK; STS_QUERY -> policy -> STS_ANSWER; STATS -> metrics), the DNS
 * resolver's descriptor, the metrics endpoint, the control socket and the
 * signals (SIGHUP: reload and reopen the sinks; SIGUSR1: write the open
 * day's TLS-RPT reports; SIGTERM/SIGINT: stop).
 *
 * MTA-STS work (policy TXT, MX and address lookups, the HTTPS fetch, the
 * SQLite cache, TLS-RPT POSTs) blocks, so it runs on sts.workers threads
 * (cpwork), each with its own resolver and fetcher; the loop hands a copy
 * of the record over and gets the verdict back through an eventfd. Session
 * records count against policy.max_inflight like message records, so a slow
 * policy host slows the dataplane's socket (backpressure), never the loop.
 *
 * Acknowledgement: records complete out of order (policy waits on DNS); a
 * connection keeps its records in arrival order and ACKs the longest prefix
 * that is complete, after one fdatasync of the sink covering them (group
 * commit: one sync per loop pass, not per record).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <libpsl.h>

#include "cpconf.h"
#include "cpm.h"
#include "dkim.h"
#include "dns.h"
#include "dnscache.h"
#include "metrics.h"
#include "cppolicy.h"
#include "cprpt.h"
#include "cpsts.h"
#include "cpwork.h"
#include "sink.h"
#include "tlsrpt.h"
#include "ws-config.h"

#define CP_READ_BURST 64     /* datagrams read per readable event before yielding */
#define CTL_LINE_MAX 256     /* a control command line */
#define CP_MAX_DP_STATS 1024 /* distinct dataplane counter names kept */
#define CP_MAX_OUTQ (16u << 20) /* bytes queued to a dataplane that does not read: past it, close */

struct outbuf {
	struct outbuf *next;
	size_t len;
	uint8_t buf[];
};

struct rec {
	struct rec *next;
	uint64_t id;
	bool done;
};

struct cp;

struct conn {
	struct cp *cp;
	struct conn *next;
	int fd;
	bool hello_done, dead, paused;
	unsigned refs; /* key requests and policy jobs that will call back */
	struct event *ev_read, *ev_write;
	uint8_t *wbuf;
	struct cpm_writer w;
	struct outbuf *oq, **oq_tail;
	size_t oq_bytes;
	struct rec *recs, **recs_tail;
	uint64_t last_id, acked;
	bool ack_due;
};

struct dp_stat {
	char name[128];
	uint64_t value;
};

struct cp {
	struct event_base *base;
	const char *config_path;
	struct cpconf conf;
	struct ws_dns *dns;
	struct dnscache *dc; /* the DNS answers: key service and policy */
	psl_ctx_t *psl;           /* loaded from policy.psl_file (owned) */
	const psl_ctx_t *psl_use; /* psl, else libpsl's built-in list */
	struct pol_config pol;
	struct sink *sink;
	struct met_server *met;
	struct met_counters cnt;
	int cpm_fd, ctl_fd;
	struct event *ev_cpm, *ev_ctl, *ev_dns, *ev_tick, *ev_flush;
	struct event *ev_hup, *ev_term, *ev_int;
	struct conn *conns;
	unsigned nconns;
	unsigned parked, inflight;
	char hostname[256];
	time_t started;
	uint8_t *rbuf;
	uint64_t dkim_res[8], spf_res[8], dmarc_res[8], disp[4];
	struct dp_stat dp_stats[CP_MAX_DP_STATS];
	size_t ndp_stats;
	bool stopping;
	/* MTA-STS and TLS-RPT */
	struct cpw *workers; /* NULL when sts.enabled is false */
	struct event *ev_work, *ev_usr1;
	struct cprpt *rpt;   /* NULL without tlsrpt.spool_dir */
	struct cprpt_post_config post;
	char *post_ca;
	time_t last_session;
	uint64_t sts_res[4], sts_fail[STS_RT_COUNT], sts_busy, sts_queries, sts_errors;
	uint64_t rpt_delivered, rpt_failed, rpt_no_endpoint, rpt_retries;
	unsigned deliveries; /* POSTs queued or running */
	time_t next_retry;
	uint8_t *copybuf; /* CPM_MAX_DATAGRAM: a record re-encoded for a worker */
};

static void
logmsg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("wireseal-cp: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* sd_notify over $NOTIFY_SOCKET (systemd's datagram protocol; '@' = abstract). */
static void
notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	if (n >= sizeof(sun.sun_path))
		return;
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
		logmsg("notify: %s", strerror(errno));
	close(fd);
}

/* ---- configuration-derived state ---- */

/* cache.*: the DNS cache's one TTL policy (caps of 0: not kept). */
static struct dnscache_config
cache_config(const struct cpconf *c)
{
	return (struct dnscache_config){.max_entries = c->cache_max_entries,
					.max_ttl = c->cache_max_ttl,
					.neg_max_ttl = c->cache_negative_ttl};
}

static void
apply_policy_config(struct cp *cp)
{
	const struct cpconf *c = &cp->conf;
	cp->pol.authserv_id = c->authserv_id[0] ? c->authserv_id : cp->hostname;
	cp->pol.trusted_sealers = (const char *const *)c->trusted_arc_sealers.v;
	cp->pol.ntrusted = c->trusted_arc_sealers.n;
	cp->pol.override_domain = (const char *const *)c->domain_overrides.key;
	cp->pol.override_action = (const char *const *)c->domain_overrides.value;
	cp->pol.noverrides = c->domain_overrides.n;
	cp->pol.org_method = strcmp(c->org_domain, "psl") == 0 && cp->psl_use ? DMARC_ORG_PSL : DMARC_ORG_TREEWALK;
	cp->pol.psl = cp->psl_use;
	cp->pol.fixed_pct = c->fixed_pct < 100 ? (int)c->fixed_pct : -1;
}

static void
sink_config_of(const struct cp *cp, struct sink_config *sc)
{
	sc->json_file = cp->conf.json_file;
	sc->syslog = cp->conf.syslog;
	sc->syslog_ident = cp->conf.syslog_ident;
	sc->syslog_socket = cp->conf.syslog_socket;
	sc->dedupe_bytes = cp->conf.dedupe_bytes;
	sc->authserv_id = cp->pol.authserv_id;
}

/* Semantic checks past the types: 0, or -1 with a reason. */
static int
validate(const struct cpconf *c, char *why, size_t whylen)
{
	if (strcmp(c->org_domain, "treewalk") != 0 && strcmp(c->org_domain, "psl") != 0) {
		snprintf(why, whylen, "policy.org_domain: \"%s\" is neither treewalk nor psl", c->org_domain);
		return -1;
	}
	for (size_t i = 0; i < c->domain_overrides.n; i++) {
		const char *a = c->domain_overrides.value[i];
		if (strcmp(a, "none") && strcmp(a, "quarantine") && strcmp(a, "reject") && strcmp(a, "skip")) {
			snprintf(why, whylen, "policy.domain_overrides: %s: \"%s\" is not none, quarantine, reject or skip",
				 c->domain_overrides.key[i], a);
			return -1;
		}
	}
	if (c->dns_zone_file[0] && c->dns_servers.n) {
		snprintf(why, whylen, "dns.zone_file and dns.servers exclude each other");
		return -1;
	}
	unsigned char addr[16];
	if (inet_pton(AF_INET, c->metrics_listen, addr) != 1 &&
	    inet_pton(AF_INET6, c->metrics_listen, addr) != 1) {
		snprintf(why, whylen, "metrics.listen: \"%s\" is not an IP address", c->metrics_listen);
		return -1;
	}
	if (c->metrics_port > 65535) {
		snprintf(why, whylen, "metrics.port: %u is not a port", c->metrics_port);
		return -1;
	}
	if (c->dns_timeout_ms == 0 || c->cache_max_entries == 0 || c->max_inflight == 0) {
		snprintf(why, whylen, "dns.timeout_ms, cache.max_entries and policy.max_inflight must be > 0");
		return -1;
	}
	if (c->sts_workers == 0 || c->sts_workers > CPW_MAX_WORKERS) {
		snprintf(why, whylen, "sts.workers: %u is not in 1..%d", c->sts_workers, CPW_MAX_WORKERS);
		return -1;
	}
	if (c->tlsrpt_retry_s == 0 || c->sts_policy_domains.n > CPSTS_MAX_MAP) {
		snprintf(why, whylen, "tlsrpt.retry_s must be > 0 and sts.policy_domains at most %d entries",
			 CPSTS_MAX_MAP);
		return -1;
	}
	for (size_t i = 0; i < c->tlsrpt_own.n; i++) {
		unsigned char a[16];
		if (inet_pton(AF_INET, c->tlsrpt_own.v[i], a) != 1 && inet_pton(AF_INET6, c->tlsrpt_own.v[i], a) != 1) {
			snprintf(why, whylen, "tlsrpt.own_addresses: \"%s\" is not an IP address", c->tlsrpt_own.v[i]);
			return -1;
		}
	}
	if (c->user[0] && !getpwnam(c->user)) {
		snprintf(why, whylen, "user: no such user \"%s\"", c->user);
		return -1;
	}
	if (strlen(c->cpm_socket) >= sizeof(((struct sockaddr_un *)0)->sun_path) ||
	    strlen(c->control_socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(why, whylen, "a socket path is longer than a UNIX socket address allows");
		return -1;
	}
	return 0;
}

static int
load_config(const char *path, struct cpconf *c, char *why, size_t whylen)
{
	if (cpconf_load(c, path, why, whylen) != 0)
		return -1;
	char inner[256];
	if (validate(c, inner, sizeof(inner)) != 0) {
		snprintf(why, whylen, "%s: %s", path, inner);
		cpconf_free(c);
		return -1;
	}
	return 0;
}

/* ---- dataplane connections ---- */

static void conn_close(struct conn *c, const char *why);
static void schedule_flush(struct cp *cp);

static void
conn_unref(struct conn *c)
{
	if (--c->refs > 0 || !c->dead)
		return;
	struct rec *r = c->recs;
	while (r) {
		struct rec *n = r->next;
		free(r);
		r = n;
	}
	free(c->wbuf);
	free(c);
}

/* Sends queued datagrams until the socket would block. -1 when it broke. */
static int
conn_push(struct conn *c)
{
	while (c->oq) {
		struct outbuf *o = c->oq;
		ssize_t n = send(c->fd, o->buf, o->len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_add(c->ev_write, NULL);
			return 0;
		}
		if (n < 0)
			return -1;
		c->cp->cnt.datagrams_out++;
		c->oq_bytes -= o->len;
		c->oq = o->next;
		if (!c->oq)
			c->oq_tail = &c->oq;
		free(o);
	}
	return 0;
}

/* Moves the batch being built onto the send queue. */
static int
conn_seal(struct conn *c)
{
	if (c->w.len == 0)
		return 0;
	if (c->oq_bytes + c->w.len > CP_MAX_OUTQ)
		return -1; /* the peer stopped reading: the caller closes */
	struct outbuf *o = malloc(sizeof(*o) + c->w.len);
	if (!o)
		return -1;
	o->next = NULL;
	o->len = c->w.len;
	memcpy(o->buf, c->wbuf, c->w.len);
	*c->oq_tail = o;
	c->oq_tail = &o->next;
	c->oq_bytes += o->len;
	cpm_writer_init(&c->w, c->wbuf, CPM_MAX_DATAGRAM);
	return 0;
}

/* Queues one message into the current batch (sent at the next flush). */
static void
conn_send(struct conn *c, const struct cpm_msg *m)
{
	if (c->dead)
		return;
	if (cpm_encode(&c->w, m) != 0) {
		if (conn_seal(c) != 0 || cpm_encode(&c->w, m) != 0) {
			logmsg("cannot encode %s", cpm_type_name(m->type));
			return;
		}
	}
	schedule_flush(c->cp);
}

/* Sends an ERROR at once (best effort) and closes. */
static void
conn_refuse(struct conn *c, unsigned code, const char *detail)
{
	uint8_t buf[512];
	struct cpm_writer w;
	cpm_writer_init(&w, buf, sizeof(buf));
	char text[300];
	snprintf(text, sizeof(text), "%s%s%s", cpm_error_text(code), detail ? ": " : "", detail ? detail : "");
	struct cpm_msg m = {.type = CPM_ERROR};
	m.u.error.code = code;
	m.u.error.text = cpm_s(text);
	if (cpm_encode(&w, &m) == 0 && send(c->fd, buf, w.len, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
		c->cp->cnt.datagrams_out++;
	conn_close(c, text);
}

static void
conn_close(struct conn *c, const char *why)
{
	if (c->dead)
		return;
	struct cp *cp = c->cp;
	logmsg("dataplane connection %d closed: %s", c->fd, why);
	c->dead = true;
	event_free(c->ev_read);
	event_free(c->ev_write);
	close(c->fd);
	struct outbuf *o = c->oq;
	while (o) {
		struct outbuf *n = o->next;
		free(o);
		o = n;
	}
	c->oq = NULL;
	for (struct conn **pp = &cp->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	cp->nconns--;
	conn_unref(c); /* the connection's own reference */
}

static void
resume_reading(struct cp *cp)
{
	for (struct conn *c = cp->conns; c; c = c->next) {
		if (c->paused && cp->inflight < cp->conf.max_inflight) {
			c->paused = false;
			event_add(c->ev_read, NULL);
			event_active(c->ev_read, EV_READ, 0);
		}
	}
}

/* -- key service -- */

struct keywait {
	struct conn *c;
	uint64_t req_id;
};

static void
answer_key(struct conn *c, uint64_t req_id, const struct ws_dns_answer *a, uint32_t ttl)
{
	struct cpm_msg m = {.type = CPM_KEY_ANSWER};
	struct cpm_key_answer *k = &m.u.key_answer;
	k->req_id = req_id;
	k->ttl = ttl;
	switch (a->status) {
	case WS_DNS_OK: {
		const char *first_why = "no TXT record";
		k->status = CPM_KEY_INVALID;
		for (size_t i = 0; i < a->count; i++) {
			if (a->rrs[i].type != WS_DNS_TXT)
				continue;
			struct dkim_key key;
			const char *why = NULL;
			const struct ws_dns_rr *rr = &a->rrs[i];
			if (dkim_key_parse((const char *)rr->u.txt.data, rr->u.txt.len, &key, &why) == 0) {
				dkim_key_clear(&key);
				k->status = CPM_KEY_FOUND;
				k->record = (struct cpm_str){(const char *)rr->u.txt.data, (uint32_t)rr->u.txt.len};
				break;
			}
			first_why = why ? why : "unparsable key record";
		}
		if (k->status != CPM_KEY_FOUND)
			k->record = cpm_s(first_why);
		break;
	}
	case WS_DNS_NXDOMAIN:
		k->status = CPM_KEY_MISSING;
		k->record = cpm_s("no key record (NXDOMAIN)");
		break;
	case WS_DNS_NODATA:
		k->status = CPM_KEY_MISSING;
		k->record = cpm_s("no key record (no TXT)");
		break;
	default:
		k->status = CPM_KEY_TEMPFAIL;
		k->record = cpm_s(a->why[0] ? a->why : "temporary DNS failure");
		k->ttl = 0;
		break;
	}
	if (k->record.len > CPM_MAX_STR)
		k->status = CPM_KEY_INVALID, k->record = cpm_s("key record too long");
	conn_send(c, &m);
}

static uint32_t
answer_ttl(const struct cp *cp, const struct ws_dns_answer *a)
{
	unsigned cap = a->status == WS_DNS_OK ? cp->conf.cache_max_ttl : cp->conf.cache_negative_ttl;
	return a->ttl < cap ? a->ttl : cap;
}

static void
on_key(void *arg, const struct ws_dns_answer *a)
{
	struct keywait *kw = arg;
	struct cp *cp = kw->c->cp;
	cp->parked--;
	if (!kw->c->dead)
		answer_key(kw->c, kw->req_id, a, answer_ttl(cp, a));
	conn_unref(kw->c);
	free(kw);
}

static void
tempfail_key(struct conn *c, uint64_t req_id, const char *why)
{
	struct ws_dns_answer a = {.status = WS_DNS_TEMPFAIL};
	snprintf(a.why, sizeof(a.why), "%s", why);
	answer_key(c, req_id, &a, 0);
}

static void
handle_key_request(struct conn *c, const struct cpm_key_request *r)
{
	struct cp *cp = c->cp;
	cp->cnt.key_requests++;
	char name[DKIM_MAX_KEY_NAME + 1];
	if (cpm_str_copy(r->name, name, sizeof(name)) != 0) {
		struct ws_dns_answer a = {.status = WS_DNS_NXDOMAIN};
		answer_key(c, r->req_id, &a, 0);
		return;
	}
	if (cp->parked >= cp->conf.keys_max_parked) {
		cp->cnt.key_parked_refused++;
		tempfail_key(c, r->req_id, "control plane busy: too many key requests waiting");
		return;
	}
	struct keywait *kw = malloc(sizeof(*kw));
	if (!kw) {
		tempfail_key(c, r->req_id, "out of memory");
		return;
	}
	kw->c = c;
	kw->req_id = r->req_id;
	const struct ws_dns_answer *a;
	uint32_t ttl = 0;
	int rc = dnscache_lookup(cp->dc, cp->dns, name, WS_DNS_TXT, (int64_t)time(NULL), on_key, kw, &a, &ttl);
	if (rc == 0) {
		cp->parked++;
		c->refs++;
		return;
	}
	free(kw);
	if (rc == 1)
		answer_key(c, r->req_id, a, ttl);
	else
		tempfail_key(c, r->req_id, "resolver busy");
}

/* -- records -- */

struct jobctx {
	struct conn *c;
	struct rec *r;
};

static struct rec *
add_rec(struct conn *c, uint64_t id)
{
	if (id == 0 || id <= c->last_id) { /* ids start at 1: ACK 0 means "nothing" */
		char d[96];
		snprintf(d, sizeof(d), "record %llu after %llu", (unsigned long long)id,
			 (unsigned long long)c->last_id);
		conn_refuse(c, CPM_E_ORDER, d);
		return NULL;
	}
	struct rec *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->id = id;
	c->last_id = id;
	*c->recs_tail = r;
	c->recs_tail = &r->next;
	return r;
}

static void
count_verdict(struct cp *cp, const struct cpm_message *m, const struct pol_verdict *v)
{
	static const char *const dk[] = {"none", "pass", "fail", "neutral", "policy", "permerror", "temperror"};
	for (uint32_t i = 0; i < m->ndkim; i++) {
		size_t k = 7; /* other */
		for (size_t n = 0; n < 7; n++)
			if (cpm_str_eq(m->dkim[i].result, dk[n]))
				k = n;
		cp->dkim_res[k]++;
	}
	cp->spf_res[v->spf.result < 7 ? v->spf.result : 7]++;
	cp->dmarc_res[v->dmarc_evaluated ? (v->dmarc.result < 5 ? v->dmarc.result : 5) : 6]++;
	static const char *const dispn[] = {"none", "quarantine", "reject"};
	size_t d = 3; /* skip: no DMARC evaluated by a domain override */
	for (size_t n = 0; n < 3; n++)
		if (strcmp(v->disposition, dispn[n]) == 0 && !(v->override && strcmp(v->override, "skip") == 0))
			d = n;
	cp->disp[d]++;
}

static uint8_t
u8_of(bool b)
{
	return b ? 1 : 0;
}

static struct cpm_spf_outcome
spf_outcome_msg(const struct spf_outcome *o)
{
	return (struct cpm_spf_outcome){(uint8_t)o->result, cpm_s(o->domain), cpm_s(o->mechanism),
					cpm_s(o->reason), cpm_s(o->explanation)};
}

/* The VERDICT for a record that asked for one (replay prints it). */
static void
send_verdict(struct conn *c, const struct cpm_message *m, const struct pol_verdict *v)
{
	static struct cpm_msg out; /* one thread */
	char *ar = sink_authres(c->cp->sink, m, v);
	memset(&out, 0, sizeof(out));
	out.type = CPM_VERDICT;
	struct cpm_verdict *vd = &out.u.verdict;
	vd->record_id = m->record_id;
	if (!v->dmarc_evaluated && !v->override && v->dmarc_error[0]) {
		vd->status = CPM_VERDICT_ERROR; /* inputs refused: no result to print */
		vd->why = cpm_s(v->dmarc_error);
	}
	vd->spf_ran = u8_of(!v->spf_skipped);
	vd->spf_null_sender = u8_of(v->null_sender);
	vd->spf_mail_from = m->mail_from;
	vd->spf_helo_name = m->helo;
	vd->spf = spf_outcome_msg(&v->spf);
	vd->helo_ran = u8_of(v->helo_ran);
	vd->helo = spf_outcome_msg(&v->helo);
	const struct dmarc_result *d = &v->dmarc;
	vd->dmarc_ran = u8_of(v->dmarc_evaluated);
	if (v->dmarc_evaluated) {
		vd->dmarc_result = (uint8_t)d->result;
		vd->dmarc_policy = (uint8_t)d->policy;
		vd->dmarc_disposition = (uint8_t)d->disposition;
		vd->org_method = (uint8_t)d->org_method;
		vd->testing = u8_of(d->testing);
		vd->sampled_out = u8_of(d->sampled_out);
		vd->org_disagree = u8_of(d->org_disagree);
		vd->spf_aligned = u8_of(d->spf_aligned);
		vd->dkim_aligned = u8_of(d->dkim_aligned);
		vd->pct = d->pct <= 100 ? d->pct : 100;
		vd->from_domain = cpm_s(d->from_domain);
		vd->record_domain = cpm_s(d->record_domain);
		vd->org_domain = cpm_s(d->org_domain);
		vd->psl_org_domain = cpm_s(d->psl_org_domain);
		vd->walk_org_domain = cpm_s(d->walk_org_domain);
		vd->dmarc_reason = cpm_s(d->reason);
	}
	vd->arc_applied = u8_of(v->arc.applied);
	if (v->arc.applied) {
		vd->arc_by = cpm_s(v->arc.by);
		vd->arc_sealer = cpm_s(v->arc.sealer);
		vd->arc_instance = v->arc.instance;
		vd->arc_reason = cpm_s(v->arc.reason);
	}
	vd->override = cpm_s(v->override);
	vd->disposition = cpm_s(v->override && strcmp(v->override, "skip") == 0 ? "" : v->disposition);
	vd->authres = cpm_s(ar);
	conn_send(c, &out);
	c->cp->cnt.verdicts_out++;
	free(ar);
}

static void
on_policy_done(void *arg, struct pol_job *job)
{
	struct jobctx *jc = arg;
	struct cp *cp = jc->c->cp;
	const struct cpm_message *m = pol_job_message(job);
	const struct pol_verdict *v = pol_job_verdict(job);
	count_verdict(cp, m, v);
	/* the verdict goes before the ACK that will cover the record (same
	 * batch order), so the dataplane has it while the record is queued */
	if (m->verdict_wanted && !jc->c->dead)
		send_verdict(jc->c, m, v);
	/* a record whose connection died is still written: it will come back
	 * (unACKed) and the sink's dedupe catches the repeat */
	if (sink_message(cp->sink, m, v) >= 0 && jc->r)
		jc->r->done = true;
	cp->inflight--;
	if (!jc->c->dead)
		jc->c->ack_due = true;
	schedule_flush(cp);
	conn_unref(jc->c);
	pol_job_free(job);
	free(jc);
	resume_reading(cp);
}

static void
handle_message(struct conn *c, const struct cpm_message *m)
{
	struct cp *cp = c->cp;
	cp->cnt.message_records++;
	struct rec *r = add_rec(c, m->record_id);
	if (!r)
		return;
	struct jobctx *jc = malloc(sizeof(*jc));
	if (!jc)
		goto fail;
	jc->c = c;
	jc->r = r;
	c->refs++;
	cp->inflight++;
	if (pol_start(&cp->pol, cp->dc, cp->dns, m, (int64_t)time(NULL), on_policy_done, jc) != 0) {
		c->refs--;
		cp->inflight--;
		free(jc);
		goto fail;
	}
	return;
fail:
	/* left undone: never ACKed, so the dataplane will send it again */
	cp->cnt.policy_errors++;
}

/* -- MTA-STS: jobs for the workers -- */

enum job_kind { JOB_SESSION, JOB_QUERY, JOB_DELIVER };

struct stsjob {
	struct cpw_job base; /* first: the pool hands this pointer back */
	enum job_kind kind;
	struct cp *cp;
	struct conn *c;
	struct rec *r;
	int64_t now;
	int rc;
	uint64_t req_id;
	struct cpm_msg msg;           /* JOB_SESSION: decoded from buf, strings point into it */
	struct cpsts_result *res;     /* JOB_SESSION */
	struct sts_resolved *resolved; /* JOB_QUERY */
	enum cprpt_delivery delivery; /* JOB_DELIVER */
	char domain[STS_DOMAIN_MAX + 1];
	char path[4200];
	char why[512];
	size_t buflen;
	uint8_t buf[];
};

static void
job_free(struct stsjob *j)
{
	free(j->res);
	free(j->resolved);
	free(j);
}

static void
run_job(struct cpsts *ctx, struct cpw_job *base)
{
	struct stsjob *j = (struct stsjob *)base;
	switch (j->kind) {
	case JOB_SESSION:
		j->rc = cpsts_session(ctx, &j->msg.u.session, j->now, j->res);
		break;
	case JOB_QUERY:
		j->rc = cpsts_query(ctx, j->domain, j->now, j->resolved);
		break;
	case JOB_DELIVER:
		j->delivery = cprpt_deliver(cpsts_dns(ctx), &j->cp->post, j->domain, j->path, j->why,
					    sizeof(j->why));
		break;
	}
}

static void
count_sts(struct cp *cp, const struct cpsts_result *res)
{
	for (unsigned i = 0; i < res->n; i++) {
		const struct sts_verdict *v = &res->ev[i].v;
		cp->sts_res[(unsigned)v->result < 4 ? v->result : STS_NONE]++;
		if (v->result == STS_FAIL && (unsigned)v->reason < STS_RT_COUNT)
			cp->sts_fail[v->reason]++;
	}
}

/* The session's verdicts are in (or could not be had): count, report,
 * write, and let the record be ACKed. */
static void
session_done(struct cp *cp, struct conn *c, struct rec *r, const struct cpm_session *s,
	     struct cpsts_result *res)
{
	if (res) {
		count_sts(cp, res);
		if (cp->rpt && cprpt_add(cp->rpt, s, res) != 0)
			logmsg("tlsrpt: counting record %llu failed", (unsigned long long)s->record_id);
	}
	cp->last_session = time(NULL);
	/* a record whose connection died is still written (see on_policy_done) */
	if (sink_session(cp->sink, s, res) >= 0 && r)
		r->done = true;
	if (!c->dead)
		c->ack_due = true;
	schedule_flush(cp);
}

static void
on_session_job(struct cpw_job *base)
{
	struct stsjob *j = (struct stsjob *)base;
	struct cp *cp = j->cp;
	cp->inflight--;
	if (!base->cancelled) {
		if (j->rc != 0) {
			cp->sts_errors++;
			logmsg("sts: record %llu: %s", (unsigned long long)j->msg.u.session.record_id,
			       j->res->ev[0].why);
		}
		session_done(cp, j->c, j->r, &j->msg.u.session, j->rc == 0 ? j->res : NULL);
		resume_reading(cp);
	}
	conn_unref(j->c);
	job_free(j);
}

static struct stsjob *
job_new(struct cp *cp, enum job_kind kind, size_t buflen)
{
	struct stsjob *j = calloc(1, sizeof(*j) + buflen);
	if (!j)
		return NULL;
	j->kind = kind;
	j->cp = cp;
	j->now = (int64_t)time(NULL);
	j->buflen = buflen;
	j->base.run = run_job;
	return j;
}

static void
handle_session(struct conn *c, const struct cpm_session *s)
{
	struct cp *cp = c->cp;
	cp->cnt.session_records++;
	struct rec *r = add_rec(c, s->record_id);
	if (!r)
		return;
	if (!cp->workers) {
		session_done(cp, c, r, s, NULL);
		return;
	}
	/* the record's strings point into the datagram buffer, reused by the
	 * next read: the worker gets its own copy, re-encoded and decoded */
	struct cpm_writer w;
	cpm_writer_init(&w, cp->copybuf, CPM_MAX_DATAGRAM);
	struct cpm_msg *m = malloc(sizeof(*m));
	struct stsjob *j = NULL;
	if (!m)
		goto fail;
	m->type = CPM_SESSION_RECORD;
	m->u.session = *s;
	if (cpm_encode(&w, m) != 0)
		goto fail;
	j = job_new(cp, JOB_SESSION, w.len);
	if (!j || !(j->res = calloc(1, sizeof(*j->res))))
		goto fail;
	memcpy(j->buf, cp->copybuf, w.len);
	struct cpm_reader rd;
	char why[128];
	cpm_reader_init(&rd, j->buf, w.len);
	if (cpm_decode_next(&rd, &j->msg, why, sizeof(why)) != 1)
		goto fail;
	j->c = c;
	j->r = r;
	j->base.done = on_session_job;
	if (cpw_submit(cp->workers, &j->base) != 0) {
		/* every worker busy and the queue full: judged without the
		 * network, which means not at all */
		cp->sts_busy++;
		struct cpsts_eval *e = &j->res->ev[0];
		j->res->n = 1;
		e->source = CPSTS_SRC_UNKNOWN;
		e->v = (struct sts_verdict){STS_NOT_ASSESSABLE, STS_RT_NONE, NULL, false};
		e->cert = STS_CERT_NOT_ASSESSABLE;
		snprintf(e->why, sizeof(e->why), "control plane busy: MTA-STS queue full");
		session_done(cp, c, r, s, j->res);
		job_free(j);
		free(m);
		return;
	}
	c->refs++;
	cp->inflight++;
	free(m);
	return;
fail:
	/* left undone: never ACKed, so the dataplane will send it again */
	cp->cnt.policy_errors++;
	if (j)
		job_free(j);
	free(m);
}

/* -- the inline hook: STS_QUERY -> STS_ANSWER -- */

static void
answer_sts(struct conn *c, uint64_t req_id, const struct sts_resolved *r, int rc, int64_t now)
{
	struct cp *cp = c->cp;
	struct cpm_msg m = {.type = CPM_STS_ANSWER};
	struct cpm_sts_answer *a = &m.u.sts_answer;
	char pats[CPM_MAX_STS_MX][STS_DOMAIN_MAX + 3];
	a->req_id = req_id;
	a->why = cpm_s("");
	if (!r || rc != 0 || r->status == STS_RES_FAILED) {
		a->status = CPM_STS_TEMPFAIL;
		a->why = cpm_s(r ? r->why : "control plane busy");
	} else if (r->status == STS_RES_NONE || r->policy.mode == STS_MODE_NONE) {
		a->status = CPM_STS_NONE;
		a->mode = CPM_STS_MODE_NONE;
		a->ttl = cp->conf.sts_query_ttl;
		a->why = cpm_s(r->why);
	} else {
		a->status = CPM_STS_POLICY;
		a->mode = r->policy.mode == STS_MODE_ENFORCE ? CPM_STS_ENFORCE : CPM_STS_TESTING;
		int64_t left = r->expires_at - now;
		a->ttl = left <= 0 ? 0 : left < (int64_t)cp->conf.sts_query_ttl ? (uint32_t)left
										  : cp->conf.sts_query_ttl;
		for (unsigned i = 0; i < r->policy.n_mx && i < CPM_MAX_STS_MX; i++) {
			snprintf(pats[i], sizeof(pats[i]), "%s%s", r->policy.mx[i].wildcard ? "*." : "",
				 r->policy.mx[i].name);
			a->mx[a->nmx++] = cpm_s(pats[i]);
		}
	}
	if (a->why.len > 512)
		a->why.len = 512;
	conn_send(c, &m);
}

static void
on_query_job(struct cpw_job *base)
{
	struct stsjob *j = (struct stsjob *)base;
	struct cp *cp = j->cp;
	cp->parked--;
	if (!base->cancelled && !j->c->dead)
		answer_sts(j->c, j->req_id, j->resolved, j->rc, (int64_t)time(NULL));
	conn_unref(j->c);
	job_free(j);
}

static void
handle_sts_query(struct conn *c, const struct cpm_sts_query *q)
{
	struct cp *cp = c->cp;
	cp->sts_queries++;
	struct stsjob *j = NULL;
	if (!cp->workers || cp->parked >= cp->conf.keys_max_parked)
		goto busy;
	j = job_new(cp, JOB_QUERY, 0);
	if (!j || !(j->resolved = calloc(1, sizeof(*j->resolved))) ||
	    cpm_str_copy(q->domain, j->domain, sizeof(j->domain)) != 0)
		goto busy;
	j->c = c;
	j->req_id = q->req_id;
	j->base.done = on_query_job;
	if (cpw_submit(cp->workers, &j->base) != 0)
		goto busy;
	c->refs++;
	cp->parked++;
	return;
busy:
	if (j)
		job_free(j);
	cp->sts_busy++;
	answer_sts(c, q->req_id, NULL, -1, 0);
}

/* -- TLS-RPT delivery -- */

static void
on_deliver_job(struct cpw_job *base)
{
	struct stsjob *j = (struct stsjob *)base;
	struct cp *cp = j->cp;
	cp->deliveries--;
	if (!base->cancelled) {
		/* delivered reports move to sent/, those with no https: rua to
		 * no-endpoint/ (both beside the file: a reload may have changed
		 * the configured spool); failures stay for the retry */
		const char *sub = NULL;
		switch (j->delivery) {
		case CPRPT_DELIVERED:
			cp->rpt_delivered++;
			sub = "sent";
			logmsg("tlsrpt: report for %s delivered to %s", j->domain, j->why);
			break;
		case CPRPT_NO_ENDPOINT:
			cp->rpt_no_endpoint++;
			sub = "no-endpoint";
			logmsg("tlsrpt: report for %s kept: %s", j->domain, j->why);
			break;
		case CPRPT_FAILED:
			cp->rpt_failed++;
			logmsg("tlsrpt: report for %s not delivered (tried again later): %s", j->domain, j->why);
			break;
		}
		if (sub) {
			char dir[4300], dst[4400];
			const char *slash = strrchr(j->path, '/');
			int dl = slash ? (int)(slash - j->path) : 1;
			snprintf(dir, sizeof(dir), "%.*s/%s", dl, slash ? j->path : ".", sub);
			snprintf(dst, sizeof(dst), "%s%s", dir, slash ? slash : "/report");
			if ((mkdir(dir, 0750) != 0 && errno != EEXIST) || rename(j->path, dst) != 0)
				logmsg("tlsrpt: %s: %s", dst, strerror(errno));
		}
	}
	job_free(j);
}

static void
queue_delivery(struct cp *cp, const char *domain, const char *path)
{
	struct stsjob *j = job_new(cp, JOB_DELIVER, 0);
	if (!j)
		return;
	snprintf(j->domain, sizeof(j->domain), "%s", domain);
	snprintf(j->path, sizeof(j->path), "%s", path);
	j->base.done = on_deliver_job;
	if (cpw_submit(cp->workers, &j->base) != 0) {
		cp->rpt_failed++;
		job_free(j);
		return;
	}
	cp->deliveries++;
}

static void
on_report_file(void *arg, const char *domain, const char *path)
{
	struct cp *cp = arg;
	logmsg("tlsrpt: wrote %s", path);
	if (!cp->conf.tlsrpt_deliver || !cp->workers || cp->stopping)
		return;
	queue_delivery(cp, domain, path);
}

/* RFC 8460 5.4: a report not delivered is tried again, for up to a day.
 * Every tlsrpt.retry_s (and at start) the spool's undelivered reports
 * younger than CP_TLSRPT_RETRY_FOR are queued again, unless a delivery is
 * still under way (then the next pass does it). Older ones stay, counted
 * in the log only. */
#define CP_TLSRPT_RETRY_FOR 86400
static void
retry_deliveries(struct cp *cp, time_t now)
{
	if (!cp->rpt || !cp->conf.tlsrpt_deliver || cp->deliveries || now < cp->next_retry)
		return;
	cp->next_retry = now + (time_t)cp->conf.tlsrpt_retry_s;
	DIR *dir = opendir(cp->conf.tlsrpt_spool_dir);
	if (!dir)
		return;
	struct dirent *de;
	while ((de = readdir(dir))) {
		struct tlsrpt_filename_parts fp;
		if (de->d_name[0] == '.' || tlsrpt_filename_parse(de->d_name, &fp) != 0 || !fp.gzip)
			continue;
		char path[4200];
		struct stat sb;
		snprintf(path, sizeof(path), "%s/%s", cp->conf.tlsrpt_spool_dir, de->d_name);
		if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || now - sb.st_mtime > CP_TLSRPT_RETRY_FOR)
			continue;
		cp->rpt_retries++;
		queue_delivery(cp, fp.policy_domain, path);
	}
	closedir(dir);
}

static void
on_work(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct cp *cp = arg;
	cpw_collect(cp->workers);
}

static int
tlsrpt_flush(struct cp *cp)
{
	if (!cp->rpt)
		return -1;
	int n = cprpt_flush(cp->rpt);
	if (n < 0)
		logmsg("tlsrpt: writing the reports failed");
	return n;
}

static void
handle_stats(struct cp *cp, const struct cpm_stats *s)
{
	for (uint32_t i = 0; i < s->n; i++) {
		char name[128];
		if (cpm_str_copy(s->s[i].name, name, sizeof(name)) != 0 ||
		    !met_name_ok(name, strlen(name)))
			continue;
		size_t k;
		for (k = 0; k < cp->ndp_stats; k++)
			if (strcmp(cp->dp_stats[k].name, name) == 0)
				break;
		if (k == cp->ndp_stats) {
			if (k == CP_MAX_DP_STATS)
				continue;
			memcpy(cp->dp_stats[k].name, name, strlen(name) + 1);
			cp->ndp_stats++;
		}
		cp->dp_stats[k].value = s->s[i].value;
	}
}

/* Handles one datagram; false when the connection was closed. */
static bool
handle_datagram(struct conn *c, const uint8_t *p, size_t len)
{
	struct cp *cp = c->cp;
	static struct cpm_msg m; /* large; one thread */
	struct cpm_reader r;
	char why[160];
	cpm_reader_init(&r, p, len);
	if (!c->hello_done) {
		int rc = cpm_decode_next(&r, &m, why, sizeof(why));
		int code = rc == 1 ? cpm_hello_check(&m, CPM_ROLE_DATAPLANE) : CPM_E_NO_HELLO;
		if (code == 0 && r.off != r.len)
			code = CPM_E_MALFORMED;
		if (code != 0) {
			char d[96] = "";
			if (code == CPM_E_VERSION)
				snprintf(d, sizeof(d), "peer speaks version %u, this is version %u",
					 m.u.hello.version, CPM_VERSION);
			cp->cnt.dp_handshake_refused++;
			conn_refuse(c, (unsigned)code, d[0] ? d : NULL);
			return false;
		}
		c->hello_done = true;
		struct cpm_msg h = {.type = CPM_HELLO};
		h.u.hello = (struct cpm_hello){CPM_MAGIC, CPM_VERSION, CPM_ROLE_CONTROLPLANE};
		conn_send(c, &h);
		return true;
	}
	/* decode the whole datagram first: a bad one is refused before any of
	 * its records takes effect */
	int rc;
	while ((rc = cpm_decode_next(&r, &m, why, sizeof(why))) == 1)
		;
	if (rc < 0) {
		cp->cnt.protocol_errors++;
		conn_refuse(c, CPM_E_MALFORMED, why);
		return false;
	}
	cpm_reader_init(&r, p, len);
	while (cpm_decode_next(&r, &m, why, sizeof(why)) == 1) {
		switch (m.type) {
		case CPM_KEY_REQUEST:
			handle_key_request(c, &m.u.key_request);
			break;
		case CPM_MESSAGE_RECORD:
			handle_message(c, &m.u.message);
			break;
		case CPM_SESSION_RECORD:
			handle_session(c, &m.u.session);
			break;
		case CPM_STATS:
			handle_stats(cp, &m.u.stats);
			break;
		case CPM_STS_QUERY:
			handle_sts_query(c, &m.u.sts_query);
			break;
		case CPM_ERROR:
			logmsg("dataplane reports error %u", m.u.error.code);
			conn_close(c, "peer sent ERROR");
			return false;
		default: /* HELLO again, ACK or KEY_ANSWER from the dataplane */
			cp->cnt.protocol_errors++;
			conn_refuse(c, CPM_E_MALFORMED, cpm_type_name(m.type));
			return false;
		}
		if (c->dead)
			return false;
	}
	return true;
}

static void
on_conn_read(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct conn *c = arg;
	struct cp *cp = c->cp;
	c->refs++; /* c stays allocated while we look at it, even if it closes */
	for (int i = 0; i < CP_READ_BURST && !c->dead; i++) {
		if (cp->inflight >= cp->conf.max_inflight) {
			/* backpressure: the dataplane's socket buffer fills, its records wait */
			c->paused = true;
			event_del(c->ev_read);
			break;
		}
		ssize_t n = recv(fd, cp->rbuf, CPM_MAX_DATAGRAM, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			conn_close(c, n == 0 ? "peer closed" : strerror(errno));
			break;
		}
		cp->cnt.datagrams_in++;
		if ((size_t)n > CPM_MAX_DATAGRAM) {
			cp->cnt.protocol_errors++;
			conn_refuse(c, CPM_E_MALFORMED, "datagram over CPM_MAX_DATAGRAM");
			break;
		}
		if (!handle_datagram(c, cp->rbuf, (size_t)n))
			break;
	}
	conn_unref(c);
}

static void
on_conn_write(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	if (conn_push(c) != 0)
		conn_close(c, strerror(errno));
}

static void
on_cpm_accept(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct cp *cp = arg;
	int s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (s < 0)
		return;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c || !(c->wbuf = malloc(CPM_MAX_DATAGRAM))) {
		free(c);
		close(s);
		return;
	}
	c->cp = cp;
	c->fd = s;
	c->refs = 1;
	c->oq_tail = &c->oq;
	c->recs_tail = &c->recs;
	cpm_writer_init(&c->w, c->wbuf, CPM_MAX_DATAGRAM);
	c->ev_read = event_new(cp->base, s, EV_READ | EV_PERSIST, on_conn_read, c);
	c->ev_write = event_new(cp->base, s, EV_WRITE, on_conn_write, c);
	event_add(c->ev_read, NULL);
	c->next = cp->conns;
	cp->conns = c;
	cp->nconns++;
	cp->cnt.dp_connections++;
	/* our HELLO goes first, whatever the peer says */
	struct cpm_msg h = {.type = CPM_HELLO};
	h.u.hello = (struct cpm_hello){CPM_MAGIC, CPM_VERSION, CPM_ROLE_CONTROLPLANE};
	uint8_t buf[64];
	struct cpm_writer w;
	cpm_writer_init(&w, buf, sizeof(buf));
	cpm_encode(&w, &h);
	if (send(s, buf, w.len, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
		cp->cnt.datagrams_out++;
	c->hello_done = false;
}

/* One pass: sync the sink once, then ACK and send on every connection. */
static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct cp *cp = arg;
	bool synced = sink_sync(cp->sink) == 0;
	struct conn *next;
	for (struct conn *c = cp->conns; c; c = next) {
		next = c->next;
		if (c->ack_due && synced) {
			c->ack_due = false;
			uint64_t up_to = 0;
			while (c->recs && c->recs->done) {
				struct rec *r = c->recs;
				up_to = r->id;
				c->recs = r->next;
				if (!c->recs)
					c->recs_tail = &c->recs;
				cp->cnt.records_acked++;
				free(r);
			}
			if (up_to) {
				c->acked = up_to;
				struct cpm_msg m = {.type = CPM_ACK};
				m.u.ack.up_to = up_to;
				if (cpm_encode(&c->w, &m) != 0 && (conn_seal(c) != 0 || cpm_encode(&c->w, &m) != 0))
					logmsg("cannot queue ACK");
			}
		}
		if (conn_seal(c) != 0 || conn_push(c) != 0)
			conn_close(c, c->oq_bytes + c->w.len > CP_MAX_OUTQ ? "peer does not read (CP_MAX_OUTQ)" : "send failed");
	}
}

static void
schedule_flush(struct cp *cp)
{
	event_active(cp->ev_flush, EV_TIMEOUT, 0);
}

/* ---- metrics ---- */

static void
fam_sample(FILE *f, const char *name, const char *type, const char *help, double v)
{
	met_family(f, name, type, help);
	met_sample(f, name, NULL, 0, v);
}

static char *
render_metrics(void *arg, size_t *len)
{
	struct cp *cp = arg;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		return NULL;
	met_render_counters(f, &cp->cnt);
	static const char *const dk[] = {"none", "pass", "fail", "neutral", "policy", "permerror", "temperror", "other"};
	met_family(f, "wireseal_cp_verdicts_total", "counter", "results by method (dkim: per signature)");
	for (size_t i = 0; i < 8; i++) {
		const char *l[] = {"method", "dkim", "result", dk[i]};
		met_sample(f, "wireseal_cp_verdicts_total", l, 2, (double)cp->dkim_res[i]);
	}
	for (size_t i = 0; i < 7; i++) {
		const char *l[] = {"method", "spf", "result", spf_result_name((enum spf_result)i)};
		met_sample(f, "wireseal_cp_verdicts_total", l, 2, (double)cp->spf_res[i]);
	}
	for (size_t i = 0; i < 7; i++) {
		const char *l[] = {"method", "dmarc", "result",
				   i < 5 ? dmarc_res_name((enum dmarc_res)i) : i == 5 ? "other" : "not_evaluated"};
		met_sample(f, "wireseal_cp_verdicts_total", l, 2, (double)cp->dmarc_res[i]);
	}
	static const char *const dispn[] = {"none", "quarantine", "reject", "skip"};
	met_family(f, "wireseal_cp_dispositions_total", "counter", "final disposition per message");
	for (size_t i = 0; i < 4; i++) {
		const char *l[] = {"disposition", dispn[i]};
		met_sample(f, "wireseal_cp_dispositions_total", l, 1, (double)cp->disp[i]);
	}
	struct dnscache_stats ds;
	dnscache_stats(cp->dc, &ds);
	const struct dnscache_stats *d = &ds;
	fam_sample(f, "wireseal_cp_dns_queries_total", "counter", "DNS queries sent", (double)d->queries);
	met_family(f, "wireseal_cp_dns_answers_total", "counter", "DNS answers by kind");
	const char *ok[] = {"kind", "data"}, *neg[] = {"kind", "negative"}, *tf[] = {"kind", "tempfail"};
	met_sample(f, "wireseal_cp_dns_answers_total", ok, 1, (double)d->answers_ok);
	met_sample(f, "wireseal_cp_dns_answers_total", neg, 1, (double)d->answers_negative);
	met_sample(f, "wireseal_cp_dns_answers_total", tf, 1, (double)d->tempfail);
	fam_sample(f, "wireseal_cp_dns_timeouts_total", "counter", "DNS queries that timed out",
		   (double)d->timeouts);
	met_family(f, "wireseal_cp_dns_query_duration_seconds", "histogram", "DNS query latency");
	for (size_t i = 0; i < DNSCACHE_LAT_BUCKETS; i++) {
		char le[32];
		snprintf(le, sizeof(le), "%g", dnscache_lat_bounds_ms[i] / 1000.0);
		const char *l[] = {"le", le};
		met_sample(f, "wireseal_cp_dns_query_duration_seconds_bucket", l, 1, (double)d->lat_le[i]);
	}
	const char *inf[] = {"le", "+Inf"};
	met_sample(f, "wireseal_cp_dns_query_duration_seconds_bucket", inf, 1, (double)d->lat_count);
	met_sample(f, "wireseal_cp_dns_query_duration_seconds_sum", NULL, 0, d->lat_sum_s);
	met_sample(f, "wireseal_cp_dns_query_duration_seconds_count", NULL, 0, (double)d->lat_count);
	fam_sample(f, "wireseal_cp_dns_cache_entries", "gauge", "DNS cache entries (ready and pending)",
		   (double)(d->entries + d->pending));
	fam_sample(f, "wireseal_cp_dns_cache_pending", "gauge", "DNS queries in flight", (double)d->pending);
	fam_sample(f, "wireseal_cp_dns_cache_hits_total", "counter", "lookups answered from the cache",
		   (double)d->hits);
	fam_sample(f, "wireseal_cp_dns_cache_misses_total", "counter", "lookups that sent a query",
		   (double)d->misses);
	fam_sample(f, "wireseal_cp_dns_cache_coalesced_total", "counter",
		   "lookups that joined a query already in flight", (double)d->coalesced);
	fam_sample(f, "wireseal_cp_dns_cache_evictions_total", "counter",
		   "answers evicted, least recently used first, to make room (cache.max_entries)",
		   (double)d->evictions);
	fam_sample(f, "wireseal_cp_dns_cache_expired_total", "counter",
		   "answers dropped when found past their TTL", (double)d->expired);
	fam_sample(f, "wireseal_cp_dns_cache_not_kept_total", "counter",
		   "answers used but not kept (temporary failure, TTL cap 0, past the name or record limits)",
		   (double)d->uncacheable);
	fam_sample(f, "wireseal_cp_dns_cache_refused_total", "counter",
		   "lookups refused (resolver or waiter limit): temporary failures", (double)d->refused);
	double lookups = (double)(d->hits + d->misses + d->coalesced);
	fam_sample(f, "wireseal_cp_dns_cache_hit_ratio", "gauge", "hits / lookups since start",
		   lookups > 0 ? (double)d->hits / lookups : 0);
	fam_sample(f, "wireseal_cp_key_requests_parked", "gauge", "key requests waiting for DNS",
		   cp->parked);
	fam_sample(f, "wireseal_cp_key_requests_parked_limit", "gauge", "keys.max_parked",
		   cp->conf.keys_max_parked);
	fam_sample(f, "wireseal_cp_records_inflight", "gauge", "message records being evaluated",
		   cp->inflight);
	fam_sample(f, "wireseal_cp_dataplane_connected", "gauge", "dataplane connections open",
		   cp->nconns);
	const struct sink_stats *s = sink_stats(cp->sink);
	fam_sample(f, "wireseal_cp_sink_written_total", "counter", "events written", (double)s->written);
	fam_sample(f, "wireseal_cp_sink_duplicates_total", "counter",
		   "records not written again (seen before: at-least-once delivery)", (double)s->duplicates);
	fam_sample(f, "wireseal_cp_sink_errors_total", "counter", "write or sync failures", (double)s->errors);
	fam_sample(f, "wireseal_cp_sink_syncs_total", "counter", "fdatasync calls", (double)s->syncs);
	fam_sample(f, "wireseal_cp_syslog_sent_total", "counter", "syslog lines sent", (double)s->syslog_sent);
	fam_sample(f, "wireseal_cp_syslog_errors_total", "counter",
		   "syslog lines lost (no syslog daemon, or its socket full)", (double)s->syslog_errors);
	fam_sample(f, "wireseal_cp_uptime_seconds", "gauge", "seconds since start",
		   (double)(time(NULL) - cp->started));
	met_family(f, "wireseal_cp_sts_sessions_total", "counter",
		   "MTA-STS verdicts by result (one per policy domain of a session)");
	for (int i = 0; i < 4; i++) {
		const char *l[] = {"result", sts_result_name((enum sts_result)i)};
		met_sample(f, "wireseal_cp_sts_sessions_total", l, 1, (double)cp->sts_res[i]);
	}
	met_family(f, "wireseal_cp_sts_failures_total", "counter", "MTA-STS failures by TLS-RPT result type");
	for (int i = 1; i < STS_RT_COUNT; i++) {
		const char *l[] = {"result_type", sts_result_type_name((enum sts_result_type)i)};
		met_sample(f, "wireseal_cp_sts_failures_total", l, 1, (double)cp->sts_fail[i]);
	}
	fam_sample(f, "wireseal_cp_sts_queries_total", "counter", "STS_QUERYs received", (double)cp->sts_queries);
	fam_sample(f, "wireseal_cp_sts_busy_total", "counter",
		   "sessions and queries answered without the network (workers' queue full)",
		   (double)cp->sts_busy);
	fam_sample(f, "wireseal_cp_sts_errors_total", "counter", "sessions whose evaluation failed locally",
		   (double)cp->sts_errors);
	if (cp->rpt) {
		const struct cprpt_stats *rs = cprpt_stats(cp->rpt);
		met_family(f, "wireseal_cp_tlsrpt_sessions_total", "counter",
			   "session verdicts by how TLS-RPT took them");
		const char *kinds[] = {"counted", "own", "not_assessable", "unattributed", "late"};
		const uint64_t vals[] = {rs->counted, rs->own, rs->not_assessable, rs->unattributed, rs->late};
		for (int i = 0; i < 5; i++) {
			const char *l[] = {"kind", kinds[i]};
			met_sample(f, "wireseal_cp_tlsrpt_sessions_total", l, 1, (double)vals[i]);
		}
		met_family(f, "wireseal_cp_tlsrpt_reports_total", "counter", "TLS-RPT report files by outcome");
		const char *outs[] = {"written", "write_error", "delivered", "delivery_failed", "no_endpoint",
				      "retried"};
		const uint64_t ov[] = {rs->files, rs->write_errors, cp->rpt_delivered, cp->rpt_failed,
				       cp->rpt_no_endpoint, cp->rpt_retries};
		for (int i = 0; i < 6; i++) {
			const char *l[] = {"outcome", outs[i]};
			met_sample(f, "wireseal_cp_tlsrpt_reports_total", l, 1, (double)ov[i]);
		}
	}
	if (cp->ndp_stats) {
		met_family(f, "wireseal_dataplane_stat", "gauge", "dataplane counters relayed by STATS");
		for (size_t i = 0; i < cp->ndp_stats; i++) {
			const char *l[] = {"name", cp->dp_stats[i].name};
			met_sample(f, "wireseal_dataplane_stat", l, 1, (double)cp->dp_stats[i].value);
		}
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- reload ---- */

static int
reload(struct cp *cp, char *why, size_t whylen)
{
	notify("RELOADING=1");
	struct cpconf nc;
	int rc = -1;
	if (load_config(cp->config_path, &nc, why, whylen) != 0) {
		cp->cnt.reload_errors++;
		logmsg("reload refused, keeping the running configuration: %s", why);
		goto out;
	}
	/* what needs a restart keeps its running value; say so */
	static const char *const fixed[] = {"user", "cpm_socket", "control_socket", "dns.*", "metrics.*",
					    "policy.psl_file"};
	bool changed = strcmp(nc.user, cp->conf.user) || strcmp(nc.cpm_socket, cp->conf.cpm_socket) ||
		       strcmp(nc.control_socket, cp->conf.control_socket) ||
		       nc.dns_timeout_ms != cp->conf.dns_timeout_ms ||
		       strcmp(nc.metrics_listen, cp->conf.metrics_listen) ||
		       nc.metrics_port != cp->conf.metrics_port;
	if (changed)
		logmsg("reload: changes to %s, %s, %s, %s, %s or %s take effect at restart", fixed[0],
		       fixed[1], fixed[2], fixed[3], fixed[4], fixed[5]);
	struct cpconf old = cp->conf;
	cp->conf = nc;
	/* restart-only settings keep their running values (ownership swaps) */
#define KEEP_STR(f)                      \
	do {                             \
		char *t = cp->conf.f;    \
		cp->conf.f = old.f;      \
		old.f = t;               \
	} while (0)
	KEEP_STR(user);
	KEEP_STR(cpm_socket);
	KEEP_STR(control_socket);
	KEEP_STR(metrics_listen);
	KEEP_STR(psl_file);
	KEEP_STR(tlsrpt_spool_dir); /* the spool the running cprpt writes */
#undef KEEP_STR
	cp->conf.metrics_port = old.metrics_port;
	cp->conf.dns_timeout_ms = old.dns_timeout_ms;
	apply_policy_config(cp);
	struct dnscache_config dcc = cache_config(&cp->conf);
	dnscache_set_config(cp->dc, &dcc);
	cpconf_free(&old);
	struct sink_config sc;
	sink_config_of(cp, &sc);
	if (sink_reopen(cp->sink, &sc, why, whylen) != 0) {
		logmsg("reload: sink: %s", why);
		cp->cnt.reload_errors++;
		goto out;
	}
	cp->cnt.reloads++;
	logmsg("configuration reloaded, sinks reopened");
	rc = 0;
	resume_reading(cp);
out:
	notify("READY=1");
	return rc;
}

/* ---- control socket ---- */

struct ctl {
	struct cp *cp;
	int fd;
	struct event *ev;
	char line[CTL_LINE_MAX + 1];
	size_t len;
};

static void
ctl_reply(struct ctl *k, const char *text, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(k->fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			/* a slow reader: the reply is small, wait briefly for room */
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
			continue;
		}
		if (n <= 0)
			return;
		off += (size_t)n;
	}
}

static void
ctl_run(struct ctl *k)
{
	struct cp *cp = k->cp;
	char *body = NULL;
	size_t blen = 0;
	FILE *f = open_memstream(&body, &blen);
	if (!f)
		return;
	char *cmd = k->line;
	while (*cmd == ' ')
		cmd++;
	size_t n = strlen(cmd);
	while (n && (cmd[n - 1] == ' ' || cmd[n - 1] == '\r'))
		cmd[--n] = '\0';
	if (strcmp(cmd, "status") == 0) {
		struct dnscache_stats ds;
		dnscache_stats(cp->dc, &ds);
		const struct dnscache_stats *d = &ds;
		fprintf(f, "ok\nversion %s\nprotocol %u\nconfig %s\nuptime %lld\npid %d\nuid %u\n"
			   "dataplane_connections %u\nrecords_inflight %u\nkey_requests_parked %u\n"
			   "cache_entries %llu\nmessage_records %llu\nsession_records %llu\nrecords_acked %llu\n",
			WS_VERSION, CPM_VERSION, cp->config_path, (long long)(time(NULL) - cp->started),
			(int)getpid(), (unsigned)getuid(), cp->nconns, cp->inflight, cp->parked,
			(unsigned long long)(d->entries + d->pending), (unsigned long long)cp->cnt.message_records,
			(unsigned long long)cp->cnt.session_records,
			(unsigned long long)cp->cnt.records_acked);
	} else if (strcmp(cmd, "stats") == 0) {
		size_t ml = 0;
		char *m = render_metrics(cp, &ml);
		fprintf(f, "ok\n%s", m ? m : "");
		free(m);
	} else if (strcmp(cmd, "cache show") == 0) {
		fprintf(f, "ok\n");
		dnscache_dump(cp->dc, (int64_t)time(NULL), f);
	} else if (strcmp(cmd, "cache flush") == 0) {
		fprintf(f, "ok\nflushed %zu\n", dnscache_flush(cp->dc));
	} else if (strcmp(cmd, "tlsrpt flush") == 0) {
		int files = tlsrpt_flush(cp);
		if (files >= 0)
			fprintf(f, "ok\nfiles %d\n", files);
		else
			fprintf(f, "error: %s\n", cp->rpt ? "writing the reports failed" : "no tlsrpt.spool_dir");
	} else if (strcmp(cmd, "reload") == 0) {
		char why[512];
		if (reload(cp, why, sizeof(why)) == 0)
			fprintf(f, "ok\nreloaded\n");
		else
			fprintf(f, "error: %s\n", why);
	} else {
		fprintf(f, "error: unknown command \"%s\" (status, stats, cache show, cache flush, tlsrpt flush, reload)\n", cmd);
	}
	if (fclose(f) == 0)
		ctl_reply(k, body, blen);
	free(body);
}

static void
ctl_done(struct ctl *k)
{
	/* input left unread would turn the close into a reset that can destroy
	 * the reply in flight: read it away first (bounded) */
	char sink[512];
	for (int i = 0; i < 16 && recv(k->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		;
	event_free(k->ev);
	close(k->fd);
	free(k);
}

static void
on_ctl_read(evutil_socket_t fd, short what, void *arg)
{
	struct ctl *k = arg;
	if (what & EV_TIMEOUT) {
		ctl_done(k);
		return;
	}
	ssize_t n = read(fd, k->line + k->len, CTL_LINE_MAX - k->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 && k->len == 0) {
		ctl_done(k);
		return;
	}
	if (n > 0)
		k->len += (size_t)n;
	k->line[k->len] = '\0';
	char *nl = strchr(k->line, '\n');
	if (!nl && n > 0 && k->len < CTL_LINE_MAX)
		return; /* more to come */
	if (nl)
		*nl = '\0';
	else if (k->len >= CTL_LINE_MAX) {
		static const char msg[] = "error: command line too long\n";
		ctl_reply(k, msg, sizeof(msg) - 1);
		ctl_done(k);
		return;
	}
	ctl_run(k);
	ctl_done(k);
}

static void
on_ctl_accept(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct cp *cp = arg;
	int s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (s < 0)
		return;
	struct ctl *k = calloc(1, sizeof(*k));
	if (!k) {
		close(s);
		return;
	}
	k->cp = cp;
	k->fd = s;
	k->ev = event_new(cp->base, s, EV_READ | EV_PERSIST, on_ctl_read, k);
	struct timeval tmo = {5, 0}; /* an idle client is dropped */
	event_add(k->ev, &tmo);
}

/* ---- setup ---- */

static int
listen_unix(const char *path, int type, char *why, size_t whylen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	if (n >= sizeof(sun.sun_path)) {
		snprintf(why, whylen, "%s: path too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, n + 1);
	int fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	unlink(path); /* a stale socket from a previous run */
	mode_t old = umask(0117);
	int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc != 0 || chmod(path, 0660) != 0 || listen(fd, 16) != 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int
drop_privileges(struct cp *cp, char *why, size_t whylen)
{
	if (!cp->conf.user[0])
		return 0;
	struct passwd *pw = getpwnam(cp->conf.user);
	if (!pw) {
		snprintf(why, whylen, "user %s: no such user", cp->conf.user);
		return -1;
	}
	if (geteuid() == pw->pw_uid && getegid() == pw->pw_gid)
		return 0; /* started as that user already (systemd User=) */
	/* the sockets and the sink file stay usable by the unprivileged daemon
	 * (and by the user's group: the control socket's access control) */
	if (chown(cp->conf.cpm_socket, pw->pw_uid, pw->pw_gid) != 0 ||
	    chown(cp->conf.control_socket, pw->pw_uid, pw->pw_gid) != 0 ||
	    sink_chown(cp->sink, pw->pw_uid, pw->pw_gid) != 0) {
		snprintf(why, whylen, "chown to %s: %s", cp->conf.user, strerror(errno));
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		snprintf(why, whylen, "switching to %s: %s", cp->conf.user, strerror(errno));
		return -1;
	}
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		snprintf(why, whylen, "privileges could be regained after dropping them");
		return -1;
	}
	logmsg("running as %s (uid %u)", pw->pw_name, (unsigned)pw->pw_uid);
	return 0;
}

static void
on_dns(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct cp *cp = arg;
	time_t now = time(NULL);
	dnscache_process(cp->dc, cp->dns, (int64_t)now);
	/* the open TLS-RPT day is written once it is over and quiet */
	int64_t day = cp->rpt ? cprpt_open_day(cp->rpt) : 0;
	if (day && (int64_t)now >= day + CPRPT_DAY && now - cp->last_session >= (time_t)cp->conf.tlsrpt_quiet_s)
		tlsrpt_flush(cp);
	retry_deliveries(cp, now);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct cp *cp = arg;
	if (sig == SIGHUP) {
		char why[512];
		reload(cp, why, sizeof(why));
		return;
	}
	if (sig == SIGUSR1) {
		tlsrpt_flush(cp);
		return;
	}
	logmsg("signal %d: stopping", (int)sig);
	notify("STOPPING=1");
	cp->stopping = true;
	event_base_loopbreak(cp->base);
}

static int
start_sts(struct cp *cp, const struct ws_dns_config *dcfg, char *why, size_t whylen)
{
	const struct cpconf *c = &cp->conf;
	if (!c->sts_enabled)
		return 0;
	struct cpsts_config sc = {
		.dns = *dcfg,
		.fetch = {
			.cache_path = c->sts_cache_file[0] ? c->sts_cache_file : NULL,
			.ca_file = c->sts_ca_file[0] ? c->sts_ca_file : NULL,
			.timeout_ms = c->sts_fetch_timeout_ms,
			.lenient_content_type = c->sts_lenient_ct,
			.test_port = c->sts_test_port,
		},
		.map_key = (const char *const *)c->sts_policy_domains.key,
		.map_domain = (const char *const *)c->sts_policy_domains.value,
		.nmap = c->sts_policy_domains.n,
	};
	char inner[400];
	cp->workers = cpw_new(c->sts_workers, &sc, inner, sizeof(inner));
	if (!cp->workers) {
		snprintf(why, whylen, "sts: %s", inner);
		return -1;
	}
	cp->copybuf = malloc(CPM_MAX_DATAGRAM);
	cp->post_ca = strdup(c->tlsrpt_ca_file);
	if (!cp->copybuf || !cp->post_ca) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	cp->post = (struct cprpt_post_config){
		.ca_file = cp->post_ca[0] ? cp->post_ca : NULL,
		.timeout_ms = c->tlsrpt_post_timeout_ms,
		.test_port = c->tlsrpt_test_port,
	};
	cp->ev_work = event_new(cp->base, cpw_fd(cp->workers), EV_READ | EV_PERSIST, on_work, cp);
	if (!cp->ev_work || event_add(cp->ev_work, NULL)) {
		snprintf(why, whylen, "event setup failed");
		return -1;
	}
	if (c->tlsrpt_spool_dir[0]) {
		struct cprpt_config rc = {
			.spool_dir = c->tlsrpt_spool_dir,
			.organization_name = c->tlsrpt_org[0] ? c->tlsrpt_org : cp->hostname,
			.contact_info = c->tlsrpt_contact,
			.submitter = c->tlsrpt_submitter[0] ? c->tlsrpt_submitter : cp->hostname,
			.own_addresses = (const char *const *)c->tlsrpt_own.v,
			.nown = c->tlsrpt_own.n,
			.on_file = on_report_file,
			.arg = cp,
		};
		cp->rpt = cprpt_new(&rc, inner, sizeof(inner));
		if (!cp->rpt) {
			snprintf(why, whylen, "tlsrpt: %s", inner);
			return -1;
		}
	}
	return 0;
}

static int
start(struct cp *cp, char *why, size_t whylen)
{
	const char *fw[65] = {0};
	size_t nfw = cp->conf.dns_servers.n < 64 ? cp->conf.dns_servers.n : 64;
	for (size_t i = 0; i < nfw; i++)
		fw[i] = cp->conf.dns_servers.v[i];
	struct ws_dns_config dcfg = {
		.zone_file = cp->conf.dns_zone_file[0] ? cp->conf.dns_zone_file : NULL,
		.forwarders = nfw ? fw : NULL,
		.config_file = cp->conf.dns_unbound_conf[0] ? cp->conf.dns_unbound_conf : NULL,
		.trust_anchor_file = cp->conf.dns_trust_anchor_file[0] ? cp->conf.dns_trust_anchor_file : NULL,
		.timeout_ms = cp->conf.dns_timeout_ms,
	};
	char dwhy[256];
	cp->dns = ws_dns_new(&dcfg, dwhy, sizeof(dwhy));
	if (!cp->dns) {
		snprintf(why, whylen, "DNS: %s", dwhy);
		return -1;
	}
	struct dnscache_config dcc = cache_config(&cp->conf);
	cp->dc = dnscache_new(&dcc);
	/* the PSL is the organisational domain with org_domain: psl, and the
	 * cross-check of the tree walk otherwise (as `wireseal verify`) */
	cp->psl = psl_load_file(cp->conf.psl_file);
	if (!cp->psl && strcmp(cp->conf.org_domain, "psl") == 0) {
		snprintf(why, whylen, "policy.psl_file: cannot load %s", cp->conf.psl_file);
		return -1;
	}
	cp->psl_use = cp->psl ? cp->psl : psl_builtin();
	apply_policy_config(cp);
	struct sink_config sc;
	sink_config_of(cp, &sc);
	cp->sink = sink_open(&sc, why, whylen);
	cp->rbuf = malloc(CPM_MAX_DATAGRAM);
	if (!cp->dc || !cp->sink || !cp->rbuf) {
		if (!cp->sink)
			return -1;
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	cp->cpm_fd = listen_unix(cp->conf.cpm_socket, SOCK_SEQPACKET, why, whylen);
	if (cp->cpm_fd < 0)
		return -1;
	cp->ctl_fd = listen_unix(cp->conf.control_socket, SOCK_STREAM, why, whylen);
	if (cp->ctl_fd < 0)
		return -1;
	if (cp->conf.metrics_port) {
		cp->met = met_server_start(cp->base, cp->conf.metrics_listen, cp->conf.metrics_port,
					   render_metrics, cp, why, whylen);
		if (!cp->met)
			return -1;
	}
	if (drop_privileges(cp, why, whylen) != 0)
		return -1;
	/* after the switch: the policy cache and the spool belong to the user */
	if (start_sts(cp, &dcfg, why, whylen) != 0)
		return -1;
	struct timeval tick = {0, 50000}; /* drives DNS timeouts */
	cp->ev_cpm = event_new(cp->base, cp->cpm_fd, EV_READ | EV_PERSIST, on_cpm_accept, cp);
	cp->ev_ctl = event_new(cp->base, cp->ctl_fd, EV_READ | EV_PERSIST, on_ctl_accept, cp);
	cp->ev_dns = event_new(cp->base, ws_dns_fd(cp->dns), EV_READ | EV_PERSIST, on_dns, cp);
	cp->ev_tick = event_new(cp->base, -1, EV_PERSIST, on_dns, cp);
	cp->ev_flush = event_new(cp->base, -1, 0, on_flush, cp);
	cp->ev_hup = evsignal_new(cp->base, SIGHUP, on_signal, cp);
	cp->ev_term = evsignal_new(cp->base, SIGTERM, on_signal, cp);
	cp->ev_int = evsignal_new(cp->base, SIGINT, on_signal, cp);
	cp->ev_usr1 = evsignal_new(cp->base, SIGUSR1, on_signal, cp);
	if (!cp->ev_usr1 || event_add(cp->ev_usr1, NULL)) {
		snprintf(why, whylen, "event setup failed");
		return -1;
	}
	if (!cp->ev_cpm || !cp->ev_ctl || !cp->ev_dns || !cp->ev_tick || !cp->ev_flush ||
	    !cp->ev_hup || !cp->ev_term || !cp->ev_int || event_add(cp->ev_cpm, NULL) ||
	    event_add(cp->ev_ctl, NULL) || event_add(cp->ev_dns, NULL) ||
	    event_add(cp->ev_tick, &tick) || event_add(cp->ev_hup, NULL) ||
	    event_add(cp->ev_term, NULL) || event_add(cp->ev_int, NULL)) {
		snprintf(why, whylen, "event setup failed");
		return -1;
	}
	return 0;
}

static void
stop(struct cp *cp)
{
	cp->stopping = true; /* no new deliveries: reports written now stay in the spool */
	while (cp->conns)
		conn_close(cp->conns, "stopping");
	/* the workers first: their finished jobs still write to the sink, the
	 * rest are dropped (their records were not ACKed: the dataplane re-sends) */
	cpw_free(cp->workers);
	if (cp->ev_work)
		event_free(cp->ev_work);
	if (cp->ev_usr1)
		event_free(cp->ev_usr1);
	/* the open day's counts would be lost: written (not delivered) */
	if (cp->rpt)
		cprpt_flush(cp->rpt);
	cprpt_free(cp->rpt);
	free(cp->post_ca);
	free(cp->copybuf);
	struct event *evs[] = {cp->ev_cpm, cp->ev_ctl, cp->ev_dns, cp->ev_tick, cp->ev_flush,
			       cp->ev_hup, cp->ev_term, cp->ev_int};
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free(evs[i]);
	met_server_stop(cp->met);
	/* the resolver first: it never calls the cache's callbacks again */
	ws_dns_free(cp->dns);
	dnscache_free(cp->dc);
	sink_close(cp->sink);
	if (cp->cpm_fd >= 0) {
		close(cp->cpm_fd);
		unlink(cp->conf.cpm_socket);
	}
	if (cp->ctl_fd >= 0) {
		close(cp->ctl_fd);
		unlink(cp->conf.control_socket);
	}
	psl_free(cp->psl);
	free(cp->rbuf);
	cpconf_free(&cp->conf);
	if (cp->base)
		event_base_free(cp->base);
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: wireseal-cp -c FILE [--check-config]\n"
		   "       wireseal-cp --directives\n"
		   "Runs in the foreground (systemd Type=notify); logs to stderr.\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, 'k'},
		{"directives", no_argument, NULL, 'd'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	bool check = false;
	int opt;
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'd':
			cpconf_describe(stdout);
			return 0;
		case 'V':
			printf("wireseal-cp %s (cpm protocol %u)\n", WS_VERSION, CPM_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!path || optind != argc) {
		usage(stderr);
		return 2;
	}
	static struct cp cp; /* large (dataplane counter table) */
	cp.cpm_fd = cp.ctl_fd = -1;
	cp.config_path = path;
	cp.started = time(NULL);
	gethostname(cp.hostname, sizeof(cp.hostname) - 1);
	char why[512];
	if (load_config(path, &cp.conf, why, sizeof(why)) != 0) {
		fprintf(stderr, "wireseal-cp: %s\n", why);
		return 1;
	}
	if (check) {
		printf("%s: configuration ok\n", path);
		cpconf_free(&cp.conf);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	cp.base = event_base_new();
	int rc = 1;
	if (!cp.base) {
		logmsg("cannot create the event loop");
		goto out;
	}
	if (start(&cp, why, sizeof(why)) != 0) {
		logmsg("%s", why);
		goto out;
	}
	logmsg("ready: cpm %s, control %s, metrics %s:%u", cp.conf.cpm_socket, cp.conf.control_socket,
	       cp.conf.metrics_listen, cp.conf.metrics_port);
	notify("READY=1\nSTATUS=waiting for the dataplane");
	event_base_dispatch(cp.base);
	/* records written but not yet synced are made durable before exit */
	sink_sync(cp.sink);
	rc = 0;
out:
	stop(&cp);
	return rc;
}
