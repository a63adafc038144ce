/*
 * `wireseal verify [--zone FILE] [--json] [--authserv-id ID] [--now EPOCH]
 *                  [--dns-server IP[@PORT]] [--dns-timeout MS] [--streams N]
 *                  [policy options, cli/policy.h] FILE...`
 *
 * Each file is streamed: the header block is parsed, then the body goes
 * through the canonicalisers chunk by chunk and is never held whole. Keys
 * come from DNS (the zone file, given servers, or the system resolver).
 * Output: one Authentication-Results header per message, or with --json one
 * JSON object per line per file. A file that cannot be read or parsed gets
 * an error line on stderr (and an "error" object with --json); the other
 * files are still processed and the exit status is 1.
 *
 * Output is written in argument order whatever --streams is (files may be
 * verified in another order: see window_order), and is the same bytes for
 * any N. Results are buffered (64 KiB writes) unless stdout
 * is a terminal; before an error line goes to stderr the results before it
 * are flushed, so a 2>&1 capture keeps the per-file order.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
/*
 * --streams N (default VERIFY_STREAMS_DEFAULT where the CPU has AVX-512, else
 * 1): N files verified at once, their SHA-256 body hashes compressed
 * together (crypto/hash.h lane groups: 16 AVX-512 lanes, SHA-NI pairs for
 * what is left). The lanes hash ~2.6x faster than OpenSSL's one stream
 * (bench-crypto: ~4.2 vs 1.6 GB/s) but only pay when 16 files have equal
 * amounts staged at once, so:
 *  - only a window's large files (> VERIFY_LARGE) go through the streams,
 *    first and largest first (window_order: in the bench corpus ~11% of the
 *    files hold ~73% of the bytes); the others follow one at a time in
 *    argument order, printed directly, hashed on OpenSSL;
 *  - each round, every stream feeds at most VERIFY_ROUND_BODY body bytes
 *    (reads are sized to it), so the 16 stages stay ~512 KiB, in L2, and
 *    a large file's steps are equal to its neighbours';
 *  - after the round the group runs (ws_hash_lanes_run picks the 16 members
 *    with most blocks per pass), then the files that ended are finished.
 * On the rsa2048 bench corpus the lanes then take the large files' body
 * blocks (78% of all) with 97% of their lane slots busy; SHA-NI pairs do
 * 0.3%. Every read is fed whole before the next, so the streams share one
 * buffer.
 * Measured (bench/peers/wireseal_verify.py, 5 paired runs against
 * --streams 1 on a busy 2-core VM, so +-15% noise per run): whole corpus
 * 1.24x (medians); the >= 1 MB bucket ~1.5x, 128 KB-1 MB ~1.1x, small
 * buckets even; 1.09x (0.88-1.63) over five runs of the rsa2048 pieces of
 * bench/run.sh. The first design (all files in turn, 32 KiB steps, no
 * ordering) was 0.93-1.0x: its lanes did 40% of the blocks, SHA-NI pairs
 * the rest, and its stages did not stay in cache.
 */
#define VERIFY_STREAMS_DEFAULT 16u
#define VERIFY_STREAMS_MAX 64u
#define VERIFY_ROUND_BODY (32u * 1024)
/* Files ordered at once (the ring of results waiting for their turn): the
 * large files of the bench corpus are ~1.5% >= 1 MB, so a window needs
 * about a thousand files to hold 16 of them. */
#define VERIFY_WINDOW 2048u
/* Files larger than this go through the streams (see window_order). */
#define VERIFY_LARGE (2u * VERIFY_ROUND_BODY)
/*
 * Messages whose signatures are verified in one ws_sig_verify_batch: a
 * file whose body is hashed waits (its results unprinted) until this many
 * are ready, or until the order of the output needs it (a result printed
 * between, an error line, the end of a window). The batch backend runs 8
 * RSA verifies at once on AVX-512 IFMA.
 */
#define VERIFY_SIG_BATCH 16u

struct batch;

struct verify_ctx {
	bool json;
	const char *authserv_id;
	struct policy_arc_store *arc_store;
	struct keycache *keys;
	struct policy_cli pol;
	struct batch *batch; /* for the ready files an error line must follow */
};

