/*
 * dp_session: tcpr (one per direction) -> smtpp -> msgstream, and the
 * records. The contract and its limits are in session.h.
 */
#include "session.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msgstream.h"
#include "sigbatch.h"
#include "smtpp.h"
#include "tcpr.h"
#include "tlscert.h"
#include "tlsobs.h"
#include "wiresig.h"

/* TLS state, allocated when a STARTTLS is accepted (idle cleartext sessions
 * never pay for it). */
struct dp_tls {
	struct tlsobs obs;
	bool fed[2];
	bool assessed;
	struct tlscert_info ci;
};

/* The envelope of the current transaction, strings NUL-separated in buf. */
struct env_rcpt {
	uint32_t off;
	uint32_t seq;  /* which RCPT of the session (0-based), for its reply */
	bool refused;
};

struct env {
	char *buf;
	size_t len, cap;
	uint32_t mail_off;
	bool has_mail;
	struct env_rcpt *r;
	size_t nr, rcap;
	const char **rv;    /* built for the record */
	size_t rvcap;
};

struct dp_session {
	struct dp_session_config cfg;
	struct dp_session_info info;
	struct tcpr dir[2];
	struct smtpp sp;
	struct msgstream ms;
	struct env env;
	char *helo;              /* NULL until HELO/EHLO */
	const char *msg_end_why; /* reason a message cut by the session's end gets */
	bool ended, rst, starttls_used, auth_seen, in_msg;
	/* RCPT commands and RCPT replies so far: replies come in command order,
	 * and with BDAT a transaction may be over (and the next begun) before
	 * its RCPT replies arrive, so they are matched by session-wide number */
	uint32_t rcpt_cmds, rcpt_replies;
	unsigned transactions, messages;
	struct dp_session_counters counters;
	/* TLS and wire signals */
	struct wiresig sig;
	struct dp_tls *tls;
	char **rdom; /* grown on demand up to DP_SESSION_MAX_RCPT_DOMAINS */
	size_t nrdom, rdom_cap;
	struct dp_session_offsets off;
	bool ehlo_seen, mail_seen, rcpt_seen;
	uint64_t ehlo_reply_start;
	uint64_t ts_first, ts_last, ts_now;
	struct dp_reply *replies; /* grown on demand up to DP_SESSION_MAX_REPLIES */
	uint32_t nreplies, replies_cap;
	uint64_t replies_over;
};

/* jemalloc (the binaries' allocator) serves 1281..1536 bytes from one size
 * class and the next is 1792: a few bytes more here cost every idle session
 * 256 (bench/replay.sh idle_session_bytes, target 2048). */
_Static_assert(sizeof(struct dp_session) <= 1536, "an idle session in jemalloc's 1536-byte class");

/* ---- envelope -------------------------------------------------------- */

static void
env_reset(struct env *e)
{
	e->len = 0;
	e->has_mail = false;
	e->nr = 0;
}

static void
env_free(struct env *e)
{
	free(e->buf);
	free(e->r);
	free(e->rv);
	memset(e, 0, sizeof(*e));
}

/* Copy s (cut at DP_SESSION_MAX_PATH) into buf; its offset, or -1. */
static int64_t
env_str(struct env *e, const char *s, size_t len)
{
	if (len > DP_SESSION_MAX_PATH)
		len = DP_SESSION_MAX_PATH;
	if (e->len + len + 1 > e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 128;
		while (cap < e->len + len + 1)
			cap *= 2;
		char *nb = realloc(e->buf, cap);
		if (!nb)
			return -1;
		e->buf = nb;
		e->cap = cap;
	}
	size_t off = e->len;
	memcpy(e->buf + off, s, len);
	e->buf[off + len] = '\0';
	e->len += len + 1;
	return (int64_t)off;
}

static void
env_mail(struct env *e, const char *arg, size_t len)
{
	env_reset(e);
	const char *a;
	size_t n;
	if (smtpp_path(arg, len, &a, &n) != 0)
		return;
	int64_t off = env_str(e, a, n);
	if (off >= 0) {
		e->mail_off = (uint32_t)off;
		e->has_mail = true;
	}
}

