/*
 * dkim: signatures made by our signer verify; every rule of RFC 6376 /
 * 8301 / 8463 that turns a signature into fail, policy or permerror does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "b64.h"
#include "dkim.h"
#include "rfc5322.h"
#include "testutil.h"
#include "testkeys.h"

static struct ws_privkey *rsa2048, *rsa1024, *rsa512, *ed;

static const char *msg_text =
	"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	"From: Alice <alice@example.com>\r\n"
	"To: bob@example.org\r\n"
	"Subject: Hello   there\r\n"
	"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	"Message-ID: <1@example.com>\r\n"
	"\r\n"
	"Hi Bob,  \r\n"
	"\r\n"
	"this is  a test.\r\n"
	"\r\n"
	"\r\n";

static struct ws_privkey *
gen_rsa(unsigned bits)
{
	EVP_PKEY *pk = EVP_RSA_gen(bits);
	assert_non_null(pk);
	BIO *b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL), 1);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	struct ws_privkey *k = NULL;
	const char *why;
	assert_int_equal(ws_privkey_load_pem(data, (size_t)n, &k, &why), 0);
	BIO_free(b);
	EVP_PKEY_free(pk);
	return k;
}

static int
setup(void **state)
{
	(void)state;
	rsa2048 = load_pem_file("conformance/dkim/dkimpy/2048_testkey.key");
	rsa1024 = load_pem_file("conformance/dkim/rfc8463/A1-rsa.private.pem");
	ed = load_pem_file("conformance/dkim/rfc8463/A1-ed25519.private.pem");
	rsa512 = gen_rsa(512);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	ws_privkey_free(rsa2048);
	ws_privkey_free(rsa1024);
	ws_privkey_free(rsa512);
	ws_privkey_free(ed);
	return 0;
}

/* "v=DKIM1; k=...; <extra> p=<public key>" */
static char *
record_for(const struct ws_privkey *k, const char *extra)
{
	uint8_t pub[2048];
	size_t n = ws_privkey_public(k, pub, sizeof(pub));
	assert_true(n > 0);
	char *b64 = malloc(B64_ENCODED_LEN(n) + 1);
	b64_encode(pub, n, b64);
	size_t cap = strlen(b64) + 256;
	char *rec = malloc(cap);
	snprintf(rec, cap, "v=DKIM1; k=%s; %s p=%s",
		 ws_privkey_alg(k) == WS_SIG_ED25519 ? "ed25519" : "rsa", extra ? extra : "", b64);
	free(b64);
	return rec;
}

struct sign_opts {
	enum canon_alg hc, bc;
	const char *headers;
	bool l;
	int64_t t, x;
	const char *auid;
};

/* Prepend a signature made with key to msg; returns the new message. */
static char *
sign_msg(const char *msg, const struct ws_privkey *key, const struct sign_opts *o)
{
	struct dkim_sign_params p = {
		.kind = DKIM_SIG_DKIM,
		.key = key,
		.algo = ws_privkey_alg(key) == WS_SIG_ED25519 ? DKIM_ED25519_SHA256 : DKIM_RSA_SHA256,
		.domain = "example.com",
		.selector = "sel",
		.hcanon = o ? o->hc : CANON_RELAXED,
		.bcanon = o ? o->bc : CANON_RELAXED,
		.headers = o ? o->headers : NULL,
		.body_length = o ? o->l : false,
		.t = o && o->t ? o->t : 1700000000,
		.x = o && o->x ? o->x : -1,
		.auid = o ? o->auid : NULL,
	};
	char *field;
	size_t flen;
	const char *why = NULL;
	if (dkim_sign(&p, (const uint8_t *)msg, strlen(msg), &field, &flen, &why) != 0)
		fail_msg("sign: %s", why);
	char *out = malloc(flen + strlen(msg) + 1);
	memcpy(out, field, flen);
	memcpy(out + flen, msg, strlen(msg) + 1);
	free(field);
	return out;
}

struct outcome {
	size_t n;
	enum dkim_result r[16];
	const char *why[16];
};

/* Verify msg; every key name resolves to record (NULL: missing, "TEMP":
 * temporary failure). The body goes in random splits. */
