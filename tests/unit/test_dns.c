/*
 * ws_dns: embedded mode on the zones in tests/data/dns, and forward mode
 * against a real nsd serving the same files plus a server that never answers.
 * Run it through tests/harness/dnsd.py (tests/unit/meson.build does), which
 * exports WS_DNSD_PORT and WS_DNSD_UNBOUND_CONF; without them the forward
 * tests fail, they do not skip.
 */
#include <poll.h>
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

#include "dns.h"
#include "ws-config.h"

#define ZONE "example.com.zone"
#define REV_ZONE "5.18.198.in-addr.arpa.zone"
#define BLACKHOLE_NAME "x.blackhole.example.net"
#define TIMEOUT_MS 500

static char embedded_zone[256]; /* both zone files in one, made in main */

static const char *
data_dir(char *buf, size_t len)
{
	const char *root = getenv("WS_SOURCE_ROOT");
	snprintf(buf, len, "%s/tests/data/dns", root ? root : WS_SOURCE_ROOT);
	return buf;
}

static int
append_file(FILE *out, const char *path)
{
	FILE *in = fopen(path, "rb");
	if (!in)
		return -1;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	return 0;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct ws_dns *
embedded(void)
{
	char why[256];
	struct ws_dns_config cfg = {.zone_file = embedded_zone, .timeout_ms = 2000};
	struct ws_dns *d = ws_dns_new(&cfg, why, sizeof(why));
	if (!d)
		fail_msg("embedded resolver: %s", why);
	return d;
}

static const char *
need_env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v)
		fail_msg("%s is not set: run this test through tests/harness/dnsd.py "
			 "(meson test does)", name);
	return v;
}

static struct ws_dns *
forward(void)
{
	char fwd[64], why[256];
	snprintf(fwd, sizeof(fwd), "127.0.0.1@%s", need_env("WS_DNSD_PORT"));
	const char *const list[] = {fwd, NULL};
	struct ws_dns_config cfg = {.forwarders = list, .timeout_ms = 3000};
	struct ws_dns *d = ws_dns_new(&cfg, why, sizeof(why));
	if (!d)
		fail_msg("forward resolver: %s", why);
	return d;
}

/* nsd for everything, the blackhole for *.blackhole.example.net */
static struct ws_dns *
with_blackhole(void)
{
	char why[256];
	struct ws_dns_config cfg = {.config_file = need_env("WS_DNSD_UNBOUND_CONF"),
				    .timeout_ms = TIMEOUT_MS};
	struct ws_dns *d = ws_dns_new(&cfg, why, sizeof(why));
	if (!d)
		fail_msg("resolver on %s: %s", cfg.config_file, why);
	return d;
}

static struct ws_dns_answer *
ask(struct ws_dns *d, const char *name, enum ws_dns_type type, enum ws_dns_status want)
{
	struct ws_dns_answer *a = ws_dns_query(d, name, type);
	assert_non_null(a);
	if (a->status != want)
		fail_msg("%s type %d: status %d (rcode %d, why '%s'), want %d", name, (int)type,
			 (int)a->status, a->rcode, a->why, (int)want);
	return a;
}

static void
expect_txt(struct ws_dns *d, const char *name, const char *value, size_t len, unsigned nstrings)
{
	struct ws_dns_answer *a = ask(d, name, WS_DNS_TXT, WS_DNS_OK);
	assert_int_equal(a->count, 1);
	assert_int_equal(a->rrs[0].type, WS_DNS_TXT);
	assert_int_equal(a->rrs[0].u.txt.len, len);
	assert_int_equal(a->rrs[0].u.txt.nstrings, nstrings);
	assert_memory_equal(a->rrs[0].u.txt.data, value, len);
	assert_int_equal(a->rrs[0].u.txt.data[len], '\0');
	/* 300 in the zone; a cached answer counts down */
	assert_in_range(a->ttl, 290, 300);
	ws_dns_answer_free(a);
}

