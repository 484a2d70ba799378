#!/bin/sh
# tests/bench/netconf.sh BUILD [RUNS] - NETCONF timings on loopback against
# netconfd behind its own sshd: our client (both framings) next to ncclient.
# Figures and method: docs/performance.md §5. Not a test.
set -eu
BUILD=${1:-build}
RUNS=${2:-50}
FIX=tests/fixtures/netconf/server.sh
D=$(mktemp -d /tmp/qkdnc-bench.XXXXXX)
trap 'sh "$FIX" stop "$D" >/dev/null 2>&1; rm -rf "$D"' EXIT INT TERM
sh "$FIX" start "$D" >/dev/null
. "$D/env"
echo "== NETCONF over SSH, loopback, netconfd $(dpkg-query -W -f='${Version}' netconfd)," \
     "libssh2 $(dpkg-query -W -f='${Version}' libssh2-1), ed25519 key auth, $RUNS runs each"
"$BUILD/nc-bench" 127.0.0.1 "$NC_PORT" "$NC_USER" "$NC_KNOWN_HOSTS" "$NC_KEY" "$RUNS"
"$BUILD/nc-bench" 127.0.0.1 "$NC_PORT" "$NC_USER" "$NC_KNOWN_HOSTS" "$NC_KEY" "$RUNS" base10
/usr/bin/python3 tests/bench/bench_netconf_ncclient.py "$NC_PORT" "$NC_USER" "$NC_KEY" \
	"$((RUNS < 20 ? RUNS : 20))"
