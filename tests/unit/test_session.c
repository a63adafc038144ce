/*
 * dp_session end to end: a full SMTP conversation (EHLO with PIPELINING and
 * CHUNKING, two transactions: one DATA with dot-stuffed lines, one BDAT in
 * two chunks), both messages signed here with dkim_sign, fed as TCP segments
 * of random sizes, reordered, duplicated, with overlapping retransmissions.
 * The DKIM results must equal what the verifier says on the same messages
 * (the way `wireseal verify` drives it); a lost segment gives temperror /
 * capture-gap, never fail; RST inside DATA and a mid-stream start are
 * covered; a 50 MB body keeps memory flat; an idle session's size is measured.
 * Parking (asynchronous keys): with key_ready saying "not yet", both messages
 * are parked instead of decided; finished after the session is gone, they
 * give the verifier's results and their own header blocks.
 */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arc.h"
#include "b64.h"
#include "dkim.h"
#include "rfc5322.h"
#include "msgstream.h"
#include "session.h"
#include "sigbatch.h"
#include "smtpp.h"
#include "testutil.h"
#include "testkeys.h"

/* Allocation accounting: the test is linked with -Wl,--wrap= for malloc,
 * calloc, realloc and free (tests/unit/meson.build), so every allocation
 * made by our static libraries (and this file) passes here: a count, and the
 * live bytes (usable sizes, so it works on any allocator, ASan's included).
 * OpenSSL's own allocations are not seen. */
static unsigned long n_allocs;
static long long live_bytes;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t k);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t k);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

void *
__wrap_malloc(size_t n)
{
	n_allocs++;
	void *p = __real_malloc(n);
	if (p)
		live_bytes += (long long)malloc_usable_size(p);
	return p;
}

void *
__wrap_calloc(size_t n, size_t k)
{
	n_allocs++;
	void *p = __real_calloc(n, k);
	if (p)
		live_bytes += (long long)malloc_usable_size(p);
	return p;
}

void *
__wrap_realloc(void *p, size_t n)
{
	n_allocs++;
	size_t old = p ? malloc_usable_size(p) : 0;
	void *q = __real_realloc(p, n);
	if (q || n == 0)
		live_bytes += (long long)(q ? malloc_usable_size(q) : 0) - (long long)old;
	return q;
}

void
__wrap_free(void *p)
{
	if (p)
		live_bytes -= (long long)malloc_usable_size(p);
	__real_free(p);
}

static struct ws_privkey *rsa, *ed;
static struct dkim_key rsa_key, ed_key;

static void
key_for(const struct ws_privkey *k, struct dkim_key *out)
{
	uint8_t pub[2048];
	size_t n = ws_privkey_public(k, pub, sizeof(pub));
	assert_true(n > 0);
	char *b64 = malloc(B64_ENCODED_LEN(n) + 1);
	b64_encode(pub, n, b64);
	size_t cap = strlen(b64) + 64;
	char *rec = malloc(cap);
	snprintf(rec, cap, "v=DKIM1; k=%s; p=%s",
		 ws_privkey_alg(k) == WS_SIG_ED25519 ? "ed25519" : "rsa", b64);
	const char *why = NULL;
	if (dkim_key_parse(rec, strlen(rec), out, &why) != 0)
		fail_msg("key: %s", why);
	free(b64);
	free(rec);
}

static int
setup(void **state)
{
	(void)state;
	rsa = load_pem_file("conformance/dkim/dkimpy/2048_testkey.key");
	ed = load_pem_file("conformance/dkim/rfc8463/A1-ed25519.private.pem");
	key_for(rsa, &rsa_key);
	key_for(ed, &ed_key);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	dkim_key_clear(&rsa_key);
	dkim_key_clear(&ed_key);
	ws_privkey_free(rsa);
	ws_privkey_free(ed);
	return 0;
}

/* The embedded "DNS": two selectors of example.com. */
static enum dkim_key_status
lookup(void *arg, const char *name, const struct dkim_key **key, const char **why)
{
	(void)arg;
	if (strcmp(name, "rsa._domainkey.example.com") == 0) {
		*key = &rsa_key;
		return DKIM_KEY_FOUND;
	}
	if (strcmp(name, "ed._domainkey.example.com") == 0) {
		*key = &ed_key;
		return DKIM_KEY_FOUND;
	}
	*key = NULL;
	*why = "no such key";
	return DKIM_KEY_MISSING;
}

/* msg with a signature by key (selector sel) prepended; malloc'd. */
static char *
sign(const char *msg, size_t len, const struct ws_privkey *key, const char *sel,
     enum canon_alg hc, enum canon_alg bc, size_t *out_len)
{
	struct dkim_sign_params p = {
		.kind = DKIM_SIG_DKIM,
		.key = key,
		.algo = ws_privkey_alg(key) == WS_SIG_ED25519 ? DKIM_ED25519_SHA256 : DKIM_RSA_SHA256,
		.domain = "example.com",
		.selector = sel,
		.hcanon = hc,
		.bcanon = bc,
		.t = 1700000000,
		.x = -1,
	};
	char *field;
	size_t flen;
	const char *why = NULL;
	if (dkim_sign(&p, (const uint8_t *)msg, len, &field, &flen, &why) != 0)
		fail_msg("sign: %s", why);
	char *out = malloc(flen + len + 1);
	memcpy(out, field, flen);
	memcpy(out + flen, msg, len);
	out[flen + len] = '\0';
	free(field);
	*out_len = flen + len;
	return out;
}

/* What the verifier says on the message given whole (as the CLI drives it). */
struct results {
	size_t n;
	enum dkim_result r[8];
	const char *why[8];
};

static struct results
reference(const char *msg, size_t len)
{
	struct results out = {0};
	struct rfc5322_header h;
	rfc5322_init(&h);
	size_t used;
	enum rfc5322_status st = rfc5322_push(&h, (const uint8_t *)msg, len, &used);
	if (st == RFC5322_NEED_MORE)
		st = rfc5322_finish(&h);
	assert_int_equal(st, RFC5322_DONE);
	struct dkim_verify_config cfg = {.now = 1700000100};
	struct dkim_verifier *v = dkim_verifier_new(&cfg);
	out.n = dkim_verifier_start(v, &h);
	dkim_verifier_body(v, (const uint8_t *)msg + used, len - used);
	dkim_verifier_body_end(v);
	for (size_t i = 0; i < out.n; i++) {
		const char *name = dkim_verifier_key_name(v, i);
		if (!name)
			continue;
		const struct dkim_key *k = NULL;
		const char *why = NULL;
		enum dkim_key_status ks = lookup(NULL, name, &k, &why);
		dkim_verifier_set_key(v, i, ks, k, why);
	}
	dkim_verifier_finish(v);
	for (size_t i = 0; i < out.n && i < 8; i++) {
		out.r[i] = dkim_verifier_result(v, i)->result;
		out.why[i] = dkim_verifier_result(v, i)->reason;
	}
	dkim_verifier_free(v);
	rfc5322_free(&h);
	return out;
}

/* ---- records -------------------------------------------------------- */

struct msg_seen {
	struct results res;
	bool has_dkim, complete, midstream;
	const char *gap_reason;
	char helo[64], mail_from[64], rcpts[128];
	size_t helo_len, mail_len, rcpt0_len; /* whole lengths */
	unsigned transaction;
	uint64_t header_bytes, body_bytes;
	size_t nfields;
};

struct seen {
	struct msg_seen m[4];
	size_t nm;
	bool session_done;
	struct dp_session_record srec;
	char end_reason[32];
	size_t nreplies; /* srec.replies lives during the callback only */
	uint64_t replies_over;
	struct dp_reply first_reply, last_reply;
};

static void
on_message(void *arg, const struct dp_message_record *rec)
{
	struct seen *sn = arg;
	assert_true(sn->nm < 4);
	struct msg_seen *m = &sn->m[sn->nm++];
	memset(m, 0, sizeof(*m));
	m->has_dkim = rec->dkim != NULL;
	if (rec->dkim) {
		m->res.n = dkim_verifier_count(rec->dkim);
		for (size_t i = 0; i < m->res.n && i < 8; i++) {
			m->res.r[i] = dkim_verifier_result(rec->dkim, i)->result;
			m->res.why[i] = dkim_verifier_result(rec->dkim, i)->reason;
		}
	}
	m->complete = rec->complete;
	m->midstream = rec->info->midstream;
	m->gap_reason = rec->gap_reason;
	snprintf(m->helo, sizeof(m->helo), "%s", rec->helo);
	m->helo_len = strlen(rec->helo);
	m->mail_len = strlen(rec->mail_from);
	m->rcpt0_len = rec->nrcpt ? strlen(rec->rcpt[0]) : 0;
	snprintf(m->mail_from, sizeof(m->mail_from), "%s", rec->mail_from);
	for (size_t i = 0; i < rec->nrcpt; i++) {
		size_t l = strlen(m->rcpts);
		snprintf(m->rcpts + l, sizeof(m->rcpts) - l, "%s%s", i ? "," : "", rec->rcpt[i]);
	}
	m->transaction = rec->transaction;
	m->header_bytes = rec->header_bytes;
	m->body_bytes = rec->body_bytes;
	m->nfields = rec->hdr ? rec->hdr->nfields : 0;
}

