/* cpm: every message type round-trips; batches; limits at and past; every
 * truncation, trailing byte, unknown type and bad HELLO is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpm.h"

static uint8_t dgram[CPM_MAX_DATAGRAM + 16];

static void
assert_str(struct cpm_str a, struct cpm_str b)
{
	assert_int_equal(a.len, b.len);
	if (a.len)
		assert_memory_equal(a.p, b.p, a.len);
}

static void
fill_message(struct cpm_message *m)
{
	memset(m, 0, sizeof(*m));
	m->record_id = 0x0102030405060708ull;
	m->flow_id = 77;
	m->ts_usec = 1764400000123456ull;
	m->client.ip = cpm_s("192.0.2.1");
	m->client.port = 40000;
	m->server.ip = cpm_s("2001:db8::25");
	m->server.port = 25;
	m->helo = cpm_s("mail.example.org");
	m->mail_from = cpm_s("alice@example.org");
	m->nrcpts = 2;
	m->rcpts[0] = cpm_s("bob@example.com");
	m->rcpts[1] = cpm_s("carol@example.com");
	m->starttls = 1;
	m->transaction = 3;
	m->ndkim = 2;
	m->dkim[0] = (struct cpm_dkim){cpm_s("example.org"), cpm_s("sel"), cpm_s("rsa-sha256"),
				       cpm_s("pass"), cpm_s("")};
	m->dkim[1] = (struct cpm_dkim){cpm_s("list.example"), cpm_s("k2"), cpm_s("ed25519-sha256"),
				       cpm_s("fail"), cpm_s("signature did not verify")};
	m->nfrom = 1;
	m->from[0] = cpm_s(" Alice <alice@example.org>");
	m->arc_chain = CPM_ARC_PASS;
	m->narc = 1;
	m->arc[0].instance = 1;
	m->arc[0].sealer = cpm_s("forwarder.example");
	m->arc[0].aar = cpm_s("i=1; forwarder.example; dmarc=pass header.from=example.org");
	m->gap = cpm_s("capture-gap");
	m->verdict_wanted = 1;
}

static void
fill_verdict(struct cpm_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->record_id = 0x1122334455667788ull;
	v->status = CPM_VERDICT_DONE;
	v->spf_ran = 1;
	v->spf_mail_from = cpm_s("alice@example.org");
	v->spf_helo_name = cpm_s("mail.example.org");
	v->spf = (struct cpm_spf_outcome){2, cpm_s("example.org"), cpm_s("ip4:192.0.2.0/24"),
					  cpm_s("matched ip4:192.0.2.0/24"), cpm_s("")};
	v->helo_ran = 1;
	v->helo = (struct cpm_spf_outcome){3, cpm_s("mail.example.org"), cpm_s("-all"),
					   cpm_s("matched -all"), cpm_s("not allowed")};
	v->dmarc_ran = 1;
	v->dmarc_result = 2; /* fail */
	v->dmarc_policy = 2;
	v->dmarc_disposition = 1;
	v->org_method = 1;
	v->testing = 1;
	v->sampled_out = 1;
	v->org_disagree = 1;
	v->spf_aligned = 0;
	v->dkim_aligned = 1;
	v->pct = 100; /* the limit */
	v->from_domain = cpm_s("example.org");
	v->record_domain = cpm_s("example.org");
	v->org_domain = cpm_s("example.org");
	v->psl_org_domain = cpm_s("example.org");
	v->walk_org_domain = cpm_s("org.example");
	v->dmarc_reason = cpm_s("neither aligned");
	v->arc_applied = 1;
	v->arc_by = cpm_s("arc");
	v->arc_sealer = cpm_s("forwarder.example");
	v->arc_instance = 2;
	v->arc_reason = cpm_s("trusted sealer said dmarc=pass");
	v->override = cpm_s("quarantine");
	v->disposition = cpm_s("quarantine");
	v->authres = cpm_s("mx.example; dkim=pass header.d=example.org; spf=pass; dmarc=fail");
}

