/*
 * secret.c - reading frame secrets from files without leaking them.
 */
#include "secret.h"
#include "errf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

int qkd_secret_read(const char *path, uint8_t *buf, size_t cap, size_t *len, char *err,
                    size_t errlen)
{
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return qkd_errf(err, errlen, "secret file %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return qkd_errf(err, errlen, "secret file %s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return qkd_errf(err, errlen, "secret file %s: not a regular file", path);
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return qkd_errf(err, errlen,
		                "secret file %s: mode %04o lets others read or write it; "
		                "chmod 600 it",
		                path, (unsigned)(st.st_mode & 07777));
	}
	if (st.st_size < QKD_SECRET_MIN || st.st_size > QKD_SECRET_MAX ||
	    (size_t)st.st_size > cap) {
		close(fd);
		return qkd_errf(err, errlen, "secret file %s: %lld octets, need %d..%d", path,
		                (long long)st.st_size, QKD_SECRET_MIN, QKD_SECRET_MAX);
	}
	size_t want = (size_t)st.st_size, got = 0;
	while (got < want) {
		ssize_t n = read(fd, buf + got, want - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : 0;
			close(fd);
			OPENSSL_cleanse(buf, cap);
			return qkd_errf(err, errlen, "secret file %s: %s", path,
			                e ? strerror(e) : "shorter than its size");
		}
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return 0;
}

int qkd_key_load(struct qkd_key *key, const char *path, char *err, size_t errlen)
{
	uint8_t buf[QKD_SECRET_MAX];
	size_t len;
	if (qkd_secret_read(path, buf, sizeof buf, &len, err, errlen) != 0)
		return -1;
	char kerr[128];
	int rc = qkd_key_init(key, buf, len, kerr, sizeof kerr);
	OPENSSL_cleanse(buf, sizeof buf);
	if (rc != 0)
		return qkd_errf(err, errlen, "secret file %s: %s", path, kerr);
	return 0;
}
