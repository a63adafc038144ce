/*
 * ws_sig against OpenSSL and libsodium as references: RSA 1024/2048 keys made
 * at test time, RFC 8032 7.1 test 1, the dkimpy and RFC 8463 keys of
 * ../shared/conformance (read in place through WS_SHARED_DIR), key parsing
 * refusals and the 8192-bit modulus limit at and past it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sodium.h>

#include "sig.h"

/* ---- helpers ------------------------------------------------------------ */

struct buf {
	uint8_t *p;
	size_t len;
};

/* A file of the shared conformance data, NUL-terminated; skips the test
 * when WS_SHARED_DIR is unset (the test is then not run by meson). */
static struct buf
shared_file(const char *rel)
{
	const char *dir = getenv("WS_SHARED_DIR");
	struct buf b = {NULL, 0};
	char path[4096];
	if (!dir)
		skip();
	snprintf(path, sizeof(path), "%s/conformance/dkim/%s", dir, rel);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	size_t cap = 1 << 16;
	b.p = malloc(cap + 1);
	assert_non_null(b.p);
	b.len = fread(b.p, 1, cap, f);
	fclose(f);
	b.p[b.len] = 0;
	return b;
}

/* Base64 (whitespace allowed around it) to bytes. */
static struct buf
b64_decode(const char *s, size_t n)
{
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	struct buf b = {malloc(n + 1), 0};
	assert_non_null(b.p);
	int got = EVP_DecodeBlock(b.p, (const unsigned char *)s, (int)n);
	assert_true(got >= 0);
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	size_t pad = 0;
	while (pad < n && s[n - 1 - pad] == '=')
		pad++;
	b.len = (size_t)got - pad;
	return b;
}

/* The p= value of a DKIM key record, decoded. */
static struct buf
record_p(const char *rec)
{
	const char *p = strstr(rec, "p=");
	assert_non_null(p);
	p += 2;
	size_t n = strcspn(p, ";\r\n");
	return b64_decode(p, n);
}

static void
random_digest(uint8_t *d, size_t n)
{
	assert_int_equal(RAND_bytes(d, (int)n), 1);
}

/* PEM text of an OpenSSL key: PKCS#8, or the traditional (PKCS#1) form. */
static struct buf
pem_of(EVP_PKEY *pk, bool traditional)
{
	BIO *bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	if (traditional)
		assert_int_equal(
		        PEM_write_bio_PrivateKey_traditional(bio, pk, NULL, NULL, 0, NULL, NULL),
		        1);
	else
		assert_int_equal(PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL), 1);
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	struct buf b = {malloc((size_t)n + 1), (size_t)n};
	memcpy(b.p, data, (size_t)n);
	b.p[n] = 0;
	BIO_free(bio);
	return b;
}

static struct ws_privkey *
load_priv(const struct buf *pem)
{
	struct ws_privkey *k = NULL;
	const char *why = NULL;
	if (ws_privkey_load_pem((const char *)pem->p, pem->len, &k, &why) != 0)
		fail_msg("privkey refused: %s", why);
	return k;
}

static struct ws_pubkey *
parse_pub(enum ws_sig_alg alg, const uint8_t *der, size_t len)
{
	struct ws_pubkey *k = NULL;
	const char *why = NULL;
	if (ws_pubkey_parse(alg, der, len, &k, &why) != 0)
		fail_msg("pubkey refused: %s", why);
	assert_non_null(k);
	return k;
}

static const EVP_MD *
md_of(enum ws_hash_alg h)
{
	return h == WS_HASH_SHA1 ? EVP_sha1() : EVP_sha256();
}

/* Reference RSA PKCS#1 v1.5 over a digest with plain OpenSSL calls. */
static size_t
ossl_rsa_sign(EVP_PKEY *pk, enum ws_hash_alg h, const uint8_t *dg, size_t dlen, uint8_t *sig)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);
	size_t len = WS_SIG_MAX_LEN;
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_sign_init(c), 1);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) > 0);
	assert_true(EVP_PKEY_CTX_set_signature_md(c, md_of(h)) > 0);
	assert_int_equal(EVP_PKEY_sign(c, sig, &len, dg, dlen), 1);
	EVP_PKEY_CTX_free(c);
	return len;
}

