/*
 * config.c - loading and validating the qkdlinkd JSON configuration.
 *
 * A walk over the JSON tree that keeps the path of the field it is in
 * ("channels[1].secrets[0].file"), so that every error can name it. Each
 * object's members are first checked against the list of known fields, then
 * read in documented order; the rules between fields come last. No global
 * state; all memory belongs to the struct agent_config.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "kme.h"
#include "secret.h"

#define PATH_TEXT 160 /* the JSON field path in messages */
#define QUOTE_MAX 48  /* characters of a user's value quoted in a message */

struct ctx {
	const char *file;
	char *err;
	size_t errlen;
	char path[PATH_TEXT];
	size_t plen;
};

/* ---- errors and the field path ---- */

static void ctx_init(struct ctx *c, const char *file, char *err, size_t errlen)
{
	memset(c, 0, sizeof *c);
	c->file = file ? file : "config";
	c->err = err;
	c->errlen = errlen;
}

/* "FILE: PATH: message" (or "FILE: message" at the top level). Returns -1. */
static int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct ctx *c, const char *fmt, ...)
{
	if (c->err == NULL || c->errlen == 0)
		return -1;
	char msg[2 * CONFIG_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (c->plen)
		snprintf(c->err, c->errlen, "%s: %s: %s", c->file, c->path, msg);
	else
		snprintf(c->err, c->errlen, "%s: %s", c->file, msg);
	return -1;
}

/* Appends to the path; a path that does not fit ends in "...". */
static size_t push(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t push(struct ctx *c, const char *fmt, ...)
{
	size_t old = c->plen;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(c->path + old, sizeof c->path - old, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof c->path - old) {
		memcpy(c->path + sizeof c->path - 4, "...", 4);
		c->plen = sizeof c->path - 1;
	} else {
		c->plen = old + (size_t)n;
	}
	return old;
}

static size_t push_key(struct ctx *c, const char *key)
{
	return push(c, c->plen ? ".%s" : "%s", key);
}

static size_t push_idx(struct ctx *c, size_t i)
{
	return push(c, "[%zu]", i);
}

static void pop(struct ctx *c, size_t old)
{
	c->plen = old;
	c->path[old] = '\0';
}

/* A user's string made safe to print: printable ASCII, at most QUOTE_MAX. */
static const char *quote(char out[QUOTE_MAX + 4], const char *s)
{
	size_t i = 0;
	for (; s[i] && i < QUOTE_MAX; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (s[i]) {
		memcpy(out + i, "...", 4);
		return out;
	}
	out[i] = '\0';
	return out;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a real number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "something else";
}

static int oom(struct ctx *c)
{
	return fail(c, "out of memory");
}

/* ---- unknown fields ---- */

/* Levenshtein distance of two short strings, capped. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 40 || lb > 40)
		return 99;
	size_t prev[41], cur[41];
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, sizeof cur);
	}
	return prev[lb];
}

/* Refuses any member of o whose name is not in known (NULL-terminated). */
static int known_fields(struct ctx *c, const json_t *o, const char *const *known)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)o, key, v)
	{
		bool ok = false;
		for (size_t i = 0; known[i] && !ok; i++)
			ok = strcmp(key, known[i]) == 0;
		if (ok)
			continue;
		char q[QUOTE_MAX + 4];
		size_t old = push_key(c, quote(q, key));
		const char *best = NULL;
		size_t bestd = 3;
		for (size_t i = 0; known[i]; i++) {
			size_t d = distance(key, known[i]);
			if (d < bestd) {
				bestd = d;
				best = known[i];
			}
		}
		if (best)
			fail(c, "unknown field (did you mean \"%s\"?)", best);
		else
			fail(c, "unknown field");
		pop(c, old);
		return -1;
	}
	return 0;
}

/* ---- typed getters: 1 = value read, 0 = absent (optional), -1 = error ---- */

/* o's member k: NULL when absent or null and optional. */
static int member(struct ctx *c, const json_t *o, const char *k, bool required, json_t **out)
{
	json_t *v = json_object_get(o, k);
	if (v == NULL || (json_is_null(v) && !required)) {
		*out = NULL;
		if (!required)
			return 0;
		size_t old = push_key(c, k);
		fail(c, "required field missing");
		pop(c, old);
		return -1;
	}
	*out = v;
	return 1;
}

static int want_type(struct ctx *c, const json_t *v, json_type t, const char *what)
{
	if (json_typeof(v) == t || (t == JSON_TRUE && json_is_boolean(v)))
		return 0;
	return fail(c, "expected %s, got %s", what, type_name(v));
}

typedef int (*str_check)(struct ctx *c, const char *s);

/*
 * The value at the current path: a string of 1..max characters without
 * control characters (nor NUL), then check(s) if given. *out is a copy owned
 * by the caller.
 */
static int str_value(struct ctx *c, const json_t *v, size_t max, str_check check, char **out)
{
	if (want_type(c, v, JSON_STRING, "a string") != 0)
		return -1;
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (len == 0)
		return fail(c, "empty string");
	if (len > max)
		return fail(c, "%zu characters, at most %zu", len, max);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return fail(c, "control character 0x%02x at offset %zu",
			            (unsigned char)s[i], i);
	if (check && check(c, s) != 0)
		return -1;
	*out = strdup(s);
	if (*out == NULL)
		return oom(c);
	return 0;
}

static int get_str(struct ctx *c, const json_t *o, const char *k, bool required, size_t max,
                   str_check check, char **out)
{
	json_t *v;
	int rc = member(c, o, k, required, &v);
	if (rc <= 0)
		return rc;
	size_t old = push_key(c, k);
	rc = str_value(c, v, max, check, out);
	pop(c, old);
	return rc == 0 ? 1 : -1;
}

static int get_int(struct ctx *c, const json_t *o, const char *k, bool required, long long min,
                   long long max, long long def, long long *out)
{
	json_t *v;
	*out = def;
	int rc = member(c, o, k, required, &v);
	if (rc <= 0)
		return rc;
	size_t old = push_key(c, k);
	rc = -1;
	if (want_type(c, v, JSON_INTEGER, "an integer") != 0)
		goto out;
	long long n = json_integer_value(v);
	if (n < min || n > max) {
		fail(c, "%lld out of range %lld..%lld", n, min, max);
		goto out;
	}
	*out = n;
	rc = 1;
out:
	pop(c, old);
	return rc;
}

static int get_bool(struct ctx *c, const json_t *o, const char *k, bool def, bool *out)
{
	json_t *v;
	*out = def;
	int rc = member(c, o, k, false, &v);
	if (rc <= 0)
		return rc;
	size_t old = push_key(c, k);
	rc = want_type(c, v, JSON_TRUE, "true or false");
	if (rc == 0)
		*out = json_is_true(v);
	pop(c, old);
	return rc == 0 ? 1 : -1;
}

/* An object member (required or not); *out NULL when absent. */
static int get_obj(struct ctx *c, const json_t *o, const char *k, bool required,
                   const char *const *known, json_t **out)
{
	int rc = member(c, o, k, required, out);
	if (rc <= 0)
		return rc;
	size_t old = push_key(c, k);
	rc = want_type(c, *out, JSON_OBJECT, "an object");
	if (rc == 0)
		rc = known_fields(c, *out, known);
	pop(c, old);
	return rc == 0 ? 1 : -1;
}

