/* SHA-256 compression, one stream (portable) and 16 lanes (AVX-512); see
 * sha256x16.h. Written from FIPS 180-4 sections 4.1.2, 4.2.2 and 6.2.2. */
#include "sha256x16.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define WS_X16_BUILT 1
#else
#define WS_X16_BUILT 0
#endif

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
	0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
	0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
	0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
	0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
	0xc67178f2,
};

void
ws_sha256_init_state(uint32_t st[8])
{
	static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
				       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	memcpy(st, h0, sizeof(h0));
}

static inline uint32_t
ror(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

void
ws_sha256_blocks(uint32_t st[8], const uint8_t *p, size_t nblocks)
{
	for (; nblocks > 0; nblocks--, p += WS_SHA256_BLOCK) {
		uint32_t w[64];
		for (unsigned t = 0; t < 16; t++)
			w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
			       (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
		for (unsigned t = 16; t < 64; t++) {
			uint32_t s0 = ror(w[t - 15], 7) ^ ror(w[t - 15], 18) ^ (w[t - 15] >> 3);
			uint32_t s1 = ror(w[t - 2], 17) ^ ror(w[t - 2], 19) ^ (w[t - 2] >> 10);
			w[t] = w[t - 16] + s0 + w[t - 7] + s1;
		}
		uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
		uint32_t e = st[4], f = st[5], g = st[6], h = st[7];
		for (unsigned t = 0; t < 64; t++) {
			uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) +
				      K[t] + w[t];
			uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
			h = g;
			g = f;
			f = e;
			e = d + t1;
			d = c;
			c = b;
			b = a;
			a = t1 + t2;
		}
		st[0] += a;
		st[1] += b;
		st[2] += c;
		st[3] += d;
		st[4] += e;
		st[5] += f;
		st[6] += g;
		st[7] += h;
	}
}

void
ws_sha256_state_bytes(const uint32_t st[8], uint8_t out[32])
{
	for (unsigned i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(st[i] >> 24);
		out[4 * i + 1] = (uint8_t)(st[i] >> 16);
		out[4 * i + 2] = (uint8_t)(st[i] >> 8);
		out[4 * i + 3] = (uint8_t)st[i];
	}
}

#if WS_X16_BUILT

bool
ws_sha256x16_available(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

#define X16_TARGET __attribute__((target("avx512f,avx512bw")))

/* Ternary-logic immediates: 0x96 = a^b^c, 0xCA = a?b:c (Ch), 0xE8 = majority. */
#define XOR3(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0x96)
#define CH(e, f, g) _mm512_ternarylogic_epi32((e), (f), (g), 0xCA)
#define MAJ(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0xE8)
#define BSIG0(x) XOR3(_mm512_ror_epi32((x), 2), _mm512_ror_epi32((x), 13), _mm512_ror_epi32((x), 22))
#define BSIG1(x) XOR3(_mm512_ror_epi32((x), 6), _mm512_ror_epi32((x), 11), _mm512_ror_epi32((x), 25))
#define SSIG0(x) XOR3(_mm512_ror_epi32((x), 7), _mm512_ror_epi32((x), 18), _mm512_srli_epi32((x), 3))
#define SSIG1(x) XOR3(_mm512_ror_epi32((x), 17), _mm512_ror_epi32((x), 19), _mm512_srli_epi32((x), 10))

X16_TARGET static inline void
x16_transpose(__m512i r[16])
{
	/* 16 rows (one lane's 16 words each) into 16 columns (word t of every
	 * lane): 32-bit then 64-bit interleaves inside 128-bit chunks, then a
	 * 4x4 transpose of the chunks. */
	__m512i t[16], u[16];
#pragma GCC unroll 8
	for (unsigned i = 0; i < 16; i += 2) {
		t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
		t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
	}
	/* u[4g + j]: chunk k holds word 4k + j of rows 4g..4g+3 */
#pragma GCC unroll 4
	for (unsigned g = 0; g < 4; g++) {
		u[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
		u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
		u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
		u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
	}
#pragma GCC unroll 4
	for (unsigned j = 0; j < 4; j++) {
		__m512i a = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88);
		__m512i b = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xDD);
		__m512i c = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88);
		__m512i d = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xDD);
		r[j] = _mm512_shuffle_i32x4(a, c, 0x88);
		r[8 + j] = _mm512_shuffle_i32x4(a, c, 0xDD);
		r[4 + j] = _mm512_shuffle_i32x4(b, d, 0x88);
		r[12 + j] = _mm512_shuffle_i32x4(b, d, 0xDD);
	}
}

/* What a lane with no block this round reads: its result is masked off. */
static const uint8_t x16_idle_block[WS_SHA256_BLOCK] __attribute__((aligned(64)));

/*
 * Message words come in with one plain 64-byte load per lane and a 16x16
 * transpose: a vector gather (vpgatherdd) is slow on AMD Zen, where it made
 * this function run at ~55% of intel-ipsec-mb's rate.
 */
