/*
 * canon: header canonicalisation against RFC 6376 3.4.5, and streaming body
 * canonicalisation against a whole-buffer reference written straight from
 * the RFC text, over random bodies fed in random splits (splits inside CRLF
 * and inside trailing blank lines included).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "canon.h"
#include "hash.h"
#include "testutil.h"

static void
test_header_examples(void **state)
{
	(void)state;
	/* RFC 6376 3.4.5 */
	char out[128];
	const char *a = "A: X", *b = "B : Y\t\r\n\tZ  ";
	size_t n = canon_header(CANON_RELAXED, a, strlen(a), true, out, sizeof(out));
	assert_int_equal(n, strlen("a:X\r\n"));
	assert_memory_equal(out, "a:X\r\n", n);
	n = canon_header(CANON_RELAXED, b, strlen(b), true, out, sizeof(out));
	assert_memory_equal(out, "b:Y Z\r\n", n);
	assert_int_equal(n, 7);
	n = canon_header(CANON_SIMPLE, b, strlen(b), true, out, sizeof(out));
	assert_int_equal(n, strlen(b) + 2);
	assert_memory_equal(out, "B : Y\t\r\n\tZ  \r\n", n);
	n = canon_header(CANON_RELAXED, "SUBJ:   lead", 12, false, out, sizeof(out));
	assert_memory_equal(out, "subj:lead", n);
	assert_int_equal(n, 9);
	assert_int_equal(canon_header(CANON_SIMPLE, a, 4, true, out, 5), (size_t)-1);
	enum canon_alg alg;
	assert_int_equal(canon_parse("relaxed", 7, &alg), 0);
	assert_int_equal(alg, CANON_RELAXED);
	assert_int_equal(canon_parse("Relaxed", 7, &alg), -1);
}

/* ---- reference body canonicalisation, whole buffer ------------------ */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void
sb_put(struct sbuf *s, const char *p, size_t n)
{
	if (n == 0 && s->p)
		return;
	if (s->len + n == 0) {
		s->p = realloc(s->p, 1);
		s->cap = 1;
		return;
	}
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2 + 64;
		s->p = realloc(s->p, s->cap);
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
}

static struct sbuf
reference(enum canon_alg alg, const char *body, size_t len)
{
	/* 1. lines: split at LF; a CR right before the LF belongs to the end */
	struct sbuf out = {0};
	struct sbuf lines[4096];
	size_t nl = 0, start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || body[i] == '\n') {
			if (i == len && start == len)
				break; /* no partial last line */
			size_t end = i;
			if (i < len && end > start && body[end - 1] == '\r')
				end--;
			struct sbuf l = {0};
			sb_put(&l, body + start, end - start);
			if (alg == CANON_RELAXED) {
				/* WSP runs -> one SP, then no WSP at the end */
				struct sbuf r = {0};
				for (size_t k = 0; k < l.len; k++) {
					char c = l.p[k];
					if (c == ' ' || c == '\t') {
						if (!(r.len && r.p[r.len - 1] == ' ' &&
						      k > 0 && (l.p[k - 1] == ' ' || l.p[k - 1] == '\t')))
							sb_put(&r, " ", 1);
						continue;
					}
					sb_put(&r, &c, 1);
				}
				while (r.len && r.p[r.len - 1] == ' ')
					r.len--;
				free(l.p);
				l = r;
			}
			lines[nl++] = l;
			start = i + 1;
		}
	}
	/* 2. drop empty lines at the end */
	while (nl && lines[nl - 1].len == 0)
		free(lines[--nl].p);
	for (size_t i = 0; i < nl; i++) {
		sb_put(&out, lines[i].p ? lines[i].p : "", lines[i].len);
		sb_put(&out, "\r\n", 2);
		free(lines[i].p);
	}
	if (alg == CANON_SIMPLE && out.len == 0)
		sb_put(&out, "\r\n", 2);
	if (!out.p)
		sb_put(&out, "", 0);
	return out;
}

