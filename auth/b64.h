/*
 * b64: base64 (RFC 4648, standard alphabet, padded) as DKIM uses it for b=,
 * bh= and key p= values. Decoding skips whitespace (folded values) and
 * rejects anything else outside the alphabet, misplaced padding, and
 * non-zero trailing bits are tolerated (signers differ). Pure; thread-safe.
 */
#ifndef WS_AUTH_B64_H
#define WS_AUTH_B64_H

#include <stddef.h>
#include <stdint.h>

/* Bytes needed to decode len input characters (upper bound). */
#define B64_DECODED_MAX(len) (((len) + 3) / 4 * 3)
/* Characters needed to encode len bytes, without the NUL. */
#define B64_ENCODED_LEN(len) (((len) + 2) / 3 * 4)

/* Returns the decoded length, or -1 when the input is not base64 or the
 * output does not fit in cap. */
long b64_decode(const char *in, size_t len, uint8_t *out, size_t cap);
/* Writes B64_ENCODED_LEN(len) characters and a NUL; out needs one more byte. */
size_t b64_encode(const uint8_t *in, size_t len, char *out);

#endif
