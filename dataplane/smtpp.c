/* smtpp: SMTP, both directions, from in-order bytes; rules in smtpp.h. */
#include "smtpp.h"

#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__SSE2__) && defined(__x86_64__)
#include <immintrin.h>
#define SMTPP_HAVE_AVX512 1
#else
#define SMTPP_HAVE_AVX512 0
#endif

enum { C_CMD, C_DATA, C_BDAT, C_AUTH, C_TLS, C_RESYNC };
enum { S_REPLY, S_TLS, S_RESYNC };
/* DATA content: at a line start, after a leading dot (withheld), after a
 * leading dot and CR (both withheld), inside a line, after a CR. */
enum { D_BOL, D_DOT, D_DOTCR, D_MID, D_CR };

static const char *const verb_names[] = {
#define SMTPP_X_NAME(name, text) [SMTPP_##name] = text,
	SMTPP_VERBS(SMTPP_X_NAME)
#undef SMTPP_X_NAME
};

const char *
smtpp_verb_name(enum smtpp_verb v)
{
	return (size_t)v < sizeof(verb_names) / sizeof(verb_names[0]) ? verb_names[v] : "?";
}

/* Verbs a client sends, as written on the wire. */
static const struct {
	const char *name;
	enum smtpp_verb verb;
} client_verbs[] = {
	{"EHLO", SMTPP_EHLO}, {"HELO", SMTPP_HELO}, {"MAIL", SMTPP_MAIL},
	{"RCPT", SMTPP_RCPT}, {"DATA", SMTPP_DATA}, {"BDAT", SMTPP_BDAT},
	{"RSET", SMTPP_RSET}, {"NOOP", SMTPP_NOOP}, {"QUIT", SMTPP_QUIT},
	{"STARTTLS", SMTPP_STARTTLS}, {"AUTH", SMTPP_AUTH}, {"VRFY", SMTPP_VRFY},
	{"EXPN", SMTPP_EXPN}, {"HELP", SMTPP_HELP},
};

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static bool
eq_nocase(const uint8_t *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (lower(a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

void
smtpp_init(struct smtpp *p, const struct smtpp_ops *ops, void *arg, bool midstream)
{
	memset(p, 0, sizeof(*p));
	p->ops = ops;
	p->arg = arg;
	p->midstream = midstream;
	if (midstream) {
		/* the first partial line of each side is not trusted */
		p->cstate = C_RESYNC;
		p->sstate = S_RESYNC;
		p->line[0].skip = true;
		p->line[1].skip = true;
	} else {
		p->rqueue[0] = SMTPP_GREETING;
		p->qlen = 1;
	}
}

void
smtpp_init_tls(struct smtpp *p, const struct smtpp_ops *ops, void *arg)
{
	smtpp_init(p, ops, arg, false);
	p->qlen = 0; /* no greeting expected in the clear */
	p->cstate = C_TLS;
	p->sstate = S_TLS;
}

void
smtpp_free(struct smtpp *p)
{
	for (int d = 0; d < 2; d++) {
		free(p->line[d].buf);
		p->line[d].buf = NULL;
		p->line[d].cap = p->line[d].len = 0;
	}
}

void
smtpp_trim(struct smtpp *p)
{
	for (int d = 0; d < 2; d++)
		if (p->line[d].len == 0 && !p->line[d].overflow) {
			free(p->line[d].buf);
			p->line[d].buf = NULL;
			p->line[d].cap = 0;
		}
}

bool
smtpp_tls(const struct smtpp *p)
{
	return p->cstate == C_TLS;
}

int
smtpp_path(const char *arg, size_t len, const char **out, size_t *out_len)
{
	const char *lt = memchr(arg, '<', len);
	if (!lt)
		return -1;
	const char *gt = memchr(lt, '>', len - (size_t)(lt - arg));
	if (!gt)
		return -1;
	const char *a = lt + 1;
	/* a source route (RFC 5321 4.1.2 "@a,@b:user@c") is dropped */
	if (a < gt && *a == '@') {
		const char *colon = memchr(a, ':', (size_t)(gt - a));
		if (colon)
			a = colon + 1;
	}
	*out = a;
	*out_len = (size_t)(gt - a);
	return 0;
}

/* ---- queue of outstanding commands -------------------------------- */

static void
q_push(struct smtpp *p, enum smtpp_verb v)
{
	if (p->qlen == SMTPP_MAX_PIPELINE) {
		p->c.pipeline_over++;
		return;
	}
	p->rqueue[(p->qhead + p->qlen) % SMTPP_MAX_PIPELINE] = (uint8_t)v;
	p->qlen++;
}

static void
q_push_front(struct smtpp *p, enum smtpp_verb v)
{
	if (p->qlen == SMTPP_MAX_PIPELINE) {
		p->c.pipeline_over++;
		return;
	}
	p->qhead = (uint8_t)((p->qhead + SMTPP_MAX_PIPELINE - 1) % SMTPP_MAX_PIPELINE);
	p->rqueue[p->qhead] = (uint8_t)v;
	p->qlen++;
}

static enum smtpp_verb
q_peek(const struct smtpp *p)
{
	return p->qlen ? (enum smtpp_verb)p->rqueue[p->qhead] : SMTPP_NONE;
}

static enum smtpp_verb
q_pop(struct smtpp *p)
{
	if (!p->qlen)
		return SMTPP_NONE;
	enum smtpp_verb v = (enum smtpp_verb)p->rqueue[p->qhead];
	p->qhead = (uint8_t)((p->qhead + 1) % SMTPP_MAX_PIPELINE);
	p->qlen--;
	return v;
}

/* ---- lines ---------------------------------------------------------- */

static bool
line_append(struct smtpp_line *l, uint32_t max, const uint8_t *d, size_t n)
{
	if (l->skip || l->overflow)
		return true;
	size_t room = max - l->len;
	size_t k = n < room ? n : room;
	if (l->len + k > l->cap) {
		uint32_t cap = l->cap ? l->cap : 256;
		while (cap < l->len + k)
			cap *= 2;
		if (cap > max)
			cap = max;
		uint8_t *nb = realloc(l->buf, cap);
		if (!nb)
			return false;
		l->buf = nb;
		l->cap = cap;
	}
	memcpy(l->buf + l->len, d, k);
	l->len += (uint32_t)k;
	if (k < n)
		l->overflow = true;
	return true;
}

struct line_out {
	const uint8_t *p; /* NULL: no complete line yet */
	size_t len;       /* without CR LF */
	bool too_long, skipped;
};

/* Take at most one line from d; returns the bytes consumed. A line that fits
 * in the span and has nothing buffered before it is used in place. The
 * buffer keeps max + 1 bytes: room for the CR before the LF. */
static size_t
take_line(struct smtpp *p, int dir, uint32_t max, const uint8_t *d, size_t n, struct line_out *o)
{
	struct smtpp_line *l = &p->line[dir];
	const uint8_t *lf = memchr(d, '\n', n);
	o->p = NULL;
	if (!lf) {
		if (!line_append(l, max + 1, d, n))
			l->overflow = true; /* no memory: the line is lost, said as too long */
		return n;
	}
	size_t used = (size_t)(lf - d) + 1;
	size_t k = used - 1;
	o->skipped = l->skip;
	o->too_long = false;
	if (l->len == 0 && !l->overflow && !l->skip) {
		o->p = d;
		o->len = k;
	} else {
		if (!line_append(l, max + 1, d, k))
			l->overflow = true;
		o->p = l->buf ? l->buf : d;
		o->len = l->buf ? l->len : 0;
		o->too_long = l->overflow;
	}
	if (!o->too_long && o->len > 0 && o->p[o->len - 1] == '\r')
		o->len--;
	if (o->len > max) {
		o->too_long = true;
		o->len = max;
	}
	l->len = 0;
	l->overflow = false;
	l->skip = false;
	return used;
}

/* ---- messages -------------------------------------------------------- */

static void
msg_begin(struct smtpp *p, enum smtpp_body kind)
{
	p->in_msg = true;
	p->c.messages++;
	if (p->ops->msg_begin)
		p->ops->msg_begin(p->arg, kind);
}

static void
msg_end(struct smtpp *p, enum smtpp_msg_end how)
{
	if (!p->in_msg)
		return;
	p->in_msg = false;
	if (p->ops->msg_end)
		p->ops->msg_end(p->arg, how);
}

static void
msg_data(struct smtpp *p, const uint8_t *d, size_t n)
{
	if (n == 0 || !p->in_msg)
		return;
	p->c.msg_bytes += n;
	p->ops->msg_data(p->arg, d, n);
}

static void
msg_gap(struct smtpp *p, uint64_t n)
{
	if (n == 0 || !p->in_msg)
		return;
	if (p->ops->msg_gap)
		p->ops->msg_gap(p->arg, n);
}

/* The first k in [from, n - 1) with d[k] == '\n' and d[k + 1] == '.', or n.
 * DATA content only needs attention where a line starts with a dot (a
 * stuffed dot or the terminator), so the body is skipped at vector speed
 * instead of line by line (a base64 body has a line end every 78 bytes).
 * SSE2: 16 positions per step, LF compared at k and dot at k + 1. */
#if SMTPP_HAVE_AVX512
/* The same search 64 positions per step (AVX-512 BW compare masks): a
 * base64 body is scanned at a quarter of the SSE2 loop's steps. Returns
 * the first match, or where the 64-byte steps stopped (from there the
 * SSE2/scalar loops go on: no match lies before it). */
__attribute__((target("avx512f,avx512bw"))) static size_t
lf_dot_avx512(const uint8_t *d, size_t k, size_t n, bool *found)
{
	const __m512i lf = _mm512_set1_epi8('\n'), dot = _mm512_set1_epi8('.');
	for (; k + 65 <= n; k += 64) {
		__m512i a = _mm512_loadu_si512((const void *)(d + k));
		__m512i b = _mm512_loadu_si512((const void *)(d + k + 1));
		__mmask64 m = _mm512_cmpeq_epi8_mask(a, lf) & _mm512_cmpeq_epi8_mask(b, dot);
		if (m) {
			*found = true;
			return k + (size_t)__builtin_ctzll(m);
		}
	}
	*found = false;
	return k;
}
#endif

static size_t
find_lf_dot(const uint8_t *d, size_t from, size_t n)
{
	size_t k = from;
#if SMTPP_HAVE_AVX512
	/* a load of libgcc's CPU model, no CPUID; short runs stay on SSE2 */
	if (n - k >= 128 && __builtin_cpu_supports("avx512f") &&
	    __builtin_cpu_supports("avx512bw")) {
		bool found;
		k = lf_dot_avx512(d, k, n, &found);
		if (found)
			return k;
	}
#endif
#if defined(__SSE2__)
	const __m128i lf = _mm_set1_epi8('\n'), dot = _mm_set1_epi8('.');
	for (; k + 17 <= n; k += 16) {
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)(d + k));
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(d + k + 1));
		unsigned m = (unsigned)_mm_movemask_epi8(
		        _mm_and_si128(_mm_cmpeq_epi8(a, lf), _mm_cmpeq_epi8(b, dot)));
		if (m)
			return k + (unsigned)__builtin_ctz(m);
	}
#endif
	for (; k + 1 < n; k++) {
		const uint8_t *q = memchr(d + k, '\n', n - 1 - k);
		if (!q)
			return n;
		k = (size_t)(q - d);
		if (d[k + 1] == '.')
			return k;
	}
	return n;
}

