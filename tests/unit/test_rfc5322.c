/* rfc5322: header block parsing, limits, split independence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rfc5322.h"
#include "testutil.h"

/* Parse all of s in one push; returns status, body offset in *body. */
static enum rfc5322_status
parse_all(struct rfc5322_header *h, const char *s, size_t len, size_t *body)
{
	rfc5322_init(h);
	size_t used = 0;
	enum rfc5322_status st = rfc5322_push(h, (const uint8_t *)s, len, &used);
	if (st == RFC5322_NEED_MORE)
		st = rfc5322_finish(h);
	*body = used;
	return st;
}

static void
field_eq(const struct rfc5322_header *h, size_t i, const char *raw, const char *name)
{
	assert_true(i < h->nfields);
	const struct rfc5322_field *f = &h->fields[i];
	assert_int_equal(f->len, strlen(raw));
	assert_memory_equal(rfc5322_field_raw(h, f), raw, f->len);
	assert_int_equal(f->name_len, strlen(name));
	assert_memory_equal(rfc5322_field_raw(h, f), name, f->name_len);
}

static void
test_basic(void **state)
{
	(void)state;
	struct rfc5322_header h;
	const char *m = "From: a@example.com\r\nSubject: hi\r\n there\r\nTo : b@x\r\n\r\nbody\r\n";
	size_t body;
	assert_int_equal(parse_all(&h, m, strlen(m), &body), RFC5322_DONE);
	assert_int_equal(h.nfields, 3);
	field_eq(&h, 0, "From: a@example.com", "From");
	field_eq(&h, 1, "Subject: hi\r\n there", "Subject");
	field_eq(&h, 2, "To : b@x", "To"); /* obsolete WSP before the colon */
	assert_string_equal(m + body, "body\r\n");
	size_t vl;
	const char *v = rfc5322_field_value(&h, &h.fields[1], &vl);
	assert_int_equal(vl, strlen(" hi\r\n there"));
	assert_memory_equal(v, " hi\r\n there", vl);
	assert_true(rfc5322_field_is(&h, &h.fields[1], "SUBJECT", 7));
	assert_false(rfc5322_field_is(&h, &h.fields[1], "Subjec", 6));
	rfc5322_free(&h);
}

static void
test_bare_lf_and_cr(void **state)
{
	(void)state;
	struct rfc5322_header h;
	const char *m = "A: 1\nB: x\ry\r\n\tz\n\nrest";
	size_t body;
	assert_int_equal(parse_all(&h, m, strlen(m), &body), RFC5322_DONE);
	assert_int_equal(h.nfields, 2);
	field_eq(&h, 0, "A: 1", "A");
	field_eq(&h, 1, "B: x\ry\r\n\tz", "B");
	assert_int_equal(h.counters.bare_lf, 3);
	assert_int_equal(h.counters.bare_cr, 1);
	assert_string_equal(m + body, "rest");
	rfc5322_free(&h);
}

static void
test_no_body_and_mbox(void **state)
{
	(void)state;
	struct rfc5322_header h;
	const char *m = "From someone@example.com Mon Jan  1 00:00:00 2024\nX: 1\r\nY: 2";
	size_t body;
	assert_int_equal(parse_all(&h, m, strlen(m), &body), RFC5322_DONE);
	assert_int_equal(h.nfields, 2);
	assert_int_equal(h.counters.mbox_from, 1);
	field_eq(&h, 0, "X: 1", "X");
	field_eq(&h, 1, "Y: 2", "Y");
	rfc5322_free(&h);
}

static void
test_errors(void **state)
{
	(void)state;
	static const struct {
		const char *msg;
		enum rfc5322_error err;
	} cases[] = {
		{"A: 1\r\nnot a field\r\n\r\n", RFC5322_ERR_NO_COLON},
		{" A: 1\r\n\r\n", RFC5322_ERR_LEADING_FOLD},
		{": empty name\r\n\r\n", RFC5322_ERR_BAD_NAME},
		{"Bad Name: x\r\n\r\n", RFC5322_ERR_BAD_NAME},
		{"A: 1\r\n\rX: 2\r\n\r\n", RFC5322_ERR_NO_COLON},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rfc5322_header h;
		size_t body;
		assert_int_equal(parse_all(&h, cases[i].msg, strlen(cases[i].msg), &body),
				 RFC5322_ERROR);
		if (h.error != cases[i].err)
			fail_msg("case %zu: error %s", i, rfc5322_strerror(h.error));
		rfc5322_free(&h);
	}
}

/* A header with one field of exactly n bytes ("X: " + filler). */
static char *
field_of(size_t n, size_t *len)
{
	char *m = malloc(n + 8);
	memcpy(m, "X: ", 3);
	memset(m + 3, 'a', n - 3);
	memcpy(m + n, "\r\n\r\n", 5);
	*len = n + 4;
	return m;
}

