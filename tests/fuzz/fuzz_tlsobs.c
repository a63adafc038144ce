/* tlsobs: never crashes, and its facts do not depend on how the bytes were
 * split. Input: byte 0 seeds the split; then records [kind][len_hi][len_lo]
 * [len bytes]: kind bit 0 = server side, bit 1 = a gap of len bytes. Both
 * results, and the chain's certificates, are compared after each run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsobs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
run(const uint8_t *d, size_t n, unsigned seed, struct tlsobs *t)
{
	tlsobs_init(t, 0, 0);
	size_t i = 0;
	while (i + 3 <= n) {
		uint8_t kind = d[i];
		size_t len = (size_t)d[i + 1] << 8 | d[i + 2];
		i += 3;
		enum tlsobs_dir dir = (kind & 1) ? TLSOBS_S2C : TLSOBS_C2S;
		if (kind & 2) {
			tlsobs_gap(t, dir, len);
			continue;
		}
		if (len > n - i)
			len = n - i;
		for (size_t off = 0; off < len;) {
			size_t k = seed ? 1 + (seed = seed * 1103515245u + 12345u) % 23 : len - off;
			if (k > len - off)
				k = len - off;
			tlsobs_feed(t, dir, d + i + off, k);
			off += k;
		}
		i += len;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static struct tlsobs a, b;
	run(data + 1, size - 1, 0, &a);
	run(data + 1, size - 1, data[0] | 1u, &b);
	const struct tlsobs_facts *fa = tlsobs_facts(&a), *fb = tlsobs_facts(&b);
	if (memcmp(fa, fb, sizeof(*fa)) != 0)
		abort();
	for (unsigned k = 0; k < fa->ncerts; k++)
		if (memcmp(tlsobs_chain(&a) + fa->cert[k].off, tlsobs_chain(&b) + fb->cert[k].off,
			   fa->cert[k].len) != 0)
			abort();
	tlsobs_free(&a);
	tlsobs_free(&b);
	return 0;
}
