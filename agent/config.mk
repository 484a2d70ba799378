# agent: configuration loader (agent/config.c), qkdlinkd-check, its tests and
# fuzz target. The daemon's own fragment adds qkdlinkd and qkdlinkctl.


AGENT_CONFIG_SRC := agent/config.c
AGENT_CONFIG_DEPS := $(PROTO_CODEC)
LDLIBS_CONFIG := $(shell pkg-config --libs jansson) -lcrypto

TOOLS += $(BUILD)/qkdlinkd-check
MAN5_PAGES += docs/man/qkdlinkd.conf.5

$(BUILD)/qkdlinkd-check: $(call obj,agent/check_config.c $(AGENT_CONFIG_SRC)) \
                         $(BUILD)/libqkdcodec.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_CONFIG)

UNIT_TESTS += $(BUILD)/san/test_config
UNIT_SRC_config  := $(AGENT_CONFIG_SRC) $(AGENT_CONFIG_DEPS)
UNIT_LIBS_config := $(LDLIBS_CONFIG)

FUZZ_TARGETS += fuzz_config
FUZZ_SRC_fuzz_config  := $(AGENT_CONFIG_SRC) $(AGENT_CONFIG_DEPS)
FUZZ_LIBS_fuzz_config := $(LDLIBS_CONFIG)
