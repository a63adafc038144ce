#include "arc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authres.h"
#include "b64.h"
#include "rfc5322.h"

static const char *const result_names[] = {
	[ARC_NONE] = "none",
	[ARC_PASS] = "pass",
	[ARC_FAIL] = "fail",
};

const char *
arc_result_name(enum arc_result r)
{
	return (unsigned)r < 3 ? result_names[r] : "?";
}

/* The three fields of a set, as a table: name and how its i= is found. */
enum arc_part { PART_AAR, PART_AMS, PART_AS, PART_COUNT };
static const struct {
	const char *name;
	size_t len;
} parts[PART_COUNT] = {
	[PART_AAR] = {"ARC-Authentication-Results", 26},
	[PART_AMS] = {"ARC-Message-Signature", 21},
	[PART_AS] = {"ARC-Seal", 8},
};

_Static_assert(ARC_MAX_BODY_HASHES <= CANON_SET_MAX, "the body hash set holds them all");

struct arc_validator {
	struct arc_config cfg;
	const struct rfc5322_header *hdr;
	struct arc_chain chain;
	struct arc_set_result sets[ARC_MAX_SETS];
	int bh_index[ARC_MAX_SETS];
	/* per key slot */
	char key_name[2 * ARC_MAX_SETS][DKIM_MAX_KEY_NAME + 1];
	bool key_done[2 * ARC_MAX_SETS];
	const struct dkim_key *keys[2 * ARC_MAX_SETS];
	struct canon_body_set bodies; /* one per distinct AMS c=/a=/l= */
	bool decided; /* the chain result is final already (structure) */
	bool body_done;
	char *hbuf;
	size_t hcap;
};

struct arc_validator *
arc_validator_new(const struct arc_config *cfg)
{
	/* Not calloc: the per-set and per-key-slot arrays and the body hash
	 * states (most of its ~420 KB) are set up as a chain uses them (start:
	 * sets 1..N and their 2N key slots), so zeroing them would only fault
	 * in pages no message may touch. Every other field is set here. */
	struct arc_validator *v = malloc(sizeof(*v));
	if (!v)
		return NULL;
	if (cfg)
		v->cfg = *cfg;
	else
		memset(&v->cfg, 0, sizeof(v->cfg));
	if (v->cfg.min_rsa_bits == 0)
		v->cfg.min_rsa_bits = DKIM_MIN_RSA_BITS;
	v->hdr = NULL;
	memset(&v->chain, 0, sizeof(v->chain));
	v->chain.sets = v->sets;
	canon_set_init(&v->bodies, NULL);
	v->decided = true; /* no key slots until start */
	v->body_done = false;
	v->hbuf = NULL;
	v->hcap = 0;
	return v;
}

void
arc_validator_free(struct arc_validator *v)
{
	if (!v)
		return;
	canon_set_free(&v->bodies);
	free(v->hbuf);
	free(v);
}

void
arc_validator_reset(struct arc_validator *v)
{
	v->hdr = NULL;
	memset(&v->chain, 0, sizeof(v->chain));
	v->chain.sets = v->sets;
	canon_set_reset(&v->bodies);
	v->decided = true; /* no key slots until start */
	v->body_done = false;
}

static bool
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
arc_aar_parse(const char *value, size_t len, unsigned *instance, const char **payload,
	      size_t *payload_len, const char **why)
{
	size_t i = 0;
	while (i < len && is_ws(value[i]))
		i++;
	if (i >= len || value[i] != 'i') {
		*why = "AAR does not start with i=";
		return -1;
	}
	i++;
	while (i < len && is_ws(value[i]))
		i++;
	if (i >= len || value[i] != '=') {
		*why = "AAR does not start with i=";
		return -1;
	}
	i++;
	while (i < len && is_ws(value[i]))
		i++;
	unsigned n = 0;
	size_t digits = 0;
	while (i < len && value[i] >= '0' && value[i] <= '9' && digits < 3) {
		n = n * 10 + (unsigned)(value[i] - '0');
		i++;
		digits++;
	}
	if (digits == 0 || n < 1 || n > ARC_MAX_SETS || (i < len && value[i] >= '0' && value[i] <= '9')) {
		*why = "invalid AAR instance";
		return -1;
	}
	while (i < len && is_ws(value[i]))
		i++;
	if (i >= len || value[i] != ';') {
		*why = "AAR instance not followed by ';'";
		return -1;
	}
	i++;
	while (i < len && is_ws(value[i]))
		i++;
	size_t end = len;
	while (end > i && is_ws(value[end - 1]))
		end--;
	*instance = n;
	if (payload) {
		*payload = value + i;
		*payload_len = end - i;
	}
	return 0;
}

