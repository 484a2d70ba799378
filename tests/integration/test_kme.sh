#!/bin/sh
# test_kme.sh - the ETSI 014 client against qkdlink-kmesim over mutual TLS on
# loopback (issue 3 §4): makes a test PKI, starts two simulated KMEs (random
# free ports, 127.0.0.1 only), runs build/san/kme-itest (ASan+UBSan, leak
# check) and the qkdlink-kme tool, and checks the simulator log holds no key.
# Usage: tests/integration/test_kme.sh BUILD_DIR
set -u
BUILD=${1:-build}
dir=$(mktemp -d /tmp/qkdkme.XXXXXX)
sim_pid=
cleanup() {
	[ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
n=0
fail=0
tap() { # cond-rc description
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi
}

for b in san/qkdlink-kmesim qkdlink-kme san/kme-itest; do
	[ -x "$BUILD/$b" ] || { echo "not ok 1 - $BUILD/$b not built"; exit 1; }
done
sh kme/sim/mkpki.sh -s "SAE-A SAE-B SAE-C SAE-ROGUE" "$dir/pki" >/dev/null 2>&1
tap $? "mkpki.sh makes the test PKI"
bad=$(find "$dir/pki" -type f ! -perm 600 | wc -l)
tap "$bad" "every PKI file is mode 0600"

p=$dir/pki
cat >"$dir/sim.json" <<JSON
{"ca": "$p/ca.pem", "key_size": 256, "max_key_per_request": 16, "max_SAE_ID_count": 2,
 "max_key_count": 1000,
 "kmes": [
  {"id": "KME-A", "listen": "127.0.0.1:0", "cert": "$p/kme-KME-A.pem", "key": "$p/kme-KME-A.key",
   "wrong_cert": "$p/kme-wrong.pem", "wrong_key": "$p/kme-wrong.key"},
  {"id": "KME-B", "listen": "127.0.0.1:0", "cert": "$p/kme-KME-B.pem", "key": "$p/kme-KME-B.key"}],
 "saes": [{"id": "SAE-A", "kme": "KME-A"}, {"id": "SAE-B", "kme": "KME-B"},
          {"id": "SAE-C", "kme": "KME-B"}]}
JSON
# the simulator runs under ASan+UBSan too; its reports go to sim.err
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$BUILD/san/qkdlink-kmesim" -c "$dir/sim.json" -p "$dir/ports" -l "$dir/sim.log" \
	2>"$dir/sim.err" &
sim_pid=$!
i=0
while [ ! -s "$dir/ports" ] && [ $i -lt 100 ]; do
	kill -0 "$sim_pid" 2>/dev/null || break
	sleep 0.05
	i=$((i + 1))
done
[ -s "$dir/ports" ]
tap $? "qkdlink-kmesim serves KME-A and KME-B"
[ -s "$dir/ports" ] || { cat "$dir/sim.log"; exit 1; }

out=$dir/itest.out
timeout 150 "$BUILD/san/kme-itest" "$p" "$dir/ports" "$dir/sim.log" >"$out" 2>&1
rc=$?
# renumber the program's TAP lines into this script's sequence
while IFS= read -r line; do
	case "$line" in
	"ok "*) n=$((n + 1)); echo "ok $n -${line#ok [0-9]* -}" ;;
	"not ok "*) n=$((n + 1)); echo "not ok $n -${line#not ok [0-9]* -}"; fail=1 ;;
	"1.."*) ;;
	*) echo "# $line" ;;
	esac
done <"$out"
tap $rc "kme-itest exits 0 under ASan+UBSan with leak detection (rc $rc)"

# the operator tool, same PKI
A=$(awk '$1=="KME-A"{print $2}' "$dir/ports")
B=$(awk '$1=="KME-B"{print $2}' "$dir/ports")
common="--ca $p/ca.pem"
st=$("$BUILD/qkdlink-kme" --url "https://127.0.0.1:$A" --kme-id KME-A $common \
	--cert "$p/sae-SAE-A.pem" --key "$p/sae-SAE-A.key" status SAE-B 2>&1)
echo "$st" | grep -q 'source_KME_ID *KME-A'
tap $? "qkdlink-kme status"
got=$("$BUILD/qkdlink-kme" --url "https://127.0.0.1:$A" --kme-id KME-A $common \
	--cert "$p/sae-SAE-A.pem" --key "$p/sae-SAE-A.key" get SAE-B -n 2 -s 256 2>&1)
ids=$(echo "$got" | awk '/^key_ID/{print $2}')
[ "$(echo "$ids" | wc -w)" -eq 2 ] && ! echo "$got" | grep -qi 'key:'
tap $? "qkdlink-kme get: 2 key_IDs and lengths, no key values"
got2=$("$BUILD/qkdlink-kme" --url "https://127.0.0.1:$B" --kme-id KME-B $common \
	--cert "$p/sae-SAE-B.pem" --key "$p/sae-SAE-B.key" fetch SAE-A --show-keys $ids 2>&1)
