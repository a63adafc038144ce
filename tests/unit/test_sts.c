/*
 * sts: every fixture of conformance/mta-sts that a pure function can judge
 * (TXT records, RRset selection, policy bodies, MX and certificate name
 * matching), read in place through WS_SHARED_DIR; the named limits at and
 * past; the per-mode decision table. Rows where implementations disagree
 * carry our choice and a comment that says whose behaviour we follow.
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
#include "sts.h"
#include "testutil.h"

/* ------------------------------------------------------------ helpers */

static struct jsonr_val *
load(const char *rel)
{
	char path[4096], why[128];
	size_t len = 0;
	tu_shared(rel, path, sizeof(path));
	char *text = tu_read_file(path, &len);
	if (!text)
		fail_msg("cannot read %s (WS_SHARED_DIR)", path);
	struct jsonr_val *v = jsonr_parse(text, len, why, sizeof(why));
	if (!v)
		fail_msg("%s: %s", path, why);
	free(text);
	return v;
}

static bool
str_is(const struct jsonr_val *v, const char *s)
{
	return v && v->type == JSONR_STR && strcmp(v->str, s) == 0;
}

static void
span_eq(const char *base, struct sts_span sp, const char *want)
{
	assert_int_equal(sp.len, strlen(want));
	assert_memory_equal(base + sp.off, want, sp.len);
}

/* An answer built in the test: TXT strings (already concatenated per RR). */
struct fake_answer {
	struct ws_dns_answer a;
	struct ws_dns_rr rr[8];
};

static void
fake_txt(struct fake_answer *f, enum ws_dns_status st, const char *const *txt, size_t n)
{
	memset(f, 0, sizeof(*f));
	f->a.status = st;
	f->a.rrs = f->rr;
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		f->rr[i].type = WS_DNS_TXT;
		f->rr[i].u.txt.data = (uint8_t *)(uintptr_t)txt[i];
		f->rr[i].u.txt.len = strlen(txt[i]);
		f->rr[i].u.txt.nstrings = 1;
	}
	f->a.count = n;
	if (st == WS_DNS_OK && n == 0)
		f->a.status = WS_DNS_NODATA;
}

/* ------------------------------------------------------------ TXT record vectors */

static void
check_txt_vectors(const char *rel)
{
	struct jsonr_val *doc = load(rel);
	const struct jsonr_val *vec = jsonr_get(doc, "vectors");
	assert_non_null(vec);
	unsigned n = 0;
	for (const struct jsonr_val *v = vec->child; v; v = v->next, n++) {
		const char *in = jsonr_get_str(v, "input");
		struct sts_record rec;
		char why[128];
		enum sts_txt_status st = sts_txt_parse(in, strlen(in), &rec, why, sizeof(why));
		if (str_is(jsonr_get(v, "expect"), "valid")) {
			if (st != STS_TXT_OK)
				fail_msg("%s: '%s' should be valid: %s", rel, in, why);
			assert_string_equal(rec.id, jsonr_get_str(v, "id"));
			const struct jsonr_val *ext = jsonr_get(v, "extensions");
			if (ext) {
				assert_int_equal(rec.n_ext, ext->n);
				unsigned k = 0;
				for (const struct jsonr_val *e = ext->child; e; e = e->next, k++) {
					span_eq(rec.text, rec.ext_name[k], e->child->str);
					span_eq(rec.text, rec.ext_value[k], e->child->next->str);
				}
			}
		} else {
			if (st == STS_TXT_OK)
				fail_msg("%s: '%s' should be invalid", rel, in);
		}
	}
	assert_true(n > 0);
	jsonr_free(doc);
}

static void
test_txt_mox(void **state)
{
	(void)state;
	check_txt_vectors("conformance/mta-sts/mox/txt-record-parse-vectors.json");
}

static void
test_txt_stalwart(void **state)
{
	(void)state;
	check_txt_vectors("conformance/mta-sts/stalwart-mail-auth/txt-record-parse-vectors.json");
}

static void
test_txt_project_edge_cases(void **state)
{
	(void)state;
	struct jsonr_val *doc = load("conformance/mta-sts/project-authored/edge-cases.json");
	unsigned n = 0;
	for (const struct jsonr_val *v = jsonr_get(doc, "txt_record")->child; v; v = v->next, n++) {
		const struct jsonr_val *strs = jsonr_get(v, "txt_strings");
		const struct jsonr_val *rrset = jsonr_get(v, "rrset");
		const struct jsonr_val *expect = jsonr_get(v, "expect");
		struct sts_record rec;
		char why[128];
		if (strs) {
			/* RFC 8461 3.1: the strings of one RR are concatenated */
			char txt[512] = "";
			size_t len = 0;
			for (const struct jsonr_val *s = strs->child; s; s = s->next) {
				memcpy(txt + len, s->str, s->len);
				len += s->len;
			}
			enum sts_txt_status st = sts_txt_parse(txt, len, &rec, why, sizeof(why));
			if (str_is(expect, "invalid")) {
				assert_int_not_equal(st, STS_TXT_OK);
				continue;
			}
			/* "valid" and "valid-if-sole-record": "v=STSv1 ;" is
			 * counted as an STS record and parses (erratum 6285; as
			 * mox and postfix-mta-sts-resolver do). */
			if (st != STS_TXT_OK)
				fail_msg("'%s' should be valid: %s", txt, why);
			assert_true(sts_txt_is_sts(txt, len));
			const char *id = jsonr_get_str(v, "id");
			assert_string_equal(rec.id, id ? id : "abc");
		} else {
			const char *txts[8];
			char bufs[8][256];
			size_t k = 0;
			for (const struct jsonr_val *rr = rrset->child; rr; rr = rr->next, k++) {
				size_t len = 0;
				for (const struct jsonr_val *s = rr->child; s; s = s->next) {
					memcpy(bufs[k] + len, s->str, s->len);
					len += s->len;
				}
				bufs[k][len] = '\0';
				txts[k] = bufs[k];
			}
			struct fake_answer fa;
			fake_txt(&fa, WS_DNS_OK, txts, k);
			enum sts_lookup l = sts_txt_select(&fa.a, &rec, why, sizeof(why));
			if (str_is(expect, "record")) {
				assert_int_equal(l, STS_LOOKUP_RECORD);
				assert_string_equal(rec.id, jsonr_get_str(v, "id"));
			} else {
				/* two identical records still make "no policy" */
				assert_int_equal(l, STS_LOOKUP_MULTIPLE);
			}
		}
	}
	assert_true(n >= 10);
	jsonr_free(doc);
}