/* DATA content: dot-unstuffing up to CRLF "." CRLF. Returns the bytes
 * consumed; stops right after the terminator. Runs of the input are passed
 * on in place; only a withheld CR is re-emitted from a constant. */
static size_t
data_feed(struct smtpp *p, const uint8_t *d, size_t n)
{
	static const uint8_t cr = '\r';
	size_t i = 0, run = 0; /* run: start of bytes not yet passed on */
	while (i < n) {
		uint8_t c = d[i];
		switch (p->dstate) {
		case D_MID: {
			/* inside a line, only a CRLF before a dot changes anything:
			 * jump to it; without one, the last 3 bytes (a CR or CRLF
			 * the next segment may complete) go through the states */
			size_t k = find_lf_dot(d, i, n);
			if (k < n) {
				/* the LF ends a line when its CR is in this run; at
				 * k == i the byte before is no CR (else: D_CR) */
				bool crlf = k > i && d[k - 1] == '\r';
				i = k + 1;
				p->dstate = crlf ? D_BOL : D_MID;
				continue;
			}
			if (n - i > 3)
				i = n - 3;
			const uint8_t *q = memchr(d + i, '\r', n - i);
			if (!q) {
				i = n;
				continue;
			}
			i = (size_t)(q - d) + 1;
			p->dstate = D_CR;
			continue;
		}
		case D_CR:
			i++;
			p->dstate = c == '\n' ? D_BOL : c == '\r' ? D_CR : D_MID;
			continue;
		case D_BOL:
			if (c == '.') {
				msg_data(p, d + run, i - run);
				i++;
				run = i; /* the dot is withheld */
				p->dstate = D_DOT;
				continue;
			}
			i++;
			p->dstate = c == '\r' ? D_CR : D_MID;
			continue;
		case D_DOT:
			if (c == '\r') {
				i++;
				run = i; /* CR withheld too */
				p->dstate = D_DOTCR;
				continue;
			}
			/* a stuffed dot: dropped; c is ordinary line content */
			p->dstate = D_MID;
			continue;
		case D_DOTCR:
			if (c == '\n') {
				i++;
				p->dstate = D_BOL;
				msg_end(p, SMTPP_END_DOT);
				p->cstate = C_CMD;
				return i;
			}
			/* ".\r" then something else: the dot goes, the CR stays */
			msg_data(p, &cr, 1);
			p->dstate = D_CR;
			continue;
		}
	}
	msg_data(p, d + run, n - run);
	return n;
}

