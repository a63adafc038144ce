/*
 * cpsts: the control plane's MTA-STS session verdicts (RFC 8461 4, 5) for
 * the SESSION_RECORDs the dataplane sends, and the policy answers of the
 * inline hook (STS_QUERY).
 *
 * For one outbound session it finds the policy domain and says how:
 *   config   sts.policy_domains maps the server IP or the SNI (a smart host,
 *            STS-TXT-10);
 *   rcpt     a RCPT TO domain the session showed (cleartext only; each
 *            distinct domain, up to CPSTS_MAX_DOMAINS, gets its verdict);
 *   learned  the SNI or server IP is an MX host of a domain resolved before
 *            (from a rcpt session or an STS_QUERY);
 *   sni-mx   the SNI's parent domains, walked upwards, until one whose MX
 *            RRset holds the SNI host;
 *   ptr-mx   the same walk from the server IP's PTR name (forward-confirmed);
 *   unknown  none of these: the verdict is not-assessable.
 * Then the MX host of the session: the domain's MX host whose A/AAAA holds
 * the server IP (mx source "dns"), else the SNI ("sni"), else the IP
 * literal ("ip", which matches no pattern). The policy comes from
 * sts_resolve (TXT through ws_dns, HTTPS with the SQLite cache); the
 * certificate state from the dataplane's facts (cpsts_cert); sts_decide
 * gives the result and the TLS-RPT reason.
 *
 * Blocking: a struct cpsts does DNS and HTTPS synchronously, each call
 * bounded by the DNS and fetch time limits. The daemon runs one per worker
 * thread (cpwork), never on its event loop. Not thread-safe: one thread
 * owns a struct cpsts (its resolver, curl handle and SQLite connection).
 * Limits: CPSTS_* below.
 */
#ifndef WS_CTRLPLANE_CPSTS_H
#define WS_CTRLPLANE_CPSTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpm.h"
#include "dns.h"
#include "sts.h"
#include "sts_fetch.h"

#define CPSTS_MAX_DOMAINS 4    /* policy domains judged per session; the rest are counted */
#define CPSTS_MAX_MX_HOSTS 8   /* MX hosts of a domain whose addresses are looked up */
#define CPSTS_MAX_WALK 4       /* parent domains tried for sni-mx / ptr-mx */
#define CPSTS_MAX_LEARNED 4096 /* MX host -> policy domain entries remembered */
#define CPSTS_MAX_MAP 1024     /* sts.policy_domains entries */

#define CPSTS_SOURCES(X)                                                                           \
	X(CPSTS_SRC_CONFIG, "config")                                                              \
	X(CPSTS_SRC_RCPT, "rcpt")                                                                  \
	X(CPSTS_SRC_LEARNED, "learned")                                                            \
	X(CPSTS_SRC_SNI_MX, "sni-mx")                                                              \
	X(CPSTS_SRC_PTR_MX, "ptr-mx")                                                              \
	X(CPSTS_SRC_UNKNOWN, "unknown")
#define CPSTS_X_ENUM(e, s) e,
enum cpsts_source { CPSTS_SOURCES(CPSTS_X_ENUM) };
#undef CPSTS_X_ENUM
const char *cpsts_source_name(enum cpsts_source s);

enum cpsts_mx_source { CPSTS_MX_DNS, CPSTS_MX_SNI, CPSTS_MX_IP };
const char *cpsts_mx_source_name(enum cpsts_mx_source s);

struct cpsts_config {
	struct ws_dns_config dns;      /* each struct cpsts opens its own resolver */
	struct sts_fetch_config fetch; /* .dns is filled in by cpsts_new */
	/* sts.policy_domains: server IP or SNI host -> policy domain */
	const char *const *map_key, *const *map_domain;
	size_t nmap;
};

/* One policy domain's verdict for one session. */
struct cpsts_eval {
	char domain[STS_DOMAIN_MAX + 1]; /* "" when the source is unknown */
	enum cpsts_source source;
	char mx_host[STS_DOMAIN_MAX + 1];
	enum cpsts_mx_source mx_source;
	enum sts_resolve_status res; /* policy / none / failed */
	struct sts_policy policy;    /* when res is POLICY */
	char policy_id[STS_ID_MAX + 1];
	bool from_cache;
	enum sts_result_type fetch_report; /* res FAILED: what the fetch failure reports as */
	bool mx_matched;                   /* policy: the MX host matches a pattern */
	enum sts_cert cert;
	struct sts_verdict v;
	char why[256];
};

struct cpsts_result {
	unsigned n;               /* evals filled (>= 1) */
	unsigned domains_dropped; /* rcpt domains past CPSTS_MAX_DOMAINS */
	struct cpsts_eval ev[CPSTS_MAX_DOMAINS];
};

/* The certificate state for sts_decide from the dataplane's TLS facts:
 * not seen (TLS 1.3, resumption, no handshake) -> not assessable; outside
 * its validity at the capture time -> expired; not chaining to a trusted
 * root -> not trusted; no SAN dNSName matching mx_host (sts_dnsid_match)
 * -> host mismatch; else valid. Checked in that order. Pure. */
enum sts_cert cpsts_cert(const struct cpm_tls *t, const char *mx_host, int64_t capture_time);

struct cpsts;
struct cpsts *cpsts_new(const struct cpsts_config *cfg, char *why, size_t whylen);
void cpsts_free(struct cpsts *c); /* NULL-safe */

/* The verdicts of one session; now is the wall clock for the policy cache,
 * the capture time (ts_usec) is used for certificate validity. 0, or -1
 * on a local error (memory, cache I/O) with out->ev[0].why. */
int cpsts_session(struct cpsts *c, const struct cpm_session *s, int64_t now,
                  struct cpsts_result *out);

/* The thread's resolver (TLS-RPT delivery looks up _smtp._tls with it). */
struct ws_dns *cpsts_dns(struct cpsts *c);

/* The policy for domain now (the inline hook); learns its MX hosts. 0 or -1. */
int cpsts_query(struct cpsts *c, const char *domain, int64_t now, struct sts_resolved *out);

#endif
