/*
 * `wireseal sign --key PEM --domain D --selector S
 *   [--algorithm rsa-sha256|ed25519-sha256] [--canon relaxed/relaxed]
 *   [--headers from:to:subject] [--length] [--timestamp T] [--expire SECONDS]
 *   [--identity I] FILE`
 * writes FILE with a new DKIM-Signature field on top to stdout. The field's
 * line ends follow the message's (CRLF, or LF for an LF-only file).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "dkim.h"
#include "readfile.h"

static void
usage(void)
{
	fprintf(stderr,
		"usage: wireseal sign --key PEM --domain D --selector S "
		"[--algorithm rsa-sha256|ed25519-sha256] [--canon H/B] [--headers h1:h2] "
		"[--length] [--timestamp T] [--expire SECONDS] [--identity I] FILE\n");
}

int
parse_canon_pair(const char *s, enum canon_alg *h, enum canon_alg *b)
{
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	*b = CANON_SIMPLE;
	if (canon_parse(s, hl, h) != 0)
		return -1;
	if (slash && canon_parse(slash + 1, strlen(slash + 1), b) != 0)
		return -1;
	return 0;
}

/* Write s, turning CRLF into LF when lf_only. */
void
write_lines(FILE *out, const char *s, size_t n, int lf_only)
{
	if (!lf_only) {
		fwrite(s, 1, n, out);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n'))
			fputc(s[i], out);
}

/* The message uses bare LF line ends (its first line end has no CR). */
int
message_is_lf(const char *msg, size_t len)
{
	const char *nl = memchr(msg, '\n', len);
	return nl && (nl == msg || nl[-1] != '\r');
}

int
cmd_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"domain", required_argument, NULL, 'd'},
		{"selector", required_argument, NULL, 's'},
		{"algorithm", required_argument, NULL, 'a'},
		{"canon", required_argument, NULL, 'c'},
		{"headers", required_argument, NULL, 'H'},
		{"length", no_argument, NULL, 'l'},
		{"timestamp", required_argument, NULL, 't'},
		{"expire", required_argument, NULL, 'x'},
		{"identity", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *keyfile = NULL, *algo = NULL;
	struct dkim_sign_params p = {.kind = DKIM_SIG_DKIM, .hcanon = CANON_RELAXED,
				     .bcanon = CANON_RELAXED, .t = (int64_t)time(NULL), .x = -1};
	long long expire = -1;
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
			algo = optarg;
			break;
		case 'c':
			if (parse_canon_pair(optarg, &p.hcanon, &p.bcanon) != 0) {
				fprintf(stderr, "wireseal sign: unknown canonicalization '%s'\n", optarg);
				return 2;
			}
			break;
		case 'H':
			p.headers = optarg;
			break;
		case 'l':
			p.body_length = true;
			break;
		case 't':
			p.t = strtoll(optarg, NULL, 10);
			break;
		case 'x':
			expire = strtoll(optarg, NULL, 10);
			break;
		case 'i':
			p.auid = optarg;
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 2;
		}
	}
	if (!keyfile || !p.domain || !p.selector || optind != argc - 1) {
		usage();
		return 2;
	}
	if (expire >= 0)
		p.x = p.t + expire;
	const char *path = argv[optind];
	size_t mlen;
	struct ws_privkey *key = load_key_file("wireseal sign", keyfile);
	if (!key)
		return 1;
	const char *why = NULL;
	int rc;
	p.key = key;
	if (algo) {
		if (dkim_algo_parse(algo, strlen(algo), &p.algo) != 0) {
			fprintf(stderr, "wireseal sign: unknown algorithm '%s'\n", algo);
			ws_privkey_free(key);
			return 2;
		}
	} else {
		p.algo = ws_privkey_alg(key) == WS_SIG_ED25519 ? DKIM_ED25519_SHA256 : DKIM_RSA_SHA256;
	}
	char *msg = read_file(path, &mlen);
	if (!msg) {
		fprintf(stderr, "wireseal sign: %s: %s\n", path, strerror(errno));
		ws_privkey_free(key);
		return 1;
	}
	char *field = NULL;
	size_t flen;
	rc = dkim_sign(&p, (const uint8_t *)msg, mlen, &field, &flen, &why);
	if (rc != 0) {
		fprintf(stderr, "wireseal sign: %s: %s\n", path, why);
	} else {
		write_lines(stdout, field, flen, message_is_lf(msg, mlen));
		fwrite(msg, 1, mlen, stdout);
		fflush(stdout);
	}
	free(field);
	free(msg);
	ws_privkey_free(key);
	return rc == 0 ? 0 : 1;
}
