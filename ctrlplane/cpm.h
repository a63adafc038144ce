/*
 * cpm: the dataplane <-> control-plane message protocol (wireseal-dp talks to
 * wireseal-cp over a UNIX SOCK_SEQPACKET socket; wiresealctl does not use it).
 *
 * Wire format: one datagram holds one or more records (batching), never
 * more than CPM_MAX_DATAGRAM bytes. A record is
 *     u16 type | u32 payload length | payload
 * and a payload is the message's fields in the order its walk function in
 * cpm.c lists them, each marshalled by a typed helper: integers big-endian
 * (u8/u16/u32/u64), strings and byte strings as u32 length + bytes, lists as
 * u32 count + items. Decoding fails unless every byte of a payload and of
 * the datagram is consumed, a count or length is over its named limit, a
 * string holds a NUL, or the type is unknown. The message types are declared
 * once in CPM_FOREACH_TYPE (id, name, struct field) below.
 *
 * Session: both ends send HELLO{CPM_MAGIC, CPM_VERSION, role} first, alone
 * in its datagram. A peer whose HELLO has another magic, another version or
 * the wrong role, or that sends anything else first, gets ERROR and the
 * connection is closed. After the handshake, any datagram that does not
 * decode is answered with ERROR{CPM_E_MALFORMED} and the connection is
 * closed (the dataplane reconnects and re-sends what was not ACKed).
 *
 * Records and acknowledgement: the dataplane numbers its MESSAGE_RECORD and
 * SESSION_RECORD (record_id, from 1) in increasing order on a connection
 * (else ERROR{CPM_E_ORDER}); ids must not repeat with the same ts_usec
 * across dataplane restarts (the sink dedupes on the pair); ACK{n}
 * says every record with id <= n sent on this connection is durably written
 * by the sinks. Unacknowledged records are re-sent after a reconnect, so a
 * sink may see a record twice (at-least-once). KEY_REQUEST carries a req_id
 * chosen by the requester; KEY_ANSWER echoes it, in any order. STS_QUERY
 * (the inline hook: "may a session to this domain proceed in cleartext?")
 * works the same way: STS_ANSWER echoes its req_id. A MESSAGE_RECORD with
 * verdict_wanted set is answered, once its policy is done and before the
 * ACK that covers it, by a VERDICT with its record_id (SPF, DMARC, the ARC
 * override, local policy and the Authentication-Results value: what the
 * control plane's policy decided); a re-sent record may be answered again.
 *
 * Ownership: a decoded struct cpm_msg's strings (struct cpm_str) point into
 * the datagram buffer and are valid while it is; they are not NUL-terminated.
 * Thread-safety: none needed; writers and readers are caller-owned values.
 */
#ifndef WS_CTRLPLANE_CPM_H
#define WS_CTRLPLANE_CPM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CPM_MAGIC 0x57534350u      /* "WSCP" */
#define CPM_VERSION 4u /* 2: SESSION_RECORD carries TLS facts; STS_QUERY/STS_ANSWER;
                        * 3: MESSAGE_RECORD carries gap + verdict_wanted; VERDICT;
                        * 4: SESSION_RECORD carries the reply code per command */
#define CPM_MAX_DATAGRAM 65536u    /* bytes in one datagram (a batch) */
#define CPM_RECORD_HDR 6u          /* u16 type + u32 length */
#define CPM_MAX_STR 8192u          /* bytes of one string field */
#define CPM_MAX_RCPTS 100u         /* RCPT TO addresses in a MESSAGE_RECORD */
#define CPM_MAX_DKIM 16u           /* DKIM signature results in a MESSAGE_RECORD */
#define CPM_MAX_FROM 8u            /* From header field values in a MESSAGE_RECORD */
#define CPM_MAX_ARC 50u            /* ARC instances (RFC 8617 5.1.1.1) */
#define CPM_MAX_ANOMALIES 16u      /* anomalies in a SESSION_RECORD */
#define CPM_MAX_CERT_NAMES 64u     /* leaf certificate SAN dNSNames in a SESSION_RECORD */
#define CPM_MAX_RCPT_DOMAINS 32u   /* distinct RCPT TO domains in a SESSION_RECORD */
#define CPM_MAX_REPLIES 256u       /* replies in a SESSION_RECORD (= DP_SESSION_MAX_REPLIES) */
#define CPM_MAX_REPLY_CODE 599u    /* SMTP reply codes are 2yz..5yz (RFC 5321 4.2.1) */
#define CPM_MAX_STS_MX 64u         /* mx patterns in an STS_ANSWER (= STS_POLICY_MAX_MX) */
#define CPM_MAX_STATS 256u         /* counters in one STATS */

