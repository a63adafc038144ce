/*
 * zonefile: RFC 1035 section 5 master files. Two stages: a tokenizer that
 * cuts the span into entries (one logical line: parentheses joined, comments
 * dropped, quotes and escapes decoded) and a per-entry interpreter that turns
 * the fields into a directive or a record.
 */
#include "zonefile.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A presentation name is at most 253 characters (wire 255 minus the first
 * length byte and the root label), plus room for the NUL. */
#define NAME_BUF 256

struct tok {
	const char *s; /* decoded bytes, NUL-terminated, inside parser.ebuf */
	size_t len;
	bool quoted;
	bool escaped; /* a backslash escape was decoded */
};

struct parser {
	const uint8_t *buf;
	size_t len, pos;
	unsigned line;
	size_t line_start;
	size_t entry_start;

	/* the current entry */
	char *ebuf; /* ZONEFILE_MAX_ENTRY + 2 bytes */
	size_t eused;
	struct tok *toks;
	size_t ntok, tokcap;
	unsigned eline;
	bool leading_ws;

	char origin[NAME_BUF];
	char last_owner[NAME_BUF];
	bool have_owner;
	uint32_t default_ttl; /* $TTL */
	bool have_default_ttl;
	uint32_t last_ttl;
	bool have_last_ttl;

	struct zonefile *z;
	size_t rrcap;
	struct zonefile_error *err;
};

static int
fail(struct parser *p, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
fail(struct parser *p, unsigned line, const char *fmt, ...)
{
	p->err->line = line;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err->reason, sizeof(p->err->reason), fmt, ap);
	va_end(ap);
	return -1;
}

static const struct {
	enum zonefile_type type;
	const char *name;
} type_table[] = {
	{ZONEFILE_A, "A"},     {ZONEFILE_NS, "NS"},   {ZONEFILE_CNAME, "CNAME"},
	{ZONEFILE_SOA, "SOA"}, {ZONEFILE_PTR, "PTR"}, {ZONEFILE_MX, "MX"},
	{ZONEFILE_TXT, "TXT"}, {ZONEFILE_AAAA, "AAAA"},
};

const char *
zonefile_type_name(enum zonefile_type t)
{
	for (size_t i = 0; i < sizeof(type_table) / sizeof(type_table[0]); i++)
		if (type_table[i].type == t)
			return type_table[i].name;
	return NULL;
}

/* ---- tokenizer ---------------------------------------------------------- */

/* Called for every byte consumed that is not the newline: a physical line
 * may hold at most ZONEFILE_MAX_LINE bytes. A CR just before the newline is
 * part of the line ending, not of the line. */
static int
check_line(struct parser *p)
{
	if (p->pos - p->entry_start >= ZONEFILE_MAX_ENTRY)
		return fail(p, p->eline, "entry longer than %d bytes", ZONEFILE_MAX_ENTRY);
	if (p->pos - p->line_start < ZONEFILE_MAX_LINE)
		return 0;
	if (p->buf[p->pos] == '\r' && p->pos + 1 < p->len && p->buf[p->pos + 1] == '\n')
		return 0;
	return fail(p, p->line, "line longer than %d bytes", ZONEFILE_MAX_LINE);
}

static int
push_tok(struct parser *p, size_t start, bool quoted, bool escaped)
{
	if (p->ntok == p->tokcap) {
		size_t ncap = p->tokcap ? p->tokcap * 2 : 16;
		struct tok *nt = realloc(p->toks, ncap * sizeof(*nt));
		if (!nt)
			return fail(p, p->eline, "out of memory");
		p->toks = nt;
		p->tokcap = ncap;
	}
	p->ebuf[p->eused++] = '\0';
	p->toks[p->ntok++] = (struct tok){
		.s = p->ebuf + start, .len = p->eused - 1 - start, .quoted = quoted, .escaped = escaped};
	return 0;
}

/* One byte of a token, after a backslash was seen at p->pos: "\DDD" is a
 * decimal byte, "\X" is X itself. Advances past the escape. */
