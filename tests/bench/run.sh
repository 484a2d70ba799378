#!/bin/sh
# make bench: codec throughput and veth latency. Figures and method go in
# docs/performance.md. Not a test: nothing here passes or fails on a number.
set -eu
BUILD=${1:-build}
echo "== machine"
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "kernel $(uname -r), $(gcc --version | head -1), $(openssl version)"
echo
echo "== codec, one core (median of 5 runs of 1,000,000 frames)"
taskset -c 0 "$BUILD/bench-codec" 1000000
echo
echo "== one-way latency veth to veth across two namespaces"
sh tests/bench/l2_latency.sh "$BUILD"
echo
echo "== KME client against the simulator (mutual TLS on loopback)"
sh tests/bench/kme_bench.sh "$BUILD"
echo
echo "== NETCONF client against netconfd behind sshd (loopback), and ncclient"
sh tests/bench/netconf.sh "$BUILD"
echo
echo "== rotations in the two-site lab (100 back to back)"
sh tests/bench/lab_rotations.sh "$BUILD"
echo
echo "== the impairment relay: added latency, forwarding rate (docs/reliability.md)"
sh tests/bench/impair_bench.sh "$BUILD"
