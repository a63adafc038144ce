#include "readfile.h"

#include "sig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *
read_file(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				errno = ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		if (r == 0) {
			if (ferror(f)) {
				int e = errno;
				free(buf);
				buf = NULL;
				errno = e;
			}
			break;
		}
		n += r;
	}
	if (f != stdin)
		fclose(f);
	if (buf) {
		buf[n] = '\0';
		*len = n;
	}
	return buf;
}

struct ws_privkey *
load_key_file(const char *cmd, const char *path)
{
	size_t len;
	char *pem = read_file(path, &len);
	if (!pem) {
		fprintf(stderr, "%s: %s: %s\n", cmd, path, strerror(errno));
		return NULL;
	}
	struct ws_privkey *key = NULL;
	const char *why = NULL;
	int rc = ws_privkey_load_pem(pem, len, &key, &why);
	free(pem);
	if (rc != 0) {
		fprintf(stderr, "%s: %s: bad key file: %s\n", cmd, path, why);
		return NULL;
	}
	return key;
}
