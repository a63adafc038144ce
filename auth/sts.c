/*
 * sts: MTA-STS record, policy, MX matching and session decision (RFC 8461).
 * The choices where RFC 8461 leaves room, or where implementations differ,
 * are written next to the code that makes them and pinned in
 * tests/unit/test_sts.c.
 */
#include "sts.h"

#include "ascii.h"

#include <stdio.h>
#include <string.h>

#define STS_X_NAME(e, s) [e] = s,
static const char *const result_type_names[STS_RT_COUNT] = {STS_RESULT_TYPES(STS_X_NAME)};
#undef STS_X_NAME

const char *
sts_result_type_name(enum sts_result_type t)
{
	return (unsigned)t < STS_RT_COUNT ? result_type_names[t] : "?";
}

int
sts_result_type_from_name(const char *s, size_t len)
{
	for (int i = 1; i < STS_RT_COUNT; i++) {
		size_t n = strlen(result_type_names[i]);
		if (n == len && memcmp(result_type_names[i], s, n) == 0)
			return i;
	}
	return -1;
}

const char *
sts_mode_name(enum sts_mode m)
{
	switch (m) {
	case STS_MODE_ENFORCE:
		return "enforce";
	case STS_MODE_TESTING:
		return "testing";
	case STS_MODE_NONE:
		return "none";
	}
	return "?";
}

const char *
sts_result_name(enum sts_result r)
{
	switch (r) {
	case STS_PASS:
		return "pass";
	case STS_FAIL:
		return "fail";
	case STS_NONE:
		return "none";
	case STS_NOT_ASSESSABLE:
		return "not-assessable";
	}
	return "?";
}

const char *
sts_lookup_name(enum sts_lookup l)
{
	switch (l) {
	case STS_LOOKUP_RECORD:
		return "record";
	case STS_LOOKUP_NONE:
		return "none";
	case STS_LOOKUP_MULTIPLE:
		return "multiple";
	case STS_LOOKUP_SYNTAX:
		return "syntax";
	case STS_LOOKUP_TEMPFAIL:
		return "tempfail";
	}
	return "?";
}

static void
set_why(char *why, size_t why_len, const char *msg, size_t at)
{
	if (why && why_len)
		snprintf(why, why_len, "%s at offset %zu", msg, at);
}

static bool
eq_nocase(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
			return false;
	return true;
}

