# tests/faults: the fault matrix (issue 6 §2, docs/reliability.md "Fault matrix").
# `make check` runs the reduced matrix (tests/integration/test_faults.sh);
# `make faults` runs the full one and writes its figures to $(BUILD)/faults/.
FAULTS_ARGS ?=

.PHONY: faults
faults: all
	@mkdir -p $(BUILD)/faults
	/usr/bin/python3 tests/faults/matrix.py --full --build $(BUILD) \
	  --json $(BUILD)/faults/results.json --markdown $(BUILD)/faults/results.md $(FAULTS_ARGS)
	@echo "results: $(BUILD)/faults/results.md (table for docs/reliability.md), $(BUILD)/faults/results.json"
