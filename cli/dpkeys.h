/*
 * dpk: the dataplane's asynchronous key path (wireseal-dp with the control
 * plane; `wireseal replay --async-keys`). One per worker, used only on that
 * worker's lcore: a key cache and the messages parked until their keys come.
 *
 * Data model: the cache maps a key name ("<s>._domainkey.<d>", compared
 * without case) to PENDING (a KEY_REQUEST is out, cpc_key_ask) or to the
 * answer: the parsed key, or MISSING/INVALID/TEMPFAIL with the reason. An
 * answer is fresh for its TTL (capped at DPK_MAX_TTL_S; TEMPFAIL at
 * DPK_TEMPFAIL_TTL_S), negative ones included; a stale one is asked again.
 * At most DPK_MAX_KEYS names: past that, stale answers go first, then every
 * answer (pending names stay).
 *
 * Parking: dpk_ready (session.h's key_ready) says whether a name is fresh
 * in the cache and, when not, asks for it. A message whose keys are not all
 * fresh is parked (dpk_park: its envelope is copied, the parked verifier
 * and header block are kept); dpk_poll takes the answers and finishes each
 * parked message whose keys have all been answered since it was parked,
 * and gives up on one after DPK_PARK_TIMEOUT_MS (or the configured time): its missing keys are
 * temperror "parked-timeout" (counted). Bounds: DPK_MAX_PARKED messages and
 * DPK_MAX_PARKED_BYTES estimated bytes (header block + DPK_PARKED_COST for
 * the verifier + envelope) per worker; a message that would pass either is
 * not parked: its keys not in the cache are temperror "key-park-full"
 * (counted in park_refused, dpk_message_done). Finished messages go to the
 * emit callback as ordinary message records.
 *
 * Thread-safety: none; one dpk per worker lcore (the cpc underneath is
 * shared and locked).
 */
#ifndef WS_CLI_DPKEYS_H
#define WS_CLI_DPKEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "dkim.h"
#include "session.h"

#define DPK_MAX_KEYS 4096u                 /* names cached per worker */
#define DPK_MAX_PARKED 256u                /* messages parked per worker */
#define DPK_MAX_PARKED_BYTES (96u << 20)   /* their estimated bytes per worker */
#define DPK_PARKED_COST (300u << 10)       /* a parked DKIM verifier (~292 KB) */
#define DPK_PARK_TIMEOUT_MS 7000u          /* > CPC_KEY_TIMEOUT_MS: cpc answers TEMPFAIL first */
#define DPK_MAX_TTL_S 86400u
#define DPK_TEMPFAIL_TTL_S 10u

struct cpc;
struct dpk;

struct dpk_stats {
	uint64_t requests;       /* KEY_REQUESTs asked */
	uint64_t answers;        /* KEY_ANSWERs taken */
	uint64_t hits, misses;   /* dpk_ready: fresh in the cache / not */
	uint64_t parked;         /* messages parked */
	uint64_t parked_now, parked_bytes, parked_max; /* now; the most at once */
	uint64_t finished;       /* parked messages finished with their answers */
	uint64_t parked_timeout; /* parked messages given up on */
	uint64_t park_refused;   /* messages not parked: a bound was reached */
	uint64_t evicted;        /* cache answers dropped to make room */
};

typedef void (*dpk_emit_fn)(void *arg, const struct dp_message_record *rec);

/* max_parked / park_timeout_ms: 0 for DPK_MAX_PARKED / DPK_PARK_TIMEOUT_MS. */
struct dpk *dpk_new(struct cpc *cp, unsigned slot, unsigned max_parked, unsigned park_timeout_ms);
void dpk_free(struct dpk *k); /* NULL-safe; parked messages are dropped */

/* session.h's key_ready and key_lookup, with a dpk as arg. */
bool dpk_ready(void *k, const char *name);
enum dkim_key_status dpk_lookup(void *k, const char *name, const struct dkim_key **key,
                                const char **why);
/* session.h's on_parked: keeps the message (owning p) until its keys come;
 * when a bound is reached it finishes it now (its missing keys temperror). */
void dpk_park(struct dpk *k, const struct dp_message_record *rec, struct msgstream_parked *p,
              dpk_emit_fn emit, void *arg);
/* Called by the message callback for every message decided at once: true
 * when it was refused parking (counted), so its missing keys were temperror. */
bool dpk_message_done(struct dpk *k);
/* Takes answers, finishes parked messages (through emit) that have them or
 * whose time is up. final: wait (up to DPK_PARK_TIMEOUT_MS) until none is
 * parked. Cheap when nothing is pending. */
void dpk_poll(struct dpk *k, bool final, dpk_emit_fn emit, void *arg);
const struct dpk_stats *dpk_stats(const struct dpk *k);
/* How long a parked message waits for its keys: the park_timeout_ms given
 * to dpk_new, or DPK_PARK_TIMEOUT_MS for 0 (--park-timeout not given). */
unsigned dpk_park_timeout_ms(const struct dpk *k);
/* Seconds an answer with status st and TTL ttl stays fresh: at most
 * DPK_MAX_TTL_S, a TEMPFAIL at most DPK_TEMPFAIL_TTL_S. */
uint32_t dpk_cache_ttl(enum dkim_key_status st, uint32_t ttl);

#endif
