/* wiresig: each signal raised by its evidence and not by the benign
 * look-alike; the hyperscan patterns; once per name; the policy signals.
 * Also through a whole dp_session: a STARTTLS session split at every byte
 * offset gives the same anomalies and TLS facts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "session.h"
#include "wiresig.h"

static const char *
first(const struct wiresig *w, uint64_t *off)
{
	if (w->n == 0)
		return NULL;
	if (off)
		*off = w->an[0].offset;
	return w->an[0].name;
}

static void
line(struct wiresig *w, enum smtpp_dir d, enum smtpp_verb v, const char *s, uint64_t off)
{
	wiresig_line(w, d, v, (const uint8_t *)s, strlen(s), off);
}

static void
test_db(void **state)
{
	(void)state;
	char why[256];
	assert_int_equal(wiresig_init_db(why, sizeof(why)), 0);
	assert_int_equal(wiresig_init_db(why, sizeof(why)), 0); /* once per process */
	assert_string_equal(wiresig_name(WS_SIG_COMMAND_INJECTION), "starttls-command-injection");
	assert_string_equal(wiresig_name(WIRESIG_COUNT), "unknown");
	assert_true(WIRESIG_COUNT <= 32); /* one bit each in wiresig.seen */
}

static void
test_patterns(void **state)
{
	(void)state;
	static const struct {
		enum smtpp_dir dir;
		enum smtpp_verb verb;
		const char *line;
		const char *want; /* NULL: nothing */
	} t[] = {
		{SMTPP_S2C, SMTPP_EHLO, "250-XXXXXXXA", "starttls-capability-masked"},
		{SMTPP_S2C, SMTPP_EHLO, "250 XXXXXXXX", "starttls-capability-masked"},
		{SMTPP_S2C, SMTPP_EHLO, "250-STARTTLS", NULL},
		{SMTPP_S2C, SMTPP_EHLO, "250-XXXXA", NULL},               /* too short for a masked STARTTLS */
		{SMTPP_S2C, SMTPP_MAIL, "250-XXXXXXXA", NULL},            /* not an EHLO reply */
		{SMTPP_C2S, SMTPP_UNKNOWN, "XXXXXXXX", "starttls-command-masked"},
		{SMTPP_C2S, SMTPP_UNKNOWN, "XYZZY", NULL},
		{SMTPP_S2C, SMTPP_GREETING, "220 *****2***0*****", "smtp-banner-masked"},
		{SMTPP_S2C, SMTPP_GREETING, "220 mx.example.net ESMTP", NULL},
		{SMTPP_S2C, SMTPP_EHLO, "502 5.5.2 Error: command not recognized", "smtp-mailguard-reply"},
		{SMTPP_S2C, SMTPP_UNKNOWN, "502 5.5.2 Error: command not recognized", NULL}, /* Postfix */
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct wiresig w;
		wiresig_init(&w);
		line(&w, t[i].dir, t[i].verb, t[i].line, 7);
		uint64_t off = 0;
		const char *got = first(&w, &off);
		if (t[i].want) {
			assert_non_null(got);
			assert_string_equal(got, t[i].want);
			assert_int_equal(off, 7);
		} else if (got) {
			fail_msg("%s: raised %s", t[i].line, got);
		}
		wiresig_free(&w);
	}
}

