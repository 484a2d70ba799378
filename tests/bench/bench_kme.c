/*
 * bench_kme.c - ETSI 014 client on loopback against qkdlink-kmesim:
 * enc_keys (KME-A) + dec_keys (KME-B) pair latency, p50/p99, with connection
 * reuse and with a new TLS connection per request; then enc_keys requests per
 * second with 16 in flight on one event loop. Not a test: prints figures.
 * Usage: bench-kme PKI_DIR PORTS_FILE [PAIRS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "kme.h"

static char pki[256];
static int port_a, port_b;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static struct kme_client *client(struct event_base *base, const char *sae, int port,
                                 const char *kme, bool no_reuse)
{
	char url[64], ca[300], cert[300], key[300];
	snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
	snprintf(ca, sizeof ca, "%s/ca.pem", pki);
	snprintf(cert, sizeof cert, "%s/sae-%s.pem", pki, sae);
	snprintf(key, sizeof key, "%s/sae-%s.key", pki, sae);
	struct kme_config cfg = {.url = url,
	                         .ca_file = ca,
	                         .cert_file = cert,
	                         .key_file = key,
	                         .kme_id = kme,
	                         .no_reuse = no_reuse};
	struct kme_error err;
	struct kme_client *c = kme_client_new(base, &cfg, &err);
	if (c == NULL) {
		fprintf(stderr, "bench-kme: %s\n", err.text);
		exit(1);
	}
	return c;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i];
}

static void pairs(int n, bool no_reuse, double *p50, double *p99)
{
	struct kme_client *a = client(NULL, "SAE-A", port_a, "KME-A", no_reuse);
	struct kme_client *b = client(NULL, "SAE-B", port_b, "KME-B", no_reuse);
	double *lat = calloc((size_t)n, sizeof *lat);
	if (lat == NULL)
		exit(1);
	struct kme_error err;
	struct kme_enc_req rq = {.number = 1, .size = 256};
	for (int i = -5; i < n; i++) { /* 5 warm-up pairs */
		struct kme_keys m, s;
		double t0 = now();
		if (kme_enc_keys_sync(a, "SAE-B", &rq, NULL, &m, &err) != 0) {
			fprintf(stderr, "bench-kme: enc: %s\n", err.text);
			exit(1);
		}
		const char *ids[1] = {m.k[0].id};
		struct kme_dec_req drq = {.ids = ids, .n = 1, .size = 256};
		if (kme_dec_keys_sync(b, "SAE-A", &drq, NULL, &s, &err) != 0) {
			fprintf(stderr, "bench-kme: dec: %s\n", err.text);
			exit(1);
		}
		double t1 = now();
		if (i >= 0)
			lat[i] = (t1 - t0) * 1e3;
		kme_keys_free(&m);
		kme_keys_free(&s);
	}
	qsort(lat, (size_t)n, sizeof *lat, cmp);
	*p50 = pct(lat, (size_t)n, 0.50);
	*p99 = pct(lat, (size_t)n, 0.99);
	free(lat);
	kme_client_free(a);
	kme_client_free(b);
}

struct flight {
	struct kme_client *c;
	int started, done, total, failed;
};

static void on_keys(void *arg, const struct kme_error *err, struct kme_keys *keys);

static void launch(struct flight *f)
{
	struct kme_enc_req rq = {.number = 1, .size = 256};
	struct kme_error err;
	if (kme_enc_keys_async(f->c, "SAE-B", &rq, NULL, on_keys, f, &err) != 0) {
		fprintf(stderr, "bench-kme: %s\n", err.text);
		exit(1);
	}
	f->started++;
}

static void on_keys(void *arg, const struct kme_error *err, struct kme_keys *keys)
{
	(void)keys;
	struct flight *f = arg;
	f->done++;
	if (err->code != KME_OK)
		f->failed++;
	if (f->started < f->total)
		launch(f);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench-kme PKI_DIR PORTS_FILE [PAIRS]\n");
		return 2;
	}
	snprintf(pki, sizeof pki, "%s", argv[1]);
	int n = argc > 3 ? atoi(argv[3]) : 1000;
	if (n < 10)
		n = 10;
	FILE *f = fopen(argv[2], "r");
	char name[64];
	int port;
	while (f && fscanf(f, "%63s %d", name, &port) == 2) {
		if (strcmp(name, "KME-A") == 0)
			port_a = port;
		if (strcmp(name, "KME-B") == 0)
			port_b = port;
	}
	if (f)
		fclose(f);
	if (!port_a || !port_b || kme_global_init() != 0) {
		fprintf(stderr, "bench-kme: no ports, or init failed\n");
		return 1;
	}
	double r50, r99, n50, n99;
	pairs(n, false, &r50, &r99);
	pairs(n / 4, true, &n50, &n99);
	printf("enc_keys+dec_keys pair, connection reuse:       p50 %.3f ms  p99 %.3f ms  (%d "
	       "pairs)\n",
	       r50, r99, n);
	printf("enc_keys+dec_keys pair, new connection per req: p50 %.3f ms  p99 %.3f ms  (%d "
	       "pairs)\n",
	       n50, n99, n / 4);
	printf("reuse speed-up at p50: %.1fx\n", n50 / r50);

	struct event_base *base = event_base_new();
	struct flight fl = {client(base, "SAE-A", port_a, "KME-A", false), 0, 0, 4 * n, 0};
	for (int i = 0; i < 16; i++)
		launch(&fl);
	double t0 = now();
	while (fl.done < fl.total)
		event_base_loop(base, EVLOOP_ONCE);
	double t1 = now();
	printf("enc_keys, 16 in flight, one client: %.0f requests/s (%d requests, %d failed)\n",
	       fl.total / (t1 - t0), fl.total, fl.failed);
	kme_client_free(fl.c);
	event_base_free(base);
	kme_global_cleanup();
	return 0;
}
