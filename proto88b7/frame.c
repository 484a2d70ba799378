/*
 * frame.c - the key-ID wire format, byte for byte as docs/protocol.md says.
 */
#include "frame.h"
#include "errf.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/sha.h>

#define ETH_HDR_LEN 14
#define HELLO_FIXED 28
#define ANNOUNCE_FIXED 5
#define ACK_FIXED 5
#define HELLO_INTERVAL_MAX 3600

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put24(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 16);
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get24(const uint8_t *p)
{
	return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];
}

static uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)get16(p) << 16) | get16(p + 2);
}

static uint64_t get64(const uint8_t *p)
{
	return ((uint64_t)get32(p) << 32) | get32(p + 4);
}

static bool printable(const char *s, size_t len, unsigned char lo)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < lo || c > 0x7E)
			return false;
	}
	return true;
}

bool qkd_str_valid(const char *s, size_t len, size_t max)
{
	return s != NULL && len >= 1 && len <= max && printable(s, len, 0x21);
}

/* ---- keys and the ICV ---- */

int qkd_key_init(struct qkd_key *key, const uint8_t *secret, size_t len, char *err, size_t errlen)
{
	key->mac = NULL;
	if (len < QKD_SECRET_MIN || len > QKD_SECRET_MAX)
		return qkd_errf(err, errlen, "secret is %zu octets, need %d..%d", len,
		                QKD_SECRET_MIN, QKD_SECRET_MAX);
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (mac == NULL)
		return qkd_errf(err, errlen, "OpenSSL has no HMAC");
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac); /* the context holds its own reference */
	if (ctx == NULL)
		return qkd_errf(err, errlen, "out of memory");
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	    OSSL_PARAM_construct_end(),
	};
	if (EVP_MAC_init(ctx, secret, len, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		return qkd_errf(err, errlen, "HMAC-SHA256 key setup failed");
	}
	key->mac = ctx;
	return 0;
}

void qkd_key_clear(struct qkd_key *key)
{
	if (key == NULL)
		return;
	EVP_MAC_CTX_free(key->mac); /* OpenSSL cleanses the key schedule */
	key->mac = NULL;
}

/* Full HMAC-SHA256 of data under key, into out[32]; 0 or -1. */
static int icv_compute(const struct qkd_key *key, const uint8_t *data, size_t len, uint8_t out[32])
{
	EVP_MAC_CTX *ctx = key->mac;
	size_t outl = 0;
	if (ctx == NULL || EVP_MAC_init(ctx, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(ctx, data, len) != 1 || EVP_MAC_final(ctx, out, &outl, 32) != 1 ||
	    outl != 32)
		return -1;
	return 0;
}

int qkd_pdu_sign(uint8_t *pdu, size_t len, const struct qkd_key *key)
{
	uint8_t full[32];
	if (len < QKD_PDU_MIN || icv_compute(key, pdu, len - QKD_ICV_LEN, full) != 0)
		return -1;
	memcpy(pdu + len - QKD_ICV_LEN, full, QKD_ICV_LEN);
	OPENSSL_cleanse(full, sizeof full);
	return 0;
}

enum qkd_drop qkd_frame_verify(const struct qkd_decoded *d, const struct qkd_key *key)
{
	uint8_t full[32];
	if (d->pdu_len < QKD_PDU_MIN ||
	    icv_compute(key, d->pdu, d->pdu_len - QKD_ICV_LEN, full) != 0)
		return QKD_DROP_BAD_MAC;
	int diff = CRYPTO_memcmp(full, d->pdu + d->pdu_len - QKD_ICV_LEN, QKD_ICV_LEN);
	OPENSSL_cleanse(full, sizeof full);
	return diff == 0 ? QKD_OK : QKD_DROP_BAD_MAC;
}

int qkd_keyids_digest(const struct qkd_str *keys, size_t n, uint8_t out[QKD_DIGEST_LEN])
{
	uint8_t buf[QKD_KEYS_MAX * (1 + QKD_KEYID_MAX)];
	uint8_t md[SHA256_DIGEST_LENGTH];
	size_t off = 0;
	memset(out, 0, QKD_DIGEST_LEN);
	if (n > QKD_KEYS_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!qkd_str_valid(keys[i].ptr, keys[i].len, QKD_KEYID_MAX))
			return -1;
		buf[off++] = (uint8_t)keys[i].len;
		memcpy(buf + off, keys[i].ptr, keys[i].len);
		off += keys[i].len;
	}
	if (SHA256(buf, off, md) == NULL)
		return -1;
	memcpy(out, md, QKD_DIGEST_LEN);
	return 0;
}

