/*
 * tlsrpt: the _smtp._tls record vectors of conformance/tls-rpt, every
 * fixture report (JSON and the report e-mails' attachments) parsed with its
 * anomalies named, round trips through our emitter, the aggregator (merge,
 * totals, arrays, the UTC day), file names, gzip, and the limits at and past.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "b64.h"
#include "jsonr.h"
#include "tlsrpt.h"
#include "testutil.h"

static char *
read_shared(const char *rel, size_t *len)
{
	char path[4096];
	tu_shared(rel, path, sizeof(path));
	char *t = tu_read_file(path, len);
	if (!t)
		fail_msg("cannot read %s (WS_SHARED_DIR)", path);
	return t;
}

static struct jsonr_val *
load(const char *rel)
{
	size_t len;
	char why[128];
	char *t = read_shared(rel, &len);
	struct jsonr_val *v = jsonr_parse(t, len, why, sizeof(why));
	if (!v)
		fail_msg("%s: %s", rel, why);
	free(t);
	return v;
}

static bool
str_is(const struct jsonr_val *v, const char *s)
{
	return v && v->type == JSONR_STR && strcmp(v->str, s) == 0;
}

/* ------------------------------------------------------------ TXT record */

static void
uri_eq(const struct tlsrpt_record *r, unsigned i, const char *want)
{
	assert_true(i < r->n_rua);
	if (strlen(want) != r->rua[i].len || memcmp(r->text + r->rua[i].off, want, r->rua[i].len))
		fail_msg("rua %u: '%.*s' want '%s'", i, r->rua[i].len, r->text + r->rua[i].off, want);
}

static void
test_txt_mox(void **state)
{
	(void)state;
	struct jsonr_val *doc = load("conformance/tls-rpt/mox/txt-record-parse-vectors.json");
	unsigned n = 0;
	for (const struct jsonr_val *v = jsonr_get(doc, "vectors")->child; v; v = v->next, n++) {
		const char *in = jsonr_get_str(v, "input");
		struct tlsrpt_record rec;
		char why[128];
		enum tlsrpt_txt_status st = tlsrpt_txt_parse(in, strlen(in), &rec, why, sizeof(why));
		if (!str_is(jsonr_get(v, "expect"), "valid")) {
			if (st == TLSRPT_TXT_OK)
				fail_msg("'%s' should be invalid (%s)", in, jsonr_get_str(v, "note"));
			continue;
		}
		if (st != TLSRPT_TXT_OK)
			fail_msg("'%s': %s", in, why);
		/* rua_fields: one list per rua= field; we keep them in one list */
		unsigned k = 0;
		for (const struct jsonr_val *f = jsonr_get(v, "rua_fields")->child; f; f = f->next)
			for (const struct jsonr_val *u = f->child; u; u = u->next)
				uri_eq(&rec, k++, u->str);
		assert_int_equal(rec.n_rua, k);
	}
	assert_int_equal(n, 20);
	jsonr_free(doc);
}

static void
test_txt_stalwart(void **state)
{
	(void)state;
	struct jsonr_val *doc =
		load("conformance/tls-rpt/stalwart-mail-auth/txt-record-parse-vectors.json");
	unsigned n = 0;
	for (const struct jsonr_val *v = jsonr_get(doc, "vectors")->child; v; v = v->next, n++) {
		const char *in = jsonr_get_str(v, "input");
		struct tlsrpt_record rec;
		assert_int_equal(tlsrpt_txt_parse(in, strlen(in), &rec, NULL, 0), TLSRPT_TXT_OK);
		unsigned k = 0;
		for (const struct jsonr_val *u = jsonr_get(v, "rua")->child; u; u = u->next, k++) {
			const char *scheme = u->child->str, *rest = u->child->next->str;
			char want[512];
			/* mail-auth keeps the mailto address without its scheme */
			if (strcmp(scheme, "mailto") == 0)
				snprintf(want, sizeof(want), "mailto:%s", rest);
			else
				snprintf(want, sizeof(want), "%s", rest);
			uri_eq(&rec, k, want);
			assert_int_equal(rec.rua[k].scheme,
					 strcmp(scheme, "mailto") == 0 ? TLSRPT_MAILTO : TLSRPT_HTTPS);
		}
		assert_int_equal(rec.n_rua, k);
		assert_int_equal(rec.n_usable, k);
	}
	assert_int_equal(n, 3);
	jsonr_free(doc);
}

struct fake_answer {
	struct ws_dns_answer a;
	struct ws_dns_rr rr[8];
};