static int
ossl_rsa_verify(EVP_PKEY *pk, enum ws_hash_alg h, const uint8_t *dg, size_t dlen,
                const uint8_t *sig, size_t slen)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_verify_init(c), 1);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) > 0);
	assert_true(EVP_PKEY_CTX_set_signature_md(c, md_of(h)) > 0);
	int r = EVP_PKEY_verify(c, sig, slen, dg, dlen);
	EVP_PKEY_CTX_free(c);
	return r;
}

/* Every way a good (key, digest, sig) triple can be made bad. */
static void
check_rejections(const struct ws_pubkey *k, enum ws_hash_alg h, const uint8_t *dg, size_t dlen,
                 const uint8_t *sig, size_t slen)
{
	uint8_t bad[WS_SIG_MAX_LEN + 1], d2[WS_HASH_MAX_LEN];
	assert_int_equal(ws_sig_verify(k, h, dg, dlen, sig, slen), 1);
	memcpy(d2, dg, dlen);
	d2[dlen / 2] ^= 1;
	assert_int_equal(ws_sig_verify(k, h, d2, dlen, sig, slen), 0);
	for (int t = 0; t < 8; t++) {
		memcpy(bad, sig, slen);
		size_t bit = t == 0   ? 0
		             : t == 1 ? slen * 8 - 1
		                      : (size_t)randombytes_uniform((uint32_t)(slen * 8));
		bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(ws_sig_verify(k, h, dg, dlen, bad, slen), 0);
	}
	memcpy(bad, sig, slen);
	bad[slen] = 0;
	assert_int_equal(ws_sig_verify(k, h, dg, dlen, bad, slen + 1), 0);
	assert_int_equal(ws_sig_verify(k, h, dg, dlen, sig, slen - 1), 0);
	assert_int_equal(ws_sig_verify(k, h, dg, dlen, sig, 0), 0);
	/* A digest of the wrong length for the algorithm cannot be checked. */
	assert_int_equal(ws_sig_verify(k, h, dg, dlen - 1, sig, slen), -1);
	assert_int_equal(ws_sig_verify(k, (enum ws_hash_alg)9, dg, dlen, sig, slen), -1);
	assert_int_equal(ws_sig_verify(NULL, h, dg, dlen, sig, slen), -1);
	/* The key still verifies after all that (its context pool). */
	assert_int_equal(ws_sig_verify(k, h, dg, dlen, sig, slen), 1);
}

/* ---- RSA ----------------------------------------------------------------- */

