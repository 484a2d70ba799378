#!/bin/sh
# qkd88b7 over a real link: two network namespaces joined by veth. The b side
# runs one listener for the whole test, so that replayed captures meet the
# high-water marks the originals set; the a side sends every message type,
# a tagged frame, a tcpreplay of the accepted frames and frames that must be
# dropped (flipped bit, other secret, unknown secret ID, unknown channel,
# foreign OUI). Then the counters, the listener's text mode (rate-limited
# drops), --count, --timeout, --kernel-filter, a 0644 secret, and a listener
# and sender with only CAP_NET_RAW.
# TAP output; exit 1 if a test failed. Needs root (namespaces), tcpdump,
# tcpreplay, setpriv and /usr/bin/python3.
# Usage: tests/integration/test_l2.sh BUILD_DIR
set -u
BUILD=${1:-build}
Q=$(cd "$BUILD" 2>/dev/null && pwd)/qkd88b7
NS=qkt-$$
A=$NS-a
B=$NS-b
MAC_A=02:00:00:00:00:0a
MAC_B=02:00:00:00:00:0b
FILTER='ether proto 0x88b7 or (vlan and ether proto 0x88b7)'
TMP=
PIDS=
n=0
failed=0

cleanup() {
	for p in $PIDS; do
		kill "$p" 2>/dev/null
	done
	ip netns del "$A" 2>/dev/null
	ip netns del "$B" 2>/dev/null
	[ -n "$TMP" ] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}

not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	shift
	for f in "$@"; do
		[ -f "$f" ] && sed 's/^/#   /' "$f" | tail -n 20
	done
}

# check DESCRIPTION COMMAND...: ok if the command succeeds.
check() {
	desc=$1
	shift
	if "$@" >"$TMP/check.out" 2>&1; then
		ok "$desc"
	else
		not_ok "$desc" "$TMP/check.out"
	fi
}

# Foreground only: in the background, $! would be a subshell's, not the program's.
in_a() { ip netns exec "$A" "$@"; }
in_b() { ip netns exec "$B" "$@"; }

# wait_count FILE PATTERN N: waits up to 2 s until FILE has N lines matching.
wait_count() {
	i=0
	while c=$(grep -c -- "$2" "$1" 2>/dev/null); [ "${c:-0}" -lt "$3" ]; do
		i=$((i + 1))
		[ "$i" -gt 40 ] && return 1
		sleep 0.05
	done
	return 0
}

# wait_exit PID: waits up to 3 s for a background process; its status in $rc.
wait_exit() {
	i=0
	while kill -0 "$1" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt 60 ]; then
			kill "$1" 2>/dev/null
			break
		fi
		sleep 0.05
	done
	wait "$1"
	rc=$?
}

# jcheck FILE SELECT COND [N]: exactly N (default 1) JSON lines of FILE satisfy
# the Python expression SELECT, and all of them COND; keys are variables.
JCHECK='
import hashlib, json, sys
path, sel, cond = sys.argv[1:4]
want = int(sys.argv[4]) if len(sys.argv) > 4 else 1
objs = []
for line in open(path):
    if line.strip():
        objs.append(json.loads(line))
def ev(expr, o):
    try:
        return eval("(" + expr + ")", {"hashlib": hashlib, "len": len, "bytes": bytes}, dict(o))
    except (KeyError, NameError, TypeError):
        return False
m = [o for o in objs if ev(sel, o)]
if len(m) != want:
    sys.exit("%d lines match %s, want %d" % (len(m), sel, want))
for o in m:
    if not ev(cond, o):
        sys.exit("not %s: %s" % (cond, json.dumps(o)))
'
jcheck() { /usr/bin/python3 -c "$JCHECK" "$@"; }

# Both ends of the link with fixed MACs.
setup() {
	ip netns add "$A" && ip netns add "$B" &&
		ip link add va netns "$A" type veth peer name vb netns "$B" &&
		ip -n "$A" link set va address "$MAC_A" && ip -n "$B" link set vb address "$MAC_B" &&
		ip -n "$A" link set lo up && ip -n "$B" link set lo up &&
		ip -n "$A" link set va up && ip -n "$B" link set vb up
}

if [ "$(id -u)" -ne 0 ]; then
	echo "ok 1 # SKIP needs root for network namespaces"
	exit 0
fi
if [ ! -x "$Q" ]; then
	echo "not ok 1 - $BUILD/qkd88b7 is built"
	exit 1
fi
TMP=$(mktemp -d /tmp/qkdl2.XXXXXX) || exit 1
chmod 711 "$TMP" # nobody reaches its own secret inside
if ! setup 2>"$TMP/setup.err"; then
	not_ok "namespaces $A and $B joined by veth" "$TMP/setup.err"
	exit 1
fi
ok "namespaces $A and $B joined by veth"

