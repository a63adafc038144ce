/*
 * tlsobs: TLS records -> handshake messages -> hello/certificate facts.
 * The contract and limits are in tlsobs.h.
 */
#include "sts.h"
#include "tlsobs.h"

#include <stdlib.h>
#include <string.h>

enum {
	REC_CCS = 20,
	REC_ALERT = 21,
	REC_HANDSHAKE = 22,
	REC_APPDATA = 23,
	REC_HEARTBEAT = 24,
};

enum {
	HS_CLIENT_HELLO = 1,
	HS_SERVER_HELLO = 2,
	HS_CERTIFICATE = 11,
	HS_SERVER_KEY_EXCHANGE = 12,
	HS_SERVER_HELLO_DONE = 14,
};

enum {
	EXT_SERVER_NAME = 0,
	EXT_SESSION_TICKET = 35,
	EXT_PRE_SHARED_KEY = 41,
	EXT_SUPPORTED_VERSIONS = 43,
};

/* RFC 8446 4.1.3: ServerHello.random of a HelloRetryRequest */
static const uint8_t hrr_random[32] = {
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

void
tlsobs_init(struct tlsobs *t, uint64_t off_c2s, uint64_t off_s2c)
{
	memset(t, 0, sizeof(*t));
	t->rd[0].pos = off_c2s;
	t->rd[1].pos = off_s2c;
}

void
tlsobs_base(struct tlsobs *t, enum tlsobs_dir d, uint64_t off)
{
	t->rd[d == TLSOBS_S2C].pos = off;
}

void
tlsobs_free(struct tlsobs *t)
{
	if (!t)
		return;
	free(t->rd[0].buf);
	free(t->rd[1].buf);
	free(t->chain);
	t->rd[0].buf = t->rd[1].buf = t->chain = NULL;
	t->rd[0].cap = t->rd[1].cap = 0;
}

const struct tlsobs_facts *
tlsobs_facts(const struct tlsobs *t)
{
	return &t->f;
}

const uint8_t *
tlsobs_chain(const struct tlsobs *t)
{
	return t->chain;
}

bool
tlsobs_established(const struct tlsobs *t)
{
	const struct tlsobs_facts *f = &t->f;
	if (!f->server_hello)
		return false;
	if (f->version >= TLSOBS_VERSION_TLS13)
		return f->dir[0].appdata_records >= 2 && f->dir[1].appdata_records > 0 &&
		       !f->dir[0].alert.seen && !f->dir[1].alert.seen;
	/* an encrypted alert after both CCS is normally close_notify: only a
	 * cleartext one says the handshake failed */
	return f->dir[0].ccs_records > 0 && f->dir[1].ccs_records > 0 &&
	       !(f->dir[0].alert.seen && !f->dir[0].alert.encrypted) &&
	       !(f->dir[1].alert.seen && !f->dir[1].alert.encrypted);
}

const char *
tlsobs_version_name(uint16_t v)
{
	const char *n = sts_tls_version_name(v);
	return n ? n : "unknown";
}

bool
tlsobs_weak_cipher(uint16_t s)
{
	/* NULL, EXPORT, RC4, DES and anonymous suites of the IANA registry's
	 * low range (RFC 5246 A.5, RFC 4346, RFC 2246) */
	if (s <= 0x001b)
		return true; /* 0x0000-0x001b: NULL, EXPORT, RC4, DES, DH_anon */
	switch (s) {
	case 0x002c: case 0x002d: case 0x002e: /* PSK/DHE_PSK/RSA_PSK with NULL */
	case 0x0034: case 0x003a: case 0x0046: case 0x006c: case 0x006d: /* DH_anon */
	case 0x0089: case 0x009b: case 0x00a6: case 0x00a7: case 0x00bf: case 0x00c5: /* DH_anon */
	case 0xc046: case 0xc047: case 0xc05a: case 0xc05b: case 0xc084: case 0xc085: /* DH_anon */
	case 0x003b: /* RSA_WITH_NULL_SHA256 */
	case 0xc001: case 0xc002: case 0xc006: case 0xc007: case 0xc00b: case 0xc00c:
	case 0xc010: case 0xc011: case 0xc015: case 0xc016: case 0xc017: case 0xc018:
	case 0xc019: /* ECDH(E)/ECDH_anon NULL and RC4 and anon */
		return true;
	default:
		return false;
	}
}

/* ---- a bounds-checked reader over a kept body ------------------------ */

struct rdr {
	const uint8_t *p;
	size_t n, i;
	bool bad;
};

static uint32_t
get(struct rdr *r, unsigned bytes)
{
	if (r->bad || r->n - r->i < bytes) {
		r->bad = true;
		return 0;
	}
	uint32_t v = 0;
	for (unsigned k = 0; k < bytes; k++)
		v = v << 8 | r->p[r->i++];
	return v;
}

static const uint8_t *
take(struct rdr *r, size_t len)
{
	if (r->bad || r->n - r->i < len) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p + r->i;
	r->i += len;
	return p;
}

static bool
grease(uint16_t v)
{
	/* RFC 8701: 0x0a0a, 0x1a1a, ... 0xfafa */
	return (v & 0x0f0f) == 0x0a0a && (v >> 12) == ((v >> 4) & 0xf);
}

static void
parse_sni(struct tlsobs *t, const uint8_t *p, size_t n)
{
	struct rdr r = {.p = p, .n = n};
	uint32_t list = get(&r, 2);
	if (r.bad || list != n - 2) {
		t->f.malformed++;
		return;
	}
	while (r.i < r.n && !r.bad) {
		uint32_t type = get(&r, 1);
		uint32_t len = get(&r, 2);
		const uint8_t *name = take(&r, len);
		if (r.bad)
			break;
		if (type != 0 || t->f.sni_present)
			continue;
		t->f.sni_present = true;
		size_t k = len;
		if (k > TLSOBS_MAX_SNI) {
			k = TLSOBS_MAX_SNI;
			t->f.sni_over++;
		}
		for (size_t i = 0; i < k; i++)
			t->f.sni[i] = name[i] > 0x20 && name[i] < 0x7f ? (char)name[i] : '?';
		t->f.sni[k] = '\0';
	}
	if (r.bad)
		t->f.malformed++;
}

static void
parse_client_hello(struct tlsobs *t, const uint8_t *p, size_t n)
{
	struct tlsobs_facts *f = &t->f;
	struct rdr r = {.p = p, .n = n};
	uint16_t legacy = (uint16_t)get(&r, 2);
	take(&r, 32);
	uint32_t sid_len = get(&r, 1);
	const uint8_t *sid = take(&r, sid_len);
	take(&r, get(&r, 2)); /* cipher suites */
	take(&r, get(&r, 1)); /* compression */
	if (r.bad || sid_len > 32) {
		f->malformed++;
		return;
	}
	if (f->client_hello && f->hello_retry) {
		/* the second ClientHello after a HelloRetryRequest: same facts */
	} else if (f->client_hello) {
		return; /* renegotiation in the clear is not followed */
	}
	f->client_hello = true;
	f->ch_legacy_version = legacy;
	f->version_offered_max = legacy;
	f->ch_session_id = sid_len > 0;
	memcpy(t->ch_sid, sid, sid_len);
	t->ch_sid_len = (uint8_t)sid_len;
	if (r.i == r.n)
		return; /* no extensions */
	uint32_t ext_len = get(&r, 2);
	if (r.bad || ext_len != r.n - r.i) {
		f->malformed++;
		return;
	}
	while (r.i < r.n && !r.bad) {
		uint16_t type = (uint16_t)get(&r, 2);
		uint32_t len = get(&r, 2);
		const uint8_t *e = take(&r, len);
		if (r.bad)
			break;
		switch (type) {
		case EXT_SERVER_NAME:
			parse_sni(t, e, len);
			break;
		case EXT_SESSION_TICKET:
			f->ch_ticket = len > 0;
			break;
		case EXT_PRE_SHARED_KEY:
			f->ch_psk = true;
			break;
		case EXT_SUPPORTED_VERSIONS: {
			if (len < 1 || e[0] != len - 1 || (e[0] & 1)) {
				f->malformed++;
				break;
			}
			for (size_t i = 1; i + 1 < len; i += 2) {
				uint16_t v = (uint16_t)(e[i] << 8 | e[i + 1]);
				if (!grease(v) && v > f->version_offered_max && (v >> 8) == 3)
					f->version_offered_max = v;
			}
			break;
		}
		default:
			break;
		}
	}
	if (r.bad)
		f->malformed++;
}

static void
parse_server_hello(struct tlsobs *t, const uint8_t *p, size_t n)
{
	struct tlsobs_facts *f = &t->f;
	struct rdr r = {.p = p, .n = n};
	uint16_t legacy = (uint16_t)get(&r, 2);
	const uint8_t *random = take(&r, 32);
	uint32_t sid_len = get(&r, 1);
	const uint8_t *sid = take(&r, sid_len);
	uint16_t cipher = (uint16_t)get(&r, 2);
	get(&r, 1); /* compression */
	if (r.bad || sid_len > 32) {
		f->malformed++;
		return;
	}
	if (f->server_hello)
		return;
	bool hrr = memcmp(random, hrr_random, 32) == 0;
	uint16_t version = legacy;
	bool psk = false;
	if (r.i < r.n) {
		uint32_t ext_len = get(&r, 2);
		if (r.bad || ext_len != r.n - r.i) {
			f->malformed++;
			return;
		}
		while (r.i < r.n && !r.bad) {
			uint16_t type = (uint16_t)get(&r, 2);
			uint32_t len = get(&r, 2);
			const uint8_t *e = take(&r, len);
			if (r.bad)
				break;
			if (type == EXT_SUPPORTED_VERSIONS && len == 2)
				version = (uint16_t)(e[0] << 8 | e[1]);
			else if (type == EXT_PRE_SHARED_KEY)
				psk = true;
		}
		if (r.bad) {
			f->malformed++;
			return;
		}
	}
	if (hrr) {
		/* not the real ServerHello: the client sends a new ClientHello */
		f->hello_retry = true;
		return;
	}
	f->server_hello = true;
	f->version = version;
	f->cipher = cipher;
	if (memcmp(random + 24, "DOWNGRD\x01", 8) == 0)
		f->downgrade_sentinel = 1;
	else if (memcmp(random + 24, "DOWNGRD\x00", 8) == 0)
		f->downgrade_sentinel = 2;
	if (version >= TLSOBS_VERSION_TLS13) {
		f->resumed = psk;
		/* everything after the ServerHello is encrypted, both ways */
		f->dir[TLSOBS_S2C].encrypted = true;
		f->dir[TLSOBS_C2S].encrypted = true;
	} else {
		f->resumed = sid_len > 0 && sid_len == t->ch_sid_len && memcmp(sid, t->ch_sid, sid_len) == 0;
		t->sh_cert_pending = !f->resumed;
	}
}

static void
parse_certificate(struct tlsobs *t, const uint8_t *p, size_t n)
{
	struct tlsobs_facts *f = &t->f;
	struct rdr r = {.p = p, .n = n};
	uint32_t total = get(&r, 3);
	if (r.bad || total != n - 3) {
		f->malformed++;
		return;
	}
	unsigned nc = 0;
	struct tlsobs_span sp[TLSOBS_MAX_CERTS];
	while (r.i < r.n) {
		uint32_t len = get(&r, 3);
		uint32_t off = (uint32_t)r.i;
		if (!take(&r, len) || len == 0) {
			f->malformed++;
			return;
		}
		if (nc == TLSOBS_MAX_CERTS) {
			f->certs_over++;
			break;
		}
		sp[nc].off = off;
		sp[nc].len = len;
		nc++;
	}
	if (nc == 0)
		return; /* an empty chain: nothing to assess */
	f->cert_seen = true;
	f->ncerts = nc;
	memcpy(f->cert, sp, nc * sizeof(sp[0]));
}

/* ---- handshake messages ---------------------------------------------- */

static uint32_t
hs_limit(uint8_t type)
{
	switch (type) {
	case HS_CLIENT_HELLO:
	case HS_SERVER_HELLO:
		return TLSOBS_MAX_HELLO;
	case HS_CERTIFICATE:
		return TLSOBS_MAX_CHAIN;
	default:
		return 0;
	}
}

static void
hs_done(struct tlsobs *t, int d, struct tlsobs_rd *rd)
{
	struct tlsobs_hs *h = &rd->hs;
	if (!h->keep)
		return;
	const uint8_t *body = rd->buf;
	switch (h->type) {
	case HS_CLIENT_HELLO:
		if (d == TLSOBS_C2S) {
			t->f.ch_offset = h->start;
			parse_client_hello(t, body, h->len);
		}
		break;
	case HS_SERVER_HELLO:
		if (d == TLSOBS_S2C) {
			t->f.sh_offset = h->start;
			parse_server_hello(t, body, h->len);
		}
		break;
	case HS_CERTIFICATE:
		if (d == TLSOBS_S2C && t->f.server_hello && !t->f.cert_seen &&
		    t->f.version < TLSOBS_VERSION_TLS13) {
			/* the chain's bytes move to their own buffer */
			free(t->chain);
			t->chain = rd->buf;
			t->chain_len = h->len;
			rd->buf = NULL;
			rd->cap = 0;
			t->f.cert_offset = h->start;
			t->sh_cert_pending = false;
			parse_certificate(t, t->chain, h->len);
		}
		break;
	default:
		break;
	}
}

/* Handshake bytes of one record fragment. */
static void
hs_bytes(struct tlsobs *t, int d, const uint8_t *p, size_t n, uint64_t pos)
{
	struct tlsobs_rd *rd = &t->rd[d];
	struct tlsobs_hs *h = &rd->hs;
	/* a TLS 1.3 ServerHello encrypts what follows it in its own record too */
	while (n > 0 && !t->f.dir[d].encrypted) {
		if (h->hdr_have < 4) {
			if (h->hdr_have == 0)
				h->start = pos;
			h->hdr[h->hdr_have++] = *p++;
			n--;
			pos++;
			if (h->hdr_have < 4)
				continue;
			h->type = h->hdr[0];
			h->len = (uint32_t)h->hdr[1] << 16 | (uint32_t)h->hdr[2] << 8 | h->hdr[3];
			/* <= 1.2: ServerKeyExchange, CertificateRequest or ServerHelloDone
			 * mean a full handshake; without a Certificate before them the
			 * suite is anonymous (no certificate will come) */
			if (d == TLSOBS_S2C && t->f.server_hello && t->sh_cert_pending &&
			    h->type >= HS_SERVER_KEY_EXCHANGE && h->type <= HS_SERVER_HELLO_DONE) {
				t->sh_cert_pending = false;
				t->f.anonymous = true;
			}
			h->have = 0;
			uint32_t lim = hs_limit(h->type);
			h->keep = false;
			if (lim > 0 && h->len > lim) {
				if (h->type == HS_CERTIFICATE)
					t->f.chain_over++;
				else
					t->f.hello_over++;
			} else if (lim > 0) {
				if (h->len > rd->cap) {
					uint8_t *nb = realloc(rd->buf, h->len ? h->len : 1);
					if (nb) {
						rd->buf = nb;
						rd->cap = h->len;
						h->keep = true;
					}
				} else {
					h->keep = true;
				}
			}
			if (h->len == 0) {
				hs_done(t, d, rd);
				h->hdr_have = 0;
			}
			continue;
		}
		size_t k = h->len - h->have;
		if (k > n)
			k = n;
		if (h->keep)
			memcpy(rd->buf + h->have, p, k);
		h->have += (uint32_t)k;
		p += k;
		n -= k;
		pos += k;
		if (h->have == h->len) {
			hs_done(t, d, rd);
			h->hdr_have = 0;
		}
	}
}

/* ---- records --------------------------------------------------------- */

static bool
plausible_header(const uint8_t *h)
{
	/* version major 3 (SSLv3 .. TLS 1.3 record layer) */
	return h[0] >= REC_CCS && h[0] <= REC_HEARTBEAT && h[1] == 3 && h[2] <= 4;
}

static void
dir_stop(struct tlsobs *t, int d, const char *why, uint64_t off)
{
	struct tlsobs_dirfacts *df = &t->f.dir[d];
	if (df->error)
		return;
	df->error = true;
	df->error_reason = why;
	df->error_offset = off;
}

/* A complete record header in rd->hdr. */
static void
record_begin(struct tlsobs *t, int d, struct tlsobs_rd *rd, uint64_t off)
{
	struct tlsobs_dirfacts *df = &t->f.dir[d];
	uint16_t len = (uint16_t)(rd->hdr[3] << 8 | rd->hdr[4]);
	if (!plausible_header(rd->hdr)) {
		dir_stop(t, d, "bad-record-header", off);
		return;
	}
	if (len > TLSOBS_MAX_RECORD) {
		t->f.record_over++;
		dir_stop(t, d, "record-too-long", off);
		return;
	}
	if (!df->started) {
		df->started = true;
		df->first_record_offset = off;
	}
	rd->type = rd->hdr[0];
	rd->left = len;
	df->records++;
	switch (rd->type) {
	case REC_HANDSHAKE:
		df->handshake_records++;
		break;
	case REC_APPDATA:
		if (df->appdata_records++ == 0)
			df->first_appdata_offset = off;
		break;
	case REC_CCS:
		df->ccs_records++;
		if (t->f.version < TLSOBS_VERSION_TLS13) {
			df->encrypted = true;
			/* <= 1.2: the server changed cipher with no Certificate
			 * after a full ServerHello: an abbreviated handshake */
			if (d == TLSOBS_S2C && t->sh_cert_pending && t->f.server_hello) {
				t->f.resumed = true;
				t->sh_cert_pending = false;
			}
		}
		break;
	case REC_ALERT:
		df->alert_records++;
		rd->alert_have = 0;
		rd->alert_off = off;
		/* TLS 1.3 sends encrypted alerts as application_data records: an
		 * alert record there is always in the clear (RFC 8446 5.1) */
		if (df->encrypted && t->f.version < TLSOBS_VERSION_TLS13 && !df->alert.seen) {
			df->alert.seen = true;
			df->alert.encrypted = true;
			df->alert.offset = off;
		}
		break;
	default:
		break;
	}
}

static void
record_bytes(struct tlsobs *t, int d, struct tlsobs_rd *rd, const uint8_t *p, size_t n,
	     uint64_t pos)
{
	struct tlsobs_dirfacts *df = &t->f.dir[d];
	if (df->encrypted && !(rd->type == REC_ALERT && t->f.version >= TLSOBS_VERSION_TLS13))
		return;
	if (rd->type == REC_HANDSHAKE) {
		hs_bytes(t, d, p, n, pos);
	} else if (rd->type == REC_ALERT) {
		for (size_t i = 0; i < n && rd->alert_have < 2; i++)
			rd->alert[rd->alert_have++] = p[i];
		if (rd->alert_have == 2 && !df->alert.seen) {
			df->alert.seen = true;
			df->alert.level = rd->alert[0];
			df->alert.desc = rd->alert[1];
			df->alert.offset = rd->alert_off;
		}
	}
}

/* Before the first record: bytes that cannot begin a handshake (or alert)
 * record header are junk. hdr keeps the candidate prefix (at most 3 bytes),
 * so a header split across spans is still found. */
static bool
prefix_ok(const uint8_t *h, unsigned n)
{
	return n == 0 || ((h[0] == REC_HANDSHAKE || h[0] == REC_ALERT) && (n < 2 || h[1] == 3) &&
			  (n < 3 || h[2] <= 4));
}

static size_t
skip_junk(struct tlsobs *t, int d, struct tlsobs_rd *rd, const uint8_t *p, size_t n)
{
	struct tlsobs_dirfacts *df = &t->f.dir[d];
	size_t i = 0;
	while (i < n) {
		rd->hdr[rd->hdr_have++] = p[i++];
		while (!prefix_ok(rd->hdr, rd->hdr_have)) {
			uint64_t at = rd->pos + i - rd->hdr_have; /* offset of hdr[0] */
			if (df->junk_bytes == 0)
				df->junk_offset = at;
			df->junk_bytes++;
			rd->hdr_have--;
			memmove(rd->hdr, rd->hdr + 1, rd->hdr_have);
			if (df->junk_bytes > TLSOBS_MAX_JUNK) {
				t->f.junk_over++;
				dir_stop(t, d, "no-tls-record", at);
				return n;
			}
		}
		if (rd->hdr_have == 3)
			return i; /* the rest of the header is read as usual */
	}
	return n;
}

void
tlsobs_feed(struct tlsobs *t, enum tlsobs_dir dir, const uint8_t *p, size_t n)
{
	int d = dir == TLSOBS_S2C;
	struct tlsobs_rd *rd = &t->rd[d];
	struct tlsobs_dirfacts *df = &t->f.dir[d];
	while (n > 0 && !df->error) {
		if (!df->started && rd->hdr_have < 3) {
			size_t used = skip_junk(t, d, rd, p, n);
			rd->pos += used;
			p += used;
			n -= used;
			continue;
		}
		if (rd->hdr_have < 5) {
			rd->hdr[rd->hdr_have++] = *p++;
			n--;
			rd->pos++;
			if (rd->hdr_have == 5)
				record_begin(t, d, rd, rd->pos - 5);
			continue;
		}
		size_t k = rd->left < n ? rd->left : n;
		record_bytes(t, d, rd, p, k, rd->pos);
		rd->left = (uint16_t)(rd->left - k);
		rd->pos += k;
		p += k;
		n -= k;
		if (rd->left == 0)
			rd->hdr_have = 0;
	}
	rd->pos += n; /* a stopped direction still counts its offsets */
}

void
tlsobs_gap(struct tlsobs *t, enum tlsobs_dir dir, uint64_t n)
{
	int d = dir == TLSOBS_S2C;
	struct tlsobs_rd *rd = &t->rd[d];
	if (n == 0)
		return;
	t->f.dir[d].gap_bytes += n;
	dir_stop(t, d, "capture-gap", rd->pos);
	rd->pos += n;
}
