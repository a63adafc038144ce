/*
 * fuzz_sts_txt: sts_txt_parse on arbitrary bytes. What must hold for any
 * input: the selection test agrees with the parser, a parsed id is 1..32
 * ALPHA/DIGIT, every extension span lies inside the copied text, and the
 * record's own text parses again to the same id.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sts_record rec, again;
	char why[128];
	const char *txt = (const char *)data;
	enum sts_txt_status st = sts_txt_parse(txt, size, &rec, why, sizeof(why));
	if (st == STS_TXT_TOO_LONG) {
		if (size <= STS_TXT_MAX_LEN)
			abort();
		return 0;
	}
	if ((st == STS_TXT_NOT_STS) == sts_txt_is_sts(txt, size))
		abort();
	if (st != STS_TXT_OK)
		return 0;
	size_t idlen = strlen(rec.id);
	if (idlen == 0 || idlen > STS_ID_MAX || rec.n_ext > STS_TXT_MAX_EXT)
		abort();
	for (size_t i = 0; i < idlen; i++) {
		char c = rec.id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			abort();
	}
	for (unsigned i = 0; i < rec.n_ext; i++)
		if ((size_t)rec.ext_name[i].off + rec.ext_name[i].len > rec.len ||
		    (size_t)rec.ext_value[i].off + rec.ext_value[i].len > rec.len ||
		    rec.ext_value[i].len == 0)
			abort();
	if (sts_txt_parse(rec.text, rec.len, &again, why, sizeof(why)) != STS_TXT_OK ||
	    strcmp(again.id, rec.id) != 0 || again.n_ext != rec.n_ext)
		abort();
	return 0;
}
