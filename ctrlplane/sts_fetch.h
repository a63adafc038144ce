/*
 * sts_fetch: MTA-STS policy discovery (RFC 8461 3), the HTTPS fetch, and a
 * policy cache on disk (SQLite) that survives restarts.
 *
 * Data model: a struct sts_fetcher holds the borrowed resolver, one curl
 * handle and the cache database. sts_resolve(domain, now) answers "which
 * policy applies to mail for domain now": it reads the cache, asks the
 * _mta-sts TXT record through ws_dns, fetches
 * https://mta-sts.<domain>/.well-known/mta-sts.txt when the id is new, the
 * cache is empty or expired, or the daily refresh is due, and writes back.
 * The policy host's addresses come from ws_dns too (handed to curl with
 * CURLOPT_RESOLVE), so DNS has one view for the TXT and the host.
 * Fetch rules (STS-FETCH-*): WebPKI validation against ca_file or the system
 * store, SAN dNSName only (no CN fallback, no partial wildcards), TLS >= 1.2,
 * SNI = the policy host, no redirects (a 3xx is a failure), status 200 only,
 * media type text/plain (parameters ignored), body <= STS_POLICY_MAX_LEN
 * whether announced by Content-Length or streamed chunked, one time limit
 * for the whole fetch, no HTTP caching (no conditional requests; nothing
 * kept but the parsed policy).
 * Cache rules: a policy is valid for max_age seconds from its last
 * successful fetch (max_age 0: never stored); while valid it is used when
 * the TXT record is gone, when DNS fails, and while a new id cannot be
 * fetched (STS-FETCH-10, STS-CACHE-2); a failed fetch of an id is not
 * retried for STS_FETCH_RETRY_S; a cached policy is refetched once it is
 * STS_REFRESH_S old (the daily refresh) or half its max_age old, whichever
 * comes first, and a failed refresh is flagged unless the cached mode is
 * none (STS-CACHE-3).
 * Time: every call takes `now` (seconds since the epoch); nothing reads the
 * clock, so tests drive expiry. Network time limits are real time.
 * Thread-safety: one fetcher per thread (its curl handle and SQLite
 * connection are not shared); several fetchers, in several processes, may
 * share one cache file (SQLite locking, busy timeout).
 */
#ifndef WS_CTRLPLANE_STS_FETCH_H
#define WS_CTRLPLANE_STS_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns.h"
#include "sts.h"

#define STS_FETCH_TIMEOUT_MS 60000 /* RFC 8461 3.3 suggests 60 s: the default */
#define STS_FETCH_RETRY_S 300      /* no refetch of the same id after a failure (draft: 5 min) */
#define STS_REFRESH_S 86400        /* proactive refresh of a cached policy (daily, 8461 3.3) */
#define STS_CACHE_SCHEMA 1         /* PRAGMA user_version of the cache file */

struct sts_fetch_config {
	struct ws_dns *dns;     /* borrowed; TXT and the policy host's A/AAAA */
	const char *cache_path; /* SQLite file; NULL = an in-memory cache (lost at free) */
	const char *ca_file;    /* PEM trust store for the policy host; NULL = system store */
	unsigned timeout_ms;    /* the whole HTTPS fetch; 0 = STS_FETCH_TIMEOUT_MS */
	/* Count a media type other than text/plain instead of refusing the
	 * policy (STS-FETCH-6 lenient mode; off = the RFC). */
	bool lenient_content_type;
	/* Test only: the port of the policy host (0 = 443, the only port the
	 * RFC allows). */
	unsigned test_port;
};

enum sts_fetch_status {
	STS_FETCH_OK,
	STS_FETCH_NO_ADDRESS,   /* the policy host does not resolve */
	STS_FETCH_CONNECT,      /* TCP connect failed */
	STS_FETCH_TLS,          /* handshake or WebPKI validation failed */
	STS_FETCH_TIMEOUT,      /* the time limit ran out */
	STS_FETCH_REDIRECT,     /* a 3xx (not followed) */
	STS_FETCH_HTTP_STATUS,  /* a status other than 200 */
	STS_FETCH_CONTENT_TYPE, /* not text/plain (or none) */
	STS_FETCH_TOO_LARGE,    /* over STS_POLICY_MAX_LEN (Content-Length or streamed) */
	STS_FETCH_INVALID,      /* fetched, but not a valid policy */
	STS_FETCH_ERROR,        /* anything else (curl setup, out of memory) */
};
const char *sts_fetch_status_name(enum sts_fetch_status s);
/* The TLS-RPT result type a fetch outcome is reported as (RFC 8460 4.3):
 * TLS -> sts-webpki-invalid; INVALID -> sts-policy-invalid; everything else,
 * the wrong media type included (our choice: the response was not a policy
 * file, its body is never read), -> sts-policy-fetch-error. */
enum sts_result_type sts_fetch_result_type(enum sts_fetch_status s);

struct sts_fetch_result {
	enum sts_fetch_status status;
	long http_status;        /* 0 when no response */
	bool content_type_lax;   /* lenient mode let a wrong media type through */
	char why[512];
	char *body;              /* the policy text when OK (malloc'd; sts_fetch_result_clear) */
	size_t body_len;
	struct sts_policy policy;
};
void sts_fetch_result_clear(struct sts_fetch_result *r);

struct sts_fetcher;
struct sts_fetcher *sts_fetcher_new(const struct sts_fetch_config *cfg, char *why, size_t why_len);
void sts_fetcher_free(struct sts_fetcher *f); /* NULL-safe */

/* One HTTPS fetch of domain's policy, no cache involved. 0 when a policy
 * was fetched and parsed; -1 otherwise, with out->status and out->why. */
int sts_fetch_policy(struct sts_fetcher *f, const char *domain, struct sts_fetch_result *out);

enum sts_resolve_status {
	STS_RES_POLICY, /* a policy applies (fresh, or from the cache) */
	STS_RES_NONE,   /* no MTA-STS for this domain now */
	STS_RES_FAILED, /* a record exists (or DNS failed) but no policy could be had and
			 * none is cached: deliver as without MTA-STS, report `report` */
};
const char *sts_resolve_status_name(enum sts_resolve_status s);

struct sts_resolved {
	enum sts_resolve_status status;
	struct sts_policy policy;    /* when POLICY */
	char id[STS_ID_MAX + 1];     /* the policy's id */
	int64_t fetched_at, expires_at;
	bool from_cache;             /* no fetch happened, or it failed and the cache answered */
	bool fetched;                /* a fetch was attempted in this call */
	bool refresh_failed;         /* a due refresh or a new id failed; cached mode is not none */
	enum sts_result_type report; /* what to report to TLS-RPT (STS_RT_NONE: nothing) */
	char why[512];
};

/* domain: the policy domain in A-label form, no trailing dot (one is
 * stripped). Returns 0, or -1 on a local error (cache I/O, memory) with why. */
int sts_resolve(struct sts_fetcher *f, const char *domain, int64_t now, struct sts_resolved *out);

/* Fetches attempted by this fetcher (tests count network work with it). */
unsigned long sts_fetcher_fetches(const struct sts_fetcher *f);

#endif
