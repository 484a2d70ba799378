/*
 * l2_latency.c - one-way latency of qkdlink frames through the L2 port
 * (tests/bench/l2_latency.sh runs it across two network namespaces).
 *
 *   l2-latency send -i IFACE -s SECRET [-n FRAMES] [--gap-us US]
 *   l2-latency recv -i IFACE -s SECRET [-n FRAMES] [--timeout SEC] [--idle SEC]
 *
 * The PDU has no timestamp field, so the sender carries its send time in the
 * key_ID of a real ANNOUNCE: "t=" and CLOCK_MONOTONIC in nanoseconds (the same
 * clock in every network namespace). The sender reads the clock, encodes and
 * signs the frame and sends it with qkd_port_send(), one frame every --gap-us
 * on an absolute schedule. The receiver waits in poll(), drains the port,
 * runs each frame through qkd_rx_frame() (decode, ICV, replay) and reads the
 * clock after it: the figure covers encoding, signing, both kernels' paths and
 * verification. It prints one Markdown table row (with --header, the header
 * first): frames, accepted, lost, drops, percentiles in microseconds.
 * A benchmark: nothing passes or fails.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"
#include "port.h"
#include "rx.h"
#include "secret.h"

#define ERR_LEN 512
#define FRAMES_DEFAULT 10000
#define FRAMES_MAX 10000000
#define GAP_US_DEFAULT 100
#define CHANNEL 1
#define SENDER "l2-latency"
#define STAMP_PREFIX "t="

struct opts {
	bool send;
	const char *ifname;
	const char *secret;
	unsigned long frames;
	unsigned long gap_us;
	double timeout; /* recv: overall, seconds */
	double idle;    /* recv: stop this long after the last frame */
	bool header;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int usage(void)
{
	fprintf(stderr, "usage: l2-latency send -i IFACE -s SECRET [-n FRAMES] [--gap-us US]\n"
	                "       l2-latency recv -i IFACE -s SECRET [-n FRAMES] [--timeout SEC]"
	                " [--idle SEC] [--header]\n");
	return 2;
}

static int parse_ulong(const char *text, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	    {"interface", required_argument, NULL, 'i'}, {"secret", required_argument, NULL, 's'},
	    {"frames", required_argument, NULL, 'n'},    {"gap-us", required_argument, NULL, 'g'},
	    {"timeout", required_argument, NULL, 't'},   {"idle", required_argument, NULL, 'I'},
	    {"header", no_argument, NULL, 'H'},          {NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof *o);
	o->frames = FRAMES_DEFAULT;
	o->gap_us = GAP_US_DEFAULT;
	o->timeout = 60;
	o->idle = 2;
	if (argc < 2)
		return -1;
	if (strcmp(argv[1], "send") == 0)
		o->send = true;
	else if (strcmp(argv[1], "recv") != 0)
		return -1;
	unsigned long v;
	int c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "i:s:n:g:t:I:H", lo, NULL)) != -1) {
		switch (c) {
		case 'i':
			o->ifname = optarg;
			break;
		case 's':
			o->secret = optarg;
			break;
		case 'n':
			if (parse_ulong(optarg, FRAMES_MAX, &o->frames) != 0 || o->frames == 0)
				return -1;
			break;
		case 'g':
			if (parse_ulong(optarg, 1000000, &o->gap_us) != 0)
				return -1;
			break;
		case 't':
		case 'I':
			if (parse_ulong(optarg, 3600, &v) != 0 || v == 0)
				return -1;
			if (c == 't')
				o->timeout = (double)v;
			else
				o->idle = (double)v;
			break;
		case 'H':
			o->header = true;
			break;
		default:
			return -1;
		}
	}
	if (optind != argc || o->ifname == NULL || o->secret == NULL)
		return -1;
	return 0;
}

/* ---- sender ---- */