[ "$(echo "$got2" | grep -c '^key ')" -eq 2 ]
tap $? "qkdlink-kme fetch --show-keys: the slave prints both keys"
"$BUILD/qkdlink-kme" --url "https://127.0.0.1:$B" --kme-id KME-B $common \
	--cert "$p/sae-SAE-B.pem" --key "$p/sae-SAE-B.key" fetch SAE-A $ids >"$dir/t.out" 2>&1
trc=$?
[ $trc -ne 0 ] && grep -q 'http-400.*not found' "$dir/t.out"
tap $? "qkdlink-kme fetch of the same keys again: http-400 not found, exit $trc"

# the simulator's own conformance (etsi014.md §6), with curl
cu() { # CERT_SAE PORT PATH [curl args] -> prints "HTTP_CODE BODY"
	sae=$1 port=$2 path=$3
	shift 3
	timeout 10 curl -s --cacert "$p/ca.pem" --cert "$p/sae-$sae.pem" --key "$p/sae-$sae.key" \
		-w ' %{http_code} %{content_type}' "$@" "https://127.0.0.1:$port$path"
}
conf() { # description expected-regex output
	echo "$3" | grep -Eq "$2"
	tap $? "simulator: $1"
}
conf "POST status is 405" ' 405 application/json$' \
	"$(cu SAE-A "$A" /api/v1/keys/SAE-B/status -d '{}')"
conf "unknown endpoint is 404" ' 404 application/json$' "$(cu SAE-A "$A" /api/v1/keys/SAE-B/other)"
conf "GET enc_keys?number=abc is 400" 'shall be an integer.* 400 ' \
	"$(cu SAE-A "$A" '/api/v1/keys/SAE-B/enc_keys?number=abc')"
conf "number as a JSON string is 400" 'number shall be an integer.* 400 ' \
	"$(cu SAE-A "$A" /api/v1/keys/SAE-B/enc_keys -H 'Content-Type: application/json' -d '{"number":"2"}')"
conf "size 100 gets the spec message" '"size shall be a multiple of 8".* 400 application/json$' \
	"$(cu SAE-A "$A" /api/v1/keys/SAE-B/enc_keys -d '{"size":100}')"
conf "number over max_key_per_request is 400" ' 400 ' \
	"$(cu SAE-A "$A" /api/v1/keys/SAE-B/enc_keys -d '{"number":17}')"
conf "3 additional slaves over max_SAE_ID_count 2 is 400" 'max_SAE_ID_count.* 400 ' \
	"$(cu SAE-A "$A" /api/v1/keys/SAE-B/enc_keys -d '{"additional_slave_SAE_IDs":["SAE-C","SAE-B","SAE-A"]}')"
conf "unknown slave in the path is 400" ' 400 ' "$(cu SAE-A "$A" /api/v1/keys/NOBODY/status)"
conf "an SAE calling another SAE's KME is 401" ' 401 ' "$(cu SAE-B "$A" /api/v1/keys/SAE-A/status)"
out=$(cu SAE-A "$A" /api/v1/keys/SAE-B/enc_keys -d '{}')
kid=$(echo "$out" | sed -n 's/.*"key_ID":"\([^"]*\)".*/\1/p')
conf "dec_keys naming the wrong master is 401" ' 401 ' \
	"$(cu SAE-B "$B" /api/v1/keys/SAE-C/dec_keys -d "{\"key_IDs\":[{\"key_ID\":\"$kid\"}]}")"
conf "GET dec_keys with two key_IDs is 400" ' 400 ' \
	"$(cu SAE-B "$B" "/api/v1/keys/SAE-A/dec_keys?key_ID=$kid&key_ID=x")"
# key pools are per (master, slave) pair: a key for SAE-B leaves SAE-C's count alone
skc() { cu SAE-A "$A" "/api/v1/keys/$1/status" | sed -n 's/.*"stored_key_count":\([0-9]*\).*/\1/p'; }
b0=$(skc SAE-B) c0=$(skc SAE-C)
cu SAE-A "$A" /api/v1/keys/SAE-B/enc_keys -d '{"number":3}' >/dev/null
b1=$(skc SAE-B) c1=$(skc SAE-C)
[ -n "$b0" ] && [ -n "$c0" ] && [ "$b1" -eq $((b0 - 3)) ] && [ "$c1" -eq "$c0" ]
tap $? "stored_key_count is per SAE pair (SAE-B $b0 -> $b1, SAE-C $c0 -> $c1)"
cu SAE-A "$A" /api/v1/keys/SAE-B/enc_keys -d '{"additional_slave_SAE_IDs":["SAE-C"]}' >/dev/null
[ "$(skc SAE-B)" -eq $((b1 - 1)) ] && [ "$(skc SAE-C)" -eq $((c1 - 1)) ]
tap $? "a multicast key is taken from every listed slave's pool"
curl -s "http://127.0.0.1:$(awk '$1=="admin"{print $2}' "$dir/ports")/set?ext_optional_strict=1" >/dev/null
conf "extension_optional behind its switch" 'not all extension_optional request options handled.* 400 ' \
	"$(cu SAE-A "$A" /api/v1/keys/SAE-B/enc_keys -d '{"extension_optional":[{"abc_x":1}]}')"
