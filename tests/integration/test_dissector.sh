#!/bin/sh
# Runs tshark with the Lua dissector (proto88b7/wireshark/qkdlink.lua) on the
# golden captures and checks every decoded field against what
# tests/golden/gen.c wrote; checks that other OUIs/PIDs still go to the
# built-in ieee802a dissector and that the OUI/PID preferences work; then
# feeds it hand-built malformed frames, every truncation of every golden frame
# and random mutations, which must give the expected expert info and never a
# Lua error. Prints TAP lines; exits 1 on any failure.
# Usage: tests/integration/test_dissector.sh BUILD_DIR (BUILD_DIR is not used: the
# dissector needs no build, the captures are pcaps/)
set -u
if ! command -v tshark >/dev/null 2>&1; then
	echo "not ok - tshark missing (apt-get install tshark)"
	exit 1
fi
top=$(cd "$(dirname "$0")/../.." && pwd) || exit 1
cd "$top" || exit 1
lua=proto88b7/wireshark/qkdlink.lua
py=/usr/bin/python3
tmp=$(mktemp -d /tmp/qkddissector.XXXXXX) || {
	echo "not ok - mktemp failed"
	exit 1
}
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
# a clean profile: no user preferences, no personal plugins loaded twice
HOME=$tmp/home
XDG_CONFIG_HOME=$HOME/.config
export HOME XDG_CONFIG_HOME
unset WIRESHARK_CONFIG_DIR
mkdir -p "$HOME"

n=0
failed=0
pass() {
	n=$((n + 1))
	echo "ok $n - $1"
}
fail() {
	n=$((n + 1))
	failed=1
	echo "not ok $n - $1"
}
# is DESCRIPTION GOT WANT
is() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1: got '$2', want '$3'"
	fi
}

# tshark with the dissector; stderr (the harmless warning about running as
# root) is dropped
ts() {
	tshark -n -X "lua_script:$lua" "$@" 2>/dev/null
}

# expect FILE [TSHARK_OPTION...] <<EOF lines "field=value" EOF
# One tshark run on pcaps/FILE (first frame) for every field listed; one
# assertion per line. Repeated fields are joined with ','; a missing field is
# the empty string.
expect() {
	file=$1
	shift
	grep -v '^$' >"$tmp/spec"
	set -- "$@" -T fields -E separator='|' -E occurrence=a -E aggregator=,
	while IFS= read -r line; do
		set -- "$@" -e "${line%%=*}"
	done <"$tmp/spec"
	ts -r "pcaps/$file" -c 1 "$@" >"$tmp/row"
	row=$(cat "$tmp/row")
	i=0
	while IFS= read -r line; do
		i=$((i + 1))
		got=$(printf '%s\n' "$row" | cut -d'|' -f"$i")
		is "$file: ${line%%=*} = ${line#*=}" "$got" "${line#*=}"
	done <"$tmp/spec"
}

# count FILE FILTER [TSHARK_OPTION...]: frames of pcaps/FILE that match FILTER
count() {
	file=$1
	filter=$2
	shift 2
	ts -r "pcaps/$file" -Y "$filter" "$@" | wc -l | tr -d ' '
}

