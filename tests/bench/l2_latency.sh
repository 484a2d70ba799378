#!/bin/sh
# One-way latency of qkdlink frames, veth to veth across two network
# namespaces, through the L2 port and the receiver's checks (l2_latency.c says
# how it is measured). Prints one Markdown table row per run.
# A benchmark, not a test: no thresholds. Needs root (namespaces).
# Usage: tests/bench/l2_latency.sh BUILD_DIR
# Environment: L2_FRAMES (10000), L2_GAP_US (100), L2_RUNS (1), L2_CPU (unset: no
# pinning; a CPU number: sender and receiver both pinned to it with taskset, which
# avoids cross-CPU wake-ups and gives the steadiest figures).
set -u
BUILD=${1:-build}
BIN=$BUILD/l2-latency
FRAMES=${L2_FRAMES:-10000}
GAP_US=${L2_GAP_US:-100}
RUNS=${L2_RUNS:-1}
PIN=
[ -n "${L2_CPU:-}" ] && PIN="taskset -c $L2_CPU"
NS=qkb-$$
TMP=
RPID=

cleanup() {
	[ -n "$RPID" ] && kill "$RPID" 2>/dev/null
	ip netns del "$NS-a" 2>/dev/null
	ip netns del "$NS-b" 2>/dev/null
	[ -n "$TMP" ] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ ! -x "$BIN" ]; then
	echo "l2_latency.sh: $BIN is missing (make $BIN)" >&2
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "l2_latency.sh: needs root to create network namespaces: skipped" >&2
	exit 0
fi
TMP=$(mktemp -d /tmp/qkdbench.XXXXXX) || exit 1
ip netns add "$NS-a" && ip netns add "$NS-b" &&
	ip link add va netns "$NS-a" type veth peer name vb netns "$NS-b" &&
	ip -n "$NS-a" link set va up && ip -n "$NS-b" link set vb up || {
	echo "l2_latency.sh: cannot set up the namespaces" >&2
	exit 1
}
head -c 32 /dev/urandom >"$TMP/secret" && chmod 600 "$TMP/secret" || exit 1

echo "$FRAMES ANNOUNCE frames, one every $GAP_US µs; latency = receiver's clock after"
echo "qkd_rx_frame() minus the sender's clock before encoding (CLOCK_MONOTONIC);"
if [ -n "$PIN" ]; then
	echo "sender and receiver pinned to CPU $L2_CPU"
else
	echo "sender and receiver not pinned to a CPU"
fi
run=1
header=--header
while [ "$run" -le "$RUNS" ]; do
	: >"$TMP/err"
	# shellcheck disable=SC2086
	ip netns exec "$NS-b" $PIN "$BIN" recv -i vb -s "$TMP/secret" -n "$FRAMES" $header \
		>"$TMP/out" 2>"$TMP/err" &
	RPID=$!
	tries=0
	until grep -q ready "$TMP/err"; do
		tries=$((tries + 1))
		if [ "$tries" -gt 100 ] || ! kill -0 "$RPID" 2>/dev/null; then
			echo "l2_latency.sh: the receiver did not start:" >&2
			cat "$TMP/err" >&2
			exit 1
		fi
		sleep 0.05
	done
	# shellcheck disable=SC2086
	ip netns exec "$NS-a" $PIN "$BIN" send -i va -s "$TMP/secret" -n "$FRAMES" --gap-us "$GAP_US"
	wait "$RPID"
	RPID=
	cat "$TMP/out"
	grep -v ready "$TMP/err" >&2
	header=
	run=$((run + 1))
done
