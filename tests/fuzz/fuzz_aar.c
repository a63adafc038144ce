/*
 * fuzz_aar: the ARC-Authentication-Results reader of the policy engine on
 * arbitrary text. What must hold: at most max results, each with a method
 * and a result, every string inside the caller's buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cppolicy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[8193], buf[1024];
	struct dmarc_arc_method m[POL_MAX_AAR_RESULTS];
	if (size >= sizeof(text))
		size = sizeof(text) - 1;
	memcpy(text, data, size);
	text[size] = '\0';
	size_t n = pol_parse_aar(text, m, POL_MAX_AAR_RESULTS, buf, sizeof(buf));
	if (n > POL_MAX_AAR_RESULTS)
		abort();
	for (size_t i = 0; i < n; i++) {
		const char *s[] = {m[i].method, m[i].result, m[i].domain};
		if (!s[0] || !s[1])
			abort();
		for (size_t k = 0; k < 3; k++)
			if (s[k] && (s[k] < buf || s[k] + strlen(s[k]) >= buf + sizeof(buf)))
				abort();
	}
	return 0;
}
