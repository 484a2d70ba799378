/*
 * state.c - the per-channel state file: strict JSON (jansson), atomic writes.
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

static enum state_err failf(enum state_err code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum state_err failf(enum state_err code, char *err, size_t errlen, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

static const char *const PHASES[STATE_PHASE_COUNT] = {"none", "fetching", "staging", "staged",
                                                      "confirming"};

const char *state_phase_name(uint8_t phase)
{
	return phase < STATE_PHASE_COUNT ? PHASES[phase] : "unknown";
}

const char *state_err_name(enum state_err e)
{
	switch (e) {
	case STATE_OK:
		return "ok";
	case STATE_E_MISSING:
		return "missing";
	case STATE_E_IO:
		return "io";
	case STATE_E_CORRUPT:
		return "corrupt";
	case STATE_E_ARG:
		return "invalid";
	}
	return "unknown";
}

void state_init(struct chan_state *s, uint32_t channel, uint8_t role)
{
	memset(s, 0, sizeof *s);
	s->channel = channel;
	s->role = role;
	s->last_result = QKD_RES_OK;
}

static bool keyid_ok(const char *k)
{
	return qkd_str_valid(k, strnlen(k, QKD_KEYID_MAX + 1), QKD_KEYID_MAX);
}

static bool detail_ok(const char *d)
{
	size_t n = strnlen(d, QKD_DETAIL_MAX + 1);
	if (n > QKD_DETAIL_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)d[i] < 0x20 || (unsigned char)d[i] > 0x7E)
			return false;
	return true;
}

enum state_err state_check(const struct chan_state *s, char *err, size_t errlen)
{
	if (s->channel == 0)
		return failf(STATE_E_ARG, err, errlen, "channel must be 1 or more");
	if (s->role != QKD_ROLE_MASTER && s->role != QKD_ROLE_SLAVE)
		return failf(STATE_E_ARG, err, errlen, "role must be master or slave");
	if ((s->current_rotation == 0) != (s->current_key_id[0] == '\0'))
		return failf(STATE_E_ARG, err, errlen,
		             "current: a key_ID goes with a rotation ID >= 1, and only then");
	if (s->current_key_id[0] != '\0' && !keyid_ok(s->current_key_id))
		return failf(STATE_E_ARG, err, errlen,
		             "current.key_id must be 1..%d printable ASCII characters",
		             QKD_KEYID_MAX);
	if (s->phase >= STATE_PHASE_COUNT)
		return failf(STATE_E_ARG, err, errlen, "pending.phase %u is unknown", s->phase);
	if ((s->pending_rotation == 0) != (s->phase == STATE_PHASE_NONE))
		return failf(STATE_E_ARG, err, errlen,
		             "pending: phase none goes with rotation 0, and only then");
	if (s->phase == STATE_PHASE_NONE && s->pending_key_id[0] != '\0')
		return failf(STATE_E_ARG, err, errlen, "pending.key_id set without a rotation");
	if (s->phase > STATE_PHASE_FETCHING && s->pending_key_id[0] == '\0')
		return failf(STATE_E_ARG, err, errlen, "pending.key_id missing in phase %s",
		             state_phase_name(s->phase));
	if (s->pending_key_id[0] != '\0' && !keyid_ok(s->pending_key_id))
		return failf(STATE_E_ARG, err, errlen,
		             "pending.key_id must be 1..%d printable ASCII characters",
		             QKD_KEYID_MAX);
	if (s->pending_rotation != 0 && s->pending_rotation <= s->current_rotation)
		return failf(STATE_E_ARG, err, errlen,
		             "pending.rotation %u is not above current.rotation %u",
		             s->pending_rotation, s->current_rotation);
	if (s->current_rotation > s->max_rotation || s->pending_rotation > s->max_rotation ||
	    s->last_rotation > s->max_rotation)
		return failf(STATE_E_ARG, err, errlen,
		             "max_rotation %u is below a rotation ID of the state",
		             s->max_rotation);
	if (s->last_result > QKD_RES_MAX)
		return failf(STATE_E_ARG, err, errlen, "last.result %u is unknown", s->last_result);
	if (!detail_ok(s->last_detail))
		return failf(STATE_E_ARG, err, errlen,
		             "last.detail must be 0..%d printable characters", QKD_DETAIL_MAX);
	if (s->nmarks > STATE_MARKS_MAX)
		return failf(STATE_E_ARG, err, errlen, "more than %d replay marks",
		             STATE_MARKS_MAX);
	for (size_t i = 0; i < s->nmarks; i++) {
		const struct state_mark *m = &s->marks[i];
		if (!qkd_str_valid(m->sender, strnlen(m->sender, QKD_SENDER_MAX + 1),
		                   QKD_SENDER_MAX))
			return failf(STATE_E_ARG, err, errlen,
			             "marks[%zu].sender must be 1..%d printable ASCII characters",
			             i, QKD_SENDER_MAX);
		if (m->epoch == 0 || m->seq == 0)
			return failf(STATE_E_ARG, err, errlen,
			             "marks[%zu]: epoch and seq must be 1 or more", i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(s->marks[j].sender, m->sender) == 0)
				return failf(STATE_E_ARG, err, errlen,
				             "marks[%zu].sender \"%s\" appears twice", i,
				             m->sender);
	}
	return STATE_OK;
}

int state_path(const char *dir, uint32_t channel, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/channel-%u.json", dir, (unsigned)channel);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* ---- writing ---- */

