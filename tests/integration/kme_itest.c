/*
 * kme_itest.c - the ETSI 014 client against qkdlink-kmesim over real mutual
 * TLS on loopback (issue 3 §4). Run by test_kme.sh, under ASan+UBSan.
 *
 * Usage: kme-itest PKI_DIR PORTS_FILE SIM_LOG
 * Switches the simulator's faults through its admin port, and reads its
 * request log to prove that refused handshakes sent no request.
 * Prints TAP lines; exits 1 if any test failed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "kme.h"

static const char *pki, *logpath;
static int port_a, port_b, port_admin;
static int ntest, nfail;

static void check(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%sok %d - ", cond ? "" : "not ", ++ntest);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	if (!cond)
		nfail++;
}

static size_t sink(char *p, size_t s, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return s * n;
}

static long admin_json_int(const char *query, const char *field)
{
	char url[256], *buf = NULL;
	size_t len = 0;
	snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", port_admin, query);
	FILE *mem = open_memstream(&buf, &len);
	CURL *e = curl_easy_init();
	long code = 0;
	if (e && mem) {
		curl_easy_setopt(e, CURLOPT_URL, url);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, mem);
		curl_easy_setopt(e, CURLOPT_TIMEOUT, 5L);
		if (curl_easy_perform(e) == CURLE_OK)
			curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	}
	curl_easy_cleanup(e);
	if (mem)
		fclose(mem);
	long v = -1;
	if (code == 200 && field) {
		json_t *j = json_loads(buf, 0, NULL);
		v = (long)json_integer_value(json_object_get(j, field));
		json_decref(j);
	} else if (code == 200) {
		v = 0;
	}
	free(buf);
	(void)sink;
	return v;
}

static void fault(const char *set)
{
	char q[128];
	snprintf(q, sizeof q, "set?%s", set);
	if (admin_json_int(q, NULL) != 0) {
		printf("Bail out! admin %s failed\n", set);
		exit(1);
	}
}

static void reset(void)
{
	if (admin_json_int("reset", NULL) != 0) {
		printf("Bail out! admin reset failed\n");
		exit(1);
	}
}

/* lines of the simulator log that are API requests */
static int requests_logged(void)
{
	FILE *f = fopen(logpath, "r");
	int n = 0;
	char line[1024];
	while (f && fgets(line, sizeof line, f))
		if (strstr(line, "/api/v1/"))
			n++;
	if (f)
		fclose(f);
	return n;
}

static char path_a[8][256];
static const char *P(int slot, const char *name)
{
	snprintf(path_a[slot], sizeof path_a[slot], "%s/%s", pki, name);
	return path_a[slot];
}

struct opts {
	const char *sae;    /* client cert name: sae-<sae>.pem */
	const char *kme;    /* "A" or "B" */
	const char *kme_id; /* expected identity, default KME-<kme> */
	const char *ca;     /* default ca.pem */
	const char *pin;
	long timeout_ms;
	size_t max_body;
	bool tls13_only, no_reuse;
	int port; /* override */
};

static struct kme_client *client(struct opts o, struct kme_error *err)
{
	char url[64], cert[64], key[64], id[64];
	snprintf(url, sizeof url, "https://127.0.0.1:%d",
	         o.port ? o.port : (strcmp(o.kme, "A") == 0 ? port_a : port_b));
	snprintf(cert, sizeof cert, "sae-%s.pem", o.sae);
	snprintf(key, sizeof key, "sae-%s.key", o.sae);
	snprintf(id, sizeof id, "KME-%s", o.kme);
	struct kme_config cfg = {
	    .url = url,
	    .ca_file = P(0, o.ca ? o.ca : "ca.pem"),
	    .cert_file = P(1, cert),
	    .key_file = P(2, key),
	    .kme_id = o.kme_id ? o.kme_id : id,
	    .pin = o.pin,
	    .connect_timeout_ms = 3000,
	    .timeout_ms = o.timeout_ms ? o.timeout_ms : 5000,
	    .max_body = o.max_body,
	    .tls13_only = o.tls13_only,
	    .no_reuse = o.no_reuse,
	};
	return kme_client_new(NULL, &cfg, err);
}