/* One of names[] (NULL-terminated); *out its index. */
static int get_enum(struct ctx *c, const json_t *o, const char *k, bool required,
                    const char *const *names, int def, int *out)
{
	char *s = NULL;
	*out = def;
	int rc = get_str(c, o, k, required, 64, NULL, &s);
	if (rc <= 0)
		return rc;
	for (int i = 0; names[i]; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			free(s);
			return 1;
		}
	char list[256] = "", q[QUOTE_MAX + 4];
	for (int i = 0; names[i]; i++) {
		size_t l = strlen(list);
		snprintf(list + l, sizeof list - l, "%s\"%s\"",
		         i ? (names[i + 1] ? ", " : " or ") : "", names[i]);
	}
	size_t old = push_key(c, k);
	fail(c, "\"%s\" is not %s%s", quote(q, s), names[1] ? "one of " : "", list);
	pop(c, old);
	free(s);
	return -1;
}

/* ---- value syntax ---- */

static bool is_hex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static unsigned hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return (unsigned)(ch - '0');
	if (ch >= 'a' && ch <= 'f')
		return (unsigned)(ch - 'a' + 10);
	return (unsigned)(ch - 'A' + 10);
}

static bool is_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static int check_abs_path(struct ctx *c, const char *s)
{
	char q[QUOTE_MAX + 4];
	if (s[0] != '/')
		return fail(c, "\"%s\" is not an absolute path", quote(q, s));
	return 0;
}

/* SAE IDs are sender IDs on the wire: printable ASCII 0x21..0x7E. */
static int check_sae_id(struct ctx *c, const char *s)
{
	for (size_t i = 0; s[i]; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return fail(c,
			            "character 0x%02x at offset %zu: an SAE ID is printable "
			            "ASCII without spaces",
			            (unsigned char)s[i], i);
	return 0;
}

/* KME IDs, pins: printable, no spaces. */
static int check_token(struct ctx *c, const char *s)
{
	for (size_t i = 0; s[i]; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return fail(c, "character 0x%02x at offset %zu not allowed",
			            (unsigned char)s[i], i);
	return 0;
}

/* https://host[:port], no path, no user info (kme/kme.h). */
static int check_url(struct ctx *c, const char *s)
{
	char q[QUOTE_MAX + 4];
	if (strncmp(s, "https://", 8) != 0)
		return fail(c, "\"%s\": the KME is reached over https:// only", quote(q, s));
	const char *h = s + 8;
	if (*h == '\0' || *h == ':')
		return fail(c, "\"%s\": no host", quote(q, s));
	for (const char *p = h; *p; p++)
		if (!(is_alnum(*p) || *p == '.' || *p == '-' || *p == ':' || *p == '[' ||
		      *p == ']' || *p == '_'))
			return fail(c, "\"%s\": must be https://host[:port] without a path",
			            quote(q, s));
	/* [v6]:port or host:port: one colon outside brackets, then 1..5 digits */
	const char *port = NULL;
	if (*h == '[') {
		const char *end = strchr(h, ']');
		if (end == NULL || end == h + 1 || strchr(end + 1, '[') || strchr(h + 1, '[') ||
		    (end[1] != '\0' && end[1] != ':'))
			return fail(c, "\"%s\": an IPv6 address is written [address]", quote(q, s));
		port = end[1] == ':' ? end + 2 : NULL;
	} else {
		const char *colon = strchr(h, ':');
		if (strchr(h, '[') || strchr(h, ']') || (colon && strchr(colon + 1, ':')))
			return fail(c, "\"%s\": an IPv6 address is written [address]", quote(q, s));
		port = colon ? colon + 1 : NULL;
	}
	if (port) {
		size_t n = strlen(port);
		bool digits = n >= 1 && n <= 5;
		for (size_t i = 0; digits && i < n; i++)
			digits = port[i] >= '0' && port[i] <= '9';
		if (!digits || atoi(port) < 1 || atoi(port) > 65535)
			return fail(c, "\"%s\": the port is a number 1..65535", quote(q, s));
	}
	return 0;
}

/* sha256//BASE64[;sha256//BASE64...] (libcurl's pinnedpubkey). */
static int check_pin(struct ctx *c, const char *s)
{
	const char *p = s;
	for (;;) {
		if (strncmp(p, "sha256//", 8) != 0)
			break;
		p += 8;
		size_t n = 0;
		while (is_alnum(p[n]) || p[n] == '+' || p[n] == '/' || p[n] == '=')
			n++;
		if (n != 44)
			break;
		p += n;
		if (*p == '\0')
			return 0;
		if (*p != ';')
			break;
		p++;
	}
	return fail(c, "not a public-key pin: sha256// then 44 base64 characters, several "
	               "separated by ';'");
}

/* A host name or address (no scheme, no port). */
static int check_host(struct ctx *c, const char *s)
{
	char q[QUOTE_MAX + 4];
	for (const char *p = s; *p; p++)
		if (!(is_alnum(*p) || *p == '.' || *p == '-' || *p == ':' || *p == '_' ||
		      *p == '%'))
			return fail(c, "\"%s\" is not a host name or address", quote(q, s));
	if (s[0] == '-')
		return fail(c, "\"%s\" is not a host name or address", quote(q, s));
	return 0;
}

/* User and group names: [A-Za-z0-9._-], not starting with '-'. */
static int check_account(struct ctx *c, const char *s)
{
	char q[QUOTE_MAX + 4];
	if (s[0] == '-')
		return fail(c, "\"%s\" starts with '-'", quote(q, s));
	for (const char *p = s; *p; p++)
		if (!(is_alnum(*p) || *p == '.' || *p == '_' || *p == '-'))
			return fail(c, "\"%s\": a name is letters, digits, '.', '_' and '-'",
			            quote(q, s));
	return 0;
}

/* Linux interface names (dev_valid_name): < IFNAMSIZ, no '/', ':' or space. */
static int check_linux_if(struct ctx *c, const char *s)
{
	char q[QUOTE_MAX + 4];
	if (strlen(s) > 15)
		return fail(c, "\"%s\": a Linux interface name has at most 15 characters",
		            quote(q, s));
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return fail(c, "\"%s\" is not an interface name", s);
	for (const char *p = s; *p; p++)
		if (*p == '/' || *p == ':' || *p == ' ' || *p >= 0x7f)
			return fail(c, "\"%s\": character '%c' not allowed in an interface name",
			            quote(q, s), *p >= 0x7f ? '?' : *p);
	return 0;
}

/* Router interface names, as netconf/nc_macsec.c: et-0/0/1, ae0, xe-1/2/3:0. */
static int check_router_if(struct ctx *c, const char *s)
{
	char q[QUOTE_MAX + 4];
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return fail(c, "\"%s\": an interface name starts with a letter", quote(q, s));
	for (const char *p = s; *p; p++)
		if (!(is_alnum(*p) || *p == '-' || *p == '/' || *p == '.' || *p == ':' ||
		      *p == '_'))
			return fail(c, "\"%s\": character '%c' not allowed in an interface name",
			            quote(q, s), *p >= 0x7f ? '?' : *p);
	return 0;
}

/* CA and key-chain names, as netconf/nc_macsec.c: no space, no XML specials. */
static int check_ca_name(struct ctx *c, const char *s)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == '<' ||
		    *p == '>' || *p == '&' || *p == '"' || *p == '\'')
			return fail(c, "character '%c' at offset %zu not allowed in a name",
			            (unsigned char)*p < 0x7f ? *p : '?', (size_t)(p - s));
	return 0;
}

