/*
 * impair.c - qkdlink-impair: a link impairment relay for 0x88B7 frames
 * (issue 6 §1; docs/reliability.md, "The impairment relay").
 *
 * The test kernel has no netem, so this relay stands in for it: it takes the
 * 0x88B7 frames arriving on interface A (libpcap, immediate mode, inbound
 * only) and writes them, byte for byte, to interface B (libnet, link layer),
 * and the reverse, applying loss, duplication, reordering, delay with jitter,
 * bit corruption and a partition switch, each per direction.
 *
 * Determinism: every decision about a frame comes from a splitmix64 stream
 * seeded with (seed, direction, the frame's ordinal in its direction), drawn
 * in a fixed order whatever the settings. The same seed, settings and input
 * order give the same decisions; --trace writes them, one line per frame.
 *
 * One poll() loop: both capture descriptors, the control socket and its
 * clients, a signalfd for SIGTERM/SIGINT; frames wait in a bounded binary
 * heap ordered by due time (then arrival), so delayed frames leave in time
 * order and a full queue drops (and counts) instead of growing.
 *
 * This is the tool's main file: the only process-wide state is in main().
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <libnet.h>
#include <linux/filter.h>
#include <pcap/pcap.h>

#define PROG "qkdlink-impair"
#define SNAPLEN 2048          /* larger than any Ethernet frame we relay */
#define PCAP_BUFFER (4 << 20) /* kernel ring per interface */
#define DISPATCH_MAX 256      /* frames per pcap_dispatch, so no side starves */
#define DEFAULT_QUEUE 4096    /* frames waiting (delay, duplicates) */
#define MAX_QUEUE 1000000
#define DEFAULT_HOLD_MS 100 /* a reordered frame waits at most this for the next */
#define MAX_MS 600000       /* delay, jitter, hold: at most 10 minutes */
#define MAX_PARTITION_S 86400.0
#define MAX_CLIENTS 8
#define LINE_MAX_LEN 512
#define REPLY_MAX 4096
#define CLIENT_TIMEOUT_MS 5000
#define ETH_HDR 14
#define NDIR 2

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

#define FILTER "ether proto 0x88b7 or (vlan and ether proto 0x88b7)"
#define CAP_HINT "CAP_NET_RAW is needed (run as root or grant the capability)"

static const char usage_text[] =
    "NAME\n"
    "    qkdlink-impair - relay 0x88B7 frames between two interfaces, impaired\n"
    "\n"
    "SYNOPSIS\n"
    "    qkdlink-impair [OPTIONS] IFACE_A IFACE_B\n"
    "    qkdlink-impair -C SOCKET COMMAND [ARGS...]\n"
    "\n"
    "DESCRIPTION\n"
    "    Forwards every 0x88B7 frame (tagged or not) received on IFACE_A to\n"
    "    IFACE_B (direction ab) and from IFACE_B to IFACE_A (ba), unchanged\n"
    "    unless an impairment applies. For test labs without netem. Needs\n"
    "    CAP_NET_RAW. Frames of other Ethertypes are not forwarded.\n"
    "\n"
    "OPTIONS\n"
    "    Impairments apply to the direction(s) chosen by the last --dir\n"
    "    before them (default both); probabilities are 0..1, times in ms.\n"
    "    --dir ab|ba|both    direction of the impairment options that follow\n"
    "    --loss P            drop a frame with probability P\n"
    "    --dup P             send a frame twice with probability P\n"
    "    --reorder P         hold a frame and send it after the next one of its\n"
    "                        direction (or after --hold ms, whichever is first)\n"
    "    --delay MS          delay every frame by MS\n"
    "    --jitter MS         add a uniform -MS..+MS to the delay (frames may\n"
    "                        then overtake each other, as with netem)\n"
    "    --corrupt P         flip one random bit, at a random offset after the\n"
    "                        Ethernet header (and VLAN tags), with probability P\n"
    "    --partition on|S    drop everything, until switched off or for S seconds\n"
    "    --hold MS           reorder hold timeout (default 100)\n"
    "    --queue N           frames that may wait at once per direction (default\n"
    "                        4096); a full queue drops and counts (dropped_queue)\n"
    "    --seed N            PRNG seed (default: from the clock); printed at start\n"
    "    --trace FILE        one line per frame: direction, ordinal, length and\n"
    "                        the decisions taken\n"
    "    --control PATH      UNIX stream socket (mode 0600) for the commands below\n"
    "    -C, --client PATH   send one COMMAND to a running relay, print the reply\n"
    "    -h, --help          this text\n"
    "\n"
    "CONTROL COMMANDS (one line each; reply: one line, \"ok\", JSON or \"error: ...\")\n"
    "    set [loss=P] [dup=P] [reorder=P] [corrupt=P] [delay=MS] [jitter=MS]\n"
    "        [hold=MS] [dir=ab|ba|both]      change settings (unnamed ones stay)\n"
    "    partition on|off|SECONDS [dir=ab|ba|both]\n"
    "    reset                 no impairment, no partition, both directions\n"
    "    stats                 counters per direction, settings and seed (JSON)\n"
    "    quit                  stop the relay\n"
    "\n"
    "DETERMINISM\n"
    "    A frame's decisions depend only on the seed, its direction, its ordinal\n"
    "    in that direction and the settings in force: the same seed, settings and\n"
    "    input order give the same --trace. Timing (delay expiry, hold timeouts)\n"
    "    is not part of the decisions.\n"
    "\n"
    "EXIT STATUS\n"
    "    0 stopped by SIGTERM, SIGINT or quit (client: reply not an error);\n"
    "    1 runtime failure (e.g. no CAP_NET_RAW, no such interface);\n"
    "    2 bad arguments.\n";

enum { AB = 0, BA = 1 };
static const char *const dir_name[NDIR] = {"ab", "ba"};

struct settings {
	double loss, dup, reorder, corrupt;
	uint32_t delay_ms, jitter_ms;
	bool partition;
	uint64_t partition_until; /* CLOCK_MONOTONIC ns; 0: until switched off */
};

