/*
 * rx.h - the receiver's checks of protocol.md §6 in one call.
 *
 * qkd_rx_frame() decodes a frame, finds the channel and secret, verifies the
 * ICV, checks and raises the replay mark, and counts the outcome by reason.
 * Pure: no I/O, no clock (the caller passes the time for log rate limiting).
 * Used by qkd88b7 and by the agent.
 */
#ifndef QKD_RX_H
#define QKD_RX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "replay.h"

#define QKD_RX_ANY_CHANNEL 0   /* a secret that serves every channel (tools) */
#define QKD_RX_LOG_INTERVAL 10 /* seconds between two log lines of one reason */

struct qkd_rx_secret {
	uint32_t channel; /* or QKD_RX_ANY_CHANNEL */
	uint8_t id;
	struct qkd_key key;
};

struct qkd_rx {
	struct qkd_ident ident;
	struct qkd_rx_secret *secrets;
	size_t nsecrets;
	size_t cap;
	struct qkd_replay replay;
	uint64_t count[QKD_DROP_COUNT]; /* count[QKD_OK]: frames accepted */
	int64_t last_log[QKD_DROP_COUNT];
	uint64_t unlogged[QKD_DROP_COUNT];
};

/* Room for max_secrets secrets and max_peers (channel, sender) marks. 0 or -1. */
int qkd_rx_init(struct qkd_rx *rx, const struct qkd_ident *ident, size_t max_secrets,
                size_t max_peers);
/* Frees the secrets (wiping them) and the replay table. */
void qkd_rx_free(struct qkd_rx *rx);

/*
 * Adds a secret for channel (or QKD_RX_ANY_CHANNEL) under secret ID id, taking
 * ownership of key. Returns 0, or -1 if full or (channel, id) is already set.
 */
int qkd_rx_add_secret(struct qkd_rx *rx, uint32_t channel, uint8_t id, struct qkd_key *key);

/* True if some secret serves channel. */
bool qkd_rx_has_channel(const struct qkd_rx *rx, uint32_t channel);

/*
 * Runs checks 1 to 15 on one frame. Returns QKD_OK (out holds the message,
 * pointing into frame) or the drop reason; counts either way.
 */
enum qkd_drop qkd_rx_frame(struct qkd_rx *rx, const uint8_t *frame, size_t len,
                           struct qkd_decoded *out);

/*
 * Rate limiting for drop logs: true at most once per QKD_RX_LOG_INTERVAL s per
 * reason; *suppressed is how many drops of that reason went unlogged since the
 * last true. `foreign` frames are never logged. now is in seconds.
 */
bool qkd_rx_should_log(struct qkd_rx *rx, enum qkd_drop reason, int64_t now, uint64_t *suppressed);

#endif