static void
env_rcpt(struct env *e, uint32_t seq, const char *arg, size_t len)
{
	const char *a;
	size_t n;
	if (smtpp_path(arg, len, &a, &n) != 0)
		a = "", n = 0; /* kept so replies still line up with their RCPT */
	if (e->nr == e->rcap) {
		size_t cap = e->rcap ? e->rcap * 2 : 8;
		struct env_rcpt *nr = realloc(e->r, cap * sizeof(*nr));
		if (!nr)
			return;
		e->r = nr;
		e->rcap = cap;
	}
	int64_t off = env_str(e, a, n);
	if (off < 0)
		return;
	e->r[e->nr].off = (uint32_t)off;
	e->r[e->nr].seq = seq;
	e->r[e->nr].refused = false;
	e->nr++;
}

/* ---- records --------------------------------------------------------- */

/* A message waiting for its keys goes to on_parked with its parked state;
 * false when it could not be parked (then it was decided now). */
static bool
emit_parked(struct dp_session *s, struct dp_message_record *rec)
{
	struct msgstream_parked *p = msgstream_park(&s->ms);
	if (!p)
		return false;
	rec->dkim = NULL;
	rec->arc = NULL;
	rec->hdr = NULL;
	if (s->cfg.on_parked)
		s->cfg.on_parked(s->cfg.arg, rec, p);
	else
		msgstream_parked_free(p);
	return true;
}

static void
emit_message(struct dp_session *s)
{
	struct env *e = &s->env;
	size_t n = 0;
	if (e->nr > e->rvcap) {
		const char **rv = realloc(e->rv, e->nr * sizeof(*rv));
		if (rv) {
			e->rv = rv;
			e->rvcap = e->nr;
		}
	}
	for (size_t i = 0; i < e->nr && i < e->rvcap; i++)
		if (!e->r[i].refused)
			e->rv[n++] = e->buf + e->r[i].off;
	s->messages++;
	s->counters.messages++;
	struct dp_message_record rec = {
		.info = &s->info,
		.helo = s->helo ? s->helo : "",
		.mail_from = e->has_mail ? e->buf + e->mail_off : "",
		.rcpt = e->rv,
		.nrcpt = n,
		.starttls = s->starttls_used,
		.transaction = s->transactions,
		.complete = s->ms.complete,
		.gap_reason = s->ms.reason,
		.dkim = msgstream_verifier(&s->ms),
		.arc = msgstream_arc(&s->ms),
		.hdr = &s->ms.hdr,
		.header_bytes = s->ms.header_bytes,
		.body_bytes = s->ms.body_bytes,
	};
	struct sigbatch *b = s->cfg.batch;
	/* a message whose signatures wait goes to the worker's batch with
	 * its record; so does one decided already while others wait there
	 * (records leave in the order they would without the batch) */
	if (b && (msgstream_waiting(&s->ms) || sigbatch_waiting(b) > 0) &&
	    sigbatch_add(b, &rec, &s->ms))
		return;
	if (msgstream_waiting(&s->ms)) {
		/* not taken (no memory for the copy): verified alone */
		msgstream_complete_now(&s->ms);
		rec.dkim = msgstream_verifier(&s->ms);
		rec.arc = msgstream_arc(&s->ms);
	}
	if (b)
		sigbatch_run(b); /* what waits there goes first */
	if (msgstream_pending(&s->ms) && emit_parked(s, &rec))
		return;
	if (s->cfg.on_message)
		s->cfg.on_message(s->cfg.arg, &rec);
}

/* ---- SMTP events ----------------------------------------------------- */

/* The domain of a RCPT forward-path, kept lowercase and distinct. */
static void
rcpt_domain(struct dp_session *s, const char *arg, size_t len)
{
	const char *a;
	size_t n;
	if (smtpp_path(arg, len, &a, &n) != 0)
		return;
	const char *at = NULL;
	for (size_t i = 0; i < n; i++)
		if (a[i] == '@')
			at = a + i;
	if (!at || at + 1 == a + n)
		return;
	const char *d = at + 1;
	size_t dl = (size_t)(a + n - d);
	if (dl > STS_DOMAIN_MAX)
		dl = STS_DOMAIN_MAX;
	for (size_t i = 0; i < dl; i++)
		if ((unsigned char)d[i] <= 0x20 || (unsigned char)d[i] >= 0x7f)
			return; /* not a domain (NUL, controls, UTF-8): no policy can name it */
	for (size_t i = 0; i < s->nrdom; i++)
		if (strncasecmp(s->rdom[i], d, dl) == 0 && s->rdom[i][dl] == '\0')
			return;
	if (s->nrdom == DP_SESSION_MAX_RCPT_DOMAINS) {
		s->counters.rcpt_domains_over++;
		return;
	}
	if (s->nrdom == s->rdom_cap) {
		/* most sessions name one domain: grow 1, 2, 4 ... up to the limit */
		size_t cap = s->rdom_cap ? s->rdom_cap * 2 : 1;
		char **nr = realloc(s->rdom, cap * sizeof(*nr));
		if (!nr)
			return;
		s->rdom = nr;
		s->rdom_cap = cap;
	}
	char *c = malloc(dl + 1);
	if (!c)
		return;
	for (size_t i = 0; i < dl; i++)
		c[i] = d[i] >= 'A' && d[i] <= 'Z' ? (char)(d[i] + 32) : d[i];
	c[dl] = '\0';
	s->rdom[s->nrdom++] = c;
}

