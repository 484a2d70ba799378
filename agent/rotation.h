/*
 * rotation.h - the per-channel rotation state machine (docs/protocol.md
 * section 10), sans I/O.
 *
 * The machine never touches a socket, a clock, a KME, a router or a file. The
 * daemon feeds it events (rot_start() once, then rot_handle() for a timer
 * tick, a frame that passed every receive check of protocol.md section 6, a
 * KME result, a router result, an operator's rotate-now) with the current
 * monotonic time, and carries out the actions it returns, in order:
 *
 *   SEND            encode and send msg (type and body filled; the daemon adds
 *                   OUI/PID, channel, secret ID, epoch, sequence and sender);
 *   KME_ENC         master: enc_keys, 1 key of key_bits for the channel's
 *                   slaves (first in the path, the rest additional_slave_SAE_IDs);
 *   KME_DEC         slave: dec_keys(key_id) from the master on its own KME;
 *   ROUTER_STAGE    confirmed commit (timeout confirm_timeout_s, persist-id
 *                   persist_id) of the CA with CKN ckn and the CAK the daemon
 *                   derives (keyderive.h) from the KME key it holds for key_id,
 *                   then wipes; the CAK never enters the machine;
 *   ROUTER_CONFIRM  confirm the confirmed commit persist_id;
 *   ROUTER_CANCEL   cancel-commit persist_id (all ROUTER_* carry key_id and
 *                   ckn, so the daemon can read back which key the CA holds);
 *   PERSIST         state_save() of *state (add the epoch and the replay marks)
 *                   before carrying out the next action;
 *   LOG             one line (key_IDs yes, keys never) at level;
 *   METRICS         one finished rotation's figures (master).
 *
 * KME results: ROT_KME_NOT_FOUND only for a complete "not found" answer to a
 * dec_keys that cannot have been delivered (the machine retries those, with
 * backoff); KME_E_KEY_LOST, and any timeout or transport failure after the
 * request was sent, is ROT_KME_KEY_LOST; everything else ROT_KME_ERROR. The
 * machine never retries those: the master rotates afresh. So the daemon
 * calls dec_keys with no retry policy of its own.
 *
 * Every KME_* and ROUTER_* action is answered by exactly one KME or ROUTER
 * event (the KME and NETCONF clients have their own timeouts; the master
 * also gives an enc_keys up after the deadline D).
 * Results come back as events carrying the rotation they belong to; a result
 * for another rotation is ignored (a late key is dropped and wiped by the
 * daemon). Router results report what the router holds after a read-back:
 * OK (what was asked), ROLLED_BACK (the old key: timeout fired, nothing to
 * confirm, or the stage was refused and discarded), FAILED (unknown; the
 * machine retries). Strings inside SEND messages point into the action itself:
 * encode before the next call, do not copy the action.
 */
#ifndef QKD_ROTATION_H
#define QKD_ROTATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "keyderive.h"
#include "state.h"

#define ROT_SLAVES_MAX 8
#define ROT_ACTIONS_MAX 32
#define ROT_TEXT_MAX 256
#define ROT_PERSIST_ID_MAX 48

struct rot_config {
	uint32_t channel;
	uint8_t role;                       /* QKD_ROLE_MASTER or QKD_ROLE_SLAVE */
	const char *self;                   /* own SAE ID */
	const char *master;                 /* slave: the master's SAE ID */
	const char *slaves[ROT_SLAVES_MAX]; /* master: the slaves' SAE IDs */
	size_t nslaves;
	enum kd_conv conv;          /* CKN convention */
	const char *prefix;         /* its prefix (KD_CONV_PREFIX) */
	unsigned key_bits;          /* 128 or 256: the cipher suite's CAK */
	uint16_t hello_s;           /* H: 1..3600 */
	uint32_t interval_s;        /* between scheduled rotations; 0: on demand only */
	uint32_t rto_ms;            /* first retransmission; 0: 250 */
	uint32_t rto_max_ms;        /* 0: 4000 */
	uint32_t deadline_ms;       /* D; 0: 30000 */
	uint32_t confirm_timeout_s; /* T_c; 0: 120 */
	uint32_t dec_retries;       /* extra dec_keys after "not found"; 0: 5 */
	uint32_t dec_retry_ms;      /* first wait; 0: 500 */
	uint32_t retry_ms;          /* after a skipped or failed rotation; 0: 5000 */
	bool fresh_if_no_key;       /* master: knowing no key (first start, lost state)
	                               is a mismatch: rotate at once (provisioning, or
	                               scheduled rotations); otherwise wait for one */
	/* master: asked before a rotation starts; NULL if the own router is free,
	 * else why not (another channel's rotation holds it or waits for it).
	 * A busy router skips the start, so no KME key is spent on a rotation
	 * that could not stage, and it is tried again after ROT_ROUTER_WAIT_MS,
	 * or at once on ROT_EV_ROUTER_FREE. NULL callback: the router is always
	 * free. */
	const char *(*router_busy)(void *arg);
	void *router_arg;
};

