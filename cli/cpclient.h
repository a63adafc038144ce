/*
 * cpc: the dataplane's side of the cpm protocol (ctrlplane/cpm.h): the
 * connection to wireseal-cp that carries a MESSAGE_RECORD for every message
 * and a SESSION_RECORD for every session the workers hand over, reads back
 * the ACKs, and asks for DKIM/ARC keys (KEY_REQUEST/KEY_ANSWER).
 *
 * Data model: a record is numbered (record_id, from 1, in the order cpc
 * takes it), encoded once and kept in a queue until an ACK covers its id.
 * One I/O thread owns the socket: it packs queued records (key requests
 * first) into datagrams of at most CPM_MAX_DATAGRAM, sends them, reads ACKs
 * (which free records) and KEY_ANSWERs. When the connection fails (the
 * control plane died, refused a datagram, or closed) it reconnects with
 * backoff (CPC_BACKOFF_MIN_MS doubling to CPC_BACKOFF_MAX_MS) and re-sends
 * every record not yet acknowledged, in id order, and the key requests
 * still unanswered. The sink dedupes on (ts_usec, record_id) (cpm.h):
 * delivery is at-least-once, a record written but not ACKed before a crash
 * arrives twice and is written once. ts_usec is the wall clock when the
 * record is taken, so a replay run twice never repeats a pair.
 *
 * Limits: at most CPC_MAX_QUEUE records and CPC_MAX_QUEUE_BYTES encoded
 * bytes wait for their ACK. Past either, a lossless client (replay) makes
 * the worker wait for room (up to CPC_LOSSLESS_WAIT_MS while disconnected);
 * a live one (wireseal-dp) drops the record and counts it (cpc_unsent): a
 * worker never blocks on the control plane. A key request holds an answer
 * buffer (~8 KB) until taken: CPC_MAX_KEYS_PENDING bounds that memory.
 * Lists past their cpm limits are cut to the limit and strings to
 * CPM_MAX_STR (cpc_truncated).
 *
 * Keys: cpc_key_ask queues a KEY_REQUEST and returns at once; the answer
 * (or TEMPFAIL "no answer within CPC_KEY_TIMEOUT_MS") lands in the asking
 * slot's mailbox, taken with cpc_key_take (slot = worker index, below
 * CPC_MAX_SLOTS). cpc_key is the blocking form on top of it, for the
 * offline replay (a worker waits on the local daemon, never the network).
 *
 * Verdicts: cpc_message_verdict queues a MESSAGE_RECORD that asks the
 * control plane for its policy result; the VERDICT (matched to the record
 * still queued for its ACK, which it precedes) lands in the slot's verdict
 * mailbox, taken with cpc_verdict_take (any order: the caller matches the
 * record id). A record re-sent after a reconnect may be answered twice; the
 * caller drops a verdict it no longer waits for.
 *
 * Thread-safety: cpc_message, cpc_message_verdict, cpc_verdict_take,
 * cpc_verdict_wait, cpc_session, cpc_key_ask, cpc_key_take and
 * cpc_key may be called from several worker threads at once (one mutex,
 * held for a queue operation, never across I/O). cpc_connect, cpc_finish
 * and cpc_free are for one thread.
 */
#ifndef WS_CLI_CPCLIENT_H
#define WS_CLI_CPCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpm.h"
#include "dkim.h"
#include "policy.h"
#include "session.h"

#define CPC_HELLO_TIMEOUT_MS 5000u   /* the control plane's HELLO must come by then */
#define CPC_KEY_TIMEOUT_MS 5000u     /* a KEY_ANSWER must come by then, else TEMPFAIL */
#define CPC_BACKOFF_MIN_MS 50u       /* first reconnect delay */
#define CPC_BACKOFF_MAX_MS 2000u     /* reconnect delay cap */
#define CPC_MAX_QUEUE 65536u         /* records waiting for their ACK */
#define CPC_MAX_QUEUE_BYTES (64u << 20) /* their encoded bytes */
#define CPC_MAX_SLOTS 64u            /* key-answer mailboxes (one per worker) */
#define CPC_MAX_KEYS_PENDING 4096u   /* key requests waiting for an answer */
#define CPC_STATS_BYTES 8192u        /* one encoded STATS */
#define CPC_LOSSLESS_WAIT_MS 30000u  /* a lossless client waits this long for a
                                      * control plane that is down, then drops */

struct cpc;

/* A VERDICT, decoded into the CLI's policy result types (what
 * policy_spf_json/policy_dmarc_json print). Owned by the caller after
 * cpc_verdict_take (cpc_verdict_free). */
struct cpc_verdict {
	uint64_t record_id;
	uint8_t status;            /* enum cpm_verdict_status */
	char why[256];             /* CPM_VERDICT_ERROR: why policy could not run */
	struct policy_spf_out spf; /* .ran false: no SPF (no usable client address) */
	bool dmarc_ran;            /* false: DMARC not evaluated (a skip override) */
	struct policy_dmarc_out dm;
	char override[16];         /* the per-domain action applied, "" = none */
	char disposition[16];      /* final, after local policy */
	char *authres;             /* the control plane's A-R value (malloc'ed) */
	struct cpc_verdict *next;  /* the mailbox's; the caller's to reuse */
};
void cpc_verdict_free(struct cpc_verdict *v); /* NULL-safe */
/* A VERDICT's fields into *out (strings copied, cut to the CLI's buffers).
 * 0, or -1 when out of memory (authres). */
