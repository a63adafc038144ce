#include "canon.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#define CANON_HAVE_SSE2 1
#else
#define CANON_HAVE_SSE2 0
#endif
#if CANON_HAVE_SSE2 && defined(__x86_64__)
#include <immintrin.h>
#define CANON_HAVE_AVX512 1
#else
#define CANON_HAVE_AVX512 0
#endif

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

/* The CPU runs scan_avx512 (a load of libgcc's CPU model, no CPUID). */
static bool
canon_use_avx512(void)
{
#if CANON_HAVE_AVX512
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#else
	return false;
#endif
}

void
canon_body_init(struct canon_body *cb, enum canon_alg alg, uint64_t limit, struct ws_hash *hash)
{
	cb->alg = alg;
	cb->hash = hash;
	cb->limit = limit;
	cb->hashed = cb->total = cb->pending_crlf = 0;
	cb->line_has_data = cb->wsp_pending = cb->cr_held = false;
	cb->staged = 0;
	cb->flush_each = false;
	cb->scalar = !CANON_HAVE_SSE2;
	cb->wide = canon_use_avx512();
}

void
canon_body_force_scalar(struct canon_body *cb)
{
	cb->scalar = true;
}

void
canon_body_force_sse2(struct canon_body *cb)
{
	cb->wide = false;
}

static void
flush(struct canon_body *cb)
{
	if (cb->staged) {
		ws_hash_update(cb->hash, cb->stage, cb->staged);
		cb->staged = 0;
	}
}

/* Runs at least this long skip the staging buffer. */
#define CANON_DIRECT 1024u

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
	if (n >= CANON_DIRECT || n > CANON_STAGE - cb->staged) {
		/* long runs go to the hash from where they are: no copy */
		flush(cb);
		if (n >= CANON_DIRECT) {
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
}

/* Bytes of class C_DATA from i on. */
static inline size_t
scan_class(const uint8_t *cls, const uint8_t *d, size_t i, size_t len)
{
	while (i < len && cls[d[i]] == C_DATA)
		i++;
	return i;
}

/*
 * End of the run from i on that is already in canonical form and can be
 * hashed as it stands. It holds data bytes (for simple every byte but CR and
 * LF; for relaxed every byte but WSP, CR and LF), for relaxed also a single
 * SP followed by a data byte (one SP is its own canonical form), and a CRLF
 * that ends a line with data in it (a CRLF at the run's start, or right
 * after another CRLF, begins an empty line, which may turn out to be
 * trailing: those stop the run). Only valid when no WSP run is pending.
 * The byte classes make the simple/relaxed difference (for simple, WSP is
 * data). scan_from continues a run begun at start; scan_scalar is the
 * reference that scan_sse2 must agree with byte for byte.
 */
static size_t
scan_from(const uint8_t *cls, const uint8_t *d, size_t start, size_t j, size_t len)
{
	while (j < len) {
		uint8_t c = d[j];
		if (cls[c] == C_DATA) {
			j++;
		} else if (c == ' ' && j + 1 < len && cls[d[j + 1]] == C_DATA) {
			j++;
		} else if (c == '\r' && j > start && d[j - 1] != '\n' && j + 1 < len &&
			   d[j + 1] == '\n') {
			j += 2;
		} else {
			break;
		}
	}
	return j;
}

static size_t
scan_scalar(const uint8_t *cls, const uint8_t *d, size_t i, size_t len)
{
	return scan_from(cls, d, i, i, len);
}

#if CANON_HAVE_SSE2
/* 16 bytes at a time. Measured on the bench corpus (relaxed, text and
 * base64 bodies): canonicalise+hash went from 0.63 to 1.09 GB/s with the
 * 16-byte scan, against 1.6 GB/s for the hash alone. This is the loop of a
 * run begun at i, from j (> i) on, then the tail. */
static size_t
scan16_from(const uint8_t *cls, bool relaxed, const uint8_t *d, size_t i, size_t j, size_t len)
{
	const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
	const __m128i sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t');
	while (j + 17 <= len) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(d + j));
		__m128i w = _mm_loadu_si128((const __m128i *)(const void *)(d + j + 1)); /* next */
		__m128i u = _mm_loadu_si128((const __m128i *)(const void *)(d + j - 1)); /* previous */
		__m128i v_cr = _mm_cmpeq_epi8(v, cr), v_lf = _mm_cmpeq_epi8(v, lf);
		__m128i w_lf = _mm_cmpeq_epi8(w, lf);
		/* CR: only as the start of a CRLF on a line that has data;
		 * LF: only as the end of such a CRLF */
		__m128i stop = _mm_andnot_si128(w_lf, v_cr);
		stop = _mm_or_si128(stop, _mm_and_si128(v_cr, _mm_cmpeq_epi8(u, lf)));
		stop = _mm_or_si128(stop, _mm_andnot_si128(_mm_cmpeq_epi8(u, cr), v_lf));
		if (relaxed) {
			__m128i w_ws = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, sp), _mm_cmpeq_epi8(w, tab)),
						    _mm_or_si128(_mm_cmpeq_epi8(w, cr), w_lf));
			stop = _mm_or_si128(stop, _mm_cmpeq_epi8(v, tab));
			stop = _mm_or_si128(stop, _mm_and_si128(_mm_cmpeq_epi8(v, sp), w_ws));
		}
		unsigned m = (unsigned)_mm_movemask_epi8(stop);
		if (m)
			return j + (size_t)__builtin_ctz(m);
		j += 16;
	}
	/* A CR accepted in the last lane has its LF at d[j] (the lookahead saw
	 * it): the pair is one unit, so take the LF before handing over. */
	if (j > i + 1 && d[j - 1] == '\r')
		j++;
	/* the tail by the scalar rule, continuing the same run */
	return scan_from(cls, d, i, j, len);
}

