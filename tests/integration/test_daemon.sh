#!/bin/sh
# qkdlinkd without the lab: --check-config on the examples (files created in
# a temporary directory), then the daemon in the foreground in a network
# namespace on one end of a veth pair, with a KME and a router that do not
# answer (closed ports on 127.0.0.1). Checks that qkdlinkctl status answers
# and shows the channels with their peers not alive, that forged, tampered
# and replayed frames sent with qkd88b7 land in the drop counters while a
# valid HELLO is accepted, rotate and reload over the socket, SIGHUP with a
# changed config (channel added and removed), and SIGTERM: clean exit, no
# socket left. TAP output; exit 1 if a test failed. Needs root.
# Usage: tests/integration/test_daemon.sh BUILD_DIR
set -u
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
D=$BUILD/qkdlinkd
C=$BUILD/qkdlinkctl
Q=$BUILD/qkd88b7
SRC=$(pwd)
NS=qkd-d$$
TMP=$(mktemp -d /tmp/qkddaemon.XXXXXX)
PID=
n=0
failed=0

cleanup() {
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
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
	[ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/#   /' "$2" | tail -n 25
	return 0
}
# wait_for SECONDS COMMAND...: until the command succeeds
wait_for() {
	t=$(($1 * 10))
	shift
	while [ "$t" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		t=$((t - 1))
	done
	return 1
}
# jget EXPR: evaluates a Python expression on the status JSON (variable s)
jget() {
	/usr/bin/python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$TMP/status.json" "$1"
}
status() {
	ip netns exec "$NS" "$C" -s "$TMP/ctl.sock" status --json >"$TMP/status.json" 2>"$TMP/ctl.err"
}

for b in "$D" "$C" "$Q"; do
	if [ ! -x "$b" ]; then
		not_ok "$b is not built"
		exit 1
	fi
done

# ---- 1. --check-config on the examples, with their files in $TMP ----
mkdir -m 700 "$TMP/etc" "$TMP/state"
printf -- '-----BEGIN CERTIFICATE-----\n' >"$TMP/etc/pem"
printf -- '-----BEGIN PRIVATE KEY-----\n' >"$TMP/etc/key"
for f in "$SRC"/docs/examples/*.json; do
	name=$(basename "$f")
	# every absolute file the example names goes into $TMP/etc
	/usr/bin/python3 - "$f" "$TMP" >"$TMP/$name" <<'PY'
import json, os, sys
src, tmp = sys.argv[1], sys.argv[2]
cfg = json.load(open(src))
def fix(path, kind):
    p = os.path.join(tmp, "etc", os.path.basename(path))
    if not os.path.exists(p):
        if kind == "secret":
            open(p, "wb").write(os.urandom(32))
        elif kind == "key":
            open(p, "w").write("-----BEGIN PRIVATE KEY-----\n")
        else:
            open(p, "w").write("-----BEGIN CERTIFICATE-----\n")
        os.chmod(p, 0o600)
    return p
cfg["state_dir"] = os.path.join(tmp, "state")
cfg.pop("user", None)
cfg.pop("group", None)
for k, kind in (("ca_file", "pem"), ("cert_file", "pem"), ("key_file", "key")):
    cfg["kme"][k] = fix(cfg["kme"][k], kind)
for k, kind in (("key_file", "key"), ("password_file", "key"), ("known_hosts", "pem")):
    if k in cfg["router"]:
        cfg["router"][k] = fix(cfg["router"][k], kind)
for ch in cfg["channels"]:
    for s in ch["secrets"]:
        s["file"] = fix(s["file"], "secret")
json.dump(cfg, sys.stdout, indent=1)
PY
	if (cd "$TMP" && "$D" -c "$name" --check-config) >"$TMP/check.out" 2>&1 &&
		grep -q "^$name: valid$" "$TMP/check.out"; then
		ok "--check-config $name: valid"
	else
		not_ok "--check-config $name" "$TMP/check.out"
	fi
done
echo '{"sae_id": "A", "bogus": 1}' >"$TMP/bad.json"
if "$D" -c "$TMP/bad.json" --check-config >"$TMP/check.out" 2>&1; then
	not_ok "--check-config refuses a broken config" "$TMP/check.out"
elif grep -q "bad.json" "$TMP/check.out"; then
	ok "--check-config refuses a broken config, naming the file"
else
	not_ok "--check-config: message without the file name" "$TMP/check.out"
fi

# ---- 2. the daemon in a namespace ----
if ! ip netns add "$NS" 2>/dev/null; then
	not_ok "cannot create a network namespace (root needed)"
	exit 1
fi
ip -n "$NS" link add qa type veth peer name qb
ip -n "$NS" link set qa address 02:00:00:00:00:0a up
ip -n "$NS" link set qb address 02:00:00:00:00:0b up
ip -n "$NS" link set lo up

sh "$SRC/kme/sim/mkpki.sh" -k "KME-A" -s "SAE-A SAE-B" "$TMP/pki" >/dev/null 2>&1
head -c 32 /dev/urandom >"$TMP/ch7.secret"
head -c 32 /dev/urandom >"$TMP/ch8.secret"
head -c 32 /dev/urandom >"$TMP/ch9.secret"
head -c 32 /dev/urandom >"$TMP/wrong.secret"
printf 'x\n' >"$TMP/router.pw"
: >"$TMP/known_hosts"
chmod 600 "$TMP"/*.secret "$TMP/router.pw"
mkdir -m 700 "$TMP/run"

# mkconfig CHANNELS_JSON > file
mkconfig() {
	cat <<EOF2
{
  "sae_id": "SAE-A",
  "state_dir": "$TMP/run",
  "control_socket": "$TMP/ctl.sock",
  "hello_interval": 1,
  "log": {"level": "debug", "destination": "stderr"},
  "kme": {"url": "https://127.0.0.1:9", "ca_file": "$TMP/pki/ca.pem",
          "cert_file": "$TMP/pki/sae-SAE-A.pem", "key_file": "$TMP/pki/sae-SAE-A.key",
          "kme_id": "KME-A", "connect_timeout_ms": 500, "timeout_ms": 1000},
  "router": {"host": "127.0.0.1", "port": 9, "user": "qkd", "password_file": "$TMP/router.pw",
             "known_hosts": "$TMP/known_hosts", "connect_timeout_ms": 500, "confirm_timeout": 30},
  "port": {"rx_interface": "qa"},
  "channels": [$1]
}
EOF2
}
CH7='{"id": 7, "ca_name": "CA7", "interfaces": ["et-0/0/1"], "cipher_suite": "gcm-aes-256",
      "role": "master", "peers": ["SAE-B"], "rotation_interval": 60,
      "secrets": [{"id": 1, "file": "'$TMP'/ch7.secret", "current": true}], "ckn": "sha256"}'
CH8='{"id": 8, "ca_name": "CA8", "interfaces": ["et-0/0/2"], "cipher_suite": "gcm-aes-128",
      "role": "slave", "peers": ["SAE-B"],
      "secrets": [{"id": 2, "file": "'$TMP'/ch8.secret", "current": true}],
      "ckn": {"prefix": "5142434b0000000000000000000000a7"}}'
CH9='{"id": 9, "ca_name": "CA9", "interfaces": ["et-0/0/3"], "cipher_suite": "gcm-aes-256",
      "role": "slave", "peers": ["SAE-B"],
      "secrets": [{"id": 1, "file": "'$TMP'/ch9.secret", "current": true}], "ckn": "sha256"}'
mkconfig "$CH7, $CH8" >"$TMP/agent.json"

ip netns exec "$NS" "$D" -c "$TMP/agent.json" -f >"$TMP/daemon.log" 2>&1 &
PID=$!
if wait_for 10 test -S "$TMP/ctl.sock"; then
	ok "qkdlinkd starts and opens its control socket"
else
	not_ok "qkdlinkd did not open its control socket" "$TMP/daemon.log"
	exit 1
fi
mode=$(stat -c %a "$TMP/ctl.sock")
[ "$mode" = 660 ] && ok "control socket mode 0660" || not_ok "control socket mode $mode"

if status && [ "$(jget 'len(s["channels"])')" = 2 ] && [ "$(jget 's["sae_id"]')" = SAE-A ]; then
	ok "status --json answers with both channels"
else
	not_ok "status --json" "$TMP/ctl.err"
fi
if [ "$(jget '[c["role"] for c in s["channels"]]')" = "['master', 'slave']" ] &&
	[ "$(jget 'all(not p["alive"] for c in s["channels"] for p in c["peers"])')" = True ] &&
	[ "$(jget 's["channels"][0]["peers"][0]["sae_id"]')" = SAE-B ]; then
	ok "roles shown, peer SAE-B not alive"
else
	not_ok "channels and peers in status" "$TMP/status.json"
fi
if [ "$(jget 's["kme"]["cert_days_left"] > 30 and not s["kme"]["warning"]')" = True ]; then
	ok "certificate lifetime in status"
else
	not_ok "certificate lifetime in status" "$TMP/status.json"
fi
if ip netns exec "$NS" "$C" -s "$TMP/ctl.sock" status >"$TMP/text.out" 2>&1 &&
	grep -q "^channel 7 (CA7): master" "$TMP/text.out" &&
	grep -q "peer SAE-B: dead, never heard" "$TMP/text.out"; then
	ok "status as text"
else
	not_ok "status as text" "$TMP/text.out"
fi

# ---- 3. frames ----
send() {
	ip netns exec "$NS" "$Q" send -i qb -q --sender SAE-B "$@" >>"$TMP/send.log" 2>&1
}
send -s "$TMP/wrong.secret" --secret-id 1 -c 7 --epoch 1 --seq 1 hello --role slave
send -s "$TMP/ch7.secret" --secret-id 1 -c 7 --epoch 1 --seq 2 --corrupt-bit 500 hello --role slave
send -s "$TMP/ch7.secret" --secret-id 9 -c 7 --epoch 1 --seq 3 hello --role slave
send -s "$TMP/ch7.secret" --secret-id 1 -c 99 --epoch 1 --seq 4 hello --role slave
send -s "$TMP/ch7.secret" --secret-id 1 -c 7 --epoch 5 --seq 10 hello --role slave
send -s "$TMP/ch7.secret" --secret-id 1 -c 7 --epoch 5 --seq 10 hello --role slave
send -s "$TMP/ch7.secret" --secret-id 1 -c 7 --epoch 5 --seq 9 hello --role slave
drops() {
	status && [ "$(jget 's["frames"]["dropped"]["bad_mac"]')" = 2 ] &&
		[ "$(jget 's["frames"]["dropped"]["replay"]')" = 2 ] &&
		[ "$(jget 's["frames"]["dropped"]["unknown_secret"]')" = 1 ] &&
		[ "$(jget 's["frames"]["dropped"]["unknown_channel"]')" = 1 ] &&
		[ "$(jget 's["frames"]["accepted"]')" = 1 ]
}
if wait_for 5 drops; then
	ok "forged frames counted: 2 bad_mac, 1 unknown_secret, 1 unknown_channel, 2 replay; 1 accepted"
else
	not_ok "drop counters" "$TMP/status.json"
fi
if status && [ "$(jget 's["channels"][0]["peers"][0]["alive"]')" = True ]; then
	ok "the valid HELLO makes SAE-B alive on channel 7"
else
	not_ok "peer alive after a valid HELLO" "$TMP/status.json"
fi
if grep -q "frame dropped: bad_mac" "$TMP/daemon.log"; then
	ok "drops logged by reason"
else
	not_ok "drop log line" "$TMP/daemon.log"
fi

# ---- 4. control commands ----
if ip netns exec "$NS" "$C" -s "$TMP/ctl.sock" rotate 8 >"$TMP/rot.out" 2>&1; then
	not_ok "rotate on a slave channel must be refused" "$TMP/rot.out"
else
	ok "rotate 8 refused: $(cat "$TMP/rot.out")"
fi
if ip netns exec "$NS" "$C" -s "$TMP/ctl.sock" rotate 7 >"$TMP/rot.out" 2>&1; then
	ok "rotate 7 accepted"
else
	not_ok "rotate 7" "$TMP/rot.out"
fi
if ip netns exec "$NS" "$C" -s "$TMP/ctl.sock" rotate 12 >"$TMP/rot.out" 2>&1; then
	not_ok "rotate of an unknown channel must fail" "$TMP/rot.out"
else
	ok "rotate 12 refused: $(cat "$TMP/rot.out")"
fi
if ip netns exec "$NS" "$C" -s "$TMP/ctl.sock" bogus >/dev/null 2>&1; then
	not_ok "qkdlinkctl bogus must fail"
else
	ok "qkdlinkctl refuses an unknown command"
fi
printf 'frobnicate\n' >"$TMP/req"
if /usr/bin/python3 - "$TMP/ctl.sock" <<'PY' >"$TMP/raw.out" 2>&1; then
import socket, sys, json
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"frobnicate\n")
r = json.loads(s.makefile().readline()); assert r["ok"] is False and "unknown command" in r["error"], r
PY
	ok "daemon answers a bad request with an error object"
else
	not_ok "bad request on the socket" "$TMP/raw.out"
fi

# ---- 5. SIGHUP: channel 9 added, 8 removed, 7 kept ----
mkconfig "$CH7, $CH9" >"$TMP/agent.json"
kill -HUP "$PID"
reloaded() {
	status && [ "$(jget '[c["id"] for c in s["channels"]]')" = "[7, 9]" ]
}
if wait_for 5 reloaded; then
	ok "SIGHUP: channel 9 added, 8 removed"
else
	not_ok "SIGHUP reload" "$TMP/daemon.log"
fi
if [ "$(jget 's["frames"]["dropped"]["bad_mac"]')" = 2 ] &&
	[ "$(jget 's["channels"][0]["peers"][0]["alive"]')" = True ]; then
	ok "channel 7 and the counters survive the reload"
else
	not_ok "channel 7 kept across the reload" "$TMP/status.json"
fi
send -s "$TMP/ch7.secret" --secret-id 1 -c 7 --epoch 5 --seq 10 hello --role slave
if wait_for 5 sh -c "$(command -v ip) netns exec $NS $C -s $TMP/ctl.sock status --json | grep -q '\"replay\": *3'"; then
	ok "replay marks survive the reload"
else
	status
	not_ok "replay mark after reload" "$TMP/status.json"
fi
echo '{' >"$TMP/agent.json"
kill -HUP "$PID"
sleep 0.5
if status && [ "$(jget '[c["id"] for c in s["channels"]]')" = "[7, 9]" ] &&
	grep -q "reload refused" "$TMP/daemon.log"; then
	ok "a broken config on SIGHUP is refused, the old one kept"
else
	not_ok "broken config on reload" "$TMP/daemon.log"
fi
if ip netns exec "$NS" "$C" -s "$TMP/ctl.sock" reload >/dev/null 2>&1; then
	ok "qkdlinkctl reload answers"
else
	not_ok "qkdlinkctl reload"
fi

# ---- 6. no key material in logs; SIGTERM ----
if grep -qi "cak\b.*[0-9a-f]\{32\}" "$TMP/daemon.log"; then
	not_ok "something like a CAK in the log" "$TMP/daemon.log"
else
	ok "no CAK-like value in the log"
fi
kill -TERM "$PID"
t=100
while [ $t -gt 0 ] && kill -0 "$PID" 2>/dev/null; do
	sleep 0.1
	t=$((t - 1))
done
if kill -0 "$PID" 2>/dev/null; then
	not_ok "qkdlinkd still running 10 s after SIGTERM" "$TMP/daemon.log"
else
	wait "$PID"
	rc=$?
	PID=
	[ "$rc" = 0 ] && ok "SIGTERM: exit status 0" || not_ok "SIGTERM: exit status $rc" "$TMP/daemon.log"
fi
[ ! -e "$TMP/ctl.sock" ] && ok "control socket removed" || not_ok "control socket left behind"
if [ -f "$TMP/run/channel-7.json" ] && [ "$(stat -c %a "$TMP/run/channel-7.json")" = 600 ] &&
	[ -f "$TMP/run/epoch" ]; then
	ok "state and epoch files written, mode 0600"
else
	ls -la "$TMP/run" >"$TMP/ls.out"
	not_ok "state files" "$TMP/ls.out"
fi
if grep -q "Sanitizer\|runtime error" "$TMP/daemon.log"; then
	not_ok "sanitizer report" "$TMP/daemon.log"
fi
[ "$failed" -eq 0 ] || exit 1
exit 0
