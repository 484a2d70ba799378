#!/bin/sh
# router_wait_cycle.sh BUILD [SECONDS] - regression check: two agents whose
# channels cross never hold their routers waiting for each other (not in make
# check: it takes SECONDS plus the lab's start).
#
# The daemon lets one channel at a time hold its router; a stage of a lower
# channel waits (at most D/2), a higher one is refused, "so two agents whose
# channels cross never wait for each other" (protocol.md 10.1). The rule must
# hold at every moment, not only against the holder when a stage arrives: a
# freed router goes to the highest waiting channel (agent/daemon.c,
# router_release), and a stage arriving while others wait queues behind them.
# It once went to the waiter queued last (LIFO): a stage could then wait
# behind a lower channel whose slave stage on the other agent waited for this
# agent's ACK, each agent holding its router until the D/2 timer refused both
# stages (seen in the soak; fixed in b0cbef6).
#
# The two-site lab with 8 more channels (tests/lab/channels.py), all rotating
# every 5 s, T_c 20 s, for SECONDS (default 90); then counts the stages that
# waited D/2 in vain ("rotation R: stage not run: router busy", from
# stage_wait_cb), and on a failure prints the first one with both agents'
# lines around it. Expected: none (a waiting stage is either served or
# refused at once). TAP; exit 1 on a vain wait. Needs root.
set -u
BUILD=${1:-build}
SECS=${2:-90}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "not ok 1 - no build directory"; exit 1; }
export BUILD
cd "$(dirname "$0")/../.." || exit 1
DIR=$(mktemp -d /tmp/qkdcyc.XXXXXX)
trap 'sh tests/lab/lab.sh down "$DIR" >/dev/null 2>&1; rm -rf "$DIR"' EXIT
trap 'exit 1' INT TERM
LAB_ROTATION_INTERVAL=5 LAB_CONFIRM_TIMEOUT=20 sh tests/lab/lab.sh up "$DIR" >/dev/null 2>&1 &&
	/usr/bin/python3 tests/lab/channels.py "$DIR" add 8 >/dev/null &&
	sh tests/lab/lab.sh start "$DIR" >/dev/null || { echo "not ok 1 - lab with 10 channels up and agents started"; exit 1; }
echo "ok 1 - lab with 10 channels rotating every 5 s, T_c 20 s; running $SECS s"
sleep "$SECS"
n=$(cat "$DIR"/site-a/qkdlinkd.log "$DIR"/site-b/qkdlinkd.log | grep -c ': rotation [0-9]*: stage not run: router busy')
ok=$(cat "$DIR"/site-a/qkdlinkd.log "$DIR"/site-b/qkdlinkd.log | grep -c 'metrics: result OK')
if [ "$n" -eq 0 ]; then
	echo "ok 2 - no stage waited D/2 for a router in vain ($ok rotations OK)"
	exit 0
fi
echo "not ok 2 - $n stages waited D/2 for the router in vain ($ok rotations OK); the first:"
for s in a b; do
	f=$DIR/site-$s/qkdlinkd.log
	l=$(grep -n ': rotation [0-9]*: stage not run: router busy' "$f" | head -n 1 | cut -d: -f1)
	[ -n "$l" ] || continue
	echo "#   --- agent ${s}: the lines about the router before its first vain wait"
	head -n "$l" "$f" | grep 'stage waits\|router stage (\|router confirm\|router cancel\|stage not run' |
		tail -n 12 | cut -c12- | sed 's/^/#   /'
done
exit 1
