/* DKIM-Signature (and ARC-Message-Signature) creation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "b64.h"
#include "dkim.h"
#include "rfc5322.h"

/* Signed by default when present, one h= entry per instance. */
static const char *const default_headers[] = {
	"from", "reply-to", "subject", "date", "to", "cc", "message-id", "in-reply-to",
	"references", "mime-version", "content-type", "content-transfer-encoding",
	"list-id", "list-unsubscribe", "list-unsubscribe-post", "feedback-id",
};

#define FOLD_AT 76u

struct out_buf {
	char *p;
	size_t len, cap;
	size_t line; /* length of the current output line */
	bool oom;
};

static void
put(struct out_buf *o, const char *s, size_t n)
{
	if (o->oom)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t nc = o->cap ? o->cap * 2 : 1024;
		while (nc < o->len + n + 1)
			nc *= 2;
		char *np = realloc(o->p, nc);
		if (!np) {
			o->oom = true;
			return;
		}
		o->p = np;
		o->cap = nc;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
	for (size_t i = 0; i < n; i++)
		o->line = s[i] == '\n' ? 0 : o->line + 1;
}

static void
puts_(struct out_buf *o, const char *s)
{
	put(o, s, strlen(s));
}

static void
arc_tag_lower(struct out_buf *o, const char *s)
{
	for (; *s; s++) {
		char ch = *s >= 'A' && *s <= 'Z' ? (char)(*s + 32) : *s;
		put(o, &ch, 1);
	}
}

/* One "tag=value;" token, folded before it when the line would get long. */
static void
tag(struct out_buf *o, const char *name, const char *value)
{
	size_t n = strlen(name) + 1 + strlen(value) + 1;
	if (o->line > 0 && o->line + 1 + n > FOLD_AT)
		puts_(o, "\r\n\t");
	else if (o->line > 0 && o->p[o->len - 1] != ' ')
		puts_(o, " ");
	puts_(o, name);
	puts_(o, "=");
	puts_(o, value);
	puts_(o, ";");
}

/* h= folded at colons. */
static void
tag_h(struct out_buf *o, const char *const *names, size_t n)
{
	if (o->line + 3 > FOLD_AT)
		puts_(o, "\r\n\t");
	else
		puts_(o, " ");
	puts_(o, "h=");
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(names[i]);
		if (i > 0) {
			puts_(o, ":");
			if (o->line + l + 1 > FOLD_AT)
				puts_(o, "\r\n\t");
		}
		puts_(o, names[i]);
	}
	puts_(o, ";");
}

/* The b= value folded so that no line passes FOLD_AT: the folds sit inside
 * the value, which the signature's own hash leaves out and relaxed
 * canonicalisation turns into single spaces for later ARC seals. */
static void
put_b64(struct out_buf *o, const char *b64, size_t bl)
{
	for (size_t i = 0; i < bl;) {
		size_t room = o->line < FOLD_AT ? FOLD_AT - o->line : 0;
		if (room < 8) {
			puts_(o, "\r\n\t");
			continue;
		}
		size_t k = bl - i < room ? bl - i : room;
		put(o, b64 + i, k);
		i += k;
	}
}

/* "; " between tags, or a fold (CRLF TAB) where the line would get long:
 * under relaxed canonicalisation both read as one space. */
static void
arc_sep(struct out_buf *o, size_t next)
{
	if (o->line + 1 + next > FOLD_AT)
		puts_(o, ";\r\n\t");
	else
		puts_(o, "; ");
}

static void
arc_tag(struct out_buf *o, const char *name, const char *value, bool lower)
{
	arc_sep(o, strlen(name) + 1 + strlen(value));
	puts_(o, name);
	puts_(o, "=");
	for (const char *c = value; *c; c++) {
		char ch = lower && *c >= 'A' && *c <= 'Z' ? (char)(*c + 32) : *c;
		put(o, &ch, 1);
	}
}

/*
 * ARC-Message-Signature in the layout the ARC test suite's expected
 * signatures assume (and any verifier accepts): tags sorted by name, "; "
 * between them, no trailing ';', values lowercase but b= and bh=, the h=
 * list unfolded (a fold inside it would change its relaxed form).
 */
