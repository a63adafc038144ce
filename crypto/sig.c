/*
 * ws_sig: RSA PKCS#1 v1.5 (OpenSSL 3 EVP_PKEY) and Ed25519 (libsodium to
 * verify, OpenSSL to sign).
 *
 * RSA verify cost: building an EVP_PKEY_CTX and setting padding and digest
 * per call allocates several objects and makes the provider fetch the digest
 * by name (measured in bench/crypto_bench.c, "rsa-2048 verify, fresh ctx").
 * A verify leaves a provider ctx reusable, so each key keeps a small pool of
 * ready contexts per digest: a verify pops one under the key's mutex, uses
 * it, pushes it back. The pool grows to the number of threads that verified
 * with the key at once and is freed with the key.
 *
 * Batches: RSA keys with e = 65537 also carry rsa_ifma's precomputation,
 * and ws_sig_verify_batch runs their jobs 8 at a time on AVX-512 IFMA
 * (5x OpenSSL's verifies/s at 2048 bits here, bench-crypto).
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "hash_evp.h"
#include "rsa_ifma.h"
#include "sig.h"

struct ctx_node {
	EVP_PKEY_CTX *ctx;
	struct ctx_node *next;
};

struct ws_pubkey {
	enum ws_sig_alg alg;
	unsigned bits;
	size_t sig_len; /* RSA: modulus bytes; Ed25519: 64 */
	EVP_PKEY *pkey; /* RSA only */
	/* RSA, e = 65537, a size rsa_ifma does, on a CPU with IFMA: the
	 * precomputation ws_sig_verify_batch runs 8 lanes of; else NULL. */
	struct ws_rsa_ifma_key *ifma;
	uint8_t ed[WS_SIG_ED25519_KEY_LEN];
	/* Ready verify contexts, one free list per ws_hash_alg. The struct is
	 * otherwise immutable, which is what makes a const key shareable. */
	pthread_mutex_t lock;
	struct ctx_node *free_ctx[2];
};

struct ws_privkey {
	enum ws_sig_alg alg;
	unsigned bits;
	EVP_PKEY *pkey;
};

/* sodium_init once per process; it is itself idempotent, but not free. */
static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_ok;

static void
sodium_start(void)
{
	sodium_ok = sodium_init() >= 0;
}

static bool
sodium_ready(void)
{
	return pthread_once(&sodium_once, sodium_start) == 0 && sodium_ok;
}

/* ---- public keys ------------------------------------------------------ */

/* d2i_* read at most a long. */
static bool
der_len_ok(size_t len)
{
	return len > 0 && len <= (size_t)LONG_MAX;
}

/* SPKI first; a bare PKCS#1 RSAPublicKey second. Either must use every
 * byte: trailing data would let two different records parse to one key. */
static EVP_PKEY *
parse_rsa_der(const uint8_t *der, size_t len, const char **why)
{
	const unsigned char *p = der;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)len);
	if (pk) {
		if (p != der + len) {
			*why = "trailing data after RSA key";
			goto fail;
		}
		if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
			*why = "not an RSA key";
			goto fail;
		}
		return pk;
	}
	ERR_clear_error();
	p = der;
	pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
	if (!pk) {
		*why = "malformed RSA key";
		goto fail;
	}
	if (p != der + len) {
		*why = "trailing data after RSA key";
		goto fail;
	}
	return pk;
fail:
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return NULL;
}

/* The IFMA precomputation when the key is one rsa_ifma does. Without it
 * (another key, or a failure to compute it) k->ifma stays NULL and the key
 * verifies through OpenSSL only, as before. */
static void
ifma_precompute(struct ws_pubkey *k)
{
	BIGNUM *n = NULL, *e = NULL;
	if (EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
	    EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_E, &e) == 1 &&
	    ws_rsa_ifma_key_new(n, e, &k->ifma) == 0 &&
	    ws_rsa_ifma_key_len(k->ifma) != k->sig_len) {
		/* Cannot happen (both are the modulus bytes); never verify
		 * a length OpenSSL would refuse. */
		ws_rsa_ifma_key_free(k->ifma);
		k->ifma = NULL;
	}
	BN_free(n);
	BN_free(e);
	ERR_clear_error();
}

