/*
 * fuzz_control.c - libFuzzer target for both ends of the control socket
 * (agent/control.c). An even first byte: the rest is a request line as
 * qkdlinkd reads it (control_parse()); a request that parses must print and
 * parse back to itself. An odd first byte: the rest is an answer as
 * qkdlinkctl reads it (json_loads, then control_status_print() into a
 * memory stream). Inputs are bounded to 64 KiB (requests are refused over
 * CONTROL_LINE_MAX long before). Seeds: tests/fuzz/corpus/fuzz_control;
 * dictionary: tests/fuzz/fuzz_control.dict.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void request(const char *line, size_t len)
{
	struct control_request rq, again;
	char err[256];
	err[0] = '\0';
	if (control_parse(line, len, &rq, err, sizeof err) != 0) {
		if (err[0] == '\0' || memchr(err, '\n', strlen(err)))
			abort(); /* every refusal says why, on one line */
		return;
	}
	char text[64];
	if (rq.cmd == CONTROL_ROTATE)
		snprintf(text, sizeof text, "rotate %u\n", (unsigned)rq.channel);
	else
		snprintf(text, sizeof text, "%s\n", rq.cmd == CONTROL_STATUS ? "status" : "reload");
	if (rq.cmd < CONTROL_STATUS || rq.cmd > CONTROL_RELOAD ||
	    (rq.cmd == CONTROL_ROTATE && rq.channel == 0) ||
	    control_parse(text, strlen(text), &again, err, sizeof err) != 0 ||
	    again.cmd != rq.cmd || again.channel != rq.channel)
		abort();
}

static void answer(const char *text, size_t len)
{
	json_error_t je;
	json_t *reply = json_loadb(text, len, JSON_DISABLE_EOF_CHECK, &je);
	if (reply == NULL)
		return;
	(void)json_string_value(json_object_get(reply, "error"));
	static char out[1 << 16];
	FILE *f = fmemopen(out, sizeof out, "w");
	if (f) {
		(void)control_status_print(reply, f);
		fclose(f);
	}
	json_decref(reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int seeded;
	if (!seeded) {
		json_object_seed(1); /* reproducible hashing, and no /dev/urandom read */
		seeded = 1;
	}
	if (size < 1 || size > 65536)
		return 0;
	/* an exact-size copy, so any read past the end is caught */
	char *buf = malloc(size - 1 ? size - 1 : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, size - 1);
	if (data[0] & 1)
		answer(buf, size - 1);
	else
		request(buf, size - 1);
	free(buf);
	return 0;
}
