/*
 * SPF (RFC 7208). Three layers, each usable alone: the record parser
 * (text -> terms, every syntax rule checked up front because a syntax error
 * anywhere is permerror), the macro expander (section 7), and check_host()
 * as a state machine over an explicit frame stack (one frame per record being
 * evaluated: the top one plus nested includes; redirect replaces a frame).
 */
#include "spf.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const result_names[] = {
	[SPF_RESULT_NONE] = "none",         [SPF_RESULT_NEUTRAL] = "neutral",
	[SPF_RESULT_PASS] = "pass",         [SPF_RESULT_FAIL] = "fail",
	[SPF_RESULT_SOFTFAIL] = "softfail", [SPF_RESULT_TEMPERROR] = "temperror",
	[SPF_RESULT_PERMERROR] = "permerror",
};

const char *
spf_result_name(enum spf_result r)
{
	if ((unsigned)r >= sizeof(result_names) / sizeof(result_names[0]))
		return "?";
	return result_names[r];
}

static void
setwhy(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
setwhy(char *why, size_t whylen, const char *fmt, ...)
{
	if (!why || whylen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static bool
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alnum(int c)
{
	return is_alpha(c) || is_digit(c);
}

static int
lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static bool
ieq(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

/* Copies at most cap-1 bytes and terminates. */
static void
copy_str(char *dst, size_t cap, const char *src, size_t n)
{
	if (cap == 0)
		return;
	if (n > cap - 1)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- addresses ---- */

/* Strict dotted quad: four decimal parts 0-255 without leading zeros. */
static int
parse_ip4(const char *s, size_t n, uint8_t out[4])
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= n || s[i] != '.')
				return -1;
			i++;
		}
		size_t start = i;
		unsigned v = 0;
		while (i < n && is_digit((unsigned char)s[i]) && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255 || (s[start] == '0' && i - start > 1))
			return -1;
		out[part] = (uint8_t)v;
	}
	return i == n ? 0 : -1;
}

static int
parse_ip6(const char *s, size_t n, uint8_t out[16])
{
	char buf[64];
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, out) == 1 ? 0 : -1;
}

int
spf_ip_parse(const char *text, struct spf_ip *ip)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (!text || !ip)
		return -1;
	memset(ip, 0, sizeof(*ip));
	size_t n = strlen(text);
	if (parse_ip4(text, n, ip->addr) == 0) {
		ip->family = 4;
		return 0;
	}
	uint8_t a6[16];
	if (parse_ip6(text, n, a6) != 0)
		return -1;
	/* an IPv4-mapped client is an IPv4 client for SPF (ip4 mechanisms, A queries) */
	if (memcmp(a6, mapped, sizeof(mapped)) == 0) {
		ip->family = 4;
		memcpy(ip->addr, a6 + 12, 4);
		return 0;
	}
	ip->family = 6;
	memcpy(ip->addr, a6, 16);
	return 0;
}

static bool
prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

/* ---- macro expander ---- */

