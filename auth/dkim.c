#include "dkim.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "b64.h"
#include "rfc5322.h"
#include "taglist.h"

static const char *const result_names[] = {
	[DKIM_NONE] = "none",         [DKIM_PASS] = "pass",           [DKIM_FAIL] = "fail",
	[DKIM_NEUTRAL] = "neutral",   [DKIM_POLICY] = "policy",       [DKIM_PERMERROR] = "permerror",
	[DKIM_TEMPERROR] = "temperror",
};

const char *
dkim_result_name(enum dkim_result r)
{
	return (unsigned)r < sizeof(result_names) / sizeof(result_names[0]) ? result_names[r] : "?";
}

static const struct {
	const char *name;
	enum ws_sig_alg key;
	enum ws_hash_alg hash;
} algos[] = {
	[DKIM_RSA_SHA256] = {"rsa-sha256", WS_SIG_RSA, WS_HASH_SHA256},
	[DKIM_RSA_SHA1] = {"rsa-sha1", WS_SIG_RSA, WS_HASH_SHA1},
	[DKIM_ED25519_SHA256] = {"ed25519-sha256", WS_SIG_ED25519, WS_HASH_SHA256},
};

const char *
dkim_algo_name(enum dkim_algo a)
{
	return algos[a].name;
}

int
dkim_algo_parse(const char *s, size_t len, enum dkim_algo *out)
{
	for (size_t i = 0; i < sizeof(algos) / sizeof(algos[0]); i++) {
		if (strlen(algos[i].name) == len && strncasecmp(algos[i].name, s, len) == 0) {
			*out = (enum dkim_algo)i;
			return 0;
		}
	}
	return -1;
}

enum ws_sig_alg
dkim_algo_key(enum dkim_algo a)
{
	return algos[a].key;
}

enum ws_hash_alg
dkim_algo_hash(enum dkim_algo a)
{
	return algos[a].hash;
}

/* ---- small helpers ------------------------------------------------- */

static bool
is_wsp_any(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim FWS on both sides of [p, p+len). */
static struct dkim_span
trim(const char *p, size_t len)
{
	while (len && is_wsp_any(p[0])) {
		p++;
		len--;
	}
	while (len && is_wsp_any(p[len - 1]))
		len--;
	return (struct dkim_span){p, len};
}

/* A domain name as DKIM tags carry it: labels of letters, digits, '-', '_'
 * separated by single dots, <= DKIM_MAX_DOMAIN. Copied lowercase into out. */
static int
copy_domain(const char *p, size_t len, char *out)
{
	if (len == 0 || len > DKIM_MAX_DOMAIN)
		return -1;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		out[i] = (char)tolower(c);
	}
	if (label == 0)
		return -1; /* empty last label or trailing dot */
	out[len] = '\0';
	return 0;
}

/* Unsigned decimal of at most max_digits digits. */
static int
parse_uint(const char *p, size_t len, size_t max_digits, uint64_t *out)
{
	if (len == 0 || len > max_digits)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return 0;
}

/* Split a colon-separated list into trimmed spans. */
static int
split_colon(struct dkim_span v, struct dkim_span *out, size_t max, size_t *n)
{
	*n = 0;
	size_t start = 0;
	for (size_t i = 0; i <= v.len; i++) {
		if (i == v.len || v.p[i] == ':') {
			if (*n == max)
				return -1;
			out[(*n)++] = trim(v.p + start, i - start);
			start = i + 1;
		}
	}
	return 0;
}

static bool
span_is(struct dkim_span s, const char *lit)
{
	return strlen(lit) == s.len && strncasecmp(s.p, lit, s.len) == 0;
}

