/*
 * test_rotation.c - the rotation state machine, master and slaves driven
 * against each other in one process (lldpd style: no sockets).
 *
 * The harness plays the network, the KMEs and the routers with a fake clock:
 * every SEND action is encoded by the real codec, signed, and delivered as
 * bytes to the other agents, which run the receive checks of protocol.md
 * section 6 (decode, ICV, replay marks) before the machine sees the message.
 * Frames can be lost, duplicated (retransmitted) or delayed (reordered: the
 * replay marks then drop the older one, as on the wire). KMEs share keys by
 * key_ID; a router models NETCONF confirmed commit (running key, pending
 * confirmed commit with persist-id and timeout). Agents can be restarted from
 * the state they last asked to persist.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "frame.h"
#include "keyderive.h"
#include "replay.h"
#include "rotation.h"
#include "state.h"

#define NODES_MAX 4
#define QUEUE_MAX 4096
#define CHANNEL 7
#define SUITE_BYTES 32

static const uint8_t SECRET[32] = "rotation-test-secret-0123456789a";
static const char *PREFIX = "00112233445566778899aabbccddeeff";
static const struct qkd_ident IDENT = {QKD_OUI_DEFAULT, QKD_PID_DEFAULT};

/* ---- the world ---- */

struct router {
	char committed[QKD_KEYID_MAX + 1]; /* key_ID of the permanent configuration */
	char committed_ckn[KD_CKN_LEN + 1];
	char committed_cak[KD_CAK_HEX_MAX + 1];
	bool cc; /* a confirmed commit is pending */
	char cc_key[QKD_KEYID_MAX + 1];
	char cc_ckn[KD_CKN_LEN + 1];
	char cc_cak[KD_CAK_HEX_MAX + 1];
	char cc_persist[ROT_PERSIST_ID_MAX];
	int64_t cc_deadline;
	bool refuse_stage;  /* commit refused */
	bool busy_stage;    /* the daemon reports the router busy (another channel) */
	bool lost_stage;    /* the stage lands, but its answer is lost (FAILED) */
	int refuse_confirm; /* that many confirms fail */
	int stages, confirms, cancels;
	int64_t staged_at; /* last stage completion */
};

struct node {
	bool up;
	bool deaf_mute; /* frames to and from it are lost */
	struct rot_machine m;
	struct rot_config cfg;
	char sae[16];
	bool has_disk;
	struct chan_state disk;
	int writes; /* PERSIST actions carried out */
	uint32_t epoch, seq;
	struct qkd_replay replay;
	struct router r;
	/* scripted KME */
	int kme_not_found; /* next dec_keys answer "not found" this many times */
	bool kme_key_lost;
	bool kme_error;
	bool kme_hang; /* enc_keys never answers */
	int dec_calls, enc_calls;
	/* observations */
	char log[64][ROT_TEXT_MAX];
	size_t nlog;
	struct rot_metrics metrics;
	int nmetrics;
	int sent[4]; /* by message type */
	int64_t announce_times[16];
	int nannounce;
	int acks[16]; /* ACKs sent by result */
};

enum qkind { Q_FRAME, Q_KME, Q_ROUTER, Q_RESEND };

struct qev {
	bool used;
	int64_t at;
	int node;
	enum qkind kind;
	uint8_t frame[QKD_FRAME_MAX];
	size_t len;
	uint32_t rotation;
	enum rot_kme_status kme;
	char key_id[QKD_KEYID_MAX + 1];
	enum rot_router_op op;
	char persist[ROT_PERSIST_ID_MAX];
	char ckn[KD_CKN_LEN + 1];
	uint32_t timeout_s;
};

struct world {
	int64_t now;
	struct node n[NODES_MAX];
	int nnodes;
	struct qkd_key key;
	struct qev q[QUEUE_MAX];
	uint32_t next_key;
	/* network faults */
	int drop_type[4];    /* drop the next N frames of a type (any sender) */
	int drop_ack_result; /* with drop_type[ACK]: only ACKs of this result (-1: any) */
	bool dup_announce;   /* deliver every ANNOUNCE twice (a retransmission) */
	int64_t delay_ms;    /* frame transit */
	int64_t kme_ms, router_ms[NODES_MAX];
	bool drop_master_hello; /* the decision never reaches the slaves */
	unsigned loss_pct;      /* random loss of each frame copy */
	int64_t jitter_ms;      /* random extra transit (reordering) */
	uint64_t rng;
	bool verbose;
};

static struct world *W;

static uint32_t rnd(uint32_t n)
{
	W->rng = W->rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(W->rng >> 33) % n;
}

/* The KME's key for a key_ID, shared by every KME (QKD). */
static void kme_key(const char *key_id, uint8_t out[32])
{
	SHA256((const uint8_t *)key_id, strlen(key_id), out);
}

static void derive(const char *key_id, char *ckn, char *cak)
{
	uint8_t k[32];
	char err[128];
	kme_key(key_id, k);
	assert_int_equal(kd_ckn(KD_CONV_PREFIX, PREFIX, key_id, ckn, err, sizeof err), 0);
	assert_int_equal(kd_cak(k, sizeof k, SUITE_BYTES, cak, KD_CAK_HEX_MAX + 1, err, sizeof err),
	                 0);
	kd_wipe(k, sizeof k);
}

static struct qev *enqueue(int64_t at, int node, enum qkind kind)
{
	for (size_t i = 0; i < QUEUE_MAX; i++)
		if (!W->q[i].used) {
			memset(&W->q[i], 0, sizeof W->q[i]);
			W->q[i].used = true;
			W->q[i].at = at;
			W->q[i].node = node;
			W->q[i].kind = kind;
			return &W->q[i];
		}
	fail_msg("event queue full");
	return NULL;
}

static void send_frame(int from, const struct qkd_msg *body)
{
	struct node *s = &W->n[from];
	struct qkd_msg msg = *body;
	msg.oui = QKD_OUI_DEFAULT;
	msg.pid = QKD_PID_DEFAULT;
	msg.channel = CHANNEL;
	msg.secret_id = 0;
	msg.epoch = s->epoch;
	msg.seq = ++s->seq;
	msg.sender.ptr = s->sae;
	msg.sender.len = strlen(s->sae);
	struct qkd_l2 l2 = {.dst = QKD_DST_DEFAULT, .src = {2, 0, 0, 0, 0, (uint8_t)from}};
	uint8_t buf[QKD_FRAME_MAX];
	char err[128];
	int n = qkd_frame_encode(&l2, &msg, &W->key, buf, sizeof buf, err, sizeof err);
	if (n < 0)
		fail_msg("encode: %s", err);
	s->sent[msg.type]++;
	if (msg.type == QKD_MSG_ANNOUNCE && s->nannounce < 16)
		s->announce_times[s->nannounce++] = W->now;
	if (msg.type == QKD_MSG_ACK)
		s->acks[msg.u.ack.result & 15]++;
	if (s->deaf_mute)
		return;
	if (W->drop_type[msg.type] > 0 && (msg.type != QKD_MSG_ACK || W->drop_ack_result < 0 ||
	                                   W->drop_ack_result == msg.u.ack.result)) {
		W->drop_type[msg.type]--;
		return;
	}
	if (W->drop_master_hello && msg.type == QKD_MSG_HELLO && from == 0)
		return;
	for (int i = 0; i < W->nnodes; i++) {
		if (i == from || W->n[i].deaf_mute)
			continue;
		if (W->loss_pct > 0 && rnd(100) < W->loss_pct)
			continue;
		int64_t jitter = W->jitter_ms > 0 ? rnd((uint32_t)W->jitter_ms + 1) : 0;
		struct qev *e = enqueue(W->now + W->delay_ms + jitter, i, Q_FRAME);
		memcpy(e->frame, buf, (size_t)n);
		e->len = (size_t)n;
	}
	if (W->dup_announce && msg.type == QKD_MSG_ANNOUNCE) {
		/* a copy 30 ms later, re-sent as a retransmission (new sequence) */
		struct qev *e = enqueue(W->now + 30, from, Q_RESEND);
		memcpy(e->frame, buf, (size_t)n);
		e->len = (size_t)n;
	}
}