static int
read_escape(struct parser *p, uint8_t *out)
{
	p->pos++; /* the backslash */
	if (p->pos >= p->len || p->buf[p->pos] == '\n')
		return fail(p, p->line, "backslash at the end of a line");
	if (check_line(p))
		return -1;
	uint8_t c = p->buf[p->pos];
	if (c >= '0' && c <= '9') {
		unsigned v = 0;
		for (int i = 0; i < 3; i++) {
			if (p->pos >= p->len || p->buf[p->pos] < '0' || p->buf[p->pos] > '9')
				return fail(p, p->line, "\\DDD escape needs three digits");
			if (check_line(p))
				return -1;
			v = v * 10 + (unsigned)(p->buf[p->pos] - '0');
			p->pos++;
		}
		if (v > 255)
			return fail(p, p->line, "\\DDD escape above 255");
		*out = (uint8_t)v;
		return 0;
	}
	*out = c;
	p->pos++;
	return 0;
}

static bool
ends_bare(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' || c == '(' ||
	       c == ')' || c == '"';
}

/* Reads the next entry into p->toks. Returns 1 with an entry (possibly with
 * no fields: a blank or comment line), 0 at the end of input, -1 on error. */
static int
read_entry(struct parser *p)
{
	if (p->pos >= p->len)
		return 0;
	p->ntok = 0;
	p->eused = 0;
	p->eline = p->line;
	p->leading_ws = p->buf[p->pos] == ' ' || p->buf[p->pos] == '\t';
	size_t start = p->pos;
	p->entry_start = start;
	unsigned paren_line = 0;
	bool in_paren = false;

	while (p->pos < p->len) {
		uint8_t c = p->buf[p->pos];
		if (c == '\n') {
			p->pos++;
			p->line++;
			p->line_start = p->pos;
			if (!in_paren)
				return 1;
			continue;
		}
		if (check_line(p))
			return -1;
		switch (c) {
		case ' ':
		case '\t':
		case '\r':
			p->pos++;
			break;
		case ';':
			while (p->pos < p->len && p->buf[p->pos] != '\n') {
				if (check_line(p))
					return -1;
				p->pos++;
			}
			break;
		case '(':
			if (in_paren)
				return fail(p, p->line, "nested parentheses");
			in_paren = true;
			paren_line = p->line;
			p->pos++;
			break;
		case ')':
			if (!in_paren)
				return fail(p, p->line, "')' without '('");
			in_paren = false;
			p->pos++;
			break;
		case '"': {
			size_t tstart = p->eused;
			bool escaped = false;
			p->pos++;
			for (;;) {
				if (p->pos >= p->len || p->buf[p->pos] == '\n')
					return fail(p, p->line, "unterminated quoted string");
				if (check_line(p))
					return -1;
				uint8_t b = p->buf[p->pos];
				if (b == '"') {
					p->pos++;
					break;
				}
				if (b == '\\') {
					if (read_escape(p, &b))
						return -1;
					escaped = true;
				} else {
					p->pos++;
				}
				p->ebuf[p->eused++] = (char)b;
			}
			if (push_tok(p, tstart, true, escaped))
				return -1;
			break;
		}
		default: {
			size_t tstart = p->eused;
			bool escaped = false;
			while (p->pos < p->len && !ends_bare(p->buf[p->pos])) {
				if (check_line(p))
					return -1;
				uint8_t b = p->buf[p->pos];
				if (b == '\\') {
					if (read_escape(p, &b))
						return -1;
					escaped = true;
				} else {
					p->pos++;
				}
				p->ebuf[p->eused++] = (char)b;
			}
			if (push_tok(p, tstart, false, escaped))
				return -1;
			break;
		}
		}
	}
	if (in_paren)
		return fail(p, paren_line, "'(' without ')' before the end of the file");
	return 1;
}

/* ---- fields ------------------------------------------------------------- */

static bool
tok_is(const struct tok *t, const char *word)
{
	return !t->quoted && strcasecmp(t->s, word) == 0;
}

/* A name field made absolute against the origin and lowercased into out
 * (NAME_BUF bytes). Refuses escapes (we keep names as plain C strings),
 * empty labels and the RFC 1035 length limits. */
static int
parse_name(struct parser *p, const struct tok *t, char *out)
{
	if (t->quoted || t->escaped)
		return fail(p, p->eline, "name '%.40s': quotes and escapes in names are not supported",
			    t->s);
	if (memchr(t->s, '\0', t->len))
		return fail(p, p->eline, "name holds a NUL byte");
	char tmp[2 * NAME_BUF + 2];
	if (strcmp(t->s, "@") == 0) {
		snprintf(tmp, sizeof(tmp), "%s", p->origin);
	} else if (strcmp(t->s, ".") == 0) {
		snprintf(tmp, sizeof(tmp), ".");
	} else if (t->len > 0 && t->s[t->len - 1] == '.') {
		if (t->len - 1 >= NAME_BUF)
			return fail(p, p->eline, "name longer than %d bytes", ZONEFILE_MAX_NAME);
		snprintf(tmp, sizeof(tmp), "%.*s", (int)(t->len - 1), t->s);
	} else {
		if (t->len >= NAME_BUF)
			return fail(p, p->eline, "name longer than %d bytes", ZONEFILE_MAX_NAME);
		if (strcmp(p->origin, ".") == 0)
			snprintf(tmp, sizeof(tmp), "%s", t->s);
		else
			snprintf(tmp, sizeof(tmp), "%s.%s", t->s, p->origin);
	}
	if (strcmp(tmp, ".") == 0) {
		snprintf(out, NAME_BUF, ".");
		return 0;
	}
	size_t n = strlen(tmp);
	/* wire length: one length byte per label plus its bytes, plus the root */
	if (n + 2 > ZONEFILE_MAX_NAME)
		return fail(p, p->eline, "name longer than %d bytes", ZONEFILE_MAX_NAME);
	size_t label = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || tmp[i] == '.') {
			if (label == 0)
				return fail(p, p->eline, "name '%.60s' has an empty label", tmp);
			if (label > ZONEFILE_MAX_LABEL)
				return fail(p, p->eline, "label longer than %d bytes",
					    ZONEFILE_MAX_LABEL);
			label = 0;
			continue;
		}
		unsigned char c = (unsigned char)tmp[i];
		if (c <= ' ' || c == 0x7f)
			return fail(p, p->eline, "control byte in a name");
		if (c >= 'A' && c <= 'Z')
			tmp[i] = (char)(c - 'A' + 'a');
		label++;
	}
	memcpy(out, tmp, n + 1);
	return 0;
}