struct counters {
	uint64_t received;          /* frames captured in this direction */
	uint64_t forwarded;         /* frames written out, duplicates included */
	uint64_t dropped_loss;      /* --loss */
	uint64_t dropped_partition; /* arrived, or came due, during a partition */
	uint64_t dropped_queue;     /* the queue was full */
	uint64_t dropped_truncated; /* longer than the capture length */
	uint64_t duplicated;        /* extra copies queued */
	uint64_t reordered;         /* held frames sent after a later one */
	uint64_t hold_timeouts;     /* held frames sent in order: nothing came */
	uint64_t delayed;           /* frames given a delay > 0 */
	uint64_t corrupted;         /* frames with one bit flipped */
	uint64_t send_errors;       /* libnet write failures */
};

struct pkt {
	uint64_t due;   /* CLOCK_MONOTONIC ns */
	uint64_t order; /* arrival order: FIFO among equal due times */
	uint32_t len;
	int dir;
	bool reorder;
	uint8_t data[SNAPLEN];
};

struct side {
	const char *ifname;
	pcap_t *pcap;
	int fd;
	libnet_t *net;
};

struct direction {
	struct settings set;
	struct counters c;
	uint64_t ordinal;
	struct pkt *held; /* a frame waiting to be reordered */
	uint64_t held_until;
	size_t queued; /* frames of this direction in the heap: at most relay.cap */
	size_t max_queued;
};

struct client {
	int fd; /* -1: free */
	size_t len;
	char buf[LINE_MAX_LEN];
};

struct relay {
	uint64_t seed;
	uint32_t hold_ms;
	struct side side[NDIR]; /* side[AB] receives direction ab, sends ba */
	struct direction dir[NDIR];
	/* frames: a pool, a free list and a heap by (due, order) */
	struct pkt *pool;
	struct pkt **free_list;
	size_t nfree;
	struct pkt **heap;
	size_t nheap;
	size_t cap; /* per direction: a flood one way never starves the other */
	uint64_t order;
	FILE *trace;
	const char *ctl_path;
	int listen_fd;
	bool own_socket;
	struct client clients[MAX_CLIENTS];
	int sig_fd;
	bool stop;
	uint64_t t_start;
	bool logged_send_error;
};

/* ------------------------------------------------------------ helpers */

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

__attribute__((format(printf, 1, 2))) static void logmsg(const char *fmt, ...)
{
	va_list ap;
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	/* CLOCK_MONOTONIC cannot fail with a valid pointer on Linux */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ PRNG */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

static double unit(uint64_t x)
{
	return (double)(x >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
}

/* The draws for one frame, always all of them and in this order. */
struct draws {
	double loss, dup, reorder, corrupt, jitter;
	uint64_t corrupt_pos, corrupt_bit;
};

static void draw(uint64_t seed, int dir, uint64_t ordinal, struct draws *d)
{
	uint64_t s = seed ^ (0xD1B54A32D192ED03u * (2 * ordinal + (uint64_t)dir + 1));
	(void)splitmix64(&s);
	d->loss = unit(splitmix64(&s));
	d->dup = unit(splitmix64(&s));
	d->reorder = unit(splitmix64(&s));
	d->corrupt = unit(splitmix64(&s));
	d->jitter = unit(splitmix64(&s));
	d->corrupt_pos = splitmix64(&s);
	d->corrupt_bit = splitmix64(&s) & 7u;
}

/* ------------------------------------------------------------ the queue */

static bool before(const struct pkt *a, const struct pkt *b)
{
	return a->due != b->due ? a->due < b->due : a->order < b->order;
}

static void heap_push(struct relay *r, struct pkt *p)
{
	size_t i = r->nheap++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (!before(p, r->heap[up]))
			break;
		r->heap[i] = r->heap[up];
		i = up;
	}
	r->heap[i] = p;
	struct direction *dir = &r->dir[p->dir];
	if (++dir->queued > dir->max_queued)
		dir->max_queued = dir->queued;
}

static struct pkt *heap_pop(struct relay *r)
{
	struct pkt *top = r->heap[0];
	struct pkt *last = r->heap[--r->nheap];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= r->nheap)
			break;
		if (c + 1 < r->nheap && before(r->heap[c + 1], r->heap[c]))
			c++;
		if (!before(r->heap[c], last))
			break;
		r->heap[i] = r->heap[c];
		i = c;
	}
	if (r->nheap > 0)
		r->heap[i] = last;
	r->dir[top->dir].queued--;
	return top;
}

static struct pkt *pkt_get(struct relay *r)
{
	return r->nfree > 0 ? r->free_list[--r->nfree] : NULL;
}

static void pkt_put(struct relay *r, struct pkt *p)
{
	r->free_list[r->nfree++] = p;
}

static int queue_init(struct relay *r, size_t cap, char *err, size_t errlen)
{
	/* cap per direction, plus the frames held for reordering, one per direction */
	size_t n = NDIR * cap + NDIR;
	r->pool = calloc(n, sizeof *r->pool);
	r->free_list = calloc(n, sizeof *r->free_list);
	r->heap = calloc(NDIR * cap, sizeof *r->heap);
	if (r->pool == NULL || r->free_list == NULL || r->heap == NULL)
		return fail(err, errlen, "out of memory for a queue of %zu frames", cap);
	for (size_t i = 0; i < n; i++)
		r->free_list[i] = &r->pool[i];
	r->nfree = n;
	r->cap = cap;
	return 0;
}

/* ------------------------------------------------------------ interfaces */

static const char *chomp(char *msg)
{
	size_t n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	return msg;
}

