/*
 * kme_client.c - the ETSI 014 client: libcurl multi driven by libevent, TLS
 * policy and KME identity check in the handshake, typed errors, retries.
 */
#include "kme.h"
#include "kme_parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define DELIVERED_RING 64 /* key_IDs this client received, for "key lost" */
#define STATUS_CACHE 16   /* slaves whose last status we remember */
/* Transfers in progress at once; the others wait in the client's own queue.
 * libcurl would queue them too (CURLMOPT_MAX_HOST_CONNECTIONS), but its
 * timeout runs from the moment a transfer is added: in a burst, requests
 * expired there before they were sent ("Connection timed out after 0 ms").
 * Here a request's timeout starts when it is handed to libcurl, and a waiting
 * request holds no curl handle (about 5 KiB each). */
#define ACTIVE_MAX 16

enum kind { K_STATUS, K_ENC, K_DEC };

struct status_slot {
	char slave[KME_ID_MAX + 1];
	struct kme_status st;
	bool used;
};

struct kme_client {
	char identity_seen[160]; /* last mismatching KME certificate (diagnostics) */
	struct event_base *base;
	bool own_base;
	CURLM *multi;
	struct event *timer;
	char *url, *ca, *cert, *key, *kme_id, *pin;
	long connect_ms, total_ms;
	size_t max_body;
	bool no_reuse, tls13_only, check_status_id;
	struct kme_req *reqs;                  /* pending, for cleanup */
	struct kme_req *wait_head, *wait_tail; /* not yet handed to libcurl, FIFO */
	unsigned active;                       /* handles in the multi */
	struct status_slot status[STATUS_CACHE];
	size_t status_next;
	char delivered[DELIVERED_RING][KME_ID_MAX + 1];
	size_t delivered_next;
};

struct kme_req {
	struct kme_client *c;
	struct kme_req *next, *prev;
	struct kme_req *wait_next; /* in the client's queue */
	enum kind kind;
	CURL *easy;
	struct curl_slist *hdrs;
	char *url;
	char *body;
	size_t body_len;
	char *resp;
	size_t resp_len, resp_cap;
	bool resp_over, resp_nomem;
	char errbuf[CURL_ERROR_SIZE];
	/* what to expect */
	char sae[KME_ID_MAX + 1];
	size_t want_count, want_bytes;
	char **ids;
	size_t nids;
	/* retry */
	struct kme_retry retry;
	unsigned attempt;
	bool maybe_delivered;
	struct event *backoff;
	kme_status_cb status_cb;
	kme_keys_cb keys_cb;
	void *arg;
};

struct sock_ctx {
	struct kme_client *c;
	struct event *ev;
	curl_socket_t fd;
};

static void req_free(struct kme_req *r);
static int req_start(struct kme_req *r, struct kme_error *err);
static void req_fail(struct kme_req *r, const struct kme_error *err);

/* ---- files ---- */

static int check_key_file(const char *path, struct kme_error *err)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return kme_fail(err, KME_E_ARG, "client key %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return kme_fail(err, KME_E_ARG, "client key %s: not a regular file", path);
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return kme_fail(
		    err, KME_E_ARG,
		    "client key %s: mode %04o lets others read or write it; chmod 600 it", path,
		    (unsigned)(st.st_mode & 07777));
	return 0;
}

static X509 *read_cert(const char *path, struct kme_error *err)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		kme_fail(err, KME_E_ARG, "certificate %s: %s", path, strerror(errno));
		return NULL;
	}
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		kme_fail(err, KME_E_ARG, "certificate %s: no PEM certificate", path);
	return x;
}

int kme_cert_days_left(const char *pem_file, long *days, struct kme_error *err)
{
	X509 *x = read_cert(pem_file, err);
	if (x == NULL)
		return -1;
	int d = 0, s = 0;
	int ok = ASN1_TIME_diff(&d, &s, NULL, X509_get0_notAfter(x));
	X509_free(x);
	if (!ok)
		return kme_fail(err, KME_E_ARG, "certificate %s: bad notAfter", pem_file);
	*days = d;
	return 0;
}

int kme_client_cert_days(const struct kme_client *c, long *client_days, long *ca_days,
                         struct kme_error *err)
{
	if (kme_cert_days_left(c->cert, client_days, err) != 0)
		return -1;
	return kme_cert_days_left(c->ca, ca_days, err);
}