static void
check_verdict(const struct cpm_verdict *a, const struct cpm_verdict *b)
{
	assert_true(a->record_id == b->record_id);
	assert_int_equal(a->status, b->status);
	assert_str(a->why, b->why);
	assert_int_equal(a->spf_ran, b->spf_ran);
	assert_int_equal(a->spf_null_sender, b->spf_null_sender);
	assert_str(a->spf_mail_from, b->spf_mail_from);
	assert_str(a->spf_helo_name, b->spf_helo_name);
	const struct cpm_spf_outcome *o[2][2] = {{&a->spf, &b->spf}, {&a->helo, &b->helo}};
	for (int i = 0; i < 2; i++) {
		assert_int_equal(o[i][0]->result, o[i][1]->result);
		assert_str(o[i][0]->domain, o[i][1]->domain);
		assert_str(o[i][0]->mechanism, o[i][1]->mechanism);
		assert_str(o[i][0]->reason, o[i][1]->reason);
		assert_str(o[i][0]->explanation, o[i][1]->explanation);
	}
	assert_int_equal(a->helo_ran, b->helo_ran);
	assert_int_equal(a->dmarc_ran, b->dmarc_ran);
	assert_int_equal(a->dmarc_result, b->dmarc_result);
	assert_int_equal(a->dmarc_policy, b->dmarc_policy);
	assert_int_equal(a->dmarc_disposition, b->dmarc_disposition);
	assert_int_equal(a->org_method, b->org_method);
	assert_true(a->testing == b->testing && a->sampled_out == b->sampled_out &&
		    a->org_disagree == b->org_disagree && a->spf_aligned == b->spf_aligned &&
		    a->dkim_aligned == b->dkim_aligned);
	assert_int_equal(a->pct, b->pct);
	assert_str(a->from_domain, b->from_domain);
	assert_str(a->record_domain, b->record_domain);
	assert_str(a->org_domain, b->org_domain);
	assert_str(a->psl_org_domain, b->psl_org_domain);
	assert_str(a->walk_org_domain, b->walk_org_domain);
	assert_str(a->dmarc_reason, b->dmarc_reason);
	assert_int_equal(a->arc_applied, b->arc_applied);
	assert_str(a->arc_by, b->arc_by);
	assert_str(a->arc_sealer, b->arc_sealer);
	assert_int_equal(a->arc_instance, b->arc_instance);
	assert_str(a->arc_reason, b->arc_reason);
	assert_str(a->override, b->override);
	assert_str(a->disposition, b->disposition);
	assert_str(a->authres, b->authres);
}

static void
fill_session(struct cpm_session *m)
{
	memset(m, 0, sizeof(*m));
	m->record_id = 9;
	m->flow_id = 10;
	m->ts_usec = 11;
	m->client.ip = cpm_s("198.51.100.7");
	m->client.port = 1;
	m->server.ip = cpm_s("198.51.100.8");
	m->server.port = 25;
	m->helo = cpm_s("h");
	m->starttls_offered = 1;
	m->starttls_used = 1;
	m->end_reason = cpm_s("fin");
	m->transactions = 2;
	m->nrcpt_domains = 2;
	m->rcpt_domains[0] = cpm_s("example.com");
	m->rcpt_domains[1] = cpm_s("example.net");
	struct cpm_tls *t = &m->tls;
	t->client_hello = t->server_hello = 1;
	t->version_offered_max = 0x0304;
	t->version = 0x0303;
	t->sni = cpm_s("mx.example.com");
	t->cert_seen = 1;
	t->ncert_names = 2;
	t->cert_names[0] = cpm_s("mx.example.com");
	t->cert_names[1] = cpm_s("*.example.com");
	t->not_before = -86400; /* negative times survive the u64 on the wire */
	t->not_after = 1900000000;
	t->issuer = cpm_s("CN=test CA");
	t->chain_trusted = 1;
	m->nanomalies = 2;
	m->anomalies[0] = (struct cpm_anomaly){cpm_s("starttls-response-injection"), CPM_DIR_S2C, 1234};
	m->anomalies[1] = (struct cpm_anomaly){cpm_s("tls-version-downgrade"), CPM_DIR_C2S, 1ull << 40};
	m->nreplies = 3;
	m->replies[0] = (struct cpm_reply){cpm_s("(greeting)"), 220};
	m->replies[1] = (struct cpm_reply){cpm_s("EHLO"), 250};
	m->replies[2] = (struct cpm_reply){cpm_s("RCPT"), CPM_MAX_REPLY_CODE};
	m->replies_over = 1ull << 33;
}

static void
check_session(const struct cpm_session *a, const struct cpm_session *b)
{
	assert_true(a->record_id == b->record_id && a->flow_id == b->flow_id && a->ts_usec == b->ts_usec);
	assert_str(a->client.ip, b->client.ip);
	assert_int_equal(a->server.port, b->server.port);
	assert_str(a->helo, b->helo);
	assert_int_equal(a->starttls_offered, b->starttls_offered);
	assert_int_equal(a->starttls_used, b->starttls_used);
	assert_str(a->end_reason, b->end_reason);
	assert_int_equal(a->transactions, b->transactions);
	assert_int_equal(a->nreplies, b->nreplies);
	for (uint32_t i = 0; i < a->nreplies; i++) {
		assert_str(a->replies[i].verb, b->replies[i].verb);
		assert_int_equal(a->replies[i].code, b->replies[i].code);
	}
	assert_true(a->replies_over == b->replies_over);
	assert_int_equal(a->nrcpt_domains, b->nrcpt_domains);
	for (uint32_t i = 0; i < a->nrcpt_domains; i++)
		assert_str(a->rcpt_domains[i], b->rcpt_domains[i]);
	const struct cpm_tls *x = &a->tls, *y = &b->tls;
	assert_int_equal(x->client_hello, y->client_hello);
	assert_int_equal(x->server_hello, y->server_hello);
	assert_int_equal(x->version_offered_max, y->version_offered_max);
	assert_int_equal(x->version, y->version);
	assert_int_equal(x->resumed, y->resumed);
	assert_str(x->sni, y->sni);
	assert_int_equal(x->cert_seen, y->cert_seen);
	assert_int_equal(x->ncert_names, y->ncert_names);
	for (uint32_t i = 0; i < x->ncert_names; i++)
		assert_str(x->cert_names[i], y->cert_names[i]);
	assert_true(x->not_before == y->not_before && x->not_after == y->not_after);
	assert_str(x->issuer, y->issuer);
	assert_int_equal(x->chain_trusted, y->chain_trusted);
	assert_int_equal(a->nanomalies, b->nanomalies);
	for (uint32_t i = 0; i < a->nanomalies; i++) {
		assert_str(a->anomalies[i].name, b->anomalies[i].name);
		assert_int_equal(a->anomalies[i].dir, b->anomalies[i].dir);
		assert_true(a->anomalies[i].offset == b->anomalies[i].offset);
	}
}