static json_t *to_json(const struct chan_state *s)
{
	json_t *marks = json_array();
	if (marks == NULL)
		return NULL;
	for (size_t i = 0; i < s->nmarks; i++) {
		json_t *m =
		    json_pack("{s:s, s:I, s:I}", "sender", s->marks[i].sender, "epoch",
		              (json_int_t)s->marks[i].epoch, "seq", (json_int_t)s->marks[i].seq);
		if (m == NULL || json_array_append_new(marks, m) != 0) {
			json_decref(marks);
			return NULL;
		}
	}
	/* "o" steals the reference to marks, also on failure */
	return json_pack("{s:i, s:I, s:s, s:I, s:{s:I, s:s}, s:{s:I, s:s, s:s}, s:I, "
	                 "s:{s:I, s:s, s:s}, s:{s:I, s:I, s:I}, s:o}",
	                 "version", STATE_VERSION, "channel", (json_int_t)s->channel, "role",
	                 qkd_role_name(s->role), "epoch", (json_int_t)s->epoch, "current",
	                 "rotation", (json_int_t)s->current_rotation, "key_id", s->current_key_id,
	                 "pending", "rotation", (json_int_t)s->pending_rotation, "key_id",
	                 s->pending_key_id, "phase", state_phase_name(s->phase), "max_rotation",
	                 (json_int_t)s->max_rotation, "last", "rotation",
	                 (json_int_t)s->last_rotation, "result", qkd_result_name(s->last_result),
	                 "detail", s->last_detail, "counts", "completed",
	                 (json_int_t)s->rotations_ok, "failed", (json_int_t)s->rotations_failed,
	                 "deferred", (json_int_t)s->rotations_deferred, "marks", marks);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int fsync_dir(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	if (slash == NULL) {
		strcpy(dir, ".");
	} else if (slash == path) {
		strcpy(dir, "/");
	} else {
		size_t n = (size_t)(slash - path);
		if (n >= sizeof dir)
			return -1;
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

enum state_err state_save(const char *path, const struct chan_state *s, char *err, size_t errlen)
{
	char why[256];
	if (state_check(s, why, sizeof why) != STATE_OK)
		return failf(STATE_E_ARG, err, errlen, "%s: not written: %s", path, why);
	char tmp[4096];
	int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof tmp)
		return failf(STATE_E_ARG, err, errlen, "%s: path too long", path);
	json_t *j = to_json(s);
	if (j == NULL)
		return failf(STATE_E_IO, err, errlen, "%s: out of memory", path);
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	/* text comes from jansson's allocator, which the daemon replaces
	 * (kme_global_init): free it with jansson's free function */
	json_malloc_t jm;
	json_free_t jfree;
	json_get_alloc_funcs(&jm, &jfree);
	if (text == NULL)
		return failf(STATE_E_IO, err, errlen, "%s: out of memory", path);
	size_t len = strlen(text);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		jfree(text);
		return failf(STATE_E_IO, err, errlen, "%s: cannot create: %s", tmp, strerror(e));
	}
	int rc = fchmod(fd, 0600);
	if (rc == 0)
		rc = write_all(fd, text, len);
	if (rc == 0)
		rc = write_all(fd, "\n", 1);
	if (rc == 0)
		rc = fdatasync(fd); /* the data and its size: all a reader needs */
	int e = errno;
	jfree(text);
	if (close(fd) != 0 && rc == 0) {
		rc = -1;
		e = errno;
	}
	if (rc != 0) {
		unlink(tmp);
		return failf(STATE_E_IO, err, errlen, "%s: cannot write: %s", tmp, strerror(e));
	}
	if (rename(tmp, path) != 0) {
		e = errno;
		unlink(tmp);
		return failf(STATE_E_IO, err, errlen, "%s: cannot rename into place: %s", path,
		             strerror(e));
	}
	if (fsync_dir(path) != 0)
		return failf(STATE_E_IO, err, errlen,
		             "%s: written, but its folder could not be "
		             "synced: %s",
		             path, strerror(errno));
	return STATE_OK;
}

/* ---- reading ---- */

struct parser {
	const char *what;
	char *err;
	size_t errlen;
};

static enum state_err bad(struct parser *p, const char *member, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum state_err bad(struct parser *p, const char *member, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	return failf(STATE_E_CORRUPT, p->err, p->errlen, "%s: %s: %s", p->what, member, why);
}

/* Only the listed members, each exactly once (duplicates are refused by the
 * decoder). */
static enum state_err only(struct parser *p, json_t *obj, const char *member,
                           const char *const *names, size_t n)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v)
	{
		bool known = false;
		for (size_t i = 0; i < n; i++)
			known = known || strcmp(key, names[i]) == 0;
		if (!known)
			return bad(p, member, "unknown member \"%.64s\"", key);
	}
	for (size_t i = 0; i < n; i++)
		if (json_object_get(obj, names[i]) == NULL)
			return bad(p, member, "member \"%s\" is missing", names[i]);
	return STATE_OK;
}

