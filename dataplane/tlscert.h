/*
 * tlscert: what a passively seen TLS <= 1.2 certificate chain says: the
 * leaf's SAN dNSNames and subject CN (kept apart), validity, issuer, and
 * whether the chain verifies against a CA store at a given time (OpenSSL
 * X509_STORE; the host name is NOT checked here: that is the policy's job,
 * sts_dnsid_match).
 *
 * Data model: struct tlscert_info owns its strings (tlscert_info_free).
 * names[] holds the SAN dNSNames in certificate order, then, when the subject
 * has a CN, one entry "CN=<cn>" (cn_index says which): a CN is never a
 * DNS-ID (RFC 8461 4.2), and the "CN=" prefix can never match a host name.
 * Thread-safety: reentrant; the store may be shared between threads for
 * verification (OpenSSL locks it). Limits: TLSCERT_MAX_NAMES names kept
 * (more are counted in names_over), each cut at TLSCERT_MAX_NAME bytes; the
 * issuer is cut at TLSCERT_MAX_ISSUER bytes.
 */
#ifndef WS_DATAPLANE_TLSCERT_H
#define WS_DATAPLANE_TLSCERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlsobs.h"

#define TLSCERT_MAX_NAMES 64u
#define TLSCERT_MAX_NAME 253u
#define TLSCERT_MAX_ISSUER 255u

struct x509_store_st;

struct tlscert_info {
	bool parsed;          /* the leaf decoded as X.509 */
	char **names;         /* SAN dNSNames, then "CN=..." */
	size_t nnames;
	long cn_index;        /* index of the CN entry, or -1 */
	uint64_t names_over;
	int64_t not_before, not_after; /* seconds since the epoch */
	char issuer[TLSCERT_MAX_ISSUER + 1]; /* RFC 2253 one-line form */
	bool chain_trusted;   /* verified against the store at the given time */
	int verify_error;     /* X509_V_* (0: ok) */
	const char *verify_reason; /* OpenSSL's text for verify_error, "no CA store" ... */
};

/* chain: the Certificate message body; spans: each certificate's DER (leaf
 * first), as tlsobs gives them. store NULL: chain_trusted false, reason "no
 * CA store". at: the verification time (the capture time). Returns 0, or -1
 * when the leaf does not decode (out->parsed false) or memory ran out. */
int tlscert_assess(const uint8_t *chain, const struct tlsobs_span *spans, unsigned n,
		   struct x509_store_st *store, int64_t at, struct tlscert_info *out);
void tlscert_info_free(struct tlscert_info *ci); /* NULL-safe; leaves it empty */

/* A store from a PEM bundle (one or more CA certificates); NULL with a reason. */
struct x509_store_st *tlscert_store_load(const char *pem_file, char *why, size_t why_len);
void tlscert_store_free(struct x509_store_st *store);

#endif