static void
rsa_roundtrip(unsigned bits)
{
	EVP_PKEY *pk = EVP_RSA_gen(bits);
	assert_non_null(pk);
	for (int form = 0; form < 2; form++) {
		struct buf pem = pem_of(pk, form == 0);
		struct ws_privkey *priv = load_priv(&pem);
		assert_int_equal(ws_privkey_alg(priv), WS_SIG_RSA);
		assert_int_equal(ws_privkey_bits(priv), bits);

		/* The public key as SPKI, byte for byte what OpenSSL writes. */
		uint8_t spki[2048], *q = NULL;
		size_t slen = ws_privkey_public(priv, spki, sizeof(spki));
		int rlen = i2d_PUBKEY(pk, &q);
		assert_int_equal(slen, (size_t)rlen);
		assert_memory_equal(spki, q, slen);
		OPENSSL_free(q);
		assert_int_equal(ws_privkey_public(priv, spki, slen - 1), 0);

		struct ws_pubkey *pub = parse_pub(WS_SIG_RSA, spki, slen);
		assert_int_equal(ws_pubkey_alg(pub), WS_SIG_RSA);
		assert_int_equal(ws_pubkey_bits(pub), bits);

		for (int hi = 0; hi < 2; hi++) {
			enum ws_hash_alg h = hi ? WS_HASH_SHA256 : WS_HASH_SHA1;
			size_t dlen = ws_hash_len(h);
			uint8_t dg[WS_HASH_MAX_LEN], sig[WS_SIG_MAX_LEN], ref[WS_SIG_MAX_LEN];
			random_digest(dg, dlen);
			size_t n = ws_sig_sign(priv, h, dg, dlen, sig, sizeof(sig));
			assert_int_equal(n, bits / 8);
			/* PKCS#1 v1.5 is deterministic: same bytes as OpenSSL. */
			assert_int_equal(ossl_rsa_sign(pk, h, dg, dlen, ref), n);
			assert_memory_equal(sig, ref, n);
			assert_int_equal(ossl_rsa_verify(pk, h, dg, dlen, sig, n), 1);
			check_rejections(pub, h, dg, dlen, sig, n);
			/* Too small a buffer, wrong digest length: no signature. */
			assert_int_equal(ws_sig_sign(priv, h, dg, dlen, sig, n - 1), 0);
			assert_int_equal(ws_sig_sign(priv, h, dg, dlen - 1, sig, sizeof(sig)), 0);

			/* An OpenSSL signature over a message verifies given its
			 * digest; claiming the other hash does not. */
			const char msg[] = "From: a@example.com\r\n";
			EVP_MD_CTX *mc = EVP_MD_CTX_new();
			size_t rn = sizeof(ref);
			assert_int_equal(EVP_DigestSignInit(mc, NULL, md_of(h), NULL, pk), 1);
			assert_int_equal(
			        EVP_DigestSign(mc, ref, &rn, (const uint8_t *)msg, strlen(msg)), 1);
			EVP_MD_CTX_free(mc);
			unsigned int ml = 0;
			assert_int_equal(EVP_Digest(msg, strlen(msg), dg, &ml, md_of(h), NULL), 1);
			assert_int_equal(ws_sig_verify(pub, h, dg, ml, ref, rn), 1);
			enum ws_hash_alg other = hi ? WS_HASH_SHA1 : WS_HASH_SHA256;
			assert_int_equal(EVP_Digest(msg, strlen(msg), dg, &ml, md_of(other), NULL),
			                 1);
			assert_int_equal(ws_sig_verify(pub, other, dg, ml, ref, rn), 0);
		}
		ws_pubkey_free(pub);
		ws_privkey_free(priv);
		free(pem.p);
	}
	EVP_PKEY_free(pk);
}

static void
test_rsa_1024(void **state)
{
	(void)state;
	rsa_roundtrip(1024);
}

static void
test_rsa_2048(void **state)
{
	(void)state;
	rsa_roundtrip(2048);
}

/* DER of an RSA public key with a random odd modulus of exactly `bits` bits:
 * enough to exercise the size limit without generating a real key. */
static struct buf
rsa_der_of_size(unsigned bits, bool spki)
{
	BIGNUM *n = BN_new(), *e = BN_new();
	assert_non_null(n);
	assert_non_null(e);
	assert_int_equal(BN_rand(n, (int)bits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD), 1);
	assert_int_equal(BN_set_word(e, 65537), 1);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	assert_non_null(bld);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n), 1);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e), 1);
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	assert_non_null(params);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *pk = NULL;
	assert_int_equal(EVP_PKEY_fromdata_init(c), 1);
	assert_int_equal(EVP_PKEY_fromdata(c, &pk, EVP_PKEY_PUBLIC_KEY, params), 1);
	assert_int_equal(EVP_PKEY_get_bits(pk), (int)bits);
	unsigned char *der = NULL;
	int len = spki ? i2d_PUBKEY(pk, &der) : i2d_PublicKey(pk, &der);
	assert_true(len > 0);
	struct buf b = {malloc((size_t)len), (size_t)len};
	memcpy(b.p, der, (size_t)len);
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(c);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return b;
}