/* sts-ext-name / sts-policy-ext-name: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") */
static bool
ext_name_valid(const char *s, size_t n)
{
	if (n == 0 || n > STS_EXT_NAME_MAX || !ascii_is_alnum((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!ascii_is_alnum(c) && c != '_' && c != '-' && c != '.')
			return false;
	}
	return true;
}

/* ---- TXT record ---- */

static const char sts_version[] = "v=STSv1";

bool
sts_txt_is_sts(const char *txt, size_t len)
{
	size_t n = sizeof(sts_version) - 1;
	if (len < n || memcmp(txt, sts_version, n) != 0)
		return false;
	/* "v=STSv10" is another version; "v=STSv1 ;" counts (erratum 6285). */
	return len == n || txt[n] == ';' || ascii_is_wsp((unsigned char)txt[n]);
}

/* sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E): no SP, ';', '=' or CTL */
static bool
ext_value_char(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != ';' && c != '=';
}

enum sts_txt_status
sts_txt_parse(const char *txt, size_t len, struct sts_record *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	if (len > STS_TXT_MAX_LEN) {
		set_why(why, why_len, "record longer than STS_TXT_MAX_LEN", STS_TXT_MAX_LEN);
		return STS_TXT_TOO_LONG;
	}
	if (!sts_txt_is_sts(txt, len)) {
		set_why(why, why_len, "does not start with v=STSv1", 0);
		return STS_TXT_NOT_STS;
	}
	memcpy(out->text, txt, len);
	out->text[len] = '\0';
	out->len = len;
	const char *t = out->text;
	size_t i = sizeof(sts_version) - 1;
	bool have_id = false;
	unsigned nfields = 0;
	while (i < len) {
		/* sts-field-delim = *WSP ";" *WSP */
		while (i < len && ascii_is_wsp((unsigned char)t[i]))
			i++;
		if (i == len || t[i] != ';') {
			set_why(why, why_len, "expected ';'", i);
			return STS_TXT_SYNTAX;
		}
		i++;
		while (i < len && ascii_is_wsp((unsigned char)t[i]))
			i++;
		if (i == len)
			break; /* the optional final delimiter */
		size_t name_off = i;
		while (i < len && t[i] != '=' && t[i] != ';' && !ascii_is_wsp((unsigned char)t[i]))
			i++;
		size_t name_len = i - name_off;
		if (i == len || t[i] != '=') {
			set_why(why, why_len, "field without '='", name_off);
			return STS_TXT_SYNTAX;
		}
		i++;
		size_t val_off = i;
		while (i < len && ext_value_char((unsigned char)t[i]))
			i++;
		size_t val_len = i - val_off;
		if (i < len && t[i] != ';' && !ascii_is_wsp((unsigned char)t[i])) {
			set_why(why, why_len, "invalid character in value", i);
			return STS_TXT_SYNTAX;
		}
		if (val_len == 0) {
			set_why(why, why_len, "empty value", val_off);
			return STS_TXT_SYNTAX;
		}
		nfields++;
		if (name_len == 2 && memcmp(t + name_off, "id", 2) == 0) {
			/* sts-id = %s"id=" 1*32(ALPHA / DIGIT). A second id is
			 * ignored, as RFC 8461 3.2 says for policy fields
			 * (project choice; mox does the same). */
			if (val_len > STS_ID_MAX) {
				set_why(why, why_len, "id longer than 32", val_off);
				return STS_TXT_SYNTAX;
			}
			for (size_t k = 0; k < val_len; k++)
				if (!ascii_is_alnum((unsigned char)t[val_off + k])) {
					set_why(why, why_len, "id is not ALPHA / DIGIT", val_off + k);
					return STS_TXT_SYNTAX;
				}
			if (!have_id) {
				memcpy(out->id, t + val_off, val_len);
				out->id[val_len] = '\0';
				have_id = true;
			}
			continue;
		}
		if (!ext_name_valid(t + name_off, name_len)) {
			set_why(why, why_len, "invalid extension name", name_off);
			return STS_TXT_SYNTAX;
		}
		if (out->n_ext == STS_TXT_MAX_EXT) {
			set_why(why, why_len, "more than STS_TXT_MAX_EXT extensions", name_off);
			return STS_TXT_SYNTAX;
		}
		out->ext_name[out->n_ext] = (struct sts_span){(uint16_t)name_off, (uint16_t)name_len};
		out->ext_value[out->n_ext] = (struct sts_span){(uint16_t)val_off, (uint16_t)val_len};
		out->n_ext++;
	}
	if (!have_id) {
		set_why(why, why_len, nfields ? "no id field" : "no field after v=STSv1", len);
		return STS_TXT_SYNTAX;
	}
	return STS_TXT_OK;
}

enum sts_lookup
sts_txt_select(const struct ws_dns_answer *a, struct sts_record *out, char *why, size_t why_len)
{
	switch (a->status) {
	case WS_DNS_OK:
		break;
	case WS_DNS_NXDOMAIN:
	case WS_DNS_NODATA:
		set_why(why, why_len, "no TXT record", 0);
		return STS_LOOKUP_NONE;
	case WS_DNS_TEMPFAIL:
	case WS_DNS_BOGUS:
		if (why && why_len)
			snprintf(why, why_len, "DNS: %s", a->why[0] ? a->why : "temporary failure");
		return STS_LOOKUP_TEMPFAIL;
	}
	const struct ws_dns_rr *one = NULL;
	unsigned count = 0;
	for (size_t i = 0; i < a->count; i++) {
		const struct ws_dns_rr *rr = &a->rrs[i];
		if (rr->type != WS_DNS_TXT)
			continue;
		if (sts_txt_is_sts((const char *)rr->u.txt.data, rr->u.txt.len)) {
			count++;
			one = rr;
		}
	}
	if (count == 0) {
		set_why(why, why_len, "no TXT record starts with v=STSv1", 0);
		return STS_LOOKUP_NONE;
	}
	if (count > 1) {
		/* RFC 8461 3.1: "If the number of resulting records is not one" */
		if (why && why_len)
			snprintf(why, why_len, "%u v=STSv1 records", count);
		return STS_LOOKUP_MULTIPLE;
	}
	if (sts_txt_parse((const char *)one->u.txt.data, one->u.txt.len, out, why, why_len) !=
	    STS_TXT_OK)
		return STS_LOOKUP_SYNTAX;
	return STS_LOOKUP_RECORD;
}

/* ---- domains and patterns ---- */

/* RFC 5321 Domain in A-label form: sub-domain *("." sub-domain), each
 * Let-dig [Ldh-str], at most 63 bytes; STS_DOMAIN_MAX in all. */
static bool
domain_valid(const char *s, size_t n)
{
	if (n == 0 || n > STS_DOMAIN_MAX)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (ascii_is_alnum(c)) {
			label++;
		} else if (c == '-') {
			if (label == 0)
				return false;
			label++;
		} else {
			return false; /* '*' elsewhere, '_', U-labels (non-ASCII bytes), ... */
		}
		if (label > 63)
			return false;
	}
	return label > 0 && s[n - 1] != '-';
}

