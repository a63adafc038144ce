/* Small helpers shared by the unit tests: deterministic PRNG, file reading. */
#ifndef WS_TESTS_TESTUTIL_H
#define WS_TESTS_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline uint64_t
tu_rand(uint64_t *s)
{
	/* xorshift64*: deterministic across runs and platforms */
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Whole file into a malloc'd buffer (NUL-terminated); NULL on failure. */
static inline char *
tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf)
			break;
		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap *= 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		if (r == 0)
			break;
		n += r;
	}
	fclose(f);
	if (buf) {
		buf[n] = '\0';
		if (len)
			*len = n;
	}
	return buf;
}

/* $WS_SHARED_DIR/rel into out; falls back to ../shared beside the source. */
static inline const char *
tu_shared(const char *rel, char *out, size_t cap)
{
	const char *d = getenv("WS_SHARED_DIR");
	snprintf(out, cap, "%s/%s", d ? d : "../shared", rel);
	return out;
}

#endif
