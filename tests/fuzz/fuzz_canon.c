/* Body canonicalisation: the digest is the same whatever the split, and the
 * SIMD scanner agrees with the scalar reference. First byte: bit 0 the
 * algorithm, the rest seeds the chunk sizes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "hash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
digest(enum canon_alg alg, const uint8_t *d, size_t n, unsigned seed, int scalar, uint8_t out[32],
       uint64_t *total)
{
	static struct canon_body cb;
	struct ws_hash *h = ws_hash_new(WS_HASH_SHA256);
	if (!h)
		abort();
	canon_body_init(&cb, alg, CANON_NO_LIMIT, h);
	if (scalar)
		canon_body_force_scalar(&cb);
	for (size_t off = 0; off < n;) {
		size_t k = seed ? 1 + (seed = seed * 1103515245u + 12345u) % 7 : n;
		if (k > n - off)
			k = n - off;
		canon_body_update(&cb, d + off, k);
		off += k;
	}
	canon_body_final(&cb);
	ws_hash_final(h, out);
	*total = cb.total;
	ws_hash_free(h);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum canon_alg alg = data[0] & 1 ? CANON_RELAXED : CANON_SIMPLE;
	uint8_t a[32], b[32], c[32];
	uint64_t ta, tb, tc;
	digest(alg, data + 1, size - 1, 0, 0, a, &ta);
	digest(alg, data + 1, size - 1, (data[0] >> 1) | 1u, 0, b, &tb);
	digest(alg, data + 1, size - 1, 0, 1, c, &tc);
	if (ta != tb || memcmp(a, b, 32) != 0 || ta != tc || memcmp(a, c, 32) != 0)
		abort();
	/* header canonicalisation never writes past len + 2 */
	char *out = malloc(size + 2);
	if (!out)
		return 0;
	size_t n = canon_header(alg, (const char *)data, size, true, out, size + 2);
	if (n == (size_t)-1 || n > size + 2)
		abort();
	free(out);
	return 0;
}
