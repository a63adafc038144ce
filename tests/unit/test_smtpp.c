/*
 * smtpp: table of SMTP conversations -> event log (commands, replies matched
 * to commands, message contents with dot-unstuffing, BDAT, AUTH skipped,
 * STARTTLS, resync); every case again in random splits (same log); every
 * named limit at and past.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtpp.h"
#include "testutil.h"

struct log {
	char *s;
	size_t len, cap;
	char *body;
	size_t blen, bcap;
};

static void
put(char **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*buf = realloc(*buf, *cap);
		assert_non_null(*buf);
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = '\0';
}

static void
logf_(struct log *l, const char *fmt, ...)
{
	char tmp[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(tmp));
	put(&l->s, &l->len, &l->cap, tmp, (size_t)n);
}

static void
on_command(void *arg, const struct smtpp_cmd *c)
{
	logf_(arg, "C:%s %.*s%s%s\n", smtpp_verb_name(c->verb), (int)(c->arg_len > 60 ? 60 : c->arg_len),
	      c->arg, c->over_limit ? " !over" : "", c->too_long ? " !long" : "");
}

static void
on_reply(void *arg, const struct smtpp_reply *r)
{
	logf_(arg, "R:%u>%s\n", r->code, r->matched ? smtpp_verb_name(r->verb) : "-");
}

static void
on_begin(void *arg, enum smtpp_body kind)
{
	struct log *l = arg;
	logf_(l, "B:%s\n", kind == SMTPP_BODY_DATA ? "DATA" : "BDAT");
	l->blen = 0;
}

static void
on_data(void *arg, const uint8_t *p, size_t len)
{
	struct log *l = arg;
	assert_true(len > 0);
	put(&l->body, &l->blen, &l->bcap, p, len);
}

static void
on_gap(void *arg, uint64_t len)
{
	struct log *l = arg;
	char tmp[40];
	int n = snprintf(tmp, sizeof(tmp), "[gap %llu]", (unsigned long long)len);
	put(&l->body, &l->blen, &l->bcap, tmp, (size_t)n);
}

static void
on_end(void *arg, enum smtpp_msg_end how)
{
	static const char *const names[] = {"DOT", "LAST", "REJECTED", "RESET", "LOST", "TLS", "SESSION"};
	struct log *l = arg;
	logf_(l, "M:%.*s|%s\n", (int)l->blen, l->body ? l->body : "", names[how]);
	l->blen = 0;
}

static void
on_tls(void *arg)
{
	logf_(arg, "TLS\n");
}

static const struct smtpp_ops ops = {on_command, on_reply, on_begin, on_data,
				     on_gap,     on_end,   on_tls};

/* A script: 'C'/'S' text, or 'c'/'s' with a number: a gap of that many bytes. */
struct item {
	char dir;
	const char *text;
	uint64_t gap;
};

struct scase {
	const char *name;
	bool midstream;
	struct item items[16];
	const char *want;
};

static void
run_script(const struct scase *c, uint64_t seed, struct log *l, struct smtpp *p)
{
	memset(l, 0, sizeof(*l));
	smtpp_init(p, &ops, l, c->midstream);
	for (size_t i = 0; i < 16 && c->items[i].dir; i++) {
		const struct item *it = &c->items[i];
		enum smtpp_dir dir = (it->dir == 'C' || it->dir == 'c') ? SMTPP_C2S : SMTPP_S2C;
		if (it->dir == 'c' || it->dir == 's') {
			smtpp_gap(p, dir, it->gap);
			continue;
		}
		const uint8_t *d = (const uint8_t *)it->text;
		size_t n = strlen(it->text);
		for (size_t off = 0; off < n;) {
			size_t k = seed ? 1 + tu_rand(&seed) % 7 : n - off;
			if (k > n - off)
				k = n - off;
			smtpp_feed(p, dir, d + off, k);
			off += k;
		}
	}
	smtpp_end(p);
}

