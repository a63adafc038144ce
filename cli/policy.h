/*
 * policy: SPF and DMARC for the CLI, driven to completion over ws_dns.
 *
 * The evaluators in auth/ are pure and resumable; this module runs their
 * loops synchronously (step -> query -> answer) through a per-run dnscache
 * above the resolver, so a corpus of messages from a few domains costs a few
 * queries. It also renders the results (JSON members and A-R entries).
 *
 * ARC: the override (dmarc_arc_override) takes a struct dmarc_arc_input.
 * The ARC side comes from auth/arc's chain through
 * policy_arc_input_from_chain().
 *
 * Ownership: a struct policy borrows the ws_dns and the PSL; results are
 * plain values the caller owns. Not thread-safe (one per thread, as ws_dns).
 * The PSL from policy_psl() is loaded once per process and shared read-only.
 */
#ifndef WS_CLI_POLICY_H
#define WS_CLI_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "dmarc.h"
#include "spf.h"

/* Per evaluation, an invariant: the evaluators bound themselves far below it;
 * past it the message gets an error line instead of a result. */
#define POLICY_MAX_QUERIES 1000
#define POLICY_MAX_FROM 8        /* From fields handed to DMARC (two already mean permerror) */
#define POLICY_CACHE_ENTRIES 4096
#define POLICY_RANDOM_POOL 64    /* pct draws per getrandom call */
#define POLICY_PSL_FILE "/usr/share/publicsuffix/public_suffix_list.dat"

struct ws_dns;
struct json;
struct authres;
struct rfc5322_header;
struct dkim_verifier;
struct policy;

struct policy *policy_new(struct ws_dns *dns);
void policy_free(struct policy *p); /* NULL-safe */
/* Queries sent to the resolver and answers taken from the cache so far. */
void policy_counters(const struct policy *p, unsigned long *queries, unsigned long *hits);

/* Debian's list, else libpsl's built-in one; loaded on the first call.
 * *source says which ("file" path or "builtin"). NULL when neither loads. */
const psl_ctx_t *policy_psl(const char **source);
void policy_psl_release(void); /* at process end */

/* ---- SPF ---- */

struct policy_spf_in {
	const char *client_ip;
	const char *helo;      /* may be NULL */
	const char *mail_from; /* NULL or "" = null reverse-path */
	const char *receiver;  /* %{r}; may be NULL */
	int64_t now;           /* %{t} and the cache clock */
};

struct policy_spf_out {
	bool ran;
	bool null_sender;          /* the MAIL FROM check used postmaster@HELO */
	struct spf_outcome mailfrom; /* the reported result (RFC 7208 2.4) */
	bool helo_ran;             /* HELO identity checked (RFC 7208 2.3) */
	struct spf_outcome helo;
	char mail_from[SPF_MAX_SENDER + 1];
	char helo_name[SPF_DOMAIN_MAX + 1];
};

/* 0, or -1 with why (bad client IP, out of memory). */
int policy_spf(struct policy *p, const struct policy_spf_in *in, struct policy_spf_out *out,
	       char *why, size_t whylen);

/* ---- DMARC ---- */

struct policy_dmarc_cfg {
	enum dmarc_org_method method;
	const psl_ctx_t *psl;     /* required for PSL; used to cross-check in tree walk */
	unsigned random_pct;      /* 0..99 */
	const char *const *trusted; /* trusted ARC sealers */
	size_t ntrusted;
	int64_t now;              /* cache clock */
};

struct policy_dmarc_out {
	struct dmarc_result res;
	struct dmarc_arc_override ov;
};

/* DMARC for one message: From fields from hdr, DKIM results from v (after
 * dkim_verifier_finish), SPF from spf (NULL or !ran: none), ARC from arc
 * (NULL: none). 0, or -1 with why (refused inputs, out of memory). */