/* One file being verified. */
struct stream {
	bool busy;
	bool solo; /* read to the end, printed directly, hashed on OpenSSL */
	int fd;
	const char *path;
	struct dkim_verifier *v;
	struct arc_validator *arc;
	struct rfc5322_header hdr;
	bool in_body;
	size_t total;
	size_t round_body; /* body bytes fed since the lanes last ran */
	/* where this file's lines go: stdout/stderr, or (several streams)
	 * memory until the files before it are printed */
	FILE *out, *err;
	struct pending *res;
	/* a regular file (stat said so): a short read is its end, no read
	 * more to see 0 */
	bool regular;
	/* hashed, waiting for the signature batch (dkim_verifier_prepare) */
	struct ws_verify_job *jobs;
	size_t njobs;
};

/* A file's printed result, kept until its turn. */
struct pending {
	bool used, done;
	char *out, *err;
	size_t outlen, errlen;
	FILE *outf, *errf;
};

static void
usage(void)
{
	fprintf(stderr, "usage: wireseal verify [--zone FILE] [--json] [--authserv-id ID] "
			"[--now EPOCH] [--dns-server IP[@PORT]] [--dns-timeout MS] [--streams N] "
			POLICY_CLI_USAGE " FILE...\n");
}

static void flush_ready(struct batch *b);

static void
report_error(const struct verify_ctx *c, const struct stream *s, const char *what)
{
	/* a file printed directly: the ready files before it print first */
	if (s->solo && c->batch)
		flush_ready(c->batch);
	/* JSON lines are buffered (one write per buffer, not per message):
	 * what came before this error goes out first, as when every line was
	 * flushed */
	if (c->json)
		fflush(s->out);
	fprintf(s->err, "wireseal verify: %s: %s\n", s->path, what);
	if (c->json) {
		struct json j;
		json_begin_buffered(&j, s->out);
		json_key(&j, "file");
		json_str(&j, s->path);
		json_key(&j, "error");
		json_str(&j, what);
		json_end(&j);
	}
}