/* dkim-quoted-printable decoding of the domain part of i=: "=XX" escapes. */
static int
auid_domain(struct dkim_span v, char *out)
{
	char buf[DKIM_MAX_DOMAIN * 2 + 2];
	size_t o = 0;
	for (size_t i = 0; i < v.len; i++) {
		char c = v.p[i];
		if (is_wsp_any(c))
			continue;
		if (c == '=' && i + 2 < v.len && isxdigit((unsigned char)v.p[i + 1]) &&
		    isxdigit((unsigned char)v.p[i + 2])) {
			char hex[3] = {v.p[i + 1], v.p[i + 2], 0};
			c = (char)strtol(hex, NULL, 16);
			i += 2;
		}
		if (o + 1 >= sizeof(buf))
			return -1;
		buf[o++] = c;
	}
	buf[o] = '\0';
	char *at = strrchr(buf, '@');
	if (!at)
		return -1;
	return copy_domain(at + 1, strlen(at + 1), out);
}

/* ---- signature parsing --------------------------------------------- */

int
dkim_sig_parse(enum dkim_sig_kind kind, const char *raw, size_t len, size_t value_off,
	       struct dkim_sig *out, const char **why)
{
	struct taglist tl;
	memset(out, 0, offsetof(struct dkim_sig, h));
	out->kind = kind;
	out->l = CANON_NO_LIMIT;
	out->t = out->x = -1;
	out->cv = DKIM_CV_ABSENT;
	out->nh = out->b_len = out->bh_len = 0;
	out->b_prefix[0] = '\0';
	if (value_off > len)
		value_off = len;
	const char *text = raw + value_off;
	size_t tlen = len - value_off;
	if (taglist_parse(text, tlen, &tl, why) != 0)
		return -1;

	const struct taglist_tag *tv = taglist_get(&tl, "v"), *ta = taglist_get(&tl, "a"),
				 *tb = taglist_get(&tl, "b"), *tbh = taglist_get(&tl, "bh"),
				 *tc = taglist_get(&tl, "c"), *td = taglist_get(&tl, "d"),
				 *th = taglist_get(&tl, "h"), *ti = taglist_get(&tl, "i"),
				 *tl_ = taglist_get(&tl, "l"), *tq = taglist_get(&tl, "q"),
				 *ts = taglist_get(&tl, "s"), *tt = taglist_get(&tl, "t"),
				 *tx = taglist_get(&tl, "x"), *tcv = taglist_get(&tl, "cv");
	bool seal = kind == DKIM_SIG_ARC_SEAL, arc = kind != DKIM_SIG_DKIM;
	/* d= and s= first, so that even a refused signature is reported with
	 * the domain it claims; validated again below */
	if (td && copy_domain(td->value, td->value_len, out->d) != 0)
		out->d[0] = '\0';
	if (ts) {
		struct dkim_span sl = trim(ts->value, ts->value_len);
		if (copy_domain(sl.p, sl.len, out->s) != 0)
			out->s[0] = '\0';
	}

	if (!arc) {
		if (!tv) {
			*why = "missing v= tag";
			return -1;
		}
		if (!taglist_value_is(tv, "1", 0)) {
			*why = "unsupported signature version";
			return -1;
		}
	}
	if (!ta || !tb || !td || !ts || (!seal && (!tbh || !th))) {
		*why = !ta ? "missing a= tag" : !tb ? "missing b= tag" : !td ? "missing d= tag"
			: !ts ? "missing s= tag" : !tbh ? "missing bh= tag" : "missing h= tag";
		return -1;
	}
	if (arc) {
		const struct taglist_tag *tinst = taglist_get(&tl, "i");
		uint64_t inst;
		if (!tinst || parse_uint(tinst->value, tinst->value_len, 2, &inst) != 0 ||
		    inst < 1 || inst > 50) {
			*why = tinst ? "invalid ARC instance" : "missing ARC instance i=";
			return -1;
		}
		out->instance = (unsigned)inst;
		ti = NULL; /* i= is the instance, not an AUID */
	}
	if (seal) {
		if (th) {
			*why = "ARC-Seal must not have h=";
			return -1;
		}
		if (!tcv) {
			*why = "missing cv= tag";
			return -1;
		}
		if (taglist_value_is(tcv, "none", 1))
			out->cv = DKIM_CV_NONE;
		else if (taglist_value_is(tcv, "pass", 1))
			out->cv = DKIM_CV_PASS;
		else if (taglist_value_is(tcv, "fail", 1))
			out->cv = DKIM_CV_FAIL;
		else {
			*why = "invalid cv= value";
			return -1;
		}
	}
	if (dkim_algo_parse(ta->value, ta->value_len, &out->algo) != 0) {
		*why = "unsupported signature algorithm";
		return -1;
	}
	if (copy_domain(td->value, td->value_len, out->d) != 0) {
		*why = "invalid d= domain";
		return -1;
	}
	struct dkim_span sel = trim(ts->value, ts->value_len);
	if (copy_domain(sel.p, sel.len, out->s) != 0) {
		*why = "invalid s= selector";
		return -1;
	}

