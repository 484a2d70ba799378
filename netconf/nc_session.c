/*
 * nc_session.c - NETCONF over SSH on libssh2 (non-blocking under poll, with
 * deadlines) and libxml2.
 */
#include "nc_session.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libssh2.h>
#include <libxml/parser.h>

#define PASSWORD_MAX 256
#define CLOSE_TIMEOUT_MS 2000
#define CLEANUP_TIMEOUT_MS 10000

struct nc_session {
	int fd;
	LIBSSH2_SESSION *ssh;
	LIBSSH2_CHANNEL *ch;
	struct nc_framer fr;
	unsigned char rbuf[16384]; /* bytes read but not yet fed to the framer */
	size_t rlen, roff;
	struct nc_hello hello;
	unsigned long next_id;
	bool broken;
	int rpc_timeout_ms;
	int keepalive_s;
	nc_log_fn log;
	void *log_ctx;
	int log_level;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

/* libssh2_init() and xmlInitParser() are not thread-safe: once per process. */
static void global_init(void)
{
	init_rc = libssh2_init(0);
	xmlInitParser();
}

void nc_config_defaults(struct nc_config *c)
{
	memset(c, 0, sizeof *c);
	c->port = 830;
	c->connect_timeout_ms = 10000;
	c->rpc_timeout_ms = 60000;
	c->keepalive_s = 30;
	c->hello_gap_ms = 10;
	c->max_msg = NC_MSG_MAX_DEFAULT;
	c->log_level = NC_LOG_INFO;
}

static void logf_(struct nc_session *s, enum nc_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(struct nc_session *s, enum nc_log_level lvl, const char *fmt, ...)
{
	if (s->log == NULL || (int)lvl > s->log_level)
		return;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	s->log(s->log_ctx, lvl, buf);
}

/* logs an XML message with its keys redacted (debug level only) */
static void log_xml(struct nc_session *s, const char *dir, const char *xml, size_t len)
{
	if (s->log == NULL || s->log_level < NC_LOG_DEBUG)
		return;
	char *r = nc_redact(xml, len);
	if (r == NULL)
		return;
	size_t l = strlen(r);
	char *line = malloc(l + 16);
	if (line) {
		snprintf(line, l + 16, "%s %s", dir, r);
		s->log(s->log_ctx, NC_LOG_DEBUG, line);
		free(line);
	}
	free(r);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *ssh_err(LIBSSH2_SESSION *ssh)
{
	char *m = NULL;
	if (ssh == NULL)
		return "";
	libssh2_session_last_error(ssh, &m, NULL, 0);
	return m ? m : "";
}

/* Waits until libssh2 can make progress or the deadline passes. */
static enum nc_err wait_io(struct nc_session *s, int64_t deadline, const char *what,
                           struct nc_error *e)
{
	int dir = libssh2_session_block_directions(s->ssh);
	short ev = 0;
	if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
		ev |= POLLIN;
	if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		ev |= POLLOUT;
	if (ev == 0)
		ev = POLLIN;
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			s->broken = true;
			return nc_errf(e, NC_E_TIMEOUT, "%s: no answer within the deadline", what);
		}
		struct pollfd p = {s->fd, ev, 0};
		int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
		if (r > 0)
			return NC_OK;
		if (r < 0 && errno != EINTR) {
			s->broken = true;
			return nc_errf(e, NC_E_SSH, "%s: poll: %s", what, strerror(errno));
		}
	}
}

/* Runs a libssh2 call until it stops saying EAGAIN; RC receives its result. */
#define SSH_RETRY(s, deadline, what, e, rc, call)                                                  \
	do {                                                                                       \
		for (;;) {                                                                         \
			(rc) = (call);                                                             \
			if ((rc) != LIBSSH2_ERROR_EAGAIN)                                          \
				break;                                                             \
			enum nc_err w_ = wait_io((s), (deadline), (what), (e));                    \
			if (w_ != NC_OK)                                                           \
				return w_;                                                         \
		}                                                                                  \
	} while (0)

/* ---- TCP ---- */

static enum nc_err tcp_connect(const struct nc_config *c, int64_t deadline, int *fdout,
                               struct nc_error *e)
{
	char port[8];
	snprintf(port, sizeof port, "%u", c->port);
	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	int g = getaddrinfo(c->host, port, &hints, &res);
	if (g != 0)
		return nc_errf(e, NC_E_CONNECT, "%s: %s", c->host, gai_strerror(g));
	enum nc_err rc = nc_errf(e, NC_E_CONNECT, "%s port %u: no address", c->host, c->port);
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		                a->ai_protocol);
		if (fd < 0) {
			rc = nc_errf(e, NC_E_CONNECT, "socket: %s", strerror(errno));
			continue;
		}
		int r = connect(fd, a->ai_addr, a->ai_addrlen);
		if (r != 0 && errno == EINPROGRESS) {
			int64_t left = deadline - now_ms();
			struct pollfd p = {fd, POLLOUT, 0};
			int pr;
			do
				pr = poll(&p, 1, left > 0 ? (int)left : 0);
			while (pr < 0 && errno == EINTR && (left = deadline - now_ms()) > 0);
			if (pr == 0) {
				close(fd);
				rc = nc_errf(e, NC_E_TIMEOUT, "%s port %u: TCP connect timed out",
				             c->host, c->port);
				continue;
			}
			int soerr = 0;
			socklen_t sl = sizeof soerr;
			if (pr < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
				soerr = errno;
			r = soerr ? -1 : 0;
			errno = soerr;
		}
		if (r != 0) {
			rc = nc_errf(e, NC_E_CONNECT, "%s port %u: %s", c->host, c->port,
			             strerror(errno));
			close(fd);
			continue;
		}
		/* small request/reply messages: no Nagle delay (OpenSSH does the same) */
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		*fdout = fd;
		freeaddrinfo(res);
		nc_error_clear(e);
		return NC_OK;
	}
	freeaddrinfo(res);
	return rc;
}