static void do_actions(int idx, const struct rot_actions *out)
{
	struct node *nd = &W->n[idx];
	for (size_t i = 0; i < out->n; i++) {
		const struct rot_action *a = &out->a[i];
		struct qev *e;
		switch (a->type) {
		case ROT_ACT_SEND:
			send_frame(idx, &a->msg);
			break;
		case ROT_ACT_KME_ENC:
			nd->enc_calls++;
			if (nd->kme_hang)
				break;
			e = enqueue(W->now + W->kme_ms, idx, Q_KME);
			e->rotation = a->rotation;
			if (nd->kme_error) {
				nd->kme_error = false;
				e->kme = ROT_KME_ERROR;
			} else {
				snprintf(e->key_id, sizeof e->key_id,
				         "%08x-0000-4000-8000-0000000000%02x", ++W->next_key,
				         (unsigned)a->rotation & 0xff);
			}
			break;
		case ROT_ACT_KME_DEC:
			nd->dec_calls++;
			e = enqueue(W->now + W->kme_ms, idx, Q_KME);
			e->rotation = a->rotation;
			snprintf(e->key_id, sizeof e->key_id, "%s", a->key_id);
			if (nd->kme_not_found > 0) {
				nd->kme_not_found--;
				e->kme = ROT_KME_NOT_FOUND;
			} else if (nd->kme_key_lost) {
				nd->kme_key_lost = false;
				e->kme = ROT_KME_KEY_LOST;
			}
			break;
		case ROT_ACT_ROUTER_STAGE:
		case ROT_ACT_ROUTER_CONFIRM:
		case ROT_ACT_ROUTER_CANCEL:
			e = enqueue(W->now + W->router_ms[idx], idx, Q_ROUTER);
			e->rotation = a->rotation;
			e->op = a->type == ROT_ACT_ROUTER_STAGE     ? ROT_OP_STAGE
			        : a->type == ROT_ACT_ROUTER_CONFIRM ? ROT_OP_CONFIRM
			                                            : ROT_OP_CANCEL;
			snprintf(e->key_id, sizeof e->key_id, "%s", a->key_id);
			snprintf(e->persist, sizeof e->persist, "%s", a->persist_id);
			snprintf(e->ckn, sizeof e->ckn, "%s", a->ckn);
			e->timeout_s = a->confirm_timeout_s;
			break;
		case ROT_ACT_PERSIST: {
			char err[256];
			assert_int_equal(state_check(a->state, err, sizeof err), STATE_OK);
			nd->disk = *a->state;
			nd->has_disk = true;
			nd->writes++;
			break;
		}
		case ROT_ACT_LOG:
			if (W->verbose)
				fprintf(stderr, "%8lld %s\n", (long long)W->now, a->text);
			snprintf(nd->log[nd->nlog % 64], ROT_TEXT_MAX, "%s", a->text);
			nd->nlog++;
			break;
		case ROT_ACT_METRICS:
			nd->metrics = a->metrics;
			nd->nmetrics++;
			break;
		}
	}
}

static void handle(int idx, struct rot_event *ev)
{
	struct rot_actions *out = malloc(sizeof *out);
	char err[256];
	assert_non_null(out);
	ev->now_ms = W->now;
	if (rot_handle(&W->n[idx].m, ev, out, err, sizeof err) != 0)
		fail_msg("rot_handle: %s", err);
	do_actions(idx, out);
	free(out);
}

/* The router completes an operation (even if the agent died meanwhile). */
static enum rot_router_status router_apply(struct node *nd, const struct qev *e)
{
	struct router *r = &nd->r;
	char ckn[KD_CKN_LEN + 1], cak[KD_CAK_HEX_MAX + 1];
	switch (e->op) {
	case ROT_OP_STAGE:
		if (r->refuse_stage) /* refused and discarded (the daemon's read) */
			return ROT_ROUTER_ROLLED_BACK;
		if (r->busy_stage)
			return ROT_ROUTER_BUSY;
		derive(e->key_id, ckn, cak); /* what the daemon does with the KME key */
		assert_string_equal(ckn, e->ckn);
		r->cc = true;
		snprintf(r->cc_key, sizeof r->cc_key, "%s", e->key_id);
		snprintf(r->cc_ckn, sizeof r->cc_ckn, "%s", ckn);
		snprintf(r->cc_cak, sizeof r->cc_cak, "%s", cak);
		snprintf(r->cc_persist, sizeof r->cc_persist, "%s", e->persist);
		r->cc_deadline = W->now + (int64_t)e->timeout_s * 1000;
		r->stages++;
		r->staged_at = W->now;
		return r->lost_stage ? ROT_ROUTER_FAILED : ROT_ROUTER_OK;
	case ROT_OP_CONFIRM:
		derive(e->key_id, ckn, cak);
		assert_string_equal(ckn, e->ckn);
		r->confirms++;
		if (r->refuse_confirm > 0) {
			r->refuse_confirm--;
			return ROT_ROUTER_FAILED;
		}
		if (r->cc && strcmp(r->cc_persist, e->persist) == 0) {
			snprintf(r->committed, sizeof r->committed, "%s", r->cc_key);
			snprintf(r->committed_ckn, sizeof r->committed_ckn, "%s", r->cc_ckn);
			snprintf(r->committed_cak, sizeof r->committed_cak, "%s", r->cc_cak);
			r->cc = false;
			return ROT_ROUTER_OK;
		}
		/* nothing to confirm: the read-back tells */
		return strcmp(r->committed, e->key_id) == 0 ? ROT_ROUTER_OK
		                                            : ROT_ROUTER_ROLLED_BACK;
	case ROT_OP_CANCEL:
		r->cancels++;
		if (r->cc && strcmp(r->cc_persist, e->persist) == 0) {
			r->cc = false;
			return ROT_ROUTER_OK;
		}
		return strcmp(r->committed, e->key_id) == 0 ? ROT_ROUTER_FAILED
		                                            : ROT_ROUTER_ROLLED_BACK;
	}
	return ROT_ROUTER_FAILED;
}

static void resend(struct qev *e)
{
	struct node *s = &W->n[e->node];
	if (!s->up)
		return;
	uint8_t *pdu = e->frame + 14;
	uint32_t seq = ++s->seq;
	pdu[20] = (uint8_t)(seq >> 24);
	pdu[21] = (uint8_t)(seq >> 16);
	pdu[22] = (uint8_t)(seq >> 8);
	pdu[23] = (uint8_t)seq;
	assert_int_equal(qkd_pdu_sign(pdu, e->len - 14, &W->key), 0);
	s->sent[QKD_MSG_ANNOUNCE]++;
	for (int i = 0; i < W->nnodes; i++) {
		if (i == e->node || W->n[i].deaf_mute)
			continue;
		struct qev *c = enqueue(W->now + W->delay_ms, i, Q_FRAME);
		memcpy(c->frame, e->frame, e->len);
		c->len = e->len;
	}
}

static void deliver(struct qev *e)
{
	struct node *nd = &W->n[e->node];
	struct rot_event ev = {0};
	switch (e->kind) {
	case Q_RESEND:
		resend(e);
		return;
	case Q_FRAME: {
		if (!nd->up)
			return;
		struct qkd_decoded d;
		assert_int_equal(qkd_frame_decode(e->frame, e->len, &IDENT, &d), QKD_OK);
		assert_int_equal(qkd_frame_verify(&d, &W->key), QKD_OK);
		if (qkd_replay_check(&nd->replay, d.msg.channel, &d.msg.sender, d.msg.epoch,
		                     d.msg.seq) != QKD_OK)
			return; /* reordered or replayed: dropped before the machine */
		assert_int_equal(qkd_replay_update(&nd->replay, d.msg.channel, &d.msg.sender,
		                                   d.msg.epoch, d.msg.seq),
		                 0);
		ev.type = ROT_EV_FRAME;
		ev.msg = &d.msg;
		handle(e->node, &ev);
		return;
	}
	case Q_KME:
		if (!nd->up)
			return; /* the answer died with the agent */
		ev.type = ROT_EV_KME;
		ev.rotation = e->rotation;
		ev.kme = e->kme;
		ev.key_id = e->kme == ROT_KME_OK ? e->key_id : NULL;
		ev.detail = e->kme == ROT_KME_OK ? NULL : "scripted";
		handle(e->node, &ev);
		return;
	case Q_ROUTER: {
		enum rot_router_status st = router_apply(nd, e);
		if (!nd->up)
			return;
		ev.type = ROT_EV_ROUTER;
		ev.rotation = e->rotation;
		ev.op = e->op;
		ev.router = st;
		ev.detail = st == ROT_ROUTER_OK ? NULL : "scripted";
		handle(e->node, &ev);
		return;
	}
	}
}

static int64_t router_next(void)
{
	int64_t t = INT64_MAX;
	for (int i = 0; i < W->nnodes; i++)
		if (W->n[i].r.cc && W->n[i].r.cc_deadline < t)
			t = W->n[i].r.cc_deadline;
	return t;
}

/* Runs the world until time end. */
static void run_until(int64_t end)
{
	for (;;) {
		int64_t t = router_next();
		for (size_t i = 0; i < QUEUE_MAX; i++)
			if (W->q[i].used && W->q[i].at < t)
				t = W->q[i].at;
		for (int i = 0; i < W->nnodes; i++)
			if (W->n[i].up && rot_next_timer(&W->n[i].m) < t)
				t = rot_next_timer(&W->n[i].m);
		if (t > end)
			break;
		if (t > W->now)
			W->now = t;
		for (int i = 0; i < W->nnodes; i++) /* the routers' own rollback */
			if (W->n[i].r.cc && W->n[i].r.cc_deadline <= W->now)
				W->n[i].r.cc = false;
		bool any = false;
		for (size_t i = 0; i < QUEUE_MAX; i++) {
			if (W->q[i].used && W->q[i].at <= W->now) {
				struct qev e = W->q[i];
				W->q[i].used = false;
				deliver(&e);
				any = true;
				break; /* one at a time: delivery may enqueue */
			}
		}
		if (any)
			continue;
		for (int i = 0; i < W->nnodes; i++) {
			if (W->n[i].up && rot_next_timer(&W->n[i].m) <= W->now) {
				struct rot_event ev = {.type = ROT_EV_TICK};
				handle(i, &ev);
			}
		}
	}
	W->now = end;
}