static int open_side(struct side *s, char *err, size_t errlen)
{
	char eb[PCAP_ERRBUF_SIZE > LIBNET_ERRBUF_SIZE ? PCAP_ERRBUF_SIZE : LIBNET_ERRBUF_SIZE];
	const char *ifn = s->ifname;

	eb[0] = '\0';
	s->pcap = pcap_create(ifn, eb);
	if (s->pcap == NULL)
		return fail(err, errlen, "receive on %s: pcap_create: %s", ifn, eb);
	if (pcap_set_snaplen(s->pcap, SNAPLEN) != 0 || pcap_set_promisc(s->pcap, 1) != 0 ||
	    pcap_set_timeout(s->pcap, 100) != 0 || pcap_set_immediate_mode(s->pcap, 1) != 0 ||
	    pcap_set_buffer_size(s->pcap, PCAP_BUFFER) != 0)
		return fail(err, errlen, "receive on %s: cannot set capture options", ifn);
	int rc = pcap_activate(s->pcap);
	if (rc < 0) {
		const char *m = pcap_geterr(s->pcap);
		if (m == NULL || m[0] == '\0')
			m = pcap_statustostr(rc);
		if (rc == PCAP_ERROR_PERM_DENIED || rc == PCAP_ERROR_PROMISC_PERM_DENIED)
			return fail(err, errlen, "receive on %s: %s; " CAP_HINT, ifn, m);
		if (rc == PCAP_ERROR_NO_SUCH_DEVICE)
			return fail(err, errlen, "receive on %s: no such interface (%s)", ifn, m);
		return fail(err, errlen, "receive on %s: %s", ifn, m);
	}
	if (pcap_datalink(s->pcap) != DLT_EN10MB)
		return fail(err, errlen, "receive on %s: not an Ethernet interface", ifn);
	struct bpf_program prog;
	if (pcap_compile(s->pcap, &prog, FILTER, 1, PCAP_NETMASK_UNKNOWN) != 0)
		return fail(err, errlen, "receive on %s: filter: %s", ifn, pcap_geterr(s->pcap));
	rc = pcap_setfilter(s->pcap, &prog);
	pcap_freecode(&prog);
	if (rc != 0)
		return fail(err, errlen, "receive on %s: filter: %s", ifn, pcap_geterr(s->pcap));
	/* inbound only: the frames we write out on this interface are not input */
	if (pcap_setdirection(s->pcap, PCAP_D_IN) != 0)
		return fail(err, errlen, "receive on %s: inbound only: %s", ifn,
		            pcap_geterr(s->pcap));
	if (pcap_setnonblock(s->pcap, 1, eb) != 0)
		return fail(err, errlen, "receive on %s: non-blocking mode: %s", ifn, eb);
	s->fd = pcap_get_selectable_fd(s->pcap);
	if (s->fd < 0)
		return fail(err, errlen, "receive on %s: no descriptor to poll", ifn);

	eb[0] = '\0';
	errno = 0;
	s->net = libnet_init(LIBNET_LINK_ADV, ifn, eb);
	if (s->net == NULL) {
		int e = errno;
		chomp(eb);
		if (strstr(eb, "CAP_NET_RAW") == NULL && (e == EPERM || e == EACCES))
			return fail(err, errlen, "send on %s: %s; " CAP_HINT, ifn, eb);
		return fail(err, errlen, "send on %s: %s", ifn, eb);
	}
	/* libnet's ETH_P_ALL socket is never read: let it queue nothing */
	struct sock_filter drop_all = {BPF_RET | BPF_K, 0, 0, 0};
	struct sock_fprog fp = {.len = 1, .filter = &drop_all};
	if (setsockopt(libnet_getfd(s->net), SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof fp) != 0)
		return fail(err, errlen, "send on %s: socket filter: %s", ifn, strerror(errno));
	return 0;
}

static void close_side(struct side *s)
{
	if (s->pcap != NULL)
		pcap_close(s->pcap);
	if (s->net != NULL)
		libnet_destroy(s->net);
	s->pcap = NULL;
	s->net = NULL;
}

/* ------------------------------------------------------------ forwarding */

static bool partition_active(struct settings *s, uint64_t now)
{
	if (s->partition && s->partition_until != 0 && now >= s->partition_until) {
		s->partition = false;
		s->partition_until = 0;
	}
	return s->partition;
}

static void write_out(struct relay *r, int d, const struct pkt *p)
{
	struct side *out = &r->side[1 - d];
	struct direction *dir = &r->dir[d];
	if (libnet_adv_write_link(out->net, p->data, p->len) < 0) {
		dir->c.send_errors++;
		if (!r->logged_send_error) {
			char m[LIBNET_ERRBUF_SIZE];
			snprintf(m, sizeof m, "%s", libnet_geterror(out->net));
			logmsg("send on %s: %s (counted in send_errors; logged once)", out->ifname,
			       chomp(m));
			r->logged_send_error = true;
		}
		return;
	}
	dir->c.forwarded++;
}

/* A frame comes due: hold it (reorder), drop it (partition), or send it and
 * then the frame held before it. */
static void emit(struct relay *r, struct pkt *p, uint64_t now)
{
	int d = p->dir;
	struct direction *dir = &r->dir[d];
	if (partition_active(&dir->set, now)) {
		dir->c.dropped_partition++;
		pkt_put(r, p);
		return;
	}
	if (p->reorder && dir->held == NULL) {
		dir->held = p;
		dir->held_until = now + (uint64_t)r->hold_ms * 1000000u;
		return;
	}
	write_out(r, d, p);
	pkt_put(r, p);
	if (dir->held != NULL) {
		write_out(r, d, dir->held);
		dir->c.reordered++;
		pkt_put(r, dir->held);
		dir->held = NULL;
	}
}

/* Sends the queued frames due by now, in time order. */
static void flush_due(struct relay *r, uint64_t now)
{
	while (r->nheap > 0 && r->heap[0]->due <= now)
		emit(r, heap_pop(r), now);
}

/* Sends what is due and the held frames whose hold expired. */
static void run_timers(struct relay *r)
{
	uint64_t now = now_ns();
	flush_due(r, now);
	for (int d = 0; d < NDIR; d++) {
		struct direction *dir = &r->dir[d];
		if (dir->held != NULL && now >= dir->held_until) {
			struct pkt *p = dir->held;
			dir->held = NULL;
			if (partition_active(&dir->set, now)) {
				dir->c.dropped_partition++;
			} else {
				write_out(r, d, p);
				dir->c.hold_timeouts++;
			}
			pkt_put(r, p);
		}
		(void)partition_active(&dir->set, now); /* expire a timed partition */
	}
}

/* poll() timeout in ms until the next timer, at most 1 s */
static int next_timeout(struct relay *r)
{
	uint64_t now = now_ns();
	uint64_t next = now + 1000000000u;
	if (r->nheap > 0 && r->heap[0]->due < next)
		next = r->heap[0]->due;
	for (int d = 0; d < NDIR; d++) {
		const struct direction *dir = &r->dir[d];
		if (dir->held != NULL && dir->held_until < next)
			next = dir->held_until;
		if (dir->set.partition && dir->set.partition_until != 0 &&
		    dir->set.partition_until < next)
			next = dir->set.partition_until;
	}
	if (next <= now)
		return 0;
	return (int)((next - now + 999999u) / 1000000u);
}

