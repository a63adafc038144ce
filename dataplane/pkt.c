/* wireseal: hot-path (tools/check-source.sh: no malloc/free or printf family here) */
#include "pkt.h"

#include <string.h>

#define ETH_HLEN 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define ETHERTYPE_QINQ_OLD 0x9100 /* pre-802.1ad stacked tags, still seen */

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_TCP_ 6
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_AH_ 51
#define IPPROTO_NONE_ 59
#define IPPROTO_DSTOPTS_ 60

static const char *const reason_names[PKT_REASON_COUNT] = {
#define PKT_NAME(e, s) [PKT_##e] = s,
        PKT_REASONS(PKT_NAME)
#undef PKT_NAME
};

const char *
pkt_reason_name(enum pkt_reason r)
{
	return (unsigned)r < PKT_REASON_COUNT ? reason_names[r] : "?";
}

static uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static enum pkt_reason
done(struct pkt_info *in, enum pkt_reason r)
{
	in->reason = r;
	return r;
}

/* TCP at tcp[0..len): len is what the IP header says is left. */
static enum pkt_reason
parse_tcp(const uint8_t *tcp, size_t len, struct pkt_info *in)
{
	if (len < 20)
		return done(in, PKT_TRUNCATED);
	size_t doff = (size_t)(tcp[12] >> 4) * 4;
	if (doff < 20 || doff > len)
		return done(in, PKT_BAD_TCP);
	in->sport = rd16(tcp);
	in->dport = rd16(tcp + 2);
	in->seq = rd32(tcp + 4);
	in->ack = rd32(tcp + 8);
	in->flags = tcp[13];
	in->payload = tcp + doff;
	in->payload_len = len - doff;
	return done(in, PKT_TCP);
}

static enum pkt_reason
parse_ipv4(const uint8_t *base, const uint8_t *ip, size_t len, struct pkt_info *in)
{
	in->ip_version = 4;
	in->l3_off = (uint16_t)(ip - base);
	if (len < 20)
		return done(in, PKT_TRUNCATED);
	if (ip[0] >> 4 != 4)
		return done(in, PKT_BAD_IPV4);
	size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
	size_t total = rd16(ip + 2);
	if (ihl < 20 || total < ihl)
		return done(in, PKT_BAD_IPV4);
	if (total > len)
		return done(in, PKT_TRUNCATED);
	memset(in->src, 0, 10);
	in->src[10] = in->src[11] = 0xff;
	memcpy(in->src + 12, ip + 12, 4);
	memset(in->dst, 0, 10);
	in->dst[10] = in->dst[11] = 0xff;
	memcpy(in->dst + 12, ip + 16, 4);
	in->l4_proto = ip[9];
	in->l4_off = (uint16_t)(in->l3_off + ihl);
	uint16_t frag = rd16(ip + 6);
	in->frag_more = (frag & 0x2000) != 0;
	in->frag_offset = (uint32_t)(frag & 0x1fff) * 8;
	in->frag_id = rd16(ip + 4);
	if (in->frag_more || in->frag_offset)
		return done(in, PKT_FRAGMENT);
	if (in->l4_proto != IPPROTO_TCP_)
		return done(in, PKT_NOT_TCP);
	return parse_tcp(ip + ihl, total - ihl, in);
}

static enum pkt_reason
parse_ipv6(const uint8_t *base, const uint8_t *ip, size_t len, struct pkt_info *in)
{
	in->ip_version = 6;
	in->l3_off = (uint16_t)(ip - base);
	if (len < 40)
		return done(in, PKT_TRUNCATED);
	if (ip[0] >> 4 != 6)
		return done(in, PKT_BAD_IPV6);
	size_t plen = rd16(ip + 4);
	if (plen == 0) /* jumbogram (RFC 2675) or nothing: not SMTP we can follow */
		return done(in, PKT_BAD_IPV6);
	if (40 + plen > len)
		return done(in, PKT_TRUNCATED);
	memcpy(in->src, ip + 8, 16);
	memcpy(in->dst, ip + 24, 16);
	uint8_t nh = ip[6];
	size_t off = 40, end = 40 + plen;
	for (unsigned n = 0;; n++) {
		in->l4_proto = nh;
		in->l4_off = (uint16_t)(in->l3_off + off);
		switch (nh) {
		case IPPROTO_TCP_:
			if (in->frag_more || in->frag_offset)
				return done(in, PKT_FRAGMENT);
			return parse_tcp(ip + off, end - off, in);
		case IPPROTO_HOPOPTS_:
		case IPPROTO_ROUTING_:
		case IPPROTO_DSTOPTS_:
		case IPPROTO_AH_:
		case IPPROTO_FRAGMENT_:
			break;
		default:
			if (in->frag_more || in->frag_offset)
				return done(in, PKT_FRAGMENT);
			return done(in, PKT_NOT_TCP);
		}
		if (n >= PKT_MAX_EXT_HDRS)
			return done(in, PKT_EXT_HDRS);
		/* hop-by-hop is only allowed first (RFC 8200 4.1) */
		if (nh == IPPROTO_HOPOPTS_ && n != 0)
			return done(in, PKT_BAD_IPV6);
		if (end - off < 8)
			return done(in, PKT_TRUNCATED);
		const uint8_t *h = ip + off;
		size_t hlen;
		if (nh == IPPROTO_FRAGMENT_) {
			hlen = 8;
			in->frag_hdr_off = (uint16_t)(in->l3_off + off);
			uint16_t fo = rd16(h + 2);
			in->frag_offset = (uint32_t)(fo >> 3) * 8;
			in->frag_more = (fo & 1) != 0;
			in->frag_id = rd32(h + 4);
			/* a non-first fragment's next header is not parseable */
			if (in->frag_offset) {
				in->l4_proto = h[0];
				return done(in, PKT_FRAGMENT);
			}
		} else if (nh == IPPROTO_AH_) {
			hlen = ((size_t)h[1] + 2) * 4;
		} else {
			hlen = ((size_t)h[1] + 1) * 8;
		}
		if (hlen > end - off)
			return done(in, PKT_TRUNCATED);
		nh = h[0];
		off += hlen;
	}
}

enum pkt_reason
pkt_parse_ip(const uint8_t *ip, size_t len, struct pkt_info *in)
{
	memset(in, 0, sizeof(*in));
	if (len < 1)
		return done(in, PKT_TRUNCATED);
	switch (ip[0] >> 4) {
	case 4:
		return parse_ipv4(ip, ip, len, in);
	case 6:
		return parse_ipv6(ip, ip, len, in);
	default:
		return done(in, PKT_NOT_IP);
	}
}

enum pkt_reason
pkt_parse(const uint8_t *frame, size_t len, struct pkt_info *in)
{
	memset(in, 0, sizeof(*in));
	if (len < ETH_HLEN)
		return done(in, PKT_TRUNCATED);
	size_t off = 12;
	uint16_t type = rd16(frame + off);
	while (type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ || type == ETHERTYPE_QINQ_OLD) {
		if (in->nvlan >= PKT_MAX_VLAN)
			return done(in, PKT_VLAN_DEPTH);
		if (len < off + 6)
			return done(in, PKT_TRUNCATED);
		in->vlan[in->nvlan++] = rd16(frame + off + 2) & 0x0fff;
		off += 4;
		type = rd16(frame + off);
	}
	off += 2;
	switch (type) {
	case ETHERTYPE_IPV4:
		return parse_ipv4(frame, frame + off, len - off, in);
	case ETHERTYPE_IPV6:
		return parse_ipv6(frame, frame + off, len - off, in);
	default:
		return done(in, PKT_NOT_IP);
	}
}