static bool
is_delim(int c)
{
	return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

/* RFC 3986 unreserved characters stay; everything else is %XX-escaped. */
static bool
is_unreserved(int c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

struct outbuf {
	char *p;
	size_t cap, len;
	bool overflow;
};

static void
out_put(struct outbuf *o, const char *s, size_t n)
{
	if (!o->p)
		return;
	if (o->len + n + 1 > o->cap) {
		o->overflow = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

/* The raw value of a macro letter (lowercase) into buf. */
static size_t
macro_value(const struct spf_macro_ctx *ctx, int letter, char *buf, size_t cap)
{
	const char *s = NULL;
	switch (letter) {
	case 's': s = ctx->sender; break;
	case 'l': s = ctx->local; break;
	case 'o': s = ctx->sender_domain; break;
	case 'd': s = ctx->domain; break;
	case 'h': s = ctx->helo; break;
	case 'r': s = ctx->receiver ? ctx->receiver : "unknown"; break;
	case 'p': s = ctx->ptr_name ? ctx->ptr_name : "unknown"; break;
	case 'v': s = ctx->ip.family == 6 ? "ip6" : "in-addr"; break;
	case 't': return (size_t)snprintf(buf, cap, "%" PRId64, ctx->now) < cap ? strlen(buf) : 0;
	case 'c':
		if (!inet_ntop(ctx->ip.family == 6 ? AF_INET6 : AF_INET, ctx->ip.addr, buf,
			       (socklen_t)cap))
			return 0;
		return strlen(buf);
	case 'i':
		if (ctx->ip.family == 4) {
			snprintf(buf, cap, "%u.%u.%u.%u", ctx->ip.addr[0], ctx->ip.addr[1],
				 ctx->ip.addr[2], ctx->ip.addr[3]);
			return strlen(buf);
		} else {
			/* dot-separated nibbles; uppercase as the conformance suite expects
			 * (DNS names compare case-insensitively, so queries are unaffected) */
			static const char hex[] = "0123456789ABCDEF";
			size_t k = 0;
			for (int j = 0; j < 16 && k + 4 < cap; j++) {
				buf[k++] = hex[ctx->ip.addr[j] >> 4];
				buf[k++] = '.';
				buf[k++] = hex[ctx->ip.addr[j] & 15];
				buf[k++] = '.';
			}
			if (k)
				k--; /* no trailing dot */
			buf[k] = '\0';
			return k;
		}
	default: return 0;
	}
	if (!s)
		s = "";
	size_t n = strlen(s);
	copy_str(buf, cap, s, n);
	return n < cap ? n : cap - 1;
}

_Static_assert(SPF_MAX_EXPANSION < 65535, "macro part offsets are 16-bit");

/* Applies transformers and delimiters to value v and appends to o. */
static void
macro_transform(struct outbuf *o, const char *v, size_t vn, unsigned digits, bool reverse,
		const char *delims, size_t ndelims, bool escape)
{
	/* split into parts: part k spans [st[k], en[k]); a value is at most
	 * SPF_MAX_EXPANSION bytes, so offsets fit 16 bits and the arrays 8 KiB */
	uint16_t st[SPF_MAX_EXPANSION + 1], en[SPF_MAX_EXPANSION + 1];
	size_t np = 0, start = 0;
	if (vn > SPF_MAX_EXPANSION)
		vn = SPF_MAX_EXPANSION;
	for (size_t i = 0; i <= vn; i++) {
		bool d = false;
		if (i < vn)
			for (size_t j = 0; j < ndelims; j++)
				d |= v[i] == delims[j];
		if (i == vn || d) {
			st[np] = (uint16_t)start;
			en[np] = (uint16_t)i;
			np++;
			start = i + 1;
		}
	}
	size_t first = 0; /* index in the (possibly reversed) order */
	if (digits > 0 && digits < np)
		first = np - digits;
	for (size_t k = first; k < np; k++) {
		size_t idx = reverse ? np - 1 - k : k;
		if (k > first)
			out_put(o, ".", 1);
		const char *p = v + st[idx];
		size_t n = en[idx] - st[idx];
		if (!escape) {
			out_put(o, p, n);
			continue;
		}
		for (size_t j = 0; j < n; j++) {
			unsigned char c = (unsigned char)p[j];
			if (is_unreserved(c)) {
				out_put(o, (const char *)&p[j], 1);
			} else {
				char e[4];
				snprintf(e, sizeof(e), "%%%02X", c);
				out_put(o, e, 3);
			}
		}
	}
}

/*
 * Walks a macro-string: checks its syntax and, with ctx, expands it. Sets
 * *last_macro when the final token is a macro-expand (a valid domain-end).
 */
static int
macro_walk(const struct spf_macro_ctx *ctx, const char *in, size_t len, unsigned flags,
	   struct outbuf *o, bool *uses_p, bool *last_macro, char *why, size_t whylen)
{
	bool exp = flags & SPF_MACRO_EXP;
	*last_macro = false;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)in[i];
		if (c != '%') {
			/* macro-literal = %x21-24 / %x26-7E; SP too in explain-string */
			if (!((c >= 0x21 && c <= 0x7e) || (exp && c == ' '))) {
				setwhy(why, whylen, "invalid character 0x%02x in macro-string", c);
				return -1;
			}
			out_put(o, (const char *)&in[i], 1);
			*last_macro = false;
			i++;
			continue;
		}
		if (i + 1 >= len) {
			setwhy(why, whylen, "'%%' at end of macro-string");
			return -1;
		}
		char n = in[i + 1];
		if (n == '%' || n == '_' || n == '-') {
			out_put(o, n == '%' ? "%" : n == '_' ? " " : "%20", n == '-' ? 3 : 1);
			*last_macro = true;
			i += 2;
			continue;
		}
		if (n != '{') {
			setwhy(why, whylen, "invalid macro '%%%c'", n);
			return -1;
		}
		size_t j = i + 2;
		if (j >= len) {
			setwhy(why, whylen, "unterminated macro");
			return -1;
		}
		int letter = (unsigned char)in[j];
		int lc = lower(letter);
		if (!strchr("slodiphcrtv", lc) || lc == 0) {
			setwhy(why, whylen, "unknown macro letter '%c'", letter);
			return -1;
		}
		if (!exp && (lc == 'c' || lc == 'r' || lc == 't')) {
			setwhy(why, whylen, "macro letter '%c' only allowed in exp text", letter);
			return -1;
		}
		j++;
		unsigned digits = 0;
		bool have_digits = false;
		while (j < len && is_digit((unsigned char)in[j])) {
			if (digits < 10000)
				digits = digits * 10 + (unsigned)(in[j] - '0');
			have_digits = true;
			j++;
		}
		if (have_digits && digits == 0) {
			setwhy(why, whylen, "macro transformer digit must be nonzero");
			return -1;
		}
		bool reverse = false;
		if (j < len && lower((unsigned char)in[j]) == 'r') {
			reverse = true;
			j++;
		}
		size_t dstart = j;
		while (j < len && is_delim((unsigned char)in[j]))
			j++;
		size_t ndelims = j - dstart;
		if (j >= len || in[j] != '}') {
			setwhy(why, whylen, "malformed macro (expected '}')");
			return -1;
		}
		if (lc == 'p' && uses_p)
			*uses_p = true;
		if (ctx && o->p) {
			char val[SPF_MAX_EXPANSION + 1];
			size_t vn = macro_value(ctx, lc, val, sizeof(val));
			macro_transform(o, val, vn, digits, reverse, ndelims ? in + dstart : ".",
					ndelims ? ndelims : 1, letter != lc);
		}
		*last_macro = true;
		i = j + 1;
	}
	return 0;
}

/* Truncates a name from the left, whole labels at a time, to SPF_DOMAIN_MAX. */
static void
truncate_domain(char *s, size_t *len)
{
	if (*len > 0 && s[*len - 1] == '.')
		s[--*len] = '\0';
	size_t off = 0;
	while (*len - off > SPF_DOMAIN_MAX) {
		char *dot = memchr(s + off, '.', *len - off);
		if (!dot) {
			off = *len; /* one label longer than a name: nothing left */
			break;
		}
		off = (size_t)(dot - s) + 1;
	}
	memmove(s, s + off, *len - off + 1);
	*len -= off;
}

int
spf_macro_expand(const struct spf_macro_ctx *ctx, const char *in, size_t len, unsigned flags,
		 char *out, size_t outcap, bool *uses_p, char *why, size_t whylen)
{
	struct outbuf o = {.p = out, .cap = outcap, .len = 0, .overflow = false};
	bool last_macro;
	if (uses_p)
		*uses_p = false;
	if (out && outcap)
		out[0] = '\0';
	if (macro_walk(ctx, in, len, flags, &o, uses_p, &last_macro, why, whylen) != 0)
		return -1;
	if (ctx && out) {
		if (o.overflow) {
			setwhy(why, whylen, "macro expansion longer than %zu bytes", outcap - 1);
			return -1;
		}
		if (flags & SPF_MACRO_DOMAIN)
			truncate_domain(out, &o.len);
	}
	return 0;
}

/* ---- domain names ---- */

/* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool
valid_toplabel(const char *s, size_t n)
{
	if (n == 0)
		return false;
	bool alpha = false, dash = false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_alpha(c))
			alpha = true;
		else if (c == '-')
			dash = true;
		else if (!is_digit(c))
			return false;
	}
	if (dash)
		return s[0] != '-' && s[n - 1] != '-';
	return alpha;
}

/*
 * A name that can be queried: 1..253 octets without a trailing dot, labels
 * 1..63 octets.
 */
static bool
queryable_name(const char *s, size_t n)
{
	if (n == 0 || n > SPF_DOMAIN_MAX)
		return false;
	size_t lab = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (lab == 0 || lab > SPF_LABEL_MAX)
				return false;
			lab = 0;
		} else {
			lab++;
		}
	}
	return true;
}

/*
 * The <domain> of check_host (RFC 7208 4.3): a multi-label FQDN with a valid
 * top label, an optional trailing dot dropped. Returns the length, or 0.
 */
static size_t
check_host_domain(const char *s, char *out)
{
	size_t n = strlen(s);
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (!queryable_name(s, n))
		return 0;
	const char *dot = NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f)
			return 0;
		if (c == '.')
			dot = s + i;
	}
	if (!dot || !valid_toplabel(dot + 1, (size_t)(s + n - dot - 1)))
		return 0;
	copy_str(out, SPF_DOMAIN_MAX + 1, s, n);
	return n;
}

/*
 * domain-spec = macro-string domain-end; domain-end = ( "." toplabel ["."] ) /
 * macro-expand. One trailing dot is tolerated before the check.
 */
static int
check_domain_spec(const char *s, size_t n, bool *uses_p, char *why, size_t whylen)
{
	if (n == 0) {
		setwhy(why, whylen, "empty domain-spec");
		return -1;
	}
	size_t m = n;
	if (s[m - 1] == '.')
		m--;
	struct outbuf o = {0};
	bool last_macro;
	if (macro_walk(NULL, s, n, 0, &o, uses_p, &last_macro, why, whylen) != 0)
		return -1;
	if (m == 0) {
		setwhy(why, whylen, "empty domain-spec");
		return -1;
	}
	(void)macro_walk(NULL, s, m, 0, &o, NULL, &last_macro, NULL, 0);
	if (last_macro)
		return 0;
	const char *dot = NULL;
	for (size_t i = 0; i < m; i++)
		if (s[i] == '.')
			dot = s + i;
	if (!dot || !valid_toplabel(dot + 1, (size_t)(s + m - dot - 1))) {
		setwhy(why, whylen, "domain-spec '%.*s' has no valid top label", (int)(n > 80 ? 80 : n),
		       s);
		return -1;
	}
	return 0;
}