static void
bdat_done(struct smtpp *p)
{
	p->cstate = C_CMD;
	if (p->bdat_last) {
		msg_end(p, SMTPP_END_BDAT_LAST);
		p->rcpts = 0;
	}
}

/* ---- commands -------------------------------------------------------- */

static enum smtpp_verb
verb_of(const uint8_t *s, size_t len, size_t *vlen)
{
	size_t k = 0;
	while (k < len && s[k] != ' ')
		k++;
	*vlen = k;
	for (size_t i = 0; i < sizeof(client_verbs) / sizeof(client_verbs[0]); i++)
		if (eq_nocase(s, k, client_verbs[i].name))
			return client_verbs[i].verb;
	return SMTPP_UNKNOWN;
}

/* "BDAT" SP size [SP "LAST"]; 0 or -1. */
static int
parse_bdat(const uint8_t *a, size_t len, uint64_t *size, bool *last)
{
	size_t i = 0;
	uint64_t v = 0;
	while (i < len && a[i] >= '0' && a[i] <= '9') {
		if (i == SMTPP_MAX_BDAT_DIGITS)
			return -1;
		v = v * 10 + (uint64_t)(a[i] - '0');
		i++;
	}
	if (i == 0)
		return -1;
	*size = v;
	*last = false;
	while (i < len && a[i] == ' ')
		i++;
	if (i == len)
		return 0;
	if (eq_nocase(a + i, len - i, "LAST")) {
		*last = true;
		return 0;
	}
	return -1;
}

