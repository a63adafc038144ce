/* zonefile: table-driven master-file cases, every limit at and past it,
 * error line numbers, and the decoded form of each type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "zonefile.h"

/* Every record of z formatted with zonefile_rr_format, one per line. */
static char *
dump(const struct zonefile *z)
{
	size_t cap = 1, off = 0;
	for (size_t i = 0; i < z->count; i++)
		cap += zonefile_rr_format(&z->rrs[i], NULL, 0) + 1;
	char *out = malloc(cap);
	assert_non_null(out);
	out[0] = '\0';
	for (size_t i = 0; i < z->count; i++) {
		size_t n = zonefile_rr_format(&z->rrs[i], out + off, cap - off);
		off += n;
		if (i + 1 < z->count)
			out[off++] = '\n';
		out[off] = '\0';
	}
	return out;
}

static const struct ok_case {
	const char *name;
	const char *origin;
	const char *in;
	const char *out;
} ok_cases[] = {
	{"empty", NULL, "", ""},
	{"only comments", NULL, "; nothing\n\n   ; here\n", ""},
	{"soa with origin and ttl", NULL,
	 "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 host 1 2 3 4 5\n",
	 "example.com. 300 IN SOA ns1.example.com. host.example.com. 1 2 3 4 5"},
	{"soa over parentheses, timers with units", "example.com",
	 "@ SOA ns1.example.com. h.example.com. (\n 2026 ; serial\n 1h 10m\n 1w 1d )\n",
	 "example.com. 3600 IN SOA ns1.example.com. h.example.com. 2026 3600 600 604800 86400"},
	{"ttl and class in both orders, owner inherited", "example.com",
	 "a 60 IN A 1.2.3.4\n  IN 70 AAAA 2001:DB8:0:0::1\n\tTXT x\n",
	 "a.example.com. 60 IN A 1.2.3.4\na.example.com. 70 IN AAAA 2001:db8::1\n"
	 "a.example.com. 70 IN TXT \"x\""},
	{"last explicit ttl is inherited without $TTL", "ex.org",
	 "a A 1.1.1.1\nb 60 A 1.1.1.1\nc A 1.1.1.1\n",
	 "a.ex.org. 3600 IN A 1.1.1.1\nb.ex.org. 60 IN A 1.1.1.1\nc.ex.org. 60 IN A 1.1.1.1"},
	{"$TTL wins over the last ttl", "ex.org", "$TTL 1h30m\nb 60 A 1.1.1.1\nc A 1.1.1.1\n",
	 "b.ex.org. 60 IN A 1.1.1.1\nc.ex.org. 5400 IN A 1.1.1.1"},
	{"relative and absolute names, @ in rdata", "ex.org",
	 "a.b. A 1.2.3.4\nc A 1.2.3.4\nmail MX 10 @\n@ MX 0 .\n",
	 "a.b. 3600 IN A 1.2.3.4\nc.ex.org. 3600 IN A 1.2.3.4\n"
	 "mail.ex.org. 3600 IN MX 10 ex.org.\nex.org. 3600 IN MX 0 ."},
	{"names are lowercased", "Ex.ORG", "WWW CNAME Target\nX.Y.COM. PTR Host.Example.\n",
	 "www.ex.org. 3600 IN CNAME target.ex.org.\nx.y.com. 3600 IN PTR host.example."},
	{"relative $ORIGIN", "ex.org", "$ORIGIN sub\na NS ns1\n",
	 "a.sub.ex.org. 3600 IN NS ns1.sub.ex.org."},
	{"no origin: relative names are under the root", NULL, "host A 10.0.0.1\n",
	 "host. 3600 IN A 10.0.0.1"},
	{"multi-string txt, quotes keep ; and spaces", "ex.org",
	 "t TXT \"v=spf1 \" \"a;b\" ( \"c\" ; comment\n  \"d e\" )\n",
	 "t.ex.org. 3600 IN TXT \"v=spf1 \" \"a;b\" \"c\" \"d e\""},
	{"escapes in quoted and bare strings", "ex.org",
	 "t TXT \"q\\\"uote\" \"back\\\\slash\" \"\\065\\066\" bare\\032word \"\\009\"\n",
	 "t.ex.org. 3600 IN TXT \"q\\\"uote\" \"back\\\\slash\" \"AB\" \"bare word\" \"\\009\""},
	{"empty txt string", "ex.org", "t TXT \"\"\n", "t.ex.org. 3600 IN TXT \"\""},
	{"txt with no string at all (RFC 3597)", "ex.org", "t TXT \\# 0\n",
	 "t.ex.org. 3600 IN TXT \\# 0"},
	{"generic txt rdata becomes strings", "ex.org", "t TXT \\# 6 036162 63 0178\n",
	 "t.ex.org. 3600 IN TXT \"abc\" \"x\""},
	{"crlf line endings and no final newline", "ex.org", "a A 1.2.3.4\r\nb A 5.6.7.8",
	 "a.ex.org. 3600 IN A 1.2.3.4\nb.ex.org. 3600 IN A 5.6.7.8"},
	{"type and class words are case-insensitive", "ex.org", "a in txt \"X\"\nb 1 mx 5 mx\n",
	 "a.ex.org. 3600 IN TXT \"X\"\nb.ex.org. 1 IN MX 5 mx.ex.org."},
	{"ttl at its limit", "ex.org", "a 2147483647 A 1.2.3.4\n",
	 "a.ex.org. 2147483647 IN A 1.2.3.4"},
	{"mx preference at its limit", "ex.org", "a MX 65535 mx\n",
	 "a.ex.org. 3600 IN MX 65535 mx.ex.org."},
};

