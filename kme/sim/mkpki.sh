#!/bin/sh
# mkpki.sh - a test PKI for qkdlink-kmesim and the ETSI 014 client (openssl CLI).
#
# Usage: kme/sim/mkpki.sh [-k "KME-A KME-B"] [-s "SAE-A SAE-B SAE-C"] [-d DAYS] DIR
#
# Makes in DIR (created; every file mode 0600):
#   ca.pem ca.key                  the test CA ("qkdlink test KME CA")
#   kme-ID.pem kme-ID.key          per KME: CN=ID, SAN DNS:ID, DNS:localhost, IP:127.0.0.1
#   kme-wrong.pem kme-wrong.key    a valid server certificate for another KME ID (KME-WRONG)
#   sae-ID.pem sae-ID.key          per SAE: client certificate, CN=ID
#   sae-expired.pem .key           a client certificate for the first SAE, expired
#   other-ca.pem other-ca.key      a second, unrelated CA
#   sae-otherca.pem .key           a client certificate for the first SAE from other-ca
# Keys are ECDSA P-256. Existing files are overwritten.
set -eu
kmes="KME-A KME-B"
saes="SAE-A SAE-B SAE-C"
days=825
while getopts k:s:d: o; do
	case $o in
	k) kmes=$OPTARG ;;
	s) saes=$OPTARG ;;
	d) days=$OPTARG ;;
	*) echo "usage: $0 [-k KMES] [-s SAES] [-d DAYS] DIR" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { echo "usage: $0 [-k KMES] [-s SAES] [-d DAYS] DIR" >&2; exit 2; }
dir=$1
mkdir -p "$dir"
umask 077
tmp=$(mktemp -d /tmp/qkdpki.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() { # name subject
	key "$dir/$1.key"
	openssl req -x509 -new -key "$dir/$1.key" -subj "$2" -days $((days + 365)) \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" -out "$dir/$1.pem"
}

leaf() { # ca name cn kind(server|client)
	key "$dir/$2.key"
	openssl req -new -key "$dir/$2.key" -subj "/O=qkdlink test/CN=$3" -out "$tmp/$2.csr"
	if [ "$4" = server ]; then
		printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\n' "$3" >"$tmp/$2.ext"
	else
		printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$tmp/$2.ext"
	fi
	openssl x509 -req -in "$tmp/$2.csr" -CA "$dir/$1.pem" -CAkey "$dir/$1.key" \
		-CAcreateserial -CAserial "$tmp/$1.srl" -days "$days" -extfile "$tmp/$2.ext" \
		-out "$dir/$2.pem" 2>/dev/null
}

ca ca "/O=qkdlink test/CN=qkdlink test KME CA"
for k in $kmes; do leaf ca "kme-$k" "$k" server; done
leaf ca kme-wrong KME-WRONG server
for s in $saes; do leaf ca "sae-$s" "$s" client; done
first=$(echo "$saes" | awk '{print $1}')

# expired client certificate: openssl ca takes explicit dates
mkdir -p "$tmp/db"
: >"$tmp/db/index.txt"
echo 1000 >"$tmp/db/serial"
cat >"$tmp/ca.cnf" <<CNF
[ca]
default_ca = t
[t]
database = $tmp/db/index.txt
serial = $tmp/db/serial
new_certs_dir = $tmp/db
default_md = sha256
policy = p
unique_subject = no
copy_extensions = none
[p]
commonName = supplied
organizationName = optional
[x]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
CNF
key "$dir/sae-expired.key"
openssl req -new -key "$dir/sae-expired.key" -subj "/O=qkdlink test/CN=$first" \
	-out "$tmp/exp.csr"
openssl ca -batch -config "$tmp/ca.cnf" -extensions x -cert "$dir/ca.pem" \
	-keyfile "$dir/ca.key" -startdate 20200101000000Z -enddate 20210101000000Z \
	-in "$tmp/exp.csr" -out "$tmp/exp.pem" 2>/dev/null
openssl x509 -in "$tmp/exp.pem" -out "$dir/sae-expired.pem"

ca other-ca "/O=somebody else/CN=other CA"
leaf other-ca sae-otherca "$first" client
chmod 600 "$dir"/*.pem "$dir"/*.key
echo "mkpki: test PKI in $dir (KMEs: $kmes; SAEs: $saes)"
