/*
 * state.h - the persisted per-channel state of the agent (docs/protocol.md
 * section 10.3): current and pending key_ID, rotation IDs, the pending
 * rotation's phase, the last result, the sender epoch and the replay
 * high-water marks. Never key material.
 *
 * Format: one small JSON object per channel (STATE_DIR/channel-N.json),
 * written with write-temp, fsync, rename, fsync of the folder, mode 0600.
 * Loading is strict: unknown members, wrong types, out-of-range values,
 * invalid key_IDs, trailing garbage and files over STATE_FILE_MAX are refused
 * with a message naming the file and the member.
 *
 * Recovery from a corrupt or truncated file (STATE_E_CORRUPT): the caller
 * logs the message, renames the file aside (state_quarantine()) and starts the
 * channel from an empty state (state_init()). An empty state holds no key
 * (digest zero), so the master's HELLO comparison (section 10.6) sees a
 * mismatch and starts a fresh rotation, which rewrites the router; rotation
 * IDs restart above every ID seen in the peers' HELLOs. Replay marks restart
 * empty: protocol.md section 7 says what that costs.
 */
#ifndef QKD_AGENT_STATE_H
#define QKD_AGENT_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

#define STATE_MARKS_MAX 16   /* replay marks kept per channel: its master and slaves (at most 9) */
#define STATE_FILE_MAX 65536 /* larger files are refused */
#define STATE_VERSION 1

/* The phase of a pending rotation (what the router may hold). */
enum state_phase {
	STATE_PHASE_NONE = 0,   /* no pending rotation */
	STATE_PHASE_FETCHING,   /* KME request sent (key may be consumed) */
	STATE_PHASE_STAGING,    /* key_ID known, confirmed commit sent or about to be */
	STATE_PHASE_STAGED,     /* confirmed commit landed; not yet confirmed */
	STATE_PHASE_CONFIRMING, /* the decision: confirm sent or about to be */
	STATE_PHASE_COUNT
};

struct state_mark {
	char sender[QKD_SENDER_MAX + 1];
	uint32_t epoch;
	uint32_t seq;
};

struct chan_state {
	uint32_t channel;
	uint8_t role;              /* enum qkd_role */
	uint32_t epoch;            /* sender epoch when written (informative; epoch.h owns it) */
	uint32_t current_rotation; /* 0: none */
	char current_key_id[QKD_KEYID_MAX + 1]; /* "" when none */
	uint32_t pending_rotation;              /* 0: none */
	char pending_key_id[QKD_KEYID_MAX + 1];
	uint8_t phase;          /* enum state_phase; NONE iff pending_rotation == 0 */
	uint32_t max_rotation;  /* highest rotation ID used or seen */
	uint32_t last_rotation; /* the rotation of the last result (ACK sent or outcome) */
	uint8_t last_result;    /* enum qkd_result */
	char last_detail[QKD_DETAIL_MAX + 1];
	/* rotations since the file was made, so a restart keeps the counts
	 * (written with the rest, never on their own; optional when loading) */
	uint32_t rotations_ok, rotations_failed, rotations_deferred;
	size_t nmarks;
	struct state_mark marks[STATE_MARKS_MAX];
};

enum state_err {
	STATE_OK = 0,
	STATE_E_MISSING, /* no file: a first start */
	STATE_E_IO,      /* cannot read or write (errno text in the message) */
	STATE_E_CORRUPT, /* the file exists but is not a valid state: see the message */
	STATE_E_ARG,     /* bad argument (a state that must not be written) */
};

/* An empty state for channel and role. */
void state_init(struct chan_state *s, uint32_t channel, uint8_t role);

/* Checks the invariants a state must hold to be written or after loading.
 * STATE_OK or STATE_E_ARG with the reason in err. */
enum state_err state_check(const struct chan_state *s, char *err, size_t errlen);

/* "DIR/channel-N.json" into buf. 0, or -1 if it does not fit. */
int state_path(const char *dir, uint32_t channel, char *buf, size_t len);

/* Writes s to path atomically (path.tmp, fsync, rename, fsync of the folder),
 * mode 0600. STATE_OK, or an error with err naming the file and the cause. */
enum state_err state_save(const char *path, const struct chan_state *s, char *err, size_t errlen);

/* Reads and validates path into *s. STATE_OK, STATE_E_MISSING, STATE_E_IO or
 * STATE_E_CORRUPT, with err naming the file, the member and the problem. *s
 * is only written on STATE_OK. */
enum state_err state_load(const char *path, struct chan_state *s, char *err, size_t errlen);

/* Parses a state from memory (the loader's core; also the fuzz target's).
 * what names the source in messages. */
enum state_err state_parse(const char *buf, size_t len, const char *what, struct chan_state *s,
                           char *err, size_t errlen);

/* Renames a refused file to path.corrupt-N (first free N <= 99) so that an
 * operator can look at it; 0 or -1 with err. */
int state_quarantine(const char *path, char *err, size_t errlen);

const char *state_phase_name(uint8_t phase);
const char *state_err_name(enum state_err e);

#endif
