/*
 * log.c - stderr or syslog logging with levels (see log.h).
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void log_init(struct logger *lg, const char *ident, int level, bool use_syslog, int facility)
{
	memset(lg, 0, sizeof *lg);
	snprintf(lg->ident, sizeof lg->ident, "%s", ident);
	log_reconfigure(lg, level, use_syslog, facility);
}

void log_reconfigure(struct logger *lg, int level, bool use_syslog, int facility)
{
	lg->level = level;
	if (lg->opened && (!use_syslog || facility != lg->facility)) {
		closelog();
		lg->opened = false;
	}
	lg->syslog = use_syslog;
	lg->facility = facility;
	if (use_syslog && !lg->opened) {
		openlog(lg->ident, LOG_PID | LOG_NDELAY, facility);
		lg->opened = true;
	}
}

void log_close(struct logger *lg)
{
	if (lg->opened)
		closelog();
	lg->opened = false;
}

static const char *level_name(int pri)
{
	switch (pri) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_NOTICE:
		return "notice";
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

static void vlog(const struct logger *lg, int pri, const char *fmt, va_list ap, const char *suffix)
{
	if (pri > lg->level)
		return;
	char line[1024];
	int n = vsnprintf(line, sizeof line, fmt, ap);
	if (n < 0)
		return;
	/* one line per call: a newline from outside data would forge a line */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (lg->syslog) {
		if (suffix)
			syslog(pri, "%s: %s", line, suffix);
		else
			syslog(pri, "%s", line);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char when[64] = "";
	if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && gmtime_r(&ts.tv_sec, &tm))
		snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		         tm.tm_sec, ts.tv_nsec / 1000000);
	fprintf(stderr, "%s %s[%s]: %s%s%s\n", when, lg->ident, level_name(pri), line,
	        suffix ? ": " : "", suffix ? suffix : "");
	fflush(stderr);
}

void log_msg(const struct logger *lg, int pri, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(lg, pri, fmt, ap, NULL);
	va_end(ap);
}

void log_warn(const struct logger *lg, const char *fmt, ...)
{
	char eb[128];
	int saved = errno;
	snprintf(eb, sizeof eb, "%s", strerror(saved));
	va_list ap;
	va_start(ap, fmt);
	vlog(lg, LOG_WARNING, fmt, ap, eb);
	va_end(ap);
	errno = saved;
}

void log_warnx(const struct logger *lg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(lg, LOG_WARNING, fmt, ap, NULL);
	va_end(ap);
}

void log_info(const struct logger *lg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(lg, LOG_INFO, fmt, ap, NULL);
	va_end(ap);
}

void log_debug(const struct logger *lg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(lg, LOG_DEBUG, fmt, ap, NULL);
	va_end(ap);
}

int log_level_parse(const char *name)
{
	static const struct {
		const char *n;
		int v;
	} t[] = {{"error", LOG_ERR},
	         {"warning", LOG_WARNING},
	         {"notice", LOG_NOTICE},
	         {"info", LOG_INFO},
	         {"debug", LOG_DEBUG}};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (strcmp(name, t[i].n) == 0)
			return t[i].v;
	return -1;
}
