/* Zone table for the SPF conformance suites; see spf_zone.h for the rules. */
#include "spf_zone.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum ztype { Z_A, Z_AAAA, Z_MX, Z_PTR, Z_TXT, Z_SPF, Z_CNAME };

static const char *const ztype_names[] = {
	[Z_A] = "A", [Z_AAAA] = "AAAA", [Z_MX] = "MX", [Z_PTR] = "PTR",
	[Z_TXT] = "TXT", [Z_SPF] = "SPF", [Z_CNAME] = "CNAME",
};

struct zrec {
	size_t owner; /* index into names */
	enum ztype type;
	uint8_t addr[16];
	uint16_t pref;
	char *target;   /* MX exchange, PTR, CNAME: lowercase, no trailing dot */
	uint8_t *txt;   /* TXT/SPF: strings concatenated, NUL-terminated */
	size_t txtlen;
	size_t *slen;   /* length of each character-string */
	unsigned nstrings;
};

struct zname {
	char *name; /* lowercase, no trailing dot */
	bool timeout;
	bool has_txt; /* TXT items (NONE included): SPF items are not mirrored */
};

struct spfz_zone {
	struct zname *names;
	size_t nnames, capnames;
	struct zrec *recs;
	size_t nrecs, caprecs;
};

static char *
lower_dup(const char *s, size_t n)
{
	if (n > 0 && s[n - 1] == '.')
		n--;
	char *d = malloc(n + 1);
	if (!d)
		return NULL;
	for (size_t i = 0; i < n; i++)
		d[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
	d[n] = '\0';
	return d;
}

static const char *
scalar(yaml_node_t *n, size_t *len)
{
	if (!n || n->type != YAML_SCALAR_NODE)
		return NULL;
	if (len)
		*len = n->data.scalar.length;
	return (const char *)n->data.scalar.value;
}

static long
find_name(const struct spfz_zone *z, const char *name)
{
	for (size_t i = 0; i < z->nnames; i++)
		if (strcmp(z->names[i].name, name) == 0)
			return (long)i;
	return -1;
}

static struct zrec *
add_rec(struct spfz_zone *z, size_t owner, enum ztype type)
{
	if (z->nrecs == z->caprecs) {
		size_t cap = z->caprecs ? z->caprecs * 2 : 32;
		struct zrec *n = realloc(z->recs, cap * sizeof(*n));
		if (!n)
			return NULL;
		z->recs = n;
		z->caprecs = cap;
	}
	struct zrec *r = &z->recs[z->nrecs++];
	memset(r, 0, sizeof(*r));
	r->owner = owner;
	r->type = type;
	return r;
}

/* TXT/SPF value: a string (one character-string) or a list of strings. */
static int
set_txt(yaml_document_t *doc, yaml_node_t *v, struct zrec *r)
{
	size_t total = 0, n = 0;
	if (v->type == YAML_SCALAR_NODE) {
		total = v->data.scalar.length;
		n = 1;
	} else if (v->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *it = v->data.sequence.items.start;
		     it < v->data.sequence.items.top; it++) {
			size_t l;
			if (!scalar(yaml_document_get_node(doc, *it), &l))
				return -1;
			total += l;
			n++;
		}
	} else {
		return -1;
	}
	r->txt = malloc(total + 1);
	r->slen = calloc(n ? n : 1, sizeof(size_t));
	if (!r->txt || !r->slen)
		return -1;
	r->txtlen = total;
	r->nstrings = (unsigned)n;
	if (v->type == YAML_SCALAR_NODE) {
		memcpy(r->txt, v->data.scalar.value, total);
		r->slen[0] = total;
	} else {
		size_t off = 0, k = 0;
		for (yaml_node_item_t *it = v->data.sequence.items.start;
		     it < v->data.sequence.items.top; it++, k++) {
			size_t l = 0;
			const char *s = scalar(yaml_document_get_node(doc, *it), &l);
			memcpy(r->txt + off, s, l);
			r->slen[k] = l;
			off += l;
		}
	}
	r->txt[total] = '\0';
	return 0;
}

