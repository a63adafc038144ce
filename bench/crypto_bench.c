/*
 * bench-crypto: throughput of the crypto/ layer, in CPU time of this process
 * (CLOCK_PROCESS_CPUTIME_ID), so run it pinned: taskset -c 1 bench-crypto.
 * Each figure is measured 3 times (each run >= RUN_SECONDS of CPU) and
 * printed as one JSON line with min/median/max.
 *
 *  - SHA-256 at 1 KiB and 16 KiB: ws_hash incremental (OpenSSL) and every
 *    batch backend this CPU has, BATCH jobs per ws_hash_batch_run;
 *  - SHA-256 compression alone at the same lengths per stream: our 16-lane
 *    AVX-512 code (sha256x16.h, beside ipsec-mb's avx512 line) and SHA-NI
 *    one and two streams;
 *  - RSA 1024..4096 verifies/s through ws_sig_verify (pooled contexts) and
 *    with a fresh EVP_PKEY_CTX per call (the design ws_sig does not use);
 *  - RSA 1024..4096 verifies/s through ws_sig_verify_batch, 8 jobs a call,
 *    IFMA (rsa_ifma.h) against the OpenSSL backend; and the break-even of a
 *    short IFMA group: ws_rsa_ifma_verify with k = 1..8 jobs against k
 *    ws_sig_verify calls, in calls/s (pick WS_SIG_IFMA_MIN_JOBS from it);
 *  - Ed25519 verifies/s: ws_sig_verify (libsodium) and OpenSSL.
 * --sig [BITS]: the signature figures only (of one RSA size).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "hash.h"
#include "rsa_ifma.h"
#include "sha256x16.h"
#include "sig.h"

#define RUNS 3
#define RUN_SECONDS 0.3
#define BATCH 64

typedef void (*bench_fn)(void *arg, size_t reps);

static double
cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* fn(arg, reps) does reps units of work; scale turns units/s into the unit
 * printed (bytes per unit / 1e9 for GB/s, 1 for ops/s). */
static void
measure(const char *what, const char *unit, double scale, bench_fn fn, void *arg)
{
	double rate[RUNS];
	fn(arg, 1); /* warm caches and lazy initialisation */
	for (int r = 0; r < RUNS; r++) {
		size_t units = 0, reps = 1;
		double t0 = cpu_now(), t;
		while ((t = cpu_now() - t0) < RUN_SECONDS) {
			fn(arg, reps);
			units += reps;
			if (reps < (1u << 20))
				reps *= 2;
		}
		rate[r] = (double)units / t * scale;
	}
	qsort(rate, RUNS, sizeof(rate[0]), cmp_double);
	printf("{\"what\": \"%s\", \"unit\": \"%s\", \"min\": %.4g, \"median\": %.4g, "
	       "\"max\": %.4g}\n",
	       what, unit, rate[0], rate[RUNS / 2], rate[RUNS - 1]);
	fflush(stdout);
}

/* ---- hashing ------------------------------------------------------------ */

struct hash_arg {
	struct ws_hash *h;
	struct ws_hash_batch *b;
	struct ws_hash_job *jobs;
	const uint8_t *data;
	size_t len;
};

static void
run_incremental(void *p, size_t reps)
{
	struct hash_arg *a = p;
	uint8_t out[WS_HASH_MAX_LEN];
	for (size_t i = 0; i < reps; i++) {
		ws_hash_reset(a->h, WS_HASH_SHA256);
		ws_hash_update(a->h, a->data, a->len);
		ws_hash_final(a->h, out);
	}
}

static void
run_oneshot(void *p, size_t reps)
{
	struct hash_arg *a = p;
	uint8_t out[WS_HASH_MAX_LEN];
	for (size_t i = 0; i < reps; i++)
		ws_hash_oneshot(WS_HASH_SHA256, a->data, a->len, out);
}

/* What ws_hash would cost with the legacy EVP_MD: an implicit fetch on
 * every init. */
static void
run_implicit_fetch(void *p, size_t reps)
{
	struct hash_arg *a = p;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t out[WS_HASH_MAX_LEN];
	unsigned int n;
	for (size_t i = 0; i < reps; i++) {
		EVP_DigestInit_ex(c, EVP_sha256(), NULL);
		EVP_DigestUpdate(c, a->data, a->len);
		EVP_DigestFinal_ex(c, out, &n);
	}
	EVP_MD_CTX_free(c);
}

static void
run_batch(void *p, size_t reps)
{
	struct hash_arg *a = p;
	for (size_t i = 0; i < reps; i++)
		if (ws_hash_batch_run(a->b, a->jobs, BATCH) != 0)
			abort();
}

/* The compression functions alone (no padding): 16 streams of len bytes. */
struct blocks_arg {
	const uint8_t *data;
	size_t len;
	uint32_t st[16][8];
};

