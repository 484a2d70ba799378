#!/bin/sh
# Installs the Debian 12 packages the build and the tests need, only those
# missing. Runs as root (CI and the README's commands do); fails naming what is
# missing otherwise.
set -eu
PKGS="build-essential clang libclang-rt-14-dev pkg-config python3 procps openssl
      libssl-dev libpcap-dev libnet1-dev libcmocka-dev tshark tcpdump tcpreplay iproute2
      libcurl4-openssl-dev libjansson-dev libevent-dev curl
      libssh2-1-dev libxml2-dev netconfd openssh-server openssh-client python3-ncclient
      yangcli libyang2-tools valgrind"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing Debian packages:$missing (run make check as root, or apt-get install them)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
