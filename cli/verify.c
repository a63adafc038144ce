/*
 * `wireseal verify [--zone FILE] [--json] [--authserv-id ID] [--now EPOCH]
 *                  [--dns-server IP[@PORT]] [--dns-timeout MS]
 *                  [policy options, cli/policy.h] FILE...`
 *
 * Each file is streamed: the header block is parsed, then the body goes
 * through the canonicalisers chunk by chunk and is never held whole. Keys
 * come from DNS (the zone file, given servers, or the system resolver).
 * Output: one Authentication-Results header per message, or with --json one
 * JSON object per line per file. A file that cannot be read or parsed gets
 * an error line on stderr (and an "error" object with --json); the other
 * files are still processed and the exit status is 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arc.h"
#include "authres.h"
#include "cmd.h"
#include "dkim.h"
#include "dns.h"
#include "json.h"
#include "keys.h"
#include "policy.h"
#include "report.h"
#include "rfc5322.h"

#define VERIFY_CHUNK (128u * 1024)

struct verify_ctx {
	bool json;
	const char *authserv_id;
	struct dkim_verifier *v;
	struct arc_validator *arc;
	struct policy_arc_store *arc_store;
	struct keycache *keys;
	struct policy_cli pol;
	struct rfc5322_header hdr;
	uint8_t *buf;
};

static void
usage(void)
{
	fprintf(stderr, "usage: wireseal verify [--zone FILE] [--json] [--authserv-id ID] "
			"[--now EPOCH] [--dns-server IP[@PORT]] [--dns-timeout MS] "
			POLICY_CLI_USAGE " FILE...\n");
}

static void
report_error(const struct verify_ctx *c, const char *path, const char *what)
{
	fprintf(stderr, "wireseal verify: %s: %s\n", path, what);
	if (c->json) {
		struct json j;
		json_begin(&j, stdout);
		json_key(&j, "file");
		json_str(&j, path);
		json_key(&j, "error");
		json_str(&j, what);
		json_end(&j);
	}
}

static void
policy_authres(struct authres *ar, void *arg)
{
	policy_cli_authres(&((struct verify_ctx *)arg)->pol, ar);
}

static void
policy_json(struct json *j, void *arg)
{
	policy_cli_json(&((struct verify_ctx *)arg)->pol, j);
}

static void
output(struct verify_ctx *c, const char *path)
{
	struct report_parts p = {
		.authserv_id = c->authserv_id,
		.json = c->json,
		.file = path,
		.dkim = c->v,
		.arc = arc_validator_chain(c->arc),
		.authres_more = policy_authres,
		.json_more = policy_json,
		.arg = c,
	};
	report_message(stdout, &p);
}

/* Feed one span of the message; false once the header block is malformed. */
static bool
feed(struct verify_ctx *c, const uint8_t *p, size_t n, bool *in_body, const char *path)
{
	size_t used = 0;
	if (!*in_body) {
		enum rfc5322_status st = rfc5322_push(&c->hdr, p, n, &used);
		if (st == RFC5322_ERROR) {
			char what[160];
			snprintf(what, sizeof(what), "malformed message: %s",
				 rfc5322_strerror(c->hdr.error));
			report_error(c, path, what);
			return false;
		}
		if (st == RFC5322_NEED_MORE)
			return true;
		*in_body = true;
		dkim_verifier_start(c->v, &c->hdr);
		arc_validator_start(c->arc, &c->hdr);
	}
	/* the body in bounded steps, as it would arrive from the wire */
	for (size_t off = used; off < n; off += VERIFY_CHUNK) {
		size_t k = n - off < VERIFY_CHUNK ? n - off : VERIFY_CHUNK;
		dkim_verifier_body(c->v, p + off, k);
		arc_validator_body(c->arc, p + off, k);
	}
	return true;
}

/*
 * 0 when the file was verified (whatever the results), -1 on an error.
 * The file is read in VERIFY_CHUNK steps, as a stream. (Mapping it was
 * measured 2-3x slower here: page faults cost more than the copy in this VM.)
 */
