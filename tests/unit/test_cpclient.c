/*
 * cpc (cli/cpclient): the dataplane's connection to the control plane,
 * against a control plane played here by a thread on a real SOCK_SEQPACKET
 * socket (HELLO, then it reads datagrams and ACKs / answers as told):
 *  - the ACK queue at CPC_MAX_QUEUE records: a live client takes exactly
 *    that many without an ACK and drops (counts) the next; after an ACK it
 *    takes records again; a lossless client waits for the ACK instead;
 *  - a reconnect after the peer closes: the records not acknowledged come
 *    again, in order, with their ids, and the key request still pending;
 *  - key requests: the answer lands in the asking slot's mailbox with its
 *    tag; CPC_MAX_KEYS_PENDING requests at once, the next is refused; an
 *    unanswered request becomes TEMPFAIL after CPC_KEY_TIMEOUT_MS;
 *  - a SESSION_RECORD carries the session's fields and its flow id;
 *  - a control plane that stops reading does not make cpc_free hang;
 *  - verdicts: a record queued with cpc_message_verdict carries
 *    verdict_wanted and its gap; the VERDICT for it lands in the asking
 *    slot's mailbox with its fields; one for a record that did not ask, for
 *    an unknown id, or after the ACK, is dropped.
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

struct fake {
	char dir[64], path[108];
	int lfd, fd;
	uint64_t max_id;    /* highest record id seen on the current connection */
	uint64_t first_id;  /* first record id seen on the current connection */
	uint64_t nrecords, nkeyreq, nstats, nsession;
	uint64_t last_req;
	char last_name[300];
	uint64_t sess_flow;
	char sess_end[32];
	uint64_t msg_id;  /* the last MESSAGE_RECORD's id, its verdict_wanted and gap */
	uint8_t msg_want;
	char msg_gap[32];
	pthread_mutex_t lock;
};

static struct fake F;

static void
send_msg(int fd, const struct cpm_msg *m)
{
	uint8_t b[CPM_MAX_DATAGRAM];
	struct cpm_writer w;
	cpm_writer_init(&w, b, sizeof(b));
	assert_int_equal(cpm_encode(&w, m), 0);
	assert_true(send(fd, b, w.len, MSG_NOSIGNAL) == (ssize_t)w.len);
}

/* Accepts one connection and answers its HELLO. */
static void
fake_accept(void)
{
	F.fd = accept(F.lfd, NULL, NULL);
	assert_true(F.fd >= 0);
	uint8_t b[256];
	assert_true(recv(F.fd, b, sizeof(b), 0) > 0);
	struct cpm_msg h = {.type = CPM_HELLO};
	h.u.hello = (struct cpm_hello){CPM_MAGIC, CPM_VERSION, CPM_ROLE_CONTROLPLANE};
	send_msg(F.fd, &h);
	F.first_id = F.max_id = 0;
}

/* Reads what arrives for up to ms; returns the datagrams read. */
static unsigned
fake_read(int ms)
{
	static uint8_t b[CPM_MAX_DATAGRAM + 1];
	static struct cpm_msg m;
	unsigned n = 0;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	setsockopt(F.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		ssize_t k = recv(F.fd, b, sizeof(b), 0);
		if (k <= 0)
			return n;
		n++;
		struct cpm_reader r;
		char why[128];
		cpm_reader_init(&r, b, (size_t)k);
		int rc;
		while ((rc = cpm_decode_next(&r, &m, why, sizeof(why))) == 1) {
			pthread_mutex_lock(&F.lock);
			if (m.type == CPM_MESSAGE_RECORD || m.type == CPM_SESSION_RECORD) {
				uint64_t id = m.type == CPM_MESSAGE_RECORD ? m.u.message.record_id
									   : m.u.session.record_id;
				assert_true(id > F.max_id); /* increasing on a connection */
				if (!F.first_id)
					F.first_id = id;
				F.max_id = id;
				F.nrecords++;
				if (m.type == CPM_MESSAGE_RECORD) {
					F.msg_id = id;
					F.msg_want = m.u.message.verdict_wanted;
					cpm_str_copy(m.u.message.gap, F.msg_gap, sizeof(F.msg_gap));
				}
				if (m.type == CPM_SESSION_RECORD) {
					F.nsession++;
					F.sess_flow = m.u.session.flow_id;
					cpm_str_copy(m.u.session.end_reason, F.sess_end, sizeof(F.sess_end));
				}
			} else if (m.type == CPM_KEY_REQUEST) {
				F.nkeyreq++;
				F.last_req = m.u.key_request.req_id;
				cpm_str_copy(m.u.key_request.name, F.last_name, sizeof(F.last_name));
			} else if (m.type == CPM_STATS) {
				F.nstats++;
			}
			pthread_mutex_unlock(&F.lock);
		}
		assert_int_equal(rc, 0);
	}
}

