/* rfc5322: never crashes, and the result does not depend on the split. The
 * first byte seeds the chunk sizes; the rest is the message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rfc5322.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum rfc5322_status
run(struct rfc5322_header *h, const uint8_t *d, size_t n, unsigned seed, size_t *body)
{
	rfc5322_init(h);
	size_t off = 0;
	enum rfc5322_status st = RFC5322_NEED_MORE;
	while (off < n && st == RFC5322_NEED_MORE) {
		size_t k = seed ? 1 + (seed = seed * 1103515245u + 12345u) % 23 : n - off;
		if (k > n - off)
			k = n - off;
		size_t used;
		st = rfc5322_push(h, d + off, k, &used);
		off += used;
	}
	if (st == RFC5322_NEED_MORE)
		st = rfc5322_finish(h);
	*body = off;
	return st;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned seed = data[0] | 1u;
	struct rfc5322_header a, b;
	size_t ba, bb;
	enum rfc5322_status sa = run(&a, data + 1, size - 1, 0, &ba);
	enum rfc5322_status sb = run(&b, data + 1, size - 1, seed, &bb);
	if (sa != sb)
		abort();
	if (sa == RFC5322_DONE) {
		if (ba != bb || a.len != b.len || a.nfields != b.nfields ||
		    memcmp(a.block, b.block, a.len) != 0 ||
		    memcmp(a.fields, b.fields, a.nfields * sizeof(*a.fields)) != 0)
			abort();
		for (size_t i = 0; i < a.nfields; i++) {
			size_t vl;
			const char *v = rfc5322_field_value(&a, &a.fields[i], &vl);
			if (v < a.block || v + vl > a.block + a.len)
				abort();
		}
	} else if (a.error != b.error) {
		abort();
	}
	rfc5322_free(&a);
	rfc5322_free(&b);
	return 0;
}
