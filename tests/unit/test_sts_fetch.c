/*
 * sts_fetch against real servers on loopback: nsd (tests/harness/dnsd.py)
 * serving tests/data/sts/stsrig.net.zone, nginx and a small Python HTTPS
 * server (tests/harness/stsd.py) with a test CA and certificates made at
 * start. Covers the rows of conformance/mta-sts cases.json and mox
 * fetch-vectors that need HTTP/TLS, the mapping to TLS-RPT result types, and
 * the cache (on disk, across a restart) with an injected clock: id change,
 * failed refetch and its backoff, TXT gone, expiry, DNS failure, daily
 * refresh, max_age 0, opt-out with mode none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "sts_fetch.h"
#include "testutil.h"

static const char *
need_env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v)
		fail_msg("%s is not set: run this test through tests/harness/stsd.py and dnsd.py "
			 "(meson test does)", name);
	return v;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct rig {
	struct ws_dns *dns;
	struct sts_fetcher *f;
};

static void
rig_open(struct rig *r, const struct ws_dns_config *dcfg, const char *cache, unsigned port,
	 unsigned timeout_ms, bool lenient)
{
	char why[512];
	r->dns = ws_dns_new(dcfg, why, sizeof(why));
	if (!r->dns)
		fail_msg("resolver: %s", why);
	struct sts_fetch_config cfg = {.dns = r->dns, .cache_path = cache,
				       .ca_file = need_env("WS_STS_CA"), .timeout_ms = timeout_ms,
				       .lenient_content_type = lenient, .test_port = port};
	r->f = sts_fetcher_new(&cfg, why, sizeof(why));
	if (!r->f)
		fail_msg("fetcher: %s", why);
}

static void
rig_close(struct rig *r)
{
	sts_fetcher_free(r->f);
	ws_dns_free(r->dns);
}

/* The nsd world, through the unbound.conf of dnsd.py (blackhole included). */
static void
rig_nsd(struct rig *r, unsigned port, unsigned timeout_ms, bool lenient)
{
	struct ws_dns_config d = {.config_file = need_env("WS_DNSD_UNBOUND_CONF"), .timeout_ms = 1500};
	rig_open(r, &d, NULL, port, timeout_ms, lenient);
}

static unsigned
https_port(void)
{
	return (unsigned)atoi(need_env("WS_STS_HTTPS_PORT"));
}

/* ------------------------------------------------------------ fetch rows */

struct fetch_row {
	const char *domain;
	enum sts_fetch_status st;
	enum sts_result_type rt;
	long http;
};

