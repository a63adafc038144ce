/*
 * tlsobs: a passive observer of one TLS handshake (RFC 5246, RFC 8446) as
 * the two byte streams that follow an accepted STARTTLS (RFC 3207).
 *
 * Data model: per direction a resumable record reader (5-byte header, then
 * the fragment) feeds a handshake-message assembler (4-byte header, then the
 * body; messages split across records and several per record both work).
 * Only ClientHello, ServerHello and (TLS <= 1.2) Certificate bodies are
 * kept and parsed; every other message is skipped by length. Once a
 * direction is encrypted (after its ChangeCipherSpec in TLS <= 1.2; after
 * the ServerHello in TLS 1.3) its records are only counted by type.
 * Bytes that do not start a TLS record before the first one (injected SMTP
 * lines, a middlebox) are skipped up to the next plausible handshake record
 * header and reported (junk_bytes, junk_offset); a bad record header after
 * TLS began stops that direction (error).
 *
 * Offsets are stream offsets of the direction (the caller gives the offset
 * of the first byte it feeds). Results are in struct tlsobs_facts; the
 * certificate chain is the DER of each certificate, spans into a buffer the
 * observer owns (valid until tlsobs_free).
 *
 * Limits (each counted when hit, tested at and past): a record longer than
 * TLSOBS_MAX_RECORD stops the direction; a ClientHello/ServerHello longer
 * than TLSOBS_MAX_HELLO and a Certificate message longer than
 * TLSOBS_MAX_CHAIN are skipped unparsed (the chain is then "not seen");
 * certificates past TLSOBS_MAX_CERTS are not kept; SNI past TLSOBS_MAX_SNI
 * bytes is cut; at most TLSOBS_MAX_JUNK bytes are skipped looking for the
 * first record.
 *
 * Memory: the struct holds no buffer; a hello or chain buffer is allocated
 * when such a message begins (its exact length) and kept until tlsobs_free.
 * Pure: no I/O, no clock, no globals. Not thread-safe.
 */
#ifndef WS_DATAPLANE_TLSOBS_H
#define WS_DATAPLANE_TLSOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLSOBS_MAX_RECORD (16384u + 2048u) /* TLSCiphertext.length (RFC 5246 6.2.3) */
#define TLSOBS_MAX_HELLO 16384u            /* ClientHello / ServerHello body kept */
#define TLSOBS_MAX_CHAIN 65536u            /* Certificate message body kept */
#define TLSOBS_MAX_CERTS 8u                /* certificates kept from one chain */
#define TLSOBS_MAX_SNI 255u                /* host_name bytes (RFC 6066 3: < 2^16, DNS: 253) */
#define TLSOBS_MAX_JUNK 65536u             /* bytes skipped looking for the first record */

enum tlsobs_dir {
	TLSOBS_C2S = 0,
	TLSOBS_S2C = 1,
};

#define TLSOBS_VERSION_TLS12 0x0303u
#define TLSOBS_VERSION_TLS13 0x0304u

struct tlsobs_alert {
	bool seen;
	bool encrypted; /* an alert record after the direction was encrypted: level unknown */
	uint8_t level, desc;
	uint64_t offset;
};

struct tlsobs_span {
	uint32_t off, len;
};

struct tlsobs_dirfacts {
	uint64_t records, handshake_records, appdata_records, ccs_records, alert_records;
	uint64_t junk_bytes;  /* skipped before the first record */
	uint64_t junk_offset; /* where the skipped bytes began */
	uint64_t first_record_offset, first_appdata_offset;
	bool started;         /* a record header was read */
	bool encrypted;
	bool error;           /* a bad record header after TLS began: direction stopped */
	const char *error_reason;
	uint64_t error_offset;
	struct tlsobs_alert alert; /* the first alert record of this direction */
	uint64_t gap_bytes;
};

