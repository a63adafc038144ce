/*
 * bench-opendkim: libopendkim as a verification peer.
 *
 * Keys come from the corpus's opendkim-keys through libopendkim's own file
 * key source (DKIM_QUERY_FILE), so no DNS is involved. Each message goes
 * through dkim_verify -> dkim_chunk (whole message) -> dkim_chunk(NULL) ->
 * dkim_eom; it passes when any signature passes (DKIM_SIG_CHECK). CPU time
 * is CLOCK_PROCESS_CPUTIME_ID around each size bucket's batch, after all
 * files are in memory.
 *
 * Usage: bench-opendkim CORPUS_DIR [FILE...]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dkim.h>

#include "bcorp.h"

static enum bcorp_result
verify_one(DKIM_LIB *lib, unsigned char *data, size_t len)
{
	DKIM_STAT st;
	DKIM *d;
	DKIM_SIGINFO **sigs = NULL;
	int nsigs = 0;
	enum bcorp_result r = BCORP_OTHER;

	d = dkim_verify(lib, (const unsigned char *)"bench", NULL, &st);
	if (d == NULL)
		return BCORP_OTHER;
	st = dkim_chunk(d, data, len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(d, NULL, 0);
	if (st == DKIM_STAT_OK)
		st = dkim_eom(d, NULL);
	if (st == DKIM_STAT_NOSIG)
		goto done;
	if (dkim_getsiglist(d, &sigs, &nsigs) != DKIM_STAT_OK || nsigs == 0)
		goto done;
	r = BCORP_FAIL;
	for (int i = 0; i < nsigs; i++) {
		if (DKIM_SIG_CHECK(sigs[i])) {
			r = BCORP_PASS;
			break;
		}
	}
done:
	dkim_free(d);
	return r;
}

int
main(int argc, char **argv)
{
	struct bcorp c;
	struct bcorp_tally t;
	char err[512], keys[8300], extra[128];
	DKIM_LIB *lib;
	dkim_query_t qm = DKIM_QUERY_FILE;
	/* Library defaults. The corpus is CRLF already, and DKIM_LIBFLAGS_FIXCRLF
	 * (bare-LF repair) measured 45 % slower on it, so it is not set. */
	unsigned int flags = DKIM_LIBFLAGS_NONE;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR [FILE...]\n", argv[0]);
		return 2;
	}
	if (bcorp_load(&c, argv[1], argc - 2, argv + 2, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench-opendkim: %s\n", err);
		return 1;
	}
	lib = dkim_init(NULL, NULL);
	if (lib == NULL) {
		fprintf(stderr, "bench-opendkim: dkim_init failed\n");
		return 1;
	}
	snprintf(keys, sizeof(keys), "%s/opendkim-keys", argv[1]);
	if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &qm, sizeof(qm)) != DKIM_STAT_OK ||
	    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, keys, strlen(keys)) != DKIM_STAT_OK ||
	    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags)) != DKIM_STAT_OK) {
		fprintf(stderr, "bench-opendkim: dkim_options failed\n");
		return 1;
	}
	/* Warm-up, untimed: the first verify loads OpenSSL's providers. */
	for (size_t i = 0; i < c.n && i < BCORP_WARMUP; i++)
		(void)verify_one(lib, c.msgs[i].data, c.msgs[i].len);
	bcorp_tally_init(&t, "libopendkim", &c);
	for (int b = 0; b < BCORP_NBUCKETS; b++) {
		enum bcorp_result *res = calloc(c.n ? c.n : 1, sizeof(*res));
		double t0;

		if (res == NULL)
			return 1;
		t0 = bcorp_cpu_now();
		for (size_t i = 0; i < c.n; i++)
			if (c.msgs[i].bucket == b)
				res[i] = verify_one(lib, c.msgs[i].data, c.msgs[i].len);
		bcorp_tally_cpu(&t, b, bcorp_cpu_now() - t0);
		for (size_t i = 0; i < c.n; i++)
			if (c.msgs[i].bucket == b)
				bcorp_tally_result(&t, &c.msgs[i], res[i]);
		free(res);
	}
	snprintf(extra, sizeof(extra), "\"version\": \"libopendkim 0x%08lx\"",
		 (unsigned long)dkim_libversion());
	bcorp_tally_print(&t, stdout, extra);
	dkim_close(lib);
	bcorp_free(&c);
	return 0;
}