/* An absolute URI for <configuration xmlns=...>: scheme ':' and no XML specials. */
static int check_ns(struct ctx *c, const char *s)
{
	if (strcmp(s, "junos") == 0 || strcmp(s, "yang") == 0)
		return 0;
	char q[QUOTE_MAX + 4];
	const char *colon = strchr(s, ':');
	bool ok =
	    colon && colon != s && ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'));
	for (const char *p = s; ok && p < colon; p++)
		ok = is_alnum(*p) || *p == '+' || *p == '-' || *p == '.';
	for (const char *p = s; ok && *p; p++)
		ok = *p > ' ' && *p < 0x7f && *p != '<' && *p != '>' && *p != '&' && *p != '"' &&
		     *p != '\'';
	if (!ok)
		return fail(c, "\"%s\" is not \"junos\", \"yang\" or an absolute URI", quote(q, s));
	return 0;
}

/* Six hex octets separated by ':' or '-'. */
static int parse_mac(const char *s, uint8_t mac[6])
{
	if (strlen(s) != 17)
		return -1;
	for (int i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		if (!is_hex(p[0]) || !is_hex(p[1]) || (i < 5 && p[2] != s[2]) ||
		    (i == 5 && p[2] != '\0'))
			return -1;
		mac[i] = (uint8_t)(hexval(p[0]) << 4 | hexval(p[1]));
	}
	return s[2] == ':' || s[2] == '-' ? 0 : -1;
}

static int parse_oui(const char *s, uint32_t *oui)
{
	if (strlen(s) != 8 || (s[2] != '-' && s[2] != ':') || s[5] != s[2])
		return -1;
	uint32_t v = 0;
	for (int i = 0; i < 3; i++) {
		const char *p = s + 3 * i;
		if (!is_hex(p[0]) || !is_hex(p[1]))
			return -1;
		v = v << 8 | hexval(p[0]) << 4 | hexval(p[1]);
	}
	*oui = v;
	return 0;
}

static int parse_pid(const char *s, uint16_t *pid)
{
	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return -1;
	size_t n = strlen(s + 2);
	if (n < 1 || n > 4)
		return -1;
	uint32_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_hex(s[2 + i]))
			return -1;
		v = v << 4 | hexval(s[2 + i]);
	}
	*pid = (uint16_t)v;
	return 0;
}

/* ---- the sections ---- */

static const char *const CIPHERS[] = {"gcm-aes-128", "gcm-aes-256", "gcm-aes-xpn-128",
                                      "gcm-aes-xpn-256", NULL};
static const char *const ROLES[] = {"master", "slave", NULL};
static const char *const LEVELS[] = {"error", "warning", "notice", "info", "debug", NULL};
static const char *const DESTS[] = {"stderr", "syslog", NULL};
static const char *const FACILITIES[] = {"daemon", "user",   "local0", "local1", "local2", "local3",
                                         "local4", "local5", "local6", "local7", NULL};
static const int FACILITY_VALUES[] = {LOG_DAEMON, LOG_USER,   LOG_LOCAL0, LOG_LOCAL1, LOG_LOCAL2,
                                      LOG_LOCAL3, LOG_LOCAL4, LOG_LOCAL5, LOG_LOCAL6, LOG_LOCAL7};

static int parse_log(struct ctx *c, const json_t *root, struct config_log *log)
{
	static const char *const F[] = {"level", "destination", "facility", NULL};
	json_t *o;
	int i;
	log->level = CONFIG_LOG_INFO;
	log->syslog = false;
	log->facility = LOG_DAEMON;
	int rc = get_obj(c, root, "log", false, F, &o);
	if (rc <= 0)
		return rc;
	size_t old = push_key(c, "log");
	rc = -1;
	if (get_enum(c, o, "level", false, LEVELS, 3, &i) < 0)
		goto out;
	log->level = (enum config_log_level)(CONFIG_LOG_ERR + i);
	if (get_enum(c, o, "destination", false, DESTS, 0, &i) < 0)
		goto out;
	log->syslog = i == 1;
	if (get_enum(c, o, "facility", false, FACILITIES, 0, &i) < 0)
		goto out;
	log->facility = FACILITY_VALUES[i];
	rc = 0;
out:
	pop(c, old);
	return rc;
}

static int parse_kme(struct ctx *c, const json_t *root, struct config_kme *k)
{
	static const char *const F[] = {"url",
	                                "ca_file",
	                                "cert_file",
	                                "key_file",
	                                "kme_id",
	                                "pin",
	                                "connect_timeout_ms",
	                                "timeout_ms",
	                                "tls13_only",
	                                "check_status_id",
	                                "cert_warn_days",
	                                NULL};
	json_t *o;
	long long n;
	if (get_obj(c, root, "kme", true, F, &o) < 0)
		return -1;
	size_t old = push_key(c, "kme");
	int rc = -1;
	if (get_str(c, o, "url", true, 512, check_url, &k->url) < 0 ||
	    get_str(c, o, "ca_file", true, CONFIG_PATH_MAX, check_abs_path, &k->ca_file) < 0 ||
	    get_str(c, o, "cert_file", true, CONFIG_PATH_MAX, check_abs_path, &k->cert_file) < 0 ||
	    get_str(c, o, "key_file", true, CONFIG_PATH_MAX, check_abs_path, &k->key_file) < 0 ||
	    get_str(c, o, "kme_id", true, KME_ID_MAX, check_token, &k->kme_id) < 0 ||
	    get_str(c, o, "pin", false, 1024, check_pin, &k->pin) < 0)
		goto out;
	if (get_int(c, o, "connect_timeout_ms", false, 100, 300000, 5000, &n) < 0)
		goto out;
	k->connect_timeout_ms = (long)n;
	if (get_int(c, o, "timeout_ms", false, 100, 600000, 15000, &n) < 0)
		goto out;
	k->timeout_ms = (long)n;
	if (get_bool(c, o, "tls13_only", false, &k->tls13_only) < 0 ||
	    get_bool(c, o, "check_status_id", false, &k->check_status_id) < 0)
		goto out;
	if (get_int(c, o, "cert_warn_days", false, 0, 3650, 30, &n) < 0)
		goto out;
	k->cert_warn_days = (unsigned)n;
	rc = 0;
out:
	pop(c, old);
	return rc;
}

