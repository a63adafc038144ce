/* SPF and DMARC for the CLI over ws_dns + dnscache; see policy.h. */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "authres.h"
#include "dkim.h"
#include "dns.h"
#include "dnscache.h"
#include "json.h"
#include "rfc5322.h"

struct policy {
	struct ws_dns *dns;
	struct dnscache *cache;
	unsigned long queries, hits;
};

struct policy *
policy_new(struct ws_dns *dns)
{
	struct policy *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->dns = dns;
	struct dnscache_config cc = {.max_entries = POLICY_CACHE_ENTRIES,
				     .max_ttl = DNSCACHE_DEFAULT_MAX_TTL,
				     .neg_max_ttl = DNSCACHE_DEFAULT_NEG_MAX_TTL};
	p->cache = dnscache_new(&cc);
	if (!p->cache) {
		free(p);
		return NULL;
	}
	return p;
}

void
policy_free(struct policy *p)
{
	if (!p)
		return;
	dnscache_free(p->cache);
	free(p);
}

void
policy_counters(const struct policy *p, unsigned long *queries, unsigned long *hits)
{
	struct dnscache_stats st;
	dnscache_stats(p->cache, &st);
	*queries = (unsigned long)st.misses;
	*hits = (unsigned long)st.hits;
}

/* ---- PSL: once per process ---- */

static psl_ctx_t *psl_loaded;
static const psl_ctx_t *psl_ctx;
static const char *psl_source;

const psl_ctx_t *
policy_psl(const char **source)
{
	if (!psl_ctx) {
		psl_loaded = psl_load_file(POLICY_PSL_FILE);
		if (psl_loaded) {
			psl_ctx = psl_loaded;
			psl_source = POLICY_PSL_FILE;
		} else {
			psl_ctx = psl_builtin(); /* static data inside libpsl: never freed */
			psl_source = "builtin";
		}
	}
	if (source)
		*source = psl_source;
	return psl_ctx;
}

void
policy_psl_release(void)
{
	psl_free(psl_loaded);
	psl_loaded = NULL;
	psl_ctx = NULL;
}

/* An answer for the evaluators: from the cache, or asked and cached. A
 * NULL (out of memory) becomes a temporary failure, as RFC 7208 and 7489
 * treat any failure to get an answer. */
static const struct ws_dns_answer *
lookup(struct policy *p, const char *name, enum ws_dns_type type, int64_t now,
       struct ws_dns_answer *fallback)
{
	const struct ws_dns_answer *a = dnscache_resolve(p->cache, p->dns, name, type, now);
	if (a)
		return a;
	*fallback = (struct ws_dns_answer){.status = WS_DNS_TEMPFAIL, .rcode = -1};
	snprintf(fallback->why, sizeof(fallback->why), "out of memory");
	return fallback;
}

/* ---- SPF ---- */

static int
run_spf(struct policy *p, struct spf_eval *ev, int64_t now, struct spf_outcome *out)
{
	struct spf_query q;
	unsigned n = 0;
	while (spf_step(ev, &q) == SPF_STEP_NEED_DNS) {
		if (++n > POLICY_MAX_QUERIES)
			return -1;
		struct ws_dns_answer fb;
		spf_answer(ev, lookup(p, q.name, q.type, now, &fb));
	}
	*out = *spf_outcome(ev);
	return 0;
}

