/*
 * daemon.h - qkdlinkd's core: one libevent loop that owns the L2 port, the
 * KME client, the NETCONF worker, the control socket and one rotation machine
 * per channel, and carries out the machines' actions (docs/man/qkdlinkd.1).
 *
 * Signals and the process stay with agent/main.c, which calls in here.
 */
#ifndef QKD_AGENT_DAEMON_H
#define QKD_AGENT_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

struct event_base;
struct qkdlinkd;

struct qkdlinkd_opts {
	const char *config_path;
	bool foreground; /* log to stderr whatever the config says */
	bool debug;      /* log at debug level whatever the config says */
};

/*
 * Loads the config, opens the port and the control socket, drops privileges,
 * raises the sender epoch, starts the KME client, the router worker and every
 * channel on base. Returns 0 with *out set, or -1 with err.
 */
int qkdlinkd_start(struct qkdlinkd **out, struct event_base *base, struct logger *lg,
                   const struct qkdlinkd_opts *o, char *err, size_t errlen);

/* SIGHUP: reloads the config; a bad one is logged and the old one kept. */
void qkdlinkd_reload(struct qkdlinkd *d);

/* SIGTERM: makes the channels safe, then ends the loop (see the man page). */
void qkdlinkd_shutdown(struct qkdlinkd *d);

/* Frees everything, removes the control socket. NULL-safe. */
void qkdlinkd_free(struct qkdlinkd *d);

#endif
