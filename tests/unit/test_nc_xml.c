/*
 * test_nc_xml.c - NETCONF XML: the hello, <rpc> building (no namespace leak
 * onto <configuration>), <rpc-reply> parsing into the structured error, the
 * MACsec builder (exact XML in both namespace forms), its validation, the
 * read-back check, and redaction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libxml/xmlsave.h>

#include "nc_macsec.h"
#include "nc_xml.h"

#define CKN64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CAK64 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define CAK32 "00112233445566778899aabbccddeeff"

/* the netconfd hello of netconf-test-server.md section 8.1, abridged */
static const char HELLO[] =
    "<hello xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\" "
    "xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">\n  <capabilities>\n"
    "    <capability>urn:ietf:params:netconf:base:1.0</capability>\n"
    "    <capability>urn:ietf:params:netconf:base:1.1</capability>\n"
    "    <capability>urn:ietf:params:netconf:capability:candidate:1.0</capability>\n"
    "    <capability>urn:ietf:params:netconf:capability:confirmed-commit:1.1</capability>\n"
    "    <capability>urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit"
    "&amp;also-supported=trim</capability>\n"
    "  </capabilities>\n  <session-id>1</session-id>\n</hello>";

static const char LOCK_DENIED[] =
    "<rpc-reply message-id=\"7\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">"
    "<rpc-error xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\" "
    "xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\" "
    "xmlns:ncx=\"http://netconfcentral.org/ns/yuma-ncx\">\n"
    "  <error-type>protocol</error-type>\n  <error-tag>lock-denied</error-tag>\n"
    "  <error-severity>error</error-severity>\n  <error-app-tag>no-access</error-app-tag>\n"
    "  <error-message xml:lang=\"en\">lock denied</error-message>\n"
    "  <error-info>\n    <session-id>5</session-id>\n"
    "    <error-number xmlns=\"http://netconfcentral.org/ns/yuma-ncx\">268</error-number>\n"
    "  </error-info>\n</rpc-error></rpc-reply>";

static char *serialize_node(xmlNodePtr n)
{
	xmlBufferPtr b = xmlBufferCreate();
	assert_non_null(b);
	assert_true(xmlNodeDump(b, n->doc, n, 0, 0) > 0);
	char *s = strdup((const char *)xmlBufferContent(b));
	xmlBufferFree(b);
	return s;
}

static void test_hello(void **state)
{
	(void)state;
	char *h;
	size_t l;
	assert_int_equal(nc_hello_build(true, &h, &l), 0);
	assert_non_null(strstr(h, NC_CAP_BASE11));
	free(h);
	assert_int_equal(nc_hello_build(false, &h, &l), 0);
	assert_null(strstr(h, NC_CAP_BASE11));
	assert_non_null(strstr(h, NC_CAP_BASE10));
	free(h);

	struct nc_hello hello;
	struct nc_error e;
	nc_error_clear(&e);
	assert_int_equal(nc_hello_parse(HELLO, strlen(HELLO), &hello, &e), NC_OK);
	assert_int_equal(hello.ncaps, 5);
	assert_string_equal(hello.session_id, "1");
	assert_true(nc_hello_has(&hello, NC_CAP_CANDIDATE));
	assert_true(nc_hello_has(&hello, "urn:ietf:params:netconf:capability:with-defaults:1.0"));
	assert_false(nc_hello_has(&hello, NC_CAP_WRITABLE_RUNNING));
	assert_false(nc_hello_has(&hello, "urn:ietf:params:netconf:base:1"));
	nc_hello_free(&hello);

	static const char *bad[] = {
	    "<hello><capabilities><capability>x</capability></capabilities>"
	    "<session-id>1</session-id></hello>",
	    "<hello><capabilities><capability>urn:ietf:params:netconf:base:1.0</capability>"
	    "</capabilities></hello>",
	    "<rpc-reply/>",
	    "<hello>",
	    "<!DOCTYPE hello [<!ENTITY a \"b\">]><hello/>",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		nc_error_clear(&e);
		assert_int_equal(nc_hello_parse(bad[i], strlen(bad[i]), &hello, &e), NC_E_PROTO);
		assert_true(strlen(e.msg) > 0);
		assert_int_equal(hello.ncaps, 0);
	}
}