	/* c= : header[/body], default simple/simple; an AMS without c= is
	 * relaxed/relaxed (ARC uses relaxed throughout; the ARC suite's
	 * ams_fields_c_na expects this, as dkimpy does) */
	out->hcanon = out->bcanon = kind == DKIM_SIG_ARC_AMS && !tc ? CANON_RELAXED : CANON_SIMPLE;
	if (tc) {
		const char *slash = memchr(tc->value, '/', tc->value_len);
		size_t hl = slash ? (size_t)(slash - tc->value) : tc->value_len;
		if (canon_parse(tc->value, hl, &out->hcanon) != 0 ||
		    (slash && canon_parse(slash + 1, tc->value_len - hl - 1, &out->bcanon) != 0)) {
			*why = "unknown canonicalization";
			return -1;
		}
	}
	if (tq) {
		struct dkim_span qs[16];
		size_t nq;
		bool ok = false;
		if (split_colon(trim(tq->value, tq->value_len), qs, 16, &nq) == 0)
			for (size_t k = 0; k < nq; k++)
				ok |= span_is(qs[k], "dns/txt");
		if (!ok) {
			*why = "q= does not include dns/txt";
			return -1;
		}
	}

	/* b= and bh= are base64 with folding whitespace anywhere */
	long n = b64_decode(tb->value, tb->value_len, out->b, sizeof(out->b));
	if (n <= 0) {
		*why = n == 0 ? "empty b= signature" : "b= is not valid base64";
		return -1;
	}
	out->b_len = (size_t)n;
	{
		/* first 8 characters of the value, whitespace removed */
		size_t o = 0;
		for (size_t k = 0; k < tb->value_len && o < 8; k++)
			if (!is_wsp_any(tb->value[k]))
				out->b_prefix[o++] = tb->value[k];
		out->b_prefix[o] = '\0';
	}
	out->b_cut = value_off + tb->eq_end;
	out->b_cut_end = value_off + tb->spec_end;
	if (!seal) {
		n = b64_decode(tbh->value, tbh->value_len, out->bh, sizeof(out->bh));
		if (n < 0) {
			*why = "bh= is not valid base64";
			return -1;
		}
		if ((size_t)n != ws_hash_len(dkim_algo_hash(out->algo))) {
			*why = "bh= has the wrong length for a=";
			return -1;
		}
		out->bh_len = (size_t)n;

		struct dkim_span hs[DKIM_MAX_SIGNED + 1];
		size_t nh;
		if (split_colon(trim(th->value, th->value_len), hs, DKIM_MAX_SIGNED + 1, &nh) != 0 ||
		    nh > DKIM_MAX_SIGNED) {
			*why = "too many header names in h=";
			return -1;
		}
		bool from = false;
		size_t kept = 0;
		for (size_t k = 0; k < nh; k++) {
			if (hs[k].len == 0) {
				/* ARC's suite accepts an empty AMS h= and empty
				 * entries ("from::date"): they name no field */
				if (kind == DKIM_SIG_ARC_AMS)
					continue;
				*why = "empty header name in h=";
				return -1;
			}
			from |= span_is(hs[k], "from");
			out->h[kept++] = hs[k];
		}
		out->nh = kept;
		if (!from && kind == DKIM_SIG_DKIM) {
			*why = "From is not signed (h= lacks from)";
			return -1;
		}
	}
	if (tl_ && !seal) {
		if (parse_uint(tl_->value, tl_->value_len, 19, &out->l) != 0) {
			*why = "invalid l= value";
			return -1;
		}
	}
	uint64_t v64;
	if (tt) {
		if (parse_uint(tt->value, tt->value_len, 12, &v64) != 0) {
			*why = "invalid t= value";
			return -1;
		}
		out->t = (int64_t)v64;
	}
	if (tx && !arc) {
		if (parse_uint(tx->value, tx->value_len, 12, &v64) != 0) {
			*why = "invalid x= value";
			return -1;
		}
		out->x = (int64_t)v64;
		if (out->t >= 0 && out->x < out->t) {
			*why = "x= is earlier than t=";
			return -1;
		}
	}
	if (ti) {
		if (auid_domain(trim(ti->value, ti->value_len), out->i_domain) != 0) {
			*why = "invalid i= identity";
			return -1;
		}
		size_t il = strlen(out->i_domain), dl = strlen(out->d);
		bool sub = il == dl ? strcmp(out->i_domain, out->d) == 0
				    : il > dl && out->i_domain[il - dl - 1] == '.' &&
					      strcmp(out->i_domain + il - dl, out->d) == 0;
		if (!sub) {
			*why = "i= domain is not d= or a subdomain of it";
			return -1;
		}
	}
	if (dkim_algo_key(out->algo) == WS_SIG_ED25519 && out->b_len != WS_SIG_ED25519_SIG_LEN) {
		*why = "ed25519 signature is not 64 bytes";
		return -1;
	}
	return 0;
}