/* ---- record parser ---- */

bool
spf_record_is_spf(const char *txt, size_t len)
{
	return len >= 6 && ieq(txt, 6, "v=spf1") && (len == 6 || txt[6] == ' ');
}

/* "/" ("0" / %x31-39 0*(maxd-1)DIGIT) with value <= max; s points after the '/'. */
static int
parse_cidr_len(const char *s, size_t n, unsigned max, uint8_t *out)
{
	if (n == 0 || n > 3 || (s[0] == '0' && n > 1))
		return -1;
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = (uint8_t)v;
	return 0;
}

static size_t
digit_run(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && is_digit((unsigned char)s[i]))
		i++;
	return i;
}

/* Does s (starting with '/') have the shape of a dual-cidr-length? */
static bool
dual_cidr_shape(const char *s, size_t n)
{
	if (n < 2 || s[0] != '/')
		return false;
	if (s[1] == '/') {
		size_t d = digit_run(s + 2, n - 2);
		return d > 0 && d == n - 2;
	}
	size_t d = digit_run(s + 1, n - 1);
	if (d == 0)
		return false;
	if (1 + d == n)
		return true;
	size_t rest = 1 + d;
	if (n - rest < 3 || s[rest] != '/' || s[rest + 1] != '/')
		return false;
	size_t d2 = digit_run(s + rest + 2, n - rest - 2);
	return d2 > 0 && rest + 2 + d2 == n;
}

static int
parse_dual_cidr(const char *s, size_t n, struct spf_term *t, char *why, size_t whylen)
{
	size_t i = 0; /* where "//" starts */
	if (s[1] != '/') {
		size_t d = digit_run(s + 1, n - 1);
		if (parse_cidr_len(s + 1, d, 32, &t->cidr4) != 0) {
			setwhy(why, whylen, "invalid IPv4 CIDR length '/%.*s'", (int)d, s + 1);
			return -1;
		}
		i = 1 + d;
	}
	if (i < n) {
		if (parse_cidr_len(s + i + 2, n - i - 2, 128, &t->cidr6) != 0) {
			setwhy(why, whylen, "invalid IPv6 CIDR length '/%.*s'", (int)(n - i - 2),
			       s + i + 2);
			return -1;
		}
	}
	return 0;
}

struct mech_name {
	const char *name;
	enum spf_mech mech;
};

static const struct mech_name mech_names[] = {
	{"all", SPF_MECH_ALL},   {"include", SPF_MECH_INCLUDE}, {"a", SPF_MECH_A},
	{"mx", SPF_MECH_MX},     {"ptr", SPF_MECH_PTR},         {"ip4", SPF_MECH_IP4},
	{"ip6", SPF_MECH_IP6},   {"exists", SPF_MECH_EXISTS},
};

static bool
is_name_char(int c)
{
	return is_alnum(c) || c == '-' || c == '_' || c == '.';
}

/* Parses one term t[0..n) at offset off of the record text. */
static int
parse_term(const char *text, size_t off, size_t n, struct spf_term *t, char *why, size_t whylen)
{
	const char *s = text + off;
	memset(t, 0, sizeof(*t));
	t->off = off;
	t->len = n;
	t->cidr4 = 32;
	t->cidr6 = 128;
	t->qual = '+';
	size_t i = 0;
	bool has_qual = false;
	if (s[0] == '+' || s[0] == '-' || s[0] == '~' || s[0] == '?') {
		t->qual = s[0];
		has_qual = true;
		i = 1;
	}
	size_t nstart = i;
	while (i < n && is_name_char((unsigned char)s[i]))
		i++;
	size_t nlen = i - nstart;
	const char *name = s + nstart;
	if (!has_qual && nlen > 0 && i < n && s[i] == '=') {
		/* modifier: name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
		if (!is_alpha((unsigned char)name[0])) {
			setwhy(why, whylen, "invalid modifier name '%.*s'", (int)nlen, name);
			return -1;
		}
		t->spec_off = off + i + 1;
		t->spec_len = n - i - 1;
		const char *v = text + t->spec_off;
		if (ieq(name, nlen, "redirect") || ieq(name, nlen, "exp")) {
			t->kind = ieq(name, nlen, "exp") ? SPF_TERM_EXP : SPF_TERM_REDIRECT;
			if (check_domain_spec(v, t->spec_len, &t->uses_p, why, whylen) != 0)
				return -1;
		} else {
			t->kind = SPF_TERM_UNKNOWN_MOD;
			struct outbuf o = {0};
			bool last;
			/* never expanded, but a bad macro in it is still a syntax error */
			if (macro_walk(NULL, v, t->spec_len, SPF_MACRO_EXP, &o, NULL, &last, why,
				       whylen) != 0) {
				setwhy(why, whylen, "invalid value of modifier '%.*s'", (int)nlen, name);
				return -1;
			}
		}
		return 0;
	}
	t->kind = SPF_TERM_MECH;
	size_t k;
	for (k = 0; k < sizeof(mech_names) / sizeof(mech_names[0]); k++)
		if (ieq(name, nlen, mech_names[k].name))
			break;
	if (nlen == 0 || k == sizeof(mech_names) / sizeof(mech_names[0]) ||
	    (i < n && s[i] != ':' && s[i] != '/')) {
		setwhy(why, whylen, "unknown mechanism '%.*s'", (int)(n > 60 ? 60 : n), s);
		return -1;
	}
	t->mech = mech_names[k].mech;
	const char *r = s + i; /* rest: "", ":..." or "/..." */
	size_t rn = n - i;
	switch (t->mech) {
	case SPF_MECH_ALL:
		if (rn != 0) {
			setwhy(why, whylen, "'all' takes no argument");
			return -1;
		}
		return 0;
	case SPF_MECH_INCLUDE:
	case SPF_MECH_EXISTS:
	case SPF_MECH_PTR:
		if (rn == 0) {
			if (t->mech == SPF_MECH_PTR)
				return 0;
			setwhy(why, whylen, "'%s' needs a domain", mech_names[k].name);
			return -1;
		}
		if (r[0] != ':') {
			setwhy(why, whylen, "'%s' takes no CIDR length", mech_names[k].name);
			return -1;
		}
		t->spec_off = off + i + 1;
		t->spec_len = rn - 1;
		return check_domain_spec(r + 1, rn - 1, &t->uses_p, why, whylen);
	case SPF_MECH_A:
	case SPF_MECH_MX: {
		if (rn == 0)
			return 0;
		if (r[0] == '/') {
			if (!dual_cidr_shape(r, rn)) {
				setwhy(why, whylen, "invalid CIDR length '%.*s'", (int)rn, r);
				return -1;
			}
			return parse_dual_cidr(r, rn, t, why, whylen);
		}
		/* the CIDR suffix starts at the leftmost '/' whose rest has its shape;
		 * any other '/' belongs to the domain-spec (a macro-literal) */
		size_t cut = rn;
		for (size_t j = 1; j < rn; j++)
			if (r[j] == '/' && dual_cidr_shape(r + j, rn - j)) {
				cut = j;
				break;
			}
		if (cut < rn && parse_dual_cidr(r + cut, rn - cut, t, why, whylen) != 0)
			return -1;
		t->spec_off = off + i + 1;
		t->spec_len = cut - 1;
		return check_domain_spec(r + 1, cut - 1, &t->uses_p, why, whylen);
	}
	case SPF_MECH_IP4:
	case SPF_MECH_IP6: {
		if (rn < 2 || r[0] != ':') {
			setwhy(why, whylen, "'%s' needs an address", mech_names[k].name);
			return -1;
		}
		const char *slash = memchr(r + 1, '/', rn - 1);
		size_t alen = slash ? (size_t)(slash - r - 1) : rn - 1;
		bool v4 = t->mech == SPF_MECH_IP4;
		int rc = v4 ? parse_ip4(r + 1, alen, t->addr) : parse_ip6(r + 1, alen, t->addr);
		if (rc != 0) {
			setwhy(why, whylen, "invalid %s address '%.*s'", v4 ? "IPv4" : "IPv6",
			       (int)(alen > 60 ? 60 : alen), r + 1);
			return -1;
		}
		if (slash) {
			size_t cl = rn - 1 - alen - 1;
			if (parse_cidr_len(slash + 1, cl, v4 ? 32 : 128, v4 ? &t->cidr4 : &t->cidr6) !=
			    0) {
				setwhy(why, whylen, "invalid CIDR length '/%.*s'", (int)cl, slash + 1);
				return -1;
			}
		}
		return 0;
	}
	}
	return -1;
}

