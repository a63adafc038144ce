/*
 * dnscache's asynchronous side (the daemon's) and cppolicy over a real
 * resolver (ws_dns in embedded mode on a zone written here): hits,
 * coalescing, negative and temporary answers, limits (LRU at the bound, the
 * waiter and name limits); SPF + DMARC verdicts, the ARC override, domain overrides, the AAR
 * reader.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dns.h"
#include "dnscache.h"
#include "cppolicy.h"

static const char zone_text[] = "$ORIGIN org.\n$TTL 300\n"
				"@ IN SOA ns1 hostmaster ( 1 3600 600 86400 60 )\n"
				"example TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n"
				"_dmarc.example TXT \"v=DMARC1; p=reject\"\n"
				"other TXT \"v=spf1 -all\"\n"
				"_dmarc.other TXT \"v=DMARC1; p=quarantine\"\n"
				"skipme TXT \"v=spf1 -all\"\n"
				"_dmarc.skipme TXT \"v=DMARC1; p=reject\"\n"
				"short TXT ( \"x\" ) ; default TTL\n";

static char zone_path[64];
static struct ws_dns *dns;

static int
setup(void **state)
{
	(void)state;
	snprintf(zone_path, sizeof(zone_path), "/tmp/ws-cp-zone-XXXXXX");
	int fd = mkstemp(zone_path);
	if (fd < 0 || write(fd, zone_text, sizeof(zone_text) - 1) != (ssize_t)sizeof(zone_text) - 1)
		return -1;
	close(fd);
	struct ws_dns_config cfg = {.zone_file = zone_path, .timeout_ms = 2000};
	char why[256];
	dns = ws_dns_new(&cfg, why, sizeof(why));
	if (!dns) {
		fprintf(stderr, "ws_dns_new: %s\n", why);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	ws_dns_free(dns);
	unlink(zone_path);
	return 0;
}

struct got {
	int calls;
	enum ws_dns_status status;
	uint32_t ttl;
};

static void
on_answer(void *arg, const struct ws_dns_answer *a)
{
	struct got *g = arg;
	g->calls++;
	g->status = a->status;
	g->ttl = a->ttl;
}

/* Runs the resolver until cond holds (or 3 s). */
static int64_t clock_now = 1000; /* the time the cache is told */

static void
drive(struct dnscache *dc, const int *counter, int want)
{
	for (int i = 0; i < 300 && *counter < want; i++) {
		dnscache_process(dc, dns, clock_now);
		ws_dns_poll(dns, 10);
	}
}

static struct dnscache_stats
stat_of(const struct dnscache *c)
{
	struct dnscache_stats st;
	dnscache_stats(c, &st);
	return st;
}

static struct dnscache *
new_cache(size_t max_entries, uint32_t max_ttl, uint32_t neg_max_ttl)
{
	struct dnscache_config cfg = {.max_entries = max_entries, .max_ttl = max_ttl,
				      .neg_max_ttl = neg_max_ttl};
	struct dnscache *c = dnscache_new(&cfg);
	assert_non_null(c);
	return c;
}

