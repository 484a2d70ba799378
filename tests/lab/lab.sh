#!/bin/sh
# lab.sh - the qkdlink lab on one machine: two sites (or three), each with its
# KME, router and agent, on one L2 link (issue 5 §4, docs/lab.md).
#
#   lab.sh up DIR              build the lab, everything recorded in DIR/lab.env
#   lab.sh down DIR            remove exactly what `up` made (and DIR, if up made it)
#   lab.sh status DIR          what runs, where, on which ports
#   lab.sh check DIR           TAP checks of every part: KME pair, routers, L2 link
#   lab.sh start DIR           start the agents (build/qkdlinkd) in the lab
#   lab.sh stop DIR            stop the agents (SIGTERM, then SIGKILL after 15 s)
#   lab.sh ctl DIR SITE ARGS   qkdlinkctl against site a's, b's (or c's) agent
#   lab.sh routers DIR ARGS    tests/lab/routers.py in the lab (independent ncclient)
#   lab.sh exec DIR CMD...     run CMD inside the lab's network namespace
#   lab.sh impair DIR CMD...   a command to the impairment relay (LAB_IMPAIR=1):
#                              set loss=0.3 ..., partition on|off|S, reset, stats
#
# Layout: one network namespace qkl-ID holds everything: its loopback (up) with
# the KME simulator (KME-A, KME-B, KME-C and an admin port) and one netconfd
# "router" per site behind its own sshd (tests/fixtures/netconf/server.sh); the
# L2 link: two sites, a veth pair site-a <-> site-b; three sites, veths site-X
# <-> br-X on a bridge lab-br; two sites with LAB_IMPAIR=1: site-a <-> imp-a
# and imp-b <-> site-b, with build/qkdlink-impair relaying (and impairing) the
# 0x88B7 frames between imp-a and imp-b. The agents run in it too, with their control
# sockets in DIR (reachable from the host). Removing the namespace removes the
# links. Channels: 7 (A master, B slave, CKN prefix), 8 (B master, A slave, CKN
# sha256); three sites: 9 (A master, B and C slaves, one key for both).
#
# Settings (environment, read by `up`): LAB_SITES (2 or 3, default 2), BUILD
# (default: the repo's build/), LAB_ROTATION_INTERVAL (0: rotations only on
# `qkdlinkctl rotate`), LAB_HELLO_INTERVAL (1), LAB_CONFIRM_TIMEOUT (60),
# LAB_LOG_LEVEL (info), LAB_IMPAIR (1: the link goes through the impairment
# relay, two sites only), LAB_IMPAIR_SEED (the relay's seed; default from the
# clock, printed), LAB_IMPAIR_TRACE (1: DIR/impair.trace), LAB_IMPAIR_ARGS
# (initial impairments, e.g. "--loss 0.1 --delay 5"). Needs root (namespaces, useradd for the routers' users).
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
FIX=$REPO/tests/fixtures/netconf/server.sh
PY=/usr/bin/python3
PREFIX7=5142434b0000000000000000000000a7
PREFIX9=5142434b0000000000000000000000a9

usage() {
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

die() {
	echo "lab: $*" >&2
	exit 1
}

# rec NAME VALUE: records a fact about the lab (what down must undo) at once
rec() {
	printf "%s='%s'\n" "$1" "$2" >>"$DIR/lab.env"
	eval "$1=\$2"
}

load() {
	[ -f "$DIR/lab.env" ] || die "$DIR: no lab here (no lab.env)"
	# shellcheck disable=SC1091
	. "$DIR/lab.env"
}

in_ns() { ip netns exec "$LAB_NS" "$@"; }

# alive PID: running (a zombie, e.g. an agent killed with SIGKILL and not yet
# reaped by its reparented-to parent, counts as gone)
alive() {
	[ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
	case $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) in Z | X) return 1 ;; esac
	return 0
}

# wait_file FILE TENTHS [PID]: until FILE is non-empty (or PID died)
wait_file() {
	i=0
	while [ ! -s "$1" ] && [ $i -lt "$2" ]; do
		if [ -n "${3:-}" ] && ! alive "$3"; then return 1; fi
		sleep 0.1
		i=$((i + 1))
	done
	[ -s "$1" ]
}

