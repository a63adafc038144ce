/* pkt: a table of crafted frames (VLAN/QinQ, IPv4 options and fragments,
 * IPv6 extension headers, TCP options), each with the reason and payload the
 * parser must give, plus the limits PKT_MAX_VLAN and PKT_MAX_EXT_HDRS at and
 * past the limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pkt.h"

#define MAXF 4096

struct spec {
	const char *name;
	unsigned nvlan;        /* tags to push */
	uint16_t tag_type;     /* 0: 0x8100 for every tag, else the outer tag's type */
	uint16_t ethertype;    /* 0: from ipver */
	int ipver;             /* 4 or 6 */
	unsigned v4_opt_words; /* IPv4 options, 4-byte words */
	uint16_t v4_frag;      /* IPv4 flags+offset field */
	const uint8_t *v6_ext; /* IPv6 extension header types, in order */
	unsigned v6_next;
	uint16_t v6_frag; /* for a fragment ext header: offset<<3 | M */
	uint8_t proto;    /* 0: TCP */
	unsigned tcp_opt_words;
	uint8_t bad_doff; /* nonzero: data offset field */
	unsigned payload;
	unsigned pad;     /* Ethernet padding after the datagram */
	unsigned cut;     /* bytes cut from the end of the frame */
	int ip_len_delta; /* added to the IP length field */
	/* expected */
	enum pkt_reason want;
	unsigned want_payload;
};

static void
wr16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static size_t
build(const struct spec *s, uint8_t *f)
{
	memset(f, 0, MAXF);
	memset(f, 0x02, 12);
	size_t off = 12;
	for (unsigned i = 0; i < s->nvlan; i++) {
		wr16(f + off, i == 0 && s->tag_type ? s->tag_type : 0x8100);
		wr16(f + off + 2, 100 + i);
		off += 4;
	}
	wr16(f + off, s->ethertype ? s->ethertype : s->ipver == 6 ? 0x86dd : 0x0800);
	off += 2;
	uint8_t *ip = f + off;
	size_t l4;
	uint8_t proto = s->proto ? s->proto : 6;
	if (s->ipver == 4) {
		size_t ihl = 20 + 4 * s->v4_opt_words;
		ip[0] = (uint8_t)(0x40 | ihl / 4);
		ip[8] = 64;
		ip[9] = proto;
		wr16(ip + 4, 0x1234);
		wr16(ip + 6, s->v4_frag);
		ip[12] = 192, ip[13] = 0, ip[14] = 2, ip[15] = 1;
		ip[16] = 192, ip[17] = 0, ip[18] = 2, ip[19] = 2;
		for (unsigned i = 0; i < s->v4_opt_words; i++)
			ip[20 + 4 * i] = 1; /* NOPs */
		l4 = ihl;
	} else {
		ip[0] = 0x60;
		ip[7] = 64;
		ip[8] = 0x20, ip[9] = 0x01, ip[10] = 0x0d, ip[11] = 0xb8, ip[23] = 1;
		ip[24] = 0x20, ip[25] = 0x01, ip[26] = 0x0d, ip[27] = 0xb8, ip[39] = 2;
		uint8_t *nh = ip + 6;
		l4 = 40;
		for (unsigned i = 0; i < s->v6_next; i++) {
			*nh = s->v6_ext[i];
			uint8_t *h = ip + l4;
			nh = h;
			if (s->v6_ext[i] == 44) {
				wr16(h + 2, s->v6_frag);
				h[7] = 9;
				l4 += 8;
			} else if (s->v6_ext[i] == 51) {
				h[1] = 1; /* (1 + 2) * 4 = 12 */
				l4 += 12;
			} else {
				h[1] = 1; /* (1 + 1) * 8 = 16 */
				l4 += 16;
			}
		}
		*nh = proto;
	}
	uint8_t *t = ip + l4;
	size_t thl = 20 + 4 * s->tcp_opt_words;
	wr16(t, 40000);
	wr16(t + 2, 25);
	t[4] = 1, t[7] = 2;
	t[8] = 3, t[11] = 4;
	t[12] = s->bad_doff ? (uint8_t)(s->bad_doff << 4) : (uint8_t)(thl / 4 << 4);
	t[13] = 0x18;
	for (unsigned i = 0; i < s->tcp_opt_words * 4; i++)
		t[20 + i] = 1;
	for (unsigned i = 0; i < s->payload; i++)
		t[thl + i] = (uint8_t)('a' + i % 26);
	size_t iplen = l4 + thl + s->payload;
	if (s->ipver == 4)
		wr16(ip + 2, (unsigned)((int)iplen + s->ip_len_delta));
	else
		wr16(ip + 4, (unsigned)((int)iplen - 40 + s->ip_len_delta));
	size_t total = off + iplen + s->pad;
	return total - s->cut;
}

