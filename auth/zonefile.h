/*
 * zonefile: RFC 1035 master files, as nsd and bind read them, turned into a
 * flat list of resource records.
 *
 * Data model: zonefile_parse takes the whole file as one byte span (no I/O,
 * no clock, no globals) and returns a struct zonefile that owns every record
 * and string in it; zonefile_free releases it all. Each record carries its
 * owner (lowercase, fully qualified, no trailing dot; the root is "."), type,
 * TTL, rdata in presentation form (names fully qualified with a trailing dot,
 * TXT strings re-quoted) ready for unbound's ub_ctx_data_add, and a decoded
 * form (addresses as bytes, MX preference and host, TXT as a list of strings).
 *
 * Understood: $ORIGIN, $TTL, comments, parentheses spanning lines, quoted
 * strings with \" \\ \DDD escapes, several character-strings on one TXT RR,
 * owner inheritance (a line starting with blank space), "@", relative names,
 * TTL (with s/m/h/d/w units) and class IN in either order, types A AAAA MX TXT
 * PTR CNAME NS SOA, and for TXT the RFC 3597 form "\# LEN HEX" (the only way
 * to write a TXT RR with no string, "\# 0", which gives rdata "\# 0").
 * Refused with the line number and a reason: $INCLUDE, other classes and
 * types, escapes in names, and every limit below.
 *
 * Thread-safety: none needed; a parse touches only its arguments.
 */
#ifndef WS_AUTH_ZONEFILE_H
#define WS_AUTH_ZONEFILE_H

#include <stddef.h>
#include <stdint.h>

#define ZONEFILE_MAX_LINE 4096       /* bytes on one physical line, newline excluded */
#define ZONEFILE_MAX_ENTRY 65535     /* bytes of one entry, parentheses included */
#define ZONEFILE_MAX_RECORDS 65536   /* records in one file */
#define ZONEFILE_MAX_TXT_STRINGS 128 /* character-strings on one TXT RR */
#define ZONEFILE_MAX_TXT_STRING 255  /* bytes in one character-string (RFC 1035) */
#define ZONEFILE_MAX_NAME 255        /* wire length of a name, root label included */
#define ZONEFILE_MAX_LABEL 63        /* bytes in one label */
#define ZONEFILE_MAX_TTL 2147483647u /* RFC 2181 8 */
#define ZONEFILE_DEFAULT_TTL 3600    /* with no $TTL and no TTL seen yet */

/* The RR types understood, by their numbers. */
enum zonefile_type {
	ZONEFILE_A = 1,
	ZONEFILE_NS = 2,
	ZONEFILE_CNAME = 5,
	ZONEFILE_SOA = 6,
	ZONEFILE_PTR = 12,
	ZONEFILE_MX = 15,
	ZONEFILE_TXT = 16,
	ZONEFILE_AAAA = 28,
};

struct zonefile_str {
	uint8_t *data; /* NUL-terminated for convenience; may hold NULs itself */
	size_t len;
};

struct zonefile_rr {
	char *owner;
	enum zonefile_type type;
	uint32_t ttl;
	unsigned line;  /* where the entry starts */
	char *rdata;    /* presentation form */
	union {
		uint8_t a[4];
		uint8_t aaaa[16];
		struct {
			uint16_t pref;
			char *host;
		} mx;
		char *name; /* CNAME, PTR, NS target */
		struct {
			struct zonefile_str *strings;
			size_t count;
		} txt;
		struct {
			char *mname, *rname;
			uint32_t serial, refresh, retry, expire, minimum;
		} soa;
	} u;
};

struct zonefile {
	struct zonefile_rr *rrs;
	size_t count;
};

struct zonefile_error {
	unsigned line; /* 1-based; 0 when the error is not tied to a line */
	char reason[128];
};

/* Parses buf[0..len). origin is the initial $ORIGIN (NULL or "." = the
 * root). Returns 0 and *out, or -1 with *err filled and *out NULL. */
int zonefile_parse(const uint8_t *buf, size_t len, const char *origin, struct zonefile **out,
		   struct zonefile_error *err);
void zonefile_free(struct zonefile *z); /* NULL-safe */

/* "TXT", "A" ... or NULL for a type this module does not know. */
const char *zonefile_type_name(enum zonefile_type t);

/* One RR as a full presentation line, "owner. TTL IN TYPE rdata", for
 * ub_ctx_data_add. Returns the length it needs (without the NUL); the output
 * is complete only when that is < size. */
size_t zonefile_rr_format(const struct zonefile_rr *rr, char *buf, size_t size);

/* Presentation form of a TXT value: data[0..len) quoted as character-strings
 * of at most ZONEFILE_MAX_TXT_STRING bytes each (a longer value is split),
 * with '"', '\\' and non-printable bytes escaped. Same return as above. */
size_t zonefile_txt_format(const uint8_t *data, size_t len, char *buf, size_t size);

#endif
