#!/bin/sh
# test_impair.sh BUILD - qkdlink-impair, the 0x88B7 impairment relay
# (tests/impair/impair.c, docs/reliability.md "The impairment relay").
#
# One network namespace: sender port s-a <-> i-a, relay between i-a and i-b,
# i-b <-> s-b listener port. qkd88b7 sends signed HELLOs on s-a and listens on
# s-b (its counters: accepted, replay, bad_mac...). Each case starts its own
# relay (fresh counters and ordinals) and listener:
#   bad arguments and control commands refused, naming what is wrong; no
#   CAP_NET_RAW and a missing interface: exit 1, saying so;
#   no impairment: all N frames arrive, in order; loss 0.3 on 1000 frames:
#   the listener's count is inside a 5-sigma binomial interval and equals the
#   relay's forwarded count; dup 0.1: duplicates seen as `replay`, as many as
#   the relay's `duplicated`; corrupt 1.0: no frame accepted, every one
#   dropped by a check, every ICV hit (from --trace) counted `bad_mac`;
#   reorder: out-of-order arrivals (seen as `replay`) = the relay's
#   `reordered`; delay 300 ms: the frame arrives at least 300 ms after it was
#   sent; partition on: nothing passes, off: frames pass again, a timed
#   partition ends by itself; a full queue drops and counts, one direction's
#   flood never blocks the other; same seed twice: identical traces, another seed:
#   a different trace; control socket mode 0600; SIGTERM: exit 0, final stats.
# Then the lab: LAB_IMPAIR=1 lab.sh up, lab.sh check through the relay, the
# agents, two rotations of channel 7 with loss=0.3 on the link, down leaves
# nothing. TAP output; exit 1 on failure. Needs root.
set -u
BUILD=${1:-build}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || {
	echo "not ok 1 - no build directory ${1:-build}"
	exit 1
}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
IMP=$BUILD/qkdlink-impair
Q=$BUILD/qkd88b7
PY=/usr/bin/python3
NS=qkt-imp-$$
TMP=
RELAY=
LISTENER=
LABDIR=
labup=0
n=0
failed=0

cleanup() {
	[ -n "$LISTENER" ] && kill "$LISTENER" 2>/dev/null
	[ -n "$RELAY" ] && kill "$RELAY" 2>/dev/null
	[ $labup = 1 ] && sh "$REPO/tests/lab/lab.sh" down "$LABDIR" >/dev/null 2>&1
	ip netns del "$NS" 2>/dev/null
	[ -n "$LABDIR" ] && rm -rf "$LABDIR"
	[ -n "$TMP" ] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

tap() { # RC DESCRIPTION [FILE...]: one TAP line; the files' tails on failure
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
		return 0
	fi
	echo "not ok $n - $2"
	failed=1
	shift 2
	for f in "$@"; do
		[ -f "$f" ] && tail -n 15 "$f" | sed 's/^/#   /'
	done
	return 1
}

# the prerequisites: a missing one is a failure that names it
missing=""
for x in "$IMP" "$Q"; do [ -x "$x" ] || missing="$missing $x"; done
for c in ip setpriv; do command -v $c >/dev/null 2>&1 || missing="$missing $c"; done
[ -x "$PY" ] || missing="$missing $PY"
[ "$(id -u)" = 0 ] || missing="$missing root"
if [ -n "$missing" ]; then
	tap 1 "prerequisites present (missing:$missing)"
	exit 1
fi

TMP=$(mktemp -d /tmp/qkimp.XXXXXX)
SEC=$TMP/ch.secret
(umask 077 && head -c 32 /dev/urandom >"$SEC")

setup_ns() {
	ip netns add "$NS" && ip -n "$NS" link set lo up &&
		ip -n "$NS" link add s-a type veth peer name i-a &&
		ip -n "$NS" link add i-b type veth peer name s-b || return 1
	for i in s-a i-a i-b s-b; do ip -n "$NS" link set "$i" up || return 1; done
}
setup_ns >"$TMP/ns.out" 2>&1
tap $? "namespace $NS: s-a <-> i-a, i-b <-> s-b" "$TMP/ns.out" || exit 1

# json FILE EXPR: EXPR over d, the JSON of FILE's last line
json() {
	"$PY" -c 'import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
d = json.loads(lines[-1]) if lines else {}
print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null || echo "?"
}

ctl() { "$IMP" -C "$TMP/ctl" "$@"; }

# start_relay ARGS...: the relay on i-a/i-b with a control socket
start_relay() {
	rm -f "$TMP/ctl"
	ip netns exec "$NS" "$IMP" --control "$TMP/ctl" "$@" i-a i-b 2>"$TMP/relay.err" &
	RELAY=$!
	i=0
	while [ ! -S "$TMP/ctl" ] && [ $i -lt 50 ] && kill -0 "$RELAY" 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -S "$TMP/ctl" ]
}