static void
on_command(void *arg, const struct smtpp_cmd *c)
{
	struct dp_session *s = arg;
	s->counters.commands++;
	uint64_t off = s->sp.lstart[0];
	wiresig_command(&s->sig, c->verb, off, &s->sp.caps);
	if (!s->starttls_used) {
		if (c->verb == SMTPP_MAIL && !s->mail_seen) {
			s->mail_seen = true;
			s->off.mail = off;
		}
		if (c->verb == SMTPP_RCPT) {
			if (!s->rcpt_seen) {
				s->rcpt_seen = true;
				s->off.rcpt = off;
			}
			rcpt_domain(s, c->arg, c->arg_len);
		}
	}
	switch (c->verb) {
	case SMTPP_EHLO:
	case SMTPP_HELO: {
		size_t n = 0;
		while (n < c->arg_len && c->arg[n] != ' ')
			n++;
		if (n > DP_SESSION_MAX_PATH)
			n = DP_SESSION_MAX_PATH;
		char *h = realloc(s->helo, n + 1);
		if (h) {
			memcpy(h, c->arg, n);
			h[n] = '\0';
			s->helo = h;
		}
		env_reset(&s->env);
		break;
	}
	case SMTPP_MAIL:
		s->transactions++;
		env_mail(&s->env, c->arg, c->arg_len);
		break;
	case SMTPP_RCPT:
		if (!c->over_limit)
			env_rcpt(&s->env, s->rcpt_cmds, c->arg, c->arg_len);
		s->rcpt_cmds++;
		break;
	case SMTPP_RSET:
		env_reset(&s->env);
		break;
	case SMTPP_AUTH:
		s->auth_seen = true;
		break;
	default:
		break;
	}
}

/* The reply codes per command for the session record: the array doubles
 * from 8 entries (an idle session with a few replies stays small); past the
 * cap, or without memory, replies are only counted. */
static void
keep_reply(struct dp_session *s, const struct smtpp_reply *r)
{
	if (s->nreplies == s->replies_cap) {
		uint32_t cap = s->replies_cap ? s->replies_cap * 2 : 8;
		if (cap > DP_SESSION_MAX_REPLIES)
			cap = DP_SESSION_MAX_REPLIES;
		struct dp_reply *n = cap > s->replies_cap ? realloc(s->replies, cap * sizeof(*n)) : NULL;
		if (!n) {
			s->replies_over++;
			return;
		}
		s->replies = n;
		s->replies_cap = cap;
	}
	s->replies[s->nreplies++] = (struct dp_reply){(uint16_t)r->verb, (uint16_t)r->code};
}

static void
on_reply(void *arg, const struct smtpp_reply *r)
{
	struct dp_session *s = arg;
	s->counters.replies++;
	keep_reply(s, r);
	wiresig_reply(&s->sig, r->verb, r->code, s->sp.lstart[1], &s->sp.caps);
	if (r->verb == SMTPP_EHLO && r->code == 250) {
		s->ehlo_seen = true;
		s->off.ehlo_reply = s->ehlo_reply_start;
	}
	if (r->verb == SMTPP_RCPT) {
		struct env *e = &s->env;
		uint32_t seq = s->rcpt_replies++;
		/* after lost server bytes the numbering is unknown: refuse nothing */
		if (r->code < 400 || s->dir[DP_DIR_S2C].c.gaps > 0 || e->nr == 0 ||
		    seq < e->r[0].seq)
			return;
		size_t i = seq - e->r[0].seq;
		if (i < e->nr && e->r[i].seq == seq)
			e->r[i].refused = true;
	}
}

static void
on_msg_begin(void *arg, enum smtpp_body kind)
{
	struct dp_session *s = arg;
	(void)kind;
	s->in_msg = true;
	msgstream_begin(&s->ms);
}

static void
on_msg_data(void *arg, const uint8_t *p, size_t len)
{
	struct dp_session *s = arg;
	msgstream_data(&s->ms, p, len);
}

