/*
 * jsonr: a small RFC 8259 JSON reader that builds a tree, for documents that
 * come from outside (TLS-RPT reports) and for test fixtures.
 *
 * Data model: jsonr_parse returns a tree of struct jsonr_val; strings are
 * decoded (escapes resolved, \u surrogate pairs joined into UTF-8) and
 * NUL-terminated; object members keep their order and duplicates (jsonr_get
 * returns the first). Numbers keep the double and, when the text is an
 * integer that fits, the int64 as well.
 * Ownership: the caller frees the root with jsonr_free (NULL-safe).
 * Thread-safety: reentrant; no globals.
 * Limits: JSONR_MAX_DEPTH nesting levels, JSONR_MAX_LEN bytes of input;
 * past either, parse fails with a reason. Trailing bytes other than
 * whitespace fail. Invalid UTF-8 inside strings is passed through as is.
 */
#ifndef WS_AUTH_JSONR_H
#define WS_AUTH_JSONR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONR_MAX_DEPTH 64
#define JSONR_MAX_LEN (16u << 20) /* 16 MiB: TLSRPT_MAX_REPORT_LEN, far above a day's report */

enum jsonr_type { JSONR_NULL, JSONR_BOOL, JSONR_NUM, JSONR_STR, JSONR_ARR, JSONR_OBJ };

struct jsonr_val {
	enum jsonr_type type;
	bool b;
	bool is_int;   /* JSONR_NUM with an integer value that fits int64 */
	int64_t i;
	double num;
	char *str;     /* JSONR_STR: decoded, NUL-terminated */
	size_t len;
	char *key;     /* set when this value is an object member */
	size_t key_len;
	struct jsonr_val *child; /* first element/member */
	struct jsonr_val *next;  /* next sibling */
	size_t n;                /* elements/members */
};

struct jsonr_val *jsonr_parse(const char *text, size_t len, char *why, size_t why_len);
void jsonr_free(struct jsonr_val *v);
/* The first member named key of an object, or NULL (also for a non-object). */
const struct jsonr_val *jsonr_get(const struct jsonr_val *obj, const char *key);
/* Member key as a string, or NULL when absent or not a string. */
const char *jsonr_get_str(const struct jsonr_val *obj, const char *key);

#endif
