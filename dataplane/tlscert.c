/*
 * tlscert: X.509 through OpenSSL. The contract is in tlscert.h.
 */
#include "tlscert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static int
add_name(struct tlscert_info *ci, const char *prefix, const unsigned char *s, size_t len)
{
	if (ci->nnames == TLSCERT_MAX_NAMES) {
		ci->names_over++;
		return 0;
	}
	if (len > TLSCERT_MAX_NAME)
		len = TLSCERT_MAX_NAME;
	size_t pl = strlen(prefix);
	char *n = malloc(pl + len + 1);
	if (!n)
		return -1;
	memcpy(n, prefix, pl);
	for (size_t i = 0; i < len; i++)
		n[pl + i] = s[i] > 0x20 && s[i] < 0x7f ? (char)s[i] : '?'; /* printed in JSON */
	n[pl + len] = '\0';
	if (!ci->names) {
		ci->names = calloc(TLSCERT_MAX_NAMES, sizeof(*ci->names));
		if (!ci->names) {
			free(n);
			return -1;
		}
	}
	ci->names[ci->nnames++] = n;
	return 0;
}

static int64_t
asn1_epoch(const ASN1_TIME *t)
{
	struct tm tm;
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	/* timegm is a GNU/BSD extension (enabled by _GNU_SOURCE) */
	return (int64_t)timegm(&tm);
}

static int
leaf_facts(X509 *x, struct tlscert_info *ci)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int rc = 0;
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_DNS)
			continue;
		rc = add_name(ci, "", ASN1_STRING_get0_data(g->d.dNSName),
			      (size_t)ASN1_STRING_length(g->d.dNSName));
	}
	GENERAL_NAMES_free(gens);
	if (rc != 0)
		return -1;
	const X509_NAME *subj = X509_get_subject_name(x);
	int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	if (idx >= 0) {
		const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
		size_t before = ci->nnames;
		if (add_name(ci, "CN=", ASN1_STRING_get0_data(cn), (size_t)ASN1_STRING_length(cn)) != 0)
			return -1;
		if (ci->nnames > before)
			ci->cn_index = (long)before;
	}
	ci->not_before = asn1_epoch(X509_get0_notBefore(x));
	ci->not_after = asn1_epoch(X509_get0_notAfter(x));
	BIO *b = BIO_new(BIO_s_mem());
	if (b) {
		X509_NAME_print_ex(b, X509_get_issuer_name(x), 0, XN_FLAG_RFC2253);
		int n = BIO_read(b, ci->issuer, (int)sizeof(ci->issuer) - 1);
		ci->issuer[n > 0 ? n : 0] = '\0';
		BIO_free(b);
	}
	return 0;
}

int
tlscert_assess(const uint8_t *chain, const struct tlsobs_span *spans, unsigned n,
	       struct x509_store_st *store, int64_t at, struct tlscert_info *out)
{
	memset(out, 0, sizeof(*out));
	out->cn_index = -1;
	out->verify_reason = "no certificate";
	if (!chain || n == 0)
		return -1;
	X509 *leaf = NULL;
	STACK_OF(X509) *rest = NULL;
	X509_STORE_CTX *ctx = NULL;
	int rc = -1;
	const unsigned char *p = chain + spans[0].off;
	leaf = d2i_X509(NULL, &p, (long)spans[0].len);
	if (!leaf || p != chain + spans[0].off + spans[0].len) {
		out->verify_reason = "leaf certificate does not decode";
		goto fail;
	}
	out->parsed = true;
	if (leaf_facts(leaf, out) != 0)
		goto fail;
	if (!store) {
		out->verify_reason = "no CA store";
		rc = 0;
		goto fail;
	}
	rest = sk_X509_new_null();
	if (!rest)
		goto fail;
	for (unsigned i = 1; i < n; i++) {
		const unsigned char *q = chain + spans[i].off;
		X509 *c = d2i_X509(NULL, &q, (long)spans[i].len);
		if (c && !sk_X509_push(rest, c))
			X509_free(c);
	}
	ctx = X509_STORE_CTX_new();
	if (!ctx || X509_STORE_CTX_init(ctx, store, leaf, rest) != 1)
		goto fail;
	X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
	int ok = X509_verify_cert(ctx);
	out->verify_error = X509_STORE_CTX_get_error(ctx);
	out->chain_trusted = ok == 1;
	out->verify_reason = ok == 1 ? "ok" : X509_verify_cert_error_string(out->verify_error);
	rc = 0;
fail:
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(rest, X509_free);
	X509_free(leaf);
	ERR_clear_error();
	return rc; /* on failure the names decoded so far stay: they are the leaf's */
}

void
tlscert_info_free(struct tlscert_info *ci)
{
	if (!ci)
		return;
	for (size_t i = 0; i < ci->nnames; i++)
		free(ci->names[i]);
	free(ci->names);
	ci->names = NULL;
	ci->nnames = 0;
}

struct x509_store_st *
tlscert_store_load(const char *pem_file, char *why, size_t why_len)
{
	X509_STORE *st = X509_STORE_new();
	if (!st) {
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	if (X509_STORE_load_file(st, pem_file) != 1) {
		snprintf(why, why_len, "%s: no CA certificate could be loaded", pem_file);
		X509_STORE_free(st);
		ERR_clear_error();
		return NULL;
	}
	return st;
}

void
tlscert_store_free(struct x509_store_st *store)
{
	X509_STORE_free(store);
}
