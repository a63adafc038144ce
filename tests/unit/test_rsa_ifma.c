/*
 * ws_rsa_ifma and ws_sig_verify_batch against OpenSSL as the reference.
 *
 * RSA keys of 1023 (under WS_RSA_IFMA_MIN_BITS), 1024, 2047, 2048, 2056,
 * 3072, 4096, 4158 (WS_RSA_IFMA_MAX_BITS), 4160 (past it; OpenSSL's 4159-bit
 * moduli come out a bit short) bits with
 * e = 65537, one 2048-bit key with e = 3, and an Ed25519 key are made at
 * start. For each key, random digests give a pool of cases: valid SHA-256
 * and SHA-1 signatures, and invalid ones (a bit flipped, another digest, the
 * other hash's digest, s = 0, 1, N, N + a valid s, all 0xFF, random s,
 * encodings with the right padding but a wrong DigestInfo, block type 2, a
 * short padding string, a signature of the wrong length). Every case's
 * expected answer is OpenSSL's own; the kernel (ws_rsa_ifma_verify, lanes
 * mixing keys of one limb count) and the batch (random slices mixing every
 * key) must give it for every job.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "rsa_ifma.h"
#include "sig.h"

/* Cases made per kind and key: enough random digests that a dropped carry
 * (which bites on some inputs only) shows. */
#define REPS 12

struct tkey {
	unsigned bits;
	unsigned e;
	bool ed25519;
	EVP_PKEY *pk;
	struct ws_pubkey *wk;
	struct ws_rsa_ifma_key *ik; /* NULL where rsa_ifma does not apply */
	BIGNUM *n, *d;
	size_t len;
};

enum kind {
	K_VALID256,
	K_VALID1,
	K_RAW_VALID, /* our own encoding, raw-signed: checks the helper */
	K_BITFLIP,
	K_OTHER_DIGEST,
	K_OTHER_HASH,
	K_S_ZERO,
	K_S_ONE,
	K_S_N,
	K_S_N_PLUS,
	K_ALL_FF,
	K_RANDOM_S,
	K_WRONG_OID,
	K_NO_NULL_PARAM,
	K_BLOCK_TYPE2,
	K_SHORT_PS,
	K_SHORT_SIG,
	K_BAD_DIGEST_LEN,
	K_COUNT
};

struct tcase {
	const struct tkey *k;
	enum kind kind;
	enum ws_hash_alg halg;
	uint8_t digest[WS_HASH_MAX_LEN];
	size_t dlen;
	uint8_t sig[WS_SIG_MAX_LEN];
	size_t slen;
	int want; /* OpenSSL's (or libsodium's) answer, -1 for bad arguments */
};

static struct tkey keys[] = {
        {.bits = 1023, .e = 65537}, {.bits = 1024, .e = 65537}, {.bits = 2047, .e = 65537},
        {.bits = 2048, .e = 65537}, {.bits = 2056, .e = 65537}, {.bits = 3072, .e = 65537},
        {.bits = 4096, .e = 65537}, {.bits = WS_RSA_IFMA_MAX_BITS, .e = 65537},
        {.bits = WS_RSA_IFMA_MAX_BITS + 2, .e = 65537}, {.bits = 2048, .e = 3},
        {.ed25519 = true},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static struct tcase *cases;
static size_t ncases;

/* ---- keys and reference operations -------------------------------------------- */

static EVP_PKEY *
gen_rsa(unsigned bits, unsigned e)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	BIGNUM *be = BN_new();
	EVP_PKEY *pk = NULL;
	assert_non_null(c);
	assert_non_null(be);
	assert_int_equal(BN_set_word(be, e), 1);
	assert_int_equal(EVP_PKEY_keygen_init(c), 1);
	assert_true(EVP_PKEY_CTX_set_rsa_keygen_bits(c, (int)bits) > 0);
	assert_true(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(c, be) > 0);
	assert_int_equal(EVP_PKEY_generate(c, &pk), 1);
	BN_free(be);
	EVP_PKEY_CTX_free(c);
	return pk;
}