static void run_for(int64_t ms)
{
	run_until(W->now + ms);
}

static void start_node(int i, bool from_disk)
{
	struct node *nd = &W->n[i];
	struct rot_actions *out = malloc(sizeof *out);
	char err[256];
	assert_non_null(out);
	assert_int_equal(rot_init(&nd->m, &nd->cfg, err, sizeof err), 0);
	nd->epoch++; /* qkd_epoch_next() */
	nd->seq = 0;
	nd->up = true;
	struct chan_state loaded;
	const struct chan_state *st = NULL;
	if (!from_disk) { /* the state file is lost */
		nd->has_disk = false;
		state_init(&nd->disk, CHANNEL, nd->cfg.role);
	}
	if (from_disk && nd->has_disk) {
		/* through the real file format, as after a crash */
		char dir[] = "/tmp/qkdrot.XXXXXX", path[64];
		assert_non_null(mkdtemp(dir));
		assert_int_equal(state_path(dir, CHANNEL, path, sizeof path), 0);
		assert_int_equal(state_save(path, &nd->disk, err, sizeof err), STATE_OK);
		assert_int_equal(state_load(path, &loaded, err, sizeof err), STATE_OK);
		assert_int_equal(unlink(path), 0);
		assert_int_equal(rmdir(dir), 0);
		st = &loaded;
	}
	if (rot_start(&nd->m, st, W->now, out, err, sizeof err) != 0)
		fail_msg("rot_start: %s", err);
	do_actions(i, out);
	free(out);
}

/* Kills an agent: its pending KME/router answers are lost, routers keep going. */
static void kill_node(int i)
{
	W->n[i].up = false;
}

static const char *NAMES[NODES_MAX] = {"A", "B", "C", "D"};

static void setup_world(int nslaves)
{
	uint32_t next_key = W->next_key; /* key_IDs stay unique across worlds */
	memset(W, 0, sizeof *W);
	W->next_key = next_key;
	char err[128];
	assert_int_equal(qkd_key_init(&W->key, SECRET, sizeof SECRET, err, sizeof err), 0);
	W->verbose = getenv("ROT_VERBOSE") != NULL;
	W->nnodes = 1 + nslaves;
	W->delay_ms = 1;
	W->kme_ms = 5;
	W->drop_ack_result = -1;
	W->now = 1000;
	for (int i = 0; i < W->nnodes; i++) {
		struct node *nd = &W->n[i];
		snprintf(nd->sae, sizeof nd->sae, "%s", NAMES[i]);
		assert_int_equal(qkd_replay_init(&nd->replay, 16), 0);
		W->router_ms[i] = i == 0 ? 50 : 30;
		struct rot_config *c = &nd->cfg;
		c->channel = CHANNEL;
		c->role = i == 0 ? QKD_ROLE_MASTER : QKD_ROLE_SLAVE;
		c->self = nd->sae;
		if (i == 0) {
			for (int s = 1; s < W->nnodes; s++)
				c->slaves[c->nslaves++] = NAMES[s];
		} else {
			c->master = NAMES[0];
		}
		c->conv = KD_CONV_PREFIX;
		c->prefix = PREFIX;
		c->key_bits = 8 * SUITE_BYTES;
		c->hello_s = 1;
		c->interval_s = 0; /* on demand, so each test decides */
		c->rto_ms = 250;
		c->rto_max_ms = 2000;
		c->deadline_ms = 10000;
		c->confirm_timeout_s = 60;
		c->dec_retries = 3;
		c->dec_retry_ms = 100;
		c->retry_ms = 2000;
	}
}

static void start_all(void)
{
	for (int i = 0; i < W->nnodes; i++)
		start_node(i, true);
	run_for(500);
}

static void free_world(void)
{
	for (int i = 0; i < W->nnodes; i++)
		qkd_replay_free(&W->n[i].replay);
	qkd_key_clear(&W->key);
	W->nnodes = 0;
}

static void rotate_now(void)
{
	struct rot_event ev = {.type = ROT_EV_ROTATE_NOW};
	handle(0, &ev);
}

static bool logged(int i, const char *needle)
{
	struct node *nd = &W->n[i];
	size_t first = nd->nlog > 64 ? nd->nlog - 64 : 0;
	for (size_t k = first; k < nd->nlog; k++)
		if (strstr(nd->log[k % 64], needle) != NULL)
			return true;
	return false;
}

/* Guarantee 1 (and the end of guarantee 2): every router of the channel holds
 * the same permanent CKN/CAK, no confirmed commit is left pending, and the CAK
 * is the KME's key for key_id under the channel's convention. Returns the
 * common key_ID. */
static const char *assert_common_key(void)
{
	const char *k = W->n[0].r.committed;
	for (int i = 0; i < W->nnodes; i++) {
		const struct router *r = &W->n[i].r;
		if (r->cc)
			fail_msg("router %s still has a pending confirmed commit", W->n[i].sae);
		if (strcmp(r->committed, k) != 0)
			fail_msg("router %s holds key %s, router A holds %s", W->n[i].sae,
			         r->committed, k);
		assert_string_equal(r->committed_ckn, W->n[0].r.committed_ckn);
		assert_string_equal(r->committed_cak, W->n[0].r.committed_cak);
	}
	if (k[0] != '\0') {
		char ckn[KD_CKN_LEN + 1], cak[KD_CAK_HEX_MAX + 1];
		derive(k, ckn, cak);
		assert_string_equal(W->n[0].r.committed_ckn, ckn);
		assert_string_equal(W->n[0].r.committed_cak, cak);
		assert_int_equal(strlen(cak), 2 * SUITE_BYTES);
	}
	return k;
}

static void assert_all_idle(void)
{
	for (int i = 0; i < W->nnodes; i++) {
		if (W->n[i].m.state != ROT_IDLE)
			fail_msg("agent %s in state %s", W->n[i].sae,
			         rot_state_name(W->n[i].m.state));
		assert_int_equal(W->n[i].disk.phase, STATE_PHASE_NONE);
		/* an agent whose state was lost knows no key until the next
		 * rotation; the routers' agreement is checked by assert_common_key */
		if (W->n[i].disk.current_key_id[0] != '\0')
			assert_string_equal(W->n[i].disk.current_key_id, W->n[i].r.committed);
	}
}

static int setup(void **state)
{
	W = calloc(1, sizeof *W);
	*state = W;
	return W == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	free_world(); /* also after a failed test */
	free(*state);
	return 0;
}

/* ---- tests ---- */

static void test_happy_path(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	assert_true(logged(0, "resync: common key confirmed"));
	rotate_now();
	run_for(2000);
	const char *k = assert_common_key();
	assert_true(k[0] != '\0');
	assert_all_idle();
	assert_int_equal(W->n[0].disk.current_rotation, 1);
	assert_int_equal(W->n[1].disk.current_rotation, 1);
	assert_int_equal(W->n[0].enc_calls, 1);
	assert_int_equal(W->n[1].dec_calls, 1);
	/* both routers staged once and confirmed once: a confirmed commit each */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(W->n[i].r.stages, 1);
		assert_int_equal(W->n[i].r.confirms, 1);
		assert_int_equal(W->n[i].r.cancels, 0);
	}
	assert_int_equal(W->n[0].nmetrics, 1);
	assert_true(W->n[0].metrics.ok);
	assert_true(logged(0, "done on every router"));
	struct rot_status st;
	rot_status(&W->n[0].m, W->now, &st);
	assert_string_equal(st.state, "IDLE");
	assert_int_equal(st.current_rotation, 1);
	assert_string_equal(st.current_key_id, k);
	assert_int_equal(st.rotations_ok, 1);
	assert_int_equal(st.npeers, 1);
	assert_string_equal(st.peers[0].sae, "B");
	assert_true(st.peers[0].alive);
	assert_true(st.peers[0].same_key);
	assert_int_equal(st.peers[0].current_rotation, 1);
	/* a second rotation moves both to a new key and never reuses a key_ID */
	char first[QKD_KEYID_MAX + 1];
	snprintf(first, sizeof first, "%s", k);
	rotate_now();
	run_for(2000);
	k = assert_common_key();
	assert_string_not_equal(k, first);
	assert_int_equal(W->n[1].disk.current_rotation, 2);
	free_world();
}

