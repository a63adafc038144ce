/*
 * dkim: DKIM signatures (RFC 6376) with RFC 8301 (no rsa-sha1, RSA >= 1024
 * bits) and RFC 8463 (Ed25519), verifying and signing.
 *
 * Verification streams: the caller parses the header block (rfc5322), hands
 * it to dkim_verifier_start, then feeds the body in chunks of any size;
 * each distinct (body canonicalisation, hash, l=) is computed once however
 * many signatures share it, and the body is never stored. Keys come from the
 * caller (this module does no DNS): for each signature that needs one,
 * dkim_verifier_key_name says what to look up and dkim_verifier_set_key
 * hands over the parsed record or the lookup's failure. dkim_verifier_finish
 * hashes the signed headers and checks the signatures in one batch.
 *
 * Results use RFC 8601's codes with a reason:
 *   pass       the signature verified
 *   fail       body hash or signature mismatch, body shorter than l=, expired
 *   policy     acceptable syntax, refused by rule: rsa-sha1, RSA < 1024 bits,
 *              more signatures than DKIM_MAX_SIGS
 *   permerror  malformed signature or key record, no key, key refuses the
 *              signature (k=, h=, s=, t=s), From not signed, i= outside d=
 *   temperror  the key lookup failed temporarily
 *
 * Limits: DKIM_MAX_SIGS signatures verified per message, DKIM_MAX_SIGNED
 * header names per h=, RSA keys of 1024..8192 bits (WS_SIG_RSA_MAX_BITS).
 *
 * Ownership: a verifier is one caller's, reused message after message
 * (dkim_verifier_start resets it). It borrows the header block from start
 * to finish and each key from set_key to finish. Not thread-safe.
 */
#ifndef WS_AUTH_DKIM_H
#define WS_AUTH_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canon.h"
#include "hash.h"
#include "sig.h"

struct rfc5322_header;
struct rfc5322_field;

#define DKIM_MAX_SIGS 8u              /* signatures verified per message */
#define DKIM_MAX_SIGNED 64u           /* header names in one h= */
#define DKIM_MIN_RSA_BITS 1024u       /* RFC 8301 */
#define DKIM_MAX_DOMAIN 253u          /* d=, i= domain, s= */
#define DKIM_MAX_KEY_NAME (DKIM_MAX_DOMAIN * 2 + 12)

enum dkim_result {
	DKIM_NONE,
	DKIM_PASS,
	DKIM_FAIL,
	DKIM_NEUTRAL,
	DKIM_POLICY,
	DKIM_PERMERROR,
	DKIM_TEMPERROR,
};
const char *dkim_result_name(enum dkim_result r);

enum dkim_algo {
	DKIM_RSA_SHA256,
	DKIM_RSA_SHA1,
	DKIM_ED25519_SHA256,
};
const char *dkim_algo_name(enum dkim_algo a);
/* -1 for an unknown algorithm name. */
int dkim_algo_parse(const char *s, size_t len, enum dkim_algo *out);
enum ws_sig_alg dkim_algo_key(enum dkim_algo a);
enum ws_hash_alg dkim_algo_hash(enum dkim_algo a);

struct dkim_span {
	const char *p;
	size_t len;
};

/* Which header field carries the signature: DKIM-Signature, or one of the
 * two signed ARC fields (RFC 8617), which share the tag syntax with small
 * differences (i= is the instance, no v=, the seal has no h=/bh=/l=). */
enum dkim_sig_kind {
	DKIM_SIG_DKIM,
	DKIM_SIG_ARC_AMS,
	DKIM_SIG_ARC_SEAL,
};

/* A parsed signature. Spans point into the header field text. */
struct dkim_sig {
	enum dkim_sig_kind kind;
	enum dkim_algo algo;
	enum canon_alg hcanon, bcanon;
	char d[DKIM_MAX_DOMAIN + 1]; /* lowercase */
	char s[DKIM_MAX_DOMAIN + 1];
	char i_domain[DKIM_MAX_DOMAIN + 1]; /* domain of i= (DKIM), lowercase; "" = absent */
	unsigned instance;                   /* ARC i= */
	enum { DKIM_CV_NONE, DKIM_CV_PASS, DKIM_CV_FAIL, DKIM_CV_ABSENT } cv; /* ARC seal */
	uint64_t l;                          /* CANON_NO_LIMIT when absent */
	int64_t t, x;                        /* -1 when absent */
	struct dkim_span h[DKIM_MAX_SIGNED];
	size_t nh;
	uint8_t b[WS_SIG_MAX_LEN];
	size_t b_len;
	uint8_t bh[WS_HASH_MAX_LEN];
	size_t bh_len;
	char b_prefix[9]; /* first 8 characters of b= for header.b (RFC 6008) */
	/* the field with the b= value removed, as the header hash signs it:
	 * raw[0..b_cut) + raw[b_cut_end..len) */
	size_t b_cut, b_cut_end;
};

