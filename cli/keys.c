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
	struct ws_dns *dns;
	struct key_entry *bucket[KEYCACHE_BUCKETS];
	unsigned long queries;
};

struct keycache *
keycache_new(struct ws_dns *dns)
{
	struct keycache *kc = calloc(1, sizeof(*kc));
	if (kc)
		kc->dns = dns;
	return kc;
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

static void
resolve(struct keycache *kc, struct key_entry *e)
{
	kc->queries++;
	struct ws_dns_answer *a = ws_dns_query(kc->dns, e->name, WS_DNS_TXT);
	if (!a) {
		e->st = DKIM_KEY_TEMPFAIL;
		snprintf(e->why, sizeof(e->why), "key lookup failed: out of memory");
		return;
	}
	switch (a->status) {
	case WS_DNS_OK:
		e->st = DKIM_KEY_INVALID;
		snprintf(e->why, sizeof(e->why), "no usable key record");
		for (size_t i = 0; i < a->count; i++) {
			if (a->rrs[i].type != WS_DNS_TXT)
				continue;
			const char *why = NULL;
			if (dkim_key_parse((const char *)a->rrs[i].u.txt.data, a->rrs[i].u.txt.len,
					   &e->key, &why) == 0) {
				e->st = DKIM_KEY_FOUND;
				break;
			}
			if (i == 0)
				snprintf(e->why, sizeof(e->why), "%s", why);
		}
		break;
	case WS_DNS_NXDOMAIN:
	case WS_DNS_NODATA:
		e->st = DKIM_KEY_MISSING;
		snprintf(e->why, sizeof(e->why), "no key for signature (%s)",
			 a->status == WS_DNS_NXDOMAIN ? "NXDOMAIN" : "no TXT record");
		break;
	case WS_DNS_TEMPFAIL:
	case WS_DNS_BOGUS:
		e->st = DKIM_KEY_TEMPFAIL;
		snprintf(e->why, sizeof(e->why), "key lookup failed temporarily (%s)",
			 a->why[0] ? a->why : "DNS error");
		break;
	}
	ws_dns_answer_free(a);
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
		resolve(kc, e);
		e->next = kc->bucket[b];
		kc->bucket[b] = e;
	}
	*key = e->st == DKIM_KEY_FOUND ? &e->key : NULL;
	*why = e->why;
	return e->st;
}
