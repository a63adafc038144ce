/*
 * fuzz_dmarc_eval: the whole evaluator on arbitrary input. The input is
 * split at '\n': line 1 is the From field value, line 2 an SPF domain,
 * line 3 a DKIM d=, and every further line answers the next query in turn
 * (first byte picks the DNS status, the rest is one TXT string; the
 * evaluator then sees NXDOMAIN once the lines run out). Checks: the
 * evaluator ends within DMARC_MAX_QUERIES, and the verdict is coherent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *
next_line(const uint8_t **p, const uint8_t *end)
{
	if (*p >= end)
		return NULL;
	const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
	char *s = malloc(n + 1);
	if (!s)
		abort();
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += n + (nl ? 1 : 0);
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	char *from = next_line(&p, end);
	char *spf = next_line(&p, end);
	char *dkim = next_line(&p, end);
	const char *fields[1] = {from};
	struct dmarc_dkim dk[1] = {{dkim, DMARC_AUTH_PASS}};
	struct dmarc_inputs in = {
		.from = fields, .nfrom = from ? 1 : 0,
		.spf_result = DMARC_AUTH_PASS, .spf_domain = spf,
		.dkim = dk, .ndkim = dkim ? 1 : 0,
		.random_pct = size % 100,
	};
	struct dmarc_eval *ev = dmarc_eval_new(&in, NULL, 0);
	if (!ev)
		abort(); /* these inputs are always acceptable */
	struct dmarc_query q;
	unsigned steps = 0;
	enum dmarc_step st;
	while ((st = dmarc_step(ev, &q)) == DMARC_STEP_NEED_DNS) {
		if (++steps > DMARC_MAX_QUERIES || strlen(q.name) > DMARC_DOMAIN_MAX + 7)
			abort();
		char *line = next_line(&p, end);
		struct ws_dns_rr rr = {.type = WS_DNS_TXT};
		struct ws_dns_answer a = {.status = WS_DNS_NXDOMAIN};
		if (line && line[0]) {
			static const enum ws_dns_status sts[] = {WS_DNS_OK, WS_DNS_OK, WS_DNS_OK,
				WS_DNS_NODATA, WS_DNS_TEMPFAIL, WS_DNS_BOGUS};
			a.status = sts[(unsigned char)line[0] % 6];
			rr.u.txt.data = (uint8_t *)line + 1;
			rr.u.txt.len = strlen(line + 1);
			rr.u.txt.nstrings = 1;
			if (a.status == WS_DNS_OK && q.type == WS_DNS_TXT) {
				a.count = 1;
				a.rrs = &rr;
			}
		}
		if (dmarc_answer(ev, &a) != 0)
			abort();
		free(line);
	}
	if (st != DMARC_STEP_DONE)
		abort();
	const struct dmarc_result *r = dmarc_eval_result(ev);
	if (!r || r->queries != steps)
		abort();
	if (r->result == DMARC_RES_PASS && !r->spf_aligned && !r->dkim_aligned)
		abort();
	if (r->result != DMARC_RES_FAIL && r->disposition != DMARC_P_NONE)
		abort();
	if (r->disposition > r->policy)
		abort();
	dmarc_eval_free(ev);
	free(from);
	free(spf);
	free(dkim);
	return 0;
}
