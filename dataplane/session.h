/*
 * dp_session: one SMTP session rebuilt from one TCP connection, both
 * directions, DPDK-free (the capture side feeds it TCP segments).
 *
 * Inside: per-direction TCP reassembly (tcpr) delivers in-order bytes to the
 * SMTP parser (smtpp), whose DATA/BDAT contents stream (dot-unstuffed) into
 * the message stream (msgstream): header block kept (capped), body through
 * the DKIM verifier's canonicalisers, never stored. When a message ends its
 * signatures are decided (keys through cfg->key_lookup) and cfg->on_message
 * gets a record; when the session ends, cfg->on_session gets one.
 *
 * Capture gaps: bytes that never arrived make the affected message's DKIM
 * results temperror with reason "capture-gap", never fail.
 *
 * Memory: every buffer has a cap (named in tcpr.h/smtpp.h/msgstream.h) and a
 * written behaviour when it is hit, counted in struct dp_session_counters.
 * Not thread-safe: a session belongs to the worker that owns its flow.
 *
 * Additions by the stream part (the declarations above are the contract):
 *  - gap_reason values: "capture-gap" (bytes lost, or the server answered
 *    an end of data the capture did not show), "memcap" (a header block
 *    limit or memory), "malformed-header", "session-reset" (RST inside the
 *    message), "session-end" (the session ended inside it), "rset",
 *    "starttls", "rejected" (the server refused a BDAT chunk part-way; a
 *    refused DATA with no content gives no record).
 *  - rcpt lists the forward-paths the server did not refuse (a 4xx/5xx reply
 *    to that RCPT removes it); at most SMTPP_MAX_RCPTS. helo, mail_from and
 *    each rcpt are cut at DP_SESSION_MAX_PATH bytes.
 *  - dp_session_trim releases what only an active session needs.
 *  - Size: an idle session (no message open, after dp_session_trim, or
 *    before its first message) holds struct dp_session plus the HELO name,
 *    the envelope of its current transaction and the cleartext RCPT
 *    domains: 1776 heap bytes with one recipient (test_session's
 *    test_idle_size), plus its reply codes (4 bytes each, an array
 *    doubling from 8 entries: 32 bytes there). TLS state (struct dp_tls: tlsobs, certificate facts)
 *    is allocated only when a STARTTLS is accepted; the anomaly array on
 *    the first anomaly.
 *    Out-of-order data allocates its direction's reassembly ring (tcpr
 *    memcap, 64 KiB by default); line buffers are allocated only for lines
 *    split across segments; the first message allocates a DKIM verifier
 *    (292 KB) and the header buffers, kept for the next message until
 *    dp_session_trim. With cfg->pool the verifier (and ARC validator) comes
 *    from the worker's pool and goes back there at trim or free.
 */
#ifndef WS_DATAPLANE_SESSION_H
#define WS_DATAPLANE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dkim.h"

struct arc_chain;
struct msgstream_parked;
struct x509_store_st;
struct msgstream_pool;
struct sigbatch;

enum dp_dir {
	DP_DIR_C2S = 0, /* client -> server */
	DP_DIR_S2C = 1,
};

struct dp_endpoint {
	uint8_t ip[16]; /* IPv4 as ::ffff:a.b.c.d */
	bool v6;
	uint16_t port;
};

/* What the capture side knows about the connection. */
struct dp_session_info {
	struct dp_endpoint client, server;
	uint64_t flow_id;
	bool midstream; /* the capture did not see the SYN (the session also sets
			 * it, in its copy, when data comes before any SYN) */
	bool implicit_tls; /* TLS from the first byte (port 465): nothing is
			    * parsed, no message record; the session record only */
};

/* One message, handed over when its end (".", BDAT LAST, or the session's
 * end) is seen. Pointers are valid during the callback only. */
struct dp_message_record {
	const struct dp_session_info *info;
	const char *helo;          /* "" when not seen */
	const char *mail_from;     /* reverse-path without <>, "" for null sender */
	const char *const *rcpt;   /* forward-paths */
	size_t nrcpt;
	bool starttls;             /* STARTTLS happened earlier in the session */
	unsigned transaction;      /* 1-based within the session */
	bool complete;             /* every byte of the message was seen */
	const char *gap_reason;    /* "capture-gap", "memcap", "session-reset" ... or NULL */
	const struct dkim_verifier *dkim; /* results: dkim_verifier_count/result; NULL when !cfg->verify */
	const struct arc_chain *arc;      /* the ARC chain ("none" without ARC fields); NULL when
					     !cfg->verify or the message is incomplete */
	const struct rfc5322_header *hdr; /* the message's header block (for ARC/DMARC later) */
	uint64_t header_bytes, body_bytes;
};