static void
test_ok_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		const struct ok_case *c = &ok_cases[i];
		struct zonefile *z;
		struct zonefile_error err;
		if (zonefile_parse((const uint8_t *)c->in, strlen(c->in), c->origin, &z, &err) != 0)
			fail_msg("case '%s': line %u: %s", c->name, err.line, err.reason);
		char *got = dump(z);
		if (strcmp(got, c->out) != 0)
			fail_msg("case '%s':\n got  [%s]\n want [%s]", c->name, got, c->out);
		free(got);
		zonefile_free(z);
	}
}

static const struct err_case {
	const char *name;
	const char *in;
	unsigned line;
	const char *reason; /* a substring of the reason */
} err_cases[] = {
	{"$INCLUDE", "a A 1.2.3.4\n$INCLUDE other.zone\n", 2, "$INCLUDE"},
	{"unknown directive", "$FOO bar\n", 1, "unknown directive"},
	{"$TTL without a value", "$TTL\n", 1, "$TTL"},
	{"unsupported type", "\n\na HINFO x y\n", 3, "unsupported type"},
	{"other class", "a CH A 1.2.3.4\n", 1, "only IN"},
	{"bad A", "a A 1.2.3\n", 1, "bad A address"},
	{"bad AAAA", "a AAAA 1.2.3.4\n", 1, "bad AAAA address"},
	{"A with a quoted field", "a A \"1.2.3.4\"\n", 1, "quoted"},
	{"A with two fields", "a A 1.2.3.4 5.6.7.8\n", 1, "needs 1 field"},
	{"SOA with six fields", "@ SOA a b 1 2 3 4\n", 1, "needs 7 fields"},
	{"MX preference past its limit", "a MX 65536 mx\n", 1, "MX preference above"},
	{"TTL past its limit", "a 2147483648 A 1.2.3.4\n", 1, "TTL above"},
	{"bad TTL unit", "a 5x A 1.2.3.4\n", 1, "bad TTL"},
	{"unterminated quote", "a TXT \"x\"\nb TXT \"y\n", 2, "unterminated"},
	{"( never closed: line of the (", "a A 1.2.3.4\nb TXT ( \"x\"\n \"y\"\n", 2, "'('"},
	{"nested parentheses", "a TXT ( ( \"x\" ) )\n", 1, "nested"},
	{") without (", "a TXT \"x\" )\n", 1, "')'"},
	{"nothing to inherit", "  A 1.2.3.4\n", 1, "no owner"},
	{"record without a type", "a 300 IN\n", 1, "without a type"},
	{"TXT without strings", "a TXT\n", 1, "at least one"},
	{"\\DDD above 255", "a TXT \"\\256\"\n", 1, "above 255"},
	{"\\DDD too short", "a TXT \"\\12\"\n", 1, "three digits"},
	{"escape in a name", "a\\.b A 1.2.3.4\n", 1, "escapes in names"},
	{"empty label", "a..b A 1.2.3.4\n", 1, "empty label"},
	{"generic rdata shorter than its length", "t TXT \\# 2 00\n", 1, "shorter"},
	{"generic rdata longer than its length", "t TXT \\# 1 0000\n", 1, "longer"},
	{"generic txt string past the end", "t TXT \\# 2 0561\n", 1, "past the end"},
	{"generic rdata bad hex", "t TXT \\# 1 zz\n", 1, "bad hex"},
	{"generic rdata without a length", "t TXT \\#\n", 1, "needs a length"},
	{"backslash at the end of a line", "a TXT x\\\n", 1, "backslash"},
	{"error line counts lines inside parentheses",
	 "a TXT ( \"x\"\n \"y\"\n \"z\" )\nb A 1.2.3.4\nc A bad\n", 5, "bad A"},
};

