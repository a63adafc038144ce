/*
 * Internal to crypto/: the process-wide EVP_MD of each ws_hash_alg, fetched
 * once (pthread_once) and never freed, shared by hash.c, hash_mb.c, sig.c.
 * Thread-safe: the objects are immutable after the fetch.
 */
#ifndef WS_CRYPTO_HASH_EVP_H
#define WS_CRYPTO_HASH_EVP_H

#include <openssl/evp.h>

#include "hash.h"

/* NULL for an unknown algorithm or when the provider lacks the digest. */
const EVP_MD *ws_hash_evp_md(enum ws_hash_alg alg);

/* Digest data into out with ctx (reused, caller-owned); returns the digest
 * length, 0 on failure. */
size_t ws_hash_evp_digest(EVP_MD_CTX *ctx, enum ws_hash_alg alg, const void *data, size_t len,
                          uint8_t out[WS_HASH_MAX_LEN]);

#endif
