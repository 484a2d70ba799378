/*
 * daemon.c - qkdlinkd's core (see daemon.h).
 *
 * One libevent loop, one thread for it and one for the router:
 *  - the L2 port's descriptor: every frame goes through qkd_rx_frame() (the
 *    sixteen checks of protocol.md section 6), then to its channel's machine;
 *  - the KME client runs on the same loop (libcurl multi), so an enc_keys or
 *    dec_keys that takes seconds never delays a frame;
 *  - router work (stage, confirm, cancel, each with a read-back) runs on the
 *    nc_worker thread; its eventfd wakes the loop with the results;
 *  - one timer per channel, armed at rot_next_timer();
 *  - the control socket (control.h).
 * Each channel's machine (rotation.h) decides; this file only carries out the
 * actions and turns results back into events. Requests carry (channel,
 * generation, rotation), never a pointer to the channel, so a channel removed
 * by a reload while a request is out is simply not found when the answer
 * comes (a late key is wiped).
 */
#define _GNU_SOURCE /* accept4, setresuid */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <linux/capability.h>

#include "config.h"
#include "control.h"
#include "epoch.h"
#include "keyderive.h"
#include "kme.h"
#include "kme_parse.h"
#include "nc_push.h"
#include "nc_worker.h"
#include "port.h"
#include "rotation.h"
#include "rx.h"
#include "secret.h"
#include "state.h"

#define SHUTDOWN_GRACE_S 10 /* longest SIGTERM waits for router work */
#define CERT_CHECK_S 43200  /* certificate lifetime check period */
#define CONTROL_CLIENTS_MAX 16
#define CONTROL_TIMEOUT_S 5
#define NC_QUEUE_MAX 256
#define RX_PEERS_PER_CHANNEL 16
#define RING_CHECK_MS 1000 /* how often a busy port reads the kernel's drop count */
#define RING_LOG_MS 60000  /* at most one "receive ring full" line per minute */

struct qkdlinkd;

struct channel {
	struct qkdlinkd *d;
	uint32_t id;
	uint64_t gen;
	const struct config_channel *cc; /* into d->cfg */
	char self[QKD_SENDER_MAX + 1];
	char peers[CONFIG_PEERS_MAX][QKD_SENDER_MAX + 1];
	size_t npeers;
	char prefix[KD_PREFIX_LEN + 1];
	struct rot_config rc;
	struct rot_machine m;
	struct qkd_key txkey;
	bool txkey_set;
	uint8_t tx_secret_id;
	size_t cak_bytes;
	char *state_path; /* DIR/channel-N.json (allocated: PATH_MAX per channel is 4 KiB) */
	struct event *timer;
	/* the KME key between its arrival and the stage */
	bool have_key;
	uint32_t key_rot;
	char key_id[QKD_KEYID_MAX + 1];
	uint8_t key[KD_CAK_MAX_BYTES];
	bool has_metrics;
	struct rot_metrics metrics;
	uint64_t busy_us;             /* the loop's time in this channel's events and actions */
	uint64_t persist_us;          /* of which in state_save() (write, fsync, rename) */
	unsigned kme_out, router_out; /* requests out; router_out counts waiting ones */
	unsigned waiting;             /* stages waiting for the router */
	int64_t router_wait_ms;       /* master: when a start first found the router busy; 0: not */
	bool final_cancel;
	/* a state write failed: the actions after it in the same batch that
	 * depend on it are not carried out (protocol.md 10.3) */
	bool unsaved;
	char state_err[160]; /* the last failed write, until one succeeds */
};

struct ctl_client {
	struct qkdlinkd *d;
	struct bufferevent *bev;
	bool answered;
};

struct qkdlinkd {
	struct event_base *base;
	struct logger *log;
	struct qkdlinkd_opts opts;
	char config_path[PATH_MAX];
	struct agent_config cfg;
	struct qkd_port *port;
	struct event *port_ev;
	uint64_t ring_full;      /* frames the kernel dropped: the receive ring was full */
	uint64_t ring_logged;    /* ring_full at the last log line */
	int64_t ring_checked_ms; /* last reading of the kernel's counters */
	int64_t ring_logged_ms;
	struct qkd_rx rx;
	bool rx_set;
	struct kme_client *kme;
	struct nc_worker *nc;
	struct event *nc_ev;
	struct channel **ch;
	size_t nch;
	uint64_t next_gen;
	uint32_t epoch, seq;
	char epoch_path[PATH_MAX];
	int lfd;
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct event *listen_ev;
	unsigned nclients;
	struct event *cert_ev;
	bool cert_known;
	long cert_days, ca_days;
	bool stopping;
	struct event *grace_ev;
	unsigned jobs_out;      /* router jobs submitted, not yet reported */
	struct kreq *kreqs;     /* KME requests out (their callbacks may never come) */
	struct rjob *rjobs;     /* router jobs out (a stopped worker drops queued ones) */
	struct rdefer *rdefers; /* router failures waiting for the next turn */
	/* One confirmed commit at a time on the router: NETCONF keeps a single
	 * pending confirmed commit per datastore, so two channels must not stage
	 * at once (router_holder()). */
	struct rjob *waits; /* stages waiting for the router */
	char busy_why[64];  /* chan_router_busy()'s answer */
	bool waking;        /* router_wake() is handing the router over */
};

/* Intrusive lists of requests in flight, so that none leaks at the end. */
#define LIST_LINK(head, e)                                                                         \
	do {                                                                                       \
		(e)->prev = NULL;                                                                  \
		(e)->next = (head);                                                                \
		if (head)                                                                          \
			(head)->prev = (e);                                                        \
		(head) = (e);                                                                      \
	} while (0)
#define LIST_UNLINK(head, e)                                                                       \
	do {                                                                                       \
		if ((e)->prev)                                                                     \
			(e)->prev->next = (e)->next;                                               \
		else                                                                               \
			(head) = (e)->next;                                                        \
		if ((e)->next)                                                                     \
			(e)->next->prev = (e)->prev;                                               \
		(e)->next = (e)->prev = NULL;                                                      \
	} while (0)

/* ---- small helpers ---- */

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies src into dst[cap], cut if needed, always terminated. */
static void copy_str(char *dst, size_t cap, const char *src)
{
	if (cap == 0)
		return;
	size_t n = src ? strnlen(src, cap - 1) : 0;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

static struct channel *chan_find(const struct qkdlinkd *d, uint32_t id, uint64_t gen)
{
	for (size_t i = 0; i < d->nch; i++)
		if (d->ch[i]->id == id && (gen == 0 || d->ch[i]->gen == gen))
			return d->ch[i];
	return NULL;
}

static const char *role_word(const struct channel *c)
{
	return c->rc.role == QKD_ROLE_MASTER ? "master" : "slave";
}

static int rot_level(enum rot_log_level l)
{
	switch (l) {
	case ROT_LOG_ERR:
		return LOG_ERR;
	case ROT_LOG_WARN:
		return LOG_WARNING;
	case ROT_LOG_INFO:
		return LOG_INFO;
	default:
		return LOG_DEBUG;
	}
}

static void wipe_key(struct channel *c)
{
	kd_wipe(c->key, sizeof c->key);
	c->have_key = false;
	c->key_rot = 0;
	c->key_id[0] = '\0';
}

static void chan_handle(struct channel *c, const struct rot_event *ev);

/* ---- sending ---- */

static void chan_send(struct channel *c, const struct rot_action *a)
{
	struct qkdlinkd *d = c->d;
	char err[256];
	uint8_t pdu[QKD_PDU_MAX];

	if (!d->port || !c->txkey_set)
		return;
	if (d->seq == UINT32_MAX) {
		uint32_t e;
		if (qkd_epoch_next(d->epoch_path, &e, err, sizeof err) != 0) {
			log_msg(d->log, LOG_ERR, "sequence number exhausted and %s; frame not sent",
			        err);
			return;
		}
		d->epoch = e;
		d->seq = 0;
		log_info(d->log, "sequence number wrapped: sender epoch now %u", (unsigned)e);
	}
	struct qkd_msg msg = a->msg;
	msg.oui = d->cfg.port.oui;
	msg.pid = d->cfg.port.pid;
	msg.version = QKD_VERSION;
	msg.channel = c->id;
	msg.secret_id = c->tx_secret_id;
	msg.epoch = d->epoch;
	msg.seq = ++d->seq;
	msg.sender.ptr = d->cfg.sae_id;
	msg.sender.len = strlen(d->cfg.sae_id);
	int n = qkd_pdu_encode(&msg, &c->txkey, pdu, sizeof pdu, err, sizeof err);
	if (n < 0) {
		log_msg(d->log, LOG_ERR, "channel %u: cannot encode %s: %s", (unsigned)c->id,
		        qkd_msg_type_name(msg.type), err);
		return;
	}
	if (qkd_port_send(d->port, pdu, (size_t)n, err, sizeof err) != 0)
		log_warnx(d->log, "channel %u: %s not sent: %s", (unsigned)c->id,
		          qkd_msg_type_name(msg.type), err);
	else
		log_debug(d->log, "channel %u: sent %s seq %u", (unsigned)c->id,
		          qkd_msg_type_name(msg.type), (unsigned)msg.seq);
}

/* ---- KME ---- */

struct kreq {
	struct kreq *next, *prev; /* d->kreqs: freed at the end if never answered */
	struct qkdlinkd *d;
	uint32_t chan;
	uint64_t gen;
	uint32_t rotation;
	bool dec;
	char key_id[QKD_KEYID_MAX + 1]; /* dec: the key asked for */
	struct kme_error err;           /* a failure before sending, reported deferred */
};

static enum rot_kme_status kme_map(const struct kreq *r, const struct kme_error *e)
{
	if (!r->dec)
		return ROT_KME_ERROR;
	switch (e->code) {
	case KME_E_HTTP_400:
		return kme_msg_not_found(e->message) ? ROT_KME_NOT_FOUND : ROT_KME_ERROR;
	case KME_E_HTTP:
		return e->http_status == 404 ? ROT_KME_NOT_FOUND : ROT_KME_ERROR;
	case KME_E_KEY_LOST:
		return ROT_KME_KEY_LOST;
	case KME_E_TIMEOUT:
	case KME_E_TRANSPORT:
	case KME_E_PARSE:
		/* the KME may have handed the key out with an answer that never
		 * arrived whole; a request that never left cannot have */
		return e->maybe_delivered ? ROT_KME_KEY_LOST : ROT_KME_ERROR;
	default:
		return ROT_KME_ERROR;
	}
}

static void kme_cb(void *arg, const struct kme_error *err, struct kme_keys *keys)
{
	struct kreq *r = arg;
	struct qkdlinkd *d = r->d;
	LIST_UNLINK(d->kreqs, r);
	struct channel *c = chan_find(d, r->chan, r->gen);
	if (!c) {
		log_debug(d->log, "channel %u: KME answer for a channel no longer served, dropped",
		          (unsigned)r->chan);
		free(r);
		return; /* keys are wiped by the client when we return */
	}
	c->kme_out--;
	struct rot_event ev = {.type = ROT_EV_KME, .now_ms = now_ms(), .rotation = r->rotation};
	char detail[128] = "";
	if (err->code == KME_OK) {
		const struct kme_key *k = keys && keys->n >= 1 ? &keys->k[0] : NULL;
		if (!k) {
			ev.kme = ROT_KME_ERROR;
			copy_str(detail, sizeof detail, "KME answer without a key");
		} else if (k->len < c->cak_bytes) {
			ev.kme = r->dec ? ROT_KME_KEY_LOST : ROT_KME_ERROR;
			snprintf(detail, sizeof detail, "KME key of %zu octets, %zu needed", k->len,
			         c->cak_bytes);
		} else if (r->dec && strcmp(k->id, r->key_id) != 0) {
			ev.kme = ROT_KME_ERROR;
			copy_str(detail, sizeof detail, "KME answered another key_ID");
		} else if (d->stopping) {
			ev.kme = ROT_KME_ERROR;
			copy_str(detail, sizeof detail, "shutting down");
		} else {
			wipe_key(c);
			memcpy(c->key, k->key, c->cak_bytes);
			c->have_key = true;
			c->key_rot = r->rotation;
			copy_str(c->key_id, sizeof c->key_id, k->id);
			ev.kme = ROT_KME_OK;
			ev.key_id = c->key_id;
		}
	} else {
		ev.kme = kme_map(r, err);
		copy_str(detail, sizeof detail, err->text[0] ? err->text : kme_err_name(err->code));
		/* the machine logs the outcome with a detail cut to fit an ACK;
		 * this line keeps the KME's whole message */
		log_info(d->log, "channel %u %s: rotation %u: KME %s failed: %s", (unsigned)c->id,
		         role_word(c), (unsigned)r->rotation, r->dec ? "dec_keys" : "enc_keys",
		         err->text);
	}
	ev.detail = detail[0] ? detail : NULL;
	free(r);
	chan_handle(c, &ev);
	/* the machine took the key (a stage now holds the CAK) or ignored it */
	if (c->have_key && c->key_rot != c->m.rot)
		wipe_key(c);
}

static void kme_deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct kreq *r = arg;
	kme_cb(r, &r->err, NULL);
}

