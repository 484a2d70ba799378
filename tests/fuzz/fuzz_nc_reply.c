/*
 * fuzz_nc_reply.c - libFuzzer target for everything that reads a router's
 * XML: the hello parser, the <rpc-reply> parser (structured rpc-error), the
 * MACsec read-back (with and without an interface binding, as nc_read_ca()
 * does) and the log redaction, on the same input.
 * Dictionary: tests/fuzz/fuzz_nc_reply.dict.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "nc_macsec.h"
#include "nc_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	char *buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	struct nc_error e;
	nc_error_clear(&e);
	struct nc_hello h;
	if (nc_hello_parse(buf, size, &h, &e) == NC_OK) {
		(void)nc_hello_has(&h, NC_CAP_CANDIDATE);
		(void)nc_hello_has(&h, NC_CAP_BASE10);
		(void)nc_hello_has(&h, NC_CAP_BASE11);
		nc_hello_free(&h);
	}
	nc_error_clear(&e);
	struct nc_reply r;
	if (nc_reply_parse(buf, size, &r, &e) == NC_OK) {
		if (e.nrpc < 0 || e.nrpc > NC_RPC_ERRORS_MAX)
			abort();
		for (int i = 0; i < e.nrpc; i++)
			if (strlen(e.rpc[i].path) >= sizeof e.rpc[i].path ||
			    strlen(e.rpc[i].bad_value) >= sizeof e.rpc[i].bad_value)
				abort();
		if (r.data) {
			struct nc_macsec_state st;
			nc_macsec_read(r.data, "CA1", "et-0/0/1", &st);
			struct nc_macsec_ca ca = {.name = "CA1",
			                          .cipher_suite = "gcm-aes-128",
			                          .ckn = "abcd",
			                          .cak = "00112233445566778899aabbccddeeff",
			                          .ifname = "et-0/0/1"};
			(void)nc_macsec_verify(&ca, &st, &e);
			nc_macsec_read(r.data, "CA1", NULL, &st);
			ca.ifname = NULL;
			(void)nc_macsec_verify(&ca, &st, &e);
		}
		char fmt[1024];
		nc_error_format(&e, fmt, sizeof fmt);
		nc_reply_free(&r);
	}
	char *red = nc_redact(buf, size);
	free(red);
	free(buf);
	return 0;
}
