/*
 * OpenDKIM (libopendkim) as a DKIM peer for the interop suite. Keys for
 * verification come from a file in OpenDKIM's QueryMethod-file format
 * ("<selector>._domainkey.<domain> <record>" lines), so no DNS is needed.
 *
 *   opendkim_peer verify KEYFILE < msg      prints pass|fail|none|error <why>
 *   opendkim_peer sign PEM DOMAIN SELECTOR HCANON/BCANON rsa|ed25519 < msg
 *       prints the message with OpenDKIM's DKIM-Signature on top (CRLF)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opendkim/dkim.h>

static unsigned char *
slurp(FILE *f, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	unsigned char *b = malloc(cap);
	for (;;) {
		if (!b)
			return NULL;
		if (n == cap) {
			unsigned char *nb = realloc(b, cap *= 2);
			if (!nb) {
				free(b);
				return NULL;
			}
			b = nb;
		}
		size_t r = fread(b + n, 1, cap - n, f);
		if (r == 0)
			break;
		n += r;
	}
	*len = n;
	return b;
}

static dkim_canon_t
canon(const char *s, size_t n)
{
	return strncmp(s, "relaxed", n) == 0 && n == 7 ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
}

int
main(int argc, char **argv)
{
	size_t len;
	unsigned char *msg = slurp(stdin, &len);
	DKIM_STAT st;
	DKIM_LIB *lib = dkim_init(NULL, NULL);
	if (!msg || !lib) {
		fprintf(stderr, "opendkim_peer: setup failed\n");
		return 2;
	}
	unsigned int flags = DKIM_LIBFLAGS_FIXCRLF;
	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags));
	if (argc == 3 && strcmp(argv[1], "verify") == 0) {
		dkim_query_t qm = DKIM_QUERY_FILE;
		dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &qm, sizeof(qm));
		dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, argv[2], strlen(argv[2]));
		DKIM *d = dkim_verify(lib, (const unsigned char *)"interop", NULL, &st);
		if (!d)
			return 2;
		st = dkim_chunk(d, msg, len);
		if (st == DKIM_STAT_OK)
			st = dkim_chunk(d, NULL, 0);
		if (st == DKIM_STAT_OK)
			st = dkim_eom(d, NULL);
		DKIM_SIGINFO **sigs = NULL;
		int nsigs = 0;
		if (st == DKIM_STAT_NOSIG || dkim_getsiglist(d, &sigs, &nsigs) != DKIM_STAT_OK ||
		    nsigs == 0) {
			printf("none\n");
		} else if (DKIM_SIG_CHECK(sigs[0])) {
			printf("pass\n");
		} else {
			int e = dkim_sig_geterror(sigs[0]);
			printf("fail %s\n", dkim_sig_geterrorstr(e) ? dkim_sig_geterrorstr(e) : "?");
		}
		dkim_free(d);
	} else if (argc == 7 && strcmp(argv[1], "sign") == 0) {
		size_t klen;
		FILE *kf = fopen(argv[2], "rb");
		unsigned char *key = kf ? slurp(kf, &klen) : NULL;
		if (kf)
			fclose(kf);
		if (!key)
			return 2;
		key = realloc(key, klen + 1);
		key[klen] = '\0';
		const char *slash = strchr(argv[5], '/');
		size_t hl = slash ? (size_t)(slash - argv[5]) : strlen(argv[5]);
		dkim_canon_t hc = canon(argv[5], hl);
		dkim_canon_t bc = slash ? canon(slash + 1, strlen(slash + 1)) : DKIM_CANON_SIMPLE;
		dkim_alg_t alg = strcmp(argv[6], "ed25519") == 0 ? DKIM_SIGN_ED25519SHA256
								 : DKIM_SIGN_RSASHA256;
		DKIM *d = dkim_sign(lib, (const unsigned char *)"interop", NULL, (dkim_sigkey_t)key,
				    (const unsigned char *)argv[4], (const unsigned char *)argv[3], hc,
				    bc, alg, -1, &st);
		if (!d) {
			fprintf(stderr, "opendkim_peer: dkim_sign: %s\n", dkim_getresultstr(st));
			return 1;
		}
		st = dkim_chunk(d, msg, len);
		if (st == DKIM_STAT_OK)
			st = dkim_chunk(d, NULL, 0);
		if (st == DKIM_STAT_OK)
			st = dkim_eom(d, NULL);
		unsigned char *hdr = NULL;
		size_t hlen = 0;
		if (st == DKIM_STAT_OK)
			st = dkim_getsighdr_d(d, strlen(DKIM_SIGNHEADER) + 2, &hdr, &hlen);
		if (st != DKIM_STAT_OK) {
			fprintf(stderr, "opendkim_peer: signing: %s (%s)\n", dkim_getresultstr(st),
				dkim_geterror(d) ? dkim_geterror(d) : "");
			return 1;
		}
		/* OpenDKIM folds with bare LF + TAB: the header goes out with CRLF */
		printf("%s: ", DKIM_SIGNHEADER);
		for (size_t i = 0; i < hlen; i++) {
			if (hdr[i] == '\n' && (i == 0 || hdr[i - 1] != '\r'))
				putchar('\r');
			putchar(hdr[i]);
		}
		printf("\r\n");
		fwrite(msg, 1, len, stdout);
		dkim_free(d);
		free(key);
	} else {
		fprintf(stderr, "usage: opendkim_peer verify KEYFILE | sign PEM DOMAIN SELECTOR C rsa|ed25519\n");
		return 2;
	}
	dkim_close(lib);
	free(msg);
	return 0;
}
