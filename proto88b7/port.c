/*
 * port.c - 0x88B7 frames in with libpcap, out with libnet.
 *
 * Measured choices (libnet 1.1.6, libpcap 1.10, Linux): immediate mode,
 * or frames wait in the ring for up to the read timeout (~50 ms median);
 * PCAP_D_IN, or the receive side sees our own frames when rx == tx; a drop-all
 * socket filter on libnet's socket, which libnet opens for ETH_P_ALL and never
 * binds nor reads, so that it does not queue a copy of every frame on the host.
 */
#include "port.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libnet.h>
#include <linux/filter.h>
#include <pcap/pcap.h>

#include "frame.h"

#define ETH_HDR_LEN 14
#define TPID_8021Q 0x8100
#define VLAN_MAX 4094
#define PCP_MAX 7
#define READ_TIMEOUT_MS 100 /* unused in immediate mode; set for older libpcaps */
#define FILTER_MAX 512

_Static_assert(QKD_PORT_SNAPLEN >= QKD_FRAME_MAX, "the capture length must hold the largest frame");
#define NAME_MAX_LEN 64

#define CAP_HINT "CAP_NET_RAW is needed (run as root or grant the capability)"

struct qkd_port {
	/* receive side */
	pcap_t *pcap;
	char rx_name[NAME_MAX_LEN];
	qkd_port_rx_fn fn; /* set for the duration of one drain */
	void *ctx;
	int handed;
	/* libpcap's counters are 32 bits: the last raw values and 64-bit sums */
	unsigned raw[3];
	struct qkd_port_stats total;
	/* send side */
	libnet_t *net;
	libnet_ptag_t ptag;
	char tx_name[NAME_MAX_LEN];
	uint8_t dst[6];
	uint8_t src[6];
	uint16_t vlan;
	uint8_t pcp;
};

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int code,
                                                      const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* ---- receive ---- */

/* Maps a failed pcap_activate() to a code and a message naming the cause. */
static int activate_error(pcap_t *pc, int rc, const char *ifname, char *err, size_t errlen)
{
	const char *msg = pcap_geterr(pc);
	if (msg == NULL || msg[0] == '\0')
		msg = pcap_statustostr(rc);
	switch (rc) {
	case PCAP_ERROR_PERM_DENIED:
	case PCAP_ERROR_PROMISC_PERM_DENIED:
		return fail(err, errlen, QKD_PORT_EPERM, "receive on %s: %s; " CAP_HINT, ifname,
		            msg);
	case PCAP_ERROR_NO_SUCH_DEVICE:
		return fail(err, errlen, QKD_PORT_ENODEV, "receive on %s: no such interface (%s)",
		            ifname, msg);
	case PCAP_ERROR_IFACE_NOT_UP:
		return fail(err, errlen, QKD_PORT_EIO, "receive on %s: interface is down (%s)",
		            ifname, msg);
	default:
		return fail(err, errlen, QKD_PORT_EIO, "receive on %s: %s", ifname, msg);
	}
}

/*
 * The kernel filter. The `vlan` branch is for captures whose tag is still in
 * the bytes (files, some drivers); live Linux moves the tag to metadata, where
 * the first branch matches. Offsets in the ident variant are absolute.
 */
