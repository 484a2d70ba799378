/*
 * replay.c - per-(channel, sender) high-water marks, linear search: a receiver
 * has a handful of peers per channel and the table is bounded by its creator.
 */
#include "replay.h"

#include <stdlib.h>
#include <string.h>

int qkd_replay_init(struct qkd_replay *r, size_t cap)
{
	r->n = 0;
	r->cap = cap;
	r->marks = calloc(cap ? cap : 1, sizeof *r->marks);
	return r->marks == NULL ? -1 : 0;
}

void qkd_replay_free(struct qkd_replay *r)
{
	free(r->marks);
	r->marks = NULL;
	r->n = r->cap = 0;
}

const struct qkd_replay_mark *qkd_replay_find(const struct qkd_replay *r, uint32_t channel,
                                              const struct qkd_str *sender)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct qkd_replay_mark *m = &r->marks[i];
		if (m->channel == channel && m->sender_len == sender->len &&
		    memcmp(m->sender, sender->ptr, sender->len) == 0)
			return m;
	}
	return NULL;
}

static uint64_t position(uint32_t epoch, uint32_t seq)
{
	return ((uint64_t)epoch << 32) | seq;
}

enum qkd_drop qkd_replay_check(const struct qkd_replay *r, uint32_t channel,
                               const struct qkd_str *sender, uint32_t epoch, uint32_t seq)
{
	const struct qkd_replay_mark *m = qkd_replay_find(r, channel, sender);
	if (m == NULL)
		return position(epoch, seq) > 0 ? QKD_OK : QKD_DROP_REPLAY;
	return position(epoch, seq) > position(m->epoch, m->seq) ? QKD_OK : QKD_DROP_REPLAY;
}

int qkd_replay_update(struct qkd_replay *r, uint32_t channel, const struct qkd_str *sender,
                      uint32_t epoch, uint32_t seq)
{
	if (sender->len == 0 || sender->len > QKD_SENDER_MAX)
		return -1;
	struct qkd_replay_mark *m = (struct qkd_replay_mark *)qkd_replay_find(r, channel, sender);
	if (m == NULL) {
		if (r->n >= r->cap)
			return -1;
		m = &r->marks[r->n++];
		m->channel = channel;
		m->sender_len = (uint8_t)sender->len;
		memcpy(m->sender, sender->ptr, sender->len);
		m->epoch = 0;
		m->seq = 0;
	}
	if (position(epoch, seq) > position(m->epoch, m->seq)) {
		m->epoch = epoch;
		m->seq = seq;
	}
	return 0;
}