static void chan_kme(struct channel *c, const struct rot_action *a)
{
	struct qkdlinkd *d = c->d;
	struct kreq *r = calloc(1, sizeof *r);
	if (!r) {
		log_msg(d->log, LOG_ERR, "channel %u: out of memory for a KME request",
		        (unsigned)c->id);
		return; /* the machine's deadline fails the rotation */
	}
	r->d = d;
	r->chan = c->id;
	r->gen = c->gen;
	r->rotation = a->rotation;
	r->dec = a->type == ROT_ACT_KME_DEC;
	c->kme_out++;
	LIST_LINK(d->kreqs, r);
	int rc;
	if (d->stopping || !d->kme || c->unsaved) {
		r->err.code = KME_E_ARG;
		copy_str(r->err.text, sizeof r->err.text,
		         d->stopping  ? "shutting down"
		         : c->unsaved ? "state not saved"
		                      : "no KME client");
		rc = -1;
	} else if (r->dec) {
		copy_str(r->key_id, sizeof r->key_id, a->key_id);
		const char *ids[1] = {r->key_id};
		struct kme_dec_req rq = {.ids = ids, .n = 1, .size = a->key_bits};
		log_info(d->log, "channel %u slave: rotation %u key_ID %s: dec_keys from %s",
		         (unsigned)c->id, (unsigned)a->rotation, a->key_id, c->peers[0]);
		rc = kme_dec_keys_async(d->kme, c->peers[0], &rq, NULL, kme_cb, r, &r->err);
	} else {
		const char *add[CONFIG_PEERS_MAX];
		for (size_t i = 1; i < c->npeers; i++)
			add[i - 1] = c->peers[i];
		struct kme_enc_req rq = {.number = 1,
		                         .size = a->key_bits,
		                         .additional = c->npeers > 1 ? add : NULL,
		                         .nadditional = c->npeers - 1};
		log_info(d->log, "channel %u master: rotation %u: enc_keys for %s (%zu more)",
		         (unsigned)c->id, (unsigned)a->rotation, c->peers[0], c->npeers - 1);
		rc = kme_enc_keys_async(d->kme, c->peers[0], &rq, NULL, kme_cb, r, &r->err);
	}
	if (rc != 0) {
		/* answer on the next turn of the loop: never re-enter the machine */
		struct timeval zero = {0, 0};
		if (event_base_once(d->base, -1, EV_TIMEOUT, kme_deferred_cb, r, &zero) != 0) {
			log_msg(d->log, LOG_ERR, "channel %u: cannot schedule a KME failure",
			        (unsigned)c->id);
			c->kme_out--;
			LIST_UNLINK(d->kreqs, r);
			free(r);
		}
	}
}

/* ---- router (on the worker thread) ---- */

struct rjob {
	struct rjob *next, *prev; /* d->rjobs, on the loop thread only */
	struct qkdlinkd *d;       /* never touched on the worker */
	uint32_t chan;
	uint64_t gen;
	uint32_t rotation;
	enum rot_router_op op;
	bool final;            /* shutdown cancel, not reported to the machine */
	struct event *wait_ev; /* a stage waiting for the router (d->waits) */
	enum nc_cfg_ns ns;
	int confirm_timeout;
	char ca[CONFIG_CA_NAME_MAX + 1];
	char suite[24];
	char ckn[KD_CKN_LEN + 1];
	char cak[KD_CAK_HEX_MAX + 1];
	char persist[ROT_PERSIST_ID_MAX];
	/* provisioning (docs/configuration.md): the channel's interfaces */
	bool check;     /* the check at start: read only, not answered to the machine */
	bool provision; /* a stage that also creates a missing CA and bindings */
	char (*ifs)[CONFIG_ROUTER_IF_MAX + 1];
	size_t nifs;
	bool lacks;     /* check: the router lacks the CA or an interface binding */
	bool ran;       /* rjob_run was called (no connection: it never is) */
	char note[256]; /* what the survey found (logged at info) */
	/* out */
	enum rot_router_status result;
	char detail[QKD_DETAIL_MAX + 1];
	char text[512];
};

/* Which key the CA holds now: 1 the job's CKN, 0 another, -1 unknown. */
static int read_back(struct nc_session *s, struct rjob *j, struct nc_error *e)
{
	struct nc_macsec_state st;
	memset(&st, 0, sizeof st);
	if (nc_read_ca(s, "running", j->ca, NULL, j->ns, &st, e) != NC_OK)
		return -1;
	return st.found && strcasecmp(st.ckn, j->ckn) == 0 ? 1 : 0;
}

