/*
 * test_state.c - the per-channel state file: round trip, atomic replace,
 * mode 0600, strict refusal of corrupt, truncated and invalid files with a
 * message naming the file and the member.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "state.h"

struct fx {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/qkdstate.XXXXXX");
	if (mkdtemp(f->dir) == NULL || state_path(f->dir, 7, f->path, sizeof f->path) != 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	int rc = system(cmd);
	free(f);
	return rc == 0 ? 0 : -1;
}

static void sample(struct chan_state *s)
{
	state_init(s, 7, QKD_ROLE_SLAVE);
	s->epoch = 12;
	s->current_rotation = 41;
	strcpy(s->current_key_id, "bc490419-7d60-487f-adc1-4ddcc177c139");
	s->pending_rotation = 42;
	strcpy(s->pending_key_id, "0e9f8d7c-6b5a-4938-8271-6a5b4c3d2e1f");
	s->phase = STATE_PHASE_STAGED;
	s->max_rotation = 42;
	s->last_rotation = 42;
	s->last_result = QKD_RES_OK;
	s->rotations_ok = 40;
	s->rotations_failed = 2;
	s->rotations_deferred = 1;
	strcpy(s->last_detail, "");
	s->nmarks = 2;
	strcpy(s->marks[0].sender, "SAE-A");
	s->marks[0].epoch = 3;
	s->marks[0].seq = 99;
	strcpy(s->marks[1].sender, "SAE-C");
	s->marks[1].epoch = 1;
	s->marks[1].seq = 4294967295u;
}

static void write_file(const char *path, const char *text, size_t len, mode_t mode)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	char *buf = calloc(1, STATE_FILE_MAX + 1);
	assert_non_null(buf);
	*len = fread(buf, 1, STATE_FILE_MAX, fp);
	fclose(fp);
	return buf;
}

static void test_roundtrip(void **state)
{
	struct fx *f = *state;
	struct chan_state a, b;
	char err[256];
	sample(&a);
	assert_int_equal(state_save(f->path, &a, err, sizeof err), STATE_OK);
	memset(&b, 0xAA, sizeof b);
	assert_int_equal(state_load(f->path, &b, err, sizeof err), STATE_OK);
	assert_int_equal(b.channel, 7);
	assert_int_equal(b.role, QKD_ROLE_SLAVE);
	assert_int_equal(b.epoch, 12);
	assert_int_equal(b.current_rotation, 41);
	assert_string_equal(b.current_key_id, a.current_key_id);
	assert_int_equal(b.pending_rotation, 42);
	assert_string_equal(b.pending_key_id, a.pending_key_id);
	assert_int_equal(b.phase, STATE_PHASE_STAGED);
	assert_int_equal(b.max_rotation, 42);
	assert_int_equal(b.last_rotation, 42);
	assert_int_equal(b.last_result, QKD_RES_OK);
	assert_int_equal(b.nmarks, 2);
	assert_string_equal(b.marks[1].sender, "SAE-C");
	assert_int_equal(b.marks[1].seq, 4294967295u);
	assert_int_equal(b.marks[0].epoch, 3);
	assert_int_equal(b.rotations_ok, 40);
	assert_int_equal(b.rotations_failed, 2);
	assert_int_equal(b.rotations_deferred, 1);

	/* every phase and result survives */
	for (uint8_t ph = STATE_PHASE_FETCHING; ph < STATE_PHASE_COUNT; ph++) {
		for (uint8_t r = 0; r <= QKD_RES_MAX; r++) {
			a.phase = ph;
			a.last_result = r;
			strcpy(a.last_detail, "key lost \"x\"");
			assert_int_equal(state_save(f->path, &a, err, sizeof err), STATE_OK);
			assert_int_equal(state_load(f->path, &b, err, sizeof err), STATE_OK);
			assert_int_equal(b.phase, ph);
			assert_int_equal(b.last_result, r);
			assert_string_equal(b.last_detail, "key lost \"x\"");
		}
	}
	/* an empty state (first start) */
	state_init(&a, 7, QKD_ROLE_MASTER);
	assert_int_equal(state_save(f->path, &a, err, sizeof err), STATE_OK);
	assert_int_equal(state_load(f->path, &b, err, sizeof err), STATE_OK);
	assert_int_equal(b.role, QKD_ROLE_MASTER);
	assert_int_equal(b.current_rotation, 0);
	assert_string_equal(b.current_key_id, "");
	assert_int_equal(b.phase, STATE_PHASE_NONE);
}