/* mox TestLookup: the zone of the fixture, CNAMEs followed here the way the
 * resolver follows them (tests/unit/test_sts_fetch runs the same through nsd). */
static void
test_txt_lookup_mox(void **state)
{
	(void)state;
	struct jsonr_val *doc = load("conformance/mta-sts/mox/txt-lookup-vectors.json");
	const struct jsonr_val *zone = jsonr_get(doc, "zone");
	const struct jsonr_val *txt = jsonr_get(zone, "txt");
	const struct jsonr_val *cname = jsonr_get(zone, "cname");
	const struct jsonr_val *servfail = jsonr_get(zone, "servfail");
	unsigned n = 0;
	for (const struct jsonr_val *v = jsonr_get(doc, "vectors")->child; v; v = v->next, n++) {
		char name[300];
		snprintf(name, sizeof(name), "_mta-sts.%s.", jsonr_get_str(v, "domain"));
		for (int hops = 0; hops < 8; hops++) {
			const char *t = jsonr_get_str(cname, name);
			if (!t)
				break;
			snprintf(name, sizeof(name), "%s", t);
		}
		bool sf = false;
		for (const struct jsonr_val *s = servfail->child; s; s = s->next)
			if (strncmp(s->str, "TXT ", 4) == 0 && strcmp(s->str + 4, name) == 0)
				sf = true;
		const struct jsonr_val *rrs = jsonr_get(txt, name);
		const char *txts[8];
		size_t k = 0;
		for (const struct jsonr_val *r = rrs ? rrs->child : NULL; r; r = r->next)
			txts[k++] = r->str;
		struct fake_answer fa;
		fake_txt(&fa, sf ? WS_DNS_TEMPFAIL : (rrs ? WS_DNS_OK : WS_DNS_NXDOMAIN), txts,
			 sf ? 0 : k);
		struct sts_record rec;
		char why[128];
		enum sts_lookup l = sts_txt_select(&fa.a, &rec, why, sizeof(why));
		const struct jsonr_val *e = jsonr_get(v, "expect");
		enum sts_lookup want = str_is(e, "record")         ? STS_LOOKUP_RECORD
				       : str_is(e, "no-record")    ? STS_LOOKUP_NONE
				       : str_is(e, "multiple")     ? STS_LOOKUP_MULTIPLE
				       : str_is(e, "syntax-error") ? STS_LOOKUP_SYNTAX
								   : STS_LOOKUP_TEMPFAIL;
		if (l != want)
			fail_msg("%s: got %s, want %s", name, sts_lookup_name(l), sts_lookup_name(want));
		if (want == STS_LOOKUP_RECORD)
			assert_string_equal(rec.id, jsonr_get_str(v, "id"));
	}
	assert_int_equal(n, 9);
	jsonr_free(doc);
}

static void
test_txt_rrset_chasquid(void **state)
{
	(void)state;
	struct jsonr_val *doc = load("conformance/mta-sts/chasquid/http-and-txt-vectors.json");
	unsigned n = 0;
	for (const struct jsonr_val *v = jsonr_get(doc, "txt_rrset_vectors")->child; v;
	     v = v->next, n++) {
		const struct jsonr_val *t = jsonr_get(v, "txt");
		const char *txts[8];
		size_t k = 0;
		enum ws_dns_status st = WS_DNS_OK;
		if (t->type == JSONR_NULL)
			st = WS_DNS_NXDOMAIN;
		else if (t->type == JSONR_STR) /* "<resolver error>" */
			st = WS_DNS_TEMPFAIL;
		else
			for (const struct jsonr_val *r = t->child; r; r = r->next)
				txts[k++] = r->str;
		struct fake_answer fa;
		fake_txt(&fa, st, txts, k);
		struct sts_record rec;
		enum sts_lookup l = sts_txt_select(&fa.a, &rec, NULL, 0);
		const struct jsonr_val *e = jsonr_get(v, "expect");
		if (str_is(e, "record"))
			assert_int_equal(l, STS_LOOKUP_RECORD);
		else if (str_is(e, "no-record"))
			assert_int_equal(l, STS_LOOKUP_NONE);
		else
			assert_int_equal(l, STS_LOOKUP_TEMPFAIL);
	}
	assert_int_equal(n, 5);
	jsonr_free(doc);
}

