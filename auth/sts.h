/*
 * sts: MTA-STS (RFC 8461) as pure functions: the _mta-sts TXT record, the
 * RRset selection rule, the policy file, MX pattern matching and the
 * per-session decision. No I/O, no clock, no allocation.
 *
 * Data model: sts_txt_parse fills a struct sts_record that holds a copy of
 * the record text (extensions are spans into that copy). sts_policy_parse
 * fills a struct sts_policy: mode, max_age and the mx patterns are copied
 * (lowercased as written, trailing dot stripped); extension spans point into
 * the body the caller passed and are valid only while that body lives.
 * sts_decide turns (policy, MX host, what the session showed) into a result
 * and, on failure, the TLS-RPT result type that names the reason.
 * Thread-safety: every function is reentrant; structs are caller-owned.
 * Limits: the STS_* constants below; each is tested at and past.
 */
#ifndef WS_AUTH_STS_H
#define WS_AUTH_STS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns-types.h"

#define STS_TXT_MAX_LEN 1024        /* bytes of one _mta-sts record (strings concatenated) */
#define STS_TXT_MAX_EXT 16          /* extension fields kept in one TXT record; past: error */
#define STS_ID_MAX 32               /* RFC 8461 3.1: id = 1*32(ALPHA / DIGIT) */
#define STS_EXT_NAME_MAX 32         /* 1 + 31 characters (RFC 8461 3.1, 3.2) */
#define STS_POLICY_MAX_LEN 65536    /* policy body bytes (RFC 8461 3.3 suggests 64 KiB) */
#define STS_POLICY_MAX_MX 64        /* mx lines in one policy; past: invalid */
#define STS_POLICY_MAX_EXT 16       /* extension lines kept; more are counted, not kept */
#define STS_MAX_AGE_MAX 31557600u   /* RFC 8461 3.2: max_age at most one year */
#define STS_DOMAIN_MAX 253          /* presentation form, no trailing dot */

/* TLS-RPT result types (RFC 8460 4.3 + IANA registry); STS_RT_NONE = no failure. */
#define STS_RESULT_TYPES(X)                                            \
	X(STS_RT_NONE, "none")                                         \
	X(STS_RT_STARTTLS_NOT_SUPPORTED, "starttls-not-supported")     \
	X(STS_RT_CERT_HOST_MISMATCH, "certificate-host-mismatch")      \
	X(STS_RT_CERT_EXPIRED, "certificate-expired")                  \
	X(STS_RT_CERT_NOT_TRUSTED, "certificate-not-trusted")          \
	X(STS_RT_VALIDATION_FAILURE, "validation-failure")             \
	X(STS_RT_TLSA_INVALID, "tlsa-invalid")                         \
	X(STS_RT_DNSSEC_INVALID, "dnssec-invalid")                     \
	X(STS_RT_DANE_REQUIRED, "dane-required")                       \
	X(STS_RT_POLICY_FETCH_ERROR, "sts-policy-fetch-error")         \
	X(STS_RT_POLICY_INVALID, "sts-policy-invalid")                 \
	X(STS_RT_WEBPKI_INVALID, "sts-webpki-invalid")
#define STS_X_ENUM(e, s) e,
enum sts_result_type { STS_RESULT_TYPES(STS_X_ENUM) STS_RT_COUNT };
#undef STS_X_ENUM
const char *sts_result_type_name(enum sts_result_type t); /* "certificate-expired", ... */
/* The type named s (exact), or -1. */
int sts_result_type_from_name(const char *s, size_t len);

/* ---- _mta-sts TXT record (RFC 8461 3.1) ---- */

enum sts_txt_status {
	STS_TXT_OK,
	STS_TXT_NOT_STS,  /* does not start with v=STSv1: not an MTA-STS record */
	STS_TXT_SYNTAX,   /* an STS record that is malformed (no id, bad field, ...) */
	STS_TXT_TOO_LONG, /* > STS_TXT_MAX_LEN */
};

struct sts_span {
	uint16_t off, len;
};

struct sts_record {
	char text[STS_TXT_MAX_LEN + 1]; /* NUL-terminated copy */
	size_t len;
	char id[STS_ID_MAX + 1];
	unsigned n_ext;
	struct sts_span ext_name[STS_TXT_MAX_EXT], ext_value[STS_TXT_MAX_EXT];
};

/* Whether a TXT string counts as an MTA-STS record for the RRset rule:
 * "v=STSv1" followed by ';', WSP or the end (erratum 6285: WSP before the
 * ';' is allowed by the ABNF, so "v=STSv1 ;" counts). Case-sensitive. */
bool sts_txt_is_sts(const char *txt, size_t len);
enum sts_txt_status sts_txt_parse(const char *txt, size_t len, struct sts_record *out,
				  char *why, size_t why_len);

enum sts_lookup {
	STS_LOOKUP_RECORD,   /* exactly one STS record, valid: *out filled */
	STS_LOOKUP_NONE,     /* NXDOMAIN, NODATA or no STS record: no MTA-STS */
	STS_LOOKUP_MULTIPLE, /* more than one STS record: no available policy */
	STS_LOOKUP_SYNTAX,   /* the one STS record is invalid: no available policy */
	STS_LOOKUP_TEMPFAIL, /* SERVFAIL, timeout, bogus: transient, keep the cache */
};
const char *sts_lookup_name(enum sts_lookup l);
/* The RRset rule of RFC 8461 3.1 over one DNS answer (CNAMEs already followed). */
enum sts_lookup sts_txt_select(const struct ws_dns_answer *a, struct sts_record *out, char *why,
			       size_t why_len);

