/* Whole-file reading for the CLI (keys, messages to sign). */
#ifndef WS_CLI_READFILE_H
#define WS_CLI_READFILE_H

#include <stddef.h>

/* malloc'd contents plus a NUL, or NULL with errno set. "-" is stdin. */
char *read_file(const char *path, size_t *len);

#endif