/* end of the Ethernet header, VLAN tags (at most two) included */
static size_t l2_header_len(const uint8_t *b, size_t len)
{
	size_t off = ETH_HDR;
	for (int i = 0; i < 2 && off <= len; i++) {
		unsigned type = (unsigned)b[off - 2] << 8 | b[off - 1];
		if ((type != 0x8100 && type != 0x88A8) || off + 4 > len)
			break;
		off += 4;
	}
	return off;
}

struct rx_ctx {
	struct relay *r;
	int dir;
};

static void on_frame(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
	struct rx_ctx *cx = (struct rx_ctx *)(void *)user;
	struct relay *r = cx->r;
	int d = cx->dir;
	struct direction *dir = &r->dir[d];
	struct settings *s = &dir->set;
	uint64_t now = now_ns();
	uint64_t n = ++dir->ordinal;
	char tr[256];
	int tl = 0;

	dir->c.received++;
	if (r->trace != NULL)
		tl = snprintf(tr, sizeof tr, "%s %" PRIu64 " %u", dir_name[d], n, h->len);
	struct draws dr;
	draw(r->seed, d, n, &dr);

	const char *verdict = NULL;
	if (h->caplen < h->len || h->caplen > SNAPLEN) {
		dir->c.dropped_truncated++;
		verdict = "drop:truncated";
	} else if (partition_active(s, now)) {
		dir->c.dropped_partition++;
		verdict = "drop:partition";
	} else if (dr.loss < s->loss) {
		dir->c.dropped_loss++;
		verdict = "drop:loss";
	}
	if (verdict != NULL) {
		if (r->trace != NULL)
			fprintf(r->trace, "%s %s\n", tr, verdict);
		return;
	}

	struct pkt *p = dir->queued < r->cap ? pkt_get(r) : NULL;
	if (p == NULL) {
		dir->c.dropped_queue++;
		if (r->trace != NULL)
			fprintf(r->trace, "%s drop:queue\n", tr);
		return;
	}
	p->len = h->caplen;
	p->dir = d;
	memcpy(p->data, bytes, h->caplen);
	if (tl > 0 && (size_t)tl < sizeof tr)
		tl += snprintf(tr + tl, sizeof tr - (size_t)tl, " fwd");

	if (dr.corrupt < s->corrupt) {
		size_t hl = l2_header_len(p->data, p->len);
		if (p->len > hl) {
			size_t off = hl + (size_t)(dr.corrupt_pos % (p->len - hl));
			p->data[off] ^= (uint8_t)(1u << dr.corrupt_bit);
			dir->c.corrupted++;
			if (tl > 0 && (size_t)tl < sizeof tr)
				tl += snprintf(tr + tl, sizeof tr - (size_t)tl, " corrupt=%zu:%u",
				               off, (unsigned)dr.corrupt_bit);
		}
	}
	int64_t delay_us = (int64_t)s->delay_ms * 1000;
	if (s->jitter_ms > 0)
		delay_us +=
		    (int64_t)llround((2.0 * dr.jitter - 1.0) * (double)s->jitter_ms * 1000.0);
	if (delay_us < 0)
		delay_us = 0;
	if (delay_us > 0) {
		dir->c.delayed++;
		if (tl > 0 && (size_t)tl < sizeof tr)
			tl += snprintf(tr + tl, sizeof tr - (size_t)tl, " delay_us=%" PRId64,
			               delay_us);
	}
	p->due = now + (uint64_t)delay_us * 1000u;
	p->order = r->order++;
	p->reorder = dr.reorder < s->reorder;
	if (p->reorder && tl > 0 && (size_t)tl < sizeof tr)
		tl += snprintf(tr + tl, sizeof tr - (size_t)tl, " reorder");
	heap_push(r, p);

	if (dr.dup < s->dup) {
		struct pkt *c = dir->queued < r->cap ? pkt_get(r) : NULL;
		if (c == NULL) {
			dir->c.dropped_queue++;
			if (tl > 0 && (size_t)tl < sizeof tr)
				tl += snprintf(tr + tl, sizeof tr - (size_t)tl, " dup:queue-full");
		} else {
			memcpy(c, p, offsetof(struct pkt, data) + p->len);
			c->order = r->order++;
			c->reorder = false; /* the copy follows its original */
			heap_push(r, c);
			dir->c.duplicated++;
			if (tl > 0 && (size_t)tl < sizeof tr)
				tl += snprintf(tr + tl, sizeof tr - (size_t)tl, " dup");
		}
	}
	if (r->trace != NULL)
		fprintf(r->trace, "%s\n", tr);
	/* undelayed frames leave at once (p may be gone after this): the queue
	 * is for frames that wait */
	flush_due(r, now);
}

static int drain(struct relay *r, int d, char *err, size_t errlen)
{
	struct rx_ctx cx = {.r = r, .dir = d};
	int rc = pcap_dispatch(r->side[d].pcap, DISPATCH_MAX, on_frame, (u_char *)(void *)&cx);
	if (rc < 0 && rc != PCAP_ERROR_BREAK)
		return fail(err, errlen, "receive on %s: %s", r->side[d].ifname,
		            pcap_geterr(r->side[d].pcap));
	return 0;
}

/* ------------------------------------------------------------ parsing */