/* ---- encoding ---- */

/* A bounded writer: every put checks room first. */
struct writer {
	uint8_t *buf;
	size_t cap;
	size_t off;
	bool overflow;
};

static uint8_t *wr_take(struct writer *w, size_t n)
{
	if (w->overflow || n > w->cap - w->off) {
		w->overflow = true;
		return NULL;
	}
	uint8_t *p = w->buf + w->off;
	w->off += n;
	return p;
}

static void wr_u8(struct writer *w, uint8_t v)
{
	uint8_t *p = wr_take(w, 1);
	if (p != NULL)
		*p = v;
}

static void wr_u16(struct writer *w, uint16_t v)
{
	uint8_t *p = wr_take(w, 2);
	if (p != NULL)
		put16(p, v);
}

static void wr_u32(struct writer *w, uint32_t v)
{
	uint8_t *p = wr_take(w, 4);
	if (p != NULL)
		put32(p, v);
}

static void wr_bytes(struct writer *w, const void *s, size_t n)
{
	uint8_t *p = wr_take(w, n);
	if (p != NULL && n > 0)
		memcpy(p, s, n);
}

static void wr_str8(struct writer *w, const struct qkd_str *s)
{
	wr_u8(w, (uint8_t)s->len);
	wr_bytes(w, s->ptr, s->len);
}

static void wr_tlv(struct writer *w, uint8_t type, const void *v, size_t len)
{
	wr_u8(w, type);
	wr_u8(w, (uint8_t)len);
	wr_bytes(w, v, len);
}

static int check_msg(const struct qkd_msg *m, char *err, size_t errlen)
{
	if (m->oui > 0xFFFFFF)
		return qkd_errf(err, errlen, "OUI 0x%X has more than 24 bits", (unsigned)m->oui);
	if (!qkd_str_valid(m->sender.ptr, m->sender.len, QKD_SENDER_MAX))
		return qkd_errf(err, errlen, "sender ID must be 1..%d printable ASCII characters",
		                QKD_SENDER_MAX);
	if (m->channel == 0)
		return qkd_errf(err, errlen, "channel must be 1 or more");
	if (m->epoch == 0 || m->seq == 0)
		return qkd_errf(err, errlen, "epoch and sequence must be 1 or more");
	switch (m->type) {
	case QKD_MSG_HELLO: {
		const struct qkd_hello *h = &m->u.hello;
		if (h->role != QKD_ROLE_MASTER && h->role != QKD_ROLE_SLAVE)
			return qkd_errf(err, errlen, "HELLO role %u is not 1 (master) or 2 (slave)",
			                h->role);
		if (h->interval < 1 || h->interval > HELLO_INTERVAL_MAX)
			return qkd_errf(err, errlen, "HELLO interval %u is not 1..%d s",
			                h->interval, HELLO_INTERVAL_MAX);
		return 0;
	}
	case QKD_MSG_ANNOUNCE: {
		const struct qkd_announce *a = &m->u.announce;
		if (a->rotation == 0)
			return qkd_errf(err, errlen, "rotation ID must be 1 or more");
		if (a->nkeys < 1 || a->nkeys > QKD_KEYS_MAX)
			return qkd_errf(err, errlen, "ANNOUNCE carries %u key_IDs, need 1..%d",
			                a->nkeys, QKD_KEYS_MAX);
		for (size_t i = 0; i < a->nkeys; i++)
			if (!qkd_str_valid(a->keys[i].ptr, a->keys[i].len, QKD_KEYID_MAX))
				return qkd_errf(
				    err, errlen,
				    "key_ID %zu must be 1..%d printable ASCII characters", i + 1,
				    QKD_KEYID_MAX);
		if (a->has_slot && a->slot > QKD_KEYCHAIN_SLOT_MAX)
			return qkd_errf(err, errlen, "key-chain slot %u is not 0..%d", a->slot,
			                QKD_KEYCHAIN_SLOT_MAX);
		return 0;
	}
	case QKD_MSG_ACK: {
		const struct qkd_ack *k = &m->u.ack;
		if (k->rotation == 0)
			return qkd_errf(err, errlen, "rotation ID must be 1 or more");
		if (k->detail.len > QKD_DETAIL_MAX ||
		    (k->detail.len > 0 && !printable(k->detail.ptr, k->detail.len, 0x20)))
			return qkd_errf(err, errlen,
			                "ACK detail must be 0..%d printable characters",
			                QKD_DETAIL_MAX);
		return 0;
	}
	default:
		return qkd_errf(err, errlen, "unknown message type %u", m->type);
	}
}