static int make_filter(const struct qkd_port_config *cfg, char *buf, size_t cap)
{
	int n;
	if (!cfg->kernel_ident) {
		n = snprintf(buf, cap, "ether proto 0x88b7 or (vlan and ether proto 0x88b7)");
	} else {
		unsigned word = (unsigned)((cfg->oui & 0xFFFFFFu) << 8 | (unsigned)cfg->pid >> 8);
		unsigned byte = cfg->pid & 0xFFu;
		n = snprintf(buf, cap,
		             "(ether proto 0x88b7 and ether[14:4] = 0x%08x and ether[18] = 0x%02x)"
		             " or (vlan and ether proto 0x88b7 and ether[18:4] = 0x%08x"
		             " and ether[22] = 0x%02x)",
		             word, byte, word, byte);
	}
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int open_rx(struct qkd_port *p, const struct qkd_port_config *cfg, char *err, size_t errlen)
{
	const char *ifn = p->rx_name;
	char eb[PCAP_ERRBUF_SIZE];
	eb[0] = '\0';
	p->pcap = pcap_create(ifn, eb);
	if (p->pcap == NULL)
		return fail(err, errlen, QKD_PORT_EIO, "receive on %s: pcap_create: %s", ifn, eb);
	pcap_t *pc = p->pcap;
	/* These fail only on an activated handle: a bug, reported as such. */
	if (pcap_set_snaplen(pc, QKD_PORT_SNAPLEN) != 0 || pcap_set_promisc(pc, 1) != 0 ||
	    pcap_set_timeout(pc, READ_TIMEOUT_MS) != 0 || pcap_set_immediate_mode(pc, 1) != 0 ||
	    pcap_set_buffer_size(pc, QKD_PORT_BUFFER) != 0)
		return fail(err, errlen, QKD_PORT_EIO, "receive on %s: cannot set capture options",
		            ifn);
	int rc = pcap_activate(pc);
	if (rc < 0)
		return activate_error(pc, rc, ifn, err, errlen);
	/* rc > 0 is a warning (e.g. promiscuous mode not supported): go on. */
	if (pcap_datalink(pc) != DLT_EN10MB)
		return fail(err, errlen, QKD_PORT_EINVAL,
		            "receive on %s: not an Ethernet interface (link type %s)", ifn,
		            pcap_datalink_val_to_name(pcap_datalink(pc)));

	char expr[FILTER_MAX];
	struct bpf_program prog;
	if (make_filter(cfg, expr, sizeof expr) != 0)
		return fail(err, errlen, QKD_PORT_EINVAL, "receive on %s: filter too long", ifn);
	if (pcap_compile(pc, &prog, expr, 1, PCAP_NETMASK_UNKNOWN) != 0)
		return fail(err, errlen, QKD_PORT_EIO, "receive on %s: filter \"%s\": %s", ifn,
		            expr, pcap_geterr(pc));
	rc = pcap_setfilter(pc, &prog);
	pcap_freecode(&prog);
	if (rc != 0)
		return fail(err, errlen, QKD_PORT_EIO, "receive on %s: setting the filter: %s", ifn,
		            pcap_geterr(pc));
	if (pcap_setdirection(pc, PCAP_D_IN) != 0)
		return fail(err, errlen, QKD_PORT_EIO, "receive on %s: inbound only: %s", ifn,
		            pcap_geterr(pc));
	if (pcap_setnonblock(pc, 1, eb) != 0)
		return fail(err, errlen, QKD_PORT_EIO, "receive on %s: non-blocking mode: %s", ifn,
		            eb);
	if (pcap_get_selectable_fd(pc) < 0)
		return fail(err, errlen, QKD_PORT_EIO, "receive on %s: no descriptor to poll", ifn);
	return QKD_PORT_OK;
}

int qkd_port_fd(const struct qkd_port *port)
{
	/* pcap_get_selectable_fd() takes a non-const handle but only reads it. */
	return port != NULL && port->pcap != NULL ? pcap_get_selectable_fd(port->pcap) : -1;
}

int qkd_port_poll_timeout(const struct qkd_port *port)
{
	if (port == NULL || port->pcap == NULL)
		return -1;
	const struct timeval *tv = pcap_get_required_select_timeout(port->pcap);
	if (tv == NULL)
		return -1;
	long ms = (long)tv->tv_sec * 1000 + (long)(tv->tv_usec + 999) / 1000;
	return ms > 0 ? (int)ms : 1;
}

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
	struct qkd_port *p = (struct qkd_port *)(void *)user;
	struct qkd_port_frame f = {
	    .data = bytes,
	    .len = h->caplen,
	    .wire_len = h->len,
	    .ts = h->ts,
	};
	p->handed++;
	if (p->fn(p->ctx, &f))
		pcap_breakloop(p->pcap);
}

int qkd_port_drain(struct qkd_port *port, int max, qkd_port_rx_fn fn, void *ctx, char *err,
                   size_t errlen)
{
	if (port == NULL || port->pcap == NULL || fn == NULL)
		return fail(err, errlen, QKD_PORT_EINVAL, "port has no receive side");
	port->fn = fn;
	port->ctx = ctx;
	port->handed = 0;
	int rc = pcap_dispatch(port->pcap, max > 0 ? max : -1, on_packet, (u_char *)(void *)port);
	port->fn = NULL;
	port->ctx = NULL;
	if (rc < 0 && rc != PCAP_ERROR_BREAK)
		return fail(err, errlen, QKD_PORT_EIO, "receive on %s: %s", port->rx_name,
		            pcap_geterr(port->pcap));
	return port->handed;
}

