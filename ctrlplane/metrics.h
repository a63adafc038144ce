/*
 * metrics: the daemon's counters (declared once in MET_FOREACH_COUNTER) and
 * a Prometheus text-exposition endpoint (format 0.0.4, GET /metrics) served
 * by libmicrohttpd from inside the daemon's libevent loop: MHD runs in
 * external-select mode on its epoll descriptor, so there is no extra thread
 * and the counters need no locks.
 *
 * The text is produced by the caller's render callback with the helpers
 * below (met_family once per metric family, then its samples), which escape
 * label values and refuse names outside [a-zA-Z_:][a-zA-Z0-9_:]*.
 * Limits: MET_MAX_BODY bytes of exposition text (larger: HTTP 500).
 */
#ifndef WS_CTRLPLANE_METRICS_H
#define WS_CTRLPLANE_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define MET_MAX_BODY (4u * 1024 * 1024)

/* X(field, type, name, help) — plain counters of the daemon */
#define MET_FOREACH_COUNTER(X)                                                                  \
	X(dp_connections, counter, "wireseal_cp_dataplane_connections_total",                       \
	  "dataplane connections accepted")                                                           \
	X(dp_handshake_refused, counter, "wireseal_cp_handshake_refused_total",                     \
	  "connections refused at HELLO (version, magic or role mismatch)")                           \
	X(protocol_errors, counter, "wireseal_cp_protocol_errors_total",                            \
	  "datagrams that did not decode; the connection was closed")                                 \
	X(datagrams_in, counter, "wireseal_cp_datagrams_received_total", "cpm datagrams received")  \
	X(datagrams_out, counter, "wireseal_cp_datagrams_sent_total", "cpm datagrams sent")         \
	X(message_records, counter, "wireseal_cp_message_records_total", "MESSAGE_RECORDs received") \
	X(session_records, counter, "wireseal_cp_session_records_total", "SESSION_RECORDs received") \
	X(verdicts_out, counter, "wireseal_cp_verdicts_sent_total",                                 \
	  "VERDICTs sent (MESSAGE_RECORDs that asked for the policy result back)")                    \
	X(records_acked, counter, "wireseal_cp_records_acked_total", "records acknowledged")        \
	X(key_requests, counter, "wireseal_cp_key_requests_total", "KEY_REQUESTs received")         \
	X(key_parked_refused, counter, "wireseal_cp_key_requests_refused_total",                    \
	  "KEY_REQUESTs answered tempfail at once because keys.max_parked were waiting")              \
	X(policy_errors, counter, "wireseal_cp_policy_errors_total",                                \
	  "records whose evaluation could not start (memory)")                                        \
	X(reloads, counter, "wireseal_cp_reloads_total", "configuration reloads (SIGHUP, wiresealctl)") \
	X(reload_errors, counter, "wireseal_cp_reload_errors_total",                                 \
	  "reloads refused (bad configuration: the old one stays)")

struct met_counters {
#define MET_FIELD(field, type, name, help) uint64_t field;
	MET_FOREACH_COUNTER(MET_FIELD)
#undef MET_FIELD
};

/* Writes every MET_FOREACH_COUNTER family. */
void met_render_counters(FILE *f, const struct met_counters *c);
/* "# HELP" and "# TYPE" lines; -1 for a bad name (nothing written). */
int met_family(FILE *f, const char *name, const char *type, const char *help);
/* One sample; labels are "k", "v" pairs (nlabels pairs), values escaped. */
int met_sample(FILE *f, const char *name, const char *const *labels, size_t nlabels, double v);
bool met_name_ok(const char *name, size_t len);

struct event_base;
struct met_server;
/* A malloc'd body and its length, or NULL (HTTP 500). */
typedef char *(*met_render_cb)(void *arg, size_t *len);

/* NULL with a reason when the address does not parse or bind fails. */
struct met_server *met_server_start(struct event_base *base, const char *addr, unsigned port,
				    met_render_cb render, void *arg, char *why, size_t whylen);
void met_server_stop(struct met_server *s); /* NULL-safe */
uint64_t met_server_scrapes(const struct met_server *s);

#endif
