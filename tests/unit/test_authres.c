/* authres: RFC 8601 Authentication-Results parsing (table-driven) and the
 * builder's output read back by the parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "authres.h"

/* One case: the text, whether it parses, and when it does a summary
 * "id|version|none|method/version=result[reason]{ptype.prop=value,...};..."
 * built from the parse with decoded values. */
static const struct {
	const char *text;
	const char *want; /* NULL = must not parse */
} cases[] = {
	{"example.org; spf=pass smtp.mailfrom=a@b.example", "example.org|||spf=pass{smtp.mailfrom=a@b.example};"},
	{"example.org 1; none", "example.org|1|none|"},
	{"example.org; none", "example.org||none|"},
	{" mx.example.org ; dkim=pass header.d=d1.example header.s=sel header.b=abcdEFGH",
	 "mx.example.org|||dkim=pass{header.d=d1.example,header.s=sel,header.b=abcdEFGH};"},
	/* comments anywhere, nested, with ';' and escaped ')' inside */
	{"example.org (a; comment); dkim=pass (1024-bit key; \\) ok (nested; x)) header.i=@d1.example",
	 "example.org|||dkim=pass{header.i=@d1.example};"},
	{"example.org;\r\n\tdkim (c) = (c) fail (c) reason (c) = (c) \"bad \\\"sig\\\"\" header (c) . (c) d = (c) x.example",
	 "example.org|||dkim=fail[bad \"sig\"]{header.d=x.example};"},
	/* method version, unknown methods kept, several clauses, trailing ';' */
	{"example.org; auth/1=pass smtp.auth=alice; x-frob=weird policy.x=1; arc=none;",
	 "example.org|||auth/1=pass{smtp.auth=alice};x-frob=weird{policy.x=1};arc=none;"},
	/* quoted authserv-id, quoted property value, local@domain, dotted values */
	{"\"odd id\"; spf=fail smtp.mailfrom=\"a b\"@c.example smtp.helo=mx.c.example",
	 NULL},
	{"\"odd id\"; spf=fail smtp.mailfrom=\"a b\" smtp.helo=mx.c.example",
	 "odd id|||spf=fail{smtp.mailfrom=a b,smtp.helo=mx.c.example};"},
	{"example.org; dmarc=pass (p=none dis=none) header.from=d1.example",
	 "example.org|||dmarc=pass{header.from=d1.example};"},
	/* empty pvalue (null sender) */
	{"example.org; spf=none smtp.mailfrom= smtp.helo=h.example", "example.org|||spf=none{smtp.mailfrom=,smtp.helo=h.example};"},
	/* Microsoft 365 style: no authserv-id at all */
	{"spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=a.example; dkim=none (message not signed)",
	 "|||spf=pass{smtp.mailfrom=a.example};dkim=none;"},
	/* errors */
	{"", NULL},
	{"example.org", NULL},
	{"example.org spf=pass", NULL},
	{"example.org; spf", NULL},
	{"example.org; spf=", NULL},
	{"example.org; spf=pass (unterminated", NULL},
	{"example.org; spf=pass smtp", NULL},
	{"example.org; spf=pass smtp.mailfrom=\"open", NULL},
	{"example.org; spf=pass smtp.=x", NULL},
};

static void
summary(const struct authres_parsed *ar, char *out, size_t cap)
{
	char v[AUTHRES_MAX_VALUE + 1];
	size_t o = 0;
#define ADD(...) o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, __VA_ARGS__)
	authres_span_copy(&ar->authserv_id, v, sizeof(v));
	ADD("%s|%.*s|%s|", v, (int)ar->version.len, ar->version.p, ar->none ? "none" : "");
	for (size_t i = 0; i < ar->nmethods; i++) {
		const struct authres_method *m = &ar->methods[i];
		ADD("%.*s", (int)m->method.len, m->method.p);
		if (m->version.len)
			ADD("/%.*s", (int)m->version.len, m->version.p);
		ADD("=%.*s", (int)m->result.len, m->result.p);
		if (m->reason.len) {
			authres_span_copy(&m->reason, v, sizeof(v));
			ADD("[%s]", v);
		}
		if (m->nprops) {
			ADD("{");
			for (size_t k = 0; k < m->nprops; k++) {
				authres_span_copy(&m->props[k].value, v, sizeof(v));
				ADD("%s%.*s.%.*s=%s", k ? "," : "", (int)m->props[k].ptype.len,
				    m->props[k].ptype.p, (int)m->props[k].property.len, m->props[k].property.p, v);
			}
			ADD("}");
		}
		ADD(";");
	}
#undef ADD
}

