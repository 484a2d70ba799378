/*
 * nc_session.h - one NETCONF session over SSH (RFC 6241 over RFC 6242), on
 * libssh2 and libxml2.
 *
 * Blocking model: every call blocks its caller, but never longer than its
 * deadline (connect_timeout_ms for connect+SSH+hello, rpc_timeout_ms per RPC):
 * libssh2 runs in non-blocking mode under poll(), so a dead router cannot hang
 * the caller. The agent does not call this from its event loop: it runs the
 * session on its own thread through nc_worker.h (docs/netconf.md says why).
 * A session is used by one thread at a time.
 *
 * Safety: nc_apply() is the only way the agent changes configuration: lock,
 * edit, commit, unlock, and on every failure discard-changes + unlock (or,
 * if the session itself is broken, dropping it, which makes the server do
 * both). The error struct's cleanup field says which happened.
 */
#ifndef NC_SESSION_H
#define NC_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#include "nc_error.h"
#include "nc_framing.h"
#include "nc_xml.h"

enum nc_log_level { NC_LOG_ERR = 0, NC_LOG_INFO = 1, NC_LOG_DEBUG = 2 };

/* Log hook: messages never hold a CAK, key-chain secret or password (XML is
 * passed through nc_redact() first). */
typedef void (*nc_log_fn)(void *ctx, enum nc_log_level level, const char *msg);

struct nc_config {
	const char *host; /* name or address */
	unsigned port;    /* 830 by default */
	const char *user;
	const char *known_hosts;   /* OpenSSH known_hosts file: required */
	bool tofu;                 /* trust an unknown host key on first use and record it;
	                              a changed key is refused regardless */
	const char *key_file;      /* private key (ed25519/ECDSA; 0600), or NULL */
	const char *password_file; /* password in a 0600 file, or NULL */
	int connect_timeout_ms;    /* TCP + SSH + auth + hello; default 10000 */
	int rpc_timeout_ms;        /* one RPC; default 60000 (a Junos commit takes seconds) */
	int keepalive_s;           /* SSH keepalive interval, 0 = off; default 30 */
	int hello_gap_ms;          /* pause after our hello before the first RPC: netconfd
	                              drops an RPC read together with the hello; default 10 */
	size_t max_msg;            /* largest reply accepted; default NC_MSG_MAX_DEFAULT */
	bool base10_only;          /* do not offer base:1.1 (chunked framing) */
	nc_log_fn log;             /* or NULL */
	void *log_ctx;
	int log_level; /* messages up to this level reach log (-1: none) */
};

/* Fills C with the defaults above (host, user and files left NULL). */
void nc_config_defaults(struct nc_config *c);

struct nc_session;

/* Connects, checks the host key, authenticates, opens the netconf subsystem,
 * exchanges hellos and picks the framing. *out is NULL on failure. */
enum nc_err nc_connect(const struct nc_config *cfg, struct nc_session **out, struct nc_error *e);

/* Sends <close-session/> (if the session still works), then closes and frees. */
void nc_close(struct nc_session *s);

/* The server's hello (capabilities, session-id) and the framing in use. */
const struct nc_hello *nc_session_hello(const struct nc_session *s);
enum nc_framing nc_session_framing(const struct nc_session *s);
bool nc_session_has_cap(const struct nc_session *s, const char *cap);

/* False once the transport or the framing failed: only nc_close() is left. */
bool nc_session_usable(const struct nc_session *s);

/* Sends an SSH keepalive if one is due; *next_s: seconds until the next one. */
enum nc_err nc_session_keepalive(struct nc_session *s, int *next_s, struct nc_error *e);

/* Sends DOC (an nc_rpc_new() document, freed here) and waits for the reply with
 * its message-id. Returns NC_OK for <ok/> or <data> (reply filled, caller frees
 * it), NC_E_RPC for <rpc-error> (E->rpc filled), or a transport error. REPLY may
 * be NULL. */
enum nc_err nc_rpc(struct nc_session *s, xmlDocPtr doc, struct nc_reply *reply, struct nc_error *e);

/* The datastore edits go to: "candidate" when offered, else "running". */
const char *nc_session_target(const struct nc_session *s);

/* Single RPCs (RFC 6241 section 7 and 8.3/8.4). DS is "candidate", "running"... */
enum nc_err nc_lock(struct nc_session *s, const char *ds, struct nc_error *e);
enum nc_err nc_unlock(struct nc_session *s, const char *ds, struct nc_error *e);
enum nc_err nc_discard_changes(struct nc_session *s, struct nc_error *e);
enum nc_err nc_validate(struct nc_session *s, const char *ds, struct nc_error *e);

/* edit-config of CONFIG (a <configuration> tree, copied) to DS, with
 * default-operation merge or replace; rollback-on-error when offered. */
enum nc_err nc_edit_config(struct nc_session *s, const char *ds, xmlNodePtr config, bool replace,
                           struct nc_error *e);

/* <commit/>; with CONFIRM_TIMEOUT_S > 0 a confirmed commit (PERSIST may be NULL). */
enum nc_err nc_commit(struct nc_session *s, int confirm_timeout_s, const char *persist,
                      struct nc_error *e);
/* Confirms a confirmed commit: <commit> with <persist-id> when PERSIST_ID is given. */
enum nc_err nc_confirm(struct nc_session *s, const char *persist_id, struct nc_error *e);
enum nc_err nc_cancel_commit(struct nc_session *s, const char *persist_id, struct nc_error *e);

/* get-config of DS with a subtree FILTER (copied; NULL: everything). The reply
 * (its data element) goes to *reply, which the caller frees. */
enum nc_err nc_get_config(struct nc_session *s, const char *ds, xmlNodePtr filter,
                          struct nc_reply *reply, struct nc_error *e);

/* Options of one configuration change. */
struct nc_change {
	xmlNodePtr config;     /* the <configuration> tree */
	bool replace;          /* default-operation replace instead of merge */
	bool validate;         /* <validate> the candidate before commit, when offered */
	int confirm_timeout_s; /* > 0: confirmed commit, to be confirmed with nc_confirm() */
	const char *persist;   /* persist token of a confirmed commit, or NULL */
};

/* lock, edit-config, [validate], commit, unlock. On failure the candidate is
 * discarded and the lock released (E->cleanup says so, or says why not). */
enum nc_err nc_apply(struct nc_session *s, const struct nc_change *c, struct nc_error *e);

#endif