# stop_pid PID TENTHS: TERM, wait, KILL; only the pid we recorded.
# Returns 1 if it took a SIGKILL.
stop_pid() {
	alive "$1" || return 0
	kill "$1" 2>/dev/null
	i=0
	while alive "$1" && [ $i -lt "$2" ]; do
		sleep 0.1
		i=$((i + 1))
	done
	alive "$1" || return 0
	kill -9 "$1" 2>/dev/null
	i=0
	while alive "$1" && [ $i -lt 20 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

secret() { # FILE BYTES: random secret, 0600 from the start
	(umask 077 && head -c "$2" /dev/urandom >"$1")
}

free_port_ns() { # a TCP port free in the lab whose router user does not exist yet
	while :; do
		p=$(in_ns "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		id "qkdnc$p" >/dev/null 2>&1 || { echo "$p"; return; }
	done
}

# ---------------------------------------------------------------- up
up() {
	if [ -f "$DIR/lab.env" ]; then
		. "$DIR/lab.env"
		if [ -n "${LAB_UP:-}" ] && ip netns list | grep -qw "^$LAB_NS" && alive "${KMESIM_PID:-}"; then
			echo "lab: already up in $DIR (namespace $LAB_NS)"
			return 0
		fi
		echo "lab: $DIR holds a lab that is not fully up: removing it first" >&2
		keep=$DIR
		down_quiet
		DIR=$keep
	fi
	BUILD=${BUILD:-$REPO/build}
	BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || die "no build directory (run make)"
	impair=${LAB_IMPAIR:-0}
	case $impair in
	0 | 1) ;;
	*) die "LAB_IMPAIR=$impair: 0 or 1" ;;
	esac
	[ "$impair" = 1 ] && [ "${LAB_SITES:-2}" != 2 ] &&
		die "LAB_IMPAIR=1 needs two sites (the relay joins two ports), not LAB_SITES=${LAB_SITES}"
	tools="qkdlink-kmesim qkdlink-kme qkdlink-netconf qkd88b7 qkdlinkd-check"
	[ "$impair" = 1 ] && tools="$tools qkdlink-impair"
	for b in $tools; do
		[ -x "$BUILD/$b" ] || die "$BUILD/$b is not built (run make)"
	done
	if [ -n "${LAB_IMPAIR_SEED:-}" ]; then
		case $LAB_IMPAIR_SEED in
		*[!0-9]* | '') die "LAB_IMPAIR_SEED=$LAB_IMPAIR_SEED: a decimal number" ;;
		esac
	fi
	made=0
	if [ ! -d "$DIR" ]; then
		mkdir -p "$DIR" || die "cannot create $DIR"
		made=1
	elif [ -n "$(ls -A "$DIR")" ]; then
		die "$DIR is not empty and holds no lab: give a new or empty directory"
	fi
	DIR=$(cd "$DIR" && pwd)
	case $DIR in
	*[!A-Za-z0-9/._-]*) [ $made = 1 ] && rmdir "$DIR"; die "$DIR: only letters, digits and /._- please (the path goes into configs and sed)" ;;
	esac
	# socket paths (router's UNIX socket, control sockets) must stay under 107 bytes
	[ ${#DIR} -le 64 ] || { [ $made = 1 ] && rmdir "$DIR"; die "$DIR: path too long for the lab's UNIX sockets (64 characters at most)"; }
	: >"$DIR/lab.env"
	chmod 600 "$DIR/lab.env"
	rec LAB_MADE_DIR $made
	rec LAB_DIR "$DIR"
	rec LAB_BUILD "$BUILD"
	rec LAB_REPO "$REPO"
	trap 'echo "lab: up failed, removing what was made" >&2; down_quiet; exit 1' EXIT
	trap 'exit 1' INT TERM
	t0=$(date +%s.%N)
	# the routers' test users must reach DIR/router-*/ (netconfd runs as them)
	chmod 711 "$DIR"

	# 1. the namespace: loopback up; two sites: a veth pair site-a <-> site-b;
	#    three sites: each site-X is a veth to port br-X of a bridge
	case ${LAB_SITES:-2} in
	2) sites="a b" ;;
	3) sites="a b c" ;;
	*) die "LAB_SITES=${LAB_SITES}: 2 or 3" ;;
	esac
	id=$(hex 3)
	while ip netns list | grep -qw "^qkl-$id"; do id=$(hex 3); done
	ip netns add "qkl-$id" || die "ip netns add qkl-$id failed"
	rec LAB_NS "qkl-$id"
	rec LAB_SITES "$sites"
	# 198.18.0.1 (RFC 2544 test range) on lo: libevent's resolver (the KME
	# simulator's listeners) treats a host whose only IPv4 address is loopback as
	# having no IPv4 at all ("address family for nodename not supported")
	ip -n "$LAB_NS" link set lo up &&
		ip -n "$LAB_NS" addr add 198.18.0.1/32 dev lo || die "loopback setup in $LAB_NS failed"
	if [ "$sites" = "a b" ] && [ "$impair" = 1 ]; then
		# site-a <-> imp-a, imp-b <-> site-b: the relay joins imp-a and imp-b
		ip -n "$LAB_NS" link add site-a type veth peer name imp-a &&
			ip -n "$LAB_NS" link add imp-b type veth peer name site-b &&
			ip -n "$LAB_NS" link set imp-a address 02:51:4b:00:01:0a &&
			ip -n "$LAB_NS" link set imp-b address 02:51:4b:00:01:0b &&
			ip -n "$LAB_NS" link set imp-a up &&
			ip -n "$LAB_NS" link set imp-b up || die "veth pairs for the relay in $LAB_NS failed"
	elif [ "$sites" = "a b" ]; then
		ip -n "$LAB_NS" link add site-a type veth peer name site-b || die "veth pair in $LAB_NS failed"
	else
		ip -n "$LAB_NS" link add lab-br type bridge forward_delay 0 stp_state 0 &&
			ip -n "$LAB_NS" link set lab-br up || die "bridge in $LAB_NS failed"
		for s in $sites; do
			ip -n "$LAB_NS" link add "site-$s" type veth peer name "br-$s" &&
				ip -n "$LAB_NS" link set "br-$s" master lab-br &&
				ip -n "$LAB_NS" link set "br-$s" up || die "veth site-$s in $LAB_NS failed"
		done
	fi
	for s in $sites; do
		rec "LAB_IF_$s" "site-$s"
		rec "LAB_MAC_$s" "02:51:4b:00:00:0$s"
		ip -n "$LAB_NS" link set "site-$s" address "02:51:4b:00:00:0$s" &&
			ip -n "$LAB_NS" link set "site-$s" up || die "site-$s setup in $LAB_NS failed"
	done

	# 1b. the impairment relay between imp-a and imp-b (no impairment unless
	#     LAB_IMPAIR_ARGS says so); its seed goes to lab.env and the output
	if [ "$impair" = 1 ]; then
		rec LAB_IMPAIR 1
		rec IMPAIR_SOCK "$DIR/impair.sock"
		set -- --control "$IMPAIR_SOCK"
		[ -n "${LAB_IMPAIR_SEED:-}" ] && set -- "$@" --seed "$LAB_IMPAIR_SEED"
		[ "${LAB_IMPAIR_TRACE:-0}" = 1 ] && set -- "$@" --trace "$DIR/impair.trace"
		# shellcheck disable=SC2086
		ip netns exec "$LAB_NS" setsid "$BUILD/qkdlink-impair" "$@" ${LAB_IMPAIR_ARGS:-} \
			imp-a imp-b </dev/null >/dev/null 2>"$DIR/impair.log" &
		rec IMPAIR_PID $!
		i=0
		while [ ! -S "$IMPAIR_SOCK" ] && [ $i -lt 100 ] && alive "$IMPAIR_PID"; do
			sleep 0.1
			i=$((i + 1))
		done
		[ -S "$IMPAIR_SOCK" ] || { cat "$DIR/impair.log" >&2; die "qkdlink-impair did not start"; }
		rec IMPAIR_SEED "$(sed -n 's/^qkdlink-impair: seed \([0-9]*\).*/\1/p' "$DIR/impair.log")"
	fi

	# 2. the test PKI and the secrets (0600)
	mkdir -m 700 "$DIR/secrets" "$DIR/bootstrap"
	sh "$REPO/kme/sim/mkpki.sh" -k "KME-A KME-B KME-C" -s "SAE-A SAE-B SAE-C" \
		"$DIR/pki" >"$DIR/mkpki.log" 2>&1 || { cat "$DIR/mkpki.log" >&2; die "mkpki.sh failed"; }
	chmod 700 "$DIR/pki"
	secret "$DIR/secrets/ch7.secret" 32
	secret "$DIR/secrets/ch8.secret" 32
	secret "$DIR/secrets/ch9.secret" 32
	secret "$DIR/secrets/check.secret" 32

	# 3. the KME simulator: KME-A, KME-B (and KME-C for a third site) on the lab's loopback
	p=$DIR/pki
	mkdir -m 700 "$DIR/kme"
	cat >"$DIR/kme/sim.json" <<JSON
{"ca": "$p/ca.pem", "key_size": 256, "max_key_per_request": 16, "max_SAE_ID_count": 4,
 "max_key_count": 100000, "admin": "127.0.0.1:0",
 "kmes": [
  {"id": "KME-A", "listen": "127.0.0.1:0", "cert": "$p/kme-KME-A.pem", "key": "$p/kme-KME-A.key",
   "wrong_cert": "$p/kme-wrong.pem", "wrong_key": "$p/kme-wrong.key"},
  {"id": "KME-B", "listen": "127.0.0.1:0", "cert": "$p/kme-KME-B.pem", "key": "$p/kme-KME-B.key",
   "wrong_cert": "$p/kme-wrong.pem", "wrong_key": "$p/kme-wrong.key"},
  {"id": "KME-C", "listen": "127.0.0.1:0", "cert": "$p/kme-KME-C.pem", "key": "$p/kme-KME-C.key"}],
 "saes": [{"id": "SAE-A", "kme": "KME-A"}, {"id": "SAE-B", "kme": "KME-B"},
          {"id": "SAE-C", "kme": "KME-C"}]}
