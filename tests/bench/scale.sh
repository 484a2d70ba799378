#!/bin/sh
# scale.sh BUILD [N...]: the agents' cost against the number of channels
# (issue 6 §3, docs/performance.md "Scale"). For each N (default 10 100 300
# 1000): the two-site lab (tests/lab/lab.sh) with N channels in all (the lab's
# 7 and 8 plus N-2 from tests/lab/channels.py, masters alternating A/B), every
# channel rotating every SCALE_INTERVAL s (60); after SCALE_WARMUP s (90) it
# measures for SCALE_WINDOW s (180): CPU share, RSS, fds, rotations done/due,
# failures, durations, channels that missed their schedule
# (tests/bench/scale.py); then the lab is taken down. Prints a markdown table;
# JSON per N in SCALE_OUT (default /tmp/qkdscale.<pid>). Other settings:
# SCALE_HELLO (hello interval, 5), SCALE_CONFIRM (T_c, 60), SCALE_MASTERS
# (alternate | a), SCALE_LOG_LEVEL (the agents' log level, info). The routers
# run the fixture's scale variant (NC_SCALE=1 of
# tests/fixtures/netconf/server.sh: no commit-time must on interface bindings,
# which netconfd evaluates in O(N^2)); SCALE_BINDING_CHECK=1 keeps the must.
# Not a test; needs root; about (warm-up + window + 15 s) per N.
set -u
BUILD=${1:-build}
shift 2>/dev/null
NS=${*:-10 100 300 1000}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "scale: no build directory" >&2; exit 1; }
export BUILD
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO" || exit 1
for b in qkdlinkd qkdlinkctl qkdlinkd-check; do
	[ -x "$BUILD/$b" ] || { echo "scale: $BUILD/$b is not built (run make)" >&2; exit 1; }
done
INTERVAL=${SCALE_INTERVAL:-60}
WARMUP=${SCALE_WARMUP:-90}
WINDOW=${SCALE_WINDOW:-180}
OUT=${SCALE_OUT:-/tmp/qkdscale.$$}
if [ "${SCALE_BINDING_CHECK:-0}" = 1 ]; then NC_SCALE=0; else NC_SCALE=1; fi
export NC_SCALE
mkdir -p "$OUT" || exit 1
DIR=
cleanup() {
	[ -n "$DIR" ] && sh tests/lab/lab.sh down "$DIR" >/dev/null 2>&1
	[ -n "$DIR" ] && rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
echo "scale: channels $NS; rotation interval $INTERVAL s, hello ${SCALE_HELLO:-5} s, T_c ${SCALE_CONFIRM:-60} s; warm-up $WARMUP s, window $WINDOW s; NC_SCALE=$NC_SCALE; $(nproc) cores (shared)"
files=
for n in $NS; do
	[ "$n" -ge 3 ] || { echo "scale: N=$n: at least 3 (the lab has 2 channels)" >&2; exit 1; }
	DIR=$(mktemp -d /tmp/qkdscale.XXXXXX)
	LAB_ROTATION_INTERVAL=$INTERVAL LAB_HELLO_INTERVAL=${SCALE_HELLO:-5} \
		LAB_CONFIRM_TIMEOUT=${SCALE_CONFIRM:-60} LAB_LOG_LEVEL=${SCALE_LOG_LEVEL:-info} \
		sh tests/lab/lab.sh up "$DIR" >"$OUT/up-$n.log" 2>&1 || { cat "$OUT/up-$n.log" >&2; exit 1; }
	/usr/bin/python3 tests/lab/channels.py "$DIR" add $((n - 2)) --interval "$INTERVAL" \
		--masters "${SCALE_MASTERS:-alternate}" >"$OUT/channels-$n.log" 2>&1 ||
		{ cat "$OUT/channels-$n.log" >&2; exit 1; }
	sh tests/lab/lab.sh start "$DIR" >/dev/null || exit 1
	sh tests/lab/lab.sh exec "$DIR" /usr/bin/python3 tests/bench/scale.py "$DIR" measure \
		--interval "$INTERVAL" --warmup "$WARMUP" --window "$WINDOW" --out "$OUT/scale-$n.json" \
		>/dev/null
	rc=$?
	for s in a b; do cp "$DIR/site-$s/qkdlinkd.log" "$OUT/agent-$s-$n.log" 2>/dev/null; done
	[ $rc -eq 0 ] || { echo "scale: N=$n: measurement failed (agents' logs in $OUT)" >&2; exit 1; }
	/usr/bin/python3 tests/bench/scale.py table "$OUT/scale-$n.json" | tail -n 1
	files="$files $OUT/scale-$n.json"
	sh tests/lab/lab.sh down "$DIR" >/dev/null 2>&1
	rm -rf "$DIR"
	DIR=
done
echo
# shellcheck disable=SC2086
/usr/bin/python3 tests/bench/scale.py table $files
echo "(JSON per N in $OUT)"
