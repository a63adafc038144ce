/* cpwork: worker threads for blocking control-plane work (see cpwork.h). */
#include "cpwork.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct worker {
	struct cpw *pool;
	pthread_t tid;
	struct cpsts *ctx;
	bool started;
};

struct cpw {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct cpw_job *q, **q_tail;       /* waiting */
	struct cpw_job *done, **done_tail; /* finished */
	unsigned queued;                   /* waiting + running */
	bool stopping;
	int efd;
	unsigned n;
	struct worker w[CPW_MAX_WORKERS];
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct cpw *p = w->pool;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->q && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stopping)
			break;
		struct cpw_job *j = p->q;
		p->q = j->next;
		if (!p->q)
			p->q_tail = &p->q;
		pthread_mutex_unlock(&p->mu);
		j->run(w->ctx, j);
		pthread_mutex_lock(&p->mu);
		j->next = NULL;
		*p->done_tail = j;
		p->done_tail = &j->next;
		uint64_t one = 1;
		/* a full counter cannot happen (it is read every loop pass) */
		if (write(p->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			break;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct cpw *
cpw_new(unsigned nworkers, const struct cpsts_config *cfg, char *why, size_t whylen)
{
	if (nworkers == 0 || nworkers > CPW_MAX_WORKERS) {
		snprintf(why, whylen, "workers: %u is not in 1..%d", nworkers, CPW_MAX_WORKERS);
		return NULL;
	}
	struct cpw *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->q_tail = &p->q;
	p->done_tail = &p->done;
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0) {
		snprintf(why, whylen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	for (unsigned i = 0; i < nworkers; i++) {
		struct worker *w = &p->w[i];
		w->pool = p;
		w->ctx = cpsts_new(cfg, why, whylen);
		p->n++;
		if (!w->ctx)
			goto fail;
		if (pthread_create(&w->tid, NULL, worker_main, w) != 0) {
			snprintf(why, whylen, "pthread_create failed");
			goto fail;
		}
		w->started = true;
	}
	return p;
fail:
	cpw_free(p);
	return NULL;
}

void
cpw_free(struct cpw *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->n; i++) {
		if (p->w[i].started)
			pthread_join(p->w[i].tid, NULL);
		cpsts_free(p->w[i].ctx);
	}
	cpw_collect(p);
	while (p->q) {
		struct cpw_job *j = p->q;
		p->q = j->next;
		j->cancelled = true;
		j->done(j);
	}
	if (p->efd >= 0)
		close(p->efd);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

int
cpw_submit(struct cpw *p, struct cpw_job *job)
{
	pthread_mutex_lock(&p->mu);
	if (p->queued >= CPW_MAX_QUEUE || p->stopping) {
		pthread_mutex_unlock(&p->mu);
		return -1;
	}
	job->next = NULL;
	job->cancelled = false;
	*p->q_tail = job;
	p->q_tail = &job->next;
	p->queued++;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

int
cpw_fd(const struct cpw *p)
{
	return p->efd;
}

unsigned
cpw_collect(struct cpw *p)
{
	uint64_t v;
	if (read(p->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return 0;
	pthread_mutex_lock(&p->mu);
	struct cpw_job *j = p->done;
	p->done = NULL;
	p->done_tail = &p->done;
	pthread_mutex_unlock(&p->mu);
	unsigned n = 0;
	while (j) {
		struct cpw_job *next = j->next;
		pthread_mutex_lock(&p->mu);
		p->queued--;
		pthread_mutex_unlock(&p->mu);
		j->done(j);
		n++;
		j = next;
	}
	return n;
}

unsigned
cpw_queued(const struct cpw *p)
{
	return p->queued; /* read by the loop thread, which alone lowers it */
}