/* Uniform in [0, n), n > 0 (modulo bias is of no concern here). */
static size_t
rnd(size_t n)
{
	uint64_t r;
	assert_int_equal(RAND_bytes((unsigned char *)&r, sizeof(r)), 1);
	return (size_t)(r % n);
}

static const EVP_MD *
md_of(enum ws_hash_alg h)
{
	return h == WS_HASH_SHA1 ? EVP_sha1() : EVP_sha256();
}

static size_t
ossl_sign(const struct tkey *k, enum ws_hash_alg h, const uint8_t *dg, uint8_t *sig)
{
	size_t len = WS_SIG_MAX_LEN;
	if (k->ed25519) {
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		assert_non_null(m);
		assert_int_equal(EVP_DigestSignInit(m, NULL, NULL, NULL, k->pk), 1);
		assert_int_equal(EVP_DigestSign(m, sig, &len, dg, 32), 1);
		EVP_MD_CTX_free(m);
		return len;
	}
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k->pk, NULL);
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_sign_init(c), 1);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) > 0);
	assert_true(EVP_PKEY_CTX_set_signature_md(c, md_of(h)) > 0);
	assert_int_equal(EVP_PKEY_sign(c, sig, &len, dg, ws_hash_len(h)), 1);
	EVP_PKEY_CTX_free(c);
	return len;
}

/* OpenSSL's answer, with a fresh context: 1 valid, 0 not. */
static int
ossl_verify(const struct tkey *k, enum ws_hash_alg h, const uint8_t *dg, size_t dlen,
            const uint8_t *sig, size_t slen)
{
	int r;
	if (k->ed25519) {
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		assert_non_null(m);
		assert_int_equal(EVP_DigestVerifyInit(m, NULL, NULL, NULL, k->pk), 1);
		r = EVP_DigestVerify(m, sig, slen, dg, dlen);
		EVP_MD_CTX_free(m);
		return r == 1 ? 1 : 0;
	}
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k->pk, NULL);
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_verify_init(c), 1);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) > 0);
	assert_true(EVP_PKEY_CTX_set_signature_md(c, md_of(h)) > 0);
	r = EVP_PKEY_verify(c, sig, slen, dg, dlen);
	EVP_PKEY_CTX_free(c);
	return r == 1 ? 1 : 0;
}

/* sig = m^d mod N over len big-endian bytes: a "signature" of any encoding. */
static void
raw_sign(const struct tkey *k, const uint8_t *m, uint8_t *sig)
{
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *x = BN_bin2bn(m, (int)k->len, NULL);
	assert_non_null(ctx);
	assert_non_null(x);
	assert_true(BN_cmp(x, k->n) < 0);
	assert_int_equal(BN_mod_exp(x, x, k->d, k->n, ctx), 1);
	assert_int_equal(BN_bn2binpad(x, sig, (int)k->len), (int)k->len);
	BN_free(x);
	BN_CTX_free(ctx);
}

static const uint8_t di_sha1[] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                  0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
static const uint8_t di_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                    0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                    0x01, 0x05, 0x00, 0x04, 0x20};
/* SHA-256's DigestInfo with the parameters left out (no 05 00). */
static const uint8_t di_sha256_nonull[] = {0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48,
                                           0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04, 0x20};

/* 00 bt FF*ps 00 di digest, right-aligned in len bytes with ps chosen to
 * fill (short_ps: one FF fewer and a 00 in front of di). */
static void
encode(uint8_t *em, size_t len, uint8_t bt, const uint8_t *di, size_t di_len,
       const uint8_t *dg, size_t dlen, bool short_ps)
{
	size_t t = di_len + dlen;
	memset(em, 0xff, len);
	em[0] = 0;
	em[1] = bt;
	em[len - t - 1] = 0;
	if (short_ps)
		em[len - t - 2] = 0;
	memcpy(em + len - t, di, di_len);
	memcpy(em + len - dlen, dg, dlen);
}

