/*
 * bench-wireseal-lib: wireseal's verification path in one process over a
 * corpus held in memory, so the figure sits beside bench-physlimit (which
 * also reads no files in its timed loop): header parse, streamed body
 * canonicalisation and hashing, key lookup through the same ws_dns embedded
 * zone + key cache as `wireseal verify --zone`, header hashes and signature
 * checks. The body goes to the verifier in 128 KiB steps, as the CLI feeds it.
 * Keys are looked up once before timing (the cache is what a running
 * appliance has); the CLI figure (peer "wireseal") includes the first
 * lookups, file reads and output.
 *
 *
 * Per message it also takes the wall time (CLOCK_MONOTONIC) and the thread's
 * CPU time (CLOCK_THREAD_CPUTIME_ID) around verify_one(), and prints
 * p50/p90/p99/p99.9/max of both ("latency_us", "cpu_us") and a least-squares
 * line of CPU cost against message bytes ("size_fit": intercept_us,
 * ns_per_byte, r2). --passes N repeats the timed loop (more samples for the
 * p99.9; the msgs/s figure covers all passes).
 *
 * --threads N: N threads, each with its own verifier, DNS view and key cache
 * (nothing shared but the read-only corpus), verify message i on thread
 * i mod N; prints one line {"peer": "wireseal-lib-mt", "threads", "wall_s",
 * "msgs_per_wall_s", "cpu_s"} -- wall time, since the point is scaling over
 * cores; --passes N loops over the corpus N times per thread. The library
 * has no batch mode across messages, so this is how two cores verify.
 *
 * Usage: bench-wireseal-lib [--passes N] [--threads N] CORPUS_DIR [FILE...]
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bcorp.h"
#include "dkim.h"
#include "dns.h"
#include "keys.h"
#include "rfc5322.h"

#define STEP (128u * 1024)
/* bounds of the options: more passes add nothing but time */
#define MAX_PASSES 100
#define MAX_THREADS 64

static enum bcorp_result
verify_one(struct dkim_verifier *v, struct rfc5322_header *h, struct keycache *kc,
           const unsigned char *data, size_t len)
{
	rfc5322_reset(h);
	size_t used = 0;
	enum rfc5322_status st = rfc5322_push(h, data, len, &used);
	if (st == RFC5322_NEED_MORE)
		st = rfc5322_finish(h);
	if (st != RFC5322_DONE)
		return BCORP_OTHER;
	size_t n = dkim_verifier_start(v, h);
	for (size_t off = used; off < len; off += STEP)
		dkim_verifier_body(v, data + off, len - off < STEP ? len - off : STEP);
	dkim_verifier_body_end(v);
	for (size_t i = 0; i < n; i++) {
		const char *name = dkim_verifier_key_name(v, i);
		if (!name)
			continue;
		const struct dkim_key *key;
		const char *why;
		enum dkim_key_status ks = keycache_get(kc, name, &key, &why);
		dkim_verifier_set_key(v, i, ks, key, why);
	}
	dkim_verifier_finish(v);
	if (n == 0)
		return BCORP_OTHER;
	enum bcorp_result r = BCORP_FAIL;
	for (size_t i = 0; i < n; i++) {
		enum dkim_result dr = dkim_verifier_result(v, i)->result;
		if (dr == DKIM_PASS)
			return BCORP_PASS;
		if (dr == DKIM_TEMPERROR || dr == DKIM_NONE)
			r = BCORP_OTHER;
	}
	return r;
}

static double
clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One verifying context: what each thread owns. */
struct ctx {
	const struct bcorp *c;
	const char *zone;
	struct ws_dns *dns;
	struct keycache *kc;
	struct dkim_verifier *v;
	struct rfc5322_header h;
	size_t first, stride;
	long passes;
	double cpu_s;
};

static int
ctx_open(struct ctx *x, const struct bcorp *c, const char *zone)
{
	char err[512];
	memset(x, 0, sizeof(*x));
	x->c = c;
	x->zone = zone;
	x->stride = 1;
	struct ws_dns_config dcfg = {.zone_file = zone};
	x->dns = ws_dns_new(&dcfg, err, sizeof(err));
	if (!x->dns) {
		fprintf(stderr, "bench-wireseal-lib: %s: %s\n", zone, err);
		return -1;
	}
	x->kc = keycache_new(x->dns);
	struct dkim_verify_config vcfg = {.now = 1800000000};
	x->v = dkim_verifier_new(&vcfg);
	rfc5322_init(&x->h);
	if (!x->kc || !x->v) {
		fprintf(stderr, "bench-wireseal-lib: out of memory\n");
		return -1;
	}
	return 0;
}

