/*
 * qkd88b7.c - send, receive and decode qkdlink key-ID frames from the command
 * line (see docs/man/qkd88b7.1).
 *
 * The operator's and the tests' tool: `send` signs frames field by field
 * (also deliberately broken ones), `listen` runs every received frame through
 * the receiver's checks (rx.h) and prints the outcome, `decode` does the same
 * for a capture file. Output is one line per frame, text or JSON.
 * Secrets come from files only, never from the command line.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "frame.h"
#include "port.h"
#include "rx.h"
#include "secret.h"

#define PROG "qkd88b7"
#define EXIT_NONE 1  /* listen: nothing accepted; decode: a frame dropped; send: I/O */
#define EXIT_USAGE 2 /* usage, configuration or I/O error */
#define ERR_LEN 512
#define MAX_PEERS 4096         /* (channel, sender) replay marks kept by listen/decode */
#define TIMEOUT_MAX 31536000.0 /* one year, seconds */
#define PCAP_SNAP 65535
#define HELLO_INTERVAL_DEFAULT 30
#define HELLO_INTERVAL_MAX 3600

static const uint8_t DST_DEFAULT[6] = QKD_DST_DEFAULT;
static const uint8_t SRC_WRITE_DEFAULT[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

static const char USAGE[] =
    "Usage: " PROG " COMMAND [OPTIONS]\n"
    "Send, receive and decode qkdlink key-ID frames (Ethertype 0x88B7).\n"
    "\n"
    "  " PROG " send (-i IFACE | -w FILE.pcap) -s SECRET -c CHANNEL --sender ID\n"
    "               --epoch N --seq N [OPTIONS] TYPE [TYPE OPTIONS]\n"
    "  " PROG " listen -i IFACE -s SECRET [OPTIONS]\n"
    "  " PROG " decode FILE.pcap [-s SECRET] [OPTIONS]\n"
    "  " PROG " help | --help | --version\n"
    "\n"
    "send options:\n"
    "  -i, --interface IFACE  send on IFACE (needs CAP_NET_RAW)\n"
    "  -w, --write FILE       write the frames to a pcap file instead (no -i)\n"
    "      --dst MAC          destination MAC (default 03:51:4b:00:00:01)\n"
    "      --src MAC          source MAC (default: IFACE's; 02:00:00:00:00:01 with -w)\n"
    "      --vlan VID         add an 802.1Q tag with VLAN ID 1..4094\n"
    "      --pcp N            the tag's priority 0..7 (default 0)\n"
    "      --oui HEX          OUI (default ac-de-48)\n"
    "      --pid HEX          protocol ID (default 514b)\n"
    "  -s, --secret FILE      channel secret file, mode 0600 or stricter\n"
    "      --secret-id N      secret ID 0..255 (default 0)\n"
    "  -c, --channel N        channel 1..4294967295\n"
    "      --sender ID        sender (SAE) ID, 1..32 printable characters\n"
    "      --epoch N          sender epoch, 1..4294967295\n"
    "      --seq N            sequence number of the first frame, 1..4294967295\n"
    "  -n, --count N          send N frames, numbered seq, seq+1, ... (default 1)\n"
    "      --corrupt-bit N    flip bit N of the PDU after signing (bit 0 is the\n"
    "                         most significant bit of the first OUI octet)\n"
    "  -q, --quiet            print nothing for each frame\n"
    "TYPE and its options:\n"
    "  hello [--role master|slave] [--state IDLE|ROTATING|RESYNC|N] [--interval S]\n"
    "        [--current-rotation N] [--pending-rotation N] [--key-id ID ...]\n"
    "        (the digest is computed over the --key-id values; none: all zero)\n"
    "  announce --rotation N --key-id ID [--key-id ID ...] [--activation UNIXTIME]\n"
    "        [--slot 0..63]\n"
    "  ack --rotation N [--result NAME|N] [--detail TEXT]   (result default OK)\n"
    "        NAME: OK KME_NOT_FOUND KME_ERROR COMMIT_FAILED BUSY UNKNOWN_CHANNEL\n"
    "        STALE INTERNAL\n"
    "\n"
    "listen options:\n"
    "  -i, --interface IFACE  receive on IFACE (needs CAP_NET_RAW)\n"
    "  -s, --secret FILE      secret file (required), --secret-id N (default 0)\n"
    "  -c, --channel N        the secret serves channel N only (default: any)\n"
    "      --oui HEX, --pid HEX   the protocol to accept (default ac-de-48, 514b)\n"
    "      --kernel-filter    let the kernel drop other OUIs/PIDs (not counted then)\n"
    "  -n, --count N          stop after N accepted frames\n"
    "  -t, --timeout SEC      stop after SEC seconds (decimals allowed)\n"
    "      --json             one JSON object per line\n"
    "\n"
    "decode options:\n"
    "  -s, --secret FILE      verify ICVs and replay order too (else: not verified)\n"
    "      --secret-id N, -c N, --oui HEX, --pid HEX, --json   as for listen\n"
    "\n"
    "Exit status: 0 success (listen: a frame was accepted; decode: every frame\n"
    "was), 1 listen: none accepted, decode: a frame dropped, send: sending failed,\n"
    "2 usage, configuration or I/O error.\n";

/* ---- messages and argument parsing ---- */

/* "--name" of the long option whose value is c, for error messages. */
static void option_label(const struct option *opts, int c, char *buf, size_t len)
{
	const char *name = "?";
	for (const struct option *p = opts; p->name != NULL; p++)
		if (p->val == c)
			name = p->name;
	snprintf(buf, len, "--%s", name);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" PROG " --help'.\n", stderr);
	return EXIT_USAGE;
}

__attribute__((format(printf, 1, 2))) static void error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Reports a getopt_long() failure (c is '?' or ':') naming the option. */
static int option_error(const char *cmd, int c, char **argv)
{
	char shortopt[3] = {'-', (char)optopt, '\0'};
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	const char *name = arg;
	int len = (int)strlen(arg);
	if (strncmp(arg, "--", 2) == 0) {
		const char *eq = strchr(arg, '=');
		if (eq != NULL)
			len = (int)(eq - arg);
	} else if (optopt != 0) {
		name = shortopt;
		len = 2;
	}
	if (c == ':')
		return usage_error("%s: option %.*s needs a value", cmd, len, name);
	return usage_error("%s: unknown or ambiguous option %.*s", cmd, len, name);
}

/* Decimal min..max into *out; 0, or -1 after a message naming opt and text. */
static int parse_u64(const char *opt, const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || v < min || v > max) {
		usage_error("%s: '%s' is not a number in %" PRIu64 "..%" PRIu64, opt, text, min,
		            max);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_u32(const char *opt, const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;
	if (parse_u64(opt, text, min, max, &v) != 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "ac-de-48" or "ac:de:48": n >= 2 octets of two digits, one kind of separator. */
static bool parse_separated(const char *p, unsigned n, uint8_t *out)
{
	if (strlen(p) != (size_t)n * 3 - 1 || (p[2] != '-' && p[2] != ':'))
		return false;
	for (unsigned i = 0; i < n; i++) {
		int hi = hex_digit(p[3 * i]), lo = hex_digit(p[3 * i + 1]);
		if (hi < 0 || lo < 0 || (i + 1 < n && p[3 * i + 2] != p[2]))
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* An OUI (3 octets) or PID (2): ac-de-48, ac:de:48, or hex digits with an optional 0x. */
static int parse_hex(const char *opt, const char *text, unsigned octets, uint32_t *out)
{
	const char *p = text;
	uint32_t v = 0;
	bool ok;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	if (strpbrk(p, "-:") != NULL) {
		uint8_t b[3];
		ok = octets <= sizeof b && parse_separated(p, octets, b);
		for (unsigned i = 0; ok && i < octets; i++)
			v = v << 8 | b[i];
	} else {
		size_t len = strlen(p);
		ok = len >= 1 && len <= 2 * (size_t)octets;
		for (size_t i = 0; ok && i < len; i++) {
			int d = hex_digit(p[i]);
			ok = d >= 0;
			v = v << 4 | (uint32_t)(d & 0xF);
		}
	}
	if (!ok) {
		usage_error("%s: '%s' is not a %u-octet hex value (like %s)", opt, text, octets,
		            octets == 3 ? "ac-de-48 or acde48" : "514b");
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_mac(const char *opt, const char *text, uint8_t out[6])
{
	if (!parse_separated(text, 6, out)) {
		usage_error("%s: '%s' is not a MAC address like 03:51:4b:00:00:01", opt, text);
		return -1;
	}
	return 0;
}

static int parse_seconds(const char *opt, const char *text, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (end == text || *end != '\0' || errno != 0 || !isfinite(v) || v <= 0 ||
	    v > TIMEOUT_MAX) {
		usage_error("%s: '%s' is not a number of seconds above 0", opt, text);
		return -1;
	}
	*out = v;
	return 0;
}

/* A name from names[0..n) (case-insensitive) or a number 0..255. */
static int parse_named(const char *opt, const char *text, const char *const *names, size_t n,
                       uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(text, names[i]) == 0) {
			*out = (uint8_t)i;
			return 0;
		}
	}
	if (text[0] >= '0' && text[0] <= '9') {
		uint32_t v;
		if (parse_u32(opt, text, 0, 255, &v) != 0)
			return -1;
		*out = (uint8_t)v;
		return 0;
	}
	usage_error("%s: unknown value '%s'", opt, text);
	return -1;
}

static const char *const RESULT_NAMES[] = {
    "OK",    "KME_NOT_FOUND", "KME_ERROR",   "COMMIT_FAILED", "BUSY", "UNKNOWN_CHANNEL",
    "STALE", "INTERNAL",      "ROUTER_BUSY",
};
static const char *const STATE_NAMES[] = {"IDLE", "ROTATING", "RESYNC"};

static int64_t mono_seconds(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec;
}

static double mono_now(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- output ---- */

/* A JSON string: quotes, backslashes and anything not printable escaped. */
static void put_json_str(FILE *f, const char *s, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c > 0x7E)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void put_mac(FILE *f, const uint8_t m[6])
{
	fprintf(f, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static void put_hex(FILE *f, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

static void put_time(FILE *f, const struct timeval *ts)
{
	fprintf(f, "%lld.%06ld", (long long)ts->tv_sec, (long)ts->tv_usec);
}

static void put_l2_json(FILE *f, const struct qkd_l2 *l2)
{
	fputs("\"l2\":{\"src\":\"", f);
	put_mac(f, l2->src);
	fputs("\",\"dst\":\"", f);
	put_mac(f, l2->dst);
	if (l2->tagged)
		fprintf(f, "\",\"vid\":%u,\"pcp\":%u}", l2->vid, l2->pcp);
	else
		fputs("\",\"vid\":null,\"pcp\":null}", f);
}

static void put_l2_text(FILE *f, const struct qkd_l2 *l2)
{
	fputs(" src=", f);
	put_mac(f, l2->src);
	fputs(" dst=", f);
	put_mac(f, l2->dst);
	if (l2->tagged)
		fprintf(f, " vid=%u pcp=%u", l2->vid, l2->pcp);
}

/* The common header, after an object's opening fields. */
static void put_header_json(FILE *f, const struct qkd_msg *m)
{
	fprintf(f,
	        ",\"type\":\"%s\",\"type_num\":%u,\"oui\":\"%06" PRIx32 "\",\"pid\":\"%04x\""
	        ",\"version\":%u,\"flags\":%u,\"secret_id\":%u,\"channel\":%" PRIu32
	        ",\"epoch\":%" PRIu32 ",\"seq\":%" PRIu32 ",\"sender\":",
	        qkd_msg_type_name(m->type), m->type, m->oui, m->pid, m->version, m->flags,
	        m->secret_id, m->channel, m->epoch, m->seq);
	put_json_str(f, m->sender.ptr, m->sender.len);
}

static void put_body_json(FILE *f, const struct qkd_msg *m)
{
	switch (m->type) {
	case QKD_MSG_HELLO: {
		const struct qkd_hello *h = &m->u.hello;
		fprintf(f,
		        ",\"role\":\"%s\",\"role_num\":%u,\"state\":\"%s\",\"state_num\":%u"
		        ",\"interval\":%u,\"current_rotation\":%" PRIu32
		        ",\"pending_rotation\":%" PRIu32 ",\"digest\":\"",
		        qkd_role_name(h->role), h->role, qkd_state_name(h->state), h->state,
		        h->interval, h->current_rotation, h->pending_rotation);
		put_hex(f, h->digest, QKD_DIGEST_LEN);
		fputc('"', f);
		break;
	}
	case QKD_MSG_ANNOUNCE: {
		const struct qkd_announce *a = &m->u.announce;
		fprintf(f, ",\"rotation\":%" PRIu32 ",\"key_ids\":[", a->rotation);
		for (size_t i = 0; i < a->nkeys; i++) {
			if (i > 0)
				fputc(',', f);
			put_json_str(f, a->keys[i].ptr, a->keys[i].len);
		}
		fputc(']', f);
		if (a->has_activation)
			fprintf(f, ",\"activation\":%" PRIu64, a->activation);
		else
			fputs(",\"activation\":null", f);
		if (a->has_slot)
			fprintf(f, ",\"slot\":%u", a->slot);
		else
			fputs(",\"slot\":null", f);
		break;
	}
	case QKD_MSG_ACK: {
		const struct qkd_ack *k = &m->u.ack;
		fprintf(f, ",\"rotation\":%" PRIu32 ",\"result\":\"%s\",\"result_num\":%u",
		        k->rotation, qkd_result_name(k->result), k->result);
		fputs(",\"detail\":", f);
		if (k->detail.len > 0)
			put_json_str(f, k->detail.ptr, k->detail.len);
		else
			fputs("null", f);
		break;
	}
	default:
		break;
	}
}

static void put_body_text(FILE *f, const struct qkd_msg *m)
{
	switch (m->type) {
	case QKD_MSG_HELLO: {
		const struct qkd_hello *h = &m->u.hello;
		fprintf(f,
		        " role=%s state=%s(%u) interval=%u current_rotation=%" PRIu32
		        " pending_rotation=%" PRIu32 " digest=",
		        qkd_role_name(h->role), qkd_state_name(h->state), h->state, h->interval,
		        h->current_rotation, h->pending_rotation);
		put_hex(f, h->digest, QKD_DIGEST_LEN);
		break;
	}
	case QKD_MSG_ANNOUNCE: {
		const struct qkd_announce *a = &m->u.announce;
		fprintf(f, " rotation=%" PRIu32 " keys=%u key_ids=", a->rotation, a->nkeys);
		for (size_t i = 0; i < a->nkeys; i++)
			fprintf(f, "%s%.*s", i > 0 ? "," : "", (int)a->keys[i].len, a->keys[i].ptr);
		if (a->has_activation)
			fprintf(f, " activation=%" PRIu64, a->activation);
		if (a->has_slot)
			fprintf(f, " slot=%u", a->slot);
		break;
	}
	case QKD_MSG_ACK: {
		const struct qkd_ack *k = &m->u.ack;
		fprintf(f, " rotation=%" PRIu32 " result=%s(%u)", k->rotation,
		        qkd_result_name(k->result), k->result);
		if (k->detail.len > 0) {
			fputs(" detail=", f);
			put_json_str(f, k->detail.ptr, k->detail.len);
		}
		break;
	}
	default:
		break;
	}
}

/* One accepted (verified) or decoded (structure only) frame. */
static void print_frame(FILE *f, bool json, unsigned long idx, const struct timeval *ts,
                        const struct qkd_decoded *d, bool verified)
{
	const struct qkd_msg *m = &d->msg;
	if (json) {
		fprintf(f, "{\"frame\":%lu,\"time\":", idx);
		put_time(f, ts);
		fprintf(f, ",\"status\":\"%s\",\"verified\":%s", verified ? "accepted" : "decoded",
		        verified ? "true" : "false");
		put_header_json(f, m);
		fprintf(f, ",\"length\":%zu,\"padding\":%zu,", d->pdu_len, d->padding);
		put_l2_json(f, &d->l2);
		put_body_json(f, m);
		fputs("}\n", f);
		return;
	}
	fprintf(f,
	        "#%lu %s %s channel=%" PRIu32 " sender=%.*s epoch=%" PRIu32 " seq=%" PRIu32
	        " secret_id=%u length=%zu",
	        idx, verified ? "accepted" : "decoded", qkd_msg_type_name(m->type), m->channel,
	        (int)m->sender.len, m->sender.ptr, m->epoch, m->seq, m->secret_id, d->pdu_len);
	put_l2_text(f, &d->l2);
	put_body_text(f, m);
	fputs(verified ? "\n" : " (not verified)\n", f);
}

/*
 * One dropped frame: the reason and whatever decoding established. suppressed
 * is how many drops of this reason went unprinted before it (rate limiting).
 */
static void print_drop(FILE *f, bool json, unsigned long idx, const struct timeval *ts, size_t len,
                       enum qkd_drop r, const struct qkd_decoded *d, uint64_t suppressed)
{
	bool have_l2 = len >= 14 && r != QKD_DROP_NOT_88B7;
	bool have_ident = r == QKD_DROP_FOREIGN || r >= QKD_DROP_BAD_VERSION;
	bool have_header = r >= QKD_DROP_UNKNOWN_CHANNEL; /* decoded completely */
	const struct qkd_msg *m = &d->msg;
	if (json) {
		fprintf(f, "{\"frame\":%lu,\"time\":", idx);
		put_time(f, ts);
		fprintf(f, ",\"drop\":\"%s\",\"len\":%zu", qkd_drop_name(r), len);
		if (have_header)
			put_header_json(f, m);
		else if (have_ident)
			fprintf(f, ",\"oui\":\"%06" PRIx32 "\",\"pid\":\"%04x\"", m->oui, m->pid);
		if (have_l2) {
			fputc(',', f);
			put_l2_json(f, &d->l2);
		}
		fputs("}\n", f);
		return;
	}
	fprintf(f, "#%lu drop %s len=%zu", idx, qkd_drop_name(r), len);
	if (have_header)
		fprintf(f,
		        " %s channel=%" PRIu32 " sender=%.*s epoch=%" PRIu32 " seq=%" PRIu32
		        " secret_id=%u",
		        qkd_msg_type_name(m->type), m->channel, (int)m->sender.len, m->sender.ptr,
		        m->epoch, m->seq, m->secret_id);
	else if (have_ident)
		fprintf(f, " oui=%06" PRIx32 " pid=%04x", m->oui, m->pid);
	if (have_l2)
		put_l2_text(f, &d->l2);
	if (suppressed > 0)
		fprintf(f, " (%" PRIu64 " more %s drops not shown before this one)", suppressed,
		        qkd_drop_name(r));
	fputc('\n', f);
}

static void print_counters(FILE *f, bool json, const uint64_t count[QKD_DROP_COUNT],
                           unsigned long frames, const struct qkd_port_stats *ps)
{
	if (json) {
		fputs("{\"counters\":{", f);
		for (int i = 0; i < QKD_DROP_COUNT; i++)
			fprintf(f, "%s\"%s\":%" PRIu64, i > 0 ? "," : "",
			        qkd_drop_name((enum qkd_drop)i), count[i]);
		fprintf(f, "},\"frames\":%lu", frames);
		if (ps != NULL)
			fprintf(f,
			        ",\"pcap\":{\"received\":%" PRIu64 ",\"dropped\":%" PRIu64
			        ",\"ifdropped\":%" PRIu64 "}",
			        ps->received, ps->dropped, ps->ifdropped);
		fputs("}\n", f);
		return;
	}
	fprintf(f, "counters: frames=%lu", frames);
	for (int i = 0; i < QKD_DROP_COUNT; i++)
		fprintf(f, " %s=%" PRIu64, qkd_drop_name((enum qkd_drop)i), count[i]);
	fputc('\n', f);
	if (ps != NULL)
		fprintf(f, "pcap: received=%" PRIu64 " dropped=%" PRIu64 " ifdropped=%" PRIu64 "\n",
		        ps->received, ps->dropped, ps->ifdropped);
}

/* 0 if everything printed reached stdout, else a message and EXIT_USAGE. */
static int finish_output(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		error("writing the output: %s", strerror(errno));
		return EXIT_USAGE;
	}
	return 0;
}

/* ---- receiver set-up shared by listen and decode ---- */

struct rx_opts {
	const char *secret_path;
	uint8_t secret_id;
	uint32_t channel; /* QKD_RX_ANY_CHANNEL: any */
	struct qkd_ident ident;
	bool json;
};

/* qkd_rx with the one secret of opts. 0, or EXIT_USAGE after a message. */
static int rx_setup(struct qkd_rx *rx, const struct rx_opts *o)
{
	char err[ERR_LEN];
	struct qkd_key key;
	if (qkd_rx_init(rx, &o->ident, 1, MAX_PEERS) != 0) {
		error("out of memory");
		return EXIT_USAGE;
	}
	if (qkd_key_load(&key, o->secret_path, err, sizeof err) != 0) {
		error("%s", err);
		qkd_rx_free(rx);
		return EXIT_USAGE;
	}
	if (qkd_rx_add_secret(rx, o->channel, o->secret_id, &key) != 0) {
		qkd_key_clear(&key);
		qkd_rx_free(rx);
		error("cannot add the secret");
		return EXIT_USAGE;
	}
	return 0;
}

/* ---- send ---- */

enum {
	OPT_DST = 256,
	OPT_SRC,
	OPT_VLAN,
	OPT_PCP,
	OPT_OUI,
	OPT_PID,
	OPT_SECRET_ID,
	OPT_SENDER,
	OPT_EPOCH,
	OPT_SEQ,
	OPT_CORRUPT,
	OPT_JSON,
	OPT_KFILTER,
	OPT_ROLE,
	OPT_STATE,
	OPT_INTERVAL,
	OPT_CURRENT,
	OPT_PENDING,
	OPT_KEYID,
	OPT_ROTATION,
	OPT_ACTIVATION,
	OPT_SLOT,
	OPT_RESULT,
	OPT_DETAIL,
};

struct send_opts {
	const char *ifname;
	const char *write_path;
	const char *secret_path;
	uint8_t dst[6];
	bool src_set;
	uint8_t src[6];
	uint16_t vlan;
	uint8_t pcp;
	bool pcp_set;
	bool channel_set, epoch_set, seq_set;
	uint32_t count;
	int64_t corrupt_bit; /* -1: none */
	bool quiet;
	struct qkd_msg msg; /* header and body; seq is the first one */
	struct qkd_str keys[QKD_KEYS_MAX];
	size_t nkeys;
};

static int parse_send_common(int argc, char **argv, struct send_opts *o, int *type_index)
{
	static const struct option opts[] = {
	    {"interface", required_argument, NULL, 'i'},
	    {"write", required_argument, NULL, 'w'},
	    {"dst", required_argument, NULL, OPT_DST},
	    {"src", required_argument, NULL, OPT_SRC},
	    {"vlan", required_argument, NULL, OPT_VLAN},
	    {"pcp", required_argument, NULL, OPT_PCP},
	    {"oui", required_argument, NULL, OPT_OUI},
	    {"pid", required_argument, NULL, OPT_PID},
	    {"secret", required_argument, NULL, 's'},
	    {"secret-id", required_argument, NULL, OPT_SECRET_ID},
	    {"channel", required_argument, NULL, 'c'},
	    {"sender", required_argument, NULL, OPT_SENDER},
	    {"epoch", required_argument, NULL, OPT_EPOCH},
	    {"seq", required_argument, NULL, OPT_SEQ},
	    {"count", required_argument, NULL, 'n'},
	    {"corrupt-bit", required_argument, NULL, OPT_CORRUPT},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct qkd_msg *m = &o->msg;
	uint32_t v;
	uint64_t v64;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:i:w:s:c:n:qh", opts, NULL)) != -1) {
		char opt[32];
		option_label(opts, c, opt, sizeof opt);
		switch (c) {
		case 'i':
			o->ifname = optarg;
			break;
		case 'w':
			o->write_path = optarg;
			break;
		case OPT_DST:
			if (parse_mac(opt, optarg, o->dst) != 0)
				return EXIT_USAGE;
			break;
		case OPT_SRC:
			if (parse_mac(opt, optarg, o->src) != 0)
				return EXIT_USAGE;
			o->src_set = true;
			break;
		case OPT_VLAN:
			if (parse_u32(opt, optarg, 1, 4094, &v) != 0)
				return EXIT_USAGE;
			o->vlan = (uint16_t)v;
			break;
		case OPT_PCP:
			if (parse_u32(opt, optarg, 0, 7, &v) != 0)
				return EXIT_USAGE;
			o->pcp = (uint8_t)v;
			o->pcp_set = true;
			break;
		case OPT_OUI:
			if (parse_hex(opt, optarg, 3, &m->oui) != 0)
				return EXIT_USAGE;
			break;
		case OPT_PID:
			if (parse_hex(opt, optarg, 2, &v) != 0)
				return EXIT_USAGE;
			m->pid = (uint16_t)v;
			break;
		case 's':
			o->secret_path = optarg;
			break;
		case OPT_SECRET_ID:
			if (parse_u32(opt, optarg, 0, 255, &v) != 0)
				return EXIT_USAGE;
			m->secret_id = (uint8_t)v;
			break;
		case 'c':
			if (parse_u32(opt, optarg, 1, UINT32_MAX, &m->channel) != 0)
				return EXIT_USAGE;
			o->channel_set = true;
			break;
		case OPT_SENDER:
			if (!qkd_str_valid(optarg, strlen(optarg), QKD_SENDER_MAX))
				return usage_error("--sender: '%s' is not 1..%d printable "
				                   "characters without spaces",
				                   optarg, QKD_SENDER_MAX);
			m->sender.ptr = optarg;
			m->sender.len = strlen(optarg);
			break;
		case OPT_EPOCH:
			if (parse_u32(opt, optarg, 1, UINT32_MAX, &m->epoch) != 0)
				return EXIT_USAGE;
			o->epoch_set = true;
			break;
		case OPT_SEQ:
			if (parse_u32(opt, optarg, 1, UINT32_MAX, &m->seq) != 0)
				return EXIT_USAGE;
			o->seq_set = true;
			break;
		case 'n':
			if (parse_u32(opt, optarg, 1, UINT32_MAX, &o->count) != 0)
				return EXIT_USAGE;
			break;
		case OPT_CORRUPT:
			if (parse_u64(opt, optarg, 0, QKD_PDU_MAX * 8 - 1, &v64) != 0)
				return EXIT_USAGE;
			o->corrupt_bit = (int64_t)v64;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			fputs(USAGE, stdout);
			return -1;
		default:
			return option_error("send", c, argv);
		}
	}
	if (optind >= argc)
		return usage_error("send: TYPE (hello, announce or ack) is missing");
	*type_index = optind;
	return 0;
}

static int parse_send_type(int argc, char **argv, struct send_opts *o)
{
	static const struct option hello_opts[] = {
	    {"role", required_argument, NULL, OPT_ROLE},
	    {"state", required_argument, NULL, OPT_STATE},
	    {"interval", required_argument, NULL, OPT_INTERVAL},
	    {"current-rotation", required_argument, NULL, OPT_CURRENT},
	    {"pending-rotation", required_argument, NULL, OPT_PENDING},
	    {"key-id", required_argument, NULL, OPT_KEYID},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const struct option announce_opts[] = {
	    {"rotation", required_argument, NULL, OPT_ROTATION},
	    {"key-id", required_argument, NULL, OPT_KEYID},
	    {"activation", required_argument, NULL, OPT_ACTIVATION},
	    {"slot", required_argument, NULL, OPT_SLOT},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const struct option ack_opts[] = {
	    {"rotation", required_argument, NULL, OPT_ROTATION},
	    {"result", required_argument, NULL, OPT_RESULT},
	    {"detail", required_argument, NULL, OPT_DETAIL},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const char *const roles[] = {"", "master", "slave"};
	struct qkd_msg *m = &o->msg;
	const struct option *opts;
	const char *type = argv[0];
	if (strcasecmp(type, "hello") == 0) {
		m->type = QKD_MSG_HELLO;
		opts = hello_opts;
		m->u.hello.role = QKD_ROLE_MASTER;
		m->u.hello.state = QKD_STATE_IDLE;
		m->u.hello.interval = HELLO_INTERVAL_DEFAULT;
	} else if (strcasecmp(type, "announce") == 0) {
		m->type = QKD_MSG_ANNOUNCE;
		opts = announce_opts;
	} else if (strcasecmp(type, "ack") == 0) {
		m->type = QKD_MSG_ACK;
		opts = ack_opts;
		m->u.ack.result = QKD_RES_OK;
	} else {
		return usage_error("send: unknown TYPE '%s' (hello, announce or ack)", type);
	}
	char where[32];
	snprintf(where, sizeof where, "send %s", qkd_msg_type_name(m->type));
	for (char *p = where; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	bool rotation_set = false;
	uint32_t v;
	uint64_t v64;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		char opt[32];
		option_label(opts, c, opt, sizeof opt);
		switch (c) {
		case OPT_ROLE:
			if (parse_named(opt, optarg, roles, 3, &m->u.hello.role) != 0)
				return EXIT_USAGE;
			if (m->u.hello.role != QKD_ROLE_MASTER && m->u.hello.role != QKD_ROLE_SLAVE)
				return usage_error("%s: '%s' is not master or slave", opt, optarg);
			break;
		case OPT_STATE:
			if (parse_named(opt, optarg, STATE_NAMES, 3, &m->u.hello.state) != 0)
				return EXIT_USAGE;
			break;
		case OPT_INTERVAL:
			if (parse_u32(opt, optarg, 1, HELLO_INTERVAL_MAX, &v) != 0)
				return EXIT_USAGE;
			m->u.hello.interval = (uint16_t)v;
			break;
		case OPT_CURRENT:
			if (parse_u32(opt, optarg, 0, UINT32_MAX, &m->u.hello.current_rotation) !=
			    0)
				return EXIT_USAGE;
			break;
		case OPT_PENDING:
			if (parse_u32(opt, optarg, 0, UINT32_MAX, &m->u.hello.pending_rotation) !=
			    0)
				return EXIT_USAGE;
			break;
		case OPT_KEYID:
			if (o->nkeys >= QKD_KEYS_MAX)
				return usage_error("%s: at most %d key_IDs", opt, QKD_KEYS_MAX);
			if (!qkd_str_valid(optarg, strlen(optarg), QKD_KEYID_MAX))
				return usage_error("%s: '%s' is not 1..%d printable characters "
				                   "without spaces",
				                   opt, optarg, QKD_KEYID_MAX);
			o->keys[o->nkeys].ptr = optarg;
			o->keys[o->nkeys].len = strlen(optarg);
			o->nkeys++;
			break;
		case OPT_ROTATION:
			if (parse_u32(opt, optarg, 1, UINT32_MAX, &v) != 0)
				return EXIT_USAGE;
			if (m->type == QKD_MSG_ANNOUNCE)
				m->u.announce.rotation = v;
			else
				m->u.ack.rotation = v;
			rotation_set = true;
			break;
		case OPT_ACTIVATION:
			if (parse_u64(opt, optarg, 0, UINT64_MAX, &v64) != 0)
				return EXIT_USAGE;
			m->u.announce.has_activation = true;
			m->u.announce.activation = v64;
			break;
		case OPT_SLOT:
			if (parse_u32(opt, optarg, 0, QKD_KEYCHAIN_SLOT_MAX, &v) != 0)
				return EXIT_USAGE;
			m->u.announce.has_slot = true;
			m->u.announce.slot = (uint8_t)v;
			break;
		case OPT_RESULT:
			if (parse_named(opt, optarg, RESULT_NAMES, 9, &m->u.ack.result) != 0)
				return EXIT_USAGE;
			break;
		case OPT_DETAIL: {
			size_t len = strlen(optarg);
			bool ok = len >= 1 && len <= QKD_DETAIL_MAX;
			for (size_t i = 0; ok && i < len; i++)
				ok = optarg[i] >= 0x20 && optarg[i] <= 0x7E;
			if (!ok)
				return usage_error("%s: need 1..%d printable characters", opt,
				                   QKD_DETAIL_MAX);
			m->u.ack.detail.ptr = optarg;
			m->u.ack.detail.len = len;
			break;
		}
		case 'h':
			fputs(USAGE, stdout);
			return -1;
		default:
			return option_error(where, c, argv);
		}
	}
	if (optind < argc)
		return usage_error("%s: unexpected argument '%s'", where, argv[optind]);
	switch (m->type) {
	case QKD_MSG_HELLO:
		if (o->nkeys > 0 && qkd_keyids_digest(o->keys, o->nkeys, m->u.hello.digest) != 0)
			return usage_error("%s: a --key-id is not a valid key_ID", where);
		break;
	case QKD_MSG_ANNOUNCE:
		if (!rotation_set)
			return usage_error("%s: --rotation is required", where);
		if (o->nkeys == 0)
			return usage_error("%s: at least one --key-id is required", where);
		m->u.announce.nkeys = (uint8_t)o->nkeys;
		memcpy(m->u.announce.keys, o->keys, o->nkeys * sizeof o->keys[0]);
		break;
	default:
		if (!rotation_set)
			return usage_error("%s: --rotation is required", where);
		break;
	}
	return 0;
}

static int send_check(const struct send_opts *o)
{
	if ((o->ifname == NULL) == (o->write_path == NULL))
		return usage_error("send: give either -i IFACE or --write FILE");
	if (o->secret_path == NULL)
		return usage_error("send: --secret FILE is required");
	if (!o->channel_set)
		return usage_error("send: --channel is required");
	if (o->msg.sender.ptr == NULL)
		return usage_error("send: --sender is required");
	if (!o->epoch_set || !o->seq_set)
		return usage_error("send: --epoch and --seq are required");
	if (o->pcp_set && o->vlan == 0)
		return usage_error("send: --pcp needs --vlan");
	if ((uint64_t)o->msg.seq + o->count - 1 > UINT32_MAX)
		return usage_error("send: --seq %" PRIu32 " plus --count %" PRIu32
		                   " passes the largest sequence number",
		                   o->msg.seq, o->count);
	return 0;
}

/* Where the frames go: the port or a pcap file. */
struct sink {
	struct qkd_port *port;
	pcap_t *dead;
	pcap_dumper_t *dump;
	struct qkd_l2 l2; /* for the file */
};

static int sink_open(struct sink *s, const struct send_opts *o)
{
	char err[ERR_LEN];
	memset(s, 0, sizeof *s);
	if (o->ifname != NULL) {
		struct qkd_port_config cfg = {
		    .tx_ifname = o->ifname,
		    .src_set = o->src_set,
		    .vlan = o->vlan,
		    .pcp = o->pcp,
		};
		memcpy(cfg.dst, o->dst, 6);
		memcpy(cfg.src, o->src, 6);
		if (qkd_port_open(&s->port, &cfg, err, sizeof err) != 0) {
			error("%s", err);
			return EXIT_USAGE;
		}
		return 0;
	}
	memcpy(s->l2.dst, o->dst, 6);
	memcpy(s->l2.src, o->src_set ? o->src : SRC_WRITE_DEFAULT, 6);
	s->l2.tagged = o->vlan != 0;
	s->l2.vid = o->vlan;
	s->l2.pcp = o->pcp;
	s->dead = pcap_open_dead(DLT_EN10MB, PCAP_SNAP);
	if (s->dead == NULL) {
		error("pcap_open_dead failed");
		return EXIT_USAGE;
	}
	s->dump = pcap_dump_open(s->dead, o->write_path);
	if (s->dump == NULL) {
		error("%s: %s", o->write_path, pcap_geterr(s->dead));
		pcap_close(s->dead);
		s->dead = NULL;
		return EXIT_USAGE;
	}
	return 0;
}

/* Closes the sink; EXIT_USAGE if the file could not be written completely. */
static int sink_close(struct sink *s, const char *path)
{
	int rc = 0;
	qkd_port_close(s->port);
	if (s->dump != NULL) {
		if (pcap_dump_flush(s->dump) != 0 || ferror(pcap_dump_file(s->dump))) {
			error("%s: write failed", path);
			rc = EXIT_USAGE;
		}
		pcap_dump_close(s->dump);
	}
	if (s->dead != NULL)
		pcap_close(s->dead);
	memset(s, 0, sizeof *s);
	return rc;
}

/* Flips bit (counted from the MSB of pdu[0]) of a PDU of len octets. */
static int corrupt(uint8_t *pdu, size_t len, int64_t bit)
{
	if (bit < 0)
		return 0;
	if ((uint64_t)bit >= (uint64_t)len * 8)
		return usage_error("send: --corrupt-bit %" PRId64 " is past the PDU's %zu bits",
		                   bit, len * 8);
	pdu[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
	return 0;
}

static bool writes_stdout(const struct send_opts *o)
{
	return o->write_path != NULL && strcmp(o->write_path, "-") == 0;
}

static int send_frames(const struct send_opts *o, const struct qkd_key *key)
{
	char err[ERR_LEN];
	struct sink s;
	int rc = sink_open(&s, o);
	if (rc != 0)
		return rc;
	/* With --write -, the capture goes to stdout: report on stderr. */
	FILE *report = writes_stdout(o) ? stderr : stdout;
	struct qkd_msg m = o->msg;
	uint8_t buf[QKD_FRAME_MAX];
	for (uint32_t i = 0; i < o->count && rc == 0; i++) {
		m.seq = o->msg.seq + i;
		if (s.port != NULL) {
			int n = qkd_pdu_encode(&m, key, buf, sizeof buf, err, sizeof err);
			if (n < 0) {
				error("send: %s", err);
				rc = EXIT_USAGE;
				break;
			}
			rc = corrupt(buf, (size_t)n, o->corrupt_bit);
			if (rc != 0)
				break;
			if (qkd_port_send(s.port, buf, (size_t)n, err, sizeof err) != 0) {
				error("%s", err);
				rc = EXIT_NONE;
				break;
			}
		} else {
			int n = qkd_frame_encode(&s.l2, &m, key, buf, sizeof buf, err, sizeof err);
			if (n < 0) {
				error("send: %s", err);
				rc = EXIT_USAGE;
				break;
			}
			size_t hl = 14 + (s.l2.tagged ? 4 : 0);
			size_t pdu_len = (size_t)buf[hl + 8] << 8 | buf[hl + 9];
			rc = corrupt(buf + hl, pdu_len, o->corrupt_bit);
			if (rc != 0)
				break;
			struct pcap_pkthdr h;
			memset(&h, 0, sizeof h);
			if (gettimeofday(&h.ts, NULL) != 0) {
				error("gettimeofday: %s", strerror(errno));
				rc = EXIT_USAGE;
				break;
			}
			h.caplen = h.len = (bpf_u_int32)n;
			pcap_dump((u_char *)s.dump, &h, buf);
		}
		if (!o->quiet)
			fprintf(report,
			        "%s %s channel=%" PRIu32 " sender=%.*s epoch=%" PRIu32
			        " seq=%" PRIu32 "%s %s %s\n",
			        s.port != NULL ? "sent" : "wrote", qkd_msg_type_name(m.type),
			        m.channel, (int)m.sender.len, m.sender.ptr, m.epoch, m.seq,
			        o->corrupt_bit >= 0 ? " (corrupted)" : "",
			        s.port != NULL ? "on" : "to",
			        s.port != NULL ? o->ifname : o->write_path);
	}
	int crc = sink_close(&s, o->write_path);
	return rc != 0 ? rc : crc;
}

static int cmd_send(int argc, char **argv)
{
	struct send_opts o;
	memset(&o, 0, sizeof o);
	memcpy(o.dst, DST_DEFAULT, 6);
	o.count = 1;
	o.corrupt_bit = -1;
	o.msg.oui = QKD_OUI_DEFAULT;
	o.msg.pid = QKD_PID_DEFAULT;
	o.msg.version = QKD_VERSION;
	int type_index = 0;
	int rc = parse_send_common(argc, argv, &o, &type_index);
	if (rc == 0)
		rc = parse_send_type(argc - type_index, argv + type_index, &o);
	if (rc == 0)
		rc = send_check(&o);
	if (rc != 0)
		return rc < 0 ? 0 : rc;

	char err[ERR_LEN];
	struct qkd_key key;
	if (qkd_key_load(&key, o.secret_path, err, sizeof err) != 0) {
		error("%s", err);
		return EXIT_USAGE;
	}
	rc = send_frames(&o, &key);
	qkd_key_clear(&key);
	/* pcap_dump_close() has closed stdout if the capture went there. */
	int orc = writes_stdout(&o) ? 0 : finish_output();
	return rc != 0 ? rc : orc;
}

/* ---- listen and decode: shared options ---- */

struct recv_opts {
	struct rx_opts rx;
	const char *ifname;
	bool kernel_filter;
	uint64_t count;   /* 0: no limit */
	double timeout;   /* 0: none */
	const char *file; /* decode */
};

/* Parses listen's (decode false) or decode's options. 0, -1 (help) or EXIT_USAGE. */
static int parse_recv(int argc, char **argv, bool decode, struct recv_opts *o)
{
	static const struct option listen_opts[] = {
	    {"interface", required_argument, NULL, 'i'},
	    {"secret", required_argument, NULL, 's'},
	    {"secret-id", required_argument, NULL, OPT_SECRET_ID},
	    {"channel", required_argument, NULL, 'c'},
	    {"oui", required_argument, NULL, OPT_OUI},
	    {"pid", required_argument, NULL, OPT_PID},
	    {"kernel-filter", no_argument, NULL, OPT_KFILTER},
	    {"count", required_argument, NULL, 'n'},
	    {"timeout", required_argument, NULL, 't'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const struct option decode_opts[] = {
	    {"secret", required_argument, NULL, 's'},
	    {"secret-id", required_argument, NULL, OPT_SECRET_ID},
	    {"channel", required_argument, NULL, 'c'},
	    {"oui", required_argument, NULL, OPT_OUI},
	    {"pid", required_argument, NULL, OPT_PID},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const struct option *opts = decode ? decode_opts : listen_opts;
	const char *cmd = decode ? "decode" : "listen";
	uint32_t v;
	int c;
	memset(o, 0, sizeof *o);
	o->rx.channel = QKD_RX_ANY_CHANNEL;
	o->rx.ident.oui = QKD_OUI_DEFAULT;
	o->rx.ident.pid = QKD_PID_DEFAULT;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, decode ? ":s:c:h" : ":i:s:c:n:t:h", opts, NULL)) !=
	       -1) {
		char opt[32];
		option_label(opts, c, opt, sizeof opt);
		switch (c) {
		case 'i':
			o->ifname = optarg;
			break;
		case 's':
			o->rx.secret_path = optarg;
			break;
		case OPT_SECRET_ID:
			if (parse_u32(opt, optarg, 0, 255, &v) != 0)
				return EXIT_USAGE;
			o->rx.secret_id = (uint8_t)v;
			break;
		case 'c':
			if (parse_u32(opt, optarg, 1, UINT32_MAX, &o->rx.channel) != 0)
				return EXIT_USAGE;
			break;
		case OPT_OUI:
			if (parse_hex(opt, optarg, 3, &o->rx.ident.oui) != 0)
				return EXIT_USAGE;
			break;
		case OPT_PID:
			if (parse_hex(opt, optarg, 2, &v) != 0)
				return EXIT_USAGE;
			o->rx.ident.pid = (uint16_t)v;
			break;
		case OPT_KFILTER:
			o->kernel_filter = true;
			break;
		case 'n':
			if (parse_u64(opt, optarg, 1, UINT64_MAX, &o->count) != 0)
				return EXIT_USAGE;
			break;
		case 't':
			if (parse_seconds(opt, optarg, &o->timeout) != 0)
				return EXIT_USAGE;
			break;
		case OPT_JSON:
			o->rx.json = true;
			break;
		case 'h':
			fputs(USAGE, stdout);
			return -1;
		default:
			return option_error(cmd, c, argv);
		}
	}
	if (decode) {
		if (optind >= argc)
			return usage_error("decode: FILE.pcap is missing");
		o->file = argv[optind++];
	}
	if (optind < argc)
		return usage_error("%s: unexpected argument '%s'", cmd, argv[optind]);
	if (!decode && o->ifname == NULL)
		return usage_error("listen: -i IFACE is required");
	if (!decode && o->rx.secret_path == NULL)
		return usage_error("listen: --secret FILE is required");
	if (o->rx.secret_path == NULL &&
	    (o->rx.channel != QKD_RX_ANY_CHANNEL || o->rx.secret_id != 0))
		return usage_error("%s: --channel and --secret-id need --secret", cmd);
	return 0;
}

/* ---- listen ---- */

struct listen_state {
	struct qkd_rx *rx;
	bool json;
	uint64_t want; /* --count */
	unsigned long frames;
	uint64_t accepted;
	bool done;
};

static bool listen_frame(void *ctx, const struct qkd_port_frame *f)
{
	struct listen_state *s = ctx;
	struct qkd_decoded d;
	enum qkd_drop r = qkd_rx_frame(s->rx, f->data, f->len, &d);
	s->frames++;
	if (r == QKD_OK) {
		s->accepted++;
		print_frame(stdout, s->json, s->frames, &f->ts, &d, true);
	} else if (s->json) {
		print_drop(stdout, true, s->frames, &f->ts, f->len, r, &d, 0);
	} else {
		uint64_t suppressed;
		if (qkd_rx_should_log(s->rx, r, mono_seconds(), &suppressed))
			print_drop(stdout, false, s->frames, &f->ts, f->len, r, &d, suppressed);
	}
	if (s->want > 0 && s->accepted >= s->want) {
		s->done = true;
		return true;
	}
	return false;
}

/* SIGINT and SIGTERM as a descriptor, so poll() sees them; -1 on failure. */
static int signal_fd(void)
{
	sigset_t set;
	if (sigemptyset(&set) != 0 || sigaddset(&set, SIGINT) != 0 ||
	    sigaddset(&set, SIGTERM) != 0 || sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static int listen_loop(struct qkd_port *port, int sfd, struct listen_state *s, double timeout)
{
	char err[ERR_LEN];
	double deadline = timeout > 0 ? mono_now() + timeout : 0;
	struct pollfd pfd[2] = {
	    {.fd = qkd_port_fd(port), .events = POLLIN},
	    {.fd = sfd, .events = POLLIN},
	};
	bool stop = false;
	while (!s->done && !stop) {
		int wait = -1;
		if (deadline > 0) {
			double left = deadline - mono_now();
			if (left <= 0)
				break;
			wait = (int)(left * 1000) + 1; /* round up: never spin */
		}
		int req = qkd_port_poll_timeout(port);
		if (req >= 0 && (wait < 0 || req < wait))
			wait = req;
		int n = poll(pfd, 2, wait);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			error("poll: %s", strerror(errno));
			return EXIT_USAGE;
		}
		if (pfd[1].revents != 0) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof si) < 0 && errno != EAGAIN)
				error("reading the signal: %s", strerror(errno));
			stop = true; /* still drain what already arrived */
		}
		if (pfd[0].revents != 0 || n == 0 || stop) {
			if (qkd_port_drain(port, 0, listen_frame, s, err, sizeof err) < 0) {
				error("%s", err);
				return EXIT_USAGE;
			}
		}
	}
	return 0;
}

static int cmd_listen(int argc, char **argv)
{
	struct recv_opts o;
	int rc = parse_recv(argc, argv, false, &o);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	struct qkd_rx rx;
	rc = rx_setup(&rx, &o.rx);
	if (rc != 0)
		return rc;
	int sfd = signal_fd();
	if (sfd < 0) {
		error("signal set-up: %s", strerror(errno));
		qkd_rx_free(&rx);
		return EXIT_USAGE;
	}
	char err[ERR_LEN];
	struct qkd_port *port;
	struct qkd_port_config cfg = {
	    .rx_ifname = o.ifname,
	    .kernel_ident = o.kernel_filter,
	    .oui = o.rx.ident.oui,
	    .pid = o.rx.ident.pid,
	};
	if (qkd_port_open(&port, &cfg, err, sizeof err) != 0) {
		error("%s", err);
		close(sfd);
		qkd_rx_free(&rx);
		return EXIT_USAGE;
	}
	char chan[16] = "any";
	if (o.rx.channel != QKD_RX_ANY_CHANNEL)
		snprintf(chan, sizeof chan, "%" PRIu32, o.rx.channel);
	fprintf(stderr,
	        PROG ": listening on %s (channel %s, secret ID %u, OUI %06" PRIx32 ", PID %04x)\n",
	        o.ifname, chan, o.rx.secret_id, o.rx.ident.oui, o.rx.ident.pid);

	struct listen_state s = {.rx = &rx, .json = o.rx.json, .want = o.count};
	rc = listen_loop(port, sfd, &s, o.timeout);

	struct qkd_port_stats ps;
	bool have_ps = qkd_port_stats(port, &ps, err, sizeof err) == 0;
	if (!have_ps)
		error("%s", err);
	print_counters(stdout, o.rx.json, rx.count, s.frames, have_ps ? &ps : NULL);
	qkd_port_close(port);
	close(sfd);
	qkd_rx_free(&rx);
	int orc = finish_output();
	if (rc != 0)
		return rc;
	if (orc != 0)
		return orc;
	return s.accepted > 0 ? 0 : EXIT_NONE;
}

/* ---- decode ---- */

static int cmd_decode(int argc, char **argv)
{
	struct recv_opts o;
	int rc = parse_recv(argc, argv, true, &o);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	bool verify = o.rx.secret_path != NULL;
	struct qkd_rx rx;
	memset(&rx, 0, sizeof rx);
	if (verify) {
		rc = rx_setup(&rx, &o.rx);
		if (rc != 0)
			return rc;
	}
	char eb[PCAP_ERRBUF_SIZE];
	eb[0] = '\0';
	pcap_t *p = pcap_open_offline(o.file, eb);
	if (p == NULL) {
		error("%s: %s", o.file, eb);
		if (verify)
			qkd_rx_free(&rx);
		return EXIT_USAGE;
	}
	if (pcap_datalink(p) != DLT_EN10MB) {
		error("%s: not an Ethernet capture (link type %s)", o.file,
		      pcap_datalink_val_to_name(pcap_datalink(p)));
		pcap_close(p);
		if (verify)
			qkd_rx_free(&rx);
		return EXIT_USAGE;
	}
	uint64_t count[QKD_DROP_COUNT] = {0};
	unsigned long frames = 0;
	struct pcap_pkthdr *h;
	const u_char *bytes;
	int n;
	while ((n = pcap_next_ex(p, &h, &bytes)) == 1) {
		struct qkd_decoded d;
		enum qkd_drop r;
		frames++;
		if (verify)
			r = qkd_rx_frame(&rx, bytes, h->caplen, &d);
		else
			r = qkd_frame_decode(bytes, h->caplen, &o.rx.ident, &d);
		count[r]++;
		if (r == QKD_OK)
			print_frame(stdout, o.rx.json, frames, &h->ts, &d, verify);
		else
			print_drop(stdout, o.rx.json, frames, &h->ts, h->caplen, r, &d, 0);
	}
	if (n != PCAP_ERROR_BREAK) {
		error("%s: after frame %lu: %s", o.file, frames, pcap_geterr(p));
		rc = EXIT_USAGE;
	}
	print_counters(stdout, o.rx.json, count, frames, NULL);
	pcap_close(p);
	if (verify)
		qkd_rx_free(&rx);
	int orc = finish_output();
	if (rc != 0)
		return rc;
	if (orc != 0)
		return orc;
	return count[QKD_OK] == frames ? 0 : EXIT_NONE;
}

int main(int argc, char **argv)
{
	if (setvbuf(stdout, NULL, _IOLBF, 0) != 0) {
		error("cannot set up the output");
		return EXIT_USAGE;
	}
	if (argc < 2)
		return usage_error("a COMMAND is required (send, listen, decode or help)");
	const char *cmd = argv[1];
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		fputs(USAGE, stdout);
		return finish_output();
	}
	if (strcmp(cmd, "--version") == 0) {
		printf(PROG " (qkdlink), wire protocol version %d\n", QKD_VERSION);
		return finish_output();
	}
	if (strcmp(cmd, "send") == 0)
		return cmd_send(argc - 1, argv + 1);
	if (strcmp(cmd, "listen") == 0)
		return cmd_listen(argc - 1, argv + 1);
	if (strcmp(cmd, "decode") == 0)
		return cmd_decode(argc - 1, argv + 1);
	return usage_error("unknown command '%s' (send, listen, decode or help)", cmd);
}