static int
verify_file(struct verify_ctx *c, const char *path)
{
	int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		report_error(c, path, strerror(errno));
		return -1;
	}
	rfc5322_reset(&c->hdr);
	bool in_body = false;
	size_t total = 0;
	int rc = -1;
	for (;;) {
		ssize_t n = read(fd, c->buf, VERIFY_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			report_error(c, path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		total += (size_t)n;
		if (!feed(c, c->buf, (size_t)n, &in_body, path))
			goto out;
	}
	if (total == 0) {
		report_error(c, path, "empty file: not a message");
		goto out;
	}
	if (!in_body) {
		if (rfc5322_finish(&c->hdr) != RFC5322_DONE) {
			char what[160];
			snprintf(what, sizeof(what), "malformed message: %s",
				 rfc5322_strerror(c->hdr.error));
			report_error(c, path, what);
			goto out;
		}
		dkim_verifier_start(c->v, &c->hdr);
		arc_validator_start(c->arc, &c->hdr);
	}
	dkim_verifier_body_end(c->v);
	arc_validator_body_end(c->arc);
	for (size_t i = 0; i < dkim_verifier_count(c->v); i++) {
		const char *name = dkim_verifier_key_name(c->v, i);
		if (!name)
			continue;
		const struct dkim_key *key;
		const char *why;
		enum dkim_key_status ks = keycache_get(c->keys, name, &key, &why);
		dkim_verifier_set_key(c->v, i, ks, key, why);
	}
	dkim_verifier_finish(c->v);
	for (size_t k = 0; k < arc_validator_key_slots(c->arc); k++) {
		const char *name = arc_validator_key_name(c->arc, k);
		if (!name)
			continue;
		const struct dkim_key *key;
		const char *why;
		enum dkim_key_status ks = keycache_get(c->keys, name, &key, &why);
		arc_validator_set_key(c->arc, k, ks, key, why);
	}
	arc_validator_finish(c->arc);
	char pwhy[256];
	struct dmarc_arc_input arc;
	policy_arc_input_from_chain(arc_validator_chain(c->arc), c->arc_store, &arc);
	if (policy_cli_message(&c->pol, &c->hdr, c->v, &arc, pwhy, sizeof(pwhy)) != 0) {
		report_error(c, path, pwhy);
		goto out;
	}
	output(c, path);
	rc = 0;
out:
	if (fd != 0)
		close(fd);
	return rc;
}

int
cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{"zone", required_argument, NULL, 'z'},
		{"json", no_argument, NULL, 'j'},
		{"authserv-id", required_argument, NULL, 'a'},
		{"now", required_argument, NULL, 'n'},
		{"dns-server", required_argument, NULL, 'd'},
		{"dns-timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		POLICY_CLI_OPTIONS,
		{NULL, 0, NULL, 0},
	};
	struct verify_ctx c = {0};
	policy_cli_init(&c.pol);
	char why[256];
	struct ws_dns_config dcfg = {0};
	const char *servers[9] = {0};
	size_t nservers = 0;
	int64_t now = (int64_t)time(NULL);
	char host[256] = "localhost";
	gethostname(host, sizeof(host) - 1);
	c.authserv_id = host;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'z':
			dcfg.zone_file = optarg;
			break;
		case 'j':
			c.json = true;
			break;
		case 'a':
			c.authserv_id = optarg;
			break;
		case 'n':
			now = strtoll(optarg, NULL, 10);
			break;
		case 'd':
			if (nservers < 8)
				servers[nservers++] = optarg;
			break;
		case 't':
			dcfg.timeout_ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage();
			policy_cli_end(&c.pol);
			return 0;
		default:
			if (opt >= POLICY_CLI_OPT_FIRST && opt <= POLICY_CLI_OPT_LAST &&
			    policy_cli_option(&c.pol, opt, optarg, why, sizeof(why)) == 0)
				break;
			if (opt >= POLICY_CLI_OPT_FIRST && opt <= POLICY_CLI_OPT_LAST)
				fprintf(stderr, "wireseal verify: %s\n", why);
			usage();
			policy_cli_end(&c.pol);
			return 2;
		}
	}
	if (optind >= argc) {
		usage();
		policy_cli_end(&c.pol);
		return 2;
	}
	if (nservers)
		dcfg.forwarders = servers;
	struct ws_dns *dns = ws_dns_new(&dcfg, why, sizeof(why));
	if (!dns) {
		fprintf(stderr, "wireseal verify: %s: %s\n",
			dcfg.zone_file ? dcfg.zone_file : "DNS resolver", why);
		policy_cli_end(&c.pol);
		return 1;
	}
	if (policy_cli_start(&c.pol, dns, now, why, sizeof(why)) != 0) {
		fprintf(stderr, "wireseal verify: %s\n", why);
		policy_cli_end(&c.pol);
		ws_dns_free(dns);
		return 2;
	}
	struct dkim_verify_config vcfg = {.now = now};
	c.v = dkim_verifier_new(&vcfg);
	c.arc = arc_validator_new(NULL);
	c.arc_store = policy_arc_store_new();
	c.keys = keycache_new(dns);
	c.buf = malloc(VERIFY_CHUNK);
	rfc5322_init(&c.hdr);
	int status = 0;
	if (!c.v || !c.arc || !c.keys || !c.buf) {
		fprintf(stderr, "wireseal verify: out of memory\n");
		status = 1;
	} else {
		for (int i = optind; i < argc; i++)
			if (verify_file(&c, argv[i]) != 0)
				status = 1;
	}
	rfc5322_free(&c.hdr);
	free(c.buf);
	keycache_free(c.keys);
	dkim_verifier_free(c.v);
	arc_validator_free(c.arc);
	policy_arc_store_free(c.arc_store);
	policy_cli_end(&c.pol);
	ws_dns_free(dns);
	return status;
}
