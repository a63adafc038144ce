/*
 * libFuzzer target: the SPF macro expander. Byte 0 picks the flags and the
 * client address family; the rest is the macro-string. Checks: syntax-only
 * checking and expansion agree on validity (unless the output overflowed),
 * the output fits its buffer, and a domain result fits in 253 octets.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	unsigned flags = data[0] & (SPF_MACRO_EXP | SPF_MACRO_DOMAIN);
	struct spf_macro_ctx c = {
		.sender = "first.last-x+y=z@mail.example.com",
		.local = "first.last-x+y=z",
		.sender_domain = "mail.example.com",
		.domain = "sub.mail.example.com",
		.helo = "helo host.example",
		.receiver = (data[0] & 0x8) ? "mx.example.net" : NULL,
		.ptr_name = (data[0] & 0x10) ? "ptr.mail.example.com" : NULL,
		.now = 1700000000,
	};
	if (spf_ip_parse((data[0] & 0x4) ? "2001:db8::cb01" : "192.0.2.3", &c.ip) != 0)
		abort();
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	char why[128];
	bool uses_p1 = false, uses_p2 = false;
	int syn = spf_macro_expand(NULL, in, len, flags, NULL, 0, &uses_p1, why, sizeof(why));
	/* small buffers exercise the overflow path too */
	size_t cap = (data[0] & 0x20) ? 64 : SPF_MAX_EXPANSION + 1;
	char *out = malloc(cap);
	if (!out)
		return 0;
	int rc = spf_macro_expand(&c, in, len, flags, out, cap, &uses_p2, why, sizeof(why));
	/* valid text may only fail to expand for want of room */
	if ((syn != 0 && rc == 0) || (syn == 0 && rc != 0 && !strstr(why, "longer")))
		abort();
	if (rc == 0) {
		size_t n = strlen(out);
		if (n >= cap || uses_p1 != uses_p2)
			abort();
		if ((flags & SPF_MACRO_DOMAIN) && n > SPF_DOMAIN_MAX)
			abort();
	}
	free(out);
	return 0;
}
