/*
 * cppolicy: completes a message's verdict in the control plane. The dataplane
 * decided DKIM (and the ARC chain); a policy job runs SPF (MAIL FROM
 * identity, RFC 7208) and DMARC (RFC 7489/9989) with the resumable
 * evaluators in auth/ over the shared DNS cache (dnscache_lookup), then applies local policy:
 * the ARC override for trusted sealers (RFC 8617 7.2, through
 * dmarc_arc_override) and per-From-domain disposition overrides.
 *
 * SPF is computed as `wireseal verify` computes it (cli/policy.c): the MAIL
 * FROM identity is the reported result and, when the session gave a HELO
 * name, the HELO identity is checked beside it (RFC 7208 2.3); DMARC
 * cross-checks the organisational domain with the PSL when one is loaded;
 * a record with a gap (bytes not seen) gets temperror instead of a DMARC
 * that did not pass. So a replay's VERDICT equals its in-process result.
 *
 * Data model: a job owns a private copy of its MESSAGE_RECORD (re-encoded
 * and decoded again into its own buffer), so the datagram it came in may go.
 * The done callback runs exactly once, possibly from inside pol_start (every
 * answer cached) or later from the DNS cache's callbacks; the job is freed
 * with pol_job_free by whoever receives it.
 * Thread-safety: the daemon's one event-loop thread.
 * Limits: the evaluators' (SPF_MAX_*, DMARC_MAX_*); POL_MAX_AAR_RESULTS
 * method results read from one ARC-Authentication-Results value (read by
 * dmarc_arc_results, the in-process policy's reader, with its bounds).
 */
#ifndef WS_CTRLPLANE_CPPOLICY_H
#define WS_CTRLPLANE_CPPOLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "cpm.h"
#include "dmarc.h"
#include "spf.h"

#define POL_MAX_AAR_RESULTS DMARC_ARC_MAX_RESULTS /* the in-process policy's bound */

struct dnscache;
struct ws_dns;
struct pol_job;

struct pol_config {
	const char *authserv_id;
	const char *const *trusted_sealers;
	size_t ntrusted;
	const char *const *override_domain; /* From domains ... */
	const char *const *override_action; /* ... and none|quarantine|reject|skip */
	size_t noverrides;
	enum dmarc_org_method org_method;
	const psl_ctx_t *psl; /* needed for DMARC_ORG_PSL; with it, DMARC cross-checks */
	int fixed_pct;        /* 0..99: every pct draw is this (repeatable); -1: random */
};

struct pol_verdict {
	struct spf_outcome spf; /* the MAIL FROM identity (postmaster@HELO for a null sender) */
	bool spf_skipped;    /* no usable client address */
	bool null_sender;    /* the MAIL FROM check used postmaster@HELO */
	bool helo_ran;       /* the HELO identity was checked too (a HELO name was seen) */
	struct spf_outcome helo;
	struct dmarc_result dmarc;
	bool dmarc_evaluated;
	char dmarc_error[160]; /* inputs refused (dmarc_eval_new) */
	struct dmarc_arc_override arc;
	const char *override; /* the per-domain action applied, or NULL */
	const char *disposition; /* final: none|quarantine|reject */
};

typedef void (*pol_done_cb)(void *arg, struct pol_job *job);

/* 0 (done runs exactly once, perhaps before pol_start returns, and owns the
 * job from then on), or -1 on allocation failure or a record that does not
 * re-encode. cfg is read at each step: keep it alive. */
int pol_start(const struct pol_config *cfg, struct dnscache *dc, struct ws_dns *dns,
	      const struct cpm_message *m, int64_t now, pol_done_cb done, void *arg);
const struct cpm_message *pol_job_message(const struct pol_job *j);
const struct pol_verdict *pol_job_verdict(const struct pol_job *j);
void pol_job_free(struct pol_job *j); /* NULL-safe; only after done ran */

/* Reads the method results out of a whole AAR value ("i=1; authserv-id;
 * dkim=pass header.d=x; dmarc=pass header.from=y"): "i=N;" split off by
 * arc_aar_parse, the rest read by dmarc_arc_results (auth/dmarc.h), the
 * same reader as the in-process policy. Strings are written into buf (cap
 * bytes). Returns the number of results, 0 when the value does not parse. */
size_t pol_parse_aar(const char *aar, struct dmarc_arc_method *out, size_t max, char *buf,
		     size_t cap);

#endif