static void
test_state(void **state)
{
	(void)state;
	struct smtpp_caps offered = {.seen = true, .starttls = true}, none = {.seen = true};
	struct wiresig w;

	/* W-7: a command after STARTTLS before its reply; benign: STARTTLS last */
	wiresig_init(&w);
	wiresig_command(&w, SMTPP_NOOP, 10, &offered);
	wiresig_command(&w, SMTPP_STARTTLS, 16, &offered);
	assert_int_equal(w.n, 0);
	wiresig_command(&w, SMTPP_RSET, 26, &offered);
	assert_string_equal(first(&w, NULL), "starttls-command-injection");
	assert_int_equal(w.an[0].offset, 26);
	assert_int_equal(w.an[0].dir, DP_DIR_C2S);
	wiresig_command(&w, SMTPP_RSET, 32, &offered); /* once per name */
	assert_int_equal(w.n, 1);
	wiresig_free(&w);

	/* W-5: 454 then MAIL in cleartext; benign: 454 then QUIT */
	for (int attack = 0; attack < 2; attack++) {
		wiresig_init(&w);
		wiresig_reply(&w, SMTPP_EHLO, 250, 0, &offered);
		wiresig_command(&w, SMTPP_STARTTLS, 5, &offered);
		wiresig_reply(&w, SMTPP_STARTTLS, 454, 40, &offered);
		wiresig_command(&w, attack ? SMTPP_MAIL : SMTPP_QUIT, 15, &offered);
		assert_int_equal(w.n, attack);
		if (attack)
			assert_string_equal(first(&w, NULL), "starttls-refused-then-cleartext");
		wiresig_free(&w);
	}

	/* W-3b: advertised, sent, "500"; not when it was never advertised */
	for (int adv = 0; adv < 2; adv++) {
		wiresig_init(&w);
		wiresig_reply(&w, SMTPP_EHLO, 250, 0, adv ? &offered : &none);
		wiresig_command(&w, SMTPP_STARTTLS, 5, adv ? &offered : &none);
		wiresig_reply(&w, SMTPP_STARTTLS, 500, 40, adv ? &offered : &none);
		assert_int_equal(w.n, adv);
		wiresig_free(&w);
	}

	/* W-19: offered, MAIL without STARTTLS; not after TLS */
	wiresig_init(&w);
	wiresig_reply(&w, SMTPP_EHLO, 250, 0, &offered);
	wiresig_command(&w, SMTPP_MAIL, 22, &offered);
	assert_string_equal(first(&w, NULL), "starttls-offered-not-used");
	wiresig_free(&w);
	wiresig_init(&w);
	wiresig_command(&w, SMTPP_STARTTLS, 5, &offered);
	wiresig_reply(&w, SMTPP_STARTTLS, 220, 40, &offered);
	wiresig_command(&w, SMTPP_MAIL, 22, &offered);
	assert_int_equal(w.n, 0);
	wiresig_free(&w);
}

