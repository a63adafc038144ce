/* dpk: the dataplane's asynchronous key cache and parked messages (dpkeys.h). */
#include "dpkeys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cpclient.h"
#include "msgstream.h"

#define DPK_BUCKETS 1024u

enum { E_PENDING, E_DONE };

struct entry {
	struct entry *next;
	uint8_t state;
	enum dkim_key_status st;
	struct dkim_key key; /* FOUND only */
	uint64_t answered_ms, expires_ms;
	char why[160];
	char name[];
};

struct parked {
	struct parked *next;
	struct msgstream_parked *p;
	uint64_t parked_ms, deadline_ms;
	size_t cost;
	struct dp_session_info info;
	struct dp_message_record rec; /* strings point into blob */
	const char **rcpt;
	char blob[];
};

struct dpk {
	struct cpc *cp;
	unsigned slot;
	unsigned max_parked, park_timeout_ms;
	struct entry *bucket[DPK_BUCKETS];
	size_t nkeys;
	uint64_t outstanding;     /* names PENDING */
	struct parked *parked;    /* newest first */
	bool refusing;            /* this message's keys could not be parked */
	bool timing_out;          /* finishing a parked message past its deadline */
	uint64_t next_tag;
	struct dpk_stats st;
	struct cpc_key_answer ans; /* 8 KB: not on the worker's stack */
};

static uint64_t
now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static unsigned
hash_name(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)(*s | 0x20)) * 16777619u;
	return h % DPK_BUCKETS;
}

static struct entry *
find(struct dpk *k, const char *name)
{
	struct entry *e = k->bucket[hash_name(name)];
	while (e && strcasecmp(e->name, name) != 0)
		e = e->next;
	return e;
}

struct dpk *
dpk_new(struct cpc *cp, unsigned slot, unsigned max_parked, unsigned park_timeout_ms)
{
	struct dpk *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->cp = cp;
	k->slot = slot;
	k->max_parked = max_parked ? max_parked : DPK_MAX_PARKED;
	k->park_timeout_ms = park_timeout_ms ? park_timeout_ms : DPK_PARK_TIMEOUT_MS;
	return k;
}

static void
drop_parked(struct dpk *k, struct parked *pk)
{
	k->st.parked_now--;
	k->st.parked_bytes -= pk->cost;
	msgstream_parked_free(pk->p);
	free(pk);
}

void
dpk_free(struct dpk *k)
{
	if (!k)
		return;
	for (unsigned b = 0; b < DPK_BUCKETS; b++)
		for (struct entry *e = k->bucket[b], *n; e; e = n) {
			n = e->next;
			dkim_key_clear(&e->key);
			free(e);
		}
	for (struct parked *pk = k->parked, *n; pk; pk = n) {
		n = pk->next;
		drop_parked(k, pk);
	}
	free(k);
}

/* Room for one more name: stale answers go, then (still full) all answers. */
static void
make_room(struct dpk *k, uint64_t now)
{
	for (int pass = 0; pass < 2 && k->nkeys >= DPK_MAX_KEYS; pass++)
		for (unsigned b = 0; b < DPK_BUCKETS; b++)
			for (struct entry **pe = &k->bucket[b]; *pe;) {
				struct entry *e = *pe;
				if (e->state == E_DONE && (pass == 1 || e->expires_ms <= now)) {
					*pe = e->next;
					dkim_key_clear(&e->key);
					free(e);
					k->nkeys--;
					k->st.evicted++;
				} else {
					pe = &e->next;
				}
			}
}

/* Asks the control plane for name (entry made or reset to PENDING). */
static void
ask(struct dpk *k, const char *name, struct entry *e, uint64_t now)
{
	if (!e) {
		make_room(k, now);
		if (k->nkeys >= DPK_MAX_KEYS)
			return; /* only pending names: the lookup says temperror */
		size_t n = strlen(name);
		e = calloc(1, sizeof(*e) + n + 1);
		if (!e)
			return;
		memcpy(e->name, name, n + 1);
		unsigned b = hash_name(name);
		e->next = k->bucket[b];
		k->bucket[b] = e;
		k->nkeys++;
	} else if (e->state == E_PENDING) {
		return;
	}
	e->state = E_PENDING;
	k->outstanding++;
	k->st.requests++;
	if (cpc_key_ask(k->cp, name, k->slot, ++k->next_tag) != 0) {
		/* not even asked: an answer of our own, so nothing waits forever */
		k->outstanding--;
		e->state = E_DONE;
		e->st = DKIM_KEY_TEMPFAIL;
		dkim_key_clear(&e->key);
		e->answered_ms = now;
		e->expires_ms = now;
		snprintf(e->why, sizeof(e->why), "key request not sent to the control plane");
	}
}

