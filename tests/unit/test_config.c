/*
 * test_config.c - the qkdlinkd configuration loader: a complete config read
 * back field by field, the defaults, and every class of mistake with its
 * exact message (docs/configuration.md, "Errors").
 *
 * Most tests start from a valid config, break one thing with jset()/jdel(),
 * and check the message. File checks run in a mkdtemp() directory holding
 * secrets and keys created at run time with the modes under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "config.h"
#include "kme.h"

static const char BASE[] =
    "{\"sae_id\": \"SAE-A\", \"state_dir\": \"/var/lib/qkdlink\","
    " \"kme\": {\"url\": \"https://kme-a:8443\", \"ca_file\": \"/etc/q/ca.pem\","
    "  \"cert_file\": \"/etc/q/sae.pem\", \"key_file\": \"/etc/q/sae.key\","
    "  \"kme_id\": \"kme-a\"},"
    " \"router\": {\"host\": \"r1\", \"user\": \"qkdlink\", \"key_file\": \"/etc/q/r1.key\","
    "  \"known_hosts\": \"/etc/q/known_hosts\"},"
    " \"port\": {\"rx_interface\": \"eth1\"},"
    " \"channels\": ["
    "  {\"id\": 7, \"ca_name\": \"CA7\", \"interfaces\": [\"et-0/0/1\"],"
    "   \"cipher_suite\": \"gcm-aes-256\", \"role\": \"master\", \"peers\": [\"SAE-B\"],"
    "   \"secrets\": [{\"id\": 0, \"file\": \"/etc/q/ch7.secret\", \"current\": true}],"
    "   \"ckn\": \"sha256\"},"
    "  {\"id\": 8, \"ca_name\": \"CA8\", \"interfaces\": [\"et-0/0/2\"],"
    "   \"cipher_suite\": \"gcm-aes-128\", \"role\": \"slave\", \"peers\": [\"SAE-B\"],"
    "   \"secrets\": [{\"id\": 1, \"file\": \"/etc/q/ch8.secret\", \"current\": true}],"
    "   \"ckn\": {\"prefix\": \"0123456789ABCDEF0123456789abcdef\"}}]}";

static json_t *base(void)
{
	json_error_t je;
	json_t *r = json_loads(BASE, 0, &je);
	assert_non_null(r);
	return r;
}

/* Walks "a.b[2].c" to the parent of the last step; *last names it. */
static json_t *walk(json_t *root, const char *path, char *last, size_t lastlen, long *idx)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", path);
	json_t *cur = root;
	char *save = NULL;
	char *tok = strtok_r(buf, ".", &save);
	while (tok) {
		char *next = strtok_r(NULL, ".", &save);
		char *br = strchr(tok, '[');
		long i = -1;
		if (br) {
			i = strtol(br + 1, NULL, 10);
			*br = '\0';
		}
		if (next == NULL) {
			if (i >= 0) {
				cur = json_object_get(cur, tok);
				*idx = i;
				last[0] = '\0';
			} else {
				*idx = -1;
				snprintf(last, lastlen, "%s", tok);
			}
			return cur;
		}
		cur = json_object_get(cur, tok);
		if (i >= 0)
			cur = json_array_get(cur, (size_t)i);
		assert_non_null(cur);
		tok = next;
	}
	return NULL;
}

/* Sets (steals v) or, with v NULL, deletes the member at path. */
static void jset(json_t *root, const char *path, json_t *v)
{
	char last[64];
	long idx;
	json_t *parent = walk(root, path, last, sizeof last, &idx);
	assert_non_null(parent);
	if (idx >= 0) {
		if (v)
			assert_int_equal(json_array_set_new(parent, (size_t)idx, v), 0);
		else
			assert_int_equal(json_array_remove(parent, (size_t)idx), 0);
	} else if (v) {
		assert_int_equal(json_object_set_new(parent, last, v), 0);
	} else {
		assert_int_equal(json_object_del(parent, last), 0);
	}
}

static void jdel(json_t *root, const char *path)
{
	jset(root, path, NULL);
}

/* Loads root (and frees it), expecting the error want. */
static void expect_err(json_t *root, const char *want)
{
	struct agent_config cfg;
	char err[CONFIG_ERR_MAX];
	err[0] = '\0';
	int rc = config_from_json("t.json", root, &cfg, err, sizeof err);
	json_decref(root);
	if (rc == 0)
		config_free(&cfg);
	assert_int_equal(rc, -1);
	assert_string_equal(err, want);
	config_free(&cfg); /* harmless after a failure */
}

static void expect_text_err(const char *text, const char *want)
{
	struct agent_config cfg;
	char err[CONFIG_ERR_MAX];
	int rc = config_parse("t.json", text, strlen(text), &cfg, err, sizeof err);
	if (rc == 0)
		config_free(&cfg);
	assert_int_equal(rc, -1);
	assert_string_equal(err, want);
}

static void expect_ok(json_t *root, struct agent_config *cfg)
{
	char err[CONFIG_ERR_MAX] = "";
	int rc = config_from_json("t.json", root, cfg, err, sizeof err);
	json_decref(root);
	if (rc != 0)
		fail_msg("unexpected error: %s", err);
}

/* ---- valid configs ---- */

