/* cpconf: defaults from the table, nested sections, every type, errors with
 * their line, limits at and past, the sample configuration in deploy/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cpconf.h"

static char path[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/ws-cpconf-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static int
load_text(const char *text, struct cpconf *c, char *why, size_t whylen)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return cpconf_load(c, path, why, whylen);
}

static void
test_defaults(void **state)
{
	(void)state;
	struct cpconf c;
	assert_int_equal(cpconf_defaults(&c), 0);
	assert_string_equal(c.cpm_socket, "/run/wireseal/cpm.sock");
	assert_int_equal(c.dns_timeout_ms, 2000);
	assert_int_equal(c.metrics_port, 9187);
	assert_false(c.syslog);
	assert_string_equal(c.user, "");
	assert_int_equal(c.trusted_arc_sealers.n, 0);
	cpconf_free(&c);
	/* an empty file is all defaults */
	char why[256];
	assert_int_equal(load_text("", &c, why, sizeof(why)), 0);
	assert_int_equal(c.keys_max_parked, 4096);
	cpconf_free(&c);
}

static void
test_values(void **state)
{
	(void)state;
	struct cpconf c;
	char why[256] = "";
	int rc = load_text("user: nobody\n"
			   "dns:\n  servers: [\"127.0.0.1@5353\", \"::1\"]\n  timeout_ms: 750\n"
			   "sinks:\n  syslog: yes\n  json_file: ~\n"
			   "policy:\n  trusted_arc_sealers:\n    - a.example\n    - b.example\n"
			   "  domain_overrides:\n    Example.COM: none\n    x.example: skip\n",
			   &c, why, sizeof(why));
	if (rc != 0)
		fail_msg("%s", why);
	assert_string_equal(c.user, "nobody");
	assert_int_equal(c.dns_servers.n, 2);
	assert_string_equal(c.dns_servers.v[0], "127.0.0.1@5353");
	assert_string_equal(c.dns_servers.v[1], "::1");
	assert_int_equal(c.dns_timeout_ms, 750);
	assert_true(c.syslog);
	assert_string_equal(c.json_file, "");
	assert_int_equal(c.trusted_arc_sealers.n, 2);
	assert_string_equal(c.trusted_arc_sealers.v[1], "b.example");
	assert_string_equal(cpconf_map_get(&c.domain_overrides, "example.com"), "none");
	assert_string_equal(cpconf_map_get(&c.domain_overrides, "x.example"), "skip");
	assert_null(cpconf_map_get(&c.domain_overrides, "y.example"));
	/* untouched directives keep their defaults */
	assert_int_equal(c.cache_max_ttl, 86400);
	cpconf_free(&c);
}

static void
test_errors(void **state)
{
	(void)state;
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"nosuch: 1\n", "line 1: unknown directive: nosuch"},
		{"dns:\n  nosuch: 1\n", "line 2: unknown directive: dns.nosuch"},
		{"dns:\n  timeout_ms: soon\n", "line 2: expected a unsigned value for: dns.timeout_ms"},
		{"dns:\n  timeout_ms: -1\n", "dns.timeout_ms"},
		{"dns:\n  timeout_ms: 4294967296\n", "dns.timeout_ms"},
		{"sinks:\n  syslog: maybe\n", "expected a bool"},
		{"dns: 5\n", "expected a mapping for section: dns"},
		{"dns:\n  servers: one\n", "expected a list for: dns.servers"},
		{"user: [a, b]\n", "expected a single value for: user"},
		{"user: a\nuser: b\n", "line 2: duplicate directive: user"},
		{"policy:\n  domain_overrides: [a]\n", "expected a mapping for: policy.domain_overrides"},
		{"- a\n- b\n", "top level must be a mapping"},
		{"user: \"unterminated\n", "line"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cpconf c;
		char why[256] = "";
		assert_int_equal(load_text(cases[i].text, &c, why, sizeof(why)), -1);
		if (!strstr(why, cases[i].want))
			fail_msg("case %zu: \"%s\" does not contain \"%s\"", i, why, cases[i].want);
		assert_non_null(strstr(why, path)); /* the file is named */
	}
	struct cpconf c;
	char why[256] = "";
	assert_int_equal(cpconf_load(&c, "/nonexistent/wireseal.yaml", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "No such file"));
}

static void
test_limits(void **state)
{
	(void)state;
	struct cpconf c;
	char why[256];
	/* CPCONF_MAX_STR bytes of value pass, one more is refused */
	size_t cap = CPCONF_MAX_STR + 64;
	char *text = malloc(cap);
	assert_non_null(text);
	for (int extra = 0; extra <= 1; extra++) {
		size_t n = (size_t)snprintf(text, cap, "user: ");
		memset(text + n, 'u', CPCONF_MAX_STR + (size_t)extra);
		n += CPCONF_MAX_STR + (size_t)extra;
		text[n++] = '\n';
		text[n] = '\0';
		int rc = load_text(text, &c, why, sizeof(why));
		if (extra == 0) {
			assert_int_equal(rc, 0);
			assert_int_equal(strlen(c.user), CPCONF_MAX_STR);
			cpconf_free(&c);
		} else {
			assert_int_equal(rc, -1);
			assert_non_null(strstr(why, "too long"));
		}
	}
	free(text);
	/* CPCONF_MAX_LIST entries pass, one more is refused (lists and maps) */
	cap = 32 + (CPCONF_MAX_LIST + 1) * 16;
	text = malloc(cap);
	assert_non_null(text);
	for (int map = 0; map <= 1; map++) {
		for (int extra = 0; extra <= 1; extra++) {
			size_t n = (size_t)snprintf(text, cap, "policy:\n  %s:\n",
						    map ? "domain_overrides" : "trusted_arc_sealers");
			for (size_t i = 0; i < CPCONF_MAX_LIST + (size_t)extra; i++)
				n += (size_t)snprintf(text + n, cap - n, map ? "    d%zu: none\n" : "    - d%zu\n", i);
			int rc = load_text(text, &c, why, sizeof(why));
			if (extra == 0) {
				assert_int_equal(rc, 0);
				assert_int_equal(map ? c.domain_overrides.n : c.trusted_arc_sealers.n,
						 CPCONF_MAX_LIST);
				cpconf_free(&c);
			} else {
				assert_int_equal(rc, -1);
				assert_non_null(strstr(why, "too many entries"));
			}
		}
	}
	free(text);
}

static void
test_sample(void **state)
{
	(void)state;
	char sample[512];
	const char *root = getenv("WS_SOURCE_ROOT");
	snprintf(sample, sizeof(sample), "%s/deploy/wireseal.yaml", root ? root : ".");
	struct cpconf c;
	char why[256] = "";
	if (cpconf_load(&c, sample, why, sizeof(why)) != 0)
		fail_msg("%s", why);
	assert_string_equal(c.user, "wireseal");
	assert_string_equal(c.org_domain, "treewalk");
	cpconf_free(&c);
	/* every directive of the table appears in the sample's text */
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	cpconf_describe(m);
	fclose(m);
	FILE *f = fopen(sample, "r");
	assert_non_null(f);
	static char text[65536];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[64];
		if (sscanf(line, "%63s", name) != 1)
			continue;
		const char *leaf = strrchr(name, '.') ? strrchr(name, '.') + 1 : name;
		char key[80];
		snprintf(key, sizeof(key), "%s:", leaf);
		if (!strstr(text, key))
			fail_msg("directive %s is not in deploy/wireseal.yaml", name);
	}
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_sample),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
