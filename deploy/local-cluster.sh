#!/usr/bin/env bash
# A Shoal cluster of real processes on 127.0.0.1, as ARCHITECTURE.md names the ports.
#
# Combined (default): three nodes, each controller + broker:
#   node 1: Kafka 19092, controller 19192, admin 19644, replication 19292
#   node 2: Kafka 19093, controller 19193, admin 19645, replication 19293
#   node 3: Kafka 19094, controller 19194, admin 19646, replication 19294
# Split (LAYOUT=split): three controller-only nodes and three broker-only nodes; clients use the
# same Kafka ports:
#   controllers 1-3: controller 19192-19194, admin 19644-19646 (no Kafka listener)
#   brokers 4-6:     Kafka 19092-19094, admin 19647-19649, replication 19292-19294
#
# Usage: local-cluster.sh start|stop|status [DIR]   (DIR defaults to ./.cluster)
#        local-cluster.sh start-node N DIR          (restart one node of a running cluster)
# `start` returns once every node answers /readyz, or fails (printing the logs) after a bound.
# `stop` sends SIGTERM (controlled shutdown) to every node it started, brokers first.
set -euo pipefail

cmd=${1:-}
dir=${2:-${CLUSTER_DIR:-./.cluster}}
bin=${SHOAL_BIN:-target/release/shoal}
ready_timeout_s=${READY_TIMEOUT_S:-30}
layout=${LAYOUT:-combined}
voters="1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194"

controller_port() { echo $((19191 + $1)); }
admin_port() { echo $((19643 + $1)); }
# Combined node n and broker-only node n+3 share Kafka port 19091+n.
kafka_port() { if [ "$1" -le 3 ]; then echo $((19091 + $1)); else echo $((19088 + $1)); fi; }
replication_port() { echo $(($(kafka_port "$1") + 200)); }

# A live process, not a zombie: a node killed after its parent (this script) exited may stay a
# zombie where PID 1 does not reap, and `kill -0` alone would call it running.
running() {
  local pid=$1 state
  kill -0 "$pid" 2>/dev/null || return 1
  state=$(sed -e 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

ready() { curl -fsS -o /dev/null "http://127.0.0.1:$(admin_port "$1")/readyz" 2>/dev/null; }

# The node ids of the layout recorded in DIR (or requested, before the first start).
nodes() {
  local recorded=$layout
  [ -s "$dir/layout" ] && recorded=$(cat "$dir/layout")
  if [ "$recorded" = split ]; then echo 1 2 3 4 5 6; else echo 1 2 3; fi
}

role_args() {
  local n=$1 recorded
  recorded=$(cat "$dir/layout")
  if [ "$recorded" = combined ]; then
    echo --override "listeners=PLAINTEXT://127.0.0.1:$(kafka_port "$n"),CONTROLLER://127.0.0.1:$(controller_port "$n")" \
      --override "advertised.listeners=PLAINTEXT://127.0.0.1:$(kafka_port "$n")" \
      --override "replication.listener=127.0.0.1:$(replication_port "$n")"
  elif [ "$n" -le 3 ]; then
    echo --override "process.roles=controller" \
      --override "listeners=CONTROLLER://127.0.0.1:$(controller_port "$n")" \
      --override "advertised.listeners="
  else
    echo --override "process.roles=broker" \
      --override "listeners=PLAINTEXT://127.0.0.1:$(kafka_port "$n")" \
      --override "advertised.listeners=PLAINTEXT://127.0.0.1:$(kafka_port "$n")" \
      --override "replication.listener=127.0.0.1:$(replication_port "$n")"
  fi
}

# Starts node N in the background unless it runs; returns at once (no readiness wait).
start_node() {
  local n=$1 cluster_id
  cluster_id=$(cat "$dir/cluster.id")
  if [ -f "$dir/node$n.pid" ] && running "$(cat "$dir/node$n.pid")"; then
    echo "node $n already running (pid $(cat "$dir/node$n.pid"))"
    return
  fi
  # shellcheck disable=SC2046 # role_args prints separate words on purpose
  "$bin" --node-id "$n" --data-dir "$dir/node$n" \
    $(role_args "$n") \
    --override "admin.listener=127.0.0.1:$(admin_port "$n")" \
    --override "controller.quorum.voters=$voters" \
    --override "cluster.id=$cluster_id" \
    --override "default.replication.factor=3" \
    >>"$dir/node$n.log" 2>&1 &
  echo $! >"$dir/node$n.pid"
  echo "node $n started (pid $!, admin 127.0.0.1:$(admin_port "$n"), log $dir/node$n.log)"
}

start() {
  [ -x "$bin" ] || { echo "local-cluster: $bin not found; run 'make build' first" >&2; exit 1; }
  mkdir -p "$dir"
  if [ -s "$dir/layout" ] && [ "$(cat "$dir/layout")" != "$layout" ]; then
    echo "local-cluster: $dir holds a $(cat "$dir/layout") cluster; stop it and use another directory (or delete it) for $layout" >&2
    exit 1
  fi
  echo "$layout" >"$dir/layout"
  # Like `kafka-storage.sh format -t`: one id for the whole cluster, chosen once, so that every
  # node formats its empty directory for the same cluster.
  [ -s "$dir/cluster.id" ] || python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))' >"$dir/cluster.id"
  for n in $(nodes); do
    start_node "$n"
  done
  deadline=$((SECONDS + ready_timeout_s))
  for n in $(nodes); do
    until ready "$n"; do
      if [ $SECONDS -ge $deadline ]; then
        echo "local-cluster: node $n not ready after ${ready_timeout_s}s; last log lines:" >&2
        tail -n 30 "$dir/node$n.log" >&2 || true
        exit 1
      fi
      sleep 0.2
    done
  done
  echo "cluster ready ($layout): bootstrap 127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
}

stop() {
  # Brokers first, so their controlled shutdowns still find a quorum.
  for n in $(nodes | tr ' ' '\n' | sort -rn); do
    pidfile="$dir/node$n.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if running "$pid"; then
      kill -TERM "$pid"
      for _ in $(seq 1 100); do running "$pid" || break; sleep 0.1; done
      running "$pid" && { echo "node $n did not stop in 10 s; SIGKILL"; kill -KILL "$pid"; }
      echo "node $n stopped"
    fi
    rm -f "$pidfile"
  done
}

status() {
  for n in $(nodes); do
    if ! { [ -f "$dir/node$n.pid" ] && running "$(cat "$dir/node$n.pid")"; }; then
      state=stopped
    elif ready "$n"; then state=ready; else state="running, not ready"; fi
    if [ "$(cat "$dir/layout" 2>/dev/null || echo combined)" = split ] && [ "$n" -le 3 ]; then
      role="controller 127.0.0.1:$(controller_port "$n")"
    else
      role="kafka 127.0.0.1:$(kafka_port "$n")"
    fi
    printf 'node %s  %-26s  admin 127.0.0.1:%s  %s\n' "$n" "$role" "$(admin_port "$n")" "$state"
  done
}

case "$cmd" in
  start) start ;;
  # One node of an existing cluster (the chaos suite restarts killed nodes with it).
  start-node)
    [ -n "${3:-}" ] || { echo "usage: $0 start-node N DIR" >&2; exit 2; }
    dir=$3
    [ -s "$dir/cluster.id" ] || { echo "local-cluster: $dir holds no cluster" >&2; exit 1; }
    [ -x "$bin" ] || { echo "local-cluster: $bin not found" >&2; exit 1; }
    start_node "$2" ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: [LAYOUT=combined|split] $0 start|stop|status [DIR]" >&2; exit 2 ;;
esac