void
spf_record_free(struct spf_record *rec)
{
	if (!rec)
		return;
	free(rec->text);
	free(rec->terms);
	memset(rec, 0, sizeof(*rec));
	rec->redirect = rec->exp = -1;
}

int
spf_record_parse(const char *txt, size_t len, struct spf_record *rec, char *why, size_t whylen)
{
	memset(rec, 0, sizeof(*rec));
	rec->redirect = rec->exp = -1;
	if (!spf_record_is_spf(txt, len)) {
		setwhy(why, whylen, "not an SPF record (no \"v=spf1\")");
		return -1;
	}
	if (len > SPF_MAX_RECORD_LEN) {
		setwhy(why, whylen, "record longer than %d bytes", SPF_MAX_RECORD_LEN);
		return -1;
	}
	size_t nterms = 0;
	for (size_t i = 6; i < len; i++) {
		unsigned char c = (unsigned char)txt[i];
		if (c < 0x20 || c > 0x7e) {
			setwhy(why, whylen, "invalid character 0x%02x in record", c);
			return -1;
		}
		if (c != ' ' && txt[i - 1] == ' ')
			nterms++;
	}
	rec->text = malloc(len + 1);
	rec->terms = calloc(nterms ? nterms : 1, sizeof(*rec->terms));
	if (!rec->text || !rec->terms) {
		setwhy(why, whylen, "out of memory");
		goto fail;
	}
	memcpy(rec->text, txt, len);
	rec->text[len] = '\0';
	rec->len = len;
	for (size_t i = 6; i < len;) {
		if (txt[i] == ' ') {
			i++;
			continue;
		}
		size_t j = i;
		while (j < len && txt[j] != ' ')
			j++;
		struct spf_term *t = &rec->terms[rec->nterms];
		if (parse_term(rec->text, i, j - i, t, why, whylen) != 0)
			goto fail;
		if (t->kind == SPF_TERM_REDIRECT || t->kind == SPF_TERM_EXP) {
			int *slot = t->kind == SPF_TERM_REDIRECT ? &rec->redirect : &rec->exp;
			if (*slot >= 0) {
				setwhy(why, whylen, "'%s=' appears twice",
				       t->kind == SPF_TERM_REDIRECT ? "redirect" : "exp");
				goto fail;
			}
			*slot = (int)rec->nterms;
		}
		rec->nterms++;
		i = j;
	}
	return 0;
fail:
	spf_record_free(rec);
	return -1;
}

/* ---- evaluator ---- */

enum ev_state {
	ST_FRAME_START, /* top frame needs its record */
	ST_TERMS,       /* evaluate terms from frame->ti */
	ST_MX_HOSTS,    /* look up the addresses of names[name_i] (mx) */
	ST_PTR_HOSTS,   /* validate names[name_i] (ptr mechanism) */
	ST_PVAL_HOSTS,  /* validate pnames[pname_i] (%{p}) */
	ST_EXP_START,   /* fail at the top: fetch exp= text */
	ST_EXP_EXPAND,  /* expand the fetched text */
	ST_DONE,
};

enum ev_wait {
	W_NONE,
	W_RECORD,
	W_A,       /* a mechanism */
	W_MX,      /* MX list */
	W_MX_HOST, /* A/AAAA of an MX host */
	W_PTR,     /* PTR list for the ptr mechanism */
	W_PTR_HOST,
	W_EXISTS,
	W_EXP,
	W_PVAL_PTR,
	W_PVAL_HOST,
};

struct frame {
	char domain[SPF_DOMAIN_MAX + 1];
	struct spf_record rec;
	size_t ti;          /* next term */
	bool via_redirect;  /* a "none" here is permerror */
	bool term_counted;  /* the current term already counted against the limit */
};

struct spf_eval {
	enum ev_state state, resume; /* resume: where %{p} validation returns */
	enum ev_wait wait;
	struct spf_ip ip;
	char sender[2 * SPF_MAX_SENDER + 2]; /* local "@" domain */
	char local[SPF_MAX_SENDER + 1];
	char sender_domain[SPF_MAX_SENDER + 1];
	char helo[SPF_MAX_SENDER + 1];
	char receiver[SPF_DOMAIN_MAX + 1];
	bool have_receiver;
	int64_t now;
	char default_exp[SPF_MAX_EXPLANATION + 1];

	struct frame frames[SPF_MAX_DEPTH];
	unsigned depth;
	unsigned dns_terms, voids;

	char qname[SPF_DOMAIN_MAX + 1];
	enum ws_dns_type qtype;

	/* the mechanism in progress (mx / ptr) */
	char target[SPF_DOMAIN_MAX + 1];
	char names[SPF_MAX_PTR_NAMES > SPF_MAX_MX_NAMES ? SPF_MAX_PTR_NAMES : SPF_MAX_MX_NAMES]
		  [SPF_DOMAIN_MAX + 1];
	unsigned nnames, name_i;

	/* %{p}: PTR names and which of them validated */
	bool pval_done;
	char pnames[SPF_MAX_PTR_NAMES][SPF_DOMAIN_MAX + 1];
	bool pvalid[SPF_MAX_PTR_NAMES];
	unsigned npnames, pname_i;

	char exp_text[SPF_MAX_EXPLANATION + 1];
	size_t exp_len;

	struct spf_outcome out;
};

static struct frame *
top(struct spf_eval *ev)
{
	return &ev->frames[ev->depth - 1];
}

