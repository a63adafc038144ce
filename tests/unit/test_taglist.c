/* taglist and b64: the value syntax of DKIM/ARC tags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "b64.h"
#include "taglist.h"

static void
test_parse_ok(void **state)
{
	(void)state;
	const char *s = " v=1; a=rsa-sha256;\r\n\tb=ab cd\r\n ef==;bh = xyz ; h=from:to;z=;";
	struct taglist tl;
	const char *why = NULL;
	assert_int_equal(taglist_parse(s, strlen(s), &tl, &why), 0);
	assert_int_equal(tl.n, 6);
	const struct taglist_tag *b = taglist_get(&tl, "b");
	assert_non_null(b);
	assert_int_equal(b->value_len, strlen("ab cd\r\n ef=="));
	char nows[32];
	assert_int_equal(taglist_value_nows(b, nows, sizeof(nows)), 8);
	assert_string_equal(nows, "abcdef==");
	const struct taglist_tag *bh = taglist_get(&tl, "bh");
	assert_true(taglist_value_is(bh, "xyz", 0));
	assert_int_equal(taglist_get(&tl, "z")->value_len, 0);
	assert_null(taglist_get(&tl, "V")); /* names are case-sensitive */
	/* b= cut points: after '=' up to the ';' */
	assert_int_equal(s[b->eq_end - 1], '=');
	assert_int_equal(s[b->spec_end], ';');
	/* empty list and lone separators at the end */
	assert_int_equal(taglist_parse("", 0, &tl, &why), 0);
	assert_int_equal(tl.n, 0);
	assert_int_equal(taglist_parse("a=1;  ", 6, &tl, &why), 0);
	assert_int_equal(tl.n, 1);
}

static void
test_parse_errors(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"a=1; a=2",          /* duplicate */
		"1a=x",              /* name must start with a letter */
		"a",                 /* no '=' */
		"a=1;;b=2",          /* empty tag-spec */
		"a=\x01",            /* control character */
		"a=x;b=y\x7f",       /* DEL */
		"a-b=1",             /* '-' not in a name */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct taglist tl;
		const char *why = NULL;
		if (taglist_parse(bad[i], strlen(bad[i]), &tl, &why) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(why);
	}
}

static void
test_limits(void **state)
{
	(void)state;
	char buf[4096];
	size_t o = 0;
	struct taglist tl;
	const char *why;
	for (unsigned i = 0; i < TAGLIST_MAX_TAGS; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "t%u=1;", i);
	assert_int_equal(taglist_parse(buf, o, &tl, &why), 0);
	assert_int_equal(tl.n, TAGLIST_MAX_TAGS);
	o += (size_t)snprintf(buf + o, sizeof(buf) - o, "over=1");
	assert_int_equal(taglist_parse(buf, o, &tl, &why), -1);

	char name[TAGLIST_MAX_NAME + 8];
	memset(name, 'n', TAGLIST_MAX_NAME);
	memcpy(name + TAGLIST_MAX_NAME, "=1", 3);
	assert_int_equal(taglist_parse(name, strlen(name), &tl, &why), 0);
	memset(name, 'n', TAGLIST_MAX_NAME + 1);
	memcpy(name + TAGLIST_MAX_NAME + 1, "=1", 3);
	assert_int_equal(taglist_parse(name, strlen(name), &tl, &why), -1);
}

static void
test_b64(void **state)
{
	(void)state;
	static const struct {
		const char *plain, *enc;
	} v[] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
		 {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char enc[32];
		uint8_t dec[32];
		size_t n = strlen(v[i].plain);
		assert_int_equal(b64_encode((const uint8_t *)v[i].plain, n, enc), strlen(v[i].enc));
		assert_string_equal(enc, v[i].enc);
		assert_int_equal(b64_decode(v[i].enc, strlen(v[i].enc), dec, sizeof(dec)), (long)n);
		assert_memory_equal(dec, v[i].plain, n);
	}
	uint8_t out[16];
	assert_int_equal(b64_decode(" Zm9v\r\n\tYmFy ", 13, out, sizeof(out)), 6);
	assert_int_equal(b64_decode("Zm9", 3, out, sizeof(out)), -1);     /* not a multiple of 4 */
	assert_int_equal(b64_decode("Zm9v!mFy", 8, out, sizeof(out)), -1); /* bad character */
	assert_int_equal(b64_decode("Zg==Zg==", 8, out, sizeof(out)), -1); /* data after padding */
	assert_int_equal(b64_decode("Z===", 4, out, sizeof(out)), -1);
	assert_int_equal(b64_decode("Zm9vYmFy", 8, out, 5), -1);          /* does not fit */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_b64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
