/*
 * test_secret.c - secret files: size bounds, permissions, clear errors.
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

#include "secret.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/qkdsecret.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *make(const char *name, size_t len, mode_t mode)
{
	static char path[128];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (size_t i = 0; i < len; i++)
		fputc((int)(i * 7 + 1), f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static void expect_error(const char *path, const char *what)
{
	uint8_t buf[QKD_SECRET_MAX];
	size_t len = 99;
	char err[256] = "";
	assert_int_equal(qkd_secret_read(path, buf, sizeof buf, &len, err, sizeof err), -1);
	assert_int_equal(len, 0);
	if (strstr(err, what) == NULL || strstr(err, path) == NULL)
		fail_msg("error \"%s\" should name %s and say \"%s\"", err, path, what);
}

static void test_good_secret(void **state)
{
	(void)state;
	uint8_t buf[QKD_SECRET_MAX];
	size_t len;
	char err[256];
	const char *p = make("ok", 32, 0600);
	assert_int_equal(qkd_secret_read(p, buf, sizeof buf, &len, err, sizeof err), 0);
	assert_int_equal(len, 32);
	assert_int_equal(buf[1], 8);
	p = make("ro", QKD_SECRET_MAX, 0400);
	assert_int_equal(qkd_secret_read(p, buf, sizeof buf, &len, err, sizeof err), 0);
	assert_int_equal(len, QKD_SECRET_MAX);
	struct qkd_key k;
	assert_int_equal(qkd_key_load(&k, p, err, sizeof err), 0);
	assert_non_null(k.mac);
	qkd_key_clear(&k);
}

static void test_refused(void **state)
{
	(void)state;
	expect_error(make("open", 32, 0644), "0644");
	expect_error(make("grp", 32, 0640), "0640");
	expect_error(make("wr", 32, 0602), "0602");
	expect_error(make("short", 31, 0600), "31 octets");
	expect_error(make("empty", 0, 0600), "0 octets");
	expect_error(make("long", QKD_SECRET_MAX + 1, 0600), "1025 octets");
	char missing[128];
	snprintf(missing, sizeof missing, "%s/none", dir);
	expect_error(missing, "No such file");
	expect_error(dir, "not a regular file");
	struct qkd_key k;
	char err[256] = "";
	assert_int_equal(qkd_key_load(&k, make("open2", 32, 0666), err, sizeof err), -1);
	assert_non_null(strstr(err, "chmod 600"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_secret),
	    cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
