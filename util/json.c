#include "json.h"

#include <string.h>

static void
sep(struct json *j)
{
	if (j->need_comma[j->depth])
		fputc(',', j->f);
	j->need_comma[j->depth] = true;
}

static void write_str(struct json *j, const char *s, size_t n);

/* A value inside an array is separated from the one before it. */
static void
value(struct json *j)
{
	if (j->in_array[j->depth])
		sep(j);
}

void
json_begin(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	fputc('{', f);
	j->depth = 1;
}

void
json_begin_buffered(struct json *j, FILE *f)
{
	json_begin(j, f);
	j->buffered = true;
}

void
json_end(struct json *j)
{
	fputs("}\n", j->f);
	if (!j->buffered)
		fflush(j->f);
}

void
json_key(struct json *j, const char *key)
{
	sep(j);
	write_str(j, key, strlen(key));
	fputc(':', j->f);
}

/* Length of a valid UTF-8 sequence at s (max n bytes), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t need = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
	if (need == 0 || need > n || s[0] > 0xf4)
		return 0;
	for (size_t i = 1; i < need; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return need;
}

static void
write_str(struct json *j, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	FILE *f = j->f;
	fputc('"', f);
	size_t run = 0; /* start of the pending run of bytes written as they are */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = u[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			continue;
		if (c >= 0x80) {
			size_t k = utf8_len(u + i, n - i);
			if (k) {
				i += k - 1;
				continue;
			}
		}
		fwrite(u + run, 1, i - run, f);
		run = i + 1;
		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc(c, f);
		} else if (c == '\n') {
			fputs("\\n", f);
		} else if (c == '\r') {
			fputs("\\r", f);
		} else if (c == '\t') {
			fputs("\\t", f);
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u%04x", c);
		} else {
			fputs("\\ufffd", f); /* invalid UTF-8 */
		}
	}
	fwrite(u + run, 1, n - run, f);
	fputc('"', f);
}

void
json_strn(struct json *j, const char *s, size_t n)
{
	value(j);
	write_str(j, s, n);
}

void
json_str(struct json *j, const char *s)
{
	if (s) {
		json_strn(j, s, strlen(s));
	} else {
		value(j);
		fputs("null", j->f);
	}
}

void
json_int(struct json *j, long long v)
{
	value(j);
	fprintf(j->f, "%lld", v);
}

void
json_bool(struct json *j, bool v)
{
	value(j);
	fputs(v ? "true" : "false", j->f);
}

void
json_null(struct json *j)
{
	value(j);
	fputs("null", j->f);
}

void
json_obj(struct json *j)
{
	value(j);
	fputc('{', j->f);
	if (j->depth + 1 < sizeof(j->need_comma))
		j->depth++;
	j->need_comma[j->depth] = false;
	j->in_array[j->depth] = false;
}

void
json_obj_end(struct json *j)
{
	fputc('}', j->f);
	if (j->depth > 0)
		j->depth--;
}

void
json_arr(struct json *j)
{
	value(j);
	fputc('[', j->f);
	if (j->depth + 1 < sizeof(j->need_comma))
		j->depth++;
	j->need_comma[j->depth] = false;
	j->in_array[j->depth] = true;
}

void
json_arr_end(struct json *j)
{
	fputc(']', j->f);
	if (j->depth > 0)
		j->depth--;
}