static void
command(struct smtpp *p, const struct line_out *lo)
{
	struct smtpp_cmd c = {.verb = SMTPP_UNKNOWN, .arg = "", .arg_len = 0};
	p->c.commands++;
	if (lo->too_long) {
		p->c.long_cmd_lines++;
		c.too_long = true;
	} else {
		size_t vlen;
		c.verb = verb_of(lo->p, lo->len, &vlen);
		if (vlen < lo->len) {
			c.arg = (const char *)lo->p + vlen + 1;
			c.arg_len = lo->len - vlen - 1;
		}
	}
	if (p->ops->line && !lo->too_long)
		p->ops->line(p->arg, SMTPP_C2S, c.verb, lo->p, lo->len, p->lstart[0]);
	switch (c.verb) {
	case SMTPP_EHLO:
	case SMTPP_HELO:
	case SMTPP_MAIL:
		p->rcpts = 0;
		break;
	case SMTPP_RCPT:
		if (++p->rcpts > SMTPP_MAX_RCPTS) {
			c.over_limit = true;
			p->c.rcpt_over++;
		}
		break;
	case SMTPP_RSET:
		p->rcpts = 0;
		break;
	case SMTPP_BDAT:
		if (parse_bdat((const uint8_t *)c.arg, c.arg_len, &c.bdat_size, &c.bdat_last) != 0)
			c.verb = SMTPP_UNKNOWN;
		break;
	case SMTPP_AUTH: {
		/* only the mechanism goes on; an initial response never does */
		const char *sp = memchr(c.arg, ' ', c.arg_len);
		if (sp)
			c.arg_len = (size_t)(sp - c.arg);
		break;
	}
	default:
		break;
	}
	if (c.verb == SMTPP_UNKNOWN)
		p->c.unknown_commands++;
	q_push(p, c.verb);
	if (p->ops->command)
		p->ops->command(p->arg, &c);
	/* what the command does, after it was reported */
	switch (c.verb) {
	case SMTPP_EHLO:
	case SMTPP_HELO:
	case SMTPP_RSET:
		msg_end(p, SMTPP_END_RESET); /* an unfinished BDAT transaction */
		break;
	case SMTPP_DATA:
		msg_end(p, SMTPP_END_RESET);
		msg_begin(p, SMTPP_BODY_DATA);
		p->cstate = C_DATA;
		p->dstate = D_BOL;
		break;
	case SMTPP_BDAT:
		if (!p->in_msg)
			msg_begin(p, SMTPP_BODY_BDAT);
		p->bdat_left = c.bdat_size;
		p->bdat_last = c.bdat_last;
		p->cstate = C_BDAT;
		if (p->bdat_left == 0)
			bdat_done(p);
		break;
	case SMTPP_AUTH:
		p->cstate = C_AUTH;
		break;
	default:
		break;
	}
}

