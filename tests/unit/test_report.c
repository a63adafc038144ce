/*
 * cli/report: one message's results rendered from several threads at once,
 * each into its own stream, as replay's workers do while their lines wait
 * for the control plane's verdicts. Each thread's AAR has its own
 * authserv-id; every line must show its own thread's parse, never another
 * thread's (the parse scratch is per thread).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arc.h"
#include "dkim.h"
#include "report.h"

#define THREADS 4
#define ROUNDS 400

struct renderer {
	unsigned id;
	char aar[128];
	char want[64];
	unsigned wrong; /* lines that showed another thread's parse */
	unsigned bad;   /* lines that could not be made */
};

static void *
render(void *arg)
{
	struct renderer *r = arg;
	struct dkim_verify_config vc = {.now = 1800000000};
	struct dkim_verifier *v = dkim_verifier_new(&vc);
	struct arc_set_result set = {
	        .instance = 1,
	        .aar = r->aar,
	        .aar_len = strlen(r->aar),
	        .ams_reason = "",
	        .as_reason = "",
	};
	struct arc_chain ch = {.result = ARC_NONE, .reason = "test", .nsets = 1, .sets = &set};
	struct report_parts p = {.authserv_id = "test.mx", .json = true, .dkim = v, .arc = &ch};
	for (unsigned i = 0; v && i < ROUNDS; i++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		if (!f) {
			r->bad++;
			continue;
		}
		report_message(f, &p);
		if (fclose(f) != 0 || !buf) {
			r->bad++;
			free(buf);
			continue;
		}
		if (!strstr(buf, r->want))
			r->wrong++;
		free(buf);
	}
	if (!v)
		r->bad = ROUNDS;
	dkim_verifier_free(v);
	return NULL;
}

static void
test_threads_own_parse(void **state)
{
	(void)state;
	struct renderer r[THREADS];
	pthread_t tid[THREADS];
	for (unsigned i = 0; i < THREADS; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].id = i;
		/* several methods and props: the parse takes a while, so a shared
		 * scratch would be overwritten mid-line */
		snprintf(r[i].aar, sizeof(r[i].aar),
		         "host%u.example; arc=none; dkim=pass header.d=d%u.example header.s=s%u; "
		         "spf=pass smtp.mailfrom=m%u.example",
		         i, i, i, i);
		snprintf(r[i].want, sizeof(r[i].want), "\"authserv_id\":\"host%u.example\"", i);
		assert_int_equal(pthread_create(&tid[i], NULL, render, &r[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(tid[i], NULL), 0);
	for (unsigned i = 0; i < THREADS; i++) {
		assert_int_equal(r[i].bad, 0);
		assert_int_equal(r[i].wrong, 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_threads_own_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