/* ---- host key ---- */

static int kh_type(int hostkey_type)
{
	switch (hostkey_type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS:
		return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		return LIBSSH2_KNOWNHOST_KEY_ED25519;
	default:
		return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
	}
}

static void fingerprint(LIBSSH2_SESSION *ssh, char *out, size_t len)
{
	static const char B64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *h =
	    (const unsigned char *)libssh2_hostkey_hash(ssh, LIBSSH2_HOSTKEY_HASH_SHA256);
	size_t o = (size_t)snprintf(out, len, "SHA256:");
	if (h == NULL || o >= len) {
		snprintf(out, len, "(no fingerprint)");
		return;
	}
	for (size_t i = 0; i < 32 && o + 4 < len; i += 3) {
		unsigned v = (unsigned)h[i] << 16;
		if (i + 1 < 32)
			v |= (unsigned)h[i + 1] << 8;
		if (i + 2 < 32)
			v |= h[i + 2];
		out[o++] = B64[(v >> 18) & 63];
		out[o++] = B64[(v >> 12) & 63];
		if (i + 1 < 32)
			out[o++] = B64[(v >> 6) & 63];
		if (i + 2 < 32)
			out[o++] = B64[v & 63];
	}
	out[o] = '\0';
}

/* appends LEN bytes to PATH (created 0644 if missing) in one write */
static enum nc_err append_line(const char *path, const char *line, size_t len, struct nc_error *e)
{
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0)
		return nc_errf(e, NC_E_FILE, "known_hosts %s: %s", path, strerror(errno));
	/* a file whose last line lacks its newline gets one first */
	struct stat st;
	char last = '\n';
	if (fstat(fd, &st) == 0 && st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) == 1 &&
	    last != '\n' && write(fd, "\n", 1) != 1) {
		int err = errno;
		close(fd);
		return nc_errf(e, NC_E_FILE, "known_hosts %s: %s", path, strerror(err));
	}
	ssize_t w = write(fd, line, len);
	int werr = errno;
	if (close(fd) != 0 && w == (ssize_t)len) {
		w = -1;
		werr = errno;
	}
	if (w != (ssize_t)len)
		return nc_errf(e, NC_E_FILE, "known_hosts %s: cannot record the host key: %s", path,
		               w < 0 ? strerror(werr) : "short write");
	return NC_OK;
}

