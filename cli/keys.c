#include "keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns.h"

#define KEYCACHE_BUCKETS 1024u

struct key_entry {
	struct key_entry *next;
	enum dkim_key_status st;
	struct dkim_key key;
	char why[160];
	char name[];
};

struct keycache {
	keycache_fetch_fn fetch;
	void *arg;
	struct key_entry *bucket[KEYCACHE_BUCKETS];
	unsigned long queries;
};

static enum dkim_key_status fetch_dns(void *arg, const char *name, struct dkim_key *key,
				      char *why, size_t whylen);

struct keycache *
keycache_new_fetch(keycache_fetch_fn fetch, void *arg)
{
	struct keycache *kc = calloc(1, sizeof(*kc));
	if (kc) {
		kc->fetch = fetch;
		kc->arg = arg;
	}
	return kc;
}

struct keycache *
keycache_new(struct ws_dns *dns)
{
	return keycache_new_fetch(fetch_dns, dns);
}

void
keycache_free(struct keycache *kc)
{
	if (!kc)
		return;
	for (size_t b = 0; b < KEYCACHE_BUCKETS; b++) {
		for (struct key_entry *e = kc->bucket[b], *n; e; e = n) {
			n = e->next;
			dkim_key_clear(&e->key);
			free(e);
		}
	}
	free(kc);
}

unsigned long
keycache_queries(const struct keycache *kc)
{
	return kc->queries;
}

static unsigned
hash_name(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)(*s | 0x20)) * 16777619u;
	return h % KEYCACHE_BUCKETS;
}

static enum dkim_key_status
fetch_dns(void *arg, const char *name, struct dkim_key *key, char *ewhy, size_t whylen)
{
	enum dkim_key_status st = DKIM_KEY_TEMPFAIL;
	struct ws_dns_answer *a = ws_dns_query(arg, name, WS_DNS_TXT);
	if (!a) {
		snprintf(ewhy, whylen, "key lookup failed: out of memory");
		return st;
	}
	switch (a->status) {
	case WS_DNS_OK:
		st = DKIM_KEY_INVALID;
		snprintf(ewhy, whylen, "no usable key record");
		for (size_t i = 0; i < a->count; i++) {
			if (a->rrs[i].type != WS_DNS_TXT)
				continue;
			const char *why = NULL;
			if (dkim_key_parse((const char *)a->rrs[i].u.txt.data, a->rrs[i].u.txt.len,
					   key, &why) == 0) {
				st = DKIM_KEY_FOUND;
				break;
			}
			if (i == 0)
				snprintf(ewhy, whylen, "%s", why);
		}
		break;
	case WS_DNS_NXDOMAIN:
	case WS_DNS_NODATA:
		st = DKIM_KEY_MISSING;
		snprintf(ewhy, whylen, "no key for signature (%s)",
			 a->status == WS_DNS_NXDOMAIN ? "NXDOMAIN" : "no TXT record");
		break;
	case WS_DNS_TEMPFAIL:
	case WS_DNS_BOGUS:
		st = DKIM_KEY_TEMPFAIL;
		snprintf(ewhy, whylen, "key lookup failed temporarily (%s)",
			 a->why[0] ? a->why : "DNS error");
		break;
	}
	ws_dns_answer_free(a);
	return st;
}

enum dkim_key_status
keycache_get(struct keycache *kc, const char *name, const struct dkim_key **key, const char **why)
{
	unsigned b = hash_name(name);
	struct key_entry *e = kc->bucket[b];
	while (e && strcasecmp(e->name, name) != 0)
		e = e->next;
	if (!e) {
		size_t n = strlen(name);
		e = calloc(1, sizeof(*e) + n + 1);
		if (!e) {
			*why = "out of memory";
			return DKIM_KEY_TEMPFAIL;
		}
		memcpy(e->name, name, n + 1);
		kc->queries++;
		e->st = kc->fetch(kc->arg, e->name, &e->key, e->why, sizeof(e->why));
		e->next = kc->bucket[b];
		kc->bucket[b] = e;
	}
	*key = e->st == DKIM_KEY_FOUND ? &e->key : NULL;
	*why = e->why;
	return e->st;
}