static const struct fetch_row fetch_rows[] = {
	/* cases.json VALID rows */
	{"good", STS_FETCH_OK, STS_RT_NONE, 200},
	{"valid-none", STS_FETCH_OK, STS_RT_NONE, 200},
	{"testing", STS_FETCH_OK, STS_RT_NONE, 200},
	/* our addition (research 7.2 item 9): media type parameters are ignored */
	{"charset", STS_FETCH_OK, STS_RT_NONE, 200},
	/* a wildcard certificate *.wild covers mta-sts.wild (RFC 8461 3.3) */
	{"wild", STS_FETCH_OK, STS_RT_NONE, 200},
	/* a body of exactly STS_POLICY_MAX_LEN bytes, and one byte more (mox: +2) */
	{"limit-at", STS_FETCH_OK, STS_RT_NONE, 200},
	{"limit-past", STS_FETCH_TOO_LARGE, STS_RT_POLICY_FETCH_ERROR, 200},
	/* cases.json FETCH_ERROR rows */
	{"bad-policy1", STS_FETCH_INVALID, STS_RT_POLICY_INVALID, 200},
	{"bad-policy2", STS_FETCH_INVALID, STS_RT_POLICY_INVALID, 200},
	/* text/html: our choice is sts-policy-fetch-error (the response is not
	 * a policy file; its body is never parsed) */
	{"bad-policy3", STS_FETCH_CONTENT_TYPE, STS_RT_POLICY_FETCH_ERROR, 200},
	/* a valid body with status 404. mox's vectors call a 404 "no-policy";
	 * postfix-mta-sts-resolver calls it FETCH_ERROR; so do we (the record
	 * exists, the policy cannot be had: STS-FETCH-9, reported) */
	{"bad-policy4", STS_FETCH_HTTP_STATUS, STS_RT_POLICY_FETCH_ERROR, 404},
	{"bad-policy5", STS_FETCH_INVALID, STS_RT_POLICY_INVALID, 200},
	{"bad-policy6", STS_FETCH_INVALID, STS_RT_POLICY_INVALID, 200},
	{"bad-policy7", STS_FETCH_INVALID, STS_RT_POLICY_INVALID, 200},
	{"bad-policy8", STS_FETCH_INVALID, STS_RT_POLICY_INVALID, 200},
	{"bad-cert1", STS_FETCH_TLS, STS_RT_WEBPKI_INVALID, 0},
	{"bad-cert2", STS_FETCH_TLS, STS_RT_WEBPKI_INVALID, 0},
	{"static-overlength", STS_FETCH_TOO_LARGE, STS_RT_POLICY_FETCH_ERROR, 200},
	/* mox: expired certificate, 301 never followed, 500, NXDOMAIN host */
	{"expired", STS_FETCH_TLS, STS_RT_WEBPKI_INVALID, 0},
	{"redirect", STS_FETCH_REDIRECT, STS_RT_POLICY_FETCH_ERROR, 301},
	{"e500", STS_FETCH_HTTP_STATUS, STS_RT_POLICY_FETCH_ERROR, 500},
	{"nohost", STS_FETCH_NO_ADDRESS, STS_RT_POLICY_FETCH_ERROR, 0},
	/* project edge cases: a CN-only certificate and a partial-label
	 * wildcard ("mta*.partial") are refused (SAN dNSName, whole labels) */
	/* chasquid TestHTTPGet: text/json and an unparsable media type are
	 * refused; so is a type that only starts with text/plain */
	{"ctype-json", STS_FETCH_CONTENT_TYPE, STS_RT_POLICY_FETCH_ERROR, 200},
	{"ctype-bad", STS_FETCH_CONTENT_TYPE, STS_RT_POLICY_FETCH_ERROR, 200},
	{"ctype-prefix", STS_FETCH_CONTENT_TYPE, STS_RT_POLICY_FETCH_ERROR, 200},
	{"cn-only", STS_FETCH_TLS, STS_RT_WEBPKI_INVALID, 0},
	{"partial", STS_FETCH_TLS, STS_RT_WEBPKI_INVALID, 0},
};

static void
test_fetch_rows(void **state)
{
	(void)state;
	struct rig r;
	rig_nsd(&r, https_port(), 5000, false);
	for (size_t i = 0; i < sizeof(fetch_rows) / sizeof(fetch_rows[0]); i++) {
		const struct fetch_row *row = &fetch_rows[i];
		char domain[128];
		snprintf(domain, sizeof(domain), "%s.stsrig.net", row->domain);
		struct sts_fetch_result res;
		int rc = sts_fetch_policy(r.f, domain, &res);
		if (res.status != row->st || (rc == 0) != (row->st == STS_FETCH_OK) ||
		    res.http_status != row->http)
			fail_msg("%s: %s (HTTP %ld) want %s (HTTP %ld): %s", row->domain,
				 sts_fetch_status_name(res.status), res.http_status,
				 sts_fetch_status_name(row->st), row->http, res.why);
		assert_int_equal(sts_fetch_result_type(res.status), row->rt);
		if (rc == 0)
			assert_non_null(res.body);
		sts_fetch_result_clear(&res);
	}
	/* details of two rows */
	struct sts_fetch_result res;
	assert_int_equal(sts_fetch_policy(r.f, "valid-none.stsrig.net", &res), 0);
	assert_int_equal(res.policy.mode, STS_MODE_NONE);
	assert_int_equal(res.policy.max_age, 86400);
	sts_fetch_result_clear(&res);
	assert_int_equal(sts_fetch_policy(r.f, "good.stsrig.net", &res), 0);
	assert_int_equal(res.policy.mode, STS_MODE_ENFORCE);
	assert_string_equal(res.policy.mx[0].name, "mail.loc");
	sts_fetch_result_clear(&res);
	assert_int_equal(sts_fetcher_fetches(r.f), sizeof(fetch_rows) / sizeof(fetch_rows[0]) + 2);
	rig_close(&r);

	/* what nginx saw: SNI = the policy host, and the redirect target was
	 * never asked for */
	size_t len;
	char *log = tu_read_file(need_env("WS_STS_ACCESS_LOG"), &len);
	assert_non_null(log);
	assert_non_null(strstr(log, "mta-sts.good.stsrig.net /.well-known/mta-sts.txt 200"));
	assert_non_null(strstr(log, "mta-sts.redirect.stsrig.net /.well-known/mta-sts.txt 301"));
	assert_null(strstr(log, "/other"));
	free(log);
}

