/* spf: record parser, macro expander (RFC 7208 7.4 examples), limits at and
 * past each named constant, IPv6 CIDR matching and the step/answer loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "spf.h"

/* ---- a tiny in-test DNS ---- */

/* One name+type with up to 16 values; "TEMPFAIL" as the only value times out,
 * no values = NODATA. Names not in the table are NXDOMAIN. */
struct tans {
	const char *name;
	enum ws_dns_type type;
	const char *v[16];
};

struct trun {
	struct spf_outcome out;
	unsigned queries;
	char log[64][300]; /* "TYPE name" per query, in order */
};

static void
build_answer(const struct tans *table, const char *name, enum ws_dns_type type,
	     struct ws_dns_answer *a)
{
	memset(a, 0, sizeof(*a));
	a->status = WS_DNS_NXDOMAIN;
	a->rcode = 3;
	for (const struct tans *t = table; t && t->name; t++) {
		if (strcasecmp(t->name, name) != 0)
			continue;
		a->status = WS_DNS_NODATA;
		a->rcode = 0;
		if (t->type != type)
			continue;
		if (t->v[0] && strcmp(t->v[0], "TEMPFAIL") == 0) {
			a->status = WS_DNS_TEMPFAIL;
			snprintf(a->why, sizeof(a->why), "timeout");
			return;
		}
		size_t n = 0;
		while (n < 16 && t->v[n])
			n++;
		if (n == 0)
			return;
		a->rrs = calloc(n, sizeof(*a->rrs));
		assert_non_null(a->rrs);
		a->count = n;
		a->status = WS_DNS_OK;
		for (size_t i = 0; i < n; i++) {
			struct ws_dns_rr *rr = &a->rrs[i];
			rr->type = type;
			switch (type) {
			case WS_DNS_A: assert_int_equal(inet_pton(AF_INET, t->v[i], rr->u.a), 1); break;
			case WS_DNS_AAAA:
				assert_int_equal(inet_pton(AF_INET6, t->v[i], rr->u.aaaa), 1);
				break;
			case WS_DNS_MX:
				rr->u.mx.pref = 10;
				rr->u.mx.host = (char *)(uintptr_t)t->v[i];
				break;
			case WS_DNS_PTR:
			case WS_DNS_CNAME: rr->u.name = (char *)(uintptr_t)t->v[i]; break;
			case WS_DNS_TXT:
				rr->u.txt.data = (uint8_t *)(uintptr_t)t->v[i];
				rr->u.txt.len = strlen(t->v[i]);
				rr->u.txt.nstrings = 1;
				break;
			}
		}
		return;
	}
}

static const char *
type_name(enum ws_dns_type t)
{
	switch (t) {
	case WS_DNS_A: return "A";
	case WS_DNS_AAAA: return "AAAA";
	case WS_DNS_MX: return "MX";
	case WS_DNS_PTR: return "PTR";
	case WS_DNS_TXT: return "TXT";
	case WS_DNS_CNAME: return "CNAME";
	}
	return "?";
}

static void
run_params(const struct tans *table, const struct spf_params *p, bool helo_identity,
	   struct trun *r)
{
	memset(r, 0, sizeof(*r));
	struct spf_eval *ev = helo_identity ? spf_eval_new_helo(p) : spf_eval_new_mailfrom(p);
	assert_non_null(ev);
	struct spf_query q;
	while (spf_step(ev, &q) == SPF_STEP_NEED_DNS) {
		assert_true(r->queries < 200);
		if (r->queries < 64)
			snprintf(r->log[r->queries], sizeof(r->log[0]), "%s %s", type_name(q.type),
				 q.name);
		r->queries++;
		struct ws_dns_answer a;
		build_answer(table, q.name, q.type, &a);
		assert_int_equal(spf_answer(ev, &a), 0);
		free(a.rrs); /* values are the table's strings: the evaluator must have copied */
	}
	r->out = *spf_outcome(ev);
	spf_eval_free(ev);
}

static void
run(const struct tans *table, const char *ip, const char *mailfrom, struct trun *r)
{
	struct spf_params p = {.helo = "mail.example.org", .mail_from = mailfrom, .now = 1000,
			       .default_exp = "DEFAULT"};
	assert_int_equal(spf_ip_parse(ip, &p.ip), 0);
	run_params(table, &p, false, r);
}

#define EXPECT(r, res) \
	do { \
		if ((r).out.result != (res)) \
			fail_msg("result %s, expected %s (%s)", spf_result_name((r).out.result), \
				 spf_result_name(res), (r).out.reason); \
	} while (0)

/* ---- parser ---- */