static size_t
scan_sse2(const uint8_t *cls, bool relaxed, const uint8_t *d, size_t i, size_t len)
{
	/* The first byte by the scalar rule, so that every lane below has its
	 * previous byte inside the run: a CR there is then always one that was
	 * accepted as the start of a CRLF. */
	if (i >= len || scan_scalar(cls, d, i, i + 2 < len ? i + 2 : len) == i)
		return i;
	return scan16_from(cls, relaxed, d, i, i + 1, len);
}

#if CANON_HAVE_AVX512
/*
 * scan_sse2 with a 64-byte step first (AVX-512 BW compare masks): the same
 * stop rule per byte, so the same answer (the tests run every body through
 * the scalar scanner too). Bodies are mostly long runs; the 16-byte loop
 * then takes the last < 64 bytes.
 */
__attribute__((target("avx512f,avx512bw"))) static size_t
scan_avx512(const uint8_t *cls, bool relaxed, const uint8_t *d, size_t i, size_t len)
{
	if (i >= len || scan_scalar(cls, d, i, i + 2 < len ? i + 2 : len) == i)
		return i;
	const __m512i cr = _mm512_set1_epi8('\r'), lf = _mm512_set1_epi8('\n');
	const __m512i sp = _mm512_set1_epi8(' '), tab = _mm512_set1_epi8('\t');
	size_t j = i + 1;
	while (j + 65 <= len) {
		__m512i v = _mm512_loadu_si512((const void *)(d + j));
		__m512i w = _mm512_loadu_si512((const void *)(d + j + 1));
		__m512i u = _mm512_loadu_si512((const void *)(d + j - 1));
		__mmask64 v_cr = _mm512_cmpeq_epi8_mask(v, cr), v_lf = _mm512_cmpeq_epi8_mask(v, lf);
		__mmask64 w_lf = _mm512_cmpeq_epi8_mask(w, lf);
		__mmask64 stop = (v_cr & ~w_lf) | (v_cr & _mm512_cmpeq_epi8_mask(u, lf)) |
				 (v_lf & ~_mm512_cmpeq_epi8_mask(u, cr));
		if (relaxed) {
			__mmask64 w_ws = _mm512_cmpeq_epi8_mask(w, sp) | _mm512_cmpeq_epi8_mask(w, tab) |
					 _mm512_cmpeq_epi8_mask(w, cr) | w_lf;
			stop |= _mm512_cmpeq_epi8_mask(v, tab) | (_mm512_cmpeq_epi8_mask(v, sp) & w_ws);
		}
		if (stop)
			return j + (size_t)__builtin_ctzll(stop);
		j += 64;
	}
	/* the rest by the 16-byte loop, continuing the same run (a CR in the
	 * last lane was accepted with its LF at d[j]: the 16-byte loop sees the
	 * pair the same way through its previous-byte view) */
	return scan16_from(cls, relaxed, d, i, j, len);
}
#endif
#endif

