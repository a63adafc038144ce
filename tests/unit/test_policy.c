/*
 * cli/policy: option parsing (limits at and past), SPF and DMARC driven over
 * an embedded ws_dns zone with the per-run cache, the ARC override wiring
 * (a struct dmarc_arc_input as policy_arc_input_from_chain gives it
 * after the ARC merge), and the rendering rule that an override is reported
 * beside dmarc=fail, never as a pass.
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

#include "authres.h"
#include "dns.h"
#include "json.h"
#include "arc.h"
#include "policy.h"
#include "rfc5322.h"

static char zone_path[] = "/tmp/ws-test-policy-XXXXXX";

static const char zone_text[] =
	"$TTL 300\n"
	"example.org. IN SOA ns.example.org. h.example.org. 1 3600 600 86400 60\n"
	"example.org. IN NS ns.example.org.\n"
	"example.org. IN TXT \"v=spf1 ip4:192.0.2.1 -all\"\n"
	"mx.example.org. IN TXT \"v=spf1 ip4:192.0.2.1 -all\"\n"
	"_dmarc.example.org. IN TXT \"v=DMARC1; p=reject\"\n";

static struct ws_dns *
embedded(void)
{
	char why[256];
	struct ws_dns_config dc = {.zone_file = zone_path, .timeout_ms = 2000};
	struct ws_dns *d = ws_dns_new(&dc, why, sizeof(why));
	if (!d)
		fail_msg("embedded resolver: %s", why);
	return d;
}

static void
parse_header(struct rfc5322_header *h, const char *text)
{
	rfc5322_init(h);
	size_t used;
	enum rfc5322_status st = rfc5322_push(h, (const uint8_t *)text, strlen(text), &used);
	if (st == RFC5322_NEED_MORE)
		st = rfc5322_finish(h);
	assert_int_equal(st, RFC5322_DONE);
}

static void
test_options(void **state)
{
	(void)state;
	struct policy_cli pc;
	char why[256];
	policy_cli_init(&pc);
	assert_int_equal(pc.dmarc.method, DMARC_ORG_TREEWALK); /* RFC 9989 default */
	assert_int_equal(policy_cli_option(&pc, 0x105, "99", why, sizeof(why)), 0); /* at */
	assert_int_equal(pc.dmarc.random_pct, 99);
	assert_int_equal(policy_cli_option(&pc, 0x105, "100", why, sizeof(why)), -1); /* past */
	assert_int_equal(policy_cli_option(&pc, 0x105, "", why, sizeof(why)), -1);
	assert_int_equal(policy_cli_option(&pc, 0x105, "5x", why, sizeof(why)), -1);
	assert_int_equal(policy_cli_option(&pc, 0x104, "psl", why, sizeof(why)), 0);
	assert_int_equal(pc.dmarc.method, DMARC_ORG_PSL);
	assert_int_equal(policy_cli_option(&pc, 0x104, "PSL2", why, sizeof(why)), -1);
	/* trusted sealers: DMARC_MAX_TRUSTED_SEALERS at and one past */
	char list[DMARC_MAX_TRUSTED_SEALERS * 16 + 32] = "";
	size_t used = 0;
	for (int i = 0; i < DMARC_MAX_TRUSTED_SEALERS; i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%ss%d.example",
					 i ? "," : "", i);
	assert_int_equal(policy_cli_option(&pc, 0x103, list, why, sizeof(why)), 0);
	assert_int_equal(pc.dmarc.ntrusted, DMARC_MAX_TRUSTED_SEALERS);
	assert_string_equal(pc.trusted[1], "s1.example");
	snprintf(list + used, sizeof(list) - used, ",one-more.example");
	assert_int_equal(policy_cli_option(&pc, 0x103, list, why, sizeof(why)), -1);
	/* empty items are skipped */
	assert_int_equal(policy_cli_option(&pc, 0x103, ",a.example,,b.example,", why,
					   sizeof(why)), 0);
	assert_int_equal(pc.dmarc.ntrusted, 2);
	policy_cli_end(&pc);

	/* --helo without --client-ip, and a bad IP, are refused at start */
	struct ws_dns *d = embedded();
	policy_cli_init(&pc);
	assert_int_equal(policy_cli_option(&pc, 0x101, "mx.example.org", why, sizeof(why)), 0);
	assert_int_equal(policy_cli_start(&pc, d, 0, why, sizeof(why)), -1);
	policy_cli_end(&pc);
	policy_cli_init(&pc);
	assert_int_equal(policy_cli_option(&pc, 0x100, "192.0.2.300", why, sizeof(why)), 0);
	assert_int_equal(policy_cli_start(&pc, d, 0, why, sizeof(why)), -1);
	policy_cli_end(&pc);
	ws_dns_free(d);
}