static void
test_after_starttls(void **state)
{
	(void)state;
	static const struct {
		int dir;
		const char *bytes;
		size_t len;
		const char *want;
	} t[] = {
		{SMTPP_C2S, "\x16\x03\x01\x02\x00", 5, NULL},
		{SMTPP_C2S, "RSET\r\n", 6, "starttls-command-injection"},
		{SMTPP_C2S, "\x00\x01garbage", 9, "non-tls-after-starttls"},
		{SMTPP_S2C, "\x16\x03\x03\x00\x50", 5, NULL},
		{SMTPP_S2C, "\x15\x03\x03\x00\x02", 5, NULL}, /* an alert to the ClientHello */
		{SMTPP_S2C, "250 injected\r\n", 14, "starttls-response-injection"},
		{SMTPP_S2C, "\x80\x2e", 2, "non-tls-after-starttls"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		/* byte by byte: the classification does not depend on the split */
		struct wiresig w;
		wiresig_init(&w);
		for (size_t k = 0; k < t[i].len; k++)
			wiresig_tls_bytes(&w, (enum smtpp_dir)t[i].dir, (const uint8_t *)t[i].bytes + k, 1,
					  100 + k);
		wiresig_tls(&w, NULL);
		uint64_t off = 0;
		const char *got = first(&w, &off);
		if (t[i].want) {
			assert_non_null(got);
			assert_string_equal(got, t[i].want);
			assert_int_equal(off, 100);
		} else {
			assert_null(got);
		}
		wiresig_free(&w);
	}
}

static void
test_tls_facts(void **state)
{
	(void)state;
	struct tlsobs_facts f;
	struct wiresig w;
	/* W-10: the sentinel only when the wire's ClientHello offered more */
	for (int offered13 = 0; offered13 < 2; offered13++) {
		memset(&f, 0, sizeof(f));
		f.client_hello = f.server_hello = true;
		f.version = 0x0303;
		f.cipher = 0xc02f;
		f.version_offered_max = offered13 ? 0x0304 : 0x0303;
		f.downgrade_sentinel = 1;
		f.sh_offset = 77;
		wiresig_init(&w);
		wiresig_tls(&w, &f);
		assert_int_equal(w.n, offered13);
		wiresig_free(&w);
	}
	memset(&f, 0, sizeof(f));
	f.server_hello = true;
	f.version = 0x0301;
	f.cipher = 0x0005;
	wiresig_init(&w);
	wiresig_tls(&w, &f);
	assert_int_equal(w.n, 2);
	assert_string_equal(w.an[0].name, "tls-legacy-version");
	assert_string_equal(w.an[1].name, "tls-weak-cipher");
	wiresig_free(&w);
	/* W-12: a cleartext certificate alert from the client after a chain */
	memset(&f, 0, sizeof(f));
	f.server_hello = true;
	f.version = 0x0303;
	f.cipher = 0xc02f;
	f.cert_seen = true;
	f.dir[0].alert = (struct tlsobs_alert){.seen = true, .level = 2, .desc = 48, .offset = 900};
	wiresig_init(&w);
	wiresig_tls(&w, &f);
	assert_string_equal(first(&w, NULL), "tls-client-certificate-alert");
	wiresig_free(&w);
	f.dir[0].alert.desc = 40; /* handshake_failure: not about the certificate */
	wiresig_init(&w);
	wiresig_tls(&w, &f);
	assert_int_equal(w.n, 0);
	wiresig_free(&w);
	/* W-13: TLS 1.3, server flight, one client record; benign: Finished + data */
	for (unsigned crec = 1; crec <= 2; crec++) {
		memset(&f, 0, sizeof(f));
		f.server_hello = true;
		f.version = 0x0304;
		f.cipher = 0x1301;
		f.dir[1].appdata_records = 4;
		f.dir[0].appdata_records = crec;
		f.dir[0].first_appdata_offset = 600;
		wiresig_init(&w);
		wiresig_tls(&w, &f);
		assert_int_equal(w.n, crec == 1);
		wiresig_free(&w);
	}
}

static void
test_policy(void **state)
{
	(void)state;
	struct dp_session_record rec = {0};
	struct dp_anomaly out[WIRESIG_COUNT];
	struct wiresig_policy_in in = {.has_policy = false};
	rec.ehlo_seen = true;
	rec.nrcpt_domains = 1;
	assert_int_equal(wiresig_policy(&rec, &in, out, WIRESIG_COUNT), 0); /* no policy: nothing */
	in = (struct wiresig_policy_in){.has_policy = true, .enforce = true, .mx_match = true,
					.cert = STS_CERT_NOT_ASSESSABLE};
	rec.off.ehlo_reply = 40;
	rec.off.rcpt = 90;
	size_t n = wiresig_policy(&rec, &in, out, WIRESIG_COUNT);
	assert_int_equal(n, 2);
	assert_string_equal(out[0].name, "starttls-not-offered");
	assert_int_equal(out[0].offset, 40);
	assert_string_equal(out[1].name, "cleartext-rcpt-enforce-domain");
	assert_int_equal(out[1].offset, 90);
	assert_int_equal(wiresig_policy(&rec, &in, out, 1), 1); /* max is respected */
	/* TLS: no SNI, a bad certificate and the session went on */
	memset(&rec, 0, sizeof(rec));
	rec.ehlo_seen = rec.starttls_offered = true;
	rec.tls.client_hello = rec.tls.cert_seen = true;
	rec.tls_established = true;
	in.cert = STS_CERT_EXPIRED;
	in.mx_match = false;
	n = wiresig_policy(&rec, &in, out, WIRESIG_COUNT);
	assert_int_equal(n, 3);
	assert_string_equal(out[0].name, "mx-not-in-policy");
	assert_string_equal(out[1].name, "tls-sni-missing");
	assert_string_equal(out[2].name, "tls-cert-invalid-continued");
}

/* ---- through dp_session ------------------------------------------------------ */

struct got {
	char names[512];
	bool tls_client_hello, tls_server_hello, established;
	uint16_t version;
	char sni[64];
	int sessions;
};

static void
on_session(void *arg, const struct dp_session_record *rec)
{
	struct got *g = arg;
	g->sessions++;
	g->names[0] = '\0';
	size_t o = 0;
	for (size_t i = 0; i < rec->nanomalies; i++)
		o += (size_t)snprintf(g->names + o, sizeof(g->names) - o, "%s@%c%llu ",
				      rec->anomalies[i].name, rec->anomalies[i].dir == DP_DIR_C2S ? 'c' : 's',
				      (unsigned long long)rec->anomalies[i].offset);
	g->tls_client_hello = rec->tls.client_hello;
	g->tls_server_hello = rec->tls.server_hello;
	g->version = rec->tls.version;
	g->established = rec->tls_established;
	snprintf(g->sni, sizeof(g->sni), "%s", rec->tls.sni ? rec->tls.sni : "-");
}

/* A minimal ClientHello with SNI "mx.example.net", as one record. */
static size_t
make_ch(uint8_t *b)
{
	static const char name[] = "mx.example.net";
	size_t nl = sizeof(name) - 1, n = 0;
	uint8_t body[128];
	body[n++] = 3, body[n++] = 3;
	memset(body + n, 1, 32), n += 32;
	body[n++] = 0;                                     /* session id */
	body[n++] = 0, body[n++] = 2, body[n++] = 0xc0, body[n++] = 0x2f;
	body[n++] = 1, body[n++] = 0;                      /* compression */
	size_t ext = 4 + 2 + 1 + 2 + nl;
	body[n++] = 0, body[n++] = (uint8_t)ext;
	body[n++] = 0, body[n++] = 0;                      /* server_name */
	body[n++] = 0, body[n++] = (uint8_t)(ext - 4);
	body[n++] = 0, body[n++] = (uint8_t)(ext - 6);
	body[n++] = 0;
	body[n++] = 0, body[n++] = (uint8_t)nl;
	memcpy(body + n, name, nl), n += nl;
	const uint8_t hdr[] = {22, 3, 1, 0, (uint8_t)(n + 4), 1, 0, 0, (uint8_t)n};
	memcpy(b, hdr, sizeof(hdr));
	memcpy(b + sizeof(hdr), body, n);
	return sizeof(hdr) + n;
}

/* A ServerHello choosing TLS 1.2, then a ChangeCipherSpec. */
static size_t
make_sh(uint8_t *b)
{
	uint8_t body[64];
	size_t n = 0;
	body[n++] = 3, body[n++] = 3;
	memset(body + n, 2, 32), n += 32;
	body[n++] = 0;
	body[n++] = 0xc0, body[n++] = 0x2f, body[n++] = 0;
	const uint8_t hdr[] = {22, 3, 3, 0, (uint8_t)(n + 4), 2, 0, 0, (uint8_t)n};
	memcpy(b, hdr, sizeof(hdr));
	memcpy(b + sizeof(hdr), body, n);
	const uint8_t ccs[] = {20, 3, 3, 0, 1, 1};
	memcpy(b + sizeof(hdr) + n, ccs, sizeof(ccs));
	return sizeof(hdr) + n + sizeof(ccs);
}

static void
test_session_every_split(void **state)
{
	(void)state;
	/* STARTTLS with a pipelined RSET (W-7) and an injected reply (W-8), as the
	 * flights of a real exchange (each side's bytes in the order a capture
	 * shows them) */
	static uint8_t chb[256], shb[256];
	size_t chn = make_ch(chb), shn = make_sh(shb);
	const uint8_t ccs[] = {20, 3, 3, 0, 1, 1};
	const struct {
		enum dp_dir dir;
		const uint8_t *p;
		size_t n;
	} fl[] = {
		{DP_DIR_S2C, (const uint8_t *)"220 mx ESMTP\r\n", 14},
		{DP_DIR_C2S, (const uint8_t *)"EHLO a.example\r\n", 16},
		{DP_DIR_S2C, (const uint8_t *)"250-mx\r\n250 STARTTLS\r\n", 22},
		{DP_DIR_C2S, (const uint8_t *)"STARTTLS\r\nRSET\r\n", 16},
		{DP_DIR_S2C, (const uint8_t *)"220 go\r\n250 injected\r\n", 22},
		{DP_DIR_C2S, chb, chn},
		{DP_DIR_S2C, shb, shn},
		{DP_DIR_C2S, ccs, sizeof(ccs)},
	};
	size_t maxn = 0;
	for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++)
		maxn = fl[i].n > maxn ? fl[i].n : maxn;
	char want[512] = "";
	for (size_t cut = 0; cut <= maxn; cut++) {
		struct got g = {0};
		struct dp_session_config cfg = {.verify = false, .on_session = on_session, .arg = &g};
		struct dp_session_info info = {.client.port = 40000, .server.port = 25};
		struct dp_session *ss = dp_session_new(&cfg, &info);
		uint32_t seq[2] = {2, 101};
		dp_session_segment(ss, DP_DIR_C2S, 1, 0, 0x02, NULL, 0, 0);
		dp_session_segment(ss, DP_DIR_S2C, 100, 2, 0x12, NULL, 0, 0);
		for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++) {
			/* every flight in two segments cut at the same offset */
			size_t k = cut < fl[i].n ? cut : fl[i].n;
			dp_session_segment(ss, fl[i].dir, seq[fl[i].dir], 0, 0x18, fl[i].p, k, 0);
			dp_session_segment(ss, fl[i].dir, seq[fl[i].dir] + (uint32_t)k, 0, 0x18,
					   fl[i].p + k, fl[i].n - k, 0);
			seq[fl[i].dir] += (uint32_t)fl[i].n;
		}
		dp_session_end(ss, "capture-end");
		assert_int_equal(g.sessions, 1);
		assert_true(g.tls_client_hello);
		assert_true(g.tls_server_hello);
		assert_int_equal(g.version, 0x0303);
		assert_string_equal(g.sni, "mx.example.net");
		if (cut == 0)
			memcpy(want, g.names, sizeof(want));
		else
			assert_string_equal(g.names, want);
		dp_session_free(ss);
	}
	/* both injections, at their stream offsets */
	char exp[256];
	snprintf(exp, sizeof(exp), "starttls-command-injection@c%zu starttls-response-injection@s%zu ",
		 strlen("EHLO a.example\r\nSTARTTLS\r\n"),
		 strlen("220 mx ESMTP\r\n250-mx\r\n250 STARTTLS\r\n220 go\r\n"));
	assert_string_equal(want, exp);
}