static const struct scase cases[] = {
	{"session with DATA, pipelining, dot-stuffing",
	 false,
	 {{'S', "220 mx.example ESMTP\r\n"},
	  {'C', "EHLO client.example\r\n"},
	  {'S', "250-mx.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-SIZE 1000\r\n250 STARTTLS\r\n"},
	  {'C', "MAIL FROM:<a@b.example> SIZE=10\r\nRCPT TO:<x@y.example>\r\nRCPT TO:<z@y.example>\r\nDATA\r\n"},
	  {'S', "250 ok\r\n550 no such user\r\n250 ok\r\n354 go ahead\r\n"},
	  {'C', "Subject: x\r\n\r\n..dot\r\n...\r\n.\r\n"},
	  {'S', "250 queued\r\n"},
	  {'C', "QUIT\r\n"},
	  {'S', "221 bye\r\n"}},
	 "R:220>(greeting)\nC:EHLO client.example\nR:250>EHLO\n"
	 "C:MAIL FROM:<a@b.example> SIZE=10\nC:RCPT TO:<x@y.example>\nC:RCPT TO:<z@y.example>\n"
	 "C:DATA \nB:DATA\nR:250>MAIL\nR:550>RCPT\nR:250>RCPT\nR:354>DATA\n"
	 "M:Subject: x\r\n\r\n.dot\r\n..\r\n|DOT\nR:250>(end of data)\nC:QUIT \nR:221>QUIT\n"},
	{"BDAT chunks",
	 false,
	 {{'C', "MAIL FROM:<>\r\nBDAT 5\r\nabcdeBDAT 3 LAST\r\nf\r\nRSET\r\n"},
	  {'S', "250 ok\r\n250 5 octets\r\n250 done\r\n250 reset\r\n"}},
	 "C:MAIL FROM:<>\nC:BDAT 5\nB:BDAT\nC:BDAT 3 LAST\nM:abcdef\r\n|LAST\nC:RSET \n"
	 "R:250>(greeting)\nR:250>MAIL\nR:250>BDAT\nR:250>BDAT\n"},
	{"BDAT 0 LAST, then RSET ends an open BDAT message",
	 false,
	 {{'C', "BDAT 2\r\nxyBDAT 0 LAST\r\nBDAT 1\r\nzRSET\r\n"}},
	 "C:BDAT 2\nB:BDAT\nC:BDAT 0 LAST\nM:xy|LAST\nC:BDAT 1\nB:BDAT\nC:RSET \nM:z|RESET\n"},
	{"DATA refused",
	 false,
	 {{'C', "DATA\r\n"}, {'S', "220 hi\r\n554 no valid recipients\r\n"}, {'C', "QUIT\r\n"}},
	 "C:DATA \nB:DATA\nR:220>(greeting)\nM:|REJECTED\nR:554>DATA\nC:QUIT \n"},
	{"AUTH exchange skipped",
	 false,
	 {{'C', "AUTH LOGIN\r\n"},
	  {'S', "220 hi\r\n334 VXNlcm5hbWU6\r\n"},
	  {'C', "c2VjcmV0dXNlcg==\r\n"},
	  {'S', "334 UGFzc3dvcmQ6\r\n"},
	  {'C', "c2VjcmV0cGFzcw==\r\n"},
	  {'S', "235 ok\r\n"},
	  {'C', "AUTH PLAIN AHNlY3JldAB4\r\n"},
	  {'S', "235 ok\r\n"},
	  {'C', "NOOP\r\n"},
	  {'S', "250 ok\r\n"}},
	 "C:AUTH LOGIN\nR:220>(greeting)\nR:334>AUTH\nR:334>AUTH\nR:235>AUTH\nC:AUTH PLAIN\n"
	 "R:235>AUTH\nC:NOOP \nR:250>NOOP\n"},
	{"STARTTLS accepted",
	 false,
	 {{'S', "220 hi\r\n"},
	  {'C', "STARTTLS\r\n"},
	  {'S', "220 go\r\n"},
	  {'C', "\x16\x03\x01\x00\x05hello\r\nMAIL FROM:<a@b>\r\n"},
	  {'S', "\x16\x03\x03\r\n250 fake\r\n"}},
	 "R:220>(greeting)\nC:STARTTLS \nTLS\nR:220>STARTTLS\n"},
	{"STARTTLS refused",
	 false,
	 {{'S', "220 hi\r\n"}, {'C', "STARTTLS\r\n"}, {'S', "454 not now\r\n"}, {'C', "QUIT\r\n"}},
	 "R:220>(greeting)\nC:STARTTLS \nR:454>STARTTLS\nC:QUIT \n"},
	{"dot edge cases",
	 false,
	 {{'C', "DATA\r\n"},
	  {'S', "220 hi\r\n354 go\r\n"},
	  {'C', "a\r\n.\rX\r\n..\r\nb\n.\nc\r\n.x\r\n\r\n.\r\n"}},
	 "C:DATA \nB:DATA\nR:220>(greeting)\nR:354>DATA\n"
	 "M:a\r\n\rX\r\n.\r\nb\n.\nc\r\nx\r\n\r\n|DOT\n"},
	{"empty message, bare LF command lines, lower case verbs",
	 false,
	 {{'C', "helo x\nmail from:<a@b>\ndata\n"}, {'C', ".\r\n"}},
	 "C:HELO x\nC:MAIL from:<a@b>\nC:DATA \nB:DATA\nM:|DOT\n"},
	{"mid-stream pickup",
	 true,
	 {{'C', "tial line\r\nsome body text\r\nData follows\r\nmail me\r\n"
		"rcpt list\r\nehlo a b\r\nquit now\r\nBDAT x\r\n.\r\nMAIL FROM:<a@b>\r\n"},
	  {'S', "ue\r\n250 ok\r\n"}},
	 "C:MAIL FROM:<a@b>\nR:250>MAIL\n"},
	{"gap in DATA, end lost, resync",
	 false,
	 {{'C', "DATA\r\n"},
	  {'S', "220 hi\r\n354 go\r\n"},
	  {'C', "h: x\r\n\r\nbody\r\n"},
	  {'c', NULL, 10},
	  {'S', "250 ok\r\n"},
	  {'C', "QUIT\r\n"}},
	 "C:DATA \nB:DATA\nR:220>(greeting)\nR:354>DATA\nM:h: x\r\n\r\nbody\r\n[gap 10]|LOST\n"
	 "R:250>(end of data)\nC:QUIT \n"},
	{"gap in DATA, end seen",
	 false,
	 {{'C', "DATA\r\nab"}, {'c', NULL, 3}, {'C', "\r\n.\r\nQUIT\r\n"}},
	 "C:DATA \nB:DATA\nM:ab[gap 3]\r\n|DOT\nC:QUIT \n"},
	{"gap in BDAT spills into commands",
	 false,
	 {{'C', "BDAT 4 LAST\r\nab"}, {'c', NULL, 8}, {'C', "T\r\nNOOP\r\n"}},
	 "C:BDAT 4 LAST\nB:BDAT\nM:ab[gap 2]|LAST\nC:NOOP \n"},
	{"gap in replies empties the queue",
	 false,
	 {{'C', "NOOP\r\nNOOP\r\nNOOP\r\n"},
	  {'S', "220 hi\r\n250 a\r\n"},
	  {'s', NULL, 5},
	  {'S', "0 b\r\n250 c\r\n"},
	  {'C', "VRFY x\r\n"},
	  {'S', "252 d\r\n"}},
	 "C:NOOP \nC:NOOP \nC:NOOP \nR:220>(greeting)\nR:250>NOOP\nR:250>-\nC:VRFY x\nR:252>VRFY\n"},
	{"session ends inside a message",
	 false,
	 {{'C', "DATA\r\nabc"}},
	 "C:DATA \nB:DATA\nM:abc|SESSION\n"},
};

