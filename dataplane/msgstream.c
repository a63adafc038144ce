/* msgstream: header block kept, body hashed on the fly; rules in msgstream.h. */
#include "msgstream.h"

#include <stdlib.h>
#include <string.h>

enum { M_IDLE, M_HEADER, M_BODY, M_DRAIN, M_DONE };

/* What a message without ARC fields reports, as arc_validator would. */
static const struct arc_chain no_arc = {.result = ARC_NONE, .reason = "no ARC sets"};

/* ---- the pool (msgstream.h) ---- */

struct msgstream_pool {
	unsigned max;
	struct ws_hash_lanes *lanes; /* the verifiers' body hashes; NULL: OpenSSL */
	unsigned nv, na;
	struct dkim_verifier *v[MSGSTREAM_POOL_MAX];
	struct arc_validator *a[MSGSTREAM_POOL_MAX];
	struct msgstream_pool_stats st;
};

struct msgstream_pool *
msgstream_pool_new(unsigned max)
{
	if (max == 0 || max > MSGSTREAM_POOL_MAX)
		return NULL;
	struct msgstream_pool *p = calloc(1, sizeof(*p));
	if (p)
		p->max = max;
	return p;
}

void
msgstream_pool_free(struct msgstream_pool *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->nv; i++)
		dkim_verifier_free(p->v[i]);
	for (unsigned i = 0; i < p->na; i++)
		arc_validator_free(p->a[i]);
	free(p);
}

void
msgstream_pool_set_lanes(struct msgstream_pool *p, struct ws_hash_lanes *lanes)
{
	p->lanes = lanes;
}

void
msgstream_pool_stats(const struct msgstream_pool *p, struct msgstream_pool_stats *out)
{
	*out = p->st;
	out->held = p->nv + p->na;
}

void
msgstream_set_pool(struct msgstream *m, struct msgstream_pool *p)
{
	m->pool = p;
}

static struct dkim_verifier *
take_verifier(struct msgstream *m)
{
	struct msgstream_pool *p = m->pool;
	if (p && p->nv > 0) {
		struct dkim_verifier *v = p->v[--p->nv];
		dkim_verifier_set_now(v, m->now);
		p->st.reused++;
		return v;
	}
	struct dkim_verify_config cfg = {.now = m->now, .lanes = p ? p->lanes : NULL};
	struct dkim_verifier *v = dkim_verifier_new(&cfg);
	if (v && p)
		p->st.made++;
	return v;
}

static void
give_verifier(struct msgstream_pool *p, struct dkim_verifier *v)
{
	if (!v)
		return;
	if (p && p->nv < p->max) {
		/* nothing of this session's last message may show in the next */
		dkim_verifier_reset(v);
		p->v[p->nv++] = v;
		p->st.pooled++;
		return;
	}
	if (p)
		p->st.freed++;
	dkim_verifier_free(v);
}

void
msgstream_pool_put(struct msgstream_pool *p, struct dkim_verifier *v)
{
	give_verifier(p, v);
}

static void give_validator(struct msgstream_pool *p, struct arc_validator *a);

void
msgstream_pool_put_arc(struct msgstream_pool *p, struct arc_validator *a)
{
	give_validator(p, a);
}

static struct arc_validator *
take_validator(struct msgstream_pool *p)
{
	if (p && p->na > 0) {
		p->st.reused++;
		return p->a[--p->na];
	}
	struct arc_validator *a = arc_validator_new(NULL);
	if (a && p)
		p->st.made++;
	return a;
}

static void
give_validator(struct msgstream_pool *p, struct arc_validator *a)
{
	if (!a)
		return;
	if (p && p->na < p->max) {
		arc_validator_reset(a);
		p->a[p->na++] = a;
		p->st.pooled++;
		return;
	}
	if (p)
		p->st.freed++;
	arc_validator_free(a);
}

/* ---- the stream ---- */

void
msgstream_init(struct msgstream *m, bool verify, int64_t now, msgstream_key_fn key_lookup,
	       void *key_arg)
{
	memset(m, 0, sizeof(*m));
	rfc5322_init(&m->hdr);
	m->verify = verify;
	m->now = now;
	m->key_lookup = key_lookup;
	m->key_arg = key_arg;
	m->state = M_IDLE;
}

void
msgstream_free(struct msgstream *m)
{
	msgstream_trim(m);
	m->state = M_IDLE;
}

void
msgstream_trim(struct msgstream *m)
{
	give_verifier(m->pool, m->v);
	m->v = NULL;
	give_validator(m->pool, m->arc);
	m->arc = NULL;
	m->arc_on = m->arc_done = false;
	rfc5322_free(&m->hdr);
	rfc5322_init(&m->hdr);
	if (m->state == M_DONE)
		m->state = M_IDLE;
}

