#!/usr/bin/env bash
# Make a private CA and one certificate per Berth node (deploy/README.md).
#
#   scripts/gen-certs.sh DIR NAME:SAN[,SAN...] [NAME:SAN...]...
#
# DIR gets ca.pem and ca-key.pem (made once; an existing CA in DIR is reused,
# so nodes can be added later) and, per NAME, NAME.pem and NAME-key.pem.
# SANs are the DNS names and IP addresses peers, agents and clients dial
# this node at: every host in -peers, -advertise-http, -raft-addr,
# -advertise-addr and in the URLs users type. Certificates serve both as
# TLS server and client certificates (managers use them both ways on the
# Raft port). Example, the cluster of deploy/config:
#
#   scripts/gen-certs.sh tls \
#     m1:m1.berth.internal,10.0.0.11 m2:m2.berth.internal,10.0.0.12 m3:m3.berth.internal,10.0.0.13 \
#     a1:a1.berth.internal,10.0.1.21 a2:a2.berth.internal,10.0.1.22
#
# DAYS (default 825) is a node certificate's lifetime; CA_DAYS (3650) the CA's.
# Keep ca-key.pem off the nodes: they need ca.pem, their NAME.pem and NAME-key.pem.
set -euo pipefail

if [ $# -lt 2 ]; then
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
command -v openssl >/dev/null || { echo "gen-certs: openssl is required (apt-get install openssl)" >&2; exit 1; }

dir=$1
shift
days=${DAYS:-825}
ca_days=${CA_DAYS:-3650}
mkdir -p "$dir"
umask 077

if [ ! -f "$dir/ca.pem" ]; then
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca-key.pem"
  openssl req -x509 -new -key "$dir/ca-key.pem" -sha256 -days "$ca_days" -subj "/CN=Berth cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.pem"
  echo "made CA $dir/ca.pem"
else
  echo "reusing CA $dir/ca.pem"
fi

ip_re='^([0-9]{1,3}\.){3}[0-9]{1,3}$|:'
for spec in "$@"; do
  name=${spec%%:*}
  sans=${spec#*:}
  if [ -z "$name" ] || [ "$name" = "$spec" ] || [ -z "$sans" ]; then
    echo "gen-certs: $spec must be NAME:SAN[,SAN...]" >&2
    exit 2
  fi
  alt=""
  IFS=',' read -ra list <<<"$sans"
  for s in "${list[@]}"; do
    if [[ $s =~ $ip_re ]]; then alt+="${alt:+,}IP:$s"; else alt+="${alt:+,}DNS:$s"; fi
  done
  ext=$(mktemp)
  trap 'rm -f "$ext"' EXIT
  cat >"$ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$alt
EXT
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/$name-key.pem"
  openssl req -new -key "$dir/$name-key.pem" -subj "/CN=$name" -out "$dir/$name.csr"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
    -sha256 -days "$days" -extfile "$ext" -out "$dir/$name.pem" 2>/dev/null
  rm -f "$dir/$name.csr" "$ext"
  openssl verify -CAfile "$dir/ca.pem" "$dir/$name.pem" >/dev/null
  echo "made $dir/$name.pem ($alt)"
done
chmod 644 "$dir/ca.pem" "$dir"/*.pem
chmod 600 "$dir"/*-key.pem
