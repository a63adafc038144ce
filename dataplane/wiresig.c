/*
 * wiresig: hyperscan line patterns + STARTTLS state logic. The contract and
 * the list of names are in wiresig.h.
 */
#include "wiresig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hs/hs.h>

static const char *const names[] = {
#define WIRESIG_X_NAME(e, s) [e] = s,
	WIRESIG_NAMES(WIRESIG_X_NAME)
#undef WIRESIG_X_NAME
};

const char *
wiresig_name(enum wiresig_name n)
{
	return (unsigned)n < WIRESIG_COUNT ? names[n] : "unknown";
}

/* ---- the pattern database -------------------------------------------- */

/* Lines are given without their line end. [id, direction, expression] */
enum pat_id {
	PAT_CAP_MASKED = 1,  /* an EHLO keyword made of X with at most one final letter */
	PAT_CMD_MASKED,      /* the same shape as a command verb */
	PAT_BANNER_MASKED,   /* a greeting with everything but 2 and 0 starred */
	PAT_MAILGUARD_502,   /* Cisco PIX MailGuard's refusal */
	PAT_NOT_RECOGNIZED,  /* "command not recognized" in a 500/502 */
};

static const struct {
	unsigned id;
	enum smtpp_dir dir;
	const char *expr;
	unsigned flags;
} patterns[] = {
	{PAT_CAP_MASKED, SMTPP_S2C, "^250[ -]X{6,}[A-Z]?[ \\t]*$", 0},
	{PAT_CMD_MASKED, SMTPP_C2S, "^X{6,}[A-Z]?[ \\t]*$", 0},
	{PAT_BANNER_MASKED, SMTPP_S2C, "^220[ -][20* ]*\\*\\*\\*[20* ]*$", 0},
	{PAT_MAILGUARD_502, SMTPP_S2C, "^502 5\\.5\\.2 Error: command not recognized", 0},
	{PAT_NOT_RECOGNIZED, SMTPP_S2C, "^50[02][ -].*(not recogni[sz]ed|unrecogni[sz]ed)",
	 HS_FLAG_CASELESS},
};
#define NPAT (sizeof(patterns) / sizeof(patterns[0]))

static hs_database_t *db[2]; /* per direction; read-only once compiled */
static pthread_once_t db_once = PTHREAD_ONCE_INIT;
static char db_why[256];
static int db_rc = -1;
static _Thread_local hs_scratch_t *scratch; /* per thread: hyperscan's rule */

static void
compile_db(void)
{
	for (int d = 0; d < 2; d++) {
		const char *ex[NPAT];
		unsigned ids[NPAT], fl[NPAT], n = 0;
		for (size_t i = 0; i < NPAT; i++) {
			if ((int)patterns[i].dir != d)
				continue;
			ex[n] = patterns[i].expr;
			ids[n] = patterns[i].id;
			fl[n] = patterns[i].flags | HS_FLAG_SINGLEMATCH;
			n++;
		}
		hs_compile_error_t *err = NULL;
		if (hs_compile_multi(ex, fl, ids, n, HS_MODE_BLOCK, NULL, &db[d], &err) != HS_SUCCESS) {
			snprintf(db_why, sizeof(db_why), "hyperscan: %s",
				 err && err->message ? err->message : "compile failed");
			hs_free_compile_error(err);
			return;
		}
	}
	db_rc = 0;
}

int
wiresig_init_db(char *why, size_t why_len)
{
	pthread_once(&db_once, compile_db);
	if (db_rc != 0 && why)
		snprintf(why, why_len, "%s", db_why);
	return db_rc;
}

struct scan_ctx {
	uint32_t hits; /* bit per pattern id */
};

static int
on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *arg)
{
	(void)from;
	(void)to;
	(void)flags;
	struct scan_ctx *c = arg;
	c->hits |= 1u << id;
	return 0;
}

static uint32_t
scan(enum smtpp_dir dir, const uint8_t *p, size_t len)
{
	if (wiresig_init_db(NULL, 0) != 0)
		return 0;
	if (!scratch) {
		/* one scratch for both databases: allocated for the first, grown for the second */
		if (hs_alloc_scratch(db[0], &scratch) != HS_SUCCESS ||
		    hs_alloc_scratch(db[1], &scratch) != HS_SUCCESS)
			return 0;
	}
	struct scan_ctx c = {0};
	if (len > 0xffffffffu)
		return 0;
	hs_scan(db[dir == SMTPP_S2C], (const char *)p, (unsigned)len, 0, scratch, on_match, &c);
	return c.hits;
}

/* ---- anomalies ---------------------------------------------------------- */

void
wiresig_init(struct wiresig *w)
{
	memset(w, 0, sizeof(*w));
}

void
wiresig_free(struct wiresig *w)
{
	free(w->an);
	w->an = NULL;
	w->n = 0;
	w->seen = 0;
}

