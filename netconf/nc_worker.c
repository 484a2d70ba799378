/*
 * nc_worker.c - a NETCONF session on its own thread, with a job queue and an
 * eventfd for completions.
 */
#include "nc_worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct job {
	struct nc_result r;
	nc_job_fn fn;
	struct job *next;
};

struct nc_worker {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int efd;
	bool stopping;
	unsigned queue_max, queued;
	uint64_t next_id;
	struct job *q_head, *q_tail;       /* waiting */
	struct job *done_head, *done_tail; /* finished, not collected */
	bool has_cfg;
	struct nc_config cfg; /* strings below are owned copies */
	char *host, *user, *known_hosts, *key_file, *password_file;
	struct nc_session *s; /* touched by the worker thread only */
};

static void push(struct job **h, struct job **t, struct job *j)
{
	j->next = NULL;
	if (*t)
		(*t)->next = j;
	else
		*h = j;
	*t = j;
}

static struct job *pop(struct job **h, struct job **t)
{
	struct job *j = *h;
	if (j) {
		*h = j->next;
		if (*h == NULL)
			*t = NULL;
	}
	return j;
}

static void run(struct nc_worker *w, struct job *j)
{
	nc_error_clear(&j->r.err);
	if (w->has_cfg && w->s && !nc_session_usable(w->s)) {
		nc_close(w->s);
		w->s = NULL;
	}
	if (w->has_cfg && w->s == NULL) {
		j->r.rc = nc_connect(&w->cfg, &w->s, &j->r.err);
		if (j->r.rc != NC_OK)
			return;
	}
	j->r.rc = j->fn(&w->s, j->r.arg, &j->r.err);
	if (w->s && !nc_session_usable(w->s)) {
		nc_close(w->s);
		w->s = NULL;
	}
}

static void *main_loop(void *arg)
{
	struct nc_worker *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stopping && w->q_head == NULL) {
			if (w->s && w->cfg.keepalive_s > 0) {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += w->cfg.keepalive_s;
				int r = pthread_cond_timedwait(&w->cv, &w->mu, &ts);
				if (r == ETIMEDOUT && w->q_head == NULL && !w->stopping) {
					pthread_mutex_unlock(&w->mu);
					int next;
					struct nc_error e;
					if (nc_session_keepalive(w->s, &next, &e) != NC_OK) {
						nc_close(w->s); /* reconnect at the next job */
						w->s = NULL;
					}
					pthread_mutex_lock(&w->mu);
				}
			} else {
				pthread_cond_wait(&w->cv, &w->mu);
			}
		}
		if (w->stopping)
			break;
		struct job *j = pop(&w->q_head, &w->q_tail);
		w->queued--;
		pthread_mutex_unlock(&w->mu);
		run(w, j);
		pthread_mutex_lock(&w->mu);
		push(&w->done_head, &w->done_tail, j);
		uint64_t one = 1;
		ssize_t n = write(w->efd, &one, sizeof one);
		(void)n; /* the counter cannot overflow in practice; readers drain the list */
	}
	pthread_mutex_unlock(&w->mu);
	if (w->s) {
		nc_close(w->s);
		w->s = NULL;
	}
	return NULL;
}

static void free_worker(struct nc_worker *w)
{
	struct job *j;
	while ((j = pop(&w->q_head, &w->q_tail)))
		free(j);
	while ((j = pop(&w->done_head, &w->done_tail)))
		free(j);
	if (w->efd >= 0)
		close(w->efd);
	free(w->host);
	free(w->user);
	free(w->known_hosts);
	free(w->key_file);
	free(w->password_file);
	free(w);
}

static bool dup_str(char **dst, const char *src)
{
	*dst = NULL;
	if (src == NULL)
		return true;
	*dst = strdup(src);
	return *dst != NULL;
}

enum nc_err nc_worker_start(const struct nc_config *cfg, unsigned queue_max, struct nc_worker **out,
                            struct nc_error *e)
{
	*out = NULL;
	nc_error_clear(e);
	struct nc_worker *w = calloc(1, sizeof *w);
	if (w == NULL)
		return nc_errf(e, NC_E_NOMEM, "worker: out of memory");
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		free_worker(w);
		return nc_errf(e, NC_E_NOMEM, "worker: eventfd: %s", strerror(errno));
	}
	w->queue_max = queue_max ? queue_max : 16;
	if (cfg) {
		w->has_cfg = true;
		w->cfg = *cfg;
		if (!dup_str(&w->host, cfg->host) || !dup_str(&w->user, cfg->user) ||
		    !dup_str(&w->known_hosts, cfg->known_hosts) ||
		    !dup_str(&w->key_file, cfg->key_file) ||
		    !dup_str(&w->password_file, cfg->password_file)) {
			free_worker(w);
			return nc_errf(e, NC_E_NOMEM, "worker: out of memory");
		}
		w->cfg.host = w->host;
		w->cfg.user = w->user;
		w->cfg.known_hosts = w->known_hosts;
		w->cfg.key_file = w->key_file;
		w->cfg.password_file = w->password_file;
	}
	if (pthread_mutex_init(&w->mu, NULL) != 0) {
		free_worker(w);
		return nc_errf(e, NC_E_NOMEM, "worker: mutex");
	}
	if (pthread_cond_init(&w->cv, NULL) != 0) {
		pthread_mutex_destroy(&w->mu);
		free_worker(w);
		return nc_errf(e, NC_E_NOMEM, "worker: condition variable");
	}
	int r = pthread_create(&w->thread, NULL, main_loop, w);
	if (r != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		free_worker(w);
		return nc_errf(e, NC_E_NOMEM, "worker: thread: %s", strerror(r));
	}
	*out = w;
	return NC_OK;
}

int nc_worker_fd(const struct nc_worker *w)
{
	return w->efd;
}

enum nc_err nc_worker_submit(struct nc_worker *w, nc_job_fn fn, void *arg, uint64_t *id,
                             struct nc_error *e)
{
	struct job *j = calloc(1, sizeof *j);
	if (j == NULL)
		return nc_errf(e, NC_E_NOMEM, "worker: out of memory");
	j->fn = fn;
	j->r.arg = arg;
	pthread_mutex_lock(&w->mu);
	if (w->stopping || w->queued >= w->queue_max) {
		bool stopping = w->stopping;
		pthread_mutex_unlock(&w->mu);
		free(j);
		return nc_errf(e, NC_E_BUSY,
		               stopping ? "worker stopping" : "worker queue full (%u)",
		               w->queue_max);
	}
	j->r.id = ++w->next_id;
	if (id)
		*id = j->r.id;
	push(&w->q_head, &w->q_tail, j);
	w->queued++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return NC_OK;
}

int nc_worker_result(struct nc_worker *w, struct nc_result *out)
{
	pthread_mutex_lock(&w->mu);
	struct job *j = pop(&w->done_head, &w->done_tail);
	if (w->done_head == NULL) {
		uint64_t v;
		ssize_t n = read(w->efd, &v, sizeof v); /* drain: EAGAIN when already 0 */
		(void)n;
	}
	pthread_mutex_unlock(&w->mu);
	if (j == NULL)
		return -1;
	*out = j->r;
	free(j);
	return 0;
}

void nc_worker_stop(struct nc_worker *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free_worker(w);
}
