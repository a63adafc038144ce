/*
 * A minimal JSON writer for the CLI's one-object-per-line output: strings
 * are escaped per RFC 8259 (bytes >= 0x80 pass through; invalid UTF-8 is
 * replaced with U+FFFD so every line parses).
 */
#ifndef WS_CLI_JSON_H
#define WS_CLI_JSON_H

#include <stdbool.h>
#include <stdio.h>

struct json {
	FILE *f;
	bool need_comma[16];
	bool in_array[16];
	unsigned depth;
	/* false (json_begin's default): every line is flushed as it ends, for
	 * readers that follow the output live. true: lines stay in the stream's
	 * buffer (one write per buffer, not per message); the caller flushes
	 * before anything else reaches the terminal. */
	bool buffered;
};

void json_begin(struct json *j, FILE *f);            /* "{" */
void json_begin_buffered(struct json *j, FILE *f);   /* "{", lines not flushed */
void json_end(struct json *j);                       /* "}\n" */
void json_key(struct json *j, const char *key);      /* "key": */
void json_str(struct json *j, const char *s);        /* "value" or null for NULL */
void json_strn(struct json *j, const char *s, size_t n);
void json_int(struct json *j, long long v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);
void json_obj(struct json *j);                       /* nested "{" */
void json_obj_end(struct json *j);
void json_arr(struct json *j);
void json_arr_end(struct json *j);

#endif
