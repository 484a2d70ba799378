/*
 * test_frame.c - the codec against docs/protocol.md: round trips, the exact
 * header bytes, every bad-frame class, truncation at every offset, the ICV.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "frame.h"

/* Interposed: proves that frame_verify() compares through CRYPTO_memcmp, the
 * constant-time comparison, and not memcmp. Same contract as OpenSSL's. */
static int ct_calls;
int CRYPTO_memcmp(const void *a, const void *b, size_t len)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char r = 0;
	ct_calls++;
	for (size_t i = 0; i < len; i++)
		r |= x[i] ^ y[i];
	return r;
}

static const uint8_t SECRET[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t OTHER[32] = "fedcba9876543210fedcba9876543210";
static const struct qkd_ident IDENT = {QKD_OUI_DEFAULT, QKD_PID_DEFAULT};
static const char *UUIDS[] = {
    "b3f5a1c2-7d4e-4f1a-9c3b-2e8d6f0a1b2c",
    "0e9f8d7c-6b5a-4938-8271-6a5b4c3d2e1f",
    "11111111-2222-4333-8444-555555555555",
};

struct fixture {
	struct qkd_key key;
	struct qkd_key other;
};

static int setup(void **state)
{
	static struct fixture f;
	char err[128];
	if (qkd_key_init(&f.key, SECRET, sizeof SECRET, err, sizeof err) != 0 ||
	    qkd_key_init(&f.other, OTHER, sizeof OTHER, err, sizeof err) != 0)
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	qkd_key_clear(&f->key);
	qkd_key_clear(&f->other);
	return 0;
}

static struct qkd_str S(const char *s) {
	return (struct qkd_str){s, strlen(s)};
}

static void
base_msg(struct qkd_msg *m, uint8_t type)
{
	memset(m, 0, sizeof *m);
	m->oui = QKD_OUI_DEFAULT;
	m->pid = QKD_PID_DEFAULT;
	m->type = type;
	m->secret_id = 3;
	m->channel = 7;
	m->epoch = 2;
	m->seq = 41;
	m->sender = S("SAE-A");
}

static void hello_msg(struct qkd_msg *m)
{
	base_msg(m, QKD_MSG_HELLO);
	m->u.hello.role = QKD_ROLE_MASTER;
	m->u.hello.state = QKD_STATE_ROTATING;
	m->u.hello.interval = 5;
	m->u.hello.current_rotation = 9;
	m->u.hello.pending_rotation = 10;
	struct qkd_str k = S(UUIDS[0]);
	qkd_keyids_digest(&k, 1, m->u.hello.digest);
}

static void announce_msg(struct qkd_msg *m, unsigned nkeys, bool tlvs)
{
	base_msg(m, QKD_MSG_ANNOUNCE);
	m->u.announce.rotation = 10;
	m->u.announce.nkeys = (uint8_t)nkeys;
	for (unsigned i = 0; i < nkeys; i++)
		m->u.announce.keys[i] = S(UUIDS[i % 3]);
	if (tlvs) {
		m->u.announce.has_activation = true;
		m->u.announce.activation = 1795000000;
		m->u.announce.has_slot = true;
		m->u.announce.slot = 63;
	}
}

static void ack_msg(struct qkd_msg *m, const char *detail)
{
	base_msg(m, QKD_MSG_ACK);
	m->sender = S("SAE-B");
	m->u.ack.rotation = 10;
	m->u.ack.result = detail ? QKD_RES_KME_NOT_FOUND : QKD_RES_OK;
	if (detail)
		m->u.ack.detail = S(detail);
}

static const struct qkd_l2 UNTAGGED = {.dst = QKD_DST_DEFAULT, .src = {2, 0, 0, 0, 0, 0x0a}};
static const struct qkd_l2 TAGGED = {
    .dst = QKD_DST_DEFAULT, .src = {2, 0, 0, 0, 0, 0x0a}, .tagged = true, .vid = 100, .pcp = 5};

static size_t encode(const struct qkd_l2 *l2, const struct qkd_msg *m, const struct qkd_key *key,
                     uint8_t *buf, size_t cap)
{
	char err[128] = "";
	int n = qkd_frame_encode(l2, m, key, buf, cap, err, sizeof err);
	if (n < 0)
		fail_msg("encode failed: %s", err);
	return (size_t)n;
}

static void assert_str(struct qkd_str a, struct qkd_str b)
{
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.ptr, b.ptr, a.len);
}

static void assert_common(const struct qkd_msg *a, const struct qkd_msg *b)
{
	assert_int_equal(a->oui, b->oui);
	assert_int_equal(a->pid, b->pid);
	assert_int_equal(QKD_VERSION, b->version);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->secret_id, b->secret_id);
	assert_int_equal(a->channel, b->channel);
	assert_int_equal(a->epoch, b->epoch);
	assert_int_equal(a->seq, b->seq);
	assert_str(a->sender, b->sender);
}