static void test_mode_and_atomic_replace(void **state)
{
	struct fx *f = *state;
	struct chan_state a, b;
	char err[256], tmp[160];
	sample(&a);
	umask(0);
	assert_int_equal(state_save(f->path, &a, err, sizeof err), STATE_OK);
	umask(022);
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(tmp, sizeof tmp, "%s.tmp", f->path);
	assert_int_equal(access(tmp, F_OK), -1); /* nothing left behind */

	/* a replace changes the inode (rename), never rewrites the file in place */
	ino_t before = st.st_ino;
	a.current_rotation = 42;
	strcpy(a.current_key_id, a.pending_key_id);
	a.pending_rotation = 0;
	a.pending_key_id[0] = '\0';
	a.phase = STATE_PHASE_NONE;
	assert_int_equal(state_save(f->path, &a, err, sizeof err), STATE_OK);
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(st.st_ino != before);
	assert_int_equal(state_load(f->path, &b, err, sizeof err), STATE_OK);
	assert_int_equal(b.current_rotation, 42);

	/* a crash mid-write leaves a stale .tmp: the real file is intact */
	write_file(tmp, "{\"version\":1,\"chan", 18, 0600);
	assert_int_equal(state_load(f->path, &b, err, sizeof err), STATE_OK);
	assert_int_equal(b.current_rotation, 42);
	/* and the next save replaces the stale .tmp */
	assert_int_equal(state_save(f->path, &a, err, sizeof err), STATE_OK);
	assert_int_equal(access(tmp, F_OK), -1);

	/* a state that breaks the invariants is never written */
	a.pending_rotation = 5; /* below current, and phase none */
	assert_int_equal(state_save(f->path, &a, err, sizeof err), STATE_E_ARG);
	assert_non_null(strstr(err, "not written"));
	assert_int_equal(state_load(f->path, &b, err, sizeof err), STATE_OK);
	assert_int_equal(b.pending_rotation, 0);

	/* an unwritable folder is an I/O error naming the file */
	char bad[200];
	snprintf(bad, sizeof bad, "%s/no/such/dir/channel-7.json", f->dir);
	sample(&a);
	assert_int_equal(state_save(bad, &a, err, sizeof err), STATE_E_IO);
	assert_non_null(strstr(err, "cannot create"));
}

static void test_missing_and_loose(void **state)
{
	struct fx *f = *state;
	struct chan_state a, b;
	char err[256];
	assert_int_equal(state_load(f->path, &b, err, sizeof err), STATE_E_MISSING);
	assert_non_null(strstr(err, f->path));
	sample(&a);
	assert_int_equal(state_save(f->path, &a, err, sizeof err), STATE_OK);
	assert_int_equal(chmod(f->path, 0666), 0);
	assert_int_equal(state_load(f->path, &b, err, sizeof err), STATE_E_CORRUPT);
	assert_non_null(strstr(err, "writable by group or others"));
	assert_int_equal(chmod(f->path, 0644), 0); /* readable by others: fine, no secret */
	assert_int_equal(state_load(f->path, &b, err, sizeof err), STATE_OK);
}