static void
bn_to_sig(const BIGNUM *x, struct tcase *c)
{
	assert_int_equal(BN_bn2binpad(x, c->sig, (int)c->k->len), (int)c->k->len);
	c->slen = c->k->len;
}

/* ---- the case pool --------------------------------------------------------------- */

/* Fill c for kind; false when the kind does not apply (N + s too long). */
static bool
make_case(const struct tkey *k, enum kind kind, struct tcase *c)
{
	uint8_t em[WS_SIG_MAX_LEN];
	memset(c, 0, sizeof(*c));
	c->k = k;
	c->kind = kind;
	c->halg = kind == K_VALID1 || kind == K_OTHER_HASH ? WS_HASH_SHA1 : WS_HASH_SHA256;
	c->dlen = ws_hash_len(c->halg);
	assert_int_equal(RAND_bytes(c->digest, (int)c->dlen), 1);
	if (k->ed25519) {
		c->halg = WS_HASH_SHA256;
		c->dlen = 32;
		c->slen = ossl_sign(k, WS_HASH_SHA256, c->digest, c->sig);
		if (kind == K_BITFLIP)
			c->sig[rnd(c->slen)] ^= 0x10;
		goto answer;
	}
	switch (kind) {
	case K_VALID256:
	case K_VALID1:
		c->slen = ossl_sign(k, c->halg, c->digest, c->sig);
		break;
	case K_RAW_VALID:
		encode(em, k->len, 1, di_sha256, sizeof(di_sha256), c->digest, 32, false);
		raw_sign(k, em, c->sig);
		c->slen = k->len;
		break;
	case K_BITFLIP: {
		c->slen = ossl_sign(k, c->halg, c->digest, c->sig);
		size_t bit = rnd(c->slen * 8);
		c->sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		break;
	}
	case K_OTHER_DIGEST:
		c->slen = ossl_sign(k, c->halg, c->digest, c->sig);
		c->digest[rnd(c->dlen)] ^= 0x01;
		break;
	case K_OTHER_HASH: {
		/* A SHA-1 signature presented as SHA-256 over a digest that
		 * starts with the same 20 bytes. */
		c->slen = ossl_sign(k, WS_HASH_SHA1, c->digest, c->sig);
		assert_int_equal(RAND_bytes(c->digest + 20, 12), 1);
		c->halg = WS_HASH_SHA256;
		c->dlen = 32;
		break;
	}
	case K_S_ZERO:
	case K_S_ONE: {
		BIGNUM *x = BN_new();
		assert_int_equal(BN_set_word(x, kind == K_S_ONE ? 1 : 0), 1);
		bn_to_sig(x, c);
		BN_free(x);
		break;
	}
	case K_S_N:
		bn_to_sig(k->n, c);
		break;
	case K_S_N_PLUS: {
		uint8_t good[WS_SIG_MAX_LEN];
		size_t glen = ossl_sign(k, c->halg, c->digest, good);
		BIGNUM *x = BN_bin2bn(good, (int)glen, NULL);
		assert_non_null(x);
		assert_int_equal(BN_add(x, x, k->n), 1);
		bool fits = (size_t)BN_num_bytes(x) <= k->len;
		if (fits)
			bn_to_sig(x, c);
		BN_free(x);
		if (!fits)
			return false;
		break;
	}
	case K_ALL_FF:
		memset(c->sig, 0xff, k->len);
		c->slen = k->len;
		break;
	case K_RANDOM_S: {
		BIGNUM *x = BN_new();
		assert_int_equal(BN_rand_range(x, k->n), 1);
		bn_to_sig(x, c);
		BN_free(x);
		break;
	}
	case K_WRONG_OID: {
		/* SHA-256's DigestInfo with the OID's last arc 1 -> 2 (SHA-384's
		 * OID over a 32-byte value): padding right, DigestInfo wrong. */
		uint8_t di[sizeof(di_sha256)];
		memcpy(di, di_sha256, sizeof(di));
		di[14] = 0x02;
		encode(em, k->len, 1, di, sizeof(di), c->digest, 32, false);
		raw_sign(k, em, c->sig);
		c->slen = k->len;
		break;
	}
	case K_NO_NULL_PARAM:
		encode(em, k->len, 1, di_sha256_nonull, sizeof(di_sha256_nonull), c->digest, 32,
		       false);
		raw_sign(k, em, c->sig);
		c->slen = k->len;
		break;
	case K_BLOCK_TYPE2:
		encode(em, k->len, 2, di_sha256, sizeof(di_sha256), c->digest, 32, false);
		raw_sign(k, em, c->sig);
		c->slen = k->len;
		break;
	case K_SHORT_PS:
		encode(em, k->len, 1, di_sha1, sizeof(di_sha1), c->digest, 20, true);
		c->halg = WS_HASH_SHA1;
		c->dlen = 20;
		raw_sign(k, em, c->sig);
		c->slen = k->len;
		break;
	case K_SHORT_SIG:
		c->slen = ossl_sign(k, c->halg, c->digest, c->sig) - 1;
		break;
	case K_BAD_DIGEST_LEN:
		c->slen = ossl_sign(k, c->halg, c->digest, c->sig);
		c->dlen = 31;
		c->want = -1;
		return true;
	case K_COUNT:
		fail();
	}
answer:
	c->want = ossl_verify(k, c->halg, c->digest, c->dlen, c->sig, c->slen);
	/* The reference agrees with what each kind is meant to be. */
	bool valid = kind == K_VALID256 || kind == K_VALID1 || kind == K_RAW_VALID;
	if (k->ed25519)
		valid = kind != K_BITFLIP;
	assert_int_equal(c->want, valid ? 1 : 0);
	return true;
}

