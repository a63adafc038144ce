/*
 * SPF (RFC 7208): record parser, macro expander and a resumable check_host()
 * evaluator. Pure: no I/O, no clock (time is an input), no globals.
 *
 * Data model: an evaluation (struct spf_eval, opaque) is created from the
 * inputs (client IP, HELO, MAIL FROM, receiver, time) for one identity. The
 * caller loops: spf_step() returns SPF_STEP_NEED_DNS with a query (name +
 * type) or SPF_STEP_DONE; each query is answered with spf_answer(), which
 * copies what it needs from the answer and keeps no pointer to it. The
 * include/redirect chain is an explicit frame stack, not C recursion.
 *
 * Ownership: spf_eval_new copies every input string; the query's name points
 * into the evaluation and is valid until the next spf_answer/spf_eval_free.
 * The outcome belongs to the evaluation. A parsed struct spf_record owns its
 * text and term array; free it with spf_record_free.
 *
 * Thread-safety: an evaluation is used by one thread at a time; distinct
 * evaluations share nothing.
 *
 * Limits (RFC 7208 4.6.4 and memory bounds), each a named constant below:
 * DNS-querying terms, void lookups, MX names, PTR names, include depth,
 * record length, expansion length. Exceeding an RFC limit is permerror.
 * Memory: one evaluation is one allocation of about 16 KiB plus, per frame
 * (at most SPF_MAX_DEPTH), its parsed record: the text (<= SPF_MAX_RECORD_LEN)
 * and 64 bytes per term. No allocation outlives spf_eval_free.
 */
#ifndef WS_AUTH_SPF_H
#define WS_AUTH_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns-types.h"

#define SPF_MAX_DNS_TERMS 10   /* include a mx ptr exists redirect (4.6.4) */
#define SPF_MAX_VOID_LOOKUPS 2 /* terms whose lookup was NXDOMAIN/NODATA */
#define SPF_MAX_MX_NAMES 10    /* more MX records than this: permerror */
#define SPF_MAX_PTR_NAMES 10   /* PTR names past this are ignored */
#define SPF_MAX_DEPTH 12       /* frames: top + nested includes (the term limit caps it at 11) */
#define SPF_MAX_RECORD_LEN 4096 /* longer SPF records: permerror */
#define SPF_DOMAIN_MAX 253     /* a domain name in text form, no trailing dot */
#define SPF_LABEL_MAX 63
#define SPF_MAX_SENDER 512     /* MAIL FROM longer: result none; HELO longer: cut for %{h} */
#define SPF_MAX_EXPANSION 2048 /* macro-expanded text (before domain truncation) */
#define SPF_MAX_EXPLANATION 1024 /* exp= text; longer: default explanation */

enum spf_result {
	SPF_RESULT_NONE,
	SPF_RESULT_NEUTRAL,
	SPF_RESULT_PASS,
	SPF_RESULT_FAIL,
	SPF_RESULT_SOFTFAIL,
	SPF_RESULT_TEMPERROR,
	SPF_RESULT_PERMERROR,
};

const char *spf_result_name(enum spf_result r); /* "pass", "temperror", ... */

/* A client address; IPv4-mapped IPv6 (::ffff:a.b.c.d) is stored as IPv4. */
struct spf_ip {
	int family; /* 4 or 6 */
	uint8_t addr[16];
};

/* Parses IPv4 dotted-quad or IPv6 text. Returns 0, or -1 on bad text. */
int spf_ip_parse(const char *text, struct spf_ip *ip);

/* ---- record parser (usable alone) ---- */

enum spf_mech {
	SPF_MECH_ALL,
	SPF_MECH_INCLUDE,
	SPF_MECH_A,
	SPF_MECH_MX,
	SPF_MECH_PTR,
	SPF_MECH_IP4,
	SPF_MECH_IP6,
	SPF_MECH_EXISTS,
};

enum spf_term_kind {
	SPF_TERM_MECH,
	SPF_TERM_REDIRECT,
	SPF_TERM_EXP,
	SPF_TERM_UNKNOWN_MOD, /* syntax-checked, otherwise ignored */
};

struct spf_term {
	enum spf_term_kind kind;
	enum spf_mech mech;
	char qual;            /* '+' '-' '~' '?' (mechanisms) */
	uint8_t cidr4, cidr6; /* a, mx, ip4, ip6; 32 / 128 when absent */
	bool uses_p;          /* the domain-spec uses %{p} (needs PTR lookups) */
	size_t off, len;      /* the whole term within the record text */
	size_t spec_off, spec_len; /* domain-spec or modifier value; len 0 = none */
	uint8_t addr[16];     /* ip4 (first 4 bytes) / ip6 network */
};

