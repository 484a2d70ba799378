#!/bin/sh
# Runs one libFuzzer target for SECONDS, starting from its corpus in
# tests/fuzz/corpus/NAME (kept in git) plus the frames of the golden captures,
# with the dictionary tests/fuzz/NAME.dict when there is one. Inputs are cut
# at 1600 bytes unless tests/fuzz/NAME.options says "max_len = N".
# With FUZZ_GROW=1 (make fuzz) new inputs are added to the corpus; otherwise
# (the smoke run of make check) they go to a temporary folder, so a test run
# never changes the tree. A crash leaves its input in tests/fuzz/.
# Campaigns (docs/reliability.md): FUZZ_RUNS=N runs N executions instead of
# SECONDS, and FUZZ_MERGE=1 then minimises corpus + new inputs with -merge=1
# back into tests/fuzz/corpus/NAME (only inputs that add coverage stay).
# FUZZ_KEEP_GOING=1 (a campaign on a target with a known open bug) fuzzes in
# fork mode past crashes: each one is saved under tests/fuzz/ and counted,
# and the run still ends "not ok" if there was any.
# Prints a TAP line. Usage: tests/fuzz/run.sh BINARY SECONDS
set -u
bin=$1
secs=$2
name=$(basename "$bin")
corpus=tests/fuzz/corpus/$name
seeds=$(mktemp -d /tmp/qkdseed.XXXXXX)
scratch=$(mktemp -d /tmp/qkdnew.XXXXXX)
merged=$(mktemp -d /tmp/qkdmrg.XXXXXX)
log=$(mktemp /tmp/qkdfuzz.XXXXXX)
trap 'rm -rf "$seeds" "$scratch" "$merged" "$log"' EXIT INT TERM
mkdir -p "$corpus"
# one seed file per frame of every golden capture (classic pcap: 24-octet file
# header, then 16-octet record headers)
for p in pcaps/*.pcap; do
	[ -f "$p" ] || continue
	/usr/bin/python3 - "$p" "$seeds" <<'PY'
import struct, sys, os
data = open(sys.argv[1], 'rb').read()
off, i = 24, 0
base = os.path.basename(sys.argv[1])
while off + 16 <= len(data):
    incl = struct.unpack('<I', data[off + 8:off + 12])[0]
    frame = data[off + 16:off + 16 + incl]
    open(os.path.join(sys.argv[2], f"{base}.{i}"), 'wb').write(frame)
    off += 16 + incl
    i += 1
PY
done
dict=
[ -f "tests/fuzz/$name.dict" ] && dict=-dict=tests/fuzz/$name.dict
maxlen=1600
if [ -f "tests/fuzz/$name.options" ]; then
	v=$(sed -n 's/^max_len *= *\([0-9][0-9]*\) *$/\1/p' "tests/fuzz/$name.options")
	[ -n "$v" ] && maxlen=$v
fi
limit=-max_total_time=$secs
[ -n "${FUZZ_RUNS:-}" ] && limit=-runs=$FUZZ_RUNS
fork=
[ "${FUZZ_KEEP_GOING:-0}" = 1 ] && fork="-fork=1 -ignore_crashes=1"
crashes_before=$(ls tests/fuzz | grep -c '^crash-')
# libFuzzer writes new inputs into the first folder it is given
new=$scratch
[ "${FUZZ_GROW:-0}" = 1 ] && [ "${FUZZ_MERGE:-0}" != 1 ] && new=
before=$(ls "$corpus" | wc -l)
start=$(date +%s)
"$bin" $limit $fork -max_len=$maxlen -timeout=10 -rss_limit_mb=2048 $dict \
	-artifact_prefix=tests/fuzz/ -print_final_stats=1 $new "$corpus" "$seeds" >"$log" 2>&1
rc=$?
wall=$(($(date +%s) - start))
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
if [ -n "$fork" ]; then
	execs=$(grep -o 'fuzzed for [0-9]* iterations' "$log" | tr -dc 0-9)
	[ -n "$execs" ] || execs=$(grep -o '^#[0-9]*: cov' "$log" | tail -n 1 | tr -dc 0-9)
	crashes=$(($(ls tests/fuzz | grep -c '^crash-') - crashes_before))
	grep '^#[0-9]*: cov' "$log" | tail -n 1
	echo "# $name: $crashes crash input(s) saved under tests/fuzz/"
fi
grep -m 1 'INITED' "$log"
tail -n 12 "$log"
if [ "$rc" -ne 0 ]; then
	echo "not ok - fuzz $name crashed (exit $rc): input saved under tests/fuzz/"
	exit 1
fi
if [ "${FUZZ_MERGE:-0}" = 1 ]; then
	if ! "$bin" -merge=1 -max_len=$maxlen -timeout=10 -rss_limit_mb=2048 \
		"$merged" "$corpus" "$scratch" >"$log" 2>&1; then
		tail -n 12 "$log"
		echo "not ok - fuzz $name: corpus merge failed"
		exit 1
	fi
	grep 'MERGE-OUTER' "$log" | tail -n 2
	rm -f "$corpus"/*
	cp "$merged"/* "$corpus"/
	echo "# $name: corpus $before -> $(ls "$corpus" | wc -l) files (new inputs: $(ls "$scratch" | wc -l)), wall ${wall}s"
fi
if [ -n "$fork" ] && [ "$crashes" -gt 0 ]; then
	echo "not ok - fuzz $name: $crashes crash(es) in ${execs:-?} executions: inputs saved under tests/fuzz/"
	exit 1
fi
echo "ok - fuzz $name: ${execs:-?} executions in ${wall}s, no crash"
