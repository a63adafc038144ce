/*
 * ws_dns on libunbound. Every query, blocking or not, is an asynchronous
 * libunbound query (its resolver runs in a thread of its own) tracked in a
 * fixed table with our own deadline: libunbound's retry schedule can take far
 * longer than a mail check may wait, so an overdue query is cancelled with
 * ub_cancel and answered TEMPFAIL "timeout" by us.
 */
#include "dns.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <unbound.h>

#include "zonefile.h"

#define WS_DNS_DEFAULT_TIMEOUT_MS 5000  /* when the config says 0 */
#define WS_DNS_MAX_ZONE_FILE (64u << 20) /* bytes of an embedded zone file */
/* WS_DNS_MAX_CNAME_CHAIN: we follow CNAMEs ourselves because unbound's local
 * data answers a CNAME without chasing it; embedded mode would see NODATA. */

enum slot_state { SLOT_FREE, SLOT_ACTIVE, SLOT_ORPHAN };

struct slot {
	enum slot_state state;
	int ub_id;
	uint64_t deadline; /* CLOCK_MONOTONIC, ms */
	enum ws_dns_type type;
	unsigned chased;    /* CNAMEs followed so far */
	char qname[256];    /* the name asked at this step */
	ws_dns_cb cb;
	void *arg;
	struct ws_dns *d;
};

struct ws_dns {
	struct ub_ctx *ctx;
	bool embedded;      /* answers come from a loaded zone file only */
	unsigned timeout_ms;
	unsigned delivered; /* answers handed out since the last process call */
	size_t active;
	struct slot slots[WS_DNS_MAX_INFLIGHT];
};

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
ws_dns_answer_free(struct ws_dns_answer *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->count; i++) {
		struct ws_dns_rr *rr = &a->rrs[i];
		switch (rr->type) {
		case WS_DNS_MX:
			free(rr->u.mx.host);
			break;
		case WS_DNS_PTR:
		case WS_DNS_CNAME:
			free(rr->u.name);
			break;
		case WS_DNS_TXT:
			free(rr->u.txt.data);
			break;
		case WS_DNS_A:
		case WS_DNS_AAAA:
			break;
		}
	}
	free(a->rrs);
	free(a);
}

static struct ws_dns_answer *
answer_new(enum ws_dns_status st, int rcode, const char *why)
{
	struct ws_dns_answer *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->status = st;
	a->rcode = rcode;
	if (why)
		snprintf(a->why, sizeof(a->why), "%s", why);
	return a;
}

/* ---- wire rdata --------------------------------------------------------- */

/* An uncompressed wire name at d[*off..len) in presentation form: lowercase,
 * no trailing dot, "." for the root; bytes that are not letters, digits, '-'
 * or '_' are written as \DDD. Compression pointers are refused: libunbound
 * hands out decompressed rdata. */
static char *
wire_name(const uint8_t *d, size_t len, size_t *off)
{
	char out[4 * 255 + 2];
	size_t o = 0, p = *off, wire = 0;
	for (;;) {
		if (p >= len)
			return NULL;
		uint8_t l = d[p++];
		wire += 1u + l;
		if (l & 0xc0 || wire > 255)
			return NULL;
		if (l == 0)
			break;
		if (p + l > len)
			return NULL;
		if (o)
			out[o++] = '.';
		for (uint8_t i = 0; i < l; i++) {
			uint8_t c = d[p + i];
			if (c >= 'A' && c <= 'Z')
				c = (uint8_t)(c - 'A' + 'a');
			if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
				out[o++] = (char)c;
			} else {
				snprintf(out + o, 5, "\\%03u", c);
				o += 4;
			}
		}
		p += l;
	}
	*off = p;
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	return strdup(out);
}

