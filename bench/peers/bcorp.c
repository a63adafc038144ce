#include "bcorp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

const size_t bcorp_bucket_lo[BCORP_NBUCKETS] = {0, 8192, 32768, 131072, 1048576};
const size_t bcorp_bucket_hi[BCORP_NBUCKETS] = {8192, 32768, 131072, 1048576, (size_t)1 << 62};

int
bcorp_bucket(size_t size)
{
	for (int i = 0; i < BCORP_NBUCKETS; i++)
		if (size >= bcorp_bucket_lo[i] && size < bcorp_bucket_hi[i])
			return i;
	return BCORP_NBUCKETS - 1;
}

double
bcorp_cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
read_file(const char *path, unsigned char **data, size_t *len, char *err, size_t errlen)
{
	FILE *f = NULL;
	struct stat st;
	unsigned char *buf = NULL;

	f = fopen(path, "rb");
	if (f == NULL || fstat(fileno(f), &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if ((size_t)st.st_size > BCORP_MAX_MSG) {
		snprintf(err, errlen, "%s: larger than %u bytes", path, BCORP_MAX_MSG);
		goto fail;
	}
	/* One spare byte so drivers may NUL-terminate. */
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		snprintf(err, errlen, "%s: short read", path);
		goto fail;
	}
	buf[st.st_size] = '\0';
	fclose(f);
	*data = buf;
	*len = (size_t)st.st_size;
	return 0;
fail:
	free(buf);
	if (f != NULL)
		fclose(f);
	return -1;
}

static const char *
base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s != NULL ? s + 1 : p;
}

/* Appends message DIR/msgs/name, read into memory, to c. */
static int
add_msg(struct bcorp *c, size_t *cap, const char *name, enum bcorp_expect exp, char *err,
	size_t errlen)
{
	char path[8192];
	struct bcorp_msg *m;

	if (strlen(name) >= BCORP_NAME_MAX) {
		snprintf(err, errlen, "file name too long: %s", name);
		return -1;
	}
	if (c->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		struct bcorp_msg *nm = realloc(c->msgs, ncap * sizeof(*nm));

		if (nm == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		c->msgs = nm;
		*cap = ncap;
	}
	m = &c->msgs[c->n];
	memset(m, 0, sizeof(*m));
	memcpy(m->name, name, strlen(name) + 1);
	m->expected = exp;
	snprintf(path, sizeof(path), "%s/msgs/%s", c->dir, name);
	if (read_file(path, &m->data, &m->len, err, errlen) != 0)
		return -1;
	m->bucket = bcorp_bucket(m->len);
	c->bytes += m->len;
	c->n++;
	return 0;
}

static enum bcorp_expect
manifest_expect(const char *dir, const char *name)
{
	char path[8192], line[512];
	FILE *f;
	enum bcorp_expect e = BCORP_EXPECT_UNKNOWN;
	size_t nl = strlen(name);

	snprintf(path, sizeof(path), "%s/manifest.tsv", dir);
	f = fopen(path, "r");
	if (f == NULL)
		return e;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, name, nl) == 0 && line[nl] == '\t') {
			e = strstr(line, "\tpass\t") != NULL ? BCORP_EXPECT_PASS : BCORP_EXPECT_FAIL;
			break;
		}
	}
	fclose(f);
	return e;
}