int
policy_spf(struct policy *p, const struct policy_spf_in *in, struct policy_spf_out *out,
	   char *why, size_t whylen)
{
	memset(out, 0, sizeof(*out));
	struct spf_params sp = {.helo = in->helo ? in->helo : "",
				.mail_from = in->mail_from,
				.receiver = in->receiver,
				.now = in->now};
	if (!in->client_ip || spf_ip_parse(in->client_ip, &sp.ip) != 0) {
		snprintf(why, whylen, "--client-ip '%s' is not an IPv4 or IPv6 address",
			 in->client_ip ? in->client_ip : "");
		return -1;
	}
	out->null_sender = !in->mail_from || !in->mail_from[0];
	snprintf(out->mail_from, sizeof(out->mail_from), "%s", in->mail_from ? in->mail_from : "");
	snprintf(out->helo_name, sizeof(out->helo_name), "%s", in->helo ? in->helo : "");

	struct spf_eval *ev = spf_eval_new_mailfrom(&sp);
	if (!ev)
		goto oom;
	int r = run_spf(p, ev, in->now, &out->mailfrom);
	spf_eval_free(ev);
	if (r != 0)
		goto runaway;
	out->ran = true;
	/* RFC 7208 2.3: the HELO identity is checked on its own when a HELO was
	 * given; for a null sender the MAIL FROM check above already is that
	 * check (postmaster@HELO), so the answers come from the cache. */
	if (in->helo && in->helo[0]) {
		ev = spf_eval_new_helo(&sp);
		if (!ev)
			goto oom;
		r = run_spf(p, ev, in->now, &out->helo);
		spf_eval_free(ev);
		if (r != 0)
			goto runaway;
		out->helo_ran = true;
	}
	return 0;
oom:
	snprintf(why, whylen, "out of memory");
	return -1;
runaway:
	snprintf(why, whylen, "SPF evaluation asked more than %d queries", POLICY_MAX_QUERIES);
	return -1;
}

/* ---- DMARC ---- */

static enum dmarc_auth
from_spf(enum spf_result r)
{
	switch (r) {
	case SPF_RESULT_PASS: return DMARC_AUTH_PASS;
	case SPF_RESULT_FAIL: return DMARC_AUTH_FAIL;
	case SPF_RESULT_SOFTFAIL: return DMARC_AUTH_SOFTFAIL;
	case SPF_RESULT_NEUTRAL: return DMARC_AUTH_NEUTRAL;
	case SPF_RESULT_TEMPERROR: return DMARC_AUTH_TEMPERROR;
	case SPF_RESULT_PERMERROR: return DMARC_AUTH_PERMERROR;
	case SPF_RESULT_NONE: break;
	}
	return DMARC_AUTH_NONE;
}

static enum dmarc_auth
from_dkim(enum dkim_result r)
{
	switch (r) {
	case DKIM_PASS: return DMARC_AUTH_PASS;
	case DKIM_FAIL: return DMARC_AUTH_FAIL;
	case DKIM_NEUTRAL: return DMARC_AUTH_NEUTRAL;
	case DKIM_POLICY: return DMARC_AUTH_POLICY;
	case DKIM_PERMERROR: return DMARC_AUTH_PERMERROR;
	case DKIM_TEMPERROR: return DMARC_AUTH_TEMPERROR;
	case DKIM_NONE: break;
	}
	return DMARC_AUTH_NONE;
}