# stop_relay: SIGTERM; its exit status in $relay_rc
stop_relay() {
	relay_rc=0
	[ -n "$RELAY" ] || return 0
	kill "$RELAY" 2>/dev/null
	wait "$RELAY"
	relay_rc=$?
	RELAY=
}

# start_listener: qkd88b7 on s-b until stopped (SIGTERM prints the counters)
start_listener() {
	: >"$TMP/listen.err"
	ip netns exec "$NS" "$Q" listen -i s-b -s "$SEC" --json >"$TMP/listen.out" 2>"$TMP/listen.err" &
	LISTENER=$!
	i=0
	while ! grep -q listening "$TMP/listen.err" && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

stop_listener() {
	[ -n "$LISTENER" ] || return 0
	kill "$LISTENER" 2>/dev/null
	wait "$LISTENER"
	LISTENER=
}

# send N: N HELLOs on s-a, seq 1..N, in bursts of at most 250
send() {
	seq=1
	while [ $seq -le "$1" ]; do
		k=$(($1 - seq + 1))
		[ $k -gt 250 ] && k=250
		ip netns exec "$NS" "$Q" send -i s-a -s "$SEC" -c 5 --sender IMPAIR-TEST --epoch 1 \
			--seq $seq -n $k -q hello >"$TMP/send.out" 2>&1 || return 1
		seq=$((seq + k))
	done
}

# settle N: until the relay has taken N frames from a->b and sent all it will
settle() {
	i=0
	while [ $i -lt 100 ]; do
		ctl stats >"$TMP/stats.json" 2>&1
		[ "$(json "$TMP/stats.json" 'd["ab"]["received"] >= '"$1"' and d["queue"]["len"] == 0 and d["ab"]["held"] == 0')" = True ] && break
		sleep 0.1
		i=$((i + 1))
	done
	sleep 0.2 # the last frames reach the listener
	ctl stats >"$TMP/stats.json" 2>&1
}

# run_case N RELAY-ARGS...: a fresh relay and listener, N frames through them;
# the relay's final stats in stats.json, the listener's counters in listen.out
run_case() {
	cnt=$1
	shift
	start_relay "$@" || return 1
	start_listener
	send "$cnt" || return 1
	settle "$cnt"
	stop_listener
	stop_relay
}

S=$TMP/stats.json
L=$TMP/listen.out

# ---- arguments
bad() { # EXPECTED-WORD ARGS...: exit 2 and a message naming EXPECTED-WORD
	want=$1
	shift
	"$IMP" "$@" >"$TMP/bad.out" 2>&1
	rc=$?
	[ $rc -eq 2 ] && grep -q -- "$want" "$TMP/bad.out" && return 0
	echo "args: $* -> exit $rc, wanted 2 and \"$want\"" >>"$TMP/bad.log"
	cat "$TMP/bad.out" >>"$TMP/bad.log"
	return 1
}
: >"$TMP/bad.log"
r=0
bad --loss --loss 1.5 i-a i-b || r=1
bad --dup --dup -0.1 i-a i-b || r=1
bad --corrupt --corrupt x i-a i-b || r=1
bad --delay --delay -3 i-a i-b || r=1
bad --jitter --jitter 1e9 i-a i-b || r=1
bad --seed --seed 12abc i-a i-b || r=1
bad --dir --dir up i-a i-b || r=1
bad --partition --partition 0 i-a i-b || r=1
bad --queue --queue 0 i-a i-b || r=1
bad --hold --hold 0 i-a i-b || r=1
bad --bogus --bogus i-a i-b || r=1
bad "--seed: needs a value" i-a i-b --seed || r=1
bad "IFACE_B (got 3)" i-a i-b i-c --loss 0.1 || r=1
bad "two interfaces" i-a || r=1
bad "both i-a" i-a i-a || r=1
tap $r "bad arguments: exit 2 and a message naming the argument (--loss 1.5, --dup -0.1, --delay -3, --seed 12abc, --dir up, --partition 0, an unknown option, one interface, ...)" "$TMP/bad.log"

ip netns exec "$NS" "$IMP" i-a no-such-if0 >"$TMP/nodev.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "no-such-if0" "$TMP/nodev.out"
tap $? "a missing interface: exit 1 naming it (exit $rc)" "$TMP/nodev.out"
ip netns exec "$NS" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
	--bounding-set=-all "$IMP" i-a i-b >"$TMP/nocap.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "CAP_NET_RAW" "$TMP/nocap.out"
tap $? "without CAP_NET_RAW: exit 1 saying CAP_NET_RAW is needed (exit $rc)" "$TMP/nocap.out"

# ---- the control socket and its commands
start_relay --seed 1
tap $? "the relay starts and opens its control socket" "$TMP/relay.err"
m=$(stat -c %a "$TMP/ctl" 2>/dev/null)
[ "$m" = 600 ]
tap $? "the control socket is mode 0600 (is $m)"
grep -q "seed 1 " "$TMP/relay.err"
tap $? "the seed is printed at start" "$TMP/relay.err"
: >"$TMP/cmd.log"
r=0
cmd_bad() { # EXPECTED-WORD COMMAND...: an "error: ..." reply naming it, exit 1
	want=$1
	shift
	out=$(ctl "$@" 2>&1)
	rc=$?
	case $out in
	error:*"$want"*) [ $rc -eq 1 ] && return 0 ;;
	esac
	echo "$* -> exit $rc: $out" >>"$TMP/cmd.log"
	return 1
}
cmd_bad "loss=2" set loss=2 || r=1
cmd_bad "bogus" set bogus=1 || r=1
cmd_bad "delay=x" set delay=x || r=1
cmd_bad "dir=sideways" set loss=0.1 dir=sideways || r=1
cmd_bad "maybe" partition maybe || r=1
cmd_bad "frobnicate" frobnicate || r=1
ctl stats >"$S" 2>&1
[ "$(json "$S" 'd["ab"]["settings"]["loss"] == 0 and d["ba"]["settings"]["loss"] == 0')" = True ] || {
	echo "a refused set changed the settings: $(cat "$S")" >>"$TMP/cmd.log"
	r=1
}
tap $r "bad control commands get \"error: ...\" naming the bad word, and change nothing" "$TMP/cmd.log"
r=0
ctl set loss=0.25 dup=0.5 delay=7 jitter=3 dir=ab >"$TMP/cmd.log" 2>&1 &&
	ctl partition 30 dir=ba >>"$TMP/cmd.log" 2>&1 &&
	ctl stats >"$S" 2>&1 || r=1
