/* hw_cpu: CPUID detection agrees with the kernel's view in /proc/cpuinfo. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpu.h"

/* The "flags" line of the first processor in /proc/cpuinfo, or NULL. */
static char *
proc_flags(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return NULL;
	char *line = NULL, *out = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, "flags", 5) == 0) {
			char *colon = strchr(line, ':');
			if (colon) {
				size_t n = strlen(colon + 1);
				out = malloc(n + 3);
				/* pad with spaces so " name " matches whole words */
				snprintf(out, n + 3, " %s", colon + 1);
				char *nl = strchr(out, '\n');
				if (nl)
					*nl = ' ';
			}
			break;
		}
	}
	free(line);
	fclose(f);
	return out;
}

static int
kernel_has(const char *flags, const char *name)
{
	char word[64];
	snprintf(word, sizeof(word), " %s ", name);
	return strstr(flags, word) != NULL;
}

static void
test_matches_kernel(void **state)
{
	(void)state;
	char *flags = proc_flags();
	if (!flags)
		skip();
	struct hw_cpu cpu;
	hw_cpu_detect(&cpu);
	/* CPUID bit against the kernel's name for it; the kernel also masks
	 * features whose register state it does not enable, as we do. */
	static const struct {
		enum hw_cpu_feature f;
		const char *kname;
	} map[] = {
		{HW_CPU_SSSE3, "ssse3"},     {HW_CPU_SSE42, "sse4_2"},
		{HW_CPU_AESNI, "aes"},       {HW_CPU_AVX2, "avx2"},
		{HW_CPU_BMI2, "bmi2"},       {HW_CPU_SHANI, "sha_ni"},
		{HW_CPU_AVX512F, "avx512f"}, {HW_CPU_AVX512VL, "avx512vl"},
		{HW_CPU_AVX512IFMA, "avx512ifma"}, {HW_CPU_VAES, "vaes"},
		{HW_CPU_GFNI, "gfni"},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		int k = kernel_has(flags, map[i].kname);
		if (k != (int)cpu.has[map[i].f])
			fail_msg("feature %s: cpuid says %d, /proc/cpuinfo says %d",
				 hw_cpu_feature_name(map[i].f), (int)cpu.has[map[i].f], k);
	}
	free(flags);
}

static void
test_format(void **state)
{
	(void)state;
	struct hw_cpu cpu;
	memset(&cpu, 0, sizeof(cpu));
	char buf[64];
	assert_int_equal(hw_cpu_format(&cpu, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	cpu.has[HW_CPU_SHANI] = true;
	cpu.has[HW_CPU_AVX2] = true;
	size_t n = hw_cpu_format(&cpu, buf, sizeof(buf));
	assert_string_equal(buf, "avx2 sha-ni");
	assert_int_equal(n, strlen("avx2 sha-ni"));
	/* truncation: still terminated, returns the full length needed */
	char small[5];
	assert_int_equal(hw_cpu_format(&cpu, small, sizeof(small)), n);
	assert_int_equal(strlen(small), 4);
	assert_null(hw_cpu_feature_name(HW_CPU_FEATURE_COUNT));
	assert_string_equal(hw_cpu_feature_name(HW_CPU_VAES), "vaes");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matches_kernel),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