static void
run_x16(void *p, size_t reps)
{
	struct blocks_arg *a = p;
	uint32_t *st[16];
	int32_t off[16];
	uint32_t nblk[16];
	for (unsigned l = 0; l < 16; l++) {
		st[l] = a->st[l];
		off[l] = (int32_t)(l * 16384);
		nblk[l] = (uint32_t)(a->len / 64);
	}
	for (size_t i = 0; i < reps; i++)
		ws_sha256x16_blocks(st, a->data, off, nblk);
}

static void
run_ni(void *p, size_t reps)
{
	struct blocks_arg *a = p;
	for (size_t i = 0; i < reps; i++)
		for (unsigned l = 0; l < 16; l++)
			ws_sha256ni_blocks(a->st[l], a->data + l * 16384, a->len / 64);
}

static void
run_ni_x2(void *p, size_t reps)
{
	struct blocks_arg *a = p;
	for (size_t i = 0; i < reps; i++)
		for (unsigned l = 0; l < 16; l += 2)
			ws_sha256ni_x2_blocks(a->st[l], a->data + l * 16384, a->st[l + 1],
			                      a->data + (l + 1) * 16384, a->len / 64);
}

static void
bench_blocks(const uint8_t *data, size_t len)
{
	char what[128];
	struct blocks_arg a = {.data = data, .len = len};
	for (unsigned l = 0; l < 16; l++)
		ws_sha256_init_state(a.st[l]);
	if (ws_sha256x16_available()) {
		snprintf(what, sizeof(what), "sha256 %zu B x 16 streams, ws_sha256x16_blocks (avx512)",
		         len);
		measure(what, "GB/s", (double)len * 16 / 1e9, run_x16, &a);
	}
	if (ws_sha256ni_available()) {
		snprintf(what, sizeof(what), "sha256 %zu B x 16 streams, ws_sha256ni_blocks", len);
		measure(what, "GB/s", (double)len * 16 / 1e9, run_ni, &a);
		snprintf(what, sizeof(what), "sha256 %zu B x 16 streams, ws_sha256ni_x2_blocks", len);
		measure(what, "GB/s", (double)len * 16 / 1e9, run_ni_x2, &a);
	}
}

static void
bench_hash(void)
{
	static const size_t lens[] = {1024, 16384};
	static const struct {
		enum ws_hash_backend be;
		const char *name;
	} bes[] = {
	        {WS_HASH_BACKEND_OPENSSL, "openssl"},
	        {WS_HASH_BACKEND_MB_SSE, "mb-sse"},
	        {WS_HASH_BACKEND_MB_AVX2, "mb-avx2"},
	        {WS_HASH_BACKEND_MB_AVX512, "mb-avx512"},
	};
	uint8_t *data = malloc(BATCH * 16384);
	struct ws_hash_job *jobs = calloc(BATCH, sizeof(*jobs));
	if (!data || !jobs)
		abort();
	RAND_bytes(data, BATCH * 16384);
	char what[128];
	/* Short inputs show the per-init cost the explicit fetch removes. */
	struct hash_arg sa = {.h = ws_hash_new(WS_HASH_SHA256), .data = data, .len = 64};
	measure("sha256 64 B, ws_hash incremental (fetched EVP_MD)", "hashes/s", 1, run_incremental,
	        &sa);
	measure("sha256 64 B, ws_hash_oneshot", "hashes/s", 1, run_oneshot, &sa);
	measure("sha256 64 B, EVP_DigestInit_ex(EVP_sha256()) per hash", "hashes/s", 1,
	        run_implicit_fetch, &sa);
	ws_hash_free(sa.h);
	for (size_t li = 0; li < 2; li++) {
		size_t len = lens[li];
		struct hash_arg a = {.h = ws_hash_new(WS_HASH_SHA256), .data = data, .len = len};
		snprintf(what, sizeof(what), "sha256 %zu B, ws_hash incremental (openssl)", len);
		measure(what, "GB/s", (double)len / 1e9, run_incremental, &a);
		ws_hash_free(a.h);
		for (size_t i = 0; i < BATCH; i++)
			jobs[i] = (struct ws_hash_job){
			        .alg = WS_HASH_SHA256, .data = data + i * 16384, .len = len};
		for (size_t bi = 0; bi < sizeof(bes) / sizeof(bes[0]); bi++) {
			struct hash_arg ba = {.b = ws_hash_batch_new(bes[bi].be, NULL),
			                      .jobs = jobs};
			if (!ba.b) {
				printf("{\"what\": \"sha256 batch %s\", \"skipped\": \"not on this "
				       "CPU\"}\n",
				       bes[bi].name);
				continue;
			}
			snprintf(what, sizeof(what), "sha256 %zu B, batch %s, %d jobs/batch", len,
			         ws_hash_batch_name(ba.b), BATCH);
			measure(what, "GB/s", (double)len * BATCH / 1e9, run_batch, &ba);
			ws_hash_batch_free(ba.b);
		}
		bench_blocks(data, len);
	}
	free(jobs);
	free(data);
}