static int parse_router(struct ctx *c, const json_t *root, struct config_router *r)
{
	static const char *const F[] = {"host",
	                                "port",
	                                "user",
	                                "key_file",
	                                "password_file",
	                                "known_hosts",
	                                "trust_on_first_use",
	                                "namespace",
	                                "confirm_timeout",
	                                "connect_timeout_ms",
	                                "rpc_timeout_ms",
	                                NULL};
	json_t *o;
	long long n;
	char *ns = NULL;
	if (get_obj(c, root, "router", true, F, &o) < 0)
		return -1;
	size_t old = push_key(c, "router");
	int rc = -1;
	if (get_str(c, o, "host", true, 253, check_host, &r->host) < 0)
		goto out;
	if (get_int(c, o, "port", false, 1, 65535, 830, &n) < 0)
		goto out;
	r->port = (unsigned)n;
	if (get_str(c, o, "user", true, 64, check_account, &r->user) < 0 ||
	    get_str(c, o, "key_file", false, CONFIG_PATH_MAX, check_abs_path, &r->key_file) < 0 ||
	    get_str(c, o, "password_file", false, CONFIG_PATH_MAX, check_abs_path,
	            &r->password_file) < 0)
		goto out;
	if (r->key_file == NULL && r->password_file == NULL) {
		fail(c, "needs key_file or password_file (or both) to log in");
		goto out;
	}
	if (get_str(c, o, "known_hosts", true, CONFIG_PATH_MAX, check_abs_path, &r->known_hosts) <
	        0 ||
	    get_bool(c, o, "trust_on_first_use", false, &r->trust_on_first_use) < 0)
		goto out;
	if (get_str(c, o, "namespace", false, 1024, check_ns, &ns) < 0)
		goto out;
	if (ns == NULL || strcmp(ns, "junos") == 0) {
		r->ns = CONFIG_NS_JUNOS;
	} else if (strcmp(ns, "yang") == 0) {
		r->ns = CONFIG_NS_YANG;
	} else {
		r->ns = CONFIG_NS_URI;
		r->ns_uri = ns;
		ns = NULL;
	}
	if (get_int(c, o, "confirm_timeout", false, 1, 3600, 120, &n) < 0)
		goto out;
	r->confirm_timeout = (unsigned)n;
	if (get_int(c, o, "connect_timeout_ms", false, 100, 300000, 10000, &n) < 0)
		goto out;
	r->connect_timeout_ms = (int)n;
	if (get_int(c, o, "rpc_timeout_ms", false, 100, 600000, 60000, &n) < 0)
		goto out;
	r->rpc_timeout_ms = (int)n;
	rc = 0;
out:
	free(ns);
	pop(c, old);
	return rc;
}

static int parse_port(struct ctx *c, const json_t *root, struct config_port *p)
{
	static const char *const F[] = {"rx_interface", "tx_interface", "vlan", "pcp",
	                                "destination",  "oui",          "pid",  NULL};
	static const uint8_t DST[6] = QKD_DST_DEFAULT;
	json_t *o;
	long long n;
	char *s = NULL, q[QUOTE_MAX + 4];
	if (get_obj(c, root, "port", true, F, &o) < 0)
		return -1;
	size_t old = push_key(c, "port"), o2;
	int rc = -1;
	if (get_str(c, o, "rx_interface", true, 64, check_linux_if, &p->rx_interface) < 0 ||
	    get_str(c, o, "tx_interface", false, 64, check_linux_if, &p->tx_interface) < 0)
		goto out;
	if (p->tx_interface == NULL && (p->tx_interface = strdup(p->rx_interface)) == NULL) {
		oom(c);
		goto out;
	}
	int got = get_int(c, o, "vlan", false, 0, 4094, 0, &n);
	if (got < 0)
		goto out;
	p->tagged = got == 1;
	p->vlan = (uint16_t)n;
	got = get_int(c, o, "pcp", false, 0, 7, 0, &n);
	if (got < 0)
		goto out;
	p->pcp = (uint8_t)n;
	if (got == 1 && !p->tagged) {
		o2 = push_key(c, "pcp");
		fail(c, "needs a vlan: an untagged frame has no priority (vlan 0 sends a "
		        "priority tag)");
		pop(c, o2);
		goto out;
	}
	memcpy(p->destination, DST, sizeof DST);
	if ((got = get_str(c, o, "destination", false, 64, NULL, &s)) < 0)
		goto out;
	if (got == 1) {
		o2 = push_key(c, "destination");
		if (parse_mac(s, p->destination) != 0) {
			fail(c,
			     "\"%s\" is not a MAC address (six hex octets, e.g. 03:51:4b:00:00:01)",
			     quote(q, s));
			pop(c, o2);
			goto out;
		}
		static const uint8_t ZERO[6];
		if (memcmp(p->destination, ZERO, 6) == 0) {
			fail(c, "00:00:00:00:00:00 is not a destination");
			pop(c, o2);
			goto out;
		}
		pop(c, o2);
		free(s);
		s = NULL;
	}
	p->oui = QKD_OUI_DEFAULT;
	if ((got = get_str(c, o, "oui", false, 64, NULL, &s)) < 0)
		goto out;
	if (got == 1) {
		o2 = push_key(c, "oui");
		if (parse_oui(s, &p->oui) != 0) {
			fail(c, "\"%s\" is not an OUI (three hex octets, e.g. AC-DE-48)",
			     quote(q, s));
			pop(c, o2);
			goto out;
		}
		pop(c, o2);
		free(s);
		s = NULL;
	}
	p->pid = QKD_PID_DEFAULT;
	if ((got = get_str(c, o, "pid", false, 64, NULL, &s)) < 0)
		goto out;
	if (got == 1) {
		o2 = push_key(c, "pid");
		if (parse_pid(s, &p->pid) != 0) {
			fail(c,
			     "\"%s\" is not a protocol identifier (0x then 1..4 hex digits, e.g. "
			     "0x514B)",
			     quote(q, s));
			pop(c, o2);
			goto out;
		}
		pop(c, o2);
	}
	rc = 0;
out:
	free(s);
	pop(c, old);
	return rc;
}

/* An array member of min..max elements; *out NULL when absent and optional. */
static int get_array(struct ctx *c, const json_t *o, const char *k, bool required, size_t min,
                     size_t max, const char *what, json_t **out)
{
	int rc = member(c, o, k, required, out);
	if (rc <= 0)
		return rc;
	size_t old = push_key(c, k);
	rc = -1;
	if (want_type(c, *out, JSON_ARRAY, "an array") != 0)
		goto out;
	size_t n = json_array_size(*out);
	if (n < min) {
		fail(c, "needs at least %zu %s", min, what);
		goto out;
	}
	if (n > max) {
		fail(c, "%zu %s, at most %zu", n, what, max);
		goto out;
	}
	rc = 1;
out:
	pop(c, old);
	return rc;
}

/* An array of strings, each checked; *out and *n owned by the caller. */
static int get_str_array(struct ctx *c, const json_t *o, const char *k, size_t min, size_t max,
                         size_t maxlen, str_check check, const char *what, char ***out, size_t *n)
{
	json_t *a;
	*out = NULL;
	*n = 0;
	if (get_array(c, o, k, true, min, max, what, &a) < 0)
		return -1;
	size_t len = json_array_size(a);
	*out = calloc(len ? len : 1, sizeof **out);
	if (*out == NULL)
		return oom(c);
	size_t old = push_key(c, k);
	int rc = 0;
	for (size_t i = 0; i < len && rc == 0; i++) {
		size_t o2 = push_idx(c, i);
		rc = str_value(c, json_array_get(a, i), maxlen, check, &(*out)[i]);
		if (rc == 0)
			(*n)++;
		pop(c, o2);
	}
	pop(c, old);
	return rc;
}

/* ---- channels ---- */