static void test_defaults(void **state)
{
	(void)state;
	struct agent_config c;
	expect_ok(base(), &c);
	assert_string_equal(c.file, "t.json");
	assert_string_equal(c.sae_id, "SAE-A");
	assert_string_equal(c.control_socket, "/run/qkdlink/qkdlinkd.sock");
	assert_null(c.user);
	assert_int_equal(c.hello_interval, 10);
	assert_int_equal(c.log.level, CONFIG_LOG_INFO);
	assert_false(c.log.syslog);
	assert_int_equal(c.kme.connect_timeout_ms, 5000);
	assert_int_equal(c.kme.timeout_ms, 15000);
	assert_int_equal(c.kme.cert_warn_days, 30);
	assert_null(c.kme.pin);
	assert_false(c.kme.tls13_only);
	assert_int_equal(c.router.port, 830);
	assert_null(c.router.password_file);
	assert_false(c.router.trust_on_first_use);
	assert_int_equal(c.router.ns, CONFIG_NS_JUNOS);
	assert_null(c.router.ns_uri);
	assert_int_equal(c.router.confirm_timeout, 120);
	assert_int_equal(c.router.connect_timeout_ms, 10000);
	assert_int_equal(c.router.rpc_timeout_ms, 60000);
	assert_string_equal(c.port.tx_interface, "eth1");
	assert_false(c.port.tagged);
	assert_int_equal(c.port.pcp, 0);
	static const uint8_t dst[6] = {0x03, 0x51, 0x4b, 0, 0, 1};
	assert_memory_equal(c.port.destination, dst, 6);
	assert_int_equal(c.port.oui, 0xACDE48);
	assert_int_equal(c.port.pid, 0x514B);
	assert_int_equal(c.nchannels, 2);
	const struct config_channel *ch = &c.channels[0];
	assert_int_equal(ch->rotation_interval, 3600);
	assert_false(ch->provisioning);
	assert_false(ch->key_chain.enabled);
	assert_int_equal(ch->ckn, CONFIG_CKN_SHA256);
	assert_string_equal(ch->ckn_prefix, "");
	assert_int_equal(ch->key_bits, 256);
	assert_int_equal(ch->cak_hex, 64);
	ch = &c.channels[1];
	assert_int_equal(ch->role, QKD_ROLE_SLAVE);
	assert_int_equal(ch->key_bits, 128);
	assert_int_equal(ch->cak_hex, 32);
	assert_int_equal(ch->ckn, CONFIG_CKN_PREFIX);
	assert_string_equal(ch->ckn_prefix, "0123456789abcdef0123456789abcdef"); /* lowered */
	assert_ptr_equal(config_channel_find(&c, 8), ch);
	assert_null(config_channel_find(&c, 9));
	config_free(&c);
	config_free(&c);
}

static const char FULL[] =
    "{\"sae_id\": \"SAE-M\", \"state_dir\": \"/srv/q\", \"control_socket\": \"/run/q.sock\","
    " \"user\": \"qkd\", \"group\": \"qkdgrp\", \"hello_interval\": 3,"
    " \"log\": {\"level\": \"debug\", \"destination\": \"syslog\", \"facility\": \"local3\"},"
    " \"kme\": {\"url\": \"https://10.0.0.1:443\", \"ca_file\": \"/c/ca\","
    "  \"cert_file\": \"/c/cert\", \"key_file\": \"/c/key\", \"kme_id\": \"KME_M\","
    "  \"pin\": \"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\","
    "  \"connect_timeout_ms\": 1000, \"timeout_ms\": 2000, \"tls13_only\": true,"
    "  \"check_status_id\": true, \"cert_warn_days\": 0},"
    " \"router\": {\"host\": \"fe80::1%eth0\", \"port\": 2830, \"user\": \"nc\","
    "  \"key_file\": \"/c/rk\", \"password_file\": \"/c/pw\", \"known_hosts\": \"/c/kh\","
    "  \"trust_on_first_use\": true, \"namespace\": \"urn:example:conf\","
    "  \"confirm_timeout\": 10, \"connect_timeout_ms\": 500, \"rpc_timeout_ms\": 7000},"
    " \"port\": {\"rx_interface\": \"veth-a\", \"tx_interface\": \"veth-b\", \"vlan\": 100,"
    "  \"pcp\": 6, \"destination\": \"01-80-C2-00-00-0E\", \"oui\": \"00:11:22\","
    "  \"pid\": \"0x0001\"},"
    " \"channels\": [{\"id\": 4294967295, \"ca_name\": \"CA-9\","
    "  \"interfaces\": [\"xe-0/0/1\", \"ae0\"], \"cipher_suite\": \"gcm-aes-xpn-128\","
    "  \"role\": \"master\", \"peers\": [\"S1\", \"S2\"],"
    "  \"secrets\": [{\"id\": 255, \"file\": \"/c/s1\"},"
    "               {\"id\": 3, \"file\": \"/c/s2\", \"current\": true}],"
    "  \"rotation_interval\": 600, \"ckn\": {\"prefix\": \"00112233445566778899aabbccddeeff\"},"
    "  \"provisioning\": true,"
    "  \"key_chain\": {\"name\": \"KC-9\", \"activation_delay\": 120}}]}";