static enum state_err get_u32(struct parser *p, json_t *obj, const char *name, const char *path,
                              uint32_t *out)
{
	json_t *v = json_object_get(obj, name);
	if (!json_is_integer(v))
		return bad(p, path, "must be an integer");
	json_int_t x = json_integer_value(v);
	if (x < 0 || x > (json_int_t)UINT32_MAX)
		return bad(p, path, "%lld is not 0..4294967295", (long long)x);
	*out = (uint32_t)x;
	return STATE_OK;
}

static enum state_err get_str(struct parser *p, json_t *obj, const char *name, const char *path,
                              char *out, size_t cap)
{
	json_t *v = json_object_get(obj, name);
	if (!json_is_string(v))
		return bad(p, path, "must be a string");
	size_t n = json_string_length(v);
	const char *s = json_string_value(v);
	if (n >= cap || strlen(s) != n)
		return bad(p, path, "longer than %zu characters or holds NUL", cap - 1);
	memcpy(out, s, n + 1);
	return STATE_OK;
}

#define TRY(x)                                                                                     \
	do {                                                                                       \
		enum state_err e_ = (x);                                                           \
		if (e_ != STATE_OK)                                                                \
			return e_;                                                                 \
	} while (0)

static enum state_err parse_obj(struct parser *p, json_t *root, struct chan_state *s)
{
	static const char *const top[] = {"version", "channel", "role",         "epoch", "current",
	                                  "pending", "last",    "max_rotation", "marks"};
	static const char *const cur[] = {"rotation", "key_id"};
	static const char *const pen[] = {"rotation", "key_id", "phase"};
	static const char *const last[] = {"rotation", "result", "detail"};
	static const char *const mark[] = {"sender", "epoch", "seq"};
	static const char *const counts[] = {"completed", "failed", "deferred"};
	char buf[64];
	uint32_t v;