static const uint8_t ext_hop[] = {0};
static const uint8_t ext_all[] = {0, 60, 43, 51, 60};
static const uint8_t ext_frag[] = {44};
static const uint8_t ext_hop_late[] = {60, 0};
static const uint8_t ext_8[] = {0, 60, 60, 60, 60, 60, 60, 60};
static const uint8_t ext_9[] = {0, 60, 60, 60, 60, 60, 60, 60, 60};

static const struct spec cases[] = {
        {"v4 plain", .ipver = 4, .payload = 100, .want = PKT_TCP, .want_payload = 100},
        {"v4 empty payload", .ipver = 4, .want = PKT_TCP},
        {"v4 padding ignored", .ipver = 4, .payload = 2, .pad = 4, .want = PKT_TCP,
         .want_payload = 2},
        {"v4 options", .ipver = 4, .v4_opt_words = 10, .payload = 7, .want = PKT_TCP,
         .want_payload = 7},
        {"v4 tcp options", .ipver = 4, .tcp_opt_words = 10, .payload = 7, .want = PKT_TCP,
         .want_payload = 7},
        {"v4 DF is not a fragment", .ipver = 4, .v4_frag = 0x4000, .payload = 5, .want = PKT_TCP,
         .want_payload = 5},
        {"v4 first fragment", .ipver = 4, .v4_frag = 0x2000, .payload = 64, .want = PKT_FRAGMENT},
        {"v4 last fragment", .ipver = 4, .v4_frag = 0x0010, .payload = 64, .want = PKT_FRAGMENT},
        {"v4 udp", .ipver = 4, .proto = 17, .payload = 8, .want = PKT_NOT_TCP},
        {"v4 length past frame", .ipver = 4, .payload = 10, .ip_len_delta = 1,
         .want = PKT_TRUNCATED},
        {"v4 length below header", .ipver = 4, .payload = 10, .ip_len_delta = -31,
         .want = PKT_BAD_IPV4},
        {"v4 cut in tcp", .ipver = 4, .payload = 0, .cut = 5, .ip_len_delta = -5,
         .want = PKT_TRUNCATED},
        {"tcp doff < 5", .ipver = 4, .payload = 10, .bad_doff = 4, .want = PKT_BAD_TCP},
        {"tcp doff past segment", .ipver = 4, .payload = 10, .bad_doff = 15, .want = PKT_BAD_TCP},
        {"vlan", .ipver = 4, .nvlan = 1, .payload = 3, .want = PKT_TCP, .want_payload = 3},
        {"qinq 88a8", .ipver = 6, .nvlan = 2, .tag_type = 0x88a8, .payload = 3, .want = PKT_TCP,
         .want_payload = 3},
        {"three tags", .ipver = 4, .nvlan = 3, .payload = 3, .want = PKT_VLAN_DEPTH},
        {"arp", .ipver = 4, .ethertype = 0x0806, .want = PKT_NOT_IP},
        {"v6 plain", .ipver = 6, .payload = 33, .want = PKT_TCP, .want_payload = 33},
        {"v6 hop-by-hop", .ipver = 6, .v6_ext = ext_hop, .v6_next = 1, .payload = 9,
         .want = PKT_TCP, .want_payload = 9},
        {"v6 many ext", .ipver = 6, .v6_ext = ext_all, .v6_next = 5, .payload = 9, .want = PKT_TCP,
         .want_payload = 9},
        {"v6 hop-by-hop not first", .ipver = 6, .v6_ext = ext_hop_late, .v6_next = 2, .payload = 9,
         .want = PKT_BAD_IPV6},
        {"v6 8 ext (limit)", .ipver = 6, .v6_ext = ext_8, .v6_next = 8, .payload = 9,
         .want = PKT_TCP, .want_payload = 9},
        {"v6 9 ext (past)", .ipver = 6, .v6_ext = ext_9, .v6_next = 9, .payload = 9,
         .want = PKT_EXT_HDRS},
        {"v6 atomic fragment", .ipver = 6, .v6_ext = ext_frag, .v6_next = 1, .v6_frag = 0,
         .payload = 9, .want = PKT_TCP, .want_payload = 9},
        {"v6 first fragment", .ipver = 6, .v6_ext = ext_frag, .v6_next = 1, .v6_frag = 1,
         .payload = 9, .want = PKT_FRAGMENT},
        {"v6 later fragment", .ipver = 6, .v6_ext = ext_frag, .v6_next = 1, .v6_frag = 0x100,
         .payload = 9, .want = PKT_FRAGMENT},
        {"v6 udp", .ipver = 6, .proto = 17, .payload = 9, .want = PKT_NOT_TCP},
        {"v6 jumbo length 0", .ipver = 6, .payload = 0, .ip_len_delta = -20, .want = PKT_BAD_IPV6},
        {"v6 length past frame", .ipver = 6, .payload = 4, .ip_len_delta = 1,
         .want = PKT_TRUNCATED},
        {"ethertype says v6, v4 inside", .ipver = 4, .ethertype = 0x86dd, .payload = 40,
         .want = PKT_BAD_IPV6},
};