static void
test_txt_selection_rules(void **state)
{
	(void)state;
	/* "v=STSv10" is another version and not counted; "v=STSv1" alone is
	 * an STS record that is invalid (no id), so the domain has none. */
	assert_false(sts_txt_is_sts("v=STSv10; id=1", 14));
	assert_false(sts_txt_is_sts("V=STSv1; id=1", 13));
	assert_true(sts_txt_is_sts("v=STSv1", 7));
	assert_true(sts_txt_is_sts("v=STSv1\t;id=1", 13));
	const char *two[] = {"v=STSv10; id=1", "v=STSv1; id=2"};
	struct fake_answer fa;
	struct sts_record rec;
	fake_txt(&fa, WS_DNS_OK, two, 2);
	assert_int_equal(sts_txt_select(&fa.a, &rec, NULL, 0), STS_LOOKUP_RECORD);
	assert_string_equal(rec.id, "2");
	const char *bad[] = {"v=STSv1"};
	fake_txt(&fa, WS_DNS_OK, bad, 1);
	assert_int_equal(sts_txt_select(&fa.a, &rec, NULL, 0), STS_LOOKUP_SYNTAX);
	fake_txt(&fa, WS_DNS_BOGUS, NULL, 0);
	assert_int_equal(sts_txt_select(&fa.a, &rec, NULL, 0), STS_LOOKUP_TEMPFAIL);
	fake_txt(&fa, WS_DNS_NODATA, NULL, 0);
	assert_int_equal(sts_txt_select(&fa.a, &rec, NULL, 0), STS_LOOKUP_NONE);
	/* the id is case-sensitive and opaque */
	assert_int_equal(sts_txt_parse("v=STSv1; id=AbC", 15, &rec, NULL, 0), STS_TXT_OK);
	assert_string_equal(rec.id, "AbC");
}

static void
test_txt_limits(void **state)
{
	(void)state;
	struct sts_record rec;
	char txt[STS_TXT_MAX_LEN + 2];
	/* a record of exactly STS_TXT_MAX_LEN bytes, and one past */
	size_t head = (size_t)snprintf(txt, sizeof(txt), "v=STSv1; id=a; x=");
	memset(txt + head, 'b', sizeof(txt) - head);
	assert_int_equal(sts_txt_parse(txt, STS_TXT_MAX_LEN, &rec, NULL, 0), STS_TXT_OK);
	assert_int_equal(sts_txt_parse(txt, STS_TXT_MAX_LEN + 1, &rec, NULL, 0), STS_TXT_TOO_LONG);
	/* id of 32 and 33 */
	char id[64];
	snprintf(id, sizeof(id), "v=STSv1; id=%.*s", STS_ID_MAX, "0123456789abcdef0123456789ABCDEFG");
	assert_int_equal(sts_txt_parse(id, strlen(id), &rec, NULL, 0), STS_TXT_OK);
	assert_int_equal(strlen(rec.id), STS_ID_MAX);
	snprintf(id, sizeof(id), "v=STSv1; id=%.*s", STS_ID_MAX + 1, "0123456789abcdef0123456789ABCDEFG");
	assert_int_equal(sts_txt_parse(id, strlen(id), &rec, NULL, 0), STS_TXT_SYNTAX);
	/* extension name of 32 and 33 */
	char ext[96];
	snprintf(ext, sizeof(ext), "v=STSv1; id=a; %.*s=1", STS_EXT_NAME_MAX,
		 "a1234567890123456789012345678901234");
	assert_int_equal(sts_txt_parse(ext, strlen(ext), &rec, NULL, 0), STS_TXT_OK);
	snprintf(ext, sizeof(ext), "v=STSv1; id=a; %.*s=1", STS_EXT_NAME_MAX + 1,
		 "a1234567890123456789012345678901234");
	assert_int_equal(sts_txt_parse(ext, strlen(ext), &rec, NULL, 0), STS_TXT_SYNTAX);
	/* STS_TXT_MAX_EXT extensions, and one more */
	char many[512];
	size_t len = (size_t)snprintf(many, sizeof(many), "v=STSv1; id=a");
	for (unsigned i = 0; i < STS_TXT_MAX_EXT; i++)
		len += (size_t)snprintf(many + len, sizeof(many) - len, "; e%u=v", i);
	assert_int_equal(sts_txt_parse(many, len, &rec, NULL, 0), STS_TXT_OK);
	assert_int_equal(rec.n_ext, STS_TXT_MAX_EXT);
	len += (size_t)snprintf(many + len, sizeof(many) - len, "; last=v");
	assert_int_equal(sts_txt_parse(many, len, &rec, NULL, 0), STS_TXT_SYNTAX);
}

/* ------------------------------------------------------------ policy bodies */

static void
check_policy_fields(const struct jsonr_val *v, const struct sts_policy *p, const char *body)
{
	const char *mode = jsonr_get_str(v, "mode");
	if (mode)
		assert_string_equal(sts_mode_name(p->mode), mode);
	const struct jsonr_val *age = jsonr_get(v, "max_age");
	if (age)
		assert_int_equal(p->max_age, age->i);
	const struct jsonr_val *mx = jsonr_get(v, "mx");
	if (mx) {
		assert_int_equal(p->n_mx, mx->n);
		unsigned k = 0;
		for (const struct jsonr_val *m = mx->child; m; m = m->next, k++) {
			char buf[300];
			snprintf(buf, sizeof(buf), "%s%s", p->mx[k].wildcard ? "*." : "", p->mx[k].name);
			assert_string_equal(buf, m->str);
		}
	}
	const struct jsonr_val *ext = jsonr_get(v, "extensions");
	if (ext) {
		assert_int_equal(p->n_ext, ext->n);
		unsigned k = 0;
		for (const struct jsonr_val *e = ext->child; e; e = e->next, k++) {
			span_eq(body, p->ext_name[k], e->child->str);
			span_eq(body, p->ext_value[k], e->child->next->str);
		}
	}
}