struct spf_record {
	char *text; /* NUL-terminated copy of the record */
	size_t len;
	struct spf_term *terms;
	size_t nterms;
	int redirect; /* index into terms, or -1 */
	int exp;      /* index into terms, or -1 */
};

/* True when txt starts with "v=spf1" (any case) followed by SP or the end. */
bool spf_record_is_spf(const char *txt, size_t len);

/*
 * Parses a whole record ("v=spf1 ..."), which may contain NUL bytes (they are
 * a syntax error). Returns 0 and fills rec, or -1 with a reason in why (rec is
 * then empty). Any syntax error anywhere is an error (RFC 7208 4.6).
 */
int spf_record_parse(const char *txt, size_t len, struct spf_record *rec, char *why,
		     size_t whylen);
void spf_record_free(struct spf_record *rec); /* NULL-safe; leaves rec empty */

/* ---- macro expander (usable alone) ---- */

#define SPF_MACRO_EXP 0x1    /* explain-string: SP allowed, letters c r t allowed */
#define SPF_MACRO_DOMAIN 0x2 /* result is a name: drop one trailing dot, truncate to 253 */

struct spf_macro_ctx {
	const char *sender;        /* %{s} */
	const char *local;         /* %{l} */
	const char *sender_domain; /* %{o} */
	const char *domain;        /* %{d} */
	const char *helo;          /* %{h} */
	const char *receiver;      /* %{r}; NULL = "unknown" */
	const char *ptr_name;      /* %{p}; NULL = "unknown" */
	struct spf_ip ip;          /* %{i} %{c} %{v} */
	int64_t now;               /* %{t} */
};

/*
 * Expands (or, with ctx NULL, only checks) a macro-string. out gets a
 * NUL-terminated result of at most outcap-1 bytes. Returns 0, or -1 with a
 * reason (syntax error, letter not allowed here, result too long).
 * *uses_p (optional) is set when the text uses %{p}.
 */
int spf_macro_expand(const struct spf_macro_ctx *ctx, const char *in, size_t len,
		     unsigned flags, char *out, size_t outcap, bool *uses_p, char *why,
		     size_t whylen);

/* ---- evaluator ---- */

struct spf_params {
	struct spf_ip ip;
	const char *helo;        /* HELO/EHLO name as given */
	const char *mail_from;   /* MAIL FROM address; NULL or "" = null reverse-path */
	const char *receiver;    /* %{r}; NULL = "unknown" */
	int64_t now;             /* %{t}, seconds since the epoch */
	const char *default_exp; /* explanation when fail has no usable exp=; NULL = built-in */
};

struct spf_outcome {
	enum spf_result result;
	char domain[SPF_DOMAIN_MAX + 1];        /* the identity's domain (check_host <domain>) */
	char record_domain[SPF_DOMAIN_MAX + 1]; /* domain whose record decided (after redirects) */
	char mechanism[128];                    /* matched term text; "" for the default result */
	char reason[160];                       /* why: error detail or how it matched */
	char explanation[SPF_MAX_EXPLANATION + 1]; /* fail only, else "" */
	unsigned dns_terms, void_lookups;       /* counters at the end */
};

struct spf_query {
	const char *name; /* no trailing dot; owned by the evaluation */
	enum ws_dns_type type;
};

enum spf_step_status { SPF_STEP_NEED_DNS, SPF_STEP_DONE };

struct spf_eval;

/*
 * MAIL FROM identity: check_host(ip, domain of mail_from, mail_from); a null
 * reverse-path checks postmaster@<helo>; a missing local-part is "postmaster".
 * Returns NULL only on allocation failure.
 */
struct spf_eval *spf_eval_new_mailfrom(const struct spf_params *p);
/* HELO identity: check_host(ip, helo, postmaster@helo). */
struct spf_eval *spf_eval_new_helo(const struct spf_params *p);
void spf_eval_free(struct spf_eval *ev);

/* Advances until a DNS answer is needed or the result is known. */
enum spf_step_status spf_step(struct spf_eval *ev, struct spf_query *q);
/* Answers the query last returned by spf_step. Returns 0, or -1 when no
 * query is outstanding (the answer is then ignored). */
int spf_answer(struct spf_eval *ev, const struct ws_dns_answer *a);
/* The outcome; meaningful once spf_step returned SPF_STEP_DONE. */
const struct spf_outcome *spf_outcome(const struct spf_eval *ev);

#endif
