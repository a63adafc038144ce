/* wireseal: hot-path (tools/check-source.sh: no malloc/free or printf family here) */
#include "flow.h"

#include <stdio.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_thash.h>

#define NIL UINT32_MAX

struct flow_table {
	struct rte_hash *h;
	struct flow_entry *e; /* nslots entries, indexed by hash key position */
	uint32_t nslots, capacity;
	uint32_t head, tail; /* oldest .. newest activity */
	uint32_t awake;      /* first entry not yet trimmed: [head, awake) are quiet */
	struct flow_table_config cfg;
	struct flow_counters c;
};

bool
flow_key_make(const uint8_t src[16], uint16_t sport, const uint8_t dst[16], uint16_t dport,
              struct flow_key *k)
{
	int cmp = memcmp(src, dst, 16);
	bool lo = cmp < 0 || (cmp == 0 && sport <= dport);
	memcpy(k->ip_lo, lo ? src : dst, 16);
	memcpy(k->ip_hi, lo ? dst : src, 16);
	k->port_lo = lo ? sport : dport;
	k->port_hi = lo ? dport : sport;
	k->zero = 0;
	return lo;
}

uint32_t
flow_key_hash(const struct flow_key *k)
{
	return rte_hash_crc(k, sizeof(*k), 0x5eed);
}

void
flow_rss_key(uint8_t *key, size_t len)
{
	for (size_t i = 0; i < len; i++)
		key[i] = i % 2 ? 0x5a : 0x6d;
}

static uint32_t
be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint32_t
flow_rss_hash(const uint8_t src[16], uint16_t sport, const uint8_t dst[16], uint16_t dport)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	uint8_t key[FLOW_RSS_KEY_LEN];
	flow_rss_key(key, sizeof(key));
	/* rte_softrss takes the tuple as host-order 32-bit words: addresses,
	 * then sport in the high half of the last word */
	uint32_t t[9];
	unsigned n = 0;
	if (memcmp(src, mapped, 12) == 0 && memcmp(dst, mapped, 12) == 0) {
		t[n++] = be32_at(src + 12);
		t[n++] = be32_at(dst + 12);
	} else {
		for (unsigned i = 0; i < 16; i += 4)
			t[n++] = be32_at(src + i);
		for (unsigned i = 0; i < 16; i += 4)
			t[n++] = be32_at(dst + i);
	}
	t[n++] = (uint32_t)sport << 16 | dport;
	return rte_softrss(t, n, key);
}