static int
setup(void **state)
{
	(void)state;
	size_t cap = NKEYS * K_COUNT * REPS;
	cases = calloc(cap, sizeof(*cases));
	if (!cases)
		return -1;
	for (size_t i = 0; i < NKEYS; i++) {
		struct tkey *k = &keys[i];
		uint8_t der[2 * WS_SIG_MAX_LEN];
		const char *why = NULL;
		if (k->ed25519) {
			size_t len = 32;
			k->pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
			if (!k->pk || EVP_PKEY_get_raw_public_key(k->pk, der, &len) != 1 ||
			    ws_pubkey_parse(WS_SIG_ED25519, der, len, &k->wk, &why) != 0)
				return -1;
			k->bits = 256;
			for (unsigned r = 0; r < REPS; r++) {
				make_case(k, K_VALID256, &cases[ncases++]);
				make_case(k, K_BITFLIP, &cases[ncases++]);
			}
			continue;
		}
		/* OpenSSL may make an odd-sized modulus one bit short. */
		for (unsigned tries = 0; tries < 20; tries++) {
			EVP_PKEY_free(k->pk);
			k->pk = gen_rsa(k->bits, k->e);
			if ((unsigned)EVP_PKEY_get_bits(k->pk) == k->bits)
				break;
		}
		if ((unsigned)EVP_PKEY_get_bits(k->pk) != k->bits)
			return -1;
		unsigned char *p = der;
		int dlen = i2d_PUBKEY(k->pk, &p);
		if (dlen <= 0 || ws_pubkey_parse(WS_SIG_RSA, der, (size_t)dlen, &k->wk, &why) != 0)
			return -1;
		BIGNUM *e = NULL;
		if (EVP_PKEY_get_bn_param(k->pk, OSSL_PKEY_PARAM_RSA_N, &k->n) != 1 ||
		    EVP_PKEY_get_bn_param(k->pk, OSSL_PKEY_PARAM_RSA_D, &k->d) != 1 ||
		    EVP_PKEY_get_bn_param(k->pk, OSSL_PKEY_PARAM_RSA_E, &e) != 1)
			return -1;
		k->len = (size_t)BN_num_bytes(k->n);
		int rc = ws_rsa_ifma_key_new(k->n, e, &k->ik);
		BN_free(e);
		if (rc < 0)
			return -1;
		for (unsigned r = 0; r < REPS; r++) {
			for (int kind = 0; kind < K_COUNT; kind++) {
				if (make_case(k, (enum kind)kind, &cases[ncases]))
					ncases++;
			}
		}
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < NKEYS; i++) {
		ws_pubkey_free(keys[i].wk);
		ws_rsa_ifma_key_free(keys[i].ik);
		EVP_PKEY_free(keys[i].pk);
		BN_free(keys[i].n);
		BN_clear_free(keys[i].d);
	}
	free(cases);
	return 0;
}