/* ["*."] Domain [.]: the pattern normalised into *out. */
static bool
pattern_norm(const char *p, size_t n, struct sts_mx_pattern *out, unsigned *warn)
{
	if (n > 0 && p[n - 1] == '.') {
		/* STS-POL-7: a trailing dot is not in the ABNF; we accept it
		 * (a zone-file habit) and count it. */
		n--;
		*warn |= STS_WARN_MX_TRAILING_DOT;
	}
	out->wildcard = n >= 2 && p[0] == '*' && p[1] == '.';
	if (out->wildcard) {
		p += 2;
		n -= 2;
	}
	if (!domain_valid(p, n))
		return false;
	for (size_t i = 0; i < n; i++)
		out->name[i] = (char)ascii_lower((unsigned char)p[i]);
	out->name[n] = '\0';
	if (out->wildcard && !memchr(p, '.', n))
		*warn |= STS_WARN_WEAK_WILDCARD;
	return true;
}

static bool
host_matches(const struct sts_mx_pattern *pat, const char *host, size_t hlen)
{
	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	if (hlen == 0)
		return false;
	for (size_t i = 0; i < hlen; i++)
		if ((unsigned char)host[i] >= 0x80)
			return false;
	size_t plen = strlen(pat->name);
	if (!pat->wildcard)
		return hlen == plen && eq_nocase(host, pat->name, plen);
	/* "*." matches exactly one leftmost label (RFC 8461 4.1): the host is
	 * label "." name with a non-empty label holding no dot. */
	const char *dot = memchr(host, '.', hlen);
	if (!dot || dot == host)
		return false;
	size_t rest = hlen - (size_t)(dot + 1 - host);
	return rest == plen && eq_nocase(dot + 1, pat->name, plen);
}

bool
sts_pattern_match(const char *pattern, size_t plen, const char *host, size_t hlen)
{
	struct sts_mx_pattern pat;
	unsigned warn = 0;
	if (!pattern_norm(pattern, plen, &pat, &warn))
		return false;
	return host_matches(&pat, host, hlen);
}

bool
sts_mx_match(const struct sts_policy *p, const char *host, size_t hlen)
{
	for (unsigned i = 0; i < p->n_mx; i++)
		if (host_matches(&p->mx[i], host, hlen))
			return true;
	return false;
}

bool
sts_dnsid_match(const char *dnsid, size_t dlen, const char *host, size_t hlen)
{
	/* The same rule as an mx pattern, except that a trailing dot in a
	 * certificate name is not a zone-file habit: refused. */
	if (dlen == 0 || dnsid[dlen - 1] == '.')
		return false;
	return sts_pattern_match(dnsid, dlen, host, hlen);
}

/* ---- policy file ---- */

static bool
value_is(const char *v, size_t n, const char *s)
{
	return strlen(s) == n && memcmp(v, s, n) == 0;
}

/* sts-policy-ext-value = sts-policy-vchar [*(%x20 / sts-policy-vchar) sts-policy-vchar]
 * with sts-policy-vchar = VCHAR / UTF-8 non-ASCII (not checked further). */