static void
test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct log l;
		struct smtpp p;
		run_script(&cases[i], 0, &l, &p);
		if (!l.s || strcmp(l.s, cases[i].want) != 0)
			fail_msg("%s:\n--- got\n%s--- want\n%s", cases[i].name, l.s ? l.s : "",
				 cases[i].want);
		if (strstr(cases[i].name, "AUTH")) {
			assert_int_equal(p.c.auth_lines, 2);
			assert_int_equal(p.c.commands, 3);
		}
		if (strstr(cases[i].name, "STARTTLS accepted")) {
			assert_true(smtpp_tls(&p));
			assert_true(p.c.tls_bytes[0] > 0 && p.c.tls_bytes[1] > 0);
		}
		if (strstr(cases[i].name, "pipelining")) {
			assert_true(p.caps.seen && p.caps.pipelining && p.caps.chunking &&
				    p.caps.starttls && p.caps.size && !p.caps.auth);
			assert_int_equal(p.caps.size_max, 1000);
		}
		if (strstr(cases[i].name, "mid-stream"))
			assert_int_equal(p.c.resync_skipped, 10);
		smtpp_free(&p);
		free(l.s);
		free(l.body);
	}
}

/* The log does not depend on how the bytes were split. */
static void
test_splits(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (uint64_t seed = 1; seed < 40; seed++) {
			struct log l;
			struct smtpp p;
			run_script(&cases[i], seed, &l, &p);
			if (!l.s || strcmp(l.s, cases[i].want) != 0)
				fail_msg("%s (seed %llu):\n--- got\n%s--- want\n%s", cases[i].name,
					 (unsigned long long)seed, l.s ? l.s : "", cases[i].want);
			smtpp_free(&p);
			free(l.s);
			free(l.body);
		}
	}
}