static void
streamed_digest(enum canon_alg alg, uint64_t limit, const char *body, size_t len, uint64_t *seed,
		int mode, uint8_t *digest, uint64_t *total)
{
	struct ws_hash *h = ws_hash_new(WS_HASH_SHA256);
	struct canon_body *cb = malloc(sizeof(*cb));
	canon_body_init(cb, alg, limit, h);
	/* mode / 4: the scanner (0 the default: AVX-512 where the CPU has it;
	 * 1 the scalar reference; 2 SSE2); mode % 4: how the body is split */
	if (mode / 4 == 1)
		canon_body_force_scalar(cb);
	else if (mode / 4 == 2)
		canon_body_force_sse2(cb);
	size_t off = 0;
	while (off < len) {
		size_t n;
		if (mode % 4 == 0)
			n = len; /* whole */
		else if (mode % 4 == 1)
			n = 1; /* byte by byte */
		else if (mode % 4 == 2)
			n = 1 + tu_rand(seed) % 9;
		else
			n = 1 + tu_rand(seed) % 300; /* long enough for the vector loops */
		if (n > len - off)
			n = len - off;
		canon_body_update(cb, (const uint8_t *)body + off, n);
		off += n;
	}
	canon_body_final(cb);
	ws_hash_final(h, digest);
	*total = cb->total;
	free(cb);
	ws_hash_free(h);
}

static void
test_body_random(void **state)
{
	(void)state;
	/* the first alphabet stresses line ends and WSP runs; the second gives
	 * long runs of text with single spaces, which the SIMD scanner takes
	 * 16 bytes at a time */
	static const char alphabet[] = "ab  \t\t\r\n\r\n\n\rx";
	static const char text[] = "abcdefghijklmnopqrstuvwxyz0123456789+/=abcdefghijklmnopqrstu "
				   "vwxyz \t\r\n";
	uint64_t seed = 7;
	char body[600];
	for (int iter = 0; iter < 3000; iter++) {
		size_t len = tu_rand(&seed) % (iter < 100 ? 8 : sizeof(body));
		const char *abc = iter % 2 ? text : alphabet;
		size_t an = iter % 2 ? sizeof(text) - 1 : sizeof(alphabet) - 1;
		for (size_t i = 0; i < len; i++)
			body[i] = abc[tu_rand(&seed) % an];
		if (iter % 5 == 0) /* a run of blank lines at the end */
			for (size_t i = 0; i < 6 && len + 2 <= sizeof(body); i++, len += 2)
				memcpy(body + len, "\r\n", 2);
		for (int a = 0; a < 2; a++) {
			enum canon_alg alg = a ? CANON_RELAXED : CANON_SIMPLE;
			struct sbuf ref = reference(alg, body, len);
			uint8_t want[32];
			ws_hash_oneshot(WS_HASH_SHA256, ref.p, ref.len, want);
			for (int mode = 0; mode < 12; mode++) {
				uint8_t got[32];
				uint64_t total;
				streamed_digest(alg, CANON_NO_LIMIT, body, len, &seed, mode, got, &total);
				if (total != ref.len || memcmp(got, want, 32) != 0)
					fail_msg("iter %d alg %d mode %d: canonical length %llu, want %zu",
						 iter, a, mode, (unsigned long long)total, ref.len);
			}
			/* l=: the hash covers the first l canonical bytes only */
			uint64_t l = ref.len ? tu_rand(&seed) % (ref.len + 1) : 0;
			ws_hash_oneshot(WS_HASH_SHA256, ref.p, (size_t)l, want);
			uint8_t got[32];
			uint64_t total;
			streamed_digest(alg, l, body, len, &seed, 2, got, &total);
			assert_memory_equal(got, want, 32);
			assert_int_equal(total, ref.len);
			free(ref.p);
		}
	}
}

