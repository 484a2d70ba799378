/*
 * main.c - qkdlinkd: the process. Arguments, the event loop, the signals, the
 * service manager's notifications; everything else is in daemon.c. The only
 * file with process-wide state (the signal events and the top-level struct,
 * both on main()'s stack).
 *
 *   qkdlinkd -c CONFIG [-f] [-d] [--check-config]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "kme.h"
#include "log.h"

struct top {
	struct event_base *base;
	struct logger log;
	struct qkdlinkd *d;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: qkdlinkd -c CONFIG [-f] [-d] [--check-config]\n"
	           "  -c CONFIG        the configuration file (qkdlinkd.conf(5))\n"
	           "  -f               log to stderr (default: where the config says)\n"
	           "  -d               log at debug level\n"
	           "  --check-config   validate CONFIG and its files, print a summary, exit\n");
}

/* sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. */
static void notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!path || !path[0] || strlen(path) >= sizeof sa.sun_path)
		return;
	memcpy(sa.sun_path, path, strlen(path));
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	close(fd);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct top *t = arg;
	if (!t->d)
		return;
	if (sig == SIGHUP) {
		notify("RELOADING=1");
		log_info(&t->log, "SIGHUP: reloading");
		qkdlinkd_reload(t->d);
		notify("READY=1");
		return;
	}
	log_info(&t->log, "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	notify("STOPPING=1");
	qkdlinkd_shutdown(t->d);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"check-config", no_argument, NULL, 'C'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct qkdlinkd_opts o = {0};
	bool check = false;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:fdh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o.config_path = optarg;
			break;
		case 'f':
			o.foreground = true;
			break;
		case 'd':
			o.debug = true;
			break;
		case 'C':
			check = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !o.config_path) {
		usage(stderr);
		return 2;
	}
	if (check)
		return config_check_main(o.config_path, 0, stdout, stderr);

	/* before any thread and any other use of libcurl or jansson */
	if (kme_global_init() != 0) {
		fprintf(stderr, "qkdlinkd: cannot initialise libcurl\n");
		return 1;
	}
	struct top t;
	memset(&t, 0, sizeof t);
	log_init(&t.log, "qkdlinkd", o.debug ? LOG_DEBUG : LOG_INFO, false, LOG_DAEMON);
	signal(SIGPIPE, SIG_IGN);

	t.base = event_base_new();
	if (!t.base) {
		log_msg(&t.log, LOG_ERR, "cannot create the event loop");
		kme_global_cleanup();
		return 1;
	}
	struct event *sigs[3] = {
	    evsignal_new(t.base, SIGTERM, on_signal, &t),
	    evsignal_new(t.base, SIGINT, on_signal, &t),
	    evsignal_new(t.base, SIGHUP, on_signal, &t),
	};
	int rc = 1;
	for (int i = 0; i < 3; i++)
		if (!sigs[i] || event_add(sigs[i], NULL) != 0) {
			log_msg(&t.log, LOG_ERR, "cannot watch signals");
			goto out;
		}
	char err[CONFIG_ERR_MAX];
	if (qkdlinkd_start(&t.d, t.base, &t.log, &o, err, sizeof err) != 0) {
		log_msg(&t.log, LOG_ERR, "%s", err);
		goto out;
	}
	notify("READY=1");
	if (event_base_dispatch(t.base) < 0)
		log_msg(&t.log, LOG_ERR, "event loop failed");
	else
		rc = 0;
	log_info(&t.log, "stopped");
out:
	qkdlinkd_free(t.d);
	for (int i = 0; i < 3; i++)
		if (sigs[i])
			event_free(sigs[i]);
	event_base_free(t.base);
	log_close(&t.log);
	kme_global_cleanup();
	return rc;
}
