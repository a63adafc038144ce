/*
 * sha256x16: the SHA-256 compression function (FIPS 180-4 6.2.2) over whole
 * 64-byte blocks, from any chaining state, in two shapes:
 *  - ws_sha256_blocks: one stream, portable C (the reference, and the path
 *    for a stream's last few blocks);
 *  - ws_sha256x16_blocks: up to 16 independent streams in lockstep, one per
 *    32-bit lane of an AVX-512 register. OpenSSL's SHA-NI code is one stream
 *    bound by instruction latency; 16 lanes fill the vector units instead.
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
 * 2 GiB of base (offsets are 32-bit, as the vector gather takes them).
 * Only call when ws_sha256x16_available().
 */
void ws_sha256x16_blocks(uint32_t *const st[WS_SHA256X16_LANES], const uint8_t *base,
			 const int32_t off[WS_SHA256X16_LANES],
			 const uint32_t nblk[WS_SHA256X16_LANES]);

#endif
