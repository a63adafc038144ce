/* cpsts: the certificate state from the TLS facts (table), and the policy
 * domain / MX host search over an embedded zone (ws_dns local data, no
 * network): every source, the RCPT domain list and the MX, walk, learned
 * and map limits at and past. Policies here never reach HTTPS (a domain
 * with a record but no policy host gives a fetch error); the fetch paths
 * are in tests/e2e/cp_sts.py against nginx. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cpsts.h"

static char zone_path[64];

static void
write_zone(void)
{
	snprintf(zone_path, sizeof(zone_path), "/tmp/ws-cpsts-zone-XXXXXX");
	int fd = mkstemp(zone_path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "$TTL 300\n"
	           "a.example. MX 10 mx.a.example.\n"
	           "mx.a.example. A 192.0.2.1\n"
	           "b.example. MX 10 mx.b.example.\n"
	           "mx.b.example. A 192.0.2.2\n"
	           "_mta-sts.b.example. TXT \"v=STSv1; id=1;\"\n" /* no policy host: fetch error */
	           "1.2.0.192.in-addr.arpa. PTR mx.a.example.\n"
	           /* walk: the domain CPSTS_MAX_WALK labels above the SNI, and one more */
	           "w4.example. MX 10 h.l1.l2.l3.w4.example.\n"
	           "w5.example. MX 10 h.l1.l2.l3.l4.w5.example.\n");
	/* CPSTS_MAX_MX_HOSTS + 1 MX hosts, each with its own address */
	for (int i = 1; i <= CPSTS_MAX_MX_HOSTS + 1; i++)
		fprintf(f,
		        "many.example. MX %d m%d.many.example.\nm%d.many.example. A "
		        "198.51.100.%d\n",
		        i, i, i, i);
	/* domains to fill the learned table */
	for (int i = 0; i <= CPSTS_MAX_LEARNED; i++)
		fprintf(f, "d%d.example. MX 10 mx.d%d.example.\n", i, i);
	assert_int_equal(fclose(f), 0);
}

static struct cpsts *
new_cpsts(const char *const *keys, const char *const *doms, size_t n)
{
	struct cpsts_config cfg = {
	        .dns = {.zone_file = zone_path, .timeout_ms = 2000},
	        .map_key = keys,
	        .map_domain = doms,
	        .nmap = n,
	};
	char why[256] = "";
	struct cpsts *c = cpsts_new(&cfg, why, sizeof(why));
	if (!c)
		fprintf(stderr, "cpsts_new: %s\n", why);
	return c;
}

static void
test_cert(void **state)
{
	(void)state;
	const char *names[] = {"mx.example.com", "*.mail.example.com"};
	struct cpm_tls base = {.cert_seen = 1,
	                       .not_before = 1000,
	                       .not_after = 2000,
	                       .chain_trusted = 1,
	                       .ncert_names = 2};
	base.cert_names[0] = cpm_s(names[0]);
	base.cert_names[1] = cpm_s(names[1]);
	static const struct {
		int seen, trusted;
		int64_t at;
		const char *host;
		enum sts_cert want;
	} rows[] = {
	        {1, 1, 1500, "mx.example.com", STS_CERT_VALID},
	        {1, 1, 1500, "MX.Example.COM", STS_CERT_VALID},
	        {1, 1, 1500, "a.mail.example.com", STS_CERT_VALID},
	        {1, 1, 1500, "b.a.mail.example.com", STS_CERT_HOST_MISMATCH}, /* one label only */
	        {1, 1, 1500, "other.example.com", STS_CERT_HOST_MISMATCH},
	        {1, 1, 1000, "mx.example.com", STS_CERT_VALID},   /* at not_before */
	        {1, 1, 999, "mx.example.com", STS_CERT_EXPIRED},  /* before it */
	        {1, 1, 2000, "mx.example.com", STS_CERT_VALID},   /* at not_after */
	        {1, 1, 2001, "mx.example.com", STS_CERT_EXPIRED}, /* past it */
	        {1, 0, 1500, "mx.example.com", STS_CERT_NOT_TRUSTED},
	        {1, 0, 2001, "other.example.com", STS_CERT_EXPIRED}, /* the order: expiry first */
	        {1, 0, 1500, "other.example.com", STS_CERT_NOT_TRUSTED},
	        {0, 1, 1500, "mx.example.com", STS_CERT_NOT_ASSESSABLE},
	        {1, 1, 1500, "", STS_CERT_HOST_MISMATCH},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct cpm_tls t = base;
		t.cert_seen = (uint8_t)rows[i].seen;
		t.chain_trusted = (uint8_t)rows[i].trusted;
		enum sts_cert got = cpsts_cert(&t, rows[i].host, rows[i].at);
		if (got != rows[i].want)
			fail_msg("row %zu: %s at %lld: got %d want %d", i, rows[i].host,
			         (long long)rows[i].at, got, rows[i].want);
	}
}

