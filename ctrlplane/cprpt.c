/* cprpt: TLS-RPT aggregate reports from session verdicts (see cprpt.h). */
#include "cprpt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "tlsrpt.h"

#define BUCKETS 1024u

struct dom {
	struct dom *next;     /* bucket chain */
	struct dom *all_next; /* every domain of the day */
	struct tlsrpt_agg *agg;
	int idx_sts, idx_nopol; /* policy indices in agg, -1 until used */
	char name[STS_DOMAIN_MAX + 1];
};

struct cprpt {
	struct cprpt_config cfg;
	char *spool, *org, *contact, *submitter;
	char **own;
	size_t nown;
	int64_t day; /* open day's start; 0 = none */
	struct dom *bucket[BUCKETS], *all;
	size_t ndom;
	unsigned seq;
	struct cprpt_stats st;
};

/* An address in one spelling: IPv4 dotted quad (also for ::ffff:a.b.c.d),
 * IPv6 as inet_ntop writes it. false when it is not an address. */
static bool
canon_ip(const char *in, char out[INET6_ADDRSTRLEN])
{
	uint8_t b[16];
	if (inet_pton(AF_INET, in, b) == 1)
		return inet_ntop(AF_INET, b, out, INET6_ADDRSTRLEN) != NULL;
	if (inet_pton(AF_INET6, in, b) != 1)
		return false;
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (memcmp(b, mapped, 12) == 0)
		return inet_ntop(AF_INET, b + 12, out, INET6_ADDRSTRLEN) != NULL;
	return inet_ntop(AF_INET6, b, out, INET6_ADDRSTRLEN) != NULL;
}

static char *
xstrdup(const char *s)
{
	size_t n = strlen(s ? s : "") + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s ? s : "", n);
	return d;
}

struct cprpt *
cprpt_new(const struct cprpt_config *cfg, char *why, size_t whylen)
{
	struct cprpt *r = calloc(1, sizeof(*r));
	if (!r)
		goto oom;
	r->cfg = *cfg;
	r->spool = xstrdup(cfg->spool_dir);
	r->org = xstrdup(cfg->organization_name);
	r->contact = xstrdup(cfg->contact_info);
	r->submitter = xstrdup(cfg->submitter);
	r->own = calloc(cfg->nown + 1, sizeof(char *));
	if (!r->spool || !r->org || !r->contact || !r->submitter || !r->own)
		goto oom;
	for (size_t i = 0; i < cfg->nown; i++) {
		/* compare addresses, not spellings ("::ffff:..." vs dotted quad) */
		char canon[INET6_ADDRSTRLEN];
		const char *a = cfg->own_addresses[i];
		if (!canon_ip(a, canon)) {
			snprintf(why, whylen,
			         "tlsrpt.own_addresses: \"%.100s\" is not an IP address", a);
			cprpt_free(r);
			return NULL;
		}
		if (!(r->own[i] = xstrdup(canon)))
			goto oom;
		r->nown++;
	}
	struct stat sb;
	if (r->spool[0])
		(void)mkdir(r->spool, 0750); /* one level; an existing one is kept as it is */
	if (!r->spool[0] || stat(r->spool, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		snprintf(why, whylen, "tlsrpt.spool_dir: \"%.200s\" is not a directory", r->spool);
		cprpt_free(r);
		return NULL;
	}
	if (strchr(r->submitter, '!') || strchr(r->submitter, '/') || !r->submitter[0]) {
		snprintf(why, whylen, "tlsrpt.submitter: \"%.200s\" is not a domain", r->submitter);
		cprpt_free(r);
		return NULL;
	}
	return r;
oom:
	snprintf(why, whylen, "out of memory");
	cprpt_free(r);
	return NULL;
}

static void
drop_day(struct cprpt *r)
{
	struct dom *d = r->all;
	while (d) {
		struct dom *n = d->all_next;
		tlsrpt_agg_free(d->agg);
		free(d);
		d = n;
	}
	r->all = NULL;
	memset(r->bucket, 0, sizeof(r->bucket));
	r->ndom = 0;
	r->day = 0;
}

void
cprpt_free(struct cprpt *r)
{
	if (!r)
		return;
	drop_day(r);
	for (size_t i = 0; r->own && i < r->nown; i++)
		free(r->own[i]);
	free(r->own);
	free(r->spool);
	free(r->org);
	free(r->contact);
	free(r->submitter);
	free(r);
}

static unsigned
hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % BUCKETS;
}

