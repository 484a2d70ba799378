#!/bin/sh
# qkd88b7 without the network: usage errors (exit 2, naming the bad option or
# value), secret file checks, send --write then decode round trips of every
# message type (text and JSON), verification failures (wrong secret, flipped
# bit, replay inside a capture, foreign OUI) and, if pcaps/all.pcap exists,
# verification of the golden capture. TAP output; exit 1 if a test failed.
# Usage: tests/integration/test_cli.sh BUILD_DIR   (run from the top of the tree)
set -u
BUILD=${1:-build}
Q=$BUILD/qkd88b7
GOLDEN_PCAP=pcaps/all.pcap
GOLDEN_SECRET=tests/fixtures/golden.secret
TMP=
n=0
failed=0

cleanup() {
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

# expect DESC RC PATTERN COMMAND...: COMMAND exits RC and its output (stdout
# and stderr) contains the fixed string PATTERN ("" for any).
expect() {
	desc=$1
	want=$2
	pat=$3
	shift 3
	"$@" >"$TMP/out" 2>&1
	rc=$?
	if [ "$rc" -eq "$want" ] && { [ -z "$pat" ] || grep -qF -- "$pat" "$TMP/out"; }; then
		ok "$desc"
	else
		printf "# exit %s, want %s; output should contain: %s\n" "$rc" "$want" "$pat" \
			>>"$TMP/out"
		not_ok "$desc" "$TMP/out"
	fi
}

# jcheck FILE SELECT COND [N]: exactly N (default 1) JSON lines of FILE satisfy
# the Python expression SELECT, and all of them COND; keys are variables.
JCHECK='
import json, sys
path, sel, cond = sys.argv[1:4]
want = int(sys.argv[4]) if len(sys.argv) > 4 else 1
objs = [json.loads(l) for l in open(path) if l.strip()]
def ev(expr, o):
    try:
        return eval("(" + expr + ")", {"len": len}, dict(o))
    except (KeyError, NameError, TypeError):
        return False
m = [o for o in objs if ev(sel, o)]
if len(m) != want:
    sys.exit("%d lines match %s, want %d" % (len(m), sel, want))
for o in m:
    if not ev(cond, o):
        sys.exit("not %s: %s" % (cond, json.dumps(o)))
'
jcheck() {
	desc=$1
	shift
	if /usr/bin/python3 -c "$JCHECK" "$@" >"$TMP/jcheck" 2>&1; then
		ok "$desc"
	else
		not_ok "$desc" "$TMP/jcheck" "$1"
	fi
}

if [ ! -x "$Q" ]; then
	echo "not ok 1 - $Q is built"
	exit 1
fi
TMP=$(mktemp -d /tmp/qkdcli.XXXXXX) || exit 1
S=$TMP/s1
head -c 32 /dev/urandom >"$S" && head -c 48 /dev/urandom >"$TMP/s2" &&
	head -c 16 /dev/urandom >"$TMP/short" && cp "$S" "$TMP/loose" &&
	chmod 600 "$S" "$TMP/s2" "$TMP/short" && chmod 644 "$TMP/loose" || exit 1

# w FILE [SEND OPTIONS] TYPE ...: writes frames of channel 7 from SAE-A, epoch 2.
w() {
	f=$1
	shift
	"$Q" send -q --write "$TMP/$f" -s "$S" -c 7 --sender SAE-A --epoch 2 "$@"
}
SEND="$Q send --write $TMP/x.pcap -s $S -c 7 --sender SAE-A --epoch 1 --seq 1"

# ---- usage errors: exit 2, naming what is wrong ----
expect "no command: exit 2" 2 "COMMAND" "$Q"
expect "unknown command named" 2 "'frob'" "$Q" frob
expect "--help: exit 0 with the usage" 0 "Usage: qkd88b7 COMMAND" "$Q" --help
expect "send --help: exit 0" 0 "listen options:" "$Q" send --help
expect "bad number names option and value" 2 "--channel: 'abc'" \
	"$Q" send --write "$TMP/x.pcap" -s "$S" -c abc --sender A --epoch 1 --seq 1 hello
expect "negative number refused" 2 "--seq: '-1'" $SEND --seq -1 hello
expect "VLAN out of range named" 2 "--vlan: '5000'" $SEND --vlan 5000 hello
expect "unknown option named" 2 "unknown or ambiguous option --bogus" $SEND --bogus hello
expect "option without its value named" 2 "option --secret needs a value" \
	"$Q" send --write "$TMP/x.pcap" --secret
expect "missing TYPE" 2 "TYPE (hello, announce or ack) is missing" $SEND
expect "unknown TYPE named" 2 "unknown TYPE 'frob'" $SEND frob
expect "option of another TYPE named" 2 "send hello: unknown or ambiguous option --rotation" \
	$SEND hello --rotation 3
expect "announce without --key-id" 2 "--key-id is required" $SEND announce --rotation 1
expect "ack without --rotation" 2 "--rotation is required" $SEND ack
expect "bad result name named" 2 "--result: unknown value 'BOGUS'" \
	$SEND ack --rotation 1 --result BOGUS
expect "bad role named" 2 "--role: unknown value 'boss'" $SEND hello --role boss
expect "slot above 63 named" 2 "--slot: '64'" $SEND announce --rotation 1 --key-id k --slot 64
expect "sender with a space refused" 2 "--sender: 'SAE A'" \
	"$Q" send --write "$TMP/x.pcap" -s "$S" -c 7 --sender "SAE A" --epoch 1 --seq 1 hello
expect "bad MAC named" 2 "--dst: '03:51:4b:00:00'" $SEND --dst 03:51:4b:00:00 hello
expect "bad OUI named" 2 "--oui: 'acde4-'" $SEND --oui acde4- hello
expect "-i and --write together refused" 2 "either -i IFACE or --write FILE" \
	$SEND -i lo hello
expect "--pcp without --vlan refused" 2 "--pcp needs --vlan" $SEND --pcp 3 hello
expect "--seq + --count past 2^32-1 refused" 2 "passes the largest sequence number" \
	"$Q" send --write "$TMP/x.pcap" -s "$S" -c 7 --sender A --epoch 1 --seq 4294967295 \
	-n 2 hello
expect "--corrupt-bit past the PDU refused" 2 "past the PDU's 584 bits" \
	$SEND --corrupt-bit 584 hello
expect "listen without -i" 2 "-i IFACE is required" "$Q" listen -s "$S"
expect "listen --timeout 0 refused" 2 "--timeout: '0'" "$Q" listen -i lo -s "$S" --timeout 0
expect "decode without a file" 2 "FILE.pcap is missing" "$Q" decode
expect "decode of a missing file names it" 2 "$TMP/none.pcap" "$Q" decode "$TMP/none.pcap"
expect "decode --channel without --secret" 2 "need --secret" "$Q" decode x.pcap -c 7

# ---- secret files ----
expect "0644 secret refused, naming the file and mode" 2 "$TMP/loose: mode 0644" \
	"$Q" send --write "$TMP/x.pcap" -s "$TMP/loose" -c 7 --sender A --epoch 1 --seq 1 hello
expect "16-octet secret refused" 2 "16 octets, need 32..1024" \
	"$Q" decode "$TMP/x.pcap" -s "$TMP/short"
expect "missing secret file named" 2 "$TMP/none" "$Q" decode "$TMP/x.pcap" -s "$TMP/none"

# ---- round trips: send --write, then decode ----
KEY2=e4504ecd-9fbd-436b-8d43-2712a7f16254
KEY3=ae40c06c-92a6-41ae-83f2-beb94ad8c283
w hello.pcap --seq 1 --src 02:00:00:00:00:0a hello --role master --state 2 --interval 60 \
	--current-rotation 4 --pending-rotation 0 --key-id "$KEY2" &&
	w announce.pcap --seq 2 --dst 01:80:c2:00:00:0e announce --rotation 5 --key-id "$KEY2" \
		--key-id "$KEY3" --activation 1800000600 --slot 63 &&
	w ack.pcap --seq 3 --vlan 4094 --pcp 7 --secret-id 200 ack --rotation 5 \
		--result commit_failed --detail 'router said "no" \ retry' &&
	w count.pcap --seq 5 -n 3 --oui 0x123456 --pid 0xbeef ack --rotation 1 --result 42
rc=$?
if [ "$rc" -eq 0 ]; then
	ok "send --write of every type"
else
	not_ok "send --write of every type (exit $rc)"
fi
line="#1 accepted HELLO channel=7 sender=SAE-A epoch=2 seq=1 secret_id=0 length=73"
line="$line src=02:00:00:00:00:0a dst=03:51:4b:00:00:01 role=master state=RESYNC(2)"
line="$line interval=60 current_rotation=4 pending_rotation=0 digest="
expect "HELLO round trip (text)" 0 "$line" "$Q" decode "$TMP/hello.pcap" -s "$S"
expect "ANNOUNCE round trip (text)" 0 \
	"dst=01:80:c2:00:00:0e rotation=5 keys=2 key_ids=$KEY2,$KEY3 activation=1800000600 slot=63" \
	"$Q" decode "$TMP/announce.pcap" -s "$S"
line="secret_id=200 length=76 src=02:00:00:00:00:01 dst=03:51:4b:00:00:01 vid=4094 pcp=7"
line="$line rotation=5 result=COMMIT_FAILED(3) detail=\"router said \\\"no\\\" \\\\ retry\""
expect "ACK round trip (text), tagged, secret ID 200" 0 "$line" \
	"$Q" decode "$TMP/ack.pcap" -s "$S" --secret-id 200
expect "--count 3 writes seq 5, 6, 7 (other OUI/PID, unknown result)" 0 \
	"counters: frames=3 ok=3 " "$Q" decode "$TMP/count.pcap" -s "$S" --oui 12:34:56 \
	--pid beef

"$Q" decode "$TMP/hello.pcap" -s "$S" --json >"$TMP/hello.json" 2>&1
jcheck "HELLO round trip (JSON)" "$TMP/hello.json" "frame == 1" \
	"type == 'HELLO' and status == 'accepted' and verified and channel == 7
	and sender == 'SAE-A' and epoch == 2 and seq == 1 and role == 'master'
	and state == 'RESYNC' and state_num == 2 and interval == 60 and current_rotation == 4
	and pending_rotation == 0 and len(digest) == 32 and digest != '0' * 32
	and l2 == {'src': '02:00:00:00:00:0a', 'dst': '03:51:4b:00:00:01', 'vid': None,
	'pcp': None}"
jcheck "JSON counters object ends the output" "$TMP/hello.json" "'counters' in locals()" \
	"frames == 1 and counters['ok'] == 1 and len(counters) == 16 and counters['peer_limit'] == 0"
"$Q" decode "$TMP/announce.pcap" -s "$S" --json >"$TMP/announce.json" 2>&1
jcheck "ANNOUNCE round trip (JSON)" "$TMP/announce.json" "frame == 1" \
	"type == 'ANNOUNCE' and rotation == 5 and key_ids == ['$KEY2', '$KEY3']
	and activation == 1800000600 and slot == 63 and l2['dst'] == '01:80:c2:00:00:0e'"
"$Q" decode "$TMP/ack.pcap" -s "$S" --secret-id 200 --json >"$TMP/ack.json" 2>&1
jcheck "ACK round trip (JSON), escaped detail" "$TMP/ack.json" "frame == 1" \
	"type == 'ACK' and rotation == 5 and result == 'COMMIT_FAILED' and result_num == 3
	and detail == 'router said \"no\" \\\\ retry' and secret_id == 200
	and l2['vid'] == 4094 and l2['pcp'] == 7"
"$Q" decode "$TMP/count.pcap" -s "$S" --oui acde48 --json >"$TMP/count.json" 2>&1
jcheck "other OUI/PID than configured: foreign, with the frame's OUI and PID" \
	"$TMP/count.json" "frame == 1" "drop == 'foreign' and oui == '123456' and pid == 'beef'"
w plain.pcap --seq 4 announce --rotation 6 --key-id "$KEY3" &&
	"$Q" decode "$TMP/plain.pcap" -s "$S" --json >"$TMP/plain.json" 2>&1
jcheck "ANNOUNCE without TLVs: activation and slot null" "$TMP/plain.json" "frame == 1" \
	"type == 'ANNOUNCE' and activation is None and slot is None and key_ids == ['$KEY3']"
expect "unknown result value kept" 0 "result=unknown(42)" \
	"$Q" decode "$TMP/count.pcap" --oui 123456 --pid beef

# ---- decode without a secret: structure only ----
expect "decode without a secret says not verified, exit 0" 0 "(not verified)" \
	"$Q" decode "$TMP/announce.pcap"
"$Q" decode "$TMP/announce.pcap" --json >"$TMP/nv.json" 2>&1
jcheck "JSON without a secret: status decoded, verified false" "$TMP/nv.json" "frame == 1" \
	"status == 'decoded' and verified == False and rotation == 5"

# ---- verification failures ----
expect "wrong secret: bad_mac, exit 1" 1 "#1 drop bad_mac len=151 ANNOUNCE channel=7" \
	"$Q" decode "$TMP/announce.pcap" -s "$TMP/s2"
expect "wrong secret ID: unknown_secret, exit 1" 1 "unknown_secret=1 " \
	"$Q" decode "$TMP/ack.pcap" -s "$S"
expect "other channel than --channel: unknown_channel, exit 1" 1 "unknown_channel=1 " \
	"$Q" decode "$TMP/hello.pcap" -s "$S" -c 8
w flip.pcap --seq 9 --corrupt-bit 0 ack --rotation 1 && w flip2.pcap --seq 9 \
	--corrupt-bit 399 ack --rotation 1
expect "flipped ICV bit: bad_mac, exit 1" 1 "bad_mac=1 " "$Q" decode "$TMP/flip2.pcap" -s "$S"
expect "flipped OUI bit: foreign (checked before the ICV)" 1 "foreign=1 " \
	"$Q" decode "$TMP/flip.pcap" -s "$S"
"$Q" decode "$TMP/flip2.pcap" -s "$S" --json >"$TMP/flip.json" 2>&1
jcheck "JSON drop object names reason and header" "$TMP/flip.json" "'drop' in locals()" \
	"drop == 'bad_mac' and seq == 9 and sender == 'SAE-A' and len == 64"
# The same frames twice in one capture: the second copy is a replay.
{ cat "$TMP/count.pcap" && tail -c +25 "$TMP/count.pcap"; } >"$TMP/dup.pcap"
expect "a capture holding its frames twice: 3 replays, exit 1" 1 "ok=3 " \
	"$Q" decode "$TMP/dup.pcap" -s "$S" --oui 123456 --pid beef
expect "... and replay=3" 1 "replay=3" "$Q" decode "$TMP/dup.pcap" -s "$S" --oui 123456 \
	--pid beef
expect "... but without a secret all 6 decode (no replay check)" 0 "frames=6 ok=6 " \
	"$Q" decode "$TMP/dup.pcap" --oui 123456 --pid beef

# ---- the golden capture ----
if [ -f "$GOLDEN_PCAP" ] && [ -f "$GOLDEN_SECRET" ]; then
	cp "$GOLDEN_SECRET" "$TMP/golden" && chmod 600 "$TMP/golden"
	"$Q" decode "$GOLDEN_PCAP" -s "$TMP/golden" --json >"$TMP/golden.json" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ]; then
		ok "golden $GOLDEN_PCAP verifies (exit 0)"
	else
		not_ok "golden $GOLDEN_PCAP verifies (exit $rc)" "$TMP/golden.json"
	fi
	jcheck "golden: every frame accepted, none dropped" "$TMP/golden.json" \
		"'counters' in locals()" \
		"frames > 0 and counters['ok'] == frames
		and sum(counters.values()) == frames"
	expect "golden with the wrong secret: every frame bad_mac" 1 "ok=0 " \
		"$Q" decode "$GOLDEN_PCAP" -s "$S"
else
	echo "ok $((n + 1)) # SKIP $GOLDEN_PCAP or $GOLDEN_SECRET not there yet"
	n=$((n + 1))
fi

echo "1..$n"
[ "$failed" -eq 0 ]