static void test_rpc_no_namespace_leak(void **state)
{
	(void)state;
	xmlNodePtr op;
	xmlDocPtr d = nc_rpc_new("edit-config", &op);
	assert_non_null(d);
	xmlNodePtr t = nc_rpc_add(op, "target", NULL);
	assert_non_null(nc_rpc_add(t, "candidate", NULL));
	xmlNodePtr cfg = nc_rpc_add(op, "config", NULL);
	struct nc_macsec_ca ca = {"CA1", "gcm-aes-128", "abcd", CAK32, NULL, false, NULL, 0};
	xmlNodePtr conf;
	struct nc_error e;
	nc_error_clear(&e);
	assert_int_equal(nc_macsec_build_ca(d, &ca, NC_CFG_NS_NONE, &conf, &e), NC_OK);
	xmlAddChild(cfg, conf);
	assert_non_null(nc_rpc_add(op, "default-operation", "a<b&c"));
	char *s;
	size_t l;
	assert_int_equal(nc_rpc_serialize(d, 42, &s, &l), 0);
	assert_int_equal(strlen(s), l);
	assert_string_equal(
	    s,
	    "<nc:rpc xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\" message-id=\"42\">"
	    "<nc:edit-config><nc:target><nc:candidate/></nc:target><nc:config>"
	    "<configuration><security><macsec><connectivity-association><name>CA1</name>"
	    "<cipher-suite>gcm-aes-128</cipher-suite><security-mode>static-cak</security-mode>"
	    "<pre-shared-key><ckn>abcd</ckn><cak>" CAK32 "</cak></pre-shared-key>"
	    "</connectivity-association></macsec></security></configuration></nc:config>"
	    "<nc:default-operation>a&lt;b&amp;c</nc:default-operation></nc:edit-config></nc:rpc>");
	/* re-parsed, <configuration> is in no namespace */
	xmlDocPtr p = xmlReadMemory(s, (int)l, NULL, NULL, 0);
	assert_non_null(p);
	xmlNodePtr c = nc_xml_child(
	    nc_xml_child(nc_xml_child(xmlDocGetRootElement(p), "edit-config"), "config"),
	    "configuration");
	assert_non_null(c);
	assert_null(c->ns);
	xmlFreeDoc(p);
	free(s);
	xmlFreeDoc(d);
}

static void test_reply_ok_data(void **state)
{
	(void)state;
	struct nc_reply r;
	struct nc_error e;
	nc_error_clear(&e);
	const char *ok =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rpc-reply message-id=\"101\"\n"
	    "  xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\"\n"
	    "  xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">\n  <ok/>\n</rpc-reply>";
	assert_int_equal(nc_reply_parse(ok, strlen(ok), &r, &e), NC_OK);
	assert_int_equal(r.kind, NC_REPLY_OK);
	assert_string_equal(r.message_id, "101");
	nc_reply_free(&r);
	/* Junos' prefixed form */
	const char *pre = "<nc:rpc-reply xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\" "
	                  "message-id=\"3\"><nc:data><configuration/></nc:data></nc:rpc-reply>";
	assert_int_equal(nc_reply_parse(pre, strlen(pre), &r, &e), NC_OK);
	assert_int_equal(r.kind, NC_REPLY_DATA);
	assert_non_null(nc_xml_child(r.data, "configuration"));
	nc_reply_free(&r);
	const char *empty = "<rpc-reply message-id=\"4\"/>";
	assert_int_equal(nc_reply_parse(empty, strlen(empty), &r, &e), NC_OK);
	assert_int_equal(r.kind, NC_REPLY_EMPTY);
	nc_reply_free(&r);
	const char *notif =
	    "<notification xmlns=\"urn:ietf:params:xml:ns:netconf:notification:1.0\">"
	    "<eventTime>2026-01-01T00:00:00Z</eventTime></notification>";
	assert_int_equal(nc_reply_parse(notif, strlen(notif), &r, &e), NC_OK);
	assert_int_equal(r.kind, NC_REPLY_NOTIFICATION);
	nc_reply_free(&r);
	assert_int_equal(e.nrpc, 0);
}

