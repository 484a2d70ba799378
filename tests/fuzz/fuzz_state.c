/*
 * fuzz_state.c - libFuzzer target for the per-channel state file parser
 * (agent/state.c). Whatever the bytes, state_parse() either refuses them or
 * returns a state that holds every invariant state_check() knows.
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
	if (state_parse((const char *)data, size, "fuzz", &s, err, sizeof err) == STATE_OK &&
	    state_check(&s, err, sizeof err) != STATE_OK)
		abort();
	return 0;
}
