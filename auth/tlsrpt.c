/*
 * tlsrpt: RFC 8460 record, report JSON (write and read), file names, gzip.
 */
#include "tlsrpt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "ascii.h"
#include "b64.h"
#include "jsonr.h"

static void
set_why(char *why, size_t why_len, const char *msg, size_t at)
{
	if (why && why_len)
		snprintf(why, why_len, "%s at offset %zu", msg, at);
}

/* ---- TXT record ---- */

static const char rpt_version[] = "v=TLSRPTv1";

bool
tlsrpt_txt_is_tlsrpt(const char *txt, size_t len)
{
	size_t n = sizeof(rpt_version) - 1;
	if (len < n || memcmp(txt, rpt_version, n) != 0)
		return false;
	return len == n || txt[n] == ';' || ascii_is_wsp((unsigned char)txt[n]);
}

/* URI characters (RFC 3986 unreserved / reserved / pct-encoded) minus the
 * ',' that separates URIs and the ';' that ends the field (RFC 8460 3:
 * those must be percent-encoded inside a URI). */
static bool
uri_char(unsigned char c)
{
	if (ascii_is_alpha(c) || ascii_is_digit(c))
		return true;
	return c != ',' && c != ';' && strchr("-._~:/?#[]@!$&'()*+=%", c) != NULL && c != '\0';
}

/* One URI at t[*i]: scheme ":" rest, percent escapes well-formed. */
static int
parse_uri(const char *t, size_t len, size_t *i, struct tlsrpt_uri *u)
{
	size_t s = *i, p = *i;
	if (p >= len || !ascii_is_alpha((unsigned char)t[p]))
		return -1;
	while (p < len && (ascii_is_alpha((unsigned char)t[p]) || ascii_is_digit((unsigned char)t[p]) ||
			   t[p] == '+' || t[p] == '-' || t[p] == '.'))
		p++;
	if (p >= len || t[p] != ':')
		return -1;
	size_t scheme_len = p - s;
	p++;
	size_t rest = p;
	while (p < len && uri_char((unsigned char)t[p])) {
		if (t[p] == '%') {
			if (p + 2 >= len + 0 || !ascii_is_hex((unsigned char)t[p + 1]) ||
			    !ascii_is_hex((unsigned char)t[p + 2]))
				return -1;
			p += 2;
		}
		p++;
	}
	if (p == rest)
		return -1;
	u->off = (uint16_t)s;
	u->len = (uint16_t)(p - s);
	if (scheme_len == 6 && strncasecmp(t + s, "mailto", 6) == 0)
		u->scheme = TLSRPT_MAILTO;
	else if (scheme_len == 5 && strncasecmp(t + s, "https", 5) == 0)
		u->scheme = TLSRPT_HTTPS;
	else
		u->scheme = TLSRPT_OTHER_SCHEME;
	*i = p;
	return 0;
}

static bool
ext_name_valid(const char *s, size_t n)
{
	if (n == 0 || n > STS_EXT_NAME_MAX || !(ascii_is_alpha((unsigned char)s[0]) || ascii_is_digit((unsigned char)s[0])))
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!ascii_is_alpha(c) && !ascii_is_digit(c) && c != '_' && c != '-' && c != '.')
			return false;
	}
	return true;
}

enum tlsrpt_txt_status
tlsrpt_txt_parse(const char *txt, size_t len, struct tlsrpt_record *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	if (len > TLSRPT_TXT_MAX_LEN) {
		set_why(why, why_len, "record longer than TLSRPT_TXT_MAX_LEN", TLSRPT_TXT_MAX_LEN);
		return TLSRPT_TXT_TOO_LONG;
	}
	if (!tlsrpt_txt_is_tlsrpt(txt, len)) {
		set_why(why, why_len, "does not start with v=TLSRPTv1", 0);
		return TLSRPT_TXT_NOT_TLSRPT;
	}
	memcpy(out->text, txt, len);
	out->text[len] = '\0';
	out->len = len;
	const char *t = out->text;
	size_t i = sizeof(rpt_version) - 1;
	bool have_rua = false;
	while (i < len) {
		while (i < len && ascii_is_wsp((unsigned char)t[i]))
			i++;
		if (i == len)
			break; /* trailing WSP without ';' (mox accepts it) */
		if (t[i] != ';') {
			set_why(why, why_len, "expected ';'", i);
			return TLSRPT_TXT_SYNTAX;
		}
		i++;
		while (i < len && ascii_is_wsp((unsigned char)t[i]))
			i++;
		if (i == len)
			break;
		size_t name = i;
		while (i < len && t[i] != '=' && t[i] != ';' && !ascii_is_wsp((unsigned char)t[i]))
			i++;
		size_t name_len = i - name;
		if (i == len || t[i] != '=') {
			set_why(why, why_len, "field without '='", name);
			return TLSRPT_TXT_SYNTAX;
		}
		i++;
		if (name_len == 3 && memcmp(t + name, "rua", 3) == 0) {
			/* tlsrpt-rua = %s"rua=" uri *(*WSP "," *WSP uri); repeated
			 * rua= fields add up (as mox reads them). */
			for (;;) {
				if (out->n_rua == TLSRPT_MAX_RUA) {
					set_why(why, why_len, "more than TLSRPT_MAX_RUA URIs", i);
					return TLSRPT_TXT_SYNTAX;
				}
				struct tlsrpt_uri *u = &out->rua[out->n_rua];
				if (parse_uri(t, len, &i, u) < 0) {
					set_why(why, why_len, "invalid URI", i);
					return TLSRPT_TXT_SYNTAX;
				}
				out->n_rua++;
				if (u->scheme != TLSRPT_OTHER_SCHEME)
					out->n_usable++;
				size_t j = i;
				while (j < len && ascii_is_wsp((unsigned char)t[j]))
					j++;
				if (j < len && t[j] == ',') {
					j++;
					while (j < len && ascii_is_wsp((unsigned char)t[j]))
						j++;
					i = j;
					continue;
				}
				break;
			}
			have_rua = true;
			continue;
		}
		if (!ext_name_valid(t + name, name_len)) {
			set_why(why, why_len, "invalid extension name", name);
			return TLSRPT_TXT_SYNTAX;
		}
		size_t val = i;
		while (i < len && t[i] >= 0x21 && t[i] <= 0x7e && t[i] != ';' && t[i] != '=')
			i++;
		if (i == val || (i < len && t[i] != ';' && !ascii_is_wsp((unsigned char)t[i]))) {
			set_why(why, why_len, "invalid extension value", val);
			return TLSRPT_TXT_SYNTAX;
		}
	}
	if (!have_rua) {
		set_why(why, why_len, "no rua field", len);
		return TLSRPT_TXT_SYNTAX;
	}
	return TLSRPT_TXT_OK;
}