static int parse_prob(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0.0 || v > 1.0)
		return -1;
	*out = v;
	return 0;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	if (s[0] == '\0' || s[0] == '-' || isspace((unsigned char)s[0]))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_ms(const char *s, uint32_t *out)
{
	uint64_t v;
	if (parse_u64(s, MAX_MS, &v) != 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* "ab", "ba", "both": a bit mask of directions */
static int parse_dir(const char *s, unsigned *mask)
{
	if (strcmp(s, "ab") == 0)
		*mask = 1u << AB;
	else if (strcmp(s, "ba") == 0)
		*mask = 1u << BA;
	else if (strcmp(s, "both") == 0)
		*mask = 1u << AB | 1u << BA;
	else
		return -1;
	return 0;
}

/* "on" (until off) or SECONDS: fills until (0: until off) relative to now */
static int parse_partition(const char *s, uint64_t now, uint64_t *until)
{
	if (strcmp(s, "on") == 0) {
		*until = 0;
		return 0;
	}
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v <= 0.0 ||
	    v > MAX_PARTITION_S)
		return -1;
	*until = now + (uint64_t)(v * 1e9);
	if (*until == 0)
		*until = 1;
	return 0;
}

/* ------------------------------------------------------------ control */

struct out {
	char *b;
	size_t cap, len;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	if (o->len >= o->cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->b + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len = (size_t)n < o->cap - o->len ? o->len + (size_t)n : o->cap;
}

static void put_settings(struct out *o, struct settings *s, uint64_t now)
{
	bool part = partition_active(s, now);
	put(o,
	    "\"settings\":{\"loss\":%.6g,\"dup\":%.6g,\"reorder\":%.6g,\"corrupt\":%.6g,"
	    "\"delay_ms\":%" PRIu32 ",\"jitter_ms\":%" PRIu32 ",\"partition\":%s",
	    s->loss, s->dup, s->reorder, s->corrupt, s->delay_ms, s->jitter_ms,
	    part ? "true" : "false");
	if (part && s->partition_until != 0)
		put(o, ",\"partition_left_s\":%.3f", (double)(s->partition_until - now) / 1e9);
	put(o, "}");
}

static void stats_json(struct relay *r, struct out *o)
{
	uint64_t now = now_ns();
	put(o, "{\"seed\":%" PRIu64 ",\"uptime_s\":%.3f,\"hold_ms\":%" PRIu32, r->seed,
	    (double)(now - r->t_start) / 1e9, r->hold_ms);
	put(o, ",\"queue\":{\"len\":%zu,\"cap_per_direction\":%zu}", r->nheap, r->cap);
	for (int d = 0; d < NDIR; d++) {
		struct direction *dir = &r->dir[d];
		const struct counters *c = &dir->c;
		struct pcap_stat ps;
		memset(&ps, 0, sizeof ps);
		bool have_ps = pcap_stats(r->side[d].pcap, &ps) == 0;
		put(o,
		    ",\"%s\":{\"from\":\"%s\",\"to\":\"%s\",\"received\":%" PRIu64
		    ",\"forwarded\":%" PRIu64 ",\"dropped_loss\":%" PRIu64
		    ",\"dropped_partition\":%" PRIu64 ",\"dropped_queue\":%" PRIu64
		    ",\"dropped_truncated\":%" PRIu64 ",\"duplicated\":%" PRIu64
		    ",\"reordered\":%" PRIu64 ",\"hold_timeouts\":%" PRIu64 ",\"delayed\":%" PRIu64
		    ",\"corrupted\":%" PRIu64 ",\"send_errors\":%" PRIu64 ",\"held\":%d",
		    dir_name[d], r->side[d].ifname, r->side[1 - d].ifname, c->received,
		    c->forwarded, c->dropped_loss, c->dropped_partition, c->dropped_queue,
		    c->dropped_truncated, c->duplicated, c->reordered, c->hold_timeouts, c->delayed,
		    c->corrupted, c->send_errors, dir->held != NULL ? 1 : 0);
		put(o, ",\"queued\":%zu,\"max_queued\":%zu", dir->queued, dir->max_queued);
		if (have_ps)
			put(o, ",\"kernel_dropped\":%u", ps.ps_drop);
		put(o, ",");
		put_settings(o, &dir->set, now);
		put(o, "}");
	}
	put(o, "}");
}

/* Splits line into at most max words (in place); the count, or -1 if more. */
static int split(char *line, char **w, int max)
{
	int n = 0;
	char *save = NULL;
	for (char *t = strtok_r(line, " \t\r", &save); t != NULL;
	     t = strtok_r(NULL, " \t\r", &save)) {
		if (n == max)
			return -1;
		w[n++] = t;
	}
	return n;
}

/* `set k=v ... [dir=]`: all or nothing */
static void cmd_set(struct relay *r, char **w, int n, struct out *o)
{
	unsigned mask = 1u << AB | 1u << BA;
	for (int i = 1; i < n; i++)
		if (strncmp(w[i], "dir=", 4) == 0 && parse_dir(w[i] + 4, &mask) != 0) {
			put(o, "error: %s: dir is ab, ba or both", w[i]);
			return;
		}
	struct settings ns[NDIR] = {r->dir[AB].set, r->dir[BA].set};
	uint32_t hold = r->hold_ms;
	if (n < 2) {
		put(o, "error: set: give at least one of loss= dup= reorder= corrupt= delay= "
		       "jitter= hold=");
		return;
	}
	for (int i = 1; i < n; i++) {
		char *eq = strchr(w[i], '=');
		if (eq == NULL) {
			put(o, "error: %s: expected NAME=VALUE", w[i]);
			return;
		}
		*eq = '\0';
		const char *k = w[i], *v = eq + 1;
		double p = 0;
		uint32_t ms = 0;
		bool prob = strcmp(k, "loss") == 0 || strcmp(k, "dup") == 0 ||
		            strcmp(k, "reorder") == 0 || strcmp(k, "corrupt") == 0;
		bool time =
		    strcmp(k, "delay") == 0 || strcmp(k, "jitter") == 0 || strcmp(k, "hold") == 0;
		if (strcmp(k, "dir") == 0)
			continue;
		if (!prob && !time) {
			put(o,
			    "error: %s: unknown setting (loss dup reorder corrupt delay jitter "
			    "hold dir)",
			    k);
			return;
		}
		if (prob && parse_prob(v, &p) != 0) {
			put(o, "error: %s=%s: a probability 0..1", k, v);
			return;
		}
		if (time && (parse_ms(v, &ms) != 0 || (strcmp(k, "hold") == 0 && ms == 0))) {
			put(o, "error: %s=%s: milliseconds, %s..%d", k, v,
			    strcmp(k, "hold") == 0 ? "1" : "0", MAX_MS);
			return;
		}
		if (strcmp(k, "hold") == 0) {
			hold = ms;
			continue;
		}
		for (int d = 0; d < NDIR; d++) {
			if (!(mask & 1u << d))
				continue;
			if (strcmp(k, "loss") == 0)
				ns[d].loss = p;
			else if (strcmp(k, "dup") == 0)
				ns[d].dup = p;
			else if (strcmp(k, "reorder") == 0)
				ns[d].reorder = p;
			else if (strcmp(k, "corrupt") == 0)
				ns[d].corrupt = p;
			else if (strcmp(k, "delay") == 0)
				ns[d].delay_ms = ms;
			else
				ns[d].jitter_ms = ms;
		}
	}
	r->dir[AB].set = ns[AB];
	r->dir[BA].set = ns[BA];
	r->hold_ms = hold;
	put(o, "ok");
}

static void cmd_partition(struct relay *r, char **w, int n, struct out *o)
{
	unsigned mask = 1u << AB | 1u << BA;
	if (n < 2 || n > 3) {
		put(o, "error: partition on|off|SECONDS [dir=ab|ba|both]");
		return;
	}
	if (n == 3 && (strncmp(w[2], "dir=", 4) != 0 || parse_dir(w[2] + 4, &mask) != 0)) {
		put(o, "error: %s: dir=ab, dir=ba or dir=both", w[2]);
		return;
	}
	uint64_t until = 0;
	bool on = strcmp(w[1], "off") != 0;
	if (on && parse_partition(w[1], now_ns(), &until) != 0) {
		put(o, "error: partition %s: on, off or seconds (0 < S <= %.0f)", w[1],
		    MAX_PARTITION_S);
		return;
	}
	for (int d = 0; d < NDIR; d++)
		if (mask & 1u << d) {
			r->dir[d].set.partition = on;
			r->dir[d].set.partition_until = on ? until : 0;
		}
	put(o, "ok");
}

static void execute(struct relay *r, char *line, struct out *o)
{
	char *w[16];
	int n = split(line, w, 16);
	if (n < 0) {
		put(o, "error: too many words");
		return;
	}
	if (n == 0) {
		put(o, "error: empty command (set, partition, reset, stats, quit)");
		return;
	}
	if (strcmp(w[0], "set") == 0) {
		cmd_set(r, w, n, o);
	} else if (strcmp(w[0], "partition") == 0) {
		cmd_partition(r, w, n, o);
	} else if (strcmp(w[0], "reset") == 0 && n == 1) {
		for (int d = 0; d < NDIR; d++)
			memset(&r->dir[d].set, 0, sizeof r->dir[d].set);
		put(o, "ok");
	} else if (strcmp(w[0], "stats") == 0 && n == 1) {
		stats_json(r, o);
	} else if (strcmp(w[0], "quit") == 0 && n == 1) {
		r->stop = true;
		put(o, "ok");
	} else {
		put(o,
		    "error: %s: unknown command or extra words (set, partition, reset, stats, "
		    "quit)",
		    w[0]);
	}
}

static void client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}

static bool reply(struct client *c, struct out *o)
{
	if (o->len >= o->cap)
		o->len = o->cap - 1;
	o->b[o->len++] = '\n';
	size_t done = 0;
	while (done < o->len) {
		ssize_t k = send(c->fd, o->b + done, o->len - done, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false; /* the client went away or does not read: drop it */
		done += (size_t)k;
	}
	return true;
}

static void client_read(struct relay *r, struct client *c)
{
	ssize_t k = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
	if (k < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (k <= 0) {
		client_close(c);
		return;
	}
	c->len += (size_t)k;
	char rb[REPLY_MAX];
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		struct out o = {.b = rb, .cap = sizeof rb - 1, .len = 0};
		if (nl == NULL) {
			if (c->len == sizeof c->buf) {
				put(&o, "error: line longer than %d bytes", LINE_MAX_LEN - 1);
				(void)reply(c, &o);
				client_close(c);
			}
			return;
		}
		*nl = '\0';
		execute(r, c->buf, &o);
		size_t used = (size_t)(nl - c->buf) + 1;
		memmove(c->buf, nl + 1, c->len - used);
		c->len -= used;
		if (!reply(c, &o)) {
			client_close(c);
			return;
		}
	}
}

static void client_accept(struct relay *r)
{
	int fd = accept(r->listen_fd, NULL, NULL);
	if (fd < 0)
		return;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
		close(fd);
		return;
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (r->clients[i].fd < 0) {
			r->clients[i].fd = fd;
			r->clients[i].len = 0;
			return;
		}
	static const char busy[] = "error: too many control clients\n";
	(void)send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL);
	close(fd);
}

static int control_open(struct relay *r, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(r->ctl_path) >= sizeof sa.sun_path)
		return fail(err, errlen, "--control %s: path longer than %zu bytes", r->ctl_path,
		            sizeof sa.sun_path - 1);
	memcpy(sa.sun_path, r->ctl_path, strlen(r->ctl_path) + 1);
	struct stat st;
	if (lstat(r->ctl_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return fail(err, errlen, "--control %s: exists and is not a socket",
			            r->ctl_path);
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0)
			return fail(err, errlen, "socket: %s", strerror(errno));
		int c = connect(probe, (struct sockaddr *)&sa, sizeof sa);
		close(probe);
		if (c == 0)
			return fail(err, errlen, "--control %s: in use by a running relay",
			            r->ctl_path);
		if (unlink(r->ctl_path) != 0)
			return fail(err, errlen, "--control %s: removing the stale socket: %s",
			            r->ctl_path, strerror(errno));
	}
	r->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->listen_fd < 0)
		return fail(err, errlen, "socket: %s", strerror(errno));
	mode_t old = umask(077);
	int b = bind(r->listen_fd, (struct sockaddr *)&sa, sizeof sa);
	int be = errno;
	umask(old);
	if (b != 0)
		return fail(err, errlen, "--control %s: bind: %s", r->ctl_path, strerror(be));
	r->own_socket = true;
	if (chmod(r->ctl_path, 0600) != 0)
		return fail(err, errlen, "--control %s: chmod 0600: %s", r->ctl_path,
		            strerror(errno));
	if (listen(r->listen_fd, MAX_CLIENTS) != 0)
		return fail(err, errlen, "--control %s: listen: %s", r->ctl_path, strerror(errno));
	return 0;
}

