/*
 * cprpt: the control plane's TLS-RPT (RFC 8460) aggregate reports, built
 * from the session verdicts of cpsts, one report per policy domain per UTC
 * day, written to a spool directory and optionally POSTed to the domain's
 * rua=https: URIs.
 *
 * Counting (our choices, each tested):
 *  - sessions from the appliance's own addresses (own_addresses) are never
 *    counted (a report must not count its own delivery);
 *  - a policy domain with a usable policy (enforce or testing) is counted
 *    under policy-type "sts" (policy-string: the policy's lines, mx-host:
 *    its patterns): pass = success, fail = failure with sts_decide's result
 *    type and failure-reason-code;
 *  - a fetch failure with nothing cached: "sts", no policy-string, a
 *    failure of the fetch's type (sts-policy-fetch-error, ...);
 *  - no policy (or mode none): "no-policy-found": TLS negotiated = success,
 *    STARTTLS not offered = starttls-not-supported, offered but no TLS =
 *    validation-failure (starttls-not-established);
 *  - not-assessable (TLS 1.3 or resumption: the certificate was not seen)
 *    and sessions whose policy domain is unknown are not counted at all:
 *    neither a success we cannot vouch for nor a failure we did not see
 *    (counted in cprpt_stats instead).
 * The day of a session is the day of its capture time (ts_usec), so the
 * clock is injected by the records themselves: a session of a later day
 * closes the current day (its reports are written first); a session of an
 * earlier day than the one open is counted as late and dropped. cprpt_flush
 * writes the open day's reports now (wiresealctl "tlsrpt flush", and the
 * daemon's timer once the day is over and quiet).
 * Files: <spool>/<tlsrpt_filename>.json.gz, written to a temporary name and
 * renamed; unique-id makes two flushes of one day distinct.
 * Thread-safety: one thread (the daemon's loop). cprpt_deliver is separate:
 * it blocks (DNS, HTTPS) and runs in a worker.
 * Limits: CPRPT_MAX_DOMAINS open domains per day (more: counted, dropped).
 */
#ifndef WS_CTRLPLANE_CPRPT_H
#define WS_CTRLPLANE_CPRPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpm.h"
#include "cpsts.h"
#include "dns.h"

#define CPRPT_MAX_DOMAINS 10000
#define CPRPT_DAY 86400

struct cprpt_config {
	const char *spool_dir;            /* required; made (one level, 0750) when missing */
	const char *organization_name;    /* "organization-name" */
	const char *contact_info;         /* "contact-info" */
	const char *submitter;            /* the reporting domain, for file names and report ids */
	const char *const *own_addresses; /* client IPs whose sessions are never counted */
	size_t nown;
	/* called for each file written (the daemon queues its delivery) */
	void (*on_file)(void *arg, const char *domain, const char *path);
	void *arg;
};

struct cprpt_stats {
	uint64_t counted, own, not_assessable, unattributed, late, dropped_domains;
	uint64_t files, write_errors;
};

struct cprpt;
struct cprpt *cprpt_new(const struct cprpt_config *cfg, char *why, size_t whylen);
void cprpt_free(struct cprpt *r); /* NULL-safe; what is open is not written */
/* Counts one session's verdicts (see above). 0, or -1 (memory, or a
 * rollover whose write failed: the counts stay open). */
int cprpt_add(struct cprpt *r, const struct cpm_session *s, const struct cpsts_result *res);
/* Writes the open day's reports and closes the day; the files written. */
int cprpt_flush(struct cprpt *r);
/* The open day's start (0: none) and the domains in it. */
int64_t cprpt_open_day(const struct cprpt *r);
const struct cprpt_stats *cprpt_stats(const struct cprpt *r);

/* ---- delivery (RFC 8460 5.4: HTTPS POST) ---- */

struct cprpt_post_config {
	const char *ca_file; /* PEM trust store; NULL = the system store */
	unsigned timeout_ms; /* per POST */
	unsigned test_port;  /* test only: connect to this port instead of the URI's */
};

enum cprpt_delivery {
	CPRPT_DELIVERED,   /* an https: rua accepted it (2xx) */
	CPRPT_NO_ENDPOINT, /* no _smtp._tls record, or no https: URI in it */
	CPRPT_FAILED,      /* every https: URI failed, or DNS failed: retry later */
};
const char *cprpt_delivery_name(enum cprpt_delivery d);

/* Looks up _smtp._tls.<domain> through dns and POSTs the gzip'd report at
 * path to each https: rua in turn (Content-Type: application/tlsrpt+gzip,
 * WebPKI validation, no redirects) until one accepts it. Blocking. */
enum cprpt_delivery cprpt_deliver(struct ws_dns *dns, const struct cprpt_post_config *cfg,
                                  const char *domain, const char *path, char *why, size_t whylen);

#endif