enum sts_lookup
tlsrpt_txt_select(const struct ws_dns_answer *a, struct tlsrpt_record *out, char *why,
		  size_t why_len)
{
	if (a->status == WS_DNS_NXDOMAIN || a->status == WS_DNS_NODATA) {
		set_why(why, why_len, "no TXT record", 0);
		return STS_LOOKUP_NONE;
	}
	if (a->status != WS_DNS_OK) {
		if (why && why_len)
			snprintf(why, why_len, "DNS: %s", a->why[0] ? a->why : "temporary failure");
		return STS_LOOKUP_TEMPFAIL;
	}
	const struct ws_dns_rr *one = NULL;
	unsigned count = 0;
	for (size_t i = 0; i < a->count; i++)
		if (a->rrs[i].type == WS_DNS_TXT &&
		    tlsrpt_txt_is_tlsrpt((const char *)a->rrs[i].u.txt.data, a->rrs[i].u.txt.len)) {
			count++;
			one = &a->rrs[i];
		}
	if (count == 0) {
		set_why(why, why_len, "no TXT record starts with v=TLSRPTv1", 0);
		return STS_LOOKUP_NONE;
	}
	if (count > 1) {
		/* two identical records count as two (RFC 8460 3) */
		set_why(why, why_len, "several v=TLSRPTv1 records", 0);
		return STS_LOOKUP_MULTIPLE;
	}
	if (tlsrpt_txt_parse((const char *)one->u.txt.data, one->u.txt.len, out, why, why_len) !=
	    TLSRPT_TXT_OK)
		return STS_LOOKUP_SYNTAX;
	return STS_LOOKUP_RECORD;
}

/* ---- date-time ---- */

/* days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's civil
 * algorithm, written out from its description) */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int
