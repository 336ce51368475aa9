#!/usr/bin/env bash
# The container cluster: up (and wait until every node is healthy), down (keep data),
# clean (down and delete the volumes), status.
#
# Usage: deploy/compose.sh up|down|clean|status [combined|split|secure]
# Uses `docker compose` where the plugin exists, else `docker-compose`. Project names:
# $SHOAL_COMPOSE_PREFIX (default shoal) for the combined cluster, <prefix>-split and
# <prefix>-secure for the others. The secure layout mounts the files of
# deploy/secure/gen-certs.sh from $SHOAL_CERTS_DIR (default deploy/secure/certs).
set -euo pipefail

cmd=${1:-}
layout=${2:-combined}
prefix=${SHOAL_COMPOSE_PREFIX:-shoal}
ready_timeout_s=${READY_TIMEOUT_S:-90}
here=$(cd "$(dirname "$0")" && pwd)

case "$layout" in
  combined) file="$here/docker-compose.yml"; project=$prefix ;;
  split) file="$here/docker-compose.split.yml"; project="$prefix-split" ;;
  secure) file="$here/docker-compose.secure.yml"; project="$prefix-secure" ;;
  *) echo "compose: layout must be combined, split or secure, not $layout" >&2; exit 2 ;;
esac
certs=${SHOAL_CERTS_DIR:-$here/secure/certs}
certs=$(cd "$certs" 2>/dev/null && pwd || echo "$certs")

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "compose: neither 'docker compose' nor 'docker-compose' is installed" >&2
  exit 1
fi
dc() { SHOAL_COMPOSE_PREFIX=$prefix SHOAL_CERTS_DIR=$certs "${compose[@]}" -p "$project" -f "$file" "$@"; }

containers() { dc ps -q; }

wait_healthy() {
  local deadline=$((SECONDS + ready_timeout_s)) pending
  while :; do
    pending=""
    for id in $(containers); do
      state=$(docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id")
      case "$state" in *" running healthy") ;; *) pending="$pending ${state#/}," ;; esac
    done
    [ -z "$pending" ] && break
    if [ $SECONDS -ge $deadline ]; then
      echo "compose: not healthy after ${ready_timeout_s}s:${pending%,}" >&2
      dc logs --tail 20 >&2 || true
      exit 1
    fi
    sleep 1
  done
}

case "$cmd" in
  up)
    docker image inspect "${SHOAL_IMAGE:-shoal:dev}" >/dev/null 2>&1 || {
      echo "compose: image ${SHOAL_IMAGE:-shoal:dev} missing; run 'make image'" >&2; exit 1; }
    if [ "$layout" = secure ]; then
      # A missing file would be bind-mounted as an empty directory; refuse instead.
      for f in ca.pem node1.pem node2.pem node3.pem; do
        [ -f "$certs/$f" ] || {
          echo "compose: $certs/$f missing; run deploy/secure/gen-certs.sh (make compose-secure-up does)" >&2
          exit 1; }
      done
    fi
    dc up -d
    wait_healthy
    echo "compose: $layout cluster ready (project $project): bootstrap 127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
    if [ "$layout" = secure ]; then
      echo "compose: clients log in over SASL_SSL; the admin's settings: --command-config $certs/admin.properties"
    fi
    ;;
  down) dc down ;;
  clean) dc down -v ;;
  status) dc ps ;;
  *) echo "usage: $0 up|down|clean|status [combined|split|secure]" >&2; exit 2 ;;
esac