#define ROT_ROUTER_WAIT_MS 1000 /* retry after a busy own router, +up to half */

enum rot_state {
	ROT_IDLE = 0,
	ROT_M_FETCHING,
	ROT_M_ANNOUNCING,
	ROT_M_CONFIRMING,
	ROT_M_COMMITTING,
	ROT_M_ABORTING,
	ROT_S_FETCHING,
	ROT_S_FETCH_WAIT,
	ROT_S_STAGING,
	ROT_S_STAGED,
	ROT_S_CONFIRMING,
	ROT_S_CANCELLING,
	ROT_STATE_COUNT
};

/* NO_KEY: the daemon found that the router lacks the channel's CA or a
 * binding, or the state file was lost: the agent knows no key on its router;
 * the machine forgets its current key (HELLO digest zero) and the master
 * rotates afresh as soon as the peers allow.
 * ROUTER_FREE: the own router that a master's last start found busy is free
 * now: if rot_waits_for_router(), the master starts at once instead of at its
 * retry (the daemon hands a freed router to the master that waited longest,
 * so a busy router is taken in turn, not by whoever polls first). */
enum rot_ev_type {
	ROT_EV_TICK = 0,
	ROT_EV_FRAME,
	ROT_EV_KME,
	ROT_EV_ROUTER,
	ROT_EV_ROTATE_NOW,
	ROT_EV_NO_KEY,
	ROT_EV_ROUTER_FREE
};
enum rot_kme_status { ROT_KME_OK = 0, ROT_KME_NOT_FOUND, ROT_KME_ERROR, ROT_KME_KEY_LOST };
enum rot_router_op { ROT_OP_STAGE = 0, ROT_OP_CONFIRM, ROT_OP_CANCEL };
/* ROUTER_BUSY (stage only): not run, the router serves another channel's
 * rotation and nothing changed; the rotation is deferred, not failed. */
enum rot_router_status {
	ROT_ROUTER_OK = 0,
	ROT_ROUTER_FAILED,
	ROT_ROUTER_ROLLED_BACK,
	ROT_ROUTER_BUSY
};

struct rot_event {
	enum rot_ev_type type;
	int64_t now_ms;            /* monotonic */
	const struct qkd_msg *msg; /* FRAME: verified, replay-checked, this channel */
	uint32_t rotation;         /* KME, ROUTER: the rotation of the request */
	enum rot_kme_status kme;
	const char *key_id; /* KME OK: the key_ID received */
	enum rot_router_op op;
	enum rot_router_status router;
	const char *detail; /* KME, ROUTER: short reason for logs, or NULL */
};

enum rot_act_type {
	ROT_ACT_SEND = 0,
	ROT_ACT_KME_ENC,
	ROT_ACT_KME_DEC,
	ROT_ACT_ROUTER_STAGE,
	ROT_ACT_ROUTER_CONFIRM,
	ROT_ACT_ROUTER_CANCEL,
	ROT_ACT_PERSIST,
	ROT_ACT_LOG,
	ROT_ACT_METRICS,
};

enum rot_log_level { ROT_LOG_ERR = 0, ROT_LOG_WARN, ROT_LOG_INFO, ROT_LOG_DEBUG };

struct rot_metrics {
	uint32_t rotation;
	bool ok;                 /* every router confirmed the new key */
	uint8_t result;          /* enum qkd_result of the rotation */
	int64_t duration_ms;     /* enc_keys request to the last confirm seen */
	int64_t skew_ms;         /* first to last router running the new key (stages) */
	int64_t confirm_skew_ms; /* own confirm to the last slave's confirm */
	int64_t diverged_ms;     /* routers on different keys */
	/* where the time went, on the master's critical path (0: not reached) */
	int64_t kme_ms;     /* enc_keys request to the KME's answer */
	int64_t stage_ms;   /* own stage (confirmed commit) request to its result */
	int64_t ack_ms;     /* ANNOUNCE to the last ACK OK: frames, slaves' dec_keys and stage */
	int64_t confirm_ms; /* own confirm request (the decision) to its result */
};

struct rot_action {
	enum rot_act_type type;
	uint32_t rotation;
	struct qkd_msg msg;                  /* SEND */
	char key_id[QKD_KEYID_MAX + 1];      /* KME_DEC, ROUTER_*, SEND ANNOUNCE */
	char detail[QKD_DETAIL_MAX + 1];     /* SEND ACK */
	char ckn[KD_CKN_LEN + 1];            /* ROUTER_STAGE */
	char persist_id[ROT_PERSIST_ID_MAX]; /* ROUTER_* */
	uint32_t confirm_timeout_s;          /* ROUTER_STAGE */
	unsigned key_bits;                   /* KME_ENC, KME_DEC */
	enum rot_log_level level;            /* LOG */
	char text[ROT_TEXT_MAX];             /* LOG */
	struct rot_metrics metrics;          /* METRICS */
	const struct chan_state *state;      /* PERSIST */
};