int
policy_dmarc(struct policy *p, const struct policy_dmarc_cfg *cfg, const struct rfc5322_header *hdr,
	     const struct dkim_verifier *v, const struct policy_spf_out *spf,
	     const struct dmarc_arc_input *arc, struct policy_dmarc_out *out, char *why,
	     size_t whylen)
{
	memset(out, 0, sizeof(*out));
	char *from[POLICY_MAX_FROM];
	size_t nfrom = 0;
	struct dmarc_dkim dk[DMARC_MAX_DKIM];
	size_t ndk = 0;
	struct dmarc_eval *ev = NULL;
	int rc = -1;

	for (size_t i = 0; i < hdr->nfields && nfrom < POLICY_MAX_FROM; i++) {
		const struct rfc5322_field *f = &hdr->fields[i];
		if (!rfc5322_field_is(hdr, f, "From", 4))
			continue;
		size_t len;
		const char *val = rfc5322_field_value(hdr, f, &len);
		if (!(from[nfrom] = malloc(len + 1))) {
			snprintf(why, whylen, "out of memory");
			goto out;
		}
		memcpy(from[nfrom], val, len);
		from[nfrom][len] = '\0';
		nfrom++;
	}
	size_t nsig = v ? dkim_verifier_count(v) : 0;
	for (size_t i = 0; i < nsig && ndk < DMARC_MAX_DKIM; i++) {
		const struct dkim_sig_result *r = dkim_verifier_result(v, i);
		if (!r->parsed || !r->sig.d[0])
			continue; /* no usable d=: nothing to align */
		dk[ndk++] = (struct dmarc_dkim){.domain = r->sig.d, .result = from_dkim(r->result)};
	}
	bool have_spf = spf && spf->ran;
	struct dmarc_inputs in = {
		.from = (const char *const *)from,
		.nfrom = nfrom,
		.spf_result = have_spf ? from_spf(spf->mailfrom.result) : DMARC_AUTH_NONE,
		.spf_domain = have_spf && spf->mailfrom.domain[0] ? spf->mailfrom.domain : NULL,
		.dkim = dk,
		.ndkim = ndk,
		.method = cfg->method,
		.psl = cfg->psl,
		.cross_check = cfg->psl != NULL,
		.random_pct = cfg->random_pct,
	};
	ev = dmarc_eval_new(&in, why, whylen);
	if (!ev)
		goto out;
	struct dmarc_query q;
	enum dmarc_step st;
	unsigned n = 0;
	while ((st = dmarc_step(ev, &q)) == DMARC_STEP_NEED_DNS) {
		if (++n > POLICY_MAX_QUERIES) {
			snprintf(why, whylen, "DMARC evaluation asked more than %d queries",
				 POLICY_MAX_QUERIES);
			goto out;
		}
		struct ws_dns_answer fb;
		dmarc_answer(ev, lookup(p, q.name, q.type, cfg->now, &fb));
	}
	if (st != DMARC_STEP_DONE) {
		snprintf(why, whylen, "DMARC evaluation failed: %s", dmarc_eval_result(ev)->reason);
		goto out;
	}
	out->res = *dmarc_eval_result(ev);
	struct dmarc_arc_input none = {.chain = DMARC_ARC_NONE};
	if (dmarc_arc_override(&out->res, arc ? arc : &none, cfg->trusted, cfg->ntrusted,
			       &out->ov) != 0) {
		snprintf(why, whylen, "ARC override: %s", out->ov.reason);
		goto out;
	}
	rc = 0;
out:
	dmarc_eval_free(ev);
	for (size_t i = 0; i < nfrom; i++)
		free(from[i]);
	return rc;
}

/* ---- output ---- */

static void
outcome_json(struct json *j, const struct spf_outcome *o)
{
	json_key(j, "result");
	json_str(j, spf_result_name(o->result));
	json_key(j, "domain");
	json_str(j, o->domain);
	json_key(j, "reason");
	json_str(j, o->reason);
}

void
policy_spf_json(struct json *j, const struct policy_spf_out *spf)
{
	if (!spf->ran)
		return;
	json_key(j, "spf");
	json_obj(j);
	outcome_json(j, &spf->mailfrom);
	json_key(j, "identity");
	json_str(j, spf->null_sender ? "helo" : "mailfrom");
	if (spf->mailfrom.mechanism[0]) {
		json_key(j, "mechanism");
		json_str(j, spf->mailfrom.mechanism);
	}
	if (spf->mailfrom.explanation[0]) {
		json_key(j, "explanation");
		json_str(j, spf->mailfrom.explanation);
	}
	if (spf->helo_ran) {
		json_key(j, "helo");
		json_obj(j);
		outcome_json(j, &spf->helo);
		json_obj_end(j);
	}
	json_obj_end(j);
}

void
policy_dmarc_json(struct json *j, const struct policy_dmarc_out *d)
{
	const struct dmarc_result *r = &d->res;
	json_key(j, "dmarc");
	json_obj(j);
	json_key(j, "result");
	json_str(j, dmarc_res_name(r->result));
	json_key(j, "policy");
	json_str(j, dmarc_policy_name(r->policy));
	json_key(j, "disposition");
	json_str(j, dmarc_policy_name(r->disposition));
	json_key(j, "from_domain");
	json_str(j, r->from_domain);
	json_key(j, "record_domain");
	json_str(j, r->record_domain);
	json_key(j, "org_domain");
	json_str(j, r->org_domain);
	json_key(j, "org_method");
	json_str(j, dmarc_org_method_name(r->org_method));
	if (r->psl_org_domain[0] && r->walk_org_domain[0]) {
		json_key(j, "org_disagree");
		json_bool(j, r->org_disagree);
		json_key(j, "psl_org_domain");
		json_str(j, r->psl_org_domain);
		json_key(j, "walk_org_domain");
		json_str(j, r->walk_org_domain);
	}
	json_key(j, "aligned");
	json_obj(j);
	json_key(j, "spf");
	json_bool(j, r->spf_aligned);
	json_key(j, "dkim");
	json_bool(j, r->dkim_aligned);
	json_obj_end(j);
	json_key(j, "pct");
	json_int(j, r->pct);
	json_key(j, "sampled_out");
	json_bool(j, r->sampled_out);
	json_key(j, "testing");
	json_bool(j, r->testing);
	json_key(j, "reason");
	json_str(j, r->reason);
	json_key(j, "override");
	if (d->ov.applied) {
		json_obj(j);
		json_key(j, "by");
		json_str(j, d->ov.by);
		json_key(j, "sealer");
		json_str(j, d->ov.sealer);
		json_key(j, "instance");
		json_int(j, d->ov.instance);
		json_key(j, "reason");
		json_str(j, d->ov.reason);
		json_obj_end(j);
	} else {
		json_null(j);
	}
	json_obj_end(j);
}