/* Encodes, decodes and verifies; returns the decoded frame. */
static void roundtrip(struct fixture *f, const struct qkd_l2 *l2, const struct qkd_msg *m,
                      struct qkd_decoded *d, uint8_t *buf, size_t cap)
{
	size_t n = encode(l2, m, &f->key, buf, cap);
	assert_int_equal(qkd_frame_decode(buf, n, &IDENT, d), QKD_OK);
	assert_int_equal(qkd_frame_verify(d, &f->key), QKD_OK);
	assert_int_equal(d->padding, 0);
	assert_int_equal(d->l2.tagged, l2->tagged);
	assert_memory_equal(d->l2.dst, l2->dst, 6);
	assert_memory_equal(d->l2.src, l2->src, 6);
	if (l2->tagged) {
		assert_int_equal(d->l2.vid, l2->vid);
		assert_int_equal(d->l2.pcp, l2->pcp);
	}
	assert_int_equal(n, (l2->tagged ? 18 : 14) + d->pdu_len);
	assert_common(m, &d->msg);
}

static void test_hello_roundtrip(void **state)
{
	uint8_t buf[QKD_FRAME_MAX];
	struct qkd_decoded d;
	struct qkd_msg m;
	hello_msg(&m);
	for (int t = 0; t < 2; t++) {
		roundtrip(*state, t ? &TAGGED : &UNTAGGED, &m, &d, buf, sizeof buf);
		const struct qkd_hello *h = &d.msg.u.hello;
		assert_int_equal(h->role, QKD_ROLE_MASTER);
		assert_int_equal(h->state, QKD_STATE_ROTATING);
		assert_int_equal(h->interval, 5);
		assert_int_equal(h->current_rotation, 9);
		assert_int_equal(h->pending_rotation, 10);
		assert_memory_equal(h->digest, m.u.hello.digest, QKD_DIGEST_LEN);
		assert_int_equal(d.pdu_len, QKD_HDR_LEN + 5 + 28 + QKD_ICV_LEN);
	}
}

static void test_announce_roundtrip(void **state)
{
	uint8_t buf[QKD_FRAME_MAX];
	struct qkd_decoded d;
	struct qkd_msg m;
	unsigned counts[] = {1, 2, QKD_KEYS_MAX};
	for (size_t c = 0; c < 3; c++) {
		for (int t = 0; t < 4; t++) {
			announce_msg(&m, counts[c], t & 2);
			roundtrip(*state, (t & 1) ? &TAGGED : &UNTAGGED, &m, &d, buf, sizeof buf);
			const struct qkd_announce *a = &d.msg.u.announce;
			assert_int_equal(a->rotation, 10);
			assert_int_equal(a->nkeys, counts[c]);
			for (unsigned i = 0; i < counts[c]; i++)
				assert_str(a->keys[i], m.u.announce.keys[i]);
			assert_int_equal(a->has_activation, (t & 2) != 0);
			assert_int_equal(a->has_slot, (t & 2) != 0);
			if (t & 2) {
				assert_int_equal(a->activation, 1795000000);
				assert_int_equal(a->slot, 63);
			}
		}
	}
}

static void test_ack_roundtrip(void **state)
{
	uint8_t buf[QKD_FRAME_MAX];
	struct qkd_decoded d;
	struct qkd_msg m;
	ack_msg(&m, NULL);
	roundtrip(*state, &UNTAGGED, &m, &d, buf, sizeof buf);
	assert_int_equal(d.msg.u.ack.rotation, 10);
	assert_int_equal(d.msg.u.ack.result, QKD_RES_OK);
	assert_int_equal(d.msg.u.ack.detail.len, 0);
	ack_msg(&m, "key_ID not found at KME-B (HTTP 400)");
	roundtrip(*state, &TAGGED, &m, &d, buf, sizeof buf);
	assert_int_equal(d.msg.u.ack.result, QKD_RES_KME_NOT_FOUND);
	assert_str(d.msg.u.ack.detail, m.u.ack.detail);
}

/* The example of protocol.md §9, octet for octet up to the ICV. */
static void test_spec_example_bytes(void **state)
{
	struct fixture *f = *state;
	static const uint8_t want[] = {0x03, 0x51, 0x4b, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00,
	                               0x00, 0x00, 0x0b, 0x88, 0xb7, 0xac, 0xde, 0x48, 0x51,
	                               0x4b, 0x01, 0x03, 0x00, 0x00, 0x2e, 0x00, 0x01, 0x00,
	                               0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
	                               0x00, 0x01, 0x42, 0x00, 0x00, 0x00, 0x01, 0x00};
	struct qkd_l2 l2 = {.dst = QKD_DST_DEFAULT, .src = {2, 0, 0, 0, 0, 0x0b}};
	struct qkd_msg m;
	base_msg(&m, QKD_MSG_ACK);
	m.secret_id = 0;
	m.epoch = 1;
	m.seq = 1;
	m.sender = S("B");
	m.u.ack.rotation = 1;
	uint8_t buf[128];
	size_t n = encode(&l2, &m, &f->key, buf, sizeof buf);
	assert_int_equal(n, 60); /* 14 + 46: the smallest frame, no padding needed */
	assert_memory_equal(buf, want, sizeof want);
}