/* TTL or SOA timer: a decimal number, or number+unit groups ("1h30m"). */
static int
parse_ttl(struct parser *p, const struct tok *t, uint32_t *out)
{
	if (t->quoted || t->len == 0)
		return fail(p, p->eline, "bad TTL");
	uint64_t total = 0, cur = 0;
	bool digits = false;
	for (size_t i = 0; i < t->len; i++) {
		char c = t->s[i];
		if (c >= '0' && c <= '9') {
			cur = cur * 10 + (uint64_t)(c - '0');
			digits = true;
			if (cur > ZONEFILE_MAX_TTL)
				return fail(p, p->eline, "TTL above %u", ZONEFILE_MAX_TTL);
			continue;
		}
		uint64_t mult;
		switch (c) {
		case 's': case 'S': mult = 1; break;
		case 'm': case 'M': mult = 60; break;
		case 'h': case 'H': mult = 3600; break;
		case 'd': case 'D': mult = 86400; break;
		case 'w': case 'W': mult = 604800; break;
		default:
			return fail(p, p->eline, "bad TTL '%.40s'", t->s);
		}
		if (!digits)
			return fail(p, p->eline, "bad TTL '%.40s'", t->s);
		total += cur * mult;
		cur = 0;
		digits = false;
		if (total > ZONEFILE_MAX_TTL)
			return fail(p, p->eline, "TTL above %u", ZONEFILE_MAX_TTL);
	}
	total += cur;
	if (total > ZONEFILE_MAX_TTL)
		return fail(p, p->eline, "TTL above %u", ZONEFILE_MAX_TTL);
	*out = (uint32_t)total;
	return 0;
}

