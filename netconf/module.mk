# netconf: NETCONF over SSH (libssh2 + libxml2), framing, RPCs, the MACsec
# configuration builder, the session worker thread, qkdlink-netconf.

NC_PURE := netconf/nc_framing.c netconf/nc_error.c netconf/nc_xml.c netconf/nc_macsec.c
NC_SRC  := $(NC_PURE) netconf/nc_session.c netconf/nc_push.c netconf/nc_worker.c
NC_XML_CFLAGS := $(shell pkg-config --cflags libxml-2.0)
NC_XML_LIBS   := $(shell pkg-config --libs libxml-2.0)
NC_LIBS := $(shell pkg-config --libs libssh2) $(NC_XML_LIBS) -lpthread
EXTRA_CFLAGS += $(NC_XML_CFLAGS) $(shell pkg-config --cflags libssh2)

BINS  += $(BUILD)/qkdlink-netconf
TOOLS += $(BUILD)/nc-bench $(BUILD)/nc-worker-check
MAN_PAGES += docs/man/qkdlink-netconf.1

$(BUILD)/libqkdnetconf.a: $(call obj,$(NC_SRC))
	ar rcs $@ $^

$(BUILD)/qkdlink-netconf: $(call obj,netconf/qkdlink-netconf.c) $(BUILD)/libqkdnetconf.a
	$(CC) $(CFLAGS) -o $@ $^ $(NC_LIBS)

$(BUILD)/nc-bench: $(call obj,tests/bench/bench_netconf.c) $(BUILD)/libqkdnetconf.a
	$(CC) $(CFLAGS) -o $@ $^ $(NC_LIBS)

$(BUILD)/nc-worker-check: $(call obj,tests/integration/netconf/nc_worker_check.c) \
                         $(BUILD)/libqkdnetconf.a
	$(CC) $(CFLAGS) -o $@ $^ $(NC_LIBS)

# the same under ASan: LeakSanitizer checks that dropped sessions are freed
TOOLS += $(BUILD)/san/nc-worker-check
$(BUILD)/san/nc-worker-check: $(call san_obj,tests/integration/netconf/nc_worker_check.c $(NC_SRC))
	$(CC) $(SAN_FLAGS) -o $@ $^ $(NC_LIBS)

UNIT_TESTS += $(BUILD)/san/test_nc_framing $(BUILD)/san/test_nc_xml $(BUILD)/san/test_nc_worker
UNIT_SRC_nc_framing  := netconf/nc_framing.c
UNIT_SRC_nc_xml      := $(NC_PURE)
UNIT_LIBS_nc_xml     := $(NC_XML_LIBS)
UNIT_SRC_nc_worker   := $(NC_SRC)
UNIT_LIBS_nc_worker  := $(NC_LIBS)

FUZZ_TARGETS += fuzz_nc_framing fuzz_nc_reply
FUZZ_SRC_fuzz_nc_framing  := netconf/nc_framing.c
FUZZ_SRC_fuzz_nc_reply    := $(NC_PURE)
FUZZ_LIBS_fuzz_nc_reply   := $(NC_XML_LIBS)