static void
on_session(void *arg, const struct dp_session_record *rec)
{
	struct seen *sn = arg;
	assert_false(sn->session_done);
	sn->session_done = true;
	sn->srec = *rec;
	sn->nreplies = rec->nreplies;
	sn->replies_over = rec->replies_over;
	if (rec->nreplies) {
		sn->first_reply = rec->replies[0];
		sn->last_reply = rec->replies[rec->nreplies - 1];
	}
	snprintf(sn->end_reason, sizeof(sn->end_reason), "%s", rec->end_reason);
}

/* ---- the conversation ------------------------------------------------- */

enum { T_PLAIN, T_MSG1, T_MSG2_CMDS };

struct item {
	int dir;
	size_t off, len;
	int tag;
};

struct conv {
	uint8_t *buf[2];
	size_t len[2], cap[2];
	struct item items[32];
	size_t n;
};

static void
conv_add(struct conv *c, int dir, const void *p, size_t len, int tag)
{
	if (c->len[dir] + len > c->cap[dir]) {
		c->cap[dir] = (c->len[dir] + len) * 2;
		c->buf[dir] = realloc(c->buf[dir], c->cap[dir]);
		assert_non_null(c->buf[dir]);
	}
	memcpy(c->buf[dir] + c->len[dir], p, len);
	assert_true(c->n < 32);
	c->items[c->n++] = (struct item){dir, c->len[dir], len, tag};
	c->len[dir] += len;
}

static void
conv_str(struct conv *c, int dir, const char *s)
{
	conv_add(c, dir, s, strlen(s), T_PLAIN);
}

static void
conv_free(struct conv *c)
{
	free(c->buf[0]);
	free(c->buf[1]);
}

/* Lines starting with "." get another; the terminator is appended. */
static char *
dot_stuff(const char *m, size_t len, size_t *out_len)
{
	char *o = malloc(len * 2 + 8);
	size_t n = 0;
	bool bol = true;
	for (size_t i = 0; i < len; i++) {
		if (bol && m[i] == '.')
			o[n++] = '.';
		o[n++] = m[i];
		bol = m[i] == '\n' && i > 0 && m[i - 1] == '\r';
	}
	memcpy(o + n, ".\r\n", 3);
	*out_len = n + 3;
	return o;
}

static const char msg1_text[] =
	"From: Alice <alice@example.com>\r\n"
	"To: bob@example.org\r\n"
	"Subject: dots\r\n"
	"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	"Message-ID: <1@example.com>\r\n"
	"\r\n"
	"Hello Bob,\r\n"
	".hidden line\r\n"
	"..two dots\r\n"
	".\r\n"
	" . not at the start\r\n"
	"end\r\n";

static const char msg2_text[] =
	"From: Alice <alice@example.com>\r\n"
	"To: carol@example.org\r\n"
	"Subject: chunks\r\n"
	"Message-ID: <2@example.com>\r\n"
	"\r\n"
	"Carol,\r\n"
	"\r\n"
	".this line is not stuffed in BDAT\r\n"
	"bye\r\n";

struct fixture {
	char *m1, *m2;
	size_t m1_len, m2_len;
	struct results r1, r2;
	struct conv c;
	size_t msg1_item, cmds2_item;
};

