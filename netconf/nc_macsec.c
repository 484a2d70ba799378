/*
 * nc_macsec.c - Junos MACsec static-CAK configuration, validated and built.
 */
#include "nc_macsec.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "nc_xml.h"

static const struct {
	const char *name;
	size_t cak_hex;
} SUITES[] = {
    {"gcm-aes-128", 32},
    {"gcm-aes-256", 64},
    {"gcm-aes-xpn-128", 32},
    {"gcm-aes-xpn-256", 64},
};

size_t nc_macsec_cak_len(const char *suite)
{
	if (suite == NULL)
		return 0;
	for (size_t i = 0; i < sizeof SUITES / sizeof SUITES[0]; i++)
		if (strcmp(SUITES[i].name, suite) == 0)
			return SUITES[i].cak_hex;
	return 0;
}

static bool all_hex(const char *s)
{
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
		      (*s >= 'A' && *s <= 'F')))
			return false;
	return true;
}

static enum nc_err check_name(const char *what, const char *s, struct nc_error *e)
{
	if (s == NULL || s[0] == '\0')
		return nc_errf(e, NC_E_INVALID, "%s: empty", what);
	size_t l = strlen(s);
	if (l > NC_CA_NAME_MAX)
		return nc_errf(e, NC_E_INVALID, "%s: %zu characters, at most %d", what, l,
		               NC_CA_NAME_MAX);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == '<' ||
		    *p == '>' || *p == '&' || *p == '"' || *p == '\'')
			return nc_errf(e, NC_E_INVALID,
			               "%s: character 0x%02x at offset %zu not allowed", what,
			               (unsigned char)*p, (size_t)(p - s));
	return NC_OK;
}

/* Junos interface names: letters, digits, '-', '/', '.', ':' (et-0/0/1, ae0.0). */
static enum nc_err check_ifname(const char *s, struct nc_error *e)
{
	if (s == NULL)
		return NC_OK;
	size_t l = strlen(s);
	if (l == 0 || l > NC_IFNAME_MAX)
		return nc_errf(e, NC_E_INVALID, "interface name: length %zu, need 1..%d", l,
		               NC_IFNAME_MAX);
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return nc_errf(e, NC_E_INVALID, "interface name \"%s\": must start with a letter",
		               s);
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '/' || *p == '.' ||
		      *p == ':' || *p == '_'))
			return nc_errf(e, NC_E_INVALID,
			               "interface name: character 0x%02x at offset %zu not allowed",
			               (unsigned char)*p, (size_t)(p - s));
	return NC_OK;
}

static enum nc_err check_ckn(const char *what, const char *ckn, struct nc_error *e)
{
	if (ckn == NULL)
		return nc_errf(e, NC_E_INVALID, "%s: missing", what);
	size_t l = strlen(ckn);
	if (l < 2 || l > NC_CKN_HEX_MAX || l % 2)
		return nc_errf(e, NC_E_INVALID,
		               "%s: %zu hex characters, need an even number from 2 to 64", what, l);
	if (!all_hex(ckn))
		return nc_errf(e, NC_E_INVALID, "%s: not hexadecimal", what);
	return NC_OK;
}

static enum nc_err check_cak(const char *what, const char *suite, const char *cak,
                             struct nc_error *e)
{
	size_t need = nc_macsec_cak_len(suite);
	if (need == 0)
		return nc_errf(e, NC_E_INVALID,
		               "cipher-suite \"%s\": not one of gcm-aes-128, gcm-aes-256, "
		               "gcm-aes-xpn-128, gcm-aes-xpn-256",
		               suite ? suite : "");
	if (cak == NULL)
		return nc_errf(e, NC_E_INVALID, "%s: missing", what);
	size_t l = strlen(cak);
	if (l != need)
		return nc_errf(e, NC_E_INVALID, "%s: %zu hex characters, %s needs %zu", what, l,
		               suite, need);
	if (!all_hex(cak))
		return nc_errf(e, NC_E_INVALID, "%s: not hexadecimal", what);
	return NC_OK;
}

