/*
 * nc_xml.c - NETCONF hello, <rpc> building and <rpc-reply> parsing.
 */
#include "nc_xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlsave.h>

static const int PARSE_OPTS =
    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;

xmlNodePtr nc_xml_child(xmlNodePtr n, const char *name)
{
	if (n == NULL)
		return NULL;
	for (xmlNodePtr c = n->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
			return c;
	return NULL;
}

const char *nc_xml_text(xmlNodePtr n, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (n == NULL)
		return buf;
	xmlChar *t = xmlNodeGetContent(n);
	if (t == NULL)
		return buf;
	/* trim the whitespace servers put around values */
	const char *s = (const char *)t;
	while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
		s++;
	size_t l = strlen(s);
	while (l > 0 &&
	       (s[l - 1] == ' ' || s[l - 1] == '\n' || s[l - 1] == '\t' || s[l - 1] == '\r'))
		l--;
	if (l >= len)
		l = len - 1;
	memcpy(buf, s, l);
	buf[l] = '\0';
	xmlFree(t);
	return buf;
}

static xmlDocPtr parse(const char *msg, size_t len)
{
	if (len > (size_t)0x7fffffff)
		return NULL;
	xmlDocPtr d = xmlReadMemory(msg, (int)len, NULL, NULL, PARSE_OPTS);
	if (d && (d->intSubset || d->extSubset)) { /* no DTDs in NETCONF: no entity games */
		xmlFreeDoc(d);
		return NULL;
	}
	return d;
}

/* ---- hello ---- */

int nc_hello_build(bool offer11, char **out, size_t *len)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf,
	                 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	                 "<hello xmlns=\"" NC_NS_BASE "\"><capabilities>"
	                 "<capability>" NC_CAP_BASE10 "</capability>%s"
	                 "</capabilities></hello>",
	                 offer11 ? "<capability>" NC_CAP_BASE11 "</capability>" : "");
	if (n < 0 || (size_t)n >= sizeof buf)
		return -1;
	*out = strdup(buf);
	if (*out == NULL)
		return -1;
	*len = (size_t)n;
	return 0;
}

void nc_hello_free(struct nc_hello *h)
{
	for (size_t i = 0; i < h->ncaps; i++)
		free(h->caps[i]);
	free(h->caps);
	memset(h, 0, sizeof *h);
}

enum nc_err nc_hello_parse(const char *msg, size_t len, struct nc_hello *h, struct nc_error *e)
{
	memset(h, 0, sizeof *h);
	xmlDocPtr d = parse(msg, len);
	if (d == NULL)
		return nc_errf(e, NC_E_PROTO, "server hello is not well-formed XML");
	enum nc_err rc = NC_OK;
	xmlNodePtr root = xmlDocGetRootElement(d);
	if (root == NULL || strcmp((const char *)root->name, "hello") != 0) {
		rc = nc_errf(e, NC_E_PROTO, "expected <hello> from the server, got <%s>",
		             root ? (const char *)root->name : "nothing");
		goto out;
	}
	xmlNodePtr caps = nc_xml_child(root, "capabilities");
	for (xmlNodePtr c = caps ? caps->children : NULL; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "capability"))
			continue;
		if (h->ncaps >= NC_CAPS_MAX) {
			rc = nc_errf(e, NC_E_PROTO, "server hello lists over %d capabilities",
			             NC_CAPS_MAX);
			goto out;
		}
		char tmp[1024];
		nc_xml_text(c, tmp, sizeof tmp);
		char **nc = realloc(h->caps, (h->ncaps + 1) * sizeof *nc);
		if (nc == NULL) {
			rc = nc_errf(e, NC_E_NOMEM, "out of memory reading the hello");
			goto out;
		}
		h->caps = nc;
		if ((h->caps[h->ncaps] = strdup(tmp)) == NULL) {
			rc = nc_errf(e, NC_E_NOMEM, "out of memory reading the hello");
			goto out;
		}
		h->ncaps++;
	}
	if (!nc_hello_has(h, NC_CAP_BASE10) && !nc_hello_has(h, NC_CAP_BASE11)) {
		rc = nc_errf(e, NC_E_PROTO, "server hello offers neither base:1.0 nor base:1.1");
		goto out;
	}
	nc_xml_text(nc_xml_child(root, "session-id"), h->session_id, sizeof h->session_id);
	if (h->session_id[0] == '\0')
		rc = nc_errf(e, NC_E_PROTO, "server hello has no session-id");
out:
	xmlFreeDoc(d);
	if (rc != NC_OK)
		nc_hello_free(h);
	return rc;
}

