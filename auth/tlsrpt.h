/*
 * tlsrpt: SMTP TLS Reporting (RFC 8460): the _smtp._tls TXT record, the
 * aggregate report (JSON) both ways, its file name, and gzip.
 *
 * Data model: tlsrpt_txt_parse fills a struct tlsrpt_record (a copy of the
 * text, URI spans into it). A report is a struct tlsrpt_report tree.
 *  - Emitting: the caller builds the tree with tlsrpt_agg (which merges
 *    identical failure keys and counts sessions) or by hand, and
 *    tlsrpt_report_json writes RFC 8460 JSON (policies and mx-host always
 *    arrays, per erratum 6241).
 *  - Reading: tlsrpt_report_parse is lenient as the fixtures demand: it
 *    fails only on text that is not a JSON object; every oddity it can live
 *    with (mx-host as a string, unknown policy or result type, "" for an
 *    absent field, totals that do not add up, a range that is not one UTC
 *    day, a date-time without offset, a missing field) sets an anomaly bit.
 * Ownership: trees from tlsrpt_report_parse and tlsrpt_agg are heap-owned
 * and freed with tlsrpt_report_free / tlsrpt_agg_free; a tree built by hand
 * belongs to its builder. Output buffers (JSON, gzip) are malloc'd; the
 * caller frees them.
 * Thread-safety: reentrant; no globals.
 * Limits: the TLSRPT_* constants below; each is tested at and past.
 */
#ifndef WS_AUTH_TLSRPT_H
#define WS_AUTH_TLSRPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns-types.h"
#include "sts.h"

#define TLSRPT_TXT_MAX_LEN 2048          /* bytes of one _smtp._tls record */
#define TLSRPT_MAX_RUA 8                 /* URIs in one record (all rua= fields); past: error */
#define TLSRPT_MAX_REPORT_LEN (16u << 20) /* JSON bytes, parsed or gunzipped (16 MiB) */
#define TLSRPT_FILENAME_MAX 600          /* a report file name, NUL included */

/* ---- _smtp._tls TXT record (RFC 8460 3) ---- */

enum tlsrpt_scheme { TLSRPT_MAILTO, TLSRPT_HTTPS, TLSRPT_OTHER_SCHEME };

struct tlsrpt_uri {
	uint16_t off, len; /* into text: the whole URI, scheme included */
	enum tlsrpt_scheme scheme;
};

struct tlsrpt_record {
	char text[TLSRPT_TXT_MAX_LEN + 1];
	size_t len;
	unsigned n_rua;
	struct tlsrpt_uri rua[TLSRPT_MAX_RUA];
	unsigned n_usable; /* mailto: and https: URIs; others (http:) are ignored when sending */
};

enum tlsrpt_txt_status { TLSRPT_TXT_OK, TLSRPT_TXT_NOT_TLSRPT, TLSRPT_TXT_SYNTAX, TLSRPT_TXT_TOO_LONG };

/* "v=TLSRPTv1" followed by ';', WSP or the end (case-sensitive). */
bool tlsrpt_txt_is_tlsrpt(const char *txt, size_t len);
enum tlsrpt_txt_status tlsrpt_txt_parse(const char *txt, size_t len, struct tlsrpt_record *out,
					char *why, size_t why_len);
/* RFC 8460 3: the RRset rule, as sts_txt_select (same result vocabulary). */
enum sts_lookup tlsrpt_txt_select(const struct ws_dns_answer *a, struct tlsrpt_record *out,
				  char *why, size_t why_len);

/* ---- report tree (RFC 8460 4) ---- */

enum tlsrpt_policy_type { TLSRPT_PT_STS, TLSRPT_PT_TLSA, TLSRPT_PT_NO_POLICY, TLSRPT_PT_OTHER };
const char *tlsrpt_policy_type_name(enum tlsrpt_policy_type t); /* "sts", ... ("other") */

struct tlsrpt_failure {
	enum sts_result_type type; /* STS_RT_NONE when result_type is not a registered name */
	char *result_type;         /* as read or written */
	char *sending_mta_ip, *receiving_mx_hostname, *receiving_mx_helo, *receiving_ip;
	char *additional_information, *failure_reason_code; /* NULL = absent */
	uint64_t failed_session_count;
};

struct tlsrpt_policy {
	enum tlsrpt_policy_type type;
	char *policy_type; /* as read or written */
	char **policy_string;
	size_t n_policy_string;
	char *policy_domain;
	char **mx_host;
	size_t n_mx_host;
	uint64_t total_success, total_failure;
	struct tlsrpt_failure *failures;
	size_t n_failures;
};