head -c 32 /dev/urandom >"$TMP/s1" && head -c 32 /dev/urandom >"$TMP/s2" &&
	cp "$TMP/s1" "$TMP/loose" && cp "$TMP/s1" "$TMP/nobody" &&
	chmod 600 "$TMP/s1" "$TMP/s2" "$TMP/nobody" && chmod 644 "$TMP/loose" &&
	chown nobody "$TMP/nobody" || exit 1

# send [SEND OPTIONS] TYPE [TYPE OPTIONS]: from a, channel 7, sender SAE-A.
send() {
	in_a "$Q" send -q -i va -s "$TMP/s1" -c 7 --sender SAE-A --epoch 1 "$@"
}

# ---- a secret file others can read is refused ----
in_b "$Q" listen -i vb -s "$TMP/loose" --timeout 1 >"$TMP/loose.out" 2>"$TMP/loose.err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q "$TMP/loose" "$TMP/loose.err" && grep -q 0644 "$TMP/loose.err"; then
	ok "a 0644 secret file is refused (exit 2, message names the file and mode)"
else
	not_ok "a 0644 secret file is refused (exit $rc)" "$TMP/loose.err"
fi

# ---- one listener for the whole sequence, and a capture of what it accepts ----
ip netns exec "$B" tcpdump -i vb -Z root -U --immediate-mode -c 4 -w "$TMP/cap.pcap" "$FILTER" \
	>/dev/null 2>"$TMP/tcpdump.err" &
TCPDUMP=$!
PIDS="$PIDS $TCPDUMP"
ip netns exec "$B" "$Q" listen -i vb -s "$TMP/s1" -c 7 --json --timeout 40 \
	>"$TMP/l.out" 2>"$TMP/l.err" &
LISTENER=$!
PIDS="$PIDS $LISTENER"
if wait_count "$TMP/l.err" listening 1 && wait_count "$TMP/tcpdump.err" "listening on" 1; then
	ok "listener and tcpdump ready on vb"
else
	not_ok "listener and tcpdump ready on vb" "$TMP/l.err" "$TMP/tcpdump.err"
fi

KEY2=e4504ecd-9fbd-436b-8d43-2712a7f16254
KEY3=ae40c06c-92a6-41ae-83f2-beb94ad8c283
KEY4=839589ec-02b0-40a1-9053-bb3230fb44f9
DETAIL='KME-B: key "x\y" not found'
send --seq 1 hello --role slave --state ROTATING --interval 15 --current-rotation 2 \
	--pending-rotation 3 --key-id "$KEY2" &&
	send --seq 2 announce --rotation 3 --key-id "$KEY3" --key-id "$KEY4" \
		--activation 1800000600 --slot 5 &&
	send --seq 3 ack --rotation 3 --result KME_NOT_FOUND --detail "$DETAIL" &&
	send --seq 4 --vlan 100 --pcp 5 ack --rotation 3 --result 0
rc=$?
if [ "$rc" -eq 0 ] && wait_count "$TMP/l.out" '"status":"accepted"' 4; then
	ok "4 frames sent from a are accepted at b"
else
	not_ok "4 frames sent from a are accepted at b (send exit $rc)" "$TMP/l.out" "$TMP/l.err"
fi
COMMON="channel == 7 and sender == 'SAE-A' and epoch == 1 and verified and secret_id == 0
and oui == 'acde48' and pid == '514b' and version == 1 and l2['src'] == '$MAC_A'
and l2['dst'] == '03:51:4b:00:00:01'"
check "HELLO decoded with every field" jcheck "$TMP/l.out" "status == 'accepted' and seq == 1" \
	"type == 'HELLO' and $COMMON and role == 'slave' and state == 'ROTATING'
	and state_num == 1 and interval == 15 and current_rotation == 2 and pending_rotation == 3
	and digest == hashlib.sha256(bytes([len('$KEY2')]) + b'$KEY2').hexdigest()[:32]
	and l2['vid'] is None and length == 73"
check "ANNOUNCE decoded with key_ids, activation and slot" \
	jcheck "$TMP/l.out" "status == 'accepted' and seq == 2" \
	"type == 'ANNOUNCE' and $COMMON and rotation == 3 and key_ids == ['$KEY3', '$KEY4']
	and activation == 1800000600 and slot == 5"
check "ACK decoded with result and escaped detail" \
	jcheck "$TMP/l.out" "status == 'accepted' and seq == 3" \
	"type == 'ACK' and $COMMON and rotation == 3 and result == 'KME_NOT_FOUND'
	and result_num == 1 and detail == 'KME-B: key \"x\\\\y\" not found'"
check "VLAN 100 frame accepted, listener reports vid 100 pcp 5" \
	jcheck "$TMP/l.out" "status == 'accepted' and seq == 4" \
	"type == 'ACK' and result == 'OK' and l2['vid'] == 100 and l2['pcp'] == 5"

