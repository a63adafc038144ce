/*
 * The ARC side of the DMARC override: the ARC validator's chain turned into
 * the inputs of dmarc_arc_override (auth/dmarc.h).
 */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arc.h"

struct policy_arc_store {
	struct dmarc_arc_instance inst[ARC_MAX_SETS];
	struct dmarc_arc_method methods[ARC_MAX_SETS][DMARC_ARC_MAX_RESULTS];
	char text[ARC_MAX_SETS][DMARC_ARC_TEXT_MAX]; /* the methods' strings */
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
		/* the AAR's results as the control plane reads them (one parser,
		 * auth/dmarc.h), so the ARC override is the same on both paths */
		in->nresults = dmarc_arc_results(sr->aar, sr->aar_len, st->methods[out->ninst],
						 DMARC_ARC_MAX_RESULTS, st->text[out->ninst],
						 sizeof(st->text[0]));
		out->ninst++;
	}
	out->inst = st->inst;
}
