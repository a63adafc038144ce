/* Tag lists, DKIM-Signature and key record parsing: no crash, no leak, and
 * parsed fields stay inside their bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dkim.h"
#include "taglist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *why = NULL;
	struct taglist tl;
	if (taglist_parse(s, size, &tl, &why) == 0) {
		for (size_t i = 0; i < tl.n; i++)
			if (tl.tags[i].value < s || tl.tags[i].value + tl.tags[i].value_len > s + size ||
			    tl.tags[i].spec_end > size || tl.tags[i].eq_end > tl.tags[i].value_off + 1 + size)
				abort();
	}
	static struct dkim_sig sig;
	for (int k = 0; k < 3; k++) {
		if (dkim_sig_parse((enum dkim_sig_kind)k, s, size, 0, &sig, &why) == 0) {
			if (sig.b_cut > sig.b_cut_end || sig.b_cut_end > size || sig.nh > DKIM_MAX_SIGNED)
				abort();
		}
	}
	struct dkim_key key;
	if (dkim_key_parse(s, size, &key, &why) == 0)
		dkim_key_clear(&key);
	return 0;
}
