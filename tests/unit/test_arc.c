/*
 * arc: set collection rules, limits (50 sets pass, 51 fail), chain rules
 * (cv= per instance, newest AMS, every seal), oldest-pass, sealing round
 * trips, and that the result does not depend on how the body is split.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arc.h"
#include "b64.h"
#include "rfc5322.h"
#include "testutil.h"

static struct ws_privkey *rsa;
static struct dkim_key key;

static const char *base_msg =
	"Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=a@example.com;\r\n"
	" dkim=pass (a; comment) header.d=example.com\r\n"
	"Authentication-Results: other.example; spf=fail\r\n"
	"From: Alice <alice@example.com>\r\n"
	"To: list@example.org\r\n"
	"Subject: Hello\r\n"
	"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	"\r\n"
	"Hi all,  \r\n"
	"\r\n"
	"a body.\r\n";

static int
setup(void **state)
{
	(void)state;
	char path[1024];
	size_t len = 0;
	char *pem = tu_read_file(tu_shared("conformance/dkim/rfc8463/A1-rsa.private.pem", path,
					   sizeof(path)),
				 &len);
	assert_non_null(pem);
	const char *why = NULL;
	assert_int_equal(ws_privkey_load_pem(pem, len, &rsa, &why), 0);
	free(pem);
	uint8_t pub[2048];
	size_t n = ws_privkey_public(rsa, pub, sizeof(pub));
	char b64[4096], rec[4200];
	b64_encode(pub, n, b64);
	snprintf(rec, sizeof(rec), "v=DKIM1; k=rsa; p=%s", b64);
	assert_int_equal(dkim_key_parse(rec, strlen(rec), &key, &why), 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	ws_privkey_free(rsa);
	dkim_key_clear(&key);
	return 0;
}

struct verdict {
	enum arc_result result;
	unsigned nsets, oldest_pass, fail_instance;
	char reason[128];
	char aar1[256];
};

/* Validate msg, the body fed in pieces of `split` bytes (0 = whole); every
 * key name resolves to the test key when it names selector "sel". */
static struct verdict
validate(const char *msg, size_t split)
{
	struct verdict out = {0};
	struct rfc5322_header h;
	rfc5322_init(&h);
	size_t len = strlen(msg), used;
	enum rfc5322_status st = rfc5322_push(&h, (const uint8_t *)msg, len, &used);
	if (st == RFC5322_NEED_MORE) {
		st = rfc5322_finish(&h);
		used = len;
	}
	assert_int_equal(st, RFC5322_DONE);
	struct arc_validator *v = arc_validator_new(NULL);
	assert_non_null(v);
	arc_validator_start(v, &h);
	size_t step = split ? split : len - used + 1;
	for (size_t o = used; o < len; o += step)
		arc_validator_body(v, (const uint8_t *)msg + o, len - o < step ? len - o : step);
	arc_validator_body_end(v);
	for (size_t k = 0; k < arc_validator_key_slots(v); k++) {
		const char *name = arc_validator_key_name(v, k);
		if (!name)
			continue;
		if (strncmp(name, "sel._domainkey.", 15) == 0)
			arc_validator_set_key(v, k, DKIM_KEY_FOUND, &key, NULL);
		else
			arc_validator_set_key(v, k, DKIM_KEY_MISSING, NULL, "no such key");
	}
	arc_validator_finish(v);
	const struct arc_chain *c = arc_validator_chain(v);
	out.result = c->result;
	out.nsets = c->nsets;
	out.oldest_pass = c->oldest_pass;
	out.fail_instance = c->fail_instance;
	snprintf(out.reason, sizeof(out.reason), "%s", c->reason ? c->reason : "");
	if (c->nsets)
		snprintf(out.aar1, sizeof(out.aar1), "%.*s", (int)c->sets[0].aar_len, c->sets[0].aar);
	arc_validator_free(v);
	rfc5322_free(&h);
	return out;
}

/* Seal msg as mx.example.org; returns the new message (or NULL when
 * arc_seal added nothing, *rc set). */
static char *
seal(const char *msg, enum arc_result cv, int *rc_out)
{
	struct arc_seal_params p = {
		.key = rsa, .algo = DKIM_RSA_SHA256, .domain = "example.org", .selector = "sel",
		.authserv_id = "mx.example.org", .headers = "from:to:subject:date",
		.hcanon = CANON_RELAXED, .bcanon = CANON_RELAXED, .t = 1700000000, .cv = cv,
	};
	char *fields = NULL;
	size_t flen = 0;
	const char *why = NULL;
	int rc = arc_seal(&p, (const uint8_t *)msg, strlen(msg), &fields, &flen, &why);
	if (rc_out)
		*rc_out = rc;
	if (rc != 0)
		return NULL;
	size_t ml = strlen(msg);
	char *out = malloc(flen + ml + 1);
	memcpy(out, fields, flen);
	memcpy(out + flen, msg, ml + 1);
	free(fields);
	return out;
}