static enum nc_err check_host_key(struct nc_session *s, const struct nc_config *c,
                                  struct nc_error *e)
{
	size_t klen = 0;
	int ktype = 0;
	const char *key = libssh2_session_hostkey(s->ssh, &klen, &ktype);
	if (key == NULL)
		return nc_errf(e, NC_E_SSH, "no host key from the server");
	char fp[64];
	fingerprint(s->ssh, fp, sizeof fp);
	LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(s->ssh);
	if (kh == NULL)
		return nc_errf(e, NC_E_NOMEM, "known_hosts: out of memory");
	enum nc_err rc = NC_OK;
	struct stat st;
	bool exists = stat(c->known_hosts, &st) == 0;
	if (exists &&
	    libssh2_knownhost_readfile(kh, c->known_hosts, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
		rc = nc_errf(e, NC_E_FILE, "known_hosts %s: cannot be read: %s", c->known_hosts,
		             ssh_err(s->ssh));
		goto out;
	}
	int mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | kh_type(ktype);
	struct libssh2_knownhost *found = NULL;
	int r = libssh2_knownhost_checkp(kh, c->host, (int)c->port, key, klen, mask, &found);
	switch (r) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		logf_(s, NC_LOG_DEBUG, "host key %s matches %s", fp, c->known_hosts);
		break;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		rc = nc_errf(e, NC_E_HOSTKEY_CHANGED,
		             "host key of %s port %u CHANGED (now %s): refused; if the router was "
		             "really rekeyed, replace its line in %s",
		             c->host, c->port, fp, c->known_hosts);
		break;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		if (!c->tofu) {
			rc = nc_errf(e, NC_E_HOSTKEY_UNKNOWN,
			             "host key of %s port %u (%s) is not in %s: refused (add it, "
			             "or enable trust on first use)",
			             c->host, c->port, fp, c->known_hosts);
			break;
		}
		char name[300];
		if (c->port == 22)
			snprintf(name, sizeof name, "%s", c->host);
		else
			snprintf(name, sizeof name, "[%s]:%u", c->host, c->port);
		/* append one line: rewriting the file with libssh2 would drop the lines
		 * it cannot parse (comments, @cert-authority, sk- keys) */
		struct libssh2_knownhost *added = NULL;
		char line[2048];
		size_t ll = 0;
		if (libssh2_knownhost_addc(kh, name, NULL, key, klen, NULL, 0, mask, &added) != 0 ||
		    libssh2_knownhost_writeline(kh, added, line, sizeof line, &ll,
		                                LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0) {
			rc = nc_errf(e, NC_E_SSH, "known_hosts: cannot format the host key: %s",
			             ssh_err(s->ssh));
			break;
		}
		if ((rc = append_line(c->known_hosts, line, ll, e)))
			break;
		logf_(s, NC_LOG_INFO, "trust on first use: recorded host key %s of %s in %s", fp,
		      name, c->known_hosts);
		break;
	default:
		rc = nc_errf(e, NC_E_SSH, "host key check failed: %s", ssh_err(s->ssh));
	}
out:
	libssh2_knownhost_free(kh);
	return rc;
}

/* ---- authentication ---- */

/* a secret file: regular, not readable or writable by group or others */
static enum nc_err check_secret_file(const char *what, const char *path, struct nc_error *e)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return nc_errf(e, NC_E_FILE, "%s %s: %s", what, path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return nc_errf(e, NC_E_FILE, "%s %s: not a regular file", what, path);
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return nc_errf(e, NC_E_FILE,
		               "%s %s: mode %04o lets others read or write it; chmod 600 it", what,
		               path, (unsigned)(st.st_mode & 07777));
	return NC_OK;
}

/* True if the private key file holds an RSA key (PEM, or OpenSSH format whose
 * embedded public key is ssh-rsa). */
static bool is_rsa_key(const char *path)
{
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return false;
	char line[256], b64[1024];
	size_t n = 0;
	bool rsa = false, body = false;
	while (fgets(line, sizeof line, f) && n < sizeof b64 - 80) {
		if (strstr(line, "BEGIN RSA PRIVATE KEY")) {
			rsa = true;
			break;
		}
		if (strstr(line, "BEGIN OPENSSH PRIVATE KEY")) {
			body = true;
			continue;
		}
		if (body && strstr(line, "END"))
			break;
		for (char *p = line; body && *p && n < sizeof b64 - 1; p++)
			if (*p != '\n' && *p != '\r')
				b64[n++] = *p;
	}
	fclose(f);
	if (rsa || n == 0)
		return rsa;
	/* decode the start of the blob: the key type is in clear even if encrypted */
	unsigned char raw[768];
	size_t r = 0;
	unsigned v = 0;
	int bits = 0;
	for (size_t i = 0; i < n && r < sizeof raw; i++) {
		const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		const char *p = strchr(a, b64[i]);
		if (p == NULL || b64[i] == '\0')
			break;
		v = (v << 6) | (unsigned)(p - a);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			raw[r++] = (unsigned char)(v >> bits);
		}
	}
	explicit_bzero(b64, sizeof b64);
	for (size_t i = 0; i + 7 <= r; i++)
		if (memcmp(raw + i, "ssh-rsa", 7) == 0) {
			rsa = true;
			break;
		}
	explicit_bzero(raw, sizeof raw);
	return rsa;
}

static enum nc_err read_password(const char *path, char *buf, size_t cap, struct nc_error *e)
{
	enum nc_err rc = check_secret_file("password file", path, e);
	if (rc)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return nc_errf(e, NC_E_FILE, "password file %s: %s", path, strerror(errno));
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return nc_errf(e, NC_E_FILE, "password file %s: %s", path, strerror(errno));
	if ((size_t)n >= cap - 1)
		return nc_errf(e, NC_E_FILE, "password file %s: longer than %zu bytes", path,
		               cap - 2);
	buf[n] = '\0';
	char *nl = strpbrk(buf, "\r\n");
	if (nl)
		*nl = '\0';
	if (buf[0] == '\0')
		return nc_errf(e, NC_E_FILE, "password file %s: empty", path);
	return NC_OK;
}

static enum nc_err authenticate(struct nc_session *s, const struct nc_config *c, int64_t deadline,
                                struct nc_error *e)
{
	unsigned ulen = (unsigned)strlen(c->user);
	int rc;
	if (c->key_file) {
		enum nc_err fr = check_secret_file("key file", c->key_file, e);
		if (fr)
			return fr;
		SSH_RETRY(s, deadline, "public key authentication", e, rc,
		          libssh2_userauth_publickey_fromfile_ex(s->ssh, c->user, ulen, NULL,
		                                                 c->key_file, NULL));
		if (rc == 0)
			return NC_OK;
		if (rc == LIBSSH2_ERROR_FILE || rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED)
			return nc_errf(e, NC_E_FILE, "key file %s: cannot be used: %s", c->key_file,
			               ssh_err(s->ssh));
		if (is_rsa_key(c->key_file))
			return nc_errf(
			    e, NC_E_AUTH,
			    "user %s: RSA key %s refused. libssh2 1.10 can sign RSA only "
			    "with ssh-rsa (SHA-1), which OpenSSH 8.8+ and recent Junos "
			    "refuse: use an ed25519 or ECDSA key",
			    c->user, c->key_file);
		if (c->password_file == NULL)
			return nc_errf(e, NC_E_AUTH, "user %s: key %s refused by the server (%s)",
			               c->user, c->key_file, ssh_err(s->ssh));
		logf_(s, NC_LOG_INFO, "key %s refused, trying the password", c->key_file);
	}
	if (c->password_file) {
		char pw[PASSWORD_MAX];
		enum nc_err pr = read_password(c->password_file, pw, sizeof pw, e);
		if (pr == NC_OK) {
			for (;;) {
				rc = libssh2_userauth_password_ex(s->ssh, c->user, ulen, pw,
				                                  (unsigned)strlen(pw), NULL);
				if (rc != LIBSSH2_ERROR_EAGAIN)
					break;
				if ((pr = wait_io(s, deadline, "password authentication", e)))
					break;
			}
		}
		explicit_bzero(pw, sizeof pw);
		if (pr)
			return pr;
		if (rc == 0)
			return NC_OK;
		return nc_errf(e, NC_E_AUTH, "user %s: password refused by the server", c->user);
	}
	return nc_errf(e, NC_E_ARG, "no key file and no password file configured");
}

