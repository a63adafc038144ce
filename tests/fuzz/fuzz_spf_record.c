/*
 * libFuzzer target: the SPF record parser. The input is tried as a whole TXT
 * string and, so that mutations reach term parsing quickly, after "v=spf1 ".
 * Checks: a parsed record's terms lie inside its text, and parsing the
 * stored text again gives the same terms (the parser is a pure function).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const char *txt, size_t len)
{
	struct spf_record rec, again;
	char why[128];
	if (spf_record_parse(txt, len, &rec, why, sizeof(why)) != 0) {
		if (rec.text || rec.terms || rec.nterms)
			abort(); /* a failed parse leaves nothing behind */
		return;
	}
	for (size_t i = 0; i < rec.nterms; i++) {
		const struct spf_term *t = &rec.terms[i];
		if (t->off + t->len > rec.len || t->spec_off + t->spec_len > rec.len)
			abort();
		if (t->cidr4 > 32 || t->cidr6 > 128)
			abort();
	}
	if (spf_record_parse(rec.text, rec.len, &again, why, sizeof(why)) != 0 ||
	    again.nterms != rec.nterms || again.redirect != rec.redirect || again.exp != rec.exp ||
	    memcmp(again.terms, rec.terms, rec.nterms * sizeof(*rec.terms)) != 0)
		abort();
	spf_record_free(&again);
	spf_record_free(&rec);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > SPF_MAX_RECORD_LEN + 16)
		return 0;
	check((const char *)data, size);
	char *buf = malloc(size + 7);
	if (!buf)
		return 0;
	memcpy(buf, "v=spf1 ", 7);
	if (size)
		memcpy(buf + 7, data, size);
	check(buf, size + 7);
	free(buf);
	return 0;
}
