# agent: the per-channel rotation state machine, the state store, the CKN/CAK
# derivation (pure parts of qkdlinkd), their unit tests and fuzz target.

AGENT_ROT_SRC := agent/rotation.c agent/state.c agent/keyderive.c
AGENT_ROT_LIBS := $(shell pkg-config --libs jansson) -lcrypto

UNIT_TESTS += $(BUILD)/san/test_rotation $(BUILD)/san/test_state $(BUILD)/san/test_keyderive
UNIT_SRC_rotation  := $(AGENT_ROT_SRC) $(PROTO_CODEC)
UNIT_LIBS_rotation := $(AGENT_ROT_LIBS)
UNIT_SRC_state     := agent/state.c $(PROTO_CODEC)
UNIT_LIBS_state    := $(AGENT_ROT_LIBS)
UNIT_SRC_keyderive := agent/keyderive.c
UNIT_LIBS_keyderive := -lcrypto

FUZZ_TARGETS += fuzz_state
FUZZ_SRC_fuzz_state  := agent/state.c $(PROTO_CODEC)
FUZZ_LIBS_fuzz_state := $(AGENT_ROT_LIBS)
