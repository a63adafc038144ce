/* cppolicy: SPF + DMARC + local policy for one message record (see cppolicy.h). */
#include "cppolicy.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arc.h"
#include "dnscache.h"

enum phase { PH_SPF, PH_HELO, PH_DMARC, PH_DONE };

struct pol_job {
	const struct pol_config *cfg;
	struct dnscache *dc;
	struct ws_dns *dns;
	int64_t now;
	pol_done_cb done;
	void *arg;
	uint8_t *raw;
	struct cpm_msg msg;
	char *helo, *mail_from, *client_ip, *gap;
	struct spf_params sp;
	char *from[CPM_MAX_FROM];
	char *dkim_d[CPM_MAX_DKIM];
	enum phase phase;
	struct spf_eval *spf;
	struct dmarc_eval *dmarc;
	struct pol_verdict v;
};

static char *
dup_str(struct cpm_str s)
{
	char *p = malloc(s.len + 1);
	if (p)
		cpm_str_copy(s, p, s.len + 1);
	return p;
}

static enum dmarc_auth
auth_of(const char *r)
{
	static const struct {
		const char *name;
		enum dmarc_auth a;
	} map[] = {
		{"pass", DMARC_AUTH_PASS},         {"fail", DMARC_AUTH_FAIL},
		{"softfail", DMARC_AUTH_SOFTFAIL}, {"neutral", DMARC_AUTH_NEUTRAL},
		{"temperror", DMARC_AUTH_TEMPERROR}, {"permerror", DMARC_AUTH_PERMERROR},
		{"policy", DMARC_AUTH_POLICY},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcasecmp(r, map[i].name) == 0)
			return map[i].a;
	return DMARC_AUTH_NONE;
}

static void run(struct pol_job *j);

static void
feed(struct pol_job *j, const struct ws_dns_answer *a)
{
	if (j->phase == PH_SPF || j->phase == PH_HELO)
		spf_answer(j->spf, a);
	else if (j->phase == PH_DMARC)
		dmarc_answer(j->dmarc, a);
}

static void
on_dns(void *arg, const struct ws_dns_answer *a)
{
	struct pol_job *j = arg;
	feed(j, a);
	run(j);
}

/* 1: answered now (fed), 0: the answer comes through on_dns. */
static int
ask(struct pol_job *j, const char *name, enum ws_dns_type type)
{
	const struct ws_dns_answer *a = NULL;
	int r = dnscache_lookup(j->dc, j->dns, name, type, j->now, on_dns, j, &a, NULL);
	if (r == 0)
		return 0;
	if (r < 0) { /* the resolver is saturated: a temporary failure, as DNS would give */
		static const struct ws_dns_answer busy = {.status = WS_DNS_TEMPFAIL, .rcode = -1,
							  .why = "resolver busy"};
		a = &busy;
	}
	feed(j, a);
	return 1;
}

static const char *
override_for(const struct pol_config *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->noverrides; i++)
		if (strcasecmp(cfg->override_domain[i], domain) == 0)
			return cfg->override_action[i];
	return NULL;
}

static void
apply_arc(struct pol_job *j)
{
	const struct cpm_message *m = &j->msg.u.message;
	/* scratch for this call only (dmarc_arc_override copies what it keeps);
	 * static because it is large and the daemon has one thread */
	static struct dmarc_arc_instance inst[CPM_MAX_ARC];
	static struct dmarc_arc_method methods[CPM_MAX_ARC][POL_MAX_AAR_RESULTS];
	static char bufs[CPM_MAX_ARC][DMARC_ARC_TEXT_MAX];
	static char sealers[CPM_MAX_ARC][256];
	char aar[CPM_MAX_STR + 1];
	size_t n = 0;
	for (uint32_t i = 0; i < m->narc; i++) {
		if (cpm_str_copy(m->arc[i].aar, aar, sizeof(aar)) != 0 ||
		    cpm_str_copy(m->arc[i].sealer, sealers[n], sizeof(sealers[n])) != 0)
			continue;
		inst[n].instance = m->arc[i].instance;
		inst[n].sealer = sealers[n];
		inst[n].results = methods[n];
		inst[n].nresults = pol_parse_aar(aar, methods[n], POL_MAX_AAR_RESULTS, bufs[n],
						 sizeof(bufs[n]));
		n++;
	}
	struct dmarc_arc_input in = {
		.chain = m->arc_chain == CPM_ARC_PASS ? DMARC_ARC_PASS :
			 m->arc_chain == CPM_ARC_FAIL ? DMARC_ARC_FAIL : DMARC_ARC_NONE,
		.inst = inst,
		.ninst = n,
	};
	dmarc_arc_override(&j->v.dmarc, &in, j->cfg->trusted_sealers, j->cfg->ntrusted, &j->v.arc);
}

