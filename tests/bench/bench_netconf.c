/*
 * bench_netconf.c - NETCONF client timings on a live server (make bench, via
 * tests/bench/netconf.sh): connect+authenticate+hello, and one MACsec change
 * (lock, edit-config, commit, unlock, get-config read-back) in an open
 * session. Prints p50/p90/min/max in milliseconds. Not a test.
 *
 * usage: nc-bench HOST PORT USER KNOWN_HOSTS KEY_FILE RUNS [base10]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nc_push.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
	printf("%-44s runs %3d  p50 %8.2f ms  p90 %8.2f ms  min %8.2f  max %8.2f\n", what, n,
	       v[n / 2], v[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1], v[0], v[n - 1]);
}

int main(int argc, char **argv)
{
	if (argc < 7) {
		fprintf(stderr, "usage: %s HOST PORT USER KNOWN_HOSTS KEY_FILE RUNS [base10]\n",
		        argv[0]);
		return 2;
	}
	struct nc_config c;
	nc_config_defaults(&c);
	c.host = argv[1];
	c.port = (unsigned)atoi(argv[2]);
	c.user = argv[3];
	c.known_hosts = argv[4];
	c.key_file = argv[5];
	int runs = atoi(argv[6]);
	c.base10_only = argc > 7 && strcmp(argv[7], "base10") == 0;
	if (runs < 1 || runs > 10000)
		return 2;
	double *t = calloc((size_t)runs, sizeof *t);
	if (t == NULL)
		return 1;
	struct nc_error e;
	char buf[1024];
	const char *fr = c.base10_only ? "base:1.0" : "base:1.1";
	for (int i = 0; i < runs; i++) {
		struct nc_session *s;
		double t0 = now_ms();
		if (nc_connect(&c, &s, &e) != NC_OK) {
			fprintf(stderr, "%s\n", nc_error_format(&e, buf, sizeof buf));
			return 1;
		}
		t[i] = now_ms() - t0;
		nc_close(s);
	}
	char label[96];
	snprintf(label, sizeof label, "qkdlink connect+auth+hello (%s)", fr);
	report(label, t, runs);

	struct nc_session *s;
	if (nc_connect(&c, &s, &e) != NC_OK) {
		fprintf(stderr, "%s\n", nc_error_format(&e, buf, sizeof buf));
		return 1;
	}
	static const char *caks[2] = {
	    "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"};
	struct nc_push_opts po = {NC_CFG_NS_NONE, false, 0, NULL};
	for (int i = 0; i < runs; i++) {
		struct nc_macsec_ca ca = {
		    "BENCH",
		    "gcm-aes-xpn-256",
		    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		    caks[i & 1],
		    "et-0/0/1",
		    false,
		    NULL,
		    0};
		double t0 = now_ms();
		if (nc_push_ca(s, &ca, &po, &e) != NC_OK) {
			fprintf(stderr, "%s\n", nc_error_format(&e, buf, sizeof buf));
			return 1;
		}
		t[i] = now_ms() - t0;
	}
	nc_close(s);
	snprintf(label, sizeof label, "qkdlink lock+edit+commit+unlock+read (%s)", fr);
	report(label, t, runs);
	free(t);
	return 0;
}
