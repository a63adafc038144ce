/*
 * libFuzzer target for auth/zonefile. Besides "no crash, no leak", checks
 * what must hold for any input: the parse is deterministic, an error has a
 * reason and a line inside the input, every record formats to a line that
 * parses back to the same record, and TXT strings respect their limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zonefile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
count_lines(const uint8_t *d, size_t n)
{
	size_t l = 1;
	for (size_t i = 0; i < n; i++)
		l += d[i] == '\n';
	return l;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zonefile *z = NULL, *z2 = NULL;
	struct zonefile_error err, err2;
	int r = zonefile_parse(data, size, "fuzz.example", &z, &err);
	int r2 = zonefile_parse(data, size, "fuzz.example", &z2, &err2);
	if (r != r2)
		abort();
	if (r != 0) {
		if (z || !err.reason[0] || err.line > count_lines(data, size) ||
		    err.line != err2.line || strcmp(err.reason, err2.reason) != 0)
			abort();
		return 0;
	}
	if (z->count != z2->count || z->count > ZONEFILE_MAX_RECORDS)
		abort();
	for (size_t i = 0; i < z->count; i++) {
		const struct zonefile_rr *rr = &z->rrs[i];
		if (rr->type == ZONEFILE_TXT)
			for (size_t k = 0; k < rr->u.txt.count; k++)
				if (rr->u.txt.strings[k].len > ZONEFILE_MAX_TXT_STRING)
					abort();
		/* round trip: the presentation line parses to the same line */
		size_t n = zonefile_rr_format(rr, NULL, 0);
		char *line = malloc(n + 1);
		if (!line)
			abort();
		zonefile_rr_format(rr, line, n + 1);
		struct zonefile *back = NULL;
		struct zonefile_error berr;
		/* a line may exceed the line limit once escaped; that is not a bug */
		if (zonefile_parse((const uint8_t *)line, n, NULL, &back, &berr) == 0) {
			if (back->count != 1)
				abort();
			size_t m = zonefile_rr_format(&back->rrs[0], NULL, 0);
			char *again = malloc(m + 1);
			if (!again)
				abort();
			zonefile_rr_format(&back->rrs[0], again, m + 1);
			if (m != n || memcmp(line, again, n) != 0)
				abort();
			free(again);
			zonefile_free(back);
		} else if (n <= ZONEFILE_MAX_LINE) {
			abort();
		}
		free(line);
	}
	zonefile_free(z);
	zonefile_free(z2);
	return 0;
}