static void
test_rsa_modulus_limit(void **state)
{
	(void)state;
	for (int spki = 0; spki < 2; spki++) {
		struct buf at = rsa_der_of_size(WS_SIG_RSA_MAX_BITS, spki);
		struct ws_pubkey *k = parse_pub(WS_SIG_RSA, at.p, at.len);
		assert_int_equal(ws_pubkey_bits(k), WS_SIG_RSA_MAX_BITS);
		/* A random value is no signature under a random modulus. */
		uint8_t dg[32], sig[WS_SIG_MAX_LEN];
		random_digest(dg, 32);
		random_digest(sig, sizeof(sig));
		sig[0] = 0;
		assert_int_equal(ws_sig_verify(k, WS_HASH_SHA256, dg, 32, sig, sizeof(sig)), 0);
		ws_pubkey_free(k);
		free(at.p);

		struct buf past = rsa_der_of_size(WS_SIG_RSA_MAX_BITS + 1, spki);
		const char *why = NULL;
		k = (struct ws_pubkey *)&why; /* must be reset to NULL */
		assert_int_equal(ws_pubkey_parse(WS_SIG_RSA, past.p, past.len, &k, &why), -1);
		assert_null(k);
		assert_non_null(why);
		assert_non_null(strstr(why, "8192"));
		free(past.p);
	}
}

static void
expect_refused(enum ws_sig_alg alg, const uint8_t *der, size_t len, const char *why_has)
{
	struct ws_pubkey *k = NULL;
	const char *why = NULL;
	if (ws_pubkey_parse(alg, der, len, &k, &why) != -1)
		fail_msg("accepted a key of %zu bytes that should be refused", len);
	assert_null(k);
	assert_non_null(why);
	if (why_has && !strstr(why, why_has))
		fail_msg("reason \"%s\" lacks \"%s\"", why, why_has);
}

static void
test_pubkey_refusals(void **state)
{
	(void)state;
	struct buf spki = rsa_der_of_size(2048, true), bare = rsa_der_of_size(2048, false);
	uint8_t tmp[1024];

	/* Every truncation of either form. */
	for (size_t n = 0; n < spki.len; n++)
		expect_refused(WS_SIG_RSA, spki.p, n, NULL);
	for (size_t n = 0; n < bare.len; n++)
		expect_refused(WS_SIG_RSA, bare.p, n, NULL);
	/* Trailing data after the DER. */
	memcpy(tmp, spki.p, spki.len);
	tmp[spki.len] = 0;
	expect_refused(WS_SIG_RSA, tmp, spki.len + 1, "trailing");
	memcpy(tmp, bare.p, bare.len);
	tmp[bare.len] = 0x30;
	expect_refused(WS_SIG_RSA, tmp, bare.len + 1, "trailing");
	/* Garbage. */
	for (int i = 0; i < 200; i++) {
		size_t n = 1 + randombytes_uniform(300);
		randombytes_buf(tmp, n);
		if (i & 1)
			tmp[0] = 0x30; /* looks like a SEQUENCE */
		expect_refused(WS_SIG_RSA, tmp, n, NULL);
	}
	expect_refused(WS_SIG_RSA, NULL, 0, NULL);
	/* An SPKI of another algorithm. */
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	assert_non_null(ec);
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(ec, &der);
	expect_refused(WS_SIG_RSA, der, (size_t)len, "not an RSA key");
	OPENSSL_free(der);
	EVP_PKEY_free(ec);
	/* Ed25519: exactly 32 bytes. */
	randombytes_buf(tmp, 33);
	expect_refused(WS_SIG_ED25519, tmp, 31, "32");
	expect_refused(WS_SIG_ED25519, tmp, 33, "32");
	expect_refused(WS_SIG_ED25519, tmp, 0, "32");
	struct ws_pubkey *k = parse_pub(WS_SIG_ED25519, tmp, 32);
	assert_int_equal(ws_pubkey_bits(k), 256);
	assert_int_equal(ws_pubkey_alg(k), WS_SIG_ED25519);
	ws_pubkey_free(k);
	/* An RSA key offered as Ed25519 and the other way round. */
	expect_refused(WS_SIG_ED25519, spki.p, spki.len, NULL);
	expect_refused(WS_SIG_RSA, tmp, 32, NULL);
	expect_refused((enum ws_sig_alg)7, tmp, 32, NULL);
	ws_pubkey_free(NULL);
	free(spki.p);
	free(bare.p);
}

/* dkimpy's key pairs: the SPKI and bare PKCS#1 records of one key parse to
 * the same key, and a signature by its private key verifies under both. */