static void
chain_fail(struct arc_validator *v, unsigned instance, const char *why)
{
	if (v->chain.result == ARC_FAIL)
		return; /* the first reason found is the one reported */
	v->chain.result = ARC_FAIL;
	v->chain.reason = why;
	v->chain.fail_instance = instance;
	v->chain.oldest_pass = 0;
}

/* Which ARC part a field is, or PART_COUNT. */
static enum arc_part
part_of(const struct rfc5322_header *hdr, const struct rfc5322_field *f)
{
	for (int p = 0; p < PART_COUNT; p++)
		if (rfc5322_field_is(hdr, f, parts[p].name, parts[p].len))
			return (enum arc_part)p;
	return PART_COUNT;
}

/* The sets of hdr into sets[]: 0 and *n, or -1 with *why and *bad (the
 * instance at fault, 0 when unknown). sig parsing included. With sealing,
 * the newest set may lack its ARC-Seal (the one being made). */
static int
collect(const struct rfc5322_header *hdr, struct arc_set_result *sets, unsigned *n,
	const char **why, unsigned *bad, bool sealing)
{
	size_t seen[ARC_MAX_SETS][PART_COUNT];
	size_t total = 0;
	unsigned max = 0;
	*bad = 0;
	*n = 0;
	memset(seen, 0xff, sizeof(seen));
	for (size_t j = 0; j < hdr->nfields; j++) {
		const struct rfc5322_field *f = &hdr->fields[j];
		enum arc_part p = part_of(hdr, f);
		if (p == PART_COUNT)
			continue;
		if (++total > 3 * ARC_MAX_SETS) {
			*why = "more than ARC_MAX_SETS (50) ARC sets";
			return -1;
		}
		size_t vlen;
		const char *val = rfc5322_field_value(hdr, f, &vlen);
		unsigned inst = 0;
		struct arc_set_result tmp;
		if (p == PART_AAR) {
			const char *pl;
			size_t pll;
			if (arc_aar_parse(val, vlen, &inst, &pl, &pll, why) != 0)
				return -1;
		} else {
			struct dkim_sig *sig = p == PART_AMS ? &tmp.ams : &tmp.as;
			if (dkim_sig_parse(p == PART_AMS ? DKIM_SIG_ARC_AMS : DKIM_SIG_ARC_SEAL,
					   rfc5322_field_raw(hdr, f), f->len, f->value - f->off, sig,
					   why) != 0) {
				*bad = sig->instance;
				return -1;
			}
			inst = sig->instance;
		}
		struct arc_set_result *s = &sets[inst - 1];
		if (seen[inst - 1][p] != (size_t)-1) {
			*why = p == PART_AAR ? "duplicate ARC-Authentication-Results instance"
			       : p == PART_AMS ? "duplicate ARC-Message-Signature instance"
					       : "duplicate ARC-Seal instance";
			*bad = inst;
			return -1;
		}
		if (seen[inst - 1][PART_AAR] == (size_t)-1 && seen[inst - 1][PART_AMS] == (size_t)-1 &&
		    seen[inst - 1][PART_AS] == (size_t)-1)
			memset(s, 0, offsetof(struct arc_set_result, ams));
		seen[inst - 1][p] = j;
		s->instance = inst;
		if (p == PART_AAR) {
			s->aar_field = j;
			arc_aar_parse(val, vlen, &inst, &s->aar, &s->aar_len, why);
		} else if (p == PART_AMS) {
			s->ams_field = j;
			s->ams = tmp.ams;
			s->ams_parsed = true;
		} else {
			s->as_field = j;
			s->as = tmp.as;
			s->as_parsed = true;
		}
		if (inst > max)
			max = inst;
	}
	for (unsigned i = 0; i < max; i++) {
		for (int p = 0; p < PART_COUNT; p++) {
			/* while sealing, the newest set's seal is still being made */
			if (seen[i][p] == (size_t)-1 && !(sealing && p == PART_AS && i + 1 == max)) {
				*why = p == PART_AAR ? "ARC set lacks its ARC-Authentication-Results"
				       : p == PART_AMS ? "ARC set lacks its ARC-Message-Signature"
						       : "ARC set lacks its ARC-Seal";
				*bad = i + 1;
				return -1;
			}
		}
		sets[i].ams_result = sets[i].as_result = DKIM_NONE;
		sets[i].ams_reason = sets[i].as_reason = NULL;
	}
	*n = max;
	return 0;
}

