/*
 * sink: where verdicts go. A JSON-lines file in an EVE-like schema (one
 * object per line; "event_type" is "message" or "session"; "timestamp",
 * "flow_id", "record_id", endpoints, the SMTP facts and the verdict object
 * that `wireseal verify --json` prints, completed with SPF, DMARC and ARC),
 * (a session event carries the TLS facts, the anomalies and an "sts" object:
 * result, reason, policy domain and its source, mode, MX match), and
 * optionally one syslog line per record (a datagram to the syslog socket,
 * written here directly so the path is configurable and a dead syslog
 * daemon never blocks).
 *
 * Durability: lines are written with write(2) on an O_APPEND descriptor;
 * sink_sync fdatasyncs them. The daemon ACKs a record only after the sync
 * that covers it, so an ACKed record survives a crash of the daemon (and of
 * the machine, as far as the disk keeps its promises).
 * Duplicates: a record written but not yet ACKed when the daemon dies is
 * re-sent by the dataplane and could be written twice. To make that rare,
 * the sink remembers the (record_id, ts_usec) keys it wrote (two generations
 * of SINK_DEDUPE_KEYS) and, at open, those in the last dedupe_bytes of the
 * file; a record with a remembered key is not written again (counted).
 * Rotation: sink_reopen closes and reopens the path (after mv by logrotate).
 *
 * Thread-safety: one thread. Ownership: the sink owns its descriptor.
 */
#ifndef WS_CTRLPLANE_SINK_H
#define WS_CTRLPLANE_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include "cpm.h"
#include "cppolicy.h"
#include "cpsts.h"

#define SINK_DEDUPE_KEYS 65536u /* keys per generation */
#define SINK_LINE_MAX (256u * 1024) /* a longer event is replaced by an error event */

struct sink_config {
	const char *json_file; /* NULL or "": no file */
	bool syslog;
	const char *syslog_ident;
	const char *syslog_socket; /* NULL or "": /dev/log */
	unsigned dedupe_bytes;
	const char *authserv_id;
};

struct sink_stats {
	uint64_t written, duplicates, errors, syncs, reopens, syslog_sent, syslog_errors;
};

struct sink;

struct sink *sink_open(const struct sink_config *cfg, char *why, size_t whylen);
/* Close and open the path again (rotation); cfg may name another file. */
int sink_reopen(struct sink *s, const struct sink_config *cfg, char *why, size_t whylen);
void sink_close(struct sink *s); /* NULL-safe */
/* 0 written, 1 skipped as a duplicate, -1 write error (errno-based reason). */
int sink_message(struct sink *s, const struct cpm_message *m, const struct pol_verdict *v);
/* sts: the session's MTA-STS verdicts ("sts", "sts_additional"); NULL: none. */
int sink_session(struct sink *s, const struct cpm_session *m, const struct cpsts_result *sts);
/* The Authentication-Results value a message event carries (malloc'ed,
 * the caller frees; NULL when out of memory). */
char *sink_authres(const struct sink *s, const struct cpm_message *m, const struct pol_verdict *v);
/* Make everything written so far durable. 0, or -1. */
int sink_sync(struct sink *s);
const struct sink_stats *sink_stats(const struct sink *s);
/* chown the file (before dropping privileges). */
int sink_chown(struct sink *s, unsigned uid, unsigned gid);

#endif
