/*
 * fuzz_dmarc_record: dmarc_record_parse on arbitrary bytes. Checks what
 * must hold for any input: the selection test agrees with the parser, every
 * span lies inside the copied text, counts stay within their limits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_span(const struct dmarc_record *r, struct dmarc_span sp)
{
	if ((size_t)sp.off + sp.len > r->len)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dmarc_record rec;
	char why[128];
	const char *txt = (const char *)data;
	enum dmarc_rec_status st = dmarc_record_parse(txt, size, &rec, why, sizeof(why));
	bool is = dmarc_record_is_dmarc(txt, size);
	if ((st == DMARC_REC_NOT_DMARC) == is)
		abort();
	if (st == DMARC_REC_TOO_LONG && size <= DMARC_RECORD_MAX_LEN)
		abort();
	if (st != DMARC_REC_OK)
		return 0;
	if (rec.len != size || memcmp(rec.text, data, size) != 0 || rec.text[size] != '\0')
		abort();
	if (rec.ntags > DMARC_MAX_TAGS || rec.ignored > rec.ntags || rec.pct > 100)
		abort();
	if (rec.p > DMARC_P_REJECT || rec.sp > DMARC_P_REJECT || rec.np > DMARC_P_REJECT)
		abort();
	check_span(&rec, rec.rua);
	check_span(&rec, rec.ruf);
	check_span(&rec, rec.fo);
	check_span(&rec, rec.rf);
	/* the record's own text, re-parsed, gives the same decoding */
	static struct dmarc_record again;
	if (dmarc_record_parse(rec.text, rec.len, &again, why, sizeof(why)) != DMARC_REC_OK ||
	    again.p != rec.p || again.pct != rec.pct || again.psd != rec.psd ||
	    again.ntags != rec.ntags)
		abort();
	return 0;
}