static int run_send(const struct opts *o)
{
	char err[ERR_LEN];
	struct qkd_key key;
	if (qkd_key_load(&key, o->secret, err, sizeof err) != 0) {
		fprintf(stderr, "l2-latency: %s\n", err);
		return 2;
	}
	struct qkd_port *port;
	struct qkd_port_config cfg = {.tx_ifname = o->ifname, .dst = QKD_DST_DEFAULT};
	if (qkd_port_open(&port, &cfg, err, sizeof err) != 0) {
		fprintf(stderr, "l2-latency: %s\n", err);
		qkd_key_clear(&key);
		return 2;
	}
	struct qkd_msg m;
	memset(&m, 0, sizeof m);
	m.oui = QKD_OUI_DEFAULT;
	m.pid = QKD_PID_DEFAULT;
	m.version = QKD_VERSION;
	m.type = QKD_MSG_ANNOUNCE;
	m.channel = CHANNEL;
	m.epoch = 1;
	m.sender.ptr = SENDER;
	m.sender.len = strlen(SENDER);
	m.u.announce.rotation = 1;
	m.u.announce.nkeys = 1;

	int rc = 0;
	unsigned long failed = 0;
	uint8_t pdu[QKD_PDU_MAX];
	char stamp[32];
	uint64_t start = now_ns();
	for (unsigned long i = 1; i <= o->frames; i++) {
		uint64_t t = now_ns();
		int sl = snprintf(stamp, sizeof stamp, STAMP_PREFIX "%" PRIu64, t);
		m.seq = (uint32_t)i;
		m.u.announce.keys[0].ptr = stamp;
		m.u.announce.keys[0].len = (size_t)sl;
		int n = qkd_pdu_encode(&m, &key, pdu, sizeof pdu, err, sizeof err);
		if (n < 0) {
			fprintf(stderr, "l2-latency: %s\n", err);
			rc = 2;
			break;
		}
		if (qkd_port_send(port, pdu, (size_t)n, err, sizeof err) != 0) {
			if (failed++ == 0)
				fprintf(stderr, "l2-latency: %s\n", err);
		}
		/* Absolute schedule: a late frame does not delay the next ones. */
		uint64_t next = start + (uint64_t)i * o->gap_us * 1000u;
		struct timespec ts = {.tv_sec = (time_t)(next / 1000000000u),
		                      .tv_nsec = (long)(next % 1000000000u)};
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
	}
	double secs = (double)(now_ns() - start) / 1e9;
	fprintf(stderr, "l2-latency: sent %lu frames in %.3f s, %lu failed\n", o->frames - failed,
	        secs, failed);
	qkd_port_close(port);
	qkd_key_clear(&key);
	return rc != 0 ? rc : failed > 0;
}

/* ---- receiver ---- */

struct recv_state {
	struct qkd_rx *rx;
	uint64_t *lat; /* ns, one per accepted frame */
	size_t n;
	size_t cap;
	unsigned long bad_stamp;
	uint64_t last_ns;
};