/* ------------------------------------------------------------ the loop */

static int run(struct relay *r, char *err, size_t errlen)
{
	struct pollfd pf[4 + MAX_CLIENTS];
	while (!r->stop) {
		int n = 0;
		pf[n++] = (struct pollfd){.fd = r->sig_fd, .events = POLLIN};
		pf[n++] = (struct pollfd){.fd = r->side[AB].fd, .events = POLLIN};
		pf[n++] = (struct pollfd){.fd = r->side[BA].fd, .events = POLLIN};
		pf[n++] = (struct pollfd){.fd = r->listen_fd, .events = POLLIN};
		for (int i = 0; i < MAX_CLIENTS; i++)
			pf[n++] = (struct pollfd){.fd = r->clients[i].fd, .events = POLLIN};
		int rc = poll(pf, (nfds_t)n, next_timeout(r));
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			return fail(err, errlen, "poll: %s", strerror(errno));
		}
		if (pf[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(r->sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
				logmsg("signal %u: stopping", si.ssi_signo);
				r->stop = true;
			}
		}
		for (int d = 0; d < NDIR; d++) {
			if (pf[1 + d].revents & (POLLERR | POLLNVAL))
				return fail(err, errlen, "receive on %s: the interface went away",
				            r->side[d].ifname);
			if (pf[1 + d].revents & POLLIN) {
				if (drain(r, d, err, errlen) != 0)
					return -1;
			}
		}
		run_timers(r);
		if (pf[3].revents & POLLIN)
			client_accept(r);
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (pf[4 + i].fd >= 0 && (pf[4 + i].revents & (POLLIN | POLLHUP | POLLERR)))
				client_read(r, &r->clients[i]);
	}
	return 0;
}

