/*
 * test_replay.c - high-water marks per (channel, sender), protocol.md §5.2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "replay.h"

static const struct qkd_str A = {"SAE-A", 5}, B = {"SAE-B", 5}, AA = {"SAE-AA", 6};

static void test_first_frame_accepted(void **state)
{
	(void)state;
	struct qkd_replay r;
	assert_int_equal(qkd_replay_init(&r, 4), 0);
	assert_null(qkd_replay_find(&r, 1, &A));
	assert_int_equal(qkd_replay_check(&r, 1, &A, 1, 1), QKD_OK);
	assert_int_equal(qkd_replay_check(&r, 1, &A, 0, 0), QKD_DROP_REPLAY);
	qkd_replay_free(&r);
}

static void test_only_newer_accepted(void **state)
{
	(void)state;
	struct qkd_replay r;
	assert_int_equal(qkd_replay_init(&r, 4), 0);
	assert_int_equal(qkd_replay_update(&r, 1, &A, 5, 100), 0);
	assert_int_equal(qkd_replay_check(&r, 1, &A, 5, 100), QKD_DROP_REPLAY); /* same */
	assert_int_equal(qkd_replay_check(&r, 1, &A, 5, 99), QKD_DROP_REPLAY);  /* older */
	assert_int_equal(qkd_replay_check(&r, 1, &A, 4, 0xFFFFFFFF), QKD_DROP_REPLAY);
	assert_int_equal(qkd_replay_check(&r, 1, &A, 5, 101), QKD_OK);
	assert_int_equal(qkd_replay_check(&r, 1, &A, 6, 1), QKD_OK); /* restart: new epoch */
	/* a lower mark never lowers the table */
	assert_int_equal(qkd_replay_update(&r, 1, &A, 5, 50), 0);
	const struct qkd_replay_mark *m = qkd_replay_find(&r, 1, &A);
	assert_non_null(m);
	assert_int_equal(m->epoch, 5);
	assert_int_equal(m->seq, 100);
	assert_int_equal(qkd_replay_update(&r, 1, &A, 6, 1), 0);
	assert_int_equal(qkd_replay_check(&r, 1, &A, 5, 0xFFFFFFFF), QKD_DROP_REPLAY);
	qkd_replay_free(&r);
}

static void test_marks_are_per_channel_and_sender(void **state)
{
	(void)state;
	struct qkd_replay r;
	assert_int_equal(qkd_replay_init(&r, 4), 0);
	assert_int_equal(qkd_replay_update(&r, 1, &A, 5, 100), 0);
	assert_int_equal(qkd_replay_check(&r, 2, &A, 1, 1), QKD_OK);
	assert_int_equal(qkd_replay_check(&r, 1, &B, 1, 1), QKD_OK);
	assert_int_equal(qkd_replay_check(&r, 1, &AA, 1, 1), QKD_OK); /* prefix is not equal */
	assert_int_equal(qkd_replay_update(&r, 2, &A, 1, 1), 0);
	assert_int_equal(qkd_replay_update(&r, 1, &B, 1, 1), 0);
	assert_int_equal(qkd_replay_check(&r, 1, &A, 5, 100), QKD_DROP_REPLAY);
	assert_int_equal(qkd_replay_check(&r, 2, &A, 1, 1), QKD_DROP_REPLAY);
	qkd_replay_free(&r);
}

static void test_full_table(void **state)
{
	(void)state;
	struct qkd_replay r;
	assert_int_equal(qkd_replay_init(&r, 2), 0);
	assert_int_equal(qkd_replay_update(&r, 1, &A, 1, 1), 0);
	assert_int_equal(qkd_replay_update(&r, 2, &A, 1, 1), 0);
	assert_int_equal(qkd_replay_update(&r, 3, &A, 1, 1), -1);
	assert_int_equal(qkd_replay_update(&r, 2, &A, 1, 2), 0); /* existing pairs still move */
	struct qkd_str empty = {"", 0};
	assert_int_equal(qkd_replay_update(&r, 1, &empty, 1, 1), -1);
	qkd_replay_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_frame_accepted),
	    cmocka_unit_test(test_only_newer_accepted),
	    cmocka_unit_test(test_marks_are_per_channel_and_sender),
	    cmocka_unit_test(test_full_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