/* A line seen while resynchronising that may start real commands: a known
 * verb with the argument shape it takes, so that message text ("Data
 * follows", "Help me") picked up mid-stream is not taken for commands. */
static bool
looks_like_command(const struct line_out *lo)
{
	if (lo->too_long || lo->skipped)
		return false;
	size_t vlen;
	enum smtpp_verb v = verb_of(lo->p, lo->len, &vlen);
	const uint8_t *a = lo->p + vlen + (vlen < lo->len);
	size_t alen = vlen < lo->len ? lo->len - vlen - 1 : 0;
	bool has_space = alen > 0 && memchr(a, ' ', alen) != NULL;
	uint64_t size;
	bool last;
	switch (v) {
	case SMTPP_MAIL:
		return alen >= 5 && eq_nocase(a, 5, "FROM:");
	case SMTPP_RCPT:
		return alen >= 3 && eq_nocase(a, 3, "TO:");
	case SMTPP_DATA:
	case SMTPP_RSET:
	case SMTPP_QUIT:
	case SMTPP_STARTTLS:
		return vlen == lo->len;
	case SMTPP_EHLO:
	case SMTPP_HELO:
		return alen > 0 && !has_space;
	case SMTPP_BDAT:
		return parse_bdat(a, alen, &size, &last) == 0;
	case SMTPP_AUTH:
		return alen > 0;
	case SMTPP_UNKNOWN:
		return false;
	default:
		return true;
	}
}

static bool
line_empty(const struct smtpp_line *l)
{
	return l->len == 0 && !l->overflow && !l->skip;
}

static void
client_feed(struct smtpp *p, const uint8_t *d, size_t n)
{
	while (n > 0) {
		size_t used;
		struct line_out lo;
		if (line_empty(&p->line[0]))
			p->lstart[0] = p->pos[0];
		switch (p->cstate) {
		case C_TLS:
			p->c.tls_bytes[0] += n;
			if (p->ops->tls_data)
				p->ops->tls_data(p->arg, SMTPP_C2S, d, n, p->pos[0]);
			p->pos[0] += n;
			return;
		case C_DATA:
			used = data_feed(p, d, n);
			break;
		case C_BDAT: {
			size_t k = n < p->bdat_left ? n : (size_t)p->bdat_left;
			msg_data(p, d, k);
			p->bdat_left -= k;
			used = k;
			if (p->bdat_left == 0)
				bdat_done(p);
			break;
		}
		case C_AUTH:
			/* credentials: skipped to the line end, never copied or read */
			p->line[0].skip = true;
			used = take_line(p, 0, SMTPP_MAX_CMD_LINE, d, n, &lo);
			if (lo.p)
				p->c.auth_lines++;
			break;
		case C_RESYNC:
			used = take_line(p, 0, SMTPP_MAX_CMD_LINE, d, n, &lo);
			if (lo.p) {
				if (looks_like_command(&lo)) {
					p->cstate = C_CMD;
					command(p, &lo);
				} else {
					p->c.resync_skipped++;
				}
			}
			break;
		default: /* C_CMD */
			used = take_line(p, 0, SMTPP_MAX_CMD_LINE, d, n, &lo);
			if (lo.p && !lo.skipped)
				command(p, &lo);
			break;
		}
		d += used;
		n -= used;
		p->pos[0] += used;
	}
}