static void
test_txt_lookup_mox(void **state)
{
	(void)state;
	struct jsonr_val *doc = load("conformance/tls-rpt/mox/txt-lookup-vectors.json");
	const struct jsonr_val *zone = jsonr_get(doc, "zone");
	unsigned n = 0;
	for (const struct jsonr_val *v = jsonr_get(doc, "vectors")->child; v; v = v->next, n++) {
		char name[300], sf[320];
		snprintf(name, sizeof(name), "_smtp._tls.%s.", jsonr_get_str(v, "domain"));
		snprintf(sf, sizeof(sf), "TXT %s", name);
		struct fake_answer fa;
		memset(&fa, 0, sizeof(fa));
		fa.a.rrs = fa.rr;
		const struct jsonr_val *rrs = jsonr_get(jsonr_get(zone, "txt"), name);
		fa.a.status = rrs ? WS_DNS_OK : WS_DNS_NXDOMAIN;
		for (const struct jsonr_val *s = jsonr_get(zone, "servfail")->child; s; s = s->next)
			if (strcmp(s->str, sf) == 0)
				fa.a.status = WS_DNS_TEMPFAIL;
		for (const struct jsonr_val *r = rrs ? rrs->child : NULL; r; r = r->next) {
			struct ws_dns_rr *rr = &fa.rr[fa.a.count++];
			rr->type = WS_DNS_TXT;
			rr->u.txt.data = (uint8_t *)r->str;
			rr->u.txt.len = r->len;
		}
		struct tlsrpt_record rec;
		enum sts_lookup l = tlsrpt_txt_select(&fa.a, &rec, NULL, 0);
		const struct jsonr_val *e = jsonr_get(v, "expect");
		enum sts_lookup want = str_is(e, "record")         ? STS_LOOKUP_RECORD
				       : str_is(e, "no-record")    ? STS_LOOKUP_NONE
				       : str_is(e, "multiple")     ? STS_LOOKUP_MULTIPLE
				       : str_is(e, "syntax-error") ? STS_LOOKUP_SYNTAX
								   : STS_LOOKUP_TEMPFAIL;
		if (l != want)
			fail_msg("%s: %s want %s", name, sts_lookup_name(l), sts_lookup_name(want));
		if (want == STS_LOOKUP_RECORD)
			uri_eq(&rec, 0, jsonr_get(v, "rua")->child->str);
	}
	assert_int_equal(n, 7);
	jsonr_free(doc);
}

static void
test_txt_rules_and_limits(void **state)
{
	(void)state;
	struct tlsrpt_record rec;
	/* an http: rua parses but is not usable for sending (RFC 8460 3:
	 * mailto and https only) - our choice: keep it, never send to it */
	const char http[] = "v=TLSRPTv1; rua=http://r.example/x,mailto:a@b.example";
	assert_int_equal(tlsrpt_txt_parse(http, sizeof(http) - 1, &rec, NULL, 0), TLSRPT_TXT_OK);
	assert_int_equal(rec.n_rua, 2);
	assert_int_equal(rec.n_usable, 1);
	assert_int_equal(rec.rua[0].scheme, TLSRPT_OTHER_SCHEME);
	/* the draft's "v=TLSRPTv1" is case-sensitive; a record at the draft
	 * name _smtp-tlsrpt is never looked up (nothing here builds it) */
	assert_false(tlsrpt_txt_is_tlsrpt("V=TLSRPTv1; rua=mailto:a@b", 26));
	assert_false(tlsrpt_txt_is_tlsrpt("v=TLSRPTv10", 11));
	assert_true(tlsrpt_txt_is_tlsrpt("v=TLSRPTv1", 10));
	/* percent-encoded ',' inside a URI */
	const char pct[] = "v=TLSRPTv1; rua=mailto:a%2Cb@example.org";
	assert_int_equal(tlsrpt_txt_parse(pct, sizeof(pct) - 1, &rec, NULL, 0), TLSRPT_TXT_OK);
	uri_eq(&rec, 0, "mailto:a%2Cb@example.org");
	/* TLSRPT_MAX_RUA URIs, and one more */
	char many[512];
	size_t len = (size_t)snprintf(many, sizeof(many), "v=TLSRPTv1; rua=mailto:r0@x.example");
	for (unsigned i = 1; i < TLSRPT_MAX_RUA; i++)
		len += (size_t)snprintf(many + len, sizeof(many) - len, ",mailto:r%u@x.example", i);
	assert_int_equal(tlsrpt_txt_parse(many, len, &rec, NULL, 0), TLSRPT_TXT_OK);
	assert_int_equal(rec.n_rua, TLSRPT_MAX_RUA);
	len += (size_t)snprintf(many + len, sizeof(many) - len, "; rua=https://x.example/");
	assert_int_equal(tlsrpt_txt_parse(many, len, &rec, NULL, 0), TLSRPT_TXT_SYNTAX);
	/* a record of TLSRPT_TXT_MAX_LEN bytes and one past */
	static char big[TLSRPT_TXT_MAX_LEN + 2];
	len = (size_t)snprintf(big, sizeof(big), "v=TLSRPTv1; rua=https://x.example/");
	memset(big + len, 'a', sizeof(big) - len);
	assert_int_equal(tlsrpt_txt_parse(big, TLSRPT_TXT_MAX_LEN, &rec, NULL, 0), TLSRPT_TXT_OK);
	assert_int_equal(tlsrpt_txt_parse(big, TLSRPT_TXT_MAX_LEN + 1, &rec, NULL, 0),
			 TLSRPT_TXT_TOO_LONG);
}