static char *
replace(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	assert_non_null(at);
	size_t n = strlen(s) + strlen(to) + 1;
	char *out = malloc(n);
	snprintf(out, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
	return out;
}

static void
test_none(void **state)
{
	(void)state;
	struct verdict v = validate(base_msg, 0);
	assert_int_equal(v.result, ARC_NONE);
	assert_int_equal(v.nsets, 0);
	/* a validator fresh from new (its arrays not zeroed) and one reset
	 * after use read as empty: no chain, no key slot */
	struct arc_validator *a = arc_validator_new(NULL);
	assert_non_null(a);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(arc_validator_key_slots(a), 0);
		assert_null(arc_validator_key_name(a, 0));
		assert_int_equal(arc_validator_chain(a)->nsets, 0);
		assert_int_equal(arc_validator_chain(a)->result, ARC_NONE);
		arc_validator_reset(a);
	}
	arc_validator_free(a);
}

static void
test_round_trip(void **state)
{
	(void)state;
	char *m1 = seal(base_msg, ARC_NONE, NULL);
	assert_non_null(m1);
	/* new set on top, AS first; the AAR merges only mx.example.org's A-R */
	assert_memory_equal(m1, "ARC-Seal:", 9);
	assert_non_null(strstr(m1, "\r\nARC-Message-Signature:"));
	const char *aar = strstr(m1, "ARC-Authentication-Results: i=1; mx.example.org;");
	assert_non_null(aar);
	const char *aar_end = strstr(aar, "\r\nAuthentication-Results:");
	assert_non_null(aar_end);
	char aar_text[512];
	snprintf(aar_text, sizeof(aar_text), "%.*s", (int)(aar_end - aar), aar);
	assert_non_null(strstr(aar_text, "spf=pass smtp.mailfrom=a@example.com;"));
	assert_non_null(strstr(aar_text, "dkim=pass (a; comment) header.d=example.com"));
	assert_null(strstr(aar_text, "spf=fail")); /* other.example's result stays out */
	struct verdict v = validate(m1, 0);
	assert_int_equal(v.result, ARC_PASS);
	assert_int_equal(v.nsets, 1);
	assert_int_equal(v.oldest_pass, 1);
	assert_non_null(strstr(v.aar1, "mx.example.org;"));
	assert_non_null(strstr(v.aar1, "dkim=pass (a; comment) header.d=example.com"));
	char *m2 = seal(m1, v.result, NULL);
	char *m3 = seal(m2, validate(m2, 0).result, NULL);
	for (size_t split = 0; split < 9; split += 1) {
		v = validate(m3, split);
		assert_int_equal(v.result, ARC_PASS);
		assert_int_equal(v.nsets, 3);
		assert_int_equal(v.oldest_pass, 1);
	}
	/* tampering after the last seal: the newest AMS fails */
	char *t = replace(m3, "a body.", "a bodY.");
	v = validate(t, 0);
	assert_int_equal(v.result, ARC_FAIL);
	assert_int_equal(v.fail_instance, 3);
	free(t);
	/* a seal's own field changed: that seal fails */
	t = replace(m3, "cv=pass; d=example.org; i=2", "cv=pass; d=example.org;  i=2");
	v = validate(t, 0);
	assert_int_equal(v.result, ARC_PASS); /* relaxed: whitespace is not a change */
	free(t);
	t = replace(m3, "ARC-Authentication-Results: i=2; mx.example.org;",
		    "ARC-Authentication-Results: i=2; mx.example.org; iprev=pass;");
	v = validate(t, 0);
	assert_int_equal(v.result, ARC_FAIL);
	assert_int_equal(v.fail_instance, 3); /* AS 3 covers AAR 2; found newest first */
	free(t);
	free(m1);
	free(m2);
	free(m3);
}

/* The mailing-list case: the list changes what set 1's AMS signed, then
 * seals; the chain passes with oldest-pass at the list's instance. */
static void
test_oldest_pass(void **state)
{
	(void)state;
	char *m1 = seal(base_msg, ARC_NONE, NULL);
	char *mod = replace(m1, "Subject: Hello", "Subject: [list] Hello");
	char *m2 = seal(mod, ARC_PASS, NULL);
	struct verdict v = validate(m2, 0);
	assert_int_equal(v.result, ARC_PASS);
	assert_int_equal(v.nsets, 2);
	assert_int_equal(v.oldest_pass, 2);
	free(m1);
	free(mod);
	free(m2);
}

