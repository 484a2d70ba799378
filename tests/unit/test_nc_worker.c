/*
 * test_nc_worker.c - the session thread's queue: jobs run in order off the
 * caller's thread, completions arrive on the pollable eventfd, a full queue
 * says busy, and stopping with jobs queued leaks nothing (ASan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include "nc_worker.h"

struct arg {
	int n;
	pthread_t ran_on;
	int *order;
	int *pos;
	pthread_mutex_t *gate; /* held by the test to keep the worker busy */
};

static enum nc_err job(struct nc_session **s, void *p, struct nc_error *e)
{
	struct arg *a = p;
	assert_null(*s); /* no config given: no session */
	if (a->gate) {
		pthread_mutex_lock(a->gate);
		pthread_mutex_unlock(a->gate);
	}
	a->ran_on = pthread_self();
	a->order[(*a->pos)++] = a->n;
	if (a->n == 2)
		return nc_errf(e, NC_E_RPC, "job %d failed", a->n);
	return NC_OK;
}

static void wait_fd(int fd)
{
	struct pollfd p = {fd, POLLIN, 0};
	assert_int_equal(poll(&p, 1, 10000), 1);
}

static void test_jobs_in_order(void **state)
{
	(void)state;
	struct nc_worker *w;
	struct nc_error e;
	assert_int_equal(nc_worker_start(NULL, 4, &w, &e), NC_OK);
	int order[3] = {0}, pos = 0;
	struct arg a[3];
	uint64_t ids[3];
	for (int i = 0; i < 3; i++) {
		a[i] = (struct arg){i + 1, pthread_self(), order, &pos, NULL};
		assert_int_equal(nc_worker_submit(w, job, &a[i], &ids[i], &e), NC_OK);
	}
	int got = 0;
	while (got < 3) {
		wait_fd(nc_worker_fd(w));
		struct nc_result r;
		while (nc_worker_result(w, &r) == 0) {
			assert_int_equal(r.id, ids[got]);
			assert_ptr_equal(r.arg, &a[got]);
			if (got == 1) {
				assert_int_equal(r.rc, NC_E_RPC);
				assert_string_equal(r.err.msg, "job 2 failed");
			} else {
				assert_int_equal(r.rc, NC_OK);
			}
			got++;
		}
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(order[i], i + 1);
		assert_false(pthread_equal(a[i].ran_on, pthread_self()));
	}
	struct nc_result r;
	assert_int_equal(nc_worker_result(w, &r), -1);
	nc_worker_stop(w);
}

static void test_queue_full_and_stop(void **state)
{
	(void)state;
	struct nc_worker *w;
	struct nc_error e;
	assert_int_equal(nc_worker_start(NULL, 2, &w, &e), NC_OK);
	pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&gate);
	int order[8] = {0}, pos = 0;
	struct arg a[4];
	for (int i = 0; i < 4; i++)
		a[i] = (struct arg){10 + i, pthread_self(), order, &pos, &gate};
	/* the first job blocks the worker; two more fill the queue */
	assert_int_equal(nc_worker_submit(w, job, &a[0], NULL, &e), NC_OK);
	int queued = 0;
	for (int tries = 0; tries < 1000 && queued < 2; tries++) {
		if (nc_worker_submit(w, job, &a[1 + queued], NULL, &e) == NC_OK)
			queued++;
		else
			usleep(1000); /* the worker has not taken job 0 yet */
	}
	assert_int_equal(queued, 2);
	assert_int_equal(nc_worker_submit(w, job, &a[3], NULL, &e), NC_E_BUSY);
	assert_non_null(strstr(e.msg, "queue full"));
	pthread_mutex_unlock(&gate);
	nc_worker_stop(w); /* finishes the running job, drops the rest, no leak */
	pthread_mutex_destroy(&gate);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jobs_in_order),
	    cmocka_unit_test(test_queue_full_and_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