/* ---- identity check in the handshake ---- */

static bool cert_has_id(X509 *x, const char *id, char *seen, size_t seencap)
{
	char cn[KME_ID_MAX + 2] = "";
	X509_NAME *nm = X509_get_subject_name(x);
	int idx = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
	if (idx >= 0) {
		ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, idx));
		int l = ASN1_STRING_length(d);
		if (l > 0 && (size_t)l < sizeof cn) {
			memcpy(cn, ASN1_STRING_get0_data(d), (size_t)l);
			cn[l] = 0;
			if (strlen(cn) == (size_t)l && strcmp(cn, id) == 0)
				return true;
		}
	}
	snprintf(seen, seencap, "CN=%s", cn);
	bool found = false;
	GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && !found; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		if (g->type != GEN_DNS)
			continue;
		int l = ASN1_STRING_length(g->d.dNSName);
		const unsigned char *p = ASN1_STRING_get0_data(g->d.dNSName);
		found = (size_t)l == strlen(id) && memcmp(p, id, (size_t)l) == 0;
	}
	GENERAL_NAMES_free(sans);
	return found;
}

/*
 * Replaces X509_verify_cert for the connection's handshake: the normal chain
 * check, then the leaf must carry the configured KME ID. A mismatch fails the
 * handshake with X509_V_ERR_APPLICATION_VERIFICATION, which the request then
 * reads back (CURLINFO_SSL_VERIFYRESULT) as KME_E_IDENTITY. arg is the client,
 * which outlives every pooled connection (they close in kme_client_free()).
 */
static int verify_cb(X509_STORE_CTX *xs, void *arg)
{
	struct kme_client *c = arg;
	int ok = X509_verify_cert(xs);
	if (ok <= 0)
		return ok;
	X509 *leaf = X509_STORE_CTX_get0_cert(xs);
	if (leaf == NULL ||
	    !cert_has_id(leaf, c->kme_id, c->identity_seen, sizeof c->identity_seen)) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	return 1;
}

static CURLcode ssl_ctx_cb(CURL *easy, void *sslctx, void *arg)
{
	(void)easy;
	SSL_CTX *ctx = sslctx;
	struct kme_client *c = arg;
	if (SSL_CTX_get_min_proto_version(ctx) < TLS1_2_VERSION &&
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
		return CURLE_SSL_CIPHER;
	if (c->tls13_only && !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION))
		return CURLE_SSL_CIPHER;
	/* trust exactly the configured CA file: libcurl may also have loaded a
	 * built-in CA path (Debian: /etc/ssl/certs), which must not count */
	X509_STORE *store = X509_STORE_new();
	if (store == NULL || X509_STORE_load_file(store, c->ca) != 1) {
		X509_STORE_free(store);
		return CURLE_SSL_CACERT_BADFILE;
	}
	SSL_CTX_set_cert_store(ctx, store);
	/* no renegotiation: every certificate this connection sees is checked here */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, verify_cb, c);
	return CURLE_OK;
}

/* ---- curl multi on libevent ---- */

static void check_done(struct kme_client *c);

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct kme_client *c = arg;
	int flags =
	    (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running;
	curl_multi_socket_action(c->multi, fd, flags, &running);
	check_done(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct kme_client *c = arg;
	int running;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);
}

static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *sockp)
{
	(void)easy;
	struct kme_client *c = userp;
	struct sock_ctx *sc = sockp;
	if (what == CURL_POLL_REMOVE) {
		if (sc) {
			event_free(sc->ev);
			free(sc);
			curl_multi_assign(c->multi, s, NULL);
		}
		return 0;
	}
	if (sc == NULL) {
		sc = calloc(1, sizeof *sc);
		if (sc == NULL)
			return -1;
		sc->c = c;
		sc->fd = s;
		curl_multi_assign(c->multi, s, sc);
	} else {
		event_free(sc->ev);
		sc->ev = NULL;
	}
	short ev = (short)(EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
	                   (what & CURL_POLL_OUT ? EV_WRITE : 0));
	sc->ev = event_new(c->base, s, ev, on_socket, c);
	if (sc->ev == NULL || event_add(sc->ev, NULL) != 0)
		return -1;
	return 0;
}

static int timer_cb(CURLM *multi, long ms, void *userp)
{
	(void)multi;
	struct kme_client *c = userp;
	if (ms < 0)
		return evtimer_del(c->timer);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	return evtimer_add(c->timer, &tv);
}

