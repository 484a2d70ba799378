#!/bin/sh
# test_netconf.sh BUILD - the NETCONF client against real servers on loopback:
# two netconfd routers side by side (one base:1.0 only) and a misbehaving fake,
# each behind its own sshd (tests/fixtures/netconf/server.sh). The scenarios
# (tests/integration/netconf/scenarios.py) drive build/qkdlink-netconf and check
# every outcome with ncclient. Prints TAP; servers and temp dirs always removed.
set -u
BUILD=${1:-build}
FIX=tests/fixtures/netconf/server.sh
A=$(mktemp -d /tmp/qkdnc-a.XXXXXX)
B=$(mktemp -d /tmp/qkdnc-b.XXXXXX)
F=$(mktemp -d /tmp/qkdnc-f.XXXXXX)
cleanup() {
	# netconfd takes seconds to exit: stop all three at once
	for d in "$A" "$B" "$F"; do sh "$FIX" stop "$d" >/dev/null 2>&1 & done
	wait
	rm -rf "$A" "$B" "$F"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

for p in qkdlink-netconf nc-worker-check san/nc-worker-check; do
	if [ ! -x "$BUILD/$p" ]; then
		echo "not ok 1 - $BUILD/$p not built"
		exit 1
	fi
done
sh "$FIX" start "$A" >"$A.log" 2>&1 &
pa=$!
NC_PROTOCOLS=netconf1.0 sh "$FIX" start "$B" >"$B.log" 2>&1 &
pb=$!
NC_FAKE=commit-fails sh "$FIX" start "$F" >"$F.log" 2>&1 &
pf=$!
ok=1
wait $pa || ok=0
wait $pb || ok=0
wait $pf || ok=0
if [ $ok = 0 ]; then
	echo "not ok 1 - start the NETCONF test servers"
	sed 's/^/#   /' "$A.log" "$B.log" "$F.log"
	rm -f "$A.log" "$B.log" "$F.log"
	exit 1
fi
rm -f "$A.log" "$B.log" "$F.log"
timeout 300 /usr/bin/python3 tests/integration/netconf/scenarios.py "$BUILD" "$A" "$B" "$F"
rc=$?
[ $rc -eq 124 ] && echo "not ok - scenarios timed out"
exit $rc
