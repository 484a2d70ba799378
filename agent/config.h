/*
 * config.h - the qkdlinkd configuration: one JSON file per agent
 * (docs/configuration.md documents every field).
 *
 * Loading is two passes, so that the parser can be fuzzed without a file
 * system and a config can be checked on a machine that lacks the files:
 *  1. config_parse() / config_from_json(): JSON text or tree -> struct
 *     agent_config, checking types, ranges, syntax of every value, unknown
 *     fields (typo protection) and the rules between fields (duplicate
 *     channels, roles and peers that cannot work, one current secret...).
 *     No file system, no global state.
 *  2. config_check_files(): every file the config names exists and is of the
 *     right kind; private keys, password and secret files are 0600 or
 *     stricter; secrets are read with the project's rules (proto88b7/secret.h)
 *     and wiped at once.
 * config_load() does both on a file, and refuses the option this qkdlinkd
 * does not execute yet (channels[].key_chain) by name. Every error is one line:
 *     FILE: FIELD.PATH: what is wrong
 * (or FILE:LINE:COLUMN: ... for JSON syntax), never holding secret contents.
 * The struct owns all its memory: config_free() releases it.
 */
#ifndef QKD_AGENT_CONFIG_H
#define QKD_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "frame.h"

#define CONFIG_FILE_MAX (1u << 20) /* bytes of JSON */
#define CONFIG_CHANNELS_MAX 4096
#define CONFIG_IFACES_MAX 64  /* router interfaces per channel */
#define CONFIG_PEERS_MAX 8    /* slaves of one master (agent/rotation.h ROT_SLAVES_MAX) */
#define CONFIG_SECRETS_MAX 16 /* secrets per channel (IDs 0..255) */
#define CONFIG_SAE_ID_MAX QKD_SENDER_MAX /* SAE IDs travel as sender IDs */
#define CONFIG_CA_NAME_MAX 32
#define CONFIG_ROUTER_IF_MAX 64
#define CONFIG_PATH_MAX 4095
#define CONFIG_CKN_PREFIX_HEX 32
#define CONFIG_ERR_MAX 1024 /* a good size for error buffers */

/* config_load() flags */
#define CONFIG_NO_FILES 0x1 /* skip config_check_files() */

enum config_cipher {
	CONFIG_GCM_AES_128 = 0,
	CONFIG_GCM_AES_256,
	CONFIG_GCM_AES_XPN_128,
	CONFIG_GCM_AES_XPN_256,
};

/* The same values as enum kd_conv (agent/keyderive.h). */
enum config_ckn {
	CONFIG_CKN_PREFIX = 1, /* CKN = prefix + key_ID hex without dashes */
	CONFIG_CKN_SHA256 = 2, /* CKN = hex SHA-256 of the key_ID string */
};

/* Namespace of <configuration> in NETCONF edits. */
enum config_ns {
	CONFIG_NS_JUNOS = 0, /* none: Junos' own form (netconf NC_CFG_NS_NONE) */
	CONFIG_NS_YANG = 1,  /* Juniper's YANG namespaces (NC_CFG_NS_YANG) */
	CONFIG_NS_URI = 2,   /* router.namespace is an explicit URI (ns_uri) */
};

/* syslog(3) priorities, in the same order and values */
enum config_log_level {
	CONFIG_LOG_ERR = 3,
	CONFIG_LOG_WARNING = 4,
	CONFIG_LOG_NOTICE = 5,
	CONFIG_LOG_INFO = 6,
	CONFIG_LOG_DEBUG = 7,
};

struct config_secret {
	uint8_t id;   /* Secret ID on the wire, 0..255 */
	char *file;   /* absolute path; the content never enters this struct */
	bool current; /* the one senders use */
};

/* Hitless rollover through a Junos key chain (off unless configured). */
struct config_keychain {
	bool enabled;
	char *name;                /* key-chain name, 1..32 */
	unsigned activation_delay; /* seconds from ANNOUNCE to the key's start-time */
};

struct config_channel {
	uint32_t id;   /* wire channel number, 1..2^32-1 */
	char *ca_name; /* MACsec connectivity association, 1..32 */
	char **interfaces;
	size_t ninterfaces;
	enum config_cipher cipher;
	const char *cipher_name; /* "gcm-aes-256"... (static string) */
	unsigned key_bits;       /* 128 or 256: the size asked of the KME */
	size_t cak_hex;          /* 32 or 64 */
	enum qkd_role role;      /* QKD_ROLE_MASTER or QKD_ROLE_SLAVE */
	char **peers;            /* master: its slaves; slave: its master (npeers 1) */
	size_t npeers;
	struct config_secret *secrets;
	size_t nsecrets;
	size_t current_secret;      /* index into secrets */
	unsigned rotation_interval; /* seconds; used by the master; 0: on demand only */
	enum config_ckn ckn;
	char ckn_prefix[CONFIG_CKN_PREFIX_HEX + 1]; /* lower-case hex; "" for sha256 */
	bool provisioning;                          /* create the CA/binding if missing */
	struct config_keychain key_chain;
};

