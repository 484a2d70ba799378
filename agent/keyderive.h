/*
 * keyderive.h - CKN and CAK from an ETSI GS QKD 014 key_ID and key, under the
 * two deployed conventions (docs/protocol.md section 10, domain notes):
 *
 *  "prefix": CKN = a configured 32-hex-digit prefix followed by the key_ID's
 *            32 hex digits with the dashes removed (lower-cased), 64 in all;
 *            the key_ID must be a UUID (8-4-4-4-12 hex digits).
 *  "sha256": CKN = lowercase hex SHA-256 of the key_ID's ASCII, as given.
 *  Both: CAK = the first N octets of the key as lowercase hex, N = 16 for
 *  gcm-aes-128 / gcm-aes-xpn-128, 32 for gcm-aes-256 / gcm-aes-xpn-256.
 *
 * The CKN needs only the key_ID, so the state machine and read-backs can
 * compute it without key material. kd_cak() writes into the caller's buffer,
 * wipes its own temporaries and never logs; the caller wipes the CAK
 * (kd_wipe) when done with it.
 */
#ifndef QKD_KEYDERIVE_H
#define QKD_KEYDERIVE_H

#include <stddef.h>
#include <stdint.h>

#define KD_CKN_LEN 64    /* hex characters of a CKN under both conventions */
#define KD_PREFIX_LEN 32 /* hex characters of the "prefix" convention's prefix */
#define KD_CAK_MAX_BYTES 32
#define KD_CAK_HEX_MAX (2 * KD_CAK_MAX_BYTES)

enum kd_conv { KD_CONV_PREFIX = 1, KD_CONV_SHA256 = 2 };

/* Parses "prefix" or "sha256"; 0 or -1. */
int kd_conv_parse(const char *name, enum kd_conv *out);
const char *kd_conv_name(enum kd_conv c);

/* CAK octets for a MACsec cipher suite name (16 or 32), 0 if unknown. */
size_t kd_cak_bytes(const char *suite);

/* Writes the CKN (KD_CKN_LEN hex characters and a NUL) into out[KD_CKN_LEN + 1].
 * prefix is used (and checked: 32 hex digits) only by KD_CONV_PREFIX.
 * Returns 0, or -1 with err saying what is wrong (never a key). */
int kd_ckn(enum kd_conv conv, const char *prefix, const char *key_id, char out[KD_CKN_LEN + 1],
           char *err, size_t errlen);

/* Writes the CAK (2 * cak_bytes lowercase hex characters and a NUL) into out
 * (outcap >= 2 * cak_bytes + 1). cak_bytes is 16 or 32; the key must hold at
 * least that many octets. Returns 0, or -1 with err (out is wiped). */
int kd_cak(const uint8_t *key, size_t keylen, size_t cak_bytes, char *out, size_t outcap, char *err,
           size_t errlen);

/* Wipes len octets so the compiler cannot drop it (OPENSSL_cleanse). */
void kd_wipe(void *p, size_t len);

#endif
