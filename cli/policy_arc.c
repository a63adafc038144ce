/*
 * The ARC side of the DMARC override: the ARC validator's chain turned into
 * the inputs of dmarc_arc_override (auth/dmarc.h).
 */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arc.h"
#include "authres.h"

#define ARC_NAME_MAX 32u

struct arc_method_copy {
	char method[ARC_NAME_MAX], result[ARC_NAME_MAX], domain[DMARC_DOMAIN_MAX + 1];
};

struct policy_arc_store {
	struct dmarc_arc_instance inst[ARC_MAX_SETS];
	struct dmarc_arc_method methods[ARC_MAX_SETS][AUTHRES_MAX_METHODS];
	struct arc_method_copy copies[ARC_MAX_SETS][AUTHRES_MAX_METHODS];
	char sealer[ARC_MAX_SETS][DKIM_MAX_DOMAIN + 1];
};

struct policy_arc_store *
policy_arc_store_new(void)
{
	return calloc(1, sizeof(struct policy_arc_store));
}

void
policy_arc_store_free(struct policy_arc_store *st)
{
	free(st);
}

/* The value of ptype.property in a result, decoded, or "" */
static void
prop(const struct authres_method *m, const char *ptype, const char *property, char *out,
     size_t cap)
{
	out[0] = '\0';
	for (size_t i = 0; i < m->nprops; i++) {
		if (authres_span_is(&m->props[i].ptype, ptype) &&
		    authres_span_is(&m->props[i].property, property)) {
			if (authres_span_copy(&m->props[i].value, out, cap) == (size_t)-1)
				out[0] = '\0';
			return;
		}
	}
}

void
policy_arc_input_from_chain(const struct arc_chain *ch, struct policy_arc_store *st,
			    struct dmarc_arc_input *out)
{
	memset(out, 0, sizeof(*out));
	out->chain = ch->result == ARC_PASS   ? DMARC_ARC_PASS
		     : ch->result == ARC_FAIL ? DMARC_ARC_FAIL
					      : DMARC_ARC_NONE;
	if (!st)
		return;
	for (unsigned k = 0; k < ch->nsets && k < ARC_MAX_SETS; k++) {
		const struct arc_set_result *sr = &ch->sets[k];
		struct dmarc_arc_instance *in = &st->inst[out->ninst];
		snprintf(st->sealer[out->ninst], sizeof(st->sealer[0]), "%s", sr->as.d);
		in->instance = sr->instance;
		in->sealer = st->sealer[out->ninst];
		in->results = st->methods[out->ninst];
		in->nresults = 0;
		struct authres_parsed ar;
		const char *why;
		size_t off;
		if (sr->aar && authres_parse(sr->aar, sr->aar_len, &ar, &why, &off) == 0) {
			for (size_t i = 0; i < ar.nmethods; i++) {
				const struct authres_method *m = &ar.methods[i];
				struct arc_method_copy *c = &st->copies[out->ninst][in->nresults];
				if (authres_span_copy(&m->method, c->method, sizeof(c->method)) ==
					    (size_t)-1 ||
				    authres_span_copy(&m->result, c->result, sizeof(c->result)) ==
					    (size_t)-1)
					continue;
				if (strcmp(c->method, "dkim") == 0) {
					prop(m, "header", "d", c->domain, sizeof(c->domain));
				} else if (strcmp(c->method, "dmarc") == 0) {
					prop(m, "header", "from", c->domain, sizeof(c->domain));
				} else if (strcmp(c->method, "spf") == 0) {
					char mf[DMARC_DOMAIN_MAX + 68];
					prop(m, "smtp", "mailfrom", mf, sizeof(mf));
					const char *at = strrchr(mf, '@');
					const char *dom = at ? at + 1 : mf;
					size_t dl = strlen(dom);
					if (dl >= sizeof(c->domain))
						dl = 0; /* too long to be a domain: none */
					memcpy(c->domain, dom, dl);
					c->domain[dl] = '\0';
				} else {
					c->domain[0] = '\0';
				}
				st->methods[out->ninst][in->nresults] = (struct dmarc_arc_method){
					.method = c->method,
					.result = c->result,
					.domain = c->domain[0] ? c->domain : NULL,
				};
				in->nresults++;
			}
		}
		out->ninst++;
	}
	out->inst = st->inst;
}