static int
arc_layout(struct out_buf *o, const struct dkim_sign_params *p, const char *const *names,
	   size_t nnames, const char *bh64, const char *canon, size_t *bpos)
{
	char num[32];
	puts_(o, "ARC-Message-Signature: a=");
	puts_(o, dkim_algo_name(p->algo));
	/* b= on a line of its own and never folded inside: a later seal
	 * hashes this field relaxed, where a fold in b= would become a space
	 * (legal, but not what the suite's expected seals were made from) */
	puts_(o, ";\r\n\tb=");
	*bpos = o->len;
	arc_tag(o, "bh", bh64, false);
	arc_tag(o, "c", canon, true);
	arc_tag(o, "d", p->domain, true);
	size_t hl = 2;
	for (size_t i = 0; i < nnames; i++)
		hl += strlen(names[i]) + 1;
	arc_sep(o, hl);
	puts_(o, "h=");
	for (size_t i = 0; i < nnames; i++) {
		if (i)
			puts_(o, ":");
		arc_tag_lower(o, names[i]);
	}
	snprintf(num, sizeof(num), "%u", p->instance);
	arc_tag(o, "i", num, false);
	arc_tag(o, "s", p->selector, true);
	if (p->t >= 0) {
		snprintf(num, sizeof(num), "%lld", (long long)p->t);
		arc_tag(o, "t", num, false);
	}
	return o->oom ? -1 : 0;
}