int
ws_pubkey_parse(enum ws_sig_alg alg, const uint8_t *der, size_t len, struct ws_pubkey **out,
                const char **why)
{
	const char *dummy;
	struct ws_pubkey *k = NULL;
	if (!why)
		why = &dummy;
	*out = NULL;
	if (!der && len > 0) {
		*why = "no key data";
		return -1;
	}

	k = calloc(1, sizeof(*k));
	if (!k) {
		*why = "out of memory";
		return -1;
	}
	if (pthread_mutex_init(&k->lock, NULL) != 0) {
		free(k);
		*why = "out of memory";
		return -1;
	}
	k->alg = alg;
	switch (alg) {
	case WS_SIG_RSA:
		if (!der_len_ok(len)) {
			*why = "malformed RSA key";
			goto fail;
		}
		k->pkey = parse_rsa_der(der, len, why);
		if (!k->pkey)
			goto fail;
		if (EVP_PKEY_get_bits(k->pkey) <= 0 ||
		    (unsigned)EVP_PKEY_get_bits(k->pkey) > WS_SIG_RSA_MAX_BITS) {
			*why = "RSA modulus larger than 8192 bits";
			goto fail;
		}
		k->bits = (unsigned)EVP_PKEY_get_bits(k->pkey);
		k->sig_len = (size_t)EVP_PKEY_get_size(k->pkey);
		if (ws_rsa_ifma_available())
			ifma_precompute(k);
		break;
	case WS_SIG_ED25519:
		if (len != WS_SIG_ED25519_KEY_LEN) {
			*why = "Ed25519 key is not 32 bytes";
			goto fail;
		}
		memcpy(k->ed, der, WS_SIG_ED25519_KEY_LEN);
		k->bits = 256;
		k->sig_len = WS_SIG_ED25519_SIG_LEN;
		break;
	default:
		*why = "unknown key algorithm";
		goto fail;
	}
	*out = k;
	return 0;
fail:
	ws_pubkey_free(k);
	return -1;
}

void
ws_pubkey_free(struct ws_pubkey *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < 2; i++) {
		struct ctx_node *n = k->free_ctx[i];
		while (n) {
			struct ctx_node *next = n->next;
			EVP_PKEY_CTX_free(n->ctx);
			free(n);
			n = next;
		}
	}
	pthread_mutex_destroy(&k->lock);
	ws_rsa_ifma_key_free(k->ifma);
	EVP_PKEY_free(k->pkey);
	free(k);
}

enum ws_sig_alg
ws_pubkey_alg(const struct ws_pubkey *k)
{
	return k->alg;
}

unsigned
ws_pubkey_bits(const struct ws_pubkey *k)
{
	return k->bits;
}

bool
ws_pubkey_batch_ifma(const struct ws_pubkey *k)
{
	return k->ifma != NULL;
}

/* ---- verify ------------------------------------------------------------ */