bool nc_hello_has(const struct nc_hello *h, const char *cap)
{
	size_t cl = strlen(cap);
	for (size_t i = 0; i < h->ncaps; i++) {
		const char *c = h->caps[i];
		if (strncmp(c, cap, cl) == 0 && (c[cl] == '\0' || c[cl] == '?'))
			return true;
	}
	return false;
}

/* ---- requests ---- */

xmlDocPtr nc_rpc_new(const char *op_name, xmlNodePtr *op)
{
	xmlDocPtr d = xmlNewDoc(BAD_CAST "1.0");
	if (d == NULL)
		return NULL;
	xmlNodePtr rpc = xmlNewDocNode(d, NULL, BAD_CAST "rpc", NULL);
	if (rpc == NULL)
		goto fail;
	xmlDocSetRootElement(d, rpc);
	xmlNsPtr ns = xmlNewNs(rpc, BAD_CAST NC_NS_BASE, BAD_CAST "nc");
	if (ns == NULL)
		goto fail;
	xmlSetNs(rpc, ns);
	*op = xmlNewChild(rpc, ns, BAD_CAST op_name, NULL);
	if (*op == NULL)
		goto fail;
	return d;
fail:
	xmlFreeDoc(d);
	return NULL;
}

xmlNodePtr nc_rpc_add(xmlNodePtr parent, const char *name, const char *text)
{
	xmlNsPtr ns = xmlSearchNsByHref(parent->doc, parent, BAD_CAST NC_NS_BASE);
	if (ns == NULL)
		return NULL;
	xmlNodePtr n = xmlNewChild(parent, ns, BAD_CAST name, NULL);
	if (n && text) {
		xmlNodePtr t = xmlNewText(BAD_CAST text); /* escapes <, >, & on output */
		if (t == NULL)
			return NULL;
		xmlAddChild(n, t);
	}
	return n;
}

int nc_rpc_serialize(xmlDocPtr doc, unsigned long message_id, char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	xmlNodePtr rpc = xmlDocGetRootElement(doc);
	char id[24];
	snprintf(id, sizeof id, "%lu", message_id);
	if (rpc == NULL || xmlSetProp(rpc, BAD_CAST "message-id", BAD_CAST id) == NULL)
		return -1;
	xmlBufferPtr b = xmlBufferCreate();
	if (b == NULL)
		return -1;
	xmlSaveCtxtPtr s = xmlSaveToBuffer(b, "UTF-8", XML_SAVE_NO_DECL);
	if (s == NULL) {
		xmlBufferFree(b);
		return -1;
	}
	long w = xmlSaveDoc(s, doc);
	xmlSaveClose(s);
	if (w < 0) {
		xmlBufferFree(b);
		return -1;
	}
	size_t l = (size_t)xmlBufferLength(b);
	const xmlChar *c = xmlBufferContent(b);
	while (l > 0 && c[l - 1] == '\n')
		l--;
	*out = malloc(l + 1);
	if (*out) {
		memcpy(*out, c, l);
		(*out)[l] = '\0';
		*len = l;
	}
	/* the buffer may hold a CAK: wipe before freeing */
	if (xmlBufferLength(b) > 0)
		memset((void *)c, 0, (size_t)xmlBufferLength(b));
	xmlBufferFree(b);
	return *out ? 0 : -1;
}

/* ---- replies ---- */

static bool is_secret_name(const char *s, size_t n)
{
	return (n == 3 && memcmp(s, "cak", 3) == 0) || (n == 6 && memcmp(s, "secret", 6) == 0) ||
	       (n == 8 && memcmp(s, "password", 8) == 0);
}

static void copy_rpc_error(xmlNodePtr err, struct nc_rpc_error *r)
{
	memset(r, 0, sizeof *r);
	nc_xml_text(nc_xml_child(err, "error-type"), r->type, sizeof r->type);
	nc_xml_text(nc_xml_child(err, "error-tag"), r->tag, sizeof r->tag);
	nc_xml_text(nc_xml_child(err, "error-severity"), r->severity, sizeof r->severity);
	nc_xml_text(nc_xml_child(err, "error-app-tag"), r->app_tag, sizeof r->app_tag);
	nc_xml_text(nc_xml_child(err, "error-path"), r->path, sizeof r->path);
	nc_xml_text(nc_xml_child(err, "error-message"), r->message, sizeof r->message);
	xmlNodePtr info = nc_xml_child(err, "error-info");
	nc_xml_text(nc_xml_child(info, "session-id"), r->session_id, sizeof r->session_id);
	nc_xml_text(nc_xml_child(info, "bad-element"), r->bad_element, sizeof r->bad_element);
	nc_xml_text(nc_xml_child(info, "bad-value"), r->bad_value, sizeof r->bad_value);
	/* the server echoes the refused value: never keep a key in an error */
	const char *leaf = r->path;
	for (const char *p = r->path; *p; p++)
		if (*p == '/' || *p == ':')
			leaf = p + 1;
	const char *be = strchr(r->bad_element, ':');
	be = be ? be + 1 : r->bad_element;
	if (r->bad_value[0] &&
	    (is_secret_name(leaf, strlen(leaf)) || is_secret_name(be, strlen(be))))
		snprintf(r->bad_value, sizeof r->bad_value, "<redacted>");
}