/* ---- client ---- */

static char *dup_or_null(const char *s, bool *fail)
{
	if (s == NULL)
		return NULL;
	char *d = strdup(s);
	if (d == NULL)
		*fail = true;
	return d;
}

struct kme_client *kme_client_new(struct event_base *base, const struct kme_config *cfg,
                                  struct kme_error *err)
{
	memset(err, 0, sizeof *err);
	if (!kme_json_wiping()) {
		kme_fail(err, KME_E_ARG, "kme_global_init() was not called at program start");
		return NULL;
	}
	if (cfg->url == NULL || strncmp(cfg->url, "https://", 8) != 0) {
		kme_fail(err, KME_E_ARG, "KME URL must start with https://");
		return NULL;
	}
	if (cfg->ca_file == NULL || cfg->cert_file == NULL || cfg->key_file == NULL) {
		kme_fail(err, KME_E_ARG, "CA, client certificate and key files are all required");
		return NULL;
	}
	if (!kme_id_valid(cfg->kme_id)) {
		kme_fail(err, KME_E_ARG, "the expected KME ID is required (1..%d characters)",
		         KME_ID_MAX);
		return NULL;
	}
	if (cfg->pin && strncmp(cfg->pin, "sha256//", 8) != 0) {
		kme_fail(err, KME_E_ARG, "public-key pin must be sha256//BASE64");
		return NULL;
	}
	if (check_key_file(cfg->key_file, err) != 0)
		return NULL;
	long days;
	if (kme_cert_days_left(cfg->cert_file, &days, err) != 0 ||
	    kme_cert_days_left(cfg->ca_file, &days, err) != 0)
		return NULL;
	struct kme_client *c = calloc(1, sizeof *c);
	if (c == NULL) {
		kme_fail(err, KME_E_NOMEM, "out of memory");
		return NULL;
	}
	bool fail = false;
	c->url = dup_or_null(cfg->url, &fail);
	c->ca = dup_or_null(cfg->ca_file, &fail);
	c->cert = dup_or_null(cfg->cert_file, &fail);
	c->key = dup_or_null(cfg->key_file, &fail);
	c->kme_id = dup_or_null(cfg->kme_id, &fail);
	c->pin = dup_or_null(cfg->pin, &fail);
	c->connect_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
	c->total_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 15000;
	c->max_body = cfg->max_body ? cfg->max_body : KME_BODY_MAX_DEFAULT;
	c->no_reuse = cfg->no_reuse;
	c->tls13_only = cfg->tls13_only;
	c->check_status_id = cfg->check_status_id;
	c->base = base;
	if (!fail && c->base == NULL) {
		c->base = event_base_new();
		c->own_base = true;
		fail = c->base == NULL;
	}
	if (!fail) {
		c->multi = curl_multi_init();
		c->timer = evtimer_new(c->base, on_timer, c);
		fail = c->multi == NULL || c->timer == NULL;
	}
	if (fail) {
		kme_client_free(c);
		kme_fail(err, KME_E_NOMEM, "out of memory creating the KME client");
		return NULL;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)ACTIVE_MAX);
	return c;
}

void kme_client_free(struct kme_client *c)
{
	if (c == NULL)
		return;
	c->wait_head = c->wait_tail = NULL;
	while (c->reqs)
		req_free(c->reqs);
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->timer)
		event_free(c->timer);
	if (c->own_base)
		event_base_free(c->base);
	free(c->url);
	free(c->ca);
	free(c->cert);
	free(c->key);
	free(c->kme_id);
	free(c->pin);
	OPENSSL_cleanse(c->delivered, sizeof c->delivered);
	free(c);
}

/* ---- requests ---- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct kme_req *r = arg;
	size_t len = size * n;
	if (len > r->c->max_body - r->resp_len) {
		r->resp_over = true;
		return 0;
	}
	if (r->resp_len + len + 1 > r->resp_cap) {
		size_t cap = r->resp_cap ? r->resp_cap : 1024;
		while (cap < r->resp_len + len + 1)
			cap *= 2;
		/* grow by copy so the old buffer can be wiped */
		char *nb = malloc(cap);
		if (nb == NULL) {
			r->resp_nomem = true;
			return 0;
		}
		if (r->resp) {
			memcpy(nb, r->resp, r->resp_len);
			OPENSSL_cleanse(r->resp, r->resp_cap);
			free(r->resp);
		}
		r->resp = nb;
		r->resp_cap = cap;
	}
	memcpy(r->resp + r->resp_len, p, len);
	r->resp_len += len;
	r->resp[r->resp_len] = 0;
	return len;
}

