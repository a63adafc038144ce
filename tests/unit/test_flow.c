/* flow: symmetric keys, bulk lookup, idle expiry and eviction of the oldest
 * flow under pressure, capacity limits; runs on a real EAL (--no-huge). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <rte_eal.h>
#include <rte_memory.h>

#include "flow.h"

struct ended {
	unsigned quiet;
	uint16_t quiet_port[64];
	unsigned n;
	char reason[64][16];
	uint16_t port[64];
};

static void
on_end(void *arg, struct flow_entry *e, const char *reason)
{
	struct ended *x = arg;
	if (x->n < 64) {
		snprintf(x->reason[x->n], sizeof(x->reason[0]), "%s", reason);
		x->port[x->n] = e->key.port_lo;
	}
	x->n++;
}

static void
on_quiet(void *arg, struct flow_entry *e)
{
	struct ended *x = arg;
	if (x->quiet < 64)
		x->quiet_port[x->quiet] = e->key.port_lo;
	x->quiet++;
}

static void
ep(uint8_t ip[16], uint8_t last)
{
	memset(ip, 0, 16);
	ip[10] = ip[11] = 0xff;
	ip[12] = 10;
	ip[15] = last;
}

static struct flow_table *
table(const char *name, uint32_t cap, uint64_t idle, struct ended *x)
{
	char why[128];
	struct flow_table_config c = {.name = name,
	                              .capacity = cap,
	                              .idle_ns = idle,
	                              .trim_ns = idle / 2,
	                              .socket = SOCKET_ID_ANY,
	                              .on_end = on_end,
	                              .on_quiet = on_quiet,
	                              .arg = x};
	struct flow_table *t = flow_table_new(&c, why, sizeof(why));
	if (!t)
		fail_msg("%s", why);
	return t;
}

/* flow i: 10.0.0.1:(1000+i) <-> 10.0.0.2:25 */
static void
key_i(unsigned i, bool reverse, struct flow_key *k)
{
	uint8_t a[16], b[16];
	ep(a, 1);
	ep(b, 2);
	if (reverse)
		flow_key_make(b, 25, a, (uint16_t)(1000 + i), k);
	else
		flow_key_make(a, (uint16_t)(1000 + i), b, 25, k);
}

static void
test_symmetric(void **state)
{
	(void)state;
	struct flow_key k1, k2;
	uint8_t a[16], b[16];
	ep(a, 1);
	ep(b, 2);
	assert_true(flow_key_make(a, 4000, b, 25, &k1));
	assert_false(flow_key_make(b, 25, a, 4000, &k2));
	assert_memory_equal(&k1, &k2, sizeof(k1));
	assert_int_equal(flow_key_hash(&k1), flow_key_hash(&k2));
	/* same address: the port orders */
	assert_true(flow_key_make(a, 25, a, 4000, &k1));
	assert_false(flow_key_make(a, 4000, a, 25, &k2));
	assert_memory_equal(&k1, &k2, sizeof(k1));
}

static void
rand_ip(uint8_t ip[16], bool v6)
{
	for (unsigned i = 0; i < 16; i++)
		ip[i] = (uint8_t)rand();
	if (!v6) {
		memset(ip, 0, 10);
		ip[10] = ip[11] = 0xff;
	}
}

/* Both directions of a connection land on one worker: on the software path
 * (flow_key_hash of the sorted key) and on the NIC path (Toeplitz with the
 * symmetric key), IPv4 and IPv6; and the NIC hash still spreads flows. */
static void
test_hash_symmetric(void **state)
{
	(void)state;
	srand(7);
	unsigned per_queue[4] = {0};
	for (unsigned i = 0; i < 4000; i++) {
		bool v6 = i % 2;
		uint8_t a[16], b[16];
		rand_ip(a, v6);
		rand_ip(b, v6);
		uint16_t pa = (uint16_t)rand(), pb = (uint16_t)rand();
		uint32_t h1 = flow_rss_hash(a, pa, b, pb), h2 = flow_rss_hash(b, pb, a, pa);
		assert_int_equal(h1, h2);
		per_queue[h1 % 4]++;
		struct flow_key k1, k2;
		flow_key_make(a, pa, b, pb, &k1);
		flow_key_make(b, pb, a, pa, &k2);
		assert_int_equal(flow_key_hash(&k1) % 3, flow_key_hash(&k2) % 3);
	}
	for (unsigned q = 0; q < 4; q++)
		assert_in_range(per_queue[q], 800, 1200);
	/* the key is the repeated 16-bit pattern, any length a NIC asks for */
	uint8_t key[52];
	flow_rss_key(key, sizeof(key));
	for (unsigned i = 2; i < sizeof(key); i++)
		assert_int_equal(key[i], key[i - 2]);
	assert_int_equal(key[0], 0x6d);
	assert_int_equal(key[1], 0x5a);
}

