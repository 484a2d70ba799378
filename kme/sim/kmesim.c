/*
 * kmesim.c - qkdlink-kmesim: ETSI GS QKD 014 v1.1.1 KMEs for tests and labs.
 *
 * One process serves several KMEs, each on its own address with its own
 * server certificate, sharing one key store: a master's enc_keys at KME-A and
 * its slave's dec_keys at KME-B return the same key. HTTP is libevent's evhttp
 * over bufferevent_openssl; the SAE ID is the client certificate's CN. A plain
 * HTTP admin listener on loopback switches fault injection at run time.
 * Requests are logged, with key_IDs but never key values.
 * See docs/man/qkdlink-kmesim.1 and docs/kme.md.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define ID_MAX 128
#define SLAVES_MAX 9 /* the slave in the path + up to 8 additional */
#define BODY_MAX 65536

struct faults {
	long delay_ms;
	long relay_ms; /* keys reach the other KMEs only this long after enc_keys */
	bool hang;
	long fail503; /* next N API requests */
	bool html, empty, truncate, wrong_len, fewer, reorder, nulls, conn_close;
	bool wrong_cert, try_later, nonv4, ext_optional_strict, text_type;
	int tls; /* 0 both, 12 or 13 only */
};

struct sim;

struct kme {
	struct sim *sim;
	char id[ID_MAX + 1];
	char listen[64];
	SSL_CTX *ctx, *ctx_wrong;
	struct evhttp *http;
	int port;
	struct faults
	    f; /* this KME's own switches (admin /set?kme=ID&...), added to the global ones */
};

struct sae {
	char id[ID_MAX + 1];
	struct kme *kme;
};

struct key {
	char id[37];
	uint8_t *bytes;
	size_t len;
	char master[ID_MAX + 1];
	struct kme *origin; /* where enc_keys made it */
	double ready_at;    /* monotonic seconds: usable at other KMEs from then */
	char slaves[SLAVES_MAX][ID_MAX + 1];
	bool fetched[SLAVES_MAX];
	int nslaves;
};

struct sim {
	struct event_base *base;
	struct kme *kmes;
	size_t nkmes;
	struct sae *saes;
	size_t nsaes;
	struct key *keys;
	size_t nkeys, capkeys;
	long key_size, min_key_size, max_key_size, max_key_per_request, max_key_count,
	    max_sae_id_count, key_rate;
	long pool_initial;
	long *pools;       /* nsaes x nsaes: keys the (master, slave) pair can still get */
	struct faults f;   /* switches of every KME */
	struct faults req; /* those in force for the request being handled (global + its KME's) */
	struct evhttp *admin;
	char admin_listen[64];
	int admin_port;
	FILE *log;
	struct event *refill, *sigint, *sigterm;
	struct pending *pending; /* delayed replies */
	unsigned long connections;
};

struct pending {
	struct pending *next;
	struct sim *sim;
	struct evhttp_connection *conn;
	struct evhttp_request *req;
	int code;
	char *body;
	size_t len;
	const char *ctype;
	struct event *timer;
};

static void logf_(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct sim *s, const char *fmt, ...)
{
	char ts[32];
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct tm tm;
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof ts, "%H:%M:%S", &tm);
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* URIs and key_IDs come from clients: one printable line per entry */
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	fprintf(s->log, "%s.%03ld %s\n", ts, now.tv_nsec / 1000000, line);
	fflush(s->log);
}

/* ---- replies ---- */

static void pending_free(struct pending *p)
{
	struct pending **pp = &p->sim->pending;
	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (*pp)
		*pp = p->next;
	OPENSSL_cleanse(p->body, p->len);
	free(p->body);
	if (p->timer)
		event_free(p->timer);
	free(p);
}

/* The client went away before a delayed reply: evhttp frees the request. */
static void on_conn_close(struct evhttp_connection *conn, void *arg)
{
	struct sim *s = arg;
	struct pending *p = s->pending, *next;
	for (; p; p = next) {
		next = p->next;
		if (p->conn == conn)
			pending_free(p);
	}
}

static void send_now(struct pending *p)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(p->req);
	evhttp_add_header(h, "Content-Type", p->ctype);
	struct evbuffer *b = evbuffer_new();
	if (b)
		evbuffer_add(b, p->body, p->len);
	const char *reason = p->code == 200   ? "OK"
	                     : p->code == 400 ? "Bad Request"
	                     : p->code == 401 ? "Unauthorized"
	                     : p->code == 404 ? "Not Found"
	                     : p->code == 405 ? "Method Not Allowed"
	                     : p->code == 503 ? "Service Unavailable"
	                                      : "Internal Server Error";
	evhttp_send_reply(p->req, p->code, reason, b);
	if (b)
		evbuffer_free(b);
	pending_free(p);
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	send_now(arg);
}

/* Sends (or delays, or drops, as the faults say) a reply; takes body. */
static void reply_raw(struct sim *s, struct evhttp_request *req, int code, const char *ctype,
                      char *body, size_t len)
{
	if (s->req.conn_close)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	if (s->req.hang) {
		OPENSSL_cleanse(body, len);
		free(body);
		return; /* never answered; evhttp frees it when the client goes */
	}
	struct pending *p = calloc(1, sizeof *p);
	if (p == NULL) {
		OPENSSL_cleanse(body, len);
		free(body);
		evhttp_send_error(req, 500, NULL);
		return;
	}
	p->req = req;
	p->code = code;
	p->body = body;
	p->len = len;
	p->ctype = s->req.text_type && code == 200 ? "text/plain" : ctype;
	p->sim = s;
	p->next = s->pending;
	s->pending = p;
	if (s->req.delay_ms > 0) {
		p->conn = evhttp_request_get_connection(req);
		p->timer = evtimer_new(s->base, on_delay, p);
		struct timeval tv = {s->req.delay_ms / 1000, (s->req.delay_ms % 1000) * 1000};
		if (p->conn && p->timer && evtimer_add(p->timer, &tv) == 0) {
			evhttp_connection_set_closecb(p->conn, on_conn_close, s);
			return;
		}
	}
	send_now(p);
}

