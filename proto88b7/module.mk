# proto88b7: the key-ID wire format, the L2 port, qkd88b7, golden captures.

PROTO_CODEC := proto88b7/frame.c proto88b7/replay.c proto88b7/secret.c proto88b7/rx.c \
               proto88b7/epoch.c proto88b7/errf.c
PROTO_PORT  := proto88b7/port.c
LDLIBS_PROTO := -lcrypto
LDLIBS_PORT  := -lnet -lpcap

BINS  += $(BUILD)/qkd88b7
TOOLS += $(BUILD)/golden-gen $(BUILD)/bench-codec $(BUILD)/l2-latency
MAN_PAGES += docs/man/qkd88b7.1

# the pure codec (no libpcap/libnet) and the whole module with the L2 port
$(BUILD)/libqkdcodec.a: $(call obj,$(PROTO_CODEC))
	ar rcs $@ $^

$(BUILD)/libproto88b7.a: $(call obj,$(PROTO_CODEC) $(PROTO_PORT))
	ar rcs $@ $^

$(BUILD)/qkd88b7: $(call obj,proto88b7/qkd88b7.c) $(BUILD)/libproto88b7.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_PORT) $(LDLIBS_PROTO)

$(BUILD)/golden-gen: $(call obj,tests/golden/gen.c) $(BUILD)/libqkdcodec.a
	$(CC) $(CFLAGS) -o $@ $^ -lpcap $(LDLIBS_PROTO)

$(BUILD)/bench-codec: $(call obj,tests/bench/bench_codec.c) $(BUILD)/libqkdcodec.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_PROTO)

$(BUILD)/l2-latency: $(call obj,tests/bench/l2_latency.c) $(BUILD)/libproto88b7.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_PORT) $(LDLIBS_PROTO)

UNIT_TESTS += $(BUILD)/san/test_frame $(BUILD)/san/test_replay $(BUILD)/san/test_rx \
              $(BUILD)/san/test_secret $(BUILD)/san/test_epoch
UNIT_SRC_frame  := $(PROTO_CODEC)
UNIT_SRC_replay := $(PROTO_CODEC)
UNIT_SRC_rx     := $(PROTO_CODEC)
UNIT_SRC_secret := $(PROTO_CODEC)
UNIT_SRC_epoch  := $(PROTO_CODEC)
UNIT_LIBS_frame  := -lcrypto
UNIT_LIBS_replay := -lcrypto
UNIT_LIBS_rx     := -lcrypto
UNIT_LIBS_secret := -lcrypto
UNIT_LIBS_epoch  := -lcrypto

FUZZ_TARGETS += fuzz_frame
FUZZ_SRC_fuzz_frame  := $(PROTO_CODEC)
FUZZ_LIBS_fuzz_frame := -lcrypto
