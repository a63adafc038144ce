/*
 * dpk (cli/dpkeys): the dataplane's asynchronous key cache and parked
 * messages, over a real cpc connection to a control plane played by a
 * thread here that answers KEY_REQUESTs from a table (or never, for names
 * it is told to sit on). The message is the bundled sample
 * tests/data/sample/01-rsa-dkimpy.eml through msgstream, its key the one in
 * tests/data/sample/zone.db.
 *  - a parked message finishes "pass" once the answer comes; the next
 *    message with that key is a cache hit (decided at once, not parked);
 *  - TTL: an answer with TTL 1 is stale after a second and asked again;
 *    a negative answer (MISSING) is cached for its TTL;
 *  - bounds: DPK_MAX_PARKED messages at once (by its configured value 3:
 *    3 parked, the 4th decided at once "key-park-full"), DPK_MAX_PARKED_BYTES
 *    (two messages whose header blocks pass it: the second is refused),
 *    the park timeout ("parked-timeout"), DPK_MAX_KEYS names (at the limit
 *    every name is asked, past it the next is not).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cpclient.h"
#include "cpm.h"
#include "dpkeys.h"
#include "msgstream.h"
#include "testutil.h"

#define KEYNAME "mail2026._domainkey.sample.example"

static struct {
	char dir[64], path[108];
	int lfd, fd;
	pthread_t thr;
	char key[2048];     /* the TXT text of KEYNAME */
	uint32_t ttl;       /* what the answers say */
	bool missing;       /* answer MISSING instead */
	bool silent;        /* answer nothing */
	uint64_t requests;  /* KEY_REQUESTs seen */
	pthread_mutex_t lock;
} F;

static char *eml;
static size_t eml_len;

static void
send_msg(int fd, const struct cpm_msg *m)
{
	uint8_t b[CPM_MAX_DATAGRAM];
	struct cpm_writer w;
	cpm_writer_init(&w, b, sizeof(b));
	assert_int_equal(cpm_encode(&w, m), 0);
	send(fd, b, w.len, MSG_NOSIGNAL);
}

/* The control plane: HELLO, then answers KEY_REQUESTs as F says. */
static void *
fake_cp(void *arg)
{
	(void)arg;
	static uint8_t b[CPM_MAX_DATAGRAM + 1];
	static struct cpm_msg m;
	F.fd = accept(F.lfd, NULL, NULL);
	if (F.fd < 0)
		return NULL;
	recv(F.fd, b, sizeof(b), 0);
	struct cpm_msg h = {.type = CPM_HELLO};
	h.u.hello = (struct cpm_hello){CPM_MAGIC, CPM_VERSION, CPM_ROLE_CONTROLPLANE};
	send_msg(F.fd, &h);
	for (;;) {
		ssize_t n = recv(F.fd, b, sizeof(b), 0);
		if (n <= 0)
			return NULL;
		struct cpm_reader r;
		char why[128];
		cpm_reader_init(&r, b, (size_t)n);
		while (cpm_decode_next(&r, &m, why, sizeof(why)) == 1) {
			if (m.type != CPM_KEY_REQUEST)
				continue;
			pthread_mutex_lock(&F.lock);
			F.requests++;
			bool silent = F.silent, missing = F.missing;
			uint32_t ttl = F.ttl;
			pthread_mutex_unlock(&F.lock);
			if (silent)
				continue;
			struct cpm_msg a = {.type = CPM_KEY_ANSWER};
			a.u.key_answer.req_id = m.u.key_request.req_id;
			a.u.key_answer.ttl = ttl;
			bool ours = cpm_str_eq(m.u.key_request.name, KEYNAME);
			a.u.key_answer.status = ours && !missing ? CPM_KEY_FOUND : CPM_KEY_MISSING;
			a.u.key_answer.record = cpm_s(ours && !missing ? F.key : "NXDOMAIN");
			send_msg(F.fd, &a);
		}
	}
}

static struct cpc *
connect_cp(void)
{
	pthread_create(&F.thr, NULL, fake_cp, NULL);
	char why[256];
	struct cpc *c = cpc_connect(F.path, false, why, sizeof(why));
	if (!c)
		fail_msg("cpc_connect: %s", why);
	return c;
}