static void
test_table(void **state)
{
	(void)state;
	static uint8_t f[MAXF];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct spec *s = &cases[i];
		size_t n = build(s, f);
		struct pkt_info in;
		enum pkt_reason r = pkt_parse(f, n, &in);
		if (r != s->want || in.reason != r)
			fail_msg("%s: got %s, want %s", s->name, pkt_reason_name(r),
			         pkt_reason_name(s->want));
		if (r != PKT_TCP)
			continue;
		if (in.payload_len != s->want_payload)
			fail_msg("%s: payload %zu, want %u", s->name, in.payload_len,
			         s->want_payload);
		assert_int_equal(in.sport, 40000);
		assert_int_equal(in.dport, 25);
		assert_int_equal(in.seq, 0x01000002);
		assert_int_equal(in.ack, 0x03000004);
		assert_int_equal(in.flags, 0x18);
		assert_int_equal(in.nvlan, s->nvlan);
		assert_int_equal(in.ip_version, s->ipver);
		for (size_t k = 0; k < in.payload_len; k++)
			assert_int_equal(in.payload[k], 'a' + k % 26);
		if (s->ipver == 4) {
			static const uint8_t want_src[16] = {0, 0, 0,    0,    0,   0, 0, 0,
			                                     0, 0, 0xff, 0xff, 192, 0, 2, 1};
			assert_memory_equal(in.src, want_src, 16);
			assert_int_equal(in.dst[15], 2);
		} else {
			assert_int_equal(in.src[0], 0x20);
			assert_int_equal(in.src[15], 1);
			assert_int_equal(in.dst[15], 2);
		}
	}
}

static void
test_fragment_fields(void **state)
{
	(void)state;
	static uint8_t f[MAXF];
	struct spec s = {"", .ipver = 4, .v4_frag = 0x2000 | 185, .payload = 20};
	struct pkt_info in;
	assert_int_equal(pkt_parse(f, build(&s, f), &in), PKT_FRAGMENT);
	assert_true(in.frag_more);
	assert_int_equal(in.frag_offset, 185 * 8);
	assert_int_equal(in.frag_id, 0x1234);
	assert_int_equal(in.l3_off, 14);
	struct spec s6 = {
	        "",         .ipver = 6,  .v6_ext = ext_frag, .v6_next = 1, .v6_frag = (7 << 3) | 1,
	        .nvlan = 1, .payload = 9};
	assert_int_equal(pkt_parse(f, build(&s6, f), &in), PKT_FRAGMENT);
	assert_true(in.frag_more);
	assert_int_equal(in.frag_offset, 56);
	assert_int_equal(in.frag_id, 9);
	assert_int_equal(in.l3_off, 18);
	assert_int_equal(in.frag_hdr_off, 18 + 40);
	assert_int_equal(in.l4_proto, 6);
}

static void
test_parse_ip_and_truncation(void **state)
{
	(void)state;
	static uint8_t f[MAXF];
	struct spec s = {"", .ipver = 6, .v6_ext = ext_all, .v6_next = 5, .payload = 50};
	size_t n = build(&s, f);
	struct pkt_info in;
	assert_int_equal(pkt_parse_ip(f + 14, n - 14, &in), PKT_TCP);
	assert_int_equal(in.payload_len, 50);
	assert_int_equal(in.l3_off, 0);
	/* every shorter frame is refused, never read past */
	for (size_t k = 0; k < n; k++) {
		enum pkt_reason r = pkt_parse(f, k, &in);
		assert_true(r == PKT_TRUNCATED);
	}
	assert_int_equal(pkt_parse_ip(f, 0, &in), PKT_TRUNCATED);
	uint8_t junk = 0x50;
	assert_int_equal(pkt_parse_ip(&junk, 1, &in), PKT_NOT_IP);
	for (int r = 0; r <= PKT_REASON_COUNT; r++)
		assert_non_null(pkt_reason_name((enum pkt_reason)r));
	assert_string_equal(pkt_reason_name(PKT_TCP), "tcp");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_table),
	        cmocka_unit_test(test_fragment_fields),
	        cmocka_unit_test(test_parse_ip_and_truncation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
