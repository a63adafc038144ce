/* dp_session: arbitrary segments (both directions, any order, flags, gaps)
 * never crash it, and a message that is not complete never has a DKIM result
 * other than temperror. Input: records [ctl][off_hi][off_lo][len][len bytes]:
 * ctl bit 0 = server side, bits 1-3 = FIN/SYN/RST, bit 4 = the offset is
 * taken back from the side's end so far (retransmission/overlap), else
 * forward from it (0: in order, more: bytes never sent, a hole); the
 * sequence number is the side's ISN + the offset. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum dkim_key_status
lookup(void *arg, const char *name, const struct dkim_key **key, const char **why)
{
	(void)arg;
	(void)name;
	*key = NULL;
	*why = "fuzz: no keys";
	return DKIM_KEY_TEMPFAIL;
}

static void
on_message(void *arg, const struct dp_message_record *rec)
{
	(void)arg;
	if (!rec->helo || !rec->mail_from || (rec->nrcpt && !rec->rcpt) || !rec->hdr)
		abort();
	if (rec->complete != (rec->gap_reason == NULL))
		abort();
	if (!rec->dkim)
		abort();
	for (size_t i = 0; i < dkim_verifier_count(rec->dkim); i++) {
		const struct dkim_sig_result *r = dkim_verifier_result(rec->dkim, i);
		if (!rec->complete && r->result != DKIM_TEMPERROR)
			abort();
		if (!r->reason)
			abort();
	}
}

static void
on_session(void *arg, const struct dp_session_record *rec)
{
	unsigned *n = arg;
	if (!rec->end_reason || !rec->helo)
		abort();
	/* the TLS part: names set, offsets within what was seen, facts coherent */
	for (size_t i = 0; i < rec->nanomalies; i++)
		if (!rec->anomalies[i].name || rec->anomalies[i].name[0] == '\0')
			abort();
	if (rec->nanomalies > 32 || (rec->tls.cert_seen && !rec->tls.issuer) ||
	    (rec->tls.ncert_names && !rec->tls.cert_names) ||
	    (rec->tls.server_hello && !rec->starttls_used) || (rec->tls_established && rec->tls_failed) ||
	    (rec->nrcpt_domains && !rec->rcpt_domains))
		abort();
	for (size_t i = 0; i < rec->nrcpt_domains; i++)
		if (!rec->rcpt_domains[i] || rec->rcpt_domains[i][0] == '\0')
			abort();
	(*n)++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned sessions = 0;
	struct dp_session_config cfg = {
		.verify = true,
		.now = 1700000000,
		.key_lookup = lookup,
		.on_message = on_message,
		.on_session = on_session,
		.arg = &sessions,
	};
	struct dp_session_info info = {.flow_id = 1, .midstream = size > 0 && (data[0] & 0x80)};
	struct dp_session *s = dp_session_new(&cfg, &info);
	if (!s)
		return 0;
	static const uint32_t isn[2] = {0xfffffff0u, 1000u};
	uint32_t end[2] = {0, 0};
	size_t i = 0;
	while (i + 4 <= size) {
		uint8_t ctl = data[i];
		uint32_t off = (uint32_t)data[i + 1] << 8 | data[i + 2];
		size_t len = data[i + 3];
		i += 4;
		if (len > size - i)
			len = size - i;
		int dir = ctl & 1;
		uint8_t flags = (uint8_t)(((ctl >> 1) & 1 ? 0x01 : 0) | ((ctl >> 2) & 1 ? 0x02 : 0) |
					  ((ctl >> 3) & 1 ? 0x04 : 0) | 0x10);
		uint32_t at = (ctl & 0x10) ? (off > end[dir] ? 0 : end[dir] - off) : end[dir] + off;
		dp_session_segment(s, (enum dp_dir)dir, isn[dir] + at, 0, flags, data + i, len, 0);
		if (!(ctl & 0x10) && at + len > end[dir])
			end[dir] = at + (uint32_t)len;
		i += len;
	}
	dp_session_end(s, "capture-end");
	dp_session_end(s, "again");
	if (sessions != 1)
		abort();
	dp_session_free(s);
	return 0;
}
