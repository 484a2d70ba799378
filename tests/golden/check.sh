#!/bin/sh
# Regenerates the golden captures with BUILD_DIR/golden-gen into a temporary
# directory and compares them, byte for byte, with the checked-in pcaps/.
# A difference means the encoder's output changed: on purpose only, with
# docs/protocol.md, then `build/golden-gen pcaps/`. Prints TAP lines.
# Usage: tests/golden/check.sh BUILD_DIR
set -u
BUILD=${1:-build}
gen=$BUILD/golden-gen
top=$(cd "$(dirname "$0")/../.." && pwd) || exit 1
golden=$top/pcaps

if [ ! -x "$gen" ]; then
	echo "not ok 1 - $gen missing (make $gen)"
	exit 1
fi
tmp=$(mktemp -d /tmp/qkdgolden.XXXXXX) || {
	echo "not ok 1 - mktemp failed"
	exit 1
}
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

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

out=$tmp/out
again=$tmp/again
mkdir "$out" "$again" || exit 1
if "$gen" "$out" >"$tmp/log" 2>&1; then
	pass "golden-gen writes the captures"
else
	fail "golden-gen failed: $(cat "$tmp/log")"
fi

# the generator must be deterministic on its own: a second run, same bytes
"$gen" "$again" >/dev/null 2>&1 || fail "golden-gen second run failed"

found=0
for f in "$out"/*.pcap; do
	[ -f "$f" ] || continue
	found=$((found + 1))
	name=$(basename "$f")
	if ! cmp -s "$f" "$again/$name"; then
		fail "golden $name differs between two runs (golden-gen is not deterministic)"
	elif [ ! -f "$golden/$name" ]; then
		fail "golden $name missing from pcaps/ (run $gen pcaps/)"
	elif cmp -s "$f" "$golden/$name"; then
		pass "golden $name matches"
	else
		fail "golden $name differs (wire format changed: see docs/protocol.md)"
	fi
done
[ "$found" -gt 0 ] || fail "golden-gen wrote no .pcap file"

for f in "$golden"/*.pcap; do
	[ -f "$f" ] || continue
	name=$(basename "$f")
	[ -f "$out/$name" ] ||
		fail "golden $name is in pcaps/ but golden-gen no longer writes it"
done

# nothing but captures in either place
for f in "$out"/* "$golden"/*; do
	[ -e "$f" ] || continue
	case "$f" in
	*.pcap) ;;
	*) fail "unexpected file $f (only .pcap captures belong there)" ;;
	esac
done

# the checked-in captures are signed with the fixture secret, so tests that
# verify ICVs (qkd88b7 decode, the fuzz target) can use them
secret=$top/tests/fixtures/golden.secret
if [ ! -x /usr/bin/python3 ]; then
	fail "/usr/bin/python3 missing: cannot verify the ICVs (apt-get install python3)"
elif msg=$(/usr/bin/python3 - "$secret" "$golden"/*.pcap <<'PY'
import hashlib, hmac, struct, sys
secret = open(sys.argv[1], "rb").read()
frames = 0
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    off = 24
    while off + 16 <= len(data):
        start = off
        incl = struct.unpack("<I", data[off + 8:off + 12])[0]
        fr = data[off + 16:off + 16 + incl]
        off += 16 + incl
        o = 12
        while fr[o:o + 2] in (b"\x81\x00", b"\x88\xa8"):
            o += 4
        pdu = fr[o + 2:]
        if fr[o:o + 2] != b"\x88\xb7" or pdu[:5] != bytes.fromhex("acde48514b"):
            continue
        plen = struct.unpack(">H", pdu[8:10])[0]
        mac = hmac.new(secret, pdu[:plen - 16], hashlib.sha256).digest()[:16]
        if mac != pdu[plen - 16:plen]:
            print("%s: the frame at file offset %d does not verify" % (path, start))
            sys.exit(1)
        frames += 1
print("%d frames" % frames)
PY
); then
	pass "the ICVs of all qkdlink frames in pcaps/ ($msg) verify under tests/fixtures/golden.secret"
else
	fail "ICV check: $msg (tests/fixtures/golden.secret and tests/golden/gen.c must hold the same secret)"
fi

exit "$failed"
