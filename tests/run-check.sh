#!/bin/sh
# Runs every test of `make check` and ends with one line "N passed, N failed".
#
# Each test program prints TAP-style lines ("ok N - what" / "not ok N - what");
# this script counts them. A program that exits non-zero without printing a
# "not ok" line counts as one failure, so a crash is never a silent pass.
# Usage: tests/run-check.sh BUILD_DIR
set -u
BUILD=${1:-build}
FUZZ_SMOKE_SECONDS=${FUZZ_SMOKE_SECONDS:-30}
export BUILD
passed=0
failed=0
log=$(mktemp /tmp/qkdcheck.XXXXXX)
trap 'rm -f "$log"' EXIT INT TERM

step() {
	name=$1
	shift
	echo "== $name"
	"$@" >"$log" 2>&1
	rc=$?
	cat "$log"
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^not ok ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited with status $rc"
		f=1
	fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name ran no test"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
}

export CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in "$BUILD"/san/test_*; do
	case "$t" in *.d | *.o) continue ;; esac
	step "unit $(basename "$t") (ASan+UBSan)" "$t"
done
step "module layering" sh tests/layering.sh
step "golden captures" sh tests/golden/check.sh "$BUILD"
for t in tests/integration/test_*.sh; do
	[ -f "$t" ] || continue
	step "integration $(basename "$t" .sh)" sh "$t" "$BUILD"
done
for f in "$BUILD"/fuzz/*; do
	[ -x "$f" ] || continue
	step "fuzz smoke $(basename "$f") ${FUZZ_SMOKE_SECONDS}s" \
		sh tests/fuzz/run.sh "$f" "$FUZZ_SMOKE_SECONDS"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
