/*
 * replay.h - replay protection: a high-water mark (epoch, sequence) per
 * (channel, sender ID), protocol.md §5.2.
 *
 * Pure bookkeeping, no I/O: the agent persists the marks with its state and
 * restores them with qkd_replay_update() at start. Only frames whose ICV
 * verified may move a mark.
 */
#ifndef QKD_REPLAY_H
#define QKD_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

struct qkd_replay_mark {
	uint32_t channel;
	uint8_t sender_len;
	char sender[QKD_SENDER_MAX];
	uint32_t epoch;
	uint32_t seq;
};

struct qkd_replay {
	struct qkd_replay_mark *marks;
	size_t n;
	size_t cap;
};

/* A table for at most cap (channel, sender) pairs; 0, or -1 when out of memory. */
int qkd_replay_init(struct qkd_replay *r, size_t cap);
void qkd_replay_free(struct qkd_replay *r);

/* QKD_OK if (epoch, seq) is above the mark for (channel, sender), else QKD_DROP_REPLAY. */
enum qkd_drop qkd_replay_check(const struct qkd_replay *r, uint32_t channel,
                               const struct qkd_str *sender, uint32_t epoch, uint32_t seq);

/*
 * Raises the mark for (channel, sender) to (epoch, seq), never lowers it.
 * Returns 0, or -1 if the pair is new and the table is full.
 */
int qkd_replay_update(struct qkd_replay *r, uint32_t channel, const struct qkd_str *sender,
                      uint32_t epoch, uint32_t seq);

/* The mark for (channel, sender), or NULL if none yet. */
const struct qkd_replay_mark *qkd_replay_find(const struct qkd_replay *r, uint32_t channel,
                                              const struct qkd_str *sender);

#endif