static void
test_spf_dmarc_cached(void **state)
{
	(void)state;
	struct ws_dns *d = embedded();
	struct policy_cli pc;
	char why[256];
	policy_cli_init(&pc);
	assert_int_equal(policy_cli_option(&pc, 0x100, "192.0.2.1", why, sizeof(why)), 0);
	assert_int_equal(policy_cli_option(&pc, 0x101, "mx.example.org", why, sizeof(why)), 0);
	assert_int_equal(policy_cli_option(&pc, 0x102, "bounce@example.org", why, sizeof(why)), 0);
	assert_int_equal(policy_cli_option(&pc, 0x105, "0", why, sizeof(why)), 0);
	assert_int_equal(policy_cli_start(&pc, d, 1000, why, sizeof(why)), 0);
	struct rfc5322_header h;
	parse_header(&h, "From: a@example.org\r\nSubject: x\r\n\r\n");
	assert_int_equal(policy_cli_message(&pc, &h, NULL, NULL, why, sizeof(why)), 0);
	assert_true(pc.spf.ran);
	assert_int_equal(pc.spf.mailfrom.result, SPF_RESULT_PASS);
	assert_string_equal(pc.spf.mailfrom.domain, "example.org");
	assert_true(pc.spf.helo_ran);
	assert_int_equal(pc.spf.helo.result, SPF_RESULT_PASS);
	assert_int_equal(pc.dm.res.result, DMARC_RES_PASS);
	assert_true(pc.dm.res.spf_aligned);
	assert_false(pc.dm.ov.applied);
	unsigned long q1, h1, q2, h2;
	policy_counters(pc.pol, &q1, &h1);
	/* the same message again: every answer comes from the cache, negative
	 * ones included (embedded data gives them WS_DNS_EMBEDDED_NEG_TTL) */
	assert_int_equal(policy_cli_message(&pc, &h, NULL, NULL, why, sizeof(why)), 0);
	policy_counters(pc.pol, &q2, &h2);
	assert_int_equal(q2 - q1, 0);
	assert_true(h2 - h1 >= 3);
	assert_int_equal(pc.dm.res.result, DMARC_RES_PASS);
	rfc5322_free(&h);

	/* From fields: POLICY_MAX_FROM at and past are both several From: permerror */
	for (int n = POLICY_MAX_FROM; n <= POLICY_MAX_FROM + 1; n++) {
		char text[1024] = "";
		size_t used = 0;
		for (int i = 0; i < n; i++)
			used += (size_t)snprintf(text + used, sizeof(text) - used,
						 "From: a%d@example.org\r\n", i);
		snprintf(text + used, sizeof(text) - used, "\r\n");
		parse_header(&h, text);
		assert_int_equal(policy_cli_message(&pc, &h, NULL, NULL, why, sizeof(why)), 0);
		assert_int_equal(pc.dm.res.result, DMARC_RES_PERMERROR);
		rfc5322_free(&h);
	}
	policy_cli_end(&pc);
	ws_dns_free(d);
}

static char *
render(const struct policy_dmarc_out *o, const struct policy_spf_out *spf, char **json_out)
{
	struct authres ar;
	authres_init(&ar, "mx.test");
	policy_spf_authres(&ar, spf);
	policy_dmarc_authres(&ar, o);
	char *s = strdup(authres_value(&ar));
	authres_free(&ar);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct json j;
	json_begin(&j, f);
	policy_spf_json(&j, spf);
	policy_dmarc_json(&j, o);
	json_end(&j);
	fclose(f);
	*json_out = buf;
	return s;
}