static void wr_body(struct writer *w, const struct qkd_msg *m)
{
	switch (m->type) {
	case QKD_MSG_HELLO: {
		const struct qkd_hello *h = &m->u.hello;
		wr_u8(w, h->role);
		wr_u8(w, h->state);
		wr_u16(w, h->interval);
		wr_u32(w, h->current_rotation);
		wr_u32(w, h->pending_rotation);
		wr_bytes(w, h->digest, QKD_DIGEST_LEN);
		break;
	}
	case QKD_MSG_ANNOUNCE: {
		const struct qkd_announce *a = &m->u.announce;
		wr_u32(w, a->rotation);
		wr_u8(w, a->nkeys);
		for (size_t i = 0; i < a->nkeys; i++)
			wr_str8(w, &a->keys[i]);
		if (a->has_activation) {
			uint8_t t[8];
			put64(t, a->activation);
			wr_tlv(w, QKD_TLV_ACTIVATION_TIME, t, sizeof t);
		}
		if (a->has_slot)
			wr_tlv(w, QKD_TLV_KEYCHAIN_SLOT, &a->slot, 1);
		break;
	}
	case QKD_MSG_ACK: {
		const struct qkd_ack *k = &m->u.ack;
		wr_u32(w, k->rotation);
		wr_u8(w, k->result);
		if (k->detail.len > 0)
			wr_tlv(w, QKD_TLV_DETAIL, k->detail.ptr, k->detail.len);
		break;
	}
	default:
		break;
	}
}

int qkd_pdu_encode(const struct qkd_msg *m, const struct qkd_key *key, uint8_t *buf, size_t cap,
                   char *err, size_t errlen)
{
	if (check_msg(m, err, errlen) != 0)
		return -1;
	struct writer w = {.buf = buf, .cap = cap < QKD_PDU_MAX ? cap : QKD_PDU_MAX};
	uint8_t *hdr = wr_take(&w, QKD_HDR_LEN);
	if (hdr == NULL)
		return qkd_errf(err, errlen, "buffer of %zu octets too small", cap);
	put24(hdr, m->oui);
	put16(hdr + 3, m->pid);
	hdr[5] = QKD_VERSION;
	hdr[6] = m->type;
	hdr[7] = m->flags;
	/* hdr[8..9]: length, below */
	hdr[10] = m->secret_id;
	hdr[11] = (uint8_t)m->sender.len;
	put32(hdr + 12, m->channel);
	put32(hdr + 16, m->epoch);
	put32(hdr + 20, m->seq);
	wr_bytes(&w, m->sender.ptr, m->sender.len);
	wr_body(&w, m);
	wr_take(&w, QKD_ICV_LEN);
	if (w.overflow)
		return qkd_errf(err, errlen, "PDU does not fit in %zu octets (limit %d)", w.cap,
		                QKD_PDU_MAX);
	put16(hdr + 8, (uint16_t)w.off);
	if (qkd_pdu_sign(buf, w.off, key) != 0)
		return qkd_errf(err, errlen, "HMAC-SHA256 failed (no key?)");
	return (int)w.off;
}