static void
on_msg_gap(void *arg, uint64_t len)
{
	struct dp_session *s = arg;
	msgstream_gap(&s->ms, len);
}

static void
on_msg_end(void *arg, enum smtpp_msg_end how)
{
	struct dp_session *s = arg;
	s->in_msg = false;
	bool clean = how == SMTPP_END_DOT || how == SMTPP_END_BDAT_LAST;
	const char *why = NULL;
	switch (how) {
	case SMTPP_END_REJECTED:
		why = "rejected";
		break;
	case SMTPP_END_RESET:
		why = "rset";
		break;
	case SMTPP_END_LOST:
		why = "capture-gap";
		break;
	case SMTPP_END_TLS:
		why = "starttls";
		break;
	case SMTPP_END_SESSION:
		why = s->msg_end_why;
		break;
	default:
		break;
	}
	msgstream_end(&s->ms, clean, why);
	/* a refused DATA before any content is no message */
	if (!(how == SMTPP_END_REJECTED && s->ms.header_bytes + s->ms.body_bytes == 0))
		emit_message(s);
	if (how != SMTPP_END_RESET)
		env_reset(&s->env); /* the transaction is over */
}

static void
on_tls(void *arg)
{
	struct dp_session *s = arg;
	s->starttls_used = true;
	if (s->tls)
		return; /* a second STARTTLS is not followed */
	s->tls = calloc(1, sizeof(*s->tls));
	if (s->tls)
		tlsobs_init(&s->tls->obs, 0, 0);
}

static void
on_line(void *arg, enum smtpp_dir dir, enum smtpp_verb verb, const uint8_t *p, size_t len,
	uint64_t off)
{
	struct dp_session *s = arg;
	/* the first line of a reply to EHLO: where the capabilities begin */
	if (dir == SMTPP_S2C && verb == SMTPP_EHLO && s->sp.rlines == 0)
		s->ehlo_reply_start = off;
	wiresig_line(&s->sig, dir, verb, p, len, off);
}

static void
tls_assess(struct dp_session *s)
{
	struct dp_tls *t = s->tls;
	const struct tlsobs_facts *f = tlsobs_facts(&t->obs);
	if (t->assessed || !f->cert_seen)
		return;
	t->assessed = true;
	/* verify time = the capture time of the segment that completed the chain */
	tlscert_assess(tlsobs_chain(&t->obs), f->cert, f->ncerts, s->cfg.ca_store,
		       (int64_t)(s->ts_now / 1000000000u), &t->ci);
}

static void
on_tls_data(void *arg, enum smtpp_dir dir, const uint8_t *p, size_t len, uint64_t off)
{
	struct dp_session *s = arg;
	wiresig_tls_bytes(&s->sig, dir, p, len, off);
	if (!s->tls)
		return;
	int d = dir == SMTPP_S2C;
	if (!s->tls->fed[d]) {
		s->tls->fed[d] = true;
		tlsobs_base(&s->tls->obs, d ? TLSOBS_S2C : TLSOBS_C2S, off);
	}
	tlsobs_feed(&s->tls->obs, d ? TLSOBS_S2C : TLSOBS_C2S, p, len);
	tls_assess(s);
}

static void
on_tls_gap(void *arg, enum smtpp_dir dir, uint64_t len)
{
	struct dp_session *s = arg;
	if (s->tls)
		tlsobs_gap(&s->tls->obs, dir == SMTPP_S2C ? TLSOBS_S2C : TLSOBS_C2S, len);
}

static const struct smtpp_ops session_ops = {
	.command = on_command,
	.reply = on_reply,
	.msg_begin = on_msg_begin,
	.msg_data = on_msg_data,
	.msg_gap = on_msg_gap,
	.msg_end = on_msg_end,
	.tls = on_tls,
	.line = on_line,
	.tls_data = on_tls_data,
	.tls_gap = on_tls_gap,
};

/* ---- reassembly sinks ------------------------------------------------ */

static void
c2s_data(void *arg, const uint8_t *p, size_t len)
{
	smtpp_feed(&((struct dp_session *)arg)->sp, SMTPP_C2S, p, len);
}

static void
s2c_data(void *arg, const uint8_t *p, size_t len)
{
	smtpp_feed(&((struct dp_session *)arg)->sp, SMTPP_S2C, p, len);
}

static void
c2s_gap(void *arg, uint64_t len)
{
	smtpp_gap(&((struct dp_session *)arg)->sp, SMTPP_C2S, len);
}