void
policy_spf_authres(struct authres *ar, const struct policy_spf_out *spf)
{
	if (!spf->ran)
		return;
	/* RFC 8601 2.7.2: smtp.mailfrom for the MAIL FROM identity; for a null
	 * reverse-path the identity checked was the HELO (RFC 7208 2.4). */
	struct authres_prop props[2];
	size_t n = 0;
	if (!spf->null_sender)
		props[n++] = (struct authres_prop){"smtp", "mailfrom", spf->mail_from};
	if (spf->helo_name[0])
		props[n++] = (struct authres_prop){"smtp", "helo", spf->helo_name};
	const struct spf_outcome *o = &spf->mailfrom;
	authres_add(ar, "spf", spf_result_name(o->result),
		    o->result == SPF_RESULT_PASS ? NULL : o->reason, props, n);
}

void
policy_dmarc_authres(struct authres *ar, const struct policy_dmarc_out *d)
{
	const struct dmarc_result *r = &d->res;
	char reason[512];
	/* The result stays what DMARC said; an ARC override is reported beside
	 * it (policy.override), never as a pass (RFC 8617 7.2 is local policy). */
	if (d->ov.applied)
		snprintf(reason, sizeof(reason), "p=%s dis=none; ARC override by %s (i=%u)",
			 dmarc_policy_name(r->policy), d->ov.sealer, d->ov.instance);
	else
		snprintf(reason, sizeof(reason), "p=%s dis=%s", dmarc_policy_name(r->policy),
			 dmarc_policy_name(r->disposition));
	struct authres_prop props[] = {
		{"header", "from", r->from_domain[0] ? r->from_domain : NULL},
		{"policy", "override", d->ov.applied ? d->ov.by : NULL},
		{"policy", "arc-sealer", d->ov.applied ? d->ov.sealer : NULL},
	};
	bool decided = r->result == DMARC_RES_PASS || r->result == DMARC_RES_FAIL;
	authres_add(ar, "dmarc", dmarc_res_name(r->result), decided ? reason : r->reason, props,
		    3);
}

/* ---- the verify command's view ---- */

void
policy_cli_init(struct policy_cli *pc)
{
	memset(pc, 0, sizeof(*pc));
	pc->dmarc.method = DMARC_ORG_TREEWALK; /* RFC 9989 */
}

static int
parse_trusted(struct policy_cli *pc, const char *arg, char *why, size_t whylen)
{
	free(pc->trusted_buf);
	pc->dmarc.ntrusted = 0;
	size_t n = strlen(arg);
	if (!(pc->trusted_buf = malloc(n + 1))) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	memcpy(pc->trusted_buf, arg, n + 1);
	char *s = pc->trusted_buf;
	for (;;) {
		char *comma = strchr(s, ',');
		if (comma)
			*comma = '\0';
		if (*s) {
			if (pc->dmarc.ntrusted == DMARC_MAX_TRUSTED_SEALERS) {
				snprintf(why, whylen, "--trusted-sealers: more than %d domains",
					 DMARC_MAX_TRUSTED_SEALERS);
				return -1;
			}
			pc->trusted[pc->dmarc.ntrusted++] = s;
		}
		if (!comma)
			break;
		s = comma + 1;
	}
	pc->dmarc.trusted = pc->trusted;
	return 0;
}

