/*
 * tcpr: in-order delivery, retransmissions, overlaps (first data wins),
 * 32-bit wrap, FIN/RST, and each limit (memcap, TCPR_MEMCAP_DEFAULT, TCPR_MAX_AHEAD,
 * TCPR_MAX_RANGES) at and past.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tcpr.h"
#include "testutil.h"

struct out {
	uint8_t *buf; /* delivered bytes; gap bytes written as '#' */
	size_t len, cap;
	unsigned ngaps;
	uint64_t gap_bytes;
	int ended; /* -1 none, else enum tcpr_end */
	unsigned end_calls;
};

static void
out_put(struct out *o, const uint8_t *p, size_t len, int fill)
{
	if (o->len + len > o->cap) {
		o->cap = (o->len + len) * 2 + 64;
		o->buf = realloc(o->buf, o->cap);
		assert_non_null(o->buf);
	}
	if (p)
		memcpy(o->buf + o->len, p, len);
	else
		memset(o->buf + o->len, fill, len);
	o->len += len;
}

static void
on_data(void *arg, const uint8_t *p, size_t len)
{
	assert_true(len > 0);
	out_put(arg, p, len, 0);
}

static void
on_gap(void *arg, uint64_t len)
{
	struct out *o = arg;
	assert_true(len > 0);
	o->ngaps++;
	o->gap_bytes += len;
	out_put(o, NULL, (size_t)len, '#');
}

static void
on_end(void *arg, enum tcpr_end how)
{
	struct out *o = arg;
	o->ended = (int)how;
	o->end_calls++;
}

struct rig {
	struct tcpr t;
	struct out o;
	struct tcpr_sink sink;
};

static void
rig_init(struct rig *r, uint32_t memcap)
{
	memset(r, 0, sizeof(*r));
	tcpr_init(&r->t, memcap);
	r->o.ended = -1;
	r->sink = (struct tcpr_sink){on_data, on_gap, on_end, &r->o};
}

static void
rig_free(struct rig *r)
{
	tcpr_free(&r->t);
	free(r->o.buf);
}

static void
seg(struct rig *r, uint32_t seq, uint8_t flags, const char *s)
{
	tcpr_segment(&r->t, seq, flags, (const uint8_t *)s, s ? strlen(s) : 0, &r->sink);
}

static void
expect_out(const struct rig *r, const char *want)
{
	if (r->o.len != strlen(want) || (r->o.len && memcmp(r->o.buf, want, r->o.len) != 0))
		fail_msg("delivered '%.*s', want '%s'", (int)r->o.len, (const char *)r->o.buf,
			 want);
}

/* Table: each case is a list of segments (offset from ISN+1, flags, text) and
 * what must come out. */
struct step {
	int32_t off; /* relative to the first data byte */
	uint8_t flags;
	const char *text;
};

struct tcase {
	const char *name;
	uint32_t isn;
	struct step steps[8];
	size_t nsteps;
	const char *want;
	uint64_t retransmits, overlaps, differ, ooo;
	int ended;
};