/* RFC 4231 test case 6: HMAC-SHA-256 with a 131-octet key, first 128 bits. */
static void test_icv_is_hmac_sha256(void **state)
{
	(void)state;
	uint8_t key[131];
	memset(key, 0xaa, sizeof key);
	static const char data[] = "Test Using Larger Than Block-Size Key - Hash Key First";
	static const uint8_t want[16] = {0x60, 0xe4, 0x31, 0x59, 0x1e, 0xe0, 0xb6, 0x7f,
	                                 0x0d, 0x8a, 0x26, 0xaa, 0xcb, 0xf5, 0xb7, 0x7f};
	struct qkd_key k;
	char err[128];
	assert_int_equal(qkd_key_init(&k, key, sizeof key, err, sizeof err), 0);
	uint8_t pdu[sizeof data - 1 + QKD_ICV_LEN];
	memcpy(pdu, data, sizeof data - 1);
	assert_int_equal(qkd_pdu_sign(pdu, sizeof pdu, &k), 0);
	assert_memory_equal(pdu + sizeof data - 1, want, 16);
	qkd_key_clear(&k);
}

static void test_key_sizes(void **state)
{
	(void)state;
	uint8_t big[QKD_SECRET_MAX + 1] = {0};
	struct qkd_key k;
	char err[128] = "";
	assert_int_equal(qkd_key_init(&k, big, QKD_SECRET_MIN - 1, err, sizeof err), -1);
	assert_non_null(strstr(err, "31 octets"));
	assert_int_equal(qkd_key_init(&k, big, QKD_SECRET_MAX + 1, err, sizeof err), -1);
	assert_int_equal(qkd_key_init(&k, big, QKD_SECRET_MIN, err, sizeof err), 0);
	qkd_key_clear(&k);
	assert_int_equal(qkd_key_init(&k, big, QKD_SECRET_MAX, err, sizeof err), 0);
	qkd_key_clear(&k);
	qkd_key_clear(&k); /* twice is harmless */
}

static void expect_encode_error(struct fixture *f, const struct qkd_msg *m, const char *what)
{
	uint8_t buf[QKD_FRAME_MAX];
	char err[160] = "";
	assert_int_equal(qkd_frame_encode(&UNTAGGED, m, &f->key, buf, sizeof buf, err, sizeof err),
	                 -1);
	if (strstr(err, what) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, what);
}

static void test_encode_refuses_bad_messages(void **state)
{
	struct fixture *f = *state;
	struct qkd_msg m;
	static char longkey[QKD_KEYID_MAX + 2];
	memset(longkey, 'k', QKD_KEYID_MAX + 1);

	hello_msg(&m), m.sender = S("");
	expect_encode_error(f, &m, "sender ID");
	hello_msg(&m), m.sender = S("has space");
	expect_encode_error(f, &m, "sender ID");
	hello_msg(&m), m.sender = S("123456789012345678901234567890123");
	expect_encode_error(f, &m, "sender ID");
	hello_msg(&m), m.channel = 0;
	expect_encode_error(f, &m, "channel");
	hello_msg(&m), m.epoch = 0;
	expect_encode_error(f, &m, "epoch");
	hello_msg(&m), m.seq = 0;
	expect_encode_error(f, &m, "sequence");
	hello_msg(&m), m.u.hello.role = 3;
	expect_encode_error(f, &m, "role");
	hello_msg(&m), m.u.hello.interval = 0;
	expect_encode_error(f, &m, "interval");
	hello_msg(&m), m.u.hello.interval = 3601;
	expect_encode_error(f, &m, "interval");
	hello_msg(&m), m.type = 9;
	expect_encode_error(f, &m, "type");
	hello_msg(&m), m.oui = 0x1000000;
	expect_encode_error(f, &m, "OUI");
	announce_msg(&m, 0, false);
	expect_encode_error(f, &m, "key_IDs");
	announce_msg(&m, 1, false), m.u.announce.nkeys = QKD_KEYS_MAX + 1;
	expect_encode_error(f, &m, "key_IDs");
	announce_msg(&m, 1, false), m.u.announce.rotation = 0;
	expect_encode_error(f, &m, "rotation");
	announce_msg(&m, 2, false), m.u.announce.keys[1] = S(longkey);
	expect_encode_error(f, &m, "key_ID 2");
	announce_msg(&m, 1, true), m.u.announce.slot = 64;
	expect_encode_error(f, &m, "slot");
	ack_msg(&m, NULL), m.u.ack.rotation = 0;
	expect_encode_error(f, &m, "rotation");
	ack_msg(&m, "tab\there");
	expect_encode_error(f, &m, "detail");
	ack_msg(&m, "0123456789012345678901234567890123456789012345678901234567890123456789");
	expect_encode_error(f, &m, "detail");

	/* 10 key_IDs of 128 octets fit 1500 octets, 11 do not. */
	longkey[QKD_KEYID_MAX] = '\0';
	announce_msg(&m, 10, true);
	m.sender = S("12345678901234567890123456789012");
	for (int i = 0; i < 10; i++)
		m.u.announce.keys[i] = S(longkey);
	uint8_t buf[QKD_FRAME_MAX];
	assert_int_equal(encode(&UNTAGGED, &m, &f->key, buf, sizeof buf), 14 + 1380);
	m.u.announce.nkeys = 11;
	m.u.announce.keys[10] = S(longkey);
	expect_encode_error(f, &m, "1500");

	/* The largest UUID ANNOUNCE of the spec: 1274 octets. */
	announce_msg(&m, QKD_KEYS_MAX, true);
	m.sender = S("12345678901234567890123456789012");
	assert_int_equal(encode(&UNTAGGED, &m, &f->key, buf, sizeof buf), 14 + 1274);

	char err[128] = "";
	hello_msg(&m);
	assert_int_equal(qkd_frame_encode(&UNTAGGED, &m, &f->key, buf, 40, err, sizeof err), -1);
	assert_non_null(strstr(err, "too small"));
	assert_int_equal(qkd_frame_encode(&UNTAGGED, &m, &f->key, buf, 70, err, sizeof err), -1);
	struct qkd_l2 l2 = TAGGED;
	l2.vid = 4095; /* reserved */
	assert_int_equal(qkd_frame_encode(&l2, &m, &f->key, buf, sizeof buf, err, sizeof err), -1);
	assert_non_null(strstr(err, "VLAN"));
}