void
msgstream_begin(struct msgstream *m)
{
	rfc5322_reset(&m->hdr);
	m->state = M_HEADER;
	m->complete = true;
	m->reason = NULL;
	m->header_bytes = m->body_bytes = 0;
	m->arc_on = m->arc_done = false;
	m->keys_pending = false;
	m->jobs_out = false;
	if (m->v)
		/* results of the previous message must not show through */
		dkim_verifier_abort(m->v, "not verified");
}

static bool
ensure_verifier(struct msgstream *m)
{
	if (m->v) {
		dkim_verifier_set_now(m->v, m->now);
		return true;
	}
	m->v = take_verifier(m);
	if (!m->v) {
		m->alloc_fail++;
		return false;
	}
	return true;
}

static bool
has_arc_fields(const struct rfc5322_header *h)
{
	for (size_t i = 0; i < h->nfields; i++)
		if (rfc5322_field_is(h, &h->fields[i], "ARC-Seal", 8) ||
		    rfc5322_field_is(h, &h->fields[i], "ARC-Message-Signature", 21) ||
		    rfc5322_field_is(h, &h->fields[i], "ARC-Authentication-Results", 26))
			return true;
	return false;
}

/* The header block is as complete as it will get: find the signatures. */
static void
start_verifier(struct msgstream *m)
{
	if (m->verify && ensure_verifier(m))
		dkim_verifier_start(m->v, &m->hdr);
	m->arc_on = false;
	if (m->verify && m->complete && has_arc_fields(&m->hdr)) {
		if (!m->arc)
			m->arc = take_validator(m->pool);
		if (m->arc) {
			arc_validator_start(m->arc, &m->hdr);
			m->arc_on = true;
		} else {
			m->alloc_fail++;
		}
	}
}

static const char *
header_error_reason(enum rfc5322_error e)
{
	switch (e) {
	case RFC5322_ERR_FIELD_TOO_LONG:
	case RFC5322_ERR_TOO_MANY:
	case RFC5322_ERR_BLOCK_TOO_BIG:
	case RFC5322_ERR_NOMEM:
		return "memcap";
	default:
		return "malformed-header";
	}
}

/* Something makes the message incomplete: from here on bytes are counted
 * only, and the signatures found end as temperror. */
static void
incomplete(struct msgstream *m, const char *why)
{
	if (m->complete) {
		m->complete = false;
		m->reason = why;
	}
	if (m->state == M_HEADER) {
		/* the fields parsed so far still name the signatures to report */
		if (!m->hdr.done && m->hdr.error == RFC5322_OK)
			rfc5322_finish(&m->hdr);
		start_verifier(m);
	}
	m->state = M_DRAIN;
}

void
msgstream_data(struct msgstream *m, const uint8_t *p, size_t len)
{
	if (m->state == M_HEADER) {
		size_t used = 0;
		enum rfc5322_status st = rfc5322_push(&m->hdr, p, len, &used);
		if (st == RFC5322_ERROR) {
			m->header_bytes += len;
			incomplete(m, header_error_reason(m->hdr.error));
			return;
		}
		if (st == RFC5322_NEED_MORE) {
			m->header_bytes += len;
			return;
		}
		m->header_bytes += used;
		p += used;
		len -= used;
		if (m->verify && !ensure_verifier(m)) {
			incomplete(m, "memcap");
			m->body_bytes += len;
			return;
		}
		start_verifier(m);
		m->state = M_BODY;
	}
	m->body_bytes += len;
	if (m->state == M_BODY && m->verify && len > 0) {
		dkim_verifier_body(m->v, p, len);
		if (m->arc_on)
			arc_validator_body(m->arc, p, len);
	}
}

void
msgstream_gap(struct msgstream *m, uint64_t len)
{
	if (m->state == M_IDLE || m->state == M_DONE)
		return;
	if (m->state == M_HEADER)
		m->header_bytes += len;
	else
		m->body_bytes += len;
	incomplete(m, "capture-gap");
}

/* One key through the configured lookup (never the network). */
static enum dkim_key_status
lookup(struct msgstream *m, const char *name, const struct dkim_key **key, const char **why)
{
	enum dkim_key_status st = DKIM_KEY_TEMPFAIL;
	*key = NULL;
	*why = NULL;
	if (m->key_lookup)
		st = m->key_lookup(m->key_arg, name, key, why);
	else
		*why = "no key lookup configured";
	if (st == DKIM_KEY_FOUND && !*key) {
		st = DKIM_KEY_TEMPFAIL;
		*why = "key lookup gave no key";
	}
	return st;
}