static void test_metrics(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	int64_t t0 = W->now;
	rotate_now();
	run_for(2000);
	assert_common_key();
	/* timeline: enc_keys 5 ms; master stage 50 ms -> staged at +55; ANNOUNCE
	 * +6, dec_keys +11, slave stage 30 ms -> +41, ACK at master +42:
	 * skew 13 ms. Confirm at +105, decision HELLO +106, slave confirm +136,
	 * its HELLO +137: confirm skew 32 ms, duration 137 ms. */
	const struct rot_metrics *x = &W->n[0].metrics;
	assert_true(x->ok);
	assert_int_equal(x->rotation, 1);
	assert_int_equal(x->skew_ms, 13);
	assert_int_equal(x->diverged_ms, 13);
	assert_int_equal(x->confirm_skew_ms, 32);
	assert_int_equal(x->duration_ms, 137);
	/* the breakdown: KME 5 ms, own stage 50 ms (+5 to +55), ANNOUNCE to ACK
	 * 37 ms (+5 to +42), own confirm 50 ms (decision at +55, done at +105) */
	assert_int_equal(x->kme_ms, 5);
	assert_int_equal(x->stage_ms, 50);
	assert_int_equal(x->ack_ms, 37);
	assert_int_equal(x->confirm_ms, 50);
	assert_int_equal(W->n[0].r.staged_at - t0, 55);
	assert_int_equal(W->n[1].r.staged_at - t0, 41);
	assert_true(logged(0, "skew 13 ms"));
	free_world();
}

static void test_duplicate_announce(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	/* every ANNOUNCE arrives twice, and the first ACK OK is lost: the master
	 * retransmits, the slave answers each copy with the same ACK */
	W->dup_announce = true;
	W->drop_type[QKD_MSG_ACK] = 1;
	W->drop_ack_result = QKD_RES_OK;
	rotate_now();
	run_for(3000);
	assert_common_key();
	assert_all_idle();
	assert_int_equal(W->n[1].dec_calls, 1); /* never fetched again */
	assert_true(W->n[1].acks[QKD_RES_OK] >= 2);
	for (int r = 1; r < 8; r++)
		assert_int_equal(W->n[1].acks[r], 0);
	assert_true(W->n[0].sent[QKD_MSG_ANNOUNCE] >= 2);
	free_world();
}

static void test_duplicate_after_failure_same_result(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	W->n[1].kme_key_lost = true;
	W->dup_announce = true;
	rotate_now();
	run_for(100);
	/* the slave answered the ANNOUNCE and its copy alike, one dec_keys */
	assert_int_equal(W->n[1].dec_calls, 1);
	assert_int_equal(W->n[1].acks[QKD_RES_KME_ERROR], 2);
	assert_int_equal(W->n[1].acks[QKD_RES_OK], 0);
	assert_int_equal(W->n[1].disk.last_result, QKD_RES_KME_ERROR);
	assert_string_equal(W->n[1].disk.last_detail, "key lost: scripted");
	free_world();
}

static void test_lost_announce_backoff(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	W->drop_type[QKD_MSG_ANNOUNCE] = 3;
	rotate_now();
	run_for(5000);
	assert_common_key();
	assert_all_idle();
	struct node *m = &W->n[0];
	assert_int_equal(m->nannounce, 4);
	/* retransmissions after 250, 500, 1000 ms: doubling */
	assert_int_equal(m->announce_times[1] - m->announce_times[0], 250);
	assert_int_equal(m->announce_times[2] - m->announce_times[1], 500);
	assert_int_equal(m->announce_times[3] - m->announce_times[2], 1000);
	assert_int_equal(W->n[1].dec_calls, 1);
	free_world();
}

static void test_lost_acks_and_decision(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	/* two ACKs and the first two decision HELLOs lost */
	W->drop_type[QKD_MSG_ACK] = 2;
	rotate_now();
	run_for(3000);
	assert_common_key();
	assert_all_idle();
	assert_int_equal(W->n[1].dec_calls, 1);
	assert_true(W->n[1].acks[QKD_RES_OK] >= 3);
	free_world();
}

/* A staged slave repeats its ACK OK until it hears the decision: here its
 * first ACK OK and every retransmitted ANNOUNCE are lost, so only its own
 * repeat can reach the master (without it, the master aborts at D). */
static void test_lost_ack_slave_repeats(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	W->drop_type[QKD_MSG_ACK] = 1;
	rotate_now();
	run_for(45);
	assert_int_equal(W->n[1].m.state, ROT_S_STAGED);
	assert_int_equal(W->n[1].acks[QKD_RES_OK], 1);
	W->drop_type[QKD_MSG_ANNOUNCE] = 1000;
	run_for(3000);
	assert_common_key();
	assert_all_idle();
	assert_true(W->n[0].nannounce >= 2); /* the master retransmitted, in vain */
	assert_int_equal(W->n[1].acks[QKD_RES_OK], 2);
	assert_int_equal(W->n[1].dec_calls, 1);
	assert_int_equal(W->n[0].m.st.rotations_ok, 1);
	/* the decision stops the repeats */
	run_for(10000);
	assert_int_equal(W->n[1].acks[QKD_RES_OK], 2);
	W->drop_type[QKD_MSG_ANNOUNCE] = 0;
	free_world();
}

/* A master slow to decide (its router takes 2 s per commit) hears the slave's
 * ACK OK repeated with the ANNOUNCE's backoff: 250, 500, 1000 ms, then the
 * maximum (2 s here), until its decision HELLO arrives; it no longer
 * retransmits its ANNOUNCE once every slave has ACKed OK. */
static void test_slow_decision_ack_backoff(void **state)
{
	(void)state;
	setup_world(1);
	W->router_ms[0] = 2000;
	start_all();
	rotate_now();
	run_for(10000);
	assert_common_key();
	assert_all_idle();
	/* staged at about 41 ms, decision at about 4,006 ms: repeats at
	 * 291, 791, 1791 and 3791 ms; the next (5791) is not due */
	assert_int_equal(W->n[1].acks[QKD_RES_OK], 5);
	/* and the master, which has every ACK OK, does not announce again while
	 * its own stage runs */
	assert_int_equal(W->n[0].nannounce, 1);
	assert_int_equal(W->n[0].m.st.rotations_ok, 1);
	assert_int_equal(W->n[0].m.st.rotations_failed, 0);
	free_world();
}

static void test_not_found_then_found(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	W->n[1].kme_not_found = 2; /* the key is still travelling between the KMEs */
	rotate_now();
	run_for(3000);
	assert_common_key();
	assert_all_idle();
	assert_int_equal(W->n[1].dec_calls, 3);
	assert_true(logged(1, "not found at the KME yet"));
	assert_int_equal(W->n[1].acks[QKD_RES_KME_NOT_FOUND], 0);
	free_world();
}

static void test_not_found_for_good(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	W->n[1].kme_not_found = 4; /* 1 + dec_retries (3) attempts, all not found */
	rotate_now();
	run_for(1500);
	assert_int_equal(W->n[1].dec_calls, 4);
	assert_int_equal(W->n[1].acks[QKD_RES_KME_NOT_FOUND], 1);
	assert_true(logged(0, "KME_NOT_FOUND"));
	/* both still on no key / old key, master cancelled its stage */
	assert_int_equal(W->n[0].r.cancels, 1);
	assert_string_equal(assert_common_key(), "");
	/* the retry rotation succeeds */
	run_for(5000);
	assert_true(assert_common_key()[0] != '\0');
	free_world();
}

static void test_key_lost_new_rotation(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	rotate_now();
	run_for(2000);
	char old[QKD_KEYID_MAX + 1];
	snprintf(old, sizeof old, "%s", assert_common_key());
	W->n[1].kme_key_lost = true;
	rotate_now();
	run_for(500);
	/* rotation 2 failed: both routers back on / still on the old key */
	assert_string_equal(assert_common_key(), old);
	assert_int_equal(W->n[0].disk.last_rotation, 2);
	assert_int_equal(W->n[0].disk.last_result, QKD_RES_KME_ERROR);
	assert_true(logged(0, "key lost"));
	assert_false(W->n[0].metrics.ok);
	/* the master starts a new rotation (3) by itself after the retry delay */
	run_for(3000);
	const char *k = assert_common_key();
	assert_string_not_equal(k, old);
	assert_int_equal(W->n[0].disk.current_rotation, 3);
	assert_int_equal(W->n[1].dec_calls, 3);
	assert_all_idle();
	free_world();
}

static void test_master_kme_fails(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	/* enc_keys fails: nothing announced, nothing staged, retried later */
	W->n[0].kme_error = true;
	rotate_now();
	run_for(100);
	assert_int_equal(W->n[0].sent[QKD_MSG_ANNOUNCE], 0);
	assert_int_equal(W->n[0].r.stages, 0);
	assert_int_equal(W->n[0].disk.last_result, QKD_RES_KME_ERROR);
	/* then the KME hangs: the deadline gives the request up */
	W->n[0].kme_hang = true;
	run_for(3000); /* the retry (2 s and up to half more) starts and hangs */
	assert_int_equal(W->n[0].enc_calls, 2);
	run_for(10000);
	assert_true(logged(0, "deadline: no answer from the KME"));
	W->n[0].kme_hang = false;
	run_for(10000);
	assert_true(assert_common_key()[0] != '\0');
	assert_all_idle();
	free_world();
}

