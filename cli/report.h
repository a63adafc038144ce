/*
 * report: how the CLI prints one message's DKIM results, shared by
 * `wireseal verify` (one per file) and `wireseal replay` (one per message
 * seen on the wire): an Authentication-Results header line, or one JSON
 * object per line.
 *
 * The JSON object: {"file"?, "dkim": [{d, s, a, result, reason, key_bits?,
 * testing?}], "authres", ...extra}. Not thread-safe on its own: callers
 * printing from several threads hold flockfile(out) around the call.
 */
#ifndef WS_CLI_REPORT_H
#define WS_CLI_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "json.h"

struct dkim_verifier;

/* file: NULL leaves the "file" key out. extra (may be NULL) adds keys to the
 * JSON object after "authres". */
void report_message(FILE *out, const struct dkim_verifier *v, const char *authserv_id, bool json,
		    const char *file, void (*extra)(struct json *j, void *arg), void *arg);

#endif
