/*
 * jsonr: recursive-descent JSON reader (RFC 8259). Depth is bounded by
 * JSONR_MAX_DEPTH, so the recursion is too.
 */
#include "jsonr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rd {
	const char *s;
	size_t len, pos;
	char *why;
	size_t why_len;
};

static void
fail(struct rd *r, const char *msg)
{
	if (r->why && r->why_len && !r->why[0])
		snprintf(r->why, r->why_len, "%s at offset %zu", msg, r->pos);
}

static void
skip_ws(struct rd *r)
{
	while (r->pos < r->len) {
		char c = r->s[r->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		r->pos++;
	}
}

void
jsonr_free(struct jsonr_val *v)
{
	while (v) {
		struct jsonr_val *next = v->next;
		jsonr_free(v->child);
		free(v->str);
		free(v->key);
		free(v);
		v = next;
	}
}

static int
hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static size_t
put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* At the opening quote; a malloc'd decoded string (the decoded form is never
 * longer than the escaped one). */
static char *
parse_string(struct rd *r, size_t *out_len)
{
	r->pos++;
	size_t start = r->pos;
	size_t end = start;
	while (end < r->len && r->s[end] != '"') {
		if (r->s[end] == '\\')
			end++;
		end++;
	}
	if (end >= r->len) {
		fail(r, "unterminated string");
		return NULL;
	}
	char *o = malloc(end - start + 1);
	if (!o) {
		fail(r, "out of memory");
		return NULL;
	}
	size_t n = 0;
	while (r->pos < end) {
		unsigned char c = (unsigned char)r->s[r->pos];
		if (c < 0x20) {
			fail(r, "control character in string");
			goto fail;
		}
		if (c != '\\') {
			o[n++] = (char)c;
			r->pos++;
			continue;
		}
		char e = r->s[r->pos + 1];
		r->pos += 2;
		switch (e) {
		case '"':
		case '\\':
		case '/':
			o[n++] = e;
			break;
		case 'b':
			o[n++] = '\b';
			break;
		case 'f':
			o[n++] = '\f';
			break;
		case 'n':
			o[n++] = '\n';
			break;
		case 'r':
			o[n++] = '\r';
			break;
		case 't':
			o[n++] = '\t';
			break;
		case 'u': {
			unsigned cp, lo;
			if (r->pos + 4 > end || hex4(r->s + r->pos, &cp) < 0) {
				fail(r, "bad \\u escape");
				goto fail;
			}
			r->pos += 4;
			if (cp >= 0xd800 && cp < 0xdc00) {
				if (r->pos + 6 > end || r->s[r->pos] != '\\' || r->s[r->pos + 1] != 'u' ||
				    hex4(r->s + r->pos + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff) {
					fail(r, "unpaired surrogate");
					goto fail;
				}
				r->pos += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				fail(r, "unpaired surrogate");
				goto fail;
			}
			/* \u0000 would cut the C string: refused */
			if (cp == 0) {
				fail(r, "\\u0000 in string");
				goto fail;
			}
			n += put_utf8(o + n, cp);
			break;
		}
		default:
			fail(r, "bad escape");
			goto fail;
		}
	}
	o[n] = '\0';
	r->pos = end + 1;
	*out_len = n;
	return o;
fail:
	free(o);
	return NULL;
}

static int
parse_number(struct rd *r, struct jsonr_val *v)
{
	size_t start = r->pos;
	const char *s = r->s;
	size_t p = r->pos;
	bool integer = true;
	if (p < r->len && s[p] == '-')
		p++;
	if (p < r->len && s[p] == '0') {
		p++;
	} else if (p < r->len && s[p] >= '1' && s[p] <= '9') {
		while (p < r->len && s[p] >= '0' && s[p] <= '9')
			p++;
	} else {
		fail(r, "bad number");
		return -1;
	}
	if (p < r->len && s[p] == '.') {
		integer = false;
		p++;
		if (p >= r->len || s[p] < '0' || s[p] > '9') {
			fail(r, "bad number");
			return -1;
		}
		while (p < r->len && s[p] >= '0' && s[p] <= '9')
			p++;
	}
	if (p < r->len && (s[p] == 'e' || s[p] == 'E')) {
		integer = false;
		p++;
		if (p < r->len && (s[p] == '+' || s[p] == '-'))
			p++;
		if (p >= r->len || s[p] < '0' || s[p] > '9') {
			fail(r, "bad number");
			return -1;
		}
		while (p < r->len && s[p] >= '0' && s[p] <= '9')
			p++;
	}
	char buf[64];
	size_t n = p - start;
	if (n >= sizeof(buf)) {
		fail(r, "number too long");
		return -1;
	}
	memcpy(buf, s + start, n);
	buf[n] = '\0';
	v->type = JSONR_NUM;
	v->num = strtod(buf, NULL);
	if (integer) {
		errno = 0;
		long long ll = strtoll(buf, NULL, 10);
		if (errno == 0) {
			v->is_int = true;
			v->i = ll;
		}
	}
	r->pos = p;
	return 0;
}

static struct jsonr_val *parse_value(struct rd *r, unsigned depth);

static int
parse_container(struct rd *r, struct jsonr_val *v, unsigned depth, bool obj)
{
	char close = obj ? '}' : ']';
	struct jsonr_val **tail = &v->child;
	r->pos++;
	skip_ws(r);
	if (r->pos < r->len && r->s[r->pos] == close) {
		r->pos++;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		size_t key_len = 0;
		if (obj) {
			skip_ws(r);
			if (r->pos >= r->len || r->s[r->pos] != '"') {
				fail(r, "expected member name");
				return -1;
			}
			key = parse_string(r, &key_len);
			if (!key)
				return -1;
			skip_ws(r);
			if (r->pos >= r->len || r->s[r->pos] != ':') {
				free(key);
				fail(r, "expected ':'");
				return -1;
			}
			r->pos++;
		}
		struct jsonr_val *c = parse_value(r, depth + 1);
		if (!c) {
			free(key);
			return -1;
		}
		c->key = key;
		c->key_len = key_len;
		*tail = c;
		tail = &c->next;
		v->n++;
		skip_ws(r);
		if (r->pos < r->len && r->s[r->pos] == ',') {
			r->pos++;
			continue;
		}
		if (r->pos < r->len && r->s[r->pos] == close) {
			r->pos++;
			return 0;
		}
		fail(r, obj ? "expected ',' or '}'" : "expected ',' or ']'");
		return -1;
	}
}

static bool
literal(struct rd *r, const char *word)
{
	size_t n = strlen(word);
	if (r->len - r->pos < n || memcmp(r->s + r->pos, word, n) != 0)
		return false;
	r->pos += n;
	return true;
}

static struct jsonr_val *
parse_value(struct rd *r, unsigned depth)
{
	if (depth > JSONR_MAX_DEPTH) {
		fail(r, "nesting deeper than JSONR_MAX_DEPTH");
		return NULL;
	}
	skip_ws(r);
	if (r->pos >= r->len) {
		fail(r, "unexpected end");
		return NULL;
	}
	struct jsonr_val *v = calloc(1, sizeof(*v));
	if (!v) {
		fail(r, "out of memory");
		return NULL;
	}
	char c = r->s[r->pos];
	int rc = 0;
	if (c == '{') {
		v->type = JSONR_OBJ;
		rc = parse_container(r, v, depth, true);
	} else if (c == '[') {
		v->type = JSONR_ARR;
		rc = parse_container(r, v, depth, false);
	} else if (c == '"') {
		v->type = JSONR_STR;
		v->str = parse_string(r, &v->len);
		rc = v->str ? 0 : -1;
	} else if (literal(r, "true")) {
		v->type = JSONR_BOOL;
		v->b = true;
	} else if (literal(r, "false")) {
		v->type = JSONR_BOOL;
	} else if (literal(r, "null")) {
		v->type = JSONR_NULL;
	} else {
		rc = parse_number(r, v);
	}
	if (rc < 0) {
		jsonr_free(v);
		return NULL;
	}
	return v;
}

struct jsonr_val *
jsonr_parse(const char *text, size_t len, char *why, size_t why_len)
{
	struct rd r = {text, len, 0, why, why_len};
	if (why && why_len)
		why[0] = '\0';
	if (len > JSONR_MAX_LEN) {
		fail(&r, "input longer than JSONR_MAX_LEN");
		return NULL;
	}
	struct jsonr_val *v = parse_value(&r, 1);
	if (!v)
		return NULL;
	skip_ws(&r);
	if (r.pos != len) {
		fail(&r, "trailing bytes");
		jsonr_free(v);
		return NULL;
	}
	return v;
}

const struct jsonr_val *
jsonr_get(const struct jsonr_val *obj, const char *key)
{
	if (!obj || obj->type != JSONR_OBJ)
		return NULL;
	size_t n = strlen(key);
	for (const struct jsonr_val *c = obj->child; c; c = c->next)
		if (c->key_len == n && memcmp(c->key, key, n) == 0)
			return c;
	return NULL;
}

const char *
jsonr_get_str(const struct jsonr_val *obj, const char *key)
{
	const struct jsonr_val *v = jsonr_get(obj, key);
	return v && v->type == JSONR_STR ? v->str : NULL;
}
