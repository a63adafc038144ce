/* DNS answer cache above ws_dns; see dnscache.h for the model and bounds. */
#include "dnscache.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns.h"

struct centry {
	struct centry *hnext;         /* hash chain */
	struct centry *prev, *next;   /* LRU list: head = most recent */
	enum ws_dns_type type;
	int64_t expires;
	struct ws_dns_answer *ans;
	void *obj;
	void (*obj_free)(void *);
	unsigned hash;
	char name[];
};

struct dnscache {
	struct dnscache_config cfg;
	struct centry **bucket;
	size_t nbuckets;
	struct centry *head, *tail;
	struct dnscache_stats st;
	struct ws_dns_answer *held; /* last uncacheable answer from resolve */
};

static unsigned
hash_key(const char *name, enum ws_dns_type type)
{
	unsigned h = 2166136261u ^ (unsigned)type;
	for (const char *s = name; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch + 32);
		h = (h ^ ch) * 16777619u;
	}
	return h;
}

struct dnscache *
dnscache_new(const struct dnscache_config *cfg)
{
	struct dnscache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (cfg)
		c->cfg = *cfg;
	if (!c->cfg.max_entries)
		c->cfg.max_entries = DNSCACHE_DEFAULT_ENTRIES;
	if (!c->cfg.max_ttl)
		c->cfg.max_ttl = DNSCACHE_DEFAULT_MAX_TTL;
	if (!c->cfg.neg_max_ttl)
		c->cfg.neg_max_ttl = DNSCACHE_DEFAULT_NEG_MAX_TTL;
	/* about two entries per chain when full; a power of two for the mask */
	c->nbuckets = 16;
	while (c->nbuckets < c->cfg.max_entries / 2 && c->nbuckets < ((size_t)1 << 24))
		c->nbuckets <<= 1;
	c->bucket = calloc(c->nbuckets, sizeof(*c->bucket));
	if (!c->bucket) {
		free(c);
		return NULL;
	}
	return c;
}