static void
check_message(const struct cpm_message *a, const struct cpm_message *b)
{
	assert_true(a->record_id == b->record_id && a->flow_id == b->flow_id &&
		    a->ts_usec == b->ts_usec);
	assert_str(a->client.ip, b->client.ip);
	assert_int_equal(a->client.port, b->client.port);
	assert_str(a->server.ip, b->server.ip);
	assert_int_equal(a->server.port, b->server.port);
	assert_str(a->helo, b->helo);
	assert_str(a->mail_from, b->mail_from);
	assert_int_equal(a->nrcpts, b->nrcpts);
	for (uint32_t i = 0; i < a->nrcpts; i++)
		assert_str(a->rcpts[i], b->rcpts[i]);
	assert_int_equal(a->starttls, b->starttls);
	assert_int_equal(a->transaction, b->transaction);
	assert_int_equal(a->ndkim, b->ndkim);
	for (uint32_t i = 0; i < a->ndkim; i++) {
		assert_str(a->dkim[i].d, b->dkim[i].d);
		assert_str(a->dkim[i].s, b->dkim[i].s);
		assert_str(a->dkim[i].a, b->dkim[i].a);
		assert_str(a->dkim[i].result, b->dkim[i].result);
		assert_str(a->dkim[i].reason, b->dkim[i].reason);
	}
	assert_int_equal(a->nfrom, b->nfrom);
	for (uint32_t i = 0; i < a->nfrom; i++)
		assert_str(a->from[i], b->from[i]);
	assert_int_equal(a->arc_chain, b->arc_chain);
	assert_int_equal(a->narc, b->narc);
	for (uint32_t i = 0; i < a->narc; i++) {
		assert_int_equal(a->arc[i].instance, b->arc[i].instance);
		assert_str(a->arc[i].sealer, b->arc[i].sealer);
		assert_str(a->arc[i].aar, b->arc[i].aar);
	}
	assert_str(a->gap, b->gap);
	assert_int_equal(a->verdict_wanted, b->verdict_wanted);
}

/* Encode one message alone, decode it back, and check the datagram ends. */
static size_t
roundtrip(const struct cpm_msg *in, struct cpm_msg *out)
{
	struct cpm_writer w;
	cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
	assert_int_equal(cpm_encode(&w, in), 0);
	struct cpm_reader r;
	cpm_reader_init(&r, dgram, w.len);
	char why[128] = "";
	int rc = cpm_decode_next(&r, out, why, sizeof(why));
	if (rc != 1)
		fail_msg("decode: %s", why);
	assert_int_equal(out->type, in->type);
	assert_int_equal(cpm_decode_next(&r, out + 1, why, sizeof(why)), 0);
	return w.len;
}

static struct cpm_msg in, out[2];