static void
ctx_close(struct ctx *x)
{
	rfc5322_free(&x->h);
	if (x->v)
		dkim_verifier_free(x->v);
	if (x->kc)
		keycache_free(x->kc);
	if (x->dns)
		ws_dns_free(x->dns);
}

/* warm: fill the key cache and touch every message once */
static void
ctx_warm(struct ctx *x)
{
	for (size_t i = x->first; i < x->c->n; i += x->stride)
		verify_one(x->v, &x->h, x->kc, x->c->msgs[i].data, x->c->msgs[i].len);
}

static void *
thread_main(void *arg)
{
	struct ctx *x = arg;
	double t0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
	for (long p = 0; p < x->passes; p++)
		ctx_warm(x);
	x->cpu_s = clock_s(CLOCK_THREAD_CPUTIME_ID) - t0;
	return NULL;
}

static int
run_threads(const struct bcorp *c, const char *zone, int nthreads, long passes)
{
	struct ctx x[MAX_THREADS];
	pthread_t tid[MAX_THREADS];
	int rc = 1, opened = 0;
	for (; opened < nthreads; opened++) {
		if (ctx_open(&x[opened], c, zone) != 0) {
			opened++;
			goto out;
		}
		x[opened].first = (size_t)opened;
		x[opened].stride = (size_t)nthreads;
		x[opened].passes = passes;
		ctx_warm(&x[opened]);
	}
	double w0 = clock_s(CLOCK_MONOTONIC);
	int started = 0;
	for (; started < nthreads; started++)
		if (pthread_create(&tid[started], NULL, thread_main, &x[started]) != 0)
			break;
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	double wall = clock_s(CLOCK_MONOTONIC) - w0;
	if (started != nthreads) {
		fprintf(stderr, "bench-wireseal-lib: pthread_create failed\n");
		goto out;
	}
	double cpu = 0;
	for (int i = 0; i < nthreads; i++)
		cpu += x[i].cpu_s;
	double msgs = (double)c->n * (double)passes, bytes = (double)c->bytes * (double)passes;
	printf("{\"peer\": \"wireseal-lib-mt\", \"threads\": %d, \"passes\": %ld, \"messages\": "
	       "%.0f, "
	       "\"bytes\": %.0f, \"wall_s\": %.6f, \"msgs_per_wall_s\": %.2f, \"mb_per_wall_s\": "
	       "%.3f, "
	       "\"cpu_s\": %.6f}\n",
	       nthreads, passes, msgs, bytes, wall, wall > 0 ? msgs / wall : 0.0,
	       wall > 0 ? bytes / 1e6 / wall : 0.0, cpu);
	rc = 0;
out:
	for (int i = 0; i < opened; i++)
		ctx_close(&x[i]);
	return rc;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* "name": {"p50": .., "p90", "p99", "p999", "max", "samples"} in us; sorts v */
static void
print_pct(char *out, size_t outlen, const char *name, double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	static const double q[] = {0.50, 0.90, 0.99, 0.999};
	static const char *const qn[] = {"p50", "p90", "p99", "p999"};
	size_t used = (size_t)snprintf(out, outlen, "\"%s\": {", name);
	for (size_t k = 0; k < 4 && used < outlen; k++) {
		/* nearest rank: the smallest sample with at least q of all at or below it */
		size_t rank = (size_t)ceil(q[k] * (double)n);
		size_t idx = rank > 0 ? rank - 1 : 0;
		used += (size_t)snprintf(out + used, outlen - used, "\"%s\": %.2f, ", qn[k],
		                         v[idx] * 1e6);
	}
	if (used < outlen)
		snprintf(out + used, outlen - used, "\"max\": %.2f, \"samples\": %zu}",
		         v[n - 1] * 1e6, n);
}

int
main(int argc, char **argv)
{
	struct bcorp c;
	struct bcorp_tally t;
	char err[512], zone[4200];
	long passes = 1, threads = 0;
	int a = 1;
	for (; a < argc && strncmp(argv[a], "--", 2) == 0; a++) {
		long *dst = strcmp(argv[a], "--passes") == 0    ? &passes
		            : strcmp(argv[a], "--threads") == 0 ? &threads
		                                                : NULL;
		if (!dst || a + 1 >= argc) {
			fprintf(stderr, "bench-wireseal-lib: unknown option %s\n", argv[a]);
			return 2;
		}
		*dst = strtol(argv[++a], NULL, 10);
	}
	if (passes < 1 || passes > MAX_PASSES || threads < 0 || threads > MAX_THREADS) {
		fprintf(stderr, "bench-wireseal-lib: --passes 1..%d, --threads 1..%d\n", MAX_PASSES,
		        MAX_THREADS);
		return 2;
	}
	if (a >= argc) {
		fprintf(stderr, "usage: %s [--passes N] [--threads N] CORPUS_DIR [FILE...]\n",
		        argv[0]);
		return 2;
	}
	if (bcorp_load(&c, argv[a], argc - a - 1, argv + a + 1, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench-wireseal-lib: %s\n", err);
		return 1;
	}
	snprintf(zone, sizeof(zone), "%s/zone.db", argv[a]);
	if (threads > 0) {
		int rc = run_threads(&c, zone, (int)threads, passes);
		bcorp_free(&c);
		return rc;
	}
	struct ctx x;
	size_t ns = c.n * (size_t)passes, k = 0;
	double *wall = calloc(ns ? ns : 1, sizeof(double));
	double *cpu = calloc(ns ? ns : 1, sizeof(double));
	int rc = 1;
	if (!wall || !cpu)
		goto out;
	if (ctx_open(&x, &c, zone) != 0) {
		ctx_close(&x);
		goto out;
	}
	ctx_warm(&x);
	/* least squares of per-message CPU seconds on bytes */
	double sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
	bcorp_tally_init(&t, "wireseal-lib", &c);
	for (long p = 0; p < passes; p++) {
		for (size_t i = 0; i < c.n; i++, k++) {
			double t0 = bcorp_cpu_now();
			double w0 = clock_s(CLOCK_MONOTONIC);
			double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
			enum bcorp_result r =
			        verify_one(x.v, &x.h, x.kc, c.msgs[i].data, c.msgs[i].len);
			cpu[k] = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
			wall[k] = clock_s(CLOCK_MONOTONIC) - w0;
			bcorp_tally_cpu(&t, c.msgs[i].bucket, bcorp_cpu_now() - t0);
			if (p == 0) {
				bcorp_tally_result(&t, &c.msgs[i], r);
			} else {
				/* results counted once; sizes once per pass, as the CPU is */
				t.bucket_msgs[c.msgs[i].bucket]++;
				t.bucket_bytes[c.msgs[i].bucket] += c.msgs[i].len;
			}
			double bx = (double)c.msgs[i].len;
			sx += bx;
			sy += cpu[k];
			sxx += bx * bx;
			sxy += bx * cpu[k];
			syy += cpu[k] * cpu[k];
		}
	}
	double n = (double)ns, den = n * sxx - sx * sx;
	double slope = den != 0 ? (n * sxy - sx * sy) / den : 0.0;
	double icept = (sy - slope * sx) / n;
	double vy = n * syy - sy * sy;
	double r2 =
	        den != 0 && vy != 0 ? (n * sxy - sx * sy) * (n * sxy - sx * sy) / (den * vy) : 0.0;
	char extra[1024], lat[300], cp[300];
	print_pct(lat, sizeof(lat), "latency_us", wall, ns);
	print_pct(cp, sizeof(cp), "cpu_us", cpu, ns);
	snprintf(extra, sizeof(extra),
	         "\"dns_queries\": %lu, \"passes\": %ld, %s, %s, "
	         "\"size_fit\": {\"intercept_us\": %.3f, \"ns_per_byte\": %.4f, \"r2\": %.4f}",
	         keycache_queries(x.kc), passes, lat, cp, icept * 1e6, slope * 1e9, r2);
	bcorp_tally_print(&t, stdout, extra);
	rc = 0;
	ctx_close(&x);
out:
	free(wall);
	free(cpu);
	bcorp_free(&c);
	return rc;
}