/* One rdata of the type asked into rr; -1 when it is malformed. */
static int
parse_rdata(enum ws_dns_type type, const uint8_t *d, size_t len, struct ws_dns_rr *rr)
{
	size_t off = 0;
	rr->type = type;
	switch (type) {
	case WS_DNS_A:
		if (len != 4)
			return -1;
		memcpy(rr->u.a, d, 4);
		return 0;
	case WS_DNS_AAAA:
		if (len != 16)
			return -1;
		memcpy(rr->u.aaaa, d, 16);
		return 0;
	case WS_DNS_MX:
		if (len < 3)
			return -1;
		rr->u.mx.pref = (uint16_t)(d[0] << 8 | d[1]);
		off = 2;
		rr->u.mx.host = wire_name(d, len, &off);
		return rr->u.mx.host && off == len ? 0 : -1;
	case WS_DNS_PTR:
	case WS_DNS_CNAME:
		rr->u.name = wire_name(d, len, &off);
		return rr->u.name && off == len ? 0 : -1;
	case WS_DNS_TXT: {
		/* the character-strings are each prefixed by their length; an RR
		 * with no string at all is valid and gives an empty value */
		size_t total = 0;
		unsigned n = 0;
		for (off = 0; off < len; off += 1u + d[off]) {
			if (off + 1u + d[off] > len)
				return -1;
			total += d[off];
			n++;
		}
		rr->u.txt.data = malloc(total + 1);
		if (!rr->u.txt.data)
			return -1;
		size_t o = 0;
		for (off = 0; off < len; off += 1u + d[off]) {
			memcpy(rr->u.txt.data + o, d + off + 1, d[off]);
			o += d[off];
		}
		rr->u.txt.data[o] = '\0';
		rr->u.txt.len = total;
		rr->u.txt.nstrings = n;
		return 0;
	}
	}
	return -1;
}