int
dkim_sign(const struct dkim_sign_params *p, const uint8_t *msg, size_t len, char **out,
	  size_t *out_len, const char **why)
{
	struct rfc5322_header hdr;
	struct ws_hash *h = NULL;
	struct canon_body *cb = NULL;
	struct out_buf o = {0};
	char *hbuf = NULL, *hlist = NULL;
	const char **names = NULL;
	int rc = -1;
	rfc5322_init(&hdr);

	if (ws_privkey_alg(p->key) != dkim_algo_key(p->algo)) {
		*why = "the key does not match the algorithm";
		goto out;
	}
	if (p->algo == DKIM_RSA_SHA1) {
		*why = "rsa-sha1 signing is not offered (RFC 8301)";
		goto out;
	}
	size_t used;
	enum rfc5322_status st = rfc5322_push(&hdr, msg, len, &used);
	if (st == RFC5322_NEED_MORE)
		st = rfc5322_finish(&hdr);
	if (st != RFC5322_DONE) {
		*why = rfc5322_strerror(hdr.error);
		goto out;
	}

	/* body hash */
	enum ws_hash_alg halg = dkim_algo_hash(p->algo);
	h = ws_hash_new(halg);
	cb = malloc(sizeof(*cb));
	if (!h || !cb) {
		*why = "out of memory";
		goto out;
	}
	canon_body_init(cb, p->bcanon, CANON_NO_LIMIT, h);
	canon_body_update(cb, msg + used, len - used);
	canon_body_final(cb);
	uint8_t bh[WS_HASH_MAX_LEN];
	size_t bhl = ws_hash_final(h, bh);
	char bh64[B64_ENCODED_LEN(WS_HASH_MAX_LEN) + 1];
	b64_encode(bh, bhl, bh64);

	/* the h= list */
	size_t nnames = 0, max_names = DKIM_MAX_SIGNED;
	names = calloc(max_names, sizeof(*names));
	if (!names) {
		*why = "out of memory";
		goto out;
	}
	if (p->headers) {
		hlist = strdup(p->headers);
		if (!hlist) {
			*why = "out of memory";
			goto out;
		}
		for (char *s = hlist, *e; s; s = e) {
			e = strchr(s, ':');
			if (e)
				*e++ = '\0';
			while (*s == ' ')
				s++;
			if (!*s)
				continue;
			if (nnames == max_names) {
				*why = "too many header names";
				goto out;
			}
			names[nnames++] = s;
		}
	} else {
		for (size_t d = 0; d < sizeof(default_headers) / sizeof(default_headers[0]); d++)
			for (size_t j = 0; j < hdr.nfields && nnames < max_names; j++)
				if (rfc5322_field_is(&hdr, &hdr.fields[j], default_headers[d],
						     strlen(default_headers[d])))
					names[nnames++] = default_headers[d];
	}
	bool from = false;
	for (size_t i = 0; i < nnames; i++)
		from |= strcasecmp(names[i], "from") == 0;
	if (!from && p->kind == DKIM_SIG_DKIM) {
		*why = "the signed headers must include From";
		goto out;
	}

	/* the field, with an empty b= value at bpos */
	char num[32], canon[24];
	size_t bpos;
	snprintf(canon, sizeof(canon), "%s/%s", canon_name(p->hcanon), canon_name(p->bcanon));
	if (p->kind == DKIM_SIG_ARC_AMS) {
		if (arc_layout(&o, p, names, nnames, bh64, canon, &bpos) != 0) {
			*why = "out of memory";
			goto out;
		}
	} else {
		puts_(&o, "DKIM-Signature:");
		tag(&o, "v", "1");
		tag(&o, "a", dkim_algo_name(p->algo));
		tag(&o, "c", canon);
		tag(&o, "d", p->domain);
		tag(&o, "s", p->selector);
		if (p->auid)
			tag(&o, "i", p->auid);
		if (p->t >= 0) {
			snprintf(num, sizeof(num), "%lld", (long long)p->t);
			tag(&o, "t", num);
		}
		if (p->x >= 0) {
			snprintf(num, sizeof(num), "%lld", (long long)p->x);
			tag(&o, "x", num);
		}
		if (p->body_length) {
			snprintf(num, sizeof(num), "%llu", (unsigned long long)cb->total);
			tag(&o, "l", num);
		}
		tag_h(&o, names, nnames);
		tag(&o, "bh", bh64);
		puts_(&o, o.line + 3 > FOLD_AT ? "\r\n\tb=" : " b=");
		bpos = o.len;
	}
	if (o.oom) {
		*why = "out of memory";
		goto out;
	}

	/* what the signature covers */
	struct dkim_sig sig;
	memset(&sig, 0, sizeof(sig));
	sig.kind = p->kind;
	sig.algo = p->algo;
	sig.hcanon = p->hcanon;
	for (size_t i = 0; i < nnames; i++)
		sig.h[i] = (struct dkim_span){names[i], strlen(names[i])};
	sig.nh = nnames;
	sig.b_cut = sig.b_cut_end = bpos;
	size_t hlen = 0, hcap = 0;
	if (dkim_header_input(&hdr, &sig, o.p, o.len, &hbuf, &hlen, &hcap) != 0) {
		*why = "out of memory";
		goto out;
	}
	uint8_t digest[WS_HASH_MAX_LEN], sigbuf[WS_SIG_MAX_LEN];
	size_t dl = ws_hash_oneshot(halg, hbuf, hlen, digest);
	size_t sl = dl ? ws_sig_sign(p->key, halg, digest, dl, sigbuf, sizeof(sigbuf)) : 0;
	if (sl == 0) {
		*why = "signing failed";
		goto out;
	}
	char *b64 = malloc(B64_ENCODED_LEN(sl) + 1);
	if (!b64) {
		*why = "out of memory";
		goto out;
	}
	size_t bl = b64_encode(sigbuf, sl, b64);
	struct out_buf f = {0};
	put(&f, o.p, bpos);
	if (p->kind == DKIM_SIG_ARC_AMS)
		put(&f, b64, bl);
	else
		put_b64(&f, b64, bl);
	put(&f, o.p + bpos, o.len - bpos);
	puts_(&f, "\r\n");
	free(b64);
	free(o.p);
	o = f;
	if (o.oom) {
		*why = "out of memory";
		goto out;
	}
	*out = o.p;
	*out_len = o.len;
	o.p = NULL;
	rc = 0;
out:
	free(o.p);
	free(hbuf);
	free(hlist);
	free(names);
	free(cb);
	ws_hash_free(h);
	rfc5322_free(&hdr);
	return rc;
}
