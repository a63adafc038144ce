/*
 * msgstream: one message at a time, from SMTP content bytes to DKIM results.
 *
 * Data model: the header block is kept (rfc5322 parser, its limits); from the
 * first body byte on, the body streams through the DKIM verifier's
 * canonicalisers and is never stored, so memory per message is O(header
 * block). At the end the keys are asked of the caller's key_lookup (which
 * must not block) and the signatures decided in one batch.
 *
 * Incomplete messages never fail: when a byte was lost (msgstream_gap), a
 * header limit was hit, or the message did not end cleanly, verification
 * is not finished on partial data: every signature found becomes temperror
 * with the reason, one of
 *   "capture-gap"       bytes of the message were not seen
 *   "memcap"            the header block passed an RFC5322_MAX_* limit (or
 *                       memory ran out)
 *   "malformed-header"  the header block did not parse (no colon, bad name)
 *   the caller's reason for an unclean end ("session-reset", "rejected",
 *                       "session-end", ...)
 * After a gap or a limit nothing more is parsed or hashed for that message;
 * its bytes are only counted.
 *
 * Memory: the verifier is created on the first message and reused for the
 * next ones (dkim_verifier_start resets it); msgstream_trim releases it and
 * the header buffers between messages (with the batched finish below, a
 * message that goes to the batch takes its verifier along and the next
 * one takes another from the pool). Not thread-safe.
 *
 * Pool: a DKIM verifier (about 290 KB) and an ARC validator (about 420 KB)
 * are big enough that malloc serves them with mmap, so making one per
 * session costs page faults and zeroing every time. With a pool
 * (msgstream_set_pool; one per worker, as single-threaded as the streams
 * using it) trim and free hand them to the pool instead, reset but not
 * zeroed, and the next session takes them from there. The pool holds at
 * most the max it was made with (MSGSTREAM_POOL_MAX at most) of each;
 * past that they are freed. An idle (trimmed) session holds none either
 * way. The pool must outlive the streams that use it; a parked message's
 * verifier is freed, not pooled (a parked message outlives its session).
 */
#ifndef WS_DATAPLANE_MSGSTREAM_H
#define WS_DATAPLANE_MSGSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arc.h"
#include "dkim.h"
#include "hash.h"
#include "rfc5322.h"

typedef enum dkim_key_status (*msgstream_key_fn)(void *arg, const char *name,
						 const struct dkim_key **key, const char **why);
/* Asynchronous keys: whether key_lookup can answer name now (a cache hit). */
typedef bool (*msgstream_ready_fn)(void *arg, const char *name);

struct msgstream_pool;

struct msgstream {
	struct rfc5322_header hdr;
	struct msgstream_pool *pool; /* NULL: verifiers are made and freed */
	struct dkim_verifier *v; /* NULL until the first verified message */
	struct arc_validator *arc; /* NULL until the first message with ARC fields */
	bool arc_on;               /* this message has ARC fields and is validated */
	bool arc_done;             /* its chain is decided */
	msgstream_key_fn key_lookup;
	void *key_arg;
	int64_t now;
	bool verify;
	uint8_t state;
	bool complete;
	const char *reason;      /* why incomplete; NULL when complete */
	uint64_t header_bytes, body_bytes;
	uint64_t alloc_fail;     /* verifier could not be created */
	msgstream_ready_fn key_ready; /* NULL: keys are looked up at the end, synchronously */
	bool keys_pending;       /* the message ended with a key not ready: park it */
	bool batch;              /* msgstream_set_batch: public-key work left to the caller */
	bool jobs_out;           /* keys set, the rest waits for msgstream_take */
};

/*
 * Parking (asynchronous keys, wireseal-dp): with msgstream_set_key_ready, a
 * message whose end finds a key that key_ready says is not there yet is
 * not decided: its body hashes are final (body_end ran) and only the keys
 * are missing. msgstream_pending says so; msgstream_park then moves the
 * message (header block, verifier, ARC validator) out into a parked object
 * the caller owns, and the msgstream is ready for the next message (it
 * makes a new verifier). msgstream_parked_finish later looks the keys up
 * (through the lookup it is given) and decides; the results stay readable
 * until msgstream_parked_free. A parked message is independent of its
 * session (which may end meanwhile). Not thread-safe: the worker's.
 */
struct msgstream_parked;

void msgstream_set_key_ready(struct msgstream *m, msgstream_ready_fn ready);
bool msgstream_pending(const struct msgstream *m);
/* NULL when memory ran out: then the message is decided now (keys not
 * ready are whatever key_lookup says, normally temperror). */
struct msgstream_parked *msgstream_park(struct msgstream *m);
void msgstream_parked_finish(struct msgstream_parked *p, msgstream_key_fn lookup, void *arg);
const struct dkim_verifier *msgstream_parked_verifier(const struct msgstream_parked *p);
const struct arc_chain *msgstream_parked_arc(const struct msgstream_parked *p);
const struct rfc5322_header *msgstream_parked_header(const struct msgstream_parked *p);
/* The key names the parked message waits for, one at a time (i from 0;
 * NULL past the last). Names already answered are listed too. */
const char *msgstream_parked_key_name(const struct msgstream_parked *p, size_t i);
void msgstream_parked_free(struct msgstream_parked *p); /* NULL-safe */