static void
s2c_gap(void *arg, uint64_t len)
{
	smtpp_gap(&((struct dp_session *)arg)->sp, SMTPP_S2C, len);
}

static void
on_stream_end(void *arg, enum tcpr_end how)
{
	struct dp_session *s = arg;
	if (how == TCPR_END_RST) {
		/* the connection is gone: a message in flight will not finish */
		s->rst = true;
		s->msg_end_why = "session-reset";
		smtpp_end(&s->sp);
	}
}

static struct tcpr_sink
sink_for(struct dp_session *s, enum dp_dir d)
{
	return (struct tcpr_sink){
		.data = d == DP_DIR_C2S ? c2s_data : s2c_data,
		.gap = d == DP_DIR_C2S ? c2s_gap : s2c_gap,
		.end = on_stream_end,
		.arg = s,
	};
}

/* ---- the contract ---------------------------------------------------- */

static enum dkim_key_status
no_lookup(void *arg, const char *name, const struct dkim_key **key, const char **why)
{
	(void)arg;
	(void)name;
	*key = NULL;
	*why = "no key lookup configured";
	return DKIM_KEY_TEMPFAIL;
}

struct dp_session *
dp_session_new(const struct dp_session_config *cfg, const struct dp_session_info *info)
{
	struct dp_session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->info = *info;
	tcpr_init(&s->dir[0], 0);
	tcpr_init(&s->dir[1], 0);
	if (info->implicit_tls)
		smtpp_init_tls(&s->sp, &session_ops, s);
	else
		smtpp_init(&s->sp, &session_ops, s, info->midstream);
	msgstream_init(&s->ms, cfg->verify, cfg->now, cfg->key_lookup ? cfg->key_lookup : no_lookup,
		       cfg->arg);
	msgstream_set_pool(&s->ms, cfg->pool);
	if (cfg->key_ready && cfg->on_parked)
		msgstream_set_key_ready(&s->ms, cfg->key_ready);
	else if (cfg->batch && cfg->verify)
		msgstream_set_batch(&s->ms, true);
	wiresig_init(&s->sig);
	s->msg_end_why = "session-end";
	return s;
}

/* The TLS part of the session record. */
static void
tls_record(struct dp_session *s, const struct tlsobs_facts *f, struct dp_session_record *rec)
{
	struct dp_tls *t = s->tls;
	struct dp_tls_facts *o = &rec->tls;
	s->counters.tls_limits = f->record_over + f->hello_over + f->chain_over + f->certs_over +
				 f->sni_over + f->junk_over;
	o->client_hello = f->client_hello;
	o->server_hello = f->server_hello;
	o->version_offered_max = f->version_offered_max;
	o->version = f->version;
	o->resumed = f->resumed;
	o->sni = f->sni_present ? f->sni : NULL;
	rec->off.client_hello = f->ch_offset;
	rec->off.server_hello = f->sh_offset;
	rec->off.certificate = f->cert_offset;
	if (f->cert_seen && t->ci.parsed) {
		o->cert_seen = true;
		o->cert_names = (const char *const *)t->ci.names;
		o->ncert_names = t->ci.nnames;
		o->not_before = t->ci.not_before;
		o->not_after = t->ci.not_after;
		o->issuer = t->ci.issuer;
		o->chain_trusted = t->ci.chain_trusted;
	}
	rec->tls_anonymous = f->anonymous;
	rec->tls_established = tlsobs_established(&t->obs);
	if (!rec->tls_established) {
		rec->tls_failed = true;
		if (f->dir[0].alert.seen || f->dir[1].alert.seen)
			rec->tls_fail_reason = "alert";
		else if (f->dir[0].junk_bytes || f->dir[1].junk_bytes || f->dir[0].error || f->dir[1].error)
			rec->tls_fail_reason = "not-tls";
		else if (!f->server_hello)
			rec->tls_fail_reason = "no-server-hello";
		else
			rec->tls_fail_reason = "incomplete";
	}
}

static void
sum_counters(struct dp_session *s)
{
	struct dp_session_counters *c = &s->counters;
	const struct tcpr_counters *a = &s->dir[0].c, *b = &s->dir[1].c;
	c->out_of_order = a->out_of_order + b->out_of_order;
	c->retransmits = a->retransmits + b->retransmits;
	c->overlaps_differ = a->overlaps_differ + b->overlaps_differ;
	c->gaps = a->gaps + b->gaps;
	c->memcap_drops = a->memcap_skips + b->memcap_skips + a->too_far + b->too_far;
}