static void
test_table(void **state)
{
	(void)state;
	static const struct tcase cases[] = {
		{"in order", 1000, {{0, 0, "hello "}, {6, 0, "world"}}, 2, "hello world", 0, 0, 0, 0, -1},
		{"reordered", 1000, {{6, 0, "world"}, {0, 0, "hello "}}, 2, "hello world", 0, 0, 0, 1, -1},
		{"retransmission dropped", 1000, {{0, 0, "abc"}, {0, 0, "abc"}, {3, 0, "def"}}, 3,
		 "abcdef", 1, 0, 0, 0, -1},
		{"partial retransmission trimmed", 7, {{0, 0, "abc"}, {1, 0, "bcde"}}, 2, "abcde", 0, 1, 0, 0,
		 -1},
		{"old bytes differ: delivered copy stays", 7, {{0, 0, "abc"}, {1, 0, "XYde"}}, 2, "abcde", 0,
		 1, 0, 0, -1},
		{"held overlap same bytes", 1, {{4, 0, "efgh"}, {2, 0, "cdef"}, {0, 0, "ab"}}, 3,
		 "abcdefgh", 0, 1, 0, 2, -1},
		{"held overlap differs: first wins", 1, {{4, 0, "efgh"}, {2, 0, "cdXY"}, {0, 0, "ab"}}, 3,
		 "abcdefgh", 0, 1, 1, 2, -1},
		{"in-order segment over held bytes: held wins", 1, {{2, 0, "CD"}, {0, 0, "abcdef"}}, 2,
		 "abCDef", 0, 1, 1, 1, -1},
		{"wrap", 0xfffffffcu, {{0, 0, "abc"}, {6, 0, "ghi"}, {3, 0, "def"}}, 3, "abcdefghi", 0, 0, 0,
		 1, -1},
		{"wrap reversed", 0xfffffff0u, {{16, 0, "q"}, {8, 0, "ijklmnop"}, {0, 0, "abcdefgh"}}, 3,
		 "abcdefghijklmnopq", 0, 0, 0, 2, -1},
		{"fin after data", 50, {{0, 0, "ab"}, {2, TCPR_FIN, "cd"}}, 2, "abcd", 0, 0, 0, 0,
		 TCPR_END_FIN},
		{"fin before missing data", 50, {{2, TCPR_FIN, "cd"}, {0, 0, "ab"}}, 2, "abcd", 0, 0, 0, 1,
		 TCPR_END_FIN},
		{"bare fin early", 50, {{4, TCPR_FIN, NULL}, {0, 0, "ab"}, {2, 0, "cd"}}, 3, "abcd", 0, 0, 0,
		 0, TCPR_END_FIN},
		{"rst flushes held with a gap", 9, {{0, 0, "ab"}, {4, 0, "ef"}, {6, TCPR_RST, NULL}}, 3,
		 "ab##ef", 0, 0, 0, 1, TCPR_END_RST},
		{"data after rst ignored", 9, {{0, TCPR_RST, NULL}, {0, 0, "ab"}}, 2, "", 0, 0, 0, 0,
		 TCPR_END_RST},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *c = &cases[i];
		struct rig r;
		rig_init(&r, 0);
		seg(&r, c->isn - 1, TCPR_SYN, NULL);
		for (size_t k = 0; k < c->nsteps; k++)
			seg(&r, c->isn + (uint32_t)c->steps[k].off, c->steps[k].flags, c->steps[k].text);
		if (r.o.len != strlen(c->want) || (r.o.len && memcmp(r.o.buf, c->want, r.o.len) != 0))
			fail_msg("%s: delivered '%.*s', want '%s'", c->name, (int)r.o.len,
				 (const char *)r.o.buf, c->want);
		if (r.t.c.retransmits != c->retransmits || r.t.c.overlaps != c->overlaps ||
		    r.t.c.overlaps_differ != c->differ || r.t.c.out_of_order != c->ooo)
			fail_msg("%s: retransmits %llu overlaps %llu differ %llu ooo %llu", c->name,
				 (unsigned long long)r.t.c.retransmits,
				 (unsigned long long)r.t.c.overlaps,
				 (unsigned long long)r.t.c.overlaps_differ,
				 (unsigned long long)r.t.c.out_of_order);
		if (r.o.ended != c->ended)
			fail_msg("%s: ended %d want %d", c->name, r.o.ended, c->ended);
		assert_true(r.o.end_calls <= 1);
		assert_false(r.t.midstream);
		rig_free(&r);
	}
}

static void
test_midstream(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 0);
	seg(&r, 5000, 0, NULL); /* a pure ACK does not start the stream */
	assert_false(r.t.started);
	seg(&r, 123456, 0, "mid");
	seg(&r, 123459, 0, "dle");
	seg(&r, 123000, 0, "old"); /* before the pickup point: old */
	expect_out(&r, "middle");
	assert_true(r.t.midstream);
	assert_int_equal(r.t.c.retransmits, 1);
	rig_free(&r);
}

/* memcap: a segment ending exactly memcap bytes past delivery is held; one
 * byte further makes the stream skip ahead with a gap. */
/* memcap at and past: a segment ending exactly cap bytes past delivery is
 * held, one ending a byte further forces a skip. init: what tcpr_init gets. */