static struct dom *
dom_get(struct cprpt *r, const char *name)
{
	unsigned h = hash(name);
	for (struct dom *d = r->bucket[h]; d; d = d->next)
		if (strcmp(d->name, name) == 0)
			return d;
	if (r->ndom >= CPRPT_MAX_DOMAINS) {
		r->st.dropped_domains++;
		return NULL;
	}
	struct dom *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	char rid[STS_DOMAIN_MAX + 128];
	char date[21];
	tlsrpt_datetime_format(r->day, date);
	snprintf(rid, sizeof(rid), "%.10s.%s.%u.%lld@%s", date, name, ++r->seq,
	         (long long)time(NULL), r->submitter);
	d->agg = tlsrpt_agg_new(r->org, r->contact, rid, r->day);
	if (!d->agg) {
		free(d);
		return NULL;
	}
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->idx_sts = d->idx_nopol = -1;
	d->next = r->bucket[h];
	r->bucket[h] = d;
	d->all_next = r->all;
	r->all = d;
	r->ndom++;
	return d;
}

static bool
is_own(const struct cprpt *r, struct cpm_str ip)
{
	char t[INET6_ADDRSTRLEN], canon[INET6_ADDRSTRLEN];
	if (cpm_str_copy(ip, t, sizeof(t)) != 0 || !canon_ip(t, canon))
		return false;
	for (size_t i = 0; i < r->nown; i++)
		if (strcmp(r->own[i], canon) == 0)
			return true;
	return false;
}

/* The "sts" policy of d, set up from the policy the first time. */
static int
sts_policy_idx(struct dom *d, const struct cpsts_eval *e)
{
	if (d->idx_sts >= 0)
		return d->idx_sts;
	char lines[STS_POLICY_MAX_MX + 3][STS_DOMAIN_MAX + 16];
	char pats[STS_POLICY_MAX_MX][STS_DOMAIN_MAX + 3];
	const char *ls[STS_POLICY_MAX_MX + 3], *ps[STS_POLICY_MAX_MX];
	size_t nl = 0, np = 0;
	if (e->res == STS_RES_POLICY) {
		const struct sts_policy *p = &e->policy;
		snprintf(lines[nl++], sizeof(lines[0]), "version: STSv1");
		snprintf(lines[nl++], sizeof(lines[0]), "mode: %s", sts_mode_name(p->mode));
		for (unsigned i = 0; i < p->n_mx; i++) {
			snprintf(pats[np], sizeof(pats[0]), "%s%s", p->mx[i].wildcard ? "*." : "",
			         p->mx[i].name);
			snprintf(lines[nl++], sizeof(lines[0]), "mx: %s", pats[np]);
			np++;
		}
		snprintf(lines[nl++], sizeof(lines[0]), "max_age: %u", p->max_age);
	}
	for (size_t i = 0; i < nl; i++)
		ls[i] = lines[i];
	for (size_t i = 0; i < np; i++)
		ps[i] = pats[i];
	d->idx_sts = tlsrpt_agg_policy(d->agg, TLSRPT_PT_STS, d->name, ls, nl, ps, np);
	return d->idx_sts;
}

static int
add_eval(struct cprpt *r, const struct cpm_session *s, const struct cpsts_eval *e)
{
	if (e->source == CPSTS_SRC_UNKNOWN) {
		r->st.unattributed++;
		return 0;
	}
	if (e->v.result == STS_NOT_ASSESSABLE) {
		r->st.not_assessable++;
		return 0;
	}
	struct dom *d = dom_get(r, e->domain);
	if (!d)
		return r->ndom >= CPRPT_MAX_DOMAINS ? 0 : -1;
	int idx;
	enum sts_result_type type = STS_RT_NONE;
	const char *code = NULL;
	bool policy = e->res == STS_RES_POLICY && e->policy.mode != STS_MODE_NONE;
	if (policy) {
		idx = sts_policy_idx(d, e);
		if (e->v.result == STS_FAIL) {
			type = e->v.reason;
			code = e->v.reason_code;
		}
	} else if (e->res == STS_RES_FAILED) {
		idx = sts_policy_idx(d, e);
		type = e->fetch_report != STS_RT_NONE ? e->fetch_report : STS_RT_POLICY_FETCH_ERROR;
	} else {
		if (d->idx_nopol < 0)
			d->idx_nopol = tlsrpt_agg_policy(d->agg, TLSRPT_PT_NO_POLICY, d->name, NULL,
			                                 0, NULL, 0);
		idx = d->idx_nopol;
		if (!s->starttls_offered) {
			type = STS_RT_STARTTLS_NOT_SUPPORTED;
		} else if (!(s->starttls_used && s->tls.server_hello)) {
			type = STS_RT_VALIDATION_FAILURE;
			code = "starttls-not-established";
		}
	}
	if (idx < 0)
		return -1;
	r->st.counted++;
	if (type == STS_RT_NONE)
		return tlsrpt_agg_add(d->agg, idx, NULL, 1);
	char cip[64] = "", sip[64] = "", mx[STS_DOMAIN_MAX + 1];
	(void)cpm_str_copy(s->client.ip, cip, sizeof(cip));
	(void)cpm_str_copy(s->server.ip, sip, sizeof(sip));
	snprintf(mx, sizeof(mx), "%s", e->mx_host);
	char rt[64];
	snprintf(rt, sizeof(rt), "%s", sts_result_type_name(type));
	char codebuf[64];
	snprintf(codebuf, sizeof(codebuf), "%s", code ? code : "");
	struct tlsrpt_failure f = {
	        .type = type,
	        .result_type = rt,
	        .sending_mta_ip = cip[0] ? cip : NULL,
	        .receiving_mx_hostname = mx[0] ? mx : NULL,
	        .receiving_ip = sip[0] ? sip : NULL,
	        .failure_reason_code = code ? codebuf : NULL,
	};
	return tlsrpt_agg_add(d->agg, idx, &f, 1);
}

