#!/bin/sh
# lab_rotations.sh BUILD [N]: N (default 100) rotations of channel 7 back to
# back in the two-site lab (tests/lab/lab.sh), each waited for, then p50/p99 of
# duration (enc_keys to the last router's confirmed commit), its breakdown
# (KME, own stage, frame round trip with the slave's work, own confirm), skew,
# confirm skew, diverged and the agents' own time (tests/bench/lab_rotations.py).
# Brings the lab up and always takes it down. Not a test. Needs root.
set -u
BUILD=${1:-build}
N=${2:-100}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "lab_rotations: no build directory $1" >&2; exit 1; }
export BUILD
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO" || exit 1
for b in qkdlinkd qkdlinkctl; do
	[ -x "$BUILD/$b" ] || { echo "lab_rotations: $BUILD/$b is not built" >&2; exit 1; }
done
DIR=$(mktemp -d /tmp/qkdbench.XXXXXX)
up=0
cleanup() {
	[ "$up" = 1 ] && sh tests/lab/lab.sh down "$DIR" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
LAB_SITES=2 LAB_LOG_LEVEL=${LAB_LOG_LEVEL:-info} sh tests/lab/lab.sh up "$DIR" >"$DIR.up" 2>&1
rc=$?
up=1
if [ $rc -ne 0 ]; then
	cat "$DIR.up" >&2
	rm -f "$DIR.up"
	exit 1
fi
rm -f "$DIR.up"
sh tests/lab/lab.sh start "$DIR" >/dev/null || exit 1
echo "$N rotations of channel 7 (A master, B slave), one after another, in the two-site lab"
sh tests/lab/lab.sh exec "$DIR" /usr/bin/python3 tests/bench/lab_rotations.py "$DIR" "$N"
rc=$?
sh tests/lab/lab.sh stop "$DIR" >/dev/null 2>&1
exit $rc
