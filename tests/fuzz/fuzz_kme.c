/*
 * fuzz_kme.c - libFuzzer target for the ETSI 014 reply parsers (kme_parse.h).
 *
 * The first input byte picks the parser and its expectations; the rest is the
 * reply body: a status, an enc_keys key container (1..4 keys, fixed size or
 * any), a dec_keys key container matched against two fixed key_IDs, or an
 * error body (status 400/401/503/500, JSON or not). Every successful parse
 * is checked for the invariants the client relies on. Bodies are bounded like
 * the client's cap would (64 KiB here). Seeds: tests/fuzz/corpus/fuzz_kme.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kme.h"
#include "kme_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const IDS[2] = {"bc490419-7d60-487f-adc1-4ddcc177c139",
                                   "8844cba7-29e1-3251-a0b1-0123456789ab"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kme_json_init();
	if (size < 1 || size > 65536)
		return 0;
	uint8_t mode = data[0];
	size--;
	/* an exact-size copy, so any read past the end is caught */
	char *body = malloc(size ? size : 1);
	if (body == NULL)
		return 0;
	memcpy(body, data + 1, size);
	struct kme_error err;
	struct kme_keys ks;
	switch (mode % 4) {
	case 0: {
		struct kme_status st;
		if (kme_parse_status(body, size, &st, &err) == 0 &&
		    (!kme_id_valid(st.source_kme_id) || st.key_size < 0))
			abort();
		break;
	}
	case 1: {
		size_t want = 1 + (mode >> 2) % 4;
		size_t bytes = (mode & 0x10) ? 32 : 0;
		if (kme_parse_keys(body, size, want, NULL, bytes, &ks, &err) == 0) {
			if (ks.n != want)
				abort();
			for (size_t i = 0; i < ks.n; i++) {
				if (!kme_id_valid(ks.k[i].id) || ks.k[i].len != ks.k[0].len ||
				    (bytes && ks.k[i].len != bytes))
					abort();
				for (size_t j = 0; j < i; j++)
					if (strcmp(ks.k[i].id, ks.k[j].id) == 0)
						abort();
			}
			kme_keys_free(&ks);
		}
		break;
	}
	case 2:
		if (kme_parse_keys(body, size, 2, IDS, (mode & 0x10) ? 16 : 0, &ks, &err) == 0) {
			if (ks.n != 2 || strcmp(ks.k[0].id, IDS[0]) || strcmp(ks.k[1].id, IDS[1]))
				abort();
			kme_keys_free(&ks);
		}
		break;
	default: {
		static const long codes[4] = {400, 401, 503, 500};
		kme_parse_error_reply(codes[(mode >> 2) % 4], (mode & 0x10) ? "text/html" : NULL,
		                      body, size, &err);
		if (strlen(err.message) >= sizeof err.message || err.code == KME_OK)
			abort();
		(void)kme_msg_not_found(err.message);
		(void)kme_msg_try_later(err.message);
		break;
	}
	}
	free(body);
	return 0;
}