static void
test_cv_rules(void **state)
{
	(void)state;
	char *m1 = seal(base_msg, ARC_NONE, NULL);
	/* sealing on top of a failed chain records cv=fail ... */
	char *m2 = seal(m1, ARC_FAIL, NULL);
	assert_non_null(strstr(m2, "cv=fail"));
	struct verdict v = validate(m2, 0);
	assert_int_equal(v.result, ARC_FAIL);
	assert_int_equal(v.fail_instance, 2);
	assert_string_equal(v.reason, "the newest ARC-Seal has cv=fail");
	/* ... and then nothing more is added */
	int rc = 0;
	assert_null(seal(m2, ARC_PASS, &rc));
	assert_int_equal(rc, 1);
	/* i=1 must say none, later ones pass */
	char *t = replace(m1, "cv=none", "cv=pass");
	v = validate(t, 0);
	assert_int_equal(v.result, ARC_FAIL);
	assert_string_equal(v.reason, "ARC-Seal i=1 must have cv=none");
	free(t);
	char *m2p = seal(m1, ARC_PASS, NULL);
	t = replace(m2p, "cv=pass", "cv=none");
	v = validate(t, 0);
	assert_int_equal(v.result, ARC_FAIL);
	assert_int_equal(v.fail_instance, 2);
	free(t);
	/* an AMS that signs ARC-Seal fails the chain */
	t = replace(m1, "h=from:to:subject:date", "h=from:to:subject:date:arc-seal");
	v = validate(t, 0);
	assert_int_equal(v.result, ARC_FAIL);
	assert_string_equal(v.reason, "ARC-Message-Signature signs an ARC-Seal");
	free(t);
	free(m1);
	free(m2);
	free(m2p);
}

static void
test_set_collection(void **state)
{
	(void)state;
	char *m1 = seal(base_msg, ARC_NONE, NULL);
	char *m2 = seal(m1, ARC_PASS, NULL);
	struct {
		const char *from, *to, *reason;
	} cases[] = {
		{"ARC-Seal: a=rsa-sha256;\r\n\tb=", "X-Gone: a=rsa-sha256;\r\n\tb=", "ARC set lacks its ARC-Seal"},
		{"ARC-Message-Signature: a", "X-Gone: a", "ARC set lacks its ARC-Message-Signature"},
		{"ARC-Authentication-Results: i=2;", "X-Gone: i=2;", "ARC set lacks its ARC-Authentication-Results"},
		{"ARC-Authentication-Results: i=2;", "ARC-Authentication-Results: i=1;",
		 "duplicate ARC-Authentication-Results instance"},
		{"ARC-Authentication-Results: i=2;", "ARC-Authentication-Results: i=0;", "invalid AAR instance"},
		{"ARC-Authentication-Results: i=2;", "ARC-Authentication-Results: i=2 ", "AAR instance not followed by ';'"},
		{"ARC-Authentication-Results: i=2;", "ARC-Authentication-Results: 2;", "AAR does not start with i="},
		{"cv=pass; d=example.org; i=2", "cv=pass; d=example.org; i=3", "ARC set lacks its ARC-Seal"},
		{"cv=pass; d=example.org; i=2", "cv=pass; d=example.org; i=1", "duplicate ARC-Seal instance"},
		{"cv=pass; d=example.org; i=2", "cv=pass; d=example.org; i=51", "invalid ARC instance"},
		{"cv=pass;", "cv=maybe;", "invalid cv= value"},
		{"cv=pass;", "cv=pass; h=from;", "ARC-Seal must not have h="},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *t = replace(m2, cases[i].from, cases[i].to);
		struct verdict v = validate(t, 0);
		if (v.result != ARC_FAIL || strcmp(v.reason, cases[i].reason) != 0)
			fail_msg("case %zu: result %d reason '%s', want '%s'", i, v.result, v.reason,
				 cases[i].reason);
		free(t);
	}
	free(m1);
	free(m2);
}

/* ARC_MAX_SETS: 50 sets validate, a 51st is refused by the sealer and
 * fails the chain when it is there anyway. */
