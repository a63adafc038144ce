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
	  "DNS answers kept (keys, SPF, DMARC); when full, the least recently used goes")         \
	X("cache.max_ttl", UINT, cache_max_ttl, "86400",                                          \
	  "upper bound on a positive answer's TTL; 0: never kept")                                \
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
	X("policy.fixed_pct", UINT, fixed_pct, "100",                                             \
	  "0..99: every DMARC pct draw is this value (repeatable output, as replay's "            \
	  "--random-pct); 100: a fresh random draw per message")                                  \
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
	X("metrics.port", UINT, metrics_port, "9187", "its TCP port; 0: no endpoint")              \
	X("sts.enabled", BOOL, sts_enabled, "true",                                               \
	  "judge SESSION_RECORDs against the receiving domain's MTA-STS policy (restart)")        \
	X("sts.workers", UINT, sts_workers, "2",                                                  \
	  "threads doing MTA-STS DNS and HTTPS work off the event loop (restart)")                \
	X("sts.cache_file", STR, sts_cache_file, "",                                              \
	  "SQLite file of fetched policies (survives restarts); empty: in memory (restart)")      \
	X("sts.ca_file", STR, sts_ca_file, "",                                                    \
	  "PEM trust store for policy hosts; empty: the system store (restart)")                  \
	X("sts.fetch_timeout_ms", UINT, sts_fetch_timeout_ms, "10000",                            \
	  "one policy fetch's time limit (RFC 8461 suggests at most 60 s) (restart)")             \
	X("sts.lenient_content_type", BOOL, sts_lenient_ct, "false",                              \
	  "accept a policy served with a media type other than text/plain (counted) (restart)")   \
	X("sts.test_port", UINT, sts_test_port, "0",                                              \
	  "tests only: the policy hosts' HTTPS port (0: 443) (restart)")                          \
	X("sts.policy_domains", MAP, sts_policy_domains, "",                                      \
	  "server IP or SNI host -> policy domain (a smart host's domain, RFC 8461 3.4) (restart)") \
	X("sts.query_ttl", UINT, sts_query_ttl, "300",                                            \
	  "upper bound on the ttl of an STS_ANSWER to the dataplane")                             \
	X("tlsrpt.spool_dir", STR, tlsrpt_spool_dir, "",                                          \
	  "where daily TLS-RPT reports (RFC 8460 .json.gz) are written; empty: no reports (restart)") \
	X("tlsrpt.organization_name", STR, tlsrpt_org, "",                                        \
	  "organization-name of the reports; empty: the host name (restart)")                     \
	X("tlsrpt.contact_info", STR, tlsrpt_contact, "",                                         \
	  "contact-info of the reports (an e-mail address) (restart)")                            \
	X("tlsrpt.submitter", STR, tlsrpt_submitter, "",                                          \
	  "the submitter domain in report file names and ids; empty: the host name (restart)")    \
	X("tlsrpt.own_addresses", LIST, tlsrpt_own, "",                                           \
	  "client IPs of the appliance's own deliveries: never counted in reports (restart)")     \
	X("tlsrpt.quiet_s", UINT, tlsrpt_quiet_s, "3600",                                         \
	  "after the UTC day ended, write its reports once no session came for this long")        \
	X("tlsrpt.deliver", BOOL, tlsrpt_deliver, "false",                                        \
	  "POST each report to the domain's rua=https: URIs (_smtp._tls TXT)")                     \
	X("tlsrpt.retry_s", UINT, tlsrpt_retry_s, "3600",                                         \
	  "undelivered reports younger than a day are POSTed again this often (and at start)")    \
	X("tlsrpt.ca_file", STR, tlsrpt_ca_file, "",                                              \
	  "PEM trust store for report receivers; empty: the system store (restart)")              \
	X("tlsrpt.post_timeout_ms", UINT, tlsrpt_post_timeout_ms, "30000",                        \
	  "one report POST's time limit (restart)")                                               \
	X("tlsrpt.test_port", UINT, tlsrpt_test_port, "0",                                        \
	  "tests only: connect report POSTs to this port (0: the URI's) (restart)")

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
