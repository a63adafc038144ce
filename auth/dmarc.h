/*
 * dmarc: DMARC (RFC 7489, RFC 9989) as a pure, resumable evaluator.
 *
 * Data model: dmarc_record_parse turns one TXT string into a struct
 * dmarc_record (a copy of the text plus decoded tags; usable alone, it is
 * the fuzz target). dmarc_eval_new copies its inputs (From field values,
 * SPF result and domain, DKIM results) into an evaluator; the caller then
 * loops dmarc_step -> NEED_DNS(name, type) -> resolve -> dmarc_answer until
 * dmarc_step says DONE, and reads dmarc_eval_result. Every answer is cached
 * inside the evaluator, and each step re-runs the whole decision over that
 * cache, so a step never depends on how the answers arrived.
 * Organisational domain: RFC 9989 DNS tree walk (default) or RFC 7489
 * Public Suffix List (caller loads the psl_ctx_t once and keeps it alive for
 * the evaluator's life; auth does no I/O). With a PSL given in tree-walk
 * mode both are computed and a disagreement is flagged.
 * ARC: dmarc_arc_override is a separate pure function; it never turns a
 * DMARC fail into a pass, it records an override next to the fail.
 * Ownership: the evaluator owns copies of everything; strings in a query
 * or the result live until the next dmarc_step/dmarc_eval_free.
 * Thread-safety: an evaluator is used by one thread at a time; different
 * evaluators share nothing (the psl_ctx_t is read-only).
 * Limits: the DMARC_* constants below; each is tested at and past.
 */
#ifndef WS_AUTH_DMARC_H
#define WS_AUTH_DMARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpsl.h>

#include "dns-types.h"

#define DMARC_RECORD_MAX_LEN 2048 /* bytes of one DMARC TXT record */
#define DMARC_MAX_TAGS 32         /* tag-specs in one record, v included */
#define DMARC_DOMAIN_MAX 253      /* presentation form, no trailing dot */
#define DMARC_WALK_MAX_QUERIES 8  /* RFC 9989 tree walk: queries per walk */
#define DMARC_MAX_DKIM 16         /* DKIM results per evaluation */
#define DMARC_FROM_FIELD_MAX 4096 /* bytes of one From field value */
#define DMARC_MAX_TRUSTED_SEALERS 64
#define DMARC_ARC_MAX_INSTANCES 50 /* RFC 8617 5.1.1.1 */
/* Upper bound on DNS queries of one evaluation: the From walk, the SPF and
 * DKIM identifier walks, the RFC 7489 organisational-domain query and the
 * three existence queries for np. Reaching it is a bug (checked). */
#define DMARC_MAX_QUERIES ((2 + DMARC_MAX_DKIM) * DMARC_WALK_MAX_QUERIES + 4)

enum dmarc_policy { DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT };
enum dmarc_align { DMARC_ALIGN_RELAXED, DMARC_ALIGN_STRICT };
enum dmarc_psd { DMARC_PSD_ABSENT, DMARC_PSD_Y, DMARC_PSD_N, DMARC_PSD_U };

enum dmarc_rec_status {
	DMARC_REC_OK,
	DMARC_REC_NOT_DMARC,    /* does not start with v=DMARC1: not a DMARC record */
	DMARC_REC_TOO_LONG,     /* > DMARC_RECORD_MAX_LEN */
	DMARC_REC_TOO_MANY_TAGS,/* > DMARC_MAX_TAGS */
	DMARC_REC_DUP_TAG,      /* a tag name twice (RFC 6376 3.2 via RFC 7489 6.3) */
	DMARC_REC_BAD_POLICY,   /* p/sp invalid and no valid rua: ignored (7489 6.6.3) */
};

struct dmarc_span {
	uint16_t off, len; /* into dmarc_record.text; len 0 = absent */
};