static void
finish(struct spf_eval *ev, enum spf_result r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Ends the whole evaluation (errors propagate through every frame). */
static void
finish(struct spf_eval *ev, enum spf_result r, const char *fmt, ...)
{
	ev->out.result = r;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ev->out.reason, sizeof(ev->out.reason), fmt, ap);
	va_end(ap);
	while (ev->depth > 0)
		spf_record_free(&ev->frames[--ev->depth].rec);
	ev->state = ST_DONE;
	ev->wait = W_NONE;
	ev->out.dns_terms = ev->dns_terms;
	ev->out.void_lookups = ev->voids;
}

/* Ends a fail result whose reason is already set (after the exp= lookup). */
static void
finish_fail(struct spf_eval *ev)
{
	while (ev->depth > 0)
		spf_record_free(&ev->frames[--ev->depth].rec);
	ev->out.result = SPF_RESULT_FAIL;
	ev->state = ST_DONE;
	ev->wait = W_NONE;
	ev->out.dns_terms = ev->dns_terms;
	ev->out.void_lookups = ev->voids;
}

static void
ask(struct spf_eval *ev, enum ev_wait w, const char *name, enum ws_dns_type type)
{
	copy_str(ev->qname, sizeof(ev->qname), name, strlen(name));
	ev->qtype = type;
	ev->wait = w;
}

static enum ws_dns_type
addr_type(const struct spf_eval *ev)
{
	return ev->ip.family == 6 ? WS_DNS_AAAA : WS_DNS_A;
}

static void
reverse_name(const struct spf_eval *ev, char *out, size_t cap)
{
	if (ev->ip.family == 4) {
		snprintf(out, cap, "%u.%u.%u.%u.in-addr.arpa", ev->ip.addr[3], ev->ip.addr[2],
			 ev->ip.addr[1], ev->ip.addr[0]);
		return;
	}
	static const char hex[] = "0123456789abcdef";
	size_t k = 0;
	for (int j = 15; j >= 0 && k + 4 < cap; j--) {
		out[k++] = hex[ev->ip.addr[j] & 15];
		out[k++] = '.';
		out[k++] = hex[ev->ip.addr[j] >> 4];
		out[k++] = '.';
	}
	copy_str(out + k, cap - k, "ip6.arpa", 8);
}

/* The %{p} value for the current domain: a validated name equal to or under
 * <domain> if there is one, else any validated name, else NULL ("unknown"). */
static const char *
ptr_macro_value(const struct spf_eval *ev, const char *domain)
{
	const char *any = NULL;
	size_t dn = strlen(domain);
	for (unsigned k = 0; k < ev->npnames; k++) {
		if (!ev->pvalid[k])
			continue;
		const char *p = ev->pnames[k];
		size_t pn = strlen(p);
		if (pn >= dn && ieq(p + pn - dn, dn, domain) && (pn == dn || p[pn - dn - 1] == '.'))
			return p;
		if (!any)
			any = p;
	}
	return any;
}

static void
macro_ctx(const struct spf_eval *ev, const char *domain, struct spf_macro_ctx *c)
{
	c->sender = ev->sender;
	c->local = ev->local;
	c->sender_domain = ev->sender_domain;
	c->domain = domain;
	c->helo = ev->helo;
	c->receiver = ev->have_receiver ? ev->receiver : NULL;
	c->ptr_name = ptr_macro_value(ev, domain);
	c->ip = ev->ip;
	c->now = ev->now;
}

/* Expands a term's domain-spec (or the frame's domain when it has none). */
static int
term_target(struct spf_eval *ev, const struct frame *f, const struct spf_term *t, char *out,
	    char *why, size_t whylen)
{
	if (t->spec_len == 0) {
		copy_str(out, SPF_DOMAIN_MAX + 1, f->domain, strlen(f->domain));
		return 0;
	}
	struct spf_macro_ctx c;
	macro_ctx(ev, f->domain, &c);
	char buf[SPF_MAX_EXPANSION + 1];
	if (spf_macro_expand(&c, f->rec.text + t->spec_off, t->spec_len, SPF_MACRO_DOMAIN, buf,
			     sizeof(buf), NULL, why, whylen) != 0)
		return -1;
	copy_str(out, SPF_DOMAIN_MAX + 1, buf, strlen(buf));
	return 0;
}

static bool
addr_in_answer(const struct spf_eval *ev, const struct ws_dns_answer *a, unsigned c4,
	       unsigned c6)
{
	if (a->status != WS_DNS_OK)
		return false;
	for (size_t k = 0; k < a->count; k++) {
		const struct ws_dns_rr *rr = &a->rrs[k];
		if (ev->ip.family == 4 && rr->type == WS_DNS_A &&
		    prefix_match(rr->u.a, ev->ip.addr, c4))
			return true;
		if (ev->ip.family == 6 && rr->type == WS_DNS_AAAA &&
		    prefix_match(rr->u.aaaa, ev->ip.addr, c6))
			return true;
	}
	return false;
}

static size_t
count_type(const struct ws_dns_answer *a, enum ws_dns_type type)
{
	size_t n = 0;
	if (a->status == WS_DNS_OK)
		for (size_t k = 0; k < a->count; k++)
			n += a->rrs[k].type == type;
	return n;
}

static bool
is_tempfail(const struct ws_dns_answer *a)
{
	return a->status == WS_DNS_TEMPFAIL || a->status == WS_DNS_BOGUS;
}

/* Counts a void lookup (RFC 7208 4.6.4); returns false once over the limit. */
static bool
note_void(struct spf_eval *ev, const struct ws_dns_answer *a, enum ws_dns_type type)
{
	if (is_tempfail(a) || count_type(a, type) > 0)
		return true;
	if (++ev->voids > SPF_MAX_VOID_LOOKUPS) {
		finish(ev, SPF_RESULT_PERMERROR, "more than %d void lookups (last: %s)",
		       SPF_MAX_VOID_LOOKUPS, ev->qname);
		return false;
	}
	return true;
}

static enum spf_result
qual_result(char q)
{
	switch (q) {
	case '-': return SPF_RESULT_FAIL;
	case '~': return SPF_RESULT_SOFTFAIL;
	case '?': return SPF_RESULT_NEUTRAL;
	default: return SPF_RESULT_PASS;
	}
}

static void frame_result(struct spf_eval *ev, enum spf_result r, const char *reason);

/* The current term of the top frame matched. */
static void
term_matched(struct spf_eval *ev)
{
	struct frame *f = top(ev);
	const struct spf_term *t = &f->rec.terms[f->ti];
	if (ev->depth == 1)
		copy_str(ev->out.mechanism, sizeof(ev->out.mechanism), f->rec.text + t->off, t->len);
	char why[sizeof(ev->out.reason)];
	snprintf(why, sizeof(why), "matched '%.*s' in the record of %s", (int)(t->len > 80 ? 80 : t->len),
		 f->rec.text + t->off, f->domain);
	frame_result(ev, qual_result(t->qual), why);
}

static void
term_nomatch(struct spf_eval *ev)
{
	struct frame *f = top(ev);
	f->ti++;
	f->term_counted = false;
	ev->state = ST_TERMS;
}