static bool on_frame(void *ctx, const struct qkd_port_frame *f)
{
	struct recv_state *s = ctx;
	struct qkd_decoded d;
	enum qkd_drop r = qkd_rx_frame(s->rx, f->data, f->len, &d);
	uint64_t t = now_ns();
	s->last_ns = t;
	if (r != QKD_OK)
		return false;
	const struct qkd_msg *m = &d.msg;
	char buf[32];
	const struct qkd_str *k = &m->u.announce.keys[0];
	size_t pl = strlen(STAMP_PREFIX);
	if (m->type != QKD_MSG_ANNOUNCE || k->len <= pl || k->len >= sizeof buf ||
	    memcmp(k->ptr, STAMP_PREFIX, pl) != 0) {
		s->bad_stamp++;
		return false;
	}
	memcpy(buf, k->ptr + pl, k->len - pl);
	buf[k->len - pl] = '\0';
	char *end;
	errno = 0;
	unsigned long long sent = strtoull(buf, &end, 10);
	if (*end != '\0' || errno != 0 || sent > t || s->n >= s->cap) {
		s->bad_stamp++;
		return false;
	}
	s->lat[s->n++] = t - sent;
	return s->n >= s->cap;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile q (0..1] of sorted v[0..n), in microseconds. */
static double pct_us(const uint64_t *v, size_t n, double q)
{
	size_t rank = (size_t)(q * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)v[rank - 1] / 1000.0;
}

static void report(const struct opts *o, struct recv_state *s, const struct qkd_port_stats *ps)
{
	uint64_t drops = 0;
	char reasons[256] = "";
	size_t off = 0;
	for (int i = 1; i < QKD_DROP_COUNT; i++) {
		if (s->rx->count[i] == 0)
			continue;
		drops += s->rx->count[i];
		int w = snprintf(reasons + off, sizeof reasons - off, "%s%s %" PRIu64,
		                 off > 0 ? ", " : " (", qkd_drop_name((enum qkd_drop)i),
		                 s->rx->count[i]);
		if (w > 0 && (size_t)w < sizeof reasons - off)
			off += (size_t)w;
	}
	if (off > 0 && off + 1 < sizeof reasons)
		strcat(reasons, ")");
	if (o->header) {
		printf(
		    "| frames | accepted | lost | drops | pcap drops | p50 µs | p90 µs | p99 µs |"
		    " max µs |\n");
		printf("|---|---|---|---|---|---|---|---|---|\n");
	}
	unsigned long lost = o->frames > s->n + drops ? o->frames - s->n - drops : 0;
	printf("| %lu | %zu | %lu | %" PRIu64 "%s | %" PRIu64 " |", o->frames, s->n, lost, drops,
	       reasons, ps->dropped);
	if (s->n == 0) {
		printf(" - | - | - | - |\n");
		return;
	}
	qsort(s->lat, s->n, sizeof s->lat[0], cmp_u64);
	printf(" %.2f | %.2f | %.2f | %.2f |\n", pct_us(s->lat, s->n, 0.50),
	       pct_us(s->lat, s->n, 0.90), pct_us(s->lat, s->n, 0.99),
	       (double)s->lat[s->n - 1] / 1000.0);
	if (s->bad_stamp > 0)
		fprintf(stderr, "l2-latency: %lu accepted frames without a usable time stamp\n",
		        s->bad_stamp);
}

static int run_recv(const struct opts *o)
{
	char err[ERR_LEN];
	struct qkd_rx rx;
	struct qkd_key key;
	struct qkd_ident ident = {.oui = QKD_OUI_DEFAULT, .pid = QKD_PID_DEFAULT};
	if (qkd_rx_init(&rx, &ident, 1, 16) != 0) {
		fprintf(stderr, "l2-latency: out of memory\n");
		return 2;
	}
	if (qkd_key_load(&key, o->secret, err, sizeof err) != 0) {
		fprintf(stderr, "l2-latency: %s\n", err);
		qkd_rx_free(&rx);
		return 2;
	}
	if (qkd_rx_add_secret(&rx, CHANNEL, 0, &key) != 0) {
		fprintf(stderr, "l2-latency: cannot add the secret\n");
		qkd_key_clear(&key);
		qkd_rx_free(&rx);
		return 2;
	}
	struct recv_state s = {.rx = &rx, .cap = o->frames};
	s.lat = calloc(o->frames, sizeof *s.lat);
	if (s.lat == NULL) {
		fprintf(stderr, "l2-latency: out of memory\n");
		qkd_rx_free(&rx);
		return 2;
	}
	struct qkd_port *port;
	struct qkd_port_config cfg = {.rx_ifname = o->ifname};
	if (qkd_port_open(&port, &cfg, err, sizeof err) != 0) {
		fprintf(stderr, "l2-latency: %s\n", err);
		free(s.lat);
		qkd_rx_free(&rx);
		return 2;
	}
	fprintf(stderr, "l2-latency: ready on %s\n", o->ifname);
	int rc = 0;
	uint64_t deadline = now_ns() + (uint64_t)(o->timeout * 1e9);
	uint64_t idle_ns = (uint64_t)(o->idle * 1e9);
	struct pollfd pfd = {.fd = qkd_port_fd(port), .events = POLLIN};
	while (s.n < s.cap) {
		uint64_t t = now_ns();
		if (t >= deadline || (s.last_ns != 0 && t - s.last_ns >= idle_ns))
			break;
		int n = poll(&pfd, 1, 100);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "l2-latency: poll: %s\n", strerror(errno));
			rc = 2;
			break;
		}
		if (n > 0 && qkd_port_drain(port, 0, on_frame, &s, err, sizeof err) < 0) {
			fprintf(stderr, "l2-latency: %s\n", err);
			rc = 2;
			break;
		}
	}
	struct qkd_port_stats ps;
	if (qkd_port_stats(port, &ps, err, sizeof err) != 0) {
		fprintf(stderr, "l2-latency: %s\n", err);
		memset(&ps, 0, sizeof ps);
	}
	report(o, &s, &ps);
	qkd_port_close(port);
	free(s.lat);
	qkd_rx_free(&rx);
	if (fflush(stdout) != 0)
		rc = 2;
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o;
	if (parse_opts(argc, argv, &o) != 0)
		return usage();
	return o.send ? run_send(&o) : run_recv(&o);
}
