/*
 * ws_rsa_ifma: s^65537 mod N for 8 moduli at once, one per 64-bit lane, in
 * 52-bit limbs with AVX-512 IFMA.
 *
 * Numbers are arrays of limbs, limb j of all 8 lanes side by side
 * (v[8 * j + lane]), so limb j of every lane is one __m512i and each lane can
 * have its own modulus and n0'. The multiplication is almost-Montgomery
 * (AMM): for a, b < 2N and 4N < R = 2^(52n) it returns a*b/R mod N as a
 * value < 2N without a final subtraction, so results feed straight back in.
 * Only the last result is fully reduced, on the scalar side, per lane.
 *
 * vpmadd52{lo,hu}q read only the low 52 bits of their two multiplicands but
 * add the 52-bit half-product to the full 64-bit accumulator. So every limb
 * used as a multiplicand is normalised (< 2^52), while the running sums are
 * left unnormalised inside one multiplication: an accumulator position takes
 * at most 4 half-products (< 2^52 each) per outer step for at most n steps,
 * plus carries under 2^13: below 4 * 80 * 2^52 + 80 * 2^13 < 2^61 for the
 * largest n, far from 2^64. One carry pass at the end normalises the result.
 */
#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "cpu.h"
#include "rsa_ifma.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define IFMA_BUILT 1
#else
#define IFMA_BUILT 0
#endif

#define LANES WS_RSA_IFMA_LANES
#define MAX_LIMBS WS_RSA_IFMA_MAX_LIMBS
#define LIMB_MASK ((UINT64_C(1) << WS_RSA_IFMA_LIMB_BITS) - 1)
#define MAX_BYTES ((WS_RSA_IFMA_MAX_BITS + 7u) / 8u)
#define RSA_F4 65537u

struct ws_rsa_ifma_key {
	unsigned limbs;
	size_t len;              /* modulus bytes */
	uint64_t n0;             /* -N^-1 mod 2^52 */
	uint64_t n[MAX_LIMBS];   /* N, little-endian 52-bit limbs */
	uint64_t rr[MAX_LIMBS];  /* R^2 mod N */
	uint8_t n_be[MAX_BYTES]; /* N as len big-endian bytes, for s < N */
};

/* ---- limbs <-> bytes (scalar, one lane) ---------------------------------- */

/* Big-endian bytes into limbs limbs; bits beyond them are dropped (callers
 * pass values known to fit). */
static void
be_to_limbs(const uint8_t *be, size_t len, uint64_t *out, size_t stride, unsigned limbs)
{
	uint64_t acc = 0;
	unsigned bits = 0, j = 0;
	for (size_t i = len; i-- > 0;) {
		acc |= (uint64_t)be[i] << bits;
		bits += 8;
		if (bits >= WS_RSA_IFMA_LIMB_BITS) {
			if (j < limbs)
				out[stride * j++] = acc & LIMB_MASK;
			acc >>= WS_RSA_IFMA_LIMB_BITS;
			bits -= WS_RSA_IFMA_LIMB_BITS;
		}
	}
	if (bits > 0 && j < limbs)
		out[stride * j++] = acc;
	while (j < limbs)
		out[stride * j++] = 0;
}

/* Normalised limbs into len big-endian bytes (high bits beyond len dropped). */
static void
limbs_to_be(const uint64_t *in, unsigned limbs, uint8_t *be, size_t len)
{
	uint64_t acc = 0;
	unsigned bits = 0, j = 0;
	for (size_t i = len; i-- > 0;) {
		if (bits < 8) {
			uint64_t next = j < limbs ? in[j++] : 0;
			acc |= next << bits;
			bits += WS_RSA_IFMA_LIMB_BITS;
		}
		be[i] = (uint8_t)acc;
		acc >>= 8;
		bits -= 8;
	}
}

/* x >= n, both normalised limbs. */
static bool
limbs_geq(const uint64_t *x, const uint64_t *n, unsigned limbs)
{
	for (unsigned j = limbs; j-- > 0;) {
		if (x[j] != n[j])
			return x[j] > n[j];
	}
	return true;
}