static int
parse_u32(struct parser *p, const struct tok *t, uint32_t max, uint32_t *out, const char *what)
{
	if (t->quoted || t->len == 0 || t->len > 10)
		return fail(p, p->eline, "bad %s", what);
	uint64_t v = 0;
	for (size_t i = 0; i < t->len; i++) {
		if (t->s[i] < '0' || t->s[i] > '9')
			return fail(p, p->eline, "bad %s '%.20s'", what, t->s);
		v = v * 10 + (uint64_t)(t->s[i] - '0');
	}
	if (v > max)
		return fail(p, p->eline, "%s above %u", what, max);
	*out = (uint32_t)v;
	return 0;
}

/* ---- presentation ------------------------------------------------------- */

/* Appends to buf at *off what fits, always counting the full length. */
static void
put(char *buf, size_t size, size_t *off, const char *s, size_t n)
{
	if (*off < size) {
		size_t room = size - *off - 1;
		memcpy(buf + *off, s, n < room ? n : room);
		buf[*off + (n < room ? n : room)] = '\0';
	}
	*off += n;
}

static void
put_quoted(char *buf, size_t size, size_t *off, const uint8_t *d, size_t n)
{
	put(buf, size, off, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		char esc[5];
		if (d[i] == '"' || d[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)d[i];
			put(buf, size, off, esc, 2);
		} else if (d[i] < 0x20 || d[i] >= 0x7f) {
			snprintf(esc, sizeof(esc), "\\%03u", d[i]);
			put(buf, size, off, esc, 4);
		} else {
			put(buf, size, off, (const char *)&d[i], 1);
		}
	}
	put(buf, size, off, "\"", 1);
}

size_t
zonefile_txt_format(const uint8_t *data, size_t len, char *buf, size_t size)
{
	size_t off = 0;
	if (size)
		buf[0] = '\0';
	if (len == 0) {
		put(buf, size, &off, "\"\"", 2);
		return off;
	}
	for (size_t i = 0; i < len; i += ZONEFILE_MAX_TXT_STRING) {
		size_t n = len - i < ZONEFILE_MAX_TXT_STRING ? len - i : ZONEFILE_MAX_TXT_STRING;
		if (i)
			put(buf, size, &off, " ", 1);
		put_quoted(buf, size, &off, data + i, n);
	}
	return off;
}

size_t
zonefile_rr_format(const struct zonefile_rr *rr, char *buf, size_t size)
{
	size_t off = 0;
	char head[NAME_BUF + 40];
	const char *tn = zonefile_type_name(rr->type);
	int n = snprintf(head, sizeof(head), "%s%s %u IN %s ", rr->owner,
			 strcmp(rr->owner, ".") == 0 ? "" : ".", rr->ttl, tn ? tn : "TYPE0");
	if (size)
		buf[0] = '\0';
	put(buf, size, &off, head, (size_t)n);
	put(buf, size, &off, rr->rdata, strlen(rr->rdata));
	return off;
}

/* "name." or "." for the root: names in rdata are always absolute. */
static void
put_fqdn(char *buf, size_t size, size_t *off, const char *name)
{
	put(buf, size, off, name, strlen(name));
	if (strcmp(name, ".") != 0)
		put(buf, size, off, ".", 1);
}

/* ---- records ------------------------------------------------------------ */

static void
rr_free_fields(struct zonefile_rr *rr)
{
	free(rr->owner);
	free(rr->rdata);
	switch (rr->type) {
	case ZONEFILE_MX:
		free(rr->u.mx.host);
		break;
	case ZONEFILE_CNAME:
	case ZONEFILE_PTR:
	case ZONEFILE_NS:
		free(rr->u.name);
		break;
	case ZONEFILE_TXT:
		for (size_t i = 0; i < rr->u.txt.count; i++)
			free(rr->u.txt.strings[i].data);
		free(rr->u.txt.strings);
		break;
	case ZONEFILE_SOA:
		free(rr->u.soa.mname);
		free(rr->u.soa.rname);
		break;
	case ZONEFILE_A:
	case ZONEFILE_AAAA:
		break;
	}
}