/* X(NAME, id, union member) */
#define CPM_FOREACH_TYPE(X)                  \
	X(HELLO, 1, hello)                   \
	X(ERROR, 2, error)                   \
	X(KEY_REQUEST, 3, key_request)       \
	X(KEY_ANSWER, 4, key_answer)         \
	X(MESSAGE_RECORD, 5, message)        \
	X(SESSION_RECORD, 6, session)        \
	X(ACK, 7, ack)                       \
	X(STATS, 8, stats)                   \
	X(STS_QUERY, 9, sts_query)           \
	X(STS_ANSWER, 10, sts_answer)        \
	X(VERDICT, 11, verdict)

enum cpm_type {
#define CPM_ENUM(name, id, member) CPM_##name = id,
	CPM_FOREACH_TYPE(CPM_ENUM)
#undef CPM_ENUM
};

/* "KEY_REQUEST" ...; "?" for an unknown id. */
const char *cpm_type_name(unsigned type);

enum cpm_role { CPM_ROLE_DATAPLANE = 1, CPM_ROLE_CONTROLPLANE = 2 };

#define CPM_FOREACH_ERROR(X)                                         \
	X(VERSION, 1, "protocol version mismatch")                   \
	X(MAGIC, 2, "not a wireseal cpm peer (bad magic)")           \
	X(ROLE, 3, "unexpected peer role")                           \
	X(NO_HELLO, 4, "message before HELLO")                       \
	X(MALFORMED, 5, "malformed datagram")                        \
	X(ORDER, 6, "record ids not increasing")                     \
	X(OVERLOAD, 7, "too many records in flight")

enum cpm_error_code {
#define CPM_EENUM(name, id, text) CPM_E_##name = id,
	CPM_FOREACH_ERROR(CPM_EENUM)
#undef CPM_EENUM
};
const char *cpm_error_text(unsigned code);

struct cpm_str {
	const char *p; /* not NUL-terminated; NULL with len 0 for "" */
	uint32_t len;
};

enum cpm_key_status { CPM_KEY_FOUND, CPM_KEY_MISSING, CPM_KEY_INVALID, CPM_KEY_TEMPFAIL };
const char *cpm_key_status_name(unsigned st);

struct cpm_hello {
	uint32_t magic;
	uint16_t version;
	uint8_t role;
};

struct cpm_error {
	uint32_t code;
	struct cpm_str text;
};

struct cpm_key_request {
	uint64_t req_id;
	struct cpm_str name; /* "<s>._domainkey.<d>" */
};

struct cpm_key_answer {
	uint64_t req_id;
	uint8_t status; /* enum cpm_key_status */
	uint32_t ttl;   /* seconds the answer (positive or negative) may be cached */
	struct cpm_str record; /* the TXT record text when FOUND; else a reason */
};

struct cpm_endpoint {
	struct cpm_str ip; /* text: "192.0.2.1", "2001:db8::1" */
	uint16_t port;
};

struct cpm_dkim {
	struct cpm_str d, s, a, result, reason;
};

enum cpm_arc_chain { CPM_ARC_NONE, CPM_ARC_PASS, CPM_ARC_FAIL };

struct cpm_arc {
	uint32_t instance;   /* i= */
	struct cpm_str sealer; /* ARC-Seal d= */
	struct cpm_str aar;  /* ARC-Authentication-Results value (opaque here) */
};

struct cpm_message {
	uint64_t record_id;
	uint64_t flow_id;
	uint64_t ts_usec; /* when the message ended, microseconds since the epoch */
	struct cpm_endpoint client, server;
	struct cpm_str helo, mail_from;
	uint32_t nrcpts;
	struct cpm_str rcpts[CPM_MAX_RCPTS];
	uint8_t starttls;     /* the transaction ran inside TLS */
	uint32_t transaction; /* 1 for the first transaction of the session */
	uint32_t ndkim;
	struct cpm_dkim dkim[CPM_MAX_DKIM];
	uint32_t nfrom;
	struct cpm_str from[CPM_MAX_FROM];
	uint8_t arc_chain; /* enum cpm_arc_chain */
	uint32_t narc;
	struct cpm_arc arc[CPM_MAX_ARC];
	/* why bytes of the message were not seen ("" = none): policy must not
	 * fail a message on bytes it never saw (a DMARC that did not pass is
	 * temperror) */
	struct cpm_str gap;
	uint8_t verdict_wanted; /* 1: answer with a VERDICT (replay prints it) */
};

/* Value ranges of the VERDICT's enumerations (the auth/ enums': spf_result,
 * dmarc_res, dmarc_policy, dmarc_org_method); the decoder refuses more. */
