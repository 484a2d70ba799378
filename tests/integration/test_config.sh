#!/bin/sh
# qkdlinkd-check against the examples of docs/examples/ and the broken configs
# of tests/fixtures/config/: every example is valid (JSON alone, then with its
# files created in a temporary directory), and every broken config is refused
# with exit status 1 and exactly the message in its .err file.
#
# Fixtures name files as @DIR@/...; the test copies them into a mktemp
# directory with @DIR@ replaced, creates the secrets and keys there at run
# time (git keeps no file modes) and runs the checker from that directory, so
# messages start with the fixture's own name. Prints TAP lines.
# Usage: tests/integration/test_config.sh BUILD_DIR
set -u
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
check=$BUILD/qkdlinkd-check
src=$(pwd)
fix=$src/tests/fixtures/config
tmp=$(mktemp -d /tmp/qkdcfgtest.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
n=0
bad=0

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
notok() {
	n=$((n + 1))
	echo "not ok $n - $1"
	bad=1
}

if [ ! -x "$check" ]; then
	notok "$check is not built (make $check)"
	exit 1
fi

# the files the fixtures name
mkdir -m 700 "$tmp/state"
printf -- '-----BEGIN CERTIFICATE-----\n' >"$tmp/ca.pem"
cp "$tmp/ca.pem" "$tmp/sae-a.pem"
printf -- '-----BEGIN PRIVATE KEY-----\n' >"$tmp/sae-a.key"
cp "$tmp/sae-a.key" "$tmp/r1.key"
cp "$tmp/sae-a.key" "$tmp/loose.key"
: >"$tmp/known_hosts"
head -c 32 /dev/urandom >"$tmp/ch7.secret"
head -c 64 /dev/urandom >"$tmp/ch8.secret"
head -c 32 /dev/urandom >"$tmp/loose.secret"
head -c 16 /dev/urandom >"$tmp/short.secret"
chmod 600 "$tmp/sae-a.key" "$tmp/r1.key" "$tmp"/*.secret
chmod 640 "$tmp/loose.key"
chmod 644 "$tmp/loose.secret"

for f in "$fix"/*.json; do
	name=$(basename "$f")
	sed "s#@DIR@#$tmp#g" "$f" >"$tmp/$name"
done

# 1. the valid fixture, with and without its files
out=$(cd "$tmp" && "$check" valid.json 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && echo "$out" | grep -q '^valid.json: valid$'; then
	ok "valid.json: valid, files checked"
else
	notok "valid.json: exit $rc: $out"
fi

# 2. every broken fixture, refused with its exact message
for e in "$fix"/*.err; do
	base=$(basename "$e" .err)
	want=$(sed "s#@DIR@#$tmp#g" "$e")
	got=$(cd "$tmp" && "$check" "$base.json" 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" -eq 1 ] && [ "$got" = "$want" ]; then
		ok "$base.json refused: $got"
	else
		notok "$base.json: exit $rc, got \"$got\", want \"$want\""
	fi
done

# 3. the secret's content never appears in any output
secret_hex=$(od -An -tx1 "$tmp/ch7.secret" | tr -d ' \n')
all=$(cd "$tmp" && for f in *.json; do "$check" "$f" 2>&1; done | od -An -tx1 | tr -d ' \n')
case "$all" in
*"$secret_hex"*) notok "a secret's content reached the checker's output" ;;
*) ok "no secret content in any output" ;;
esac

# 4. bounds and usage
head -c 1048577 /dev/zero | tr '\0' ' ' >"$tmp/big.json"
got=$(cd "$tmp" && "$check" big.json 2>&1)
rc=$?
if [ "$rc" -eq 1 ] && [ "$got" = "big.json: 1048577 bytes, larger than the 1048576-byte limit" ]; then
	ok "a config over 1 MiB is refused unread"
else
	notok "big.json: exit $rc: $got"
fi
got=$(cd "$tmp" && "$check" absent.json 2>&1)
rc=$?
if [ "$rc" -eq 1 ] && [ "$got" = "absent.json: No such file or directory" ]; then
	ok "a missing config file is named"
else
	notok "absent.json: exit $rc: $got"
fi
"$check" >/dev/null 2>&1
rc=$?
if [ "$rc" -eq 2 ]; then ok "no argument: usage, exit 2"; else notok "no argument: exit $rc"; fi

# 5. every example of docs/examples: valid as JSON, then with its files
for f in "$src"/docs/examples/*.json; do
	name=$(basename "$f")
	out=$("$check" --no-files "$f" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ]; then
		ok "example $name: valid JSON and rules"
	else
		notok "example $name: exit $rc: $out"
		continue
	fi
	ex=$tmp/ex-${name%.json}
	mkdir -p "$ex/etc" && mkdir -m 700 "$ex/state"
	# the example's files, created under $ex/etc with the modes they need
	for p in $(grep -o '"/etc/qkdlink/[^"]*"' "$f" | tr -d '"' | sort -u); do
		t=$ex/etc/${p#/etc/qkdlink/}
		case "$p" in
		*.secret) head -c 32 /dev/urandom >"$t" && chmod 600 "$t" ;;
		*.key | *_ed25519 | *password*) echo key >"$t" && chmod 600 "$t" ;;
		*) echo data >"$t" && chmod 644 "$t" ;;
		esac
	done
	# paths into $ex; the agent's own user becomes one that exists here
	sed -e "s#/etc/qkdlink/#$ex/etc/#g" -e "s#\"/var/lib/qkdlink\"#\"$ex/state\"#" \
		-e 's#^  "user": "[^"]*"#  "user": "root"#' "$f" >"$ex/$name"
	out=$("$check" "$ex/$name" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ]; then
		ok "example $name: valid with its files"
	else
		notok "example $name with files: exit $rc: $out"
	fi
done

# 6. the examples agree with each other: for every channel, one master whose
#    peers are exactly the slaves, each slave naming that master, and the same
#    cipher suite, CKN convention and secret files everywhere
out=$(/usr/bin/python3 - "$src"/docs/examples/*.json <<'PY'
import json, sys
sites = {}
for f in sys.argv[1:]:
    c = json.load(open(f))
    sites[c["sae_id"]] = c
chans = {}
for sae, c in sites.items():
    for ch in c["channels"]:
        chans.setdefault(ch["id"], []).append((sae, ch))
bad = []
for cid, members in sorted(chans.items()):
    masters = [(s, ch) for s, ch in members if ch["role"] == "master"]
    slaves = sorted(s for s, ch in members if ch["role"] == "slave")
    if len(masters) != 1:
        bad.append(f"channel {cid}: {len(masters)} masters")
        continue
    m, mch = masters[0]
    if sorted(mch["peers"]) != slaves:
        bad.append(f"channel {cid}: master {m} lists {mch['peers']}, slaves are {slaves}")
    for s, ch in members:
        if ch["role"] == "slave" and ch["peers"] != [m]:
            bad.append(f"channel {cid}: slave {s} names {ch['peers']}, master is {m}")
        for k in ("cipher_suite", "ckn"):
            if ch[k] != mch[k]:
                bad.append(f"channel {cid}: {s} has {k} {ch[k]}, master has {mch[k]}")
        if [x["file"] for x in ch["secrets"]] != [x["file"] for x in mch["secrets"]]:
            bad.append(f"channel {cid}: {s} has other secret files than the master")
print("; ".join(bad) if bad else f"{len(chans)} channels consistent across {len(sites)} sites")
sys.exit(1 if bad else 0)
PY
)
if [ $? -eq 0 ]; then ok "examples agree: $out"; else notok "examples disagree: $out"; fi

echo "1..$n"
exit $bad