/* The answers both modes must give for the test zones. */
static void
common_answers(struct ws_dns *d)
{
	expect_txt(d, "single.example.com", "v=spf1 -all", 11, 1);
	expect_txt(d, "multi.example.com", "v=spf1 ip4:192.0.2.0/24 -all", 28, 3);
	expect_txt(d, "empty.example.com", "", 0, 1);
	/* libunbound refuses a TXT RR with no string (rdata length 0) and answers
	 * SERVFAIL for the whole RRset, in both modes: a temporary failure */
	struct ws_dns_answer *nt = ask(d, "nulltxt.example.com", WS_DNS_TXT, WS_DNS_TEMPFAIL);
	assert_int_equal(nt->rcode, 2);
	ws_dns_answer_free(nt);
	/* 300 bytes that the zone holds as 255 + 45 */
	char long_value[301];
	memset(long_value, 'a', 255);
	memset(long_value + 255, 'b', 45);
	long_value[300] = '\0';
	expect_txt(d, "long.example.com", long_value, 300, 2);
	/* names are case-insensitive */
	expect_txt(d, "SINGLE.Example.COM", "v=spf1 -all", 11, 1);

	struct ws_dns_answer *a = ask(d, "twotxt.example.com", WS_DNS_TXT, WS_DNS_OK);
	assert_int_equal(a->count, 2);
	bool first = false, second = false;
	for (size_t i = 0; i < 2; i++) {
		first |= strcmp((char *)a->rrs[i].u.txt.data, "first") == 0;
		second |= strcmp((char *)a->rrs[i].u.txt.data, "second") == 0;
	}
	assert_true(first && second);
	ws_dns_answer_free(a);

	a = ask(d, "missing.example.com", WS_DNS_TXT, WS_DNS_NXDOMAIN);
	assert_int_equal(a->rcode, 3);
	assert_int_equal(a->count, 0);
	ws_dns_answer_free(a);
	a = ask(d, "single.example.com", WS_DNS_A, WS_DNS_NODATA);
	assert_int_equal(a->rcode, 0);
	ws_dns_answer_free(a);
	/* an empty non-terminal exists: NODATA, not NXDOMAIN */
	ws_dns_answer_free(ask(d, "ent.example.com", WS_DNS_TXT, WS_DNS_NODATA));

	a = ask(d, "mail.example.com", WS_DNS_MX, WS_DNS_OK);
	assert_int_equal(a->count, 2);
	for (size_t i = 0; i < 2; i++) {
		const struct ws_dns_rr *rr = &a->rrs[i];
		assert_int_equal(rr->type, WS_DNS_MX);
		if (rr->u.mx.pref == 10)
			assert_string_equal(rr->u.mx.host, "mx1.example.com");
		else if (rr->u.mx.pref == 20)
			assert_string_equal(rr->u.mx.host, "mx2.example.net");
		else
			fail_msg("MX preference %u", rr->u.mx.pref);
	}
	ws_dns_answer_free(a);

	a = ask(d, "mx1.example.com", WS_DNS_A, WS_DNS_OK);
	const uint8_t v4[4] = {192, 0, 2, 1};
	assert_int_equal(a->count, 1);
	assert_memory_equal(a->rrs[0].u.a, v4, 4);
	ws_dns_answer_free(a);
	a = ask(d, "mx1.example.com", WS_DNS_AAAA, WS_DNS_OK);
	const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	assert_memory_equal(a->rrs[0].u.aaaa, v6, 16);
	ws_dns_answer_free(a);

	a = ask(d, "1.5.18.198.in-addr.arpa", WS_DNS_PTR, WS_DNS_OK);
	assert_string_equal(a->rrs[0].u.name, "mx1.example.com");
	ws_dns_answer_free(a);

	/* CNAMEs are followed, over two steps too; asking for the CNAME gives it */
	expect_txt(d, "alias.example.com", "v=spf1 -all", 11, 1);
	expect_txt(d, "Alias2.EXAMPLE.com", "v=spf1 -all", 11, 1);
	a = ask(d, "alias.example.com", WS_DNS_CNAME, WS_DNS_OK);
	assert_string_equal(a->rrs[0].u.name, "single.example.com");
	ws_dns_answer_free(a);
}

static void
test_embedded_answers(void **state)
{
	(void)state;
	struct ws_dns *d = embedded();
	common_answers(d);
	/* no SOA in unbound's static root zone: the data cannot change while the
	 * process runs, so "none" gets WS_DNS_EMBEDDED_NEG_TTL */
	struct ws_dns_answer *a = ask(d, "missing.example.com", WS_DNS_A, WS_DNS_NXDOMAIN);
	assert_int_equal(a->ttl, WS_DNS_EMBEDDED_NEG_TTL);
	ws_dns_answer_free(a);
	/* the root is a static zone: a name outside the file is NXDOMAIN at once,
	 * nothing goes to the network */
	ws_dns_answer_free(ask(d, "www.example.org", WS_DNS_A, WS_DNS_NXDOMAIN));
	ws_dns_free(d);
}

