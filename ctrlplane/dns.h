/*
 * ws_dns: the one DNS layer (libunbound) for the control plane and the CLI.
 *
 * Modes, chosen at creation:
 *  - embedded: a master file (RFC 1035, parsed by auth/zonefile) is loaded
 *    as local data and the root is made a static local zone, so nothing goes
 *    to the network and a name missing from the file is NXDOMAIN at once;
 *  - forward: queries go to the listed servers ("127.0.0.1@5353");
 *  - system: /etc/resolv.conf (and /etc/hosts);
 *  - an unbound.conf given as config_file is read on top (stub-zone,
 *    forward-zone, trust anchors ...), which tests use to point a name at a
 *    server that never answers.
 * DNSSEC validation is on when trust_anchor_file is set.
 *
 * Results keep the RFCs' three outcomes apart: data, no data (NXDOMAIN /
 * NODATA: a permanent "none"), and temporary failure (timeout, SERVFAIL,
 * network error: "temperror"). A query never takes longer than timeout_ms.
 * libunbound itself answers SERVFAIL (so TEMPFAIL here) for a TXT RRset that
 * holds an RR with no character-string at all ("\# 0", SPF's null-text).
 *
 * Threads: one struct ws_dns per thread (libunbound's async mode is driven by
 * that thread's event loop through ws_dns_fd/ws_dns_process).
 */
#ifndef WS_CTRLPLANE_DNS_H
#define WS_CTRLPLANE_DNS_H

#include "dns-types.h"

#define WS_DNS_MAX_INFLIGHT 1024 /* queries in flight on one ws_dns; past it async gives -1 */
#define WS_DNS_MAX_CNAME_CHAIN 8 /* CNAMEs followed for one query; past it TEMPFAIL */

/* TTL given to NXDOMAIN/NODATA answers in embedded mode (no SOA there). */
#define WS_DNS_EMBEDDED_NEG_TTL 3600u

struct ws_dns_config {
	const char *zone_file;         /* embedded mode when set */
	const char *const *forwarders; /* NULL-terminated "ip[@port]" list, forward mode */
	const char *config_file;       /* extra unbound.conf, optional */
	const char *trust_anchor_file; /* enables DNSSEC validation */
	unsigned timeout_ms;           /* per query; 0 = 5000 */
};

struct ws_dns;

/* NULL with *why (static or in why_buf) when the resolver cannot start:
 * unreadable or malformed zone file (with its line), bad forwarder, ... */
struct ws_dns *ws_dns_new(const struct ws_dns_config *cfg, char *why_buf, size_t why_len);
/* NULL-safe; cancels what is in flight, whose callbacks then never run. */
void ws_dns_free(struct ws_dns *d);

/* Blocking query, bounded by the timeout. Always returns an answer (never
 * NULL except on allocation failure); free it with ws_dns_answer_free. */
struct ws_dns_answer *ws_dns_query(struct ws_dns *d, const char *name, enum ws_dns_type type);
void ws_dns_answer_free(struct ws_dns_answer *a); /* NULL-safe */

/* Asynchronous query: cb runs from ws_dns_process (or ws_dns_poll), exactly
 * once, with an answer it must free. Returns a query id >= 0, or -1. */
typedef void (*ws_dns_cb)(void *arg, struct ws_dns_answer *answer);
int ws_dns_query_async(struct ws_dns *d, const char *name, enum ws_dns_type type, ws_dns_cb cb,
		       void *arg);
/* The fd to watch for readability in an event loop, and the call to make
 * when it is readable; ws_dns_process also times out overdue queries. */
int ws_dns_fd(const struct ws_dns *d);
int ws_dns_process(struct ws_dns *d);
/* Wait up to ms milliseconds for answers and process them (no event loop). */
int ws_dns_poll(struct ws_dns *d, unsigned ms);
/* Milliseconds until the earliest in-flight query times out, or -1. */
int ws_dns_next_timeout_ms(const struct ws_dns *d);

#endif