static void test_truncated_everywhere(void **state)
{
	struct fx *f = *state;
	struct chan_state a, b;
	char err[256];
	sample(&a);
	assert_int_equal(state_save(f->path, &a, err, sizeof err), STATE_OK);
	size_t len;
	char *text = read_file(f->path, &len);
	/* every proper prefix is refused (a complete object needs its last '}') */
	size_t end = len;
	while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == ' '))
		end--;
	for (size_t n = 0; n < end; n++) {
		write_file(f->path, text, n, 0600);
		memset(&b, 0x55, sizeof b);
		struct chan_state keep = b;
		err[0] = '\0';
		assert_int_equal(state_load(f->path, &b, err, sizeof err), STATE_E_CORRUPT);
		assert_non_null(strstr(err, f->path));
		assert_memory_equal(&b, &keep, sizeof b); /* untouched on failure */
	}
	write_file(f->path, text, 0, 0600);
	assert_int_equal(state_load(f->path, &b, err, sizeof err), STATE_E_CORRUPT);
	assert_non_null(strstr(err, "empty file"));
	/* trailing garbage */
	char *more = calloc(1, len + 8);
	assert_non_null(more);
	memcpy(more, text, len);
	memcpy(more + len, "{}", 2);
	write_file(f->path, more, len + 2, 0600);
	assert_int_equal(state_load(f->path, &b, err, sizeof err), STATE_E_CORRUPT);
	free(more);
	free(text);
	/* too large */
	char *big = malloc(STATE_FILE_MAX + 10);
	assert_non_null(big);
	memset(big, ' ', STATE_FILE_MAX + 10);
	write_file(f->path, big, STATE_FILE_MAX + 10, 0600);
	free(big);
	assert_int_equal(state_load(f->path, &b, err, sizeof err), STATE_E_CORRUPT);
	assert_non_null(strstr(err, "larger than"));
}

