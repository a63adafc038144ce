/*
 * flow: one worker's table of TCP connections, keyed so that both directions
 * of a connection find the same entry (the two endpoints are stored sorted).
 *
 * Data model: an rte_hash maps a struct flow_key to a slot in a fixed array
 * of struct flow_entry (the slot is the hash's key position), sized at
 * creation. Entries sit on one list in order of last activity (capture
 * time), so the oldest idle flow is always at the head:
 *  - idle: flow_expire ends flows idle longer than idle_ns with reason "idle";
 *  - pressure: flow_insert into a full table ends the head with reason
 *    "evicted" first (oldest idle first), and counts it;
 *  - quiet: flow_trim calls cfg->on_quiet once for each flow quiet longer
 *    than trim_ns (the owner releases buffers an active flow needs); the
 *    quiet flows are a prefix of the list, so this costs O(flows trimmed).
 * Ending a flow calls cfg->on_end(arg, entry, reason) before the slot is
 * reused; the owner frees what it hung on entry->user there.
 *
 * Limits: capacity in [FLOW_MIN_CAPACITY, FLOW_MAX_CAPACITY].
 * Thread-safety: none; one table per worker lcore (needs the EAL up, since
 * rte_hash lives in DPDK memory). Names must be unique per process.
 */
#ifndef WS_DATAPLANE_FLOW_H
#define WS_DATAPLANE_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLOW_MIN_CAPACITY 8u
#define FLOW_MAX_CAPACITY (16u * 1024 * 1024)
#define FLOW_BULK 32u /* keys per flow_lookup_bulk call at most */

struct flow_key {
	uint8_t ip_lo[16], ip_hi[16]; /* the smaller (ip, port) endpoint first */
	uint16_t port_lo, port_hi;
	uint32_t zero; /* padding, always 0, hashed */
};

struct flow_entry {
	struct flow_key key;
	uint64_t last_ns;    /* capture time of the last packet */
	uint32_t prev, next; /* activity list (slot numbers) */
	bool live;
	bool client_is_lo; /* set by the owner: which side is the client */
	uint8_t fin_seen;  /* owner's use: bit per direction */
	void *user;        /* owner's session */
};

struct flow_counters {
	uint64_t created, ended, idle, evicted, insert_failed, active, peak, trimmed;
};

struct flow_table_config {
	const char *name; /* unique in the process (rte_hash name) */
	uint32_t capacity;
	uint64_t idle_ns; /* 0: never idle out */
	uint64_t trim_ns; /* 0: never call on_quiet */
	int socket;       /* NUMA socket, SOCKET_ID_ANY ok */
	void (*on_end)(void *arg, struct flow_entry *e, const char *reason);
	void (*on_quiet)(void *arg, struct flow_entry *e);
	void *arg;
};

struct flow_table;

/* Build the symmetric key; returns true when (src, sport) is the lo side. */
bool flow_key_make(const uint8_t src[16], uint16_t sport, const uint8_t dst[16], uint16_t dport,
                   struct flow_key *k);
/* Symmetric hash of the endpoints, for spreading flows over workers. */
uint32_t flow_key_hash(const struct flow_key *k);

/* Receive-side scaling with a symmetric Toeplitz key: the 16-bit pattern
 * 0x6d5a repeated makes the hash of (src, dst, sport, dport) equal to that
 * of (dst, src, dport, sport), so a NIC given this key puts both directions
 * of a connection on one queue. flow_rss_key fills len bytes (NICs take 40
 * or 52); flow_rss_hash is the hash such a NIC computes over the TCP
 * 4-tuple (IPv4 when both addresses are ::ffff:a.b.c.d, else IPv6), used to
 * find the queue that owns a datagram rebuilt from fragments (a NIC hashes
 * fragments on the addresses alone, so they may arrive on another queue). */
#define FLOW_RSS_KEY_LEN 40u /* bytes the hash needs: 36 bytes of IPv6 tuple + 4 */
void flow_rss_key(uint8_t *key, size_t len);
uint32_t flow_rss_hash(const uint8_t src[16], uint16_t sport, const uint8_t dst[16],
                       uint16_t dport);

/* NULL with why filled when the capacity is out of range or memory lacks. */
struct flow_table *flow_table_new(const struct flow_table_config *cfg, char *why, size_t why_len);
/* Ends every live flow with reason (NULL: "capture-end"), then frees. NULL-safe. */
void flow_table_free(struct flow_table *t, const char *reason);

/* out[i] = the entry for keys[i] or NULL; n <= FLOW_BULK. */
void flow_lookup_bulk(struct flow_table *t, const struct flow_key *const *keys, unsigned n,
                      struct flow_entry **out);
struct flow_entry *flow_lookup(struct flow_table *t, const struct flow_key *k);
/* A new entry for k (which must not be present), evicting the oldest flow
 * when the table is full; NULL only if the hash refuses the key even then. */
struct flow_entry *flow_insert(struct flow_table *t, const struct flow_key *k, uint64_t now_ns);
/* Activity at now_ns: the entry moves to the tail of the list. */
void flow_touch(struct flow_table *t, struct flow_entry *e, uint64_t now_ns);
/* End one flow (on_end runs) and free its slot. */
void flow_end(struct flow_table *t, struct flow_entry *e, const char *reason);
/* End flows idle at now_ns, at most max of them; returns how many. */
unsigned flow_expire(struct flow_table *t, uint64_t now_ns, unsigned max);
void flow_end_all(struct flow_table *t, const char *reason);
/* on_quiet for flows quiet longer than trim_ns at now_ns (each once until it
 * is active again), at most max; returns how many. */
unsigned flow_trim(struct flow_table *t, uint64_t now_ns, unsigned max);
const struct flow_counters *flow_counters(const struct flow_table *t);

#endif