static void
disconnect_cp(struct cpc *c)
{
	cpc_free(c);
	pthread_join(F.thr, NULL);
	close(F.fd);
	F.fd = -1;
}

/* The TXT strings of name in zone.db, joined. */
static void
zone_key(const char *zone, const char *name, char *out, size_t cap)
{
	const char *p = strstr(zone, name);
	assert_non_null(p);
	const char *end = strchr(p, ')');
	size_t n = 0;
	for (p = strchr(p, '"'); p && p < end; p = strchr(p + 1, '"')) {
		const char *q = strchr(p + 1, '"');
		assert_true(n + (size_t)(q - p - 1) < cap);
		memcpy(out + n, p + 1, (size_t)(q - p - 1));
		n += (size_t)(q - p - 1);
		p = q;
	}
	out[n] = '\0';
}

static int
setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	pthread_mutex_init(&F.lock, NULL);
	F.ttl = 300;
	const char *src = getenv("WS_SOURCE_ROOT");
	char path[1024];
	snprintf(path, sizeof(path), "%s/tests/data/sample/01-rsa-dkimpy.eml", src ? src : ".");
	eml = tu_read_file(path, &eml_len);
	assert_non_null(eml);
	snprintf(path, sizeof(path), "%s/tests/data/sample/zone.db", src ? src : ".");
	size_t zl;
	char *zone = tu_read_file(path, &zl);
	assert_non_null(zone);
	zone_key(zone, KEYNAME, F.key, sizeof(F.key));
	free(zone);
	snprintf(F.dir, sizeof(F.dir), "/tmp/ws-dpk-XXXXXX");
	assert_non_null(mkdtemp(F.dir));
	snprintf(F.path, sizeof(F.path), "%s/cpm.sock", F.dir);
	F.lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, F.path, strlen(F.path) + 1);
	assert_int_equal(bind(F.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(F.lfd, 4), 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	close(F.lfd);
	unlink(F.path);
	rmdir(F.dir);
	free(eml);
	return 0;
}

/* ---- what the worker does ---- */

struct emitted {
	unsigned n;
	enum dkim_result last;
	char why[160];
	uint64_t header_bytes;
};

static void
emit(void *arg, const struct dp_message_record *rec)
{
	struct emitted *e = arg;
	e->n++;
	assert_non_null(rec->dkim);
	assert_int_equal(dkim_verifier_count(rec->dkim), 1);
	const struct dkim_sig_result *r = dkim_verifier_result(rec->dkim, 0);
	e->last = r->result;
	snprintf(e->why, sizeof(e->why), "%s", r->reason ? r->reason : "");
	assert_string_equal(rec->mail_from, "sender@sample.example");
}

static struct dp_session_info info = {.flow_id = 5};

/* One message through msgstream with dpk as its key source: parked (true)
 * or decided at once (emitted, and the refusal counted, as replay does). */
static bool
one_message(struct dpk *k, struct emitted *e, uint64_t fake_header_bytes)
{
	struct msgstream ms;
	msgstream_init(&ms, true, 1795937000, dpk_lookup, k);
	msgstream_set_key_ready(&ms, dpk_ready);
	msgstream_begin(&ms);
	msgstream_data(&ms, (const uint8_t *)eml, eml_len);
	msgstream_end(&ms, true, NULL);
	struct dp_message_record rec = {.info = &info, .helo = "client.example",
	                                .mail_from = "sender@sample.example", .complete = true,
	                                .header_bytes = fake_header_bytes ? fake_header_bytes
	                                                                  : ms.header_bytes};
	bool parked = false;
	if (msgstream_pending(&ms)) {
		struct msgstream_parked *p = msgstream_park(&ms);
		assert_non_null(p);
		dpk_park(k, &rec, p, emit, e);
		parked = true;
	} else {
		rec.dkim = msgstream_verifier(&ms);
		rec.hdr = &ms.hdr;
		emit(e, &rec);
		dpk_message_done(k);
	}
	msgstream_free(&ms);
	return parked;
}

/* Polls until n messages were emitted (or 3 s). */
static void
poll_until(struct dpk *k, struct emitted *e, unsigned n)
{
	for (int i = 0; i < 300 && e->n < n; i++) {
		dpk_poll(k, false, emit, e);
		usleep(10000);
	}
	assert_int_equal(e->n, n);
}

static void
test_park_then_hit(void **state)
{
	(void)state;
	struct cpc *c = connect_cp();
	struct dpk *k = dpk_new(c, 0, 0, 0);
	struct emitted e = {0};
	assert_true(one_message(k, &e, 0)); /* not cached: parked */
	assert_int_equal(e.n, 0);
	assert_int_equal(dpk_stats(k)->parked_now, 1);
	poll_until(k, &e, 1);
	assert_int_equal(e.last, DKIM_PASS);
	assert_int_equal(dpk_stats(k)->finished, 1);
	assert_int_equal(dpk_stats(k)->parked_now, 0);
	assert_int_equal(dpk_stats(k)->parked_bytes, 0);
	assert_false(one_message(k, &e, 0)); /* cached now: decided at once */
	assert_int_equal(e.n, 2);
	assert_int_equal(e.last, DKIM_PASS);
	assert_int_equal(dpk_stats(k)->hits, 1);
	assert_int_equal(dpk_stats(k)->requests, 1);
	dpk_free(k);
	disconnect_cp(c);
}

static void
test_ttl_and_negative(void **state)
{
	(void)state;
	F.ttl = 1;
	struct cpc *c = connect_cp();
	struct dpk *k = dpk_new(c, 0, 0, 0);
	struct emitted e = {0};
	assert_true(one_message(k, &e, 0));
	poll_until(k, &e, 1);
	assert_false(one_message(k, &e, 0)); /* fresh for its second */
	usleep(1100000);
	assert_true(one_message(k, &e, 0)); /* stale: asked again, parked */
	assert_int_equal(dpk_stats(k)->requests, 2);
	poll_until(k, &e, 3);
	dpk_free(k);
	/* a negative answer is kept for its TTL: MISSING at once next time */
	F.ttl = 60;
	F.missing = true;
	k = dpk_new(c, 0, 0, 0);
	assert_true(one_message(k, &e, 0));
	poll_until(k, &e, 4);
	assert_int_equal(e.last, DKIM_PERMERROR);
	assert_false(one_message(k, &e, 0));
	assert_int_equal(e.last, DKIM_PERMERROR);
	assert_int_equal(dpk_stats(k)->requests, 1);
	F.missing = false;
	F.ttl = 300;
	dpk_free(k);
	disconnect_cp(c);
}

static void
test_park_bounds(void **state)
{
	(void)state;
	F.silent = true;
	struct cpc *c = connect_cp();
	/* count: 3 at once (configured), the 4th refused */
	struct dpk *k = dpk_new(c, 0, 3, 300);
	struct emitted e = {0};
	for (int i = 0; i < 3; i++)
		assert_true(one_message(k, &e, 0));
	assert_false(one_message(k, &e, 0));
	assert_int_equal(e.n, 1);
	assert_int_equal(e.last, DKIM_TEMPERROR);
	assert_non_null(strstr(e.why, "key-park-full"));
	assert_int_equal(dpk_stats(k)->park_refused, 1);
	assert_int_equal(dpk_stats(k)->parked_max, 3);
	/* the park timeout: the three end temperror parked-timeout */
	poll_until(k, &e, 4);
	assert_non_null(strstr(e.why, "parked-timeout"));
	assert_int_equal(dpk_stats(k)->parked_timeout, 3);
	assert_int_equal(dpk_stats(k)->parked_now, 0);
	dpk_free(k);
	/* bytes: one message whose header block makes the park pass
	 * DPK_MAX_PARKED_BYTES is parked (under it before), the next is not */
	k = dpk_new(c, 0, 0, 300);
	memset(&e, 0, sizeof(e));
	assert_true(one_message(k, &e, DPK_MAX_PARKED_BYTES - DPK_PARKED_COST));
	assert_true(dpk_stats(k)->parked_bytes >= DPK_MAX_PARKED_BYTES);
	assert_false(one_message(k, &e, 0));
	assert_non_null(strstr(e.why, "key-park-full"));
	dpk_poll(k, true, emit, &e); /* final: waits out the parked one */
	assert_int_equal(e.n, 2);
	dpk_free(k);
	/* names: DPK_MAX_KEYS pending names are all asked, the next is not
	 * (a fresh connection: nothing pending in cpc from the parts above) */
	disconnect_cp(c);
	c = connect_cp();
	k = dpk_new(c, 0, 0, 0);
	char name[64];
	for (unsigned i = 0; i < DPK_MAX_KEYS; i++) {
		snprintf(name, sizeof(name), "s%u._domainkey.example.com", i);
		assert_false(dpk_ready(k, name));
	}
	assert_int_equal(dpk_stats(k)->requests, DPK_MAX_KEYS);
	assert_false(dpk_ready(k, "past._domainkey.example.com"));
	assert_int_equal(dpk_stats(k)->requests, DPK_MAX_KEYS);
	const struct dkim_key *key;
	const char *why;
	assert_int_equal(dpk_lookup(k, "past._domainkey.example.com", &key, &why), DKIM_KEY_TEMPFAIL);
	dpk_free(k);
	F.silent = false;
	disconnect_cp(c);
}

/* DPK_MAX_TTL_S and DPK_TEMPFAIL_TTL_S at and past: the TTL an answer is
 * cached for (test_ttl_and_negative shows the cache keeps to it). */
/* DPK_PARK_TIMEOUT_MS is what a dpk made without --park-timeout waits
 * (waiting it out here would take 7 s, and cpc's own CPC_KEY_TIMEOUT_MS
 * TEMPFAIL ends a silent request first: the reason it is longer); a
 * configured time is kept as given. With one: a message is still parked
 * before its time, and ends parked-timeout once the time is up, not earlier. */
static void
test_park_timeout(void **state)
{
	(void)state;
	struct cpc *c = connect_cp();
	struct dpk *k = dpk_new(c, 0, 0, 0);
	assert_int_equal(dpk_park_timeout_ms(k), DPK_PARK_TIMEOUT_MS);
	assert_true(DPK_PARK_TIMEOUT_MS > CPC_KEY_TIMEOUT_MS);
	dpk_free(k);
	k = dpk_new(c, 0, 0, 1);
	assert_int_equal(dpk_park_timeout_ms(k), 1);
	dpk_free(k);
	F.silent = true;
	const unsigned t = 400;
	k = dpk_new(c, 0, 0, t);
	struct emitted e = {0};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_true(one_message(k, &e, 0));
	usleep(t / 2 * 1000);
	dpk_poll(k, false, emit, &e);
	assert_int_equal(e.n, 0); /* before its time: still parked */
	assert_int_equal(dpk_stats(k)->parked_now, 1);
	poll_until(k, &e, 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	assert_true(ms >= t);
	assert_non_null(strstr(e.why, "parked-timeout"));
	assert_int_equal(dpk_stats(k)->parked_timeout, 1);
	dpk_free(k);
	F.silent = false;
	disconnect_cp(c);
}

static void
test_ttl_caps(void **state)
{
	(void)state;
	assert_int_equal(dpk_cache_ttl(DKIM_KEY_FOUND, DPK_MAX_TTL_S), DPK_MAX_TTL_S);
	assert_int_equal(dpk_cache_ttl(DKIM_KEY_FOUND, DPK_MAX_TTL_S + 1), DPK_MAX_TTL_S);
	assert_int_equal(dpk_cache_ttl(DKIM_KEY_MISSING, DPK_MAX_TTL_S + 1), DPK_MAX_TTL_S);
	assert_int_equal(dpk_cache_ttl(DKIM_KEY_FOUND, 0xffffffffu), DPK_MAX_TTL_S);
	assert_int_equal(dpk_cache_ttl(DKIM_KEY_TEMPFAIL, DPK_TEMPFAIL_TTL_S), DPK_TEMPFAIL_TTL_S);
	assert_int_equal(dpk_cache_ttl(DKIM_KEY_TEMPFAIL, DPK_TEMPFAIL_TTL_S + 1), DPK_TEMPFAIL_TTL_S);
	assert_int_equal(dpk_cache_ttl(DKIM_KEY_TEMPFAIL, 1), 1);
	assert_int_equal(dpk_cache_ttl(DKIM_KEY_FOUND, DPK_TEMPFAIL_TTL_S + 1), DPK_TEMPFAIL_TTL_S + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_park_then_hit),
	        cmocka_unit_test(test_ttl_and_negative),
	        cmocka_unit_test(test_park_bounds),
	        cmocka_unit_test(test_park_timeout),
	        cmocka_unit_test(test_ttl_caps),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
