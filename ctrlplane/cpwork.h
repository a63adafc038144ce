/*
 * cpwork: worker threads for the control plane's blocking work (MTA-STS
 * policy discovery and HTTPS fetch, TLS-RPT delivery), so the daemon's
 * event loop never waits on the network longer than it does today.
 *
 * Data model: the loop thread submits jobs (caller-allocated, embedding a
 * struct cpw_job); a worker runs job->run with its own struct cpsts (its
 * resolver, curl handle and cache connection: nothing is shared between
 * workers but the SQLite file); finished jobs come back on a list, and the
 * descriptor cpw_fd becomes readable; the loop calls cpw_collect, which
 * runs each job's done callback in the loop thread.
 * Limits: CPW_MAX_WORKERS threads; at most CPW_MAX_QUEUE jobs waiting (past
 * it cpw_submit refuses, the caller answers without the network).
 * Ownership: a job belongs to the pool from submit until its done callback.
 * cpw_free waits for the running jobs, then calls done on every job (queued
 * ones with cancelled set), in the calling thread.
 */
#ifndef WS_CTRLPLANE_CPWORK_H
#define WS_CTRLPLANE_CPWORK_H

#include <stdbool.h>

#include "cpsts.h"

#define CPW_MAX_WORKERS 16
#define CPW_MAX_QUEUE 4096

struct cpw_job {
	struct cpw_job *next;
	void (*run)(struct cpsts *ctx, struct cpw_job *job); /* in a worker thread */
	void (*done)(struct cpw_job *job);                   /* in the loop thread */
	bool cancelled; /* never ran (the pool was freed first) */
};

struct cpw;
/* nworkers in 1..CPW_MAX_WORKERS, each with a struct cpsts from cfg. */
struct cpw *cpw_new(unsigned nworkers, const struct cpsts_config *cfg, char *why, size_t whylen);
void cpw_free(struct cpw *p); /* NULL-safe */
/* 0, or -1 when the queue is full. */
int cpw_submit(struct cpw *p, struct cpw_job *job);
int cpw_fd(const struct cpw *p);
/* Runs the done callbacks of finished jobs; the number run. */
unsigned cpw_collect(struct cpw *p);
unsigned cpw_queued(const struct cpw *p); /* waiting or running */

#endif