# ---- the script loads cleanly ----
for f in pcaps/*.pcap; do
	[ -f "$f" ] || {
		fail "no golden captures in pcaps/ (run build/golden-gen pcaps/)"
		exit 1
	}
	break
done
tshark -n -X "lua_script:$lua" -r pcaps/all.pcap >/dev/null 2>"$tmp/err"
errs=$(grep -v '^Running as user' "$tmp/err")
is "$lua loads without errors or warnings" "$errs" ""

# ---- golden captures, field by field ----
expect hello-untagged.pcap <<'EOF'
_ws.col.Protocol=QKDLINK
_ws.col.Info=HELLO ch=7 master IDLE
frame.protocols=eth:ethertype:qkdlink
vlan.id=
qkdlink.oui=0xacde48
qkdlink.pid=0x514b
qkdlink.version=1
qkdlink.type=1
qkdlink.flags=0x00
qkdlink.length=73
qkdlink.secret_id=0
qkdlink.sender_len=5
qkdlink.channel=7
qkdlink.epoch=3
qkdlink.seq=1
qkdlink.sender=SAE-A
qkdlink.role=1
qkdlink.state=0
qkdlink.interval=30
qkdlink.current_rotation=2
qkdlink.pending_rotation=0
qkdlink.digest=b9d8355989b50e2eb67cb204d222132a
qkdlink.icv=dd5fecfecb9e4429e2ae0656647741e1
qkdlink.icv_len=16
EOF

expect hello-vlan.pcap <<'EOF'
_ws.col.Info=HELLO ch=7 slave ROTATING
vlan.id=100
vlan.priority=5
qkdlink.type=1
qkdlink.channel=7
qkdlink.sender=SAE-B
qkdlink.epoch=5
qkdlink.role=2
qkdlink.state=1
qkdlink.current_rotation=2
qkdlink.pending_rotation=3
qkdlink.icv_len=16
EOF

expect announce-1key-untagged.pcap <<'EOF'
_ws.col.Info=ANNOUNCE ch=7 rot=3 keys=1 seq=2
vlan.id=
qkdlink.type=2
qkdlink.length=87
qkdlink.channel=7
qkdlink.sender=SAE-A
qkdlink.seq=2
qkdlink.rotation=3
qkdlink.key_count=1
qkdlink.key_id_len=36
qkdlink.key_id=ae40c06c-92a6-41ae-83f2-beb94ad8c283
qkdlink.icv_len=16
EOF
is "announce-1key-untagged.pcap: no TLV" "$(count announce-1key-untagged.pcap qkdlink.tlv)" 0

expect announce-1key-vlan.pcap <<'EOF'
_ws.col.Info=ANNOUNCE ch=7 rot=3 keys=1 seq=3
vlan.id=100
vlan.priority=5
qkdlink.type=2
qkdlink.channel=7
qkdlink.seq=3
qkdlink.rotation=3
qkdlink.key_count=1
qkdlink.key_id=ae40c06c-92a6-41ae-83f2-beb94ad8c283
qkdlink.icv_len=16
EOF

keys32='18eb144b-30fe-4c5f-b98d-04500709b91c
c66b7211-695b-4f31-a0a4-b6779858c705
4bb94569-b1a1-473e-b286-7089972aeb75
f52d7ee3-ca18-409f-9384-0e6cfad9fdac
7f0d65cd-66ff-43f0-8dc1-0bdd11b37d6e
aac6e869-36b0-437d-b73d-a98f1eb2de73
99f1f939-544d-41f9-97ae-fab116fbf9b0
3c602dec-00c5-4578-951a-1cf35c123bf9
0b853335-aa41-4c57-8baf-5ba90ff90600
433bec60-7f76-4aeb-bb5f-b39d86b1e8f6
3a0adf80-dd73-4a55-949c-97076ca5e909
73830508-c39b-4bd0-89de-832162390fbc
ab5b9995-ec11-42e4-9f49-330f6b294d54
ef986563-cb21-4478-bf2a-aef9964e0dc9
75d9a4c5-890b-4101-9395-f9f8027b275d
c42cbd5f-f386-4f89-9468-5bd1b7ffe926
3c131b35-a894-4a23-83d4-03b455a0358e
da2cf1b5-5611-4148-b892-59c771cbd190
331c1d9c-33bf-4e4f-a459-bfee42ddfc64
3dc68cbf-0a9a-4ef2-a50d-5c66aef7b46e
f2c0a9d4-d3d6-4648-80ef-e1ea788984aa
a1688e10-b09b-4f8b-9103-b8767aa45cbe
9cfdeeaa-bcfc-4964-9214-f6d5eeae993d
646d9b08-799d-4195-8157-f22d09106bdf
ccf455e1-fdaf-4253-8584-2adff087100e
9dabcceb-490d-4c6d-adb5-e13ae372b626
57a3fdd5-be4c-4293-8b2a-c0637cfe7aa3
8708cbc7-3bdf-4ae2-bfb3-24d31eff7d43
482b7599-03dc-4050-8e87-513f796008b9
3331049d-aafa-4ed9-8c04-d242bcebb697
0f7e90de-6196-481d-a69c-8f270662c63b
2874793d-9b9c-4630-820c-e4d07de3c6af'
ts -r pcaps/announce-32keys.pcap -T fields -e qkdlink.key_id | tr ',' '\n' >"$tmp/keys"
i=0
printf '%s\n' "$keys32" | while IFS= read -r k; do
	i=$((i + 1))
	echo "$i $k"
done >"$tmp/want"
i=0
while IFS= read -r k; do
	i=$((i + 1))
	echo "$i $k"
done <"$tmp/keys" >"$tmp/got"
if cmp -s "$tmp/got" "$tmp/want"; then
	pass "announce-32keys.pcap: all 32 key_IDs decoded, in order"
else
	fail "announce-32keys.pcap: key_IDs differ: $(diff "$tmp/want" "$tmp/got" | head -n 5 | tr '\n' ' ')"
fi
lens=$(printf '36,%.0s' $(seq 32))
expect announce-32keys.pcap <<EOF
_ws.col.Info=ANNOUNCE ch=7 rot=5 keys=32 seq=5
qkdlink.type=2
qkdlink.length=1234
qkdlink.rotation=5
qkdlink.key_count=32
qkdlink.key_id_len=${lens%,}
qkdlink.icv_len=16
EOF

expect announce-tlvs.pcap <<'EOF'
_ws.col.Info=ANNOUNCE ch=7 rot=4 keys=1 seq=4 act=2027-01-15T08:10:00Z slot=5
qkdlink.type=2
qkdlink.rotation=4
qkdlink.key_id=839589ec-02b0-40a1-9053-bb3230fb44f9
qkdlink.tlv.type=0x01,0x02
qkdlink.tlv.critical=0,0
qkdlink.tlv.length=8,1
qkdlink.activation_time=Jan 15, 2027 08:10:00.000000000 UTC
qkdlink.keychain_slot=5
qkdlink.length=100
qkdlink.icv_len=16
EOF
got=$(count announce-tlvs.pcap 'qkdlink.activation_time == "2027-01-15 08:10:00Z"')
is "announce-tlvs.pcap: display filter on the activation time (UTC) matches" "$got" 1
is "announce-tlvs.pcap: two TLVs" "$(ts -r pcaps/announce-tlvs.pcap -T fields -e qkdlink.tlv.type |
	tr ',' '\n' | wc -l | tr -d ' ')" 2

expect ack-untagged.pcap <<'EOF'
_ws.col.Info=ACK ch=7 rot=1 OK
frame.len=60
eth.src=02:00:00:00:00:0b
eth.dst=03:51:4b:00:00:01
qkdlink.type=3
qkdlink.length=46
qkdlink.secret_id=0
qkdlink.sender_len=1
qkdlink.sender=B
qkdlink.channel=7
qkdlink.epoch=1
qkdlink.seq=1
qkdlink.rotation=1
qkdlink.result=0
qkdlink.padding=
qkdlink.trailing=
qkdlink.icv_len=16
EOF

expect ack-vlan.pcap <<'EOF'
_ws.col.Info=ACK ch=7 rot=3 OK
vlan.id=100
vlan.priority=5
qkdlink.type=3
qkdlink.sender=SAE-B
qkdlink.rotation=3
qkdlink.result=0
qkdlink.icv_len=16
EOF

expect ack-detail.pcap <<'EOF'
_ws.col.Info=ACK ch=7 rot=4 KME_NOT_FOUND
qkdlink.type=3
qkdlink.sender=SAE-B
qkdlink.rotation=4
qkdlink.result=1
qkdlink.tlv.type=0x03
qkdlink.tlv.length=63
qkdlink.detail=KME-B: HTTP 400 for key_ID 839589ec-02b0-40a1-9053-bb3230fb44f9
qkdlink.icv_len=16
EOF
got=$(ts -r pcaps/ack-detail.pcap -V | grep -c 'Result: KME_NOT_FOUND (1)')
is "ack-detail.pcap: the result is shown by name (Result: KME_NOT_FOUND (1))" "$got" 1
got=$(count ack-detail.pcap 'qkdlink.result == "KME_NOT_FOUND"')
is "ack-detail.pcap: display filter by result name matches" "$got" 1

# ---- all.pcap: every frame is ours and well formed ----
is "all.pcap: 9 frames, all qkdlink" "$(count all.pcap qkdlink)" 9
is "all.pcap: display filter qkdlink.type == 2 finds the 4 ANNOUNCEs" \
	"$(count all.pcap 'qkdlink.type == 2')" 4
is "all.pcap: display filter qkdlink.channel == 7 finds all 9" \
	"$(count all.pcap 'qkdlink.channel == 7')" 9
is "all.pcap: 3 frames tagged with VLAN 100" "$(count all.pcap 'vlan.id == 100 && qkdlink')" 3
is "all.pcap: no warning or error expert info on the golden frames" \
	"$(count all.pcap '_ws.expert.severity >= 0x00600000')" 0

# ---- other OUIs and PIDs go back to ieee802a ----
expect other-oui.pcap <<'EOF'
ieee802a.oui=1193046
ieee802a.pid=0xbeef
qkdlink.oui=
qkdlink.type=
EOF
is "other-oui.pcap: not decoded as qkdlink" "$(count other-oui.pcap qkdlink)" 0
is "other-oui.pcap: decoded by ieee802a" "$(count other-oui.pcap ieee802a)" 1
expect other-pid.pcap <<'EOF'
ieee802a.oui=11329096
ieee802a.pid=0x0001
qkdlink.pid=
EOF
is "other-pid.pcap (our OUI, another PID): not decoded as qkdlink" \
	"$(count other-pid.pcap qkdlink)" 0

# ---- the OUI/PID preferences ----
set -- -o qkdlink.oui:12-34-56 -o qkdlink.pid:0xBEEF
expect other-oui.pcap "$@" <<'EOF'
qkdlink.oui=0x123456
qkdlink.pid=0xbeef
ieee802a.oui=
EOF
is "preferences OUI 12-34-56 PID 0xBEEF: the golden ACK goes to ieee802a" \
	"$(count ack-untagged.pcap 'ieee802a && !qkdlink' "$@")" 1
set -- -o qkdlink.oui:0xacde48 -o qkdlink.pid:514b
is "preferences 0xacde48 / 514b: same as the defaults" \
	"$(count all.pcap qkdlink "$@")" 9
set -- -o qkdlink.oui:not-hex
is "a bad OUI preference keeps the previous OUI" "$(count all.pcap qkdlink "$@")" 9

# ---- malformed frames: expert info, never a Lua error ----
if [ ! -x "$py" ]; then
	fail "$py missing: malformed-frame tests skipped (apt-get install python3)"
	exit 1
fi
"$py" - "$tmp" pcaps/all.pcap <<'PY'
# Writes cases.pcap + cases.txt (frame number, expected expert, what),
# trunc.pcap (every truncation of every golden frame) and fuzz.pcap (random
# mutations, fixed seed).
import hashlib, hmac, os, random, struct, sys

out, allpcap = sys.argv[1], sys.argv[2]
SECRET = b"qkdlink-golden-capture-secret-01"
DST, SRC = bytes.fromhex("03514b000001"), bytes.fromhex("02000000000a")
K = b"ae40c06c-92a6-41ae-83f2-beb94ad8c283"


def pdu(mtype, body, sender=b"SAE-A", ch=7, epoch=1, seq=1, ver=1, flags=0, length=None,
        slen=None, pad_icv=True):
    plen = 24 + len(sender) + len(body) + 16
    h = bytes.fromhex("acde48") + struct.pack(
        ">HBBBHBBIII", 0x514B, ver, mtype, flags, plen if length is None else length, 0,
        len(sender) if slen is None else slen, ch, epoch, seq)
    p = h + sender + body
    return p + hmac.new(SECRET, p, hashlib.sha256).digest()[:16]


def eth(p, vid=None, extra=b""):
    tag = struct.pack(">HH", 0x8100, (5 << 13) | vid) if vid else b""
    return DST + SRC + tag + b"\x88\xb7" + p + extra


def tlv(t, v):
    return bytes([t, len(v)]) + v


def announce(rot=1, keys=(K,), tlvs=b"", count=None):
    n = len(keys) if count is None else count
    return struct.pack(">IB", rot, n) + b"".join(bytes([len(k)]) + k for k in keys) + tlvs


def ack(rot=1, res=0, tlvs=b""):
    return struct.pack(">IB", rot, res) + tlvs


def hello(role=1, state=0, interval=30, cur=1, pend=0):
    return struct.pack(">BBHII", role, state, interval, cur, pend) + bytes(16)


def write(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            data, orig = fr if isinstance(fr, tuple) else (fr, len(fr))
            f.write(struct.pack("<IIII", 1800000000 + i, 0, len(data), orig) + data)


T = 2 ** 64 - 1
cases = [
    (None, "valid ANNOUNCE built by the test", eth(pdu(2, announce()))),
    (None, "valid tagged 64-octet ACK", eth(pdu(3, ack(), sender=b"B"), vid=100)),
    ("bad_version", "version 2", eth(pdu(2, announce(), ver=2))),
    ("unknown_type", "type 9", eth(pdu(9, ack()))),
    ("bad_length", "Length 40", eth(pdu(3, ack(), length=40))),
    ("bad_length", "Length 1501", eth(pdu(3, ack(), length=1501))),
    ("truncated", "Length one more than the frame holds",
     eth(pdu(3, ack(), length=24 + 5 + 5 + 16 + 1))),
    ("truncated", "frame cut by the snap length", (eth(pdu(2, announce()))[:40], 101)),
    ("flags", "reserved flags set", eth(pdu(3, ack(), flags=0x01))),
    ("malformed", "sender ID length 0", eth(pdu(3, ack(), slen=0))),
    ("malformed", "sender ID of 33 octets", eth(pdu(3, ack(), sender=b"S" * 33))),
    ("malformed", "sender ID with a space", eth(pdu(3, ack(), sender=b"SAE A"))),
    ("malformed", "sender ID longer than the PDU", eth(pdu(3, ack(), slen=200))),
    ("malformed", "channel 0", eth(pdu(3, ack(), ch=0))),
    ("malformed", "epoch 0", eth(pdu(3, ack(), epoch=0))),
    ("malformed", "sequence 0", eth(pdu(3, ack(), seq=0))),
    ("malformed", "HELLO role 3", eth(pdu(1, hello(role=3)))),
    ("unknown_value", "HELLO state 9", eth(pdu(1, hello(state=9)))),
    ("malformed", "HELLO interval 0", eth(pdu(1, hello(interval=0)))),
    ("malformed", "HELLO interval 3601", eth(pdu(1, hello(interval=3601)))),
    ("malformed", "HELLO body of 27 octets", eth(pdu(1, hello()[:27]))),
    ("malformed", "ANNOUNCE rotation 0", eth(pdu(2, announce(rot=0)))),
    ("malformed", "ANNOUNCE key count 0", eth(pdu(2, announce(keys=(), count=0)))),
    ("too_many_keys", "ANNOUNCE of 33 key_IDs",
     eth(pdu(2, announce(keys=[b"k%02d" % i for i in range(33)])))),
    ("malformed", "key_ID of length 0", eth(pdu(2, announce(keys=(b"",))))),
    ("malformed", "key_ID of 129 octets", eth(pdu(2, announce(keys=(b"k" * 129,))))),
    ("malformed", "key_ID with octet 0x7f", eth(pdu(2, announce(keys=(b"ab\x7fcd",))))),
    ("malformed", "key count 2, one key_ID", eth(pdu(2, announce(count=2)))),
    ("malformed", "DETAIL in an ANNOUNCE", eth(pdu(2, announce(tlvs=tlv(3, b"x"))))),
    ("malformed", "ACTIVATION_TIME twice",
     eth(pdu(2, announce(tlvs=tlv(1, bytes(8)) * 2)))),
    ("malformed", "ACTIVATION_TIME of 4 octets", eth(pdu(2, announce(tlvs=tlv(1, bytes(4)))))),
    ("malformed", "KEYCHAIN_SLOT 64", eth(pdu(2, announce(tlvs=tlv(2, b"\x40"))))),
    ("unknown_value", "ACTIVATION_TIME 2^64-1",
     eth(pdu(2, announce(tlvs=tlv(1, struct.pack(">Q", T)))))),
    ("malformed", "ACK rotation 0", eth(pdu(3, ack(rot=0)))),
    ("unknown_value", "ACK result 9", eth(pdu(3, ack(res=9)))),
    ("failure", "ACK result BUSY", eth(pdu(3, ack(res=4)))),
    ("malformed", "ACTIVATION_TIME in an ACK", eth(pdu(3, ack(tlvs=tlv(1, bytes(8)))))),
    ("malformed", "empty DETAIL", eth(pdu(3, ack(tlvs=tlv(3, b""))))),
    ("malformed", "DETAIL of 65 octets", eth(pdu(3, ack(tlvs=tlv(3, b"d" * 65))))),
    ("malformed", "DETAIL with a tab", eth(pdu(3, ack(tlvs=tlv(3, b"a\tb"))))),
    ("unknown_tlv", "unknown TLV 0x05", eth(pdu(3, ack(tlvs=tlv(5, b"xyz"))))),
    ("unsupported_tlv", "unknown critical TLV 0x85", eth(pdu(3, ack(tlvs=tlv(0x85, b"x"))))),
    ("malformed", "one stray octet before the ICV", eth(pdu(3, ack(tlvs=b"\x05")))),
    ("malformed", "TLV value running into the ICV", eth(pdu(3, ack(tlvs=b"\x05\x09ab")))),
    ("trailing", "4 octets after the PDU in a 64-octet frame",
     eth(pdu(3, ack()), extra=b"\0\0\0\0")),
]
write(os.path.join(out, "cases.pcap"), [c[2] for c in cases])
with open(os.path.join(out, "cases.txt"), "w") as f:
    for i, c in enumerate(cases):
        f.write("%d|%s|%s\n" % (i + 1, c[0] or "-", c[1]))

# the golden frames, then every truncation from OUI+PID on
data = open(allpcap, "rb").read()
golden, off = [], 24
while off + 16 <= len(data):
    incl = struct.unpack("<I", data[off + 8:off + 12])[0]
    golden.append(data[off + 16:off + 16 + incl])
    off += 16 + incl
trunc = []
for fr in golden:
    hl = 18 if fr[12:14] == b"\x81\x00" else 14
    for cut in range(hl + 5, len(fr)):
        trunc.append(fr[:cut])
write(os.path.join(out, "trunc.pcap"), trunc)

rng = random.Random(0x88B7)
fuzz = []
for i in range(1500):
    fr = bytearray(rng.choice(golden))
    hl = 18 if fr[12:14] == b"\x81\x00" else 14
    kind = i % 3
    if kind == 0:  # flip a few octets after OUI/PID
        for _ in range(rng.randint(1, 4)):
            fr[rng.randrange(hl + 5, len(fr))] = rng.randrange(256)
    elif kind == 1:  # random Length, sender length, key count or TLV octets
        for pos in rng.sample(range(hl + 5, min(len(fr), hl + 80)), 3):
            fr[pos] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
    else:  # random bytes behind a valid OUI/PID
        fr = fr[:hl + 5] + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
    fuzz.append(bytes(fr))
write(os.path.join(out, "fuzz.pcap"), fuzz)
PY
[ -f "$tmp/cases.pcap" ] || {
	fail "could not write the malformed-frame captures"
	exit 1
}

# every field name present in each frame, one line per frame: "N name name ..."
fieldnames() {
	tshark -n -X "lua_script:$lua" -r "$1" -T pdml 2>/dev/null | "$py" -c '
import sys, xml.etree.ElementTree as ET
n = 0
for ev, el in ET.iterparse(sys.stdin, events=("end",)):
    if el.tag == "packet":
        n += 1
        names = {e.get("name") for e in el.iter("field")}
        print(n, " ".join(sorted(x for x in names if x)))
        el.clear()
'
}
fieldnames "$tmp/cases.pcap" >"$tmp/cases.fields"
ts -r "$tmp/cases.pcap" -T fields -e _ws.col.Info >"$tmp/cases.info"
while IFS='|' read -r num want what; do
	names=" $(sed -n "${num}p" "$tmp/cases.fields" | cut -d' ' -f2-) "
	info=$(sed -n "${num}p" "$tmp/cases.info")
	case "$names" in
	*" _ws.lua.error "* | *" qkdlink.expert.internal "*)
		fail "malformed: $what: Lua error"
		continue
		;;
	*" qkdlink.oui "*) ;;
	*)
		fail "malformed: $what: not decoded as qkdlink"
		continue
		;;
	esac
	# a receiver's drop reasons end the Info column as "[reason]"; the rest do not
	case "$want" in
	- | flags | failure | unknown_value | unknown_tlv) tag= ;;
	*) tag=" [$want]" ;;
	esac
	if [ -n "$tag" ] && [ "${info%"$tag"}" = "$info" ]; then
		fail "malformed: $what: Info '$info' should end with '$tag'"
		continue
	elif [ -z "$tag" ] && [ "${info%]}" != "$info" ]; then
		fail "malformed: $what: Info '$info' should name no drop reason"
		continue
	fi
	if [ "$want" = - ]; then
		case "$names" in
		*" qkdlink.expert."*) fail "malformed: $what: unexpected expert info" ;;
		*) pass "control: $what decodes without expert info" ;;
		esac
	else
		case "$names" in
		*" qkdlink.expert.$want "*)
			pass "malformed: $what gives expert qkdlink.expert.$want${tag:+, Info ends$tag}" ;;
		*) fail "malformed: $what: no qkdlink.expert.$want (has:$(echo "$names" |
			tr ' ' '\n' | grep '^qkdlink.expert' | tr '\n' ' '))" ;;
		esac
	fi
done <"$tmp/cases.txt"

total=$(ts -r "$tmp/trunc.pcap" | wc -l | tr -d ' ')
bad=$(ts -r "$tmp/trunc.pcap" -Y '!qkdlink.expert.truncated || _ws.lua.error || qkdlink.expert.internal' |
	wc -l | tr -d ' ')
if [ "$total" -gt 1000 ] && [ "$bad" -eq 0 ]; then
	pass "every truncation of every golden frame ($total frames) is flagged truncated, no Lua error"
else
	fail "truncated golden frames: $bad of $total without qkdlink.expert.truncated or with a Lua error"
fi

total=$(ts -r "$tmp/fuzz.pcap" | wc -l | tr -d ' ')
bad=$(ts -r "$tmp/fuzz.pcap" -Y '_ws.lua.error || qkdlink.expert.internal' -T fields \
	-e frame.number | tr '\n' ' ')
if [ "$total" -eq 1500 ] && [ -z "$bad" ]; then
	pass "1500 randomly mutated frames decode without a Lua error"
else
	fail "mutated frames: Lua error in frames: ${bad:-?} ($total frames read)"
fi

exit "$failed"