[ "$(json "$S" 'd["seed"] == 1 and d["ab"]["settings"]["loss"] == 0.25 and d["ab"]["settings"]["dup"] == 0.5 and d["ab"]["settings"]["delay_ms"] == 7 and d["ab"]["settings"]["jitter_ms"] == 3 and d["ba"]["settings"]["loss"] == 0 and d["ba"]["settings"]["partition"] and not d["ab"]["settings"]["partition"] and 0 < d["ba"]["settings"]["partition_left_s"] <= 30')" = True ] || r=1
ctl reset >>"$TMP/cmd.log" 2>&1 && ctl stats >"$TMP/stats2.json" 2>&1 || r=1
[ "$(json "$TMP/stats2.json" 'all(v in (0, False) for x in ("ab", "ba") for v in d[x]["settings"].values())')" = True ] || r=1
tap $r "set ... dir=ab and partition 30 dir=ba change one direction each (stats shows them), reset clears both" "$S" "$TMP/stats2.json" "$TMP/cmd.log"
stop_relay
[ $relay_rc -eq 0 ] && grep -q "stats at exit: {" "$TMP/relay.err" && [ ! -e "$TMP/ctl" ]
tap $? "SIGTERM: exit 0 (was $relay_rc), final stats on stderr, control socket removed" "$TMP/relay.err"

