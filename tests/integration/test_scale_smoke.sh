#!/bin/sh
# test_scale_smoke.sh BUILD - tests/lab/channels.py on a small scale (issue 6 §3):
# the two-site lab with SMOKE_CHANNELS (default 20) more channels (100..119,
# masters alternating A/B, four cipher suites, both CKN conventions). Before the
# agents: both routers hold every new CA on its bootstrap CKN and CAK (ncclient,
# one edit-config + commit per router), no lock, no pending confirmed commit.
# With the agents: each new channel rotated once on request, one after another,
# then ncclient reads the same CKN and CAK from both routers for every new CA,
# the CKN the channel's convention applied to the master's key_ID. Then the
# agents stop on SIGTERM and the lab leaves nothing behind. About 40 s.
# TAP output; exit 1 on failure. Needs root.
set -u
BUILD=${1:-build}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "not ok 1 - no build directory ${1:-build}"; exit 1; }
export BUILD
cd "$(dirname "$0")/../.." || exit 1
N=${SMOKE_CHANNELS:-20}
LAB="sh tests/lab/lab.sh"
DIR=$(mktemp -d /tmp/qkdsmk.XXXXXX)
out=$DIR.out
n=0
fail=0
cleanup() {
	$LAB down "$DIR" >/dev/null 2>&1
	rm -rf "$DIR" "$out"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

tap() { # RC DESCRIPTION [FILE]
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		fail=1
		[ -n "${3:-}" ] && [ -f "$3" ] && tail -n 25 "$3" | sed 's/^/#   /'
	fi
}

renumber() { # FILE: a sub-program's TAP lines into this script's sequence
	while IFS= read -r line; do
		case "$line" in
		"ok "*) n=$((n + 1)); echo "ok $n -${line#ok [0-9]* -}" ;;
		"not ok "*) n=$((n + 1)); echo "not ok $n -${line#not ok [0-9]* -}"; fail=1 ;;
		"#"*) echo "$line" ;;
		*) echo "# $line" ;;
		esac
	done <"$1"
}

for b in qkdlinkd qkdlinkctl qkdlinkd-check; do
	[ -x "$BUILD/$b" ] || { echo "not ok 1 - $BUILD/$b is not built (run make)"; exit 1; }
done
if ! /usr/bin/python3 -c 'import ncclient' 2>/dev/null; then
	echo "not ok 1 - /usr/bin/python3 with ncclient (python3-ncclient) is missing"
	exit 1
fi

LAB_ROTATION_INTERVAL=0 LAB_CONFIRM_TIMEOUT=20 $LAB up "$DIR" >"$out" 2>&1
rc=$?
tap $rc "lab up: $(tail -n 1 "$out")" "$out"
[ $rc -eq 0 ] || exit 1

/usr/bin/python3 tests/lab/channels.py "$DIR" add "$N" >"$out" 2>&1
rc=$?
tap $rc "channels.py adds $N channels: $(tail -n 1 "$out")" "$out"
[ $rc -eq 0 ] || exit 1

r=0
for f in "$DIR"/secrets/ch1[0-9][0-9].secret "$DIR"/bootstrap/ch1[0-9][0-9].cak "$DIR"/bootstrap/channels.json \
	"$DIR"/site-a/qkdlinkd.json "$DIR"/site-b/qkdlinkd.json; do
	[ "$(stat -c %a "$f")" = 600 ] || { echo "$f: mode $(stat -c %a "$f")"; r=1; }
done >"$out" 2>&1
tap $r "the new secrets, bootstrap CAKs, channel list and both configurations are mode 0600" "$out"

r=0
for s in a b; do
	c=$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["channels"]))' \
		"$DIR/site-$s/qkdlinkd.json")
	[ "$c" = $((N + 2)) ] || { echo "site $s: $c channels, expected $((N + 2))"; r=1; }
	"$BUILD/qkdlinkd-check" "$DIR/site-$s/qkdlinkd.json" || r=1
done >"$out" 2>&1
tap $r "both configurations hold $((N + 2)) channels and pass qkdlinkd-check" "$out"

# every new CA on its bootstrap key, read back by ncclient
expect=$(/usr/bin/python3 tests/lab/channels.py "$DIR" list | while read -r id _m _c ca; do
	printf ' --expect %s=%s:%s' "$ca" "$(cat "$DIR/bootstrap/ch$id.ckn")" "$DIR/bootstrap/ch$id.cak"
done)
# shellcheck disable=SC2086
$LAB routers "$DIR" check $expect --strict >"$out" 2>&1
tap $? "before the agents: both routers hold the $N new CAs on their bootstrap CKN and CAK; no lock, no pending confirmed commit" "$out"

$LAB start "$DIR" >"$out" 2>&1
rc=$?
tap $rc "both agents start with $((N + 2)) channels" "$out"
if [ $rc -eq 0 ]; then
	/usr/bin/python3 tests/lab/channels.py "$DIR" check --rotate --rotations 1 --wait 10 >"$out" 2>&1
	renumber "$out"
	$LAB stop "$DIR" >"$out" 2>&1
	tap $? "both agents stop on SIGTERM within 15 s" "$out"
	cas=$(/usr/bin/python3 tests/lab/channels.py "$DIR" list | awk '{printf " --ca %s", $4}')
	# shellcheck disable=SC2086
	$LAB routers "$DIR" check $cas --strict >"$out" 2>&1
	tap $? "agents stopped: the routers agree on the $N CAs, no lock, no pending confirmed commit" "$out"
fi

ns=$(sed -n "s/^LAB_NS='\(.*\)'/\1/p" "$DIR/lab.env")
$LAB down "$DIR" >"$out" 2>&1
r=$?
ip netns list | grep -qw "^$ns" && r=1
tap $r "lab down: namespace $ns removed" "$out"
exit $fail