/* ------------------------------------------------------------ reports */

static void
policy_eq(const struct tlsrpt_policy *a, const struct tlsrpt_policy *b)
{
	assert_int_equal(a->type, b->type);
	assert_string_equal(a->policy_type, b->policy_type);
	if (a->policy_domain || b->policy_domain)
		assert_string_equal(a->policy_domain, b->policy_domain);
	assert_int_equal(a->n_policy_string, b->n_policy_string);
	for (size_t i = 0; i < a->n_policy_string; i++)
		assert_string_equal(a->policy_string[i], b->policy_string[i]);
	assert_int_equal(a->n_mx_host, b->n_mx_host);
	for (size_t i = 0; i < a->n_mx_host; i++)
		assert_string_equal(a->mx_host[i], b->mx_host[i]);
	assert_int_equal(a->total_success, b->total_success);
	assert_int_equal(a->total_failure, b->total_failure);
	assert_int_equal(a->n_failures, b->n_failures);
	for (size_t k = 0; k < a->n_failures; k++) {
		const struct tlsrpt_failure *x = &a->failures[k], *y = &b->failures[k];
		assert_int_equal(x->type, y->type);
		assert_int_equal(x->failed_session_count, y->failed_session_count);
#define OPT_EQ(f)                                            \
	do {                                                 \
		if (x->f || y->f)                            \
			assert_string_equal(x->f, y->f);     \
	} while (0)
		OPT_EQ(result_type);
		OPT_EQ(sending_mta_ip);
		OPT_EQ(receiving_mx_hostname);
		OPT_EQ(receiving_mx_helo);
		OPT_EQ(receiving_ip);
		OPT_EQ(additional_information);
		OPT_EQ(failure_reason_code);
#undef OPT_EQ
	}
}

static void
report_eq(const struct tlsrpt_report *a, const struct tlsrpt_report *b)
{
	assert_string_equal(a->organization_name, b->organization_name);
	assert_string_equal(a->contact_info, b->contact_info);
	assert_string_equal(a->report_id, b->report_id);
	assert_int_equal(a->start, b->start);
	assert_int_equal(a->end, b->end);
	assert_int_equal(a->n_policies, b->n_policies);
	for (size_t i = 0; i < a->n_policies; i++)
		policy_eq(&a->policies[i], &b->policies[i]);
}

/* Emit, re-read, compare; emitting the re-read tree gives the same bytes. */
static void
round_trip(const struct tlsrpt_report *r)
{
	char *j1, *j2, why[128];
	size_t l1, l2;
	assert_int_equal(tlsrpt_report_json(r, &j1, &l1), 0);
	struct tlsrpt_report *back = tlsrpt_report_parse(j1, l1, why, sizeof(why));
	if (!back)
		fail_msg("own output does not parse: %s\n%s", why, j1);
	report_eq(r, back);
	/* what we write has none of the oddities we tolerate when reading,
	 * except those carried over from the input (unknown policy type,
	 * missing fields, totals, range) */
	assert_false(back->anomalies & (TLSRPT_ANOM_MX_HOST_STRING | TLSRPT_ANOM_EMPTY_FIELD |
					TLSRPT_ANOM_DATETIME | TLSRPT_ANOM_TYPE));
	assert_int_equal(tlsrpt_report_json(back, &j2, &l2), 0);
	assert_int_equal(l1, l2);
	assert_memory_equal(j1, j2, l1);
	tlsrpt_report_free(back);
	free(j1);
	free(j2);
}

static struct tlsrpt_report *
parse_fixture(const char *rel)
{
	size_t len;
	char why[128];
	char *t = read_shared(rel, &len);
	struct tlsrpt_report *r = tlsrpt_report_parse(t, len, why, sizeof(why));
	if (!r)
		fail_msg("%s: %s", rel, why);
	free(t);
	return r;
}