static void
test_policy_mox(void **state)
{
	(void)state;
	struct jsonr_val *doc = load("conformance/mta-sts/mox/policy-parse-vectors.json");
	unsigned n = 0;
	for (const struct jsonr_val *v = jsonr_get(doc, "vectors")->child; v; v = v->next, n++) {
		const struct jsonr_val *in = jsonr_get(v, "input");
		static struct sts_policy p;
		char why[128];
		enum sts_pol_status st = sts_policy_parse(in->str, in->len, &p, why, sizeof(why));
		if (str_is(jsonr_get(v, "expect"), "valid")) {
			if (st != STS_POL_OK)
				fail_msg("'%s' should be valid: %s", in->str, why);
			check_policy_fields(v, &p, in->str);
		} else if (st == STS_POL_OK) {
			fail_msg("'%s' should be invalid (%s)", in->str, jsonr_get_str(v, "note"));
		}
	}
	assert_int_equal(n, 24);
	jsonr_free(doc);
}

static void
test_policy_project_edge_cases(void **state)
{
	(void)state;
	struct jsonr_val *doc = load("conformance/mta-sts/project-authored/edge-cases.json");
	unsigned n = 0;
	for (const struct jsonr_val *v = jsonr_get(doc, "policy_body")->child; v; v = v->next, n++) {
		const struct jsonr_val *body = jsonr_get(v, "body");
		const struct jsonr_val *expect = jsonr_get(v, "expect");
		static struct sts_policy p;
		char why[128];
		enum sts_pol_status st = sts_policy_parse(body->str, body->len, &p, why, sizeof(why));
		if (str_is(expect, "invalid")) {
			if (st == STS_POL_OK)
				fail_msg("'%s' should be invalid", body->str);
			continue;
		}
		/* "valid" rows, and the two "implementation-defined" rows, where
		 * we follow the file's recommendation: trailing empty lines and a
		 * trailing dot in mx are accepted and counted as warnings. Rows
		 * with a "divergence" note: max_age 0 accepted (chasquid rejects),
		 * mode none without mx accepted (chasquid requires mx), max_age
		 * 31557601 rejected (mox accepts), ".example.net" rejected. */
		if (st != STS_POL_OK)
			fail_msg("'%s' should be accepted: %s", body->str, why);
		check_policy_fields(v, &p, body->str);
		if (str_is(expect, "implementation-defined"))
			assert_true(p.warnings &
				    (STS_WARN_TRAILING_EMPTY_LINES | STS_WARN_MX_TRAILING_DOT));
	}
	assert_int_equal(n, 19);
	jsonr_free(doc);
}

static void
test_policy_chasquid(void **state)
{
	(void)state;
	struct jsonr_val *doc = load("conformance/mta-sts/chasquid/http-and-txt-vectors.json");
	unsigned n = 0;
	for (const struct jsonr_val *v = jsonr_get(doc, "policy_body_vectors")->child; v;
	     v = v->next, n++) {
		const struct jsonr_val *in = jsonr_get(v, "input");
		static struct sts_policy p;
		/* Both rows are refused. The first is "valid (chasquid)": it has
		 * leading blank lines and spaces before every key, which chasquid
		 * trims; the ABNF has no leading WSP, and mox rejects it - so do
		 * we (STS-POL-7). The second has version STSv99. */
		assert_int_not_equal(sts_policy_parse(in->str, in->len, &p, NULL, 0), STS_POL_OK);
	}
	assert_int_equal(n, 2);
	jsonr_free(doc);
}

/* chasquid TestCheckPolicy gives parsed fields: we write them as a body. */
static void
test_policy_checks_chasquid(void **state)
{
	(void)state;
	struct jsonr_val *doc = load("conformance/mta-sts/chasquid/check-policy-vectors.json");
	unsigned n = 0;
	for (const struct jsonr_val *v = jsonr_get(doc, "vectors")->child; v; v = v->next, n++) {
		char body[1024];
		size_t len = 0;
		const char *ver = jsonr_get_str(v, "version");
		const char *mode = jsonr_get_str(v, "mode");
		const struct jsonr_val *age = jsonr_get(v, "max_age");
		const struct jsonr_val *mx = jsonr_get(v, "mx");
		if (ver)
			len += (size_t)snprintf(body + len, sizeof(body) - len, "version: %s\n", ver);
		if (mode)
			len += (size_t)snprintf(body + len, sizeof(body) - len, "mode: %s\n", mode);
		if (age)
			len += (size_t)snprintf(body + len, sizeof(body) - len, "max_age: %lld\n",
						(long long)age->i);
		for (const struct jsonr_val *m = mx ? mx->child : NULL; m; m = m->next)
			len += (size_t)snprintf(body + len, sizeof(body) - len, "mx: %s\n", m->str);
		static struct sts_policy p;
		enum sts_pol_status st = sts_policy_parse(body, len, &p, NULL, 0);
		bool want = str_is(jsonr_get(v, "expect"), "valid");
		/* Divergence: chasquid rejects max_age 0; RFC 8461 says
		 * "non-negative", mox and postfix-mta-sts-resolver accept it, so
		 * do we. The row has no mode either, so it stays invalid here
		 * for that reason; the 0 itself is accepted (test below). */
		if (want != (st == STS_POL_OK))
			fail_msg("row %u: '%s' got %d", n, body, st);
	}
	assert_int_equal(n, 10);
	jsonr_free(doc);
	static struct sts_policy p;
	const char zero[] = "version: STSv1\nmode: enforce\nmx: mx1\nmax_age: 0\n";
	assert_int_equal(sts_policy_parse(zero, sizeof(zero) - 1, &p, NULL, 0), STS_POL_OK);
	assert_int_equal(p.max_age, 0);
}