/* RFC 8617 5.1.2: the AMS must not sign ARC-Seal fields. */
static bool
ams_signs_seal(const struct dkim_sig *s)
{
	for (size_t k = 0; k < s->nh; k++)
		if (s->h[k].len == 8 && strncasecmp(s->h[k].p, "ARC-Seal", 8) == 0)
			return true;
	return false;
}

void
arc_validator_rehome(struct arc_validator *v, const struct rfc5322_header *hdr)
{
	v->hdr = hdr;
}

size_t
arc_validator_start(struct arc_validator *v, const struct rfc5322_header *hdr)
{
	v->hdr = hdr;
	memset(&v->chain, 0, sizeof(v->chain));
	v->chain.sets = v->sets;
	canon_set_reset(&v->bodies);
	v->decided = false;
	v->body_done = false;
	const char *why = NULL;
	unsigned bad = 0, n = 0;
	if (collect(hdr, v->sets, &n, &why, &bad, false) != 0) {
		chain_fail(v, bad, why);
		v->decided = true;
		return 0;
	}
	/* only slots below 2N are ever read (arc_validator_key_slots) */
	for (size_t k = 0; k < 2 * (size_t)n; k++) {
		v->key_name[k][0] = '\0';
		v->key_done[k] = true;
		v->keys[k] = NULL;
	}
	v->chain.nsets = n;
	if (n == 0) {
		v->chain.result = ARC_NONE;
		v->chain.reason = "no ARC sets";
		v->decided = true;
		return 0;
	}
	/* RFC 8617 5.2 step 2: a chain the newest sealer marked failed stays failed */
	const struct dkim_sig *newest = &v->sets[n - 1].as;
	if (newest->cv == DKIM_CV_FAIL) {
		chain_fail(v, n, "the newest ARC-Seal has cv=fail");
		v->decided = true;
		return n;
	}
	for (unsigned i = 0; i < n; i++) {
		int want = i == 0 ? DKIM_CV_NONE : DKIM_CV_PASS;
		if ((int)v->sets[i].as.cv != want) {
			chain_fail(v, i + 1, i == 0 ? "ARC-Seal i=1 must have cv=none"
						    : "ARC-Seal after i=1 must have cv=pass");
			v->decided = true;
			return n;
		}
		if (ams_signs_seal(&v->sets[i].ams)) {
			chain_fail(v, i + 1, "ARC-Message-Signature signs an ARC-Seal");
			v->decided = true;
			return n;
		}
	}
	/* body hashes, newest AMS first so it always gets one */
	for (unsigned k = n; k-- > 0;) {
		struct arc_set_result *s = &v->sets[k];
		v->bh_index[k] = -1;
		for (int which = 0; which < 2; which++) {
			const struct dkim_sig *sig = which == 0 ? &s->ams : &s->as;
			size_t slot = 2 * k + (size_t)which;
			enum dkim_result *res = which == 0 ? &s->ams_result : &s->as_result;
			const char **reason = which == 0 ? &s->ams_reason : &s->as_reason;
			if (sig->algo == DKIM_RSA_SHA1) {
				*res = DKIM_FAIL;
				*reason = "rsa-sha1 is not accepted (RFC 8301)";
				continue;
			}
			if (dkim_key_name(sig->s, sig->d, v->key_name[slot], sizeof(v->key_name[slot])) !=
			    0) {
				*res = DKIM_FAIL;
				*reason = "key name too long";
				continue;
			}
			v->key_done[slot] = false;
		}
		if (s->ams_result == DKIM_NONE) {
			v->bh_index[k] = canon_set_get(&v->bodies, s->ams.bcanon,
						       dkim_algo_hash(s->ams.algo), s->ams.l,
						       ARC_MAX_BODY_HASHES);
			if (v->bh_index[k] < 0) {
				s->ams_result = DKIM_FAIL;
				s->ams_reason = "too many distinct AMS body hashes";
				v->key_done[2 * k] = true;
			}
		}
	}
	return n;
}

