/*
 * cpcache: the control plane's DNS answers, shared by the key service and
 * the policy engine, in front of one ws_dns resolver.
 *
 * Data model: entries keyed by (type, lowercase name). An entry is either
 * pending (a query in flight, with a list of waiters) or ready (an answer
 * with an expiry). Data answers live min(TTL, max_ttl) seconds, NXDOMAIN and
 * NODATA min(TTL, negative_ttl); temporary failures are never kept (the next
 * asker queries again). Concurrent askers of one name share one query.
 * When max_entries is reached, expired entries are dropped; if none is, the
 * new answer is handed to its waiters and then discarded (counted).
 *
 * Ownership: the cache owns every answer; a waiter's callback borrows it for
 * the duration of the call only. Time is passed in (seconds).
 * Thread-safety: one thread (the daemon's event loop).
 * Limits: CPCACHE_MAX_WAITERS waiters on one pending entry (more: -1, the caller
 * treats it as a temporary failure); the resolver's WS_DNS_MAX_INFLIGHT.
 */
#ifndef WS_CTRLPLANE_CPCACHE_H
#define WS_CTRLPLANE_CPCACHE_H

#include <stdint.h>
#include <stdio.h>

#include "dns-types.h"

#define CPCACHE_MAX_WAITERS 4096u
#define CPCACHE_NAME_MAX 1024u /* longest name asked (SPF expansions stay far below) */
#define CPCACHE_LAT_BUCKETS 8 /* query latency histogram buckets (ms), see cpcache_lat_bounds_ms */

struct ws_dns;
struct cpcache;

struct cpcache_stats {
	uint64_t hits, misses, coalesced, not_kept, refused;
	uint64_t queries, answers_ok, answers_negative, tempfail, timeouts;
	uint64_t lat_le[CPCACHE_LAT_BUCKETS]; /* cumulative counts: latency <= bound */
	uint64_t lat_count;
	double lat_sum_s;
	uint64_t entries, pending;
};
extern const unsigned cpcache_lat_bounds_ms[CPCACHE_LAT_BUCKETS];

/* The answer, borrowed for the call. */
typedef void (*cpcache_cb)(void *arg, const struct ws_dns_answer *a);

struct cpcache *cpcache_new(struct ws_dns *dns, unsigned max_entries, unsigned max_ttl,
			unsigned negative_ttl);
void cpcache_free(struct cpcache *c); /* NULL-safe; pending waiters are dropped silently */
/* Takes effect for answers stored from now on. */
void cpcache_set_limits(struct cpcache *c, unsigned max_entries, unsigned max_ttl, unsigned negative_ttl);

/*
 * Looks (type, name) up at time now. Returns 1 with *out set (a fresh cached
 * answer, borrowed until the next call into the cache), 0 when the answer
 * will come through cb (exactly once, from cpcache_process or cpcache_flush), or -1
 * when the query cannot be made (too many waiters, resolver full).
 * *remaining_ttl (optional) gets the seconds the returned answer stays valid.
 */
int cpcache_get(struct cpcache *c, const char *name, enum ws_dns_type type, int64_t now, cpcache_cb cb,
	   void *arg, const struct ws_dns_answer **out, uint32_t *remaining_ttl);
/* Drop every ready entry (pending ones keep their waiters). Returns how many. */
size_t cpcache_flush(struct cpcache *c);
/* Drive the resolver: call when its fd is readable and periodically. */
void cpcache_process(struct cpcache *c, int64_t now);
const struct cpcache_stats *cpcache_stats(const struct cpcache *c);
/* One line per entry: "name type status ttl-left". */
void cpcache_dump(const struct cpcache *c, int64_t now, FILE *f);

#endif
