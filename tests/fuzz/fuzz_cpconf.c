/*
 * fuzz_cpconf: the configuration loader (libyaml + the directive table) on
 * arbitrary bytes. What must hold: it fails with a reason or succeeds, and on
 * success every string is a NUL-terminated copy within CPCONF_MAX_STR and
 * every list within CPCONF_MAX_LIST (the loader's own limits).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpconf c;
	char why[512] = "";
	if (cpconf_load_mem(&c, "fuzz", data, size, why, sizeof(why)) != 0) {
		if (!why[0])
			abort();
		return 0;
	}
	if (strlen(c.user) > CPCONF_MAX_STR || strlen(c.json_file) > CPCONF_MAX_STR)
		abort();
	if (c.dns_servers.n > CPCONF_MAX_LIST || c.domain_overrides.n > CPCONF_MAX_LIST)
		abort();
	for (size_t i = 0; i < c.domain_overrides.n; i++)
		if (!cpconf_map_get(&c.domain_overrides, c.domain_overrides.key[i]))
			abort();
	cpconf_free(&c);
	return 0;
}