static void reply_json(struct sim *s, struct evhttp_request *req, int code, json_t *j)
{
	char *t = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (t == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	reply_raw(s, req, code, "application/json", t, strlen(t));
}

static int reply_err(struct sim *s, struct evhttp_request *req, int code, json_t *details,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int reply_err(struct sim *s, struct evhttp_request *req, int code, json_t *details,
                     const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_t *j = json_pack("{ss}", "message", msg);
	if (j && details)
		json_object_set_new(j, "details", details);
	else
		json_decref(details);
	reply_json(s, req, code, j);
	return code;
}

/* The switches in force at KME k: the global ones plus k's own (either set
 * turns a switch on; the larger delay wins; k's TLS restriction first). */
static struct faults effective(const struct faults *g, const struct faults *k)
{
	struct faults e = *g;
	e.delay_ms = k->delay_ms > e.delay_ms ? k->delay_ms : e.delay_ms;
	e.relay_ms = k->relay_ms > e.relay_ms ? k->relay_ms : e.relay_ms;
	e.fail503 = g->fail503 + k->fail503;
	e.hang |= k->hang;
	e.html |= k->html;
	e.empty |= k->empty;
	e.truncate |= k->truncate;
	e.wrong_len |= k->wrong_len;
	e.fewer |= k->fewer;
	e.reorder |= k->reorder;
	e.nulls |= k->nulls;
	e.conn_close |= k->conn_close;
	e.wrong_cert |= k->wrong_cert;
	e.try_later |= k->try_later;
	e.nonv4 |= k->nonv4;
	e.ext_optional_strict |= k->ext_optional_strict;
	e.text_type |= k->text_type;
	if (k->tls)
		e.tls = k->tls;
	return e;
}

/* ---- key store ---- */

static double mono(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void uuid(struct sim *s, char out[37])
{
	uint8_t b[16];
	if (RAND_bytes(b, sizeof b) != 1)
		memset(b, 0x5a, sizeof b);
	b[6] = (uint8_t)((b[6] & 0x0f) | (s->req.nonv4 ? 0x10 : 0x40));
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
}

static struct key *find_key(struct sim *s, const char *id)
{
	for (size_t i = 0; i < s->nkeys; i++)
		if (strcmp(s->keys[i].id, id) == 0)
			return &s->keys[i];
	return NULL;
}

static void drop_key(struct sim *s, struct key *k)
{
	OPENSSL_cleanse(k->bytes, k->len);
	free(k->bytes);
	size_t i = (size_t)(k - s->keys);
	s->keys[i] = s->keys[--s->nkeys];
}

static struct sae *find_sae(struct sim *s, const char *id)
{
	for (size_t i = 0; i < s->nsaes; i++)
		if (strcmp(s->saes[i].id, id) == 0)
			return &s->saes[i];
	return NULL;
}

/* The key pool of the ordered pair (master, slave): each pair of SAEs has its
 * own, as stored_key_count is per pair (ETSI GS QKD 014 §6.1). */
static long *pool_of(struct sim *s, const struct sae *master, const struct sae *slave)
{
	return &s->pools[(size_t)(master - s->saes) * s->nsaes + (size_t)(slave - s->saes)];
}

/* The smallest pool of any pair (the admin view), or 0 without pairs. */
static long pool_min(const struct sim *s)
{
	long m = -1;
	for (size_t i = 0; i < s->nsaes; i++)
		for (size_t k = 0; k < s->nsaes; k++)
			if (i != k && (m < 0 || s->pools[i * s->nsaes + k] < m))
				m = s->pools[i * s->nsaes + k];
	return m < 0 ? 0 : m;
}

/* Sets every pair's pool to v, capped at max_key_count. */
static void pool_set_all(struct sim *s, long v)
{
	for (size_t i = 0; i < s->nsaes * s->nsaes; i++)
		s->pools[i] = v > s->max_key_count ? s->max_key_count : v;
}

static char *b64(const uint8_t *p, size_t n)
{
	char *o = malloc(4 * ((n + 2) / 3) + 1);
	if (o)
		EVP_EncodeBlock((unsigned char *)o, p, (int)n);
	return o;
}

/* The key container reply, with the body faults applied. */
static int reply_keys(struct sim *s, struct evhttp_request *req, struct key **ks, size_t n)
{
	if (s->req.html) {
		const char *h = "<!doctype html>\n<html><title>500 Internal Server Error</title>"
		                "<h1>Internal Server Error</h1></html>\n";
		char *t = strdup(h);
		if (t == NULL) {
			evhttp_send_error(req, 500, NULL);
			return 500;
		}
		reply_raw(s, req, 500, "text/html; charset=utf-8", t, strlen(h));
		return 500;
	}
	if (s->req.empty) {
		char *t = calloc(1, 1);
		if (t == NULL) {
			evhttp_send_error(req, 500, NULL);
			return 500;
		}
		reply_raw(s, req, 200, "application/json", t, 0);
		return 200;
	}
	json_t *arr = json_array();
	size_t m = s->req.fewer && n > 0 ? n - 1 : n;
	for (size_t i = 0; i < m; i++) {
		struct key *k = ks[s->req.reorder ? n - 1 - i : i];
		size_t len = s->req.wrong_len && k->len > 1 ? k->len - 1 : k->len;
		char *t = b64(k->bytes, len);
		json_t *e = json_pack("{ss ss}", "key_ID", k->id, "key", t ? t : "");
		if (t) {
			OPENSSL_cleanse(t, strlen(t));
			free(t);
		}
		if (s->req.nulls) {
			json_object_set_new(e, "key_ID_extension", json_null());
			json_object_set_new(e, "key_extension", json_null());
			json_object_set_new(e, "vendor_x_member", json_string("ignored"));
		}
		json_array_append_new(arr, e);
	}
	json_t *j = json_pack("{so}", "keys", arr);
	if (s->req.nulls) {
		json_object_set_new(j, "key_container_extension", json_null());
		json_object_set_new(j, "easy_kme_certificate_extension", json_pack("{si}", "v", 1));
	}
	char *t = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (t == NULL) {
		evhttp_send_error(req, 500, NULL);
		return 500;
	}
	size_t len = strlen(t);
	if (s->req.truncate)
		len /= 2;
	reply_raw(s, req, 200, "application/json", t, len);
	return 200;
}

/* ---- API ---- */

static char *peer_cn(struct evhttp_request *req, char *cn, size_t cap)
{
	cn[0] = 0;
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
	/* replies go out as several TLS records: without this, Nagle holds the
	 * last one until the client's delayed ACK (40 ms on Linux) */
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	X509 *x = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
	if (x == NULL)
		return NULL;
	int l = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, (int)cap);
	X509_free(x);
	return l > 0 && (size_t)l < cap && strlen(cn) == (size_t)l ? cn : NULL;
}

static bool int_param(json_t *v, long *out)
{
	if (!json_is_integer(v))
		return false;
	*out = (long)json_integer_value(v);
	return true;
}

static int do_status(struct sim *s, struct kme *k, struct evhttp_request *req, struct sae *me,
                     struct sae *slave)
{
	json_t *j = json_pack(
	    "{ss ss ss ss si si si si si si si}", "source_KME_ID", k->id, "target_KME_ID",
	    slave->kme->id, "master_SAE_ID", me->id, "slave_SAE_ID", slave->id, "key_size",
	    (json_int_t)s->key_size, "stored_key_count", (json_int_t)*pool_of(s, me, slave),
	    "max_key_count", (json_int_t)s->max_key_count, "max_key_per_request",
	    (json_int_t)s->max_key_per_request, "max_key_size", (json_int_t)s->max_key_size,
	    "min_key_size", (json_int_t)s->min_key_size, "max_SAE_ID_count",
	    (json_int_t)s->max_sae_id_count);
	if (s->req.nulls) {
		json_object_set_new(j, "status_extension", json_null());
		json_object_set_new(j, "vendor_x_member", json_true());
	}
	reply_json(s, req, 200, j);
	return 200;
}

static int do_enc(struct sim *s, struct kme *kme, struct evhttp_request *req, struct sae *me,
                  struct sae *slave, json_t *rq, char *logids, size_t logcap)
{
	long number = 1, size = s->key_size;
	json_t *v;
	if ((v = json_object_get(rq, "number")) && !int_param(v, &number))
		return reply_err(s, req, 400, NULL, "number shall be an integer");
	if ((v = json_object_get(rq, "size")) && !int_param(v, &size))
		return reply_err(s, req, 400, NULL, "size shall be an integer");
	if (number < 1 || number > s->max_key_per_request)
		return reply_err(s, req, 400, NULL, "number shall be between 1 and %ld",
		                 s->max_key_per_request);
	if (size % 8 != 0)
		return reply_err(s, req, 400, NULL, "size shall be a multiple of 8");
	if (size < s->min_key_size || size > s->max_key_size)
		return reply_err(s, req, 400, NULL, "size shall be between %ld and %ld",
		                 s->min_key_size, s->max_key_size);
	const char *slaves[SLAVES_MAX] = {slave->id};
	int nslaves = 1;
	json_t *add = json_object_get(rq, "additional_slave_SAE_IDs");
	if (add && !json_is_null(add)) {
		if (!json_is_array(add))
			return reply_err(s, req, 400, NULL,
			                 "additional_slave_SAE_IDs shall be an array of strings");
		if ((long)json_array_size(add) > s->max_sae_id_count ||
		    json_array_size(add) > SLAVES_MAX - 1)
			return reply_err(
			    s, req, 400, NULL,
			    "additional_slave_SAE_IDs: more than max_SAE_ID_count (%ld)",
			    s->max_sae_id_count);
		size_t i;
		json_array_foreach(add, i, v)
		{
			const char *id = json_string_value(v);
			if (id == NULL || find_sae(s, id) == NULL)
				return reply_err(s, req, 400, NULL,
				                 "additional slave SAE ID %zu is unknown", i);
			for (int p = 0; p < nslaves; p++)
				if (strcmp(slaves[p], id) == 0)
					return reply_err(s, req, 400, NULL,
					                 "additional slave SAE ID %s repeated", id);
			if (strcmp(id, me->id) == 0)
				return reply_err(s, req, 400, NULL,
				                 "the master cannot be its own slave");
			slaves[nslaves++] = id;
		}
	}
	json_t *ext = json_object_get(rq, "extension_mandatory");
	if (ext && !json_is_null(ext)) {
		if (!json_is_array(ext))
			return reply_err(s, req, 400, NULL,
			                 "extension_mandatory shall be an array");
		json_t *det = json_array();
		size_t i;
		json_array_foreach(ext, i, v)
		{
			if (!json_is_object(v)) {
				json_decref(det);
				return reply_err(s, req, 400, NULL,
				                 "extension_mandatory[%zu] shall be an object", i);
			}
			const char *name;
			json_t *val;
			json_object_foreach(v, name, val)
			{
				char m[200];
				snprintf(m, sizeof m, "%s is not supported", name);
				json_array_append_new(
				    det, json_pack("{ss}", "extension_mandatory_unsupported", m));
			}
		}
		if (json_array_size(det) > 0)
			return reply_err(s, req, 400, det,
			                 "not all extension_mandatory parameters are supported");
		json_decref(det);
	}
	json_t *opt = json_object_get(rq, "extension_optional");
	if (s->req.ext_optional_strict && json_is_array(opt) && json_array_size(opt) > 0)
		return reply_err(s, req, 400, NULL,
		                 "not all extension_optional request options handled");
	/* every listed slave's pair must have the keys (multicast draws from each) */
	struct sae *slave_sae[SLAVES_MAX];
	long avail = -1;
	for (int p = 0; p < nslaves; p++) {
		slave_sae[p] = find_sae(s, slaves[p]);
		long have = *pool_of(s, me, slave_sae[p]);
		if (avail < 0 || have < avail)
			avail = have;
	}
	if (avail < number) {
		if (s->req.try_later)
			return reply_err(
			    s, req, 400, NULL,
			    "Not enough keys available for this request. Try again later.");
		return reply_err(s, req, 503, NULL, "not enough keys in the pool (%ld)", avail);
	}
	struct key *made[256];
	if (number > 256)
		return reply_err(s, req, 400, NULL, "number shall be at most 256");
	if (s->nkeys + (size_t)number > s->capkeys) {
		size_t cap = s->capkeys ? s->capkeys * 2 : 256;
		while (cap < s->nkeys + (size_t)number)
			cap *= 2;
		struct key *nk = realloc(s->keys, cap * sizeof *nk);
		if (nk == NULL)
			return reply_err(s, req, 503, NULL, "out of memory");
		s->keys = nk;
		s->capkeys = cap;
	}
	size_t first = s->nkeys;
	for (long i = 0; i < number; i++) {
		struct key *k = &s->keys[s->nkeys];
		memset(k, 0, sizeof *k);
		k->len = (size_t)size / 8;
		k->bytes = malloc(k->len);
		if (k->bytes == NULL || RAND_bytes(k->bytes, (int)k->len) != 1) {
			free(k->bytes);
			while (s->nkeys > first)
				drop_key(s, &s->keys[s->nkeys - 1]);
			return reply_err(s, req, 503, NULL, "key generation failed");
		}
		uuid(s, k->id);
		snprintf(k->master, sizeof k->master, "%s", me->id);
		k->origin = kme;
		k->ready_at = mono() + (double)s->req.relay_ms / 1000.0;
		for (int p = 0; p < nslaves; p++)
			snprintf(k->slaves[p], sizeof k->slaves[p], "%s", slaves[p]);
		k->nslaves = nslaves;
		s->nkeys++;
	}
	for (int p = 0; p < nslaves; p++)
		*pool_of(s, me, slave_sae[p]) -= number;
	size_t o = 0;
	for (long i = 0; i < number; i++) {
		made[i] = &s->keys[first + (size_t)i];
		if (o + 40 < logcap)
			o += (size_t)snprintf(logids + o, logcap - o, " %s", made[i]->id);
	}
	return reply_keys(s, req, made, (size_t)number);
}

static int do_dec(struct sim *s, struct kme *kme, struct evhttp_request *req, struct sae *me,
                  const char *master, const char *const *ids, size_t n, char *logids, size_t logcap)
{
	if (n == 0)
		return reply_err(s, req, 400, NULL, "key_IDs shall hold at least one key_ID");
	if (n > 256)
		return reply_err(s, req, 400, NULL, "too many key_IDs");
	struct key *ks[256];
	int slot[256];
	size_t o = 0;
	for (size_t i = 0; i < n; i++)
		if (o + 40 < logcap)
			o += (size_t)snprintf(logids + o, logcap - o, " %s", ids[i]);
	for (size_t i = 0; i < n; i++) {
		struct key *k = find_key(s, ids[i]);
		if (k == NULL || (k->origin != kme && mono() < k->ready_at))
			return reply_err(s, req, 400, NULL,
			                 "one or more keys specified are not found on KME");
		if (strcmp(k->master, master) != 0)
			return reply_err(s, req, 401, NULL,
			                 "SAE %s is not the master of one or more keys specified",
			                 master);
		for (size_t j = 0; j < i; j++)
			if (ks[j] == k)
				return reply_err(s, req, 400, NULL, "key_ID %s repeated", ids[i]);
		slot[i] = -1;
		for (int p = 0; p < k->nslaves; p++)
			if (strcmp(k->slaves[p], me->id) == 0)
				slot[i] = p;
		if (slot[i] < 0)
			return reply_err(s, req, 401, NULL,
			                 "SAE %s is not a slave of one or more keys specified",
			                 me->id);
		if (k->fetched[slot[i]])
			return reply_err(s, req, 400, NULL,
			                 "one or more keys specified are not found on KME");
		ks[i] = k;
	}
	int code = reply_keys(s, req, ks, n);
	/* delete on delivery: mark, and drop keys every slave has fetched. Indices
	 * shift on drop, so drop by ID after marking. */
	char gone[256][37];
	size_t ngone = 0;
	for (size_t i = 0; i < n; i++) {
		ks[i]->fetched[slot[i]] = true;
		bool all = true;
		for (int p = 0; p < ks[i]->nslaves; p++)
			all &= ks[i]->fetched[p];
		if (all)
			memcpy(gone[ngone++], ks[i]->id, 37);
	}
	for (size_t i = 0; i < ngone; i++) {
		struct key *k = find_key(s, gone[i]);
		if (k)
			drop_key(s, k);
	}
	return code;
}

static void api(struct evhttp_request *req, void *arg)
{
	struct kme *k = arg;
	struct sim *s = k->sim;
	char cn[ID_MAX + 2];
	char logids[400] = "";
	const char *uri = evhttp_request_get_uri(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *method = cmd == EVHTTP_REQ_GET    ? "GET"
	                     : cmd == EVHTTP_REQ_POST ? "POST"
	                                              : "other";
	int code = 0;
	char path_sae[ID_MAX * 3 + 1];
	char endpoint[16];
	struct sae *me = NULL;
	json_t *rq = NULL;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	const char *query = u ? evhttp_uri_get_query(u) : NULL;
	char *sae_dec = NULL;

	s->req = effective(&s->f, &k->f);
	if (peer_cn(req, cn, sizeof cn) == NULL) {
		code = reply_err(s, req, 401, NULL, "no usable client certificate CN");
		goto log;
	}
	me = find_sae(s, cn);
	if (me == NULL || me->kme != k) {
		code =
		    reply_err(s, req, 401, NULL, "SAE %s is not registered at KME %s", cn, k->id);
		goto log;
	}
	int consumed = 0;
	if (path == NULL ||
	    sscanf(path, "/api/v1/keys/%384[^/]/%15[a-z_]%n", path_sae, endpoint, &consumed) != 2 ||
	    path[consumed] != 0) {
		code = reply_err(s, req, 404, NULL, "no such resource");
		goto log;
	}
	sae_dec = evhttp_uridecode(path_sae, 0, NULL);
	bool is_status = strcmp(endpoint, "status") == 0,
	     is_enc = strcmp(endpoint, "enc_keys") == 0, is_dec = strcmp(endpoint, "dec_keys") == 0;
	if (!is_status && !is_enc && !is_dec) {
		code = reply_err(s, req, 404, NULL, "no such resource");
		goto log;
	}
	if (cmd != EVHTTP_REQ_GET && (is_status || cmd != EVHTTP_REQ_POST)) {
		code = reply_err(s, req, 405, NULL, "method not allowed");
		goto log;
	}
	if (s->f.fail503 > 0 || k->f.fail503 > 0) {
		if (s->f.fail503 > 0)
			s->f.fail503--;
		else
			k->f.fail503--;
		code = reply_err(s, req, 503, NULL, "injected fault: service unavailable");
		goto log;
	}
	struct sae *other = sae_dec ? find_sae(s, sae_dec) : NULL;
	if (other == NULL) {
		code = reply_err(s, req, 400, NULL, "SAE ID in the path is unknown");
		goto log;
	}
	if (other == me) {
		code = reply_err(s, req, 400, NULL, "SAE ID in the path is the caller's own");
		goto log;
	}
	/* the request body (POST) or query (GET) */
	if (cmd == EVHTTP_REQ_POST) {
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		size_t len = evbuffer_get_length(in);
		if (len == 0) {
			rq = json_object();
		} else {
			unsigned char *p = evbuffer_pullup(in, -1);
			rq = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, NULL);
			if (!json_is_object(rq)) {
				code = reply_err(s, req, 400, NULL,
				                 "request body is not a JSON object");
				goto log;
			}
		}
	} else {
		rq = json_object();
		struct evkeyvalq q;
		TAILQ_INIT(&q);
		if (query && evhttp_parse_query_str(query, &q) != 0) {
			code = reply_err(s, req, 400, NULL, "bad query string");
			goto log;
		}
		struct evkeyval *kv;
		TAILQ_FOREACH(kv, &q, next)
		{
			if (is_enc &&
			    (strcmp(kv->key, "number") == 0 || strcmp(kv->key, "size") == 0)) {
				char *end;
				errno = 0;
				long x = strtol(kv->value, &end, 10);
				if (errno || *end || end == kv->value || x < INT_MIN ||
				    x > INT_MAX) {
					code = reply_err(s, req, 400, NULL,
					                 "%s shall be an integer", kv->key);
					evhttp_clear_headers(&q);
					goto log;
				}
				json_object_set_new(rq, kv->key, json_integer(x));
			} else if (is_dec && strcmp(kv->key, "key_ID") == 0) {
				if (json_object_get(rq, "key_IDs")) {
					evhttp_clear_headers(&q);
					code = reply_err(s, req, 400, NULL,
					                 "GET takes one key_ID; use POST");
					goto log;
				}
				json_object_set_new(rq, "key_IDs",
				                    json_pack("[{ss}]", "key_ID", kv->value));
			}
		}
		evhttp_clear_headers(&q);
	}
	if (is_status) {
		code = do_status(s, k, req, me, other);
	} else if (is_enc) {
		code = do_enc(s, k, req, me, other, rq, logids, sizeof logids);
	} else {
		json_t *arr = json_object_get(rq, "key_IDs");
		const char *ids[256];
		size_t n = 0, i;
		json_t *e;
		if (!json_is_array(arr) || json_array_size(arr) > 256) {
			code =
			    reply_err(s, req, 400, NULL, "key_IDs shall be an array (at most 256)");
			goto log;
		}
		json_array_foreach(arr, i, e)
		{
			const char *id = json_string_value(json_object_get(e, "key_ID"));
			if (id == NULL) {
				code =
				    reply_err(s, req, 400, NULL, "key_IDs[%zu].key_ID missing", i);
				goto log;
			}
			ids[n++] = id;
		}
		code = do_dec(s, k, req, me, sae_dec, ids, n, logids, sizeof logids);
	}
log:
	logf_(s, "%s %s %s %s -> %d%s%s%s", k->id, cn[0] ? cn : "-", method, uri ? uri : "?", code,
	      logids[0] ? " key_IDs" : "", logids, s->req.hang ? " (hang)" : "");
	json_decref(rq);
	free(sae_dec);
}

/* ---- TLS ---- */

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
	struct kme *k = arg;
	struct sim *s = k->sim;
	struct faults f = effective(&s->f, &k->f);
	SSL *ssl = SSL_new(f.wrong_cert && k->ctx_wrong ? k->ctx_wrong : k->ctx);
	if (ssl == NULL)
		return NULL;
	s->connections++;
	if (f.tls == 12)
		SSL_set_max_proto_version(ssl, TLS1_2_VERSION);
	else if (f.tls == 13)
		SSL_set_min_proto_version(ssl, TLS1_3_VERSION);
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                      BEV_OPT_CLOSE_ON_FREE);
}