/* The bodies postfix-mta-sts-resolver's nginx serves with status 200 and
 * text/plain: the parse decides VALID vs FETCH_ERROR (the HTTP-level rows
 * run in test_sts_fetch against a real server). */
static void
test_policy_snawoot_bodies(void **state)
{
	(void)state;
	struct jsonr_val *doc =
		load("conformance/mta-sts/snawoot-postfix-mta-sts-resolver/cases.json");
	unsigned n = 0;
	for (const struct jsonr_val *v = jsonr_get(doc, "cases")->child; v; v = v->next) {
		const struct jsonr_val *body = jsonr_get(v, "body");
		const struct jsonr_val *status = jsonr_get(v, "status");
		if (!body || !status || status->i != 200 ||
		    !str_is(jsonr_get(v, "content_type"), "text/plain"))
			continue;
		const char *cert = jsonr_get_str(v, "cert");
		if (cert && strncmp(cert, "valid", 5) != 0)
			continue; /* bad-cert rows: the body is fine, TLS is not */
		static struct sts_policy p;
		enum sts_pol_status st = sts_policy_parse(body->str, body->len, &p, NULL, 0);
		const char *res = jsonr_get_str(v, "resolver");
		bool valid = strncmp(res, "VALID", 5) == 0;
		if (valid != (st == STS_POL_OK))
			fail_msg("%s: parse %d, resolver says %s", jsonr_get_str(v, "domain"), st, res);
		n++;
	}
	assert_true(n >= 10);
	jsonr_free(doc);
}

static void
test_policy_rules(void **state)
{
	(void)state;
	static struct sts_policy p;
	struct {
		const char *body;
		enum sts_pol_status st;
	} cases[] = {
		/* duplicate version: the first decides, even a bad second */
		{"version: STSv1\nversion: STSv2\nmode: none\nmax_age: 1\n", STS_POL_OK},
		{"version: STSv2\nversion: STSv1\nmode: none\nmax_age: 1\n", STS_POL_INVALID},
		/* a later malformed mode is ignored too (first wins) */
		{"version: STSv1\nmode: none\nmode: bogus\nmax_age: 1\n", STS_POL_OK},
		/* no final terminator */
		{"version: STSv1\nmode: none\nmax_age: 1", STS_POL_OK},
		/* empty line between fields */
		{"version: STSv1\n\nmode: none\nmax_age: 1\n", STS_POL_SYNTAX},
		/* WSP before ':' */
		{"version : STSv1\nmode: none\nmax_age: 1\n", STS_POL_SYNTAX},
		/* tab inside an extension value */
		{"version: STSv1\nmode: none\nmax_age: 1\nx: a\tb\n", STS_POL_SYNTAX},
		/* UTF-8 in an extension value is allowed */
		{"version: STSv1\nmode: none\nmax_age: 1\nx: \xc3\xa9t\xc3\xa9\n", STS_POL_OK},
		/* mx with '_' or a leading '-' label */
		{"version: STSv1\nmode: enforce\nmax_age: 1\nmx: a_b.example\n", STS_POL_INVALID},
		{"version: STSv1\nmode: enforce\nmax_age: 1\nmx: -a.example\n", STS_POL_INVALID},
		/* NUL byte in a value */
		{"version: STSv1\nmode: none\nmax_age: 1\nx: a\0b\n", STS_POL_SYNTAX},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].body);
		if (i == 10)
			len = sizeof("version: STSv1\nmode: none\nmax_age: 1\nx: a\0b\n") - 1;
		enum sts_pol_status st = sts_policy_parse(cases[i].body, len, &p, NULL, 0);
		if (st != cases[i].st)
			fail_msg("case %zu: got %d want %d", i, st, cases[i].st);
	}
	/* "*.com" is valid but weak (RFC 8461 10.4) */
	const char weak[] = "version: STSv1\nmode: enforce\nmax_age: 1\nmx: *.com\n";
	assert_int_equal(sts_policy_parse(weak, sizeof(weak) - 1, &p, NULL, 0), STS_POL_OK);
	assert_true(p.warnings & STS_WARN_WEAK_WILDCARD);
	/* mx keeps case-insensitive identity: stored lowercase */
	const char up[] = "version: STSv1\nmode: enforce\nmax_age: 1\nmx: MX.Example.COM\n";
	assert_int_equal(sts_policy_parse(up, sizeof(up) - 1, &p, NULL, 0), STS_POL_OK);
	assert_string_equal(p.mx[0].name, "mx.example.com");
}

