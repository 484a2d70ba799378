/*
 * fuzz_frame.c - libFuzzer target for the frame decoder and receive pipeline.
 *
 * Every input is decoded as an Ethernet frame and run through qkd_rx_frame()
 * with the golden secret on any channel, so structurally valid inputs also
 * reach the ICV and replay checks. Inputs are bounded to the largest frame.
 * Seeds: pcaps/ (tests/fuzz/run.sh extracts the frames).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t SECRET[] = "qkdlink-golden-capture-secret-01";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct qkd_rx rx;
	static int ready;
	if (!ready) {
		struct qkd_ident id = {QKD_OUI_DEFAULT, QKD_PID_DEFAULT};
		struct qkd_key k;
		char err[128];
		if (qkd_rx_init(&rx, &id, 1, 64) != 0 ||
		    qkd_key_init(&k, SECRET, sizeof SECRET - 1, err, sizeof err) != 0 ||
		    qkd_rx_add_secret(&rx, QKD_RX_ANY_CHANNEL, 0, &k) != 0)
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
	free(buf);
	return 0;
}
