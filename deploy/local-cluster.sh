#!/usr/bin/env bash
# Three combined Shoal nodes (controller + broker) on 127.0.0.1, as ARCHITECTURE.md names them:
#   node 1: Kafka 19092, controller 19192, admin 19644
#   node 2: Kafka 19093, controller 19193, admin 19645
#   node 3: Kafka 19094, controller 19194, admin 19646
# Usage: local-cluster.sh start|stop|status [DIR]   (DIR defaults to ./.cluster)
# `start` returns once every node answers /readyz, or fails (printing the logs) after a bound.
set -euo pipefail

cmd=${1:-}
dir=${2:-${CLUSTER_DIR:-./.cluster}}
bin=${SHOAL_BIN:-target/release/shoal}
ready_timeout_s=${READY_TIMEOUT_S:-30}
voters="1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194"

kafka_port() { echo $((19091 + $1)); }
controller_port() { echo $((19191 + $1)); }
admin_port() { echo $((19643 + $1)); }

ready() { curl -fsS -o /dev/null "http://127.0.0.1:$(admin_port "$1")/readyz" 2>/dev/null; }

start() {
  [ -x "$bin" ] || { echo "local-cluster: $bin not found; run 'make build' first" >&2; exit 1; }
  mkdir -p "$dir"
  # Like `kafka-storage.sh format -t`: one id for the whole cluster, chosen once, so that every
  # voter formats its empty directory for the same cluster.
  [ -s "$dir/cluster.id" ] || python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))' >"$dir/cluster.id"
  cluster_id=$(cat "$dir/cluster.id")
  for n in 1 2 3; do
    if [ -f "$dir/node$n.pid" ] && kill -0 "$(cat "$dir/node$n.pid")" 2>/dev/null; then
      echo "node $n already running (pid $(cat "$dir/node$n.pid"))"
      continue
    fi
    "$bin" --node-id "$n" --data-dir "$dir/node$n" \
      --override "listeners=PLAINTEXT://127.0.0.1:$(kafka_port "$n"),CONTROLLER://127.0.0.1:$(controller_port "$n")" \
      --override "advertised.listeners=PLAINTEXT://127.0.0.1:$(kafka_port "$n")" \
      --override "admin.listener=127.0.0.1:$(admin_port "$n")" \
      --override "controller.quorum.voters=$voters" \
      --override "cluster.id=$cluster_id" \
      --override "default.replication.factor=3" \
      >>"$dir/node$n.log" 2>&1 &
    echo $! >"$dir/node$n.pid"
    echo "node $n started (pid $!, Kafka 127.0.0.1:$(kafka_port "$n"), log $dir/node$n.log)"
  done
  deadline=$((SECONDS + ready_timeout_s))
  for n in 1 2 3; do
    until ready "$n"; do
      if [ $SECONDS -ge $deadline ]; then
        echo "local-cluster: node $n not ready after ${ready_timeout_s}s; last log lines:" >&2
        tail -n 30 "$dir/node$n.log" >&2 || true
        exit 1
      fi
      sleep 0.2
    done
  done
  echo "cluster ready: bootstrap 127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
}

stop() {
  for n in 1 2 3; do
    pidfile="$dir/node$n.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && { echo "node $n did not stop in 10 s; SIGKILL"; kill -KILL "$pid"; }
      echo "node $n stopped"
    fi
    rm -f "$pidfile"
  done
}

status() {
  for n in 1 2 3; do
    if ready "$n"; then state=ready; else state=down; fi
    printf 'node %s  kafka 127.0.0.1:%s  admin 127.0.0.1:%s  %s\n' "$n" "$(kafka_port "$n")" "$(admin_port "$n")" "$state"
  done
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status [DIR]" >&2; exit 2 ;;
esac