/* ---- signatures ------------------------------------------------------------ */

struct sig_arg {
	const struct ws_pubkey *k;
	EVP_PKEY *pkey;
	uint8_t dg[32];
	uint8_t sig[WS_SIG_MAX_LEN];
	size_t slen;
};

static void
run_ws_verify(void *p, size_t reps)
{
	struct sig_arg *a = p;
	for (size_t i = 0; i < reps; i++)
		if (ws_sig_verify(a->k, WS_HASH_SHA256, a->dg, 32, a->sig, a->slen) != 1)
			abort();
}

/* What ws_sig_verify would cost without its context pool. */
static void
run_rsa_fresh_ctx(void *p, size_t reps)
{
	struct sig_arg *a = p;
	for (size_t i = 0; i < reps; i++) {
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, a->pkey, NULL);
		if (!c || EVP_PKEY_verify_init(c) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) <= 0 ||
		    EVP_PKEY_verify(c, a->sig, a->slen, a->dg, 32) != 1)
			abort();
		EVP_PKEY_CTX_free(c);
	}
}

struct batch_arg {
	struct sig_arg *a;
	struct ws_rsa_ifma_key *ik;
	size_t n;
	struct ws_verify_job jobs[WS_RSA_IFMA_LANES];
	struct ws_rsa_ifma_job ij[WS_RSA_IFMA_LANES];
};

static void
run_ws_batch(void *p, size_t reps)
{
	struct batch_arg *b = p;
	for (size_t i = 0; i < reps; i++) {
		ws_sig_verify_batch(b->jobs, b->n);
		for (size_t j = 0; j < b->n; j++)
			if (b->jobs[j].result != 1)
				abort();
	}
}

static void
run_ifma_k(void *p, size_t reps)
{
	struct batch_arg *b = p;
	for (size_t i = 0; i < reps; i++) {
		if (ws_rsa_ifma_verify(b->ij, b->n) != 0)
			abort();
		for (size_t j = 0; j < b->n; j++)
			if (b->ij[j].result != 1)
				abort();
	}
}

static void
run_ws_verify_k(void *p, size_t reps)
{
	struct batch_arg *b = p;
	for (size_t i = 0; i < reps; i++)
		for (size_t j = 0; j < b->n; j++)
			run_ws_verify(b->a, 1);
}

static void
bench_batch(struct sig_arg *a, unsigned bits)
{
	struct batch_arg b = {.a = a, .n = WS_RSA_IFMA_LANES};
	char what[160];
	BIGNUM *n = NULL, *e = NULL;
	for (size_t j = 0; j < WS_RSA_IFMA_LANES; j++)
		b.jobs[j] = (struct ws_verify_job){.key = a->k,
		                                   .halg = WS_HASH_SHA256,
		                                   .digest = a->dg,
		                                   .digest_len = 32,
		                                   .sig = a->sig,
		                                   .sig_len = a->slen};
	ws_sig_set_backend(WS_SIG_BACKEND_OPENSSL);
	snprintf(what, sizeof(what), "rsa-%u verify sha256, ws_sig_verify_batch x8, openssl", bits);
	measure(what, "verifies/s", WS_RSA_IFMA_LANES, run_ws_batch, &b);
	ws_sig_set_backend(WS_SIG_BACKEND_AUTO);
	if (!ws_rsa_ifma_available()) {
		printf("{\"what\": \"rsa-%u ifma\", \"skipped\": \"no avx512ifma\"}\n", bits);
		return;
	}
	snprintf(what, sizeof(what), "rsa-%u verify sha256, ws_sig_verify_batch x8, ifma", bits);
	measure(what, "verifies/s", WS_RSA_IFMA_LANES, run_ws_batch, &b);

	if (EVP_PKEY_get_bn_param(a->pkey, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
	    EVP_PKEY_get_bn_param(a->pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1 ||
	    ws_rsa_ifma_key_new(n, e, &b.ik) != 0)
		abort();
	for (size_t j = 0; j < WS_RSA_IFMA_LANES; j++)
		b.ij[j] = (struct ws_rsa_ifma_job){b.ik, WS_HASH_SHA256, a->dg, a->sig, 0};
	/* Break-even: one IFMA call for k jobs against k OpenSSL verifies. */
	for (size_t k = 1; k <= WS_RSA_IFMA_LANES; k++) {
		b.n = k;
		snprintf(what, sizeof(what), "rsa-%u %zu jobs, ws_rsa_ifma_verify", bits, k);
		measure(what, "calls/s", 1, run_ifma_k, &b);
		snprintf(what, sizeof(what), "rsa-%u %zu jobs, ws_sig_verify each", bits, k);
		measure(what, "calls/s", 1, run_ws_verify_k, &b);
		if (k == 4 && bits != 2048)
			break; /* the break-even is well below; 2048 gets the full table */
	}
	ws_rsa_ifma_key_free(b.ik);
	BN_free(n);
	BN_free(e);
}

static void
run_ed_openssl(void *p, size_t reps)
{
	struct sig_arg *a = p;
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	for (size_t i = 0; i < reps; i++) {
		if (EVP_DigestVerifyInit(mc, NULL, NULL, NULL, a->pkey) != 1 ||
		    EVP_DigestVerify(mc, a->sig, 64, a->dg, 32) != 1)
			abort();
	}
	EVP_MD_CTX_free(mc);
}

/* A ws_privkey from an OpenSSL key, through PEM as a caller would load it. */
static struct ws_privkey *
privkey_of(EVP_PKEY *pk)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem;
	struct ws_privkey *k = NULL;
	const char *why;
	if (!bio || PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) != 1)
		abort();
	long n = BIO_get_mem_data(bio, &pem);
	if (ws_privkey_load_pem(pem, (size_t)n, &k, &why) != 0)
		abort();
	BIO_free(bio);
	return k;
}

