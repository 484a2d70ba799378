/*
 * nc_framing.c - RFC 6242 framing: a bounded decoder fed by partial reads.
 */
#include "nc_framing.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* chunked decoder states: what the next byte must be */
enum {
	CH_LF,         /* the LF that starts a chunk header or the end marker */
	CH_HASH,       /* the '#' after it */
	CH_SIZE_FIRST, /* '1'..'9' (a chunk) or '#' (end of chunks) */
	CH_SIZE,       /* more digits, or the LF that ends the size */
	CH_DATA,       /* chunk_left bytes of data */
	CH_END_LF,     /* the LF that ends "\n##\n" */
};

#define CHUNK_DIGITS_MAX 10 /* 4294967295, RFC 6242 section 4.2 */
#define CHUNK_SIZE_MAX 4294967295ull

static enum nc_feed fail(struct nc_framer *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->err, sizeof f->err, fmt, ap);
	va_end(ap);
	f->failed = 1;
	return NC_FEED_ERR;
}

int nc_framer_init(struct nc_framer *f, enum nc_framing mode, size_t max)
{
	memset(f, 0, sizeof *f);
	f->mode = mode;
	f->max = max ? max : NC_MSG_MAX_DEFAULT;
	f->cap = 4096;
	f->buf = malloc(f->cap);
	if (f->buf == NULL)
		return -1;
	f->state = CH_LF;
	return 0;
}

void nc_framer_free(struct nc_framer *f)
{
	free(f->buf);
	memset(f, 0, sizeof *f);
}

int nc_framer_set_mode(struct nc_framer *f, enum nc_framing mode)
{
	if (f->len != 0 || f->ready || f->state != CH_LF)
		return -1;
	f->mode = mode;
	return 0;
}

/* room for N more bytes plus the final NUL; the caller has checked the limit */
static int reserve(struct nc_framer *f, size_t n)
{
	if (f->len + n + 1 <= f->cap)
		return 0;
	size_t cap = f->cap;
	while (cap < f->len + n + 1)
		cap *= 2;
	unsigned char *b = realloc(f->buf, cap);
	if (b == NULL)
		return -1;
	f->buf = b;
	f->cap = cap;
	return 0;
}

static enum nc_feed feed_eom(struct nc_framer *f, const unsigned char *p, size_t len, size_t *used)
{
	size_t i = 0;
	if (f->len == 0) /* whitespace between messages */
		while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
			i++;
	while (i < len) {
		/* copy up to the next '>' at once: only a '>' can complete "]]>]]>" */
		const unsigned char *gt = memchr(p + i, '>', len - i);
		size_t n = gt ? (size_t)(gt - (p + i)) + 1 : len - i;
		if (f->len + n > f->max + NC_EOM_LEN)
			return fail(f, "message longer than %zu bytes", f->max);
		if (reserve(f, n) != 0)
			return fail(f, "out of memory assembling a message");
		memcpy(f->buf + f->len, p + i, n);
		f->len += n;
		i += n;
		if (gt && f->len >= NC_EOM_LEN &&
		    memcmp(f->buf + f->len - NC_EOM_LEN, NC_EOM, NC_EOM_LEN) == 0) {
			f->len -= NC_EOM_LEN;
			f->buf[f->len] = '\0';
			f->ready = 1;
			*used = i;
			return NC_FEED_MSG;
		}
	}
	*used = i;
	return NC_FEED_MORE;
}

