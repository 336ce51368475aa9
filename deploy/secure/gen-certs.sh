#!/usr/bin/env bash
# Certificates for the secured compose cluster (deploy/docker-compose.secure.yml), with openssl:
#
#   ca.pem, ca.key           a CA (the key stays on the host, mode 0600)
#   node<N>.pem              node N's PEM keystore: its private key, then its certificate and the
#                            CA's (ssl.keystore.location). Subject CN=node-<N> (how Shoal binds a
#                            node certificate to node id N), SANs DNS:node<N>, DNS:localhost,
#                            IP:127.0.0.1, extended key usage serverAuth + clientAuth. Readable
#                            by the container's user (uid 10001) only.
#   node<N>.crt              the same certificate alone
#   admin.crt, admin.key     a client certificate CN=admin (clientAuth), for clients on the host
#   admin.properties         librdkafka client settings for the admin user over SASL_SSL
#                            (SCRAM-SHA-512, password $SHOAL_ADMIN_PASSWORD), mode 0600: what
#                            `shoal-chaos --command-config` and `shoalctl --command-config` read
#
# Idempotent: an existing CA is reused, and so is every certificate it still verifies that is
# valid for at least another 30 days; only what is missing is made. --regenerate starts over
# with a new CA (the running cluster must then be restarted to load the new files).
#
# Usage: deploy/secure/gen-certs.sh [--regenerate] [DIR]
#   DIR       default $SHOAL_CERTS_DIR, else deploy/secure/certs (git-ignored: never commit keys)
#   NODES     node ids (default "1 2 3"); DAYS leaf validity (default 825); CA_DAYS (default 3650)
#   SHOAL_ADMIN_PASSWORD  the admin's password (default admin-secret, for development only)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
regenerate=0
dir=""
for arg in "$@"; do
  case "$arg" in
    --regenerate) regenerate=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gen-certs: unknown option $arg (usage: $0 [--regenerate] [DIR])" >&2; exit 2 ;;
    *) [ -z "$dir" ] || { echo "gen-certs: one DIR only" >&2; exit 2; }; dir=$arg ;;
  esac
done
dir=${dir:-${SHOAL_CERTS_DIR:-$here/certs}}
nodes=${NODES:-1 2 3}
days=${DAYS:-825}
ca_days=${CA_DAYS:-3650}
# The image's non-root user (deploy/image/build.sh, deploy/image/Dockerfile).
container_uid=10001
password=${SHOAL_ADMIN_PASSWORD:-admin-secret}

command -v openssl >/dev/null || { echo "gen-certs: openssl not found" >&2; exit 1; }
case "$password" in
  *,*|*]*|*[*) echo "gen-certs: SHOAL_ADMIN_PASSWORD must not contain ',', '[' or ']' (--add-scram syntax)" >&2; exit 2 ;;
esac

umask 077
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# Containers mount single files, but a host user reading ca.pem needs to enter the directory.
chmod 0755 "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

openssl_q() {
  local out
  if ! out=$(openssl "$@" 2>&1); then
    echo "gen-certs: openssl $1 failed: $out" >&2
    exit 1
  fi
}

new_key() { openssl_q genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

# Whether $1 is signed by the current CA and valid for 30 more days.
still_good() {
  [ -s "$1" ] && openssl verify -CAfile "$dir/ca.pem" "$1" >/dev/null 2>&1 &&
    openssl x509 -in "$1" -noout -checkend $((30 * 86400)) >/dev/null 2>&1
}

if [ "$regenerate" = 1 ]; then
  rm -f "$dir"/ca.pem "$dir"/ca.key "$dir"/ca.srl "$dir"/node*.pem "$dir"/node*.crt \
    "$dir"/admin.crt "$dir"/admin.key
fi

if [ -s "$dir/ca.pem" ] && [ -s "$dir/ca.key" ]; then
  echo "gen-certs: reusing the CA in $dir/ca.pem"
else
  new_key "$tmp/ca.key"
  openssl_q req -x509 -new -key "$tmp/ca.key" -days "$ca_days" -subj "/CN=Shoal dev CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$tmp/ca.pem"
  mv "$tmp/ca.key" "$dir/ca.key"
  mv "$tmp/ca.pem" "$dir/ca.pem"
  echo "gen-certs: new CA $dir/ca.pem"
fi
chmod 0600 "$dir/ca.key"
chmod 0644 "$dir/ca.pem"

# leaf NAME CN EKU [SAN]: $tmp/NAME.key and $dir/NAME.crt, signed by the CA.
leaf() {
  local name=$1 cn=$2 eku=$3 san=${4:-}
  new_key "$tmp/$name.key"
  openssl_q req -new -key "$tmp/$name.key" -subj "/CN=$cn" -out "$tmp/$name.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$eku"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid,issuer"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } >"$tmp/$name.ext"
  openssl_q x509 -req -in "$tmp/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAserial "$dir/ca.srl" -CAcreateserial -days "$days" -extfile "$tmp/$name.ext" \
    -out "$tmp/$name.crt"
  chmod 0644 "$tmp/$name.crt"
}

warned=0
for n in $nodes; do
  case "$n" in *[!0-9]*|"") echo "gen-certs: node id '$n' is not a number" >&2; exit 2 ;; esac
  if still_good "$dir/node$n.pem"; then
    echo "gen-certs: reusing node$n.pem"
  else
    leaf "node$n" "node-$n" "serverAuth,clientAuth" "DNS:node$n,DNS:localhost,IP:127.0.0.1"
    # KIP-651's PEM keystore: the key, then the chain, leaf first.
    cat "$tmp/node$n.key" "$tmp/node$n.crt" "$dir/ca.pem" >"$tmp/node$n.pem"
    mv "$tmp/node$n.crt" "$dir/node$n.crt"
    mv "$tmp/node$n.pem" "$dir/node$n.pem"
    echo "gen-certs: node$n.pem (CN=node-$n)"
  fi
  # Bind-mounted files keep their host owner and mode: the container's user must own the key.
  if [ "$(id -u)" = 0 ]; then
    chown "$container_uid:$container_uid" "$dir/node$n.pem"
    chmod 0400 "$dir/node$n.pem"
  else
    chmod 0644 "$dir/node$n.pem"
    if [ "$warned" = 0 ]; then
      echo "gen-certs: not root, so the node keystores cannot be given to uid $container_uid:" \
        "they are world-readable (0644); fine for development, not elsewhere" >&2
      warned=1
    fi
  fi
done

if still_good "$dir/admin.crt" && [ -s "$dir/admin.key" ]; then
  echo "gen-certs: reusing admin.crt"
else
  leaf admin admin clientAuth
  mv "$tmp/admin.key" "$dir/admin.key"
  mv "$tmp/admin.crt" "$dir/admin.crt"
  echo "gen-certs: admin.crt (CN=admin)"
fi
chmod 0600 "$dir/admin.key"

cat >"$tmp/admin.properties" <<PROPERTIES
# The admin super-user over SASL_SSL (written by deploy/secure/gen-certs.sh; holds a password).
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.username=admin
sasl.password=$password
ssl.ca.location=$dir/ca.pem
PROPERTIES
chmod 0600 "$tmp/admin.properties"
mv "$tmp/admin.properties" "$dir/admin.properties"
echo "gen-certs: certificates and admin.properties in $dir"
