# qkdlink - top-level build. See README.md; `make help` lists the targets.
#
#   make            build everything (build/)
#   make check      install missing Debian packages, build with -Werror, run unit
#                   tests under ASan+UBSan, golden captures, dissector, integration
#                   tests and a fuzz smoke run; ends with "N passed, N failed"
#   make fuzz       run the libFuzzer targets (FUZZ_SECONDS each, default 300)
#   make bench      benchmarks, results for docs/performance.md
#   make bench-scale  agents' cost against the number of channels (~5 min per count)
#   make soak       10 channels rotating every 5 s for SOAK_MINUTES (30) under 5% loss
#   make install    PREFIX=/usr/local DESTDIR=
#   make demo       the two-site lab: two agents rotating keys live (Ctrl-C or
#                   DEMO_SECONDS=N ends it and removes everything; docs/lab.md)
#   make faults     the full fault matrix (docs/reliability.md), results in build/faults/
#
# Each module adds its sources, programs, tests and fuzz targets in its own
# module.mk, included below; this file holds the generic rules.

CC       ?= cc
CLANG    ?= clang
PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
WERROR   ?=

WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wvla $(if $(WERROR),-Werror)
CSTD     := -std=c11 -D_DEFAULT_SOURCE
CFLAGS   ?= -O2 -g
# Modules include their own headers by name; tests and the agent reach every
# module. tests/layering.sh checks that modules never include each other.
INCLUDES := -Iproto88b7 -Ikme -Inetconf -Iagent
ALL_CFLAGS = $(CSTD) $(WARN) $(CFLAGS) -fstack-protector-strong -D_FORTIFY_SOURCE=2 \
             $(INCLUDES) $(EXTRA_CFLAGS) -MMD -MP
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=undefined
FUZZ_FLAGS := $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined $(INCLUDES)
FUZZ_SECONDS ?= 300

# Filled by the module.mk files:
BINS        :=   # installed programs
TOOLS       :=   # test and benchmark programs, not installed
UNIT_TESTS  :=   # $(BUILD)/san/test_NAME from tests/unit/test_NAME.c + $(UNIT_SRC_NAME)
FUZZ_TARGETS :=  # NAME from tests/fuzz/NAME.c + $(FUZZ_SRC_NAME), linked with $(FUZZ_LIBS_NAME)
MAN_PAGES   :=   # section 1 pages
MAN5_PAGES  :=   # section 5 pages (file formats)
EXTRA_CFLAGS :=

obj     = $(patsubst %.c,$(BUILD)/%.o,$(1))
san_obj = $(patsubst %.c,$(BUILD)/san/%.o,$(1))

.PHONY: all check fuzz fuzz-build bench install uninstall demo clean deps help unit
all:

include proto88b7/module.mk
-include kme/module.mk
-include netconf/module.mk
include $(wildcard agent/*.mk)
-include tests/impair/module.mk
-include tests/bench/module.mk
-include tests/soak/module.mk
-include tests/faults/module.mk
-include tests/fuzz/module.mk

all: $(BINS) $(TOOLS)

help:
	@sed -n '2,17p' Makefile | sed 's/^# \{0,1\}//'

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(SAN_FLAGS) $(INCLUDES) $(EXTRA_CFLAGS) -MMD -MP -c $< -o $@

# ---- unit tests (cmocka) under ASan+UBSan ----
.SECONDEXPANSION:
$(BUILD)/san/test_%: $(BUILD)/san/tests/unit/test_%.o $$(call san_obj,$$(UNIT_SRC_$$*))
	$(CC) $(SAN_FLAGS) -o $@ $^ -lcmocka $(UNIT_LIBS_$*)

unit: $(UNIT_TESTS)

# ---- fuzzing (clang libFuzzer + ASan + UBSan) ----
$(BUILD)/fuzz/%: tests/fuzz/%.c $$(FUZZ_SRC_$$*)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) $(EXTRA_CFLAGS) -o $@ $< $(FUZZ_SRC_$*) $(FUZZ_LIBS_$*)

fuzz-build: $(addprefix $(BUILD)/fuzz/,$(FUZZ_TARGETS))

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  FUZZ_GROW=1 sh tests/fuzz/run.sh $(BUILD)/fuzz/$$t $(FUZZ_SECONDS) || exit 1; done

# ---- everything else ----
deps:
	sh tests/deps.sh

check: deps
	$(MAKE) WERROR=1 all unit fuzz-build
	sh tests/run-check.sh $(BUILD)

bench: all
	sh tests/bench/run.sh $(BUILD)

install: $(BINS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/qkdlink/wireshark \
	  $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 proto88b7/wireshark/qkdlink.lua $(DESTDIR)$(PREFIX)/share/qkdlink/wireshark/
	$(if $(MAN_PAGES),install -m 0644 $(MAN_PAGES) $(DESTDIR)$(PREFIX)/share/man/man1/)
	$(if $(MAN5_PAGES),install -m 0644 $(MAN5_PAGES) $(DESTDIR)$(PREFIX)/share/man/man5/)

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,$(notdir $(BINS)))
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/share/man/man1/,$(notdir $(MAN_PAGES)))
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/share/man/man5/,$(notdir $(MAN5_PAGES)))
	rm -rf $(DESTDIR)$(PREFIX)/share/qkdlink

# The lab lives in tests/lab/ (docs/lab.md); demo.sh refuses, naming what is
# missing, when the agent is not built, and always removes the lab it made.
demo: deps
	$(MAKE) all
	sh tests/lab/demo.sh $(BUILD)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
