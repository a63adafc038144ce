/* cpsts: MTA-STS session verdicts in the control plane (see cpsts.h). */
#include "cpsts.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CPSTS_X_NAME(e, s) [e] = s,
static const char *const source_names[] = {CPSTS_SOURCES(CPSTS_X_NAME)};
#undef CPSTS_X_NAME

const char *
cpsts_source_name(enum cpsts_source s)
{
	return (unsigned)s <= CPSTS_SRC_UNKNOWN ? source_names[s] : "?";
}

const char *
cpsts_mx_source_name(enum cpsts_mx_source s)
{
	static const char *const n[] = {"dns", "sni", "ip"};
	return (unsigned)s <= CPSTS_MX_IP ? n[s] : "?";
}

struct learned {
	char host[STS_DOMAIN_MAX + 1];
	char domain[STS_DOMAIN_MAX + 1];
};

struct cpsts {
	struct ws_dns *dns;
	struct sts_fetcher *fetcher;
	char **map_key, **map_domain;
	size_t nmap;
	struct learned *learned; /* a ring: the oldest entry is replaced when full */
	size_t nlearned, next_learned;
};

enum sts_cert
cpsts_cert(const struct cpm_tls *t, const char *mx_host, int64_t capture_time)
{
	if (!t->cert_seen)
		return STS_CERT_NOT_ASSESSABLE;
	if (capture_time < t->not_before || capture_time > t->not_after)
		return STS_CERT_EXPIRED;
	if (!t->chain_trusted)
		return STS_CERT_NOT_TRUSTED;
	size_t hl = mx_host ? strlen(mx_host) : 0;
	for (uint32_t i = 0; i < t->ncert_names && hl; i++)
		if (t->cert_names[i].len &&
		    sts_dnsid_match(t->cert_names[i].p, t->cert_names[i].len, mx_host, hl))
			return STS_CERT_VALID;
	return STS_CERT_HOST_MISMATCH;
}

static char *
xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

