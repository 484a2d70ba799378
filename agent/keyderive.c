/*
 * keyderive.c - CKN/CAK conventions (see keyderive.h).
 */
#include "keyderive.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static const char HEX[] = "0123456789abcdef";

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
}

void kd_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		OPENSSL_cleanse(p, len);
}

int kd_conv_parse(const char *name, enum kd_conv *out)
{
	if (name != NULL && strcmp(name, "prefix") == 0) {
		*out = KD_CONV_PREFIX;
		return 0;
	}
	if (name != NULL && strcmp(name, "sha256") == 0) {
		*out = KD_CONV_SHA256;
		return 0;
	}
	return -1;
}

const char *kd_conv_name(enum kd_conv c)
{
	return c == KD_CONV_PREFIX ? "prefix" : c == KD_CONV_SHA256 ? "sha256" : "unknown";
}

size_t kd_cak_bytes(const char *suite)
{
	if (suite == NULL)
		return 0;
	if (strcmp(suite, "gcm-aes-128") == 0 || strcmp(suite, "gcm-aes-xpn-128") == 0)
		return 16;
	if (strcmp(suite, "gcm-aes-256") == 0 || strcmp(suite, "gcm-aes-xpn-256") == 0)
		return 32;
	return 0;
}

int kd_ckn(enum kd_conv conv, const char *prefix, const char *key_id, char out[KD_CKN_LEN + 1],
           char *err, size_t errlen)
{
	out[0] = '\0';
	if (key_id == NULL || key_id[0] == '\0')
		return fail(err, errlen, "key_ID is empty");
	size_t n = strlen(key_id);
	if (conv == KD_CONV_SHA256) {
		uint8_t md[SHA256_DIGEST_LENGTH];
		if (SHA256((const uint8_t *)key_id, n, md) == NULL)
			return fail(err, errlen, "SHA-256 failed");
		for (size_t i = 0; i < sizeof md; i++) {
			out[2 * i] = HEX[md[i] >> 4];
			out[2 * i + 1] = HEX[md[i] & 15];
		}
		out[KD_CKN_LEN] = '\0';
		return 0;
	}
	if (conv != KD_CONV_PREFIX)
		return fail(err, errlen, "unknown CKN convention %d", (int)conv);
	if (prefix == NULL || strlen(prefix) != KD_PREFIX_LEN)
		return fail(err, errlen, "CKN prefix must be %d hex digits", KD_PREFIX_LEN);
	for (size_t i = 0; i < KD_PREFIX_LEN; i++)
		if (!is_hex(prefix[i]))
			return fail(err, errlen, "CKN prefix must be %d hex digits", KD_PREFIX_LEN);
	/* 8-4-4-4-12 */
	if (n != 36)
		return fail(err, errlen,
		            "key_ID is not a UUID (36 characters 8-4-4-4-12), needed by the "
		            "prefix convention");
	size_t o = 0;
	for (size_t i = 0; i < KD_PREFIX_LEN; i++)
		out[o++] = lower(prefix[i]);
	for (size_t i = 0; i < n; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? key_id[i] != '-' : !is_hex(key_id[i])) {
			out[0] = '\0';
			return fail(err, errlen,
			            "key_ID is not a UUID (hex digits 8-4-4-4-12), needed by the "
			            "prefix convention");
		}
		if (!dash)
			out[o++] = lower(key_id[i]);
	}
	out[o] = '\0';
	return 0;
}

int kd_cak(const uint8_t *key, size_t keylen, size_t cak_bytes, char *out, size_t outcap, char *err,
           size_t errlen)
{
	if (cak_bytes != 16 && cak_bytes != 32)
		return fail(err, errlen, "CAK size %zu octets is not 16 or 32", cak_bytes);
	if (out == NULL || outcap < 2 * cak_bytes + 1)
		return fail(err, errlen, "CAK buffer too small");
	if (key == NULL || keylen < cak_bytes) {
		kd_wipe(out, outcap);
		return fail(err, errlen, "key has %zu octets, the cipher suite needs %zu", keylen,
		            cak_bytes);
	}
	for (size_t i = 0; i < cak_bytes; i++) {
		out[2 * i] = HEX[key[i] >> 4];
		out[2 * i + 1] = HEX[key[i] & 15];
	}
	out[2 * cak_bytes] = '\0';
	return 0;
}