static void
limbs_sub(uint64_t *x, const uint64_t *n, unsigned limbs)
{
	uint64_t borrow = 0;
	for (unsigned j = 0; j < limbs; j++) {
		uint64_t d = x[j] - n[j] - borrow;
		borrow = d >> 63;
		x[j] = d & LIMB_MASK;
	}
}

/* ---- keys ------------------------------------------------------------------ */

int
ws_rsa_ifma_key_new(const BIGNUM *n, const BIGNUM *e, struct ws_rsa_ifma_key **out)
{
	struct ws_rsa_ifma_key *k = NULL;
	BN_CTX *ctx = NULL;
	BIGNUM *r = NULL;
	uint8_t buf[MAX_BYTES];
	int rc = -1;

	*out = NULL;
	if (!n || !e)
		return -1;
	int bits = BN_num_bits(n);
	if (!BN_is_word(e, RSA_F4) || BN_is_negative(n) || !BN_is_odd(n) ||
	    bits < (int)WS_RSA_IFMA_MIN_BITS || bits > (int)WS_RSA_IFMA_MAX_BITS)
		return 1;
	k = calloc(1, sizeof(*k));
	ctx = BN_CTX_new();
	r = BN_new();
	if (!k || !ctx || !r)
		goto fail;
	k->limbs = ((unsigned)bits + 2u + WS_RSA_IFMA_LIMB_BITS - 1u) / WS_RSA_IFMA_LIMB_BITS;
	k->len = (size_t)BN_num_bytes(n);
	if (BN_bn2binpad(n, k->n_be, (int)k->len) != (int)k->len)
		goto fail;
	be_to_limbs(k->n_be, k->len, k->n, 1, k->limbs);

	/* Newton's iteration for N^-1 mod 2^64: x*N = 1 mod 2^3 for any odd
	 * N when x = N, and each step doubles the correct low bits. */
	uint64_t inv = k->n[0];
	for (unsigned i = 0; i < 5; i++)
		inv *= 2 - k->n[0] * inv;
	k->n0 = (0 - inv) & LIMB_MASK;

	/* R^2 mod N, R = 2^(52 * limbs). */
	if (!BN_set_bit(r, (int)(2 * WS_RSA_IFMA_LIMB_BITS * k->limbs)) ||
	    !BN_mod(r, r, n, ctx) || BN_bn2binpad(r, buf, (int)k->len) != (int)k->len)
		goto fail;
	be_to_limbs(buf, k->len, k->rr, 1, k->limbs);
	*out = k;
	k = NULL;
	rc = 0;
fail:
	BN_free(r);
	BN_CTX_free(ctx);
	free(k);
	if (rc != 0)
		ERR_clear_error();
	return rc;
}

void
ws_rsa_ifma_key_free(struct ws_rsa_ifma_key *k)
{
	free(k);
}

unsigned
ws_rsa_ifma_key_limbs(const struct ws_rsa_ifma_key *k)
{
	return k->limbs;
}

size_t
ws_rsa_ifma_key_len(const struct ws_rsa_ifma_key *k)
{
	return k->len;
}

/* ---- EMSA-PKCS1-v1_5 --------------------------------------------------------- */

/* DER DigestInfo prefixes, RFC 8017 9.2 note 1. */
static const uint8_t di_sha1[] = {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                  0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14};
static const uint8_t di_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                    0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                    0x01, 0x05, 0x00, 0x04, 0x20};

/* EM = 0x00 0x01 FF..FF 0x00 DigestInfo digest, len bytes; false when it
 * does not fit with the 8 bytes of padding the RFC requires. */
static bool
emsa_encode(enum ws_hash_alg halg, const uint8_t *digest, uint8_t *em, size_t len)
{
	const uint8_t *di = halg == WS_HASH_SHA1 ? di_sha1 : di_sha256;
	size_t di_len = halg == WS_HASH_SHA1 ? sizeof(di_sha1) : sizeof(di_sha256);
	size_t d_len = ws_hash_len(halg);
	size_t t_len = di_len + d_len;
	if (len < t_len + 11)
		return false;
	em[0] = 0x00;
	em[1] = 0x01;
	memset(em + 2, 0xff, len - t_len - 3);
	em[len - t_len - 1] = 0x00;
	memcpy(em + len - t_len, di, di_len);
	memcpy(em + len - d_len, digest, d_len);
	return true;
}