/* The keys of a message whose body ended, through lookup, then the
 * decision. v/arc/arc_on: the message's (in m, or parked). */
static void
dkim_keys(struct dkim_verifier *v, msgstream_key_fn fn, void *arg)
{
	struct msgstream one = {.key_lookup = fn, .key_arg = arg};
	for (size_t i = 0; i < dkim_verifier_count(v); i++) {
		const char *name = dkim_verifier_key_name(v, i);
		if (!name)
			continue;
		const struct dkim_key *key;
		const char *why;
		enum dkim_key_status st = lookup(&one, name, &key, &why);
		dkim_verifier_set_key(v, i, st, key, why);
	}
}

static bool
decide_keys(struct dkim_verifier *v, struct arc_validator *arc, bool arc_on,
	    msgstream_key_fn fn, void *arg)
{
	struct msgstream one = {.key_lookup = fn, .key_arg = arg};
	dkim_keys(v, fn, arg);
	dkim_verifier_finish(v);
	if (!arc_on)
		return false;
	for (size_t k = 0; k < arc_validator_key_slots(arc); k++) {
		const char *name = arc_validator_key_name(arc, k);
		if (!name)
			continue;
		const struct dkim_key *key;
		const char *why;
		enum dkim_key_status st = lookup(&one, name, &key, &why);
		arc_validator_set_key(arc, k, st, key, why);
	}
	arc_validator_finish(arc);
	return true;
}

/* Whether key_ready has every key the message needs (asks for each, so the
 * caller can start fetching all of them at once). */
static bool
keys_ready(struct msgstream *m)
{
	bool all = true;
	for (size_t i = 0; i < dkim_verifier_count(m->v); i++) {
		const char *name = dkim_verifier_key_name(m->v, i);
		if (name && !m->key_ready(m->key_arg, name))
			all = false;
	}
	for (size_t k = 0; m->arc_on && k < arc_validator_key_slots(m->arc); k++) {
		const char *name = arc_validator_key_name(m->arc, k);
		if (name && !m->key_ready(m->key_arg, name))
			all = false;
	}
	return all;
}

static void
decide(struct msgstream *m)
{
	dkim_verifier_body_end(m->v);
	if (m->arc_on)
		arc_validator_body_end(m->arc);
	if (m->key_ready && !keys_ready(m)) {
		m->keys_pending = true; /* msgstream_park takes it from here */
		return;
	}
	if (m->batch && !m->key_ready && !m->arc_on) {
		/* the rest waits for the caller: msgstream_take prepares the
		 * jobs (the stream keeps no job list: an idle session's size) */
		dkim_keys(m->v, m->key_lookup, m->key_arg);
		m->jobs_out = true;
		m->arc_done = false;
		return;
	}
	m->arc_done = decide_keys(m->v, m->arc, m->arc_on, m->key_lookup, m->key_arg);
}

void
msgstream_end(struct msgstream *m, bool clean, const char *why)
{
	if (m->state == M_IDLE || m->state == M_DONE)
		return;
	if (!clean)
		incomplete(m, why ? why : "incomplete");
	if (m->state == M_HEADER) {
		/* a message that is all header block (no empty line, no body) */
		if (rfc5322_finish(&m->hdr) != RFC5322_DONE)
			incomplete(m, header_error_reason(m->hdr.error));
		else {
			start_verifier(m);
			m->state = M_BODY;
		}
	}
	if (m->verify && m->v) {
		if (m->state == M_BODY)
			decide(m);
		else
			dkim_verifier_abort(m->v, m->reason);
	}
	m->state = M_DONE;
}

const struct dkim_verifier *
msgstream_verifier(const struct msgstream *m)
{
	return m->state == M_DONE && m->verify && !m->keys_pending && !m->jobs_out ? m->v : NULL;
}

const struct arc_chain *
msgstream_arc(const struct msgstream *m)
{
	if (m->state != M_DONE || !m->verify || !m->v || !m->complete || m->keys_pending ||
	    m->jobs_out)
		return NULL;
	return m->arc_done ? arc_validator_chain(m->arc) : &no_arc;
}

/* ---- parking (msgstream.h) ---- */

struct msgstream_parked {
	struct rfc5322_header hdr; /* moved here by value: its buffers came along */
	struct dkim_verifier *v;
	struct arc_validator *arc;
	bool arc_on, arc_done, complete;
};

void
msgstream_set_key_ready(struct msgstream *m, msgstream_ready_fn ready)
{
	m->key_ready = ready;
}

