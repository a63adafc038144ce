/*
 * canon: DKIM canonicalisation (RFC 6376 3.4), "simple" and "relaxed", for
 * header fields and, streaming, for bodies.
 *
 * Body: canon_body_update takes the body in chunks of any size, including
 * splits inside CRLF and inside runs of trailing blank lines, and the
 * canonical byte stream it produces does not depend on the split. Trailing
 * empty lines are held back as a count (never buffered), so memory is
 * constant whatever the body. Bare LF is treated as a line end (normalised to
 * CRLF), like the header parser does; bare CR is data. The canonical stream
 * goes into a struct ws_hash through a small staging buffer, truncated at the
 * l= limit when one is set; the total canonical length is counted anyway so a
 * verifier can tell a body shorter than l=.
 *
 * Ownership: struct canon_body is the caller's; it borrows the hash for its
 * lifetime. Not thread-safe; instances are independent.
 */
#ifndef WS_AUTH_CANON_H
#define WS_AUTH_CANON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hash.h"

enum canon_alg {
	CANON_SIMPLE,
	CANON_RELAXED,
};

#define CANON_NO_LIMIT UINT64_MAX
#define CANON_STAGE 8192u

/* Parse "simple" / "relaxed" (case-insensitive per common practice is not
 * allowed: RFC 6376 values are case-sensitive). -1 when unknown. */
int canon_parse(const char *s, size_t len, enum canon_alg *out);
const char *canon_name(enum canon_alg a);

/*
 * Canonicalise one header field given raw (as received, without its final
 * CRLF) into out; appends CRLF when with_crlf. Returns the length written,
 * or (size_t)-1 when cap is too small. Output never exceeds len + 2 bytes.
 */
size_t canon_header(enum canon_alg alg, const char *raw, size_t len, bool with_crlf, char *out,
		    size_t cap);

struct canon_body {
	enum canon_alg alg;
	struct ws_hash *hash;
	uint64_t limit;   /* l= value, or CANON_NO_LIMIT */
	uint64_t hashed;  /* canonical bytes given to the hash */
	uint64_t total;   /* canonical bytes produced (past l= too) */
	uint64_t pending_crlf; /* empty lines held back */
	bool line_has_data;    /* the current line has non-WSP data (relaxed) or any data */
	bool wsp_pending;      /* relaxed: a WSP run seen, not yet emitted */
	bool cr_held;          /* a CR ended the last chunk */
	bool scalar;           /* use the scalar scanner (tests compare both) */
	bool wide;             /* 64-byte AVX-512 scanner (else 16-byte SSE2) */
	bool flush_each;       /* stage flushed at the end of every update (lane members) */
	size_t staged;
	uint8_t stage[CANON_STAGE];
};

void canon_body_init(struct canon_body *cb, enum canon_alg alg, uint64_t limit,
		     struct ws_hash *hash);
void canon_body_update(struct canon_body *cb, const uint8_t *data, size_t len);
/* Use the scalar reference scanner instead of the SIMD one (tests). */
void canon_body_force_scalar(struct canon_body *cb);
/* Use the 16-byte SSE2 scanner even where AVX-512 is there (tests). */
void canon_body_force_sse2(struct canon_body *cb);
/* The body ended: emit what the rules add (simple: the final CRLF) and flush
 * the staging buffer into the hash. The hash is not finalised. */
void canon_body_final(struct canon_body *cb);

/*
 * A message's set of body hashes: one per distinct (canonicalisation, hash
 * algorithm, l=) among its signatures, so the body streams through each
 * combination once however many signatures share it. Used by the DKIM
 * verifier and the ARC validator. Hash objects are kept across messages.
 */
#define CANON_SET_MAX 8u

struct canon_body_hash {
	enum canon_alg alg;
	enum ws_hash_alg halg;
	uint64_t limit;
	struct ws_hash *hash;
	struct canon_body cb;
	uint8_t digest[WS_HASH_MAX_LEN]; /* valid after canon_set_final */
};

struct canon_body_set {
	struct canon_body_hash bh[CANON_SET_MAX];
	struct ws_hash *pool[CANON_SET_MAX];
	size_t n;
	bool closed;                 /* canon_set_close ran for this message */
	struct ws_hash_lanes *lanes; /* set before first use: hashes made in this lane group */
};

/* A set in memory that was not zeroed: no hash objects yet (bh[] is left
 * as it is: canon_set_get sets up each entry it hands out). A zeroed set
 * needs no init. */
void canon_set_init(struct canon_body_set *s, struct ws_hash_lanes *lanes);
/* Start a message (keeps the hash objects). */
void canon_set_reset(struct canon_body_set *s);
/* The index of the body hash for this combination, set up on first use; -1
 * when max (<= CANON_SET_MAX) combinations are in use or allocation fails. */
int canon_set_get(struct canon_body_set *s, enum canon_alg alg, enum ws_hash_alg halg,
		  uint64_t limit, size_t max);
void canon_set_update(struct canon_body_set *s, const uint8_t *data, size_t len);
/* The body ended: the canonicalisers emit their last bytes into the hashes
 * (which are not finalised: a lane group can run before canon_set_final). */
void canon_set_close(struct canon_body_set *s);
/* The body ended: every digest is computed (closing first if needed). */
void canon_set_final(struct canon_body_set *s);
/* Free the hash objects (the struct itself is the caller's). */
void canon_set_free(struct canon_body_set *s);

#endif