static bool
ext_value_valid(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == ' ' || c >= 0x80 || (c >= 0x21 && c <= 0x7e))
			continue;
		return false;
	}
	return true;
}

static bool
only_line_ends(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			continue;
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
			continue;
		return false;
	}
	return true;
}

enum sts_pol_status
sts_policy_parse(const char *body, size_t len, struct sts_policy *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	if (len > STS_POLICY_MAX_LEN) {
		set_why(why, why_len, "policy longer than STS_POLICY_MAX_LEN", STS_POLICY_MAX_LEN);
		return STS_POL_TOO_LONG;
	}
	if (len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0) {
		/* STS-POL-7: a BOM is not in the grammar; rejected. */
		set_why(why, why_len, "UTF-8 BOM", 0);
		return STS_POL_SYNTAX;
	}
	bool have_version = false, have_mode = false, have_max_age = false;
	size_t pos = 0;
	while (pos < len) {
		const char *lf = memchr(body + pos, '\n', len - pos);
		size_t end = lf ? (size_t)(lf - body) : len;
		size_t next = lf ? end + 1 : len;
		/* sts-policy-term = LF / CRLF (erratum 6253); a bare CR is not one. */
		if (lf && end > pos && body[end - 1] == '\r')
			end--;
		const char *line = body + pos;
		size_t n = end - pos;
		if (memchr(line, '\r', n)) {
			set_why(why, why_len, "bare CR", pos + (size_t)((const char *)memchr(line, '\r', n) - line));
			return STS_POL_SYNTAX;
		}
		if (n == 0) {
			/* STS-POL-7: trailing empty lines are accepted and
			 * counted; an empty line before another field is not. */
			if (only_line_ends(body + pos, len - pos)) {
				out->warnings |= STS_WARN_TRAILING_EMPTY_LINES;
				break;
			}
			set_why(why, why_len, "empty line", pos);
			return STS_POL_SYNTAX;
		}
		const char *colon = memchr(line, ':', n);
		if (!colon) {
			set_why(why, why_len, "line without ':'", pos);
			return STS_POL_SYNTAX;
		}
		size_t name_len = (size_t)(colon - line);
		/* Field names are case-sensitive; a leading space makes the name
		 * invalid (STS-POL-7: mox rejects, chasquid trims; we reject). */
		if (!ext_name_valid(line, name_len)) {
			set_why(why, why_len, "invalid field name", pos);
			return STS_POL_SYNTAX;
		}
		size_t v = name_len + 1;
		while (v < n && ascii_is_wsp((unsigned char)line[v]))
			v++;
		size_t ve = n;
		while (ve > v && ascii_is_wsp((unsigned char)line[ve - 1]))
			ve--;
		const char *val = line + v;
		size_t vlen = ve - v;
		if (vlen == 0) {
			set_why(why, why_len, "empty value", pos + v);
			return STS_POL_SYNTAX;
		}
		if (!ext_value_valid(val, vlen)) {
			set_why(why, why_len, "invalid character in value", pos + v);
			return STS_POL_SYNTAX;
		}
		/* RFC 8461 3.2: for every field but mx, "all but the first
		 * SHALL be ignored" - even when a later one is malformed. */
		if (value_is(line, name_len, "version")) {
			if (!have_version) {
				have_version = true;
				if (!value_is(val, vlen, "STSv1")) {
					set_why(why, why_len, "version is not STSv1", pos + v);
					return STS_POL_INVALID;
				}
			}
		} else if (value_is(line, name_len, "mode")) {
			if (!have_mode) {
				have_mode = true;
				if (value_is(val, vlen, "enforce"))
					out->mode = STS_MODE_ENFORCE;
				else if (value_is(val, vlen, "testing"))
					out->mode = STS_MODE_TESTING;
				else if (value_is(val, vlen, "none"))
					out->mode = STS_MODE_NONE;
				else {
					set_why(why, why_len, "mode is not enforce|testing|none", pos + v);
					return STS_POL_INVALID;
				}
			}
		} else if (value_is(line, name_len, "max_age")) {
			if (!have_max_age) {
				have_max_age = true;
				/* 1*10DIGIT, and at most 31557600 (prose; erratum 7282) */
				uint64_t age = 0;
				bool ok = vlen <= 10;
				for (size_t k = 0; ok && k < vlen; k++) {
					if (!ascii_is_digit((unsigned char)val[k]))
						ok = false;
					else
						age = age * 10 + (uint64_t)(val[k] - '0');
				}
				if (!ok || age > STS_MAX_AGE_MAX) {
					set_why(why, why_len, "max_age is not 0..31557600", pos + v);
					return STS_POL_INVALID;
				}
				out->max_age = (uint32_t)age;
			}
		} else if (value_is(line, name_len, "mx")) {
			if (out->n_mx == STS_POLICY_MAX_MX) {
				set_why(why, why_len, "more than STS_POLICY_MAX_MX mx lines", pos);
				return STS_POL_INVALID;
			}
			if (!pattern_norm(val, vlen, &out->mx[out->n_mx], &out->warnings)) {
				set_why(why, why_len, "mx is not [*.]Domain in A-labels", pos + v);
				return STS_POL_INVALID;
			}
			out->n_mx++;
		} else {
			/* unknown fields SHALL be ignored (3.2); we keep a few */
			if (out->n_ext < STS_POLICY_MAX_EXT) {
				out->ext_name[out->n_ext] = (struct sts_span){(uint16_t)pos, (uint16_t)name_len};
				out->ext_value[out->n_ext] =
					(struct sts_span){(uint16_t)(pos + v), (uint16_t)vlen};
				out->n_ext++;
			} else {
				out->n_ext_dropped++;
			}
		}
		pos = next;
	}
	if (!have_version || !have_mode || !have_max_age) {
		set_why(why, why_len,
			!have_version ? "no version field"
				      : (!have_mode ? "no mode field" : "no max_age field"),
			len);
		return STS_POL_INVALID;
	}
	/* mx is required unless mode is none (mox, postfix-mta-sts-resolver;
	 * chasquid differs). */
	if (out->mode != STS_MODE_NONE && out->n_mx == 0) {
		set_why(why, why_len, "no mx field", len);
		return STS_POL_INVALID;
	}
	return STS_POL_OK;
}