static int parse_ckn(struct ctx *c, const json_t *o, struct config_channel *ch)
{
	static const char *const F[] = {"prefix", NULL};
	json_t *v;
	if (member(c, o, "ckn", true, &v) < 0)
		return -1;
	size_t old = push_key(c, "ckn");
	int rc = -1;
	if (json_is_string(v)) {
		char q[QUOTE_MAX + 4];
		if (strcmp(json_string_value(v), "sha256") != 0) {
			fail(c,
			     "\"%s\" is not a convention: \"sha256\" or {\"prefix\": \"<32 hex>\"}",
			     quote(q, json_string_value(v)));
			goto out;
		}
		ch->ckn = CONFIG_CKN_SHA256;
		ch->ckn_prefix[0] = '\0';
	} else if (json_is_object(v)) {
		char *p = NULL;
		if (known_fields(c, v, F) < 0 ||
		    get_str(c, v, "prefix", true, CONFIG_CKN_PREFIX_HEX + 16, NULL, &p) < 0)
			goto out;
		size_t o2 = push_key(c, "prefix");
		size_t len = strlen(p);
		bool hex = true;
		for (size_t i = 0; i < len; i++)
			hex = hex && is_hex(p[i]);
		if (len != CONFIG_CKN_PREFIX_HEX)
			fail(c, "%zu characters, the prefix is %d hex characters", len,
			     CONFIG_CKN_PREFIX_HEX);
		else if (!hex)
			fail(c, "not hexadecimal");
		pop(c, o2);
		if (len != CONFIG_CKN_PREFIX_HEX || !hex) {
			free(p);
			goto out;
		}
		for (size_t i = 0; i < len; i++)
			ch->ckn_prefix[i] = (char)(p[i] >= 'A' && p[i] <= 'F' ? p[i] + 32 : p[i]);
		ch->ckn_prefix[len] = '\0';
		ch->ckn = CONFIG_CKN_PREFIX;
		free(p);
	} else {
		fail(c, "expected \"sha256\" or {\"prefix\": \"<32 hex>\"}, got %s", type_name(v));
		goto out;
	}
	rc = 0;
out:
	pop(c, old);
	return rc;
}

static int parse_secrets(struct ctx *c, const json_t *o, struct config_channel *ch)
{
	static const char *const F[] = {"id", "file", "current", NULL};
	json_t *a;
	if (get_array(c, o, "secrets", true, 1, CONFIG_SECRETS_MAX, "secrets", &a) < 0)
		return -1;
	size_t n = json_array_size(a);
	ch->secrets = calloc(n, sizeof *ch->secrets);
	if (ch->secrets == NULL)
		return oom(c);
	size_t old = push_key(c, "secrets");
	int rc = -1;
	bool have_current = false;
	for (size_t i = 0; i < n; i++) {
		size_t o2 = push_idx(c, i);
		json_t *s = json_array_get(a, i);
		struct config_secret *sec = &ch->secrets[i];
		long long id;
		if (want_type(c, s, JSON_OBJECT, "an object") < 0 || known_fields(c, s, F) < 0 ||
		    get_int(c, s, "id", true, 0, 255, 0, &id) < 0 ||
		    get_str(c, s, "file", true, CONFIG_PATH_MAX, check_abs_path, &sec->file) < 0) {
			pop(c, o2);
			goto out;
		}
		ch->nsecrets++;
		sec->id = (uint8_t)id;
		if (get_bool(c, s, "current", false, &sec->current) < 0) {
			pop(c, o2);
			goto out;
		}
		for (size_t j = 0; j < i; j++)
			if (ch->secrets[j].id == sec->id) {
				push_key(c, "id");
				fail(c, "secret ID %u already used by secrets[%zu]",
				     (unsigned)sec->id, j);
				pop(c, o2);
				goto out;
			}
		if (sec->current) {
			if (have_current) {
				push_key(c, "current");
				fail(c, "secrets[%zu] is already current; exactly one may be",
				     ch->current_secret);
				pop(c, o2);
				goto out;
			}
			have_current = true;
			ch->current_secret = i;
		}
		pop(c, o2);
	}
	if (!have_current) {
		fail(c, "no secret is current; mark exactly one with \"current\": true");
		goto out;
	}
	rc = 0;
out:
	pop(c, old);
	return rc;
}

static int parse_keychain(struct ctx *c, const json_t *o, struct config_keychain *kc)
{
	static const char *const F[] = {"name", "activation_delay", NULL};
	json_t *v;
	long long n;
	int rc = get_obj(c, o, "key_chain", false, F, &v);
	if (rc <= 0)
		return rc;
	size_t old = push_key(c, "key_chain");
	rc = -1;
	if (get_str(c, v, "name", true, CONFIG_CA_NAME_MAX, check_ca_name, &kc->name) < 0 ||
	    get_int(c, v, "activation_delay", false, 1, 3600, 30, &n) < 0)
		goto out;
	kc->activation_delay = (unsigned)n;
	kc->enabled = true;
	rc = 0;
out:
	pop(c, old);
	return rc;
}

static int parse_peers(struct ctx *c, const json_t *o, const char *self, struct config_channel *ch)
{
	json_t *a;
	if (member(c, o, "peers", true, &a) < 0)
		return -1;
	size_t old = push_key(c, "peers");
	int rc = -1;
	if (json_is_array(a) && json_array_size(a) == 0) {
		fail(c, ch->role == QKD_ROLE_MASTER ? "a master needs at least one slave SAE ID"
		                                    : "a slave needs its master's SAE ID");
		goto out;
	}
	if (json_is_array(a) && ch->role == QKD_ROLE_SLAVE && json_array_size(a) > 1) {
		fail(c, "a slave has exactly one master; %zu listed", json_array_size(a));
		goto out;
	}
	pop(c, old);
	if (get_str_array(c, o, "peers", 1, CONFIG_PEERS_MAX, CONFIG_SAE_ID_MAX, check_sae_id,
	                  "peers", &ch->peers, &ch->npeers) < 0)
		return -1;
	old = push_key(c, "peers");
	for (size_t i = 0; i < ch->npeers; i++) {
		size_t o2 = push_idx(c, i);
		if (strcmp(ch->peers[i], self) == 0) {
			fail(c, "\"%s\" is this agent's own sae_id", self);
			pop(c, o2);
			goto out;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(ch->peers[i], ch->peers[j]) == 0) {
				fail(c, "\"%s\" already listed as peers[%zu]", ch->peers[i], j);
				pop(c, o2);
				goto out;
			}
		pop(c, o2);
	}
	rc = 0;
out:
	pop(c, old);
	return rc;
}

static int parse_channel(struct ctx *c, const json_t *o, const char *self,
                         struct config_channel *ch)
{
	static const char *const F[] = {"id",   "ca_name",      "interfaces", "cipher_suite",
	                                "role", "peers",        "secrets",    "rotation_interval",
	                                "ckn",  "provisioning", "key_chain",  NULL};
	static const unsigned BITS[] = {128, 256, 128, 256};
	long long n;
	int i;
	if (want_type(c, o, JSON_OBJECT, "an object") < 0 || known_fields(c, o, F) < 0)
		return -1;
	if (get_int(c, o, "id", true, 1, UINT32_MAX, 0, &n) < 0)
		return -1;
	ch->id = (uint32_t)n;
	if (get_str(c, o, "ca_name", true, CONFIG_CA_NAME_MAX, check_ca_name, &ch->ca_name) < 0 ||
	    get_str_array(c, o, "interfaces", 1, CONFIG_IFACES_MAX, CONFIG_ROUTER_IF_MAX,
	                  check_router_if, "interfaces", &ch->interfaces, &ch->ninterfaces) < 0)
		return -1;
	size_t old = push_key(c, "interfaces");
	for (size_t a = 0; a < ch->ninterfaces; a++)
		for (size_t b = 0; b < a; b++)
			if (strcmp(ch->interfaces[a], ch->interfaces[b]) == 0) {
				push_idx(c, a);
				fail(c, "\"%s\" already listed as interfaces[%zu]",
				     ch->interfaces[a], b);
				pop(c, old);
				return -1;
			}
	pop(c, old);
	if (get_enum(c, o, "cipher_suite", true, CIPHERS, 0, &i) < 0)
		return -1;
	ch->cipher = (enum config_cipher)i;
	ch->cipher_name = CIPHERS[i];
	ch->key_bits = BITS[i];
	ch->cak_hex = BITS[i] / 4;
	if (get_enum(c, o, "role", true, ROLES, 0, &i) < 0)
		return -1;
	ch->role = i == 0 ? QKD_ROLE_MASTER : QKD_ROLE_SLAVE;
	if (parse_peers(c, o, self, ch) < 0 || parse_secrets(c, o, ch) < 0)
		return -1;
	if (get_int(c, o, "rotation_interval", false, 0, 2592000, 3600, &n) < 0)
		return -1;
	if (n == 1) {
		size_t old2 = push_key(c, "rotation_interval");
		fail(c, "1 out of range: 0 (on demand only) or 2..2592000");
		pop(c, old2);
		return -1;
	}
	ch->rotation_interval = (unsigned)n;
	if (parse_ckn(c, o, ch) < 0 ||
	    get_bool(c, o, "provisioning", false, &ch->provisioning) < 0 ||
	    parse_keychain(c, o, &ch->key_chain) < 0)
		return -1;
	if (ch->role == QKD_ROLE_MASTER && ch->key_chain.enabled && ch->rotation_interval &&
	    ch->key_chain.activation_delay >= ch->rotation_interval) {
		size_t old2 = push(c, ".key_chain.activation_delay");
		fail(c,
		     "%u s is not shorter than rotation_interval (%u s): a key would be replaced "
		     "before it starts",
		     ch->key_chain.activation_delay, ch->rotation_interval);
		pop(c, old2);
		return -1;
	}
	return 0;
}