static void
fixture_build(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->m1 = sign(msg1_text, strlen(msg1_text), rsa, "rsa", CANON_RELAXED, CANON_RELAXED,
		     &f->m1_len);
	/* two signatures on the second message: ed25519 simple/simple and rsa */
	size_t tl;
	char *t = sign(msg2_text, strlen(msg2_text), ed, "ed", CANON_SIMPLE, CANON_SIMPLE, &tl);
	f->m2 = sign(t, tl, rsa, "rsa", CANON_RELAXED, CANON_SIMPLE, &f->m2_len);
	free(t);
	f->r1 = reference(f->m1, f->m1_len);
	f->r2 = reference(f->m2, f->m2_len);
	assert_int_equal(f->r1.n, 1);
	assert_int_equal(f->r2.n, 2);
	assert_int_equal(f->r1.r[0], DKIM_PASS);
	assert_int_equal(f->r2.r[0], DKIM_PASS);
	assert_int_equal(f->r2.r[1], DKIM_PASS);

	struct conv *c = &f->c;
	conv_str(c, 1, "220 mx.example.org ESMTP\r\n");
	conv_str(c, 0, "EHLO client.example.com\r\n");
	conv_str(c, 1, "250-mx.example.org\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n"
		       "250 SIZE 10000000\r\n");
	conv_str(c, 0, "MAIL FROM:<alice@example.com> SIZE=900\r\nRCPT TO:<bob@example.org>\r\n"
		       "RCPT TO:<nobody@example.org>\r\nDATA\r\n");
	conv_str(c, 1, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n");
	size_t sl;
	char *stuffed = dot_stuff(f->m1, f->m1_len, &sl);
	f->msg1_item = c->n;
	conv_add(c, 0, stuffed, sl, T_MSG1);
	free(stuffed);
	conv_str(c, 1, "250 2.0.0 queued as 1\r\n");
	/* the second message in two chunks, pipelined with its envelope */
	size_t half = f->m2_len / 2;
	char cmd[256];
	snprintf(cmd, sizeof(cmd),
		 "MAIL FROM:<alice@example.com>\r\nRCPT TO:<carol@example.org>\r\nBDAT %zu\r\n",
		 half);
	f->cmds2_item = c->n;
	conv_add(c, 0, cmd, strlen(cmd), T_MSG2_CMDS);
	conv_add(c, 0, f->m2, half, T_PLAIN);
	snprintf(cmd, sizeof(cmd), "BDAT %zu LAST\r\n", f->m2_len - half);
	conv_str(c, 0, cmd);
	conv_add(c, 0, f->m2 + half, f->m2_len - half, T_PLAIN);
	conv_str(c, 1, "250 ok\r\n250 ok\r\n250 chunk ok\r\n250 queued as 2\r\n");
	conv_str(c, 0, "QUIT\r\n");
	conv_str(c, 1, "221 bye\r\n");
}

static void
fixture_free(struct fixture *f)
{
	free(f->m1);
	free(f->m2);
	conv_free(&f->c);
}

struct feed_opts {
	uint64_t seed;
	bool shuffle;       /* reorder, duplicate, overlapping retransmissions */
	int lose_item;      /* -1: none; else drop one inner segment of that item */
	int rst_item;       /* -1: none; else RST from the client half-way into it */
	size_t start_item;  /* > 0: mid-stream pickup there (no SYN) */
	size_t start_skip;  /* bytes of the start item not seen */
	size_t max_seg;     /* 0: 1460 */
};

struct seg {
	size_t off, len;
};

static const uint32_t isn[2] = {0xfffff000u, 77777u}; /* the client's wraps */

static void
send_seg(struct dp_session *s, const struct conv *c, int dir, size_t off, size_t len,
	 uint8_t flags)
{
	dp_session_segment(s, (enum dp_dir)dir, isn[dir] + (uint32_t)off, 0, flags | 0x10,
			   c->buf[dir] + off, len, 0);
}

static void
feed(struct dp_session *s, const struct fixture *f, const struct feed_opts *o)
{
	const struct conv *c = &f->c;
	uint64_t seed = o->seed;
	if (o->start_item == 0) {
		dp_session_segment(s, DP_DIR_C2S, isn[0] - 1, 0, 0x02, NULL, 0, 0);
		dp_session_segment(s, DP_DIR_S2C, isn[1] - 1, isn[0], 0x12, NULL, 0, 0);
	}
	static struct seg segs[8192];
	for (size_t i = o->start_item; i < c->n; i++) {
		const struct item *it = &c->items[i];
		size_t ns = 0;
		size_t from = it->off + (i == o->start_item ? o->start_skip : 0);
		for (size_t off = from; off < it->off + it->len && ns < 8000;) {
			size_t k = 1 + tu_rand(&seed) % (o->max_seg ? o->max_seg : 1460);
			if (k > it->off + it->len - off)
				k = it->off + it->len - off;
			segs[ns++] = (struct seg){off, k};
			if (o->shuffle && tu_rand(&seed) % 5 == 0 && off > it->off) {
				/* an overlapping retransmission of the previous bytes */
				size_t back = 1 + tu_rand(&seed) % 40;
				if (back > off - it->off)
					back = off - it->off;
				segs[ns++] = (struct seg){off - back, back + k / 2};
			}
			off += k;
		}
		assert_true(ns < 8000);
		if (o->shuffle)
			for (size_t a = 0; a + 1 < ns; a++) {
				size_t b = a + tu_rand(&seed) % 3;
				if (b >= ns)
					b = ns - 1;
				struct seg t = segs[a];
				segs[a] = segs[b];
				segs[b] = t;
			}
		size_t lose = (size_t)-1;
		if ((int)i == o->lose_item) {
			assert_true(ns >= 3);
			/* past the signature's name: its result must still be said */
			lose = ns / 2 + tu_rand(&seed) % (ns - 1 - ns / 2);
		}
		size_t stop = (int)i == o->rst_item ? ns / 2 : ns;
		for (size_t k = 0; k < stop; k++) {
			if (k == lose)
				continue;
			send_seg(s, c, it->dir, segs[k].off, segs[k].len, 0);
			if (o->shuffle && tu_rand(&seed) % 7 == 0)
				send_seg(s, c, it->dir, segs[k].off, segs[k].len, 0); /* duplicate */
		}
		if ((int)i == o->rst_item) {
			size_t at = segs[stop].off;
			send_seg(s, c, 0, at, 0, 0x04);
			return;
		}
	}
	send_seg(s, c, 0, c->len[0], 0, 0x01);
	send_seg(s, c, 1, c->len[1], 0, 0x01);
}

static struct dp_session *
new_session(struct seen *sn, bool midstream)
{
	memset(sn, 0, sizeof(*sn));
	struct dp_session_config cfg = {
		.verify = true,
		.now = 1700000100,
		.key_lookup = lookup,
		.on_message = on_message,
		.on_session = on_session,
		.arg = sn,
	};
	struct dp_session_info info = {.flow_id = 1, .midstream = midstream};
	info.client.port = 40000;
	info.server.port = 25;
	struct dp_session *s = dp_session_new(&cfg, &info);
	assert_non_null(s);
	return s;
}

static void
expect_same(const struct msg_seen *m, const struct results *want)
{
	assert_true(m->has_dkim);
	assert_int_equal(m->res.n, want->n);
	for (size_t i = 0; i < want->n; i++) {
		if (m->res.r[i] != want->r[i] || strcmp(m->res.why[i], want->why[i]) != 0)
			fail_msg("signature %zu: %s (%s), verifier says %s (%s)", i,
				 dkim_result_name(m->res.r[i]), m->res.why[i],
				 dkim_result_name(want->r[i]), want->why[i]);
	}
}

static void
expect_temperror(const struct msg_seen *m, size_t n, const char *reason)
{
	assert_true(m->has_dkim);
	assert_false(m->complete);
	assert_string_equal(m->gap_reason, reason);
	assert_int_equal(m->res.n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(m->res.r[i], DKIM_TEMPERROR);
		assert_string_equal(m->res.why[i], reason);
	}
}

static void
test_conversation(void **state)
{
	(void)state;
	struct fixture f;
	fixture_build(&f);
	for (uint64_t seed = 1; seed <= 30; seed++) {
		struct seen sn;
		struct dp_session *s = new_session(&sn, false);
		struct feed_opts o = {.seed = seed, .shuffle = seed > 1, .lose_item = -1,
				      .rst_item = -1};
		feed(s, &f, &o);
		dp_session_end(s, NULL);
		assert_int_equal(sn.nm, 2);
		expect_same(&sn.m[0], &f.r1);
		expect_same(&sn.m[1], &f.r2);
		assert_true(sn.m[0].complete && sn.m[1].complete);
		assert_false(sn.m[0].midstream);
		assert_null(sn.m[0].gap_reason);
		assert_string_equal(sn.m[0].helo, "client.example.com");
		assert_string_equal(sn.m[0].mail_from, "alice@example.com");
		assert_string_equal(sn.m[0].rcpts, "bob@example.org"); /* nobody@ was refused */
		assert_string_equal(sn.m[1].rcpts, "carol@example.org");
		assert_int_equal(sn.m[0].transaction, 1);
		assert_int_equal(sn.m[1].transaction, 2);
		assert_int_equal(sn.m[0].header_bytes + sn.m[0].body_bytes, f.m1_len);
		assert_int_equal(sn.m[1].header_bytes + sn.m[1].body_bytes, f.m2_len);
		assert_int_equal(sn.m[1].nfields, 6);
		assert_true(sn.session_done);
		assert_true(sn.srec.pipelining && sn.srec.chunking && !sn.srec.starttls_offered);
		assert_int_equal(sn.srec.messages, 2);
		assert_int_equal(sn.srec.transactions, 2);
		assert_string_equal(sn.end_reason, "fin");
		const struct dp_session_counters *k = dp_session_counters(s);
		assert_int_equal(k->gaps, 0);
		assert_int_equal(k->overlaps_differ, 0);
		assert_int_equal(k->messages, 2);
		if (seed > 1)
			assert_true(k->retransmits + k->out_of_order > 0);
		dp_session_end(s, "again"); /* idempotent */
		dp_session_free(s);
	}
	fixture_free(&f);
}

/* ---- parking ---------------------------------------------------------- */

struct parked_seen {
	struct msgstream_parked *p[4];
	char mail_from[4][64];
	size_t n, ready_calls;
	bool rec_had_dkim;
};

static bool
not_ready(void *arg, const char *name)
{
	struct parked_seen *ps = arg;
	(void)name;
	ps->ready_calls++;
	return false;
}

static void
on_parked(void *arg, const struct dp_message_record *rec, struct msgstream_parked *p)
{
	struct parked_seen *ps = arg;
	assert_true(ps->n < 4);
	ps->rec_had_dkim |= rec->dkim != NULL || rec->hdr != NULL;
	snprintf(ps->mail_from[ps->n], sizeof(ps->mail_from[0]), "%s", rec->mail_from);
	ps->p[ps->n++] = p;
}

static void
no_message(void *arg, const struct dp_message_record *rec)
{
	(void)arg;
	(void)rec;
	fail_msg("a message was decided although its keys were not ready");
}

static void
test_parked(void **state)
{
	(void)state;
	struct fixture f;
	fixture_build(&f);
	struct parked_seen ps = {0};
	struct dp_session_config cfg = {
		.verify = true,
		.now = 1700000100,
		.key_lookup = lookup,
		.on_message = no_message,
		.arg = &ps,
		.key_ready = not_ready,
		.on_parked = on_parked,
	};
	struct dp_session_info info = {.flow_id = 7};
	struct dp_session *s = dp_session_new(&cfg, &info);
	assert_non_null(s);
	struct feed_opts o = {.seed = 3, .shuffle = true, .lose_item = -1, .rst_item = -1};
	feed(s, &f, &o);
	dp_session_free(s); /* the parked messages outlive their session */
	assert_int_equal(ps.n, 2);
	assert_false(ps.rec_had_dkim);
	assert_true(ps.ready_calls >= 2);
	assert_string_equal(ps.mail_from[0], "alice@example.com");
	const struct results *want[2] = {&f.r1, &f.r2};
	for (size_t m = 0; m < 2; m++) {
		const char *name = msgstream_parked_key_name(ps.p[m], 0);
		assert_non_null(name);
		msgstream_parked_finish(ps.p[m], lookup, NULL);
		const struct dkim_verifier *v = msgstream_parked_verifier(ps.p[m]);
		assert_int_equal(dkim_verifier_count(v), want[m]->n);
		for (size_t i = 0; i < want[m]->n; i++) {
			const struct dkim_sig_result *r = dkim_verifier_result(v, i);
			if (r->result != want[m]->r[i] || strcmp(r->reason, want[m]->why[i]) != 0)
				fail_msg("parked message %zu signature %zu: %s (%s), verifier says %s (%s)", m,
					 i, dkim_result_name(r->result), r->reason,
					 dkim_result_name(want[m]->r[i]), want[m]->why[i]);
		}
		assert_true(msgstream_parked_header(ps.p[m])->nfields > 0);
		assert_non_null(msgstream_parked_arc(ps.p[m])); /* "none": no ARC fields */
		msgstream_parked_free(ps.p[m]);
	}
	msgstream_parked_free(NULL);
	fixture_free(&f);
}

/* A tampered body is fail through the session exactly as through the
 * verifier: the session does not turn real failures into something else. */
static void
test_tampered(void **state)
{
	(void)state;
	struct fixture f;
	fixture_build(&f);
	char *p = strstr((char *)f.c.buf[0], "Hello Bob");
	assert_non_null(p);
	p[0] = 'J';
	char *q = strstr(f.m1, "Hello Bob");
	q[0] = 'J';
	struct results want = reference(f.m1, f.m1_len);
	assert_int_equal(want.r[0], DKIM_FAIL);
	struct seen sn;
	struct dp_session *s = new_session(&sn, false);
	struct feed_opts o = {.seed = 5, .shuffle = true, .lose_item = -1, .rst_item = -1};
	feed(s, &f, &o);
	dp_session_free(s);
	assert_int_equal(sn.nm, 2);
	expect_same(&sn.m[0], &want);
	expect_same(&sn.m[1], &f.r2);
	fixture_free(&f);
}

static void
test_lost_segment(void **state)
{
	(void)state;
	struct fixture f;
	fixture_build(&f);
	for (uint64_t seed = 1; seed <= 20; seed++) {
		struct seen sn;
		struct dp_session *s = new_session(&sn, false);
		/* small segments so the message has several; in order, so no
		 * retransmission happens to cover the lost one */
		struct feed_opts o = {.seed = seed, .lose_item = (int)f.msg1_item, .rst_item = -1,
				      .max_seg = 64};
		feed(s, &f, &o);
		dp_session_end(s, NULL);
		assert_true(sn.nm >= 1);
		if (sn.m[0].res.n != 1)
			fail_msg("seed %llu: %zu signatures, %llu+%llu bytes, %zu fields",
				 (unsigned long long)seed, sn.m[0].res.n,
				 (unsigned long long)sn.m[0].header_bytes,
				 (unsigned long long)sn.m[0].body_bytes, sn.m[0].nfields);
		expect_temperror(&sn.m[0], 1, "capture-gap");
		/* the next transaction is found again and verifies */
		assert_int_equal(sn.nm, 2);
		expect_same(&sn.m[1], &f.r2);
		assert_true(dp_session_counters(s)->gaps > 0);
		dp_session_free(s);
	}
	fixture_free(&f);
}

static void
test_rst_in_data(void **state)
{
	(void)state;
	struct fixture f;
	fixture_build(&f);
	struct seen sn;
	struct dp_session *s = new_session(&sn, false);
	struct feed_opts o = {.seed = 3, .lose_item = -1, .rst_item = (int)f.msg1_item,
			      .max_seg = 64};
	feed(s, &f, &o);
	assert_int_equal(sn.nm, 1); /* the RST ends the message at once */
	expect_temperror(&sn.m[0], 1, "session-reset");
	dp_session_end(s, NULL);
	assert_string_equal(sn.end_reason, "rst");
	dp_session_free(s);
	fixture_free(&f);
}

static void
test_midstream(void **state)
{
	(void)state;
	struct fixture f;
	fixture_build(&f);
	struct seen sn;
	struct dp_session *s = new_session(&sn, true);
	/* picked up in the last bytes of the first message: its end is seen,
	 * but it is no message (no start); the second one verifies */
	size_t len1 = f.c.items[f.msg1_item].len;
	struct feed_opts o = {.seed = 9, .lose_item = -1, .rst_item = -1,
			      .start_item = f.msg1_item, .start_skip = len1 - 12};
	feed(s, &f, &o);
	dp_session_end(s, "capture-end");
	assert_int_equal(sn.nm, 1);
	expect_same(&sn.m[0], &f.r2);
	assert_true(sn.m[0].complete);
	assert_string_equal(sn.m[0].mail_from, "alice@example.com");
	assert_string_equal(sn.m[0].helo, "");
	assert_string_equal(sn.end_reason, "capture-end");
	dp_session_free(s);
	/* the same when the capture side did not know: no SYN is seen */
	s = new_session(&sn, false);
	feed(s, &f, &o);
	dp_session_end(s, "capture-end");
	assert_int_equal(sn.nm, 1);
	expect_same(&sn.m[0], &f.r2);
	assert_string_equal(sn.m[0].mail_from, "alice@example.com");
	assert_true(sn.m[0].midstream);
	/* the lines of the first message's tail were skipped, not commands */
	assert_int_equal(dp_session_counters(s)->commands, 5); /* MAIL RCPT BDAT BDAT QUIT */
	dp_session_free(s);
	fixture_free(&f);
}

/* Implicit TLS (port 465): the same plaintext conversation, fed to a session
 * that knows the connection is TLS from its first byte, is not parsed: no
 * message, no HELO, no command; every byte is counted in the record, also
 * when the capture joined late (no SYN: no switch back to SMTP parsing). */
static void
test_implicit_tls(void **state)
{
	(void)state;
	struct fixture f;
	fixture_build(&f);
	for (int late = 0; late < 2; late++) {
		struct seen sn;
		memset(&sn, 0, sizeof(sn));
		struct dp_session_config cfg = {.verify = true,
						.now = 1700000100,
						.key_lookup = lookup,
						.on_message = on_message,
						.on_session = on_session,
						.arg = &sn};
		struct dp_session_info info = {.flow_id = 2, .implicit_tls = true};
		info.client.port = 40001;
		info.server.port = 465;
		struct dp_session *s = dp_session_new(&cfg, &info);
		assert_non_null(s);
		struct feed_opts o = {.seed = 3, .lose_item = -1, .rst_item = -1,
				      .start_item = (size_t)late};
		feed(s, &f, &o);
		dp_session_end(s, NULL);
		assert_int_equal(sn.nm, 0);
		assert_true(sn.session_done);
		assert_true(sn.srec.info->implicit_tls);
		assert_string_equal(sn.srec.helo, "");
		assert_int_equal(sn.srec.messages, 0);
		size_t skipped = late ? f.c.items[0].len : 0;
		size_t want[2] = {f.c.len[0], f.c.len[1]};
		want[f.c.items[0].dir] -= skipped;
		assert_int_equal(sn.srec.tls_bytes[DP_DIR_C2S], want[0]);
		assert_int_equal(sn.srec.tls_bytes[DP_DIR_S2C], want[1]);
		assert_int_equal(dp_session_counters(s)->commands, 0);
		dp_session_free(s);
	}
	fixture_free(&f);
}

/* Two BDAT transactions pipelined before any reply: the first ends before its
 * RCPT replies come, so a refusal of its recipient must not land on the
 * second transaction's recipient. */
static void
test_bdat_pipelined(void **state)
{
	(void)state;
	struct seen sn;
	struct dp_session *s = new_session(&sn, false);
	const char *c1 = "EHLO c.example\r\n"
			 "MAIL FROM:<a@example.com>\r\nRCPT TO:<x@example.org>\r\n"
			 "RCPT TO:<y@example.org>\r\nBDAT 11 LAST\r\nSubject: 1\r\n"
			 "MAIL FROM:<a@example.com>\r\nRCPT TO:<z@example.org>\r\n"
			 "BDAT 11 LAST\r\n";
	const char *c2 = "Subject: 2\r\nQUIT\r\n";
	/* the replies up to z's come before the second chunk's bytes */
	const char *s1 = "220 hi\r\n250 hi\r\n250 ok\r\n550 no x\r\n250 ok\r\n250 ok\r\n"
			 "250 ok\r\n250 ok\r\n";
	const char *s2 = "250 ok\r\n221 bye\r\n";
	uint32_t cs = 10, ss = 20;
	dp_session_segment(s, DP_DIR_C2S, cs++, 0, 0x02, NULL, 0, 0);
	dp_session_segment(s, DP_DIR_S2C, ss++, 0, 0x12, NULL, 0, 0);
	dp_session_segment(s, DP_DIR_C2S, cs, 0, 0x10, (const uint8_t *)c1, strlen(c1), 0);
	cs += (uint32_t)strlen(c1);
	dp_session_segment(s, DP_DIR_S2C, ss, 0, 0x10, (const uint8_t *)s1, strlen(s1), 0);
	ss += (uint32_t)strlen(s1);
	dp_session_segment(s, DP_DIR_C2S, cs, 0, 0x10, (const uint8_t *)c2, strlen(c2), 0);
	dp_session_segment(s, DP_DIR_S2C, ss, 0, 0x10, (const uint8_t *)s2, strlen(s2), 0);
	dp_session_end(s, NULL);
	assert_int_equal(sn.nm, 2);
	/* the first record was made before any reply: both recipients listed */
	assert_string_equal(sn.m[0].rcpts, "x@example.org,y@example.org");
	assert_string_equal(sn.m[1].rcpts, "z@example.org");
	assert_int_equal(sn.m[1].transaction, 2);
	assert_true(sn.m[0].complete && sn.m[1].complete);
	assert_int_equal(sn.m[0].res.n, 0);
	dp_session_free(s);
}

/* DP_SESSION_MAX_PATH: a HELO name, reverse- and forward-path of that length
 * are kept whole; one byte more is cut to it. */
static void
test_path_limit(void **state)
{
	(void)state;
	for (size_t past = 0; past < 2; past++) {
		size_t n = DP_SESSION_MAX_PATH + past;
		char *name = malloc(n + 1);
		memset(name, 'h', n);
		name[n] = '\0';
		char *cl = malloc(3 * n + 200);
		int cl_len = snprintf(cl, 3 * n + 200,
				      "HELO %s\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nBDAT 2 LAST\r\n\r\n",
				      name, name, name);
		struct seen sn;
		struct dp_session *s = new_session(&sn, false);
		dp_session_segment(s, DP_DIR_C2S, 1, 0, 0x02, NULL, 0, 0);
		dp_session_segment(s, DP_DIR_C2S, 2, 0, 0x10, (const uint8_t *)cl, (size_t)cl_len, 0);
		assert_int_equal(sn.nm, 1);
		dp_session_free(s);
		assert_int_equal(sn.m[0].helo_len, DP_SESSION_MAX_PATH);
		assert_int_equal(sn.m[0].mail_len, DP_SESSION_MAX_PATH);
		assert_int_equal(sn.m[0].rcpt0_len, DP_SESSION_MAX_PATH);
		assert_int_equal(sn.m[0].helo[0], 'h');
		free(cl);
		free(name);
	}
}

/* DP_SESSION_MAX_REPLIES: the greeting and NOOP replies up to the limit are
 * all kept, in order, with the command each answers; one more is counted. */
static void
test_reply_limit(void **state)
{
	(void)state;
	for (unsigned past = 0; past < 2; past++) {
		unsigned n = DP_SESSION_MAX_REPLIES + past; /* replies the server sends */
		struct seen sn;
		struct dp_session *s = new_session(&sn, false);
		uint32_t cseq = 1, sseq = 100;
		dp_session_segment(s, DP_DIR_C2S, cseq++, 0, 0x02, NULL, 0, 0);
		dp_session_segment(s, DP_DIR_S2C, sseq++, 0, 0x12, NULL, 0, 0);
		static const char greet[] = "220 mx.example ESMTP\r\n", noop[] = "NOOP\r\n",
				  ok[] = "250 2.0.0 Ok\r\n";
		dp_session_segment(s, DP_DIR_S2C, sseq, 0, 0x18, (const uint8_t *)greet,
				   sizeof(greet) - 1, 0);
		sseq += sizeof(greet) - 1;
		for (unsigned i = 1; i < n; i++) {
			dp_session_segment(s, DP_DIR_C2S, cseq, 0, 0x18, (const uint8_t *)noop,
					   sizeof(noop) - 1, 0);
			cseq += sizeof(noop) - 1;
			dp_session_segment(s, DP_DIR_S2C, sseq, 0, 0x18, (const uint8_t *)ok,
					   sizeof(ok) - 1, 0);
			sseq += sizeof(ok) - 1;
		}
		dp_session_free(s);
		assert_true(sn.session_done);
		assert_int_equal(sn.nreplies, DP_SESSION_MAX_REPLIES);
		assert_int_equal(sn.replies_over, past);
		assert_int_equal(sn.first_reply.verb, SMTPP_GREETING);
		assert_int_equal(sn.first_reply.code, 220);
		assert_int_equal(sn.last_reply.verb, SMTPP_NOOP);
		assert_int_equal(sn.last_reply.code, 250);
	}
}

/* Steady state: a session that already carried a message carries the next
 * one (same envelope, segments in order and out of order) without a single
 * allocation while its segments go through; only the end of the message
 * (key lookup and signature check) may allocate, a bounded few times. */
static void
test_no_alloc_per_segment(void **state)
{
	(void)state;
	struct fixture f;
	fixture_build(&f);
	const struct conv *c = &f.c;
	const struct item *msg = &c->items[f.msg1_item];
	struct seen sn;
	struct dp_session *s = new_session(&sn, false);
	struct feed_opts o = {.seed = 4, .lose_item = -1, .rst_item = -1};
	feed(s, &f, &o); /* warms everything up: two messages, FIN */
	assert_int_equal(sn.nm, 2);
	dp_session_free(s);
	/* a fresh session: first message warms up, then the same message again */
	s = new_session(&sn, false);
	dp_session_segment(s, DP_DIR_C2S, isn[0] - 1, 0, 0x02, NULL, 0, 0);
	dp_session_segment(s, DP_DIR_S2C, isn[1] - 1, 0, 0x12, NULL, 0, 0);
	uint32_t cs = isn[0], ss = isn[1];
	for (int round = 0; round < 3; round++) {
		const char *env = "MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n";
		const char *rep = "250 ok\r\n250 ok\r\n354 go\r\n";
		if (round == 0) {
			const char *g = "220 hi\r\n";
			dp_session_segment(s, DP_DIR_S2C, ss, 0, 0x10, (const uint8_t *)g, strlen(g), 0);
			ss += (uint32_t)strlen(g);
		}
		unsigned long before = n_allocs;
		dp_session_segment(s, DP_DIR_C2S, cs, 0, 0x10, (const uint8_t *)env, strlen(env), 0);
		cs += (uint32_t)strlen(env);
		dp_session_segment(s, DP_DIR_S2C, ss, 0, 0x10, (const uint8_t *)rep, strlen(rep), 0);
		ss += (uint32_t)strlen(rep);
		/* the message in 50-byte segments, neighbours swapped (out of
		 * order), all but the last: that one ends the message */
		size_t nseg = (msg->len + 49) / 50, last = (nseg - 1) * 50;
		assert_true(nseg > 4);
		for (size_t k = 0; k + 1 < nseg; k++) {
			size_t q = k ^ 1;
			if (q + 1 >= nseg)
				q = k;
			dp_session_segment(s, DP_DIR_C2S, cs + (uint32_t)(q * 50), 0, 0x10,
					   c->buf[0] + msg->off + q * 50, 50, 0);
		}
		unsigned long during = n_allocs - before;
		unsigned long at_end = n_allocs;
		dp_session_segment(s, DP_DIR_C2S, cs + (uint32_t)last, 0, 0x10,
				   c->buf[0] + msg->off + last, msg->len - last, 0);
		cs += (uint32_t)msg->len;
		unsigned long end_allocs = n_allocs - at_end;
		const char *q = "250 queued\r\n";
		dp_session_segment(s, DP_DIR_S2C, ss, 0, 0x10, (const uint8_t *)q, strlen(q), 0);
		ss += (uint32_t)strlen(q);
		assert_int_equal(sn.nm, (size_t)round + 1);
		expect_same(&sn.m[round], &f.r1);
		print_message("round %d: %lu allocations while the segments went in, %lu at the "
			      "message end\n", round, during, end_allocs);
		if (round > 0) {
			assert_int_equal(during, 0);
			assert_true(end_allocs <= 4);
		}
	}
	dp_session_free(s);
	fixture_free(&f);
}

/* ---- the verifier pool (msgstream_set_pool) ---- */

struct pooled_seen {
	struct results res;
	bool has_dkim, has_arc, complete;
	enum arc_result arc;
	const char *arc_reason;
	unsigned arc_sets;
};

/* One message through a msgstream using pool (NULL: none); with cut below
 * len, the bytes from cut on are lost (a capture gap). */
static struct pooled_seen
stream_pooled(struct msgstream_pool *pool, const char *m, size_t len, size_t cut)
{
	struct msgstream ms;
	msgstream_init(&ms, true, 1700000100, lookup, NULL);
	msgstream_set_pool(&ms, pool);
	msgstream_begin(&ms);
	msgstream_data(&ms, (const uint8_t *)m, cut < len ? cut : len);
	if (cut < len)
		msgstream_gap(&ms, len - cut);
	msgstream_end(&ms, cut >= len, cut < len ? "capture-gap" : NULL);
	struct pooled_seen out = {0};
	const struct dkim_verifier *v = msgstream_verifier(&ms);
	out.has_dkim = v != NULL;
	out.res.n = dkim_verifier_count(v);
	for (size_t i = 0; i < out.res.n && i < 8; i++) {
		out.res.r[i] = dkim_verifier_result(v, i)->result;
		out.res.why[i] = dkim_verifier_result(v, i)->reason;
	}
	const struct arc_chain *c = msgstream_arc(&ms);
	out.has_arc = c != NULL;
	if (c) {
		out.arc = c->result;
		out.arc_reason = c->reason;
		out.arc_sets = c->nsets;
	}
	out.complete = ms.complete;
	msgstream_free(&ms);
	return out;
}

static void
expect_pooled_same(const struct pooled_seen *a, const struct pooled_seen *b)
{
	assert_int_equal(a->has_dkim, b->has_dkim);
	assert_int_equal(a->complete, b->complete);
	assert_int_equal(a->res.n, b->res.n);
	for (size_t i = 0; i < a->res.n && i < 8; i++) {
		assert_int_equal(a->res.r[i], b->res.r[i]);
		assert_string_equal(a->res.why[i] ? a->res.why[i] : "", b->res.why[i] ? b->res.why[i] : "");
	}
	assert_int_equal(a->has_arc, b->has_arc);
	assert_int_equal(a->arc, b->arc);
	assert_int_equal(a->arc_sets, b->arc_sets);
	assert_string_equal(a->arc_reason ? a->arc_reason : "", b->arc_reason ? b->arc_reason : "");
}

/* msg sealed once (ARC i=1) by the rsa key; malloc'd. */
static char *
arc_sealed(const char *msg, size_t len, size_t *out_len)
{
	struct arc_seal_params p = {
		.key = rsa,
		.algo = DKIM_RSA_SHA256,
		.domain = "example.com",
		.selector = "rsa",
		.authserv_id = "mx.example.org",
		.hcanon = CANON_RELAXED,
		.bcanon = CANON_RELAXED,
		.t = 1700000000,
	};
	char *fields;
	size_t flen;
	const char *why = NULL;
	if (arc_seal(&p, (const uint8_t *)msg, len, &fields, &flen, &why) != 0)
		fail_msg("arc_seal: %s", why);
	char *out = malloc(flen + len + 1);
	memcpy(out, fields, flen);
	memcpy(out + flen, msg, len);
	out[flen + len] = '\0';
	free(fields);
	*out_len = flen + len;
	return out;
}

/* A verifier and validator reused from the pool, after a message cut short
 * by a gap, after a failing one and after a passing one, give each message
 * what a fresh stream gives it; the pool keeps at most its max. */
static void
test_pool_reuse(void **state)
{
	(void)state;
	size_t sl, al, tl;
	char *good = sign(msg1_text, strlen(msg1_text), rsa, "rsa", CANON_RELAXED, CANON_SIMPLE, &sl);
	char *arcm = arc_sealed(good, sl, &al);
	/* the body changed under both the DKIM signature and the AMS */
	char *tamp = malloc(al + 1);
	memcpy(tamp, arcm, al + 1);
	tl = al;
	char *hit = strstr(tamp, "Hello Bob");
	assert_non_null(hit);
	hit[0] = 'J';
	const char *msgs[] = {arcm, tamp, good, arcm};
	size_t lens[] = {al, tl, sl, al};
	struct pooled_seen fresh[4];
	for (size_t i = 0; i < 4; i++)
		fresh[i] = stream_pooled(NULL, msgs[i], lens[i], SIZE_MAX);
	assert_int_equal(fresh[0].res.r[0], DKIM_PASS);
	assert_int_equal(fresh[0].arc, ARC_PASS);
	assert_int_equal(fresh[1].res.r[0], DKIM_FAIL);
	assert_int_equal(fresh[1].arc, ARC_FAIL);
	assert_int_equal(fresh[2].arc, ARC_NONE);

	struct msgstream_pool *pool = msgstream_pool_new(1);
	assert_non_null(pool);
	/* first: a message cut in its body; its state goes back to the pool */
	struct pooled_seen cut = stream_pooled(pool, arcm, al, al - 20);
	assert_false(cut.complete);
	assert_int_equal(cut.res.r[0], DKIM_TEMPERROR);
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < 4; i++) {
			struct pooled_seen got = stream_pooled(pool, msgs[i], lens[i], SIZE_MAX);
			expect_pooled_same(&got, &fresh[i]);
		}
	struct msgstream_pool_stats st;
	msgstream_pool_stats(pool, &st);
	assert_int_equal(st.made, 2); /* one verifier, one validator, ever */
	assert_int_equal(st.reused, 8 + 6);
	assert_int_equal(st.held, 2);
	assert_int_equal(st.freed, 0);

	/* two streams at once with max 1: the second one handed back is freed */
	struct msgstream a, b;
	msgstream_init(&a, true, 1700000100, lookup, NULL);
	msgstream_init(&b, true, 1700000100, lookup, NULL);
	msgstream_set_pool(&a, pool);
	msgstream_set_pool(&b, pool);
	msgstream_begin(&a);
	msgstream_begin(&b);
	msgstream_data(&a, (const uint8_t *)good, sl);
	msgstream_data(&b, (const uint8_t *)good, sl);
	msgstream_end(&a, true, NULL);
	msgstream_end(&b, true, NULL);
	assert_int_equal(dkim_verifier_result(msgstream_verifier(&a), 0)->result, DKIM_PASS);
	assert_int_equal(dkim_verifier_result(msgstream_verifier(&b), 0)->result, DKIM_PASS);
	msgstream_trim(&a); /* an idle session holds no verifier */
	assert_null(a.v);
	msgstream_free(&b);
	msgstream_free(&a);
	msgstream_pool_stats(pool, &st);
	assert_int_equal(st.freed, 1);
	assert_int_equal(st.held, 2);
	msgstream_pool_free(pool);

	/* the limit: at MSGSTREAM_POOL_MAX a pool, past it (or 0) none */
	pool = msgstream_pool_new(MSGSTREAM_POOL_MAX);
	assert_non_null(pool);
	msgstream_pool_free(pool);
	assert_null(msgstream_pool_new(MSGSTREAM_POOL_MAX + 1));
	assert_null(msgstream_pool_new(0));
	msgstream_pool_free(NULL);
	free(tamp);
	free(arcm);
	free(good);
}

