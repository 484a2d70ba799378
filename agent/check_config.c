/*
 * qkdlinkd-check - validates a qkdlinkd configuration file and prints a
 * summary, exactly as `qkdlinkd --check-config FILE` will (both call
 * config_check_main()). Exit status 0: valid; 1: not (the error on stderr);
 * 2: usage.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: qkdlinkd-check [--no-files] FILE\n"
	           "  checks a qkdlinkd configuration (docs/configuration.md)\n"
	           "  --no-files  check the JSON only, not the files it names\n");
}

int main(int argc, char **argv)
{
	unsigned flags = 0;
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--no-files") == 0) {
			flags |= CONFIG_NO_FILES;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "qkdlinkd-check: unknown option %s\n", argv[i]);
			usage(stderr);
			return 2;
		} else if (path == NULL) {
			path = argv[i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (path == NULL) {
		usage(stderr);
		return 2;
	}
	return config_check_main(path, flags, stdout, stderr);
}
