/* sigbatch: several messages' signatures in one verify batch; rules in sigbatch.h. */
#include "sigbatch.h"

#include <stdlib.h>
#include <string.h>

#include "msgstream.h"

/* One waiting message: its record's copy and what it points at. */
struct slot {
	struct dp_message_record rec;
	struct dp_session_info info;
	struct rfc5322_header hdr; /* the message's; the buffers stay for the next one */
	struct dkim_verifier *v;
	struct arc_validator *arc; /* its chain, decided; NULL without ARC fields */
	struct ws_verify_job *jobs; /* in v */
	size_t njobs;
	uint64_t born; /* bursts seen when it was added */
	char *buf;     /* helo, mail_from, rcpt strings, NUL-separated */
	size_t cap;
	const char **rv;
	size_t rvcap;
};

struct sigbatch {
	unsigned size, max_wait;
	struct msgstream_pool *pool;
	sigbatch_emit_fn emit;
	void *arg;
	unsigned n;    /* messages waiting, slot[0] the oldest */
	size_t njobs;  /* their jobs */
	uint64_t bursts;
	struct sigbatch_stats st;
	/* one message may bring DKIM_MAX_SIGS jobs to a batch one short of full */
	struct ws_verify_job jobs[SIGBATCH_MAX - 1 + DKIM_MAX_SIGS];
	struct slot slot[SIGBATCH_MAX];
};

struct sigbatch *
sigbatch_new(unsigned size, unsigned max_wait, struct msgstream_pool *pool, sigbatch_emit_fn emit,
	     void *arg)
{
	if (size < 2 || size > SIGBATCH_MAX || max_wait < 1 || max_wait > SIGBATCH_MAX_WAIT)
		return NULL;
	struct sigbatch *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->size = size;
	b->max_wait = max_wait;
	b->pool = pool;
	b->emit = emit;
	b->arg = arg;
	for (unsigned i = 0; i < SIGBATCH_MAX; i++)
		rfc5322_init(&b->slot[i].hdr);
	return b;
}

void
sigbatch_free(struct sigbatch *b)
{
	if (!b)
		return;
	for (unsigned i = 0; i < SIGBATCH_MAX; i++) {
		struct slot *s = &b->slot[i];
		if (s->v) {
			/* dropped: its borrowed keys are released, never used */
			dkim_verifier_abort(s->v, "not verified");
			msgstream_pool_put(b->pool, s->v);
		}
		msgstream_pool_put_arc(b->pool, s->arc);
		rfc5322_free(&s->hdr);
		free(s->buf);
		free(s->rv);
	}
	free(b);
}

/* Copy the envelope strings of rec into s; -1 when memory ran out. */
static int
copy_envelope(struct slot *s, const struct dp_message_record *rec)
{
	size_t lh = strlen(rec->helo) + 1, lm = strlen(rec->mail_from) + 1, need = lh + lm;
	for (size_t i = 0; i < rec->nrcpt; i++)
		need += strlen(rec->rcpt[i]) + 1;
	if (need > s->cap) {
		size_t cap = s->cap ? s->cap : 256;
		while (cap < need)
			cap *= 2;
		char *nb = realloc(s->buf, cap);
		if (!nb)
			return -1;
		s->buf = nb;
		s->cap = cap;
	}
	if (rec->nrcpt > s->rvcap) {
		const char **rv = realloc(s->rv, rec->nrcpt * sizeof(*rv));
		if (!rv)
			return -1;
		s->rv = rv;
		s->rvcap = rec->nrcpt;
	}
	char *p = s->buf;
	memcpy(p, rec->helo, lh);
	s->rec.helo = p;
	p += lh;
	memcpy(p, rec->mail_from, lm);
	s->rec.mail_from = p;
	p += lm;
	for (size_t i = 0; i < rec->nrcpt; i++) {
		size_t l = strlen(rec->rcpt[i]) + 1;
		memcpy(p, rec->rcpt[i], l);
		s->rv[i] = p;
		p += l;
	}
	return 0;
}

bool
sigbatch_add(struct sigbatch *b, const struct dp_message_record *rec, struct msgstream *m)
{
	if (!msgstream_takeable(m))
		return false;
	struct slot *s = &b->slot[b->n];
	if (copy_envelope(s, rec) != 0) {
		b->st.refused++;
		return false;
	}
	s->info = *rec->info;
	s->rec.info = &s->info;
	s->rec.rcpt = s->rv;
	s->rec.nrcpt = rec->nrcpt;
	s->rec.starttls = rec->starttls;
	s->rec.transaction = rec->transaction;
	s->rec.complete = rec->complete;
	s->rec.gap_reason = rec->gap_reason;
	s->rec.header_bytes = rec->header_bytes;
	s->rec.body_bytes = rec->body_bytes;
	s->v = msgstream_take(m, &s->hdr, &s->jobs, &s->njobs, &s->arc);
	s->rec.hdr = &s->hdr;
	s->born = b->bursts;
	b->n++;
	b->njobs += s->njobs;
	if (b->njobs == 0 && b->n == 1) {
		/* alone and without public-key work (no signature, body hash
		 * mismatch, key error): nothing to wait for */
		sigbatch_run(b);
		return true;
	}
	if (b->njobs >= b->size || b->n == b->size) {
		b->st.full++;
		sigbatch_run(b);
	}
	return true;
}

/* What a message without ARC fields reports (msgstream_arc's "none"). */
static const struct arc_chain no_arc = {.result = ARC_NONE, .reason = "no ARC sets"};

void
sigbatch_run(struct sigbatch *b)
{
	if (b->n == 0)
		return;
	size_t k = 0;
	for (unsigned i = 0; i < b->n; i++) {
		struct slot *s = &b->slot[i];
		if (s->njobs == 0)
			continue; /* decided: no jobs (s->jobs is NULL) */
		memcpy(&b->jobs[k], s->jobs, s->njobs * sizeof(*s->jobs));
		k += s->njobs;
	}
	if (k > 0) {
		/* (only decided messages waiting: nothing to verify) */
		ws_sig_verify_batch(b->jobs, k);
		b->st.batches++;
		b->st.jobs += k;
		if (k > b->st.max_jobs)
			b->st.max_jobs = k;
	}
	b->st.messages += b->n;
	/* emptied before the first emit: nothing emitted may see these again */
	unsigned n = b->n;
	b->n = 0;
	b->njobs = 0;
	k = 0;
	for (unsigned i = 0; i < n; i++) {
		struct slot *s = &b->slot[i];
		if (s->njobs > 0) {
			for (size_t j = 0; j < s->njobs; j++)
				s->jobs[j].result = b->jobs[k++].result;
			dkim_verifier_complete(s->v);
		}
		s->rec.dkim = s->v;
		s->rec.arc = s->arc ? arc_validator_chain(s->arc) : s->rec.complete ? &no_arc : NULL;
		if (b->emit)
			b->emit(b->arg, &s->rec);
		msgstream_pool_put(b->pool, s->v);
		msgstream_pool_put_arc(b->pool, s->arc);
		s->v = NULL;
		s->arc = NULL;
		s->jobs = NULL;
		s->njobs = 0;
	}
}

void
sigbatch_burst(struct sigbatch *b)
{
	b->bursts++;
	if (b->n > 0 && b->bursts - b->slot[0].born >= b->max_wait) {
		b->st.aged++;
		sigbatch_run(b);
	}
}

unsigned
sigbatch_waiting(const struct sigbatch *b)
{
	return b->n;
}

const struct sigbatch_stats *
sigbatch_stats(const struct sigbatch *b)
{
	return &b->st;
}