/* msgstream on its own, in random spans; results as msg_seen. */
static struct msg_seen
stream_one(const char *m, size_t len, uint64_t seed)
{
	struct msgstream ms;
	msgstream_init(&ms, true, 1700000100, lookup, NULL);
	msgstream_begin(&ms);
	for (size_t off = 0; off < len;) {
		size_t k = 1 + tu_rand(&seed) % 3000;
		if (k > len - off)
			k = len - off;
		msgstream_data(&ms, (const uint8_t *)m + off, k);
		off += k;
	}
	msgstream_end(&ms, true, NULL);
	struct msg_seen out = {0};
	const struct dkim_verifier *v = msgstream_verifier(&ms);
	out.has_dkim = v != NULL;
	out.res.n = dkim_verifier_count(v);
	for (size_t i = 0; i < out.res.n && i < 8; i++) {
		out.res.r[i] = dkim_verifier_result(v, i)->result;
		out.res.why[i] = dkim_verifier_result(v, i)->reason;
	}
	out.complete = ms.complete;
	out.gap_reason = ms.reason;
	out.nfields = ms.hdr.nfields;
	msgstream_free(&ms);
	return out;
}

/* The header block's limits (RFC5322_MAX_FIELDS here) at and past: at the
 * limit the message verifies; past it the signature is temperror/memcap,
 * never fail. A header block that does not parse is temperror too. */