int policy_dmarc(struct policy *p, const struct policy_dmarc_cfg *cfg,
		 const struct rfc5322_header *hdr, const struct dkim_verifier *v,
		 const struct policy_spf_out *spf, const struct dmarc_arc_input *arc,
		 struct policy_dmarc_out *out, char *why, size_t whylen);

/*
 * The ARC inputs of the override for this message (cli/policy_arc.c): the
 * chain's result and, per ARC set, i=, the ARC-Seal's d= and the method
 * results of that set's ARC-Authentication-Results (method, result, and the
 * domain: header.d for dkim, the smtp.mailfrom domain for spf, header.from
 * for dmarc). Strings are copied into store, which must outlive the use of
 * out; an AAR that does not parse contributes no results.
 */
struct policy_arc_store;
struct policy_arc_store *policy_arc_store_new(void);
void policy_arc_store_free(struct policy_arc_store *st);
struct arc_chain;
void policy_arc_input_from_chain(const struct arc_chain *ch, struct policy_arc_store *st,
				 struct dmarc_arc_input *out);

/* ---- the verify command's view: options, one call per message ---- */

struct policy_cli {
	bool spf_enabled;             /* --client-ip given */
	struct policy_spf_in spf_in;
	bool pct_fixed;               /* --random-pct given, else random per message */
	struct policy_dmarc_cfg dmarc;
	char *trusted_buf;            /* --trusted-sealers, split in place */
	const char *trusted[DMARC_MAX_TRUSTED_SEALERS];
	struct policy *pol;
	uint32_t rnd[POLICY_RANDOM_POOL]; /* draws for pct sampling, used from the top */
	size_t rnd_next;                  /* draws left in rnd */
	/* the last message's results */
	struct policy_spf_out spf;
	struct policy_dmarc_out dm;
};

/* The long options this module adds to `wireseal verify` (name, has_arg)
 * and their usage text. */
#define POLICY_CLI_OPTIONS                                                                  \
	{"client-ip", required_argument, NULL, 0x100}, {"helo", required_argument, NULL, 0x101}, \
	{"mail-from", required_argument, NULL, 0x102},                                           \
	{"trusted-sealers", required_argument, NULL, 0x103},                                     \
	{"dmarc-method", required_argument, NULL, 0x104},                                        \
	{"random-pct", required_argument, NULL, 0x105}
#define POLICY_CLI_OPT_FIRST 0x100
#define POLICY_CLI_OPT_LAST 0x105
#define POLICY_CLI_USAGE                                                                    \
	"[--client-ip IP [--helo NAME] [--mail-from ADDR]] [--trusted-sealers D1,D2] "       \
	"[--dmarc-method psl|treewalk] [--random-pct 0..99]"

void policy_cli_init(struct policy_cli *pc);
/* One option (opt in FIRST..LAST). 0, or -1 with why (bad value). */
int policy_cli_option(struct policy_cli *pc, int opt, const char *arg, char *why, size_t whylen);
/* After the options: checks them, loads the PSL, makes the policy. */
int policy_cli_start(struct policy_cli *pc, struct ws_dns *dns, int64_t now, char *why,
		     size_t whylen);
/* SPF (when enabled) and DMARC for one message whose DKIM results are final;
 * arc (NULL = no ARC chain) feeds the override. */
int policy_cli_message(struct policy_cli *pc, const struct rfc5322_header *hdr,
		       const struct dkim_verifier *v, const struct dmarc_arc_input *arc, char *why,
		       size_t whylen);
void policy_cli_json(const struct policy_cli *pc, struct json *j);
void policy_cli_authres(const struct policy_cli *pc, struct authres *ar);
void policy_cli_end(struct policy_cli *pc);

/* ---- output ---- */

void policy_spf_json(struct json *j, const struct policy_spf_out *spf);
void policy_dmarc_json(struct json *j, const struct policy_dmarc_out *d);
void policy_spf_authres(struct authres *ar, const struct policy_spf_out *spf);
void policy_dmarc_authres(struct authres *ar, const struct policy_dmarc_out *d);

#endif
