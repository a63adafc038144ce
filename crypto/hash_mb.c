/*
 * ws_hash batch: intel-ipsec-mb multi-buffer job API, with OpenSSL as the
 * reference backend and the fallback for jobs ipsec-mb refuses (longer than
 * WS_HASH_MB_MAX_LEN).
 *
 * The multi-buffer managers only pay when many lanes are busy (the AVX-512
 * SHA-256 manager has 16 lanes): every job of a call is submitted before
 * anything is flushed, and the manager's ring keeps up to IMB_MAX_JOBS in
 * flight, completing the oldest itself when it fills.
 */
#include <stdlib.h>

#include <openssl/evp.h>

/* The compatibility names of ipsec-mb 0.53 (e.g. AES_128) clash with
 * OpenSSL's headers. */
#define NO_COMPAT_IMB_API_053
#include <intel-ipsec-mb.h>

#include "cpu.h"
#include "hash.h"
#include "hash_evp.h"

struct ws_hash_batch {
	enum ws_hash_backend backend; /* resolved: never AUTO */
	IMB_MGR *mgr;                 /* NULL for the OpenSSL backend */
	EVP_MD_CTX *ctx;              /* OpenSSL jobs and long jobs */
	const char *name;
};

static bool
cpu_can(const struct hw_cpu *cpu, enum ws_hash_backend be)
{
	switch (be) {
	case WS_HASH_BACKEND_OPENSSL:
		return true;
	case WS_HASH_BACKEND_MB_SSE:
		/* ipsec-mb's SSE manager is built for SSE4.2 + AES-NI + PCLMUL
		 * parts; without them init falls to the no-AESNI manager. */
		return cpu->has[HW_CPU_SSE42] && cpu->has[HW_CPU_AESNI] && cpu->has[HW_CPU_PCLMUL];
	case WS_HASH_BACKEND_MB_AVX2:
		return cpu->has[HW_CPU_AVX2] && cpu->has[HW_CPU_BMI2] && cpu->has[HW_CPU_AESNI] &&
		       cpu->has[HW_CPU_PCLMUL];
	case WS_HASH_BACKEND_MB_AVX512:
		return cpu->has[HW_CPU_AVX512F] && cpu->has[HW_CPU_AVX512VL] &&
		       cpu->has[HW_CPU_AVX512BW] && cpu->has[HW_CPU_AVX512DQ] &&
		       cpu->has[HW_CPU_AVX2] && cpu->has[HW_CPU_AESNI];
	case WS_HASH_BACKEND_AUTO:
		break;
	}
	return false;
}

struct ws_hash_batch *
ws_hash_batch_new(enum ws_hash_backend backend, const struct hw_cpu *cpu)
{
	struct hw_cpu local;
	struct ws_hash_batch *b = NULL;

	if (!cpu) {
		hw_cpu_detect(&local);
		cpu = &local;
	}
	if (backend == WS_HASH_BACKEND_AUTO) {
		if (cpu_can(cpu, WS_HASH_BACKEND_MB_AVX512))
			backend = WS_HASH_BACKEND_MB_AVX512;
		else if (cpu_can(cpu, WS_HASH_BACKEND_MB_AVX2))
			backend = WS_HASH_BACKEND_MB_AVX2;
		else if (cpu_can(cpu, WS_HASH_BACKEND_MB_SSE))
			backend = WS_HASH_BACKEND_MB_SSE;
		else
			backend = WS_HASH_BACKEND_OPENSSL;
	}
	if (!cpu_can(cpu, backend))
		return NULL;
	/* Fetch the digests now, so a provider without them fails here and not
	 * on the first batch. */
	if (!ws_hash_evp_md(WS_HASH_SHA1) || !ws_hash_evp_md(WS_HASH_SHA256))
		return NULL;

	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->backend = backend;
	b->ctx = EVP_MD_CTX_new();
	if (!b->ctx)
		goto fail;
	if (backend == WS_HASH_BACKEND_OPENSSL) {
		b->name = "openssl";
		return b;
	}
	b->mgr = alloc_mb_mgr(0);
	if (!b->mgr)
		goto fail;
	switch (backend) {
	case WS_HASH_BACKEND_MB_SSE:
		init_mb_mgr_sse(b->mgr);
		b->name = "ipsec-mb/sse";
		break;
	case WS_HASH_BACKEND_MB_AVX2:
		init_mb_mgr_avx2(b->mgr);
		b->name = "ipsec-mb/avx2";
		break;
	case WS_HASH_BACKEND_MB_AVX512:
		init_mb_mgr_avx512(b->mgr);
		b->name = "ipsec-mb/avx512";
		break;
	default:
		goto fail;
	}
	/* The library runs its own CPU check and records a refusal here. */
	if (imb_get_errno(b->mgr) != 0)
		goto fail;
	return b;
fail:
	ws_hash_batch_free(b);
	return NULL;
}