static void
test_parser_table(void **state)
{
	(void)state;
	static const struct {
		const char *rec;
		bool ok;
	} cases[] = {
		{"v=spf1", true},
		{"v=spf1 ", true},
		{"V=SPF1 -ALL", true},
		{"v=spf1  a   mx  -all ", true},
		{"v=spf1 +all ~all ?all -all", true},
		{"v=spf1 a a:example.com a/24 a//64 a/24//64 a:example.com/24//64", true},
		{"v=spf1 mx mx:example.com/0 mx//0", true},
		{"v=spf1 ptr ptr:example.com", true},
		{"v=spf1 ip4:192.0.2.0/24 ip4:1.2.3.4 ip6:2001:db8::/32 ip6:::1", true},
		{"v=spf1 include:_spf.example.com exists:%{ir}.%{l1r+-}._spf.%{d}", true},
		{"v=spf1 redirect=_spf.example.com", true},
		{"v=spf1 -all exp=explain._spf.%{d}", true},
		{"v=spf1 foo=bar moo.cow-far_out=man:dog/cat", true},
		{"v=spf1 a:foo:bar/baz.example.com", true},
		{"v=spf1 a:example.xn--zckzah a:mail.example.com.", true},
		{"v=spf1 exists:%{d}", true},
		{"v=spf1 a:%%%_%-.example.com", true},
		/* rejected */
		{"v=spf10", false},
		{"v=spf1mx", false},
		{"spf1 -all", false},
		{"v=spf1 -all.", false},
		{"v=spf1 -all:foo", false},
		{"v=spf1 -all/8", false},
		{"v=spf1 moo", false},
		{"v=spf1 =all", false},
		{"v=spf1 1up=foo", false},
		{"v=spf1 redirect:example.com", false},
		{"v=spf1 redirect=a.example.com redirect=b.example.com", false},
		{"v=spf1 exp=a.example.com exp=b.example.com", false},
		{"v=spf1 redirect=", false},
		{"v=spf1 exp=", false},
		{"v=spf1 exp=-all", false},
		{"v=spf1 exp=%{r}.example.com", false},
		{"v=spf1 a:", false},
		{"v=spf1 a:museum", false},
		{"v=spf1 a:museum.", false},
		{"v=spf1 a:abc.123", false},
		{"v=spf1 a:example.-com", false},
		{"v=spf1 a:example.com:8080", false},
		{"v=spf1 a/33", false},
		{"v=spf1 a//129", false},
		{"v=spf1 a/24/64", false},
		{"v=spf1 a/032", false},
		{"v=spf1 ptr/0", false},
		{"v=spf1 ptr:", false},
		{"v=spf1 include", false},
		{"v=spf1 include:", false},
		{"v=spf1 include:example.com/24", false},
		{"v=spf1 exists", false},
		{"v=spf1 exists:example.com/24", false},
		{"v=spf1 ip4", false},
		{"v=spf1 ip4:1.2.3", false},
		{"v=spf1 ip4:1.2.3.4/33", false},
		{"v=spf1 ip4:1.2.3.4/032", false},
		{"v=spf1 ip4:1.2.3.4//32", false},
		{"v=spf1 ip4:1.2.3.4:8080", false},
		{"v=spf1 ip4:1.2.03.4", false},
		{"v=spf1 ip4:256.2.3.4", false},
		{"v=spf1 ip6", false},
		{"v=spf1 ip6::CAFE::BABE", false},
		{"v=spf1 ip6:::1/129", false},
		{"v=spf1 ip6:::1//33", false},
		{"v=spf1 foo=%abc", false},
		{"v=spf1 exists:%(ir).example.com", false},
		{"v=spf1 exists:foo%.example.com", false},
		{"v=spf1 exists:%{x}.example.com", false},
		{"v=spf1 exists:%{d0}.example.com", false},
		{"v=spf1 exists:%{c}.example.com", false},
		{"v=spf1 a\rptr", false},
		{"v=spf1 a\x80", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spf_record rec;
		char why[128] = "";
		int rc = spf_record_parse(cases[i].rec, strlen(cases[i].rec), &rec, why, sizeof(why));
		if ((rc == 0) != cases[i].ok)
			fail_msg("'%s': parse %s (%s)", cases[i].rec, rc == 0 ? "accepted" : "rejected",
				 why);
		if (rc != 0)
			assert_true(why[0] != '\0');
		spf_record_free(&rec);
	}
}

static void
test_parser_terms(void **state)
{
	(void)state;
	const char *txt = "v=spf1 -a:foo:bar/baz.example.com/24//64 ~mx ip6:2001:db8::/33 "
			  "redirect=r.example.com exp=e.example.com x=y";
	struct spf_record rec;
	char why[128];
	assert_int_equal(spf_record_parse(txt, strlen(txt), &rec, why, sizeof(why)), 0);
	assert_int_equal(rec.nterms, 6);
	const struct spf_term *t = &rec.terms[0];
	assert_int_equal(t->kind, SPF_TERM_MECH);
	assert_int_equal(t->mech, SPF_MECH_A);
	assert_int_equal(t->qual, '-');
	assert_int_equal(t->cidr4, 24);
	assert_int_equal(t->cidr6, 64);
	assert_int_equal(t->spec_len, strlen("foo:bar/baz.example.com"));
	assert_memory_equal(rec.text + t->spec_off, "foo:bar/baz.example.com", t->spec_len);
	assert_int_equal(rec.terms[1].qual, '~');
	assert_int_equal(rec.terms[1].cidr4, 32);
	assert_int_equal(rec.terms[1].cidr6, 128);
	assert_int_equal(rec.terms[2].cidr6, 33);
	assert_int_equal(rec.terms[2].addr[2], 0x0d);
	assert_int_equal(rec.redirect, 3);
	assert_int_equal(rec.exp, 4);
	assert_int_equal(rec.terms[5].kind, SPF_TERM_UNKNOWN_MOD);
	spf_record_free(&rec);
	spf_record_free(&rec); /* a freed record frees again harmlessly */

	/* an embedded NUL is a syntax error, not the end of the record */
	const char nul[] = "v=spf1 a:foo.example.com\0 -all";
	assert_int_equal(spf_record_parse(nul, sizeof(nul) - 1, &rec, why, sizeof(why)), -1);
}

static void
test_record_len_limit(void **state)
{
	(void)state;
	char *txt = malloc(SPF_MAX_RECORD_LEN + 2);
	assert_non_null(txt);
	memcpy(txt, "v=spf1", 6);
	for (size_t i = 6; i < SPF_MAX_RECORD_LEN + 1; i++)
		txt[i] = (i % 2 == 0) ? ' ' : 'a';
	struct spf_record rec;
	char why[128];
	/* at the limit */
	assert_int_equal(spf_record_parse(txt, SPF_MAX_RECORD_LEN, &rec, why, sizeof(why)), 0);
	assert_true(rec.nterms > 2000);
	spf_record_free(&rec);
	/* past it */
	assert_int_equal(spf_record_parse(txt, SPF_MAX_RECORD_LEN + 1, &rec, why, sizeof(why)),
			 -1);
	free(txt);
}

/* ---- macros ---- */

static void
expand_ok(const struct spf_macro_ctx *c, const char *in, unsigned flags, const char *want,
	  bool nocase)
{
	char out[SPF_MAX_EXPANSION + 1], why[128] = "";
	if (spf_macro_expand(c, in, strlen(in), flags, out, sizeof(out), NULL, why, sizeof(why)) !=
	    0)
		fail_msg("'%s': %s", in, why);
	if (nocase ? strcasecmp(out, want) != 0 : strcmp(out, want) != 0)
		fail_msg("'%s' -> '%s', expected '%s'", in, out, want);
}

static void
test_macro_rfc_examples(void **state)
{
	(void)state;
	/* RFC 7208 section 7.4 */
	struct spf_macro_ctx c = {.sender = "strong-bad@email.example.com",
				  .local = "strong-bad",
				  .sender_domain = "email.example.com",
				  .domain = "email.example.com",
				  .helo = "mx.example.org",
				  .now = 1234};
	assert_int_equal(spf_ip_parse("192.0.2.3", &c.ip), 0);
	static const char *const ex[][2] = {
		{"%{s}", "strong-bad@email.example.com"},
		{"%{o}", "email.example.com"},
		{"%{d}", "email.example.com"},
		{"%{d4}", "email.example.com"},
		{"%{d3}", "email.example.com"},
		{"%{d2}", "example.com"},
		{"%{d1}", "com"},
		{"%{dr}", "com.example.email"},
		{"%{d2r}", "example.email"},
		{"%{l}", "strong-bad"},
		{"%{l-}", "strong.bad"},
		{"%{lr}", "strong-bad"},
		{"%{lr-}", "bad.strong"},
		{"%{l1r-}", "strong"},
		{"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
		{"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
		{"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
		{"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
		{"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
	};
	for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++)
		expand_ok(&c, ex[i][0], 0, ex[i][1], false);

	/* IPv6 example; nibbles are uppercase here (as the conformance suite
	 * expects), the RFC prints them lowercase: DNS does not care */
	assert_int_equal(spf_ip_parse("2001:db8::cb01", &c.ip), 0);
	expand_ok(&c, "%{ir}.%{v}._spf.%{d2}",
		  0, "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com",
		  true);
	expand_ok(&c, "%{c}", SPF_MACRO_EXP, "2001:db8::cb01", false);
}

static void
test_macro_rules(void **state)
{
	(void)state;
	struct spf_macro_ctx c = {.sender = "~jack&jill=up-a_b3.c@example.com",
				  .local = "~jack&jill=up-a_b3.c",
				  .sender_domain = "example.com",
				  .domain = "example.com",
				  .helo = "JUMPIN' JUPITER",
				  .receiver = "mx.receiver.example",
				  .now = 1700000000};
	assert_int_equal(spf_ip_parse("192.0.2.3", &c.ip), 0);
	expand_ok(&c, "a%%b%_c%-d", 0, "a%b c%20d", false);
	expand_ok(&c, "%{L}", 0, "~jack%26jill%3Dup-a_b3.c", false);
	expand_ok(&c, "%{H}", 0, "JUMPIN%27%20JUPITER", false);
	expand_ok(&c, "%{l2r-=}", 0, "up.~jack&jill", false);
	expand_ok(&c, "%{c} %{r} %{t} %{p}", SPF_MACRO_EXP,
		  "192.0.2.3 mx.receiver.example 1700000000 unknown", false);
	expand_ok(&c, "%{d}.", SPF_MACRO_DOMAIN, "example.com", false);
	expand_ok(&c, "%{d200}", 0, "example.com", false);
	c.receiver = NULL;
	expand_ok(&c, "%{r}", SPF_MACRO_EXP, "unknown", false);

	static const struct {
		const char *in;
		unsigned flags;
	} bad[] = {
		{"%", 0}, {"%{", 0}, {"%{d", 0}, {"%{x}", 0}, {"%{d0}", 0}, {"%{d2r+x}", 0},
		{"%a", 0}, {"%{c}", 0}, {"%{r}", 0}, {"%{t}", 0}, {"a b", 0}, {"a\x01", SPF_MACRO_EXP},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char out[64], why[128] = "";
		if (spf_macro_expand(&c, bad[i].in, strlen(bad[i].in), bad[i].flags, out, sizeof(out),
				     NULL, why, sizeof(why)) == 0)
			fail_msg("'%s' accepted as '%s'", bad[i].in, out);
		assert_true(why[0] != '\0');
	}
	/* explain-strings may carry spaces, domain-specs may not */
	char out[64];
	assert_int_equal(spf_macro_expand(NULL, "a b", 3, SPF_MACRO_EXP, out, sizeof(out), NULL,
					  NULL, 0), 0);
	bool uses_p = false;
	assert_int_equal(spf_macro_expand(NULL, "%{p}.x", 6, 0, NULL, 0, &uses_p, NULL, 0), 0);
	assert_true(uses_p);
}

static void
test_macro_expansion_limit(void **state)
{
	(void)state;
	/* a domain-spec whose expansion needs exactly SPF_MAX_EXPANSION bytes, and one more */
	char in[SPF_MAX_EXPANSION + 2], out[SPF_MAX_EXPANSION + 1];
	memset(in, 'a', sizeof(in));
	struct spf_macro_ctx c = {.sender = "", .local = "", .sender_domain = "", .domain = "d",
				  .helo = ""};
	c.ip.family = 4;
	assert_int_equal(spf_macro_expand(&c, in, SPF_MAX_EXPANSION, 0, out, sizeof(out), NULL,
					  NULL, 0), 0);
	assert_int_equal(strlen(out), SPF_MAX_EXPANSION);
	char why[128] = "";
	assert_int_equal(spf_macro_expand(&c, in, SPF_MAX_EXPANSION + 1, 0, out, sizeof(out), NULL,
					  why, sizeof(why)), -1);
	assert_non_null(strstr(why, "longer"));
}

static void
test_domain_truncation(void **state)
{
	(void)state;
	/* RFC 7208 7.3: drop left-hand labels until the name fits in 253 */
	char label[64];
	memset(label, 'x', 50);
	label[50] = '\0';
	char d[400];
	snprintf(d, sizeof(d), "%s.%s.%s.%s.%s.%s", label, label, label, label, label, "example.com");
	struct spf_macro_ctx c = {.sender = "", .local = "", .sender_domain = "", .domain = d,
				  .helo = ""};
	c.ip.family = 4;
	char out[SPF_MAX_EXPANSION + 1];
	assert_int_equal(spf_macro_expand(&c, "%{d}", 4, SPF_MACRO_DOMAIN, out, sizeof(out), NULL,
					  NULL, 0), 0);
	assert_true(strlen(out) <= SPF_DOMAIN_MAX);
	char want[400];
	snprintf(want, sizeof(want), "%s.%s.%s.%s.%s", label, label, label, label, "example.com");
	assert_string_equal(out, want); /* 266 -> 215: one label dropped */
}

/* ---- addresses ---- */

static void
test_ip_parse(void **state)
{
	(void)state;
	struct spf_ip ip;
	assert_int_equal(spf_ip_parse("::FFFF:1.2.3.4", &ip), 0);
	assert_int_equal(ip.family, 4); /* mapped = IPv4 */
	assert_int_equal(ip.addr[3], 4);
	assert_int_equal(spf_ip_parse("2001:db8::1", &ip), 0);
	assert_int_equal(ip.family, 6);
	assert_int_equal(spf_ip_parse("1.2.3", &ip), -1);
	assert_int_equal(spf_ip_parse("1.2.3.4.5", &ip), -1);
	assert_int_equal(spf_ip_parse("", &ip), -1);
}

static void
test_ip6_cidr(void **state)
{
	(void)state;
	static const struct {
		const char *rec;
		const char *ip;
		enum spf_result want;
	} cases[] = {
		{"v=spf1 ip6:2001:db8::/32 -all", "2001:db8:ffff::1", SPF_RESULT_PASS},
		{"v=spf1 ip6:2001:db8::/32 -all", "2001:db9::1", SPF_RESULT_FAIL},
		{"v=spf1 ip6:cafe:babe:8000::/33 -all", "cafe:babe:8fff::1", SPF_RESULT_PASS},
		{"v=spf1 ip6:cafe:babe:8000::/33 -all", "cafe:babe:7fff::1", SPF_RESULT_FAIL},
		{"v=spf1 ip6:2001:db8::1 -all", "2001:db8::1", SPF_RESULT_PASS},
		{"v=spf1 ip6:2001:db8::1 -all", "2001:db8::2", SPF_RESULT_FAIL},
		{"v=spf1 ip6:2001:db8::/127 -all", "2001:db8::1", SPF_RESULT_PASS},
		{"v=spf1 ip6:2001:db8::/127 -all", "2001:db8::2", SPF_RESULT_FAIL},
		{"v=spf1 ip6:::/0 -all", "ffff::1", SPF_RESULT_PASS},
		/* an IPv4 (or IPv4-mapped) client never matches ip6 */
		{"v=spf1 ip6:::/0 -all", "::ffff:1.2.3.4", SPF_RESULT_FAIL},
		{"v=spf1 ip4:1.2.3.0/24 -all", "::ffff:1.2.3.4", SPF_RESULT_PASS},
		{"v=spf1 a//64 -all", "2001:db8:1:2:ffff::9", SPF_RESULT_PASS},
		{"v=spf1 a//64 -all", "2001:db8:1:3::9", SPF_RESULT_FAIL},
		{"v=spf1 a/24 -all", "192.0.2.200", SPF_RESULT_PASS},
		{"v=spf1 a/24 -all", "192.0.3.1", SPF_RESULT_FAIL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tans table[] = {
			{"example.com", WS_DNS_TXT, {cases[i].rec}},
			{"example.com", WS_DNS_AAAA, {"2001:db8:1:2::1"}},
			{"example.com", WS_DNS_A, {"192.0.2.1"}},
			{NULL, 0, {NULL}},
		};
		struct trun r;
		run(table, cases[i].ip, "user@example.com", &r);
		if (r.out.result != cases[i].want)
			fail_msg("'%s' with %s: %s", cases[i].rec, cases[i].ip,
				 spf_result_name(r.out.result));
	}
}

/* ---- limits ---- */

static void
test_dns_term_limit(void **state)
{
	(void)state;
	/* 10 DNS-querying terms then ip4: pass; an 11th: permerror */
	const struct tans at[] = {
		{"example.com", WS_DNS_TXT,
		 {"v=spf1 a mx a mx a mx a mx a exists:nx.example.com ip4:192.0.2.9 -all"}},
		{"example.com", WS_DNS_A, {"192.0.2.1"}},
		{"example.com", WS_DNS_MX, {"example.com"}},
		{NULL, 0, {NULL}},
	};
	struct trun r;
	assert_int_equal(SPF_MAX_DNS_TERMS, 10);
	run(at, "192.0.2.9", "u@example.com", &r);
	EXPECT(r, SPF_RESULT_PASS);
	assert_int_equal(r.out.dns_terms, SPF_MAX_DNS_TERMS);
	const struct tans past[] = {
		{"example.com", WS_DNS_TXT,
		 {"v=spf1 a mx a mx a mx a mx a exists:nx.example.com a ip4:192.0.2.9 -all"}},
		{"example.com", WS_DNS_A, {"192.0.2.1"}},
		{"example.com", WS_DNS_MX, {"example.com"}},
		{NULL, 0, {NULL}},
	};
	run(past, "192.0.2.9", "u@example.com", &r);
	EXPECT(r, SPF_RESULT_PERMERROR);

	/* includes nest: 10 levels (10 terms) pass, 11 do not */
	struct tans chain[14];
	char recs[13][64], names[13][32];
	for (int depth = 10; depth <= 11; depth++) {
		memset(chain, 0, sizeof(chain));
		for (int i = 0; i <= depth; i++) {
			snprintf(names[i], sizeof(names[i]), "d%d.example.com", i);
			if (i < depth)
				snprintf(recs[i], sizeof(recs[i]), "v=spf1 include:d%d.example.com -all",
					 i + 1);
			else
				snprintf(recs[i], sizeof(recs[i]), "v=spf1 ip4:192.0.2.9 -all");
			chain[i] = (struct tans){names[i], WS_DNS_TXT, {recs[i]}};
		}
		run(chain, "192.0.2.9", "u@d0.example.com", &r);
		EXPECT(r, depth == 10 ? SPF_RESULT_PASS : SPF_RESULT_PERMERROR);
	}
}

static void
test_void_limit(void **state)
{
	(void)state;
	const struct tans at[] = {
		{"example.com", WS_DNS_TXT, {"v=spf1 a:n1.example.com mx:n2.example.com ?all"}},
		{NULL, 0, {NULL}},
	};
	struct trun r;
	run(at, "192.0.2.9", "u@example.com", &r);
	EXPECT(r, SPF_RESULT_NEUTRAL);
	assert_int_equal(r.out.void_lookups, SPF_MAX_VOID_LOOKUPS);
	const struct tans past[] = {
		{"example.com", WS_DNS_TXT,
		 {"v=spf1 a:n1.example.com mx:n2.example.com exists:n3.example.com ?all"}},
		{NULL, 0, {NULL}},
	};
	run(past, "192.0.2.9", "u@example.com", &r);
	EXPECT(r, SPF_RESULT_PERMERROR);
}

static void
test_mx_limit(void **state)
{
	(void)state;
	/* 10 MX names are looked up (the last one matches); 11 are permerror */
	struct tans t[] = {
		{"example.com", WS_DNS_TXT, {"v=spf1 mx -all"}},
		{"example.com", WS_DNS_MX,
		 {"m1.example.com", "m2.example.com", "m3.example.com", "m4.example.com",
		  "m5.example.com", "m6.example.com", "m7.example.com", "m8.example.com",
		  "m9.example.com", "m10.example.com"}},
		{"m10.example.com", WS_DNS_A, {"192.0.2.9"}},
		{NULL, 0, {NULL}},
	};
	struct trun r;
	run(t, "192.0.2.9", "u@example.com", &r);
	EXPECT(r, SPF_RESULT_PASS);
	assert_int_equal(r.queries, 2 + SPF_MAX_MX_NAMES);
	t[1].v[SPF_MAX_MX_NAMES] = "m11.example.com";
	run(t, "192.0.2.9", "u@example.com", &r);
	EXPECT(r, SPF_RESULT_PERMERROR);
}

static void
test_ptr_limit(void **state)
{
	(void)state;
	/* only the first 10 PTR names count: the matching 11th is ignored */
	struct tans t[] = {
		{"example.com", WS_DNS_TXT, {"v=spf1 ptr -all"}},
		{"9.2.0.192.in-addr.arpa", WS_DNS_PTR,
		 {"p1.example.com", "p2.example.com", "p3.example.com", "p4.example.com",
		  "p5.example.com", "p6.example.com", "p7.example.com", "p8.example.com",
		  "p9.example.com", "p10.example.com", "p11.example.com"}},
		{"p10.example.com", WS_DNS_A, {"192.0.2.9"}},
		{"p11.example.com", WS_DNS_A, {"192.0.2.9"}},
		{NULL, 0, {NULL}},
	};
	struct trun r;
	run(t, "192.0.2.9", "u@example.com", &r);
	EXPECT(r, SPF_RESULT_PASS); /* the 10th validates */
	t[2].name = "p9x.example.com";
	run(t, "192.0.2.9", "u@example.com", &r);
	EXPECT(r, SPF_RESULT_FAIL); /* only the 11th would have */
	assert_int_equal(SPF_MAX_PTR_NAMES, 10);
}

static void
test_domain_limits(void **state)
{
	(void)state;
	/* check_host <domain>: labels of 63 / 64, names of 253 / 254 octets */
	char l63[64], l64[65];
	memset(l63, 'a', 63);
	l63[63] = '\0';
	memset(l64, 'a', 64);
	l64[64] = '\0';
	char mf[600];
	const struct tans none[] = {{NULL, 0, {NULL}}};
	struct trun r;
	snprintf(mf, sizeof(mf), "u@%s.example.com", l63);
	run(none, "192.0.2.9", mf, &r);
	assert_int_equal(r.queries, 1); /* queried (NXDOMAIN -> none) */
	snprintf(mf, sizeof(mf), "u@%s.example.com", l64);
	run(none, "192.0.2.9", mf, &r);
	assert_int_equal(r.queries, 0);
	EXPECT(r, SPF_RESULT_NONE);

	char d[300];
	/* 3 x 63 + 3 dots + 61 = 253 */
	snprintf(d, sizeof(d), "%s.%s.%s.%.*s", l63, l63, l63, 57, l63);
	snprintf(d + strlen(d), sizeof(d) - strlen(d), ".com");
	assert_int_equal(strlen(d), SPF_DOMAIN_MAX);
	snprintf(mf, sizeof(mf), "u@%s", d);
	run(none, "192.0.2.9", mf, &r);
	assert_int_equal(r.queries, 1);
	snprintf(mf, sizeof(mf), "u@a%s", d);
	run(none, "192.0.2.9", mf, &r);
	assert_int_equal(r.queries, 0);

	/* sender length: at SPF_MAX_SENDER (with room for "postmaster") and past */
	char big[SPF_MAX_SENDER + 2];
	size_t n = SPF_MAX_SENDER - sizeof("postmaster") - strlen("@example.com");
	memset(big, 'x', n);
	snprintf(big + n, sizeof(big) - n, "@example.com");
	run(none, "192.0.2.9", big, &r);
	assert_int_equal(r.queries, 1);
	memset(big, 'x', n + 1);
	snprintf(big + n + 1, sizeof(big) - n - 1, "@example.com");
	run(none, "192.0.2.9", big, &r);
	assert_int_equal(r.queries, 0);

	/* empty labels, single label, domain literal */
	run(none, "192.0.2.9", "u@a..example.com", &r);
	assert_int_equal(r.queries, 0);
	run(none, "192.0.2.9", "u@localhost", &r);
	assert_int_equal(r.queries, 0);
	run(none, "192.0.2.9", "u@[192.0.2.9]", &r);
	assert_int_equal(r.queries, 0);
}

static void
test_explanation_limit(void **state)
{
	(void)state;
	static char text[SPF_MAX_EXPLANATION + 2];
	memset(text, 'x', SPF_MAX_EXPLANATION + 1);
	text[SPF_MAX_EXPLANATION] = '\0';
	const struct tans t[] = {
		{"example.com", WS_DNS_TXT, {"v=spf1 -all exp=why.example.com"}},
		{"why.example.com", WS_DNS_TXT, {text}},
		{NULL, 0, {NULL}},
	};
	struct trun r;
	run(t, "192.0.2.9", "u@example.com", &r);
	EXPECT(r, SPF_RESULT_FAIL);
	assert_string_equal(r.out.explanation, text);
	text[SPF_MAX_EXPLANATION] = 'x'; /* one past */
	run(t, "192.0.2.9", "u@example.com", &r);
	EXPECT(r, SPF_RESULT_FAIL);
	assert_string_equal(r.out.explanation, "DEFAULT");
}

/* ---- the step/answer loop ---- */

static void
test_step_loop(void **state)
{
	(void)state;
	const struct tans t[] = {
		{"example.com", WS_DNS_TXT,
		 {"v=spf1 include:_spf.example.com mx:mail.example.com -all exp=exp.%{d}"}},
		{"_spf.example.com", WS_DNS_TXT, {"v=spf1 ip4:198.51.100.0/24 -all"}},
		{"mail.example.com", WS_DNS_MX, {"mx1.example.com", "mx2.example.com"}},
		{"mx1.example.com", WS_DNS_A, {"192.0.2.1"}},
		{"mx2.example.com", WS_DNS_A, {"192.0.2.2"}},
		{"exp.example.com", WS_DNS_TXT, {"%{i} is not one of %{d}'s hosts (%{l})"}},
		{NULL, 0, {NULL}},
	};
	struct trun r;
	run(t, "192.0.2.2", "alice@example.com", &r);
	EXPECT(r, SPF_RESULT_PASS);
	assert_string_equal(r.out.mechanism, "mx:mail.example.com");
	assert_string_equal(r.out.domain, "example.com");
	assert_int_equal(r.queries, 5);
	assert_string_equal(r.log[0], "TXT example.com");
	assert_string_equal(r.log[1], "TXT _spf.example.com");
	assert_string_equal(r.log[2], "MX mail.example.com");
	assert_string_equal(r.log[3], "A mx1.example.com");
	assert_string_equal(r.log[4], "A mx2.example.com");

	run(t, "192.0.2.99", "alice@example.com", &r);
	EXPECT(r, SPF_RESULT_FAIL);
	assert_string_equal(r.out.mechanism, "-all");
	assert_string_equal(r.out.explanation, "192.0.2.99 is not one of example.com's hosts (alice)");

	/* the loop is resumable: stepping again without an answer repeats the
	 * query; an answer nobody asked for is refused */
	struct spf_params p = {.helo = "h.example.com", .mail_from = "a@example.com"};
	assert_int_equal(spf_ip_parse("192.0.2.1", &p.ip), 0);
	struct spf_eval *ev = spf_eval_new_mailfrom(&p);
	assert_non_null(ev);
	struct spf_query q1, q2;
	assert_int_equal(spf_step(ev, &q1), SPF_STEP_NEED_DNS);
	assert_int_equal(spf_step(ev, &q2), SPF_STEP_NEED_DNS);
	assert_string_equal(q1.name, q2.name);
	assert_int_equal(q1.type, WS_DNS_TXT);
	struct ws_dns_answer a = {.status = WS_DNS_TEMPFAIL};
	assert_int_equal(spf_answer(ev, &a), 0);
	assert_int_equal(spf_answer(ev, &a), -1);
	assert_int_equal(spf_step(ev, &q1), SPF_STEP_DONE);
	assert_int_equal(spf_outcome(ev)->result, SPF_RESULT_TEMPERROR);
	spf_eval_free(ev);
	spf_eval_free(NULL);
}

static void
test_identities(void **state)
{
	(void)state;
	const struct tans t[] = {
		{"example.com", WS_DNS_TXT, {"v=spf1 -all exp=e.example.com"}},
		{"e.example.com", WS_DNS_TXT, {"%{s} %{l} %{o} %{h}"}},
		{NULL, 0, {NULL}},
	};
	struct spf_params p = {.helo = "example.com", .mail_from = "", .default_exp = "D"};
	assert_int_equal(spf_ip_parse("192.0.2.1", &p.ip), 0);
	struct trun r;
	/* null sender: postmaster@<helo> */
	run_params(t, &p, false, &r);
	EXPECT(r, SPF_RESULT_FAIL);
	assert_string_equal(r.out.explanation,
			    "postmaster@example.com postmaster example.com example.com");
	/* no local-part */
	p.mail_from = "@example.com";
	run_params(t, &p, false, &r);
	assert_string_equal(r.out.explanation,
			    "postmaster@example.com postmaster example.com example.com");
	/* HELO identity ignores MAIL FROM */
	p.mail_from = "bob@elsewhere.example";
	run_params(t, &p, true, &r);
	assert_string_equal(r.out.explanation,
			    "postmaster@example.com postmaster example.com example.com");
	/* MAIL FROM identity */
	p.mail_from = "bob@example.com";
	p.helo = "helo.example.net";
	run_params(t, &p, false, &r);
	assert_string_equal(r.out.explanation, "bob@example.com bob example.com helo.example.net");
}

static void
test_errors(void **state)
{
	(void)state;
	static const struct {
		const char *rec;
		enum spf_result want;
	} cases[] = {
		{"v=spf1 a:t.example.com -all", SPF_RESULT_TEMPERROR},  /* A lookup times out */
		{"v=spf1 mx:t.example.com -all", SPF_RESULT_TEMPERROR},
		{"v=spf1 exists:t.example.com -all", SPF_RESULT_TEMPERROR},
		{"v=spf1 include:t.example.com -all", SPF_RESULT_TEMPERROR},
		{"v=spf1 include:none.example.com -all", SPF_RESULT_PERMERROR},
		{"v=spf1 redirect=none.example.com", SPF_RESULT_PERMERROR},
		{"v=spf1 ptr:example.com -all", SPF_RESULT_FAIL}, /* PTR timeout: no match */
		{"v=spf1 a:x..example.com -all", SPF_RESULT_FAIL}, /* unaskable name: no match */
		{"v=spf1 ?all bogus", SPF_RESULT_PERMERROR},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tans t[] = {
			{"example.com", WS_DNS_TXT, {cases[i].rec}},
			{"t.example.com", WS_DNS_A, {"TEMPFAIL"}},
			{"t.example.com", WS_DNS_MX, {"TEMPFAIL"}},
			{"t.example.com", WS_DNS_TXT, {"TEMPFAIL"}},
			{"none.example.com", WS_DNS_A, {"192.0.2.1"}},
			{"9.2.0.192.in-addr.arpa", WS_DNS_PTR, {"TEMPFAIL"}},
			{NULL, 0, {NULL}},
		};
		struct trun r;
		run(t, "192.0.2.9", "u@example.com", &r);
		if (r.out.result != cases[i].want)
			fail_msg("'%s': %s (%s), expected %s", cases[i].rec,
				 spf_result_name(r.out.result), r.out.reason,
				 spf_result_name(cases[i].want));
		assert_true(r.out.reason[0] != '\0');
	}
	/* two SPF records: permerror; none: none */
	const struct tans two[] = {
		{"example.com", WS_DNS_TXT, {"v=spf1 -all", "other text", "V=SPF1 +all"}},
		{NULL, 0, {NULL}},
	};
	struct trun r;
	run(two, "192.0.2.9", "u@example.com", &r);
	EXPECT(r, SPF_RESULT_PERMERROR);
	const struct tans nospf[] = {
		{"example.com", WS_DNS_TXT, {"v=spf10 -all", "v=spf1-all"}},
		{NULL, 0, {NULL}},
	};
	run(nospf, "192.0.2.9", "u@example.com", &r);
	EXPECT(r, SPF_RESULT_NONE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parser_table),
		cmocka_unit_test(test_parser_terms),
		cmocka_unit_test(test_record_len_limit),
		cmocka_unit_test(test_macro_rfc_examples),
		cmocka_unit_test(test_macro_rules),
		cmocka_unit_test(test_macro_expansion_limit),
		cmocka_unit_test(test_domain_truncation),
		cmocka_unit_test(test_ip_parse),
		cmocka_unit_test(test_ip6_cidr),
		cmocka_unit_test(test_dns_term_limit),
		cmocka_unit_test(test_void_limit),
		cmocka_unit_test(test_mx_limit),
		cmocka_unit_test(test_ptr_limit),
		cmocka_unit_test(test_domain_limits),
		cmocka_unit_test(test_explanation_limit),
		cmocka_unit_test(test_step_loop),
		cmocka_unit_test(test_identities),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