struct dmarc_record {
	enum dmarc_policy p, sp, np;
	bool has_p, has_sp, has_np;
	bool p_from_rua; /* p (or sp) was invalid, treated as none because of rua */
	enum dmarc_align adkim, aspf;
	unsigned pct;    /* 0..100, default 100 */
	bool testing;    /* t=y */
	enum dmarc_psd psd;
	uint32_t ri;     /* default 86400 */
	unsigned rua_valid, ruf_valid; /* syntactically valid URIs */
	unsigned ntags;
	unsigned ignored; /* tags ignored: unknown, malformed or invalid value */
	struct dmarc_span rua, ruf, fo, rf;
	size_t len;
	char text[DMARC_RECORD_MAX_LEN + 1];
};

/* Is this TXT string a DMARC record at all (RFC 7489 6.6.3 step 2: begins
 * with the v=DMARC1 tag)? Used to select records before counting them. */
bool dmarc_record_is_dmarc(const char *txt, size_t len);

/* Parse one record. why gets a reason on anything but DMARC_REC_OK. */
enum dmarc_rec_status dmarc_record_parse(const char *txt, size_t len,
					 struct dmarc_record *out, char *why, size_t whylen);

const char *dmarc_policy_name(enum dmarc_policy p);

/* ---- evaluator ---- */

enum dmarc_auth { /* an SPF or DKIM result as the caller computed it */
	DMARC_AUTH_NONE, DMARC_AUTH_PASS, DMARC_AUTH_FAIL, DMARC_AUTH_SOFTFAIL,
	DMARC_AUTH_NEUTRAL, DMARC_AUTH_TEMPERROR, DMARC_AUTH_PERMERROR,
	DMARC_AUTH_POLICY,
};

enum dmarc_org_method { DMARC_ORG_TREEWALK, DMARC_ORG_PSL };

struct dmarc_dkim {
	const char *domain; /* d= */
	enum dmarc_auth result;
};

struct dmarc_inputs {
	const char *const *from; /* raw From field values, one per field */
	size_t nfrom;
	enum dmarc_auth spf_result;
	const char *spf_domain;  /* MAIL FROM domain, or HELO for a null path */
	const struct dmarc_dkim *dkim;
	size_t ndkim;            /* at most DMARC_MAX_DKIM */
	enum dmarc_org_method method;
	const psl_ctx_t *psl;    /* required for DMARC_ORG_PSL; optional else */
	bool cross_check;        /* PSL mode: also run the tree walk and compare */
	unsigned random_pct;     /* 0..99, caller's randomness for pct sampling */
};

enum dmarc_res {
	DMARC_RES_NONE, DMARC_RES_PASS, DMARC_RES_FAIL,
	DMARC_RES_TEMPERROR, DMARC_RES_PERMERROR,
};

enum dmarc_policy_src { DMARC_SRC_NONE, DMARC_SRC_P, DMARC_SRC_SP, DMARC_SRC_NP };

struct dmarc_result {
	enum dmarc_res result;
	enum dmarc_policy policy;      /* requested, after p/sp/np selection */
	enum dmarc_policy_src policy_src;
	enum dmarc_policy disposition; /* after t=y and pct; none unless fail */
	bool testing;                  /* record had t=y */
	bool sampled_out;              /* pct said: apply the weaker policy */
	unsigned pct;
	bool from_nonexistent;         /* np existence check said NXDOMAIN */
	bool spf_aligned, dkim_aligned;
	enum dmarc_align aspf, adkim;
	enum dmarc_org_method org_method;
	bool org_disagree;             /* PSL and tree walk differ (both known) */
	unsigned queries;              /* DNS queries this evaluation asked */
	char from_domain[DMARC_DOMAIN_MAX + 1];
	char record_domain[DMARC_DOMAIN_MAX + 1];  /* where the policy record was */
	char org_domain[DMARC_DOMAIN_MAX + 1];     /* per org_method */
	char psl_org_domain[DMARC_DOMAIN_MAX + 1]; /* "" when not computed */
	char walk_org_domain[DMARC_DOMAIN_MAX + 1];/* "" when not computed */
	char dkim_domain[DMARC_DOMAIN_MAX + 1];    /* the aligned d=, if any */
	char reason[192];
};

struct dmarc_eval;

