/*
 * sessjson: the session line of `wireseal replay --json` (and wireseal-dp):
 * one JSON object per SMTP session, {"session_record": {...}}, with the
 * session's facts, its TLS facts, its wire-signal anomalies and an "sts"
 * verdict computed offline by auth/sts's sts_decide.
 *
 * Offline policy knowledge (all optional): --sts-policy DOMAIN=FILE (an
 * MTA-STS policy body per policy domain), --mx-map IP=HOST (the MX host name
 * of a server address, used when the ClientHello had no SNI), --ca-file PEM
 * (the CA store for the certificate chain check). The policy domain is the
 * first cleartext RCPT TO domain that has a policy, else the first one
 * ("rcpt"), else (RCPT encrypted) the first policy whose mx patterns match
 * the MX host ("mx-host"), else none. The MX host is the SNI ("sni"), else
 * the --mx-map entry ("mx-map"), else none.
 *
 * Signals that need the policy (wiresig_policy) or other sessions
 * (cleartext-retry-after-tls-failure: a cleartext MAIL from a client whose
 * previous session, within SESSJSON_RETRY_WINDOW_S of capture time, had a
 * failed handshake) are added here to the dataplane's anomalies.
 *
 * Thread-safety: sessjson_print may be called from several workers; the
 * retry table is locked. Limits: SESSJSON_MAX_POLICIES, SESSJSON_MAX_MX_MAP,
 * SESSJSON_RETRY_SLOTS (clients remembered; the oldest is replaced).
 */
#ifndef WS_CLI_SESSJSON_H
#define WS_CLI_SESSJSON_H

#include <stdbool.h>
#include <stdio.h>

#include "session.h"

#define SESSJSON_MAX_POLICIES 16
#define SESSJSON_MAX_MX_MAP 64
#define SESSJSON_RETRY_SLOTS 256
#define SESSJSON_RETRY_WINDOW_S 900 /* a fallback retry comes within minutes (research note W-6) */

struct sessjson;

struct sessjson *sessjson_new(void);
void sessjson_free(struct sessjson *sj);
/* "DOMAIN=FILE": reads and parses the policy; -1 with a reason. */
int sessjson_add_policy(struct sessjson *sj, const char *arg, char *why, size_t why_len);
/* "IP=HOST"; -1 with a reason. */
int sessjson_add_mx(struct sessjson *sj, const char *arg, char *why, size_t why_len);
/* One session line to f (the caller holds f's lock). */
void sessjson_print(struct sessjson *sj, FILE *f, const struct dp_session_record *rec);

#endif