static void
test_header_limits(void **state)
{
	(void)state;
	size_t cap = RFC5322_MAX_FIELDS * 16 + 256, n = 0;
	char *m = malloc(cap);
	/* From + Subject + fillers + the signature = RFC5322_MAX_FIELDS fields */
	n += (size_t)snprintf(m + n, cap - n, "From: alice@example.com\r\nSubject: many\r\n");
	for (unsigned i = 0; i < RFC5322_MAX_FIELDS - 3; i++)
		n += (size_t)snprintf(m + n, cap - n, "X-F: %u\r\n", i);
	n += (size_t)snprintf(m + n, cap - n, "\r\nbody\r\n");
	size_t sl;
	char *sm = sign(m, n, rsa, "rsa", CANON_RELAXED, CANON_RELAXED, &sl);
	struct msg_seen at = stream_one(sm, sl, 1);
	assert_int_equal(at.nfields, RFC5322_MAX_FIELDS);
	assert_true(at.complete);
	assert_int_equal(at.res.n, 1);
	assert_int_equal(at.res.r[0], DKIM_PASS);
	/* one more field above the signature */
	char *past = malloc(sl + 32);
	int pl = snprintf(past, sl + 32, "X-Extra: 1\r\n%s", sm);
	struct msg_seen over = stream_one(past, (size_t)pl, 2);
	expect_temperror(&over, 1, "memcap");
	/* a line that is no field, below the signature */
	char *bad = malloc(sl + 32);
	char *eol = strstr(sm, "\r\nFrom:");
	assert_non_null(eol);
	size_t head = (size_t)(eol - sm) + 2;
	memcpy(bad, sm, head);
	int bl = snprintf(bad + head, sl + 32 - head, "not a field\r\n%s", sm + head);
	struct msg_seen mal = stream_one(bad, head + (size_t)bl, 3);
	expect_temperror(&mal, 1, "malformed-header");
	free(bad);
	free(past);
	free(sm);
	free(m);
}

