/*
 * nc_macsec.h - the Junos configuration for MACsec static-CAK, built with
 * libxml2 and validated before anything is sent.
 *
 * Two forms (docs/netconf.md has the XML):
 *  - static: security/macsec/connectivity-association[name] with cipher-suite,
 *    security-mode static-cak, pre-shared-key/{ckn,cak}; and
 *    security/macsec/interfaces[name]/connectivity-association (the binding);
 *  - key chain (hitless rollover): security/authentication-key-chains/
 *    key-chain[name]/key[name=N]/{key-name,secret,start-time}, and the CA's
 *    pre-shared-key-chain pointing at it.
 * The <configuration> element gets no namespace (Junos' own form) or Juniper's
 * YANG namespaces (conf/root on configuration, conf/security on security), for
 * rfc-compliant Junos and YANG-strict servers such as the test server.
 */
#ifndef NC_MACSEC_H
#define NC_MACSEC_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#include "nc_error.h"

#define NC_JUNOS_NS_ROOT "http://yang.juniper.net/junos/conf/root"
#define NC_JUNOS_NS_SECURITY "http://yang.juniper.net/junos/conf/security"

enum nc_cfg_ns {
	NC_CFG_NS_NONE = 0, /* <configuration> without namespace (Junos default) */
	NC_CFG_NS_YANG = 1, /* Juniper's YANG namespaces */
};

#define NC_CA_NAME_MAX 32
#define NC_CKN_HEX_MAX 64
#define NC_IFNAME_MAX 64
#define NC_MORE_IFNAMES_MAX 63

/* Static CAK for one CA. ifname may be NULL (no binding written). */
struct nc_macsec_ca {
	const char *name;         /* 1..32 characters */
	const char *cipher_suite; /* gcm-aes-128, gcm-aes-256, gcm-aes-xpn-128, gcm-aes-xpn-256 */
	const char *ckn;          /* even-length hex, 2..64 */
	const char *cak;          /* hex, 32 (128-bit suites) or 64 (256-bit suites) */
	const char *ifname;       /* interface bound to the CA, e.g. et-0/0/1, or NULL */
	bool replace;             /* replace the CA entry as a whole (nc:operation="replace"):
	                             leaves not given here (an old fallback-key or
	                             pre-shared-key-chain) go; the rest of the tree is untouched */
	const char *const *more_ifnames; /* further interfaces bound to it (provisioning) */
	size_t nmore_ifnames;            /* at most NC_MORE_IFNAMES_MAX; the read-back
	                                    checks ifname's binding only */
};

/* One key of a key chain, and the CA that uses the chain. */
struct nc_macsec_keychain {
	const char *ca;           /* CA name */
	const char *cipher_suite; /* as above; the secret's length must match it */
	const char *chain;        /* key-chain name, 1..32 */
	unsigned key;             /* 0..63 */
	const char *key_name;     /* the CKN */
	const char *secret;       /* the CAK */
	const char *start_time;   /* "YYYY-MM-DD.HH:MM" or "YYYY-MM-DD.HH:MM:SS" */
	const char *ifname;       /* or NULL */
	bool replace;             /* replace the CA entry as a whole, as above */
};

/* Hex characters a CAK needs for SUITE, or 0 for an unknown suite. */
size_t nc_macsec_cak_len(const char *suite);

/* Each check returns NC_OK or NC_E_INVALID naming the field and the rule
 * (never the value of a key). */
enum nc_err nc_macsec_check_ca(const struct nc_macsec_ca *ca, struct nc_error *e);
enum nc_err nc_macsec_check_keychain(const struct nc_macsec_keychain *kc, struct nc_error *e);

/* Builds a new <configuration> tree (unlinked, owned by DOC) into *out. */
enum nc_err nc_macsec_build_ca(xmlDocPtr doc, const struct nc_macsec_ca *ca, enum nc_cfg_ns ns,
                               xmlNodePtr *out, struct nc_error *e);
enum nc_err nc_macsec_build_keychain(xmlDocPtr doc, const struct nc_macsec_keychain *kc,
                                     enum nc_cfg_ns ns, xmlNodePtr *out, struct nc_error *e);

/* A subtree filter selecting one CA (and its interface binding, if IFNAME). */
enum nc_err nc_macsec_filter_ca(xmlDocPtr doc, const char *ca, const char *ifname,
                                enum nc_cfg_ns ns, xmlNodePtr *out, struct nc_error *e);

/* What a read-back shows of one CA. */
struct nc_macsec_state {
	bool found;
	char cipher_suite[24];
	char security_mode[16];
	char ckn[NC_CKN_HEX_MAX + 1];
	char cak[160];                  /* as returned: clear hex (test server) or $9$... (Junos) */
	char ifname[NC_IFNAME_MAX + 1]; /* the interface asked for, "" if none */
	char bound_ca[NC_CA_NAME_MAX + 1]; /* the CA bound to it */
};

/* Extracts CA (and IFNAME's binding) from a get-config <data> element. */
void nc_macsec_read(xmlNodePtr data, const char *ca, const char *ifname,
                    struct nc_macsec_state *st);

/* Compares a read-back with what was pushed. The CAK is compared only when the
 * router returns it in clear (Junos returns $9$ text). NC_OK or NC_E_VERIFY. */
enum nc_err nc_macsec_verify(const struct nc_macsec_ca *ca, const struct nc_macsec_state *st,
                             struct nc_error *e);

#endif