/* ---- channel I/O ---- */

static enum nc_err write_all(struct nc_session *s, const char *buf, size_t len, int64_t deadline,
                             struct nc_error *e)
{
	size_t off = 0;
	while (off < len) {
		ssize_t w;
		SSH_RETRY(s, deadline, "sending", e, w,
		          libssh2_channel_write(s->ch, buf + off, len - off));
		if (w < 0) {
			s->broken = true;
			return nc_errf(e, NC_E_CLOSED, "sending: %s", ssh_err(s->ssh));
		}
		off += (size_t)w;
	}
	return NC_OK;
}

static enum nc_err send_msg(struct nc_session *s, enum nc_framing mode, const char *msg, size_t len,
                            int64_t deadline, struct nc_error *e)
{
	char *framed;
	size_t flen;
	if (nc_frame_encode(mode, msg, len, &framed, &flen) != 0)
		return nc_errf(e, NC_E_PROTO, "cannot frame a %zu-byte message", len);
	enum nc_err rc = write_all(s, framed, flen, deadline, e);
	explicit_bzero(framed, flen);
	free(framed);
	return rc;
}

/* Reads one whole message into the framer. */
static enum nc_err read_msg(struct nc_session *s, int64_t deadline, const char *what,
                            struct nc_error *e)
{
	for (;;) {
		if (s->roff < s->rlen) {
			size_t used = 0;
			enum nc_feed f =
			    nc_framer_feed(&s->fr, s->rbuf + s->roff, s->rlen - s->roff, &used);
			s->roff += used;
			if (f == NC_FEED_MSG)
				return NC_OK;
			if (f == NC_FEED_ERR) {
				s->broken = true;
				return nc_errf(e, NC_E_PROTO, "%s: %s", what, s->fr.err);
			}
		}
		s->roff = s->rlen = 0;
		ssize_t n;
		SSH_RETRY(s, deadline, what, e, n,
		          libssh2_channel_read(s->ch, (char *)s->rbuf, sizeof s->rbuf));
		if (n < 0) {
			s->broken = true;
			return nc_errf(e, NC_E_CLOSED, "%s: %s", what, ssh_err(s->ssh));
		}
		if (n == 0 && libssh2_channel_eof(s->ch)) {
			s->broken = true;
			size_t got = s->fr.len;
			if (got)
				return nc_errf(
				    e, NC_E_CLOSED,
				    "%s: the server closed the session in the middle of a "
				    "message (%zu bytes received)",
				    what, got);
			return nc_errf(e, NC_E_CLOSED, "%s: the server closed the session", what);
		}
		s->rlen = (size_t)n;
	}
}

