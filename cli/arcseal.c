/*
 * `wireseal arc-seal --key PEM --domain D --selector S --authserv-id ID
 *   [--timestamp T] [--headers h1:h2] [--canon H/B] [--zone FILE]
 *   [--dns-server IP[@PORT]] FILE`
 * writes FILE with a new ARC set (ARC-Seal, ARC-Message-Signature,
 * ARC-Authentication-Results) on top to stdout. The new seal's cv= is the
 * arc= result this authserv-id stamped in its Authentication-Results (the
 * chain as it arrived, before this ADMD changed the message); without one,
 * the chain is validated now, keys from DNS. A chain whose newest seal says
 * cv=fail gets no new set: the message is written unchanged, and a note
 * goes to stderr. Line ends follow the message's (CRLF, or LF).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arc.h"
#include "cmd.h"
#include "dns.h"
#include "keys.h"
#include "readfile.h"
#include "rfc5322.h"

static void
usage(void)
{
	fprintf(stderr, "usage: wireseal arc-seal --key PEM --domain D --selector S --authserv-id ID "
			"[--timestamp T] [--headers h1:h2] [--canon H/B] [--zone FILE] "
			"[--dns-server IP[@PORT]] FILE\n");
}

/* The chain as it stands, validated with keys from DNS. */
static enum arc_result
validate_now(const char *msg, size_t len, struct ws_dns *dns)
{
	enum arc_result res = ARC_FAIL;
	struct rfc5322_header hdr;
	struct arc_validator *v = arc_validator_new(NULL);
	struct keycache *kc = keycache_new(dns);
	rfc5322_init(&hdr);
	size_t used;
	enum rfc5322_status st = rfc5322_push(&hdr, (const uint8_t *)msg, len, &used);
	if (st == RFC5322_NEED_MORE) {
		st = rfc5322_finish(&hdr);
		used = len;
	}
	if (!v || !kc || st != RFC5322_DONE)
		goto out;
	arc_validator_start(v, &hdr);
	arc_validator_body(v, (const uint8_t *)msg + used, len - used);
	arc_validator_body_end(v);
	for (size_t k = 0; k < arc_validator_key_slots(v); k++) {
		const char *name = arc_validator_key_name(v, k);
		if (!name)
			continue;
		const struct dkim_key *key;
		const char *why;
		enum dkim_key_status ks = keycache_get(kc, name, &key, &why);
		arc_validator_set_key(v, k, ks, key, why);
	}
	arc_validator_finish(v);
	res = arc_validator_chain(v)->result;
out:
	rfc5322_free(&hdr);
	keycache_free(kc);
	arc_validator_free(v);
	return res;
}

int
cmd_arc_seal(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"domain", required_argument, NULL, 'd'},
		{"selector", required_argument, NULL, 's'},
		{"authserv-id", required_argument, NULL, 'a'},
		{"timestamp", required_argument, NULL, 't'},
		{"headers", required_argument, NULL, 'H'},
		{"canon", required_argument, NULL, 'c'},
		{"zone", required_argument, NULL, 'z'},
		{"dns-server", required_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *keyfile = NULL;
	struct arc_seal_params p = {.hcanon = CANON_RELAXED, .bcanon = CANON_RELAXED,
				    .t = (int64_t)time(NULL), .cv = ARC_NONE};
	struct ws_dns_config dcfg = {0};
	const char *servers[9] = {0};
	size_t nservers = 0;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			keyfile = optarg;
			break;
		case 'd':
			p.domain = optarg;
			break;
		case 's':
			p.selector = optarg;
			break;
		case 'a':
			p.authserv_id = optarg;
			break;
		case 't':
			p.t = strtoll(optarg, NULL, 10);
			break;
		case 'H':
			p.headers = optarg;
			break;
		case 'c':
			if (parse_canon_pair(optarg, &p.hcanon, &p.bcanon) != 0) {
				fprintf(stderr, "wireseal arc-seal: unknown canonicalization '%s'\n", optarg);
				return 2;
			}
			break;
		case 'z':
			dcfg.zone_file = optarg;
			break;
		case 'S':
			if (nservers < 8)
				servers[nservers++] = optarg;
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 2;
		}
	}
	if (!keyfile || !p.domain || !p.selector || !p.authserv_id || optind != argc - 1) {
		usage();
		return 2;
	}
	if (nservers)
		dcfg.forwarders = servers;
	const char *path = argv[optind];
	size_t mlen;
	struct ws_privkey *key = load_key_file("wireseal arc-seal", keyfile);
	if (!key)
		return 1;
	const char *why = NULL;
	int rc;
	p.key = key;
	p.algo = ws_privkey_alg(key) == WS_SIG_ED25519 ? DKIM_ED25519_SHA256 : DKIM_RSA_SHA256;
	char *msg = read_file(path, &mlen);
	char *fields = NULL;
	size_t flen = 0;
	struct ws_dns *dns = NULL;
	struct rfc5322_header hdr;
	rfc5322_init(&hdr);
	int status = 1;
	if (!msg) {
		fprintf(stderr, "wireseal arc-seal: %s: %s\n", path, strerror(errno));
		goto out;
	}
	size_t used;
	enum rfc5322_status st = rfc5322_push(&hdr, (const uint8_t *)msg, mlen, &used);
	if (st == RFC5322_NEED_MORE)
		st = rfc5322_finish(&hdr);
	if (st != RFC5322_DONE) {
		fprintf(stderr, "wireseal arc-seal: %s: malformed message: %s\n", path,
			rfc5322_strerror(hdr.error));
		goto out;
	}
	if (arc_cv_from_authres(&hdr, p.authserv_id, &p.cv) != 0) {
		char dwhy[256];
		dns = ws_dns_new(&dcfg, dwhy, sizeof(dwhy));
		if (!dns) {
			fprintf(stderr, "wireseal arc-seal: %s: %s\n",
				dcfg.zone_file ? dcfg.zone_file : "DNS resolver", dwhy);
			goto out;
		}
		p.cv = validate_now(msg, mlen, dns);
	}
	rc = arc_seal(&p, (const uint8_t *)msg, mlen, &fields, &flen, &why);
	if (rc < 0) {
		fprintf(stderr, "wireseal arc-seal: %s: %s\n", path, why);
		goto out;
	}
	if (rc == 1)
		fprintf(stderr, "wireseal arc-seal: %s: the newest ARC-Seal has cv=fail; no set added\n",
			path);
	else
		write_lines(stdout, fields, flen, message_is_lf(msg, mlen));
	fwrite(msg, 1, mlen, stdout);
	fflush(stdout);
	status = 0;
out:
	rfc5322_free(&hdr);
	ws_dns_free(dns);
	free(fields);
	free(msg);
	ws_privkey_free(key);
	return status;
}