int qkd_frame_encode(const struct qkd_l2 *l2, const struct qkd_msg *m, const struct qkd_key *key,
                     uint8_t *buf, size_t cap, char *err, size_t errlen)
{
	size_t hl = ETH_HDR_LEN + (l2->tagged ? 4 : 0);
	/* VID 0 is a priority tag (PCP only); 4095 is reserved (IEEE 802.1Q) */
	if (l2->tagged && (l2->vid > 4094 || l2->pcp > 7))
		return qkd_errf(err, errlen,
		                "VLAN %u priority %u out of range (VID 0..4094, PCP 0..7)", l2->vid,
		                l2->pcp);
	if (cap < hl + QKD_PDU_MIN)
		return qkd_errf(err, errlen, "buffer of %zu octets too small", cap);
	memcpy(buf, l2->dst, 6);
	memcpy(buf + 6, l2->src, 6);
	if (l2->tagged) {
		put16(buf + 12, 0x8100);
		put16(buf + 14, (uint16_t)((l2->pcp << 13) | l2->vid));
	}
	put16(buf + hl - 2, QKD_ETHERTYPE);
	int n = qkd_pdu_encode(m, key, buf + hl, cap - hl, err, errlen);
	if (n < 0)
		return -1;
	size_t len = hl + (size_t)n;
	/* Never taken in version 1 (every PDU is >= 46 octets), kept for shorter
	 * future messages: pad like a NIC would, so veth captures match the wire. */
	size_t min = QKD_ETH_MIN + (l2->tagged ? 4 : 0);
	if (len < min) {
		if (cap < min)
			return qkd_errf(err, errlen, "buffer of %zu octets too small", cap);
		memset(buf + len, 0, min - len);
		len = min;
	}
	return (int)len;
}

/* ---- decoding ---- */

/* A bounded reader over [p, end). */
struct reader {
	const uint8_t *p;
	const uint8_t *end;
};

static bool rd_has(const struct reader *r, size_t n)
{
	return (size_t)(r->end - r->p) >= n;
}

static enum qkd_drop decode_hello(struct reader *r, struct qkd_hello *h)
{
	if (!rd_has(r, HELLO_FIXED))
		return QKD_DROP_MALFORMED;
	h->role = r->p[0];
	h->state = r->p[1];
	h->interval = get16(r->p + 2);
	h->current_rotation = get32(r->p + 4);
	h->pending_rotation = get32(r->p + 8);
	memcpy(h->digest, r->p + 12, QKD_DIGEST_LEN);
	r->p += HELLO_FIXED;
	if ((h->role != QKD_ROLE_MASTER && h->role != QKD_ROLE_SLAVE) || h->interval < 1 ||
	    h->interval > HELLO_INTERVAL_MAX)
		return QKD_DROP_MALFORMED;
	return QKD_OK;
}

/* Walks every key_ID (validating all), keeps the first QKD_KEYS_MAX. */
static enum qkd_drop decode_announce(struct reader *r, struct qkd_announce *a, unsigned *count)
{
	if (!rd_has(r, ANNOUNCE_FIXED))
		return QKD_DROP_MALFORMED;
	a->rotation = get32(r->p);
	*count = r->p[4];
	r->p += ANNOUNCE_FIXED;
	if (a->rotation == 0 || *count == 0)
		return QKD_DROP_MALFORMED;
	a->nkeys = 0;
	for (unsigned i = 0; i < *count; i++) {
		if (!rd_has(r, 1))
			return QKD_DROP_MALFORMED;
		size_t l = r->p[0];
		if (!rd_has(r, 1 + l) || !qkd_str_valid((const char *)r->p + 1, l, QKD_KEYID_MAX))
			return QKD_DROP_MALFORMED;
		if (i < QKD_KEYS_MAX) {
			a->keys[i].ptr = (const char *)r->p + 1;
			a->keys[i].len = l;
			a->nkeys++;
		}
		r->p += 1 + l;
	}
	return QKD_OK;
}

static enum qkd_drop decode_ack(struct reader *r, struct qkd_ack *k)
{
	if (!rd_has(r, ACK_FIXED))
		return QKD_DROP_MALFORMED;
	k->rotation = get32(r->p);
	k->result = r->p[4];
	r->p += ACK_FIXED;
	return k->rotation == 0 ? QKD_DROP_MALFORMED : QKD_OK;
}

/*
 * Reads TLVs up to the end of r exactly. Known TLVs must belong to the
 * message type, appear once and have their defined length; *critical is set
 * when an unknown TLV with bit 7 was skipped.
 */
