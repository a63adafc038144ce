/*
 * smtpp: both directions of one SMTP session (RFC 5321, 2920 PIPELINING,
 * 3030 CHUNKING, 3207 STARTTLS, 4954 AUTH), parsed from in-order bytes.
 *
 * Data model: client bytes are commands, or message content (DATA, dot-
 * unstuffed up to CRLF.CRLF; BDAT, exact byte counts), or AUTH exchanges
 * (skipped: never stored, never passed on, only counted), or TLS after an
 * accepted STARTTLS (counted only). Server bytes are replies, multi-line ones
 * joined; each reply is matched to the oldest outstanding command (a bounded
 * queue, so pipelined groups correlate). Events go to the caller's ops as
 * they happen; message content streams through msg_data in spans of the
 * input (no copy, no buffering), so a message of any size costs nothing here.
 *
 * Passive-capture rules (the parser sees both sides but drives neither):
 *  - after DATA the client's bytes are content at once (a client sends them
 *    only after the 354, which the capture shows first); a non-354 reply to
 *    DATA aborts that message (SMTPP_END_REJECTED) and returns to commands.
 *  - a server reply that answers the end of a message while the client side
 *    is still inside it means the end was never seen: the message ends
 *    SMTPP_END_LOST and the client side resynchronises.
 *  - mid-stream pickup and gaps in command/reply mode: skip to the next line
 *    that looks like a command (known verb) / a reply ("ddd" then SP, '-' or
 *    end of line), counted; on mid-stream pickup the first partial line of
 *    each side is dropped too. A gap in the replies empties the command queue
 *    (which commands they answered is unknown). A gap inside a message is passed on (msg_gap)
 *    and the message goes on; inside BDAT it counts against the chunk.
 *  - line ends: CRLF, bare LF tolerated in commands and replies; in DATA
 *    only CRLF "." CRLF ends the message (bare LF never starts a line there).
 *
 * Limits (named below, each tested at and past): a command line past
 * SMTPP_MAX_CMD_LINE is skipped whole (counted, still queued as unknown so
 * replies keep their order); a reply line past SMTPP_MAX_REPLY_LINE is kept
 * truncated (counted); lines past SMTPP_MAX_REPLY_LINES in one reply are not
 * read for capabilities (counted); commands past SMTPP_MAX_PIPELINE
 * outstanding are not queued, so their replies come out unmatched (counted); RCPT past SMTPP_MAX_RCPTS in one transaction is
 * passed on with over_limit set (counted).
 *
 * Memory: the struct holds no buffer; a line that straddles two spans is
 * assembled in a buffer allocated on first need (grown to the line limit,
 * kept until smtpp_trim/smtpp_free). Pure: no I/O, no clock, no globals. Not
 * thread-safe.
 */
#ifndef WS_DATAPLANE_SMTPP_H
#define WS_DATAPLANE_SMTPP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTPP_MAX_CMD_LINE 4096u    /* RFC 5321 says 512; real clients exceed it */
#define SMTPP_MAX_REPLY_LINE 4096u  /* RFC 5321 says 512 */
#define SMTPP_MAX_REPLY_LINES 128u  /* lines of one multi-line reply read */
#define SMTPP_MAX_PIPELINE 128u     /* outstanding commands */
#define SMTPP_MAX_RCPTS 1000u       /* recipients per transaction passed on as such */
#define SMTPP_MAX_BDAT_DIGITS 18u   /* BDAT size field */

#define SMTPP_VERBS(X)                                                                          \
	X(NONE, "")                                                                             \
	X(GREETING, "(greeting)")                                                               \
	X(EHLO, "EHLO")                                                                         \
	X(HELO, "HELO")                                                                         \
	X(MAIL, "MAIL")                                                                         \
	X(RCPT, "RCPT")                                                                         \
	X(DATA, "DATA")                                                                         \
	X(DATA_END, "(end of data)")                                                            \
	X(BDAT, "BDAT")                                                                         \
	X(RSET, "RSET")                                                                         \
	X(NOOP, "NOOP")                                                                         \
	X(QUIT, "QUIT")                                                                         \
	X(STARTTLS, "STARTTLS")                                                                 \
	X(AUTH, "AUTH")                                                                         \
	X(VRFY, "VRFY")                                                                         \
	X(EXPN, "EXPN")                                                                         \
	X(HELP, "HELP")                                                                         \
	X(UNKNOWN, "(unknown)")

enum smtpp_verb {
#define SMTPP_X_ENUM(name, text) SMTPP_##name,
	SMTPP_VERBS(SMTPP_X_ENUM)
#undef SMTPP_X_ENUM
};
const char *smtpp_verb_name(enum smtpp_verb v);

enum smtpp_dir {
	SMTPP_C2S = 0,
	SMTPP_S2C = 1,
};

enum smtpp_body {
	SMTPP_BODY_DATA,
	SMTPP_BODY_BDAT,
};

enum smtpp_msg_end {
	SMTPP_END_DOT,       /* CRLF.CRLF */
	SMTPP_END_BDAT_LAST, /* the LAST chunk's bytes were all seen */
	SMTPP_END_REJECTED,  /* the server refused DATA / a BDAT chunk */
	SMTPP_END_RESET,     /* RSET (BDAT without LAST) */
	SMTPP_END_LOST,      /* the server answered an end the capture did not show */
	SMTPP_END_TLS,       /* STARTTLS inside a BDAT transaction */
	SMTPP_END_SESSION,   /* the session ended inside the message */
};