/*
 * A frame finished with r. At the top that is the result (fail fetches the
 * explanation); in an include it is mapped per RFC 7208 5.2.
 */
static void
frame_result(struct spf_eval *ev, enum spf_result r, const char *reason)
{
	struct frame *f = top(ev);
	if (r == SPF_RESULT_NONE && f->via_redirect) {
		r = SPF_RESULT_PERMERROR;
		reason = "redirect target has no SPF record";
	}
	if (r == SPF_RESULT_TEMPERROR || r == SPF_RESULT_PERMERROR) {
		finish(ev, r, "%s", reason);
		return;
	}
	if (ev->depth == 1) {
		copy_str(ev->out.record_domain, sizeof(ev->out.record_domain), f->domain,
			 strlen(f->domain));
		if (r == SPF_RESULT_FAIL) {
			/* keep the reason; the explanation lookup must not change the result */
			copy_str(ev->out.reason, sizeof(ev->out.reason), reason, strlen(reason));
			ev->out.result = r;
			copy_str(ev->out.explanation, sizeof(ev->out.explanation), ev->default_exp,
				 strlen(ev->default_exp));
			ev->state = ST_EXP_START;
			return;
		}
		finish(ev, r, "%s", reason);
		return;
	}
	if (r == SPF_RESULT_NONE) {
		char why[sizeof(ev->out.reason)];
		snprintf(why, sizeof(why), "included domain %s has no SPF record", f->domain);
		finish(ev, SPF_RESULT_PERMERROR, "%s", why);
		return;
	}
	spf_record_free(&f->rec);
	ev->depth--;
	if (r == SPF_RESULT_PASS)
		term_matched(ev);
	else
		term_nomatch(ev);
}

/* Counts a DNS-querying term once; false (and permerror) past the limit. */
static bool
count_term(struct spf_eval *ev, struct frame *f)
{
	if (f->term_counted)
		return true;
	f->term_counted = true;
	if (++ev->dns_terms > SPF_MAX_DNS_TERMS) {
		finish(ev, SPF_RESULT_PERMERROR, "more than %d DNS-querying terms",
		       SPF_MAX_DNS_TERMS);
		return false;
	}
	return true;
}

static void
start_pval(struct spf_eval *ev, enum ev_state resume)
{
	char rev[80];
	reverse_name(ev, rev, sizeof(rev));
	ev->resume = resume;
	ask(ev, W_PVAL_PTR, rev, WS_DNS_PTR);
}

static void
push_frame(struct spf_eval *ev, const char *domain, bool via_redirect)
{
	struct frame *f = &ev->frames[ev->depth++];
	memset(f, 0, sizeof(*f));
	f->rec.redirect = f->rec.exp = -1;
	copy_str(f->domain, sizeof(f->domain), domain, strlen(domain));
	f->via_redirect = via_redirect;
	ev->state = ST_FRAME_START;
}

/* All terms evaluated without a match: redirect or the default (neutral). */
static void
terms_exhausted(struct spf_eval *ev)
{
	struct frame *f = top(ev);
	if (f->rec.redirect < 0) {
		char why[sizeof(ev->out.reason)];
		snprintf(why, sizeof(why), "no mechanism matched in the record of %s", f->domain);
		frame_result(ev, SPF_RESULT_NEUTRAL, why);
		return;
	}
	const struct spf_term *t = &f->rec.terms[f->rec.redirect];
	if (t->uses_p && !ev->pval_done) {
		start_pval(ev, ST_TERMS);
		return;
	}
	if (!count_term(ev, f))
		return;
	char target[SPF_DOMAIN_MAX + 1], why[120];
	if (term_target(ev, f, t, target, why, sizeof(why)) != 0) {
		finish(ev, SPF_RESULT_PERMERROR, "redirect: %s", why);
		return;
	}
	if (!queryable_name(target, strlen(target))) {
		finish(ev, SPF_RESULT_PERMERROR, "redirect to an invalid name");
		return;
	}
	/* redirect replaces this frame: its exp= no longer applies */
	ev->depth--;
	spf_record_free(&f->rec);
	push_frame(ev, target, true);
}

/* Evaluates terms of the top frame until one needs DNS or the frame ends. */
static void
eval_terms(struct spf_eval *ev)
{
	struct frame *f = top(ev);
	while (ev->state == ST_TERMS && ev->wait == W_NONE) {
		f = top(ev);
		if (f->ti >= f->rec.nterms) {
			terms_exhausted(ev);
			return;
		}
		const struct spf_term *t = &f->rec.terms[f->ti];
		if (t->kind != SPF_TERM_MECH) {
			f->ti++;
			continue;
		}
		switch (t->mech) {
		case SPF_MECH_ALL:
			term_matched(ev);
			return;
		case SPF_MECH_IP4:
			if (ev->ip.family == 4 && prefix_match(t->addr, ev->ip.addr, t->cidr4)) {
				term_matched(ev);
				return;
			}
			f->ti++;
			continue;
		case SPF_MECH_IP6:
			if (ev->ip.family == 6 && prefix_match(t->addr, ev->ip.addr, t->cidr6)) {
				term_matched(ev);
				return;
			}
			f->ti++;
			continue;
		default: break;
		}
		if (t->uses_p && !ev->pval_done) {
			start_pval(ev, ST_TERMS);
			return;
		}
		if (!count_term(ev, f))
			return;
		char why[120];
		if (term_target(ev, f, t, ev->target, why, sizeof(why)) != 0) {
			finish(ev, SPF_RESULT_PERMERROR, "%s", why);
			return;
		}
		bool ok = queryable_name(ev->target, strlen(ev->target));
		switch (t->mech) {
		case SPF_MECH_INCLUDE:
			if (!ok) {
				finish(ev, SPF_RESULT_PERMERROR, "include of an invalid name");
				return;
			}
			if (ev->depth >= SPF_MAX_DEPTH) {
				finish(ev, SPF_RESULT_PERMERROR, "includes nested deeper than %d",
				       SPF_MAX_DEPTH - 1);
				return;
			}
			push_frame(ev, ev->target, false);
			return;
		case SPF_MECH_A:
			if (ok)
				ask(ev, W_A, ev->target, addr_type(ev));
			break;
		case SPF_MECH_MX:
			if (ok)
				ask(ev, W_MX, ev->target, WS_DNS_MX);
			break;
		case SPF_MECH_PTR: {
			char rev[80];
			reverse_name(ev, rev, sizeof(rev));
			ask(ev, W_PTR, rev, WS_DNS_PTR);
			break;
		}
		case SPF_MECH_EXISTS:
			if (ok)
				ask(ev, W_EXISTS, ev->target, WS_DNS_A);
			break;
		default: break;
		}
		/* a name that cannot be queried (empty or over-long label) matches nothing */
		if (ev->wait == W_NONE) {
			f->ti++;
			f->term_counted = false;
		}
	}
}

static void
next_host(struct spf_eval *ev, enum ev_wait w)
{
	if (ev->name_i >= ev->nnames) {
		term_nomatch(ev);
		return;
	}
	ask(ev, w, ev->names[ev->name_i], addr_type(ev));
}