static void
setup_sig(struct sig_arg *a, EVP_PKEY *pk)
{
	struct ws_privkey *priv = privkey_of(pk);
	uint8_t der[2048];
	const char *why;
	size_t dlen = ws_privkey_public(priv, der, sizeof(der));
	struct ws_pubkey *k = NULL;
	if (dlen == 0 || ws_pubkey_parse(ws_privkey_alg(priv), der, dlen, &k, &why) != 0)
		abort();
	a->k = k;
	a->pkey = pk;
	RAND_bytes(a->dg, 32);
	a->slen = ws_sig_sign(priv, WS_HASH_SHA256, a->dg, 32, a->sig, sizeof(a->sig));
	if (a->slen == 0)
		abort();
	ws_privkey_free(priv);
}

/* only_bits: one RSA size (and no Ed25519), 0 for all. */
static void
bench_sig(unsigned only_bits)
{
	static const unsigned bits[] = {1024, 2048, 3072, 4096};
	EVP_PKEY *keys[4] = {NULL};
	char what[128];
	for (size_t i = 0; i < 4; i++)
		if ((!only_bits || only_bits == bits[i]) && !(keys[i] = EVP_RSA_gen(bits[i])))
			abort();
	for (size_t i = 0; i < 4; i++) {
		if (!keys[i])
			continue;
		struct sig_arg a;
		setup_sig(&a, keys[i]);
		snprintf(what, sizeof(what), "rsa-%u verify sha256, ws_sig_verify", bits[i]);
		measure(what, "verifies/s", 1, run_ws_verify, &a);
		snprintf(what, sizeof(what), "rsa-%u verify sha256, openssl fresh ctx per call",
		         bits[i]);
		measure(what, "verifies/s", 1, run_rsa_fresh_ctx, &a);
		bench_batch(&a, bits[i]);
		ws_pubkey_free((struct ws_pubkey *)(uintptr_t)a.k);
		EVP_PKEY_free(keys[i]);
	}
	if (only_bits)
		return;
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!ed)
		abort();
	struct sig_arg a;
	setup_sig(&a, ed);
	measure("ed25519 verify, ws_sig_verify (libsodium)", "verifies/s", 1, run_ws_verify, &a);
	EVP_PKEY *edpub = NULL;
	uint8_t raw[32];
	size_t rl = sizeof(raw);
	if (!EVP_PKEY_get_raw_public_key(ed, raw, &rl) ||
	    !(edpub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, rl)))
		abort();
	a.pkey = edpub;
	measure("ed25519 verify, openssl EVP_DigestVerify", "verifies/s", 1, run_ed_openssl, &a);
	ws_pubkey_free((struct ws_pubkey *)(uintptr_t)a.k);
	EVP_PKEY_free(edpub);
	EVP_PKEY_free(ed);
}

int
main(int argc, char **argv)
{
	/* --hash: the hash figures only (quick look while tuning) */
	bool hash_only = argc > 1 && strcmp(argv[1], "--hash") == 0;
	/* --sig [BITS]: the signature figures only (one RSA size) */
	bool sig_only = argc > 1 && strcmp(argv[1], "--sig") == 0;
	unsigned only_bits = sig_only && argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 0;
	if (!sig_only)
		bench_hash();
	if (hash_only)
		return 0;
	bench_sig(only_bits);
	return 0;
}