void
wiresig_raise(struct wiresig *w, enum wiresig_name n, enum dp_dir dir, uint64_t off)
{
	if ((unsigned)n >= WIRESIG_COUNT || (w->seen & (1u << n)))
		return;
	if (!w->an) {
		w->an = calloc(WIRESIG_COUNT, sizeof(*w->an));
		if (!w->an) {
			w->alloc_failed = true;
			return;
		}
	}
	w->seen |= 1u << n;
	w->an[w->n++] = (struct dp_anomaly){.name = names[n], .dir = dir, .offset = off};
}

void
wiresig_line(struct wiresig *w, enum smtpp_dir dir, enum smtpp_verb verb, const uint8_t *p,
	     size_t len, uint64_t off)
{
	uint32_t hits = scan(dir, p, len);
	if (!hits)
		return;
	if (dir == SMTPP_C2S) {
		if (hits & (1u << PAT_CMD_MASKED))
			wiresig_raise(w, WS_SIG_COMMAND_MASKED, DP_DIR_C2S, off);
		return;
	}
	if ((hits & (1u << PAT_CAP_MASKED)) && verb == SMTPP_EHLO)
		wiresig_raise(w, WS_SIG_CAPABILITY_MASKED, DP_DIR_S2C, off);
	if ((hits & (1u << PAT_BANNER_MASKED)) && verb == SMTPP_GREETING)
		wiresig_raise(w, WS_SIG_BANNER_MASKED, DP_DIR_S2C, off);
	/* Postfix says the same words to an unknown command: only a refusal of
	 * EHLO or STARTTLS is MailGuard's mark */
	if ((hits & (1u << PAT_MAILGUARD_502)) && (verb == SMTPP_EHLO || verb == SMTPP_STARTTLS))
		wiresig_raise(w, WS_SIG_MAILGUARD_REPLY, DP_DIR_S2C, off);
	if ((hits & (1u << PAT_NOT_RECOGNIZED)) && verb == SMTPP_STARTTLS && w->offered)
		wiresig_raise(w, WS_SIG_COMMAND_UNRECOGNIZED, DP_DIR_S2C, off);
}

void
wiresig_command(struct wiresig *w, enum smtpp_verb verb, uint64_t off, const struct smtpp_caps *caps)
{
	if (w->tls)
		return;
	/* RFC 3207 4: STARTTLS must be the last command of a pipelined group;
	 * anything the client sends before the 220 is injected or misordered */
	if (w->starttls_pending) {
		wiresig_raise(w, WS_SIG_COMMAND_INJECTION, DP_DIR_C2S, off);
		return;
	}
	switch (verb) {
	case SMTPP_STARTTLS:
		w->starttls_sent = true;
		w->starttls_pending = true;
		break;
	case SMTPP_MAIL:
	case SMTPP_RCPT:
		if (w->starttls_refused)
			wiresig_raise(w, WS_SIG_REFUSED_CLEARTEXT, DP_DIR_C2S, off);
		else if (caps->starttls && !w->starttls_sent)
			wiresig_raise(w, WS_SIG_STARTTLS_NOT_USED, DP_DIR_C2S, off);
		break;
	default:
		break;
	}
}

void
wiresig_reply(struct wiresig *w, enum smtpp_verb verb, unsigned code, uint64_t off,
	      const struct smtpp_caps *caps)
{
	if (verb == SMTPP_EHLO && code == 250)
		w->offered = caps->starttls;
	if (verb != SMTPP_STARTTLS)
		return;
	w->starttls_pending = false;
	if (code == 220) {
		w->tls = true;
		return;
	}
	if (code >= 400)
		w->starttls_refused = true;
	/* W-3b: advertised, sent, and then "unknown command": masked downstream */
	if ((code == 500 || code == 502) && w->offered)
		wiresig_raise(w, WS_SIG_COMMAND_UNRECOGNIZED, DP_DIR_S2C, off);
}

void
wiresig_tls_bytes(struct wiresig *w, enum smtpp_dir dir, const uint8_t *p, size_t len, uint64_t off)
{
	int d = dir == SMTPP_S2C;
	if (w->pre_have[d] == 0 && len > 0)
		w->pre_off[d] = off;
	while (len > 0 && w->pre_have[d] < sizeof(w->pre[d]))
		w->pre[d][w->pre_have[d]++] = *p++, len--;
}