# ---- no impairment: every frame, in order
run_case 300 --seed 2
r=0
[ "$(json "$L" 'd["counters"]["ok"]')" = 300 ] || r=1
[ "$(json "$L" 'd["counters"]["replay"]')" = 0 ] || r=1
"$PY" -c 'import json, sys
seqs = [json.loads(l)["seq"] for l in open(sys.argv[1]) if "\"accepted\"" in l]
sys.exit(0 if seqs == list(range(1, 301)) else 1)' "$L" || r=1
[ "$(json "$S" 'd["ab"]["forwarded"]')" = 300 ] || r=1
tap $r "no impairment: 300 of 300 frames arrive, in order (seq 1..300), relay forwarded 300" "$L" "$S"

# ---- loss 0.3 on 1000 frames: 700 +- 5 sigma (sigma = sqrt(1000 * 0.3 * 0.7) = 14.5)
run_case 1000 --loss 0.3
got=$(json "$L" 'd["counters"]["ok"]')
fwd=$(json "$S" 'd["ab"]["forwarded"]')
lost=$(json "$S" 'd["ab"]["dropped_loss"]')
r=0
[ "$(json "$L" '628 <= d["counters"]["ok"] <= 772')" = True ] || r=1
[ "$got" = "$fwd" ] && [ "$((fwd + lost))" -eq 1000 ] 2>/dev/null || r=1
tap $r "loss 0.3 on 1000 frames: $got received, inside 628..772 (5 sigma); relay forwarded $fwd, dropped $lost (seed $(json "$S" 'd["seed"]'))" "$L" "$S"

# ---- dup 0.1: the listener sees the copies as replays
run_case 1000 --dup 0.1
dup=$(json "$S" 'd["ab"]["duplicated"]')
rep=$(json "$L" 'd["counters"]["replay"]')
r=0
[ "$(json "$L" 'd["counters"]["ok"]')" = 1000 ] && [ "$dup" = "$rep" ] && [ "$dup" -gt 0 ] 2>/dev/null || r=1
[ "$(json "$S" 'd["ab"]["forwarded"] == 1000 + d["ab"]["duplicated"]')" = True ] || r=1
tap $r "dup 0.1 on 1000 frames: 1000 accepted, $rep counted as replay = the relay's duplicated ($dup)" "$L" "$S"

# ---- corrupt 1.0: nothing accepted; every flipped ICV bit is bad_mac
run_case 200 --corrupt 1 --trace "$TMP/corrupt.trace"
icv=$(awk '{ for (i = 5; i <= NF; i++) if ($i ~ /^corrupt=/) { split(substr($i, 9), a, ":"); if (a[1] >= $3 - 16) c++ } } END { print c + 0 }' "$TMP/corrupt.trace")
r=0
[ "$(json "$S" 'd["ab"]["corrupted"]')" = 200 ] || r=1
[ "$(json "$L" 'd["counters"]["ok"] == 0 and sum(v for k, v in d["counters"].items() if k != "ok") == 200')" = True ] || r=1
[ "$(json "$L" 'd["counters"]["bad_mac"] >= '"$icv"' and d["counters"]["bad_mac"] > 0')" = True ] || r=1
tap $r "corrupt 1.0 on 200 frames: none accepted, all 200 dropped by a check; bad_mac $(json "$L" 'd["counters"]["bad_mac"]') >= the $icv whose flip hit the ICV (the rest fail earlier checks: $(json "$L" '", ".join("%s %d" % (k, v) for k, v in d["counters"].items() if v and k not in ("ok", "bad_mac"))'))" "$L" "$S"

# ---- reorder: held frames overtaken; the listener drops each as a replay
run_case 300 --reorder 0.2
ro=$(json "$S" 'd["ab"]["reordered"]')
rep=$(json "$L" 'd["counters"]["replay"]')
r=0
[ "$ro" = "$rep" ] && [ "$rep" -gt 0 ] 2>/dev/null || r=1
[ "$(json "$L" 'd["counters"]["ok"] + d["counters"]["replay"]')" = 300 ] || r=1
tap $r "reorder 0.2 on 300 frames: $rep out-of-order arrivals (replay) = the relay's reordered ($ro)" "$L" "$S"

