/*
 * frame.h - the qkdlink key-ID wire format (docs/protocol.md), as a pure codec.
 *
 * No I/O and no allocation: frame_encode() writes into a caller's buffer,
 * frame_decode() fills a struct whose strings point into the frame it was
 * given, and never reads past the length it was told. Authentication (the ICV)
 * is frame_encode()'s last step and frame_verify()'s only job; replay
 * protection lives in replay.h.
 */
#ifndef QKD_FRAME_H
#define QKD_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QKD_ETHERTYPE 0x88B7
#define QKD_OUI_DEFAULT 0xACDE48u
#define QKD_PID_DEFAULT 0x514Bu
#define QKD_VERSION 1
#define QKD_DST_DEFAULT                                                                            \
	{                                                                                          \
		0x03, 0x51, 0x4B, 0x00, 0x00, 0x01                                                 \
	}

#define QKD_HDR_LEN 24   /* common header, OUI to sequence number */
#define QKD_ICV_LEN 16   /* truncated HMAC-SHA256 */
#define QKD_PDU_MAX 1500 /* Ethernet MTU */
#define QKD_PDU_MIN (QKD_HDR_LEN + 1 + QKD_ICV_LEN)
#define QKD_ETH_MIN 60                       /* Ethernet minimum frame, without FCS */
#define QKD_FRAME_MAX (14 + 8 + QKD_PDU_MAX) /* two VLAN tags */
#define QKD_SENDER_MAX 32
#define QKD_KEYID_MAX 128
#define QKD_KEYS_MAX 32
#define QKD_DETAIL_MAX 64
#define QKD_DIGEST_LEN 16
#define QKD_KEYCHAIN_SLOT_MAX 63
#define QKD_SECRET_MIN 32
#define QKD_SECRET_MAX 1024

enum qkd_msg_type {
	QKD_MSG_HELLO = 1,
	QKD_MSG_ANNOUNCE = 2,
	QKD_MSG_ACK = 3,
};

enum qkd_role { QKD_ROLE_MASTER = 1, QKD_ROLE_SLAVE = 2 };
enum qkd_state { QKD_STATE_IDLE = 0, QKD_STATE_ROTATING = 1, QKD_STATE_RESYNC = 2 };

enum qkd_result {
	QKD_RES_OK = 0,
	QKD_RES_KME_NOT_FOUND = 1,
	QKD_RES_KME_ERROR = 2,
	QKD_RES_COMMIT_FAILED = 3,
	QKD_RES_BUSY = 4,
	QKD_RES_UNKNOWN_CHANNEL = 5,
	QKD_RES_STALE = 6,
	QKD_RES_INTERNAL = 7,
	QKD_RES_ROUTER_BUSY = 8, /* the router serves another rotation: deferred, not failed */
};

#define QKD_RES_MAX QKD_RES_ROUTER_BUSY

/* TLV types; bit 7 set marks a TLV a reader must understand. */
enum qkd_tlv {
	QKD_TLV_ACTIVATION_TIME = 0x01,
	QKD_TLV_KEYCHAIN_SLOT = 0x02,
	QKD_TLV_DETAIL = 0x03,
	QKD_TLV_CRITICAL = 0x80,
};

/*
 * Why a frame was dropped, in the order a receiver checks (protocol.md §6).
 * QKD_OK is not a drop. Values index counter arrays: keep them dense.
 */
enum qkd_drop {
	QKD_OK = 0,
	QKD_DROP_NOT_88B7,
	QKD_DROP_TRUNCATED,
	QKD_DROP_FOREIGN,
	QKD_DROP_BAD_VERSION,
	QKD_DROP_BAD_LENGTH,
	QKD_DROP_TRAILING,
	QKD_DROP_UNKNOWN_TYPE,
	QKD_DROP_MALFORMED,
	QKD_DROP_TOO_MANY_KEYS,
	QKD_DROP_UNSUPPORTED_TLV,
	QKD_DROP_UNKNOWN_CHANNEL,
	QKD_DROP_UNKNOWN_SECRET,
	QKD_DROP_BAD_MAC,
	QKD_DROP_REPLAY,
	QKD_DROP_PEER_LIMIT,
	QKD_DROP_COUNT
};

/* A string inside a frame (decode) or the caller's memory (encode); no NUL. */
struct qkd_str {
	const char *ptr;
	size_t len;
};

struct qkd_hello {
	uint8_t role;      /* enum qkd_role */
	uint8_t state;     /* enum qkd_state; unknown values are kept */
	uint16_t interval; /* seconds, 1..3600 */
	uint32_t current_rotation;
	uint32_t pending_rotation;
	uint8_t digest[QKD_DIGEST_LEN]; /* all zero: no key */
};

struct qkd_announce {
	uint32_t rotation;
	uint8_t nkeys; /* 1..QKD_KEYS_MAX */
	struct qkd_str keys[QKD_KEYS_MAX];
	bool has_activation;
	uint64_t activation; /* UTC seconds since the epoch */
	bool has_slot;
	uint8_t slot; /* 0..QKD_KEYCHAIN_SLOT_MAX */
};