void
zonefile_free(struct zonefile *z)
{
	if (!z)
		return;
	for (size_t i = 0; i < z->count; i++)
		rr_free_fields(&z->rrs[i]);
	free(z->rrs);
	free(z);
}

static int
need_fields(struct parser *p, size_t have, size_t want, const char *type)
{
	if (have != want)
		return fail(p, p->eline, "%s needs %zu field%s, found %zu", type, want,
			    want == 1 ? "" : "s", have);
	return 0;
}

/* TXT from its character-strings, one per field. */
static int
txt_strings(struct parser *p, struct zonefile_rr *rr, const struct tok *f, size_t n)
{
	if (n == 0)
		return fail(p, p->eline, "TXT needs at least one string");
	if (n > ZONEFILE_MAX_TXT_STRINGS)
		return fail(p, p->eline, "more than %d strings on one TXT record",
			    ZONEFILE_MAX_TXT_STRINGS);
	rr->u.txt.strings = calloc(n, sizeof(*rr->u.txt.strings));
	if (!rr->u.txt.strings)
		return fail(p, p->eline, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (f[i].len > ZONEFILE_MAX_TXT_STRING)
			return fail(p, p->eline, "TXT string %zu is %zu bytes, over %d", i + 1,
				    f[i].len, ZONEFILE_MAX_TXT_STRING);
		struct zonefile_str *st = &rr->u.txt.strings[rr->u.txt.count];
		if (!(st->data = malloc(f[i].len + 1)))
			return fail(p, p->eline, "out of memory");
		memcpy(st->data, f[i].s, f[i].len);
		st->data[f[i].len] = '\0';
		st->len = f[i].len;
		rr->u.txt.count++;
	}
	return 0;
}