static SSL_CTX *server_ctx(const char *ca, const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		fprintf(stderr, "qkdlink-kmesim: TLS files %s / %s / %s: ", cert, key, ca);
		ERR_print_errors_fp(stderr);
		SSL_CTX_free(ctx);
		return NULL;
	}
	STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
	if (names)
		SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"kmesim", 6);
	return ctx;
}

/* ---- admin ---- */

/* The switches of f as a JSON object. */
static json_t *faults_obj(const struct faults *f)
{
	json_t *j = json_pack(
	    "{si sb si sb sb sb sb sb sb sb sb sb sb sb sb si}", "delay_ms",
	    (json_int_t)f->delay_ms, "hang", f->hang, "fail503", (json_int_t)f->fail503, "html",
	    f->html, "empty", f->empty, "truncate", f->truncate, "wrong_len", f->wrong_len, "fewer",
	    f->fewer, "reorder", f->reorder, "nulls", f->nulls, "conn_close", f->conn_close,
	    "wrong_cert", f->wrong_cert, "try_later", f->try_later, "nonv4", f->nonv4,
	    "ext_optional_strict", f->ext_optional_strict, "tls", f->tls);
	if (j) {
		json_object_set_new(j, "text_type", json_boolean(f->text_type));
		json_object_set_new(j, "relay_ms", json_integer((json_int_t)f->relay_ms));
	}
	return j;
}