int
cprpt_add(struct cprpt *r, const struct cpm_session *s, const struct cpsts_result *res)
{
	if (is_own(r, s->client.ip)) {
		r->st.own++;
		return 0;
	}
	int64_t t = (int64_t)(s->ts_usec / 1000000);
	int64_t day = t - t % CPRPT_DAY;
	if (r->day && day > r->day && cprpt_flush(r) < 0)
		return -1;
	if (r->day && day < r->day) {
		r->st.late++;
		return 0;
	}
	r->day = day;
	int rc = 0;
	for (unsigned i = 0; i < res->n; i++)
		if (add_eval(r, s, &res->ev[i]) != 0)
			rc = -1;
	return rc;
}

static int
write_file(struct cprpt *r, struct dom *d, char *path, size_t pathlen)
{
	const struct tlsrpt_report *rep = tlsrpt_agg_report(d->agg);
	char *json = NULL;
	size_t jlen = 0;
	uint8_t *gz = NULL;
	size_t gzlen = 0;
	int rc = -1, fd = -1;
	char name[TLSRPT_FILENAME_MAX], uid[48], tmp[4200];
	snprintf(uid, sizeof(uid), "%lld%u", (long long)time(NULL), r->seq++);
	if (tlsrpt_filename(name, r->submitter, d->name, rep->start, rep->end, uid, true) < 0)
		goto out;
	if ((size_t)snprintf(path, pathlen, "%s/%s", r->spool, name) >= pathlen)
		goto out;
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", r->spool, name);
	if (tlsrpt_report_json(rep, &json, &jlen) != 0 || tlsrpt_gzip(json, jlen, &gz, &gzlen) != 0)
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		goto out;
	size_t off = 0;
	while (off < gzlen) {
		ssize_t n = write(fd, gz + off, gzlen - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out;
		off += (size_t)n;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto out;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		unlink(tmp);
	free(json);
	free(gz);
	return rc;
}

int
cprpt_flush(struct cprpt *r)
{
	if (!r->day)
		return 0;
	int files = 0;
	bool failed = false;
	for (struct dom *d = r->all; d; d = d->all_next) {
		char path[4200];
		if (write_file(r, d, path, sizeof(path)) != 0) {
			r->st.write_errors++;
			failed = true;
			continue;
		}
		files++;
		r->st.files++;
		if (r->cfg.on_file)
			r->cfg.on_file(r->cfg.arg, d->name, path);
	}
	/* a day that could not be written is dropped all the same: keeping it
	 * would block every later day (counted in write_errors) */
	drop_day(r);
	return failed && files == 0 ? -1 : files;
}

int64_t
cprpt_open_day(const struct cprpt *r)
{
	return r->day;
}

const struct cprpt_stats *
cprpt_stats(const struct cprpt *r)
{
	return &r->st;
}

/* ---- delivery ---- */

const char *
cprpt_delivery_name(enum cprpt_delivery d)
{
	static const char *const n[] = {"delivered", "no-endpoint", "failed"};
	return (unsigned)d <= CPRPT_FAILED ? n[d] : "?";
}

static size_t
discard_body(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static int
read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n == cap) {
			if (cap >= TLSRPT_MAX_REPORT_LEN)
				break;
			cap = cap ? cap * 2 : 65536;
			uint8_t *nb = realloc(buf, cap);
			if (!nb)
				break;
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0) {
			if (ferror(f))
				break;
			fclose(f);
			*out = buf;
			*len = n;
			return 0;
		}
	}
	fclose(f);
	free(buf);
	return -1;
}