enum nc_err nc_macsec_check_ca(const struct nc_macsec_ca *ca, struct nc_error *e)
{
	enum nc_err rc;
	if ((rc = check_name("connectivity-association name", ca->name, e)) ||
	    (rc = check_ckn("ckn", ca->ckn, e)) ||
	    (rc = check_cak("cak", ca->cipher_suite, ca->cak, e)) ||
	    (rc = check_ifname(ca->ifname, e)))
		return rc;
	if (ca->nmore_ifnames > 0 && (ca->ifname == NULL || ca->more_ifnames == NULL))
		return nc_errf(e, NC_E_INVALID, "more interfaces given without the first");
	if (ca->nmore_ifnames > NC_MORE_IFNAMES_MAX)
		return nc_errf(e, NC_E_INVALID, "more than %d interfaces", NC_MORE_IFNAMES_MAX + 1);
	for (size_t i = 0; i < ca->nmore_ifnames; i++)
		if (ca->more_ifnames[i] == NULL)
			return nc_errf(e, NC_E_INVALID, "interface %zu missing", i + 2);
		else if ((rc = check_ifname(ca->more_ifnames[i], e)))
			return rc;
	return NC_OK;
}

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* "YYYY-MM-DD.HH:MM" or "YYYY-MM-DD.HH:MM:SS" */
static bool start_time_ok(const char *s)
{
	size_t l = strlen(s);
	if (l != 16 && l != 19)
		return false;
	if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2) ||
	    s[10] != '.' || !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2))
		return false;
	if (l == 19 && (s[16] != ':' || !digits(s + 17, 2)))
		return false;
	int mo = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
	int h = (s[11] - '0') * 10 + (s[12] - '0'), mi = (s[14] - '0') * 10 + (s[15] - '0');
	return mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59;
}

enum nc_err nc_macsec_check_keychain(const struct nc_macsec_keychain *kc, struct nc_error *e)
{
	enum nc_err rc;
	if ((rc = check_name("connectivity-association name", kc->ca, e)) ||
	    (rc = check_name("key-chain name", kc->chain, e)) ||
	    (rc = check_ckn("key-name", kc->key_name, e)) ||
	    (rc = check_cak("secret", kc->cipher_suite, kc->secret, e)) ||
	    (rc = check_ifname(kc->ifname, e)))
		return rc;
	if (kc->key > 63)
		return nc_errf(e, NC_E_INVALID, "key %u: key-chain keys are 0..63", kc->key);
	if (kc->start_time == NULL || !start_time_ok(kc->start_time))
		return nc_errf(e, NC_E_INVALID,
		               "start-time: need \"YYYY-MM-DD.HH:MM\" or \"YYYY-MM-DD.HH:MM:SS\"");
	return NC_OK;
}

/* ---- building ---- */

struct tree {
	xmlDocPtr doc;
	xmlNsPtr sec_ns; /* namespace for security and below, NULL in legacy form */
	bool oom;
};

static xmlNodePtr add(struct tree *t, xmlNodePtr parent, const char *name, const char *text)
{
	if (t->oom || parent == NULL)
		return NULL;
	xmlNodePtr n = xmlNewDocNode(t->doc, t->sec_ns, BAD_CAST name, NULL);
	if (n == NULL) {
		t->oom = true;
		return NULL;
	}
	xmlAddChild(parent, n);
	if (text) {
		xmlNodePtr tx = xmlNewDocText(t->doc, BAD_CAST text);
		if (tx == NULL) {
			t->oom = true;
			return NULL;
		}
		xmlAddChild(n, tx);
	}
	return n;
}

/* <configuration>[ns]<security>[ns]<macsec?> */
static xmlNodePtr root(struct tree *t, enum nc_cfg_ns ns, xmlNodePtr *security)
{
	xmlNodePtr cfg = xmlNewDocNode(t->doc, NULL, BAD_CAST "configuration", NULL);
	if (cfg == NULL) {
		t->oom = true;
		return NULL;
	}
	if (ns == NC_CFG_NS_YANG) {
		/* default namespaces declared on the elements themselves, so the tree
		 * means the same wherever it is placed */
		xmlNsPtr r = xmlNewNs(cfg, BAD_CAST NC_JUNOS_NS_ROOT, NULL);
		if (r == NULL) {
			t->oom = true;
			xmlFreeNode(cfg);
			return NULL;
		}
		xmlSetNs(cfg, r);
	}
	*security = add(t, cfg, "security", NULL);
	if (*security && ns == NC_CFG_NS_YANG) {
		t->sec_ns = xmlNewNs(*security, BAD_CAST NC_JUNOS_NS_SECURITY, NULL);
		if (t->sec_ns == NULL)
			t->oom = true;
		else
			xmlSetNs(*security, t->sec_ns);
	}
	return cfg;
}