/* ---- connect ---- */

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static enum nc_err do_connect(struct nc_session *s, const struct nc_config *c, struct nc_error *e)
{
	int64_t t0 = now_ms(), t_tcp, t_kex, t_auth, t_chan;
	int64_t deadline = t0 + c->connect_timeout_ms;
	enum nc_err rc = tcp_connect(c, deadline, &s->fd, e);
	if (rc)
		return rc;
	t_tcp = now_ms();
	s->ssh = libssh2_session_init();
	if (s->ssh == NULL)
		return nc_errf(e, NC_E_NOMEM, "libssh2 session: out of memory");
	libssh2_session_set_blocking(s->ssh, 0);
	int r;
	SSH_RETRY(s, deadline, "SSH handshake", e, r, libssh2_session_handshake(s->ssh, s->fd));
	if (r)
		return nc_errf(e, NC_E_SSH, "SSH handshake with %s port %u: %s", c->host, c->port,
		               ssh_err(s->ssh));
	t_kex = now_ms();
	logf_(s, NC_LOG_DEBUG, "ssh: kex %s, host key %s, cipher %s",
	      libssh2_session_methods(s->ssh, LIBSSH2_METHOD_KEX),
	      libssh2_session_methods(s->ssh, LIBSSH2_METHOD_HOSTKEY),
	      libssh2_session_methods(s->ssh, LIBSSH2_METHOD_CRYPT_CS));
	if ((rc = check_host_key(s, c, e)))
		return rc;
	if ((rc = authenticate(s, c, deadline, e)))
		return rc;
	t_auth = now_ms();
	if (c->keepalive_s > 0)
		libssh2_keepalive_config(s->ssh, 1, (unsigned)c->keepalive_s);
	LIBSSH2_CHANNEL *ch;
	for (;;) {
		ch = libssh2_channel_open_session(s->ssh);
		if (ch || libssh2_session_last_errno(s->ssh) != LIBSSH2_ERROR_EAGAIN)
			break;
		if ((rc = wait_io(s, deadline, "opening the SSH channel", e)))
			return rc;
	}
	if (ch == NULL)
		return nc_errf(e, NC_E_SSH, "opening the SSH channel: %s", ssh_err(s->ssh));
	s->ch = ch;
	/* the subsystem's stderr is not NETCONF: drop it rather than let it fill the window */
	SSH_RETRY(
	    s, deadline, "channel setup", e, r,
	    libssh2_channel_handle_extended_data2(s->ch, LIBSSH2_CHANNEL_EXTENDED_DATA_IGNORE));
	SSH_RETRY(s, deadline, "netconf subsystem", e, r,
	          libssh2_channel_subsystem(s->ch, "netconf"));
	if (r)
		return nc_errf(e, NC_E_SSH, "the server refused the netconf subsystem: %s",
		               ssh_err(s->ssh));

	t_chan = now_ms();
	/* hellos: ours goes out at once (servers send theirs without waiting), the
	 * server's is read before any RPC */
	char *hello;
	size_t hlen;
	if (nc_hello_build(!c->base10_only, &hello, &hlen) != 0)
		return nc_errf(e, NC_E_NOMEM, "hello: out of memory");
	rc = send_msg(s, NC_FRAMING_EOM, hello, hlen, deadline, e);
	free(hello);
	if (rc)
		return rc;
	if ((rc = read_msg(s, deadline, "reading the server hello", e)))
		return rc;
	size_t mlen;
	const char *m = nc_framer_msg(&s->fr, &mlen);
	rc = nc_hello_parse(m, mlen, &s->hello, e);
	nc_framer_next(&s->fr);
	if (rc) {
		s->broken = true;
		return rc;
	}
	bool chunked = !c->base10_only && nc_hello_has(&s->hello, NC_CAP_BASE11);
	if (!chunked && !nc_hello_has(&s->hello, NC_CAP_BASE10)) {
		s->broken = true;
		return nc_errf(e, NC_E_PROTO,
		               "the server offers only base:1.1 and base:1.0 is "
		               "configured");
	}
	if (nc_framer_set_mode(&s->fr, chunked ? NC_FRAMING_CHUNKED : NC_FRAMING_EOM) != 0) {
		s->broken = true;
		return nc_errf(e, NC_E_PROTO, "bytes after the server hello before framing switch");
	}
	if (chunked && s->roff < s->rlen) {
		/* the server must not send anything before our first RPC */
		logf_(s, NC_LOG_INFO, "server sent %zu bytes right after its hello",
		      s->rlen - s->roff);
	}
	logf_(s, NC_LOG_INFO,
	      "connected to %s port %u as %s: session-id %s, %s framing, %zu capabilities "
	      "(tcp %lld ms, ssh %lld ms, auth %lld ms, channel %lld ms, hello %lld ms)",
	      c->host, c->port, c->user, s->hello.session_id,
	      chunked ? "base:1.1 chunked" : "base:1.0 end-of-message", s->hello.ncaps,
	      (long long)(t_tcp - t0), (long long)(t_kex - t_tcp), (long long)(t_auth - t_kex),
	      (long long)(t_chan - t_auth), (long long)(now_ms() - t_chan));
	if (c->hello_gap_ms > 0)
		sleep_ms(c->hello_gap_ms);
	return NC_OK;
}

/*
 * Frees the session. libssh2 runs non-blocking here, and a non-blocking
 * libssh2_session_free() answers EAGAIN, freeing nothing, while a channel
 * still waits for the server's CLOSE: after a timeout or a stalled router
 * that leaked the whole session (about 57 KiB) on every drop. So a working
 * session says goodbye within CLOSE_TIMEOUT_MS, then the socket is shut down,
 * which ends every further read at EOF, and the free is retried until it
 * completes (a few calls) or the same deadline passes (logged, then leaked
 * rather than used).
 */
static void teardown(struct nc_session *s)
{
	int64_t deadline = now_ms() + CLOSE_TIMEOUT_MS;
	struct nc_error e;
	nc_error_clear(&e);
	if (s->ssh && !s->broken) {
		while (libssh2_session_disconnect(s->ssh, "bye") == LIBSSH2_ERROR_EAGAIN &&
		       wait_io(s, deadline, "disconnect", &e) == NC_OK)
			;
	}
	if (s->fd >= 0)
		(void)shutdown(s->fd, SHUT_RDWR);
	if (s->ssh) {
		int r;
		while ((r = libssh2_session_free(s->ssh)) == LIBSSH2_ERROR_EAGAIN &&
		       wait_io(s, deadline, "session free", &e) == NC_OK)
			;
		if (r != 0)
			logf_(s, NC_LOG_ERR, "SSH session not freed (libssh2 error %d): %s", r,
			      e.msg[0] ? e.msg : "leaked");
	}
	if (s->fd >= 0)
		close(s->fd);
	nc_framer_free(&s->fr);
	nc_hello_free(&s->hello);
	explicit_bzero(s->rbuf, sizeof s->rbuf);
	free(s);
}

