/*
 * epoch.c - a counter that survives restarts and crashes: written to a
 * temporary file, fsynced, renamed over the old one, folder fsynced.
 */
#include "epoch.h"
#include "errf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads the stored value: 0 if the file does not exist. */
static int epoch_read(const char *path, uint32_t *value, char *err, size_t errlen)
{
	*value = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return qkd_errf(err, errlen, "epoch file %s: %s", path, strerror(errno));
	}
	char buf[32];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return qkd_errf(err, errlen, "epoch file %s: %s", path, strerror(e));
	buf[n] = '\0';
	char *end;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (n == 0 || end == buf || (*end != '\0' && *end != '\n') || errno != 0 || buf[0] == '-' ||
	    v > UINT32_MAX)
		return qkd_errf(err, errlen,
		                "epoch file %s: does not hold a number 0..%" PRIu32
		                " (remove it only if every receiver's state is reset too)",
		                path, UINT32_MAX);
	*value = (uint32_t)v;
	return 0;
}

static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

int qkd_epoch_next(const char *path, uint32_t *epoch, char *err, size_t errlen)
{
	uint32_t old;
	if (epoch_read(path, &old, err, errlen) != 0)
		return -1;
	if (old == UINT32_MAX)
		return qkd_errf(err, errlen, "epoch file %s: epoch exhausted (%" PRIu32 ")", path,
		                old);
	uint32_t next = old + 1;

	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return qkd_errf(err, errlen, "epoch file %s: path too long", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return qkd_errf(err, errlen, "epoch file %s: %s", tmp, strerror(errno));
	char line[16];
	int len = snprintf(line, sizeof line, "%" PRIu32 "\n", next);
	if (write(fd, line, (size_t)len) != len || fsync(fd) != 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return qkd_errf(err, errlen, "epoch file %s: %s", tmp, strerror(e));
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return qkd_errf(err, errlen, "epoch file %s: %s", path, strerror(e));
	}
	if (fsync_dir_of(path) != 0)
		return qkd_errf(err, errlen, "epoch file %s: fsync of its folder: %s", path,
		                strerror(errno));
	*epoch = next;
	return 0;
}