/* Cutting a valid frame short at any octet is a clean drop, never a read past. */
static void test_truncation_at_every_offset(void **state)
{
	struct fixture *f = *state;
	struct qkd_msg msgs[4];
	hello_msg(&msgs[0]);
	announce_msg(&msgs[1], 3, true);
	ack_msg(&msgs[2], NULL);
	ack_msg(&msgs[3], "busy");
	uint8_t buf[QKD_FRAME_MAX];
	struct qkd_decoded d;
	for (int t = 0; t < 2; t++) {
		const struct qkd_l2 *l2 = t ? &TAGGED : &UNTAGGED;
		size_t hl = t ? 18 : 14;
		for (size_t i = 0; i < 4; i++) {
			size_t n = encode(l2, &msgs[i], &f->key, buf, sizeof buf);
			for (size_t k = 0; k < n; k++) {
				/* a copy of exactly k octets, so ASan sees any overread */
				uint8_t *cut = test_malloc(k ? k : 1);
				memcpy(cut, buf, k);
				enum qkd_drop r = qkd_frame_decode(cut, k, &IDENT, &d);
				enum qkd_drop want =
				    k < hl ? QKD_DROP_NOT_88B7 : QKD_DROP_TRUNCATED;
				if (r != want)
					fail_msg("type %u tagged %d cut at %zu: %s, want %s",
					         msgs[i].type, t, k, qkd_drop_name(r),
					         qkd_drop_name(want));
				test_free(cut);
			}
		}
	}
}

/* Builds a valid ACK frame into buf and returns its length (14 + 46 + 5). */
static size_t ack_frame(struct fixture *f, uint8_t *buf, size_t cap)
{
	struct qkd_msg m;
	ack_msg(&m, NULL);
	return encode(&UNTAGGED, &m, &f->key, buf, cap);
}

static enum qkd_drop decode_resigned(struct fixture *f, uint8_t *buf, size_t n)
{
	struct qkd_decoded d;
	size_t plen = (size_t)(buf[14 + 8] << 8 | buf[14 + 9]);
	if (plen >= QKD_PDU_MIN && 14 + plen <= n)
		qkd_pdu_sign(buf + 14, plen, &f->key);
	enum qkd_drop r = qkd_frame_decode(buf, n, &IDENT, &d);
	if (r == QKD_OK)
		r = qkd_frame_verify(&d, &f->key);
	return r;
}