# ---- delay: the frame arrives at least DELAY after it was sent
start_relay --delay 300
start_listener
t0=$(date +%s.%N)
send 1
settle 1
stop_listener
stop_relay
r=0
dt=$(json "$L" '"%.3f" % (next((float(x["time"]) for x in map(json.loads, open(sys.argv[1])) if x.get("status") == "accepted"), -1) - '"$t0"')')
[ "$("$PY" -c "print($dt >= 0.3)" 2>/dev/null)" = True ] || r=1
[ "$(json "$S" 'd["ab"]["delayed"]')" = 1 ] || r=1
tap $r "delay 300 ms: the frame arrives $dt s after it was sent (>= 0.3)" "$L" "$S"

# ---- the queue is bounded, per direction
start_relay --queue 10 --dir ab --delay 3000
r=0
send 50
ip netns exec "$NS" "$Q" send -i s-b -s "$SEC" -c 5 --sender IMPAIR-TEST-B --epoch 1 --seq 1 -n 20 \
	-q hello >"$TMP/send.out" 2>&1 || r=1
sleep 0.3
ctl stats >"$S" 2>&1
[ "$(json "$S" 'd["ab"]["received"] == 50 and d["ab"]["dropped_queue"] == 40 and d["ab"]["max_queued"] == 10 and d["ba"]["forwarded"] == 20')" = True ] || r=1
settle 50
[ "$(json "$S" 'd["ab"]["forwarded"]')" = 10 ] || r=1
stop_relay
tap $r "--queue 10 with a 3 s delay a->b: 10 of 50 frames wait (max_queued 10), 40 dropped_queue, 10 forwarded later; meanwhile b->a forwards 20 of 20" "$S"

# ---- partition
start_relay
r=0
start_listener
ctl partition on >"$TMP/cmd.log" 2>&1 || r=1
send 20
settle 20
[ "$(json "$S" 'd["ab"]["dropped_partition"]')" = 20 ] || r=1
stop_listener
[ "$(json "$L" 'd["counters"]["ok"]')" = 0 ] || r=1
tap $r "partition on: 0 of 20 frames pass, the relay counts 20 dropped_partition" "$L" "$S" "$TMP/cmd.log"
r=0
start_listener
ctl partition off >"$TMP/cmd.log" 2>&1 || r=1
send 20
settle 40
stop_listener
[ "$(json "$L" 'd["counters"]["ok"]')" = 20 ] || r=1
tap $r "partition off: 20 of 20 frames pass again" "$L" "$S" "$TMP/cmd.log"
r=0
ctl partition 1 >"$TMP/cmd.log" 2>&1 || r=1
ctl stats >"$S"
[ "$(json "$S" 'd["ab"]["settings"]["partition"] and d["ba"]["settings"]["partition"]')" = True ] || r=1
sleep 1.3
start_listener
send 5
settle 45
stop_listener
stop_relay
[ "$(json "$S" 'not d["ab"]["settings"]["partition"]')" = True ] || r=1
[ "$(json "$L" 'd["counters"]["ok"]')" = 5 ] || r=1
tap $r "partition 1: on for both directions, off by itself after 1 s (5 of 5 frames pass afterwards)" "$L" "$S" "$TMP/cmd.log"

# ---- determinism: a seed replays the decisions
IMPAIRS="--loss 0.2 --dup 0.2 --reorder 0.2 --corrupt 0.2 --delay 2 --jitter 2"
# shellcheck disable=SC2086
start_relay --seed 4242 --trace "$TMP/t1" $IMPAIRS && send 400 && settle 400
stop_relay
# shellcheck disable=SC2086
start_relay --seed 4242 --trace "$TMP/t2" $IMPAIRS && send 400 && settle 400
stop_relay
# shellcheck disable=SC2086
start_relay --seed 4243 --trace "$TMP/t3" $IMPAIRS && send 400 && settle 400
stop_relay
l1=$(wc -l <"$TMP/t1")
r=0
[ "$l1" -eq 400 ] && cmp -s "$TMP/t1" "$TMP/t2" || r=1
tap $r "the same seed (4242) twice on the same 400 frames: identical traces ($l1 lines)" "$TMP/t1"
[ -s "$TMP/t3" ] && ! cmp -s "$TMP/t1" "$TMP/t3"
tap $? "another seed (4243): a different trace ($(diff "$TMP/t1" "$TMP/t3" | grep -c '^<') of 400 lines differ)"

