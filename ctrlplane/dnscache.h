/*
 * dnscache: a bounded cache of DNS answers (and, optionally, what the caller
 * parsed from them: a DKIM key, an SPF or DMARC record) above ws_dns.
 *
 * Data model: one entry per (name, type), case-insensitive name. An entry
 * holds a deep copy of the answer and an expiry computed from the answer's
 * TTL: the records' TTL for data, the negative-caching TTL (RFC 2308, from
 * the SOA) for NXDOMAIN/NODATA, both clamped to [min_ttl, max_ttl]. Temporary
 * failures (TEMPFAIL, BOGUS) are never cached. A caller may attach one parsed
 * object per entry (with its free function); it lives and dies with the entry.
 * Time is passed in (seconds, any epoch); there is no clock inside. An entry
 * is fresh while now < expiry, so TTL 0 is never served from the cache.
 *
 * Bounds: at most max_entries entries; inserting into a full cache evicts the
 * least recently used entry (counted in evictions). Names longer than
 * DNSCACHE_NAME_MAX and answers with more than DNSCACHE_MAX_RRS records are
 * not cached (counted in uncacheable; the answer is still returned).
 *
 * Ownership: answers returned by dnscache_get/dnscache_resolve belong to the
 * cache and are valid until the next call that modifies it (put, resolve,
 * attach, free). Callers copy what they keep (the SPF/DMARC evaluators do).
 *
 * Thread-safety: none; one cache per thread (as ws_dns).
 */
#ifndef WS_CTRLPLANE_DNSCACHE_H
#define WS_CTRLPLANE_DNSCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "dns-types.h"

#define DNSCACHE_NAME_MAX 253          /* presentation form, no trailing dot */
#define DNSCACHE_MAX_RRS 256           /* records in one cached answer */
#define DNSCACHE_DEFAULT_ENTRIES 4096
#define DNSCACHE_DEFAULT_MAX_TTL 86400 /* one day, as resolvers commonly cap */
#define DNSCACHE_DEFAULT_NEG_MAX_TTL 3600 /* RFC 2308 5: keep negative answers short */

struct dnscache_config {
	size_t max_entries;   /* 0 = DNSCACHE_DEFAULT_ENTRIES */
	uint32_t min_ttl;     /* floor for every cached entry (0 = none) */
	uint32_t max_ttl;     /* 0 = DNSCACHE_DEFAULT_MAX_TTL */
	uint32_t neg_max_ttl; /* cap for NXDOMAIN/NODATA; 0 = DNSCACHE_DEFAULT_NEG_MAX_TTL */
};

struct dnscache_stats {
	uint64_t hits, misses, evictions, expired, inserts, uncacheable;
	size_t entries;
};

struct dnscache;
struct ws_dns;

/* NULL on out of memory. */
struct dnscache *dnscache_new(const struct dnscache_config *cfg);
void dnscache_free(struct dnscache *c); /* NULL-safe; frees attached objects */

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

void dnscache_stats(const struct dnscache *c, struct dnscache_stats *out);

/* Deep copy of an answer (malloc'd; free with dnscache_answer_free). */
struct ws_dns_answer *dnscache_answer_copy(const struct ws_dns_answer *a);
void dnscache_answer_free(struct ws_dns_answer *a); /* NULL-safe */

#endif