static void test_full(void **state)
{
	(void)state;
	struct agent_config c;
	char err[CONFIG_ERR_MAX] = "";
	if (config_parse("full.json", FULL, sizeof FULL - 1, &c, err, sizeof err) != 0)
		fail_msg("%s", err);
	assert_string_equal(c.file, "full.json");
	assert_string_equal(c.sae_id, "SAE-M");
	assert_string_equal(c.state_dir, "/srv/q");
	assert_string_equal(c.control_socket, "/run/q.sock");
	assert_string_equal(c.user, "qkd");
	assert_string_equal(c.group, "qkdgrp");
	assert_int_equal(c.hello_interval, 3);
	assert_int_equal(c.log.level, CONFIG_LOG_DEBUG);
	assert_true(c.log.syslog);
	assert_int_equal(c.log.facility, 19 << 3); /* LOG_LOCAL3 */
	assert_string_equal(c.kme.url, "https://10.0.0.1:443");
	assert_string_equal(c.kme.ca_file, "/c/ca");
	assert_string_equal(c.kme.cert_file, "/c/cert");
	assert_string_equal(c.kme.key_file, "/c/key");
	assert_string_equal(c.kme.kme_id, "KME_M");
	assert_string_equal(c.kme.pin, "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	assert_int_equal(c.kme.connect_timeout_ms, 1000);
	assert_int_equal(c.kme.timeout_ms, 2000);
	assert_true(c.kme.tls13_only);
	assert_true(c.kme.check_status_id);
	assert_int_equal(c.kme.cert_warn_days, 0);
	assert_string_equal(c.router.host, "fe80::1%eth0");
	assert_int_equal(c.router.port, 2830);
	assert_string_equal(c.router.user, "nc");
	assert_string_equal(c.router.key_file, "/c/rk");
	assert_string_equal(c.router.password_file, "/c/pw");
	assert_string_equal(c.router.known_hosts, "/c/kh");
	assert_true(c.router.trust_on_first_use);
	assert_int_equal(c.router.ns, CONFIG_NS_URI);
	assert_string_equal(c.router.ns_uri, "urn:example:conf");
	assert_int_equal(c.router.confirm_timeout, 10);
	assert_int_equal(c.router.connect_timeout_ms, 500);
	assert_int_equal(c.router.rpc_timeout_ms, 7000);
	assert_string_equal(c.port.rx_interface, "veth-a");
	assert_string_equal(c.port.tx_interface, "veth-b");
	assert_true(c.port.tagged);
	assert_int_equal(c.port.vlan, 100);
	assert_int_equal(c.port.pcp, 6);
	static const uint8_t dst[6] = {0x01, 0x80, 0xc2, 0, 0, 0x0e};
	assert_memory_equal(c.port.destination, dst, 6);
	assert_int_equal(c.port.oui, 0x001122);
	assert_int_equal(c.port.pid, 1);
	assert_int_equal(c.nchannels, 1);
	const struct config_channel *ch = &c.channels[0];
	assert_int_equal(ch->id, 4294967295u);
	assert_string_equal(ch->ca_name, "CA-9");
	assert_int_equal(ch->ninterfaces, 2);
	assert_string_equal(ch->interfaces[0], "xe-0/0/1");
	assert_string_equal(ch->interfaces[1], "ae0");
	assert_int_equal(ch->cipher, CONFIG_GCM_AES_XPN_128);
	assert_string_equal(ch->cipher_name, "gcm-aes-xpn-128");
	assert_int_equal(ch->key_bits, 128);
	assert_int_equal(ch->cak_hex, 32);
	assert_int_equal(ch->role, QKD_ROLE_MASTER);
	assert_int_equal(ch->npeers, 2);
	assert_string_equal(ch->peers[0], "S1");
	assert_string_equal(ch->peers[1], "S2");
	assert_int_equal(ch->nsecrets, 2);
	assert_int_equal(ch->secrets[0].id, 255);
	assert_string_equal(ch->secrets[0].file, "/c/s1");
	assert_false(ch->secrets[0].current);
	assert_int_equal(ch->secrets[1].id, 3);
	assert_true(ch->secrets[1].current);
	assert_int_equal(ch->current_secret, 1);
	assert_int_equal(ch->rotation_interval, 600);
	assert_int_equal(ch->ckn, CONFIG_CKN_PREFIX);
	assert_string_equal(ch->ckn_prefix, "00112233445566778899aabbccddeeff");
	assert_true(ch->provisioning);
	assert_true(ch->key_chain.enabled);
	assert_string_equal(ch->key_chain.name, "KC-9");
	assert_int_equal(ch->key_chain.activation_delay, 120);

	struct kme_config k;
	config_kme(&c, &k);
	assert_string_equal(k.url, c.kme.url);
	assert_string_equal(k.key_file, "/c/key");
	assert_string_equal(k.pin, c.kme.pin);
	assert_int_equal(k.timeout_ms, 2000);
	assert_true(k.tls13_only);

	/* the summary names things, never a secret (there is none to name) */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	config_summary(&c, f);
	fclose(f);
	assert_non_null(strstr(buf, "channel 4294967295 CA CA-9: master of S1, S2"));
	assert_non_null(strstr(buf, "vlan 100 pcp 6"));
	free(buf);
	config_free(&c);
}

static void test_namespaces(void **state)
{
	(void)state;
	struct agent_config c;
	json_t *r = base();
	jset(r, "router.namespace", json_string("yang"));
	expect_ok(r, &c);
	assert_int_equal(c.router.ns, CONFIG_NS_YANG);
	config_free(&c);
	r = base();
	jset(r, "router.namespace", json_null()); /* null = absent */
	expect_ok(r, &c);
	assert_int_equal(c.router.ns, CONFIG_NS_JUNOS);
	config_free(&c);
	r = base();
	jset(r, "port.vlan", json_integer(0)); /* priority tag */
	jset(r, "port.pcp", json_integer(7));
	expect_ok(r, &c);
	assert_true(c.port.tagged);
	assert_int_equal(c.port.vlan, 0);
	assert_int_equal(c.port.pcp, 7);
	config_free(&c);
}

/* ---- mistakes, by class ---- */

static void test_syntax(void **state)
{
	(void)state;
	expect_text_err("{\n  \"sae_id\": \"A\",\n  \"kme\": {,\n}",
	                "t.json:3:11: JSON syntax error: string or '}' expected near ','");
	expect_text_err("{\"sae_id\": \"A\", \"sae_id\": \"B\"}",
	                "t.json:1:24: JSON syntax error: duplicate object key near '\"sae_id\"'");
	expect_text_err("", "t.json:1:0: JSON syntax error: '[' or '{' expected near end of file");
	expect_text_err("[1]", "t.json: expected a JSON object at the top level, got an array");
	/* NUL inside a string: refused by the parser */
	expect_text_err("{\"sae_id\": \"A\\u0000B\"}",
	                "t.json:1:21: JSON syntax error: \\u0000 is not allowed without "
	                "JSON_ALLOW_NUL near '\"A\\u0000B\"'");
}

/*
 * Found by the fuzz_config campaign (docs/reliability.md; input
 * tests/fuzz/crash-fuzz_config-876345198eef8daa4d55a2dc14b94371dd3b3689):
 * jansson's error text quotes the input around the error, so a newline or an
 * escape sequence in the file reached the log and the terminal as is. Every
 * error must be one line of printable text.
 */
static void test_syntax_one_line(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "{\"\\\nrch\":[{}]}",         /* the fuzzer's input: '"\' then a newline */
	    "{\"sae_id\": \"A\x1b[2J\"}", /* a raw escape character inside a string */
	    "{\"sae_id\": \"A\\\r\"}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct agent_config cfg;
		char err[CONFIG_ERR_MAX];
		err[0] = '\0';
		assert_int_equal(
		    config_parse("t.json", bad[i], strlen(bad[i]), &cfg, err, sizeof err), -1);
		for (const char *c = err; *c; c++)
			assert_true((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f);
	}
}

static void test_missing(void **state)
{
	(void)state;
	json_t *r = base();
	jdel(r, "sae_id");
	expect_err(r, "t.json: sae_id: required field missing");
	r = base();
	jdel(r, "kme.url");
	expect_err(r, "t.json: kme.url: required field missing");
	r = base();
	jdel(r, "kme");
	expect_err(r, "t.json: kme: required field missing");
	r = base();
	jdel(r, "channels[1].ckn");
	expect_err(r, "t.json: channels[1].ckn: required field missing");
	r = base();
	jdel(r, "channels[0].secrets[0].file");
	expect_err(r, "t.json: channels[0].secrets[0].file: required field missing");
	r = base();
	jdel(r, "router.key_file");
	expect_err(r, "t.json: router: needs key_file or password_file (or both) to log in");
	r = base();
	jset(r, "router.user", json_null());
	expect_err(r, "t.json: router.user: expected a string, got null");
}

static void test_types(void **state)
{
	(void)state;
	json_t *r = base();
	jset(r, "router.port", json_string("830"));
	expect_err(r, "t.json: router.port: expected an integer, got a string");
	r = base();
	jset(r, "hello_interval", json_real(1.5));
	expect_err(r, "t.json: hello_interval: expected an integer, got a real number");
	r = base();
	jset(r, "router.trust_on_first_use", json_string("yes"));
	expect_err(r, "t.json: router.trust_on_first_use: expected true or false, got a string");
	r = base();
	jset(r, "channels", json_object());
	expect_err(r, "t.json: channels: expected an array, got an object");
	r = base();
	jset(r, "channels[0]", json_string("x"));
	expect_err(r, "t.json: channels[0]: expected an object, got a string");
	r = base();
	jset(r, "channels[0].peers[0]", json_integer(3));
	expect_err(r, "t.json: channels[0].peers[0]: expected a string, got an integer");
	r = base();
	jset(r, "channels[0].ckn", json_integer(1));
	expect_err(r, "t.json: channels[0].ckn: expected \"sha256\" or {\"prefix\": \"<32 hex>\"}, "
	              "got an integer");
	r = base();
	jset(r, "port", json_true());
	expect_err(r, "t.json: port: expected an object, got a boolean");
}

static void test_unknown(void **state)
{
	(void)state;
	json_t *r = base();
	jset(r, "router.hots", json_string("r1"));
	expect_err(r, "t.json: router.hots: unknown field (did you mean \"host\"?)");
	r = base();
	jset(r, "channels[1].secrets[0].curent", json_true());
	expect_err(r, "t.json: channels[1].secrets[0].curent: unknown field (did you mean "
	              "\"current\"?)");
	r = base();
	jset(r, "frobnicate", json_true());
	expect_err(r, "t.json: frobnicate: unknown field");
	r = base();
	jset(r, "channels[0].ckn",
	     json_pack("{s:s,s:s}", "prefix", "00112233445566778899aabbccddeeff", "x", "y"));
	expect_err(r, "t.json: channels[0].ckn.x: unknown field");
}

static void test_range(void **state)
{
	(void)state;
	json_t *r = base();
	jset(r, "port.vlan", json_integer(4095));
	expect_err(r, "t.json: port.vlan: 4095 out of range 0..4094");
	r = base();
	jset(r, "port.vlan", json_integer(5));
	jset(r, "port.pcp", json_integer(8));
	expect_err(r, "t.json: port.pcp: 8 out of range 0..7");
	r = base();
	jset(r, "port.pcp", json_integer(3));
	expect_err(r, "t.json: port.pcp: needs a vlan: an untagged frame has no priority (vlan 0 "
	              "sends a priority tag)");
	r = base();
	jset(r, "channels[0].id", json_integer(0));
	expect_err(r, "t.json: channels[0].id: 0 out of range 1..4294967295");
	r = base();
	jset(r, "channels[0].id", json_integer(4294967296LL));
	expect_err(r, "t.json: channels[0].id: 4294967296 out of range 1..4294967295");
	r = base();
	jset(r, "hello_interval", json_integer(0));
	expect_err(r, "t.json: hello_interval: 0 out of range 1..3600");
	r = base();
	jset(r, "channels[1].rotation_interval", json_integer(1));
	expect_err(r, "t.json: channels[1].rotation_interval: 1 out of range: 0 (on demand only) "
	              "or 2..2592000");
	r = base();
	jset(r, "channels[1].rotation_interval", json_integer(2592001));
	expect_err(r, "t.json: channels[1].rotation_interval: 2592001 out of range 0..2592000");
	r = base();
	jset(r, "channels[0].secrets[0].id", json_integer(256));
	expect_err(r, "t.json: channels[0].secrets[0].id: 256 out of range 0..255");
	r = base();
	jset(r, "router.port", json_integer(0));
	expect_err(r, "t.json: router.port: 0 out of range 1..65535");
	r = base();
	jset(r, "router.confirm_timeout", json_integer(3601));
	expect_err(r, "t.json: router.confirm_timeout: 3601 out of range 1..3600");
	r = base();
	jset(r, "kme.timeout_ms", json_integer(-1));
	expect_err(r, "t.json: kme.timeout_ms: -1 out of range 100..600000");
	r = base();
	jset(r, "sae_id", json_string("SAE-0123456789-0123456789-0123456"));
	expect_err(r, "t.json: sae_id: 33 characters, at most 32");
	r = base();
	jset(r, "channels[0].ca_name", json_string(""));
	expect_err(r, "t.json: channels[0].ca_name: empty string");
	r = base();
	jset(r, "channels[0].peers", json_array());
	expect_err(r, "t.json: channels[0].peers: a master needs at least one slave SAE ID");
	r = base();
	jset(r, "channels[0].interfaces", json_array());
	expect_err(r, "t.json: channels[0].interfaces: needs at least 1 interfaces");
	r = base();
	jset(r, "channels", json_array());
	expect_err(r, "t.json: channels: needs at least 1 channels");
}

static void test_values(void **state)
{
	(void)state;
	json_t *r = base();
	jset(r, "port.destination", json_string("03:51:4b:00:00"));
	expect_err(r, "t.json: port.destination: \"03:51:4b:00:00\" is not a MAC address (six hex "
	              "octets, e.g. 03:51:4b:00:00:01)");
	r = base();
	jset(r, "port.destination", json_string("03:51-4b:00:00:01"));
	expect_err(r, "t.json: port.destination: \"03:51-4b:00:00:01\" is not a MAC address (six "
	              "hex octets, e.g. 03:51:4b:00:00:01)");
	r = base();
	jset(r, "port.destination", json_string("00-00-00-00-00-00"));
	expect_err(r, "t.json: port.destination: 00:00:00:00:00:00 is not a destination");
	r = base();
	jset(r, "port.oui", json_string("ACDE48"));
	expect_err(r, "t.json: port.oui: \"ACDE48\" is not an OUI (three hex octets, e.g. "
	              "AC-DE-48)");
	r = base();
	jset(r, "port.pid", json_string("514B"));
	expect_err(r, "t.json: port.pid: \"514B\" is not a protocol identifier (0x then 1..4 hex "
	              "digits, e.g. 0x514B)");
	r = base();
	jset(r, "port.pid", json_string("0x10000"));
	expect_err(r, "t.json: port.pid: \"0x10000\" is not a protocol identifier (0x then 1..4 "
	              "hex digits, e.g. 0x514B)");
	r = base();
	jset(r, "port.rx_interface", json_string("eth0:1"));
	expect_err(r, "t.json: port.rx_interface: \"eth0:1\": character ':' not allowed in an "
	              "interface name");
	r = base();
	jset(r, "port.tx_interface", json_string("a-very-long-name0"));
	expect_err(r, "t.json: port.tx_interface: \"a-very-long-name0\": a Linux interface name "
	              "has at most 15 characters");
	r = base();
	jset(r, "port.tx_interface", json_string("a-very-long-nam"));
	jset(r, "port.rx_interface", json_string("a-very-long-name"));
	expect_err(r, "t.json: port.rx_interface: \"a-very-long-name\": a Linux interface name has "
	              "at most 15 characters");
	r = base();
	jset(r, "channels[1].interfaces[0]", json_string("0/0/1"));
	expect_err(r, "t.json: channels[1].interfaces[0]: \"0/0/1\": an interface name starts "
	              "with a letter");
	r = base();
	jset(r, "channels[1].interfaces[0]", json_string("et-0/0/1 "));
	expect_err(r, "t.json: channels[1].interfaces[0]: \"et-0/0/1 \": character ' ' not "
	              "allowed in an interface name");
	r = base();
	jset(r, "channels[0].ca_name", json_string("CA<7>"));
	expect_err(r, "t.json: channels[0].ca_name: character '<' at offset 2 not allowed in a "
	              "name");
	r = base();
	jset(r, "channels[0].cipher_suite", json_string("gcm-aes-192"));
	expect_err(r,
	           "t.json: channels[0].cipher_suite: \"gcm-aes-192\" is not one of "
	           "\"gcm-aes-128\", \"gcm-aes-256\", \"gcm-aes-xpn-128\" or \"gcm-aes-xpn-256\"");
	r = base();
	jset(r, "channels[0].role", json_string("primary"));
	expect_err(r, "t.json: channels[0].role: \"primary\" is not one of \"master\" or "
	              "\"slave\"");
	r = base();
	jset(r, "channels[0].ckn", json_string("prefix"));
	expect_err(r, "t.json: channels[0].ckn: \"prefix\" is not a convention: \"sha256\" or "
	              "{\"prefix\": \"<32 hex>\"}");
	r = base();
	jset(r, "channels[1].ckn.prefix", json_string("0123456789abcdef"));
	expect_err(r, "t.json: channels[1].ckn.prefix: 16 characters, the prefix is 32 hex "
	              "characters");
	r = base();
	jset(r, "channels[1].ckn.prefix", json_string("0123456789abcdef0123456789abcdeg"));
	expect_err(r, "t.json: channels[1].ckn.prefix: not hexadecimal");
	r = base();
	jset(r, "kme.url", json_string("http://kme-a"));
	expect_err(r, "t.json: kme.url: \"http://kme-a\": the KME is reached over https:// only");
	r = base();
	jset(r, "kme.url", json_string("https://kme-a/api/v1"));
	expect_err(r, "t.json: kme.url: \"https://kme-a/api/v1\": must be https://host[:port] "
	              "without a path");
	r = base();
	jset(r, "kme.url", json_string("https://kme-a:0"));
	expect_err(r, "t.json: kme.url: \"https://kme-a:0\": the port is a number 1..65535");
	r = base();
	jset(r, "kme.url", json_string("https://fe80::1:443"));
	expect_err(r, "t.json: kme.url: \"https://fe80::1:443\": an IPv6 address is written "
	              "[address]");
	r = base();
	jset(r, "kme.url", json_string("https://[fe80::1]:8443"));
	struct agent_config c;
	expect_ok(r, &c);
	config_free(&c);
	r = base();
	jset(r, "channels[0].rotation_interval", json_integer(60));
	jset(r, "channels[0].key_chain",
	     json_pack("{s:s,s:i}", "name", "KC", "activation_delay", 60));
	expect_err(r, "t.json: channels[0].key_chain.activation_delay: 60 s is not shorter than "
	              "rotation_interval (60 s): a key would be replaced before it starts");
	r = base();
	jset(r, "kme.pin", json_string("sha256//abc"));
	expect_err(r, "t.json: kme.pin: not a public-key pin: sha256// then 44 base64 characters, "
	              "several separated by ';'");
	r = base();
	jset(r, "kme.key_file", json_string("sae.key"));
	expect_err(r, "t.json: kme.key_file: \"sae.key\" is not an absolute path");
	r = base();
	jset(r, "router.namespace", json_string("no namespace"));
	expect_err(r, "t.json: router.namespace: \"no namespace\" is not \"junos\", \"yang\" or an "
	              "absolute URI");
	r = base();
	jset(r, "sae_id", json_string("SAE A"));
	expect_err(r, "t.json: sae_id: character 0x20 at offset 3: an SAE ID is printable ASCII "
	              "without spaces");
	r = base();
	jset(r, "kme.kme_id", json_string("kme\ta"));
	expect_err(r, "t.json: kme.kme_id: control character 0x09 at offset 3");
	r = base();
	jset(r, "log", json_pack("{s:s}", "level", "loud"));
	expect_err(r, "t.json: log.level: \"loud\" is not one of \"error\", \"warning\", "
	              "\"notice\", \"info\" or \"debug\"");
	r = base();
	jset(r, "group", json_string("qkd"));
	expect_err(r, "t.json: group: needs a user to drop to");
}

static void test_duplicates(void **state)
{
	(void)state;
	json_t *r = base();
	jset(r, "channels[1].id", json_integer(7));
	expect_err(r, "t.json: channels[1].id: channel 7 already defined by channels[0]");
	r = base();
	jset(r, "channels[1].ca_name", json_string("CA7"));
	expect_err(r, "t.json: channels[1].ca_name: \"CA7\" already used by channels[0]");
	r = base();
	jset(r, "channels[1].interfaces", json_pack("[s,s]", "et-0/0/9", "et-0/0/1"));
	expect_err(r, "t.json: channels[1].interfaces[1]: \"et-0/0/1\" is already bound to "
	              "channels[0] (CA \"CA7\"): one CA per interface");
	r = base();
	jset(r, "channels[1].interfaces", json_pack("[s,s]", "ae1", "ae1"));
	expect_err(r, "t.json: channels[1].interfaces[1]: \"ae1\" already listed as interfaces[0]");
	r = base();
	jset(r, "channels[0].peers", json_pack("[s,s,s]", "SAE-B", "SAE-C", "SAE-B"));
	expect_err(r, "t.json: channels[0].peers[2]: \"SAE-B\" already listed as peers[0]");
	r = base();
	jset(r, "channels[0].secrets",
	     json_pack("[{s:i,s:s},{s:i,s:s,s:b}]", "id", 4, "file", "/a", "id", 4, "file", "/b",
	               "current", 1));
	expect_err(r, "t.json: channels[0].secrets[1].id: secret ID 4 already used by secrets[0]");
	r = base();
	jset(r, "channels[0].key_chain", json_pack("{s:s}", "name", "KC"));
	jset(r, "channels[1].key_chain", json_pack("{s:s}", "name", "KC"));
	expect_err(r, "t.json: channels[1].key_chain.name: \"KC\" already used by channels[0]");
}

static void test_roles(void **state)
{
	(void)state;
	json_t *r = base();
	jset(r, "channels[1].peers", json_pack("[s,s]", "SAE-B", "SAE-C"));
	expect_err(r, "t.json: channels[1].peers: a slave has exactly one master; 2 listed");
	r = base();
	jset(r, "channels[1].peers", json_array());
	expect_err(r, "t.json: channels[1].peers: a slave needs its master's SAE ID");
	r = base();
	jset(r, "channels[0].peers", json_pack("[s,s]", "SAE-B", "SAE-A"));
	expect_err(r, "t.json: channels[0].peers[1]: \"SAE-A\" is this agent's own sae_id");
	r = base();
	jset(r, "channels[0].secrets[0].current", json_false());
	expect_err(r, "t.json: channels[0].secrets: no secret is current; mark exactly one with "
	              "\"current\": true");
	r = base();
	jset(r, "channels[0].secrets",
	     json_pack("[{s:i,s:s,s:b},{s:i,s:s,s:b}]", "id", 1, "file", "/a", "current", 1, "id",
	               2, "file", "/b", "current", 1));
	expect_err(r, "t.json: channels[0].secrets[1].current: secrets[0] is already current; "
	              "exactly one may be");
	r = base();
	json_t *many = json_array();
	for (int i = 0; i < CONFIG_PEERS_MAX + 1; i++)
		json_array_append_new(many, json_sprintf("S%d", i));
	jset(r, "channels[0].peers", many);
	expect_err(r, "t.json: channels[0].peers: 9 peers, at most 8");
}

static void test_bounds(void **state)
{
	(void)state;
	/* more channels than allowed */
	json_t *r = base();
	json_t *chs = json_object_get(r, "channels");
	json_t *proto = json_object_get(json_array_get(chs, 0), "secrets");
	(void)proto;
	for (int i = 0; i < CONFIG_CHANNELS_MAX; i++)
		json_array_append_new(chs, json_object());
	expect_err(r, "t.json: channels: 4098 channels, at most 4096");
	/* a text over the size bound is refused before parsing */
	size_t big = CONFIG_FILE_MAX + 1;
	char *t = malloc(big);
	assert_non_null(t);
	memset(t, ' ', big);
	struct agent_config c;
	char err[CONFIG_ERR_MAX];
	assert_int_equal(config_parse("big.json", t, big, &c, err, sizeof err), -1);
	assert_string_equal(err, "big.json: 1048577 bytes, larger than the 1048576-byte limit");
	free(t);
	/* a long unknown key is quoted, cut and made printable */
	r = base();
	jset(r, "x\x01yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy", json_true());
	expect_err(r, "t.json: x?yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy...: unknown field");
}

/* ---- files ---- */

struct dir {
	char path[64];
	char cfg[96];
};

static void write_file(const char *dir, const char *name, const char *content, size_t len,
                       mode_t mode)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, len, f), len);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
}

