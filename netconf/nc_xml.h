/*
 * nc_xml.h - NETCONF messages as XML (libxml2): the hello, <rpc> building,
 * <rpc-reply> parsing into a structured error, and redaction of key material
 * in any XML text that may reach a log.
 *
 * Requests carry the NETCONF base namespace on an "nc:" prefix, never as the
 * default namespace, so a <configuration> placed inside <nc:config> keeps the
 * namespace its builder gave it (none for Junos) instead of inheriting
 * NETCONF's, which servers reject (netconfd: unknown-element nc:configuration).
 * Replies are matched by local name: Junos, Junos rfc-compliant mode and
 * netconfd put different namespaces on the same elements.
 */
#ifndef NC_XML_H
#define NC_XML_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#include "nc_error.h"

#define NC_NS_BASE "urn:ietf:params:xml:ns:netconf:base:1.0"
#define NC_CAP_BASE10 "urn:ietf:params:netconf:base:1.0"
#define NC_CAP_BASE11 "urn:ietf:params:netconf:base:1.1"
#define NC_CAP_CANDIDATE "urn:ietf:params:netconf:capability:candidate:1.0"
#define NC_CAP_CONFIRMED10 "urn:ietf:params:netconf:capability:confirmed-commit:1.0"
#define NC_CAP_CONFIRMED11 "urn:ietf:params:netconf:capability:confirmed-commit:1.1"
#define NC_CAP_VALIDATE10 "urn:ietf:params:netconf:capability:validate:1.0"
#define NC_CAP_VALIDATE11 "urn:ietf:params:netconf:capability:validate:1.1"
#define NC_CAP_WRITABLE_RUNNING "urn:ietf:params:netconf:capability:writable-running:1.0"

#define NC_CAPS_MAX 512 /* capabilities kept from a hello */

/* The server's hello. */
struct nc_hello {
	char **caps; /* capability URIs, as sent */
	size_t ncaps;
	char session_id[24];
};

/* The client hello offering base:1.0, and base:1.1 when OFFER11. Returns 0 or -1. */
int nc_hello_build(bool offer11, char **out, size_t *len);

/* Parses a server hello; refuses one without a base capability or session-id. */
enum nc_err nc_hello_parse(const char *msg, size_t len, struct nc_hello *h, struct nc_error *e);
void nc_hello_free(struct nc_hello *h);

/* True if the hello lists CAP (compared up to any "?parameters"). */
bool nc_hello_has(const struct nc_hello *h, const char *cap);

/* A new <nc:rpc> document whose operation element is <nc:OP/>, returned in *op.
 * NULL when memory is short. */
xmlDocPtr nc_rpc_new(const char *op_name, xmlNodePtr *op);

/* Adds <nc:NAME>TEXT</nc:NAME> (TEXT may be NULL) under PARENT. NULL when memory is short. */
xmlNodePtr nc_rpc_add(xmlNodePtr parent, const char *name, const char *text);

/* Sets message-id and serialises DOC (UTF-8, no XML declaration). Returns 0 or -1. */
int nc_rpc_serialize(xmlDocPtr doc, unsigned long message_id, char **out, size_t *len);

enum nc_reply_kind {
	NC_REPLY_OK,           /* <ok/> (warnings, if any, in the error struct) */
	NC_REPLY_DATA,         /* <data>: see data */
	NC_REPLY_ERROR,        /* at least one <rpc-error> of severity error */
	NC_REPLY_EMPTY,        /* an <rpc-reply> with neither (RFC-wise an error; Junos does it) */
	NC_REPLY_NOTIFICATION, /* a <notification>, not a reply */
};

struct nc_reply {
	xmlDocPtr doc;
	enum nc_reply_kind kind;
	char message_id[32];
	xmlNodePtr data; /* the <data> element, inside doc */
};

/* Parses one received message. Well-formed replies return NC_OK whatever their
 * kind; rpc-errors (and warnings) are copied into E->rpc. Malformed XML, a DTD,
 * or a root other than rpc-reply/notification give NC_E_PROTO. */
enum nc_err nc_reply_parse(const char *msg, size_t len, struct nc_reply *r, struct nc_error *e);
void nc_reply_free(struct nc_reply *r);

/* First child element of N with local name NAME (any namespace), or NULL. */
xmlNodePtr nc_xml_child(xmlNodePtr n, const char *name);

/* The text of N copied into BUF (truncated), "" if none. Returns BUF. */
const char *nc_xml_text(xmlNodePtr n, char *buf, size_t len);

/* A malloc'ed copy of XML text (LEN bytes, need not be well formed) in which the
 * content of every element whose local name is cak, secret or password is
 * replaced by "<redacted>". NULL when memory is short. */
char *nc_redact(const char *xml, size_t len);

#endif