# ---- the capture of those 4 frames, replayed into the link ----
wait_exit "$TCPDUMP"
if [ "$rc" -eq 0 ] && "$Q" decode "$TMP/cap.pcap" -s "$TMP/s1" >"$TMP/cap.txt" 2>&1 &&
	[ "$(grep -c ' accepted ' "$TMP/cap.txt")" -eq 4 ]; then
	ok "tcpdump captured the 4 accepted frames (decode verifies them)"
else
	not_ok "tcpdump captured the 4 accepted frames (tcpdump exit $rc)" "$TMP/tcpdump.err" \
		"$TMP/cap.txt"
fi
in_a tcpreplay -q -i va "$TMP/cap.pcap" >"$TMP/tcpreplay.out" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && wait_count "$TMP/l.out" '"drop":"replay"' 4; then
	ok "tcpreplay of the capture: all 4 frames dropped as replay"
else
	not_ok "tcpreplay of the capture: all 4 frames dropped as replay (exit $rc)" \
		"$TMP/tcpreplay.out" "$TMP/l.out"
fi
check "the replayed tagged frame still carries vid 100" \
	jcheck "$TMP/l.out" "drop == 'replay' and seq == 4" "l2['vid'] == 100"

# ---- frames that must be dropped ----
# ACK from SAE-A: 50-octet PDU; bit 399 is the ICV's last, 263 the rotation ID's last.
send --seq 5 --corrupt-bit 399 ack --rotation 3 &&
	send --seq 6 --corrupt-bit 263 ack --rotation 3 &&
	in_a "$Q" send -q -i va -s "$TMP/s2" -c 7 --sender SAE-A --epoch 1 --seq 7 ack --rotation 3 &&
	send --seq 8 --secret-id 9 ack --rotation 3 &&
	in_a "$Q" send -q -i va -s "$TMP/s1" -c 8 --sender SAE-A --epoch 1 --seq 9 ack --rotation 3 &&
	send --seq 10 --oui 12-34-56 ack --rotation 3 &&
	send --seq 11 ack --rotation 4
rc=$?
if [ "$rc" -eq 0 ] && wait_count "$TMP/l.out" '"status":"accepted"' 5; then
	ok "7 more frames sent; the last, valid one is accepted after the drops"
else
	not_ok "7 more frames sent; the last, valid one is accepted (send exit $rc)" "$TMP/l.out"
fi
check "flipped ICV bit -> bad_mac" jcheck "$TMP/l.out" "seq == 5" "drop == 'bad_mac'"
check "flipped body bit -> bad_mac" jcheck "$TMP/l.out" "seq == 6" "drop == 'bad_mac'"
check "signed with another secret -> bad_mac" jcheck "$TMP/l.out" "seq == 7" \
	"drop == 'bad_mac'"
check "unknown secret ID -> unknown_secret" jcheck "$TMP/l.out" "seq == 8" \
	"drop == 'unknown_secret' and secret_id == 9"
check "unknown channel -> unknown_channel" jcheck "$TMP/l.out" "seq == 9" \
	"drop == 'unknown_channel' and channel == 8"
check "foreign OUI -> foreign" jcheck "$TMP/l.out" "drop == 'foreign'" \
	"oui == '123456' and pid == '514b'"
check "valid frame after the drops accepted" jcheck "$TMP/l.out" "seq == 11" \
	"status == 'accepted' and rotation == 4"

# ---- the counters on exit ----
kill -TERM "$LISTENER"
wait_exit "$LISTENER"
if [ "$rc" -eq 0 ]; then
	ok "listener stops on SIGTERM with exit 0 (frames were accepted)"
else
	not_ok "listener stops on SIGTERM with exit 0 (exit $rc)" "$TMP/l.err"
fi
grep '"counters"' "$TMP/l.out" >"$TMP/counters.json"
check "counters: ok 5, replay 4, bad_mac 3, unknown_secret 1, unknown_channel 1, foreign 1" \
	/usr/bin/python3 -c '
import json, sys
o = json.loads(open(sys.argv[1]).read())
c = o["counters"]
want = {"ok": 5, "replay": 4, "bad_mac": 3, "unknown_secret": 1, "unknown_channel": 1,
        "foreign": 1}
bad = {k: v for k, v in c.items() if v != want.get(k, 0)}
if bad or o["frames"] != 15 or o["pcap"]["dropped"] != 0:
    sys.exit("unexpected: %s" % json.dumps(o))
' "$TMP/counters.json"

# ---- text output, --count and --timeout ----
ip netns exec "$B" "$Q" listen -i vb -s "$TMP/s1" --count 1 --timeout 5 \
	>"$TMP/t.out" 2>"$TMP/t.err" &
