/*
 * sink: one JSON line per event, duplicates skipped across a restart, a torn
 * last line ended, reopen after a move, the dedupe window at and past its
 * limit, the line limit. metrics: names checked, label values escaped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"
#include "sink.h"

static char dir[64], path[128];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ws-sink-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/eve.json", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	char p2[160];
	snprintf(p2, sizeof(p2), "%s.1", path);
	unlink(path);
	unlink(p2);
	rmdir(dir);
	return 0;
}

static char *
slurp(const char *p)
{
	FILE *f = fopen(p, "r");
	if (!f)
		return strdup("");
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return strdup(buf);
}

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static struct cpm_message msg;
static struct pol_verdict verdict;

static void
make(uint64_t id)
{
	memset(&msg, 0, sizeof(msg));
	msg.record_id = id;
	msg.flow_id = 42;
	msg.ts_usec = 1764400000000000ull + id;
	msg.client.ip = cpm_s("192.0.2.1");
	msg.client.port = 1234;
	msg.server.ip = cpm_s("192.0.2.2");
	msg.server.port = 25;
	msg.helo = cpm_s("h\"q");
	msg.mail_from = cpm_s("a@example.org");
	msg.nfrom = 1;
	msg.from[0] = cpm_s("a@example.org");
	msg.ndkim = 1;
	msg.dkim[0] = (struct cpm_dkim){cpm_s("example.org"), cpm_s("s"), cpm_s("rsa-sha256"),
					cpm_s("fail"), cpm_s("body hash did not verify")};
	memset(&verdict, 0, sizeof(verdict));
	verdict.spf.result = SPF_RESULT_PASS;
	snprintf(verdict.spf.domain, sizeof(verdict.spf.domain), "example.org");
	verdict.dmarc_evaluated = true;
	verdict.dmarc.result = DMARC_RES_PASS;
	verdict.disposition = "none";
}

static struct sink *
open_sink(unsigned dedupe)
{
	struct sink_config cfg = {.json_file = path, .dedupe_bytes = dedupe, .authserv_id = "mx.test"};
	char why[256] = "";
	struct sink *s = sink_open(&cfg, why, sizeof(why));
	if (!s)
		fail_msg("%s", why);
	return s;
}

static void
test_lines_and_dedupe(void **state)
{
	(void)state;
	struct sink *s = open_sink(1 << 20);
	make(1);
	assert_int_equal(sink_message(s, &msg, &verdict), 0);
	struct cpm_session ss = {.record_id = 2, .flow_id = 42, .ts_usec = 5, .transactions = 1};
	ss.client.ip = cpm_s("192.0.2.1");
	ss.tls.sni = cpm_s("mx.example.org");
	assert_int_equal(sink_session(s, &ss, NULL), 0);
	/* the same record again (a re-send): skipped */
	assert_int_equal(sink_message(s, &msg, &verdict), 1);
	assert_int_equal(sink_sync(s), 0);
	assert_int_equal(sink_stats(s)->written, 2);
	assert_int_equal(sink_stats(s)->duplicates, 1);
	sink_close(s);
	char *t = slurp(path);
	assert_int_equal(count(t, "\n"), 2);
	assert_non_null(strstr(t, "{\"timestamp\":\"2025-11-29T07:06:40.000001+0000\",\"event_type\":\"message\""));
	assert_non_null(strstr(t, "\"helo\":\"h\\\"q\""));
	assert_non_null(strstr(t, "\"authres\":\"mx.test; dkim=fail reason=\\\"body hash did not verify\\\""));
	assert_non_null(strstr(t, "\"event_type\":\"session\""));
	free(t);

	/* a restart: the ids at the end of the file are remembered */
	s = open_sink(1 << 20);
	assert_int_equal(sink_message(s, &msg, &verdict), 1);
	assert_int_equal(sink_session(s, &ss, NULL), 1);
	make(3);
	assert_int_equal(sink_message(s, &msg, &verdict), 0);
	sink_close(s);
	/* with dedupe_bytes 0 nothing is remembered at start */
	s = open_sink(0);
	make(1);
	assert_int_equal(sink_message(s, &msg, &verdict), 0);
	sink_close(s);
	t = slurp(path);
	assert_int_equal(count(t, "\"record_id\":1,"), 2);
	assert_int_equal(count(t, "\"record_id\":3,"), 1);
	free(t);
}