static bool
name_under(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);
	if (n < d || !ieq(name + n - d, d, domain))
		return false;
	return n == d || name[n - d - 1] == '.';
}

/* Next PTR name worth validating for the ptr mechanism (under the target). */
static void
next_ptr_host(struct spf_eval *ev)
{
	while (ev->name_i < ev->nnames && !name_under(ev->names[ev->name_i], ev->target))
		ev->name_i++;
	next_host(ev, W_PTR_HOST);
}

static void
next_pval_host(struct spf_eval *ev)
{
	if (ev->pname_i >= ev->npnames) {
		ev->pval_done = true;
		ev->state = ev->resume;
		return;
	}
	ask(ev, W_PVAL_HOST, ev->pnames[ev->pname_i], addr_type(ev));
}

/* Copies a host name from an answer (drops a trailing dot); false if unusable. */
static bool
copy_host(char *dst, const char *src)
{
	if (!src)
		return false;
	size_t n = strlen(src);
	if (n > 0 && src[n - 1] == '.')
		n--;
	if (n == 0 || n > SPF_DOMAIN_MAX)
		return false;
	copy_str(dst, SPF_DOMAIN_MAX + 1, src, n);
	return true;
}

static void
start_exp(struct spf_eval *ev)
{
	struct frame *f = top(ev);
	if (f->rec.exp < 0) {
		finish_fail(ev);
		return;
	}
	const struct spf_term *t = &f->rec.terms[f->rec.exp];
	if (t->uses_p && !ev->pval_done) {
		start_pval(ev, ST_EXP_START);
		return;
	}
	char target[SPF_DOMAIN_MAX + 1], why[120];
	if (term_target(ev, f, t, target, why, sizeof(why)) != 0 ||
	    !queryable_name(target, strlen(target))) {
		finish_fail(ev);
		return;
	}
	ask(ev, W_EXP, target, WS_DNS_TXT);
}

static void
expand_exp(struct spf_eval *ev)
{
	struct frame *f = top(ev);
	bool uses_p = false;
	char why[120];
	/* syntax first: %{p} costs DNS queries, only worth them for valid text */
	if (spf_macro_expand(NULL, ev->exp_text, ev->exp_len, SPF_MACRO_EXP, NULL, 0, &uses_p, why,
			     sizeof(why)) == 0) {
		if (uses_p && !ev->pval_done) {
			start_pval(ev, ST_EXP_EXPAND);
			return;
		}
		struct spf_macro_ctx c;
		macro_ctx(ev, f->domain, &c);
		char buf[SPF_MAX_EXPLANATION + 1];
		if (spf_macro_expand(&c, ev->exp_text, ev->exp_len, SPF_MACRO_EXP, buf, sizeof(buf),
				     NULL, why, sizeof(why)) == 0)
			copy_str(ev->out.explanation, sizeof(ev->out.explanation), buf, strlen(buf));
	}
	finish_fail(ev);
}

enum spf_step_status
spf_step(struct spf_eval *ev, struct spf_query *q)
{
	for (;;) {
		if (ev->wait != W_NONE) {
			q->name = ev->qname;
			q->type = ev->qtype;
			return SPF_STEP_NEED_DNS;
		}
		switch (ev->state) {
		case ST_DONE: return SPF_STEP_DONE;
		case ST_FRAME_START: ask(ev, W_RECORD, top(ev)->domain, WS_DNS_TXT); break;
		case ST_TERMS: eval_terms(ev); break;
		case ST_MX_HOSTS: next_host(ev, W_MX_HOST); break;
		case ST_PTR_HOSTS: next_ptr_host(ev); break;
		case ST_PVAL_HOSTS: next_pval_host(ev); break;
		case ST_EXP_START: start_exp(ev); break;
		case ST_EXP_EXPAND: expand_exp(ev); break;
		}
	}
}

/* The record lookup of the top frame was answered (RFC 7208 4.4, 4.5). */
static void
on_record(struct spf_eval *ev, const struct ws_dns_answer *a)
{
	struct frame *f = top(ev);
	char why[sizeof(ev->out.reason)];
	if (is_tempfail(a)) {
		snprintf(why, sizeof(why), "DNS error looking up the record of %s: %s", f->domain,
			 a->why[0] ? a->why : "temporary failure");
		frame_result(ev, SPF_RESULT_TEMPERROR, why);
		return;
	}
	const struct ws_dns_rr *found = NULL;
	unsigned nfound = 0;
	if (a->status == WS_DNS_OK)
		for (size_t k = 0; k < a->count; k++) {
			const struct ws_dns_rr *rr = &a->rrs[k];
			if (rr->type == WS_DNS_TXT && rr->u.txt.data &&
			    spf_record_is_spf((const char *)rr->u.txt.data, rr->u.txt.len)) {
				found = rr;
				nfound++;
			}
		}
	if (nfound == 0) {
		snprintf(why, sizeof(why), "no SPF record at %s", f->domain);
		frame_result(ev, SPF_RESULT_NONE, why);
		return;
	}
	if (nfound > 1) {
		snprintf(why, sizeof(why), "%u SPF records at %s", nfound, f->domain);
		frame_result(ev, SPF_RESULT_PERMERROR, why);
		return;
	}
	char perr[120];
	if (spf_record_parse((const char *)found->u.txt.data, found->u.txt.len, &f->rec, perr,
			     sizeof(perr)) != 0) {
		snprintf(why, sizeof(why), "record of %s: %s", f->domain, perr);
		frame_result(ev, SPF_RESULT_PERMERROR, why);
		return;
	}
	f->ti = 0;
	ev->state = ST_TERMS;
}

static void
dns_error(struct spf_eval *ev, const struct ws_dns_answer *a)
{
	finish(ev, SPF_RESULT_TEMPERROR, "DNS error on %s: %s", ev->qname,
	       a->why[0] ? a->why : "temporary failure");
}

/* a, exists: the address lookup of the current term. */
static void
on_addr(struct spf_eval *ev, const struct ws_dns_answer *a, bool exists)
{
	const struct frame *f = top(ev);
	const struct spf_term *t = &f->rec.terms[f->ti];
	if (is_tempfail(a)) {
		dns_error(ev, a);
		return;
	}
	if (!note_void(ev, a, exists ? WS_DNS_A : addr_type(ev)))
		return;
	if (exists ? count_type(a, WS_DNS_A) > 0 : addr_in_answer(ev, a, t->cidr4, t->cidr6))
		term_matched(ev);
	else
		term_nomatch(ev);
}

/* mx: the MX list; more than SPF_MAX_MX_NAMES is permerror (4.6.4). */
static void
on_mx(struct spf_eval *ev, const struct ws_dns_answer *a)
{
	if (is_tempfail(a)) {
		dns_error(ev, a);
		return;
	}
	if (!note_void(ev, a, WS_DNS_MX))
		return;
	if (count_type(a, WS_DNS_MX) > SPF_MAX_MX_NAMES) {
		finish(ev, SPF_RESULT_PERMERROR, "%s has more than %d MX records", ev->qname,
		       SPF_MAX_MX_NAMES);
		return;
	}
	ev->nnames = ev->name_i = 0;
	for (size_t k = 0; a->status == WS_DNS_OK && k < a->count; k++)
		if (a->rrs[k].type == WS_DNS_MX && ev->nnames < SPF_MAX_MX_NAMES &&
		    copy_host(ev->names[ev->nnames], a->rrs[k].u.mx.host))
			ev->nnames++; /* a null MX (".") names no host */
	ev->state = ST_MX_HOSTS;
}

