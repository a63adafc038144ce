/* tlscert: leaf facts and the chain check, on certificates made here with
 * OpenSSL (a CA and leaves with chosen names and validity). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tlscert.h"

#define T0 1790000000 /* "capture time" */

static EVP_PKEY *
ec_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	assert_non_null(k);
	return k;
}

static void
set_name(X509_NAME *n, const char *cn)
{
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn,
						    -1, -1, 0),
			 1);
}

/* A certificate: issuer NULL = self-signed CA. sans: comma-separated DNS names or NULL. */
static X509 *
make(const char *cn, const char *sans, X509 *issuer, EVP_PKEY *ikey, EVP_PKEY *key, int64_t nb,
     int64_t na)
{
	X509 *x = X509_new();
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(nb & 0xffff) + 1);
	ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb);
	ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na);
	X509_set_pubkey(x, key);
	if (cn)
		set_name(X509_get_subject_name(x), cn);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(x));
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
						  issuer ? "critical,CA:FALSE" : "critical,CA:TRUE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (sans) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, sans);
		assert_non_null(ext);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(x, issuer ? ikey : key, EVP_sha256()) > 0);
	return x;
}

/* leaf (+ ca) as a Certificate message body with spans, as tlsobs gives them. */
static unsigned
chain_of(X509 *leaf, X509 *ca, uint8_t *buf, struct tlsobs_span *sp)
{
	X509 *c[2] = {leaf, ca};
	uint32_t off = 3;
	unsigned n = 0;
	for (unsigned i = 0; i < 2 && c[i]; i++) {
		unsigned char *p = buf + off + 3;
		int len = i2d_X509(c[i], &p);
		assert_true(len > 0);
		buf[off] = (uint8_t)(len >> 16);
		buf[off + 1] = (uint8_t)(len >> 8);
		buf[off + 2] = (uint8_t)len;
		sp[n].off = off + 3;
		sp[n].len = (uint32_t)len;
		off += 3 + (uint32_t)len;
		n++;
	}
	return n;
}

struct fx {
	EVP_PKEY *cakey, *key;
	X509 *ca;
	struct x509_store_st *store;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->cakey = ec_key();
	f->key = ec_key();
	f->ca = make("Test CA", NULL, NULL, NULL, f->cakey, T0 - 86400 * 365, T0 + 86400 * 3650);
	X509_STORE *st = X509_STORE_new();
	X509_STORE_add_cert(st, f->ca);
	f->store = st;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	X509_free(f->ca);
	EVP_PKEY_free(f->cakey);
	EVP_PKEY_free(f->key);
	tlscert_store_free(f->store);
	free(f);
	return 0;
}

static void
test_leaf_facts(void **state)
{
	struct fx *f = *state;
	X509 *leaf = make("mx.example.net", "DNS:mx.example.net,DNS:*.example.net,IP:192.0.2.1",
			  f->ca, f->cakey, f->key, T0 - 100, T0 + 100);
	static uint8_t buf[8192];
	struct tlsobs_span sp[2];
	unsigned n = chain_of(leaf, f->ca, buf, sp);
	struct tlscert_info ci;
	assert_int_equal(tlscert_assess(buf, sp, n, f->store, T0, &ci), 0);
	assert_true(ci.parsed);
	assert_int_equal(ci.nnames, 3); /* two dNSNames (the IP is not one), then the CN */
	assert_string_equal(ci.names[0], "mx.example.net");
	assert_string_equal(ci.names[1], "*.example.net");
	assert_string_equal(ci.names[2], "CN=mx.example.net");
	assert_int_equal(ci.cn_index, 2);
	assert_int_equal(ci.not_before, T0 - 100);
	assert_int_equal(ci.not_after, T0 + 100);
	assert_string_equal(ci.issuer, "CN=Test CA");
	assert_true(ci.chain_trusted);
	tlscert_info_free(&ci);
	/* verify time = the time given: after notAfter the chain does not verify */
	assert_int_equal(tlscert_assess(buf, sp, n, f->store, T0 + 101, &ci), 0);
	assert_false(ci.chain_trusted);
	assert_int_equal(ci.verify_error, X509_V_ERR_CERT_HAS_EXPIRED);
	tlscert_info_free(&ci);
	/* no store: facts, but never trusted */
	assert_int_equal(tlscert_assess(buf, sp, n, NULL, T0, &ci), 0);
	assert_false(ci.chain_trusted);
	assert_string_equal(ci.verify_reason, "no CA store");
	tlscert_info_free(&ci);
	X509_free(leaf);
}

static void
test_untrusted_and_cn_only(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *rk = ec_key();
	X509 *rogue = make("Rogue CA", NULL, NULL, NULL, rk, T0 - 1000, T0 + 1000);
	X509 *leaf = make("cn-only.example.net", NULL, rogue, rk, f->key, T0 - 100, T0 + 100);
	static uint8_t buf[8192];
	struct tlsobs_span sp[2];
	unsigned n = chain_of(leaf, rogue, buf, sp);
	struct tlscert_info ci;
	assert_int_equal(tlscert_assess(buf, sp, n, f->store, T0, &ci), 0);
	assert_false(ci.chain_trusted);
	assert_int_equal(ci.nnames, 1);
	assert_string_equal(ci.names[0], "CN=cn-only.example.net"); /* flagged: never a DNS-ID */
	tlscert_info_free(&ci);
	/* a leaf that does not decode */
	buf[sp[0].off] ^= 0xff;
	assert_int_equal(tlscert_assess(buf, sp, n, f->store, T0, &ci), -1);
	assert_false(ci.parsed);
	tlscert_info_free(&ci);
	X509_free(leaf);
	X509_free(rogue);
	EVP_PKEY_free(rk);
}

