/*
 * tcpr: one direction of a TCP connection put back in order.
 *
 * Data model: bytes are addressed by stream offset (0 = the first data byte,
 * SYN + 1, or the first segment seen on a mid-stream pickup, which is
 * flagged). Bytes at the delivery point go to the sink at once, straight from
 * the segment (no copy); bytes ahead of it wait in a ring of `memcap` bytes
 * indexed by offset, with a short sorted list of the ranges held. Delivered
 * bytes are not kept.
 *
 * Policy (written once, here):
 *  - overlaps: first data wins. A byte already held (or delivered) is never
 *    replaced; where a later copy of a held byte differs, overlaps_differ
 *    counts it (once per segment: an evasion signal). Delivered bytes are
 *    gone, so a retransmission of them is dropped and counted, not compared.
 *  - a segment starting more than TCPR_MAX_AHEAD bytes past the delivery
 *    point is dropped and counted (too_far): no real window is that large.
 *  - memcap: a segment that does not fit in the ring (ends more than memcap
 *    bytes past the delivery point), or one that would need more than
 *    TCPR_MAX_RANGES held ranges, makes the stream skip ahead: what is held
 *    is delivered with a gap event for each hole, then a gap up to the
 *    segment, which is then delivered. Counted in memcap_skips / gap_bytes.
 *  - 32-bit sequence numbers wrap; comparisons are modulo 2^32 against the
 *    delivery point.
 *  - FIN: the sink's end event comes when every byte before the FIN was
 *    delivered (or skipped by tcpr_flush). RST: what is held is flushed with
 *    gaps and the end event comes at once.
 *
 * Memory: struct tcpr is small (no buffer); the ring is allocated on the
 * first out-of-order segment and kept until tcpr_trim/tcpr_free (no allocation per
 * segment). Pure: no I/O, no clock, no globals. Not thread-safe.
 */
#ifndef WS_DATAPLANE_TCPR_H
#define WS_DATAPLANE_TCPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TCPR_MEMCAP_DEFAULT (64u * 1024)   /* out-of-order bytes held per direction */
#define TCPR_MEMCAP_MAX (16u * 1024 * 1024)
#define TCPR_MAX_AHEAD (16u * 1024 * 1024) /* farthest a segment may start past delivery */
#define TCPR_MAX_RANGES 16u                /* disjoint held ranges */

#define TCPR_FIN 0x01
#define TCPR_SYN 0x02
#define TCPR_RST 0x04

enum tcpr_end {
	TCPR_END_FIN,
	TCPR_END_RST,
};

/* Where in-order bytes go. data: the next len bytes of the stream. gap: len
 * bytes of the stream were never seen (delivery resumes after them). end:
 * the stream is over (called once). */
struct tcpr_sink {
	void (*data)(void *arg, const uint8_t *p, size_t len);
	void (*gap)(void *arg, uint64_t len);
	void (*end)(void *arg, enum tcpr_end how);
	void *arg;
};

struct tcpr_counters {
	uint64_t segments, bytes;  /* segments given, payload bytes given */
	uint64_t delivered;        /* bytes handed to the sink */
	uint64_t out_of_order;     /* segments held for later */
	uint64_t retransmits;      /* segments wholly before the delivery point */
	uint64_t overlaps;         /* segments partly covering bytes already had */
	uint64_t overlaps_differ;  /* ... with different content */
	uint64_t too_far;          /* dropped: past TCPR_MAX_AHEAD */
	uint64_t memcap_skips;     /* skip-aheads forced by memcap or TCPR_MAX_RANGES */
	uint64_t gaps, gap_bytes;  /* gap events and their total length */
	uint64_t alloc_fail;       /* the ring could not be allocated (treated as memcap) */
};

struct tcpr_range {
	uint64_t start, end; /* [start, end) stream offsets */
};

struct tcpr_hold {
	uint8_t *ring; /* memcap bytes, offset o at ring[o & (memcap - 1)] */
	struct tcpr_range r[TCPR_MAX_RANGES];
	uint32_t n;
};

struct tcpr {
	uint32_t isn;      /* sequence number of stream offset 0 */
	uint32_t memcap;   /* power of two */
	uint64_t next;     /* stream offset of the next byte to deliver */
	uint64_t fin_off;  /* offset of the FIN, valid when fin */
	bool started, midstream, fin, ended;
	struct tcpr_hold *hold; /* NULL until the first out-of-order segment */
	struct tcpr_counters c;
};

/* memcap: 0 = TCPR_MEMCAP_DEFAULT; rounded up to a power of two, at most
 * TCPR_MEMCAP_MAX. */
void tcpr_init(struct tcpr *t, uint32_t memcap);
void tcpr_free(struct tcpr *t); /* releases the ring; the struct stays usable as ended */

/* One segment of this direction (flags: TCPR_SYN/FIN/RST as in the TCP
 * header). Segments after the end are counted and ignored. */
void tcpr_segment(struct tcpr *t, uint32_t seq, uint8_t flags, const uint8_t *p, size_t len,
		  const struct tcpr_sink *sink);
/* The capture ended or the session is dropped: deliver what is held, with a
 * gap for each hole (and one up to a FIN not reached). No end event unless
 * the FIN is thereby reached. */
void tcpr_flush(struct tcpr *t, const struct tcpr_sink *sink);
/* Release the ring when nothing is held (an idle connection costs only the
 * struct); it is allocated again on the next out-of-order segment. */
void tcpr_trim(struct tcpr *t);
/* Bytes currently held out of order. */
uint64_t tcpr_held(const struct tcpr *t);

#endif