static void
fake_ack(uint64_t up_to)
{
	struct cpm_msg a = {.type = CPM_ACK};
	a.u.ack.up_to = up_to;
	send_msg(F.fd, &a);
}

static int
setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	pthread_mutex_init(&F.lock, NULL);
	snprintf(F.dir, sizeof(F.dir), "/tmp/ws-cpc-XXXXXX");
	assert_non_null(mkdtemp(F.dir));
	snprintf(F.path, sizeof(F.path), "%s/cpm.sock", F.dir);
	F.lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, F.path, strlen(F.path) + 1);
	assert_int_equal(bind(F.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(F.lfd, 4), 0);
	F.fd = -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (F.fd >= 0)
		close(F.fd);
	close(F.lfd);
	unlink(F.path);
	rmdir(F.dir);
	return 0;
}

/* A connected client: the HELLO is answered by a helper thread (cpc_connect
 * waits for it synchronously). */
static void *
accept_thread(void *arg)
{
	(void)arg;
	fake_accept();
	return NULL;
}

static struct cpc *
connect_client(bool lossless)
{
	pthread_t t;
	pthread_create(&t, NULL, accept_thread, NULL);
	char why[256];
	struct cpc *c = cpc_connect(F.path, lossless, why, sizeof(why));
	pthread_join(t, NULL);
	if (!c)
		fail_msg("cpc_connect: %s", why);
	return c;
}

static struct dp_session_info info = {.flow_id = (3ull << 56) | 9};

static struct dp_message_record
message(void)
{
	static const char *rcpt[] = {"bob@example.org"};
	return (struct dp_message_record){
	        .info = &info, .helo = "client.example", .mail_from = "alice@example.com",
	        .rcpt = rcpt, .nrcpt = 1, .transaction = 1, .complete = true};
}

static void
wait_acked(struct cpc *c, uint64_t id)
{
	for (int i = 0; i < 500 && cpc_acked(c) < id; i++)
		usleep(10000);
	assert_true(cpc_acked(c) >= id);
}

static void
test_queue_limit_live(void **state)
{
	(void)state;
	struct cpc *c = connect_client(false);
	struct dp_message_record r = message();
	for (unsigned i = 0; i < CPC_MAX_QUEUE; i++)
		assert_int_equal(cpc_message(c, &r), 0); /* at the limit */
	assert_int_equal(cpc_message(c, &r), -1);        /* past it: dropped, counted */
	assert_int_equal(cpc_unsent(c), 1);
	fake_read(300);
	assert_int_equal(F.nrecords, CPC_MAX_QUEUE);
	fake_ack(CPC_MAX_QUEUE);
	wait_acked(c, CPC_MAX_QUEUE);
	assert_int_equal(cpc_message(c, &r), 0); /* room again */
	fake_read(200);
	fake_ack(CPC_MAX_QUEUE + 1);
	char why[256];
	assert_int_equal(cpc_finish(c, 2000, why, sizeof(why)), -1); /* one was dropped */
	assert_non_null(strstr(why, "dropped"));
	cpc_free(c);
	close(F.fd);
	F.fd = -1;
}

struct filler {
	struct cpc *c;
	int rc;
	bool done;
};

static void *
one_more(void *arg)
{
	struct filler *f = arg;
	struct dp_message_record r = message();
	f->rc = cpc_message(f->c, &r);
	__atomic_store_n(&f->done, true, __ATOMIC_SEQ_CST);
	return NULL;
}

static void
test_queue_limit_lossless(void **state)
{
	(void)state;
	F.nrecords = 0;
	struct cpc *c = connect_client(true);
	struct dp_message_record r = message();
	for (unsigned i = 0; i < CPC_MAX_QUEUE; i++)
		assert_int_equal(cpc_message(c, &r), 0);
	struct filler f = {.c = c};
	pthread_t t;
	pthread_create(&t, NULL, one_more, &f);
	fake_read(300);
	assert_false(__atomic_load_n(&f.done, __ATOMIC_SEQ_CST)); /* waits for room */
	fake_ack(100);
	pthread_join(t, NULL);
	assert_int_equal(f.rc, 0);
	assert_int_equal(cpc_unsent(c), 0);
	fake_read(200);
	fake_ack(CPC_MAX_QUEUE + 1);
	char why[256];
	assert_int_equal(cpc_finish(c, 3000, why, sizeof(why)), 0);
	cpc_free(c);
	close(F.fd);
	F.fd = -1;
}

static void *
reaccept(void *arg)
{
	(void)arg;
	fake_accept();
	return NULL;
}