enum dmarc_step { DMARC_STEP_NEED_DNS, DMARC_STEP_DONE, DMARC_STEP_ERROR };

struct dmarc_query {
	const char *name; /* owned by the evaluator */
	enum ws_dns_type type;
};

/* NULL on refused inputs (why says which) or out of memory. Unusable From
 * fields are not refused: they make a permerror result. */
struct dmarc_eval *dmarc_eval_new(const struct dmarc_inputs *in, char *why, size_t whylen);
enum dmarc_step dmarc_step(struct dmarc_eval *ev, struct dmarc_query *q);
/* The answer to the query the last dmarc_step asked; copied. -1 when no
 * query is outstanding. */
int dmarc_answer(struct dmarc_eval *ev, const struct ws_dns_answer *ans);
const struct dmarc_result *dmarc_eval_result(const struct dmarc_eval *ev);
void dmarc_eval_free(struct dmarc_eval *ev);

const char *dmarc_res_name(enum dmarc_res r);
const char *dmarc_org_method_name(enum dmarc_org_method m);

/* The Author Domain from the From field values: 0 and the lowercase domain
 * in out, or -1 and a reason (no field, several fields, several addresses,
 * no domain, a domain literal, a syntax error). */
int dmarc_from_domain(const char *const *fields, size_t n, char out[DMARC_DOMAIN_MAX + 1],
		      char *why, size_t whylen);

/* ---- ARC-aware local policy ---- */

enum dmarc_arc_chain { DMARC_ARC_NONE, DMARC_ARC_PASS, DMARC_ARC_FAIL };

struct dmarc_arc_method {
	const char *method; /* "dmarc", "dkim", "spf" (others ignored) */
	const char *result; /* "pass", "fail", ... */
	const char *domain; /* dkim: header.d; spf: smtp.mailfrom domain;
			       dmarc: header.from; may be NULL */
};

struct dmarc_arc_instance {
	unsigned instance; /* i= */
	const char *sealer; /* ARC-Seal d= */
	const struct dmarc_arc_method *results; /* from that instance's AAR */
	size_t nresults;
};

struct dmarc_arc_input {
	enum dmarc_arc_chain chain;
	const struct dmarc_arc_instance *inst;
	size_t ninst;
};

struct dmarc_arc_override {
	bool applied;
	char by[8];        /* "arc" when applied */
	char sealer[DMARC_DOMAIN_MAX + 1];
	unsigned instance;
	char reason[160];
};

/* The method results of one ARC-Authentication-Results payload (the part
 * after "i=N;", an RFC 8601 A-R value read by authres_parse, so comments,
 * quoted values, folding and any case are understood) as dmarc_arc_override
 * takes them: method and result lowercased, the domain by method (dkim:
 * header.d, spf: the smtp.mailfrom domain, dmarc: header.from; NULL for
 * other methods, when absent or longer than DMARC_DOMAIN_MAX). The strings
 * are copied into buf (cap bytes); a result that no longer fits is left out,
 * so are results past max and past DMARC_ARC_MAX_RESULTS. The in-process
 * policy (cli/) and the control plane (ctrlplane/) both read AARs with this
 * and the same bounds, so their ARC override cannot differ. Returns how many
 * results were written: 0 when the payload does not parse. Pure function. */
#define DMARC_ARC_MAX_RESULTS 16u  /* results read from one AAR; more are ignored */
#define DMARC_ARC_TEXT_MAX 4096u   /* bytes of copied strings per AAR (callers' buf) */
size_t dmarc_arc_results(const char *payload, size_t len, struct dmarc_arc_method *out,
			 size_t max, char *buf, size_t cap);

/* Fills out. applied only when DMARC failed, the chain passed and a trusted
 * sealer (exact domain match, case-insensitive) reported dmarc=pass, or an
 * aligned dkim/spf pass, for the same From domain. -1 on invalid arguments
 * (limits), with out->reason. */
int dmarc_arc_override(const struct dmarc_result *res, const struct dmarc_arc_input *arc,
		       const char *const *trusted, size_t ntrusted,
		       struct dmarc_arc_override *out);

#endif