void
arc_validator_body(struct arc_validator *v, const uint8_t *data, size_t len)
{
	canon_set_update(&v->bodies, data, len);
}

void
arc_validator_body_end(struct arc_validator *v)
{
	canon_set_final(&v->bodies);
	v->body_done = true;
}

size_t
arc_validator_key_slots(const struct arc_validator *v)
{
	return v->decided ? 0 : 2 * (size_t)v->chain.nsets;
}

const char *
arc_validator_key_name(const struct arc_validator *v, size_t k)
{
	if (k >= arc_validator_key_slots(v) || v->key_done[k])
		return NULL;
	return v->key_name[k];
}

void
arc_validator_set_key(struct arc_validator *v, size_t k, enum dkim_key_status st,
		      const struct dkim_key *key, const char *why)
{
	if (k >= arc_validator_key_slots(v) || v->key_done[k])
		return;
	struct arc_set_result *s = &v->sets[k / 2];
	bool ams = k % 2 == 0;
	const struct dkim_sig *sig = ams ? &s->ams : &s->as;
	enum dkim_result *res = ams ? &s->ams_result : &s->as_result;
	const char **reason = ams ? &s->ams_reason : &s->as_reason;
	v->key_done[k] = true;
	switch (st) {
	case DKIM_KEY_MISSING:
		*res = DKIM_PERMERROR;
		*reason = why ? why : "no key for signature";
		return;
	case DKIM_KEY_INVALID:
		*res = DKIM_PERMERROR;
		*reason = why ? why : "key record is invalid";
		return;
	case DKIM_KEY_TEMPFAIL:
		*res = DKIM_TEMPERROR;
		*reason = why ? why : "key lookup failed temporarily";
		return;
	case DKIM_KEY_FOUND:
		break;
	}
	enum dkim_result kres;
	const char *kwhy;
	if (dkim_key_check(sig, key, v->cfg.min_rsa_bits, &kres, &kwhy) == 0) {
		v->keys[k] = key;
	} else {
		*res = kres;
		*reason = kwhy;
	}
}

static int
reserve(char **buf, size_t *cap, size_t need)
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

static int
append_relaxed(const struct rfc5322_header *hdr, size_t field, char **buf, size_t *len,
	       size_t *cap)
{
	const struct rfc5322_field *f = &hdr->fields[field];
	if (reserve(buf, cap, *len + f->len + 2) != 0)
		return -1;
	*len += canon_header(CANON_RELAXED, rfc5322_field_raw(hdr, f), f->len, true, *buf + *len,
			     *cap - *len);
	return 0;
}

/*
 * The seal's header hash input (RFC 8617 5.1.1): for instances 1..k in
 * order, the AAR, AMS and AS, relaxed with CRLF, except that the AS of
 * instance k (as_raw/as_sig, which need not be in hdr) ends the input with
 * its b= value removed and no CRLF.
 */