bool
msgstream_pending(const struct msgstream *m)
{
	return m->state == M_DONE && m->keys_pending;
}

struct msgstream_parked *
msgstream_park(struct msgstream *m)
{
	if (!msgstream_pending(m))
		return NULL;
	struct msgstream_parked *p = calloc(1, sizeof(*p));
	if (!p) {
		m->alloc_fail++;
		m->keys_pending = false;
		m->arc_done = decide_keys(m->v, m->arc, m->arc_on, m->key_lookup, m->key_arg);
		return NULL;
	}
	p->hdr = m->hdr;
	p->v = m->v;
	p->arc = m->arc_on ? m->arc : NULL;
	p->arc_on = m->arc_on;
	p->complete = m->complete;
	dkim_verifier_rehome(p->v, &p->hdr);
	if (p->arc)
		arc_validator_rehome(p->arc, &p->hdr);
	/* the stream starts over with fresh buffers; the next message makes a
	 * verifier (and, if it needs one, a validator) of its own */
	rfc5322_init(&m->hdr);
	m->v = NULL;
	if (m->arc_on)
		m->arc = NULL;
	m->arc_on = m->arc_done = false;
	m->keys_pending = false;
	m->state = M_IDLE;
	return p;
}

void
msgstream_parked_finish(struct msgstream_parked *p, msgstream_key_fn fn, void *arg)
{
	p->arc_done = decide_keys(p->v, p->arc, p->arc_on, fn, arg);
}

const struct dkim_verifier *
msgstream_parked_verifier(const struct msgstream_parked *p)
{
	return p->v;
}

const struct arc_chain *
msgstream_parked_arc(const struct msgstream_parked *p)
{
	if (!p->complete)
		return NULL;
	return p->arc_done ? arc_validator_chain(p->arc) : &no_arc;
}

const struct rfc5322_header *
msgstream_parked_header(const struct msgstream_parked *p)
{
	return &p->hdr;
}

const char *
msgstream_parked_key_name(const struct msgstream_parked *p, size_t i)
{
	size_t n = dkim_verifier_count(p->v);
	for (size_t j = 0; j < n; j++) {
		const char *name = dkim_verifier_key_name(p->v, j);
		if (name && i-- == 0)
			return name;
	}
	for (size_t k = 0; p->arc_on && k < arc_validator_key_slots(p->arc); k++) {
		const char *name = arc_validator_key_name(p->arc, k);
		if (name && i-- == 0)
			return name;
	}
	return NULL;
}

void
msgstream_parked_free(struct msgstream_parked *p)
{
	if (!p)
		return;
	dkim_verifier_free(p->v);
	arc_validator_free(p->arc);
	rfc5322_free(&p->hdr);
	free(p);
}

/* ---- batched finish (msgstream.h) ---- */

void
msgstream_set_batch(struct msgstream *m, bool on)
{
	m->batch = on;
}

bool
msgstream_waiting(const struct msgstream *m)
{
	return m->state == M_DONE && m->jobs_out;
}

bool
msgstream_takeable(const struct msgstream *m)
{
	return m->state == M_DONE && m->verify && m->v && !m->keys_pending &&
	       (!m->arc_on || m->arc_done);
}

struct dkim_verifier *
msgstream_take(struct msgstream *m, struct rfc5322_header *hdr, struct ws_verify_job **jobs,
	       size_t *njobs, struct arc_validator **arc)
{
	if (!msgstream_takeable(m))
		return NULL;
	struct dkim_verifier *v = m->v;
	struct rfc5322_header t = *hdr;
	*hdr = m->hdr;
	m->hdr = t; /* reset by the next msgstream_begin */
	dkim_verifier_rehome(v, hdr);
	*arc = NULL;
	if (m->arc_on) {
		/* its chain is decided: the validator goes with the record */
		*arc = m->arc;
		arc_validator_rehome(*arc, hdr);
		m->arc = NULL;
		m->arc_on = false;
	}
	*jobs = NULL;
	*njobs = 0;
	if (m->jobs_out) {
		*njobs = dkim_verifier_prepare(v, jobs);
		if (*njobs == 0)
			dkim_verifier_complete(v); /* decided without public-key work */
	}
	m->v = NULL; /* the next message takes one from the pool */
	m->jobs_out = false;
	m->arc_done = false;
	m->state = M_IDLE;
	return v;
}

void
msgstream_complete_now(struct msgstream *m)
{
	if (!msgstream_waiting(m))
		return;
	dkim_verifier_finish(m->v);
	m->jobs_out = false;
}