static void
test_err_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *c = &err_cases[i];
		struct zonefile *z = (struct zonefile *)&z;
		struct zonefile_error err;
		if (zonefile_parse((const uint8_t *)c->in, strlen(c->in), "ex.org", &z, &err) == 0)
			fail_msg("case '%s': parsed, want an error", c->name);
		assert_null(z);
		if (err.line != c->line || !strstr(err.reason, c->reason))
			fail_msg("case '%s': got line %u '%s', want line %u '%s'", c->name, err.line,
				 err.reason, c->line, c->reason);
	}
}

/* Parses buf; returns 0 or the error line (with reason checked). */
static int
parse_len(const char *buf, size_t len, struct zonefile **z, struct zonefile_error *err)
{
	return zonefile_parse((const uint8_t *)buf, len, "ex.org", z, err);
}

static void
expect_ok(const char *buf, size_t len, size_t records)
{
	struct zonefile *z;
	struct zonefile_error err;
	if (parse_len(buf, len, &z, &err))
		fail_msg("want ok, got line %u: %s", err.line, err.reason);
	assert_int_equal(z->count, records);
	zonefile_free(z);
}

static void
expect_err(const char *buf, size_t len, unsigned line, const char *reason)
{
	struct zonefile *z;
	struct zonefile_error err;
	if (parse_len(buf, len, &z, &err) == 0)
		fail_msg("want an error '%s', parsed", reason);
	if (err.line != line || !strstr(err.reason, reason))
		fail_msg("got line %u '%s', want line %u '%s'", err.line, err.reason, line, reason);
}

