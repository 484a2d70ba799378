/*
 * kme_parse.c - ETSI GS QKD 014 request building and strict reply parsing.
 */
#include "kme_parse.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>

int kme_fail(struct kme_error *err, enum kme_err code, const char *fmt, ...)
{
	if (err == NULL)
		return -1;
	err->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof err->text, fmt, ap);
	va_end(ap);
	return -1;
}

const char *kme_err_name(enum kme_err e)
{
	switch (e) {
	case KME_OK:
		return "ok";
	case KME_E_ARG:
		return "invalid-argument";
	case KME_E_LIMIT:
		return "over-kme-limit";
	case KME_E_NOMEM:
		return "no-memory";
	case KME_E_TRANSPORT:
		return "transport";
	case KME_E_TIMEOUT:
		return "timeout";
	case KME_E_TLS:
		return "tls";
	case KME_E_IDENTITY:
		return "kme-identity";
	case KME_E_HTTP_400:
		return "http-400";
	case KME_E_HTTP_401:
		return "http-401";
	case KME_E_HTTP_503:
		return "http-503";
	case KME_E_HTTP:
		return "http-other";
	case KME_E_PARSE:
		return "parse";
	case KME_E_KEY_LOST:
		return "key-lost";
	}
	return "unknown";
}

/* ---- jansson allocations that are wiped on free ---- */

static void *wipe_malloc(size_t n)
{
	if (n > SIZE_MAX - sizeof(max_align_t))
		return NULL;
	unsigned char *p = malloc(n + sizeof(max_align_t));
	if (p == NULL)
		return NULL;
	memcpy(p, &n, sizeof n);
	return p + sizeof(max_align_t);
}

static void wipe_free(void *q)
{
	if (q == NULL)
		return;
	unsigned char *p = (unsigned char *)q - sizeof(max_align_t);
	size_t n;
	memcpy(&n, p, sizeof n);
	OPENSSL_cleanse(q, n);
	free(p);
}

static void json_init_once(void)
{
	json_set_alloc_funcs(wipe_malloc, wipe_free);
}

void kme_json_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, json_init_once);
}

bool kme_json_wiping(void)
{
	json_malloc_t m;
	json_free_t f;
	json_get_alloc_funcs(&m, &f);
	return m == wipe_malloc && f == wipe_free;
}

/* frees a block jansson allocated, whichever allocator it used */
static void jfree(void *p)
{
	json_malloc_t m;
	json_free_t f;
	json_get_alloc_funcs(&m, &f);
	f(p);
}

bool kme_ctype_json(const char *ctype)
{
	if (ctype == NULL)
		return true;
	while (*ctype == ' ')
		ctype++;
	size_t n = strlen("application/json");
	return strncasecmp(ctype, "application/json", n) == 0 &&
	       (ctype[n] == 0 || ctype[n] == ';' || ctype[n] == ' ');
}

/* ---- requests ---- */

bool kme_id_valid(const char *id)
{
	if (id == NULL)
		return false;
	size_t n = strlen(id);
	if (n == 0 || n > KME_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)id[i] < 0x20 || (unsigned char)id[i] > 0x7e)
			return false;
	return true;
}

char *kme_build_url(const char *base, const char *sae, const char *endpoint, const char *query,
                    struct kme_error *err)
{
	if (base == NULL || !kme_id_valid(sae)) {
		kme_fail(err, KME_E_ARG, "invalid SAE ID (1..%d printable ASCII characters)",
		         KME_ID_MAX);
		return NULL;
	}
	size_t bl = strlen(base);
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	size_t cap = bl + sizeof "/api/v1/keys/" + 3 * strlen(sae) + 1 + strlen(endpoint) +
	             (query ? 1 + strlen(query) : 0) + 1;
	char *u = malloc(cap);
	if (u == NULL) {
		kme_fail(err, KME_E_NOMEM, "out of memory");
		return NULL;
	}
	size_t o = 0;
	memcpy(u, base, bl);
	o = bl;
	memcpy(u + o, "/api/v1/keys/", 13);
	o += 13;
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *s = (const unsigned char *)sae; *s; s++) {
		if (isalnum(*s) || *s == '-' || *s == '.' || *s == '_' || *s == '~') {
			u[o++] = (char)*s;
		} else {
			u[o++] = '%';
			u[o++] = hex[*s >> 4];
			u[o++] = hex[*s & 15];
		}
	}
	o += (size_t)snprintf(u + o, cap - o, "/%s%s%s", endpoint, query ? "?" : "",
	                      query ? query : "");
	return u;
}