enum nc_err nc_connect(const struct nc_config *cfg, struct nc_session **out, struct nc_error *e)
{
	*out = NULL;
	nc_error_clear(e);
	pthread_once(&init_once, global_init);
	if (init_rc != 0)
		return nc_errf(e, NC_E_SSH, "libssh2_init failed");
	if (cfg->host == NULL || cfg->user == NULL || cfg->known_hosts == NULL)
		return nc_errf(e, NC_E_ARG, "host, user and known_hosts are required");
	if (cfg->port == 0 || cfg->port > 65535)
		return nc_errf(e, NC_E_ARG, "port %u out of range", cfg->port);
	struct nc_session *s = calloc(1, sizeof *s);
	if (s == NULL)
		return nc_errf(e, NC_E_NOMEM, "out of memory");
	s->fd = -1;
	s->log = cfg->log;
	s->log_ctx = cfg->log_ctx;
	s->log_level = cfg->log_level;
	s->rpc_timeout_ms = cfg->rpc_timeout_ms > 0 ? cfg->rpc_timeout_ms : 60000;
	s->keepalive_s = cfg->keepalive_s;
	if (nc_framer_init(&s->fr, NC_FRAMING_EOM, cfg->max_msg) != 0) {
		free(s);
		return nc_errf(e, NC_E_NOMEM, "out of memory");
	}
	struct nc_config c = *cfg;
	if (c.connect_timeout_ms <= 0)
		c.connect_timeout_ms = 10000;
	enum nc_err rc = do_connect(s, &c, e);
	if (rc) {
		logf_(s, NC_LOG_ERR, "connect %s port %u: %s", c.host, c.port, e ? e->msg : "");
		teardown(s);
		return rc;
	}
	*out = s;
	return NC_OK;
}

const struct nc_hello *nc_session_hello(const struct nc_session *s)
{
	return &s->hello;
}

enum nc_framing nc_session_framing(const struct nc_session *s)
{
	return s->fr.mode;
}

bool nc_session_has_cap(const struct nc_session *s, const char *cap)
{
	return nc_hello_has(&s->hello, cap);
}

bool nc_session_usable(const struct nc_session *s)
{
	return s && !s->broken;
}

const char *nc_session_target(const struct nc_session *s)
{
	return nc_session_has_cap(s, NC_CAP_CANDIDATE) ? "candidate" : "running";
}

enum nc_err nc_session_keepalive(struct nc_session *s, int *next_s, struct nc_error *e)
{
	*next_s = s->keepalive_s > 0 ? s->keepalive_s : 60;
	if (s->broken)
		return nc_errf(e, NC_E_CLOSED, "session unusable");
	if (s->keepalive_s <= 0)
		return NC_OK;
	int r;
	int64_t deadline = now_ms() + s->rpc_timeout_ms;
	SSH_RETRY(s, deadline, "keepalive", e, r, libssh2_keepalive_send(s->ssh, next_s));
	if (r) {
		s->broken = true;
		return nc_errf(e, NC_E_CLOSED, "keepalive: %s", ssh_err(s->ssh));
	}
	return NC_OK;
}

/* ---- RPCs ---- */

enum nc_err nc_rpc(struct nc_session *s, xmlDocPtr doc, struct nc_reply *reply, struct nc_error *e)
{
	struct nc_reply tmp;
	struct nc_reply *r = reply ? reply : &tmp;
	memset(r, 0, sizeof *r);
	if (s->broken) {
		xmlFreeDoc(doc);
		return nc_errf(e, NC_E_CLOSED, "the session is no longer usable");
	}
	xmlNodePtr root = xmlDocGetRootElement(doc);
	xmlNodePtr opn = root ? root->children : NULL;
	char op[40];
	snprintf(op, sizeof op, "%s", opn ? (const char *)opn->name : "rpc");
	unsigned long id = ++s->next_id;
	char *msg;
	size_t len;
	int sr = nc_rpc_serialize(doc, id, &msg, &len);
	xmlFreeDoc(doc);
	if (sr != 0)
		return nc_errf(e, NC_E_NOMEM, "%s: cannot serialise the request", op);
	log_xml(s, ">>", msg, len);
	int64_t deadline = now_ms() + s->rpc_timeout_ms;
	enum nc_err rc = send_msg(s, s->fr.mode, msg, len, deadline, e);
	explicit_bzero(msg, len);
	free(msg);
	if (rc)
		return rc;
	char want[24];
	snprintf(want, sizeof want, "%lu", id);
	for (;;) {
		if ((rc = read_msg(s, deadline, op, e)))
			return rc;
		size_t mlen;
		const char *m = nc_framer_msg(&s->fr, &mlen);
		log_xml(s, "<<", m, mlen);
		rc = nc_reply_parse(m, mlen, r, e);
		nc_framer_next(&s->fr);
		if (rc) {
			s->broken = true;
			return rc;
		}
		if (r->kind == NC_REPLY_NOTIFICATION) { /* interleaved: not ours to handle */
			nc_reply_free(r);
			continue;
		}
		if (strcmp(r->message_id, want) != 0) {
			s->broken = true;
			rc = nc_errf(e, NC_E_PROTO, "%s: reply has message-id \"%s\", expected %s",
			             op, r->message_id, want);
			nc_reply_free(r);
			return rc;
		}
		break;
	}
	if (r->kind == NC_REPLY_ERROR) {
		rc = nc_errf(e, NC_E_RPC, "%s refused by the server", op);
		nc_reply_free(r);
		return rc;
	}
	if (r->kind == NC_REPLY_EMPTY)
		logf_(s, NC_LOG_INFO, "%s: reply without <ok/> or <data>, taken as success", op);
	if (reply == NULL)
		nc_reply_free(r);
	return NC_OK;
}

static enum nc_err simple(struct nc_session *s, const char *opname, const char *ds_elem,
                          const char *ds, struct nc_error *e)
{
	xmlNodePtr op;
	xmlDocPtr d = nc_rpc_new(opname, &op);
	if (d == NULL)
		return nc_errf(e, NC_E_NOMEM, "%s: out of memory", opname);
	if (ds_elem) {
		xmlNodePtr t = nc_rpc_add(op, ds_elem, NULL);
		if (t == NULL || nc_rpc_add(t, ds, NULL) == NULL) {
			xmlFreeDoc(d);
			return nc_errf(e, NC_E_NOMEM, "%s: out of memory", opname);
		}
	}
	return nc_rpc(s, d, NULL, e);
}