struct flow_table *
flow_table_new(const struct flow_table_config *cfg, char *why, size_t why_len)
{
	if (cfg->capacity < FLOW_MIN_CAPACITY || cfg->capacity > FLOW_MAX_CAPACITY) {
		snprintf(why, why_len, "flow capacity %u out of range [%u, %u]", cfg->capacity,
		         FLOW_MIN_CAPACITY, FLOW_MAX_CAPACITY);
		return NULL;
	}
	struct flow_table *t = rte_zmalloc_socket("flow_table", sizeof(*t), 64, cfg->socket);
	if (!t)
		goto nomem;
	t->cfg = *cfg;
	t->capacity = cfg->capacity;
	/* the hash hands out key positions below its entry count; the
	 * extendable bucket table keeps an insert from failing on a full
	 * cuckoo bucket before the table holds capacity keys */
	struct rte_hash_parameters hp = {
	        .name = cfg->name,
	        .entries = cfg->capacity,
	        .key_len = sizeof(struct flow_key),
	        .hash_func = rte_hash_crc,
	        .hash_func_init_val = 0x5eed,
	        .socket_id = cfg->socket,
	        .extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	t->h = rte_hash_create(&hp);
	if (!t->h) {
		snprintf(why, why_len, "rte_hash_create(%s): %s", cfg->name,
		         rte_strerror(rte_errno));
		goto fail;
	}
	t->nslots = cfg->capacity + 1;
	t->e = rte_zmalloc_socket("flow_entries", sizeof(*t->e) * t->nslots, 64, cfg->socket);
	if (!t->e)
		goto nomem;
	t->head = t->tail = t->awake = NIL;
	return t;
nomem:
	snprintf(why, why_len, "out of DPDK memory for %u flows", cfg->capacity);
fail:
	if (t) {
		rte_hash_free(t->h);
		rte_free(t);
	}
	return NULL;
}

static void
unlink_entry(struct flow_table *t, struct flow_entry *e)
{
	if (t->awake == (uint32_t)(e - t->e))
		t->awake = e->next;
	if (e->prev != NIL)
		t->e[e->prev].next = e->next;
	else
		t->head = e->next;
	if (e->next != NIL)
		t->e[e->next].prev = e->prev;
	else
		t->tail = e->prev;
	e->prev = e->next = NIL;
}

static void
append(struct flow_table *t, struct flow_entry *e)
{
	uint32_t slot = (uint32_t)(e - t->e);
	e->prev = t->tail;
	e->next = NIL;
	if (t->tail != NIL)
		t->e[t->tail].next = slot;
	else
		t->head = slot;
	t->tail = slot;
	if (t->awake == NIL)
		t->awake = slot;
}

void
flow_end(struct flow_table *t, struct flow_entry *e, const char *reason)
{
	if (!e->live)
		return;
	if (t->cfg.on_end)
		t->cfg.on_end(t->cfg.arg, e, reason);
	unlink_entry(t, e);
	rte_hash_del_key(t->h, &e->key);
	e->live = false;
	e->user = NULL;
	t->c.ended++;
	t->c.active--;
}

void
flow_end_all(struct flow_table *t, const char *reason)
{
	while (t->head != NIL)
		flow_end(t, &t->e[t->head], reason);
}

void
flow_table_free(struct flow_table *t, const char *reason)
{
	if (!t)
		return;
	flow_end_all(t, reason ? reason : "capture-end");
	rte_hash_free(t->h);
	rte_free(t->e);
	rte_free(t);
}

static struct flow_entry *
at(struct flow_table *t, int32_t pos)
{
	if (pos < 0 || (uint32_t)pos >= t->nslots || !t->e[pos].live)
		return NULL;
	return &t->e[pos];
}

void
flow_lookup_bulk(struct flow_table *t, const struct flow_key *const *keys, unsigned n,
                 struct flow_entry **out)
{
	int32_t pos[FLOW_BULK];
	if (n > FLOW_BULK)
		n = FLOW_BULK;
	if (rte_hash_lookup_bulk(t->h, (const void **)(uintptr_t)keys, n, pos) != 0) {
		for (unsigned i = 0; i < n; i++)
			out[i] = flow_lookup(t, keys[i]);
		return;
	}
	for (unsigned i = 0; i < n; i++)
		out[i] = at(t, pos[i]);
}

struct flow_entry *
flow_lookup(struct flow_table *t, const struct flow_key *k)
{
	return at(t, rte_hash_lookup(t->h, k));
}

struct flow_entry *
flow_insert(struct flow_table *t, const struct flow_key *k, uint64_t now_ns)
{
	if (t->c.active >= t->capacity && t->head != NIL) {
		t->c.evicted++;
		flow_end(t, &t->e[t->head], "evicted");
	}
	int32_t pos = rte_hash_add_key(t->h, k);
	if (pos == -ENOSPC && t->head != NIL) {
		t->c.evicted++;
		flow_end(t, &t->e[t->head], "evicted");
		pos = rte_hash_add_key(t->h, k);
	}
	if (pos < 0 || (uint32_t)pos >= t->nslots) {
		if (pos >= 0)
			rte_hash_del_key(t->h, k);
		t->c.insert_failed++;
		return NULL;
	}
	struct flow_entry *e = &t->e[pos];
	memset(e, 0, sizeof(*e));
	e->key = *k;
	e->live = true;
	e->last_ns = now_ns;
	append(t, e);
	t->c.created++;
	if (++t->c.active > t->c.peak)
		t->c.peak = t->c.active;
	return e;
}

void
flow_touch(struct flow_table *t, struct flow_entry *e, uint64_t now_ns)
{
	/* capture time can step back (merged captures, reordering): the list
	 * order is by arrival, last_ns never goes backwards */
	if (now_ns > e->last_ns)
		e->last_ns = now_ns;
	if (t->tail == (uint32_t)(e - t->e)) {
		if (t->awake == NIL) /* the tail was quiet: it is awake again */
			t->awake = t->tail;
		return;
	}
	unlink_entry(t, e);
	append(t, e);
}

unsigned
flow_expire(struct flow_table *t, uint64_t now_ns, unsigned max)
{
	unsigned n = 0;
	if (!t->cfg.idle_ns)
		return 0;
	while (n < max && t->head != NIL) {
		struct flow_entry *e = &t->e[t->head];
		if (now_ns < e->last_ns || now_ns - e->last_ns <= t->cfg.idle_ns)
			break;
		t->c.idle++;
		flow_end(t, e, "idle");
		n++;
	}
	return n;
}

unsigned
flow_trim(struct flow_table *t, uint64_t now_ns, unsigned max)
{
	unsigned n = 0;
	if (!t->cfg.trim_ns)
		return 0;
	while (n < max && t->awake != NIL) {
		struct flow_entry *e = &t->e[t->awake];
		if (now_ns < e->last_ns || now_ns - e->last_ns <= t->cfg.trim_ns)
			break;
		t->awake = e->next;
		if (t->cfg.on_quiet)
			t->cfg.on_quiet(t->cfg.arg, e);
		t->c.trimmed++;
		n++;
	}
	return n;
}

const struct flow_counters *
flow_counters(const struct flow_table *t)
{
	return &t->c;
}