static struct kme_client *must(struct opts o)
{
	struct kme_error err;
	struct kme_client *c = client(o, &err);
	if (c == NULL) {
		printf("Bail out! client %s@%s: %s\n", o.sae, o.kme, err.text);
		exit(1);
	}
	return c;
}

static int enc(struct kme_client *c, const char *slave, unsigned number, unsigned size,
               struct kme_keys *ks, struct kme_error *err)
{
	struct kme_enc_req rq = {.number = number, .size = size};
	return kme_enc_keys_sync(c, slave, &rq, NULL, ks, err);
}

static int dec(struct kme_client *c, const char *master, const char *const *ids, size_t n,
               unsigned size, const struct kme_retry *retry, struct kme_keys *ks,
               struct kme_error *err)
{
	struct kme_dec_req rq = {.ids = ids, .n = n, .size = size};
	return kme_dec_keys_sync(c, master, &rq, retry, ks, err);
}

static bool same_keys(const struct kme_keys *a, const struct kme_keys *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->k[i].id, b->k[i].id) != 0 || a->k[i].len != b->k[i].len ||
		    memcmp(a->k[i].key, b->k[i].key, a->k[i].len) != 0)
			return false;
	return true;
}

/* sha256//base64 of the SubjectPublicKeyInfo of a PEM certificate */
static void pin_of(const char *pem, char *out, size_t cap)
{
	FILE *f = fopen(pem, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	unsigned char *der = NULL;
	int len = x ? i2d_PUBKEY(X509_get0_pubkey(x), &der) : -1;
	unsigned char md[32], b64[64];
	out[0] = 0;
	if (len > 0) {
		SHA256(der, (size_t)len, md);
		EVP_EncodeBlock(b64, md, 32);
		snprintf(out, cap, "sha256//%s", b64);
	}
	OPENSSL_free(der);
	X509_free(x);
}

/* a loopback port nobody listens on */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sa;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
		return 1;
	close(fd);
	return ntohs(sa.sin_port);
}

/* A TLS failure mode: fails with want, and the simulator logged no request. */
static void no_request(struct opts o, enum kme_err want, const char *what)
{
	int before = requests_logged();
	struct kme_error err;
	struct kme_client *c = client(o, &err);
	struct kme_keys ks = {0, NULL};
	int rc = c ? enc(c, "SAE-B", 1, 0, &ks, &err) : -1;
	check(rc != 0 && err.code == want, "%s: %s (%s)", what, kme_err_name(want),
	      rc ? err.text : "succeeded");
	/* the simulator writes its log line before the next admin reply */
	admin_json_int("faults", NULL);
	check(requests_logged() == before, "%s: the KME logged no request", what);
	kme_keys_free(&ks);
	kme_client_free(c);
}