static void wipe_resp(struct kme_req *r)
{
	if (r->resp) {
		OPENSSL_cleanse(r->resp, r->resp_cap);
		free(r->resp);
	}
	r->resp = NULL;
	r->resp_len = r->resp_cap = 0;
	r->resp_over = r->resp_nomem = false;
}

/* Takes r's transfer out of libcurl, if it has one. */
static void req_detach(struct kme_req *r)
{
	if (r->easy) {
		curl_multi_remove_handle(r->c->multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
		r->c->active--;
	}
}

static void req_free(struct kme_req *r)
{
	struct kme_client *c = r->c;
	req_detach(r);
	if (r->backoff)
		event_free(r->backoff);
	curl_slist_free_all(r->hdrs);
	free(r->url);
	if (r->body) {
		OPENSSL_cleanse(r->body, r->body_len);
		free(r->body);
	}
	wipe_resp(r);
	for (size_t i = 0; i < r->nids; i++)
		free(r->ids[i]);
	free(r->ids);
	if (r->prev)
		r->prev->next = r->next;
	else
		c->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	free(r);
}

static struct kme_req *req_new(struct kme_client *c, enum kind kind, const char *sae,
                               const struct kme_retry *retry, struct kme_error *err)
{
	if (!kme_id_valid(sae)) {
		kme_fail(err, KME_E_ARG, "invalid SAE ID");
		return NULL;
	}
	struct kme_req *r = calloc(1, sizeof *r);
	if (r == NULL) {
		kme_fail(err, KME_E_NOMEM, "out of memory");
		return NULL;
	}
	r->c = c;
	r->kind = kind;
	strcpy(r->sae, sae);
	if (retry) {
		r->retry = *retry;
		if (r->retry.attempts == 0)
			r->retry.attempts = 1;
	} else {
		r->retry.attempts = 1;
	}
	r->next = c->reqs;
	if (c->reqs)
		c->reqs->prev = r;
	c->reqs = r;
	return r;
}

/* Hands r to libcurl now if fewer than ACTIVE_MAX transfers run, else queues
 * it (pump() starts it when one ends). 0, or -1 with err (r not started). */
static int req_start(struct kme_req *r, struct kme_error *err)
{
	struct kme_client *c = r->c;
	req_detach(r);
	if (c->active >= ACTIVE_MAX) {
		r->wait_next = NULL;
		if (c->wait_tail)
			c->wait_tail->wait_next = r;
		else
			c->wait_head = r;
		c->wait_tail = r;
		return 0;
	}
	wipe_resp(r);
	r->errbuf[0] = 0;
	CURL *e = curl_easy_init();
	if (e == NULL)
		return kme_fail(err, KME_E_NOMEM, "out of memory (curl handle)");
	int rc = 0;
	rc |= curl_easy_setopt(e, CURLOPT_URL, r->url);
	rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	rc |= curl_easy_setopt(
	    e, CURLOPT_SSLVERSION,
	    (long)(c->tls13_only ? CURL_SSLVERSION_TLSv1_3 : CURL_SSLVERSION_TLSv1_2));
	rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	rc |= curl_easy_setopt(e, CURLOPT_CAINFO, c->ca);
	rc |=
	    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never through a proxy from the environment */
	rc |= curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert);
	rc |= curl_easy_setopt(e, CURLOPT_SSLKEY, c->key);
	rc |= curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
	rc |= curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, c);
	/* curl's session cache would let a resumed session skip our verify callback */
	rc |= curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	if (c->pin)
		rc |= curl_easy_setopt(e, CURLOPT_PINNEDPUBLICKEY, c->pin);
	rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
	rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->total_ms);
	rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	rc |= curl_easy_setopt(e, CURLOPT_USERAGENT, "qkdlink-kme/1");
	if (c->no_reuse) {
		rc |= curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
		rc |= curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	}
	if (r->body) {
		rc |= curl_easy_setopt(e, CURLOPT_POST, 1L);
		rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
		rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->body_len);
		rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	} else {
		rc |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	}
	if (rc != 0) {
		curl_easy_cleanup(e);
		return kme_fail(err, KME_E_ARG, "libcurl lacks a required option (%d)", rc);
	}
	if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		return kme_fail(err, KME_E_NOMEM, "curl_multi_add_handle failed");
	}
	r->easy = e;
	c->active++;
	return 0;
}