static void
test_policy_limits(void **state)
{
	(void)state;
	static struct sts_policy p;
	static char body[STS_POLICY_MAX_LEN + 2];
	/* a body of exactly STS_POLICY_MAX_LEN bytes: a long extension */
	size_t head = (size_t)snprintf(body, sizeof(body),
				       "version: STSv1\nmode: none\nmax_age: 1\nx: ");
	memset(body + head, 'a', sizeof(body) - head);
	body[STS_POLICY_MAX_LEN - 1] = '\n';
	assert_int_equal(sts_policy_parse(body, STS_POLICY_MAX_LEN, &p, NULL, 0), STS_POL_OK);
	assert_int_equal(sts_policy_parse(body, STS_POLICY_MAX_LEN + 1, &p, NULL, 0),
			 STS_POL_TOO_LONG);
	/* STS_POLICY_MAX_MX mx lines, and one more */
	size_t len = (size_t)snprintf(body, sizeof(body), "version: STSv1\nmode: enforce\nmax_age: 1\n");
	for (unsigned i = 0; i < STS_POLICY_MAX_MX; i++)
		len += (size_t)snprintf(body + len, sizeof(body) - len, "mx: mx%u.example\n", i);
	assert_int_equal(sts_policy_parse(body, len, &p, NULL, 0), STS_POL_OK);
	assert_int_equal(p.n_mx, STS_POLICY_MAX_MX);
	len += (size_t)snprintf(body + len, sizeof(body) - len, "mx: last.example\n");
	assert_int_equal(sts_policy_parse(body, len, &p, NULL, 0), STS_POL_INVALID);
	/* STS_POLICY_MAX_EXT extensions kept; the next is counted, not an error */
	len = (size_t)snprintf(body, sizeof(body), "version: STSv1\nmode: none\nmax_age: 1\n");
	for (unsigned i = 0; i < STS_POLICY_MAX_EXT; i++)
		len += (size_t)snprintf(body + len, sizeof(body) - len, "e%u: v\n", i);
	assert_int_equal(sts_policy_parse(body, len, &p, NULL, 0), STS_POL_OK);
	assert_int_equal(p.n_ext, STS_POLICY_MAX_EXT);
	assert_int_equal(p.n_ext_dropped, 0);
	len += (size_t)snprintf(body + len, sizeof(body) - len, "more: v\n");
	assert_int_equal(sts_policy_parse(body, len, &p, NULL, 0), STS_POL_OK);
	assert_int_equal(p.n_ext_dropped, 1);
	/* max_age at and past; 10 digits with a leading zero is fine */
	const char at[] = "version: STSv1\nmode: none\nmax_age: 31557600\n";
	const char past[] = "version: STSv1\nmode: none\nmax_age: 31557601\n";
	const char ten[] = "version: STSv1\nmode: none\nmax_age: 0031557600\n";
	assert_int_equal(sts_policy_parse(at, sizeof(at) - 1, &p, NULL, 0), STS_POL_OK);
	assert_int_equal(p.max_age, STS_MAX_AGE_MAX);
	assert_int_equal(sts_policy_parse(past, sizeof(past) - 1, &p, NULL, 0), STS_POL_INVALID);
	assert_int_equal(sts_policy_parse(ten, sizeof(ten) - 1, &p, NULL, 0), STS_POL_OK);
	/* mx of STS_DOMAIN_MAX bytes and one past; a 63-byte label and a 64 */
	char dom[STS_DOMAIN_MAX + 2];
	for (size_t i = 0; i < sizeof(dom) - 1; i++)
		dom[i] = (i % 50 == 49) ? '.' : 'a';
	dom[sizeof(dom) - 1] = '\0';
	len = (size_t)snprintf(body, sizeof(body), "version: STSv1\nmode: enforce\nmax_age: 1\nmx: %.*s\n",
			       STS_DOMAIN_MAX, dom);
	assert_int_equal(sts_policy_parse(body, len, &p, NULL, 0), STS_POL_OK);
	len = (size_t)snprintf(body, sizeof(body), "version: STSv1\nmode: enforce\nmax_age: 1\nmx: %.*s\n",
			       STS_DOMAIN_MAX + 1, dom);
	assert_int_equal(sts_policy_parse(body, len, &p, NULL, 0), STS_POL_INVALID);
	char label[80];
	memset(label, 'b', sizeof(label));
	len = (size_t)snprintf(body, sizeof(body), "version: STSv1\nmode: enforce\nmax_age: 1\nmx: %.63s.x\n",
			       label);
	assert_int_equal(sts_policy_parse(body, len, &p, NULL, 0), STS_POL_OK);
	len = (size_t)snprintf(body, sizeof(body), "version: STSv1\nmode: enforce\nmax_age: 1\nmx: %.64s.x\n",
			       label);
	assert_int_equal(sts_policy_parse(body, len, &p, NULL, 0), STS_POL_INVALID);
}

/* ------------------------------------------------------------ MX matching */

static void
test_mx_match_mox(void **state)
{
	(void)state;
	struct jsonr_val *doc = load("conformance/mta-sts/mox/mx-match-vectors.json");
	const struct jsonr_val *pol = jsonr_get(doc, "policy");
	static struct sts_policy p;
	assert_int_equal(sts_policy_parse(pol->str, pol->len, &p, NULL, 0), STS_POL_OK);
	unsigned n = 0;
	for (const struct jsonr_val *v = jsonr_get(doc, "vectors")->child; v; v = v->next, n++) {
		const char *h = jsonr_get_str(v, "mx_host");
		bool want = str_is(jsonr_get(v, "expect"), "match");
		if (sts_mx_match(&p, h, strlen(h)) != want)
			fail_msg("%s", h);
	}
	assert_int_equal(n, 5);
	jsonr_free(doc);
}

static bool
has_non_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

