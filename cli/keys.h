/*
 * DKIM key lookups for the CLI: one query per key name (a TXT query through
 * ws_dns, or any keycache_fetch_fn such as the control plane's KEY_REQUEST),
 * parsed once and remembered for the rest of the run (positive and negative
 * outcomes alike, TTLs ignored: a CLI run is short), so a corpus signed by a
 * few keys costs a few queries. Not thread-safe: one cache per worker.
 */
#ifndef WS_CLI_KEYS_H
#define WS_CLI_KEYS_H

#include <stddef.h>

#include "dkim.h"

struct ws_dns;
struct keycache;

/* Fills *key (status FOUND) or why (every other status) for name. */
typedef enum dkim_key_status (*keycache_fetch_fn)(void *arg, const char *name,
						  struct dkim_key *key, char *why, size_t whylen);

struct keycache *keycache_new(struct ws_dns *dns); /* TXT queries through dns */
struct keycache *keycache_new_fetch(keycache_fetch_fn fetch, void *arg);
void keycache_free(struct keycache *kc);
/* Look name up (or recall it); *key is valid until keycache_free. *why is
 * set for every status but FOUND and lives as long as the cache. */
enum dkim_key_status keycache_get(struct keycache *kc, const char *name,
				  const struct dkim_key **key, const char **why);
/* Queries sent so far (the rest were answered from the cache). */
unsigned long keycache_queries(const struct keycache *kc);

#endif