/* ------------------------------------------------------------ client mode */

static int client_main(const char *path, int argc, char **argv)
{
	char line[LINE_MAX_LEN];
	size_t len = 0;
	if (argc < 1) {
		fprintf(stderr,
		        PROG ": -C %s: give a COMMAND (set, partition, reset, stats, quit)\n",
		        path);
		return EXIT_USAGE;
	}
	for (int i = 0; i < argc; i++) {
		size_t k = strlen(argv[i]);
		if (len + k + 2 > sizeof line || strchr(argv[i], '\n') != NULL) {
			fprintf(stderr, PROG ": -C: the command is longer than %d bytes\n",
			        LINE_MAX_LEN - 2);
			return EXIT_USAGE;
		}
		if (i > 0)
			line[len++] = ' ';
		memcpy(line + len, argv[i], k);
		len += k;
	}
	line[len++] = '\n';

	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, PROG ": -C %s: path too long\n", path);
		return EXIT_USAGE;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		fprintf(stderr, PROG ": -C %s: cannot connect: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_RUNTIME;
	}
	if (send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len) {
		fprintf(stderr, PROG ": -C %s: sending: %s\n", path, strerror(errno));
		close(fd);
		return EXIT_RUNTIME;
	}
	char buf[REPLY_MAX + 1];
	size_t got = 0;
	while (got < REPLY_MAX) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int rc = poll(&p, 1, CLIENT_TIMEOUT_MS);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0) {
			fprintf(stderr, PROG ": -C %s: no reply within %d ms\n", path,
			        CLIENT_TIMEOUT_MS);
			close(fd);
			return EXIT_RUNTIME;
		}
		ssize_t k = recv(fd, buf + got, REPLY_MAX - got, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
		if (memchr(buf, '\n', got) != NULL)
			break;
	}
	close(fd);
	buf[got] = '\0';
	char *nl = strchr(buf, '\n');
	if (nl == NULL) {
		fprintf(stderr, PROG ": -C %s: no complete reply\n", path);
		return EXIT_RUNTIME;
	}
	*nl = '\0';
	if (puts(buf) == EOF || fflush(stdout) != 0) {
		fprintf(stderr, PROG ": writing the reply: %s\n", strerror(errno));
		return EXIT_RUNTIME;
	}
	return strncmp(buf, "error", 5) == 0 ? EXIT_RUNTIME : 0;
}

/* ------------------------------------------------------------ main */

enum {
	OPT_DIR = 256,
	OPT_LOSS,
	OPT_DUP,
	OPT_REORDER,
	OPT_DELAY,
	OPT_JITTER,
	OPT_CORRUPT,
	OPT_PARTITION,
	OPT_HOLD,
	OPT_QUEUE,
	OPT_SEED,
	OPT_TRACE,
	OPT_CONTROL,
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (" PROG " -h for help)\n", stderr);
	return EXIT_USAGE;
}

