/*
 * fuzz_tlsrpt_report: tlsrpt_report_parse on arbitrary bytes. What must
 * hold: whatever parses is emitted by tlsrpt_report_json, the emitted JSON
 * parses again, and emitting that gives the same bytes (a fixed point); the
 * emitted JSON never carries the tolerated oddities of its input (string
 * mx-host, "" fields, wrong types).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsrpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[128];
	struct tlsrpt_report *r = tlsrpt_report_parse((const char *)data, size, why, sizeof(why));
	if (!r)
		return 0;
	char *j1 = NULL, *j2 = NULL;
	size_t l1, l2;
	if (tlsrpt_report_json(r, &j1, &l1) < 0)
		abort();
	struct tlsrpt_report *back = tlsrpt_report_parse(j1, l1, why, sizeof(why));
	if (!back)
		abort();
	if (back->anomalies & (TLSRPT_ANOM_MX_HOST_STRING | TLSRPT_ANOM_EMPTY_FIELD | TLSRPT_ANOM_TYPE))
		abort();
	if (back->n_policies != r->n_policies)
		abort();
	if (tlsrpt_report_json(back, &j2, &l2) < 0 || l1 != l2 || memcmp(j1, j2, l1) != 0)
		abort();
	free(j1);
	free(j2);
	tlsrpt_report_free(back);
	tlsrpt_report_free(r);
	return 0;
}
