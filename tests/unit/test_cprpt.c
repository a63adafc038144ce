/* cprpt: TLS-RPT aggregation from session verdicts. Each counting rule of
 * cprpt.h, the day rollover driven by the records' times, late records,
 * the own-address exclusion, file names, and a report that round-trips
 * through tlsrpt_gunzip + tlsrpt_report_parse with no anomaly; the domain
 * limit at and past. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cprpt.h"
#include "testutil.h"
#include "tlsrpt.h"

#define DAY1 1795737600 /* 2026-11-27T00:00:00Z */

static char spool[64];
static char files[16][600];
static int nfiles;

static void
on_file(void *arg, const char *domain, const char *path)
{
	(void)arg;
	(void)domain;
	if (nfiles < 16)
		snprintf(files[nfiles++], sizeof(files[0]), "%s", path);
}

static struct cprpt *
new_rpt(void)
{
	static const char *own[] = {"::ffff:192.0.2.200"};
	struct cprpt_config cfg = {
	        .spool_dir = spool,
	        .organization_name = "wireseal unit",
	        .contact_info = "tlsrpt@w.example",
	        .submitter = "w.example",
	        .own_addresses = own,
	        .nown = 1,
	        .on_file = on_file,
	};
	char why[256];
	struct cprpt *r = cprpt_new(&cfg, why, sizeof(why));
	if (!r)
		fail_msg("cprpt_new: %s", why);
	return r;
}

static struct cpm_session
sess(const char *client, int64_t t, bool offered, bool tls)
{
	struct cpm_session s;
	memset(&s, 0, sizeof(s));
	s.client.ip = cpm_s(client);
	s.server.ip = cpm_s("198.51.100.25");
	s.ts_usec = (uint64_t)t * 1000000;
	s.starttls_offered = offered;
	s.starttls_used = tls;
	s.tls.server_hello = tls;
	return s;
}

static struct cpsts_result *
verdict(const char *domain, enum sts_resolve_status res, enum sts_result result,
        enum sts_result_type why)
{
	static struct cpsts_result r;
	memset(&r, 0, sizeof(r));
	r.n = 1;
	struct cpsts_eval *e = &r.ev[0];
	snprintf(e->domain, sizeof(e->domain), "%s", domain);
	e->source = CPSTS_SRC_RCPT;
	snprintf(e->mx_host, sizeof(e->mx_host), "mx.%s", domain);
	e->res = res;
	if (res == STS_RES_POLICY) {
		e->policy.mode = STS_MODE_ENFORCE;
		e->policy.max_age = 86400;
		e->policy.n_mx = 2;
		snprintf(e->policy.mx[0].name, sizeof(e->policy.mx[0].name), "mx.%s", domain);
		snprintf(e->policy.mx[1].name, sizeof(e->policy.mx[1].name), "%s", domain);
		e->policy.mx[1].wildcard = true;
	}
	if (res == STS_RES_FAILED)
		e->fetch_report = why;
	e->v.result = result;
	e->v.reason = result == STS_FAIL ? why : STS_RT_NONE;
	e->v.reason_code = why == STS_RT_VALIDATION_FAILURE ? "mtasts-policy-mx-mismatch" : NULL;
	return &r;
}

static struct tlsrpt_report *
read_report(const char *path)
{
	size_t len = 0;
	char *gz = tu_read_file(path, &len);
	assert_non_null(gz);
	uint8_t *json = NULL;
	size_t jlen = 0;
	char why[128];
	assert_int_equal(
	        tlsrpt_gunzip(gz, len, TLSRPT_MAX_REPORT_LEN, &json, &jlen, why, sizeof(why)), 0);
	struct tlsrpt_report *r = tlsrpt_report_parse((const char *)json, jlen, why, sizeof(why));
	assert_non_null(r);
	free(gz);
	free(json);
	return r;
}

static const struct tlsrpt_policy *
policy_of(const struct tlsrpt_report *r, enum tlsrpt_policy_type t)
{
	for (size_t i = 0; i < r->n_policies; i++)
		if (r->policies[i].type == t)
			return &r->policies[i];
	return NULL;
}