static void
test_limits(void **state)
{
	(void)state;
	char *m = strdup(base_msg);
	for (unsigned i = 1; i <= ARC_MAX_SETS; i++) {
		char *n = seal(m, ARC_PASS, NULL);
		assert_non_null(n);
		free(m);
		m = n;
	}
	struct verdict v = validate(m, 0);
	assert_int_equal(v.result, ARC_PASS);
	assert_int_equal(v.nsets, ARC_MAX_SETS);
	int rc = 0;
	assert_null(seal(m, ARC_PASS, &rc));
	assert_int_equal(rc, -1);
	/* a 51st set on top (set 50's fields renumbered and copied) */
	const char *aar50 = strstr(m, "ARC-Authentication-Results: i=50;");
	assert_non_null(aar50);
	const char *end = strstr(aar50, "\r\nARC-Seal:");
	assert_non_null(end);
	size_t top = (size_t)(end + 2 - m);
	char *set51 = malloc(top + 1);
	memcpy(set51, m, top);
	set51[top] = '\0';
	char *a = replace(set51, "i=50;", "i=51;");
	char *b = replace(a, "i=50;", "i=51;");
	char *c = replace(b, "i=50;", "i=51;");
	size_t n = strlen(c) + strlen(m) + 1;
	char *m51 = malloc(n);
	snprintf(m51, n, "%s%s", c, m);
	v = validate(m51, 0);
	assert_int_equal(v.result, ARC_FAIL);
	free(set51);
	free(a);
	free(b);
	free(c);
	free(m51);
	free(m);
}

/* ARC_MAX_BODY_HASHES: with one distinct l= per AMS, the newest
 * ARC_MAX_BODY_HASHES AMSs get a body hash and the next older one does not. */
static void
test_body_hash_limit(void **state)
{
	(void)state;
	char *m = strdup(base_msg);
	unsigned n = ARC_MAX_BODY_HASHES + 1;
	for (unsigned i = 1; i <= n; i++) {
		char *s = seal(m, ARC_PASS, NULL);
		free(m);
		m = s;
	}
	for (unsigned i = 1; i <= n; i++) {
		char from[64], to[64];
		snprintf(from, sizeof(from), "h=from:to:subject:date; i=%u;", i);
		snprintf(to, sizeof(to), "h=from:to:subject:date; l=%u; i=%u;", i, i);
		char *s = replace(m, from, to);
		free(m);
		m = s;
	}
	struct rfc5322_header h;
	rfc5322_init(&h);
	size_t used;
	assert_int_equal(rfc5322_push(&h, (const uint8_t *)m, strlen(m), &used), RFC5322_DONE);
	struct arc_validator *v = arc_validator_new(NULL);
	assert_int_equal(arc_validator_start(v, &h), n);
	arc_validator_body(v, (const uint8_t *)m + used, strlen(m) - used);
	arc_validator_body_end(v);
	for (size_t k = 0; k < arc_validator_key_slots(v); k++)
		if (arc_validator_key_name(v, k))
			arc_validator_set_key(v, k, DKIM_KEY_FOUND, &key, NULL);
	arc_validator_finish(v);
	const struct arc_chain *c = arc_validator_chain(v);
	assert_int_equal(c->result, ARC_FAIL); /* the l= edits broke every AMS */
	for (unsigned i = 1; i <= n; i++) {
		const char *r = c->sets[i - 1].ams_reason;
		assert_non_null(r);
		bool limited = strcmp(r, "too many distinct AMS body hashes") == 0;
		if (limited != (i == 1))
			fail_msg("AMS i=%u: %s", i, r);
	}
	arc_validator_free(v);
	rfc5322_free(&h);
	free(m);
}

static void
test_cv_from_authres(void **state)
{
	(void)state;
	struct rfc5322_header h;
	rfc5322_init(&h);
	const char *m = "Authentication-Results: other.example; arc=fail\r\n"
			"Authentication-Results: mx.example.org (c); dkim=pass; arc=pass (ok) header.oldest-pass=1\r\n"
			"From: a@example.com\r\n\r\n";
	size_t used;
	assert_int_equal(rfc5322_push(&h, (const uint8_t *)m, strlen(m), &used), RFC5322_DONE);
	enum arc_result r = ARC_NONE;
	assert_int_equal(arc_cv_from_authres(&h, "mx.example.org", &r), 0);
	assert_int_equal(r, ARC_PASS);
	assert_int_equal(arc_cv_from_authres(&h, "other.example", &r), 0);
	assert_int_equal(r, ARC_FAIL);
	assert_int_equal(arc_cv_from_authres(&h, "nobody.example", &r), -1);
	rfc5322_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_oldest_pass),
		cmocka_unit_test(test_cv_rules),
		cmocka_unit_test(test_set_collection),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_body_hash_limit),
		cmocka_unit_test(test_cv_from_authres),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
