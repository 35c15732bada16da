#!/bin/sh
# Makes the certificates of deploy/nats/nats-server.conf with openssl:
#
#   ca.pem, ca-key.pem          the cluster CA (10 years). Keep ca-key.pem
#                               offline: whoever has it can mint clients.
#   server.pem, server-key.pem  every NATS server, for clients and routes:
#                               CN=nats-route (what the route authorization
#                               admits), SANs from NATS_HOSTS (825 days)
#   cairn.pem, cairn-key.pem    Cairn's client certificate, CN=cairn
#                               (825 days)
#
# usage: deploy/nats/make-certs.sh DIR
#   NATS_HOSTS="nats-1 nats-2 nats-3 nats localhost 127.0.0.1"  (default)
#     names and addresses clients and routes use to reach the servers; a
#     Kubernetes install adds its Service names, e.g.
#     NATS_HOSTS="nats nats.cairn.svc *.nats-headless.cairn.svc.cluster.local"
#
# An existing CA in DIR is reused, so running it again renews the server
# and client certificates under the same CA (rotation: deploy/README.md).
# Needs openssl 1.1.1 or later.
set -eu

dir=${1:?usage: make-certs.sh DIR}
hosts=${NATS_HOSTS:-nats-1 nats-2 nats-3 nats localhost 127.0.0.1}
mkdir -p "$dir"
cd "$dir"
umask 077

if [ ! -f ca.pem ] || [ ! -f ca-key.pem ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout ca-key.pem -out ca.pem -days 3650 -subj "/CN=Cairn NATS CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

san=""
for h in $hosts; do
  case $h in
    *[!0-9.]*) san="$san,DNS:$h" ;;   # a name (or an IPv6 address: add it as IP: by hand)
    *) san="$san,IP:$h" ;;
  esac
done
san=${san#,}

# leaf NAME CN USAGE [SAN]: a P-256 key and a certificate signed by the CA.
leaf() {
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$3"
    [ -n "${4:-}" ] && echo "subjectAltName=$4"
  } >"$ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$1-key.pem" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
    -days 825 -sha256 -extfile "$ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$ext"
}

# Servers present server.pem to clients and, as route clients, to each
# other: both usages.
leaf server nats-route serverAuth,clientAuth "$san"
leaf cairn cairn clientAuth
chmod 0644 ca.pem server.pem cairn.pem
echo "made in $dir: ca.pem server.pem server-key.pem cairn.pem cairn-key.pem (SANs: $san)"