/* ---- replies --------------------------------------------------------- */

static bool
reply_code(const uint8_t *s, size_t len, unsigned *code, char *sep)
{
	if (len < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' ||
	    s[2] > '9')
		return false;
	if (len > 3 && s[3] != ' ' && s[3] != '-')
		return false;
	*code = (unsigned)(s[0] - '0') * 100 + (unsigned)(s[1] - '0') * 10 + (unsigned)(s[2] - '0');
	*sep = len > 3 ? (char)s[3] : ' ';
	return true;
}

static void
ehlo_keyword(struct smtpp_caps *c, const uint8_t *s, size_t len)
{
	size_t k = 0;
	while (k < len && s[k] != ' ' && s[k] != '=')
		k++;
	if (eq_nocase(s, k, "PIPELINING"))
		c->pipelining = true;
	else if (eq_nocase(s, k, "CHUNKING"))
		c->chunking = true;
	else if (eq_nocase(s, k, "STARTTLS"))
		c->starttls = true;
	else if (eq_nocase(s, k, "8BITMIME"))
		c->eightbitmime = true;
	else if (eq_nocase(s, k, "AUTH"))
		c->auth = true;
	else if (eq_nocase(s, k, "SIZE")) {
		c->size = true;
		uint64_t v = 0;
		size_t i = k + 1, digits = 0;
		while (i < len && s[i] >= '0' && s[i] <= '9' && digits++ < 18)
			v = v * 10 + (uint64_t)(s[i++] - '0');
		c->size_max = v;
	}
}

/* What a complete reply does to the session. */
static void
reply_act(struct smtpp *p, enum smtpp_verb v, unsigned code)
{
	switch (v) {
	case SMTPP_EHLO:
		if (code == 250) {
			p->caps = p->caps_pending;
			p->caps.seen = true;
		}
		break;
	case SMTPP_DATA:
		if (code == 354)
			q_push(p, SMTPP_DATA_END);
		else if (code >= 400 && p->cstate == C_DATA) {
			msg_end(p, SMTPP_END_REJECTED);
			p->cstate = C_CMD;
		}
		break;
	case SMTPP_DATA_END:
		p->rcpts = 0;
		if (p->cstate == C_DATA) {
			/* the server saw an end we did not */
			msg_end(p, SMTPP_END_LOST);
			p->cstate = C_RESYNC;
		}
		break;
	case SMTPP_BDAT:
		if (code >= 400)
			msg_end(p, SMTPP_END_REJECTED);
		break;
	case SMTPP_STARTTLS:
		if (code == 220) {
			msg_end(p, SMTPP_END_TLS);
			p->cstate = C_TLS;
			p->sstate = S_TLS;
			if (p->ops->tls)
				p->ops->tls(p->arg);
		}
		break;
	case SMTPP_AUTH:
		if (code == 334)
			q_push_front(p, SMTPP_AUTH); /* the exchange goes on */
		else if (p->cstate == C_AUTH)
			p->cstate = C_CMD;
		break;
	default:
		break;
	}
}