/* Appends "; "-separated text to the job's note (cut at its size). */
static void note_add(struct rjob *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note_add(struct rjob *j, const char *fmt, ...)
{
	size_t o = strlen(j->note);
	if (o > 0 && o + 2 < sizeof j->note) {
		memcpy(j->note + o, "; ", 3);
		o += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(j->note + o, sizeof j->note - o, fmt, ap);
	va_end(ap);
}

/* Provisioning: which of the channel's interfaces are bound to no CA (into
 * bind, when given), with a note on the CA and on interfaces bound to another
 * CA (never changed: provisioning touches nothing else). 1 if the router
 * lacks the CA or a binding, 0 if not, -1 if the router could not be read. */
static int prov_survey(struct nc_session *s, struct rjob *j, const char **bind, size_t *nbind,
                       struct nc_error *e)
{
	bool lacks = false;
	if (nbind)
		*nbind = 0;
	for (size_t i = 0; i < j->nifs; i++) {
		struct nc_macsec_state st;
		memset(&st, 0, sizeof st);
		if (nc_read_ca(s, "running", j->ca, j->ifs[i], j->ns, &st, e) != NC_OK)
			return -1;
		if (i == 0 && !st.found) {
			lacks = true;
			note_add(j, "CA %s missing", j->ca);
		}
		if (st.bound_ca[0] == '\0') {
			lacks = true;
			if (bind && nbind)
				bind[(*nbind)++] = j->ifs[i];
			note_add(j, "interface %s unbound", j->ifs[i]);
		} else if (strcmp(st.bound_ca, j->ca) != 0) {
			note_add(j, "interface %s bound to CA %s: left alone", j->ifs[i],
			         st.bound_ca);
		}
	}
	return lacks ? 1 : 0;
}

static enum nc_err rjob_run(struct nc_session **sp, void *arg, struct nc_error *e)
{
	struct rjob *j = arg;
	struct nc_session *s = *sp;
	char buf[512];
	enum nc_err rc = NC_OK;

	j->ran = true;
	j->result = ROT_ROUTER_FAILED;
	if (!s) {
		kd_wipe(j->cak, sizeof j->cak);
		copy_str(j->detail, sizeof j->detail, "no router session");
		return NC_E_CONNECT;
	}
	if (j->check) {
		int r = prov_survey(s, j, NULL, NULL, e);
		j->lacks = r == 1;
		return r < 0 ? e->code : NC_OK;
	}
	switch (j->op) {
	case ROT_OP_STAGE: {
		struct nc_macsec_ca ca = {
		    .name = j->ca, .cipher_suite = j->suite, .ckn = j->ckn, .cak = j->cak};
		const char *bind[CONFIG_IFACES_MAX];
		size_t nbind = 0;
		if (j->provision) {
			/* in the same confirmed commit as the key, so that a rollback
			 * undoes the provisioning too */
			if (prov_survey(s, j, bind, &nbind, e) < 0) {
				kd_wipe(j->cak, sizeof j->cak);
				rc = e->code;
				break;
			}
			if (nbind > 0) {
				ca.ifname = bind[0];
				ca.more_ifnames = bind + 1;
				ca.nmore_ifnames = nbind - 1;
			}
		}
		struct nc_push_opts o = {
		    .ns = j->ns, .confirm_timeout_s = j->confirm_timeout, .persist = j->persist};
		rc = nc_push_ca(s, &ca, &o, e);
		kd_wipe(j->cak, sizeof j->cak);
		if (rc == NC_OK) {
			j->result = ROT_ROUTER_OK;
		} else if (rc == NC_E_RPC || rc == NC_E_VERIFY || rc == NC_E_INVALID) {
			j->result = ROT_ROUTER_ROLLED_BACK; /* refused and discarded */
		}
		break;
	}
	case ROT_OP_CONFIRM:
	case ROT_OP_CANCEL: {
		enum nc_err op = j->op == ROT_OP_CONFIRM ? nc_confirm(s, j->persist, e)
		                                         : nc_cancel_commit(s, j->persist, e);
		if (op != NC_OK)
			snprintf(j->text, sizeof j->text, "%s: %s",
			         j->op == ROT_OP_CONFIRM ? "confirm" : "cancel-commit",
			         nc_error_format(e, buf, sizeof buf));
		struct nc_error rb;
		nc_error_clear(&rb);
		int has = read_back(s, j, &rb);
		if (has < 0) {
			if (op == NC_OK)
				*e = rb;
			rc = rb.code;
			break;
		}
		/* a running config with the new CKN proves a confirm only if no
		 * confirmed commit is pending any more: the confirm succeeded, or
		 * the server answered that none is (operation-failed, "not active",
		 * e.g. confirmed before a restart). After a lost reply or another
		 * refusal the stage may still be pending and roll back: unknown, so
		 * the machine confirms again. */
		bool settled = op == NC_OK || (op == NC_E_RPC && e->nrpc > 0 &&
		                               strcmp(e->rpc[0].tag, "operation-failed") == 0);
		rc = NC_OK;
		nc_error_clear(e);
		if (j->op == ROT_OP_CONFIRM)
			j->result = !has      ? ROT_ROUTER_ROLLED_BACK
			            : settled ? ROT_ROUTER_OK
			                      : ROT_ROUTER_FAILED;
		else
			j->result = has ? ROT_ROUTER_FAILED : ROT_ROUTER_OK;
		if (j->op == ROT_OP_CANCEL && has)
			copy_str(j->detail, sizeof j->detail, "new key still in running");
		if (j->op == ROT_OP_CONFIRM && j->result == ROT_ROUTER_FAILED)
			copy_str(j->detail, sizeof j->detail,
			         "confirm not acknowledged, the stage may still be pending");
		break;
	}
	}
	if (rc != NC_OK && !j->detail[0])
		copy_str(j->detail, sizeof j->detail, nc_strerror(rc));
	if (rc != NC_OK && !j->text[0])
		copy_str(j->text, sizeof j->text, nc_error_format(e, buf, sizeof buf));
	return rc;
}

static const char *op_name(enum rot_router_op op)
{
	return op == ROT_OP_STAGE ? "stage" : op == ROT_OP_CONFIRM ? "confirm" : "cancel";
}

static void check_quiet(struct qkdlinkd *d);
static void router_release(struct qkdlinkd *d);
static void router_wake(struct qkdlinkd *d);
static void rjob_free(struct rjob *j);

/* The provisioning check's answer (at start): a router that lacks the CA or
 * a binding holds no key the agent knows, so the machine forgets its key and
 * the next (fresh) rotation creates what is missing. */
static void prov_checked(struct qkdlinkd *d, struct channel *c, const struct rjob *j,
                         enum nc_err rc)
{
	if (!c || d->stopping)
		return;
	if (rc != NC_OK) {
		log_warnx(d->log,
		          "channel %u: provisioning check: router not read (%s); the stages "
		          "create what is missing",
		          (unsigned)c->id, j->text[0] ? j->text : nc_strerror(rc));
		return;
	}
	if (!j->lacks) {
		log_info(d->log,
		         "channel %u: provisioning check: CA %s and its bindings present%s%s",
		         (unsigned)c->id, j->ca, j->note[0] ? "; " : "", j->note);
		return;
	}
	log_warnx(d->log, "channel %u: provisioning check: router lacks part of CA %s: %s",
	          (unsigned)c->id, j->ca, j->note);
	char why[QKD_DETAIL_MAX + 1];
	snprintf(why, sizeof why, "router lacks CA %s or a binding", j->ca);
	struct rot_event ev = {.type = ROT_EV_NO_KEY, .now_ms = now_ms(), .detail = why};
	chan_handle(c, &ev);
}

static void nc_result_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct qkdlinkd *d = arg;
	struct nc_result res;
	while (d->nc && nc_worker_result(d->nc, &res) == 0) {
		struct rjob *j = res.arg;
		if (!j)
			continue;
		LIST_UNLINK(d->rjobs, j);
		d->jobs_out--;
		kd_wipe(j->cak, sizeof j->cak);
		if (!j->ran) {
			/* no session (connect, host key, authentication failed): nothing
			 * was sent, so a stage changed nothing; a confirm or cancel
			 * leaves the router as it was, unknown to us */
			j->result =
			    j->op == ROT_OP_STAGE ? ROT_ROUTER_ROLLED_BACK : ROT_ROUTER_FAILED;
		}
		if (res.rc != NC_OK) {
			char buf[512];
			if (!j->text[0])
				copy_str(j->text, sizeof j->text,
				         nc_error_format(&res.err, buf, sizeof buf));
			if (!j->detail[0])
				copy_str(j->detail, sizeof j->detail, nc_strerror(res.rc));
		}
		struct channel *c = chan_find(d, j->chan, j->gen);
		if (j->check) {
			prov_checked(d, c, j, res.rc);
			rjob_free(j);
			continue;
		}
		if (j->provision && j->note[0] && j->result == ROT_ROUTER_OK)
			log_info(d->log, "channel %u: rotation %u: provisioning in this stage: %s",
			         (unsigned)j->chan, (unsigned)j->rotation, j->note);
		if (j->text[0])
			log_warnx(d->log, "channel %u: rotation %u: router %s: %s",
			          (unsigned)j->chan, (unsigned)j->rotation, op_name(j->op),
			          j->text);
		if (c) {
			c->router_out--;
			if (j->final) {
				log_info(
				    d->log,
				    "channel %u master: rotation %u: cancelled at shutdown (%s)",
				    (unsigned)c->id, (unsigned)j->rotation,
				    j->result == ROT_ROUTER_OK ? "old key in running"
				                               : "router state unknown");
			} else {
				struct rot_event ev = {.type = ROT_EV_ROUTER,
				                       .now_ms = now_ms(),
				                       .rotation = j->rotation,
				                       .op = j->op,
				                       .router = j->result,
				                       .detail = j->detail[0] ? j->detail : NULL};
				chan_handle(c, &ev);
			}
		}
		rjob_free(j);
	}
	router_release(d);
	router_wake(d);
	if (d->stopping)
		check_quiet(d);
}

/* Hands a job to the worker. NULL, or why not (the job is then not linked). */
static const char *rjob_submit(struct channel *c, struct rjob *j)
{
	struct qkdlinkd *d = c->d;
	struct nc_error e;
	uint64_t id;
	nc_error_clear(&e);
	LIST_LINK(d->rjobs, j);
	if (nc_worker_submit(d->nc, rjob_run, j, &id, &e) != NC_OK) {
		LIST_UNLINK(d->rjobs, j);
		return "router queue full";
	}
	d->jobs_out++;
	if (j->check) /* read only: never holds the router's confirmed-commit slot */
		return NULL;
	c->router_out++;
	log_info(d->log, "channel %u %s: rotation %u: router %s (%s)", (unsigned)c->id,
	         role_word(c), (unsigned)j->rotation, op_name(j->op), j->persist);
	return NULL;
}

static void stage_wait_cb(evutil_socket_t fd, short what, void *arg);
static uint32_t router_holder(const struct qkdlinkd *d, uint32_t except);

/* Queues a stage until the router's owner is done (or the wait times out). */
static int stage_wait(struct channel *c, struct rjob *j, uint32_t holder)
{
	struct qkdlinkd *d = c->d;
	j->wait_ev = evtimer_new(d->base, stage_wait_cb, j);
	if (!j->wait_ev)
		return -1;
	uint32_t ms = c->rc.deadline_ms ? c->rc.deadline_ms / 2 : 15000;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
	evtimer_add(j->wait_ev, &tv);
	LIST_LINK(d->waits, j);
	c->router_out++;
	c->waiting++;
	if (holder)
		log_info(d->log,
		         "channel %u %s: rotation %u: stage waits for the router (channel %u is "
		         "rotating)",
		         (unsigned)c->id, role_word(c), (unsigned)j->rotation, (unsigned)holder);
	else
		log_info(d->log,
		         "channel %u %s: rotation %u: stage waits for the router (behind other "
		         "stages)",
		         (unsigned)c->id, role_word(c), (unsigned)j->rotation);
	return 0;
}

static void rjob_free(struct rjob *j)
{
	if (j->wait_ev)
		event_free(j->wait_ev);
	kd_wipe(j->cak, sizeof j->cak);
	free(j->ifs);
	free(j);
}

/* Copies the channel's interfaces into a provisioning job. 0 or -1. */
static int rjob_ifs(struct rjob *j, const struct config_channel *cc)
{
	j->ifs = calloc(cc->ninterfaces ? cc->ninterfaces : 1, sizeof *j->ifs);
	if (!j->ifs)
		return -1;
	for (size_t i = 0; i < cc->ninterfaces && i < CONFIG_IFACES_MAX; i++)
		copy_str(j->ifs[i], sizeof j->ifs[i], cc->interfaces[i]);
	j->nifs = cc->ninterfaces < CONFIG_IFACES_MAX ? cc->ninterfaces : CONFIG_IFACES_MAX;
	return 0;
}

static void stage_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct rjob *j = arg;
	struct qkdlinkd *d = j->d;
	LIST_UNLINK(d->waits, j);
	struct channel *c = chan_find(d, j->chan, j->gen);
	char why[QKD_DETAIL_MAX + 1];
	snprintf(why, sizeof why, "router busy: channel %u is rotating",
	         (unsigned)router_holder(d, j->chan));
	struct rot_event ev = {.type = ROT_EV_ROUTER,
	                       .now_ms = now_ms(),
	                       .rotation = j->rotation,
	                       .op = ROT_OP_STAGE,
	                       .router = ROT_ROUTER_BUSY,
	                       .detail = why};
	rjob_free(j);
	if (c) {
		c->router_out--;
		c->waiting--;
		log_warnx(d->log, "channel %u %s: rotation %u: stage not run: %s", (unsigned)c->id,
		          role_word(c), (unsigned)ev.rotation, why);
		if (!d->stopping)
			chan_handle(c, &ev);
	}
}

/* The channel that holds the router's confirmed-commit slot, other than
 * except, or 0: one with a router job running, or whose persisted rotation may
 * have a commit staged (staging, staged, confirming) and is not just waiting. */
static uint32_t router_holder(const struct qkdlinkd *d, uint32_t except)
{
	for (size_t i = 0; i < d->nch; i++) {
		const struct channel *c = d->ch[i];
		if (c->id == except)
			continue;
		if (c->router_out > c->waiting)
			return c->id;
		const struct chan_state *st = rot_persisted(&c->m);
		if (!c->waiting && st && st->pending_rotation != 0 &&
		    st->phase >= STATE_PHASE_STAGING)
			return c->id;
	}
	return 0;
}

/* rot_config.router_busy: NULL if a rotation of c could stage now, else why
 * not. A stage while another channel holds the router waits or is refused
 * (chan_router()), and one while stages wait queues behind them. */
static const char *chan_router_busy(void *arg)
{
	struct channel *c = arg;
	struct qkdlinkd *d = c->d;
	uint32_t holder = router_holder(d, c->id);
	if (holder)
		snprintf(d->busy_why, sizeof d->busy_why, "channel %u is rotating",
		         (unsigned)holder);
	else if (d->waits)
		snprintf(d->busy_why, sizeof d->busy_why, "stages wait for it");
	else {
		c->router_wait_ms = 0;
		return NULL;
	}
	/* the master now waits for the router: router_wake() hands it over in
	 * the order the masters began to wait */
	if (c->router_wait_ms == 0)
		c->router_wait_ms = now_ms();
	return d->busy_why;
}

/* True while no waiting master should be woken yet: a channel fetches a key
 * (master enc_keys, slave dec_keys) and will want the router within
 * milliseconds, or a master's rotation still holds its slaves' routers (their
 * confirm follows the own one by a few milliseconds; a rotation started now
 * would be refused there). */
static bool router_claimed(const struct qkdlinkd *d)
{
	for (size_t i = 0; i < d->nch; i++) {
		const struct chan_state *st = rot_persisted(&d->ch[i]->m);
		if (st && st->pending_rotation != 0 && st->phase == STATE_PHASE_FETCHING)
			return true;
		if (rot_slaves_busy(&d->ch[i]->m))
			return true;
	}
	return false;
}