static void
test_arc_override(void **state)
{
	(void)state;
	struct ws_dns *d = embedded();
	struct policy *p = policy_new(d);
	assert_non_null(p);
	struct rfc5322_header h;
	parse_header(&h, "From: a@example.org\r\n\r\n");
	const char *trusted[] = {"fwd.example"};
	struct policy_dmarc_cfg cfg = {.method = DMARC_ORG_TREEWALK, .trusted = trusted,
				       .ntrusted = 1, .now = 0};
	struct dmarc_arc_method m[] = {{"dmarc", "pass", "example.org"}};
	struct dmarc_arc_instance inst = {.instance = 1, .sealer = "fwd.example", .results = m,
					  .nresults = 1};
	struct dmarc_arc_input arc = {.chain = DMARC_ARC_PASS, .inst = &inst, .ninst = 1};
	struct policy_dmarc_out o;
	struct policy_spf_out spf = {0};
	char why[256];
	assert_int_equal(policy_dmarc(p, &cfg, &h, NULL, &spf, &arc, &o, why, sizeof(why)), 0);
	assert_int_equal(o.res.result, DMARC_RES_FAIL); /* nothing authenticated */
	assert_true(o.ov.applied);
	assert_string_equal(o.ov.sealer, "fwd.example");
	char *js, *ar = render(&o, &spf, &js);
	assert_non_null(strstr(ar, "dmarc=fail"));
	assert_null(strstr(ar, "dmarc=pass"));
	assert_non_null(strstr(ar, "policy.override=arc"));
	assert_non_null(strstr(ar, "header.from=example.org"));
	assert_null(strstr(ar, "spf=")); /* SPF did not run */
	assert_non_null(strstr(js, "\"override\":{\"by\":\"arc\",\"sealer\":\"fwd.example\""));
	assert_null(strstr(js, "\"spf\":{"));
	free(ar);
	free(js);

	/* an untrusted sealer: no override */
	trusted[0] = "other.example";
	assert_int_equal(policy_dmarc(p, &cfg, &h, NULL, &spf, &arc, &o, why, sizeof(why)), 0);
	assert_int_equal(o.res.result, DMARC_RES_FAIL);
	assert_false(o.ov.applied);
	ar = render(&o, &spf, &js);
	assert_null(strstr(ar, "policy.override"));
	assert_non_null(strstr(js, "\"override\":null"));
	free(ar);
	free(js);

	/* the ARC validator's chain as the override reads it */
	struct arc_set_result sets[2];
	memset(sets, 0, sizeof(sets));
	static const char aar1[] = "fwd.example; dkim=pass header.d=example.org; "
				   "spf=pass smtp.mailfrom=bounce@mail.example.org; arc=none";
	static const char aar2[] = "list.example; dmarc=pass (comment; here) header.from=example.org";
	sets[0].instance = 1;
	snprintf(sets[0].as.d, sizeof(sets[0].as.d), "fwd.example");
	sets[0].aar = aar1;
	sets[0].aar_len = sizeof(aar1) - 1;
	sets[1].instance = 2;
	snprintf(sets[1].as.d, sizeof(sets[1].as.d), "list.example");
	sets[1].aar = aar2;
	sets[1].aar_len = sizeof(aar2) - 1;
	struct arc_chain ch = {.result = ARC_PASS, .nsets = 2, .oldest_pass = 1, .sets = sets};
	struct policy_arc_store *st = policy_arc_store_new();
	policy_arc_input_from_chain(&ch, st, &arc);
	assert_int_equal(arc.chain, DMARC_ARC_PASS);
	assert_int_equal(arc.ninst, 2);
	assert_string_equal(arc.inst[0].sealer, "fwd.example");
	assert_int_equal(arc.inst[0].nresults, 3);
	assert_string_equal(arc.inst[0].results[0].method, "dkim");
	assert_string_equal(arc.inst[0].results[0].domain, "example.org");
	assert_string_equal(arc.inst[0].results[1].method, "spf");
	assert_string_equal(arc.inst[0].results[1].domain, "mail.example.org");
	assert_null(arc.inst[0].results[2].domain); /* arc=none carries no domain */
	assert_int_equal(arc.inst[1].instance, 2);
	assert_string_equal(arc.inst[1].results[0].method, "dmarc");
	assert_string_equal(arc.inst[1].results[0].result, "pass");
	assert_string_equal(arc.inst[1].results[0].domain, "example.org");
	ch.result = ARC_FAIL;
	policy_arc_input_from_chain(&ch, st, &arc);
	assert_int_equal(arc.chain, DMARC_ARC_FAIL);
	policy_arc_store_free(st);
	rfc5322_free(&h);
	policy_free(p);
	ws_dns_free(d);
}

int
main(void)
{
	int fd = mkstemp(zone_path);
	if (fd < 0 || write(fd, zone_text, sizeof(zone_text) - 1) != (ssize_t)sizeof(zone_text) - 1)
		return 1;
	close(fd);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_spf_dmarc_cached),
		cmocka_unit_test(test_arc_override),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(zone_path);
	policy_psl_release();
	return rc;
}