enum nc_err nc_lock(struct nc_session *s, const char *ds, struct nc_error *e)
{
	enum nc_err rc = simple(s, "lock", "target", ds, e);
	if (rc == NC_E_RPC && e && e->nrpc && strcmp(e->rpc[0].tag, "lock-denied") == 0)
		nc_errf(e, NC_E_RPC, "lock %s denied: held by session %s", ds,
		        e->rpc[0].session_id[0] ? e->rpc[0].session_id : "(not said)");
	return rc;
}

enum nc_err nc_unlock(struct nc_session *s, const char *ds, struct nc_error *e)
{
	return simple(s, "unlock", "target", ds, e);
}

enum nc_err nc_discard_changes(struct nc_session *s, struct nc_error *e)
{
	return simple(s, "discard-changes", NULL, NULL, e);
}

enum nc_err nc_validate(struct nc_session *s, const char *ds, struct nc_error *e)
{
	return simple(s, "validate", "source", ds, e);
}

enum nc_err nc_edit_config(struct nc_session *s, const char *ds, xmlNodePtr config, bool replace,
                           struct nc_error *e)
{
	xmlNodePtr op;
	xmlDocPtr d = nc_rpc_new("edit-config", &op);
	if (d == NULL)
		return nc_errf(e, NC_E_NOMEM, "edit-config: out of memory");
	xmlNodePtr t = nc_rpc_add(op, "target", NULL);
	bool ok = t && nc_rpc_add(t, ds, NULL) &&
	          nc_rpc_add(op, "default-operation", replace ? "replace" : "merge");
	if (ok && nc_session_has_cap(s, "urn:ietf:params:netconf:capability:rollback-on-error:1.0"))
		ok = nc_rpc_add(op, "error-option", "rollback-on-error") != NULL;
	xmlNodePtr cfg = ok ? nc_rpc_add(op, "config", NULL) : NULL;
	xmlNodePtr copy = cfg ? xmlDocCopyNode(config, d, 1) : NULL;
	if (copy == NULL) {
		xmlFreeDoc(d);
		return nc_errf(e, NC_E_NOMEM, "edit-config: out of memory");
	}
	xmlAddChild(cfg, copy);
	return nc_rpc(s, d, NULL, e);
}

enum nc_err nc_commit(struct nc_session *s, int confirm_timeout_s, const char *persist,
                      struct nc_error *e)
{
	xmlNodePtr op;
	xmlDocPtr d = nc_rpc_new("commit", &op);
	if (d == NULL)
		return nc_errf(e, NC_E_NOMEM, "commit: out of memory");
	if (confirm_timeout_s > 0) {
		if (!nc_session_has_cap(s, NC_CAP_CONFIRMED10) &&
		    !nc_session_has_cap(s, NC_CAP_CONFIRMED11)) {
			xmlFreeDoc(d);
			return nc_errf(e, NC_E_CAPABILITY, "the server has no confirmed-commit");
		}
		if (persist && !nc_session_has_cap(s, NC_CAP_CONFIRMED11)) {
			xmlFreeDoc(d);
			return nc_errf(
			    e, NC_E_CAPABILITY,
			    "persist needs confirmed-commit:1.1, which the server lacks");
		}
		char t[16];
		snprintf(t, sizeof t, "%d", confirm_timeout_s);
		if (!nc_rpc_add(op, "confirmed", NULL) || !nc_rpc_add(op, "confirm-timeout", t) ||
		    (persist && !nc_rpc_add(op, "persist", persist))) {
			xmlFreeDoc(d);
			return nc_errf(e, NC_E_NOMEM, "commit: out of memory");
		}
	}
	return nc_rpc(s, d, NULL, e);
}

enum nc_err nc_confirm(struct nc_session *s, const char *persist_id, struct nc_error *e)
{
	xmlNodePtr op;
	xmlDocPtr d = nc_rpc_new("commit", &op);
	if (d == NULL || (persist_id && !nc_rpc_add(op, "persist-id", persist_id))) {
		xmlFreeDoc(d);
		return nc_errf(e, NC_E_NOMEM, "commit: out of memory");
	}
	return nc_rpc(s, d, NULL, e);
}

enum nc_err nc_cancel_commit(struct nc_session *s, const char *persist_id, struct nc_error *e)
{
	xmlNodePtr op;
	xmlDocPtr d = nc_rpc_new("cancel-commit", &op);
	if (d == NULL || (persist_id && !nc_rpc_add(op, "persist-id", persist_id))) {
		xmlFreeDoc(d);
		return nc_errf(e, NC_E_NOMEM, "cancel-commit: out of memory");
	}
	return nc_rpc(s, d, NULL, e);
}