static void
test_cache(void **state)
{
	(void)state;
	struct dnscache *dc = new_cache(100, 60, 30);
	assert_non_null(dc);
	const struct ws_dns_answer *a = NULL;
	struct got g1 = {0}, g2 = {0};
	/* two askers before the answer: one query */
	assert_int_equal(dnscache_lookup(dc, dns, "Example.ORG.", WS_DNS_TXT, 1000, on_answer, &g1, &a, NULL), 0);
	assert_int_equal(dnscache_lookup(dc, dns, "example.org", WS_DNS_TXT, 1000, on_answer, &g2, &a, NULL), 0);
	drive(dc, &g2.calls, 1);
	assert_int_equal(g1.calls, 1);
	assert_int_equal(g2.calls, 1);
	assert_int_equal(g1.status, WS_DNS_OK);
	struct dnscache_stats sts, *st = &sts;
	dnscache_stats(dc, st);
	assert_int_equal(st->queries, 1);
	assert_int_equal(st->coalesced, 1);
	/* now a hit, with the TTL capped by max_ttl (60 < 300) and counting down */
	uint32_t left = 0;
	assert_int_equal(dnscache_lookup(dc, dns, "example.org", WS_DNS_TXT, 1010, on_answer, &g1, &a, &left), 1);
	assert_int_equal(a->status, WS_DNS_OK);
	assert_int_equal(left, 50);
	dnscache_stats(dc, st);
	assert_int_equal(st->hits, 1);
	/* expired: asked again */
	clock_now = 1060;
	assert_int_equal(dnscache_lookup(dc, dns, "example.org", WS_DNS_TXT, 1060, on_answer, &g1, &a, NULL), 0);
	drive(dc, &g1.calls, 2);
	dnscache_stats(dc, st);
	assert_int_equal(st->queries, 2);
	assert_int_equal(st->expired, 1);
	/* a negative answer is kept for min(its RFC 2308 TTL, negative_ttl), and
	 * not at all when it carries no TTL (local data without an SOA in the
	 * reply: depends on the resolver's embedded mode, so both are checked) */
	struct got g3 = {0};
	clock_now = 1000;
	assert_int_equal(dnscache_lookup(dc, dns, "nope.org", WS_DNS_TXT, 1000, on_answer, &g3, &a, NULL), 0);
	drive(dc, &g3.calls, 1);
	assert_int_equal(g3.status, WS_DNS_NXDOMAIN);
	bool neg_kept = g3.ttl > 0;
	int rc = dnscache_lookup(dc, dns, "nope.org", WS_DNS_TXT, 1000, on_answer, &g3, &a, &left);
	if (neg_kept) {
		assert_int_equal(rc, 1);
		assert_int_equal(left, g3.ttl < 30 ? g3.ttl : 30);
	} else {
		assert_int_equal(rc, 0);
		drive(dc, &g3.calls, 2);
		assert_int_equal(g3.calls, 2);
	}
	/* dump and flush */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	dnscache_dump(dc, 1000, f);
	fclose(f);
	assert_non_null(strstr(buf, "example.org TXT ok 120"));
	assert_true(neg_kept == (strstr(buf, "nope.org TXT nxdomain") != NULL));
	free(buf);
	assert_int_equal(dnscache_flush(dc), neg_kept ? 2 : 1);
	dnscache_stats(dc, st);
	assert_int_equal(st->entries, 0);
	dnscache_free(dc);

	/* max_ttl 0: nothing is kept */
	dc = new_cache(100, 0, 0);
	struct got g4 = {0};
	assert_int_equal(dnscache_lookup(dc, dns, "example.org", WS_DNS_TXT, 1000, on_answer, &g4, &a, NULL), 0);
	drive(dc, &g4.calls, 1);
	assert_int_equal(g4.status, WS_DNS_OK);
	dnscache_stats(dc, st);
	assert_int_equal(st->entries, 0);
	assert_int_equal(st->uncacheable, 1);
	dnscache_free(dc);
}