static const char SECRET[] = "SECRET-CONTENT-never-printed-0123456789";

static int files_setup(void **state)
{
	static struct dir d;
	snprintf(d.path, sizeof d.path, "/tmp/qkdcfg.XXXXXX");
	if (mkdtemp(d.path) == NULL)
		return -1;
	const char *pem = "-----BEGIN X-----\n";
	write_file(d.path, "ca.pem", pem, strlen(pem), 0644);
	write_file(d.path, "sae.pem", pem, strlen(pem), 0644);
	write_file(d.path, "sae.key", pem, strlen(pem), 0600);
	write_file(d.path, "r1.key", pem, strlen(pem), 0400);
	write_file(d.path, "known_hosts", "", 0, 0644);
	write_file(d.path, "ch7.secret", SECRET, sizeof SECRET - 1, 0600);
	write_file(d.path, "ch8.secret", SECRET, sizeof SECRET - 1, 0600);
	char state_dir[96];
	snprintf(state_dir, sizeof state_dir, "%s/state", d.path);
	if (mkdir(state_dir, 0700) != 0)
		return -1;
	*state = &d;
	return 0;
}

static int files_teardown(void **state)
{
	struct dir *d = *state;
	const char *names[] = {"ca.pem",     "sae.pem",    "sae.key", "r1.key", "known_hosts",
	                       "ch7.secret", "ch8.secret", "c.json",  "short",  "loose.key"};
	char p[256];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", d->path, names[i]);
		unlink(p);
	}
	snprintf(p, sizeof p, "%s/state", d->path);
	rmdir(p);
	rmdir(d->path);
	return 0;
}

