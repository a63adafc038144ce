/*
 * dnscache: TTLs from answers (positive and negative), no caching of
 * temporary failures, LRU eviction at the bound, the name and record-count
 * limits at and past, attached parsed objects, deep copies, counters, and
 * dnscache_resolve over an embedded ws_dns (tests/data/dns/example.com.zone).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dns.h"
#include "dnscache.h"
#include "ws-config.h"

static struct ws_dns_answer *
txt_answer(enum ws_dns_status st, uint32_t ttl, const char *text, size_t n)
{
	struct ws_dns_answer *a = calloc(1, sizeof(*a));
	assert_non_null(a);
	a->status = st;
	a->ttl = ttl;
	a->rcode = 0;
	if (st != WS_DNS_OK)
		return a;
	a->rrs = calloc(n, sizeof(*a->rrs));
	assert_non_null(a->rrs);
	a->count = n;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(text);
		a->rrs[i].type = WS_DNS_TXT;
		a->rrs[i].u.txt.data = malloc(len + 1);
		assert_non_null(a->rrs[i].u.txt.data);
		memcpy(a->rrs[i].u.txt.data, text, len + 1);
		a->rrs[i].u.txt.len = len;
		a->rrs[i].u.txt.nstrings = 1;
	}
	return a;
}

static void
test_ttl_positive(void **state)
{
	(void)state;
	struct dnscache *c = dnscache_new(NULL);
	assert_non_null(c);
	struct ws_dns_answer *a = txt_answer(WS_DNS_OK, 300, "v=spf1 -all", 1);
	assert_int_equal(dnscache_put(c, "Example.COM", WS_DNS_TXT, a, 1000), 0);
	/* the cache holds a copy: changing the source changes nothing */
	a->rrs[0].u.txt.data[0] = 'X';
	const struct ws_dns_answer *g = dnscache_get(c, "example.com", WS_DNS_TXT, 1299);
	assert_non_null(g);
	assert_string_equal((const char *)g->rrs[0].u.txt.data, "v=spf1 -all");
	assert_null(dnscache_get(c, "example.com", WS_DNS_A, 1000)); /* other type */
	assert_null(dnscache_get(c, "example.com", WS_DNS_TXT, 1300)); /* expired at now+ttl */
	struct dnscache_stats st;
	dnscache_stats(c, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.entries, 0);
	ws_dns_answer_free(a);
	dnscache_free(c);
}

static void
test_ttl_negative_and_caps(void **state)
{
	(void)state;
	struct dnscache_config cfg = {.max_ttl = 100, .neg_max_ttl = 30, .min_ttl = 5};
	struct dnscache *c = dnscache_new(&cfg);
	struct ws_dns_answer *nx = txt_answer(WS_DNS_NXDOMAIN, 60, NULL, 0);
	struct ws_dns_answer *nd = txt_answer(WS_DNS_NODATA, 2, NULL, 0);
	struct ws_dns_answer *ok = txt_answer(WS_DNS_OK, 100000, "x", 1);
	assert_int_equal(dnscache_put(c, "nx.example", WS_DNS_TXT, nx, 0), 0);
	assert_int_equal(dnscache_put(c, "nd.example", WS_DNS_TXT, nd, 0), 0);
	assert_int_equal(dnscache_put(c, "ok.example", WS_DNS_TXT, ok, 0), 0);
	/* NXDOMAIN 60 capped to 30 */
	const struct ws_dns_answer *g = dnscache_get(c, "nx.example", WS_DNS_TXT, 29);
	assert_non_null(g);
	assert_int_equal(g->status, WS_DNS_NXDOMAIN);
	assert_null(dnscache_get(c, "nx.example", WS_DNS_TXT, 30));
	/* NODATA 2 raised to the floor 5 */
	assert_non_null(dnscache_get(c, "nd.example", WS_DNS_TXT, 4));
	assert_null(dnscache_get(c, "nd.example", WS_DNS_TXT, 5));
	/* data capped to max_ttl */
	assert_non_null(dnscache_get(c, "ok.example", WS_DNS_TXT, 99));
	assert_null(dnscache_get(c, "ok.example", WS_DNS_TXT, 100));
	ws_dns_answer_free(nx);
	ws_dns_answer_free(nd);
	ws_dns_answer_free(ok);
	dnscache_free(c);
}

static void
test_tempfail_not_cached(void **state)
{
	(void)state;
	struct dnscache *c = dnscache_new(NULL);
	struct ws_dns_answer *t = txt_answer(WS_DNS_TEMPFAIL, 300, NULL, 0);
	struct ws_dns_answer *b = txt_answer(WS_DNS_BOGUS, 300, NULL, 0);
	assert_int_equal(dnscache_put(c, "t.example", WS_DNS_TXT, t, 0), 1);
	assert_int_equal(dnscache_put(c, "b.example", WS_DNS_TXT, b, 0), 1);
	assert_null(dnscache_get(c, "t.example", WS_DNS_TXT, 0));
	struct dnscache_stats st;
	dnscache_stats(c, &st);
	assert_int_equal(st.uncacheable, 2);
	assert_int_equal(st.entries, 0);
	ws_dns_answer_free(t);
	ws_dns_answer_free(b);
	dnscache_free(c);
}

