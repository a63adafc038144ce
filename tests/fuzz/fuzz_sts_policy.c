/*
 * fuzz_sts_policy: sts_policy_parse on arbitrary bytes, plus MX matching
 * against each parsed pattern. What must hold: limits are kept, max_age is
 * in range, mode none or at least one mx, every pattern is lowercase ASCII
 * and matches a host built from it (a "*." pattern matches "x." + name and
 * not name itself), extension spans lie inside the input, and the verdict
 * does not change when the body's LF line ends become CRLF.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sts_policy p, q;
	static char crlf[2 * STS_POLICY_MAX_LEN + 2];
	char why[128];
	const char *body = (const char *)data;
	enum sts_pol_status st = sts_policy_parse(body, size, &p, why, sizeof(why));
	if (st == STS_POL_TOO_LONG) {
		if (size <= STS_POLICY_MAX_LEN)
			abort();
		return 0;
	}
	/* LF -> CRLF (bare CRs already there stay; they make it invalid both ways) */
	size_t n = 0;
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			crlf[n++] = '\r';
		crlf[n++] = (char)data[i];
	}
	if (n <= STS_POLICY_MAX_LEN) {
		enum sts_pol_status st2 = sts_policy_parse(crlf, n, &q, why, sizeof(why));
		if ((st == STS_POL_OK) != (st2 == STS_POL_OK))
			abort();
		if (st == STS_POL_OK && (q.mode != p.mode || q.max_age != p.max_age || q.n_mx != p.n_mx))
			abort();
	}
	if (st != STS_POL_OK)
		return 0;
	if (p.max_age > STS_MAX_AGE_MAX || p.n_mx > STS_POLICY_MAX_MX || p.n_ext > STS_POLICY_MAX_EXT)
		abort();
	if (p.mode != STS_MODE_NONE && p.n_mx == 0)
		abort();
	for (unsigned i = 0; i < p.n_ext; i++)
		if ((size_t)p.ext_name[i].off + p.ext_name[i].len > size ||
		    (size_t)p.ext_value[i].off + p.ext_value[i].len > size)
			abort();
	for (unsigned i = 0; i < p.n_mx; i++) {
		const char *name = p.mx[i].name;
		size_t len = strlen(name);
		if (len == 0 || len > STS_DOMAIN_MAX)
			abort();
		for (size_t k = 0; k < len; k++)
			if ((unsigned char)name[k] >= 0x80 || (name[k] >= 'A' && name[k] <= 'Z'))
				abort();
		char host[STS_DOMAIN_MAX + 4];
		if (p.mx[i].wildcard) {
			host[0] = 'x';
			host[1] = '.';
			memcpy(host + 2, name, len);
			if (!sts_mx_match(&p, host, len + 2))
				abort();
		} else if (!sts_mx_match(&p, name, len)) {
			abort();
		}
	}
	return 0;
}
