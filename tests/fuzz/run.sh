#!/bin/sh
# Runs one libFuzzer target for SECONDS, starting from its corpus in
# tests/fuzz/corpus/NAME (kept in git) plus the frames of the golden captures.
# With FUZZ_GROW=1 (make fuzz) new inputs are added to the corpus; otherwise
# (the smoke run of make check) they go to a temporary folder, so a test run
# never changes the tree. A crash leaves its input in tests/fuzz/.
# Prints a TAP line. Usage: tests/fuzz/run.sh BINARY SECONDS
set -u
bin=$1
secs=$2
name=$(basename "$bin")
corpus=tests/fuzz/corpus/$name
seeds=$(mktemp -d /tmp/qkdseed.XXXXXX)
scratch=$(mktemp -d /tmp/qkdnew.XXXXXX)
trap 'rm -rf "$seeds" "$scratch"' EXIT INT TERM
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
# libFuzzer writes new inputs into the first folder it is given
new=$scratch
[ "${FUZZ_GROW:-0}" = 1 ] && new=
log=$(mktemp /tmp/qkdfuzz.XXXXXX)
"$bin" -max_total_time="$secs" -max_len=1600 -timeout=10 -rss_limit_mb=2048 \
	-artifact_prefix=tests/fuzz/ -print_final_stats=1 $new "$corpus" "$seeds" >"$log" 2>&1
rc=$?
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
tail -n 12 "$log"
rm -f "$log"
if [ "$rc" -eq 0 ]; then
	echo "ok - fuzz $name: ${execs:-?} executions in ${secs}s, no crash"
else
	echo "not ok - fuzz $name crashed (exit $rc): input saved under tests/fuzz/"
	exit 1
fi