/* A free router (no holder, no stage waiting, nobody fetching) goes to the
 * master whose start has waited for it longest: it starts now, instead of at
 * its next retry, when another may have taken the router first (scale finding
 * 12). Masters that no longer wait (started, skipped for another reason,
 * removed) are passed over and forgotten. */
static void router_wake(struct qkdlinkd *d)
{
	if (d->waking || d->stopping)
		return; /* the woken master's own events end here */
	d->waking = true;
	for (;;) {
		struct channel *first = NULL;
		for (size_t i = 0; i < d->nch; i++) {
			struct channel *c = d->ch[i];
			if (c->router_wait_ms == 0)
				continue;
			if (!rot_waits_for_router(&c->m))
				c->router_wait_ms = 0;
			else if (!first || c->router_wait_ms < first->router_wait_ms)
				first = c;
		}
		/* the cheap test first: most events find no master waiting */
		if (!first || d->waits || router_holder(d, 0) != 0 || router_claimed(d))
			break;
		int64_t now = now_ms();
		log_debug(d->log,
		          "channel %u master: router free, starting after %lld ms of waiting",
		          (unsigned)first->id, (long long)(now - first->router_wait_ms));
		first->router_wait_ms = 0;
		struct rot_event ev = {.type = ROT_EV_ROUTER_FREE, .now_ms = now};
		chan_handle(first, &ev);
	}
	d->waking = false;
}

/* Lets the next waiting stage in once nobody holds the router. */
static void router_release(struct qkdlinkd *d)
{
	while (d->waits && !d->stopping && router_holder(d, 0) == 0) {
		/* the highest channel first: every stage still waiting is then
		 * lower than the router's new holder, as when it began to wait, so
		 * a wait never points from a higher channel to a lower one and two
		 * agents cannot wait for each other's router (protocol.md 10.1) */
		struct rjob *j = d->waits;
		for (struct rjob *w = d->waits; w; w = w->next)
			if (w->chan > j->chan)
				j = w;
		LIST_UNLINK(d->waits, j);
		event_free(j->wait_ev);
		j->wait_ev = NULL;
		struct channel *c = chan_find(d, j->chan, j->gen);
		if (!c) {
			rjob_free(j);
			continue;
		}
		c->router_out--;
		c->waiting--;
		const char *fail = rjob_submit(c, j);
		if (fail) {
			struct rot_event ev = {.type = ROT_EV_ROUTER,
			                       .now_ms = now_ms(),
			                       .rotation = j->rotation,
			                       .op = ROT_OP_STAGE,
			                       .router = ROT_ROUTER_ROLLED_BACK,
			                       .detail = fail};
			rjob_free(j);
			chan_handle(c, &ev);
		}
	}
}

static void router_release_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	router_release(arg);
}

/* A router failure found before submitting, reported on the next turn. */
struct rdefer {
	struct rdefer *next, *prev;
	struct qkdlinkd *d;
	uint32_t chan;
	uint64_t gen;
	uint32_t rotation;
	enum rot_router_op op;
	enum rot_router_status router;
	char detail[QKD_DETAIL_MAX + 1];
};

static void router_deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct rdefer *df = arg;
	struct qkdlinkd *d = df->d;
	LIST_UNLINK(d->rdefers, df);
	struct channel *c = chan_find(d, df->chan, df->gen);
	if (c && !d->stopping) {
		struct rot_event ev = {.type = ROT_EV_ROUTER,
		                       .now_ms = now_ms(),
		                       .rotation = df->rotation,
		                       .op = df->op,
		                       .router = df->router,
		                       .detail = df->detail};
		chan_handle(c, &ev);
	}
	free(df);
}

static void chan_router(struct channel *c, const struct rot_action *a, bool final)
{
	struct qkdlinkd *d = c->d;
	struct rjob *j = calloc(1, sizeof *j);
	if (!j) {
		log_msg(d->log, LOG_ERR, "channel %u: out of memory for a router job",
		        (unsigned)c->id);
		return;
	}
	j->d = d;
	j->chan = c->id;
	j->gen = c->gen;
	j->rotation = a->rotation;
	j->final = final;
	j->op = a->type == ROT_ACT_ROUTER_STAGE     ? ROT_OP_STAGE
	        : a->type == ROT_ACT_ROUTER_CONFIRM ? ROT_OP_CONFIRM
	                                            : ROT_OP_CANCEL;
	j->ns = d->cfg.router.ns == CONFIG_NS_JUNOS ? NC_CFG_NS_NONE : NC_CFG_NS_YANG;
	j->confirm_timeout = (int)a->confirm_timeout_s;
	copy_str(j->ca, sizeof j->ca, c->cc->ca_name);
	copy_str(j->suite, sizeof j->suite, c->cc->cipher_name);
	copy_str(j->ckn, sizeof j->ckn, a->ckn);
	copy_str(j->persist, sizeof j->persist, a->persist_id);

	const char *fail = NULL;
	if (j->op == ROT_OP_STAGE && c->cc->provisioning) {
		j->provision = true;
		if (rjob_ifs(j, c->cc) != 0)
			fail = "out of memory";
	}
	if (j->op == ROT_OP_STAGE) {
		char err[128];
		if (d->stopping)
			fail = "shutting down";
		else if (!c->have_key || c->key_rot != a->rotation ||
		         strcmp(c->key_id, a->key_id) != 0)
			fail = "no KME key held for this rotation";
		else if (kd_cak(c->key, c->cak_bytes, c->cak_bytes, j->cak, sizeof j->cak, err,
		                sizeof err) != 0)
			fail = "CAK derivation failed";
		wipe_key(c); /* the CAK is in the job now, or nowhere */
	} else if (d->stopping && !final && j->op == ROT_OP_CONFIRM) {
		/* the decision is persisted ("confirming"): the next start confirms */
		fail = "shutting down";
	}
	if (!fail && c->unsaved && j->op != ROT_OP_CANCEL)
		fail = "state not saved"; /* a cancel is always safe */
	if (!fail && !d->nc)
		fail = "no router worker";
	uint32_t holder = 0;
	bool busy = false;
	if (!fail && j->op == ROT_OP_STAGE && (holder = router_holder(d, c->id)) == 0 && d->waits) {
		/* nobody holds the router, but stages wait for it: queue behind
		 * them, router_release() picks the highest */
		struct timeval zero = {0, 0};
		if (stage_wait(c, j, 0) == 0) {
			/* on the next turn: never re-enter a machine from its actions */
			if (event_base_once(d->base, -1, EV_TIMEOUT, router_release_cb, d, &zero) !=
			    0)
				log_msg(d->log, LOG_ERR,
				        "channel %u: cannot schedule the router queue",
				        (unsigned)c->id);
			return;
		}
		fail = "out of memory";
	}
	if (!fail && j->op == ROT_OP_STAGE && holder != 0) {
		/* the lower channel waits, the higher gives way: two agents whose
		 * channels cross (opposite roles) cannot wait for each other */
		char why[QKD_DETAIL_MAX + 1];
		if (c->id > holder) {
			snprintf(why, sizeof why, "router busy: channel %u is rotating",
			         (unsigned)holder);
			fail = why;
			busy = true;
		} else if (stage_wait(c, j, holder) == 0) {
			return;
		} else {
			fail = "out of memory";
		}
		if (fail) {
			copy_str(j->detail, sizeof j->detail, fail);
			fail = j->detail;
		}
	}
	if (!fail) {
		fail = rjob_submit(c, j);
		if (!fail)
			return;
	}
	enum rot_router_op op = j->op;
	char failbuf[QKD_DETAIL_MAX + 1];
	copy_str(failbuf, sizeof failbuf, fail);
	fail = failbuf;
	kd_wipe(j->cak, sizeof j->cak);
	rjob_free(j);
	log_msg(d->log, busy ? LOG_INFO : LOG_WARNING,
	        "channel %u %s: rotation %u: router %s not run: %s", (unsigned)c->id, role_word(c),
	        (unsigned)a->rotation, op_name(op), fail);
	if (d->stopping || final)
		return;
	/* the machine expects one answer per request: give it on the next turn of
	 * the loop, never from inside the batch of actions being carried out */
	struct rdefer *df = calloc(1, sizeof *df);
	struct timeval zero = {0, 0};
	if (!df) {
		log_msg(d->log, LOG_ERR, "channel %u: out of memory", (unsigned)c->id);
		return;
	}
	df->d = d;
	df->chan = c->id;
	df->gen = c->gen;
	df->rotation = a->rotation;
	df->op = op;
	df->router = op != ROT_OP_STAGE ? ROT_ROUTER_FAILED
	             : busy             ? ROT_ROUTER_BUSY
	                                : ROT_ROUTER_ROLLED_BACK;
	copy_str(df->detail, sizeof df->detail, fail);
	LIST_LINK(d->rdefers, df);
	if (event_base_once(d->base, -1, EV_TIMEOUT, router_deferred_cb, df, &zero) != 0) {
		LIST_UNLINK(d->rdefers, df);
		free(df);
		log_msg(d->log, LOG_ERR, "channel %u: cannot schedule a router failure",
		        (unsigned)c->id);
	}
}

/* ---- persisting ---- */

static void chan_persist(struct channel *c, const struct chan_state *st)
{
	struct qkdlinkd *d = c->d;
	struct chan_state s = *st;
	char err[512];

	s.epoch = d->epoch;
	s.nmarks = 0;
	for (size_t i = 0; i < d->rx.replay.n && s.nmarks < STATE_MARKS_MAX; i++) {
		const struct qkd_replay_mark *mk = &d->rx.replay.marks[i];
		if (mk->channel != c->id)
			continue;
		struct state_mark *sm = &s.marks[s.nmarks++];
		memcpy(sm->sender, mk->sender, mk->sender_len);
		sm->sender[mk->sender_len] = '\0';
		sm->epoch = mk->epoch;
		sm->seq = mk->seq;
	}
	int64_t t0 = now_us();
	if (state_save(c->state_path, &s, err, sizeof err) != STATE_OK) {
		log_msg(d->log, LOG_ERR,
		        "channel %u: state not saved: %s; what depends on it is not done",
		        (unsigned)c->id, err);
		c->unsaved = true;
		copy_str(c->state_err, sizeof c->state_err, err);
	} else if (c->state_err[0]) {
		log_info(d->log, "channel %u: state saved again", (unsigned)c->id);
		c->state_err[0] = '\0';
	}
	int64_t t1 = now_us();
	if (t1 > t0)
		c->persist_us += (uint64_t)(t1 - t0);
}

/* ---- the machine ---- */

static void chan_arm(struct channel *c)
{
	if (!c->timer)
		return;
	int64_t t = rot_next_timer(&c->m);
	int64_t now = now_ms();
	int64_t delta = t - now;
	if (delta < 0)
		delta = 0;
	if (delta > 3600 * 1000)
		delta = 3600 * 1000;
	struct timeval tv = {.tv_sec = (time_t)(delta / 1000),
	                     .tv_usec = (suseconds_t)(delta % 1000) * 1000};
	evtimer_add(c->timer, &tv);
}

