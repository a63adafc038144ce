/*
 * dmarc: record parsing, From-domain extraction, the resumable evaluator
 * driven from an in-test DNS answer table (tree walk and PSL, alignment,
 * sp/np/pct/t, DNS failures, limits) and the ARC override.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dmarc.h"

static psl_ctx_t *psl;

/* ------------------------------------------------------------ records */

struct rec_case {
	const char *txt;
	enum dmarc_rec_status st;
	enum dmarc_policy p, sp;
	bool has_sp;
	unsigned pct;
	bool testing;
	enum dmarc_psd psd;
	enum dmarc_align adkim, aspf;
	unsigned ignored;
};

static const struct rec_case rec_cases[] = {
	{"v=DMARC1; p=reject", DMARC_REC_OK, DMARC_P_REJECT, 0, 0, 100, 0, 0, 0, 0, 0},
	{"v=DMARC1", DMARC_REC_OK, DMARC_P_NONE, 0, 0, 100, 0, 0, 0, 0, 0}, /* 9989: no p = none */
	{"v=DMARC1;", DMARC_REC_OK, DMARC_P_NONE, 0, 0, 100, 0, 0, 0, 0, 0},
	{"V=DMARC1; P=Reject", DMARC_REC_OK, DMARC_P_REJECT, 0, 0, 100, 0, 0, 0, 0, 0},
	{"v = DMARC1 ;  p = quarantine ;; sp=none ; ", DMARC_REC_OK, DMARC_P_QUARANTINE,
	 DMARC_P_NONE, 1, 100, 0, 0, 0, 0, 0},
	{"v=DMARC1;p=none;pct=0;t=y;psd=y;adkim=s;aspf=s", DMARC_REC_OK, DMARC_P_NONE, 0, 0, 0, 1,
	 DMARC_PSD_Y, DMARC_ALIGN_STRICT, DMARC_ALIGN_STRICT, 0},
	{"v=DMARC1;p=none;psd=n;t=n", DMARC_REC_OK, DMARC_P_NONE, 0, 0, 100, 0, DMARC_PSD_N, 0, 0, 0},
	{"v=DMARC1;p=none;psd=u", DMARC_REC_OK, DMARC_P_NONE, 0, 0, 100, 0, DMARC_PSD_U, 0, 0, 0},
	/* invalid values of optional tags: ignored, defaults stay (7489 6.3) */
	{"v=DMARC1;p=reject;pct=101;adkim=x;t=maybe;psd=q;ri=x;fo=2;rf=a::b;np=bad",
	 DMARC_REC_OK, DMARC_P_REJECT, 0, 0, 100, 0, 0, 0, 0, 8},
	{"v=DMARC1;p=reject;pct=0100", DMARC_REC_OK, DMARC_P_REJECT, 0, 0, 100, 0, 0, 0, 0, 1},
	{"v=DMARC1;p=reject;pct=100", DMARC_REC_OK, DMARC_P_REJECT, 0, 0, 100, 0, 0, 0, 0, 0},
	{"v=DMARC1;p=reject;pct=007", DMARC_REC_OK, DMARC_P_REJECT, 0, 0, 7, 0, 0, 0, 0, 0},
	/* unknown and malformed tag-specs are ignored */
	{"v=DMARC1;p=reject;x-y=1;junk;=v;9a=b;ok_tag=\x01", DMARC_REC_OK, DMARC_P_REJECT, 0, 0, 100,
	 0, 0, 0, 0, 5},
	/* 7489 6.6.3: invalid p/sp with a valid rua acts as p=none */
	{"v=DMARC1;p=bogus;rua=mailto:a@example.com", DMARC_REC_OK, DMARC_P_NONE, 0, 0, 100, 0, 0,
	 0, 0, 0},
	{"v=DMARC1;p=reject;sp=bogus;rua=mailto:a@example.com", DMARC_REC_OK, DMARC_P_NONE, 0, 0,
	 100, 0, 0, 0, 0, 0},
	{"v=DMARC1;p=bogus", DMARC_REC_BAD_POLICY, 0, 0, 0, 100, 0, 0, 0, 0, 0},
	{"v=DMARC1;p=bogus;rua=not a uri", DMARC_REC_BAD_POLICY, 0, 0, 0, 100, 0, 0, 0, 0, 0},
	{"v=DMARC1;p=reject;sp=", DMARC_REC_BAD_POLICY, 0, 0, 0, 100, 0, 0, 0, 0, 0},
	/* v must be first and exactly DMARC1 */
	{"p=reject; v=DMARC1", DMARC_REC_NOT_DMARC, 0, 0, 0, 100, 0, 0, 0, 0, 0},
	{" v=DMARC1; p=reject", DMARC_REC_NOT_DMARC, 0, 0, 0, 100, 0, 0, 0, 0, 0},
	{"v=dmarc1; p=reject", DMARC_REC_NOT_DMARC, 0, 0, 0, 100, 0, 0, 0, 0, 0},
	{"v=DMARC10; p=reject", DMARC_REC_NOT_DMARC, 0, 0, 0, 100, 0, 0, 0, 0, 0},
	{"v=DMARC1 p=reject", DMARC_REC_NOT_DMARC, 0, 0, 0, 100, 0, 0, 0, 0, 0},
	{"v=spf1 -all", DMARC_REC_NOT_DMARC, 0, 0, 0, 100, 0, 0, 0, 0, 0},
	{"", DMARC_REC_NOT_DMARC, 0, 0, 0, 100, 0, 0, 0, 0, 0},
	/* duplicates invalidate the tag-list (RFC 6376 3.2) */
	{"v=DMARC1; p=none; p=reject", DMARC_REC_DUP_TAG, 0, 0, 0, 100, 0, 0, 0, 0, 0},
	{"v=DMARC1; p=none; P=none", DMARC_REC_DUP_TAG, 0, 0, 0, 100, 0, 0, 0, 0, 0},
	{"v=DMARC1; p=none; v=DMARC1", DMARC_REC_DUP_TAG, 0, 0, 0, 100, 0, 0, 0, 0, 0},
	{"v=DMARC1; p=none; foo=1; foo=2", DMARC_REC_DUP_TAG, 0, 0, 0, 100, 0, 0, 0, 0, 0},
};