JSON
	# not a process-group member of the caller: Ctrl-C reaches only the caller,
	# whose trap then takes the lab down in order
	ip netns exec "$LAB_NS" setsid "$BUILD/qkdlink-kmesim" -c "$DIR/kme/sim.json" \
		-p "$DIR/kme/ports" -l "$DIR/kme/kmesim.log" </dev/null >/dev/null 2>"$DIR/kme/kmesim.err" &
	rec KMESIM_PID $!
	wait_file "$DIR/kme/ports" 100 "$KMESIM_PID" ||
		{ cat "$DIR/kme/kmesim.err" >&2; die "qkdlink-kmesim did not start"; }
	rec KME_PORT_a "$(awk '$1=="KME-A"{print $2}' "$DIR/kme/ports")"
	rec KME_PORT_b "$(awk '$1=="KME-B"{print $2}' "$DIR/kme/ports")"
	rec KME_PORT_c "$(awk '$1=="KME-C"{print $2}' "$DIR/kme/ports")"
	rec KME_ADMIN_PORT "$(awk '$1=="admin"{print $2}' "$DIR/kme/ports")"

	# 4. one router per site: netconfd behind its own sshd, own user and key
	rpids=""
	for s in $sites; do
		rec "ROUTER_DIR_$s" "$DIR/router-$s"
		port=$(free_port_ns)
		rec "ROUTER_PORT_$s" "$port"
		NC_PORT=$port ip netns exec "$LAB_NS" setsid sh "$FIX" start "$DIR/router-$s" \
			</dev/null >"$DIR/router-$s.log" 2>&1 &
		rpids="$rpids $!"
	done
	ok=1
	for p in $rpids; do wait "$p" || ok=0; done
	[ $ok = 1 ] || { cat "$DIR"/router-?.log >&2; die "a router did not start"; }
	for s in $sites; do
		# shellcheck disable=SC1090
		. "$DIR/router-$s/env"
		rec "ROUTER_USER_$s" "$NC_USER"
	done

	# 5. the routers configured as an operator would before the agents come:
	#    CA-QKD-7 and CA-QKD-8 (and CA-QKD-9 with three sites) bound to their
	#    interfaces, each on one bootstrap key common to its routers
	bootstrap_push || die "bootstrap push to the routers failed"

	# 6. the agents' configurations, from tests/lab/agent.json.in, validated:
	#    channel 7: A master, B slave; channel 8: B master, A slave; with three
	#    sites, channel 9: A master, B and C slaves (one key for both)
	interval=${LAB_ROTATION_INTERVAL:-0}
	rec LAB_ROTATION_INTERVAL "$interval"
	for s in $sites; do
		mkdir -m 700 "$DIR/site-$s" "$DIR/site-$s/state"
		S=$(echo "$s" | tr abc ABC)
		case $s in
		a) chans="$(chan 7 master SAE-B) $(chan 8 slave SAE-B)" ;;
		b) chans="$(chan 7 slave SAE-A) $(chan 8 master SAE-A)" ;;
		c) chans="" ;;
		esac
		if [ "$sites" = "a b c" ]; then
			case $s in
			a) chans="$chans $(chan 9 master SAE-B SAE-C)" ;;
			*) chans="$chans $(chan 9 slave SAE-A)" ;;
			esac
		fi
		# one channel object per line, separated by commas, in place of @CHANNELS@
		echo "$chans" | sed 's/^ *//; s/} {/},\n{/g' | sed 's/^/    /' >"$DIR/site-$s/channels.part"
		rd=$DIR/router-$s
		eval "rport=\$ROUTER_PORT_$s ruser=\$ROUTER_USER_$s kport=\$KME_PORT_$s"
		# shellcheck disable=SC2154
		sed -e "s#@SAE@#SAE-$S#g" -e "s#@SITE@#$DIR/site-$s#g" \
			-e "s#@HELLO@#${LAB_HELLO_INTERVAL:-1}#g" -e "s#@LOG_LEVEL@#${LAB_LOG_LEVEL:-info}#g" \
			-e "s#@KME_PORT@#$kport#g" -e "s#@KME_ID@#KME-$S#g" -e "s#@PKI@#$DIR/pki#g" \
			-e "s#@ROUTER_PORT@#$rport#g" -e "s#@ROUTER_USER@#$ruser#g" \
			-e "s#@ROUTER_KEY@#$rd/keys/client_ed25519#g" \
			-e "s#@ROUTER_KNOWN_HOSTS@#$rd/known_hosts#g" \
			-e "s#@CONFIRM@#${LAB_CONFIRM_TIMEOUT:-60}#g" -e "s#@IF@#site-$s#g" \
			"$REPO/tests/lab/agent.json.in" |
			awk -v part="$DIR/site-$s/channels.part" \
				'/@CHANNELS@/ { while ((getline l < part) > 0) print l; next } { print }' \
				>"$DIR/site-$s/qkdlinkd.json"
		rm -f "$DIR/site-$s/channels.part"
		"$BUILD/qkdlinkd-check" "$DIR/site-$s/qkdlinkd.json" >"$DIR/site-$s/check.out" 2>&1 ||
			{ cat "$DIR/site-$s/check.out" >&2; die "site $s: generated config refused"; }
	done
	rec LAB_UP 1
	t1=$(date +%s.%N)
	rec LAB_UP_SECONDS "$(echo "$t1 $t0" | awk '{printf "%.1f", $1 - $2}')"
	trap - EXIT INT TERM
	# shellcheck disable=SC2154
	echo "lab: up in ${LAB_UP_SECONDS} s: namespace $LAB_NS, sites $sites, KMEs :$KME_PORT_a :$KME_PORT_b :$KME_PORT_c, routers :$ROUTER_PORT_a :$ROUTER_PORT_b${ROUTER_PORT_c:+ :$ROUTER_PORT_c}, ports $(echo "$sites" | sed 's/\([abc]\)/site-\1/g')${IMPAIR_PID:+, impairment relay imp-a <-> imp-b (pid $IMPAIR_PID, seed $IMPAIR_SEED)}"
}