static void chan_exec(struct channel *c, const struct rot_actions *out)
{
	struct qkdlinkd *d = c->d;
	c->unsaved = false;
	for (size_t i = 0; i < out->n; i++) {
		const struct rot_action *a = &out->a[i];
		switch (a->type) {
		case ROT_ACT_SEND:
			/* a frame that tells what was not saved is not sent: the
			 * peers retransmit, and are answered once it is saved */
			if (!c->unsaved)
				chan_send(c, a);
			break;
		case ROT_ACT_KME_ENC:
		case ROT_ACT_KME_DEC:
			chan_kme(c, a);
			break;
		case ROT_ACT_ROUTER_STAGE:
		case ROT_ACT_ROUTER_CONFIRM:
		case ROT_ACT_ROUTER_CANCEL:
			chan_router(c, a, false);
			break;
		case ROT_ACT_PERSIST:
			if (a->state)
				chan_persist(c, a->state);
			break;
		case ROT_ACT_LOG:
			/* the machine's line starts "channel C ROLE: " */
			log_msg(d->log, rot_level(a->level), "%s", a->text);
			break;
		case ROT_ACT_METRICS: {
			const struct rot_metrics *m = &a->metrics;
			c->metrics = *m;
			c->has_metrics = true;
			log_info(d->log,
			         "channel %u %s: rotation %u metrics: result %s duration_ms %lld "
			         "skew_ms %lld confirm_skew_ms %lld diverged_ms %lld kme_ms %lld "
			         "stage_ms %lld ack_ms %lld confirm_ms %lld",
			         (unsigned)c->id, role_word(c), (unsigned)m->rotation,
			         qkd_result_name(m->result), (long long)m->duration_ms,
			         (long long)m->skew_ms, (long long)m->confirm_skew_ms,
			         (long long)m->diverged_ms, (long long)m->kme_ms,
			         (long long)m->stage_ms, (long long)m->ack_ms,
			         (long long)m->confirm_ms);
			break;
		}
		}
	}
}

static void chan_handle(struct channel *c, const struct rot_event *ev)
{
	int64_t t0 = now_us();
	struct rot_actions *out = malloc(sizeof *out);
	char err[256];
	if (!out) {
		log_msg(c->d->log, LOG_ERR, "channel %u: out of memory", (unsigned)c->id);
		return;
	}
	if (rot_handle(&c->m, ev, out, err, sizeof err) != 0)
		log_msg(c->d->log, LOG_ERR, "channel %u: state machine: %s", (unsigned)c->id, err);
	chan_exec(c, out);
	free(out);
	chan_arm(c);
	router_release(c->d);
	router_wake(c->d);
	/* the agent's own share of a rotation (performance.md 6): the machine and
	 * its actions (persist with fsync, frames, requests handed out) */
	int64_t t1 = now_us();
	if (t1 > t0)
		c->busy_us += (uint64_t)(t1 - t0);
}

static void chan_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct channel *c = arg;
	if (c->d->stopping)
		return;
	struct rot_event ev = {.type = ROT_EV_TICK, .now_ms = now_ms()};
	chan_handle(c, &ev);
}

/* ---- channels: create, start, free ---- */

static void chan_free(struct channel *c)
{
	if (!c)
		return;
	if (c->timer)
		event_free(c->timer);
	free(c->state_path);
	if (c->txkey_set)
		qkd_key_clear(&c->txkey);
	wipe_key(c);
	free(c);
}

/* Builds a channel from its config (not started). NULL with err. */
static struct channel *chan_new(struct qkdlinkd *d, const struct config_channel *cc, char *err,
                                size_t errlen)
{
	struct channel *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "channel %u: out of memory", (unsigned)cc->id);
		return NULL;
	}
	c->d = d;
	c->id = cc->id;
	c->gen = ++d->next_gen;
	c->cc = cc;
	copy_str(c->self, sizeof c->self, d->cfg.sae_id);
	c->npeers = cc->npeers < CONFIG_PEERS_MAX ? cc->npeers : CONFIG_PEERS_MAX;
	for (size_t i = 0; i < c->npeers; i++)
		copy_str(c->peers[i], sizeof c->peers[i], cc->peers[i]);
	copy_str(c->prefix, sizeof c->prefix, cc->ckn_prefix);
	c->cak_bytes = kd_cak_bytes(cc->cipher_name);
	if (c->cak_bytes == 0 || c->cak_bytes > KD_CAK_MAX_BYTES) {
		snprintf(err, errlen, "channel %u: unknown cipher suite %s", (unsigned)cc->id,
		         cc->cipher_name);
		goto fail;
	}
	struct rot_config *rc = &c->rc;
	rc->channel = cc->id;
	rc->role = (uint8_t)cc->role;
	rc->self = c->self;
	if (cc->role == QKD_ROLE_SLAVE) {
		rc->master = c->peers[0];
	} else {
		for (size_t i = 0; i < c->npeers && i < ROT_SLAVES_MAX; i++)
			rc->slaves[i] = c->peers[i];
		rc->nslaves = c->npeers;
	}
	switch (cc->ckn) {
	case CONFIG_CKN_PREFIX:
		rc->conv = KD_CONV_PREFIX;
		break;
	case CONFIG_CKN_SHA256:
	default:
		rc->conv = KD_CONV_SHA256;
		break;
	}
	rc->prefix = c->prefix;
	rc->key_bits = (unsigned)c->cak_bytes * 8;
	rc->hello_s = (uint16_t)d->cfg.hello_interval;
	rc->interval_s = cc->rotation_interval;
	rc->fresh_if_no_key = cc->provisioning || cc->rotation_interval > 0;
	rc->router_busy = chan_router_busy;
	rc->router_arg = c;
	rc->confirm_timeout_s = d->cfg.router.confirm_timeout;
	/* a short T_c needs a shorter deadline D and retransmission cap, so that
	 * the decision still lands before the routers roll back (protocol.md 10.2) */
	int64_t tc = (int64_t)rc->confirm_timeout_s * 1000;
	int64_t window = tc - (tc / 4 < 10000 ? tc / 4 : 10000);
	if (30000 + 2 * 4000 >= window) {
		rc->rto_max_ms = (uint32_t)(window / 8 < 4000 ? window / 8 : 4000);
		rc->rto_ms = rc->rto_max_ms < 250 ? rc->rto_max_ms : 250;
		rc->deadline_ms = (uint32_t)(window / 2);
		log_debug(d->log, "channel %u: confirm timeout %u s: deadline %u ms, rto max %u ms",
		          (unsigned)cc->id, (unsigned)rc->confirm_timeout_s,
		          (unsigned)rc->deadline_ms, (unsigned)rc->rto_max_ms);
	}
	if (rot_init(&c->m, rc, err, errlen) != 0)
		goto fail;

	const struct config_secret *sec = &cc->secrets[cc->current_secret];
	char kerr[512];
	if (qkd_key_load(&c->txkey, sec->file, kerr, sizeof kerr) != 0) {
		snprintf(err, errlen, "channel %u: %s", (unsigned)cc->id, kerr);
		goto fail;
	}
	c->txkey_set = true;
	c->tx_secret_id = sec->id;
	char path[PATH_MAX];
	if (state_path(d->cfg.state_dir, cc->id, path, sizeof path) != 0) {
		snprintf(err, errlen, "channel %u: state path too long", (unsigned)cc->id);
		goto fail;
	}
	c->state_path = strdup(path);
	if (!c->state_path) {
		snprintf(err, errlen, "channel %u: out of memory", (unsigned)cc->id);
		goto fail;
	}
	c->timer = evtimer_new(d->base, chan_timer_cb, c);
	if (!c->timer) {
		snprintf(err, errlen, "channel %u: cannot create its timer", (unsigned)cc->id);
		goto fail;
	}
	return c;
fail:
	chan_free(c);
	return NULL;
}

/* Provisioning on: reads the CA and its bindings (prov_checked() answers). */
static void prov_check_submit(struct channel *c)
{
	struct qkdlinkd *d = c->d;
	struct rjob *j = calloc(1, sizeof *j);
	if (!j || rjob_ifs(j, c->cc) != 0) {
		if (j)
			rjob_free(j);
		log_msg(d->log, LOG_ERR, "channel %u: out of memory for the provisioning check",
		        (unsigned)c->id);
		return;
	}
	j->d = d;
	j->chan = c->id;
	j->gen = c->gen;
	j->check = true;
	j->ns = d->cfg.router.ns == CONFIG_NS_JUNOS ? NC_CFG_NS_NONE : NC_CFG_NS_YANG;
	copy_str(j->ca, sizeof j->ca, c->cc->ca_name);
	const char *fail = rjob_submit(c, j);
	if (fail) {
		rjob_free(j);
		log_warnx(d->log, "channel %u: provisioning check not run: %s", (unsigned)c->id,
		          fail);
	}
}

/* Loads the state, restores the replay marks, starts the machine. */
static void chan_start(struct channel *c)
{
	struct qkdlinkd *d = c->d;
	struct chan_state st;
	char err[512];
	const struct chan_state *use = NULL;
	bool lost = false; /* a state file was there and could not be used */

	enum state_err se = state_load(c->state_path, &st, err, sizeof err);
	switch (se) {
	case STATE_OK:
		use = &st;
		break;
	case STATE_E_MISSING:
		log_info(d->log, "channel %u %s: no state yet: first start", (unsigned)c->id,
		         role_word(c));
		break;
	case STATE_E_CORRUPT: {
		char qerr[512];
		lost = true;
		log_msg(d->log, LOG_ERR, "channel %u: state refused: %s; starting empty",
		        (unsigned)c->id, err);
		if (state_quarantine(c->state_path, qerr, sizeof qerr) != 0)
			log_msg(d->log, LOG_ERR, "channel %u: %s", (unsigned)c->id, qerr);
		break;
	}
	default:
		lost = true;
		log_msg(d->log, LOG_ERR, "channel %u: state unreadable: %s; starting empty",
		        (unsigned)c->id, err);
		break;
	}
	if (use) {
		for (size_t i = 0; i < use->nmarks; i++) {
			struct qkd_str s = {use->marks[i].sender, strlen(use->marks[i].sender)};
			if (qkd_replay_update(&d->rx.replay, c->id, &s, use->marks[i].epoch,
			                      use->marks[i].seq) != 0)
				log_warnx(d->log,
				          "channel %u: replay table full, mark of %s not restored",
				          (unsigned)c->id, use->marks[i].sender);
		}
	}
	struct rot_actions *out = malloc(sizeof *out);
	if (!out) {
		log_msg(d->log, LOG_ERR, "channel %u: out of memory", (unsigned)c->id);
		return;
	}
	if (rot_start(&c->m, use, now_ms(), out, err, sizeof err) != 0) {
		char qerr[512];
		lost = true;
		log_msg(d->log, LOG_ERR, "channel %u: state refused: %s; starting empty",
		        (unsigned)c->id, err);
		if (state_quarantine(c->state_path, qerr, sizeof qerr) != 0)
			log_msg(d->log, LOG_ERR, "channel %u: %s", (unsigned)c->id, qerr);
		if (rot_start(&c->m, NULL, now_ms(), out, err, sizeof err) != 0)
			log_msg(d->log, LOG_ERR, "channel %u: cannot start: %s", (unsigned)c->id,
			        err);
	}
	log_info(d->log, "channel %u %s: started (CA %s, current key_ID %s)", (unsigned)c->id,
	         role_word(c), c->cc->ca_name,
	         c->m.st.current_key_id[0] ? c->m.st.current_key_id : "(none)");
	chan_exec(c, out);
	free(out);
	if (lost) {
		/* recover from the router and the peers: no key is known, so the
		 * master rotates afresh as soon as every peer is heard */
		struct rot_event ev = {.type = ROT_EV_NO_KEY,
		                       .now_ms = now_ms(),
		                       .detail = "state file lost (kept aside)"};
		chan_handle(c, &ev);
	}
	chan_arm(c);
	if (c->cc->provisioning && d->nc)
		prov_check_submit(c);
}

