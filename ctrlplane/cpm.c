/*
 * cpm: marshalling of the control-plane protocol (see cpm.h).
 *
 * Each message type has one walk function listing its fields; the same walk
 * encodes (cpm_io with a writer) and decodes (with a reader), so the two
 * directions cannot drift apart.
 */
#include "cpm.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
} type_names[] = {
#define CPM_TNAME(name, id, member) [id] = {#name},
	CPM_FOREACH_TYPE(CPM_TNAME)
#undef CPM_TNAME
};

const char *
cpm_type_name(unsigned type)
{
	if (type >= sizeof(type_names) / sizeof(type_names[0]) || !type_names[type].name)
		return "?";
	return type_names[type].name;
}

static const char *const error_texts[] = {
#define CPM_ETEXT(name, id, text) [id] = text,
	CPM_FOREACH_ERROR(CPM_ETEXT)
#undef CPM_ETEXT
};

const char *
cpm_error_text(unsigned code)
{
	if (code >= sizeof(error_texts) / sizeof(error_texts[0]) || !error_texts[code])
		return "unknown error";
	return error_texts[code];
}

const char *
cpm_key_status_name(unsigned st)
{
	static const char *const n[] = {"found", "missing", "invalid", "tempfail"};
	return st < 4 ? n[st] : "?";
}

const char *
cpm_sts_status_name(unsigned st)
{
	static const char *const n[] = {"policy", "none", "tempfail"};
	return st < 3 ? n[st] : "?";
}

struct cpm_str
cpm_s(const char *s)
{
	struct cpm_str r = {s, s ? (uint32_t)strlen(s) : 0};
	return r;
}

int
cpm_str_copy(struct cpm_str s, char *out, size_t cap)
{
	if (cap == 0 || s.len >= cap)
		return -1;
	if (s.len)
		memcpy(out, s.p, s.len);
	out[s.len] = '\0';
	return 0;
}

bool
cpm_str_eq(struct cpm_str s, const char *c)
{
	size_t n = strlen(c);
	return s.len == n && (n == 0 || memcmp(s.p, c, n) == 0);
}

/* ---- writer ---- */

void
cpm_writer_init(struct cpm_writer *w, uint8_t *buf, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
}