static void
test_torn_line_and_reopen(void **state)
{
	(void)state;
	unlink(path);
	FILE *f = fopen(path, "w");
	fputs("{\"record_id\":7,\"record_ts_usec\":1}\n{\"record_id\":8,\"trunc", f);
	fclose(f);
	struct sink *s = open_sink(1 << 20);
	make(8); /* the torn line's id is not trusted: written again */
	assert_int_equal(sink_message(s, &msg, &verdict), 0);
	struct cpm_session ss = {.record_id = 7, .ts_usec = 1};
	assert_int_equal(sink_session(s, &ss, NULL), 1); /* a complete line's id is */
	char moved[160];
	snprintf(moved, sizeof(moved), "%s.1", path);
	assert_int_equal(rename(path, moved), 0);
	struct sink_config cfg = {.json_file = path, .authserv_id = "mx.test"};
	char why[128];
	assert_int_equal(sink_reopen(s, &cfg, why, sizeof(why)), 0);
	make(9);
	assert_int_equal(sink_message(s, &msg, &verdict), 0);
	sink_close(s);
	char *old = slurp(moved), *cur = slurp(path);
	assert_non_null(strstr(old, "\"trunc\n{\"timestamp\"")); /* torn line ended, new one whole */
	assert_null(strstr(old, "\"record_id\":9,"));
	assert_non_null(strstr(cur, "\"record_id\":9,"));
	assert_int_equal(count(cur, "\n"), 1);
	free(old);
	free(cur);
	/* an unwritable path is an error with the reason */
	cfg.json_file = "/nonexistent/dir/eve.json";
	assert_null(sink_open(&cfg, why, sizeof(why)));
	assert_non_null(strstr(why, "No such file"));
}

static void
test_limits(void **state)
{
	(void)state;
	/* no file: keys are still remembered, two generations of SINK_DEDUPE_KEYS */
	struct sink_config cfg = {.json_file = ""};
	char why[128];
	struct sink *s = sink_open(&cfg, why, sizeof(why));
	assert_non_null(s);
	struct cpm_session ss = {0};
	for (uint64_t i = 1; i <= 2 * SINK_DEDUPE_KEYS; i++) {
		ss.record_id = i;
		assert_int_equal(sink_session(s, &ss, NULL), 0);
	}
	ss.record_id = 1;
	assert_int_equal(sink_session(s, &ss, NULL), 1); /* at the limit: still known */
	ss.record_id = 2 * SINK_DEDUPE_KEYS + 1;
	assert_int_equal(sink_session(s, &ss, NULL), 0); /* one more: the oldest generation goes */
	ss.record_id = 1;
	assert_int_equal(sink_session(s, &ss, NULL), 0);
	sink_close(s);

	/* SINK_LINE_MAX: an event longer than that is refused, not cut */
	s = open_sink(0);
	make(100);
	static char big[CPM_MAX_STR];
	memset(big, 'r', sizeof(big));
	msg.nrcpts = CPM_MAX_RCPTS;
	for (unsigned i = 0; i < CPM_MAX_RCPTS; i++)
		msg.rcpts[i] = (struct cpm_str){big, CPM_MAX_STR};
	assert_true((size_t)CPM_MAX_RCPTS * CPM_MAX_STR > SINK_LINE_MAX);
	assert_int_equal(sink_message(s, &msg, &verdict), -1);
	assert_int_equal(sink_stats(s)->errors, 1);
	/* just under: written */
	msg.nrcpts = SINK_LINE_MAX / CPM_MAX_STR - 2;
	assert_int_equal(sink_message(s, &msg, &verdict), 0);
	sink_close(s);
}

static void
test_metrics_text(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(met_family(f, "ws_x_total", "counter", "a \\ b\nc"), 0);
	const char *l[] = {"name", "a\"b\\c\nd"};
	assert_int_equal(met_sample(f, "ws_x_total", l, 1, 3), 0);
	assert_int_equal(met_sample(f, "ws_y", NULL, 0, 0.25), 0);
	assert_int_equal(met_sample(f, "9bad", NULL, 0, 1), -1);
	assert_int_equal(met_family(f, "bad-name", "gauge", "x"), -1);
	const char *bad[] = {"bad-label", "v"};
	assert_int_equal(met_sample(f, "ws_x_total", bad, 1, 1), -1);
	struct met_counters c = {0};
	c.protocol_errors = 7;
	met_render_counters(f, &c);
	fclose(f);
	assert_non_null(strstr(buf, "# HELP ws_x_total a \\\\ b\\nc\n# TYPE ws_x_total counter\n"));
	assert_non_null(strstr(buf, "ws_x_total{name=\"a\\\"b\\\\c\\nd\"} 3\n"));
	assert_non_null(strstr(buf, "ws_y 0.25\n"));
	assert_null(strstr(buf, "9bad"));
	assert_non_null(strstr(buf, "# TYPE wireseal_cp_protocol_errors_total counter\nwireseal_cp_protocol_errors_total 7\n"));
	free(buf);
	assert_true(met_name_ok("a:b_c9", 6));
	assert_false(met_name_ok("", 0));
	assert_false(met_name_ok("a b", 3));
}