static struct outcome
verify_with(const char *msg, const char *record, int64_t now, uint64_t seed)
{
	struct outcome oc = {0};
	struct rfc5322_header h;
	rfc5322_init(&h);
	size_t len = strlen(msg), used;
	enum rfc5322_status st = rfc5322_push(&h, (const uint8_t *)msg, len, &used);
	if (st == RFC5322_NEED_MORE)
		st = rfc5322_finish(&h);
	assert_int_equal(st, RFC5322_DONE);
	struct dkim_verify_config cfg = {.now = now};
	struct dkim_verifier *v = dkim_verifier_new(&cfg);
	oc.n = dkim_verifier_start(v, &h);
	for (size_t off = used; off < len;) {
		size_t k = 1 + tu_rand(&seed) % 13;
		if (k > len - off)
			k = len - off;
		dkim_verifier_body(v, (const uint8_t *)msg + off, k);
		off += k;
	}
	dkim_verifier_body_end(v);
	struct dkim_key keys[16];
	for (size_t i = 0; i < oc.n; i++) {
		memset(&keys[i], 0, sizeof(keys[i]));
		if (!dkim_verifier_key_name(v, i))
			continue;
		if (!record) {
			dkim_verifier_set_key(v, i, DKIM_KEY_MISSING, NULL, NULL);
		} else if (strcmp(record, "TEMP") == 0) {
			dkim_verifier_set_key(v, i, DKIM_KEY_TEMPFAIL, NULL, NULL);
		} else {
			const char *why = NULL;
			if (dkim_key_parse(record, strlen(record), &keys[i], &why) != 0)
				dkim_verifier_set_key(v, i, DKIM_KEY_INVALID, NULL, why);
			else
				dkim_verifier_set_key(v, i, DKIM_KEY_FOUND, &keys[i], NULL);
		}
	}
	dkim_verifier_finish(v);
	for (size_t i = 0; i < oc.n && i < 16; i++) {
		oc.r[i] = dkim_verifier_result(v, i)->result;
		oc.why[i] = dkim_verifier_result(v, i)->reason;
		dkim_key_clear(&keys[i]);
	}
	dkim_verifier_free(v);
	rfc5322_free(&h);
	return oc;
}

static void
expect1(const char *msg, const char *record, enum dkim_result want, const char *why_part)
{
	struct outcome oc = verify_with(msg, record, 1700000100, 99);
	assert_int_equal(oc.n, 1);
	if (oc.r[0] != want || (why_part && !strstr(oc.why[0], why_part)))
		fail_msg("got %s (%s), want %s (%s)", dkim_result_name(oc.r[0]), oc.why[0],
			 dkim_result_name(want), why_part ? why_part : "");
}

/* Replace the first occurrence of from with to (same message otherwise). */
static char *
edit(const char *msg, const char *from, const char *to)
{
	const char *p = strstr(msg, from);
	assert_non_null(p);
	size_t a = (size_t)(p - msg), fl = strlen(from), tl = strlen(to);
	char *out = malloc(strlen(msg) - fl + tl + 1);
	memcpy(out, msg, a);
	memcpy(out + a, to, tl);
	memcpy(out + a + tl, p + fl, strlen(p + fl) + 1);
	return out;
}

