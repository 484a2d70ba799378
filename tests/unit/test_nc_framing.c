/*
 * test_nc_framing.c - the RFC 6242 decoder against canned byte streams, fed
 * split at every offset (and byte by byte), every framing violation class, the
 * size limit, and encoder round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nc_framing.h"

#define MAXMSGS 8

/* Feeds STREAM in pieces cut at the offsets in CUTS (sorted); collects the
 * messages. Returns the number of messages, or -1 on a framing error. */
static int feed_split(enum nc_framing mode, size_t max, const char *stream, size_t len,
                      const size_t *cuts, size_t ncuts, char msgs[MAXMSGS][512])
{
	struct nc_framer f;
	assert_int_equal(nc_framer_init(&f, mode, max), 0);
	int n = 0;
	size_t start = 0;
	for (size_t c = 0; c <= ncuts; c++) {
		size_t end = c < ncuts ? cuts[c] : len;
		const char *p = stream + start;
		size_t left = end - start;
		while (left > 0) {
			size_t used;
			enum nc_feed r = nc_framer_feed(&f, p, left, &used);
			assert_true(used <= left);
			p += used;
			left -= used;
			if (r == NC_FEED_ERR) {
				nc_framer_free(&f);
				return -1;
			}
			if (r == NC_FEED_MSG) {
				size_t ml;
				const char *m = nc_framer_msg(&f, &ml);
				assert_non_null(m);
				assert_int_equal(strlen(m), ml);
				assert_true(n < MAXMSGS && ml < 512);
				memcpy(msgs[n++], m, ml + 1);
				nc_framer_next(&f);
			}
		}
		start = end;
	}
	nc_framer_free(&f);
	return n;
}

/* every single split point and byte by byte give the same messages */
static void expect_everywhere(enum nc_framing mode, const char *stream, int nmsg,
                              const char *const *want)
{
	size_t len = strlen(stream);
	char msgs[MAXMSGS][512];
	for (size_t cut = 0; cut <= len; cut++) {
		int n = feed_split(mode, 0, stream, len, &cut, 1, msgs);
		assert_int_equal(n, nmsg);
		for (int i = 0; i < n; i++)
			assert_string_equal(msgs[i], want[i]);
	}
	/* two cuts at every pair of offsets, for short streams */
	if (len <= 120)
		for (size_t a = 0; a <= len; a++)
			for (size_t b = a; b <= len; b++) {
				size_t cuts[2] = {a, b};
				int n = feed_split(mode, 0, stream, len, cuts, 2, msgs);
				assert_int_equal(n, nmsg);
				for (int i = 0; i < n; i++)
					assert_string_equal(msgs[i], want[i]);
			}
	size_t *all = malloc(len * sizeof *all);
	assert_non_null(all);
	for (size_t i = 0; i < len; i++)
		all[i] = i;
	int n = feed_split(mode, 0, stream, len, all, len, msgs);
	free(all);
	assert_int_equal(n, nmsg);
	for (int i = 0; i < n; i++)
		assert_string_equal(msgs[i], want[i]);
}

/* a framing error wherever the stream is split */
static void expect_error_everywhere(enum nc_framing mode, size_t max, const char *stream)
{
	size_t len = strlen(stream);
	char msgs[MAXMSGS][512];
	for (size_t cut = 0; cut <= len; cut++)
		assert_int_equal(feed_split(mode, max, stream, len, &cut, 1, msgs), -1);
}

static void test_eom_one(void **state)
{
	(void)state;
	const char *want[] = {"<rpc-reply message-id=\"101\"><ok/></rpc-reply>"};
	expect_everywhere(NC_FRAMING_EOM, "<rpc-reply message-id=\"101\"><ok/></rpc-reply>]]>]]>",
	                  1, want);
}

static void test_eom_two_and_whitespace(void **state)
{
	(void)state;
	/* netconfd puts a newline after the delimiter; "]]>" alone is data */
	const char *want[] = {"<a>]]></a>", "<b>]]>]]</b>"};
	expect_everywhere(NC_FRAMING_EOM, "\n <a>]]></a>]]>]]>\n\r\n<b>]]>]]</b>]]>]]>", 2, want);
}

static void test_eom_incomplete(void **state)
{
	(void)state;
	const char *s = "<a/>]]>]]";
	char msgs[MAXMSGS][512];
	assert_int_equal(feed_split(NC_FRAMING_EOM, 0, s, strlen(s), NULL, 0, msgs), 0);
}

static void test_eom_limit(void **state)
{
	(void)state;
	char msgs[MAXMSGS][512];
	/* exactly the limit passes, one more fails */
	const char *ok = "0123456789]]>]]>";
	assert_int_equal(feed_split(NC_FRAMING_EOM, 10, ok, strlen(ok), NULL, 0, msgs), 1);
	expect_error_everywhere(NC_FRAMING_EOM, 10, "0123456789A]]>]]>");
}

static void test_chunked_one(void **state)
{
	(void)state;
	const char *want[] = {"<rpc-reply message-id=\"201\"><ok/></rpc-reply>"};
	expect_everywhere(NC_FRAMING_CHUNKED,
	                  "\n#45\n<rpc-reply message-id=\"201\"><ok/></rpc-reply>\n##\n", 1, want);
}

static void test_chunked_many_chunks(void **state)
{
	(void)state;
	/* chunks may split anywhere, even inside a tag; data may hold "\n##\n" and '#' */
	const char *want[] = {"<r>\n##\n#1</r>", "x"};
	expect_everywhere(NC_FRAMING_CHUNKED,
	                  "\n#2\n<r\n#1\n>\n#8\n\n##\n#1</\n#2\nr>\n##\n\n#1\nx\n##\n", 2, want);
}