/* GET /faults: the global switches at the top level (as before per-KME
 * switches existed), the pool, and "kmes": each KME's own switches. */
static void faults_json(struct sim *s, struct evhttp_request *req)
{
	json_t *j = faults_obj(&s->f);
	json_t *per = json_object();
	if (j && per) {
		json_object_set_new(j, "pool", json_integer((json_int_t)pool_min(s)));
		json_object_set_new(j, "stored_keys", json_integer((json_int_t)s->nkeys));
		json_object_set_new(j, "connections", json_integer((json_int_t)s->connections));
		for (size_t i = 0; i < s->nkmes; i++)
			json_object_set_new(per, s->kmes[i].id, faults_obj(&s->kmes[i].f));
		json_object_set_new(j, "kmes", per);
		per = NULL;
	}
	json_decref(per);
	char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	struct evbuffer *b = evbuffer_new();
	if (t && b)
		evbuffer_add_printf(b, "%s\n", t);
	free(t);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	evhttp_send_reply(req, 200, "OK", b);
	if (b)
		evbuffer_free(b);
}

/* Sets switch name in f (pool: the simulator's, whatever f is). */
static int set_fault(struct sim *s, struct faults *f, const char *name, const char *value)
{
	char *end;
	errno = 0;
	long v = strtol(value, &end, 10);
	if (errno || *end || end == value || v < 0 || v > INT_MAX)
		return -1;
	struct {
		const char *n;
		bool *b;
	} bools[] = {
	    {"hang", &f->hang},
	    {"html", &f->html},
	    {"empty", &f->empty},
	    {"truncate", &f->truncate},
	    {"wrong_len", &f->wrong_len},
	    {"fewer", &f->fewer},
	    {"reorder", &f->reorder},
	    {"nulls", &f->nulls},
	    {"conn_close", &f->conn_close},
	    {"wrong_cert", &f->wrong_cert},
	    {"try_later", &f->try_later},
	    {"nonv4", &f->nonv4},
	    {"ext_optional_strict", &f->ext_optional_strict},
	    {"text_type", &f->text_type},
	};
	for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++)
		if (strcmp(name, bools[i].n) == 0) {
			*bools[i].b = v != 0;
			return 0;
		}
	if (strcmp(name, "delay_ms") == 0)
		f->delay_ms = v;
	else if (strcmp(name, "relay_ms") == 0)
		f->relay_ms = v;
	else if (strcmp(name, "fail503") == 0)
		f->fail503 = v;
	else if (strcmp(name, "pool") == 0)
		pool_set_all(s, v);
	else if (strcmp(name, "tls") == 0 && (v == 0 || v == 12 || v == 13))
		f->tls = (int)v;
	else
		return -1;
	return 0;
}