/* Adds what a 32-bit counter grew by since its last reading (modulo 2^32, so
 * a wrap between two readings is counted right). */
static void accumulate(unsigned *raw, unsigned now, uint64_t *total)
{
	*total += (uint32_t)(now - *raw);
	*raw = now;
}

int qkd_port_stats(struct qkd_port *port, struct qkd_port_stats *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof *st);
	if (port == NULL || port->pcap == NULL)
		return fail(err, errlen, QKD_PORT_EINVAL, "port has no receive side");
	struct pcap_stat ps;
	if (pcap_stats(port->pcap, &ps) != 0)
		return fail(err, errlen, QKD_PORT_EIO, "receive on %s: statistics: %s",
		            port->rx_name, pcap_geterr(port->pcap));
	accumulate(&port->raw[0], ps.ps_recv, &port->total.received);
	accumulate(&port->raw[1], ps.ps_drop, &port->total.dropped);
	accumulate(&port->raw[2], ps.ps_ifdrop, &port->total.ifdropped);
	*st = port->total;
	return QKD_PORT_OK;
}

/* ---- send ---- */

/* libnet's messages end with a newline; copies msg without it into buf. */
static const char *chomp(const char *msg, char *buf, size_t cap)
{
	size_t n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	if (n >= cap)
		n = cap - 1;
	memmove(buf, msg, n); /* buf may be msg */
	buf[n] = '\0';
	return buf;
}

