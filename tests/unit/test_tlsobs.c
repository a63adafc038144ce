/* tlsobs: hellos, certificates, records split anywhere, every limit at and
 * past, junk before the first record, gaps. Messages are built here byte by
 * byte (RFC 5246 / RFC 8446 layouts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tlsobs.h"

/* ---- a byte builder -------------------------------------------------------- */

struct buf {
	uint8_t *p;
	size_t n, cap;
};

static void
put(struct buf *b, const void *d, size_t n)
{
	if (n == 0)
		return; /* an empty body: d may be NULL */
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void
u8(struct buf *b, unsigned v)
{
	uint8_t x = (uint8_t)v;
	put(b, &x, 1);
}

static void
u16(struct buf *b, unsigned v)
{
	u8(b, v >> 8);
	u8(b, v);
}

static void
u24(struct buf *b, size_t v)
{
	u8(b, (unsigned)(v >> 16));
	u8(b, (unsigned)(v >> 8));
	u8(b, (unsigned)v);
}

static void
fill(struct buf *b, uint8_t c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		u8(b, c);
}

/* A handshake message (type + 24-bit length + body). */
static void
hs(struct buf *out, unsigned type, const struct buf *body)
{
	u8(out, type);
	u24(out, body->n);
	put(out, body->p, body->n);
}

/* Handshake bytes cut into records of at most max bytes. */
static void
records(struct buf *out, unsigned type, const struct buf *hsb, size_t max)
{
	for (size_t off = 0; off < hsb->n; off += max) {
		size_t k = hsb->n - off < max ? hsb->n - off : max;
		u8(out, type);
		u16(out, 0x0303);
		u16(out, (unsigned)k);
		put(out, hsb->p + off, k);
	}
}

/* ClientHello body. sni NULL: none; sni_len overrides strlen; pad: bytes of a
 * padding extension (21) so tests can size the body exactly (-1: none). */
static void
client_hello(struct buf *b, const char *sni, size_t sni_len, bool versions, bool ticket, long pad)
{
	u16(b, 0x0303);
	fill(b, 0xaa, 32);
	u8(b, 32);
	fill(b, 0x5e, 32); /* session id */
	u16(b, 4);
	u16(b, 0x1301);
	u16(b, 0xc02f);
	u8(b, 1);
	u8(b, 0);
	struct buf e = {0};
	if (sni) {
		u16(&e, 0);
		u16(&e, (unsigned)(sni_len + 5));
		u16(&e, (unsigned)(sni_len + 3));
		u8(&e, 0);
		u16(&e, (unsigned)sni_len);
		put(&e, sni, sni_len);
	}
	if (versions) {
		u16(&e, 43);
		u16(&e, 7);
		u8(&e, 6);
		u16(&e, 0x3a3a); /* GREASE: never the maximum */
		u16(&e, 0x0304);
		u16(&e, 0x0303);
	}
	if (ticket) {
		u16(&e, 35);
		u16(&e, 4);
		fill(&e, 0x77, 4);
	}
	if (pad >= 0) {
		u16(&e, 21);
		u16(&e, (unsigned)pad);
		fill(&e, 0, (size_t)pad);
	}
	u16(b, (unsigned)e.n);
	put(b, e.p, e.n);
	free(e.p);
}

/* ServerHello body; version13: supported_versions = 1.3; echo: the CH's id. */
static void
server_hello(struct buf *b, unsigned legacy, bool version13, bool echo, const char *tail8)
{
	u16(b, legacy);
	fill(b, 0xbb, 24);
	if (tail8)
		put(b, tail8, 8);
	else
		fill(b, 0xbb, 8);
	u8(b, 32);
	fill(b, echo ? 0x5e : 0x11, 32);
	u16(b, 0xc02f);
	u8(b, 0);
	if (version13) {
		u16(b, 6);
		u16(b, 43);
		u16(b, 2);
		u16(b, 0x0304);
	}
}

/* Certificate body: n certificates of len filler bytes each. */
static void
certificate(struct buf *b, unsigned n, size_t len)
{
	u24(b, n * (len + 3));
	for (unsigned i = 0; i < n; i++) {
		u24(b, len);
		fill(b, (uint8_t)(0x30 + i), len);
	}
}

static void
freeb(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* A full TLS 1.2 exchange: [c2s bytes], [s2c bytes]. */
static void
tls12(struct buf *c, struct buf *s, bool echo)
{
	struct buf body = {0}, h = {0};
	client_hello(&body, "mx.example.net", 14, true, true, -1);
	hs(&h, 1, &body);
	records(c, 22, &h, 16384);
	freeb(&body);
	freeb(&h);
	server_hello(&body, 0x0303, false, echo, NULL);
	hs(&h, 2, &body);
	freeb(&body);
	if (!echo) {
		certificate(&body, 2, 300);
		hs(&h, 11, &body);
		freeb(&body);
		hs(&h, 14, &body); /* ServerHelloDone, empty (an abbreviated handshake has none) */
	}
	records(s, 22, &h, 16384);
	freeb(&h);
	/* CCS + an encrypted Finished both ways */
	const uint8_t ccs[] = {20, 3, 3, 0, 1, 1};
	const uint8_t fin[] = {22, 3, 3, 0, 4, 9, 9, 9, 9};
	put(c, ccs, sizeof(ccs));
	put(c, fin, sizeof(fin));
	put(s, ccs, sizeof(ccs));
	put(s, fin, sizeof(fin));
}

static void
check12(const struct tlsobs *t, bool resumed)
{
	const struct tlsobs_facts *f = tlsobs_facts(t);
	assert_true(f->client_hello);
	assert_true(f->server_hello);
	assert_int_equal(f->version_offered_max, 0x0304);
	assert_int_equal(f->ch_legacy_version, 0x0303);
	assert_int_equal(f->version, 0x0303);
	assert_true(f->sni_present);
	assert_string_equal(f->sni, "mx.example.net");
	assert_true(f->ch_session_id);
	assert_true(f->ch_ticket);
	assert_int_equal(f->resumed, resumed);
	assert_int_equal(f->cert_seen, !resumed);
	assert_int_equal(f->ch_offset, 105); /* the base given to tlsobs_init + the record header */
	assert_int_equal(f->sh_offset, 205);
	if (!resumed) {
		assert_int_equal(f->ncerts, 2);
		assert_int_equal(f->cert[0].len, 300);
		assert_int_equal(tlsobs_chain(t)[f->cert[1].off], 0x31);
	}
	assert_true(tlsobs_established(t));
}

static void
test_tls12_every_split(void **state)
{
	(void)state;
	for (int echo = 0; echo < 2; echo++) {
		struct buf c = {0}, s = {0};
		tls12(&c, &s, echo);
		/* two pieces cut at every offset, per direction */
		for (size_t cut = 0; cut <= c.n || cut <= s.n; cut++) {
			struct tlsobs t;
			tlsobs_init(&t, 100, 200);
			size_t kc = cut < c.n ? cut : c.n, ks = cut < s.n ? cut : s.n;
			tlsobs_feed(&t, TLSOBS_C2S, c.p, kc);
			tlsobs_feed(&t, TLSOBS_S2C, s.p, ks);
			tlsobs_feed(&t, TLSOBS_C2S, c.p + kc, c.n - kc);
			tlsobs_feed(&t, TLSOBS_S2C, s.p + ks, s.n - ks);
			check12(&t, echo);
			tlsobs_free(&t);
		}
		/* one byte at a time */
		struct tlsobs t;
		tlsobs_init(&t, 100, 200);
		for (size_t i = 0; i < c.n || i < s.n; i++) {
			if (i < c.n)
				tlsobs_feed(&t, TLSOBS_C2S, c.p + i, 1);
			if (i < s.n)
				tlsobs_feed(&t, TLSOBS_S2C, s.p + i, 1);
		}
		check12(&t, echo);
		tlsobs_free(&t);
		freeb(&c);
		freeb(&s);
	}
}

/* A ClientHello carried in 1-byte records, and two messages in one record. */
static void
test_records_and_messages(void **state)
{
	(void)state;
	struct buf body = {0}, h = {0}, c = {0}, s = {0};
	client_hello(&body, "a.example", 9, false, false, -1);
	hs(&h, 1, &body);
	records(&c, 22, &h, 1);
	struct tlsobs t;
	tlsobs_init(&t, 0, 0);
	tlsobs_feed(&t, TLSOBS_C2S, c.p, c.n);
	const struct tlsobs_facts *f = tlsobs_facts(&t);
	assert_true(f->client_hello);
	assert_string_equal(f->sni, "a.example");
	assert_int_equal(f->version_offered_max, 0x0303); /* no supported_versions */
	assert_int_equal(f->dir[0].records, h.n);
	freeb(&body);
	freeb(&h);
	/* HelloRetryRequest, then the real ServerHello (TLS 1.3), in one record */
	static const char hrr_tail[8] = {(char)0x07, (char)0x9e, (char)0x09, (char)0xe2,
					 (char)0xc8, (char)0xa8, (char)0x33, (char)0x9c};
	struct buf hrr = {0};
	u16(&hrr, 0x0303);
	const uint8_t hrr_random[24] = {0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11,
					0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
					0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e};
	put(&hrr, hrr_random, 24);
	put(&hrr, hrr_tail, 8);
	u8(&hrr, 0);
	u16(&hrr, 0x1301);
	u8(&hrr, 0);
	hs(&h, 2, &hrr);
	server_hello(&body, 0x0303, true, false, "DOWNGRD\x01");
	hs(&h, 2, &body);
	records(&s, 22, &h, 16384);
	tlsobs_feed(&t, TLSOBS_S2C, s.p, s.n);
	assert_true(f->hello_retry);
	assert_true(f->server_hello);
	assert_int_equal(f->version, 0x0304);
	assert_int_equal(f->downgrade_sentinel, 1);
	assert_true(f->dir[1].encrypted);
	assert_false(f->resumed);
	tlsobs_free(&t);
	freeb(&body);
	freeb(&h);
	freeb(&hrr);
	freeb(&c);
	freeb(&s);
}

static void
test_alerts_and_resumption(void **state)
{
	(void)state;
	/* full SH without the id echo, then CCS with no Certificate: abbreviated */
	struct buf body = {0}, h = {0}, s = {0}, c = {0};
	client_hello(&body, NULL, 0, false, true, -1);
	hs(&h, 1, &body);
	records(&c, 22, &h, 16384);
	freeb(&body);
	freeb(&h);
	server_hello(&body, 0x0303, false, false, NULL);
	hs(&h, 2, &body);
	records(&s, 22, &h, 16384);
	const uint8_t ccs[] = {20, 3, 3, 0, 1, 1};
	put(&s, ccs, sizeof(ccs));
	struct tlsobs t;
	tlsobs_init(&t, 0, 0);
	tlsobs_feed(&t, TLSOBS_C2S, c.p, c.n);
	tlsobs_feed(&t, TLSOBS_S2C, s.p, s.n);
	const struct tlsobs_facts *f = tlsobs_facts(&t);
	assert_false(f->sni_present);
	assert_true(f->resumed);
	assert_false(f->cert_seen);
	/* a cleartext alert from the client: unknown_ca */
	const uint8_t alert[] = {21, 3, 3, 0, 2, 2, 48};
	uint64_t at = c.n;
	tlsobs_feed(&t, TLSOBS_C2S, alert, 3);
	tlsobs_feed(&t, TLSOBS_C2S, alert + 3, 4);
	assert_true(f->dir[0].alert.seen);
	assert_false(f->dir[0].alert.encrypted);
	assert_int_equal(f->dir[0].alert.desc, 48);
	assert_int_equal(f->dir[0].alert.offset, at);
	assert_false(tlsobs_established(&t));
	tlsobs_free(&t);
	freeb(&body);
	freeb(&h);
	freeb(&s);
	freeb(&c);
}

/* <= 1.2 full handshake with an anonymous suite: SH, ServerKeyExchange, SHD,
 * no Certificate: not a resumption; close_notify after both CCS is no failure */
static void
test_anonymous(void **state)
{
	(void)state;
	struct buf body = {0}, h = {0}, s = {0}, c = {0};
	server_hello(&body, 0x0303, false, false, NULL);
	hs(&h, 2, &body);
	freeb(&body);
	fill(&body, 0x44, 100);
	hs(&h, 12, &body);
	freeb(&body);
	hs(&h, 14, &body);
	records(&s, 22, &h, 16384);
	const uint8_t ccs[] = {20, 3, 3, 0, 1, 1}, close_notify[] = {21, 3, 3, 0, 2, 0x99, 0x98};
	const uint8_t first[] = {22, 3, 3, 0, 4, 0, 0, 0, 0}; /* the client's first record: a handshake */
	put(&s, ccs, sizeof(ccs));
	put(&c, first, sizeof(first));
	put(&c, ccs, sizeof(ccs));
	put(&c, close_notify, sizeof(close_notify)); /* encrypted: its bytes are not an alert */
	struct tlsobs t;
	tlsobs_init(&t, 0, 0);
	tlsobs_feed(&t, TLSOBS_S2C, s.p, s.n);
	tlsobs_feed(&t, TLSOBS_C2S, c.p, c.n);
	assert_true(t.f.anonymous);
	assert_false(t.f.resumed);
	assert_false(t.f.cert_seen);
	assert_true(t.f.dir[0].alert.encrypted);
	assert_true(tlsobs_established(&t));
	tlsobs_free(&t);
	freeb(&h);
	freeb(&s);
	freeb(&c);
}

static void
test_junk_and_errors(void **state)
{
	(void)state;
	struct buf body = {0}, h = {0}, s = {0};
	server_hello(&body, 0x0303, false, false, NULL);
	hs(&h, 2, &body);
	put(&s, "250 injected\r\n\x16\x03", 16); /* junk, then a near-miss header prefix */
	records(&s, 22, &h, 16384);
	for (size_t step = 1; step <= s.n; step++) {
		struct tlsobs t;
		tlsobs_init(&t, 0, 50);
		for (size_t o = 0; o < s.n; o += step)
			tlsobs_feed(&t, TLSOBS_S2C, s.p + o, s.n - o < step ? s.n - o : step);
		const struct tlsobs_facts *f = tlsobs_facts(&t);
		assert_int_equal(f->dir[1].junk_bytes, 16);
		assert_int_equal(f->dir[1].junk_offset, 50);
		assert_int_equal(f->dir[1].first_record_offset, 66);
		assert_true(f->server_hello);
		assert_false(f->dir[1].error);
		tlsobs_free(&t);
	}
	/* a bad header after TLS began stops the direction */
	struct tlsobs t;
	tlsobs_init(&t, 0, 0);
	tlsobs_feed(&t, TLSOBS_S2C, s.p + 16, s.n - 16);
	tlsobs_feed(&t, TLSOBS_S2C, (const uint8_t *)"HTTP/1.1", 8);
	assert_true(t.f.dir[1].error);
	assert_string_equal(t.f.dir[1].error_reason, "bad-record-header");
	assert_int_equal(t.f.dir[1].error_offset, s.n - 16);
	/* a gap stops it too */
	tlsobs_gap(&t, TLSOBS_C2S, 10);
	assert_string_equal(t.f.dir[0].error_reason, "capture-gap");
	tlsobs_free(&t);
	freeb(&body);
	freeb(&h);
	freeb(&s);
}

/* ---- limits, each at and past ------------------------------------------------ */

static void
test_limit_record(void **state)
{
	(void)state;
	for (unsigned past = 0; past < 2; past++) {
		struct buf r = {0};
		/* the first record must be a handshake: an empty HelloRequest */
		const uint8_t first[] = {22, 3, 3, 0, 4, 0, 0, 0, 0};
		put(&r, first, sizeof(first));
		u8(&r, 23);
		u16(&r, 0x0303);
		u16(&r, TLSOBS_MAX_RECORD + past);
		fill(&r, 0, TLSOBS_MAX_RECORD + past);
		struct tlsobs t;
		tlsobs_init(&t, 0, 0);
		tlsobs_feed(&t, TLSOBS_C2S, r.p, r.n);
		assert_int_equal(t.f.record_over, past);
		assert_int_equal(t.f.dir[0].error, past);
		assert_int_equal(t.f.dir[0].appdata_records, 1 - past);
		tlsobs_free(&t);
		freeb(&r);
	}
}

static void
test_limit_hello(void **state)
{
	(void)state;
	for (unsigned past = 0; past < 2; past++) {
		struct buf body = {0}, h = {0}, c = {0};
		client_hello(&body, "x.example", 9, false, false, 0);
		size_t pad = TLSOBS_MAX_HELLO + past - body.n;
		freeb(&body);
		client_hello(&body, "x.example", 9, false, false, (long)pad);
		assert_int_equal(body.n, TLSOBS_MAX_HELLO + past);
		hs(&h, 1, &body);
		records(&c, 22, &h, 16384);
		struct tlsobs t;
		tlsobs_init(&t, 0, 0);
		tlsobs_feed(&t, TLSOBS_C2S, c.p, c.n);
		assert_int_equal(t.f.hello_over, past);
		assert_int_equal(t.f.client_hello, !past);
		assert_int_equal(t.f.malformed, 0);
		tlsobs_free(&t);
		freeb(&body);
		freeb(&h);
		freeb(&c);
	}
}

static void
test_limit_chain_and_certs(void **state)
{
	(void)state;
	for (unsigned past = 0; past < 2; past++) {
		struct buf sh = {0}, body = {0}, h = {0}, s = {0};
		server_hello(&sh, 0x0303, false, false, NULL);
		hs(&h, 2, &sh);
		certificate(&body, 1, TLSOBS_MAX_CHAIN + past - 6);
		assert_int_equal(body.n, TLSOBS_MAX_CHAIN + past);
		hs(&h, 11, &body);
		records(&s, 22, &h, 16384);
		struct tlsobs t;
		tlsobs_init(&t, 0, 0);
		tlsobs_feed(&t, TLSOBS_S2C, s.p, s.n);
		assert_int_equal(t.f.chain_over, past);
		assert_int_equal(t.f.cert_seen, !past);
		tlsobs_free(&t);
		freeb(&sh);
		freeb(&body);
		freeb(&h);
		freeb(&s);
	}
	for (unsigned past = 0; past < 2; past++) {
		struct buf sh = {0}, body = {0}, h = {0}, s = {0};
		server_hello(&sh, 0x0303, false, false, NULL);
		hs(&h, 2, &sh);
		certificate(&body, TLSOBS_MAX_CERTS + past, 40);
		hs(&h, 11, &body);
		records(&s, 22, &h, 16384);
		struct tlsobs t;
		tlsobs_init(&t, 0, 0);
		tlsobs_feed(&t, TLSOBS_S2C, s.p, s.n);
		assert_int_equal(t.f.certs_over, past);
		assert_int_equal(t.f.ncerts, TLSOBS_MAX_CERTS);
		tlsobs_free(&t);
		freeb(&sh);
		freeb(&body);
		freeb(&h);
		freeb(&s);
	}
}

static void
test_limit_sni(void **state)
{
	(void)state;
	char name[TLSOBS_MAX_SNI + 1];
	memset(name, 'a', sizeof(name));
	for (unsigned past = 0; past < 2; past++) {
		struct buf body = {0}, h = {0}, c = {0};
		client_hello(&body, name, TLSOBS_MAX_SNI + past, false, false, -1);
		hs(&h, 1, &body);
		records(&c, 22, &h, 16384);
		struct tlsobs t;
		tlsobs_init(&t, 0, 0);
		tlsobs_feed(&t, TLSOBS_C2S, c.p, c.n);
		assert_int_equal(t.f.sni_over, past);
		assert_int_equal(strlen(t.f.sni), TLSOBS_MAX_SNI);
		tlsobs_free(&t);
		freeb(&body);
		freeb(&h);
		freeb(&c);
	}
}

static void
test_limit_junk(void **state)
{
	(void)state;
	for (unsigned past = 0; past < 2; past++) {
		struct buf s = {0};
		fill(&s, 'j', TLSOBS_MAX_JUNK + past);
		const uint8_t alert[] = {21, 3, 3, 0, 2, 2, 40};
		put(&s, alert, sizeof(alert));
		struct tlsobs t;
		tlsobs_init(&t, 0, 0);
		tlsobs_feed(&t, TLSOBS_S2C, s.p, s.n);
		assert_int_equal(t.f.junk_over, past);
		assert_int_equal(t.f.dir[1].alert.seen, !past);
		tlsobs_free(&t);
		freeb(&s);
	}
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(tlsobs_version_name(0x0303), "TLSv1.2");
	assert_string_equal(tlsobs_version_name(0x0304), "TLSv1.3");
	assert_string_equal(tlsobs_version_name(0x0301), "TLSv1.0");
	assert_string_equal(tlsobs_version_name(0x7f17), "unknown");
	assert_true(tlsobs_weak_cipher(0x0005));  /* RSA_WITH_RC4_128_SHA */
	assert_true(tlsobs_weak_cipher(0x00a7));  /* DH_anon_WITH_AES_256_GCM_SHA384 (Postfix "may") */
	assert_true(tlsobs_weak_cipher(0x0000));  /* NULL_WITH_NULL_NULL */
	assert_true(tlsobs_weak_cipher(0xc018));  /* ECDH_anon_WITH_AES_128_CBC_SHA */
	assert_false(tlsobs_weak_cipher(0xc02f)); /* ECDHE_RSA_WITH_AES_128_GCM_SHA256 */
	assert_false(tlsobs_weak_cipher(0x1301)); /* TLS_AES_128_GCM_SHA256 */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls12_every_split),
		cmocka_unit_test(test_records_and_messages),
		cmocka_unit_test(test_alerts_and_resumption),
		cmocka_unit_test(test_anonymous),
		cmocka_unit_test(test_junk_and_errors),
		cmocka_unit_test(test_limit_record),
		cmocka_unit_test(test_limit_hello),
		cmocka_unit_test(test_limit_chain_and_certs),
		cmocka_unit_test(test_limit_sni),
		cmocka_unit_test(test_limit_junk),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