static void
test_roundtrip_each_type(void **state)
{
	(void)state;
	in.type = CPM_HELLO;
	in.u.hello = (struct cpm_hello){CPM_MAGIC, CPM_VERSION, CPM_ROLE_DATAPLANE};
	roundtrip(&in, out);
	assert_int_equal(out[0].u.hello.magic, CPM_MAGIC);
	assert_int_equal(out[0].u.hello.version, CPM_VERSION);
	assert_int_equal(out[0].u.hello.role, CPM_ROLE_DATAPLANE);

	in.type = CPM_ERROR;
	in.u.error = (struct cpm_error){CPM_E_VERSION, cpm_s("version 2, want 1")};
	roundtrip(&in, out);
	assert_int_equal(out[0].u.error.code, CPM_E_VERSION);
	assert_str(out[0].u.error.text, in.u.error.text);

	in.type = CPM_KEY_REQUEST;
	in.u.key_request = (struct cpm_key_request){UINT64_MAX, cpm_s("sel._domainkey.example.org")};
	roundtrip(&in, out);
	assert_true(out[0].u.key_request.req_id == UINT64_MAX);
	assert_str(out[0].u.key_request.name, in.u.key_request.name);

	in.type = CPM_KEY_ANSWER;
	in.u.key_answer = (struct cpm_key_answer){42, CPM_KEY_FOUND, 300, cpm_s("v=DKIM1; p=AAAA")};
	roundtrip(&in, out);
	assert_true(out[0].u.key_answer.req_id == 42);
	assert_int_equal(out[0].u.key_answer.status, CPM_KEY_FOUND);
	assert_int_equal(out[0].u.key_answer.ttl, 300);
	assert_str(out[0].u.key_answer.record, in.u.key_answer.record);

	in.type = CPM_MESSAGE_RECORD;
	fill_message(&in.u.message);
	roundtrip(&in, out);
	check_message(&in.u.message, &out[0].u.message);

	in.type = CPM_SESSION_RECORD;
	fill_session(&in.u.session);
	roundtrip(&in, out);
	check_session(&in.u.session, &out[0].u.session);

	in.type = CPM_STS_QUERY;
	in.u.sts_query = (struct cpm_sts_query){0xfeedull, cpm_s("example.com")};
	roundtrip(&in, out);
	assert_true(out[0].u.sts_query.req_id == 0xfeedull);
	assert_str(out[0].u.sts_query.domain, in.u.sts_query.domain);

	in.type = CPM_STS_ANSWER;
	memset(&in.u.sts_answer, 0, sizeof(in.u.sts_answer));
	in.u.sts_answer.req_id = 0xfeedull;
	in.u.sts_answer.status = CPM_STS_POLICY;
	in.u.sts_answer.mode = CPM_STS_TESTING;
	in.u.sts_answer.ttl = 86400;
	in.u.sts_answer.nmx = 2;
	in.u.sts_answer.mx[0] = cpm_s("mx1.example.com");
	in.u.sts_answer.mx[1] = cpm_s("*.example.net");
	in.u.sts_answer.why = cpm_s("");
	roundtrip(&in, out);
	assert_true(out[0].u.sts_answer.req_id == 0xfeedull);
	assert_int_equal(out[0].u.sts_answer.status, CPM_STS_POLICY);
	assert_int_equal(out[0].u.sts_answer.mode, CPM_STS_TESTING);
	assert_int_equal(out[0].u.sts_answer.ttl, 86400);
	assert_int_equal(out[0].u.sts_answer.nmx, 2);
	assert_str(out[0].u.sts_answer.mx[1], in.u.sts_answer.mx[1]);
	assert_string_equal(cpm_type_name(CPM_STS_ANSWER), "STS_ANSWER");
	assert_string_equal(cpm_sts_status_name(CPM_STS_TEMPFAIL), "tempfail");

	in.type = CPM_VERDICT;
	fill_verdict(&in.u.verdict);
	roundtrip(&in, out);
	check_verdict(&in.u.verdict, &out[0].u.verdict);
	in.u.verdict.status = CPM_VERDICT_ERROR;
	in.u.verdict.why = cpm_s("From: two addresses");
	roundtrip(&in, out);
	check_verdict(&in.u.verdict, &out[0].u.verdict);
	assert_string_equal(cpm_type_name(CPM_VERDICT), "VERDICT");

	in.type = CPM_ACK;
	in.u.ack.up_to = 123456789;
	roundtrip(&in, out);
	assert_true(out[0].u.ack.up_to == 123456789);

	in.type = CPM_STATS;
	in.u.stats.n = 2;
	in.u.stats.s[0] = (struct cpm_stat){cpm_s("dp_rx_packets"), 1ull << 40};
	in.u.stats.s[1] = (struct cpm_stat){cpm_s("dp_flows"), 0};
	roundtrip(&in, out);
	assert_int_equal(out[0].u.stats.n, 2);
	assert_true(out[0].u.stats.s[0].value == 1ull << 40);
	assert_str(out[0].u.stats.s[1].name, in.u.stats.s[1].name);

	assert_string_equal(cpm_type_name(CPM_MESSAGE_RECORD), "MESSAGE_RECORD");
	assert_string_equal(cpm_type_name(999), "?");
	assert_string_equal(cpm_type_name(0), "?");
}

static void
test_batch(void **state)
{
	(void)state;
	struct cpm_writer w;
	cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
	in.type = CPM_MESSAGE_RECORD;
	fill_message(&in.u.message);
	unsigned n = 0;
	for (;; n++) {
		in.u.message.record_id = n;
		size_t before = w.len;
		if (cpm_encode(&w, &in) != 0) {
			/* a record that does not fit leaves the datagram as it was */
			assert_int_equal(w.len, before);
			assert_false(w.overflow);
			break;
		}
	}
	assert_true(n > 10);
	assert_int_equal(w.records, n);
	assert_true(w.len <= CPM_MAX_DATAGRAM);
	struct cpm_reader r;
	cpm_reader_init(&r, dgram, w.len);
	char why[128];
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(cpm_decode_next(&r, out, why, sizeof(why)), 1);
		assert_true(out[0].u.message.record_id == i);
		in.u.message.record_id = i;
		check_message(&in.u.message, &out[0].u.message);
	}
	assert_int_equal(cpm_decode_next(&r, out, why, sizeof(why)), 0);
}

static int
decode_all(const uint8_t *p, size_t len)
{
	struct cpm_reader r;
	cpm_reader_init(&r, p, len);
	char why[128];
	int rc;
	while ((rc = cpm_decode_next(&r, out, why, sizeof(why))) == 1)
		;
	return rc;
}