static const struct tkey *
key_of(unsigned bits, unsigned e)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (!keys[i].ed25519 && keys[i].bits == bits && keys[i].e == e)
			return &keys[i];
	}
	fail();
	return NULL;
}

/* ---- tests -------------------------------------------------------------------- */

/* Which keys get the precomputation: the size limits at and past them,
 * e = 3, an even modulus; the limb counts. */
static void
test_key_limits(void **state)
{
	(void)state;
	/* The keys as ws_sig parsed them carry the precomputation exactly
	 * where rsa_ifma takes the modulus. */
	for (size_t i = 0; i < NKEYS; i++)
		assert_int_equal(ws_pubkey_batch_ifma(keys[i].wk),
		                 keys[i].ik != NULL && ws_rsa_ifma_available());
	assert_null(key_of(1023, 65537)->ik); /* one under WS_RSA_IFMA_MIN_BITS */
	assert_null(key_of(WS_RSA_IFMA_MAX_BITS + 2, 65537)->ik);
	assert_null(key_of(2048, 3)->ik);
	const struct {
		unsigned bits, limbs;
	} want[] = {{1024, 20}, {2047, 40}, {2048, 40}, {2056, 40}, {3072, 60}, {4096, 79},
	            {WS_RSA_IFMA_MAX_BITS, WS_RSA_IFMA_MAX_LIMBS}};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct tkey *k = key_of(want[i].bits, 65537);
		assert_non_null(k->ik);
		assert_int_equal(ws_rsa_ifma_key_limbs(k->ik), want[i].limbs);
		assert_int_equal(ws_rsa_ifma_key_len(k->ik), k->len);
	}

	/* Odd numbers (not real keys) of exactly the limit sizes. */
	static const struct {
		unsigned bits;
		int rc;
	} sz[] = {{WS_RSA_IFMA_MIN_BITS - 1, 1}, {WS_RSA_IFMA_MIN_BITS, 0},
	          {WS_RSA_IFMA_MAX_BITS, 0}, {WS_RSA_IFMA_MAX_BITS + 1, 1}};
	for (size_t i = 0; i < sizeof(sz) / sizeof(sz[0]); i++) {
		BIGNUM *m = BN_new(), *f4 = BN_new();
		struct ws_rsa_ifma_key *mk = NULL;
		assert_non_null(m);
		assert_non_null(f4);
		assert_int_equal(BN_set_word(f4, 65537), 1);
		assert_int_equal(BN_rand(m, (int)sz[i].bits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD), 1);
		assert_int_equal(ws_rsa_ifma_key_new(m, f4, &mk), sz[i].rc);
		assert_true((mk != NULL) == (sz[i].rc == 0));
		ws_rsa_ifma_key_free(mk);
		BN_free(m);
		BN_free(f4);
	}

	/* An even modulus (not a real key) gets none. */
	BIGNUM *n = BN_dup(key_of(2048, 65537)->n), *e = BN_new();
	struct ws_rsa_ifma_key *ik = NULL;
	assert_non_null(n);
	assert_non_null(e);
	assert_int_equal(BN_set_word(e, 65537), 1);
	assert_int_equal(BN_sub_word(n, 1), 1);
	assert_int_equal(ws_rsa_ifma_key_new(n, e, &ik), 1);
	assert_null(ik);
	assert_int_equal(ws_rsa_ifma_key_new(NULL, e, &ik), -1);
	BN_free(n);
	BN_free(e);
	ws_rsa_ifma_key_free(NULL);
}

