# tests/bench: benchmarks too long for `make bench`. `make bench-scale`: the
# agents' cost against the number of channels (tests/bench/scale.sh, about
# five minutes per channel count); SCALE_CHANNELS (default 10 100 300 1000)
# and the SCALE_* settings of scale.sh pass through the environment.

SCALE_CHANNELS ?= 10 100 300 1000

.PHONY: bench-scale
bench-scale: all
	sh tests/bench/scale.sh $(BUILD) $(SCALE_CHANNELS)
