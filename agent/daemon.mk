# agent: the daemon qkdlinkd and its control client qkdlinkctl, their man
# pages and unit tests (the pure parts: tests/unit/test_control.c).

AGENTD_SRC := agent/main.c agent/daemon.c agent/log.c agent/control.c agent/config.c \
              agent/rotation.c agent/state.c agent/keyderive.c
AGENTD_LIBS := $(shell pkg-config --libs libevent jansson libcurl libssh2 libxml-2.0) \
               -lnet -lpcap -lssl -lcrypto -lpthread
CTL_SRC := agent/qkdlinkctl.c agent/control.c
CTL_LIBS := $(shell pkg-config --libs jansson) -lcrypto

BINS += $(BUILD)/qkdlinkd $(BUILD)/qkdlinkctl
MAN_PAGES += docs/man/qkdlinkd.1 docs/man/qkdlinkctl.1

$(BUILD)/qkdlinkd: $(call obj,$(AGENTD_SRC)) $(BUILD)/libkme.a $(BUILD)/libqkdnetconf.a \
                   $(BUILD)/libproto88b7.a
	$(CC) $(CFLAGS) -o $@ $^ $(AGENTD_LIBS)

$(BUILD)/qkdlinkctl: $(call obj,$(CTL_SRC)) $(BUILD)/libqkdcodec.a
	$(CC) $(CFLAGS) -o $@ $^ $(CTL_LIBS)

UNIT_TESTS += $(BUILD)/san/test_control
UNIT_SRC_control  := agent/control.c $(PROTO_CODEC)
UNIT_LIBS_control := $(shell pkg-config --libs jansson) -lcrypto