int cpc_verdict_from_msg(const struct cpm_verdict *m, struct cpc_verdict *out);

/* A KEY_ANSWER for cpc_key_ask, owned by the caller after cpc_key_take. */
struct cpc_key_answer {
	uint64_t tag;          /* the caller's, from cpc_key_ask */
	char name[DKIM_MAX_KEY_NAME + 1];
	uint8_t status;        /* enum cpm_key_status */
	uint32_t ttl;          /* seconds the answer may be cached */
	size_t len;
	char text[CPM_MAX_STR + 1]; /* the record when FOUND; else the reason */
};

/* Connects to path and exchanges HELLO (role dataplane), then starts the
 * I/O thread. lossless: replay (wait for queue room) vs live (drop). NULL
 * with a reason when nothing listens there, the peer refuses us or is not a
 * control plane: the first connection must work, later ones are retried. */
struct cpc *cpc_connect(const char *path, bool lossless, char *why, size_t whylen);
/* Queues one MESSAGE_RECORD / SESSION_RECORD. Returns 0, or -1 when it was
 * dropped (queue full on a live client, or too large for one datagram). */
int cpc_message(struct cpc *c, const struct dp_message_record *rec);
int cpc_session(struct cpc *c, const struct dp_session_record *rec);
/* As cpc_message, asking for a VERDICT that goes to slot's verdict mailbox
 * (slot < CPC_MAX_SLOTS). 0 with *id the record's id, or -1 (not queued: no
 * verdict will come). */
int cpc_message_verdict(struct cpc *c, const struct dp_message_record *rec, unsigned slot,
                        uint64_t *id);
/* Takes one verdict from slot's mailbox: the verdict, or NULL when empty. */
struct cpc_verdict *cpc_verdict_take(struct cpc *c, unsigned slot);
/* Waits up to timeout_ms for slot's mailbox not to be empty; true if not. */
bool cpc_verdict_wait(struct cpc *c, unsigned slot, unsigned timeout_ms);
/* Queues a STATS (name, value pairs; names are Prometheus metric-name
 * characters) for the next datagram. Not a record: not acknowledged, not
 * re-sent, replaced by the next call if not sent yet. 0, or -1 when the pairs
 * do not fit in CPC_STATS_BYTES. */
int cpc_stats(struct cpc *c, const char *const *names, const uint64_t *values, size_t n);
/* Waits up to timeout_ms until an ACK covers every record taken (through
 * reconnects). 0, or -1 with a reason. */
int cpc_finish(struct cpc *c, unsigned timeout_ms, char *why, size_t whylen);
/* Asks for the key record at name ("<s>._domainkey.<d>") without waiting;
 * the answer goes to slot's mailbox with tag. 0, or -1 (bad name or slot,
 * too many pending: the caller treats that as TEMPFAIL). */
int cpc_key_ask(struct cpc *c, const char *name, unsigned slot, uint64_t tag);
/* Takes one answer from slot's mailbox into *out: 1, or 0 when empty. */
int cpc_key_take(struct cpc *c, unsigned slot, struct cpc_key_answer *out);
/* The blocking form: asks and waits up to timeout_ms; parses FOUND into
 * *key (the caller clears it), else why holds the reason. */
enum dkim_key_status cpc_key(struct cpc *c, const char *name, unsigned timeout_ms,
                             struct dkim_key *key, char *why, size_t whylen);
/* A KEY_ANSWER as a key status (+ parsed key for FOUND, reason otherwise). */
enum dkim_key_status cpc_key_status(const struct cpc_key_answer *a, struct dkim_key *key,
                                    char *why, size_t whylen);

uint64_t cpc_key_requests(const struct cpc *c); /* KEY_REQUESTs sent */
uint64_t cpc_verdicts(const struct cpc *c);     /* VERDICTs received */
uint64_t cpc_sent(const struct cpc *c);      /* records handed to the socket at least once */
uint64_t cpc_acked(const struct cpc *c);     /* highest id acknowledged */
uint64_t cpc_unsent(const struct cpc *c);    /* records dropped (queue full, too large) */
uint64_t cpc_truncated(const struct cpc *c); /* records with a list or string cut */
uint64_t cpc_resent(const struct cpc *c);    /* records sent again after a reconnect */
uint64_t cpc_reconnects(const struct cpc *c); /* connections after the first */
void cpc_free(struct cpc *c);                /* NULL-safe; stops the thread, closes */

/* "192.0.2.1" / "2001:db8::1" for an endpoint (len >= INET6_ADDRSTRLEN). */
void cpc_ip_text(const struct dp_endpoint *ep, char *buf, size_t len);

#endif
