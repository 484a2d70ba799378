/*
 * rotation.c - the per-channel rotation state machine (docs/protocol.md
 * section 10). Pure: every input is an event, every output an action.
 */
#include "rotation.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NEVER INT64_MAX

/* ---- small helpers ---- */

static int failf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failf(char *err, size_t errlen, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strnlen(src, cap - 1) : 0;
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Keeps only printable ASCII (ACK DETAIL and state last.detail rules). */
static void copy_detail(char *dst, const char *src)
{
	size_t o = 0;
	for (size_t i = 0; src != NULL && src[i] != '\0' && o < QKD_DETAIL_MAX; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[o++] = (c >= 0x20 && c <= 0x7E) ? (char)c : '?';
	}
	dst[o] = '\0';
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static bool is_master(const struct rot_machine *m)
{
	return m->cfg.role == QKD_ROLE_MASTER;
}

static int64_t tc_ms(const struct rot_machine *m)
{
	return (int64_t)m->cfg.confirm_timeout_s * 1000;
}

/* T_c - margin, margin = min(T_c / 4, 10 s) */
static int64_t commit_window(const struct rot_machine *m)
{
	return tc_ms(m) - min64(tc_ms(m) / 4, 10000);
}

static struct rot_action *push(struct rot_actions *out, enum rot_act_type t, uint32_t rotation)
{
	if (out->n >= ROT_ACTIONS_MAX) {
		out->overflow = true;
		return NULL;
	}
	struct rot_action *a = &out->a[out->n++];
	memset(a, 0, sizeof *a);
	a->type = t;
	a->rotation = rotation;
	return a;
}

static void logf_(struct rot_machine *m, struct rot_actions *out, enum rot_log_level lvl,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void logf_(struct rot_machine *m, struct rot_actions *out, enum rot_log_level lvl,
                  const char *fmt, ...)
{
	struct rot_action *a = push(out, ROT_ACT_LOG, m->rot);
	if (a == NULL)
		return;
	a->level = lvl;
	int n = snprintf(a->text, sizeof a->text, "channel %u %s: ", (unsigned)m->cfg.channel,
	                 qkd_role_name(m->cfg.role));
	if (n < 0 || (size_t)n >= sizeof a->text)
		n = 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->text + n, sizeof a->text - (size_t)n, fmt, ap);
	va_end(ap);
}

static void persist(struct rot_machine *m, struct rot_actions *out)
{
	struct rot_action *a = push(out, ROT_ACT_PERSIST, m->rot);
	if (a != NULL)
		a->state = &m->st;
}

static void set_digest(struct rot_machine *m)
{
	struct qkd_str k = {m->st.current_key_id, strlen(m->st.current_key_id)};
	if (k.len == 0 || qkd_keyids_digest(&k, 1, m->digest) != 0)
		memset(m->digest, 0, sizeof m->digest);
}

static void persist_id(const struct rot_machine *m, uint32_t rot, char *buf)
{
	snprintf(buf, ROT_PERSIST_ID_MAX, "qkdlink-%u-%u", (unsigned)m->cfg.channel, (unsigned)rot);
}

/* The retransmission timer (10.2): the master's ANNOUNCE and decision HELLO,
 * and a staged slave's ACK OK, which it repeats until it hears the decision
 * (the master's retransmitted ANNOUNCE alone gives a lost ACK one chance per
 * round trip, and a rotation whose every ACK is lost within D is aborted). */
static void rto_start(struct rot_machine *m, int64_t now)
{
	m->rto = m->cfg.rto_ms;
	m->t_rto = now + m->rto;
}

/* After a retransmission: the next one after twice the wait, at most rto_max. */
static void rto_backoff(struct rot_machine *m)
{
	m->rto = min64(m->rto * 2, m->cfg.rto_max_ms);
	m->t_rto = m->now + m->rto;
}

/* HELLO fields: what this side's router holds and what is in progress. */
static void send_hello(struct rot_machine *m, struct rot_actions *out)
{
	struct rot_action *a = push(out, ROT_ACT_SEND, m->rot);
	if (a == NULL)
		return;
	struct qkd_hello *h = &a->msg.u.hello;
	a->msg.type = QKD_MSG_HELLO;
	h->role = m->cfg.role;
	h->interval = m->cfg.hello_s;
	h->current_rotation = m->st.current_rotation;
	memcpy(h->digest, m->digest, QKD_DIGEST_LEN);
	switch (m->state) {
	case ROT_IDLE:
		h->state = m->resync ? QKD_STATE_RESYNC : QKD_STATE_IDLE;
		h->pending_rotation = 0;
		break;
	case ROT_M_ABORTING:
		h->state = QKD_STATE_ROTATING;
		h->pending_rotation = 0; /* R given up: slaves cancel */
		break;
	case ROT_M_COMMITTING:
		h->state = QKD_STATE_ROTATING;
		h->pending_rotation = m->rot; /* with current = R: "confirm and tell me" */
		break;
	default:
		h->state = QKD_STATE_ROTATING;
		h->pending_rotation = m->st.pending_rotation;
		break;
	}
	m->next_hello = m->now + (int64_t)m->cfg.hello_s * 1000;
}

static void send_announce(struct rot_machine *m, struct rot_actions *out)
{
	struct rot_action *a = push(out, ROT_ACT_SEND, m->rot);
	if (a == NULL)
		return;
	copy_str(a->key_id, sizeof a->key_id, m->key_id);
	a->msg.type = QKD_MSG_ANNOUNCE;
	a->msg.u.announce.rotation = m->rot;
	a->msg.u.announce.nkeys = 1;
	a->msg.u.announce.keys[0].ptr = a->key_id;
	a->msg.u.announce.keys[0].len = strlen(a->key_id);
}

static void send_ack(struct rot_machine *m, struct rot_actions *out, uint32_t rot, uint8_t result,
                     const char *detail)
{
	struct rot_action *a = push(out, ROT_ACT_SEND, rot);
	if (a == NULL)
		return;
	copy_detail(a->detail, detail);
	a->msg.type = QKD_MSG_ACK;
	a->msg.u.ack.rotation = rot;
	a->msg.u.ack.result = result;
	a->msg.u.ack.detail.ptr = a->detail;
	a->msg.u.ack.detail.len = strlen(a->detail);
	(void)m;
}

static void router_op(struct rot_machine *m, struct rot_actions *out, enum rot_act_type t)
{
	struct rot_action *a = push(out, t, m->rot);
	if (a == NULL)
		return;
	copy_str(a->key_id, sizeof a->key_id, m->key_id);
	persist_id(m, m->rot, a->persist_id);
	/* the CKN also lets the daemon read back which key a router holds */
	char err[128];
	if (kd_ckn(m->cfg.conv, m->prefix, m->key_id, a->ckn, err, sizeof err) != 0)
		a->ckn[0] = '\0'; /* checked before staging */
	if (t == ROT_ACT_ROUTER_STAGE)
		a->confirm_timeout_s = m->cfg.confirm_timeout_s;
}

static bool peer_alive(const struct rot_machine *m, const struct rot_peer *p)
{
	return p->heard && m->now - p->last_hello_ms <= 3 * (int64_t)p->interval_s * 1000;
}

static struct rot_peer *find_peer(struct rot_machine *m, const struct qkd_str *sender)
{
	for (size_t i = 0; i < m->npeers; i++)
		if (strlen(m->peers[i].sae) == sender->len &&
		    memcmp(m->peers[i].sae, sender->ptr, sender->len) == 0)
			return &m->peers[i];
	return NULL;
}

static void clear_pending(struct rot_machine *m)
{
	m->st.pending_rotation = 0;
	m->st.pending_key_id[0] = '\0';
	m->st.phase = STATE_PHASE_NONE;
}

static void set_last(struct rot_machine *m, uint32_t rot, uint8_t result, const char *detail)
{
	m->st.last_rotation = rot;
	m->st.last_result = result;
	copy_detail(m->st.last_detail, detail);
	if (rot > m->st.max_rotation)
		m->st.max_rotation = rot;
}

/* A CKN for key_id under the channel's convention (the prefix form needs a UUID). */
static bool ckn_ok(const struct rot_machine *m, const char *key_id, char *why, size_t len)
{
	char ckn[KD_CKN_LEN + 1];
	return kd_ckn(m->cfg.conv, m->prefix, key_id, ckn, why, len) == 0;
}

/* ---- master ---- */

/*
 * Spreading (protocol.md 10.2): a router holds one rotation at a time, so
 * channels that fall due together (an agent started with all its channels, a
 * retry delay shared by every channel the same router refused) would queue
 * and defer each other in step, every interval. Each channel therefore gets
 * its own phase: a deterministic pseudo-random share of a span, from the
 * channel number and a salt (the machine has no clock or RNG of its own).
 */
static int64_t spread(const struct rot_machine *m, uint64_t salt, int64_t span)
{
	if (span <= 0)
		return 0;
	uint64_t x = ((uint64_t)m->cfg.channel << 32 ^ salt) + 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull; /* splitmix64 */
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (int64_t)(x % (uint64_t)(span + 1));
}

/* The retry delay, stretched by up to half of it, differently per channel
 * and per attempt. */
static int64_t retry_delay(struct rot_machine *m, int64_t base)
{
	m->retries++;
	return base + spread(m, m->retries, base / 2);
}

/* The next scheduled rotation: one interval after this start, give or take
 * 5 %, so that channels started together drift apart. */
static int64_t next_scheduled(const struct rot_machine *m)
{
	int64_t iv = (int64_t)m->cfg.interval_s * 1000;
	return m->now + iv - iv / 20 + spread(m, 0x100000000ull + m->rot, iv / 10);
}

static void m_schedule_after_failure(struct rot_machine *m, bool at_once)
{
	int64_t cap = m->cfg.interval_s ? (int64_t)m->cfg.interval_s * 1000 : 300000;
	m->rotate_due = at_once ? m->now : m->now + retry_delay(m, m->fail_delay);
	m->retry_pending = !at_once;
	m->fail_delay = min64(m->fail_delay * 2, max64(cap, (int64_t)m->cfg.retry_ms));
}

static void m_metrics(struct rot_machine *m, struct rot_actions *out, bool ok, uint8_t result)
{
	struct rot_action *a = push(out, ROT_ACT_METRICS, m->rot);
	if (a == NULL)
		return;
	struct rot_metrics *x = &a->metrics;
	x->rotation = m->rot;
	x->ok = ok;
	x->result = result;
	int64_t first = NEVER, last = 0, lastc = 0;
	if (m->own_staged_ms > 0) {
		first = m->own_staged_ms;
		last = m->own_staged_ms;
	}
	for (size_t i = 0; i < m->npeers; i++) {
		if (m->peers[i].staged) {
			first = min64(first, m->peers[i].staged_ms);
			last = max64(last, m->peers[i].staged_ms);
		}
		if (m->peers[i].confirmed)
			lastc = max64(lastc, m->peers[i].confirmed_ms);
	}
	if (ok) {
		x->duration_ms = max64(lastc, m->own_confirmed_ms) - m->t_start;
		x->skew_ms = first == NEVER ? 0 : last - first;
		x->confirm_skew_ms = max64(lastc - m->own_confirmed_ms, 0);
		x->diverged_ms = x->skew_ms;
	} else {
		x->duration_ms = m->now - m->t_start;
		x->skew_ms = first == NEVER ? 0 : last - first;
		x->diverged_ms = first == NEVER ? 0 : m->now - first;
	}
	/* the breakdown: each phase that was reached */
	if (m->kme_ok_ms > 0) {
		int64_t lastack = 0;
		bool all = m->npeers > 0;
		for (size_t i = 0; i < m->npeers; i++) {
			all = all && m->peers[i].staged;
			lastack = max64(lastack, m->peers[i].staged_ms);
		}
		x->kme_ms = m->kme_ok_ms - m->t_start;
		x->stage_ms = m->own_staged_ms > 0 ? m->own_staged_ms - m->kme_ok_ms : 0;
		x->ack_ms = all ? lastack - m->kme_ok_ms : 0;
	}
	if (m->decided_ms > 0 && m->own_confirmed_ms > 0)
		x->confirm_ms = m->own_confirmed_ms - m->decided_ms;
}

/* The abort is over: the own router is back on the old key (or never left it). */
static void m_finish_abort(struct rot_machine *m, struct rot_actions *out, bool retry_at_once)
{
	m->state = ROT_IDLE;
	clear_pending(m);
	bool deferred = m->st.last_result == QKD_RES_ROUTER_BUSY;
	if (deferred)
		m->st.rotations_deferred++;
	else
		m->st.rotations_failed++;
	persist(m, out);
	send_hello(m, out);
	m_metrics(m, out, false, m->st.last_result);
	if (deferred) {
		/* a router serves another channel's rotation (one confirmed commit
		 * per router): not a failure. A channel that holds a key retries
		 * after ROT_ROUTER_WAIT_MS the first time (a router holds one
		 * rotation for well under a second: a single refusal must not make
		 * the channel late, scale finding 10), then after the plain retry
		 * delay, never doubled (finding 9), so that a saturated router sees
		 * at most one quick retry per channel and interval. One that holds
		 * none backs off like a failure, so that many keyless channels thin
		 * out */
		if (m->st.current_key_id[0] != '\0') {
			int64_t base = m->cfg.retry_ms;
			if (m->defer_streak++ == 0)
				base = min64(base, ROT_ROUTER_WAIT_MS);
			m->rotate_due = m->now + retry_delay(m, base);
			m->retry_pending = true;
		} else {
			m_schedule_after_failure(m, false);
		}
		int64_t wait = m->rotate_due - m->now;
		logf_(m, out, ROT_LOG_INFO,
		      "rotation %u deferred (%s); old key %s kept, retry in %lld ms",
		      (unsigned)m->rot, m->st.last_detail,
		      m->st.current_key_id[0] ? m->st.current_key_id : "(none)", (long long)wait);
		return;
	}
	m->defer_streak = 0;
	logf_(m, out, ROT_LOG_WARN,
	      "rotation %u failed (%s: %s); old key %s kept, retry in %lld ms", (unsigned)m->rot,
	      qkd_result_name(m->st.last_result), m->st.last_detail,
	      m->st.current_key_id[0] ? m->st.current_key_id : "(none)",
	      (long long)(retry_at_once ? 0 : m->fail_delay));
	m_schedule_after_failure(m, retry_at_once);
}

static void m_abort(struct rot_machine *m, struct rot_actions *out, uint8_t result, const char *why)
{
	set_last(m, m->rot, result, why);
	logf_(m, out, ROT_LOG_WARN, "rotation %u key_ID %s: abort: %s", (unsigned)m->rot,
	      m->key_id[0] ? m->key_id : "(none)", why);
	m->giveup = m->now + tc_ms(m);
	m->router_backoff = m->cfg.rto_ms;
	m->t_router_retry = NEVER;
	if (m->own_busy) {
		m->cancel_after_stage = true;
		m->state = ROT_M_ABORTING;
		persist(m, out);
		send_hello(m, out);
	} else if (m->own_staged) {
		m->state = ROT_M_ABORTING;
		persist(m, out);
		router_op(m, out, ROT_ACT_ROUTER_CANCEL);
		send_hello(m, out);
	} else {
		m_finish_abort(m, out, false);
	}
}

static bool m_start(struct rot_machine *m, struct rot_actions *out, const char *why)
{
	char reason[160] = "";
	if (m->state != ROT_IDLE)
		snprintf(reason, sizeof reason, "busy: rotation %u in progress (%s)",
		         (unsigned)m->rot, rot_state_name(m->state));
	for (size_t i = 0; reason[0] == '\0' && i < m->npeers; i++) {
		const struct rot_peer *p = &m->peers[i];
		if (!peer_alive(m, p))
			snprintf(reason, sizeof reason, "peer %s dead: %s", p->sae,
			         p->heard ? "no HELLO for 3 intervals" : "never heard");
		else if (p->state != QKD_STATE_IDLE)
			snprintf(reason, sizeof reason, "peer %s busy (state %s, pending %u)",
			         p->sae, qkd_state_name(p->state), (unsigned)p->pending);
	}
	const char *busy = NULL;
	int64_t base = m->cfg.retry_ms;
	if (reason[0] == '\0' && m->cfg.router_busy &&
	    (busy = m->cfg.router_busy(m->cfg.router_arg))) {
		/* checked before enc_keys: a stage now would wait or be refused,
		 * and the key would be spent for nothing (scale finding 7). Cheap
		 * to retry: no key, no frame, no write */
		snprintf(reason, sizeof reason, "own router busy");
		base = min64(base, ROT_ROUTER_WAIT_MS);
	}
	m->router_wait = busy != NULL;
	if (reason[0] != '\0') {
		/* every skip is logged; a repeated reason only at debug level, so a
		 * dead peer costs one line at info, not one per retry */
		bool same = strcmp(reason, m->skip_reason) == 0;
		m->skipped++;
		int64_t wait = retry_delay(m, base);
		m->rotate_due = m->now + wait;
		m->retry_pending = true;
		logf_(m, out, same ? ROT_LOG_DEBUG : ROT_LOG_INFO,
		      "rotation skipped (%s): %s%s%s%s; retry in %lld ms", why, reason,
		      busy ? " (" : "", busy ? busy : "", busy ? ")" : "", (long long)wait);
		copy_str(m->skip_reason, sizeof m->skip_reason, reason);
		return false;
	}
	m->skip_reason[0] = '\0';
	m->retry_pending = false;
	uint32_t r = m->st.max_rotation;
	for (size_t i = 0; i < m->npeers; i++)
		r = m->peers[i].current > r ? m->peers[i].current : r;
	for (size_t i = 0; i < m->npeers; i++)
		r = m->peers[i].pending > r ? m->peers[i].pending : r;
	if (r == UINT32_MAX) {
		logf_(m, out, ROT_LOG_ERR, "rotation IDs exhausted");
		m->rotate_due = NEVER;
		return false;
	}
	m->rot = r + 1;
	m->resync = false;
	m->st.pending_rotation = m->rot;
	m->st.pending_key_id[0] = '\0';
	m->st.phase = STATE_PHASE_FETCHING;
	m->st.max_rotation = m->rot;
	m->key_id[0] = '\0';
	m->state = ROT_M_FETCHING;
	m->t_start = m->now;
	m->deadline = m->now + m->cfg.deadline_ms; /* a KME that never answers */
	m->own_busy = m->own_staged = m->cancel_after_stage = false;
	m->own_staged_ms = m->own_confirmed_ms = 0;
	m->kme_ok_ms = m->decided_ms = 0;
	for (size_t i = 0; i < m->npeers; i++) {
		m->peers[i].staged = m->peers[i].confirmed = false;
		m->peers[i].staged_ms = m->peers[i].confirmed_ms = 0;
	}
	m->rotate_due = m->cfg.interval_s ? next_scheduled(m) : NEVER;
	logf_(m, out, ROT_LOG_INFO, "rotation %u start (%s)", (unsigned)m->rot, why);
	/* not written: nobody has seen R yet (the ANNOUNCE follows the write of
	 * "staging"), so a restart that forgets it loses one KME key, nothing more */
	struct rot_action *a = push(out, ROT_ACT_KME_ENC, m->rot);
	if (a != NULL)
		a->key_bits = m->cfg.key_bits;
	send_hello(m, out);
	return true;
}

static bool m_slaves_staged(const struct rot_machine *m)
{
	for (size_t i = 0; i < m->npeers; i++)
		if (!m->peers[i].staged)
			return false;
	return true;
}

static void m_decide_if_ready(struct rot_machine *m, struct rot_actions *out)
{
	if (m->state != ROT_M_ANNOUNCING || !m->own_staged || !m_slaves_staged(m))
		return;
	m->st.phase = STATE_PHASE_CONFIRMING;
	m->state = ROT_M_CONFIRMING;
	m->decided_ms = m->now;
	m->giveup = m->own_staged_ms + commit_window(m);
	m->router_backoff = m->cfg.rto_ms;
	m->t_router_retry = NEVER;
	persist(m, out);
	logf_(m, out, ROT_LOG_INFO, "rotation %u key_ID %s: every router staged, confirming",
	      (unsigned)m->rot, m->key_id);
	router_op(m, out, ROT_ACT_ROUTER_CONFIRM);
}

static void m_finish_commit(struct rot_machine *m, struct rot_actions *out, bool ok,
                            const char *why)
{
	m->state = ROT_IDLE;
	send_hello(m, out);
	if (ok) {
		m->st.rotations_ok++;
		m->want_key = false;
		m->fail_delay = m->cfg.retry_ms;
		m->defer_streak = 0;
		persist(m, out); /* after the decision HELLO: off the critical path */
		m_metrics(m, out, true, QKD_RES_OK);
		const struct rot_metrics *x = &out->a[out->n - 1].metrics;
		logf_(
		    m, out, ROT_LOG_INFO,
		    "rotation %u key_ID %s: done on every router, duration %lld ms, skew %lld ms, "
		    "confirm skew %lld ms, diverged %lld ms",
		    (unsigned)m->rot, m->st.current_key_id, (long long)x->duration_ms,
		    (long long)x->skew_ms, (long long)x->confirm_skew_ms,
		    (long long)x->diverged_ms);
	} else {
		m->st.rotations_failed++;
		set_last(m, m->rot, QKD_RES_COMMIT_FAILED, why);
		persist(m, out);
		m_metrics(m, out, false, QKD_RES_COMMIT_FAILED);
		logf_(m, out, ROT_LOG_WARN, "rotation %u key_ID %s: %s; fresh rotation now",
		      (unsigned)m->rot, m->st.current_key_id, why);
		m_schedule_after_failure(m, true);
	}
}

static void m_on_ack(struct rot_machine *m, struct rot_actions *out, struct rot_peer *p,
                     const struct qkd_ack *k)
{
	if (m->state != ROT_M_ANNOUNCING || k->rotation != m->rot) {
		logf_(m, out, ROT_LOG_DEBUG, "ACK %s for rotation %u from %s ignored (state %s)",
		      qkd_result_name(k->result), (unsigned)k->rotation, p->sae,
		      rot_state_name(m->state));
		return;
	}
	char detail[QKD_DETAIL_MAX + 1];
	char why[160];
	copy_detail(detail, "");
	if (k->detail.len > 0) {
		size_t n = k->detail.len < QKD_DETAIL_MAX ? k->detail.len : QKD_DETAIL_MAX;
		memcpy(detail, k->detail.ptr, n);
		detail[n] = '\0';
	}
	switch (k->result) {
	case QKD_RES_OK:
		if (!p->staged) {
			p->staged = true;
			p->staged_ms = m->now;
			logf_(m, out, ROT_LOG_INFO, "rotation %u: %s staged the key",
			      (unsigned)m->rot, p->sae);
		}
		m_decide_if_ready(m, out);
		return;
	case QKD_RES_BUSY:
		logf_(m, out, ROT_LOG_DEBUG, "rotation %u: %s busy, retransmitting",
		      (unsigned)m->rot, p->sae);
		return;
	default:
		snprintf(why, sizeof why, "%s answered %s%s%s", p->sae, qkd_result_name(k->result),
		         detail[0] ? ": " : "", detail);
		m_abort(m, out, k->result <= QKD_RES_MAX ? k->result : (uint8_t)QKD_RES_INTERNAL,
		        why);
		return;
	}
}

/* Compares the slaves' keys with ours while nobody rotates (10.6). */
static void m_check_common(struct rot_machine *m, struct rot_actions *out)
{
	if (m->state != ROT_IDLE)
		return;
	for (size_t i = 0; i < m->npeers; i++) {
		const struct rot_peer *p = &m->peers[i];
		if (!peer_alive(m, p) || p->state != QKD_STATE_IDLE)
			return;
	}
	if (m->st.current_key_id[0] == '\0' && (m->cfg.fresh_if_no_key || m->want_key)) {
		/* nobody may know a key (first start, lost state, a router that
		 * lacked the CA): equal empty digests are not a common key. Never
		 * earlier than a pending retry, and spread over the retry delay:
		 * an agent started with many channels must not start them all at
		 * once */
		int64_t due = m->now + spread(m, 0x200000000ull + m->st.max_rotation,
		                              (int64_t)m->cfg.retry_ms);
		if (!m->retry_pending && m->rotate_due > due) {
			logf_(m, out, ROT_LOG_WARN,
			      "no key known on this channel (first start or lost state): fresh "
			      "rotation in %lld ms",
			      (long long)(due - m->now));
			m->rotate_due = due;
		}
		return;
	}
	for (size_t i = 0; i < m->npeers; i++) {
		const struct rot_peer *p = &m->peers[i];
		if (memcmp(p->digest, m->digest, QKD_DIGEST_LEN) != 0 ||
		    p->current != m->st.current_rotation) {
			if (m->rotate_due > m->now && !m->retry_pending) {
				logf_(m, out, ROT_LOG_WARN,
				      "key mismatch with %s (its rotation %u, ours %u): fresh "
				      "rotation",
				      p->sae, (unsigned)p->current,
				      (unsigned)m->st.current_rotation);
				m->rotate_due = m->now;
			}
			return;
		}
	}
	if (m->resync) {
		m->resync = false;
		logf_(m, out, ROT_LOG_INFO, "resync: common key confirmed (rotation %u key_ID %s)",
		      (unsigned)m->st.current_rotation,
		      m->st.current_key_id[0] ? m->st.current_key_id : "(none)");
		send_hello(m, out);
	}
}

static void m_on_hello(struct rot_machine *m, struct rot_actions *out, struct rot_peer *p)
{
	if (m->state == ROT_M_COMMITTING) {
		if (p->current == m->rot && !p->confirmed) {
			p->confirmed = true;
			p->confirmed_ms = m->now;
			logf_(m, out, ROT_LOG_INFO, "rotation %u: %s confirmed", (unsigned)m->rot,
			      p->sae);
		} else if (p->current != m->rot && p->pending != m->rot) {
			char why[96];
			snprintf(why, sizeof why, "%s did not confirm (it holds rotation %u)",
			         p->sae, (unsigned)p->current);
			m_finish_commit(m, out, false, why);
			return;
		}
		for (size_t i = 0; i < m->npeers; i++)
			if (!m->peers[i].confirmed)
				return;
		m_finish_commit(m, out, true, NULL);
		return;
	}
	m_check_common(m, out);
}

static void m_on_kme(struct rot_machine *m, struct rot_actions *out, const struct rot_event *ev)
{
	if (m->state != ROT_M_FETCHING || ev->rotation != m->rot) {
		logf_(m, out, ROT_LOG_DEBUG, "late KME result for rotation %u ignored",
		      (unsigned)ev->rotation);
		return;
	}
	char why[160] = "";
	if (ev->kme != ROT_KME_OK) {
		snprintf(why, sizeof why, "enc_keys failed: %s",
		         ev->detail ? ev->detail : "KME error");
		m_abort(m, out, QKD_RES_KME_ERROR, why);
		return;
	}
	if (ev->key_id == NULL ||
	    !qkd_str_valid(ev->key_id, strnlen(ev->key_id, QKD_KEYID_MAX + 1), QKD_KEYID_MAX) ||
	    !ckn_ok(m, ev->key_id, why, sizeof why)) {
		if (ev->key_id == NULL || why[0] == '\0')
			snprintf(why, sizeof why, "KME returned an invalid key_ID");
		m_abort(m, out, QKD_RES_INTERNAL, why);
		return;
	}
	copy_str(m->key_id, sizeof m->key_id, ev->key_id);
	copy_str(m->st.pending_key_id, sizeof m->st.pending_key_id, ev->key_id);
	m->st.phase = STATE_PHASE_STAGING;
	m->state = ROT_M_ANNOUNCING;
	m->kme_ok_ms = m->now;
	m->own_busy = true;
	rto_start(m, m->now);
	m->deadline = m->now + m->cfg.deadline_ms;
	persist(m, out);
	logf_(m, out, ROT_LOG_INFO, "rotation %u key_ID %s: announced, staging", (unsigned)m->rot,
	      m->key_id);
	send_announce(m, out);
	router_op(m, out, ROT_ACT_ROUTER_STAGE);
	send_hello(m, out);
}

static void m_on_router(struct rot_machine *m, struct rot_actions *out, const struct rot_event *ev)
{
	if (ev->rotation != m->rot) {
		logf_(m, out, ROT_LOG_DEBUG, "late router result for rotation %u ignored",
		      (unsigned)ev->rotation);
		return;
	}
	const char *d = ev->detail ? ev->detail : "";
	char why[160];
	if (ev->op == ROT_OP_STAGE &&
	    (m->state == ROT_M_ANNOUNCING || m->state == ROT_M_ABORTING) && m->own_busy) {
		m->own_busy = false;
		if (ev->router == ROT_ROUTER_OK) {
			m->own_staged = true;
			m->own_staged_ms = m->now;
			if (m->state == ROT_M_ABORTING) {
				router_op(m, out, ROT_ACT_ROUTER_CANCEL);
				return;
			}
			/* not written: after a restart staged and staging are
			 * resolved alike (cancel), protocol.md 10.3 */
			m->st.phase = STATE_PHASE_STAGED;
			m_decide_if_ready(m, out);
			return;
		}
		if (m->state == ROT_M_ABORTING) {
			if (ev->router == ROT_ROUTER_FAILED) {
				/* the stage may have landed: cancel it, as in ANNOUNCING */
				m->own_staged = true;
				router_op(m, out, ROT_ACT_ROUTER_CANCEL);
				return;
			}
			m_finish_abort(m, out, false);
			return;
		}
		if (ev->router == ROT_ROUTER_BUSY) {
			snprintf(why, sizeof why, "own router busy: %s", d);
			m_abort(m, out, QKD_RES_ROUTER_BUSY, why);
			return;
		}
		if (ev->router == ROT_ROUTER_FAILED) {
			/* the stage may have landed: the abort cancels it */
			m->own_staged = true;
			snprintf(why, sizeof why, "own stage outcome unknown: %s", d);
			m_abort(m, out, QKD_RES_COMMIT_FAILED, why);
			return;
		}
		snprintf(why, sizeof why, "own router refused the stage: %s", d);
		m_abort(m, out, QKD_RES_COMMIT_FAILED, why);
		return;
	}
	if (ev->op == ROT_OP_CANCEL && m->state == ROT_M_ABORTING) {
		if (ev->router == ROT_ROUTER_FAILED && m->now < m->giveup) {
			m->t_router_retry = m->now + m->router_backoff;
			m->router_backoff = min64(m->router_backoff * 2, m->cfg.rto_max_ms);
			logf_(m, out, ROT_LOG_WARN, "rotation %u: cancel failed (%s), retrying",
			      (unsigned)m->rot, d);
			return;
		}
		m_finish_abort(m, out, ev->router == ROT_ROUTER_FAILED);
		return;
	}
	if (ev->op == ROT_OP_CONFIRM && m->state == ROT_M_CONFIRMING) {
		if (ev->router == ROT_ROUTER_OK) {
			m->own_confirmed_ms = m->now;
			copy_str(m->st.current_key_id, sizeof m->st.current_key_id, m->key_id);
			m->st.current_rotation = m->rot;
			clear_pending(m);
			set_last(m, m->rot, QKD_RES_OK, "");
			set_digest(m);
			m->state = ROT_M_COMMITTING;
			rto_start(m, m->now);
			m->giveup =
			    (m->own_staged_ms ? m->own_staged_ms : m->now) + commit_window(m);
			/* not written yet: a restart in "confirming" confirms again and
			 * reads R back; the write comes when the rotation ends */
			logf_(m, out, ROT_LOG_INFO,
			      "rotation %u key_ID %s: confirmed on own router, telling slaves",
			      (unsigned)m->rot, m->key_id);
			send_hello(m, out);
			return;
		}
		if (ev->router == ROT_ROUTER_FAILED && m->now < m->giveup) {
			m->t_router_retry = m->now + m->router_backoff;
			m->router_backoff = min64(m->router_backoff * 2, m->cfg.rto_max_ms);
			logf_(m, out, ROT_LOG_WARN, "rotation %u: confirm failed (%s), retrying",
			      (unsigned)m->rot, d);
			return;
		}
		/* rolled back: the router is on the old key; failed for good: unknown,
		 * so rotate afresh at once */
		snprintf(why, sizeof why, "own router %s the confirm: %s",
		         ev->router == ROT_ROUTER_ROLLED_BACK ? "rolled back before" : "never took",
		         d);
		set_last(m, m->rot, QKD_RES_COMMIT_FAILED, why);
		m_finish_abort(m, out, ev->router == ROT_ROUTER_FAILED);
		return;
	}
	logf_(m, out, ROT_LOG_DEBUG, "router result op %d for rotation %u ignored in %s",
	      (int)ev->op, (unsigned)ev->rotation, rot_state_name(m->state));
}

/* The router holds no key we know of (protocol.md 10.6): forget ours. */
static void on_no_key(struct rot_machine *m, struct rot_actions *out, const char *why)
{
	if (m->state != ROT_IDLE) {
		logf_(m, out, ROT_LOG_INFO, "%s: the rotation in progress rewrites it", why);
		return;
	}
	logf_(m, out, ROT_LOG_WARN, "%s: key_ID %s no longer trusted, a fresh rotation follows",
	      why, m->st.current_key_id[0] ? m->st.current_key_id : "(none)");
	m->st.current_key_id[0] = '\0';
	m->st.current_rotation = 0;
	set_digest(m);
	persist(m, out);
	if (is_master(m)) {
		m->want_key = true;
		m_check_common(m, out);
	}
	send_hello(m, out);
}

static void m_tick(struct rot_machine *m, struct rot_actions *out)
{
	switch (m->state) {
	case ROT_M_FETCHING:
		if (m->now >= m->deadline)
			m_abort(m, out, QKD_RES_KME_ERROR, "deadline: no answer from the KME");
		break;
	case ROT_M_ANNOUNCING:
		for (size_t i = 0; i < m->npeers; i++) {
			/* a slave that went silent (no HELLO for 3 intervals) will
			 * not ACK: give the router back now rather than at D */
			const struct rot_peer *p = &m->peers[i];
			if (!p->staged && !peer_alive(m, p)) {
				char why[96];
				snprintf(why, sizeof why, "peer %s dead: no HELLO for 3 intervals",
				         p->sae);
				m_abort(m, out, QKD_RES_INTERNAL, why);
				return;
			}
		}
		if (m->now >= m->deadline) {
			char why[96] = "deadline";
			for (size_t i = 0; i < m->npeers; i++)
				if (!m->peers[i].staged) {
					snprintf(why, sizeof why, "deadline: no ACK OK from %s",
					         m->peers[i].sae);
					break;
				}
			if (!m->own_staged && m->npeers > 0 && m->peers[0].staged)
				snprintf(why, sizeof why, "deadline: own router not staged");
			m_abort(m, out, QKD_RES_INTERNAL, why);
			return;
		}
		if (m->now >= m->t_rto) {
			/* every slave ACKed OK: only the own stage is awaited */
			if (!m_slaves_staged(m))
				send_announce(m, out);
			rto_backoff(m);
		}
		break;
	case ROT_M_COMMITTING:
		if (m->now >= m->giveup) {
			char why[96] = "no confirmation";
			for (size_t i = 0; i < m->npeers; i++)
				if (!m->peers[i].confirmed) {
					snprintf(why, sizeof why, "%s did not confirm in time",
					         m->peers[i].sae);
					break;
				}
			m_finish_commit(m, out, false, why);
			return;
		}
		if (m->now >= m->t_rto) {
			send_hello(m, out);
			rto_backoff(m);
		}
		break;
	case ROT_M_CONFIRMING:
	case ROT_M_ABORTING:
		if (m->now >= m->t_router_retry) {
			m->t_router_retry = NEVER;
			router_op(m, out,
			          m->state == ROT_M_CONFIRMING ? ROT_ACT_ROUTER_CONFIRM
			                                       : ROT_ACT_ROUTER_CANCEL);
		}
		break;
	default:
		break;
	}
	if (m->state == ROT_IDLE && m->now >= m->rotate_due)
		m_start(m, out, m->resync ? "resync" : "scheduled");
}

/* ---- slave ---- */

static void s_idle(struct rot_machine *m, struct rot_actions *out)
{
	m->state = ROT_IDLE;
	clear_pending(m);
	persist(m, out);
	send_hello(m, out);
}

static void s_fail(struct rot_machine *m, struct rot_actions *out, uint8_t result,
                   const char *detail)
{
	set_last(m, m->rot, result, detail);
	logf_(m, out, ROT_LOG_WARN, "rotation %u key_ID %s: %s (%s)", (unsigned)m->rot, m->key_id,
	      qkd_result_name(result), detail);
	if (result == QKD_RES_ROUTER_BUSY)
		m->st.rotations_deferred++;
	else
		m->st.rotations_failed++;
	s_idle(m, out); /* persists the answer before it is sent */
	send_ack(m, out, m->rot, result, detail);
}

static void s_confirm(struct rot_machine *m, struct rot_actions *out)
{
	m->st.phase = STATE_PHASE_CONFIRMING;
	m->state = ROT_S_CONFIRMING;
	m->router_backoff = m->cfg.rto_ms;
	m->t_router_retry = NEVER;
	/* not written: the decision is the master's (it wrote it); a restart in
	 * "staged" waits for the master's HELLO and confirms again */
	logf_(m, out, ROT_LOG_INFO, "rotation %u key_ID %s: master decided, confirming",
	      (unsigned)m->rot, m->key_id);
	router_op(m, out, ROT_ACT_ROUTER_CONFIRM);
}

static void s_cancel(struct rot_machine *m, struct rot_actions *out, const char *why)
{
	m->state = ROT_S_CANCELLING;
	m->router_backoff = m->cfg.rto_ms;
	m->t_router_retry = NEVER;
	logf_(m, out, ROT_LOG_WARN, "rotation %u key_ID %s: cancelling: %s", (unsigned)m->rot,
	      m->key_id, why);
	router_op(m, out, ROT_ACT_ROUTER_CANCEL);
}

/* The master's decision for the staged rotation, from a HELLO seen after the ANNOUNCE. */
static void s_apply_decision(struct rot_machine *m, struct rot_actions *out)
{
	if (m->state != ROT_S_STAGED || !m->decision_seen)
		return;
	if (m->decision_current == m->rot)
		s_confirm(m, out);
	else if (m->decision_pending != m->rot)
		s_cancel(m, out, "the master gave the rotation up");
}

static void s_on_announce(struct rot_machine *m, struct rot_actions *out,
                          const struct qkd_announce *a)
{
	uint32_t r = a->rotation;
	if (r == m->st.last_rotation && m->st.pending_rotation != r) {
		/* answered already: the same answer, never a second dec_keys */
		send_ack(m, out, r, m->st.last_result, m->st.last_detail);
		return;
	}
	if (r == m->st.last_rotation && m->state == ROT_S_STAGED) {
		send_ack(m, out, r, m->st.last_result, m->st.last_detail);
		return;
	}
	if (m->st.pending_rotation != 0) {
		if (r == m->st.pending_rotation)
			return; /* in progress: the answer follows */
		if (r > m->st.pending_rotation && m->state == ROT_S_STAGED)
			s_cancel(m, out, "the master announced a newer rotation");
		send_ack(m, out, r, r > m->st.pending_rotation ? QKD_RES_BUSY : QKD_RES_STALE, "");
		return;
	}
	uint32_t newest = (uint32_t)max64(m->st.current_rotation, m->st.last_rotation);
	if (r <= newest) {
		send_ack(m, out, r, QKD_RES_STALE, "");
		return;
	}
	char why[160] = "";
	if (a->nkeys != 1)
		snprintf(why, sizeof why, "expects 1 key_ID, got %u", a->nkeys);
	char kid[QKD_KEYID_MAX + 1];
	size_t n = a->keys[0].len <= QKD_KEYID_MAX ? a->keys[0].len : QKD_KEYID_MAX;
	memcpy(kid, a->keys[0].ptr, n);
	kid[n] = '\0';
	if (why[0] == '\0' && !ckn_ok(m, kid, why, sizeof why) && why[0] == '\0')
		snprintf(why, sizeof why, "invalid key_ID");
	m->rot = r;
	copy_str(m->key_id, sizeof m->key_id, kid);
	m->resync = false;
	if (why[0] != '\0') {
		why[QKD_DETAIL_MAX] = '\0';
		s_fail(m, out, QKD_RES_INTERNAL, why);
		return;
	}
	m->st.pending_rotation = r;
	copy_str(m->st.pending_key_id, sizeof m->st.pending_key_id, kid);
	m->st.phase = STATE_PHASE_FETCHING;
	if (r > m->st.max_rotation)
		m->st.max_rotation = r;
	m->state = ROT_S_FETCHING;
	m->t_start = m->now;
	m->dec_attempts = 1;
	m->decision_seen = false;
	persist(m, out);
	logf_(m, out, ROT_LOG_INFO, "rotation %u key_ID %s: announced, fetching", (unsigned)r, kid);
	struct rot_action *x = push(out, ROT_ACT_KME_DEC, r);
	if (x != NULL) {
		copy_str(x->key_id, sizeof x->key_id, kid);
		x->key_bits = m->cfg.key_bits;
	}
	send_hello(m, out);
}

static void s_on_hello(struct rot_machine *m, struct rot_actions *out, const struct qkd_hello *h)
{
	bool was_resync = m->resync;
	m->resync = false;
	if (m->st.pending_rotation != 0 && m->state != ROT_IDLE) {
		m->decision_seen = true;
		m->decision_current = h->current_rotation;
		m->decision_pending = h->pending_rotation;
		if (m->state == ROT_S_FETCH_WAIT && h->current_rotation != m->rot &&
		    h->pending_rotation != m->rot) {
			s_fail(m, out, QKD_RES_KME_NOT_FOUND, "master gave up while not found");
			return;
		}
		s_apply_decision(m, out);
	}
	if (was_resync || h->state != QKD_STATE_IDLE ||
	    h->current_rotation != m->st.current_rotation)
		send_hello(m, out);
}

static void s_on_kme(struct rot_machine *m, struct rot_actions *out, const struct rot_event *ev)
{
	if (m->state != ROT_S_FETCHING || ev->rotation != m->rot) {
		logf_(m, out, ROT_LOG_DEBUG, "late KME result for rotation %u ignored",
		      (unsigned)ev->rotation);
		return;
	}
	char why[QKD_DETAIL_MAX + 1];
	switch (ev->kme) {
	case ROT_KME_OK:
		if (ev->key_id == NULL || strcmp(ev->key_id, m->key_id) != 0) {
			s_fail(m, out, QKD_RES_INTERNAL, "KME returned another key_ID");
			return;
		}
		/* not written: a restart in "fetching" also cancels the stage */
		m->st.phase = STATE_PHASE_STAGING;
		m->state = ROT_S_STAGING;
		router_op(m, out, ROT_ACT_ROUTER_STAGE);
		return;
	case ROT_KME_NOT_FOUND:
		if (m->dec_attempts <= m->cfg.dec_retries) {
			int64_t wait = (int64_t)m->cfg.dec_retry_ms << (m->dec_attempts - 1);
			m->state = ROT_S_FETCH_WAIT;
			m->t_fetch = m->now + min64(wait, 60000);
			logf_(m, out, ROT_LOG_INFO,
			      "rotation %u key_ID %s: not found at the KME yet (attempt %u), retry "
			      "in %lld ms",
			      (unsigned)m->rot, m->key_id, m->dec_attempts,
			      (long long)(m->t_fetch - m->now));
			return;
		}
		snprintf(why, sizeof why, "not found after %u attempts", m->dec_attempts);
		s_fail(m, out, QKD_RES_KME_NOT_FOUND, why);
		return;
	case ROT_KME_KEY_LOST: {
		/* the cause too: a KME sending garbage is not a deleted key */
		char text[QKD_DETAIL_MAX + 64];
		snprintf(text, sizeof text, "key lost%s%s", ev->detail && ev->detail[0] ? ": " : "",
		         ev->detail ? ev->detail : "");
		copy_detail(why, text);
		s_fail(m, out, QKD_RES_KME_ERROR, why);
		return;
	}
	default:
		copy_detail(why, ev->detail ? ev->detail : "KME error");
		s_fail(m, out, QKD_RES_KME_ERROR, why);
		return;
	}
}

static void s_on_router(struct rot_machine *m, struct rot_actions *out, const struct rot_event *ev)
{
	if (ev->rotation != m->rot) {
		logf_(m, out, ROT_LOG_DEBUG, "late router result for rotation %u ignored",
		      (unsigned)ev->rotation);
		return;
	}
	const char *d = ev->detail ? ev->detail : "";
	if (ev->op == ROT_OP_STAGE && m->state == ROT_S_STAGING) {
		if (ev->router == ROT_ROUTER_FAILED) {
			/* the stage may have landed (the session broke mid-commit):
			 * answer now, and cancel it by its persist-id */
			char why[QKD_DETAIL_MAX + 1];
			copy_detail(why, d[0] ? d : "router state unknown");
			set_last(m, m->rot, QKD_RES_COMMIT_FAILED, why);
			logf_(m, out, ROT_LOG_WARN,
			      "rotation %u key_ID %s: stage outcome unknown (%s)", (unsigned)m->rot,
			      m->key_id, why);
			persist(m, out); /* phase staging: a restart cancels too */
			send_ack(m, out, m->rot, QKD_RES_COMMIT_FAILED, why);
			m->giveup = m->now + tc_ms(m);
			s_cancel(m, out, "stage outcome unknown");
			return;
		}
		if (ev->router != ROT_ROUTER_OK) {
			char why[QKD_DETAIL_MAX + 1];
			copy_detail(why, d[0] ? d : "router refused the commit");
			s_fail(m, out,
			       ev->router == ROT_ROUTER_BUSY ? QKD_RES_ROUTER_BUSY
			                                     : QKD_RES_COMMIT_FAILED,
			       why);
			return;
		}
		m->st.phase = STATE_PHASE_STAGED;
		set_last(m, m->rot, QKD_RES_OK, "");
		m->state = ROT_S_STAGED;
		m->giveup = m->now + commit_window(m);
		persist(m, out);
		logf_(m, out, ROT_LOG_INFO, "rotation %u key_ID %s: staged, waiting for the master",
		      (unsigned)m->rot, m->key_id);
		send_ack(m, out, m->rot, QKD_RES_OK, "");
		rto_start(m, m->now);
		send_hello(m, out);
		s_apply_decision(m, out);
		return;
	}
	if ((ev->op == ROT_OP_CONFIRM && m->state == ROT_S_CONFIRMING) ||
	    (ev->op == ROT_OP_CANCEL && m->state == ROT_S_CANCELLING)) {
		bool confirm = ev->op == ROT_OP_CONFIRM;
		if (ev->router == ROT_ROUTER_FAILED && m->now < m->giveup) {
			m->t_router_retry = m->now + m->router_backoff;
			m->router_backoff = min64(m->router_backoff * 2, m->cfg.rto_max_ms);
			logf_(m, out, ROT_LOG_WARN, "rotation %u: %s failed (%s), retrying",
			      (unsigned)m->rot, confirm ? "confirm" : "cancel", d);
			return;
		}
		if (confirm && ev->router == ROT_ROUTER_OK) {
			copy_str(m->st.current_key_id, sizeof m->st.current_key_id, m->key_id);
			m->st.current_rotation = m->rot;
			set_last(m, m->rot, QKD_RES_OK, "");
			set_digest(m);
			m->st.rotations_ok++;
			logf_(m, out, ROT_LOG_INFO,
			      "rotation %u key_ID %s: confirmed, %lld ms after the ANNOUNCE",
			      (unsigned)m->rot, m->key_id, (long long)(m->now - m->t_start));
		} else if (confirm) {
			set_last(m, m->rot, QKD_RES_COMMIT_FAILED, "rolled back before confirm");
			m->st.rotations_failed++;
			logf_(m, out, ROT_LOG_WARN,
			      "rotation %u key_ID %s: router rolled back (%s); old key %s stays",
			      (unsigned)m->rot, m->key_id, d,
			      m->st.current_key_id[0] ? m->st.current_key_id : "(none)");
		} else {
			m->st.rotations_failed++;
			logf_(m, out, ROT_LOG_INFO, "rotation %u key_ID %s: cancelled, old key %s",
			      (unsigned)m->rot, m->key_id,
			      m->st.current_key_id[0] ? m->st.current_key_id : "(none)");
		}
		if (confirm && ev->router == ROT_ROUTER_OK) {
			/* tell the master first, write after: a restart in between
			 * finds "staged" and confirms again (protocol.md 10.3) */
			m->state = ROT_IDLE;
			clear_pending(m);
			send_hello(m, out);
			persist(m, out);
			return;
		}
		s_idle(m, out);
		return;
	}
	logf_(m, out, ROT_LOG_DEBUG, "router result op %d for rotation %u ignored in %s",
	      (int)ev->op, (unsigned)ev->rotation, rot_state_name(m->state));
}

static void s_tick(struct rot_machine *m, struct rot_actions *out)
{
	switch (m->state) {
	case ROT_S_FETCH_WAIT:
		if (m->now >= m->t_fetch) {
			m->dec_attempts++;
			m->state = ROT_S_FETCHING;
			struct rot_action *x = push(out, ROT_ACT_KME_DEC, m->rot);
			if (x != NULL) {
				copy_str(x->key_id, sizeof x->key_id, m->key_id);
				x->key_bits = m->cfg.key_bits;
			}
		}
		break;
	case ROT_S_STAGED:
		if (m->now >= m->giveup) {
			s_cancel(m, out, "no decision from the master in time");
		} else if (m->now >= m->t_rto) {
			logf_(m, out, ROT_LOG_DEBUG, "rotation %u: no decision yet, ACK OK again",
			      (unsigned)m->rot);
			send_ack(m, out, m->rot, QKD_RES_OK, "");
			rto_backoff(m);
		}
		break;
	case ROT_S_CONFIRMING:
	case ROT_S_CANCELLING:
		if (m->now >= m->t_router_retry) {
			m->t_router_retry = NEVER;
			router_op(m, out,
			          m->state == ROT_S_CONFIRMING ? ROT_ACT_ROUTER_CONFIRM
			                                       : ROT_ACT_ROUTER_CANCEL);
		}
		break;
	default:
		break;
	}
}

/* ---- frames ---- */

static void on_frame(struct rot_machine *m, struct rot_actions *out, const struct qkd_msg *msg)
{
	if (msg->channel != m->cfg.channel) {
		logf_(m, out, ROT_LOG_WARN, "frame for channel %u dropped", (unsigned)msg->channel);
		return;
	}
	struct rot_peer *p = find_peer(m, &msg->sender);
	if (p == NULL) {
		/* a slave sees the other slaves' frames on a multicast destination */
		bool other_slave =
		    !is_master(m) &&
		    (msg->type == QKD_MSG_ACK ||
		     (msg->type == QKD_MSG_HELLO && msg->u.hello.role == QKD_ROLE_SLAVE));
		logf_(m, out, other_slave ? ROT_LOG_DEBUG : ROT_LOG_WARN,
		      "%s from %.*s dropped: not a peer of this channel",
		      qkd_msg_type_name(msg->type), (int)msg->sender.len, msg->sender.ptr);
		return;
	}
	uint8_t want_role = is_master(m) ? QKD_ROLE_SLAVE : QKD_ROLE_MASTER;
	bool ok_type = is_master(m) ? (msg->type == QKD_MSG_HELLO || msg->type == QKD_MSG_ACK)
	                            : (msg->type == QKD_MSG_HELLO || msg->type == QKD_MSG_ANNOUNCE);
	if (!ok_type || (msg->type == QKD_MSG_HELLO && msg->u.hello.role != want_role)) {
		logf_(m, out, ROT_LOG_WARN, "%s from %s dropped: not what a %s sends to a %s",
		      qkd_msg_type_name(msg->type), p->sae, qkd_role_name(want_role),
		      qkd_role_name(m->cfg.role));
		return;
	}
	if (msg->type == QKD_MSG_HELLO) {
		const struct qkd_hello *h = &msg->u.hello;
		if (!p->heard)
			logf_(m, out, ROT_LOG_INFO, "peer %s alive (rotation %u, state %s)", p->sae,
			      (unsigned)h->current_rotation, qkd_state_name(h->state));
		p->heard = true;
		p->last_hello_ms = m->now;
		p->interval_s = h->interval;
		p->state = h->state;
		p->current = h->current_rotation;
		p->pending = h->pending_rotation;
		memcpy(p->digest, h->digest, QKD_DIGEST_LEN);
		if (is_master(m))
			m_on_hello(m, out, p);
		else
			s_on_hello(m, out, h);
	} else if (msg->type == QKD_MSG_ACK) {
		m_on_ack(m, out, p, &msg->u.ack);
	} else {
		s_on_announce(m, out, &msg->u.announce);
	}
}

/* ---- API ---- */

const char *rot_state_name(enum rot_state s)
{
	static const char *const names[ROT_STATE_COUNT] = {
	    [ROT_IDLE] = "IDLE",
	    [ROT_M_FETCHING] = "FETCHING",
	    [ROT_M_ANNOUNCING] = "ANNOUNCING",
	    [ROT_M_CONFIRMING] = "CONFIRMING",
	    [ROT_M_COMMITTING] = "COMMITTING",
	    [ROT_M_ABORTING] = "ABORTING",
	    [ROT_S_FETCHING] = "FETCHING",
	    [ROT_S_FETCH_WAIT] = "FETCH_WAIT",
	    [ROT_S_STAGING] = "STAGING",
	    [ROT_S_STAGED] = "STAGED",
	    [ROT_S_CONFIRMING] = "CONFIRMING",
	    [ROT_S_CANCELLING] = "CANCELLING",
	};
	return (unsigned)s < ROT_STATE_COUNT ? names[s] : "unknown";
}

const struct chan_state *rot_persisted(const struct rot_machine *m)
{
	return &m->st;
}

void rot_status(const struct rot_machine *m, int64_t now_ms, struct rot_status *out)
{
	memset(out, 0, sizeof *out);
	out->role = m->cfg.role;
	out->state = rot_state_name(m->state);
	out->resync = m->resync;
	out->current_rotation = m->st.current_rotation;
	out->current_key_id = m->st.current_key_id;
	out->pending_rotation = m->st.pending_rotation;
	out->pending_key_id = m->st.pending_key_id;
	out->last_rotation = m->st.last_rotation;
	out->last_result = m->st.last_result;
	out->last_detail = m->st.last_detail;
	out->rotations_ok = m->st.rotations_ok;
	out->rotations_failed = m->st.rotations_failed;
	out->rotations_deferred = m->st.rotations_deferred;
	out->skipped = m->skipped;
	out->npeers = m->npeers;
	for (size_t i = 0; i < m->npeers; i++) {
		const struct rot_peer *p = &m->peers[i];
		out->peers[i].sae = p->sae;
		out->peers[i].heard = p->heard;
		out->peers[i].alive =
		    p->heard && now_ms - p->last_hello_ms <= 3 * (int64_t)p->interval_s * 1000;
		out->peers[i].since_ms = p->heard ? now_ms - p->last_hello_ms : -1;
		out->peers[i].state = p->state;
		out->peers[i].current_rotation = p->current;
		out->peers[i].same_key = memcmp(p->digest, m->digest, QKD_DIGEST_LEN) == 0;
	}
}

int rot_init(struct rot_machine *m, const struct rot_config *cfg, char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	if (cfg->channel == 0)
		return failf(err, errlen, "channel must be 1 or more");
	if (cfg->role != QKD_ROLE_MASTER && cfg->role != QKD_ROLE_SLAVE)
		return failf(err, errlen, "role must be master or slave");
	if (cfg->self == NULL || !qkd_str_valid(cfg->self, strlen(cfg->self), QKD_SENDER_MAX))
		return failf(err, errlen, "own SAE ID must be 1..%d printable characters",
		             QKD_SENDER_MAX);
	if (cfg->hello_s < 1 || cfg->hello_s > 3600)
		return failf(err, errlen, "hello interval must be 1..3600 s");
	if (cfg->key_bits != 128 && cfg->key_bits != 256)
		return failf(err, errlen, "key size must be 128 or 256 bits");
	if (cfg->conv != KD_CONV_PREFIX && cfg->conv != KD_CONV_SHA256)
		return failf(err, errlen, "CKN convention must be prefix or sha256");
	m->cfg = *cfg;
	m->cfg.self = NULL;
	m->cfg.master = NULL;
	m->cfg.prefix = NULL;
	memset(m->cfg.slaves, 0, sizeof m->cfg.slaves);
	copy_str(m->self, sizeof m->self, cfg->self);
	if (cfg->conv == KD_CONV_PREFIX) {
		char ckn[KD_CKN_LEN + 1], why[128];
		if (kd_ckn(KD_CONV_PREFIX, cfg->prefix, "00000000-0000-0000-0000-000000000000", ckn,
		           why, sizeof why) != 0)
			return failf(err, errlen, "%s", why);
		copy_str(m->prefix, sizeof m->prefix, cfg->prefix);
	}
	const char *peers[ROT_SLAVES_MAX];
	size_t np;
	if (cfg->role == QKD_ROLE_MASTER) {
		if (cfg->nslaves < 1 || cfg->nslaves > ROT_SLAVES_MAX)
			return failf(err, errlen, "a master needs 1..%d slaves", ROT_SLAVES_MAX);
		np = cfg->nslaves;
		for (size_t i = 0; i < np; i++)
			peers[i] = cfg->slaves[i];
	} else {
		if (cfg->nslaves != 0)
			return failf(err, errlen, "a slave lists no slaves");
		np = 1;
		peers[0] = cfg->master;
	}
	for (size_t i = 0; i < np; i++) {
		if (peers[i] == NULL || !qkd_str_valid(peers[i], strlen(peers[i]), QKD_SENDER_MAX))
			return failf(err, errlen,
			             "peer SAE ID %zu must be 1..%d printable characters", i + 1,
			             QKD_SENDER_MAX);
		if (strcmp(peers[i], m->self) == 0)
			return failf(err, errlen, "peer SAE ID %s is this agent's own", peers[i]);
		for (size_t j = 0; j < i; j++)
			if (strcmp(peers[i], peers[j]) == 0)
				return failf(err, errlen, "peer SAE ID %s listed twice", peers[i]);
		copy_str(m->peers[i].sae, sizeof m->peers[i].sae, peers[i]);
	}
	m->npeers = np;
#define DEFAULT(f, v)                                                                              \
	if (m->cfg.f == 0)                                                                         \
	m->cfg.f = (v)
	DEFAULT(rto_ms, 250);
	DEFAULT(rto_max_ms, 4000);
	DEFAULT(deadline_ms, 30000);
	DEFAULT(confirm_timeout_s, 120);
	DEFAULT(dec_retries, 5);
	DEFAULT(dec_retry_ms, 500);
	DEFAULT(retry_ms, 5000);
#undef DEFAULT
	if (m->cfg.rto_max_ms < m->cfg.rto_ms)
		return failf(err, errlen, "rto_max below rto");
	if ((int64_t)m->cfg.deadline_ms + 2 * (int64_t)m->cfg.rto_max_ms >= commit_window(m))
		return failf(err, errlen,
		             "confirm timeout %u s too short for a %u ms deadline: the routers "
		             "would roll back before the decision reaches them",
		             (unsigned)m->cfg.confirm_timeout_s, (unsigned)m->cfg.deadline_ms);
	state_init(&m->st, cfg->channel, cfg->role);
	m->rotate_due = NEVER;
	m->next_hello = NEVER;
	m->fail_delay = m->cfg.retry_ms;
	m->t_router_retry = NEVER;
	return 0;
}

int rot_start(struct rot_machine *m, const struct chan_state *st, int64_t now_ms,
              struct rot_actions *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	m->now = now_ms;
	if (st != NULL) {
		char why[256];
		if (st->channel != m->cfg.channel || st->role != m->cfg.role)
			return failf(err, errlen,
			             "state is for channel %u as %s, not channel %u as %s",
			             (unsigned)st->channel, qkd_role_name(st->role),
			             (unsigned)m->cfg.channel, qkd_role_name(m->cfg.role));
		if (state_check(st, why, sizeof why) != STATE_OK)
			return failf(err, errlen, "state refused: %s", why);
		m->st = *st;
	}
	set_digest(m);
	m->resync = true;
	m->state = ROT_IDLE;
	m->rot = m->st.pending_rotation;
	copy_str(m->key_id, sizeof m->key_id, m->st.pending_key_id);
	m->t_start = now_ms;
	m->router_backoff = m->cfg.rto_ms;
	m->t_router_retry = NEVER;
	m->giveup = now_ms + tc_ms(m);
	logf_(m, out, ROT_LOG_INFO, "start: rotation %u key_ID %s, pending %u (%s)",
	      (unsigned)m->st.current_rotation,
	      m->st.current_key_id[0] ? m->st.current_key_id : "(none)",
	      (unsigned)m->st.pending_rotation, state_phase_name(m->st.phase));
	switch (m->st.phase) {
	case STATE_PHASE_NONE:
		break;
	case STATE_PHASE_FETCHING:
		/* a key may have been delivered and died with the process */
		set_last(m, m->rot, is_master(m) ? QKD_RES_INTERNAL : QKD_RES_KME_ERROR,
		         "restart during fetch");
		if (!is_master(m) && m->key_id[0] != '\0') {
			/* the slave does not write "staging": its stage may have
			 * landed, so cancel it (nothing to cancel is fine) */
			m->state = ROT_S_CANCELLING;
			persist(m, out);
			logf_(m, out, ROT_LOG_WARN,
			      "rotation %u key_ID %s: cancelling after restart (fetch or stage "
			      "interrupted)",
			      (unsigned)m->rot, m->key_id);
			router_op(m, out, ROT_ACT_ROUTER_CANCEL);
			break;
		}
		clear_pending(m);
		persist(m, out);
		break;
	case STATE_PHASE_STAGING:
	case STATE_PHASE_STAGED:
		if (is_master(m) || m->st.phase == STATE_PHASE_STAGING) {
			/* no decision was made (master), or the stage may not have
			 * landed (slave): cancel */
			set_last(m, m->rot, is_master(m) ? QKD_RES_INTERNAL : QKD_RES_COMMIT_FAILED,
			         "restart before the decision");
			if (is_master(m)) {
				m->own_staged = true;
				m->state = ROT_M_ABORTING;
			} else {
				m->state = ROT_S_CANCELLING;
			}
			persist(m, out);
			logf_(m, out, ROT_LOG_WARN,
			      "rotation %u key_ID %s: cancelling after restart", (unsigned)m->rot,
			      m->key_id);
			router_op(m, out, ROT_ACT_ROUTER_CANCEL);
		} else {
			m->state = ROT_S_STAGED;
			m->decision_seen = false;
			m->giveup = now_ms + commit_window(m);
			rto_start(m, now_ms);
		}
		break;
	case STATE_PHASE_CONFIRMING:
		m->state = is_master(m) ? ROT_M_CONFIRMING : ROT_S_CONFIRMING;
		m->own_staged = true;
		logf_(m, out, ROT_LOG_WARN, "rotation %u key_ID %s: confirming again after restart",
		      (unsigned)m->rot, m->key_id);
		router_op(m, out, ROT_ACT_ROUTER_CONFIRM);
		break;
	default:
		break;
	}
	send_hello(m, out);
	if (is_master(m) && m->cfg.interval_s > 0) {
		/* the first scheduled rotation at the channel's own phase in
		 * (interval/2, interval]: channels that start together spread */
		int64_t iv = (int64_t)m->cfg.interval_s * 1000;
		m->rotate_due = now_ms + iv / 2 + spread(m, 0, iv / 2);
	}
	if (out->overflow)
		return failf(err, errlen, "action list overflow");
	return 0;
}

int rot_handle(struct rot_machine *m, const struct rot_event *ev, struct rot_actions *out,
               char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (ev->now_ms < m->now)
		return failf(err, errlen, "time went backwards (%lld < %lld)",
		             (long long)ev->now_ms, (long long)m->now);
	m->now = ev->now_ms;
	switch (ev->type) {
	case ROT_EV_TICK:
		break;
	case ROT_EV_FRAME:
		if (ev->msg == NULL)
			return failf(err, errlen, "frame event without a message");
		on_frame(m, out, ev->msg);
		break;
	case ROT_EV_KME:
		if (is_master(m))
			m_on_kme(m, out, ev);
		else
			s_on_kme(m, out, ev);
		break;
	case ROT_EV_ROUTER:
		if (is_master(m))
			m_on_router(m, out, ev);
		else
			s_on_router(m, out, ev);
		break;
	case ROT_EV_ROTATE_NOW:
		if (!is_master(m)) {
			logf_(m, out, ROT_LOG_WARN, "rotate refused: only the master rotates");
			break;
		}
		m->rotate_due = m->now;
		m_start(m, out, "operator");
		break;
	case ROT_EV_NO_KEY:
		on_no_key(m, out, ev->detail ? ev->detail : "no key known on the router");
		break;
	case ROT_EV_ROUTER_FREE:
		/* m_tick() below starts it; a start that is no longer waiting for
		 * the router (started, skipped for another reason) ignores it */
		if (rot_waits_for_router(m))
			m->rotate_due = m->now;
		break;
	default:
		return failf(err, errlen, "unknown event type %d", (int)ev->type);
	}
	/* timers run on every event, so a late tick loses nothing */
	if (is_master(m))
		m_tick(m, out);
	else
		s_tick(m, out);
	if (m->now >= m->next_hello)
		send_hello(m, out);
	if (out->overflow)
		return failf(err, errlen, "action list overflow");
	return 0;
}

bool rot_waits_for_router(const struct rot_machine *m)
{
	return is_master(m) && m->state == ROT_IDLE && m->retry_pending && m->router_wait;
}

bool rot_slaves_busy(const struct rot_machine *m)
{
	return is_master(m) && (m->state == ROT_M_COMMITTING || m->state == ROT_M_ABORTING);
}

int64_t rot_next_timer(const struct rot_machine *m)
{
	int64_t t = m->next_hello;
	switch (m->state) {
	case ROT_M_FETCHING:
		t = min64(t, m->deadline);
		break;
	case ROT_M_ANNOUNCING:
		t = min64(t, min64(m->t_rto, m->deadline));
		break;
	case ROT_M_COMMITTING:
		t = min64(t, min64(m->t_rto, m->giveup));
		break;
	case ROT_M_CONFIRMING:
	case ROT_M_ABORTING:
	case ROT_S_CONFIRMING:
	case ROT_S_CANCELLING:
		t = min64(t, m->t_router_retry);
		break;
	case ROT_S_FETCH_WAIT:
		t = min64(t, m->t_fetch);
		break;
	case ROT_S_STAGED:
		t = min64(t, min64(m->t_rto, m->giveup));
		break;
	case ROT_IDLE:
		if (is_master(m))
			t = min64(t, m->rotate_due);
		break;
	default:
		break;
	}
	return t;
}