struct rd {
	size_t n;
	uint64_t over;
	char first[64];
};

static void
on_session_rd(void *arg, const struct dp_session_record *rec)
{
	struct rd *r = arg;
	r->n = rec->nrcpt_domains;
	snprintf(r->first, sizeof(r->first), "%s", rec->nrcpt_domains ? rec->rcpt_domains[0] : "");
}

/* DP_SESSION_MAX_RCPT_DOMAINS distinct cleartext RCPT domains kept, then counted */
static void
test_limit_rcpt_domains(void **state)
{
	(void)state;
	for (unsigned past = 0; past < 2; past++) {
		struct rd r = {0};
		struct dp_session_config cfg = {.verify = false, .on_session = on_session_rd, .arg = &r};
		struct dp_session_info info = {.client.port = 40000, .server.port = 25};
		struct dp_session *ss = dp_session_new(&cfg, &info);
		dp_session_segment(ss, DP_DIR_C2S, 1, 0, 0x02, NULL, 0, 0);
		static char cmds[8192];
		size_t o = (size_t)snprintf(cmds, sizeof(cmds), "EHLO a\r\nMAIL FROM:<a@b>\r\n");
		unsigned n = DP_SESSION_MAX_RCPT_DOMAINS + past;
		for (unsigned i = 0; i < n; i++) /* each domain twice, in two cases: kept once */
			o += (size_t)snprintf(cmds + o, sizeof(cmds) - o,
					      "RCPT TO:<u@D%u.Example>\r\nRCPT TO:<v@d%u.example>\r\n", i, i);
		dp_session_segment(ss, DP_DIR_C2S, 2, 0, 0x18, (const uint8_t *)cmds, o, 0);
		dp_session_end(ss, "capture-end");
		assert_int_equal(r.n, DP_SESSION_MAX_RCPT_DOMAINS);
		assert_int_equal(dp_session_counters(ss)->rcpt_domains_over, past ? 2 : 0);
		assert_string_equal(r.first, "d0.example");
		dp_session_free(ss);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_db),
		cmocka_unit_test(test_patterns),
		cmocka_unit_test(test_state),
		cmocka_unit_test(test_after_starttls),
		cmocka_unit_test(test_tls_facts),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_session_every_split),
		cmocka_unit_test(test_limit_rcpt_domains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