/* Starts queued requests while there is room. A request that cannot start
 * fails through its callback. */
static void pump(struct kme_client *c)
{
	while (c->wait_head && c->active < ACTIVE_MAX) {
		struct kme_req *r = c->wait_head;
		c->wait_head = r->wait_next;
		if (c->wait_head == NULL)
			c->wait_tail = NULL;
		r->wait_next = NULL;
		struct kme_error err = {0};
		if (req_start(r, &err) != 0)
			req_fail(r, &err);
	}
}

/* Classifies a failed transfer. */
static void transfer_error(struct kme_req *r, CURLcode cc, struct kme_error *err)
{
	long nconn = 0, reqsize = 0, verify = 0;
	curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &nconn);
	curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &reqsize);
	curl_easy_getinfo(r->easy, CURLINFO_SSL_VERIFYRESULT, &verify);
	const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc);
	enum kme_err code = KME_E_TRANSPORT;
	const char *what = "transport error";
	char seen[200];
	if (cc == CURLE_PEER_FAILED_VERIFICATION && verify == X509_V_ERR_APPLICATION_VERIFICATION) {
		code = KME_E_IDENTITY;
		what = "KME identity mismatch";
		snprintf(seen, sizeof seen, "expected %s, certificate has %s", r->c->kme_id,
		         r->c->identity_seen);
		detail = seen;
	} else if (cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH) {
		code = KME_E_IDENTITY;
		what = "KME public key does not match the pin";
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		code = KME_E_TIMEOUT;
		what = "timeout";
	} else if (cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_PEER_FAILED_VERIFICATION ||
	           cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_CIPHER ||
	           cc == CURLE_SSL_CACERT_BADFILE || cc == CURLE_SSL_ISSUER_ERROR) {
		code = KME_E_TLS;
		what = "TLS failure";
	} else if ((cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING) &&
	           nconn > 0) {
		/* TLS 1.3: the KME rejecting our certificate shows up here */
		code = KME_E_TLS;
		what = "connection closed after the handshake (the KME may have rejected our "
		       "client certificate)";
	} else if (cc == CURLE_WRITE_ERROR && r->resp_over) {
		code = KME_E_PARSE;
		what = "reply body too large";
	} else if (cc == CURLE_WRITE_ERROR && r->resp_nomem) {
		code = KME_E_NOMEM;
		what = "out of memory reading the reply";
	}
	/* did the KME possibly act on it? (request bytes left us) */
	if (reqsize > 0 && code != KME_E_IDENTITY)
		r->maybe_delivered = true;
	err->code = code;
	err->http_status = 0;
	snprintf(err->message, sizeof err->message, "%s", detail);
	snprintf(err->text, sizeof err->text, "%s: %s", what, detail);
}

static void remember_status(struct kme_client *c, const char *slave, const struct kme_status *st)
{
	struct status_slot *s = NULL;
	for (size_t i = 0; i < STATUS_CACHE; i++)
		if (c->status[i].used && strcmp(c->status[i].slave, slave) == 0)
			s = &c->status[i];
	if (s == NULL) {
		s = &c->status[c->status_next];
		c->status_next = (c->status_next + 1) % STATUS_CACHE;
	}
	strcpy(s->slave, slave);
	s->st = *st;
	s->used = true;
}

static const struct kme_status *last_status(const struct kme_client *c, const char *slave)
{
	for (size_t i = 0; i < STATUS_CACHE; i++)
		if (c->status[i].used && strcmp(c->status[i].slave, slave) == 0)
			return &c->status[i].st;
	return NULL;
}

static bool was_delivered(const struct kme_client *c, const char *id)
{
	for (size_t i = 0; i < DELIVERED_RING; i++)
		if (strcmp(c->delivered[i], id) == 0)
			return true;
	return false;
}

static bool any_delivered(const struct kme_req *r)
{
	for (size_t i = 0; i < r->nids; i++)
		if (was_delivered(r->c, r->ids[i]))
			return true;
	return false;
}

