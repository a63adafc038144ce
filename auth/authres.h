/*
 * authres: Authentication-Results header field values (RFC 8601).
 *
 * Building: authres_init with the authserv-id, then one authres_add per
 * method result (dkim, arc, spf, dmarc ...) with its properties; the value
 * is "authserv-id; method=result reason=\"...\" ptype.prop=value ...". With
 * no method added the value is "authserv-id; none". Values that are not
 * RFC 2045 tokens are quoted. The builder owns its buffer (authres_free).
 *
 * Parsing: authres_parse reads a header field value (RFC 8601 section 2.2):
 * authserv-id with optional version, then "none" or resinfo clauses
 * "method[/version]=result [reason=value] [ptype.property=pvalue ...]",
 * with CFWS anywhere (nested comments, quoted-pairs, ';' inside comments).
 * Results point into the caller's text (spans, nothing copied); values that
 * were quoted strings keep their quotes and authres_span_copy decodes them.
 * Unknown methods and results are kept as written. An A-R without an
 * authserv-id (seen from Microsoft 365) is accepted and flagged. Limits:
 * AUTHRES_MAX_METHODS clauses, AUTHRES_MAX_PROPS properties per clause,
 * AUTHRES_MAX_VALUE bytes per value; past one the parse fails and says so.
 *
 * Not thread-safe per builder; the parser is a pure function. No I/O.
 */
#ifndef WS_AUTH_AUTHRES_H
#define WS_AUTH_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

struct authres_prop {
	const char *ptype;    /* "header", "smtp", "policy", "body" */
	const char *property; /* "d", "s", "b", "mailfrom", "from" ... */
	const char *value;
};

struct authres {
	char *p;
	size_t len, cap;
	unsigned methods;
	bool oom;
};

void authres_init(struct authres *ar, const char *authserv_id);
void authres_add(struct authres *ar, const char *method, const char *result, const char *reason,
		 const struct authres_prop *props, size_t nprops);
/* The value (without "Authentication-Results:"); NULL after an allocation
 * failure. Valid until authres_free. */
const char *authres_value(struct authres *ar);
void authres_free(struct authres *ar);

/* ---- parsing ------------------------------------------------------- */

#define AUTHRES_MAX_METHODS 32u /* resinfo clauses in one field */
#define AUTHRES_MAX_PROPS 16u   /* properties in one clause */
#define AUTHRES_MAX_VALUE 512u  /* one value (id, result, reason, pvalue) */

struct authres_span {
	const char *p;
	size_t len;
	bool quoted; /* a quoted-string, quotes included in p/len */
};

struct authres_pprop {
	struct authres_span ptype, property, value;
};

struct authres_method {
	struct authres_span method, version, result, reason; /* len 0 = absent */
	struct authres_pprop props[AUTHRES_MAX_PROPS];
	size_t nprops;
	struct authres_span clause; /* the whole clause as written, trimmed */
};

struct authres_parsed {
	struct authres_span authserv_id; /* len 0 when the field had none */
	struct authres_span version;
	bool none;                       /* "; none" */
	struct authres_method methods[AUTHRES_MAX_METHODS];
	size_t nmethods;
};

/* 0, or -1 with *why (static text) and *err_off (where it went wrong). */
int authres_parse(const char *text, size_t len, struct authres_parsed *out, const char **why,
		  size_t *err_off);
/* The span's value, quotes and quoted-pairs removed, NUL-terminated in out;
 * the length, or (size_t)-1 when cap is too small. */
size_t authres_span_copy(const struct authres_span *s, char *out, size_t cap);
/* Case-insensitive comparison of a span's decoded value with lit. */
bool authres_span_is(const struct authres_span *s, const char *lit);
/* The first clause of this method (case-insensitive), or NULL. */
const struct authres_method *authres_find(const struct authres_parsed *ar, const char *method);

#endif
