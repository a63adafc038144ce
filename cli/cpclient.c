/*
 * cpc: dataplane -> control plane records over cpm (see cpclient.h).
 */
#include "cpclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
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

struct cpc {
	int fd;
	pthread_mutex_t lock;
	struct cpm_writer w;
	uint64_t next_id; /* the id the next record gets */
	uint64_t sent;    /* records handed to the socket (ids 1..sent) */
	uint64_t acked;
	uint64_t unsent, truncated;
	bool failed; /* no more sends: why holds the first reason */
	uint64_t next_req, key_requests;
	uint64_t want_req; /* the KEY_ANSWER cpc_key waits for (0: none) */
	bool got;          /* it came: ans_* hold it */
	uint8_t ans_status;
	size_t ans_len;
	char ans_text[CPM_MAX_STR + 1];
	char why[256];
	struct cpm_msg m; /* the record being encoded (5 KB: not on a worker's stack) */
	uint8_t buf[CPM_MAX_DATAGRAM];
	uint8_t rbuf[CPM_MAX_DATAGRAM + 1];
};

void
cpc_ip_text(const struct dp_endpoint *ep, char *buf, size_t len)
{
	if (!ep->v6)
		inet_ntop(AF_INET, ep->ip + 12, buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, ep->ip, buf, (socklen_t)len);
}