static void test_reply_errors(void **state)
{
	(void)state;
	struct nc_reply r;
	struct nc_error e;
	nc_error_clear(&e);
	assert_int_equal(nc_reply_parse(LOCK_DENIED, strlen(LOCK_DENIED), &r, &e), NC_OK);
	assert_int_equal(r.kind, NC_REPLY_ERROR);
	assert_int_equal(e.nrpc, 1);
	assert_string_equal(e.rpc[0].type, "protocol");
	assert_string_equal(e.rpc[0].tag, "lock-denied");
	assert_string_equal(e.rpc[0].severity, "error");
	assert_string_equal(e.rpc[0].app_tag, "no-access");
	assert_string_equal(e.rpc[0].message, "lock denied");
	assert_string_equal(e.rpc[0].session_id, "5");
	nc_reply_free(&r);

	/* two errors, a path, a bad value that is a key (redacted) and one that is not */
	nc_error_clear(&e);
	const char *two =
	    "<rpc-reply message-id=\"9\"><rpc-error><error-type>protocol</error-type>"
	    "<error-tag>invalid-value</error-tag><error-severity>error</error-severity>"
	    "<error-path>/nc:rpc/nc:edit-config/nc:config/jc:configuration/jc-security:security/"
	    "jc-security:macsec/jc-security:connectivity-association[jc-security:name='BAD1']/"
	    "jc-security:cipher-suite</error-path><error-message>value not in set</error-message>"
	    "<error-info><bad-value>gcm-aes-999</bad-value></error-info></rpc-error>"
	    "<rpc-error><error-type>protocol</error-type><error-tag>invalid-value</error-tag>"
	    "<error-severity>error</error-severity><error-path>/x/jc-security:pre-shared-key/"
	    "jc-security:cak</error-path><error-info><bad-value>" CAK64 "1</bad-value>"
	    "</error-info></rpc-error></rpc-reply>";
	assert_int_equal(nc_reply_parse(two, strlen(two), &r, &e), NC_OK);
	assert_int_equal(r.kind, NC_REPLY_ERROR);
	assert_int_equal(e.nrpc, 2);
	assert_non_null(strstr(e.rpc[0].path, "cipher-suite"));
	assert_string_equal(e.rpc[0].bad_value, "gcm-aes-999");
	assert_string_equal(e.rpc[1].bad_value, "<redacted>");
	char buf[2048];
	nc_errf(&e, NC_E_RPC, "edit-config refused");
	nc_error_format(&e, buf, sizeof buf);
	assert_null(strstr(buf, CAK64));
	assert_non_null(strstr(buf, "tag=invalid-value"));
	assert_non_null(strstr(buf, "bad-value=gcm-aes-999"));
	nc_reply_free(&r);

	/* a warning with <ok/> is success; the warning is kept */
	nc_error_clear(&e);
	const char *warn = "<rpc-reply message-id=\"2\"><rpc-error><error-type>application"
	                   "</error-type><error-tag>operation-failed</error-tag><error-severity>"
	                   "warning</error-severity><error-message>statement not found"
	                   "</error-message></rpc-error><ok/></rpc-reply>";
	assert_int_equal(nc_reply_parse(warn, strlen(warn), &r, &e), NC_OK);
	assert_int_equal(r.kind, NC_REPLY_OK);
	assert_int_equal(e.nrpc, 1);
	assert_string_equal(e.rpc[0].severity, "warning");
	nc_reply_free(&r);
}