X16_TARGET void
ws_sha256x16_blocks(uint32_t *const st[WS_SHA256X16_LANES], const uint8_t *base,
		    const int32_t off[WS_SHA256X16_LANES], const uint32_t nblk[WS_SHA256X16_LANES])
{
	uint32_t rows[8][WS_SHA256X16_LANES] __attribute__((aligned(64)));
	const uint8_t *p[WS_SHA256X16_LANES];
	uint32_t left[WS_SHA256X16_LANES] __attribute__((aligned(64)));
	uint32_t most = 0;
	for (unsigned l = 0; l < WS_SHA256X16_LANES; l++) {
		for (unsigned i = 0; i < 8; i++)
			rows[i][l] = nblk[l] ? st[l][i] : 0;
		if (nblk[l] > most)
			most = nblk[l];
		left[l] = nblk[l];
		p[l] = nblk[l] ? base + off[l] : x16_idle_block;
	}
	__m512i s[8];
	for (unsigned i = 0; i < 8; i++)
		s[i] = _mm512_load_si512(rows[i]);
	/* big-endian words: reverse the bytes of each 32-bit lane */
	const __m512i bswap = _mm512_set_epi8(
		12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11, 4,
		5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14,
		15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
	for (uint32_t b = 0; b < most; b++) {
		/* lanes with a block this round; the others read their last
		 * block (or the idle one) again and keep their state */
		__mmask16 live = _mm512_cmpgt_epu32_mask(_mm512_load_si512(left), _mm512_setzero_si512());
		__m512i w[16];
#pragma GCC unroll 16
		for (unsigned l = 0; l < 16; l++)
			w[l] = _mm512_shuffle_epi8(_mm512_loadu_si512(p[l]), bswap);
		x16_transpose(w);
		for (unsigned l = 0; l < WS_SHA256X16_LANES; l++) {
			p[l] += left[l] > 1 ? WS_SHA256_BLOCK : 0;
			left[l] -= left[l] > 0;
		}
		__m512i a = s[0], bb = s[1], c = s[2], d = s[3];
		__m512i e = s[4], f = s[5], g = s[6], h = s[7];
#pragma GCC unroll 64
		for (unsigned t = 0; t < 64; t++) {
			__m512i wt;
			if (t < 16) {
				wt = w[t];
			} else {
				/* the schedule in a 16-entry ring: w[t & 15] holds W(t-16) */
				wt = _mm512_add_epi32(
					_mm512_add_epi32(w[t & 15], SSIG0(w[(t - 15) & 15])),
					_mm512_add_epi32(w[(t - 7) & 15], SSIG1(w[(t - 2) & 15])));
				w[t & 15] = wt;
			}
			/*
			 * The sums ordered for a short dependency chain (vector
			 * adds have 2 cycles of latency on Zen 5): h + K + W is
			 * known rounds ahead, and the new e and a each wait for
			 * only one add after BSIG1(e). Measured: 3.3 -> 3.6 GB/s.
			 */
			__m512i hkw = _mm512_add_epi32(h, _mm512_add_epi32(_mm512_set1_epi32((int)K[t]), wt));
			__m512i y = _mm512_add_epi32(hkw, CH(e, f, g));
			__m512i s1 = BSIG1(e);
			__m512i t2 = _mm512_add_epi32(BSIG0(a), MAJ(a, bb, c));
			h = g;
			g = f;
			f = e;
			e = _mm512_add_epi32(_mm512_add_epi32(d, y), s1);
			d = c;
			c = bb;
			bb = a;
			a = _mm512_add_epi32(_mm512_add_epi32(y, t2), s1);
		}
		s[0] = _mm512_mask_add_epi32(s[0], live, s[0], a);
		s[1] = _mm512_mask_add_epi32(s[1], live, s[1], bb);
		s[2] = _mm512_mask_add_epi32(s[2], live, s[2], c);
		s[3] = _mm512_mask_add_epi32(s[3], live, s[3], d);
		s[4] = _mm512_mask_add_epi32(s[4], live, s[4], e);
		s[5] = _mm512_mask_add_epi32(s[5], live, s[5], f);
		s[6] = _mm512_mask_add_epi32(s[6], live, s[6], g);
		s[7] = _mm512_mask_add_epi32(s[7], live, s[7], h);
	}
	for (unsigned i = 0; i < 8; i++)
		_mm512_store_si512(rows[i], s[i]);
	for (unsigned l = 0; l < WS_SHA256X16_LANES; l++)
		if (nblk[l])
			for (unsigned i = 0; i < 8; i++)
				st[l][i] = rows[i][l];
}

/* ---- SHA-NI, two streams interleaved ---- */

bool
ws_sha256ni_available(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1");
}

#define NI_TARGET __attribute__((target("sha,sse4.1,ssse3")))

/* The state in SHA-NI order: ABEF and CDGH (Intel's SHA extensions
 * reference, "Intel SHA Extensions", 2013). */
NI_TARGET static inline void
ni_load(const uint32_t st[8], __m128i *abef, __m128i *cdgh)
{
	__m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(const void *)st), 0xB1);
	__m128i u = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(const void *)(st + 4)), 0x1B);
	*abef = _mm_alignr_epi8(t, u, 8);
	*cdgh = _mm_blend_epi16(u, t, 0xF0);
}

