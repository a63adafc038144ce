/*
 * sigbatch: a worker's messages waiting for their public-key work, so that
 * several messages' DKIM signatures go to one ws_sig_verify_batch (a batch
 * backend verifies 8 RSA signatures at once, cheaper per signature than one
 * at a time).
 *
 * Data model: a FIFO of at most `size` messages. sigbatch_add takes a
 * message whose stream waits (msgstream_waiting, msgstream.h), or one
 * decided already that must not overtake those waiting (no signature,
 * body hash mismatch, a gap: no job, but its record comes after theirs;
 * msgstream_takeable: not ARC, not parked): its record
 * is copied into a slot (envelope strings into the slot's buffer, kept and
 * regrown from one message to the next), its verifier and header block are
 * moved there (msgstream_take: the header buffers are swapped, so nothing
 * is allocated per message once the slots have grown). sigbatch_run puts
 * every waiting message's jobs in one array, verifies them in one
 * ws_sig_verify_batch, copies each result back to its message, decides
 * (dkim_verifier_complete) and hands every record to emit in the order the
 * messages were added; the verifiers go back to the pool.
 *
 * When to run: sigbatch_add runs the batch once it holds `size` jobs (the
 * backend's width) or `size` messages (each holds a verifier out of the
 * pool); the owner runs it whenever it would go idle, at the end
 * of input, and before it emits any other record (so records leave in
 * exactly the order they would without the batch); sigbatch_burst (once per
 * receive burst) runs it when its oldest message has waited max_wait
 * bursts. A message's verdict never depends on the batch it ran in.
 *
 * Limits: size 2 .. SIGBATCH_MAX (1 is "no batch": the caller decides each
 * message alone), max_wait 1 .. SIGBATCH_MAX_WAIT bursts. A slot whose
 * envelope copy cannot get memory is refused (sigbatch_add false): the
 * caller decides that message alone (msgstream_complete_now).
 *
 * Ownership and threads: one per worker, used by that worker's thread
 * only, with the worker's msgstream pool (which must outlive it).
 */
#ifndef WS_DATAPLANE_SIGBATCH_H
#define WS_DATAPLANE_SIGBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session.h"

#define SIGBATCH_MAX 64u      /* jobs (and messages) one batch holds at most */
#define SIGBATCH_MAX_WAIT 64u /* bursts the oldest message may be made to wait, at most */

struct msgstream;
struct msgstream_pool;
struct sigbatch;

typedef void (*sigbatch_emit_fn)(void *arg, const struct dp_message_record *rec);

struct sigbatch_stats {
	uint64_t batches;  /* ws_sig_verify_batch calls */
	uint64_t jobs;     /* signatures verified in them */
	uint64_t messages; /* messages decided through them */
	uint64_t full, aged; /* runs because the batch was full / its oldest waited max_wait */
	uint64_t refused;  /* messages not taken (no memory for the envelope copy) */
	uint64_t max_jobs; /* the fullest batch */
};

/* NULL when memory ran out or size/max_wait are outside their limits. */
struct sigbatch *sigbatch_new(unsigned size, unsigned max_wait, struct msgstream_pool *pool,
			      sigbatch_emit_fn emit, void *arg);
/* NULL-safe. Messages still waiting are dropped, never emitted: run first. */
void sigbatch_free(struct sigbatch *b);
/* rec: the message's record as the session would emit it (dkim, arc, hdr
 * are set by the batch); m: its stream, msgstream_waiting. false: not
 * taken (counted), the message is still in m. */
bool sigbatch_add(struct sigbatch *b, const struct dp_message_record *rec, struct msgstream *m);
/* Verify, decide and emit everything waiting (nothing when empty). */
void sigbatch_run(struct sigbatch *b);
/* A receive burst ended: run when the oldest message has now waited
 * max_wait bursts. */
void sigbatch_burst(struct sigbatch *b);
unsigned sigbatch_waiting(const struct sigbatch *b); /* messages */
const struct sigbatch_stats *sigbatch_stats(const struct sigbatch *b);

#endif