static int
add_item(struct spfz_zone *z, yaml_document_t *doc, size_t owner, yaml_node_t *item, char *why,
	 size_t whylen)
{
	size_t l;
	const char *s = scalar(item, &l);
	if (s) {
		if (l == 7 && memcmp(s, "TIMEOUT", 7) == 0) {
			z->names[owner].timeout = true;
			return 0;
		}
		snprintf(why, whylen, "unknown zone item '%.*s'", (int)l, s);
		return -1;
	}
	if (!item || item->type != YAML_MAPPING_NODE ||
	    item->data.mapping.pairs.top - item->data.mapping.pairs.start != 1) {
		snprintf(why, whylen, "zone item is not a one-key map");
		return -1;
	}
	yaml_node_pair_t *p = item->data.mapping.pairs.start;
	const char *tname = scalar(yaml_document_get_node(doc, p->key), NULL);
	yaml_node_t *v = yaml_document_get_node(doc, p->value);
	int t = -1;
	for (int k = 0; tname && k <= Z_CNAME; k++)
		if (strcmp(tname, ztype_names[k]) == 0)
			t = k;
	if (t < 0 || !v) {
		snprintf(why, whylen, "unknown record type '%s'", tname ? tname : "?");
		return -1;
	}
	if (t == Z_TXT) {
		z->names[owner].has_txt = true;
		const char *sv = scalar(v, &l);
		if (sv && l == 4 && memcmp(sv, "NONE", 4) == 0)
			/* the suite's "TXT: NONE": no TXT record at this name, and
			 * its SPF records are not mirrored into TXT */
			return 0;
	}
	struct zrec *r = add_rec(z, owner, (enum ztype)t);
	if (!r)
		goto oom;
	switch (r->type) {
	case Z_TXT:
	case Z_SPF:
		if (set_txt(doc, v, r) != 0)
			goto bad;
		return 0;
	case Z_A:
	case Z_AAAA: {
		const char *sv = scalar(v, NULL);
		if (!sv || inet_pton(r->type == Z_A ? AF_INET : AF_INET6, sv, r->addr) != 1)
			goto bad;
		return 0;
	}
	case Z_PTR:
	case Z_CNAME: {
		const char *sv = scalar(v, &l);
		if (!sv || !(r->target = lower_dup(sv, l)))
			goto bad;
		return 0;
	}
	case Z_MX: {
		if (v->type != YAML_SEQUENCE_NODE ||
		    v->data.sequence.items.top - v->data.sequence.items.start != 2)
			goto bad;
		const char *ps = scalar(yaml_document_get_node(doc, v->data.sequence.items.start[0]),
					NULL);
		const char *hs = scalar(yaml_document_get_node(doc, v->data.sequence.items.start[1]),
					&l);
		if (!ps || !hs || !(r->target = lower_dup(hs, l)))
			goto bad;
		r->pref = (uint16_t)strtoul(ps, NULL, 10);
		return 0;
	}
	}
bad:
	snprintf(why, whylen, "malformed %s value", ztype_names[t]);
	return -1;
oom:
	snprintf(why, whylen, "out of memory");
	return -1;
}

struct spfz_zone *
spfz_from_yaml(yaml_document_t *doc, yaml_node_t *zonedata, char *why, size_t whylen)
{
	struct spfz_zone *z = calloc(1, sizeof(*z));
	if (!z) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	if (!zonedata)
		return z;
	if (zonedata->type != YAML_MAPPING_NODE) {
		snprintf(why, whylen, "zonedata is not a mapping");
		goto fail;
	}
	for (yaml_node_pair_t *p = zonedata->data.mapping.pairs.start;
	     p < zonedata->data.mapping.pairs.top; p++) {
		size_t l;
		const char *name = scalar(yaml_document_get_node(doc, p->key), &l);
		yaml_node_t *list = yaml_document_get_node(doc, p->value);
		if (!name || !list || list->type != YAML_SEQUENCE_NODE) {
			snprintf(why, whylen, "zonedata entry is not name -> list");
			goto fail;
		}
		char *lname = lower_dup(name, l);
		if (!lname)
			goto oom;
		long idx = find_name(z, lname);
		if (idx < 0) {
			if (z->nnames == z->capnames) {
				size_t cap = z->capnames ? z->capnames * 2 : 16;
				struct zname *n = realloc(z->names, cap * sizeof(*n));
				if (!n) {
					free(lname);
					goto oom;
				}
				z->names = n;
				z->capnames = cap;
			}
			idx = (long)z->nnames++;
			z->names[idx] = (struct zname){.name = lname};
		} else {
			free(lname);
		}
		for (yaml_node_item_t *it = list->data.sequence.items.start;
		     it < list->data.sequence.items.top; it++)
			if (add_item(z, doc, (size_t)idx, yaml_document_get_node(doc, *it), why,
				     whylen) != 0)
				goto fail;
	}
	return z;
oom:
	snprintf(why, whylen, "out of memory");
fail:
	spfz_free(z);
	return NULL;
}