static void test_header_checks(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[QKD_FRAME_MAX];
	struct qkd_decoded d;
	size_t n = ack_frame(f, buf, sizeof buf);
	uint8_t *p = buf + 14;

	buf[12] = 0x08, buf[13] = 0x00;
	assert_int_equal(qkd_frame_decode(buf, n, &IDENT, &d), QKD_DROP_NOT_88B7);
	n = ack_frame(f, buf, sizeof buf);
	p[2] ^= 1; /* OUI */
	assert_int_equal(qkd_frame_decode(buf, n, &IDENT, &d), QKD_DROP_FOREIGN);
	n = ack_frame(f, buf, sizeof buf);
	p[4] ^= 1; /* PID */
	assert_int_equal(qkd_frame_decode(buf, n, &IDENT, &d), QKD_DROP_FOREIGN);
	struct qkd_ident other = {0x123456, 0xBEEF};
	n = ack_frame(f, buf, sizeof buf);
	assert_int_equal(qkd_frame_decode(buf, n, &other, &d), QKD_DROP_FOREIGN);
	p[5] = 2;
	assert_int_equal(decode_resigned(f, buf, n), QKD_DROP_BAD_VERSION);
	p[5] = 0;
	assert_int_equal(decode_resigned(f, buf, n), QKD_DROP_BAD_VERSION);

	/* Length field */
	n = ack_frame(f, buf, sizeof buf);
	p[8] = 0, p[9] = QKD_PDU_MIN - 1;
	assert_int_equal(qkd_frame_decode(buf, n, &IDENT, &d), QKD_DROP_BAD_LENGTH);
	p[8] = 0x05, p[9] = 0xDD; /* 1501 */
	assert_int_equal(qkd_frame_decode(buf, n, &IDENT, &d), QKD_DROP_BAD_LENGTH);
	p[8] = 0, p[9] = (uint8_t)(n - 14 + 1);
	assert_int_equal(qkd_frame_decode(buf, n, &IDENT, &d), QKD_DROP_TRUNCATED);
	/* a Length shorter than the content: the rest is unauthenticated trailing data */
	n = ack_frame(f, buf, sizeof buf);
	p[9] = (uint8_t)(p[9] - 1);
	assert_int_equal(decode_resigned(f, buf, n), QKD_DROP_TRAILING);

	/* Trailing octets after a valid PDU: dropped, even zeros */
	n = ack_frame(f, buf, sizeof buf);
	memset(buf + n, 0, 4);
	assert_int_equal(qkd_frame_decode(buf, n + 4, &IDENT, &d), QKD_DROP_TRAILING);
	assert_int_equal(qkd_frame_decode(buf, n, &IDENT, &d), QKD_OK);

	/* Ethernet padding up to 60 octets is allowed: a 41-octet PDU (Length at
	 * its minimum) padded to 60 passes the length checks and is then
	 * malformed (no room for the ACK fields), not "trailing". */
	n = ack_frame(f, buf, sizeof buf);
	p[9] = QKD_PDU_MIN;
	memset(buf + 14 + QKD_PDU_MIN, 0, 60 - 14 - QKD_PDU_MIN);
	assert_int_equal(qkd_frame_decode(buf, 60, &IDENT, &d), QKD_DROP_MALFORMED);
	assert_int_equal(d.padding, 60 - 14 - QKD_PDU_MIN);

	/* Unknown type, before anything type specific */
	n = ack_frame(f, buf, sizeof buf);
	p[6] = 4;
	assert_int_equal(decode_resigned(f, buf, n), QKD_DROP_UNKNOWN_TYPE);
	p[6] = 0;
	assert_int_equal(decode_resigned(f, buf, n), QKD_DROP_UNKNOWN_TYPE);

	/* Flags are ignored */
	n = ack_frame(f, buf, sizeof buf);
	p[7] = 0xFF;
	assert_int_equal(decode_resigned(f, buf, n), QKD_OK);

	/* Q-in-Q: two tags skipped, the outer one reported */
	uint8_t q[QKD_FRAME_MAX];
	n = ack_frame(f, buf, sizeof buf);
	memcpy(q, buf, 12);
	q[12] = 0x88, q[13] = 0xA8, q[14] = 0x20, q[15] = 0x0A; /* S-tag pcp 1 vid 10 */
	q[16] = 0x81, q[17] = 0x00, q[18] = 0x00, q[19] = 0x64; /* C-tag vid 100 */
	memcpy(q + 20, buf + 12, n - 12);
	assert_int_equal(qkd_frame_decode(q, n + 8, &IDENT, &d), QKD_OK);
	assert_true(d.l2.tagged);
	assert_int_equal(d.l2.vid, 10);
	assert_int_equal(d.l2.pcp, 1);
	/* a third tag is not skipped */
	memmove(q + 16, q + 12, n + 8 - 12);
	q[12] = 0x81, q[13] = 0x00, q[14] = 0, q[15] = 1;
	assert_int_equal(qkd_frame_decode(q, n + 12, &IDENT, &d), QKD_DROP_NOT_88B7);
}

/* Hand-built PDUs for the message-body checks. */
struct pdu_builder {
	uint8_t b[QKD_FRAME_MAX];
	size_t n;
};

static void pb_start(struct pdu_builder *pb, uint8_t type, const char *sender)
{
	static const uint8_t hdr[14] = {0x03, 0x51, 0x4b, 0, 0, 1, 2, 0, 0, 0, 0, 0x0a, 0x88, 0xb7};
	memcpy(pb->b, hdr, 14);
	uint8_t *p = pb->b + 14;
	memset(p, 0, QKD_HDR_LEN);
	p[0] = 0xac, p[1] = 0xde, p[2] = 0x48, p[3] = 0x51, p[4] = 0x4b;
	p[5] = 1, p[6] = type, p[11] = (uint8_t)strlen(sender);
	p[15] = 7, p[19] = 1, p[23] = 1; /* channel 7, epoch 1, seq 1 */
	memcpy(p + QKD_HDR_LEN, sender, strlen(sender));
	pb->n = 14 + QKD_HDR_LEN + strlen(sender);
}

static void pb_put(struct pdu_builder *pb, const void *v, size_t len)
{
	memcpy(pb->b + pb->n, v, len);
	pb->n += len;
}

static void pb_u8(struct pdu_builder *pb, uint8_t v)
{
	pb_put(pb, &v, 1);
}

static void pb_u32(struct pdu_builder *pb, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	pb_put(pb, x, 4);
}

static void pb_key(struct pdu_builder *pb, const char *k)
{
	pb_u8(pb, (uint8_t)strlen(k));
	pb_put(pb, k, strlen(k));
}

static enum qkd_drop pb_finish(struct fixture *f, struct pdu_builder *pb, struct qkd_decoded *d)
{
	memset(pb->b + pb->n, 0, QKD_ICV_LEN);
	pb->n += QKD_ICV_LEN;
	size_t plen = pb->n - 14;
	pb->b[14 + 8] = (uint8_t)(plen >> 8);
	pb->b[14 + 9] = (uint8_t)plen;
	qkd_pdu_sign(pb->b + 14, plen, &f->key);
	enum qkd_drop r = qkd_frame_decode(pb->b, pb->n, &IDENT, d);
	if (r == QKD_OK)
		assert_int_equal(qkd_frame_verify(d, &f->key), QKD_OK);
	return r;
}