static void
test_cache_limits(void **state)
{
	(void)state;
	/* max_entries 1 (the bound): the second answer evicts the first (least
	 * recently used), which is asked again */
	clock_now = 1000;
	struct dnscache *dc = new_cache(1, 60, 60);
	const struct ws_dns_answer *a;
	struct dnscache_stats st;
	struct got g1 = {0}, g2 = {0};
	assert_int_equal(dnscache_lookup(dc, dns, "example.org", WS_DNS_TXT, 1000, on_answer, &g1, &a, NULL), 0);
	drive(dc, &g1.calls, 1);
	assert_int_equal(dnscache_lookup(dc, dns, "example.org", WS_DNS_TXT, 1000, on_answer, &g1, &a, NULL), 1);
	assert_int_equal(dnscache_lookup(dc, dns, "other.org", WS_DNS_TXT, 1000, on_answer, &g2, &a, NULL), 0);
	drive(dc, &g2.calls, 1);
	assert_int_equal(g2.status, WS_DNS_OK);
	dnscache_stats(dc, &st);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(st.entries, 1);
	assert_int_equal(dnscache_lookup(dc, dns, "other.org", WS_DNS_TXT, 1000, on_answer, &g2, &a, NULL), 1);
	assert_int_equal(dnscache_lookup(dc, dns, "example.org", WS_DNS_TXT, 1000, on_answer, &g1, &a, NULL), 0);
	drive(dc, &g1.calls, 2);
	dnscache_free(dc);

	/* DNSCACHE_MAX_WAITERS on one pending name; one more is refused */
	dc = new_cache(100, 60, 60);
	static struct got many[DNSCACHE_MAX_WAITERS + 1];
	for (unsigned i = 0; i < DNSCACHE_MAX_WAITERS; i++)
		assert_int_equal(dnscache_lookup(dc, dns, "example.org", WS_DNS_TXT, 1000, on_answer, &many[i], &a, NULL), 0);
	assert_int_equal(dnscache_lookup(dc, dns, "example.org", WS_DNS_TXT, 1000, on_answer, &many[DNSCACHE_MAX_WAITERS], &a,
				NULL), -1);
	drive(dc, &many[DNSCACHE_MAX_WAITERS - 1].calls, 1);
	for (unsigned i = 0; i < DNSCACHE_MAX_WAITERS; i++)
		assert_int_equal(many[i].calls, 1);
	assert_int_equal(many[DNSCACHE_MAX_WAITERS].calls, 0);

	/* DNSCACHE_QUERY_NAME_MAX: a name that long is handed to the resolver, one more is not */
	static char name[DNSCACHE_QUERY_NAME_MAX + 2];
	memset(name, 'a', sizeof(name) - 1);
	for (size_t i = 63; i < DNSCACHE_QUERY_NAME_MAX; i += 64)
		name[i] = '.';
	name[DNSCACHE_QUERY_NAME_MAX] = '\0';
	dnscache_stats(dc, &st);
	uint64_t q = st.queries;
	struct got g3 = {0};
	int rc = dnscache_lookup(dc, dns, name, WS_DNS_TXT, 1000, on_answer, &g3, &a, NULL);
	dnscache_stats(dc, &st);
	assert_int_equal(st.queries, q + 1);
	if (rc == 0)
		drive(dc, &g3.calls, 1);
	name[DNSCACHE_QUERY_NAME_MAX] = 'a';
	assert_int_equal(dnscache_lookup(dc, dns, name, WS_DNS_TXT, 1000, on_answer, &g3, &a, NULL), -1);
	dnscache_stats(dc, &st);
	assert_int_equal(st.queries, q + 1);
	dnscache_free(dc);
}

struct done {
	int calls;
	struct pol_job *job;
};

static void
on_done(void *arg, struct pol_job *job)
{
	struct done *d = arg;
	d->calls++;
	d->job = job;
}

static struct cpm_message msg;

static void
base_message(const char *ip, const char *mail_from, const char *from)
{
	memset(&msg, 0, sizeof(msg));
	msg.record_id = 1;
	msg.client.ip = cpm_s(ip);
	msg.helo = cpm_s("mail.example.org");
	msg.mail_from = cpm_s(mail_from);
	msg.nfrom = 1;
	msg.from[0] = cpm_s(from);
}

static const struct pol_verdict *
run_policy(const struct pol_config *cfg, struct dnscache *dc, struct done *d)
{
	memset(d, 0, sizeof(*d));
	assert_int_equal(pol_start(cfg, dc, dns, &msg, 1764400000, on_done, d), 0);
	drive(dc, &d->calls, 1);
	assert_int_equal(d->calls, 1);
	return pol_job_verdict(d->job);
}