static void on_backoff(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct kme_req *r = arg;
	struct kme_error err = {0};
	if (req_start(r, &err) != 0)
		req_fail(r, &err);
}

/* Reports a request that could not be (re)started, and frees it. */
static void req_fail(struct kme_req *r, const struct kme_error *err)
{
	if (r->keys_cb) {
		struct kme_keys none = {0, NULL};
		r->keys_cb(r->arg, err, &none);
	} else {
		r->status_cb(r->arg, err, NULL);
	}
	req_free(r);
}

/* true if the request was rescheduled */
static bool maybe_retry(struct kme_req *r, const struct kme_error *err)
{
	if (r->attempt >= r->retry.attempts)
		return false;
	bool again = false;
	if (r->kind == K_ENC)
		again = err->code == KME_E_HTTP_503 ||
		        (r->retry.try_later_400 && err->code == KME_E_HTTP_400 &&
		         kme_msg_try_later(err->message));
	else if (r->kind == K_DEC)
		again = !r->maybe_delivered && !any_delivered(r) &&
		        ((err->code == KME_E_HTTP_400 && kme_msg_not_found(err->message)) ||
		         (err->code == KME_E_HTTP && err->http_status == 404));
	else
		again = err->code == KME_E_HTTP_503;
	if (!again)
		return false;
	unsigned cap = r->retry.backoff_max_ms ? r->retry.backoff_max_ms : 60000;
	unsigned ms = r->retry.backoff_ms;
	for (unsigned i = 1; i < r->attempt && ms < cap; i++)
		ms *= 2;
	if (ms > cap)
		ms = cap;
	if (r->backoff == NULL)
		r->backoff = evtimer_new(r->c->base, on_backoff, r);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	if (r->backoff == NULL || evtimer_add(r->backoff, &tv) != 0)
		return false;
	req_detach(r);
	r->attempt++;
	return true;
}

static void finish(struct kme_req *r, CURLcode cc)
{
	struct kme_client *c = r->c;
	struct kme_error err = {0};
	struct kme_status st;
	struct kme_keys keys = {0, NULL};
	long http = 0;
	char *ctype = NULL;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &http);
	curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ctype);
	if (cc != CURLE_OK) {
		transfer_error(r, cc, &err);
	} else if (http < 200 || http > 299) {
		kme_parse_error_reply(http, ctype, r->resp, r->resp_len, &err);
	} else if (!kme_ctype_json(ctype)) {
		char ct[104];
		kme_excerpt(ct, sizeof ct, ctype, strlen(ctype));
		err.http_status = http;
		kme_fail(&err, KME_E_PARSE, "HTTP %ld reply with Content-Type %s, not JSON", http,
		         ct);
	} else if (r->kind == K_STATUS) {
		err.http_status = http;
		if (kme_parse_status(r->resp ? r->resp : "", r->resp_len, &st, &err) == 0) {
			remember_status(c, r->sae, &st);
			if (c->check_status_id && strcmp(st.source_kme_id, c->kme_id) != 0)
				kme_fail(&err, KME_E_IDENTITY,
				         "status source_KME_ID %s is not the configured KME %s",
				         st.source_kme_id, c->kme_id);
		}
	} else {
		err.http_status = http;
		if (r->kind == K_DEC)
			r->maybe_delivered = true; /* the KME answered 2xx: the keys are gone */
		kme_parse_keys(r->resp ? r->resp : "", r->resp_len, r->want_count,
		               r->kind == K_DEC ? (const char *const *)r->ids : NULL, r->want_bytes,
		               &keys, &err);
	}
	wipe_resp(r);
	if (err.code != KME_OK && maybe_retry(r, &err))
		return;
	if (r->kind == K_DEC && (err.code == KME_E_HTTP_400 || err.code == KME_E_HTTP_401 ||
	                         (err.code == KME_E_HTTP && http == 404))) {
		for (size_t i = 0; i < r->nids; i++)
			if (was_delivered(c, r->ids[i])) {
				err.code = KME_E_KEY_LOST;
				break;
			}
	}
	/* remember every key_ID that was, or may have been, handed out */
	if (r->kind == K_DEC && (err.code == KME_OK || r->maybe_delivered)) {
		for (size_t i = 0; i < r->nids; i++) {
			if (was_delivered(c, r->ids[i]))
				continue;
			strcpy(c->delivered[c->delivered_next], r->ids[i]);
			c->delivered_next = (c->delivered_next + 1) % DELIVERED_RING;
		}
	}
	if (err.code == KME_E_KEY_LOST) {
		char was[sizeof err.text];
		memcpy(was, err.text, sizeof was);
		snprintf(err.text, sizeof err.text,
		         "key lost: the KME no longer has a key this client (possibly) received "
		         "already; start a new rotation (%.400s)",
		         was);
	}
	err.maybe_delivered = r->maybe_delivered;
	if (r->kind == K_STATUS)
		r->status_cb(r->arg, &err, err.code == KME_OK ? &st : NULL);
	else
		r->keys_cb(r->arg, &err, &keys);
	kme_keys_free(&keys);
	req_free(r);
}