void
canon_body_update(struct canon_body *cb, const uint8_t *data, size_t len)
{
	bool relaxed = cb->alg == CANON_RELAXED;
	const uint8_t *cls = relaxed ? class_relaxed : class_simple;
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
		size_t j;
		if (cb->wsp_pending)
			j = scan_class(cls, data, i, len);
#if CANON_HAVE_SSE2
#if CANON_HAVE_AVX512
		else if (!cb->scalar && cb->wide)
			j = scan_avx512(cls, relaxed, data, i, len);
#endif
		else if (!cb->scalar)
			j = scan_sse2(cls, relaxed, data, i, len);
#endif
		else
			j = scan_scalar(cls, data, i, len);
		if (j > i) {
			data_run(cb, data + i, j - i);
			if (data[j - 1] == '\n') /* the run ended with a CRLF */
				cb->line_has_data = false;
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
	/* a lane member's bytes go to its stage now, so the group's next run
	 * (a worker's, at the end of the burst that brought them) takes them
	 * while they are in the cache */
	if (cb->flush_each)
		flush(cb);
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

/* ---- a message's set of body hashes -------------------------------- */

void
canon_set_init(struct canon_body_set *s, struct ws_hash_lanes *lanes)
{
	memset(s->pool, 0, sizeof(s->pool));
	s->n = 0;
	s->closed = false;
	s->lanes = lanes;
}

void
canon_set_reset(struct canon_body_set *s)
{
	s->n = 0;
	s->closed = false;
}

int
canon_set_get(struct canon_body_set *s, enum canon_alg alg, enum ws_hash_alg halg, uint64_t limit,
	      size_t max)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->bh[i].alg == alg && s->bh[i].halg == halg && s->bh[i].limit == limit)
			return (int)i;
	if (max > CANON_SET_MAX)
		max = CANON_SET_MAX;
	if (s->n >= max)
		return -1;
	size_t i = s->n;
	/* a full lane group (more messages in flight than members) falls back
	 * to a hash of its own: the same digest, on OpenSSL */
	if (!s->pool[i] && s->lanes)
		s->pool[i] = ws_hash_new_lane(s->lanes, halg);
	if (!s->pool[i])
		s->pool[i] = ws_hash_new(halg);
	if (!s->pool[i] || ws_hash_reset(s->pool[i], halg) != 0)
		return -1;
	struct canon_body_hash *b = &s->bh[i];
	b->alg = alg;
	b->halg = halg;
	b->limit = limit;
	b->hash = s->pool[i];
	canon_body_init(&b->cb, alg, limit, b->hash);
	b->cb.flush_each = s->lanes != NULL;
	s->n++;
	return (int)i;
}

void
canon_set_update(struct canon_body_set *s, const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < s->n; i++)
		canon_body_update(&s->bh[i].cb, data, len);
}

void
canon_set_close(struct canon_body_set *s)
{
	if (s->closed)
		return;
	for (size_t i = 0; i < s->n; i++)
		canon_body_final(&s->bh[i].cb);
	s->closed = true;
}

void
canon_set_final(struct canon_body_set *s)
{
	canon_set_close(s);
	for (size_t i = 0; i < s->n; i++)
		ws_hash_final(s->bh[i].hash, s->bh[i].digest);
}

void
canon_set_free(struct canon_body_set *s)
{
	for (size_t i = 0; i < CANON_SET_MAX; i++) {
		ws_hash_free(s->pool[i]);
		s->pool[i] = NULL;
	}
	s->n = 0;
}