static void
test_policy(void **state)
{
	(void)state;
	struct dnscache *dc = new_cache(1000, 3600, 300);
	clock_now = 1764400000;
	const char *trusted[] = {"fwd.example.net"};
	const char *odom[] = {"skipme.org", "other.org"}, *oact[] = {"skip", "none"};
	struct pol_config cfg = {.authserv_id = "mx.test", .trusted_sealers = trusted, .ntrusted = 1,
				 .override_domain = odom, .override_action = oact, .noverrides = 1,
				 .org_method = DMARC_ORG_TREEWALK};
	struct done d;

	base_message("192.0.2.7", "alice@example.org", "Alice <alice@example.org>");
	uint64_t q0 = stat_of(dc).queries;
	const struct pol_verdict *v = run_policy(&cfg, dc, &d);
	uint64_t first = stat_of(dc).queries - q0;
	assert_int_equal(v->spf.result, SPF_RESULT_PASS);
	assert_true(v->dmarc_evaluated);
	assert_int_equal(v->dmarc.result, DMARC_RES_PASS);
	assert_true(v->dmarc.spf_aligned);
	assert_string_equal(v->disposition, "none");
	/* the job has its own copy of the record */
	assert_ptr_not_equal(pol_job_message(d.job)->helo.p, msg.helo.p);
	assert_memory_equal(pol_job_message(d.job)->helo.p, "mail.example.org", 16);
	pol_job_free(d.job);

	/* again: the positive answers come from the cache (negative ones carry
	 * no TTL in embedded mode and are asked again), same verdict */
	uint64_t q = stat_of(dc).queries;
	uint64_t hits = stat_of(dc).hits;
	v = run_policy(&cfg, dc, &d);
	assert_int_equal(v->dmarc.result, DMARC_RES_PASS);
	assert_true(stat_of(dc).queries - q < first);
	assert_true(stat_of(dc).hits >= hits + 2); /* SPF and DMARC records */
	pol_job_free(d.job);

	/* SPF fail, no DKIM: DMARC fail, p=reject */
	base_message("203.0.113.1", "alice@example.org", "alice@example.org");
	v = run_policy(&cfg, dc, &d);
	assert_int_equal(v->spf.result, SPF_RESULT_FAIL);
	assert_int_equal(v->dmarc.result, DMARC_RES_FAIL);
	assert_string_equal(v->disposition, "reject");
	assert_false(v->arc.applied);
	/* as verify: the HELO identity checked beside MAIL FROM (no record) */
	assert_true(v->helo_ran);
	assert_int_equal(v->helo.result, SPF_RESULT_NONE);
	assert_string_equal(v->helo.domain, "mail.example.org");
	assert_false(v->null_sender);
	pol_job_free(d.job);

	/* bytes lost on the wire: a DMARC that did not pass is temperror with
	 * the gap as reason, never the fail the lost bytes may have caused */
	msg.gap = cpm_s("capture-gap");
	v = run_policy(&cfg, dc, &d);
	assert_int_equal(v->dmarc.result, DMARC_RES_TEMPERROR);
	assert_string_equal(v->dmarc.reason, "capture-gap: bytes of the message were not seen");
	assert_string_equal(v->disposition, "none");
	pol_job_free(d.job);
	msg.gap = cpm_s("");

	/* a null sender with no HELO: postmaster@HELO has no HELO, no HELO check */
	base_message("203.0.113.1", "", "alice@example.org");
	msg.helo = cpm_s("");
	v = run_policy(&cfg, dc, &d);
	assert_true(v->null_sender);
	assert_false(v->helo_ran);
	pol_job_free(d.job);
	base_message("203.0.113.1", "alice@example.org", "alice@example.org");

	/* the same with a passing DKIM signature of the From domain: pass */
	msg.ndkim = 1;
	msg.dkim[0] = (struct cpm_dkim){cpm_s("example.org"), cpm_s("s"), cpm_s("rsa-sha256"),
					cpm_s("pass"), cpm_s("")};
	v = run_policy(&cfg, dc, &d);
	assert_int_equal(v->dmarc.result, DMARC_RES_PASS);
	assert_true(v->dmarc.dkim_aligned);
	pol_job_free(d.job);

	/* a trusted sealer's dmarc=pass overrides the fail; an untrusted one does not */
	base_message("203.0.113.1", "alice@example.org", "alice@example.org");
	msg.arc_chain = CPM_ARC_PASS;
	msg.narc = 1;
	msg.arc[0].instance = 1;
	msg.arc[0].sealer = cpm_s("fwd.example.net");
	msg.arc[0].aar = cpm_s("i=1; fwd.example.net; dmarc=pass header.from=example.org");
	v = run_policy(&cfg, dc, &d);
	assert_int_equal(v->dmarc.result, DMARC_RES_FAIL);
	assert_true(v->arc.applied);
	assert_string_equal(v->arc.sealer, "fwd.example.net");
	assert_string_equal(v->disposition, "none");
	pol_job_free(d.job);
	msg.arc[0].sealer = cpm_s("untrusted.example");
	v = run_policy(&cfg, dc, &d);
	assert_false(v->arc.applied);
	assert_string_equal(v->disposition, "reject");
	pol_job_free(d.job);

	/* domain overrides: skip (no DMARC) and none (disposition replaced) */
	base_message("203.0.113.1", "x@skipme.org", "x@skipme.org");
	v = run_policy(&cfg, dc, &d);
	assert_false(v->dmarc_evaluated);
	assert_string_equal(v->override, "skip");
	assert_string_equal(v->disposition, "none");
	pol_job_free(d.job);
	cfg.noverrides = 2;
	base_message("203.0.113.1", "x@other.org", "x@other.org");
	v = run_policy(&cfg, dc, &d);
	assert_int_equal(v->dmarc.result, DMARC_RES_FAIL);
	assert_string_equal(v->override, "none");
	assert_string_equal(v->disposition, "none");
	pol_job_free(d.job);

	/* no usable client address: SPF none, DMARC still evaluated */
	base_message("not-an-ip", "alice@example.org", "alice@example.org");
	v = run_policy(&cfg, dc, &d);
	assert_true(v->spf_skipped);
	assert_int_equal(v->dmarc.result, DMARC_RES_FAIL);
	pol_job_free(d.job);
	dnscache_free(dc);
}