static void
lru_unlink(struct dnscache *c, struct centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push_front(struct dnscache *c, struct centry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static void
entry_drop_obj(struct centry *e)
{
	if (e->obj && e->obj_free)
		e->obj_free(e->obj);
	e->obj = NULL;
	e->obj_free = NULL;
}

/* Unlink from hash and LRU and free. */
static void
entry_remove(struct dnscache *c, struct centry *e)
{
	struct centry **pp = &c->bucket[e->hash & (c->nbuckets - 1)];
	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	lru_unlink(c, e);
	entry_drop_obj(e);
	ws_dns_answer_free(e->ans);
	free(e);
	c->st.entries--;
}

void
dnscache_free(struct dnscache *c)
{
	if (!c)
		return;
	while (c->head)
		entry_remove(c, c->head);
	ws_dns_answer_free(c->held);
	free(c->bucket);
	free(c);
}

static struct centry *
find(struct dnscache *c, const char *name, enum ws_dns_type type, unsigned h)
{
	for (struct centry *e = c->bucket[h & (c->nbuckets - 1)]; e; e = e->hnext)
		if (e->hash == h && e->type == type && strcasecmp(e->name, name) == 0)
			return e;
	return NULL;
}

/* The fresh entry, or NULL; an expired one is removed on the way. */
static struct centry *
find_fresh(struct dnscache *c, const char *name, enum ws_dns_type type, int64_t now)
{
	struct centry *e = find(c, name, type, hash_key(name, type));
	if (e && now >= e->expires) {
		c->st.expired++;
		entry_remove(c, e);
		return NULL;
	}
	return e;
}

const struct ws_dns_answer *
dnscache_get(struct dnscache *c, const char *name, enum ws_dns_type type, int64_t now)
{
	struct centry *e = find_fresh(c, name, type, now);
	if (!e) {
		c->st.misses++;
		return NULL;
	}
	c->st.hits++;
	lru_unlink(c, e);
	lru_push_front(c, e);
	return e->ans;
}

static char *
dup_str(const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *d = malloc(n + 1);
	if (d)
		memcpy(d, s, n + 1);
	return d;
}

struct ws_dns_answer *
dnscache_answer_copy(const struct ws_dns_answer *a)
{
	struct ws_dns_answer *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	*n = *a;
	n->rrs = NULL;
	n->count = 0;
	if (a->count) {
		n->rrs = calloc(a->count, sizeof(*n->rrs));
		if (!n->rrs)
			goto fail;
	}
	for (size_t i = 0; i < a->count; i++) {
		const struct ws_dns_rr *s = &a->rrs[i];
		struct ws_dns_rr *d = &n->rrs[i];
		*d = *s;
		n->count = i + 1; /* so a failure below frees what was copied */
		switch (s->type) {
		case WS_DNS_MX:
			if (!(d->u.mx.host = dup_str(s->u.mx.host)))
				goto fail;
			break;
		case WS_DNS_PTR:
		case WS_DNS_CNAME:
			if (!(d->u.name = dup_str(s->u.name)))
				goto fail;
			break;
		case WS_DNS_TXT:
			d->u.txt.data = malloc(s->u.txt.len + 1);
			if (!d->u.txt.data)
				goto fail;
			memcpy(d->u.txt.data, s->u.txt.data, s->u.txt.len);
			d->u.txt.data[s->u.txt.len] = '\0';
			break;
		case WS_DNS_A:
		case WS_DNS_AAAA:
			break;
		}
	}
	return n;
fail:
	if (n->count) /* the failed slot holds the source's pointer: clear it */
		memset(&n->rrs[n->count - 1].u, 0, sizeof(n->rrs[0].u));
	ws_dns_answer_free(n);
	return NULL;
}

void
dnscache_answer_free(struct ws_dns_answer *a)
{
	ws_dns_answer_free(a); /* same layout: every pointer is its own allocation */
}

static uint32_t
entry_ttl(const struct dnscache *c, const struct ws_dns_answer *a)
{
	uint32_t ttl = a->ttl;
	uint32_t cap = a->status == WS_DNS_OK ? c->cfg.max_ttl : c->cfg.neg_max_ttl;
	if (ttl > cap)
		ttl = cap;
	if (ttl < c->cfg.min_ttl)
		ttl = c->cfg.min_ttl;
	return ttl;
}

int
dnscache_put(struct dnscache *c, const char *name, enum ws_dns_type type,
	     const struct ws_dns_answer *a, int64_t now)
{
	size_t nlen = strlen(name);
	bool cacheable = a->status == WS_DNS_OK || a->status == WS_DNS_NXDOMAIN ||
			 a->status == WS_DNS_NODATA;
	if (!cacheable || nlen > DNSCACHE_NAME_MAX || a->count > DNSCACHE_MAX_RRS) {
		c->st.uncacheable++;
		return 1;
	}
	unsigned h = hash_key(name, type);
	struct centry *old = find(c, name, type, h);
	if (old)
		entry_remove(c, old);
	struct centry *e = calloc(1, sizeof(*e) + nlen + 1);
	if (!e)
		return -1;
	e->ans = dnscache_answer_copy(a);
	if (!e->ans) {
		free(e);
		return -1;
	}
	memcpy(e->name, name, nlen + 1);
	e->type = type;
	e->hash = h;
	e->expires = now + (int64_t)entry_ttl(c, a);
	while (c->st.entries >= c->cfg.max_entries && c->tail) {
		c->st.evictions++;
		entry_remove(c, c->tail);
	}
	struct centry **b = &c->bucket[h & (c->nbuckets - 1)];
	e->hnext = *b;
	*b = e;
	lru_push_front(c, e);
	c->st.entries++;
	c->st.inserts++;
	return 0;
}

const struct ws_dns_answer *
dnscache_resolve(struct dnscache *c, struct ws_dns *dns, const char *name, enum ws_dns_type type,
		 int64_t now)
{
	const struct ws_dns_answer *hit = dnscache_get(c, name, type, now);
	if (hit)
		return hit;
	struct ws_dns_answer *a = ws_dns_query(dns, name, type);
	if (!a)
		return NULL;
	int r = dnscache_put(c, name, type, a, now);
	if (r == 0) {
		ws_dns_answer_free(a);
		struct centry *e = find(c, name, type, hash_key(name, type));
		return e->ans; /* just inserted: at the head */
	}
	if (r < 0) {
		ws_dns_answer_free(a);
		return NULL;
	}
	ws_dns_answer_free(c->held);
	c->held = a;
	return a;
}

int
dnscache_attach(struct dnscache *c, const char *name, enum ws_dns_type type, void *obj,
		void (*free_fn)(void *))
{
	struct centry *e = find(c, name, type, hash_key(name, type));
	if (!e)
		return -1;
	entry_drop_obj(e);
	e->obj = obj;
	e->obj_free = free_fn;
	return 0;
}

void *
dnscache_attached(struct dnscache *c, const char *name, enum ws_dns_type type, int64_t now)
{
	struct centry *e = find_fresh(c, name, type, now);
	return e ? e->obj : NULL;
}

void
dnscache_stats(const struct dnscache *c, struct dnscache_stats *out)
{
	*out = c->st;
}
