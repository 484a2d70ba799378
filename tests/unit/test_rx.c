/*
 * test_rx.c - the receive pipeline: lookup, ICV, replay, counters, log limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rx.h"

static const struct qkd_ident IDENT = {QKD_OUI_DEFAULT, QKD_PID_DEFAULT};
static const struct qkd_l2 L2 = {.dst = QKD_DST_DEFAULT, .src = {2, 0, 0, 0, 0, 1}};
static const uint8_t S1[32] = "11111111111111111111111111111111";
static const uint8_t S2[40] = "2222222222222222222222222222222222222222";
static const uint8_t S3[32] = "33333333333333333333333333333333";

static struct qkd_key key(const uint8_t *s, size_t len)
{
	struct qkd_key k;
	char err[128];
	assert_int_equal(qkd_key_init(&k, s, len, err, sizeof err), 0);
	return k;
}

static size_t frame(uint8_t *buf, const uint8_t *secret, size_t slen, uint8_t sid, uint32_t channel,
                    const char *sender, uint32_t epoch, uint32_t seq)
{
	struct qkd_key k = key(secret, slen);
	struct qkd_msg m = {.oui = QKD_OUI_DEFAULT, .pid = QKD_PID_DEFAULT, .type = QKD_MSG_ACK};
	m.secret_id = sid;
	m.channel = channel;
	m.epoch = epoch;
	m.seq = seq;
	m.sender = (struct qkd_str){sender, strlen(sender)};
	m.u.ack.rotation = 1;
	char err[128];
	int n = qkd_frame_encode(&L2, &m, &k, buf, QKD_FRAME_MAX, err, sizeof err);
	assert_true(n > 0);
	qkd_key_clear(&k);
	return (size_t)n;
}

static void rx_setup(struct qkd_rx *rx)
{
	assert_int_equal(qkd_rx_init(rx, &IDENT, 4, 8), 0);
	struct qkd_key k1 = key(S1, sizeof S1), k2 = key(S2, sizeof S2);
	assert_int_equal(qkd_rx_add_secret(rx, 7, 1, &k1), 0);
	assert_int_equal(qkd_rx_add_secret(rx, 7, 2, &k2), 0);
	assert_null(k1.mac); /* ownership moved */
}

static void test_pipeline(void **state)
{
	(void)state;
	struct qkd_rx rx;
	struct qkd_decoded d;
	uint8_t b[QKD_FRAME_MAX];
	rx_setup(&rx);
	size_t n;

	n = frame(b, S1, sizeof S1, 1, 7, "A", 1, 1);
	assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_OK);
	assert_int_equal(d.msg.seq, 1);
	assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_DROP_REPLAY); /* same bytes again */
	/* both secret IDs of the channel work while they overlap */
	n = frame(b, S2, sizeof S2, 2, 7, "A", 1, 2);
	assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_OK);
	/* a secret ID the channel does not have */
	n = frame(b, S2, sizeof S2, 3, 7, "A", 1, 3);
	assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_DROP_UNKNOWN_SECRET);
	/* right ID, wrong secret */
	n = frame(b, S3, sizeof S3, 1, 7, "A", 1, 4);
	assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_DROP_BAD_MAC);
	/* secret 1 under ID 2 */
	n = frame(b, S1, sizeof S1, 2, 7, "A", 1, 5);
	assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_DROP_BAD_MAC);
	/* channel nobody configured */
	n = frame(b, S1, sizeof S1, 1, 8, "A", 1, 6);
	assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_DROP_UNKNOWN_CHANNEL);
	assert_false(qkd_rx_has_channel(&rx, 8));
	assert_true(qkd_rx_has_channel(&rx, 7));
	/* a foreign frame and garbage */
	n = frame(b, S1, sizeof S1, 1, 7, "A", 1, 7);
	b[14] = 0x12;
	assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_DROP_FOREIGN);
	assert_int_equal(qkd_rx_frame(&rx, b, 3, &d), QKD_DROP_NOT_88B7);

	assert_int_equal(rx.count[QKD_OK], 2);
	assert_int_equal(rx.count[QKD_DROP_REPLAY], 1);
	assert_int_equal(rx.count[QKD_DROP_UNKNOWN_SECRET], 1);
	assert_int_equal(rx.count[QKD_DROP_BAD_MAC], 2);
	assert_int_equal(rx.count[QKD_DROP_UNKNOWN_CHANNEL], 1);
	assert_int_equal(rx.count[QKD_DROP_FOREIGN], 1);
	assert_int_equal(rx.count[QKD_DROP_NOT_88B7], 1);
	qkd_rx_free(&rx);
}