/* The one TTL policy's caps of 0: such answers are used, never kept. */
static void
test_caps_zero(void **state)
{
	(void)state;
	struct dnscache_config cfg = {.max_ttl = 0, .neg_max_ttl = DNSCACHE_DEFAULT_NEG_MAX_TTL};
	struct dnscache *c = dnscache_new(&cfg);
	struct ws_dns_answer *ok = txt_answer(WS_DNS_OK, 300, "v", 1);
	struct ws_dns_answer *nx = txt_answer(WS_DNS_NXDOMAIN, 300, NULL, 0);
	assert_int_equal(dnscache_put(c, "a.example", WS_DNS_TXT, ok, 0), 1);
	assert_int_equal(dnscache_put(c, "b.example", WS_DNS_TXT, nx, 0), 0);
	cfg = (struct dnscache_config){.max_ttl = 100, .neg_max_ttl = 0};
	dnscache_set_config(c, &cfg);
	assert_int_equal(dnscache_put(c, "a.example", WS_DNS_TXT, ok, 0), 0);
	assert_int_equal(dnscache_put(c, "c.example", WS_DNS_TXT, nx, 0), 1);
	struct dnscache_stats st;
	dnscache_stats(c, &st);
	assert_int_equal(st.uncacheable, 2);
	assert_int_equal(st.entries, 2);
	/* NULL: every default */
	dnscache_set_config(c, NULL);
	assert_int_equal(dnscache_put(c, "c.example", WS_DNS_TXT, nx, 0), 0);
	assert_null(dnscache_get(c, "c.example", WS_DNS_TXT, DNSCACHE_DEFAULT_NEG_MAX_TTL));
	ws_dns_answer_free(ok);
	ws_dns_answer_free(nx);
	dnscache_free(c);
}

static void
test_lru_eviction(void **state)
{
	(void)state;
	struct dnscache_config cfg = {.max_entries = 3, .max_ttl = DNSCACHE_DEFAULT_MAX_TTL,
				      .neg_max_ttl = DNSCACHE_DEFAULT_NEG_MAX_TTL};
	struct dnscache *c = dnscache_new(&cfg);
	struct ws_dns_answer *a = txt_answer(WS_DNS_OK, 300, "v", 1);
	assert_int_equal(dnscache_put(c, "a.example", WS_DNS_TXT, a, 0), 0);
	assert_int_equal(dnscache_put(c, "b.example", WS_DNS_TXT, a, 0), 0);
	assert_int_equal(dnscache_put(c, "c.example", WS_DNS_TXT, a, 0), 0);
	/* at the bound: nothing evicted yet; touching a makes b the oldest */
	assert_non_null(dnscache_get(c, "a.example", WS_DNS_TXT, 1));
	assert_int_equal(dnscache_put(c, "d.example", WS_DNS_TXT, a, 1), 0); /* past it */
	assert_null(dnscache_get(c, "b.example", WS_DNS_TXT, 1));
	assert_non_null(dnscache_get(c, "a.example", WS_DNS_TXT, 1));
	assert_non_null(dnscache_get(c, "c.example", WS_DNS_TXT, 1));
	assert_non_null(dnscache_get(c, "d.example", WS_DNS_TXT, 1));
	struct dnscache_stats st;
	dnscache_stats(c, &st);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(st.entries, 3);
	/* replacing an entry is not an eviction */
	assert_int_equal(dnscache_put(c, "d.example", WS_DNS_TXT, a, 2), 0);
	dnscache_stats(c, &st);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(st.entries, 3);
	ws_dns_answer_free(a);
	dnscache_free(c);
}

static void
test_name_limit(void **state)
{
	(void)state;
	struct dnscache *c = dnscache_new(NULL);
	struct ws_dns_answer *a = txt_answer(WS_DNS_OK, 300, "v", 1);
	char name[DNSCACHE_NAME_MAX + 2];
	memset(name, 'a', sizeof(name));
	for (size_t i = 63; i < sizeof(name); i += 64)
		name[i] = '.';
	name[DNSCACHE_NAME_MAX] = '\0'; /* at the limit */
	assert_int_equal(dnscache_put(c, name, WS_DNS_TXT, a, 0), 0);
	assert_non_null(dnscache_get(c, name, WS_DNS_TXT, 0));
	name[DNSCACHE_NAME_MAX] = 'a';
	name[DNSCACHE_NAME_MAX + 1] = '\0'; /* one past */
	assert_int_equal(dnscache_put(c, name, WS_DNS_TXT, a, 0), 1);
	assert_null(dnscache_get(c, name, WS_DNS_TXT, 0));
	ws_dns_answer_free(a);
	dnscache_free(c);
}

