/*
 * libFuzzer target: check_host() as a whole. Byte 0 picks the client address
 * and which DNS outcomes fail; the rest, split at '\n', are the TXT records of
 * example.com, a.example.com, b.example.com, c.example.com (the last two
 * published twice when byte 0 says so). Fixed A/AAAA/MX/PTR data fills the
 * rest. Checks: the evaluation ends within the query bound the RFC limits
 * imply, every query names a name it may ask, and only fail explains.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* record lookups + (10 terms x (1 + 10 hosts)) + %{p} + exp, generously */
#define MAX_QUERIES 400

static const char *const txt_owner[] = {"example.com", "a.example.com", "b.example.com",
					"c.example.com"};

static void
answer(const char *name, enum ws_dns_type type, unsigned mode, const uint8_t *const recs[4],
       const size_t lens[4], struct ws_dns_answer *a, struct ws_dns_rr *rrs)
{
	memset(a, 0, sizeof(*a));
	a->rrs = rrs;
	a->status = WS_DNS_NXDOMAIN;
	if ((mode & 0x10) && strncasecmp(name, "t", 1) == 0) {
		a->status = WS_DNS_TEMPFAIL;
		return;
	}
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(name, txt_owner[i]) != 0)
			continue;
		a->status = WS_DNS_NODATA;
		if (type == WS_DNS_TXT && recs[i]) {
			unsigned copies = (i >= 2 && (mode & 0x20)) ? 2 : 1;
			for (unsigned k = 0; k < copies; k++) {
				rrs[a->count].type = WS_DNS_TXT;
				rrs[a->count].u.txt.data = (uint8_t *)(uintptr_t)recs[i];
				rrs[a->count].u.txt.len = lens[i];
				rrs[a->count].u.txt.nstrings = 1;
				a->count++;
			}
		} else if (type == WS_DNS_A) {
			rrs[0].type = WS_DNS_A;
			memcpy(rrs[0].u.a, (const uint8_t[]){192, 0, 2, (uint8_t)(i + 1)}, 4);
			a->count = 1;
		} else if (type == WS_DNS_MX) {
			for (int k = 0; k < 4; k++) {
				rrs[k].type = WS_DNS_MX;
				rrs[k].u.mx.host = (char *)(uintptr_t)txt_owner[k];
			}
			a->count = 4;
		}
		break;
	}
	if (type == WS_DNS_PTR && strstr(name, ".arpa")) {
		a->status = WS_DNS_NODATA;
		for (int k = 0; k < 4; k++) {
			rrs[k].type = WS_DNS_PTR;
			rrs[k].u.name = (char *)(uintptr_t)txt_owner[k];
		}
		a->count = 4;
	}
	if (a->count)
		a->status = WS_DNS_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return 0;
	unsigned mode = data[0];
	const uint8_t *recs[4] = {NULL, NULL, NULL, NULL};
	size_t lens[4] = {0, 0, 0, 0};
	size_t start = 1;
	for (int i = 0; i < 4 && start <= size; i++) {
		const uint8_t *nl = memchr(data + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - data) : size;
		recs[i] = data + start;
		lens[i] = end - start;
		start = end + 1;
	}
	static const char *const ips[] = {"192.0.2.1", "192.0.2.3", "2001:db8::1",
					  "::ffff:192.0.2.2"};
	struct spf_params p = {.helo = "helo.example.com",
			       .mail_from = (mode & 0x40) ? "" : "user@example.com",
			       .receiver = "mx.example.net",
			       .now = 1700000000,
			       .default_exp = (mode & 0x80) ? NULL : "default"};
	if (spf_ip_parse(ips[mode & 3], &p.ip) != 0)
		abort();
	/* with a null sender, the HELO identity must also land on example.com */
	if (mode & 0x40)
		p.helo = "example.com";
	struct spf_eval *ev = (mode & 0x4) ? spf_eval_new_helo(&p) : spf_eval_new_mailfrom(&p);
	if (!ev)
		return 0;
	struct spf_query q;
	unsigned n = 0;
	/* the answer's text must be copied: give it a buffer that is rewritten */
	uint8_t *scratch[4] = {NULL, NULL, NULL, NULL};
	for (int i = 0; i < 4; i++) {
		scratch[i] = malloc(lens[i] + 1);
		if (!scratch[i])
			goto out;
		if (recs[i])
			memcpy(scratch[i], recs[i], lens[i]);
		scratch[i][lens[i]] = '\0';
	}
	const uint8_t *const srecs[4] = {recs[0] ? scratch[0] : NULL, recs[1] ? scratch[1] : NULL,
					 recs[2] ? scratch[2] : NULL, recs[3] ? scratch[3] : NULL};
	while (spf_step(ev, &q) == SPF_STEP_NEED_DNS) {
		if (++n > MAX_QUERIES || !q.name || strlen(q.name) > SPF_DOMAIN_MAX || !q.name[0])
			abort();
		struct ws_dns_rr rrs[8];
		struct ws_dns_answer a;
		memset(rrs, 0, sizeof(rrs));
		answer(q.name, q.type, mode, srecs, lens, &a, rrs);
		if (spf_answer(ev, &a) != 0)
			abort();
		for (int i = 0; i < 4; i++)
			memset(scratch[i], 'X', lens[i]);
		for (int i = 0; i < 4; i++)
			if (recs[i])
				memcpy(scratch[i], recs[i], lens[i]);
	}
	const struct spf_outcome *o = spf_outcome(ev);
	if (o->result > SPF_RESULT_PERMERROR || !o->reason[0])
		abort();
	if (o->result != SPF_RESULT_FAIL && o->explanation[0])
		abort();
out:
	for (int i = 0; i < 4; i++)
		free(scratch[i]);
	spf_eval_free(ev);
	return 0;
}
