/*
 * sessjson: the replay's session line; the contract is in sessjson.h.
 */
#include "sessjson.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cpclient.h"
#include "json.h"
#include "smtpp.h"
#include "readfile.h"
#include "sts.h"
#include "tlsobs.h"
#include "wiresig.h"

struct sj_policy {
	char domain[STS_DOMAIN_MAX + 1];
	struct sts_policy pol;
};

struct sj_mx {
	uint8_t ip[16];
	char host[STS_DOMAIN_MAX + 1];
};

struct sj_retry {
	uint8_t client[16];
	uint64_t failed_ts_ns; /* 0: free slot */
};

struct sessjson {
	struct sj_policy pol[SESSJSON_MAX_POLICIES];
	unsigned npol;
	struct sj_mx mx[SESSJSON_MAX_MX_MAP];
	unsigned nmx;
	pthread_mutex_t lock;
	struct sj_retry retry[SESSJSON_RETRY_SLOTS];
	unsigned retry_next;
};

struct sessjson *
sessjson_new(void)
{
	struct sessjson *sj = calloc(1, sizeof(*sj));
	if (sj)
		pthread_mutex_init(&sj->lock, NULL);
	return sj;
}

void
sessjson_free(struct sessjson *sj)
{
	if (!sj)
		return;
	pthread_mutex_destroy(&sj->lock);
	free(sj);
}

