# tests/soak: the long reliability run (issue 6 §3): `make soak`, never part
# of `make check`. SOAK_MINUTES (30), SOAK_LOSS (0.05) and the other SOAK_*
# settings of tests/soak/soak.sh pass through the environment.

.PHONY: soak
soak: all
	sh tests/soak/soak.sh $(BUILD)