void
spfz_free(struct spfz_zone *z)
{
	if (!z)
		return;
	for (size_t i = 0; i < z->nrecs; i++) {
		free(z->recs[i].target);
		free(z->recs[i].txt);
		free(z->recs[i].slen);
	}
	for (size_t i = 0; i < z->nnames; i++)
		free(z->names[i].name);
	free(z->recs);
	free(z->names);
	free(z);
}

void
spfz_answer_free(struct ws_dns_answer *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->count; i++) {
		struct ws_dns_rr *rr = &a->rrs[i];
		if (rr->type == WS_DNS_TXT)
			free(rr->u.txt.data);
		else if (rr->type == WS_DNS_MX)
			free(rr->u.mx.host);
		else if (rr->type == WS_DNS_PTR || rr->type == WS_DNS_CNAME)
			free(rr->u.name);
	}
	free(a->rrs);
	a->rrs = NULL;
	a->count = 0;
}

/* A name with an empty label or a label over 63 octets cannot be asked. */
static bool
askable(const char *s)
{
	size_t lab = 0, n = strlen(s);
	if (n == 0)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (lab == 0 || lab > 63)
				return false;
			lab = 0;
		} else {
			lab++;
		}
	}
	return true;
}

static bool
rec_answers(const struct spfz_zone *z, const struct zrec *r, size_t owner, enum ws_dns_type qt)
{
	if (r->owner != owner)
		return false;
	switch (qt) {
	case WS_DNS_A: return r->type == Z_A;
	case WS_DNS_AAAA: return r->type == Z_AAAA;
	case WS_DNS_MX: return r->type == Z_MX;
	case WS_DNS_PTR: return r->type == Z_PTR;
	case WS_DNS_CNAME: return r->type == Z_CNAME;
	case WS_DNS_TXT: return z->names[owner].has_txt ? r->type == Z_TXT : r->type == Z_SPF;
	}
	return false;
}

static char *
str_dup(const char *s)
{
	size_t n = strlen(s);
	char *d = malloc(n + 1);
	if (d)
		memcpy(d, s, n + 1);
	return d;
}

static int
fill(const struct spfz_zone *z, size_t owner, enum ws_dns_type qt, struct ws_dns_answer *out)
{
	size_t n = 0;
	for (size_t i = 0; i < z->nrecs; i++)
		n += rec_answers(z, &z->recs[i], owner, qt);
	out->rrs = calloc(n, sizeof(*out->rrs));
	if (!out->rrs)
		return -1;
	for (size_t i = 0; i < z->nrecs; i++) {
		const struct zrec *r = &z->recs[i];
		if (!rec_answers(z, r, owner, qt))
			continue;
		struct ws_dns_rr *rr = &out->rrs[out->count++];
		rr->type = qt;
		switch (qt) {
		case WS_DNS_A: memcpy(rr->u.a, r->addr, 4); break;
		case WS_DNS_AAAA: memcpy(rr->u.aaaa, r->addr, 16); break;
		case WS_DNS_MX:
			rr->u.mx.pref = r->pref;
			if (!(rr->u.mx.host = str_dup(r->target)))
				return -1;
			break;
		case WS_DNS_PTR:
		case WS_DNS_CNAME:
			if (!(rr->u.name = str_dup(r->target)))
				return -1;
			break;
		case WS_DNS_TXT:
			if (!(rr->u.txt.data = malloc(r->txtlen + 1)))
				return -1;
			memcpy(rr->u.txt.data, r->txt, r->txtlen + 1);
			rr->u.txt.len = r->txtlen;
			rr->u.txt.nstrings = r->nstrings;
			break;
		}
	}
	out->status = WS_DNS_OK;
	out->rcode = 0;
	return 0;
}

