/* cpcache: shared, TTL-bounded DNS answers with coalesced queries (see cpcache.h). */
#include "cpcache.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns.h"

#define CPCACHE_BUCKETS 4096u

const unsigned cpcache_lat_bounds_ms[CPCACHE_LAT_BUCKETS] = {1, 5, 10, 50, 100, 500, 1000, 5000};

struct waiter {
	cpcache_cb cb;
	void *arg;
	struct waiter *next;
};

struct entry {
	struct entry *next;            /* hash chain */
	struct entry *prev_all, *next_all; /* every entry, for dump/flush */
	struct cpcache *cache;
	enum ws_dns_type type;
	bool pending;
	int64_t expires;
	struct ws_dns_answer *ans;
	struct waiter *waiters, **wtail;
	unsigned nwaiters;
	struct timespec started;
	char name[];
};

struct cpcache {
	struct ws_dns *dns;
	unsigned max_entries, max_ttl, negative_ttl;
	struct entry *buckets[CPCACHE_BUCKETS];
	struct entry *all;
	int64_t now;
	struct cpcache_stats st;
};

static uint32_t
hash(const char *name, enum ws_dns_type type)
{
	uint32_t h = 2166136261u ^ (uint32_t)type;
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h % CPCACHE_BUCKETS;
}

struct cpcache *
cpcache_new(struct ws_dns *dns, unsigned max_entries, unsigned max_ttl, unsigned negative_ttl)
{
	struct cpcache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->dns = dns;
	cpcache_set_limits(c, max_entries, max_ttl, negative_ttl);
	return c;
}

void
cpcache_set_limits(struct cpcache *c, unsigned max_entries, unsigned max_ttl, unsigned negative_ttl)
{
	c->max_entries = max_entries;
	c->max_ttl = max_ttl;
	c->negative_ttl = negative_ttl;
}

static void
unlink_entry(struct cpcache *c, struct entry *e)
{
	struct entry **pp = &c->buckets[hash(e->name, e->type)];
	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (*pp)
		*pp = e->next;
	if (e->prev_all)
		e->prev_all->next_all = e->next_all;
	else
		c->all = e->next_all;
	if (e->next_all)
		e->next_all->prev_all = e->prev_all;
	c->st.entries--;
}

static void
free_entry(struct entry *e)
{
	struct waiter *w = e->waiters;
	while (w) {
		struct waiter *n = w->next;
		free(w);
		w = n;
	}
	ws_dns_answer_free(e->ans);
	free(e);
}

void
cpcache_free(struct cpcache *c)
{
	if (!c)
		return;
	/* pending entries are still referenced by the resolver's callbacks:
	 * the caller frees the resolver first (which never calls them again) */
	struct entry *e = c->all;
	while (e) {
		struct entry *n = e->next_all;
		free_entry(e);
		e = n;
	}
	free(c);
}