struct rot_actions {
	size_t n;
	bool overflow; /* more than ROT_ACTIONS_MAX: a bug; rot_handle() returns -1 */
	struct rot_action a[ROT_ACTIONS_MAX];
};

/* What the machine knows of a peer, from its HELLOs and ACKs. */
struct rot_peer {
	char sae[QKD_SENDER_MAX + 1];
	bool heard;
	int64_t last_hello_ms;
	uint16_t interval_s;
	uint8_t state;
	uint32_t current, pending;
	uint8_t digest[QKD_DIGEST_LEN];
	/* master, per rotation */
	bool staged, confirmed;
	int64_t staged_ms, confirmed_ms;
};

/* The machine: the caller allocates it; fields are private to rotation.c. */
struct rot_machine {
	struct rot_config cfg;
	char self[QKD_SENDER_MAX + 1];
	char prefix[KD_PREFIX_LEN + 1];
	enum rot_state state;
	bool resync; /* since start, until the peers' keys were compared */
	struct chan_state st;
	uint8_t digest[QKD_DIGEST_LEN];        /* of st.current_key_id */
	struct rot_peer peers[ROT_SLAVES_MAX]; /* master: the slaves; slave: [0] = master */
	size_t npeers;
	int64_t now;
	int64_t next_hello;
	int64_t rotate_due; /* INT64_MAX: none */
	int64_t fail_delay;
	/* the rotation in progress */
	uint32_t rot;
	int64_t t_start, t_rto, rto, deadline, giveup, t_router_retry, router_backoff;
	bool own_busy; /* a stage is outstanding */
	bool own_staged;
	bool cancel_after_stage;
	int64_t own_staged_ms, own_confirmed_ms, first_stage_ms;
	int64_t kme_ok_ms, decided_ms; /* metrics: KME answer, decision (0: not yet) */
	char key_id[QKD_KEYID_MAX + 1];
	/* slave */
	unsigned dec_attempts;
	int64_t t_fetch;
	bool decision_seen;
	uint32_t decision_current, decision_pending;
	char skip_reason[160]; /* the last skip's reason, to log a repeat quietly */
	uint64_t retries;      /* salt of the retry spreading */
	bool retry_pending;    /* rotate_due is a retry delay: HELLOs never pull it forward */
	bool want_key;         /* master: NO_KEY seen, rotate even if nobody knows a key */
	unsigned defer_streak; /* deferrals since the last completed or failed rotation */
	bool router_wait;      /* master: idle, the last start skipped: own router busy */
	/* counters (completed, failed, deferred live in st: they survive restarts) */
	uint64_t skipped;
};

/*
 * Checks cfg and prepares m. Returns 0, or -1 with err naming the field.
 */
int rot_init(struct rot_machine *m, const struct rot_config *cfg, char *err, size_t errlen);

/*
 * Starts the machine with the persisted state (NULL: a first start, or a state
 * file that was refused: the channel then holds no known key and the master
 * rotates afresh). Resolves a pending rotation as protocol.md 10.6 says.
 * Returns 0, or -1 if st does not belong to this channel and role (err).
 */
int rot_start(struct rot_machine *m, const struct chan_state *st, int64_t now_ms,
              struct rot_actions *out, char *err, size_t errlen);

/* Handles one event. out is reset first. Returns 0, or -1 with err on a bad
 * event or an action overflow (a bug). */
int rot_handle(struct rot_machine *m, const struct rot_event *ev, struct rot_actions *out,
               char *err, size_t errlen);

/* True if m is a master whose last start was skipped because its own router
 * was busy, and which has not started since: ROT_EV_ROUTER_FREE starts it. */
bool rot_waits_for_router(const struct rot_machine *m);

/* True while a master's rotation is done on its own router but may still hold
 * a slave's: confirmed here, slaves not all confirmed yet (COMMITTING), or
 * aborting. A rotation started now would meet that tail on the slave's router
 * and be refused there. */
bool rot_slaves_busy(const struct rot_machine *m);

/* The earliest time rot_handle() wants a TICK (for the daemon's timer). */
int64_t rot_next_timer(const struct rot_machine *m);

/* What qkdlinkctl status shows for the channel. Strings point into m. */
struct rot_status {
	uint8_t role;
	const char *state;
	bool resync;
	uint32_t current_rotation, pending_rotation, last_rotation;
	const char *current_key_id, *pending_key_id, *last_detail;
	uint8_t last_result;
	uint64_t rotations_ok, rotations_failed, rotations_deferred, skipped;
	size_t npeers;
	struct {
		const char *sae;
		bool heard, alive;
		int64_t since_ms; /* since its last HELLO; -1: never heard */
		uint8_t state;    /* enum qkd_state from its HELLO */
		uint32_t current_rotation;
		bool same_key; /* its key digest equals ours */
	} peers[ROT_SLAVES_MAX];
};

void rot_status(const struct rot_machine *m, int64_t now_ms, struct rot_status *out);

const char *rot_state_name(enum rot_state s);
const struct chan_state *rot_persisted(const struct rot_machine *m);

#endif