/* A context ready for EVP_PKEY_verify with this key and digest. */
static struct ctx_node *
ctx_node_new(EVP_PKEY *pkey, enum ws_hash_alg halg)
{
	const EVP_MD *md = ws_hash_evp_md(halg);
	struct ctx_node *n = calloc(1, sizeof(*n));
	if (!n || !md)
		goto fail;
	n->ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (!n->ctx)
		goto fail;
	if (EVP_PKEY_verify_init(n->ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(n->ctx, RSA_PKCS1_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_signature_md(n->ctx, md) <= 0)
		goto fail;
	return n;
fail:
	if (n)
		EVP_PKEY_CTX_free(n->ctx);
	free(n);
	ERR_clear_error();
	return NULL;
}

static int
verify_rsa(const struct ws_pubkey *ck, enum ws_hash_alg halg, const uint8_t *digest,
           size_t digest_len, const uint8_t *sig, size_t sig_len)
{
	/* The pool is the one mutable part of a key (see struct ws_pubkey). */
	struct ws_pubkey *k = (struct ws_pubkey *)(uintptr_t)ck;
	struct ctx_node *n;

	/* A signature of another length cannot be valid; OpenSSL would say
	 * the same after pushing an error. */
	if (sig_len != k->sig_len)
		return 0;
	pthread_mutex_lock(&k->lock);
	n = k->free_ctx[halg];
	if (n)
		k->free_ctx[halg] = n->next;
	pthread_mutex_unlock(&k->lock);
	if (!n) {
		n = ctx_node_new(k->pkey, halg);
		if (!n)
			return -1;
	}
	int r = EVP_PKEY_verify(n->ctx, sig, sig_len, digest, digest_len);
	/* r <= 0 after a successful init is a signature that does not check
	 * (bad padding, value >= modulus): invalid, not "cannot check". */
	if (r != 1)
		ERR_clear_error();
	pthread_mutex_lock(&k->lock);
	n->next = k->free_ctx[halg];
	k->free_ctx[halg] = n;
	pthread_mutex_unlock(&k->lock);
	return r == 1 ? 1 : 0;
}

int
ws_sig_verify(const struct ws_pubkey *k, enum ws_hash_alg halg, const uint8_t *digest,
              size_t digest_len, const uint8_t *sig, size_t sig_len)
{
	size_t want = ws_hash_len(halg);
	if (!k || !digest || want == 0 || digest_len != want || (!sig && sig_len > 0))
		return -1;
	switch (k->alg) {
	case WS_SIG_RSA:
		return verify_rsa(k, halg, digest, digest_len, sig, sig_len);
	case WS_SIG_ED25519:
		if (halg != WS_HASH_SHA256)
			return -1;
		if (sig_len != WS_SIG_ED25519_SIG_LEN)
			return 0;
		if (!sodium_ready())
			return -1;
		/* RFC 8463: PureEdDSA whose "message" is the SHA-256 digest. */
		return crypto_sign_verify_detached(sig, digest, digest_len, k->ed) == 0 ? 1 : 0;
	}
	return -1;
}

/* Process-wide; read once per batch. */
static atomic_int sig_backend = WS_SIG_BACKEND_AUTO;

enum ws_sig_backend
ws_sig_set_backend(enum ws_sig_backend b)
{
	return (enum ws_sig_backend)atomic_exchange(&sig_backend, (int)b);
}

/* A job rsa_ifma can answer exactly as ws_sig_verify would: arguments
 * ws_sig_verify accepts, the right signature length, a key with the
 * precomputation. Everything else goes through ws_sig_verify. */
static bool
ifma_eligible(const struct ws_verify_job *j)
{
	const struct ws_pubkey *k = j->key;
	return k && k->alg == WS_SIG_RSA && k->ifma && j->digest &&
	       (j->halg == WS_HASH_SHA1 || j->halg == WS_HASH_SHA256) &&
	       j->digest_len == ws_hash_len(j->halg) && j->sig && j->sig_len == k->sig_len;
}

struct ifma_group {
	unsigned count;
	size_t idx[WS_RSA_IFMA_LANES];
};

static void
verify_one(struct ws_verify_job *j)
{
	j->result = ws_sig_verify(j->key, j->halg, j->digest, j->digest_len, j->sig, j->sig_len);
}

static void
run_group(struct ws_verify_job *jobs, struct ifma_group *g)
{
	struct ws_rsa_ifma_job ij[WS_RSA_IFMA_LANES];
	for (unsigned i = 0; i < g->count; i++) {
		const struct ws_verify_job *j = &jobs[g->idx[i]];
		ij[i] = (struct ws_rsa_ifma_job){.key = j->key->ifma,
		                                 .halg = j->halg,
		                                 .digest = j->digest,
		                                 .sig = j->sig};
	}
	if (ws_rsa_ifma_verify(ij, g->count) == 0) {
		for (unsigned i = 0; i < g->count; i++)
			jobs[g->idx[i]].result = ij[i].result;
	} else {
		/* Cannot happen for eligible jobs; OpenSSL still answers. */
		for (unsigned i = 0; i < g->count; i++)
			verify_one(&jobs[g->idx[i]]);
	}
	g->count = 0;
}

/* RSA jobs with e = 65537 are grouped by modulus limb count and run 8 at a
 * time in the lanes of rsa_ifma; a group left short at the end runs there
 * too when it has at least WS_SIG_IFMA_MIN_JOBS(_BIG) jobs (below that
 * OpenSSL's one-at-a-time verifies cost less than one 8-lane run, which
 * costs the same for 1 job as for 8). */
void
ws_sig_verify_batch(struct ws_verify_job *jobs, size_t n)
{
	struct ifma_group groups[WS_RSA_IFMA_MAX_LIMBS + 1];
	bool ifma = atomic_load(&sig_backend) == WS_SIG_BACKEND_AUTO && ws_rsa_ifma_available();

	if (!jobs)
		return;
	if (ifma) {
		for (size_t i = 0; i <= WS_RSA_IFMA_MAX_LIMBS; i++)
			groups[i].count = 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct ws_verify_job *j = &jobs[i];
		if (!ifma || !ifma_eligible(j)) {
			verify_one(j);
			continue;
		}
		struct ifma_group *g = &groups[ws_rsa_ifma_key_limbs(j->key->ifma)];
		g->idx[g->count++] = i;
		if (g->count == WS_RSA_IFMA_LANES)
			run_group(jobs, g);
	}
	if (!ifma)
		return;
	for (size_t l = 0; l <= WS_RSA_IFMA_MAX_LIMBS; l++) {
		struct ifma_group *g = &groups[l];
		unsigned min = l > WS_SIG_IFMA_BIG_LIMBS ? WS_SIG_IFMA_MIN_JOBS_BIG
		                                         : WS_SIG_IFMA_MIN_JOBS;
		if (g->count > 0 && g->count >= min) {
			run_group(jobs, g);
			continue;
		}
		for (unsigned i = 0; i < g->count; i++)
			verify_one(&jobs[g->idx[i]]);
		g->count = 0;
	}
}

/* ---- private keys and signing ------------------------------------------ */

/* Never prompt for a passphrase: an encrypted key is refused. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

int
ws_privkey_load_pem(const char *pem, size_t len, struct ws_privkey **out, const char **why)
{
	const char *dummy;
	struct ws_privkey *k = NULL;
	BIO *bio = NULL;
	if (!why)
		why = &dummy;
	*out = NULL;
	if (!pem || len == 0 || len > INT_MAX) {
		*why = "no PEM data";
		return -1;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		*why = "out of memory";
		return -1;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio) {
		*why = "out of memory";
		goto fail;
	}
	k->pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (!k->pkey) {
		*why = "not a PEM private key (or an encrypted one)";
		goto fail;
	}
	switch (EVP_PKEY_get_base_id(k->pkey)) {
	case EVP_PKEY_RSA:
		k->alg = WS_SIG_RSA;
		if ((unsigned)EVP_PKEY_get_bits(k->pkey) > WS_SIG_RSA_MAX_BITS) {
			*why = "RSA modulus larger than 8192 bits";
			goto fail;
		}
		break;
	case EVP_PKEY_ED25519:
		k->alg = WS_SIG_ED25519;
		break;
	default:
		*why = "private key is neither RSA nor Ed25519";
		goto fail;
	}
	k->bits = (unsigned)EVP_PKEY_get_bits(k->pkey);
	BIO_free(bio);
	*out = k;
	return 0;
fail:
	BIO_free(bio);
	ws_privkey_free(k);
	ERR_clear_error();
	return -1;
}

void
ws_privkey_free(struct ws_privkey *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

enum ws_sig_alg
ws_privkey_alg(const struct ws_privkey *k)
{
	return k->alg;
}

unsigned
ws_privkey_bits(const struct ws_privkey *k)
{
	return k->bits;
}

size_t
ws_privkey_public(const struct ws_privkey *k, uint8_t *out, size_t cap)
{
	if (k->alg == WS_SIG_ED25519) {
		size_t len = WS_SIG_ED25519_KEY_LEN;
		if (cap < len || !EVP_PKEY_get_raw_public_key(k->pkey, out, &len) ||
		    len != WS_SIG_ED25519_KEY_LEN) {
			ERR_clear_error();
			return 0;
		}
		return len;
	}
	int need = i2d_PUBKEY(k->pkey, NULL);
	if (need <= 0 || (size_t)need > cap) {
		ERR_clear_error();
		return 0;
	}
	unsigned char *p = out;
	int got = i2d_PUBKEY(k->pkey, &p);
	if (got != need) {
		ERR_clear_error();
		return 0;
	}
	return (size_t)got;
}

static size_t
sign_rsa(const struct ws_privkey *k, enum ws_hash_alg halg, const uint8_t *digest,
         size_t digest_len, uint8_t *sig, size_t cap)
{
	const EVP_MD *md = ws_hash_evp_md(halg);
	size_t len = 0;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	if (!ctx || !md)
		goto fail;
	if (EVP_PKEY_sign_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0)
		goto fail;
	if (EVP_PKEY_sign(ctx, NULL, &len, digest, digest_len) <= 0 || len > cap)
		goto fail;
	if (EVP_PKEY_sign(ctx, sig, &len, digest, digest_len) <= 0)
		goto fail;
	EVP_PKEY_CTX_free(ctx);
	return len;
fail:
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return 0;
}

static size_t
sign_ed25519(const struct ws_privkey *k, const uint8_t *digest, size_t digest_len, uint8_t *sig,
             size_t cap)
{
	size_t len = WS_SIG_ED25519_SIG_LEN;
	EVP_MD_CTX *mctx = NULL;
	if (cap < WS_SIG_ED25519_SIG_LEN)
		return 0;
	mctx = EVP_MD_CTX_new();
	/* Ed25519 is one-shot and digest-less in OpenSSL: NULL md, and the
	 * "message" is the digest bytes (RFC 8463). */
	if (!mctx || EVP_DigestSignInit(mctx, NULL, NULL, NULL, k->pkey) <= 0 ||
	    EVP_DigestSign(mctx, sig, &len, digest, digest_len) <= 0)
		len = 0;
	EVP_MD_CTX_free(mctx);
	if (len == 0)
		ERR_clear_error();
	return len;
}

size_t
ws_sig_sign(const struct ws_privkey *k, enum ws_hash_alg halg, const uint8_t *digest,
            size_t digest_len, uint8_t *sig, size_t cap)
{
	size_t want = ws_hash_len(halg);
	if (!k || !digest || !sig || want == 0 || digest_len != want)
		return 0;
	switch (k->alg) {
	case WS_SIG_RSA:
		return sign_rsa(k, halg, digest, digest_len, sig, cap);
	case WS_SIG_ED25519:
		if (halg != WS_HASH_SHA256)
			return 0;
		return sign_ed25519(k, digest, digest_len, sig, cap);
	}
	return 0;
}
