/*
 * DNS answer vocabulary shared by the resolver (ctrlplane/dns) and the pure
 * evaluators in auth/ that consume answers (SPF, DMARC tree walk, DKIM key
 * lookup): types only. An answer is owned by whoever received it and freed
 * with ws_dns_answer_free (ctrlplane/dns.h) or by the code that built it.
 */
#ifndef WS_AUTH_DNS_TYPES_H
#define WS_AUTH_DNS_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ws_dns_type {
	WS_DNS_A = 1,
	WS_DNS_CNAME = 5,
	WS_DNS_PTR = 12,
	WS_DNS_MX = 15,
	WS_DNS_TXT = 16,
	WS_DNS_AAAA = 28,
};

enum ws_dns_status {
	WS_DNS_OK,       /* at least one record of the type asked */
	WS_DNS_NXDOMAIN, /* the name does not exist */
	WS_DNS_NODATA,   /* the name exists, no record of that type */
	WS_DNS_TEMPFAIL, /* timeout, SERVFAIL, REFUSED, network or resolver error */
	WS_DNS_BOGUS,    /* DNSSEC validation failed (treated as TEMPFAIL by callers) */
};

struct ws_dns_rr {
	enum ws_dns_type type;
	union {
		uint8_t a[4];
		uint8_t aaaa[16];
		struct {
			uint16_t pref;
			char *host; /* presentation form, no trailing dot, lowercase */
		} mx;
		char *name; /* PTR / CNAME target, as mx.host */
		struct {
			uint8_t *data; /* the character-strings concatenated, NUL-terminated */
			size_t len;    /* without the NUL */
			unsigned nstrings;
		} txt;
	} u;
};

struct ws_dns_answer {
	enum ws_dns_status status;
	int rcode;         /* DNS rcode when known, else -1 */
	uint32_t ttl;      /* for data and (negative caching) for NXDOMAIN/NODATA */
	bool secure;       /* DNSSEC-validated */
	size_t count;
	struct ws_dns_rr *rrs;
	char why[96];      /* for TEMPFAIL/BOGUS: "timeout", "SERVFAIL", ... */
};

#endif
