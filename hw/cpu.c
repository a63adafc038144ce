#include "cpu.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define HW_X86 1
#else
#define HW_X86 0
#endif

static const char *const feature_names[HW_CPU_FEATURE_COUNT] = {
#define HW_CPU_NAME(e, name) [HW_CPU_##e] = name,
	HW_CPU_FEATURES(HW_CPU_NAME)
#undef HW_CPU_NAME
};

const char *
hw_cpu_feature_name(enum hw_cpu_feature f)
{
	if ((unsigned)f >= HW_CPU_FEATURE_COUNT)
		return NULL;
	return feature_names[f];
}

#if HW_X86
static uint64_t
read_xcr0(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}
#endif

void
hw_cpu_detect(struct hw_cpu *cpu)
{
	memset(cpu, 0, sizeof(*cpu));
#if HW_X86
	unsigned a = 0, b = 0, c = 0, d = 0, max = 0;
	if (!__get_cpuid(0, &max, &b, &c, &d))
		return;
	memcpy(cpu->vendor + 0, &b, 4);
	memcpy(cpu->vendor + 4, &d, 4);
	memcpy(cpu->vendor + 8, &c, 4);
	cpu->vendor[12] = '\0';

	__get_cpuid(1, &a, &b, &c, &d);
	unsigned fam = (a >> 8) & 0xf, mod = (a >> 4) & 0xf;
	if (fam == 0xf)
		fam += (a >> 20) & 0xff;
	if (fam == 0x6 || fam >= 0xf)
		mod |= ((a >> 16) & 0xf) << 4;
	cpu->family = fam;
	cpu->model = mod;

	bool osxsave = c & (1u << 27);
	uint64_t xcr0 = osxsave ? read_xcr0() : 0;
	/* YMM state (bits 1,2); opmask + ZMM state (bits 5,6,7). */
	bool ymm_ok = (xcr0 & 0x6) == 0x6;
	bool zmm_ok = ymm_ok && (xcr0 & 0xe0) == 0xe0;

	cpu->has[HW_CPU_SSSE3] = c & (1u << 9);
	cpu->has[HW_CPU_SSE42] = c & (1u << 20);
	cpu->has[HW_CPU_AESNI] = c & (1u << 25);
	cpu->has[HW_CPU_PCLMUL] = c & (1u << 1);
	cpu->has[HW_CPU_AVX] = (c & (1u << 28)) && ymm_ok;

	if (max >= 7) {
		__cpuid_count(7, 0, a, b, c, d);
		cpu->has[HW_CPU_AVX2] = (b & (1u << 5)) && ymm_ok;
		cpu->has[HW_CPU_BMI2] = b & (1u << 8);
		cpu->has[HW_CPU_ADX] = b & (1u << 19);
		cpu->has[HW_CPU_SHANI] = b & (1u << 29);
		cpu->has[HW_CPU_AVX512F] = (b & (1u << 16)) && zmm_ok;
		cpu->has[HW_CPU_AVX512DQ] = (b & (1u << 17)) && zmm_ok;
		cpu->has[HW_CPU_AVX512IFMA] = (b & (1u << 21)) && zmm_ok;
		cpu->has[HW_CPU_AVX512BW] = (b & (1u << 30)) && zmm_ok;
		cpu->has[HW_CPU_AVX512VL] = (b & (1u << 31)) && zmm_ok;
		cpu->has[HW_CPU_GFNI] = c & (1u << 8);
		cpu->has[HW_CPU_VAES] = (c & (1u << 9)) && ymm_ok;
		cpu->has[HW_CPU_VPCLMULQDQ] = (c & (1u << 10)) && ymm_ok;
	}
#endif
}

size_t
hw_cpu_format(const struct hw_cpu *cpu, char *buf, size_t len)
{
	size_t need = 0;
	if (len > 0)
		buf[0] = '\0';
	for (unsigned f = 0; f < HW_CPU_FEATURE_COUNT; f++) {
		if (!cpu->has[f])
			continue;
		const char *sep = need ? " " : "";
		int n = snprintf(need < len ? buf + need : NULL, need < len ? len - need : 0, "%s%s",
				 sep, feature_names[f]);
		if (n > 0)
			need += (size_t)n;
	}
	return need;
}