static enum qkd_drop decode_tlvs(struct reader *r, struct qkd_msg *m, bool *critical)
{
	unsigned seen = 0;
	while (r->p < r->end) {
		if (!rd_has(r, 2) || !rd_has(r, 2 + (size_t)r->p[1]))
			return QKD_DROP_MALFORMED;
		uint8_t type = r->p[0];
		size_t len = r->p[1];
		const uint8_t *v = r->p + 2;
		r->p += 2 + len;
		bool known = type == QKD_TLV_ACTIVATION_TIME || type == QKD_TLV_KEYCHAIN_SLOT ||
		             type == QKD_TLV_DETAIL;
		if (!known) {
			if (type & QKD_TLV_CRITICAL)
				*critical = true;
			continue;
		}
		if (seen & (1u << type))
			return QKD_DROP_MALFORMED;
		seen |= 1u << type;
		if (type == QKD_TLV_ACTIVATION_TIME && m->type == QKD_MSG_ANNOUNCE && len == 8) {
			m->u.announce.has_activation = true;
			m->u.announce.activation = get64(v);
		} else if (type == QKD_TLV_KEYCHAIN_SLOT && m->type == QKD_MSG_ANNOUNCE &&
		           len == 1 && v[0] <= QKD_KEYCHAIN_SLOT_MAX) {
			m->u.announce.has_slot = true;
			m->u.announce.slot = v[0];
		} else if (type == QKD_TLV_DETAIL && m->type == QKD_MSG_ACK && len >= 1 &&
		           len <= QKD_DETAIL_MAX && printable((const char *)v, len, 0x20)) {
			m->u.ack.detail.ptr = (const char *)v;
			m->u.ack.detail.len = len;
		} else {
			return QKD_DROP_MALFORMED;
		}
	}
	return QKD_OK;
}

enum qkd_drop qkd_pdu_decode(const uint8_t *pdu, size_t len, const struct qkd_ident *ident,
                             struct qkd_decoded *out)
{
	struct qkd_msg *m = &out->msg;
	memset(m, 0, sizeof *m);
	out->pdu = pdu;
	out->pdu_len = 0;
	out->padding = 0;

	if (len < 5)
		return QKD_DROP_TRUNCATED;
	m->oui = get24(pdu);
	m->pid = get16(pdu + 3);
	if (m->oui != ident->oui || m->pid != ident->pid)
		return QKD_DROP_FOREIGN;
	if (len < 6)
		return QKD_DROP_TRUNCATED;
	m->version = pdu[5];
	if (m->version != QKD_VERSION)
		return QKD_DROP_BAD_VERSION;
	if (len < QKD_HDR_LEN)
		return QKD_DROP_TRUNCATED;
	size_t plen = get16(pdu + 8);
	if (plen < QKD_PDU_MIN || plen > QKD_PDU_MAX)
		return QKD_DROP_BAD_LENGTH;
	if (plen > len)
		return QKD_DROP_TRUNCATED;
	if (plen < len && ETH_HDR_LEN + len > QKD_ETH_MIN)
		return QKD_DROP_TRAILING;
	out->pdu_len = plen;
	out->padding = len - plen;

	m->type = pdu[6];
	m->flags = pdu[7];
	m->secret_id = pdu[10];
	m->channel = get32(pdu + 12);
	m->epoch = get32(pdu + 16);
	m->seq = get32(pdu + 20);
	if (m->type != QKD_MSG_HELLO && m->type != QKD_MSG_ANNOUNCE && m->type != QKD_MSG_ACK)
		return QKD_DROP_UNKNOWN_TYPE;

	struct reader r = {.p = pdu + QKD_HDR_LEN, .end = pdu + plen - QKD_ICV_LEN};
	size_t slen = pdu[11];
	if (!rd_has(&r, slen) || !qkd_str_valid((const char *)r.p, slen, QKD_SENDER_MAX))
		return QKD_DROP_MALFORMED;
	m->sender.ptr = (const char *)r.p;
	m->sender.len = slen;
	r.p += slen;
	if (m->channel == 0 || m->epoch == 0 || m->seq == 0)
		return QKD_DROP_MALFORMED;

	enum qkd_drop d;
	unsigned count = 0;
	switch (m->type) {
	case QKD_MSG_HELLO:
		d = decode_hello(&r, &m->u.hello);
		break;
	case QKD_MSG_ANNOUNCE:
		d = decode_announce(&r, &m->u.announce, &count);
		break;
	default:
		d = decode_ack(&r, &m->u.ack);
		break;
	}
	if (d != QKD_OK)
		return d;
	bool critical = false;
	d = decode_tlvs(&r, m, &critical);
	if (d != QKD_OK)
		return d;
	if (count > QKD_KEYS_MAX)
		return QKD_DROP_TOO_MANY_KEYS;
	if (critical)
		return QKD_DROP_UNSUPPORTED_TLV;
	return QKD_OK;
}

