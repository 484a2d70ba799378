/*
 * kme.h - a strict ETSI GS QKD 014 v1.1.1 client (the SAE side), libcurl +
 * OpenSSL + jansson, driven by the caller's libevent loop.
 *
 * One struct kme_client talks to one KME. Requests are asynchronous: they run
 * on the event_base given to kme_client_new() (libcurl's multi interface), so
 * a slow KME never stalls the rest of the daemon, and the same TLS connection
 * is reused while the KME keeps it alive. The *_sync() wrappers run the loop
 * until their one request completes, for tools and tests.
 *
 * Security rules that no option can switch off: TLS 1.2 or later; the KME's
 * certificate chain is verified against the configured CA and its host name
 * against the URL; the KME's identity (kme_id: certificate CN or a DNS
 * subjectAltName; and/or a pinned public key) is checked during the handshake,
 * before any request is sent, because a sent enc_keys already consumes keys;
 * the client key file must be mode 0600 or stricter. Key bytes live in
 * buffers that are wiped when freed, as is the JSON text they came from;
 * nothing here ever logs a key value.
 */
#ifndef QKD_KME_H
#define QKD_KME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

#define KME_ID_MAX 128         /* SAE IDs, KME IDs, key_IDs (characters) */
#define KME_KEY_MAX_BYTES 1024 /* 8192-bit keys at most */
#define KME_KEYS_MAX 1024      /* keys in one request */
#define KME_BODY_MAX_DEFAULT (1u << 20)

/* Error classes. Every failure carries one, with a description. */
enum kme_err {
	KME_OK = 0,
	KME_E_ARG,       /* bad call or configuration (nothing was sent) */
	KME_E_LIMIT,     /* request outside the KME's last status limits (not sent) */
	KME_E_NOMEM,     /* allocation failed */
	KME_E_TRANSPORT, /* connect/send/receive failed (not TLS) */
	KME_E_TIMEOUT,   /* connect or total timeout */
	KME_E_TLS,       /* TLS handshake or certificate verification failed, or the
	                    KME closed the connection after the handshake (mTLS rejection) */
	KME_E_IDENTITY,  /* KME certificate valid but not the configured KME ID or pin */
	KME_E_HTTP_400,  /* bad request, or (dec_keys) key not found */
	KME_E_HTTP_401,  /* unauthorized */
	KME_E_HTTP_503,  /* server-side error / no keys now */
	KME_E_HTTP,      /* any other HTTP status */
	KME_E_PARSE,     /* 2xx reply that is not a valid, complete answer */
	KME_E_KEY_LOST,  /* dec_keys: the key was (possibly) delivered already and is
	                    gone at the KME; the master must start a new rotation */
};

struct kme_error {
	enum kme_err code;
	long http_status;  /* 0 if no HTTP reply */
	char message[256]; /* server's "message" (or "detail"), else a body excerpt */
	char details[256]; /* server's "details", compact JSON, if any */
	char text[512];    /* full human-readable description */
	/* the request's bytes (possibly) reached the KME, which may have acted on
	 * it: a dec_keys key may be gone even though no answer came back */
	bool maybe_delivered;
};

/*
 * Call once at program start, before any thread and before any other use of
 * jansson or libcurl: initialises libcurl and makes jansson wipe every block
 * it frees (so no key text survives in freed heap; jansson's allocator is
 * process-wide). kme_client_new() refuses to run without it. Returns 0 or -1.
 */
int kme_global_init(void);
void kme_global_cleanup(void);

/* Name of an error class, e.g. "http-400". */
const char *kme_err_name(enum kme_err e);

struct kme_config {
	const char *url;         /* "https://host[:port]", no path */
	const char *ca_file;     /* PEM: CA(s) the KME certificate must chain to */
	const char *cert_file;   /* PEM: this SAE's client certificate */
	const char *key_file;    /* PEM: its private key, mode 0600 or stricter */
	const char *kme_id;      /* expected KME identity: cert CN or DNS SAN (exact) */
	const char *pin;         /* optional: "sha256//base64..." public-key pin */
	long connect_timeout_ms; /* 0: 5000 */
	long timeout_ms;         /* total per attempt; 0: 15000 */
	size_t max_body;         /* reply cap in bytes; 0: KME_BODY_MAX_DEFAULT */
	bool no_reuse;           /* new connection per request (benchmarks only) */
	bool tls13_only;         /* refuse TLS 1.2 (TLS 1.2 is the default minimum) */
	bool check_status_id;    /* also require status source_KME_ID == kme_id (off by
	                            default: some KMEs report placeholder IDs) */
};

struct kme_status {
	char source_kme_id[KME_ID_MAX + 1];
	char target_kme_id[KME_ID_MAX + 1];
	char master_sae_id[KME_ID_MAX + 1];
	char slave_sae_id[KME_ID_MAX + 1];
	long key_size; /* bits */
	long stored_key_count;
	long max_key_count;
	long max_key_per_request;
	long max_key_size; /* bits */
	long min_key_size; /* bits */
	long max_sae_id_count;
};

