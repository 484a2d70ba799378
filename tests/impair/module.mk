# tests/impair: qkdlink-impair, the 0x88B7 impairment relay for the lab and the
# reliability tests (docs/reliability.md). A test tool: built by `make all`,
# never installed.

TOOLS += $(BUILD)/qkdlink-impair

$(BUILD)/qkdlink-impair: $(call obj,tests/impair/impair.c)
	$(CC) $(CFLAGS) -o $@ $^ -lnet -lpcap -lm
