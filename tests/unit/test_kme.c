/*
 * test_kme.c - the pure half of the ETSI 014 client (kme_parse.h): request
 * URLs and bodies, limit checks, strict base64, status / key container /
 * error reply parsing, against etsi014.md §5 and the quirks of §7.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kme.h"
#include "kme_parse.h"

#define S(x) x, strlen(x)

static const char *ID1 = "bc490419-7d60-487f-adc1-4ddcc177c139";
static const char *ID2 = "8844CBA7-29E1-3251-A0B1-0123456789AB"; /* TAR style, upper case */

/* 32 bytes 0x00..0x1f */
static const char *K32 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/* 32 bytes 0xff.. with + and / in the text */
static const char *K32B = "+/7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v4=";

static void test_b64(void **state)
{
	(void)state;
	uint8_t out[64];
	size_t n;
	assert_int_equal(kme_b64_decode(S("Zm9vYmFy"), out, sizeof out, &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(out, "foobar", 6);
	assert_int_equal(kme_b64_decode(S("Zm9vYg=="), out, sizeof out, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(kme_b64_decode(S("Zm9vYmE="), out, sizeof out, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(kme_b64_decode(S("+/+/"), out, sizeof out, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(kme_b64_decode(K32, strlen(K32), out, sizeof out, &n), 0);
	assert_int_equal(n, 32);
	assert_int_equal(out[31], 0x1f);
	const char *bad[] = {
	    "",                   /* empty */
	    "Zm9vYg",             /* padding missing */
	    "Zm9vYg=",            /* length */
	    "Zm9v Yg==",          /* whitespace */
	    "Zm9vYg==\n", "-_-_", /* URL-safe alphabet */
	    "Zm9vYh==",           /* non-zero unused bits */
	    "Zm9vYmF=",           /* non-zero unused bits */
	    "Zg==Zg==",           /* padding in the middle */
	    "Z===",               /* too much padding */
	    "====",       "Zm9\x01",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_not_equal(kme_b64_decode(bad[i], strlen(bad[i]), out, sizeof out, &n),
		                     0);
	/* output cap respected */
	assert_int_not_equal(kme_b64_decode(K32, strlen(K32), out, 31, &n), 0);
}

static void test_url(void **state)
{
	(void)state;
	struct kme_error err;
	char *u = kme_build_url("https://kme:8443/", "SAE-B", "status", NULL, &err);
	assert_non_null(u);
	assert_string_equal(u, "https://kme:8443/api/v1/keys/SAE-B/status");
	free(u);
	u = kme_build_url("https://kme", "a b/c&d%e~f_g.h", "enc_keys", "number=2", &err);
	assert_non_null(u);
	assert_string_equal(u, "https://kme/api/v1/keys/a%20b%2Fc%26d%25e~f_g.h/enc_keys?number=2");
	free(u);
	assert_null(kme_build_url("https://kme", "", "status", NULL, &err));
	assert_int_equal(err.code, KME_E_ARG);
	assert_null(kme_build_url("https://kme", "a\nb", "status", NULL, &err));
	char longid[KME_ID_MAX + 2];
	memset(longid, 'x', sizeof longid - 1);
	longid[sizeof longid - 1] = 0;
	assert_null(kme_build_url("https://kme", longid, "status", NULL, &err));
}

static void test_enc_body(void **state)
{
	(void)state;
	struct kme_error err;
	struct kme_enc_req rq = {0};
	char *b = kme_build_enc_body(&rq, &err);
	assert_non_null(b);
	assert_string_equal(b, "{}");
	free(b);
	const char *add[2] = {"SAE-C", "SAE-D"};
	rq = (struct kme_enc_req){.number = 3,
	                          .size = 256,
	                          .additional = add,
	                          .nadditional = 2,
	                          .extension_mandatory = "[{\"abc_route_type\":\"direct\"}]",
	                          .extension_optional = "[]"};
	b = kme_build_enc_body(&rq, &err);
	assert_non_null(b);
	assert_string_equal(b, "{\"number\":3,\"size\":256,\"additional_slave_SAE_IDs\":"
	                       "[\"SAE-C\",\"SAE-D\"],\"extension_mandatory\":"
	                       "[{\"abc_route_type\":\"direct\"}],\"extension_optional\":[]}");
	free(b);
	rq = (struct kme_enc_req){.size = 128};
	b = kme_build_enc_body(&rq, &err);
	assert_string_equal(b, "{\"size\":128}"); /* only the fields set; integers */
	free(b);
	rq = (struct kme_enc_req){.extension_mandatory = "{\"a\":1}"};
	assert_null(kme_build_enc_body(&rq, &err));
	assert_int_equal(err.code, KME_E_ARG);
	rq = (struct kme_enc_req){.extension_optional = "[1]"};
	assert_null(kme_build_enc_body(&rq, &err));
	rq = (struct kme_enc_req){.extension_optional = "[{"};
	assert_null(kme_build_enc_body(&rq, &err));
	const char *badadd[1] = {""};
	rq = (struct kme_enc_req){.additional = badadd, .nadditional = 1};
	assert_null(kme_build_enc_body(&rq, &err));
}

static void test_dec_body(void **state)
{
	(void)state;
	struct kme_error err;
	const char *ids[2] = {ID1, ID2};
	char *b = kme_build_dec_body(ids, 2, &err);
	assert_non_null(b);
	char want[200];
	snprintf(want, sizeof want, "{\"key_IDs\":[{\"key_ID\":\"%s\"},{\"key_ID\":\"%s\"}]}", ID1,
	         ID2);
	assert_string_equal(b, want);
	free(b);
	assert_null(kme_build_dec_body(ids, 0, &err));
	const char *dup[2] = {ID1, ID1};
	assert_null(kme_build_dec_body(dup, 2, &err));
	assert_int_equal(err.code, KME_E_ARG);
}

static void test_check_enc(void **state)
{
	(void)state;
	struct kme_error err;
	struct kme_status st = {.key_size = 256,
	                        .max_key_per_request = 10,
	                        .max_key_size = 1024,
	                        .min_key_size = 128,
	                        .max_sae_id_count = 1};
	struct kme_enc_req rq = {.number = 10, .size = 1024};
	assert_int_equal(kme_check_enc(&st, &rq, &err), 0);
	rq.number = 11;
	assert_int_equal(kme_check_enc(&st, &rq, &err), -1);
	assert_int_equal(err.code, KME_E_LIMIT);
	rq = (struct kme_enc_req){.size = 1032};
	assert_int_equal(kme_check_enc(&st, &rq, &err), -1);
	assert_int_equal(err.code, KME_E_LIMIT);
	rq.size = 120;
	assert_int_equal(kme_check_enc(&st, &rq, &err), -1);
	rq.size = 130; /* our policy: multiple of 8 */
	assert_int_equal(kme_check_enc(&st, &rq, &err), -1);
	assert_int_equal(err.code, KME_E_ARG);
	const char *add[2] = {"X", "Y"};
	rq = (struct kme_enc_req){.additional = add, .nadditional = 2};
	assert_int_equal(kme_check_enc(&st, &rq, &err), -1);
	assert_int_equal(err.code, KME_E_LIMIT);
	/* REF reports every maximum as 0: unknown, not forbidden */
	struct kme_status ref = {.key_size = 1024};
	rq = (struct kme_enc_req){.number = 50, .size = 4096, .additional = add, .nadditional = 2};
	assert_int_equal(kme_check_enc(&ref, &rq, &err), 0);
	assert_int_equal(kme_check_enc(NULL, &rq, &err), 0);
	rq.use_get = true; /* GET carries number and size only */
	assert_int_equal(kme_check_enc(NULL, &rq, &err), -1);
}

#define STATUS                                                                                     \
	"{\"source_KME_ID\":\"KME-A\",\"target_KME_ID\":\"KME-B\",\"master_SAE_ID\":\"SAE-A\","    \
	"\"slave_SAE_ID\":\"SAE-B\",\"key_size\":256,\"stored_key_count\":25000,"                  \
	"\"max_key_count\":100000,\"max_key_per_request\":128,\"max_key_size\":1024,"              \
	"\"min_key_size\":64,\"max_SAE_ID_count\":0%s}"

static int status_with(const char *extra, struct kme_status *st, struct kme_error *err)
{
	char b[600];
	snprintf(b, sizeof b, STATUS, extra);
	return kme_parse_status(b, strlen(b), st, err);
}

static void test_status(void **state)
{
	(void)state;
	struct kme_status st;
	struct kme_error err;
	assert_int_equal(status_with("", &st, &err), 0);
	assert_string_equal(st.source_kme_id, "KME-A");
	assert_string_equal(st.slave_sae_id, "SAE-B");
	assert_int_equal(st.key_size, 256);
	assert_int_equal(st.stored_key_count, 25000);
	assert_int_equal(st.max_key_per_request, 128);
	assert_int_equal(st.min_key_size, 64);
	assert_int_equal(st.max_sae_id_count, 0);
	/* extension and vendor members, null or not, are ignored */
	assert_int_equal(
	    status_with(",\"status_extension\":null,\"x_vendor\":{\"a\":[1]}", &st, &err), 0);
	assert_int_equal(status_with(",\"status_extension\":{\"abc\":1}", &st, &err), 0);
	/* REF: hard-coded placeholder IDs and zero counts still parse */
	const char *ref = "{\"source_KME_ID\":\"src_kme_id\",\"target_KME_ID\":\"dst_kme_id\","
	                  "\"master_SAE_ID\":\"m\",\"slave_SAE_ID\":\"s\",\"key_size\":1024,"
	                  "\"stored_key_count\":0,\"max_key_count\":0,\"max_key_per_request\":0,"
	                  "\"max_key_size\":0,\"min_key_size\":0,\"max_SAE_ID_count\":0}";
	assert_int_equal(kme_parse_status(S(ref), &st, &err), 0);
	const char *bad[] = {
	    "{}",
	    "[]",
	    "",
	    "{\"source_KME_ID\":1}",
	    "{\"source_KME_ID\":\"KME-A\",\"target_KME_ID\":\"KME-B\",\"master_SAE_ID\":\"SAE-A\","
	    "\"slave_SAE_ID\":\"SAE-B\",\"key_size\":\"256\",\"stored_key_count\":1,"
	    "\"max_key_count\":1,\"max_key_per_request\":1,\"max_key_size\":1,"
	    "\"min_key_size\":1,\"max_SAE_ID_count\":0}",
	    "{\"source_KME_ID\":\"KME-A\",\"target_KME_ID\":\"KME-B\",\"master_SAE_ID\":\"SAE-A\","
	    "\"slave_SAE_ID\":\"SAE-B\",\"key_size\":-8,\"stored_key_count\":1,"
	    "\"max_key_count\":1,\"max_key_per_request\":1,\"max_key_size\":1,"
	    "\"min_key_size\":1,\"max_SAE_ID_count\":0}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(kme_parse_status(bad[i], strlen(bad[i]), &st, &err), -1);
		assert_int_equal(err.code, KME_E_PARSE);
	}
	/* a missing field is named */
	const char *miss =
	    "{\"source_KME_ID\":\"KME-A\",\"target_KME_ID\":\"KME-B\","
	    "\"master_SAE_ID\":\"SAE-A\",\"slave_SAE_ID\":\"SAE-B\",\"key_size\":256}";
	assert_int_equal(kme_parse_status(S(miss), &st, &err), -1);
	assert_non_null(strstr(err.text, "stored_key_count"));
	/* duplicate members are refused (which one would count?) */
	assert_int_equal(status_with(",\"key_size\":512", &st, &err), -1);
}

static int keys(const char *body, size_t count, const char *const *ids, size_t bytes,
                struct kme_keys *out, struct kme_error *err)
{
	return kme_parse_keys(body, strlen(body), count, ids, bytes, out, err);
}

static void test_keys_enc(void **state)
{
	(void)state;
	struct kme_keys ks;
	struct kme_error err;
	char b[1000];
	snprintf(
	    b, sizeof b,
	    "{\"keys\":[{\"key_ID\":\"%s\",\"key\":\"%s\"},{\"key_ID\":\"%s\",\"key\":\"%s\"}]}",
	    ID1, K32, ID2, K32B);
	assert_int_equal(keys(b, 2, NULL, 32, &ks, &err), 0);
	assert_int_equal(ks.n, 2);
	assert_string_equal(ks.k[0].id, ID1);
	assert_string_equal(ks.k[1].id, ID2); /* upper case kept, compared exactly */
	assert_int_equal(ks.k[0].len, 32);
	assert_int_equal(ks.k[0].key[5], 5);
	assert_int_equal(ks.k[1].key[0], 0xfb);
	kme_keys_free(&ks);
	assert_int_equal(ks.n, 0);
	assert_null(ks.k);
	/* size unknown: all keys equal */
	assert_int_equal(keys(b, 2, NULL, 0, &ks, &err), 0);
	kme_keys_free(&ks);
	/* count must match (TAR returns fewer silently; NDK {"keys":[]} for number 0) */
	assert_int_equal(keys(b, 3, NULL, 32, &ks, &err), -1);
	assert_int_equal(err.code, KME_E_PARSE);
	assert_null(ks.k);
	assert_int_equal(keys("{\"keys\":[]}", 1, NULL, 32, &ks, &err), -1);
	/* decoded length must be size/8 (old NDK sizes in bytes, truncation) */
	assert_int_equal(keys(b, 2, NULL, 128, &ks, &err), -1);
	assert_non_null(strstr(err.text, "expected 128"));
	assert_int_equal(keys(b, 2, NULL, 12, &ks, &err), -1);
	/* EZK: null extensions and vendor members are ignored */
	snprintf(b, sizeof b,
	         "{\"keys\":[{\"key_ID\":\"%s\",\"key_ID_extension\":null,\"key\":\"%s\","
	         "\"key_extension\":null}],\"key_container_extension\":null,"
	         "\"easy_kme_certificate_extension\":{\"x\":1}}",
	         ID1, K32);
	assert_int_equal(keys(b, 1, NULL, 32, &ks, &err), 0);
	kme_keys_free(&ks);
	/* unequal lengths without a size */
	snprintf(
	    b, sizeof b,
	    "{\"keys\":[{\"key_ID\":\"%s\",\"key\":\"%s\"},{\"key_ID\":\"%s\",\"key\":\"Zm9v\"}]}",
	    ID1, K32, ID2);
	assert_int_equal(keys(b, 2, NULL, 0, &ks, &err), -1);
	/* duplicates */
	snprintf(
	    b, sizeof b,
	    "{\"keys\":[{\"key_ID\":\"%s\",\"key\":\"%s\"},{\"key_ID\":\"%s\",\"key\":\"%s\"}]}",
	    ID1, K32, ID1, K32);
	assert_int_equal(keys(b, 2, NULL, 32, &ks, &err), -1);
	assert_non_null(strstr(err.text, "twice"));
	const char *bad[] = {
	    "",
	    "null",
	    "[]",
	    "{\"keys\":{}}",
	    "{\"keys\":[1]}",
	    "{\"keys\":[{\"key_ID\":\"a\"}]}",
	    "{\"keys\":[{\"key\":\"Zm9v\"}]}",
	    "{\"keys\":[{\"key_ID\":null,\"key\":\"Zm9v\"}]}",
	    "{\"keys\":[{\"key_ID\":\"a\",\"key\":5}]}",
	    "{\"keys\":[{\"key_ID\":\"\",\"key\":\"Zm9v\"}]}",
	    "{\"keys\":[{\"key_ID\":\"a\\u0000b\",\"key\":\"Zm9v\"}]}",
	    "{\"keys\":[{\"key_ID\":\"a\\nb\",\"key\":\"Zm9v\"}]}",
	    "{\"keys\":[{\"key_ID\":\"a\",\"key\":\"Zm9v\\n\"}]}",
	    "{\"keys\":[{\"key_ID\":\"a\",\"key\":\"\"}]}",
	    "{\"keys\":[{\"key_ID\":\"a\",\"key\":\"Zm9v\"}]",
	    "{\"keys\":[{\"key_ID\":\"a\",\"key\":\"Zm9v\",\"key\":\"Zm9v\"}]}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(keys(bad[i], 1, NULL, 0, &ks, &err), -1);
		assert_null(ks.k);
	}
}

/* a malformed reply: the error names the problem and the offset, never the
 * bytes around it (jansson's je.text quotes the token it stopped in, which in
 * a key container is key material) and never a control character */
static void test_parse_error_quotes_nothing(void **state)
{
	(void)state;
	struct kme_keys ks;
	struct kme_error err;
	const char *bad[] = {
	    "{\"keys\":[{\"key_ID\":\"a\",\"key\":\"U0VDUkVUS0VZ\\qTUFURVJJQUw=\"}]}",
	    "{\"keys\":[{\"key_ID\":\"a\",\"key\":\"U0VDUkVUS0VZ\x01\"}]}",
	    "{\"keys\":[{\"key_ID\":\"a\",\"key\":\"U0VDUkVUS0VZ\xff\"}]}",
	    "{\"keys\":[{\"key_ID\":\"a\",\"key\":\"U0VDUkVUS0VZ\"\n\"U0VDUkVUS0VZ\"}]}",
	    "{\"\\\nU0VDUkVUS0VZ\":1}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(keys(bad[i], 1, NULL, 0, &ks, &err), -1);
		assert_int_equal(err.code, KME_E_PARSE);
		assert_non_null(strstr(err.text, "not JSON"));
		assert_null(strstr(err.text, "U0VD"));
		for (const char *c = err.text; *c; c++)
			assert_true(*c >= 0x20 && *c < 0x7f);
	}
	struct kme_status st;
	assert_int_equal(kme_parse_status(S("{\"source_KME_ID\":\"AB\\x\"}"), &st, &err), -1);
	assert_null(strstr(err.text, "AB"));
	/* a Content-Type is quoted, but printable only */
	kme_parse_error_reply(500, "text/html\x1b[2J\t;x", S("<h1>\x07oops</h1>"), &err);
	assert_string_equal(err.message, "(text/html?[2J ;x body) <h1>?oops</h1>");
}

static void test_keys_dec(void **state)
{
	(void)state;
	struct kme_keys ks;
	struct kme_error err;
	char b[1000];
	/* NDK returns keys in store order: matched by key_ID */
	snprintf(
	    b, sizeof b,
	    "{\"keys\":[{\"key_ID\":\"%s\",\"key\":\"%s\"},{\"key_ID\":\"%s\",\"key\":\"%s\"}]}",
	    ID2, K32B, ID1, K32);
	const char *want[2] = {ID1, ID2};
	assert_int_equal(keys(b, 2, want, 32, &ks, &err), 0);
	assert_string_equal(ks.k[0].id, ID1);
	assert_int_equal(ks.k[0].key[1], 1);
	assert_string_equal(ks.k[1].id, ID2);
	assert_int_equal(ks.k[1].key[0], 0xfb);
	kme_keys_free(&ks);
	/* an ID not asked for */
	const char *other[2] = {ID1, "something-else"};
	assert_int_equal(keys(b, 2, other, 32, &ks, &err), -1);
	assert_non_null(strstr(err.text, "not asked"));
	/* case differs: compared exactly */
	const char *lower[2] = {ID1, "8844cba7-29e1-3251-a0b1-0123456789ab"};
	assert_int_equal(keys(b, 2, lower, 32, &ks, &err), -1);
	/* the same ID twice instead of both */
	snprintf(
	    b, sizeof b,
	    "{\"keys\":[{\"key_ID\":\"%s\",\"key\":\"%s\"},{\"key_ID\":\"%s\",\"key\":\"%s\"}]}",
	    ID1, K32, ID1, K32);
	assert_int_equal(keys(b, 2, want, 32, &ks, &err), -1);
	/* dec_keys with unknown size: equal lengths */
	snprintf(
	    b, sizeof b,
	    "{\"keys\":[{\"key_ID\":\"%s\",\"key\":\"Zm9v\"},{\"key_ID\":\"%s\",\"key\":\"%s\"}]}",
	    ID2, ID1, K32);
	assert_int_equal(keys(b, 2, want, 0, &ks, &err), -1);
}

static void test_error_reply(void **state)
{
	(void)state;
	struct kme_error err;
	const char *j =
	    "{\"message\":\"not all extension_mandatory parameters are supported\","
	    "\"details\":[{\"extension_mandatory_unsupported\":\"abc is not supported\"}]}";
	kme_parse_error_reply(400, "application/json", S(j), &err);
	assert_int_equal(err.code, KME_E_HTTP_400);
	assert_int_equal(err.http_status, 400);
	assert_string_equal(err.message, "not all extension_mandatory parameters are supported");
	assert_string_equal(err.details,
	                    "[{\"extension_mandatory_unsupported\":\"abc is not supported\"}]");
	/* REF: 401 with an empty body */
	kme_parse_error_reply(401, NULL, "", 0, &err);
	assert_int_equal(err.code, KME_E_HTTP_401);
	assert_string_equal(err.message, "(empty body)");
	/* NDK: HTML */
	const char *h = "<!doctype html>\n<html>\n<title>401 Unauthorized</title>\n</html>";
	kme_parse_error_reply(401, "text/html; charset=utf-8", S(h), &err);
	assert_int_equal(err.code, KME_E_HTTP_401);
	assert_non_null(strstr(err.message, "text/html"));
	assert_non_null(strstr(err.message, "<title>401 Unauthorized</title>"));
	/* EZK / FastAPI */
	kme_parse_error_reply(401, "application/json", S("{\"detail\":\"Not authorized\"}"), &err);
	assert_string_equal(err.message, "Not authorized");
	kme_parse_error_reply(503, "application/json", S("{\"message\":\"busy\"}"), &err);
	assert_int_equal(err.code, KME_E_HTTP_503);
	/* TAR: 404 */
	kme_parse_error_reply(404, "application/json", S("{\"message\":\"Element not found\"}"),
	                      &err);
	assert_int_equal(err.code, KME_E_HTTP);
	assert_int_equal(err.http_status, 404);
	/* long and binary bodies: a short printable excerpt */
	char big[5000];
	memset(big, 'A', sizeof big);
	big[10] = 1;
	kme_parse_error_reply(500, NULL, big, sizeof big, &err);
	assert_true(strlen(err.message) < 120);
	assert_non_null(strstr(err.message, "?"));
	assert_non_null(strstr(err.message, "..."));
	kme_parse_error_reply(400, "application/json", S("[\"message\"]"), &err);
	assert_int_equal(err.code, KME_E_HTTP_400);
}

static void test_messages(void **state)
{
	(void)state;
	assert_true(kme_msg_not_found("one or more keys specified are not found on KME"));
	assert_true(kme_msg_not_found("Key 123 not found")); /* REF */
	assert_true(
	    kme_msg_not_found("Some of the requested keys do not exist in this KME.")); /* NDK */
	assert_false(kme_msg_not_found("size shall be a multiple of 8"));
	assert_true(kme_msg_try_later("Not enough keys available. Try again later."));
	assert_false(kme_msg_try_later("not all extension_mandatory parameters are supported"));
	assert_true(kme_ctype_json(NULL));
	assert_true(kme_ctype_json("application/json"));
	assert_true(kme_ctype_json("Application/JSON; charset=utf-8"));
	assert_false(kme_ctype_json("text/html"));
	assert_false(kme_ctype_json("application/jsonp"));
	assert_string_equal(kme_err_name(KME_E_KEY_LOST), "key-lost");
	assert_string_equal(kme_err_name(KME_E_HTTP_503), "http-503");
}

int main(void)
{
	kme_json_init();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64),
	    cmocka_unit_test(test_url),
	    cmocka_unit_test(test_enc_body),
	    cmocka_unit_test(test_dec_body),
	    cmocka_unit_test(test_check_enc),
	    cmocka_unit_test(test_status),
	    cmocka_unit_test(test_keys_enc),
	    cmocka_unit_test(test_keys_dec),
	    cmocka_unit_test(test_error_reply),
	    cmocka_unit_test(test_messages),
	    cmocka_unit_test(test_parse_error_quotes_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
