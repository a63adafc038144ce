#include "canon.h"

#include <string.h>

#include "hash.h"

int
canon_parse(const char *s, size_t len, enum canon_alg *out)
{
	if (len == 6 && memcmp(s, "simple", 6) == 0) {
		*out = CANON_SIMPLE;
		return 0;
	}
	if (len == 7 && memcmp(s, "relaxed", 7) == 0) {
		*out = CANON_RELAXED;
		return 0;
	}
	return -1;
}

const char *
canon_name(enum canon_alg a)
{
	return a == CANON_RELAXED ? "relaxed" : "simple";
}

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

size_t
canon_header(enum canon_alg alg, const char *raw, size_t len, bool with_crlf, char *out, size_t cap)
{
	if (cap < len + 2)
		return (size_t)-1;
	size_t o = 0;
	if (alg == CANON_SIMPLE) {
		memcpy(out, raw, len);
		o = len;
	} else {
		const char *colon = memchr(raw, ':', len);
		size_t name_end = colon ? (size_t)(colon - raw) : len;
		size_t ne = name_end;
		while (ne > 0 && is_wsp(raw[ne - 1]))
			ne--;
		for (size_t i = 0; i < ne; i++) {
			char c = raw[i];
			out[o++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
		}
		if (colon) {
			out[o++] = ':';
			bool wsp = false, started = false;
			for (size_t i = name_end + 1; i < len; i++) {
				char c = raw[i];
				if (c == '\r' && i + 1 < len && raw[i + 1] == '\n') {
					i++; /* unfold: the CRLF goes, the WSP after it stays */
					continue;
				}
				if (is_wsp(c)) {
					wsp = true;
					continue;
				}
				if (wsp && started)
					out[o++] = ' ';
				wsp = false;
				started = true;
				out[o++] = c;
			}
		}
	}
	if (with_crlf) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	return o;
}

/* ---- body ---------------------------------------------------------- */

/* byte classes: 0 plain data, 1 WSP (relaxed only), 2 CR, 3 LF */
enum { C_DATA, C_WSP, C_CR, C_LF };
static const uint8_t class_simple[256] = {['\r'] = C_CR, ['\n'] = C_LF};
static const uint8_t class_relaxed[256] = {[' '] = C_WSP, ['\t'] = C_WSP, ['\r'] = C_CR,
					   ['\n'] = C_LF};

void
canon_body_init(struct canon_body *cb, enum canon_alg alg, uint64_t limit, struct ws_hash *hash)
{
	cb->alg = alg;
	cb->hash = hash;
	cb->limit = limit;
	cb->hashed = cb->total = cb->pending_crlf = 0;
	cb->line_has_data = cb->wsp_pending = cb->cr_held = cb->any_line = false;
	cb->staged = 0;
}

static void
flush(struct canon_body *cb)
{
	if (cb->staged) {
		ws_hash_update(cb->hash, cb->stage, cb->staged);
		cb->staged = 0;
	}
}

/* Append canonical bytes: counted always, hashed up to the limit. */
static void
emit(struct canon_body *cb, const uint8_t *p, size_t n)
{
	cb->total += n;
	if (cb->hashed >= cb->limit)
		return;
	if (cb->limit - cb->hashed < n)
		n = (size_t)(cb->limit - cb->hashed);
	cb->hashed += n;
	if (n > CANON_STAGE - cb->staged) {
		flush(cb);
		if (n >= CANON_STAGE) {
			ws_hash_update(cb->hash, p, n);
			return;
		}
	}
	memcpy(cb->stage + cb->staged, p, n);
	cb->staged += n;
}

static void
emit_crlfs(struct canon_body *cb, uint64_t n)
{
	static const uint8_t crlf8[16] = "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";
	while (n > 0) {
		size_t k = n > 8 ? 8 : (size_t)n;
		emit(cb, crlf8, 2 * k);
		n -= k;
	}
}

/* The current line has data: release held-back empty lines and the WSP run. */
static inline void
begin_data(struct canon_body *cb)
{
	if (!cb->line_has_data) {
		if (cb->pending_crlf) {
			emit_crlfs(cb, cb->pending_crlf);
			cb->pending_crlf = 0;
		}
		cb->line_has_data = true;
	}
}

static inline void
data_run(struct canon_body *cb, const uint8_t *p, size_t n)
{
	begin_data(cb);
	if (cb->wsp_pending) {
		/* relaxed only: the run is internal or leading, one SP stands for it */
		emit(cb, (const uint8_t *)" ", 1);
		cb->wsp_pending = false;
	}
	emit(cb, p, n);
}

static inline void
line_end(struct canon_body *cb)
{
	if (cb->line_has_data)
		emit(cb, (const uint8_t *)"\r\n", 2);
	else
		cb->pending_crlf++;
	cb->line_has_data = false;
	cb->wsp_pending = false;
	cb->any_line = true;
}

void
canon_body_update(struct canon_body *cb, const uint8_t *data, size_t len)
{
	const uint8_t *cls = cb->alg == CANON_RELAXED ? class_relaxed : class_simple;
	size_t i = 0;
	if (cb->cr_held && len > 0) {
		cb->cr_held = false;
		if (data[0] == '\n') {
			line_end(cb);
			i = 1;
		} else {
			data_run(cb, (const uint8_t *)"\r", 1); /* a bare CR is data */
		}
	}
	while (i < len) {
		size_t j = i;
		while (j < len && cls[data[j]] == C_DATA)
			j++;
		if (j > i) {
			data_run(cb, data + i, j - i);
			i = j;
			if (i == len)
				break;
		}
		switch (cls[data[i]]) {
		case C_WSP:
			cb->wsp_pending = true;
			i++;
			break;
		case C_LF: /* bare LF: a line end */
			line_end(cb);
			i++;
			break;
		case C_CR:
			if (i + 1 == len) {
				cb->cr_held = true;
				i++;
			} else if (data[i + 1] == '\n') {
				line_end(cb);
				i += 2;
			} else {
				data_run(cb, data + i, 1);
				i++;
			}
			break;
		}
	}
}

void
canon_body_final(struct canon_body *cb)
{
	if (cb->cr_held) {
		cb->cr_held = false;
		data_run(cb, (const uint8_t *)"\r", 1);
	}
	if (cb->line_has_data)
		line_end(cb); /* no trailing CRLF: one is added */
	if (cb->alg == CANON_SIMPLE && cb->total == 0)
		emit(cb, (const uint8_t *)"\r\n", 2); /* empty body: one CRLF */
	flush(cb);
}
