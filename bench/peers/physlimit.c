/*
 * bench-physlimit: the crypto floor of DKIM verification on this core.
 *
 * For every message: SHA-256 over all of its bytes (OpenSSL EVP, MD fetched
 * once, EVP_DigestInit_ex2) and one public-key verify per DKIM-Signature
 * with a key parsed before timing (RSA: OpenSSL EVP_PKEY_verify on a context
 * initialised once per key; Ed25519: libsodium, or OpenSSL with
 * --ed25519=openssl). A verifier must hash at least the body and the signed
 * headers and do one verify per signature, so no verifier on this core can
 * beat these msgs/s; canonicalisation, parsing and key lookup come on top.
 *
 * The signatures verified are real: before timing, each message's SHA-256
 * is signed with the signer's private key from CORPUS/keys, so the timed
 * loop recomputes the digest and checks a signature that must pass.
 *
 * Usage: bench-physlimit [--ed25519=sodium|openssl] CORPUS_DIR [FILE...]
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "bcorp.h"

#define PL_MAX_SIGS 8
#define PL_MAX_KEYS 256
#define PL_TAG_MAX 128
#define PL_SIG_MAX 1024

struct pl_key {
	char name[2 * PL_TAG_MAX + 2]; /* "selector/domain" */
	bool ed25519;
	EVP_PKEY *priv; /* only until every digest is signed */
	EVP_PKEY *pub;
	EVP_PKEY_CTX *rsa_vctx; /* verify_init done once */
	unsigned char ed_pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char ed_sk[crypto_sign_SECRETKEYBYTES];
};

struct pl_sig {
	struct pl_key *key;
	unsigned char sig[PL_SIG_MAX];
	size_t siglen;
};

struct pl_msg {
	struct pl_sig sigs[PL_MAX_SIGS];
	int nsigs;
};

static struct pl_key keys[PL_MAX_KEYS];
static int nkeys;

/* Copies tag `tag` of a DKIM-Signature value into out, whitespace removed. */
static bool
sig_tag(const char *v, size_t vlen, char tag, char *out, size_t outlen)
{
	size_t i = 0;

	while (i < vlen) {
		while (i < vlen && (isspace((unsigned char)v[i]) || v[i] == ';'))
			i++;
		if (i < vlen && v[i] == tag) {
			size_t j = i + 1, o = 0;

			while (j < vlen && isspace((unsigned char)v[j]))
				j++;
			if (j < vlen && v[j] == '=') {
				j++;
				while (j < vlen && v[j] != ';') {
					if (!isspace((unsigned char)v[j]) && o + 1 < outlen)
						out[o++] = v[j];
					j++;
				}
				out[o] = '\0';
				return o > 0;
			}
		}
		while (i < vlen && v[i] != ';')
			i++;
	}
	return false;
}