enum nc_err nc_reply_parse(const char *msg, size_t len, struct nc_reply *r, struct nc_error *e)
{
	memset(r, 0, sizeof *r);
	xmlDocPtr d = parse(msg, len);
	if (d == NULL)
		return nc_errf(e, NC_E_PROTO, "reply is not well-formed XML (%zu bytes)", len);
	xmlNodePtr root = xmlDocGetRootElement(d);
	if (root && strcmp((const char *)root->name, "notification") == 0) {
		r->doc = d;
		r->kind = NC_REPLY_NOTIFICATION;
		return NC_OK;
	}
	if (root == NULL || strcmp((const char *)root->name, "rpc-reply") != 0) {
		enum nc_err rc = nc_errf(e, NC_E_PROTO, "expected <rpc-reply>, got <%.40s>",
		                         root ? (const char *)root->name : "nothing");
		xmlFreeDoc(d);
		return rc;
	}
	r->doc = d;
	xmlChar *id = xmlGetProp(root, BAD_CAST "message-id");
	if (id) {
		snprintf(r->message_id, sizeof r->message_id, "%s", (const char *)id);
		xmlFree(id);
	}
	bool ok = false, failed = false;
	for (xmlNodePtr c = root->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		const char *n = (const char *)c->name;
		if (strcmp(n, "ok") == 0) {
			ok = true;
		} else if (strcmp(n, "data") == 0) {
			if (r->data == NULL)
				r->data = c;
		} else if (strcmp(n, "rpc-error") == 0) {
			struct nc_rpc_error tmp;
			copy_rpc_error(c, &tmp);
			bool warning = strcmp(tmp.severity, "warning") == 0;
			if (!warning)
				failed = true;
			if (e && e->nrpc < NC_RPC_ERRORS_MAX)
				e->rpc[e->nrpc++] = tmp;
		}
	}
	if (failed)
		r->kind = NC_REPLY_ERROR;
	else if (r->data)
		r->kind = NC_REPLY_DATA;
	else if (ok)
		r->kind = NC_REPLY_OK;
	else
		r->kind = NC_REPLY_EMPTY;
	return NC_OK;
}

void nc_reply_free(struct nc_reply *r)
{
	if (r->doc)
		xmlFreeDoc(r->doc);
	memset(r, 0, sizeof *r);
}

/* ---- redaction ---- */

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == ':';
}

char *nc_redact(const char *xml, size_t len)
{
	static const char MARK[] = "<redacted>";
	/* worst case: every byte becomes the mark (cannot happen, but bounds the copy) */
	char *out = malloc(len + 1 + (len / 4 + 1) * (sizeof MARK));
	if (out == NULL)
		return NULL;
	size_t o = 0, i = 0;
	while (i < len) {
		char c = xml[i];
		out[o++] = c;
		i++;
		if (c != '<' || i >= len || xml[i] == '/' || xml[i] == '?' || xml[i] == '!')
			continue;
		/* a start tag: read its name, drop any prefix */
		size_t ns = i;
		while (i < len && name_char(xml[i]))
			i++;
		size_t ne = i;
		size_t ls = ns;
		for (size_t k = ns; k < ne; k++)
			if (xml[k] == ':')
				ls = k + 1;
		memcpy(out + o, xml + ns, ne - ns);
		o += ne - ns;
		/* copy the rest of the tag */
		bool self_closing = false;
		while (i < len && xml[i] != '>') {
			out[o++] = xml[i];
			i++;
		}
		if (i < len) {
			self_closing = i > 0 && xml[i - 1] == '/';
			out[o++] = '>';
			i++;
		}
		if (self_closing || !is_secret_name(xml + ls, ne - ls))
			continue;
		/* skip the content up to the next '<' (the end tag) */
		size_t cs = i;
		while (i < len && xml[i] != '<')
			i++;
		if (i > cs) {
			memcpy(out + o, MARK, sizeof MARK - 1);
			o += sizeof MARK - 1;
		}
	}
	out[o] = '\0';
	return out;
}
