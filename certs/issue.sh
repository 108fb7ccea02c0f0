#!/usr/bin/env bash
# Issues production certificates for lienthong with OpenSSL.
#
#   certs/issue.sh ca     DIR                  a CA (keep DIR/ca.key offline)
#   certs/issue.sh server DIR HOST [HOST...]   the server's certificate
#   certs/issue.sh client DIR CODE [NAME]      one organisation's certificate
#   certs/issue.sh operator DIR NAME           an operator's (backup, reload)
#
# A client certificate names its organisation in a SAN URI
# urn:lienthong:org:<CODE> (and in its CN); the server reads the
# organisation from there and from nowhere else. An operator's names it in
# urn:lienthong:operator:<NAME> (give `serve --operator NAME`), and no
# organisation. Issuing again replaces the files: that is how a certificate
# is rotated (then reload the server). Keys are ECDSA P-256.
set -euo pipefail

die() { echo "error: $*" >&2; exit 2; }
[ $# -ge 2 ] || die "usage: $0 ca|server|client|operator DIR ..."
kind=$1 dir=$2; shift 2
mkdir -p "$dir"
days=${LIENTHONG_CERT_DAYS:-825}

newkey() { (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"); }

case "$kind" in
ca)
  [ -e "$dir/ca.key" ] && die "$dir/ca.key exists; refusing to overwrite a CA"
  newkey "$dir/ca.key"
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 \
    -subj "/CN=lienthong CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.crt"
  echo "CA: $dir/ca.crt (key $dir/ca.key: keep it offline)"
  ;;
server)
  [ $# -ge 1 ] || die "usage: $0 server DIR HOST [HOST...]"
  san=""
  for h in "$@"; do
    if [[ $h =~ ^[0-9.]+$ || $h == *:* ]]; then san+="IP:$h,"; else san+="DNS:$h,"; fi
  done
  newkey "$dir/server.key"
  openssl req -new -key "$dir/server.key" -subj "/CN=$1" -out "$dir/server.csr"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -sha256 -days "$days" -CAcreateserial -out "$dir/server.crt" \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' "${san%,}")
  rm -f "$dir/server.csr"
  echo "server: $dir/server.crt"
  ;;
client)
  [ $# -ge 1 ] || die "usage: $0 client DIR CODE [NAME]"
  code=$1 name=${2:-$1}
  [[ $code =~ ^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$ ]] || die "$code is not an organisation code NNN.NN.NN.Xnn"
  mkdir -p "$dir/clients"
  newkey "$dir/clients/$code.key"
  openssl req -new -utf8 -key "$dir/clients/$code.key" -subj "/CN=$code/O=$name" -out "$dir/clients/$code.csr"
  openssl x509 -req -in "$dir/clients/$code.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -sha256 -days "$days" -CAcreateserial -out "$dir/clients/$code.crt" \
    -extfile <(printf 'subjectAltName=URI:urn:lienthong:org:%s\nextendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' "$code")
  rm -f "$dir/clients/$code.csr"
  echo "client $code: $dir/clients/$code.crt"
  ;;
operator)
  [ $# -ge 1 ] || die "usage: $0 operator DIR NAME"
  name=$1
  [[ $name =~ ^[a-z0-9][a-z0-9._-]{0,62}$ ]] || die "$name: an operator's name is lowercase letters, digits, '.', '_' and '-'"
  mkdir -p "$dir/operators"
  newkey "$dir/operators/$name.key"
  openssl req -new -key "$dir/operators/$name.key" -subj "/CN=lienthong operator $name" -out "$dir/operators/$name.csr"
  openssl x509 -req -in "$dir/operators/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -sha256 -days "$days" -CAcreateserial -out "$dir/operators/$name.crt" \
    -extfile <(printf 'subjectAltName=URI:urn:lienthong:operator:%s\nextendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' "$name")
  rm -f "$dir/operators/$name.csr"
  echo "operator $name: $dir/operators/$name.crt (serve --operator $name)"
  ;;
*) die "unknown kind $kind (ca, server, client or operator)" ;;
esac
