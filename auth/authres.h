/*
 * authres: Authentication-Results header field values (RFC 8601).
 *
 * Building: authres_init with the authserv-id, then one authres_add per
 * method result (dkim, arc, spf, dmarc ...) with its properties; the value
 * is "authserv-id; method=result reason=\"...\" ptype.prop=value ...". With
 * no method added the value is "authserv-id; none". Values that are not
 * RFC 2045 tokens are quoted. The builder owns its buffer (authres_free).
 *
 * Not thread-safe per builder; no I/O.
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

#endif