static void test_slave_commit_refused(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	rotate_now();
	run_for(2000);
	char old[QKD_KEYID_MAX + 1];
	snprintf(old, sizeof old, "%s", assert_common_key());
	W->n[1].r.refuse_stage = true;
	rotate_now();
	run_for(1000);
	/* the master cancelled its confirmed commit: both stay on the old key */
	assert_string_equal(assert_common_key(), old);
	assert_int_equal(W->n[0].r.cancels, 1);
	assert_int_equal(W->n[1].acks[QKD_RES_COMMIT_FAILED], 1);
	assert_int_equal(W->n[0].disk.last_result, QKD_RES_COMMIT_FAILED);
	assert_true(logged(0, "COMMIT_FAILED"));
	/* the failed rotation reports the time the master's router ran alone */
	assert_false(W->n[0].metrics.ok);
	assert_true(W->n[0].metrics.diverged_ms > 0);
	assert_all_idle();
	/* retries keep failing safely while the router refuses, then succeed */
	run_for(3000);
	assert_string_equal(assert_common_key(), old);
	W->n[1].r.refuse_stage = false;
	run_for(10000);
	assert_string_not_equal(assert_common_key(), old);
	free_world();
}

static void test_master_commit_refused(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	rotate_now();
	run_for(2000);
	char old[QKD_KEYID_MAX + 1];
	snprintf(old, sizeof old, "%s", assert_common_key());
	W->n[0].r.refuse_stage = true;
	rotate_now();
	run_for(1000);
	/* the slave had staged; the master's HELLO (pending 0) made it cancel */
	assert_string_equal(assert_common_key(), old);
	assert_int_equal(W->n[1].r.stages, 2);
	assert_int_equal(W->n[1].r.cancels, 1);
	assert_true(logged(1, "cancelled"));
	assert_true(logged(0, "own router refused the stage"));
	assert_all_idle();
	free_world();
}

static void test_confirm_retried(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	W->n[0].r.refuse_confirm = 2; /* router unreachable for two confirms */
	rotate_now();
	run_for(3000);
	assert_common_key();
	assert_all_idle();
	assert_int_equal(W->n[0].r.confirms, 3);
	free_world();
}

static void test_peer_dead_skipped_and_retried(void **state)
{
	(void)state;
	setup_world(1);
	W->n[1].deaf_mute = true;
	start_all();
	rotate_now();
	assert_true(logged(0, "rotation skipped (operator): peer B dead: never heard"));
	assert_int_equal(W->n[0].enc_calls, 0);
	assert_int_equal(W->n[0].m.skipped, 1);
	run_for(2500);
	assert_true(W->n[0].m.skipped >= 2); /* retried, skipped again */
	assert_int_equal(W->n[0].enc_calls, 0);
	/* the slave comes back: the retry succeeds without operator action */
	W->n[1].deaf_mute = false;
	run_for(5000);
	assert_true(assert_common_key()[0] != '\0');
	assert_int_equal(W->n[0].enc_calls, 1);
	/* a peer that stops sending HELLO is dead after 3 intervals */
	W->n[1].deaf_mute = true;
	run_for(3500);
	rotate_now();
	assert_true(logged(0, "peer B dead: no HELLO for 3 intervals"));
	free_world();
}

static void test_busy(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	rotate_now();
	run_for(20); /* announcing */
	rotate_now();
	assert_true(logged(0, "rotation skipped (operator): busy: rotation 1 in progress"));
	run_for(1000);
	assert_common_key();
	assert_int_equal(W->n[0].disk.current_rotation, 1);
	/* the skipped request is retried after the retry delay */
	run_for(3000);
	assert_int_equal(W->n[0].disk.current_rotation, 2);
	assert_common_key();
	/* a slave whose HELLO says it is rotating makes the master skip too */
	struct qkd_msg msg = {0};
	msg.channel = CHANNEL;
	msg.type = QKD_MSG_HELLO;
	msg.sender.ptr = "B";
	msg.sender.len = 1;
	msg.u.hello.role = QKD_ROLE_SLAVE;
	msg.u.hello.state = QKD_STATE_ROTATING;
	msg.u.hello.interval = 1;
	msg.u.hello.current_rotation = 2;
	msg.u.hello.pending_rotation = 7;
	memcpy(msg.u.hello.digest, W->n[1].m.digest, QKD_DIGEST_LEN);
	struct rot_event ev = {.type = ROT_EV_FRAME, .msg = &msg};
	handle(0, &ev);
	int enc = W->n[0].enc_calls;
	rotate_now();
	assert_true(
	    logged(0, "rotation skipped (operator): peer B busy (state ROTATING, pending 7)"));
	assert_int_equal(W->n[0].enc_calls, enc);
	/* its next real HELLO says IDLE: the retry (2..3 s) goes ahead */
	run_for(4000);
	assert_int_equal(W->n[0].disk.current_rotation, 3);
	assert_common_key();
	free_world();
}

static void test_slave_busy_answer(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	/* a slave mid-rotation answers a different rotation with BUSY */
	W->n[1].kme_not_found = 1;
	rotate_now();
	run_for(12); /* slave waits to retry dec_keys */
	assert_int_equal(W->n[1].m.state, ROT_S_FETCH_WAIT);
	struct qkd_msg msg = {0};
	msg.channel = CHANNEL;
	msg.type = QKD_MSG_ANNOUNCE;
	msg.sender.ptr = "A";
	msg.sender.len = 1;
	msg.u.announce.rotation = 9;
	msg.u.announce.nkeys = 1;
	msg.u.announce.keys[0].ptr = "00000009-0000-4000-8000-000000000009";
	msg.u.announce.keys[0].len = 36;
	struct rot_event ev = {.type = ROT_EV_FRAME, .msg = &msg};
	handle(1, &ev);
	assert_int_equal(W->n[1].acks[QKD_RES_BUSY], 1);
	/* an older rotation is STALE once the slave is idle */
	run_for(2000);
	assert_common_key();
	msg.u.announce.rotation = 1;
	int ok_before = W->n[1].acks[QKD_RES_OK];
	handle(1, &ev); /* rotation 1 answered already: same answer again */
	assert_int_equal(W->n[1].acks[QKD_RES_OK], ok_before + 1);
	assert_int_equal(W->n[1].dec_calls, 2);
	free_world();
}

static void test_stale_and_foreign(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	rotate_now();
	run_for(2000);
	rotate_now();
	run_for(2000);
	assert_int_equal(W->n[1].disk.current_rotation, 2);
	int dec = W->n[1].dec_calls;
	struct qkd_msg msg = {0};
	msg.channel = CHANNEL;
	msg.type = QKD_MSG_ANNOUNCE;
	msg.sender.ptr = "A";
	msg.sender.len = 1;
	msg.u.announce.rotation = 1; /* older than the current one */
	msg.u.announce.nkeys = 1;
	msg.u.announce.keys[0].ptr = "00000001-0000-4000-8000-000000000001";
	msg.u.announce.keys[0].len = 36;
	struct rot_event ev = {.type = ROT_EV_FRAME, .msg = &msg};
	handle(1, &ev);
	assert_int_equal(W->n[1].acks[QKD_RES_STALE], 1);
	/* an ANNOUNCE from somebody who is not the channel's master changes nothing */
	msg.sender.ptr = "Z";
	msg.u.announce.rotation = 50;
	handle(1, &ev);
	assert_true(logged(1, "ANNOUNCE from Z dropped: not a peer"));
	/* nor one whose key_ID cannot make a CKN under the convention */
	msg.sender.ptr = "A";
	msg.u.announce.keys[0].ptr = "not-a-uuid";
	msg.u.announce.keys[0].len = 10;
	handle(1, &ev);
	assert_int_equal(W->n[1].acks[QKD_RES_INTERNAL], 1);
	assert_int_equal(W->n[1].dec_calls, dec);
	run_for(2000);
	assert_common_key();
	free_world();
}

static void test_two_slaves(void **state)
{
	(void)state;
	setup_world(2);
	W->router_ms[2] = 70; /* the slowest router sets the skew */
	start_all();
	assert_true(logged(0, "resync: common key confirmed"));
	rotate_now();
	run_for(2000);
	const char *k = assert_common_key();
	assert_true(k[0] != '\0');
	assert_all_idle();
	assert_int_equal(W->n[0].enc_calls, 1);
	assert_int_equal(W->n[1].dec_calls, 1);
	assert_int_equal(W->n[2].dec_calls, 1);
	/* stages as the master sees them: B's ACK at +42, its own at +55, C's
	 * ACK at +82: skew 40 ms */
	assert_int_equal(W->n[0].metrics.skew_ms, 40);
	/* one slave refusing fails the rotation for all three */
	W->n[2].r.refuse_stage = true;
	rotate_now();
	run_for(1000);
	assert_string_equal(assert_common_key(), k);
	assert_int_equal(W->n[1].r.cancels, 1);
	free_world();
}