#define TLSRPT_ANOM_MX_HOST_STRING 0x001u   /* mx-host was a string (erratum 6241) */
#define TLSRPT_ANOM_UNKNOWN_POLICY 0x002u   /* policy-type not sts/tlsa/no-policy-found */
#define TLSRPT_ANOM_UNKNOWN_RESULT 0x004u   /* result-type not in the registry */
#define TLSRPT_ANOM_EMPTY_FIELD 0x008u      /* "" where a value belongs: treated as absent */
#define TLSRPT_ANOM_TOTALS 0x010u           /* total-failure-session-count != sum of details */
#define TLSRPT_ANOM_RANGE 0x020u            /* date-range is not one UTC day */
#define TLSRPT_ANOM_DATETIME 0x040u         /* date-time without offset, or unparsable */
#define TLSRPT_ANOM_MISSING 0x080u          /* a field RFC 8460 requires is absent */
#define TLSRPT_ANOM_TYPE 0x100u             /* a field of the wrong JSON type: ignored */

struct tlsrpt_report {
	char *organization_name;
	char *contact_info;
	char *report_id;
	int64_t start, end; /* date-range, seconds since the epoch (UTC) */
	struct tlsrpt_policy *policies;
	size_t n_policies;
	unsigned anomalies; /* TLSRPT_ANOM_* (parse only) */
};

/* NULL with why when the text is not JSON, not an object, or longer than
 * TLSRPT_MAX_REPORT_LEN. */
struct tlsrpt_report *tlsrpt_report_parse(const char *json, size_t len, char *why, size_t why_len);
void tlsrpt_report_free(struct tlsrpt_report *r); /* NULL-safe; parse results only */

/* RFC 8460 JSON; 0, or -1 on allocation failure. */
int tlsrpt_report_json(const struct tlsrpt_report *r, char **out, size_t *out_len);

/* "2016-04-01T00:00:00Z" <-> epoch seconds. Parse accepts fractions and
 * numeric offsets; without an offset it reads UTC and sets *no_tz. */
int tlsrpt_datetime_parse(const char *s, int64_t *out, bool *no_tz);
void tlsrpt_datetime_format(int64_t t, char out[21]);

/* ---- aggregation: what the dataplane will feed ---- */

struct tlsrpt_agg;
/* Day [day_start, day_start + 86400) is reported as 00:00:00Z .. 23:59:59Z. */
struct tlsrpt_agg *tlsrpt_agg_new(const char *organization_name, const char *contact_info,
				  const char *report_id, int64_t day_start);
void tlsrpt_agg_free(struct tlsrpt_agg *a);
/* The policy with this (type, domain) or a new one; its index, or -1. The
 * strings are copied; policy_string/mx_host are set on first use only. */
int tlsrpt_agg_policy(struct tlsrpt_agg *a, enum tlsrpt_policy_type type, const char *domain,
		      const char *const *policy_string, size_t n_policy_string,
		      const char *const *mx_host, size_t n_mx_host);
/* Count sessions under policy idx: successes (f == NULL) or failures with
 * f's key (every field but the count; identical keys merge). 0 or -1. */
int tlsrpt_agg_add(struct tlsrpt_agg *a, int idx, const struct tlsrpt_failure *f, uint64_t count);
const struct tlsrpt_report *tlsrpt_agg_report(const struct tlsrpt_agg *a);

/* ---- delivery helpers (RFC 8460 5) ---- */

/* "submitter!policy-domain!begin!end[!unique-id].json[.gz]"; the length, or
 * -1 when it does not fit TLSRPT_FILENAME_MAX or a part contains '!' or '/'. */
int tlsrpt_filename(char out[TLSRPT_FILENAME_MAX], const char *submitter, const char *policy_domain,
		    int64_t begin, int64_t end, const char *unique_id, bool gzip);
struct tlsrpt_filename_parts {
	char submitter[256], policy_domain[256], unique_id[64];
	int64_t begin, end;
	bool gzip;
};
int tlsrpt_filename_parse(const char *name, struct tlsrpt_filename_parts *out);

/* The report e-mail of RFC 8460 5.3 (CRLF line ends), not yet DKIM-signed:
 * From, To, Date (from `now`, UTC), Subject "Report Domain: D Submitter: S
 * Report-ID: <ID>", TLS-Report-Domain, TLS-Report-Submitter (both for the
 * signer's h=), TLS-Required: No (RFC 8689: a report must not be held back
 * by the receiver's own MTA-STS/DANE), Message-ID, and a multipart/report;
 * report-type="tlsrpt" body: a text/plain part, then the report gzipped as
 * application/tlsrpt+gzip, base64, named with tlsrpt_filename. One report
 * covers one policy domain: r's first policy names it. 0, or -1 with why. */
struct tlsrpt_mail {
	const char *from, *to;  /* addresses (to: a mailto: rua without the scheme) */
	const char *submitter;  /* the reporting organisation's domain */
	const char *message_id; /* "<...>"; the boundary is derived from it */
};
int tlsrpt_mail(const struct tlsrpt_mail *m, const struct tlsrpt_report *r, int64_t now, char **out,
		size_t *out_len, char *why, size_t why_len);

/* gzip (RFC 1952) of a buffer; gunzip refuses output past max_out
 * (<= TLSRPT_MAX_REPORT_LEN). 0, or -1 with why. */
int tlsrpt_gzip(const void *in, size_t len, uint8_t **out, size_t *out_len);
int tlsrpt_gunzip(const void *in, size_t len, size_t max_out, uint8_t **out, size_t *out_len,
		  char *why, size_t why_len);

#endif
