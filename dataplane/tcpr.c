/* tcpr: TCP reassembly of one direction; the policy is written in tcpr.h. */
#include "tcpr.h"

#include <stdlib.h>
#include <string.h>

void
tcpr_init(struct tcpr *t, uint32_t memcap)
{
	memset(t, 0, sizeof(*t));
	if (memcap == 0)
		memcap = TCPR_MEMCAP_DEFAULT;
	if (memcap > TCPR_MEMCAP_MAX)
		memcap = TCPR_MEMCAP_MAX;
	uint32_t m = 1;
	while (m < memcap)
		m <<= 1;
	t->memcap = m;
}

void
tcpr_free(struct tcpr *t)
{
	if (t->hold) {
		free(t->hold->ring);
		free(t->hold);
		t->hold = NULL;
	}
	t->ended = true;
}

void
tcpr_trim(struct tcpr *t)
{
	if (t->hold && t->hold->n == 0) {
		free(t->hold->ring);
		free(t->hold);
		t->hold = NULL;
	}
}

uint64_t
tcpr_held(const struct tcpr *t)
{
	uint64_t n = 0;
	if (t->hold)
		for (uint32_t i = 0; i < t->hold->n; i++)
			n += t->hold->r[i].end - t->hold->r[i].start;
	return n;
}

static void
deliver(struct tcpr *t, const struct tcpr_sink *sink, const uint8_t *p, size_t len)
{
	if (len == 0)
		return;
	t->next += len;
	t->c.delivered += len;
	sink->data(sink->arg, p, len);
}

static void
gap(struct tcpr *t, const struct tcpr_sink *sink, uint64_t len)
{
	if (len == 0)
		return;
	t->next += len;
	t->c.gaps++;
	t->c.gap_bytes += len;
	sink->gap(sink->arg, len);
}

static void
check_fin(struct tcpr *t, const struct tcpr_sink *sink)
{
	if (t->fin && !t->ended && t->next >= t->fin_off) {
		t->ended = true;
		sink->end(sink->arg, TCPR_END_FIN);
	}
}

/* Deliver held bytes [t->next, t->next + len) from the ring (it wraps once
 * at most, since everything held lies within memcap of the delivery point). */
static void
ring_deliver(struct tcpr *t, const struct tcpr_sink *sink, uint64_t len)
{
	uint32_t mask = t->memcap - 1;
	while (len > 0) {
		size_t at = (size_t)(t->next & mask);
		size_t k = t->memcap - at;
		if (k > len)
			k = (size_t)len;
		deliver(t, sink, t->hold->ring + at, k);
		len -= k;
	}
}

static void
ring_write(struct tcpr *t, uint64_t off, const uint8_t *p, size_t len)
{
	uint32_t mask = t->memcap - 1;
	while (len > 0) {
		size_t at = (size_t)(off & mask);
		size_t k = t->memcap - at;
		if (k > len)
			k = len;
		memcpy(t->hold->ring + at, p, k);
		p += k;
		off += k;
		len -= k;
	}
}

static bool
ring_differs(const struct tcpr *t, uint64_t off, const uint8_t *p, size_t len)
{
	uint32_t mask = t->memcap - 1;
	while (len > 0) {
		size_t at = (size_t)(off & mask);
		size_t k = t->memcap - at;
		if (k > len)
			k = len;
		if (memcmp(t->hold->ring + at, p, k) != 0)
			return true;
		p += k;
		off += k;
		len -= k;
	}
	return false;
}

static void
pop_range(struct tcpr_hold *h)
{
	memmove(&h->r[0], &h->r[1], (h->n - 1) * sizeof(h->r[0]));
	h->n--;
}

/* Held ranges that start at the delivery point go out. */
static void
drain(struct tcpr *t, const struct tcpr_sink *sink)
{
	while (t->hold && t->hold->n > 0 && t->hold->r[0].start == t->next) {
		uint64_t len = t->hold->r[0].end - t->hold->r[0].start;
		pop_range(t->hold);
		ring_deliver(t, sink, len);
	}
}

/* Everything held goes out, with a gap before each range that does not
 * start at the delivery point. */
static void
flush_held(struct tcpr *t, const struct tcpr_sink *sink)
{
	while (t->hold && t->hold->n > 0) {
		struct tcpr_range r = t->hold->r[0];
		pop_range(t->hold);
		if (r.start > t->next)
			gap(t, sink, r.start - t->next);
		ring_deliver(t, sink, r.end - r.start);
	}
}

/* A segment starting at the delivery point. Where it meets held bytes, the
 * held ones are delivered (first data wins) and the segment's copy only
 * compared. */
static void
merge_deliver(struct tcpr *t, const struct tcpr_sink *sink, const uint8_t *p, size_t len,
	      bool *overlap, bool *differ)
{
	while (len > 0) {
		if (t->hold && t->hold->n > 0 && t->hold->r[0].start == t->next) {
			uint64_t rl = t->hold->r[0].end - t->hold->r[0].start;
			size_t k = rl < len ? (size_t)rl : len;
			*overlap = true;
			if (ring_differs(t, t->next, p, k))
				*differ = true;
			pop_range(t->hold);
			ring_deliver(t, sink, rl);
			p += k;
			len -= k;
			continue;
		}
		size_t k = len;
		if (t->hold && t->hold->n > 0 && t->hold->r[0].start - t->next < k)
			k = (size_t)(t->hold->r[0].start - t->next);
		deliver(t, sink, p, k);
		p += k;
		len -= k;
	}
	drain(t, sink);
}