struct ifref {
	const char *name;
	size_t ch, i;
};

static int ifref_cmp(const void *a, const void *b)
{
	const struct ifref *x = a, *y = b;
	int r = strcmp(x->name, y->name);
	if (r)
		return r;
	if (x->ch != y->ch)
		return x->ch < y->ch ? -1 : 1;
	return x->i < y->i ? -1 : (x->i > y->i);
}

/* A router interface belongs to one CA: reports the first one bound twice. */
static int unique_interfaces(struct ctx *c, const struct agent_config *cfg)
{
	size_t total = 0;
	for (size_t k = 0; k < cfg->nchannels; k++)
		total += cfg->channels[k].ninterfaces;
	if (total < 2)
		return 0;
	struct ifref *r = calloc(total, sizeof *r);
	if (r == NULL)
		return oom(c);
	size_t n = 0;
	for (size_t k = 0; k < cfg->nchannels; k++)
		for (size_t i = 0; i < cfg->channels[k].ninterfaces; i++)
			r[n++] = (struct ifref){cfg->channels[k].interfaces[i], k, i};
	qsort(r, n, sizeof *r, ifref_cmp);
	const struct ifref *dup = NULL, *first = NULL;
	for (size_t k = 1; k < n; k++) {
		if (strcmp(r[k].name, r[k - 1].name) != 0 || r[k].ch == r[k - 1].ch)
			continue;
		/* r[k] repeats an earlier channel's interface: keep the earliest such */
		size_t g = k;
		while (g > 0 && strcmp(r[g - 1].name, r[k].name) == 0)
			g--;
		if (dup == NULL || r[k].ch < dup->ch || (r[k].ch == dup->ch && r[k].i < dup->i)) {
			dup = &r[k];
			first = &r[g];
		}
	}
	int rc = 0;
	if (dup) {
		size_t old = push(c, "channels[%zu].interfaces[%zu]", dup->ch, dup->i);
		rc = fail(c,
		          "\"%s\" is already bound to channels[%zu] (CA \"%s\"): one CA per "
		          "interface",
		          dup->name, first->ch, cfg->channels[first->ch].ca_name);
		pop(c, old);
	}
	free(r);
	return rc;
}

static int parse_channels(struct ctx *c, const json_t *root, struct agent_config *cfg)
{
	json_t *a;
	if (get_array(c, root, "channels", true, 1, CONFIG_CHANNELS_MAX, "channels", &a) < 0)
		return -1;
	size_t n = json_array_size(a);
	cfg->channels = calloc(n, sizeof *cfg->channels);
	if (cfg->channels == NULL)
		return oom(c);
	for (size_t k = 0; k < n; k++) {
		struct config_channel *ch = &cfg->channels[k];
		size_t old = push(c, "channels[%zu]", k);
		cfg->nchannels++;
		if (parse_channel(c, json_array_get(a, k), cfg->sae_id, ch) < 0) {
			pop(c, old);
			return -1;
		}
		for (size_t j = 0; j < k; j++) {
			const struct config_channel *p = &cfg->channels[j];
			if (p->id == ch->id) {
				push_key(c, "id");
				fail(c, "channel %" PRIu32 " already defined by channels[%zu]",
				     ch->id, j);
				pop(c, old);
				return -1;
			}
			if (strcmp(p->ca_name, ch->ca_name) == 0) {
				push_key(c, "ca_name");
				fail(c, "\"%s\" already used by channels[%zu]", ch->ca_name, j);
				pop(c, old);
				return -1;
			}
			if (ch->key_chain.enabled && p->key_chain.enabled &&
			    strcmp(p->key_chain.name, ch->key_chain.name) == 0) {
				push(c, ".key_chain.name");
				fail(c, "\"%s\" already used by channels[%zu]", ch->key_chain.name,
				     j);
				pop(c, old);
				return -1;
			}
		}
		pop(c, old);
	}
	return unique_interfaces(c, cfg);
}

/* ---- the whole file ---- */

static int parse_root(struct ctx *c, const json_t *root, struct agent_config *cfg)
{
	static const char *const F[] = {
	    "sae_id", "state_dir", "control_socket", "user", "group",    "hello_interval",
	    "log",    "kme",       "router",         "port", "channels", NULL};
	long long n;
	if (!json_is_object(root))
		return fail(c, "expected a JSON object at the top level, got %s", type_name(root));
	if (known_fields(c, root, F) < 0)
		return -1;
	if (get_str(c, root, "sae_id", true, CONFIG_SAE_ID_MAX, check_sae_id, &cfg->sae_id) < 0 ||
	    get_str(c, root, "state_dir", true, CONFIG_PATH_MAX, check_abs_path, &cfg->state_dir) <
	        0)
		return -1;
	if (get_str(c, root, "control_socket", false, 107, check_abs_path, &cfg->control_socket) <
	    0)
		return -1;
	if (cfg->control_socket == NULL &&
	    (cfg->control_socket = strdup("/run/qkdlink/qkdlinkd.sock")) == NULL)
		return oom(c);
	if (get_str(c, root, "user", false, 32, check_account, &cfg->user) < 0 ||
	    get_str(c, root, "group", false, 32, check_account, &cfg->group) < 0)
		return -1;
	if (cfg->group && cfg->user == NULL) {
		size_t old = push_key(c, "group");
		fail(c, "needs a user to drop to");
		pop(c, old);
		return -1;
	}
	if (get_int(c, root, "hello_interval", false, 1, 3600, 10, &n) < 0)
		return -1;
	cfg->hello_interval = (unsigned)n;
	if (parse_log(c, root, &cfg->log) < 0 || parse_kme(c, root, &cfg->kme) < 0 ||
	    parse_router(c, root, &cfg->router) < 0 || parse_port(c, root, &cfg->port) < 0 ||
	    parse_channels(c, root, cfg) < 0)
		return -1;
	return 0;
}