/* ---- the 8-lane kernel --------------------------------------------------------- */

#if IFMA_BUILT

static bool ifma_ok;
static pthread_once_t ifma_once = PTHREAD_ONCE_INIT;

static void
ifma_detect(void)
{
	struct hw_cpu cpu;
	hw_cpu_detect(&cpu);
	ifma_ok = cpu.has[HW_CPU_AVX512F] && cpu.has[HW_CPU_AVX512IFMA];
}

bool
ws_rsa_ifma_available(void)
{
	return pthread_once(&ifma_once, ifma_detect) == 0 && ifma_ok;
}

#define IFMA_TARGET __attribute__((target("avx512f,avx512ifma")))

#define LD(p) _mm512_load_si512((const void *)(p))
#define LO(acc, x, y) _mm512_madd52lo_epu64((acc), (x), (y))
#define HI(acc, x, y) _mm512_madd52hi_epu64((acc), (x), (y))

/*
 * r = a * b / R mod N (almost: r < 2N), for a, b < 2N with normalised limbs
 * and limbs >= 2; r is normalised and may alias a or b. Operand scanning with the shift by
 * one limb folded into each outer step: after step i, t holds
 * (t + a * b[i] + m * N) / 2^52 with m chosen to make the division exact.
 */
IFMA_TARGET static void
amm(uint64_t *r, const uint64_t *a, const uint64_t *b, const uint64_t *n, __m512i n0,
    unsigned limbs)
{
	/* t[0] lives in t0 (a register): the next step's m waits on it, so
	 * it must not go through a store and a reload. t[1..] in memory. */
	__m512i t[MAX_LIMBS];
	const __m512i zero = _mm512_setzero_si512();
	const __m512i mask = _mm512_set1_epi64((long long)LIMB_MASK);
	const __m512i a0 = LD(a), a1 = LD(a + LANES), n_0 = LD(n), n_1 = LD(n + LANES);
	__m512i t0 = zero;

	for (unsigned j = 1; j < limbs; j++)
		t[j] = zero;
	for (unsigned i = 0; i < limbs; i++) {
		const __m512i bi = LD(b + LANES * i);
		__m512i x0 = LO(t0, a0, bi);
		/* Only x0 mod 2^52 matters, and vpmadd52 reads only that. */
		const __m512i m = LO(zero, x0, n0);
		x0 = LO(x0, n_0, m);
		/* Limb 1 first: it is the next step's t0. The terms in m last:
		 * they wait on the chain above. */
		__m512i acc = LO(t[1], a1, bi);
		acc = HI(acc, a0, bi);
		acc = LO(acc, n_1, m);
		acc = HI(acc, n_0, m);
		t0 = _mm512_add_epi64(acc, _mm512_srli_epi64(x0, WS_RSA_IFMA_LIMB_BITS));
		__m512i a_prev = a1, n_prev = n_1;
		for (unsigned j = 2; j < limbs; j++) {
			const __m512i aj = LD(a + LANES * j);
			const __m512i nj = LD(n + LANES * j);
			acc = LO(t[j], aj, bi);
			acc = HI(acc, a_prev, bi);
			acc = LO(acc, nj, m);
			acc = HI(acc, n_prev, m);
			t[j - 1] = acc;
			a_prev = aj;
			n_prev = nj;
		}
		t[limbs - 1] = HI(HI(zero, a_prev, bi), n_prev, m);
	}
	/* r < 2N < R: the carry out of the top limb is zero. */
	t[0] = t0;
	__m512i c = zero;
	for (unsigned j = 0; j < limbs; j++) {
		const __m512i v = _mm512_add_epi64(t[j], c);
		_mm512_store_si512((void *)(r + LANES * j), _mm512_and_si512(v, mask));
		c = _mm512_srli_epi64(v, WS_RSA_IFMA_LIMB_BITS);
	}
}

/* x = s^65537 mod N per lane (x < 2N), with s < N: into Montgomery form
 * (times R^2), 16 squarings, one multiply by s*R, out of it (times 1). */
