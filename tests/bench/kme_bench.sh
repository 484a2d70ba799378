#!/bin/sh
# kme_bench.sh - the ETSI 014 client benchmark (bench-kme) against
# qkdlink-kmesim on loopback. Figures go in docs/performance.md (KME section).
# Usage: tests/bench/kme_bench.sh BUILD_DIR [PAIRS]
set -eu
BUILD=${1:-build}
PAIRS=${2:-2000}
dir=$(mktemp -d /tmp/qkdkmebench.XXXXXX)
sim_pid=
cleanup() {
	[ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
sh kme/sim/mkpki.sh "$dir/pki" >/dev/null
p=$dir/pki
cat >"$dir/sim.json" <<JSON
{"ca": "$p/ca.pem", "max_key_count": 10000000,
 "kmes": [{"id": "KME-A", "cert": "$p/kme-KME-A.pem", "key": "$p/kme-KME-A.key"},
          {"id": "KME-B", "cert": "$p/kme-KME-B.pem", "key": "$p/kme-KME-B.key"}],
 "saes": [{"id": "SAE-A", "kme": "KME-A"}, {"id": "SAE-B", "kme": "KME-B"}]}
JSON
"$BUILD/qkdlink-kmesim" -c "$dir/sim.json" -p "$dir/ports" -l /dev/null &
sim_pid=$!
i=0
while [ ! -s "$dir/ports" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
"$BUILD/bench-kme" "$p" "$dir/ports" "$PAIRS"