static char *dump(json_t *o, struct kme_error *err)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (s == NULL) {
		kme_fail(err, KME_E_NOMEM, "out of memory building the request");
		return NULL;
	}
	/* json_dumps used our allocator: hand back a plain malloc'ed copy */
	char *r = strdup(s);
	OPENSSL_cleanse(s, strlen(s));
	jfree(s);
	if (r == NULL)
		kme_fail(err, KME_E_NOMEM, "out of memory building the request");
	return r;
}

static json_t *ext_array(const char *text, const char *name, struct kme_error *err)
{
	json_error_t je;
	json_t *a = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (a == NULL || !json_is_array(a)) {
		json_decref(a);
		kme_fail(err, KME_E_ARG, "%s must be a JSON array of objects", name);
		return NULL;
	}
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v)
	{
		if (!json_is_object(v)) {
			json_decref(a);
			kme_fail(err, KME_E_ARG, "%s[%zu] is not an object", name, i);
			return NULL;
		}
	}
	return a;
}

char *kme_build_enc_body(const struct kme_enc_req *rq, struct kme_error *err)
{
	json_t *o = json_object();
	if (o == NULL) {
		kme_fail(err, KME_E_NOMEM, "out of memory");
		return NULL;
	}
	int rc = 0;
	if (rq->number)
		rc |= json_object_set_new(o, "number", json_integer(rq->number));
	if (rq->size)
		rc |= json_object_set_new(o, "size", json_integer(rq->size));
	if (rq->nadditional) {
		json_t *a = json_array();
		rc |= a == NULL;
		for (size_t i = 0; a && i < rq->nadditional; i++) {
			if (!kme_id_valid(rq->additional[i])) {
				json_decref(a);
				json_decref(o);
				kme_fail(err, KME_E_ARG, "additional slave SAE ID %zu is invalid",
				         i);
				return NULL;
			}
			rc |= json_array_append_new(a, json_string(rq->additional[i]));
		}
		rc |= json_object_set_new(o, "additional_slave_SAE_IDs", a);
	}
	const char *names[2] = {"extension_mandatory", "extension_optional"};
	const char *texts[2] = {rq->extension_mandatory, rq->extension_optional};
	for (int i = 0; i < 2; i++) {
		if (texts[i] == NULL)
			continue;
		json_t *a = ext_array(texts[i], names[i], err);
		if (a == NULL) {
			json_decref(o);
			return NULL;
		}
		rc |= json_object_set_new(o, names[i], a);
	}
	if (rc) {
		json_decref(o);
		kme_fail(err, KME_E_NOMEM, "out of memory building the request");
		return NULL;
	}
	return dump(o, err);
}

char *kme_build_dec_body(const char *const *ids, size_t n, struct kme_error *err)
{
	if (n == 0 || n > KME_KEYS_MAX) {
		kme_fail(err, KME_E_ARG, "dec_keys needs 1..%d key_IDs, got %zu", KME_KEYS_MAX, n);
		return NULL;
	}
	json_t *o = json_object(), *a = json_array();
	int rc = o == NULL || a == NULL;
	for (size_t i = 0; !rc && i < n; i++) {
		if (!kme_id_valid(ids[i])) {
			json_decref(a);
			json_decref(o);
			kme_fail(err, KME_E_ARG, "key_ID %zu is invalid", i);
			return NULL;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(ids[i], ids[j]) == 0) {
				json_decref(a);
				json_decref(o);
				kme_fail(err, KME_E_ARG, "key_ID %s asked twice", ids[i]);
				return NULL;
			}
		rc |= json_array_append_new(a, json_pack("{ss}", "key_ID", ids[i]));
	}
	if (rc || json_object_set_new(o, "key_IDs", a)) {
		json_decref(o);
		kme_fail(err, KME_E_NOMEM, "out of memory building the request");
		return NULL;
	}
	return dump(o, err);
}