static void hello_body(struct pdu_builder *pb, uint8_t role, uint16_t interval)
{
	uint8_t body[28] = {role, 0, (uint8_t)(interval >> 8), (uint8_t)interval};
	pb_put(pb, body, sizeof body);
}

static void test_body_checks(void **state)
{
	struct fixture *f = *state;
	struct pdu_builder pb;
	struct qkd_decoded d;

	/* the builder itself makes valid frames */
	pb_start(&pb, QKD_MSG_HELLO, "A"), hello_body(&pb, 1, 5);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_OK);
	pb_start(&pb, QKD_MSG_ANNOUNCE, "A"), pb_u32(&pb, 1), pb_u8(&pb, 1), pb_key(&pb, "k");
	assert_int_equal(pb_finish(f, &pb, &d), QKD_OK);

	/* sender ID */
	pb_start(&pb, QKD_MSG_HELLO, ""), hello_body(&pb, 1, 5);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	pb_start(&pb, QKD_MSG_HELLO, "a b"), hello_body(&pb, 1, 5);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	pb_start(&pb, QKD_MSG_HELLO, "123456789012345678901234567890123"), hello_body(&pb, 1, 5);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	/* channel, epoch, sequence zero */
	for (int field = 12; field <= 20; field += 4) {
		pb_start(&pb, QKD_MSG_HELLO, "A"), hello_body(&pb, 1, 5);
		memset(pb.b + 14 + field, 0, 4);
		assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	}
	/* HELLO fields */
	pb_start(&pb, QKD_MSG_HELLO, "A"), hello_body(&pb, 0, 5);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	pb_start(&pb, QKD_MSG_HELLO, "A"), hello_body(&pb, 2, 0);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	pb_start(&pb, QKD_MSG_HELLO, "A"), hello_body(&pb, 2, 3601);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	pb_start(&pb, QKD_MSG_HELLO, "A"), pb_put(&pb, "\x01\x00\x00\x05", 4);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED); /* short body */
	pb_start(&pb, QKD_MSG_HELLO, "A"), hello_body(&pb, 2, 5);
	pb.b[14 + QKD_HDR_LEN + 1 + 1] = 9; /* unknown state: kept, not an error */
	assert_int_equal(pb_finish(f, &pb, &d), QKD_OK);
	assert_int_equal(d.msg.u.hello.state, 9);
	assert_string_equal(qkd_state_name(9), "unknown");

	/* ANNOUNCE fields */
	pb_start(&pb, QKD_MSG_ANNOUNCE, "A"), pb_u32(&pb, 0), pb_u8(&pb, 1), pb_key(&pb, "k");
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	pb_start(&pb, QKD_MSG_ANNOUNCE, "A"), pb_u32(&pb, 1), pb_u8(&pb, 0);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	pb_start(&pb, QKD_MSG_ANNOUNCE, "A"), pb_u32(&pb, 1), pb_u8(&pb, 1), pb_key(&pb, "");
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	pb_start(&pb, QKD_MSG_ANNOUNCE, "A"), pb_u32(&pb, 1), pb_u8(&pb, 1), pb_key(&pb, "k\x7f");
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	pb_start(&pb, QKD_MSG_ANNOUNCE, "A"), pb_u32(&pb, 1), pb_u8(&pb, 2), pb_key(&pb, "k");
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED); /* count says 2, has 1 */
	pb_start(&pb, QKD_MSG_ANNOUNCE, "A"), pb_u32(&pb, 1), pb_u8(&pb, 1), pb_u8(&pb, 200);
	pb_put(&pb, "kkkk", 4);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED); /* key_ID overruns */
	pb_start(&pb, QKD_MSG_ANNOUNCE, "A"), pb_u32(&pb, 1), pb_u8(&pb, 1);
	pb_u8(&pb, QKD_KEYID_MAX + 1);
	for (int i = 0; i <= QKD_KEYID_MAX; i++)
		pb_u8(&pb, 'k');
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED); /* key_ID too long */
	pb_start(&pb, QKD_MSG_ANNOUNCE, "A"), pb_u32(&pb, 1), pb_u8(&pb, 1);
	pb_u8(&pb, QKD_KEYID_MAX);
	for (int i = 0; i < QKD_KEYID_MAX; i++)
		pb_u8(&pb, 'k');
	assert_int_equal(pb_finish(f, &pb, &d), QKD_OK); /* 128 is fine */

	/* too many key_IDs: 33, each valid */
	pb_start(&pb, QKD_MSG_ANNOUNCE, "A"), pb_u32(&pb, 1), pb_u8(&pb, QKD_KEYS_MAX + 1);
	for (int i = 0; i <= QKD_KEYS_MAX; i++)
		pb_key(&pb, UUIDS[0]);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_TOO_MANY_KEYS);
	/* ... but a malformed frame is malformed first (check 9 before 10) */
	pb_start(&pb, QKD_MSG_ANNOUNCE, "A"), pb_u32(&pb, 1), pb_u8(&pb, 255), pb_key(&pb, "k");
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);

	/* ACK fields */
	pb_start(&pb, QKD_MSG_ACK, "B"), pb_u32(&pb, 0), pb_u8(&pb, 0);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	pb_start(&pb, QKD_MSG_ACK, "B"), pb_u32(&pb, 1);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	pb_start(&pb, QKD_MSG_ACK, "B"), pb_u32(&pb, 1), pb_u8(&pb, 200);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_OK); /* unknown result: kept */
	assert_int_equal(d.msg.u.ack.result, 200);
	assert_string_equal(qkd_result_name(200), "unknown");
}

