/*
 * sts_fetch: MTA-STS discovery, fetch (libcurl) and cache (SQLite).
 */
#include "sts_fetch.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>

struct sts_fetcher {
	struct sts_fetch_config cfg;
	char *cache_path, *ca_file;
	CURL *curl;
	sqlite3 *db;
	unsigned long fetches;
	char host[STS_DOMAIN_MAX + 16]; /* the policy host of the fetch in progress */
};

const char *
sts_fetch_status_name(enum sts_fetch_status s)
{
	static const char *const names[] = {
		[STS_FETCH_OK] = "ok",
		[STS_FETCH_NO_ADDRESS] = "no-address",
		[STS_FETCH_CONNECT] = "connect",
		[STS_FETCH_TLS] = "tls",
		[STS_FETCH_TIMEOUT] = "timeout",
		[STS_FETCH_REDIRECT] = "redirect",
		[STS_FETCH_HTTP_STATUS] = "http-status",
		[STS_FETCH_CONTENT_TYPE] = "content-type",
		[STS_FETCH_TOO_LARGE] = "too-large",
		[STS_FETCH_INVALID] = "invalid",
		[STS_FETCH_ERROR] = "error",
	};
	return (unsigned)s <= STS_FETCH_ERROR ? names[s] : "?";
}

enum sts_result_type
sts_fetch_result_type(enum sts_fetch_status s)
{
	switch (s) {
	case STS_FETCH_OK:
		return STS_RT_NONE;
	case STS_FETCH_TLS:
		return STS_RT_WEBPKI_INVALID;
	case STS_FETCH_INVALID:
		return STS_RT_POLICY_INVALID;
	default:
		return STS_RT_POLICY_FETCH_ERROR;
	}
}

const char *
sts_resolve_status_name(enum sts_resolve_status s)
{
	switch (s) {
	case STS_RES_POLICY:
		return "policy";
	case STS_RES_NONE:
		return "none";
	case STS_RES_FAILED:
		return "failed";
	}
	return "?";
}