static size_t
rss_kb(void)
{
	FILE *fp = fopen("/proc/self/statm", "r");
	assert_non_null(fp);
	unsigned long size = 0, res = 0;
	assert_int_equal(fscanf(fp, "%lu %lu", &size, &res), 2);
	fclose(fp);
	return res * 4;
}

/* A 50 MB body goes through; memory stays flat while it streams. */
static void
test_big_body(void **state)
{
	(void)state;
	enum { BODY = 50 * 1024 * 1024, LINE = 100 };
	const char *hdr = "From: alice@example.com\r\nSubject: big\r\n\r\n";
	size_t hl = strlen(hdr);
	char *m = malloc(hl + BODY + 1);
	memcpy(m, hdr, hl);
	for (size_t i = 0; i < BODY; i += LINE) {
		memset(m + hl + i, 'a' + (int)(i / LINE % 26), LINE - 2);
		m[hl + i + LINE - 2] = '\r';
		m[hl + i + LINE - 1] = '\n';
	}
	size_t sl;
	char *signed_msg = sign(m, hl + BODY, rsa, "rsa", CANON_RELAXED, CANON_RELAXED, &sl);
	free(m);
	size_t slen = (size_t)(strstr(signed_msg, "\r\n\r\n") - signed_msg) + 4;
	struct seen sn;
	struct dp_session *s = new_session(&sn, false);
	uint32_t cseq = 1000, sseq = 9000;
	dp_session_segment(s, DP_DIR_C2S, cseq++, 0, 0x02, NULL, 0, 0);
	dp_session_segment(s, DP_DIR_S2C, sseq++, 0, 0x12, NULL, 0, 0);
	const char *pre[] = {"220 hi\r\n", "EHLO c\r\n", "250 hi\r\n",
			     "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n", "250 ok\r\n250 ok\r\n"};
	for (size_t i = 0; i < 5; i++) {
		bool srv = pre[i][0] == '2';
		size_t l = strlen(pre[i]);
		dp_session_segment(s, srv ? DP_DIR_S2C : DP_DIR_C2S, srv ? sseq : cseq, 0, 0x10,
				   (const uint8_t *)pre[i], l, 0);
		*(srv ? &sseq : &cseq) += (uint32_t)l;
	}
	char bdat[64];
	int bl = snprintf(bdat, sizeof(bdat), "BDAT %zu LAST\r\n", sl);
	dp_session_segment(s, DP_DIR_C2S, cseq, 0, 0x10, (const uint8_t *)bdat, (size_t)bl, 0);
	cseq += (uint32_t)bl;
	size_t before = rss_kb(), peak = before;
	for (size_t off = 0; off < sl; off += 1460) {
		size_t k = sl - off < 1460 ? sl - off : 1460;
		dp_session_segment(s, DP_DIR_C2S, cseq, 0, 0x10, (const uint8_t *)signed_msg + off, k, 0);
		cseq += (uint32_t)k;
		if (off % (1460 * 4096) == 0) {
			size_t r = rss_kb();
			if (r > peak)
				peak = r;
		}
	}
	size_t after = rss_kb();
	if (after > peak)
		peak = after;
	print_message("RSS %zu kB before the body, peak %zu kB while streaming 50 MB\n", before, peak);
	assert_true(peak - before < 4096);
	assert_int_equal(sn.nm, 1);
	assert_true(sn.m[0].complete);
	assert_int_equal(sn.m[0].res.n, 1);
	assert_int_equal(sn.m[0].res.r[0], DKIM_PASS);
	assert_int_equal(sn.m[0].header_bytes, slen);
	assert_int_equal(sn.m[0].body_bytes, sl - slen);
	dp_session_free(s);
	free(signed_msg);
}