static void
test_limit_line(void **state)
{
	(void)state;
	/* line 2 is exactly ZONEFILE_MAX_LINE bytes: a record and a long comment */
	char *buf = malloc(ZONEFILE_MAX_LINE + 64);
	assert_non_null(buf);
	const char *head = "a A 1.1.1.1\n";
	const char *rec = "b A 1.2.3.4 ;";
	size_t h = strlen(head), r = strlen(rec);
	memcpy(buf, head, h);
	memcpy(buf + h, rec, r);
	memset(buf + h + r, 'x', ZONEFILE_MAX_LINE - r);
	size_t len = h + ZONEFILE_MAX_LINE;
	buf[len] = '\n';
	expect_ok(buf, len + 1, 2);
	/* CRLF: the CR is part of the line ending, not of the line */
	buf[len] = '\r';
	buf[len + 1] = '\n';
	expect_ok(buf, len + 2, 2);
	buf[len] = 'x';
	buf[len + 1] = '\n';
	expect_err(buf, len + 2, 2, "line longer");
	/* the same past the limit inside a quoted string and a bare token */
	memcpy(buf + h, "b TXT \"", 7);
	memset(buf + h + 7, 'y', ZONEFILE_MAX_LINE);
	expect_err(buf, h + 7 + ZONEFILE_MAX_LINE, 2, "line longer");
	memcpy(buf + h, "b TXT ", 6);
	expect_err(buf, h + 6 + ZONEFILE_MAX_LINE, 2, "line longer");
	free(buf);
}

static void
test_limit_entry(void **state)
{
	(void)state;
	/* one entry of exactly ZONEFILE_MAX_ENTRY bytes, over many lines */
	char *buf = malloc(ZONEFILE_MAX_ENTRY + 64);
	assert_non_null(buf);
	const char *head = "a TXT ( \"x\"\n";
	size_t off = strlen(head);
	memcpy(buf, head, off);
	/* comment lines of at most 1000 bytes fill all but the closing ')' */
	size_t fill = ZONEFILE_MAX_ENTRY - off - 1;
	while (fill > 0) {
		size_t chunk = fill > 1000 ? 1000 : fill;
		if (fill - chunk == 1)
			chunk--; /* never leave a single byte: it would be a bare newline */
		if (chunk > 1) {
			buf[off] = ';';
			memset(buf + off + 1, 'c', chunk - 2);
		}
		buf[off + chunk - 1] = '\n';
		off += chunk;
		fill -= chunk;
	}
	buf[off++] = ')';
	assert_int_equal(off, ZONEFILE_MAX_ENTRY);
	buf[off] = '\n';
	expect_ok(buf, off + 1, 1);
	expect_ok(buf, off, 1);
	/* one more byte in the same entry */
	buf[off] = ' ';
	buf[off + 1] = '\n';
	expect_err(buf, off + 2, 1, "entry longer");
	free(buf);
}

static void
test_limit_records(void **state)
{
	(void)state;
	const char *rec = " A 1.2.3.4\n";
	size_t r = strlen(rec), n = ZONEFILE_MAX_RECORDS + 1;
	char *buf = malloc(2 + n * r);
	assert_non_null(buf);
	memcpy(buf, "a", 1);
	for (size_t i = 0; i < n; i++)
		memcpy(buf + 1 + i * r, rec, r);
	expect_ok(buf, 1 + ZONEFILE_MAX_RECORDS * r, ZONEFILE_MAX_RECORDS);
	expect_err(buf, 1 + n * r, ZONEFILE_MAX_RECORDS + 1, "records");
	free(buf);
}

static void
test_limit_txt_strings(void **state)
{
	(void)state;
	char buf[16 + 4 * (ZONEFILE_MAX_TXT_STRINGS + 1)];
	size_t off = 0;
	memcpy(buf, "a TXT", 5);
	off = 5;
	for (int i = 0; i < ZONEFILE_MAX_TXT_STRINGS; i++) {
		memcpy(buf + off, " \"s\"", 4);
		off += 4;
	}
	struct zonefile *z;
	struct zonefile_error err;
	assert_int_equal(parse_len(buf, off, &z, &err), 0);
	assert_int_equal(z->rrs[0].u.txt.count, ZONEFILE_MAX_TXT_STRINGS);
	zonefile_free(z);
	memcpy(buf + off, " \"s\"", 4);
	expect_err(buf, off + 4, 1, "strings on one TXT");
}

