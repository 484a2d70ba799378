/*
 * tool.c - qkdlink-kme: talk to a real KME over ETSI GS QKD 014 with the
 * agent's TLS and identity rules. Prints key_IDs and lengths; key values only
 * with --show-keys. See docs/man/qkdlink-kme.1.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "kme.h"

#define ADD_MAX 16

static void usage(FILE *f)
{
	fprintf(f, "usage: qkdlink-kme --url https://HOST[:PORT] --kme-id ID --ca CA.pem\n"
	           "                   --cert SAE.pem --key SAE.key [--pin sha256//B64]\n"
	           "                   [--timeout MS] [--tls13] [--show-keys] COMMAND\n"
	           "commands:\n"
	           "  status SLAVE_SAE                      the KME's status for SLAVE_SAE\n"
	           "  get SLAVE_SAE [-n N] [-s BITS] [-a ADDITIONAL_SAE]...\n"
	           "                                        enc_keys as master\n"
	           "  fetch MASTER_SAE [-s BITS] KEY_ID...  dec_keys as slave\n"
	           "  certs                                 days left on the client cert and CA\n"
	           "exit: 0 ok, 1 KME or TLS error, 2 usage\n");
}

static void print_keys(const struct kme_keys *ks, bool show)
{
	for (size_t i = 0; i < ks->n; i++)
		printf("key_ID %s %zu bits\n", ks->k[i].id, ks->k[i].len * 8);
	if (!show)
		return;
	for (size_t i = 0; i < ks->n; i++) {
		printf("key %s ", ks->k[i].id);
		for (size_t j = 0; j < ks->k[i].len; j++)
			printf("%02x", ks->k[i].key[j]);
		printf("\n");
	}
	fflush(stdout);
}

static int report(const struct kme_error *err)
{
	fprintf(stderr, "qkdlink-kme: %s: %s\n", kme_err_name(err->code), err->text);
	return 1;
}

int main(int argc, char **argv)
{
	struct kme_config cfg = {0};
	bool show = false;
	unsigned number = 0, size = 0;
	const char *add[ADD_MAX];
	size_t nadd = 0;
	static const struct option opts[] = {
	    {"url", required_argument, NULL, 'u'},     {"kme-id", required_argument, NULL, 'i'},
	    {"ca", required_argument, NULL, 'C'},      {"cert", required_argument, NULL, 'c'},
	    {"key", required_argument, NULL, 'k'},     {"pin", required_argument, NULL, 'p'},
	    {"timeout", required_argument, NULL, 't'}, {"tls13", no_argument, NULL, '3'},
	    {"show-keys", no_argument, NULL, 'S'},     {"number", required_argument, NULL, 'n'},
	    {"size", required_argument, NULL, 's'},    {"additional", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	int o;
	char *end;
	while ((o = getopt_long(argc, argv, "n:s:a:h", opts, NULL)) != -1) {
		switch (o) {
		case 'u':
			cfg.url = optarg;
			break;
		case 'i':
			cfg.kme_id = optarg;
			break;
		case 'C':
			cfg.ca_file = optarg;
			break;
		case 'c':
			cfg.cert_file = optarg;
			break;
		case 'k':
			cfg.key_file = optarg;
			break;
		case 'p':
			cfg.pin = optarg;
			break;
		case 't':
			cfg.timeout_ms = strtol(optarg, &end, 10);
			if (*end || cfg.timeout_ms <= 0) {
				fprintf(stderr, "qkdlink-kme: bad --timeout %s\n", optarg);
				return 2;
			}
			break;
		case '3':
			cfg.tls13_only = true;
			break;
		case 'S':
			show = true;
			break;
		case 'n':
		case 's': {
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v == 0 || v > 1u << 20) {
				fprintf(stderr, "qkdlink-kme: bad -%c %s\n", o, optarg);
				return 2;
			}
			*(o == 'n' ? &number : &size) = (unsigned)v;
			break;
		}
		case 'a':
			if (nadd == ADD_MAX) {
				fprintf(stderr, "qkdlink-kme: at most %d additional slaves\n",
				        ADD_MAX);
				return 2;
			}
			add[nadd++] = optarg;
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
	const char *cmd = argv[optind++];
	int nargs = argc - optind;
	char **args = argv + optind;
	bool ok_args =
	    (strcmp(cmd, "status") == 0 && nargs == 1) || (strcmp(cmd, "get") == 0 && nargs == 1) ||
	    (strcmp(cmd, "fetch") == 0 && nargs >= 2) || (strcmp(cmd, "certs") == 0 && nargs == 0);
	if (!ok_args) {
		usage(stderr);
		return 2;
	}
	if (kme_global_init() != 0) {
		fprintf(stderr, "qkdlink-kme: libcurl initialisation failed\n");
		return 1;
	}
	struct kme_error err;
	int rc = 0;
	struct kme_client *c = kme_client_new(NULL, &cfg, &err);
	if (c == NULL) {
		rc = report(&err);
		if (err.code == KME_E_ARG)
			rc = 2;
		goto out;
	}
	if (strcmp(cmd, "certs") == 0) {
		long cd, ad;
		if (kme_client_cert_days(c, &cd, &ad, &err) != 0) {
			rc = report(&err);
			goto out;
		}
		printf("client_certificate_days_left %ld\nca_days_left %ld\n", cd, ad);
	} else if (strcmp(cmd, "status") == 0) {
		struct kme_status st;
		if (kme_status_sync(c, args[0], &st, &err) != 0) {
			rc = report(&err);
			goto out;
		}
		printf("source_KME_ID       %s\ntarget_KME_ID       %s\nmaster_SAE_ID       %s\n"
		       "slave_SAE_ID        %s\nkey_size            %ld\nstored_key_count    %ld\n"
		       "max_key_count       %ld\nmax_key_per_request %ld\nmax_key_size        %ld\n"
		       "min_key_size        %ld\nmax_SAE_ID_count    %ld\n",
		       st.source_kme_id, st.target_kme_id, st.master_sae_id, st.slave_sae_id,
		       st.key_size, st.stored_key_count, st.max_key_count, st.max_key_per_request,
		       st.max_key_size, st.min_key_size, st.max_sae_id_count);
	} else if (strcmp(cmd, "get") == 0) {
		struct kme_enc_req rq = {
		    .number = number, .size = size, .additional = add, .nadditional = nadd};
		struct kme_keys ks;
		if (kme_enc_keys_sync(c, args[0], &rq, NULL, &ks, &err) != 0) {
			rc = report(&err);
			goto out;
		}
		print_keys(&ks, show);
		kme_keys_free(&ks);
	} else {
		struct kme_dec_req rq = {
		    .ids = (const char *const *)(args + 1), .n = (size_t)nargs - 1, .size = size};
		struct kme_keys ks;
		if (kme_dec_keys_sync(c, args[0], &rq, NULL, &ks, &err) != 0) {
			rc = report(&err);
			goto out;
		}
		print_keys(&ks, show);
		kme_keys_free(&ks);
	}
out:
	kme_client_free(c);
	kme_global_cleanup();
	return rc;
}