/* What the handshake after STARTTLS showed (all zero/NULL without one).
 * version_offered_max: the highest of ClientHello's supported_versions (its
 * legacy_version without that extension); version: the ServerHello's choice
 * (supported_versions for TLS 1.3); 0x0303 = TLS 1.2, 0x0304 = TLS 1.3.
 * sni: NULL when the ClientHello carried none.
 * cert_*: only for a full TLS <= 1.2 handshake (TLS 1.3 encrypts the chain,
 * resumption sends none: cert_seen false means "not assessable", never a
 * pass). cert_names: the leaf's SAN dNSNames in certificate order, then
 * "CN=<subject CN>" when there is one: a CN is never a DNS-ID, and the
 * "CN=" prefix never matches a host name. not_before/not_after: epoch
 * seconds. issuer: RFC 2253 one-line form. chain_trusted: the chain verifies
 * against the configured CA store at capture time (host name not checked;
 * false without a store). */
struct dp_tls_facts {
	bool client_hello, server_hello;
	uint16_t version_offered_max, version;
	bool resumed;
	const char *sni;
	bool cert_seen;
	const char *const *cert_names;
	size_t ncert_names;
	int64_t not_before, not_after;
	const char *issuer;
	bool chain_trusted;
};

/* One wire signal (dataplane/wiresig.h lists the names, each with its
 * research-note signal W-n): a stable kebab-case name, the direction of the
 * evidence, and its stream offset in that direction (byte 0 = the first
 * byte of that side after the TCP handshake). The names this session
 * produces:
 *   starttls-capability-masked, starttls-command-masked,
 *   starttls-command-unrecognized, smtp-banner-masked, smtp-mailguard-reply,
 *   starttls-refused-then-cleartext, starttls-command-injection,
 *   starttls-response-injection, non-tls-after-starttls,
 *   tls-downgrade-sentinel, tls-legacy-version, tls-weak-cipher,
 *   tls-client-certificate-alert, tls13-client-abort,
 *   starttls-offered-not-used.
 * Names that need a policy or other sessions (wiresig_policy and the
 * consumer): starttls-not-offered, tls-cert-invalid-continued,
 * mx-not-in-policy, tls-sni-missing, cleartext-rcpt-enforce-domain,
 * cleartext-retry-after-tls-failure. */
struct dp_anomaly {
	const char *name;
	enum dp_dir dir;
	uint64_t offset;
};

/* Stream offsets (per the direction named) of the session's landmarks; 0
 * when not seen. */
struct dp_session_offsets {
	uint64_t ehlo_reply;   /* S2C: the last EHLO reply */
	uint64_t mail, rcpt;   /* C2S: the first cleartext MAIL / RCPT */
	uint64_t client_hello; /* C2S */
	uint64_t server_hello, certificate; /* S2C */
};

/* One server reply as the parser matched it to its command (PIPELINING
 * included): verb is an enum smtpp_verb (GREETING for the banner,
 * DATA_END for the reply after the end of data, NONE when unmatched). */
struct dp_reply {
	uint16_t verb, code;
};

struct dp_session_record {
	const struct dp_session_info *info;
	const char *helo;
	bool starttls_offered, starttls_used, pipelining, chunking, auth_seen;
	unsigned transactions, messages;
	const char *end_reason; /* "fin", "rst", "idle", "evicted", "capture-end" */
	uint64_t tls_bytes[2];  /* by enum dp_dir, after STARTTLS or (implicit TLS) all */
	uint64_t gaps;          /* holes in either direction */
	struct dp_tls_facts tls;
	const struct dp_anomaly *anomalies;
	size_t nanomalies;
	/* additions of the TLS part */
	bool ehlo_seen;        /* a 250 reply to EHLO was read */
	bool tls_established;  /* the handshake completed (tlsobs_established) */
	bool tls_failed;       /* STARTTLS accepted, handshake did not complete */
	bool tls_anonymous;    /* TLS <= 1.2 full handshake with an anonymous suite: no certificate exists */
	const char *tls_fail_reason; /* "alert", "not-tls", "no-server-hello", "incomplete" or NULL */
	const char *const *rcpt_domains; /* cleartext RCPT TO domains, lowercase, distinct */
	size_t nrcpt_domains;
	struct dp_session_offsets off;
	uint64_t first_ts_ns, last_ts_ns; /* capture times of the first and last segment */
	/* every reply in order, the first DP_SESSION_MAX_REPLIES (more are
	 * counted in replies_over); replies after STARTTLS are encrypted */
	const struct dp_reply *replies;
	size_t nreplies;
	uint64_t replies_over;
};