void
ws_hash_batch_free(struct ws_hash_batch *b)
{
	if (!b)
		return;
	if (b->mgr)
		free_mb_mgr(b->mgr);
	EVP_MD_CTX_free(b->ctx);
	free(b);
}

const char *
ws_hash_batch_name(const struct ws_hash_batch *b)
{
	return b->name;
}

static size_t
run_openssl(struct ws_hash_batch *b, struct ws_hash_job *j)
{
	size_t want = ws_hash_len(j->alg);
	size_t got = want ? ws_hash_evp_digest(b->ctx, j->alg, j->data, j->len, j->digest) : 0;
	j->status = (want != 0 && got == want) ? 0 : -1;
	return j->status != 0;
}

/* A job the manager hands back: its status decides ours. */
static size_t
mb_done(IMB_JOB *ij)
{
	struct ws_hash_job *j = ij->user_data;
	j->status = ij->status == IMB_STATUS_COMPLETED ? 0 : -1;
	return j->status != 0;
}

size_t
ws_hash_batch_run(struct ws_hash_batch *b, struct ws_hash_job *jobs, size_t n)
{
	size_t failed = 0;

	if (!b->mgr) {
		for (size_t i = 0; i < n; i++)
			failed += run_openssl(b, &jobs[i]);
		return failed;
	}

	for (size_t i = 0; i < n; i++) {
		struct ws_hash_job *j = &jobs[i];
		IMB_HASH_ALG ha;
		uint64_t tag_len;
		if (j->alg == WS_HASH_SHA256) {
			ha = IMB_AUTH_SHA_256;
			tag_len = 32;
		} else if (j->alg == WS_HASH_SHA1) {
			ha = IMB_AUTH_SHA_1;
			tag_len = 20;
		} else {
			j->status = -1;
			failed++;
			continue;
		}
		if (j->len > WS_HASH_MB_MAX_LEN) {
			failed += run_openssl(b, j);
			continue;
		}
		/* The ring slot keeps the fields of its previous job: set every
		 * one the SHA path reads. */
		IMB_JOB *ij = IMB_GET_NEXT_JOB(b->mgr);
		ij->cipher_mode = IMB_CIPHER_NULL;
		ij->cipher_direction = IMB_DIR_ENCRYPT;
		ij->chain_order = IMB_ORDER_HASH_CIPHER;
		ij->hash_alg = ha;
		/* An empty job may come with data == NULL; ipsec-mb's job
		 * check refuses a NULL src even when it reads none of it. */
		ij->src = j->data ? j->data : j->digest;
		ij->dst = NULL;
		ij->cipher_start_src_offset_in_bytes = 0;
		ij->msg_len_to_cipher_in_bytes = 0;
		ij->hash_start_src_offset_in_bytes = 0;
		ij->msg_len_to_hash_in_bytes = j->len;
		ij->auth_tag_output = j->digest;
		ij->auth_tag_output_len_in_bytes = tag_len;
		ij->user_data = j;
		ij = IMB_SUBMIT_JOB(b->mgr);
		while (ij) {
			failed += mb_done(ij);
			ij = IMB_GET_COMPLETED_JOB(b->mgr);
		}
	}
	IMB_JOB *ij;
	while ((ij = IMB_FLUSH_JOB(b->mgr)) != NULL)
		failed += mb_done(ij);
	return failed;
}
