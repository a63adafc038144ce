/*
 * ASCII character classes for the record parsers (locale-free, unlike
 * <ctype.h>, and total over unsigned char). Header only.
 */
#ifndef WS_AUTH_ASCII_H
#define WS_AUTH_ASCII_H

#include <stdbool.h>

static inline bool
ascii_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool
ascii_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static inline bool
ascii_is_alnum(unsigned char c)
{
	return ascii_is_alpha(c) || ascii_is_digit(c);
}

static inline bool
ascii_is_hex(unsigned char c)
{
	return ascii_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* SP or HTAB (RFC 5234 WSP) */
static inline bool
ascii_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static inline unsigned char
ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

#endif
