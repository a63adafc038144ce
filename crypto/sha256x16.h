/*
 * sha256x16: the SHA-256 compression function (FIPS 180-4 6.2.2) over whole
 * 64-byte blocks, from any chaining state, in three shapes:
 *  - ws_sha256_blocks: one stream, portable C (the reference, and the path
 *    for a stream's last blocks on CPUs without SHA-NI);
 *  - ws_sha256x16_blocks: up to 16 independent streams in lockstep, one per
 *    32-bit lane of an AVX-512 register;
 *  - ws_sha256ni_blocks / _x2_blocks: the SHA extensions, one stream or two
 *    interleaved. OpenSSL's SHA-NI code is one stream bound by the round
 *    instruction's latency; a second stream fills the gaps.
 * Measured here (AMD EPYC Zen 5, 16 KiB per stream, CPU time, bench-crypto):
 * 16 lanes 4.2-4.35 GB/s (intel-ipsec-mb's AVX-512 SHA-256 4.1-4.7 GB/s in
 * the same runs; 2.6 GB/s while the lanes loaded words with a gather),
 * SHA-NI two streams 2.2 GB/s, one stream 1.55 GB/s (OpenSSL 1.6 GB/s).
 *
 * No padding or length handling here: callers (ws_hash lane groups) own the
 * message framing. Stateless and thread-safe; the caller owns every buffer.
 */
#ifndef WS_CRYPTO_SHA256X16_H
#define WS_CRYPTO_SHA256X16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_SHA256_BLOCK 64u
#define WS_SHA256X16_LANES 16u

/* The initial hash value H(0). */
void ws_sha256_init_state(uint32_t st[8]);
/* Compress nblocks consecutive blocks at p into st. */
void ws_sha256_blocks(uint32_t st[8], const uint8_t *p, size_t nblocks);
/* Big-endian digest bytes of st. */
void ws_sha256_state_bytes(const uint32_t st[8], uint8_t out[32]);

/* True when this CPU (and OS) runs ws_sha256x16_blocks (AVX-512 F+BW). */
bool ws_sha256x16_available(void);
/*
 * Lane l compresses nblk[l] blocks starting at base + off[l] into st[l]
 * (nblk 0: lane idle, st[l] and off[l] unused). Each lane's bytes lie within
 * 2 GiB of base (32-bit offsets). A lane that runs out of blocks before the
 * others re-reads its last block (never past it) with its result masked.
 * Only call when ws_sha256x16_available().
 */
void ws_sha256x16_blocks(uint32_t *const st[WS_SHA256X16_LANES], const uint8_t *base,
			 const int32_t off[WS_SHA256X16_LANES],
			 const uint32_t nblk[WS_SHA256X16_LANES]);

/* True when the CPU has the SHA extensions (SHA-NI) and SSE4.1. */
bool ws_sha256ni_available(void);
/* ws_sha256_blocks on SHA-NI; two streams of nblocks each, interleaved.
 * Only call when ws_sha256ni_available(). */
void ws_sha256ni_blocks(uint32_t st[8], const uint8_t *p, size_t nblocks);
void ws_sha256ni_x2_blocks(uint32_t sta[8], const uint8_t *pa, uint32_t stb[8], const uint8_t *pb,
			   size_t nblocks);

#endif
