/*
 * Zone table for the openspf/pyspf SPF conformance suites: one scenario's
 * `zonedata` (YAML) becomes a table of records that answers queries with the
 * suite's resolution rules (README section 2 of the conformance data):
 * unknown name -> NXDOMAIN; no record of the type -> NODATA, or TEMPFAIL when
 * the name carries TIMEOUT; SPF items double as TXT unless the name has TXT
 * items (`TXT: NONE` adds none but stops that); CNAMEs are followed; names
 * with an empty or over-long label have no data.
 *
 * Kept apart from the runner so the same table can be written out as RFC 1035
 * master-file text (spfz_emit) for a real server later.
 *
 * Ownership: a zone owns copies of everything it read; answers from
 * spfz_resolve own their records and are released with spfz_answer_free.
 */
#ifndef WS_TESTS_SPF_ZONE_H
#define WS_TESTS_SPF_ZONE_H

#include <stdbool.h>
#include <stdio.h>
#include <yaml.h>

#include "dns-types.h"

#define SPFZ_MAX_CNAME_CHAIN 10

struct spfz_zone;

/* Builds a zone from the zonedata mapping node (NULL = empty zone).
 * Returns NULL with a reason on malformed data or out of memory. */
struct spfz_zone *spfz_from_yaml(yaml_document_t *doc, yaml_node_t *zonedata, char *why,
				 size_t whylen);
void spfz_free(struct spfz_zone *z);

/* Answers (name, type); returns 0, or -1 on out of memory. */
int spfz_resolve(const struct spfz_zone *z, const char *name, enum ws_dns_type type,
		 struct ws_dns_answer *out);
void spfz_answer_free(struct ws_dns_answer *a);

/* Writes the zone as master-file text (absolute names, TTL 300). What a
 * master file cannot say (TIMEOUT, unusable names) is written as a comment.
 * With a suffix ("s03.wsspf") every owner and target name gets ".suffix"
 * appended (one zone per scenario on one server); names that would then be
 * longer than 253 octets are written as comments. A TXT RR with no
 * character-string is written as "\# 0" (RFC 3597). Returns 0, or -1 on a
 * write error. */
#define SPFZ_EMIT_NO_ESCAPES 0x1 /* write names that need a \\ escape as comments */
int spfz_emit(const struct spfz_zone *z, FILE *f, const char *suffix, unsigned flags);

/* Does a master file need a backslash escape for this byte / some byte of
 * this name (blank, quote, parenthesis, ';', '\\', '@', '$', non-ASCII)? */
bool spfz_char_needs_escape(int c);
bool spfz_name_needs_escape(const char *name);

/* TIMEOUT names: the i-th (NULL past the end). */
const char *spfz_timeout_name(const struct spfz_zone *z, size_t i);
/* Names strictly below a TIMEOUT name that are in the zone themselves: the
 * i-th (NULL past the end). A resolver that sends TIMEOUT names to a server
 * that never answers sends these (and what is below them) to the real one. */
const char *spfz_below_timeout_name(const struct spfz_zone *z, size_t i);
/* Would such a resolver send name to the server that never answers? (The
 * most specific of the names above that is name or an ancestor of it is a
 * TIMEOUT name.) */
bool spfz_blackholed(const struct spfz_zone *z, const char *name);

#endif