#define CPM_SPF_RESULT_MAX 6u
#define CPM_DMARC_RES_MAX 4u
#define CPM_DMARC_POLICY_MAX 2u
#define CPM_DMARC_ORG_MAX 1u

enum cpm_verdict_status {
	CPM_VERDICT_DONE,  /* the fields below hold the result */
	CPM_VERDICT_ERROR, /* policy could not run (inputs refused): why */
};

/* One SPF check_host outcome (auth/spf struct spf_outcome, the fields a
 * verdict reports). */
struct cpm_spf_outcome {
	uint8_t result; /* enum spf_result */
	struct cpm_str domain, mechanism, reason, explanation;
};

/* The control plane's policy result for one MESSAGE_RECORD. SPF is the
 * MAIL FROM identity's (postmaster@HELO for a null sender) and, beside it,
 * the HELO identity's; DMARC (RFC 7489/9989) with both organisational
 * domains when both were computed; the ARC override (RFC 8617 7.2) by a
 * trusted sealer; local policy (a per-From-domain override) and the final
 * disposition; and the Authentication-Results value written to the sink. */
struct cpm_verdict {
	uint64_t record_id;
	uint8_t status; /* enum cpm_verdict_status */
	struct cpm_str why;
	uint8_t spf_ran, spf_null_sender;
	struct cpm_str spf_mail_from, spf_helo_name;
	struct cpm_spf_outcome spf;
	uint8_t helo_ran;
	struct cpm_spf_outcome helo;
	uint8_t dmarc_ran;
	uint8_t dmarc_result, dmarc_policy, dmarc_disposition, org_method; /* auth/dmarc enums */
	uint8_t testing, sampled_out, org_disagree, spf_aligned, dkim_aligned;
	uint32_t pct;
	struct cpm_str from_domain, record_domain, org_domain, psl_org_domain, walk_org_domain;
	struct cpm_str dmarc_reason;
	uint8_t arc_applied;
	struct cpm_str arc_by, arc_sealer;
	uint32_t arc_instance;
	struct cpm_str arc_reason;
	struct cpm_str override;    /* the per-domain action applied, "" = none */
	struct cpm_str disposition; /* final: none|quarantine|reject ("" with skip) */
	struct cpm_str authres;     /* the Authentication-Results value */
};

/* Direction of an anomaly's evidence (dataplane enum dp_dir). */
enum cpm_dir { CPM_DIR_C2S = 0, CPM_DIR_S2C = 1 };

/* One wire signal: its name ("starttls-stripped", ...), which direction's
 * byte stream holds the evidence, and the evidence's offset in it. */
struct cpm_anomaly {
	struct cpm_str name;
	uint8_t dir; /* enum cpm_dir */
	uint64_t offset;
};

/* What the dataplane saw of the TLS handshake after STARTTLS, field for
 * field its struct dp_tls_facts. Versions are the TLS code points (0x0303
 * TLS 1.2, 0x0304 TLS 1.3; 0 = not seen). The certificate fields are
 * meaningful only when cert_seen (a full TLS <= 1.2 handshake): cert_names
 * are the leaf's SAN dNSNames, validity in seconds since the epoch. */
struct cpm_tls {
	uint8_t client_hello, server_hello;
	uint16_t version_offered_max, version;
	uint8_t resumed;
	struct cpm_str sni; /* "" = the ClientHello had no server_name */
	uint8_t cert_seen;
	uint32_t ncert_names;
	struct cpm_str cert_names[CPM_MAX_CERT_NAMES];
	int64_t not_before, not_after;
	struct cpm_str issuer;
	uint8_t chain_trusted;
};

/* One server reply and the command it answered (the dataplane's verb name:
 * "EHLO", "MAIL", "(greeting)", ...). */
struct cpm_reply {
	struct cpm_str verb;
	uint16_t code; /* 0 .. CPM_MAX_REPLY_CODE */
};

struct cpm_session {
	uint64_t record_id;
	uint64_t flow_id;
	uint64_t ts_usec; /* when the session ended (capture time) */
	struct cpm_endpoint client, server;
	struct cpm_str helo;
	uint8_t starttls_offered, starttls_used;
	struct cpm_str end_reason;
	uint32_t transactions;
	/* the domains of the RCPT TO addresses of the session's transactions
	 * (visible only in cleartext), each once, lowercase */
	uint32_t nrcpt_domains;
	struct cpm_str rcpt_domains[CPM_MAX_RCPT_DOMAINS];
	struct cpm_tls tls;
	uint32_t nanomalies;
	struct cpm_anomaly anomalies[CPM_MAX_ANOMALIES];
	/* the reply to each command in order, the first CPM_MAX_REPLIES;
	 * replies_over: how many more the session had (not sent) */
	uint32_t nreplies;
	struct cpm_reply replies[CPM_MAX_REPLIES];
	uint64_t replies_over;
};