static void
check_match_rows(const struct jsonr_val *rows, unsigned *n, unsigned *diverged)
{
	for (const struct jsonr_val *v = rows->child; v; v = v->next, (*n)++) {
		const char *h = jsonr_get_str(v, "mx_host");
		const char *pat = jsonr_get_str(v, "pattern");
		bool want = str_is(jsonr_get(v, "expect"), "match");
		/* Divergence (chasquid's IDN rows, and the project row
		 * "mx.bücher.example"): we match A-labels only. A U-label
		 * pattern is invalid in a policy (RFC 8461 3.2; mox rejects
		 * the policy), and MX hosts reach us as A-labels (DNS RDATA,
		 * SNI), so a name with non-ASCII bytes never matches. */
		if (has_non_ascii(h) || has_non_ascii(pat)) {
			assert_false(sts_pattern_match(pat, strlen(pat), h, strlen(h)));
			(*diverged) += want;
			continue;
		}
		if (sts_pattern_match(pat, strlen(pat), h, strlen(h)) != want)
			fail_msg("%s vs %s", h, pat);
	}
}

static void
test_mx_match_chasquid_and_project(void **state)
{
	(void)state;
	unsigned n = 0, diverged = 0;
	struct jsonr_val *doc = load("conformance/mta-sts/chasquid/match-domain-vectors.json");
	check_match_rows(jsonr_get(doc, "vectors"), &n, &diverged);
	jsonr_free(doc);
	assert_int_equal(n, 19);
	assert_int_equal(diverged, 4);
	doc = load("conformance/mta-sts/project-authored/edge-cases.json");
	check_match_rows(jsonr_get(doc, "mx_match"), &n, &diverged);
	jsonr_free(doc);
	assert_int_equal(n, 26);
	assert_int_equal(diverged, 5);
	/* one leftmost label: an empty one is not a label */
	assert_false(sts_pattern_match("*.example.com", 13, ".example.com", 12));
	assert_false(sts_pattern_match("*.example.com", 13, "", 0));
	assert_false(sts_pattern_match("*", 1, "a", 1));
}

/* ------------------------------------------------------------ certificates */

static enum sts_cert
assess(const struct jsonr_val *v, const char *host)
{
	const char *state = jsonr_get_str(v, "cert_state");
	if (state && strcmp(state, "expired") == 0)
		return STS_CERT_EXPIRED;
	if (state)
		return STS_CERT_NOT_TRUSTED;
	/* SAN dNSNames only; cert_cn is ignored on purpose (no CN fallback) */
	for (const struct jsonr_val *s = jsonr_get(v, "cert_san_dns")->child; s; s = s->next)
		if (sts_dnsid_match(s->str, s->len, host, strlen(host)))
			return STS_CERT_VALID;
	return STS_CERT_HOST_MISMATCH;
}

static void
test_certificate_project(void **state)
{
	(void)state;
	struct jsonr_val *doc = load("conformance/mta-sts/project-authored/edge-cases.json");
	unsigned n = 0;
	for (const struct jsonr_val *v = jsonr_get(doc, "certificate")->child; v; v = v->next, n++) {
		const char *expect = jsonr_get_str(v, "expect");
		const char *policy_host = jsonr_get_str(v, "policy_host");
		if (policy_host) {
			enum sts_cert c = assess(v, policy_host);
			assert_string_equal(c == STS_CERT_VALID ? "valid" : "sts-webpki-invalid", expect);
			continue;
		}
		const char *mx = jsonr_get_str(v, "mx_host");
		char body[512];
		size_t len = (size_t)snprintf(body, sizeof(body), "version: STSv1\nmode: enforce\nmax_age: 1\n");
		const struct jsonr_val *pmx = jsonr_get(v, "policy_mx");
		if (pmx)
			for (const struct jsonr_val *m = pmx->child; m; m = m->next)
				len += (size_t)snprintf(body + len, sizeof(body) - len, "mx: %s\n", m->str);
		else
			len += (size_t)snprintf(body + len, sizeof(body) - len, "mx: %s\n", mx);
		static struct sts_policy p;
		assert_int_equal(sts_policy_parse(body, len, &p, NULL, 0), STS_POL_OK);
		struct sts_session s = {mx, strlen(mx), true, true, assess(v, mx)};
		struct sts_verdict vd = sts_decide(&p, &s);
		if (strcmp(expect, "valid") == 0) {
			assert_int_equal(vd.result, STS_PASS);
		} else {
			assert_int_equal(vd.result, STS_FAIL);
			assert_true(vd.enforce);
			assert_string_equal(sts_result_type_name(vd.reason), expect);
		}
	}
	assert_int_equal(n, 10);
	jsonr_free(doc);
	/* a trailing dot in a certificate name is refused */
	assert_false(sts_dnsid_match("mx.example.com.", 15, "mx.example.com", 14));
	assert_true(sts_dnsid_match("MX.example.com", 14, "mx.EXAMPLE.com", 14));
}

/* ------------------------------------------------------------ decision table */

