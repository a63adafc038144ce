/*
 * ws_hash: message digests for DKIM/ARC.
 *
 * Two shapes:
 *  - incremental (new/update/final): streamed bodies and header hashes; the
 *    backend is OpenSSL EVP with the digest fetched once per process
 *    (EVP_MD_fetch), which uses SHA-NI where the CPU has it;
 *  - batch (ws_hash_batch_run): many complete, independent buffers at once
 *    (the signed-header hashes of many messages), on the intel-ipsec-mb
 *    multi-buffer job API; buffers longer than WS_HASH_MB_MAX_LEN go to
 *    OpenSSL inside the same call.
 *
 * Ownership: every object is owned by its creator. A struct ws_hash or a
 * struct ws_hash_batch is used by one thread at a time; distinct objects may
 * be used concurrently. No function here prints or exits.
 */
#ifndef WS_CRYPTO_HASH_H
#define WS_CRYPTO_HASH_H

#include <stddef.h>
#include <stdint.h>

struct hw_cpu;

enum ws_hash_alg {
	WS_HASH_SHA1,
	WS_HASH_SHA256,
};

#define WS_HASH_MAX_LEN 32
/* intel-ipsec-mb 1.3 refuses SHA jobs longer than this. */
#define WS_HASH_MB_MAX_LEN 65534u

/* Digest length in bytes (20 or 32); 0 for an unknown algorithm. */
size_t ws_hash_len(enum ws_hash_alg alg);
/* "sha1" / "sha256"; NULL for an unknown algorithm. */
const char *ws_hash_name(enum ws_hash_alg alg);

struct ws_hash;

/* NULL on allocation failure or unknown algorithm. */
struct ws_hash *ws_hash_new(enum ws_hash_alg alg);
/* Start over (possibly with another algorithm) without reallocating.
 * 0 on success, -1 on failure (the object is then unusable until reset). */
int ws_hash_reset(struct ws_hash *h, enum ws_hash_alg alg);
void ws_hash_update(struct ws_hash *h, const void *data, size_t len);
/* Writes ws_hash_len() bytes to out and returns that length; the object
 * must be reset before more updates. Returns 0 on a backend failure. */
size_t ws_hash_final(struct ws_hash *h, uint8_t out[WS_HASH_MAX_LEN]);
void ws_hash_free(struct ws_hash *h); /* NULL-safe */

/* One call digest of a complete buffer; returns the length, 0 on failure. */
size_t ws_hash_oneshot(enum ws_hash_alg alg, const void *data, size_t len,
		       uint8_t out[WS_HASH_MAX_LEN]);

/* ---- lane groups: many streamed SHA-256 hashes, 16 at a time -------- */

/*
 * A lane group lets a caller that streams many messages at once (the CLI
 * verifying several files, a dataplane worker with many sessions in DATA)
 * hash their bodies on the 16-lane AVX-512 compression (sha256x16.h)
 * instead of one OpenSSL stream each. A hash made with ws_hash_new_lane
 * stages its SHA-256 input (up to the group's stage size) in the group's
 * arena; ws_hash_lanes_run and ws_hash_lanes_poll compress every member's
 * staged whole blocks, 16 members per pass. A member whose stage fills polls
 * the group itself; ws_hash_final compresses what is left alone (OpenSSL's
 * block function with the member's state). Digests are those of
 * ws_hash_new (SHA-1 members use OpenSSL as usual).
 *
 * Memory: one stage per member slot, in one arena that grows by doubling
 * (never shrinks) up to WS_HASH_LANES_MAX_MEMBERS slots. A run looks only at
 * the members that staged a whole block since the last run, so idle members
 * cost it nothing.
 *
 * Ownership: the group and its members are used by one thread. Members may
 * outlive ws_hash_lanes_free (a parked message's hashes): the group is then
 * released with its last member, and takes no new ones.
 */