static void
test_rr_limit(void **state)
{
	(void)state;
	struct dnscache *c = dnscache_new(NULL);
	struct ws_dns_answer *at = txt_answer(WS_DNS_OK, 300, "r", DNSCACHE_MAX_RRS);
	struct ws_dns_answer *past = txt_answer(WS_DNS_OK, 300, "r", DNSCACHE_MAX_RRS + 1);
	assert_int_equal(dnscache_put(c, "at.example", WS_DNS_TXT, at, 0), 0);
	const struct ws_dns_answer *g = dnscache_get(c, "at.example", WS_DNS_TXT, 0);
	assert_non_null(g);
	assert_int_equal(g->count, DNSCACHE_MAX_RRS);
	assert_int_equal(dnscache_put(c, "past.example", WS_DNS_TXT, past, 0), 1);
	assert_null(dnscache_get(c, "past.example", WS_DNS_TXT, 0));
	ws_dns_answer_free(at);
	ws_dns_answer_free(past);
	dnscache_free(c);
}

static int freed;
static void
count_free(void *p)
{
	freed++;
	free(p);
}

static void
test_attach(void **state)
{
	(void)state;
	freed = 0;
	struct dnscache_config cfg = {.max_entries = 1, .max_ttl = DNSCACHE_DEFAULT_MAX_TTL,
				      .neg_max_ttl = DNSCACHE_DEFAULT_NEG_MAX_TTL};
	struct dnscache *c = dnscache_new(&cfg);
	struct ws_dns_answer *a = txt_answer(WS_DNS_OK, 10, "v=DMARC1; p=none", 1);
	int *obj = malloc(sizeof(int));
	assert_int_equal(dnscache_attach(c, "_dmarc.example", WS_DNS_TXT, obj, count_free), -1);
	assert_int_equal(dnscache_put(c, "_dmarc.example", WS_DNS_TXT, a, 0), 0);
	assert_int_equal(dnscache_attach(c, "_dmarc.example", WS_DNS_TXT, obj, count_free), 0);
	assert_ptr_equal(dnscache_attached(c, "_DMARC.example", WS_DNS_TXT, 9), obj);
	/* replacing the attachment frees the old one */
	assert_int_equal(dnscache_attach(c, "_dmarc.example", WS_DNS_TXT, malloc(1), count_free), 0);
	assert_int_equal(freed, 1);
	/* expiry frees it */
	assert_null(dnscache_attached(c, "_dmarc.example", WS_DNS_TXT, 10));
	assert_int_equal(freed, 2);
	/* eviction frees it */
	assert_int_equal(dnscache_put(c, "x.example", WS_DNS_TXT, a, 20), 0);
	assert_int_equal(dnscache_attach(c, "x.example", WS_DNS_TXT, malloc(1), count_free), 0);
	assert_int_equal(dnscache_put(c, "y.example", WS_DNS_TXT, a, 20), 0);
	assert_int_equal(freed, 3);
	/* and so does the end */
	assert_int_equal(dnscache_attach(c, "y.example", WS_DNS_TXT, malloc(1), count_free), 0);
	dnscache_free(c);
	assert_int_equal(freed, 4);
	ws_dns_answer_free(a);
}

static void
test_resolve_embedded(void **state)
{
	(void)state;
	char zone[512];
	const char *root = getenv("WS_SOURCE_ROOT");
	snprintf(zone, sizeof(zone), "%s/tests/data/dns/example.com.zone",
		 root ? root : WS_SOURCE_ROOT);
	char why[256];
	struct ws_dns_config dc = {.zone_file = zone, .timeout_ms = 2000};
	struct ws_dns *d = ws_dns_new(&dc, why, sizeof(why));
	if (!d)
		fail_msg("embedded resolver: %s", why);
	struct dnscache *c = dnscache_new(NULL);
	const struct ws_dns_answer *a = dnscache_resolve(c, d, "single.example.com", WS_DNS_TXT, 0);
	assert_non_null(a);
	assert_int_equal(a->status, WS_DNS_OK);
	assert_string_equal((const char *)a->rrs[0].u.txt.data, "v=spf1 -all");
	a = dnscache_resolve(c, d, "SINGLE.example.com", WS_DNS_TXT, 1);
	assert_int_equal(a->status, WS_DNS_OK);
	/* embedded local data answers NODATA with WS_DNS_EMBEDDED_NEG_TTL (the
	 * zone cannot change under us): cached and served like data */
	a = dnscache_resolve(c, d, "single.example.com", WS_DNS_MX, 1);
	assert_int_equal(a->status, WS_DNS_NODATA);
	assert_int_equal(a->ttl, WS_DNS_EMBEDDED_NEG_TTL);
	a = dnscache_resolve(c, d, "single.example.com", WS_DNS_MX, 1);
	assert_int_equal(a->status, WS_DNS_NODATA);
	struct dnscache_stats st;
	dnscache_stats(c, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.expired, 0);
	assert_int_equal(st.entries, 2);
	dnscache_free(c);
	ws_dns_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ttl_positive),
		cmocka_unit_test(test_ttl_negative_and_caps),
		cmocka_unit_test(test_tempfail_not_cached),
		cmocka_unit_test(test_caps_zero),
		cmocka_unit_test(test_lru_eviction),
		cmocka_unit_test(test_name_limit),
		cmocka_unit_test(test_rr_limit),
		cmocka_unit_test(test_attach),
		cmocka_unit_test(test_resolve_embedded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