nc_tool() { # SITE ARGS...: qkdlink-netconf against router SITE, in the lab
	s=$1
	shift
	rd=$DIR/router-$s
	eval "rport=\$ROUTER_PORT_$s ruser=\$ROUTER_USER_$s"
	# shellcheck disable=SC2154
	in_ns "$LAB_BUILD/qkdlink-netconf" -H 127.0.0.1 -p "$rport" -u "$ruser" \
		-k "$rd/known_hosts" -i "$rd/keys/client_ed25519" -t 20000 --ns yang "$@"
}

# chan ID ROLE PEER...: one channel object of an agent's configuration (one line)
chan() {
	id=$1 role=$2
	shift 2
	peers=$(printf '"%s", ' "$@" | sed 's/, $//')
	case $id in
	7) ca=CA-QKD-7 ifc=et-0/0/1 suite=gcm-aes-256 ckn='{"prefix": "'$PREFIX7'"}' ;;
	8) ca=CA-QKD-8 ifc=et-0/0/2 suite=gcm-aes-xpn-256 ckn='"sha256"' ;;
	9) ca=CA-QKD-9 ifc=et-0/0/3 suite=gcm-aes-128 ckn='{"prefix": "'$PREFIX9'"}' ;;
	esac
	printf '{"id": %s, "ca_name": "%s", "interfaces": ["%s"], "cipher_suite": "%s", "role": "%s", "peers": [%s], "secrets": [{"id": 1, "file": "%s/secrets/ch%s.secret", "current": true}], "rotation_interval": %s, "ckn": %s}' \
		"$id" "$ca" "$ifc" "$suite" "$role" "$peers" "$DIR" "$id" "$interval" "$ckn"
}

