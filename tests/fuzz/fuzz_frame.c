/*
 * fuzz_frame.c - libFuzzer target for the frame decoder and receive pipeline.
 *
 * Every input is decoded as an Ethernet frame and run through qkd_rx_frame()
 * with the golden secret on any channel, so structurally valid inputs also
 * reach the ICV and replay checks. Inputs are bounded to the largest frame.
 * A second pass re-signs every structurally valid input with the secret, so
 * that mutated frames get past the ICV into the replay logic too (a fresh
 * replay table per input): a frame accepted once must be refused the second
 * time. Seeds: pcaps/ (tests/fuzz/run.sh extracts the frames).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t SECRET[] = "qkdlink-golden-capture-secret-01";

static int rx_setup(struct qkd_rx *rx)
{
	struct qkd_ident id = {QKD_OUI_DEFAULT, QKD_PID_DEFAULT};
	struct qkd_key k;
	char err[128];
	if (qkd_rx_init(rx, &id, 1, 64) != 0 ||
	    qkd_key_init(&k, SECRET, sizeof SECRET - 1, err, sizeof err) != 0 ||
	    qkd_rx_add_secret(rx, QKD_RX_ANY_CHANNEL, 0, &k) != 0)
		return -1;
	return 0;
}

/* the frame with its ICV recomputed, through a receiver with no history */
static void signed_pass(const uint8_t *buf, size_t size)
{
	static struct qkd_rx rx;
	static struct qkd_key key;
	static int ready;
	if (!ready) {
		char err[128];
		if (rx_setup(&rx) != 0 ||
		    qkd_key_init(&key, SECRET, sizeof SECRET - 1, err, sizeof err) != 0)
			abort();
		ready = 1;
	}
	struct qkd_ident id = {QKD_OUI_DEFAULT, QKD_PID_DEFAULT};
	struct qkd_decoded d;
	memset(&d, 0, sizeof d);
	if (qkd_frame_decode(buf, size, &id, &d) != QKD_OK || d.pdu < buf ||
	    d.pdu_len > size - (size_t)(d.pdu - buf))
		return;
	uint8_t *copy = malloc(size);
	if (copy == NULL)
		return;
	memcpy(copy, buf, size);
	qkd_replay_free(&rx.replay);
	if (qkd_pdu_sign(copy + (d.pdu - buf), d.pdu_len, &key) != 0 ||
	    qkd_replay_init(&rx.replay, 64) != 0)
		abort();
	if (qkd_rx_frame(&rx, copy, size, &d) == QKD_OK &&
	    qkd_rx_frame(&rx, copy, size, &d) == QKD_OK)
		abort(); /* the same frame twice: the second is a replay */
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct qkd_rx rx;
	static int ready;
	if (!ready) {
		if (rx_setup(&rx) != 0)
			abort();
		ready = 1;
	}
	if (size > QKD_FRAME_MAX + 64)
		return 0;
	/* an exact-size copy, so any read past the end is caught */
	uint8_t *buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	struct qkd_decoded d;
	enum qkd_drop r = qkd_rx_frame(&rx, buf, size, &d);
	if (r == QKD_OK && d.msg.type == QKD_MSG_ANNOUNCE) {
		/* touch every key_ID: they must lie inside the buffer */
		size_t sum = 0;
		for (size_t i = 0; i < d.msg.u.announce.nkeys; i++)
			sum +=
			    (size_t)d.msg.u.announce.keys[i].ptr[d.msg.u.announce.keys[i].len - 1];
		if (sum == (size_t)-1)
			abort();
	}
	/* the decoder alone, on the PDU view */
	struct qkd_ident id = {QKD_OUI_DEFAULT, QKD_PID_DEFAULT};
	(void)qkd_pdu_decode(buf, size, &id, &d);
	signed_pass(buf, size);
	free(buf);
	return 0;
}
