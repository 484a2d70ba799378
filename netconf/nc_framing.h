/*
 * nc_framing.h - NETCONF over SSH message framing (RFC 6242), as a pure codec.
 *
 * Two framings: base:1.0 end-of-message ("]]>]]>" after each message) and
 * base:1.1 chunked ("\n#SIZE\n" DATA ... "\n##\n"). The decoder is fed whatever
 * a read returned (any split, one byte at a time if need be), assembles one
 * message at a time into its own bounded buffer, and refuses anything the RFC
 * does not allow: a chunk size of 0, with a leading zero or over 10 digits,
 * bytes between chunks, an empty chunked message, a message over the size
 * limit. No I/O, no global state; an error is final for the stream (the
 * session must be dropped, there is no way to resynchronise safely).
 */
#ifndef NC_FRAMING_H
#define NC_FRAMING_H

#include <stddef.h>
#include <stdint.h>

enum nc_framing { NC_FRAMING_EOM = 0, NC_FRAMING_CHUNKED = 1 };

#define NC_MSG_MAX_DEFAULT (16u * 1024 * 1024) /* largest message accepted */
#define NC_EOM "]]>]]>"
#define NC_EOM_LEN 6

enum nc_feed {
	NC_FEED_MORE = 0, /* all input consumed, no complete message yet */
	NC_FEED_MSG = 1,  /* a message is complete: nc_framer_msg(), then nc_framer_next() */
	NC_FEED_ERR = -1, /* framing violation: reason in the framer's err */
};

struct nc_framer {
	enum nc_framing mode;
	size_t max;         /* message size limit (payload bytes) */
	unsigned char *buf; /* message being assembled, NUL-terminated when complete */
	size_t len, cap;
	int state;           /* decoder state (chunked) */
	uint64_t chunk_left; /* chunked: bytes left in the current chunk / size being read */
	unsigned digits;     /* chunked: digits read of the current size */
	int ready;           /* a complete message is in buf */
	int failed;
	char err[128];
};

/* Sets up a decoder in MODE with a message limit (0: NC_MSG_MAX_DEFAULT).
 * Returns 0, or -1 if memory is short. */
int nc_framer_init(struct nc_framer *f, enum nc_framing mode, size_t max);
void nc_framer_free(struct nc_framer *f);

/* Switches framing between messages (after the hello exchange). Returns -1 if a
 * message is half assembled. */
int nc_framer_set_mode(struct nc_framer *f, enum nc_framing mode);

/* Feeds LEN bytes; *used says how many were consumed. Stops right after a
 * complete message (NC_FEED_MSG) so that the rest is fed again after
 * nc_framer_next(). In end-of-message mode whitespace before a message is
 * skipped (servers put a newline after "]]>]]>"). */
enum nc_feed nc_framer_feed(struct nc_framer *f, const void *data, size_t len, size_t *used);

/* The complete message (NUL-terminated, not including the framing). */
const char *nc_framer_msg(const struct nc_framer *f, size_t *len);

/* Forgets the delivered message and gets ready for the next one. */
void nc_framer_next(struct nc_framer *f);

/* Writes MSG framed in MODE into a new malloc'ed buffer (*out, *outlen).
 * End-of-message framing refuses a message containing "]]>]]>". Returns 0 or -1. */
int nc_frame_encode(enum nc_framing mode, const char *msg, size_t len, char **out, size_t *outlen);

#endif