/* ---- frames ---- */

static bool frame_cb(void *ctx, const struct qkd_port_frame *f)
{
	struct qkdlinkd *d = ctx;
	struct qkd_decoded dec;
	enum qkd_drop r = qkd_rx_frame(&d->rx, f->data, f->len, &dec);
	if (r != QKD_OK) {
		uint64_t suppressed = 0;
		if (qkd_rx_should_log(&d->rx, r, now_ms() / 1000, &suppressed))
			log_warnx(d->log,
			          "frame dropped: %s (%" PRIu64 " more since the last line)",
			          qkd_drop_name(r), suppressed);
		return false;
	}
	struct channel *c = chan_find(d, dec.msg.channel, 0);
	if (!c)
		return false; /* rx only knows configured channels */
	struct rot_event ev = {.type = ROT_EV_FRAME, .now_ms = now_ms(), .msg = &dec.msg};
	chan_handle(c, &ev);
	return false;
}

/* Reads into ring_full the kernel's count of frames dropped because the
 * receive ring was full (a flood, or the agent kept from the CPU): genuine
 * frames lost there are never seen, only retransmitted. 0 or -1. */
static int ring_read(struct qkdlinkd *d)
{
	struct qkd_port_stats ps;
	char err[256];
	if (qkd_port_stats(d->port, &ps, err, sizeof err) != 0) {
		log_debug(d->log, "port: %s", err);
		return -1;
	}
	d->ring_full = ps.dropped;
	return 0;
}

/* ring_read(), and a warning when the count grew: at most once per RING_LOG_MS. */
static void ring_check(struct qkdlinkd *d, int64_t now)
{
	d->ring_checked_ms = now;
	if (ring_read(d) != 0 || d->ring_full == d->ring_logged ||
	    (d->ring_logged_ms != 0 && now - d->ring_logged_ms < RING_LOG_MS))
		return;
	log_warnx(d->log,
	          "port %s: the kernel dropped %" PRIu64
	          " frames, the receive ring was full (a flood, or the agent starved of CPU); "
	          "lost frames are retransmitted",
	          d->cfg.port.rx_interface, d->ring_full - d->ring_logged);
	d->ring_logged = d->ring_full;
	d->ring_logged_ms = now;
}

static void port_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct qkdlinkd *d = arg;
	char err[256];
	if (d->stopping)
		return;
	int n = qkd_port_drain(d->port, 64, frame_cb, d, err, sizeof err);
	int64_t now = now_ms();
	if (now - d->ring_checked_ms >= RING_CHECK_MS)
		ring_check(d, now);
	if (n < 0)
		log_msg(d->log, LOG_ERR, "port: %s", err);
	else if (n == 64) {
		/* more may wait: come back after the other events */
		event_active(d->port_ev, EV_READ, 0);
	}
}

/* ---- receive side: secrets of every channel ---- */

static int rx_build(struct qkdlinkd *d, struct qkd_rx *rx, const struct agent_config *cfg,
                    char *err, size_t errlen)
{
	size_t nsec = 0;
	for (size_t i = 0; i < cfg->nchannels; i++)
		nsec += cfg->channels[i].nsecrets;
	struct qkd_ident ident = {.oui = cfg->port.oui, .pid = cfg->port.pid};
	if (qkd_rx_init(rx, &ident, nsec ? nsec : 1,
	                (cfg->nchannels ? cfg->nchannels : 1) * RX_PEERS_PER_CHANNEL) != 0) {
		snprintf(err, errlen, "out of memory for the receive tables");
		return -1;
	}
	for (size_t i = 0; i < cfg->nchannels; i++) {
		const struct config_channel *cc = &cfg->channels[i];
		for (size_t k = 0; k < cc->nsecrets; k++) {
			struct qkd_key key;
			char kerr[512];
			if (qkd_key_load(&key, cc->secrets[k].file, kerr, sizeof kerr) != 0) {
				snprintf(err, errlen, "channel %u: %s", (unsigned)cc->id, kerr);
				qkd_rx_free(rx);
				return -1;
			}
			if (qkd_rx_add_secret(rx, cc->id, cc->secrets[k].id, &key) != 0) {
				qkd_key_clear(&key);
				snprintf(err, errlen, "channel %u: secret %u: cannot add it",
				         (unsigned)cc->id, (unsigned)cc->secrets[k].id);
				qkd_rx_free(rx);
				return -1;
			}
		}
	}
	(void)d;
	return 0;
}

/* ---- certificate lifetime ---- */

static void cert_check(struct qkdlinkd *d)
{
	struct kme_error e;
	long cd = 0, ad = 0;
	if (!d->kme)
		return;
	if (kme_client_cert_days(d->kme, &cd, &ad, &e) != 0) {
		log_warnx(d->log, "kme: cannot read certificate lifetimes: %s", e.text);
		d->cert_known = false;
		return;
	}
	d->cert_known = true;
	d->cert_days = cd;
	d->ca_days = ad;
	unsigned w = d->cfg.kme.cert_warn_days;
	if (w && cd < (long)w)
		log_warnx(d->log,
		          "kme: client certificate %s expires in %ld days (warning below %u)",
		          d->cfg.kme.cert_file, cd, w);
	if (w && ad < (long)w)
		log_warnx(d->log, "kme: CA certificate %s expires in %ld days (warning below %u)",
		          d->cfg.kme.ca_file, ad, w);
}

static void cert_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct qkdlinkd *d = arg;
	cert_check(d);
	struct timeval tv = {CERT_CHECK_S, 0};
	evtimer_add(d->cert_ev, &tv);
}

/* ---- control socket ---- */

/* control_status.channel: channel i as the status shows it */
static void status_channel(void *arg, size_t i, struct control_channel *v)
{
	struct qkdlinkd *d = arg;
	struct channel *c = d->ch[i];
	v->id = c->id;
	v->ca_name = c->cc->ca_name;
	rot_status(&c->m, now_ms(), &v->st);
	v->has_metrics = c->has_metrics;
	v->metrics = c->metrics;
	v->busy_us = c->busy_us;
	v->persist_us = c->persist_us;
	v->state_error = c->state_err[0] ? c->state_err : NULL;
}

static int status_out(const char *buf, size_t size, void *arg)
{
	return evbuffer_add(arg, buf, size);
}

/* The status, straight into out, one channel at a time (control.h). 0, or -1
 * with part of it written: the caller then closes the client, which frees out. */
static int status_write(struct qkdlinkd *d, struct evbuffer *out)
{
	struct control_status s = {.sae_id = d->cfg.sae_id,
	                           .nchannels = d->nch,
	                           .channel = status_channel,
	                           .channel_arg = d,
	                           .cert_known = d->cert_known,
	                           .cert_days = d->cert_days,
	                           .ca_days = d->ca_days,
	                           .warn_days = d->cfg.kme.cert_warn_days};
	memcpy(s.frames, d->rx.count, sizeof s.frames);
	(void)ring_read(d); /* on failure, the last count read */
	s.ring_full = d->ring_full;
	if (control_status_write(&s, status_out, out) != 0 || evbuffer_add(out, "\n", 1) != 0)
		return -1;
	return 0;
}

static void ctl_close(struct ctl_client *cl)
{
	cl->d->nclients--;
	bufferevent_free(cl->bev);
	free(cl);
}

static void ctl_write_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client *cl = arg;
	if (cl->answered && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		ctl_close(cl);
}

static void ctl_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	ctl_close(arg);
}

static json_t *ctl_do(struct qkdlinkd *d, const struct control_request *rq)
{
	char err[256];
	switch (rq->cmd) {
	case CONTROL_STATUS:
		return control_reply("internal: status is written by status_write()");
	case CONTROL_ROTATE: {
		struct channel *c = chan_find(d, rq->channel, 0);
		if (!c) {
			snprintf(err, sizeof err, "no channel %u", (unsigned)rq->channel);
			return control_reply(err);
		}
		if (c->rc.role != QKD_ROLE_MASTER) {
			snprintf(err, sizeof err,
			         "channel %u: this agent is its slave: rotate it on the master",
			         (unsigned)rq->channel);
			return control_reply(err);
		}
		log_info(d->log, "channel %u master: rotation requested by the operator",
		         (unsigned)c->id);
		struct rot_event ev = {.type = ROT_EV_ROTATE_NOW, .now_ms = now_ms()};
		chan_handle(c, &ev);
		return control_reply(NULL);
	}
	case CONTROL_RELOAD:
		log_info(d->log, "reload requested on the control socket");
		qkdlinkd_reload(d);
		return control_reply(NULL);
	}
	return control_reply("unknown command");
}

static void ctl_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client *cl = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	if (cl->answered) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	size_t len = 0;
	char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
	json_t *reply = NULL;
	if (!line) {
		if (evbuffer_get_length(in) <= CONTROL_LINE_MAX)
			return; /* wait for the rest */
		reply = control_reply("request line too long");
	} else {
		struct control_request rq;
		char err[256];
		if (control_parse(line, len, &rq, err, sizeof err) != 0) {
			reply = control_reply(err);
		} else if (rq.cmd == CONTROL_STATUS) {
			free(line);
			cl->answered = true;
			if (status_write(cl->d, bufferevent_get_output(bev)) != 0) {
				log_msg(cl->d->log, LOG_ERR,
				        "control socket: status: out of memory");
				ctl_close(cl);
				return;
			}
			bufferevent_disable(bev, EV_READ);
			return;
		} else {
			reply = ctl_do(cl->d, &rq);
		}
		free(line);
	}
	char *text = reply ? json_dumps(reply, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
	json_decref(reply);
	cl->answered = true;
	if (!text) {
		ctl_close(cl);
		return;
	}
	evbuffer_add_printf(bufferevent_get_output(bev), "%s\n", text);
	/* jansson's allocator is kme_global_init()'s wiping one: free with it */
	json_malloc_t jm;
	json_free_t jf;
	json_get_alloc_funcs(&jm, &jf);
	if (jf)
		jf(text);
	else
		free(text);
	bufferevent_disable(bev, EV_READ);
}

