/*
 * control.c - the control protocol's parsing and formatting (see control.h).
 */
#include "control.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int control_parse(const char *line, size_t len, struct control_request *req, char *err,
                  size_t errlen)
{
	char buf[CONTROL_LINE_MAX + 1];

	memset(req, 0, sizeof *req);
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0) {
		snprintf(err, errlen, "empty request");
		return -1;
	}
	if (len > CONTROL_LINE_MAX) {
		snprintf(err, errlen, "request longer than %d octets", CONTROL_LINE_MAX);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c > 0x7e) {
			snprintf(err, errlen, "request holds a control or non-ASCII octet");
			return -1;
		}
	}
	memcpy(buf, line, len);
	buf[len] = '\0';

	char *save = NULL;
	char *verb = strtok_r(buf, " \t", &save);
	char *arg = verb ? strtok_r(NULL, " \t", &save) : NULL;
	char *extra = arg ? strtok_r(NULL, " \t", &save) : NULL;
	if (!verb) {
		snprintf(err, errlen, "empty request");
		return -1;
	}
	if (strcmp(verb, "status") == 0 || strcmp(verb, "reload") == 0) {
		if (arg) {
			snprintf(err, errlen, "%s takes no argument", verb);
			return -1;
		}
		req->cmd = verb[0] == 's' ? CONTROL_STATUS : CONTROL_RELOAD;
		return 0;
	}
	if (strcmp(verb, "rotate") == 0) {
		if (!arg || extra) {
			snprintf(err, errlen, "usage: rotate CHANNEL");
			return -1;
		}
		char *end = NULL;
		errno = 0;
		unsigned long long v = strtoull(arg, &end, 10);
		if (arg[0] < '0' || arg[0] > '9' || *end || errno || v < 1 || v > UINT32_MAX) {
			snprintf(err, errlen,
			         "rotate: \"%.32s\" is not a channel number (1..4294967295)", arg);
			return -1;
		}
		req->cmd = CONTROL_ROTATE;
		req->channel = (uint32_t)v;
		return 0;
	}
	snprintf(err, errlen, "unknown command \"%.32s\" (status, rotate CHANNEL, reload)", verb);
	return -1;
}

/* json_object_set_new() that remembers a failure */
static void put(json_t *o, const char *k, json_t *v, bool *bad)
{
	if (!v || json_object_set_new(o, k, v) != 0)
		*bad = true;
}

static json_t *str_or_null(const char *s)
{
	return s && s[0] ? json_string(s) : json_null();
}