static void
test_fetch_lenient_content_type(void **state)
{
	(void)state;
	struct rig r;
	rig_nsd(&r, https_port(), 5000, true);
	struct sts_fetch_result res;
	assert_int_equal(sts_fetch_policy(r.f, "bad-policy3.stsrig.net", &res), 0);
	assert_true(res.content_type_lax);
	sts_fetch_result_clear(&res);
	rig_close(&r);
}

static void
test_fetch_streamed_and_slow(void **state)
{
	(void)state;
	struct rig r;
	rig_nsd(&r, (unsigned)atoi(need_env("WS_STS_SLOW_PORT")), 1500, false);
	struct sts_fetch_result res;
	/* chunked, no Content-Length: the limit holds while streaming */
	assert_int_equal(sts_fetch_policy(r.f, "chunked-overlength.stsrig.net", &res), -1);
	if (res.status != STS_FETCH_TOO_LARGE)
		fail_msg("chunked: %s: %s", sts_fetch_status_name(res.status), res.why);
	sts_fetch_result_clear(&res);
	/* a server that stalls mid-body: the whole fetch is time-limited */
	uint64_t t0 = now_ms();
	assert_int_equal(sts_fetch_policy(r.f, "slow.stsrig.net", &res), -1);
	uint64_t took = now_ms() - t0;
	if (res.status != STS_FETCH_TIMEOUT)
		fail_msg("slow: %s: %s", sts_fetch_status_name(res.status), res.why);
	assert_true(took >= 1400 && took < 4000);
	assert_int_equal(sts_fetch_result_type(res.status), STS_RT_POLICY_FETCH_ERROR);
	sts_fetch_result_clear(&res);
	rig_close(&r);
}

/* ------------------------------------------------------------ resolve rows */