struct dp_session_counters {
	uint64_t segments, bytes, out_of_order, retransmits, overlaps_differ, gaps, memcap_drops;
	uint64_t commands, replies, messages;
	uint64_t rcpt_domains_over; /* past DP_SESSION_MAX_RCPT_DOMAINS */
	uint64_t tls_limits;        /* tlsobs limits hit (record, hello, chain, certs, sni, junk) */
};

struct dp_session_config {
	bool verify;   /* false: parse only (bench: reassembly + SMTP alone) */
	int64_t now;   /* for x= */
	/* Key lookup; must not block on the network (the dataplane never opens
	 * connections): the replay CLI answers from an embedded zone, or (--cp
	 * without --zone) by a synchronous KEY_REQUEST to the local control
	 * plane over its UNIX socket, accepted for an offline replay. */
	enum dkim_key_status (*key_lookup)(void *arg, const char *name, const struct dkim_key **key,
					   const char **why);
	void (*on_message)(void *arg, const struct dp_message_record *rec);
	void (*on_session)(void *arg, const struct dp_session_record *rec);
	void *arg;
	/* Asynchronous keys (wireseal-dp with the control plane; NULL for the
	 * synchronous lookup above): key_ready says whether key_lookup can
	 * answer name now, and may start fetching it. A message that ends with
	 * a key not ready is parked (msgstream.h) and handed to on_parked
	 * instead of on_message: rec has dkim, arc and hdr NULL, the callee
	 * owns p, decides it later (msgstream_parked_finish) and makes the
	 * message record itself. */
	bool (*key_ready)(void *arg, const char *name);
	void (*on_parked)(void *arg, const struct dp_message_record *rec,
			  struct msgstream_parked *p);
	/* CA store for the chain check of TLS <= 1.2 certificates (tlscert.h);
	 * NULL: chain_trusted is always false. Shared read-only by sessions. */
	struct x509_store_st *ca_store;
	/* The worker's pool of DKIM verifiers and ARC validators (msgstream.h),
	 * or NULL: each session makes its own. Must outlive the sessions. */
	struct msgstream_pool *pool;
	/* The worker's signature batch (sigbatch.h), or NULL: each message's
	 * signatures are verified at its end. With one (and synchronous keys:
	 * no key_ready), a message with public-key work left waits in it and
	 * its record goes to on_message when the batch runs; every other
	 * record (on_message, on_parked, on_session) runs the batch first, so
	 * records come in the same order either way. The batch's emit must be
	 * on_message with arg. Must outlive the sessions. */
	struct sigbatch *batch;
};

struct dp_session;

struct dp_session *dp_session_new(const struct dp_session_config *cfg,
				  const struct dp_session_info *info);
/* One TCP segment of this connection. flags: TCP header flags (SYN 0x02,
 * FIN 0x01, RST 0x04, ACK 0x10). ts_ns: capture time. */
void dp_session_segment(struct dp_session *s, enum dp_dir dir, uint32_t seq, uint32_t ack,
			uint8_t flags, const uint8_t *payload, size_t len, uint64_t ts_ns);
/* The session is over (FIN/RST already fed, or idle timeout, eviction, end of
 * capture): flush what is pending, emit the records. Idempotent. */
void dp_session_end(struct dp_session *s, const char *reason);
const struct dp_session_counters *dp_session_counters(const struct dp_session *s);
void dp_session_free(struct dp_session *s); /* NULL-safe; ends the session first */

/* Release reassembly rings with nothing held, line buffers with no partial
 * line, and (when no message is open) the DKIM verifier and header buffers.
 * For a session that went quiet; it still works afterwards. */
void dp_session_trim(struct dp_session *s);

#define DP_SESSION_MAX_PATH 256u /* HELO name, reverse- and forward-path (RFC 5321 4.5.3.1.3) */
#define DP_SESSION_MAX_RCPT_DOMAINS 16u /* distinct cleartext RCPT domains kept; more counted */
#define DP_SESSION_MAX_REPLIES 256u /* reply codes kept per session (4 bytes each); more counted */

#endif
