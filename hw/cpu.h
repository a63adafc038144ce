/*
 * hw_cpu: which instruction-set extensions this CPU (and the OS, for the
 * wide register files) lets us use.
 *
 * Detection runs CPUID/XGETBV once; the result is a plain value the caller
 * owns. Backends (ipsec-mb manager, canonicaliser variants) pick their code
 * path from it at start, never per call. Thread-safe: no shared state.
 */
#ifndef WS_HW_CPU_H
#define WS_HW_CPU_H

#include <stdbool.h>
#include <stddef.h>

/* X(enum suffix, printed name) -- one line per feature we choose code by. */
#define HW_CPU_FEATURES(X)                                                                         \
	X(SSSE3, "ssse3")                                                                          \
	X(SSE42, "sse4.2")                                                                         \
	X(AESNI, "aes-ni")                                                                         \
	X(PCLMUL, "pclmulqdq")                                                                     \
	X(AVX, "avx")                                                                              \
	X(AVX2, "avx2")                                                                            \
	X(BMI2, "bmi2")                                                                            \
	X(ADX, "adx")                                                                              \
	X(SHANI, "sha-ni")                                                                         \
	X(AVX512F, "avx512f")                                                                      \
	X(AVX512VL, "avx512vl")                                                                    \
	X(AVX512BW, "avx512bw")                                                                    \
	X(AVX512DQ, "avx512dq")                                                                    \
	X(AVX512IFMA, "avx512ifma")                                                                \
	X(VAES, "vaes")                                                                            \
	X(VPCLMULQDQ, "vpclmulqdq")                                                                \
	X(GFNI, "gfni")

enum hw_cpu_feature {
#define HW_CPU_ENUM(e, name) HW_CPU_##e,
	HW_CPU_FEATURES(HW_CPU_ENUM)
#undef HW_CPU_ENUM
	HW_CPU_FEATURE_COUNT
};

struct hw_cpu {
	char vendor[13];
	unsigned family, model;
	bool has[HW_CPU_FEATURE_COUNT];
};

/* Fill *cpu from CPUID; features whose register state the OS does not save
 * (XCR0) are reported absent. Never fails: on a non-x86 build all are false. */
void hw_cpu_detect(struct hw_cpu *cpu);

/* The printed name of a feature ("sha-ni"), or NULL when out of range. */
const char *hw_cpu_feature_name(enum hw_cpu_feature f);

/* Space-separated names of the present features into buf (always
 * NUL-terminated when len > 0); returns the length it needed. */
size_t hw_cpu_format(const struct hw_cpu *cpu, char *buf, size_t len);

#endif
