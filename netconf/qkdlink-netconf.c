/*
 * qkdlink-netconf - operator tool: connect to a router the way qkdlinkd does,
 * show its capabilities, push a CKN/CAK to a connectivity association and read
 * it back. See docs/man/qkdlink-netconf.1.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "nc_push.h"

#define CAK_FILE_MAX 256

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: qkdlink-netconf [options] COMMAND [args]\n"
	    "commands:\n"
	    "  caps                      connect and list the server's capabilities\n"
	    "  push                      commit --ca/--cipher/--ckn/--cak-file [--interface],\n"
	    "                            then read running back and compare\n"
	    "  push-keychain             commit --ca/--cipher/--chain/--key/--ckn/--cak-file/\n"
	    "                            --start-time (hitless key-chain form)\n"
	    "  show                      read --ca [--interface] from running (cak redacted)\n"
	    "  edit FILE                 lock, edit-config a <configuration> file, commit, unlock\n"
	    "  confirm                   confirm a confirmed commit [--persist ID]\n"
	    "  cancel                    cancel a confirmed commit [--persist ID]\n"
	    "options:\n"
	    "  -H, --host HOST           router address (required)\n"
	    "  -p, --port PORT           default 830\n"
	    "  -u, --user USER           (required)\n"
	    "  -k, --known-hosts FILE    OpenSSH known_hosts (required)\n"
	    "      --tofu                record an unknown host key instead of refusing it\n"
	    "  -i, --key FILE            ed25519/ECDSA private key (0600)\n"
	    "  -P, --password-file FILE  password (0600)\n"
	    "  -t, --timeout MS          per-RPC timeout (default 60000)\n"
	    "      --connect-timeout MS  default 10000\n"
	    "      --hello-gap MS        pause after the hello (default 10, 0 for Junos)\n"
	    "      --base10              do not offer base:1.1 chunked framing\n"
	    "      --ns none|yang        namespace of <configuration> (default none)\n"
	    "      --merge | --replace   push: merge into the CA (default) or replace the CA\n"
	    "                            entry; edit: default-operation (replace = whole tree!)\n"
	    "      --confirm-timeout S   confirmed commit, rolled back after S seconds\n"
	    "      --persist ID          persist token of a confirmed commit\n"
	    "  -v, --verbose             log the session (keys redacted); twice: XML too\n");
}

static void log_stderr(void *ctx, enum nc_log_level lvl, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "qkdlink-netconf: %s%s\n", lvl == NC_LOG_ERR ? "error: " : "", msg);
}

static int fail(const struct nc_error *e)
{
	char buf[2048];
	fprintf(stderr, "qkdlink-netconf: %s\n", nc_error_format(e, buf, sizeof buf));
	return 1;
}

/* reads a hex CAK from a 0600 file, trailing newline dropped */
static int read_cak(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		fprintf(stderr, "qkdlink-netconf: CAK file %s: %s\n", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & (S_IRWXG | S_IRWXO))) {
		fprintf(stderr,
		        "qkdlink-netconf: CAK file %s: must be a regular file of mode 0600 "
		        "(others must not read it)\n",
		        path);
		close(fd);
		return -1;
	}
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0 || (size_t)n >= cap - 1) {
		fprintf(stderr, "qkdlink-netconf: CAK file %s: unreadable or too long\n", path);
		return -1;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

static xmlNodePtr read_config_file(const char *path, xmlDocPtr *doc)
{
	*doc = xmlReadFile(path, NULL, XML_PARSE_NONET | XML_PARSE_NOBLANKS);
	if (*doc == NULL) {
		fprintf(stderr, "qkdlink-netconf: %s: not well-formed XML\n", path);
		return NULL;
	}
	return xmlDocGetRootElement(*doc);
}

int main(int argc, char **argv)
{
	struct nc_config cfg;
	nc_config_defaults(&cfg);
	cfg.log = log_stderr;
	cfg.log_level = -1; /* quiet: failures are printed once, by fail() */
	struct nc_push_opts po = {NC_CFG_NS_NONE, false, 0, NULL};
	const char *ca = NULL, *cipher = "gcm-aes-xpn-256", *ckn = NULL, *cak_file = NULL;
	const char *ifname = NULL, *chain = NULL, *start_time = NULL;
	unsigned key = 0;
	enum {
		O_TOFU = 256,
		O_CTO,
		O_GAP,
		O_BASE10,
		O_NS,
		O_MERGE,
		O_REPLACE,
		O_CONFIRM,
		O_PERSIST,
		O_CA,
		O_CIPHER,
		O_CKN,
		O_CAKF,
		O_IF,
		O_CHAIN,
		O_KEY,
		O_START
	};
	static const struct option opts[] = {
	    {"host", required_argument, 0, 'H'},
	    {"port", required_argument, 0, 'p'},
	    {"user", required_argument, 0, 'u'},
	    {"known-hosts", required_argument, 0, 'k'},
	    {"tofu", no_argument, 0, O_TOFU},
	    {"key", required_argument, 0, 'i'},
	    {"password-file", required_argument, 0, 'P'},
	    {"timeout", required_argument, 0, 't'},
	    {"connect-timeout", required_argument, 0, O_CTO},
	    {"hello-gap", required_argument, 0, O_GAP},
	    {"base10", no_argument, 0, O_BASE10},
	    {"ns", required_argument, 0, O_NS},
	    {"merge", no_argument, 0, O_MERGE},
	    {"replace", no_argument, 0, O_REPLACE},
	    {"confirm-timeout", required_argument, 0, O_CONFIRM},
	    {"persist", required_argument, 0, O_PERSIST},
	    {"ca", required_argument, 0, O_CA},
	    {"cipher", required_argument, 0, O_CIPHER},
	    {"ckn", required_argument, 0, O_CKN},
	    {"cak-file", required_argument, 0, O_CAKF},
	    {"interface", required_argument, 0, O_IF},
	    {"chain", required_argument, 0, O_CHAIN},
	    {"key-number", required_argument, 0, O_KEY},
	    {"start-time", required_argument, 0, O_START},
	    {"verbose", no_argument, 0, 'v'},
	    {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "H:p:u:k:i:P:t:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			cfg.host = optarg;
			break;
		case 'p':
			cfg.port = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'u':
			cfg.user = optarg;
			break;
		case 'k':
			cfg.known_hosts = optarg;
			break;
		case O_TOFU:
			cfg.tofu = true;
			break;
		case 'i':
			cfg.key_file = optarg;
			break;
		case 'P':
			cfg.password_file = optarg;
			break;
		case 't':
			cfg.rpc_timeout_ms = atoi(optarg);
			break;
		case O_CTO:
			cfg.connect_timeout_ms = atoi(optarg);
			break;
		case O_GAP:
			cfg.hello_gap_ms = atoi(optarg);
			break;
		case O_BASE10:
			cfg.base10_only = true;
			break;
		case O_NS:
			if (strcmp(optarg, "none") && strcmp(optarg, "yang")) {
				usage(stderr);
				return 2;
			}
			po.ns = strcmp(optarg, "yang") == 0 ? NC_CFG_NS_YANG : NC_CFG_NS_NONE;
			break;
		case O_MERGE:
			po.replace = false;
			break;
		case O_REPLACE:
			po.replace = true;
			break;
		case O_CONFIRM:
			po.confirm_timeout_s = atoi(optarg);
			break;
		case O_PERSIST:
			po.persist = optarg;
			break;
		case O_CA:
			ca = optarg;
			break;
		case O_CIPHER:
			cipher = optarg;
			break;
		case O_CKN:
			ckn = optarg;
			break;
		case O_CAKF:
			cak_file = optarg;
			break;
		case O_IF:
			ifname = optarg;
			break;
		case O_CHAIN:
			chain = optarg;
			break;
		case O_KEY:
			key = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case O_START:
			start_time = optarg;
			break;
		case 'v':
			cfg.log_level = cfg.log_level < NC_LOG_INFO ? NC_LOG_INFO : NC_LOG_DEBUG;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[optind];
	char cak[CAK_FILE_MAX] = "";
	bool need_cak = strcmp(cmd, "push") == 0 || strcmp(cmd, "push-keychain") == 0;
	if (need_cak) {
		if (ca == NULL || ckn == NULL || cak_file == NULL) {
			fprintf(stderr, "qkdlink-netconf: %s needs --ca, --ckn and --cak-file\n",
			        cmd);
			return 2;
		}
		if (read_cak(cak_file, cak, sizeof cak) != 0)
			return 1;
	}
	if (strcmp(cmd, "show") == 0 && ca == NULL) {
		fprintf(stderr, "qkdlink-netconf: show needs --ca\n");
		return 2;
	}
	struct nc_error e;
	nc_error_clear(&e);
	/* validate before connecting: a bad value costs no session */
	struct nc_macsec_ca mca = {
	    .name = ca, .cipher_suite = cipher, .ckn = ckn, .cak = cak, .ifname = ifname};
	struct nc_macsec_keychain mkc = {ca,  cipher,     chain,  key,  ckn,
	                                 cak, start_time, ifname, false};
	if ((strcmp(cmd, "push") == 0 && nc_macsec_check_ca(&mca, &e) != NC_OK) ||
	    (strcmp(cmd, "push-keychain") == 0 && nc_macsec_check_keychain(&mkc, &e) != NC_OK)) {
		explicit_bzero(cak, sizeof cak);
		return fail(&e);
	}
	struct nc_session *s;
	if (nc_connect(&cfg, &s, &e) != NC_OK) {
		explicit_bzero(cak, sizeof cak);
		return fail(&e);
	}
	int rc = 0;
	if (strcmp(cmd, "caps") == 0) {
		const struct nc_hello *h = nc_session_hello(s);
		printf("session-id %s\nframing %s\ntarget %s\n", h->session_id,
		       nc_session_framing(s) == NC_FRAMING_CHUNKED ? "base:1.1 chunked"
		                                                   : "base:1.0 end-of-message",
		       nc_session_target(s));
		for (size_t i = 0; i < h->ncaps; i++)
			printf("capability %s\n", h->caps[i]);
	} else if (strcmp(cmd, "push") == 0) {
		if (nc_push_ca(s, &mca, &po, &e) != NC_OK)
			rc = fail(&e);
		else
			printf(
			    "committed and read back: connectivity-association %s ckn %s%s%s%s\n",
			    ca, ckn, ifname ? " on " : "", ifname ? ifname : "",
			    po.confirm_timeout_s > 0 ? " (confirmed commit: confirm it)" : "");
	} else if (strcmp(cmd, "push-keychain") == 0) {
		if (nc_push_keychain(s, &mkc, &po, &e) != NC_OK)
			rc = fail(&e);
		else
			printf(
			    "committed and read back: key-chain %s key %u key-name %s start-time "
			    "%s\n",
			    chain, key, ckn, start_time);
	} else if (strcmp(cmd, "show") == 0) {
		struct nc_macsec_state st;
		if (nc_read_ca(s, "running", ca, ifname, po.ns, &st, &e) != NC_OK) {
			rc = fail(&e);
		} else if (!st.found) {
			printf("connectivity-association %s: not configured\n", ca);
			rc = 1;
		} else {
			printf("connectivity-association %s\ncipher-suite %s\nsecurity-mode %s\n"
			       "ckn %s\ncak %s\n",
			       ca, st.cipher_suite, st.security_mode, st.ckn,
			       st.cak[0] ? "<redacted>" : "(none)");
			if (ifname)
				printf("interface %s connectivity-association %s\n", ifname,
				       st.bound_ca[0] ? st.bound_ca : "(none)");
		}
		explicit_bzero(&st, sizeof st);
	} else if (strcmp(cmd, "edit") == 0) {
		xmlDocPtr d = NULL;
		xmlNodePtr root = optind + 1 < argc ? read_config_file(argv[optind + 1], &d) : NULL;
		if (root == NULL) {
			if (optind + 1 >= argc)
				fprintf(stderr, "qkdlink-netconf: edit needs a FILE\n");
			rc = 2;
		} else {
			struct nc_change ch = {root, po.replace, true, po.confirm_timeout_s,
			                       po.persist};
			if (nc_apply(s, &ch, &e) != NC_OK)
				rc = fail(&e);
			else
				printf("committed\n");
		}
		xmlFreeDoc(d);
	} else if (strcmp(cmd, "confirm") == 0) {
		if (nc_confirm(s, po.persist, &e) != NC_OK)
			rc = fail(&e);
		else
			printf("confirmed\n");
	} else if (strcmp(cmd, "cancel") == 0) {
		if (nc_cancel_commit(s, po.persist, &e) != NC_OK)
			rc = fail(&e);
		else
			printf("cancelled\n");
	} else {
		fprintf(stderr, "qkdlink-netconf: unknown command %s\n", cmd);
		rc = 2;
	}
	explicit_bzero(cak, sizeof cak);
	nc_close(s);
	return rc;
}