static int open_tx(struct qkd_port *p, const struct qkd_port_config *cfg, char *err, size_t errlen)
{
	const char *ifn = p->tx_name;
	char eb[LIBNET_ERRBUF_SIZE];
	eb[0] = '\0';
	errno = 0;
	p->net = libnet_init(LIBNET_LINK, ifn, eb);
	if (p->net == NULL) {
		int e = errno;
		chomp(eb, eb, sizeof eb);
		/* libnet 1.1.6 has no error codes: tell the causes apart by errno and text. */
		if (strstr(eb, "CAP_NET_RAW") != NULL)
			return fail(err, errlen, QKD_PORT_EPERM, "send on %s: %s", ifn, eb);
		if (e == EPERM || e == EACCES)
			return fail(err, errlen, QKD_PORT_EPERM, "send on %s: %s; " CAP_HINT, ifn,
			            eb);
		if (e == ENODEV || e == ENXIO || strstr(eb, "No such device") != NULL)
			return fail(err, errlen, QKD_PORT_ENODEV,
			            "send on %s: no such interface (%s)", ifn, eb);
		return fail(err, errlen, QKD_PORT_EIO, "send on %s: %s", ifn, eb);
	}
	/* Return 0 for every frame: the socket never queues what it never reads. */
	struct sock_filter drop_all = {BPF_RET | BPF_K, 0, 0, 0};
	struct sock_fprog prog = {.len = 1, .filter = &drop_all};
	if (setsockopt(libnet_getfd(p->net), SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0)
		return fail(err, errlen, QKD_PORT_EIO, "send on %s: socket filter: %s", ifn,
		            strerror(errno));
	if (cfg->src_set) {
		memcpy(p->src, cfg->src, 6);
	} else {
		const struct libnet_ether_addr *hw = libnet_get_hwaddr(p->net);
		if (hw == NULL)
			return fail(err, errlen, QKD_PORT_EIO, "send on %s: no MAC address: %s",
			            ifn, chomp(libnet_geterror(p->net), eb, sizeof eb));
		memcpy(p->src, hw->ether_addr_octet, 6);
	}
	memcpy(p->dst, cfg->dst, 6);
	p->vlan = cfg->vlan;
	p->pcp = cfg->pcp;
	p->ptag = 0;
	return QKD_PORT_OK;
}

int qkd_port_send(struct qkd_port *port, const uint8_t *pdu, size_t len, char *err, size_t errlen)
{
	if (port == NULL || port->net == NULL)
		return fail(err, errlen, QKD_PORT_EINVAL, "port has no send side");
	if (pdu == NULL || len == 0 || len > QKD_PDU_MAX)
		return fail(err, errlen, QKD_PORT_EINVAL,
		            "send on %s: PDU of %zu octets (need 1..%d)", port->tx_name, len,
		            QKD_PDU_MAX);
	/* Pad like a NIC would, so that captures on veth match the wire. No
	 * version 1 PDU is that short; this is for shorter future messages. */
	uint8_t padded[QKD_ETH_MIN];
	if (ETH_HDR_LEN + len < QKD_ETH_MIN) {
		memset(padded, 0, sizeof padded);
		memcpy(padded, pdu, len);
		pdu = padded;
		len = QKD_ETH_MIN - ETH_HDR_LEN;
	}
	libnet_ptag_t t;
	if (port->vlan != 0)
		t = libnet_build_802_1q(port->dst, port->src, TPID_8021Q, port->pcp, 0, port->vlan,
		                        QKD_ETHERTYPE, pdu, (uint32_t)len, port->net, port->ptag);
	else
		t = libnet_build_ethernet(port->dst, port->src, QKD_ETHERTYPE, pdu, (uint32_t)len,
		                          port->net, port->ptag);
	char eb[LIBNET_ERRBUF_SIZE];
	if (t == -1)
		return fail(err, errlen, QKD_PORT_EIO, "send on %s: building the frame: %s",
		            port->tx_name, chomp(libnet_geterror(port->net), eb, sizeof eb));
	port->ptag = t; /* later sends rewrite this header in place */
	int want = (int)(ETH_HDR_LEN + (port->vlan != 0 ? 4 : 0) + len);
	int n = libnet_write(port->net);
	if (n < 0)
		return fail(err, errlen, QKD_PORT_EIO, "send on %s: %s", port->tx_name,
		            chomp(libnet_geterror(port->net), eb, sizeof eb));
	if (n != want)
		return fail(err, errlen, QKD_PORT_EIO, "send on %s: %d of %d octets sent",
		            port->tx_name, n, want);
	return QKD_PORT_OK;
}

const uint8_t *qkd_port_src(const struct qkd_port *port)
{
	return port != NULL && port->net != NULL ? port->src : NULL;
}

/* ---- both ---- */

static int copy_name(char *dst, const char *src, const char *what, char *err, size_t errlen)
{
	size_t n = strlen(src);
	if (n == 0 || n >= NAME_MAX_LEN)
		return fail(err, errlen, QKD_PORT_EINVAL, "%s interface name \"%s\" is %s", what,
		            src, n == 0 ? "empty" : "too long");
	memcpy(dst, src, n + 1);
	return QKD_PORT_OK;
}

int qkd_port_open(struct qkd_port **out, const struct qkd_port_config *cfg, char *err,
                  size_t errlen)
{
	*out = NULL;
	if (cfg->rx_ifname == NULL && cfg->tx_ifname == NULL)
		return fail(err, errlen, QKD_PORT_EINVAL, "port needs a receive or send interface");
	if (cfg->vlan > VLAN_MAX || cfg->pcp > PCP_MAX || (cfg->vlan == 0 && cfg->pcp != 0))
		return fail(err, errlen, QKD_PORT_EINVAL,
		            "VLAN %u priority %u: need VLAN 1..%d, priority 0..%d (with a VLAN)",
		            cfg->vlan, cfg->pcp, VLAN_MAX, PCP_MAX);
	if (cfg->kernel_ident && cfg->oui > 0xFFFFFFu)
		return fail(err, errlen, QKD_PORT_EINVAL, "OUI 0x%X has more than 24 bits",
		            (unsigned)cfg->oui);
	struct qkd_port *p = calloc(1, sizeof *p);
	if (p == NULL)
		return fail(err, errlen, QKD_PORT_ENOMEM, "out of memory");
	int rc = QKD_PORT_OK;
	if (cfg->rx_ifname != NULL) {
		rc = copy_name(p->rx_name, cfg->rx_ifname, "receive", err, errlen);
		if (rc == QKD_PORT_OK)
			rc = open_rx(p, cfg, err, errlen);
	}
	if (rc == QKD_PORT_OK && cfg->tx_ifname != NULL) {
		rc = copy_name(p->tx_name, cfg->tx_ifname, "send", err, errlen);
		if (rc == QKD_PORT_OK)
			rc = open_tx(p, cfg, err, errlen);
	}
	if (rc != QKD_PORT_OK) {
		qkd_port_close(p);
		return rc;
	}
	*out = p;
	return QKD_PORT_OK;
}

void qkd_port_close(struct qkd_port *port)
{
	if (port == NULL)
		return;
	if (port->pcap != NULL)
		pcap_close(port->pcap);
	if (port->net != NULL)
		libnet_destroy(port->net);
	free(port);
}