/* Error messages quote the file (jansson's syntax errors show the text near
 * the error; member names come from it): one line of printable ASCII, so no
 * newline or escape sequence of a file reaches a log or a terminal. */
static void printable(char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

int config_from_json(const char *name, const json_t *root, struct agent_config *cfg, char *err,
                     size_t errlen)
{
	struct ctx c;
	ctx_init(&c, name, err, errlen);
	memset(cfg, 0, sizeof *cfg);
	if ((cfg->file = strdup(c.file)) == NULL)
		return oom(&c);
	if (parse_root(&c, root, cfg) < 0) {
		config_free(cfg);
		if (errlen > 0)
			printable(err);
		return -1;
	}
	return 0;
}

int config_parse(const char *name, const char *text, size_t len, struct agent_config *cfg,
                 char *err, size_t errlen)
{
	struct ctx c;
	ctx_init(&c, name, err, errlen);
	memset(cfg, 0, sizeof *cfg);
	if (len > CONFIG_FILE_MAX)
		return fail(&c, "%zu bytes, larger than the %u-byte limit", len, CONFIG_FILE_MAX);
	json_error_t je;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		snprintf(err, errlen, "%s:%d:%d: JSON syntax error: %s", c.file, je.line, je.column,
		         je.text);
		printable(err);
		return -1;
	}
	int rc = config_from_json(name, root, cfg, err, errlen);
	json_decref(root);
	return rc;
}

/* ---- pass 2: files ---- */

/*
 * path must be a regular file we can open; private: mode 0600 or stricter;
 * size within min..max octets (max 0: any).
 */
static int check_file(struct ctx *c, const char *path, bool private, long long min, long long max,
                      const char *what)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return fail(c, "%s: %s", path, strerror(errno));
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) != 0)
		rc = fail(c, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		rc = fail(c, "%s: not a regular file", path);
	else if (private && (st.st_mode & 077))
		rc = fail(c, "%s: mode %04o lets others %s it; chmod 600", path,
		          (unsigned)(st.st_mode & 07777),
		          (st.st_mode & 044) ? "read" : "write or run");
	else if (st.st_size < min || (max && st.st_size > max))
		rc = st.st_size == 0 ? fail(c, "%s: empty", path)
		                     : fail(c, "%s: %lld octets, %s needs %lld..%lld", path,
		                            (long long)st.st_size, what, min, max);
	close(fd);
	return rc;
}

static int file_at(struct ctx *c, const char *field, const char *path, bool private, long long min,
                   long long max, const char *what)
{
	if (path == NULL)
		return 0;
	size_t old = push(c, "%s", field);
	int rc = check_file(c, path, private, min, max, what);
	pop(c, old);
	return rc;
}

static int check_secret(struct ctx *c, const char *path)
{
	int rc = check_file(c, path, true, QKD_SECRET_MIN, QKD_SECRET_MAX, "a secret");
	if (rc != 0)
		return rc;
	/* and read it as the daemon will, to be sure; never kept */
	uint8_t buf[QKD_SECRET_MAX];
	size_t len;
	char e[CONFIG_ERR_MAX];
	rc = qkd_secret_read(path, buf, sizeof buf, &len, e, sizeof e);
	OPENSSL_cleanse(buf, sizeof buf);
	if (rc != 0)
		return fail(c, "%s", e);
	return 0;
}