static void
test_body_known(void **state)
{
	(void)state;
	/* RFC 6376 3.4.5 body example and the empty-body rules */
	static const struct {
		enum canon_alg alg;
		const char *in, *out;
	} v[] = {
		{CANON_RELAXED, " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n"},
		{CANON_SIMPLE, " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n"},
		{CANON_SIMPLE, "", "\r\n"},
		{CANON_RELAXED, "", ""},
		{CANON_SIMPLE, "\r\n\r\n", "\r\n"},
		{CANON_RELAXED, " \r\n\t\r\n", ""},
		{CANON_SIMPLE, "no newline", "no newline\r\n"},
		{CANON_RELAXED, "trailing  ", "trailing\r\n"},
		{CANON_SIMPLE, "bare\nlf\n", "bare\r\nlf\r\n"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t want[32], got[32];
		uint64_t seed = 1, total;
		ws_hash_oneshot(WS_HASH_SHA256, v[i].out, strlen(v[i].out), want);
		streamed_digest(v[i].alg, CANON_NO_LIMIT, v[i].in, strlen(v[i].in), &seed, 1, got,
				&total);
		if (memcmp(got, want, 32) != 0 || total != strlen(v[i].out))
			fail_msg("case %zu", i);
	}
}

/*
 * canon_body_set in a lane group (the CLI's --streams): several sets stream
 * different bodies at once, the group runs between canon_set_close and
 * canon_set_final; every digest equals the OpenSSL-backed set's. A member
 * with stage data left at final, l= limits and SHA-1 are covered.
 */
static void
test_set_lanes(void **state)
{
	(void)state;
	struct ws_hash_lanes *g = ws_hash_lanes_new();
	if (!g) {
		print_message("no AVX-512 here: lane sets not tested\n");
		skip();
	}
	enum { N = 20 };
	static struct canon_body_set lanes[N], plain[N];
	static char body[N][20000];
	size_t len[N], done[N];
	uint64_t seed = 11;
	for (int i = 0; i < N; i++)
		lanes[i].lanes = g;
	for (int msg = 0; msg < 4; msg++) {
		for (int i = 0; i < N; i++) {
			len[i] = tu_rand(&seed) % sizeof(body[i]);
			for (size_t k = 0; k < len[i]; k++)
				body[i][k] = "ab \t\r\nxyz0"[tu_rand(&seed) % 10];
			done[i] = 0;
			canon_set_reset(&lanes[i]);
			canon_set_reset(&plain[i]);
			enum canon_alg alg = i % 2 ? CANON_RELAXED : CANON_SIMPLE;
			enum ws_hash_alg h = i % 5 == 4 ? WS_HASH_SHA1 : WS_HASH_SHA256;
			uint64_t l = i % 3 == 0 ? tu_rand(&seed) % 5000 : CANON_NO_LIMIT;
			assert_int_equal(canon_set_get(&lanes[i], alg, h, l, CANON_SET_MAX), 0);
			assert_int_equal(canon_set_get(&plain[i], alg, h, l, CANON_SET_MAX), 0);
		}
		bool left = true;
		while (left) {
			left = false;
			for (int i = 0; i < N; i++) {
				size_t k = tu_rand(&seed) % 3000;
				if (k > len[i] - done[i])
					k = len[i] - done[i];
				canon_set_update(&lanes[i], (const uint8_t *)body[i] + done[i], k);
				canon_set_update(&plain[i], (const uint8_t *)body[i] + done[i], k);
				done[i] += k;
				left = left || done[i] < len[i];
			}
			ws_hash_lanes_run(g);
		}
		for (int i = 0; i < N; i++) {
			canon_set_close(&lanes[i]);
			if (i % 4 != 0) /* the others finalise with their stage full */
				ws_hash_lanes_run(g);
			canon_set_final(&lanes[i]);
			canon_set_final(&plain[i]);
			size_t dl = ws_hash_len(lanes[i].bh[0].halg);
			if (memcmp(lanes[i].bh[0].digest, plain[i].bh[0].digest, dl) != 0)
				fail_msg("message %d set %d: lane digest differs", msg, i);
		}
	}
	for (int i = 0; i < N; i++) {
		canon_set_free(&lanes[i]);
		canon_set_free(&plain[i]);
	}
	ws_hash_lanes_free(g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_examples),
		cmocka_unit_test(test_body_known),
		cmocka_unit_test(test_body_random),
		cmocka_unit_test(test_set_lanes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
