/*
 * test_control.c - the control protocol of qkdlinkd (agent/control.h):
 * request parsing, the status object, replies and the text rendering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control.h"

static int parse(const char *line, struct control_request *rq, char *err, size_t errlen)
{
	return control_parse(line, strlen(line), rq, err, errlen);
}

static void test_parse_ok(void **state)
{
	(void)state;
	struct control_request rq;
	char err[128];
	assert_int_equal(parse("status\n", &rq, err, sizeof err), 0);
	assert_int_equal(rq.cmd, CONTROL_STATUS);
	assert_int_equal(parse("status\r\n", &rq, err, sizeof err), 0);
	assert_int_equal(parse("reload", &rq, err, sizeof err), 0);
	assert_int_equal(rq.cmd, CONTROL_RELOAD);
	assert_int_equal(parse("rotate 7\n", &rq, err, sizeof err), 0);
	assert_int_equal(rq.cmd, CONTROL_ROTATE);
	assert_int_equal(rq.channel, 7);
	assert_int_equal(parse("rotate  4294967295", &rq, err, sizeof err), 0);
	assert_int_equal(rq.channel, 4294967295u);
}

static void test_parse_bad(void **state)
{
	(void)state;
	struct control_request rq;
	char err[128];
	static const struct {
		const char *line, *want;
	} bad[] = {
	    {"", "empty request"},
	    {"\n", "empty request"},
	    {"   ", "empty request"},
	    {"frobnicate", "unknown command \"frobnicate\""},
	    {"status now", "status takes no argument"},
	    {"reload x", "reload takes no argument"},
	    {"rotate", "usage: rotate CHANNEL"},
	    {"rotate 1 2", "usage: rotate CHANNEL"},
	    {"rotate 0", "is not a channel number"},
	    {"rotate -1", "is not a channel number"},
	    {"rotate +1", "is not a channel number"},
	    {"rotate 4294967296", "is not a channel number"},
	    {"rotate 99999999999999999999999", "is not a channel number"},
	    {"rotate 7x", "is not a channel number"},
	    {"rotate\x01 7", "control or non-ASCII"},
	    {"status\xff", "control or non-ASCII"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		assert_int_equal(parse(bad[i].line, &rq, err, sizeof err), -1);
		if (!strstr(err, bad[i].want))
			fail_msg("\"%s\": got \"%s\", want \"%s\"", bad[i].line, err, bad[i].want);
	}
	char longline[CONTROL_LINE_MAX + 10];
	memset(longline, 'a', sizeof longline - 1);
	longline[sizeof longline - 1] = '\0';
	assert_int_equal(parse(longline, &rq, err, sizeof err), -1);
	assert_non_null(strstr(err, "longer than"));
	/* an embedded NUL is a control octet, not the end of the line */
	assert_int_equal(control_parse("status\0x", 8, &rq, err, sizeof err), -1);
}

static struct control_channel *two_channels(void)
{
	static struct control_channel c[2];
	memset(c, 0, sizeof c);
	c[0].id = 7;
	c[0].ca_name = "CA7";
	c[0].st.role = QKD_ROLE_MASTER;
	c[0].st.state = "IDLE";
	c[0].st.current_key_id = "2589a910-279b-463e-bcfa-a94ed3a9f6cd";
	c[0].st.current_rotation = 3;
	c[0].st.last_rotation = 3;
	c[0].st.last_result = QKD_RES_OK;
	c[0].st.last_detail = "";
	c[0].st.rotations_ok = 3;
	c[0].st.rotations_failed = 1;
	c[0].st.npeers = 1;
	c[0].st.peers[0].sae = "SAE-B";
	c[0].st.peers[0].heard = true;
	c[0].st.peers[0].alive = true;
	c[0].st.peers[0].since_ms = 1500;
	c[0].has_metrics = true;
	c[0].metrics = (struct rot_metrics){.rotation = 3,
	                                    .ok = true,
	                                    .result = QKD_RES_OK,
	                                    .duration_ms = 35,
	                                    .skew_ms = 3,
	                                    .confirm_skew_ms = 7,
	                                    .diverged_ms = 3,
	                                    .kme_ms = 2,
	                                    .stage_ms = 8,
	                                    .ack_ms = 13,
	                                    .confirm_ms = 4};
	c[0].busy_us = 6300;
	c[0].persist_us = 5400;
	c[1].id = 8;
	c[1].ca_name = "CA8";
	c[1].st.role = QKD_ROLE_SLAVE;
	c[1].st.state = "FETCHING";
	c[1].st.pending_rotation = 9;
	c[1].st.pending_key_id = "k9";
	c[1].st.npeers = 1;
	c[1].st.peers[0].sae = "SAE-C";
	c[1].st.peers[0].since_ms = -1;
	return c;
}