int
policy_cli_option(struct policy_cli *pc, int opt, const char *arg, char *why, size_t whylen)
{
	switch (opt) {
	case 0x100:
		pc->spf_enabled = true;
		pc->spf_in.client_ip = arg;
		return 0;
	case 0x101:
		pc->spf_in.helo = arg;
		return 0;
	case 0x102:
		pc->spf_in.mail_from = arg;
		return 0;
	case 0x103:
		return parse_trusted(pc, arg, why, whylen);
	case 0x104:
		if (strcmp(arg, "psl") == 0)
			pc->dmarc.method = DMARC_ORG_PSL;
		else if (strcmp(arg, "treewalk") == 0)
			pc->dmarc.method = DMARC_ORG_TREEWALK;
		else {
			snprintf(why, whylen, "--dmarc-method wants psl or treewalk, not '%s'", arg);
			return -1;
		}
		return 0;
	case 0x105: {
		char *end;
		unsigned long v = strtoul(arg, &end, 10);
		if (!*arg || *end || v > 99) {
			snprintf(why, whylen, "--random-pct wants 0..99, not '%s'", arg);
			return -1;
		}
		pc->dmarc.random_pct = (unsigned)v;
		pc->pct_fixed = true;
		return 0;
	}
	default:
		snprintf(why, whylen, "unknown policy option");
		return -1;
	}
}

int
policy_cli_start(struct policy_cli *pc, struct ws_dns *dns, int64_t now, char *why, size_t whylen)
{
	if (pc->spf_enabled) {
		struct spf_ip ip;
		if (spf_ip_parse(pc->spf_in.client_ip, &ip) != 0) {
			snprintf(why, whylen, "--client-ip '%s' is not an IPv4 or IPv6 address",
				 pc->spf_in.client_ip);
			return -1;
		}
	} else if (pc->spf_in.helo || pc->spf_in.mail_from) {
		snprintf(why, whylen, "--helo and --mail-from need --client-ip (SPF checks an IP)");
		return -1;
	}
	pc->spf_in.now = now;
	pc->dmarc.now = now;
	const char *src;
	pc->dmarc.psl = policy_psl(&src);
	if (!pc->dmarc.psl && pc->dmarc.method == DMARC_ORG_PSL) {
		snprintf(why, whylen, "--dmarc-method psl: no public suffix list (%s, builtin)",
			 POLICY_PSL_FILE);
		return -1;
	}
	if (!(pc->pol = policy_new(dns))) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

int
policy_cli_message(struct policy_cli *pc, const struct rfc5322_header *hdr,
		   const struct dkim_verifier *v, const struct dmarc_arc_input *arc, char *why,
		   size_t whylen)
{
	memset(&pc->spf, 0, sizeof(pc->spf));
	if (pc->spf_enabled && policy_spf(pc->pol, &pc->spf_in, &pc->spf, why, whylen) != 0)
		return -1;
	if (!pc->pct_fixed) { /* pct sampling wants a fresh draw per message */
		/* from a pool filled POLICY_RANDOM_POOL draws at a time: a system
		 * call costs ~1 us here, as much as the rest of DMARC */
		if (pc->rnd_next == 0) {
			if (getrandom(pc->rnd, sizeof(pc->rnd), 0) != (ssize_t)sizeof(pc->rnd))
				for (size_t i = 0; i < POLICY_RANDOM_POOL; i++) /* no entropy: still varies */
					pc->rnd[i] = (uint32_t)time(NULL) * 2654435761u + (uint32_t)i * 40503u;
			pc->rnd_next = POLICY_RANDOM_POOL;
		}
		pc->dmarc.random_pct = pc->rnd[--pc->rnd_next] % 100;
	}
	return policy_dmarc(pc->pol, &pc->dmarc, hdr, v, &pc->spf, arc, &pc->dm, why, whylen);
}

void
policy_cli_json(const struct policy_cli *pc, struct json *j)
{
	policy_spf_json(j, &pc->spf);
	policy_dmarc_json(j, &pc->dm);
}

void
policy_cli_authres(const struct policy_cli *pc, struct authres *ar)
{
	policy_spf_authres(ar, &pc->spf);
	policy_dmarc_authres(ar, &pc->dm);
}

void
policy_cli_end(struct policy_cli *pc)
{
	policy_free(pc->pol);
	free(pc->trusted_buf);
	policy_psl_release();
	memset(pc, 0, sizeof(*pc));
}