static enum nc_err finish(struct tree *t, xmlNodePtr cfg, xmlNodePtr *out, struct nc_error *e)
{
	if (t->oom || cfg == NULL) {
		if (cfg)
			xmlFreeNode(cfg);
		return nc_errf(e, NC_E_NOMEM, "out of memory building the configuration");
	}
	*out = cfg;
	return NC_OK;
}

/* nc:operation="replace" on N, the NETCONF namespace declared on N itself */
static void replace_op(struct tree *t, xmlNodePtr n)
{
	if (t->oom || n == NULL)
		return;
	xmlNsPtr ns =
	    xmlNewNs(n, BAD_CAST "urn:ietf:params:xml:ns:netconf:base:1.0", BAD_CAST "nc");
	if (ns == NULL || xmlNewNsProp(n, ns, BAD_CAST "operation", BAD_CAST "replace") == NULL)
		t->oom = true;
}

static void add_binding(struct tree *t, xmlNodePtr macsec, const char *ifname, const char *ca)
{
	if (ifname == NULL)
		return;
	xmlNodePtr i = add(t, macsec, "interfaces", NULL);
	add(t, i, "name", ifname);
	add(t, i, "connectivity-association", ca);
}

/*
 * security/macsec/connectivity-association[name] with its cipher suite and
 * static-CAK mode, common to both key forms; *macsec gets the macsec node for
 * the interface binding.
 */
static xmlNodePtr add_ca(struct tree *t, xmlNodePtr sec, xmlNodePtr *macsec, const char *name,
                         const char *cipher_suite, bool replace)
{
	*macsec = add(t, sec, "macsec", NULL);
	xmlNodePtr c = add(t, *macsec, "connectivity-association", NULL);
	if (replace)
		replace_op(t, c);
	add(t, c, "name", name);
	add(t, c, "cipher-suite", cipher_suite);
	add(t, c, "security-mode", "static-cak");
	return c;
}

enum nc_err nc_macsec_build_ca(xmlDocPtr doc, const struct nc_macsec_ca *ca, enum nc_cfg_ns ns,
                               xmlNodePtr *out, struct nc_error *e)
{
	*out = NULL;
	enum nc_err rc = nc_macsec_check_ca(ca, e);
	if (rc)
		return rc;
	struct tree t = {doc, NULL, false};
	xmlNodePtr sec, m;
	xmlNodePtr cfg = root(&t, ns, &sec);
	xmlNodePtr c = add_ca(&t, sec, &m, ca->name, ca->cipher_suite, ca->replace);
	xmlNodePtr psk = add(&t, c, "pre-shared-key", NULL);
	add(&t, psk, "ckn", ca->ckn);
	add(&t, psk, "cak", ca->cak);
	add_binding(&t, m, ca->ifname, ca->name);
	for (size_t i = 0; ca->ifname && i < ca->nmore_ifnames; i++)
		add_binding(&t, m, ca->more_ifnames[i], ca->name);
	return finish(&t, cfg, out, e);
}

enum nc_err nc_macsec_build_keychain(xmlDocPtr doc, const struct nc_macsec_keychain *kc,
                                     enum nc_cfg_ns ns, xmlNodePtr *out, struct nc_error *e)
{
	*out = NULL;
	enum nc_err rc = nc_macsec_check_keychain(kc, e);
	if (rc)
		return rc;
	struct tree t = {doc, NULL, false};
	char keyno[8];
	snprintf(keyno, sizeof keyno, "%u", kc->key);
	xmlNodePtr sec, m;
	xmlNodePtr cfg = root(&t, ns, &sec);
	xmlNodePtr c = add_ca(&t, sec, &m, kc->ca, kc->cipher_suite, kc->replace);
	add(&t, c, "pre-shared-key-chain", kc->chain);
	add_binding(&t, m, kc->ifname, kc->ca);
	xmlNodePtr akc = add(&t, sec, "authentication-key-chains", NULL);
	xmlNodePtr ch = add(&t, akc, "key-chain", NULL);
	add(&t, ch, "name", kc->chain);
	xmlNodePtr k = add(&t, ch, "key", NULL);
	add(&t, k, "name", keyno);
	add(&t, k, "secret", kc->secret);
	add(&t, k, "key-name", kc->key_name);
	add(&t, k, "start-time", kc->start_time);
	return finish(&t, cfg, out, e);
}