#define WS_HASH_LANE_STAGE (128u * 1024) /* ws_hash_lanes_new's stage, and the largest */
#define WS_HASH_LANE_STAGE_MIN 128u      /* the smallest stage (two blocks) */
#define WS_HASH_LANES_MAX_MEMBERS 1024u

struct ws_hash_lanes;

/* NULL when the CPU has no AVX-512 or allocation fails. Stage
 * WS_HASH_LANE_STAGE bytes per member. */
struct ws_hash_lanes *ws_hash_lanes_new(void);
/* The same with stage bytes per member: a multiple of 64 from
 * WS_HASH_LANE_STAGE_MIN to WS_HASH_LANE_STAGE (else NULL). A small stage
 * keeps a group that is run often (every receive burst) cache-sized. */
struct ws_hash_lanes *ws_hash_lanes_new_sized(size_t stage);
size_t ws_hash_lanes_stage(const struct ws_hash_lanes *g);
void ws_hash_lanes_free(struct ws_hash_lanes *g); /* NULL-safe */
/* A hash in group g (NULL on allocation failure, WS_HASH_LANES_MAX_MEMBERS
 * members, or a group already freed); same use as ws_hash_new's. */
struct ws_hash *ws_hash_new_lane(struct ws_hash_lanes *g, enum ws_hash_alg alg);
/* Compress the staged whole blocks of every member. */
void ws_hash_lanes_run(struct ws_hash_lanes *g);
/* For a caller that polls often (a worker, after every burst): 16-lane
 * passes while 16 members have a few blocks staged (the heaviest first);
 * a member left with more than 3/4 of its stage used then compresses its
 * blocks on its own (OpenSSL's block function), the others keep theirs
 * staged for a later pass with 15 others (their finals take what is left);
 * no SHA-NI pairs. */
void ws_hash_lanes_poll(struct ws_hash_lanes *g);
/* Where a group's blocks went, since it was made. */
struct ws_hash_lanes_stats {
	uint64_t passes;       /* 16-lane vector passes */
	uint64_t lane_blocks;  /* blocks those passes compressed */
	uint64_t pair_blocks;  /* blocks compressed two at a time on SHA-NI */
	uint64_t alone_blocks; /* blocks compressed one member at a time */
};
void ws_hash_lanes_stats(const struct ws_hash_lanes *g, struct ws_hash_lanes_stats *out);

/* ---- batch ---------------------------------------------------------- */

enum ws_hash_backend {
	WS_HASH_BACKEND_AUTO,    /* ipsec-mb with the best arch the CPU has */
	WS_HASH_BACKEND_OPENSSL, /* one EVP digest per job: the reference */
	WS_HASH_BACKEND_MB_SSE,  /* ipsec-mb, forced arch (tests, bench) */
	WS_HASH_BACKEND_MB_AVX2,
	WS_HASH_BACKEND_MB_AVX512,
};

struct ws_hash_job {
	enum ws_hash_alg alg;    /* in */
	const uint8_t *data;     /* in: need not stay valid after the call */
	size_t len;              /* in */
	uint8_t digest[WS_HASH_MAX_LEN]; /* out */
	int status;              /* out: 0 done, -1 failed */
};

struct ws_hash_batch;

/* cpu may be NULL (then detected here). Returns NULL when the requested
 * backend cannot run on this CPU or allocation fails. */
struct ws_hash_batch *ws_hash_batch_new(enum ws_hash_backend backend, const struct hw_cpu *cpu);
void ws_hash_batch_free(struct ws_hash_batch *b); /* NULL-safe */
/* Name of the backend actually in use, e.g. "ipsec-mb/avx512", "openssl". */
const char *ws_hash_batch_name(const struct ws_hash_batch *b);
/* Digest every job; the result of each is independent of the others and of
 * n. Returns the number of jobs that failed (0 on full success). */
size_t ws_hash_batch_run(struct ws_hash_batch *b, struct ws_hash_job *jobs, size_t n);

#endif