static void
test_report_fixtures(void **state)
{
	(void)state;
	struct {
		const char *file;
		unsigned anomalies; /* exactly these bits */
		size_t policies;
		uint64_t success0, failure0;
		size_t failures0;
	} rows[] = {
		/* mx-host is a string in the RFC's own example (erratum 6241) */
		{"parsedmarc/rfc8460.json", TLSRPT_ANOM_MX_HOST_STRING, 1, 5326, 303, 3},
		{"stalwart-mail-auth/rpt01.json", 0, 1, 5326, 303, 3},
		/* Google: a 7-day range */
		{"stalwart-mail-auth/rpt02.json", TLSRPT_ANOM_RANGE, 1, 23, 1, 1},
		/* no policy-domain, no failure count, an unknown policy-type */
		{"stalwart-mail-auth/rpt03.json", TLSRPT_ANOM_MISSING | TLSRPT_ANOM_UNKNOWN_POLICY, 2, 1, 0, 0},
		{"parsedmarc/smtp_tls.json", 0, 1, 0, 3, 2},
		/* total-failure-session-count 1 < 1 + 1 */
		{"parsedmarc/mail.ru.json", TLSRPT_ANOM_TOTALS, 1, 0, 1, 2},
		/* "" address fields (mox) are absent */
		{"parsedmarc/empty_failure_detail_fields.json", TLSRPT_ANOM_EMPTY_FIELD, 1, 0, 1, 1},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char rel[256];
		snprintf(rel, sizeof(rel), "conformance/tls-rpt/%s", rows[i].file);
		struct tlsrpt_report *r = parse_fixture(rel);
		if (r->anomalies != rows[i].anomalies)
			fail_msg("%s: anomalies %#x want %#x", rows[i].file, r->anomalies,
				 rows[i].anomalies);
		assert_int_equal(r->n_policies, rows[i].policies);
		assert_int_equal(r->policies[0].total_success, rows[i].success0);
		assert_int_equal(r->policies[0].total_failure, rows[i].failure0);
		assert_int_equal(r->policies[0].n_failures, rows[i].failures0);
		round_trip(r);
		tlsrpt_report_free(r);
	}
	/* the RFC example in detail */
	struct tlsrpt_report *r = parse_fixture("conformance/tls-rpt/parsedmarc/rfc8460.json");
	assert_string_equal(r->organization_name, "Company-X");
	assert_int_equal(r->start, 1459468800);
	assert_int_equal(r->end, 1459468800 + 86399);
	const struct tlsrpt_policy *p = &r->policies[0];
	assert_int_equal(p->type, TLSRPT_PT_STS);
	assert_int_equal(p->n_policy_string, 4);
	assert_int_equal(p->n_mx_host, 1);
	assert_string_equal(p->mx_host[0], "*.mail.company-y.example");
	assert_int_equal(p->failures[0].type, STS_RT_CERT_EXPIRED);
	assert_null(p->failures[0].receiving_ip);
	assert_int_equal(p->failures[1].type, STS_RT_STARTTLS_NOT_SUPPORTED);
	assert_non_null(p->failures[1].additional_information);
	assert_int_equal(p->failures[2].type, STS_RT_VALIDATION_FAILURE);
	assert_string_equal(p->failures[2].failure_reason_code, "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED");
	/* re-emitted, mx-host is an array */
	char *j;
	size_t jl;
	assert_int_equal(tlsrpt_report_json(r, &j, &jl), 0);
	assert_non_null(strstr(j, "\"mx-host\":[\"*.mail.company-y.example\"]"));
	assert_non_null(strstr(j, "\"end-datetime\":\"2016-04-01T23:59:59Z\""));
	free(j);
	tlsrpt_report_free(r);
	/* rpt03's unknown type is kept as written and counted as "other" */
	r = parse_fixture("conformance/tls-rpt/stalwart-mail-auth/rpt03.json");
	assert_int_equal(r->policies[1].type, TLSRPT_PT_OTHER);
	assert_string_equal(r->policies[1].policy_type, "invalid-policy-type");
	assert_null(r->policies[0].policy_domain);
	tlsrpt_report_free(r);
}

/* The attachment of a report e-mail: its file name and decoded bytes. */
static uint8_t *
attachment(const char *eml, char *filename, size_t fcap, size_t *len, bool *gz, bool *registered)
{
	const char *ct = strstr(eml, "Content-Type: application/tlsrpt");
	assert_non_null(ct);
	*gz = strncmp(ct + 32, "+gzip", 5) == 0;
	*registered = *gz || strncmp(ct + 32, "+json", 5) == 0;
	const char *fn = strstr(ct, "filename=\"");
	assert_non_null(fn);
	fn += 10;
	size_t fl = (size_t)(strchr(fn, '"') - fn);
	assert_true(fl < fcap);
	memcpy(filename, fn, fl);
	filename[fl] = '\0';
	const char *body = strstr(ct, "\n\n");
	const char *crlf = strstr(ct, "\r\n\r\n");
	if (!body || (crlf && crlf < body))
		body = crlf + 4;
	else
		body += 2;
	const char *end = strstr(body, "\n--");
	assert_non_null(end);
	bool b64 = false;
	const char *cte = strstr(ct, "Content-Transfer-Encoding: base64");
	if (cte && cte < body)
		b64 = true;
	size_t n = (size_t)(end - body);
	uint8_t *out = malloc(n + 1);
	assert_non_null(out);
	if (b64) {
		long d = b64_decode(body, n, out, n);
		assert_true(d > 0);
		*len = (size_t)d;
	} else {
		memcpy(out, body, n);
		*len = n;
	}
	return out;
}

