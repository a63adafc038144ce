/*
 * cpconf: wireseal-cp's configuration, read from a YAML file (libyaml).
 *
 * Every directive is declared once in CPCONF_FOREACH (dotted name, type,
 * field, default, documentation); the loader, the defaults, `--check-config`
 * and the directive list (`wireseal-cp --directives`) all come from that
 * table. Nested YAML mappings give the dotted names ("dns:\n  timeout_ms:"
 * is dns.timeout_ms). An unknown directive, a value of the wrong type or a
 * duplicate is an error naming the line. Types: STR, UINT (decimal, up to
 * UINT32_MAX), BOOL (true/false/yes/no/on/off), LIST (a sequence of
 * strings), MAP (a mapping of strings to strings).
 *
 * Ownership: a struct cpconf owns all its strings (cpconf_free).
 * Limits: CPCONF_MAX_LIST entries per LIST/MAP, CPCONF_MAX_STR bytes a value.
 */
#ifndef WS_CTRLPLANE_CPCONF_H
#define WS_CTRLPLANE_CPCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CPCONF_MAX_LIST 1024
#define CPCONF_MAX_STR 4096

struct cpconf_list {
	char **v;
	size_t n;
};

struct cpconf_map {
	char **key, **value;
	size_t n;
};

/* X(name, TYPE, field, default, doc); the default of LIST/MAP is always empty. */
#define CPCONF_FOREACH(X)                                                                        \
	X("user", STR, user, "",                                                                  \
	  "after opening its sockets and files, switch to this user and its group; empty: stay")  \
	X("cpm_socket", STR, cpm_socket, "/run/wireseal/cpm.sock",                                \
	  "UNIX SOCK_SEQPACKET socket the dataplane connects to")                                 \
	X("control_socket", STR, control_socket, "/run/wireseal/ctl.sock",                        \
	  "UNIX socket for wiresealctl; mode 0660 (owner and group may use it)")                  \
	X("dns.servers", LIST, dns_servers, "",                                                   \
	  "resolvers as \"ip[@port]\"; empty: the system resolver (/etc/resolv.conf)")            \
	X("dns.zone_file", STR, dns_zone_file, "",                                                \
	  "answer from this RFC 1035 master file only (offline mode); overrides dns.servers")     \
	X("dns.unbound_conf", STR, dns_unbound_conf, "", "extra unbound.conf read on top")         \
	X("dns.trust_anchor_file", STR, dns_trust_anchor_file, "",                                \
	  "DNSSEC trust anchors; validation is on when set")                                      \
	X("dns.timeout_ms", UINT, dns_timeout_ms, "2000",                                         \
	  "one DNS query's time limit; past it the answer is a temporary failure")                \
	X("cache.max_entries", UINT, cache_max_entries, "100000",                                 \
	  "DNS answers kept (keys, SPF, DMARC); when full, new answers are used but not kept")     \
	X("cache.max_ttl", UINT, cache_max_ttl, "86400", "upper bound on a positive answer's TTL") \
	X("cache.negative_ttl", UINT, cache_negative_ttl, "300",                                  \
	  "upper bound on how long NXDOMAIN/NODATA is remembered; 0: never")                      \
	X("keys.max_parked", UINT, keys_max_parked, "4096",                                       \
	  "key requests waiting for DNS at once; past it a request is answered tempfail")          \
	X("policy.authserv_id", STR, authserv_id, "",                                             \
	  "authserv-id of the Authentication-Results written; empty: the host name")              \
	X("policy.org_domain", STR, org_domain, "treewalk",                                       \
	  "DMARC organisational domain: treewalk (RFC 9989) or psl (RFC 7489)")                   \
	X("policy.psl_file", STR, psl_file, "/usr/share/publicsuffix/public_suffix_list.dat",     \
	  "Public Suffix List for policy.org_domain: psl")                                        \
	X("policy.trusted_arc_sealers", LIST, trusted_arc_sealers, "",                            \
	  "ARC sealer domains whose dmarc=pass may override a DMARC fail (RFC 8617 7.2)")          \
	X("policy.domain_overrides", MAP, domain_overrides, "",                                   \
	  "From domain -> none|quarantine|reject|skip: replaces the DMARC disposition "           \
	  "(skip: no DMARC evaluation)")                                                          \
	X("policy.max_inflight", UINT, max_inflight, "1024",                                      \
	  "message records being evaluated at once; past it the dataplane socket is not read")    \
	X("sinks.json_file", STR, json_file, "/var/log/wireseal/eve.json",                        \
	  "JSON lines (one event per line, fsync'ed before the ACK); empty: off")                 \
	X("sinks.syslog", BOOL, syslog, "false", "also log one line per record to syslog")        \
	X("sinks.syslog_ident", STR, syslog_ident, "wireseal-cp", "syslog ident")                 \
	X("sinks.syslog_socket", STR, syslog_socket, "/dev/log", "the syslog daemon's datagram socket") \
	X("sinks.dedupe_bytes", UINT, dedupe_bytes, "1048576",                                    \
	  "at start, record ids in this many bytes at the end of json_file are not written again") \
	X("metrics.listen", STR, metrics_listen, "127.0.0.1",                                     \
	  "address of the Prometheus endpoint (GET /metrics)")                                    \
	X("metrics.port", UINT, metrics_port, "9187", "its TCP port; 0: no endpoint")

#define CPCONF_T_STR char *
#define CPCONF_T_UINT unsigned
#define CPCONF_T_BOOL bool
#define CPCONF_T_LIST struct cpconf_list
#define CPCONF_T_MAP struct cpconf_map

struct cpconf {
#define CPCONF_FIELD(name, type, field, def, doc) CPCONF_T_##type field;
	CPCONF_FOREACH(CPCONF_FIELD)
#undef CPCONF_FIELD
};

/* Defaults only. 0, or -1 on allocation failure. */
int cpconf_defaults(struct cpconf *c);
/* Defaults, then the file on top. 0, or -1 with a reason naming the line. */
int cpconf_load(struct cpconf *c, const char *path, char *why, size_t whylen);
/* The same from bytes in memory; name is used in messages. */
int cpconf_load_mem(struct cpconf *c, const char *name, const void *p, size_t n, char *why,
		    size_t whylen);
void cpconf_free(struct cpconf *c);
/* Every directive with its type, default and documentation, one per line. */
void cpconf_describe(FILE *f);
/* The MAP value for key (case-insensitive), or NULL. */
const char *cpconf_map_get(const struct cpconf_map *m, const char *key);

#endif
