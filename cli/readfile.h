/* Whole-file reading for the CLI (keys, messages to sign). */
#ifndef WS_CLI_READFILE_H
#define WS_CLI_READFILE_H

#include <stddef.h>

/* malloc'd contents plus a NUL, or NULL with errno set. "-" is stdin. */
char *read_file(const char *path, size_t *len);

struct ws_privkey;
/* A private key from a PEM file; NULL after printing "<cmd>: <path>: why"
 * on stderr (unreadable file or bad key). */
struct ws_privkey *load_key_file(const char *cmd, const char *path);

#endif