static json_t *channel_json(const struct control_channel *c)
{
	bool bad = false;
	json_t *o = json_object();
	if (!o)
		return NULL;
	const struct rot_status *st = &c->st;
	put(o, "id", json_integer(c->id), &bad);
	put(o, "ca_name", json_string(c->ca_name ? c->ca_name : ""), &bad);
	put(o, "role", json_string(qkd_role_name(st->role)), &bad);
	put(o, "state", json_string(st->state ? st->state : "unknown"), &bad);
	put(o, "resync", json_boolean(st->resync), &bad);
	put(o, "current_key_id", str_or_null(st->current_key_id), &bad);
	put(o, "current_rotation", json_integer(st->current_rotation), &bad);
	put(o, "pending_rotation", json_integer(st->pending_rotation), &bad);
	put(o, "pending_key_id", str_or_null(st->pending_key_id), &bad);
	if (st->last_rotation) {
		put(o, "last_result", json_string(qkd_result_name(st->last_result)), &bad);
		put(o, "last_result_rotation", json_integer(st->last_rotation), &bad);
	} else {
		put(o, "last_result", json_null(), &bad);
		put(o, "last_result_rotation", json_null(), &bad);
	}
	put(o, "last_detail", str_or_null(st->last_detail), &bad);
	if (c->has_metrics) {
		const struct rot_metrics *m = &c->metrics;
		json_t *lr = json_object();
		if (lr) {
			put(lr, "rotation", json_integer(m->rotation), &bad);
			put(lr, "ok", json_boolean(m->ok), &bad);
			put(lr, "result", json_string(qkd_result_name(m->result)), &bad);
			put(lr, "duration_ms", json_integer(m->duration_ms), &bad);
			put(lr, "skew_ms", json_integer(m->skew_ms), &bad);
			put(lr, "confirm_skew_ms", json_integer(m->confirm_skew_ms), &bad);
			put(lr, "diverged_ms", json_integer(m->diverged_ms), &bad);
			put(lr, "kme_ms", json_integer(m->kme_ms), &bad);
			put(lr, "stage_ms", json_integer(m->stage_ms), &bad);
			put(lr, "ack_ms", json_integer(m->ack_ms), &bad);
			put(lr, "confirm_ms", json_integer(m->confirm_ms), &bad);
		}
		put(o, "last_rotation", lr, &bad);
	} else {
		put(o, "last_rotation", json_null(), &bad);
	}
	json_t *peers = json_array();
	for (size_t i = 0; peers && i < st->npeers && i < ROT_SLAVES_MAX; i++) {
		json_t *p = json_object();
		if (!p) {
			bad = true;
			break;
		}
		put(p, "sae_id", json_string(st->peers[i].sae ? st->peers[i].sae : ""), &bad);
		put(p, "alive", json_boolean(st->peers[i].alive), &bad);
		if (st->peers[i].heard && st->peers[i].since_ms >= 0)
			put(p, "last_heard_s", json_real((double)st->peers[i].since_ms / 1000.0),
			    &bad);
		else
			put(p, "last_heard_s", json_null(), &bad);
		put(p, "state", json_string(qkd_state_name(st->peers[i].state)), &bad);
		put(p, "current_rotation", json_integer(st->peers[i].current_rotation), &bad);
		put(p, "same_key", json_boolean(st->peers[i].same_key), &bad);
		if (json_array_append_new(peers, p) != 0)
			bad = true;
	}
	put(o, "peers", peers, &bad);
	put(o, "rotations_completed", json_integer((json_int_t)st->rotations_ok), &bad);
	put(o, "rotations_failed", json_integer((json_int_t)st->rotations_failed), &bad);
	put(o, "rotations_deferred", json_integer((json_int_t)st->rotations_deferred), &bad);
	put(o, "rotations_skipped", json_integer((json_int_t)st->skipped), &bad);
	put(o, "agent_busy_us", json_integer((json_int_t)c->busy_us), &bad);
	put(o, "agent_persist_us", json_integer((json_int_t)c->persist_us), &bad);
	put(o, "state_error", c->state_error ? json_string(c->state_error) : json_null(), &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *frames_json(const struct control_status *s)
{
	bool bad = false;
	json_t *fr = json_object();
	json_t *dr = json_object();
	if (fr && dr) {
		put(fr, "accepted", json_integer((json_int_t)s->frames[QKD_OK]), &bad);
		for (int d = 1; d < QKD_DROP_COUNT; d++)
			put(dr, qkd_drop_name((enum qkd_drop)d),
			    json_integer((json_int_t)s->frames[d]), &bad);
		put(dr, "ring_full", json_integer((json_int_t)s->ring_full), &bad);
		put(fr, "dropped", dr, &bad);
		dr = NULL;
	} else {
		bad = true;
	}
	json_decref(dr);
	if (bad) {
		json_decref(fr);
		return NULL;
	}
	return fr;
}

static json_t *kme_json(const struct control_status *s)
{
	bool bad = false;
	json_t *k = json_object();
	if (!k)
		return NULL;
	put(k, "cert_days_left", s->cert_known ? json_integer(s->cert_days) : json_null(), &bad);
	put(k, "ca_days_left", s->cert_known ? json_integer(s->ca_days) : json_null(), &bad);
	put(k, "warn_days", json_integer(s->warn_days), &bad);
	bool warn = s->cert_known && s->warn_days > 0 &&
	            (s->cert_days < (long)s->warn_days || s->ca_days < (long)s->warn_days);
	put(k, "warning", json_boolean(warn), &bad);
	if (bad) {
		json_decref(k);
		return NULL;
	}
	return k;
}

/* Writes v (taken over; NULL: an allocation failed) as compact JSON. */
static int write_value(json_t *v, json_dump_callback_t out, void *arg)
{
	if (!v)
		return -1;
	int r = json_dump_callback(v, out, arg,
	                           JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
	json_decref(v);
	return r == 0 ? 0 : -1;
}

static int write_text(const char *text, json_dump_callback_t out, void *arg)
{
	return out(text, strlen(text), arg) == 0 ? 0 : -1;
}

int control_status_write(const struct control_status *s, json_dump_callback_t out, void *arg)
{
	if (write_text("{\"sae_id\":", out, arg) != 0 ||
	    write_value(json_string(s->sae_id ? s->sae_id : ""), out, arg) != 0 ||
	    write_text(",\"channels\":[", out, arg) != 0)
		return -1;
	for (size_t i = 0; i < s->nchannels; i++) {
		struct control_channel c;
		memset(&c, 0, sizeof c);
		s->channel(s->channel_arg, i, &c);
		if ((i > 0 && write_text(",", out, arg) != 0) ||
		    write_value(channel_json(&c), out, arg) != 0)
			return -1;
	}
	if (write_text("],\"frames\":", out, arg) != 0 ||
	    write_value(frames_json(s), out, arg) != 0 || write_text(",\"kme\":", out, arg) != 0 ||
	    write_value(kme_json(s), out, arg) != 0 || write_text("}", out, arg) != 0)
		return -1;
	return 0;
}

json_t *control_reply(const char *error)
{
	if (!error)
		return json_pack("{s:b}", "ok", 1);
	return json_pack("{s:b,s:s}", "ok", 0, "error", error);
}

static const char *jstr(const json_t *o, const char *k, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : dflt;
}

static long long jint(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

int control_status_print(const json_t *status, FILE *out)
{
	const json_t *chs = json_object_get(status, "channels");
	if (!json_is_object(status) || !json_is_array(chs))
		return -1;
	fprintf(out, "agent %s\n", jstr(status, "sae_id", "?"));
	const json_t *k = json_object_get(status, "kme");
	if (json_is_integer(json_object_get(k, "cert_days_left")))
		fprintf(out, "kme certificates: client %lld days left, CA %lld days left%s\n",
		        jint(k, "cert_days_left"), jint(k, "ca_days_left"),
		        json_is_true(json_object_get(k, "warning")) ? " (WARNING: renew soon)"
		                                                    : "");
	size_t i;
	const json_t *c;
	json_array_foreach(chs, i, c)
	{
		fprintf(out, "channel %lld (%s): %s, %s\n", jint(c, "id"), jstr(c, "ca_name", "?"),
		        jstr(c, "role", "?"), jstr(c, "state", "?"));
		fprintf(out, "  current key_ID %s (rotation %lld)\n",
		        jstr(c, "current_key_id", "(none)"), jint(c, "current_rotation"));
		if (jint(c, "pending_rotation"))
			fprintf(out, "  pending rotation %lld key_ID %s\n",
			        jint(c, "pending_rotation"),
			        jstr(c, "pending_key_id", "(not yet known)"));
		if (json_is_string(json_object_get(c, "last_result")))
			fprintf(out, "  last result: rotation %lld %s%s%s\n",
			        jint(c, "last_result_rotation"), jstr(c, "last_result", "?"),
			        json_is_string(json_object_get(c, "last_detail")) ? ": " : "",
			        jstr(c, "last_detail", ""));
		const json_t *lr = json_object_get(c, "last_rotation");
		if (json_is_object(lr))
			fprintf(out,
			        "  last rotation %lld: %s, %lld ms, skew %lld ms, confirm skew "
			        "%lld ms, "
			        "diverged %lld ms\n",
			        jint(lr, "rotation"), jstr(lr, "result", "?"),
			        jint(lr, "duration_ms"), jint(lr, "skew_ms"),
			        jint(lr, "confirm_skew_ms"), jint(lr, "diverged_ms"));
		fprintf(out,
		        "  rotations: %lld completed, %lld failed, %lld deferred, %lld skipped\n",
		        jint(c, "rotations_completed"), jint(c, "rotations_failed"),
		        jint(c, "rotations_deferred"), jint(c, "rotations_skipped"));
		if (json_is_string(json_object_get(c, "state_error")))
			fprintf(out, "  STATE NOT SAVED: %s (rotations refused until it is)\n",
			        jstr(c, "state_error", "?"));
		size_t j;
		const json_t *p;
		json_array_foreach(json_object_get(c, "peers"), j, p)
		{
			const json_t *lh = json_object_get(p, "last_heard_s");
			if (json_is_number(lh))
				fprintf(out, "  peer %s: %s, last heard %.1f s ago, %s\n",
				        jstr(p, "sae_id", "?"),
				        json_is_true(json_object_get(p, "alive")) ? "alive"
				                                                  : "dead",
				        json_number_value(lh), jstr(p, "state", "?"));
			else
				fprintf(out, "  peer %s: dead, never heard\n",
				        jstr(p, "sae_id", "?"));
		}
	}
	const json_t *fr = json_object_get(status, "frames");
	fprintf(out, "frames: %lld accepted", jint(fr, "accepted"));
	const char *name;
	const json_t *v;
	json_object_foreach((json_t *)json_object_get(fr, "dropped"), name, v)
	{
		if (json_integer_value(v))
			fprintf(out, ", %lld %s", (long long)json_integer_value(v), name);
	}
	fprintf(out, "\n");
	return 0;
}