static void
test_field_limit(void **state)
{
	(void)state;
	size_t len, body;
	struct rfc5322_header h;
	char *m = field_of(RFC5322_MAX_FIELD_LEN, &len);
	assert_int_equal(parse_all(&h, m, len, &body), RFC5322_DONE);
	assert_int_equal(h.fields[0].len, RFC5322_MAX_FIELD_LEN);
	rfc5322_free(&h);
	free(m);
	m = field_of(RFC5322_MAX_FIELD_LEN + 1, &len);
	assert_int_equal(parse_all(&h, m, len, &body), RFC5322_ERROR);
	assert_int_equal(h.error, RFC5322_ERR_FIELD_TOO_LONG);
	rfc5322_free(&h);
	free(m);
}

static char *
fields(size_t n, size_t *len)
{
	char *m = malloc(n * 8 + 3);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(m + o, "X: 123\r\n", 8);
		o += 8;
	}
	memcpy(m + o, "\r\n", 3);
	*len = o + 2;
	return m;
}

static void
test_count_limit(void **state)
{
	(void)state;
	size_t len, body;
	struct rfc5322_header h;
	char *m = fields(RFC5322_MAX_FIELDS, &len);
	assert_int_equal(parse_all(&h, m, len, &body), RFC5322_DONE);
	assert_int_equal(h.nfields, RFC5322_MAX_FIELDS);
	rfc5322_free(&h);
	free(m);
	m = fields(RFC5322_MAX_FIELDS + 1, &len);
	assert_int_equal(parse_all(&h, m, len, &body), RFC5322_ERROR);
	assert_int_equal(h.error, RFC5322_ERR_TOO_MANY);
	rfc5322_free(&h);
	free(m);
}

static void
test_block_limit(void **state)
{
	(void)state;
	/* fields of 2000 bytes until the block is exactly at the limit */
	size_t per = 2000, n = RFC5322_MAX_BLOCK / per;
	size_t rest = RFC5322_MAX_BLOCK - n * per;
	for (int past = 0; past <= 1; past++) {
		size_t total = RFC5322_MAX_BLOCK + (size_t)past;
		char *m = malloc(total + 3);
		size_t o = 0;
		for (size_t i = 0; i < n; i++) {
			memcpy(m + o, "X: ", 3);
			memset(m + o + 3, 'b', per - 5);
			memcpy(m + o + per - 2, "\r\n", 2);
			o += per;
		}
		size_t last = rest + (size_t)past; /* one more field filling the rest */
		memcpy(m + o, "Y: ", 3);
		memset(m + o + 3, 'c', last - 5);
		memcpy(m + o + last - 2, "\r\n", 2);
		o += last;
		assert_int_equal(o, total);
		memcpy(m + o, "\r\n", 2);
		struct rfc5322_header h;
		size_t body;
		enum rfc5322_status st = parse_all(&h, m, o + 2, &body);
		if (!past) {
			assert_int_equal(st, RFC5322_DONE);
			assert_int_equal(h.len, RFC5322_MAX_BLOCK);
		} else {
			assert_int_equal(st, RFC5322_ERROR);
			assert_int_equal(h.error, RFC5322_ERR_BLOCK_TOO_BIG);
		}
		rfc5322_free(&h);
		free(m);
	}
}

/* Any split of the input gives the same fields and body offset. */
static void
test_split_independence(void **state)
{
	(void)state;
	const char *m = "From someone Mon\nA: 1\r\nB:\tx\r\n  y\r\nC : \xc3\xa9\rq\n"
			"DKIM-Signature: v=1; a=rsa-sha256;\r\n\tb=abc\r\n\r\nBODY\r\n";
	size_t len = strlen(m), body_ref;
	struct rfc5322_header ref;
	assert_int_equal(parse_all(&ref, m, len, &body_ref), RFC5322_DONE);
	uint64_t seed = 42;
	for (int iter = 0; iter < 2000; iter++) {
		struct rfc5322_header h;
		rfc5322_init(&h);
		size_t off = 0, body = 0;
		enum rfc5322_status st = RFC5322_NEED_MORE;
		while (off < len && st == RFC5322_NEED_MORE) {
			size_t n = 1 + tu_rand(&seed) % (iter % 7 == 0 ? 2 : 17);
			if (n > len - off)
				n = len - off;
			size_t used;
			st = rfc5322_push(&h, (const uint8_t *)m + off, n, &used);
			off += used;
			body = off;
		}
		assert_int_equal(st, RFC5322_DONE);
		assert_int_equal(body, body_ref);
		assert_int_equal(h.len, ref.len);
		assert_memory_equal(h.block, ref.block, ref.len);
		assert_int_equal(h.nfields, ref.nfields);
		assert_memory_equal(h.fields, ref.fields, ref.nfields * sizeof(ref.fields[0]));
		assert_memory_equal(&h.counters, &ref.counters, sizeof(ref.counters));
		rfc5322_free(&h);
	}
	rfc5322_free(&ref);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),         cmocka_unit_test(test_bare_lf_and_cr),
		cmocka_unit_test(test_no_body_and_mbox), cmocka_unit_test(test_errors),
		cmocka_unit_test(test_field_limit),   cmocka_unit_test(test_count_limit),
		cmocka_unit_test(test_block_limit),   cmocka_unit_test(test_split_independence),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
