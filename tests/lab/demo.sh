#!/bin/sh
# demo.sh [BUILD] - `make demo`: the two-site lab with both agents rotating the
# keys of channel 7 (A master) and channel 8 (B master) every few seconds. Prints
# one line per rotation (channel, rotation, key_ID, result, latency, skew, and
# what an independent ncclient read of both routers shows) and both agents'
# status every 5 s, until Ctrl-C or DEMO_SECONDS; then removes everything.
# Settings: DEMO_SECONDS (default: until Ctrl-C), DEMO_INTERVAL (rotation
# interval, default 5 s), DEMO_SITES (2, or 3: adds site C and channel 9, one
# master and two slaves), DEMO_DIR (lab directory, default a new /tmp/qkdlab.*).
# docs/lab.md explains the output.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$REPO/build}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "demo: no build directory" >&2; exit 1; }
export BUILD
cd "$REPO" || exit 1
LAB="sh tests/lab/lab.sh"

for p in qkdlinkd qkdlinkctl; do
	if [ ! -x "$BUILD/$p" ]; then
		echo "demo: $BUILD/$p is not built: the agent does not exist yet, so there is nothing" >&2
		echo "demo: to rotate. The lab itself can be tried by hand (docs/lab.md):" >&2
		echo "demo:   sh tests/lab/lab.sh up /tmp/lab && sh tests/lab/lab.sh check /tmp/lab" >&2
		exit 1
	fi
done
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces, test users)" >&2; exit 1; }

DIR=${DEMO_DIR:-$(mktemp -d /tmp/qkdlab.XXXXXX)}
up=0
done_=0
cleanup() {
	[ $done_ = 1 ] && return
	done_=1
	trap '' INT TERM
	echo
	echo "demo: stopping the agents and removing the lab..."
	[ $up = 1 ] && $LAB down "$DIR"
	[ -z "${DEMO_DIR:-}" ] && rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "demo: building the lab in $DIR"
LAB_SITES=${DEMO_SITES:-2} LAB_ROTATION_INTERVAL=${DEMO_INTERVAL:-5} $LAB up "$DIR" || exit 1
up=1
$LAB start "$DIR" || exit 1
echo
$LAB status "$DIR" | sed '/^--- agent/,$d'
echo
echo "demo: channel 7: A master (prefix CKN), channel 8: B master (sha256 CKN)$([ "${DEMO_SITES:-2}" = 3 ] &&
	echo ", channel 9: A master, B and C slaves"); a rotation every ${DEMO_INTERVAL:-5} s"
echo "demo: latency = the master's enc_keys to the last router's confirmed commit; skew = first to last router on the new key"
echo
$LAB exec "$DIR" /usr/bin/python3 tests/lab/agents.py "$DIR" watch --seconds "${DEMO_SECONDS:-0}"
rc=$?
echo
echo "demo: final state"
sites=a\ b
[ "${DEMO_SITES:-2}" = 3 ] && sites=a\ b\ c
for s in $sites; do
	echo "--- agent $(echo $s | tr abc ABC): qkdlinkctl status"
	$LAB ctl "$DIR" $s status 2>&1 | sed 's/^/  /'
done
exit $rc