static void
test_decide_table(void **state)
{
	(void)state;
	static struct sts_policy enf, tst, non;
	const char e[] = "version: STSv1\nmode: enforce\nmax_age: 86400\nmx: *.mx.example\n";
	const char t[] = "version: STSv1\nmode: testing\nmax_age: 86400\nmx: *.mx.example\n";
	const char n[] = "version: STSv1\nmode: none\nmax_age: 86400\n";
	assert_int_equal(sts_policy_parse(e, sizeof(e) - 1, &enf, NULL, 0), STS_POL_OK);
	assert_int_equal(sts_policy_parse(t, sizeof(t) - 1, &tst, NULL, 0), STS_POL_OK);
	assert_int_equal(sts_policy_parse(n, sizeof(n) - 1, &non, NULL, 0), STS_POL_OK);
	struct {
		const struct sts_policy *p;
		const char *host;
		bool offered, tls;
		enum sts_cert cert;
		enum sts_result res;
		enum sts_result_type why;
		bool enforce;
		const char *code;
	} rows[] = {
		{&enf, "a.mx.example", true, true, STS_CERT_VALID, STS_PASS, STS_RT_NONE, false, NULL},
		{&enf, "a.mx.example", true, true, STS_CERT_NOT_ASSESSABLE, STS_NOT_ASSESSABLE,
		 STS_RT_NONE, false, NULL},
		{&enf, "evil.example", true, true, STS_CERT_VALID, STS_FAIL, STS_RT_VALIDATION_FAILURE,
		 true, "mtasts-policy-mx-mismatch"},
		{&enf, "a.mx.example", false, false, STS_CERT_VALID, STS_FAIL,
		 STS_RT_STARTTLS_NOT_SUPPORTED, true, NULL},
		{&enf, "a.mx.example", true, false, STS_CERT_VALID, STS_FAIL, STS_RT_VALIDATION_FAILURE,
		 true, "starttls-not-established"},
		{&enf, "a.mx.example", true, true, STS_CERT_HOST_MISMATCH, STS_FAIL,
		 STS_RT_CERT_HOST_MISMATCH, true, NULL},
		{&enf, "a.mx.example", true, true, STS_CERT_EXPIRED, STS_FAIL, STS_RT_CERT_EXPIRED, true,
		 NULL},
		{&enf, "a.mx.example", true, true, STS_CERT_NOT_TRUSTED, STS_FAIL,
		 STS_RT_CERT_NOT_TRUSTED, true, NULL},
		{&enf, "a.mx.example", true, true, STS_CERT_OTHER_FAILURE, STS_FAIL,
		 STS_RT_VALIDATION_FAILURE, true, NULL},
		/* testing: the same failures, reported, never enforced */
		{&tst, "a.mx.example", false, false, STS_CERT_VALID, STS_FAIL,
		 STS_RT_STARTTLS_NOT_SUPPORTED, false, NULL},
		{&tst, "b.mx.example", true, true, STS_CERT_EXPIRED, STS_FAIL, STS_RT_CERT_EXPIRED, false,
		 NULL},
		{&tst, "a.mx.example", true, true, STS_CERT_VALID, STS_PASS, STS_RT_NONE, false, NULL},
		/* none, and no policy: nothing to judge */
		{&non, "anything", false, false, STS_CERT_VALID, STS_NONE, STS_RT_NONE, false, NULL},
		{NULL, "anything", false, false, STS_CERT_VALID, STS_NONE, STS_RT_NONE, false, NULL},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct sts_session s = {rows[i].host, strlen(rows[i].host), rows[i].offered, rows[i].tls,
					rows[i].cert};
		struct sts_verdict v = sts_decide(rows[i].p, &s);
		if (v.result != rows[i].res || v.reason != rows[i].why || v.enforce != rows[i].enforce)
			fail_msg("row %zu: %s/%s/%d", i, sts_result_name(v.result),
				 sts_result_type_name(v.reason), v.enforce);
		if (rows[i].code)
			assert_string_equal(v.reason_code, rows[i].code);
		else
			assert_null(v.reason_code);
	}
	/* names round-trip through the table */
	for (int i = 1; i < STS_RT_COUNT; i++) {
		const char *nm = sts_result_type_name((enum sts_result_type)i);
		assert_int_equal(sts_result_type_from_name(nm, strlen(nm)), i);
	}
	assert_int_equal(sts_result_type_from_name("none", 4), -1);
}

/* the version names both the session lines and the sink print */
static void
test_tls_version_names(void **state)
{
	(void)state;
	assert_null(sts_tls_version_name(0x02ff));
	assert_string_equal(sts_tls_version_name(0x0300), "SSLv3");
	assert_string_equal(sts_tls_version_name(0x0301), "TLSv1.0");
	assert_string_equal(sts_tls_version_name(0x0302), "TLSv1.1");
	assert_string_equal(sts_tls_version_name(0x0303), "TLSv1.2");
	assert_string_equal(sts_tls_version_name(0x0304), "TLSv1.3");
	assert_null(sts_tls_version_name(0x0305));
	assert_null(sts_tls_version_name(0x7f1c)); /* a TLS 1.3 draft */
	assert_null(sts_tls_version_name(0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt_mox),
		cmocka_unit_test(test_txt_stalwart),
		cmocka_unit_test(test_txt_project_edge_cases),
		cmocka_unit_test(test_txt_lookup_mox),
		cmocka_unit_test(test_txt_rrset_chasquid),
		cmocka_unit_test(test_txt_selection_rules),
		cmocka_unit_test(test_txt_limits),
		cmocka_unit_test(test_policy_mox),
		cmocka_unit_test(test_policy_project_edge_cases),
		cmocka_unit_test(test_policy_chasquid),
		cmocka_unit_test(test_policy_checks_chasquid),
		cmocka_unit_test(test_policy_snawoot_bodies),
		cmocka_unit_test(test_policy_rules),
		cmocka_unit_test(test_policy_limits),
		cmocka_unit_test(test_mx_match_mox),
		cmocka_unit_test(test_mx_match_chasquid_and_project),
		cmocka_unit_test(test_certificate_project),
		cmocka_unit_test(test_decide_table),
		cmocka_unit_test(test_tls_version_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