curl -s "http://127.0.0.1:$(awk '$1=="admin"{print $2}' "$dir/ports")/reset" >/dev/null
# switches for one KME only (/set?kme=ID&...): the fault matrix faults a master's
# KME apart from its slave's
adm_url="http://127.0.0.1:$(awk '$1=="admin"{print $2}' "$dir/ports")"
curl -s "$adm_url/set?kme=KME-B&fail503=1" >/dev/null
conf "per-KME switch: fail503 at KME-B leaves KME-A alone" ' 200 application/json$' \
	"$(cu SAE-A "$A" /api/v1/keys/SAE-B/status)"
conf "per-KME switch: fail503 at KME-B answers 503 there" ' 503 application/json$' \
	"$(cu SAE-B "$B" /api/v1/keys/SAE-A/status)"
conf "per-KME switch: used up, KME-B answers 200 again" ' 200 application/json$' \
	"$(cu SAE-B "$B" /api/v1/keys/SAE-A/status)"
conf "per-KME switch: an unknown KME is refused (400)" '^400$' \
	"$(curl -s -o /dev/null -w '%{http_code}' "$adm_url/set?kme=KME-NONE&hang=1")"
curl -s "$adm_url/set?kme=KME-A&delay_ms=50" >/dev/null
conf "per-KME switch: /faults shows it under kmes" '"kmes":\{"KME-A":\{"delay_ms":50' \
	"$(curl -s "$adm_url/faults")"
curl -s "$adm_url/reset" >/dev/null
conf "per-KME switch: /reset clears every KME's switches" '"KME-A":\{"delay_ms":0' \
	"$(curl -s "$adm_url/faults")"

# a client without a certificate: handshake refused, no request logged
before=$(grep -c '/api/v1/' "$dir/sim.log")
timeout 10 curl -s --cacert "$p/ca.pem" "https://127.0.0.1:$A/api/v1/keys/SAE-B/status" \
	>/dev/null 2>&1
crc=$?
after=$(grep -c '/api/v1/' "$dir/sim.log")
[ $crc -ne 0 ] && [ "$before" -eq "$after" ]
tap $? "no client certificate: refused in the handshake (curl exit $crc), no request logged"

# the simulator never logs key values: no base64 blob of 43+ characters
! grep -Eq '[A-Za-z0-9+/]{43}=' "$dir/sim.log"
tap $? "simulator log holds key_IDs only, no key values"
kill "$sim_pid" 2>/dev/null
wait "$sim_pid"
src=$?
sim_pid=
[ $src -eq 0 ] && ! grep -q 'Sanitizer' "$dir/sim.err"
tap $? "simulator (ASan+UBSan) ran the whole test and exited cleanly, no leak (rc $src)"
grep -q 'Sanitizer' "$dir/sim.err" && sed -n 1,40p "$dir/sim.err" | sed 's/^/# /'

# key generation rate: a second simulator starting with an empty pool
sed -e 's/"max_key_count": 1000,/"max_key_count": 50, "initial_keys": 0, "key_rate": 100,/' \
	"$dir/sim.json" >"$dir/rate.json"
rm -f "$dir/ports"
"$BUILD/san/qkdlink-kmesim" -c "$dir/rate.json" -p "$dir/ports" -l "$dir/rate.log" \
	2>"$dir/rate.err" &
sim_pid=$!
i=0
while [ ! -s "$dir/ports" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
adm=$(awk '$1=="admin"{print $2}' "$dir/ports")
pool=0
i=0
while [ "$pool" -lt 50 ] && [ $i -lt 100 ]; do
	sleep 0.05
	pool=$(curl -s "http://127.0.0.1:$adm/faults" | sed -n 's/.*"pool":\([0-9]*\).*/\1/p')
	pool=${pool:-0}
	i=$((i + 1))
done
[ "$pool" -eq 50 ]
tap $? "key_rate refills an empty pool up to max_key_count ($pool)"
kill "$sim_pid" 2>/dev/null
wait "$sim_pid" 2>/dev/null
sim_pid=
echo "1..$n"
exit $fail
