/*
 * taglist: the "tag=value; tag=value" lists of DKIM signatures and key
 * records (RFC 6376 3.2), which ARC, DMARC and MTA-STS records reuse.
 *
 *   tag-list  = tag-spec *( ";" tag-spec ) [ ";" ]
 *   tag-spec  = [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
 *   tag-name  = ALPHA *ALNUMPUNC          (ALNUMPUNC: ALPHA / DIGIT / "_")
 *   tag-value = [ tval *( 1*(WSP / FWS) tval ) ]   tval = 1*(%x21-3A / %x3C-7E)
 *
 * The parser points into the caller's text (nothing is copied): each value
 * span runs from its first to its last tval byte, so it can contain folding
 * whitespace inside (b= and bh= are folded); callers strip it where the tag's
 * syntax says so. Duplicate tag names are an error (RFC 6376 3.2).
 * Limits: TAGLIST_MAX_TAGS tags, TAGLIST_MAX_NAME bytes per name.
 * Pure function; thread-safe.
 */
#ifndef WS_AUTH_TAGLIST_H
#define WS_AUTH_TAGLIST_H

#include <stddef.h>

#define TAGLIST_MAX_TAGS 64u
#define TAGLIST_MAX_NAME 32u

struct taglist_tag {
	const char *name;
	size_t name_len;
	const char *value; /* first byte of the value (== end of tag-spec when empty) */
	size_t value_len;
	size_t value_off;  /* offset of value in the parsed text */
	size_t eq_end;     /* offset just after the '=' */
	size_t spec_end;   /* offset of the ';' ending this tag-spec, or the text's end */
};

struct taglist {
	struct taglist_tag tags[TAGLIST_MAX_TAGS];
	size_t n;
};

/* 0 on success; -1 with *why on a syntax error, duplicate or limit. */
int taglist_parse(const char *text, size_t len, struct taglist *out, const char **why);

/* The tag with this exact (case-sensitive, per RFC 6376) name, or NULL. */
const struct taglist_tag *taglist_get(const struct taglist *tl, const char *name);

/* Copy value without any whitespace (SP, HTAB, CR, LF) into out (cap bytes,
 * NUL-terminated); returns the length, or (size_t)-1 if it does not fit. */
size_t taglist_value_nows(const struct taglist_tag *t, char *out, size_t cap);

/* Value equals s, exactly (case-sensitive) or case-insensitively. */
int taglist_value_is(const struct taglist_tag *t, const char *s, int nocase);

#endif