/* Bad calls are refused whole. */
static void
test_verify_args(void **state)
{
	(void)state;
	if (!ws_rsa_ifma_available())
		skip();
	const struct tkey *k = key_of(2048, 65537), *k4 = key_of(4096, 65537);
	uint8_t dg[32] = {0}, sig[WS_SIG_MAX_LEN] = {0};
	struct ws_rsa_ifma_job j[WS_RSA_IFMA_LANES + 1];
	for (size_t i = 0; i <= WS_RSA_IFMA_LANES; i++)
		j[i] = (struct ws_rsa_ifma_job){k->ik, WS_HASH_SHA256, dg, sig, 7};
	/* At the lane limit it runs (and s = 0 is invalid); past it not. */
	assert_int_equal(ws_rsa_ifma_verify(j, WS_RSA_IFMA_LANES), 0);
	for (size_t i = 0; i < WS_RSA_IFMA_LANES; i++)
		assert_int_equal(j[i].result, 0);
	j[0].result = 7;
	assert_int_equal(ws_rsa_ifma_verify(j, WS_RSA_IFMA_LANES + 1), -1);
	assert_int_equal(ws_rsa_ifma_verify(j, 0), -1);
	assert_int_equal(ws_rsa_ifma_verify(NULL, 1), -1);
	j[1].key = k4->ik; /* another limb count */
	assert_int_equal(ws_rsa_ifma_verify(j, 2), -1);
	j[1].key = k->ik;
	j[1].halg = (enum ws_hash_alg)9;
	assert_int_equal(ws_rsa_ifma_verify(j, 2), -1);
	j[1].halg = WS_HASH_SHA1;
	j[1].sig = NULL;
	assert_int_equal(ws_rsa_ifma_verify(j, 2), -1);
	assert_int_equal(j[0].result, 7);
}

/* The kernel alone: random groups of 1..8 cases whose keys share a limb
 * count (2047, 2048 and 2056 bits share 40 limbs), each result OpenSSL's. */
static void
test_kernel_vs_openssl(void **state)
{
	(void)state;
	if (!ws_rsa_ifma_available())
		skip();
	size_t checked = 0, valid = 0;
	for (unsigned round = 0; round < 400; round++) {
		const struct tcase *first;
		do
			first = &cases[rnd(ncases)];
		while (!first->k->ik || first->want < 0 || first->slen != first->k->len);
		unsigned limbs = ws_rsa_ifma_key_limbs(first->k->ik);
		struct ws_rsa_ifma_job j[WS_RSA_IFMA_LANES];
		const struct tcase *src[WS_RSA_IFMA_LANES];
		size_t want_n = 1 + rnd(WS_RSA_IFMA_LANES), n = 0;
		for (size_t tries = 0; n < want_n && tries < 10 * ncases; tries++) {
			const struct tcase *c = n == 0 ? first : &cases[rnd(ncases)];
			if (!c->k->ik || c->want < 0 || c->slen != c->k->len ||
			    ws_rsa_ifma_key_limbs(c->k->ik) != limbs)
				continue;
			src[n] = c;
			j[n] = (struct ws_rsa_ifma_job){c->k->ik, c->halg, c->digest, c->sig, -5};
			n++;
		}
		assert_int_equal(ws_rsa_ifma_verify(j, n), 0);
		for (size_t i = 0; i < n; i++) {
			if (j[i].result != src[i]->want)
				fail_msg("rsa-%u kind %d lane %zu of %zu: ifma %d, openssl %d",
				         src[i]->k->bits, src[i]->kind, i, n, j[i].result,
				         src[i]->want);
			checked++;
			valid += j[i].result == 1;
		}
	}
	/* Both answers were exercised. */
	assert_true(valid > 0 && valid < checked);
}

