/* ws_hash: incremental and one-shot digests on OpenSSL 3 EVP. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "hash.h"
#include "hash_evp.h"

/* Explicit fetch once per process: EVP_DigestInit_ex with a legacy EVP_MD
 * (EVP_sha256()) fetches implicitly on every init, ~0.5 us each time. */
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_table[2];

static void
md_fetch_all(void)
{
	md_table[WS_HASH_SHA1] = EVP_MD_fetch(NULL, "SHA1", NULL);
	md_table[WS_HASH_SHA256] = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

const EVP_MD *
ws_hash_evp_md(enum ws_hash_alg alg)
{
	if (alg != WS_HASH_SHA1 && alg != WS_HASH_SHA256)
		return NULL;
	if (pthread_once(&md_once, md_fetch_all) != 0)
		return NULL;
	return md_table[alg];
}

size_t
ws_hash_len(enum ws_hash_alg alg)
{
	switch (alg) {
	case WS_HASH_SHA1:
		return 20;
	case WS_HASH_SHA256:
		return 32;
	}
	return 0;
}

const char *
ws_hash_name(enum ws_hash_alg alg)
{
	switch (alg) {
	case WS_HASH_SHA1:
		return "sha1";
	case WS_HASH_SHA256:
		return "sha256";
	}
	return NULL;
}

size_t
ws_hash_evp_digest(EVP_MD_CTX *ctx, enum ws_hash_alg alg, const void *data, size_t len,
                   uint8_t out[WS_HASH_MAX_LEN])
{
	const EVP_MD *md = ws_hash_evp_md(alg);
	unsigned int olen = 0;
	if (!md || !EVP_DigestInit_ex2(ctx, md, NULL))
		return 0;
	if (len > 0 && !EVP_DigestUpdate(ctx, data, len))
		return 0;
	if (!EVP_DigestFinal_ex(ctx, out, &olen))
		return 0;
	return olen;
}

struct ws_hash {
	EVP_MD_CTX *ctx;
	enum ws_hash_alg alg;
	/* false after a failed init/update: final then reports failure instead
	 * of a digest of part of the input. */
	bool ok;
};

struct ws_hash *
ws_hash_new(enum ws_hash_alg alg)
{
	struct ws_hash *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx)
		goto fail;
	if (ws_hash_reset(h, alg) != 0)
		goto fail;
	return h;
fail:
	ws_hash_free(h);
	return NULL;
}

int
ws_hash_reset(struct ws_hash *h, enum ws_hash_alg alg)
{
	const EVP_MD *md = ws_hash_evp_md(alg);
	h->alg = alg;
	h->ok = md != NULL && EVP_DigestInit_ex2(h->ctx, md, NULL) == 1;
	return h->ok ? 0 : -1;
}

void
ws_hash_update(struct ws_hash *h, const void *data, size_t len)
{
	if (!h->ok || len == 0)
		return;
	if (!EVP_DigestUpdate(h->ctx, data, len))
		h->ok = false;
}

size_t
ws_hash_final(struct ws_hash *h, uint8_t out[WS_HASH_MAX_LEN])
{
	unsigned int olen = 0;
	if (!h->ok)
		return 0;
	/* Whatever happens, the object needs a reset before further use. */
	h->ok = false;
	if (!EVP_DigestFinal_ex(h->ctx, out, &olen))
		return 0;
	return olen;
}

void
ws_hash_free(struct ws_hash *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

size_t
ws_hash_oneshot(enum ws_hash_alg alg, const void *data, size_t len, uint8_t out[WS_HASH_MAX_LEN])
{
	const EVP_MD *md = ws_hash_evp_md(alg);
	unsigned int olen = 0;
	if (!md)
		return 0;
	/* EVP_Digest allocates and frees its own context: one malloc pair,
	 * no fetch, since md is already a fetched object. */
	if (!EVP_Digest(data, len, out, &olen, md, NULL))
		return 0;
	return olen;
}