static void
start_dmarc(struct pol_job *j)
{
	const struct cpm_message *m = &j->msg.u.message;
	char from_domain[DMARC_DOMAIN_MAX + 1] = "", why[160];
	if (dmarc_from_domain((const char *const *)j->from, m->nfrom, from_domain, why,
			      sizeof(why)) == 0) {
		const char *o = override_for(j->cfg, from_domain);
		if (o && strcasecmp(o, "skip") == 0) {
			j->v.override = "skip";
			j->phase = PH_DONE;
			return;
		}
	}
	struct dmarc_dkim dk[CPM_MAX_DKIM];
	size_t nd = 0;
	for (uint32_t i = 0; i < m->ndkim && nd < DMARC_MAX_DKIM; i++) {
		char res[32];
		/* as the CLI: a signature that did not parse (no a=) or has no d=
		 * has nothing to align */
		if (!j->dkim_d[i] || !j->dkim_d[i][0] || m->dkim[i].a.len == 0 ||
		    cpm_str_copy(m->dkim[i].result, res, sizeof(res)) != 0)
			continue;
		dk[nd].domain = j->dkim_d[i];
		dk[nd].result = auth_of(res);
		nd++;
	}
	struct dmarc_inputs in = {
		.from = (const char *const *)j->from,
		.nfrom = m->nfrom,
		.spf_result = j->v.spf_skipped ? DMARC_AUTH_NONE : auth_of(spf_result_name(j->v.spf.result)),
		.spf_domain = j->v.spf.domain[0] ? j->v.spf.domain : NULL,
		.dkim = dk,
		.ndkim = nd,
		.method = j->cfg->org_method,
		.psl = j->cfg->psl,
		.cross_check = j->cfg->psl != NULL,
		.random_pct = j->cfg->fixed_pct >= 0 ? (unsigned)j->cfg->fixed_pct : (unsigned)(rand() % 100),
	};
	j->dmarc = dmarc_eval_new(&in, j->v.dmarc_error, sizeof(j->v.dmarc_error));
	j->phase = j->dmarc ? PH_DMARC : PH_DONE;
}

/* Bytes of the message were lost on the wire: DKIM could only say
 * temperror, so a DMARC that did not pass is temperror with the gap as the
 * reason, never a fail the lost bytes may have caused. */
static void
apply_gap(struct pol_job *j)
{
	struct dmarc_result *r = &j->v.dmarc;
	if (!j->gap || !j->gap[0] || !j->v.dmarc_evaluated || r->result == DMARC_RES_PASS)
		return;
	r->result = DMARC_RES_TEMPERROR;
	r->disposition = DMARC_P_NONE;
	snprintf(r->reason, sizeof(r->reason), "%s: bytes of the message were not seen", j->gap);
}

static void
finish(struct pol_job *j)
{
	struct pol_verdict *v = &j->v;
	apply_gap(j);
	v->disposition = "none";
	if (v->dmarc_evaluated) {
		v->disposition = dmarc_policy_name(v->dmarc.disposition);
		if (v->dmarc.result == DMARC_RES_FAIL) {
			apply_arc(j);
			if (v->arc.applied)
				v->disposition = "none";
			const char *o = override_for(j->cfg, v->dmarc.from_domain);
			if (o) {
				v->override = o;
				v->disposition = o;
			}
		}
	}
	j->done(j->arg, j);
}

static void
run(struct pol_job *j)
{
	for (;;) {
		if (j->phase == PH_SPF) {
			struct spf_query q;
			if (spf_step(j->spf, &q) == SPF_STEP_DONE) {
				j->v.spf = *spf_outcome(j->spf);
				spf_eval_free(j->spf);
				j->spf = NULL;
				/* RFC 7208 2.3: the HELO identity on its own when a HELO
				 * was seen (for a null sender the MAIL FROM check above
				 * was that check, so its answers are cached) */
				if (j->helo[0] && (j->spf = spf_eval_new_helo(&j->sp))) {
					j->phase = PH_HELO;
					continue;
				}
				start_dmarc(j);
				continue;
			}
			if (!ask(j, q.name, q.type))
				return;
		} else if (j->phase == PH_HELO) {
			struct spf_query q;
			if (spf_step(j->spf, &q) == SPF_STEP_DONE) {
				j->v.helo = *spf_outcome(j->spf);
				j->v.helo_ran = true;
				start_dmarc(j);
				continue;
			}
			if (!ask(j, q.name, q.type))
				return;
		} else if (j->phase == PH_DMARC) {
			struct dmarc_query q;
			enum dmarc_step st = dmarc_step(j->dmarc, &q);
			if (st == DMARC_STEP_NEED_DNS) {
				if (!ask(j, q.name, q.type))
					return;
				continue;
			}
			if (st == DMARC_STEP_DONE) {
				j->v.dmarc = *dmarc_eval_result(j->dmarc);
				j->v.dmarc_evaluated = true;
			} else {
				snprintf(j->v.dmarc_error, sizeof(j->v.dmarc_error), "evaluator error");
			}
			j->phase = PH_DONE;
		} else {
			finish(j);
			return;
		}
	}
}