static void
test_record_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rec_cases) / sizeof(rec_cases[0]); i++) {
		const struct rec_case *c = &rec_cases[i];
		struct dmarc_record r;
		char why[128] = "";
		enum dmarc_rec_status st = dmarc_record_parse(c->txt, strlen(c->txt), &r, why, sizeof(why));
		if (st != c->st)
			fail_msg("case %zu '%s': status %d, want %d (%s)", i, c->txt, st, c->st, why);
		if (st != DMARC_REC_OK) {
			assert_true(why[0] != '\0');
			continue;
		}
		if (r.p != c->p || r.has_sp != c->has_sp || (c->has_sp && r.sp != c->sp) ||
		    r.pct != c->pct || r.testing != c->testing || r.psd != c->psd ||
		    r.adkim != c->adkim || r.aspf != c->aspf || r.ignored != c->ignored)
			fail_msg("case %zu '%s': p=%d sp=%d/%d pct=%u t=%d psd=%d adkim=%d aspf=%d ign=%u",
				 i, c->txt, r.p, r.has_sp, r.sp, r.pct, r.testing, r.psd, r.adkim,
				 r.aspf, r.ignored);
	}
}

static void
test_record_spans(void **state)
{
	(void)state;
	const char *t = "v=DMARC1; p=none; rua=mailto:a@x.example, mailto:b@y.example!10m, bad;"
			" ruf = mailto:f@x.example ; fo=1:d; rf=afrf; ri=3600; np=reject";
	struct dmarc_record r;
	assert_int_equal(dmarc_record_parse(t, strlen(t), &r, NULL, 0), DMARC_REC_OK);
	assert_int_equal(r.rua_valid, 2);
	assert_int_equal(r.ruf_valid, 1);
	assert_int_equal(r.ri, 3600);
	assert_true(r.has_np);
	assert_int_equal(r.np, DMARC_P_REJECT);
	assert_int_equal(r.ruf.len, strlen("mailto:f@x.example"));
	assert_memory_equal(r.text + r.ruf.off, "mailto:f@x.example", r.ruf.len);
	assert_memory_equal(r.text + r.fo.off, "1:d", r.fo.len);
	assert_memory_equal(r.text + r.rf.off, "afrf", r.rf.len);
	assert_int_equal(r.ntags, 8);
}

/* A record of exactly n bytes: "v=DMARC1;p=none;" padded with an ignored tag. */
static char *
record_of_len(size_t n)
{
	char *b = malloc(n + 1);
	const char *head = "v=DMARC1;p=none;x=";
	size_t h = strlen(head);
	memcpy(b, head, h);
	memset(b + h, 'a', n - h);
	b[n] = '\0';
	return b;
}

static void
test_record_limits(void **state)
{
	(void)state;
	struct dmarc_record r;
	char *at = record_of_len(DMARC_RECORD_MAX_LEN);
	char *past = record_of_len(DMARC_RECORD_MAX_LEN + 1);
	assert_int_equal(dmarc_record_parse(at, strlen(at), &r, NULL, 0), DMARC_REC_OK);
	assert_int_equal(dmarc_record_parse(past, strlen(past), &r, NULL, 0), DMARC_REC_TOO_LONG);
	free(at);
	free(past);

	char buf[1024];
	size_t len = 0;
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "v=DMARC1");
	for (int i = 1; i < DMARC_MAX_TAGS; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, ";x%d=1", i);
	assert_int_equal(dmarc_record_parse(buf, len, &r, NULL, 0), DMARC_REC_OK);
	assert_int_equal(r.ntags, DMARC_MAX_TAGS);
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, ";p=reject");
	assert_int_equal(dmarc_record_parse(buf, len, &r, NULL, 0), DMARC_REC_TOO_MANY_TAGS);
}

/* ------------------------------------------------------------ From */

struct from_case {
	const char *fields[3];
	size_t n;
	const char *domain; /* NULL: refused */
};

static const struct from_case from_cases[] = {
	{{"user@Example.COM"}, 1, "example.com"},
	{{" Joe Q. Public <john.q.public@example.com>\r\n"}, 1, "example.com"},
	{{"\"Doe, John\" <jd@mail.example.org.>"}, 1, "mail.example.org"},
	{{"\"a@b\"@quoted.example"}, 1, "quoted.example"},
	{{"jd@example.net (John Doe, of example.org)"}, 1, "example.net"},
	{{"=?utf-8?q?J=C3=B6rg?= <j@xn--bcher-kva.example>"}, 1, "xn--bcher-kva.example"},
	{{"Undisclosed: one@group.example;"}, 1, "group.example"},
	{{"<@relay.example:user@route.example>"}, 1, "route.example"},
	{{"user@example.com, "}, 1, "example.com"},
	{{"a@one.example, b@two.example"}, 1, NULL},
	{{"a@same.example, b@same.example"}, 1, NULL},
	{{"a@one.example", "b@two.example"}, 2, NULL},
	{{NULL}, 0, NULL},
	{{""}, 1, NULL},
	{{"Undisclosed recipients:;"}, 1, NULL},
	{{"user@[192.0.2.1]"}, 1, NULL},
	{{"no-at-sign.example"}, 1, NULL},
	{{"@example.com"}, 1, NULL},
	{{"user@"}, 1, NULL},
	{{"user@exa mple.com"}, 1, NULL},
	{{"user@a..example"}, 1, NULL},
	{{"<user@example.com"}, 1, NULL},
	{{"\"unterminated <u@example.com>"}, 1, NULL},
	{{"<a@x.example> trailing"}, 1, NULL},
};