static int
seal_input(const struct rfc5322_header *hdr, const struct arc_set_result *sets, unsigned k,
	   const struct dkim_sig *as_sig, const char *as_raw, size_t as_len, char **buf,
	   size_t *len, size_t *cap)
{
	/* a seal that records a failed chain covers only its own set
	 * (RFC 8617 5.1.1): the earlier sets cannot be vouched for */
	unsigned first = as_sig->cv == DKIM_CV_FAIL ? k - 1 : 0;
	for (unsigned i = first; i < k; i++) {
		if (append_relaxed(hdr, sets[i].aar_field, buf, len, cap) != 0 ||
		    append_relaxed(hdr, sets[i].ams_field, buf, len, cap) != 0)
			return -1;
		if (i + 1 < k && append_relaxed(hdr, sets[i].as_field, buf, len, cap) != 0)
			return -1;
	}
	struct dkim_sig s = *as_sig;
	s.hcanon = CANON_RELAXED;
	s.nh = 0;
	return dkim_header_input(hdr, &s, as_raw, as_len, buf, len, cap);
}

/* Hash buf and check sig with key: 1 verified, 0 not, -1 cannot check. */
static int
check_sig(const struct dkim_sig *sig, const struct dkim_key *key, const char *buf, size_t len)
{
	enum ws_hash_alg halg = dkim_algo_hash(sig->algo);
	uint8_t digest[WS_HASH_MAX_LEN];
	size_t dl = ws_hash_oneshot(halg, buf, len, digest);
	if (dl == 0)
		return -1;
	return ws_sig_verify(key->pub, halg, digest, dl, sig->b, sig->b_len);
}

static void
verify_ams(struct arc_validator *v, unsigned k)
{
	struct arc_set_result *s = &v->sets[k];
	if (s->ams_result != DKIM_NONE)
		return;
	const struct dkim_key *key = v->keys[2 * k];
	if (!key) {
		s->ams_result = DKIM_TEMPERROR;
		s->ams_reason = "key lookup not done";
		return;
	}
	if (!v->body_done || v->bh_index[k] < 0) {
		s->ams_result = DKIM_TEMPERROR;
		s->ams_reason = "message body incomplete";
		return;
	}
	const struct canon_body_hash *b = &v->bodies.bh[v->bh_index[k]];
	if (s->ams.l != CANON_NO_LIMIT && b->cb.total < s->ams.l) {
		s->ams_result = DKIM_FAIL;
		s->ams_reason = "body shorter than l=";
		return;
	}
	if (memcmp(b->digest, s->ams.bh, s->ams.bh_len) != 0) {
		s->ams_result = DKIM_FAIL;
		s->ams_reason = "body hash mismatch";
		return;
	}
	const struct rfc5322_field *f = &v->hdr->fields[s->ams_field];
	size_t len = 0;
	if (dkim_header_input(v->hdr, &s->ams, rfc5322_field_raw(v->hdr, f), f->len, &v->hbuf, &len,
			      &v->hcap) != 0) {
		s->ams_result = DKIM_TEMPERROR;
		s->ams_reason = "out of memory";
		return;
	}
	int r = check_sig(&s->ams, key, v->hbuf, len);
	s->ams_result = r == 1 ? DKIM_PASS : r == 0 ? DKIM_FAIL : DKIM_PERMERROR;
	s->ams_reason = r == 1 ? "signature verified" : r == 0 ? "signature did not verify"
							  : "signature could not be checked with this key";
}

static void
verify_as(struct arc_validator *v, unsigned k)
{
	struct arc_set_result *s = &v->sets[k];
	if (s->as_result != DKIM_NONE)
		return;
	const struct dkim_key *key = v->keys[2 * k + 1];
	if (!key) {
		s->as_result = DKIM_TEMPERROR;
		s->as_reason = "key lookup not done";
		return;
	}
	const struct rfc5322_field *f = &v->hdr->fields[s->as_field];
	size_t len = 0;
	if (seal_input(v->hdr, v->sets, k + 1, &s->as, rfc5322_field_raw(v->hdr, f), f->len, &v->hbuf,
		       &len, &v->hcap) != 0) {
		s->as_result = DKIM_TEMPERROR;
		s->as_reason = "out of memory";
		return;
	}
	int r = check_sig(&s->as, key, v->hbuf, len);
	s->as_result = r == 1 ? DKIM_PASS : r == 0 ? DKIM_FAIL : DKIM_PERMERROR;
	s->as_reason = r == 1 ? "seal verified" : r == 0 ? "seal did not verify"
							 : "seal could not be checked with this key";
}

