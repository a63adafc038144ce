/*
 * `wireseal verify [--zone FILE] [--json] [--authserv-id ID] [--now EPOCH]
 *                  [--dns-server IP[@PORT]] [--dns-timeout MS] FILE...`
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
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "dkim.h"
#include "dns.h"
#include "json.h"
#include "keys.h"
#include "report.h"
#include "rfc5322.h"

#define VERIFY_CHUNK (64u * 1024)

struct verify_ctx {
	bool json;
	const char *authserv_id;
	struct dkim_verifier *v;
	struct keycache *keys;
	struct rfc5322_header hdr;
	uint8_t *buf;
};

static void
usage(void)
{
	fprintf(stderr, "usage: wireseal verify [--zone FILE] [--json] [--authserv-id ID] "
			"[--now EPOCH] [--dns-server IP[@PORT]] [--dns-timeout MS] FILE...\n");
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

/* 0 when the file was verified (whatever the results), -1 on an error. */
static int
verify_file(struct verify_ctx *c, const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f) {
		report_error(c, path, strerror(errno));
		return -1;
	}
	rfc5322_reset(&c->hdr);
	bool in_body = false;
	size_t total = 0;
	int rc = -1;
	for (;;) {
		size_t n = fread(c->buf, 1, VERIFY_CHUNK, f);
		if (n == 0)
			break;
		total += n;
		size_t used = 0;
		if (!in_body) {
			enum rfc5322_status st = rfc5322_push(&c->hdr, c->buf, n, &used);
			if (st == RFC5322_ERROR) {
				char what[160];
				snprintf(what, sizeof(what), "malformed message: %s",
					 rfc5322_strerror(c->hdr.error));
				report_error(c, path, what);
				goto out;
			}
			if (st == RFC5322_NEED_MORE)
				continue;
			in_body = true;
			dkim_verifier_start(c->v, &c->hdr);
		}
		dkim_verifier_body(c->v, c->buf + used, n - used);
	}
	if (ferror(f)) {
		report_error(c, path, strerror(errno));
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
	}
	dkim_verifier_body_end(c->v);
	for (size_t i = 0; i < dkim_verifier_count(c->v); i++) {
		const char *name = dkim_verifier_key_name(c->v, i);
		if (!name)
			continue;
		const struct dkim_key *key;
		const char *why;
		enum dkim_key_status st = keycache_get(c->keys, name, &key, &why);
		dkim_verifier_set_key(c->v, i, st, key, why);
	}
	dkim_verifier_finish(c->v);
	struct report_parts p = {
		.authserv_id = c->authserv_id,
		.json = c->json,
		.file = path,
		.dkim = c->v,
	};
	report_message(stdout, &p);
	rc = 0;
out:
	if (f != stdin)
		fclose(f);
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
		{NULL, 0, NULL, 0},
	};
	struct verify_ctx c = {0};
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
			return 0;
		default:
			usage();
			return 2;
		}
	}
	if (optind >= argc) {
		usage();
		return 2;
	}
	if (nservers)
		dcfg.forwarders = servers;
	char why[256];
	struct ws_dns *dns = ws_dns_new(&dcfg, why, sizeof(why));
	if (!dns) {
		fprintf(stderr, "wireseal verify: %s: %s\n",
			dcfg.zone_file ? dcfg.zone_file : "DNS resolver", why);
		return 1;
	}
	struct dkim_verify_config vcfg = {.now = now};
	c.v = dkim_verifier_new(&vcfg);
	c.keys = keycache_new(dns);
	c.buf = malloc(VERIFY_CHUNK);
	rfc5322_init(&c.hdr);
	int status = 0;
	if (!c.v || !c.keys || !c.buf) {
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
	ws_dns_free(dns);
	return status;
}