static void
test_resolve_rows(void **state)
{
	(void)state;
	struct {
		const char *domain;
		enum sts_resolve_status st;
		enum sts_result_type report;
	} rows[] = {
		{"good", STS_RES_POLICY, STS_RT_NONE},
		/* cases.json NONE rows: no TXT, v= not first, garbage, v=STSv12 */
		{"no-record", STS_RES_NONE, STS_RT_NONE},
		{"bad-record1", STS_RES_NONE, STS_RT_NONE},
		{"bad-record2", STS_RES_NONE, STS_RT_NONE},
		{"bad-record3", STS_RES_NONE, STS_RT_NONE},
		/* two records: no available policy */
		{"multiple", STS_RES_NONE, STS_RT_NONE},
		{"nothing-here", STS_RES_NONE, STS_RT_NONE},
		/* mail to a subdomain: only its own _mta-sts is asked, never the
		 * parent's (RFC 8461 3.4; good.stsrig.net has a policy) */
		{"sub.good", STS_RES_NONE, STS_RT_NONE},
		/* mox a.cnames.example: the CNAME chain is followed */
		{"a.cnames", STS_RES_POLICY, STS_RT_NONE},
		/* FETCH_ERROR rows: deliver as without MTA-STS, report */
		{"bad-policy1", STS_RES_FAILED, STS_RT_POLICY_INVALID},
		{"bad-policy4", STS_RES_FAILED, STS_RT_POLICY_FETCH_ERROR},
		{"bad-cert1", STS_RES_FAILED, STS_RT_WEBPKI_INVALID},
		{"nohost", STS_RES_FAILED, STS_RT_POLICY_FETCH_ERROR},
		/* blackhole.loc: a DNS timeout is a fetch error, not "none" */
		{"blackhole", STS_RES_FAILED, STS_RT_POLICY_FETCH_ERROR},
	};
	struct rig r;
	rig_nsd(&r, https_port(), 5000, false);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char domain[128];
		snprintf(domain, sizeof(domain), "%s.stsrig.net", rows[i].domain);
		struct sts_resolved res;
		uint64_t t0 = now_ms();
		assert_int_equal(sts_resolve(r.f, domain, 1700000000, &res), 0);
		if (res.status != rows[i].st || res.report != rows[i].report)
			fail_msg("%s: %s/%s: %s", rows[i].domain, sts_resolve_status_name(res.status),
				 sts_result_type_name(res.report), res.why);
		/* bounded by the DNS timeout (1.5 s) and a fetch */
		assert_true(now_ms() - t0 < 4000);
	}
	/* address literals have no policy (RFC 8461 3.4): no query at all */
	const char *literals[] = {"[192.0.2.1]", "192.0.2.1", "[IPv6:2001:db8::1]", "2001:db8::1"};
	for (size_t i = 0; i < 4; i++) {
		struct sts_resolved lit;
		assert_int_equal(sts_resolve(r.f, literals[i], 1700000000, &lit), 0);
		assert_int_equal(lit.status, STS_RES_NONE);
		assert_non_null(strstr(lit.why, "address literal"));
	}
	/* a trailing dot and upper case name the same domain */
	struct sts_resolved res;
	assert_int_equal(sts_resolve(r.f, "GOOD.stsrig.net.", 1700000100, &res), 0);
	assert_int_equal(res.status, STS_RES_POLICY);
	assert_true(res.from_cache);
	rig_close(&r);
}

/* ------------------------------------------------------------ cache */

static char tmpdir[256];

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
write_zone(const char *path, const char *id)
{
	char z[1024];
	snprintf(z, sizeof(z),
		 "$ORIGIN stsrig.net.\n$TTL 300\n@ IN SOA ns1 hostmaster ( 1 3600 600 86400 60 )\n"
		 "  NS ns1\nns1 A 127.0.0.1\nmta-sts.cache A 127.0.0.1\n%s%s%s",
		 id ? "_mta-sts.cache TXT \"v=STSv1; id=" : "", id ? id : "", id ? "\"\n" : "");
	write_file(path, z);
}

static void
serve_policy(const char *body)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/.well-known/mta-sts.txt", need_env("WS_STS_WWW"));
	if (body)
		write_file(path, body);
	else
		unlink(path);
}

/* A fetcher whose DNS is an embedded zone with TXT id (NULL: no TXT), on
 * the shared cache file; opened fresh each call, as after a restart. */
static struct sts_resolved
at(int64_t now, const char *id, unsigned long *fetches)
{
	char zone[300], cache[300];
	snprintf(zone, sizeof(zone), "%s/zone", tmpdir);
	snprintf(cache, sizeof(cache), "%s/sts-cache.sqlite", tmpdir);
	write_zone(zone, id);
	struct ws_dns_config d = {.zone_file = zone, .timeout_ms = 1000};
	struct rig r;
	rig_open(&r, &d, cache, https_port(), 5000, false);
	struct sts_resolved res;
	assert_int_equal(sts_resolve(r.f, "cache.stsrig.net", now, &res), 0);
	*fetches = sts_fetcher_fetches(r.f);
	rig_close(&r);
	return res;
}

#define P_ENFORCE "version: STSv1\nmode: enforce\nmx: mx1.example\nmax_age: 172800\n"
#define P_TESTING "version: STSv1\nmode: testing\nmx: mx2.example\nmax_age: 172800\n"
#define P_SHORT "version: STSv1\nmode: enforce\nmx: mx3.example\nmax_age: 3600\n"

