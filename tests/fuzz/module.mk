# tests/fuzz: fuzz targets for parsers whose module fragment does not list
# them (the control socket of agent/control.c). Corpora in
# tests/fuzz/corpus/NAME, dictionaries in tests/fuzz/NAME.dict (run.sh).

FUZZ_TARGETS += fuzz_control
FUZZ_SRC_fuzz_control  := agent/control.c $(PROTO_CODEC)
FUZZ_LIBS_fuzz_control := $(shell pkg-config --libs jansson) -lcrypto
