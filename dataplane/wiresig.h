/*
 * wiresig: STARTTLS stripping, injection and TLS downgrade signals of one
 * outbound SMTP session (research note mta-sts.md 3.2, W-1..W-19), as typed
 * anomalies: a stable kebab-case name, the direction, and the stream offset
 * (in that direction) of the evidence bytes.
 *
 * Two sources. Byte patterns of cleartext lines (masked EHLO capability
 * "250-XXXXXXXA", masked STARTTLS verb "XXXXXXXX", "220 ****" banner, the
 * PIX "502 5.5.2 Error: command not recognized") are matched by one
 * hyperscan database, compiled once per process (wiresig_init_db; the
 * scratch space is per thread, allocated on a thread's first scan). The
 * rest is state logic driven by the session: commands and replies
 * (wiresig_command/_reply), the first bytes after STARTTLS, and the TLS
 * facts at the session's end (wiresig_tls). Signals that need a policy
 * (W-1, W-11, W-14, W-16, W-18) come from wiresig_policy, a pure function
 * the consumer that knows the policy calls (replay offline, the control
 * plane live); W-6 (cleartext retry after a failed handshake) needs other
 * sessions and is raised by the consumer that correlates them.
 *
 * Each name is raised at most once per session (the first evidence), so a
 * session holds at most WIRESIG_COUNT anomalies; the array is allocated on
 * the first one. Not thread-safe per session (the session's worker owns it).
 */
#ifndef WS_DATAPLANE_WIRESIG_H
#define WS_DATAPLANE_WIRESIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session.h"
#include "smtpp.h"
#include "sts.h"
#include "tlsobs.h"

/* [enum, name, research-note signal] */
#define WIRESIG_NAMES(X)                                                             \
	X(WS_SIG_STARTTLS_NOT_OFFERED, "starttls-not-offered")           /* W-1 p */ \
	X(WS_SIG_CAPABILITY_MASKED, "starttls-capability-masked")        /* W-2 */   \
	X(WS_SIG_COMMAND_MASKED, "starttls-command-masked")              /* W-3a */  \
	X(WS_SIG_COMMAND_UNRECOGNIZED, "starttls-command-unrecognized")  /* W-3b */  \
	X(WS_SIG_BANNER_MASKED, "smtp-banner-masked")                    /* W-4 */   \
	X(WS_SIG_MAILGUARD_REPLY, "smtp-mailguard-reply")                /* W-4 */   \
	X(WS_SIG_REFUSED_CLEARTEXT, "starttls-refused-then-cleartext")   /* W-5 */   \
	X(WS_SIG_CLEARTEXT_RETRY, "cleartext-retry-after-tls-failure")   /* W-6 c */ \
	X(WS_SIG_COMMAND_INJECTION, "starttls-command-injection")        /* W-7 */   \
	X(WS_SIG_RESPONSE_INJECTION, "starttls-response-injection")      /* W-8 */   \
	X(WS_SIG_NOT_TLS, "non-tls-after-starttls")                      /* W-9 */   \
	X(WS_SIG_DOWNGRADE_SENTINEL, "tls-downgrade-sentinel")           /* W-10 */  \
	X(WS_SIG_LEGACY_VERSION, "tls-legacy-version")                   /* W-10 */  \
	X(WS_SIG_WEAK_CIPHER, "tls-weak-cipher")                         /* W-10 */  \
	X(WS_SIG_CERT_INVALID_CONTINUED, "tls-cert-invalid-continued")   /* W-11 p */\
	X(WS_SIG_CLIENT_CERT_ALERT, "tls-client-certificate-alert")      /* W-12 */  \
	X(WS_SIG_TLS13_CLIENT_ABORT, "tls13-client-abort")               /* W-13 */  \
	X(WS_SIG_MX_NOT_IN_POLICY, "mx-not-in-policy")                   /* W-14 p */\
	X(WS_SIG_SNI_MISSING, "tls-sni-missing")                         /* W-16 p */\
	X(WS_SIG_CLEARTEXT_ENFORCE, "cleartext-rcpt-enforce-domain")     /* W-18 p */\
	X(WS_SIG_STARTTLS_NOT_USED, "starttls-offered-not-used")         /* W-19 */

#define WIRESIG_X_ENUM(e, s) e,
enum wiresig_name { WIRESIG_NAMES(WIRESIG_X_ENUM) WIRESIG_COUNT };
#undef WIRESIG_X_ENUM
const char *wiresig_name(enum wiresig_name n);

struct wiresig {
	struct dp_anomaly *an; /* WIRESIG_COUNT slots, allocated on the first */
	uint32_t seen;         /* bit per name */
	uint8_t n;
	bool starttls_sent, starttls_pending, starttls_refused, tls;
	bool alloc_failed;
	bool offered;          /* the last EHLO reply carried STARTTLS */
	uint8_t pre[2][4];     /* the first bytes after STARTTLS, per direction */
	uint8_t pre_have[2];
	uint64_t pre_off[2];
};

/* Compile the pattern database once for the process (thread-safe, idempotent).
 * 0, or -1 with a reason (the signals from patterns are then not raised). */
int wiresig_init_db(char *why, size_t why_len);

void wiresig_init(struct wiresig *w);
void wiresig_free(struct wiresig *w);
void wiresig_raise(struct wiresig *w, enum wiresig_name n, enum dp_dir dir, uint64_t off);

/* A cleartext line (smtpp's line op). */
void wiresig_line(struct wiresig *w, enum smtpp_dir dir, enum smtpp_verb verb, const uint8_t *p,
		  size_t len, uint64_t off);
/* A command / a complete reply; caps: the EHLO capabilities so far. */
void wiresig_command(struct wiresig *w, enum smtpp_verb verb, uint64_t off,
		     const struct smtpp_caps *caps);
void wiresig_reply(struct wiresig *w, enum smtpp_verb verb, unsigned code, uint64_t off,
		   const struct smtpp_caps *caps);
/* Bytes after an accepted STARTTLS (only the first few are looked at). */
void wiresig_tls_bytes(struct wiresig *w, enum smtpp_dir dir, const uint8_t *p, size_t len,
		       uint64_t off);
/* At the session's end: the TLS facts (NULL without an accepted STARTTLS). */
void wiresig_tls(struct wiresig *w, const struct tlsobs_facts *f);

/* What the consumer that knows the policy tells wiresig_policy. */
struct wiresig_policy_in {
	bool has_policy; /* a policy in mode testing or enforce */
	bool enforce;
	bool mx_match;   /* the MX host matched the policy's patterns */
	enum sts_cert cert; /* STS_CERT_NOT_ASSESSABLE when no chain was seen */
};

/* The policy-conditioned signals (W-1, W-11, W-14, W-16, W-18) of a session
 * record; writes at most max, returns how many. */
size_t wiresig_policy(const struct dp_session_record *rec, const struct wiresig_policy_in *in,
		      struct dp_anomaly *out, size_t max);

#endif