static void
test_embedded_cname_chain_limit(void **state)
{
	(void)state;
	struct ws_dns *d = embedded();
	/* c2 -> c3 -> ... -> c9 -> single is WS_DNS_MAX_CNAME_CHAIN CNAMEs */
	expect_txt(d, "c2.example.com", "v=spf1 -all", 11, 1);
	struct ws_dns_answer *a = ask(d, "c1.example.com", WS_DNS_TXT, WS_DNS_TEMPFAIL);
	assert_non_null(strstr(a->why, "CNAME"));
	ws_dns_answer_free(a);
	ws_dns_free(d);
}

static void
test_setup_errors(void **state)
{
	(void)state;
	char why[256], path[] = "/tmp/ws-test-dns-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *bad = "$ORIGIN example.com.\na A 1.2.3.4\nb A 1.2.3\n";
	assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
	close(fd);
	struct ws_dns_config cfg = {.zone_file = path};
	assert_null(ws_dns_new(&cfg, why, sizeof(why)));
	assert_non_null(strstr(why, "line 3"));
	unlink(path);
	assert_null(ws_dns_new(&cfg, why, sizeof(why)));
	assert_non_null(strstr(why, path));

	const char *const bad_fwd[] = {"not an address", NULL};
	struct ws_dns_config fcfg = {.forwarders = bad_fwd};
	assert_null(ws_dns_new(&fcfg, why, sizeof(why)));
	assert_non_null(strstr(why, "forwarder"));

	const char *const fwd[] = {"127.0.0.1", NULL};
	struct ws_dns_config both = {.zone_file = embedded_zone, .forwarders = fwd};
	assert_null(ws_dns_new(&both, why, sizeof(why)));
	assert_null(ws_dns_new(NULL, why, sizeof(why)));
	ws_dns_free(NULL);
	ws_dns_answer_free(NULL);
}

struct expect {
	const char *name;
	enum ws_dns_type type;
	enum ws_dns_status status;
	unsigned calls;
	uint64_t at; /* when the answer came */
};

static void
count_cb(void *arg, struct ws_dns_answer *a)
{
	struct expect *e = arg;
	e->calls++;
	e->at = now_ms();
	if (a->status != e->status)
		fail_msg("%s: status %d (why '%s'), want %d", e->name, (int)a->status, a->why,
			 (int)e->status);
	ws_dns_answer_free(a);
}

/* Drives the resolver the way an event loop would: poll() on ws_dns_fd with
 * ws_dns_next_timeout_ms, then ws_dns_process, until every expectation has
 * its answer or limit_ms passes. */
static void
drive(struct ws_dns *d, struct expect *e, size_t n, unsigned limit_ms)
{
	uint64_t end = now_ms() + limit_ms;
	for (;;) {
		size_t done = 0;
		for (size_t i = 0; i < n; i++)
			done += e[i].calls > 0;
		if (done == n)
			break;
		if (now_ms() > end)
			fail_msg("%zu of %zu answers after %u ms", done, n, limit_ms);
		int t = ws_dns_next_timeout_ms(d);
		assert_true(t >= 0); /* something is in flight */
		struct pollfd p = {.fd = ws_dns_fd(d), .events = POLLIN};
		assert_true(p.fd >= 0);
		assert_true(poll(&p, 1, t > 100 ? 100 : t) >= 0);
		assert_true(ws_dns_process(d) >= 0);
	}
	for (size_t i = 0; i < n; i++)
		if (e[i].calls != 1)
			fail_msg("%s: callback ran %u times", e[i].name, e[i].calls);
	assert_int_equal(ws_dns_next_timeout_ms(d), -1);
}

static void
test_inflight_limit(void **state)
{
	(void)state;
	struct ws_dns *d = embedded();
	struct expect *e = calloc(WS_DNS_MAX_INFLIGHT, sizeof(*e));
	assert_non_null(e);
	for (size_t i = 0; i < WS_DNS_MAX_INFLIGHT; i++) {
		e[i] = (struct expect){.name = i % 2 ? "single.example.com" : "missing.example.com",
				       .type = WS_DNS_TXT,
				       .status = i % 2 ? WS_DNS_OK : WS_DNS_NXDOMAIN};
		assert_true(ws_dns_query_async(d, e[i].name, e[i].type, count_cb, &e[i]) >= 0);
	}
	struct expect extra = {.name = "single.example.com", .type = WS_DNS_TXT};
	assert_int_equal(ws_dns_query_async(d, extra.name, extra.type, count_cb, &extra), -1);
	drive(d, e, WS_DNS_MAX_INFLIGHT, 10000);
	assert_int_equal(extra.calls, 0);
	/* the table has room again */
	assert_true(ws_dns_query_async(d, extra.name, extra.type, count_cb, &extra) >= 0);
	extra.status = WS_DNS_OK;
	drive(d, &extra, 1, 2000);
	free(e);
	ws_dns_free(d);
}

