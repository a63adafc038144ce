/* Authentication-Results and AAR parsing: no crash, every span inside the
 * input, limits held, decoding within bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arc.h"
#include "authres.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
in_bounds(const struct authres_span *s, const char *base, size_t size)
{
	if (s->len && (s->p < base || s->p + s->len > base + size))
		abort();
	char buf[AUTHRES_MAX_VALUE + 1];
	size_t n = authres_span_copy(s, buf, sizeof(buf));
	if (n != (size_t)-1 && n > AUTHRES_MAX_VALUE)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct authres_parsed ar;
	const char *s = (const char *)data, *why = NULL;
	size_t off = 0;
	if (authres_parse(s, size, &ar, &why, &off) == 0) {
		if (ar.nmethods > AUTHRES_MAX_METHODS)
			abort();
		in_bounds(&ar.authserv_id, s, size);
		for (size_t i = 0; i < ar.nmethods; i++) {
			const struct authres_method *m = &ar.methods[i];
			if (m->nprops > AUTHRES_MAX_PROPS || m->method.len == 0 || m->result.len == 0)
				abort();
			in_bounds(&m->method, s, size);
			in_bounds(&m->result, s, size);
			in_bounds(&m->reason, s, size);
			in_bounds(&m->clause, s, size);
			for (size_t k = 0; k < m->nprops; k++) {
				in_bounds(&m->props[k].ptype, s, size);
				in_bounds(&m->props[k].property, s, size);
				in_bounds(&m->props[k].value, s, size);
			}
		}
	} else if (!why || off > size) {
		abort();
	}
	unsigned inst;
	const char *pl;
	size_t pll;
	if (arc_aar_parse(s, size, &inst, &pl, &pll, &why) == 0 &&
	    (inst < 1 || inst > ARC_MAX_SETS || pl < s || pl + pll > s + size))
		abort();
	return 0;
}
