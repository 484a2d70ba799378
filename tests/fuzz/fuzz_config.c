/*
 * fuzz_config.c - libFuzzer target for the configuration loader.
 *
 * Every input is the text of a config file: config_parse() runs the JSON
 * parser, the schema walk and the rules between fields. The file checks
 * (config_check_files) are a separate pass and never run here, so the target
 * touches no file system. A config that parses is also summarised, into a
 * memory stream. Seeds: tests/fuzz/corpus/fuzz_config/ (compact valid and
 * broken configs; run.sh caps inputs at 1600 bytes).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int seeded;
	if (!seeded) {
		json_object_seed(1); /* reproducible hashing, and no /dev/urandom read */
		seeded = 1;
	}
	if (size > CONFIG_FILE_MAX)
		return 0;
	/* an exact-size copy, so any read past the end is caught */
	char *buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	struct agent_config cfg;
	char err[CONFIG_ERR_MAX];
	err[0] = '\0';
	int rc = config_parse("fuzz.json", buf, size, &cfg, err, sizeof err);
	free(buf);
	if (rc == 0) {
		static char out[1 << 16];
		FILE *f = fmemopen(out, sizeof out, "w");
		if (f) {
			config_summary(&cfg, f);
			fclose(f);
		}
		/* every channel is consistent */
		for (size_t i = 0; i < cfg.nchannels; i++) {
			const struct config_channel *ch = &cfg.channels[i];
			if (ch->npeers == 0 || ch->nsecrets == 0 ||
			    !ch->secrets[ch->current_secret].current ||
			    (ch->role == QKD_ROLE_SLAVE && ch->npeers != 1) ||
			    config_channel_find(&cfg, ch->id) != ch)
				abort();
		}
		config_free(&cfg);
	} else if (err[0] == '\0' || memchr(err, '\n', strlen(err))) {
		abort(); /* every failure says why, on one line */
	}
	return 0;
}