struct qkd_ack {
	uint32_t rotation;
	uint8_t result;        /* enum qkd_result; unknown values are kept */
	struct qkd_str detail; /* len 0: absent */
};

/* The layer-2 envelope: Ethernet addresses and the optional 802.1Q tag. */
struct qkd_l2 {
	uint8_t dst[6];
	uint8_t src[6];
	bool tagged;
	uint16_t vid; /* 0..4095 (1..4094 to send) */
	uint8_t pcp;  /* 0..7 */
};

/* One message, decoded or to encode. */
struct qkd_msg {
	uint32_t oui;
	uint16_t pid;
	uint8_t version;
	uint8_t type; /* enum qkd_msg_type */
	uint8_t flags;
	uint8_t secret_id;
	uint32_t channel;
	uint32_t epoch;
	uint32_t seq;
	struct qkd_str sender;
	union {
		struct qkd_hello hello;
		struct qkd_announce announce;
		struct qkd_ack ack;
	} u;
};

/*
 * A prepared HMAC-SHA256 key: an OpenSSL MAC context keyed once, re-initialised
 * per frame, so signing or verifying costs no key schedule and no allocation.
 * Create with qkd_key_init(), free (and wipe) with qkd_key_clear(). A key is
 * used by one thread at a time.
 */
struct qkd_key {
	void *mac; /* EVP_MAC_CTX */
};

/* Where decode found the PDU, for verification and printing. */
struct qkd_decoded {
	struct qkd_l2 l2;
	struct qkd_msg msg;
	const uint8_t *pdu; /* first octet of the OUI */
	size_t pdu_len;     /* the Length field */
	size_t padding;     /* octets after the PDU (allowed Ethernet padding) */
};

/* Which OUI and PID a receiver owns. */
struct qkd_ident {
	uint32_t oui;
	uint16_t pid;
};

/*
 * Prepares key from a secret of QKD_SECRET_MIN..QKD_SECRET_MAX octets.
 * Returns 0, or -1 with a reason in err. The caller wipes its secret copy.
 */
int qkd_key_init(struct qkd_key *key, const uint8_t *secret, size_t len, char *err, size_t errlen);
void qkd_key_clear(struct qkd_key *key);

/*
 * Encodes msg as a PDU (OUI to ICV) into buf, signing with key.
 * Returns the PDU length, or -1 with a reason in err (errlen bytes).
 */
int qkd_pdu_encode(const struct qkd_msg *msg, const struct qkd_key *key, uint8_t *buf, size_t cap,
                   char *err, size_t errlen);

/*
 * Recomputes the ICV of an encoded PDU of len octets in place (tools and
 * tests that craft frames field by field). Returns 0 or -1.
 */
int qkd_pdu_sign(uint8_t *pdu, size_t len, const struct qkd_key *key);

/*
 * Encodes a whole Ethernet frame (header, optional tag, PDU). The sender pads
 * to QKD_ETH_MIN octets if a PDU is ever that short. Returns the frame length
 * or -1 with err.
 */
int qkd_frame_encode(const struct qkd_l2 *l2, const struct qkd_msg *msg, const struct qkd_key *key,
                     uint8_t *buf, size_t cap, char *err, size_t errlen);

/*
 * Decodes an Ethernet frame structurally: checks 1 to 11 of protocol.md §6.
 * Returns QKD_OK or the drop reason. out->msg strings point into frame.
 */
enum qkd_drop qkd_frame_decode(const uint8_t *frame, size_t len, const struct qkd_ident *ident,
                               struct qkd_decoded *out);

/* Decodes a PDU alone (OUI to ICV and any trailing octets): checks 2 to 11. */
enum qkd_drop qkd_pdu_decode(const uint8_t *pdu, size_t len, const struct qkd_ident *ident,
                             struct qkd_decoded *out);

/* Verifies a decoded frame's ICV in constant time: QKD_OK or QKD_DROP_BAD_MAC. */
enum qkd_drop qkd_frame_verify(const struct qkd_decoded *d, const struct qkd_key *key);

/*
 * SHA-256 digest of key_IDs, first QKD_DIGEST_LEN octets (HELLO field).
 * Returns 0, or -1 (out zeroed) unless n is 0..QKD_KEYS_MAX and every key_ID
 * is valid (1..QKD_KEYID_MAX printable octets).
 */
int qkd_keyids_digest(const struct qkd_str *keys, size_t n, uint8_t out[QKD_DIGEST_LEN]);

/* Names, for counters, logs and JSON: stable, lower case. */
const char *qkd_drop_name(enum qkd_drop d);
const char *qkd_msg_type_name(uint8_t type); /* "unknown" if not known */
const char *qkd_result_name(uint8_t result); /* "unknown" if not known */
const char *qkd_role_name(uint8_t role);
const char *qkd_state_name(uint8_t state);

/* True if s is 1..max octets of printable ASCII 0x21..0x7E. */
bool qkd_str_valid(const char *s, size_t len, size_t max);

#endif