static void
test_forward_answers(void **state)
{
	(void)state;
	struct ws_dns *d = forward();
	common_answers(d);
	/* negative TTL: min(SOA TTL 300, SOA MINIMUM 60), RFC 2308 */
	struct ws_dns_answer *n = ask(d, "nothing.example.com", WS_DNS_TXT, WS_DNS_NXDOMAIN);
	assert_in_range(n->ttl, 55, 60);
	ws_dns_answer_free(n);
	n = ask(d, "mx1.example.com", WS_DNS_MX, WS_DNS_NODATA);
	assert_in_range(n->ttl, 55, 60);
	ws_dns_answer_free(n);
	/* nsd is not authoritative for it and refuses: a temporary failure */
	struct ws_dns_answer *a = ask(d, "www.example.org", WS_DNS_A, WS_DNS_TEMPFAIL);
	assert_true(a->why[0] != '\0');
	ws_dns_answer_free(a);
	ws_dns_free(d);
}

static void
test_forward_timeout(void **state)
{
	(void)state;
	struct ws_dns *d = with_blackhole();
	/* the config file also sends everything else to nsd */
	expect_txt(d, "single.example.com", "v=spf1 -all", 11, 1);
	uint64_t t0 = now_ms();
	struct ws_dns_answer *a = ask(d, BLACKHOLE_NAME, WS_DNS_TXT, WS_DNS_TEMPFAIL);
	uint64_t took = now_ms() - t0;
	assert_string_equal(a->why, "timeout");
	ws_dns_answer_free(a);
	if (took < TIMEOUT_MS - 20 || took > TIMEOUT_MS + 300)
		fail_msg("timeout after %llu ms, want about %d", (unsigned long long)took,
			 TIMEOUT_MS);
	/* the resolver still works after a cancelled query */
	expect_txt(d, "multi.example.com", "v=spf1 ip4:192.0.2.0/24 -all", 28, 3);
	ws_dns_free(d);
}

struct chain {
	struct ws_dns *d;
	struct expect first, second;
};

/* The timeout's callback asks again at once: it may get the very slot the
 * expired query had, which must then belong to the new query alone. */
static void
chain_cb(void *arg, struct ws_dns_answer *a)
{
	struct chain *c = arg;
	c->first.calls++;
	assert_int_equal(a->status, WS_DNS_TEMPFAIL);
	assert_string_equal(a->why, "timeout");
	ws_dns_answer_free(a);
	assert_true(ws_dns_query_async(c->d, c->second.name, c->second.type, count_cb,
				       &c->second) >= 0);
}

static void
test_ask_from_callback(void **state)
{
	(void)state;
	struct chain c = {.d = with_blackhole(),
			  .first = {.name = BLACKHOLE_NAME, .type = WS_DNS_TXT},
			  .second = {.name = "single.example.com", .type = WS_DNS_TXT,
				     .status = WS_DNS_OK}};
	assert_true(ws_dns_query_async(c.d, c.first.name, c.first.type, chain_cb, &c) >= 0);
	drive(c.d, &c.second, 1, 3000);
	assert_int_equal(c.first.calls, 1);
	ws_dns_free(c.d);
}

/* DNSSEC: the harness signed signed.example.net and, with signatures that
 * expired in 2020, expired.example.net; their keys are the trust anchors. */
static void
test_dnssec(void **state)
{
	(void)state;
	char why[256];
	struct ws_dns_config cfg = {.config_file = need_env("WS_DNSD_UNBOUND_CONF"),
				    .trust_anchor_file = need_env("WS_DNSD_TRUST_ANCHORS"),
				    .timeout_ms = 3000};
	struct ws_dns *d = ws_dns_new(&cfg, why, sizeof(why));
	if (!d)
		fail_msg("validating resolver: %s", why);
	struct ws_dns_answer *a = ask(d, "txt.signed.example.net", WS_DNS_TXT, WS_DNS_OK);
	assert_true(a->secure);
	assert_string_equal((char *)a->rrs[0].u.txt.data, "signed");
	ws_dns_answer_free(a);
	/* a validated "does not exist" (NSEC) */
	a = ask(d, "nothing.signed.example.net", WS_DNS_TXT, WS_DNS_NXDOMAIN);
	assert_true(a->secure);
	ws_dns_answer_free(a);
	a = ask(d, "txt.expired.example.net", WS_DNS_TXT, WS_DNS_BOGUS);
	assert_false(a->secure);
	assert_int_equal(a->count, 0);
	assert_non_null(strstr(a->why, "bogus"));
	ws_dns_answer_free(a);
	/* no trust anchor covers it: answered, not secure */
	a = ask(d, "single.example.com", WS_DNS_TXT, WS_DNS_OK);
	assert_false(a->secure);
	ws_dns_answer_free(a);
	ws_dns_free(d);
	const char *bad_ta = "/nonexistent/trust-anchors";
	cfg.trust_anchor_file = bad_ta;
	assert_null(ws_dns_new(&cfg, why, sizeof(why)));
	assert_non_null(strstr(why, bad_ta));
}