static void
fail(struct cpc *c, const char *what, const char *detail)
{
	if (c->failed)
		return;
	c->failed = true;
	snprintf(c->why, sizeof(c->why), "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

/* Handles one datagram from the control plane: ACKs move c->acked, an
 * ERROR fails the connection. Returns 0, or -1 when it did not decode. */
static int
handle(struct cpc *c, const uint8_t *d, size_t n, struct cpm_msg *m)
{
	struct cpm_reader r;
	char why[128];
	int rc;
	cpm_reader_init(&r, d, n);
	while ((rc = cpm_decode_next(&r, m, why, sizeof(why))) == 1) {
		if (m->type == CPM_ACK) {
			if (m->u.ack.up_to > c->acked)
				c->acked = m->u.ack.up_to;
		} else if (m->type == CPM_ERROR) {
			char text[160];
			if (cpm_str_copy(m->u.error.text, text, sizeof(text)) != 0)
				snprintf(text, sizeof(text), "%s", cpm_error_text(m->u.error.code));
			fail(c, "control plane refused us", text);
		} else if (m->type == CPM_KEY_ANSWER && c->want_req &&
		           m->u.key_answer.req_id == c->want_req && !c->got) {
			/* the record text points into rbuf: copy it before the next recv */
			const struct cpm_key_answer *k = &m->u.key_answer;
			c->got = true;
			c->ans_status = k->status;
			c->ans_len = k->record.len <= CPM_MAX_STR ? k->record.len : CPM_MAX_STR;
			if (c->ans_len)
				memcpy(c->ans_text, k->record.p, c->ans_len);
			c->ans_text[c->ans_len] = '\0';
		}
		/* other KEY_ANSWERs (a request that timed out) and the rest: ignored */
	}
	if (rc < 0) {
		fail(c, "malformed datagram from the control plane", why);
		return -1;
	}
	return 0;
}

/* Reads what the control plane sent, waiting up to timeout_ms for the first
 * datagram (0: only what is there). Returns -1 once the peer has closed. */
static int
pump(struct cpc *c, int timeout_ms)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	int first = timeout_ms;
	for (;;) {
		int pr = poll(&p, 1, first);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return 0;
		first = 0;
		ssize_t n = recv(c->fd, c->rbuf, sizeof(c->rbuf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0) {
			fail(c, "control plane closed the connection",
			     n < 0 ? strerror(errno) : NULL);
			return -1;
		}
		struct cpm_msg m;
		handle(c, c->rbuf, (size_t)n, &m);
	}
}

/* Sends the batch being built. The records in it count as sent. */
static void
flush(struct cpc *c)
{
	if (c->w.records == 0)
		return;
	unsigned recs = c->w.records;
	if (!c->failed) {
		ssize_t n;
		do
			n = send(c->fd, c->buf, c->w.len, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			fail(c, "sending to the control plane", strerror(errno));
	}
	if (c->failed)
		c->unsent += recs;
	else
		c->sent += recs;
	cpm_writer_init(&c->w, c->buf, sizeof(c->buf));
}

struct cpc *
cpc_connect(const char *path, char *why, size_t whylen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "%s: socket path too long", path);
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	struct cpc *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	c->fd = -1;
	c->next_id = 1;
	cpm_writer_init(&c->w, c->buf, sizeof(c->buf));
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		snprintf(why, whylen, "mutex: %s", strerror(errno));
		free(c);
		return NULL;
	}
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		goto fail;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(why, whylen, "%s: cannot connect to the control plane: %s", path,
		         strerror(errno));
		goto fail;
	}
	c->m = (struct cpm_msg){.type = CPM_HELLO,
	                        .u.hello = {.magic = CPM_MAGIC,
	                                    .version = CPM_VERSION,
	                                    .role = CPM_ROLE_DATAPLANE}};
	struct cpm_writer hw;
	uint8_t hb[64];
	cpm_writer_init(&hw, hb, sizeof(hb));
	if (cpm_encode(&hw, &c->m) != 0 || send(c->fd, hb, hw.len, MSG_NOSIGNAL) < 0) {
		snprintf(why, whylen, "%s: sending HELLO: %s", path, strerror(errno));
		goto fail;
	}
	/* the first datagram back must be the control plane's HELLO, alone */
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	if (poll(&p, 1, (int)CPC_HELLO_TIMEOUT_MS) <= 0) {
		snprintf(why, whylen, "%s: no HELLO from the control plane within %u ms", path,
		         CPC_HELLO_TIMEOUT_MS);
		goto fail;
	}
	ssize_t n = recv(c->fd, c->rbuf, sizeof(c->rbuf), 0);
	if (n <= 0) {
		snprintf(why, whylen, "%s: the control plane closed the connection during HELLO",
		         path);
		goto fail;
	}
	struct cpm_reader r;
	char dwhy[128];
	cpm_reader_init(&r, c->rbuf, (size_t)n);
	int rc = cpm_decode_next(&r, &c->m, dwhy, sizeof(dwhy));
	if (rc != 1) {
		snprintf(why, whylen, "%s: not a cpm peer: %s", path,
		         rc < 0 ? dwhy : "empty datagram");
		goto fail;
	}
	if (c->m.type == CPM_ERROR) {
		char text[160] = "";
		cpm_str_copy(c->m.u.error.text, text, sizeof(text));
		snprintf(why, whylen, "%s: the control plane refused our HELLO: %s (%s)", path,
		         cpm_error_text(c->m.u.error.code), text);
		goto fail;
	}
	int herr = cpm_hello_check(&c->m, CPM_ROLE_CONTROLPLANE);
	if (herr == 0 && r.off != r.len)
		herr = CPM_E_MALFORMED; /* HELLO comes alone in its datagram */
	if (herr != 0) {
		snprintf(why, whylen,
		         "%s: HELLO mismatch: %s (peer: %s, magic 0x%08x, version %u, role %u; we "
		         "speak version %u and expect role %u)",
		         path, cpm_error_text((unsigned)herr), cpm_type_name(c->m.type),
		         c->m.type == CPM_HELLO ? c->m.u.hello.magic : 0,
		         c->m.type == CPM_HELLO ? c->m.u.hello.version : 0,
		         c->m.type == CPM_HELLO ? c->m.u.hello.role : 0, CPM_VERSION,
		         CPM_ROLE_CONTROLPLANE);
		goto fail;
	}
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

/* Fills c->m from rec; the strings point into rec (and ip[]). */
static bool
build(struct cpc *c, const struct dp_message_record *rec, char ip[2][INET6_ADDRSTRLEN])
{
	struct cpm_message *mm = &c->m.u.message;
	bool t = false;
	memset(&c->m, 0, sizeof(c->m));
	c->m.type = CPM_MESSAGE_RECORD;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	mm->ts_usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
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

int
cpc_message(struct cpc *c, const struct dp_message_record *rec)
{
	char ip[2][INET6_ADDRSTRLEN];
	pthread_mutex_lock(&c->lock);
	if (c->failed) {
		c->unsent++;
		pthread_mutex_unlock(&c->lock);
		return -1;
	}
	if (build(c, rec, ip))
		c->truncated++;
	c->m.u.message.record_id = c->next_id;
	if (cpm_encode(&c->w, &c->m) != 0) {
		flush(c);
		pump(c, 0); /* take the ACKs so far off the socket */
	}
	int rc = 0;
	if (!c->failed && c->w.records == 0 && cpm_encode(&c->w, &c->m) != 0) {
		/* alone it does not fit either: lost, the connection goes on */
		c->unsent++;
		rc = -1;
	} else if (c->failed) {
		c->unsent++;
		rc = -1;
	} else {
		c->next_id++;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int
cpc_finish(struct cpc *c, unsigned timeout_ms, char *why, size_t whylen)
{
	pthread_mutex_lock(&c->lock);
	flush(c);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!c->failed && c->acked < c->sent) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long el =
		        (long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (el >= (long)timeout_ms)
			break;
		if (pump(c, (int)((long)timeout_ms - el)) < 0)
			break;
	}
	int rc = 0;
	if (c->failed && (c->acked < c->sent || c->unsent)) {
		/* an ACK of everything before a later close is still a success */
		snprintf(why, whylen, "%s", c->why);
		rc = -1;
	} else if (c->acked < c->sent) {
		snprintf(why, whylen, "only %llu of %llu records acknowledged within %u ms",
		         (unsigned long long)c->acked, (unsigned long long)c->sent, timeout_ms);
		rc = -1;
	} else if (c->unsent) {
		snprintf(why, whylen, "%llu records too large for one cpm datagram, not sent",
		         (unsigned long long)c->unsent);
		rc = -1;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

enum dkim_key_status
cpc_key(struct cpc *c, const char *name, unsigned timeout_ms, struct dkim_key *key, char *why,
        size_t whylen)
{
	enum dkim_key_status st = DKIM_KEY_TEMPFAIL;
	struct cpm_msg m = {.type = CPM_KEY_REQUEST};
	uint8_t b[DKIM_MAX_KEY_NAME + 64];
	struct cpm_writer w;
	pthread_mutex_lock(&c->lock);
	if (c->failed) {
		snprintf(why, whylen, "control plane connection failed: %s", c->why);
		goto out;
	}
	m.u.key_request.req_id = ++c->next_req;
	m.u.key_request.name = cpm_s(name);
	cpm_writer_init(&w, b, sizeof(b));
	if (cpm_encode(&w, &m) != 0) {
		st = DKIM_KEY_INVALID;
		snprintf(why, whylen, "key name too long for a KEY_REQUEST");
		goto out;
	}
	ssize_t n;
	do
		n = send(c->fd, b, w.len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		fail(c, "sending to the control plane", strerror(errno));
		snprintf(why, whylen, "control plane connection failed: %s", c->why);
		goto out;
	}
	c->key_requests++;
	c->want_req = m.u.key_request.req_id;
	c->got = false;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!c->got && !c->failed) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long el =
		        (long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (el >= (long)timeout_ms || pump(c, (int)((long)timeout_ms - el)) < 0)
			break;
	}
	c->want_req = 0;
	if (!c->got) {
		snprintf(why, whylen, "control plane did not answer%s%s",
		         c->failed ? ": " : "", c->failed ? c->why : "");
		goto out;
	}
	switch (c->ans_status) {
	case CPM_KEY_FOUND: {
		const char *pwhy = NULL;
		if (dkim_key_parse(c->ans_text, c->ans_len, key, &pwhy) == 0) {
			st = DKIM_KEY_FOUND;
		} else {
			st = DKIM_KEY_INVALID;
			snprintf(why, whylen, "%s", pwhy ? pwhy : "unparsable key record");
		}
		break;
	}
	case CPM_KEY_MISSING:
		st = DKIM_KEY_MISSING;
		snprintf(why, whylen, "%s", c->ans_text);
		break;
	case CPM_KEY_INVALID:
		st = DKIM_KEY_INVALID;
		snprintf(why, whylen, "%s", c->ans_text);
		break;
	default: /* TEMPFAIL, and a status this version does not know */
		st = DKIM_KEY_TEMPFAIL;
		snprintf(why, whylen, "%s", c->ans_text[0] ? c->ans_text : "key lookup failed temporarily");
		break;
	}
out:
	pthread_mutex_unlock(&c->lock);
	return st;
}

uint64_t
cpc_key_requests(const struct cpc *c)
{
	return c->key_requests;
}

uint64_t
cpc_sent(const struct cpc *c)
{
	return c->sent;
}

uint64_t
cpc_acked(const struct cpc *c)
{
	return c->acked;
}

uint64_t
cpc_unsent(const struct cpc *c)
{
	return c->unsent;
}

uint64_t
cpc_truncated(const struct cpc *c)
{
	return c->truncated;
}

void
cpc_free(struct cpc *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