static void test_pair_and_multicast(void)
{
	struct kme_client *a = must((struct opts){.sae = "SAE-A", .kme = "A"});
	struct kme_client *b = must((struct opts){.sae = "SAE-B", .kme = "B"});
	struct kme_client *cc = must((struct opts){.sae = "SAE-C", .kme = "B"});
	struct kme_error err;
	struct kme_status st;
	int rc = kme_status_sync(a, "SAE-B", &st, &err);
	check(rc == 0 && strcmp(st.source_kme_id, "KME-A") == 0 &&
	          strcmp(st.target_kme_id, "KME-B") == 0 &&
	          strcmp(st.master_sae_id, "SAE-A") == 0 && strcmp(st.slave_sae_id, "SAE-B") == 0 &&
	          st.key_size == 256 && st.max_key_per_request == 16 && st.max_sae_id_count == 2,
	      "status: all 11 fields (%s)", rc ? err.text : "ok");

	struct kme_keys m = {0, NULL}, s = {0, NULL};
	rc = enc(a, "SAE-B", 3, 512, &m, &err);
	check(rc == 0 && m.n == 3 && m.k[0].len == 64, "enc_keys at KME-A: 3 keys of 512 bits (%s)",
	      rc ? err.text : "ok");
	if (rc == 0) {
		/* ask in another order: keys come back matched by key_ID */
		const char *ids[3] = {m.k[2].id, m.k[0].id, m.k[1].id};
		rc = dec(b, "SAE-A", ids, 3, 512, NULL, &s, &err);
		bool same = rc == 0 && s.n == 3;
		for (size_t i = 0; same && i < 3; i++) {
			size_t j = i == 0 ? 2 : i - 1;
			same = strcmp(s.k[i].id, m.k[j].id) == 0 && s.k[i].len == 64 &&
			       memcmp(s.k[i].key, m.k[j].key, 64) == 0;
		}
		check(same,
		      "dec_keys at KME-B returns the identical bytes, in the asked order (%s)",
		      rc ? err.text : "ok");
		kme_keys_free(&s);
	}
	kme_keys_free(&m);

	/* GET forms */
	struct kme_enc_req grq = {.number = 2, .size = 128, .use_get = true};
	rc = kme_enc_keys_sync(a, "SAE-B", &grq, NULL, &m, &err);
	check(rc == 0 && m.n == 2 && m.k[0].len == 16, "GET enc_keys?number=2&size=128 (%s)",
	      rc ? err.text : "ok");
	if (rc == 0) {
		const char *ids[1] = {m.k[1].id};
		struct kme_dec_req drq = {.ids = ids, .n = 1, .size = 128, .use_get = true};
		rc = kme_dec_keys_sync(b, "SAE-A", &drq, NULL, &s, &err);
		check(rc == 0 && s.n == 1 && memcmp(s.k[0].key, m.k[1].key, 16) == 0,
		      "GET dec_keys?key_ID= returns the same key (%s)", rc ? err.text : "ok");
		kme_keys_free(&s);
	}
	kme_keys_free(&m);

	/* defaults: {} gives one key of the status key_size */
	struct kme_enc_req def = {0};
	rc = kme_enc_keys_sync(a, "SAE-B", &def, NULL, &m, &err);
	check(rc == 0 && m.n == 1 && m.k[0].len == 32, "enc_keys {} gives 1 key of key_size (%s)",
	      rc ? err.text : "ok");
	kme_keys_free(&m);

	/* multicast */
	const char *add[1] = {"SAE-C"};
	struct kme_enc_req mrq = {.number = 2, .additional = add, .nadditional = 1};
	rc = kme_enc_keys_sync(a, "SAE-B", &mrq, NULL, &m, &err);
	check(rc == 0 && m.n == 2, "multicast enc_keys to SAE-B + SAE-C (%s)",
	      rc ? err.text : "ok");
	if (rc == 0) {
		const char *ids[2] = {m.k[0].id, m.k[1].id};
		struct kme_keys s2 = {0, NULL};
		int r1 = dec(b, "SAE-A", ids, 2, 0, NULL, &s, &err);
		int r2 = dec(cc, "SAE-A", ids, 2, 0, NULL, &s2, &err);
		check(r1 == 0 && r2 == 0 && same_keys(&m, &s) && same_keys(&m, &s2),
		      "multicast: both slaves get the identical keys (%s)",
		      r1 || r2 ? err.text : "ok");
		kme_keys_free(&s);
		kme_keys_free(&s2);
	}
	kme_keys_free(&m);

	/* limits from the last status, checked before sending */
	int before = requests_logged();
	rc = enc(a, "SAE-B", 17, 0, &m, &err);
	check(rc != 0 && err.code == KME_E_LIMIT, "number 17 > max_key_per_request: limit (%s)",
	      err.text);
	const char *add3[3] = {"SAE-C", "SAE-D", "SAE-E"};
	struct kme_enc_req big = {.additional = add3, .nadditional = 3};
	rc = kme_enc_keys_sync(a, "SAE-B", &big, NULL, &m, &err);
	check(rc != 0 && err.code == KME_E_LIMIT, "3 additional slaves > max_SAE_ID_count: limit");
	rc = enc(a, "SAE-B", 1, 100, &m, &err);
	check(rc != 0 && err.code == KME_E_ARG, "size 100 (not a multiple of 8): refused locally");
	admin_json_int("faults", NULL);
	check(requests_logged() == before, "refused requests were not sent");

	/* 400 with message and details kept */
	struct kme_enc_req ext = {.extension_mandatory = "[{\"abc_route_type\":\"direct\"}]"};
	rc = kme_enc_keys_sync(a, "SAE-B", &ext, NULL, &m, &err);
	check(rc != 0 && err.code == KME_E_HTTP_400 && err.http_status == 400 &&
	          strcmp(err.message, "not all extension_mandatory parameters are supported") ==
	              0 &&
	          strstr(err.details, "abc_route_type is not supported") != NULL,
	      "unsupported extension_mandatory: http-400 with message and details (%s)", err.text);

	/* 401: SAE-C is not a slave of this key */
	rc = enc(a, "SAE-B", 1, 0, &m, &err);
	if (rc == 0) {
		const char *ids[1] = {m.k[0].id};
		rc = dec(cc, "SAE-A", ids, 1, 0, NULL, &s, &err);
		check(rc != 0 && err.code == KME_E_HTTP_401 && err.message[0],
		      "dec_keys by an SAE that is not the slave: http-401 (%s)", err.text);
		/* fetched twice: key lost */
		rc = dec(b, "SAE-A", ids, 1, 0, NULL, &s, &err);
		check(rc == 0, "slave fetches the key (%s)", rc ? err.text : "ok");
		kme_keys_free(&s);
		struct kme_retry rt = {.attempts = 5, .backoff_ms = 10, .backoff_max_ms = 50};
		before = requests_logged();
		rc = dec(b, "SAE-A", ids, 1, 0, &rt, &s, &err);
		admin_json_int("faults", NULL);
		check(rc != 0 && err.code == KME_E_KEY_LOST && requests_logged() == before + 1,
		      "the same key fetched twice: key-lost, no not-found retries (%s)", err.text);
	}
	kme_keys_free(&m);

	/* dec_keys not found (never existed) is a plain 400, retried as asked */
	const char *ghost[1] = {"00000000-0000-4000-8000-000000000000"};
	struct kme_retry rt = {.attempts = 3, .backoff_ms = 10, .backoff_max_ms = 20};
	before = requests_logged();
	rc = dec(b, "SAE-A", ghost, 1, 0, &rt, &s, &err);
	admin_json_int("faults", NULL);
	check(rc != 0 && err.code == KME_E_HTTP_400 && requests_logged() == before + 3,
	      "unknown key_ID: http-400 not found after 3 bounded attempts (%s)", err.text);

	/* 401 for an SAE the KME does not know (cert from the CA, CN not registered) */
	struct kme_client *rogue = must((struct opts){.sae = "SAE-ROGUE", .kme = "A"});
	rc = kme_status_sync(rogue, "SAE-B", &st, &err);
	check(rc != 0 && err.code == KME_E_HTTP_401 && strstr(err.message, "SAE-ROGUE"),
	      "unregistered SAE: http-401 with the KME's JSON message (%s)", err.text);
	kme_client_free(rogue);
	kme_client_free(a);
	kme_client_free(b);
	kme_client_free(cc);
}