static void
test_truncated_and_trailing(void **state)
{
	(void)state;
	struct cpm_writer w;
	cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
	in.type = CPM_MESSAGE_RECORD;
	fill_message(&in.u.message);
	assert_int_equal(cpm_encode(&w, &in), 0);
	size_t full = w.len;
	assert_int_equal(decode_all(dgram, full), 0);
	/* every proper prefix is refused */
	for (size_t cut = 0; cut < full; cut++)
		assert_int_equal(decode_all(dgram, cut), -1);
	/* a byte too many in the datagram is a truncated next record */
	dgram[full] = 0;
	assert_int_equal(decode_all(dgram, full + 1), -1);
	/* a payload one byte longer than its fields: trailing byte refused */
	static uint8_t big[CPM_MAX_DATAGRAM];
	memcpy(big, dgram, full);
	uint32_t plen = (uint32_t)(full - CPM_RECORD_HDR) + 1;
	big[2] = (uint8_t)(plen >> 24);
	big[3] = (uint8_t)(plen >> 16);
	big[4] = (uint8_t)(plen >> 8);
	big[5] = (uint8_t)plen;
	big[full] = 0xAA;
	struct cpm_reader r;
	cpm_reader_init(&r, big, full + 1);
	char why[128] = "";
	assert_int_equal(cpm_decode_next(&r, out, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "trailing"));
	/* unknown type */
	big[0] = 0;
	big[1] = 0xEE;
	assert_int_equal(decode_all(big, full + 1), -1);
	/* garbage */
	for (size_t i = 0; i < 64; i++)
		big[i] = (uint8_t)(i * 37 + 11);
	assert_int_equal(decode_all(big, 64), -1);
}