int
pol_start(const struct pol_config *cfg, struct dnscache *dc, struct ws_dns *dns,
	  const struct cpm_message *m, int64_t now, pol_done_cb done, void *arg)
{
	struct pol_job *j = calloc(1, sizeof(*j));
	if (!j)
		return -1;
	j->cfg = cfg;
	j->dc = dc;
	j->dns = dns;
	j->now = now;
	j->done = done;
	j->arg = arg;
	/* a private copy: encode the record and decode it again over our buffer */
	j->raw = malloc(CPM_MAX_DATAGRAM);
	if (!j->raw)
		goto fail;
	struct cpm_writer w;
	cpm_writer_init(&w, j->raw, CPM_MAX_DATAGRAM);
	j->msg.type = CPM_MESSAGE_RECORD;
	j->msg.u.message = *m;
	if (cpm_encode(&w, &j->msg) != 0)
		goto fail;
	struct cpm_reader r;
	cpm_reader_init(&r, j->raw, w.len);
	char why[128];
	if (cpm_decode_next(&r, &j->msg, why, sizeof(why)) != 1)
		goto fail;
	const struct cpm_message *mm = &j->msg.u.message;
	j->helo = dup_str(mm->helo);
	j->mail_from = dup_str(mm->mail_from);
	j->client_ip = dup_str(mm->client.ip);
	j->gap = dup_str(mm->gap);
	if (!j->helo || !j->mail_from || !j->client_ip || !j->gap)
		goto fail;
	for (uint32_t i = 0; i < mm->nfrom; i++)
		if (!(j->from[i] = dup_str(mm->from[i])))
			goto fail;
	for (uint32_t i = 0; i < mm->ndkim; i++)
		if (!(j->dkim_d[i] = dup_str(mm->dkim[i].d)))
			goto fail;
	j->sp = (struct spf_params){
		.helo = j->helo,
		.mail_from = j->mail_from,
		.receiver = cfg->authserv_id,
		.now = now,
	};
	j->v.null_sender = !j->mail_from[0];
	if (spf_ip_parse(j->client_ip, &j->sp.ip) == 0) {
		j->spf = spf_eval_new_mailfrom(&j->sp);
		if (!j->spf)
			goto fail;
		j->phase = PH_SPF;
	} else {
		j->v.spf_skipped = true;
		j->v.spf.result = SPF_RESULT_NONE;
		snprintf(j->v.spf.reason, sizeof(j->v.spf.reason), "no usable client address");
		start_dmarc(j);
	}
	run(j); /* may finish (and hand j over to done) before returning */
	return 0;
fail:
	pol_job_free(j);
	return -1;
}

const struct cpm_message *
pol_job_message(const struct pol_job *j)
{
	return &j->msg.u.message;
}

const struct pol_verdict *
pol_job_verdict(const struct pol_job *j)
{
	return &j->v;
}

void
pol_job_free(struct pol_job *j)
{
	if (!j)
		return;
	spf_eval_free(j->spf);
	dmarc_eval_free(j->dmarc);
	free(j->helo);
	free(j->mail_from);
	free(j->client_ip);
	free(j->gap);
	for (size_t i = 0; i < CPM_MAX_FROM; i++)
		free(j->from[i]);
	for (size_t i = 0; i < CPM_MAX_DKIM; i++)
		free(j->dkim_d[i]);
	free(j->raw);
	free(j);
}

size_t
pol_parse_aar(const char *aar, struct dmarc_arc_method *out, size_t max, char *buf, size_t cap)
{
	/* "i=N; " off, then the A-R payload read as the in-process policy
	 * reads it (auth/dmarc.h): one parser for both paths */
	unsigned inst;
	const char *payload, *why;
	size_t plen;
	if (arc_aar_parse(aar, strlen(aar), &inst, &payload, &plen, &why) != 0)
		return 0;
	return dmarc_arc_results(payload, plen, out, max, buf, cap);
}