static const char *
sig_reason(unsigned newest, unsigned inst, bool ams, enum dkim_result r)
{
	(void)r;
	if (ams)
		return inst == newest ? "the newest ARC-Message-Signature did not verify"
				      : "an ARC-Message-Signature did not verify";
	return "an ARC-Seal did not verify";
}

void
arc_validator_finish(struct arc_validator *v)
{
	if (v->decided)
		goto out;
	unsigned n = v->chain.nsets;
	for (unsigned k = 0; k < n; k++) {
		verify_ams(v, k);
		verify_as(v, k);
	}
	/* RFC 8617 5.2 step 3: the newest AMS */
	struct arc_set_result *top = &v->sets[n - 1];
	if (top->ams_result != DKIM_PASS) {
		chain_fail(v, n, sig_reason(n, n, true, top->ams_result));
		v->chain.temporary = top->ams_result == DKIM_TEMPERROR;
		goto out;
	}
	/* step 5: every seal, newest first */
	for (unsigned k = n; k-- > 0;) {
		if (v->sets[k].as_result != DKIM_PASS) {
			chain_fail(v, k + 1, sig_reason(n, k + 1, false, v->sets[k].as_result));
			v->chain.temporary = v->sets[k].as_result == DKIM_TEMPERROR;
			goto out;
		}
	}
	v->chain.result = ARC_PASS;
	v->chain.reason = "chain verified";
	/* step 4: oldest-pass */
	unsigned m = n;
	while (m > 1 && v->sets[m - 2].ams_result == DKIM_PASS)
		m--;
	v->chain.oldest_pass = m;
out:
	for (size_t k = 0; k < 2 * (size_t)v->chain.nsets; k++)
		v->keys[k] = NULL;
}

const struct arc_chain *
arc_validator_chain(const struct arc_validator *v)
{
	return &v->chain;
}

/* ---- sealing ------------------------------------------------------- */

int
arc_cv_from_authres(const struct rfc5322_header *hdr, const char *authserv_id, enum arc_result *out)
{
	struct authres_parsed *ar = malloc(sizeof(*ar));
	int rc = -1;
	if (!ar)
		return -1;
	for (size_t j = 0; j < hdr->nfields && rc != 0; j++) {
		const struct rfc5322_field *f = &hdr->fields[j];
		if (!rfc5322_field_is(hdr, f, "Authentication-Results", 22))
			continue;
		size_t vlen;
		const char *val = rfc5322_field_value(hdr, f, &vlen);
		const char *why;
		if (authres_parse(val, vlen, ar, &why, NULL) != 0 ||
		    !authres_span_is(&ar->authserv_id, authserv_id))
			continue;
		const struct authres_method *m = authres_find(ar, "arc");
		if (!m)
			continue;
		if (authres_span_is(&m->result, "pass"))
			*out = ARC_PASS;
		else if (authres_span_is(&m->result, "none"))
			*out = ARC_NONE;
		else
			*out = ARC_FAIL;
		rc = 0;
	}
	free(ar);
	return rc;
}

struct sbuf {
	char *p;
	size_t len, cap, line;
	bool oom;
};

