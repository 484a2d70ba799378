/*
 * nc_push.h - the agent's router operation: put a CKN/CAK into a connectivity
 * association safely and prove it is there.
 *
 * nc_push_ca() = validate, build, nc_apply() (lock, edit, commit, unlock; on
 * failure discard and unlock), then get-config of running and compare: Junos can
 * print errors yet commit, or report success and commit nothing. With a
 * confirmed commit, a read-back that does not show the change cancels the
 * commit at once instead of waiting for the timeout.
 */
#ifndef NC_PUSH_H
#define NC_PUSH_H

#include "nc_macsec.h"
#include "nc_session.h"

struct nc_push_opts {
	enum nc_cfg_ns ns;     /* namespace form of <configuration> */
	bool replace;          /* replace the CA entry as a whole instead of merging into it
	                          (nc:operation="replace" on it; never default-operation
	                          replace, which would replace the whole configuration) */
	int confirm_timeout_s; /* > 0: confirmed commit (confirm later with nc_confirm) */
	const char *persist;   /* persist token for the confirmed commit, or NULL */
};

/* Pushes CA, then reads running back and verifies it (NC_E_VERIFY if it differs). */
enum nc_err nc_push_ca(struct nc_session *s, const struct nc_macsec_ca *ca,
                       const struct nc_push_opts *o, struct nc_error *e);

/* Pushes one key of a key chain (hitless rollover form); verifies the key-name. */
enum nc_err nc_push_keychain(struct nc_session *s, const struct nc_macsec_keychain *kc,
                             const struct nc_push_opts *o, struct nc_error *e);

/* Reads CA (and IFNAME's binding) from DS ("running" or "candidate"). */
enum nc_err nc_read_ca(struct nc_session *s, const char *ds, const char *ca, const char *ifname,
                       enum nc_cfg_ns ns, struct nc_macsec_state *st, struct nc_error *e);

#endif