static int
copy_name(char *dst, const char *s, size_t n)
{
	if (n == 0 || n > STS_DOMAIN_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		dst[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
	dst[n] = '\0';
	return 0;
}

int
sessjson_add_policy(struct sessjson *sj, const char *arg, char *why, size_t why_len)
{
	const char *eq = strchr(arg, '=');
	if (!eq) {
		snprintf(why, why_len, "%s: want DOMAIN=FILE", arg);
		return -1;
	}
	if (sj->npol == SESSJSON_MAX_POLICIES) {
		snprintf(why, why_len, "more than %d policies", SESSJSON_MAX_POLICIES);
		return -1;
	}
	struct sj_policy *p = &sj->pol[sj->npol];
	if (copy_name(p->domain, arg, (size_t)(eq - arg)) != 0) {
		snprintf(why, why_len, "%s: bad domain", arg);
		return -1;
	}
	size_t len;
	char *body = read_file(eq + 1, &len);
	if (!body) {
		snprintf(why, why_len, "%s: cannot read", eq + 1);
		return -1;
	}
	char pw[200];
	enum sts_pol_status st = sts_policy_parse(body, len, &p->pol, pw, sizeof(pw));
	free(body); /* extension spans are not used here */
	p->pol.n_ext = 0;
	if (st != STS_POL_OK) {
		snprintf(why, why_len, "%s: policy not valid: %s", eq + 1, pw);
		return -1;
	}
	sj->npol++;
	return 0;
}

static int
parse_ip(const char *s, size_t n, uint8_t out[16])
{
	char buf[INET6_ADDRSTRLEN];
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(out, 0, 16);
	if (inet_pton(AF_INET, buf, out + 12) == 1) {
		out[10] = out[11] = 0xff; /* ::ffff:a.b.c.d, as dp_endpoint */
		return 0;
	}
	return inet_pton(AF_INET6, buf, out) == 1 ? 0 : -1;
}

int
sessjson_add_mx(struct sessjson *sj, const char *arg, char *why, size_t why_len)
{
	const char *eq = strchr(arg, '=');
	if (!eq) {
		snprintf(why, why_len, "%s: want IP=HOST", arg);
		return -1;
	}
	if (sj->nmx == SESSJSON_MAX_MX_MAP) {
		snprintf(why, why_len, "more than %d --mx-map entries", SESSJSON_MAX_MX_MAP);
		return -1;
	}
	struct sj_mx *m = &sj->mx[sj->nmx];
	if (parse_ip(arg, (size_t)(eq - arg), m->ip) != 0 ||
	    copy_name(m->host, eq + 1, strlen(eq + 1)) != 0) {
		snprintf(why, why_len, "%s: want IP=HOST", arg);
		return -1;
	}
	sj->nmx++;
	return 0;
}

static const struct sj_policy *
policy_for(const struct sessjson *sj, const char *domain)
{
	for (unsigned i = 0; i < sj->npol; i++)
		if (strcasecmp(sj->pol[i].domain, domain) == 0)
			return &sj->pol[i];
	return NULL;
}

/* The certificate against the MX host at capture time (RFC 8461 4.2). */
static enum sts_cert
cert_verdict(const struct dp_session_record *rec, const char *mx, int64_t at)
{
	const struct dp_tls_facts *t = &rec->tls;
	if (rec->tls_anonymous)
		return STS_CERT_NOT_TRUSTED; /* no certificate at all: nothing chains to a root */
	if (!t->cert_seen)
		return STS_CERT_NOT_ASSESSABLE;
	if (at < t->not_before || at > t->not_after)
		return STS_CERT_EXPIRED;
	if (!t->chain_trusted)
		return STS_CERT_NOT_TRUSTED;
	if (!mx)
		return STS_CERT_HOST_MISMATCH;
	for (size_t i = 0; i < t->ncert_names; i++) {
		const char *n = t->cert_names[i];
		if (strncmp(n, "CN=", 3) == 0)
			continue; /* never a DNS-ID */
		if (sts_dnsid_match(n, strlen(n), mx, strlen(mx)))
			return STS_CERT_VALID;
	}
	return STS_CERT_HOST_MISMATCH;
}

static const char *
cert_name(enum sts_cert c)
{
	switch (c) {
	case STS_CERT_VALID:
		return "valid";
	case STS_CERT_HOST_MISMATCH:
		return "host-mismatch";
	case STS_CERT_EXPIRED:
		return "expired";
	case STS_CERT_NOT_TRUSTED:
		return "not-trusted";
	case STS_CERT_OTHER_FAILURE:
		return "other-failure";
	default:
		return "not-assessable";
	}
}

/* W-6: remember failed handshakes per client; a later cleartext MAIL from
 * the same client within the window is the fallback. */
static bool
retry_check(struct sessjson *sj, const struct dp_session_record *rec)
{
	const uint8_t *cip = rec->info->client.ip;
	bool cleartext_mail = rec->transactions > 0 && !rec->starttls_used;
	bool hit = false;
	pthread_mutex_lock(&sj->lock);
	struct sj_retry *slot = NULL;
	for (unsigned i = 0; i < SESSJSON_RETRY_SLOTS; i++)
		if (sj->retry[i].failed_ts_ns && memcmp(sj->retry[i].client, cip, 16) == 0)
			slot = &sj->retry[i];
	if (slot && cleartext_mail && rec->first_ts_ns >= slot->failed_ts_ns &&
	    rec->first_ts_ns - slot->failed_ts_ns <= (uint64_t)SESSJSON_RETRY_WINDOW_S * 1000000000u) {
		hit = true;
		slot->failed_ts_ns = 0;
	}
	if (rec->tls_failed) {
		if (!slot) {
			slot = &sj->retry[sj->retry_next];
			sj->retry_next = (sj->retry_next + 1) % SESSJSON_RETRY_SLOTS;
		}
		memcpy(slot->client, cip, 16);
		slot->failed_ts_ns = rec->last_ts_ns ? rec->last_ts_ns : 1;
	}
	pthread_mutex_unlock(&sj->lock);
	return hit;
}

static void
endpoint(struct json *j, const char *kip, const char *kport, const struct dp_endpoint *ep)
{
	char ip[INET6_ADDRSTRLEN];
	cpc_ip_text(ep, ip, sizeof(ip));
	json_key(j, kip);
	json_str(j, ip);
	json_key(j, kport);
	json_int(j, ep->port);
}

static void
tls_json(struct json *j, const struct dp_session_record *rec)
{
	const struct dp_tls_facts *t = &rec->tls;
	json_key(j, "tls");
	json_obj(j);
	json_key(j, "client_hello");
	json_bool(j, t->client_hello);
	json_key(j, "server_hello");
	json_bool(j, t->server_hello);
	json_key(j, "version_offered_max");
	json_str(j, t->client_hello ? tlsobs_version_name(t->version_offered_max) : NULL);
	json_key(j, "version");
	json_str(j, t->server_hello ? tlsobs_version_name(t->version) : NULL);
	json_key(j, "resumed");
	json_bool(j, t->resumed);
	json_key(j, "sni");
	json_str(j, t->sni);
	json_key(j, "established");
	json_bool(j, rec->tls_established);
	json_key(j, "failed");
	json_str(j, rec->tls_fail_reason);
	json_key(j, "anonymous");
	json_bool(j, rec->tls_anonymous);
	json_key(j, "cert_seen");
	json_bool(j, t->cert_seen);
	if (t->cert_seen) {
		json_key(j, "cert_names");
		json_arr(j);
		for (size_t i = 0; i < t->ncert_names; i++)
			json_str(j, t->cert_names[i]);
		json_arr_end(j);
		json_key(j, "not_before");
		json_int(j, t->not_before);
		json_key(j, "not_after");
		json_int(j, t->not_after);
		json_key(j, "issuer");
		json_str(j, t->issuer);
		json_key(j, "chain_trusted");
		json_bool(j, t->chain_trusted);
	}
	json_obj_end(j);
}

static void
anomaly_json(struct json *j, const struct dp_anomaly *a)
{
	json_obj(j);
	json_key(j, "name");
	json_str(j, a->name);
	json_key(j, "dir");
	json_str(j, a->dir == DP_DIR_C2S ? "c2s" : "s2c");
	json_key(j, "offset");
	json_int(j, (long long)a->offset);
	json_obj_end(j);
}

void
sessjson_print(struct sessjson *sj, FILE *f, const struct dp_session_record *rec)
{
	/* the MX host: SNI, else the address map */
	const char *mx = NULL, *mx_src = "none";
	if (rec->tls.sni) {
		mx = rec->tls.sni;
		mx_src = "sni";
	} else {
		for (unsigned i = 0; i < sj->nmx; i++)
			if (memcmp(sj->mx[i].ip, rec->info->server.ip, 16) == 0) {
				mx = sj->mx[i].host;
				mx_src = "mx-map";
				break;
			}
	}
	/* the policy domain: cleartext RCPT, else a policy naming the MX host */
	const struct sj_policy *pol = NULL;
	const char *pdom = NULL, *pdom_src = "none";
	for (size_t i = 0; i < rec->nrcpt_domains && !pol; i++)
		pol = policy_for(sj, rec->rcpt_domains[i]);
	if (pol) {
		pdom = pol->domain;
		pdom_src = "rcpt";
	} else if (rec->nrcpt_domains > 0) {
		pdom = rec->rcpt_domains[0];
		pdom_src = "rcpt";
	} else if (mx) {
		for (unsigned i = 0; i < sj->npol && !pol; i++)
			if (sts_mx_match(&sj->pol[i].pol, mx, strlen(mx)))
				pol = &sj->pol[i];
		if (pol) {
			pdom = pol->domain;
			pdom_src = "mx-host";
		}
	}
	int64_t at = (int64_t)(rec->first_ts_ns / 1000000000u);
	enum sts_cert cert = cert_verdict(rec, mx, at);
	struct sts_session ss = {
		.mx_host = mx,
		.mx_host_len = mx ? strlen(mx) : 0,
		.starttls_offered = rec->starttls_offered,
		.tls_established = rec->tls_established,
		.cert = cert,
	};
	const struct sts_policy *p = pol ? &pol->pol : NULL;
	struct sts_verdict v = sts_decide(p, &ss);

	struct dp_anomaly extra[WIRESIG_COUNT];
	size_t nextra = 0;
	if (p && p->mode != STS_MODE_NONE) {
		struct wiresig_policy_in in = {
			.has_policy = true,
			.enforce = p->mode == STS_MODE_ENFORCE,
			.mx_match = mx && sts_mx_match(p, mx, strlen(mx)),
			.cert = cert,
		};
		nextra = wiresig_policy(rec, &in, extra, WIRESIG_COUNT - 1);
	}
	if (retry_check(sj, rec))
		extra[nextra++] = (struct dp_anomaly){
			.name = wiresig_name(WS_SIG_CLEARTEXT_RETRY), .dir = DP_DIR_C2S, .offset = rec->off.mail};

	struct json j;
	json_begin(&j, f);
	json_key(&j, "session_record");
	json_obj(&j);
	endpoint(&j, "client_ip", "client_port", &rec->info->client);
	endpoint(&j, "server_ip", "server_port", &rec->info->server);
	json_key(&j, "helo");
	json_str(&j, rec->helo);
	json_key(&j, "starttls_offered");
	json_bool(&j, rec->starttls_offered);
	json_key(&j, "starttls_used");
	json_bool(&j, rec->starttls_used);
	json_key(&j, "pipelining");
	json_bool(&j, rec->pipelining);
	json_key(&j, "chunking");
	json_bool(&j, rec->chunking);
	json_key(&j, "transactions");
	json_int(&j, rec->transactions);
	json_key(&j, "messages");
	json_int(&j, rec->messages);
	json_key(&j, "end_reason");
	json_str(&j, rec->end_reason);
	if (rec->info->midstream) {
		json_key(&j, "midstream");
		json_bool(&j, true);
	}
	json_key(&j, "implicit_tls");
	json_bool(&j, rec->info->implicit_tls);
	json_key(&j, "tls_bytes_c2s");
	json_int(&j, (int64_t)rec->tls_bytes[DP_DIR_C2S]);
	json_key(&j, "tls_bytes_s2c");
	json_int(&j, (int64_t)rec->tls_bytes[DP_DIR_S2C]);
	json_key(&j, "gaps");
	json_int(&j, (int64_t)rec->gaps);
	json_key(&j, "rcpt_domains");
	json_arr(&j);
	for (size_t i = 0; i < rec->nrcpt_domains; i++)
		json_str(&j, rec->rcpt_domains[i]);
	json_arr_end(&j);
	/* the reply code to each command, in order: [command, code] */
	json_key(&j, "replies");
	json_arr(&j);
	for (size_t i = 0; i < rec->nreplies; i++) {
		json_arr(&j);
		json_str(&j, smtpp_verb_name((enum smtpp_verb)rec->replies[i].verb));
		json_int(&j, rec->replies[i].code);
		json_arr_end(&j);
	}
	json_arr_end(&j);
	if (rec->replies_over) {
		json_key(&j, "replies_over");
		json_int(&j, (int64_t)rec->replies_over);
	}
	tls_json(&j, rec);
	json_key(&j, "anomalies");
	json_arr(&j);
	for (size_t i = 0; i < rec->nanomalies; i++)
		anomaly_json(&j, &rec->anomalies[i]);
	for (size_t i = 0; i < nextra; i++)
		anomaly_json(&j, &extra[i]);
	json_arr_end(&j);
	json_key(&j, "sts");
	json_obj(&j);
	json_key(&j, "result");
	json_str(&j, v.result == STS_NOT_ASSESSABLE ? "not-assessable" : sts_result_name(v.result));
	json_key(&j, "reason");
	json_str(&j, sts_result_type_name(v.reason));
	json_key(&j, "reason_code");
	json_str(&j, v.reason_code);
	json_key(&j, "enforce");
	json_bool(&j, v.enforce);
	json_key(&j, "policy_domain");
	json_str(&j, pdom);
	json_key(&j, "policy_domain_source");
	json_str(&j, pdom_src);
	json_key(&j, "mode");
	json_str(&j, p ? sts_mode_name(p->mode) : NULL);
	json_key(&j, "mx_host");
	json_str(&j, mx);
	json_key(&j, "mx_host_source");
	json_str(&j, mx_src);
	json_key(&j, "certificate");
	json_str(&j, cert_name(cert));
	json_obj_end(&j);
	json_obj_end(&j);
	json_end(&j);
}