enum qkd_drop qkd_frame_decode(const uint8_t *frame, size_t len, const struct qkd_ident *ident,
                               struct qkd_decoded *out)
{
	memset(&out->l2, 0, sizeof out->l2);
	if (len < ETH_HDR_LEN) {
		memset(&out->msg, 0, sizeof out->msg);
		out->pdu = NULL;
		out->pdu_len = out->padding = 0;
		return QKD_DROP_NOT_88B7;
	}
	memcpy(out->l2.dst, frame, 6);
	memcpy(out->l2.src, frame + 6, 6);
	size_t off = 12;
	uint16_t et = get16(frame + off);
	for (int tags = 0; (et == 0x8100 || et == 0x88A8) && tags < 2; tags++) {
		if (len < off + 6) {
			et = 0;
			break;
		}
		if (tags == 0) {
			uint16_t tci = get16(frame + off + 2);
			out->l2.tagged = true;
			out->l2.pcp = (uint8_t)(tci >> 13);
			out->l2.vid = tci & 0x0FFF;
		}
		off += 4;
		et = get16(frame + off);
	}
	if (et != QKD_ETHERTYPE) {
		memset(&out->msg, 0, sizeof out->msg);
		out->pdu = NULL;
		out->pdu_len = out->padding = 0;
		return QKD_DROP_NOT_88B7;
	}
	return qkd_pdu_decode(frame + off + 2, len - off - 2, ident, out);
}

/* ---- names ---- */

const char *qkd_drop_name(enum qkd_drop d)
{
	static const char *const names[QKD_DROP_COUNT] = {
	    [QKD_OK] = "ok",
	    [QKD_DROP_NOT_88B7] = "not_88b7",
	    [QKD_DROP_TRUNCATED] = "truncated",
	    [QKD_DROP_FOREIGN] = "foreign",
	    [QKD_DROP_BAD_VERSION] = "bad_version",
	    [QKD_DROP_BAD_LENGTH] = "bad_length",
	    [QKD_DROP_TRAILING] = "trailing",
	    [QKD_DROP_UNKNOWN_TYPE] = "unknown_type",
	    [QKD_DROP_MALFORMED] = "malformed",
	    [QKD_DROP_TOO_MANY_KEYS] = "too_many_keys",
	    [QKD_DROP_UNSUPPORTED_TLV] = "unsupported_tlv",
	    [QKD_DROP_UNKNOWN_CHANNEL] = "unknown_channel",
	    [QKD_DROP_UNKNOWN_SECRET] = "unknown_secret",
	    [QKD_DROP_BAD_MAC] = "bad_mac",
	    [QKD_DROP_REPLAY] = "replay",
	    [QKD_DROP_PEER_LIMIT] = "peer_limit",
	};
	return (unsigned)d < QKD_DROP_COUNT ? names[d] : "unknown";
}

const char *qkd_msg_type_name(uint8_t type)
{
	switch (type) {
	case QKD_MSG_HELLO:
		return "HELLO";
	case QKD_MSG_ANNOUNCE:
		return "ANNOUNCE";
	case QKD_MSG_ACK:
		return "ACK";
	default:
		return "unknown";
	}
}

const char *qkd_result_name(uint8_t result)
{
	static const char *const names[] = {
	    "OK",    "KME_NOT_FOUND", "KME_ERROR",   "COMMIT_FAILED", "BUSY", "UNKNOWN_CHANNEL",
	    "STALE", "INTERNAL",      "ROUTER_BUSY",
	};
	return result < sizeof names / sizeof names[0] ? names[result] : "unknown";
}

const char *qkd_role_name(uint8_t role)
{
	return role == QKD_ROLE_MASTER ? "master" : role == QKD_ROLE_SLAVE ? "slave" : "unknown";
}

const char *qkd_state_name(uint8_t state)
{
	static const char *const names[] = {"IDLE", "ROTATING", "RESYNC"};
	return state < sizeof names / sizeof names[0] ? names[state] : "unknown";
}