static void
test_reconnect_resend(void **state)
{
	(void)state;
	F.nrecords = F.nkeyreq = 0;
	struct cpc *c = connect_client(true);
	struct dp_message_record r = message();
	for (int i = 0; i < 10; i++)
		assert_int_equal(cpc_message(c, &r), 0);
	assert_int_equal(cpc_key_ask(c, "sel._domainkey.example.com", 2, 77), 0);
	fake_read(200);
	assert_int_equal(F.nrecords, 10);
	assert_int_equal(F.nkeyreq, 1);
	fake_ack(4); /* 1..4 durable, 5..10 not */
	wait_acked(c, 4);
	close(F.fd); /* the control plane dies */
	pthread_t t;
	pthread_create(&t, NULL, reaccept, NULL);
	pthread_join(t, NULL); /* the client came back */
	F.nrecords = F.nkeyreq = 0;
	fake_read(300);
	assert_int_equal(F.first_id, 5); /* exactly the unacknowledged ones, in order */
	assert_int_equal(F.max_id, 10);
	assert_int_equal(F.nrecords, 6);
	assert_int_equal(F.nkeyreq, 1); /* the pending key request too */
	assert_string_equal(F.last_name, "sel._domainkey.example.com");
	/* its answer, on the new connection */
	struct cpm_msg a = {.type = CPM_KEY_ANSWER};
	a.u.key_answer = (struct cpm_key_answer){.req_id = F.last_req, .status = CPM_KEY_MISSING,
	                                         .ttl = 60, .record = cpm_s("NXDOMAIN")};
	send_msg(F.fd, &a);
	struct cpc_key_answer got;
	int ok = 0;
	for (int i = 0; i < 300 && !(ok = cpc_key_take(c, 2, &got)); i++)
		usleep(10000);
	assert_int_equal(ok, 1);
	assert_int_equal(got.tag, 77);
	assert_int_equal(got.status, CPM_KEY_MISSING);
	assert_int_equal(got.ttl, 60);
	assert_string_equal(got.text, "NXDOMAIN");
	assert_int_equal(cpc_key_take(c, 1, &got), 0); /* another slot's mailbox is empty */
	fake_ack(10);
	char why[256];
	assert_int_equal(cpc_finish(c, 3000, why, sizeof(why)), 0);
	assert_true(cpc_resent(c) >= 6);
	assert_int_equal(cpc_reconnects(c), 1);
	/* a session record with the session's fields; a STATS */
	struct dp_session_record sr = {.info = &info, .helo = "client.example",
	                               .transactions = 2, .end_reason = "fin"};
	assert_int_equal(cpc_session(c, &sr), 0);
	const char *names[] = {"parked_now"};
	uint64_t v[] = {3};
	assert_int_equal(cpc_stats(c, names, v, 1), 0);
	fake_read(300);
	assert_int_equal(F.nsession, 1);
	assert_int_equal(F.sess_flow, info.flow_id);
	assert_string_equal(F.sess_end, "fin");
	assert_true(F.nstats >= 1);
	cpc_free(c);
	close(F.fd);
	F.fd = -1;
}

static void
test_keys_pending_limit(void **state)
{
	(void)state;
	struct cpc *c = connect_client(false);
	char name[64];
	for (unsigned i = 0; i < CPC_MAX_KEYS_PENDING; i++) {
		snprintf(name, sizeof(name), "s%u._domainkey.example.com", i);
		assert_int_equal(cpc_key_ask(c, name, 0, i), 0); /* at the limit */
	}
	assert_int_equal(cpc_key_ask(c, "one.more._domainkey.example.com", 0, 1), -1);
	assert_int_equal(cpc_key_ask(c, "bad.slot._domainkey.example.com", CPC_MAX_SLOTS, 1), -1);
	/* nobody answers: TEMPFAIL at CPC_KEY_TIMEOUT_MS, for each */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct cpc_key_answer got;
	unsigned n = 0;
	while (n < CPC_MAX_KEYS_PENDING) {
		fake_read(100); /* keep the socket drained */
		while (cpc_key_take(c, 0, &got) == 1) {
			assert_int_equal(got.status, CPM_KEY_TEMPFAIL);
			assert_non_null(strstr(got.text, "no key answer"));
			n++;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		assert_true(t1.tv_sec - t0.tv_sec < 20);
	}
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= (long)CPC_KEY_TIMEOUT_MS - 100);
	assert_int_equal(cpc_key_ask(c, "again._domainkey.example.com", 0, 1), 0); /* room again */
	cpc_free(c);
	close(F.fd);
	F.fd = -1;
}

