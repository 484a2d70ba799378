#!/bin/sh
# test_netconf_fixture.sh BUILD - the test router's own rules (tests/fixtures/netconf):
# the binding must and the frozen-CKN list on a plain server, and the scale variant
# (NC_SCALE=1: the binding must removed, nothing else) including after a netconfd
# restart. The fault matrix and the scale benchmark depend on these. Prints TAP.
set -u
FIX=tests/fixtures/netconf/server.sh
P=$(mktemp -d /tmp/qkdfx-p.XXXXXX)
S=$(mktemp -d /tmp/qkdfx-s.XXXXXX)
cleanup() {
	for d in "$P" "$S"; do sh "$FIX" stop "$d" >/dev/null 2>&1 & done
	wait
	rm -rf "$P" "$S"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

sh "$FIX" start "$P" >"$P.log" 2>&1 &
pp=$!
NC_SCALE=1 sh "$FIX" start "$S" >"$S.log" 2>&1 &
ps=$!
ok=1
wait $pp || ok=0
wait $ps || ok=0
if [ $ok = 0 ]; then
	echo "not ok 1 - start the NETCONF test servers (plain, NC_SCALE=1)"
	sed 's/^/#   /' "$P.log" "$S.log"
	rm -f "$P.log" "$S.log"
	exit 1
fi
rm -f "$P.log" "$S.log"
timeout 180 /usr/bin/python3 tests/integration/netconf/fixture_checks.py "$P" "$S"
rc=$?
[ $rc -eq 124 ] && echo "not ok - fixture checks timed out"
exit $rc