static void
test_dkimpy_keys(void **state)
{
	(void)state;
	static const struct {
		const char *priv, *spki, *bare;
		unsigned bits;
	} pairs[] = {
	        {"dkimpy/1024_testkey.key", "dkimpy/1024_testkey_wo_markers.pub.txt",
	         "dkimpy/1024_testkey_wo_markers.pub.rsa.txt", 1024},
	        {"dkimpy/2048_testkey.key", "dkimpy/2048_testkey_wo_markers.pub.txt",
	         "dkimpy/2048_testkey_wo_markers.pub.rsa.txt", 2048},
	        {"dkimpy/2048_testkey_PKCS8.key", "dkimpy/2048_testkey_PKCS8.key.pub.txt", NULL,
	         2048},
	        {"dkimpy/test.private", "dkimpy/test.txt", NULL, 1024},
	        {"rfc8463/A1-rsa.private.pem", "rfc8463/dns.txt", NULL, 1024},
	};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		struct buf pem = shared_file(pairs[i].priv);
		struct ws_privkey *priv = load_priv(&pem);
		assert_int_equal(ws_privkey_alg(priv), WS_SIG_RSA);
		assert_int_equal(ws_privkey_bits(priv), pairs[i].bits);

		struct buf rec = shared_file(pairs[i].spki);
		/* rfc8463/dns.txt: the RSA record is the one with k=rsa. */
		const char *r = strstr((const char *)rec.p, "k=rsa");
		struct buf der = record_p(r ? r : (const char *)rec.p);
		uint8_t mine[1024];
		size_t mlen = ws_privkey_public(priv, mine, sizeof(mine));
		assert_int_equal(mlen, der.len);
		assert_memory_equal(mine, der.p, der.len);

		struct ws_pubkey *pub[2] = {parse_pub(WS_SIG_RSA, der.p, der.len), NULL};
		struct buf bare = {NULL, 0}, brec = {NULL, 0};
		if (pairs[i].bare) {
			brec = shared_file(pairs[i].bare);
			bare = record_p((const char *)brec.p);
			assert_true(bare.len < der.len); /* really the bare form */
			pub[1] = parse_pub(WS_SIG_RSA, bare.p, bare.len);
		}
		uint8_t dg[32], sig[WS_SIG_MAX_LEN];
		random_digest(dg, 32);
		size_t n = ws_sig_sign(priv, WS_HASH_SHA256, dg, 32, sig, sizeof(sig));
		assert_int_equal(n, pairs[i].bits / 8);
		for (int j = 0; j < 2; j++) {
			if (!pub[j])
				continue;
			assert_int_equal(ws_pubkey_bits(pub[j]), pairs[i].bits);
			check_rejections(pub[j], WS_HASH_SHA256, dg, 32, sig, n);
			ws_pubkey_free(pub[j]);
		}
		free(bare.p);
		free(brec.p);
		free(der.p);
		free(rec.p);
		ws_privkey_free(priv);
		free(pem.p);
	}
}

/* ---- Ed25519 -------------------------------------------------------------- */