static void
put_raw(struct cpm_writer *w, const void *p, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	if (n)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

void
cpm_put_u8(struct cpm_writer *w, uint8_t v)
{
	put_raw(w, &v, 1);
}

void
cpm_put_u16(struct cpm_writer *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	put_raw(w, b, 2);
}

void
cpm_put_u32(struct cpm_writer *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	put_raw(w, b, 4);
}

void
cpm_put_u64(struct cpm_writer *w, uint64_t v)
{
	cpm_put_u32(w, (uint32_t)(v >> 32));
	cpm_put_u32(w, (uint32_t)v);
}

void
cpm_put_bytes(struct cpm_writer *w, const void *p, uint32_t len)
{
	cpm_put_u32(w, len);
	put_raw(w, p, len);
}

void
cpm_put_str(struct cpm_writer *w, struct cpm_str s)
{
	/* an over-long or NUL-holding string could never be decoded: refuse it here */
	if (s.len > CPM_MAX_STR || (s.len && memchr(s.p, '\0', s.len))) {
		w->overflow = true;
		return;
	}
	cpm_put_bytes(w, s.p, s.len);
}

/* ---- reader ---- */

void
cpm_reader_init(struct cpm_reader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = false;
}

static const uint8_t *
get_raw(struct cpm_reader *r, size_t n)
{
	if (r->err || n > r->len - r->off) {
		r->err = true;
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t
cpm_get_u8(struct cpm_reader *r)
{
	const uint8_t *p = get_raw(r, 1);
	return p ? p[0] : 0;
}

uint16_t
cpm_get_u16(struct cpm_reader *r)
{
	const uint8_t *p = get_raw(r, 2);
	return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

uint32_t
cpm_get_u32(struct cpm_reader *r)
{
	const uint8_t *p = get_raw(r, 4);
	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

uint64_t
cpm_get_u64(struct cpm_reader *r)
{
	uint64_t hi = cpm_get_u32(r);
	return hi << 32 | cpm_get_u32(r);
}

struct cpm_str
cpm_get_bytes(struct cpm_reader *r, uint32_t max)
{
	struct cpm_str s = {NULL, 0};
	uint32_t n = cpm_get_u32(r);
	if (r->err)
		return s;
	if (n > max) {
		r->err = true;
		return s;
	}
	const uint8_t *p = get_raw(r, n);
	if (p && n) {
		s.p = (const char *)p;
		s.len = n;
	}
	return s;
}

struct cpm_str
cpm_get_str(struct cpm_reader *r)
{
	struct cpm_str s = cpm_get_bytes(r, CPM_MAX_STR);
	if (s.len && memchr(s.p, '\0', s.len)) {
		r->err = true;
		s.p = NULL;
		s.len = 0;
	}
	return s;
}

/* ---- one walk per message type, for both directions ---- */

struct cpm_io {
	struct cpm_writer *w; /* encoding when set */
	struct cpm_reader *r; /* decoding when set */
	bool bad;             /* a list count over its limit */
};

static void
io_u8(struct cpm_io *io, uint8_t *v)
{
	if (io->w)
		cpm_put_u8(io->w, *v);
	else
		*v = cpm_get_u8(io->r);
}

static void
io_u16(struct cpm_io *io, uint16_t *v)
{
	if (io->w)
		cpm_put_u16(io->w, *v);
	else
		*v = cpm_get_u16(io->r);
}

static void
io_u32(struct cpm_io *io, uint32_t *v)
{
	if (io->w)
		cpm_put_u32(io->w, *v);
	else
		*v = cpm_get_u32(io->r);
}

static void
io_u64(struct cpm_io *io, uint64_t *v)
{
	if (io->w)
		cpm_put_u64(io->w, *v);
	else
		*v = cpm_get_u64(io->r);
}

static void
io_str(struct cpm_io *io, struct cpm_str *s)
{
	if (io->w)
		cpm_put_str(io->w, *s);
	else
		*s = cpm_get_str(io->r);
}

/* A list count; false (and the walk stops) when it is over max. */
static bool
io_count(struct cpm_io *io, uint32_t *n, uint32_t max)
{
	io_u32(io, n);
	if (*n > max) {
		io->bad = true;
		*n = 0;
		return false;
	}
	return !(io->r && io->r->err);
}

static void
io_endpoint(struct cpm_io *io, struct cpm_endpoint *e)
{
	io_str(io, &e->ip);
	io_u16(io, &e->port);
}

static void
walk_hello(struct cpm_io *io, struct cpm_hello *m)
{
	io_u32(io, &m->magic);
	io_u16(io, &m->version);
	io_u8(io, &m->role);
}

static void
walk_error(struct cpm_io *io, struct cpm_error *m)
{
	io_u32(io, &m->code);
	io_str(io, &m->text);
}

static void
walk_key_request(struct cpm_io *io, struct cpm_key_request *m)
{
	io_u64(io, &m->req_id);
	io_str(io, &m->name);
}

static void
walk_key_answer(struct cpm_io *io, struct cpm_key_answer *m)
{
	io_u64(io, &m->req_id);
	io_u8(io, &m->status);
	io_u32(io, &m->ttl);
	io_str(io, &m->record);
	if (m->status > CPM_KEY_TEMPFAIL)
		io->bad = true;
}

static void
walk_message(struct cpm_io *io, struct cpm_message *m)
{
	io_u64(io, &m->record_id);
	io_u64(io, &m->flow_id);
	io_u64(io, &m->ts_usec);
	io_endpoint(io, &m->client);
	io_endpoint(io, &m->server);
	io_str(io, &m->helo);
	io_str(io, &m->mail_from);
	if (!io_count(io, &m->nrcpts, CPM_MAX_RCPTS))
		return;
	for (uint32_t i = 0; i < m->nrcpts; i++)
		io_str(io, &m->rcpts[i]);
	io_u8(io, &m->starttls);
	io_u32(io, &m->transaction);
	if (!io_count(io, &m->ndkim, CPM_MAX_DKIM))
		return;
	for (uint32_t i = 0; i < m->ndkim; i++) {
		struct cpm_dkim *d = &m->dkim[i];
		io_str(io, &d->d);
		io_str(io, &d->s);
		io_str(io, &d->a);
		io_str(io, &d->result);
		io_str(io, &d->reason);
	}
	if (!io_count(io, &m->nfrom, CPM_MAX_FROM))
		return;
	for (uint32_t i = 0; i < m->nfrom; i++)
		io_str(io, &m->from[i]);
	io_u8(io, &m->arc_chain);
	if (m->arc_chain > CPM_ARC_FAIL)
		io->bad = true;
	if (!io_count(io, &m->narc, CPM_MAX_ARC))
		return;
	for (uint32_t i = 0; i < m->narc; i++) {
		io_u32(io, &m->arc[i].instance);
		io_str(io, &m->arc[i].sealer);
		io_str(io, &m->arc[i].aar);
	}
	io_str(io, &m->gap);
	io_u8(io, &m->verdict_wanted);
	if (m->verdict_wanted > 1)
		io->bad = true;
}

static void
io_spf_outcome(struct cpm_io *io, struct cpm_spf_outcome *o)
{
	io_u8(io, &o->result);
	io_str(io, &o->domain);
	io_str(io, &o->mechanism);
	io_str(io, &o->reason);
	io_str(io, &o->explanation);
	if (o->result > CPM_SPF_RESULT_MAX)
		io->bad = true;
}

static void
walk_verdict(struct cpm_io *io, struct cpm_verdict *m)
{
	io_u64(io, &m->record_id);
	io_u8(io, &m->status);
	io_str(io, &m->why);
	io_u8(io, &m->spf_ran);
	io_u8(io, &m->spf_null_sender);
	io_str(io, &m->spf_mail_from);
	io_str(io, &m->spf_helo_name);
	io_spf_outcome(io, &m->spf);
	io_u8(io, &m->helo_ran);
	io_spf_outcome(io, &m->helo);
	io_u8(io, &m->dmarc_ran);
	io_u8(io, &m->dmarc_result);
	io_u8(io, &m->dmarc_policy);
	io_u8(io, &m->dmarc_disposition);
	io_u8(io, &m->org_method);
	io_u8(io, &m->testing);
	io_u8(io, &m->sampled_out);
	io_u8(io, &m->org_disagree);
	io_u8(io, &m->spf_aligned);
	io_u8(io, &m->dkim_aligned);
	io_u32(io, &m->pct);
	io_str(io, &m->from_domain);
	io_str(io, &m->record_domain);
	io_str(io, &m->org_domain);
	io_str(io, &m->psl_org_domain);
	io_str(io, &m->walk_org_domain);
	io_str(io, &m->dmarc_reason);
	io_u8(io, &m->arc_applied);
	io_str(io, &m->arc_by);
	io_str(io, &m->arc_sealer);
	io_u32(io, &m->arc_instance);
	io_str(io, &m->arc_reason);
	io_str(io, &m->override);
	io_str(io, &m->disposition);
	io_str(io, &m->authres);
	/* enumerations in range and booleans 0 or 1: the encoding stays canonical */
	if (m->status > CPM_VERDICT_ERROR || m->dmarc_result > CPM_DMARC_RES_MAX ||
	    m->dmarc_policy > CPM_DMARC_POLICY_MAX || m->dmarc_disposition > CPM_DMARC_POLICY_MAX ||
	    m->org_method > CPM_DMARC_ORG_MAX || m->pct > 100)
		io->bad = true;
	if ((m->spf_ran | m->spf_null_sender | m->helo_ran | m->dmarc_ran | m->testing |
	     m->sampled_out | m->org_disagree | m->spf_aligned | m->dkim_aligned | m->arc_applied) > 1)
		io->bad = true;
}

static void
io_tls(struct cpm_io *io, struct cpm_tls *t)
{
	io_u8(io, &t->client_hello);
	io_u8(io, &t->server_hello);
	io_u16(io, &t->version_offered_max);
	io_u16(io, &t->version);
	io_u8(io, &t->resumed);
	io_str(io, &t->sni);
	io_u8(io, &t->cert_seen);
	if (!io_count(io, &t->ncert_names, CPM_MAX_CERT_NAMES))
		return;
	for (uint32_t i = 0; i < t->ncert_names; i++)
		io_str(io, &t->cert_names[i]);
	uint64_t nb = (uint64_t)t->not_before, na = (uint64_t)t->not_after;
	io_u64(io, &nb);
	io_u64(io, &na);
	t->not_before = (int64_t)nb;
	t->not_after = (int64_t)na;
	io_str(io, &t->issuer);
	io_u8(io, &t->chain_trusted);
	/* booleans are 0 or 1, so the encoding stays canonical */
	if (t->client_hello > 1 || t->server_hello > 1 || t->resumed > 1 || t->cert_seen > 1 ||
	    t->chain_trusted > 1)
		io->bad = true;
}

static void
walk_session(struct cpm_io *io, struct cpm_session *m)
{
	io_u64(io, &m->record_id);
	io_u64(io, &m->flow_id);
	io_u64(io, &m->ts_usec);
	io_endpoint(io, &m->client);
	io_endpoint(io, &m->server);
	io_str(io, &m->helo);
	io_u8(io, &m->starttls_offered);
	io_u8(io, &m->starttls_used);
	io_str(io, &m->end_reason);
	io_u32(io, &m->transactions);
	if (!io_count(io, &m->nrcpt_domains, CPM_MAX_RCPT_DOMAINS))
		return;
	for (uint32_t i = 0; i < m->nrcpt_domains; i++)
		io_str(io, &m->rcpt_domains[i]);
	io_tls(io, &m->tls);
	if (io->bad || !io_count(io, &m->nanomalies, CPM_MAX_ANOMALIES))
		return;
	for (uint32_t i = 0; i < m->nanomalies; i++) {
		io_str(io, &m->anomalies[i].name);
		io_u8(io, &m->anomalies[i].dir);
		io_u64(io, &m->anomalies[i].offset);
		if (m->anomalies[i].dir > CPM_DIR_S2C)
			io->bad = true;
	}
	if (io->bad || !io_count(io, &m->nreplies, CPM_MAX_REPLIES))
		return;
	for (uint32_t i = 0; i < m->nreplies; i++) {
		io_str(io, &m->replies[i].verb);
		io_u16(io, &m->replies[i].code);
		if (m->replies[i].code > CPM_MAX_REPLY_CODE)
			io->bad = true;
	}
	io_u64(io, &m->replies_over);
}

static void
walk_sts_query(struct cpm_io *io, struct cpm_sts_query *m)
{
	io_u64(io, &m->req_id);
	io_str(io, &m->domain);
}

static void
walk_sts_answer(struct cpm_io *io, struct cpm_sts_answer *m)
{
	io_u64(io, &m->req_id);
	io_u8(io, &m->status);
	io_u8(io, &m->mode);
	io_u32(io, &m->ttl);
	if (m->status > CPM_STS_TEMPFAIL || m->mode > CPM_STS_MODE_NONE)
		io->bad = true;
	if (!io_count(io, &m->nmx, CPM_MAX_STS_MX))
		return;
	for (uint32_t i = 0; i < m->nmx; i++)
		io_str(io, &m->mx[i]);
	io_str(io, &m->why);
}

static void
walk_ack(struct cpm_io *io, struct cpm_ack *m)
{
	io_u64(io, &m->up_to);
}

static void
walk_stats(struct cpm_io *io, struct cpm_stats *m)
{
	if (!io_count(io, &m->n, CPM_MAX_STATS))
		return;
	for (uint32_t i = 0; i < m->n; i++) {
		io_str(io, &m->s[i].name);
		io_u64(io, &m->s[i].value);
	}
}

static void
walk(struct cpm_io *io, struct cpm_msg *m)
{
	switch (m->type) {
#define CPM_WALK(name, id, member)                  \
	case CPM_##name:                            \
		walk_##member(io, &m->u.member);    \
		break;
		CPM_FOREACH_TYPE(CPM_WALK)
#undef CPM_WALK
	default:
		io->bad = true;
	}
}

int
cpm_encode(struct cpm_writer *w, const struct cpm_msg *m)
{
	if (w->overflow)
		return -1;
	/* the walk takes a mutable message (it also decodes); encoding walks a
	 * copy (about 5 KiB of stack) so m stays const */
	struct cpm_msg copy = *m;
	size_t start = w->len;
	cpm_put_u16(w, (uint16_t)m->type);
	size_t len_at = w->len;
	cpm_put_u32(w, 0);
	struct cpm_io io = {.w = w};
	walk(&io, &copy);
	if (io.bad || w->overflow || w->len - len_at - 4 > UINT32_MAX) {
		w->len = start;
		w->overflow = false;
		return -1;
	}
	uint32_t plen = (uint32_t)(w->len - len_at - 4);
	w->buf[len_at] = (uint8_t)(plen >> 24);
	w->buf[len_at + 1] = (uint8_t)(plen >> 16);
	w->buf[len_at + 2] = (uint8_t)(plen >> 8);
	w->buf[len_at + 3] = (uint8_t)plen;
	w->records++;
	return 0;
}

int
cpm_decode_next(struct cpm_reader *dg, struct cpm_msg *m, char *why, size_t whylen)
{
	if (dg->off == dg->len) {
		if (dg->len == 0) {
			snprintf(why, whylen, "empty datagram");
			return -1;
		}
		return 0;
	}
	if (dg->len > CPM_MAX_DATAGRAM) {
		snprintf(why, whylen, "datagram of %zu bytes (limit %u)", dg->len, CPM_MAX_DATAGRAM);
		return -1;
	}
	uint16_t type = cpm_get_u16(dg);
	uint32_t plen = cpm_get_u32(dg);
	if (dg->err) {
		snprintf(why, whylen, "truncated record header at offset %zu", dg->off);
		return -1;
	}
	if (plen > dg->len - dg->off) {
		dg->err = true;
		snprintf(why, whylen, "%s record claims %u bytes, %zu left", cpm_type_name(type),
			 plen, dg->len - dg->off);
		return -1;
	}
	if (cpm_type_name(type)[0] == '?') {
		dg->err = true;
		snprintf(why, whylen, "unknown record type %u", type);
		return -1;
	}
	struct cpm_reader pr;
	cpm_reader_init(&pr, dg->p + dg->off, plen);
	dg->off += plen;
	memset(m, 0, sizeof(*m));
	m->type = (enum cpm_type)type;
	struct cpm_io io = {.r = &pr};
	walk(&io, m);
	if (io.bad || pr.err) {
		dg->err = true;
		snprintf(why, whylen, "%s: bad field (truncated, over a limit or out of range)",
			 cpm_type_name(type));
		return -1;
	}
	if (pr.off != pr.len) {
		dg->err = true;
		snprintf(why, whylen, "%s: %zu trailing bytes", cpm_type_name(type), pr.len - pr.off);
		return -1;
	}
	return 1;
}

int
cpm_hello_check(const struct cpm_msg *m, enum cpm_role expected_peer)
{
	if (m->type != CPM_HELLO)
		return CPM_E_NO_HELLO;
	if (m->u.hello.magic != CPM_MAGIC)
		return CPM_E_MAGIC;
	if (m->u.hello.version != CPM_VERSION)
		return CPM_E_VERSION;
	if (m->u.hello.role != expected_peer)
		return CPM_E_ROLE;
	return 0;
}