/* ---- policy file (RFC 8461 3.2) ---- */

enum sts_mode { STS_MODE_ENFORCE, STS_MODE_TESTING, STS_MODE_NONE };
const char *sts_mode_name(enum sts_mode m);

enum sts_pol_status {
	STS_POL_OK,
	STS_POL_SYNTAX,   /* a line that is not "key: value" per the ABNF, a BOM, ... */
	STS_POL_INVALID,  /* well-formed lines, wrong content (version, mode, max_age, mx) */
	STS_POL_TOO_LONG, /* > STS_POLICY_MAX_LEN bytes */
};

/* Things we accept but count (STS-POL-7 choices). */
#define STS_WARN_TRAILING_EMPTY_LINES 0x1u
#define STS_WARN_MX_TRAILING_DOT 0x2u
#define STS_WARN_WEAK_WILDCARD 0x4u /* "*.tld": valid, but covers a whole TLD (8461 10.4) */

struct sts_mx_pattern {
	char name[STS_DOMAIN_MAX + 1]; /* lowercase, without "*." and trailing dot */
	bool wildcard;                  /* "*." + name */
};

struct sts_policy {
	enum sts_mode mode;
	uint32_t max_age;
	unsigned n_mx;
	struct sts_mx_pattern mx[STS_POLICY_MAX_MX];
	unsigned n_ext, n_ext_dropped;
	struct sts_span ext_name[STS_POLICY_MAX_EXT], ext_value[STS_POLICY_MAX_EXT]; /* into body */
	unsigned warnings; /* STS_WARN_* */
};

enum sts_pol_status sts_policy_parse(const char *body, size_t len, struct sts_policy *out,
				     char *why, size_t why_len);

/* ---- MX matching (RFC 8461 4.1) ---- */

/* One pattern as written in a policy ("*.example.com", "mx.example.com.")
 * against an MX host name: ASCII case-insensitive, a trailing root dot on
 * either side ignored, "*." standing for exactly one leftmost label. An
 * invalid pattern never matches. The host must be in A-label form: DNS MX
 * RDATA always is; a host with non-ASCII bytes never matches. */
bool sts_pattern_match(const char *pattern, size_t plen, const char *host, size_t hlen);
/* Whether host matches at least one mx of the policy. */
bool sts_mx_match(const struct sts_policy *p, const char *host, size_t hlen);

/* One certificate SAN dNSName against a host (the MX host, or the policy
 * host mta-sts.<domain>), RFC 6125 as RFC 8461 3.3 / 4.2 narrow it: exact
 * (case-insensitive), or "*." as the complete leftmost label standing for
 * exactly one label; partial-label wildcards ("mx*.example.com") and a
 * wildcard anywhere else never match. A CN is never consulted (callers
 * pass only SAN dNSNames). */
bool sts_dnsid_match(const char *dnsid, size_t dlen, const char *host, size_t hlen);

/* ---- per-session decision (RFC 8461 4, 5) ---- */

enum sts_cert {
	STS_CERT_VALID,          /* chains to a trusted root, not expired, SAN DNS-ID = MX host */
	STS_CERT_HOST_MISMATCH,
	STS_CERT_EXPIRED,
	STS_CERT_NOT_TRUSTED,
	STS_CERT_OTHER_FAILURE,  /* any other PKIX failure */
	STS_CERT_NOT_ASSESSABLE, /* TLS 1.3 or resumption: the certificate was not visible */
};

struct sts_session {
	const char *mx_host; /* the MX host name the sender connected to */
	size_t mx_host_len;
	bool starttls_offered; /* the EHLO reply carried STARTTLS */
	bool tls_established;  /* STARTTLS was sent, accepted, and a handshake completed */
	enum sts_cert cert;    /* meaningful when tls_established */
};

enum sts_result {
	STS_PASS,           /* the session met the policy */
	STS_FAIL,           /* it did not; see reason and enforce */
	STS_NONE,           /* no policy, or mode none: nothing to judge */
	STS_NOT_ASSESSABLE, /* TLS with MX match, but the certificate was not seen: never a pass */
};
const char *sts_result_name(enum sts_result r);

/* "SSLv3", "TLSv1.0" .. "TLSv1.3" for a TLS protocol code point (0x0300 ..
 * 0x0304); NULL for any other value. Shared by the dataplane's session lines
 * and the control plane's sink so both spell versions alike. */
const char *sts_tls_version_name(uint16_t v);

struct sts_verdict {
	enum sts_result result;
	enum sts_result_type reason; /* STS_RT_NONE unless result is FAIL */
	const char *reason_code;     /* "mtasts-policy-mx-mismatch" or NULL (failure-reason-code) */
	bool enforce; /* FAIL under mode enforce: the MTA must not deliver to this MX */
};

/* p == NULL means no usable policy. */
struct sts_verdict sts_decide(const struct sts_policy *p, const struct sts_session *s);

#endif
