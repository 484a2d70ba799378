#!/bin/sh
# test_lab.sh BUILD - the qkdlink lab (tests/lab/lab.sh, docs/lab.md), end to end.
#
# Runs the two-site lab, then the three-site one. For each, without the agent:
# lab up, every part checked (`lab.sh check`: the KME pair gives SAE-A and SAE-B
# identical keys, every router accepts a push that an independent ncclient reads
# back, qkd88b7 frames cross the L2 link both ways), lab down, and then nothing
# may be left: no namespace, no process, no user, no file.
# With build/qkdlinkd and build/qkdlinkctl (checked at run time) the agents are
# started in between and issue 5 §4's checks that they can satisfy now run
# (tests/lab/agents.py e2e): two sites: ROTATIONS (default 20) rotations of
# channel 7 (A master) and one of channel 8 (B master), each followed by an
# ncclient read of both routers (same CKN and CAK, CKN = the channel's
# convention applied to the agents' current key_ID, never a key_ID twice, each
# delivered once by each KME), then channels 7 and 8 rotated at the same moment,
# then three rotations while forged (wrong secret, unknown channel) and replayed
# (tcpdump capture, tcpreplay) frames are injected on the link: they complete and
# every agent's bad_mac, unknown_channel and replay counters grow; then each
# agent (A master, B slave of channel 7) killed with SIGKILL right after
# `rotate` and mid-rotation, restarted, and guarantee 2 checked within the
# recovery bound of protocol.md 10.6 (LAB_CONFIRM_TIMEOUT=20 keeps it short);
# three sites: ROTATIONS3 (default 5) rotations of channel 9 (A master, B and C
# slaves sharing one key) and one of channel 7. Then: the agents are still
# running, stop on SIGTERM, leave no lock, candidate edit or pending confirmed
# commit, and no CAK appears in their logs or state files.
# TAP output; exit 1 on failure. Needs root.
set -u
BUILD=${1:-build}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "not ok 1 - no build directory $1"; exit 1; }
export BUILD
# a short confirmed-commit timeout T_c (the daemon shortens its deadline D to
# fit): the recovery bound after an agent is killed mid-rotation (protocol.md
# 10.6: T_c + 3 H + one rotation) stays under a minute
LAB_CONFIRM_TIMEOUT=${LAB_CONFIRM_TIMEOUT:-20}
export LAB_CONFIRM_TIMEOUT
LAB="sh tests/lab/lab.sh"
DIR=$(mktemp -d /tmp/qkdlab.XXXXXX)
out=$DIR.out
n=0
fail=0
up=0
cleanup() {
	[ $up = 1 ] && $LAB down "$DIR" >/dev/null 2>&1
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

# renumber FILE: a sub-program's TAP lines into this script's sequence
renumber() {
	while IFS= read -r line; do
		case "$line" in
		"ok "*) n=$((n + 1)); echo "ok $n -${line#ok [0-9]* -}" ;;
		"not ok "*) n=$((n + 1)); echo "not ok $n -${line#not ok [0-9]* -}"; fail=1 ;;
		"#"*) echo "$line" ;;
		*) echo "# $line" ;;
		esac
	done <"$1"
}

# run_lab NSITES ROTATIONS: one lab, from up to down
run_lab() {
	nsites=$1
	w="$nsites-site lab"
	LAB_SITES=$nsites $LAB up "$DIR" >"$out" 2>&1
	rc=$?
	[ $rc -eq 0 ] && up=1
	tap $rc "$w up: $(tail -n 1 "$out")" "$out"
	[ $rc -eq 0 ] || return 1
	# shellcheck disable=SC1091
	. "$DIR/lab.env"
	timeout 120 $LAB check "$DIR" >"$out" 2>&1
	renumber "$out"

	if [ -x "$BUILD/qkdlinkd" ] && [ -x "$BUILD/qkdlinkctl" ]; then
		r=0
		for s in $LAB_SITES; do
			"$BUILD/qkdlinkd" -c "$DIR/site-$s/qkdlinkd.json" --check-config >"$out" 2>&1 || r=1
		done
		tap $r "$w: qkdlinkd --check-config accepts every site's configuration" "$out"
		if $LAB start "$DIR" >"$out" 2>&1; then
			tap 0 "$w: the agents start and open their control sockets"
			timeout 600 $LAB exec "$DIR" /usr/bin/python3 tests/lab/agents.py "$DIR" e2e \
				--rotations "$2" >"$out" 2>&1
			rc=$?
			renumber "$out"
			[ $rc -eq 124 ] && tap 1 "$w: end-to-end checks finished within 600 s"
			. "$DIR/lab.env"
			r=0
			: >"$out"
			for s in $LAB_SITES; do
				eval "pid=\$AGENT_PID_$s"
				# shellcheck disable=SC2154
				kill -0 "$pid" 2>/dev/null || {
					echo "agent $s (pid $pid) died; its log ends:" >>"$out"
					tail -n 8 "$DIR/site-$s/qkdlinkd.log" >>"$out"
					r=1
				}
			done
			tap $r "$w: the agents are still running after the checks" "$out"
			$LAB stop "$DIR" >"$out" 2>&1
			tap $? "$w: the agents stop on SIGTERM within 15 s" "$out"
			$LAB routers "$DIR" check --strict >"$out" 2>&1
			tap $? "$w: after the agents stopped the routers of every CA agree; no lock, no candidate edit, no pending confirmed commit" "$out"
			# shellcheck disable=SC2046
			$LAB routers "$DIR" no-cak-in $(for s in $LAB_SITES; do
				echo "$DIR/site-$s/qkdlinkd.log"
				find "$DIR/site-$s/state" -type f
			done) >"$out" 2>&1
			tap $? "$w: no CAK the routers hold appears in the agents' logs or state files" "$out"
		else
			n=$((n + 1))
			echo "not ok $n - $w: qkdlinkd did not start in the lab"
			sed 's/^/#   /' "$out"
			fail=1
		fi
	else
		tap 0 "$w: agent end-to-end checks # SKIP $BUILD/qkdlinkd or qkdlinkctl not built yet"
	fi

	# down: nothing of the lab may remain
	pids=$KMESIM_PID
	users=""
	for s in $LAB_SITES; do
		eval "pids=\"\$pids \${AGENT_PID_$s:-} \$(cat \"\$DIR\"/router-$s/run/*.pid 2>/dev/null)\""
		eval "users=\"\$users \$ROUTER_USER_$s\""
	done
	$LAB down "$DIR" >"$out" 2>&1
	rc=$?
	up=0
	tap $rc "$w down: $(tail -n 1 "$out")" "$out"
	ip netns list | grep -qw "^$LAB_NS"
	tap $((1 - $?)) "$w: no namespace $LAB_NS left (and with it no veth, no bridge)"
	r=0
	: >"$out"
	for p in $pids; do kill -0 "$p" 2>/dev/null && { echo "pid $p still runs" >>"$out"; r=1; }; done
	tap $r "$w: no process of the lab left (KME simulator, sshd, netconfd, agents)" "$out"
	r=0
	for u in $users; do id "$u" >/dev/null 2>&1 && r=1; done
	tap $r "$w: the routers' test users are removed"
	[ -d "$DIR" ] && [ -z "$(ls -A "$DIR")" ]
	tap $? "$w: the lab directory is left as it was given: empty"
}

run_lab 2 "${ROTATIONS:-20}"
run_lab 3 "${ROTATIONS3:-5}"
exit $fail