bool
dpk_ready(void *arg, const char *name)
{
	struct dpk *k = arg;
	uint64_t now = now_ms();
	struct entry *e = find(k, name);
	if (e && e->state == E_DONE && e->expires_ms > now) {
		k->st.hits++;
		return true;
	}
	k->st.misses++;
	ask(k, name, e, now);
	if (k->st.parked_now >= k->max_parked || k->st.parked_bytes >= DPK_MAX_PARKED_BYTES) {
		/* no room to park: decide now, this key is temperror */
		k->refusing = true;
		return true;
	}
	return false;
}

enum dkim_key_status
dpk_lookup(void *arg, const char *name, const struct dkim_key **key, const char **why)
{
	struct dpk *k = arg;
	struct entry *e = find(k, name);
	*key = NULL;
	if (e && e->state == E_DONE) {
		/* an answer is used even when stale: it came for this message */
		*key = e->st == DKIM_KEY_FOUND ? &e->key : NULL;
		*why = e->why;
		return e->st;
	}
	if (k->timing_out)
		*why = "parked-timeout: no key answer from the control plane in time";
	else if (k->refusing)
		*why = "key-park-full: key not cached and no room to park the message";
	else
		*why = "key not cached";
	return DKIM_KEY_TEMPFAIL;
}

bool
dpk_message_done(struct dpk *k)
{
	bool r = k->refusing;
	if (r)
		k->st.park_refused++;
	k->refusing = false;
	return r;
}

/* Copies what the record points at into one block owned by the parked entry. */
static struct parked *
copy_rec(const struct dp_message_record *rec)
{
	size_t need = strlen(rec->helo) + strlen(rec->mail_from) + 2;
	for (size_t i = 0; i < rec->nrcpt; i++)
		need += strlen(rec->rcpt[i]) + 1;
	struct parked *pk = calloc(1, sizeof(*pk) + need + rec->nrcpt * sizeof(char *) + 16);
	if (!pk)
		return NULL;
	char *b = pk->blob;
	/* the rcpt vector first (pointer-aligned), then the strings */
	size_t voff = 0;
	uintptr_t al = ((uintptr_t)b + 15u) & ~(uintptr_t)15u;
	pk->rcpt = (const char **)al;
	voff = (size_t)(al - (uintptr_t)b) + rec->nrcpt * sizeof(char *);
	char *s = b + voff;
	pk->info = *rec->info;
	pk->rec = *rec;
	pk->rec.info = &pk->info;
#define DUP(dst, src)                            \
	do {                                     \
		size_t l_ = strlen(src) + 1;     \
		memcpy(s, (src), l_);            \
		(dst) = s;                       \
		s += l_;                         \
	} while (0)
	DUP(pk->rec.helo, rec->helo);
	DUP(pk->rec.mail_from, rec->mail_from);
	for (size_t i = 0; i < rec->nrcpt; i++)
		DUP(pk->rcpt[i], rec->rcpt[i]);
#undef DUP
	pk->rec.rcpt = pk->rcpt;
	pk->cost = DPK_PARKED_COST + rec->header_bytes + need;
	return pk;
}

/* Decides a parked message (its keys answered or its time up) and emits it. */
static void
finish(struct dpk *k, struct parked *pk, dpk_emit_fn emit, void *arg)
{
	msgstream_parked_finish(pk->p, dpk_lookup, k);
	pk->rec.dkim = msgstream_parked_verifier(pk->p);
	pk->rec.arc = msgstream_parked_arc(pk->p);
	pk->rec.hdr = msgstream_parked_header(pk->p);
	emit(arg, &pk->rec);
	drop_parked(k, pk);
}