static void
test_async_twenty(void **state)
{
	(void)state;
	struct ws_dns *d = with_blackhole();
	static const struct {
		const char *name;
		enum ws_dns_type type;
		enum ws_dns_status status;
	} q[] = {
		{"single.example.com", WS_DNS_TXT, WS_DNS_OK},
		{"multi.example.com", WS_DNS_TXT, WS_DNS_OK},
		{"long.example.com", WS_DNS_TXT, WS_DNS_OK},
		{"empty.example.com", WS_DNS_TXT, WS_DNS_OK},
		{"twotxt.example.com", WS_DNS_TXT, WS_DNS_OK},
		{"mail.example.com", WS_DNS_MX, WS_DNS_OK},
		{"mx1.example.com", WS_DNS_A, WS_DNS_OK},
		{"mx1.example.com", WS_DNS_AAAA, WS_DNS_OK},
		{"ns1.example.com", WS_DNS_A, WS_DNS_OK},
		{"alias.example.com", WS_DNS_TXT, WS_DNS_OK},
		{"alias2.example.com", WS_DNS_TXT, WS_DNS_OK},
		{"1.5.18.198.in-addr.arpa", WS_DNS_PTR, WS_DNS_OK},
		{"missing.example.com", WS_DNS_TXT, WS_DNS_NXDOMAIN},
		{"missing2.example.com", WS_DNS_A, WS_DNS_NXDOMAIN},
		{"single.example.com", WS_DNS_MX, WS_DNS_NODATA},
		{"ent.example.com", WS_DNS_TXT, WS_DNS_NODATA},
		{"mx1.example.com", WS_DNS_TXT, WS_DNS_NODATA},
		{"x.ent.example.com", WS_DNS_A, WS_DNS_OK},
		{BLACKHOLE_NAME, WS_DNS_TXT, WS_DNS_TEMPFAIL},
		{"y.blackhole.example.net", WS_DNS_A, WS_DNS_TEMPFAIL},
	};
	enum { N = sizeof(q) / sizeof(q[0]) };
	_Static_assert(N == 20, "twenty queries in flight");
	struct expect e[N];
	uint64_t t0 = now_ms();
	for (size_t i = 0; i < N; i++) {
		e[i] = (struct expect){.name = q[i].name, .type = q[i].type, .status = q[i].status};
		assert_true(ws_dns_query_async(d, q[i].name, q[i].type, count_cb, &e[i]) >= 0);
	}
	drive(d, e, N, 3000);
	/* the answers did not wait for the timeouts */
	for (size_t i = 0; i < N; i++)
		if (q[i].status != WS_DNS_TEMPFAIL && e[i].at - t0 >= TIMEOUT_MS)
			fail_msg("%s answered after %llu ms", q[i].name,
				 (unsigned long long)(e[i].at - t0));
	ws_dns_free(d);
}

int
main(void)
{
	char dir[512], path[700];
	data_dir(dir, sizeof(dir));
	snprintf(embedded_zone, sizeof(embedded_zone), "/tmp/ws-test-dns-zone-XXXXXX");
	int fd = mkstemp(embedded_zone);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		fprintf(stderr, "test_dns: cannot create a temporary zone file\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, ZONE);
	int r = append_file(f, path);
	snprintf(path, sizeof(path), "%s/%s", dir, REV_ZONE);
	r |= append_file(f, path);
	fclose(f);
	if (r) {
		fprintf(stderr, "test_dns: cannot read the zones in %s\n", dir);
		unlink(embedded_zone);
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_embedded_answers),
		cmocka_unit_test(test_embedded_cname_chain_limit),
		cmocka_unit_test(test_setup_errors),
		cmocka_unit_test(test_inflight_limit),
		cmocka_unit_test(test_forward_answers),
		cmocka_unit_test(test_forward_timeout),
		cmocka_unit_test(test_ask_from_callback),
		cmocka_unit_test(test_dnssec),
		cmocka_unit_test(test_async_twenty),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(embedded_zone);
	return rc;
}
