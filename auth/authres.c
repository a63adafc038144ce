#include "authres.h"

#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

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

/* ---- parsing ------------------------------------------------------- */

struct cursor {
	const char *s;
	size_t len, i;
	const char *why;
};

static bool
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skip whitespace and comments, nested, with quoted-pairs. -1 on an
 * unterminated comment. */
static int
skip_cfws(struct cursor *c)
{
	for (;;) {
		while (c->i < c->len && is_ws(c->s[c->i]))
			c->i++;
		if (c->i >= c->len || c->s[c->i] != '(')
			return 0;
		unsigned depth = 0;
		do {
			char ch = c->s[c->i++];
			if (ch == '\\' && c->i < c->len)
				c->i++;
			else if (ch == '(')
				depth++;
			else if (ch == ')')
				depth--;
		} while (depth > 0 && c->i < c->len);
		if (depth > 0) {
			c->why = "unterminated comment";
			return -1;
		}
	}
}

/* A keyword/token: letters, digits and the punctuation RFC 2045 tokens
 * allow, excluding '.', '/', '=' which separate A-R parts. */
static bool
is_kw(char c)
{
	unsigned char u = (unsigned char)c;
	return u > 32 && u < 127 && !strchr("()<>@,;:\\\"/[]?=.", u);
}

static int
word(struct cursor *c, struct authres_span *out)
{
	size_t st = c->i;
	while (c->i < c->len && is_kw(c->s[c->i]))
		c->i++;
	if (c->i == st) {
		c->why = "expected a keyword";
		return -1;
	}
	if (c->i - st > AUTHRES_MAX_VALUE) {
		c->why = "keyword longer than AUTHRES_MAX_VALUE";
		return -1;
	}
	*out = (struct authres_span){c->s + st, c->i - st, false};
	return 0;
}

/* A value: a quoted-string, or an unquoted run (token, domain, dot-atom,
 * local@domain) up to CFWS or ';'. */
static int
value(struct cursor *c, struct authres_span *out)
{
	size_t st = c->i;
	if (c->i < c->len && c->s[c->i] == '"') {
		c->i++;
		while (c->i < c->len && c->s[c->i] != '"') {
			if (c->s[c->i] == '\\' && c->i + 1 < c->len)
				c->i++; /* a quoted-pair; a lone '\\' at the end is just unterminated */
			c->i++;
		}
		if (c->i >= c->len) {
			c->why = "unterminated quoted string";
			return -1;
		}
		c->i++;
		*out = (struct authres_span){c->s + st, c->i - st, true};
	} else {
		while (c->i < c->len) {
			unsigned char u = (unsigned char)c->s[c->i];
			if (u <= 32 || u == 127 || u == ';' || u == '(' || u == ')' || u == '"')
				break;
			c->i++;
		}
		if (c->i == st) {
			c->why = "expected a value";
			return -1;
		}
		*out = (struct authres_span){c->s + st, c->i - st, false};
	}
	if ((out->quoted ? out->len - 2 : out->len) > AUTHRES_MAX_VALUE) {
		c->why = "value longer than AUTHRES_MAX_VALUE";
		return -1;
	}
	return 0;
}

static bool
at(struct cursor *c, char ch)
{
	return c->i < c->len && c->s[c->i] == ch;
}

static bool
span_lit(const struct authres_span *s, const char *lit)
{
	return strlen(lit) == s->len && strncasecmp(s->p, lit, s->len) == 0;
}

/* Whether "ptype.property=" follows (after CFWS), without moving c. */
static bool
next_is_prop(const struct cursor *c)
{
	struct cursor p = *c;
	struct authres_span w;
	if (skip_cfws(&p) || word(&p, &w) || skip_cfws(&p) || !at(&p, '.'))
		return false;
	p.i++;
	if (skip_cfws(&p))
		return false;
	size_t st = p.i;
	while (p.i < p.len && (is_kw(p.s[p.i]) || p.s[p.i] == '.'))
		p.i++;
	return p.i > st && skip_cfws(&p) == 0 && at(&p, '=');
}