/* The base config with /etc/q -> the test dir, written to DIR/c.json. */
static void write_config(struct dir *d, json_t *r)
{
	char *text = json_dumps(r, 0);
	json_decref(r);
	assert_non_null(text);
	char out[8192];
	size_t o = 0;
	for (const char *p = text; *p; p++) {
		if (strncmp(p, "/etc/q/", 7) == 0) {
			o += (size_t)snprintf(out + o, sizeof out - o, "%s/", d->path);
			p += 6;
		} else if (strncmp(p, "/var/lib/qkdlink", 16) == 0) {
			o += (size_t)snprintf(out + o, sizeof out - o, "%s/state", d->path);
			p += 15;
		} else {
			out[o++] = *p;
		}
		assert_true(o < sizeof out - 1);
	}
	out[o] = '\0';
	free(text);
	write_file(d->path, "c.json", out, o, 0644);
	snprintf(d->cfg, sizeof d->cfg, "%s/c.json", d->path);
}

/* Loads DIR/c.json with file checks; want NULL: success. Messages have
 * the test dir replaced by "D". */
static void load_expect(struct dir *d, const char *want)
{
	struct agent_config c;
	char err[CONFIG_ERR_MAX + 256] = "";
	int rc = config_load(d->cfg, 0, &c, err, sizeof err);
	if (rc == 0)
		config_free(&c);
	assert_null(strstr(err, "SECRET-CONTENT"));
	if (want == NULL) {
		if (rc != 0)
			fail_msg("unexpected error: %s", err);
		return;
	}
	assert_int_equal(rc, -1);
	char got[CONFIG_ERR_MAX + 256];
	size_t o = 0, dl = strlen(d->path);
	for (const char *p = err; *p && o < sizeof got - 1; p++) {
		if (strncmp(p, d->path, dl) == 0) {
			got[o++] = 'D';
			p += dl - 1;
		} else {
			got[o++] = *p;
		}
	}
	got[o] = '\0';
	assert_string_equal(got, want);
}