num(const char *s, unsigned n, unsigned *out)
{
	unsigned v = 0;
	for (unsigned i = 0; i < n; i++) {
		if (!ascii_is_digit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return 0;
}

int
tlsrpt_datetime_parse(const char *s, int64_t *out, bool *no_tz)
{
	unsigned y, mo, d, h, mi, se;
	*no_tz = false;
	size_t n = strlen(s);
	if (n < 19 || num(s, 4, &y) || s[4] != '-' || num(s + 5, 2, &mo) || s[7] != '-' ||
	    num(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    num(s + 11, 2, &h) || s[13] != ':' || num(s + 14, 2, &mi) || s[16] != ':' ||
	    num(s + 17, 2, &se))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return -1;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		if (!ascii_is_digit((unsigned char)*p))
			return -1;
		while (ascii_is_digit((unsigned char)*p))
			p++;
	}
	int64_t off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		unsigned oh, om;
		if (num(p + 1, 2, &oh) || p[3] != ':' || num(p + 4, 2, &om) || oh > 23 || om > 59)
			return -1;
		off = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
		p += 6;
	} else if (*p == '\0') {
		*no_tz = true; /* seen from Microsoft: read as UTC */
	}
	if (*p != '\0')
		return -1;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + (se > 59 ? 59 : se) - off;
	return 0;
}

void
tlsrpt_datetime_format(int64_t t, char out[21])
{
	int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
	int64_t secs = t - days * 86400;
	/* civil_from_days, the inverse of the above */
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	char tmp[64];
	/* years outside 0..9999 have no RFC 3339 form: clamped */
	int yy = y < 0 ? 0 : (y > 9999 ? 9999 : (int)y);
	snprintf(tmp, sizeof(tmp), "%04d-%02u-%02uT%02u:%02u:%02uZ", yy, m % 100, d % 100,
		 (unsigned)(secs / 3600) % 100, (unsigned)(secs / 60 % 60), (unsigned)(secs % 60));
	memcpy(out, tmp, 20);
	out[20] = '\0';
}

/* ---- policy types ---- */

static const char *const ptype_names[] = {
	[TLSRPT_PT_STS] = "sts",
	[TLSRPT_PT_TLSA] = "tlsa",
	[TLSRPT_PT_NO_POLICY] = "no-policy-found",
	[TLSRPT_PT_OTHER] = "other",
};

const char *
tlsrpt_policy_type_name(enum tlsrpt_policy_type t)
{
	return (unsigned)t <= TLSRPT_PT_OTHER ? ptype_names[t] : "other";
}

/* ---- JSON writer ---- */

struct sb {
	char *p;
	size_t len, cap;
	bool oom;
};

static void
sb_put(struct sb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_lit(struct sb *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void
sb_str(struct sb *b, const char *s)
{
	sb_put(b, "\"", 1);
	const char *run = s;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		sb_put(b, run, (size_t)(s - run));
		char esc[8];
		if (c == '"' || c == '\\')
			snprintf(esc, sizeof(esc), "\\%c", c);
		else
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		sb_lit(b, esc);
		run = s + 1;
	}
	sb_put(b, run, (size_t)(s - run));
	sb_put(b, "\"", 1);
}

static void
sb_key(struct sb *b, const char *key, bool *first)
{
	if (!*first)
		sb_put(b, ",", 1);
	*first = false;
	sb_str(b, key);
	sb_put(b, ":", 1);
}

static void
sb_kv(struct sb *b, const char *key, const char *val, bool *first)
{
	if (!val)
		return;
	sb_key(b, key, first);
	sb_str(b, val);
}

static void
sb_ku(struct sb *b, const char *key, uint64_t v, bool *first)
{
	char n[24];
	snprintf(n, sizeof(n), "%" PRIu64, v);
	sb_key(b, key, first);
	sb_lit(b, n);
}

static void
sb_arr(struct sb *b, const char *key, char *const *v, size_t n, bool *first)
{
	sb_key(b, key, first);
	sb_put(b, "[", 1);
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_put(b, ",", 1);
		sb_str(b, v[i]);
	}
	sb_put(b, "]", 1);
}

int
tlsrpt_report_json(const struct tlsrpt_report *r, char **out, size_t *out_len)
{
	struct sb b = {0};
	bool first = true;
	char start[21], end[21];
	tlsrpt_datetime_format(r->start, start);
	tlsrpt_datetime_format(r->end, end);
	sb_put(&b, "{", 1);
	sb_kv(&b, "organization-name", r->organization_name, &first);
	sb_key(&b, "date-range", &first);
	bool f2 = true;
	sb_put(&b, "{", 1);
	sb_kv(&b, "start-datetime", start, &f2);
	sb_kv(&b, "end-datetime", end, &f2);
	sb_put(&b, "}", 1);
	sb_kv(&b, "contact-info", r->contact_info, &first);
	sb_kv(&b, "report-id", r->report_id, &first);
	sb_key(&b, "policies", &first);
	sb_put(&b, "[", 1);
	for (size_t i = 0; i < r->n_policies; i++) {
		const struct tlsrpt_policy *p = &r->policies[i];
		bool pf = true, qf = true, sf = true;
		sb_lit(&b, i ? ",{" : "{");
		sb_key(&b, "policy", &pf);
		sb_put(&b, "{", 1);
		sb_kv(&b, "policy-type", p->policy_type ? p->policy_type : tlsrpt_policy_type_name(p->type),
		      &qf);
		if (p->n_policy_string)
			sb_arr(&b, "policy-string", p->policy_string, p->n_policy_string, &qf);
		sb_kv(&b, "policy-domain", p->policy_domain, &qf);
		/* an array, always (erratum 6241) */
		if (p->n_mx_host)
			sb_arr(&b, "mx-host", p->mx_host, p->n_mx_host, &qf);
		sb_put(&b, "}", 1);
		sb_key(&b, "summary", &pf);
		sb_put(&b, "{", 1);
		sb_ku(&b, "total-successful-session-count", p->total_success, &sf);
		sb_ku(&b, "total-failure-session-count", p->total_failure, &sf);
		sb_put(&b, "}", 1);
		if (p->n_failures) {
			sb_key(&b, "failure-details", &pf);
			sb_put(&b, "[", 1);
			for (size_t k = 0; k < p->n_failures; k++) {
				const struct tlsrpt_failure *f = &p->failures[k];
				bool ff = true;
				sb_lit(&b, k ? ",{" : "{");
				sb_kv(&b, "result-type",
				      f->result_type ? f->result_type : sts_result_type_name(f->type), &ff);
				sb_kv(&b, "sending-mta-ip", f->sending_mta_ip, &ff);
				sb_kv(&b, "receiving-mx-hostname", f->receiving_mx_hostname, &ff);
				sb_kv(&b, "receiving-mx-helo", f->receiving_mx_helo, &ff);
				sb_kv(&b, "receiving-ip", f->receiving_ip, &ff);
				sb_ku(&b, "failed-session-count", f->failed_session_count, &ff);
				sb_kv(&b, "additional-information", f->additional_information, &ff);
				sb_kv(&b, "failure-reason-code", f->failure_reason_code, &ff);
				sb_put(&b, "}", 1);
			}
			sb_put(&b, "]", 1);
		}
		sb_put(&b, "}", 1);
	}
	sb_lit(&b, "]}\n");
	if (b.oom) {
		free(b.p);
		return -1;
	}
	*out = b.p;
	*out_len = b.len;
	return 0;
}

/* ---- report reader ---- */

static char *
xstrdup(const char *s)
{
	size_t n = strlen(s);
	char *d = malloc(n + 1);
	if (d)
		memcpy(d, s, n + 1);
	return d;
}

/* A string member: absent -> NULL; "" or a non-string -> NULL + anomaly. */
static int
take_str(const struct jsonr_val *obj, const char *key, char **out, unsigned *anom, bool required)
{
	*out = NULL;
	const struct jsonr_val *v = jsonr_get(obj, key);
	if (!v) {
		if (required)
			*anom |= TLSRPT_ANOM_MISSING;
		return 0;
	}
	if (v->type != JSONR_STR) {
		*anom |= TLSRPT_ANOM_TYPE;
		return 0;
	}
	if (v->len == 0) {
		/* mox writes "" for absent address fields */
		*anom |= TLSRPT_ANOM_EMPTY_FIELD;
		if (required)
			*anom |= TLSRPT_ANOM_MISSING;
		return 0;
	}
	*out = xstrdup(v->str);
	return *out ? 0 : -1;
}

static uint64_t
take_count(const struct jsonr_val *obj, const char *key, unsigned *anom)
{
	const struct jsonr_val *v = jsonr_get(obj, key);
	if (!v) {
		*anom |= TLSRPT_ANOM_MISSING;
		return 0;
	}
	if (v->type != JSONR_NUM || !v->is_int || v->i < 0) {
		*anom |= TLSRPT_ANOM_TYPE;
		return 0;
	}
	return (uint64_t)v->i;
}

/* A string or an array of strings into a list (mx-host, policy-string). */
static int
take_list(const struct jsonr_val *obj, const char *key, char ***out, size_t *n, unsigned *anom,
	  unsigned string_anom)
{
	*out = NULL;
	*n = 0;
	const struct jsonr_val *v = jsonr_get(obj, key);
	if (!v)
		return 0;
	if (v->type == JSONR_STR) {
		*anom |= string_anom;
		*out = calloc(1, sizeof(char *));
		if (!*out || !((*out)[0] = xstrdup(v->str)))
			return -1;
		*n = 1;
		return 0;
	}
	if (v->type != JSONR_ARR) {
		*anom |= TLSRPT_ANOM_TYPE;
		return 0;
	}
	*out = calloc(v->n ? v->n : 1, sizeof(char *));
	if (!*out)
		return -1;
	for (const struct jsonr_val *e = v->child; e; e = e->next) {
		if (e->type != JSONR_STR) {
			*anom |= TLSRPT_ANOM_TYPE;
			continue;
		}
		if (!((*out)[*n] = xstrdup(e->str)))
			return -1;
		(*n)++;
	}
	return 0;
}

static void
free_list(char **l, size_t n)
{
	for (size_t i = 0; l && i < n; i++)
		free(l[i]);
	free(l);
}

static void
free_failure(struct tlsrpt_failure *f)
{
	free(f->result_type);
	free(f->sending_mta_ip);
	free(f->receiving_mx_hostname);
	free(f->receiving_mx_helo);
	free(f->receiving_ip);
	free(f->additional_information);
	free(f->failure_reason_code);
}

static void
free_policy(struct tlsrpt_policy *p)
{
	free(p->policy_type);
	free_list(p->policy_string, p->n_policy_string);
	free(p->policy_domain);
	free_list(p->mx_host, p->n_mx_host);
	for (size_t k = 0; k < p->n_failures; k++)
		free_failure(&p->failures[k]);
	free(p->failures);
}

void
tlsrpt_report_free(struct tlsrpt_report *r)
{
	if (!r)
		return;
	free(r->organization_name);
	free(r->contact_info);
	free(r->report_id);
	for (size_t i = 0; i < r->n_policies; i++)
		free_policy(&r->policies[i]);
	free(r->policies);
	free(r);
}

static int
read_policy(const struct jsonr_val *pv, struct tlsrpt_policy *p, unsigned *anom)
{
	p->type = TLSRPT_PT_OTHER; /* a junk element stays "other", never "sts" */
	if (pv->type != JSONR_OBJ) {
		*anom |= TLSRPT_ANOM_TYPE;
		return 0;
	}
	const struct jsonr_val *pol = jsonr_get(pv, "policy");
	if (!pol)
		*anom |= TLSRPT_ANOM_MISSING;
	if (take_str(pol, "policy-type", &p->policy_type, anom, true) < 0)
		return -1;
	p->type = TLSRPT_PT_OTHER;
	for (int t = TLSRPT_PT_STS; t < TLSRPT_PT_OTHER; t++)
		if (p->policy_type && strcmp(p->policy_type, ptype_names[t]) == 0)
			p->type = (enum tlsrpt_policy_type)t;
	if (p->type == TLSRPT_PT_OTHER)
		*anom |= TLSRPT_ANOM_UNKNOWN_POLICY;
	if (take_list(pol, "policy-string", &p->policy_string, &p->n_policy_string, anom, TLSRPT_ANOM_TYPE) < 0 ||
	    take_str(pol, "policy-domain", &p->policy_domain, anom, true) < 0 ||
	    take_list(pol, "mx-host", &p->mx_host, &p->n_mx_host, anom, TLSRPT_ANOM_MX_HOST_STRING) < 0)
		return -1;
	const struct jsonr_val *sum = jsonr_get(pv, "summary");
	if (!sum)
		*anom |= TLSRPT_ANOM_MISSING;
	p->total_success = take_count(sum, "total-successful-session-count", anom);
	p->total_failure = take_count(sum, "total-failure-session-count", anom);
	const struct jsonr_val *fd = jsonr_get(pv, "failure-details");
	uint64_t sum_failed = 0;
	if (fd && fd->type == JSONR_ARR && fd->n) {
		p->failures = calloc(fd->n, sizeof(*p->failures));
		if (!p->failures)
			return -1;
		for (const struct jsonr_val *e = fd->child; e; e = e->next) {
			if (e->type != JSONR_OBJ) {
				*anom |= TLSRPT_ANOM_TYPE;
				continue;
			}
			struct tlsrpt_failure *f = &p->failures[p->n_failures++];
			if (take_str(e, "result-type", &f->result_type, anom, true) < 0 ||
			    take_str(e, "sending-mta-ip", &f->sending_mta_ip, anom, false) < 0 ||
			    take_str(e, "receiving-mx-hostname", &f->receiving_mx_hostname, anom, false) < 0 ||
			    take_str(e, "receiving-mx-helo", &f->receiving_mx_helo, anom, false) < 0 ||
			    take_str(e, "receiving-ip", &f->receiving_ip, anom, false) < 0 ||
			    take_str(e, "additional-information", &f->additional_information, anom, false) < 0 ||
			    take_str(e, "failure-reason-code", &f->failure_reason_code, anom, false) < 0)
				return -1;
			int t = f->result_type ? sts_result_type_from_name(f->result_type, strlen(f->result_type)) : -1;
			if (t < 0)
				*anom |= TLSRPT_ANOM_UNKNOWN_RESULT;
			f->type = t < 0 ? STS_RT_NONE : (enum sts_result_type)t;
			f->failed_session_count = take_count(e, "failed-session-count", anom);
			sum_failed += f->failed_session_count;
		}
	} else if (fd && fd->type != JSONR_ARR) {
		*anom |= TLSRPT_ANOM_TYPE;
	}
	/* mail.ru's total is smaller than its details: flagged, not fixed */
	if (sum_failed != p->total_failure && (fd || p->total_failure))
		*anom |= TLSRPT_ANOM_TOTALS;
	return 0;
}

struct tlsrpt_report *
tlsrpt_report_parse(const char *json, size_t len, char *why, size_t why_len)
{
	struct jsonr_val *root = NULL;
	struct tlsrpt_report *r = NULL;
	if (len > TLSRPT_MAX_REPORT_LEN) {
		set_why(why, why_len, "report longer than TLSRPT_MAX_REPORT_LEN", TLSRPT_MAX_REPORT_LEN);
		return NULL;
	}
	root = jsonr_parse(json, len, why, why_len);
	if (!root)
		return NULL;
	if (root->type != JSONR_OBJ) {
		set_why(why, why_len, "report is not a JSON object", 0);
		goto fail;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		goto oom;
	unsigned *anom = &r->anomalies;
	if (take_str(root, "organization-name", &r->organization_name, anom, true) < 0 ||
	    take_str(root, "contact-info", &r->contact_info, anom, true) < 0 ||
	    take_str(root, "report-id", &r->report_id, anom, true) < 0)
		goto oom;
	const struct jsonr_val *dr = jsonr_get(root, "date-range");
	const char *s = jsonr_get_str(dr, "start-datetime");
	const char *e = jsonr_get_str(dr, "end-datetime");
	bool no_tz1 = false, no_tz2 = false;
	if (!s || !e) {
		*anom |= TLSRPT_ANOM_MISSING;
	} else if (tlsrpt_datetime_parse(s, &r->start, &no_tz1) < 0 ||
		   tlsrpt_datetime_parse(e, &r->end, &no_tz2) < 0) {
		*anom |= TLSRPT_ANOM_DATETIME;
	} else {
		if (no_tz1 || no_tz2)
			*anom |= TLSRPT_ANOM_DATETIME;
		/* one UTC day: 00:00:00Z to 23:59:59Z (or to the next 00:00:00Z) */
		if (r->start % 86400 != 0 || (r->end - r->start != 86399 && r->end - r->start != 86400))
			*anom |= TLSRPT_ANOM_RANGE;
	}
	const struct jsonr_val *pols = jsonr_get(root, "policies");
	if (!pols) {
		*anom |= TLSRPT_ANOM_MISSING;
	} else if (pols->type != JSONR_ARR) {
		*anom |= TLSRPT_ANOM_TYPE;
	} else if (pols->n) {
		r->policies = calloc(pols->n, sizeof(*r->policies));
		if (!r->policies)
			goto oom;
		for (const struct jsonr_val *pv = pols->child; pv; pv = pv->next)
			if (read_policy(pv, &r->policies[r->n_policies++], anom) < 0)
				goto oom;
	}
	jsonr_free(root);
	return r;
oom:
	set_why(why, why_len, "out of memory", 0);
fail:
	jsonr_free(root);
	tlsrpt_report_free(r);
	return NULL;
}

/* ---- aggregation ---- */

struct tlsrpt_agg {
	struct tlsrpt_report r;
	size_t cap_policies;
	size_t *cap_failures; /* per policy */
};

struct tlsrpt_agg *
tlsrpt_agg_new(const char *organization_name, const char *contact_info, const char *report_id,
	       int64_t day_start)
{
	struct tlsrpt_agg *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->r.organization_name = xstrdup(organization_name);
	a->r.contact_info = xstrdup(contact_info);
	a->r.report_id = xstrdup(report_id);
	a->r.start = day_start;
	a->r.end = day_start + 86399; /* "...T23:59:59Z", as the RFC example, mox and Google */
	if (!a->r.organization_name || !a->r.contact_info || !a->r.report_id) {
		tlsrpt_agg_free(a);
		return NULL;
	}
	return a;
}

void
tlsrpt_agg_free(struct tlsrpt_agg *a)
{
	if (!a)
		return;
	free(a->cap_failures);
	free(a->r.organization_name);
	free(a->r.contact_info);
	free(a->r.report_id);
	for (size_t i = 0; i < a->r.n_policies; i++)
		free_policy(&a->r.policies[i]);
	free(a->r.policies);
	free(a);
}

static bool
str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int
copy_list(char ***out, size_t *n, const char *const *src, size_t count)
{
	*out = NULL;
	*n = 0;
	if (!count)
		return 0;
	*out = calloc(count, sizeof(char *));
	if (!*out)
		return -1;
	for (size_t i = 0; i < count; i++) {
		if (!((*out)[i] = xstrdup(src[i])))
			return -1;
		(*n)++;
	}
	return 0;
}

int
tlsrpt_agg_policy(struct tlsrpt_agg *a, enum tlsrpt_policy_type type, const char *domain,
		  const char *const *policy_string, size_t n_policy_string,
		  const char *const *mx_host, size_t n_mx_host)
{
	for (size_t i = 0; i < a->r.n_policies; i++)
		if (a->r.policies[i].type == type && str_eq(a->r.policies[i].policy_domain, domain))
			return (int)i;
	if (a->r.n_policies == a->cap_policies) {
		size_t cap = a->cap_policies ? a->cap_policies * 2 : 4;
		struct tlsrpt_policy *np = realloc(a->r.policies, cap * sizeof(*np));
		if (!np)
			return -1;
		a->r.policies = np;
		size_t *nc = realloc(a->cap_failures, cap * sizeof(*nc));
		if (!nc)
			return -1;
		a->cap_failures = nc;
		a->cap_policies = cap;
	}
	struct tlsrpt_policy *p = &a->r.policies[a->r.n_policies];
	memset(p, 0, sizeof(*p));
	a->cap_failures[a->r.n_policies] = 0;
	a->r.n_policies++;
	p->type = type;
	p->policy_type = xstrdup(tlsrpt_policy_type_name(type));
	p->policy_domain = domain ? xstrdup(domain) : NULL;
	if (!p->policy_type || (domain && !p->policy_domain) ||
	    copy_list(&p->policy_string, &p->n_policy_string, policy_string, n_policy_string) < 0 ||
	    copy_list(&p->mx_host, &p->n_mx_host, mx_host, n_mx_host) < 0)
		return -1; /* the half-made policy is freed with the aggregate */
	return (int)(a->r.n_policies - 1);
}

static bool
same_key(const struct tlsrpt_failure *x, const struct tlsrpt_failure *y)
{
	return x->type == y->type && str_eq(x->sending_mta_ip, y->sending_mta_ip) &&
	       str_eq(x->receiving_mx_hostname, y->receiving_mx_hostname) &&
	       str_eq(x->receiving_mx_helo, y->receiving_mx_helo) &&
	       str_eq(x->receiving_ip, y->receiving_ip) &&
	       str_eq(x->additional_information, y->additional_information) &&
	       str_eq(x->failure_reason_code, y->failure_reason_code);
}

static int
dup_opt(char **dst, const char *src)
{
	*dst = src ? xstrdup(src) : NULL;
	return (src && !*dst) ? -1 : 0;
}

int
tlsrpt_agg_add(struct tlsrpt_agg *a, int idx, const struct tlsrpt_failure *f, uint64_t count)
{
	if (idx < 0 || (size_t)idx >= a->r.n_policies)
		return -1;
	struct tlsrpt_policy *p = &a->r.policies[idx];
	if (!f) {
		p->total_success += count;
		return 0;
	}
	if (f->type == STS_RT_NONE || f->type >= STS_RT_COUNT)
		return -1;
	p->total_failure += count;
	for (size_t k = 0; k < p->n_failures; k++)
		if (same_key(&p->failures[k], f)) {
			p->failures[k].failed_session_count += count;
			return 0;
		}
	if (p->n_failures == a->cap_failures[idx]) {
		size_t cap = p->n_failures ? p->n_failures * 2 : 4;
		struct tlsrpt_failure *nf = realloc(p->failures, cap * sizeof(*nf));
		if (!nf)
			return -1;
		p->failures = nf;
		a->cap_failures[idx] = cap;
	}
	struct tlsrpt_failure *d = &p->failures[p->n_failures];
	memset(d, 0, sizeof(*d));
	p->n_failures++;
	d->type = f->type;
	d->failed_session_count = count;
	if (dup_opt(&d->result_type, sts_result_type_name(f->type)) < 0 ||
	    dup_opt(&d->sending_mta_ip, f->sending_mta_ip) < 0 ||
	    dup_opt(&d->receiving_mx_hostname, f->receiving_mx_hostname) < 0 ||
	    dup_opt(&d->receiving_mx_helo, f->receiving_mx_helo) < 0 ||
	    dup_opt(&d->receiving_ip, f->receiving_ip) < 0 ||
	    dup_opt(&d->additional_information, f->additional_information) < 0 ||
	    dup_opt(&d->failure_reason_code, f->failure_reason_code) < 0)
		return -1;
	return 0;
}

const struct tlsrpt_report *
tlsrpt_agg_report(const struct tlsrpt_agg *a)
{
	return &a->r;
}

/* ---- file names ---- */

static bool
name_part_ok(const char *s)
{
	return s && *s && !strchr(s, '!') && !strchr(s, '/');
}

int
tlsrpt_filename(char out[TLSRPT_FILENAME_MAX], const char *submitter, const char *policy_domain,
		int64_t begin, int64_t end, const char *unique_id, bool gzip)
{
	if (!name_part_ok(submitter) || !name_part_ok(policy_domain) ||
	    (unique_id && !name_part_ok(unique_id)))
		return -1;
	int n = snprintf(out, TLSRPT_FILENAME_MAX, "%s!%s!%" PRId64 "!%" PRId64 "%s%s.json%s",
			 submitter, policy_domain, begin, end, unique_id ? "!" : "",
			 unique_id ? unique_id : "", gzip ? ".gz" : "");
	if (n < 0 || n >= TLSRPT_FILENAME_MAX)
		return -1;
	return n;
}

static int
parse_i64(const char *s, size_t n, int64_t *out)
{
	if (n == 0 || n > 18)
		return -1;
	int64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!ascii_is_digit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int
copy_part(char *dst, size_t cap, const char *s, size_t n)
{
	if (n == 0 || n >= cap)
		return -1;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

int
tlsrpt_filename_parse(const char *name, struct tlsrpt_filename_parts *out)
{
	memset(out, 0, sizeof(*out));
	size_t len = strlen(name);
	if (len >= TLSRPT_FILENAME_MAX)
		return -1;
	if (len > 8 && strcmp(name + len - 8, ".json.gz") == 0) {
		out->gzip = true;
		len -= 8;
	} else if (len > 5 && strcmp(name + len - 5, ".json") == 0) {
		len -= 5;
	} else {
		return -1;
	}
	const char *part[6];
	size_t plen[6], n = 0;
	const char *p = name, *endp = name + len;
	while (n < 6) {
		const char *bang = memchr(p, '!', (size_t)(endp - p));
		part[n] = p;
		plen[n] = (size_t)((bang ? bang : endp) - p);
		n++;
		if (!bang)
			break;
		p = bang + 1;
	}
	if (n < 4 || n > 5 || p + plen[n - 1] != endp)
		return -1;
	if (copy_part(out->submitter, sizeof(out->submitter), part[0], plen[0]) < 0 ||
	    copy_part(out->policy_domain, sizeof(out->policy_domain), part[1], plen[1]) < 0 ||
	    parse_i64(part[2], plen[2], &out->begin) < 0 || parse_i64(part[3], plen[3], &out->end) < 0 ||
	    (n == 5 && copy_part(out->unique_id, sizeof(out->unique_id), part[4], plen[4]) < 0))
		return -1;
	return 0;
}

/* ---- gzip ---- */

int
tlsrpt_gzip(const void *in, size_t len, uint8_t **out, size_t *out_len)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	/* windowBits 15 + 16: a gzip wrapper, not zlib's */
	if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	size_t cap = deflateBound(&zs, (uLong)len) + 32;
	uint8_t *buf = malloc(cap);
	if (!buf) {
		deflateEnd(&zs);
		return -1;
	}
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	zs.next_out = buf;
	zs.avail_out = (uInt)cap;
	int rc = deflate(&zs, Z_FINISH);
	deflateEnd(&zs);
	if (rc != Z_STREAM_END) {
		free(buf);
		return -1;
	}
	*out = buf;
	*out_len = cap - zs.avail_out;
	return 0;
}

int
tlsrpt_gunzip(const void *in, size_t len, size_t max_out, uint8_t **out, size_t *out_len,
	      char *why, size_t why_len)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (max_out > TLSRPT_MAX_REPORT_LEN)
		max_out = TLSRPT_MAX_REPORT_LEN;
	if (inflateInit2(&zs, 15 + 16) != Z_OK) {
		set_why(why, why_len, "inflateInit2 failed", 0);
		return -1;
	}
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap + 1);
	if (!buf)
		goto oom;
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	for (;;) {
		if (n == cap) {
			if (cap > max_out) {
				set_why(why, why_len, "gunzipped report larger than the limit", max_out);
				goto fail;
			}
			size_t ncap = cap * 2 > max_out + 1 ? max_out + 1 : cap * 2;
			uint8_t *nb = realloc(buf, ncap + 1);
			if (!nb)
				goto oom;
			buf = nb;
			cap = ncap;
		}
		zs.next_out = buf + n;
		zs.avail_out = (uInt)(cap - n);
		int rc = inflate(&zs, Z_NO_FLUSH);
		n = cap - zs.avail_out;
		if (rc == Z_STREAM_END)
			break;
		if (rc != Z_OK && !(rc == Z_BUF_ERROR && zs.avail_out == 0)) {
			set_why(why, why_len, zs.msg ? zs.msg : "not gzip data", len - zs.avail_in);
			goto fail;
		}
	}
	if (n > max_out) {
		set_why(why, why_len, "gunzipped report larger than the limit", max_out);
		goto fail;
	}
	inflateEnd(&zs);
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	return 0;
oom:
	set_why(why, why_len, "out of memory", 0);
fail:
	inflateEnd(&zs);
	free(buf);
	return -1;
}

/* ---- report e-mail ---- */

static bool
header_safe(const char *s)
{
	for (; s && *s; s++)
		if (*s == '\r' || *s == '\n')
			return false;
	return s != NULL;
}

int
tlsrpt_mail(const struct tlsrpt_mail *m, const struct tlsrpt_report *r, int64_t now, char **out,
	    size_t *out_len, char *why, size_t why_len)
{
	static const char *const wday[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct sb b = {0};
	char *json = NULL, *b64 = NULL;
	uint8_t *gz = NULL;
	size_t jlen, glen;
	const char *domain = r->n_policies ? r->policies[0].policy_domain : NULL;
	if (!header_safe(m->from) || !header_safe(m->to) || !header_safe(m->submitter) ||
	    !header_safe(m->message_id) || !header_safe(domain) || !header_safe(r->report_id)) {
		set_why(why, why_len, "a header value is missing or holds a line break", 0);
		return -1;
	}
	char fname[TLSRPT_FILENAME_MAX];
	if (tlsrpt_filename(fname, m->submitter, domain, r->start, r->end, NULL, true) < 0) {
		set_why(why, why_len, "no file name for these domains", 0);
		return -1;
	}
	if (tlsrpt_report_json(r, &json, &jlen) < 0 || tlsrpt_gzip(json, jlen, &gz, &glen) < 0 ||
	    !(b64 = malloc(B64_ENCODED_LEN(glen) + 1)))
		goto oom;
	size_t blen = b64_encode(gz, glen, b64);

	char date[64], line[1024], t[21];
	tlsrpt_datetime_format(now, t);
	int64_t days = now >= 0 ? now / 86400 : (now - 86399) / 86400;
	/* "Mon, 01 Jan 2024 00:00:00 +0000" from the RFC 3339 form */
	snprintf(date, sizeof(date), "%s, %.2s %s %.4s %.8s +0000", wday[((days % 7) + 7) % 7], t + 8,
		 mon[(t[5] - '0') * 10 + (t[6] - '0') - 1], t, t + 11);
	char boundary[80];
	uint32_t h = 2166136261u; /* FNV-1a of the Message-ID: stable, no clock, no RNG */
	for (const char *p = m->message_id; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	snprintf(boundary, sizeof(boundary), "=_tlsrpt_%08x_%lld", h, (long long)now);

#define LINE(...)                                           \
	do {                                                \
		snprintf(line, sizeof(line), __VA_ARGS__);  \
		sb_lit(&b, line);                           \
		sb_lit(&b, "\r\n");                         \
	} while (0)
	LINE("From: %.300s", m->from);
	LINE("To: %.300s", m->to);
	LINE("Date: %s", date);
	LINE("Subject: Report Domain: %.253s Submitter: %.253s", domain, m->submitter);
	LINE(" Report-ID: <%.400s>", r->report_id);
	LINE("TLS-Report-Domain: %.253s", domain);
	LINE("TLS-Report-Submitter: %.253s", m->submitter);
	LINE("TLS-Required: No");
	LINE("Message-ID: %.400s", m->message_id);
	LINE("MIME-Version: 1.0");
	LINE("Content-Type: multipart/report; report-type=\"tlsrpt\";");
	LINE(" boundary=\"%s\"", boundary);
	LINE("%s", "");
	LINE("This is a multipart message in MIME format.");
	LINE("%s", "");
	LINE("--%s", boundary);
	LINE("Content-Type: text/plain; charset=\"us-ascii\"");
	LINE("Content-Transfer-Encoding: 7bit");
	LINE("%s", "");
	LINE("This is an aggregate TLS report from %.253s", m->submitter);
	LINE("%s", "");
	LINE("--%s", boundary);
	LINE("Content-Type: application/tlsrpt+gzip");
	LINE("Content-Transfer-Encoding: base64");
	LINE("Content-Disposition: attachment;");
	LINE(" filename=\"%s\"", fname);
	LINE("%s", "");
	for (size_t off = 0; off < blen; off += 76) {
		sb_put(&b, b64 + off, blen - off < 76 ? blen - off : 76);
		sb_lit(&b, "\r\n");
	}
	LINE("%s", "");
	LINE("--%s--", boundary);
#undef LINE
	if (b.oom)
		goto oom;
	free(json);
	free(gz);
	free(b64);
	*out = b.p;
	*out_len = b.len;
	return 0;
oom:
	set_why(why, why_len, "out of memory", 0);
	free(json);
	free(gz);
	free(b64);
	free(b.p);
	return -1;
}