/* methodspec [reasonspec] *propspec, up to the next ';' or the end. */
static int
resinfo(struct cursor *c, struct authres_method *m)
{
	memset(m, 0, sizeof(*m));
	if (skip_cfws(c) || word(c, &m->method) || skip_cfws(c))
		return -1;
	size_t clause_start = (size_t)(m->method.p - c->s);
	if (at(c, '/')) {
		c->i++;
		if (skip_cfws(c) || word(c, &m->version) || skip_cfws(c))
			return -1;
	}
	if (!at(c, '=')) {
		c->why = "expected '=' after the method";
		return -1;
	}
	c->i++;
	if (skip_cfws(c) || word(c, &m->result))
		return -1;
	for (;;) {
		size_t before = c->i;
		if (skip_cfws(c))
			return -1;
		if (c->i >= c->len || at(c, ';'))
			break;
		if (c->i == before) {
			c->why = "expected whitespace before a property";
			return -1;
		}
		struct authres_span w;
		if (word(c, &w) || skip_cfws(c))
			return -1;
		if (at(c, '=') && span_lit(&w, "reason") && m->reason.len == 0 && m->nprops == 0) {
			c->i++;
			if (skip_cfws(c) || value(c, &m->reason))
				return -1;
			continue;
		}
		if (!at(c, '.')) {
			c->why = "expected ptype.property";
			return -1;
		}
		c->i++;
		if (m->nprops == AUTHRES_MAX_PROPS) {
			c->why = "more properties than AUTHRES_MAX_PROPS";
			return -1;
		}
		struct authres_pprop *pp = &m->props[m->nprops++];
		pp->ptype = w;
		if (skip_cfws(c))
			return -1;
		/* property names may contain '.' (e.g. "smtp.mail.from" is
		 * not standard, but dotted names occur); take a dot-word */
		size_t st = c->i;
		while (c->i < c->len && (is_kw(c->s[c->i]) || c->s[c->i] == '.'))
			c->i++;
		if (c->i == st) {
			c->why = "expected a property name";
			return -1;
		}
		pp->property = (struct authres_span){c->s + st, c->i - st, false};
		if (skip_cfws(c))
			return -1;
		if (!at(c, '=')) {
			c->why = "expected '=' after the property";
			return -1;
		}
		c->i++;
		/* an empty pvalue ("smtp.mailfrom=" for a null sender): the
		 * end, a ';', or whitespace followed by the next ptype.property= */
		bool empty = c->i >= c->len || at(c, ';') ||
			     (is_ws(c->s[c->i]) && next_is_prop(c));
		if (!empty && skip_cfws(c))
			return -1;
		if (empty || c->i >= c->len || at(c, ';')) {
			pp->value = (struct authres_span){c->s + c->i, 0, false};
			continue;
		}
		if (value(c, &pp->value))
			return -1;
	}
	size_t end = c->i;
	while (end > clause_start && is_ws(c->s[end - 1]))
		end--;
	m->clause = (struct authres_span){c->s + clause_start, end - clause_start, false};
	return 0;
}

int
authres_parse(const char *text, size_t len, struct authres_parsed *out, const char **why,
	      size_t *err_off)
{
	struct cursor c = {text, len, 0, NULL};
	memset(out, 0, offsetof(struct authres_parsed, methods));
	out->nmethods = 0;
	if (skip_cfws(&c))
		goto fail;
	/* authserv-id, unless the field starts with a clause (method=) */
	size_t save = c.i;
	struct authres_span first;
	bool clause_first = false;
	if (word(&c, &first) == 0) {
		struct cursor probe = c;
		if (skip_cfws(&probe) == 0 && (at(&probe, '=') || at(&probe, '/')))
			clause_first = true;
	}
	c.i = save;
	c.why = NULL;
	if (!clause_first) {
		if (value(&c, &out->authserv_id))
			goto fail;
		if (skip_cfws(&c))
			goto fail;
		if (c.i < c.len && c.s[c.i] >= '0' && c.s[c.i] <= '9') {
			size_t st = c.i;
			while (c.i < c.len && c.s[c.i] >= '0' && c.s[c.i] <= '9')
				c.i++;
			out->version = (struct authres_span){c.s + st, c.i - st, false};
			if (skip_cfws(&c))
				goto fail;
		}
		if (c.i >= c.len) {
			c.why = "no results after the authserv-id";
			goto fail;
		}
		if (!at(&c, ';')) {
			c.why = "expected ';' after the authserv-id";
			goto fail;
		}
		c.i++;
	}
	for (;;) {
		if (skip_cfws(&c))
			goto fail;
		if (c.i >= c.len)
			break; /* a trailing ';' */
		if (at(&c, ';')) {
			c.i++; /* an empty clause: tolerated */
			continue;
		}
		size_t st = c.i;
		struct authres_span w;
		if (word(&c, &w) == 0 && span_lit(&w, "none")) {
			struct cursor probe = c;
			if (skip_cfws(&probe) == 0 && (probe.i >= probe.len || at(&probe, ';'))) {
				out->none = true;
				c = probe;
				continue;
			}
		}
		c.i = st;
		c.why = NULL;
		if (out->nmethods == AUTHRES_MAX_METHODS) {
			c.why = "more results than AUTHRES_MAX_METHODS";
			goto fail;
		}
		if (resinfo(&c, &out->methods[out->nmethods]))
			goto fail;
		out->nmethods++;
		if (c.i < c.len)
			c.i++; /* the ';' */
	}
	if (out->nmethods == 0 && !out->none) {
		c.why = "no results";
		goto fail;
	}
	return 0;
fail:
	*why = c.why ? c.why : "syntax error";
	if (err_off)
		*err_off = c.i;
	return -1;
}

size_t
authres_span_copy(const struct authres_span *s, char *out, size_t cap)
{
	size_t o = 0;
	const char *p = s->p;
	size_t n = s->len;
	if (s->quoted && n >= 2) {
		p++;
		n -= 2;
	}
	for (size_t i = 0; i < n; i++) {
		if (s->quoted && p[i] == '\\' && i + 1 < n)
			i++;
		if (o + 1 >= cap)
			return (size_t)-1;
		out[o++] = p[i];
	}
	if (cap == 0)
		return (size_t)-1;
	out[o] = '\0';
	return o;
}

bool
authres_span_is(const struct authres_span *s, const char *lit)
{
	char buf[AUTHRES_MAX_VALUE + 1];
	size_t n = authres_span_copy(s, buf, sizeof(buf));
	return n != (size_t)-1 && n == strlen(lit) && strncasecmp(buf, lit, n) == 0;
}

const struct authres_method *
authres_find(const struct authres_parsed *ar, const char *method)
{
	for (size_t i = 0; i < ar->nmethods; i++)
		if (span_lit(&ar->methods[i].method, method))
			return &ar->methods[i];
	return NULL;
}
