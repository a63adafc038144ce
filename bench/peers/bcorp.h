/*
 * bcorp: a benchmark corpus (made by bench/gen_corpus.py) loaded into memory,
 * plus the per-size-bucket tally every C peer driver prints as one JSON line.
 *
 * Data model: bcorp_load() reads DIR/manifest.tsv (or the FILEs given) and
 * every message DIR/msgs/NAME into one malloc'd buffer each, so that timed
 * loops touch no file system. The struct owns everything; bcorp_free()
 * releases it. Not thread-safe (benchmark drivers are single-threaded).
 * Limits: BCORP_MAX_MSG bytes per message, BCORP_NAME_MAX per file name.
 */
#ifndef WS_BENCH_BCORP_H
#define WS_BENCH_BCORP_H

#include <stddef.h>
#include <stdio.h>

#define BCORP_MAX_MSG (64u * 1024 * 1024)
#define BCORP_NAME_MAX 64
#define BCORP_NBUCKETS 5
/* Messages verified once, untimed, before measuring (lazy initialisation). */
#define BCORP_WARMUP 10

/* Bucket bounds on total message bytes, [lo, hi); the same as corpus.py. */
extern const size_t bcorp_bucket_lo[BCORP_NBUCKETS];
extern const size_t bcorp_bucket_hi[BCORP_NBUCKETS];

enum bcorp_expect { BCORP_EXPECT_UNKNOWN = -1, BCORP_EXPECT_FAIL = 0, BCORP_EXPECT_PASS = 1 };
enum bcorp_result { BCORP_PASS, BCORP_FAIL, BCORP_OTHER };

struct bcorp_msg {
	char name[BCORP_NAME_MAX];
	unsigned char *data;
	size_t len;
	enum bcorp_expect expected;
	int bucket;
};

struct bcorp {
	char dir[4096];
	struct bcorp_msg *msgs;
	size_t n;
	size_t bytes;
};

struct bcorp_tally {
	const char *peer;
	const struct bcorp *corpus;
	size_t count[3];
	size_t mismatch;
	char mismatch_ex[5][BCORP_NAME_MAX];
	size_t bucket_msgs[BCORP_NBUCKETS];
	size_t bucket_bytes[BCORP_NBUCKETS];
	double bucket_cpu[BCORP_NBUCKETS];
};

/* Loads the corpus at dir; files (nfiles > 0) restricts it to those names
 * or paths. Returns 0, or -1 with a reason in err. */
int bcorp_load(struct bcorp *c, const char *dir, int nfiles, char *const *files, char *err,
	       size_t errlen);
void bcorp_free(struct bcorp *c);
int bcorp_bucket(size_t size);

/* Seconds of CPU used by this process (CLOCK_PROCESS_CPUTIME_ID). */
double bcorp_cpu_now(void);

void bcorp_tally_init(struct bcorp_tally *t, const char *peer, const struct bcorp *c);
void bcorp_tally_result(struct bcorp_tally *t, const struct bcorp_msg *m, enum bcorp_result r);
void bcorp_tally_cpu(struct bcorp_tally *t, int bucket, double cpu_s);
/* Prints the JSON line; extra is a JSON fragment ("\"k\":v,...") or NULL. */
void bcorp_tally_print(const struct bcorp_tally *t, FILE *out, const char *extra);

#endif