static void
sput(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (reserve(&b->p, &b->cap, b->len + n + 1) != 0) {
		b->oom = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	for (size_t i = 0; i < n; i++)
		b->line = s[i] == '\n' ? 0 : b->line + 1;
}

static void
sputs(struct sbuf *b, const char *s)
{
	sput(b, s, strlen(s));
}

#define SEAL_FOLD 76u

/* "; " or, where the line would pass SEAL_FOLD, ";" CRLF TAB: the same
 * under relaxed canonicalisation, which both AS and AAR are hashed with. */
static void
sep(struct sbuf *b, size_t next)
{
	sputs(b, b->line + 2 + next > SEAL_FOLD ? ";\r\n\t" : "; ");
}

static void
stag(struct sbuf *b, const char *name, const char *value)
{
	sep(b, strlen(name) + 1 + strlen(value));
	sputs(b, name);
	sputs(b, "=");
	for (const char *c = value; *c; c++) {
		char ch = *c >= 'A' && *c <= 'Z' ? (char)(*c + 32) : *c;
		sput(b, &ch, 1);
	}
}

/* The AAR: every result clause of authserv_id's Authentication-Results
 * fields, in message order, in one field (the layout the ARC suite's sign
 * tests expect). "none" when there are none. */
static int
build_aar(const struct rfc5322_header *hdr, const char *authserv_id, unsigned inst, struct sbuf *b)
{
	struct authres_parsed *ar = malloc(sizeof(*ar));
	if (!ar)
		return -1;
	char num[16];
	snprintf(num, sizeof(num), "%u", inst);
	sputs(b, "ARC-Authentication-Results: i=");
	sputs(b, num);
	sputs(b, "; ");
	sputs(b, authserv_id);
	size_t clauses = 0;
	for (size_t j = 0; j < hdr->nfields; j++) {
		const struct rfc5322_field *f = &hdr->fields[j];
		if (!rfc5322_field_is(hdr, f, "Authentication-Results", 22))
			continue;
		size_t vlen;
		const char *val = rfc5322_field_value(hdr, f, &vlen);
		const char *why;
		if (authres_parse(val, vlen, ar, &why, NULL) != 0 ||
		    !authres_span_is(&ar->authserv_id, authserv_id))
			continue;
		for (size_t m = 0; m < ar->nmethods; m++) {
			const struct authres_span *c = &ar->methods[m].clause;
			sep(b, c->len);
			sput(b, c->p, c->len);
			clauses++;
		}
	}
	if (clauses == 0)
		sputs(b, "; none");
	sputs(b, "\r\n");
	free(ar);
	return b->oom ? -1 : 0;
}

static int
parse_block(struct rfc5322_header *hdr, const uint8_t *msg, size_t len, size_t *body)
{
	enum rfc5322_status st = rfc5322_push(hdr, msg, len, body);
	if (st == RFC5322_NEED_MORE) {
		st = rfc5322_finish(hdr);
		*body = len;
	}
	return st == RFC5322_DONE ? 0 : -1;
}

int
arc_seal(const struct arc_seal_params *p, const uint8_t *msg, size_t len, char **out,
	 size_t *out_len, const char **why)
{
	struct rfc5322_header hdr;
	struct arc_set_result *sets = calloc(ARC_MAX_SETS, sizeof(*sets));
	struct sbuf aar = {0}, as = {0}, res = {0};
	uint8_t *m2 = NULL;
	char *ams = NULL, *hbuf = NULL, *b64 = NULL;
	size_t ams_len = 0, hlen = 0, hcap = 0, body;
	int rc = -1;
	rfc5322_init(&hdr);
	if (!sets) {
		*why = "out of memory";
		goto out;
	}
	if (parse_block(&hdr, msg, len, &body) != 0) {
		*why = rfc5322_strerror(hdr.error);
		goto out;
	}
	unsigned n, bad;
	if (collect(&hdr, sets, &n, why, &bad, false) != 0)
		goto out;
	if (n > 0 && sets[n - 1].as.cv == DKIM_CV_FAIL) {
		rc = 1; /* RFC 8617 5.1: no set is added to a failed chain */
		goto out;
	}
	if (n == ARC_MAX_SETS) {
		*why = "the chain already has ARC_MAX_SETS sets";
		goto out;
	}
	unsigned inst = n + 1;
	const char *cv = inst == 1 ? "none" : p->cv == ARC_PASS ? "pass" : "fail";

	/* AAR on top, then the AMS over that message */
	if (build_aar(&hdr, p->authserv_id, inst, &aar) != 0) {
		*why = "out of memory";
		goto out;
	}
	m2 = malloc(aar.len + len);
	if (!m2) {
		*why = "out of memory";
		goto out;
	}
	memcpy(m2, aar.p, aar.len);
	memcpy(m2 + aar.len, msg, len);
	struct dkim_sign_params sp = {
		.kind = DKIM_SIG_ARC_AMS, .key = p->key, .algo = p->algo, .domain = p->domain,
		.selector = p->selector, .hcanon = p->hcanon, .bcanon = p->bcanon,
		.headers = p->headers, .t = p->t, .x = -1, .instance = inst,
	};
	if (dkim_sign(&sp, m2, aar.len + len, &ams, &ams_len, why) != 0)
		goto out;

	/* the header block with the new AAR and AMS, for the seal's input */
	free(m2);
	m2 = malloc(ams_len + aar.len + (body > len ? len : body));
	if (!m2) {
		*why = "out of memory";
		goto out;
	}
	memcpy(m2, ams, ams_len);
	memcpy(m2 + ams_len, aar.p, aar.len);
	memcpy(m2 + ams_len + aar.len, msg, body);
	rfc5322_reset(&hdr);
	size_t body2;
	if (parse_block(&hdr, m2, ams_len + aar.len + body, &body2) != 0 ||
	    collect(&hdr, sets, &n, why, &bad, true) != 0 || n != inst) {
		*why = "the sealed header block did not parse back";
		goto out;
	}

	/* the seal with an empty b= */
	char num[32];
	sputs(&as, "ARC-Seal: a=");
	sputs(&as, dkim_algo_name(p->algo));
	sputs(&as, ";\r\n\tb=");
	size_t bpos = as.len;
	stag(&as, "cv", cv);
	stag(&as, "d", p->domain);
	snprintf(num, sizeof(num), "%u", inst);
	stag(&as, "i", num);
	stag(&as, "s", p->selector);
	if (p->t >= 0) {
		snprintf(num, sizeof(num), "%lld", (long long)p->t);
		stag(&as, "t", num);
	}
	if (as.oom) {
		*why = "out of memory";
		goto out;
	}
	struct dkim_sig as_sig;
	memset(&as_sig, 0, offsetof(struct dkim_sig, h));
	as_sig.algo = p->algo;
	as_sig.cv = inst > 1 && p->cv != ARC_PASS ? DKIM_CV_FAIL : DKIM_CV_NONE;
	as_sig.b_cut = as_sig.b_cut_end = bpos;
	if (seal_input(&hdr, sets, inst, &as_sig, as.p, as.len, &hbuf, &hlen, &hcap) != 0) {
		*why = "out of memory";
		goto out;
	}
	enum ws_hash_alg halg = dkim_algo_hash(p->algo);
	uint8_t digest[WS_HASH_MAX_LEN], sigbuf[WS_SIG_MAX_LEN];
	size_t dl = ws_hash_oneshot(halg, hbuf, hlen, digest);
	size_t sl = dl ? ws_sig_sign(p->key, halg, digest, dl, sigbuf, sizeof(sigbuf)) : 0;
	if (sl == 0) {
		*why = "signing failed";
		goto out;
	}
	b64 = malloc(B64_ENCODED_LEN(sl) + 1);
	if (!b64) {
		*why = "out of memory";
		goto out;
	}
	size_t bl = b64_encode(sigbuf, sl, b64);
	/* b= unfolded, as in the AMS: later seals hash this field relaxed */
	sput(&res, as.p, bpos);
	sput(&res, b64, bl);
	sput(&res, as.p + bpos, as.len - bpos);
	sputs(&res, "\r\n");
	sput(&res, ams, ams_len);
	sput(&res, aar.p, aar.len);
	if (res.oom) {
		*why = "out of memory";
		goto out;
	}
	*out = res.p;
	*out_len = res.len;
	res.p = NULL;
	rc = 0;
out:
	free(res.p);
	free(as.p);
	free(aar.p);
	free(m2);
	free(ams);
	free(hbuf);
	free(b64);
	free(sets);
	rfc5322_free(&hdr);
	return rc;
}