static void ack_with_tlvs(struct pdu_builder *pb, const void *tlvs, size_t len)
{
	pb_start(pb, QKD_MSG_ACK, "B");
	pb_u32(pb, 5);
	pb_u8(pb, QKD_RES_BUSY);
	pb_put(pb, tlvs, len);
}

static void test_tlvs(void **state)
{
	struct fixture *f = *state;
	struct pdu_builder pb;
	struct qkd_decoded d;

	/* unknown non-critical TLVs are skipped, known ones still read */
	ack_with_tlvs(&pb,
	              "\x40\x03xyz\x03\x04"
	              "busy\x7f\x00",
	              13);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_OK);
	assert_int_equal(d.msg.u.ack.detail.len, 4);
	assert_memory_equal(d.msg.u.ack.detail.ptr, "busy", 4);
	/* unknown critical TLV: unsupported */
	ack_with_tlvs(&pb,
	              "\x03\x04"
	              "busy\x81\x01z",
	              9);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_UNSUPPORTED_TLV);
	/* TLV overruns the ICV boundary / half a TLV header */
	ack_with_tlvs(&pb, "\x40\x09xyz", 5);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	ack_with_tlvs(&pb, "\x40", 1);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	/* duplicate known TLV */
	ack_with_tlvs(&pb,
	              "\x03\x01"
	              "a\x03\x01"
	              "b",
	              6);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	/* known TLV in the wrong message */
	ack_with_tlvs(&pb, "\x02\x01\x05", 3);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	/* DETAIL: empty, too long, not printable */
	ack_with_tlvs(&pb, "\x03\x00", 2);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	uint8_t big[2 + 65] = {0x03, 65};
	memset(big + 2, 'x', 65);
	ack_with_tlvs(&pb, big, sizeof big);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
	ack_with_tlvs(&pb,
	              "\x03\x02"
	              "a\n",
	              4);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);

	/* ANNOUNCE TLVs: wrong lengths, slot out of range, duplicates */
	static const struct {
		const char *tlvs;
		size_t len;
		enum qkd_drop want;
	} cases[] = {
	    {"\x01\x08\0\0\0\0\x6a\xfd\x4b\xc0", 10, QKD_OK},
	    {"\x01\x04\0\0\0\0", 6, QKD_DROP_MALFORMED},
	    {"\x02\x01\x3f", 3, QKD_OK},
	    {"\x02\x01\x40", 3, QKD_DROP_MALFORMED},
	    {"\x02\x02\x01\x01", 4, QKD_DROP_MALFORMED},
	    {"\x02\x01\x01\x02\x01\x02", 6, QKD_DROP_MALFORMED},
	    {"\x03\x01x", 3, QKD_DROP_MALFORMED},
	    {"\x90\x00", 2, QKD_DROP_UNSUPPORTED_TLV},
	    {"\x10\x00", 2, QKD_OK},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		pb_start(&pb, QKD_MSG_ANNOUNCE, "A"), pb_u32(&pb, 1), pb_u8(&pb, 1);
		pb_key(&pb, "k");
		pb_put(&pb, cases[i].tlvs, cases[i].len);
		enum qkd_drop r = pb_finish(f, &pb, &d);
		if (r != cases[i].want)
			fail_msg("TLV case %zu: %s, want %s", i, qkd_drop_name(r),
			         qkd_drop_name(cases[i].want));
	}
	pb_start(&pb, QKD_MSG_ANNOUNCE, "A"), pb_u32(&pb, 1), pb_u8(&pb, 1), pb_key(&pb, "k");
	pb_put(&pb, cases[0].tlvs, cases[0].len);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_OK);
	assert_true(d.msg.u.announce.has_activation);
	assert_int_equal(d.msg.u.announce.activation, 1794984896);
	/* HELLO has no TLVs defined: a known one there is malformed */
	pb_start(&pb, QKD_MSG_HELLO, "A"), hello_body(&pb, 1, 5), pb_put(&pb, "\x02\x01\x01", 3);
	assert_int_equal(pb_finish(f, &pb, &d), QKD_DROP_MALFORMED);
}