static void
test_limit_names(void **state)
{
	struct fx *f = *state;
	for (unsigned past = 0; past < 2; past++) {
		/* TLSCERT_MAX_NAMES names in all with the CN, then one more */
		static char sans[8192];
		size_t o = 0;
		unsigned nsan = TLSCERT_MAX_NAMES - 1 + past;
		for (unsigned i = 0; i < nsan; i++)
			o += (size_t)snprintf(sans + o, sizeof(sans) - o, "%sDNS:h%u.example.net",
					      i ? "," : "", i);
		X509 *leaf = make("mx.example.net", sans, f->ca, f->cakey, f->key, T0 - 1, T0 + 1);
		static uint8_t buf[16384];
		struct tlsobs_span sp[2];
		unsigned n = chain_of(leaf, NULL, buf, sp);
		struct tlscert_info ci;
		assert_int_equal(tlscert_assess(buf, sp, n, f->store, T0, &ci), 0);
		assert_int_equal(ci.nnames, TLSCERT_MAX_NAMES);
		assert_int_equal(ci.names_over, past);
		assert_int_equal(ci.cn_index, past ? -1 : (long)TLSCERT_MAX_NAMES - 1);
		tlscert_info_free(&ci);
		X509_free(leaf);
	}
	/* a name past TLSCERT_MAX_NAME bytes is cut */
	char cn[TLSCERT_MAX_NAME + 2];
	memset(cn, 'a', sizeof(cn) - 1);
	cn[sizeof(cn) - 1] = '\0';
	char san[TLSCERT_MAX_NAME + 8];
	snprintf(san, sizeof(san), "DNS:%s", cn);
	X509 *leaf = make("x", san, f->ca, f->cakey, f->key, T0 - 1, T0 + 1);
	static uint8_t buf[8192];
	struct tlsobs_span sp[2];
	unsigned n = chain_of(leaf, NULL, buf, sp);
	struct tlscert_info ci;
	assert_int_equal(tlscert_assess(buf, sp, n, f->store, T0, &ci), 0);
	assert_int_equal(strlen(ci.names[0]), TLSCERT_MAX_NAME);
	tlscert_info_free(&ci);
	X509_free(leaf);
}

/* An issuer name whose RFC 2253 form is exactly len bytes: three OU=60
 * chars, then one OU sized to fit (191 + "," + "OU=" + x). */
static X509_NAME *
issuer_of_len(size_t len)
{
	X509_NAME *n = X509_NAME_new();
	assert_non_null(n);
	char v[64];
	memset(v, 'a', 60);
	v[60] = '\0';
	for (int i = 0; i < 3; i++)
		assert_int_equal(X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC,
							    (const unsigned char *)v, -1, -1, 0),
				 1);
	size_t x = len - 195;
	assert_true(x > 0 && x < sizeof(v));
	memset(v, 'b', x);
	v[x] = '\0';
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC, (const unsigned char *)v,
						    -1, -1, 0),
			 1);
	BIO *b = BIO_new(BIO_s_mem());
	X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253);
	assert_int_equal(BIO_pending(b), (int)len);
	BIO_free(b);
	return n;
}

/* TLSCERT_MAX_ISSUER: an issuer that long is kept whole, one byte longer is
 * cut; TLSCERT_MAX_NAME: a name that long is kept whole. */
static void
test_limit_issuer(void **state)
{
	struct fx *f = *state;
	for (int past = 0; past <= 1; past++) {
		X509 *ca = make("tmp", NULL, NULL, NULL, f->cakey, T0 - 1, T0 + 1);
		X509_NAME *in = issuer_of_len(TLSCERT_MAX_ISSUER + (size_t)past);
		X509_set_subject_name(ca, in);
		X509 *leaf = make("x", "DNS:x.example", ca, f->cakey, f->key, T0 - 1, T0 + 1);
		static uint8_t buf[8192];
		struct tlsobs_span sp[2];
		unsigned n = chain_of(leaf, NULL, buf, sp);
		struct tlscert_info ci;
		assert_int_equal(tlscert_assess(buf, sp, n, f->store, T0, &ci), 0);
		assert_int_equal(strlen(ci.issuer), TLSCERT_MAX_ISSUER);
		/* RFC 2253 prints the last entry first: the "b" one */
		assert_memory_equal(ci.issuer, "OU=bbb", 6);
		assert_int_equal(ci.issuer[TLSCERT_MAX_ISSUER - 1], 'a');
		tlscert_info_free(&ci);
		X509_free(leaf);
		X509_free(ca);
		X509_NAME_free(in);
	}
	char dns[TLSCERT_MAX_NAME + 1];
	memset(dns, 'c', TLSCERT_MAX_NAME);
	dns[TLSCERT_MAX_NAME] = '\0';
	char san[TLSCERT_MAX_NAME + 8];
	snprintf(san, sizeof(san), "DNS:%s", dns);
	X509 *leaf = make("x", san, f->ca, f->cakey, f->key, T0 - 1, T0 + 1);
	static uint8_t buf[8192];
	struct tlsobs_span sp[2];
	unsigned n = chain_of(leaf, NULL, buf, sp);
	struct tlscert_info ci;
	assert_int_equal(tlscert_assess(buf, sp, n, f->store, T0, &ci), 0);
	assert_string_equal(ci.names[0], dns);
	tlscert_info_free(&ci);
	X509_free(leaf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leaf_facts),
		cmocka_unit_test(test_untrusted_and_cn_only),
		cmocka_unit_test(test_limit_names),
		cmocka_unit_test(test_limit_issuer),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