static struct kme *find_kme(struct sim *s, const char *id)
{
	for (size_t i = 0; i < s->nkmes; i++)
		if (strcmp(s->kmes[i].id, id) == 0)
			return &s->kmes[i];
	return NULL;
}

/* GET /set?NAME=VALUE...: every KME's switches; with kme=ID (anywhere in the
 * query) only that KME's. GET /reset clears all, GET /faults shows them. */
static void admin(struct evhttp_request *req, void *arg)
{
	struct sim *s = arg;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : "";
	const char *query = u ? evhttp_uri_get_query(u) : NULL;
	if (path && strcmp(path, "/reset") == 0) {
		memset(&s->f, 0, sizeof s->f);
		for (size_t i = 0; i < s->nkmes; i++)
			memset(&s->kmes[i].f, 0, sizeof s->kmes[i].f);
		logf_(s, "admin reset");
		faults_json(s, req);
		return;
	}
	if (path && strcmp(path, "/set") == 0 && query) {
		struct evkeyvalq q;
		TAILQ_INIT(&q);
		if (evhttp_parse_query_str(query, &q) != 0) {
			evhttp_send_error(req, 400, "bad query");
			return;
		}
		struct faults *target = &s->f;
		const char *scope = "";
		struct evkeyval *kv;
		TAILQ_FOREACH(kv, &q, next)
		{
			if (strcmp(kv->key, "kme") != 0)
				continue;
			struct kme *k = find_kme(s, kv->value);
			if (k == NULL || target != &s->f) {
				evhttp_clear_headers(&q);
				evhttp_send_error(req, 400, "unknown KME or kme= given twice");
				return;
			}
			target = &k->f;
			scope = k->id;
		}
		TAILQ_FOREACH(kv, &q, next)
		{
			if (strcmp(kv->key, "kme") == 0)
				continue;
			if (set_fault(s, target, kv->key, kv->value) != 0) {
				evhttp_clear_headers(&q);
				evhttp_send_error(req, 400, "unknown fault or bad value");
				return;
			}
			logf_(s, "admin set %s=%s%s%s", kv->key, kv->value, scope[0] ? " at " : "",
			      scope);
		}
		evhttp_clear_headers(&q);
		faults_json(s, req);
		return;
	}
	if (path && strcmp(path, "/faults") == 0) {
		faults_json(s, req);
		return;
	}
	evhttp_send_error(req, 404, "GET /faults, /set?[kme=ID&]NAME=VALUE..., /reset");
}