/*
 * Parse the field (raw text as received, without its final CRLF; value_off is
 * where its value starts). Returns 0, or -1 with *why (a static string) on
 * anything that makes the signature a permerror. now is the verification
 * time (seconds since the epoch) for no checks here; expiry is the verifier's.
 */
int dkim_sig_parse(enum dkim_sig_kind kind, const char *raw, size_t len, size_t value_off,
		   struct dkim_sig *out, const char **why);

/* A parsed key record (RFC 6376 3.6.1). */
struct dkim_key {
	enum ws_sig_alg alg;
	bool revoked;      /* empty p= */
	bool testing;      /* t=y */
	bool strict;       /* t=s: i= domain must equal d= */
	bool sha1_ok, sha256_ok; /* h= (both when absent) */
	bool email_ok;     /* s= includes email or * (true when absent) */
	unsigned bits;
	struct ws_pubkey *pub; /* NULL when revoked */
};

/* 0 and *out (release with dkim_key_clear), or -1 with *why. */
int dkim_key_parse(const char *txt, size_t len, struct dkim_key *out, const char **why);
void dkim_key_clear(struct dkim_key *k);

/* Whether key may check sig (revoked, k=, h=, s=, t=s, RSA size against
 * min_rsa_bits): 0, or -1 with the result (permerror/policy) and why. */
int dkim_key_check(const struct dkim_sig *sig, const struct dkim_key *key, unsigned min_rsa_bits,
		   enum dkim_result *res, const char **why);

/* "<s>._domainkey.<d>" into out; 0, or -1 when it does not fit. */
int dkim_key_name(const char *s, const char *d, char *out, size_t cap);

/* ---- verification -------------------------------------------------- */

struct dkim_verify_config {
	int64_t now;          /* seconds since the epoch, for x= */
	unsigned max_sigs;    /* 0 = DKIM_MAX_SIGS */
	unsigned min_rsa_bits;/* 0 = DKIM_MIN_RSA_BITS */
	/* NULL: body hashes on OpenSSL. Else SHA-256 body hashes are members of
	 * this lane group (crypto/hash.h), which must outlive the verifier; the
	 * caller runs the group between dkim_verifier_body_close and _body_end. */
	struct ws_hash_lanes *lanes;
};

enum dkim_key_status {
	DKIM_KEY_FOUND,     /* key points to a parsed record */
	DKIM_KEY_MISSING,   /* NXDOMAIN / NODATA / no usable record: permerror */
	DKIM_KEY_INVALID,   /* the record did not parse: permerror, why given */
	DKIM_KEY_TEMPFAIL,  /* DNS temporary failure: temperror */
};

struct dkim_sig_result {
	enum dkim_result result;
	const char *reason;      /* static text */
	bool parsed;             /* sig is valid below */
	struct dkim_sig sig;
	size_t field;            /* index of the signature field in the header */
	char key_name[DKIM_MAX_KEY_NAME + 1]; /* "" when no key is needed */
	bool key_done;
	unsigned key_bits;
	bool testing;
};

struct dkim_verifier;

struct dkim_verifier *dkim_verifier_new(const struct dkim_verify_config *cfg);
void dkim_verifier_free(struct dkim_verifier *v); /* NULL-safe */
/* Set the time used for x= on the following messages. */
void dkim_verifier_set_now(struct dkim_verifier *v, int64_t now);
/* Back to the state of a new verifier (no message, no results, no borrowed
 * header block or keys) for reuse by another session, keeping its buffers
 * and hash objects; the big arrays are not zeroed (start sets what it uses).
 * The configuration stays; set_now changes the time. */
void dkim_verifier_reset(struct dkim_verifier *v);

/* A message's header block is complete: find and parse its signatures and
 * set up the body hashes. Returns the number of DKIM-Signature fields found
 * (results exist for each, in header order, top to bottom). */