static void
test_from_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(from_cases) / sizeof(from_cases[0]); i++) {
		const struct from_case *c = &from_cases[i];
		char d[DMARC_DOMAIN_MAX + 1], why[160] = "";
		int rc = dmarc_from_domain(c->fields, c->n, d, why, sizeof(why));
		if (c->domain) {
			if (rc != 0 || strcmp(d, c->domain) != 0)
				fail_msg("case %zu: rc %d domain '%s' (%s), want %s", i, rc, d, why,
					 c->domain);
		} else if (rc == 0) {
			fail_msg("case %zu: accepted '%s', want refused", i, d);
		} else {
			assert_true(why[0] != '\0');
		}
	}
}

static void
test_from_limits(void **state)
{
	(void)state;
	char d[DMARC_DOMAIN_MAX + 1];
	/* domain of exactly 253 and 254 bytes: 63-byte labels */
	char dom[300];
	size_t n = 0;
	while (n < DMARC_DOMAIN_MAX) {
		size_t lab = DMARC_DOMAIN_MAX - n >= 64 ? 63 : DMARC_DOMAIN_MAX - n;
		memset(dom + n, 'a', lab);
		n += lab;
		if (n < DMARC_DOMAIN_MAX)
			dom[n++] = '.';
	}
	dom[n] = '\0';
	assert_int_equal(strlen(dom), DMARC_DOMAIN_MAX);
	char field[400];
	snprintf(field, sizeof(field), "u@%s", dom);
	const char *f[1] = {field};
	assert_int_equal(dmarc_from_domain(f, 1, d, NULL, 0), 0);
	assert_string_equal(d, dom);
	snprintf(field, sizeof(field), "u@b%s", dom);
	assert_int_equal(dmarc_from_domain(f, 1, d, NULL, 0), -1);

	/* field of exactly DMARC_FROM_FIELD_MAX bytes, then one more */
	char *big = malloc(DMARC_FROM_FIELD_MAX + 2);
	const char *tail = " <u@example.com>";
	size_t pad = DMARC_FROM_FIELD_MAX - strlen(tail);
	memset(big, 'x', pad);
	memcpy(big + pad, tail, strlen(tail) + 1);
	f[0] = big;
	assert_int_equal(dmarc_from_domain(f, 1, d, NULL, 0), 0);
	assert_string_equal(d, "example.com");
	memmove(big + 1, big, DMARC_FROM_FIELD_MAX + 1);
	assert_int_equal(dmarc_from_domain(f, 1, d, NULL, 0), -1);
	free(big);
}

/* ------------------------------------------------------------ DNS table */

struct zone_ent {
	const char *qname;
	enum ws_dns_type type;
	enum ws_dns_status status;
	const char *txt[3];
};