/* A forged frame with a huge sequence number must not move the mark. */
static void test_forgery_does_not_move_mark(void **state)
{
	(void)state;
	struct qkd_rx rx;
	struct qkd_decoded d;
	uint8_t b[QKD_FRAME_MAX];
	rx_setup(&rx);
	size_t n = frame(b, S3, sizeof S3, 1, 7, "A", 0xFFFFFFFF, 0xFFFFFFFF);
	assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_DROP_BAD_MAC);
	n = frame(b, S1, sizeof S1, 1, 7, "A", 1, 1);
	assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_OK);
	/* an older frame of another sender is independent */
	n = frame(b, S1, sizeof S1, 1, 7, "B", 1, 1);
	assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_OK);
	qkd_rx_free(&rx);
}

static void test_any_channel_and_duplicates(void **state)
{
	(void)state;
	struct qkd_rx rx;
	struct qkd_decoded d;
	uint8_t b[QKD_FRAME_MAX];
	assert_int_equal(qkd_rx_init(&rx, &IDENT, 2, 1), 0);
	struct qkd_key k = key(S1, sizeof S1), k2 = key(S1, sizeof S1), k3 = key(S1, sizeof S1);
	assert_int_equal(qkd_rx_add_secret(&rx, QKD_RX_ANY_CHANNEL, 0, &k), 0);
	assert_int_equal(qkd_rx_add_secret(&rx, QKD_RX_ANY_CHANNEL, 0, &k2), -1); /* same slot */
	assert_int_equal(qkd_rx_add_secret(&rx, 5, 0, &k2), 0);
	assert_int_equal(qkd_rx_add_secret(&rx, 6, 0, &k3), -1); /* full */
	qkd_key_clear(&k3);
	size_t n = frame(b, S1, sizeof S1, 0, 12345, "A", 1, 1);
	assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_OK);
	/* the replay table holds one pair: a second sender is refused, not trusted */
	n = frame(b, S1, sizeof S1, 0, 12345, "B", 1, 1);
	assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_DROP_PEER_LIMIT);
	assert_int_equal(rx.count[QKD_DROP_PEER_LIMIT], 1);
	qkd_rx_free(&rx);
}

/* Every secret ID 0..255 selects its own secret, and only that one. */
static void test_every_secret_id(void **state)
{
	(void)state;
	uint8_t b[QKD_FRAME_MAX];
	struct qkd_decoded d;
	for (unsigned id = 0; id <= 255; id++) {
		struct qkd_rx rx;
		assert_int_equal(qkd_rx_init(&rx, &IDENT, 2, 2), 0);
		struct qkd_key k1 = key(S1, sizeof S1), k3 = key(S3, sizeof S3);
		assert_int_equal(qkd_rx_add_secret(&rx, 7, (uint8_t)id, &k1), 0);
		assert_int_equal(qkd_rx_add_secret(&rx, 7, (uint8_t)(id + 1), &k3), 0);
		size_t n = frame(b, S1, sizeof S1, (uint8_t)id, 7, "A", 1, 1);
		assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_OK);
		assert_int_equal(d.msg.secret_id, id);
		n = frame(b, S1, sizeof S1, (uint8_t)(id + 1), 7, "A", 1, 2);
		assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_DROP_BAD_MAC);
		n = frame(b, S3, sizeof S3, (uint8_t)(id + 1), 7, "A", 1, 3);
		assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_OK);
		n = frame(b, S1, sizeof S1, (uint8_t)(id + 2), 7, "A", 1, 4);
		assert_int_equal(qkd_rx_frame(&rx, b, n, &d), QKD_DROP_UNKNOWN_SECRET);
		qkd_rx_free(&rx);
	}
}

static void test_log_rate_limit(void **state)
{
	(void)state;
	struct qkd_rx rx;
	uint64_t sup;
	assert_int_equal(qkd_rx_init(&rx, &IDENT, 1, 1), 0);
	assert_true(qkd_rx_should_log(&rx, QKD_DROP_BAD_MAC, 1000, &sup));
	assert_int_equal(sup, 0);
	for (int i = 0; i < 5; i++)
		assert_false(qkd_rx_should_log(&rx, QKD_DROP_BAD_MAC, 1000 + i, &sup));
	assert_true(qkd_rx_should_log(&rx, QKD_DROP_REPLAY, 1001, &sup)); /* per reason */
	assert_false(qkd_rx_should_log(&rx, QKD_DROP_BAD_MAC, 1009, &sup));
	assert_true(qkd_rx_should_log(&rx, QKD_DROP_BAD_MAC, 1010, &sup));
	assert_int_equal(sup, 6);
	assert_false(qkd_rx_should_log(&rx, QKD_DROP_FOREIGN, 5000, &sup));
	assert_false(qkd_rx_should_log(&rx, QKD_OK, 5000, &sup));
	assert_false(qkd_rx_should_log(&rx, QKD_DROP_COUNT, 5000, &sup));
	qkd_rx_free(&rx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pipeline),
	    cmocka_unit_test(test_forgery_does_not_move_mark),
	    cmocka_unit_test(test_any_channel_and_duplicates),
	    cmocka_unit_test(test_every_secret_id),
	    cmocka_unit_test(test_log_rate_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