static const uint8_t t1_seed[32] = {0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60,
                                    0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
                                    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19,
                                    0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
static const uint8_t t1_pub[32] = {0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
                                   0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
                                   0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
static const uint8_t t1_sig[64] = {0xe5, 0x56, 0x43, 0x00, 0xc3, 0x60, 0xac, 0x72, 0x90, 0x86, 0xe2,
                                   0xcc, 0x80, 0x6e, 0x82, 0x8a, 0x84, 0x87, 0x7f, 0x1e, 0xb8, 0xe5,
                                   0xd9, 0x74, 0xd8, 0x73, 0xe0, 0x65, 0x22, 0x49, 0x01, 0x55, 0x5f,
                                   0xb8, 0x82, 0x15, 0x90, 0xa3, 0x3b, 0xac, 0xc6, 0x1e, 0x39, 0x70,
                                   0x1c, 0xf9, 0xb4, 0x6b, 0xd2, 0x5b, 0xf5, 0xf0, 0x59, 0x5b, 0xbe,
                                   0x24, 0x65, 0x51, 0x41, 0x43, 0x8e, 0x7a, 0x10, 0x0b};

static struct buf
ed_pem_of_seed(const uint8_t seed[32])
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	assert_non_null(pk);
	struct buf b = pem_of(pk, false);
	EVP_PKEY_free(pk);
	return b;
}

/* Sign/verify a 32-byte digest: ws_sig, libsodium and OpenSSL agree. */
static void
ed_check(struct ws_privkey *priv, const uint8_t seed[32], const uint8_t pub_expect[32])
{
	uint8_t pub[32], pk_s[32], sk_s[64];
	assert_int_equal(ws_privkey_alg(priv), WS_SIG_ED25519);
	assert_int_equal(ws_privkey_bits(priv), 256);
	assert_int_equal(ws_privkey_public(priv, pub, sizeof(pub)), 32);
	assert_int_equal(ws_privkey_public(priv, pub, 31), 0);
	if (pub_expect)
		assert_memory_equal(pub, pub_expect, 32);
	assert_int_equal(crypto_sign_seed_keypair(pk_s, sk_s, seed), 0);
	assert_memory_equal(pub, pk_s, 32);

	struct ws_pubkey *k = parse_pub(WS_SIG_ED25519, pub, 32);
	for (int round = 0; round < 10; round++) {
		uint8_t dg[32], sig[WS_SIG_MAX_LEN], ref[64];
		random_digest(dg, 32);
		assert_int_equal(ws_sig_sign(priv, WS_HASH_SHA256, dg, 32, sig, sizeof(sig)), 64);
		/* Ed25519 is deterministic: libsodium gives the same bytes. */
		assert_int_equal(crypto_sign_detached(ref, NULL, dg, 32, sk_s), 0);
		assert_memory_equal(sig, ref, 64);
		/* OpenSSL accepts it too. */
		EVP_PKEY *opk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
		EVP_MD_CTX *mc = EVP_MD_CTX_new();
		assert_int_equal(EVP_DigestVerifyInit(mc, NULL, NULL, NULL, opk), 1);
		assert_int_equal(EVP_DigestVerify(mc, sig, 64, dg, 32), 1);
		EVP_MD_CTX_free(mc);
		EVP_PKEY_free(opk);
		check_rejections(k, WS_HASH_SHA256, dg, 32, sig, 64);
		/* Ed25519 with SHA-1 is not a DKIM algorithm. */
		assert_int_equal(ws_sig_verify(k, WS_HASH_SHA1, dg, 20, sig, 64), -1);
		assert_int_equal(ws_sig_sign(priv, WS_HASH_SHA1, dg, 20, sig, sizeof(sig)), 0);
		assert_int_equal(ws_sig_sign(priv, WS_HASH_SHA256, dg, 32, sig, 63), 0);
	}
	ws_pubkey_free(k);
}

static void
test_ed25519_rfc8032(void **state)
{
	(void)state;
	/* The references themselves reproduce RFC 8032 7.1 TEST 1. */
	uint8_t pk[32], sk[64], sig[64];
	assert_int_equal(crypto_sign_seed_keypair(pk, sk, t1_seed), 0);
	assert_memory_equal(pk, t1_pub, 32);
	assert_int_equal(crypto_sign_detached(sig, NULL, (const uint8_t *)"", 0, sk), 0);
	assert_memory_equal(sig, t1_sig, 64);
	EVP_PKEY *opk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, t1_seed, 32);
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	size_t sl = sizeof(sig);
	assert_int_equal(EVP_DigestSignInit(mc, NULL, NULL, NULL, opk), 1);
	assert_int_equal(EVP_DigestSign(mc, sig, &sl, (const uint8_t *)"", 0), 1);
	assert_memory_equal(sig, t1_sig, 64);
	EVP_MD_CTX_free(mc);
	EVP_PKEY_free(opk);

	struct buf pem = ed_pem_of_seed(t1_seed);
	struct ws_privkey *priv = load_priv(&pem);
	ed_check(priv, t1_seed, t1_pub);
	ws_privkey_free(priv);
	free(pem.p);
}