/* Lowercase copy without a trailing dot; false when it does not fit. */
static bool
norm(const char *in, size_t len, char out[STS_DOMAIN_MAX + 1])
{
	if (len && in[len - 1] == '.')
		len--;
	if (len == 0 || len > STS_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
	out[len] = '\0';
	return true;
}

struct cpsts *
cpsts_new(const struct cpsts_config *cfg, char *why, size_t whylen)
{
	struct cpsts *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	char dwhy[256];
	c->dns = ws_dns_new(&cfg->dns, dwhy, sizeof(dwhy));
	if (!c->dns) {
		snprintf(why, whylen, "DNS: %s", dwhy);
		goto fail;
	}
	struct sts_fetch_config fc = cfg->fetch;
	fc.dns = c->dns;
	c->fetcher = sts_fetcher_new(&fc, why, whylen);
	if (!c->fetcher)
		goto fail;
	if (cfg->nmap > CPSTS_MAX_MAP) {
		snprintf(why, whylen, "sts.policy_domains: more than %d entries", CPSTS_MAX_MAP);
		goto fail;
	}
	c->map_key = calloc(cfg->nmap + 1, sizeof(char *));
	c->map_domain = calloc(cfg->nmap + 1, sizeof(char *));
	c->learned = calloc(CPSTS_MAX_LEARNED, sizeof(*c->learned));
	if (!c->map_key || !c->map_domain || !c->learned) {
		snprintf(why, whylen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < cfg->nmap; i++) {
		char k[STS_DOMAIN_MAX + 1], d[STS_DOMAIN_MAX + 1];
		if (!norm(cfg->map_key[i], strlen(cfg->map_key[i]), k) ||
		    !norm(cfg->map_domain[i], strlen(cfg->map_domain[i]), d)) {
			snprintf(why, whylen, "sts.policy_domains: bad entry \"%.100s\"",
			         cfg->map_key[i]);
			goto fail;
		}
		c->map_key[i] = xstrdup(k);
		c->map_domain[i] = xstrdup(d);
		c->nmap++;
		if (!c->map_key[i] || !c->map_domain[i]) {
			snprintf(why, whylen, "out of memory");
			goto fail;
		}
	}
	return c;
fail:
	cpsts_free(c);
	return NULL;
}

void
cpsts_free(struct cpsts *c)
{
	if (!c)
		return;
	sts_fetcher_free(c->fetcher);
	ws_dns_free(c->dns);
	for (size_t i = 0; c->map_key && i <= c->nmap; i++) {
		free(c->map_key[i]);
		free(c->map_domain[i]);
	}
	free(c->map_key);
	free(c->map_domain);
	free(c->learned);
	free(c);
}

static const char *
map_get(const struct cpsts *c, const char *key)
{
	for (size_t i = 0; i < c->nmap; i++)
		if (strcmp(c->map_key[i], key) == 0)
			return c->map_domain[i];
	return NULL;
}

static void
learn(struct cpsts *c, const char *host, const char *domain)
{
	for (size_t i = 0; i < c->nlearned; i++) {
		if (strcmp(c->learned[i].host, host) == 0) {
			snprintf(c->learned[i].domain, sizeof(c->learned[i].domain), "%.253s",
			         domain);
			return;
		}
	}
	struct learned *l = &c->learned[c->next_learned];
	c->next_learned = (c->next_learned + 1) % CPSTS_MAX_LEARNED;
	if (c->nlearned < CPSTS_MAX_LEARNED)
		c->nlearned++;
	snprintf(l->host, sizeof(l->host), "%.253s", host);
	snprintf(l->domain, sizeof(l->domain), "%.253s", domain);
}

static const char *
learned_get(const struct cpsts *c, const char *host)
{
	for (size_t i = 0; i < c->nlearned; i++)
		if (strcmp(c->learned[i].host, host) == 0)
			return c->learned[i].domain;
	return NULL;
}

/* The MX hosts of domain (RFC 5321 5.1: none -> the domain itself).
 * Returns the count (<= CPSTS_MAX_MX_HOSTS), -1 on a DNS temporary failure. */
static int
mx_hosts(struct cpsts *c, const char *domain, char hosts[CPSTS_MAX_MX_HOSTS][STS_DOMAIN_MAX + 1])
{
	struct ws_dns_answer *a = ws_dns_query(c->dns, domain, WS_DNS_MX);
	if (!a)
		return -1;
	int n = 0;
	if (a->status == WS_DNS_OK) {
		for (size_t i = 0; i < a->count && n < CPSTS_MAX_MX_HOSTS; i++)
			if (a->rrs[i].type == WS_DNS_MX && a->rrs[i].u.mx.host &&
			    norm(a->rrs[i].u.mx.host, strlen(a->rrs[i].u.mx.host), hosts[n]))
				n++;
	} else if (a->status == WS_DNS_NODATA) {
		snprintf(hosts[0], STS_DOMAIN_MAX + 1, "%s", domain);
		n = 1;
	} else if (a->status != WS_DNS_NXDOMAIN) {
		n = -1;
	}
	ws_dns_answer_free(a);
	return n;
}

/* Whether host has ip (text) among its A/AAAA records. */
static bool
host_has_ip(struct cpsts *c, const char *host, const char *ip)
{
	uint8_t want[16];
	bool v6 = strchr(ip, ':') != NULL;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, ip, want) != 1)
		return false;
	struct ws_dns_answer *a = ws_dns_query(c->dns, host, v6 ? WS_DNS_AAAA : WS_DNS_A);
	bool found = false;
	for (size_t i = 0; a && a->status == WS_DNS_OK && i < a->count && !found; i++) {
		if (!v6 && a->rrs[i].type == WS_DNS_A)
			found = memcmp(a->rrs[i].u.a, want, 4) == 0;
		else if (v6 && a->rrs[i].type == WS_DNS_AAAA)
			found = memcmp(a->rrs[i].u.aaaa, want, 16) == 0;
	}
	ws_dns_answer_free(a);
	return found;
}

/* The walk of sni-mx / ptr-mx: the parent domains of host (and host
 * itself, for a domain that is its own MX), nearest first, until one whose
 * MX RRset holds host. */
static bool
walk_for_domain(struct cpsts *c, const char *host, char out[STS_DOMAIN_MAX + 1])
{
	/* from the parent: a host is rarely the domain it serves, and a
	 * NODATA (implicit MX) answer would always "match" it */
	const char *p = strchr(host, '.');
	for (int tries = 0; p && tries < CPSTS_MAX_WALK; tries++) {
		p++;
		if (!strchr(p, '.'))
			break; /* a TLD is never a policy domain here */
		char hosts[CPSTS_MAX_MX_HOSTS][STS_DOMAIN_MAX + 1];
		int n = mx_hosts(c, p, hosts);
		for (int i = 0; i < n; i++) {
			if (strcmp(hosts[i], host) == 0) {
				snprintf(out, STS_DOMAIN_MAX + 1, "%.253s", p);
				return true;
			}
		}
		p = strchr(p, '.');
	}
	return false;
}

