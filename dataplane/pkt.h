/*
 * pkt: Ethernet -> (802.1Q / QinQ) -> IPv4 / IPv6 (+ extension headers) ->
 * TCP, over one contiguous frame. DPDK-free and allocation-free so it can be
 * fuzzed; the caller linearises chained mbufs (rte_pktmbuf_read) first.
 *
 * Data model: pkt_parse fills a struct pkt_info that points into the frame
 * (payload) and copies the rest (addresses, ports, seq/ack, flags). The
 * result is PKT_TCP, PKT_FRAGMENT (an IPv4/IPv6 fragment the caller must
 * reassemble; the L3 fields and fragment offset/MF/id are filled), or the
 * reason it was skipped; every reason has a name (pkt_reason_name) so
 * callers count them in a table indexed by the enum.
 *
 * Lengths come from the IP headers, not the frame: Ethernet padding after
 * the IP datagram is ignored, and a datagram longer than the frame (snaplen
 * cut) is PKT_TRUNCATED. IPv4 header checksums are not checked (offloads
 * and captures leave them wrong often enough); TCP checksums neither.
 * Limits: PKT_MAX_VLAN stacked tags, PKT_MAX_EXT_HDRS IPv6 extension headers.
 * Thread-safety: none needed, no state.
 */
#ifndef WS_DATAPLANE_PKT_H
#define WS_DATAPLANE_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PKT_MAX_VLAN 2     /* QinQ: outer + inner tag; a third is PKT_VLAN_DEPTH */
#define PKT_MAX_EXT_HDRS 8 /* IPv6 extension headers before TCP; past it PKT_EXT_HDRS */

#define PKT_REASONS(X)                                                                             \
	X(TCP, "tcp")                 /* parsed: a TCP segment */                                  \
	X(FRAGMENT, "fragment")       /* IP fragment: reassemble, then parse */                    \
	X(NOT_IP, "not-ip")           /* ARP, LLDP, ... */                                         \
	X(NOT_TCP, "not-tcp")         /* UDP, ICMP, no-next-header ... */                          \
	X(TRUNCATED, "truncated")     /* frame shorter than a header or the IP length */           \
	X(VLAN_DEPTH, "vlan-depth")   /* more than PKT_MAX_VLAN tags */                            \
	X(BAD_IPV4, "bad-ipv4")       /* version, IHL < 5, total length < IHL */                   \
	X(BAD_IPV6, "bad-ipv6")       /* version, jumbogram, bad ext header */                     \
	X(EXT_HDRS, "ipv6-ext-limit") /* more than PKT_MAX_EXT_HDRS ext headers */                 \
	X(BAD_TCP, "bad-tcp")         /* data offset < 5 or past the segment */

enum pkt_reason {
#define PKT_ENUM(e, s) PKT_##e,
	PKT_REASONS(PKT_ENUM)
#undef PKT_ENUM
	        PKT_REASON_COUNT
};

#define PKT_TCP_FIN 0x01
#define PKT_TCP_SYN 0x02
#define PKT_TCP_RST 0x04
#define PKT_TCP_ACK 0x10

struct pkt_info {
	enum pkt_reason reason;
	uint8_t ip_version; /* 4 or 6 (0 before L3) */
	uint8_t nvlan;
	uint16_t vlan[PKT_MAX_VLAN]; /* TCI & 0x0fff, outermost first */
	uint8_t src[16], dst[16];    /* IPv4 as ::ffff:a.b.c.d */
	uint16_t l3_off, l4_off;     /* from the start of the frame */
	uint8_t l4_proto;            /* final next-header / protocol */
	/* fragments (PKT_FRAGMENT) */
	bool frag_more;
	uint32_t frag_offset; /* bytes */
	uint32_t frag_id;
	uint16_t frag_hdr_off; /* IPv6: the fragment header's offset in the frame, 0 if none */
	/* TCP (PKT_TCP) */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	const uint8_t *payload;
	size_t payload_len;
};

/* Parse one Ethernet frame; returns info->reason. */
enum pkt_reason pkt_parse(const uint8_t *frame, size_t len, struct pkt_info *info);
/* The same from an IPv4 or IPv6 header on (first nibble picks), for
 * reassembled datagrams. */
enum pkt_reason pkt_parse_ip(const uint8_t *ip, size_t len, struct pkt_info *info);
const char *pkt_reason_name(enum pkt_reason r);

#endif