# bootstrap_push: one random common key per CA on both routers (what an
# operator configures by hand before the agents take over); CKNs under the
# channels' conventions for the nil key_ID, CAKs kept 0600 in DIR/bootstrap.
bootstrap_push() {
	ckn7=${PREFIX7}00000000000000000000000000000000
	ckn8=$(printf '%s' 00000000-0000-0000-0000-000000000000 | sha256sum | cut -d' ' -f1)
	ckn9=${PREFIX9}00000000000000000000000000000000
	(
		umask 077
		printf '%s' "$(hex 32)" >"$DIR/bootstrap/ch7.cak"
		printf '%s' "$(hex 32)" >"$DIR/bootstrap/ch8.cak"
		printf '%s' "$(hex 16)" >"$DIR/bootstrap/ch9.cak"
		echo "$ckn7" >"$DIR/bootstrap/ch7.ckn"
		echo "$ckn8" >"$DIR/bootstrap/ch8.ckn"
		echo "$ckn9" >"$DIR/bootstrap/ch9.ckn"
	)
	for s in $LAB_SITES; do
		: >"$DIR/push-$s.log"
		if [ "$s" != c ]; then
			nc_tool "$s" push --ca CA-QKD-7 --cipher gcm-aes-256 --ckn "$ckn7" \
				--cak-file "$DIR/bootstrap/ch7.cak" --interface et-0/0/1 >>"$DIR/push-$s.log" 2>&1 ||
				{ cat "$DIR/push-$s.log" >&2; return 1; }
			nc_tool "$s" push --ca CA-QKD-8 --cipher gcm-aes-xpn-256 --ckn "$ckn8" \
				--cak-file "$DIR/bootstrap/ch8.cak" --interface et-0/0/2 >>"$DIR/push-$s.log" 2>&1 ||
				{ cat "$DIR/push-$s.log" >&2; return 1; }
		fi
		if [ "$LAB_SITES" = "a b c" ]; then
			nc_tool "$s" push --ca CA-QKD-9 --cipher gcm-aes-128 --ckn "$ckn9" \
				--cak-file "$DIR/bootstrap/ch9.cak" --interface et-0/0/3 >>"$DIR/push-$s.log" 2>&1 ||
				{ cat "$DIR/push-$s.log" >&2; return 1; }
		fi
	done
}

# ---------------------------------------------------------------- down
down_quiet() {
	[ -f "$DIR/lab.env" ] || return 0
	LAB_NS='' KMESIM_PID='' LAB_MADE_DIR=0 LAB_SITES="a b c"
	# shellcheck disable=SC2034
	ROUTER_DIR_a='' ROUTER_DIR_b='' ROUTER_DIR_c='' AGENT_PID_a='' AGENT_PID_b='' AGENT_PID_c=''
	IMPAIR_PID=''
	. "$DIR/lab.env"
	# the agents first (they make their channels safe), then servers and the relay
	stop_agents
	stop_pid "$IMPAIR_PID" 30 || echo "lab: the impairment relay (pid $IMPAIR_PID) needed SIGKILL" >&2
	for d in "$ROUTER_DIR_a" "$ROUTER_DIR_b" "$ROUTER_DIR_c"; do
		[ -n "$d" ] && [ -d "$d" ] && sh "$FIX" stop "$d" >/dev/null 2>&1 &
	done
	stop_pid "$KMESIM_PID" 50
	wait
	if [ -n "$LAB_NS" ]; then
		# nothing of ours may still run in the namespace; pids in it only
		for pid in $(ip netns pids "$LAB_NS" 2>/dev/null); do
			echo "lab: process $pid still in $LAB_NS: $(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null)" >&2
			stop_pid "$pid" 30
		done
		ip netns del "$LAB_NS" 2>/dev/null
	fi
	if [ "$LAB_MADE_DIR" = 1 ]; then
		rm -rf "$DIR"
	else
		for f in lab.env mkpki.log pki secrets bootstrap kme check router-a router-b router-c \
			router-a.log router-b.log router-c.log push-a.log push-b.log push-c.log \
			site-a site-b site-c impair.sock impair.log impair.trace; do
			rm -rf "${DIR:?}/$f"
		done
	fi
}