int
spfz_resolve(const struct spfz_zone *z, const char *qname, enum ws_dns_type qt,
	     struct ws_dns_answer *out)
{
	memset(out, 0, sizeof(*out));
	out->ttl = 300;
	char *name = lower_dup(qname, strlen(qname));
	if (!name)
		return -1;
	int rc = 0;
	if (!askable(name)) {
		out->status = WS_DNS_NODATA;
		goto done;
	}
	for (int hop = 0; hop <= SPFZ_MAX_CNAME_CHAIN; hop++) {
		long idx = find_name(z, name);
		if (idx < 0) {
			out->status = WS_DNS_NXDOMAIN;
			out->rcode = 3;
			goto done;
		}
		size_t n = 0;
		const char *cname = NULL;
		for (size_t i = 0; i < z->nrecs; i++) {
			n += rec_answers(z, &z->recs[i], (size_t)idx, qt);
			if (z->recs[i].owner == (size_t)idx && z->recs[i].type == Z_CNAME)
				cname = z->recs[i].target;
		}
		if (n > 0) {
			if (fill(z, (size_t)idx, qt, out) != 0) {
				spfz_answer_free(out);
				rc = -1;
			}
			goto done;
		}
		if (cname && qt != WS_DNS_CNAME) {
			char *next = str_dup(cname);
			if (!next) {
				rc = -1;
				goto done;
			}
			free(name);
			name = next;
			continue;
		}
		out->status = z->names[idx].timeout ? WS_DNS_TEMPFAIL : WS_DNS_NODATA;
		out->rcode = z->names[idx].timeout ? -1 : 0;
		if (z->names[idx].timeout)
			snprintf(out->why, sizeof(out->why), "timeout");
		goto done;
	}
	/* a CNAME loop: what a recursive resolver reports as SERVFAIL */
	out->status = WS_DNS_TEMPFAIL;
	out->rcode = 2;
	snprintf(out->why, sizeof(out->why), "CNAME chain longer than %d", SPFZ_MAX_CNAME_CHAIN);
done:
	free(name);
	return rc;
}

/* ---- master-file text ---- */

static int
emit_name(FILE *f, const char *s, const char *suffix)
{
	if (!s[0] && !suffix)
		return fputs(".", f) < 0 ? -1 : 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int c = *p;
		bool plain = !spfz_char_needs_escape(c);
		if ((plain ? fputc(c, f) : fprintf(f, "\\%03d", c)) < 0)
			return -1;
	}
	if (suffix && fprintf(f, "%s%s", s[0] ? "." : "", suffix) < 0)
		return -1;
	return fputc('.', f) < 0 ? -1 : 0;
}

static int
emit_txt(FILE *f, const struct zrec *r)
{
	size_t off = 0;
	if (r->nstrings == 0) /* an RR with no character-string at all (null-text) */
		return fputs(" \\# 0", f) < 0 ? -1 : 0;
	for (unsigned k = 0; k < r->nstrings; k++) {
		size_t len = r->slen[k];
		/* a character-string holds at most 255 octets */
		do {
			size_t chunk = len > 255 ? 255 : len;
			fputs(" \"", f);
			for (size_t i = 0; i < chunk; i++) {
				unsigned char c = r->txt[off + i];
				if (c == '"' || c == '\\')
					fprintf(f, "\\%c", c);
				else if (c < 0x20 || c > 0x7e)
					fprintf(f, "\\%03d", c);
				else
					fputc(c, f);
			}
			if (fputc('"', f) < 0)
				return -1;
			off += chunk;
			len -= chunk;
		} while (len > 0);
	}
	return 0;
}

bool
spfz_char_needs_escape(int c)
{
	/* RFC 1035 5.1: blanks, quotes, parentheses, ';', '\\', and '@'/'$' (origin,
	 * control entries) mean something in a master file; so do bytes outside
	 * printable ASCII. Everything else (':', '/', '%', ...) is a plain name
	 * character there. */
	return c <= 0x20 || c >= 0x7f || c == '"' || c == '(' || c == ')' || c == ';' ||
	       c == '\\' || c == '@' || c == '$';
}

bool
spfz_name_needs_escape(const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (spfz_char_needs_escape(*p))
			return true;
	return false;
}

/* Would name with the suffix still be a valid name (<= 253 octets)? */
static bool
fits(const char *name, const char *suffix)
{
	return !suffix || strlen(name) + 1 + strlen(suffix) <= 253;
}