static void test_reply_malformed(void **state)
{
	(void)state;
	static const char *bad[] = {
	    "",
	    "<rpc-reply message-id=\"1\"><ok/>",
	    "<hello/>",
	    "<!DOCTYPE rpc-reply [<!ENTITY x \"y\">]><rpc-reply>&x;</rpc-reply>",
	    "<rpc-reply xmlns:a=\"u\"><a:ok></rpc-reply>",
	    "\x01\x02",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct nc_reply r;
		struct nc_error e;
		nc_error_clear(&e);
		assert_int_equal(nc_reply_parse(bad[i], strlen(bad[i]), &r, &e), NC_E_PROTO);
		assert_null(r.doc);
	}
}

static void test_macsec_validation(void **state)
{
	(void)state;
	struct nc_error e;
	assert_int_equal(nc_macsec_cak_len("gcm-aes-128"), 32);
	assert_int_equal(nc_macsec_cak_len("gcm-aes-xpn-256"), 64);
	assert_int_equal(nc_macsec_cak_len("gcm-aes-999"), 0);
	struct nc_macsec_ca good = {"CA1", "gcm-aes-xpn-256", CKN64, CAK64, "et-0/0/1", false, NULL,
	                            0};
	nc_error_clear(&e);
	assert_int_equal(nc_macsec_check_ca(&good, &e), NC_OK);
	struct {
		struct nc_macsec_ca ca;
		const char *needle;
	} bad[] = {
	    {{"CA1", "gcm-aes-xpn-256", "abc", CAK64, NULL, false, NULL, 0}, "ckn"}, /* odd */
	    {{"CA1", "gcm-aes-xpn-256", "a", CAK64, NULL, false, NULL, 0}, "ckn"},   /* short */
	    {{"CA1", "gcm-aes-xpn-256", CKN64 "ab", CAK64, NULL, false, NULL, 0}, "ckn"}, /* 66 */
	    {{"CA1", "gcm-aes-xpn-256", "zz", CAK64, NULL, false, NULL, 0},
	     "hexadecimal"},                                                           /* not hex */
	    {{"CA1", "gcm-aes-128", "abcd", CAK64, NULL, false, NULL, 0}, "needs 32"}, /* suite */
	    {{"CA1", "gcm-aes-256", "abcd", CAK32, NULL, false, NULL, 0}, "needs 64"},
	    {{"CA1", "gcm-aes-999", "abcd", CAK32, NULL, false, NULL, 0}, "cipher-suite"},
	    {{"CA1", "gcm-aes-128", "abcd", "0011223344556677889gaabbccddeeff", NULL, false, NULL,
	      0},
	     "cak"},
	    {{"", "gcm-aes-128", "abcd", CAK32, NULL, false, NULL, 0}, "empty"},
	    {{"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456", "gcm-aes-128", "abcd", CAK32, NULL, false, NULL,
	      0},
	     "at most 32"},
	    {{"CA 1", "gcm-aes-128", "abcd", CAK32, NULL, false, NULL, 0}, "not allowed"},
	    {{"CA<1", "gcm-aes-128", "abcd", CAK32, NULL, false, NULL, 0}, "not allowed"},
	    {{"CA1", "gcm-aes-128", "abcd", CAK32, "0et", false, NULL, 0}, "start with a letter"},
	    {{"CA1", "gcm-aes-128", "abcd", CAK32, "et-0/0/1;rm", false, NULL, 0}, "not allowed"},
	    {{"CA1", "gcm-aes-128", "abcd", CAK32, "", false, NULL, 0}, "interface"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		nc_error_clear(&e);
		assert_int_equal(nc_macsec_check_ca(&bad[i].ca, &e), NC_E_INVALID);
		if (strstr(e.msg, bad[i].needle) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, e.msg, bad[i].needle);
		/* never the key in a message */
		assert_null(strstr(e.msg, CAK64));
		assert_null(strstr(e.msg, CAK32));
	}
	struct nc_macsec_keychain kc = {"CA1", "gcm-aes-256",      "KC1",      3,    CKN64,
	                                CAK64, "2026-11-23.14:05", "et-0/0/1", false};
	nc_error_clear(&e);
	assert_int_equal(nc_macsec_check_keychain(&kc, &e), NC_OK);
	kc.start_time = "2026-11-23.14:05:59";
	assert_int_equal(nc_macsec_check_keychain(&kc, &e), NC_OK);
	static const char *badt[] = {"2026-11-23 14:05",   "2026-13-23.14:05", "2026-11-23.24:00",
	                             "2026-11-23.14:05:5", "1700000000",       ""};
	for (size_t i = 0; i < sizeof badt / sizeof badt[0]; i++) {
		kc.start_time = badt[i];
		assert_int_equal(nc_macsec_check_keychain(&kc, &e), NC_E_INVALID);
		assert_non_null(strstr(e.msg, "start-time"));
	}
	kc.start_time = "2026-11-23.14:05";
	kc.key = 64;
	assert_int_equal(nc_macsec_check_keychain(&kc, &e), NC_E_INVALID);
	kc.key = 63;
	kc.secret = CAK32; /* 256-bit suite needs 64 */
	assert_int_equal(nc_macsec_check_keychain(&kc, &e), NC_E_INVALID);
	assert_non_null(strstr(e.msg, "secret"));
}

static void test_macsec_build(void **state)
{
	(void)state;
	xmlDocPtr d = xmlNewDoc(BAD_CAST "1.0");
	struct nc_error e;
	nc_error_clear(&e);
	struct nc_macsec_ca ca = {"CA1", "gcm-aes-xpn-256", CKN64, CAK64, "et-0/0/1", false, NULL,
	                          0};
	xmlNodePtr n;
	assert_int_equal(nc_macsec_build_ca(d, &ca, NC_CFG_NS_YANG, &n, &e), NC_OK);
	char *s = serialize_node(n);
	assert_string_equal(
	    s, "<configuration xmlns=\"http://yang.juniper.net/junos/conf/root\">"
	       "<security xmlns=\"http://yang.juniper.net/junos/conf/security\"><macsec>"
	       "<connectivity-association><name>CA1</name><cipher-suite>gcm-aes-xpn-256"
	       "</cipher-suite><security-mode>static-cak</security-mode><pre-shared-key>"
	       "<ckn>" CKN64 "</ckn><cak>" CAK64 "</cak></pre-shared-key>"
	       "</connectivity-association><interfaces><name>et-0/0/1</name>"
	       "<connectivity-association>CA1</connectivity-association></interfaces>"
	       "</macsec></security></configuration>");
	/* the log form */
	char *red = nc_redact(s, strlen(s));
	assert_null(strstr(red, CAK64));
	assert_non_null(strstr(red, "<cak><redacted></cak>"));
	assert_non_null(strstr(red, CKN64));
	free(red);
	free(s);
	xmlFreeNode(n);

	/* provisioning: more interfaces bound in the same edit */
	static const char *const more[] = {"et-0/0/2", "ae0.1"};
	ca.more_ifnames = more;
	ca.nmore_ifnames = 2;
	assert_int_equal(nc_macsec_check_ca(&ca, &e), NC_OK);
	assert_int_equal(nc_macsec_build_ca(d, &ca, NC_CFG_NS_NONE, &n, &e), NC_OK);
	s = serialize_node(n);
	assert_non_null(strstr(s, "</connectivity-association><interfaces><name>et-0/0/1</name>"
	                          "<connectivity-association>CA1</connectivity-association>"
	                          "</interfaces><interfaces><name>et-0/0/2</name>"
	                          "<connectivity-association>CA1</connectivity-association>"
	                          "</interfaces><interfaces><name>ae0.1</name>"
	                          "<connectivity-association>CA1</connectivity-association>"
	                          "</interfaces></macsec>"));
	free(s);
	xmlFreeNode(n);
	static const char *const bad_more[] = {"et-0/0/2", "0bad"};
	ca.more_ifnames = bad_more;
	assert_int_equal(nc_macsec_check_ca(&ca, &e), NC_E_INVALID);
	assert_non_null(strstr(e.msg, "0bad"));
	ca.ifname = NULL;
	ca.more_ifnames = more;
	assert_int_equal(nc_macsec_check_ca(&ca, &e), NC_E_INVALID);
	assert_non_null(strstr(e.msg, "without the first"));
	ca.ifname = "et-0/0/1";
	ca.nmore_ifnames = NC_MORE_IFNAMES_MAX + 1;
	assert_int_equal(nc_macsec_check_ca(&ca, &e), NC_E_INVALID);
	ca.nmore_ifnames = 0;

	struct nc_macsec_keychain kc = {"CA1", "gcm-aes-128",      "KC1", 7,    "ab01",
	                                CAK32, "2026-11-23.14:05", NULL,  false};
	assert_int_equal(nc_macsec_build_keychain(d, &kc, NC_CFG_NS_NONE, &n, &e), NC_OK);
	s = serialize_node(n);
	assert_string_equal(
	    s, "<configuration><security><macsec><connectivity-association><name>CA1</name>"
	       "<cipher-suite>gcm-aes-128</cipher-suite><security-mode>static-cak</security-mode>"
	       "<pre-shared-key-chain>KC1</pre-shared-key-chain></connectivity-association>"
	       "</macsec><authentication-key-chains><key-chain><name>KC1</name><key><name>7</name>"
	       "<secret>" CAK32 "</secret><key-name>ab01</key-name><start-time>2026-11-23.14:05"
	       "</start-time></key></key-chain></authentication-key-chains></security>"
	       "</configuration>");
	red = nc_redact(s, strlen(s));
	assert_null(strstr(red, CAK32));
	free(red);
	free(s);
	xmlFreeNode(n);

	/* replace scoped to the CA entry: nc:operation on it, NETCONF namespace declared there */
	ca.replace = true;
	ca.ifname = NULL;
	assert_int_equal(nc_macsec_build_ca(d, &ca, NC_CFG_NS_NONE, &n, &e), NC_OK);
	s = serialize_node(n);
	assert_non_null(strstr(s, "<configuration><security><macsec><connectivity-association "
	                          "xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\" "
	                          "nc:operation=\"replace\"><name>CA1</name>"));
	free(s);
	xmlFreeNode(n);
	ca.replace = false;

	/* a refused value builds nothing */
	ca.ckn = "abc";
	n = (xmlNodePtr)1;
	assert_int_equal(nc_macsec_build_ca(d, &ca, NC_CFG_NS_NONE, &n, &e), NC_E_INVALID);
	assert_null(n);

	assert_int_equal(nc_macsec_filter_ca(d, "CA1", NULL, NC_CFG_NS_NONE, &n, &e), NC_OK);
	s = serialize_node(n);
	assert_string_equal(s, "<configuration><security><macsec><connectivity-association>"
	                       "<name>CA1</name></connectivity-association></macsec></security>"
	                       "</configuration>");
	free(s);
	xmlFreeNode(n);
	xmlFreeDoc(d);
}

static void test_macsec_readback(void **state)
{
	(void)state;
	const char *reply =
	    "<rpc-reply message-id=\"5\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><data>"
	    "<configuration xmlns=\"http://yang.juniper.net/junos/conf/root\">"
	    "<security xmlns=\"http://yang.juniper.net/junos/conf/security\"><macsec>"
	    "<connectivity-association><name>OTHER</name></connectivity-association>"
	    "<connectivity-association>\n <name>CA1</name>\n"
	    " <cipher-suite>gcm-aes-xpn-256</cipher-suite><security-mode>static-cak</security-mode>"
	    "<pre-shared-key><ckn>" CKN64 "</ckn><cak>" CAK64 "</cak></pre-shared-key>"
	    "</connectivity-association><interfaces><name>et-0/0/1</name>"
	    "<connectivity-association>CA1</connectivity-association></interfaces>"
	    "</macsec></security></configuration></data></rpc-reply>";
	struct nc_reply r;
	struct nc_error e;
	nc_error_clear(&e);
	assert_int_equal(nc_reply_parse(reply, strlen(reply), &r, &e), NC_OK);
	struct nc_macsec_state st;
	nc_macsec_read(r.data, "CA1", "et-0/0/1", &st);
	assert_true(st.found);
	assert_string_equal(st.ckn, CKN64);
	assert_string_equal(st.bound_ca, "CA1");
	struct nc_macsec_ca ca = {"CA1", "gcm-aes-xpn-256", CKN64, CAK64, "et-0/0/1", false, NULL,
	                          0};
	assert_int_equal(nc_macsec_verify(&ca, &st, &e), NC_OK);
	/* CKN compared without case (Junos may upper-case it) */
	char up[65];
	for (int i = 0; i < 65; i++)
		up[i] = (char)(CKN64[i] >= 'a' ? CKN64[i] - 32 : CKN64[i]);
	ca.ckn = up;
	assert_int_equal(nc_macsec_verify(&ca, &st, &e), NC_OK);
	ca.ckn = "abcd";
	assert_int_equal(nc_macsec_verify(&ca, &st, &e), NC_E_VERIFY);
	ca.ckn = CKN64;
	ca.cak = CAK32 CAK32;
	assert_int_equal(nc_macsec_verify(&ca, &st, &e), NC_E_VERIFY);
	assert_null(strstr(e.msg, CAK64));
	/* Junos returns the CAK $9$-encrypted: not compared */
	strcpy(st.cak, "$9$abcdefg");
	assert_int_equal(nc_macsec_verify(&ca, &st, &e), NC_OK);
	ca.ifname = "et-0/0/2";
	assert_int_equal(nc_macsec_verify(&ca, &st, &e), NC_E_VERIFY);
	nc_macsec_read(r.data, "CA9", NULL, &st);
	assert_false(st.found);
	nc_reply_free(&r);
}

static void test_redact(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"<a><cak>0011</cak><ckn>22</ckn></a>", "<a><cak><redacted></cak><ckn>22</ckn></a>"},
	    {"<x:secret a=\"1\">s3</x:secret>", "<x:secret a=\"1\"><redacted></x:secret>"},
	    {"<password>pw</password><cak/>", "<password><redacted></password><cak/>"},
	    {"<cak></cak>", "<cak></cak>"},
	    {"<cakes>1</cakes><mycak>2</mycak>", "<cakes>1</cakes><mycak>2</mycak>"},
	    {"<cak>00112233", "<cak><redacted>"}, /* cut off */
	    {"<cak", "<cak"},
	    {"<", "<"},
	    {"plain", "plain"},
	    {"<cak>\n  0011\n</cak>", "<cak><redacted></cak>"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *r = nc_redact(cases[i].in, strlen(cases[i].in));
		assert_non_null(r);
		assert_string_equal(r, cases[i].out);
		free(r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hello),           cmocka_unit_test(test_rpc_no_namespace_leak),
	    cmocka_unit_test(test_reply_ok_data),   cmocka_unit_test(test_reply_errors),
	    cmocka_unit_test(test_reply_malformed), cmocka_unit_test(test_macsec_validation),
	    cmocka_unit_test(test_macsec_build),    cmocka_unit_test(test_macsec_readback),
	    cmocka_unit_test(test_redact),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	xmlCleanupParser();
	return rc;
}
