/*
 * nc_push.c - commit a CKN/CAK and read it back.
 */
#include "nc_push.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum nc_err nc_read_ca(struct nc_session *s, const char *ds, const char *ca, const char *ifname,
                       enum nc_cfg_ns ns, struct nc_macsec_state *st, struct nc_error *e)
{
	memset(st, 0, sizeof *st);
	xmlDocPtr d = xmlNewDoc(BAD_CAST "1.0");
	if (d == NULL)
		return nc_errf(e, NC_E_NOMEM, "out of memory");
	xmlNodePtr f;
	enum nc_err rc = nc_macsec_filter_ca(d, ca, ifname, ns, &f, e);
	if (rc == NC_OK) {
		struct nc_reply r;
		rc = nc_get_config(s, ds, f, &r, e);
		if (rc == NC_OK) {
			nc_macsec_read(r.data, ca, ifname, st);
			nc_reply_free(&r);
		}
		xmlFreeNode(f);
	}
	xmlFreeDoc(d);
	return rc;
}

/* a verify failure after a confirmed commit: undo it now */
static void undo(struct nc_session *s, const struct nc_push_opts *o, struct nc_error *e)
{
	if (o->confirm_timeout_s <= 0 || e == NULL)
		return;
	struct nc_error ce;
	nc_error_clear(&ce);
	if (nc_cancel_commit(s, o->persist, &ce) == NC_OK)
		snprintf(e->cleanup, sizeof e->cleanup, "confirmed commit cancelled");
	else
		snprintf(e->cleanup, sizeof e->cleanup,
		         "cancel-commit failed (%.100s): the server rolls back in %d s", ce.msg,
		         o->confirm_timeout_s);
}

static enum nc_err apply(struct nc_session *s, xmlNodePtr cfg, const struct nc_push_opts *o,
                         struct nc_error *e)
{
	struct nc_change c = {
	    .config = cfg,
	    .replace = false, /* a replace is scoped to the CA entry by the builder */
	    .validate = false,
	    .confirm_timeout_s = o->confirm_timeout_s,
	    .persist = o->persist,
	};
	return nc_apply(s, &c, e);
}

enum nc_err nc_push_ca(struct nc_session *s, const struct nc_macsec_ca *ca,
                       const struct nc_push_opts *o, struct nc_error *e)
{
	nc_error_clear(e);
	xmlDocPtr d = xmlNewDoc(BAD_CAST "1.0");
	if (d == NULL)
		return nc_errf(e, NC_E_NOMEM, "out of memory");
	xmlNodePtr cfg;
	struct nc_macsec_ca c = *ca;
	c.replace = c.replace || o->replace;
	enum nc_err rc = nc_macsec_build_ca(d, &c, o->ns, &cfg, e);
	if (rc == NC_OK) {
		rc = apply(s, cfg, o, e);
		xmlFreeNode(cfg);
	}
	xmlFreeDoc(d);
	if (rc)
		return rc;
	struct nc_macsec_state st;
	rc = nc_read_ca(s, "running", ca->name, ca->ifname, o->ns, &st, e);
	if (rc == NC_OK)
		rc = nc_macsec_verify(ca, &st, e);
	explicit_bzero(&st, sizeof st);
	if (rc) {
		char m[512];
		snprintf(m, sizeof m, "committed, but the read-back failed: %.470s",
		         e ? e->msg : "");
		if (e)
			snprintf(e->msg, sizeof e->msg, "%s", m);
		undo(s, o, e);
	}
	return rc;
}

enum nc_err nc_push_keychain(struct nc_session *s, const struct nc_macsec_keychain *kc,
                             const struct nc_push_opts *o, struct nc_error *e)
{
	nc_error_clear(e);
	xmlDocPtr d = xmlNewDoc(BAD_CAST "1.0");
	if (d == NULL)
		return nc_errf(e, NC_E_NOMEM, "out of memory");
	xmlNodePtr cfg;
	struct nc_macsec_keychain kcr = *kc;
	kcr.replace = kcr.replace || o->replace;
	enum nc_err rc = nc_macsec_build_keychain(d, &kcr, o->ns, &cfg, e);
	if (rc == NC_OK) {
		rc = apply(s, cfg, o, e);
		xmlFreeNode(cfg);
	}
	if (rc) {
		xmlFreeDoc(d);
		return rc;
	}
	/* read back the chain: filter on the chain name */
	xmlNodePtr f = xmlNewDocNode(d, NULL, BAD_CAST "configuration", NULL);
	xmlNodePtr sec = f ? xmlNewChild(f, NULL, BAD_CAST "security", NULL) : NULL;
	if (sec && o->ns == NC_CFG_NS_YANG) {
		xmlSetNs(f, xmlNewNs(f, BAD_CAST NC_JUNOS_NS_ROOT, NULL));
		xmlSetNs(sec, xmlNewNs(sec, BAD_CAST NC_JUNOS_NS_SECURITY, NULL));
	}
	xmlNodePtr akc =
	    sec ? xmlNewChild(sec, sec->ns, BAD_CAST "authentication-key-chains", NULL) : NULL;
	xmlNodePtr ch = akc ? xmlNewChild(akc, sec->ns, BAD_CAST "key-chain", NULL) : NULL;
	if (ch == NULL ||
	    xmlNewTextChild(ch, sec->ns, BAD_CAST "name", BAD_CAST kc->chain) == NULL) {
		xmlFreeNode(f);
		xmlFreeDoc(d);
		return nc_errf(e, NC_E_NOMEM, "out of memory");
	}
	struct nc_reply r;
	rc = nc_get_config(s, "running", f, &r, e);
	xmlFreeNode(f);
	xmlFreeDoc(d);
	if (rc)
		return rc;
	char keyno[8], name[NC_CKN_HEX_MAX + 1] = "";
	snprintf(keyno, sizeof keyno, "%u", kc->key);
	xmlNodePtr chain = nc_xml_child(
	    nc_xml_child(nc_xml_child(nc_xml_child(r.data, "configuration"), "security"),
	                 "authentication-key-chains"),
	    "key-chain");
	for (xmlNodePtr k = chain ? chain->children : NULL; k; k = k->next) {
		char n[8];
		if (k->type == XML_ELEMENT_NODE && strcmp((const char *)k->name, "key") == 0 &&
		    strcmp(nc_xml_text(nc_xml_child(k, "name"), n, sizeof n), keyno) == 0)
			nc_xml_text(nc_xml_child(k, "key-name"), name, sizeof name);
	}
	nc_reply_free(&r);
	if (strcasecmp(name, kc->key_name) != 0) {
		rc = nc_errf(e, NC_E_VERIFY,
		             "committed, but key-chain %s key %u reads back with key-name \"%s\"",
		             kc->chain, kc->key, name);
		undo(s, o, e);
	}
	return rc;
}