/* The server IP's PTR name, forward-confirmed; false when there is none. */
static bool
ptr_name(struct cpsts *c, const char *ip, char out[STS_DOMAIN_MAX + 1])
{
	uint8_t b[16];
	char q[80];
	size_t off = 0;
	if (inet_pton(AF_INET, ip, b) == 1) {
		snprintf(q, sizeof(q), "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
	} else if (inet_pton(AF_INET6, ip, b) == 1) {
		static const char hex[] = "0123456789abcdef";
		for (int i = 15; i >= 0; i--) {
			q[off++] = hex[b[i] & 15];
			q[off++] = '.';
			q[off++] = hex[b[i] >> 4];
			q[off++] = '.';
		}
		memcpy(q + off, "ip6.arpa", 9);
	} else {
		return false;
	}
	struct ws_dns_answer *a = ws_dns_query(c->dns, q, WS_DNS_PTR);
	bool ok = false;
	for (size_t i = 0; a && a->status == WS_DNS_OK && i < a->count && !ok; i++)
		if (a->rrs[i].type == WS_DNS_PTR && a->rrs[i].u.name &&
		    norm(a->rrs[i].u.name, strlen(a->rrs[i].u.name), out))
			ok = host_has_ip(c, out, ip);
	ws_dns_answer_free(a);
	return ok;
}

/* The MX host of the session for domain (see cpsts.h), and learns the
 * domain's MX hosts for later TLS sessions. */
static void
find_mx(struct cpsts *c, const char *domain, const char *server_ip, const char *sni,
        struct cpsts_eval *e)
{
	char hosts[CPSTS_MAX_MX_HOSTS][STS_DOMAIN_MAX + 1];
	int n = mx_hosts(c, domain, hosts);
	for (int i = 0; i < n; i++)
		learn(c, hosts[i], domain);
	for (int i = 0; i < n; i++) {
		if (host_has_ip(c, hosts[i], server_ip)) {
			snprintf(e->mx_host, sizeof(e->mx_host), "%.253s", hosts[i]);
			e->mx_source = CPSTS_MX_DNS;
			return;
		}
	}
	if (sni[0]) {
		snprintf(e->mx_host, sizeof(e->mx_host), "%.253s", sni);
		e->mx_source = CPSTS_MX_SNI;
		return;
	}
	snprintf(e->mx_host, sizeof(e->mx_host), "%.253s", server_ip);
	e->mx_source = CPSTS_MX_IP;
}

static int
judge(struct cpsts *c, const struct cpm_session *s, const char *server_ip, const char *sni,
      int64_t now, struct cpsts_eval *e)
{
	find_mx(c, e->domain, server_ip, sni, e);
	struct sts_resolved r;
	if (sts_resolve(c->fetcher, e->domain, now, &r) != 0) {
		snprintf(e->why, sizeof(e->why), "%.250s", r.why);
		return -1;
	}
	e->res = r.status;
	e->from_cache = r.from_cache;
	snprintf(e->why, sizeof(e->why), "%.250s", r.why);
	const struct sts_policy *p = NULL;
	if (r.status == STS_RES_POLICY) {
		e->policy = r.policy;
		p = &e->policy;
		snprintf(e->policy_id, sizeof(e->policy_id), "%s", r.id);
		e->mx_matched = sts_mx_match(p, e->mx_host, strlen(e->mx_host));
	} else if (r.status == STS_RES_FAILED) {
		e->fetch_report = r.report;
	}
	struct sts_session ss = {
	        .mx_host = e->mx_host,
	        .mx_host_len = strlen(e->mx_host),
	        .starttls_offered = s->starttls_offered,
	        .tls_established = s->starttls_used && s->tls.server_hello,
	        .cert = cpsts_cert(&s->tls, e->mx_host, (int64_t)(s->ts_usec / 1000000)),
	};
	e->cert = ss.cert;
	e->v = sts_decide(p, &ss);
	return 0;
}

int
cpsts_session(struct cpsts *c, const struct cpm_session *s, int64_t now, struct cpsts_result *out)
{
	memset(out, 0, sizeof(*out));
	char ip[64] = "", sni[STS_DOMAIN_MAX + 1] = "";
	if (cpm_str_copy(s->server.ip, ip, sizeof(ip)) != 0)
		ip[0] = '\0';
	if (!s->tls.sni.len || !norm(s->tls.sni.p, s->tls.sni.len, sni))
		sni[0] = '\0';
	/* config first: a smart host's domain is the policy domain even when
	 * the final recipients are visible (STS-TXT-10) */
	const char *d = map_get(c, ip);
	if (!d && sni[0])
		d = map_get(c, sni);
	struct cpsts_eval *e = &out->ev[0];
	if (d) {
		snprintf(e->domain, sizeof(e->domain), "%.253s", d);
		e->source = CPSTS_SRC_CONFIG;
		out->n = 1;
	} else if (s->nrcpt_domains) {
		for (uint32_t i = 0; i < s->nrcpt_domains; i++) {
			char dom[STS_DOMAIN_MAX + 1];
			if (!norm(s->rcpt_domains[i].p, s->rcpt_domains[i].len, dom))
				continue;
			bool dup = false;
			for (unsigned k = 0; k < out->n; k++)
				dup |= strcmp(out->ev[k].domain, dom) == 0;
			if (dup)
				continue;
			if (out->n == CPSTS_MAX_DOMAINS) {
				out->domains_dropped++;
				continue;
			}
			snprintf(out->ev[out->n].domain, sizeof(out->ev[0].domain), "%.253s", dom);
			out->ev[out->n].source = CPSTS_SRC_RCPT;
			out->n++;
		}
	}
	if (out->n == 0) {
		const char *l = sni[0] ? learned_get(c, sni) : NULL;
		char ptr[STS_DOMAIN_MAX + 1] = "";
		if (l) {
			snprintf(e->domain, sizeof(e->domain), "%.253s", l);
			e->source = CPSTS_SRC_LEARNED;
		} else if (sni[0] && walk_for_domain(c, sni, e->domain)) {
			e->source = CPSTS_SRC_SNI_MX;
		} else if (ip[0] && ptr_name(c, ip, ptr)) {
			if ((l = learned_get(c, ptr))) {
				snprintf(e->domain, sizeof(e->domain), "%.253s", l);
				e->source = CPSTS_SRC_LEARNED;
			} else if (walk_for_domain(c, ptr, e->domain)) {
				e->source = CPSTS_SRC_PTR_MX;
			} else {
				e->source = CPSTS_SRC_UNKNOWN;
			}
		} else {
			e->source = CPSTS_SRC_UNKNOWN;
		}
		out->n = 1;
	}
	for (unsigned i = 0; i < out->n; i++) {
		e = &out->ev[i];
		if (e->source == CPSTS_SRC_UNKNOWN) {
			/* no policy domain, no judgement: never a pass, never a fail */
			e->v = (struct sts_verdict){STS_NOT_ASSESSABLE, STS_RT_NONE, NULL, false};
			e->res = STS_RES_NONE;
			e->cert = cpsts_cert(&s->tls, sni, (int64_t)(s->ts_usec / 1000000));
			snprintf(e->mx_host, sizeof(e->mx_host), "%.253s", sni[0] ? sni : ip);
			e->mx_source = sni[0] ? CPSTS_MX_SNI : CPSTS_MX_IP;
			snprintf(e->why, sizeof(e->why),
			         "policy domain unknown (no RCPT TO, SNI or PTR "
			         "leads to an MX RRset)");
			continue;
		}
		if (judge(c, s, ip, sni, now, e) != 0) {
			if (i == 0)
				return -1;
			out->n = i; /* the verdicts so far stand */
			break;
		}
	}
	return 0;
}

struct ws_dns *
cpsts_dns(struct cpsts *c)
{
	return c->dns;
}

int
cpsts_query(struct cpsts *c, const char *domain, int64_t now, struct sts_resolved *out)
{
	char d[STS_DOMAIN_MAX + 1];
	if (!norm(domain, strlen(domain), d)) {
		memset(out, 0, sizeof(*out));
		out->status = STS_RES_NONE;
		snprintf(out->why, sizeof(out->why), "bad domain");
		return 0;
	}
	char hosts[CPSTS_MAX_MX_HOSTS][STS_DOMAIN_MAX + 1];
	int n = mx_hosts(c, d, hosts);
	for (int i = 0; i < n; i++)
		learn(c, hosts[i], d);
	return sts_resolve(c->fetcher, d, now, out);
}