static void listen_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct qkdlinkd *d = arg;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn(d->log, "control socket: accept");
		return;
	}
	if (d->nclients >= CONTROL_CLIENTS_MAX || d->stopping) {
		close(cfd);
		return;
	}
	struct ctl_client *cl = calloc(1, sizeof *cl);
	struct bufferevent *bev =
	    cl ? bufferevent_socket_new(d->base, cfd, BEV_OPT_CLOSE_ON_FREE) : NULL;
	if (!bev) {
		free(cl);
		close(cfd);
		log_warnx(d->log, "control socket: out of memory");
		return;
	}
	cl->d = d;
	cl->bev = bev;
	d->nclients++;
	struct timeval tmo = {CONTROL_TIMEOUT_S, 0};
	bufferevent_set_timeouts(bev, &tmo, &tmo);
	bufferevent_setcb(bev, ctl_read_cb, ctl_write_cb, ctl_event_cb, cl);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static int control_open(struct qkdlinkd *d, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	const char *path = d->cfg.control_socket;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!path || strlen(path) >= sizeof sa.sun_path) {
		snprintf(err, errlen, "control socket path missing or too long");
		return -1;
	}
	copy_str(sa.sun_path, sizeof sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "control socket: %s", strerror(errno));
		return -1;
	}
	/* a live daemon answers on it; a dead one left a stale file */
	struct stat sb;
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", path);
			close(fd);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0) {
			close(probe);
			close(fd);
			snprintf(err, errlen, "%s: another qkdlinkd is running", path);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	mode_t old = umask(0117);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (rc != 0) {
		snprintf(err, errlen, "%s: bind: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (chmod(path, 0660) != 0 ||
	    ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) != 0) ||
	    listen(fd, 16) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	d->lfd = fd;
	copy_str(d->sock_path, sizeof d->sock_path, path);
	d->listen_ev = event_new(d->base, fd, EV_READ | EV_PERSIST, listen_cb, d);
	if (!d->listen_ev || event_add(d->listen_ev, NULL) != 0) {
		snprintf(err, errlen, "control socket: cannot watch it");
		return -1;
	}
	return 0;
}

static void control_close(struct qkdlinkd *d)
{
	if (d->listen_ev) {
		event_free(d->listen_ev);
		d->listen_ev = NULL;
	}
	if (d->lfd >= 0) {
		close(d->lfd);
		d->lfd = -1;
		unlink(d->sock_path);
	}
}

/* ---- privileges ---- */