down() {
	if [ ! -f "$DIR/lab.env" ]; then
		echo "lab: no lab in $DIR"
		return 0
	fi
	t0=$(date +%s.%N)
	down_quiet
	t1=$(date +%s.%N)
	echo "lab: down in $(echo "$t1 $t0" | awk '{printf "%.1f", $1 - $2}') s"
}

# ---------------------------------------------------------------- agents
start_agents() {
	load
	[ -x "$LAB_BUILD/qkdlinkd" ] || die "$LAB_BUILD/qkdlinkd is not built yet: the agents cannot start"
	for s in $LAB_SITES; do
		eval "pid=\${AGENT_PID_$s:-}"
		if alive "$pid"; then
			echo "lab: agent $s already running (pid $pid)"
			continue
		fi
		rm -f "$DIR/site-$s/qkdlinkd.sock"
		# own session: a Ctrl-C at the terminal reaches the demo, which stops
		# the agents with SIGTERM (they make their channels safe first)
		ip netns exec "$LAB_NS" setsid "$LAB_BUILD/qkdlinkd" -c "$DIR/site-$s/qkdlinkd.json" -f \
			</dev/null >>"$DIR/site-$s/qkdlinkd.log" 2>&1 &
		rec "AGENT_PID_$s" $!
	done
	for s in $LAB_SITES; do
		eval "pid=\$AGENT_PID_$s"
		i=0
		while [ ! -S "$DIR/site-$s/qkdlinkd.sock" ] && [ $i -lt 100 ] && alive "$pid"; do
			sleep 0.1
			i=$((i + 1))
		done
		if [ ! -S "$DIR/site-$s/qkdlinkd.sock" ]; then
			echo "lab: agent $s (pid $pid) did not open its control socket; its log:" >&2
			tail -n 30 "$DIR/site-$s/qkdlinkd.log" | sed 's/^/  /' >&2
			return 1
		fi
	done
	for s in $LAB_SITES; do
		eval "pid=\$AGENT_PID_$s"
		printf 'lab: agent %s running, pid %s\n' "$s" "$pid"
	done
}

stop_agents() {
	r=0
	# all at once (each makes its channels safe), then wait for each
	for s in $LAB_SITES; do
		eval "pid=\${AGENT_PID_$s:-}"
		alive "$pid" && kill "$pid" 2>/dev/null
	done
	for s in $LAB_SITES; do
		eval "pid=\${AGENT_PID_$s:-}"
		[ -n "$pid" ] || continue
		if ! stop_pid "$pid" 150; then
			echo "lab: agent $s (pid $pid) did not stop within 15 s of SIGTERM: killed" >&2
			r=1
		fi
		# a new start records new pids; an empty record means stopped
		[ -f "$DIR/lab.env" ] && rec "AGENT_PID_$s" ""
	done
	return $r
}

ctl() {
	load
	s=$1
	shift
	s=$(echo "$s" | tr ABC abc)
	case " $LAB_SITES " in *" $s "*) ;; *) die "ctl: a site of the lab: $LAB_SITES" ;; esac
	[ -x "$LAB_BUILD/qkdlinkctl" ] || die "$LAB_BUILD/qkdlinkctl is not built yet"
	"$LAB_BUILD/qkdlinkctl" -s "$DIR/site-$s/qkdlinkd.sock" "$@"
}

# ---------------------------------------------------------------- status
status() {
	load
	st() { if alive "$1"; then echo "running (pid $1)"; else echo "NOT running"; fi; }
	echo "lab $DIR: namespace $LAB_NS (up in ${LAB_UP_SECONDS:-?} s)"
	if ip netns list | grep -qw "^$LAB_NS"; then
		in_ns ip -br link show | sed 's/^/  link  /'
	else
		echo "  namespace MISSING"
	fi
	echo "  KME simulator  $(st "$KMESIM_PID"): KME-A 127.0.0.1:$KME_PORT_a, KME-B :$KME_PORT_b, KME-C :$KME_PORT_c, admin :$KME_ADMIN_PORT"
	for s in $LAB_SITES; do
		eval "port=\$ROUTER_PORT_$s user=\$ROUTER_USER_$s"
		sp=$(cat "$DIR/router-$s/run/sshd.pid" 2>/dev/null)
		np=$(cat "$DIR/router-$s/run/netconfd.pid" 2>/dev/null)
		# shellcheck disable=SC2154
		echo "  router $s       sshd $(st "$sp"), netconfd $(st "$np"): 127.0.0.1:$port user $user"
	done
	if [ -n "${IMPAIR_PID:-}" ]; then
		echo "  relay          $(st "$IMPAIR_PID"): qkdlink-impair imp-a <-> imp-b, seed ${IMPAIR_SEED:-?}, control $IMPAIR_SOCK, log impair.log"
		alive "$IMPAIR_PID" && "$LAB_BUILD/qkdlink-impair" -C "$IMPAIR_SOCK" stats 2>&1 | sed 's/^/    stats: /'
	fi
	for s in $LAB_SITES; do
		eval "pid=\${AGENT_PID_$s:-}"
		if [ -n "$pid" ]; then
			echo "  agent $s        $(st "$pid"): $DIR/site-$s/qkdlinkd.json, log site-$s/qkdlinkd.log"
		else
			echo "  agent $s        not started"
		fi
	done
	for s in $LAB_SITES; do
		eval "pid=\${AGENT_PID_$s:-}"
		if alive "$pid" && [ -x "$LAB_BUILD/qkdlinkctl" ]; then
			echo "--- agent $s: qkdlinkctl status"
			"$LAB_BUILD/qkdlinkctl" -s "$DIR/site-$s/qkdlinkd.sock" status 2>&1 | sed 's/^/  /'
		fi
	done
	echo "--- routers (read by ncclient)"
	routers show 2>&1 | sed 's/^/  /'
}