static void check_done(struct kme_client *c)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		char *priv = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		struct kme_req *r = (struct kme_req *)(void *)priv;
		if (r)
			finish(r, m->data.result);
	}
	pump(c);
}

/* ---- public calls ---- */

int kme_global_init(void)
{
	kme_json_init();
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK && kme_json_wiping() ? 0 : -1;
}

void kme_global_cleanup(void)
{
	curl_global_cleanup();
}

int kme_status_async(struct kme_client *c, const char *slave_sae, kme_status_cb cb, void *arg,
                     struct kme_error *err)
{
	memset(err, 0, sizeof *err);
	struct kme_req *r = req_new(c, K_STATUS, slave_sae, NULL, err);
	if (r == NULL)
		return -1;
	r->status_cb = cb;
	r->arg = arg;
	r->url = kme_build_url(c->url, slave_sae, "status", NULL, err);
	r->attempt = 1;
	if (r->url == NULL || req_start(r, err) != 0) {
		req_free(r);
		return -1;
	}
	return 0;
}

int kme_enc_keys_async(struct kme_client *c, const char *slave_sae, const struct kme_enc_req *rq,
                       const struct kme_retry *retry, kme_keys_cb cb, void *arg,
                       struct kme_error *err)
{
	memset(err, 0, sizeof *err);
	if (kme_check_enc(last_status(c, slave_sae), rq, err) != 0)
		return -1;
	struct kme_req *r = req_new(c, K_ENC, slave_sae, retry, err);
	if (r == NULL)
		return -1;
	r->keys_cb = cb;
	r->arg = arg;
	r->attempt = 1;
	r->want_count = rq->number ? rq->number : 1;
	const struct kme_status *st = last_status(c, slave_sae);
	unsigned bits = rq->size ? rq->size : (st && st->key_size > 0 ? (unsigned)st->key_size : 0);
	r->want_bytes = bits % 8 == 0 ? bits / 8 : 0;
	if (rq->use_get) {
		char q[64] = "";
		if (rq->number && rq->size)
			snprintf(q, sizeof q, "number=%u&size=%u", rq->number, rq->size);
		else if (rq->number)
			snprintf(q, sizeof q, "number=%u", rq->number);
		else if (rq->size)
			snprintf(q, sizeof q, "size=%u", rq->size);
		r->url = kme_build_url(c->url, slave_sae, "enc_keys", q[0] ? q : NULL, err);
	} else {
		r->url = kme_build_url(c->url, slave_sae, "enc_keys", NULL, err);
		r->body = r->url ? kme_build_enc_body(rq, err) : NULL;
		if (r->body) {
			r->body_len = strlen(r->body);
			r->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
			if (r->hdrs == NULL) {
				kme_fail(err, KME_E_NOMEM, "out of memory");
				req_free(r);
				return -1;
			}
		}
	}
	if (r->url == NULL || (!rq->use_get && r->body == NULL) || req_start(r, err) != 0) {
		req_free(r);
		return -1;
	}
	return 0;
}

