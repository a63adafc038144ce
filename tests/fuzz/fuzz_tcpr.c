/* tcpr: random segmentations of a known stream (the input after an 8-byte
 * header that seeds the segment generator, the ISN and the memcap), shuffled,
 * duplicated, with same-byte overlapping retransmissions and some segments
 * lost: what comes out equals the stream except for gap bytes, ends at the
 * FIN, and no overlap is reported as differing. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tcpr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
	const uint8_t *want;
	size_t want_len, pos;
	unsigned ends;
};

static void
on_data(void *arg, const uint8_t *p, size_t len)
{
	struct out *o = arg;
	if (len == 0 || o->pos + len > o->want_len || memcmp(o->want + o->pos, p, len) != 0)
		abort();
	o->pos += len;
}

static void
on_gap(void *arg, uint64_t len)
{
	struct out *o = arg;
	if (len == 0 || o->pos + len > o->want_len)
		abort();
	o->pos += (size_t)len;
}

static void
on_end(void *arg, enum tcpr_end how)
{
	struct out *o = arg;
	if (how != TCPR_END_FIN)
		abort();
	o->ends++;
}

static uint64_t
rnd(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

struct span {
	uint32_t off, len;
	bool lost;
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 8)
		return 0;
	uint64_t seed = 0;
	memcpy(&seed, data, 8);
	const uint8_t *stream = data + 8;
	size_t n = size - 8;
	if (n > 200000)
		return 0;
	size_t cap = n * 2 + 16;
	struct span *segs = malloc(cap * sizeof(*segs));
	if (!segs)
		return 0;
	size_t ns = 0;
	unsigned maxseg = 1 + (unsigned)(rnd(&seed) % 1500);
	for (uint32_t off = 0; off < n && ns + 2 < cap;) {
		uint32_t len = 1 + (uint32_t)(rnd(&seed) % maxseg);
		if (len > n - off)
			len = (uint32_t)(n - off);
		segs[ns++] = (struct span){off, len, rnd(&seed) % 50 == 0};
		if (rnd(&seed) % 6 == 0 && off > 0) {
			uint32_t back = 1 + (uint32_t)(rnd(&seed) % off);
			segs[ns++] = (struct span){off - back, back + len, false};
		}
		off += len;
	}
	unsigned disp = 1 + (unsigned)(rnd(&seed) % 8);
	for (size_t i = 0; i + 1 < ns; i++) {
		size_t j = i + rnd(&seed) % disp;
		if (j >= ns)
			j = ns - 1;
		struct span t = segs[i];
		segs[i] = segs[j];
		segs[j] = t;
	}
	struct tcpr t;
	tcpr_init(&t, 512u << (rnd(&seed) % 8));
	struct out o = {stream, n, 0, 0};
	struct tcpr_sink sink = {on_data, on_gap, on_end, &o};
	uint32_t isn = (uint32_t)rnd(&seed);
	tcpr_segment(&t, isn - 1, TCPR_SYN, NULL, 0, &sink);
	for (size_t i = 0; i < ns; i++) {
		if (segs[i].lost)
			continue;
		tcpr_segment(&t, isn + segs[i].off, 0, stream + segs[i].off, segs[i].len, &sink);
		if (rnd(&seed) % 9 == 0)
			tcpr_segment(&t, isn + segs[i].off, 0, stream + segs[i].off, segs[i].len, &sink);
	}
	tcpr_segment(&t, isn + (uint32_t)n, TCPR_FIN, NULL, 0, &sink);
	tcpr_flush(&t, &sink);
	if (o.pos != n || o.ends != 1 || t.c.overlaps_differ != 0 || tcpr_held(&t) != 0)
		abort();
	tcpr_free(&t);
	free(segs);
	return 0;
}
