/*
 * dnscache: the one cache of DNS answers above ws_dns (and, optionally, what
 * the caller parsed from them: a DKIM key, an SPF or DMARC record), used
 * synchronously by the CLI's policy (dnscache_resolve) and asynchronously by
 * wireseal-cp's key service and policy engine (dnscache_lookup: concurrent
 * askers of one name share one query; waiters are called back when it
 * answers). One TTL and negative-caching policy and one set of counters for
 * both.
 *
 * Data model: one entry per (name, type), case-insensitive name. An entry
 * holds a deep copy of the answer and an expiry computed from the answer's
 * TTL: the records' TTL for data (capped by max_ttl), the negative-caching
 * TTL (RFC 2308, from the SOA) for NXDOMAIN/NODATA (capped by neg_max_ttl),
 * then raised to min_ttl; a cap of 0 means such answers are not kept at all.
 * Temporary failures (TEMPFAIL, BOGUS) are never cached (the next asker
 * queries again). A caller may attach one parsed
 * object per entry (with its free function); it lives and dies with the entry.
 * Time is passed in (seconds, any epoch); there is no clock inside. An entry
 * is fresh while now < expiry, so TTL 0 is never served from the cache.
 *
 * Bounds: at most max_entries answers; inserting into a full cache evicts the
 * least recently used one (counted in evictions). Names longer than
 * DNSCACHE_NAME_MAX and answers with more than DNSCACHE_MAX_RRS records are
 * not cached (counted in uncacheable; the answer is still returned). The
 * asynchronous side: queries in flight (pending, not answers) are bounded
 * by the resolver (WS_DNS_MAX_INFLIGHT); DNSCACHE_MAX_WAITERS askers wait on
 * one pending name, and a name longer than DNSCACHE_QUERY_NAME_MAX is not
 * asked (both: -1, which callers treat as a temporary failure).
 *
 * Ownership: answers returned by dnscache_get/dnscache_resolve/dnscache_lookup
 * belong to the cache and are valid until the next call that modifies it
 * (put, resolve, lookup, process, attach, flush, free); a waiter's callback
 * borrows the answer for the call only. Callers copy what they keep (the
 * SPF/DMARC evaluators do).
 *
 * Thread-safety: none; one cache per thread (as ws_dns): the CLI's workers
 * each have one, the daemon one on its event loop.
 */
#ifndef WS_CTRLPLANE_DNSCACHE_H
#define WS_CTRLPLANE_DNSCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dns-types.h"

#define DNSCACHE_NAME_MAX 253          /* presentation form, no trailing dot */
#define DNSCACHE_MAX_RRS 256           /* records in one cached answer */
#define DNSCACHE_DEFAULT_ENTRIES 4096
#define DNSCACHE_DEFAULT_MAX_TTL 86400 /* one day, as resolvers commonly cap */
#define DNSCACHE_DEFAULT_NEG_MAX_TTL 3600 /* RFC 2308 5: keep negative answers short */
#define DNSCACHE_MAX_WAITERS 4096u     /* askers waiting on one pending name */
#define DNSCACHE_QUERY_NAME_MAX 1024u  /* longest name asked (SPF expansions stay far below) */
#define DNSCACHE_LAT_BUCKETS 8         /* query latency histogram (dnscache_lat_bounds_ms) */

/* dnscache_new(NULL) takes every default. With a config, max_entries 0 is
 * the default, and the TTL caps are taken as they are (0: not kept). */
struct dnscache_config {
	size_t max_entries;   /* 0 = DNSCACHE_DEFAULT_ENTRIES */
	uint32_t min_ttl;     /* floor for every cached entry (0 = none) */
	uint32_t max_ttl;     /* cap for data (DNSCACHE_DEFAULT_MAX_TTL); 0: data not kept */
	uint32_t neg_max_ttl; /* cap for NXDOMAIN/NODATA (DNSCACHE_DEFAULT_NEG_MAX_TTL); 0: not kept */
};