/* One valid document with one member replaced: each must be refused, naming the member. */
static void test_invalid_members(void **state)
{
	(void)state;
	static const char *const base =
	    "{\"version\":1,\"channel\":7,\"role\":\"slave\",\"epoch\":2,"
	    "\"current\":{\"rotation\":4,\"key_id\":\"k-4\"},"
	    "\"pending\":{\"rotation\":5,\"key_id\":\"k-5\",\"phase\":\"staged\"},"
	    "\"max_rotation\":5,\"last\":{\"rotation\":5,\"result\":\"OK\",\"detail\":\"\"},"
	    "\"marks\":[{\"sender\":\"A\",\"epoch\":1,\"seq\":2}]}";
	struct chan_state s;
	char err[256];
	assert_int_equal(state_parse(base, strlen(base), "F", &s, err, sizeof err), STATE_OK);
	struct {
		const char *from, *to, *expect;
	} cases[] = {
	    {"\"version\":1", "\"version\":2", "version"},
	    {"\"channel\":7", "\"channel\":\"7\"", "channel: must be an integer"},
	    {"\"channel\":7", "\"channel\":0", "channel must be 1"},
	    {"\"channel\":7", "\"channel\":4294967296", "channel"},
	    {"\"epoch\":2", "\"epoch\":-1", "epoch"},
	    {"\"role\":\"slave\"", "\"role\":\"boss\"", "role"},
	    {"\"max_rotation\":5", "\"max_rotation\":5,\"extra\":1", "unknown member \"extra\""},
	    {"\"max_rotation\":5,", "", "\"max_rotation\" is missing"},
	    {"\"phase\":\"staged\"", "\"phase\":\"done\"", "pending.phase"},
	    {"\"phase\":\"staged\"", "\"phase\":\"none\"", "phase none goes with rotation 0"},
	    {"\"key_id\":\"k-5\"", "\"key_id\":\"k 5\"", "pending.key_id"},
	    {"\"key_id\":\"k-5\"", "\"key_id\":\"\"", "pending.key_id missing"},
	    {"\"key_id\":\"k-4\"", "\"key_id\":\"\"", "current"},
	    {"\"rotation\":5,\"key_id\":\"k-5\"", "\"rotation\":3,\"key_id\":\"k-5\"",
	     "not above current"},
	    {"\"max_rotation\":5", "\"max_rotation\":4", "max_rotation 4 is below"},
	    {"\"result\":\"OK\"", "\"result\":\"FINE\"", "last.result"},
	    {"\"detail\":\"\"", "\"detail\":\"a\\u0001b\"", "last.detail"},
	    {"\"seq\":2", "\"seq\":0", "marks[0]"},
	    {"\"sender\":\"A\"", "\"sender\":\"\"", "marks[0].sender"},
	    {"\"marks\":[", "\"marks\":[{\"sender\":\"A\",\"epoch\":1,\"seq\":1},", "twice"},
	    {"\"current\":{", "\"current\":{\"rotation\":1,", "duplicate object key"},
	    {"\"marks\":[{\"sender\":\"A\",\"epoch\":1,\"seq\":2}]", "\"marks\":{}", "marks"},
	    /* counts: optional (older files), strict when present */
	    {"\"max_rotation\":5,", "\"max_rotation\":5,\"counts\":[],",
	     "counts: must be an object"},
	    {"\"max_rotation\":5,", "\"max_rotation\":5,\"counts\":{\"completed\":1,\"failed\":0},",
	     "\"deferred\" is missing"},
	    {"\"max_rotation\":5,",
	     "\"max_rotation\":5,\"counts\":{\"completed\":-1,\"failed\":0,\"deferred\":0},",
	     "counts.completed"},
	    {"\"max_rotation\":5,",
	     "\"max_rotation\":5,\"counts\":{\"completed\":1,\"failed\":0,\"deferred\":0,"
	     "\"x\":1},",
	     "unknown member \"x\""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char doc[2048];
		const char *at = strstr(base, cases[i].from);
		assert_non_null(at);
		size_t pre = (size_t)(at - base);
		snprintf(doc, sizeof doc, "%.*s%s%s", (int)pre, base, cases[i].to,
		         at + strlen(cases[i].from));
		err[0] = '\0';
		enum state_err rc = state_parse(doc, strlen(doc), "F", &s, err, sizeof err);
		if (rc != STATE_E_CORRUPT || strstr(err, cases[i].expect) == NULL ||
		    strncmp(err, "F: ", 3) != 0)
			fail_msg("case %zu (%s): rc %d, err \"%s\"", i, cases[i].to, rc, err);
	}
	/* not an object, not JSON */
	assert_int_equal(state_parse("[]", 2, "F", &s, err, sizeof err), STATE_E_CORRUPT);
	assert_int_equal(state_parse("\x01\x02", 2, "F", &s, err, sizeof err), STATE_E_CORRUPT);
	assert_non_null(strstr(err, "not valid JSON"));
}

static void test_quarantine(void **state)
{
	struct fx *f = *state;
	char err[256], q[200];
	write_file(f->path, "{", 1, 0600);
	assert_int_equal(state_quarantine(f->path, err, sizeof err), 0);
	snprintf(q, sizeof q, "%s.corrupt-1", f->path);
	assert_int_equal(access(q, F_OK), 0);
	assert_int_equal(access(f->path, F_OK), -1);
	write_file(f->path, "{", 1, 0600);
	assert_int_equal(state_quarantine(f->path, err, sizeof err), 0);
	snprintf(q, sizeof q, "%s.corrupt-2", f->path);
	assert_int_equal(access(q, F_OK), 0);
	assert_string_equal(state_phase_name(STATE_PHASE_CONFIRMING), "confirming");
	assert_string_equal(state_err_name(STATE_E_CORRUPT), "corrupt");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mode_and_atomic_replace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_and_loose, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated_everywhere, setup, teardown),
	    cmocka_unit_test(test_invalid_members),
	    cmocka_unit_test_setup_teardown(test_quarantine, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