static void test_restart_slave_staged(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	rotate_now();
	run_for(2000);
	char old[QKD_KEYID_MAX + 1];
	snprintf(old, sizeof old, "%s", assert_common_key());
	/* the slave dies after staging, before the master's decision arrives */
	W->drop_master_hello = true;
	rotate_now();
	run_for(45);
	assert_int_equal(W->n[1].m.state, ROT_S_STAGED);
	kill_node(1);
	run_for(200); /* the master confirms meanwhile; the slave's router still has the stage */
	assert_true(W->n[1].r.cc);
	W->drop_master_hello = false;
	start_node(1, true);
	assert_int_equal(W->n[1].m.state, ROT_S_STAGED);
	run_for(3000);
	/* the restarted slave learned the decision from the master's HELLO */
	const char *k = assert_common_key();
	assert_string_not_equal(k, old);
	assert_all_idle();
	assert_int_equal(W->n[1].dec_calls, 2);
	free_world();
}

static void test_restart_slave_fetching(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	rotate_now();
	run_for(8); /* dec_keys in flight */
	assert_int_equal(W->n[1].m.state, ROT_S_FETCHING);
	kill_node(1);
	run_for(100);
	start_node(1, true);
	/* the key may have been delivered and died with the process: never again */
	assert_int_equal(W->n[1].disk.last_result, QKD_RES_KME_ERROR);
	run_for(6000);
	const char *k = assert_common_key();
	assert_true(k[0] != '\0');
	assert_all_idle();
	assert_int_equal(W->n[0].disk.current_rotation, 2);
	assert_int_equal(W->n[1].dec_calls, 2); /* rotation 1 once, rotation 2 once */
	free_world();
}

/* A router busy with another channel's rotation defers the rotation: the
 * slave answers ROUTER_BUSY, the master cancels its stage and counts the
 * rotation as deferred (not failed), then retries after retry_ms. */
static void test_router_busy_deferred(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	rotate_now();
	run_for(2000);
	char old[QKD_KEYID_MAX + 1];
	snprintf(old, sizeof old, "%s", assert_common_key());
	W->n[1].r.busy_stage = true;
	rotate_now();
	run_for(1000);
	assert_string_equal(assert_common_key(), old);
	assert_int_equal(W->n[1].acks[QKD_RES_ROUTER_BUSY], 1);
	assert_int_equal(W->n[0].disk.last_result, QKD_RES_ROUTER_BUSY);
	struct rot_status st;
	rot_status(&W->n[0].m, W->now, &st);
	assert_int_equal(st.rotations_deferred, 1);
	assert_int_equal(st.rotations_failed, 0);
	rot_status(&W->n[1].m, W->now, &st);
	assert_int_equal(st.rotations_deferred, 1);
	assert_int_equal(st.rotations_failed, 0);
	assert_true(logged(0, "deferred"));
	assert_false(logged(0, "failed"));
	assert_all_idle();
	/* the retry comes after retry_ms (2 s here, stretched by up to half per
	 * channel and attempt), not a doubling backoff */
	W->n[1].r.busy_stage = false;
	run_for(3500);
	assert_string_not_equal(assert_common_key(), old);
	rot_status(&W->n[0].m, W->now, &st);
	assert_int_equal(st.rotations_ok, 2);
	assert_int_equal(st.rotations_failed, 0);
	/* the master's own router busy: deferred alike */
	snprintf(old, sizeof old, "%s", assert_common_key());
	W->n[0].r.busy_stage = true;
	rotate_now();
	run_for(1000);
	assert_string_equal(assert_common_key(), old);
	rot_status(&W->n[0].m, W->now, &st);
	assert_int_equal(st.rotations_deferred, 2);
	assert_int_equal(st.rotations_failed, 0);
	assert_true(logged(0, "own router busy"));
	W->n[0].r.busy_stage = false;
	run_for(3500);
	assert_string_not_equal(assert_common_key(), old);
	free_world();
}

static const char *busy_router(void *arg)
{
	return *(const char **)arg;
}

/* One channel whose master asks busy_router(*why) before each start, keyed
 * by a first rotation (its key_ID in old). Returns the master's enc_keys calls. */
static int world_with_router_busy(const char **why, char *old, size_t oldlen)
{
	setup_world(1);
	W->n[0].cfg.router_busy = busy_router;
	W->n[0].cfg.router_arg = why;
	start_all();
	rotate_now();
	run_for(2000);
	snprintf(old, oldlen, "%s", assert_common_key());
	return W->n[0].enc_calls;
}

/* Scale findings 7, 9 and 10: a master whose own router is busy does not
 * start (no KME key spent) and tries again within ROT_ROUTER_WAIT_MS and
 * half; a channel that holds a key and is deferred retries quickly once, then
 * after the plain retry delay, not a doubled one. */
static void test_own_router_busy_no_key_spent(void **state)
{
	(void)state;
	const char *why = NULL;
	char old[QKD_KEYID_MAX + 1];
	int enc = world_with_router_busy(&why, old, sizeof old);
	why = "channel 9 is rotating";
	rotate_now();
	run_for(5000);
	assert_int_equal(W->n[0].enc_calls, enc); /* no key taken while busy */
	assert_true(logged(0, "own router busy (channel 9 is rotating)"));
	struct rot_status st;
	rot_status(&W->n[0].m, W->now, &st);
	assert_true(st.skipped >= 3); /* 5 s, a try every 1..1.5 s */
	assert_int_equal(st.rotations_deferred, 0);
	assert_int_equal(st.rotations_failed, 0);
	why = NULL;
	run_for(1600);
	assert_int_equal(W->n[0].enc_calls, enc + 1);
	assert_string_not_equal(assert_common_key(), old);
	/* deferred three times in a row by the slave's router, with a key held:
	 * the first retry within ROT_ROUTER_WAIT_MS and half (finding 10), the
	 * next ones within retry_ms and half (2..3 s here), never doubled */
	snprintf(old, sizeof old, "%s", assert_common_key());
	W->n[1].r.busy_stage = true;
	rotate_now();
	run_for(1700); /* the first refusal and the quick retry: refused again */
	rot_status(&W->n[0].m, W->now, &st);
	assert_int_equal(st.rotations_deferred, 2);
	run_for(1000); /* no second quick retry */
	rot_status(&W->n[0].m, W->now, &st);
	assert_int_equal(st.rotations_deferred, 2);
	run_for(2000); /* the plain retry, 2..3 s after the second refusal */
	rot_status(&W->n[0].m, W->now, &st);
	assert_int_equal(st.rotations_deferred, 3);
	W->n[1].r.busy_stage = false;
	run_for(3100); /* the next one: not doubled (would be 4..6 s) */
	assert_string_not_equal(assert_common_key(), old);
	/* after a completed rotation the next refusal is retried quickly again */
	snprintf(old, sizeof old, "%s", assert_common_key());
	W->n[1].r.busy_stage = true;
	rotate_now();
	run_for(1700);
	rot_status(&W->n[0].m, W->now, &st);
	assert_int_equal(st.rotations_deferred, 5);
	W->n[1].r.busy_stage = false;
	run_for(3100);
	assert_string_not_equal(assert_common_key(), old);
	free_world();
}

/* Scale finding 12: a master whose start found its own router busy waits for
 * it (rot_waits_for_router) and starts as soon as the daemon says the router
 * is free (ROT_EV_ROUTER_FREE), not at its retry 1..1.5 s later; a master
 * that does not wait for the router ignores the event. rot_slaves_busy()
 * tells the daemon that a rotation confirmed here still holds its slave. */
static void test_router_free_starts_waiting_master(void **state)
{
	(void)state;
	const char *why = NULL;
	char old[QKD_KEYID_MAX + 1];
	int enc = world_with_router_busy(&why, old, sizeof old);
	struct rot_event free_ev = {.type = ROT_EV_ROUTER_FREE};
	handle(0, &free_ev); /* idle, not waiting: nothing starts */
	assert_false(rot_waits_for_router(&W->n[0].m));
	assert_int_equal(W->n[0].enc_calls, enc);
	assert_int_equal(W->n[0].m.state, ROT_IDLE);
	why = "channel 9 is rotating";
	rotate_now();
	run_for(100);
	assert_true(rot_waits_for_router(&W->n[0].m));
	assert_int_equal(W->n[0].enc_calls, enc);
	handle(0, &free_ev); /* still busy: skipped again, still waiting */
	assert_true(rot_waits_for_router(&W->n[0].m));
	assert_int_equal(W->n[0].enc_calls, enc);
	why = NULL;
	handle(0, &free_ev); /* free: starts now, 100 ms after the skip */
	assert_false(rot_waits_for_router(&W->n[0].m));
	assert_int_equal(W->n[0].enc_calls, enc + 1);
	assert_int_equal(W->n[0].m.state, ROT_M_FETCHING);
	assert_false(rot_slaves_busy(&W->n[0].m));
	/* confirmed on the own router, the slave's confirm still to come: the
	 * daemon wakes no other master yet (its stage would meet this tail) */
	for (int i = 0; i < 2000 && W->n[0].m.state != ROT_M_COMMITTING; i++)
		run_for(1);
	assert_int_equal(W->n[0].m.state, ROT_M_COMMITTING);
	assert_true(rot_slaves_busy(&W->n[0].m));
	run_for(2000);
	assert_false(rot_slaves_busy(&W->n[0].m));
	assert_string_not_equal(assert_common_key(), old);
	/* a slave never waits for the router this way, nor holds slaves */
	assert_false(rot_waits_for_router(&W->n[1].m));
	assert_false(rot_slaves_busy(&W->n[1].m));
	free_world();
}

