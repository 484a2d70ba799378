/*
 * qkdlinkctl - talks to qkdlinkd over its control socket (agent/control.h).
 *
 *   qkdlinkctl [-s SOCKET] status [--json] | rotate CHANNEL | reload
 *
 * Exit status: 0 done, 1 the daemon refused or is unreachable, 2 usage.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "control.h"

#define DEFAULT_SOCKET "/run/qkdlink/qkdlinkd.sock"
#define TIMEOUT_MS 10000
#define REPLY_MAX (16u << 20)

static void usage(FILE *f)
{
	fprintf(f, "usage: qkdlinkctl [-s SOCKET] status [--json] | rotate CHANNEL | reload\n"
	           "  -s SOCKET   the daemon's control socket (default " DEFAULT_SOCKET ")\n");
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends the request line and reads the one-line answer into *out (malloc). */
static int exchange(const char *path, const char *req, char **out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "qkdlinkctl: %s: path too long\n", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		fprintf(stderr, "qkdlinkctl: %s: %s (is qkdlinkd running?)\n", path,
		        strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	size_t rl = strlen(req);
	if (send(fd, req, rl, MSG_NOSIGNAL) != (ssize_t)rl) {
		fprintf(stderr, "qkdlinkctl: %s: send: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		fprintf(stderr, "qkdlinkctl: out of memory\n");
		return -1;
	}
	int64_t deadline = mono_ms() + TIMEOUT_MS;
	for (;;) {
		int64_t left = deadline - mono_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			if (left > 0 && errno == EINTR)
				continue;
			fprintf(stderr, "qkdlinkctl: %s: no answer within %d s\n", path,
			        TIMEOUT_MS / 1000);
			goto fail;
		}
		if (len + 1 >= cap) {
			if (cap >= REPLY_MAX) {
				fprintf(stderr, "qkdlinkctl: answer too long\n");
				goto fail;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				fprintf(stderr, "qkdlinkctl: out of memory\n");
				goto fail;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "qkdlinkctl: %s: %s\n", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (memchr(buf, '\n', len))
			break;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	return 0;
fail:
	close(fd);
	free(buf);
	return -1;
}

int main(int argc, char **argv)
{
	const char *sock = DEFAULT_SOCKET;
	int i = 1;
	if (i < argc && (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (i + 1 < argc && strcmp(argv[i], "-s") == 0) {
		sock = argv[i + 1];
		i += 2;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[i++];
	bool json = false;
	char req[CONTROL_LINE_MAX + 2];
	if (strcmp(cmd, "status") == 0) {
		if (i < argc && strcmp(argv[i], "--json") == 0) {
			json = true;
			i++;
		}
		snprintf(req, sizeof req, "status\n");
	} else if (strcmp(cmd, "rotate") == 0 && i < argc) {
		snprintf(req, sizeof req, "rotate %.200s\n", argv[i++]);
	} else if (strcmp(cmd, "reload") == 0) {
		snprintf(req, sizeof req, "reload\n");
	} else {
		usage(stderr);
		return 2;
	}
	if (i != argc) {
		usage(stderr);
		return 2;
	}
	/* refuse locally what the daemon would refuse */
	struct control_request rq;
	char err[256];
	if (control_parse(req, strlen(req), &rq, err, sizeof err) != 0) {
		fprintf(stderr, "qkdlinkctl: %s\n", err);
		return 2;
	}
	char *text = NULL;
	if (exchange(sock, req, &text) != 0)
		return 1;
	json_error_t je;
	json_t *reply = json_loads(text, JSON_DISABLE_EOF_CHECK, &je);
	if (!reply) {
		fprintf(stderr, "qkdlinkctl: unreadable answer: %s\n", je.text);
		free(text);
		return 1;
	}
	int rc = 0;
	const json_t *ok = json_object_get(reply, "ok");
	if (json_is_false(ok)) {
		const char *e = json_string_value(json_object_get(reply, "error"));
		fprintf(stderr, "qkdlinkctl: %s\n", e ? e : "refused");
		rc = 1;
	} else if (rq.cmd == CONTROL_STATUS) {
		if (json)
			printf("%s", text);
		else if (control_status_print(reply, stdout) != 0) {
			fprintf(stderr, "qkdlinkctl: the answer is not a status\n");
			rc = 1;
		}
	} else {
		printf("ok\n");
	}
	json_decref(reply);
	free(text);
	return rc;
}
