# kme: the ETSI GS QKD 014 client (libkme), the simulator qkdlink-kmesim, the
# operator tool qkdlink-kme, their tests, fuzz target and benchmark.

KME_SRC     := kme/kme_parse.c kme/kme_client.c
KME_PARSE   := kme/kme_parse.c
KMESIM_SRC  := kme/sim/kmesim.c
LDLIBS_KME  := $(shell pkg-config --libs libcurl jansson libevent) -lssl -lcrypto -lpthread
LDLIBS_KMESIM := $(shell pkg-config --libs jansson libevent libevent_openssl) -lssl -lcrypto

BINS  += $(BUILD)/qkdlink-kme $(BUILD)/qkdlink-kmesim
TOOLS += $(BUILD)/kme-itest $(BUILD)/bench-kme
MAN_PAGES += docs/man/qkdlink-kme.1 docs/man/qkdlink-kmesim.1

$(BUILD)/libkme.a: $(call obj,$(KME_SRC))
	ar rcs $@ $^

$(BUILD)/qkdlink-kme: $(call obj,kme/tool.c) $(BUILD)/libkme.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_KME)

$(BUILD)/qkdlink-kmesim: $(call obj,$(KMESIM_SRC))
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_KMESIM)

$(BUILD)/kme-itest: $(call obj,tests/integration/kme_itest.c) $(BUILD)/libkme.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_KME)

# the integration test runs this one under ASan+UBSan
$(BUILD)/san/kme-itest: $(call san_obj,tests/integration/kme_itest.c $(KME_SRC))
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS_KME)
TOOLS += $(BUILD)/san/kme-itest

# ... and the simulator too (a sanitizer report fails the test)
$(BUILD)/san/qkdlink-kmesim: $(call san_obj,$(KMESIM_SRC))
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS_KMESIM)
TOOLS += $(BUILD)/san/qkdlink-kmesim

$(BUILD)/bench-kme: $(call obj,tests/bench/bench_kme.c) $(BUILD)/libkme.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_KME)

UNIT_TESTS += $(BUILD)/san/test_kme
UNIT_SRC_kme  := $(KME_SRC)
UNIT_LIBS_kme := $(LDLIBS_KME)

FUZZ_TARGETS += fuzz_kme
FUZZ_SRC_fuzz_kme  := $(KME_PARSE)
FUZZ_LIBS_fuzz_kme := -ljansson -lcrypto -lpthread