/* Every eligible case once, in full groups of 8 of one key: each kind at
 * each size goes through the kernel. */
static void
test_kernel_every_case(void **state)
{
	(void)state;
	if (!ws_rsa_ifma_available())
		skip();
	for (size_t i = 0; i < ncases; i++) {
		const struct tcase *c = &cases[i];
		if (!c->k->ik || c->want < 0 || c->slen != c->k->len)
			continue;
		struct ws_rsa_ifma_job j[WS_RSA_IFMA_LANES];
		for (size_t l = 0; l < WS_RSA_IFMA_LANES; l++)
			j[l] = (struct ws_rsa_ifma_job){c->k->ik, c->halg, c->digest, c->sig, -5};
		assert_int_equal(ws_rsa_ifma_verify(j, WS_RSA_IFMA_LANES), 0);
		for (size_t l = 0; l < WS_RSA_IFMA_LANES; l++) {
			if (j[l].result != c->want)
				fail_msg("rsa-%u kind %d lane %zu: ifma %d, openssl %d", c->k->bits,
				         c->kind, l, j[l].result, c->want);
		}
	}
}

/* ws_sig_verify_batch on random slices of 1..24 cases over every key
 * (Ed25519, e = 3, sizes rsa_ifma does not do, bad arguments mixed in):
 * every result is ws_sig_verify's and OpenSSL's, with either backend. */
static void
test_batch_vs_single(void **state)
{
	(void)state;
	struct ws_verify_job jobs[24];
	const struct tcase *src[24];
	for (int backend = 0; backend < 2; backend++) {
		ws_sig_set_backend(backend == 0 ? WS_SIG_BACKEND_AUTO : WS_SIG_BACKEND_OPENSSL);
		for (unsigned round = 0; round < (backend == 0 ? 300u : 60u); round++) {
			size_t n = 1 + rnd(24);
			for (size_t i = 0; i < n; i++) {
				const struct tcase *c = &cases[rnd(ncases)];
				src[i] = c;
				jobs[i] = (struct ws_verify_job){.key = c->k->wk,
				                                 .halg = c->halg,
				                                 .digest = c->digest,
				                                 .digest_len = c->dlen,
				                                 .sig = c->sig,
				                                 .sig_len = c->slen,
				                                 .result = -5};
			}
			ws_sig_verify_batch(jobs, n);
			for (size_t i = 0; i < n; i++) {
				const struct tcase *c = src[i];
				int one = ws_sig_verify(c->k->wk, c->halg, c->digest, c->dlen,
				                        c->sig, c->slen);
				if (jobs[i].result != c->want || one != c->want)
					fail_msg("key %u bits kind %d: batch %d, single %d, "
					         "openssl %d",
					         c->k->bits, c->kind, jobs[i].result, one, c->want);
			}
		}
	}
	ws_sig_set_backend(WS_SIG_BACKEND_AUTO);
	/* A batch of nothing, and of a NULL key. */
	ws_sig_verify_batch(jobs, 0);
	jobs[0] = (struct ws_verify_job){.key = NULL, .digest = cases[0].digest, .digest_len = 32,
	                                 .halg = WS_HASH_SHA256, .sig = cases[0].sig,
	                                 .sig_len = cases[0].slen, .result = 5};
	ws_sig_verify_batch(jobs, 1);
	assert_int_equal(jobs[0].result, -1);
}

/* Exactly 8, 16, the short-group threshold, one under it and 1 job of one
 * size: full groups, a short group on IFMA and short ones left to OpenSSL,
 * for a size under WS_SIG_IFMA_BIG_LIMBS and one above it. */
