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
 * Returns 0, or -1 on a write error. */
int spfz_emit(const struct spfz_zone *z, FILE *f);

#endif