const char *
spfz_timeout_name(const struct spfz_zone *z, size_t i)
{
	for (size_t k = 0; k < z->nnames; k++)
		if (z->names[k].timeout && i-- == 0)
			return z->names[k].name;
	return NULL;
}

/* Is name equal to anc or below it? */
static bool
at_or_below(const char *name, const char *anc)
{
	size_t n = strlen(name), t = strlen(anc);
	if (n == t)
		return strcasecmp(name, anc) == 0;
	return n > t && name[n - t - 1] == '.' && strcasecmp(name + n - t, anc) == 0;
}

static bool
below_timeout(const struct spfz_zone *z, const char *name)
{
	for (size_t k = 0; k < z->nnames; k++)
		if (z->names[k].timeout && strcasecmp(name, z->names[k].name) != 0 &&
		    at_or_below(name, z->names[k].name))
			return true;
	return false;
}

const char *
spfz_below_timeout_name(const struct spfz_zone *z, size_t i)
{
	for (size_t k = 0; k < z->nnames; k++)
		if (!z->names[k].timeout && askable(z->names[k].name) &&
		    below_timeout(z, z->names[k].name) && i-- == 0)
			return z->names[k].name;
	return NULL;
}

bool
spfz_blackholed(const struct spfz_zone *z, const char *name)
{
	size_t best = 0;
	bool bh = false;
	for (size_t k = 0; k < z->nnames; k++) {
		const struct zname *zn = &z->names[k];
		if (!zn->timeout && !below_timeout(z, zn->name))
			continue; /* no forward-zone of its own */
		size_t len = strlen(zn->name);
		if (len >= best && at_or_below(name, zn->name)) {
			best = len;
			bh = zn->timeout;
		}
	}
	return bh;
}

int
spfz_emit(const struct spfz_zone *z, FILE *f, const char *suffix, unsigned flags)
{
	fputs("; SPF conformance scenario (generated by spf_suite --emit-zones)\n$TTL 300\n", f);
	for (size_t i = 0; i < z->nnames; i++) {
		const struct zname *zn = &z->names[i];
		if (!askable(zn->name)) {
			fprintf(f, "; unusable owner name (empty or over-long label): %s\n", zn->name);
			continue;
		}
		if ((flags & SPFZ_EMIT_NO_ESCAPES) && spfz_name_needs_escape(zn->name)) {
			fprintf(f, "; owner name needs an escape: %s\n", zn->name);
			continue;
		}
		if (!fits(zn->name, suffix)) {
			fprintf(f, "; too long with the suffix %s: %s\n", suffix, zn->name);
			continue;
		}
		if (zn->timeout) {
			fputs("; TIMEOUT (queries without data here must time out): ", f);
			emit_name(f, zn->name, suffix);
			fputc('\n', f);
		}
		for (size_t k = 0; k < z->nrecs; k++) {
			const struct zrec *r = &z->recs[k];
			if (r->owner != i || (r->type == Z_SPF && zn->has_txt))
				continue;
			if (r->target && (flags & SPFZ_EMIT_NO_ESCAPES) &&
			    spfz_name_needs_escape(r->target)) {
				fprintf(f, "; target needs an escape: %s\n", r->target);
				continue;
			}
			if (r->target && !fits(r->target, suffix)) {
				fprintf(f, "; target too long with the suffix %s: %s\n", suffix,
					r->target);
				continue;
			}
			if (emit_name(f, zn->name, suffix) != 0)
				return -1;
			fputs(" IN ", f);
			char buf[64];
			switch (r->type) {
			case Z_A:
				fprintf(f, "A %s", inet_ntop(AF_INET, r->addr, buf, sizeof(buf)));
				break;
			case Z_AAAA:
				fprintf(f, "AAAA %s", inet_ntop(AF_INET6, r->addr, buf, sizeof(buf)));
				break;
			case Z_MX:
				fprintf(f, "MX %u ", r->pref);
				emit_name(f, r->target, suffix);
				break;
			case Z_PTR:
			case Z_CNAME:
				fprintf(f, "%s ", ztype_names[r->type]);
				emit_name(f, r->target, suffix);
				break;
			case Z_TXT:
			case Z_SPF: /* RR type 99 is gone (RFC 7208): served as TXT */
				fputs("TXT", f);
				emit_txt(f, r);
				break;
			}
			if (fputc('\n', f) < 0)
				return -1;
		}
	}
	return ferror(f) ? -1 : 0;
}