static void test_faults(void)
{
	/* generous timeouts, so a loaded machine never fails a test; the short
	 * ones only where a timeout is the point */
	struct kme_client *a = must((struct opts){.sae = "SAE-A", .kme = "A", .timeout_ms = 10000});
	struct kme_client *b = must((struct opts){.sae = "SAE-B", .kme = "B", .timeout_ms = 10000});
	struct kme_client *qa = must((struct opts){.sae = "SAE-A", .kme = "A", .timeout_ms = 1000});
	struct kme_client *qb = must((struct opts){.sae = "SAE-B", .kme = "B", .timeout_ms = 1000});
	struct kme_error err;
	struct kme_keys m = {0, NULL}, s = {0, NULL};
	struct kme_status st;
	int rc;

	reset();
	fault("fail503=1");
	rc = enc(a, "SAE-B", 1, 0, &m, &err);
	check(rc != 0 && err.code == KME_E_HTTP_503 && strstr(err.message, "injected"),
	      "fault fail503: http-503 (%s)", err.text);
	fault("fail503=2");
	struct kme_retry rt = {.attempts = 3, .backoff_ms = 20, .backoff_max_ms = 100};
	struct kme_enc_req one = {.number = 1};
	rc = kme_enc_keys_sync(a, "SAE-B", &one, &rt, &m, &err);
	check(rc == 0 && m.n == 1, "503 twice then success: retried with backoff (%s)",
	      rc ? err.text : "ok");
	kme_keys_free(&m);

	reset();
	fault("pool=0");
	rc = enc(a, "SAE-B", 1, 0, &m, &err);
	check(rc != 0 && err.code == KME_E_HTTP_503, "empty pool: http-503 (%s)", err.text);
	fault("try_later=1");
	int before = requests_logged();
	rc = kme_enc_keys_sync(a, "SAE-B", &one, &rt, &m, &err);
	admin_json_int("faults", NULL);
	check(rc != 0 && err.code == KME_E_HTTP_400 && requests_logged() == before + 1,
	      "NDK-style 400 'Try again later' is not retried by default (%s)", err.text);
	rt.try_later_400 = true;
	before = requests_logged();
	rc = kme_enc_keys_sync(a, "SAE-B", &one, &rt, &m, &err);
	admin_json_int("faults", NULL);
	check(rc != 0 && err.code == KME_E_HTTP_400 && requests_logged() == before + 3,
	      "opt-in: 'Try again later' retried (3 attempts)");
	fault("pool=1000");

	reset();
	fault("html=1");
	rc = enc(a, "SAE-B", 1, 0, &m, &err);
	check(rc != 0 && err.code == KME_E_HTTP && err.http_status == 500 &&
	          strstr(err.message, "text/html") && strstr(err.message, "Internal Server Error"),
	      "fault html: http-other 500 with a body excerpt (%s)", err.text);

	const struct {
		const char *set;
		const char *what;
	} parse[] = {
	    {"empty=1", "empty body"},
	    {"truncate=1", "truncated JSON"},
	    {"wrong_len=1", "wrong key length"},
	    {"fewer=1", "fewer keys than asked"},
	    {"text_type=1", "200 reply with Content-Type text/plain"},
	};
	for (size_t i = 0; i < sizeof parse / sizeof parse[0]; i++) {
		reset();
		fault(parse[i].set);
		rc = enc(a, "SAE-B", 2, 256, &m, &err);
		check(rc != 0 && err.code == KME_E_PARSE, "fault %s: parse error (%s)",
		      parse[i].what, err.text);
		kme_keys_free(&m);
	}
	reset();
	struct kme_client *small = must((struct opts){.sae = "SAE-A", .kme = "A", .max_body = 200});
	rc = enc(small, "SAE-B", 8, 256, &m, &err);
	check(rc != 0 && err.code == KME_E_PARSE && strstr(err.text, "too large"),
	      "reply over the body cap: parse error (%s)", err.text);
	kme_client_free(small);

	/* keys reordered, null extensions and vendor members, non-v4 IDs: all fine */
	fault("reorder=1&nulls=1&nonv4=1");
	rc = kme_status_sync(a, "SAE-B", &st, &err);
	check(rc == 0, "status with null status_extension and vendor members (%s)",
	      rc ? err.text : "ok");
	rc = enc(a, "SAE-B", 4, 256, &m, &err);
	check(rc == 0 && m.n == 4 && m.k[0].id[14] == '1',
	      "enc_keys with null extensions, vendor members, non-v4 key_IDs (%s)",
	      rc ? err.text : "ok");
	if (rc == 0) {
		const char *ids[4] = {m.k[0].id, m.k[1].id, m.k[2].id, m.k[3].id};
		rc = dec(b, "SAE-A", ids, 4, 256, NULL, &s, &err);
		check(rc == 0 && same_keys(&m, &s),
		      "dec_keys reply in another order: matched by key_ID (%s)",
		      rc ? err.text : "ok");
		kme_keys_free(&s);
	}
	kme_keys_free(&m);

	/* connection reuse, and Connection: close */
	reset();
	long c0 = admin_json_int("faults", "connections");
	for (int i = 0; i < 5; i++)
		kme_status_sync(a, "SAE-B", &st, &err);
	long c1 = admin_json_int("faults", "connections");
	check(c1 - c0 <= 1, "5 requests on one kept-alive connection (%ld new)", c1 - c0);
	fault("conn_close=1");
	int ok = 0;
	for (int i = 0; i < 3; i++)
		ok += kme_status_sync(a, "SAE-B", &st, &err) == 0;
	long c2 = admin_json_int("faults", "connections");
	check(ok == 3 && c2 - c1 == 2,
	      "fault conn_close: 3 requests ok; the 2nd and 3rd on new connections (%ld)", c2 - c1);

	/* timeouts: delay within, hang beyond */
	reset();
	fault("delay_ms=300");
	rc = kme_status_sync(a, "SAE-B", &st, &err);
	check(rc == 0, "fault delay 300 ms within a 10 s timeout: ok (%s)", rc ? err.text : "ok");
	fault("delay_ms=0&hang=1");
	rc = kme_status_sync(qa, "SAE-B", &st, &err);
	check(rc != 0 && err.code == KME_E_TIMEOUT, "fault hang: timeout (%s)", err.text);

	/* a dec_keys whose reply never came may have been delivered: key lost */
	reset();
	rc = enc(a, "SAE-B", 1, 0, &m, &err);
	if (rc == 0) {
		const char *ids[1] = {m.k[0].id};
		fault("delay_ms=3000");
		rc = dec(qb, "SAE-A", ids, 1, 0, NULL, &s, &err);
		check(rc != 0 && err.code == KME_E_TIMEOUT,
		      "dec_keys reply delayed past the timeout: timeout (%s)", err.text);
		reset();
		struct kme_retry r2 = {.attempts = 5, .backoff_ms = 10, .backoff_max_ms = 50};
		before = requests_logged();
		rc = dec(qb, "SAE-A", ids, 1, 0, &r2, &s, &err);
		admin_json_int("faults", NULL);
		check(rc != 0 && err.code == KME_E_KEY_LOST && requests_logged() == before + 1,
		      "asking again after that timeout: key-lost, not a not-found retry loop (%s)",
		      err.text);
	}
	kme_keys_free(&m);

	/* a key that reaches KME-B only 1.5 s after enc_keys: not found, then
	 * found by the bounded retry */
	reset();
	fault("relay_ms=1500");
	rc = enc(a, "SAE-B", 1, 0, &m, &err);
	if (rc == 0) {
		const char *ids[1] = {m.k[0].id};
		rc = dec(b, "SAE-A", ids, 1, 0, NULL, &s, &err);
		check(rc != 0 && err.code == KME_E_HTTP_400 && strstr(err.message, "not found"),
		      "key still travelling to KME-B: http-400 not found (%s)", err.text);
		struct kme_retry r3 = {.attempts = 100, .backoff_ms = 50, .backoff_max_ms = 100};
		rc = dec(b, "SAE-A", ids, 1, 0, &r3, &s, &err);
		check(rc == 0 && s.n == 1 && memcmp(s.k[0].key, m.k[0].key, s.k[0].len) == 0,
		      "bounded not-found retry gets the key once it arrives (%s)",
		      rc ? err.text : "ok");
		kme_keys_free(&s);
	}
	kme_keys_free(&m);
	reset();

	/* transport */
	struct kme_client *dead =
	    must((struct opts){.sae = "SAE-A", .kme = "A", .port = closed_port()});
	rc = kme_status_sync(dead, "SAE-B", &st, &err);
	check(rc != 0 && err.code == KME_E_TRANSPORT, "nobody listening: transport (%s)", err.text);
	kme_client_free(dead);

	/* TLS versions */
	reset();
	fault("tls=12");
	rc = kme_status_sync(a, "SAE-B", &st, &err);
	check(rc == 0, "TLS 1.2-only KME: ok (%s)", rc ? err.text : "ok");
	kme_client_free(a);
	a = NULL;
	no_request((struct opts){.sae = "SAE-A", .kme = "A", .tls13_only = true}, KME_E_TLS,
	           "TLS 1.2-only KME, client requiring 1.3");
	fault("tls=13");
	a = must((struct opts){.sae = "SAE-A", .kme = "A"});
	rc = kme_status_sync(a, "SAE-B", &st, &err);
	check(rc == 0, "TLS 1.3-only KME: ok (%s)", rc ? err.text : "ok");
	reset();

	/* identity and certificate failures: before any request */
	fault("wrong_cert=1");
	no_request((struct opts){.sae = "SAE-A", .kme = "A"}, KME_E_IDENTITY,
	           "fault wrong_cert (valid cert of KME-WRONG)");
	reset();
	no_request((struct opts){.sae = "SAE-A", .kme = "A", .kme_id = "KME-B"}, KME_E_IDENTITY,
	           "expecting KME-B at KME-A");
	no_request((struct opts){.sae = "SAE-A", .kme = "A", .ca = "other-ca.pem"}, KME_E_TLS,
	           "KME CA not trusted (wrong CA file)");
	no_request((struct opts){.sae = "expired", .kme = "A"}, KME_E_TLS, "expired client cert");
	no_request((struct opts){.sae = "otherca", .kme = "A"}, KME_E_TLS,
	           "client cert from another CA");
	char pin[128];
	pin_of(P(3, "kme-KME-B.pem"), pin, sizeof pin);
	no_request((struct opts){.sae = "SAE-A", .kme = "A", .pin = pin}, KME_E_IDENTITY,
	           "public key pinned to KME-B's, talking to KME-A");
	pin_of(P(3, "kme-KME-A.pem"), pin, sizeof pin);
	struct kme_client *pinned = must((struct opts){.sae = "SAE-A", .kme = "A", .pin = pin});
	rc = kme_status_sync(pinned, "SAE-B", &st, &err);
	check(rc == 0, "right public-key pin: ok (%s)", rc ? err.text : "ok");
	kme_client_free(pinned);

	/* certificate lifetime */
	long cd = 0, ad = 0;
	rc = kme_client_cert_days(a, &cd, &ad, &err);
	check(rc == 0 && cd > 800 && ad > cd, "certificate days left: client %ld, CA %ld", cd, ad);
	long ed = 0;
	rc = kme_cert_days_left(P(3, "sae-expired.pem"), &ed, &err);
	check(rc == 0 && ed < 0, "expired certificate: %ld days left", ed);

	kme_client_free(a);
	kme_client_free(b);
	kme_client_free(qa);
	kme_client_free(qb);
}

