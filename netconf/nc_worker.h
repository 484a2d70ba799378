/*
 * nc_worker.h - runs a NETCONF session on its own thread so that the agent's
 * event loop never blocks on a router.
 *
 * The agent submits jobs (a function run with the session) and keeps polling
 * its sockets; the worker runs them one at a time, in order, and signals each
 * completion on an eventfd the agent adds to its poll set. The worker connects
 * when a job needs the session and reconnects after a failure; between jobs it
 * sends SSH keepalives and drops a dead session. Why a thread and not libssh2
 * non-blocking on the event loop: docs/netconf.md.
 */
#ifndef NC_WORKER_H
#define NC_WORKER_H

#include <stdint.h>

#include "nc_session.h"

/* A job: runs on the worker thread. *S is the connected session (the job may
 * close it and set NULL; the worker reconnects for the next job). With no
 * config given to the worker, *S is NULL. */
typedef enum nc_err (*nc_job_fn)(struct nc_session **s, void *arg, struct nc_error *e);

struct nc_result {
	uint64_t id; /* as returned by nc_worker_submit() */
	void *arg;   /* the job's argument, back to its owner */
	enum nc_err rc;
	struct nc_error err;
};

struct nc_worker;

/* Starts the thread. CFG is copied (strings too); NULL runs jobs without a
 * session (tests). QUEUE_MAX bounds the jobs waiting (0: 16). */
enum nc_err nc_worker_start(const struct nc_config *cfg, unsigned queue_max, struct nc_worker **out,
                            struct nc_error *e);

/* Readable when results are waiting: add it to the event loop's poll set. */
int nc_worker_fd(const struct nc_worker *w);

/* Queues FN(ARG). NC_E_BUSY when the queue is full or the worker stopping. */
enum nc_err nc_worker_submit(struct nc_worker *w, nc_job_fn fn, void *arg, uint64_t *id,
                             struct nc_error *e);

/* Takes one finished job's result; returns 0 if there was one, -1 if none. */
int nc_worker_result(struct nc_worker *w, struct nc_result *out);

/* Waits for the running job, drops the queued ones (their ARGs are not
 * reported), closes the session, joins the thread and frees. */
void nc_worker_stop(struct nc_worker *w);

#endif
