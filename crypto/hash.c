/* ws_hash: incremental and one-shot digests on OpenSSL 3 EVP. */
/* SHA256_Update on a SHA256_CTX whose chaining state we set: OpenSSL's
 * low-level API (deprecated in 3.0, still shipped) is the only one of its
 * APIs that takes a state from outside. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "hash.h"
#include "hash_evp.h"
#include "sha256x16.h"

/* Explicit fetch once per process: EVP_DigestInit_ex with a legacy EVP_MD
 * (EVP_sha256()) fetches implicitly on every init, ~0.5 us each time. */
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_table[2];

static void
md_fetch_all(void)
{
	md_table[WS_HASH_SHA1] = EVP_MD_fetch(NULL, "SHA1", NULL);
	md_table[WS_HASH_SHA256] = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

const EVP_MD *
ws_hash_evp_md(enum ws_hash_alg alg)
{
	if (alg != WS_HASH_SHA1 && alg != WS_HASH_SHA256)
		return NULL;
	if (pthread_once(&md_once, md_fetch_all) != 0)
		return NULL;
	return md_table[alg];
}

size_t
ws_hash_len(enum ws_hash_alg alg)
{
	switch (alg) {
	case WS_HASH_SHA1:
		return 20;
	case WS_HASH_SHA256:
		return 32;
	}
	return 0;
}

const char *
ws_hash_name(enum ws_hash_alg alg)
{
	switch (alg) {
	case WS_HASH_SHA1:
		return "sha1";
	case WS_HASH_SHA256:
		return "sha256";
	}
	return NULL;
}

size_t
ws_hash_evp_digest(EVP_MD_CTX *ctx, enum ws_hash_alg alg, const void *data, size_t len,
                   uint8_t out[WS_HASH_MAX_LEN])
{
	const EVP_MD *md = ws_hash_evp_md(alg);
	unsigned int olen = 0;
	if (!md || !EVP_DigestInit_ex2(ctx, md, NULL))
		return 0;
	if (len > 0 && !EVP_DigestUpdate(ctx, data, len))
		return 0;
	if (!EVP_DigestFinal_ex(ctx, out, &olen))
		return 0;
	return olen;
}

struct ws_hash {
	EVP_MD_CTX *ctx;
	enum ws_hash_alg alg;
	/* false after a failed init/update: final then reports failure instead
	 * of a digest of part of the input. */
	bool ok;
	/* lane members only (g != NULL); lane is false while the algorithm
	 * is one the lanes do not run (SHA-1: OpenSSL through ctx) */
	struct ws_hash_lanes *g;
	bool lane;
	bool queued;     /* in g->ready */
	uint32_t slot;   /* the member's stage is g->arena + slot * g->stage */
	uint32_t qi;     /* its index in g->ready while queued */
	uint32_t head;   /* the staged bytes start this far into the stage */
	uint32_t staged; /* bytes in the stage */
	uint64_t len;    /* message bytes so far, for the padding */
	uint32_t st[8];
};

/* A 16-lane pass costs about as much as this many blocks on SHA-NI pairs
 * (measured here: 16 lanes 4.2 GB/s, SHA-NI two streams 2.2 GB/s: 16 x
 * 2.2 / 4.2 = 8.4); a pass that does less goes to SHA-NI instead. */
#define WS_HASH_LANES_PASS_COST 8u

#define LANES_HUGE (2u << 20)
/* ws_hash_lanes_poll: members with fewer staged blocks wait (a lane pass
 * runs as many blocks as its shortest lane has). */
#define WS_HASH_LANES_POLL_MIN_BLOCKS 8u
/* A poll leaves a member's blocks staged for a later vector pass while
 * more than 1/WS_HASH_LANES_POLL_KEEP_DIV of its stage is free. */
#define WS_HASH_LANES_POLL_KEEP_DIV 4u

struct ws_hash_lanes {
	struct ws_hash *member[WS_HASH_LANES_MAX_MEMBERS];
	/* members with a whole block staged since the last run: a run looks
	 * at these only, so idle members (a worker's pooled verifiers) cost
	 * it nothing, not even a cache miss */
	struct ws_hash *ready[WS_HASH_LANES_MAX_MEMBERS];
	uint32_t nready;
	uint32_t cap;    /* slots with arena space */
	uint32_t stage;  /* bytes per member stage */
	uint32_t nmembers;
	bool freed;      /* ws_hash_lanes_free ran: the last member's free frees it */
	uint8_t *arena;  /* cap stages, 64-byte aligned */
	bool ni;         /* SHA-NI for what the vector lanes leave */
	struct ws_hash_lanes_stats stats;
};

static inline uint8_t *
stage_of(const struct ws_hash *h)
{
	return h->g->arena + (size_t)h->slot * h->g->stage;
}

static void
ready_add(struct ws_hash *h)
{
	struct ws_hash_lanes *g = h->g;
	h->queued = true;
	h->qi = g->nready;
	g->ready[g->nready++] = h;
}

static void
ready_remove(struct ws_hash *h)
{
	struct ws_hash_lanes *g = h->g;
	struct ws_hash *last = g->ready[--g->nready];
	g->ready[h->qi] = last;
	last->qi = h->qi;
	h->queued = false;
}

/* ---- lane groups ---------------------------------------------------- */

struct ws_hash_lanes *
ws_hash_lanes_new_sized(size_t stage)
{
	if (stage < WS_HASH_LANE_STAGE_MIN || stage > WS_HASH_LANE_STAGE ||
	    stage % WS_SHA256_BLOCK != 0)
		return NULL;
	if (!ws_sha256x16_available())
		return NULL;
	struct ws_hash_lanes *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->ni = ws_sha256ni_available();
	g->stage = (uint32_t)stage;
	return g;
}

struct ws_hash_lanes *
ws_hash_lanes_new(void)
{
	return ws_hash_lanes_new_sized(WS_HASH_LANE_STAGE);
}

void
ws_hash_lanes_stats(const struct ws_hash_lanes *g, struct ws_hash_lanes_stats *out)
{
	*out = g->stats;
}

size_t
ws_hash_lanes_stage(const struct ws_hash_lanes *g)
{
	return g->stage;
}

static void
lanes_destroy(struct ws_hash_lanes *g)
{
	free(g->arena);
	free(g);
}

void
ws_hash_lanes_free(struct ws_hash_lanes *g)
{
	if (!g)
		return;
	if (g->nmembers > 0) {
		g->freed = true; /* members still out (parked messages): the last frees it */
		return;
	}
	lanes_destroy(g);
}

/* Room for one more member: a free slot, growing the arena when needed
 * (members keep slot numbers, so moving the arena is harmless). */
static int
lanes_slot(struct ws_hash_lanes *g, uint32_t *slot)
{
	for (uint32_t i = 0; i < g->cap; i++) {
		if (!g->member[i]) {
			*slot = i;
			return 0;
		}
	}
	if (g->cap >= WS_HASH_LANES_MAX_MEMBERS)
		return -1;
	uint32_t ncap = g->cap ? 2 * g->cap : 16;
	if (ncap > WS_HASH_LANES_MAX_MEMBERS)
		ncap = WS_HASH_LANES_MAX_MEMBERS;
	/* 32-bit gather offsets: the arena stays under 2 GiB */
	_Static_assert((uint64_t)WS_HASH_LANES_MAX_MEMBERS * WS_HASH_LANE_STAGE < (1ull << 31),
		       "lane arena too large for 32-bit offsets");
	/* whole 2 MiB pages, transparent huge pages asked for: a fresh 4 KiB
	 * page costs ~15 us to fault in on the VMs measured here, a 2 MiB arena
	 * ~7 ms in small pages and ~0.4 ms in one huge page */
	size_t bytes = ((size_t)ncap * g->stage + LANES_HUGE - 1) / LANES_HUGE * LANES_HUGE;
	uint8_t *na = aligned_alloc(LANES_HUGE, bytes);
	if (!na)
		return -1;
#ifdef MADV_HUGEPAGE
	(void)madvise(na, bytes, MADV_HUGEPAGE); /* advice only: small pages work too */
#endif
	if (g->arena)
		memcpy(na, g->arena, (size_t)g->cap * g->stage);
	free(g->arena);
	g->arena = na;
	*slot = g->cap;
	g->cap = ncap;
	return 0;
}

struct ws_hash *
ws_hash_new_lane(struct ws_hash_lanes *g, enum ws_hash_alg alg)
{
	uint32_t slot;
	if (!g || g->freed || lanes_slot(g, &slot) != 0)
		return NULL;
	struct ws_hash *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->ctx = EVP_MD_CTX_new(); /* for SHA-1, which the lanes do not run */
	if (!h->ctx) {
		free(h);
		return NULL;
	}
	h->g = g;
	h->slot = slot;
	g->member[slot] = h;
	g->nmembers++;
	if (ws_hash_reset(h, alg) != 0) {
		ws_hash_free(h);
		return NULL;
	}
	return h;
}

/*
 * One member's blocks on their own. OpenSSL's block function (SHA-NI where
 * the CPU has it) through its low-level context, with our chaining state:
 * in the replay pipeline it ran ~1.4x faster than ws_sha256ni_blocks,
 * though the two are even in a tight loop (bench-crypto). num 0 and whole
 * blocks: SHA256_Update compresses them in place, buffering nothing.
 */
static void
blocks_alone(struct ws_hash_lanes *g, uint32_t st[8], const uint8_t *p, size_t n)
{
	if (n == 0)
		return;
	g->stats.alone_blocks += n;
	SHA256_CTX c;
	_Static_assert(sizeof(c.h) == 8 * sizeof(uint32_t), "SHA256_CTX state is 8 words");
	memcpy(c.h, st, sizeof(c.h));
	c.Nl = c.Nh = 0;
	c.num = 0;
	c.md_len = 32;
	SHA256_Update(&c, p, n * WS_SHA256_BLOCK);
	memcpy(st, c.h, sizeof(c.h));
}

/* used bytes of the staged data are compressed: drop them. */
static void
stage_consumed(struct ws_hash *h, uint32_t used)
{
	h->staged -= used;
	h->head = h->staged ? h->head + used : 0;
}

/* Member h's staged bytes. */
static inline uint8_t *
staged_at(const struct ws_hash *h)
{
	return stage_of(h) + h->head;
}

/*
 * Every member's staged whole blocks. Members rarely have equal amounts
 * staged (a file that just began has its header, one that ends its tail),
 * so each vector pass takes the 16 members with the most blocks left and
 * runs them K rounds, each lane min(its blocks, K) (the compression takes
 * unequal counts), K chosen for the most work per pass against its cost in
 * SHA-NI pairs; passes repeat while one is worth it. The rest goes in pairs
 * on SHA-NI (one by one, portable code, without it).
 */
void
ws_hash_lanes_run(struct ws_hash_lanes *g)
{
	static _Thread_local struct ws_hash *m[WS_HASH_LANES_MAX_MEMBERS];
	static _Thread_local uint32_t left[WS_HASH_LANES_MAX_MEMBERS], done[WS_HASH_LANES_MAX_MEMBERS];
	uint32_t n = 0;
	/* the queued members; every one is down to a partial block after this
	 * run, so the ready list starts over empty */
	for (uint32_t i = 0; i < g->nready; i++) {
		struct ws_hash *h = g->ready[i];
		h->queued = false;
		if (h->lane && h->ok && h->staged >= WS_SHA256_BLOCK) {
			m[n] = h;
			left[n] = h->staged / WS_SHA256_BLOCK;
			done[n] = 0;
			n++;
		}
	}
	g->nready = 0;
	for (;;) {
		/* the (up to) 16 with the most blocks left, in descending order
		 * (insertion into a short sorted list; n is small) */
		uint32_t pick[WS_SHA256X16_LANES], np = 0;
		for (uint32_t i = 0; i < n; i++) {
			if (!left[i])
				continue;
			uint32_t at = np < WS_SHA256X16_LANES ? np++ : WS_SHA256X16_LANES;
			while (at > 0 && left[pick[at - 1]] < left[i]) {
				if (at < WS_SHA256X16_LANES)
					pick[at] = pick[at - 1];
				at--;
			}
			if (at < WS_SHA256X16_LANES)
				pick[at] = i;
		}
		/* K = left[pick[j]]: lanes 0..j do K blocks, the others all of
		 * theirs; the pass saves (its blocks - PASS_COST * K) */
		uint32_t k = 0;
		uint64_t below = 0;
		int64_t gain = 0;
		for (uint32_t j = np; j-- > 0;) {
			uint32_t kk = left[pick[j]];
			int64_t gg = (int64_t)(below + (uint64_t)(j + 1) * kk) -
				     (int64_t)WS_HASH_LANES_PASS_COST * kk;
			if (gg > gain) {
				gain = gg;
				k = kk;
			}
			below += kk;
		}
		if (k == 0)
			break;
		uint32_t *st[WS_SHA256X16_LANES];
		int32_t off[WS_SHA256X16_LANES] = {0};
		uint32_t nblk[WS_SHA256X16_LANES] = {0};
		for (uint32_t l = 0; l < np; l++) {
			uint32_t i = pick[l];
			st[l] = m[i]->st;
			off[l] = (int32_t)((size_t)(staged_at(m[i]) - g->arena) +
					   (size_t)done[i] * WS_SHA256_BLOCK);
			nblk[l] = left[i] < k ? left[i] : k;
			done[i] += nblk[l];
			left[i] -= nblk[l];
		}
		for (uint32_t l = np; l < WS_SHA256X16_LANES; l++)
			st[l] = NULL; /* idle: never read */
		ws_sha256x16_blocks(st, g->arena, off, nblk);
		g->stats.passes++;
		for (uint32_t l = 0; l < np; l++)
			g->stats.lane_blocks += nblk[l];
	}
	/* the rest: members with blocks left, in pairs on SHA-NI */
	uint32_t nl = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (left[i]) {
			m[nl] = m[i];
			left[nl] = left[i];
			done[nl] = done[i];
			nl++;
		} else {
			stage_consumed(m[i], done[i] * WS_SHA256_BLOCK);
		}
	}
	while (nl >= 2 && g->ni) {
		uint32_t k = left[0] < left[1] ? left[0] : left[1];
		ws_sha256ni_x2_blocks(m[0]->st, staged_at(m[0]) + (size_t)done[0] * WS_SHA256_BLOCK,
				      m[1]->st, staged_at(m[1]) + (size_t)done[1] * WS_SHA256_BLOCK, k);
		g->stats.pair_blocks += 2 * (uint64_t)k;
		for (unsigned l = 0; l < 2; l++) {
			done[l] += k;
			left[l] -= k;
		}
		unsigned dry = left[0] == 0 ? 0 : 1;
		stage_consumed(m[dry], done[dry] * WS_SHA256_BLOCK);
		m[dry] = m[nl - 1];
		left[dry] = left[nl - 1];
		done[dry] = done[nl - 1];
		nl--;
	}
	for (uint32_t i = 0; i < nl; i++) {
		blocks_alone(g, m[i]->st, staged_at(m[i]) + (size_t)done[i] * WS_SHA256_BLOCK, left[i]);
		stage_consumed(m[i], (done[i] + left[i]) * WS_SHA256_BLOCK);
	}
}

