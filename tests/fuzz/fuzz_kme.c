/*
 * fuzz_kme.c - libFuzzer target for the ETSI 014 reply parsers (kme_parse.h).
 *
 * The first input byte picks the parser and its expectations; the rest is the
 * reply body: a status, an enc_keys key container (1..4 keys, fixed size or
 * any), a dec_keys key container matched against two fixed key_IDs, or an
 * error body (status 400/401/503/500, JSON or not). Every successful parse
 * is checked for the invariants the client relies on; a parsed status also
 * goes through kme_check_enc(). With bit 0x20 set in an error-body mode, the
 * first line of the body is the reply's Content-Type (kme_ctype_json() and
 * the error parser see what a KME sent, as kme_client.c passes it on).
 * Bodies are bounded like the client's cap would (64 KiB here).
 * Seeds: tests/fuzz/corpus/fuzz_kme; dictionary: tests/fuzz/fuzz_kme.dict.
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

/* what a failure says goes to logs: printable ASCII only, never quoting key
 * material or control characters from a reply */
static void check_text(const struct kme_error *err)
{
	for (const char *c = err->text; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			abort();
}

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
	memset(&err, 0, sizeof err);
	struct kme_keys ks;
	switch (mode % 4) {
	case 0: {
		struct kme_status st;
		if (kme_parse_status(body, size, &st, &err) == 0) {
			if (!kme_id_valid(st.source_kme_id) || st.key_size < 0)
				abort();
			/* the limits the KME announced, against a request */
			struct kme_enc_req rq = {.number = 1u + (mode >> 5), .size = 256};
			if (kme_check_enc(&st, &rq, &err) != 0 && err.code == KME_OK)
				abort();
		}
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
		const char *ctype = (mode & 0x10) ? "text/html" : NULL;
		char line[256];
		const char *rest = body;
		size_t rlen = size;
		if (mode & 0x20) {
			/* "Content-Type\nbody": a header never holds a NUL or a newline */
			const char *nl = memchr(body, '\n', size);
			size_t n = nl ? (size_t)(nl - body) : size;
			if (n >= sizeof line || memchr(body, '\0', n) != NULL)
				break;
			memcpy(line, body, n);
			line[n] = '\0';
			ctype = line;
			rest = nl ? nl + 1 : body + size;
			rlen = size - (size_t)(rest - body);
		}
		(void)kme_ctype_json(ctype);
		kme_parse_error_reply(codes[(mode >> 2) % 4], ctype, rest, rlen, &err);
		if (strlen(err.message) >= sizeof err.message || err.code == KME_OK)
			abort();
		(void)kme_msg_not_found(err.message);
		(void)kme_msg_try_later(err.message);
		break;
	}
	}
	check_text(&err);
	free(body);
	return 0;
}