static enum nc_feed feed_chunked(struct nc_framer *f, const unsigned char *p, size_t len,
                                 size_t *used)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = p[i];
		switch (f->state) {
		case CH_LF:
			if (c != '\n')
				return fail(f, "chunked framing: expected LF, got 0x%02x", c);
			f->state = CH_HASH;
			i++;
			break;
		case CH_HASH:
			if (c != '#')
				return fail(f, "chunked framing: expected '#', got 0x%02x", c);
			f->state = CH_SIZE_FIRST;
			i++;
			break;
		case CH_SIZE_FIRST:
			if (c == '#') {
				f->state = CH_END_LF;
			} else if (c >= '1' && c <= '9') {
				f->chunk_left = (uint64_t)(c - '0');
				f->digits = 1;
				f->state = CH_SIZE;
			} else {
				return fail(f, "chunked framing: bad chunk size start 0x%02x", c);
			}
			i++;
			break;
		case CH_SIZE:
			if (c == '\n') {
				if (f->chunk_left > CHUNK_SIZE_MAX)
					return fail(f, "chunked framing: chunk size over 2^32-1");
				if (f->len + f->chunk_left > f->max)
					return fail(f, "message longer than %zu bytes", f->max);
				f->state = CH_DATA;
			} else if (c >= '0' && c <= '9') {
				if (++f->digits > CHUNK_DIGITS_MAX)
					return fail(f, "chunked framing: chunk size too long");
				f->chunk_left = f->chunk_left * 10 + (uint64_t)(c - '0');
			} else {
				return fail(f, "chunked framing: bad chunk size byte 0x%02x", c);
			}
			i++;
			break;
		case CH_DATA: {
			size_t n = len - i;
			if (n > f->chunk_left)
				n = (size_t)f->chunk_left;
			if (reserve(f, n) != 0)
				return fail(f, "out of memory assembling a message");
			memcpy(f->buf + f->len, p + i, n);
			f->len += n;
			f->chunk_left -= n;
			i += n;
			if (f->chunk_left == 0)
				f->state = CH_LF;
			break;
		}
		case CH_END_LF:
			if (c != '\n')
				return fail(
				    f, "chunked framing: expected LF after \"##\", got 0x%02x", c);
			i++;
			if (f->len == 0)
				return fail(f, "chunked framing: message without a chunk");
			f->buf[f->len] = '\0';
			f->ready = 1;
			f->state = CH_LF;
			*used = i;
			return NC_FEED_MSG;
		default:
			return fail(f, "chunked framing: internal state");
		}
	}
	*used = i;
	return NC_FEED_MORE;
}

enum nc_feed nc_framer_feed(struct nc_framer *f, const void *data, size_t len, size_t *used)
{
	*used = 0;
	if (f->failed)
		return NC_FEED_ERR;
	if (f->ready)
		return NC_FEED_MSG;
	if (f->mode == NC_FRAMING_EOM)
		return feed_eom(f, data, len, used);
	return feed_chunked(f, data, len, used);
}

const char *nc_framer_msg(const struct nc_framer *f, size_t *len)
{
	if (!f->ready)
		return NULL;
	if (len)
		*len = f->len;
	return (const char *)f->buf;
}

void nc_framer_next(struct nc_framer *f)
{
	if (f->buf && f->len)
		memset(f->buf, 0, f->len); /* messages may hold key material */
	f->len = 0;
	f->ready = 0;
	f->state = CH_LF;
}

int nc_frame_encode(enum nc_framing mode, const char *msg, size_t len, char **out, size_t *outlen)
{
	*out = NULL;
	*outlen = 0;
	char hdr[32];
	int h = 0;
	size_t total;
	if (mode == NC_FRAMING_EOM) {
		for (size_t i = 0; i + NC_EOM_LEN <= len; i++)
			if (memcmp(msg + i, NC_EOM, NC_EOM_LEN) == 0)
				return -1;
		total = len + NC_EOM_LEN;
	} else {
		if (len == 0 || len > CHUNK_SIZE_MAX)
			return -1;
		h = snprintf(hdr, sizeof hdr, "\n#%zu\n", len);
		total = (size_t)h + len + 4;
	}
	char *b = malloc(total);
	if (b == NULL)
		return -1;
	if (mode == NC_FRAMING_EOM) {
		memcpy(b, msg, len);
		memcpy(b + len, NC_EOM, NC_EOM_LEN);
	} else {
		memcpy(b, hdr, (size_t)h);
		memcpy(b + h, msg, len);
		memcpy(b + h + len, "\n##\n", 4);
	}
	*out = b;
	*outlen = total;
	return 0;
}