static int caps_clear(char *err, size_t errlen)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (syscall(SYS_capset, &h, data) != 0) {
		snprintf(err, errlen, "capset: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* After the port and the socket are open: become the configured user and keep
 * no capability (the port's handles stay open; nothing else needs one). */
static int drop_privileges(struct qkdlinkd *d, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	/* already that user (systemd's User=): nothing to switch, and no right to */
	if (uid != (uid_t)-1 && getuid() == uid && geteuid() == uid && getgid() == gid &&
	    getegid() == gid)
		uid = (uid_t)-1;
	if (uid != (uid_t)-1) {
		if (setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 ||
		    setresuid(uid, uid, uid) != 0) {
			snprintf(err, errlen, "cannot become user %s: %s", d->cfg.user,
			         strerror(errno));
			return -1;
		}
		if (uid != 0 && setuid(0) == 0) {
			snprintf(err, errlen, "could regain root after dropping to %s",
			         d->cfg.user);
			return -1;
		}
	}
	if (caps_clear(err, errlen) != 0)
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errlen, "no_new_privs: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int resolve_user(const struct agent_config *cfg, uid_t *uid, gid_t *gid, char *err,
                        size_t errlen)
{
	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (!cfg->user)
		return 0;
	struct passwd *pw = getpwnam(cfg->user);
	if (!pw) {
		snprintf(err, errlen, "%s: user: no user %s", cfg->file, cfg->user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	if (cfg->group) {
		struct group *gr = getgrnam(cfg->group);
		if (!gr) {
			snprintf(err, errlen, "%s: group: no group %s", cfg->file, cfg->group);
			return -1;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

/* ---- start ---- */

static void log_apply(struct qkdlinkd *d)
{
	int level = d->opts.debug ? LOG_DEBUG : (int)d->cfg.log.level;
	bool sys = d->opts.foreground ? false : d->cfg.log.syslog;
	log_reconfigure(d->log, level, sys, d->cfg.log.facility);
}

static void nc_log(void *ctx, enum nc_log_level level, const char *msg)
{
	(void)ctx;
	(void)level;
	(void)msg;
	/* the worker thread must not share the logger unlocked: errors come back
	 * with each job's result instead */
}

static int workers_start(struct qkdlinkd *d, char *err, size_t errlen)
{
	struct kme_config kc;
	struct kme_error ke;
	config_kme(&d->cfg, &kc);
	d->kme = kme_client_new(d->base, &kc, &ke);
	if (!d->kme) {
		snprintf(err, errlen, "kme: %s", ke.text);
		return -1;
	}
	struct nc_config nc;
	nc_config_defaults(&nc);
	nc.host = d->cfg.router.host;
	nc.port = d->cfg.router.port;
	nc.user = d->cfg.router.user;
	nc.known_hosts = d->cfg.router.known_hosts;
	nc.tofu = d->cfg.router.trust_on_first_use;
	nc.key_file = d->cfg.router.key_file;
	nc.password_file = d->cfg.router.password_file;
	if (d->cfg.router.connect_timeout_ms > 0)
		nc.connect_timeout_ms = d->cfg.router.connect_timeout_ms;
	if (d->cfg.router.rpc_timeout_ms > 0)
		nc.rpc_timeout_ms = d->cfg.router.rpc_timeout_ms;
	nc.log = nc_log;
	nc.log_level = -1;
	struct nc_error ne;
	nc_error_clear(&ne);
	if (nc_worker_start(&nc, NC_QUEUE_MAX, &d->nc, &ne) != NC_OK) {
		snprintf(err, errlen, "router worker: %s", ne.msg);
		return -1;
	}
	d->nc_ev = event_new(d->base, nc_worker_fd(d->nc), EV_READ | EV_PERSIST, nc_result_cb, d);
	if (!d->nc_ev || event_add(d->nc_ev, NULL) != 0) {
		snprintf(err, errlen, "router worker: cannot watch its descriptor");
		return -1;
	}
	if (d->cfg.router.ns == CONFIG_NS_URI)
		log_warnx(d->log, "router.namespace %s: sent with Juniper's YANG namespaces",
		          d->cfg.router.ns_uri);
	return 0;
}

static int port_open(struct qkdlinkd *d, char *err, size_t errlen)
{
	struct qkd_port_config pc = {.rx_ifname = d->cfg.port.rx_interface,
	                             .tx_ifname = d->cfg.port.tx_interface,
	                             .vlan = d->cfg.port.tagged ? d->cfg.port.vlan : 0,
	                             .pcp = d->cfg.port.pcp,
	                             .kernel_ident = false,
	                             .oui = d->cfg.port.oui,
	                             .pid = d->cfg.port.pid};
	memcpy(pc.dst, d->cfg.port.destination, 6);
	if (qkd_port_open(&d->port, &pc, err, errlen) != 0)
		return -1;
	int fd = qkd_port_fd(d->port);
	if (fd >= 0) {
		d->port_ev = event_new(d->base, fd, EV_READ | EV_PERSIST, port_cb, d);
		if (!d->port_ev || event_add(d->port_ev, NULL) != 0) {
			snprintf(err, errlen, "port: cannot watch its descriptor");
			return -1;
		}
	}
	return 0;
}

static int channels_start_all(struct qkdlinkd *d, char *err, size_t errlen)
{
	d->ch = calloc(d->cfg.nchannels ? d->cfg.nchannels : 1, sizeof *d->ch);
	if (!d->ch) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < d->cfg.nchannels; i++) {
		struct channel *c = chan_new(d, &d->cfg.channels[i], err, errlen);
		if (!c)
			return -1;
		d->ch[d->nch++] = c;
	}
	for (size_t i = 0; i < d->nch; i++)
		chan_start(d->ch[i]);
	return 0;
}

int qkdlinkd_start(struct qkdlinkd **out, struct event_base *base, struct logger *lg,
                   const struct qkdlinkd_opts *o, char *err, size_t errlen)
{
	*out = NULL;
	struct qkdlinkd *d = calloc(1, sizeof *d);
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->base = base;
	d->log = lg;
	d->opts = *o;
	d->lfd = -1;
	copy_str(d->config_path, sizeof d->config_path, o->config_path);
	d->opts.config_path = d->config_path;

	char cerr[CONFIG_ERR_MAX];
	if (config_load(d->config_path, 0, &d->cfg, cerr, sizeof cerr) != 0) {
		snprintf(err, errlen, "%s", cerr);
		goto fail;
	}
	log_apply(d);
	uid_t uid;
	gid_t gid;
	if (resolve_user(&d->cfg, &uid, &gid, err, errlen) != 0)
		goto fail;
	if (rx_build(d, &d->rx, &d->cfg, err, errlen) != 0)
		goto fail;
	d->rx_set = true;
	if (port_open(d, err, errlen) != 0)
		goto fail;
	if (control_open(d, uid, gid, err, errlen) != 0)
		goto fail;
	if (drop_privileges(d, uid, gid, err, errlen) != 0)
		goto fail;
	if (snprintf(d->epoch_path, sizeof d->epoch_path, "%s/epoch", d->cfg.state_dir) >=
	    (int)sizeof d->epoch_path) {
		snprintf(err, errlen, "state_dir too long");
		goto fail;
	}
	if (qkd_epoch_next(d->epoch_path, &d->epoch, err, errlen) != 0)
		goto fail;
	if (workers_start(d, err, errlen) != 0)
		goto fail;
	d->cert_ev = evtimer_new(base, cert_cb, d);
	if (!d->cert_ev) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	cert_cb(-1, 0, d);
	if (channels_start_all(d, err, errlen) != 0)
		goto fail;
	log_info(d->log, "started: SAE %s, %zu channel(s), epoch %u, port %s/%s, control %s",
	         d->cfg.sae_id, d->nch, (unsigned)d->epoch, d->cfg.port.rx_interface,
	         d->cfg.port.tx_interface, d->sock_path);
	*out = d;
	return 0;
fail:
	qkdlinkd_free(d);
	return -1;
}

/* ---- reload ---- */

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Same channel config: the machine may go on. */
static bool chan_same(const struct config_channel *a, const struct config_channel *b)
{
	if (a->id != b->id || !str_eq(a->ca_name, b->ca_name) || a->cipher != b->cipher ||
	    a->role != b->role || a->npeers != b->npeers || a->nsecrets != b->nsecrets ||
	    a->current_secret != b->current_secret ||
	    a->rotation_interval != b->rotation_interval || a->ckn != b->ckn ||
	    strcmp(a->ckn_prefix, b->ckn_prefix) != 0 || a->ninterfaces != b->ninterfaces)
		return false;
	for (size_t i = 0; i < a->npeers; i++)
		if (!str_eq(a->peers[i], b->peers[i]))
			return false;
	for (size_t i = 0; i < a->ninterfaces; i++)
		if (!str_eq(a->interfaces[i], b->interfaces[i]))
			return false;
	for (size_t i = 0; i < a->nsecrets; i++)
		if (a->secrets[i].id != b->secrets[i].id ||
		    !str_eq(a->secrets[i].file, b->secrets[i].file))
			return false;
	return true;
}

static void warn_restart(struct qkdlinkd *d, const struct agent_config *n)
{
	const struct agent_config *o = &d->cfg;
	const char *what = NULL;
	if (!str_eq(o->sae_id, n->sae_id))
		what = "sae_id";
	else if (!str_eq(o->state_dir, n->state_dir))
		what = "state_dir";
	else if (!str_eq(o->control_socket, n->control_socket))
		what = "control_socket";
	else if (!str_eq(o->user, n->user) || !str_eq(o->group, n->group))
		what = "user";
	else if (!str_eq(o->port.rx_interface, n->port.rx_interface) ||
	         !str_eq(o->port.tx_interface, n->port.tx_interface) ||
	         o->port.tagged != n->port.tagged || o->port.vlan != n->port.vlan ||
	         memcmp(o->port.destination, n->port.destination, 6) != 0 ||
	         o->port.oui != n->port.oui || o->port.pid != n->port.pid)
		what = "port";
	else if (!str_eq(o->kme.url, n->kme.url) || !str_eq(o->kme.cert_file, n->kme.cert_file) ||
	         !str_eq(o->kme.key_file, n->kme.key_file) ||
	         !str_eq(o->kme.ca_file, n->kme.ca_file) || !str_eq(o->kme.kme_id, n->kme.kme_id))
		what = "kme";
	else if (!str_eq(o->router.host, n->router.host) || o->router.port != n->router.port ||
	         !str_eq(o->router.user, n->router.user) ||
	         !str_eq(o->router.key_file, n->router.key_file) ||
	         !str_eq(o->router.known_hosts, n->router.known_hosts))
		what = "router";
	if (what)
		log_warnx(d->log,
		          "reload: %s changed: it takes effect at the next restart; the "
		          "running %s is kept",
		          what, what);
}

void qkdlinkd_reload(struct qkdlinkd *d)
{
	struct agent_config n;
	char err[CONFIG_ERR_MAX];
	if (d->stopping)
		return;
	memset(&n, 0, sizeof n);
	if (config_load(d->config_path, 0, &n, err, sizeof err) != 0) {
		log_msg(d->log, LOG_ERR, "reload refused, old configuration kept: %s", err);
		config_free(&n);
		return;
	}
	warn_restart(d, &n);
	/* the settings that need a restart keep their running values */
	struct agent_config *o = &d->cfg;
#define KEEP(f)                                                                                    \
	do {                                                                                       \
		void *t_ = (void *)n.f;                                                            \
		n.f = o->f;                                                                        \
		o->f = t_;                                                                         \
	} while (0)
	KEEP(sae_id);
	KEEP(state_dir);
	KEEP(control_socket);
	KEEP(user);
	KEEP(group);
#undef KEEP
	struct config_port tp = n.port;
	n.port = o->port;
	o->port = tp;
	struct config_kme tk = n.kme;
	unsigned warn_days = n.kme.cert_warn_days;
	n.kme = o->kme;
	o->kme = tk;
	n.kme.cert_warn_days = warn_days;
	struct config_router tr = n.router;
	unsigned ct = n.router.confirm_timeout;
	n.router = o->router;
	o->router = tr;
	n.router.confirm_timeout = ct;

	struct qkd_rx nrx;
	if (rx_build(d, &nrx, &n, err, sizeof err) != 0) {
		log_msg(d->log, LOG_ERR, "reload refused, old configuration kept: %s", err);
		config_free(&n);
		return;
	}
	/* keep the replay marks and counters */
	for (size_t i = 0; i < d->rx.replay.n; i++) {
		const struct qkd_replay_mark *mk = &d->rx.replay.marks[i];
		if (!config_channel_find(&n, mk->channel))
			continue;
		struct qkd_str s = {mk->sender, mk->sender_len};
		(void)qkd_replay_update(&nrx.replay, mk->channel, &s, mk->epoch, mk->seq);
	}
	memcpy(nrx.count, d->rx.count, sizeof nrx.count);
	memcpy(nrx.last_log, d->rx.last_log, sizeof nrx.last_log);
	memcpy(nrx.unlogged, d->rx.unlogged, sizeof nrx.unlogged);

	struct channel **nch = calloc(n.nchannels ? n.nchannels : 1, sizeof *nch);
	if (!nch) {
		log_msg(d->log, LOG_ERR, "reload refused: out of memory");
		qkd_rx_free(&nrx);
		config_free(&n);
		return;
	}
	bool hello_same = n.hello_interval == d->cfg.hello_interval &&
	                  n.router.confirm_timeout == d->cfg.router.confirm_timeout;
	/* swap the configuration in; new channels are built against it */
	struct agent_config old = d->cfg;
	d->cfg = n;
	size_t kept = 0, added = 0, changed = 0, removed = 0;
	bool *reused = calloc(d->nch ? d->nch : 1, sizeof *reused);
	bool *fresh = calloc(n.nchannels ? n.nchannels : 1, sizeof *fresh);
	if (!reused || !fresh)
		goto oom;
	for (size_t i = 0; i < d->cfg.nchannels; i++) {
		const struct config_channel *cc = &d->cfg.channels[i];
		struct channel *oc = NULL;
		size_t oi = 0;
		for (oi = 0; oi < d->nch; oi++)
			if (d->ch[oi]->id == cc->id) {
				oc = d->ch[oi];
				break;
			}
		if (oc && hello_same && chan_same(oc->cc, cc)) {
			/* same channel: keep the machine, re-read the sending secret */
			struct qkd_key k;
			char kerr[512];
			if (qkd_key_load(&k, cc->secrets[cc->current_secret].file, kerr,
			                 sizeof kerr) == 0) {
				qkd_key_clear(&oc->txkey);
				oc->txkey = k;
			}
			oc->cc = cc;
			nch[i] = oc;
			reused[oi] = true;
			kept++;
			continue;
		}
		struct channel *c = chan_new(d, cc, err, sizeof err);
		if (!c) {
			log_msg(d->log, LOG_ERR, "reload: channel %u not started: %s",
			        (unsigned)cc->id, err);
			continue;
		}
		nch[i] = c;
		fresh[i] = true;
		if (oc)
			changed++;
		else
			added++;
	}
	/* the old machines of changed and removed channels stop here; their state
	 * file says what a pending rotation needs (protocol.md 10.6) */
	for (size_t i = 0; i < d->nch; i++) {
		if (reused[i])
			continue;
		if (!config_channel_find(&d->cfg, d->ch[i]->id))
			removed++;
		log_info(d->log, "channel %u: stopped by reload", (unsigned)d->ch[i]->id);
		chan_free(d->ch[i]);
	}
	free(d->ch);
	d->ch = nch;
	d->nch = 0;
	for (size_t i = 0; i < d->cfg.nchannels; i++) {
		struct channel *c = nch[i];
		nch[i] = NULL;
		if (c)
			nch[d->nch++] = c;
	}
	qkd_rx_free(&d->rx);
	d->rx = nrx;
	config_free(&old);
	log_apply(d);
	/* start the new ones after the swap (their state restores replay marks) */
	for (size_t i = 0, k = 0; i < d->cfg.nchannels; i++) {
		if (k >= d->nch || nch[k]->id != d->cfg.channels[i].id)
			continue;
		if (fresh[i])
			chan_start(nch[k]);
		k++;
	}
	free(reused);
	free(fresh);
	router_release(d);
	router_wake(d);
	log_info(d->log, "reloaded %s: %zu channel(s) kept, %zu added, %zu changed, %zu removed",
	         d->config_path, kept, added, changed, removed);
	return;
oom:
	free(reused);
	free(fresh);
	free(nch);
	d->cfg = old;
	config_free(&n);
	qkd_rx_free(&nrx);
	log_msg(d->log, LOG_ERR, "reload refused: out of memory");
}

/* ---- shutdown ---- */

static void finish(struct qkdlinkd *d)
{
	event_base_loopexit(d->base, NULL);
}

/* A master whose persisted rotation is staged but undecided cancels it
 * (protocol.md 10.6 does the same at the next start); everything else is left
 * to the persisted state and the routers' own timeout. */
static void final_cancels(struct qkdlinkd *d)
{
	for (size_t i = 0; i < d->nch; i++) {
		struct channel *c = d->ch[i];
		const struct chan_state *st = rot_persisted(&c->m);
		if (c->final_cancel || c->rc.role != QKD_ROLE_MASTER || !st ||
		    (st->phase != STATE_PHASE_STAGING && st->phase != STATE_PHASE_STAGED) ||
		    !st->pending_key_id[0])
			continue;
		struct rot_action a;
		char kerr[128];
		memset(&a, 0, sizeof a);
		a.type = ROT_ACT_ROUTER_CANCEL;
		a.rotation = st->pending_rotation;
		copy_str(a.key_id, sizeof a.key_id, st->pending_key_id);
		snprintf(a.persist_id, sizeof a.persist_id, "qkdlink-%u-%u", (unsigned)c->id,
		         (unsigned)st->pending_rotation);
		if (kd_ckn(c->rc.conv, c->prefix, st->pending_key_id, a.ckn, kerr, sizeof kerr) !=
		    0)
			continue;
		c->final_cancel = true;
		chan_router(c, &a, true);
	}
}

static void check_quiet(struct qkdlinkd *d)
{
	if (d->jobs_out > 0)
		return;
	final_cancels(d);
	if (d->jobs_out == 0)
		finish(d);
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct qkdlinkd *d = arg;
	log_warnx(d->log,
	          "shutdown: %u router operation(s) still running after %d s; leaving "
	          "them to the routers' confirm timeout",
	          d->jobs_out, SHUTDOWN_GRACE_S);
	finish(d);
}

void qkdlinkd_shutdown(struct qkdlinkd *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	log_info(d->log, "stopping: no new rotation; finishing router work");
	control_close(d);
	if (d->port_ev)
		event_del(d->port_ev);
	for (size_t i = 0; i < d->nch; i++)
		if (d->ch[i]->timer)
			event_del(d->ch[i]->timer);
	/* KME requests in flight: their keys are dropped (the persisted phase
	 * "fetching" tells the next start) */
	if (d->kme) {
		kme_client_free(d->kme);
		d->kme = NULL;
	}
	for (size_t i = 0; i < d->nch; i++) {
		d->ch[i]->kme_out = 0;
		wipe_key(d->ch[i]);
	}
	d->grace_ev = evtimer_new(d->base, grace_cb, d);
	struct timeval tv = {SHUTDOWN_GRACE_S, 0};
	if (d->grace_ev)
		evtimer_add(d->grace_ev, &tv);
	check_quiet(d);
}

void qkdlinkd_free(struct qkdlinkd *d)
{
	if (!d)
		return;
	control_close(d);
	if (d->nc) {
		nc_worker_stop(d->nc); /* waits for the running job, drops the queued */
		d->nc = NULL;
	}
	while (d->rjobs) {
		struct rjob *j = d->rjobs;
		LIST_UNLINK(d->rjobs, j);
		kd_wipe(j->cak, sizeof j->cak);
		rjob_free(j);
	}
	if (d->nc_ev)
		event_free(d->nc_ev);
	if (d->kme)
		kme_client_free(d->kme); /* pending callbacks are not called */
	while (d->kreqs) {
		struct kreq *r = d->kreqs;
		LIST_UNLINK(d->kreqs, r);
		free(r);
	}
	while (d->waits) {
		struct rjob *j = d->waits;
		LIST_UNLINK(d->waits, j);
		rjob_free(j);
	}
	while (d->rdefers) {
		struct rdefer *df = d->rdefers;
		LIST_UNLINK(d->rdefers, df);
		free(df);
	}
	for (size_t i = 0; i < d->nch; i++)
		chan_free(d->ch[i]);
	free(d->ch);
	if (d->port_ev)
		event_free(d->port_ev);
	qkd_port_close(d->port);
	if (d->rx_set)
		qkd_rx_free(&d->rx);
	if (d->cert_ev)
		event_free(d->cert_ev);
	if (d->grace_ev)
		event_free(d->grace_ev);
	config_free(&d->cfg);
	free(d);
}