/* An idle session: greeting, EHLO, MAIL and RCPT seen, then quiet. */
static void
test_idle_size(void **state)
{
	(void)state;
	enum { N = 2000 };
	static struct dp_session *ss[N];
	struct seen sn;
	const char *cl = "EHLO client.example.com\r\nMAIL FROM:<alice@example.com>\r\n"
			 "RCPT TO:<bob@example.org>\r\n";
	const char *sv = "220 mx.example.org ESMTP\r\n250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n"
			 "250 ok\r\n250 ok\r\n";
	long long a = live_bytes;
	for (size_t i = 0; i < N; i++) {
		ss[i] = new_session(&sn, false);
		dp_session_segment(ss[i], DP_DIR_C2S, 1, 0, 0x02, NULL, 0, 0);
		dp_session_segment(ss[i], DP_DIR_S2C, 5, 0, 0x12, NULL, 0, 0);
		/* split lines, to exercise the line buffers, then trimmed */
		dp_session_segment(ss[i], DP_DIR_S2C, 6, 0, 0x10, (const uint8_t *)sv, 10, 0);
		dp_session_segment(ss[i], DP_DIR_S2C, 16, 0, 0x10, (const uint8_t *)sv + 10,
				   strlen(sv) - 10, 0);
		dp_session_segment(ss[i], DP_DIR_C2S, 2, 0, 0x10, (const uint8_t *)cl, strlen(cl), 0);
		dp_session_trim(ss[i]);
	}
	size_t per = (size_t)(live_bytes - a) / N;
	print_message("idle session: %zu bytes on the heap each, struct included\n", per);
	assert_true(per <= 2048);
	for (size_t i = 0; i < N; i++) {
		sn.session_done = false;
		dp_session_free(ss[i]);
	}
}

/* ---- the worker's signature batch (sigbatch.h) ------------------------ */

/* Every record of a worker, in order, as text: what on_message and
 * on_session were given (all of it that a consumer reads). */
struct wlog {
	char *buf;
	size_t len, cap;
	unsigned messages, sessions;
};

static void
wlog_add(struct wlog *l, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(line));
	if (l->len + (size_t)n + 1 > l->cap) {
		l->cap = (l->len + (size_t)n + 1) * 2;
		l->buf = realloc(l->buf, l->cap);
		assert_non_null(l->buf);
	}
	memcpy(l->buf + l->len, line, (size_t)n + 1);
	l->len += (size_t)n;
}

static void
wlog_message(void *arg, const struct dp_message_record *rec)
{
	struct wlog *l = arg;
	l->messages++;
	wlog_add(l, "M flow=%llu t=%u helo=%s from=%s n=%zu", (unsigned long long)rec->info->flow_id,
		 rec->transaction, rec->helo, rec->mail_from, rec->nrcpt);
	for (size_t i = 0; i < rec->nrcpt; i++)
		wlog_add(l, " rcpt=%s", rec->rcpt[i]);
	wlog_add(l, " complete=%d gap=%s hb=%llu bb=%llu fields=%zu arc=%s", rec->complete,
		 rec->gap_reason ? rec->gap_reason : "-", (unsigned long long)rec->header_bytes,
		 (unsigned long long)rec->body_bytes, rec->hdr ? rec->hdr->nfields : 0,
		 rec->arc ? arc_result_name(rec->arc->result) : "-");
	if (rec->hdr && rec->hdr->nfields > 0) {
		const struct rfc5322_field *f = &rec->hdr->fields[rec->hdr->nfields - 1];
		wlog_add(l, " last=%.*s", (int)(f->len < 40 ? f->len : 40),
			 rfc5322_field_raw(rec->hdr, f));
	}
	for (size_t i = 0; rec->dkim && i < dkim_verifier_count(rec->dkim); i++) {
		const struct dkim_sig_result *r = dkim_verifier_result(rec->dkim, i);
		wlog_add(l, " sig%zu=%s(%s)", i, dkim_result_name(r->result), r->reason);
	}
	wlog_add(l, "\n");
}

static void
wlog_session(void *arg, const struct dp_session_record *rec)
{
	struct wlog *l = arg;
	l->sessions++;
	wlog_add(l, "S flow=%llu messages=%u end=%s\n", (unsigned long long)rec->info->flow_id,
		 rec->messages, rec->end_reason);
}

/* One session's segments, in order: the handshake, the conversation cut
 * into pieces of random size (lose: drop one inner piece of msg1, a
 * capture gap), FIN both ways. */
struct wseg {
	int dir;
	size_t off, len;
	uint8_t flags;
};

struct wsess {
	struct conv c; /* a private copy: some are tampered with */
	struct wseg seg[512];
	size_t n, next;
	struct dp_session *s;
};

static void
conv_copy(struct conv *dst, const struct conv *src)
{
	*dst = *src;
	for (int d = 0; d < 2; d++) {
		dst->buf[d] = malloc(src->cap[d]);
		memcpy(dst->buf[d], src->buf[d], src->len[d]);
	}
}

static void
tamper(struct conv *c, const char *what, char to)
{
	uint8_t *p = memmem(c->buf[0], c->len[0], what, strlen(what));
	assert_non_null(p);
	p[strlen(what) - 1] = (uint8_t)to;
}

static void
wsess_build(struct wsess *w, const struct fixture *f, int kind, uint64_t seed)
{
	memset(w, 0, sizeof(*w));
	conv_copy(&w->c, &f->c);
	if (kind == 1)
		tamper(&w->c, "Hello Bob", 'X'); /* body hash mismatch: no job */
	if (kind == 2)
		tamper(&w->c, "Subject: dots", 'z'); /* a job whose verify says 0 */
	w->seg[w->n++] = (struct wseg){.dir = 0, .len = (size_t)-1, .flags = 0x02};
	w->seg[w->n++] = (struct wseg){.dir = 1, .len = (size_t)-1, .flags = 0x12};
	for (size_t i = 0; i < w->c.n; i++) {
		const struct item *it = &w->c.items[i];
		size_t first = w->n;
		for (size_t off = it->off; off < it->off + it->len;) {
			size_t k = 1 + tu_rand(&seed) % 700;
			if (k > it->off + it->len - off)
				k = it->off + it->len - off;
			assert_true(w->n < 500);
			w->seg[w->n++] = (struct wseg){it->dir, off, k, 0};
			off += k;
		}
		if (kind == 3 && it->tag == T_MSG1 && w->n - first >= 3) {
			/* lose one inner piece of the first message */
			size_t drop = first + (w->n - first) / 2;
			memmove(&w->seg[drop], &w->seg[drop + 1], (w->n - drop - 1) * sizeof(w->seg[0]));
			w->n--;
		}
	}
	w->seg[w->n++] = (struct wseg){0, w->c.len[0], 0, 0x01};
	w->seg[w->n++] = (struct wseg){1, w->c.len[1], 0, 0x01};
}