static void
test_table(void **state)
{
	(void)state;
	struct authres_parsed *ar = malloc(sizeof(*ar));
	assert_non_null(ar);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = NULL;
		size_t off = 0;
		int rc = authres_parse(cases[i].text, strlen(cases[i].text), ar, &why, &off);
		if (!cases[i].want) {
			if (rc == 0)
				fail_msg("case %zu parsed but must not: %s", i, cases[i].text);
			assert_non_null(why);
			continue;
		}
		if (rc != 0)
			fail_msg("case %zu: %s at %zu: %s", i, why, off, cases[i].text);
		char got[1024];
		summary(ar, got, sizeof(got));
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("case %zu:\n want %s\n got  %s", i, cases[i].want, got);
	}
	free(ar);
}

static void
test_clause_spans(void **state)
{
	(void)state;
	const char *t = "lists.example.org; arc=none;\r\n  spf=pass smtp.mfrom=jqd@d1.example;\r\n"
			"  dkim=pass (1024-bit key) header.i=@d1.example;\r\n  dmarc=pass   ";
	struct authres_parsed *ar = malloc(sizeof(*ar));
	const char *why;
	assert_int_equal(authres_parse(t, strlen(t), ar, &why, NULL), 0);
	assert_int_equal(ar->nmethods, 4);
	assert_true(authres_span_is(&ar->authserv_id, "LISTS.example.org"));
	const struct authres_method *m = authres_find(ar, "DKIM");
	assert_non_null(m);
	assert_int_equal(m->clause.len, strlen("dkim=pass (1024-bit key) header.i=@d1.example"));
	assert_memory_equal(m->clause.p, "dkim=pass (1024-bit key) header.i=@d1.example", m->clause.len);
	assert_int_equal(ar->methods[3].clause.len, strlen("dmarc=pass"));
	assert_null(authres_find(ar, "iprev"));
	free(ar);
}

static void
test_limits(void **state)
{
	(void)state;
	struct authres_parsed *ar = malloc(sizeof(*ar));
	char *t = malloc(64 * 1024);
	const char *why;
	for (unsigned n = AUTHRES_MAX_METHODS; n <= AUTHRES_MAX_METHODS + 1; n++) {
		size_t o = (size_t)snprintf(t, 64, "example.org");
		for (unsigned i = 0; i < n; i++)
			o += (size_t)snprintf(t + o, 64, "; m%u=pass", i);
		int rc = authres_parse(t, o, ar, &why, NULL);
		assert_int_equal(rc, n == AUTHRES_MAX_METHODS ? 0 : -1);
	}
	for (unsigned n = AUTHRES_MAX_PROPS; n <= AUTHRES_MAX_PROPS + 1; n++) {
		size_t o = (size_t)snprintf(t, 64, "example.org; dkim=pass");
		for (unsigned i = 0; i < n; i++)
			o += (size_t)snprintf(t + o, 64, " header.p%u=v", i);
		assert_int_equal(authres_parse(t, o, ar, &why, NULL), n == AUTHRES_MAX_PROPS ? 0 : -1);
	}
	for (size_t n = AUTHRES_MAX_VALUE; n <= AUTHRES_MAX_VALUE + 1; n++) {
		size_t o = (size_t)snprintf(t, 64, "example.org; dkim=pass header.d=");
		memset(t + o, 'a', n);
		o += n;
		assert_int_equal(authres_parse(t, o, ar, &why, NULL), n == AUTHRES_MAX_VALUE ? 0 : -1);
	}
	free(t);
	free(ar);
}

/* What the builder writes, the parser reads back. */
static void
test_builder_round_trip(void **state)
{
	(void)state;
	struct authres b;
	authres_init(&b, "mx.example.org");
	struct authres_prop props[] = {{"header", "d", "d1.example"}, {"header", "b", "a(b;c"}};
	authres_add(&b, "dkim", "fail", "body hash mismatch", props, 2);
	authres_add(&b, "arc", "pass", NULL, NULL, 0);
	const char *v = authres_value(&b);
	struct authres_parsed *ar = malloc(sizeof(*ar));
	const char *why;
	assert_int_equal(authres_parse(v, strlen(v), ar, &why, NULL), 0);
	char got[512];
	summary(ar, got, sizeof(got));
	assert_string_equal(got, "mx.example.org|||dkim=fail[body hash mismatch]{header.d=d1.example,"
				 "header.b=a(b;c};arc=pass;");
	authres_free(&b);
	authres_init(&b, "mx.example.org");
	v = authres_value(&b);
	assert_int_equal(authres_parse(v, strlen(v), ar, &why, NULL), 0);
	assert_true(ar->none);
	authres_free(&b);
	free(ar);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_clause_spans),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_builder_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
