/*
 * fuzz_state.c - libFuzzer target for the per-channel state file parser
 * (agent/state.c). Whatever the bytes, state_parse() either refuses them or
 * returns a state that holds every invariant state_check() knows; a refusal
 * is one line of printable text.
 * Seeds: tests/fuzz/corpus/fuzz_state (valid files of both roles).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chan_state s;
	char err[256];
	if (size > STATE_FILE_MAX + 1)
		return 0;
	err[0] = '\0';
	if (state_parse((const char *)data, size, "fuzz", &s, err, sizeof err) == STATE_OK) {
		if (state_check(&s, err, sizeof err) != STATE_OK)
			abort();
		return 0;
	}
	/* a refusal is one line of printable text, whatever the bytes */
	if (err[0] == '\0')
		abort();
	for (const char *c = err; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			abort();
	return 0;
}