static void
test_limit_txt_string(void **state)
{
	(void)state;
	char buf[ZONEFILE_MAX_TXT_STRING + 32];
	memcpy(buf, "a TXT \"", 7);
	memset(buf + 7, 'x', ZONEFILE_MAX_TXT_STRING);
	buf[7 + ZONEFILE_MAX_TXT_STRING] = '"';
	struct zonefile *z;
	struct zonefile_error err;
	assert_int_equal(parse_len(buf, 8 + ZONEFILE_MAX_TXT_STRING, &z, &err), 0);
	assert_int_equal(z->rrs[0].u.txt.strings[0].len, ZONEFILE_MAX_TXT_STRING);
	zonefile_free(z);
	buf[7 + ZONEFILE_MAX_TXT_STRING] = 'x';
	buf[8 + ZONEFILE_MAX_TXT_STRING] = '"';
	expect_err(buf, 9 + ZONEFILE_MAX_TXT_STRING, 1, "over 255");
	/* a bare string counts the same */
	memcpy(buf, "a TXT  ", 7);
	expect_err(buf, 8 + ZONEFILE_MAX_TXT_STRING, 1, "over 255");
}

static void
test_limit_name_and_label(void **state)
{
	(void)state;
	char l63[64], l64[65], l61[62], l62[63];
	memset(l63, 'a', 63);
	l63[63] = '\0';
	memset(l64, 'b', 64);
	l64[64] = '\0';
	memset(l61, 'c', 61);
	l61[61] = '\0';
	memset(l62, 'd', 62);
	l62[62] = '\0';
	char buf[600];
	/* label: 63 fine, 64 refused */
	int n = snprintf(buf, sizeof(buf), "%s A 1.2.3.4\n", l63);
	expect_ok(buf, (size_t)n, 1);
	n = snprintf(buf, sizeof(buf), "x A 1.1.1.1\n%s.x. A 1.2.3.4\n", l64);
	expect_err(buf, (size_t)n, 2, "label longer");
	/* name: 63+63+63+61 and three dots = 253 characters = 255 wire bytes */
	n = snprintf(buf, sizeof(buf), "%s.%s.%s.%s. A 1.2.3.4\n", l63, l63, l63, l61);
	struct zonefile *z;
	struct zonefile_error err;
	assert_int_equal(parse_len(buf, (size_t)n, &z, &err), 0);
	assert_int_equal(strlen(z->rrs[0].owner), 253);
	zonefile_free(z);
	n = snprintf(buf, sizeof(buf), "%s.%s.%s.%s. A 1.2.3.4\n", l63, l63, l63, l62);
	expect_err(buf, (size_t)n, 1, "name longer");
	/* the origin is part of the length */
	n = snprintf(buf, sizeof(buf), "$ORIGIN %s.%s.%s.\n%s A 1.2.3.4\n", l63, l63, l63, l61);
	expect_ok(buf, (size_t)n, 1);
	n = snprintf(buf, sizeof(buf), "$ORIGIN %s.%s.%s.\n%s A 1.2.3.4\n", l63, l63, l63, l62);
	expect_err(buf, (size_t)n, 2, "name longer");
	/* names in rdata too */
	n = snprintf(buf, sizeof(buf), "a CNAME %s.%s.%s.%s.\n", l63, l63, l63, l62);
	expect_err(buf, (size_t)n, 1, "name longer");
}