static void
test_roundtrip_all_canons(void **state)
{
	(void)state;
	struct ws_privkey *keys[] = {rsa2048, rsa1024, ed};
	for (size_t k = 0; k < 3; k++) {
		char *rec = record_for(keys[k], NULL);
		for (int hc = 0; hc < 2; hc++) {
			for (int bc = 0; bc < 2; bc++) {
				struct sign_opts o = {.hc = hc ? CANON_RELAXED : CANON_SIMPLE,
						      .bc = bc ? CANON_RELAXED : CANON_SIMPLE};
				char *m = sign_msg(msg_text, keys[k], &o);
				expect1(m, rec, DKIM_PASS, NULL);
				/* body changed */
				char *t = edit(m, "a test.", "a Test.");
				expect1(t, rec, DKIM_FAIL, "body hash");
				free(t);
				/* a signed header changed */
				t = edit(m, "Subject: Hello", "Subject: Jello");
				expect1(t, rec, DKIM_FAIL, "did not verify");
				free(t);
				/* an unsigned header changed: still valid */
				t = edit(m, "from a by b", "from A by B");
				expect1(t, rec, DKIM_PASS, NULL);
				free(t);
				/* more blank lines at the end: ignored by both */
				size_t ml = strlen(m);
				t = malloc(ml + 5);
				memcpy(t, m, ml);
				memcpy(t + ml, "\r\n\r\n", 5);
				expect1(t, rec, DKIM_PASS, NULL);
				free(t);
				/* whitespace inside a body line: relaxed only */
				t = edit(m, "this is  a", "this  is a");
				expect1(t, rec, bc ? DKIM_PASS : DKIM_FAIL, NULL);
				free(t);
				/* header whitespace: relaxed only */
				t = edit(m, "Subject: Hello   there", "Subject:  Hello there");
				expect1(t, rec, hc ? DKIM_PASS : DKIM_FAIL, NULL);
				free(t);
				free(m);
			}
		}
		free(rec);
	}
}

static void
test_length_and_expiry(void **state)
{
	(void)state;
	char *rec = record_for(rsa2048, NULL);
	struct sign_opts o = {.hc = CANON_RELAXED, .bc = CANON_SIMPLE, .l = true};
	char *m = sign_msg(msg_text, rsa2048, &o);
	assert_non_null(strstr(m, " l="));
	size_t ml = strlen(m);
	char *t = malloc(ml + 32);
	memcpy(t, m, ml);
	memcpy(t + ml, "appended after l=\r\n", 20);
	expect1(t, rec, DKIM_PASS, NULL); /* l= covers the original body only */
	free(t);
	t = edit(m, "Hi Bob,  \r\n\r\nthis is  a test.\r\n", "Hi\r\n");
	expect1(t, rec, DKIM_FAIL, "shorter than l=");
	free(t);
	free(m);

	o = (struct sign_opts){.hc = CANON_RELAXED, .bc = CANON_RELAXED, .x = 1700000050};
	m = sign_msg(msg_text, rsa2048, &o);
	expect1(m, rec, DKIM_FAIL, "expired"); /* now = 1700000100 */
	struct outcome oc = verify_with(m, rec, 1700000000, 1);
	assert_int_equal(oc.r[0], DKIM_PASS);
	free(m);
	free(rec);
}