struct kme_key {
	char id[KME_ID_MAX + 1];
	uint8_t *key; /* len bytes, wiped by kme_keys_free() */
	size_t len;
};

struct kme_keys {
	size_t n;
	struct kme_key *k;
};

/* Wipes and frees every key; *ks is left empty. NULL-safe. */
void kme_keys_free(struct kme_keys *ks);

/* What enc_keys asks for; a zero/NULL field is not sent (KME default). */
struct kme_enc_req {
	unsigned number;               /* 0: default (1) */
	unsigned size;                 /* bits; 0: the KME's key_size */
	const char *const *additional; /* additional_slave_SAE_IDs */
	size_t nadditional;
	const char *extension_mandatory; /* JSON array text, e.g. [{"abc_x":1}] */
	const char *extension_optional;  /* JSON array text */
	bool use_get;                    /* GET ?number=&size= (only if nothing else set) */
};

/* Retry policy; NULL means one attempt. */
struct kme_retry {
	unsigned attempts;       /* total attempts, >= 1 */
	unsigned backoff_ms;     /* first wait; doubled each time */
	unsigned backoff_max_ms; /* cap on one wait; 0: 60 s */
	bool try_later_400;      /* enc_keys: also retry a 400 whose message says
	                            "try again later" (NDK reports an empty pool so) */
};

/* dec_keys options. */
struct kme_dec_req {
	const char *const *ids; /* key_IDs to fetch */
	size_t n;
	unsigned size; /* expected key size in bits; 0: all keys equal length */
	bool use_get;  /* GET ?key_ID= (only if n == 1) */
};

struct kme_client;

/*
 * Creates a client for one KME. base: the caller's event loop, or NULL for a
 * private one (then only the *_sync() calls make sense). Loads nothing over
 * the network; checks the files exist and the key file's mode.
 * Returns NULL with *err filled on failure.
 */
struct kme_client *kme_client_new(struct event_base *base, const struct kme_config *cfg,
                                  struct kme_error *err);

/* Cancels pending requests (their callbacks are not called) and frees. Not
 * from inside a callback. NULL-safe. */
void kme_client_free(struct kme_client *c);

/*
 * Callbacks run on the event loop. err->code == KME_OK on success. keys is
 * valid during the call only and wiped after it returns: to keep the keys,
 * copy the struct and zero the original (*mine = *keys; keys->n = 0;
 * keys->k = NULL) and later kme_keys_free(mine).
 */
typedef void (*kme_status_cb)(void *arg, const struct kme_error *err, const struct kme_status *st);
typedef void (*kme_keys_cb)(void *arg, const struct kme_error *err, struct kme_keys *keys);

/* GET status for slave_sae. Also remembers the limits to check later requests. */
int kme_status_async(struct kme_client *c, const char *slave_sae, kme_status_cb cb, void *arg,
                     struct kme_error *err);

/*
 * enc_keys as master for slave_sae. Checked against the last status for
 * slave_sae when there is one (a status max of 0 means "unknown"). Retries
 * 503 (and opt-in "try again later" 400) as retry says.
 */
int kme_enc_keys_async(struct kme_client *c, const char *slave_sae, const struct kme_enc_req *rq,
                       const struct kme_retry *retry, kme_keys_cb cb, void *arg,
                       struct kme_error *err);

/*
 * dec_keys as slave for keys made by master_sae. Keys come back in the order
 * of rq->ids, matched by key_ID. Retries a 400 "not found" (the key may still
 * be travelling between KMEs) as retry says, but never after an attempt that
 * may have been delivered: then a "not found" or 401 is KME_E_KEY_LOST. A
 * key_ID this client already received is also reported as KME_E_KEY_LOST.
 */
int kme_dec_keys_async(struct kme_client *c, const char *master_sae, const struct kme_dec_req *rq,
                       const struct kme_retry *retry, kme_keys_cb cb, void *arg,
                       struct kme_error *err);

/* Blocking forms: run the client's event loop until the request completes.
 * Return 0 or -1 with *err filled. */
int kme_status_sync(struct kme_client *c, const char *slave_sae, struct kme_status *st,
                    struct kme_error *err);
int kme_enc_keys_sync(struct kme_client *c, const char *slave_sae, const struct kme_enc_req *rq,
                      const struct kme_retry *retry, struct kme_keys *out, struct kme_error *err);
int kme_dec_keys_sync(struct kme_client *c, const char *master_sae, const struct kme_dec_req *rq,
                      const struct kme_retry *retry, struct kme_keys *out, struct kme_error *err);

/* Days until the certificate in a PEM file expires (negative: expired). */
int kme_cert_days_left(const char *pem_file, long *days, struct kme_error *err);

/* Days left for the client certificate and the CA (first certificate of
 * ca_file), so the agent can warn below a threshold. */
int kme_client_cert_days(const struct kme_client *c, long *client_days, long *ca_days,
                         struct kme_error *err);

#endif
