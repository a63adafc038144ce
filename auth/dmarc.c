/*
 * dmarc: record parser, From-domain extraction, resumable evaluator and
 * ARC override. See dmarc.h for the model; the RFC interpretation choices
 * are commented where they are made and listed in docs/dmarc.md.
 */
#include "dmarc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authres.h"

/* ------------------------------------------------------------------ util */

static void __attribute__((format(printf, 3, 4)))
say(char *buf, size_t len, const char *fmt, ...)
{
	if (!buf || len == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static void
copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool
is_wsp(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Span [*b, *e) trimmed of folding white space on both sides. */
static void
trim(const char *s, size_t *b, size_t *e)
{
	while (*b < *e && is_wsp((unsigned char)s[*b]))
		(*b)++;
	while (*e > *b && is_wsp((unsigned char)s[*e - 1]))
		(*e)--;
}

static bool
span_eq(const char *s, size_t b, size_t e, const char *lit)
{
	size_t n = strlen(lit);
	return e - b == n && strncasecmp(s + b, lit, n) == 0;
}

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_P_NONE: return "none";
	case DMARC_P_QUARANTINE: return "quarantine";
	case DMARC_P_REJECT: return "reject";
	}
	return "?";
}

const char *
dmarc_res_name(enum dmarc_res r)
{
	switch (r) {
	case DMARC_RES_NONE: return "none";
	case DMARC_RES_PASS: return "pass";
	case DMARC_RES_FAIL: return "fail";
	case DMARC_RES_TEMPERROR: return "temperror";
	case DMARC_RES_PERMERROR: return "permerror";
	}
	return "?";
}

const char *
dmarc_org_method_name(enum dmarc_org_method m)
{
	return m == DMARC_ORG_PSL ? "psl" : "treewalk";
}

/* ---------------------------------------------------------------- record */

/* RFC 7489 6.4: dmarc-version = "v" *WSP "=" *WSP %x44.4d.41.52.43.31, the
 * first tag; "DMARC1" is case-sensitive (%x notation), the tag name is not
 * (ABNF quoted string). No leading white space: the grammar has none. */
bool
dmarc_record_is_dmarc(const char *txt, size_t len)
{
	size_t i = 0;
	if (len < 1 || (txt[0] != 'v' && txt[0] != 'V'))
		return false;
	i = 1;
	while (i < len && (txt[i] == ' ' || txt[i] == '\t'))
		i++;
	if (i >= len || txt[i] != '=')
		return false;
	i++;
	while (i < len && (txt[i] == ' ' || txt[i] == '\t'))
		i++;
	if (len - i < 6 || memcmp(txt + i, "DMARC1", 6) != 0)
		return false;
	i += 6;
	while (i < len && is_wsp((unsigned char)txt[i]))
		i++;
	return i == len || txt[i] == ';';
}

static int
parse_policy(const char *s, size_t b, size_t e, enum dmarc_policy *out)
{
	if (span_eq(s, b, e, "none"))
		*out = DMARC_P_NONE;
	else if (span_eq(s, b, e, "quarantine"))
		*out = DMARC_P_QUARANTINE;
	else if (span_eq(s, b, e, "reject"))
		*out = DMARC_P_REJECT;
	else
		return -1;
	return 0;
}

/* Count the syntactically valid URIs of a rua/ruf list (RFC 7489 6.4:
 * dmarc-uri *(*WSP "," *WSP dmarc-uri), a dmarc-uri being an RFC 3986 URI
 * with an optional "!" size). Only the scheme and a non-empty rest are
 * checked: what the 6.6.3 "at least one syntactically valid reporting URI"
 * rule needs; delivery code checks more before sending anything. */
static unsigned
count_uris(const char *s, size_t b, size_t e)
{
	unsigned n = 0;
	while (b < e) {
		size_t ue = b;
		while (ue < e && s[ue] != ',')
			ue++;
		size_t ub = b, uend = ue;
		trim(s, &ub, &uend);
		bool ok = ub < uend && isalpha((unsigned char)s[ub]);
		size_t i = ub;
		while (ok && i < uend && s[i] != ':') {
			int c = (unsigned char)s[i];
			if (!isalnum(c) && c != '+' && c != '-' && c != '.')
				ok = false;
			i++;
		}
		if (ok && i < uend && i + 1 < uend && s[i + 1] != '!')
			n++;
		b = ue + 1;
	}
	return n;
}

/* fo: "0" / "1" / "d" / "s" separated by ":" (RFC 7489 6.3). */
static bool
valid_fo(const char *s, size_t b, size_t e)
{
	if (b >= e)
		return false;
	bool want_opt = true;
	for (size_t i = b; i < e; i++) {
		char c = s[i];
		if (want_opt) {
			if (c != '0' && c != '1' && c != 'd' && c != 's' && c != 'D' && c != 'S')
				return false;
			want_opt = false;
		} else {
			if (c != ':')
				return false;
			want_opt = true;
		}
	}
	return !want_opt;
}

/* rf: Keyword *(":" Keyword), Keyword = alphanumerics (RFC 7489 6.3). */
static bool
valid_rf(const char *s, size_t b, size_t e)
{
	if (b >= e || s[b] == ':' || s[e - 1] == ':')
		return false;
	for (size_t i = b; i < e; i++) {
		if (s[i] == ':') {
			if (s[i - 1] == ':')
				return false;
		} else if (!isalnum((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

static bool
parse_digits(const char *s, size_t b, size_t e, size_t maxdigits, uint64_t *out)
{
	if (b >= e || e - b > maxdigits)
		return false;
	uint64_t v = 0;
	for (size_t i = b; i < e; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* RFC 6376 3.2 tag-value: VALCHAR (%x21-3A / %x3C-7E) runs separated by
 * white space. */
static bool
valid_value_chars(const char *s, size_t b, size_t e)
{
	for (size_t i = b; i < e; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!is_wsp(c) && (c < 0x21 || c > 0x7e || c == ';'))
			return false;
	}
	return true;
}

static bool
valid_tag_name(const char *s, size_t b, size_t e)
{
	if (b >= e || !isalpha((unsigned char)s[b]))
		return false;
	for (size_t i = b + 1; i < e; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

static struct dmarc_span
mkspan(size_t b, size_t e)
{
	struct dmarc_span sp = {(uint16_t)b, (uint16_t)(e - b)};
	return sp;
}

enum dmarc_rec_status
dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *r, char *why, size_t whylen)
{
	struct {
		size_t b, e;
	} seen[DMARC_MAX_TAGS];
	bool p_bad = false, sp_bad = false;

	memset(r, 0, sizeof(*r));
	r->pct = 100;
	r->ri = 86400;
	if (!dmarc_record_is_dmarc(txt, len)) {
		say(why, whylen, "record does not start with v=DMARC1");
		return DMARC_REC_NOT_DMARC;
	}
	if (len > DMARC_RECORD_MAX_LEN) {
		say(why, whylen, "record is %zu bytes, more than %d", len, DMARC_RECORD_MAX_LEN);
		return DMARC_REC_TOO_LONG;
	}
	memcpy(r->text, txt, len);
	r->text[len] = '\0';
	r->len = len;
	const char *s = r->text;

	size_t pos = 0;
	while (pos <= len) {
		size_t segb = pos, sege = pos;
		while (sege < len && s[sege] != ';')
			sege++;
		pos = sege + 1;
		trim(s, &segb, &sege);
		/* Empty tag-specs (";;", a trailing ";") are tolerated: RFC 6376
		 * allows one trailing ";", real records carry doubled ones. */
		if (segb == sege)
			continue;
		if (r->ntags == DMARC_MAX_TAGS) {
			say(why, whylen, "more than %d tags", DMARC_MAX_TAGS);
			return DMARC_REC_TOO_MANY_TAGS;
		}
		r->ntags++;
		size_t eq = segb;
		while (eq < sege && s[eq] != '=')
			eq++;
		size_t nb = segb, ne = eq, vb = eq + 1, ve = sege;
		/* RFC 7489 6.3: syntax errors after v SHOULD be discarded in favour
		 * of defaults or ignored; a malformed tag-spec is therefore ignored,
		 * not fatal. */
		if (eq == sege) {
			r->ignored++;
			continue;
		}
		trim(s, &nb, &ne);
		trim(s, &vb, &ve);
		if (!valid_tag_name(s, nb, ne) || !valid_value_chars(s, vb, ve)) {
			r->ignored++;
			continue;
		}
		/* RFC 6376 3.2 (the syntax RFC 7489 6.3 adopts): a tag name twice
		 * makes the whole tag-list invalid. */
		for (unsigned k = 0; k + 1 < r->ntags; k++) {
			if (seen[k].e - seen[k].b == ne - nb &&
			    strncasecmp(s + seen[k].b, s + nb, ne - nb) == 0) {
				say(why, whylen, "tag '%.*s' appears twice", (int)(ne - nb), s + nb);
				return DMARC_REC_DUP_TAG;
			}
		}
		seen[r->ntags - 1].b = nb;
		seen[r->ntags - 1].e = ne;

		uint64_t num;
		if (span_eq(s, nb, ne, "v")) {
			continue; /* checked by dmarc_record_is_dmarc */
		} else if (span_eq(s, nb, ne, "p")) {
			if (parse_policy(s, vb, ve, &r->p) == 0)
				r->has_p = true;
			else
				p_bad = true;
		} else if (span_eq(s, nb, ne, "sp")) {
			if (parse_policy(s, vb, ve, &r->sp) == 0)
				r->has_sp = true;
			else
				sp_bad = true;
		} else if (span_eq(s, nb, ne, "np")) {
			/* np (RFC 9989): 6.6.3's fallback names only p and sp, so an
			 * invalid np is an ordinary invalid value: ignored. */
			if (parse_policy(s, vb, ve, &r->np) == 0)
				r->has_np = true;
			else
				r->ignored++;
		} else if (span_eq(s, nb, ne, "adkim") || span_eq(s, nb, ne, "aspf")) {
			enum dmarc_align *a = (s[nb] == 'a' || s[nb] == 'A') &&
					      (s[nb + 1] == 'd' || s[nb + 1] == 'D') ? &r->adkim : &r->aspf;
			if (span_eq(s, vb, ve, "r"))
				*a = DMARC_ALIGN_RELAXED;
			else if (span_eq(s, vb, ve, "s"))
				*a = DMARC_ALIGN_STRICT;
			else
				r->ignored++;
		} else if (span_eq(s, nb, ne, "pct")) {
			/* 1*3DIGIT, 0..100; anything else keeps the default 100. */
			if (parse_digits(s, vb, ve, 3, &num) && num <= 100)
				r->pct = (unsigned)num;
			else
				r->ignored++;
		} else if (span_eq(s, nb, ne, "t")) {
			if (span_eq(s, vb, ve, "y"))
				r->testing = true;
			else if (span_eq(s, vb, ve, "n"))
				r->testing = false;
			else
				r->ignored++;
		} else if (span_eq(s, nb, ne, "psd")) {
			if (span_eq(s, vb, ve, "y"))
				r->psd = DMARC_PSD_Y;
			else if (span_eq(s, vb, ve, "n"))
				r->psd = DMARC_PSD_N;
			else if (span_eq(s, vb, ve, "u"))
				r->psd = DMARC_PSD_U;
			else
				r->ignored++;
		} else if (span_eq(s, nb, ne, "ri")) {
			/* 1*32DIGIT; values beyond 32 bits are not representable
			 * intervals, so they are invalid and the default stays. */
			if (parse_digits(s, vb, ve, 32, &num) && ve - vb <= 10 && num <= UINT32_MAX)
				r->ri = (uint32_t)num;
			else
				r->ignored++;
		} else if (span_eq(s, nb, ne, "fo")) {
			if (valid_fo(s, vb, ve))
				r->fo = mkspan(vb, ve);
			else
				r->ignored++;
		} else if (span_eq(s, nb, ne, "rf")) {
			if (valid_rf(s, vb, ve))
				r->rf = mkspan(vb, ve);
			else
				r->ignored++;
		} else if (span_eq(s, nb, ne, "rua")) {
			r->rua = mkspan(vb, ve);
			r->rua_valid = count_uris(s, vb, ve);
		} else if (span_eq(s, nb, ne, "ruf")) {
			r->ruf = mkspan(vb, ve);
			r->ruf_valid = count_uris(s, vb, ve);
		} else {
			r->ignored++; /* unknown tags MUST be ignored (7489 6.3, 9989) */
		}
	}
	/* RFC 7489 6.6.3 step 6: an invalid p or sp with a usable rua acts as
	 * "v=DMARC1; p=none"; without one the record MUST be ignored. A missing
	 * p is not an invalid p: RFC 9989 treats it as p=none. */
	if (p_bad || sp_bad) {
		if (r->rua_valid == 0) {
			say(why, whylen, "invalid %s value and no valid rua", p_bad ? "p" : "sp");
			return DMARC_REC_BAD_POLICY;
		}
		r->p = DMARC_P_NONE;
		r->has_p = true;
		r->has_sp = false;
		r->has_np = false;
		r->p_from_rua = true;
	}
	if (!r->has_p)
		r->p = DMARC_P_NONE;
	return DMARC_REC_OK;
}

/* ----------------------------------------------------------- From domain */

/* Skip a comment starting at s[i] == '(' (nested, with quoted-pairs).
 * Returns the index after it, or (size_t)-1 when unterminated. */
static size_t
skip_comment(const char *s, size_t n, size_t i)
{
	unsigned depth = 0;
	for (; i < n; i++) {
		if (s[i] == '\\') {
			i++;
		} else if (s[i] == '(') {
			depth++;
		} else if (s[i] == ')') {
			if (--depth == 0)
				return i + 1;
		}
	}
	return (size_t)-1;
}

/* Index after a quoted string starting at s[i] == '"', or (size_t)-1. */
static size_t
skip_quoted(const char *s, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return (size_t)-1;
}

struct addr_acc {
	char spec[DMARC_FROM_FIELD_MAX + 1];
	size_t len;
	bool angle, after_angle, junk_after;
};

/* Lowercase, validate and store the domain of one addr-spec. */
static int
domain_of_spec(const char *spec, size_t n, char out[DMARC_DOMAIN_MAX + 1], char *why, size_t whylen)
{
	size_t i = 0, at = (size_t)-1;
	while (i < n) {
		if (spec[i] == '"') {
			i = skip_quoted(spec, n, i);
			if (i == (size_t)-1) {
				say(why, whylen, "unterminated quoted string in From");
				return -1;
			}
			continue;
		}
		if (spec[i] == '@')
			at = i;
		i++;
	}
	if (at == (size_t)-1) {
		say(why, whylen, "From address has no domain");
		return -1;
	}
	size_t b = at + 1, e = n;
	trim(spec, &b, &e);
	size_t lb = 0, le = at;
	trim(spec, &lb, &le);
	if (lb == le) {
		say(why, whylen, "From address has an empty local part");
		return -1;
	}
	if (b < e && spec[e - 1] == '.')
		e--;
	if (b == e) {
		say(why, whylen, "From address has an empty domain");
		return -1;
	}
	if (spec[b] == '[') {
		say(why, whylen, "From domain is an address literal");
		return -1;
	}
	if (e - b > DMARC_DOMAIN_MAX) {
		say(why, whylen, "From domain longer than %d", DMARC_DOMAIN_MAX);
		return -1;
	}
	size_t lablen = 0;
	for (size_t k = b; k < e; k++) {
		unsigned char c = (unsigned char)spec[k];
		if (c == '.') {
			if (lablen == 0)
				goto bad;
			lablen = 0;
		} else if (isalnum(c) || c == '-' || c == '_' || c >= 0x80) {
			/* bytes >= 0x80: UTF-8 U-labels (RFC 6532); passed on as is */
			if (++lablen > 63)
				goto bad;
		} else {
			goto bad;
		}
		out[k - b] = (char)tolower(c);
	}
	if (lablen == 0)
		goto bad;
	out[e - b] = '\0';
	return 0;
bad:
	say(why, whylen, "From domain '%.*s' is not a valid domain name", (int)(e - b), spec + b);
	return -1;
}

static void
acc_put(struct addr_acc *a, char c)
{
	if (a->after_angle) {
		if (!is_wsp((unsigned char)c))
			a->junk_after = true;
		return;
	}
	if (a->len < DMARC_FROM_FIELD_MAX)
		a->spec[a->len++] = c;
}

/* One finished mailbox: count it and keep the first domain. */
static int
acc_finish(struct addr_acc *a, unsigned *count, char out[DMARC_DOMAIN_MAX + 1],
	   char *why, size_t whylen)
{
	size_t b = 0, e = a->len;
	trim(a->spec, &b, &e);
	int rc = 0;
	if (a->junk_after) {
		say(why, whylen, "text after the <address> in From");
		rc = -1;
	} else if (b < e || a->angle) {
		const char *spec = a->spec + b;
		size_t n = e - b;
		/* obs-route inside <>: "@relay:user@dom" */
		if (a->angle && n > 0 && spec[0] == '@') {
			const char *colon = memchr(spec, ':', n);
			if (colon) {
				n -= (size_t)(colon + 1 - spec);
				spec = colon + 1;
			}
		}
		(*count)++;
		if (*count == 1)
			rc = domain_of_spec(spec, n, out, why, whylen);
	}
	a->len = 0;
	a->angle = a->after_angle = a->junk_after = false;
	return rc;
}

/* RFC 7489 6.6.1 leaves messages with no or several From fields, and From
 * fields with several mailboxes, to the receiver; RFC 5322 3.6 requires
 * exactly one From field. Choice here: DMARC cannot pass for any of them,
 * the result is permerror with the reason (the message is malformed for
 * DMARC's purpose, which is a permanent condition, not a missing policy). */
int
dmarc_from_domain(const char *const *fields, size_t nfields, char out[DMARC_DOMAIN_MAX + 1],
		  char *why, size_t whylen)
{
	out[0] = '\0';
	if (nfields == 0) {
		say(why, whylen, "no From field");
		return -1;
	}
	if (nfields > 1) {
		say(why, whylen, "%zu From fields", nfields);
		return -1;
	}
	const char *s = fields[0];
	size_t n = strlen(s);
	if (n > DMARC_FROM_FIELD_MAX) {
		say(why, whylen, "From field longer than %d bytes", DMARC_FROM_FIELD_MAX);
		return -1;
	}
	struct addr_acc *a = calloc(1, sizeof(*a));
	if (!a) {
		say(why, whylen, "out of memory");
		return -1;
	}
	unsigned count = 0;
	int rc = 0;
	bool in_group = false;
	for (size_t i = 0; i < n && rc == 0;) {
		char c = s[i];
		if (c == '(') {
			size_t j = skip_comment(s, n, i);
			if (j == (size_t)-1)
				goto unterminated;
			acc_put(a, ' ');
			i = j;
		} else if (c == '"') {
			size_t j = skip_quoted(s, n, i);
			if (j == (size_t)-1)
				goto unterminated;
			for (size_t k = i; k < j; k++)
				acc_put(a, s[k]);
			i = j;
		} else if (c == '<') {
			if (a->angle) {
				say(why, whylen, "two <addresses> in one From mailbox");
				rc = -1;
				break;
			}
			a->angle = true;
			a->len = 0; /* the display name is not the address */
			size_t j = i + 1;
			while (j < n && s[j] != '>') {
				if (s[j] == '"') {
					size_t q = skip_quoted(s, n, j);
					if (q == (size_t)-1)
						goto unterminated;
					for (size_t k = j; k < q; k++)
						acc_put(a, s[k]);
					j = q;
				} else if (s[j] == '(') {
					size_t q = skip_comment(s, n, j);
					if (q == (size_t)-1)
						goto unterminated;
					j = q;
				} else {
					acc_put(a, s[j++]);
				}
			}
			if (j >= n) {
				say(why, whylen, "unterminated <address> in From");
				rc = -1;
				break;
			}
			a->after_angle = true;
			i = j + 1;
		} else if (c == ':' && !in_group) {
			/* group: the display name before ':' is not an address */
			in_group = true;
			a->len = 0;
			a->angle = a->after_angle = a->junk_after = false;
			i++;
		} else if (c == ';' && in_group) {
			rc = acc_finish(a, &count, out, why, whylen);
			in_group = false;
			i++;
		} else if (c == ',') {
			rc = acc_finish(a, &count, out, why, whylen);
			i++;
		} else {
			acc_put(a, c);
			i++;
		}
	}
	if (rc == 0)
		rc = acc_finish(a, &count, out, why, whylen);
	free(a);
	if (rc != 0)
		return -1;
	if (count == 0) {
		say(why, whylen, "From field has no address");
		return -1;
	}
	if (count > 1) {
		say(why, whylen, "From field has %u addresses", count);
		out[0] = '\0';
		return -1;
	}
	return 0;
unterminated:
	free(a);
	say(why, whylen, "unterminated comment or quoted string in From");
	return -1;
}

/* ------------------------------------------------------------- evaluator */

enum txt_kind {
	TXT_NONE,    /* NXDOMAIN, NODATA, no DMARC record, or several of them */
	TXT_ONE,     /* exactly one valid DMARC record */
	TXT_PERM,    /* exactly one DMARC record, unusable (too long, dup tag...) */
	TXT_TEMP,    /* TEMPFAIL or BOGUS */
};

struct cache_ent {
	char name[DMARC_DOMAIN_MAX + 1]; /* the domain, without "_dmarc." */
	enum ws_dns_type type;
	enum ws_dns_status status;
	enum txt_kind kind;
	struct dmarc_record *rec; /* TXT_ONE */
	char why[96];             /* TXT_PERM / TXT_TEMP / several records */
};

struct dmarc_eval {
	/* inputs */
	bool from_ok;
	char from_why[160];
	char from[DMARC_DOMAIN_MAX + 1];
	enum dmarc_auth spf_result;
	char spf_domain[DMARC_DOMAIN_MAX + 1];
	size_t ndkim;
	struct {
		char domain[DMARC_DOMAIN_MAX + 1];
		enum dmarc_auth result;
	} dkim[DMARC_MAX_DKIM];
	enum dmarc_org_method method;
	const psl_ctx_t *psl;
	bool cross_check;
	unsigned random_pct;
	/* answers */
	struct cache_ent *cache;
	size_t ncache;
	/* the query the last step asked */
	bool pending;
	enum ws_dns_type pend_type;
	char pend_dom[DMARC_DOMAIN_MAX + 1];
	char pend_qname[DMARC_DOMAIN_MAX + 16];
	bool done;
	struct dmarc_result res;
};

/* Lowercase copy without a trailing dot; false when unusable. */
static bool
norm_domain(const char *in, char out[DMARC_DOMAIN_MAX + 1])
{
	size_t n = strlen(in);
	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n > DMARC_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[n] = '\0';
	return true;
}

struct dmarc_eval *
dmarc_eval_new(const struct dmarc_inputs *in, char *why, size_t whylen)
{
	struct dmarc_eval *ev = NULL;
	if (!in || (in->nfrom > 0 && !in->from) || (in->ndkim > 0 && !in->dkim)) {
		say(why, whylen, "missing inputs");
		goto fail;
	}
	if (in->ndkim > DMARC_MAX_DKIM) {
		say(why, whylen, "%zu DKIM results, more than %d", in->ndkim, DMARC_MAX_DKIM);
		goto fail;
	}
	if (in->random_pct > 99) {
		say(why, whylen, "random_pct %u outside 0..99", in->random_pct);
		goto fail;
	}
	if (in->method == DMARC_ORG_PSL && !in->psl) {
		say(why, whylen, "PSL method without a PSL");
		goto fail;
	}
	ev = calloc(1, sizeof(*ev));
	if (!ev) {
		say(why, whylen, "out of memory");
		goto fail;
	}
	/* entries are initialised as they are filled (dmarc_answer); malloc, not
	 * calloc: zeroing a large block per message cost a page-purge syscall */
	ev->cache = malloc(DMARC_MAX_QUERIES * sizeof(*ev->cache));
	if (!ev->cache) {
		say(why, whylen, "out of memory");
		goto fail;
	}
	ev->from_ok = dmarc_from_domain(in->from, in->nfrom, ev->from, ev->from_why,
					sizeof(ev->from_why)) == 0;
	ev->spf_result = in->spf_result;
	if (!in->spf_domain || !norm_domain(in->spf_domain, ev->spf_domain))
		ev->spf_domain[0] = '\0';
	for (size_t i = 0; i < in->ndkim; i++) {
		const char *d = in->dkim[i].domain;
		if (!d || !norm_domain(d, ev->dkim[ev->ndkim].domain))
			continue; /* no usable d=: cannot align */
		ev->dkim[ev->ndkim++].result = in->dkim[i].result;
	}
	ev->method = in->method;
	ev->psl = in->psl;
	ev->cross_check = in->cross_check;
	ev->random_pct = in->random_pct;
	return ev;
fail:
	dmarc_eval_free(ev);
	return NULL;
}

void
dmarc_eval_free(struct dmarc_eval *ev)
{
	if (!ev)
		return;
	if (ev->cache)
		for (size_t i = 0; i < ev->ncache; i++)
			free(ev->cache[i].rec);
	free(ev->cache);
	free(ev);
}

const struct dmarc_result *
dmarc_eval_result(const struct dmarc_eval *ev)
{
	return ev->done ? &ev->res : NULL;
}

/* Look an answer up; on a miss, record it as the pending query and return
 * NULL (the caller unwinds with NEED). */
static const struct cache_ent *
lookup(struct dmarc_eval *ev, const char *dom, enum ws_dns_type type)
{
	for (size_t i = 0; i < ev->ncache; i++)
		if (ev->cache[i].type == type && strcmp(ev->cache[i].name, dom) == 0)
			return &ev->cache[i];
	ev->pending = true;
	ev->pend_type = type;
	copy_str(ev->pend_dom, sizeof(ev->pend_dom), dom);
	if (type == WS_DNS_TXT)
		snprintf(ev->pend_qname, sizeof(ev->pend_qname), "_dmarc.%s", dom);
	else
		copy_str(ev->pend_qname, sizeof(ev->pend_qname), dom);
	return NULL;
}

static size_t
count_labels(const char *d)
{
	size_t n = 1;
	for (; *d; d++)
		n += *d == '.';
	return n;
}

/* The last k labels of d (a suffix of the same string). */
static const char *
last_labels(const char *d, size_t k)
{
	size_t n = count_labels(d);
	while (n > k) {
		d = strchr(d, '.') + 1;
		n--;
	}
	return d;
}

enum { NEED = 1, OK = 0 };

struct walk {
	/* policy discovery: the first target with exactly one valid record */
	const struct cache_ent *policy;
	const struct cache_ent *perm; /* a broken record met before any valid one */
	bool policy_temp;             /* DNS failure before a record was found */
	/* organisational domain */
	const char *org;              /* points into the walked name */
	bool org_temp;
	char why[128];
};

/* RFC 9989 DNS tree walk from name n: query _dmarc.n, then drop labels
 * (straight to 7 labels when there are 8 or more), at most
 * DMARC_WALK_MAX_QUERIES queries. Stops at psd=n (org = that target) and at
 * psd=y above n (org = the name one label below that target); otherwise the
 * org domain is the record with the fewest labels, or n when there is none.
 * The same walk answers policy discovery: the first valid record met.
 * A DNS failure stops the walk: what is not yet known stays unknown. */
static int
walk(struct dmarc_eval *ev, const char *n, struct walk *w)
{
	memset(w, 0, sizeof(*w));
	const char *t = n, *last_found = NULL;
	for (;;) {
		const struct cache_ent *e = NULL;
		if (strlen(t) + 7 <= DMARC_DOMAIN_MAX) {
			e = lookup(ev, t, WS_DNS_TXT);
			if (!e)
				return NEED;
		}
		/* a name too long to prefix with "_dmarc." cannot hold a record */
		if (e && e->kind == TXT_TEMP) {
			if (!w->policy && !w->perm) {
				w->policy_temp = true;
				say(w->why, sizeof(w->why), "DNS failure for _dmarc.%s: %s", t, e->why);
			}
			w->org_temp = true;
			return OK;
		}
		if (e && e->kind == TXT_PERM && !w->policy && !w->perm)
			w->perm = e;
		if (e && e->kind == TXT_ONE) {
			if (!w->policy && !w->perm)
				w->policy = e;
			if (e->rec->psd == DMARC_PSD_N) {
				w->org = t;
				return OK;
			}
			if (e->rec->psd == DMARC_PSD_Y && t != n) {
				w->org = last_labels(n, count_labels(t) + 1);
				return OK;
			}
			last_found = t;
		}
		size_t x = count_labels(t);
		if (x == 1)
			break;
		t = x >= 8 ? last_labels(n, 7) : strchr(t, '.') + 1;
	}
	w->org = last_found ? last_found : n;
	return OK;
}

static const char *
psl_org(const struct dmarc_eval *ev, const char *d)
{
	const char *r = psl_registrable_domain(ev->psl, d);
	return r ? r : d; /* d is itself a public suffix: its own org domain */
}

static bool
in_subtree(const char *d, const char *org)
{
	size_t ld = strlen(d), lo = strlen(org);
	if (ld == lo)
		return strcmp(d, org) == 0;
	return ld > lo && d[ld - lo - 1] == '.' && strcmp(d + ld - lo, org) == 0;
}

enum align_st { AL_NO, AL_YES, AL_TEMP };

/* Identifier alignment (RFC 7489 3.1, RFC 9989): strict = same name;
 * relaxed = same organisational domain. With the tree walk, org(d) is an
 * ancestor-or-self of d, so d outside the From org domain's subtree cannot
 * align and costs no query. */
static int
align(struct dmarc_eval *ev, const char *d, enum dmarc_align mode, const char *org_from,
      enum align_st *st)
{
	*st = AL_NO;
	if (strcmp(d, ev->from) == 0) {
		*st = AL_YES;
		return OK;
	}
	if (mode == DMARC_ALIGN_STRICT)
		return OK;
	if (ev->method == DMARC_ORG_PSL) {
		*st = strcmp(psl_org(ev, d), org_from) == 0 ? AL_YES : AL_NO;
		return OK;
	}
	if (!org_from) {
		*st = AL_TEMP;
		return OK;
	}
	if (!in_subtree(d, org_from))
		return OK;
	struct walk w;
	if (walk(ev, d, &w) == NEED)
		return NEED;
	if (w.org_temp)
		*st = AL_TEMP;
	else
		*st = strcmp(w.org, org_from) == 0 ? AL_YES : AL_NO;
	return OK;
}

/* RFC 9989 np: the Author Domain does not exist when A, AAAA and MX all
 * answer NXDOMAIN. Any other answer means it exists; a DNS failure leaves
 * it unknown, and unknown is treated as existing (sp/p apply). */
static int
nonexistent(struct dmarc_eval *ev, bool *nx, bool *unknown)
{
	static const enum ws_dns_type types[] = {WS_DNS_A, WS_DNS_AAAA, WS_DNS_MX};
	*nx = false;
	*unknown = false;
	for (size_t i = 0; i < 3; i++) {
		const struct cache_ent *e = lookup(ev, ev->from, types[i]);
		if (!e)
			return NEED;
		if (e->status == WS_DNS_TEMPFAIL || e->status == WS_DNS_BOGUS) {
			*unknown = true;
			return OK;
		}
		if (e->status != WS_DNS_NXDOMAIN)
			return OK;
	}
	*nx = true;
	return OK;
}

static enum dmarc_policy
weaker(enum dmarc_policy p)
{
	return p == DMARC_P_REJECT ? DMARC_P_QUARANTINE : DMARC_P_NONE;
}

/* The whole decision over the answers cached so far. NEED leaves the
 * missing query pending; OK leaves ev->res complete. */
static int
run(struct dmarc_eval *ev)
{
	struct dmarc_result *r = &ev->res;
	unsigned queries = r->queries;
	memset(r, 0, sizeof(*r));
	r->queries = queries;
	r->pct = 100;
	r->org_method = ev->method;
	if (!ev->from_ok) {
		r->result = DMARC_RES_PERMERROR;
		say(r->reason, sizeof(r->reason), "%s", ev->from_why);
		return OK;
	}
	const char *F = ev->from;
	copy_str(r->from_domain, sizeof(r->from_domain), F);

	const struct cache_ent *pol = NULL, *perm = NULL;
	bool temp = false;
	char twhy[128] = "";
	const char *org = NULL; /* NULL: unknown (DNS failure) */
	struct walk wf;
	bool have_walk = false;

	if (ev->method == DMARC_ORG_TREEWALK || ev->cross_check) {
		if (walk(ev, F, &wf) == NEED)
			return NEED;
		have_walk = true;
		if (!wf.org_temp)
			copy_str(r->walk_org_domain, sizeof(r->walk_org_domain), wf.org);
	}
	if (ev->psl)
		copy_str(r->psl_org_domain, sizeof(r->psl_org_domain), psl_org(ev, F));

	if (ev->method == DMARC_ORG_TREEWALK) {
		pol = wf.policy;
		perm = wf.perm;
		temp = wf.policy_temp;
		copy_str(twhy, sizeof(twhy), wf.why);
		org = wf.org_temp ? NULL : wf.org;
	} else {
		/* RFC 7489 6.6.3: the Author Domain, then the PSL org domain. */
		org = psl_org(ev, F);
		const char *targets[2] = {F, org};
		size_t nt = strcmp(F, org) == 0 ? 1 : 2;
		for (size_t i = 0; i < nt && !pol && !perm; i++) {
			const struct cache_ent *e = lookup(ev, targets[i], WS_DNS_TXT);
			if (!e)
				return NEED;
			if (e->kind == TXT_TEMP) {
				temp = true;
				say(twhy, sizeof(twhy), "DNS failure for _dmarc.%s: %s", targets[i], e->why);
				break;
			}
			if (e->kind == TXT_ONE)
				pol = e;
			else if (e->kind == TXT_PERM)
				perm = e;
		}
	}
	if (org)
		copy_str(r->org_domain, sizeof(r->org_domain), org);
	if (have_walk && ev->psl && !wf.org_temp)
		r->org_disagree = strcmp(r->walk_org_domain, r->psl_org_domain) != 0;

	if (temp) {
		r->result = DMARC_RES_TEMPERROR;
		say(r->reason, sizeof(r->reason), "%s", twhy);
		return OK;
	}
	if (perm) {
		r->result = DMARC_RES_PERMERROR;
		copy_str(r->record_domain, sizeof(r->record_domain), perm->name);
		say(r->reason, sizeof(r->reason), "_dmarc.%s: %s", perm->name, perm->why);
		return OK;
	}
	if (!pol) {
		r->result = DMARC_RES_NONE;
		say(r->reason, sizeof(r->reason), "no DMARC record for %s", F);
		return OK;
	}
	const struct dmarc_record *rec = pol->rec;
	copy_str(r->record_domain, sizeof(r->record_domain), pol->name);
	r->aspf = rec->aspf;
	r->adkim = rec->adkim;
	r->testing = rec->testing;
	r->pct = rec->pct;

	/* alignment: a temporary failure only matters if nothing aligned */
	bool any_temp = false;
	enum align_st st;
	if (ev->spf_result == DMARC_AUTH_PASS && ev->spf_domain[0]) {
		if (align(ev, ev->spf_domain, rec->aspf, org, &st) == NEED)
			return NEED;
		r->spf_aligned = st == AL_YES;
		any_temp |= st == AL_TEMP;
	}
	for (size_t i = 0; i < ev->ndkim && !r->dkim_aligned; i++) {
		if (ev->dkim[i].result != DMARC_AUTH_PASS)
			continue;
		if (align(ev, ev->dkim[i].domain, rec->adkim, org, &st) == NEED)
			return NEED;
		if (st == AL_YES) {
			r->dkim_aligned = true;
			copy_str(r->dkim_domain, sizeof(r->dkim_domain), ev->dkim[i].domain);
		}
		any_temp |= st == AL_TEMP;
	}

	/* policy selection: p at the Author Domain; below it np for a
	 * non-existent domain, else sp, else p (RFC 9989; 7489 6.6.3 step 6) */
	r->policy = rec->p;
	r->policy_src = DMARC_SRC_P;
	bool pass = r->spf_aligned || r->dkim_aligned;
	if (strcmp(pol->name, F) != 0) {
		bool nx = false, unknown = false;
		if (rec->has_np && !pass) {
			if (nonexistent(ev, &nx, &unknown) == NEED)
				return NEED;
		}
		r->from_nonexistent = nx;
		if (nx) {
			r->policy = rec->np;
			r->policy_src = DMARC_SRC_NP;
		} else if (rec->has_sp) {
			r->policy = rec->sp;
			r->policy_src = DMARC_SRC_SP;
		}
	}

	if (pass) {
		r->result = DMARC_RES_PASS;
		say(r->reason, sizeof(r->reason), "%s aligned with %s",
		    r->dkim_aligned ? "DKIM" : "SPF", F);
		return OK;
	}
	if (any_temp) {
		r->result = DMARC_RES_TEMPERROR;
		say(r->reason, sizeof(r->reason),
		    "no identifier aligned; organisational domain unknown after a DNS failure");
		return OK;
	}
	r->result = DMARC_RES_FAIL;
	/* RFC 7489 6.6.4: pct% of failing mail gets the policy, the rest the
	 * next weaker one; RFC 9989 t=y asks for the weaker one always. One
	 * step down at most. */
	r->sampled_out = ev->random_pct >= rec->pct;
	r->disposition = r->testing || r->sampled_out ? weaker(r->policy) : r->policy;
	say(r->reason, sizeof(r->reason), "no aligned SPF or DKIM pass; policy %s from %s=%s%s%s",
	    dmarc_policy_name(r->policy),
	    r->policy_src == DMARC_SRC_NP ? "np" : r->policy_src == DMARC_SRC_SP ? "sp" : "p",
	    dmarc_policy_name(r->policy), r->testing ? ", t=y" : "",
	    r->sampled_out ? ", sampled out by pct" : "");
	return OK;
}

enum dmarc_step
dmarc_step(struct dmarc_eval *ev, struct dmarc_query *q)
{
	if (ev->done)
		return DMARC_STEP_DONE;
	if (ev->pending)
		return DMARC_STEP_ERROR; /* the previous query was not answered */
	if (run(ev) == NEED) {
		/* invariant: the walk and query bounds make this unreachable */
		if (ev->ncache >= DMARC_MAX_QUERIES) {
			ev->pending = false;
			ev->res.result = DMARC_RES_PERMERROR;
			say(ev->res.reason, sizeof(ev->res.reason), "query budget exhausted");
			ev->done = true;
			return DMARC_STEP_DONE;
		}
		q->name = ev->pend_qname;
		q->type = ev->pend_type;
		return DMARC_STEP_NEED_DNS;
	}
	ev->done = true;
	return DMARC_STEP_DONE;
}

/* Classify a TXT answer the RFC 7489 6.6.3 way: keep the strings that
 * start with v=DMARC1; none -> no record; several -> no record (both RFCs
 * discard the set); one -> parse it. */
static void
classify_txt(struct cache_ent *e, const struct ws_dns_answer *ans)
{
	if (ans->status == WS_DNS_TEMPFAIL || ans->status == WS_DNS_BOGUS) {
		e->kind = TXT_TEMP;
		say(e->why, sizeof(e->why), "%s", ans->why[0] ? ans->why :
		    ans->status == WS_DNS_BOGUS ? "DNSSEC bogus" : "temporary failure");
		return;
	}
	e->kind = TXT_NONE;
	if (ans->status != WS_DNS_OK)
		return;
	const struct ws_dns_rr *one = NULL;
	unsigned n = 0;
	for (size_t i = 0; i < ans->count; i++) {
		const struct ws_dns_rr *rr = &ans->rrs[i];
		if (rr->type != WS_DNS_TXT || !rr->u.txt.data)
			continue;
		if (dmarc_record_is_dmarc((const char *)rr->u.txt.data, rr->u.txt.len)) {
			n++;
			one = rr;
		}
	}
	if (n > 1) {
		say(e->why, sizeof(e->why), "%u DMARC records", n);
		return;
	}
	if (n == 0)
		return;
	e->rec = malloc(sizeof(*e->rec));
	if (!e->rec) {
		e->kind = TXT_TEMP; /* local resource failure is temporary */
		say(e->why, sizeof(e->why), "out of memory");
		return;
	}
	enum dmarc_rec_status st = dmarc_record_parse((const char *)one->u.txt.data, one->u.txt.len,
						      e->rec, e->why, sizeof(e->why));
	if (st == DMARC_REC_OK) {
		e->kind = TXT_ONE;
		return;
	}
	free(e->rec);
	e->rec = NULL;
	/* 7489 6.6.3: a record with an unusable p and no rua is ignored, as if
	 * absent; other defects make the published record unusable: permerror. */
	e->kind = st == DMARC_REC_BAD_POLICY ? TXT_NONE : TXT_PERM;
}

int
dmarc_answer(struct dmarc_eval *ev, const struct ws_dns_answer *ans)
{
	if (!ev->pending || !ans || ev->ncache >= DMARC_MAX_QUERIES)
		return -1;
	struct cache_ent *e = &ev->cache[ev->ncache];
	memset(e, 0, sizeof(*e));
	copy_str(e->name, sizeof(e->name), ev->pend_dom);
	e->type = ev->pend_type;
	e->status = ans->status;
	if (e->type == WS_DNS_TXT)
		classify_txt(e, ans);
	ev->ncache++;
	ev->pending = false;
	ev->res.queries++;
	return 0;
}

/* ------------------------------------------------------------------- ARC */

/* One decoded value of a result into buf at *used: lowercased when lower,
 * only what follows the last '@' when after_at (a mailbox's domain); NULL
 * when it does not fit in buf, "" (nothing kept) when longer than limit
 * bytes (limit 0: no limit) */
static const char *
arc_keep(char *buf, size_t cap, size_t *used, const struct authres_span *s, bool lower,
	 bool after_at, size_t limit)
{
	if (*used >= cap)
		return NULL;
	char *d = buf + *used;
	size_t n = authres_span_copy(s, d, cap - *used);
	if (n == (size_t)-1)
		return NULL;
	if (after_at) {
		char *at = strrchr(d, '@');
		if (at) {
			n = strlen(at + 1);
			memmove(d, at + 1, n + 1);
		}
	}
	if (limit && n > limit)
		return "";
	for (size_t i = 0; lower && i < n; i++)
		d[i] = (char)tolower((unsigned char)d[i]);
	*used += n + 1;
	return d;
}

/* The domain property a method's ARC result is judged by, or NULL */
static const struct authres_span *
arc_domain_prop(const struct authres_method *m, const char *method)
{
	const char *ptype, *property;
	if (strcmp(method, "dkim") == 0)
		ptype = "header", property = "d";
	else if (strcmp(method, "dmarc") == 0)
		ptype = "header", property = "from";
	else if (strcmp(method, "spf") == 0)
		ptype = "smtp", property = "mailfrom";
	else
		return NULL;
	for (size_t i = 0; i < m->nprops; i++)
		if (authres_span_is(&m->props[i].ptype, ptype) &&
		    authres_span_is(&m->props[i].property, property))
			return &m->props[i].value;
	return NULL;
}

size_t
dmarc_arc_results(const char *payload, size_t len, struct dmarc_arc_method *out, size_t max,
		  char *buf, size_t cap)
{
	/* large (every clause's spans) and only needed here: not on a worker's
	 * stack twice, but each call has its own */
	struct authres_parsed *ar = malloc(sizeof(*ar));
	const char *why;
	size_t off, n = 0, used = 0;
	if (!payload || !ar || authres_parse(payload, len, ar, &why, &off) != 0)
		goto done;
	if (max > DMARC_ARC_MAX_RESULTS)
		max = DMARC_ARC_MAX_RESULTS;
	for (size_t i = 0; i < ar->nmethods && n < max; i++) {
		const struct authres_method *m = &ar->methods[i];
		size_t mark = used;
		struct dmarc_arc_method r = {0};
		r.method = arc_keep(buf, cap, &used, &m->method, true, false, 0);
		r.result = r.method ? arc_keep(buf, cap, &used, &m->result, true, false, 0) : NULL;
		if (!r.method || !r.result || !r.method[0] || !r.result[0]) {
			used = mark;
			continue;
		}
		const struct authres_span *dp = arc_domain_prop(m, r.method);
		if (dp) {
			r.domain = arc_keep(buf, cap, &used, dp, false, strcmp(r.method, "spf") == 0,
					    DMARC_DOMAIN_MAX);
			if (!r.domain) { /* buf is full: the result is left out */
				used = mark;
				continue;
			}
			if (!r.domain[0])
				r.domain = NULL;
		}
		out[n++] = r;
	}
done:
	free(ar);
	return n;
}

static bool
aar_says_pass(const struct dmarc_arc_method *m, const struct dmarc_result *res)
{
	if (!m->method || !m->result || strcasecmp(m->result, "pass") != 0)
		return false;
	if (strcasecmp(m->method, "dmarc") == 0)
		/* the hop's DMARC pass must be about the same author domain */
		return !m->domain || strcasecmp(m->domain, res->from_domain) == 0;
	if (strcasecmp(m->method, "dkim") != 0 && strcasecmp(m->method, "spf") != 0)
		return false;
	if (!m->domain || !res->from_domain[0])
		return false;
	char d[DMARC_DOMAIN_MAX + 1];
	if (!norm_domain(m->domain, d))
		return false;
	if (strcmp(d, res->from_domain) == 0)
		return true;
	enum dmarc_align mode = strcasecmp(m->method, "dkim") == 0 ? res->adkim : res->aspf;
	/* relaxed: inside the organisational domain this evaluation found;
	 * the hop's identifier is not walked again (no DNS here). */
	return mode == DMARC_ALIGN_RELAXED && res->org_domain[0] && in_subtree(d, res->org_domain);
}

int
dmarc_arc_override(const struct dmarc_result *res, const struct dmarc_arc_input *arc,
		   const char *const *trusted, size_t ntrusted, struct dmarc_arc_override *out)
{
	memset(out, 0, sizeof(*out));
	if (!res || !arc || (ntrusted > 0 && !trusted) || (arc->ninst > 0 && !arc->inst)) {
		say(out->reason, sizeof(out->reason), "missing arguments");
		return -1;
	}
	if (ntrusted > DMARC_MAX_TRUSTED_SEALERS) {
		say(out->reason, sizeof(out->reason), "more than %d trusted sealers",
		    DMARC_MAX_TRUSTED_SEALERS);
		return -1;
	}
	if (arc->ninst > DMARC_ARC_MAX_INSTANCES) {
		say(out->reason, sizeof(out->reason), "more than %d ARC instances",
		    DMARC_ARC_MAX_INSTANCES);
		return -1;
	}
	if (res->result != DMARC_RES_FAIL) {
		say(out->reason, sizeof(out->reason), "dmarc=%s: nothing to override",
		    dmarc_res_name(res->result));
		return 0;
	}
	if (arc->chain != DMARC_ARC_PASS) {
		say(out->reason, sizeof(out->reason), "arc=%s: chain not trusted",
		    arc->chain == DMARC_ARC_FAIL ? "fail" : "none");
		return 0;
	}
	/* Most recent hop first: the newest trusted sealer's view is the one
	 * closest to us. */
	const struct dmarc_arc_instance *best = NULL;
	const struct dmarc_arc_method *why = NULL;
	bool any_trusted = false;
	for (size_t k = 0; k < arc->ninst; k++) {
		const struct dmarc_arc_instance *in = &arc->inst[k];
		if (!in->sealer || (in->nresults > 0 && !in->results))
			continue;
		bool t = false;
		for (size_t j = 0; j < ntrusted && !t; j++)
			t = trusted[j] && strcasecmp(trusted[j], in->sealer) == 0;
		if (!t)
			continue;
		any_trusted = true;
		for (size_t m = 0; m < in->nresults; m++) {
			if (aar_says_pass(&in->results[m], res) &&
			    (!best || in->instance > best->instance)) {
				best = in;
				why = &in->results[m];
				break;
			}
		}
	}
	if (!best) {
		say(out->reason, sizeof(out->reason), "%s",
		    any_trusted ? "no trusted sealer saw an aligned pass"
				: "no trusted sealer in the chain");
		return 0;
	}
	out->applied = true;
	copy_str(out->by, sizeof(out->by), "arc");
	copy_str(out->sealer, sizeof(out->sealer), best->sealer);
	out->instance = best->instance;
	say(out->reason, sizeof(out->reason), "trusted sealer %s (i=%u) saw %s=pass",
	    best->sealer, best->instance, why->method);
	return 0;
}
