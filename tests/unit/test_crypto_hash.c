/*
 * ws_hash: known answers, incremental == one-shot == OpenSSL EVP_Digest, and
 * every batch backend this CPU runs against the same reference, on every
 * length 0..4096, the ipsec-mb length limit and past it, and 1 MiB.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "cpu.h"
#include "hash.h"
#include "sha256x16.h"

#define MAX_DENSE 4096
#define BIG_LEN (1u << 20)

static uint8_t *pool; /* random bytes, BIG_LEN + slack */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng(void)
{
	/* xorshift64*: reproducible from the seed printed on failure. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static int
setup(void **state)
{
	(void)state;
	const char *seed = getenv("WS_TEST_SEED");
	if (seed)
		rng_state = strtoull(seed, NULL, 0) | 1;
	pool = malloc(BIG_LEN + 64);
	if (!pool)
		return -1;
	for (size_t i = 0; i < BIG_LEN + 64; i++)
		pool[i] = (uint8_t)rng();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	free(pool);
	return 0;
}

/* The independent reference: OpenSSL's own one-call digest with the legacy
 * EVP_MD objects (not the fetched ones ws_hash uses). */
static size_t
ref_digest(enum ws_hash_alg alg, const uint8_t *p, size_t len, uint8_t out[WS_HASH_MAX_LEN])
{
	unsigned int olen = 0;
	const EVP_MD *md = alg == WS_HASH_SHA1 ? EVP_sha1() : EVP_sha256();
	assert_int_equal(EVP_Digest(p, len, out, &olen, md, NULL), 1);
	return olen;
}

static void
hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = 0;
}

static void
test_names(void **state)
{
	(void)state;
	assert_int_equal(ws_hash_len(WS_HASH_SHA1), 20);
	assert_int_equal(ws_hash_len(WS_HASH_SHA256), 32);
	assert_int_equal(ws_hash_len((enum ws_hash_alg)7), 0);
	assert_string_equal(ws_hash_name(WS_HASH_SHA1), "sha1");
	assert_string_equal(ws_hash_name(WS_HASH_SHA256), "sha256");
	assert_null(ws_hash_name((enum ws_hash_alg)7));
	assert_null(ws_hash_new((enum ws_hash_alg)7));
	uint8_t out[WS_HASH_MAX_LEN];
	assert_int_equal(ws_hash_oneshot((enum ws_hash_alg)7, "abc", 3, out), 0);
}