int config_check_files(const struct agent_config *cfg, char *err, size_t errlen)
{
	struct ctx c;
	ctx_init(&c, cfg->file, err, errlen);
	const struct config_kme *k = &cfg->kme;
	const struct config_router *r = &cfg->router;
	if (file_at(&c, "kme.ca_file", k->ca_file, false, 1, 0, "") < 0 ||
	    file_at(&c, "kme.cert_file", k->cert_file, false, 1, 0, "") < 0 ||
	    file_at(&c, "kme.key_file", k->key_file, true, 1, 0, "") < 0 ||
	    file_at(&c, "router.key_file", r->key_file, true, 1, 0, "") < 0 ||
	    file_at(&c, "router.password_file", r->password_file, true, 1, 1024, "a password") < 0)
		return -1;
	struct stat st;
	if (!(r->trust_on_first_use && stat(r->known_hosts, &st) != 0 && errno == ENOENT) &&
	    file_at(&c, "router.known_hosts", r->known_hosts, false, 0, 0, "") < 0)
		return -1;
	size_t old = push(&c, "state_dir");
	int rc = 0;
	if (stat(cfg->state_dir, &st) != 0)
		rc = fail(&c, "%s: %s", cfg->state_dir, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		rc = fail(&c, "%s: not a directory", cfg->state_dir);
	else if (st.st_mode & 022)
		rc = fail(&c, "%s: mode %04o lets others write in it; chmod go-w", cfg->state_dir,
		          (unsigned)(st.st_mode & 07777));
	pop(&c, old);
	if (rc != 0)
		return -1;
	if (cfg->user && getpwnam(cfg->user) == NULL) {
		old = push(&c, "user");
		fail(&c, "no user \"%s\" on this system", cfg->user);
		pop(&c, old);
		return -1;
	}
	if (cfg->group && getgrnam(cfg->group) == NULL) {
		old = push(&c, "group");
		fail(&c, "no group \"%s\" on this system", cfg->group);
		pop(&c, old);
		return -1;
	}
	for (size_t i = 0; i < cfg->nchannels; i++)
		for (size_t j = 0; j < cfg->channels[i].nsecrets; j++) {
			old = push(&c, "channels[%zu].secrets[%zu].file", i, j);
			rc = check_secret(&c, cfg->channels[i].secrets[j].file);
			pop(&c, old);
			if (rc != 0)
				return -1;
		}
	return 0;
}

/*
 * Options the configuration language has but this qkdlinkd does not execute
 * yet: refused by name rather than silently ignored, so an operator never
 * believes a router is in hitless mode when it is not.
 */
static int check_implemented(struct ctx *c, const struct agent_config *cfg)
{
	for (size_t i = 0; i < cfg->nchannels; i++) {
		const struct config_channel *ch = &cfg->channels[i];
		if (ch->key_chain.enabled)
			return push(c, "channels[%zu].key_chain", i),
			       fail(c,
			            "key-chain (hitless) mode is not implemented by this qkdlinkd "
			            "yet; remove it to rotate the CA's pre-shared key");
	}
	return 0;
}

int config_load(const char *path, unsigned flags, struct agent_config *cfg, char *err,
                size_t errlen)
{
	struct ctx c;
	ctx_init(&c, path, err, errlen);
	memset(cfg, 0, sizeof *cfg);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return fail(&c, "%s", strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return fail(&c, "%s", strerror(e));
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
		close(fd);
		if (!S_ISREG(st.st_mode))
			return fail(&c, "not a regular file");
		return fail(&c, "%lld bytes, larger than the %u-byte limit", (long long)st.st_size,
		            CONFIG_FILE_MAX);
	}
	size_t want = (size_t)st.st_size, got = 0;
	char *text = malloc(want + 1);
	if (text == NULL) {
		close(fd);
		return oom(&c);
	}
	while (got < want) {
		ssize_t n = read(fd, text + got, want - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			free(text);
			return fail(&c, "%s", strerror(e));
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	int rc = config_parse(path, text, got, cfg, err, errlen);
	free(text);
	if (rc == 0 &&
	    (check_implemented(&c, cfg) != 0 ||
	     (!(flags & CONFIG_NO_FILES) && config_check_files(cfg, err, errlen) != 0))) {
		config_free(cfg);
		rc = -1;
	}
	return rc;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void config_free(struct agent_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->nchannels; i++) {
		struct config_channel *ch = &cfg->channels[i];
		free(ch->ca_name);
		free_strv(ch->interfaces, ch->ninterfaces);
		free_strv(ch->peers, ch->npeers);
		for (size_t j = 0; j < ch->nsecrets; j++)
			free(ch->secrets[j].file);
		free(ch->secrets);
		free(ch->key_chain.name);
	}
	free(cfg->channels);
	char **strs[] = {&cfg->file,
	                 &cfg->sae_id,
	                 &cfg->state_dir,
	                 &cfg->control_socket,
	                 &cfg->user,
	                 &cfg->group,
	                 &cfg->kme.url,
	                 &cfg->kme.ca_file,
	                 &cfg->kme.cert_file,
	                 &cfg->kme.key_file,
	                 &cfg->kme.kme_id,
	                 &cfg->kme.pin,
	                 &cfg->router.host,
	                 &cfg->router.user,
	                 &cfg->router.key_file,
	                 &cfg->router.password_file,
	                 &cfg->router.known_hosts,
	                 &cfg->router.ns_uri,
	                 &cfg->port.rx_interface,
	                 &cfg->port.tx_interface};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
		free(*strs[i]);
	memset(cfg, 0, sizeof *cfg);
}

/* ---- lookups, names, summary ---- */

void config_kme(const struct agent_config *cfg, struct kme_config *out)
{
	memset(out, 0, sizeof *out);
	out->url = cfg->kme.url;
	out->ca_file = cfg->kme.ca_file;
	out->cert_file = cfg->kme.cert_file;
	out->key_file = cfg->kme.key_file;
	out->kme_id = cfg->kme.kme_id;
	out->pin = cfg->kme.pin;
	out->connect_timeout_ms = cfg->kme.connect_timeout_ms;
	out->timeout_ms = cfg->kme.timeout_ms;
	out->tls13_only = cfg->kme.tls13_only;
	out->check_status_id = cfg->kme.check_status_id;
}

const struct config_channel *config_channel_find(const struct agent_config *cfg, uint32_t id)
{
	for (size_t i = 0; i < cfg->nchannels; i++)
		if (cfg->channels[i].id == id)
			return &cfg->channels[i];
	return NULL;
}

const char *config_cipher_name(enum config_cipher c)
{
	return (unsigned)c < 4 ? CIPHERS[c] : "unknown";
}

const char *config_ns_name(enum config_ns ns)
{
	switch (ns) {
	case CONFIG_NS_JUNOS:
		return "junos";
	case CONFIG_NS_YANG:
		return "yang";
	case CONFIG_NS_URI:
		return "uri";
	}
	return "unknown";
}

const char *config_ckn_name(enum config_ckn c)
{
	return c == CONFIG_CKN_PREFIX ? "prefix" : c == CONFIG_CKN_SHA256 ? "sha256" : "unknown";
}

void config_summary(const struct agent_config *cfg, FILE *out)
{
	const struct config_port *p = &cfg->port;
	const struct config_router *r = &cfg->router;
	fprintf(out, "agent %s: %zu channel%s, state in %s, control socket %s, hello every %u s\n",
	        cfg->sae_id, cfg->nchannels, cfg->nchannels == 1 ? "" : "s", cfg->state_dir,
	        cfg->control_socket, cfg->hello_interval);
	if (cfg->user)
		fprintf(out, "runs as user %s%s%s\n", cfg->user, cfg->group ? " group " : "",
		        cfg->group ? cfg->group : "");
	fprintf(out, "log: %s, level %s\n", cfg->log.syslog ? "syslog" : "stderr",
	        LEVELS[cfg->log.level - CONFIG_LOG_ERR]);
	fprintf(out, "kme: %s (identity %s%s), client certificate %s, warn %u days before expiry\n",
	        cfg->kme.url, cfg->kme.kme_id, cfg->kme.pin ? ", pinned" : "", cfg->kme.cert_file,
	        cfg->kme.cert_warn_days);
	fprintf(out,
	        "router: %s@%s:%u by %s%s%s, known_hosts %s%s, namespace %s, confirm timeout "
	        "%u s\n",
	        r->user, r->host, r->port, r->key_file ? "key" : "",
	        r->key_file && r->password_file ? "+" : "", r->password_file ? "password" : "",
	        r->known_hosts, r->trust_on_first_use ? " (trust on first use)" : "",
	        r->ns == CONFIG_NS_URI ? r->ns_uri : config_ns_name(r->ns), r->confirm_timeout);
	fprintf(out, "port: rx %s, tx %s, ", p->rx_interface, p->tx_interface);
	if (p->tagged)
		fprintf(out, "vlan %u pcp %u", p->vlan, p->pcp);
	else
		fprintf(out, "untagged");
	fprintf(out,
	        ", destination %02x:%02x:%02x:%02x:%02x:%02x, OUI %02X-%02X-%02X, PID 0x%04X\n",
	        p->destination[0], p->destination[1], p->destination[2], p->destination[3],
	        p->destination[4], p->destination[5], (unsigned)(p->oui >> 16) & 0xff,
	        (unsigned)(p->oui >> 8) & 0xff, (unsigned)p->oui & 0xff, p->pid);
	for (size_t i = 0; i < cfg->nchannels; i++) {
		const struct config_channel *ch = &cfg->channels[i];
		fprintf(out, "channel %" PRIu32 " CA %s: %s of", ch->id, ch->ca_name,
		        ch->role == QKD_ROLE_MASTER ? "master" : "slave");
		for (size_t j = 0; j < ch->npeers; j++)
			fprintf(out, "%s %s", j ? "," : "", ch->peers[j]);
		fprintf(out, "; %s (%u-bit CAK), CKN %s%s%s, ", ch->cipher_name, ch->key_bits,
		        config_ckn_name(ch->ckn), ch->ckn == CONFIG_CKN_PREFIX ? " " : "",
		        ch->ckn_prefix);
		if (ch->role == QKD_ROLE_MASTER && ch->rotation_interval)
			fprintf(out, "rotates every %u s, ", ch->rotation_interval);
		else if (ch->role == QKD_ROLE_MASTER)
			fprintf(out, "rotates on demand only, ");
		fprintf(out, "secret %u current (%zu configured), interfaces",
		        ch->secrets[ch->current_secret].id, ch->nsecrets);
		for (size_t j = 0; j < ch->ninterfaces; j++)
			fprintf(out, "%s %s", j ? "," : "", ch->interfaces[j]);
		if (ch->key_chain.enabled)
			fprintf(out, ", key chain %s (activation after %u s)", ch->key_chain.name,
			        ch->key_chain.activation_delay);
		if (ch->provisioning)
			fprintf(out, ", provisioning on");
		fprintf(out, "\n");
	}
}

int config_check_main(const char *path, unsigned flags, FILE *out, FILE *errout)
{
	struct agent_config cfg;
	char err[CONFIG_ERR_MAX + CONFIG_PATH_MAX];
	if (config_load(path, flags, &cfg, err, sizeof err) != 0) {
		fprintf(errout, "%s\n", err);
		return 1;
	}
	fprintf(out, "%s: valid%s\n", path,
	        (flags & CONFIG_NO_FILES) ? " (files not checked)" : "");
	config_summary(&cfg, out);
	config_free(&cfg);
	return 0;
}