static void
test_batch_group_sizes(void **state)
{
	(void)state;
	static const size_t sizes[] = {WS_RSA_IFMA_LANES,        2 * WS_RSA_IFMA_LANES,
	                               WS_SIG_IFMA_MIN_JOBS,     WS_SIG_IFMA_MIN_JOBS - 1,
	                               WS_SIG_IFMA_MIN_JOBS_BIG, WS_SIG_IFMA_MIN_JOBS_BIG - 1,
	                               1};
	struct ws_verify_job jobs[2 * WS_RSA_IFMA_LANES];
	for (size_t s = 0; s < 2 * sizeof(sizes) / sizeof(sizes[0]); s++) {
		const struct tkey *k = key_of(s % 2 ? 4096 : 2048, 65537);
		size_t n = 0;
		for (size_t i = 0; i < ncases && n < sizes[s / 2]; i++) {
			const struct tcase *c = &cases[i];
			if (c->k != k || (c->kind != K_VALID256 && c->kind != K_VALID1 &&
			                  c->kind != K_BITFLIP))
				continue;
			jobs[n++] = (struct ws_verify_job){.key = k->wk,
			                                   .halg = c->halg,
			                                   .digest = c->digest,
			                                   .digest_len = c->dlen,
			                                   .sig = c->sig,
			                                   .sig_len = c->slen,
			                                   .result = -5};
			assert_int_not_equal(c->want, -1);
		}
		assert_int_equal(n, sizes[s / 2]);
		ws_sig_verify_batch(jobs, n);
		for (size_t i = 0; i < n; i++) {
			int want = ws_sig_verify(jobs[i].key, jobs[i].halg, jobs[i].digest,
			                         jobs[i].digest_len, jobs[i].sig, jobs[i].sig_len);
			assert_int_equal(jobs[i].result, want);
		}
	}
}

/* A key published as a bare PKCS#1 RSAPublicKey gets the same treatment. */
static void
test_pkcs1_key(void **state)
{
	(void)state;
	const struct tkey *k = key_of(2048, 65537);
	uint8_t der[2 * WS_SIG_MAX_LEN];
	unsigned char *p = der;
	int len = i2d_PublicKey(k->pk, &p);
	struct ws_pubkey *wk = NULL;
	const char *why = NULL;
	assert_true(len > 0);
	assert_int_equal(ws_pubkey_parse(WS_SIG_RSA, der, (size_t)len, &wk, &why), 0);
	assert_int_equal(ws_pubkey_batch_ifma(wk), ws_rsa_ifma_available());
	struct ws_verify_job jobs[WS_RSA_IFMA_LANES];
	size_t n = 0;
	for (size_t i = 0; i < ncases && n < WS_RSA_IFMA_LANES; i++) {
		const struct tcase *c = &cases[i];
		if (c->k != k || (c->kind != K_VALID256 && c->kind != K_S_N_PLUS))
			continue;
		jobs[n++] = (struct ws_verify_job){.key = wk,
		                                   .halg = c->halg,
		                                   .digest = c->digest,
		                                   .digest_len = c->dlen,
		                                   .sig = c->sig,
		                                   .sig_len = c->slen,
		                                   .result = -5};
		assert_int_equal(c->want, c->kind == K_VALID256 ? 1 : 0);
	}
	assert_int_equal(n, WS_RSA_IFMA_LANES);
	ws_sig_verify_batch(jobs, n);
	for (size_t i = 0; i < n; i++) {
		const struct tcase *c = NULL;
		for (size_t j = 0; j < ncases; j++) {
			if (cases[j].sig == jobs[i].sig)
				c = &cases[j];
		}
		assert_non_null(c);
		assert_int_equal(jobs[i].result, c->want);
	}
	ws_pubkey_free(wk);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_key_limits),
	        cmocka_unit_test(test_verify_args),
	        cmocka_unit_test(test_kernel_vs_openssl),
	        cmocka_unit_test(test_kernel_every_case),
	        cmocka_unit_test(test_batch_vs_single),
	        cmocka_unit_test(test_batch_group_sizes),
	        cmocka_unit_test(test_pkcs1_key),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