routers() {
	in_ns "$PY" "$LAB_REPO/tests/lab/routers.py" "$DIR" "$@"
}

impair() {
	load
	[ -n "${IMPAIR_SOCK:-}" ] || die "$DIR: this lab has no impairment relay (LAB_IMPAIR=1 at up)"
	"$LAB_BUILD/qkdlink-impair" -C "$IMPAIR_SOCK" "$@"
}

# impair_forwarded DIRECTION: the relay's forwarded counter (ab or ba), or -1
impair_forwarded() {
	"$LAB_BUILD/qkdlink-impair" -C "$IMPAIR_SOCK" stats 2>/dev/null |
		"$PY" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]]["forwarded"])' "$1" 2>/dev/null ||
		echo -1
}

# ---------------------------------------------------------------- check
n=0
nfail=0
tap() { # RC DESCRIPTION [FILE]: one TAP line; FILE's tail as diagnostics on failure
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		nfail=$((nfail + 1))
		[ -n "${3:-}" ] && [ -f "$3" ] && tail -n 15 "$3" | sed 's/^/#   /'
	fi
}

check() {
	load
	[ -d "$DIR/check" ] || mkdir -m 700 "$DIR/check"
	c=$DIR/check
	agents=0
	nsites=0
	for s in $LAB_SITES; do
		eval "pid=\${AGENT_PID_$s:-}"
		alive "$pid" && agents=1
		nsites=$((nsites + 1))
	done

	# every process of the lab, in the lab's namespace
	r=0
	for pid in "$KMESIM_PID" $(for s in $LAB_SITES; do cat "$DIR/router-$s/run/sshd.pid" \
		"$DIR/router-$s/run/netconfd.pid" 2>/dev/null || echo none; done); do
		alive "$pid" || r=1
		[ "$(readlink /proc/"$pid"/ns/net 2>/dev/null)" = "$(in_ns readlink /proc/self/ns/net)" ] || r=1
	done
	tap $r "the KME simulator and the $nsites routers (sshd, netconfd) run inside namespace $LAB_NS"
	if [ -n "${IMPAIR_PID:-}" ]; then
		r=0
		alive "$IMPAIR_PID" && [ -S "$IMPAIR_SOCK" ] || r=1
		[ "$(readlink /proc/"$IMPAIR_PID"/ns/net 2>/dev/null)" = "$(in_ns readlink /proc/self/ns/net)" ] || r=1
		[ "$(stat -c %a "$IMPAIR_SOCK" 2>/dev/null)" = 600 ] || r=1
		tap $r "the impairment relay (pid $IMPAIR_PID, seed ${IMPAIR_SEED:-?}) runs inside namespace $LAB_NS, control socket mode 0600" "$DIR/impair.log"
		fwd_ab=$(impair_forwarded ab)
		fwd_ba=$(impair_forwarded ba)
	fi
	r=0
	find "$DIR/pki" "$DIR/secrets" "$DIR/bootstrap" -type f ! -perm 600 | grep -q . && r=1
	for s in $LAB_SITES; do
		for f in "$DIR/router-$s/keys/client_ed25519" "$DIR/router-$s/keys/password"; do
			[ "$(stat -c %a "$f")" = 600 ] || r=1
		done
	done
	tap $r "every private file of the lab (PKI, secrets, router keys, passwords) is mode 0600"
	r=0
	for s in $LAB_SITES; do "$LAB_BUILD/qkdlinkd-check" "$DIR/site-$s/qkdlinkd.json" >"$c/cfg.out" 2>&1 || r=1; done
	tap $r "the $nsites agents' generated configurations pass qkdlinkd-check" "$c/cfg.out"

	# the KME pair: SAE-A's enc_keys at KME-A and SAE-B's dec_keys at KME-B agree
	kme() { # SITE(A|B) ARGS
		k=$1
		shift
		eval "kp=\$KME_PORT_$(echo "$k" | tr ABC abc)"
		# shellcheck disable=SC2154
		in_ns "$LAB_BUILD/qkdlink-kme" --url "https://127.0.0.1:$kp" --kme-id "KME-$k" \
			--ca "$DIR/pki/ca.pem" --cert "$DIR/pki/sae-SAE-$k.pem" --key "$DIR/pki/sae-SAE-$k.key" "$@"
	}
	kme A get SAE-B -n 2 -s 256 --show-keys >"$c/get.out" 2>&1
	r1=$?
	ids=$(awk '/^key_ID/{print $2}' "$c/get.out")
	kme B fetch SAE-A -s 256 --show-keys $ids >"$c/fetch.out" 2>&1
	r2=$?
	r=1
	if [ $r1 -eq 0 ] && [ $r2 -eq 0 ] && [ "$(echo "$ids" | wc -w)" -eq 2 ]; then
		a=$(grep '^key ' "$c/get.out" | sort)
		b=$(grep '^key ' "$c/fetch.out" | sort)
		[ -n "$a" ] && [ "$a" = "$b" ] && [ "$(echo "$a" | wc -l)" -eq 2 ] && r=0
	fi
	cat "$c/get.out" "$c/fetch.out" | sed 's/^key \([^ ]*\) .*/key \1 <value not shown>/' >"$c/kme.out"
	tap $r "KME pair: SAE-A's 2 keys from KME-A (enc_keys) equal SAE-B's from KME-B (dec_keys), by key_ID" "$c/kme.out"
	rm -f "$c/get.out" "$c/fetch.out"
	kme B fetch SAE-A -s 256 $ids >"$c/again.out" 2>&1
	r=$?
	[ $r -ne 0 ] && grep -q 'not found' "$c/again.out"
	tap $? "KME pair: the keys are deleted on delivery (a second dec_keys is refused)" "$c/again.out"

	# the routers: a push through our client, read back by ncclient on both
	chs="7 8"
	[ "$LAB_SITES" = "a b c" ] && chs="7 8 9"
	cas=$(for ch in $chs; do printf 'CA-QKD-%s ' "$ch"; done)
	if [ $agents = 0 ]; then
		bootstrap_push >"$c/push.out" 2>&1
		tap $? "the $nsites routers accept a push of ${cas}(build/qkdlink-netconf, namespace yang)" "$c/push.out"
		# shellcheck disable=SC2046
		routers check $(for ch in $chs; do
			echo "--ca CA-QKD-$ch --expect CA-QKD-$ch=$(cat "$DIR/bootstrap/ch$ch.ckn"):$DIR/bootstrap/ch$ch.cak"
		done) --strict >"$c/routers.out" 2>&1
		tap $? "ncclient reads the pushed CKN/CAK back from every router; no lock, no candidate edit, no pending confirmed commit" "$c/routers.out"
	else
		# shellcheck disable=SC2046
		routers check $(for ch in $chs; do echo "--ca CA-QKD-$ch"; done) >"$c/routers.out" 2>&1
		tap $? "agents running: the routers of each CA hold the same CKN/CAK, no lock, no candidate edit (ncclient)" "$c/routers.out"
	fi

	# the L2 link: a qkd88b7 frame from site A's port reaches site B's port, and back
	pairs="ab ba"
	[ "$LAB_SITES" = "a b c" ] && pairs="ab ba ac ca"
	for pair in $pairs; do
		f=${pair%?} t=${pair#?}
		tx=site-$f rx=site-$t
		from=$(echo "$f" | tr abc ABC) to=$(echo "$t" | tr abc ABC)
		# a channel and secret no agent uses: running agents count it and drop it
		ip netns exec "$LAB_NS" "$LAB_BUILD/qkd88b7" listen -i "$rx" -s "$DIR/secrets/check.secret" \
			-c 4242 -n 1 -t 8 --json >"$c/listen.out" 2>"$c/listen.err" &
		lp=$!
		seq=1
		while alive "$lp" && [ $seq -le 30 ]; do
			in_ns "$LAB_BUILD/qkd88b7" send -i "$tx" -s "$DIR/secrets/check.secret" -c 4242 \
				--sender "LAB-CHECK-$from" --epoch 1 --seq $seq -q hello --role master >"$c/send.out" 2>&1 || break
			seq=$((seq + 1))
			sleep 0.2
		done
		wait "$lp"
		r=$?
		[ $r -eq 0 ] && grep -q "LAB-CHECK-$from" "$c/listen.out"
		tap $? "L2: a qkd88b7 HELLO sent on site $from's port ($tx) is received and verified on site $to's port ($rx)" "$c/listen.err"
	done
	if [ -n "${IMPAIR_PID:-}" ]; then
		a2=$(impair_forwarded ab)
		b2=$(impair_forwarded ba)
		[ "$fwd_ab" -ge 0 ] && [ "$a2" -gt "$fwd_ab" ] && [ "$fwd_ba" -ge 0 ] && [ "$b2" -gt "$fwd_ba" ]
		tap $? "L2: those frames crossed the impairment relay (forwarded a->b $fwd_ab -> $a2, b->a $fwd_ba -> $b2)" "$DIR/impair.log"
	fi
	[ $nfail -eq 0 ]
}

# ---------------------------------------------------------------- main
[ $# -ge 2 ] || usage
cmd=$1
DIR=$2
shift 2
case $cmd in
up) up ;;
down) down ;;
status) status ;;
check) check ;;
start) start_agents ;;
stop) load && stop_agents && echo "lab: agents stopped" ;;
ctl) ctl "$@" ;;
routers) load && routers "$@" ;;
exec) load && in_ns "$@" ;;
impair) impair "$@" ;;
*) usage ;;
esac