static void
wsess_send(struct wsess *w, const struct wseg *g)
{
	if (g->len == (size_t)-1) { /* SYN, SYN-ACK */
		dp_session_segment(w->s, (enum dp_dir)g->dir, isn[g->dir] - 1, 0, g->flags, NULL, 0, 0);
		return;
	}
	dp_session_segment(w->s, (enum dp_dir)g->dir, isn[g->dir] + (uint32_t)g->off, 0,
			   g->flags | 0x10, w->c.buf[g->dir] + g->off, g->len, 0);
}

#define WB_SESSIONS 24

/* WB_SESSIONS sessions of the fixture's conversation (2 messages: 1 and 2
 * signatures), some tampered (body: fail without a job; header: a job that
 * fails) and some with a lost piece, their segments interleaved at random;
 * every record goes to one log, as a worker's callbacks would. batch_size
 * 1: no batch. Every few segments the "burst" ends (sigbatch_burst). */
static void
worker_run(const struct fixture *f, unsigned batch_size, unsigned wait, uint64_t seed,
	   struct msgstream_pool *pool, struct wlog *l, struct sigbatch_stats *st)
{
	memset(l, 0, sizeof(*l));
	struct sigbatch *b = NULL;
	if (batch_size > 1) {
		b = sigbatch_new(batch_size, wait, pool, wlog_message, l);
		assert_non_null(b);
	}
	static struct wsess ws[WB_SESSIONS];
	struct dp_session_config cfg = {
		.verify = true,
		.now = 1700000100,
		.key_lookup = lookup,
		.on_message = wlog_message,
		.on_session = wlog_session,
		.arg = l,
		.pool = pool,
		.batch = b,
	};
	for (unsigned i = 0; i < WB_SESSIONS; i++) {
		wsess_build(&ws[i], f, (int)(i % 5 == 4 ? 0 : i % 5), seed * 100 + i);
		struct dp_session_info info = {.flow_id = 1000 + i};
		info.client.port = (uint16_t)(40000 + i);
		info.server.port = 25;
		ws[i].s = dp_session_new(&cfg, &info);
		assert_non_null(ws[i].s);
	}
	unsigned open = WB_SESSIONS, sent = 0;
	uint64_t r = seed;
	while (open > 0) {
		unsigned i = (unsigned)(tu_rand(&r) % WB_SESSIONS);
		struct wsess *w = &ws[i];
		if (!w->s)
			continue;
		wsess_send(w, &w->seg[w->next++]);
		if (w->next == w->n) {
			dp_session_free(w->s); /* ends it: "fin" */
			w->s = NULL;
			open--;
		}
		if (b && ++sent % 32 == 0)
			sigbatch_burst(b);
	}
	if (b) {
		sigbatch_run(b); /* the end of input */
		*st = *sigbatch_stats(b);
		sigbatch_free(b);
	}
	for (unsigned i = 0; i < WB_SESSIONS; i++)
		conv_free(&ws[i].c);
}

static void
test_sig_batch_same_records(void **state)
{
	(void)state;
	struct fixture f;
	fixture_build(&f);
	struct msgstream_pool *pool = msgstream_pool_new(MSGSTREAM_POOL_MAX);
	assert_non_null(pool);
	for (uint64_t seed = 1; seed <= 4; seed++) {
		struct wlog off, on;
		struct sigbatch_stats st = {0};
		worker_run(&f, 1, 1, seed, pool, &off, &st);
		assert_int_equal(off.messages, 2 * WB_SESSIONS);
		assert_int_equal(off.sessions, WB_SESSIONS);
		/* the mix the batch must keep apart: passes, both failures, gaps */
		assert_non_null(strstr(off.buf, "sig1=pass"));
		assert_non_null(strstr(off.buf, "(body hash mismatch)"));
		assert_non_null(strstr(off.buf, "(signature did not verify)"));
		assert_non_null(strstr(off.buf, "sig0=temperror(capture-gap)"));
		assert_non_null(strstr(off.buf, "helo=client.example.com"));
		const unsigned sizes[] = {2, 3, 8, SIGBATCH_MAX};
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			const unsigned waits[] = {1, SIGBATCH_MAX_WAIT};
			for (size_t j = 0; j < 2; j++) {
				worker_run(&f, sizes[k], waits[j], seed, pool, &on, &st);
				if (on.len != off.len || memcmp(on.buf, off.buf, off.len) != 0)
					fail_msg("seed %llu, batch %u wait %u: records differ:\n--- "
						 "without\n%s--- with\n%s",
						 (unsigned long long)seed, sizes[k], waits[j], off.buf,
						 on.buf);
				assert_true(st.batches > 0);
				assert_true(st.max_jobs <= sizes[k] - 1 + DKIM_MAX_SIGS);
				if (sizes[k] >= 8 && waits[j] > 1)
					/* several messages' signatures in one batch */
					assert_true(st.jobs > st.batches);
				free(on.buf);
			}
		}
		free(off.buf);
	}
	/* recycled, not made: a second round makes no verifier */
	struct msgstream_pool_stats p0, p1;
	msgstream_pool_stats(pool, &p0);
	struct wlog on;
	struct sigbatch_stats st;
	worker_run(&f, 8, 4, 9, pool, &on, &st);
	msgstream_pool_stats(pool, &p1);
	assert_int_equal(p1.made, p0.made);
	assert_true(p1.reused > p0.reused);
	free(on.buf);
	msgstream_pool_free(pool);
	fixture_free(&f);
}

/* The limits: size 2..SIGBATCH_MAX, wait 1..SIGBATCH_MAX_WAIT; a message
 * waits max_wait bursts, no fewer, no more. */
static void
test_sig_batch_limits(void **state)
{
	(void)state;
	struct wlog l = {0};
	assert_null(sigbatch_new(1, 1, NULL, wlog_message, &l));
	assert_null(sigbatch_new(SIGBATCH_MAX + 1, 1, NULL, wlog_message, &l));
	assert_null(sigbatch_new(2, 0, NULL, wlog_message, &l));
	assert_null(sigbatch_new(2, SIGBATCH_MAX_WAIT + 1, NULL, wlog_message, &l));
	struct sigbatch *b = sigbatch_new(2, SIGBATCH_MAX_WAIT, NULL, wlog_message, &l);
	assert_non_null(b);
	sigbatch_free(b);
	sigbatch_free(NULL);

	struct fixture f;
	fixture_build(&f);
	for (unsigned wait = 1; wait <= SIGBATCH_MAX_WAIT; wait += SIGBATCH_MAX_WAIT - 1) {
		memset(&l, 0, sizeof(l));
		b = sigbatch_new(SIGBATCH_MAX, wait, NULL, wlog_message, &l);
		assert_non_null(b);
		struct dp_session_config cfg = {
			.verify = true, .now = 1700000100, .key_lookup = lookup,
			.on_message = wlog_message, .on_session = wlog_session, .arg = &l, .batch = b,
		};
		struct dp_session_info info = {.flow_id = 5};
		struct dp_session *s = dp_session_new(&cfg, &info);
		/* up to the end of the first message, whose reply comes next */
		dp_session_segment(s, DP_DIR_C2S, isn[0] - 1, 0, 0x02, NULL, 0, 0);
		dp_session_segment(s, DP_DIR_S2C, isn[1] - 1, isn[0], 0x12, NULL, 0, 0);
		for (size_t i = 0; i <= f.msg1_item; i++) {
			const struct item *it = &f.c.items[i];
			dp_session_segment(s, (enum dp_dir)it->dir, isn[it->dir] + (uint32_t)it->off, 0,
					   0x10, f.c.buf[it->dir] + it->off, it->len, 0);
		}
		assert_int_equal(sigbatch_waiting(b), 1);
		assert_int_equal(l.messages, 0);
		for (unsigned k = 1; k < wait; k++)
			sigbatch_burst(b);
		assert_int_equal(l.messages, 0); /* wait - 1 bursts: still waiting */
		sigbatch_burst(b);
		assert_int_equal(l.messages, 1); /* the wait-th: run */
		assert_int_equal(sigbatch_waiting(b), 0);
		assert_int_equal(sigbatch_stats(b)->aged, 1);
		assert_non_null(strstr(l.buf, "sig0=pass"));
		dp_session_free(s);
		assert_int_equal(l.sessions, 1);
		sigbatch_free(b);
		free(l.buf);
	}
	fixture_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conversation), cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_lost_segment), cmocka_unit_test(test_rst_in_data),
		cmocka_unit_test(test_midstream),    cmocka_unit_test(test_big_body),
		cmocka_unit_test(test_parked),       cmocka_unit_test(test_pool_reuse),
		cmocka_unit_test(test_reply_limit),
		cmocka_unit_test(test_idle_size),    cmocka_unit_test(test_header_limits),
		cmocka_unit_test(test_bdat_pipelined),  cmocka_unit_test(test_path_limit),
		cmocka_unit_test(test_no_alloc_per_segment), cmocka_unit_test(test_implicit_tls),
		cmocka_unit_test(test_sig_batch_same_records), cmocka_unit_test(test_sig_batch_limits),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