	if (!json_is_object(root))
		return bad(p, "(top)", "must be a JSON object");
	/* "counts" is optional (files written before it existed): read, then
	 * set aside so that the check of the other members stays strict */
	json_t *c = json_object_get(root, "counts");
	if (c != NULL) {
		if (!json_is_object(c))
			return bad(p, "counts", "must be an object");
		TRY(only(p, c, "counts", counts, 3));
		TRY(get_u32(p, c, "completed", "counts.completed", &s->rotations_ok));
		TRY(get_u32(p, c, "failed", "counts.failed", &s->rotations_failed));
		TRY(get_u32(p, c, "deferred", "counts.deferred", &s->rotations_deferred));
		if (json_object_del(root, "counts") != 0)
			return bad(p, "counts", "cannot be read");
	}
	TRY(only(p, root, "(top)", top, sizeof top / sizeof top[0]));
	TRY(get_u32(p, root, "version", "version", &v));
	if (v != STATE_VERSION)
		return bad(p, "version", "%u is not %d", v, STATE_VERSION);
	TRY(get_u32(p, root, "channel", "channel", &s->channel));
	TRY(get_str(p, root, "role", "role", buf, sizeof buf));
	if (strcmp(buf, "master") == 0)
		s->role = QKD_ROLE_MASTER;
	else if (strcmp(buf, "slave") == 0)
		s->role = QKD_ROLE_SLAVE;
	else
		return bad(p, "role", "\"%s\" is not master or slave", buf);
	TRY(get_u32(p, root, "epoch", "epoch", &s->epoch));
	TRY(get_u32(p, root, "max_rotation", "max_rotation", &s->max_rotation));

	json_t *o = json_object_get(root, "current");
	if (!json_is_object(o))
		return bad(p, "current", "must be an object");
	TRY(only(p, o, "current", cur, 2));
	TRY(get_u32(p, o, "rotation", "current.rotation", &s->current_rotation));
	TRY(get_str(p, o, "key_id", "current.key_id", s->current_key_id, sizeof s->current_key_id));

	o = json_object_get(root, "pending");
	if (!json_is_object(o))
		return bad(p, "pending", "must be an object");
	TRY(only(p, o, "pending", pen, 3));
	TRY(get_u32(p, o, "rotation", "pending.rotation", &s->pending_rotation));
	TRY(get_str(p, o, "key_id", "pending.key_id", s->pending_key_id, sizeof s->pending_key_id));
	TRY(get_str(p, o, "phase", "pending.phase", buf, sizeof buf));
	s->phase = STATE_PHASE_COUNT;
	for (uint8_t i = 0; i < STATE_PHASE_COUNT; i++)
		if (strcmp(buf, PHASES[i]) == 0)
			s->phase = i;
	if (s->phase == STATE_PHASE_COUNT)
		return bad(p, "pending.phase", "\"%s\" is not a phase", buf);

	o = json_object_get(root, "last");
	if (!json_is_object(o))
		return bad(p, "last", "must be an object");
	TRY(only(p, o, "last", last, 3));
	TRY(get_u32(p, o, "rotation", "last.rotation", &s->last_rotation));
	TRY(get_str(p, o, "result", "last.result", buf, sizeof buf));
	s->last_result = 0xFF;
	for (uint8_t i = 0; i <= QKD_RES_MAX; i++)
		if (strcmp(buf, qkd_result_name(i)) == 0)
			s->last_result = i;
	if (s->last_result == 0xFF)
		return bad(p, "last.result", "\"%s\" is not a result name", buf);
	TRY(get_str(p, o, "detail", "last.detail", s->last_detail, sizeof s->last_detail));