static void channel_at(void *arg, size_t i, struct control_channel *out)
{
	*out = ((const struct control_channel *)arg)[i];
}

static int to_memstream(const char *buf, size_t size, void *arg)
{
	return fwrite(buf, 1, size, arg) == size ? 0 : -1;
}

/* control_status_write() into a string, parsed back: the text must be one
 * line of valid JSON. */
static json_t *status_json(const struct control_status *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(control_status_write(s, to_memstream, f), 0);
	fclose(f);
	assert_null(memchr(buf, '\n', len));
	json_error_t je;
	json_t *j = json_loadb(buf, len, 0, &je);
	free(buf);
	assert_non_null(j);
	return j;
}

static int fail_after_100(const char *buf, size_t size, void *arg)
{
	(void)buf;
	size_t *n = arg;
	*n += size;
	return *n > 100 ? -1 : 0;
}

static void test_status_json(void **state)
{
	(void)state;
	struct control_status s = {.sae_id = "SAE-A",
	                           .channel = channel_at,
	                           .channel_arg = two_channels(),
	                           .nchannels = 2,
	                           .cert_known = true,
	                           .cert_days = 12,
	                           .ca_days = 400,
	                           .warn_days = 30};
	s.frames[QKD_OK] = 42;
	s.frames[QKD_DROP_BAD_MAC] = 2;
	s.ring_full = 5000000000ULL; /* past 32 bits */
	json_t *j = status_json(&s);
	/* a failing output ends the write with -1 */
	size_t written = 0;
	assert_int_equal(control_status_write(&s, fail_after_100, &written), -1);
	assert_string_equal(json_string_value(json_object_get(j, "sae_id")), "SAE-A");
	json_t *chs = json_object_get(j, "channels");
	assert_int_equal(json_array_size(chs), 2);
	json_t *c0 = json_array_get(chs, 0), *c1 = json_array_get(chs, 1);
	assert_int_equal(json_integer_value(json_object_get(c0, "id")), 7);
	assert_string_equal(json_string_value(json_object_get(c0, "role")), "master");
	assert_string_equal(json_string_value(json_object_get(c0, "state")), "IDLE");
	assert_string_equal(json_string_value(json_object_get(c0, "current_key_id")),
	                    "2589a910-279b-463e-bcfa-a94ed3a9f6cd");
	assert_string_equal(json_string_value(json_object_get(c0, "last_result")), "OK");
	assert_true(json_is_null(json_object_get(c0, "last_detail")));
	json_t *lr = json_object_get(c0, "last_rotation");
	assert_int_equal(json_integer_value(json_object_get(lr, "duration_ms")), 35);
	assert_int_equal(json_integer_value(json_object_get(lr, "skew_ms")), 3);
	assert_int_equal(json_integer_value(json_object_get(lr, "diverged_ms")), 3);
	assert_int_equal(json_integer_value(json_object_get(lr, "kme_ms")), 2);
	assert_int_equal(json_integer_value(json_object_get(lr, "stage_ms")), 8);
	assert_int_equal(json_integer_value(json_object_get(lr, "ack_ms")), 13);
	assert_int_equal(json_integer_value(json_object_get(lr, "confirm_ms")), 4);
	assert_int_equal(json_integer_value(json_object_get(c0, "agent_busy_us")), 6300);
	assert_int_equal(json_integer_value(json_object_get(c0, "agent_persist_us")), 5400);
	assert_int_equal(json_integer_value(json_object_get(c0, "rotations_completed")), 3);
	assert_int_equal(json_integer_value(json_object_get(c0, "rotations_failed")), 1);
	json_t *p0 = json_array_get(json_object_get(c0, "peers"), 0);
	assert_string_equal(json_string_value(json_object_get(p0, "sae_id")), "SAE-B");
	assert_true(json_is_true(json_object_get(p0, "alive")));
	assert_true(json_real_value(json_object_get(p0, "last_heard_s")) == 1.5);

	assert_string_equal(json_string_value(json_object_get(c1, "role")), "slave");
	assert_true(json_is_null(json_object_get(c1, "current_key_id")));
	assert_true(json_is_null(json_object_get(c1, "last_result")));
	assert_true(json_is_null(json_object_get(c1, "last_rotation")));
	assert_int_equal(json_integer_value(json_object_get(c1, "pending_rotation")), 9);
	json_t *p1 = json_array_get(json_object_get(c1, "peers"), 0);
	assert_true(json_is_false(json_object_get(p1, "alive")));
	assert_true(json_is_null(json_object_get(p1, "last_heard_s")));

	json_t *fr = json_object_get(j, "frames");
	assert_int_equal(json_integer_value(json_object_get(fr, "accepted")), 42);
	json_t *dr = json_object_get(fr, "dropped");
	assert_int_equal(json_object_size(dr), QKD_DROP_COUNT); /* every reason and ring_full */
	assert_int_equal(json_integer_value(json_object_get(dr, "bad_mac")), 2);
	assert_int_equal(json_integer_value(json_object_get(dr, "replay")), 0);
	assert_true(json_integer_value(json_object_get(dr, "ring_full")) == 5000000000LL);

	json_t *k = json_object_get(j, "kme");
	assert_int_equal(json_integer_value(json_object_get(k, "cert_days_left")), 12);
	assert_int_equal(json_integer_value(json_object_get(k, "ca_days_left")), 400);
	assert_true(json_is_true(json_object_get(k, "warning")));

	/* the text rendering */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(control_status_print(j, f), 0);
	fclose(f);
	assert_non_null(strstr(buf, "agent SAE-A\n"));
	assert_non_null(strstr(buf, "client 12 days left, CA 400 days left (WARNING"));
	assert_non_null(strstr(buf, "channel 7 (CA7): master, IDLE\n"));
	assert_non_null(strstr(buf, "last rotation 3: OK, 35 ms, skew 3 ms"));
	assert_non_null(strstr(buf, "peer SAE-B: alive, last heard 1.5 s ago"));
	assert_non_null(strstr(buf, "channel 8 (CA8): slave, FETCHING\n"));
	assert_non_null(strstr(buf, "pending rotation 9 key_ID k9"));
	assert_non_null(strstr(buf, "peer SAE-C: dead, never heard"));
	assert_non_null(strstr(buf, "frames: 42 accepted, 2 bad_mac, 5000000000 ring_full\n"));
	free(buf);
	json_decref(j);
}

