/*
 * jsonr: the JSON reader under TLS-RPT reports and the fixture tests:
 * values, escapes and surrogate pairs, numbers, member order and
 * duplicates, the refusals, and JSONR_MAX_DEPTH / JSONR_MAX_LEN at and past.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsonr.h"

static struct jsonr_val *
parse(const char *s)
{
	char why[128];
	return jsonr_parse(s, strlen(s), why, sizeof(why));
}

static void
test_values(void **state)
{
	(void)state;
	struct jsonr_val *v = parse(" {\"a\": [1, -2.5e1, true, false, null, \"x\"], \"b\": {}, \"a\": 0} ");
	assert_non_null(v);
	assert_int_equal(v->type, JSONR_OBJ);
	assert_int_equal(v->n, 3);
	const struct jsonr_val *a = jsonr_get(v, "a"); /* the first of two */
	assert_int_equal(a->type, JSONR_ARR);
	assert_int_equal(a->n, 6);
	const struct jsonr_val *e = a->child;
	assert_true(e->is_int && e->i == 1);
	e = e->next;
	assert_false(e->is_int);
	assert_true(e->num == -25.0);
	e = e->next;
	assert_true(e->type == JSONR_BOOL && e->b);
	e = e->next;
	assert_true(e->type == JSONR_BOOL && !e->b);
	assert_int_equal(e->next->type, JSONR_NULL);
	assert_string_equal(e->next->next->str, "x");
	assert_int_equal(jsonr_get(v, "b")->type, JSONR_OBJ);
	assert_null(jsonr_get(v, "c"));
	assert_null(jsonr_get_str(v, "a"));
	assert_null(jsonr_get(a, "a")); /* not an object */
	jsonr_free(v);
}

static void
test_strings(void **state)
{
	(void)state;
	struct jsonr_val *v = parse("\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00\"");
	assert_non_null(v);
	assert_string_equal(v->str, "a\"\\/\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	assert_int_equal(v->len, strlen(v->str));
	jsonr_free(v);
	/* refused: unpaired surrogates, \u0000, bad escapes, raw controls */
	const char *bad[] = {"\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83dx\"", "\"\\u0000\"", "\"\\x\"",
			     "\"\\u12g4\"", "\"a\nb\"", "\"open", "\"\\"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i]))
			fail_msg("'%s' accepted", bad[i]);
}

static void
test_refusals(void **state)
{
	(void)state;
	const char *bad[] = {"", " ", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{1:2}", "01", "1.",
			     "-", "1e", "tru", "nul", "[1] x", "{} {}", "+1", ".5", "[1 2]"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char why[128];
		struct jsonr_val *v = jsonr_parse(bad[i], strlen(bad[i]), why, sizeof(why));
		if (v)
			fail_msg("'%s' accepted", bad[i]);
		assert_true(why[0] != '\0');
	}
	/* a huge integer keeps the double, not the int64 */
	struct jsonr_val *v = parse("123456789012345678901234567890");
	assert_non_null(v);
	assert_false(v->is_int);
	jsonr_free(v);
}

static void
test_limits(void **state)
{
	(void)state;
	/* JSONR_MAX_DEPTH nested arrays, and one more */
	char deep[2 * JSONR_MAX_DEPTH + 4];
	for (unsigned i = 0; i < JSONR_MAX_DEPTH; i++) {
		deep[i] = '[';
		deep[2 * JSONR_MAX_DEPTH - 1 - i] = ']';
	}
	deep[2 * JSONR_MAX_DEPTH] = '\0';
	struct jsonr_val *v = parse(deep);
	assert_non_null(v);
	jsonr_free(v);
	char deeper[2 * JSONR_MAX_DEPTH + 4];
	snprintf(deeper, sizeof(deeper), "[%s]", deep);
	assert_null(parse(deeper));
	/* JSONR_MAX_LEN bytes, and one more */
	char *big = malloc(JSONR_MAX_LEN + 2);
	assert_non_null(big);
	memset(big, ' ', JSONR_MAX_LEN + 1);
	memcpy(big, "\"\"", 2);
	char why[128];
	v = jsonr_parse(big, JSONR_MAX_LEN, why, sizeof(why));
	assert_non_null(v);
	jsonr_free(v);
	assert_null(jsonr_parse(big, JSONR_MAX_LEN + 1, why, sizeof(why)));
	assert_non_null(strstr(why, "JSONR_MAX_LEN"));
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