void
dpk_park(struct dpk *k, const struct dp_message_record *rec, struct msgstream_parked *p,
         dpk_emit_fn emit, void *arg)
{
	struct parked *pk = copy_rec(rec);
	if (!pk) {
		/* no memory to wait: decided now, keys not cached temperror */
		struct dp_message_record r = *rec;
		k->refusing = true;
		msgstream_parked_finish(p, dpk_lookup, k);
		r.dkim = msgstream_parked_verifier(p);
		r.arc = msgstream_parked_arc(p);
		r.hdr = msgstream_parked_header(p);
		emit(arg, &r);
		dpk_message_done(k);
		msgstream_parked_free(p);
		return;
	}
	pk->p = p;
	pk->parked_ms = now_ms();
	pk->deadline_ms = pk->parked_ms + k->park_timeout_ms;
	pk->next = k->parked;
	k->parked = pk;
	k->st.parked++;
	k->st.parked_now++;
	k->st.parked_bytes += pk->cost;
	if (k->st.parked_now > k->st.parked_max)
		k->st.parked_max = k->st.parked_now;
}

uint32_t
dpk_cache_ttl(enum dkim_key_status st, uint32_t ttl)
{
	if (ttl > DPK_MAX_TTL_S)
		ttl = DPK_MAX_TTL_S;
	if (st == DKIM_KEY_TEMPFAIL && ttl > DPK_TEMPFAIL_TTL_S)
		ttl = DPK_TEMPFAIL_TTL_S;
	return ttl;
}

/* One KEY_ANSWER into the cache. */
static void
take(struct dpk *k, const struct cpc_key_answer *a, uint64_t now)
{
	k->st.answers++;
	struct entry *e = find(k, a->name);
	if (!e || e->state != E_PENDING)
		return; /* evicted meanwhile, or answered twice */
	k->outstanding--;
	dkim_key_clear(&e->key);
	memset(&e->key, 0, sizeof(e->key));
	e->st = cpc_key_status(a, &e->key, e->why, sizeof(e->why));
	uint32_t ttl = dpk_cache_ttl(e->st, a->ttl);
	e->state = E_DONE;
	e->answered_ms = now;
	e->expires_ms = now + (uint64_t)ttl * 1000u;
}

/* Whether every key pk needs was answered since it was parked (or is fresh). */
static bool
answered(struct dpk *k, const struct parked *pk, uint64_t now)
{
	const char *name;
	for (size_t i = 0; (name = msgstream_parked_key_name(pk->p, i)) != NULL; i++) {
		const struct entry *e = find(k, name);
		if (!e) /* not even asked (cache full of pending names): no answer will come */
			return now >= pk->deadline_ms;
		if (e->state != E_DONE || (e->expires_ms <= now && e->answered_ms < pk->parked_ms))
			return false;
	}
	return true;
}

static void
poll_once(struct dpk *k, dpk_emit_fn emit, void *arg)
{
	uint64_t now = now_ms();
	while (cpc_key_take(k->cp, k->slot, &k->ans) == 1)
		take(k, &k->ans, now);
	for (struct parked **pp = &k->parked; *pp;) {
		struct parked *pk = *pp;
		bool late = now >= pk->deadline_ms;
		if (!late && !answered(k, pk, now)) {
			pp = &pk->next;
			continue;
		}
		*pp = pk->next;
		k->timing_out = late && !answered(k, pk, now);
		if (k->timing_out)
			k->st.parked_timeout++;
		else
			k->st.finished++;
		finish(k, pk, emit, arg);
		k->timing_out = false;
	}
}

void
dpk_poll(struct dpk *k, bool final, dpk_emit_fn emit, void *arg)
{
	if (!k || (k->outstanding == 0 && !k->parked))
		return;
	poll_once(k, emit, arg);
	while (final && k->parked) {
		usleep(2000);
		poll_once(k, emit, arg);
	}
}

unsigned
dpk_park_timeout_ms(const struct dpk *k)
{
	return k->park_timeout_ms;
}

const struct dpk_stats *
dpk_stats(const struct dpk *k)
{
	return &k->st;
}
