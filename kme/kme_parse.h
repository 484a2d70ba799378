/*
 * kme_parse.h - the pure part of the ETSI 014 client: building request URLs
 * and bodies, checking requests against a status, and parsing replies. No I/O,
 * so the unit tests and the fuzz target reach all of it.
 */
#ifndef QKD_KME_PARSE_H
#define QKD_KME_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kme.h"

/* Fills err (code, text from fmt) and returns -1. err may be NULL. */
int kme_fail(struct kme_error *err, enum kme_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Makes jansson allocate through a wrapper that wipes every block it frees,
 * so no key text survives in freed heap. Idempotent, thread-safe; must run
 * before anything else allocates with jansson (kme_global_init() calls it).
 */
void kme_json_init(void);

/* True once kme_json_init() has installed the wiping allocator. */
bool kme_json_wiping(void);

/* Validates an SAE ID or key_ID: 1..KME_ID_MAX printable ASCII. */
bool kme_id_valid(const char *id);

/*
 * "base/api/v1/keys/<pct-encoded sae>/<endpoint>[?query]". The SAE ID is
 * percent-encoded except RFC 3986 unreserved characters. Returns a malloc'ed
 * string or NULL (err filled).
 */
char *kme_build_url(const char *base, const char *sae, const char *endpoint, const char *query,
                    struct kme_error *err);

/* enc_keys POST body with only the fields set ("{}" when none). malloc'ed. */
char *kme_build_enc_body(const struct kme_enc_req *rq, struct kme_error *err);

/* dec_keys POST body {"key_IDs":[{"key_ID":...},...]}. malloc'ed. */
char *kme_build_dec_body(const char *const *ids, size_t n, struct kme_error *err);

/* Checks rq against st (a limit of 0 is "unknown", not checked) and our own
 * policy (size a multiple of 8, counts within KME_KEYS_MAX). */
int kme_check_enc(const struct kme_status *st, const struct kme_enc_req *rq, struct kme_error *err);

/* Strict standard base64 (RFC 4648 §4): padding required, no whitespace,
 * zero unused bits. Returns 0 and *outlen, or -1. */
int kme_b64_decode(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *outlen);

/* Status reply: an object with the 11 fields of §6.1 (extra members and
 * status_extension ignored). */
int kme_parse_status(const char *body, size_t len, struct kme_status *st, struct kme_error *err);

/*
 * Key container (§6.3). want_count: number of keys that must come back.
 * want_ids (dec_keys, else NULL): keys are matched to these by key_ID and
 * returned in their order. want_bytes: decoded length of every key, or 0 for
 * "all equal, non-zero". Unknown and null members are ignored; duplicates,
 * bad base64, wrong length or count are KME_E_PARSE.
 */
int kme_parse_keys(const char *body, size_t len, size_t want_count, const char *const *want_ids,
                   size_t want_bytes, struct kme_keys *out, struct kme_error *err);

/* A 2xx reply's Content-Type must be absent or application/json (any
 * parameters, case-insensitive). */
bool kme_ctype_json(const char *ctype);

/*
 * Error reply: fills err->message/details from a JSON body ("message", or
 * FastAPI's "detail") or with a short printable excerpt of any other body,
 * and sets err->code from the status and err->text.
 */
void kme_parse_error_reply(long status, const char *ctype, const char *body, size_t len,
                           struct kme_error *err);

/* Copies at most cap-1 octets of text that a peer sent (a body, a header)
 * into dst for a message: runs of white space become one space, other
 * control and non-ASCII octets '?', "..." marks a cut. */
void kme_excerpt(char *dst, size_t cap, const char *text, size_t len);

/* Message classification for the retry helpers (case-insensitive). */
bool kme_msg_not_found(const char *msg);
bool kme_msg_try_later(const char *msg);

#endif
