/* A whole message through ARC set collection and validation, with one fixed
 * RSA-1024 key answering every lookup (the seeds were sealed with its
 * private half): no crash, no leak, a decided result, and the same result
 * whatever way the body is split (the first input byte picks the split). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arc.h"
#include "rfc5322.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char record[] = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC/AoifEA7fwchJJeVuWuv+9ERQdMs2uEjZLGBxm/hypLuIsWg0R4xVZVwi2Vqqv3+VsHY/ZIwI1BsvalntN9voW7JL7jEnFK/FJPW/Xd4v2PkLnfg9o1Cp7NLYaPOykrH8izz+qUR/5gsanuTeb2HtsWNYUgzaOgaGuIIXJxLbKQIDAQAB";

static enum arc_result
run(struct arc_validator *v, const struct rfc5322_header *h, const uint8_t *body, size_t len,
    size_t step, const struct dkim_key *key, unsigned *oldest)
{
	arc_validator_start(v, h);
	for (size_t o = 0; o < len; o += step)
		arc_validator_body(v, body + o, len - o < step ? len - o : step);
	arc_validator_body_end(v);
	for (size_t k = 0; k < arc_validator_key_slots(v); k++)
		if (arc_validator_key_name(v, k))
			arc_validator_set_key(v, k, k % 7 == 6 ? DKIM_KEY_TEMPFAIL : DKIM_KEY_FOUND, key,
					      NULL);
	arc_validator_finish(v);
	const struct arc_chain *c = arc_validator_chain(v);
	if (c->result != ARC_NONE && c->result != ARC_PASS && c->result != ARC_FAIL)
		abort();
	if (!c->reason || c->nsets > ARC_MAX_SETS ||
	    (c->result == ARC_PASS && (c->oldest_pass < 1 || c->oldest_pass > c->nsets)))
		abort();
	*oldest = c->oldest_pass;
	return c->result;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct arc_validator *v;
	static struct dkim_key key;
	if (!v) {
		const char *why;
		v = arc_validator_new(NULL);
		if (!v || dkim_key_parse(record, strlen(record), &key, &why) != 0)
			abort();
	}
	if (size == 0)
		return 0;
	size_t step = 1 + data[0] % 64;
	data++;
	size--;
	struct rfc5322_header h;
	rfc5322_init(&h);
	size_t used;
	enum rfc5322_status st = rfc5322_push(&h, data, size, &used);
	if (st == RFC5322_NEED_MORE) {
		st = rfc5322_finish(&h);
		used = size;
	}
	if (st == RFC5322_DONE) {
		unsigned o1, o2;
		enum arc_result whole = run(v, &h, data + used, size - used, size - used + 1, &key, &o1);
		enum arc_result split = run(v, &h, data + used, size - used, step, &key, &o2);
		if (whole != split || o1 != o2)
			abort();
	}
	rfc5322_free(&h);
	return 0;
}