enum nc_err nc_macsec_filter_ca(xmlDocPtr doc, const char *ca, const char *ifname,
                                enum nc_cfg_ns ns, xmlNodePtr *out, struct nc_error *e)
{
	*out = NULL;
	enum nc_err rc = check_name("connectivity-association name", ca, e);
	if (rc == NC_OK)
		rc = check_ifname(ifname, e);
	if (rc)
		return rc;
	struct tree t = {doc, NULL, false};
	xmlNodePtr sec;
	xmlNodePtr cfg = root(&t, ns, &sec);
	xmlNodePtr m = add(&t, sec, "macsec", NULL);
	xmlNodePtr c = add(&t, m, "connectivity-association", NULL);
	add(&t, c, "name", ca);
	if (ifname) {
		xmlNodePtr i = add(&t, m, "interfaces", NULL);
		add(&t, i, "name", ifname);
	}
	return finish(&t, cfg, out, e);
}

/* the list entry of LIST under PARENT whose <name> is NAME */
static xmlNodePtr entry(xmlNodePtr parent, const char *list, const char *name)
{
	if (parent == NULL || name == NULL)
		return NULL;
	for (xmlNodePtr c = parent->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, list))
			continue;
		char n[80];
		nc_xml_text(nc_xml_child(c, "name"), n, sizeof n);
		if (strcmp(n, name) == 0)
			return c;
	}
	return NULL;
}

void nc_macsec_read(xmlNodePtr data, const char *ca, const char *ifname, struct nc_macsec_state *st)
{
	memset(st, 0, sizeof *st);
	xmlNodePtr m =
	    nc_xml_child(nc_xml_child(nc_xml_child(data, "configuration"), "security"), "macsec");
	xmlNodePtr c = entry(m, "connectivity-association", ca);
	if (c) {
		st->found = true;
		nc_xml_text(nc_xml_child(c, "cipher-suite"), st->cipher_suite,
		            sizeof st->cipher_suite);
		nc_xml_text(nc_xml_child(c, "security-mode"), st->security_mode,
		            sizeof st->security_mode);
		xmlNodePtr psk = nc_xml_child(c, "pre-shared-key");
		nc_xml_text(nc_xml_child(psk, "ckn"), st->ckn, sizeof st->ckn);
		nc_xml_text(nc_xml_child(psk, "cak"), st->cak, sizeof st->cak);
	}
	if (ifname)
		snprintf(st->ifname, sizeof st->ifname, "%s", ifname);
	xmlNodePtr i = entry(m, "interfaces", ifname);
	nc_xml_text(nc_xml_child(i, "connectivity-association"), st->bound_ca, sizeof st->bound_ca);
}

enum nc_err nc_macsec_verify(const struct nc_macsec_ca *ca, const struct nc_macsec_state *st,
                             struct nc_error *e)
{
	if (!st->found)
		return nc_errf(e, NC_E_VERIFY,
		               "connectivity-association %s is not in the running configuration",
		               ca->name);
	if (strcasecmp(st->ckn, ca->ckn) != 0)
		return nc_errf(e, NC_E_VERIFY,
		               "connectivity-association %s: running ckn is %s, "
		               "expected %s",
		               ca->name, st->ckn, ca->ckn);
	if (strcmp(st->cipher_suite, ca->cipher_suite) != 0)
		return nc_errf(e, NC_E_VERIFY,
		               "connectivity-association %s: running cipher-suite is \"%s\"",
		               ca->name, st->cipher_suite);
	if (strcmp(st->security_mode, "static-cak") != 0)
		return nc_errf(e, NC_E_VERIFY,
		               "connectivity-association %s: running security-mode is \"%s\"",
		               ca->name, st->security_mode);
	bool clear = st->cak[0] && strncmp(st->cak, "$9$", 3) != 0;
	if (clear && strcasecmp(st->cak, ca->cak) != 0)
		return nc_errf(e, NC_E_VERIFY,
		               "connectivity-association %s: running cak differs from the one "
		               "pushed",
		               ca->name);
	if (st->cak[0] == '\0')
		return nc_errf(e, NC_E_VERIFY, "connectivity-association %s: running has no cak",
		               ca->name);
	if (ca->ifname &&
	    (strcmp(st->ifname, ca->ifname) != 0 || strcmp(st->bound_ca, ca->name) != 0))
		return nc_errf(e, NC_E_VERIFY, "interface %s is bound to \"%s\", expected %s",
		               ca->ifname, st->bound_ca, ca->name);
	return NC_OK;
}