/* A poll's view of one ready member. */
struct poll_cand {
	struct ws_hash *h;
	uint32_t left; /* whole blocks not yet compressed */
};

/* Descending by blocks left; n is small (the members in DATA) and the
 * array nearly sorted after each pass. */
static void
cand_sort(struct poll_cand *c, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++) {
		struct poll_cand x = c[i];
		uint32_t j = i;
		for (; j > 0 && c[j - 1].left < x.left; j--)
			c[j] = c[j - 1];
		c[j] = x;
	}
}

/*
 * Every member's staged whole blocks: while 16 members have
 * WS_HASH_LANES_POLL_MIN_BLOCKS blocks or more, a vector pass over the 16
 * with the most, for as many blocks as the 16th has (the heaviest first);
 * then each member's remaining blocks on their own (blocks_alone), while
 * they are still in the cache from the copy in. No SHA-NI pairs here: in
 * the replay pipeline they ran slower than one OpenSSL stream.
 */
void
ws_hash_lanes_poll(struct ws_hash_lanes *g)
{
	static_assert(WS_SHA256X16_LANES == 16, "a pass takes 16 members");
	struct poll_cand c[WS_HASH_LANES_MAX_MEMBERS];
	uint32_t n = 0;
	for (uint32_t i = 0; i < g->nready; i++) {
		struct ws_hash *h = g->ready[i];
		h->queued = false;
		if (h->lane && h->ok && h->staged >= WS_SHA256_BLOCK)
			c[n++] = (struct poll_cand){h, h->staged / WS_SHA256_BLOCK};
	}
	g->nready = 0;
	if (n >= WS_SHA256X16_LANES) {
		uint32_t *st[WS_SHA256X16_LANES];
		int32_t off[WS_SHA256X16_LANES];
		uint32_t nblk[WS_SHA256X16_LANES];
		cand_sort(c, n);
		while (n >= WS_SHA256X16_LANES &&
		       c[WS_SHA256X16_LANES - 1].left >= WS_HASH_LANES_POLL_MIN_BLOCKS) {
			uint32_t k = c[WS_SHA256X16_LANES - 1].left;
			for (unsigned l = 0; l < WS_SHA256X16_LANES; l++) {
				struct ws_hash *h = c[l].h;
				st[l] = h->st;
				off[l] = (int32_t)((size_t)h->slot * g->stage + h->head);
				nblk[l] = k;
			}
			ws_sha256x16_blocks(st, g->arena, off, nblk);
			g->stats.passes++;
			g->stats.lane_blocks += (uint64_t)k * WS_SHA256X16_LANES;
			for (unsigned l = 0; l < WS_SHA256X16_LANES; l++) {
				stage_consumed(c[l].h, k * WS_SHA256_BLOCK);
				c[l].left -= k;
			}
			cand_sort(c, n);
			while (n > 0 && c[n - 1].left == 0)
				n--;
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		struct ws_hash *h = c[i].h;
		if (h->staged < g->stage - g->stage / WS_HASH_LANES_POLL_KEEP_DIV) {
			/* room left: its blocks wait for a pass with 15 others */
			ready_add(h);
			continue;
		}
		blocks_alone(g, h->st, staged_at(h), c[i].left);
		stage_consumed(h, c[i].left * WS_SHA256_BLOCK);
	}
}

/* Bring the staged bytes to the front of the stage. */
static void
stage_compact(struct ws_hash *h)
{
	if (h->head) {
		memmove(stage_of(h), staged_at(h), h->staged);
		h->head = 0;
	}
}

static void
lane_update(struct ws_hash *h, const void *data, size_t len)
{
	const uint8_t *p = data;
	struct ws_hash_lanes *g = h->g;
	uint32_t cap = g->stage;
	h->len += len;
	if (len > cap - h->staged) {
		/* stage full: the full vector passes now (this member in one if
		 * 15 others are ready), then its own whole blocks alone */
		ws_hash_lanes_poll(g);
		if (len > cap - h->staged) {
			uint32_t whole = h->staged / WS_SHA256_BLOCK;
			blocks_alone(g, h->st, staged_at(h), whole);
			stage_consumed(h, whole * WS_SHA256_BLOCK);
		}
		if (len > cap - h->staged) {
			/* still too long: complete the partial block, then the
			 * input's whole blocks from where they are, alone */
			stage_compact(h);
			uint32_t fill = (WS_SHA256_BLOCK - h->staged % WS_SHA256_BLOCK) % WS_SHA256_BLOCK;
			memcpy(stage_of(h) + h->staged, p, fill);
			h->staged += fill;
			p += fill;
			len -= fill;
			if (h->staged) {
				blocks_alone(g, h->st, stage_of(h), h->staged / WS_SHA256_BLOCK);
				h->staged = 0;
			}
			size_t whole = len / WS_SHA256_BLOCK;
			blocks_alone(g, h->st, p, whole);
			p += whole * WS_SHA256_BLOCK;
			len -= whole * WS_SHA256_BLOCK;
		}
	}
	if (len > cap - h->head - h->staged)
		stage_compact(h);
	memcpy(staged_at(h) + h->staged, p, len);
	h->staged += (uint32_t)len;
	if (!h->queued && h->staged >= WS_SHA256_BLOCK)
		ready_add(h);
}

static size_t
lane_final(struct ws_hash *h, uint8_t out[WS_HASH_MAX_LEN])
{
	uint32_t whole = h->staged / WS_SHA256_BLOCK;
	blocks_alone(h->g, h->st, staged_at(h), whole);
	stage_consumed(h, whole * WS_SHA256_BLOCK);
	const uint8_t *sp = staged_at(h);
	/* FIPS 180-4 5.1.1: 0x80, zeros to 56 mod 64, the bit length */
	uint8_t pad[2 * WS_SHA256_BLOCK] = {0};
	uint32_t r = h->staged;
	memcpy(pad, sp, r);
	pad[r] = 0x80;
	size_t blocks = r + 1 + 8 <= WS_SHA256_BLOCK ? 1 : 2;
	uint64_t bits = h->len * 8;
	for (unsigned i = 0; i < 8; i++)
		pad[blocks * WS_SHA256_BLOCK - 1 - i] = (uint8_t)(bits >> (8 * i));
	blocks_alone(h->g, h->st, pad, blocks);
	ws_sha256_state_bytes(h->st, out);
	h->staged = h->head = 0;
	return 32;
}

struct ws_hash *
ws_hash_new(enum ws_hash_alg alg)
{
	struct ws_hash *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx)
		goto fail;
	if (ws_hash_reset(h, alg) != 0)
		goto fail;
	return h;
fail:
	ws_hash_free(h);
	return NULL;
}

