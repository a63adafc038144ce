/* A whole message through the verifier, with one fixed key record answering
 * every lookup: no crash, no leak, every result decided. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dkim.h"
#include "rfc5322.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the RFC 8463 A.2 Ed25519 key */
static const char record[] = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dkim_verifier *v;
	static struct dkim_key key;
	static int have_key;
	if (!v) {
		struct dkim_verify_config cfg = {.now = 1700000000};
		v = dkim_verifier_new(&cfg);
		const char *why;
		have_key = dkim_key_parse(record, strlen(record), &key, &why) == 0;
		if (!v || !have_key)
			abort();
	}
	struct rfc5322_header h;
	rfc5322_init(&h);
	size_t used;
	enum rfc5322_status st = rfc5322_push(&h, data, size, &used);
	if (st == RFC5322_NEED_MORE)
		st = rfc5322_finish(&h);
	if (st == RFC5322_DONE) {
		size_t n = dkim_verifier_start(v, &h);
		dkim_verifier_body(v, data + used, size - used);
		dkim_verifier_body_end(v);
		for (size_t i = 0; i < n; i++)
			if (dkim_verifier_key_name(v, i))
				dkim_verifier_set_key(v, i, i % 4 == 3 ? DKIM_KEY_TEMPFAIL : DKIM_KEY_FOUND,
						      &key, NULL);
		dkim_verifier_finish(v);
		for (size_t i = 0; i < n; i++)
			if (dkim_verifier_result(v, i)->result == DKIM_NONE)
				abort();
	}
	rfc5322_free(&h);
	return 0;
}
