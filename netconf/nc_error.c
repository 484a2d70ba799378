/*
 * nc_error.c - error reporting for the netconf module.
 */
#include "nc_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void nc_error_clear(struct nc_error *e)
{
	if (e)
		memset(e, 0, sizeof *e);
}

enum nc_err nc_errf(struct nc_error *e, enum nc_err code, const char *fmt, ...)
{
	if (e == NULL)
		return code;
	e->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return code;
}

const char *nc_strerror(enum nc_err code)
{
	switch (code) {
	case NC_OK:
		return "ok";
	case NC_E_ARG:
		return "bad argument";
	case NC_E_NOMEM:
		return "out of memory";
	case NC_E_FILE:
		return "file";
	case NC_E_CONNECT:
		return "connect";
	case NC_E_TIMEOUT:
		return "timeout";
	case NC_E_HOSTKEY_UNKNOWN:
		return "host key unknown";
	case NC_E_HOSTKEY_CHANGED:
		return "host key changed";
	case NC_E_AUTH:
		return "authentication";
	case NC_E_SSH:
		return "ssh";
	case NC_E_CLOSED:
		return "session closed";
	case NC_E_PROTO:
		return "protocol";
	case NC_E_RPC:
		return "rpc-error";
	case NC_E_CAPABILITY:
		return "capability";
	case NC_E_VERIFY:
		return "read-back mismatch";
	case NC_E_INVALID:
		return "invalid value";
	case NC_E_BUSY:
		return "busy";
	}
	return "unknown";
}

const char *nc_error_format(const struct nc_error *e, char *buf, size_t len)
{
	size_t n = 0;
	if (len == 0)
		return buf;
	buf[0] = '\0';
#define PUT(...)                                                                                   \
	do {                                                                                       \
		if (n < len) {                                                                     \
			int w_ = snprintf(buf + n, len - n, __VA_ARGS__);                          \
			if (w_ > 0)                                                                \
				n += (size_t)w_;                                                   \
		}                                                                                  \
	} while (0)
	PUT("%s: %s", nc_strerror(e->code), e->msg);
	for (int i = 0; i < e->nrpc && i < NC_RPC_ERRORS_MAX; i++) {
		const struct nc_rpc_error *r = &e->rpc[i];
		PUT("; rpc-error type=%s tag=%s severity=%s", r->type, r->tag, r->severity);
		if (r->app_tag[0])
			PUT(" app-tag=%s", r->app_tag);
		if (r->path[0])
			PUT(" path=%s", r->path);
		if (r->message[0])
			PUT(" message=\"%s\"", r->message);
		if (r->session_id[0])
			PUT(" session-id=%s", r->session_id);
		if (r->bad_element[0])
			PUT(" bad-element=%s", r->bad_element);
		if (r->bad_value[0])
			PUT(" bad-value=%s", r->bad_value);
	}
	if (e->cleanup[0])
		PUT("; %s", e->cleanup);
#undef PUT
	return buf;
}
