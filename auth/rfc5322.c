#include "rfc5322.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
	S_LINE_START, /* at the first byte of a line */
	S_IN_LINE,
	S_CR,       /* a CR inside a line: LF expected */
	S_BLANK_CR, /* a CR as the first byte of a line: end of block if LF follows */
};

#define RFC5322_LINE_LIMIT 998u

static const char *const error_names[] = {
	[RFC5322_OK] = "no error",
	[RFC5322_ERR_NO_COLON] = "header line without a colon",
	[RFC5322_ERR_BAD_NAME] = "invalid header field name",
	[RFC5322_ERR_LEADING_FOLD] = "continuation line before the first header field",
	[RFC5322_ERR_FIELD_TOO_LONG] = "header field longer than 65536 bytes",
	[RFC5322_ERR_TOO_MANY] = "more than 1000 header fields",
	[RFC5322_ERR_BLOCK_TOO_BIG] = "header block larger than 1 MiB",
	[RFC5322_ERR_NOMEM] = "out of memory",
};

const char *
rfc5322_strerror(enum rfc5322_error e)
{
	if ((unsigned)e >= sizeof(error_names) / sizeof(error_names[0]))
		return "unknown error";
	return error_names[e];
}

void
rfc5322_init(struct rfc5322_header *h)
{
	memset(h, 0, sizeof(*h));
	h->first_line = true;
}

void
rfc5322_free(struct rfc5322_header *h)
{
	free(h->block);
	free(h->fields);
	memset(h, 0, sizeof(*h));
}

void
rfc5322_reset(struct rfc5322_header *h)
{
	char *block = h->block;
	struct rfc5322_field *fields = h->fields;
	size_t cap = h->cap, fcap = h->fields_cap;
	rfc5322_init(h);
	h->block = block;
	h->cap = cap;
	h->fields = fields;
	h->fields_cap = fcap;
}

static enum rfc5322_status
fail(struct rfc5322_header *h, enum rfc5322_error e)
{
	h->error = e;
	return RFC5322_ERROR;
}

/* Room for n more bytes, within the block limit (+2 for a final CRLF). */
static bool
reserve(struct rfc5322_header *h, size_t n)
{
	if (h->len + n <= h->cap)
		return true;
	size_t want = h->cap ? h->cap : 4096;
	while (want < h->len + n)
		want *= 2;
	if (want > RFC5322_MAX_BLOCK + 2)
		want = RFC5322_MAX_BLOCK + 2;
	if (want < h->len + n)
		return false;
	char *nb = realloc(h->block, want);
	if (!nb)
		return false;
	h->block = nb;
	h->cap = want;
	return true;
}

static bool
is_name_byte(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/* The field collected in [field_start, len - 2) is complete: index it. */
static enum rfc5322_status
close_field(struct rfc5322_header *h)
{
	if (h->field_start >= h->len)
		return RFC5322_NEED_MORE; /* no field open */
	size_t start = h->field_start, end = h->len - 2;
	h->field_start = h->len;
	const char *b = h->block;
	size_t colon = start;
	while (colon < end && b[colon] != ':' && b[colon] != '\r')
		colon++;
	if (colon >= end || b[colon] != ':')
		return fail(h, RFC5322_ERR_NO_COLON);
	size_t name_end = colon;
	while (name_end > start && (b[name_end - 1] == ' ' || b[name_end - 1] == '\t'))
		name_end--;
	if (name_end == start)
		return fail(h, RFC5322_ERR_BAD_NAME);
	for (size_t i = start; i < name_end; i++)
		if (!is_name_byte((unsigned char)b[i]))
			return fail(h, RFC5322_ERR_BAD_NAME);
	/* any byte >= 0x80: eight at a time */
	uint64_t hi = 0;
	size_t i = start;
	for (; i + 8 <= end; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, 8);
		hi |= w;
	}
	for (; i < end; i++)
		hi |= (unsigned char)b[i];
	if (hi & 0x8080808080808080ull)
		h->counters.eight_bit++;
	if (h->nfields == h->fields_cap) {
		size_t ncap = h->fields_cap ? h->fields_cap * 2 : 32;
		struct rfc5322_field *nf = realloc(h->fields, ncap * sizeof(*nf));
		if (!nf)
			return fail(h, RFC5322_ERR_NOMEM);
		h->fields = nf;
		h->fields_cap = ncap;
	}
	h->fields[h->nfields++] = (struct rfc5322_field){
		.off = (uint32_t)start,
		.len = (uint32_t)(end - start),
		.name_len = (uint32_t)(name_end - start),
		.value = (uint32_t)(colon + 1),
	};
	return RFC5322_NEED_MORE;
}

static enum rfc5322_status
append(struct rfc5322_header *h, const char *p, size_t n)
{
	if (h->len + n > RFC5322_MAX_BLOCK)
		return fail(h, RFC5322_ERR_BLOCK_TOO_BIG);
	if (h->len + n - h->field_start > RFC5322_MAX_FIELD_LEN + 2)
		return fail(h, RFC5322_ERR_FIELD_TOO_LONG);
	if (!reserve(h, n))
		return fail(h, RFC5322_ERR_NOMEM);
	memcpy(h->block + h->len, p, n);
	h->len += n;
	return RFC5322_NEED_MORE;
}