static void
test_insert_lookup_bulk(void **state)
{
	(void)state;
	struct ended x = {0};
	struct flow_table *t = table("t_bulk", 64, 0, &x);
	struct flow_key k[FLOW_BULK];
	const struct flow_key *kp[FLOW_BULK];
	struct flow_entry *out[FLOW_BULK];
	for (unsigned i = 0; i < FLOW_BULK; i++) {
		key_i(i, false, &k[i]);
		kp[i] = &k[i];
		if (i % 2 == 0)
			assert_non_null(flow_insert(t, &k[i], i));
	}
	for (unsigned i = 0; i < FLOW_BULK; i++)
		key_i(i, true, &k[i]); /* look up from the other direction */
	flow_lookup_bulk(t, kp, FLOW_BULK, out);
	for (unsigned i = 0; i < FLOW_BULK; i++) {
		if (i % 2 == 0) {
			assert_non_null(out[i]);
			assert_int_equal(out[i]->key.port_lo, 1000 + i);
			assert_ptr_equal(out[i], flow_lookup(t, &k[i]));
		} else {
			assert_null(out[i]);
		}
	}
	assert_int_equal(flow_counters(t)->active, FLOW_BULK / 2);
	flow_end(t, out[0], "fin");
	assert_null(flow_lookup(t, &k[0]));
	assert_int_equal(x.n, 1);
	assert_string_equal(x.reason[0], "fin");
	flow_table_free(t, NULL);
	assert_int_equal(x.n, FLOW_BULK / 2);
	assert_string_equal(x.reason[1], "capture-end");
}

static void
test_idle(void **state)
{
	(void)state;
	struct ended x = {0};
	struct flow_table *t = table("t_idle", 16, 1000, &x);
	struct flow_key k0, k1, k2;
	key_i(0, false, &k0);
	key_i(1, false, &k1);
	key_i(2, false, &k2);
	struct flow_entry *e0 = flow_insert(t, &k0, 0);
	flow_insert(t, &k1, 500);
	flow_insert(t, &k2, 600);
	flow_touch(t, e0, 900);                        /* now the newest */
	assert_int_equal(flow_expire(t, 1500, 10), 0); /* idle exactly 1000 is not past */
	assert_int_equal(flow_expire(t, 1501, 10), 1); /* flow 1 */
	assert_int_equal(x.port[0], 1001);
	assert_null(flow_lookup(t, &k1));
	assert_int_equal(flow_expire(t, 5000, 1), 1); /* max respected: flow 2 */
	assert_non_null(flow_lookup(t, &k0));
	assert_int_equal(flow_expire(t, 5000, 10), 1);
	assert_int_equal(flow_counters(t)->idle, 3);
	assert_string_equal(x.reason[2], "idle");
	flow_table_free(t, NULL);
}

static void
test_trim_quiet(void **state)
{
	(void)state;
	struct ended x = {0};
	struct flow_table *t = table("t_trim", 16, 1000, &x); /* trim after 500 */
	struct flow_key k[4];
	struct flow_entry *e[4];
	for (unsigned i = 0; i < 4; i++) {
		key_i(i, false, &k[i]);
		e[i] = flow_insert(t, &k[i], i * 100);
	}
	assert_int_equal(flow_trim(t, 500, 10), 0); /* quiet exactly 500: not past */
	assert_int_equal(flow_trim(t, 650, 10), 2); /* flows 0 and 1 */
	assert_int_equal(x.quiet_port[0], 1000);
	assert_int_equal(x.quiet_port[1], 1001);
	assert_int_equal(flow_trim(t, 650, 10), 0); /* each once */
	flow_touch(t, e[0], 700);                   /* awake again, now newest */
	assert_int_equal(flow_trim(t, 1199, 1), 1); /* max respected: flow 2 */
	assert_int_equal(x.quiet_port[2], 1002);
	assert_int_equal(flow_trim(t, 1199, 10), 1); /* flow 3; flow 0 (700) is not quiet yet */
	assert_int_equal(flow_trim(t, 1300, 10), 1); /* flow 0 again */
	assert_int_equal(x.quiet_port[4], 1000);
	/* the tail quiet, then touched: it counts as awake again */
	flow_touch(t, e[0], 1400);
	assert_int_equal(flow_trim(t, 2000, 10), 1);
	assert_int_equal(flow_counters(t)->trimmed, 6);
	/* the first awake flow touched: the next one becomes the first awake */
	struct ended y = {0};
	struct flow_table *u = table("t_trim2", 16, 1000, &y);
	struct flow_entry *f[3];
	for (unsigned i = 0; i < 3; i++)
		f[i] = flow_insert(u, &k[i], i * 100);
	assert_int_equal(flow_trim(u, 650, 1), 1);  /* flow 0; flow 1 is the first awake */
	flow_touch(u, f[1], 660);                   /* order now 0, 2, 1 */
	assert_int_equal(flow_trim(u, 701, 10), 1); /* flow 2 (quiet since 200) */
	assert_int_equal(y.quiet_port[1], 1002);
	flow_table_free(u, NULL);
	/* ending a quiet flow keeps the rest consistent */
	flow_end(t, e[1], "fin");
	assert_int_equal(flow_expire(t, 10000, 10), 3);
	assert_int_equal(flow_counters(t)->active, 0);
	flow_table_free(t, NULL);
}