enum nc_err nc_get_config(struct nc_session *s, const char *ds, xmlNodePtr filter,
                          struct nc_reply *reply, struct nc_error *e)
{
	xmlNodePtr op;
	xmlDocPtr d = nc_rpc_new("get-config", &op);
	if (d == NULL)
		return nc_errf(e, NC_E_NOMEM, "get-config: out of memory");
	xmlNodePtr src = nc_rpc_add(op, "source", NULL);
	bool ok = src && nc_rpc_add(src, ds, NULL);
	if (ok && filter) {
		xmlNodePtr f = nc_rpc_add(op, "filter", NULL);
		xmlNodePtr copy = f ? xmlDocCopyNode(filter, d, 1) : NULL;
		ok = copy && xmlSetProp(f, BAD_CAST "type", BAD_CAST "subtree");
		if (copy)
			xmlAddChild(f, copy);
	}
	if (!ok) {
		xmlFreeDoc(d);
		return nc_errf(e, NC_E_NOMEM, "get-config: out of memory");
	}
	enum nc_err rc = nc_rpc(s, d, reply, e);
	if (rc == NC_OK && reply->data == NULL) {
		nc_reply_free(reply);
		return nc_errf(e, NC_E_PROTO, "get-config: reply without <data>");
	}
	return rc;
}

/* After a failure with the lock held: discard our edits and unlock, with a
 * fresh deadline; if that is impossible, drop the session, which makes the
 * server do both (RFC 6241 sections 7.5 and 8.3.1). Notes it in E->cleanup. */
static void cleanup(struct nc_session *s, bool candidate, const char *ds, struct nc_error *e)
{
	struct nc_error ce;
	nc_error_clear(&ce);
	int saved = s->rpc_timeout_ms;
	s->rpc_timeout_ms = saved < CLEANUP_TIMEOUT_MS ? saved : CLEANUP_TIMEOUT_MS;
	enum nc_err rc = NC_OK;
	if (s->broken)
		rc = NC_E_CLOSED;
	if (rc == NC_OK && candidate)
		rc = nc_discard_changes(s, &ce);
	enum nc_err ur = rc == NC_OK || rc == NC_E_RPC ? nc_unlock(s, ds, &ce) : rc;
	s->rpc_timeout_ms = saved;
	char m[256];
	if (rc == NC_OK && ur == NC_OK) {
		snprintf(m, sizeof m, "cleanup: %sreleased the %s lock",
		         candidate ? "discarded the candidate changes and " : "", ds);
	} else {
		s->broken = true; /* the caller closes: the server then drops lock and edits */
		snprintf(m, sizeof m,
		         "cleanup failed (%.100s); session dropped so the server releases the lock "
		         "and discards the changes",
		         ce.msg[0] ? ce.msg : "session unusable");
	}
	logf_(s, NC_LOG_INFO, "%s", m);
	if (e)
		snprintf(e->cleanup, sizeof e->cleanup, "%s", m);
}

enum nc_err nc_apply(struct nc_session *s, const struct nc_change *c, struct nc_error *e)
{
	nc_error_clear(e);
	if (c->config == NULL)
		return nc_errf(e, NC_E_ARG, "no configuration to apply");
	bool cand = nc_session_has_cap(s, NC_CAP_CANDIDATE);
	if (!cand && !nc_session_has_cap(s, NC_CAP_WRITABLE_RUNNING))
		return nc_errf(e, NC_E_CAPABILITY,
		               "the server offers neither :candidate nor :writable-running");
	if (!cand && c->confirm_timeout_s > 0)
		return nc_errf(e, NC_E_CAPABILITY, "confirmed commit needs :candidate");
	const char *ds = cand ? "candidate" : "running";
	enum nc_err rc = nc_lock(s, ds, e);
	if (rc)
		return rc; /* nothing of ours to clean */
	const char *step = "edit-config";
	rc = nc_edit_config(s, ds, c->config, c->replace, e);
	if (rc == NC_OK && cand && c->validate &&
	    (nc_session_has_cap(s, NC_CAP_VALIDATE10) ||
	     nc_session_has_cap(s, NC_CAP_VALIDATE11))) {
		step = "validate";
		rc = nc_validate(s, ds, e);
	}
	if (rc == NC_OK && cand) {
		step = "commit";
		rc = nc_commit(s, c->confirm_timeout_s, c->persist, e);
	}
	if (rc != NC_OK) {
		char first[512];
		snprintf(first, sizeof first, "%s", e ? e->msg : "");
		if (e)
			snprintf(e->msg, sizeof e->msg, "%s failed: %.480s", step, first);
		cleanup(s, cand, ds, e);
		return rc;
	}
	struct nc_error ue;
	nc_error_clear(&ue);
	if (nc_unlock(s, ds, &ue) != NC_OK) {
		/* committed, but the lock is stuck: drop the session to free it */
		s->broken = true;
		logf_(s, NC_LOG_ERR, "committed, but unlock failed (%s): dropping the session",
		      ue.msg);
	}
	logf_(s, NC_LOG_INFO, "%s%s committed on %s", cand ? "" : "edit of running ",
	      c->confirm_timeout_s > 0 ? "confirmed commit" : "change", ds);
	return NC_OK;
}

void nc_close(struct nc_session *s)
{
	if (s == NULL)
		return;
	if (!s->broken && s->ssh && s->ch) {
		int saved = s->rpc_timeout_ms;
		s->rpc_timeout_ms = CLOSE_TIMEOUT_MS;
		struct nc_error e;
		nc_error_clear(&e);
		(void)simple(s, "close-session", NULL, NULL, &e);
		s->rpc_timeout_ms = saved;
		int64_t deadline = now_ms() + CLOSE_TIMEOUT_MS;
		int r;
		while ((r = libssh2_channel_close(s->ch)) == LIBSSH2_ERROR_EAGAIN &&
		       wait_io(s, deadline, "close", &e) == NC_OK)
			;
	}
	teardown(s);
}
