/*
 * rx.c - one received frame through every check, counted by outcome.
 */
#include "rx.h"

#include <stdlib.h>
#include <string.h>

int qkd_rx_init(struct qkd_rx *rx, const struct qkd_ident *ident, size_t max_secrets,
                size_t max_peers)
{
	memset(rx, 0, sizeof *rx);
	rx->ident = *ident;
	rx->cap = max_secrets;
	rx->secrets = calloc(max_secrets ? max_secrets : 1, sizeof *rx->secrets);
	if (rx->secrets == NULL)
		return -1;
	if (qkd_replay_init(&rx->replay, max_peers) != 0) {
		free(rx->secrets);
		rx->secrets = NULL;
		return -1;
	}
	for (int i = 0; i < QKD_DROP_COUNT; i++)
		rx->last_log[i] = INT64_MIN;
	return 0;
}

void qkd_rx_free(struct qkd_rx *rx)
{
	for (size_t i = 0; i < rx->nsecrets; i++)
		qkd_key_clear(&rx->secrets[i].key);
	free(rx->secrets);
	rx->secrets = NULL;
	rx->nsecrets = rx->cap = 0;
	qkd_replay_free(&rx->replay);
}

static const struct qkd_rx_secret *find_secret(const struct qkd_rx *rx, uint32_t channel,
                                               uint8_t id, bool *channel_known)
{
	*channel_known = false;
	for (size_t i = 0; i < rx->nsecrets; i++) {
		const struct qkd_rx_secret *s = &rx->secrets[i];
		if (s->channel != channel && s->channel != QKD_RX_ANY_CHANNEL)
			continue;
		*channel_known = true;
		if (s->id == id)
			return s;
	}
	return NULL;
}

int qkd_rx_add_secret(struct qkd_rx *rx, uint32_t channel, uint8_t id, struct qkd_key *key)
{
	for (size_t i = 0; i < rx->nsecrets; i++)
		if (rx->secrets[i].channel == channel && rx->secrets[i].id == id)
			return -1;
	if (rx->nsecrets >= rx->cap)
		return -1;
	struct qkd_rx_secret *s = &rx->secrets[rx->nsecrets++];
	s->channel = channel;
	s->id = id;
	s->key = *key;
	key->mac = NULL;
	return 0;
}

bool qkd_rx_has_channel(const struct qkd_rx *rx, uint32_t channel)
{
	for (size_t i = 0; i < rx->nsecrets; i++)
		if (rx->secrets[i].channel == channel ||
		    rx->secrets[i].channel == QKD_RX_ANY_CHANNEL)
			return true;
	return false;
}

static enum qkd_drop check(struct qkd_rx *rx, const uint8_t *frame, size_t len,
                           struct qkd_decoded *out)
{
	enum qkd_drop d = qkd_frame_decode(frame, len, &rx->ident, out);
	if (d != QKD_OK)
		return d;
	const struct qkd_msg *m = &out->msg;
	bool known;
	const struct qkd_rx_secret *s = find_secret(rx, m->channel, m->secret_id, &known);
	if (!known)
		return QKD_DROP_UNKNOWN_CHANNEL;
	if (s == NULL)
		return QKD_DROP_UNKNOWN_SECRET;
	d = qkd_frame_verify(out, &s->key);
	if (d != QKD_OK)
		return d;
	d = qkd_replay_check(&rx->replay, m->channel, &m->sender, m->epoch, m->seq);
	if (d != QKD_OK)
		return d;
	/* A full table cannot track this sender: refuse rather than accept
	 * frames we could not later recognise as replays. */
	if (qkd_replay_update(&rx->replay, m->channel, &m->sender, m->epoch, m->seq) != 0)
		return QKD_DROP_PEER_LIMIT;
	return QKD_OK;
}

enum qkd_drop qkd_rx_frame(struct qkd_rx *rx, const uint8_t *frame, size_t len,
                           struct qkd_decoded *out)
{
	enum qkd_drop d = check(rx, frame, len, out);
	rx->count[d]++;
	return d;
}

bool qkd_rx_should_log(struct qkd_rx *rx, enum qkd_drop reason, int64_t now, uint64_t *suppressed)
{
	*suppressed = 0;
	if ((unsigned)reason >= QKD_DROP_COUNT || reason == QKD_OK || reason == QKD_DROP_FOREIGN)
		return false;
	if (rx->last_log[reason] != INT64_MIN && now - rx->last_log[reason] < QKD_RX_LOG_INTERVAL) {
		rx->unlogged[reason]++;
		return false;
	}
	*suppressed = rx->unlogged[reason];
	rx->unlogged[reason] = 0;
	rx->last_log[reason] = now;
	return true;
}