int
bcorp_load(struct bcorp *c, const char *dir, int nfiles, char *const *files, char *err,
	   size_t errlen)
{
	char path[8192], line[512];
	FILE *f = NULL;
	size_t cap = 0;

	memset(c, 0, sizeof(*c));
	if (strlen(dir) >= sizeof(c->dir)) {
		snprintf(err, errlen, "corpus path too long");
		return -1;
	}
	memcpy(c->dir, dir, strlen(dir) + 1);
	if (nfiles > 0) {
		for (int i = 0; i < nfiles; i++) {
			const char *name = base_name(files[i]);

			if (add_msg(c, &cap, name, manifest_expect(dir, name), err, errlen) != 0)
				goto fail;
		}
		return 0;
	}
	snprintf(path, sizeof(path), "%s/manifest.tsv", dir);
	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (fgets(line, sizeof(line), f) == NULL) {
		snprintf(err, errlen, "%s: empty", path);
		goto fail;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *tab = strchr(line, '\t');

		if (tab == NULL)
			continue;
		*tab = '\0';
		if (add_msg(c, &cap, line,
			    strstr(tab + 1, "\tpass\t") != NULL ? BCORP_EXPECT_PASS : BCORP_EXPECT_FAIL,
			    err, errlen) != 0)
			goto fail;
	}
	fclose(f);
	return 0;
fail:
	if (f != NULL)
		fclose(f);
	bcorp_free(c);
	return -1;
}

void
bcorp_free(struct bcorp *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->msgs[i].data);
	free(c->msgs);
	c->msgs = NULL;
	c->n = 0;
}

void
bcorp_tally_init(struct bcorp_tally *t, const char *peer, const struct bcorp *c)
{
	memset(t, 0, sizeof(*t));
	t->peer = peer;
	t->corpus = c;
}

void
bcorp_tally_result(struct bcorp_tally *t, const struct bcorp_msg *m, enum bcorp_result r)
{
	t->count[r]++;
	t->bucket_msgs[m->bucket]++;
	t->bucket_bytes[m->bucket] += m->len;
	if (m->expected != BCORP_EXPECT_UNKNOWN &&
	    (r == BCORP_PASS) != (m->expected == BCORP_EXPECT_PASS)) {
		if (t->mismatch < 5)
			memcpy(t->mismatch_ex[t->mismatch], m->name, sizeof(m->name));
		t->mismatch++;
	}
}

void
bcorp_tally_cpu(struct bcorp_tally *t, int bucket, double cpu_s)
{
	t->bucket_cpu[bucket] += cpu_s;
}

void
bcorp_tally_print(const struct bcorp_tally *t, FILE *out, const char *extra)
{
	size_t n = 0, bytes = 0;
	double cpu = 0;
	const char *base = base_name(t->corpus->dir);

	for (int i = 0; i < BCORP_NBUCKETS; i++) {
		n += t->bucket_msgs[i];
		bytes += t->bucket_bytes[i];
		cpu += t->bucket_cpu[i];
	}
	if (*base == '\0')
		base = t->corpus->dir;
	fprintf(out, "{\"peer\": \"%s\", \"corpus\": \"%s\", \"messages\": %zu, \"bytes\": %zu, ",
		t->peer, base, n, bytes);
	fprintf(out, "\"cpu_s\": %.6f, \"msgs_per_cpu_s\": %.2f, \"mb_per_cpu_s\": %.3f, ", cpu,
		cpu > 0 ? (double)n / cpu : 0.0, cpu > 0 ? (double)bytes / 1e6 / cpu : 0.0);
	fprintf(out, "\"pass\": %zu, \"fail\": %zu, \"other\": %zu, \"mismatch\": %zu, ",
		t->count[BCORP_PASS], t->count[BCORP_FAIL], t->count[BCORP_OTHER], t->mismatch);
	fprintf(out, "\"mismatch_examples\": [");
	for (size_t i = 0; i < t->mismatch && i < 5; i++)
		fprintf(out, "%s\"%s\"", i ? ", " : "", t->mismatch_ex[i]);
	fprintf(out, "], \"buckets\": [");
	for (int i = 0; i < BCORP_NBUCKETS; i++)
		fprintf(out, "%s{\"lo\": %zu, \"hi\": %zu, \"messages\": %zu, \"bytes\": %zu, \"cpu_s\": %.6f}",
			i ? ", " : "", bcorp_bucket_lo[i], bcorp_bucket_hi[i], t->bucket_msgs[i],
			t->bucket_bytes[i], t->bucket_cpu[i]);
	fprintf(out, "]%s%s}\n", extra != NULL ? ", " : "", extra != NULL ? extra : "");
	fflush(out);
}
