/*
 * nc_error.h - how the netconf module reports failure: an error code plus a
 * filled struct saying what went wrong and where, with the server's
 * <rpc-error> (RFC 6241 section 4.3) kept field by field so the agent can act
 * on the tag (lock-denied: retry later; invalid-value: a bug of ours) and an
 * operator can read the path and the lock holder's session.
 */
#ifndef NC_ERROR_H
#define NC_ERROR_H

#include <stdbool.h>
#include <stddef.h>

enum nc_err {
	NC_OK = 0,
	NC_E_ARG,             /* bad argument or configuration (ours) */
	NC_E_NOMEM,           /* allocation failed */
	NC_E_FILE,            /* key, password or known_hosts file unusable */
	NC_E_CONNECT,         /* TCP connect failed */
	NC_E_TIMEOUT,         /* an operation took longer than its deadline */
	NC_E_HOSTKEY_UNKNOWN, /* server host key not in known_hosts */
	NC_E_HOSTKEY_CHANGED, /* server host key differs from known_hosts: refused */
	NC_E_AUTH,            /* authentication refused */
	NC_E_SSH,             /* other SSH failure */
	NC_E_CLOSED,          /* the server closed the session */
	NC_E_PROTO,           /* framing, XML or NETCONF protocol violation */
	NC_E_RPC,             /* the server answered <rpc-error>: see rpc */
	NC_E_CAPABILITY,      /* the server lacks a capability the operation needs */
	NC_E_VERIFY,          /* read-back after commit does not show the change */
	NC_E_INVALID,         /* a value failed validation before sending */
	NC_E_BUSY,            /* worker queue full or stopped */
};

#define NC_RPC_ERRORS_MAX 4

/* One <rpc-error>, fields truncated to these sizes (NUL-terminated, "" when absent). */
struct nc_rpc_error {
	char type[16];     /* transport, rpc, protocol, application */
	char tag[40];      /* lock-denied, in-use, invalid-value, ... */
	char severity[12]; /* error, warning */
	char app_tag[64];
	char path[384];       /* error-path */
	char message[256];    /* error-message */
	char session_id[24];  /* error-info/session-id: the lock holder, for lock-denied */
	char bad_element[64]; /* error-info/bad-element */
	char bad_value[64];   /* error-info/bad-value (redacted if it looks like a key) */
};

struct nc_error {
	enum nc_err code;
	char msg[512]; /* one line for a human: what failed and why */
	int nrpc;      /* <rpc-error>s kept (the first NC_RPC_ERRORS_MAX) */
	struct nc_rpc_error rpc[NC_RPC_ERRORS_MAX];
	char cleanup[256]; /* what the client did to leave the server clean, if anything */
};

/* Resets E to "no error". */
void nc_error_clear(struct nc_error *e);

/* Sets E (code and message) and returns CODE, for `return nc_errf(...)`. */
enum nc_err nc_errf(struct nc_error *e, enum nc_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A short constant name for CODE ("lock denied" is in rpc[0].tag, not here). */
const char *nc_strerror(enum nc_err code);

/* Formats E as one line: message, then each rpc-error's type/tag/path/message/info,
 * then the cleanup note. Returns BUF. */
const char *nc_error_format(const struct nc_error *e, char *buf, size_t len);

#endif