struct async_ctx {
	int done, ok, ticks, ticks_at_done;
	char ids[64][KME_ID_MAX + 1];
	char last_err[200];
};

static void async_keys(void *arg, const struct kme_error *err, struct kme_keys *keys)
{
	struct async_ctx *a = arg;
	if (err->code == KME_OK && keys->n == 1 && a->ok < 64)
		snprintf(a->ids[a->ok++], sizeof a->ids[0], "%s", keys->k[0].id);
	else if (err->code != KME_OK)
		snprintf(a->last_err, sizeof a->last_err, "%.199s", err->text);
	a->done++;
	a->ticks_at_done = a->ticks;
}

static void async_never(void *arg, const struct kme_error *err, struct kme_keys *keys)
{
	(void)err;
	(void)keys;
	*(int *)arg = 1;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	((struct async_ctx *)arg)->ticks++;
}

/* The asynchronous API on the caller's event loop. */
static void test_async(void)
{
	reset();
	struct event_base *base = event_base_new();
	char url[64];
	snprintf(url, sizeof url, "https://127.0.0.1:%d", port_a);
	struct kme_config cfg = {.url = url,
	                         .ca_file = P(0, "ca.pem"),
	                         .cert_file = P(1, "sae-SAE-A.pem"),
	                         .key_file = P(2, "sae-SAE-A.key"),
	                         .kme_id = "KME-A",
	                         .timeout_ms = 20000};
	struct kme_error err;
	struct kme_client *c = kme_client_new(base, &cfg, &err);
	cfg.timeout_ms = 600;
	struct kme_client *quick = kme_client_new(base, &cfg, &err);
	struct async_ctx a;
	memset(&a, 0, sizeof a);
	struct kme_enc_req rq = {.number = 1};
	int submitted = 0;
	for (int i = 0; c && i < 8; i++)
		submitted += kme_enc_keys_async(c, "SAE-B", &rq, NULL, async_keys, &a, &err) == 0;
	while (a.done < submitted)
		if (event_base_loop(base, EVLOOP_ONCE) != 0)
			break;
	bool distinct = true;
	for (int i = 0; i < a.ok; i++)
		for (int j = 0; j < i; j++)
			distinct &= strcmp(a.ids[i], a.ids[j]) != 0;
	check(submitted == 8 && a.ok == 8 && distinct,
	      "8 enc_keys in flight on the caller's event loop: 8 distinct keys");

	/* a burst larger than the client's 16 transfers: the others wait in its
	 * queue, and a request's timeout (600 ms) runs only once it is sent, so
	 * 64 requests answered 250 ms late (4 rounds: 1 s) all succeed */
	fault("delay_ms=250");
	memset(&a, 0, sizeof a);
	submitted = 0;
	for (int i = 0; quick && i < 64; i++)
		submitted +=
		    kme_enc_keys_async(quick, "SAE-B", &rq, NULL, async_keys, &a, &err) == 0;
	while (a.done < submitted)
		if (event_base_loop(base, EVLOOP_ONCE) != 0)
			break;
	check(submitted == 64 && a.ok == 64,
	      "64 enc_keys at once, each 250 ms late, timeout 600 ms: %d of %d ok (%s)", a.ok,
	      submitted, a.last_err[0] ? a.last_err : "no error");
	fault("delay_ms=0");

	/* a hung KME does not stall the loop: a 20 ms timer keeps firing */
	fault("hang=1");
	memset(&a, 0, sizeof a);
	struct event *t = event_new(base, -1, EV_PERSIST, tick, &a);
	struct timeval tv = {0, 20000};
	event_add(t, &tv);
	int rc = quick ? kme_enc_keys_async(quick, "SAE-B", &rq, NULL, async_keys, &a, &err) : -1;
	while (rc == 0 && a.done < 1)
		if (event_base_loop(base, EVLOOP_ONCE) != 0)
			break;
	check(rc == 0 && a.done == 1 && a.ok == 0 && a.ticks_at_done >= 3,
	      "while the KME hangs the loop keeps running (%d timer ticks before the timeout)",
	      a.ticks_at_done);
	event_free(t);

	/* freeing the client cancels pending requests without calling back,
	 * those handed to libcurl and those still in the client's queue */
	int called = 0;
	rc = 0;
	for (int i = 0; i < 40; i++)
		rc |= kme_enc_keys_async(c, "SAE-B", &rq, NULL, async_never, &called, &err);
	event_base_loop(base, EVLOOP_NONBLOCK);
	kme_client_free(c);
	kme_client_free(quick);
	event_base_loop(base, EVLOOP_NONBLOCK);
	check(rc == 0 && called == 0,
	      "kme_client_free() cancels 40 pending requests (16 sent, 24 queued), no callback");
	event_base_free(base);
	reset();
}