int
ws_hash_reset(struct ws_hash *h, enum ws_hash_alg alg)
{
	const EVP_MD *md = ws_hash_evp_md(alg);
	h->alg = alg;
	h->lane = h->g != NULL && alg == WS_HASH_SHA256;
	if (h->lane) {
		ws_sha256_init_state(h->st);
		h->staged = h->head = 0;
		h->len = 0;
		h->ok = true;
		return 0;
	}
	h->ok = md != NULL && EVP_DigestInit_ex2(h->ctx, md, NULL) == 1;
	return h->ok ? 0 : -1;
}

void
ws_hash_update(struct ws_hash *h, const void *data, size_t len)
{
	if (!h->ok || len == 0)
		return;
	if (h->lane) {
		lane_update(h, data, len);
		return;
	}
	if (!EVP_DigestUpdate(h->ctx, data, len))
		h->ok = false;
}

size_t
ws_hash_final(struct ws_hash *h, uint8_t out[WS_HASH_MAX_LEN])
{
	unsigned int olen = 0;
	if (!h->ok)
		return 0;
	/* Whatever happens, the object needs a reset before further use. */
	h->ok = false;
	if (h->lane)
		return lane_final(h, out);
	if (!EVP_DigestFinal_ex(h->ctx, out, &olen))
		return 0;
	return olen;
}

void
ws_hash_free(struct ws_hash *h)
{
	if (!h)
		return;
	struct ws_hash_lanes *g = h->g;
	if (g) {
		if (h->queued)
			ready_remove(h);
		g->member[h->slot] = NULL;
		g->nmembers--;
	}
	EVP_MD_CTX_free(h->ctx);
	free(h);
	if (g && g->freed && g->nmembers == 0)
		lanes_destroy(g);
}

size_t
ws_hash_oneshot(enum ws_hash_alg alg, const void *data, size_t len, uint8_t out[WS_HASH_MAX_LEN])
{
	const EVP_MD *md = ws_hash_evp_md(alg);
	unsigned int olen = 0;
	if (!md)
		return 0;
	/* EVP_Digest allocates and frees its own context: one malloc pair,
	 * no fetch, since md is already a fetched object. */
	if (!EVP_Digest(data, len, out, &olen, md, NULL))
		return 0;
	return olen;
}