/* Skips a (possibly compressed) name in a DNS message. */
static int
skip_name(const uint8_t *m, size_t len, size_t *off)
{
	for (unsigned labels = 0; labels < 128; labels++) {
		if (*off >= len)
			return -1;
		uint8_t l = m[*off];
		if ((l & 0xc0) == 0xc0) {
			*off += 2;
			return *off <= len ? 0 : -1;
		}
		if (l & 0xc0)
			return -1;
		*off += 1u + l;
		if (l == 0)
			return 0;
	}
	return -1;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* RFC 2308 section 5: a negative answer may be cached for the smaller of
 * the SOA record's TTL and its MINIMUM field, the SOA being in the
 * authority section of the reply. false when there is no SOA (unbound's own
 * static zone): such an answer should not be cached. */
static bool
negative_ttl(const uint8_t *m, size_t len, uint32_t *ttl)
{
	if (!m || len < 12)
		return false;
	unsigned qd = (unsigned)(m[4] << 8 | m[5]), an = (unsigned)(m[6] << 8 | m[7]),
		 ns = (unsigned)(m[8] << 8 | m[9]);
	size_t off = 12;
	for (unsigned i = 0; i < qd; i++) {
		if (skip_name(m, len, &off))
			return false;
		off += 4;
	}
	for (unsigned i = 0; i < an + ns; i++) {
		if (skip_name(m, len, &off) || off + 10 > len)
			return false;
		unsigned type = (unsigned)(m[off] << 8 | m[off + 1]);
		uint32_t rttl = get32(m + off + 4);
		size_t rdlen = (size_t)(m[off + 8] << 8 | m[off + 9]);
		off += 10;
		if (off + rdlen > len)
			return false;
		if (i >= an && type == 6) {
			size_t r = off;
			if (skip_name(m, off + rdlen, &r) || skip_name(m, off + rdlen, &r) ||
			    r + 20 != off + rdlen)
				return false;
			uint32_t min = get32(m + r + 16);
			*ttl = rttl < min ? rttl : min;
			return true;
		}
		off += rdlen;
	}
	return false;
}

static const char *
rcode_name(int rcode)
{
	switch (rcode) {
	case 1: return "FORMERR";
	case 2: return "SERVFAIL";
	case 4: return "NOTIMP";
	case 5: return "REFUSED";
	default: return NULL;
	}
}

/* Maps a libunbound outcome to the three RFC outcomes (data, none,
 * temporary failure) plus BOGUS. Takes ownership of res. */
static struct ws_dns_answer *
answer_from(enum ws_dns_type type, int err, struct ub_result *res)
{
	struct ws_dns_answer *a = NULL;
	if (err) {
		a = answer_new(WS_DNS_TEMPFAIL, -1, ub_strerror(err));
		goto out;
	}
	if (!res) {
		a = answer_new(WS_DNS_TEMPFAIL, -1, "no result");
		goto out;
	}
	if (res->bogus) {
		a = answer_new(WS_DNS_BOGUS, res->rcode, NULL);
		if (a)
			snprintf(a->why, sizeof(a->why), "bogus: %s",
				 res->why_bogus ? res->why_bogus : "validation failed");
		goto out;
	}
	if (res->havedata) {
		size_t n = 0;
		while (res->data[n])
			n++;
		a = answer_new(WS_DNS_OK, res->rcode, NULL);
		if (!a)
			goto out;
		a->rrs = calloc(n ? n : 1, sizeof(*a->rrs));
		if (!a->rrs)
			goto nomem;
		for (size_t i = 0; i < n; i++) {
			a->count = i + 1; /* so a partial rr is freed too */
			if (parse_rdata(type, (const uint8_t *)res->data[i], (size_t)res->len[i],
					&a->rrs[i])) {
				ws_dns_answer_free(a);
				a = answer_new(WS_DNS_TEMPFAIL, res->rcode, "malformed rdata");
				goto out;
			}
		}
	} else if (res->nxdomain) {
		a = answer_new(WS_DNS_NXDOMAIN, res->rcode, NULL);
	} else if (res->rcode == 0) {
		a = answer_new(WS_DNS_NODATA, res->rcode, NULL);
	} else {
		const char *rn = rcode_name(res->rcode);
		a = answer_new(WS_DNS_TEMPFAIL, res->rcode, rn);
		if (a && !rn)
			snprintf(a->why, sizeof(a->why), "rcode %d", res->rcode);
	}
	if (a) {
		a->ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
		if (a->status == WS_DNS_NXDOMAIN || a->status == WS_DNS_NODATA) {
			uint32_t neg = 0;
			negative_ttl(res->answer_packet, res->answer_len > 0 ? (size_t)res->answer_len : 0,
				     &neg);
			a->ttl = neg;
		}
		a->secure = res->secure != 0;
	}
	goto out;
nomem:
	ws_dns_answer_free(a);
	a = NULL;
out:
	ub_resolve_free(res);
	return a;
}

/* ---- query table -------------------------------------------------------- */

/* Hands a to the query's callback. The slot takes its next state (FREE, or
 * ORPHAN while libunbound may still answer) before the callback runs, since
 * the callback may ask again and take a free slot, this one included. */
static void
deliver(struct slot *s, struct ws_dns_answer *a, enum slot_state next)
{
	ws_dns_cb cb = s->cb;
	void *arg = s->arg;
	struct ws_dns *d = s->d;
	s->state = next;
	d->active--;
	d->delivered++;
	cb(arg, a);
}

static void
ub_done(void *mydata, int err, struct ub_result *res)
{
	struct slot *s = mydata;
	if (s->state == SLOT_ORPHAN) {
		/* timed out, but ub_cancel came too late: drop the late answer */
		ub_resolve_free(res);
		s->state = SLOT_FREE;
		return;
	}
	if (!err && res && !res->havedata && !res->nxdomain && !res->bogus && res->rcode == 0 &&
	    res->canonname && s->type != WS_DNS_CNAME) {
		size_t n = strlen(res->canonname);
		if (n && res->canonname[n - 1] == '.')
			n--;
		if (n && n < sizeof(s->qname) &&
		    !(strlen(s->qname) == n && strncasecmp(s->qname, res->canonname, n) == 0)) {
			memcpy(s->qname, res->canonname, n);
			s->qname[n] = '\0';
			ub_resolve_free(res);
			if (s->chased >= WS_DNS_MAX_CNAME_CHAIN) {
				deliver(s, answer_new(WS_DNS_TEMPFAIL, -1, "CNAME chain too long"),
					SLOT_FREE);
				return;
			}
			s->chased++;
			if (ub_resolve_async(s->d->ctx, s->qname, (int)s->type, 1, s, ub_done,
					     &s->ub_id) != 0)
				deliver(s, answer_new(WS_DNS_TEMPFAIL, -1, "cannot follow a CNAME"),
					SLOT_FREE);
			return;
		}
	}
	struct ws_dns_answer *a = answer_from(s->type, err, res);
	/* Embedded data never changes while the process runs, and a static
	 * local zone carries no SOA: give negative answers the positive
	 * ceiling, so caches above keep them instead of asking again. */
	if (a && s->d->embedded && a->ttl == 0 &&
	    (a->status == WS_DNS_NXDOMAIN || a->status == WS_DNS_NODATA))
		a->ttl = WS_DNS_EMBEDDED_NEG_TTL;
	deliver(s, a, SLOT_FREE);
}

static void
expire(struct ws_dns *d)
{
	if (!d->active)
		return;
	uint64_t now = now_ms();
	for (size_t i = 0; i < WS_DNS_MAX_INFLIGHT; i++) {
		struct slot *s = &d->slots[i];
		if (s->state != SLOT_ACTIVE || s->deadline > now)
			continue;
		/* ub_cancel fails when the answer is already on its way to us;
		 * the slot then stays taken until ub_process drops it */
		bool cancelled = ub_cancel(d->ctx, s->ub_id) == 0;
		deliver(s, answer_new(WS_DNS_TEMPFAIL, -1, "timeout"),
			cancelled ? SLOT_FREE : SLOT_ORPHAN);
	}
}

int
ws_dns_query_async(struct ws_dns *d, const char *name, enum ws_dns_type type, ws_dns_cb cb,
		   void *arg)
{
	if (!d || !name || !cb)
		return -1;
	size_t i;
	for (i = 0; i < WS_DNS_MAX_INFLIGHT; i++)
		if (d->slots[i].state == SLOT_FREE)
			break;
	if (i == WS_DNS_MAX_INFLIGHT)
		return -1;
	struct slot *s = &d->slots[i];
	size_t nlen = strlen(name);
	if (nlen >= sizeof(s->qname))
		return -1;
	*s = (struct slot){.state = SLOT_ACTIVE,
			   .deadline = now_ms() + d->timeout_ms,
			   .type = type,
			   .cb = cb,
			   .arg = arg,
			   .d = d};
	memcpy(s->qname, name, nlen + 1);
	if (ub_resolve_async(d->ctx, name, (int)type, 1, s, ub_done, &s->ub_id) != 0) {
		s->state = SLOT_FREE;
		return -1;
	}
	d->active++;
	return (int)i;
}

int
ws_dns_fd(const struct ws_dns *d)
{
	return d ? ub_fd(d->ctx) : -1;
}

int
ws_dns_process(struct ws_dns *d)
{
	if (!d)
		return -1;
	d->delivered = 0;
	int r = ub_process(d->ctx);
	expire(d);
	return r == 0 ? (int)d->delivered : -1;
}

int
ws_dns_next_timeout_ms(const struct ws_dns *d)
{
	if (!d || !d->active)
		return -1;
	uint64_t now = now_ms(), best = UINT64_MAX;
	for (size_t i = 0; i < WS_DNS_MAX_INFLIGHT; i++)
		if (d->slots[i].state == SLOT_ACTIVE && d->slots[i].deadline < best)
			best = d->slots[i].deadline;
	if (best == UINT64_MAX)
		return -1;
	return best <= now ? 0 : (int)(best - now);
}

int
ws_dns_poll(struct ws_dns *d, unsigned ms)
{
	if (!d)
		return -1;
	uint64_t end = now_ms() + ms;
	for (;;) {
		uint64_t now = now_ms();
		int wait = now >= end ? 0 : (int)(end - now);
		int next = ws_dns_next_timeout_ms(d);
		if (next >= 0 && next < wait)
			wait = next;
		struct pollfd pfd = {.fd = ub_fd(d->ctx), .events = POLLIN};
		if (poll(&pfd, 1, wait) < 0 && errno != EINTR)
			return -1;
		int n = ws_dns_process(d);
		if (n != 0 || now_ms() >= end)
			return n;
	}
}

struct sync_wait {
	struct ws_dns_answer *a;
	bool done;
};

static void
sync_cb(void *arg, struct ws_dns_answer *a)
{
	struct sync_wait *w = arg;
	w->a = a;
	w->done = true;
}

struct ws_dns_answer *
ws_dns_query(struct ws_dns *d, const char *name, enum ws_dns_type type)
{
	struct sync_wait w = {0};
	if (!d || !name)
		return answer_new(WS_DNS_TEMPFAIL, -1, "no resolver or no name");
	int id = ws_dns_query_async(d, name, type, sync_cb, &w);
	if (id < 0)
		return answer_new(WS_DNS_TEMPFAIL, -1, "cannot start the query");
	/* our own deadline bounds this loop: the query is answered or expired */
	while (!w.done)
		if (ws_dns_poll(d, d->timeout_ms) < 0 && !w.done)
			break;
	if (!w.done) {
		/* w lives on this stack: the slot must never call back into it */
		struct slot *s = &d->slots[id];
		if (ub_cancel(d->ctx, s->ub_id) == 0) {
			s->state = SLOT_FREE;
		} else {
			s->state = SLOT_ORPHAN;
		}
		d->active--;
		return answer_new(WS_DNS_TEMPFAIL, -1, "resolver error");
	}
	return w.a;
}

/* ---- setup -------------------------------------------------------------- */

static int
why(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
why(char *buf, size_t len, const char *fmt, ...)
{
	if (buf && len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(buf, len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
read_file(const char *path, uint8_t **out, size_t *len, char *why_buf, size_t why_len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return why(why_buf, why_len, "zone file %s: %s", path, strerror(errno));
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n == cap) {
			if (cap >= WS_DNS_MAX_ZONE_FILE) {
				why(why_buf, why_len, "zone file %s: larger than %u bytes", path,
				    WS_DNS_MAX_ZONE_FILE);
				goto fail;
			}
			cap = cap ? cap * 2 : 65536;
			uint8_t *nb = realloc(buf, cap);
			if (!nb) {
				why(why_buf, why_len, "zone file %s: out of memory", path);
				goto fail;
			}
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		if (r == 0)
			break;
		n += r;
	}
	if (ferror(f)) {
		why(why_buf, why_len, "zone file %s: read error", path);
		goto fail;
	}
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
fail:
	free(buf);
	fclose(f);
	return -1;
}

/* Embedded mode: the root is a static local zone, so a name that the file
 * does not hold is NXDOMAIN and nothing is ever sent to the network. */
static int
load_zone(struct ub_ctx *ctx, const char *path, char *why_buf, size_t why_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	struct zonefile *z = NULL;
	char *line = NULL;
	size_t cap = 0;
	int rc = -1;
	if (read_file(path, &buf, &len, why_buf, why_len))
		return -1;
	struct zonefile_error zerr;
	if (zonefile_parse(buf, len, ".", &z, &zerr)) {
		why(why_buf, why_len, "zone file %s line %u: %s", path, zerr.line, zerr.reason);
		goto fail;
	}
	int r = ub_ctx_zone_add(ctx, ".", "static");
	if (r) {
		why(why_buf, why_len, "local-zone . static: %s", ub_strerror(r));
		goto fail;
	}
	for (size_t i = 0; i < z->count; i++) {
		size_t need = zonefile_rr_format(&z->rrs[i], line, cap);
		if (need >= cap) {
			free(line);
			cap = need + 1;
			if (!(line = malloc(cap))) {
				why(why_buf, why_len, "out of memory");
				goto fail;
			}
			zonefile_rr_format(&z->rrs[i], line, cap);
		}
		r = ub_ctx_data_add(ctx, line);
		if (r) {
			why(why_buf, why_len, "zone file %s line %u: unbound refused the record: %s",
			    path, z->rrs[i].line, ub_strerror(r));
			goto fail;
		}
	}
	rc = 0;
fail:
	free(line);
	zonefile_free(z);
	free(buf);
	return rc;
}

struct ws_dns *
ws_dns_new(const struct ws_dns_config *cfg, char *why_buf, size_t why_len)
{
	if (why_buf && why_len)
		why_buf[0] = '\0';
	if (!cfg) {
		why(why_buf, why_len, "no configuration");
		return NULL;
	}
	if (cfg->zone_file && cfg->forwarders && cfg->forwarders[0]) {
		why(why_buf, why_len, "zone_file and forwarders exclude each other");
		return NULL;
	}
	struct ws_dns *d = calloc(1, sizeof(*d));
	if (!d) {
		why(why_buf, why_len, "out of memory");
		return NULL;
	}
	d->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : WS_DNS_DEFAULT_TIMEOUT_MS;
	d->ctx = ub_ctx_create();
	if (!d->ctx) {
		why(why_buf, why_len, "ub_ctx_create failed");
		goto fail;
	}
	int r;
	/* a resolver thread rather than the default forked process */
	if ((r = ub_ctx_async(d->ctx, 1))) {
		why(why_buf, why_len, "ub_ctx_async: %s", ub_strerror(r));
		goto fail;
	}
	if (cfg->config_file && (r = ub_ctx_config(d->ctx, cfg->config_file))) {
		why(why_buf, why_len, "config file %s: %s", cfg->config_file, ub_strerror(r));
		goto fail;
	}
	/* forwarders and test servers on 127.0.0.1 must be reachable */
	if ((r = ub_ctx_set_option(d->ctx, "do-not-query-localhost:", "no"))) {
		why(why_buf, why_len, "do-not-query-localhost: %s", ub_strerror(r));
		goto fail;
	}
	if (cfg->zone_file) {
		d->embedded = true;
		if (load_zone(d->ctx, cfg->zone_file, why_buf, why_len))
			goto fail;
	} else if (cfg->forwarders && cfg->forwarders[0]) {
		for (const char *const *f = cfg->forwarders; *f; f++) {
			if ((r = ub_ctx_set_fwd(d->ctx, *f))) {
				why(why_buf, why_len, "forwarder '%s': %s", *f, ub_strerror(r));
				goto fail;
			}
		}
	} else if (!cfg->config_file) {
		if ((r = ub_ctx_resolvconf(d->ctx, NULL))) {
			why(why_buf, why_len, "/etc/resolv.conf: %s", ub_strerror(r));
			goto fail;
		}
		if ((r = ub_ctx_hosts(d->ctx, NULL))) {
			why(why_buf, why_len, "/etc/hosts: %s", ub_strerror(r));
			goto fail;
		}
	}
	if (cfg->trust_anchor_file) {
		/* libunbound reads it only when the first query starts the
		 * resolver; a missing file is reported here, at creation */
		FILE *ta = fopen(cfg->trust_anchor_file, "r");
		if (!ta) {
			why(why_buf, why_len, "trust anchor %s: %s", cfg->trust_anchor_file,
			    strerror(errno));
			goto fail;
		}
		fclose(ta);
	}
	if (cfg->trust_anchor_file && (r = ub_ctx_add_ta_file(d->ctx, cfg->trust_anchor_file))) {
		why(why_buf, why_len, "trust anchor %s: %s", cfg->trust_anchor_file, ub_strerror(r));
		goto fail;
	}
	return d;
fail:
	ws_dns_free(d);
	return NULL;
}

void
ws_dns_free(struct ws_dns *d)
{
	if (!d)
		return;
	if (d->ctx) {
		/* in-flight queries are cancelled without a callback */
		for (size_t i = 0; i < WS_DNS_MAX_INFLIGHT; i++)
			if (d->slots[i].state == SLOT_ACTIVE)
				ub_cancel(d->ctx, d->slots[i].ub_id);
		ub_ctx_delete(d->ctx);
	}
	free(d);
}