/* ---- decision ---- */

struct sts_verdict
sts_decide(const struct sts_policy *p, const struct sts_session *s)
{
	struct sts_verdict v = {STS_NONE, STS_RT_NONE, NULL, false};
	if (!p || p->mode == STS_MODE_NONE)
		return v;
	v.result = STS_FAIL;
	if (!s->mx_host || !sts_mx_match(p, s->mx_host, s->mx_host_len)) {
		/* RFC 8460 has no type for it; mox's reason code (STS-MX-4) */
		v.reason = STS_RT_VALIDATION_FAILURE;
		v.reason_code = "mtasts-policy-mx-mismatch";
	} else if (!s->starttls_offered) {
		v.reason = STS_RT_STARTTLS_NOT_SUPPORTED;
	} else if (!s->tls_established) {
		/* offered, but no TLS came of it (refused, handshake failed, or
		 * the client went on in cleartext) */
		v.reason = STS_RT_VALIDATION_FAILURE;
		v.reason_code = "starttls-not-established";
	} else {
		switch (s->cert) {
		case STS_CERT_VALID:
			v.result = STS_PASS;
			break;
		case STS_CERT_NOT_ASSESSABLE:
			v.result = STS_NOT_ASSESSABLE;
			break;
		case STS_CERT_HOST_MISMATCH:
			v.reason = STS_RT_CERT_HOST_MISMATCH;
			break;
		case STS_CERT_EXPIRED:
			v.reason = STS_RT_CERT_EXPIRED;
			break;
		case STS_CERT_NOT_TRUSTED:
			v.reason = STS_RT_CERT_NOT_TRUSTED;
			break;
		case STS_CERT_OTHER_FAILURE:
		default:
			v.reason = STS_RT_VALIDATION_FAILURE;
			break;
		}
	}
	v.enforce = v.result == STS_FAIL && p->mode == STS_MODE_ENFORCE;
	return v;
}

const char *
sts_tls_version_name(uint16_t v)
{
	static const char *const names[] = {"SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
	if (v < 0x0300 || v > 0x0304)
		return NULL;
	return names[v - 0x0300];
}