/* mx: the addresses of one MX host; a DNS error is temperror as for "a". */
static void
on_mx_host(struct spf_eval *ev, const struct ws_dns_answer *a)
{
	const struct frame *f = top(ev);
	const struct spf_term *t = &f->rec.terms[f->ti];
	if (is_tempfail(a)) {
		dns_error(ev, a);
		return;
	}
	if (addr_in_answer(ev, a, t->cidr4, t->cidr6))
		term_matched(ev);
	else
		ev->name_i++;
}

/* PTR names, for the ptr mechanism or for %{p}: the first SPF_MAX_PTR_NAMES
 * (4.6.4); a DNS error leaves none (5.5: no match, "unknown"). */
static unsigned
copy_ptr_names(const struct ws_dns_answer *a, char names[][SPF_DOMAIN_MAX + 1])
{
	unsigned n = 0;
	for (size_t k = 0; a->status == WS_DNS_OK && k < a->count; k++)
		if (a->rrs[k].type == WS_DNS_PTR && n < SPF_MAX_PTR_NAMES &&
		    copy_host(names[n], a->rrs[k].u.name))
			n++;
	return n;
}

/* exp=: exactly one TXT record, else the default explanation (6.2). */
static void
on_exp(struct spf_eval *ev, const struct ws_dns_answer *a)
{
	const struct ws_dns_rr *rr = NULL;
	if (count_type(a, WS_DNS_TXT) == 1)
		for (size_t k = 0; k < a->count; k++)
			if (a->rrs[k].type == WS_DNS_TXT)
				rr = &a->rrs[k];
	if (!rr || !rr->u.txt.data || rr->u.txt.len > SPF_MAX_EXPLANATION ||
	    memchr(rr->u.txt.data, '\0', rr->u.txt.len)) {
		finish_fail(ev);
		return;
	}
	memcpy(ev->exp_text, rr->u.txt.data, rr->u.txt.len);
	ev->exp_len = rr->u.txt.len;
	ev->exp_text[ev->exp_len] = '\0';
	ev->state = ST_EXP_EXPAND;
}

int
spf_answer(struct spf_eval *ev, const struct ws_dns_answer *a)
{
	if (!ev || !a || ev->wait == W_NONE)
		return -1;
	enum ev_wait w = ev->wait;
	ev->wait = W_NONE;
	switch (w) {
	case W_NONE: break;
	case W_RECORD: on_record(ev, a); break;
	case W_A: on_addr(ev, a, false); break;
	case W_EXISTS: on_addr(ev, a, true); break;
	case W_MX: on_mx(ev, a); break;
	case W_MX_HOST: on_mx_host(ev, a); break;
	case W_PTR:
		if (!note_void(ev, a, WS_DNS_PTR))
			break;
		ev->nnames = copy_ptr_names(a, ev->names);
		ev->name_i = 0;
		ev->state = ST_PTR_HOSTS;
		break;
	case W_PTR_HOST:
		/* only a validated name matches; a DNS error skips the name (5.5) */
		if (addr_in_answer(ev, a, 32, 128))
			term_matched(ev);
		else
			ev->name_i++;
		break;
	case W_EXP: on_exp(ev, a); break;
	case W_PVAL_PTR:
		ev->npnames = copy_ptr_names(a, ev->pnames);
		ev->pname_i = 0;
		memset(ev->pvalid, 0, sizeof(ev->pvalid));
		ev->state = ST_PVAL_HOSTS;
		break;
	case W_PVAL_HOST: ev->pvalid[ev->pname_i++] = addr_in_answer(ev, a, 32, 128); break;
	}
	return 0;
}

const struct spf_outcome *
spf_outcome(const struct spf_eval *ev)
{
	return &ev->out;
}

void
spf_eval_free(struct spf_eval *ev)
{
	if (!ev)
		return;
	while (ev->depth > 0)
		spf_record_free(&ev->frames[--ev->depth].rec);
	free(ev);
}

static struct spf_eval *
eval_new(const struct spf_params *p, const char *sender, const char *domain_in)
{
	struct spf_eval *ev = calloc(1, sizeof(*ev));
	if (!ev)
		return NULL;
	ev->ip = p->ip;
	ev->now = p->now;
	const char *dexp = p->default_exp ? p->default_exp : "SPF check failed";
	copy_str(ev->default_exp, sizeof(ev->default_exp), dexp, strlen(dexp));
	if (p->receiver) {
		ev->have_receiver = true;
		copy_str(ev->receiver, sizeof(ev->receiver), p->receiver, strlen(p->receiver));
	}
	const char *helo = p->helo ? p->helo : "";
	copy_str(ev->helo, sizeof(ev->helo), helo, strlen(helo));
	ev->state = ST_DONE;
	if (ev->ip.family != 4 && ev->ip.family != 6) {
		finish(ev, SPF_RESULT_PERMERROR, "no valid client address");
		return ev;
	}
	/* local-part: before the last '@'; empty or absent = "postmaster" (4.3) */
	const char *at = strrchr(sender, '@');
	const char *dom = domain_in ? domain_in : (at ? at + 1 : sender);
	size_t llen = at ? (size_t)(at - sender) : 0;
	if (strlen(sender) + sizeof("postmaster") > SPF_MAX_SENDER) {
		finish(ev, SPF_RESULT_NONE, "sender longer than %d bytes", SPF_MAX_SENDER);
		return ev;
	}
	if (llen == 0)
		copy_str(ev->local, sizeof(ev->local), "postmaster", 10);
	else
		copy_str(ev->local, sizeof(ev->local), sender, llen);
	copy_str(ev->sender_domain, sizeof(ev->sender_domain), dom, strlen(dom));
	snprintf(ev->sender, sizeof(ev->sender), "%s@%s", ev->local, ev->sender_domain);
	copy_str(ev->out.domain, sizeof(ev->out.domain), dom, strlen(dom));
	char d[SPF_DOMAIN_MAX + 1];
	if (check_host_domain(dom, d) == 0) {
		finish(ev, SPF_RESULT_NONE, "'%.100s' is not a valid domain name", dom);
		return ev;
	}
	copy_str(ev->out.domain, sizeof(ev->out.domain), d, strlen(d));
	copy_str(ev->sender_domain, sizeof(ev->sender_domain), d, strlen(d));
	push_frame(ev, d, false);
	return ev;
}

struct spf_eval *
spf_eval_new_mailfrom(const struct spf_params *p)
{
	const char *mf = p->mail_from;
	if (!mf || !mf[0]) {
		/* null reverse-path: the HELO identity stands in (RFC 7208 2.4) */
		return spf_eval_new_helo(p);
	}
	return eval_new(p, mf, NULL);
}

struct spf_eval *
spf_eval_new_helo(const struct spf_params *p)
{
	const char *helo = p->helo ? p->helo : "";
	return eval_new(p, "", helo);
}