static struct cpm_session
sess(const char *server_ip, const char *sni)
{
	struct cpm_session s;
	memset(&s, 0, sizeof(s));
	s.server.ip = cpm_s(server_ip);
	s.tls.sni = cpm_s(sni);
	s.starttls_offered = 1;
	s.ts_usec = 1500ull * 1000000;
	return s;
}

static void
test_sources(void **state)
{
	(void)state;
	const char *keys[] = {"192.0.2.77", "relay.example"}, *doms[] = {"a.example", "b.example"};
	struct cpsts *c = new_cpsts(keys, doms, 2);
	assert_non_null(c);
	static struct cpsts_result r;

	/* rcpt: normalised, deduplicated, at most CPSTS_MAX_DOMAINS */
	struct cpm_session s = sess("192.0.2.1", "");
	const char *rd[] = {"A.Example.", "a.example", "b.example",
	                    "c.example",  "d.example", "e.example"};
	s.nrcpt_domains = 6;
	for (int i = 0; i < 6; i++)
		s.rcpt_domains[i] = cpm_s(rd[i]);
	assert_int_equal(cpsts_session(c, &s, 1000, &r), 0);
	assert_int_equal(r.n, CPSTS_MAX_DOMAINS);
	assert_int_equal(r.domains_dropped, 1);
	assert_string_equal(r.ev[0].domain, "a.example");
	assert_int_equal(r.ev[0].source, CPSTS_SRC_RCPT);
	assert_string_equal(r.ev[0].mx_host, "mx.a.example");
	assert_int_equal(r.ev[0].mx_source, CPSTS_MX_DNS);
	assert_int_equal(r.ev[0].res, STS_RES_NONE); /* no _mta-sts record */
	assert_int_equal(r.ev[0].v.result, STS_NONE);
	assert_string_equal(r.ev[1].domain, "b.example");
	assert_int_equal(r.ev[1].res, STS_RES_FAILED); /* a record, no policy host */
	assert_int_equal(r.ev[1].fetch_report, STS_RT_POLICY_FETCH_ERROR);
	assert_int_equal(r.ev[1].mx_source, CPSTS_MX_IP); /* 192.0.2.1 is not b's MX */
	assert_string_equal(r.ev[1].mx_host, "192.0.2.1");
	s.nrcpt_domains = CPSTS_MAX_DOMAINS + 1; /* the duplicate makes 4 distinct of 5 */
	assert_int_equal(cpsts_session(c, &s, 1000, &r), 0);
	assert_int_equal(r.n, CPSTS_MAX_DOMAINS);
	assert_int_equal(r.domains_dropped, 0);

	/* learned: mx.b.example from the rcpt session above */
	s = sess("192.0.2.2", "mx.b.example");
	assert_int_equal(cpsts_session(c, &s, 1000, &r), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ev[0].source, CPSTS_SRC_LEARNED);
	assert_string_equal(r.ev[0].domain, "b.example");
	assert_int_equal(r.ev[0].mx_source, CPSTS_MX_DNS);

	/* config: by server IP, and by SNI, before RCPT TO */
	s = sess("192.0.2.77", "");
	s.nrcpt_domains = 1;
	s.rcpt_domains[0] = cpm_s("c.example");
	assert_int_equal(cpsts_session(c, &s, 1000, &r), 0);
	assert_int_equal(r.ev[0].source, CPSTS_SRC_CONFIG);
	assert_string_equal(r.ev[0].domain, "a.example");
	s = sess("203.0.113.1", "Relay.Example");
	assert_int_equal(cpsts_session(c, &s, 1000, &r), 0);
	assert_int_equal(r.ev[0].source, CPSTS_SRC_CONFIG);
	assert_string_equal(r.ev[0].domain, "b.example");
	assert_int_equal(r.ev[0].mx_source, CPSTS_MX_SNI);

	/* no RCPT, no SNI: the PTR name (forward-confirmed), learned before */
	s = sess("192.0.2.1", "");
	assert_int_equal(cpsts_session(c, &s, 1000, &r), 0);
	assert_true(r.ev[0].source == CPSTS_SRC_LEARNED); /* mx.a.example learned above */
	assert_string_equal(r.ev[0].domain, "a.example");

	/* the walk: CPSTS_MAX_WALK parents at the limit, one more past it */
	s = sess("203.0.113.2", "h.l1.l2.l3.w4.example");
	assert_int_equal(cpsts_session(c, &s, 1000, &r), 0);
	assert_int_equal(r.ev[0].source, CPSTS_SRC_SNI_MX);
	assert_string_equal(r.ev[0].domain, "w4.example");
	s = sess("203.0.113.2", "h.l1.l2.l3.l4.w5.example");
	assert_int_equal(cpsts_session(c, &s, 1000, &r), 0);
	assert_int_equal(r.ev[0].source, CPSTS_SRC_UNKNOWN);
	assert_int_equal(r.ev[0].v.result, STS_NOT_ASSESSABLE);
	assert_int_equal(r.ev[0].domain[0], '\0');

	/* MX hosts: CPSTS_MAX_MX_HOSTS are looked at, the one past is not */
	int found = 0;
	for (int i = 1; i <= CPSTS_MAX_MX_HOSTS + 1; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.51.100.%d", i);
		s = sess(ip, "");
		s.nrcpt_domains = 1;
		s.rcpt_domains[0] = cpm_s("many.example");
		assert_int_equal(cpsts_session(c, &s, 1000, &r), 0);
		found += r.ev[0].mx_source == CPSTS_MX_DNS;
	}
	assert_int_equal(found, CPSTS_MAX_MX_HOSTS);
	cpsts_free(c);
}