/* A session event: TLS facts, anomalies, and the sts objects. */
static void
test_session_sts(void **state)
{
	(void)state;
	struct sink *s = open_sink(0);
	struct cpm_session ss = {.record_id = 5, .flow_id = 9, .ts_usec = 1764400000000000ull,
				 .starttls_offered = 1, .starttls_used = 1};
	ss.nrcpt_domains = 1;
	ss.rcpt_domains[0] = cpm_s("example.com");
	ss.tls.client_hello = ss.tls.server_hello = 1;
	ss.tls.version = 0x0303;
	ss.tls.version_offered_max = 0x0304;
	ss.tls.sni = cpm_s("mx.example.com");
	ss.tls.cert_seen = 1;
	ss.tls.ncert_names = 1;
	ss.tls.cert_names[0] = cpm_s("other.example.net");
	ss.tls.not_before = 1700000000;
	ss.tls.not_after = 1800000000;
	ss.nanomalies = 1;
	ss.anomalies[0] = (struct cpm_anomaly){cpm_s("starttls-response-injection"), CPM_DIR_S2C, 77};
	static struct cpsts_result res;
	res.n = 2;
	struct cpsts_eval *e = &res.ev[0];
	snprintf(e->domain, sizeof(e->domain), "example.com");
	e->source = CPSTS_SRC_RCPT;
	snprintf(e->mx_host, sizeof(e->mx_host), "mx.example.com");
	e->mx_source = CPSTS_MX_DNS;
	e->res = STS_RES_POLICY;
	e->policy.mode = STS_MODE_ENFORCE;
	e->mx_matched = true;
	e->cert = STS_CERT_HOST_MISMATCH;
	e->v = (struct sts_verdict){STS_FAIL, STS_RT_CERT_HOST_MISMATCH, NULL, true};
	e = &res.ev[1];
	snprintf(e->domain, sizeof(e->domain), "example.net");
	e->source = CPSTS_SRC_RCPT;
	e->res = STS_RES_NONE;
	e->v = (struct sts_verdict){STS_NONE, STS_RT_NONE, NULL, false};
	assert_int_equal(sink_session(s, &ss, &res), 0);
	sink_close(s);
	char *t = slurp(path);
	assert_non_null(strstr(t, "\"tls\":{\"client_hello\":true,\"server_hello\":true,\"version\":\"TLSv1.2\","
				 "\"version_offered_max\":\"TLSv1.3\",\"resumed\":false,\"sni\":\"mx.example.com\","
				 "\"cert_seen\":true,\"cert_names\":[\"other.example.net\"],"
				 "\"not_before\":\"2023-11-14T22:13:20Z\""));
	assert_non_null(strstr(t, "\"anomalies\":[{\"name\":\"starttls-response-injection\",\"dir\":\"s2c\",\"offset\":77}]"));
	assert_non_null(strstr(t, "\"sts\":{\"result\":\"fail\",\"reason\":\"certificate-host-mismatch\","
				 "\"reason_code\":null,\"enforce\":true,\"policy_domain\":\"example.com\","
				 "\"policy_domain_source\":\"rcpt\",\"policy\":\"policy\",\"mode\":\"enforce\""));
	assert_non_null(strstr(t, "\"mx_host\":\"mx.example.com\",\"mx_source\":\"dns\",\"mx_matched\":true,"
				 "\"cert\":\"host-mismatch\",\"anomalies\":[\"starttls-response-injection\"]"));
	assert_non_null(strstr(t, "\"sts_additional\":[{\"result\":\"none\",\"reason\":null"));
	assert_non_null(strstr(t, "\"rcpt_domains\":[\"example.com\"]"));
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_and_dedupe),
		cmocka_unit_test(test_session_sts),
		cmocka_unit_test(test_torn_line_and_reopen),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_metrics_text),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