static void
reply_line(struct smtpp *p, const struct line_out *lo)
{
	unsigned code;
	char sep;
	if (lo->too_long)
		p->c.long_reply_lines++;
	if (!reply_code(lo->p, lo->len, &code, &sep)) {
		p->c.bad_replies++;
		return;
	}
	const uint8_t *text = lo->p + (lo->len > 3 ? 4 : 3);
	size_t tlen = lo->len > 3 ? lo->len - 4 : 0;
	if (p->ops->line && !lo->too_long)
		p->ops->line(p->arg, SMTPP_S2C, q_peek(p), lo->p, lo->len, p->lstart[1]);
	if (p->rlines == 0) {
		p->rcode = code;
		p->caps_pending = (struct smtpp_caps){0};
		size_t k = tlen < sizeof(p->rtext) ? tlen : sizeof(p->rtext);
		memcpy(p->rtext, text, k);
		p->rtext_len = (uint8_t)k;
	} else if (code != p->rcode) {
		p->c.bad_replies++; /* a code change inside a multi-line reply */
	}
	p->rlines++;
	if (p->rlines > SMTPP_MAX_REPLY_LINES) {
		if (p->rlines == SMTPP_MAX_REPLY_LINES + 1)
			p->c.reply_lines_over++;
	} else if (p->rlines > 1 && q_peek(p) == SMTPP_EHLO) {
		ehlo_keyword(&p->caps_pending, text, tlen);
	}
	if (sep == '-')
		return;
	p->c.replies++;
	enum smtpp_verb v = q_pop(p);
	if (v == SMTPP_NONE)
		p->c.unmatched_replies++;
	struct smtpp_reply r = {
		.code = p->rcode,
		.verb = v,
		.matched = v != SMTPP_NONE,
		.text = p->rtext,
		.text_len = p->rtext_len,
		.lines = p->rlines,
	};
	p->rlines = 0;
	reply_act(p, v, r.code);
	if (p->ops->reply)
		p->ops->reply(p->arg, &r);
}

static void
server_feed(struct smtpp *p, const uint8_t *d, size_t n)
{
	while (n > 0) {
		if (line_empty(&p->line[1]))
			p->lstart[1] = p->pos[1];
		if (p->sstate == S_TLS) {
			p->c.tls_bytes[1] += n;
			if (p->ops->tls_data)
				p->ops->tls_data(p->arg, SMTPP_S2C, d, n, p->pos[1]);
			p->pos[1] += n;
			return;
		}
		struct line_out lo;
		size_t used = take_line(p, 1, SMTPP_MAX_REPLY_LINE, d, n, &lo);
		if (lo.p) {
			if (p->sstate == S_RESYNC) {
				unsigned code;
				char sep;
				if (!lo.skipped && reply_code(lo.p, lo.len, &code, &sep)) {
					p->sstate = S_REPLY;
					reply_line(p, &lo);
				} else {
					p->c.resync_skipped++;
				}
			} else {
				reply_line(p, &lo);
			}
		}
		d += used;
		n -= used;
		p->pos[1] += used;
	}
}

void
smtpp_feed(struct smtpp *p, enum smtpp_dir dir, const uint8_t *data, size_t len)
{
	if (dir == SMTPP_C2S)
		client_feed(p, data, len);
	else
		server_feed(p, data, len);
}

void
smtpp_gap(struct smtpp *p, enum smtpp_dir dir, uint64_t len)
{
	if (len == 0)
		return;
	p->pos[dir == SMTPP_S2C] += len;
	if (dir == SMTPP_S2C) {
		if (p->sstate == S_TLS) {
			p->c.tls_bytes[1] += len;
			if (p->ops->tls_gap)
				p->ops->tls_gap(p->arg, SMTPP_S2C, len);
			return;
		}
		/* replies were lost: which commands they answered is unknown */
		p->sstate = S_RESYNC;
		p->rlines = 0;
		p->qlen = 0;
		return;
	}
	switch (p->cstate) {
	case C_TLS:
		p->c.tls_bytes[0] += len;
		if (p->ops->tls_gap)
			p->ops->tls_gap(p->arg, SMTPP_C2S, len);
		return;
	case C_DATA:
		msg_gap(p, len);
		p->dstate = D_MID; /* where the lost bytes left the line is unknown */
		return;
	case C_BDAT: {
		uint64_t k = len < p->bdat_left ? len : p->bdat_left;
		msg_gap(p, k);
		p->bdat_left -= k;
		if (p->bdat_left == 0)
			bdat_done(p);
		if (k == len)
			return;
		break;
	}
	default:
		break;
	}
	p->cstate = C_RESYNC;
}

void
smtpp_end(struct smtpp *p)
{
	msg_end(p, SMTPP_END_SESSION);
}
