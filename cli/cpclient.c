/*
 * cpc: dataplane -> control plane records and key requests over cpm, with
 * an I/O thread, an ACK queue and reconnects (see cpclient.h).
 */
#include "cpclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "arc.h"
#include "cpm.h"
#include "dkim.h"
#include "rfc5322.h"
#include "smtpp.h"

/* every reply code the session keeps fits a SESSION_RECORD */
_Static_assert(CPM_MAX_REPLIES >= DP_SESSION_MAX_REPLIES, "SESSION_RECORD replies");

#define CPC_POLL_MS 200 /* the I/O thread looks at timeouts this often */

/* One encoded record (u16 type | u32 len | payload) waiting for its ACK. */
struct rec {
	struct rec *next;
	uint64_t id;
	bool sent_once;
	bool want_verdict; /* a VERDICT for it goes to vbox[slot] */
	unsigned slot;
	uint32_t len;
	uint8_t b[];
};

/* A key request waiting for its answer (then it moves to a mailbox). */
struct keyreq {
	struct keyreq *next;
	uint64_t req_id;
	uint64_t deadline_ms; /* monotonic */
	bool sent;            /* on the current connection */
	struct cpc_key_answer a;
	unsigned slot;
};

struct cpc {
	char path[108];
	bool lossless;
	int fd;       /* -1 while disconnected (owned by the I/O thread) */
	int wake[2];  /* pipe: workers and cpc_free wake the I/O thread */
	pthread_t thr;
	bool thr_started;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* ACKs, answers, room in the queue */
	/* under lock: */
	bool stop;
	struct rec *head, **tail, *cursor; /* cursor: first record not sent on this connection */
	size_t qn, qbytes;
	uint64_t next_id, sent, acked, unsent, truncated, resent, reconnects;
	uint64_t next_req, key_requests, next_tag;
	struct keyreq *keys;               /* waiting for an answer */
	size_t nkeys;
	struct keyreq *box[CPC_MAX_SLOTS]; /* answered, per slot (LIFO is fine: tags) */
	struct cpc_verdict *vbox[CPC_MAX_SLOTS]; /* VERDICTs, per slot (any order: ids) */
	uint64_t verdicts;
	bool up;                           /* connected */
	char why[256];                     /* the last connection problem */
	struct cpm_msg m;                  /* the record being encoded (5 KB) */
	uint8_t stats[CPC_STATS_BYTES];    /* a STATS waiting for the next datagram */
	size_t stats_len;
	uint8_t enc[CPM_MAX_DATAGRAM];
	/* I/O thread only: */
	uint8_t out[CPM_MAX_DATAGRAM];
	uint8_t rbuf[CPM_MAX_DATAGRAM + 1];
	struct cpm_msg rm;
};