static void
report_malformed(const struct verify_ctx *c, const struct stream *s)
{
	char what[160];
	snprintf(what, sizeof(what), "malformed message: %s", rfc5322_strerror(s->hdr.error));
	report_error(c, s, what);
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
output(struct verify_ctx *c, struct stream *s)
{
	struct report_parts p = {
		.authserv_id = c->authserv_id,
		.json = c->json,
		.file = s->path,
		.dkim = s->v,
		.arc = arc_validator_chain(s->arc),
		.authres_more = policy_authres,
		.json_more = policy_json,
		.arg = c,
		.buffered = true,
	};
	report_message(s->out, &p);
}

/* Feed one span of the message; false once the header block is malformed. */
static bool
feed(struct verify_ctx *c, struct stream *s, const uint8_t *p, size_t n)
{
	size_t used = 0;
	if (!s->in_body) {
		enum rfc5322_status st = rfc5322_push(&s->hdr, p, n, &used);
		if (st == RFC5322_ERROR) {
			report_malformed(c, s);
			return false;
		}
		if (st == RFC5322_NEED_MORE)
			return true;
		s->in_body = true;
		dkim_verifier_start(s->v, &s->hdr);
		arc_validator_start(s->arc, &s->hdr);
	}
	s->round_body += n - used;
	/* the body in bounded steps, as it would arrive from the wire */
	for (size_t off = used; off < n; off += VERIFY_CHUNK) {
		size_t k = n - off < VERIFY_CHUNK ? n - off : VERIFY_CHUNK;
		dkim_verifier_body(s->v, p + off, k);
		arc_validator_body(s->arc, p + off, k);
	}
	return true;
}

/* The file ended: false when it was no message (an error was reported). */
static bool
end_of_input(struct verify_ctx *c, struct stream *s)
{
	if (s->total == 0) {
		report_error(c, s, "empty file: not a message");
		return false;
	}
	if (!s->in_body) {
		if (rfc5322_finish(&s->hdr) != RFC5322_DONE) {
			report_malformed(c, s);
			return false;
		}
		s->in_body = true;
		dkim_verifier_start(s->v, &s->hdr);
		arc_validator_start(s->arc, &s->hdr);
	}
	dkim_verifier_body_close(s->v);
	return true;
}

/* Body hashes final (the lanes have run): keys, then the signature jobs
 * left for the batch in s->jobs/njobs. */
static void
finish_prepare(struct verify_ctx *c, struct stream *s)
{
	dkim_verifier_body_end(s->v);
	arc_validator_body_end(s->arc);
	for (size_t i = 0; i < dkim_verifier_count(s->v); i++) {
		const char *name = dkim_verifier_key_name(s->v, i);
		if (!name)
			continue;
		const struct dkim_key *key;
		const char *why;
		enum dkim_key_status ks = keycache_get(c->keys, name, &key, &why);
		dkim_verifier_set_key(s->v, i, ks, key, why);
	}
	s->njobs = dkim_verifier_prepare(s->v, &s->jobs);
}

/* The batch has set every job's result: signatures, ARC, DMARC, output.
 * 0, or -1 after reporting an error. */
static int
finish_complete(struct verify_ctx *c, struct stream *s)
{
	dkim_verifier_complete(s->v);
	s->njobs = 0;
	for (size_t k = 0; k < arc_validator_key_slots(s->arc); k++) {
		const char *name = arc_validator_key_name(s->arc, k);
		if (!name)
			continue;
		const struct dkim_key *key;
		const char *why;
		enum dkim_key_status ks = keycache_get(c->keys, name, &key, &why);
		arc_validator_set_key(s->arc, k, ks, key, why);
	}
	arc_validator_finish(s->arc);
	char pwhy[256];
	struct dmarc_arc_input arc;
	policy_arc_input_from_chain(arc_validator_chain(s->arc), c->arc_store, &arc);
	if (policy_cli_message(&c->pol, &s->hdr, s->v, &arc, pwhy, sizeof(pwhy)) != 0) {
		report_error(c, s, pwhy);
		return -1;
	}
	output(c, s);
	return 0;
}

/* ---- the streams ---- */

/* A file of the window and its size, for the order files start in. */
struct sized {
	off_t size;
	size_t seq;
};

/* The directory of the last file opened, open itself: the files of a run
 * mostly share one, and a lookup relative to it walks one path component
 * instead of all (a path walk is a good part of an open in this VM). */
struct dir_cache {
	char dir[4096];
	size_t len;
	int fd; /* -1: none open */
};

struct batch {
	struct verify_ctx *c;
	struct dir_cache dirs;
	bool regular[VERIFY_WINDOW]; /* by seq % VERIFY_WINDOW, from window_order */
	struct ws_hash_lanes *lanes; /* NULL: OpenSSL body hashes */
	/* the lanes' streams (nst > 1): nst reading, up to VERIFY_SIG_BATCH
	 * more waiting in ready; slot[i] is the one reading for slot i */
	struct stream *st;
	size_t nst;
	size_t st_up;                /* st[0..st_up) set up (as large files come) */
	struct stream *slot[VERIFY_STREAMS_MAX];
	struct stream *spare[VERIFY_STREAMS_MAX + VERIFY_SIG_BATCH];
	size_t nspare;
	int64_t now;
	/* one file at a time, in argument order, printed directly */
	struct stream solo[VERIFY_SIG_BATCH];
	size_t solo_up;
	size_t solo_last;            /* seq of the last solo file begun */
	/* hashed files waiting for the signature batch, in the order they
	 * print (solo files: argument order) */
	struct stream *ready[VERIFY_SIG_BATCH];
	size_t nready;
	bool flushing;
	uint8_t *buf;                /* every read lands here and is fed whole */
	size_t round_body;           /* body bytes per stream per round */
	struct pending ring[VERIFY_WINDOW];
	struct sized order[VERIFY_WINDOW]; /* this window's files, by size */
	int status;
};

static void
stream_free(struct stream *s)
{
	rfc5322_free(&s->hdr);
	dkim_verifier_free(s->v);
	arc_validator_free(s->arc);
	s->v = NULL;
	s->arc = NULL;
}

static int
stream_init(struct stream *s, struct ws_hash_lanes *lanes, int64_t now)
{
	struct dkim_verify_config vcfg = {.now = now, .lanes = lanes};
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	rfc5322_init(&s->hdr);
	s->v = dkim_verifier_new(&vcfg);
	s->arc = arc_validator_new(NULL);
	return s->v && s->arc ? 0 : -1;
}

/* Where the next file's lines go. Several streams: an in-memory pair kept in
 * the ring until its turn; one stream: straight to stdout/stderr. */
static int
stream_outputs(struct batch *b, struct stream *s, size_t seq)
{
	if (s->solo) {
		/* printed as it goes: nothing left for emit() */
		b->ring[seq % VERIFY_WINDOW] = (struct pending){.used = true, .done = true};
		s->out = stdout;
		s->err = stderr;
		s->res = NULL;
		return 0;
	}
	struct pending *r = &b->ring[seq % VERIFY_WINDOW];
	memset(r, 0, sizeof(*r));
	r->used = true;
	r->outf = open_memstream(&r->out, &r->outlen);
	r->errf = open_memstream(&r->err, &r->errlen);
	if (r->outf && r->errf) {
		/* only this thread writes them (see cmd_verify's stdout) */
		__fsetlocking(r->outf, FSETLOCKING_BYCALLER);
		__fsetlocking(r->errf, FSETLOCKING_BYCALLER);
	}
	if (!r->outf || !r->errf) {
		if (r->outf)
			fclose(r->outf);
		if (r->errf)
			fclose(r->errf);
		free(r->out);
		free(r->err);
		memset(r, 0, sizeof(*r));
		return -1;
	}
	s->out = r->outf;
	s->err = r->errf;
	s->res = r;
	return 0;
}

/* The file in s is done (rc 0 verified, -1 error). */
static void
stream_done(struct batch *b, struct stream *s, int rc)
{
	if (rc != 0)
		b->status = 1;
	if (s->fd > 0)
		close(s->fd);
	s->fd = -1;
	s->busy = false;
	if (s->res) {
		fclose(s->res->outf);
		fclose(s->res->errf);
		s->res->done = true;
	}
}

/* Verify the ready files' signatures in one batch, then finish them in
 * order. */
static void
flush_ready(struct batch *b)
{
	struct ws_verify_job jobs[VERIFY_SIG_BATCH * DKIM_MAX_SIGS];
	size_t n = 0;
	if (b->flushing || b->nready == 0)
		return;
	b->flushing = true;
	/* the ready files' last staged body blocks, all at once */
	if (b->lanes)
		ws_hash_lanes_run(b->lanes);
	for (size_t i = 0; i < b->nready; i++) {
		struct stream *s = b->ready[i];
		finish_prepare(b->c, s);
		memcpy(jobs + n, s->jobs, s->njobs * sizeof(*jobs));
		n += s->njobs;
	}
	ws_sig_verify_batch(jobs, n);
	n = 0;
	for (size_t i = 0; i < b->nready; i++) {
		struct stream *s = b->ready[i];
		for (size_t k = 0; k < s->njobs; k++)
			s->jobs[k].result = jobs[n++].result;
		stream_done(b, s, finish_complete(b->c, s));
		if (!s->solo)
			b->spare[b->nspare++] = s;
	}
	b->nready = 0;
	b->flushing = false;
}

/* s has its whole body fed: it waits in ready (the batch runs when full;
 * its hashes end there, after the group's last run). */
static void
ready_add(struct batch *b, struct stream *s)
{
	if (s->fd > 0)
		close(s->fd);
	s->fd = -1;
	b->ready[b->nready++] = s;
	if (b->nready == VERIFY_SIG_BATCH)
		flush_ready(b);
}

/* Print finished results in argument order. */
static void
emit(struct batch *b, size_t *next_emit, size_t next_file)
{
	while (*next_emit < next_file) {
		struct pending *r = &b->ring[*next_emit % VERIFY_WINDOW];
		if (!r->done)
			break;
		if (r->errlen) {
			if (b->c->json)
				fflush(stdout); /* see report_error */
			fwrite(r->err, 1, r->errlen, stderr);
		}
		if (r->outlen)
			fwrite(r->out, 1, r->outlen, stdout);
		free(r->out);
		free(r->err);
		memset(r, 0, sizeof(*r));
		(*next_emit)++;
	}
}

/* The directory fd to look path up from and the name within it: the cached
 * directory's, or AT_FDCWD and path itself (no slash, or the directory
 * could not be opened: then the error is the whole path's, as before). */
static int
dir_at(struct dir_cache *d, const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	*name = path;
	if (!slash || slash[1] == '\0')
		return AT_FDCWD;
	size_t len = slash == path ? 1 : (size_t)(slash - path);
	if (len >= sizeof(d->dir))
		return AT_FDCWD;
	if (d->fd < 0 || d->len != len || memcmp(d->dir, path, len) != 0) {
		if (d->fd >= 0)
			close(d->fd);
		memcpy(d->dir, path, len);
		d->dir[len] = '\0';
		d->len = len;
		d->fd = open(d->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (d->fd < 0)
			return AT_FDCWD;
	}
	*name = slash + 1;
	return d->fd;
}

static int
open_at(struct dir_cache *d, const char *path, int flags)
{
	const char *name;
	int at = dir_at(d, path, &name);
	return openat(at, name, flags);
}

/* Begin file path in s: false when it is already done (could not be opened,
 * or no memory for its output). */
static bool
stream_begin(struct batch *b, struct stream *s, const char *path, size_t seq)
{
	s->path = path;
	s->busy = true;
	s->in_body = false;
	s->total = 0;
	s->round_body = 0;
	rfc5322_reset(&s->hdr);
	if (stream_outputs(b, s, seq) != 0) {
		/* nowhere to keep its lines: say so now, out of order */
		fflush(stdout);
		fprintf(stderr, "wireseal verify: %s: out of memory\n", path);
		b->ring[seq % VERIFY_WINDOW] = (struct pending){.used = true, .done = true};
		s->busy = false;
		b->status = 1;
		return false;
	}
	s->regular = b->regular[seq % VERIFY_WINDOW];
	s->fd = strcmp(path, "-") == 0 ? 0 : open_at(&b->dirs, path, O_RDONLY | O_CLOEXEC | O_NOATIME);
	if (s->fd < 0 && errno == EPERM) /* O_NOATIME on someone else's file */
		s->fd = open_at(&b->dirs, path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0) {
		report_error(b->c, s, strerror(errno));
		stream_done(b, s, -1);
		return false;
	}
	return true;
}

/* Reads of s until its input ends (true; then ok says whether it is a
 * message ready for finish_message) or, with several streams, until it has
 * fed this round's share of body bytes (false). Every read is fed whole, so
 * all streams share one buffer. */
static bool
stream_step(struct batch *b, struct stream *s, bool *ok)
{
	s->round_body = 0;
	for (;;) {
		size_t want = VERIFY_CHUNK;
		if (!s->solo) {
			/* in the header, a read brings at most the share of body */
			if (s->in_body && s->round_body >= b->round_body)
				return false;
			size_t room = b->round_body - (s->in_body ? s->round_body : 0);
			if (room < want)
				want = room;
		}
		ssize_t n = read(s->fd, b->buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			report_error(b->c, s, strerror(errno));
			*ok = false;
			return true;
		}
		if (n == 0) {
			*ok = end_of_input(b->c, s);
			return true;
		}
		s->total += (size_t)n;
		if (!feed(b->c, s, b->buf, (size_t)n)) {
			*ok = false;
			return true;
		}
		if (s->regular && (size_t)n < want) {
			/* a regular file reads short only at its end */
			*ok = end_of_input(b->c, s);
			return true;
		}
	}
}

static int
by_size(const void *x, const void *y)
{
	const struct sized *a = x, *b = y;
	if (a->size != b->size)
		return a->size < b->size ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int
by_size_down(const void *x, const void *y)
{
	return by_size(y, x);
}

/*
 * The order the window's files start in: returns how many large ones are
 * at the front, largest first (they go through the streams: the lanes want
 * equal amounts from 16 files at once, and in the bench corpus ~7% of the
 * files hold ~68% of the bytes; in argument order a large file runs beside
 * small ones and goes through SHA-NI alone). The others keep argument order
 * and go one at a time, printed directly: for them the lanes' gain (~7 us
 * for 20 KB) is less than what the streams cost per file (stat, results
 * held in memory, stages out of cache; measured: 8-32 KB files 0.76x). A
 * file that cannot be stat'ed counts as small and reports its error when
 * opened. Without streams: argument order, no stat.
 */
static size_t
window_order(struct batch *b, char **files, size_t first, size_t n)
{
	struct sized *o = b->order;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		const char *name;
		o[i].seq = first + i;
		o[i].size = 0;
		b->regular[(first + i) % VERIFY_WINDOW] = false;
		if (b->nst < 2 || strcmp(files[first + i], "-") == 0)
			continue;
		int at = dir_at(&b->dirs, files[first + i], &name);
		if (fstatat(at, name, &st, 0) == 0) {
			o[i].size = st.st_size;
			b->regular[(first + i) % VERIFY_WINDOW] = S_ISREG(st.st_mode);
		}
	}
	size_t nbig = 0;
	for (size_t i = 0; i < n; i++) {
		if (o[i].size > (off_t)VERIFY_LARGE) {
			/* to the front (stable: the rest keep argument order) */
			struct sized t = o[i];
			memmove(o + nbig + 1, o + nbig, (i - nbig) * sizeof(*o));
			o[nbig++] = t;
		}
	}
	if (nbig < 2) {
		/* one large file has no partner: argument order, no streams */
		for (size_t i = 0; i < n; i++)
			o[i].seq = first + i;
		return 0;
	}
	qsort(o, nbig, sizeof(*o), by_size_down);
	return nbig;
}

/* A stream for slot i: a spare one (set up by streams_up). */
static struct stream *
slot_fill(struct batch *b, size_t i)
{
	if (!b->slot[i] && b->nspare > 0)
		b->slot[i] = b->spare[--b->nspare];
	return b->slot[i];
}

/* The window's large files on the streams, results held in the ring. */
static void
run_streams(struct batch *b, char **files, size_t nbig, size_t nrun)
{
	bool ended[VERIFY_STREAMS_MAX], ok[VERIFY_STREAMS_MAX];
	size_t next = 0;
	if (nbig == 0)
		return; /* also: no streams (one at a time) */
	for (;;) {
		size_t busy = 0;
		for (size_t i = 0; i < nrun; i++) {
			struct stream *s = slot_fill(b, i);
			while (s && !s->busy && next < nbig) {
				size_t seq = b->order[next++].seq;
				stream_begin(b, s, files[seq], seq);
			}
			busy += s && s->busy;
		}
		if (busy == 0)
			break;
		for (size_t i = 0; i < nrun; i++) {
			ended[i] = false;
			if (b->slot[i] && b->slot[i]->busy)
				ended[i] = stream_step(b, b->slot[i], &ok[i]);
		}
		/* the bodies' staged bytes, every stream's at once */
		if (b->lanes)
			ws_hash_lanes_run(b->lanes);
		for (size_t i = 0; i < nrun; i++) {
			if (!ended[i])
				continue;
			struct stream *s = b->slot[i];
			if (ok[i]) {
				/* the slot takes a spare while s waits for its batch */
				b->slot[i] = NULL;
				ready_add(b, s);
			} else {
				stream_done(b, s, -1);
			}
		}
	}
	flush_ready(b);
}

/* The first want streams, set up when large files come: a run with none (a
 * single file, small files only) or few pays nothing for the others (a
 * stream's first pages: ~10 page faults, ~15 us each on this VM). */
static int
streams_up(struct batch *b, size_t want)
{
	want += VERIFY_SIG_BATCH; /* the ones waiting in ready */
	if (want > b->nst + VERIFY_SIG_BATCH)
		want = b->nst + VERIFY_SIG_BATCH;
	for (; b->st_up < want; b->st_up++) {
		if (stream_init(&b->st[b->st_up], b->lanes, b->now) != 0)
			return -1;
		b->spare[b->nspare++] = &b->st[b->st_up];
	}
	return 0;
}

/* A solo stream not waiting in ready (set up on first use); NULL when
 * none can be set up. */
static struct stream *
solo_free(struct batch *b)
{
	for (size_t i = 0; i < b->solo_up; i++)
		if (!b->solo[i].busy)
			return &b->solo[i];
	if (b->solo_up == VERIFY_SIG_BATCH)
		return NULL;
	struct stream *s = &b->solo[b->solo_up];
	if (stream_init(s, b->lanes, b->now) != 0) {
		stream_free(s);
		return NULL;
	}
	s->solo = true;
	b->solo_up++;
	return s;
}

static void
run_batch(struct batch *b, char **files, size_t nfiles)
{
	size_t next_emit = 0;
	for (size_t first = 0; first < nfiles; first += VERIFY_WINDOW) {
		size_t n = nfiles - first < VERIFY_WINDOW ? nfiles - first : VERIFY_WINDOW;
		size_t nbig = window_order(b, files, first, n);
		size_t nrun = nbig < b->nst ? nbig : b->nst;
		if (nbig && streams_up(b, nrun) != 0) {
			/* no memory for the streams: one at a time from here */
			for (size_t i = 0; i < b->st_up; i++)
				stream_free(&b->st[i]);
			b->st_up = b->nspare = 0;
			memset(b->slot, 0, sizeof(b->slot));
			b->nst = 1;
			nbig = window_order(b, files, first, n);
		}
		run_streams(b, files, nbig, nrun);
		for (size_t k = nbig; k < n; k++) {
			size_t seq = b->order[k].seq;
			/* a result printed between the ready files and this one
			 * (a large file's) must follow them */
			if (b->nready && seq != b->solo_last + 1)
				flush_ready(b);
			b->solo_last = seq;
			/* the results before it (large files) go out first */
			emit(b, &next_emit, seq);
			struct stream *s = solo_free(b);
			if (!s) {
				/* no memory for another: what waits goes first */
				flush_ready(b);
				s = solo_free(b);
			}
			if (s && stream_begin(b, s, files[seq], seq)) {
				bool ok;
				stream_step(b, s, &ok);
				if (ok)
					ready_add(b, s);
				else
					stream_done(b, s, -1);
			}
		}
		flush_ready(b);
		emit(b, &next_emit, first + n);
	}
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
		{"streams", required_argument, NULL, 's'},
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
	unsigned long nstreams = 0; /* 0: not given */
	/* one write per 64 KiB of results, not per 4 KiB (a system call costs
	 * ~1 us in this VM) */
	static char outbuf[64 * 1024];
	if (!isatty(STDOUT_FILENO))
		setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	/* Only this thread writes stdout, so its stdio calls skip the stream
	 * lock (the process has a resolver thread, so glibc locks otherwise:
	 * ~7% of a small message's CPU went to fputc and fwrite taking it) */
	__fsetlocking(stdout, FSETLOCKING_BYCALLER);
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
		case 's': {
			char *end;
			nstreams = strtoul(optarg, &end, 10);
			if (!*optarg || *end || nstreams < 1 || nstreams > VERIFY_STREAMS_MAX) {
				fprintf(stderr, "wireseal verify: --streams wants 1..%u, not '%s'\n",
					VERIFY_STREAMS_MAX, optarg);
				policy_cli_end(&c.pol);
				return 2;
			}
			break;
		}
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
	/* more streams than files buys nothing; one file keeps the one-stream
	 * path (no lane arena: its memory does not grow with the file count) */
	size_t nfiles = (size_t)(argc - optind);
	bool streams_given = nstreams != 0;
	if (!streams_given)
		nstreams = VERIFY_STREAMS_DEFAULT;
	if (nstreams > nfiles)
		nstreams = nfiles;
	static struct batch b;
	memset(&b, 0, sizeof(b));
	b.dirs.fd = -1;
	b.c = &c;
	b.nst = nstreams;
	b.round_body = VERIFY_ROUND_BODY;
	b.buf = malloc(VERIFY_CHUNK);
	/* without AVX-512 the streams given still run, on OpenSSL hashes; the
	 * default is then one (the lanes are what they are for) */
	b.lanes = nstreams > 1 ? ws_hash_lanes_new() : NULL;
	if (!b.lanes && !streams_given)
		nstreams = 1;
	b.nst = nstreams;
	b.st = nstreams > 1 ? calloc(nstreams + VERIFY_SIG_BATCH, sizeof(*b.st)) : NULL;
	c.arc_store = policy_arc_store_new();
	c.keys = keycache_new(dns);
	int status = 0;
	b.now = now;
	c.batch = &b;
	bool ready = (nstreams == 1 || b.st) && b.buf && c.arc_store && c.keys;
	if (ready && !solo_free(&b))
		ready = false;
	if (!ready) {
		fprintf(stderr, "wireseal verify: out of memory\n");
		status = 1;
	} else {
		run_batch(&b, argv + optind, nfiles);
		status = b.status;
	}
	for (size_t i = 0; b.st && i < b.st_up; i++)
		stream_free(&b.st[i]);
	for (size_t i = 0; i < b.solo_up; i++)
		stream_free(&b.solo[i]);
	free(b.st);
	free(b.buf);
	if (b.dirs.fd >= 0)
		close(b.dirs.fd);
	ws_hash_lanes_free(b.lanes);
	keycache_free(c.keys);
	policy_arc_store_free(c.arc_store);
	policy_cli_end(&c.pol);
	ws_dns_free(dns);
	return status;
}
