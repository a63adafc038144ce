/*
 * DKIM key lookups for the CLI: one TXT query per key name through ws_dns,
 * parsed once and remembered for the rest of the run (positive and negative
 * outcomes alike), so a corpus signed by a few keys costs a few queries.
 */
#ifndef WS_CLI_KEYS_H
#define WS_CLI_KEYS_H

#include "dkim.h"

struct ws_dns;
struct keycache;

struct keycache *keycache_new(struct ws_dns *dns);
void keycache_free(struct keycache *kc);
/* Look name up (or recall it); *key is valid until keycache_free. *why is
 * set for every status but FOUND and lives as long as the cache. */
enum dkim_key_status keycache_get(struct keycache *kc, const char *name,
				  const struct dkim_key **key, const char **why);
/* Queries sent so far (the rest were answered from the cache). */
unsigned long keycache_queries(const struct keycache *kc);

#endif
