/*
 * test_epoch.c - the persisted sender epoch: starts at 1, rises at every
 * call, refuses a corrupt file, never leaves a temporary file behind.
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

#include "epoch.h"

static char dir[64], path[128];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/qkdepoch.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/epoch", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void put(const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_counts_up_and_persists(void **state)
{
	(void)state;
	uint32_t e = 0;
	char err[256];
	unlink(path);
	assert_int_equal(qkd_epoch_next(path, &e, err, sizeof err), 0);
	assert_int_equal(e, 1);
	assert_int_equal(qkd_epoch_next(path, &e, err, sizeof err), 0);
	assert_int_equal(e, 2);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char buf[16] = "";
	assert_non_null(fgets(buf, sizeof buf, f));
	fclose(f);
	assert_string_equal(buf, "2\n");
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	char tmp[160];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	assert_int_equal(access(tmp, F_OK), -1);
	put("4294967294\n");
	assert_int_equal(qkd_epoch_next(path, &e, err, sizeof err), 0);
	assert_int_equal(e, 4294967295u);
}

static void test_refuses_bad_files(void **state)
{
	(void)state;
	uint32_t e = 7;
	char err[256] = "";
	const char *bad[] = {"", "abc\n", "-1\n", "12x\n", "4294967296\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		put(bad[i]);
		assert_int_equal(qkd_epoch_next(path, &e, err, sizeof err), -1);
		assert_non_null(strstr(err, path));
		assert_non_null(strstr(err, "number"));
		assert_int_equal(e, 7);
	}
	put("4294967295\n");
	assert_int_equal(qkd_epoch_next(path, &e, err, sizeof err), -1);
	assert_non_null(strstr(err, "exhausted"));
	char missing[160];
	snprintf(missing, sizeof missing, "%s/no/such/dir/epoch", dir);
	assert_int_equal(qkd_epoch_next(missing, &e, err, sizeof err), -1);
	assert_non_null(strstr(err, "No such file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counts_up_and_persists),
	    cmocka_unit_test(test_refuses_bad_files),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
