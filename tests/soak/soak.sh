#!/bin/sh
# soak.sh BUILD: the soak of issue 6 §3 (docs/reliability.md "Soak"); `make soak`,
# never part of `make check`. The two-site lab (tests/lab/lab.sh) with 10
# channels (7, 8 and 100..107 from tests/lab/channels.py, masters alternating),
# every channel rotating every SOAK_INTERVAL s (5), for SOAK_MINUTES (30) with
# SOAK_LOSS (0.05) of the 0x88B7 frames dropped in each direction by the
# impairment relay (LAB_IMPAIR=1; SOAK_LOSS=0 runs without the relay). Every
# SOAK_SAMPLE s (30): each agent's VmRSS, fds and counters; the routers checked
# three times during the run (tests/soak/soak.py). At the end: memory growth
# (slope after SOAK_WARMUP minutes, 5, and first against last), fds constant,
# every failed rotation followed by a success, routers in agreement, both
# agents alive; then the agents are stopped and the routers must show no
# pending confirmed commit (--strict). TAP lines; SOAK_OUT (default
# /tmp/qkdsoak.<pid>) gets soak.json, soak.md and the agents' logs.
# Other settings: SOAK_CONFIRM (T_c, 20), SOAK_HELLO (1). Needs root.
set -u
BUILD=${1:-build}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "not ok 1 - soak: no build directory ${1:-build} (run make)"; exit 1; }
export BUILD
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO" || exit 1
MIN=${SOAK_MINUTES:-30}
LOSS=${SOAK_LOSS:-0.05}
OUT=${SOAK_OUT:-/tmp/qkdsoak.$$}
mkdir -p "$OUT" || exit 1
impair=1
[ "$LOSS" = 0 ] && impair=0
for b in qkdlinkd qkdlinkctl qkdlinkd-check; do
	[ -x "$BUILD/$b" ] || { echo "not ok 1 - soak: $BUILD/$b is not built (run make)"; exit 1; }
done
if [ $impair = 1 ] && [ ! -x "$BUILD/qkdlink-impair" ]; then
	echo "not ok 1 - soak: $BUILD/qkdlink-impair (the impairment relay, tests/impair) is not built: needed for SOAK_LOSS=$LOSS"
	exit 1
fi
DIR=$(mktemp -d /tmp/qkdsoak.XXXXXX)
cleanup() {
	sh tests/lab/lab.sh down "$DIR" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
LAB_IMPAIR=$impair LAB_ROTATION_INTERVAL=${SOAK_INTERVAL:-5} LAB_HELLO_INTERVAL=${SOAK_HELLO:-1} \
	LAB_CONFIRM_TIMEOUT=${SOAK_CONFIRM:-20} LAB_LOG_LEVEL=info \
	sh tests/lab/lab.sh up "$DIR" >"$OUT/up.log" 2>&1 || {
	echo "not ok 1 - soak: lab up failed"
	sed 's/^/#   /' "$OUT/up.log"
	exit 1
}
/usr/bin/python3 tests/lab/channels.py "$DIR" add 8 --interval "${SOAK_INTERVAL:-5}" >"$OUT/channels.log" 2>&1 || {
	echo "not ok 1 - soak: channels.py add 8 failed"
	sed 's/^/#   /' "$OUT/channels.log"
	exit 1
}
if [ $impair = 1 ]; then
	sh tests/lab/lab.sh impair "$DIR" set "loss=$LOSS" >"$OUT/impair.log" 2>&1 || {
		echo "not ok 1 - soak: lab.sh impair set loss=$LOSS failed"
		sed 's/^/#   /' "$OUT/impair.log"
		exit 1
	}
fi
sh tests/lab/lab.sh start "$DIR" >"$OUT/start.log" 2>&1 || {
	echo "not ok 1 - soak: the agents did not start"
	sed 's/^/#   /' "$OUT/start.log"
	exit 1
}
echo "# soak: $MIN min, loss $LOSS each way, rotation every ${SOAK_INTERVAL:-5} s, lab $DIR, results in $OUT"
sh tests/lab/lab.sh exec "$DIR" /usr/bin/python3 tests/soak/soak.py "$DIR" run --minutes "$MIN" \
	--out "$OUT" --sample "${SOAK_SAMPLE:-30}" --warmup "${SOAK_WARMUP:-5}" >"$OUT/tap.txt" 2>&1
rc=$?
cat "$OUT/tap.txt"
n=$(grep -c '^\(not \)\{0,1\}ok ' "$OUT/tap.txt")
cp "$DIR/site-a/qkdlinkd.log" "$OUT/agent-a.log" 2>/dev/null
cp "$DIR/site-b/qkdlinkd.log" "$OUT/agent-b.log" 2>/dev/null
sh tests/lab/lab.sh stop "$DIR" >"$OUT/stop.log" 2>&1
r=$?
n=$((n + 1))
if [ $r -eq 0 ]; then echo "ok $n - both agents stop on SIGTERM within 15 s"; else
	echo "not ok $n - both agents stop on SIGTERM within 15 s"
	sed 's/^/#   /' "$OUT/stop.log"
	rc=1
fi
cas=$(/usr/bin/python3 tests/lab/channels.py "$DIR" list | awk '{printf " --ca %s", $4}')
# shellcheck disable=SC2086
sh tests/lab/lab.sh routers "$DIR" check --ca CA-QKD-7 --ca CA-QKD-8 $cas --strict --wait 10 >"$OUT/strict.log" 2>&1
r=$?
n=$((n + 1))
if [ $r -eq 0 ]; then echo "ok $n - agents stopped: the routers agree on every CA, no lock, no candidate edit, no pending confirmed commit"; else
	echo "not ok $n - agents stopped: the routers agree on every CA, no lock, no candidate edit, no pending confirmed commit"
	sed 's/^/#   /' "$OUT/strict.log"
	rc=1
fi
exit $rc
