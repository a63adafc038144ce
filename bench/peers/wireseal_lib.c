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
 * Usage: bench-wireseal-lib CORPUS_DIR [FILE...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcorp.h"
#include "dkim.h"
#include "dns.h"
#include "keys.h"
#include "rfc5322.h"

#define STEP (128u * 1024)

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

int
main(int argc, char **argv)
{
	struct bcorp c;
	struct bcorp_tally t;
	char err[512], zone[4200];
	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR [FILE...]\n", argv[0]);
		return 2;
	}
	if (bcorp_load(&c, argv[1], argc - 2, argv + 2, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench-wireseal-lib: %s\n", err);
		return 1;
	}
	snprintf(zone, sizeof(zone), "%s/zone.db", argv[1]);
	struct ws_dns_config dcfg = {.zone_file = zone};
	struct ws_dns *dns = ws_dns_new(&dcfg, err, sizeof(err));
	if (!dns) {
		fprintf(stderr, "bench-wireseal-lib: %s: %s\n", zone, err);
		return 1;
	}
	struct keycache *kc = keycache_new(dns);
	struct dkim_verify_config vcfg = {.now = 1800000000};
	struct dkim_verifier *v = dkim_verifier_new(&vcfg);
	struct rfc5322_header h;
	rfc5322_init(&h);
	if (!kc || !v)
		return 1;
	/* warm: fill the key cache and touch every message once */
	for (size_t i = 0; i < c.n; i++)
		verify_one(v, &h, kc, c.msgs[i].data, c.msgs[i].len);
	bcorp_tally_init(&t, "wireseal-lib", &c);
	for (size_t i = 0; i < c.n; i++) {
		double t0 = bcorp_cpu_now();
		enum bcorp_result r = verify_one(v, &h, kc, c.msgs[i].data, c.msgs[i].len);
		bcorp_tally_cpu(&t, c.msgs[i].bucket, bcorp_cpu_now() - t0);
		bcorp_tally_result(&t, &c.msgs[i], r);
	}
	char extra[96];
	snprintf(extra, sizeof(extra), "\"dns_queries\": %lu", keycache_queries(kc));
	bcorp_tally_print(&t, stdout, extra);
	rfc5322_free(&h);
	dkim_verifier_free(v);
	keycache_free(kc);
	ws_dns_free(dns);
	bcorp_free(&c);
	return 0;
}