static void
memcap_case(uint32_t init, uint32_t cap)
{
	uint8_t *big = malloc(cap);
	assert_non_null(big);
	for (size_t i = 0; i < cap; i++)
		big[i] = (uint8_t)('a' + i % 26);
	struct rig r;
	rig_init(&r, init);
	assert_int_equal(r.t.memcap, cap);
	seg(&r, 99, TCPR_SYN, NULL);
	tcpr_segment(&r.t, 100 + 10, 0, big + 10, cap - 10, &r.sink); /* ends at cap: held */
	assert_int_equal(r.t.c.memcap_skips, 0);
	assert_int_equal(tcpr_held(&r.t), cap - 10);
	tcpr_segment(&r.t, 100, 0, big, 10, &r.sink);
	assert_int_equal(r.o.len, cap);
	assert_memory_equal(r.o.buf, big, cap);
	assert_int_equal(r.o.ngaps, 0);
	rig_free(&r);

	rig_init(&r, init);
	seg(&r, 99, TCPR_SYN, NULL);
	tcpr_segment(&r.t, 100 + 5, 0, big, 3, &r.sink);          /* held at 5..8 */
	tcpr_segment(&r.t, 100 + 11, 0, big, cap - 10, &r.sink); /* ends at cap + 1: skip */
	assert_int_equal(r.t.c.memcap_skips, 1);
	assert_int_equal(r.o.ngaps, 2); /* 0..5 and 8..11 */
	assert_int_equal(r.o.gap_bytes, 8);
	assert_int_equal(r.o.len, 11 + cap - 10);
	assert_memory_equal(r.o.buf + 5, big, 3);
	assert_memory_equal(r.o.buf + 11, big, cap - 10);
	assert_int_equal(tcpr_held(&r.t), 0);
	/* delivery goes on after the skip */
	tcpr_segment(&r.t, 100 + 11 + cap - 10, 0, big, 4, &r.sink);
	assert_int_equal(r.o.len, 11 + cap - 10 + 4);
	rig_free(&r);
	free(big);
}

static void
test_memcap(void **state)
{
	(void)state;
	memcap_case(4096, 4096);
	/* 0: the default every dataplane session uses (TCPR_MEMCAP_DEFAULT) */
	memcap_case(0, TCPR_MEMCAP_DEFAULT);

	/* memcap is rounded up to a power of two and capped */
	struct tcpr t;
	tcpr_init(&t, 3000);
	assert_int_equal(t.memcap, 4096);
	tcpr_init(&t, TCPR_MEMCAP_MAX);
	assert_int_equal(t.memcap, TCPR_MEMCAP_MAX);
	tcpr_init(&t, TCPR_MEMCAP_MAX + 1);
	assert_int_equal(t.memcap, TCPR_MEMCAP_MAX);
}

static void
test_max_ahead(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 0);
	seg(&r, 0, TCPR_SYN, NULL);
	seg(&r, 1 + TCPR_MAX_AHEAD, 0, "x"); /* at the limit: accepted (memcap skip) */
	assert_int_equal(r.t.c.too_far, 0);
	assert_int_equal(r.o.gap_bytes, TCPR_MAX_AHEAD);
	rig_free(&r);
	rig_init(&r, 0);
	seg(&r, 0, TCPR_SYN, NULL);
	seg(&r, 1 + TCPR_MAX_AHEAD + 1, 0, "x"); /* past it: dropped */
	assert_int_equal(r.t.c.too_far, 1);
	assert_int_equal(r.o.len, 0);
	seg(&r, 1, 0, "ok");
	expect_out(&r, "ok");
	rig_free(&r);
}

static void
test_max_ranges(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 0);
	seg(&r, 0, TCPR_SYN, NULL);
	/* TCPR_MAX_RANGES disjoint ranges at 2, 4, 6, ...: all held */
	for (uint32_t i = 0; i < TCPR_MAX_RANGES; i++)
		seg(&r, 1 + 2 * (i + 1), 0, "x");
	assert_int_equal(r.t.hold->n, TCPR_MAX_RANGES);
	assert_int_equal(r.t.c.memcap_skips, 0);
	/* one adjacent to an existing range merges: still fits */
	seg(&r, 1 + 3, 0, "y");
	assert_int_equal(r.t.hold->n, TCPR_MAX_RANGES - 1);
	seg(&r, 1 + 3, 0, "z"); /* same bytes again, different: counted, first wins */
	assert_int_equal(r.t.c.overlaps_differ, 1);
	seg(&r, 1 + 5, 0, "w"); /* back to TCPR_MAX_RANGES - 1 ranges? no: merges 4..6 */
	size_t n = r.t.hold->n;
	/* fill up to the limit with far-apart ranges, then one more: skip */
	uint32_t at = 1000;
	while (r.t.hold->n < TCPR_MAX_RANGES) {
		seg(&r, at, 0, "v");
		at += 10;
	}
	assert_int_equal(r.t.c.memcap_skips, 0);
	seg(&r, at, 0, "!");
	assert_int_equal(r.t.c.memcap_skips, 1);
	assert_int_equal(tcpr_held(&r.t), 0);
	assert_true(n > 0);
	assert_int_equal(r.o.len, at - 1 + 1);
	assert_int_equal(r.o.buf[r.o.len - 1], '!');
	assert_int_equal(r.o.buf[2], 'x');
	assert_int_equal(r.o.buf[3], 'y');
	rig_free(&r);
}

