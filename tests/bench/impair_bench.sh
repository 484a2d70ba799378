#!/bin/sh
# The impairment relay's cost (docs/reliability.md): one-way latency of
# qkdlink frames veth to veth directly and through qkdlink-impair with no
# impairment (build/l2-latency, as in l2_latency.sh), then the relay's
# forwarding rate: IMPAIR_BURST frames sent flat out through it (tcpreplay), counted by
# the relay (forwarded, kernel_dropped) over the time until it has drained.
# A benchmark, not a test: no thresholds. Needs root (namespaces).
# Usage: tests/bench/impair_bench.sh BUILD_DIR
# Environment: L2_FRAMES (10000), L2_GAP_US (100), IMPAIR_BURST (200000).
set -u
BUILD=$(cd "${1:-build}" && pwd) || exit 1
FRAMES=${L2_FRAMES:-10000}
GAP_US=${L2_GAP_US:-100}
BURST=${IMPAIR_BURST:-200000}
NS=qkbi-$$
TMP=
RPID=
IPID=

cleanup() {
	[ -n "$RPID" ] && kill "$RPID" 2>/dev/null
	[ -n "$IPID" ] && kill "$IPID" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	[ -n "$TMP" ] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

for b in l2-latency qkdlink-impair qkd88b7; do
	[ -x "$BUILD/$b" ] || { echo "impair_bench.sh: $BUILD/$b is missing (make)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "impair_bench.sh: needs root (namespaces): skipped" >&2; exit 0; }
TMP=$(mktemp -d /tmp/qkdbench.XXXXXX) || exit 1
# d-a <-> d-b direct; s-a <-> i-a, relay, i-b <-> s-b
ip netns add "$NS" && ip -n "$NS" link set lo up &&
	ip -n "$NS" link add d-a type veth peer name d-b &&
	ip -n "$NS" link add s-a type veth peer name i-a &&
	ip -n "$NS" link add i-b type veth peer name s-b || exit 1
for i in d-a d-b s-a i-a i-b s-b; do ip -n "$NS" link set "$i" up || exit 1; done
(umask 077 && head -c 32 /dev/urandom >"$TMP/secret") || exit 1

latency() { # TX RX [--header]
	: >"$TMP/err"
	ip netns exec "$NS" "$BUILD/l2-latency" recv -i "$2" -s "$TMP/secret" -n "$FRAMES" ${3:-} \
		>"$TMP/out" 2>"$TMP/err" &
	RPID=$!
	i=0
	until grep -q ready "$TMP/err"; do
		i=$((i + 1))
		[ $i -gt 100 ] && { cat "$TMP/err" >&2; exit 1; }
		sleep 0.05
	done
	ip netns exec "$NS" "$BUILD/l2-latency" send -i "$1" -s "$TMP/secret" -n "$FRAMES" --gap-us "$GAP_US"
	wait "$RPID"
	RPID=
	cat "$TMP/out"
}

ip netns exec "$NS" "$BUILD/qkdlink-impair" --control "$TMP/ctl" i-a i-b 2>"$TMP/relay.err" &
IPID=$!
i=0
while [ ! -S "$TMP/ctl" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
echo "$FRAMES ANNOUNCE frames, one every $GAP_US µs (l2-latency): direct veth, then through the relay"
latency d-a d-b --header
latency s-a s-b

stats() { "$BUILD/qkdlink-impair" -C "$TMP/ctl" stats; }
get() { /usr/bin/python3 -c 'import json, sys; d = json.loads(sys.stdin.read()); print(eval(sys.argv[1]))' "$1"; }
base=$(stats | get 'd["ab"]["forwarded"]')
# the burst: 10,000 signed HELLOs replayed by tcpreplay --topspeed (a faster
# sender than l2-latency, which signs every frame)
"$BUILD/qkd88b7" send -w "$TMP/burst.pcap" -s "$TMP/secret" -c 5 --sender BENCH --epoch 1 --seq 1 \
	-n 10000 -q hello >/dev/null || exit 1
t0=$(date +%s.%N)
ip netns exec "$NS" tcpreplay -q --topspeed --loop=$((BURST / 10000)) -i s-a "$TMP/burst.pcap" >"$TMP/tcpreplay.out" 2>&1 ||
	{ cat "$TMP/tcpreplay.out" >&2; exit 1; }
t1=$(date +%s.%N)
BURST=$((BURST / 10000 * 10000))
last=-1
while :; do
	cur=$(stats | get 'd["ab"]["received"] + d["ab"].get("kernel_dropped", 0)')
	[ "$cur" = "$last" ] && break
	last=$cur
	t2=$(date +%s.%N)
	sleep 0.2
done
s=$(stats)
fwd=$(($(echo "$s" | get 'd["ab"]["forwarded"]') - base))
kd=$(echo "$s" | get 'd["ab"].get("kernel_dropped", 0)')
echo "burst: $BURST frames sent flat out in $(echo "$t1 $t0" | awk '{printf "%.2f", $1 - $2}') s;" \
	"the relay forwarded $fwd, its capture ring dropped $kd;" \
	"$(echo "$fwd $t2 $t0" | awk '{printf "%.0f", $1 / ($2 - $3)}') frames/s forwarded (until drained, 0.2 s resolution;" \
	"equal to the sender's rate when nothing was dropped: the relay kept up)"
