/*
 * fuzz_tlsrpt_txt: tlsrpt_txt_parse on arbitrary bytes. What must hold: the
 * selection test agrees with the parser, every URI span lies inside the
 * copied text and starts with a scheme, usable URIs are counted right, and
 * the record's own text parses again the same way.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsrpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tlsrpt_record rec, again;
	const char *txt = (const char *)data;
	enum tlsrpt_txt_status st = tlsrpt_txt_parse(txt, size, &rec, NULL, 0);
	if (st == TLSRPT_TXT_TOO_LONG) {
		if (size <= TLSRPT_TXT_MAX_LEN)
			abort();
		return 0;
	}
	if ((st == TLSRPT_TXT_NOT_TLSRPT) == tlsrpt_txt_is_tlsrpt(txt, size))
		abort();
	if (st != TLSRPT_TXT_OK)
		return 0;
	if (rec.n_rua == 0 || rec.n_rua > TLSRPT_MAX_RUA)
		abort();
	unsigned usable = 0;
	for (unsigned i = 0; i < rec.n_rua; i++) {
		const struct tlsrpt_uri *u = &rec.rua[i];
		if ((size_t)u->off + u->len > rec.len || !memchr(rec.text + u->off, ':', u->len))
			abort();
		usable += u->scheme != TLSRPT_OTHER_SCHEME;
	}
	if (usable != rec.n_usable)
		abort();
	if (tlsrpt_txt_parse(rec.text, rec.len, &again, NULL, 0) != TLSRPT_TXT_OK ||
	    again.n_rua != rec.n_rua || memcmp(again.rua, rec.rua, sizeof(rec.rua[0]) * rec.n_rua))
		abort();
	return 0;
}