static void
test_learned_limit(void **state)
{
	(void)state;
	for (int past = 0; past <= 1; past++) {
		struct cpsts *c = new_cpsts(NULL, NULL, 0);
		assert_non_null(c);
		struct sts_resolved res;
		char d[64];
		for (int i = 0; i < CPSTS_MAX_LEARNED + past; i++) {
			snprintf(d, sizeof(d), "d%d.example", i);
			assert_int_equal(cpsts_query(c, d, 1000, &res), 0);
			assert_int_equal(res.status, STS_RES_NONE);
		}
		static struct cpsts_result r;
		struct cpm_session s = sess("203.0.113.9", "mx.d0.example");
		assert_int_equal(cpsts_session(c, &s, 1000, &r), 0);
		/* at the limit d0 is still remembered; one past, the oldest went
		 * and the walk finds it again */
		assert_int_equal(r.ev[0].source, past ? CPSTS_SRC_SNI_MX : CPSTS_SRC_LEARNED);
		assert_string_equal(r.ev[0].domain, "d0.example");
		cpsts_free(c);
	}
}

static void
test_map_limit(void **state)
{
	(void)state;
	static const char *keys[CPSTS_MAX_MAP + 1], *doms[CPSTS_MAX_MAP + 1];
	static char kbuf[CPSTS_MAX_MAP + 1][32];
	for (int i = 0; i <= CPSTS_MAX_MAP; i++) {
		snprintf(kbuf[i], sizeof(kbuf[i]), "h%d.example", i);
		keys[i] = kbuf[i];
		doms[i] = "a.example";
	}
	struct cpsts *c = new_cpsts(keys, doms, CPSTS_MAX_MAP);
	assert_non_null(c);
	cpsts_free(c);
	struct cpsts_config cfg = {.dns = {.zone_file = zone_path},
	                           .map_key = keys,
	                           .map_domain = doms,
	                           .nmap = CPSTS_MAX_MAP + 1};
	char why[256];
	assert_null(cpsts_new(&cfg, why, sizeof(why)));
	assert_non_null(strstr(why, "more than"));
	const char *bad[] = {""};
	cfg.map_key = bad;
	cfg.nmap = 1;
	assert_null(cpsts_new(&cfg, why, sizeof(why)));
	assert_string_equal(cpsts_source_name(CPSTS_SRC_PTR_MX), "ptr-mx");
	assert_string_equal(cpsts_mx_source_name(CPSTS_MX_SNI), "sni");
}

static int
setup(void **state)
{
	(void)state;
	write_zone();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(zone_path);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_cert),
	        cmocka_unit_test(test_sources),
	        cmocka_unit_test(test_learned_limit),
	        cmocka_unit_test(test_map_limit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