/* ---- setup ---- */

static int bind_http(struct evhttp *h, const char *listen, int *port)
{
	char host[64];
	int p = 0;
	const char *colon = strrchr(listen, ':');
	if (colon == NULL || (size_t)(colon - listen) >= sizeof host)
		return -1;
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = 0;
	p = atoi(colon + 1);
	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(h, host, (ev_uint16_t)p);
	if (bs == NULL)
		return -1;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	evutil_socket_t fd = evhttp_bound_socket_get_fd(bs);
	/* accepted sockets inherit it on Linux: handshake flights and replies are
	 * several TLS records, which Nagle would hold for the peer's delayed ACK */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return -1;
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                       : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

static const char *jstr(json_t *o, const char *n)
{
	return json_string_value(json_object_get(o, n));
}

static long jint(json_t *o, const char *n, long def)
{
	json_t *v = json_object_get(o, n);
	return json_is_integer(v) ? (long)json_integer_value(v) : def;
}

static int load_config(struct sim *s, const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL) {
		fprintf(stderr, "qkdlink-kmesim: %s:%d: %s\n", path, je.line, je.text);
		return -1;
	}
	int rc = -1;
	const char *ca = jstr(j, "ca");
	json_t *kmes = json_object_get(j, "kmes"), *saes = json_object_get(j, "saes");
	if (ca == NULL || !json_is_array(kmes) || !json_is_array(saes) ||
	    json_array_size(kmes) == 0) {
		fprintf(stderr, "qkdlink-kmesim: %s: needs \"ca\", \"kmes\" and \"saes\"\n", path);
		goto out;
	}
	s->key_size = jint(j, "key_size", 256);
	s->min_key_size = jint(j, "min_key_size", 64);
	s->max_key_size = jint(j, "max_key_size", 8192);
	s->max_key_per_request = jint(j, "max_key_per_request", 128);
	s->max_key_count = jint(j, "max_key_count", 100000);
	s->max_sae_id_count = jint(j, "max_SAE_ID_count", 4);
	s->key_rate = jint(j, "key_rate", 0);
	s->pool_initial = jint(j, "initial_keys", s->max_key_count);
	if (s->key_size % 8 || s->min_key_size % 8 || s->max_key_size % 8 || s->min_key_size < 8 ||
	    s->max_key_size > 65536 || s->min_key_size > s->max_key_size ||
	    s->max_key_per_request < 1 || s->max_key_per_request > 256 || s->max_sae_id_count < 0 ||
	    s->max_sae_id_count > SLAVES_MAX - 1 || s->key_rate < 0 || s->pool_initial < 0) {
		fprintf(stderr,
		        "qkdlink-kmesim: %s: key sizes must be multiples of 8 with "
		        "min <= max, max_key_per_request 1..256, max_SAE_ID_count 0..8\n",
		        path);
		goto out;
	}
	snprintf(s->admin_listen, sizeof s->admin_listen, "%s",
	         jstr(j, "admin") ? jstr(j, "admin") : "127.0.0.1:0");
	s->nkmes = json_array_size(kmes);
	s->kmes = calloc(s->nkmes, sizeof *s->kmes);
	s->nsaes = json_array_size(saes);
	s->saes = calloc(s->nsaes ? s->nsaes : 1, sizeof *s->saes);
	if (s->kmes == NULL || s->saes == NULL)
		goto out;
	size_t i;
	json_t *e;
	json_array_foreach(kmes, i, e)
	{
		struct kme *k = &s->kmes[i];
		const char *id = jstr(e, "id"), *cert = jstr(e, "cert"), *key = jstr(e, "key");
		if (id == NULL || cert == NULL || key == NULL || strlen(id) > ID_MAX) {
			fprintf(stderr, "qkdlink-kmesim: kmes[%zu] needs id, cert, key\n", i);
			goto out;
		}
		k->sim = s;
		snprintf(k->id, sizeof k->id, "%s", id);
		snprintf(k->listen, sizeof k->listen, "%s",
		         jstr(e, "listen") ? jstr(e, "listen") : "127.0.0.1:0");
		if ((k->ctx = server_ctx(ca, cert, key)) == NULL)
			goto out;
		if (jstr(e, "wrong_cert") && jstr(e, "wrong_key") &&
		    (k->ctx_wrong = server_ctx(ca, jstr(e, "wrong_cert"), jstr(e, "wrong_key"))) ==
		        NULL)
			goto out;
	}
	json_array_foreach(saes, i, e)
	{
		const char *id = jstr(e, "id"), *kid = jstr(e, "kme");
		if (id == NULL || kid == NULL || strlen(id) > ID_MAX) {
			fprintf(stderr, "qkdlink-kmesim: saes[%zu] needs id and kme\n", i);
			goto out;
		}
		snprintf(s->saes[i].id, sizeof s->saes[i].id, "%s", id);
		for (size_t m = 0; m < s->nkmes; m++)
			if (strcmp(s->kmes[m].id, kid) == 0)
				s->saes[i].kme = &s->kmes[m];
		if (s->saes[i].kme == NULL) {
			fprintf(stderr, "qkdlink-kmesim: saes[%zu]: no KME %s\n", i, kid);
			goto out;
		}
	}
	s->pools = calloc(s->nsaes * s->nsaes, sizeof *s->pools);
	if (s->pools == NULL)
		goto out;
	pool_set_all(s, s->pool_initial);
	rc = 0;
out:
	json_decref(j);
	return rc;
}