static void
test_limits(void **state)
{
	(void)state;
	static char longs[CPM_MAX_STR + 2];
	memset(longs, 'x', sizeof(longs) - 1);
	struct cpm_writer w;

	/* a string at CPM_MAX_STR passes, one byte more is refused by both sides */
	in.type = CPM_KEY_REQUEST;
	in.u.key_request.req_id = 1;
	in.u.key_request.name = (struct cpm_str){longs, CPM_MAX_STR};
	roundtrip(&in, out);
	assert_int_equal(out[0].u.key_request.name.len, CPM_MAX_STR);
	in.u.key_request.name.len = CPM_MAX_STR + 1;
	cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
	assert_int_equal(cpm_encode(&w, &in), -1);
	assert_int_equal(w.len, 0);
	/* forge the over-long length on the wire: the decoder refuses it */
	in.u.key_request.name.len = CPM_MAX_STR;
	size_t len = roundtrip(&in, out);
	uint8_t *lenp = dgram + CPM_RECORD_HDR + 8;
	lenp[2] = (uint8_t)((CPM_MAX_STR + 1) >> 8);
	lenp[3] = (uint8_t)(CPM_MAX_STR + 1);
	dgram[len] = 'x';
	dgram[5]++; /* payload one longer too */
	assert_int_equal(decode_all(dgram, len + 1), -1);

	/* a NUL inside a string */
	in.u.key_request.name = (struct cpm_str){"a\0b", 3};
	cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
	assert_int_equal(cpm_encode(&w, &in), -1);

	/* lists at their limit and past it */
	in.type = CPM_MESSAGE_RECORD;
	fill_message(&in.u.message);
	in.u.message.nrcpts = CPM_MAX_RCPTS;
	for (unsigned i = 0; i < CPM_MAX_RCPTS; i++)
		in.u.message.rcpts[i] = cpm_s("r@x");
	in.u.message.ndkim = CPM_MAX_DKIM;
	for (unsigned i = 0; i < CPM_MAX_DKIM; i++)
		in.u.message.dkim[i] = in.u.message.dkim[0];
	in.u.message.nfrom = CPM_MAX_FROM;
	for (unsigned i = 0; i < CPM_MAX_FROM; i++)
		in.u.message.from[i] = cpm_s("a@b");
	in.u.message.narc = CPM_MAX_ARC;
	for (unsigned i = 0; i < CPM_MAX_ARC; i++)
		in.u.message.arc[i] = in.u.message.arc[0];
	roundtrip(&in, out);
	check_message(&in.u.message, &out[0].u.message);
	uint32_t *counts[] = {&in.u.message.nrcpts, &in.u.message.ndkim, &in.u.message.nfrom,
			      &in.u.message.narc};
	for (size_t i = 0; i < 4; i++) {
		(*counts[i])++;
		cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
		assert_int_equal(cpm_encode(&w, &in), -1);
		(*counts[i])--;
	}
	/* the session's lists at their limits, then one past each */
	in.type = CPM_SESSION_RECORD;
	fill_session(&in.u.session);
	in.u.session.nanomalies = CPM_MAX_ANOMALIES;
	for (unsigned i = 0; i < CPM_MAX_ANOMALIES; i++)
		in.u.session.anomalies[i] = in.u.session.anomalies[i % 2];
	in.u.session.nrcpt_domains = CPM_MAX_RCPT_DOMAINS;
	for (unsigned i = 0; i < CPM_MAX_RCPT_DOMAINS; i++)
		in.u.session.rcpt_domains[i] = cpm_s("d.example");
	in.u.session.tls.ncert_names = CPM_MAX_CERT_NAMES;
	for (unsigned i = 0; i < CPM_MAX_CERT_NAMES; i++)
		in.u.session.tls.cert_names[i] = cpm_s("n.example");
	in.u.session.nreplies = CPM_MAX_REPLIES;
	for (unsigned i = 0; i < CPM_MAX_REPLIES; i++)
		in.u.session.replies[i] = (struct cpm_reply){cpm_s("NOOP"), (uint16_t)(200 + i % 400)};
	roundtrip(&in, out);
	check_session(&in.u.session, &out[0].u.session);
	uint32_t *scounts[] = {&in.u.session.nanomalies, &in.u.session.nrcpt_domains,
			       &in.u.session.tls.ncert_names, &in.u.session.nreplies};
	for (size_t i = 0; i < 4; i++) {
		(*scounts[i])++;
		cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
		assert_int_equal(cpm_encode(&w, &in), -1);
		(*scounts[i])--;
	}
	/* values out of range: a boolean that is not 0/1, a direction */
	in.u.session.tls.cert_seen = 2;
	cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
	assert_int_equal(cpm_encode(&w, &in), -1);
	in.u.session.tls.cert_seen = 1;
	in.u.session.anomalies[3].dir = CPM_DIR_S2C + 1;
	cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
	assert_int_equal(cpm_encode(&w, &in), -1);
	in.u.session.anomalies[3].dir = CPM_DIR_S2C;
	/* a reply code: CPM_MAX_REPLY_CODE goes (above), one more does not */
	in.u.session.replies[7].code = CPM_MAX_REPLY_CODE + 1;
	cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
	assert_int_equal(cpm_encode(&w, &in), -1);

	in.type = CPM_STS_ANSWER;
	memset(&in.u.sts_answer, 0, sizeof(in.u.sts_answer));
	in.u.sts_answer.nmx = CPM_MAX_STS_MX;
	for (unsigned i = 0; i < CPM_MAX_STS_MX; i++)
		in.u.sts_answer.mx[i] = cpm_s("*.example.com");
	roundtrip(&in, out);
	assert_int_equal(out[0].u.sts_answer.nmx, CPM_MAX_STS_MX);
	in.u.sts_answer.nmx++;
	cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
	assert_int_equal(cpm_encode(&w, &in), -1);
	in.u.sts_answer.nmx = 0;
	in.u.sts_answer.status = CPM_STS_TEMPFAIL + 1;
	cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
	assert_int_equal(cpm_encode(&w, &in), -1);

	in.type = CPM_STATS;
	in.u.stats.n = CPM_MAX_STATS;
	for (unsigned i = 0; i < CPM_MAX_STATS; i++)
		in.u.stats.s[i] = (struct cpm_stat){cpm_s("c"), i};
	len = roundtrip(&in, out);
	assert_int_equal(out[0].u.stats.n, CPM_MAX_STATS);
	/* the count forged past the limit on the wire */
	dgram[CPM_RECORD_HDR + 2] = (uint8_t)((CPM_MAX_STATS + 1) >> 8);
	dgram[CPM_RECORD_HDR + 3] = (uint8_t)(CPM_MAX_STATS + 1);
	assert_int_equal(decode_all(dgram, len), -1);

	/* a key answer status out of range */
	in.type = CPM_KEY_ANSWER;
	in.u.key_answer = (struct cpm_key_answer){1, CPM_KEY_TEMPFAIL + 1, 0, cpm_s("")};
	cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
	assert_int_equal(cpm_encode(&w, &in), -1);

	/* the datagram limit: a datagram of CPM_MAX_DATAGRAM decodes, one more byte does not */
	in.type = CPM_KEY_REQUEST;
	in.u.key_request.name = (struct cpm_str){longs, 0};
	cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
	size_t one = CPM_RECORD_HDR + 8 + 4;
	while (CPM_MAX_DATAGRAM - w.len >= one + CPM_MAX_STR)
		in.u.key_request.name.len = CPM_MAX_STR, assert_int_equal(cpm_encode(&w, &in), 0);
	in.u.key_request.name.len = (uint32_t)(CPM_MAX_DATAGRAM - w.len - one);
	assert_int_equal(cpm_encode(&w, &in), 0);
	assert_int_equal(w.len, CPM_MAX_DATAGRAM);
	assert_int_equal(decode_all(dgram, CPM_MAX_DATAGRAM), 0);
	dgram[CPM_MAX_DATAGRAM] = 0;
	assert_int_equal(decode_all(dgram, CPM_MAX_DATAGRAM + 1), -1);
	/* and the empty datagram */
	assert_int_equal(decode_all(dgram, 0), -1);
}

/* Encodes m with its checks bypassed: a writer walk refuses what the
 * decoder would, so the bad value is patched into the bytes instead. */