static bool
is_alpha(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* What the first bytes after STARTTLS were, per direction. */
static void
classify_pre(struct wiresig *w, int d)
{
	const uint8_t *b = w->pre[d];
	uint8_t n = w->pre_have[d];
	if (n == 0)
		return;
	if ((b[0] == 0x16 || b[0] == 0x15) && (n < 2 || b[1] == 3))
		return; /* a handshake (or alert) record */
	enum dp_dir dir = d ? DP_DIR_S2C : DP_DIR_C2S;
	bool smtp;
	if (d) /* a reply: three digits */
		smtp = n >= 3 && is_digit(b[0]) && is_digit(b[1]) && is_digit(b[2]);
	else /* a command: letters */
		smtp = n >= 4 && is_alpha(b[0]) && is_alpha(b[1]) && is_alpha(b[2]) && is_alpha(b[3]);
	if (smtp)
		wiresig_raise(w, d ? WS_SIG_RESPONSE_INJECTION : WS_SIG_COMMAND_INJECTION, dir,
			      w->pre_off[d]);
	else
		wiresig_raise(w, WS_SIG_NOT_TLS, dir, w->pre_off[d]);
}

static bool
cert_alert(uint8_t desc)
{
	/* RFC 5246 7.2.2: bad_certificate .. certificate_unknown, unknown_ca */
	return (desc >= 42 && desc <= 46) || desc == 48;
}

void
wiresig_tls(struct wiresig *w, const struct tlsobs_facts *f)
{
	classify_pre(w, 0);
	classify_pre(w, 1);
	if (!f)
		return;
	for (int d = 0; d < 2; d++) {
		const struct tlsobs_dirfacts *df = &f->dir[d];
		/* TLS began, then something that is no record header */
		if (df->error && df->error_reason && strcmp(df->error_reason, "capture-gap") != 0)
			wiresig_raise(w, WS_SIG_NOT_TLS, d ? DP_DIR_S2C : DP_DIR_C2S, df->error_offset);
	}
	if (f->server_hello) {
		/* RFC 8446 4.1.3: the sentinel from a 1.3-capable server that was
		 * offered less than it supports: a ClientHello changed on the path */
		if ((f->downgrade_sentinel == 1 && f->version_offered_max >= TLSOBS_VERSION_TLS13) ||
		    (f->downgrade_sentinel == 2 && f->version_offered_max >= TLSOBS_VERSION_TLS12))
			wiresig_raise(w, WS_SIG_DOWNGRADE_SENTINEL, DP_DIR_S2C, f->sh_offset);
		if (f->version < TLSOBS_VERSION_TLS12) /* RFC 8461 7.2 */
			wiresig_raise(w, WS_SIG_LEGACY_VERSION, DP_DIR_S2C, f->sh_offset);
		if (tlsobs_weak_cipher(f->cipher))
			wiresig_raise(w, WS_SIG_WEAK_CIPHER, DP_DIR_S2C, f->sh_offset);
	}
	const struct tlsobs_alert *ca = &f->dir[0].alert;
	if (f->cert_seen && ca->seen && !ca->encrypted && cert_alert(ca->desc))
		wiresig_raise(w, WS_SIG_CLIENT_CERT_ALERT, DP_DIR_C2S, ca->offset);
	/* TLS 1.3: the server's encrypted flight came, and the client answered
	 * with an alert (in the clear, before its keys were in use) or with one
	 * encrypted record (an alert: no Finished and data) */
	const struct tlsobs_dirfacts *c = &f->dir[0];
	if (f->server_hello && f->version >= TLSOBS_VERSION_TLS13 && f->dir[1].appdata_records > 0 &&
	    c->appdata_records <= 1 && (ca->seen || c->appdata_records == 1))
		wiresig_raise(w, WS_SIG_TLS13_CLIENT_ABORT, DP_DIR_C2S,
			      ca->seen ? ca->offset : c->first_appdata_offset);
}

size_t
wiresig_policy(const struct dp_session_record *rec, const struct wiresig_policy_in *in,
	       struct dp_anomaly *out, size_t max)
{
	size_t n = 0;
#define PUT(sig, d, o)                                                                     \
	do {                                                                               \
		if (n < max)                                                               \
			out[n++] = (struct dp_anomaly){.name = names[sig], .dir = d, .offset = o}; \
	} while (0)
	if (!in->has_policy)
		return 0;
	if (rec->ehlo_seen && !rec->starttls_offered)
		PUT(WS_SIG_STARTTLS_NOT_OFFERED, DP_DIR_S2C, rec->off.ehlo_reply);
	if (!in->mx_match)
		PUT(WS_SIG_MX_NOT_IN_POLICY, DP_DIR_S2C, 0);
	if (rec->tls.client_hello && !rec->tls.sni)
		PUT(WS_SIG_SNI_MISSING, DP_DIR_C2S, rec->off.client_hello);
	if (rec->tls_established && rec->tls.cert_seen && in->cert != STS_CERT_VALID &&
	    in->cert != STS_CERT_NOT_ASSESSABLE)
		PUT(WS_SIG_CERT_INVALID_CONTINUED, DP_DIR_S2C, rec->off.certificate);
	if (in->enforce && rec->nrcpt_domains > 0)
		PUT(WS_SIG_CLEARTEXT_ENFORCE, DP_DIR_C2S, rec->off.rcpt);
#undef PUT
	return n;
}
