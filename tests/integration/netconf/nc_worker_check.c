/*
 * nc_worker_check.c - the agent's way of using the NETCONF client, against a
 * live server: a session on the worker thread, jobs submitted from an event
 * loop that keeps polling (1 ms ticks) while the router works, completions
 * taken from the eventfd. Prints TAP. Run by scenarios.py.
 *
 * usage: nc-worker-check HOST PORT USER KNOWN_HOSTS KEY_FILE CA CAK_HEX
 *        nc-worker-check drops N HOST PORT USER KNOWN_HOSTS KEY_FILE
 *
 * The second form runs N jobs against a server that never answers (the fake
 * server's "silent" mode): each times out and the worker drops the session.
 * Built with ASan, LeakSanitizer then fails the run if a dropped session was
 * not freed (libssh2 non-blocking frees nothing while a channel waits for
 * the server's CLOSE).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nc_push.h"
#include "nc_worker.h"

static int n;

static void tap(int ok, const char *what, const struct nc_error *e)
{
	char buf[1024];
	printf("%s %d - %s\n", ok ? "ok" : "not ok", ++n, what);
	if (!ok && e)
		printf("#   %s\n", nc_error_format(e, buf, sizeof buf));
}

struct push_job {
	struct nc_macsec_ca ca;
	struct nc_push_opts po;
	char session_id[24]; /* of the session the job ran on */
};

static enum nc_err do_push(struct nc_session **s, void *arg, struct nc_error *e)
{
	struct push_job *j = arg;
	snprintf(j->session_id, sizeof j->session_id, "%s", nc_session_hello(*s)->session_id);
	return nc_push_ca(*s, &j->ca, &j->po, e);
}

/* the event loop: polls the worker's fd with 1 ms ticks, counting the ticks in
 * which it was free to do other work, until one result arrives */
static int wait_result(struct nc_worker *w, struct nc_result *r, long *ticks)
{
	*ticks = 0;
	for (int i = 0; i < 60000; i++) {
		struct pollfd p = {nc_worker_fd(w), POLLIN, 0};
		int k = poll(&p, 1, 1);
		if (k == 0) {
			(*ticks)++;
			continue;
		}
		if (nc_worker_result(w, r) == 0)
			return 0;
	}
	return -1;
}

/* HOST PORT USER KNOWN_HOSTS KEY_FILE from ARGV */
static void config_from_args(struct nc_config *c, char **argv)
{
	nc_config_defaults(c);
	c->host = argv[0];
	c->port = (unsigned)atoi(argv[1]);
	c->user = argv[2];
	c->known_hosts = argv[3];
	c->key_file = argv[4];
}

static int run_drops(int argc, char **argv)
{
	if (argc != 8) {
		fprintf(stderr, "usage: nc-worker-check drops N HOST PORT USER KNOWN_HOSTS KEY\n");
		return 2;
	}
	int drops = atoi(argv[2]);
	struct nc_config c;
	config_from_args(&c, argv + 3);
	c.rpc_timeout_ms = 300;
	struct nc_worker *w;
	struct nc_error e;
	if (drops < 1 || nc_worker_start(&c, 4, &w, &e) != NC_OK) {
		tap(0, "worker start", drops < 1 ? NULL : &e);
		return 1;
	}
	struct push_job j = {{"CA-D", "gcm-aes-xpn-256",
	                      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	                      "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
	                      NULL, false, NULL, 0},
	                     {NC_CFG_NS_NONE, false, 0, NULL},
	                     ""};
	int timeouts = 0;
	for (int i = 0; i < drops; i++) {
		uint64_t id;
		struct nc_result r;
		long ticks;
		if (nc_worker_submit(w, do_push, &j, &id, &e) == NC_OK &&
		    wait_result(w, &r, &ticks) == 0 && r.rc == NC_E_TIMEOUT)
			timeouts++;
	}
	nc_worker_stop(w);
	char what[160];
	snprintf(what, sizeof what,
	         "worker: %d of %d jobs on a server that never answers timed out, each session "
	         "dropped",
	         timeouts, drops);
	tap(timeouts == drops, what, NULL);
	return timeouts == drops ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "drops") == 0)
		return run_drops(argc, argv);
	if (argc != 8) {
		fprintf(stderr, "usage: nc-worker-check HOST PORT USER KNOWN_HOSTS KEY CA CAK\n");
		return 2;
	}
	struct nc_config c;
	config_from_args(&c, argv + 1);
	c.keepalive_s = 1; /* so the idle wait below spans keepalives */
	struct nc_worker *w;
	struct nc_error e;
	if (nc_worker_start(&c, 4, &w, &e) != NC_OK) {
		tap(0, "worker start", &e);
		return 1;
	}
	struct push_job j = {{argv[6], "gcm-aes-xpn-256",
	                      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	                      argv[7], NULL, false, NULL, 0},
	                     {NC_CFG_NS_NONE, false, 0, NULL},
	                     ""};
	uint64_t id;
	struct nc_result r;
	long ticks = 0;
	int ok =
	    nc_worker_submit(w, do_push, &j, &id, &e) == NC_OK && wait_result(w, &r, &ticks) == 0;
	char what[160];
	snprintf(what, sizeof what,
	         "worker: connect + push done on the session thread, result via eventfd; the "
	         "event loop stayed free (%ld 1-ms ticks meanwhile)",
	         ticks);
	tap(ok && r.id == id && r.arg == &j && r.rc == NC_OK && ticks > 0, what, ok ? &r.err : &e);
	/* the same session again (no reconnect): a second change */
	char first[24];
	snprintf(first, sizeof first, "%s", j.session_id);
	ok = nc_worker_submit(w, do_push, &j, &id, &e) == NC_OK && wait_result(w, &r, &ticks) == 0;
	tap(ok && r.rc == NC_OK && strcmp(first, j.session_id) == 0,
	    "worker: a second job runs on the same session (same session-id)", ok ? &r.err : &e);
	/* idle for 2.5 keepalive intervals: the worker sends SSH keepalives meanwhile */
	struct pollfd idle = {nc_worker_fd(w), POLLIN, 0};
	int spurious = poll(&idle, 1, 2500);
	ok = spurious == 0 && nc_worker_submit(w, do_push, &j, &id, &e) == NC_OK &&
	     wait_result(w, &r, &ticks) == 0;
	tap(ok && r.rc == NC_OK && strcmp(first, j.session_id) == 0,
	    "worker: after 2.5 s idle with 1 s keepalives, no spurious completion and the same "
	    "session still works",
	    ok ? &r.err : &e);
	/* a refused value comes back as a result, the worker goes on */
	j.ca.ckn = "abc";
	ok = nc_worker_submit(w, do_push, &j, &id, &e) == NC_OK && wait_result(w, &r, &ticks) == 0;
	tap(ok && r.rc == NC_E_INVALID, "worker: a failed job reports its error", ok ? &r.err : &e);
	nc_worker_stop(w);

	/* a worker whose router cannot be trusted: the connect error is the job's result */
	c.known_hosts = "/nonexistent/known_hosts";
	if (nc_worker_start(&c, 4, &w, &e) != NC_OK) {
		tap(0, "worker start", &e);
		return 1;
	}
	j.ca.ckn = "abcd";
	ok = nc_worker_submit(w, do_push, &j, &id, &e) == NC_OK && wait_result(w, &r, &ticks) == 0;
	tap(ok && r.rc == NC_E_HOSTKEY_UNKNOWN,
	    "worker: an unknown host key fails the job (no session, nothing sent)",
	    ok ? &r.err : &e);
	nc_worker_stop(w);
	return 0;
}