void
sts_fetch_result_clear(struct sts_fetch_result *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static char *
xstrdup(const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

/* ---- cache (SQLite) ---- */

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS sts_policy ("
	" domain TEXT PRIMARY KEY, id TEXT NOT NULL, body BLOB NOT NULL,"
	" fetched_at INTEGER NOT NULL, max_age INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS sts_fetch_fail ("
	" domain TEXT PRIMARY KEY, id TEXT NOT NULL, at INTEGER NOT NULL);";

static int
db_open(struct sts_fetcher *f, char *why, size_t why_len)
{
	const char *path = f->cache_path ? f->cache_path : ":memory:";
	if (sqlite3_open_v2(path, &f->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		snprintf(why, why_len, "cache %s: %s", path, f->db ? sqlite3_errmsg(f->db) : "no memory");
		return -1;
	}
	/* several fetchers (processes) may share the file */
	sqlite3_busy_timeout(f->db, 5000);
	sqlite3_stmt *st = NULL;
	int version = -1;
	if (sqlite3_prepare_v2(f->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version != 0 && version != STS_CACHE_SCHEMA) {
		/* a file written by another version: refused, never guessed at */
		snprintf(why, why_len, "cache %s: schema %d, expected %d", path, version,
			 STS_CACHE_SCHEMA);
		return -1;
	}
	char *err = NULL;
	char sql[sizeof(schema_sql) + 64];
	snprintf(sql, sizeof(sql), "%sPRAGMA user_version=%d;", schema_sql, STS_CACHE_SCHEMA);
	if (sqlite3_exec(f->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		snprintf(why, why_len, "cache %s: %s", path, err ? err : "schema");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

struct cached {
	bool present;
	char id[STS_ID_MAX + 1];
	char *body;
	size_t body_len;
	int64_t fetched_at;
	uint32_t max_age;
};

static void
cached_clear(struct cached *c)
{
	free(c->body);
	memset(c, 0, sizeof(*c));
}

static int
db_load(struct sts_fetcher *f, const char *domain, struct cached *c)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;
	memset(c, 0, sizeof(*c));
	if (sqlite3_prepare_v2(f->db,
			       "SELECT id, body, fetched_at, max_age FROM sts_policy WHERE domain=?1",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if (s == SQLITE_DONE) {
		rc = 0;
		goto out;
	}
	if (s != SQLITE_ROW)
		goto out;
	const char *id = (const char *)sqlite3_column_text(st, 0);
	const void *body = sqlite3_column_blob(st, 1);
	int blen = sqlite3_column_bytes(st, 1);
	if (!id || strlen(id) > STS_ID_MAX || blen < 0 || (size_t)blen > STS_POLICY_MAX_LEN)
		goto out; /* a damaged row: treated as a cache error */
	c->body = malloc((size_t)blen + 1);
	if (!c->body)
		goto out;
	if (blen)
		memcpy(c->body, body, (size_t)blen);
	c->body[blen] = '\0';
	c->body_len = (size_t)blen;
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->fetched_at = sqlite3_column_int64(st, 2);
	c->max_age = (uint32_t)sqlite3_column_int64(st, 3);
	c->present = true;
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* Runs sql with ?1 = domain and, when the statement has them, ?2 = id and
 * then either the body blob and two integers (policy rows) or two integers. */
static int
db_exec_bind(struct sts_fetcher *f, const char *sql, const char *domain, const char *id,
	     const char *body, size_t body_len, int64_t a, int64_t b)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;
	if (sqlite3_prepare_v2(f->db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	int n = sqlite3_bind_parameter_count(st), k = 1;
	sqlite3_bind_text(st, k++, domain, -1, SQLITE_STATIC);
	if (n >= k)
		sqlite3_bind_text(st, k++, id, -1, SQLITE_STATIC);
	if (body && n >= k)
		sqlite3_bind_blob(st, k++, body, (int)body_len, SQLITE_STATIC);
	if (n >= k)
		sqlite3_bind_int64(st, k++, a);
	if (n >= k)
		sqlite3_bind_int64(st, k++, b);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
out:
	sqlite3_finalize(st);
	return rc;
}

static int
db_store(struct sts_fetcher *f, const char *domain, const char *id, const char *body,
	 size_t body_len, int64_t now, uint32_t max_age)
{
	if (max_age == 0) /* "do not cache" (STS-POL-2): and forget an older one */
		return db_exec_bind(f, "DELETE FROM sts_policy WHERE domain=?1", domain, NULL, NULL,
				    0, 0, 0);
	return db_exec_bind(f,
			    "INSERT OR REPLACE INTO sts_policy(domain, id, body, fetched_at, max_age)"
			    " VALUES(?1, ?2, ?3, ?4, ?5)",
			    domain, id, body, body_len, now, max_age);
}

static int
db_fail_get(struct sts_fetcher *f, const char *domain, char id[STS_ID_MAX + 1], int64_t *at)
{
	sqlite3_stmt *st = NULL;
	id[0] = '\0';
	*at = 0;
	if (sqlite3_prepare_v2(f->db, "SELECT id, at FROM sts_fetch_fail WHERE domain=?1", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		snprintf(id, STS_ID_MAX + 1, "%s", t ? t : "");
		*at = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return s == SQLITE_ROW || s == SQLITE_DONE ? 0 : -1;
}

/* ---- HTTPS fetch (libcurl) ---- */

struct body_buf {
	char *p;
	size_t len;
	bool too_large;
};

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct body_buf *b = arg;
	size_t n = size * nmemb;
	/* the limit holds while streaming (chunked) as well as by Content-Length */
	if (b->len + n > STS_POLICY_MAX_LEN) {
		b->too_large = true;
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return n;
}

/* Narrow OpenSSL's own verification to what RFC 8461 3.3 allows: the SAN
 * dNSName must match the policy host, CN is never used, and a wildcard must
 * be a whole label. curl checks the name again afterwards (CN fallback
 * included); this runs first, so a CN-only certificate fails here. */
static CURLcode
on_ssl_ctx(CURL *curl, void *ssl_ctx, void *arg)
{
	(void)curl;
	struct sts_fetcher *f = arg;
	X509_VERIFY_PARAM *param = SSL_CTX_get0_param((SSL_CTX *)ssl_ctx);
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
						       X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (X509_VERIFY_PARAM_set1_host(param, f->host, 0) != 1)
		return CURLE_SSL_CERTPROBLEM;
	return CURLE_OK;
}

/* "text/plain", "Text/Plain ; charset=utf-8": yes. Parameters are ignored. */
static bool
media_is_text_plain(const char *ct)
{
	if (!ct)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	size_t n = strcspn(ct, "; \t");
	if (n != 10 || strncasecmp(ct, "text/plain", 10) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

static int
host_addrs(struct sts_fetcher *f, char *out, size_t cap, char *why, size_t why_len)
{
	size_t len = 0;
	unsigned n = 0;
	bool temp = false;
	enum ws_dns_type types[2] = {WS_DNS_A, WS_DNS_AAAA};
	for (int t = 0; t < 2; t++) {
		struct ws_dns_answer *a = ws_dns_query(f->cfg.dns, f->host, types[t]);
		if (!a) {
			snprintf(why, why_len, "out of memory");
			return -1;
		}
		if (a->status == WS_DNS_TEMPFAIL || a->status == WS_DNS_BOGUS)
			temp = true;
		for (size_t i = 0; a->status == WS_DNS_OK && i < a->count; i++) {
			char ip[INET6_ADDRSTRLEN + 2];
			if (a->rrs[i].type == WS_DNS_A) {
				inet_ntop(AF_INET, a->rrs[i].u.a, ip, sizeof(ip));
			} else if (a->rrs[i].type == WS_DNS_AAAA) {
				char v6[INET6_ADDRSTRLEN];
				inet_ntop(AF_INET6, a->rrs[i].u.aaaa, v6, sizeof(v6));
				snprintf(ip, sizeof(ip), "[%s]", v6);
			} else {
				continue;
			}
			int w = snprintf(out + len, cap - len, "%s%s", n ? "," : "", ip);
			if (w < 0 || (size_t)w >= cap - len)
				break; /* enough addresses */
			len += (size_t)w;
			n++;
		}
		ws_dns_answer_free(a);
	}
	if (n == 0) {
		snprintf(why, why_len, "%.260s: %s", f->host, temp ? "DNS temporary failure" : "no address");
		return -1;
	}
	return 0;
}

int
sts_fetch_policy(struct sts_fetcher *f, const char *domain, struct sts_fetch_result *out)
{
	memset(out, 0, sizeof(*out));
	struct body_buf body = {NULL, 0, false};
	struct curl_slist *resolve = NULL;
	char url[STS_DOMAIN_MAX + 96], addrs[512], entry[STS_DOMAIN_MAX + 600];
	char errbuf[CURL_ERROR_SIZE] = "";
	unsigned port = f->cfg.test_port ? f->cfg.test_port : 443;
	f->fetches++;
	if (strlen(domain) > STS_DOMAIN_MAX - 8) {
		out->status = STS_FETCH_ERROR;
		snprintf(out->why, sizeof(out->why), "domain too long");
		return -1;
	}
	snprintf(f->host, sizeof(f->host), "mta-sts.%s", domain);
	if (host_addrs(f, addrs, sizeof(addrs), out->why, sizeof(out->why)) < 0) {
		out->status = STS_FETCH_NO_ADDRESS;
		return -1;
	}
	snprintf(entry, sizeof(entry), "%s:%u:%s", f->host, port, addrs);
	resolve = curl_slist_append(NULL, entry);
	body.p = malloc(STS_POLICY_MAX_LEN + 1);
	if (!resolve || !body.p) {
		out->status = STS_FETCH_ERROR;
		snprintf(out->why, sizeof(out->why), "out of memory");
		goto fail;
	}
	if (port == 443)
		snprintf(url, sizeof(url), "https://%s/.well-known/mta-sts.txt", f->host);
	else
		snprintf(url, sizeof(url), "https://%s:%u/.well-known/mta-sts.txt", f->host, port);

	CURL *c = f->curl;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* STS-FETCH-4 */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
	curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, f);
	if (f->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, f->ca_file);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)f->cfg.timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	/* a fresh connection each time: no session or connection reuse
	 * carries trust from one fetch to the next */
	curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	/* Content-Length over the limit stops before the body */
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)STS_POLICY_MAX_LEN);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "wireseal-mta-sts/1");

	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->http_status);
	if (rc != CURLE_OK) {
		const char *msg = errbuf[0] ? errbuf : curl_easy_strerror(rc);
		switch (rc) {
		case CURLE_WRITE_ERROR:
		case CURLE_FILESIZE_EXCEEDED:
			out->status = body.too_large || rc == CURLE_FILESIZE_EXCEEDED ? STS_FETCH_TOO_LARGE
										      : STS_FETCH_ERROR;
			break;
		case CURLE_OPERATION_TIMEDOUT:
			out->status = STS_FETCH_TIMEOUT;
			break;
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
			out->status = STS_FETCH_CONNECT;
			break;
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_INVALIDCERTSTATUS:
		case CURLE_USE_SSL_FAILED:
			out->status = STS_FETCH_TLS;
			break;
		default:
			out->status = STS_FETCH_ERROR;
			break;
		}
		snprintf(out->why, sizeof(out->why), "%.260s: %.200s", f->host, msg);
		goto fail;
	}
	if (out->http_status >= 300 && out->http_status < 400) {
		out->status = STS_FETCH_REDIRECT;
		snprintf(out->why, sizeof(out->why), "%.260s: HTTP %ld redirect (not followed)", f->host,
			 out->http_status);
		goto fail;
	}
	if (out->http_status != 200) {
		out->status = STS_FETCH_HTTP_STATUS;
		snprintf(out->why, sizeof(out->why), "%.260s: HTTP %ld", f->host, out->http_status);
		goto fail;
	}
	char *ct = NULL;
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
	if (!media_is_text_plain(ct)) {
		if (!f->cfg.lenient_content_type) {
			out->status = STS_FETCH_CONTENT_TYPE;
			snprintf(out->why, sizeof(out->why), "%.260s: media type %.100s, not text/plain", f->host,
				 ct ? ct : "(none)");
			goto fail;
		}
		out->content_type_lax = true;
	}
	char pwhy[160];
	if (sts_policy_parse(body.p, body.len, &out->policy, pwhy, sizeof(pwhy)) != STS_POL_OK) {
		out->status = STS_FETCH_INVALID;
		snprintf(out->why, sizeof(out->why), "%.260s: policy: %.160s", f->host, pwhy);
		goto fail;
	}
	body.p[body.len] = '\0';
	out->status = STS_FETCH_OK;
	out->body = body.p;
	out->body_len = body.len;
	curl_slist_free_all(resolve);
	/* extension spans point into the body we hand over: still valid */
	return 0;
fail:
	free(body.p);
	curl_slist_free_all(resolve);
	return -1;
}

/* ---- the fetcher ---- */

struct sts_fetcher *
sts_fetcher_new(const struct sts_fetch_config *cfg, char *why, size_t why_len)
{
	struct sts_fetcher *f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	f->cfg = *cfg;
	if (!f->cfg.timeout_ms)
		f->cfg.timeout_ms = STS_FETCH_TIMEOUT_MS;
	if (!cfg->dns) {
		snprintf(why, why_len, "no resolver");
		goto fail;
	}
	f->cache_path = xstrdup(cfg->cache_path);
	f->ca_file = xstrdup(cfg->ca_file);
	f->cfg.cache_path = f->cache_path;
	f->cfg.ca_file = f->ca_file;
	if ((cfg->cache_path && !f->cache_path) || (cfg->ca_file && !f->ca_file)) {
		snprintf(why, why_len, "out of memory");
		goto fail;
	}
	/* thread-safe and reference-counted since curl 7.84 (we need 7.85) */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(f->curl = curl_easy_init())) {
		snprintf(why, why_len, "libcurl init failed");
		goto fail;
	}
	if (db_open(f, why, why_len) < 0)
		goto fail;
	return f;
fail:
	sts_fetcher_free(f);
	return NULL;
}

void
sts_fetcher_free(struct sts_fetcher *f)
{
	if (!f)
		return;
	if (f->curl)
		curl_easy_cleanup(f->curl);
	if (f->db)
		sqlite3_close(f->db);
	free(f->cache_path);
	free(f->ca_file);
	free(f);
}

unsigned long
sts_fetcher_fetches(const struct sts_fetcher *f)
{
	return f->fetches;
}

/* Fill out from a cached row (already known valid at now). */
static int
use_cached(struct sts_resolved *out, const struct cached *c)
{
	char why[128];
	/* the stored body was valid when stored; a parse failure means the
	 * file was damaged or the parser changed: a cache error */
	if (sts_policy_parse(c->body, c->body_len, &out->policy, why, sizeof(why)) != STS_POL_OK) {
		snprintf(out->why, sizeof(out->why), "cached policy no longer parses: %.200s", why);
		return -1;
	}
	/* extension spans would point into c->body, which the caller frees */
	out->policy.n_ext = 0;
	out->status = STS_RES_POLICY;
	out->from_cache = true;
	snprintf(out->id, sizeof(out->id), "%s", c->id);
	out->fetched_at = c->fetched_at;
	out->expires_at = c->fetched_at + c->max_age;
	return 0;
}

int
sts_resolve(struct sts_fetcher *f, const char *domain_in, int64_t now, struct sts_resolved *out)
{
	memset(out, 0, sizeof(*out));
	char domain[STS_DOMAIN_MAX + 2], qname[STS_DOMAIN_MAX + 16];
	size_t dl = strlen(domain_in);
	if (dl && domain_in[dl - 1] == '.')
		dl--;
	if (dl == 0 || dl > STS_DOMAIN_MAX) {
		snprintf(out->why, sizeof(out->why), "bad domain");
		return -1;
	}
	for (size_t i = 0; i < dl; i++)
		domain[i] = (char)((domain_in[i] >= 'A' && domain_in[i] <= 'Z') ? domain_in[i] + 32
										: domain_in[i]);
	domain[dl] = '\0';
	/* STS-TXT-10: an address literal has no policy domain */
	struct in6_addr a6;
	if (domain[0] == '[' || inet_pton(AF_INET, domain, &a6) == 1 ||
	    inet_pton(AF_INET6, domain, &a6) == 1) {
		out->status = STS_RES_NONE;
		snprintf(out->why, sizeof(out->why), "address literal: no policy domain");
		return 0;
	}

	struct cached c;
	if (db_load(f, domain, &c) < 0) {
		snprintf(out->why, sizeof(out->why), "cache read: %.300s", sqlite3_errmsg(f->db));
		return -1;
	}
	bool valid = c.present && now < c.fetched_at + (int64_t)c.max_age;
	int rc = 0;

	/* RFC 8461 3.1 / 5.1: the TXT record, through CNAMEs (the resolver) */
	snprintf(qname, sizeof(qname), "_mta-sts.%s", domain);
	struct ws_dns_answer *a = ws_dns_query(f->cfg.dns, qname, WS_DNS_TXT);
	if (!a) {
		snprintf(out->why, sizeof(out->why), "out of memory");
		rc = -1;
		goto done;
	}
	struct sts_record rec;
	char why[200];
	enum sts_lookup l = sts_txt_select(a, &rec, why, sizeof(why));
	ws_dns_answer_free(a);

	if (l != STS_LOOKUP_RECORD) {
		if (valid) {
			/* the TXT record went away or DNS failed: a cached
			 * policy still applies until it expires (STS-CACHE-2,
			 * STS-TXT-8, STS-FETCH-10) */
			rc = use_cached(out, &c);
			snprintf(out->why, sizeof(out->why), "TXT %s (%.200s); cached policy applies",
				 sts_lookup_name(l), why);
			goto done;
		}
		if (l == STS_LOOKUP_TEMPFAIL) {
			/* a transient error is not "no policy" (STS-TXT-8) */
			out->status = STS_RES_FAILED;
			out->report = STS_RT_POLICY_FETCH_ERROR;
		} else {
			out->status = STS_RES_NONE;
		}
		snprintf(out->why, sizeof(out->why), "TXT %s: %.200s", sts_lookup_name(l), why);
		goto done;
	}

	bool same_id = valid && strcmp(c.id, rec.id) == 0;
	/* refresh before expiry: daily, or at half of a shorter max_age, so a
	 * policy in use never lapses between two fetches (STS-CACHE-3) */
	int64_t age = now - c.fetched_at;
	bool refresh_due = same_id && (age >= STS_REFRESH_S || age >= (int64_t)c.max_age / 2);
	if (same_id && !refresh_due) {
		rc = use_cached(out, &c);
		snprintf(out->why, sizeof(out->why), "cached, id %s", c.id);
		goto done;
	}
	/* STS-FETCH-8: the same id failed less than STS_FETCH_RETRY_S ago */
	char fail_id[STS_ID_MAX + 1];
	int64_t fail_at;
	if (db_fail_get(f, domain, fail_id, &fail_at) < 0) {
		snprintf(out->why, sizeof(out->why), "cache read: %.300s", sqlite3_errmsg(f->db));
		rc = -1;
		goto done;
	}
	struct sts_fetch_result fr;
	memset(&fr, 0, sizeof(fr));
	bool backoff = strcmp(fail_id, rec.id) == 0 && now >= fail_at && now - fail_at < STS_FETCH_RETRY_S;
	if (!backoff) {
		out->fetched = true;
		if (sts_fetch_policy(f, domain, &fr) == 0) {
			if (db_store(f, domain, rec.id, fr.body, fr.body_len, now, fr.policy.max_age) < 0 ||
			    db_exec_bind(f, "DELETE FROM sts_fetch_fail WHERE domain=?1", domain, NULL,
					 NULL, 0, 0, 0) < 0) {
				snprintf(out->why, sizeof(out->why), "cache write: %.300s",
					 sqlite3_errmsg(f->db));
				sts_fetch_result_clear(&fr);
				rc = -1;
				goto done;
			}
			out->status = STS_RES_POLICY;
			out->policy = fr.policy;
			out->policy.n_ext = 0; /* spans into fr.body, freed below */
			snprintf(out->id, sizeof(out->id), "%s", rec.id);
			out->fetched_at = now;
			out->expires_at = now + fr.policy.max_age;
			snprintf(out->why, sizeof(out->why), "fetched, id %s", rec.id);
			sts_fetch_result_clear(&fr);
			goto done;
		}
		/* a failure to record the failure only weakens the backoff */
		(void)db_exec_bind(f, "INSERT OR REPLACE INTO sts_fetch_fail(domain, id, at)"
				   " VALUES(?1, ?2, ?3)", domain, rec.id, NULL, 0, now, 0);
		out->report = sts_fetch_result_type(fr.status);
	} else {
		out->report = STS_RT_POLICY_FETCH_ERROR;
		snprintf(fr.why, sizeof(fr.why), "id %s failed %llds ago; next try after %ds", rec.id,
			 (long long)(now - fail_at), STS_FETCH_RETRY_S);
	}
	if (valid) {
		/* keep the cached, unexpired policy until a fetch succeeds */
		rc = use_cached(out, &c);
		out->refresh_failed = out->policy.mode != STS_MODE_NONE;
		snprintf(out->why, sizeof(out->why), "%.400s; cached id %s applies", fr.why, c.id);
	} else {
		/* STS-FETCH-9: as if the domain had no MTA-STS; report */
		out->status = STS_RES_FAILED;
		snprintf(out->why, sizeof(out->why), "%s", fr.why);
	}
	sts_fetch_result_clear(&fr);
done:
	cached_clear(&c);
	return rc;
}