/* The ring cannot take this segment: skip ahead to it (see tcpr.h). */
static void
skip_ahead(struct tcpr *t, const struct tcpr_sink *sink, uint64_t off, const uint8_t *p,
	   size_t len)
{
	t->c.memcap_skips++;
	flush_held(t, sink);
	if (off < t->next) {
		uint64_t skip = t->next - off;
		if (skip >= len)
			return;
		p += skip;
		len -= (size_t)skip;
		off = t->next;
	}
	gap(t, sink, off - t->next);
	deliver(t, sink, p, len);
}

static bool
ensure_hold(struct tcpr *t)
{
	if (t->hold)
		return true;
	struct tcpr_hold *h = calloc(1, sizeof(*h));
	uint8_t *ring = malloc(t->memcap);
	if (!h || !ring) {
		free(h);
		free(ring);
		t->c.alloc_fail++;
		return false;
	}
	h->ring = ring;
	t->hold = h;
	return true;
}

/* A segment starting past the delivery point: kept in the ring, filling only
 * what no earlier copy covers. */
static void
hold_insert(struct tcpr *t, const struct tcpr_sink *sink, uint64_t off, const uint8_t *p,
	    size_t len, bool *overlap, bool *differ)
{
	uint64_t end = off + len;
	if (end - t->next > t->memcap || !ensure_hold(t)) {
		skip_ahead(t, sink, off, p, len);
		return;
	}
	struct tcpr_hold *h = t->hold;
	/* ranges touching [off, end) (overlapping or adjacent) merge into one */
	uint32_t first = 0;
	while (first < h->n && h->r[first].end < off)
		first++;
	uint32_t last = first;
	while (last < h->n && h->r[last].start <= end)
		last++;
	uint32_t merged = last - first;
	if (h->n - merged + 1 > TCPR_MAX_RANGES) {
		skip_ahead(t, sink, off, p, len);
		return;
	}
	/* write the holes, compare the covered parts */
	uint64_t pos = off;
	for (uint32_t i = first; i < last && pos < end; i++) {
		const struct tcpr_range *r = &h->r[i];
		if (r->start > pos) {
			uint64_t hole_end = r->start < end ? r->start : end;
			ring_write(t, pos, p + (pos - off), (size_t)(hole_end - pos));
			pos = hole_end;
		}
		if (pos >= end)
			break;
		if (r->end > pos) {
			uint64_t cov_end = r->end < end ? r->end : end;
			*overlap = true;
			if (ring_differs(t, pos, p + (pos - off), (size_t)(cov_end - pos)))
				*differ = true;
			pos = cov_end;
		}
	}
	if (pos < end)
		ring_write(t, pos, p + (pos - off), (size_t)(end - pos));
	struct tcpr_range nr = {off, end};
	if (merged > 0) {
		if (h->r[first].start < nr.start)
			nr.start = h->r[first].start;
		if (h->r[last - 1].end > nr.end)
			nr.end = h->r[last - 1].end;
	}
	memmove(&h->r[first + 1], &h->r[last], (h->n - last) * sizeof(h->r[0]));
	h->r[first] = nr;
	h->n = h->n - merged + 1;
	t->c.out_of_order++;
}

void
tcpr_segment(struct tcpr *t, uint32_t seq, uint8_t flags, const uint8_t *p, size_t len,
	     const struct tcpr_sink *sink)
{
	t->c.segments++;
	t->c.bytes += len;
	if (t->ended)
		return;
	if (!t->started) {
		if (flags & TCPR_SYN) {
			t->isn = seq + 1;
		} else if (len > 0 || (flags & TCPR_FIN)) {
			t->isn = seq;
			t->midstream = true;
		} else {
			if (flags & TCPR_RST) {
				t->ended = true;
				sink->end(sink->arg, TCPR_END_RST);
			}
			return;
		}
		t->started = true;
	}
	if (flags & TCPR_SYN)
		seq++; /* the SYN takes one sequence number; data (TFO) follows it */
	if (flags & TCPR_RST) {
		flush_held(t, sink);
		t->ended = true;
		sink->end(sink->arg, TCPR_END_RST);
		return;
	}
	int32_t rel = (int32_t)(seq - (uint32_t)(t->isn + (uint32_t)t->next));
	if (rel > 0 && (uint32_t)rel > TCPR_MAX_AHEAD) {
		t->c.too_far++;
		return;
	}
	if (len > 0) {
		bool overlap = false, differ = false;
		const uint8_t *q = p;
		size_t n = len;
		if (rel < 0) {
			uint64_t old = (uint64_t)(-(int64_t)rel);
			if (old >= n) {
				t->c.retransmits++;
				n = 0;
			} else {
				overlap = true;
				q += old;
				n -= (size_t)old;
			}
		}
		if (n > 0) {
			if (rel <= 0)
				merge_deliver(t, sink, q, n, &overlap, &differ);
			else
				hold_insert(t, sink, t->next + (uint64_t)rel, q, n, &overlap, &differ);
		}
		t->c.overlaps += overlap;
		t->c.overlaps_differ += differ;
	}
	if ((flags & TCPR_FIN) && !t->fin) {
		/* the FIN's sequence number, relative to where delivery is now */
		int32_t d = (int32_t)(seq + (uint32_t)len - (uint32_t)(t->isn + (uint32_t)t->next));
		t->fin = true;
		t->fin_off = d <= 0 ? t->next : t->next + (uint64_t)d;
	}
	check_fin(t, sink);
}

void
tcpr_flush(struct tcpr *t, const struct tcpr_sink *sink)
{
	if (t->ended)
		return;
	flush_held(t, sink);
	if (t->fin && t->next < t->fin_off)
		gap(t, sink, t->fin_off - t->next);
	check_fin(t, sink);
}
