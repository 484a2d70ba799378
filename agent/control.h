/*
 * control.h - the qkdlinkd control protocol, shared by the daemon and
 * qkdlinkctl (pure: no socket, no clock).
 *
 * Over the UNIX control socket (mode 0660) the client sends one request line
 * and the daemon answers with one JSON object on one line, then closes:
 *
 *   status            -> the status object (below)
 *   rotate CHANNEL    -> {"ok":true} or {"ok":false,"error":"..."}
 *   reload            -> {"ok":true} or {"ok":false,"error":"..."}
 *
 * The status object: {"sae_id", "channels":[{"id","ca_name","role","state",
 * "resync","current_key_id","current_rotation","pending_rotation",
 * "pending_key_id","last_result","last_detail","last_rotation":{...}|null,
 * "peers":[{"sae_id","alive","last_heard_s"}],"rotations_completed",
 * "rotations_failed","rotations_deferred","rotations_skipped","agent_busy_us",
 * "agent_persist_us","state_error"}], "frames":{"accepted",
 * "dropped":{reason:count, "ring_full":count}}, "kme":{"cert_days_left","ca_days_left",
 * "warn_days","warning"}}. Never key material: key_IDs only.
 */
#ifndef QKD_AGENT_CONTROL_H
#define QKD_AGENT_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "frame.h"
#include "rotation.h"

#define CONTROL_LINE_MAX 256 /* longest request line */

enum control_cmd { CONTROL_STATUS = 1, CONTROL_ROTATE, CONTROL_RELOAD };

struct control_request {
	enum control_cmd cmd;
	uint32_t channel; /* CONTROL_ROTATE */
};

/* Parses one request line (a trailing "\n" or "\r\n" is allowed). 0, or -1
 * with err saying what is wrong. */
int control_parse(const char *line, size_t len, struct control_request *req, char *err,
                  size_t errlen);

/* One channel as the daemon sees it, for control_status_write(). */
struct control_channel {
	uint32_t id;
	const char *ca_name;
	struct rot_status st;
	bool has_metrics;
	struct rot_metrics metrics; /* the last finished rotation (master) */
	uint64_t busy_us;           /* the agent's own time on this channel, cumulative */
	uint64_t persist_us;        /* of which saving its state (fsync) */
	const char *state_error;    /* the last state write failed: why; NULL if fine */
};

struct control_status {
	const char *sae_id;
	size_t nchannels;
	/* fills *out (zeroed) with channel i, 0 <= i < nchannels; strings must
	 * stay valid until the next call */
	void (*channel)(void *channel_arg, size_t i, struct control_channel *out);
	void *channel_arg;
	uint64_t frames[QKD_DROP_COUNT]; /* [QKD_OK]: accepted */
	uint64_t ring_full;              /* dropped by the kernel: receive ring full */
	bool cert_known;
	long cert_days, ca_days;
	unsigned warn_days; /* 0: never warn */
};

/* Writes the status object as one line of compact JSON (no newline) through
 * out, one channel at a time: the memory it takes does not grow with the
 * number of channels (a whole tree of 1,000 channels and its text took about
 * 5 MiB). 0, or -1 if an allocation or out failed (part may be written). */
int control_status_write(const struct control_status *s, json_dump_callback_t out, void *arg);

/* {"ok":true} or {"ok":false,"error":error} (NULL on allocation failure). */
json_t *control_reply(const char *error);

/* Prints a status object as text for people (qkdlinkctl status). 0, or -1 if
 * the object is not a status. */
int control_status_print(const json_t *status, FILE *out);

#endif