static void test_config(void)
{
	struct kme_error err;
	char key[256];
	snprintf(key, sizeof key, "%s/loose.key", pki);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "cp %s/sae-SAE-A.key %s && chmod 644 %s", pki, key, key);
	int sysrc = system(cmd);
	struct kme_config cfg = {.url = "https://127.0.0.1:1",
	                         .ca_file = P(0, "ca.pem"),
	                         .cert_file = P(1, "sae-SAE-A.pem"),
	                         .key_file = key,
	                         .kme_id = "KME-A"};
	struct kme_client *c = kme_client_new(NULL, &cfg, &err);
	check(sysrc == 0 && c == NULL && err.code == KME_E_ARG && strstr(err.text, "chmod 600"),
	      "client key file mode 0644 refused (%s)", err.text);
	kme_client_free(c);
	cfg.key_file = P(2, "sae-SAE-A.key");
	cfg.url = "http://127.0.0.1:1";
	c = kme_client_new(NULL, &cfg, &err);
	check(c == NULL && err.code == KME_E_ARG, "plain http URL refused");
	kme_client_free(c);
	cfg.url = "https://127.0.0.1:1";
	cfg.kme_id = NULL;
	c = kme_client_new(NULL, &cfg, &err);
	check(c == NULL && err.code == KME_E_ARG, "no expected KME ID: refused");
	kme_client_free(c);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: kme-itest PKI_DIR PORTS_FILE SIM_LOG\n");
		return 2;
	}
	pki = argv[1];
	logpath = argv[3];
	FILE *f = fopen(argv[2], "r");
	char name[64];
	int port;
	while (f && fscanf(f, "%63s %d", name, &port) == 2) {
		if (strcmp(name, "KME-A") == 0)
			port_a = port;
		else if (strcmp(name, "KME-B") == 0)
			port_b = port;
		else if (strcmp(name, "admin") == 0)
			port_admin = port;
	}
	if (f)
		fclose(f);
	if (!port_a || !port_b || !port_admin) {
		printf("Bail out! no ports in %s\n", argv[2]);
		return 1;
	}
	if (kme_global_init() != 0) {
		printf("Bail out! kme_global_init failed\n");
		return 1;
	}
	test_config();
	test_pair_and_multicast();
	test_faults();
	test_async();
	kme_global_cleanup();
	printf("1..%d\n", ntest);
	return nfail ? 1 : 0;
}