static void test_chunked_violations(void **state)
{
	(void)state;
	static const char *bad[] = {
	    "#4\nabcd\n##\n",          /* no LF before '#' */
	    "\n#0\n\n##\n",            /* size 0 */
	    "\n#04\nabcd\n##\n",       /* leading zero */
	    "\n#12345678901\nx\n##\n", /* 11 digits */
	    "\n#4294967296\nx\n##\n",  /* over 2^32-1 */
	    "\n#4x\nabcd\n##\n",       /* non-digit in size */
	    "\n#4\nabcdX\n##\n",       /* garbage between chunks */
	    "\n#4\nabcd\n\n##\n",      /* extra LF */
	    "\n#4\nabcd\n##X",         /* no LF after ## */
	    "\n##\n",                  /* a message without chunks */
	    "\n#-1\nx\n##\n",          /* sign */
	    "\n# 4\nabcd\n##\n",       /* space */
	    "\r\n#4\nabcd\n##\n",      /* CRLF */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_error_everywhere(NC_FRAMING_CHUNKED, 0, bad[i]);
}

static void test_chunked_limit(void **state)
{
	(void)state;
	char msgs[MAXMSGS][512];
	const char *ok = "\n#5\n01234\n#5\n56789\n##\n";
	assert_int_equal(feed_split(NC_FRAMING_CHUNKED, 10, ok, strlen(ok), NULL, 0, msgs), 1);
	assert_string_equal(msgs[0], "0123456789");
	/* refused as soon as a chunk header announces too much, before any data */
	expect_error_everywhere(NC_FRAMING_CHUNKED, 10, "\n#5\n01234\n#6\n");
	expect_error_everywhere(NC_FRAMING_CHUNKED, 10, "\n#4294967295\n");
}

static void test_error_is_final(void **state)
{
	(void)state;
	struct nc_framer f;
	assert_int_equal(nc_framer_init(&f, NC_FRAMING_CHUNKED, 0), 0);
	size_t used;
	assert_int_equal(nc_framer_feed(&f, "X", 1, &used), NC_FEED_ERR);
	assert_true(strlen(f.err) > 0);
	assert_int_equal(nc_framer_feed(&f, "\n#1\na\n##\n", 9, &used), NC_FEED_ERR);
	assert_int_equal(used, 0);
	nc_framer_free(&f);
}

static void test_mode_switch(void **state)
{
	(void)state;
	/* the hello in end-of-message framing, then chunked, as in a 1.1 session */
	struct nc_framer f;
	assert_int_equal(nc_framer_init(&f, NC_FRAMING_EOM, 0), 0);
	const char *s = "<hello/>]]>]]>\n#4\n<a/>\n##\n";
	size_t used, len = strlen(s);
	assert_int_equal(nc_framer_feed(&f, s, len, &used), NC_FEED_MSG);
	/* no switching with a message pending */
	assert_int_equal(nc_framer_set_mode(&f, NC_FRAMING_CHUNKED), -1);
	nc_framer_next(&f);
	assert_int_equal(nc_framer_set_mode(&f, NC_FRAMING_CHUNKED), 0);
	size_t used2;
	assert_int_equal(nc_framer_feed(&f, s + used, len - used, &used2), NC_FEED_MSG);
	assert_string_equal(nc_framer_msg(&f, NULL), "<a/>");
	assert_int_equal(used + used2, len);
	/* half a message: no switching */
	nc_framer_next(&f);
	assert_int_equal(nc_framer_feed(&f, "\n#4\n<a", 6, &used), NC_FEED_MORE);
	assert_int_equal(nc_framer_set_mode(&f, NC_FRAMING_EOM), -1);
	nc_framer_free(&f);
}

static void test_encode_roundtrip(void **state)
{
	(void)state;
	const char *msg = "<rpc message-id=\"1\"><lock/></rpc>";
	for (int m = 0; m < 2; m++) {
		char *out;
		size_t olen;
		assert_int_equal(nc_frame_encode((enum nc_framing)m, msg, strlen(msg), &out, &olen),
		                 0);
		char msgs[MAXMSGS][512];
		assert_int_equal(feed_split((enum nc_framing)m, 0, out, olen, NULL, 0, msgs), 1);
		assert_string_equal(msgs[0], msg);
		if (m == NC_FRAMING_CHUNKED)
			assert_memory_equal(out, "\n#33\n", 5);
		free(out);
	}
	char *out;
	size_t olen;
	/* a message holding the delimiter cannot be sent in 1.0 framing */
	assert_int_equal(nc_frame_encode(NC_FRAMING_EOM, "a]]>]]>b", 8, &out, &olen), -1);
	assert_null(out);
	assert_int_equal(nc_frame_encode(NC_FRAMING_CHUNKED, "", 0, &out, &olen), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_eom_one),
	    cmocka_unit_test(test_eom_two_and_whitespace),
	    cmocka_unit_test(test_eom_incomplete),
	    cmocka_unit_test(test_eom_limit),
	    cmocka_unit_test(test_chunked_one),
	    cmocka_unit_test(test_chunked_many_chunks),
	    cmocka_unit_test(test_chunked_violations),
	    cmocka_unit_test(test_chunked_limit),
	    cmocka_unit_test(test_error_is_final),
	    cmocka_unit_test(test_mode_switch),
	    cmocka_unit_test(test_encode_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