static uint64_t
mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static uint64_t
wall_usec(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* A deadline for pthread_cond_timedwait (CLOCK_REALTIME) ms from now. */
static struct timespec
abs_after(unsigned ms)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += ms / 1000u;
	t.tv_nsec += (long)(ms % 1000u) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

void
cpc_ip_text(const struct dp_endpoint *ep, char *buf, size_t len)
{
	if (!ep->v6)
		inet_ntop(AF_INET, ep->ip + 12, buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, ep->ip, buf, (socklen_t)len);
}

static void
wake(struct cpc *c)
{
	char b = 1;
	ssize_t n = write(c->wake[1], &b, 1); /* full pipe: a wake-up is pending anyway */
	(void)n;
}

/* ---- connection (I/O thread, and cpc_connect for the first one) ---- */

/* Connects and exchanges HELLO; the fd, or -1 with why. */
static int
dial(const char *path, char *why, size_t whylen, uint8_t *buf, struct cpm_msg *m)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "%s: socket path too long", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(why, whylen, "%s: cannot connect to the control plane: %s", path,
		         strerror(errno));
		goto fail;
	}
	*m = (struct cpm_msg){.type = CPM_HELLO,
	                      .u.hello = {.magic = CPM_MAGIC,
	                                  .version = CPM_VERSION,
	                                  .role = CPM_ROLE_DATAPLANE}};
	struct cpm_writer hw;
	uint8_t hb[64];
	cpm_writer_init(&hw, hb, sizeof(hb));
	if (cpm_encode(&hw, m) != 0 || send(fd, hb, hw.len, MSG_NOSIGNAL) < 0) {
		snprintf(why, whylen, "%s: sending HELLO: %s", path, strerror(errno));
		goto fail;
	}
	/* the first datagram back must be the control plane's HELLO, alone */
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, (int)CPC_HELLO_TIMEOUT_MS) <= 0) {
		snprintf(why, whylen, "%s: no HELLO from the control plane within %u ms", path,
		         CPC_HELLO_TIMEOUT_MS);
		goto fail;
	}
	ssize_t n = recv(fd, buf, CPM_MAX_DATAGRAM + 1, 0);
	if (n <= 0) {
		snprintf(why, whylen, "%s: the control plane closed the connection during HELLO",
		         path);
		goto fail;
	}
	struct cpm_reader r;
	char dwhy[128];
	cpm_reader_init(&r, buf, (size_t)n);
	int rc = cpm_decode_next(&r, m, dwhy, sizeof(dwhy));
	if (rc != 1) {
		snprintf(why, whylen, "%s: not a cpm peer: %s", path,
		         rc < 0 ? dwhy : "empty datagram");
		goto fail;
	}
	if (m->type == CPM_ERROR) {
		char text[160] = "";
		cpm_str_copy(m->u.error.text, text, sizeof(text));
		snprintf(why, whylen, "%s: the control plane refused our HELLO: %s (%s)", path,
		         cpm_error_text(m->u.error.code), text);
		goto fail;
	}
	int herr = cpm_hello_check(m, CPM_ROLE_CONTROLPLANE);
	if (herr == 0 && r.off != r.len)
		herr = CPM_E_MALFORMED; /* HELLO comes alone in its datagram */
	if (herr != 0) {
		snprintf(why, whylen,
		         "%s: HELLO mismatch: %s (peer: %s, magic 0x%08x, version %u, role %u; we "
		         "speak version %u and expect role %u)",
		         path, cpm_error_text((unsigned)herr), cpm_type_name(m->type),
		         m->type == CPM_HELLO ? m->u.hello.magic : 0,
		         m->type == CPM_HELLO ? m->u.hello.version : 0,
		         m->type == CPM_HELLO ? m->u.hello.role : 0, CPM_VERSION,
		         CPM_ROLE_CONTROLPLANE);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* A new connection is up: everything unacknowledged goes again. */
static void
connected(struct cpc *c, int fd)
{
	pthread_mutex_lock(&c->lock);
	c->fd = fd;
	c->up = true;
	c->cursor = c->head;
	for (struct keyreq *k = c->keys; k; k = k->next)
		k->sent = false;
	pthread_mutex_unlock(&c->lock);
}

static void
disconnect(struct cpc *c, const char *what, const char *detail)
{
	pthread_mutex_lock(&c->lock);
	snprintf(c->why, sizeof(c->why), "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
	c->up = false;
	pthread_mutex_unlock(&c->lock);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Moves k (already unlinked) to its slot's mailbox. Under lock. */
static void
deliver(struct cpc *c, struct keyreq *k)
{
	k->next = c->box[k->slot];
	c->box[k->slot] = k;
	c->nkeys--;
	pthread_cond_broadcast(&c->cond);
}

/* Frees the records an ACK covers. Under lock. */
static void
take_ack(struct cpc *c, uint64_t up_to)
{
	if (up_to > c->acked)
		c->acked = up_to;
	while (c->head && c->head->id <= c->acked) {
		struct rec *r = c->head;
		if (c->cursor == r)
			c->cursor = r->next;
		c->head = r->next;
		if (!c->head)
			c->tail = &c->head;
		c->qn--;
		c->qbytes -= r->len;
		free(r);
	}
	pthread_cond_broadcast(&c->cond);
}

/* cpm string -> C buffer, cut to fit (the control plane fills these from
 * buffers of the same sizes, so nothing is cut in practice). */
static void
scopy(struct cpm_str s, char *out, size_t cap)
{
	size_t n = s.len < cap ? s.len : cap - 1;
	if (n)
		memcpy(out, s.p, n);
	out[n] = '\0';
}

static void
outcome_of(const struct cpm_spf_outcome *m, struct spf_outcome *o)
{
	o->result = (enum spf_result)m->result;
	scopy(m->domain, o->domain, sizeof(o->domain));
	scopy(m->mechanism, o->mechanism, sizeof(o->mechanism));
	scopy(m->reason, o->reason, sizeof(o->reason));
	scopy(m->explanation, o->explanation, sizeof(o->explanation));
}

int
cpc_verdict_from_msg(const struct cpm_verdict *m, struct cpc_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->record_id = m->record_id;
	v->status = m->status;
	scopy(m->why, v->why, sizeof(v->why));
	struct policy_spf_out *s = &v->spf;
	s->ran = m->spf_ran;
	s->null_sender = m->spf_null_sender;
	outcome_of(&m->spf, &s->mailfrom);
	s->helo_ran = m->helo_ran;
	outcome_of(&m->helo, &s->helo);
	scopy(m->spf_mail_from, s->mail_from, sizeof(s->mail_from));
	scopy(m->spf_helo_name, s->helo_name, sizeof(s->helo_name));
	v->dmarc_ran = m->dmarc_ran;
	struct dmarc_result *r = &v->dm.res;
	r->result = (enum dmarc_res)m->dmarc_result;
	r->policy = (enum dmarc_policy)m->dmarc_policy;
	r->disposition = (enum dmarc_policy)m->dmarc_disposition;
	r->org_method = (enum dmarc_org_method)m->org_method;
	r->testing = m->testing;
	r->sampled_out = m->sampled_out;
	r->org_disagree = m->org_disagree;
	r->spf_aligned = m->spf_aligned;
	r->dkim_aligned = m->dkim_aligned;
	r->pct = m->pct;
	scopy(m->from_domain, r->from_domain, sizeof(r->from_domain));
	scopy(m->record_domain, r->record_domain, sizeof(r->record_domain));
	scopy(m->org_domain, r->org_domain, sizeof(r->org_domain));
	scopy(m->psl_org_domain, r->psl_org_domain, sizeof(r->psl_org_domain));
	scopy(m->walk_org_domain, r->walk_org_domain, sizeof(r->walk_org_domain));
	scopy(m->dmarc_reason, r->reason, sizeof(r->reason));
	struct dmarc_arc_override *ov = &v->dm.ov;
	ov->applied = m->arc_applied;
	scopy(m->arc_by, ov->by, sizeof(ov->by));
	scopy(m->arc_sealer, ov->sealer, sizeof(ov->sealer));
	ov->instance = m->arc_instance;
	scopy(m->arc_reason, ov->reason, sizeof(ov->reason));
	scopy(m->override, v->override, sizeof(v->override));
	scopy(m->disposition, v->disposition, sizeof(v->disposition));
	v->authres = malloc(m->authres.len + 1);
	if (!v->authres)
		return -1;
	scopy(m->authres, v->authres, m->authres.len + 1);
	return 0;
}

void
cpc_verdict_free(struct cpc_verdict *v)
{
	if (!v)
		return;
	free(v->authres);
	free(v);
}

/* A VERDICT: to the mailbox of the slot whose record asked for it, while
 * that record waits for its ACK (after the ACK, or for a record that did
 * not ask, it is dropped). Under lock. */
static void
take_verdict(struct cpc *c, const struct cpm_verdict *m)
{
	struct rec *r = c->head;
	while (r && r->id < m->record_id)
		r = r->next;
	if (!r || r->id != m->record_id || !r->want_verdict)
		return;
	struct cpc_verdict *v = malloc(sizeof(*v));
	if (!v || cpc_verdict_from_msg(m, v) != 0) {
		cpc_verdict_free(v); /* the waiter times out: a temporary failure */
		return;
	}
	v->next = c->vbox[r->slot];
	c->vbox[r->slot] = v;
	c->verdicts++;
	pthread_cond_broadcast(&c->cond);
}

/* One datagram from the control plane. -1: the connection must go. */
static int
handle(struct cpc *c, const uint8_t *d, size_t n)
{
	struct cpm_reader r;
	char why[128];
	int rc;
	cpm_reader_init(&r, d, n);
	pthread_mutex_lock(&c->lock);
	while ((rc = cpm_decode_next(&r, &c->rm, why, sizeof(why))) == 1) {
		struct cpm_msg *m = &c->rm;
		if (m->type == CPM_ACK) {
			take_ack(c, m->u.ack.up_to);
		} else if (m->type == CPM_ERROR) {
			char text[160];
			if (cpm_str_copy(m->u.error.text, text, sizeof(text)) != 0)
				snprintf(text, sizeof(text), "%s", cpm_error_text(m->u.error.code));
			pthread_mutex_unlock(&c->lock);
			disconnect(c, "control plane refused us", text);
			return -1;
		} else if (m->type == CPM_VERDICT) {
			take_verdict(c, &m->u.verdict);
		} else if (m->type == CPM_KEY_ANSWER) {
			const struct cpm_key_answer *ka = &m->u.key_answer;
			for (struct keyreq **pk = &c->keys; *pk; pk = &(*pk)->next) {
				struct keyreq *k = *pk;
				if (k->req_id != ka->req_id)
					continue;
				*pk = k->next;
				k->a.status = ka->status;
				k->a.ttl = ka->ttl;
				k->a.len = ka->record.len <= CPM_MAX_STR ? ka->record.len : CPM_MAX_STR;
				if (k->a.len)
					memcpy(k->a.text, ka->record.p, k->a.len);
				k->a.text[k->a.len] = '\0';
				deliver(c, k);
				break;
			}
			/* an answer nobody waits for any more (timed out): dropped */
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (rc < 0) {
		disconnect(c, "malformed datagram from the control plane", why);
		return -1;
	}
	return 0;
}

/* Packs what waits (key requests first, then records from the cursor) into
 * c->out. Returns its length; *last: the last record packed. Under lock. */
static size_t
pack(struct cpc *c, struct rec **last)
{
	struct cpm_writer w;
	cpm_writer_init(&w, c->out, sizeof(c->out));
	*last = NULL;
	if (c->stats_len && w.len + c->stats_len <= w.cap) {
		memcpy(w.buf + w.len, c->stats, c->stats_len);
		w.len += c->stats_len;
		c->stats_len = 0;
		pthread_cond_broadcast(&c->cond); /* cpc_finish waits for it to go */
	}
	for (struct keyreq *k = c->keys; k; k = k->next) {
		if (k->sent)
			continue;
		struct cpm_msg m = {.type = CPM_KEY_REQUEST};
		m.u.key_request.req_id = k->req_id;
		m.u.key_request.name = cpm_s(k->a.name);
		if (cpm_encode(&w, &m) != 0)
			break;
		k->sent = true;
		c->key_requests++;
	}
	struct rec *r = c->cursor;
	while (r && w.len + r->len <= w.cap) {
		memcpy(w.buf + w.len, r->b, r->len);
		w.len += r->len;
		if (r->sent_once)
			c->resent++;
		else
			r->sent_once = true;
		if (r->id > c->sent)
			c->sent = r->id;
		*last = r;
		r = r->next;
	}
	return w.len;
}

/* Answers TEMPFAIL to key requests past their deadline. Under lock. */
static void
expire_keys(struct cpc *c, uint64_t now)
{
	for (struct keyreq **pk = &c->keys; *pk;) {
		struct keyreq *k = *pk;
		if (k->deadline_ms > now) {
			pk = &k->next;
			continue;
		}
		*pk = k->next;
		k->a.status = CPM_KEY_TEMPFAIL;
		k->a.ttl = 0;
		k->a.len = (size_t)snprintf(k->a.text, sizeof(k->a.text),
		                            "no key answer from the control plane within %u ms%s%s",
		                            CPC_KEY_TIMEOUT_MS, c->up ? "" : ": ",
		                            c->up ? "" : c->why);
		if (k->a.len >= sizeof(k->a.text))
			k->a.len = sizeof(k->a.text) - 1;
		deliver(c, k);
	}
}

/* Reads every datagram waiting. -1 when the connection went (disconnected). */
static int
read_in(struct cpc *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->rbuf, sizeof(c->rbuf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0) {
			disconnect(c, "control plane closed the connection",
			           n < 0 ? strerror(errno) : NULL);
			return -1;
		}
		if (handle(c, c->rbuf, (size_t)n) < 0)
			return -1;
	}
}

/* Sends the datagram in c->out without blocking the thread for good: while
 * the socket is full it keeps reading ACKs and looks at the stop flag.
 * 0 sent, -1 the connection failed (disconnected), 1 stop asked. */
static int
send_out(struct cpc *c, size_t len)
{
	for (;;) {
		ssize_t n = send(c->fd, c->out, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			disconnect(c, "sending to the control plane", strerror(errno));
			return -1;
		}
		pthread_mutex_lock(&c->lock);
		bool stop = c->stop;
		pthread_mutex_unlock(&c->lock);
		if (stop)
			return 1;
		struct pollfd p[2] = {{.fd = c->fd, .events = POLLOUT | POLLIN},
		                      {.fd = c->wake[0], .events = POLLIN}};
		if (poll(p, 2, CPC_POLL_MS) <= 0)
			continue;
		if (p[1].revents & POLLIN) {
			char b[64];
			while (read(c->wake[0], b, sizeof(b)) > 0)
				;
		}
		if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && read_in(c) < 0)
			return -1;
	}
}

static void *
io_main(void *arg)
{
	struct cpc *c = arg;
	unsigned backoff = CPC_BACKOFF_MIN_MS;
	uint64_t next_try = 0;
	for (;;) {
		uint64_t now = mono_ms();
		pthread_mutex_lock(&c->lock);
		bool stop = c->stop;
		expire_keys(c, now);
		pthread_mutex_unlock(&c->lock);
		if (stop)
			break;
		if (c->fd < 0 && now >= next_try) {
			char why[256];
			int fd = dial(c->path, why, sizeof(why), c->rbuf, &c->rm);
			if (fd >= 0) {
				backoff = CPC_BACKOFF_MIN_MS;
				pthread_mutex_lock(&c->lock);
				c->reconnects++;
				pthread_mutex_unlock(&c->lock);
				connected(c, fd);
			} else {
				pthread_mutex_lock(&c->lock);
				snprintf(c->why, sizeof(c->why), "%s", why);
				pthread_mutex_unlock(&c->lock);
				next_try = mono_ms() + backoff;
				backoff = backoff * 2 > CPC_BACKOFF_MAX_MS ? CPC_BACKOFF_MAX_MS : backoff * 2;
			}
		}
		size_t len = 0;
		struct rec *last = NULL;
		if (c->fd >= 0) {
			pthread_mutex_lock(&c->lock);
			len = pack(c, &last);
			pthread_mutex_unlock(&c->lock);
		}
		if (len > 0) {
			int sr = send_out(c, len);
			if (sr != 0) {
				/* failed: the records go again on the next connection
				 * (cursor reset there), key requests too; or stop */
				if (sr < 0)
					next_try = mono_ms() + backoff;
				continue;
			}
			pthread_mutex_lock(&c->lock);
			/* only this thread frees records (ACKs) or resets the
			 * cursor; workers only append, so last is still there and
			 * its next may be a record appended meanwhile */
			if (last)
				c->cursor = last->next;
			bool more = c->cursor != NULL;
			pthread_mutex_unlock(&c->lock);
			if (more)
				continue;
		}
		struct pollfd p[2] = {{.fd = c->wake[0], .events = POLLIN},
		                      {.fd = c->fd, .events = POLLIN}};
		int timeout = CPC_POLL_MS;
		if (c->fd < 0) {
			uint64_t t = mono_ms();
			timeout = next_try > t ? (int)(next_try - t) : 0;
			if (timeout > CPC_POLL_MS)
				timeout = CPC_POLL_MS;
		}
		int pr = poll(p, c->fd >= 0 ? 2 : 1, timeout);
		if (pr <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			char b[64];
			while (read(c->wake[0], b, sizeof(b)) > 0)
				;
		}
		if (c->fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) && read_in(c) < 0)
			next_try = mono_ms() + backoff;
	}
	return NULL;
}

/* ---- public ---- */

struct cpc *
cpc_connect(const char *path, bool lossless, char *why, size_t whylen)
{
	struct cpc *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	c->fd = -1;
	c->wake[0] = c->wake[1] = -1;
	c->next_id = 1;
	c->tail = &c->head;
	c->lossless = lossless;
	if (strlen(path) >= sizeof(c->path)) {
		snprintf(why, whylen, "%s: socket path too long", path);
		free(c);
		return NULL;
	}
	memcpy(c->path, path, strlen(path) + 1);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	if (pthread_mutex_init(&c->lock, NULL) != 0 || pthread_cond_init(&c->cond, &ca) != 0) {
		snprintf(why, whylen, "mutex: %s", strerror(errno));
		free(c);
		return NULL;
	}
	if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		goto fail;
	}
	int fd = dial(path, why, whylen, c->rbuf, &c->rm);
	if (fd < 0)
		goto fail;
	connected(c, fd);
	/* on any CPU: a thread made after the EAL's start-up would inherit the
	 * main lcore's pinning and take turns with it */
	pthread_attr_t ta;
	pthread_attr_init(&ta);
	cpu_set_t cpus;
	CPU_ZERO(&cpus);
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	for (long i = 0; i < ncpu && i < CPU_SETSIZE; i++)
		CPU_SET((int)i, &cpus);
	pthread_attr_setaffinity_np(&ta, sizeof(cpus), &cpus);
	int trc = pthread_create(&c->thr, &ta, io_main, c);
	pthread_attr_destroy(&ta);
	if (trc != 0) {
		snprintf(why, whylen, "thread: %s", strerror(trc));
		goto fail;
	}
	c->thr_started = true;
	return c;
fail:
	cpc_free(c);
	return NULL;
}

/* s cut to the cpm string limit (a cut marks the record truncated). */
static struct cpm_str
cut(const char *s, size_t len, bool *trunc)
{
	if (len > CPM_MAX_STR) {
		len = CPM_MAX_STR;
		*trunc = true;
	}
	return (struct cpm_str){.p = len ? s : NULL, .len = (uint32_t)len};
}

static struct cpm_str
cuts(const char *s, bool *trunc)
{
	return s ? cut(s, strlen(s), trunc) : (struct cpm_str){0};
}

/* Fills *m from rec; the strings point into rec (and ip[]). */
static bool
build(struct cpm_msg *m, const struct dp_message_record *rec, char ip[2][INET6_ADDRSTRLEN],
      bool want_verdict)
{
	struct cpm_message *mm = &m->u.message;
	bool t = false;
	memset(m, 0, sizeof(*m));
	m->type = CPM_MESSAGE_RECORD;
	mm->ts_usec = wall_usec();
	mm->flow_id = rec->info->flow_id;
	cpc_ip_text(&rec->info->client, ip[0], INET6_ADDRSTRLEN);
	cpc_ip_text(&rec->info->server, ip[1], INET6_ADDRSTRLEN);
	mm->client = (struct cpm_endpoint){cpm_s(ip[0]), rec->info->client.port};
	mm->server = (struct cpm_endpoint){cpm_s(ip[1]), rec->info->server.port};
	mm->helo = cuts(rec->helo, &t);
	mm->mail_from = cuts(rec->mail_from, &t);
	for (size_t i = 0; i < rec->nrcpt; i++) {
		if (mm->nrcpts == CPM_MAX_RCPTS) {
			t = true;
			break;
		}
		mm->rcpts[mm->nrcpts++] = cuts(rec->rcpt[i], &t);
	}
	mm->starttls = rec->starttls;
	mm->transaction = rec->transaction;
	mm->gap = cuts(rec->gap_reason, &t);
	mm->verdict_wanted = want_verdict ? 1 : 0;
	size_t nd = rec->dkim ? dkim_verifier_count(rec->dkim) : 0;
	for (size_t i = 0; i < nd; i++) {
		if (mm->ndkim == CPM_MAX_DKIM) {
			t = true;
			break;
		}
		const struct dkim_sig_result *r = dkim_verifier_result(rec->dkim, i);
		struct cpm_dkim *d = &mm->dkim[mm->ndkim++];
		d->d = cuts(r->sig.d, &t);
		d->s = cuts(r->sig.s, &t);
		d->a = cuts(r->parsed ? dkim_algo_name(r->sig.algo) : NULL, &t);
		d->result = cuts(dkim_result_name(r->result), &t);
		d->reason = cuts(r->reason, &t);
	}
	const struct rfc5322_header *h = rec->hdr;
	for (size_t i = 0; h && i < h->nfields; i++) {
		if (!rfc5322_field_is(h, &h->fields[i], "From", 4))
			continue;
		if (mm->nfrom == CPM_MAX_FROM) {
			t = true;
			break;
		}
		size_t len;
		const char *v = rfc5322_field_value(h, &h->fields[i], &len);
		mm->from[mm->nfrom++] = cut(v, len, &t);
	}
	const struct arc_chain *ch = rec->arc;
	mm->arc_chain = !ch                      ? CPM_ARC_NONE
	                : ch->result == ARC_PASS ? CPM_ARC_PASS
	                : ch->result == ARC_FAIL ? CPM_ARC_FAIL
	                                         : CPM_ARC_NONE;
	for (unsigned i = 0; ch && i < ch->nsets; i++) {
		if (mm->narc == CPM_MAX_ARC) {
			t = true;
			break;
		}
		const struct arc_set_result *sr = &ch->sets[i];
		struct cpm_arc *a = &mm->arc[mm->narc++];
		a->instance = sr->instance;
		a->sealer = cuts(sr->as_parsed ? sr->as.d : NULL, &t);
		/* the whole AAR value, "i=N; authserv-id; ...", as the policy
		 * side parses it (sr->aar is the part after "i=N;") */
		if (sr->aar && h && sr->aar_field < h->nfields) {
			size_t len;
			const char *v = rfc5322_field_value(h, &h->fields[sr->aar_field], &len);
			a->aar = cut(v, len, &t);
		}
	}
	return t;
}


/* Fills *m (a SESSION_RECORD) from rec; the strings point into rec and ip[].
 * Lists longer than the protocol's limits are cut and flagged like strings. */
static bool
build_session(struct cpm_msg *m, const struct dp_session_record *rec,
              char ip[2][INET6_ADDRSTRLEN])
{
	struct cpm_session *ss = &m->u.session;
	bool t = false;
	memset(m, 0, sizeof(*m));
	m->type = CPM_SESSION_RECORD;
	/* capture time: the control plane judges certificate validity and
	 * files TLS-RPT days by it */
	ss->ts_usec = rec->last_ts_ns ? rec->last_ts_ns / 1000u : wall_usec();
	ss->flow_id = rec->info->flow_id;
	cpc_ip_text(&rec->info->client, ip[0], INET6_ADDRSTRLEN);
	cpc_ip_text(&rec->info->server, ip[1], INET6_ADDRSTRLEN);
	ss->client = (struct cpm_endpoint){cpm_s(ip[0]), rec->info->client.port};
	ss->server = (struct cpm_endpoint){cpm_s(ip[1]), rec->info->server.port};
	ss->helo = cuts(rec->helo, &t);
	ss->starttls_offered = rec->starttls_offered;
	ss->starttls_used = rec->starttls_used;
	ss->end_reason = cuts(rec->end_reason, &t);
	ss->transactions = rec->transactions;
	for (size_t i = 0; i < rec->nrcpt_domains; i++) {
		if (ss->nrcpt_domains == CPM_MAX_RCPT_DOMAINS) {
			t = true;
			break;
		}
		ss->rcpt_domains[ss->nrcpt_domains++] = cuts(rec->rcpt_domains[i], &t);
	}
	const struct dp_tls_facts *tf = &rec->tls;
	struct cpm_tls *ct = &ss->tls;
	ct->client_hello = tf->client_hello;
	ct->server_hello = tf->server_hello;
	ct->version_offered_max = tf->version_offered_max;
	ct->version = tf->version;
	ct->resumed = tf->resumed;
	ct->sni = cuts(tf->sni, &t);
	ct->cert_seen = tf->cert_seen;
	for (size_t i = 0; tf->cert_seen && i < tf->ncert_names; i++) {
		if (ct->ncert_names == CPM_MAX_CERT_NAMES) {
			t = true;
			break;
		}
		ct->cert_names[ct->ncert_names++] = cuts(tf->cert_names[i], &t);
	}
	ct->not_before = tf->not_before;
	ct->not_after = tf->not_after;
	ct->issuer = cuts(tf->issuer, &t);
	ct->chain_trusted = tf->chain_trusted;
	/* what the session record knows that is out of the ordinary: the
	 * capture facts first, then the wire signals */
	if (rec->info->midstream)
		ss->anomalies[ss->nanomalies++] = (struct cpm_anomaly){cpm_s("midstream"), CPM_DIR_C2S, 0};
	if (rec->auth_seen)
		ss->anomalies[ss->nanomalies++] = (struct cpm_anomaly){cpm_s("auth-seen"), CPM_DIR_C2S, 0};
	for (size_t i = 0; i < rec->nanomalies; i++) {
		if (ss->nanomalies == CPM_MAX_ANOMALIES) {
			t = true;
			break;
		}
		const struct dp_anomaly *an = &rec->anomalies[i];
		ss->anomalies[ss->nanomalies++] = (struct cpm_anomaly){
			cuts(an->name, &t), an->dir == DP_DIR_S2C ? CPM_DIR_S2C : CPM_DIR_C2S, an->offset};
	}
	/* the reply code per command, as the session line lists them */
	ss->replies_over = rec->replies_over;
	for (size_t i = 0; i < rec->nreplies; i++) {
		if (ss->nreplies == CPM_MAX_REPLIES || rec->replies[i].code > CPM_MAX_REPLY_CODE) {
			ss->replies_over++; /* cannot happen (static assert, smtpp's codes) */
			continue;
		}
		ss->replies[ss->nreplies++] = (struct cpm_reply){
			cpm_s(smtpp_verb_name((enum smtpp_verb)rec->replies[i].verb)),
			rec->replies[i].code};
	}
	return t;
}

/* Queues c->m (filled, under lock) as the next record; a VERDICT for it
 * goes to vbox[slot] when want. */
static int
enqueue(struct cpc *c, uint64_t *idp, bool want, unsigned slot)
{
	uint64_t t0 = 0;
	for (;;) {
		if (c->qn < CPC_MAX_QUEUE && c->qbytes < CPC_MAX_QUEUE_BYTES)
			break;
		if (!t0)
			t0 = mono_ms();
		/* lossless waits for ACKs, but not for ever on a control plane
		 * that does not come back */
		if (!c->lossless || c->stop || (!c->up && mono_ms() - t0 > CPC_LOSSLESS_WAIT_MS)) {
			c->unsent++;
			return -1;
		}
		/* replay: wait for ACKs (through reconnects), lossless */
		struct timespec dl = abs_after(CPC_POLL_MS);
		pthread_cond_timedwait(&c->cond, &c->lock, &dl);
	}
	*idp = c->next_id;
	struct cpm_writer w;
	cpm_writer_init(&w, c->enc, sizeof(c->enc));
	if (cpm_encode(&w, &c->m) != 0) {
		c->unsent++; /* larger than one datagram even alone */
		return -1;
	}
	struct rec *r = malloc(sizeof(*r) + w.len);
	if (!r) {
		c->unsent++;
		return -1;
	}
	r->next = NULL;
	r->id = c->next_id++;
	r->sent_once = false;
	r->want_verdict = want;
	r->slot = slot;
	r->len = (uint32_t)w.len;
	memcpy(r->b, c->enc, w.len);
	*c->tail = r;
	c->tail = &r->next;
	if (!c->cursor && c->up)
		c->cursor = r;
	c->qn++;
	c->qbytes += w.len;
	return 0;
}

int
cpc_message(struct cpc *c, const struct dp_message_record *rec)
{
	char ip[2][INET6_ADDRSTRLEN];
	uint64_t id;
	pthread_mutex_lock(&c->lock);
	if (build(&c->m, rec, ip, false))
		c->truncated++;
	c->m.u.message.record_id = c->next_id;
	int rc = enqueue(c, &id, false, 0);
	pthread_mutex_unlock(&c->lock);
	if (rc == 0)
		wake(c);
	return rc;
}

int
cpc_message_verdict(struct cpc *c, const struct dp_message_record *rec, unsigned slot,
                    uint64_t *id)
{
	char ip[2][INET6_ADDRSTRLEN];
	if (slot >= CPC_MAX_SLOTS)
		return -1;
	pthread_mutex_lock(&c->lock);
	if (build(&c->m, rec, ip, true))
		c->truncated++;
	c->m.u.message.record_id = c->next_id;
	int rc = enqueue(c, id, true, slot);
	pthread_mutex_unlock(&c->lock);
	if (rc == 0)
		wake(c);
	return rc;
}

struct cpc_verdict *
cpc_verdict_take(struct cpc *c, unsigned slot)
{
	if (slot >= CPC_MAX_SLOTS)
		return NULL;
	pthread_mutex_lock(&c->lock);
	struct cpc_verdict *v = c->vbox[slot];
	if (v)
		c->vbox[slot] = v->next;
	pthread_mutex_unlock(&c->lock);
	if (v)
		v->next = NULL;
	return v;
}

bool
cpc_verdict_wait(struct cpc *c, unsigned slot, unsigned timeout_ms)
{
	if (slot >= CPC_MAX_SLOTS)
		return false;
	uint64_t t0 = mono_ms();
	pthread_mutex_lock(&c->lock);
	while (!c->vbox[slot] && mono_ms() - t0 < timeout_ms) {
		unsigned left = timeout_ms - (unsigned)(mono_ms() - t0);
		struct timespec dl = abs_after(left < CPC_POLL_MS ? left : CPC_POLL_MS);
		pthread_cond_timedwait(&c->cond, &c->lock, &dl);
	}
	bool got = c->vbox[slot] != NULL;
	pthread_mutex_unlock(&c->lock);
	return got;
}

int
cpc_session(struct cpc *c, const struct dp_session_record *rec)
{
	char ip[2][INET6_ADDRSTRLEN];
	uint64_t id;
	pthread_mutex_lock(&c->lock);
	if (build_session(&c->m, rec, ip))
		c->truncated++;
	c->m.u.session.record_id = c->next_id;
	int rc = enqueue(c, &id, false, 0);
	pthread_mutex_unlock(&c->lock);
	if (rc == 0)
		wake(c);
	return rc;
}

int
cpc_stats(struct cpc *c, const char *const *names, const uint64_t *values, size_t n)
{
	if (n > CPM_MAX_STATS)
		return -1;
	pthread_mutex_lock(&c->lock);
	c->m = (struct cpm_msg){.type = CPM_STATS};
	for (size_t i = 0; i < n; i++) {
		c->m.u.stats.s[i].name = cpm_s(names[i]);
		c->m.u.stats.s[i].value = values[i];
	}
	c->m.u.stats.n = (uint32_t)n;
	struct cpm_writer w;
	cpm_writer_init(&w, c->stats, sizeof(c->stats));
	int rc = cpm_encode(&w, &c->m);
	c->stats_len = rc == 0 ? w.len : 0;
	pthread_mutex_unlock(&c->lock);
	if (rc == 0)
		wake(c);
	return rc;
}

int
cpc_finish(struct cpc *c, unsigned timeout_ms, char *why, size_t whylen)
{
	uint64_t t0 = mono_ms();
	int rc = 0;
	wake(c);
	pthread_mutex_lock(&c->lock);
	uint64_t last = c->next_id - 1;
	/* a STATS still queued goes out too (while connected) */
	while ((c->acked < last || (c->stats_len && c->up)) && mono_ms() - t0 < timeout_ms) {
		struct timespec dl = abs_after(CPC_POLL_MS);
		pthread_cond_timedwait(&c->cond, &c->lock, &dl);
	}
	if (c->acked < last) {
		snprintf(why, whylen, "only %llu of %llu records acknowledged within %u ms%s%s",
		         (unsigned long long)c->acked, (unsigned long long)last, timeout_ms,
		         c->why[0] ? "; last connection problem: " : "", c->why);
		rc = -1;
	} else if (c->unsent) {
		snprintf(why, whylen, "%llu records dropped (queue full or too large for a datagram)",
		         (unsigned long long)c->unsent);
		rc = -1;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int
cpc_key_ask(struct cpc *c, const char *name, unsigned slot, uint64_t tag)
{
	size_t n = strlen(name);
	if (slot >= CPC_MAX_SLOTS || n == 0 || n > DKIM_MAX_KEY_NAME)
		return -1;
	struct keyreq *k = calloc(1, sizeof(*k));
	if (!k)
		return -1;
	memcpy(k->a.name, name, n + 1);
	k->a.tag = tag;
	k->slot = slot;
	k->deadline_ms = mono_ms() + CPC_KEY_TIMEOUT_MS;
	pthread_mutex_lock(&c->lock);
	if (c->nkeys >= CPC_MAX_KEYS_PENDING) {
		pthread_mutex_unlock(&c->lock);
		free(k);
		return -1;
	}
	k->req_id = ++c->next_req;
	k->next = c->keys;
	c->keys = k;
	c->nkeys++;
	pthread_mutex_unlock(&c->lock);
	wake(c);
	return 0;
}

int
cpc_key_take(struct cpc *c, unsigned slot, struct cpc_key_answer *out)
{
	if (slot >= CPC_MAX_SLOTS)
		return 0;
	pthread_mutex_lock(&c->lock);
	struct keyreq *k = c->box[slot];
	if (k)
		c->box[slot] = k->next;
	pthread_mutex_unlock(&c->lock);
	if (!k)
		return 0;
	*out = k->a;
	free(k);
	return 1;
}

enum dkim_key_status
cpc_key_status(const struct cpc_key_answer *a, struct dkim_key *key, char *why, size_t whylen)
{
	switch (a->status) {
	case CPM_KEY_FOUND: {
		const char *pwhy = NULL;
		if (dkim_key_parse(a->text, a->len, key, &pwhy) == 0)
			return DKIM_KEY_FOUND;
		snprintf(why, whylen, "%s", pwhy ? pwhy : "unparsable key record");
		return DKIM_KEY_INVALID;
	}
	case CPM_KEY_MISSING:
		snprintf(why, whylen, "%s", a->text);
		return DKIM_KEY_MISSING;
	case CPM_KEY_INVALID:
		snprintf(why, whylen, "%s", a->text);
		return DKIM_KEY_INVALID;
	default: /* TEMPFAIL, and a status this version does not know */
		snprintf(why, whylen, "%s", a->text[0] ? a->text : "key lookup failed temporarily");
		return DKIM_KEY_TEMPFAIL;
	}
}

/* The blocking form's mailbox: shared by its callers, each takes only the
 * answer with its own tag. */
#define CPC_SYNC_SLOT (CPC_MAX_SLOTS - 1)

enum dkim_key_status
cpc_key(struct cpc *c, const char *name, unsigned timeout_ms, struct dkim_key *key, char *why,
        size_t whylen)
{
	pthread_mutex_lock(&c->lock);
	uint64_t tag = ++c->next_tag;
	pthread_mutex_unlock(&c->lock);
	if (cpc_key_ask(c, name, CPC_SYNC_SLOT, tag) != 0) {
		snprintf(why, whylen, "key request not sent (bad name or too many pending)");
		return DKIM_KEY_TEMPFAIL;
	}
	uint64_t t0 = mono_ms();
	struct keyreq *got = NULL;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		for (struct keyreq **pk = &c->box[CPC_SYNC_SLOT]; *pk; pk = &(*pk)->next)
			if ((*pk)->a.tag == tag) {
				got = *pk;
				*pk = got->next;
				break;
			}
		/* the I/O thread answers TEMPFAIL at CPC_KEY_TIMEOUT_MS; a
		 * shorter timeout_ms gives up here (the answer is dropped later) */
		if (got || mono_ms() - t0 >= timeout_ms + CPC_POLL_MS * 2u)
			break;
		struct timespec dl = abs_after(CPC_POLL_MS);
		pthread_cond_timedwait(&c->cond, &c->lock, &dl);
	}
	pthread_mutex_unlock(&c->lock);
	if (!got) {
		snprintf(why, whylen, "control plane did not answer within %u ms", timeout_ms);
		return DKIM_KEY_TEMPFAIL;
	}
	enum dkim_key_status st = cpc_key_status(&got->a, key, why, whylen);
	free(got);
	return st;
}

/* counters written under the lock, read here without it (a snapshot) */
#define CPC_GETTER(field)                                       \
	uint64_t cpc_##field(const struct cpc *c)               \
	{                                                       \
		return __atomic_load_n(&c->field, __ATOMIC_RELAXED); \
	}
CPC_GETTER(key_requests)
CPC_GETTER(verdicts)
CPC_GETTER(sent)
CPC_GETTER(acked)
CPC_GETTER(unsent)
CPC_GETTER(truncated)
CPC_GETTER(resent)
CPC_GETTER(reconnects)

static void
free_keys(struct keyreq *k)
{
	while (k) {
		struct keyreq *n = k->next;
		free(k);
		k = n;
	}
}

void
cpc_free(struct cpc *c)
{
	if (!c)
		return;
	if (c->thr_started) {
		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		wake(c);
		pthread_join(c->thr, NULL);
	}
	if (c->fd >= 0)
		close(c->fd);
	for (int i = 0; i < 2; i++)
		if (c->wake[i] >= 0)
			close(c->wake[i]);
	while (c->head) {
		struct rec *r = c->head;
		c->head = r->next;
		free(r);
	}
	free_keys(c->keys);
	for (unsigned i = 0; i < CPC_MAX_SLOTS; i++) {
		free_keys(c->box[i]);
		while (c->vbox[i]) {
			struct cpc_verdict *v = c->vbox[i];
			c->vbox[i] = v->next;
			cpc_verdict_free(v);
		}
	}
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}