void
dp_session_segment(struct dp_session *s, enum dp_dir dir, uint32_t seq, uint32_t ack,
		   uint8_t flags, const uint8_t *payload, size_t len, uint64_t ts_ns)
{
	(void)ack;
	if (s->counters.segments == 0)
		s->ts_first = ts_ns;
	s->ts_last = ts_ns;
	s->ts_now = ts_ns;
	s->counters.segments++;
	s->counters.bytes += len;
	if (s->ended || (dir != DP_DIR_C2S && dir != DP_DIR_S2C))
		return;
	if (!s->dir[dir].started && !(flags & TCPR_SYN) && len > 0 && !s->info.midstream &&
	    !s->info.implicit_tls && s->sp.c.commands == 0 && s->sp.c.replies == 0) {
		/* data before any SYN of this direction: the capture joined late
		 * even if it did not say so; the parser must resynchronise */
		s->info.midstream = true;
		smtpp_free(&s->sp);
		smtpp_init(&s->sp, &session_ops, s, true);
	}
	struct tcpr_sink sink = sink_for(s, dir);
	tcpr_segment(&s->dir[dir], seq, flags & (TCPR_FIN | TCPR_SYN | TCPR_RST), payload, len,
		     &sink);
	sum_counters(s);
}

void
dp_session_end(struct dp_session *s, const char *reason)
{
	if (!s || s->ended)
		return;
	/* held bytes go to the parser first (with gaps for the holes) */
	for (int d = 0; d < 2; d++) {
		struct tcpr_sink sink = sink_for(s, (enum dp_dir)d);
		tcpr_flush(&s->dir[d], &sink);
	}
	s->ended = true;
	if (!s->rst)
		s->msg_end_why = "session-end";
	smtpp_end(&s->sp);
	sum_counters(s);
	const struct smtpp_caps *caps = &s->sp.caps;
	const struct tlsobs_facts *tf = s->tls ? tlsobs_facts(&s->tls->obs) : NULL;
	wiresig_tls(&s->sig, tf);
	struct dp_session_record rec = {
		.info = &s->info,
		.helo = s->helo ? s->helo : "",
		.starttls_offered = caps->starttls,
		.starttls_used = s->starttls_used,
		.pipelining = caps->pipelining,
		.chunking = caps->chunking,
		.auth_seen = s->auth_seen,
		.transactions = s->transactions,
		.messages = s->messages,
		.end_reason = reason ? reason : s->rst ? "rst" : "fin",
		.tls_bytes = {s->sp.c.tls_bytes[0], s->sp.c.tls_bytes[1]},
		.gaps = s->counters.gaps,
		.anomalies = s->sig.an,
		.nanomalies = s->sig.n,
		.ehlo_seen = s->ehlo_seen,
		.rcpt_domains = (const char *const *)s->rdom,
		.nrcpt_domains = s->nrdom,
		.off = s->off,
		.first_ts_ns = s->ts_first,
		.last_ts_ns = s->ts_last,
		.replies = s->replies,
		.nreplies = s->nreplies,
		.replies_over = s->replies_over,
	};
	if (tf)
		tls_record(s, tf, &rec);
	if (s->cfg.batch)
		sigbatch_run(s->cfg.batch); /* this session's messages, and every earlier one, first */
	if (s->cfg.on_session)
		s->cfg.on_session(s->cfg.arg, &rec);
}

const struct dp_session_counters *
dp_session_counters(const struct dp_session *s)
{
	return &s->counters;
}

void
dp_session_trim(struct dp_session *s)
{
	tcpr_trim(&s->dir[0]);
	tcpr_trim(&s->dir[1]);
	smtpp_trim(&s->sp);
	if (!s->in_msg)
		msgstream_trim(&s->ms);
}

void
dp_session_free(struct dp_session *s)
{
	if (!s)
		return;
	dp_session_end(s, "capture-end");
	tcpr_free(&s->dir[0]);
	tcpr_free(&s->dir[1]);
	smtpp_free(&s->sp);
	msgstream_free(&s->ms);
	env_free(&s->env);
	free(s->helo);
	wiresig_free(&s->sig);
	if (s->tls) {
		tlsobs_free(&s->tls->obs);
		tlscert_info_free(&s->tls->ci);
		free(s->tls);
	}
	for (size_t i = 0; i < s->nrdom; i++)
		free(s->rdom[i]);
	free(s->rdom);
	free(s->replies);
	free(s);
}