IFMA_TARGET static void
pow_f4(uint64_t *x, const uint64_t *s, const uint64_t *n, const uint64_t *rr,
       const uint64_t n0[LANES], unsigned limbs)
{
	alignas(64) uint64_t sr[MAX_LIMBS * LANES];
	alignas(64) uint64_t one[MAX_LIMBS * LANES];
	const __m512i vn0 = _mm512_loadu_si512((const void *)n0);

	amm(sr, s, rr, n, vn0, limbs);
	amm(x, sr, sr, n, vn0, limbs);
	for (unsigned i = 1; i < 16; i++)
		amm(x, x, x, n, vn0, limbs);
	amm(x, x, sr, n, vn0, limbs);
	memset(one, 0, sizeof(uint64_t) * LANES * limbs);
	for (unsigned l = 0; l < LANES; l++)
		one[l] = 1;
	amm(x, x, one, n, vn0, limbs);
}

#else

bool
ws_rsa_ifma_available(void)
{
	return false;
}

static void
pow_f4(uint64_t *x, const uint64_t *s, const uint64_t *n, const uint64_t *rr,
       const uint64_t n0[LANES], unsigned limbs)
{
	(void)x;
	(void)s;
	(void)n;
	(void)rr;
	(void)n0;
	(void)limbs;
}

#endif

/* ---- verify ------------------------------------------------------------------ */

static bool
job_ok(const struct ws_rsa_ifma_job *j, unsigned limbs)
{
	return j->key && j->digest && j->sig && j->key->limbs == limbs &&
	       (j->halg == WS_HASH_SHA1 || j->halg == WS_HASH_SHA256);
}

int
ws_rsa_ifma_verify(struct ws_rsa_ifma_job *jobs, size_t count)
{
	alignas(64) uint64_t n[MAX_LIMBS * LANES];
	alignas(64) uint64_t rr[MAX_LIMBS * LANES];
	alignas(64) uint64_t s[MAX_LIMBS * LANES];
	alignas(64) uint64_t x[MAX_LIMBS * LANES];
	uint64_t n0[LANES];
	bool in_range[LANES];
	uint64_t lane_x[MAX_LIMBS];
	uint8_t got[MAX_BYTES], em[MAX_BYTES];

	if (!jobs || count == 0 || count > LANES || !jobs[0].key || !ws_rsa_ifma_available())
		return -1;
	const unsigned limbs = jobs[0].key->limbs;
	for (size_t i = 0; i < count; i++) {
		if (!job_ok(&jobs[i], limbs))
			return -1;
	}
	/* Unused lanes repeat job 0; their results are ignored. */
	for (unsigned l = 0; l < LANES; l++) {
		const struct ws_rsa_ifma_job *j = &jobs[l < count ? l : 0];
		const struct ws_rsa_ifma_key *k = j->key;
		be_to_limbs(k->n_be, k->len, n + l, LANES, limbs);
		for (unsigned i = 0; i < limbs; i++)
			rr[LANES * i + l] = k->rr[i];
		n0[l] = k->n0;
		/* A representative s >= N does not verify (RFC 8017 5.2.2);
		 * the lane then computes with s = 0 and its result is not
		 * looked at. */
		in_range[l] = memcmp(j->sig, k->n_be, k->len) < 0;
		if (in_range[l])
			be_to_limbs(j->sig, k->len, s + l, LANES, limbs);
		else
			be_to_limbs(NULL, 0, s + l, LANES, limbs);
	}
	pow_f4(x, s, n, rr, n0, limbs);
	for (size_t l = 0; l < count; l++) {
		struct ws_rsa_ifma_job *j = &jobs[l];
		const struct ws_rsa_ifma_key *k = j->key;
		if (!in_range[l]) {
			j->result = 0;
			continue;
		}
		for (unsigned i = 0; i < limbs; i++)
			lane_x[i] = x[LANES * i + l];
		if (limbs_geq(lane_x, k->n, limbs))
			limbs_sub(lane_x, k->n, limbs);
		limbs_to_be(lane_x, limbs, got, k->len);
		j->result = emsa_encode(j->halg, j->digest, em, k->len) &&
		                    memcmp(got, em, k->len) == 0
		            ? 1
		            : 0;
	}
	return 0;
}
