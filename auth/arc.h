/*
 * arc: Authenticated Received Chain (RFC 8617), validation and sealing.
 *
 * Data model: a message's ARC sets are its ARC-Authentication-Results (AAR),
 * ARC-Message-Signature (AMS) and ARC-Seal (AS) fields grouped by instance
 * i=1..N. arc_validator_start collects them from the parsed header block
 * (exactly one of each per instance, no gaps, no duplicates, at most
 * ARC_MAX_SETS) and parses the AMS/AS with the DKIM tag parser; the body is
 * then streamed through arc_validator_body like the DKIM verifier's (the
 * same canonicalisers; each distinct AMS c=/a=/l= hashed once, memory stays
 * O(headers)). Keys come from the caller, slot by slot
 * (arc_validator_key_name / arc_validator_set_key, the DKIM key rules:
 * RFC 8301, no rsa-sha1, RSA >= 1024 bits). arc_validator_finish decides:
 *
 *   none  no ARC fields
 *   fail  malformed or incomplete sets, newest seal cv=fail, a seal whose
 *         cv= does not fit its instance (i=1 none, later pass), the newest
 *         AMS not verifying, any seal not verifying
 *   pass  otherwise; oldest_pass is then the lowest instance m such that
 *         the AMS of every set m..N still verifies (RFC 8617 5.2)
 *
 * Sealing (arc_seal) adds set N+1 on top of a message: an AAR merged from
 * the sealer's own Authentication-Results fields, an AMS (dkim_sign) and an
 * AS over every set; it adds nothing when the newest seal says cv=fail.
 *
 * Limits: ARC_MAX_SETS sets (51 is a fail), ARC_MAX_BODY_HASHES distinct
 * AMS body hashes (older AMSs past it count as not verifying for
 * oldest-pass only). Ownership: a validator is one caller's, reused message
 * after message; it borrows the header block from start to finish and each
 * key from set_key to finish. Not thread-safe.
 */
#ifndef WS_AUTH_ARC_H
#define WS_AUTH_ARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dkim.h"

struct rfc5322_header;
struct authres_parsed;

#define ARC_MAX_SETS 50u        /* RFC 8617 4.2.1 */
#define ARC_MAX_BODY_HASHES 8u  /* distinct AMS body hashes per message */

enum arc_result {
	ARC_NONE,
	ARC_PASS,
	ARC_FAIL,
};
const char *arc_result_name(enum arc_result r);

struct arc_set_result {
	unsigned instance;
	size_t aar_field, ams_field, as_field; /* indexes in the header block */
	const char *aar;    /* AAR payload after "i=N;", trimmed (points into the block) */
	size_t aar_len;
	bool ams_parsed, as_parsed;
	struct dkim_sig ams, as;
	enum dkim_result ams_result, as_result; /* DKIM_NONE: not checked */
	const char *ams_reason, *as_reason;
};

struct arc_chain {
	enum arc_result result;
	const char *reason;     /* static text */
	unsigned fail_instance; /* the set that failed; 0 = none or not one set */
	unsigned nsets;         /* sets found (N), 0 when malformed before counting */
	unsigned oldest_pass;   /* 1..N when result is pass, else 0 */
	bool temporary;         /* a fail caused by a key lookup failing temporarily */
	const struct arc_set_result *sets; /* sets[0..nsets), instance k at sets[k-1] */
};

struct arc_config {
	unsigned min_rsa_bits; /* 0 = DKIM_MIN_RSA_BITS */
};

struct arc_validator;

struct arc_validator *arc_validator_new(const struct arc_config *cfg);
void arc_validator_free(struct arc_validator *v); /* NULL-safe */
/* Back to the state of a new validator (no chain, no borrowed header block
 * or keys) for reuse by another session, keeping its buffers and hash
 * objects; the per-set arrays are not zeroed (start sets what it uses). */
void arc_validator_reset(struct arc_validator *v);

/* Collect and parse the sets; returns the number of sets (0 = none or
 * malformed: the chain's result already says which). */
size_t arc_validator_start(struct arc_validator *v, const struct rfc5322_header *hdr);
void arc_validator_body(struct arc_validator *v, const uint8_t *data, size_t len);
void arc_validator_body_end(struct arc_validator *v);
/* As dkim_verifier_rehome: the header block moved, borrow it there. */
void arc_validator_rehome(struct arc_validator *v, const struct rfc5322_header *hdr);

/* Key slots: 2*(i-1) is the AMS of set i, 2*(i-1)+1 its AS. */
size_t arc_validator_key_slots(const struct arc_validator *v);
/* The key slot k waits for, or NULL. */
const char *arc_validator_key_name(const struct arc_validator *v, size_t k);
void arc_validator_set_key(struct arc_validator *v, size_t k, enum dkim_key_status st,
			   const struct dkim_key *key, const char *why);
void arc_validator_finish(struct arc_validator *v);
const struct arc_chain *arc_validator_chain(const struct arc_validator *v);

/* Parse "i=N; <A-R payload>" (an AAR value). 0 with *instance and, when
 * payload is not NULL, the rest; -1 with *why. */
int arc_aar_parse(const char *value, size_t len, unsigned *instance, const char **payload,
		  size_t *payload_len, const char **why);

/* ---- sealing ------------------------------------------------------- */

struct arc_seal_params {
	const struct ws_privkey *key;
	enum dkim_algo algo;
	const char *domain, *selector;
	const char *authserv_id;   /* whose Authentication-Results feed the AAR */
	const char *headers;       /* AMS h=, colon-separated; NULL = dkim_sign's default set */
	enum canon_alg hcanon, bcanon; /* AMS c= (the AS is always relaxed) */
	int64_t t;                 /* t= of AMS and AS; -1 = leave out */
	enum arc_result cv;        /* the chain as validated on arrival (ignored for i=1) */
};

/* The arc= result in the first Authentication-Results field of authserv_id
 * that has one: 0 and *out, or -1 when there is none. */
int arc_cv_from_authres(const struct rfc5322_header *hdr, const char *authserv_id,
			enum arc_result *out);

/*
 * Seal msg (header block + body). Returns 0 with the three new fields
 * ("ARC-Seal: ...\r\nARC-Message-Signature: ...\r\nARC-Authentication-
 * Results: ...\r\n", the order they go on top of the message) in a malloc'd
 * *out; 1 when nothing is to be added (the newest seal says cv=fail); -1
 * with *why (malformed chain, ARC_MAX_SETS reached, key trouble).
 */
int arc_seal(const struct arc_seal_params *p, const uint8_t *msg, size_t len, char **out,
	     size_t *out_len, const char **why);

#endif