/* ---- key records ----------------------------------------------------- */

void
dkim_key_clear(struct dkim_key *k)
{
	if (!k)
		return;
	ws_pubkey_free(k->pub);
	memset(k, 0, sizeof(*k));
}

int
dkim_key_parse(const char *txt, size_t len, struct dkim_key *out, const char **why)
{
	struct taglist tl;
	memset(out, 0, sizeof(*out));
	if (taglist_parse(txt, len, &tl, why) != 0)
		return -1;
	const struct taglist_tag *tv = taglist_get(&tl, "v"), *tk = taglist_get(&tl, "k"),
				 *th = taglist_get(&tl, "h"), *tp = taglist_get(&tl, "p"),
				 *ts = taglist_get(&tl, "s"), *tt = taglist_get(&tl, "t");
	if (tv && (tv != &tl.tags[0] || !taglist_value_is(tv, "DKIM1", 0))) {
		*why = tv != &tl.tags[0] ? "key record v= is not the first tag"
					 : "key record version is not DKIM1";
		return -1;
	}
	out->alg = WS_SIG_RSA;
	if (tk) {
		if (taglist_value_is(tk, "rsa", 1))
			out->alg = WS_SIG_RSA;
		else if (taglist_value_is(tk, "ed25519", 1))
			out->alg = WS_SIG_ED25519;
		else {
			*why = "unknown key type k=";
			return -1;
		}
	}
	out->sha1_ok = out->sha256_ok = true;
	if (th) {
		struct dkim_span hs[16];
		size_t nh;
		out->sha1_ok = out->sha256_ok = false;
		if (split_colon(trim(th->value, th->value_len), hs, 16, &nh) != 0) {
			*why = "too many hash names in key h=";
			return -1;
		}
		for (size_t i = 0; i < nh; i++) {
			out->sha1_ok |= span_is(hs[i], "sha1");
			out->sha256_ok |= span_is(hs[i], "sha256");
		}
	}
	out->email_ok = true;
	if (ts) {
		struct dkim_span ss[16];
		size_t ns;
		out->email_ok = false;
		if (split_colon(trim(ts->value, ts->value_len), ss, 16, &ns) != 0) {
			*why = "too many service types in key s=";
			return -1;
		}
		for (size_t i = 0; i < ns; i++)
			out->email_ok |= span_is(ss[i], "email") || span_is(ss[i], "*");
	}
	if (tt) {
		struct dkim_span fs[16];
		size_t nf;
		if (split_colon(trim(tt->value, tt->value_len), fs, 16, &nf) != 0) {
			*why = "too many flags in key t=";
			return -1;
		}
		for (size_t i = 0; i < nf; i++) {
			out->testing |= span_is(fs[i], "y");
			out->strict |= span_is(fs[i], "s");
		}
	}
	if (!tp) {
		*why = "key record has no p= tag";
		return -1;
	}
	if (tp->value_len == 0) {
		out->revoked = true;
		return 0;
	}
	size_t cap = B64_DECODED_MAX(tp->value_len);
	uint8_t stackbuf[1536];
	uint8_t *der = cap <= sizeof(stackbuf) ? stackbuf : malloc(cap);
	if (!der) {
		*why = "out of memory";
		return -1;
	}
	long n = b64_decode(tp->value, tp->value_len, der, cap);
	int rc = -1;
	if (n <= 0) {
		*why = "key p= is not valid base64";
	} else if (ws_pubkey_parse(out->alg, der, (size_t)n, &out->pub, why) == 0) {
		out->bits = ws_pubkey_bits(out->pub);
		rc = 0;
	}
	if (der != stackbuf)
		free(der);
	return rc;
}