/* Any single flipped bit anywhere in the PDU is caught: structurally, or by the ICV. */
static void test_every_bit_flip_is_caught(void **state)
{
	struct fixture *f = *state;
	struct qkd_msg m;
	announce_msg(&m, 2, true);
	uint8_t buf[QKD_FRAME_MAX];
	struct qkd_decoded d;
	size_t n = encode(&UNTAGGED, &m, &f->key, buf, sizeof buf);
	unsigned by_mac = 0;
	for (size_t bit = 14 * 8; bit < n * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		enum qkd_drop r = qkd_frame_decode(buf, n, &IDENT, &d);
		if (r == QKD_OK) {
			r = qkd_frame_verify(&d, &f->key);
			by_mac++;
		}
		if (r == QKD_OK)
			fail_msg("bit %zu flipped and the frame still verifies", bit);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	assert_true(by_mac > 100); /* most flips reach the ICV check */
	assert_int_equal(qkd_frame_decode(buf, n, &IDENT, &d), QKD_OK);
	assert_int_equal(qkd_frame_verify(&d, &f->key), QKD_OK);
	/* the L2 header is outside the ICV: re-tagging or new MACs still verify */
	buf[0] ^= 1, buf[11] ^= 1;
	assert_int_equal(qkd_frame_decode(buf, n, &IDENT, &d), QKD_OK);
	assert_int_equal(qkd_frame_verify(&d, &f->key), QKD_OK);
}

static void test_wrong_secret_and_constant_time(void **state)
{
	struct fixture *f = *state;
	struct qkd_msg m;
	hello_msg(&m);
	uint8_t buf[QKD_FRAME_MAX];
	struct qkd_decoded d;
	size_t n = encode(&UNTAGGED, &m, &f->key, buf, sizeof buf);
	assert_int_equal(qkd_frame_decode(buf, n, &IDENT, &d), QKD_OK);
	ct_calls = 0;
	assert_int_equal(qkd_frame_verify(&d, &f->other), QKD_DROP_BAD_MAC);
	assert_int_equal(ct_calls, 1);
	assert_int_equal(qkd_frame_verify(&d, &f->key), QKD_OK);
	assert_int_equal(ct_calls, 2);
	struct qkd_key none = {0};
	assert_int_equal(qkd_frame_verify(&d, &none), QKD_DROP_BAD_MAC);
}

static void test_digest(void **state)
{
	(void)state;
	uint8_t a[QKD_DIGEST_LEN], b[QKD_DIGEST_LEN], c[QKD_DIGEST_LEN];
	struct qkd_str k1[2] = {S("ab"), S("c")}, k2[2] = {S("a"), S("bc")};
	assert_int_equal(qkd_keyids_digest(k1, 2, a), 0);
	assert_int_equal(qkd_keyids_digest(k2, 2, b), 0);
	assert_int_equal(qkd_keyids_digest(k1, 2, c), 0);
	assert_memory_equal(a, c, QKD_DIGEST_LEN);
	assert_memory_not_equal(a, b, QKD_DIGEST_LEN); /* length prefixes matter */
	/* SHA-256 over "\x01k", computed independently (Python hashlib) */
	struct qkd_str k = S("k");
	assert_int_equal(qkd_keyids_digest(&k, 1, a), 0);
	static const uint8_t want[QKD_DIGEST_LEN] = {0xb7, 0x89, 0x02, 0xb8, 0x50, 0xcd,
	                                             0x9a, 0x0a, 0x1a, 0x3d, 0x8e, 0xd5,
	                                             0x5e, 0xce, 0x0f, 0xbb};
	assert_memory_equal(a, want, QKD_DIGEST_LEN);
	/* invalid key_IDs are refused, not clamped; the output is then all zero */
	static const uint8_t zero[QKD_DIGEST_LEN];
	struct qkd_str bad[2] = {S("ok"), S("not ok")};
	assert_int_equal(qkd_keyids_digest(bad, 2, a), -1);
	assert_memory_equal(a, zero, QKD_DIGEST_LEN);
	struct qkd_str many[QKD_KEYS_MAX + 1];
	for (int i = 0; i <= QKD_KEYS_MAX; i++)
		many[i] = S("k");
	assert_int_equal(qkd_keyids_digest(many, QKD_KEYS_MAX, a), 0);
	assert_int_equal(qkd_keyids_digest(many, QKD_KEYS_MAX + 1, a), -1);
}

static void test_names(void **state)
{
	(void)state;
	for (int i = 0; i < QKD_DROP_COUNT; i++) {
		assert_string_not_equal(qkd_drop_name((enum qkd_drop)i), "unknown");
		for (int j = 0; j < i; j++)
			assert_string_not_equal(qkd_drop_name((enum qkd_drop)i),
			                        qkd_drop_name((enum qkd_drop)j));
	}
	assert_string_equal(qkd_drop_name(QKD_DROP_COUNT), "unknown");
	assert_string_equal(qkd_drop_name(QKD_DROP_BAD_MAC), "bad_mac");
	assert_string_equal(qkd_msg_type_name(QKD_MSG_ANNOUNCE), "ANNOUNCE");
	assert_string_equal(qkd_result_name(QKD_RES_UNKNOWN_CHANNEL), "UNKNOWN_CHANNEL");
	assert_string_equal(qkd_role_name(QKD_ROLE_SLAVE), "slave");
	assert_string_equal(qkd_state_name(QKD_STATE_RESYNC), "RESYNC");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hello_roundtrip),
	    cmocka_unit_test(test_announce_roundtrip),
	    cmocka_unit_test(test_ack_roundtrip),
	    cmocka_unit_test(test_spec_example_bytes),
	    cmocka_unit_test(test_icv_is_hmac_sha256),
	    cmocka_unit_test(test_key_sizes),
	    cmocka_unit_test(test_encode_refuses_bad_messages),
	    cmocka_unit_test(test_truncation_at_every_offset),
	    cmocka_unit_test(test_header_checks),
	    cmocka_unit_test(test_body_checks),
	    cmocka_unit_test(test_tlvs),
	    cmocka_unit_test(test_every_bit_flip_is_caught),
	    cmocka_unit_test(test_wrong_secret_and_constant_time),
	    cmocka_unit_test(test_digest),
	    cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