static size_t
encode_ok(const struct cpm_msg *m)
{
	struct cpm_writer w;
	cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
	assert_int_equal(cpm_encode(&w, m), 0);
	return w.len;
}

/* VERDICT and the v3 MESSAGE_RECORD fields: every enumeration at its last
 * value is taken, one past it refused; booleans past 1 refused (both ways). */
static void
test_verdict_ranges(void **state)
{
	(void)state;
	static struct cpm_msg m;
	m.type = CPM_VERDICT;
	struct {
		uint8_t *f;
		unsigned max;
	} u8s[] = {
		{&m.u.verdict.status, CPM_VERDICT_ERROR},
		{&m.u.verdict.spf.result, CPM_SPF_RESULT_MAX},
		{&m.u.verdict.helo.result, CPM_SPF_RESULT_MAX},
		{&m.u.verdict.dmarc_result, CPM_DMARC_RES_MAX},
		{&m.u.verdict.dmarc_policy, CPM_DMARC_POLICY_MAX},
		{&m.u.verdict.dmarc_disposition, CPM_DMARC_POLICY_MAX},
		{&m.u.verdict.org_method, CPM_DMARC_ORG_MAX},
		{&m.u.verdict.spf_ran, 1},
		{&m.u.verdict.spf_null_sender, 1},
		{&m.u.verdict.helo_ran, 1},
		{&m.u.verdict.dmarc_ran, 1},
		{&m.u.verdict.testing, 1},
		{&m.u.verdict.sampled_out, 1},
		{&m.u.verdict.org_disagree, 1},
		{&m.u.verdict.spf_aligned, 1},
		{&m.u.verdict.dkim_aligned, 1},
		{&m.u.verdict.arc_applied, 1},
	};
	for (size_t i = 0; i < sizeof(u8s) / sizeof(u8s[0]); i++) {
		fill_verdict(&m.u.verdict);
		*u8s[i].f = (uint8_t)u8s[i].max;
		size_t n = encode_ok(&m);
		assert_int_equal(decode_all(dgram, n), 0); /* at the limit */
		/* past it: the encoder refuses, and so does the decoder */
		*u8s[i].f = (uint8_t)(u8s[i].max + 1);
		struct cpm_writer w;
		cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
		assert_int_equal(cpm_encode(&w, &m), -1);
		*u8s[i].f = (uint8_t)u8s[i].max;
		n = encode_ok(&m);
		/* find the byte: the only one that changes between max and max-1 */
		static uint8_t a[CPM_MAX_DATAGRAM];
		memcpy(a, dgram, n);
		*u8s[i].f = (uint8_t)(u8s[i].max - 1);
		assert_int_equal(encode_ok(&m), n);
		size_t at = n;
		for (size_t k = 0; k < n; k++)
			if (a[k] != dgram[k])
				at = k;
		assert_true(at < n);
		dgram[at] = (uint8_t)(u8s[i].max + 1);
		assert_int_equal(decode_all(dgram, n), -1);
	}
	fill_verdict(&m.u.verdict);
	m.u.verdict.pct = 101; /* past 100 */
	struct cpm_writer w;
	cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
	assert_int_equal(cpm_encode(&w, &m), -1);
	m.type = CPM_MESSAGE_RECORD;
	fill_message(&m.u.message);
	m.u.message.verdict_wanted = 2;
	cpm_writer_init(&w, dgram, CPM_MAX_DATAGRAM);
	assert_int_equal(cpm_encode(&w, &m), -1);
	m.u.message.verdict_wanted = 1;
	size_t n = encode_ok(&m);
	assert_int_equal(dgram[n - 1], 1); /* verdict_wanted is the last byte */
	dgram[n - 1] = 2;
	assert_int_equal(decode_all(dgram, n), -1);
}

static void
test_hello_check(void **state)
{
	(void)state;
	struct cpm_msg h = {.type = CPM_HELLO};
	h.u.hello = (struct cpm_hello){CPM_MAGIC, CPM_VERSION, CPM_ROLE_DATAPLANE};
	assert_int_equal(cpm_hello_check(&h, CPM_ROLE_DATAPLANE), 0);
	assert_int_equal(cpm_hello_check(&h, CPM_ROLE_CONTROLPLANE), CPM_E_ROLE);
	h.u.hello.version = CPM_VERSION + 1;
	assert_int_equal(cpm_hello_check(&h, CPM_ROLE_DATAPLANE), CPM_E_VERSION);
	h.u.hello.version = CPM_VERSION;
	h.u.hello.magic ^= 1;
	assert_int_equal(cpm_hello_check(&h, CPM_ROLE_DATAPLANE), CPM_E_MAGIC);
	struct cpm_msg k = {.type = CPM_KEY_REQUEST};
	assert_int_equal(cpm_hello_check(&k, CPM_ROLE_DATAPLANE), CPM_E_NO_HELLO);
	assert_string_equal(cpm_error_text(CPM_E_VERSION), "protocol version mismatch");
	assert_string_equal(cpm_error_text(0), "unknown error");
}

/* The seeds written by tests/lib/cpm.py (the independent Python codec the
 * e2e tests speak) decode here to the values it was given. */