int kme_check_enc(const struct kme_status *st, const struct kme_enc_req *rq, struct kme_error *err)
{
	if (rq->number > KME_KEYS_MAX)
		return kme_fail(err, KME_E_ARG, "number %u over %d", rq->number, KME_KEYS_MAX);
	if (rq->size % 8 != 0)
		return kme_fail(err, KME_E_ARG, "size %u bits is not a multiple of 8", rq->size);
	if (rq->size > 8 * KME_KEY_MAX_BYTES)
		return kme_fail(err, KME_E_ARG, "size %u bits over %d", rq->size,
		                8 * KME_KEY_MAX_BYTES);
	if (rq->use_get && (rq->nadditional || rq->extension_mandatory || rq->extension_optional))
		return kme_fail(err, KME_E_ARG,
		                "GET enc_keys carries only number and size; use POST");
	if (st == NULL)
		return 0;
	unsigned number = rq->number ? rq->number : 1;
	if (st->max_key_per_request > 0 && number > (unsigned long)st->max_key_per_request)
		return kme_fail(err, KME_E_LIMIT,
		                "number %u over the KME's max_key_per_request %ld", number,
		                st->max_key_per_request);
	if (rq->size) {
		if (st->max_key_size > 0 && rq->size > (unsigned long)st->max_key_size)
			return kme_fail(err, KME_E_LIMIT, "size %u over the KME's max_key_size %ld",
			                rq->size, st->max_key_size);
		if (st->min_key_size > 0 && rq->size < (unsigned long)st->min_key_size)
			return kme_fail(err, KME_E_LIMIT,
			                "size %u under the KME's min_key_size %ld", rq->size,
			                st->min_key_size);
	}
	if (rq->nadditional && st->max_sae_id_count > 0 &&
	    rq->nadditional > (unsigned long)st->max_sae_id_count)
		return kme_fail(err, KME_E_LIMIT,
		                "%zu additional slaves over the KME's max_SAE_ID_count %ld",
		                rq->nadditional, st->max_sae_id_count);
	return 0;
}

/* ---- base64 ---- */

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int kme_b64_decode(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *outlen)
{
	*outlen = 0;
	if (slen == 0 || slen % 4 != 0)
		return -1;
	size_t pad = 0;
	if (s[slen - 1] == '=')
		pad = s[slen - 2] == '=' ? 2 : 1;
	size_t n = slen / 4 * 3 - pad;
	if (n > cap)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < slen; i += 4) {
		int v[4];
		bool last = i + 4 == slen;
		for (int j = 0; j < 4; j++) {
			unsigned char c = (unsigned char)s[i + j];
			if (c == '=' && last && (size_t)j >= 4 - pad)
				v[j] = 0;
			else if ((v[j] = b64val(c)) < 0)
				return -1;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
		             (uint32_t)v[3];
		if (last && pad == 2 && (w & 0xffff) != 0)
			return -1; /* non-zero unused bits */
		if (last && pad == 1 && (w & 0xff) != 0)
			return -1;
		uint8_t b[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
		size_t take = last ? 3 - pad : 3;
		memcpy(out + o, b, take);
		OPENSSL_cleanse(b, sizeof b);
		o += take;
	}
	*outlen = o;
	return 0;
}

/* ---- replies ---- */

/*
 * Why jansson refused a body, without its je.text: that quotes the token it
 * stopped in ("invalid escape near '\"U0VD...'"), which inside a key
 * container is key material, and may hold control characters.
 */
static const char *json_reason(const json_error_t *je)
{
	switch (json_error_code(je)) {
	case json_error_out_of_memory:
		return "out of memory";
	case json_error_stack_overflow:
		return "nested too deep";
	case json_error_invalid_utf8:
		return "invalid UTF-8";
	case json_error_premature_end_of_input:
		return "premature end of input";
	case json_error_end_of_input_expected:
		return "data after the JSON value";
	case json_error_invalid_syntax:
		return "invalid syntax";
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return "NUL character";
	case json_error_duplicate_key:
		return "duplicate member";
	case json_error_numeric_overflow:
		return "number out of range";
	default:
		return "invalid JSON";
	}
}

static json_t *load(const char *body, size_t len, struct kme_error *err)
{
	json_error_t je;
	json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL) {
		kme_fail(err, KME_E_PARSE, "reply is not JSON (%s at offset %d)", json_reason(&je),
		         je.position);
		OPENSSL_cleanse(&je, sizeof je); /* je.source/text may quote the body */
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		kme_fail(err, KME_E_PARSE, "reply is not a JSON object");
		return NULL;
	}
	return j;
}

static int get_str(json_t *o, const char *name, char *dst, size_t cap, struct kme_error *err)
{
	json_t *v = json_object_get(o, name);
	if (!json_is_string(v))
		return kme_fail(err, KME_E_PARSE, "status: \"%s\" missing or not a string", name);
	if (json_string_length(v) >= cap)
		return kme_fail(err, KME_E_PARSE, "status: \"%s\" longer than %zu", name, cap - 1);
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	if (!kme_id_valid(dst))
		return kme_fail(err, KME_E_PARSE, "status: \"%s\" is not a printable ID", name);
	return 0;
}