struct tlsobs_facts {
	bool client_hello, server_hello, hello_retry;
	uint16_t ch_legacy_version, version_offered_max, version, cipher;
	bool ch_session_id, ch_ticket, ch_psk; /* the client offered resumption */
	bool sni_present;
	char sni[TLSOBS_MAX_SNI + 1]; /* bytes outside 0x21-0x7e become '?' */
	uint64_t ch_offset, sh_offset;
	bool resumed;                 /* SH echoed the session id, chose a PSK, or (<= 1.2) CCS came with no Certificate */
	uint8_t downgrade_sentinel;   /* 0: none; 1: "DOWNGRD\x01" (1.2); 2: "DOWNGRD\x00" (<= 1.1) */
	bool anonymous;               /* <= 1.2 full handshake whose server sent no Certificate (anon suite) */
	bool cert_seen;               /* a TLS <= 1.2 Certificate message was parsed */
	uint64_t cert_offset;
	unsigned ncerts;
	struct tlsobs_span cert[TLSOBS_MAX_CERTS]; /* DER, into tlsobs_chain() */
	struct tlsobs_dirfacts dir[2];
	/* limits hit */
	uint64_t record_over, hello_over, chain_over, certs_over, sni_over, junk_over;
	uint64_t malformed; /* hello/certificate bodies that did not parse */
};

struct tlsobs_hs {
	uint8_t hdr[4];
	uint8_t hdr_have;
	uint8_t type;
	uint32_t len, have;
	bool keep;      /* body goes to buf */
	uint64_t start; /* stream offset of the message header */
};

struct tlsobs_rd {
	uint8_t hdr[5];
	uint8_t hdr_have;
	uint16_t left;    /* fragment bytes still to come */
	uint8_t type;
	uint64_t pos;     /* stream offset of the next byte */
	uint8_t alert[2];
	uint8_t alert_have;
	uint64_t alert_off;
	struct tlsobs_hs hs;
	uint8_t *buf;     /* the message body being kept */
	uint32_t cap;
};

struct tlsobs {
	struct tlsobs_rd rd[2];
	uint8_t ch_sid[32];
	uint8_t ch_sid_len;
	bool sh_cert_pending; /* SH (<= 1.2, not echoed) seen, Certificate not yet */
	uint8_t *chain;       /* the Certificate body, owned */
	uint32_t chain_len;
	struct tlsobs_facts f;
};

/* off_c2s / off_s2c: stream offsets of the first byte each side will feed. */
void tlsobs_init(struct tlsobs *t, uint64_t off_c2s, uint64_t off_s2c);
void tlsobs_free(struct tlsobs *t);
/* Set the stream offset of the next byte of direction d (before its first
 * byte is fed, when the start is known only then). */
void tlsobs_base(struct tlsobs *t, enum tlsobs_dir d, uint64_t off);
void tlsobs_feed(struct tlsobs *t, enum tlsobs_dir d, const uint8_t *p, size_t n);
/* n bytes of direction d were lost: a record in progress is abandoned and the
 * direction stops (the next record boundary is unknown). */
void tlsobs_gap(struct tlsobs *t, enum tlsobs_dir d, uint64_t n);
const struct tlsobs_facts *tlsobs_facts(const struct tlsobs *t);
/* The Certificate message body the spans in facts point into (NULL if none). */
const uint8_t *tlsobs_chain(const struct tlsobs *t);
/* The handshake looks complete: both sides sent ChangeCipherSpec and no
 * cleartext alert (<= 1.2; an encrypted one is close_notify as a rule) or, with TLS 1.3, the client sent at least two encrypted records
 * (its Finished and data) and the server one, with no cleartext alert. */
bool tlsobs_established(const struct tlsobs *t);
/* "TLSv1.2", "TLSv1.3", "SSLv3", ... or "unknown". */
const char *tlsobs_version_name(uint16_t v);
/* A cipher suite the research note calls weak (NULL, EXPORT, RC4, anon, DES). */
bool tlsobs_weak_cipher(uint16_t suite);

#endif
