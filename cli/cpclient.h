/*
 * cpc: the dataplane's side of the cpm protocol (ctrlplane/cpm.h): one
 * SOCK_SEQPACKET connection to wireseal-cp that carries a MESSAGE_RECORD
 * for every message record the workers hand over, and reads back the ACKs.
 *
 * Data model: records are numbered from 1 in the order cpc_message takes
 * them and packed into one datagram (a batch, at most CPM_MAX_DATAGRAM)
 * until the next one does not fit; cpc_finish sends the last batch and
 * waits until an ACK covers the last id. Lists past their cpm limits are
 * cut to the limit and strings to CPM_MAX_STR (counted in cpc_truncated).
 * ts_usec is the wall clock when the record is taken, so that a replay run
 * twice never repeats a (record_id, ts_usec) pair the sink dedupes on.
 *
 * Keys: cpc_key sends a KEY_REQUEST (req_id numbered from 1) and waits, under
 * the mutex, for the KEY_ANSWER with that req_id, taking the ACKs that come
 * meanwhile. One request at a time: a worker blocks on the local control
 * plane (and its DNS) for up to timeout_ms. session.h's key_lookup must not
 * block on the network; a UNIX socket to the local daemon during an offline
 * replay is the accepted exception (wireseal-dp would want an asynchronous
 * lookup; not yet).
 *
 * Thread-safety: cpc_message and cpc_key may be called from several worker
 * threads at once (a mutex serialises them; replay is offline, the lock is
 * cheap next to a DKIM verification). cpc_connect, cpc_finish and cpc_free are for one
 * thread, with no cpc_message running.
 *
 * Not yet: reconnect and re-send of unacknowledged records, SESSION_RECORD. After a send fails, later records are counted, not sent,
 * and cpc_finish reports the first error.
 */
#ifndef WS_CLI_CPCLIENT_H
#define WS_CLI_CPCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "dkim.h"
#include "session.h"

#define CPC_HELLO_TIMEOUT_MS 5000u /* the control plane's HELLO must come by then */
#define CPC_KEY_TIMEOUT_MS 5000u   /* a KEY_ANSWER must come by then, else TEMPFAIL */

struct cpc;

/* Connects to path and exchanges HELLO (role dataplane). NULL with a reason
 * when nothing listens there, the peer refuses us or is not a control plane. */
struct cpc *cpc_connect(const char *path, char *why, size_t whylen);
/* Queues one MESSAGE_RECORD (sending the batch when it is full). Returns 0,
 * or -1 when the connection has failed (the record is counted unsent). */
int cpc_message(struct cpc *c, const struct dp_message_record *rec);
/* Sends what is queued and waits up to timeout_ms for an ACK of the last
 * record. Returns 0 when every record sent is acknowledged, else -1 with a
 * reason. */
int cpc_finish(struct cpc *c, unsigned timeout_ms, char *why, size_t whylen);
/* Asks the control plane for the key record at name ("<s>._domainkey.<d>")
 * and parses it into *key (FOUND; the caller clears it), else why holds the
 * reason: MISSING/INVALID/TEMPFAIL as the control plane answered, INVALID
 * when the record does not parse, TEMPFAIL when no answer came within
 * timeout_ms or the connection has failed. */
enum dkim_key_status cpc_key(struct cpc *c, const char *name, unsigned timeout_ms,
                             struct dkim_key *key, char *why, size_t whylen);
uint64_t cpc_key_requests(const struct cpc *c); /* KEY_REQUESTs sent */
uint64_t cpc_sent(const struct cpc *c);      /* records handed to the socket */
uint64_t cpc_acked(const struct cpc *c);     /* highest id acknowledged */
uint64_t cpc_unsent(const struct cpc *c);    /* records lost to a failed connection */
uint64_t cpc_truncated(const struct cpc *c); /* records with a list or string cut */
void cpc_free(struct cpc *c);                /* NULL-safe; closes the connection */

/* "192.0.2.1" / "2001:db8::1" for an endpoint (len >= INET6_ADDRSTRLEN). */
void cpc_ip_text(const struct dp_endpoint *ep, char *buf, size_t len);

#endif