static void
test_aar(void **state)
{
	(void)state;
	struct dmarc_arc_method m[POL_MAX_AAR_RESULTS + 1];
	char buf[1024];
	size_t n = pol_parse_aar("i=2; relay.example; dkim=pass header.d=a.example header.s=x;"
				 " spf=fail (whatever) smtp.mailfrom=u@b.example; dmarc/1=pass "
				 "header.from=\"c.example\"",
				 m, POL_MAX_AAR_RESULTS, buf, sizeof(buf));
	assert_int_equal(n, 3);
	assert_string_equal(m[0].method, "dkim");
	assert_string_equal(m[0].result, "pass");
	assert_string_equal(m[0].domain, "a.example");
	assert_string_equal(m[1].method, "spf");
	assert_string_equal(m[1].domain, "b.example");
	assert_string_equal(m[2].method, "dmarc");
	assert_string_equal(m[2].domain, "c.example");
	/* POL_MAX_AAR_RESULTS results are read, more are not */
	char aar[2048] = "i=1; x";
	for (unsigned i = 0; i < POL_MAX_AAR_RESULTS + 1; i++)
		snprintf(aar + strlen(aar), sizeof(aar) - strlen(aar), "; m%u=pass", i);
	assert_int_equal(pol_parse_aar(aar, m, POL_MAX_AAR_RESULTS, buf, sizeof(buf)), POL_MAX_AAR_RESULTS);
	/* the reader's own bound (the in-process policy's) holds whatever max says */
	assert_int_equal(pol_parse_aar(aar, m, POL_MAX_AAR_RESULTS + 1, buf, sizeof(buf)),
			 POL_MAX_AAR_RESULTS);
	/* unusual but valid (RFC 8601): comments with ';' and quotes, folding,
	 * quoted values, CFWS around '=', any case, a version; the old splitter
	 * of this file misread it */
	n = pol_parse_aar("i=1; fwd.example (relay; \"x\";\r\n\tsays) ;\r\n DKIM = Pass (good;\r\n"
			  " sig) Header.D=\"Author.Example\" header.s=sel ;\r\n spf=SoftFail "
			  "smtp.mailfrom=\"b@Bounce.Example\"; DMARC/1=fail header.from=author.example;"
			  " x-other=pass header.d=z.example",
			  m, POL_MAX_AAR_RESULTS, buf, sizeof(buf));
	assert_int_equal(n, 4);
	assert_string_equal(m[0].method, "dkim");
	assert_string_equal(m[0].result, "pass");
	assert_string_equal(m[0].domain, "Author.Example");
	assert_string_equal(m[1].method, "spf");
	assert_string_equal(m[1].result, "softfail");
	assert_string_equal(m[1].domain, "Bounce.Example");
	assert_string_equal(m[2].method, "dmarc");
	assert_string_equal(m[2].domain, "author.example");
	assert_string_equal(m[3].method, "x-other");
	assert_null(m[3].domain);
	/* a domain longer than DMARC_DOMAIN_MAX is no domain */
	char longd[DMARC_DOMAIN_MAX + 64] = "i=1; x; dkim=pass header.d=";
	size_t at = strlen(longd);
	memset(longd + at, 'a', DMARC_DOMAIN_MAX + 1);
	longd[at + DMARC_DOMAIN_MAX + 1] = '\0';
	assert_int_equal(pol_parse_aar(longd, m, 4, buf, sizeof(buf)), 1);
	assert_null(m[0].domain);
	longd[at + DMARC_DOMAIN_MAX] = '\0';
	assert_int_equal(pol_parse_aar(longd, m, 4, buf, sizeof(buf)), 1);
	assert_non_null(m[0].domain);
	/* DMARC_ARC_TEXT_MAX: 16 results of exactly 256 bytes each ("dkim",
	 * "pass", a 245-byte domain, NULs) fill it; one byte more and the last
	 * result is left out */
	static char big[8192], text[DMARC_ARC_TEXT_MAX];
	for (int extra = 0; extra <= 1; extra++) {
		size_t o = (size_t)snprintf(big, sizeof(big), "i=1; x");
		for (unsigned i = 0; i < DMARC_ARC_MAX_RESULTS; i++) {
			o += (size_t)snprintf(big + o, sizeof(big) - o, "; dkim=pass header.d=");
			size_t dl = 245 + (i == DMARC_ARC_MAX_RESULTS - 1 ? (size_t)extra : 0);
			memset(big + o, 'd', dl);
			o += dl;
			big[o] = '\0';
		}
		assert_int_equal(pol_parse_aar(big, m, POL_MAX_AAR_RESULTS, text, sizeof(text)),
				 DMARC_ARC_MAX_RESULTS - (unsigned)extra);
	}
	/* the string buffer bounds what is kept */
	assert_true(pol_parse_aar(aar, m, POL_MAX_AAR_RESULTS, buf, 20) < 4);
	assert_int_equal(pol_parse_aar("", m, 4, buf, sizeof(buf)), 0);
	assert_int_equal(pol_parse_aar("i=1; x; none", m, 4, buf, sizeof(buf)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_cache_limits),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_aar),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