/* RFC 8463 A.1 key as PKCS#8 PEM (= RFC 8032 test 1), its A.2 record; the
 * dkimpy Ed25519 key, which is a bare base64 seed and not PEM. */
static void
test_ed25519_shared_keys(void **state)
{
	(void)state;
	struct buf pem = shared_file("rfc8463/A1-ed25519.private.pem");
	struct buf dns = shared_file("rfc8463/dns.txt");
	struct buf p = record_p(strstr((const char *)dns.p, "k=ed25519"));
	assert_int_equal(p.len, 32);
	struct ws_privkey *priv = load_priv(&pem);
	ed_check(priv, t1_seed, p.p);
	assert_memory_equal(p.p, t1_pub, 32);
	ws_privkey_free(priv);
	free(p.p);
	free(dns.p);
	free(pem.p);

	struct buf raw = shared_file("dkimpy/ed25519test.key");
	const char *why = NULL;
	priv = NULL;
	assert_int_equal(ws_privkey_load_pem((const char *)raw.p, raw.len, &priv, &why), -1);
	assert_null(priv);
	assert_non_null(why);
	struct buf seed = b64_decode((const char *)raw.p, raw.len);
	assert_int_equal(seed.len, 32);
	struct buf wrapped = ed_pem_of_seed(seed.p);
	struct buf rec = shared_file("dkimpy/ed25519test.dns");
	struct buf pub = record_p((const char *)rec.p);
	priv = load_priv(&wrapped);
	ed_check(priv, seed.p, pub.p);
	ws_privkey_free(priv);
	free(pub.p);
	free(rec.p);
	free(wrapped.p);
	free(seed.p);
	free(raw.p);
}

static void
test_privkey_refusals(void **state)
{
	(void)state;
	struct ws_privkey *k = NULL;
	const char *why = NULL;
	static const char junk[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
	assert_int_equal(ws_privkey_load_pem(junk, strlen(junk), &k, &why), -1);
	assert_null(k);
	assert_non_null(why);
	assert_int_equal(ws_privkey_load_pem("", 0, &k, &why), -1);
	assert_int_equal(ws_privkey_load_pem(NULL, 10, &k, &why), -1);

	/* A public key PEM is not a private key. */
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	BIO *bio = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PUBKEY(bio, ec), 1);
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	why = NULL;
	assert_int_equal(ws_privkey_load_pem(data, (size_t)n, &k, &why), -1);
	assert_non_null(why);
	BIO_free(bio);
	/* An EC private key: neither RSA nor Ed25519. */
	struct buf ecpem = pem_of(ec, false);
	why = NULL;
	assert_int_equal(ws_privkey_load_pem((const char *)ecpem.p, ecpem.len, &k, &why), -1);
	assert_non_null(strstr(why, "neither"));
	free(ecpem.p);
	/* An encrypted key is refused, without asking for a passphrase. */
	bio = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey(bio, ec, EVP_aes_128_cbc(),
	                                          (const unsigned char *)"pw", 2, NULL, NULL),
	                 1);
	n = BIO_get_mem_data(bio, &data);
	why = NULL;
	assert_int_equal(ws_privkey_load_pem(data, (size_t)n, &k, &why), -1);
	assert_non_null(why);
	assert_null(k);
	BIO_free(bio);
	EVP_PKEY_free(ec);
	ws_privkey_free(NULL);
}

/* ---- batch and threads ---------------------------------------------------- */

