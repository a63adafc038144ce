/*
 * report: how the CLI prints one message's results, shared by
 * `wireseal verify` (one per file) and `wireseal replay` (one per message
 * seen on the wire): an Authentication-Results header line (dkim=, arc=,
 * then what the caller adds), or one JSON object per line:
 * {"file"?, "dkim": [...], "arc"?: {...}, <json_more>, "authres", <json_tail>}.
 * Threads may render at once into streams of their own (its scratch is
 * per thread); callers sharing one stream hold flockfile(out) around the
 * call.
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
	const struct arc_chain *arc;      /* NULL: no arc= and no "arc" */
	/* optional: more methods after dkim= and arc= (spf=, dmarc=) */
	void (*authres_more)(struct authres *ar, void *arg);
	/* optional: keys before "authres" (spf, dmarc), and after it (session) */
	void (*json_more)(struct json *j, void *arg);
	void (*json_tail)(struct json *j, void *arg);
	void *arg;
	/* JSON lines left in out's buffer (json_begin_buffered) */
	bool buffered;
};

void report_message(FILE *out, const struct report_parts *p);

#endif
