/*
 * ws_sig: public-key signatures for DKIM/ARC (RFC 6376, RFC 8301, RFC 8463).
 *
 *  - RSA PKCS#1 v1.5 with SHA-256 or SHA-1, through OpenSSL 3 EVP;
 *  - Ed25519 (PureEdDSA over the 32-byte SHA-256 digest, RFC 8463), verified
 *    with libsodium (1.7x OpenSSL 3.0 verifies/s here, bench-crypto) and
 *    signed with OpenSSL;
 *    OpenSSL is the reference it is tested against.
 * Every verify function takes the digest, never the message.
 *
 * Public keys are parsed once into immutable objects (parsing an RSA key
 * costs several verifies): callers cache them. A struct ws_pubkey may be used
 * by many threads at once (an RSA key keeps a mutex-guarded pool of ready
 * verify contexts, one per concurrent verifier, so a verify allocates only on
 * first use); it is freed by its owner when nobody uses it.
 * Nothing here prints or exits; errors come back as a static reason string.
 */
#ifndef WS_CRYPTO_SIG_H
#define WS_CRYPTO_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hash.h"

enum ws_sig_alg {
	WS_SIG_RSA,
	WS_SIG_ED25519,
};

/* Largest RSA modulus we accept (DKIM abuse limit), and signature buffer. */
#define WS_SIG_RSA_MAX_BITS 8192u
#define WS_SIG_MAX_LEN (WS_SIG_RSA_MAX_BITS / 8)
#define WS_SIG_ED25519_KEY_LEN 32u
#define WS_SIG_ED25519_SIG_LEN 64u

struct ws_pubkey;

/*
 * Parse a public key as DKIM key records carry it (p= after base64):
 *  - WS_SIG_RSA: DER SubjectPublicKeyInfo, or a bare DER RSAPublicKey
 *    (PKCS#1; some signers publish that); modulus above WS_SIG_RSA_MAX_BITS
 *    is refused;
 *  - WS_SIG_ED25519: exactly 32 raw bytes.
 * Returns 0 and *out, or -1 with *why set ("malformed RSA key", ...).
 */
int ws_pubkey_parse(enum ws_sig_alg alg, const uint8_t *der, size_t len, struct ws_pubkey **out,
		    const char **why);
void ws_pubkey_free(struct ws_pubkey *k); /* NULL-safe */
enum ws_sig_alg ws_pubkey_alg(const struct ws_pubkey *k);
/* Modulus size for RSA, 256 for Ed25519. */
unsigned ws_pubkey_bits(const struct ws_pubkey *k);
/* The key carries the AVX-512 IFMA precomputation ws_sig_verify_batch uses
 * (RSA, e = 65537, 1024..4158 bits, on a CPU with IFMA). */
bool ws_pubkey_batch_ifma(const struct ws_pubkey *k);

/* 1 = valid, 0 = invalid signature, -1 = cannot check (bad arguments,
 * backend failure). For Ed25519 halg must be SHA-256. */
int ws_sig_verify(const struct ws_pubkey *k, enum ws_hash_alg halg, const uint8_t *digest,
		  size_t digest_len, const uint8_t *sig, size_t sig_len);

struct ws_verify_job {
	const struct ws_pubkey *key; /* in */
	enum ws_hash_alg halg;       /* in */
	const uint8_t *digest;       /* in */
	size_t digest_len;           /* in */
	const uint8_t *sig;          /* in */
	size_t sig_len;              /* in */
	int result;                  /* out: as ws_sig_verify */
};

/* Verify n independent jobs; each result equals what ws_sig_verify gives for
 * that job alone. RSA jobs whose key has e = 65537 and a 1024..4158-bit
 * modulus run 8 at a time on AVX-512 IFMA (rsa_ifma.h) when the CPU has it,
 * grouped by modulus limb count; a group left short runs there when it has
 * at least WS_SIG_IFMA_MIN_JOBS jobs (WS_SIG_IFMA_MIN_JOBS_BIG for moduli of
 * more than WS_SIG_IFMA_BIG_LIMBS 52-bit limbs, i.e. above 3118 bits): the
 * measured break-even against OpenSSL, bench-crypto. Every other job goes
 * through ws_sig_verify. */
void ws_sig_verify_batch(struct ws_verify_job *jobs, size_t n);
#define WS_SIG_IFMA_MIN_JOBS 2u
#define WS_SIG_IFMA_MIN_JOBS_BIG 3u
#define WS_SIG_IFMA_BIG_LIMBS 60u

/* Which code ws_sig_verify_batch may use, process-wide (tests and A/B
 * benchmarks force OpenSSL); returns the previous setting. Set it while no
 * batch runs. */
enum ws_sig_backend {
	WS_SIG_BACKEND_AUTO,    /* IFMA where it applies, else OpenSSL/libsodium */
	WS_SIG_BACKEND_OPENSSL, /* every job through ws_sig_verify */
};
enum ws_sig_backend ws_sig_set_backend(enum ws_sig_backend b);

/* ---- signing -------------------------------------------------------- */

struct ws_privkey;

/* PEM: PKCS#1 "RSA PRIVATE KEY", PKCS#8 "PRIVATE KEY" (RSA or Ed25519).
 * Returns 0 and *out, or -1 with *why. */
int ws_privkey_load_pem(const char *pem, size_t len, struct ws_privkey **out, const char **why);
void ws_privkey_free(struct ws_privkey *k); /* NULL-safe */
enum ws_sig_alg ws_privkey_alg(const struct ws_privkey *k);
unsigned ws_privkey_bits(const struct ws_privkey *k);
/* The matching public key as a DKIM key record's p= carries it (DER SPKI for
 * RSA, 32 raw bytes for Ed25519), written to out; returns its length, 0 when
 * cap is too small or on failure. */
size_t ws_privkey_public(const struct ws_privkey *k, uint8_t *out, size_t cap);
/* Sign a digest. Returns the signature length written to sig (at most cap),
 * 0 on failure. Ed25519 needs halg SHA-256. */
size_t ws_sig_sign(const struct ws_privkey *k, enum ws_hash_alg halg, const uint8_t *digest,
		   size_t digest_len, uint8_t *sig, size_t cap);

#endif