static void
test_evict_oldest(void **state)
{
	(void)state;
	struct ended x = {0};
	const uint32_t cap = FLOW_MIN_CAPACITY;
	struct flow_table *t = table("t_evict", cap, 0, &x);
	struct flow_key k[16];
	for (unsigned i = 0; i < cap; i++) {
		key_i(i, false, &k[i]);
		assert_non_null(flow_insert(t, &k[i], i));
	}
	/* at the limit: nothing evicted */
	assert_int_equal(x.n, 0);
	flow_touch(t, flow_lookup(t, &k[0]), 100); /* flow 0 no longer the oldest */
	key_i(cap, false, &k[cap]);
	assert_non_null(flow_insert(t, &k[cap], 200)); /* past the limit */
	assert_int_equal(x.n, 1);
	assert_string_equal(x.reason[0], "evicted");
	assert_null(flow_lookup(t, &k[1]));
	assert_non_null(flow_lookup(t, &k[0]));
	assert_int_equal(flow_counters(t)->evicted, 1);
	assert_int_equal(flow_counters(t)->active, cap);
	/* many more: the table never holds more than its capacity */
	for (unsigned i = 0; i < 200; i++) {
		struct flow_key kk;
		key_i(100 + i, false, &kk);
		assert_non_null(flow_insert(t, &kk, 300 + i));
	}
	assert_int_equal(flow_counters(t)->active, cap);
	assert_int_equal(flow_counters(t)->peak, cap);
	flow_table_free(t, "capture-end");
}

static void
test_capacity_limits(void **state)
{
	(void)state;
	char why[128];
	struct flow_table_config c = {
	        .name = "t_lim", .capacity = FLOW_MIN_CAPACITY - 1, .socket = SOCKET_ID_ANY};
	assert_null(flow_table_new(&c, why, sizeof(why)));
	assert_non_null(strstr(why, "out of range"));
	c.capacity = FLOW_MAX_CAPACITY + 1;
	assert_null(flow_table_new(&c, why, sizeof(why)));
	c.capacity = FLOW_MIN_CAPACITY;
	struct flow_table *t = flow_table_new(&c, why, sizeof(why));
	assert_non_null(t);
	flow_table_free(t, NULL);
}

static int
eal_up(void **state)
{
	(void)state;
	static char a0[] = "test_flow", a1[] = "-l", a2[] = "0", a3[] = "--no-huge", a4[] = "-m",
	            a5[] = "256", a6[] = "--no-pci", a7[] = "--no-shconf", a8[] = "--no-telemetry",
	            a9[] = "--log-level=*:warning";
	char *argv[] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, NULL};
	return rte_eal_init(10, argv) < 0 ? -1 : 0;
}

static int
eal_down(void **state)
{
	(void)state;
	rte_eal_cleanup();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_symmetric),    cmocka_unit_test(test_hash_symmetric),    cmocka_unit_test(test_insert_lookup_bulk),
	        cmocka_unit_test(test_idle),         cmocka_unit_test(test_trim_quiet),
	        cmocka_unit_test(test_evict_oldest), cmocka_unit_test(test_capacity_limits),
	};
	return cmocka_run_group_tests(tests, eal_up, eal_down);
}