/* One POST; 0 on a 2xx answer. */
static int
post_one(struct ws_dns *dns, const struct cprpt_post_config *cfg, const char *url,
         const uint8_t *body, size_t len, char *why, size_t whylen)
{
	int rc = -1;
	CURL *c = NULL;
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL;
	struct curl_slist *resolve = NULL, *hdrs = NULL;
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(why, whylen, "%.200s: not a URL", url);
		goto out;
	}
	unsigned p = 443;
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port)
		p = (unsigned)strtoul(port, NULL, 10);
	if (cfg->test_port)
		p = cfg->test_port;
	/* the receiver's address through our DNS layer, like the policy host */
	struct ws_dns_answer *a = ws_dns_query(dns, host, WS_DNS_A);
	char ip[INET6_ADDRSTRLEN] = "";
	for (size_t i = 0; a && a->status == WS_DNS_OK && i < a->count && !ip[0]; i++)
		if (a->rrs[i].type == WS_DNS_A)
			inet_ntop(AF_INET, a->rrs[i].u.a, ip, sizeof(ip));
	ws_dns_answer_free(a);
	if (!ip[0]) {
		snprintf(why, whylen, "%.200s: no address", host);
		goto out;
	}
	char entry[512];
	snprintf(entry, sizeof(entry), "%s:%u:%s", host, p, ip);
	resolve = curl_slist_append(NULL, entry);
	hdrs = curl_slist_append(NULL, "Content-Type: application/tlsrpt+gzip");
	c = curl_easy_init();
	if (!c || !resolve || !hdrs) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PORT, (long)p);
	curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (cfg->ca_file && cfg->ca_file[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(cfg->timeout_ms ? cfg->timeout_ms : 30000));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "wireseal-tlsrpt/1");
	CURLcode cc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK) {
		snprintf(why, whylen, "%.200s: %.200s", url,
		         errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	if (status < 200 || status > 299) {
		snprintf(why, whylen, "%.200s: HTTP %ld", url, status);
		goto out;
	}
	rc = 0;
out:
	curl_easy_cleanup(c);
	curl_slist_free_all(resolve);
	curl_slist_free_all(hdrs);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

enum cprpt_delivery
cprpt_deliver(struct ws_dns *dns, const struct cprpt_post_config *cfg, const char *domain,
              const char *path, char *why, size_t whylen)
{
	char q[STS_DOMAIN_MAX + 16];
	snprintf(q, sizeof(q), "_smtp._tls.%s", domain);
	struct ws_dns_answer *a = ws_dns_query(dns, q, WS_DNS_TXT);
	if (!a) {
		snprintf(why, whylen, "out of memory");
		return CPRPT_FAILED;
	}
	struct tlsrpt_record *rec = malloc(sizeof(*rec)); /* 2 KiB+: not on a worker's stack */
	if (!rec) {
		ws_dns_answer_free(a);
		snprintf(why, whylen, "out of memory");
		return CPRPT_FAILED;
	}
	char w[200];
	enum sts_lookup l = tlsrpt_txt_select(a, rec, w, sizeof(w));
	ws_dns_answer_free(a);
	enum cprpt_delivery res = CPRPT_NO_ENDPOINT;
	if (l == STS_LOOKUP_TEMPFAIL) {
		snprintf(why, whylen, "%s TXT: %s", q, w);
		res = CPRPT_FAILED;
		goto out;
	}
	if (l != STS_LOOKUP_RECORD) {
		snprintf(why, whylen, "%s: %s (%s)", q, sts_lookup_name(l), w);
		goto out;
	}
	uint8_t *body = NULL;
	size_t len = 0;
	snprintf(why, whylen, "%s: no https: rua", q);
	for (unsigned i = 0; i < rec->n_rua; i++) {
		if (rec->rua[i].scheme != TLSRPT_HTTPS)
			continue;
		if (!body && read_file(path, &body, &len) != 0) {
			snprintf(why, whylen, "%.200s: %s", path, strerror(errno));
			res = CPRPT_FAILED;
			break;
		}
		char url[TLSRPT_TXT_MAX_LEN + 1];
		snprintf(url, sizeof(url), "%.*s", (int)rec->rua[i].len,
		         rec->text + rec->rua[i].off);
		if (post_one(dns, cfg, url, body, len, why, whylen) == 0) {
			snprintf(why, whylen, "%.300s", url);
			res = CPRPT_DELIVERED;
			break;
		}
		res = CPRPT_FAILED;
	}
	free(body);
out:
	free(rec);
	return res;
}