/* Names not listed answer NXDOMAIN. */
static const struct zone_ent zone[] = {
	{"_dmarc.example.com", WS_DNS_TXT, WS_DNS_OK,
	 {"v=spf1 -all", "v=DMARC1; p=reject; rua=mailto:r@example.com"}},
	{"_dmarc.strict.example", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=reject; adkim=s; aspf=s"}},
	{"_dmarc.sp.example", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=reject; sp=quarantine"}},
	{"_dmarc.np.example", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=quarantine; sp=none; np=reject"}},
	{"exists.np.example", WS_DNS_A, WS_DNS_NODATA, {NULL}},
	{"mx.np.example", WS_DNS_MX, WS_DNS_OK, {NULL}},
	{"tf.np.example", WS_DNS_A, WS_DNS_TEMPFAIL, {NULL}},
	{"_dmarc.pct.example", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=reject; pct=30"}},
	{"_dmarc.pct0.example", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=quarantine; pct=0"}},
	{"_dmarc.test.example", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=reject; t=y"}},
	{"_dmarc.temp.example", WS_DNS_TXT, WS_DNS_TEMPFAIL, {NULL}},
	{"_dmarc.bogus.example", WS_DNS_TXT, WS_DNS_BOGUS, {NULL}},
	{"_dmarc.tempparent.example", WS_DNS_TXT, WS_DNS_TEMPFAIL, {NULL}},
	{"_dmarc.multi.example", WS_DNS_TXT, WS_DNS_OK,
	 {"v=DMARC1; p=reject", "v=DMARC1; p=none"}},
	{"_dmarc.dup.example", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=reject; p=none"}},
	{"_dmarc.badp.example", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=bogus"}},
	{"_dmarc.badprua.example", WS_DNS_TXT, WS_DNS_OK,
	 {"v=DMARC1; p=bogus; rua=mailto:x@badprua.example"}},
	/* blogspot.com is a PSL private suffix that publishes a policy */
	{"_dmarc.blogspot.com", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=reject"}},
	/* a public-suffix operator below a TLD the PSL does not list */
	{"_dmarc.psd.example", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=reject; psd=y"}},
	{"_dmarc.corp.example", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=reject; psd=n"}},
	{"_dmarc.example", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=none; psd=y"}},
	{"_dmarc.deep.example", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=quarantine"}},
	{"_dmarc.i.h.g.f.e.d.c.b.a.deep.example", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=reject"}},
	{"_dmarc.h.g.f.e.d.c.b.a.deep.example", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=reject"}},
	{"_dmarc.child.pass.example", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=none; psd=n"}},
	{"_dmarc.pass.example", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=reject"}},
	/* psd=y at the Author Domain itself does not stop the walk (step 2) */
	{"_dmarc.self.test", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=reject; psd=y"}},
	{"_dmarc.test", WS_DNS_TXT, WS_DNS_OK, {"v=DMARC1; p=none"}},
};

struct answer_buf {
	struct ws_dns_rr rrs[3];
	struct ws_dns_answer a;
};

static void
fill_answer(const char *qname, enum ws_dns_type type, struct answer_buf *b)
{
	memset(b, 0, sizeof(*b));
	b->a.status = WS_DNS_NXDOMAIN;
	b->a.rcode = 3;
	for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++) {
		if (zone[i].type != type || strcmp(zone[i].qname, qname) != 0)
			continue;
		b->a.status = zone[i].status;
		b->a.rcode = zone[i].status == WS_DNS_OK || zone[i].status == WS_DNS_NODATA ? 0 : 2;
		if (zone[i].status == WS_DNS_TEMPFAIL)
			snprintf(b->a.why, sizeof(b->a.why), "SERVFAIL");
		for (size_t k = 0; k < 3 && zone[i].txt[k]; k++) {
			b->rrs[k].type = WS_DNS_TXT;
			b->rrs[k].u.txt.data = (uint8_t *)(uintptr_t)zone[i].txt[k];
			b->rrs[k].u.txt.len = strlen(zone[i].txt[k]);
			b->rrs[k].u.txt.nstrings = 1;
			b->a.count = k + 1;
		}
		if (type == WS_DNS_MX && zone[i].status == WS_DNS_OK) {
			b->rrs[0].type = WS_DNS_MX;
			b->rrs[0].u.mx.pref = 10;
			b->a.count = 1;
		}
		b->a.rrs = b->rrs;
		break;
	}
}

#define MAXQ 64
struct trace {
	char q[MAXQ][DMARC_DOMAIN_MAX + 16];
	enum ws_dns_type t[MAXQ];
	size_t n;
};

/* Drive an evaluator to DONE from the zone table; the result is copied. */
static void
drive(const struct dmarc_inputs *in, struct dmarc_result *out, struct trace *tr)
{
	char why[160];
	struct dmarc_eval *ev = dmarc_eval_new(in, why, sizeof(why));
	if (!ev)
		fail_msg("eval_new: %s", why);
	tr->n = 0;
	struct dmarc_query q;
	enum dmarc_step st;
	while ((st = dmarc_step(ev, &q)) == DMARC_STEP_NEED_DNS) {
		assert_true(tr->n < MAXQ);
		snprintf(tr->q[tr->n], sizeof(tr->q[0]), "%s", q.name);
		tr->t[tr->n++] = q.type;
		struct answer_buf b;
		fill_answer(q.name, q.type, &b);
		assert_int_equal(dmarc_answer(ev, &b.a), 0);
	}
	assert_int_equal(st, DMARC_STEP_DONE);
	assert_int_equal(dmarc_step(ev, &q), DMARC_STEP_DONE); /* stays done */
	*out = *dmarc_eval_result(ev);
	dmarc_eval_free(ev);
}

/* ------------------------------------------------------------ eval table */

#define PASS DMARC_AUTH_PASS
#define FAIL DMARC_AUTH_FAIL
#define MAXD 3

struct eval_case {
	const char *name;
	const char *from;
	enum dmarc_auth spf;
	const char *spf_domain;
	struct dmarc_dkim dkim[MAXD];
	enum dmarc_org_method method;
	bool use_psl, cross;
	unsigned rnd;
	/* expected */
	enum dmarc_res res;
	enum dmarc_policy policy, disp;
	enum dmarc_policy_src src;
	bool spf_al, dkim_al;
	const char *org, *record_domain;
	bool disagree;
	int queries; /* -1: not checked */
	const char *reason; /* substring, or NULL */
};

#define TW DMARC_ORG_TREEWALK
#define PSLM DMARC_ORG_PSL
#define P_N DMARC_P_NONE
#define P_Q DMARC_P_QUARANTINE
#define P_R DMARC_P_REJECT
#define R_PASS DMARC_RES_PASS
#define R_FAIL DMARC_RES_FAIL
#define R_NONE DMARC_RES_NONE
#define R_TEMP DMARC_RES_TEMPERROR
#define R_PERM DMARC_RES_PERMERROR
#define S_P DMARC_SRC_P
#define S_SP DMARC_SRC_SP
#define S_NP DMARC_SRC_NP
#define S_0 DMARC_SRC_NONE

static const struct eval_case eval_cases[] = {
	/* relaxed alignment, tree walk */
	{"spf exact", "u@example.com", PASS, "example.com", {{0}}, TW, 0, 0, 0,
	 R_PASS, P_R, P_N, S_P, 1, 0, "example.com", "example.com", 0, 2, NULL},
	{"spf subdomain relaxed", "u@example.com", PASS, "bounce.example.com", {{0}}, TW, 0, 0, 0,
	 R_PASS, P_R, P_N, S_P, 1, 0, "example.com", "example.com", 0, 3, "SPF"},
	{"dkim subdomain relaxed, case", "U@EXAMPLE.COM", FAIL, "example.com",
	 {{"Mail.Example.COM.", PASS}}, TW, 0, 0, 0,
	 R_PASS, P_R, P_N, S_P, 0, 1, "example.com", "example.com", 0, 3, "DKIM"},
	{"dkim fail does not align", "u@example.com", FAIL, "example.com",
	 {{"example.com", FAIL}}, TW, 0, 0, 0,
	 R_FAIL, P_R, P_R, S_P, 0, 0, "example.com", "example.com", 0, 2, NULL},
	{"other org does not align, no query", "u@example.com", PASS, "example.net",
	 {{"example.org", PASS}}, TW, 0, 0, 0,
	 R_FAIL, P_R, P_R, S_P, 0, 0, "example.com", "example.com", 0, 2, NULL},
	{"suffix-lookalike does not align", "u@example.com", PASS, "badexample.com", {{0}}, TW, 0, 0,
	 0, R_FAIL, P_R, P_R, S_P, 0, 0, "example.com", "example.com", 0, 2, NULL},
	{"second dkim aligns", "u@example.com", FAIL, NULL,
	 {{"other.example", PASS}, {"s.example.com", PASS}}, TW, 0, 0, 0,
	 R_PASS, P_R, P_N, S_P, 0, 1, "example.com", "example.com", 0, 3, NULL},
	/* strict */
	{"strict dkim subdomain", "u@strict.example", PASS, "mail.strict.example",
	 {{"mail.strict.example", PASS}}, TW, 0, 0, 0,
	 R_FAIL, P_R, P_R, S_P, 0, 0, "strict.example", "strict.example", 0, -1, NULL},
	{"strict exact, case", "u@strict.example", FAIL, NULL, {{"STRICT.example", PASS}}, TW, 0, 0,
	 0, R_PASS, P_R, P_N, S_P, 0, 1, "strict.example", "strict.example", 0, -1, NULL},
	{"strict spf exact", "u@strict.example", PASS, "Strict.Example", {{0}}, TW, 0, 0, 0,
	 R_PASS, P_R, P_N, S_P, 1, 0, "strict.example", "strict.example", 0, -1, NULL},
	/* sp for subdomains; p at the domain itself */
	{"sp for subdomain", "u@sub.sp.example", FAIL, NULL, {{0}}, TW, 0, 0, 0,
	 R_FAIL, P_Q, P_Q, S_SP, 0, 0, "sp.example", "sp.example", 0, -1, NULL},
	{"p at the record's domain", "u@sp.example", FAIL, NULL, {{0}}, TW, 0, 0, 0,
	 R_FAIL, P_R, P_R, S_P, 0, 0, "sp.example", "sp.example", 0, -1, NULL},
	{"p when no sp", "u@sub.example.com", FAIL, NULL, {{0}}, TW, 0, 0, 0,
	 R_FAIL, P_R, P_R, S_P, 0, 0, "example.com", "example.com", 0, -1, NULL},
	/* np: A, AAAA and MX all NXDOMAIN */
	{"np for non-existent", "u@nosuch.np.example", FAIL, NULL, {{0}}, TW, 0, 0, 0,
	 R_FAIL, P_R, P_R, S_NP, 0, 0, "np.example", "np.example", 0, 6, NULL},
	{"sp for existing (NODATA)", "u@exists.np.example", FAIL, NULL, {{0}}, TW, 0, 0, 0,
	 R_FAIL, P_N, P_N, S_SP, 0, 0, "np.example", "np.example", 0, 4, NULL},
	{"sp for existing (MX)", "u@mx.np.example", FAIL, NULL, {{0}}, TW, 0, 0, 0,
	 R_FAIL, P_N, P_N, S_SP, 0, 0, "np.example", "np.example", 0, 6, NULL},
	{"existence unknown -> sp", "u@tf.np.example", FAIL, NULL, {{0}}, TW, 0, 0, 0,
	 R_FAIL, P_N, P_N, S_SP, 0, 0, "np.example", "np.example", 0, 4, NULL},
	{"np not needed on pass", "u@nosuch.np.example", FAIL, NULL, {{"np.example", PASS}}, TW, 0,
	 0, 0, R_PASS, P_N, P_N, S_SP, 0, 1, "np.example", "np.example", 0, 3, NULL},
	{"np not for the record's own domain", "u@np.example", FAIL, NULL, {{0}}, TW, 0, 0, 0,
	 R_FAIL, P_Q, P_Q, S_P, 0, 0, "np.example", "np.example", 0, 2, NULL},
	/* pct sampling with the caller's random value; t=y */
	{"pct in sample", "u@pct.example", FAIL, NULL, {{0}}, TW, 0, 0, 29,
	 R_FAIL, P_R, P_R, S_P, 0, 0, "pct.example", "pct.example", 0, -1, NULL},
	{"pct sampled out", "u@pct.example", FAIL, NULL, {{0}}, TW, 0, 0, 30,
	 R_FAIL, P_R, P_Q, S_P, 0, 0, "pct.example", "pct.example", 0, -1, "pct"},
	{"pct=0 quarantine -> none", "u@pct0.example", FAIL, NULL, {{0}}, TW, 0, 0, 0,
	 R_FAIL, P_Q, P_N, S_P, 0, 0, "pct0.example", "pct0.example", 0, -1, NULL},
	{"pct=100 always", "u@example.com", FAIL, NULL, {{0}}, TW, 0, 0, 99,
	 R_FAIL, P_R, P_R, S_P, 0, 0, "example.com", "example.com", 0, -1, NULL},
	{"t=y one step weaker", "u@test.example", FAIL, NULL, {{0}}, TW, 0, 0, 0,
	 R_FAIL, P_R, P_Q, S_P, 0, 0, "test.example", "test.example", 0, -1, "t=y"},
	/* no record, broken records, DNS failures */
	{"no record anywhere", "u@nothing.invalid", PASS, "nothing.invalid", {{0}}, TW, 0, 0, 0,
	 R_NONE, P_N, P_N, S_0, 0, 0, "nothing.invalid", "", 0, 2, "no DMARC record"},
	{"several records discarded", "u@multi.example", FAIL, NULL, {{0}}, TW, 0, 0, 0,
	 R_FAIL, P_N, P_N, S_P, 0, 0, "multi.example", "example", 0, 2, NULL},
	{"duplicate tag -> permerror", "u@dup.example", FAIL, NULL, {{0}}, TW, 0, 0, 0,
	 R_PERM, P_N, P_N, S_0, 0, 0, "dup.example", "dup.example", 0, 2, "twice"},
	{"invalid p, no rua: ignored", "u@badp.example", FAIL, NULL, {{0}}, TW, 0, 0, 0,
	 R_FAIL, P_N, P_N, S_P, 0, 0, "badp.example", "example", 0, 2, NULL},
	{"invalid p with rua: p=none", "u@badprua.example", FAIL, NULL, {{0}}, TW, 0, 0, 0,
	 R_FAIL, P_N, P_N, S_P, 0, 0, "badprua.example", "badprua.example", 0, 2, NULL},
	{"TEMPFAIL at author", "u@temp.example", PASS, "temp.example", {{0}}, TW, 0, 0, 0,
	 R_TEMP, P_N, P_N, S_0, 0, 0, "", "", 0, 1, "SERVFAIL"},
	{"BOGUS at author", "u@bogus.example", PASS, "bogus.example", {{0}}, TW, 0, 0, 0,
	 R_TEMP, P_N, P_N, S_0, 0, 0, "", "", 0, 1, "DNSSEC"},
	{"TEMPFAIL at parent", "u@x.tempparent.example", PASS, "x.tempparent.example", {{0}}, TW,
	 0, 0, 0, R_TEMP, P_N, P_N, S_0, 0, 0, "", "", 0, 2, "tempparent"},
	/* psd=n stops the walk; psd=y makes the child the org domain */
	{"psd=n stops", "u@x.corp.example", FAIL, NULL, {{"corp.example", PASS}}, TW, 0, 0, 0,
	 R_PASS, P_R, P_N, S_P, 0, 1, "corp.example", "corp.example", 0, 2, NULL},
	{"psd=y: org is one label below", "u@a.b.psd.example", FAIL, NULL,
	 {{"c.psd.example", PASS}, {"b.psd.example", PASS}}, TW, 1, 0, 0,
	 R_PASS, P_R, P_N, S_P, 0, 1, "b.psd.example", "psd.example", 1, 3, NULL},
	{"psd=y: sibling does not align", "u@a.b.psd.example", FAIL, NULL,
	 {{"c.psd.example", PASS}}, TW, 1, 0, 0,
	 R_FAIL, P_R, P_R, S_P, 0, 0, "b.psd.example", "psd.example", 1, 3, NULL},
	{"psl: sibling aligns", "u@a.b.psd.example", FAIL, NULL,
	 {{"c.psd.example", PASS}}, PSLM, 1, 0, 0,
	 R_PASS, P_R, P_N, S_P, 0, 1, "psd.example", "psd.example", 0, 2, NULL},
	{"psd=n child stops before its parent", "u@child.pass.example", PASS, "pass.example", {{0}},
	 TW, 0, 0, 0, R_FAIL, P_N, P_N, S_P, 0, 0, "child.pass.example", "child.pass.example", 0, 1,
	 NULL},
	{"psd=y at the author domain walks on", "u@self.test", FAIL, NULL, {{"other.test", PASS}},
	 TW, 0, 0, 0, R_PASS, P_R, P_N, S_P, 0, 1, "test", "self.test", 0, 3, NULL},
	/* PSL vs tree walk */
	{"walk: private suffix inherits policy", "u@a.blogspot.com", FAIL, NULL, {{0}}, TW, 1, 0, 0,
	 R_FAIL, P_R, P_R, S_P, 0, 0, "blogspot.com", "blogspot.com", 1, 3, NULL},
	{"psl: private suffix has no policy", "u@a.blogspot.com", FAIL, NULL, {{0}}, PSLM, 1, 0, 0,
	 R_NONE, P_N, P_N, S_0, 0, 0, "a.blogspot.com", "", 0, 1, NULL},
	{"psl + cross-check flags it", "u@a.blogspot.com", FAIL, NULL, {{0}}, PSLM, 1, 1, 0,
	 R_NONE, P_N, P_N, S_0, 0, 0, "a.blogspot.com", "", 1, 3, NULL},
	{"psl: org fallback query", "u@sub.example.com", PASS, "b.example.com", {{0}}, PSLM, 1, 0,
	 0, R_PASS, P_R, P_N, S_P, 1, 0, "example.com", "example.com", 0, 2, NULL},
	{"psl and walk agree", "u@example.com", FAIL, NULL, {{"mail.example.com", PASS}}, TW, 1, 0,
	 0, R_PASS, P_R, P_N, S_P, 0, 1, "example.com", "example.com", 0, 3, NULL},
	/* the walk limit: 8 labels walk every label; 10 labels skip to 7 */
	{"walk 8 labels", "u@g.f.e.d.c.b.a.example", FAIL, NULL, {{0}}, TW, 0, 0, 0,
	 R_FAIL, P_N, P_N, S_P, 0, 0, "a.example", "example", 0, 8, NULL},
	{"walk 12 labels skips", "u@j.i.h.g.f.e.d.c.b.a.deep.example", FAIL, NULL, {{0}}, TW, 0, 0,
	 0, R_FAIL, P_Q, P_Q, S_P, 0, 0, "deep.example", "deep.example", 0, 8, NULL},
	/* From problems are permerror, no DNS */
	{"no From", NULL, PASS, "example.com", {{0}}, TW, 0, 0, 0,
	 R_PERM, P_N, P_N, S_0, 0, 0, "", "", 0, 0, "no From"},
	{"two addresses", "a@example.com, b@example.com", PASS, "example.com", {{0}}, TW, 0, 0, 0,
	 R_PERM, P_N, P_N, S_0, 0, 0, "", "", 0, 0, "2 addresses"},
};

static void
test_eval_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(eval_cases) / sizeof(eval_cases[0]); i++) {
		const struct eval_case *c = &eval_cases[i];
		struct dmarc_inputs in = {0};
		const char *from[1] = {c->from};
		in.from = from;
		in.nfrom = c->from ? 1 : 0;
		in.spf_result = c->spf;
		in.spf_domain = c->spf_domain;
		size_t nd = 0;
		while (nd < MAXD && c->dkim[nd].domain)
			nd++;
		in.dkim = c->dkim;
		in.ndkim = nd;
		in.method = c->method;
		in.psl = c->use_psl ? psl : NULL;
		in.cross_check = c->cross;
		in.random_pct = c->rnd;
		struct dmarc_result r;
		struct trace tr;
		drive(&in, &r, &tr);
		bool ok = r.result == c->res && r.spf_aligned == c->spf_al &&
			  r.dkim_aligned == c->dkim_al && strcmp(r.org_domain, c->org) == 0 &&
			  strcmp(r.record_domain, c->record_domain) == 0 &&
			  r.org_disagree == c->disagree && r.org_method == c->method &&
			  (c->queries < 0 || (size_t)c->queries == tr.n) &&
			  r.queries == tr.n &&
			  (!c->reason || strstr(r.reason, c->reason));
		if (ok && (c->res == R_FAIL || c->res == R_PASS))
			ok = r.policy == c->policy && r.policy_src == c->src &&
			     r.disposition == c->disp;
		if (!ok) {
			for (size_t k = 0; k < tr.n; k++)
				print_message("  query %s type %d\n", tr.q[k], tr.t[k]);
			fail_msg("case '%s': res %s policy %s(src %d) disp %s spf_al %d dkim_al %d "
				 "org '%s' rec '%s' disagree %d psl '%s' walk '%s' method %s "
				 "queries %zu/%u reason '%s'",
				 c->name, dmarc_res_name(r.result), dmarc_policy_name(r.policy),
				 r.policy_src, dmarc_policy_name(r.disposition), r.spf_aligned,
				 r.dkim_aligned, r.org_domain, r.record_domain, r.org_disagree,
				 r.psl_org_domain, r.walk_org_domain, dmarc_org_method_name(r.org_method),
				 tr.n, r.queries, r.reason);
		}
	}
}

/* The exact queries of a walk: the 12-label name goes straight to 7 labels,
 * so the records at 11 and 10 labels are never asked for. */
static void
test_walk_queries(void **state)
{
	(void)state;
	static const char *want[] = {
		"_dmarc.j.i.h.g.f.e.d.c.b.a.deep.example", "_dmarc.e.d.c.b.a.deep.example",
		"_dmarc.d.c.b.a.deep.example",
		"_dmarc.c.b.a.deep.example", "_dmarc.b.a.deep.example", "_dmarc.a.deep.example",
		"_dmarc.deep.example", "_dmarc.example",
	};
	const char *from[1] = {"u@j.i.h.g.f.e.d.c.b.a.deep.example"};
	struct dmarc_inputs in = {.from = from, .nfrom = 1};
	struct dmarc_result r;
	struct trace tr;
	drive(&in, &r, &tr);
	assert_int_equal(tr.n, DMARC_WALK_MAX_QUERIES);
	for (size_t i = 0; i < tr.n; i++) {
		assert_string_equal(tr.q[i], want[i]);
		assert_int_equal(tr.t[i], WS_DNS_TXT);
	}
	/* 9 labels: one query at 9, then 7..1 = 8 queries */
	from[0] = "u@h.g.f.e.d.c.b.a.example";
	drive(&in, &r, &tr);
	assert_int_equal(tr.n, DMARC_WALK_MAX_QUERIES);
	assert_string_equal(tr.q[1], "_dmarc.f.e.d.c.b.a.example");
}

static void
test_np_queries(void **state)
{
	(void)state;
	const char *from[1] = {"u@nosuch.np.example"};
	struct dmarc_inputs in = {.from = from, .nfrom = 1};
	struct dmarc_result r;
	struct trace tr;
	drive(&in, &r, &tr);
	assert_int_equal(tr.n, 6);
	assert_string_equal(tr.q[3], "nosuch.np.example");
	assert_int_equal(tr.t[3], WS_DNS_A);
	assert_int_equal(tr.t[4], WS_DNS_AAAA);
	assert_int_equal(tr.t[5], WS_DNS_MX);
	assert_true(r.from_nonexistent);
}

static void
test_multiple_from_fields(void **state)
{
	(void)state;
	const char *from[2] = {"a@example.com", "a@example.com"};
	struct dmarc_inputs in = {.from = from, .nfrom = 2, .spf_result = PASS,
				  .spf_domain = "example.com"};
	struct dmarc_result r;
	struct trace tr;
	drive(&in, &r, &tr);
	assert_int_equal(r.result, DMARC_RES_PERMERROR);
	assert_int_equal(tr.n, 0);
	assert_non_null(strstr(r.reason, "2 From fields"));
}

static void
test_eval_api(void **state)
{
	(void)state;
	char why[160];
	const char *from[1] = {"u@example.com"};
	struct dmarc_dkim dk[DMARC_MAX_DKIM + 1];
	for (size_t i = 0; i < DMARC_MAX_DKIM + 1; i++) {
		dk[i].domain = "x.example.org";
		dk[i].result = PASS;
	}
	dk[DMARC_MAX_DKIM - 1].domain = "example.com";
	struct dmarc_inputs in = {.from = from, .nfrom = 1, .dkim = dk, .ndkim = DMARC_MAX_DKIM};
	struct dmarc_result r;
	struct trace tr;
	drive(&in, &r, &tr);
	assert_int_equal(r.result, DMARC_RES_PASS); /* the 16th result counts */
	in.ndkim = DMARC_MAX_DKIM + 1;
	assert_null(dmarc_eval_new(&in, why, sizeof(why)));
	assert_non_null(strstr(why, "DKIM"));
	in.ndkim = 0;
	in.random_pct = 100;
	assert_null(dmarc_eval_new(&in, why, sizeof(why)));
	in.random_pct = 99;
	in.method = DMARC_ORG_PSL;
	assert_null(dmarc_eval_new(&in, why, sizeof(why)));
	in.method = DMARC_ORG_TREEWALK;

	/* answer without a question; step without an answer; result before done */
	struct dmarc_eval *ev = dmarc_eval_new(&in, why, sizeof(why));
	assert_non_null(ev);
	struct ws_dns_answer nx = {.status = WS_DNS_NXDOMAIN};
	assert_int_equal(dmarc_answer(ev, &nx), -1);
	struct dmarc_query q;
	assert_int_equal(dmarc_step(ev, &q), DMARC_STEP_NEED_DNS);
	assert_string_equal(q.name, "_dmarc.example.com");
	assert_null(dmarc_eval_result(ev));
	assert_int_equal(dmarc_step(ev, &q), DMARC_STEP_ERROR);
	dmarc_eval_free(ev);
	dmarc_eval_free(NULL);
}

/* ------------------------------------------------------------ ARC */

static void
test_arc_override(void **state)
{
	(void)state;
	const char *from[1] = {"u@example.com"};
	struct dmarc_inputs in = {.from = from, .nfrom = 1, .spf_result = FAIL};
	struct dmarc_result fail;
	struct trace tr;
	drive(&in, &fail, &tr);
	assert_int_equal(fail.result, DMARC_RES_FAIL);

	const char *trusted[] = {"forwarder.example", "List.Example"};
	struct dmarc_arc_method aar1[] = {{"spf", "pass", "example.com"},
					  {"dkim", "pass", "mail.example.com"}};
	struct dmarc_arc_method aar_dmarc[] = {{"dmarc", "pass", "example.com"}};
	struct dmarc_arc_method aar_fail[] = {{"dmarc", "fail", "example.com"},
					      {"dkim", "pass", "other.example"}};
	struct dmarc_arc_method aar_other[] = {{"dmarc", "pass", "other.example"}};
	struct dmarc_arc_instance inst[] = {
		{1, "list.example", aar1, 2},
		{2, "untrusted.example", aar_dmarc, 1},
	};
	struct dmarc_arc_input arc = {DMARC_ARC_PASS, inst, 2};
	struct dmarc_arc_override o;

	assert_int_equal(dmarc_arc_override(&fail, &arc, trusted, 2, &o), 0);
	assert_true(o.applied);
	assert_string_equal(o.by, "arc");
	assert_string_equal(o.sealer, "list.example");
	assert_int_equal(o.instance, 1);
	assert_int_equal(fail.result, DMARC_RES_FAIL); /* never disguised as a pass */

	/* only the untrusted sealer saw a pass */
	struct dmarc_arc_instance only_untrusted[] = {{1, "untrusted.example", aar_dmarc, 1}};
	struct dmarc_arc_input arc2 = {DMARC_ARC_PASS, only_untrusted, 1};
	assert_int_equal(dmarc_arc_override(&fail, &arc2, trusted, 2, &o), 0);
	assert_false(o.applied);
	assert_non_null(strstr(o.reason, "no trusted sealer"));

	/* trusted sealer, but its AAR says fail / unaligned / another domain */
	struct dmarc_arc_instance tr_fail[] = {{1, "forwarder.example", aar_fail, 2},
					       {2, "forwarder.example", aar_other, 1}};
	struct dmarc_arc_input arc3 = {DMARC_ARC_PASS, tr_fail, 2};
	assert_int_equal(dmarc_arc_override(&fail, &arc3, trusted, 2, &o), 0);
	assert_false(o.applied);

	/* newest trusted instance wins */
	struct dmarc_arc_instance two[] = {{1, "list.example", aar1, 2},
					   {3, "forwarder.example", aar_dmarc, 1}};
	struct dmarc_arc_input arc4 = {DMARC_ARC_PASS, two, 2};
	assert_int_equal(dmarc_arc_override(&fail, &arc4, trusted, 2, &o), 0);
	assert_true(o.applied);
	assert_int_equal(o.instance, 3);
	assert_non_null(strstr(o.reason, "dmarc=pass"));

	/* ARC chain fail or none: no override */
	arc.chain = DMARC_ARC_FAIL;
	assert_int_equal(dmarc_arc_override(&fail, &arc, trusted, 2, &o), 0);
	assert_false(o.applied);
	assert_non_null(strstr(o.reason, "arc=fail"));
	arc.chain = DMARC_ARC_NONE;
	assert_int_equal(dmarc_arc_override(&fail, &arc, trusted, 2, &o), 0);
	assert_false(o.applied);
	arc.chain = DMARC_ARC_PASS;

	/* DMARC did not fail: nothing to override */
	struct dmarc_result pass = fail;
	pass.result = DMARC_RES_PASS;
	assert_int_equal(dmarc_arc_override(&pass, &arc, trusted, 2, &o), 0);
	assert_false(o.applied);

	/* strict alignment: a subdomain dkim pass at the hop does not count */
	struct dmarc_result strict = fail;
	strict.adkim = DMARC_ALIGN_STRICT;
	strict.aspf = DMARC_ALIGN_STRICT;
	struct dmarc_arc_method aar_sub[] = {{"dkim", "pass", "mail.example.com"}};
	struct dmarc_arc_instance sub[] = {{1, "list.example", aar_sub, 1}};
	struct dmarc_arc_input arc5 = {DMARC_ARC_PASS, sub, 1};
	assert_int_equal(dmarc_arc_override(&strict, &arc5, trusted, 2, &o), 0);
	assert_false(o.applied);
	assert_int_equal(dmarc_arc_override(&fail, &arc5, trusted, 2, &o), 0);
	assert_true(o.applied);

	/* limits: trusted list and instances, at and past */
	const char *many[DMARC_MAX_TRUSTED_SEALERS + 1];
	for (size_t i = 0; i < DMARC_MAX_TRUSTED_SEALERS + 1; i++)
		many[i] = "list.example";
	assert_int_equal(dmarc_arc_override(&fail, &arc, many, DMARC_MAX_TRUSTED_SEALERS, &o), 0);
	assert_true(o.applied);
	assert_int_equal(dmarc_arc_override(&fail, &arc, many, DMARC_MAX_TRUSTED_SEALERS + 1, &o),
			 -1);
	struct dmarc_arc_instance insts[DMARC_ARC_MAX_INSTANCES + 1];
	for (size_t i = 0; i < DMARC_ARC_MAX_INSTANCES + 1; i++)
		insts[i] = (struct dmarc_arc_instance){(unsigned)i + 1, "x.example", NULL, 0};
	insts[DMARC_ARC_MAX_INSTANCES - 1].sealer = "list.example";
	insts[DMARC_ARC_MAX_INSTANCES - 1].results = aar_dmarc;
	insts[DMARC_ARC_MAX_INSTANCES - 1].nresults = 1;
	struct dmarc_arc_input big = {DMARC_ARC_PASS, insts, DMARC_ARC_MAX_INSTANCES};
	assert_int_equal(dmarc_arc_override(&fail, &big, trusted, 2, &o), 0);
	assert_true(o.applied);
	big.ninst = DMARC_ARC_MAX_INSTANCES + 1;
	assert_int_equal(dmarc_arc_override(&fail, &big, trusted, 2, &o), -1);
}

static int
setup(void **state)
{
	(void)state;
	psl = psl_load_file("/usr/share/publicsuffix/public_suffix_list.dat");
	if (!psl)
		psl = psl_latest(NULL);
	return psl ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	psl_free(psl);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_table),
		cmocka_unit_test(test_record_spans),
		cmocka_unit_test(test_record_limits),
		cmocka_unit_test(test_from_table),
		cmocka_unit_test(test_from_limits),
		cmocka_unit_test(test_eval_table),
		cmocka_unit_test(test_walk_queries),
		cmocka_unit_test(test_np_queries),
		cmocka_unit_test(test_multiple_from_fields),
		cmocka_unit_test(test_eval_api),
		cmocka_unit_test(test_arc_override),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
