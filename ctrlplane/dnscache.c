/* DNS answer cache above ws_dns, synchronous and asynchronous; see
 * dnscache.h for the model and bounds. */
#include "dnscache.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dns.h"

const unsigned dnscache_lat_bounds_ms[DNSCACHE_LAT_BUCKETS] = {1, 5, 10, 50, 100, 500, 1000, 5000};

struct waiter {
	dnscache_cb cb;
	void *arg;
	struct waiter *next;
};

/* A lookup's query in flight and who waits for it (not an answer: kept
 * apart from the answers, outside max_entries and the LRU). */
struct pending {
	struct pending *next, *prev;
	struct dnscache *cache;
	enum ws_dns_type type;
	struct waiter *waiters, **wtail;
	unsigned nwaiters;
	struct timespec started;
	char name[];
};

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
	struct pending *pend;       /* lookups' queries in flight */
	int64_t now;                /* the time lookup/process were last told */
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
	dnscache_set_config(c, cfg);
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

void
dnscache_set_config(struct dnscache *c, const struct dnscache_config *cfg)
{
	static const struct dnscache_config defaults = {
		.max_ttl = DNSCACHE_DEFAULT_MAX_TTL,
		.neg_max_ttl = DNSCACHE_DEFAULT_NEG_MAX_TTL,
	};
	size_t nb = c->nbuckets; /* sized once, at creation */
	c->cfg = cfg ? *cfg : defaults;
	if (!c->cfg.max_entries)
		c->cfg.max_entries = DNSCACHE_DEFAULT_ENTRIES;
	c->nbuckets = nb;
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

static void
free_pending(struct pending *p)
{
	struct waiter *w = p->waiters;
	while (w) {
		struct waiter *n = w->next;
		free(w);
		w = n;
	}
	free(p);
}

void
dnscache_free(struct dnscache *c)
{
	if (!c)
		return;
	while (c->head)
		entry_remove(c, c->head);
	while (c->pend) {
		struct pending *p = c->pend;
		c->pend = p->next;
		free_pending(p);
	}
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
	uint32_t cap = a->status == WS_DNS_OK ? c->cfg.max_ttl : c->cfg.neg_max_ttl;
	if (!cacheable || cap == 0 || nlen > DNSCACHE_NAME_MAX || a->count > DNSCACHE_MAX_RRS) {
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

/* The answer's kind in the counters. */
static void
count_answer(struct dnscache *c, const struct ws_dns_answer *a)
{
	if (a->status == WS_DNS_OK) {
		c->st.answers_ok++;
	} else if (a->status == WS_DNS_NXDOMAIN || a->status == WS_DNS_NODATA) {
		c->st.answers_negative++;
	} else {
		c->st.tempfail++;
		if (strstr(a->why, "timeout") || strstr(a->why, "timed out"))
			c->st.timeouts++;
	}
}

const struct ws_dns_answer *
dnscache_resolve(struct dnscache *c, struct ws_dns *dns, const char *name, enum ws_dns_type type,
		 int64_t now)
{
	const struct ws_dns_answer *hit = dnscache_get(c, name, type, now);
	if (hit)
		return hit;
	c->st.queries++;
	struct ws_dns_answer *a = ws_dns_query(dns, name, type);
	if (!a)
		return NULL;
	count_answer(c, a);
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

/* ---- asynchronous ---- */

static struct pending *
find_pending(struct dnscache *c, const char *name, enum ws_dns_type type)
{
	for (struct pending *p = c->pend; p; p = p->next)
		if (p->type == type && strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static void
unlink_pending(struct dnscache *c, struct pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		c->pend = p->next;
	if (p->next)
		p->next->prev = p->prev;
	c->st.pending--;
}

/* The resolver's answer (ours to free) for a lookup: stored (a copy: the
 * waiters' callbacks may change the cache while they run) under the one
 * TTL policy, then handed to every waiter. */
static void
on_answer(void *arg, struct ws_dns_answer *a)
{
	struct pending *p = arg;
	struct dnscache *c = p->cache;
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	double s = (double)(t.tv_sec - p->started.tv_sec) +
		   (double)(t.tv_nsec - p->started.tv_nsec) / 1e9;
	c->st.lat_count++;
	c->st.lat_sum_s += s;
	for (unsigned i = 0; i < DNSCACHE_LAT_BUCKETS; i++)
		if (s * 1000.0 <= dnscache_lat_bounds_ms[i])
			c->st.lat_le[i]++;
	count_answer(c, a);
	unlink_pending(c, p);
	dnscache_put(c, p->name, p->type, a, c->now); /* a failure: used, not kept */
	struct waiter *w = p->waiters;
	p->waiters = NULL;
	while (w) {
		struct waiter *n = w->next;
		w->cb(w->arg, a);
		free(w);
		w = n;
	}
	free_pending(p);
	ws_dns_answer_free(a);
}

int
dnscache_lookup(struct dnscache *c, struct ws_dns *dns, const char *name, enum ws_dns_type type,
		int64_t now, dnscache_cb cb, void *arg, const struct ws_dns_answer **out,
		uint32_t *remaining_ttl)
{
	char lname[DNSCACHE_QUERY_NAME_MAX + 1];
	size_t n = strlen(name);
	if (n > DNSCACHE_QUERY_NAME_MAX) {
		c->st.refused++;
		return -1;
	}
	for (size_t i = 0; i <= n; i++)
		lname[i] = (char)tolower((unsigned char)name[i]);
	if (n && lname[n - 1] == '.')
		lname[--n] = '\0';
	c->now = now;
	struct centry *e = find_fresh(c, lname, type, now);
	if (e) {
		c->st.hits++;
		lru_unlink(c, e);
		lru_push_front(c, e);
		*out = e->ans;
		if (remaining_ttl)
			*remaining_ttl = (uint32_t)(e->expires - now);
		return 1;
	}
	struct waiter *w = malloc(sizeof(*w));
	if (!w) {
		c->st.refused++;
		return -1;
	}
	*w = (struct waiter){.cb = cb, .arg = arg};
	struct pending *p = find_pending(c, lname, type);
	if (p) {
		if (p->nwaiters >= DNSCACHE_MAX_WAITERS) {
			free(w);
			c->st.refused++;
			return -1;
		}
		c->st.coalesced++;
		*p->wtail = w;
		p->wtail = &w->next;
		p->nwaiters++;
		return 0;
	}
	p = calloc(1, sizeof(*p) + n + 1);
	if (!p) {
		free(w);
		c->st.refused++;
		return -1;
	}
	memcpy(p->name, lname, n + 1);
	p->cache = c;
	p->type = type;
	p->waiters = w;
	p->wtail = &w->next;
	p->nwaiters = 1;
	clock_gettime(CLOCK_MONOTONIC, &p->started);
	p->next = c->pend;
	if (c->pend)
		c->pend->prev = p;
	c->pend = p;
	c->st.pending++;
	c->st.misses++;
	c->st.queries++;
	if (ws_dns_query_async(dns, lname, type, on_answer, p) < 0) {
		/* handed to the resolver, which refused it: a query, and refused */
		c->st.refused++;
		unlink_pending(c, p);
		free_pending(p); /* the caller learns it from -1, not from cb */
		return -1;
	}
	return 0;
}

void
dnscache_process(struct dnscache *c, struct ws_dns *dns, int64_t now)
{
	c->now = now;
	ws_dns_process(dns);
}

size_t
dnscache_flush(struct dnscache *c)
{
	size_t n = c->st.entries;
	while (c->head)
		entry_remove(c, c->head);
	return n;
}

static const char *
type_name(enum ws_dns_type t)
{
	switch (t) {
	case WS_DNS_TXT: return "TXT";
	case WS_DNS_A: return "A";
	case WS_DNS_AAAA: return "AAAA";
	case WS_DNS_MX: return "MX";
	case WS_DNS_PTR: return "PTR";
	case WS_DNS_CNAME: return "CNAME";
	}
	return "?";
}

void
dnscache_dump(const struct dnscache *c, int64_t now, FILE *f)
{
	for (const struct centry *e = c->head; e; e = e->next) {
		const char *st = e->ans->status == WS_DNS_OK	  ? "ok"
				 : e->ans->status == WS_DNS_NXDOMAIN ? "nxdomain"
								    : "nodata";
		fprintf(f, "%s %s %s %lld\n", e->name, type_name(e->type), st,
			(long long)(e->expires > now ? e->expires - now : 0));
	}
	for (const struct pending *p = c->pend; p; p = p->next)
		fprintf(f, "%s %s pending 0\n", p->name, type_name(p->type));
}
