/*
 * log.h - how qkdlinkd reports, in the manner of OpenBSD's log.c: one call
 * per line, a level, stderr (foreground, or systemd's journal) or syslog(3).
 *
 * The logger is a small struct owned by the daemon's top level and passed to
 * whoever logs (no global state). Lines never hold key material: callers log
 * key_IDs, never keys, CAKs, secrets or passwords.
 */
#ifndef QKD_AGENT_LOG_H
#define QKD_AGENT_LOG_H

#include <stdbool.h>
#include <syslog.h>

struct logger {
	int level;    /* LOG_ERR..LOG_DEBUG: lines above it are dropped */
	bool syslog;  /* false: stderr */
	int facility; /* LOG_DAEMON... */
	bool opened;  /* openlog() called */
	char ident[32];
};

/* Sets up lg; opens syslog when use_syslog. */
void log_init(struct logger *lg, const char *ident, int level, bool use_syslog, int facility);
/* Switches level or destination (SIGHUP). */
void log_reconfigure(struct logger *lg, int level, bool use_syslog, int facility);
void log_close(struct logger *lg);

void log_msg(const struct logger *lg, int pri, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* log_msg() with ": strerror(errno)" appended, at LOG_WARNING. */
void log_warn(const struct logger *lg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_warnx(const struct logger *lg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_info(const struct logger *lg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_debug(const struct logger *lg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The level for a name ("error", "warning", "notice", "info", "debug"), -1 if unknown. */
int log_level_parse(const char *name);

#endif