static void
test_verify_batch(void **state)
{
	(void)state;
	EVP_PKEY *pk = EVP_RSA_gen(1024);
	struct buf pem = pem_of(pk, false);
	struct ws_privkey *rsa = load_priv(&pem);
	struct buf edpem = ed_pem_of_seed(t1_seed);
	struct ws_privkey *ed = load_priv(&edpem);
	uint8_t der[1024];
	size_t dlen = ws_privkey_public(rsa, der, sizeof(der));
	struct ws_pubkey *krsa = parse_pub(WS_SIG_RSA, der, dlen);
	struct ws_pubkey *ked = parse_pub(WS_SIG_ED25519, t1_pub, 32);

	enum { N = 40 };
	static uint8_t dg[N][32], sig[N][WS_SIG_MAX_LEN];
	struct ws_verify_job jobs[N];
	for (size_t i = 0; i < N; i++) {
		bool is_ed = i % 3 == 0;
		enum ws_hash_alg h = (!is_ed && i % 2) ? WS_HASH_SHA1 : WS_HASH_SHA256;
		size_t hl = ws_hash_len(h);
		random_digest(dg[i], hl);
		size_t sl = ws_sig_sign(is_ed ? ed : rsa, h, dg[i], hl, sig[i], WS_SIG_MAX_LEN);
		assert_true(sl > 0);
		if (i % 5 == 1)
			sig[i][sl / 2] ^= 0x10;
		jobs[i] = (struct ws_verify_job){is_ed ? ked : krsa, h, dg[i], hl, sig[i], sl, 99};
		if (i % 7 == 2)
			jobs[i].digest_len--;
	}
	ws_sig_verify_batch(jobs, N);
	for (size_t i = 0; i < N; i++) {
		int want = ws_sig_verify(jobs[i].key, jobs[i].halg, jobs[i].digest,
		                         jobs[i].digest_len, jobs[i].sig, jobs[i].sig_len);
		assert_int_equal(jobs[i].result, want);
		assert_int_equal(want, i % 7 == 2 ? -1 : i % 5 == 1 ? 0 : 1);
	}
	ws_sig_verify_batch(jobs, 0);
	ws_pubkey_free(krsa);
	ws_pubkey_free(ked);
	ws_privkey_free(rsa);
	ws_privkey_free(ed);
	free(edpem.p);
	free(pem.p);
	EVP_PKEY_free(pk);
}

struct thr_arg {
	const struct ws_pubkey *k;
	const uint8_t *dg, *sig;
	size_t slen;
	int bad;
};

static void *
thr_verify(void *p)
{
	struct thr_arg *a = p;
	for (int i = 0; i < 300; i++) {
		uint8_t dg[32];
		memcpy(dg, a->dg, 32);
		if (i % 4 == 3)
			dg[0] ^= 1;
		int r = ws_sig_verify(a->k, WS_HASH_SHA256, dg, 32, a->sig, a->slen);
		if (r != (i % 4 == 3 ? 0 : 1))
			a->bad++;
	}
	return NULL;
}

/* One key shared by several threads at once (its context pool). */
static void
test_shared_key_threads(void **state)
{
	(void)state;
	EVP_PKEY *pk = EVP_RSA_gen(1024);
	struct buf pem = pem_of(pk, false);
	struct ws_privkey *priv = load_priv(&pem);
	uint8_t der[1024], dg[32], sig[WS_SIG_MAX_LEN];
	size_t dlen = ws_privkey_public(priv, der, sizeof(der));
	struct ws_pubkey *k = parse_pub(WS_SIG_RSA, der, dlen);
	random_digest(dg, 32);
	size_t sl = ws_sig_sign(priv, WS_HASH_SHA256, dg, 32, sig, sizeof(sig));
	enum { T = 4 };
	pthread_t th[T];
	struct thr_arg args[T];
	for (int i = 0; i < T; i++) {
		args[i] = (struct thr_arg){k, dg, sig, sl, 0};
		assert_int_equal(pthread_create(&th[i], NULL, thr_verify, &args[i]), 0);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].bad, 0);
	}
	ws_pubkey_free(k);
	ws_privkey_free(priv);
	free(pem.p);
	EVP_PKEY_free(pk);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rsa_1024),
	        cmocka_unit_test(test_rsa_2048),
	        cmocka_unit_test(test_rsa_modulus_limit),
	        cmocka_unit_test(test_pubkey_refusals),
	        cmocka_unit_test(test_dkimpy_keys),
	        cmocka_unit_test(test_ed25519_rfc8032),
	        cmocka_unit_test(test_ed25519_shared_keys),
	        cmocka_unit_test(test_privkey_refusals),
	        cmocka_unit_test(test_verify_batch),
	        cmocka_unit_test(test_shared_key_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