ip netns del "$NS"

# ---- the lab through the relay
LABDIR=$(mktemp -d /tmp/qkil.XXXXXX)
LAB="sh $REPO/tests/lab/lab.sh"
export BUILD
LAB_CONFIRM_TIMEOUT=20 LAB_IMPAIR=1 $LAB up "$LABDIR" >"$TMP/lab.out" 2>&1
rc=$?
[ $rc -eq 0 ] && labup=1
tap $rc "LAB_IMPAIR=1 lab.sh up: $(tail -n 1 "$TMP/lab.out")" "$TMP/lab.out"
if [ $labup = 1 ]; then
	# shellcheck disable=SC1091
	. "$LABDIR/lab.env"
	$LAB check "$LABDIR" >"$TMP/check.out" 2>&1
	rc=$?
	grep -q "crossed the impairment relay" "$TMP/check.out"
	tap $((rc | $?)) "lab.sh check passes, its L2 frames through the relay ($(grep -c '^ok' "$TMP/check.out") ok)" "$TMP/check.out"
	if [ -x "$BUILD/qkdlinkd" ] && [ -x "$BUILD/qkdlinkctl" ]; then
		$LAB start "$LABDIR" >"$TMP/start.out" 2>&1
		tap $? "the agents start" "$TMP/start.out"
		$LAB exec "$LABDIR" "$PY" - "$LABDIR" "$REPO/tests/lab" >"$TMP/e2e.out" 2>&1 <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
import agents
lab = sys.argv[1]
agents.tap(agents.impair(lab, "set", "loss=0.3") == "ok", "loss=0.3 set on the relay, both ways")
k, chans, why = agents.wait_settled(lab, 7, 30, started=True)
agents.tap(why is None, "channel 7 settles with its peers alive under loss 0.3", why or "")
before = agents.impair(lab, "stats")
seen = set()
for i in (1, 2):
    agents.rotate_once(lab, 7, i, seen)
after = agents.impair(lab, "stats")
lost = sum(after[d]["dropped_loss"] - before[d]["dropped_loss"] for d in ("ab", "ba"))
agents.tap(lost > 0, "the relay dropped %d frames during the two rotations" % lost, str(after))
sys.exit(1 if agents.FAILED else 0)
EOF
		rc=$?
		while IFS= read -r line; do
			case "$line" in
			"ok "*) tap 0 "lab: ${line#ok [0-9]* - }" ;;
			"not ok "*) tap 1 "lab: ${line#not ok [0-9]* - }" ;;
			*) echo "# $line" ;;
			esac
		done <"$TMP/e2e.out"
		[ $rc -eq 0 ] || grep -q '^not ok' "$TMP/e2e.out" || tap 1 "the lab's python checks ran (exit $rc)" "$TMP/e2e.out"
	else
		tap 1 "$BUILD/qkdlinkd and qkdlinkctl are built (run make)"
	fi
	# shellcheck disable=SC1091
	. "$LABDIR/lab.env"
	pids="$KMESIM_PID $IMPAIR_PID ${AGENT_PID_a:-} ${AGENT_PID_b:-}"
	$LAB down "$LABDIR" >"$TMP/down.out" 2>&1
	rc=$?
	labup=0
	left=""
	ip netns list | grep -qw "^$LAB_NS" && left="$left namespace $LAB_NS"
	for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left pid $p"; done
	[ -z "$(ls -A "$LABDIR")" ] || left="$left files: $(ls -A "$LABDIR" | tr '\n' ' ')"
	[ $rc -eq 0 ] && [ -z "$left" ]
	tap $? "lab.sh down leaves nothing (no namespace, no relay, KME or agent process, an empty directory)${left:+; left:$left}" "$TMP/down.out"
fi
exit $failed