static void
test_counts_and_roundtrip(void **state)
{
	(void)state;
	nfiles = 0;
	struct cprpt *r = new_rpt();
	int64_t t = DAY1 + 3600;
	struct cpm_session s = sess("192.0.2.10", t, true, true);
	/* sts policy: 2 passes, 2 host mismatches, 1 mx mismatch */
	assert_int_equal(
	        cprpt_add(r, &s, verdict("a.example", STS_RES_POLICY, STS_PASS, STS_RT_NONE)), 0);
	assert_int_equal(
	        cprpt_add(r, &s, verdict("a.example", STS_RES_POLICY, STS_PASS, STS_RT_NONE)), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(cprpt_add(r, &s,
		                           verdict("a.example", STS_RES_POLICY, STS_FAIL,
		                                   STS_RT_CERT_HOST_MISMATCH)),
		                 0);
	assert_int_equal(cprpt_add(r, &s,
	                           verdict("a.example", STS_RES_POLICY, STS_FAIL,
	                                   STS_RT_VALIDATION_FAILURE)),
	                 0);
	/* not counted: not-assessable, the own address (another spelling), unknown domain */
	assert_int_equal(
	        cprpt_add(r, &s,
	                  verdict("a.example", STS_RES_POLICY, STS_NOT_ASSESSABLE, STS_RT_NONE)),
	        0);
	struct cpm_session own = sess("192.0.2.200", t, true, true);
	assert_int_equal(
	        cprpt_add(r, &own, verdict("a.example", STS_RES_POLICY, STS_PASS, STS_RT_NONE)), 0);
	struct cpsts_result *u = verdict("", STS_RES_NONE, STS_NOT_ASSESSABLE, STS_RT_NONE);
	u->ev[0].source = CPSTS_SRC_UNKNOWN;
	assert_int_equal(cprpt_add(r, &s, u), 0);
	/* no policy: TLS = success, no STARTTLS = starttls-not-supported,
	 * offered but not used = validation-failure */
	assert_int_equal(
	        cprpt_add(r, &s, verdict("b.example", STS_RES_NONE, STS_NONE, STS_RT_NONE)), 0);
	struct cpm_session clear = sess("192.0.2.10", t, false, false);
	assert_int_equal(
	        cprpt_add(r, &clear, verdict("b.example", STS_RES_NONE, STS_NONE, STS_RT_NONE)), 0);
	struct cpm_session notls = sess("192.0.2.10", t, true, false);
	assert_int_equal(
	        cprpt_add(r, &notls, verdict("b.example", STS_RES_NONE, STS_NONE, STS_RT_NONE)), 0);
	/* a fetch failure */
	assert_int_equal(
	        cprpt_add(r, &s,
	                  verdict("c.example", STS_RES_FAILED, STS_NONE, STS_RT_WEBPKI_INVALID)),
	        0);
	const struct cprpt_stats *st = cprpt_stats(r);
	assert_int_equal(st->counted, 9);
	assert_int_equal(st->own, 1);
	assert_int_equal(st->not_assessable, 1);
	assert_int_equal(st->unattributed, 1);
	assert_int_equal(cprpt_open_day(r), DAY1);
	assert_int_equal(nfiles, 0);

	/* a record of the next day closes day 1; then a late one is dropped */
	struct cpm_session next = sess("192.0.2.10", DAY1 + 86400 + 5, true, true);
	assert_int_equal(
	        cprpt_add(r, &next, verdict("a.example", STS_RES_POLICY, STS_PASS, STS_RT_NONE)),
	        0);
	assert_int_equal(nfiles, 3);
	assert_int_equal(cprpt_open_day(r), DAY1 + 86400);
	assert_int_equal(
	        cprpt_add(r, &s, verdict("a.example", STS_RES_POLICY, STS_PASS, STS_RT_NONE)), 0);
	assert_int_equal(st->late, 1);

	for (int i = 0; i < nfiles; i++) {
		struct tlsrpt_filename_parts fp;
		const char *base = strrchr(files[i], '/') + 1;
		assert_int_equal(tlsrpt_filename_parse(base, &fp), 0);
		assert_string_equal(fp.submitter, "w.example");
		assert_true(fp.begin == DAY1 && fp.end == DAY1 + 86399 && fp.gzip &&
		            fp.unique_id[0]);
		struct tlsrpt_report *rep = read_report(files[i]);
		assert_int_equal(rep->anomalies, 0);
		assert_int_equal(rep->n_policies, 1);
		assert_true(rep->start == DAY1 && rep->end == DAY1 + 86399);
		assert_string_equal(rep->organization_name, "wireseal unit");
		const struct tlsrpt_policy *p = &rep->policies[0];
		assert_string_equal(p->policy_domain, fp.policy_domain);
		if (strcmp(fp.policy_domain, "a.example") == 0) {
			assert_int_equal(p->type, TLSRPT_PT_STS);
			assert_true(p->total_success == 2 && p->total_failure == 3);
			assert_int_equal(p->n_mx_host, 2);
			assert_string_equal(p->mx_host[1], "*.a.example");
			assert_int_equal(p->n_policy_string, 5);
			assert_string_equal(p->policy_string[1], "mode: enforce");
			assert_int_equal(p->n_failures, 2); /* identical keys merged */
			for (size_t k = 0; k < p->n_failures; k++) {
				const struct tlsrpt_failure *f = &p->failures[k];
				assert_string_equal(f->sending_mta_ip, "192.0.2.10");
				assert_string_equal(f->receiving_mx_hostname, "mx.a.example");
				if (f->type == STS_RT_CERT_HOST_MISMATCH)
					assert_int_equal(f->failed_session_count, 2);
				else
					assert_string_equal(f->failure_reason_code,
					                    "mtasts-policy-mx-mismatch");
			}
		} else if (strcmp(fp.policy_domain, "b.example") == 0) {
			assert_non_null(policy_of(rep, TLSRPT_PT_NO_POLICY));
			assert_true(p->total_success == 1 && p->total_failure == 2);
		} else {
			assert_string_equal(fp.policy_domain, "c.example");
			assert_int_equal(p->type, TLSRPT_PT_STS);
			assert_int_equal(p->n_policy_string, 0);
			assert_int_equal(p->failures[0].type, STS_RT_WEBPKI_INVALID);
		}
		tlsrpt_report_free(rep);
		unlink(files[i]);
	}
	/* flush writes the open day at once; an empty day writes nothing */
	nfiles = 0;
	assert_int_equal(cprpt_flush(r), 1);
	assert_int_equal(cprpt_open_day(r), 0);
	assert_int_equal(cprpt_flush(r), 0);
	unlink(files[0]);
	cprpt_free(r);
}

static void
test_limits_and_config(void **state)
{
	(void)state;
	struct cprpt *r = new_rpt();
	struct cpm_session s = sess("192.0.2.10", DAY1, true, true);
	char d[64];
	for (int i = 0; i < CPRPT_MAX_DOMAINS; i++) {
		snprintf(d, sizeof(d), "d%d.example", i);
		assert_int_equal(cprpt_add(r, &s, verdict(d, STS_RES_NONE, STS_NONE, STS_RT_NONE)),
		                 0);
	}
	assert_int_equal(cprpt_stats(r)->dropped_domains, 0);
	assert_int_equal(
	        cprpt_add(r, &s, verdict("d0.example", STS_RES_NONE, STS_NONE, STS_RT_NONE)), 0);
	assert_int_equal(cprpt_stats(r)->dropped_domains, 0); /* a known domain still counts */
	assert_int_equal(
	        cprpt_add(r, &s, verdict("one-more.example", STS_RES_NONE, STS_NONE, STS_RT_NONE)),
	        0);
	assert_int_equal(cprpt_stats(r)->dropped_domains, 1);
	cprpt_free(r); /* the open day is not written */

	char why[256];
	struct cprpt_config cfg = {.spool_dir = "/nonexistent/ws", .submitter = "w.example"};
	assert_null(cprpt_new(&cfg, why, sizeof(why)));
	assert_non_null(strstr(why, "spool_dir"));
	cfg.spool_dir = spool;
	cfg.submitter = "w!x";
	assert_null(cprpt_new(&cfg, why, sizeof(why)));
	const char *own[] = {"not-an-ip"};
	cfg.submitter = "w.example";
	cfg.own_addresses = own;
	cfg.nown = 1;
	assert_null(cprpt_new(&cfg, why, sizeof(why)));
	assert_non_null(strstr(why, "own_addresses"));
	assert_string_equal(cprpt_delivery_name(CPRPT_NO_ENDPOINT), "no-endpoint");
}

static int
setup(void **state)
{
	(void)state;
	snprintf(spool, sizeof(spool), "/tmp/ws-cprpt-XXXXXX");
	return mkdtemp(spool) ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	DIR *dir = opendir(spool);
	struct dirent *de;
	while (dir && (de = readdir(dir))) {
		char p[400];
		snprintf(p, sizeof(p), "%s/%s", spool, de->d_name);
		if (de->d_name[0] != '.')
			unlink(p);
	}
	if (dir)
		closedir(dir);
	return rmdir(spool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_counts_and_roundtrip),
	        cmocka_unit_test(test_limits_and_config),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