	o = json_object_get(root, "marks");
	if (!json_is_array(o))
		return bad(p, "marks", "must be an array");
	if (json_array_size(o) > STATE_MARKS_MAX)
		return bad(p, "marks", "more than %d entries", STATE_MARKS_MAX);
	s->nmarks = json_array_size(o);
	for (size_t i = 0; i < s->nmarks; i++) {
		char path[32];
		json_t *m = json_array_get(o, i);
		snprintf(path, sizeof path, "marks[%zu]", i);
		if (!json_is_object(m))
			return bad(p, path, "must be an object");
		TRY(only(p, m, path, mark, 3));
		TRY(get_str(p, m, "sender", path, s->marks[i].sender, sizeof s->marks[i].sender));
		TRY(get_u32(p, m, "epoch", path, &s->marks[i].epoch));
		TRY(get_u32(p, m, "seq", path, &s->marks[i].seq));
	}
	char why[256];
	if (state_check(s, why, sizeof why) != STATE_OK)
		return failf(STATE_E_CORRUPT, p->err, p->errlen, "%s: %s", p->what, why);
	return STATE_OK;
}

enum state_err state_parse(const char *buf, size_t len, const char *what, struct chan_state *s,
                           char *err, size_t errlen)
{
	struct parser p = {what, err, errlen};
	if (len == 0)
		return failf(STATE_E_CORRUPT, err, errlen, "%s: empty file (truncated?)", what);
	if (len > STATE_FILE_MAX)
		return failf(STATE_E_CORRUPT, err, errlen, "%s: larger than %d octets", what,
		             STATE_FILE_MAX);
	json_error_t je;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	enum state_err rc;
	if (root == NULL) {
		rc = failf(STATE_E_CORRUPT, err, errlen,
		           "%s: not valid JSON (truncated?) at line %d column %d: %s", what,
		           je.line, je.column, je.text);
	} else {
		struct chan_state tmp;
		memset(&tmp, 0, sizeof tmp);
		rc = parse_obj(&p, root, &tmp);
		json_decref(root);
		if (rc == STATE_OK)
			*s = tmp;
	}
	/* messages quote the file (jansson's text near the error, member names):
	 * one line of printable ASCII, whatever the file holds */
	for (char *c = err; rc != STATE_OK && c && errlen > 0 && *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	return rc;
}

enum state_err state_load(const char *path, struct chan_state *s, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return failf(STATE_E_MISSING, err, errlen, "%s: no state yet", path);
		return failf(STATE_E_IO, err, errlen, "%s: cannot open: %s", path, strerror(errno));
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return failf(STATE_E_IO, err, errlen, "%s: cannot stat: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return failf(STATE_E_CORRUPT, err, errlen, "%s: not a regular file", path);
	}
	if (st.st_mode & 022) {
		close(fd);
		return failf(STATE_E_CORRUPT, err, errlen,
		             "%s: writable by group or others (mode %03o): not trusted", path,
		             (unsigned)(st.st_mode & 0777));
	}
	if (st.st_size > STATE_FILE_MAX) {
		close(fd);
		return failf(STATE_E_CORRUPT, err, errlen, "%s: larger than %d octets", path,
		             STATE_FILE_MAX);
	}
	char *buf = malloc(STATE_FILE_MAX + 1);
	if (buf == NULL) {
		close(fd);
		return failf(STATE_E_IO, err, errlen, "%s: out of memory", path);
	}
	size_t len = 0;
	for (;;) {
		ssize_t r = read(fd, buf + len, STATE_FILE_MAX + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			close(fd);
			return failf(STATE_E_IO, err, errlen, "%s: cannot read: %s", path,
			             strerror(e));
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > STATE_FILE_MAX)
			break;
	}
	close(fd);
	enum state_err rc = state_parse(buf, len, path, s, err, errlen);
	free(buf);
	return rc;
}

int state_quarantine(const char *path, char *err, size_t errlen)
{
	char dst[4200];
	for (int i = 1; i <= 99; i++) {
		snprintf(dst, sizeof dst, "%s.corrupt-%d", path, i);
		if (access(dst, F_OK) == 0)
			continue;
		if (rename(path, dst) != 0) {
			failf(STATE_E_IO, err, errlen, "%s: cannot rename to %s: %s", path, dst,
			      strerror(errno));
			return -1;
		}
		return 0;
	}
	failf(STATE_E_IO, err, errlen, "%s: 99 quarantined copies already", path);
	return -1;
}