struct cpm_ack {
	uint64_t up_to; /* every record id <= up_to is durable */
};

struct cpm_stat {
	struct cpm_str name; /* Prometheus metric-name characters */
	uint64_t value;
};

struct cpm_stats {
	uint32_t n;
	struct cpm_stat s[CPM_MAX_STATS];
};

struct cpm_sts_query {
	uint64_t req_id;
	struct cpm_str domain; /* the policy domain (RCPT TO domain), A-label form */
};

enum cpm_sts_status {
	CPM_STS_POLICY,   /* a policy applies: mode and mx below */
	CPM_STS_NONE,     /* no MTA-STS policy for the domain (or it is unusable) */
	CPM_STS_TEMPFAIL, /* not known yet (DNS or fetch still running, or failed) */
};
const char *cpm_sts_status_name(unsigned st);
enum cpm_sts_mode { CPM_STS_ENFORCE, CPM_STS_TESTING, CPM_STS_MODE_NONE }; /* = enum sts_mode */

struct cpm_sts_answer {
	uint64_t req_id;
	uint8_t status; /* enum cpm_sts_status */
	uint8_t mode;   /* enum cpm_sts_mode; meaningful when POLICY */
	uint32_t ttl;   /* seconds the answer may be cached by the dataplane */
	uint32_t nmx;
	struct cpm_str mx[CPM_MAX_STS_MX]; /* patterns as in the policy ("*.example.com") */
	struct cpm_str why;                /* a reason when not POLICY; else "" */
};

struct cpm_msg {
	enum cpm_type type;
	union {
#define CPM_MEMBER(name, id, member) struct cpm_##member member;
		CPM_FOREACH_TYPE(CPM_MEMBER)
#undef CPM_MEMBER
	} u;
};

/* A string view of a NUL-terminated C string (NULL -> ""). */
struct cpm_str cpm_s(const char *s);
/* Copies s into out (cap bytes, NUL-terminated); -1 when it does not fit. */
int cpm_str_copy(struct cpm_str s, char *out, size_t cap);
bool cpm_str_eq(struct cpm_str s, const char *c);

/* ---- marshalling helpers ---- */

struct cpm_writer {
	uint8_t *buf;
	size_t len, cap;
	bool overflow; /* a put did not fit: the datagram is unusable */
	unsigned records;
};

void cpm_writer_init(struct cpm_writer *w, uint8_t *buf, size_t cap);
void cpm_put_u8(struct cpm_writer *w, uint8_t v);
void cpm_put_u16(struct cpm_writer *w, uint16_t v);
void cpm_put_u32(struct cpm_writer *w, uint32_t v);
void cpm_put_u64(struct cpm_writer *w, uint64_t v);
void cpm_put_bytes(struct cpm_writer *w, const void *p, uint32_t len); /* u32 len + bytes */
void cpm_put_str(struct cpm_writer *w, struct cpm_str s);

struct cpm_reader {
	const uint8_t *p;
	size_t len, off;
	bool err; /* a get ran past the end or over a limit */
};

void cpm_reader_init(struct cpm_reader *r, const void *p, size_t len);
uint8_t cpm_get_u8(struct cpm_reader *r);
uint16_t cpm_get_u16(struct cpm_reader *r);
uint32_t cpm_get_u32(struct cpm_reader *r);
uint64_t cpm_get_u64(struct cpm_reader *r);
/* A length-prefixed byte string of at most max bytes (a view into r). */
struct cpm_str cpm_get_bytes(struct cpm_reader *r, uint32_t max);
/* As cpm_get_bytes, at most CPM_MAX_STR, and refusing a NUL byte. */
struct cpm_str cpm_get_str(struct cpm_reader *r);

/*
 * Appends one record to a datagram being built. Returns 0, or -1 when it does
 * not fit in the room left (the writer is left as it was: send what it holds
 * and start a new datagram) or a list is over its limit.
 */
int cpm_encode(struct cpm_writer *w, const struct cpm_msg *m);

/*
 * Decodes the next record of a datagram. Returns 1 with *m filled, 0 at the
 * end of the datagram (an empty datagram is an error), -1 with a reason.
 */
int cpm_decode_next(struct cpm_reader *dg, struct cpm_msg *m, char *why, size_t whylen);

/* HELLO check: 0, or the cpm_error_code that refuses it. */
int cpm_hello_check(const struct cpm_msg *m, enum cpm_role expected_peer);

#endif