static int get_int(json_t *o, const char *name, long *dst, struct kme_error *err)
{
	json_t *v = json_object_get(o, name);
	if (!json_is_integer(v))
		return kme_fail(err, KME_E_PARSE, "status: \"%s\" missing or not an integer", name);
	json_int_t x = json_integer_value(v);
	if (x < 0 || x > LONG_MAX / 16)
		return kme_fail(err, KME_E_PARSE, "status: \"%s\" out of range", name);
	*dst = (long)x;
	return 0;
}

int kme_parse_status(const char *body, size_t len, struct kme_status *st, struct kme_error *err)
{
	memset(st, 0, sizeof *st);
	json_t *j = load(body, len, err);
	if (j == NULL)
		return -1;
	int rc = get_str(j, "source_KME_ID", st->source_kme_id, sizeof st->source_kme_id, err);
	if (!rc)
		rc = get_str(j, "target_KME_ID", st->target_kme_id, sizeof st->target_kme_id, err);
	if (!rc)
		rc = get_str(j, "master_SAE_ID", st->master_sae_id, sizeof st->master_sae_id, err);
	if (!rc)
		rc = get_str(j, "slave_SAE_ID", st->slave_sae_id, sizeof st->slave_sae_id, err);
	struct {
		const char *name;
		long *dst;
	} ints[] = {
	    {"key_size", &st->key_size},
	    {"stored_key_count", &st->stored_key_count},
	    {"max_key_count", &st->max_key_count},
	    {"max_key_per_request", &st->max_key_per_request},
	    {"max_key_size", &st->max_key_size},
	    {"min_key_size", &st->min_key_size},
	    {"max_SAE_ID_count", &st->max_sae_id_count},
	};
	for (size_t i = 0; !rc && i < sizeof ints / sizeof ints[0]; i++)
		rc = get_int(j, ints[i].name, ints[i].dst, err);
	json_decref(j);
	return rc;
}

void kme_keys_free(struct kme_keys *ks)
{
	if (ks == NULL)
		return;
	for (size_t i = 0; i < ks->n && ks->k; i++) {
		if (ks->k[i].key) {
			OPENSSL_cleanse(ks->k[i].key, ks->k[i].len);
			free(ks->k[i].key);
		}
	}
	if (ks->k)
		OPENSSL_cleanse(ks->k, ks->n * sizeof *ks->k);
	free(ks->k);
	ks->k = NULL;
	ks->n = 0;
}

int kme_parse_keys(const char *body, size_t len, size_t want_count, const char *const *want_ids,
                   size_t want_bytes, struct kme_keys *out, struct kme_error *err)
{
	out->n = 0;
	out->k = NULL;
	if (want_count == 0 || want_count > KME_KEYS_MAX)
		return kme_fail(err, KME_E_ARG, "bad expected key count %zu", want_count);
	json_t *j = load(body, len, err);
	if (j == NULL)
		return -1;
	json_t *keys = json_object_get(j, "keys");
	int rc = -1;
	if (!json_is_array(keys)) {
		kme_fail(err, KME_E_PARSE, "key container: no \"keys\" array");
		goto out;
	}
	size_t n = json_array_size(keys);
	if (n != want_count) {
		kme_fail(err, KME_E_PARSE, "key container: %zu keys, asked for %zu", n, want_count);
		goto out;
	}
	out->k = calloc(n, sizeof *out->k);
	if (out->k == NULL) {
		kme_fail(err, KME_E_NOMEM, "out of memory");
		goto out;
	}
	out->n = n;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(keys, i);
		json_t *id = json_object_get(e, "key_ID"), *k = json_object_get(e, "key");
		if (!json_is_object(e) || !json_is_string(id) || !json_is_string(k)) {
			kme_fail(err, KME_E_PARSE,
			         "key container: keys[%zu] needs string key_ID and key", i);
			goto out;
		}
		const char *ids = json_string_value(id);
		if (json_string_length(id) != strlen(ids) || !kme_id_valid(ids)) {
			kme_fail(err, KME_E_PARSE, "key container: keys[%zu].key_ID is invalid", i);
			goto out;
		}
		size_t slot = i;
		if (want_ids) {
			for (slot = 0; slot < n; slot++)
				if (strcmp(want_ids[slot], ids) == 0)
					break;
			if (slot == n) {
				kme_fail(err, KME_E_PARSE,
				         "key container: key_ID %s was not asked for", ids);
				goto out;
			}
		}
		struct kme_key *dst = &out->k[slot];
		if (dst->key != NULL) {
			kme_fail(err, KME_E_PARSE, "key container: key_ID %s twice", ids);
			goto out;
		}
		if (!want_ids) {
			for (size_t p = 0; p < i; p++)
				if (strcmp(out->k[p].id, ids) == 0) {
					kme_fail(err, KME_E_PARSE, "key container: key_ID %s twice",
					         ids);
					goto out;
				}
		}
		strcpy(dst->id, ids);
		size_t kl = json_string_length(k);
		size_t cap = kl / 4 * 3;
		dst->key = malloc(cap ? cap : 1);
		if (dst->key == NULL) {
			kme_fail(err, KME_E_NOMEM, "out of memory");
			goto out;
		}
		if (kme_b64_decode(json_string_value(k), kl, dst->key, cap, &dst->len) != 0) {
			dst->len = cap;
			kme_fail(err, KME_E_PARSE, "key container: key of %s is not strict base64",
			         ids);
			goto out;
		}
		if (dst->len == 0 || dst->len > KME_KEY_MAX_BYTES ||
		    (want_bytes && dst->len != want_bytes)) {
			kme_fail(err, KME_E_PARSE,
			         "key container: key %s is %zu bytes, expected %zu", ids, dst->len,
			         want_bytes);
			goto out;
		}
	}
	if (want_bytes == 0) {
		for (size_t i = 1; i < n; i++)
			if (out->k[i].len != out->k[0].len) {
				kme_fail(err, KME_E_PARSE, "key container: keys of unequal length");
				goto out;
			}
	}
	rc = 0;