/* A command. arg: what follows the verb and its space, without the line
 * end (for AUTH only the mechanism: initial responses are never passed). */
struct smtpp_cmd {
	enum smtpp_verb verb;
	const char *arg;
	size_t arg_len;
	uint64_t bdat_size; /* BDAT */
	bool bdat_last;
	bool over_limit;    /* RCPT past SMTPP_MAX_RCPTS */
	bool too_long;      /* line past SMTPP_MAX_CMD_LINE: verb UNKNOWN, arg empty */
};

/* A complete reply (the final line of a multi-line one). text: the first
 * line after the code and separator. verb: the command it answers, NONE
 * when it could not be matched. */
struct smtpp_reply {
	unsigned code;
	enum smtpp_verb verb;
	bool matched;
	const char *text;
	size_t text_len;
	unsigned lines;
};

/* EHLO keywords from the last 250 reply to EHLO. */
struct smtpp_caps {
	bool seen, pipelining, chunking, starttls, eightbitmime, auth, size;
	uint64_t size_max;
};

struct smtpp_ops {
	void (*command)(void *arg, const struct smtpp_cmd *c);
	void (*reply)(void *arg, const struct smtpp_reply *r);
	void (*msg_begin)(void *arg, enum smtpp_body kind);
	void (*msg_data)(void *arg, const uint8_t *p, size_t len);
	void (*msg_gap)(void *arg, uint64_t len);
	void (*msg_end)(void *arg, enum smtpp_msg_end how);
	void (*tls)(void *arg); /* STARTTLS accepted: both sides are TLS from here */
	/* Optional. Every command line (C2S: verb as parsed) and reply line (S2C:
	 * verb = the command it answers, NONE if unknown) read in cleartext,
	 * without its line end; off: stream offset of the line's first byte. */
	void (*line)(void *arg, enum smtpp_dir dir, enum smtpp_verb verb, const uint8_t *p,
		     size_t len, uint64_t off);
	/* Optional. Bytes of one side after STARTTLS was accepted (those that
	 * follow the 220 in its own span included); off: stream offset of p[0]. */
	void (*tls_data)(void *arg, enum smtpp_dir dir, const uint8_t *p, size_t len, uint64_t off);
	void (*tls_gap)(void *arg, enum smtpp_dir dir, uint64_t len);
};

struct smtpp_counters {
	uint64_t commands, replies, unmatched_replies, unknown_commands;
	uint64_t long_cmd_lines, long_reply_lines, reply_lines_over, pipeline_over, rcpt_over;
	uint64_t resync_skipped; /* lines skipped while resynchronising */
	uint64_t auth_lines;     /* AUTH exchange lines skipped */
	uint64_t tls_bytes[2];
	uint64_t messages, msg_bytes;
	uint64_t bad_replies;    /* lines in reply position that are not replies */
};

struct smtpp_line {
	uint8_t *buf;
	uint32_t len, cap;
	bool overflow; /* past the limit: the rest of the line is dropped */
	bool skip;     /* resynchronising: this line is dropped whole */
};

struct smtpp {
	const struct smtpp_ops *ops;
	void *arg;
	uint8_t cstate, sstate, dstate;
	bool in_msg, bdat_last, midstream;
	uint64_t bdat_left;
	unsigned rcpts;         /* RCPT commands in the current transaction */
	/* reply being assembled */
	unsigned rcode, rlines;
	uint8_t rqueue[SMTPP_MAX_PIPELINE]; /* outstanding verbs, a ring */
	uint8_t qhead, qlen;
	struct smtpp_caps caps, caps_pending;
	struct smtpp_line line[2];
	/* the first line's text of a multi-line reply (up to a short prefix) */
	char rtext[80];
	uint8_t rtext_len;
	struct smtpp_counters c;
	uint64_t pos[2];    /* stream offset of the next byte of each side */
	uint64_t lstart[2]; /* stream offset where the current line began */
};

/* midstream: the capture did not see the start; both sides resynchronise. */
void smtpp_init(struct smtpp *p, const struct smtpp_ops *ops, void *arg, bool midstream);
/* A connection that is TLS from its first byte (implicit TLS, port 465):
 * nothing is parsed, both sides' bytes are counted (c.tls_bytes). */
void smtpp_init_tls(struct smtpp *p, const struct smtpp_ops *ops, void *arg);
void smtpp_free(struct smtpp *p);
/* Release line buffers that hold no partial line (idle sessions). */
void smtpp_trim(struct smtpp *p);
/* In-order bytes of one direction. */
void smtpp_feed(struct smtpp *p, enum smtpp_dir dir, const uint8_t *data, size_t len);
/* len bytes of one direction were lost. */
void smtpp_gap(struct smtpp *p, enum smtpp_dir dir, uint64_t len);
/* The session is over: a message still open ends SMTPP_END_SESSION. */
void smtpp_end(struct smtpp *p);
bool smtpp_tls(const struct smtpp *p);

/* The address inside the first <...> of a MAIL/RCPT argument ("FROM:<a@b>
 * SIZE=1"): *out and *out_len point into arg. 0, or -1 when there is none. */
int smtpp_path(const char *arg, size_t len, const char **out, size_t *out_len);

#endif