TEXT=$!
PIDS="$PIDS $TEXT"
wait_count "$TMP/t.err" listening 1
in_a "$Q" send -q -i va -s "$TMP/s2" -c 7 --sender SAE-T --epoch 1 --seq 1 -n 2 hello &&
	in_a "$Q" send -q -i va -s "$TMP/s1" -c 7 --sender SAE-T --epoch 1 --seq 3 hello
wait_exit "$TEXT"
if [ "$rc" -eq 0 ] && grep -q '^#1 drop bad_mac .*sender=SAE-T' "$TMP/t.out" &&
	! grep -q '^#2 ' "$TMP/t.out" &&
	grep -q '^#3 accepted HELLO channel=7 sender=SAE-T epoch=1 seq=3 ' "$TMP/t.out" &&
	grep -q '^counters: frames=3 ok=1 .* bad_mac=2 ' "$TMP/t.out"; then
	ok "text listener: one line per drop reason per 10 s, the frame, counters; exit 0 at --count 1"
else
	not_ok "text listener: rate-limited drops, the frame, counters (exit $rc)" "$TMP/t.out" \
		"$TMP/t.err"
fi

# --kernel-filter: other OUIs never leave the kernel (so are not even counted).
ip netns exec "$B" "$Q" listen -i vb -s "$TMP/s1" --kernel-filter --count 1 --timeout 5 \
	--json >"$TMP/k.out" 2>"$TMP/k.err" &
KF=$!
PIDS="$PIDS $KF"
wait_count "$TMP/k.err" listening 1
in_a "$Q" send -q -i va -s "$TMP/s1" -c 7 --sender SAE-K --epoch 1 --seq 1 --oui 123456 hello &&
	in_a "$Q" send -q -i va -s "$TMP/s1" -c 7 --sender SAE-K --epoch 1 --seq 2 --vlan 100 hello
wait_exit "$KF"
if [ "$rc" -eq 0 ] && /usr/bin/python3 -c '
import json, sys
o = json.loads(open(sys.argv[1]).read().splitlines()[-1])
sys.exit(o["frames"] != 1 or o["counters"]["foreign"] != 0 or o["pcap"]["received"] != 1)
' "$TMP/k.out"; then
	ok "--kernel-filter: the foreign frame is filtered in the kernel, the tagged one passes"
else
	not_ok "--kernel-filter: foreign frame filtered in the kernel (exit $rc)" "$TMP/k.out"
fi
start=$(date +%s)
in_b "$Q" listen -i vb -s "$TMP/s1" --timeout 0.5 >"$TMP/to.out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && [ $(($(date +%s) - start)) -le 3 ] && grep -q ' ok=0 ' "$TMP/to.out"; then
	ok "listener times out with exit 1 when nothing was accepted"
else
	not_ok "listener times out with exit 1 when nothing was accepted (exit $rc)" "$TMP/to.out"
fi

# ---- only CAP_NET_RAW, as user nobody ----
NOBODY="setpriv --reuid=nobody --regid=nogroup --clear-groups"
RAW="--inh-caps=-all,+net_raw --ambient-caps=-all,+net_raw --bounding-set=-all,+net_raw"
# shellcheck disable=SC2086
in_b $NOBODY "$Q" listen -i vb -s "$TMP/nobody" --timeout 1 >"$TMP/np.out" 2>"$TMP/np.err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q 'receive on vb: .*CAP_NET_RAW' "$TMP/np.err"; then
	ok "without CAP_NET_RAW the listener fails naming vb and CAP_NET_RAW"
else
	not_ok "without CAP_NET_RAW the listener fails naming CAP_NET_RAW (exit $rc)" \
		"$TMP/np.err"
fi
# shellcheck disable=SC2086
ip netns exec "$B" $NOBODY $RAW "$Q" listen -i vb -s "$TMP/nobody" --count 1 --timeout 5 --json \
	>"$TMP/nr.out" 2>"$TMP/nr.err" &
RAWL=$!
PIDS="$PIDS $RAWL"
wait_count "$TMP/nr.err" listening 1
# shellcheck disable=SC2086
in_a $NOBODY $RAW "$Q" send -q -i va -s "$TMP/nobody" -c 7 --sender SAE-N --epoch 1 --seq 1 \
	announce --rotation 9 --key-id "$KEY3" >"$TMP/ns.out" 2>&1
src=$?
wait_exit "$RAWL"
if [ "$src" -eq 0 ] && [ "$rc" -eq 0 ] &&
	jcheck "$TMP/nr.out" "status == 'accepted'" "sender == 'SAE-N' and rotation == 9" \
		>>"$TMP/nr.err" 2>&1; then
	ok "as nobody with only CAP_NET_RAW: send and listen work"
else
	not_ok "as nobody with only CAP_NET_RAW: send (exit $src) and listen (exit $rc)" \
		"$TMP/ns.out" "$TMP/nr.out" "$TMP/nr.err"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