static void on_refill(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct sim *s = arg;
	/* 10 ticks a second; rounds so that small rates still add keys */
	static const long ticks = 10;
	long add = s->key_rate / ticks + (s->key_rate % ticks ? 1 : 0);
	for (size_t i = 0; i < s->nsaes * s->nsaes; i++)
		s->pools[i] =
		    s->pools[i] + add > s->max_key_count ? s->max_key_count : s->pools[i] + add;
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopexit(arg, NULL);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: qkdlink-kmesim -c CONFIG.json [-p PORTS_FILE] [-l LOG_FILE]\n"
	           "  ETSI GS QKD 014 KME simulator; see qkdlink-kmesim(1).\n");
}

int main(int argc, char **argv)
{
	const char *config = NULL, *ports = NULL, *logpath = NULL;
	int c;
	while ((c = getopt(argc, argv, "c:p:l:h")) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'p':
			ports = optarg;
			break;
		case 'l':
			logpath = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (config == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sim s;
	memset(&s, 0, sizeof s);
	s.log = stderr;
	int rc = 1;
	if (logpath && (s.log = fopen(logpath, "a")) == NULL) {
		fprintf(stderr, "qkdlink-kmesim: %s: %s\n", logpath, strerror(errno));
		return 1;
	}
	if (load_config(&s, config) != 0)
		goto out;
	if ((s.base = event_base_new()) == NULL)
		goto out;
	for (size_t i = 0; i < s.nkmes; i++) {
		struct kme *k = &s.kmes[i];
		k->http = evhttp_new(s.base);
		if (k->http == NULL)
			goto out;
		evhttp_set_bevcb(k->http, make_bev, k);
		evhttp_set_gencb(k->http, api, k);
		evhttp_set_allowed_methods(k->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
		                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
		                                        EVHTTP_REQ_HEAD | EVHTTP_REQ_PATCH);
		evhttp_set_max_body_size(k->http, BODY_MAX);
		evhttp_set_max_headers_size(k->http, 16384);
		evhttp_set_timeout(k->http, 120);
		if (bind_http(k->http, k->listen, &k->port) != 0) {
			fprintf(stderr, "qkdlink-kmesim: KME %s: cannot listen on %s\n", k->id,
			        k->listen);
			goto out;
		}
	}
	s.admin = evhttp_new(s.base);
	if (s.admin == NULL)
		goto out;
	evhttp_set_gencb(s.admin, admin, &s);
	if (bind_http(s.admin, s.admin_listen, &s.admin_port) != 0) {
		fprintf(stderr, "qkdlink-kmesim: admin: cannot listen on %s\n", s.admin_listen);
		goto out;
	}
	char line[256];
	if (ports) {
		char tmp[PATH_MAX];
		snprintf(tmp, sizeof tmp, "%s.tmp", ports);
		FILE *f = fopen(tmp, "w");
		if (f == NULL) {
			fprintf(stderr, "qkdlink-kmesim: %s: %s\n", tmp, strerror(errno));
			goto out;
		}
		for (size_t i = 0; i < s.nkmes; i++)
			fprintf(f, "%s %d\n", s.kmes[i].id, s.kmes[i].port);
		fprintf(f, "admin %d\n", s.admin_port);
		if (fclose(f) != 0 || rename(tmp, ports) != 0)
			goto out;
	}
	for (size_t i = 0; i < s.nkmes; i++) {
		snprintf(line, sizeof line, "KME %s listening on %s (port %d)", s.kmes[i].id,
		         s.kmes[i].listen, s.kmes[i].port);
		logf_(&s, "%s", line);
	}
	logf_(&s, "admin listening on %s (port %d)", s.admin_listen, s.admin_port);
	s.sigint = evsignal_new(s.base, SIGINT, on_signal, s.base);
	s.sigterm = evsignal_new(s.base, SIGTERM, on_signal, s.base);
	if (s.sigint == NULL || s.sigterm == NULL || event_add(s.sigint, NULL) ||
	    event_add(s.sigterm, NULL))
		goto out;
	if (s.key_rate > 0) {
		s.refill = event_new(s.base, -1, EV_PERSIST, on_refill, &s);
		struct timeval tv = {0, 100000};
		if (s.refill == NULL || event_add(s.refill, &tv) != 0)
			goto out;
	}
	event_base_dispatch(s.base);
	logf_(&s, "exiting");
	rc = 0;
out:
	for (size_t i = 0; i < s.nkmes; i++) {
		if (s.kmes[i].http)
			evhttp_free(s.kmes[i].http);
		SSL_CTX_free(s.kmes[i].ctx);
		SSL_CTX_free(s.kmes[i].ctx_wrong);
	}
	if (s.admin)
		evhttp_free(s.admin);
	if (s.refill)
		event_free(s.refill);
	if (s.sigint)
		event_free(s.sigint);
	if (s.sigterm)
		event_free(s.sigterm);
	while (s.pending)
		pending_free(s.pending);
	while (s.nkeys)
		drop_key(&s, &s.keys[s.nkeys - 1]);
	free(s.keys);
	free(s.kmes);
	free(s.saes);
	free(s.pools);
	if (s.base)
		event_base_free(s.base);
	if (s.log != stderr)
		fclose(s.log);
	return rc;
}