NI_TARGET static inline void
ni_store(uint32_t st[8], __m128i abef, __m128i cdgh)
{
	__m128i t = _mm_shuffle_epi32(abef, 0x1B);
	__m128i u = _mm_shuffle_epi32(cdgh, 0xB1);
	_mm_storeu_si128((__m128i *)(void *)st, _mm_blend_epi16(t, u, 0xF0));
	_mm_storeu_si128((__m128i *)(void *)(st + 4), _mm_alignr_epi8(u, t, 8));
}

/* Four rounds of one stream; from group 4 on the group's words are made
 * from the four before (FIPS 180-4 6.2.2 step 1, four words at a time). */
#define NI_GROUP(m, j, s0, s1)                                                                 \
	do {                                                                                   \
		if ((j) >= 4)                                                                  \
			m[(j) & 3] = _mm_sha256msg2_epu32(                                     \
				_mm_add_epi32(_mm_sha256msg1_epu32(m[(j) & 3], m[((j) + 1) & 3]), \
					      _mm_alignr_epi8(m[((j) + 3) & 3], m[((j) + 2) & 3], 4)), \
				m[((j) + 3) & 3]);                                             \
		__m128i k_ = _mm_add_epi32(m[(j) & 3],                                         \
					   _mm_loadu_si128((const __m128i *)(const void *)(K + 4 * (j)))); \
		s1 = _mm_sha256rnds2_epu32(s1, s0, k_);                                        \
		s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(k_, 0x0E));               \
	} while (0)

NI_TARGET void
ws_sha256ni_blocks(uint32_t st[8], const uint8_t *p, size_t nblocks)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bll, 0x0405060700010203ll);
	__m128i s0, s1;
	ni_load(st, &s0, &s1);
	for (; nblocks > 0; nblocks--, p += WS_SHA256_BLOCK) {
		__m128i a0 = s0, a1 = s1, m[4];
		for (unsigned i = 0; i < 4; i++)
			m[i] = _mm_shuffle_epi8(
				_mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i)), bswap);
#pragma GCC unroll 16
		for (unsigned j = 0; j < 16; j++)
			NI_GROUP(m, j, s0, s1);
		s0 = _mm_add_epi32(s0, a0);
		s1 = _mm_add_epi32(s1, a1);
	}
	ni_store(st, s0, s1);
}

/* Two independent streams in one loop: SHA-NI's round instruction has a
 * latency of several cycles, one stream leaves the unit idle between them. */
NI_TARGET void
ws_sha256ni_x2_blocks(uint32_t sta[8], const uint8_t *pa, uint32_t stb[8], const uint8_t *pb,
		      size_t nblocks)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bll, 0x0405060700010203ll);
	__m128i x0, x1, y0, y1;
	ni_load(sta, &x0, &x1);
	ni_load(stb, &y0, &y1);
	for (; nblocks > 0; nblocks--, pa += WS_SHA256_BLOCK, pb += WS_SHA256_BLOCK) {
		__m128i ax0 = x0, ax1 = x1, ay0 = y0, ay1 = y1, m[4], n[4];
		for (unsigned i = 0; i < 4; i++) {
			m[i] = _mm_shuffle_epi8(
				_mm_loadu_si128((const __m128i *)(const void *)(pa + 16 * i)), bswap);
			n[i] = _mm_shuffle_epi8(
				_mm_loadu_si128((const __m128i *)(const void *)(pb + 16 * i)), bswap);
		}
#pragma GCC unroll 16
		for (unsigned j = 0; j < 16; j++) {
			NI_GROUP(m, j, x0, x1);
			NI_GROUP(n, j, y0, y1);
		}
		x0 = _mm_add_epi32(x0, ax0);
		x1 = _mm_add_epi32(x1, ax1);
		y0 = _mm_add_epi32(y0, ay0);
		y1 = _mm_add_epi32(y1, ay1);
	}
	ni_store(sta, x0, x1);
	ni_store(stb, y0, y1);
}

#else

bool
ws_sha256ni_available(void)
{
	return false;
}

void
ws_sha256ni_blocks(uint32_t st[8], const uint8_t *p, size_t nblocks)
{
	ws_sha256_blocks(st, p, nblocks);
}

void
ws_sha256ni_x2_blocks(uint32_t sta[8], const uint8_t *pa, uint32_t stb[8], const uint8_t *pb,
		      size_t nblocks)
{
	ws_sha256_blocks(sta, pa, nblocks);
	ws_sha256_blocks(stb, pb, nblocks);
}

#endif

#if !WS_X16_BUILT

bool
ws_sha256x16_available(void)
{
	return false;
}

void
ws_sha256x16_blocks(uint32_t *const st[WS_SHA256X16_LANES], const uint8_t *base,
		    const int32_t off[WS_SHA256X16_LANES], const uint32_t nblk[WS_SHA256X16_LANES])
{
	/* not reached: callers check ws_sha256x16_available(); stay correct anyway */
	for (unsigned l = 0; l < WS_SHA256X16_LANES; l++)
		if (nblk[l])
			ws_sha256_blocks(st[l], base + off[l], nblk[l]);
}

#endif
