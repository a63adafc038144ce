#include "taglist.h"

#include <string.h>
#include <strings.h>

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_alnumpunc(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '_';
}

static int
is_tval(unsigned char c)
{
	return (c >= 0x21 && c <= 0x3a) || (c >= 0x3c && c <= 0x7e);
}

/* FWS here is lenient about how CR/LF appear; the header parser already
 * normalised line ends, and a stray line break inside a value is harmless to
 * the value's own syntax checks. */
static size_t
skip_wsp(const char *s, size_t i, size_t len)
{
	while (i < len && is_wsp(s[i]))
		i++;
	return i;
}

int
taglist_parse(const char *s, size_t len, struct taglist *out, const char **why)
{
	out->n = 0;
	size_t i = 0;
	for (;;) {
		i = skip_wsp(s, i, len);
		if (i == len)
			return 0; /* empty list, or a trailing ";" */
		size_t name = i;
		if (!is_alpha(s[i])) {
			*why = "tag name must start with a letter";
			return -1;
		}
		while (i < len && is_alnumpunc(s[i]))
			i++;
		size_t name_len = i - name;
		if (name_len > TAGLIST_MAX_NAME) {
			*why = "tag name too long";
			return -1;
		}
		i = skip_wsp(s, i, len);
		if (i == len || s[i] != '=') {
			*why = "tag without '='";
			return -1;
		}
		size_t eq_end = i + 1;
		i = skip_wsp(s, i + 1, len);
		size_t vstart = i, vend = i;
		while (i < len && s[i] != ';') {
			if (is_wsp(s[i])) {
				i++;
				continue;
			}
			if (!is_tval((unsigned char)s[i])) {
				*why = "invalid character in tag value";
				return -1;
			}
			i++;
			vend = i;
		}
		for (size_t k = 0; k < out->n; k++) {
			if (out->tags[k].name_len == name_len &&
			    memcmp(out->tags[k].name, s + name, name_len) == 0) {
				*why = "duplicate tag";
				return -1;
			}
		}
		if (out->n == TAGLIST_MAX_TAGS) {
			*why = "too many tags";
			return -1;
		}
		out->tags[out->n++] = (struct taglist_tag){
			.name = s + name,
			.name_len = name_len,
			.value = s + vstart,
			.value_len = vend - vstart,
			.value_off = vstart,
			.eq_end = eq_end,
			.spec_end = i,
		};
		if (i == len)
			return 0;
		i++; /* ';' */
	}
}

const struct taglist_tag *
taglist_get(const struct taglist *tl, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < tl->n; i++)
		if (tl->tags[i].name_len == n && memcmp(tl->tags[i].name, name, n) == 0)
			return &tl->tags[i];
	return NULL;
}

size_t
taglist_value_nows(const struct taglist_tag *t, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < t->value_len; i++) {
		if (is_wsp(t->value[i]))
			continue;
		if (o + 1 >= cap)
			return (size_t)-1;
		out[o++] = t->value[i];
	}
	if (cap)
		out[o] = '\0';
	return o;
}

int
taglist_value_is(const struct taglist_tag *t, const char *s, int nocase)
{
	size_t n = strlen(s);
	if (t->value_len != n)
		return 0;
	return nocase ? strncasecmp(t->value, s, n) == 0 : memcmp(t->value, s, n) == 0;
}