/* Scale finding 6: a slave that goes silent while the master announces gives
 * the master's router back after 3 HELLO intervals (3 s here), not at the
 * deadline D (10 s here). */
static void test_silent_slave_releases_router(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	rotate_now();
	run_for(2000);
	char old[QKD_KEYID_MAX + 1];
	snprintf(old, sizeof old, "%s", assert_common_key());
	W->n[1].deaf_mute = true;
	rotate_now();
	run_for(4500);
	assert_true(logged(0, "peer B dead: no HELLO for 3 intervals"));
	assert_int_equal(W->n[0].m.state, ROT_IDLE);
	assert_false(W->n[0].r.cc); /* the own stage was cancelled */
	assert_string_equal(W->n[0].r.committed, old);
	W->n[1].deaf_mute = false;
	run_for(15000);
	assert_string_not_equal(assert_common_key(), old);
	free_world();
}

/* The writes of one rotation (protocol.md 10.3): the master writes before
 * the ANNOUNCE, the decision, and at the end; the slave before dec_keys,
 * before its ACK OK, and at the end. The counts survive a restart. */
static void test_writes_per_rotation(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	rotate_now();
	run_for(2000);
	assert_common_key();
	int w0 = W->n[0].writes, w1 = W->n[1].writes;
	rotate_now();
	run_for(2000);
	assert_common_key();
	assert_int_equal(W->n[0].writes - w0, 3);
	assert_int_equal(W->n[1].writes - w1, 3);
	/* the last write holds the outcome */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(W->n[i].disk.current_rotation, 2);
		assert_int_equal(W->n[i].disk.pending_rotation, 0);
		assert_int_equal(W->n[i].disk.rotations_ok, 2);
	}
	kill_node(0);
	kill_node(1);
	start_node(0, true);
	start_node(1, true);
	struct rot_status st;
	rot_status(&W->n[0].m, W->now, &st);
	assert_int_equal(st.rotations_ok, 2);
	rot_status(&W->n[1].m, W->now, &st);
	assert_int_equal(st.rotations_ok, 2);
	run_for(3000);
	assert_common_key();
	assert_all_idle();
	free_world();
}

/* The slave killed while its stage runs: its file says "fetching" (it does
 * not write "staging"), so the restart cancels the stage that landed. */
static void test_restart_slave_staging(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	rotate_now();
	run_for(2000);
	char old[QKD_KEYID_MAX + 1];
	snprintf(old, sizeof old, "%s", assert_common_key());
	rotate_now();
	run_for(8 + 5); /* dec_keys answered: the stage is in flight */
	assert_int_equal(W->n[1].m.state, ROT_S_STAGING);
	assert_int_equal(W->n[1].disk.phase, STATE_PHASE_FETCHING);
	kill_node(1);
	run_for(100); /* the stage lands on the router with nobody to answer */
	assert_true(W->n[1].r.cc);
	start_node(1, true);
	assert_int_equal(W->n[1].m.state, ROT_S_CANCELLING);
	run_for(200);
	assert_false(W->n[1].r.cc);
	assert_int_equal(W->n[1].disk.last_result, QKD_RES_KME_ERROR);
	run_for(8000);
	const char *k = assert_common_key();
	assert_string_not_equal(k, old);
	assert_all_idle();
	free_world();
}

/* NO_KEY (a lost state file, or a router that lacks the CA): the agent
 * forgets its key and the master rotates afresh; on a channel with scheduled
 * rotations (or provisioning) a master that knows no key at all rotates at
 * once, even when its slaves know none either. */
static void test_no_key(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	rotate_now();
	run_for(2000);
	char old[QKD_KEYID_MAX + 1];
	snprintf(old, sizeof old, "%s", assert_common_key());
	/* the slave's router lost the CA */
	struct rot_event ev = {.type = ROT_EV_NO_KEY, .detail = "router lacks CA X"};
	handle(1, &ev);
	assert_true(logged(1, "router lacks CA X: key_ID"));
	assert_string_equal(W->n[1].disk.current_key_id, "");
	run_for(3000);
	assert_true(logged(0, "key mismatch with B"));
	const char *k = assert_common_key();
	assert_string_not_equal(k, old);
	assert_all_idle();
	/* both agents lose their state: empty digests on both sides */
	snprintf(old, sizeof old, "%s", k);
	handle(0, &ev);
	handle(1, &ev);
	run_for(3000);
	k = assert_common_key();
	assert_string_not_equal(k, old);
	assert_all_idle();
	free_world();

	/* first start of a channel with scheduled rotations: at once, not after
	 * the interval */
	setup_world(1);
	for (int i = 0; i < W->nnodes; i++) {
		W->n[i].cfg.interval_s = 3600;
		W->n[i].cfg.fresh_if_no_key = true;
	}
	start_all();
	run_for(3000);
	assert_true(logged(0, "no key known on this channel"));
	k = assert_common_key();
	assert_true(k[0] != '\0');
	free_world();

	/* an on-demand channel without provisioning waits for the operator */
	setup_world(1);
	start_all();
	run_for(3000);
	assert_true(logged(0, "resync: common key confirmed"));
	assert_int_equal(W->n[0].enc_calls, 0);
	free_world();
}

/* A stage whose answer is lost (the session broke mid-commit) may have
 * landed: the agent cancels it by persist-id instead of leaving it to the
 * router's timeout, on either side. */
static void test_stage_outcome_unknown(void **state)
{
	(void)state;
	for (int side = 1; side >= 0; side--) {
		setup_world(1);
		start_all();
		rotate_now();
		run_for(2000);
		char old[QKD_KEYID_MAX + 1];
		snprintf(old, sizeof old, "%s", assert_common_key());
		W->n[side].r.lost_stage = true;
		rotate_now();
		run_for(1500);
		/* cancelled within the run, long before the 60 s router timeout */
		assert_false(W->n[side].r.cc);
		assert_false(W->n[1 - side].r.cc);
		assert_string_equal(assert_common_key(), old);
		assert_true(W->n[side].r.cancels >= 1);
		assert_true(logged(side, "outcome unknown"));
		if (side == 1)
			assert_int_equal(W->n[1].acks[QKD_RES_COMMIT_FAILED], 1);
		assert_all_idle();
		W->n[side].r.lost_stage = false;
		run_for(10000);
		assert_string_not_equal(assert_common_key(), old);
		free_world();
	}
	/* the master aborts (its slave's router is busy) while its own stage is
	 * still in flight, and that stage then ends unknown: it is cancelled too
	 * (found at 1,000 channels: a confirmed commit left pending blocked the
	 * router until its timeout) */
	setup_world(1);
	start_all();
	rotate_now();
	run_for(2000);
	char old[QKD_KEYID_MAX + 1];
	snprintf(old, sizeof old, "%s", assert_common_key());
	W->router_ms[0] = 300; /* the slave's answer comes first */
	W->n[1].r.busy_stage = true;
	W->n[0].r.lost_stage = true;
	rotate_now();
	run_for(1500);
	assert_int_equal(W->n[1].acks[QKD_RES_ROUTER_BUSY], 1);
	assert_false(W->n[0].r.cc);
	assert_true(W->n[0].r.cancels >= 1);
	assert_string_equal(assert_common_key(), old);
	assert_all_idle();
	free_world();
}

/* Scheduled rotations spread (protocol.md 10.2): channels started together
 * fall due at their own phases, and retries differ per channel. */
static void test_spreading(void **state)
{
	(void)state;
	int64_t first[8];
	for (int ch = 0; ch < 8; ch++) {
		setup_world(1);
		for (int i = 0; i < W->nnodes; i++) {
			W->n[i].cfg.channel = 100 + (uint32_t)ch;
			W->n[i].cfg.interval_s = 60;
		}
		for (int i = 0; i < W->nnodes; i++)
			start_node(i, false);
		first[ch] = W->n[0].m.rotate_due - W->now;
		/* within (interval/2, interval] */
		assert_true(first[ch] >= 30000 && first[ch] <= 60000);
		free_world();
	}
	int distinct = 0;
	for (int i = 0; i < 8; i++) {
		bool seen = false;
		for (int j = 0; j < i; j++)
			seen = seen || first[j] == first[i];
		distinct += !seen;
	}
	assert_true(distinct >= 7);
}

/* A channel that knows no key keeps its retry delay: the HELLOs that show
 * the missing key never pull a deferred or failed attempt forward (found at
 * 100 channels: a storm of attempts, each costing a KME key), and deferrals
 * back off like failures. */
