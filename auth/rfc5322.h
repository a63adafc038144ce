/*
 * rfc5322: the header block of an Internet message, parsed as it streams in.
 *
 * Data model: the parser copies the header block into a buffer it owns,
 * normalising every line end to CRLF (bare LF is tolerated and counted), and
 * indexes each field by offsets into that buffer. Field text is kept exactly
 * as received otherwise (folding, 8-bit bytes, obsolete WSP before the
 * colon), because DKIM "simple" canonicalisation signs it verbatim.
 *
 * Use: rfc5322_init, then rfc5322_push with spans of any size until it
 * returns RFC5322_DONE (the header block ended; *consumed says how many bytes
 * of that span belonged to it, the rest is body) or RFC5322_ERROR. A message
 * that ends inside its header block (no body) is completed by
 * rfc5322_finish. The result must not depend on how the input was split.
 *
 * Limits (named below, each tested at and past): one field's size, the
 * number of fields, the whole block. Past a limit the parser stops with an
 * error naming it; nothing is truncated silently.
 *
 * Ownership: the struct is the caller's; the buffers it allocates are freed by
 * rfc5322_free. Not thread-safe; distinct parsers are independent.
 */
#ifndef WS_AUTH_RFC5322_H
#define WS_AUTH_RFC5322_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RFC5322_MAX_FIELD_LEN (64u * 1024)     /* one field, folding included */
#define RFC5322_MAX_FIELDS 1000u               /* fields in one header block */
#define RFC5322_MAX_BLOCK (1024u * 1024)       /* the whole header block */

enum rfc5322_status {
	RFC5322_NEED_MORE,
	RFC5322_DONE,
	RFC5322_ERROR,
};

enum rfc5322_error {
	RFC5322_OK,
	RFC5322_ERR_NO_COLON,       /* a line that is neither a field nor folding */
	RFC5322_ERR_BAD_NAME,       /* empty name, or a byte not allowed in a name */
	RFC5322_ERR_LEADING_FOLD,   /* continuation line before the first field */
	RFC5322_ERR_FIELD_TOO_LONG, /* > RFC5322_MAX_FIELD_LEN */
	RFC5322_ERR_TOO_MANY,       /* > RFC5322_MAX_FIELDS */
	RFC5322_ERR_BLOCK_TOO_BIG,  /* > RFC5322_MAX_BLOCK */
	RFC5322_ERR_NOMEM,
};

struct rfc5322_field {
	uint32_t off;      /* start of the field in the block */
	uint32_t len;      /* up to and excluding the final CRLF */
	uint32_t name_len; /* name without any WSP before the colon */
	uint32_t value;    /* offset of the first byte after the colon */
};

struct rfc5322_counters {
	uint32_t bare_lf;      /* LF without CR, normalised to CRLF */
	uint32_t bare_cr;      /* CR not followed by LF, kept as data */
	uint32_t long_lines;   /* lines over 998 octets (RFC 5322 2.1.1), kept */
	uint32_t eight_bit;    /* fields containing bytes >= 0x80 */
	uint32_t mbox_from;    /* a leading mbox "From " line, skipped */
};

struct rfc5322_header {
	char *block; /* the normalised header block */
	size_t len, cap;
	struct rfc5322_field *fields;
	size_t nfields, fields_cap;
	struct rfc5322_counters counters;
	enum rfc5322_error error;
	/* parser state */
	uint8_t state;
	bool done;
	size_t field_start; /* offset of the field being collected */
	size_t line_start;  /* offset of the current line */
	bool first_line;
};

void rfc5322_init(struct rfc5322_header *h);
void rfc5322_free(struct rfc5322_header *h);
/* Reset to parse another message, keeping the buffers. */
void rfc5322_reset(struct rfc5322_header *h);

enum rfc5322_status rfc5322_push(struct rfc5322_header *h, const uint8_t *data, size_t len,
				 size_t *consumed);
/* The input ended: complete the last field. DONE or ERROR. */
enum rfc5322_status rfc5322_finish(struct rfc5322_header *h);

const char *rfc5322_strerror(enum rfc5322_error e);

/* Field accessors: pointers into h->block, valid until reset/free. */
static inline const char *
rfc5322_field_raw(const struct rfc5322_header *h, const struct rfc5322_field *f)
{
	return h->block + f->off;
}
static inline const char *
rfc5322_field_value(const struct rfc5322_header *h, const struct rfc5322_field *f, size_t *len)
{
	*len = f->off + f->len - f->value;
	return h->block + f->value;
}
/* Case-insensitive name comparison. */
bool rfc5322_field_is(const struct rfc5322_header *h, const struct rfc5322_field *f,
		      const char *name, size_t name_len);

#endif