out:
	json_decref(j);
	if (rc)
		kme_keys_free(out);
	return rc;
}

void kme_excerpt(char *dst, size_t cap, const char *body, size_t len)
{
	if (cap == 0)
		return;
	size_t o = 0;
	bool space = false;
	for (size_t i = 0; i < len && o + 4 < cap; i++) {
		unsigned char c = (unsigned char)body[i];
		if (isspace(c)) {
			space = o > 0;
			continue;
		}
		if (space)
			dst[o++] = ' ';
		space = false;
		dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (o + 4 >= cap && o >= 3)
		memcpy(dst + o - 3, "...", 3);
	dst[o] = 0;
}

void kme_parse_error_reply(long status, const char *ctype, const char *body, size_t len,
                           struct kme_error *err)
{
	err->http_status = status;
	err->message[0] = err->details[0] = 0;
	switch (status) {
	case 400:
		err->code = KME_E_HTTP_400;
		break;
	case 401:
		err->code = KME_E_HTTP_401;
		break;
	case 503:
		err->code = KME_E_HTTP_503;
		break;
	default:
		err->code = KME_E_HTTP;
	}
	json_t *j = len ? json_loadb(body, len, 0, NULL) : NULL;
	json_t *m = json_is_object(j) ? json_object_get(j, "message") : NULL;
	if (!json_is_string(m) && json_is_object(j))
		m = json_object_get(j, "detail"); /* FastAPI */
	if (json_is_string(m)) {
		kme_excerpt(err->message, sizeof err->message, json_string_value(m),
		            json_string_length(m));
		json_t *d = json_object_get(j, "details");
		if (d && !json_is_null(d)) {
			char *s = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
			if (s) {
				kme_excerpt(err->details, sizeof err->details, s, strlen(s));
				jfree(s);
			}
		}
	} else if (len == 0) {
		snprintf(err->message, sizeof err->message, "(empty body)");
	} else {
		char ex[96], ct[64];
		kme_excerpt(ex, sizeof ex, body, len);
		kme_excerpt(ct, sizeof ct, ctype ? ctype : "", ctype ? strlen(ctype) : 0);
		snprintf(err->message, sizeof err->message, "(%s body) %s", *ct ? ct : "untyped",
		         ex);
	}
	json_decref(j);
	snprintf(err->text, sizeof err->text, "KME replied HTTP %ld: %.220s%s%.220s", status,
	         err->message, err->details[0] ? " details " : "", err->details);
}

static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return false;
}

bool kme_msg_not_found(const char *msg)
{
	return contains_ci(msg, "not found") || contains_ci(msg, "do not exist") ||
	       contains_ci(msg, "does not exist");
}

bool kme_msg_try_later(const char *msg)
{
	return contains_ci(msg, "try again later");
}