static void
test_decoded(void **state)
{
	(void)state;
	const char *in = "$ORIGIN example.com.\n"
			 "@ 60 SOA ns1 hostmaster 7 1 2 3 4\n"
			 "a A 192.0.2.1\n"
			 "  AAAA 2001:db8::2\n"
			 "m MX 5 mx\n"
			 "t TXT \"one\" \"t\\000o\" \"\"\n"
			 "c CNAME a\n";
	struct zonefile *z;
	struct zonefile_error err;
	assert_int_equal(zonefile_parse((const uint8_t *)in, strlen(in), NULL, &z, &err), 0);
	assert_int_equal(z->count, 6);
	const struct zonefile_rr *r = z->rrs;
	assert_int_equal(r[0].type, ZONEFILE_SOA);
	assert_string_equal(r[0].u.soa.mname, "ns1.example.com");
	assert_string_equal(r[0].u.soa.rname, "hostmaster.example.com");
	assert_int_equal(r[0].u.soa.serial, 7);
	assert_int_equal(r[0].u.soa.minimum, 4);
	assert_int_equal(r[0].line, 2);
	const uint8_t a[4] = {192, 0, 2, 1};
	assert_memory_equal(r[1].u.a, a, 4);
	assert_string_equal(r[2].owner, "a.example.com");
	assert_int_equal(r[2].u.aaaa[15], 2);
	assert_int_equal(r[2].line, 4);
	assert_int_equal(r[3].u.mx.pref, 5);
	assert_string_equal(r[3].u.mx.host, "mx.example.com");
	assert_int_equal(r[4].u.txt.count, 3);
	assert_int_equal(r[4].u.txt.strings[1].len, 3);
	assert_memory_equal(r[4].u.txt.strings[1].data, "t\0o", 3);
	assert_int_equal(r[4].u.txt.strings[2].len, 0);
	assert_string_equal(r[4].rdata, "\"one\" \"t\\000o\" \"\"");
	assert_string_equal(r[5].u.name, "a.example.com");
	assert_string_equal(zonefile_type_name(ZONEFILE_AAAA), "AAAA");
	assert_null(zonefile_type_name((enum zonefile_type)99));
	zonefile_free(z);
	zonefile_free(NULL);
}

static void
test_txt_format(void **state)
{
	(void)state;
	char buf[1024];
	assert_int_equal(zonefile_txt_format(NULL, 0, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "\"\"");
	assert_int_equal(zonefile_txt_format((const uint8_t *)"a\"b\\c\n", 6, buf, sizeof(buf)),
			 13);
	assert_string_equal(buf, "\"a\\\"b\\\\c\\010\"");
	/* 300 bytes: split into 255 + 45, each quoted */
	uint8_t v[300];
	memset(v, 'v', sizeof(v));
	size_t n = zonefile_txt_format(v, sizeof(v), buf, sizeof(buf));
	assert_int_equal(n, 300 + 5);
	assert_int_equal(buf[256], '"');
	assert_int_equal(buf[257], ' ');
	assert_int_equal(buf[258], '"');
	/* exactly 255 stays one string */
	assert_int_equal(zonefile_txt_format(v, 255, buf, sizeof(buf)), 257);
	/* truncation keeps a terminated prefix and reports the full length */
	char small[4];
	assert_int_equal(zonefile_txt_format(v, 10, small, sizeof(small)), 12);
	assert_string_equal(small, "\"vv");
	/* the formatted value parses back to the same bytes */
	char line[1100];
	int l = snprintf(line, sizeof(line), "t TXT ");
	zonefile_txt_format(v, sizeof(v), line + l, sizeof(line) - (size_t)l);
	struct zonefile *z;
	struct zonefile_error err;
	assert_int_equal(parse_len(line, strlen(line), &z, &err), 0);
	assert_int_equal(z->rrs[0].u.txt.count, 2);
	assert_int_equal(z->rrs[0].u.txt.strings[0].len + z->rrs[0].u.txt.strings[1].len, 300);
	zonefile_free(z);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_cases),
		cmocka_unit_test(test_err_cases),
		cmocka_unit_test(test_limit_line),
		cmocka_unit_test(test_limit_entry),
		cmocka_unit_test(test_limit_records),
		cmocka_unit_test(test_limit_txt_strings),
		cmocka_unit_test(test_limit_txt_string),
		cmocka_unit_test(test_limit_name_and_label),
		cmocka_unit_test(test_decoded),
		cmocka_unit_test(test_txt_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
