/*
 * ws_rsa_ifma: RSA PKCS#1 v1.5 signature verification, 8 at a time, on
 * AVX-512 IFMA (vpmadd52luq/vpmadd52huq).
 *
 * Data model: a struct ws_rsa_ifma_key is the per-key precomputation for a
 * public key with e = 65537 (modulus in 52-bit limbs, -N^-1 mod 2^52,
 * R^2 mod N with R = 2^(52 * limbs)). It is made once when the key is parsed
 * and is immutable afterwards, so any number of threads may read it at once;
 * its owner frees it. A verify runs up to 8 jobs, one per 64-bit lane of a
 * zmm register, each lane with its own modulus; all keys of one call must
 * have the same limb count.
 *
 * Verification is a public operation: nothing here is constant-time. A
 * verify call needs about 40 KiB of stack.
 * Limits: moduli of WS_RSA_IFMA_MIN_BITS..WS_RSA_IFMA_MAX_BITS bits, odd,
 * e = 65537; other keys get no precomputation (the caller uses OpenSSL).
 * Nothing here prints or exits.
 */
#ifndef WS_CRYPTO_RSA_IFMA_H
#define WS_CRYPTO_RSA_IFMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/bn.h>

#include "hash.h"

#define WS_RSA_IFMA_LANES 8u
#define WS_RSA_IFMA_LIMB_BITS 52u
/* Limb count n satisfies 4N < R = 2^(52n) (the almost-Montgomery bound), so
 * n = ceil((bits + 2) / 52); 80 limbs cover 4158-bit moduli. */
#define WS_RSA_IFMA_MAX_LIMBS 80u
#define WS_RSA_IFMA_MAX_BITS (WS_RSA_IFMA_MAX_LIMBS * WS_RSA_IFMA_LIMB_BITS - 2u)
/* Below this the EMSA-PKCS1-v1_5 encoding of a SHA-256 digest may not fit
 * with its 8 bytes of padding; DKIM refuses such keys anyway. */
#define WS_RSA_IFMA_MIN_BITS 1024u

struct ws_rsa_ifma_key;

/* The CPU (and OS) run AVX-512F + IFMA; checked once, then cached. */
bool ws_rsa_ifma_available(void);

/* Precompute for modulus n and exponent e. Returns 0 and *out, 1 when the
 * key is outside what this module does (e != 65537, size, even modulus:
 * *out stays NULL), -1 on allocation or BN failure. */
int ws_rsa_ifma_key_new(const BIGNUM *n, const BIGNUM *e, struct ws_rsa_ifma_key **out);
void ws_rsa_ifma_key_free(struct ws_rsa_ifma_key *k); /* NULL-safe */
/* Limbs of the modulus (the grouping key for a verify call). */
unsigned ws_rsa_ifma_key_limbs(const struct ws_rsa_ifma_key *k);
/* Modulus bytes: the only signature length that can verify. */
size_t ws_rsa_ifma_key_len(const struct ws_rsa_ifma_key *k);

struct ws_rsa_ifma_job {
	const struct ws_rsa_ifma_key *key; /* in */
	enum ws_hash_alg halg;             /* in: SHA-1 or SHA-256 */
	const uint8_t *digest;             /* in: ws_hash_len(halg) bytes */
	const uint8_t *sig;                /* in: ws_rsa_ifma_key_len(key) bytes */
	int result;                        /* out: 1 valid, 0 invalid */
};

/*
 * Verify count (1..WS_RSA_IFMA_LANES) jobs whose keys share one limb count:
 * s = sig must be < N, and s^65537 mod N must equal, byte for byte, the
 * EMSA-PKCS1-v1_5 encoding of the digest (RFC 8017 9.2). A call for fewer
 * than 8 jobs costs as much as one for 8. Returns 0, or -1 (every result
 * left untouched) when the arguments break these rules or the CPU lacks
 * IFMA.
 */
int ws_rsa_ifma_verify(struct ws_rsa_ifma_job *jobs, size_t count);

#endif
