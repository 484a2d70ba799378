/*
 * test_keyderive.c - CKN/CAK conventions against fixed vectors (SHA-256
 * values computed independently with Python's hashlib).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keyderive.h"

static const char *PREFIX = "0123456789ABCDEF0123456789abcdef";

static void test_prefix(void **state)
{
	(void)state;
	char ckn[KD_CKN_LEN + 1], err[160];
	assert_int_equal(kd_ckn(KD_CONV_PREFIX, PREFIX, "bc490419-7d60-487f-adc1-4ddcc177c139", ckn,
	                        err, sizeof err),
	                 0);
	assert_string_equal(ckn, "0123456789abcdef0123456789abcdef"
	                         "bc4904197d60487fadc14ddcc177c139");
	assert_int_equal(strlen(ckn), 64);
	/* upper-case key_IDs give the same lower-case CKN */
	assert_int_equal(kd_ckn(KD_CONV_PREFIX, PREFIX, "BC490419-7D60-487F-ADC1-4DDCC177C139", ckn,
	                        err, sizeof err),
	                 0);
	assert_string_equal(ckn + 32, "bc4904197d60487fadc14ddcc177c139");
}

static void test_prefix_refuses(void **state)
{
	(void)state;
	char ckn[KD_CKN_LEN + 1], err[160];
	const char *bad_ids[] = {"key-1", "bc490419-7d60-487f-adc1-4ddcc177c13",
	                         "bc490419-7d60-487f-adc1-4ddcc177c13g",
	                         "bc4904197-d60-487f-adc1-4ddcc177c139", ""};
	for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
		err[0] = '\0';
		assert_int_equal(kd_ckn(KD_CONV_PREFIX, PREFIX, bad_ids[i], ckn, err, sizeof err),
		                 -1);
		assert_true(err[0] != '\0');
		assert_string_equal(ckn, "");
	}
	const char *bad_prefixes[] = {"0123", "0123456789abcdef0123456789abcdeg", NULL};
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(kd_ckn(KD_CONV_PREFIX, bad_prefixes[i],
		                        "bc490419-7d60-487f-adc1-4ddcc177c139", ckn, err,
		                        sizeof err),
		                 -1);
	assert_non_null(strstr(err, "prefix"));
}

static void test_sha256(void **state)
{
	(void)state;
	char ckn[KD_CKN_LEN + 1], err[160];
	assert_int_equal(kd_ckn(KD_CONV_SHA256, NULL, "bc490419-7d60-487f-adc1-4ddcc177c139", ckn,
	                        err, sizeof err),
	                 0);
	assert_string_equal(ckn,
	                    "c477bd366293fef23ed55ac40f08ae9733d69533d583a7c09d3403c171a9b497");
	/* the key_ID's ASCII as given: case matters */
	assert_int_equal(kd_ckn(KD_CONV_SHA256, NULL, "B3F5A1C2-7D4E-4F1A-9C3B-2E8D6F0A1B2C", ckn,
	                        err, sizeof err),
	                 0);
	assert_string_equal(ckn,
	                    "1d0c2cb8e38061c01193d4847bf9569da14609db24e989e20057081adda17eed");
	/* any key_ID, not only UUIDs */
	assert_int_equal(kd_ckn(KD_CONV_SHA256, NULL, "key-1", ckn, err, sizeof err), 0);
	assert_string_equal(ckn,
	                    "be2974546978e3739e6d6da85c4be9f334ce32df2b9fd4b6ff1b55c0d57e9d44");
	assert_int_equal(kd_ckn(KD_CONV_SHA256, NULL, "", ckn, err, sizeof err), -1);
}

static void test_cak(void **state)
{
	(void)state;
	uint8_t key[64];
	for (size_t i = 0; i < sizeof key; i++)
		key[i] = (uint8_t)(i * 17 + 1);
	char cak[KD_CAK_HEX_MAX + 1], err[160];
	assert_int_equal(kd_cak(key, sizeof key, 16, cak, sizeof cak, err, sizeof err), 0);
	assert_string_equal(cak, "0112233445566778899aabbccddeef00");
	assert_int_equal(kd_cak(key, 32, 32, cak, sizeof cak, err, sizeof err), 0);
	assert_string_equal(cak, "0112233445566778899aabbccddeef00"
	                         "112233445566778899aabbccddeeff10");
	assert_int_equal(strlen(cak), 64);
	/* short key, bad size, small buffer: refused, buffer wiped */
	assert_int_equal(kd_cak(key, 31, 32, cak, sizeof cak, err, sizeof err), -1);
	assert_non_null(strstr(err, "31 octets"));
	for (size_t i = 0; i < sizeof cak; i++)
		assert_int_equal(cak[i], 0);
	assert_int_equal(kd_cak(key, 64, 24, cak, sizeof cak, err, sizeof err), -1);
	assert_int_equal(kd_cak(key, 64, 32, cak, 64, err, sizeof err), -1);
	kd_wipe(key, sizeof key);
	for (size_t i = 0; i < sizeof key; i++)
		assert_int_equal(key[i], 0);
}

static void test_suites_and_names(void **state)
{
	(void)state;
	assert_int_equal(kd_cak_bytes("gcm-aes-128"), 16);
	assert_int_equal(kd_cak_bytes("gcm-aes-xpn-128"), 16);
	assert_int_equal(kd_cak_bytes("gcm-aes-256"), 32);
	assert_int_equal(kd_cak_bytes("gcm-aes-xpn-256"), 32);
	assert_int_equal(kd_cak_bytes("gcm-aes-192"), 0);
	assert_int_equal(kd_cak_bytes(NULL), 0);
	enum kd_conv c;
	assert_int_equal(kd_conv_parse("prefix", &c), 0);
	assert_int_equal(c, KD_CONV_PREFIX);
	assert_int_equal(kd_conv_parse("sha256", &c), 0);
	assert_int_equal(c, KD_CONV_SHA256);
	assert_int_equal(kd_conv_parse("SHA256", &c), -1);
	assert_string_equal(kd_conv_name(KD_CONV_SHA256), "sha256");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prefix),           cmocka_unit_test(test_prefix_refuses),
	    cmocka_unit_test(test_sha256),           cmocka_unit_test(test_cak),
	    cmocka_unit_test(test_suites_and_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