static void test_status_empty_and_unknown_cert(void **state)
{
	(void)state;
	struct control_status s = {.sae_id = "X", .nchannels = 0};
	json_t *j = status_json(&s);
	assert_int_equal(json_array_size(json_object_get(j, "channels")), 0);
	json_t *k = json_object_get(j, "kme");
	assert_true(json_is_null(json_object_get(k, "cert_days_left")));
	assert_true(json_is_false(json_object_get(k, "warning")));
	json_decref(j);
}

static void test_reply_and_print_refusal(void **state)
{
	(void)state;
	json_t *ok = control_reply(NULL);
	assert_true(json_is_true(json_object_get(ok, "ok")));
	assert_null(json_object_get(ok, "error"));
	/* not a status object */
	FILE *f = fopen("/dev/null", "w");
	assert_non_null(f);
	assert_int_equal(control_status_print(ok, f), -1);
	json_decref(ok);
	json_t *no = control_reply("no channel 12");
	assert_true(json_is_false(json_object_get(no, "ok")));
	assert_string_equal(json_string_value(json_object_get(no, "error")), "no channel 12");
	json_t *arr = json_array();
	assert_int_equal(control_status_print(arr, f), -1);
	json_decref(arr);
	json_decref(no);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_ok),
	    cmocka_unit_test(test_parse_bad),
	    cmocka_unit_test(test_status_json),
	    cmocka_unit_test(test_status_empty_and_unknown_cert),
	    cmocka_unit_test(test_reply_and_print_refusal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