struct dnscache_stats {
	/* lookups: answered from the cache, sent a query, joined one in flight
	 * (lookup only), refused (lookup only: limits, resolver full) */
	uint64_t hits, misses, coalesced, refused;
	uint64_t evictions, expired, inserts, uncacheable;
	/* queries sent and their answers, by kind; timeouts among the tempfails */
	uint64_t queries, answers_ok, answers_negative, tempfail, timeouts;
	uint64_t lat_le[DNSCACHE_LAT_BUCKETS]; /* cumulative: latency <= bound (lookup's queries) */
	uint64_t lat_count;
	double lat_sum_s;
	size_t entries; /* answers kept */
	size_t pending; /* queries in flight (lookup) */
};
extern const unsigned dnscache_lat_bounds_ms[DNSCACHE_LAT_BUCKETS];

struct dnscache;
struct ws_dns;

/* NULL on out of memory. */
struct dnscache *dnscache_new(const struct dnscache_config *cfg);
/* Pending lookups' waiters are dropped without a call: free the resolver
 * first (it never calls back after that). NULL-safe; frees attached objects. */
void dnscache_free(struct dnscache *c);
/* New bounds (a reload): TTLs apply to answers stored from now on; a smaller
 * max_entries evicts on the next insert. */
void dnscache_set_config(struct dnscache *c, const struct dnscache_config *cfg);

/* A fresh cached answer or NULL (a miss; an expired entry is dropped). */
const struct ws_dns_answer *dnscache_get(struct dnscache *c, const char *name,
					 enum ws_dns_type type, int64_t now);
/* Copy an answer in. 0 when cached; 1 when not cacheable (temporary failure,
 * name or record count past the limits); -1 on out of memory. Replaces an
 * existing entry for (name, type), dropping its attached object. */
int dnscache_put(struct dnscache *c, const char *name, enum ws_dns_type type,
		 const struct ws_dns_answer *a, int64_t now);

/* get, or on a miss ws_dns_query + put. Never NULL except out of memory.
 * An uncacheable answer is held until the next modifying call. */
const struct ws_dns_answer *dnscache_resolve(struct dnscache *c, struct ws_dns *dns,
					     const char *name, enum ws_dns_type type,
					     int64_t now);

/* Attach a parsed object to the entry (name, type), replacing (and freeing)
 * one attached before. 0, or -1 when no entry exists (the caller keeps
 * ownership of obj then). */
int dnscache_attach(struct dnscache *c, const char *name, enum ws_dns_type type, void *obj,
		    void (*free_fn)(void *));
/* The attached object of the fresh entry, or NULL. Does not count as a hit. */
void *dnscache_attached(struct dnscache *c, const char *name, enum ws_dns_type type,
			int64_t now);

/* ---- asynchronous (the daemon) ---- */

/* The answer, borrowed for the call. */
typedef void (*dnscache_cb)(void *arg, const struct ws_dns_answer *a);

/*
 * Looks (type, name) up at time now (the name is taken case-insensitively,
 * without a trailing dot). Returns 1 with *out set (a fresh cached answer;
 * *remaining_ttl, optional, the seconds it stays fresh), 0 when the answer
 * will come through cb (exactly once, from dnscache_process), or -1 when the
 * query cannot be made (DNSCACHE_MAX_WAITERS, DNSCACHE_QUERY_NAME_MAX,
 * resolver full, out of memory).
 */
int dnscache_lookup(struct dnscache *c, struct ws_dns *dns, const char *name,
		    enum ws_dns_type type, int64_t now, dnscache_cb cb, void *arg,
		    const struct ws_dns_answer **out, uint32_t *remaining_ttl);
/* Drives the resolver (call when its fd is readable and periodically);
 * answers are stored with now as their time. */
void dnscache_process(struct dnscache *c, struct ws_dns *dns, int64_t now);
/* Drops every answer (pending lookups keep their waiters). Returns how many. */
size_t dnscache_flush(struct dnscache *c);
/* One line per answer and per pending lookup: "name type status ttl-left"
 * (status ok, nxdomain, nodata or pending), most recently used first. */
void dnscache_dump(const struct dnscache *c, int64_t now, FILE *f);

void dnscache_stats(const struct dnscache *c, struct dnscache_stats *out);

/* Deep copy of an answer (malloc'd; free with dnscache_answer_free). */
struct ws_dns_answer *dnscache_answer_copy(const struct ws_dns_answer *a);
void dnscache_answer_free(struct ws_dns_answer *a); /* NULL-safe */

#endif