/* A control plane that stops reading: the socket fills, the client's
 * I/O thread must still stop when asked (cpc_free does not hang). */
static void
fake_verdict(uint64_t id, const char *dmarc_reason)
{
	static struct cpm_msg v;
	memset(&v, 0, sizeof(v));
	v.type = CPM_VERDICT;
	v.u.verdict.record_id = id;
	v.u.verdict.spf_ran = 1;
	v.u.verdict.spf_mail_from = cpm_s("alice@example.com");
	v.u.verdict.spf_helo_name = cpm_s("client.example");
	v.u.verdict.spf = (struct cpm_spf_outcome){SPF_RESULT_SOFTFAIL, cpm_s("example.com"),
						   cpm_s("~all"), cpm_s("matched ~all"), cpm_s("")};
	v.u.verdict.dmarc_ran = 1;
	v.u.verdict.dmarc_result = DMARC_RES_TEMPERROR;
	v.u.verdict.pct = 100;
	v.u.verdict.from_domain = cpm_s("example.com");
	v.u.verdict.dmarc_reason = cpm_s(dmarc_reason);
	v.u.verdict.disposition = cpm_s("none");
	v.u.verdict.authres = cpm_s("mx; spf=softfail; dmarc=temperror");
	send_msg(F.fd, &v);
}

static void
test_verdicts(void **state)
{
	(void)state;
	struct cpc *c = connect_client(true);
	struct dp_message_record r = message();
	r.gap_reason = "capture-gap";
	uint64_t id = 0;
	assert_int_equal(cpc_message_verdict(c, &r, 5, &id), 0);
	assert_int_equal(id, 1);
	assert_int_equal(cpc_message_verdict(c, &r, CPC_MAX_SLOTS, &id), -1); /* no such slot */
	fake_read(200);
	assert_int_equal(F.msg_id, 1);
	assert_int_equal(F.msg_want, 1);
	assert_string_equal(F.msg_gap, "capture-gap");
	assert_null(cpc_verdict_take(c, 5));
	fake_verdict(1, "capture-gap: bytes of the message were not seen");
	assert_true(cpc_verdict_wait(c, 5, 2000));
	assert_null(cpc_verdict_take(c, 4)); /* another slot's mailbox stays empty */
	struct cpc_verdict *v = cpc_verdict_take(c, 5);
	assert_non_null(v);
	assert_true(v->record_id == 1 && v->status == CPM_VERDICT_DONE);
	assert_true(v->spf.ran && v->spf.mailfrom.result == SPF_RESULT_SOFTFAIL);
	assert_string_equal(v->spf.mailfrom.mechanism, "~all");
	assert_string_equal(v->spf.mail_from, "alice@example.com");
	assert_true(v->dmarc_ran && v->dm.res.result == DMARC_RES_TEMPERROR && v->dm.res.pct == 100);
	assert_string_equal(v->dm.res.reason, "capture-gap: bytes of the message were not seen");
	assert_string_equal(v->authres, "mx; spf=softfail; dmarc=temperror");
	cpc_verdict_free(v);
	/* a record that did not ask; an id never sent: both dropped */
	r.gap_reason = NULL;
	assert_int_equal(cpc_message(c, &r), 0);
	fake_read(200);
	assert_int_equal(F.msg_id, 2);
	assert_int_equal(F.msg_want, 0);
	assert_string_equal(F.msg_gap, "");
	fake_verdict(2, "x");
	fake_verdict(99, "x");
	/* acknowledged: a late VERDICT (a re-sent record's second) is dropped */
	fake_ack(2);
	wait_acked(c, 2);
	fake_verdict(1, "again");
	assert_false(cpc_verdict_wait(c, 5, 300));
	assert_int_equal(cpc_verdicts(c), 1);
	char why[256];
	assert_int_equal(cpc_finish(c, 2000, why, sizeof(why)), 0);
	cpc_free(c);
	close(F.fd);
	F.fd = -1;
}

static void
test_free_while_blocked(void **state)
{
	(void)state;
	struct cpc *c = connect_client(false);
	struct dp_message_record r = message();
	for (unsigned i = 0; i < 20000; i++) /* some MB: far past the socket buffer */
		assert_int_equal(cpc_message(c, &r), 0);
	usleep(300000);
	assert_true(cpc_sent(c) < 20000); /* the socket is full */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cpc_free(c);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms < 2000);
	close(F.fd);
	F.fd = -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_queue_limit_live),
	        cmocka_unit_test(test_queue_limit_lossless),
	        cmocka_unit_test(test_reconnect_resend),
	        cmocka_unit_test(test_keys_pending_limit),
	        cmocka_unit_test(test_verdicts),
	        cmocka_unit_test(test_free_while_blocked),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