static void
test_flush(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 0);
	seg(&r, 0, TCPR_SYN, NULL);
	seg(&r, 1, 0, "ab");
	seg(&r, 5, 0, "ef");
	seg(&r, 9, TCPR_FIN, "ij");
	assert_int_equal(r.o.ended, -1);
	tcpr_flush(&r.t, &r.sink);
	expect_out(&r, "ab##ef##ij");
	assert_int_equal(r.o.ended, TCPR_END_FIN);
	tcpr_flush(&r.t, &r.sink); /* idempotent */
	assert_int_equal(r.o.end_calls, 1);
	rig_free(&r);
}

struct span {
	uint32_t off, len;
};

/* Random segmentations of a known stream, shuffled, duplicated, with
 * overlapping retransmissions and a few segments lost: the output equals the
 * stream except for gaps, whose lengths add up. */
static void
test_random(void **state)
{
	(void)state;
	enum { N = 20000 };
	uint8_t *stream = malloc(N);
	for (size_t i = 0; i < N; i++)
		stream[i] = (uint8_t)(i * 7 + i / 251);
	uint64_t seed = 42;
	for (int iter = 0; iter < 200; iter++) {
		struct span segs[4096];
		size_t ns = 0;
		for (uint32_t off = 0; off < N;) {
			uint32_t len = 1 + (uint32_t)(tu_rand(&seed) % 1500);
			if (len > N - off)
				len = N - off;
			segs[ns].off = off;
			segs[ns++].len = len;
			if (tu_rand(&seed) % 8 == 0 && ns < 4000) { /* overlapping retransmission */
				uint32_t o2 = off > 300 ? off - (uint32_t)(tu_rand(&seed) % 300) : 0;
				segs[ns].off = o2;
				segs[ns++].len = off + len - o2;
			}
			off += len;
		}
		bool lose = iter % 4 == 3;
		size_t lost = lose ? tu_rand(&seed) % ns : (size_t)-1;
		/* local shuffle: displacement bounded so the memcap holds */
		for (size_t i = 0; i + 1 < ns; i++) {
			size_t j = i + tu_rand(&seed) % 4;
			if (j >= ns)
				j = ns - 1;
			struct span tmp = segs[i];
			segs[i] = segs[j];
			segs[j] = tmp;
		}
		struct rig r;
		rig_init(&r, 64 * 1024);
		uint32_t isn = (uint32_t)tu_rand(&seed);
		seg(&r, isn - 1, TCPR_SYN, NULL);
		for (size_t i = 0; i < ns; i++) {
			if (i == lost)
				continue;
			tcpr_segment(&r.t, isn + segs[i].off, 0, stream + segs[i].off, segs[i].len,
				     &r.sink);
			if (i % 5 == 0) /* duplicate */
				tcpr_segment(&r.t, isn + segs[i].off, 0, stream + segs[i].off,
					     segs[i].len, &r.sink);
		}
		tcpr_segment(&r.t, isn + N, TCPR_FIN, NULL, 0, &r.sink);
		tcpr_flush(&r.t, &r.sink);
		assert_int_equal(r.o.len, N);
		for (size_t i = 0; i < N; i++)
			if (r.o.buf[i] != stream[i] && r.o.buf[i] != '#')
				fail_msg("iter %d: byte %zu differs", iter, i);
		assert_int_equal(r.t.c.overlaps_differ, 0);
		if (!lose)
			assert_int_equal(r.o.ngaps, 0);
		assert_int_equal(r.o.ended, TCPR_END_FIN);
		rig_free(&r);
	}
	free(stream);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),      cmocka_unit_test(test_midstream),
		cmocka_unit_test(test_memcap),     cmocka_unit_test(test_max_ahead),
		cmocka_unit_test(test_max_ranges), cmocka_unit_test(test_flush),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
