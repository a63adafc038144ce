/*
 * The ARC side of the DMARC override, kept in its own file so that the ARC
 * verifier (auth/arc.h, another branch) connects here and nowhere else.
 */
#include "policy.h"

#include <string.h>

void
policy_arc_input_from_message(const struct rfc5322_header *hdr, struct dmarc_arc_input *out)
{
	(void)hdr; /* ARC not merged yet: every message is "no ARC chain" */
	memset(out, 0, sizeof(*out));
	out->chain = DMARC_ARC_NONE;
}