static void
test_report_emails(void **state)
{
	(void)state;
	struct {
		const char *eml, *twin;
		bool gz, registered;
		const char *submitter, *domain, *unique;
	} rows[] = {
		/* TLS-Report-Domain says example.net; the file name and JSON say
		 * example.com: the report file is authoritative (RFC 8460 5.6) */
		{"stalwart-mail-auth/rpt01.eml", "stalwart-mail-auth/rpt01.json", true, true,
		 "mail.sender.example", "example.com", ""},
		/* the unregistered media type application/tlsrpt: accepted, noted */
		{"stalwart-mail-auth/rpt02.eml", "stalwart-mail-auth/rpt02.json", false, false,
		 "mail.sender.example", "example.com", ""},
		{"parsedmarc/google.com_smtp_tls_report.eml", NULL, true, true, "google.com",
		 "cardinalhealth.ca", "001"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char rel[256], fname[TLSRPT_FILENAME_MAX];
		snprintf(rel, sizeof(rel), "conformance/tls-rpt/%s", rows[i].eml);
		size_t elen, alen, jlen;
		char *eml = read_shared(rel, &elen);
		bool gz, reg;
		uint8_t *att = attachment(eml, fname, sizeof(fname), &alen, &gz, &reg);
		assert_int_equal(gz, rows[i].gz);
		assert_int_equal(reg, rows[i].registered);
		struct tlsrpt_filename_parts parts;
		assert_int_equal(tlsrpt_filename_parse(fname, &parts), 0);
		assert_string_equal(parts.submitter, rows[i].submitter);
		assert_string_equal(parts.policy_domain, rows[i].domain);
		assert_string_equal(parts.unique_id, rows[i].unique);
		assert_int_equal(parts.gzip, gz);
		uint8_t *json = att;
		jlen = alen;
		char why[128];
		if (gz) {
			assert_int_equal(tlsrpt_gunzip(att, alen, TLSRPT_MAX_REPORT_LEN, &json, &jlen, why,
						       sizeof(why)),
					 0);
			free(att);
		}
		if (rows[i].twin) {
			snprintf(rel, sizeof(rel), "conformance/tls-rpt/%s", rows[i].twin);
			size_t tl;
			char *twin = read_shared(rel, &tl);
			/* the attachment is the twin, byte for byte (up to the
			 * line end the e-mail adds after a plain part) */
			while (jlen > tl && (json[jlen - 1] == '\n' || json[jlen - 1] == '\r'))
				jlen--;
			assert_int_equal(jlen, tl);
			assert_memory_equal(json, twin, tl);
			free(twin);
		}
		struct tlsrpt_report *r = tlsrpt_report_parse((const char *)json, jlen, why, sizeof(why));
		if (!r)
			fail_msg("%s: %s", rows[i].eml, why);
		if (i == 2) {
			assert_string_equal(r->policies[0].policy_domain, rows[i].domain);
			assert_int_equal(r->n_policies, 1);
			assert_int_equal(r->policies[0].type, TLSRPT_PT_NO_POLICY);
			assert_int_equal(r->policies[0].total_success, 48);
			/* the file name's range is the JSON's */
			assert_int_equal(parts.begin, r->start);
			assert_int_equal(parts.end, r->end);
		}
		round_trip(r);
		tlsrpt_report_free(r);
		free(json);
		free(eml);
	}
}

static void
test_report_lenient_and_fatal(void **state)
{
	(void)state;
	char why[128];
	/* not JSON, or not an object: the only refusals */
	assert_null(tlsrpt_report_parse("nope", 4, why, sizeof(why)));
	assert_null(tlsrpt_report_parse("[1]", 3, why, sizeof(why)));
	/* an empty object is a report with everything missing */
	struct tlsrpt_report *r = tlsrpt_report_parse("{}", 2, why, sizeof(why));
	assert_non_null(r);
	assert_true(r->anomalies & TLSRPT_ANOM_MISSING);
	tlsrpt_report_free(r);
	/* wrong types are ignored and named; a Microsoft date without zone */
	const char odd[] = "{\"organization-name\":1,\"date-range\":{\"start-datetime\":"
			   "\"2024-01-01T00:00:00\",\"end-datetime\":\"2024-01-01T23:59:59\"},"
			   "\"policies\":[{\"policy\":{\"policy-type\":\"tlsa\",\"policy-domain\":"
			   "\"x\"},\"summary\":{\"total-successful-session-count\":-1,"
			   "\"total-failure-session-count\":2},\"failure-details\":[{\"result-type\":"
			   "\"made-up\",\"failed-session-count\":2}]}]}";
	r = tlsrpt_report_parse(odd, sizeof(odd) - 1, why, sizeof(why));
	assert_non_null(r);
	assert_true(r->anomalies & TLSRPT_ANOM_TYPE);
	assert_true(r->anomalies & TLSRPT_ANOM_DATETIME);
	assert_true(r->anomalies & TLSRPT_ANOM_UNKNOWN_RESULT);
	assert_false(r->anomalies & (TLSRPT_ANOM_RANGE | TLSRPT_ANOM_TOTALS));
	assert_int_equal(r->policies[0].type, TLSRPT_PT_TLSA);
	assert_int_equal(r->start, 1704067200);
	tlsrpt_report_free(r);
	/* a policies element that is not an object is kept as "other" */
	r = tlsrpt_report_parse("{\"policies\":[7]}", 16, why, sizeof(why));
	assert_non_null(r);
	assert_int_equal(r->n_policies, 1);
	assert_int_equal(r->policies[0].type, TLSRPT_PT_OTHER);
	assert_true(r->anomalies & TLSRPT_ANOM_TYPE);
	tlsrpt_report_free(r);
}

static void
test_datetime(void **state)
{
	(void)state;
	int64_t t;
	bool no_tz;
	char out[21];
	assert_int_equal(tlsrpt_datetime_parse("2016-04-01T00:00:00Z", &t, &no_tz), 0);
	assert_int_equal(t, 1459468800);
	assert_false(no_tz);
	assert_int_equal(tlsrpt_datetime_parse("2016-04-01T02:00:00.123+02:00", &t, &no_tz), 0);
	assert_int_equal(t, 1459468800);
	assert_int_equal(tlsrpt_datetime_parse("2016-04-01T00:00:00-00:30", &t, &no_tz), 0);
	assert_int_equal(t, 1459468800 + 1800);
	assert_int_equal(tlsrpt_datetime_parse("2016-04-01", &t, &no_tz), -1);
	assert_int_equal(tlsrpt_datetime_parse("2016-13-01T00:00:00Z", &t, &no_tz), -1);
	assert_int_equal(tlsrpt_datetime_parse("2016-04-01T00:00:00Zx", &t, &no_tz), -1);
	tlsrpt_datetime_format(1459468800 + 86399, out);
	assert_string_equal(out, "2016-04-01T23:59:59Z");
	tlsrpt_datetime_format(951782400, out); /* a leap day */
	assert_string_equal(out, "2000-02-29T00:00:00Z");
	/* every day of 1970..2100 both ways */
	for (int64_t d = 0; d < 47847; d += 7) {
		tlsrpt_datetime_format(d * 86400 + 3723, out);
		assert_int_equal(tlsrpt_datetime_parse(out, &t, &no_tz), 0);
		assert_int_equal(t, d * 86400 + 3723);
	}
}

/* ------------------------------------------------------------ aggregation */

static void
test_aggregate(void **state)
{
	(void)state;
	const int64_t day = 1704067200; /* 2024-01-01 */
	struct tlsrpt_agg *a = tlsrpt_agg_new("wireseal.example", "tlsrpt@wireseal.example",
					      "2024-01-01T00:00:00Z_example.com", day);
	assert_non_null(a);
	const char *ps[] = {"version: STSv1", "mode: enforce", "mx: *.mx.example.com", "max_age: 86400"};
	const char *mx[] = {"*.mx.example.com"};
	int sts = tlsrpt_agg_policy(a, TLSRPT_PT_STS, "example.com", ps, 4, mx, 1);
	assert_int_equal(sts, 0);
	assert_int_equal(tlsrpt_agg_policy(a, TLSRPT_PT_STS, "example.com", NULL, 0, NULL, 0), 0);
	int none = tlsrpt_agg_policy(a, TLSRPT_PT_NO_POLICY, "other.example", NULL, 0, NULL, 0);
	assert_int_equal(none, 1);
	assert_int_equal(tlsrpt_agg_add(a, sts, NULL, 10), 0);
	assert_int_equal(tlsrpt_agg_add(a, sts, NULL, 5), 0);
	char ip1[] = "192.0.2.1", ip2[] = "192.0.2.2", mxa[] = "a.mx.example.com",
	     rip[] = "198.51.100.7", evil[] = "evil.example", code[] = "mtasts-policy-mx-mismatch";
	struct tlsrpt_failure f = {.type = STS_RT_CERT_EXPIRED, .sending_mta_ip = ip1,
				   .receiving_mx_hostname = mxa, .receiving_ip = rip};
	assert_int_equal(tlsrpt_agg_add(a, sts, &f, 2), 0);
	assert_int_equal(tlsrpt_agg_add(a, sts, &f, 3), 0); /* same key: merged */
	struct tlsrpt_failure g = {.type = STS_RT_VALIDATION_FAILURE, .sending_mta_ip = ip1,
				   .receiving_mx_hostname = evil, .failure_reason_code = code};
	assert_int_equal(tlsrpt_agg_add(a, sts, &g, 1), 0);
	f.sending_mta_ip = ip2; /* another key */
	assert_int_equal(tlsrpt_agg_add(a, sts, &f, 1), 0);
	assert_int_equal(tlsrpt_agg_add(a, none, NULL, 48), 0);
	/* refused: a bad index, a failure without a type */
	assert_int_equal(tlsrpt_agg_add(a, 7, NULL, 1), -1);
	struct tlsrpt_failure bad = {.type = STS_RT_NONE};
	assert_int_equal(tlsrpt_agg_add(a, sts, &bad, 1), -1);
	const struct tlsrpt_report *r = tlsrpt_agg_report(a);
	assert_int_equal(r->n_policies, 2);
	assert_int_equal(r->policies[0].total_success, 15);
	assert_int_equal(r->policies[0].total_failure, 7);
	assert_int_equal(r->policies[0].n_failures, 3);
	assert_int_equal(r->policies[0].failures[0].failed_session_count, 5);
	char *j;
	size_t jl;
	assert_int_equal(tlsrpt_report_json(r, &j, &jl), 0);
	/* the shape RFC 8460 4 and erratum 6241 ask for */
	assert_non_null(strstr(j, "\"date-range\":{\"start-datetime\":\"2024-01-01T00:00:00Z\","
				  "\"end-datetime\":\"2024-01-01T23:59:59Z\"}"));
	assert_non_null(strstr(j, "\"policies\":[{\"policy\":{\"policy-type\":\"sts\","
				  "\"policy-string\":[\"version: STSv1\",\"mode: enforce\","
				  "\"mx: *.mx.example.com\",\"max_age: 86400\"],"
				  "\"policy-domain\":\"example.com\",\"mx-host\":[\"*.mx.example.com\"]}"));
	assert_non_null(strstr(j, "\"failure-reason-code\":\"mtasts-policy-mx-mismatch\""));
	assert_non_null(strstr(j, "{\"policy\":{\"policy-type\":\"no-policy-found\","
				  "\"policy-domain\":\"other.example\"},\"summary\":{"
				  "\"total-successful-session-count\":48,"
				  "\"total-failure-session-count\":0}}"));
	/* parses back with no anomaly at all: totals add up, one UTC day */
	char why[128];
	struct tlsrpt_report *back = tlsrpt_report_parse(j, jl, why, sizeof(why));
	assert_non_null(back);
	assert_int_equal(back->anomalies, 0);
	report_eq(r, back);
	tlsrpt_report_free(back);
	round_trip(r);
	/* gzip, file name */
	uint8_t *gz, *plain;
	size_t gl, pl;
	assert_int_equal(tlsrpt_gzip(j, jl, &gz, &gl), 0);
	assert_true(gz[0] == 0x1f && gz[1] == 0x8b);
	assert_int_equal(tlsrpt_gunzip(gz, gl, TLSRPT_MAX_REPORT_LEN, &plain, &pl, why, sizeof(why)), 0);
	assert_int_equal(pl, jl);
	assert_memory_equal(plain, j, jl);
	free(plain);
	free(gz);
	free(j);
	char fname[TLSRPT_FILENAME_MAX];
	assert_true(tlsrpt_filename(fname, "wireseal.example", "example.com", r->start, r->end, NULL,
				    true) > 0);
	assert_string_equal(fname, "wireseal.example!example.com!1704067200!1704153599.json.gz");
	assert_true(tlsrpt_filename(fname, "w.example", "example.com", 1, 2, "001", false) > 0);
	assert_string_equal(fname, "w.example!example.com!1!2!001.json");
	assert_int_equal(tlsrpt_filename(fname, "w!x", "example.com", 1, 2, NULL, false), -1);
	tlsrpt_agg_free(a);
}

static void
test_mail(void **state)
{
	(void)state;
	const int64_t day = 1704067200; /* 2024-01-01, a Monday */
	struct tlsrpt_agg *a = tlsrpt_agg_new("wireseal.example", "tlsrpt@wireseal.example",
					      "2024-01-01T00:00:00Z_example.com", day);
	assert_non_null(a);
	const char *mx[] = {"*.mx.example.com"};
	int p = tlsrpt_agg_policy(a, TLSRPT_PT_STS, "example.com", NULL, 0, mx, 1);
	assert_int_equal(tlsrpt_agg_add(a, p, NULL, 12), 0);
	const struct tlsrpt_report *r = tlsrpt_agg_report(a);
	struct tlsrpt_mail m = {"tlsrpt@wireseal.example", "reports@example.com", "wireseal.example",
				"<r1@wireseal.example>"};
	char *eml, why[128];
	size_t len;
	assert_int_equal(tlsrpt_mail(&m, r, day + 86400 + 3600, &eml, &len, why, sizeof(why)), 0);
	assert_int_equal(strlen(eml), len);
	const char *want[] = {
		"From: tlsrpt@wireseal.example\r\n",
		"To: reports@example.com\r\n",
		"Date: Tue, 02 Jan 2024 01:00:00 +0000\r\n",
		"Subject: Report Domain: example.com Submitter: wireseal.example\r\n"
		" Report-ID: <2024-01-01T00:00:00Z_example.com>\r\n",
		"TLS-Report-Domain: example.com\r\n",
		"TLS-Report-Submitter: wireseal.example\r\n",
		"TLS-Required: No\r\n",
		"Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n",
		"filename=\"wireseal.example!example.com!1704067200!1704153599.json.gz\"",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(eml, want[i]))
			fail_msg("missing %s in\n%s", want[i], eml);
	/* only CRLF line ends */
	for (size_t i = 0; i < len; i++)
		if (eml[i] == '\n')
			assert_true(i > 0 && eml[i - 1] == '\r');
	/* the attachment decodes to the report */
	char fname[TLSRPT_FILENAME_MAX];
	size_t alen, jlen;
	bool gz, reg;
	uint8_t *att = attachment(eml, fname, sizeof(fname), &alen, &gz, &reg);
	assert_true(gz && reg);
	uint8_t *json;
	assert_int_equal(tlsrpt_gunzip(att, alen, TLSRPT_MAX_REPORT_LEN, &json, &jlen, why, sizeof(why)), 0);
	struct tlsrpt_report *back = tlsrpt_report_parse((const char *)json, jlen, why, sizeof(why));
	assert_non_null(back);
	report_eq(r, back);
	assert_int_equal(back->anomalies, 0);
	tlsrpt_report_free(back);
	free(json);
	free(att);
	free(eml);
	/* a line break in a header value is refused (header injection) */
	char evil[] = "x@y\r\nBcc: z@w";
	m.to = evil;
	assert_int_equal(tlsrpt_mail(&m, r, day, &eml, &len, why, sizeof(why)), -1);
	tlsrpt_agg_free(a);
}

static void
test_limits(void **state)
{
	(void)state;
	char why[128];
	/* a report of exactly TLSRPT_MAX_REPORT_LEN bytes, and one past */
	size_t n = TLSRPT_MAX_REPORT_LEN;
	char *big = malloc(n + 2);
	assert_non_null(big);
	const char head[] = "{\"organization-name\":\"";
	memcpy(big, head, sizeof(head) - 1);
	memset(big + sizeof(head) - 1, 'a', n + 1 - sizeof(head) + 1);
	memcpy(big + n - 2, "\"}", 2);
	struct tlsrpt_report *r = tlsrpt_report_parse(big, n, why, sizeof(why));
	if (!r)
		fail_msg("at the limit: %s", why);
	assert_int_equal(strlen(r->organization_name), n - sizeof(head) + 1 - 2);
	tlsrpt_report_free(r);
	memcpy(big + n - 2, "a\"}", 3);
	assert_null(tlsrpt_report_parse(big, n + 1, why, sizeof(why)));
	/* gunzip: output of exactly max_out bytes, and one past */
	uint8_t *gz, *out;
	size_t gl, ol;
	assert_int_equal(tlsrpt_gzip(big, n, &gz, &gl), 0);
	assert_int_equal(tlsrpt_gunzip(gz, gl, TLSRPT_MAX_REPORT_LEN, &out, &ol, why, sizeof(why)), 0);
	assert_int_equal(ol, n);
	free(out);
	assert_int_equal(tlsrpt_gunzip(gz, gl, n - 1, &out, &ol, why, sizeof(why)), -1);
	free(gz);
	assert_int_equal(tlsrpt_gzip(big, n + 1, &gz, &gl), 0);
	assert_int_equal(tlsrpt_gunzip(gz, gl, TLSRPT_MAX_REPORT_LEN, &out, &ol, why, sizeof(why)), -1);
	free(gz);
	free(big);
	/* truncated and non-gzip input */
	assert_int_equal(tlsrpt_gunzip("abc", 3, 100, &out, &ol, why, sizeof(why)), -1);
	/* a file name of TLSRPT_FILENAME_MAX - 1 characters, and one more */
	char fname[TLSRPT_FILENAME_MAX], sub[TLSRPT_FILENAME_MAX];
	/* "!d!1!2.json" is 11 characters */
	memset(sub, 's', sizeof(sub));
	sub[TLSRPT_FILENAME_MAX - 1 - 11] = '\0';
	assert_int_equal(tlsrpt_filename(fname, sub, "d", 1, 2, NULL, false), TLSRPT_FILENAME_MAX - 1);
	sub[TLSRPT_FILENAME_MAX - 1 - 11] = 's';
	sub[TLSRPT_FILENAME_MAX - 11] = '\0';
	assert_int_equal(tlsrpt_filename(fname, sub, "d", 1, 2, NULL, false), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt_mox),
		cmocka_unit_test(test_txt_stalwart),
		cmocka_unit_test(test_txt_lookup_mox),
		cmocka_unit_test(test_txt_rules_and_limits),
		cmocka_unit_test(test_report_fixtures),
		cmocka_unit_test(test_report_emails),
		cmocka_unit_test(test_report_lenient_and_fatal),
		cmocka_unit_test(test_datetime),
		cmocka_unit_test(test_aggregate),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