/*
 * Batched finish (the dataplane's worker batch, dataplane/sigbatch.h): with
 * msgstream_set_batch on, a message's end looks its keys up and leaves the
 * rest (dkim_verifier_prepare, the public-key work, complete) to the
 * caller, so that several messages' signatures go to one
 * ws_sig_verify_batch. msgstream_waiting says a message waits so;
 * msgstream_verifier and msgstream_arc are NULL meanwhile. Then either
 * msgstream_take moves the message out (a decided one too, so that its
 * record can wait behind the waiting ones) (its verifier, and its header block
 * by swapping with *hdr, whose buffers the stream keeps for its next
 * message: nothing is allocated), the caller sets every job's result,
 * calls dkim_verifier_complete and hands the verifier back with
 * msgstream_pool_put; or msgstream_complete_now runs the jobs on their own
 * and decides in place. Only messages without ARC fields and with
 * synchronous keys (no key_ready) are left waiting; the others, and those
 * with no job left (no signature, body hash mismatch, gaps, key errors),
 * are decided at once as without the batch. The results are the same
 * either way.
 */
void msgstream_set_batch(struct msgstream *m, bool on);
bool msgstream_waiting(const struct msgstream *m);
/* Whether the message that ended can be moved out (msgstream_take): it was
 * verified and is not pending its keys; waiting for its jobs (never with
 * ARC fields) or decided already (an ARC chain too). */
bool msgstream_takeable(const struct msgstream *m);
/* The ended message's verifier, or NULL when not takeable. Waiting: it is
 * prepared here, *jobs, *njobs are its outstanding jobs (when there are
 * none it is completed here); decided: *njobs is 0 and the results are
 * final. *arc: its ARC validator (chain decided), moved out
 * too, or NULL without ARC fields. The stream is idle afterwards. */
struct dkim_verifier *msgstream_take(struct msgstream *m, struct rfc5322_header *hdr,
				     struct ws_verify_job **jobs, size_t *njobs,
				     struct arc_validator **arc);
void msgstream_complete_now(struct msgstream *m);
/* A taken verifier, completed, goes back to p (reset), or is freed (p NULL
 * or full). */
void msgstream_pool_put(struct msgstream_pool *p, struct dkim_verifier *v);
void msgstream_pool_put_arc(struct msgstream_pool *p, struct arc_validator *a); /* the same */

/* verify false: headers are still kept, nothing is hashed or looked up. */
void msgstream_init(struct msgstream *m, bool verify, int64_t now, msgstream_key_fn key_lookup,
		    void *key_arg);
void msgstream_free(struct msgstream *m);
/* A new message starts (a message still open is abandoned). */
void msgstream_begin(struct msgstream *m);
void msgstream_data(struct msgstream *m, const uint8_t *p, size_t len);
/* len bytes of the message were lost. */
void msgstream_gap(struct msgstream *m, uint64_t len);
/* The message is over. clean: its end was seen (CRLF.CRLF, BDAT LAST);
 * otherwise why says what cut it short. Decides the signatures; then the
 * results stay readable (msgstream_verifier, m->hdr) until the next begin. */
void msgstream_end(struct msgstream *m, bool clean, const char *why);
/* The verifier holding this message's results, or NULL (none ran). */
const struct dkim_verifier *msgstream_verifier(const struct msgstream *m);
/* The message's ARC chain as `wireseal verify` reports it ("none" when it
 * carried no ARC fields), or NULL when the message was not verified or not
 * complete (a chain is not judged on bytes that were never seen). The
 * validator is created only for messages that carry ARC fields. */
const struct arc_chain *msgstream_arc(const struct msgstream *m);
/* Between messages: release the verifier and the header buffers. */
void msgstream_trim(struct msgstream *m);

#define MSGSTREAM_POOL_MAX 64u /* verifiers (and validators) one pool keeps */

/* NULL when memory ran out or max is 0 or above MSGSTREAM_POOL_MAX. */
struct msgstream_pool *msgstream_pool_new(unsigned max);
void msgstream_pool_free(struct msgstream_pool *p); /* NULL-safe; frees what it holds */
/*
 * Lane group (crypto/hash.h): the verifiers p makes from now on hash
 * SHA-256 bodies as members of lanes, whose owner runs it (a worker: at the
 * end of every receive burst); a message's end compresses what its hashes
 * have left staged on its own, so results never wait for a run. Set before
 * the first verifier is made; lanes must be used by the pool's thread only
 * and freed after the pool (ws_hash_lanes_free waits for the members of
 * parked messages).
 */
void msgstream_pool_set_lanes(struct msgstream_pool *p, struct ws_hash_lanes *lanes);
/* After msgstream_init, before the first message; p may be NULL. */
void msgstream_set_pool(struct msgstream *m, struct msgstream_pool *p);
struct msgstream_pool_stats {
	uint64_t made, reused;   /* verifiers and validators created / taken from the pool */
	uint64_t pooled, freed;  /* handed back and kept / handed back past max */
	unsigned held;           /* in the pool now (both kinds) */
};
void msgstream_pool_stats(const struct msgstream_pool *p, struct msgstream_pool_stats *out);

#endif