/* FIPS 180-2 appendix examples. */
static void
test_known_answers(void **state)
{
	(void)state;
	static const struct {
		enum ws_hash_alg alg;
		const char *msg;
		const char *hex;
	} kat[] = {
	        {WS_HASH_SHA1, "abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
	        {WS_HASH_SHA256, "abc",
	         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	        {WS_HASH_SHA1, "", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
	        {WS_HASH_SHA256, "",
	         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	        {WS_HASH_SHA256, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	};
	struct ws_hash_batch *b = ws_hash_batch_new(WS_HASH_BACKEND_AUTO, NULL);
	assert_non_null(b);
	for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
		uint8_t out[WS_HASH_MAX_LEN];
		char h[2 * WS_HASH_MAX_LEN + 1];
		size_t len = strlen(kat[i].msg);
		size_t n = ws_hash_oneshot(kat[i].alg, kat[i].msg, len, out);
		assert_int_equal(n, ws_hash_len(kat[i].alg));
		hex(out, n, h);
		assert_string_equal(h, kat[i].hex);

		struct ws_hash *inc = ws_hash_new(kat[i].alg);
		assert_non_null(inc);
		for (size_t j = 0; j < len; j++)
			ws_hash_update(inc, kat[i].msg + j, 1);
		assert_int_equal(ws_hash_final(inc, out), n);
		hex(out, n, h);
		assert_string_equal(h, kat[i].hex);
		ws_hash_free(inc);

		struct ws_hash_job job = {.alg = kat[i].alg,
		                          .data = (const uint8_t *)kat[i].msg,
		                          .len = len,
		                          .status = 99};
		assert_int_equal(ws_hash_batch_run(b, &job, 1), 0);
		assert_int_equal(job.status, 0);
		hex(job.digest, n, h);
		assert_string_equal(h, kat[i].hex);
	}
	ws_hash_batch_free(b);
}

/* Every length 0..4096, both algorithms: incremental with random splits,
 * one-shot and the reference agree; reset switches algorithm in place. */
static void
test_incremental_random_splits(void **state)
{
	(void)state;
	struct ws_hash *h = ws_hash_new(WS_HASH_SHA256);
	assert_non_null(h);
	for (size_t len = 0; len <= MAX_DENSE; len++) {
		for (int a = 0; a < 2; a++) {
			enum ws_hash_alg alg = a ? WS_HASH_SHA256 : WS_HASH_SHA1;
			const uint8_t *p = pool + (len % 61);
			uint8_t ref[WS_HASH_MAX_LEN], one[WS_HASH_MAX_LEN], inc[WS_HASH_MAX_LEN];
			size_t rn = ref_digest(alg, p, len, ref);
			assert_int_equal(ws_hash_oneshot(alg, p, len, one), rn);
			assert_memory_equal(one, ref, rn);

			assert_int_equal(ws_hash_reset(h, alg), 0);
			size_t off = 0;
			while (off < len) {
				size_t step = 1 + rng() % (len - off < 200 ? len - off : 200);
				if (rng() % 8 == 0)
					ws_hash_update(h, p + off, 0);
				ws_hash_update(h, p + off, step);
				off += step;
			}
			assert_int_equal(ws_hash_final(h, inc), rn);
			if (memcmp(inc, ref, rn) != 0)
				fail_msg("incremental %s len %zu differs", ws_hash_name(alg), len);
		}
	}
	/* After final, the object refuses to finish again until reset. */
	uint8_t out[WS_HASH_MAX_LEN];
	assert_int_equal(ws_hash_final(h, out), 0);
	ws_hash_free(h);
	ws_hash_free(NULL);
}

static void
check_jobs(const struct ws_hash_job *jobs, size_t n, const char *backend)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t ref[WS_HASH_MAX_LEN];
		size_t rn = ref_digest(jobs[i].alg, jobs[i].data, jobs[i].len, ref);
		if (jobs[i].status != 0)
			fail_msg("%s: job %zu (len %zu) status %d", backend, i, jobs[i].len,
			         jobs[i].status);
		if (memcmp(jobs[i].digest, ref, rn) != 0)
			fail_msg("%s: job %zu (%s len %zu) digest differs", backend, i,
			         ws_hash_name(jobs[i].alg), jobs[i].len);
	}
}

static const struct {
	enum ws_hash_backend be;
	const char *name;
	enum hw_cpu_feature needs; /* the feature that defines the arch */
} backends[] = {
        {WS_HASH_BACKEND_AUTO, "auto", HW_CPU_FEATURE_COUNT},
        {WS_HASH_BACKEND_OPENSSL, "openssl", HW_CPU_FEATURE_COUNT},
        {WS_HASH_BACKEND_MB_SSE, "ipsec-mb/sse", HW_CPU_SSE42},
        {WS_HASH_BACKEND_MB_AVX2, "ipsec-mb/avx2", HW_CPU_AVX2},
        {WS_HASH_BACKEND_MB_AVX512, "ipsec-mb/avx512", HW_CPU_AVX512F},
};
#define N_BACKENDS (sizeof(backends) / sizeof(backends[0]))

/* The backend, or NULL when this CPU cannot run it (then the test checks
 * that the CPU really lacks the arch's defining feature). */
static struct ws_hash_batch *
open_backend(size_t i)
{
	struct hw_cpu cpu;
	hw_cpu_detect(&cpu);
	struct ws_hash_batch *b = ws_hash_batch_new(backends[i].be, &cpu);
	if (!b) {
		if (backends[i].needs == HW_CPU_FEATURE_COUNT || cpu.has[backends[i].needs])
			fail_msg("backend %s refused on a CPU that has %s", backends[i].name,
			         backends[i].needs == HW_CPU_FEATURE_COUNT
			                 ? "everything it needs"
			                 : hw_cpu_feature_name(backends[i].needs));
		print_message("backend %s: not on this CPU, skipped\n", backends[i].name);
		return NULL;
	}
	if (backends[i].be != WS_HASH_BACKEND_AUTO)
		assert_string_equal(ws_hash_batch_name(b), backends[i].name);
	return b;
}

static void
test_batch_every_length(void **state)
{
	(void)state;
	size_t n = 2 * (MAX_DENSE + 1);
	struct ws_hash_job *jobs = calloc(n, sizeof(*jobs));
	assert_non_null(jobs);
	for (size_t bi = 0; bi < N_BACKENDS; bi++) {
		struct ws_hash_batch *b = open_backend(bi);
		if (!b)
			continue;
		for (size_t i = 0; i < n; i++) {
			jobs[i] = (struct ws_hash_job){
			        .alg = (i & 1) ? WS_HASH_SHA256 : WS_HASH_SHA1,
			        .data = pool + (i % 97),
			        .len = i / 2,
			        .status = 99,
			};
			memset(jobs[i].digest, 0xa5, sizeof(jobs[i].digest));
		}
		assert_int_equal(ws_hash_batch_run(b, jobs, n), 0);
		check_jobs(jobs, n, ws_hash_batch_name(b));
		ws_hash_batch_free(b);
	}
	free(jobs);
}

static void
test_batch_sizes_and_long(void **state)
{
	(void)state;
	static const size_t sizes[] = {1, 3, 16, 17, 100};
	static const size_t longs[] = {WS_HASH_MB_MAX_LEN - 1, WS_HASH_MB_MAX_LEN,
	                               WS_HASH_MB_MAX_LEN + 1, WS_HASH_MB_MAX_LEN + 2, BIG_LEN};
	struct ws_hash_job jobs[100 + 2 * 5];
	for (size_t bi = 0; bi < N_BACKENDS; bi++) {
		struct ws_hash_batch *b = open_backend(bi);
		if (!b)
			continue;
		for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
			for (int round = 0; round < 20; round++) {
				size_t n = sizes[si];
				for (size_t i = 0; i < n; i++) {
					size_t len = rng() % 3000;
					jobs[i] = (struct ws_hash_job){
					        .alg = (rng() & 1) ? WS_HASH_SHA256 : WS_HASH_SHA1,
					        .data = pool + rng() % 4096,
					        .len = len,
					        .status = 99,
					};
				}
				assert_int_equal(ws_hash_batch_run(b, jobs, n), 0);
				check_jobs(jobs, n, ws_hash_batch_name(b));
			}
		}
		/* Long jobs (past the ipsec-mb limit they go to OpenSSL)
		 * interleaved with short ones, both algorithms. */
		size_t n = 0;
		for (size_t li = 0; li < sizeof(longs) / sizeof(longs[0]); li++) {
			for (int a = 0; a < 2; a++) {
				jobs[n++] = (struct ws_hash_job){
				        .alg = a ? WS_HASH_SHA256 : WS_HASH_SHA1,
				        .data = pool + li,
				        .len = longs[li],
				        .status = 99,
				};
				jobs[n++] = (struct ws_hash_job){
				        .alg = a ? WS_HASH_SHA1 : WS_HASH_SHA256,
				        .data = pool + 7 * li,
				        .len = 1 + li * 13,
				        .status = 99,
				};
			}
		}
		assert_int_equal(ws_hash_batch_run(b, jobs, n), 0);
		check_jobs(jobs, n, ws_hash_batch_name(b));
		/* An empty batch is fine. */
		assert_int_equal(ws_hash_batch_run(b, jobs, 0), 0);
		ws_hash_batch_free(b);
	}
}

/* An unknown algorithm fails only its own job. */
static void
test_batch_bad_job(void **state)
{
	(void)state;
	for (size_t bi = 0; bi < N_BACKENDS; bi++) {
		struct ws_hash_batch *b = open_backend(bi);
		if (!b)
			continue;
		struct ws_hash_job jobs[20];
		for (size_t i = 0; i < 20; i++)
			jobs[i] = (struct ws_hash_job){.alg = WS_HASH_SHA256,
			                               .data = pool + i,
			                               .len = 100 + i,
			                               .status = 99};
		jobs[5].alg = (enum ws_hash_alg)9;
		/* An empty job may omit its data pointer. */
		jobs[7].data = NULL;
		jobs[7].len = 0;
		assert_int_equal(ws_hash_batch_run(b, jobs, 20), 1);
		assert_int_equal(jobs[5].status, -1);
		jobs[5].alg = WS_HASH_SHA1;
		check_jobs(jobs, 5, ws_hash_batch_name(b));
		check_jobs(jobs + 6, 14, ws_hash_batch_name(b));
		ws_hash_batch_free(b);
	}
}

/* A CPU with no features: every forced ipsec-mb arch is refused, AUTO falls
 * back to OpenSSL, which still works. */
static void
test_backend_refused(void **state)
{
	(void)state;
	struct hw_cpu none;
	memset(&none, 0, sizeof(none));
	assert_null(ws_hash_batch_new(WS_HASH_BACKEND_MB_SSE, &none));
	assert_null(ws_hash_batch_new(WS_HASH_BACKEND_MB_AVX2, &none));
	assert_null(ws_hash_batch_new(WS_HASH_BACKEND_MB_AVX512, &none));
	assert_null(ws_hash_batch_new((enum ws_hash_backend)42, &none));
	struct ws_hash_batch *b = ws_hash_batch_new(WS_HASH_BACKEND_AUTO, &none);
	assert_non_null(b);
	assert_string_equal(ws_hash_batch_name(b), "openssl");
	struct ws_hash_job job = {.alg = WS_HASH_SHA256, .data = pool, .len = 1000, .status = 9};
	assert_int_equal(ws_hash_batch_run(b, &job, 1), 0);
	check_jobs(&job, 1, "openssl");
	ws_hash_batch_free(b);
	ws_hash_batch_free(NULL);

	/* AUTO on the real CPU picks the widest arch it has. */
	struct hw_cpu cpu;
	hw_cpu_detect(&cpu);
	b = ws_hash_batch_new(WS_HASH_BACKEND_AUTO, &cpu);
	assert_non_null(b);
	if (cpu.has[HW_CPU_AVX512F] && cpu.has[HW_CPU_AVX512BW] && cpu.has[HW_CPU_AVX512VL] &&
	    cpu.has[HW_CPU_AVX512DQ])
		assert_string_equal(ws_hash_batch_name(b), "ipsec-mb/avx512");
	print_message("auto backend here: %s\n", ws_hash_batch_name(b));
	ws_hash_batch_free(b);
}

/* SHA-NI, one stream and two interleaved, against the portable code. */
static void
test_sha256ni(void **state)
{
	(void)state;
	if (!ws_sha256ni_available()) {
		print_message("no SHA-NI here: not tested\n");
		skip();
	}
	for (unsigned round = 0; round < 300; round++) {
		uint32_t a[8], b[8], c[8], d[8], e[8];
		for (unsigned i = 0; i < 8; i++)
			a[i] = b[i] = c[i] = d[i] = e[i] = (uint32_t)rng();
		size_t n = rng() % 12, oa = rng() % (BIG_LEN - 12 * 64), ob = rng() % (BIG_LEN - 12 * 64);
		ws_sha256ni_blocks(a, pool + oa, n);
		ws_sha256_blocks(b, pool + oa, n);
		if (memcmp(a, b, sizeof(a)) != 0)
			fail_msg("sha-ni one stream differs (%zu blocks)", n);
		ws_sha256ni_x2_blocks(c, pool + oa, d, pool + ob, n);
		ws_sha256_blocks(e, pool + ob, n);
		if (memcmp(c, b, sizeof(c)) != 0 || memcmp(d, e, sizeof(d)) != 0)
			fail_msg("sha-ni two streams differ (%zu blocks)", n);
	}
}

/* ---- lane groups and the 16-lane compression ---- */

/* The portable one-stream compression with FIPS padding done here: every
 * length 0..MAX_DENSE against OpenSSL (the reference lane_final builds on). */
static void
test_sha256_portable(void **state)
{
	(void)state;
	for (size_t len = 0; len <= MAX_DENSE; len++) {
		uint32_t st[8];
		ws_sha256_init_state(st);
		size_t whole = len / WS_SHA256_BLOCK;
		ws_sha256_blocks(st, pool, whole);
		uint8_t pad[128] = {0};
		size_t r = len - whole * WS_SHA256_BLOCK;
		memcpy(pad, pool + whole * WS_SHA256_BLOCK, r);
		pad[r] = 0x80;
		size_t nb = r + 9 <= 64 ? 1 : 2;
		for (unsigned i = 0; i < 8; i++)
			pad[nb * 64 - 1 - i] = (uint8_t)(((uint64_t)len * 8) >> (8 * i));
		ws_sha256_blocks(st, pad, nb);
		uint8_t got[32], want[WS_HASH_MAX_LEN];
		ws_sha256_state_bytes(st, got);
		ref_digest(WS_HASH_SHA256, pool, len, want);
		if (memcmp(got, want, 32) != 0)
			fail_msg("portable sha256 differs at length %zu", len);
	}
}

/* The vector lanes against the portable code: random states, block counts
 * 0..9 per lane (idle lanes included), lanes reading overlapping bytes. */
static void
test_sha256x16_lanes(void **state)
{
	(void)state;
	if (!ws_sha256x16_available()) {
		print_message("no AVX-512 here: 16-lane compression not tested\n");
		skip();
	}
	for (unsigned round = 0; round < 200; round++) {
		uint32_t a[16][8], b[16][8];
		uint32_t *st[16];
		int32_t off[16];
		uint32_t nblk[16];
		for (unsigned l = 0; l < 16; l++) {
			for (unsigned i = 0; i < 8; i++)
				a[l][i] = b[l][i] = (uint32_t)rng();
			st[l] = a[l];
			nblk[l] = (uint32_t)(rng() % 10);
			off[l] = (int32_t)(rng() % (BIG_LEN - 10 * 64));
		}
		ws_sha256x16_blocks(st, pool, off, nblk);
		for (unsigned l = 0; l < 16; l++) {
			ws_sha256_blocks(b[l], pool + off[l], nblk[l]);
			if (memcmp(a[l], b[l], sizeof(a[l])) != 0)
				fail_msg("lane %u (%u blocks) differs in round %u", l, nblk[l], round);
		}
	}
}

/* Very different block counts: one long lane beside short and idle ones
 * (lanes run dry at different rounds and must keep their state), lanes
 * packed end to end in a buffer of exactly their size (so ASan sees a read
 * past the last block), and a call where every lane is idle. */
static void
test_sha256x16_uneven(void **state)
{
	(void)state;
	if (!ws_sha256x16_available()) {
		print_message("no AVX-512 here: 16-lane compression not tested\n");
		skip();
	}
	static const uint32_t shapes[][16] = {
	        {300, 1, 0, 2, 0, 0, 7, 1, 0, 0, 0, 3, 0, 0, 0, 1},
	        {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 257},
	        {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
	        {64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 1},
	        {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	};
	for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
		size_t total = 0;
		for (unsigned l = 0; l < 16; l++)
			total += shapes[k][l];
		uint8_t *buf = malloc(total ? total * 64 : 1);
		assert_non_null(buf);
		memcpy(buf, pool, total * 64);
		uint32_t a[16][8], b[16][8];
		uint32_t *st[16];
		int32_t off[16];
		uint32_t nblk[16];
		size_t at = 0;
		for (unsigned l = 0; l < 16; l++) {
			for (unsigned i = 0; i < 8; i++)
				a[l][i] = b[l][i] = (uint32_t)rng();
			st[l] = a[l];
			nblk[l] = shapes[k][l];
			off[l] = (int32_t)(at * 64);
			at += nblk[l];
		}
		ws_sha256x16_blocks(st, buf, off, nblk);
		for (unsigned l = 0; l < 16; l++) {
			ws_sha256_blocks(b[l], buf + off[l], nblk[l]);
			if (memcmp(a[l], b[l], sizeof(a[l])) != 0)
				fail_msg("shape %zu lane %u (%u blocks) differs", k, l, nblk[l]);
		}
		free(buf);
	}
}

/*
 * Many lane members hashed at once, as the CLI does: each gets random
 * messages (lengths 0..3 x WS_HASH_LANE_STAGE, so the stage overflows and
 * the alone path runs) in random update sizes, the group run at random
 * points, SHA-1 members mixed in; every digest equals OpenSSL's.
 */
static void
test_lanes_random(void **state)
{
	(void)state;
	struct ws_hash_lanes *g = ws_hash_lanes_new();
	if (!g) {
		print_message("no AVX-512 here: lane groups not tested\n");
		skip();
	}
	enum { M = 37 };
	struct ws_hash *h[M];
	size_t len[M], done[M], start[M];
	enum ws_hash_alg alg[M];
	for (unsigned m = 0; m < M; m++) {
		alg[m] = m % 7 == 3 ? WS_HASH_SHA1 : WS_HASH_SHA256;
		h[m] = ws_hash_new_lane(g, alg[m]);
		assert_non_null(h[m]);
	}
	for (unsigned msg = 0; msg < 6; msg++) {
		for (unsigned m = 0; m < M; m++) {
			assert_int_equal(ws_hash_reset(h[m], alg[m]), 0);
			len[m] = rng() % 4 == 0 ? rng() % (3 * WS_HASH_LANE_STAGE) : rng() % 70000;
			start[m] = rng() % (BIG_LEN - len[m]);
			done[m] = 0;
		}
		bool left = true;
		while (left) {
			left = false;
			for (unsigned m = 0; m < M; m++) {
				if (done[m] == len[m])
					continue;
				size_t k = rng() % 3 == 0 ? rng() % 200 : rng() % 40000;
				if (k > len[m] - done[m])
					k = len[m] - done[m];
				ws_hash_update(h[m], pool + start[m] + done[m], k);
				done[m] += k;
				left = left || done[m] < len[m];
			}
			if (rng() % 2)
				ws_hash_lanes_run(g);
		}
		for (unsigned m = 0; m < M; m++) {
			uint8_t got[WS_HASH_MAX_LEN], want[WS_HASH_MAX_LEN];
			size_t n = ws_hash_final(h[m], got);
			assert_int_equal(n, ref_digest(alg[m], pool + start[m], len[m], want));
			if (memcmp(got, want, n) != 0)
				fail_msg("member %u (%s, %zu bytes) differs", m, ws_hash_name(alg[m]), len[m]);
		}
	}
	for (unsigned m = 0; m < M; m++)
		ws_hash_free(h[m]);
	ws_hash_lanes_free(g);
}

/* WS_HASH_LANES_MAX_MEMBERS members fit, one more does not; a freed slot is
 * reused. */
static void
test_lanes_member_limit(void **state)
{
	(void)state;
	struct ws_hash_lanes *g = ws_hash_lanes_new();
	if (!g)
		skip();
	static struct ws_hash *h[WS_HASH_LANES_MAX_MEMBERS];
	for (unsigned i = 0; i < WS_HASH_LANES_MAX_MEMBERS; i++) {
		h[i] = ws_hash_new_lane(g, WS_HASH_SHA256);
		assert_non_null(h[i]);
	}
	assert_null(ws_hash_new_lane(g, WS_HASH_SHA256));
	ws_hash_free(h[5]);
	h[5] = ws_hash_new_lane(g, WS_HASH_SHA256);
	assert_non_null(h[5]);
	ws_hash_update(h[5], "abc", 3);
	uint8_t got[WS_HASH_MAX_LEN], want[WS_HASH_MAX_LEN];
	assert_int_equal(ws_hash_final(h[5], got), 32);
	ref_digest(WS_HASH_SHA256, (const uint8_t *)"abc", 3, want);
	assert_memory_equal(got, want, 32);
	for (unsigned i = 0; i < WS_HASH_LANES_MAX_MEMBERS; i++)
		ws_hash_free(h[i]);
	ws_hash_lanes_free(g);
}

/* ws_hash_lanes_new_sized: a multiple of 64 from WS_HASH_LANE_STAGE_MIN to
 * WS_HASH_LANE_STAGE; each limit and one step past it. */
static void
test_lanes_sized_limits(void **state)
{
	(void)state;
	struct ws_hash_lanes *g = ws_hash_lanes_new();
	if (!g)
		skip();
	assert_int_equal(ws_hash_lanes_stage(g), WS_HASH_LANE_STAGE);
	ws_hash_lanes_free(g);
	const size_t good[] = {WS_HASH_LANE_STAGE_MIN, WS_HASH_LANE_STAGE, 8192};
	const size_t bad[] = {WS_HASH_LANE_STAGE_MIN - 64, WS_HASH_LANE_STAGE + 64,
	                      WS_HASH_LANE_STAGE_MIN + 1, 0};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		g = ws_hash_lanes_new_sized(good[i]);
		assert_non_null(g);
		assert_int_equal(ws_hash_lanes_stage(g), good[i]);
		ws_hash_lanes_free(g);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(ws_hash_lanes_new_sized(bad[i]));
}

/*
 * A worker's shape: small stages, many members (more than the 16 lanes,
 * fewer at times), updates of segment size and odd sizes, ws_hash_lanes_poll
 * after each round (or not), members starting and ending messages at
 * different times, some updates longer than the stage; every digest equals
 * OpenSSL's.
 */
static void
test_lanes_poll_random(void **state)
{
	(void)state;
	const size_t stages[] = {WS_HASH_LANE_STAGE_MIN, 8192};
	for (size_t si = 0; si < 2; si++) {
		struct ws_hash_lanes *g = ws_hash_lanes_new_sized(stages[si]);
		if (!g)
			skip();
		enum { M = 41 };
		struct ws_hash *h[M];
		size_t len[M], done[M], start[M];
		enum ws_hash_alg alg[M];
		for (unsigned m = 0; m < M; m++) {
			alg[m] = m % 9 == 4 ? WS_HASH_SHA1 : WS_HASH_SHA256;
			h[m] = ws_hash_new_lane(g, alg[m]);
			assert_non_null(h[m]);
			len[m] = done[m] = 0;
		}
		unsigned finished = 0;
		for (unsigned round = 0; finished < 6 * M; round++) {
			/* how many members take part this round: the lanes full,
			 * or not */
			unsigned active = rng() % 2 ? M : 1 + (unsigned)(rng() % 20);
			for (unsigned m = 0; m < active; m++) {
				if (done[m] == len[m]) {
					if (len[m]) { /* a message ended: its digest */
						uint8_t got[WS_HASH_MAX_LEN], want[WS_HASH_MAX_LEN];
						size_t n = ws_hash_final(h[m], got);
						assert_int_equal(n, ref_digest(alg[m], pool + start[m], len[m], want));
						if (memcmp(got, want, n) != 0)
							fail_msg("stage %zu member %u (%zu bytes) differs", stages[si], m,
							         len[m]);
						finished++;
					}
					assert_int_equal(ws_hash_reset(h[m], alg[m]), 0);
					len[m] = 1 + rng() % (rng() % 4 == 0 ? 100000 : 20000);
					start[m] = rng() % (BIG_LEN - len[m]);
					done[m] = 0;
				}
				size_t k = rng() % 4 == 0 ? rng() % 64 : 1000 + rng() % 1500;
				if (rng() % 50 == 0)
					k = 3 * stages[si];
				if (k > len[m] - done[m])
					k = len[m] - done[m];
				ws_hash_update(h[m], pool + start[m] + done[m], k);
				done[m] += k;
			}
			if (rng() % 4 != 0)
				ws_hash_lanes_poll(g);
		}
		for (unsigned m = 0; m < M; m++)
			ws_hash_free(h[m]);
		ws_hash_lanes_free(g);
	}
}

/*
 * A worker's steady state: 20 members each bring 1,000 bytes per burst
 * (the 16 lanes' worth and 4 more) and the group is polled after every
 * burst. What a pass leaves waits for the next burst's pass (it is not
 * compressed alone at once), so nearly every block goes through the 16
 * lanes; the digests stay OpenSSL's. With 10 members (no pass possible)
 * blocks wait until 3/4 of a stage is used, then go alone.
 */
static void
test_lanes_poll_keeps(void **state)
{
	(void)state;
	const unsigned counts[] = {20, 10};
	for (size_t ci = 0; ci < 2; ci++) {
		struct ws_hash_lanes *g = ws_hash_lanes_new_sized(8192);
		if (!g)
			skip();
		enum { M = 20, BURSTS = 60, STEP = 1000 };
		unsigned nm = counts[ci];
		struct ws_hash *h[M];
		for (unsigned m = 0; m < nm; m++) {
			h[m] = ws_hash_new_lane(g, WS_HASH_SHA256);
			assert_non_null(h[m]);
		}
		for (unsigned b = 0; b < BURSTS; b++) {
			for (unsigned m = 0; m < nm; m++)
				ws_hash_update(h[m], pool + m * 7 + (size_t)b * STEP, STEP);
			ws_hash_lanes_poll(g);
			if (b == 0 && nm < 16) {
				/* nothing compressed yet: every block waits */
				struct ws_hash_lanes_stats st;
				ws_hash_lanes_stats(g, &st);
				assert_int_equal(st.lane_blocks + st.alone_blocks, 0);
			}
		}
		for (unsigned m = 0; m < nm; m++) {
			uint8_t got[WS_HASH_MAX_LEN], want[WS_HASH_MAX_LEN];
			assert_int_equal(ws_hash_final(h[m], got), 32);
			ref_digest(WS_HASH_SHA256, pool + m * 7, (size_t)BURSTS * STEP, want);
			assert_memory_equal(got, want, 32);
			ws_hash_free(h[m]);
		}
		struct ws_hash_lanes_stats st;
		ws_hash_lanes_stats(g, &st);
		uint64_t all = st.lane_blocks + st.pair_blocks + st.alone_blocks;
		/* every whole block once, and each final's one or two */
		assert_true(all >= (uint64_t)nm * (BURSTS * STEP / 64 + 1) &&
			    all <= (uint64_t)nm * (BURSTS * STEP / 64 + 2));
		if (nm >= 16 && st.lane_blocks * 100 < all * 95)
			fail_msg("%u members: %llu of %llu blocks on the lanes", nm,
				 (unsigned long long)st.lane_blocks, (unsigned long long)all);
		if (nm < 16)
			assert_int_equal(st.lane_blocks, 0);
		ws_hash_lanes_free(g);
	}
}

/* Members may outlive ws_hash_lanes_free (parked messages): they still
 * digest right, the group takes no new member, and the last member's free
 * releases it (ASan/valgrind see a leak or a use after free otherwise). */
static void
test_lanes_free_before_members(void **state)
{
	(void)state;
	struct ws_hash_lanes *g = ws_hash_lanes_new_sized(WS_HASH_LANE_STAGE_MIN);
	if (!g)
		skip();
	struct ws_hash *a = ws_hash_new_lane(g, WS_HASH_SHA256);
	struct ws_hash *b = ws_hash_new_lane(g, WS_HASH_SHA256);
	assert_non_null(a);
	assert_non_null(b);
	ws_hash_update(a, pool, 1000);
	ws_hash_update(b, pool + 7, 300);
	ws_hash_lanes_free(g);
	assert_null(ws_hash_new_lane(g, WS_HASH_SHA256));
	ws_hash_update(a, pool + 1000, 5000); /* past the stage: compressed alone */
	uint8_t got[WS_HASH_MAX_LEN], want[WS_HASH_MAX_LEN];
	assert_int_equal(ws_hash_final(a, got), 32);
	ref_digest(WS_HASH_SHA256, pool, 6000, want);
	assert_memory_equal(got, want, 32);
	ws_hash_free(a);
	assert_int_equal(ws_hash_final(b, got), 32);
	ref_digest(WS_HASH_SHA256, pool + 7, 300, want);
	assert_memory_equal(got, want, 32);
	ws_hash_free(b); /* frees g */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_names),
	        cmocka_unit_test(test_known_answers),
	        cmocka_unit_test(test_incremental_random_splits),
	        cmocka_unit_test(test_batch_every_length),
	        cmocka_unit_test(test_batch_sizes_and_long),
	        cmocka_unit_test(test_batch_bad_job),
	        cmocka_unit_test(test_backend_refused),
	        cmocka_unit_test(test_sha256_portable),
	        cmocka_unit_test(test_sha256x16_lanes),
	        cmocka_unit_test(test_sha256x16_uneven),
	        cmocka_unit_test(test_sha256ni),
	        cmocka_unit_test(test_lanes_random),
	        cmocka_unit_test(test_lanes_member_limit),
	        cmocka_unit_test(test_lanes_sized_limits),
	        cmocka_unit_test(test_lanes_poll_random),
	        cmocka_unit_test(test_lanes_poll_keeps),
	        cmocka_unit_test(test_lanes_free_before_members),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