/* Dot-unstuffing as RFC 5321 4.5.2 says it, byte by byte: the reference for
 * the parser's vector scan. Returns the input bytes up to and including the
 * terminator (n when there is none). */
static size_t
ref_unstuff(const uint8_t *d, size_t n, uint8_t *out, size_t *olen)
{
	bool bol = true;
	*olen = 0;
	for (size_t i = 0; i < n; i++) {
		if (bol && d[i] == '.') {
			if (i + 2 < n && d[i + 1] == '\r' && d[i + 2] == '\n')
				return i + 3;
			bol = false; /* the stuffed dot goes */
			continue;
		}
		bol = d[i] == '\n' && i > 0 && d[i - 1] == '\r';
		out[(*olen)++] = d[i];
	}
	return n;
}

/* Random DATA contents rich in dots, CRs and LFs (stuffed dots, bare LFs,
 * ".\r" without LF, CRLF runs), long enough for the vector scan, fed in
 * splits of 1 byte to all of it: the body equals the reference, and the
 * commands after the terminator are parsed. */
static void
test_data_random(void **state)
{
	(void)state;
	static const char alpha[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa..\r\n\r\n\r\n.\n";
	static uint8_t in[6000], want[6000];
	uint64_t seed = 12345;
	for (unsigned round = 0; round < 400; round++) {
		size_t n = 1 + tu_rand(&seed) % 4000;
		for (size_t i = 0; i < n; i++)
			in[i] = (uint8_t)alpha[tu_rand(&seed) % (sizeof(alpha) - 1)];
		memcpy(in + n, "\r\n.\r\nQUIT\r\n", 11);
		size_t total = n + 11, wlen;
		size_t end = ref_unstuff(in, total, want, &wlen);
		assert_true(end <= n + 5);
		struct log l;
		memset(&l, 0, sizeof(l));
		struct smtpp p;
		smtpp_init(&p, &ops, &l, false);
		smtpp_feed(&p, SMTPP_C2S, (const uint8_t *)"DATA\r\n", 6);
		unsigned mode = round % 4; /* 1 byte, small, segment-sized, all at once */
		for (size_t off = 0; off < total;) {
			size_t k = mode == 0 ? 1 : mode == 1 ? 1 + tu_rand(&seed) % 20
				   : mode == 2 ? 1 + tu_rand(&seed) % 1460 : total;
			if (k > total - off)
				k = total - off;
			smtpp_feed(&p, SMTPP_C2S, in + off, k);
			off += k;
		}
		smtpp_end(&p);
		const char *m = strstr(l.s, "M:");
		assert_non_null(m);
		m += 2;
		if (strncmp(m, (const char *)want, wlen) != 0 || strncmp(m + wlen, "|DOT\n", 5) != 0)
			fail_msg("round %u (mode %u, %zu bytes): body differs from the reference", round,
				 mode, n);
		/* what follows the terminator is commands again (the random
		 * part may hold an earlier terminator: then they are junk) */
		if (end == total - 6)
			assert_non_null(strstr(l.s, "C:QUIT"));
		smtpp_free(&p);
		free(l.s);
		free(l.body);
	}
}

static void
test_path(void **state)
{
	(void)state;
	const char *a;
	size_t n;
	const char *s = "FROM:<a@b.example> SIZE=1";
	assert_int_equal(smtpp_path(s, strlen(s), &a, &n), 0);
	assert_int_equal(n, 11);
	assert_memory_equal(a, "a@b.example", 11);
	s = "TO:<@r1,@r2:u@d>";
	assert_int_equal(smtpp_path(s, strlen(s), &a, &n), 0);
	assert_memory_equal(a, "u@d", 3);
	assert_int_equal(n, 3);
	s = "FROM:<>";
	assert_int_equal(smtpp_path(s, strlen(s), &a, &n), 0);
	assert_int_equal(n, 0);
	s = "FROM:a@b";
	assert_int_equal(smtpp_path(s, strlen(s), &a, &n), -1);
	s = "FROM:<a@b";
	assert_int_equal(smtpp_path(s, strlen(s), &a, &n), -1);
}

/* Feed text in chunks of 100 so long lines go through the line buffer. */
static void
feed(struct smtpp *p, enum smtpp_dir dir, const char *text)
{
	size_t n = strlen(text);
	for (size_t off = 0; off < n; off += 100)
		smtpp_feed(p, dir, (const uint8_t *)text + off, n - off < 100 ? n - off : 100);
}

static char *
line_of(const char *prefix, size_t total, const char *end)
{
	char *s = malloc(total + strlen(end) + 1);
	size_t pl = strlen(prefix);
	memcpy(s, prefix, pl);
	memset(s + pl, 'a', total - pl);
	memcpy(s + total, end, strlen(end) + 1);
	return s;
}

static void
test_limits(void **state)
{
	(void)state;
	struct log l;
	struct smtpp p;
	/* command line: SMTPP_MAX_CMD_LINE bytes before CRLF is fine, one more is not */
	for (int past = 0; past < 2; past++) {
		memset(&l, 0, sizeof(l));
		smtpp_init(&p, &ops, &l, false);
		char *s = line_of("VRFY ", SMTPP_MAX_CMD_LINE + (size_t)past, "\r\nNOOP\r\n");
		feed(&p, SMTPP_C2S, s);
		assert_int_equal(p.c.long_cmd_lines, past);
		assert_int_equal(p.c.commands, 2);
		assert_non_null(strstr(l.s, past ? "C:(unknown)  !long\nC:NOOP" : "C:VRFY aaa"));
		/* also when the line comes whole in one span */
		smtpp_feed(&p, SMTPP_C2S, (const uint8_t *)s, strlen(s));
		assert_int_equal(p.c.long_cmd_lines, 2 * past);
		free(s);
		smtpp_free(&p);
		free(l.s);
	}
	/* reply line */
	for (int past = 0; past < 2; past++) {
		memset(&l, 0, sizeof(l));
		smtpp_init(&p, &ops, &l, false);
		char *s = line_of("220 ", SMTPP_MAX_REPLY_LINE + (size_t)past, "\r\n");
		feed(&p, SMTPP_S2C, s);
		assert_int_equal(p.c.long_reply_lines, past);
		assert_int_equal(p.c.replies, 1);
		assert_string_equal(l.s, "R:220>(greeting)\n");
		free(s);
		smtpp_free(&p);
		free(l.s);
	}
	/* lines of one reply: SMTPP_MAX_REPLY_LINES read for capabilities */
	for (int past = 0; past < 2; past++) {
		memset(&l, 0, sizeof(l));
		smtpp_init(&p, &ops, &l, true);
		feed(&p, SMTPP_C2S, "\r\nEHLO x\r\n");
		feed(&p, SMTPP_S2C, "\r\n");
		size_t nl = SMTPP_MAX_REPLY_LINES + (size_t)past;
		char *r = malloc(nl * 16 + 1);
		size_t off = 0;
		for (size_t i = 0; i + 1 < nl; i++)
			off += (size_t)snprintf(r + off, 16, "250-X%zu\r\n", i % 10);
		off += (size_t)snprintf(r + off, 16, "250 CHUNKING\r\n");
		feed(&p, SMTPP_S2C, r);
		assert_int_equal(p.c.reply_lines_over, past);
		assert_int_equal(p.c.replies, 1);
		assert_int_equal(p.caps.chunking, !past);
		free(r);
		smtpp_free(&p);
		free(l.s);
	}
	/* pipelined queue */
	for (int past = 0; past < 2; past++) {
		memset(&l, 0, sizeof(l));
		smtpp_init(&p, &ops, &l, true);
		feed(&p, SMTPP_C2S, "\r\n");
		feed(&p, SMTPP_S2C, "\r\n");
		for (size_t i = 0; i < SMTPP_MAX_PIPELINE + (size_t)past; i++)
			feed(&p, SMTPP_C2S, "NOOP\r\n");
		assert_int_equal(p.c.pipeline_over, past);
		for (size_t i = 0; i < SMTPP_MAX_PIPELINE + (size_t)past; i++)
			feed(&p, SMTPP_S2C, "250 ok\r\n");
		assert_int_equal(p.c.unmatched_replies, past);
		smtpp_free(&p);
		free(l.s);
	}
	/* recipients */
	for (int past = 0; past < 2; past++) {
		memset(&l, 0, sizeof(l));
		smtpp_init(&p, &ops, &l, false);
		feed(&p, SMTPP_C2S, "MAIL FROM:<a@b>\r\n");
		for (size_t i = 0; i < SMTPP_MAX_RCPTS + (size_t)past; i++)
			feed(&p, SMTPP_C2S, "RCPT TO:<r@x>\r\n");
		assert_int_equal(p.c.rcpt_over, past);
		assert_int_equal(strstr(l.s, "!over") != NULL, past);
		/* a new transaction counts afresh */
		feed(&p, SMTPP_C2S, "RSET\r\nMAIL FROM:<a@b>\r\nRCPT TO:<r@x>\r\n");
		assert_int_equal(p.c.rcpt_over, past);
		smtpp_free(&p);
		free(l.s);
	}
	/* BDAT size: SMTPP_MAX_BDAT_DIGITS digits, one more is not BDAT */
	memset(&l, 0, sizeof(l));
	smtpp_init(&p, &ops, &l, false);
	feed(&p, SMTPP_C2S, "BDAT 0000000000000000001\r\nBDAT 000000000000000001 LAST\r\nz");
	assert_string_equal(l.s, "C:(unknown) 0000000000000000001\nC:BDAT 000000000000000001 LAST\n"
				 "B:BDAT\nM:z|LAST\n");
	smtpp_free(&p);
	free(l.s);
	free(l.body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_splits),
		cmocka_unit_test(test_data_random),
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