static void
test_policy_rules(void **state)
{
	(void)state;
	/* RSA under 1024 bits: never pass (RFC 8301) */
	char *rec = record_for(rsa512, NULL);
	char *m = sign_msg(msg_text, rsa512, NULL);
	expect1(m, rec, DKIM_POLICY, "1024");
	free(m);
	free(rec);
	/* rsa-sha1: never pass, whatever the signature */
	rec = record_for(rsa2048, NULL);
	m = sign_msg(msg_text, rsa2048, NULL);
	char *t = edit(m, "a=rsa-sha256", "a=rsa-sha1");
	/* bh= of sha256 is 32 bytes: make it 20 to reach the algorithm rule */
	char *bh = strstr(t, "bh=");
	assert_non_null(bh);
	memcpy(bh + 3, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", 28);
	char *semi = strchr(bh, ';');
	memmove(bh + 31, semi, strlen(semi) + 1);
	expect1(t, rec, DKIM_POLICY, "rsa-sha1");
	free(t);
	/* more than DKIM_MAX_SIGS signatures: the extra ones get policy */
	char *cur = strdup(msg_text);
	for (unsigned i = 0; i < DKIM_MAX_SIGS + 1; i++) {
		char *next = sign_msg(cur, rsa2048, NULL);
		free(cur);
		cur = next;
	}
	struct outcome oc = verify_with(cur, rec, 1700000100, 3);
	assert_int_equal(oc.n, DKIM_MAX_SIGS + 1);
	for (unsigned i = 0; i < DKIM_MAX_SIGS; i++)
		assert_int_equal(oc.r[i], DKIM_PASS);
	assert_int_equal(oc.r[DKIM_MAX_SIGS], DKIM_POLICY);
	free(cur);
	free(m);
	free(rec);
}

static void
test_key_rules(void **state)
{
	(void)state;
	struct sign_opts o = {.hc = CANON_RELAXED, .bc = CANON_RELAXED, .auid = "@sub.example.com"};
	char *m = sign_msg(msg_text, rsa2048, &o);
	static const struct {
		const char *extra;
		enum dkim_result want;
		const char *why;
	} cases[] = {
		{NULL, DKIM_PASS, NULL},
		{"t=s;", DKIM_PERMERROR, "t=s"},
		{"t=y;", DKIM_PASS, NULL},
		{"h=sha1;", DKIM_PERMERROR, "h="},
		{"h=sha1:sha256;", DKIM_PASS, NULL},
		{"s=other;", DKIM_PERMERROR, "s="},
		{"s=other:email;", DKIM_PASS, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *rec = record_for(rsa2048, cases[i].extra);
		expect1(m, rec, cases[i].want, cases[i].why);
		free(rec);
	}
	char *rec = record_for(rsa2048, NULL);
	char *edrec = record_for(ed, NULL);
	expect1(m, edrec, DKIM_PERMERROR, NULL); /* k=ed25519 for an rsa signature */
	expect1(m, "v=DKIM1; k=rsa; p=", DKIM_PERMERROR, "revoked");
	expect1(m, "v=DKIM1; k=rsa; p=!!notbase64", DKIM_PERMERROR, "base64");
	expect1(m, "v=DKIM2; p=AAAA", DKIM_PERMERROR, "version");
	expect1(m, "k=rsa; v=DKIM1; p=AAAA", DKIM_PERMERROR, "first");
	expect1(m, NULL, DKIM_PERMERROR, "no key");
	expect1(m, "TEMP", DKIM_TEMPERROR, NULL);
	free(edrec);
	free(rec);
	free(m);
}

static void
test_signature_syntax(void **state)
{
	(void)state;
	char *rec = record_for(rsa2048, NULL);
	struct sign_opts o = {.hc = CANON_RELAXED, .bc = CANON_RELAXED, .headers = "from:to:subject"};
	char *m = sign_msg(msg_text, rsa2048, &o);
	expect1(m, rec, DKIM_PASS, NULL);
	static const struct {
		const char *from, *to, *why;
	} cases[] = {
		{"v=1;", "v=2;", "version"},
		{"v=1;", "", "v="},
		{"a=rsa-sha256", "a=rsa-md5", "algorithm"},
		{"c=relaxed/relaxed", "c=relaxed/fancy", "canonicalization"},
		{"h=from:to:subject", "h=to:subject", "From"},
		{"d=example.com", "d=exa mple.com", "d="},
		{"d=example.com", "d=example..com", "d="},
		{"s=sel;", "", "s="},
		{"t=1700000000", "t=17x", "t="},
		{"bh=", "bh=!", "bh="},
		{" v=1;", " v=1; v=1;", "duplicate"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *t = edit(m, cases[i].from, cases[i].to);
		expect1(t, rec, DKIM_PERMERROR, cases[i].why);
		free(t);
	}
	free(m);
	/* i= must be d= or below it */
	o.auid = "user@elsewhere.example";
	struct dkim_sign_params p = {.kind = DKIM_SIG_DKIM, .key = rsa2048, .algo = DKIM_RSA_SHA256,
				     .domain = "example.com", .selector = "sel", .t = -1, .x = -1,
				     .auid = "user@elsewhere.example"};
	char *f;
	size_t fl;
	const char *why;
	assert_int_equal(dkim_sign(&p, (const uint8_t *)msg_text, strlen(msg_text), &f, &fl, &why), 0);
	char *t = malloc(fl + strlen(msg_text) + 1);
	memcpy(t, f, fl);
	memcpy(t + fl, msg_text, strlen(msg_text) + 1);
	expect1(t, rec, DKIM_PERMERROR, "i=");
	free(t);
	free(f);
	free(rec);
}

static void
test_oversigning(void **state)
{
	(void)state;
	char *rec = record_for(rsa2048, NULL);
	struct sign_opts o = {.hc = CANON_RELAXED, .bc = CANON_RELAXED,
			      .headers = "from:from:subject:subject"};
	char *m = sign_msg(msg_text, rsa2048, &o);
	expect1(m, rec, DKIM_PASS, NULL);
	/* a From added later breaks a signature that oversigned From */
	char *t = edit(m, "From: Alice", "From: Mallory <m@evil.example>\r\nFrom: Alice");
	expect1(t, rec, DKIM_FAIL, "did not verify");
	free(t);
	free(m);
	/* without oversigning, a From added above is not covered: the bottom
	 * instance is the signed one, so the signature still verifies */
	o.headers = "from:subject";
	m = sign_msg(msg_text, rsa2048, &o);
	t = edit(m, "From: Alice", "From: Mallory <m@evil.example>\r\nFrom: Alice");
	expect1(t, rec, DKIM_PASS, NULL);
	free(t);
	free(m);
	free(rec);
}

/* abort: a message whose body would fail (tampered) and one with a malformed
 * signature both come out temperror with the given reason, never fail; the
 * verifier is reusable afterwards. */
static void
test_abort(void **state)
{
	(void)state;
	char *rec = record_for(rsa2048, NULL);
	char *m = sign_msg(msg_text, rsa2048, NULL);
	char *t = edit(m, "this is", "that is");
	char *bad = edit(m, "DKIM-Signature: ", "DKIM-Signature: v=9; ");
	const char *msgs[] = {t, bad, m};
	struct dkim_verifier *v = dkim_verifier_new(NULL);
	assert_non_null(v);
	/* fresh from new (its arrays not zeroed): no signatures */
	assert_int_equal(dkim_verifier_count(v), 0);
	assert_null(dkim_verifier_result(v, 0));
	for (size_t k = 0; k < 3; k++) {
		struct rfc5322_header h;
		rfc5322_init(&h);
		size_t len = strlen(msgs[k]), used;
		assert_int_equal(rfc5322_push(&h, (const uint8_t *)msgs[k], len, &used),
				 RFC5322_DONE);
		assert_int_equal(dkim_verifier_start(v, &h), 1);
		dkim_verifier_body(v, (const uint8_t *)msgs[k] + used, (len - used) / 2);
		dkim_verifier_abort(v, "capture-gap");
		const struct dkim_sig_result *r = dkim_verifier_result(v, 0);
		assert_int_equal(r->result, DKIM_TEMPERROR);
		assert_string_equal(r->reason, "capture-gap");
		assert_null(dkim_verifier_key_name(v, 0));
		rfc5322_free(&h);
	}
	/* the same verifier, used normally after aborts, passes the good one */
	struct rfc5322_header h;
	rfc5322_init(&h);
	size_t len = strlen(m), used;
	assert_int_equal(rfc5322_push(&h, (const uint8_t *)m, len, &used), RFC5322_DONE);
	assert_int_equal(dkim_verifier_start(v, &h), 1);
	dkim_verifier_body(v, (const uint8_t *)m + used, len - used);
	dkim_verifier_body_end(v);
	struct dkim_key key;
	const char *why = NULL;
	assert_int_equal(dkim_key_parse(rec, strlen(rec), &key, &why), 0);
	dkim_verifier_set_key(v, 0, DKIM_KEY_FOUND, &key, NULL);
	dkim_verifier_finish(v);
	assert_int_equal(dkim_verifier_result(v, 0)->result, DKIM_PASS);
	/* reset (a pooled verifier handed to another session): nothing of the
	 * last message shows, and it verifies the next one as a new one would */
	dkim_verifier_reset(v);
	assert_int_equal(dkim_verifier_count(v), 0);
	assert_null(dkim_verifier_result(v, 0));
	assert_null(dkim_verifier_key_name(v, 0));
	assert_int_equal(dkim_verifier_start(v, &h), 1);
	assert_non_null(dkim_verifier_key_name(v, 0));
	dkim_verifier_body(v, (const uint8_t *)m + used, len - used);
	dkim_verifier_body_end(v);
	dkim_verifier_set_key(v, 0, DKIM_KEY_FOUND, &key, NULL);
	dkim_verifier_finish(v);
	assert_int_equal(dkim_verifier_result(v, 0)->result, DKIM_PASS);
	dkim_key_clear(&key);
	rfc5322_free(&h);
	dkim_verifier_free(v);
	free(bad);
	free(t);
	free(m);
	free(rec);
}

/* prepare/complete: several messages' signature jobs verified in one
 * ws_sig_verify_batch, as the CLI does, give each message what finish gives
 * it alone: a good one passes, a tampered signature fails, a tampered body
 * fails before any job, two signatures (RSA and Ed25519) get a job each. */
static void
test_prepare_complete_batch(void **state)
{
	(void)state;
	char *rec_rsa = record_for(rsa2048, NULL), *rec_ed = record_for(ed, NULL);
	char *good = sign_msg(msg_text, rsa2048, NULL);
	char *badsig = edit(good, "b=", "b=AAAA");
	char *badbody = edit(good, "this is", "that is");
	char *ed_only = sign_msg(msg_text, ed, NULL);
	char *two = sign_msg(good, ed, NULL);
	const char *msgs[] = {good, badsig, badbody, ed_only, two};
	const enum dkim_result want[][2] = {{DKIM_PASS}, {DKIM_FAIL}, {DKIM_FAIL}, {DKIM_PASS},
					     {DKIM_PASS, DKIM_PASS}};
	const size_t want_jobs[] = {1, 1, 0, 1, 2};
	enum { N = 5 };
	struct rfc5322_header h[N];
	struct dkim_verifier *v[N];
	struct dkim_key keys[N][2];
	struct ws_verify_job all[N * 2], *jobs[N];
	size_t nj[N], total = 0;
	for (size_t k = 0; k < N; k++) {
		rfc5322_init(&h[k]);
		size_t len = strlen(msgs[k]), used;
		assert_int_equal(rfc5322_push(&h[k], (const uint8_t *)msgs[k], len, &used),
				 RFC5322_DONE);
		v[k] = dkim_verifier_new(NULL);
		size_t n = dkim_verifier_start(v[k], &h[k]);
		dkim_verifier_body(v[k], (const uint8_t *)msgs[k] + used, len - used);
		dkim_verifier_body_end(v[k]);
		for (size_t i = 0; i < n; i++) {
			/* the first signature field is the newest: Ed25519 in "two" */
			const char *rec = dkim_verifier_result(v[k], i)->sig.algo == DKIM_ED25519_SHA256
						  ? rec_ed
						  : rec_rsa;
			const char *why = NULL;
			assert_int_equal(dkim_key_parse(rec, strlen(rec), &keys[k][i], &why), 0);
			dkim_verifier_set_key(v[k], i, DKIM_KEY_FOUND, &keys[k][i], NULL);
		}
		nj[k] = dkim_verifier_prepare(v[k], &jobs[k]);
		assert_int_equal(nj[k], want_jobs[k]);
		for (size_t i = 0; i < nj[k]; i++) {
			assert_int_equal(jobs[k][i].result, -1);
			all[total++] = jobs[k][i];
		}
	}
	ws_sig_verify_batch(all, total);
	total = 0;
	for (size_t k = 0; k < N; k++) {
		for (size_t i = 0; i < nj[k]; i++)
			jobs[k][i].result = all[total++].result;
		dkim_verifier_complete(v[k]);
		for (size_t i = 0; i < dkim_verifier_count(v[k]); i++) {
			const struct dkim_sig_result *r = dkim_verifier_result(v[k], i);
			if (r->result != want[k][i])
				fail_msg("message %zu signature %zu: %s (%s)", k, i,
					 dkim_result_name(r->result), r->reason);
			dkim_key_clear(&keys[k][i]);
		}
		dkim_verifier_free(v[k]);
		rfc5322_free(&h[k]);
	}
	free(two);
	free(ed_only);
	free(badbody);
	free(badsig);
	free(good);
	free(rec_ed);
	free(rec_rsa);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_all_canons), cmocka_unit_test(test_length_and_expiry),
		cmocka_unit_test(test_policy_rules),         cmocka_unit_test(test_key_rules),
		cmocka_unit_test(test_signature_syntax),     cmocka_unit_test(test_oversigning),
		cmocka_unit_test(test_abort),                cmocka_unit_test(test_prepare_complete_batch),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