/* A line ended (CRLF already appended). */
static enum rfc5322_status
end_line(struct rfc5322_header *h)
{
	size_t line_len = h->len - 2 - h->line_start;
	if (line_len > RFC5322_LINE_LIMIT)
		h->counters.long_lines++;
	if (h->first_line) {
		h->first_line = false;
		/* an mbox separator ("From addr date") before the first field */
		if (line_len >= 5 && memcmp(h->block + h->line_start, "From ", 5) == 0 &&
		    h->line_start == h->field_start) {
			h->counters.mbox_from++;
			h->len = h->line_start;
			h->field_start = h->len;
		}
	}
	h->line_start = h->len;
	h->state = S_LINE_START;
	return RFC5322_NEED_MORE;
}

static enum rfc5322_status
start_field(struct rfc5322_header *h)
{
	if (close_field(h) == RFC5322_ERROR)
		return RFC5322_ERROR;
	if (h->nfields >= RFC5322_MAX_FIELDS)
		return fail(h, RFC5322_ERR_TOO_MANY);
	h->field_start = h->len;
	return RFC5322_NEED_MORE;
}

static enum rfc5322_status
complete(struct rfc5322_header *h)
{
	if (close_field(h) == RFC5322_ERROR)
		return RFC5322_ERROR;
	h->done = true;
	return RFC5322_DONE;
}

enum rfc5322_status
rfc5322_push(struct rfc5322_header *h, const uint8_t *data, size_t len, size_t *consumed)
{
	*consumed = 0;
	if (h->error)
		return RFC5322_ERROR;
	if (h->done)
		return RFC5322_DONE;
	static const char crlf[2] = {'\r', '\n'};
	size_t i = 0;
	while (i < len) {
		char c = (char)data[i];
		switch (h->state) {
		case S_LINE_START:
			if (c == '\r') {
				h->state = S_BLANK_CR;
				i++;
				continue;
			}
			if (c == '\n') {
				h->counters.bare_lf++;
				*consumed = i + 1;
				return complete(h);
			}
			if (c == ' ' || c == '\t') {
				if (h->field_start >= h->len)
					return fail(h, RFC5322_ERR_LEADING_FOLD);
			} else if (start_field(h) == RFC5322_ERROR) {
				return RFC5322_ERROR;
			}
			h->state = S_IN_LINE;
			continue; /* the byte is appended by S_IN_LINE */
		case S_BLANK_CR:
			if (c == '\n') {
				*consumed = i + 1;
				return complete(h);
			}
			/* CR then something else at a line start: data of a new
			 * line, which cannot be a valid field name. */
			h->counters.bare_cr++;
			if (start_field(h) == RFC5322_ERROR || append(h, "\r", 1) == RFC5322_ERROR)
				return RFC5322_ERROR;
			h->state = S_IN_LINE;
			continue;
		case S_IN_LINE: {
			/* copy the run up to the next CR or LF at once (memchr is
			 * vectorised; header lines are tens of bytes long) */
			const uint8_t *nl = memchr(data + i, '\n', len - i);
			size_t j = nl ? (size_t)(nl - data) : len;
			const uint8_t *cr = memchr(data + i, '\r', j - i);
			if (cr)
				j = (size_t)(cr - data);
			if (j > i && append(h, (const char *)data + i, j - i) == RFC5322_ERROR)
				return RFC5322_ERROR;
			i = j;
			if (i == len)
				break;
			if (data[i] == '\r') {
				h->state = S_CR;
				i++;
				continue;
			}
			h->counters.bare_lf++;
			if (append(h, crlf, 2) == RFC5322_ERROR)
				return RFC5322_ERROR;
			end_line(h);
			i++;
			continue;
		}
		case S_CR:
			if (c == '\n') {
				if (append(h, crlf, 2) == RFC5322_ERROR)
					return RFC5322_ERROR;
				end_line(h);
				i++;
				continue;
			}
			h->counters.bare_cr++;
			if (append(h, "\r", 1) == RFC5322_ERROR)
				return RFC5322_ERROR;
			h->state = S_IN_LINE;
			continue;
		}
	}
	*consumed = len;
	return RFC5322_NEED_MORE;
}

enum rfc5322_status
rfc5322_finish(struct rfc5322_header *h)
{
	if (h->error)
		return RFC5322_ERROR;
	if (h->done)
		return RFC5322_DONE;
	static const char crlf[2] = {'\r', '\n'};
	if (h->state == S_CR || h->state == S_IN_LINE) {
		if (append(h, crlf, 2) == RFC5322_ERROR)
			return RFC5322_ERROR;
		end_line(h);
	}
	return complete(h);
}

bool
rfc5322_field_is(const struct rfc5322_header *h, const struct rfc5322_field *f, const char *name,
		 size_t name_len)
{
	return f->name_len == name_len && strncasecmp(h->block + f->off, name, name_len) == 0;
}
