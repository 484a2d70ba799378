/*
 * port.h - the layer-2 port: receives 0x88B7 frames with libpcap and sends
 * qkdlink PDUs with libnet.
 *
 * Receive and send may use different interfaces, because a tap or mirror port
 * often cannot transmit; either may be left out. Both handles are opened once
 * and kept for the life of the port: opening and closing a packet socket costs
 * 10-20 ms. The receive side is non-blocking and gives a file descriptor for
 * poll(), so an event loop owns the waiting; qkd_port_drain() hands every
 * frame waiting in the ring to a callback. Only CAP_NET_RAW is needed.
 *
 * The port does no protocol checks beyond the kernel BPF filter (Ethertype
 * 0x88B7, tagged or not, optionally OUI and PID): the frames go to
 * qkd_rx_frame(). No global state: one struct per port, one thread at a time.
 */
#ifndef QKD_PORT_H
#define QKD_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

/* Return codes: 0 or one of these (negative). err says more. */
enum qkd_port_error {
	QKD_PORT_OK = 0,
	QKD_PORT_EINVAL = -1, /* bad configuration or argument */
	QKD_PORT_EPERM = -2,  /* not allowed: CAP_NET_RAW is needed */
	QKD_PORT_ENODEV = -3, /* no such interface */
	QKD_PORT_ENOMEM = -4,
	QKD_PORT_EIO = -5, /* libpcap or libnet failed otherwise */
};

/* Capture length: QKD_FRAME_MAX (1522) rounded up. A larger one costs memory:
 * the kernel ring holds one slot of snaplen plus headers per frame, so 2048
 * fitted one slot in a 4 KiB page, 1536 fits two. */
#define QKD_PORT_SNAPLEN 1536
/* Receive ring, octets: about 1,280 frames of burst while the loop is busy
 * (a state write is 1-5 ms; a line-rate flood is about 70k frames/s). Its
 * pages count in the agent's resident memory (docs/performance.md §7). */
#define QKD_PORT_BUFFER (2 << 20)

struct qkd_port_config {
	const char *rx_ifname; /* receive on this interface; NULL: send only */
	const char *tx_ifname; /* send on this one (may be rx_ifname); NULL: receive only */
	uint8_t dst[6];        /* destination MAC of sent frames */
	bool src_set;          /* send with src instead of tx_ifname's address */
	uint8_t src[6];
	uint16_t vlan; /* 0: untagged, else 1..4094: one 802.1Q tag */
	uint8_t pcp;   /* 0..7, with vlan */
	/*
	 * With kernel_ident, the kernel filter also checks OUI and PID, so
	 * other 0x88B7 protocols never wake the receiver (they are then not
	 * counted as `foreign` either).
	 */
	bool kernel_ident;
	uint32_t oui;
	uint16_t pid;
};

/* One received frame, valid only during the callback. */
struct qkd_port_frame {
	const uint8_t *data;
	size_t len;      /* octets captured */
	size_t wire_len; /* octets on the wire (> len if cut at the snap length) */
	struct timeval ts;
};

/* Called for each frame; return true to stop draining after this one. */
typedef bool (*qkd_port_rx_fn)(void *ctx, const struct qkd_port_frame *frame);

/* Since the port was opened; 64 bits, so they do not wrap as libpcap's do. */
struct qkd_port_stats {
	uint64_t received; /* ps_recv: frames that passed the kernel filter */
	uint64_t dropped;  /* ps_drop: lost because the ring was full */
	uint64_t ifdropped;
};

struct qkd_port;

/*
 * Opens the port: the receive handle (promiscuous, so that a mirror port sees
 * frames for any destination; immediate mode; a ring of QKD_PORT_BUFFER; BPF filter; inbound
 * only; non-blocking) and/or the send handle (libnet, with a drop-all filter
 * on its unused receive socket).
 * Returns 0 with *out set, or a qkd_port_error with err naming the interface
 * and the cause.
 */
int qkd_port_open(struct qkd_port **out, const struct qkd_port_config *cfg, char *err,
                  size_t errlen);

/* Closes both handles and frees the port; NULL is allowed. */
void qkd_port_close(struct qkd_port *port);

/* The descriptor to poll() for POLLIN, or -1 without a receive side. */
int qkd_port_fd(const struct qkd_port *port);

/*
 * The longest poll() may wait before calling qkd_port_drain() anyway, in ms,
 * or -1 for no limit (libpcap on Linux needs none).
 */
int qkd_port_poll_timeout(const struct qkd_port *port);

/*
 * Hands up to max frames (0: all waiting) to fn without blocking. Returns the
 * number handed over (0: none waiting), or a qkd_port_error, e.g. when the
 * interface went away.
 */
int qkd_port_drain(struct qkd_port *port, int max, qkd_port_rx_fn fn, void *ctx, char *err,
                   size_t errlen);

/*
 * Sends one PDU (OUI to ICV, from qkd_pdu_encode()) in an Ethernet frame to
 * the configured destination, tagged if configured. 0 or a qkd_port_error.
 */
int qkd_port_send(struct qkd_port *port, const uint8_t *pdu, size_t len, char *err, size_t errlen);

/* The source MAC of sent frames, or NULL without a send side. */
const uint8_t *qkd_port_src(const struct qkd_port *port);

/* libpcap's counters for the receive side, summed in 64 bits: call it at
 * least once per 2^32 frames. 0 or a qkd_port_error. */
int qkd_port_stats(struct qkd_port *port, struct qkd_port_stats *st, char *err, size_t errlen);

#endif