int
dkim_key_name(const char *s, const char *d, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s._domainkey.%s", s, d);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* ---- header hash input --------------------------------------------- */

static int
buf_reserve(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 4096;
	while (nc < need)
		nc *= 2;
	char *nb = realloc(*buf, nc);
	if (!nb)
		return -1;
	*buf = nb;
	*cap = nc;
	return 0;
}

int
dkim_header_input(const struct rfc5322_header *hdr, const struct dkim_sig *sig, const char *sig_raw,
		  size_t sig_len, char **buf, size_t *len, size_t *cap)
{
	uint8_t used_stack[256];
	uint8_t *used = hdr->nfields <= sizeof(used_stack) ? used_stack : calloc(hdr->nfields, 1);
	if (!used)
		return -1;
	memset(used, 0, hdr->nfields <= sizeof(used_stack) ? hdr->nfields : 0);
	int rc = -1;
	for (size_t k = 0; k < sig->nh; k++) {
		/* the bottom-most instance not used yet */
		size_t j = hdr->nfields;
		while (j-- > 0) {
			const struct rfc5322_field *f = &hdr->fields[j];
			if (!used[j] && rfc5322_field_is(hdr, f, sig->h[k].p, sig->h[k].len))
				break;
		}
		if (j == (size_t)-1)
			continue; /* absent (or oversigned): contributes nothing */
		used[j] = 1;
		const struct rfc5322_field *f = &hdr->fields[j];
		if (buf_reserve(buf, cap, *len + f->len + 2) != 0)
			goto out;
		*len += canon_header(sig->hcanon, rfc5322_field_raw(hdr, f), f->len, true, *buf + *len,
				     *cap - *len);
	}
	/* the signature field itself, b= value removed, no CRLF */
	size_t cut = sig->b_cut <= sig_len ? sig->b_cut : sig_len;
	size_t cut_end = sig->b_cut_end <= sig_len ? sig->b_cut_end : sig_len;
	size_t tmp_len = cut + (sig_len - cut_end);
	char tmp_stack[4096];
	char *tmp = tmp_len <= sizeof(tmp_stack) ? tmp_stack : malloc(tmp_len);
	if (!tmp)
		goto out;
	memcpy(tmp, sig_raw, cut);
	memcpy(tmp + cut, sig_raw + cut_end, sig_len - cut_end);
	if (buf_reserve(buf, cap, *len + tmp_len + 2) == 0) {
		*len += canon_header(sig->hcanon, tmp, tmp_len, false, *buf + *len, *cap - *len);
		rc = 0;
	}
	if (tmp != tmp_stack)
		free(tmp);
out:
	if (used != used_stack)
		free(used);
	return rc;
}

/* ---- verifier ------------------------------------------------------- */

#define DKIM_MAX_SIG_FIELDS 64u /* signature fields given a result at all */
_Static_assert(DKIM_MAX_SIGS <= CANON_SET_MAX, "one body hash per verified signature");

struct dkim_verifier {
	struct dkim_verify_config cfg;
	const struct rfc5322_header *hdr;
	struct dkim_sig_result res[DKIM_MAX_SIG_FIELDS];
	int bh_index[DKIM_MAX_SIG_FIELDS];
	const struct dkim_key *keys[DKIM_MAX_SIG_FIELDS];
	size_t n;
	struct canon_body_set bodies; /* one per distinct c=/a=/l= */
	bool body_done;
	char *hbuf;
	size_t hcap;
	/* dkim_verifier_prepare's jobs until dkim_verifier_complete */
	struct ws_verify_job jobs[DKIM_MAX_SIGS];
	uint8_t digests[DKIM_MAX_SIGS][WS_HASH_MAX_LEN];
	size_t job_of[DKIM_MAX_SIGS];
	size_t nj;
};

struct dkim_verifier *
dkim_verifier_new(const struct dkim_verify_config *cfg)
{
	/* Not calloc: the per-signature arrays and the body hash states (most
	 * of its ~290 KB) are set up entry by entry as a message uses them
	 * (start, canon_set_get), so zeroing them would only fault in pages no
	 * message may touch. Every other field is set here. */
	struct dkim_verifier *v = malloc(sizeof(*v));
	if (!v)
		return NULL;
	if (cfg)
		v->cfg = *cfg;
	else
		memset(&v->cfg, 0, sizeof(v->cfg));
	if (v->cfg.max_sigs == 0 || v->cfg.max_sigs > DKIM_MAX_SIGS)
		v->cfg.max_sigs = DKIM_MAX_SIGS;
	if (v->cfg.min_rsa_bits == 0)
		v->cfg.min_rsa_bits = DKIM_MIN_RSA_BITS;
	v->hdr = NULL;
	v->n = 0;
	canon_set_init(&v->bodies, v->cfg.lanes);
	v->body_done = false;
	v->hbuf = NULL;
	v->hcap = 0;
	v->nj = 0;
	return v;
}

void
dkim_verifier_free(struct dkim_verifier *v)
{
	if (!v)
		return;
	canon_set_free(&v->bodies);
	free(v->hbuf);
	free(v);
}

void
dkim_verifier_reset(struct dkim_verifier *v)
{
	for (size_t i = 0; i < v->n; i++)
		v->keys[i] = NULL;
	v->n = 0;
	v->hdr = NULL;
	canon_set_reset(&v->bodies);
	v->body_done = false;
	v->nj = 0;
}

void
dkim_verifier_set_now(struct dkim_verifier *v, int64_t now)
{
	v->cfg.now = now;
}

static void
decide(struct dkim_sig_result *r, enum dkim_result res, const char *why)
{
	r->result = res;
	r->reason = why;
	r->key_done = true;
}

void
dkim_verifier_rehome(struct dkim_verifier *v, const struct rfc5322_header *hdr)
{
	v->hdr = hdr;
}

size_t
dkim_verifier_start(struct dkim_verifier *v, const struct rfc5322_header *hdr)
{
	v->hdr = hdr;
	v->n = 0;
	canon_set_reset(&v->bodies);
	v->body_done = false;
	size_t verified = 0;
	for (size_t j = 0; j < hdr->nfields && v->n < DKIM_MAX_SIG_FIELDS; j++) {
		const struct rfc5322_field *f = &hdr->fields[j];
		if (!rfc5322_field_is(hdr, f, "DKIM-Signature", 14))
			continue;
		size_t i = v->n++;
		struct dkim_sig_result *r = &v->res[i];
		r->result = DKIM_NONE;
		r->reason = NULL;
		r->parsed = false;
		r->field = j;
		r->key_name[0] = '\0';
		r->key_done = false;
		r->key_bits = 0;
		r->testing = false;
		v->bh_index[i] = -1;
		v->keys[i] = NULL;
		const char *why = NULL;
		if (dkim_sig_parse(DKIM_SIG_DKIM, rfc5322_field_raw(hdr, f), f->len, f->value - f->off,
				   &r->sig, &why) != 0) {
			decide(r, DKIM_PERMERROR, why);
			continue;
		}
		r->parsed = true;
		if (verified == v->cfg.max_sigs) {
			decide(r, DKIM_POLICY, "more signatures than the per-message limit");
			continue;
		}
		verified++;
		if (r->sig.algo == DKIM_RSA_SHA1) {
			decide(r, DKIM_POLICY, "rsa-sha1 is not accepted (RFC 8301)");
			continue;
		}
		if (r->sig.x >= 0 && r->sig.x < v->cfg.now) {
			decide(r, DKIM_FAIL, "signature expired (x=)");
			continue;
		}
		if (dkim_key_name(r->sig.s, r->sig.d, r->key_name, sizeof(r->key_name)) != 0) {
			decide(r, DKIM_PERMERROR, "key name too long");
			continue;
		}
		v->bh_index[i] = canon_set_get(&v->bodies, r->sig.bcanon, dkim_algo_hash(r->sig.algo),
					       r->sig.l, DKIM_MAX_SIGS);
		if (v->bh_index[i] < 0)
			decide(r, DKIM_TEMPERROR, "cannot set up the body hash");
	}
	return v->n;
}

void
dkim_verifier_body(struct dkim_verifier *v, const uint8_t *data, size_t len)
{
	canon_set_update(&v->bodies, data, len);
}

void
dkim_verifier_body_close(struct dkim_verifier *v)
{
	canon_set_close(&v->bodies);
}

void
dkim_verifier_body_end(struct dkim_verifier *v)
{
	canon_set_final(&v->bodies);
	v->body_done = true;
}

size_t
dkim_verifier_count(const struct dkim_verifier *v)
{
	return v->n;
}

const char *
dkim_verifier_key_name(const struct dkim_verifier *v, size_t i)
{
	if (i >= v->n || v->res[i].key_done || !v->res[i].key_name[0])
		return NULL;
	return v->res[i].key_name;
}

void
dkim_verifier_set_key(struct dkim_verifier *v, size_t i, enum dkim_key_status st,
		      const struct dkim_key *key, const char *why)
{
	if (i >= v->n || v->res[i].key_done)
		return;
	struct dkim_sig_result *r = &v->res[i];
	switch (st) {
	case DKIM_KEY_MISSING:
		decide(r, DKIM_PERMERROR, why ? why : "no key for signature");
		return;
	case DKIM_KEY_INVALID:
		decide(r, DKIM_PERMERROR, why ? why : "key record is invalid");
		return;
	case DKIM_KEY_TEMPFAIL:
		decide(r, DKIM_TEMPERROR, why ? why : "key lookup failed temporarily");
		return;
	case DKIM_KEY_FOUND:
		break;
	}
	r->key_bits = key->bits;
	r->testing = key->testing;
	enum dkim_result res;
	const char *kwhy;
	if (dkim_key_check(&r->sig, key, v->cfg.min_rsa_bits, &res, &kwhy) != 0) {
		decide(r, res, kwhy);
	} else {
		v->keys[i] = key;
		r->key_done = true;
	}
}

int
dkim_key_check(const struct dkim_sig *s, const struct dkim_key *key, unsigned min_rsa_bits,
	       enum dkim_result *res, const char **why)
{
	enum ws_hash_alg halg = dkim_algo_hash(s->algo);
	*res = DKIM_PERMERROR;
	if (key->revoked)
		*why = "key revoked (empty p=)";
	else if (key->alg != dkim_algo_key(s->algo))
		*why = "key type does not match a=";
	else if ((halg == WS_HASH_SHA256 && !key->sha256_ok) || (halg == WS_HASH_SHA1 && !key->sha1_ok))
		*why = "key h= does not allow the signature's hash";
	else if (!key->email_ok)
		*why = "key s= does not allow email";
	else if (key->strict && s->i_domain[0] && strcmp(s->i_domain, s->d) != 0)
		*why = "key t=s requires the i= domain to equal d=";
	else if (key->alg == WS_SIG_RSA && key->bits < min_rsa_bits) {
		*res = DKIM_POLICY;
		*why = "RSA key shorter than 1024 bits (RFC 8301)";
	} else
		return 0;
	return -1;
}

size_t
dkim_verifier_prepare(struct dkim_verifier *v, struct ws_verify_job **jobs)
{
	size_t nj = 0;
	for (size_t i = 0; i < v->n; i++) {
		struct dkim_sig_result *r = &v->res[i];
		if (r->result != DKIM_NONE)
			continue;
		if (!v->keys[i]) {
			decide(r, DKIM_TEMPERROR, "key lookup not done");
			continue;
		}
		if (!v->body_done) {
			decide(r, DKIM_TEMPERROR, "message body incomplete");
			continue;
		}
		const struct canon_body_hash *b = &v->bodies.bh[v->bh_index[i]];
		if (r->sig.l != CANON_NO_LIMIT && b->cb.total < r->sig.l) {
			decide(r, DKIM_FAIL, "body shorter than l=");
			continue;
		}
		if (memcmp(b->digest, r->sig.bh, r->sig.bh_len) != 0) {
			decide(r, DKIM_FAIL, "body hash mismatch");
			continue;
		}
		const struct rfc5322_field *f = &v->hdr->fields[r->field];
		size_t len = 0;
		if (dkim_header_input(v->hdr, &r->sig, rfc5322_field_raw(v->hdr, f), f->len, &v->hbuf,
				      &len, &v->hcap) != 0) {
			decide(r, DKIM_TEMPERROR, "out of memory");
			continue;
		}
		enum ws_hash_alg halg = dkim_algo_hash(r->sig.algo);
		size_t dl = ws_hash_oneshot(halg, v->hbuf, len, v->digests[nj]);
		if (dl == 0) {
			decide(r, DKIM_TEMPERROR, "hash backend failure");
			continue;
		}
		v->jobs[nj] = (struct ws_verify_job){
			.key = v->keys[i]->pub,
			.halg = halg,
			.digest = v->digests[nj],
			.digest_len = dl,
			.sig = r->sig.b,
			.sig_len = r->sig.b_len,
			.result = -1,
		};
		v->job_of[nj++] = i;
	}
	v->nj = nj;
	*jobs = v->jobs;
	return nj;
}

void
dkim_verifier_complete(struct dkim_verifier *v)
{
	for (size_t k = 0; k < v->nj; k++) {
		struct dkim_sig_result *r = &v->res[v->job_of[k]];
		if (v->jobs[k].result == 1)
			decide(r, DKIM_PASS, "signature verified");
		else if (v->jobs[k].result == 0)
			decide(r, DKIM_FAIL, "signature did not verify");
		else
			decide(r, DKIM_PERMERROR, "signature could not be checked with this key");
	}
	v->nj = 0;
	for (size_t i = 0; i < v->n; i++)
		v->keys[i] = NULL;
}

void
dkim_verifier_finish(struct dkim_verifier *v)
{
	struct ws_verify_job *jobs;
	size_t nj = dkim_verifier_prepare(v, &jobs);
	ws_sig_verify_batch(jobs, nj);
	dkim_verifier_complete(v);
}

void
dkim_verifier_abort(struct dkim_verifier *v, const char *reason)
{
	for (size_t i = 0; i < v->n; i++) {
		v->res[i].result = DKIM_TEMPERROR;
		v->res[i].reason = reason;
		v->res[i].key_done = true;
		v->keys[i] = NULL;
	}
	v->nj = 0;
}

const struct dkim_sig_result *
dkim_verifier_result(const struct dkim_verifier *v, size_t i)
{
	return i < v->n ? &v->res[i] : NULL;
}
