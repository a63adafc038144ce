/*
 * fuzz_cpm: the control-plane protocol decoder on arbitrary datagrams. What
 * must hold for any input: every decoded string lies inside the datagram,
 * and a datagram that decodes fully re-encodes to the very same bytes (the
 * encoding is canonical, so nothing was skipped or guessed).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *lo, *hi;

static void
in_range(struct cpm_str s)
{
	if (s.len && ((const uint8_t *)s.p < lo || (const uint8_t *)s.p + s.len > hi))
		abort();
}

static void
check_strings(const struct cpm_msg *m)
{
	if (m->type == CPM_MESSAGE_RECORD) {
		const struct cpm_message *r = &m->u.message;
		in_range(r->helo);
		in_range(r->mail_from);
		for (uint32_t i = 0; i < r->nrcpts; i++)
			in_range(r->rcpts[i]);
		for (uint32_t i = 0; i < r->nfrom; i++)
			in_range(r->from[i]);
		for (uint32_t i = 0; i < r->narc; i++)
			in_range(r->arc[i].aar);
		in_range(r->gap);
	} else if (m->type == CPM_VERDICT) {
		const struct cpm_verdict *v = &m->u.verdict;
		const struct cpm_str all[] = {
			v->why, v->spf_mail_from, v->spf_helo_name, v->spf.domain, v->spf.mechanism,
			v->spf.reason, v->spf.explanation, v->helo.domain, v->helo.mechanism,
			v->helo.reason, v->helo.explanation, v->from_domain, v->record_domain,
			v->org_domain, v->psl_org_domain, v->walk_org_domain, v->dmarc_reason,
			v->arc_by, v->arc_sealer, v->arc_reason, v->override, v->disposition,
			v->authres,
		};
		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
			in_range(all[i]);
	} else if (m->type == CPM_KEY_REQUEST) {
		in_range(m->u.key_request.name);
	} else if (m->type == CPM_SESSION_RECORD) {
		const struct cpm_session *s = &m->u.session;
		in_range(s->helo);
		for (uint32_t i = 0; i < s->nrcpt_domains; i++)
			in_range(s->rcpt_domains[i]);
		in_range(s->tls.sni);
		for (uint32_t i = 0; i < s->tls.ncert_names; i++)
			in_range(s->tls.cert_names[i]);
		in_range(s->tls.issuer);
		for (uint32_t i = 0; i < s->nanomalies; i++)
			in_range(s->anomalies[i].name);
	} else if (m->type == CPM_STS_ANSWER) {
		for (uint32_t i = 0; i < m->u.sts_answer.nmx; i++)
			in_range(m->u.sts_answer.mx[i]);
		in_range(m->u.sts_answer.why);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cpm_msg m;
	static uint8_t again[CPM_MAX_DATAGRAM];
	struct cpm_reader r;
	struct cpm_writer w;
	char why[128];
	int rc;
	lo = data;
	hi = data + size;
	cpm_reader_init(&r, data, size);
	cpm_writer_init(&w, again, sizeof(again));
	while ((rc = cpm_decode_next(&r, &m, why, sizeof(why))) == 1) {
		check_strings(&m);
		if (cpm_encode(&w, &m) != 0)
			abort(); /* what decoded must encode */
	}
	if (rc == 0 && (w.len != size || memcmp(again, data, size) != 0))
		abort();
	return 0;
}