/* "\#" as the first rdata field: RFC 3597 generic rdata follows. */
static bool
is_generic(const struct tok *t)
{
	return !t->quoted && t->escaped && t->len == 1 && t->s[0] == '#';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* TXT in RFC 3597 form, "\# LENGTH HEX...": the wire rdata cut into its
 * character-strings. The one way to write a TXT RR with no string at all
 * ("\# 0"), which the SPF test suites serve. */
static int
txt_generic(struct parser *p, struct zonefile_rr *rr, const struct tok *f, size_t n)
{
	uint32_t len;
	if (n == 0 || parse_u32(p, &f[0], 65535, &len, "generic rdata length"))
		return n == 0 ? fail(p, p->eline, "\\# needs a length") : -1;
	uint8_t *w = malloc(len ? len : 1);
	if (!w)
		return fail(p, p->eline, "out of memory");
	size_t got = 0;
	int rc = -1;
	for (size_t i = 1; i < n; i++) {
		if (f[i].quoted || f[i].len % 2) {
			fail(p, p->eline, "generic rdata: bad hex field");
			goto out;
		}
		for (size_t k = 0; k < f[i].len; k += 2) {
			int hi = hexval(f[i].s[k]), lo = hexval(f[i].s[k + 1]);
			if (hi < 0 || lo < 0 || got == len) {
				fail(p, p->eline, hi < 0 || lo < 0 ? "generic rdata: bad hex field"
								   : "generic rdata longer than its length");
				goto out;
			}
			w[got++] = (uint8_t)(hi << 4 | lo);
		}
	}
	if (got != len) {
		fail(p, p->eline, "generic rdata shorter than its length");
		goto out;
	}
	size_t count = 0;
	for (size_t off = 0; off < len; off += 1u + w[off]) {
		if (off + 1u + w[off] > len) {
			fail(p, p->eline, "generic TXT rdata: a string runs past the end");
			goto out;
		}
		count++;
	}
	if (count > ZONEFILE_MAX_TXT_STRINGS) {
		fail(p, p->eline, "more than %d strings on one TXT record", ZONEFILE_MAX_TXT_STRINGS);
		goto out;
	}
	rr->u.txt.strings = calloc(count ? count : 1, sizeof(*rr->u.txt.strings));
	if (!rr->u.txt.strings) {
		fail(p, p->eline, "out of memory");
		goto out;
	}
	for (size_t off = 0; off < len; off += 1u + w[off]) {
		struct zonefile_str *st = &rr->u.txt.strings[rr->u.txt.count];
		if (!(st->data = malloc((size_t)w[off] + 1))) {
			fail(p, p->eline, "out of memory");
			goto out;
		}
		memcpy(st->data, w + off + 1, w[off]);
		st->data[w[off]] = '\0';
		st->len = w[off];
		rr->u.txt.count++;
	}
	rc = 0;
out:
	free(w);
	return rc;
}

/* Decodes the rdata fields f[0..n) of rr (type already set) and builds its
 * presentation form. Allocations land in rr, freed by rr_free_fields. */
static int
parse_rdata(struct parser *p, struct zonefile_rr *rr, const struct tok *f, size_t n)
{
	char name[NAME_BUF], name2[NAME_BUF];
	const char *tn = zonefile_type_name(rr->type);
	if (rr->type != ZONEFILE_TXT) {
		for (size_t i = 0; i < n; i++)
			if (f[i].quoted)
				return fail(p, p->eline, "quoted field in %s rdata", tn);
	}
	size_t need = 0;
	char *s = NULL;
	switch (rr->type) {
	case ZONEFILE_A:
	case ZONEFILE_AAAA: {
		if (need_fields(p, n, 1, tn))
			return -1;
		int af = rr->type == ZONEFILE_A ? AF_INET : AF_INET6;
		if (f[0].escaped || inet_pton(af, f[0].s, rr->type == ZONEFILE_A ? (void *)rr->u.a
										  : (void *)rr->u.aaaa) != 1)
			return fail(p, p->eline, "bad %s address '%.60s'", tn, f[0].s);
		char addr[INET6_ADDRSTRLEN];
		inet_ntop(af, rr->type == ZONEFILE_A ? (void *)rr->u.a : (void *)rr->u.aaaa, addr,
			  sizeof(addr));
		rr->rdata = strdup(addr);
		break;
	}
	case ZONEFILE_MX: {
		if (need_fields(p, n, 2, tn))
			return -1;
		uint32_t pref;
		if (parse_u32(p, &f[0], 65535, &pref, "MX preference") || parse_name(p, &f[1], name))
			return -1;
		rr->u.mx.pref = (uint16_t)pref;
		if (!(rr->u.mx.host = strdup(name)))
			return fail(p, p->eline, "out of memory");
		char num[8];
		snprintf(num, sizeof(num), "%u ", pref);
		need = strlen(num) + strlen(name) + 2;
		if (!(s = malloc(need)))
			return fail(p, p->eline, "out of memory");
		size_t off = 0;
		put(s, need, &off, num, strlen(num));
		put_fqdn(s, need, &off, name);
		rr->rdata = s;
		break;
	}
	case ZONEFILE_CNAME:
	case ZONEFILE_PTR:
	case ZONEFILE_NS: {
		if (need_fields(p, n, 1, tn) || parse_name(p, &f[0], name))
			return -1;
		if (!(rr->u.name = strdup(name)))
			return fail(p, p->eline, "out of memory");
		need = strlen(name) + 2;
		if (!(s = malloc(need)))
			return fail(p, p->eline, "out of memory");
		size_t off = 0;
		put_fqdn(s, need, &off, name);
		rr->rdata = s;
		break;
	}
	case ZONEFILE_SOA: {
		if (need_fields(p, n, 7, tn) || parse_name(p, &f[0], name) ||
		    parse_name(p, &f[1], name2))
			return -1;
		uint32_t v[5];
		if (parse_u32(p, &f[2], UINT32_MAX, &v[0], "SOA serial"))
			return -1;
		for (int i = 1; i < 5; i++)
			if (parse_ttl(p, &f[2 + i], &v[i]))
				return -1;
		rr->u.soa.mname = strdup(name);
		rr->u.soa.rname = strdup(name2);
		rr->u.soa.serial = v[0];
		rr->u.soa.refresh = v[1];
		rr->u.soa.retry = v[2];
		rr->u.soa.expire = v[3];
		rr->u.soa.minimum = v[4];
		char nums[64];
		snprintf(nums, sizeof(nums), " %u %u %u %u %u", v[0], v[1], v[2], v[3], v[4]);
		need = strlen(name) + strlen(name2) + strlen(nums) + 4;
		s = malloc(need);
		if (!s || !rr->u.soa.mname || !rr->u.soa.rname) {
			free(s);
			return fail(p, p->eline, "out of memory");
		}
		size_t off = 0;
		put_fqdn(s, need, &off, name);
		put(s, need, &off, " ", 1);
		put_fqdn(s, need, &off, name2);
		put(s, need, &off, nums, strlen(nums));
		rr->rdata = s;
		break;
	}
	case ZONEFILE_TXT: {
		if (n >= 1 && is_generic(&f[0])) {
			if (txt_generic(p, rr, f + 1, n - 1))
				return -1;
		} else if (txt_strings(p, rr, f, n)) {
			return -1;
		}
		size_t plen = 8; /* room for "\\# 0" */
		for (size_t i = 0; i < rr->u.txt.count; i++)
			plen += 3 + 4 * rr->u.txt.strings[i].len; /* quotes, space, escapes */
		if (!(s = malloc(plen + 1)))
			return fail(p, p->eline, "out of memory");
		size_t off = 0;
		s[0] = '\0';
		if (rr->u.txt.count == 0)
			put(s, plen + 1, &off, "\\# 0", 4);
		for (size_t i = 0; i < rr->u.txt.count; i++) {
			if (i)
				put(s, plen + 1, &off, " ", 1);
			put_quoted(s, plen + 1, &off, rr->u.txt.strings[i].data,
				   rr->u.txt.strings[i].len);
		}
		rr->rdata = s;
		break;
	}
	}
	if (!rr->rdata)
		return fail(p, p->eline, "out of memory");
	return 0;
}

static const struct {
	const char *word;
	enum zonefile_type type;
} type_words[] = {
	{"A", ZONEFILE_A},     {"NS", ZONEFILE_NS},   {"CNAME", ZONEFILE_CNAME},
	{"SOA", ZONEFILE_SOA}, {"PTR", ZONEFILE_PTR}, {"MX", ZONEFILE_MX},
	{"TXT", ZONEFILE_TXT}, {"AAAA", ZONEFILE_AAAA},
};

static int
add_record(struct parser *p)
{
	const struct tok *f = p->toks;
	size_t n = p->ntok, i = 0;
	char owner[NAME_BUF];
	if (p->leading_ws) {
		if (!p->have_owner)
			return fail(p, p->eline, "no owner name to inherit");
		memcpy(owner, p->last_owner, sizeof(owner));
	} else {
		if (parse_name(p, &f[0], owner))
			return -1;
		i = 1;
	}
	bool have_ttl = false, have_class = false;
	uint32_t ttl = 0;
	for (int k = 0; k < 2 && i < n; k++) {
		if (!have_ttl && !f[i].quoted && f[i].s[0] >= '0' && f[i].s[0] <= '9') {
			if (parse_ttl(p, &f[i], &ttl))
				return -1;
			have_ttl = true;
			i++;
		} else if (!have_class && tok_is(&f[i], "IN")) {
			have_class = true;
			i++;
		} else if (!have_class && (tok_is(&f[i], "CH") || tok_is(&f[i], "HS") ||
					   tok_is(&f[i], "CS") || tok_is(&f[i], "ANY"))) {
			return fail(p, p->eline, "class %s: only IN is supported", f[i].s);
		}
	}
	if (i >= n)
		return fail(p, p->eline, "record without a type");
	enum zonefile_type type = 0;
	for (size_t k = 0; k < sizeof(type_words) / sizeof(type_words[0]); k++)
		if (tok_is(&f[i], type_words[k].word))
			type = type_words[k].type;
	if (!type)
		return fail(p, p->eline, "unsupported type '%.30s'", f[i].s);
	i++;

	if (p->z->count >= ZONEFILE_MAX_RECORDS)
		return fail(p, p->eline, "more than %d records", ZONEFILE_MAX_RECORDS);
	if (p->z->count == p->rrcap) {
		size_t ncap = p->rrcap ? p->rrcap * 2 : 64;
		struct zonefile_rr *nr = realloc(p->z->rrs, ncap * sizeof(*nr));
		if (!nr)
			return fail(p, p->eline, "out of memory");
		p->z->rrs = nr;
		p->rrcap = ncap;
	}
	struct zonefile_rr *rr = &p->z->rrs[p->z->count];
	memset(rr, 0, sizeof(*rr));
	rr->type = type;
	rr->line = p->eline;
	if (have_ttl) {
		p->last_ttl = ttl;
		p->have_last_ttl = true;
	} else if (p->have_default_ttl) {
		ttl = p->default_ttl;
	} else if (p->have_last_ttl) {
		ttl = p->last_ttl;
	} else {
		ttl = ZONEFILE_DEFAULT_TTL;
	}
	rr->ttl = ttl;
	if (!(rr->owner = strdup(owner)) || parse_rdata(p, rr, f + i, n - i)) {
		if (!rr->owner)
			fail(p, p->eline, "out of memory");
		rr_free_fields(rr);
		return -1;
	}
	p->z->count++;
	memcpy(p->last_owner, owner, sizeof(owner));
	p->have_owner = true;
	return 0;
}

static int
directive(struct parser *p)
{
	const struct tok *f = p->toks;
	if (tok_is(&f[0], "$ORIGIN")) {
		if (p->ntok != 2)
			return fail(p, p->eline, "$ORIGIN needs one name");
		char name[NAME_BUF];
		if (parse_name(p, &f[1], name))
			return -1;
		memcpy(p->origin, name, sizeof(name));
		return 0;
	}
	if (tok_is(&f[0], "$TTL")) {
		if (p->ntok != 2)
			return fail(p, p->eline, "$TTL needs one value");
		if (parse_ttl(p, &f[1], &p->default_ttl))
			return -1;
		p->have_default_ttl = true;
		return 0;
	}
	if (tok_is(&f[0], "$INCLUDE"))
		return fail(p, p->eline, "$INCLUDE is not supported: give the zone as one file");
	return fail(p, p->eline, "unknown directive '%.30s'", f[0].s);
}

int
zonefile_parse(const uint8_t *buf, size_t len, const char *origin, struct zonefile **out,
	       struct zonefile_error *err)
{
	struct parser p = {.buf = buf, .len = len, .line = 1, .err = err};
	err->line = 0;
	err->reason[0] = '\0';
	*out = NULL;
	snprintf(p.origin, sizeof(p.origin), ".");
	if (origin && strcmp(origin, ".") != 0 && origin[0]) {
		/* the initial origin is checked like any name, relative to the root */
		size_t olen = strlen(origin);
		struct tok t = {.s = origin, .len = olen};
		char tmp[NAME_BUF + 1];
		if (olen < sizeof(tmp) - 1 && origin[olen - 1] != '.') {
			snprintf(tmp, sizeof(tmp), "%s.", origin);
			t.s = tmp;
			t.len = olen + 1;
		}
		if (parse_name(&p, &t, p.origin)) {
			err->line = 0;
			return -1;
		}
	}
	p.z = calloc(1, sizeof(*p.z));
	p.ebuf = malloc(ZONEFILE_MAX_ENTRY + 2);
	if (!p.z || !p.ebuf) {
		fail(&p, 0, "out of memory");
		goto fail;
	}
	for (;;) {
		int r = read_entry(&p);
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		if (p.ntok == 0)
			continue;
		if (!p.leading_ws && !p.toks[0].quoted && p.toks[0].s[0] == '$')
			r = directive(&p);
		else
			r = add_record(&p);
		if (r < 0)
			goto fail;
	}
	free(p.ebuf);
	free(p.toks);
	*out = p.z;
	return 0;
fail:
	free(p.ebuf);
	free(p.toks);
	zonefile_free(p.z);
	return -1;
}