/* The values of struct kme_config (kme/kme.h); config_kme() copies them. */
struct config_kme {
	char *url; /* https://host[:port] */
	char *ca_file;
	char *cert_file;
	char *key_file; /* 0600 */
	char *kme_id;
	char *pin; /* "sha256//..." or NULL */
	long connect_timeout_ms;
	long timeout_ms;
	bool tls13_only;
	bool check_status_id;
	unsigned cert_warn_days; /* warn when a certificate has fewer days left */
};

/* The values of struct nc_config (netconf/nc_session.h). */
struct config_router {
	char *host;
	unsigned port;
	char *user;
	char *key_file;      /* 0600, or NULL */
	char *password_file; /* 0600, or NULL; at least one of the two */
	char *known_hosts;
	bool trust_on_first_use;
	enum config_ns ns;
	char *ns_uri;             /* CONFIG_NS_URI only, else NULL */
	unsigned confirm_timeout; /* seconds of a confirmed commit */
	int connect_timeout_ms;
	int rpc_timeout_ms;
};

struct config_port {
	char *rx_interface;
	char *tx_interface; /* defaults to rx_interface (always set after parsing) */
	bool tagged;        /* vlan given: frames carry an 802.1Q tag */
	uint16_t vlan;      /* 0 (priority tag) or 1..4094 */
	uint8_t pcp;        /* 0..7 */
	uint8_t destination[6];
	uint32_t oui;
	uint16_t pid;
};

struct config_log {
	enum config_log_level level;
	bool syslog;  /* false: stderr */
	int facility; /* LOG_DAEMON, LOG_LOCAL0.. (syslog.h values) */
};

struct agent_config {
	char *file;   /* as given to config_load()/config_parse() */
	char *sae_id; /* this agent's SAE ID, 1..32 printable */
	char *state_dir;
	char *control_socket;
	char *user;              /* drop to this user after opening the port, or NULL */
	char *group;             /* or NULL: the user's group */
	unsigned hello_interval; /* seconds, 1..3600 */
	struct config_log log;
	struct config_kme kme;
	struct config_router router;
	struct config_port port;
	struct config_channel *channels;
	size_t nchannels;
};

/*
 * Parses and validates LEN bytes of JSON text (no NUL needed), naming the
 * config NAME in errors. No file is touched. Returns 0 with *cfg filled, or
 * -1 with err filled and *cfg empty (config_free() is harmless either way).
 */
int config_parse(const char *name, const char *text, size_t len, struct agent_config *cfg,
                 char *err, size_t errlen);

/* The same from a parsed JSON tree (not modified, not kept). */
int config_from_json(const char *name, const json_t *root, struct agent_config *cfg, char *err,
                     size_t errlen);

/* Pass 2: the files of a parsed config (see the top of this file). */
int config_check_files(const struct agent_config *cfg, char *err, size_t errlen);

/*
 * Reads PATH (a regular file of at most CONFIG_FILE_MAX bytes), parses it and,
 * unless flags has CONFIG_NO_FILES, checks its files. 0 or -1 with err.
 */
int config_load(const char *path, unsigned flags, struct agent_config *cfg, char *err,
                size_t errlen);

/* Frees everything cfg owns and zeroes it. NULL-safe, idempotent. */
void config_free(struct agent_config *cfg);

struct kme_config;
/* Fills a kme/kme.h client configuration; its strings point into cfg. */
void config_kme(const struct agent_config *cfg, struct kme_config *out);

/* Finds a channel by wire number, or NULL. */
const struct config_channel *config_channel_find(const struct agent_config *cfg, uint32_t id);

/* A human-readable summary (no secret ever), several lines. */
void config_summary(const struct agent_config *cfg, FILE *out);

/*
 * What `qkdlinkd --check-config FILE` does: load, print the summary to out
 * or the error to errout, return the exit status (0 valid, 1 not).
 */
int config_check_main(const char *path, unsigned flags, FILE *out, FILE *errout);

/* Names for logs and status. */
const char *config_cipher_name(enum config_cipher c);
const char *config_ns_name(enum config_ns ns);
const char *config_ckn_name(enum config_ckn c);

#endif