static size_t
read_seed(const char *name, uint8_t *buf, size_t cap)
{
	char path[512];
	const char *root = getenv("WS_SOURCE_ROOT");
	snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/cpm/%s", root ? root : ".", name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static void
test_python_seeds(void **state)
{
	(void)state;
	static struct cpm_msg m;
	struct cpm_reader r;
	char why[128];
	size_t n = read_seed("session", dgram, sizeof(dgram));
	cpm_reader_init(&r, dgram, n);
	assert_int_equal(cpm_decode_next(&r, &m, why, sizeof(why)), 1);
	assert_int_equal(m.type, CPM_SESSION_RECORD);
	const struct cpm_session *s = &m.u.session;
	assert_true(s->record_id == 5 && s->ts_usec == 1764400000000000ull);
	assert_int_equal(s->nrcpt_domains, 1);
	assert_true(cpm_str_eq(s->rcpt_domains[0], "example.net"));
	assert_true(s->tls.version == 0x0303 && s->tls.version_offered_max == 0x0304 && s->tls.cert_seen);
	assert_true(cpm_str_eq(s->tls.sni, "mx.example.net"));
	assert_int_equal(s->tls.ncert_names, 2);
	assert_true(cpm_str_eq(s->tls.cert_names[1], "*.example.net"));
	assert_true(s->tls.not_before == 1700000000 && s->tls.not_after == 1800000000);
	assert_true(cpm_str_eq(s->tls.issuer, "CN=ca") && s->tls.chain_trusted);
	assert_int_equal(s->nanomalies, 1);
	assert_true(cpm_str_eq(s->anomalies[0].name, "starttls-response-injection"));
	assert_true(s->anomalies[0].dir == CPM_DIR_S2C && s->anomalies[0].offset == 120);
	assert_int_equal(s->nreplies, 3);
	assert_true(cpm_str_eq(s->replies[0].verb, "(greeting)") && s->replies[0].code == 220);
	assert_true(cpm_str_eq(s->replies[2].verb, "STARTTLS") && s->replies[2].code == 220);
	assert_true(s->replies_over == 2);
	assert_int_equal(cpm_decode_next(&r, &m, why, sizeof(why)), 0);

	n = read_seed("sts_answer", dgram, sizeof(dgram));
	cpm_reader_init(&r, dgram, n);
	assert_int_equal(cpm_decode_next(&r, &m, why, sizeof(why)), 1);
	assert_int_equal(m.type, CPM_STS_ANSWER);
	assert_true(m.u.sts_answer.req_id == 7 && m.u.sts_answer.status == CPM_STS_POLICY &&
		    m.u.sts_answer.mode == CPM_STS_TESTING && m.u.sts_answer.ttl == 300);
	assert_int_equal(m.u.sts_answer.nmx, 2);
	assert_true(cpm_str_eq(m.u.sts_answer.mx[1], "*.example.org"));

	n = read_seed("verdict", dgram, sizeof(dgram));
	cpm_reader_init(&r, dgram, n);
	assert_int_equal(cpm_decode_next(&r, &m, why, sizeof(why)), 1);
	assert_int_equal(m.type, CPM_VERDICT);
	const struct cpm_verdict *v = &m.u.verdict;
	assert_true(v->record_id == 3 && v->status == CPM_VERDICT_DONE && v->spf_ran && v->helo_ran);
	assert_true(v->spf.result == 2 && cpm_str_eq(v->spf.domain, "example.org"));
	assert_true(v->helo.result == 3 && cpm_str_eq(v->helo.explanation, "not allowed"));
	assert_true(cpm_str_eq(v->spf_mail_from, "a@example.org") &&
		    cpm_str_eq(v->spf_helo_name, "mx.example.org"));
	assert_true(v->dmarc_ran && v->dmarc_result == 1 && v->pct == 100);
	assert_true(cpm_str_eq(v->from_domain, "example.org") && cpm_str_eq(v->authres, "x; spf=pass"));
	assert_int_equal(cpm_decode_next(&r, &m, why, sizeof(why)), 0);

	n = read_seed("message", dgram, sizeof(dgram));
	cpm_reader_init(&r, dgram, n);
	assert_int_equal(cpm_decode_next(&r, &m, why, sizeof(why)), 1);
	assert_int_equal(m.type, CPM_MESSAGE_RECORD);
	assert_true(m.u.message.record_id == 7 && m.u.message.ndkim == 1);
	assert_true(cpm_str_eq(m.u.message.gap, "capture-gap") && m.u.message.verdict_wanted == 1);

	n = read_seed("sts_query", dgram, sizeof(dgram));
	cpm_reader_init(&r, dgram, n);
	assert_int_equal(cpm_decode_next(&r, &m, why, sizeof(why)), 1);
	assert_true(m.type == CPM_STS_QUERY && m.u.sts_query.req_id == 7);
	assert_true(cpm_str_eq(m.u.sts_query.domain, "example.net"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_each_type),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_truncated_and_trailing),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_verdict_ranges),
		cmocka_unit_test(test_hello_check),
		cmocka_unit_test(test_python_seeds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
