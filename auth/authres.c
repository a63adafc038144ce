#include "authres.h"

#include <stdlib.h>
#include <string.h>

static void
put(struct authres *ar, const char *s, size_t n)
{
	if (ar->oom)
		return;
	if (ar->len + n + 1 > ar->cap) {
		size_t nc = ar->cap ? ar->cap * 2 : 256;
		while (nc < ar->len + n + 1)
			nc *= 2;
		char *np = realloc(ar->p, nc);
		if (!np) {
			ar->oom = true;
			return;
		}
		ar->p = np;
		ar->cap = nc;
	}
	memcpy(ar->p + ar->len, s, n);
	ar->len += n;
	ar->p[ar->len] = '\0';
}

static void
puts_(struct authres *ar, const char *s)
{
	put(ar, s, strlen(s));
}

/* RFC 2045 token: printable ASCII except SP, CTLs and tspecials. */
static bool
is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 32 || c >= 127 || strchr("()<>@,;:\\\"/[]?=", c))
			return false;
	}
	return true;
}

/* A property value may also be a domain or local-part@domain unquoted
 * (RFC 8601 2.2 "pvalue"); quote anything else. */
static bool
is_pvalue(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 32 || c >= 127 || strchr("()<>,;:\\\"[]?=", c))
			return false;
	}
	return true;
}

static void
quoted(struct authres *ar, const char *s)
{
	puts_(ar, "\"");
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			put(ar, "\\", 1);
		if ((unsigned char)*s < 32)
			continue; /* control characters have no place in a header */
		put(ar, s, 1);
	}
	puts_(ar, "\"");
}

void
authres_init(struct authres *ar, const char *authserv_id)
{
	memset(ar, 0, sizeof(*ar));
	if (is_pvalue(authserv_id))
		puts_(ar, authserv_id);
	else
		quoted(ar, authserv_id);
}

void
authres_add(struct authres *ar, const char *method, const char *result, const char *reason,
	    const struct authres_prop *props, size_t nprops)
{
	puts_(ar, "; ");
	puts_(ar, method);
	puts_(ar, "=");
	puts_(ar, result);
	if (reason && *reason) {
		puts_(ar, " reason=");
		if (is_token(reason))
			puts_(ar, reason);
		else
			quoted(ar, reason);
	}
	for (size_t i = 0; i < nprops; i++) {
		if (!props[i].value)
			continue;
		puts_(ar, " ");
		puts_(ar, props[i].ptype);
		puts_(ar, ".");
		puts_(ar, props[i].property);
		puts_(ar, "=");
		if (is_pvalue(props[i].value))
			puts_(ar, props[i].value);
		else
			quoted(ar, props[i].value);
	}
	ar->methods++;
}

const char *
authres_value(struct authres *ar)
{
	if (ar->methods == 0 && !ar->oom) {
		puts_(ar, "; none");
		ar->methods = 1;
	}
	return ar->oom ? NULL : ar->p;
}

void
authres_free(struct authres *ar)
{
	free(ar->p);
	memset(ar, 0, sizeof(*ar));
}
