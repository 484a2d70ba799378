/*
 * bench_codec.c - codec throughput on one core: encode+ICV and decode+verify
 * per second for typical frames. A benchmark, not a test: it prints figures
 * (median of 5 runs) for docs/performance.md and asserts nothing.
 * Usage: bench-codec [iterations per run]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

#define RUNS 5

struct sample {
	const char *name;
	struct qkd_msg msg;
};

static const struct qkd_l2 L2 = {.dst = QKD_DST_DEFAULT, .src = {2, 0, 0, 0, 0, 0x0a}};
static const uint8_t SECRET[32] = "bench-secret-bench-secret-bench!";
static volatile unsigned sink;

static double run_encode(const struct qkd_msg *m, const struct qkd_key *k, long iters)
{
	uint8_t buf[QKD_FRAME_MAX];
	struct qkd_msg x = *m;
	double t0 = now();
	for (long i = 0; i < iters; i++) {
		x.seq = (uint32_t)i + 1;
		int n = qkd_frame_encode(&L2, &x, k, buf, sizeof buf, NULL, 0);
		sink += (unsigned)n + buf[n - 1];
	}
	return (double)iters / (now() - t0);
}

static double run_decode(const uint8_t *f, size_t n, const struct qkd_key *k, long iters,
                         int verify)
{
	struct qkd_ident id = {QKD_OUI_DEFAULT, QKD_PID_DEFAULT};
	struct qkd_decoded d;
	double t0 = now();
	for (long i = 0; i < iters; i++) {
		enum qkd_drop r = qkd_frame_decode(f, n, &id, &d);
		if (verify && r == QKD_OK)
			r = qkd_frame_verify(&d, k);
		sink += (unsigned)r;
	}
	return (double)iters / (now() - t0);
}

static double median(double *v)
{
	qsort(v, RUNS, sizeof *v, cmp_double);
	return v[RUNS / 2];
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 1000000;
	if (iters < 1000) {
		fprintf(stderr, "bench-codec: iterations must be at least 1000\n");
		return 2;
	}
	struct qkd_key k;
	char err[128];
	if (qkd_key_init(&k, SECRET, sizeof SECRET, err, sizeof err) != 0) {
		fprintf(stderr, "bench-codec: %s\n", err);
		return 1;
	}
	static const char uuid[] = "b3f5a1c2-7d4e-4f1a-9c3b-2e8d6f0a1b2c";
	struct sample s[3];
	memset(s, 0, sizeof s);
	for (int i = 0; i < 3; i++) {
		struct qkd_msg *m = &s[i].msg;
		m->oui = QKD_OUI_DEFAULT, m->pid = QKD_PID_DEFAULT;
		m->channel = 7, m->epoch = 1, m->seq = 1;
		m->sender = (struct qkd_str){"SAE-A", 5};
	}
	s[0].name = "HELLO";
	s[0].msg.type = QKD_MSG_HELLO;
	s[0].msg.u.hello = (struct qkd_hello){.role = 1, .interval = 5};
	s[1].name = "ANNOUNCE 1 key_ID";
	s[1].msg.type = QKD_MSG_ANNOUNCE;
	s[1].msg.u.announce.rotation = 1;
	s[1].msg.u.announce.nkeys = 1;
	s[1].msg.u.announce.keys[0] = (struct qkd_str){uuid, 36};
	s[2].name = "ANNOUNCE 32 key_IDs";
	s[2].msg = s[1].msg;
	s[2].msg.u.announce.nkeys = 32;
	for (int i = 0; i < 32; i++)
		s[2].msg.u.announce.keys[i] = (struct qkd_str){uuid, 36};

	printf("%-22s %6s %16s %16s %16s\n", "frame", "octets", "encode+ICV /s", "decode /s",
	       "decode+verify /s");
	for (int i = 0; i < 3; i++) {
		uint8_t f[QKD_FRAME_MAX];
		int n = qkd_frame_encode(&L2, &s[i].msg, &k, f, sizeof f, err, sizeof err);
		if (n < 0) {
			fprintf(stderr, "bench-codec: %s\n", err);
			return 1;
		}
		double e[RUNS], d[RUNS], v[RUNS];
		for (int r = 0; r < RUNS; r++) {
			e[r] = run_encode(&s[i].msg, &k, iters);
			d[r] = run_decode(f, (size_t)n, &k, iters, 0);
			v[r] = run_decode(f, (size_t)n, &k, iters, 1);
		}
		printf("%-22s %6d %16.0f %16.0f %16.0f\n", s[i].name, n, median(e), median(d),
		       median(v));
	}
	qkd_key_clear(&k);
	return 0;
}