static uint64_t clock_seed(void)
{
	struct timespec ts;
	uint64_t s = (uint64_t)getpid();
	if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
		s ^= (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	/* a seed someone can type: below 2^53 */
	return splitmix64(&s) >> 11;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"dir", required_argument, NULL, OPT_DIR},
	    {"loss", required_argument, NULL, OPT_LOSS},
	    {"dup", required_argument, NULL, OPT_DUP},
	    {"reorder", required_argument, NULL, OPT_REORDER},
	    {"delay", required_argument, NULL, OPT_DELAY},
	    {"jitter", required_argument, NULL, OPT_JITTER},
	    {"corrupt", required_argument, NULL, OPT_CORRUPT},
	    {"partition", required_argument, NULL, OPT_PARTITION},
	    {"hold", required_argument, NULL, OPT_HOLD},
	    {"queue", required_argument, NULL, OPT_QUEUE},
	    {"seed", required_argument, NULL, OPT_SEED},
	    {"trace", required_argument, NULL, OPT_TRACE},
	    {"control", required_argument, NULL, OPT_CONTROL},
	    {"client", required_argument, NULL, 'C'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct relay r;
	memset(&r, 0, sizeof r);
	r.hold_ms = DEFAULT_HOLD_MS;
	r.listen_fd = -1;
	r.sig_fd = -1;
	r.side[AB].fd = r.side[BA].fd = -1;
	for (int i = 0; i < MAX_CLIENTS; i++)
		r.clients[i].fd = -1;
	unsigned mask = 1u << AB | 1u << BA;
	bool have_seed = false;
	uint64_t queue = DEFAULT_QUEUE;
	const char *trace_path = NULL;
	const char *partition_arg[NDIR] = {NULL, NULL};

	/* client mode first: its COMMAND words are not options */
	if (argc >= 2 && (strcmp(argv[1], "-C") == 0 || strcmp(argv[1], "--client") == 0)) {
		if (argc < 3)
			return usage_error("%s: needs the control socket's path", argv[1]);
		return client_main(argv[2], argc - 3, argv + 3);
	}

	int opt;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":hC:", longopts, NULL)) != -1) {
		double p = 0;
		uint32_t ms = 0;
		uint64_t v = 0;
		const char *name = NULL;
		for (const struct option *lo = longopts; lo->name != NULL; lo++)
			if (lo->val == opt)
				name = lo->name;
		switch (opt) {
		case 'h':
			fputs(usage_text, stdout);
			return fflush(stdout) == 0 ? 0 : EXIT_RUNTIME;
		case 'C':
			return usage_error("-C: client mode takes the first place: %s -C PATH "
			                   "COMMAND...",
			                   PROG);
		case OPT_DIR:
			if (parse_dir(optarg, &mask) != 0)
				return usage_error("--dir %s: ab, ba or both", optarg);
			break;
		case OPT_LOSS:
		case OPT_DUP:
		case OPT_REORDER:
		case OPT_CORRUPT:
			if (parse_prob(optarg, &p) != 0)
				return usage_error("--%s %s: a probability 0..1", name, optarg);
			for (int d = 0; d < NDIR; d++) {
				if (!(mask & 1u << d))
					continue;
				if (opt == OPT_LOSS)
					r.dir[d].set.loss = p;
				else if (opt == OPT_DUP)
					r.dir[d].set.dup = p;
				else if (opt == OPT_REORDER)
					r.dir[d].set.reorder = p;
				else
					r.dir[d].set.corrupt = p;
			}
			break;
		case OPT_DELAY:
		case OPT_JITTER:
			if (parse_ms(optarg, &ms) != 0)
				return usage_error("--%s %s: milliseconds, 0..%d", name, optarg,
				                   MAX_MS);
			for (int d = 0; d < NDIR; d++)
				if (mask & 1u << d) {
					if (opt == OPT_DELAY)
						r.dir[d].set.delay_ms = ms;
					else
						r.dir[d].set.jitter_ms = ms;
				}
			break;
		case OPT_PARTITION:
			if (parse_partition(optarg, 1, &v) != 0)
				return usage_error("--partition %s: on or seconds (0 < S <= %.0f)",
				                   optarg, MAX_PARTITION_S);
			for (int d = 0; d < NDIR; d++)
				if (mask & 1u << d)
					partition_arg[d] = optarg;
			break;
		case OPT_HOLD:
			if (parse_ms(optarg, &ms) != 0 || ms == 0)
				return usage_error("--hold %s: milliseconds, 1..%d", optarg,
				                   MAX_MS);
			r.hold_ms = ms;
			break;
		case OPT_QUEUE:
			if (parse_u64(optarg, MAX_QUEUE, &v) != 0 || v == 0)
				return usage_error("--queue %s: frames, 1..%d", optarg, MAX_QUEUE);
			queue = v;
			break;
		case OPT_SEED:
			if (parse_u64(optarg, UINT64_MAX, &v) != 0)
				return usage_error("--seed %s: an unsigned 64-bit integer", optarg);
			r.seed = v;
			have_seed = true;
			break;
		case OPT_TRACE:
			trace_path = optarg;
			break;
		case OPT_CONTROL:
			r.ctl_path = optarg;
			break;
		case ':':
			return usage_error("%s: needs a value", argv[optind - 1]);
		default:
			return usage_error("%s: unknown option", argv[optind - 1]);
		}
	}
	if (argc - optind != 2)
		return usage_error("give two interfaces, IFACE_A and IFACE_B (got %d)",
		                   argc - optind);
	r.side[AB].ifname = argv[optind];
	r.side[BA].ifname = argv[optind + 1];
	if (strcmp(r.side[AB].ifname, r.side[BA].ifname) == 0)
		return usage_error("IFACE_A and IFACE_B are both %s: two interfaces",
		                   r.side[AB].ifname);
	if (!have_seed)
		r.seed = clock_seed();

	char err[512] = "";
	int rc = EXIT_RUNTIME;
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	if (sigprocmask(SIG_BLOCK, &sigs, NULL) != 0 ||
	    (r.sig_fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		logmsg("signals: %s", strerror(errno));
		return EXIT_RUNTIME;
	}
	if (queue_init(&r, (size_t)queue, err, sizeof err) != 0)
		goto out;
	for (int d = 0; d < NDIR; d++)
		if (open_side(&r.side[d], err, sizeof err) != 0)
			goto out;
	if (trace_path != NULL) {
		r.trace = fopen(trace_path, "w");
		if (r.trace == NULL) {
			snprintf(err, sizeof err, "--trace %s: %s", trace_path, strerror(errno));
			goto out;
		}
		/* a line per frame, on disk even if the relay is killed */
		if (setvbuf(r.trace, NULL, _IOLBF, 0) != 0) {
			snprintf(err, sizeof err, "--trace %s: cannot line-buffer", trace_path);
			goto out;
		}
	}
	if (r.ctl_path != NULL && control_open(&r, err, sizeof err) != 0)
		goto out;
	r.t_start = now_ns();
	for (int d = 0; d < NDIR; d++)
		if (partition_arg[d] != NULL) {
			uint64_t until = 0;
			(void)parse_partition(partition_arg[d], r.t_start, &until);
			r.dir[d].set.partition = true;
			r.dir[d].set.partition_until = until;
		}
	logmsg("seed %" PRIu64 " (replay a run with --seed %" PRIu64 ")", r.seed, r.seed);
	logmsg("relaying 0x88B7 frames %s <-> %s%s%s", r.side[AB].ifname, r.side[BA].ifname,
	       r.ctl_path != NULL ? ", control socket " : "", r.ctl_path != NULL ? r.ctl_path : "");
	if (run(&r, err, sizeof err) == 0)
		rc = 0;

out:
	if (rc != 0 && err[0] != '\0')
		logmsg("%s", err);
	if (r.pool != NULL && r.side[AB].pcap != NULL && r.side[BA].pcap != NULL &&
	    r.t_start != 0) {
		char sb[REPLY_MAX];
		struct out o = {.b = sb, .cap = sizeof sb, .len = 0};
		stats_json(&r, &o);
		logmsg("stats at exit: %.*s", (int)o.len, sb);
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		client_close(&r.clients[i]);
	if (r.listen_fd >= 0)
		close(r.listen_fd);
	if (r.own_socket && unlink(r.ctl_path) != 0)
		logmsg("--control %s: removing the socket: %s", r.ctl_path, strerror(errno));
	if (r.trace != NULL && fclose(r.trace) != 0) {
		logmsg("--trace: writing: %s", strerror(errno));
		rc = EXIT_RUNTIME;
	}
	close_side(&r.side[AB]);
	close_side(&r.side[BA]);
	if (r.sig_fd >= 0)
		close(r.sig_fd);
	free(r.pool);
	free(r.free_list);
	free(r.heap);
	return rc;
}