static void
test_cache(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ws-stsfetch-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	const int64_t t0 = 1700000000;
	unsigned long n;
	struct sts_resolved r;

	/* first sight: fetched and stored */
	serve_policy(P_ENFORCE);
	r = at(t0, "1", &n);
	assert_int_equal(r.status, STS_RES_POLICY);
	assert_true(r.fetched && !r.from_cache);
	assert_int_equal(n, 1);
	assert_int_equal(r.expires_at, t0 + 172800);
	/* a new process, same id: from the file, no fetch */
	r = at(t0 + 100, "1", &n);
	assert_true(r.from_cache && !r.fetched);
	assert_int_equal(n, 0);
	assert_int_equal(r.policy.mode, STS_MODE_ENFORCE);

	/* id change: refetch (STS-CACHE-2) */
	serve_policy(P_TESTING);
	r = at(t0 + 300, "2", &n);
	assert_true(r.fetched && !r.from_cache);
	assert_string_equal(r.id, "2");
	assert_int_equal(r.policy.mode, STS_MODE_TESTING);

	/* id change whose fetch fails: the cached policy stays, the failure
	 * is reported, and the same id waits STS_FETCH_RETRY_S */
	serve_policy(NULL);
	r = at(t0 + 400, "3", &n);
	assert_int_equal(r.status, STS_RES_POLICY);
	assert_true(r.fetched && r.from_cache && r.refresh_failed);
	assert_string_equal(r.id, "2");
	assert_int_equal(r.report, STS_RT_POLICY_FETCH_ERROR);
	r = at(t0 + 400 + STS_FETCH_RETRY_S - 1, "3", &n);
	assert_int_equal(n, 0);
	assert_true(r.from_cache && !r.fetched);
	assert_int_equal(r.report, STS_RT_POLICY_FETCH_ERROR);
	r = at(t0 + 400 + STS_FETCH_RETRY_S, "3", &n);
	assert_int_equal(n, 1);
	assert_true(r.from_cache && r.fetched);

	/* the fetch works again: id 3, max_age 3600 */
	serve_policy(P_SHORT);
	r = at(t0 + 1000, "3", &n);
	assert_true(r.fetched && !r.from_cache);
	assert_string_equal(r.id, "3");
	assert_int_equal(r.expires_at, t0 + 1000 + 3600);

	/* TXT gone: the cached policy applies until it expires, then none
	 * (postfix-mta-sts-resolver's expiration test) */
	r = at(t0 + 2000, NULL, &n);
	assert_int_equal(r.status, STS_RES_POLICY);
	assert_true(r.from_cache);
	assert_int_equal(n, 0);
	r = at(t0 + 1000 + 3600 - 1, NULL, &n);
	assert_int_equal(r.status, STS_RES_POLICY);
	r = at(t0 + 1000 + 3600, NULL, &n);
	assert_int_equal(r.status, STS_RES_NONE);

	/* expired with the TXT present: refetched */
	r = at(t0 + 5000, "3", &n);
	assert_true(r.fetched && !r.from_cache);
	assert_int_equal(n, 1);

	/* DNS fails while a policy is cached: it applies (STS-TXT-8); with
	 * nothing cached it is a failure to report, not "none" */
	char bh[64], cache[300];
	snprintf(bh, sizeof(bh), "127.0.0.1@%s", need_env("WS_DNSD_BLACKHOLE_PORT"));
	const char *const fwd[] = {bh, NULL};
	struct ws_dns_config d = {.forwarders = fwd, .timeout_ms = 1000};
	snprintf(cache, sizeof(cache), "%s/sts-cache.sqlite", tmpdir);
	struct rig rg;
	rig_open(&rg, &d, cache, https_port(), 5000, false);
	assert_int_equal(sts_resolve(rg.f, "cache.stsrig.net", t0 + 5100, &r), 0);
	assert_int_equal(r.status, STS_RES_POLICY);
	assert_true(r.from_cache);
	assert_int_equal(sts_resolve(rg.f, "other.stsrig.net", t0 + 5100, &r), 0);
	assert_int_equal(r.status, STS_RES_FAILED);
	assert_int_equal(r.report, STS_RT_POLICY_FETCH_ERROR);
	rig_close(&rg);

	/* a short max_age is refreshed at half its life, before it expires */
	r = at(t0 + 5000 + 1799, "3", &n);
	assert_int_equal(n, 0);
	r = at(t0 + 5000 + 1800, "3", &n);
	assert_int_equal(n, 1);
	assert_int_equal(r.expires_at, t0 + 5000 + 1800 + 3600);

	/* daily refresh of an unchanged id, and a failed refresh is flagged */
	const int64_t t1 = t0 + 10000;
	serve_policy("version: STSv1\nmode: enforce\nmx: mx4.example\nmax_age: 31557600\n");
	r = at(t1, "4", &n);
	assert_true(r.fetched);
	r = at(t1 + STS_REFRESH_S - 1, "4", &n);
	assert_int_equal(n, 0);
	r = at(t1 + STS_REFRESH_S, "4", &n);
	assert_int_equal(n, 1);
	assert_true(r.fetched && !r.from_cache);
	assert_int_equal(r.fetched_at, t1 + STS_REFRESH_S);
	serve_policy(NULL);
	r = at(t1 + 2 * STS_REFRESH_S, "4", &n);
	assert_true(r.fetched && r.from_cache && r.refresh_failed);
	assert_int_equal(r.status, STS_RES_POLICY);

	/* opt-out (RFC 8461 8.3): a new id with mode none; its failed refresh
	 * raises no alert, and the decision is "none" */
	serve_policy("version: STSv1\nmode: none\nmax_age: 86400\n");
	const int64_t t2 = t1 + 3 * STS_REFRESH_S;
	r = at(t2, "5", &n);
	assert_int_equal(r.policy.mode, STS_MODE_NONE);
	struct sts_session s = {"mx1.example", 11, false, false, STS_CERT_VALID};
	assert_int_equal(sts_decide(&r.policy, &s).result, STS_NONE);
	serve_policy(NULL);
	r = at(t2 + 86400 / 2 - 1, "5", &n); /* half of its max_age: not yet */
	assert_true(r.from_cache && !r.fetched);
	r = at(t2 + 3600, "6", &n); /* new id, fetch fails: mode none, no alert */
	assert_true(r.fetched && r.from_cache && !r.refresh_failed);

	/* max_age 0: never served from the cache */
	serve_policy("version: STSv1\nmode: testing\nmx: mx7.example\nmax_age: 0\n");
	r = at(t2 + 4000 + STS_FETCH_RETRY_S, "7", &n);
	assert_true(r.fetched && !r.from_cache);
	assert_int_equal(r.status, STS_RES_POLICY);
	r = at(t2 + 4001 + STS_FETCH_RETRY_S, "7", &n);
	assert_true(r.fetched && !r.from_cache);
	assert_int_equal(n, 1);
	serve_policy(NULL);
	r = at(t2 + 4002 + STS_FETCH_RETRY_S, "7", &n);
	assert_int_equal(r.status, STS_RES_FAILED);

	char path[300];
	snprintf(path, sizeof(path), "%s/zone", tmpdir);
	unlink(path);
	unlink(cache);
	rmdir(tmpdir);
}

static void
test_cache_schema_mismatch(void **state)
{
	(void)state;
	char dir[] = "/tmp/ws-stsschema-XXXXXX", path[300], why[512];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/c.sqlite", dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	struct ws_dns_config d = {.config_file = need_env("WS_DNSD_UNBOUND_CONF")};
	struct ws_dns *dns = ws_dns_new(&d, why, sizeof(why));
	assert_non_null(dns);
	struct sts_fetch_config cfg = {.dns = dns, .cache_path = path};
	assert_null(sts_fetcher_new(&cfg, why, sizeof(why)));
	assert_non_null(strstr(why, "schema 99"));
	/* an unwritable place */
	cfg.cache_path = "/nonexistent-dir/c.sqlite";
	assert_null(sts_fetcher_new(&cfg, why, sizeof(why)));
	ws_dns_free(dns);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fetch_rows),
		cmocka_unit_test(test_fetch_lenient_content_type),
		cmocka_unit_test(test_fetch_streamed_and_slow),
		cmocka_unit_test(test_resolve_rows),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_cache_schema_mismatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