size_t dkim_verifier_start(struct dkim_verifier *v, const struct rfc5322_header *hdr);
void dkim_verifier_body(struct dkim_verifier *v, const uint8_t *data, size_t len);
/* The body ended (capture gaps are the caller's business: it must not call
 * finish for a message whose body was incomplete). */
void dkim_verifier_body_end(struct dkim_verifier *v);
/* The borrowed header block was moved (copied by value, its buffers kept):
 * borrow it at its new place. For a message parked until its keys come. */
void dkim_verifier_rehome(struct dkim_verifier *v, const struct rfc5322_header *hdr);
/* Optional, before body_end: the canonicalisers emit their last bytes into
 * the body hashes, which body_end then finalises (a lane group's owner runs
 * the group in between, so those bytes go through the lanes too). */
void dkim_verifier_body_close(struct dkim_verifier *v);

size_t dkim_verifier_count(const struct dkim_verifier *v);
/* The key this signature waits for, or NULL (already decided / no key). */
const char *dkim_verifier_key_name(const struct dkim_verifier *v, size_t i);
/* Hand over a key lookup's outcome; for DKIM_KEY_FOUND key is borrowed until
 * finish; why explains MISSING/INVALID/TEMPFAIL (static string). */
void dkim_verifier_set_key(struct dkim_verifier *v, size_t i, enum dkim_key_status st,
			   const struct dkim_key *key, const char *why);
/* Decide every signature. Needs body_end first. Same as prepare, the jobs
 * through ws_sig_verify_batch, complete. */
void dkim_verifier_finish(struct dkim_verifier *v);
/*
 * finish in two steps, for a caller that verifies several messages'
 * signatures in one ws_sig_verify_batch (a batch backend runs 8 RSA verifies
 * at once). prepare decides every signature it can without public-key work
 * (body hash, l=, key checks) and returns the verify jobs left (*jobs points
 * into v; each job's result is -1 until set). The caller sets every job's
 * result, as ws_sig_verify_batch does, then calls complete, which decides
 * those signatures and releases the borrowed keys. Nothing else may be
 * called on v in between.
 */
size_t dkim_verifier_prepare(struct dkim_verifier *v, struct ws_verify_job **jobs);
void dkim_verifier_complete(struct dkim_verifier *v);
/* Give up on this message without checking anything: every signature's
 * result becomes temperror with reason (static text), whatever was decided
 * before, and borrowed keys are released. For a message some of whose bytes
 * were never seen (capture gap, memory cap): a partial body or header block
 * must not turn into fail. Instead of finish; needs no body_end. */
void dkim_verifier_abort(struct dkim_verifier *v, const char *reason);
const struct dkim_sig_result *dkim_verifier_result(const struct dkim_verifier *v, size_t i);

/*
 * Shared with ARC: the bytes a header hash covers, in order: each field named
 * in sig->h (bottom-most unused instance first; an absent one adds nothing),
 * canonicalised with CRLF, then the signature field itself with its b= value
 * removed, canonicalised without CRLF. Appended to *buf (grown with realloc,
 * *cap updated). used[] (hdr->nfields flags) marks instances taken; pass NULL
 * to use a private one. Returns 0, or -1 on allocation failure.
 */
int dkim_header_input(const struct rfc5322_header *hdr, const struct dkim_sig *sig,
		      const char *sig_raw, size_t sig_len, char **buf, size_t *len, size_t *cap);

/* ---- signing ------------------------------------------------------- */

struct dkim_sign_params {
	enum dkim_sig_kind kind;       /* DKIM_SIG_DKIM for DKIM-Signature */
	const struct ws_privkey *key;
	enum dkim_algo algo;           /* must match the key */
	const char *domain, *selector;
	enum canon_alg hcanon, bcanon;
	const char *headers;           /* colon-separated h= list; NULL = default set present */
	bool body_length;              /* add l= */
	int64_t t, x;                  /* -1 = leave out */
	const char *auid;              /* i= (DKIM) or NULL */
	unsigned instance;             /* ARC i= */
};

/*
 * Sign the message msg (header block + body). Writes the complete new header
 * field ("DKIM-Signature: ...\r\n", folded) to a malloc'd *out. Returns 0, or
 * -1 with *why.
 */
int dkim_sign(const struct dkim_sign_params *p, const uint8_t *msg, size_t len, char **out,
	      size_t *out_len, const char **why);

#endif