static struct pl_key *
key_get(const char *dir, const char *sel, const char *dom, char *err, size_t errlen)
{
	char name[sizeof(keys[0].name)], path[8500];
	const char *alg = sel;
	bool revoked = strncmp(sel, "revoked-", 8) == 0;
	FILE *f = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	int derlen;
	struct pl_key *k = &keys[nkeys];

	snprintf(name, sizeof(name), "%s/%s", sel, dom);
	for (int i = 0; i < nkeys; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	if (nkeys == PL_MAX_KEYS) {
		snprintf(err, errlen, "more than %d keys", PL_MAX_KEYS);
		return NULL;
	}
	if (revoked)
		alg = sel + 8;
	memset(k, 0, sizeof(*k));
	memcpy(k->name, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/keys/%s.%s.%s.pem", dir, dom, revoked ? "revoked" : "live", alg);
	f = fopen(path, "r");
	if (f == NULL || (k->priv = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "cannot read private key %.400s", path);
		goto fail;
	}
	/* The public half goes through SPKI DER, as a verifier gets it from p=. */
	derlen = i2d_PUBKEY(k->priv, &der);
	p = der;
	if (derlen <= 0 || (k->pub = d2i_PUBKEY(NULL, &p, derlen)) == NULL) {
		snprintf(err, errlen, "%.400s: cannot derive the public key", path);
		goto fail;
	}
	if (EVP_PKEY_get_base_id(k->priv) == EVP_PKEY_ED25519) {
		unsigned char seed[32];
		size_t len = sizeof(seed);

		k->ed25519 = true;
		if (EVP_PKEY_get_raw_private_key(k->priv, seed, &len) != 1 || len != sizeof(seed) ||
		    crypto_sign_seed_keypair(k->ed_pk, k->ed_sk, seed) != 0) {
			snprintf(err, errlen, "%.400s: no raw Ed25519 key", path);
			goto fail;
		}
	} else {
		k->rsa_vctx = EVP_PKEY_CTX_new(k->pub, NULL);
		if (k->rsa_vctx == NULL || EVP_PKEY_verify_init(k->rsa_vctx) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(k->rsa_vctx, RSA_PKCS1_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(k->rsa_vctx, EVP_sha256()) != 1) {
			snprintf(err, errlen, "%.400s: RSA verify context", path);
			goto fail;
		}
	}
	OPENSSL_free(der);
	fclose(f);
	nkeys++;
	return k;
fail:
	OPENSSL_free(der);
	EVP_PKEY_free(k->priv);
	EVP_PKEY_free(k->pub);
	EVP_PKEY_CTX_free(k->rsa_vctx);
	if (f != NULL)
		fclose(f);
	return NULL;
}

static bool
sign_digest(struct pl_key *k, const unsigned char dig[32], struct pl_sig *s)
{
	EVP_PKEY_CTX *ctx;
	bool ok;

	if (k->ed25519) {
		unsigned long long len = 0;

		crypto_sign_detached(s->sig, &len, dig, 32, k->ed_sk);
		s->siglen = (size_t)len;
		return true;
	}
	s->siglen = sizeof(s->sig);
	ctx = EVP_PKEY_CTX_new(k->priv, NULL);
	ok = ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
	     EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
	     EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
	     EVP_PKEY_sign(ctx, s->sig, &s->siglen, dig, 32) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

/* Finds every DKIM-Signature of m, maps it to its key and signs m's digest. */
static int
prepare(const char *dir, const struct bcorp_msg *m, struct pl_msg *pm, char *err, size_t errlen)
{
	const char *s = (const char *)m->data, *end = s + m->len;
	unsigned char dig[32];
	unsigned int diglen = 0;

	EVP_Digest(m->data, m->len, dig, &diglen, EVP_sha256(), NULL);
	pm->nsigs = 0;
	while (s < end && !(s[0] == '\r' || s[0] == '\n')) {
		const char *f = s, *fe;

		/* A field runs to the first line end not followed by WSP. */
		for (fe = f; fe < end; fe++)
			if (*fe == '\n' && (fe + 1 >= end || (fe[1] != ' ' && fe[1] != '\t')))
				break;
		s = fe < end ? fe + 1 : end;
		if ((size_t)(fe - f) > 15 && strncasecmp(f, "DKIM-Signature:", 15) == 0) {
			char d[PL_TAG_MAX], sel[PL_TAG_MAX];
			struct pl_key *k;

			if (pm->nsigs == PL_MAX_SIGS) {
				snprintf(err, errlen, "%s: more than %d signatures", m->name, PL_MAX_SIGS);
				return -1;
			}
			if (!sig_tag(f + 15, (size_t)(fe - f - 15), 'd', d, sizeof(d)) ||
			    !sig_tag(f + 15, (size_t)(fe - f - 15), 's', sel, sizeof(sel))) {
				snprintf(err, errlen, "%s: signature without d= or s=", m->name);
				return -1;
			}
			k = key_get(dir, sel, d, err, errlen);
			if (k == NULL)
				return -1;
			pm->sigs[pm->nsigs].key = k;
			if (!sign_digest(k, dig, &pm->sigs[pm->nsigs])) {
				snprintf(err, errlen, "%s: signing failed", m->name);
				return -1;
			}
			pm->nsigs++;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct bcorp c;
	struct bcorp_tally t;
	struct pl_msg *pm = NULL;
	char err[512], extra[160];
	bool ed_openssl = false;
	int argi = 1;
	EVP_MD *md = NULL;
	EVP_MD_CTX *mctx = NULL, *ectx = NULL;

	if (argc > 1 && strncmp(argv[1], "--ed25519=", 10) == 0) {
		ed_openssl = strcmp(argv[1] + 10, "openssl") == 0;
		if (!ed_openssl && strcmp(argv[1] + 10, "sodium") != 0) {
			fprintf(stderr, "bench-physlimit: --ed25519 takes sodium or openssl\n");
			return 2;
		}
		argi++;
	}
	if (argc - argi < 1) {
		fprintf(stderr, "usage: %s [--ed25519=sodium|openssl] CORPUS_DIR [FILE...]\n", argv[0]);
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "bench-physlimit: sodium_init failed\n");
		return 1;
	}
	if (bcorp_load(&c, argv[argi], argc - argi - 1, argv + argi + 1, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench-physlimit: %s\n", err);
		return 1;
	}
	pm = calloc(c.n ? c.n : 1, sizeof(*pm));
	md = EVP_MD_fetch(NULL, "SHA256", NULL);
	mctx = EVP_MD_CTX_new();
	ectx = EVP_MD_CTX_new();
	if (pm == NULL || md == NULL || mctx == NULL || ectx == NULL) {
		fprintf(stderr, "bench-physlimit: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < c.n; i++) {
		if (prepare(argv[argi], &c.msgs[i], &pm[i], err, sizeof(err)) != 0) {
			fprintf(stderr, "bench-physlimit: %s\n", err);
			return 1;
		}
	}
	for (int i = 0; i < nkeys; i++) {
		EVP_PKEY_free(keys[i].priv);
		keys[i].priv = NULL;
		sodium_memzero(keys[i].ed_sk, sizeof(keys[i].ed_sk));
	}
	bcorp_tally_init(&t, ed_openssl ? "physlimit-ossl-ed25519" : "physlimit", &c);
	/* Pass -1 is the untimed warm-up over the first BCORP_WARMUP messages. */
	for (int b = -1; b < BCORP_NBUCKETS; b++) {
		bool *ok = calloc(c.n ? c.n : 1, sizeof(*ok));
		double t0;

		if (ok == NULL)
			return 1;
		t0 = bcorp_cpu_now();
		for (size_t i = 0; i < c.n; i++) {
			unsigned char dig[32];
			unsigned int diglen = 0;
			bool good;

			if (b < 0 ? i >= BCORP_WARMUP : c.msgs[i].bucket != b)
				continue;
			good = EVP_DigestInit_ex2(mctx, md, NULL) == 1 &&
			       EVP_DigestUpdate(mctx, c.msgs[i].data, c.msgs[i].len) == 1 &&
			       EVP_DigestFinal_ex(mctx, dig, &diglen) == 1;
			for (int s = 0; s < pm[i].nsigs && good; s++) {
				const struct pl_sig *sg = &pm[i].sigs[s];

				if (!sg->key->ed25519)
					good = EVP_PKEY_verify(sg->key->rsa_vctx, sg->sig, sg->siglen, dig, 32) == 1;
				else if (!ed_openssl)
					good = crypto_sign_verify_detached(sg->sig, dig, 32, sg->key->ed_pk) == 0;
				else
					good = EVP_MD_CTX_reset(ectx) == 1 &&
					       EVP_DigestVerifyInit(ectx, NULL, NULL, NULL, sg->key->pub) == 1 &&
					       EVP_DigestVerify(ectx, sg->sig, sg->siglen, dig, 32) == 1;
			}
			ok[i] = good && pm[i].nsigs > 0;
		}
		if (b < 0) {
			free(ok);
			continue;
		}
		bcorp_tally_cpu(&t, b, bcorp_cpu_now() - t0);
		for (size_t i = 0; i < c.n; i++) {
			if (c.msgs[i].bucket != b)
				continue;
			/* "pass" here means the crypto checked out; the corpus's own
			 * expectation (tampering, revoked keys) does not apply. */
			c.msgs[i].expected = BCORP_EXPECT_UNKNOWN;
			bcorp_tally_result(&t, &c.msgs[i], ok[i] ? BCORP_PASS : BCORP_FAIL);
		}
		free(ok);
	}
	snprintf(extra, sizeof(extra), "\"version\": \"%s, libsodium %s\", \"ed25519\": \"%s\"",
		 OpenSSL_version(OPENSSL_VERSION), sodium_version_string(),
		 ed_openssl ? "openssl" : "libsodium");
	bcorp_tally_print(&t, stdout, extra);
	for (int i = 0; i < nkeys; i++) {
		EVP_PKEY_free(keys[i].pub);
		EVP_PKEY_CTX_free(keys[i].rsa_vctx);
	}
	EVP_MD_CTX_free(mctx);
	EVP_MD_CTX_free(ectx);
	EVP_MD_free(md);
	free(pm);
	bcorp_free(&c);
	return 0;
}