static void test_no_key_keeps_retry_delay(void **state)
{
	(void)state;
	setup_world(1);
	for (int i = 0; i < W->nnodes; i++)
		W->n[i].cfg.fresh_if_no_key = true;
	W->n[1].r.busy_stage = true;
	start_all();
	run_for(3000); /* the first attempt (within retry_ms of the first HELLOs) */
	int enc = W->n[0].enc_calls;
	assert_true(enc >= 1);
	struct rot_status st;
	rot_status(&W->n[0].m, W->now, &st);
	assert_true(st.rotations_deferred >= 1);
	/* HELLOs every second: no attempt before the retry delay (2..3 s, then
	 * 4..6 s) */
	int64_t t0 = W->now;
	int attempts = 0;
	while (W->now - t0 < 10000) {
		int e = W->n[0].enc_calls;
		run_for(100);
		attempts += W->n[0].enc_calls - e;
	}
	assert_true(attempts <= 3);
	W->n[1].r.busy_stage = false;
	run_for(20000);
	assert_true(assert_common_key()[0] != '\0');
	free_world();
}

static void test_restart_master_before_decision(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	rotate_now();
	run_for(2000);
	char old[QKD_KEYID_MAX + 1];
	snprintf(old, sizeof old, "%s", assert_common_key());
	rotate_now();
	run_for(45); /* slave staged, master's stage in flight */
	kill_node(0);
	run_for(100);
	assert_true(W->n[0].r.cc); /* the router finished the stage without the agent */
	start_node(0, true);
	run_for(300);
	/* the master cancelled (no decision was made); the slave cancelled on its HELLO */
	assert_string_equal(assert_common_key(), old);
	assert_true(logged(0, "cancelling after restart"));
	/* and a fresh rotation follows, without operator action */
	run_for(8000);
	assert_string_not_equal(assert_common_key(), old);
	assert_all_idle();
	free_world();
}

static void test_restart_master_after_decision(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	rotate_now();
	run_for(56); /* both staged, the master's confirm in flight */
	assert_int_equal(W->n[0].m.state, ROT_M_CONFIRMING);
	assert_int_equal(W->n[0].disk.phase, STATE_PHASE_CONFIRMING);
	kill_node(0);
	run_for(100);
	start_node(0, true);
	run_for(2000);
	/* confirmed again (the read-back says it is), then the slave confirmed */
	const char *k = assert_common_key();
	assert_true(k[0] != '\0');
	assert_all_idle();
	assert_int_equal(W->n[0].disk.current_rotation, 1);
	assert_true(logged(0, "confirming again after restart"));
	free_world();
}

static void test_lost_state_resync(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	rotate_now();
	run_for(2000);
	char old[QKD_KEYID_MAX + 1];
	snprintf(old, sizeof old, "%s", assert_common_key());
	/* the slave's state file was corrupt: it starts knowing no key */
	kill_node(1);
	W->n[1].has_disk = false;
	run_for(100);
	start_node(1, false);
	run_for(6000);
	assert_true(logged(0, "key mismatch with B"));
	const char *k = assert_common_key();
	assert_string_not_equal(k, old);
	assert_all_idle();
	assert_int_equal(W->n[0].disk.current_rotation, 2);
	/* the master lost its state: rotation IDs go on above the slave's */
	kill_node(0);
	W->n[0].has_disk = false;
	run_for(100);
	start_node(0, false);
	run_for(6000);
	assert_common_key();
	assert_all_idle();
	assert_int_equal(W->n[0].disk.current_rotation, 3);
	free_world();
}

static void test_decision_lost_bounded_recovery(void **state)
{
	(void)state;
	setup_world(1);
	start_all();
	rotate_now();
	run_for(2000);
	/* every master HELLO is lost from the decision on: the slave never hears
	 * it and cancels before its router's timeout; the master sees the slave
	 * on the old key and rotates afresh once HELLOs flow again */
	rotate_now();
	run_for(100);
	W->drop_master_hello = true;
	run_for(60000);
	W->drop_master_hello = false;
	run_for(10000);
	assert_common_key();
	assert_all_idle();
	assert_true(logged(0, "did not confirm"));
	free_world();
}

/*
 * Guarantee 2 under random faults: frames lost and reordered, ACKs and
 * decisions lost, KME "not found" and "key lost", refused stages, and agents
 * killed at random moments of a rotation and restarted from their persisted
 * state. After the faults stop, every router of the channel is on one common
 * key within a bounded time (T_c + a few hello intervals + one rotation),
 * with no confirmed commit left pending and no key_ID reused.
 */
static void test_random_faults(void **state)
{
	(void)state;
	char seen[64][QKD_KEYID_MAX + 1];
	size_t nseen = 0;
	int failed = 0, cancels = 0, restarts_mid = 0;
	for (unsigned round = 0; round < 40; round++) {
		setup_world(1 + round % 2);
		W->rng = 0x5eed0000u + round;
		start_all();
		for (int step = 0; step < 3; step++) {
			W->loss_pct = rnd(40);
			W->jitter_ms = rnd(3) == 0 ? 20 : 0;
			int victim = (int)rnd((uint32_t)W->nnodes);
			switch (rnd(5)) {
			case 0:
				W->n[victim].kme_not_found = (int)rnd(6);
				break;
			case 1:
				W->n[victim].kme_key_lost = victim != 0;
				break;
			case 2:
				W->n[victim].r.refuse_stage = true;
				break;
			default:
				break;
			}
			rotate_now();
			run_for(rnd(200));
			if (rnd(2) == 0) {
				int k = (int)rnd((uint32_t)W->nnodes);
				restarts_mid += W->n[k].m.state != ROT_IDLE;
				kill_node(k);
				run_for(rnd(3000));
				start_node(k, rnd(8) != 0); /* sometimes the state is lost */
			}
			run_for(rnd(4000));
			for (int i = 0; i < W->nnodes; i++)
				W->n[i].r.refuse_stage = false;
		}
		/* heal, then the bound: T_c (60 s) + 3 H + one rotation */
		W->loss_pct = 0;
		W->jitter_ms = 0;
		run_for(60000 + 3000 + 15000);
		const char *k = assert_common_key();
		assert_all_idle();
		for (int i = 0; i < W->nnodes; i++)
			cancels += W->n[i].r.cancels;
		failed += W->n[0].nmetrics - (int)W->n[0].m.st.rotations_ok;
		if (k[0] != '\0') {
			for (size_t i = 0; i < nseen; i++)
				assert_string_not_equal(seen[i], k);
			if (nseen < 64)
				snprintf(seen[nseen++], sizeof seen[0], "%s", k);
		}
		free_world();
	}
	/* the faults did happen: failed rotations, rollbacks, restarts mid-rotation */
	if (getenv("ROT_VERBOSE") != NULL)
		fprintf(stderr,
		        "random: %d failed rotations, %d cancels, %d restarts mid-rotation\n",
		        failed, cancels, restarts_mid);
	assert_true(failed >= 20);
	assert_true(cancels >= 20);
	assert_true(restarts_mid >= 5);
}

static void test_config_and_api_errors(void **state)
{
	(void)state;
	setup_world(1);
	struct rot_machine m;
	struct rot_config c = W->n[0].cfg;
	char err[256];
	c.nslaves = 0;
	assert_int_equal(rot_init(&m, &c, err, sizeof err), -1);
	c = W->n[0].cfg;
	c.slaves[0] = "A";
	assert_int_equal(rot_init(&m, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "own"));
	c = W->n[0].cfg;
	c.confirm_timeout_s = 5;
	assert_int_equal(rot_init(&m, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "confirm timeout"));
	c = W->n[0].cfg;
	c.prefix = "abc";
	assert_int_equal(rot_init(&m, &c, err, sizeof err), -1);
	c = W->n[0].cfg;
	assert_int_equal(rot_init(&m, &c, err, sizeof err), 0);
	struct chan_state st;
	state_init(&st, CHANNEL + 1, QKD_ROLE_MASTER);
	struct rot_actions *out = malloc(sizeof *out);
	assert_non_null(out);
	assert_int_equal(rot_start(&m, &st, 0, out, err, sizeof err), -1);
	assert_non_null(strstr(err, "channel 8"));
	state_init(&st, CHANNEL, QKD_ROLE_MASTER);
	assert_int_equal(rot_start(&m, &st, 100, out, err, sizeof err), 0);
	struct rot_event ev = {.type = ROT_EV_TICK, .now_ms = 50};
	assert_int_equal(rot_handle(&m, &ev, out, err, sizeof err), -1);
	assert_non_null(strstr(err, "backwards"));
	free(out);
	free_world();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_happy_path, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_announce, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_after_failure_same_result, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_lost_announce_backoff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lost_acks_and_decision, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lost_ack_slave_repeats, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_decision_ack_backoff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_found_then_found, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_found_for_good, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key_lost_new_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_master_kme_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slave_commit_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_master_commit_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_confirm_retried, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_peer_dead_skipped_and_retried, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slave_busy_answer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_and_foreign, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_slaves, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart_slave_staged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart_slave_fetching, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart_slave_staging, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_router_busy_deferred, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_own_router_busy_no_key_spent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_router_free_starts_waiting_master, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_silent_slave_releases_router, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_writes_per_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stage_outcome_unknown, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spreading, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_key_keeps_retry_delay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart_master_before_decision, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart_master_after_decision, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lost_state_resync, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_decision_lost_bounded_recovery, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random_faults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_and_api_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
