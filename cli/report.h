/*
 * report: how the CLI prints one message's results, shared by
 * `wireseal verify` (one per file) and `wireseal replay` (one per message
 * seen on the wire): an Authentication-Results header line (dkim=, then what
 * the caller adds), or one JSON object per line:
 * {"file"?, "dkim": [...], <json_more>, "authres", <json_tail>}.
 * The same interface as the lead's report module (which also prints arc=
 * and "arc"); on this branch there is no ARC validator, so arc must be NULL.
 * Not thread-safe on its own: callers printing from several threads hold
 * flockfile(out) around the call.
 */
#ifndef WS_CLI_REPORT_H
#define WS_CLI_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "json.h"

struct arc_chain;
struct authres;
struct dkim_verifier;

struct report_parts {
	const char *authserv_id;
	bool json;
	const char *file;                 /* NULL: no "file" key */
	const struct dkim_verifier *dkim; /* the message's DKIM results */
	const struct arc_chain *arc;      /* NULL here (no ARC validator on this branch) */
	/* optional: more methods after dkim= (spf=, dmarc=) */
	void (*authres_more)(struct authres *ar, void *arg);
	/* optional: keys before "authres", and after it (the replay's session) */
	void (*json_more)(struct json *j, void *arg);
	void (*json_tail)(struct json *j, void *arg);
	void *arg;
};

void report_message(FILE *out, const struct report_parts *p);

#endif