static struct entry *
find(struct cpcache *c, const char *name, enum ws_dns_type type)
{
	for (struct entry *e = c->buckets[hash(name, type)]; e; e = e->next)
		if (e->type == type && strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

static void
expire_some(struct cpcache *c, int64_t now)
{
	struct entry *e = c->all;
	while (e) {
		struct entry *n = e->next_all;
		if (!e->pending && e->expires <= now) {
			unlink_entry(c, e);
			free_entry(e);
		}
		e = n;
	}
}

static void
on_answer(void *arg, struct ws_dns_answer *a)
{
	struct entry *e = arg;
	struct cpcache *c = e->cache;
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	double s = (double)(t.tv_sec - e->started.tv_sec) + (double)(t.tv_nsec - e->started.tv_nsec) / 1e9;
	c->st.lat_count++;
	c->st.lat_sum_s += s;
	for (unsigned i = 0; i < CPCACHE_LAT_BUCKETS; i++)
		if (s * 1000.0 <= cpcache_lat_bounds_ms[i])
			c->st.lat_le[i]++;
	c->st.pending--;
	unsigned ttl;
	if (a->status == WS_DNS_OK) {
		c->st.answers_ok++;
		ttl = a->ttl < c->max_ttl ? a->ttl : c->max_ttl;
	} else if (a->status == WS_DNS_NXDOMAIN || a->status == WS_DNS_NODATA) {
		c->st.answers_negative++;
		ttl = a->ttl < c->negative_ttl ? a->ttl : c->negative_ttl;
	} else {
		c->st.tempfail++;
		if (strstr(a->why, "timeout"))
			c->st.timeouts++;
		ttl = 0;
	}
	e->pending = false;
	e->ans = a;
	e->expires = c->now + ttl;
	/* run the waiters with the entry detached from the waiter list: a
	 * callback may ask the cache again (even for this very name) */
	struct waiter *w = e->waiters;
	e->waiters = NULL;
	e->wtail = &e->waiters;
	e->nwaiters = 0;
	bool keep = ttl > 0 && c->st.entries <= c->max_entries;
	if (!keep)
		unlink_entry(c, e); /* still delivered below, then freed */
	while (w) {
		struct waiter *n = w->next;
		w->cb(w->arg, a);
		free(w);
		w = n;
	}
	if (!keep) {
		if (ttl > 0)
			c->st.not_kept++;
		free_entry(e);
	}
}

int
cpcache_get(struct cpcache *c, const char *name, enum ws_dns_type type, int64_t now, cpcache_cb cb,
       void *arg, const struct ws_dns_answer **out, uint32_t *remaining_ttl)
{
	char lname[CPCACHE_NAME_MAX + 1];
	size_t n = strlen(name);
	if (n > CPCACHE_NAME_MAX) {
		c->st.refused++;
		return -1;
	}
	for (size_t i = 0; i <= n; i++)
		lname[i] = (char)tolower((unsigned char)name[i]);
	if (n && lname[n - 1] == '.')
		lname[n - 1] = '\0';
	c->now = now;
	struct entry *e = find(c, lname, type);
	if (e && !e->pending && e->expires > now) {
		c->st.hits++;
		*out = e->ans;
		if (remaining_ttl)
			*remaining_ttl = (uint32_t)(e->expires - now);
		return 1;
	}
	if (e && !e->pending) { /* expired */
		unlink_entry(c, e);
		free_entry(e);
		e = NULL;
	}
	struct waiter *w = malloc(sizeof(*w));
	if (!w) {
		c->st.refused++;
		return -1;
	}
	w->cb = cb;
	w->arg = arg;
	w->next = NULL;
	if (e) {
		if (e->nwaiters >= CPCACHE_MAX_WAITERS) {
			free(w);
			c->st.refused++;
			return -1;
		}
		c->st.coalesced++;
		*e->wtail = w;
		e->wtail = &w->next;
		e->nwaiters++;
		return 0;
	}
	if (c->st.entries >= c->max_entries)
		expire_some(c, now);
	e = calloc(1, sizeof(*e) + strlen(lname) + 1);
	if (!e) {
		free(w);
		c->st.refused++;
		return -1;
	}
	memcpy(e->name, lname, strlen(lname) + 1);
	e->cache = c;
	e->type = type;
	e->pending = true;
	e->waiters = w;
	e->wtail = &w->next;
	e->nwaiters = 1;
	clock_gettime(CLOCK_MONOTONIC, &e->started);
	uint32_t h = hash(lname, type);
	e->next = c->buckets[h];
	c->buckets[h] = e;
	e->next_all = c->all;
	if (c->all)
		c->all->prev_all = e;
	c->all = e;
	c->st.entries++;
	c->st.pending++;
	c->st.misses++;
	c->st.queries++;
	if (ws_dns_query_async(c->dns, lname, type, on_answer, e) < 0) {
		c->st.pending--;
		c->st.refused++;
		unlink_entry(c, e);
		e->waiters = NULL; /* the caller learns it from -1, not from cb */
		free(w);
		free_entry(e);
		return -1;
	}
	return 0;
}

size_t
cpcache_flush(struct cpcache *c)
{
	size_t n = 0;
	struct entry *e = c->all;
	while (e) {
		struct entry *next = e->next_all;
		if (!e->pending) {
			unlink_entry(c, e);
			free_entry(e);
			n++;
		}
		e = next;
	}
	return n;
}

void
cpcache_process(struct cpcache *c, int64_t now)
{
	c->now = now;
	ws_dns_process(c->dns);
}

const struct cpcache_stats *
cpcache_stats(const struct cpcache *c)
{
	return &c->st;
}

static const char *
status_name(const struct entry *e)
{
	if (e->pending)
		return "pending";
	switch (e->ans->status) {
	case WS_DNS_OK:
		return "ok";
	case WS_DNS_NXDOMAIN:
		return "nxdomain";
	case WS_DNS_NODATA:
		return "nodata";
	default:
		return "tempfail";
	}
}

void
cpcache_dump(const struct cpcache *c, int64_t now, FILE *f)
{
	for (const struct entry *e = c->all; e; e = e->next_all)
		fprintf(f, "%s %s %s %lld\n", e->name,
			e->type == WS_DNS_TXT ? "TXT" : e->type == WS_DNS_A ? "A" :
			e->type == WS_DNS_AAAA ? "AAAA" : e->type == WS_DNS_MX ? "MX" :
			e->type == WS_DNS_PTR ? "PTR" : "CNAME",
			status_name(e), e->pending ? 0LL : (long long)(e->expires - now));
}
