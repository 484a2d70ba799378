/*
 * fuzz_nc_framing.c - libFuzzer target for the RFC 6242 decoder.
 *
 * The first byte picks the framing and how the rest is cut into reads (the
 * decoder must give the same messages however its input is split); messages
 * are bounded to 4 KiB so the limit paths are reached. Every message handed
 * out must be NUL-terminated at its stated length, and a chunked stream
 * re-encoded and decoded again must give the same message back.
 * With bits 0 and 7 both set the stream starts in end-of-message framing and
 * switches to chunked after its first message, as a session does after the
 * hellos (nc_framer_set_mode() with the rest of the read still pending).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nc_framing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	enum nc_framing mode = (data[0] & 1) ? NC_FRAMING_CHUNKED : NC_FRAMING_EOM;
	int switch_after_hello = (data[0] & 0x81) == 0x81;
	if (switch_after_hello)
		mode = NC_FRAMING_EOM;
	size_t step = (size_t)(data[0] >> 1) + 1; /* 1..128 bytes per read */
	data++;
	size--;
	/* an exact-size copy, so any read past the end is caught */
	uint8_t *buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	struct nc_framer f;
	if (nc_framer_init(&f, mode, 4096) != 0) {
		free(buf);
		return 0;
	}
	size_t off = 0;
	while (off < size) {
		size_t n = size - off < step ? size - off : step;
		size_t used;
		enum nc_feed r = nc_framer_feed(&f, buf + off, n, &used);
		if (used > n)
			abort();
		off += used;
		if (r == NC_FEED_ERR)
			break;
		if (r == NC_FEED_MSG) {
			size_t ml;
			const char *m = nc_framer_msg(&f, &ml);
			if (m == NULL || m[ml] != '\0' || ml > 4096)
				abort();
			char *enc;
			size_t elen;
			if (nc_frame_encode(NC_FRAMING_CHUNKED, m, ml, &enc, &elen) == 0) {
				struct nc_framer g;
				if (nc_framer_init(&g, NC_FRAMING_CHUNKED, 4096) == 0) {
					size_t u;
					if (nc_framer_feed(&g, enc, elen, &u) != NC_FEED_MSG ||
					    u != elen)
						abort();
					size_t gl;
					const char *gm = nc_framer_msg(&g, &gl);
					if (gl != ml || memcmp(gm, m, ml) != 0)
						abort();
					nc_framer_free(&g);
				}
				free(enc);
			}
			nc_framer_next(&f);
			if (switch_after_hello) {
				switch_after_hello = 0;
				if (nc_framer_set_mode(&f, NC_FRAMING_CHUNKED) != 0)
					break;
			}
		}
	}
	nc_framer_free(&f);
	free(buf);
	return 0;
}