int kme_dec_keys_async(struct kme_client *c, const char *master_sae, const struct kme_dec_req *rq,
                       const struct kme_retry *retry, kme_keys_cb cb, void *arg,
                       struct kme_error *err)
{
	memset(err, 0, sizeof *err);
	if (rq->size % 8 != 0 || rq->size > 8 * KME_KEY_MAX_BYTES)
		return kme_fail(err, KME_E_ARG, "size %u bits: not a multiple of 8 or too large",
		                rq->size);
	if (rq->use_get && rq->n != 1)
		return kme_fail(err, KME_E_ARG, "GET dec_keys carries exactly one key_ID");
	char *body = kme_build_dec_body(rq->ids, rq->n, err); /* validates the IDs */
	if (body == NULL)
		return -1;
	struct kme_req *r = req_new(c, K_DEC, master_sae, retry, err);
	if (r == NULL) {
		free(body);
		return -1;
	}
	r->keys_cb = cb;
	r->arg = arg;
	r->attempt = 1;
	r->want_count = rq->n;
	r->want_bytes = rq->size / 8;
	r->ids = calloc(rq->n, sizeof *r->ids);
	if (r->ids == NULL) {
		free(body);
		req_free(r);
		return kme_fail(err, KME_E_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < rq->n; i++) {
		if ((r->ids[i] = strdup(rq->ids[i])) == NULL) {
			free(body);
			req_free(r);
			return kme_fail(err, KME_E_NOMEM, "out of memory");
		}
		r->nids++;
	}
	if (rq->use_get) {
		free(body);
		char *q = NULL;
		CURL *tmp = curl_easy_init();
		char *esc = tmp ? curl_easy_escape(tmp, rq->ids[0], 0) : NULL;
		if (esc && (q = malloc(strlen(esc) + 8)) != NULL)
			sprintf(q, "key_ID=%s", esc);
		curl_free(esc);
		curl_easy_cleanup(tmp);
		r->url = q ? kme_build_url(c->url, master_sae, "dec_keys", q, err) : NULL;
		if (q == NULL)
			kme_fail(err, KME_E_NOMEM, "out of memory");
		free(q);
	} else {
		r->body = body;
		r->body_len = strlen(body);
		r->url = kme_build_url(c->url, master_sae, "dec_keys", NULL, err);
		r->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
		if (r->hdrs == NULL && r->url) {
			free(r->url);
			r->url = NULL;
			kme_fail(err, KME_E_NOMEM, "out of memory");
		}
	}
	if (r->url == NULL || req_start(r, err) != 0) {
		req_free(r);
		return -1;
	}
	return 0;
}

/* ---- blocking wrappers ---- */

struct sync_ctx {
	bool done;
	struct kme_error *err;
	struct kme_status *st;
	struct kme_keys *keys;
};

static void sync_status(void *arg, const struct kme_error *err, const struct kme_status *st)
{
	struct sync_ctx *s = arg;
	*s->err = *err;
	if (st)
		*s->st = *st;
	s->done = true;
}

static void sync_keys(void *arg, const struct kme_error *err, struct kme_keys *keys)
{
	struct sync_ctx *s = arg;
	*s->err = *err;
	*s->keys = *keys;
	keys->n = 0;
	keys->k = NULL;
	s->done = true;
}

static int run(struct kme_client *c, struct sync_ctx *s)
{
	while (!s->done) {
		int rc = event_base_loop(c->base, EVLOOP_ONCE);
		if (rc < 0)
			return kme_fail(s->err, KME_E_TRANSPORT, "event loop failed");
		if (rc == 1 && !s->done) /* nothing pending: the request cannot finish */
			return kme_fail(s->err, KME_E_TRANSPORT,
			                "event loop has nothing pending (request lost)");
	}
	return s->err->code == KME_OK ? 0 : -1;
}

int kme_status_sync(struct kme_client *c, const char *slave_sae, struct kme_status *st,
                    struct kme_error *err)
{
	struct sync_ctx s = {false, err, st, NULL};
	if (kme_status_async(c, slave_sae, sync_status, &s, err) != 0)
		return -1;
	return run(c, &s);
}

int kme_enc_keys_sync(struct kme_client *c, const char *slave_sae, const struct kme_enc_req *rq,
                      const struct kme_retry *retry, struct kme_keys *out, struct kme_error *err)
{
	out->n = 0;
	out->k = NULL;
	struct sync_ctx s = {false, err, NULL, out};
	if (kme_enc_keys_async(c, slave_sae, rq, retry, sync_keys, &s, err) != 0)
		return -1;
	return run(c, &s);
}

int kme_dec_keys_sync(struct kme_client *c, const char *master_sae, const struct kme_dec_req *rq,
                      const struct kme_retry *retry, struct kme_keys *out, struct kme_error *err)
{
	out->n = 0;
	out->k = NULL;
	struct sync_ctx s = {false, err, NULL, out};
	if (kme_dec_keys_async(c, master_sae, rq, retry, sync_keys, &s, err) != 0)
		return -1;
	return run(c, &s);
}