static void test_files_ok(void **state)
{
	struct dir *d = *state;
	write_config(d, base());
	load_expect(d, NULL);
	/* the checker's entry point: exit status 0 and a summary */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(config_check_main(d->cfg, 0, f, f), 0);
	fclose(f);
	assert_non_null(strstr(buf, ": valid\nagent SAE-A: 2 channels"));
	assert_null(strstr(buf, "SECRET-CONTENT"));
	free(buf);
}

static void test_files_bad(void **state)
{
	struct dir *d = *state;
	char p[256];

	write_file(d->path, "loose.key", "k", 1, 0644);
	json_t *r = base();
	jset(r, "kme.key_file", json_string("/etc/q/loose.key"));
	write_config(d, r);
	load_expect(d, "D/c.json: kme.key_file: D/loose.key: mode 0644 lets others read it; "
	               "chmod 600");

	r = base();
	jset(r, "router.key_file", json_string("/etc/q/loose.key"));
	write_config(d, r);
	load_expect(d, "D/c.json: router.key_file: D/loose.key: mode 0644 lets others read it; "
	               "chmod 600");

	snprintf(p, sizeof p, "%s/ch8.secret", d->path);
	assert_int_equal(chmod(p, 0620), 0);
	write_config(d, base());
	load_expect(d, "D/c.json: channels[1].secrets[0].file: D/ch8.secret: mode 0620 lets "
	               "others write or run it; chmod 600");
	assert_int_equal(chmod(p, 0600), 0);

	write_file(d->path, "short", "SECRET-CONTENT", 14, 0600);
	r = base();
	jset(r, "channels[0].secrets[0].file", json_string("/etc/q/short"));
	write_config(d, r);
	load_expect(d, "D/c.json: channels[0].secrets[0].file: D/short: 14 octets, a secret needs "
	               "32..1024");

	r = base();
	jset(r, "channels[0].secrets[0].file", json_string("/etc/q/absent"));
	write_config(d, r);
	load_expect(d, "D/c.json: channels[0].secrets[0].file: D/absent: No such file or "
	               "directory");

	r = base();
	jset(r, "channels[0].secrets[0].file", json_string("/etc/q/state"));
	write_config(d, r);
	load_expect(d, "D/c.json: channels[0].secrets[0].file: D/state: not a regular file");

	r = base();
	jset(r, "kme.ca_file", json_string("/etc/q/nope.pem"));
	write_config(d, r);
	load_expect(d, "D/c.json: kme.ca_file: D/nope.pem: No such file or directory");

	r = base();
	jset(r, "router.known_hosts", json_string("/etc/q/nope"));
	write_config(d, r);
	load_expect(d, "D/c.json: router.known_hosts: D/nope: No such file or directory");
	r = base(); /* trust on first use: the file may not exist yet */
	jset(r, "router.known_hosts", json_string("/etc/q/nope"));
	jset(r, "router.trust_on_first_use", json_true());
	write_config(d, r);
	load_expect(d, NULL);

	r = base();
	jset(r, "state_dir", json_string("/etc/q/ca.pem"));
	write_config(d, r);
	load_expect(d, "D/c.json: state_dir: D/ca.pem: not a directory");

	r = base();
	jset(r, "user", json_string("no-such-user-qkd"));
	write_config(d, r);
	load_expect(d, "D/c.json: user: no user \"no-such-user-qkd\" on this system");

	/* --no-files: the same config passes */
	struct agent_config c;
	char err[CONFIG_ERR_MAX];
	assert_int_equal(config_load(d->cfg, CONFIG_NO_FILES, &c, err, sizeof err), 0);
	config_free(&c);

	/* the config file itself */
	snprintf(d->cfg, sizeof d->cfg, "%s/none.json", d->path);
	load_expect(d, "D/none.json: No such file or directory");
	snprintf(d->cfg, sizeof d->cfg, "%s", d->path);
	load_expect(d, "D: not a regular file");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(config_check_main(d->cfg, 0, f, f), 1);
	fclose(f);
	assert_non_null(strstr(buf, ": not a regular file\n"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_full),
	    cmocka_unit_test(test_namespaces),
	    cmocka_unit_test(test_syntax),
	    cmocka_unit_test(test_syntax_one_line),
	    cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_types),
	    cmocka_unit_test(test_unknown),
	    cmocka_unit_test(test_range),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_duplicates),
	    cmocka_unit_test(test_roles),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test_setup_teardown(test_files_ok, files_setup, files_teardown),
	    cmocka_unit_test_setup_teardown(test_files_bad, files_setup, files_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
