#!/usr/bin/env bash
# Shoal benchmark (`make bench`): one `shoal` node, then a three-node cluster, and the
# librdkafka load generator `shoal-bench` on this machine.
#
# Measures: start-up time (exec -> /readyz 200), idle RSS, then for 100-byte records on topics
# with 1 and 8 partitions and acks=1 / acks=all (linger 5 ms): produce throughput and latency,
# then consume throughput of the same topic (assigned, then again as a consumer group member:
# join time and final commit time are logged and kept in results.jsonl); RSS after the runs. Optionally profiles the broker
# with `perf` during an extra produce + consume run. Transactions (issue #17), on one node and on
# the three-node cluster: idempotent acks=all produce as the baseline, then `produce-txn` with
# 10, 100 and 1000 records per transaction (throughput as % of the baseline, commit latency),
# and on three nodes the 1000-record case again at half its measured rate (commit p50/p99).
#
# Knobs (environment):
#   BENCH_QUICK=1        short run (1 M records, 5 s per produce)
#   BENCH_RECORDS=N      records per produce run (default 20000000; quick 1000000)
#   BENCH_SECONDS=S      time bound of each produce run (default 20; quick 5)
#   BENCH_PARTITIONS="1 8"  BENCH_ACKS="1 all"   the case matrix
#   BENCH_COMPRESSION=C  the producer's compression.type (none, gzip, snappy, lz4, zstd;
#                        default none): the leader decompresses and checks every record
#   BENCH_RATE=R         also measure latency at a fixed R records/s (8 partitions, both acks;
#                        default 200000, 0 = skip): saturating runs mostly measure queueing
#   BENCH_TXN=0|1        the transactional cases (default 1; quick: one size, BENCH_TXN_SIZES)
#   BENCH_TXN_SIZES="10 100 1000"  records per transaction (quick default "1000"); the
#                        half-rate run on three nodes uses the largest
#   BENCH_TXN_PRODUCERS=K  producers of the transactional cases and of their idempotent
#                        baseline (default 1); they share the records and the rate
#   BENCH_TXN_LINGER_MS=L  linger.ms of the transactional producers (default: the baseline's 5;
#                        a commit sends what lingers at once, see docs/benchmarks.md)
#   BENCH_PROFILE=auto|0|1  perf profile of the broker (auto: if perf works)
#   BENCH_CLUSTER=0      skip the three-node cases; BENCH_FAILOVER=0 skip the failover run;
#                        BENCH_THROTTLE=0 skip the throttled-move run (tests/bench/throttled_move.py)
#   BENCH_QUOTA=0        skip the client-quota run (tests/bench/client_quotas.py, one node)
#   BENCH_CLUSTER_PARTITIONS=N  partitions of the RF=3 topic (default 8)
#   BENCH_NO_BUILD=1     use the existing target/release binaries
#   BENCH_KEEP=1         keep the node's data directory
#   BENCH_OUT=DIR        where logs and results go (default bench-results/<timestamp>)
#   BENCH_NODE_ARGS="…"  extra arguments for `shoal` (e.g. "--override log.segment.bytes=…")
#   BENCH_CLIENT_ARGS="…"  extra arguments for every `shoal-bench` call against the one node
#                        (create-topic, produce, consume), e.g. "-X security.protocol=SASL_SSL
#                        -X sasl.mechanism=SCRAM-SHA-512 -X sasl.username=… -X sasl.password=…
#                        -X ssl.ca.location=…"; for SASL_SSL, BENCH_NODE_ARGS maps the PLAINTEXT
#                        listener to it (docs/benchmarks.md, "SASL_SSL vs PLAINTEXT").
#                        Both are split at whitespace, unquoted; the three-node cases use neither
#   BENCH_CLUSTER_NODE_ARGS="…"  extra arguments for each of the three nodes, `{id}` replaced by
#                        the node id (e.g. per-node keystores for CONTROLLER:SSL,REPLICATION:SSL;
#                        docs/benchmarks.md, "Replication over mutual TLS")
#   BENCH_SHOAL, BENCH_BIN  other node / load generator binaries (BENCH_CREATE_TOPICS=0: the
#                        node already has the topics) - for testing this script
# Exit status: 0 if every run succeeded, 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then
  RECORDS=${BENCH_RECORDS:-1000000}
  MAX_SECONDS=${BENCH_SECONDS:-5}
else
  RECORDS=${BENCH_RECORDS:-20000000}
  MAX_SECONDS=${BENCH_SECONDS:-20}
fi
PARTITIONS_LIST=${BENCH_PARTITIONS:-"1 8"}
CLUSTER_NODE_ARGS=${BENCH_CLUSTER_NODE_ARGS:-}
ACKS_LIST=${BENCH_ACKS:-"1 all"}
RECORD_SIZE=100
LINGER_MS=5
COMPRESSION=${BENCH_COMPRESSION:-none}
PROFILE=${BENCH_PROFILE:-auto}
RATE=${BENCH_RATE:-200000}
TXN=${BENCH_TXN:-1}
if [[ $QUICK == 1 ]]; then
  TXN_SIZES=${BENCH_TXN_SIZES:-1000}
else
  TXN_SIZES=${BENCH_TXN_SIZES:-"10 100 1000"}
fi
TXN_PRODUCERS=${BENCH_TXN_PRODUCERS:-1}
TXN_LINGER_MS=${BENCH_TXN_LINGER_MS:-$LINGER_MS}
OUT=${BENCH_OUT:-bench-results/$(date +%Y%m%d-%H%M%S)}
SHOAL=${BENCH_SHOAL:-target/release/shoal}
BENCH=${BENCH_BIN:-target/release/shoal-bench}
# shellcheck disable=SC2206
CLIENT_ARGS=(${BENCH_CLIENT_ARGS:-})

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DATA=$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench-data.XXXXXX")
NODE_PID=""
CLUSTER_PIDS=()
PERF_PID=""
FAILED=0

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

cleanup() {
  local rc=$?
  if [[ -n $PERF_PID ]] && kill -0 "$PERF_PID" 2>/dev/null; then
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
  fi
  if [[ -n $NODE_PID ]] && kill -0 "$NODE_PID" 2>/dev/null; then
    stop_node || true
  fi
  if [[ ${#CLUSTER_PIDS[@]} -gt 0 ]]; then
    stop_cluster || true
  fi
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    log "data kept in $DATA"
  else
    rm -rf "$DATA"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops the node with SIGTERM (SIGKILL after 20 s); sets SHUTDOWN_MS.
stop_node() {
  local t0 pid=$NODE_PID
  t0=$(now_ms)
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "node $pid did not stop within 20 s of SIGTERM; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  SHUTDOWN_MS=$(( $(now_ms) - t0 ))
  NODE_PID=""
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
hwm_mib() { awk '/^VmHWM:/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
# utime+stime of a process in clock ticks (USER_HZ, 100/s).
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
json_field() { jq -r ".$2 // empty" <<<"$1"; }

# ---------------------------------------------------------------------------------------------
if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
  log "building release shoal and shoal-bench"
  cargo build --release -p shoal-server -p shoal-bench -p shoalctl >&2
fi
[[ -x $SHOAL ]] || die "$SHOAL not built"
[[ -x $BENCH ]] || die "$BENCH not built"
SHOALCTL=${BENCH_SHOALCTL:-target/release/shoalctl}
# Run private copies: a concurrent `cargo build` must not swap the binaries mid-run, and the
# profile needs the exact binary it sampled.
mkdir -p "$OUT/bin"
cp "$SHOAL" "$OUT/bin/shoal"
cp "$BENCH" "$OUT/bin/shoal-bench"
[[ ! -x $SHOALCTL ]] || cp "$SHOALCTL" "$OUT/bin/shoalctl"
SHOAL=$OUT/bin/shoal
BENCH=$OUT/bin/shoal-bench
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
command -v curl >/dev/null || die "curl is required"
command -v jq >/dev/null || die "jq is required"

# Distinct free ports: `fresh_ports N` sets PORTS to N of them.
fresh_ports() {
  PORTS=()
  while [[ ${#PORTS[@]} -lt $1 ]]; do
    local p
    p=$(free_port)
    [[ " ${PORTS[*]} " == *" $p "* ]] || PORTS+=("$p")
  done
}
fresh_ports 4
KAFKA_PORT=${PORTS[0]}
CONTROLLER_PORT=${PORTS[1]}
ADMIN_PORT=${PORTS[2]}
REPLICATION_PORT=${PORTS[3]}
BROKERS=127.0.0.1:$KAFKA_PORT

# shellcheck disable=SC2206
NODE_ARGS=(
  --data-dir "$DATA"
  --override "listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT"
  --override "advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT"
  --override "controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT"
  --override "admin.listener=127.0.0.1:$ADMIN_PORT"
  --override "replication.listener=127.0.0.1:$REPLICATION_PORT"
  --override "offsets.topic.replication.factor=1"
  ${BENCH_NODE_ARGS:-}
)

log "starting node: $SHOAL ${NODE_ARGS[*]}"
[[ ${#CLIENT_ARGS[@]} == 0 ]] || log "shoal-bench extra arguments: ${CLIENT_ARGS[*]}"
T0=$(now_ms)
"$SHOAL" "${NODE_ARGS[@]}" >"$OUT/shoal.log" 2>&1 &
NODE_PID=$!
READY=0
for _ in $(seq 1 3000); do
  if ! kill -0 "$NODE_PID" 2>/dev/null; then
    wait "$NODE_PID" 2>/dev/null || true
    NODE_PID=""
    tail -n 20 "$OUT/shoal.log" >&2 || true
    die "node exited during start-up (log: $OUT/shoal.log)"
  fi
  code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/readyz" || true)
  if [[ $code == 200 ]]; then
    READY=1
    break
  fi
  sleep 0.01
done
STARTUP_MS=$(( $(now_ms) - T0 ))
[[ $READY == 1 ]] || { tail -n 20 "$OUT/shoal.log" >&2 || true; die "node not ready within 30 s"; }
log "node $NODE_PID ready in ${STARTUP_MS} ms (kafka $BROKERS, admin 127.0.0.1:$ADMIN_PORT)"
sleep 1
IDLE_RSS=$(rss_mib "$NODE_PID")
log "idle RSS ${IDLE_RSS} MiB"

# ---------------------------------------------------------------------------------------------
RESULTS=()   # one tab-separated row per run
TXN_RESULTS=()   # one tab-separated row per transactional run (the transactions table)
TXN_TARGETS=()   # one line per issue #17 target checked
: >"$OUT/results.jsonl"

# run_case PARTITIONS ACKS
run_case() {
  local parts=$1 acks=$2 topic="bench-p$1-acks$2" out rc c0 c1 produced
  log "case p=$parts acks=$acks: create topic $topic"
  if [[ ${BENCH_CREATE_TOPICS:-1} == 1 ]] && ! "$BENCH" create-topic "${CLIENT_ARGS[@]}" --brokers "$BROKERS" \
      --topic "$topic" --partitions "$parts" --replication-factor 1 >>"$OUT/bench.log" 2>&1; then
    log "create-topic failed (see $OUT/bench.log)"
    RESULTS+=("produce p=$parts acks=$acks	FAILED")
    FAILED=1
    return
  fi

  log "case p=$parts acks=$acks: produce $RECORDS x ${RECORD_SIZE} B (max ${MAX_SECONDS} s)"
  c0=$(cpu_ticks "$NODE_PID")
  rc=0
  out=$("$BENCH" produce "${CLIENT_ARGS[@]}" --brokers "$BROKERS" --topic "$topic" --records "$RECORDS" \
    --record-size "$RECORD_SIZE" --acks "$acks" --linger-ms "$LINGER_MS" \
    --compression "$COMPRESSION" --max-seconds "$MAX_SECONDS" --json 2>>"$OUT/bench.log") || rc=$?
  c1=$(cpu_ticks "$NODE_PID")
  if [[ -z $out ]]; then
    log "produce failed (see $OUT/bench.log)"
    RESULTS+=("produce p=$parts acks=$acks	FAILED")
    FAILED=1
    return
  fi
  [[ $rc == 0 ]] || { log "produce reported errors: $(tail -n 1 "$OUT/bench.log")"; FAILED=1; }
  record_row "produce p=$parts acks=$acks" "$out" "$c0" "$c1"
  produced=$(json_field "$out" records)

  log "case p=$parts acks=$acks: consume $produced records"
  c0=$(cpu_ticks "$NODE_PID")
  rc=0
  out=$("$BENCH" consume "${CLIENT_ARGS[@]}" --brokers "$BROKERS" --topic "$topic" --records "$produced" \
    --max-seconds 120 --json 2>>"$OUT/bench.log") || rc=$?
  c1=$(cpu_ticks "$NODE_PID")
  if [[ -z $out || $rc != 0 ]]; then
    log "consume failed (see $OUT/bench.log)"
    RESULTS+=("consume p=$parts acks=$acks	FAILED")
    FAILED=1
    return
  fi
  if [[ $(json_field "$out" records) != "$produced" ]]; then
    log "consume read $(json_field "$out" records) of $produced records"
    FAILED=1
  fi
  record_row "consume p=$parts acks=$acks" "$out" "$c0" "$c1"

  # The same records again, as a consumer group member: join, fetch, auto-commit, final commit.
  log "case p=$parts acks=$acks: consume $produced records in a consumer group"
  c0=$(cpu_ticks "$NODE_PID")
  rc=0
  out=$("$BENCH" consume "${CLIENT_ARGS[@]}" --brokers "$BROKERS" --topic "$topic" --records "$produced" \
    --group "bench-$topic" --max-seconds 120 --json 2>>"$OUT/bench.log") || rc=$?
  c1=$(cpu_ticks "$NODE_PID")
  if [[ -z $out || $rc != 0 ]]; then
    log "group consume failed (see $OUT/bench.log)"
    RESULTS+=("consume group p=$parts acks=$acks	FAILED")
    FAILED=1
    return
  fi
  log "group joined in $(json_field "$out" group_join_ms) ms, final commit $(json_field "$out" group_commit_ms) ms"
  record_row "consume group p=$parts acks=$acks" "$out" "$c0" "$c1"
}

# record_row NAME JSON CPU_TICKS_BEFORE CPU_TICKS_AFTER
record_row() {
  local name=$1 j=$2 elapsed broker_pct client_pct
  echo "$j" | jq -c --arg case "$1" --argjson broker_cpu_s "$(( $4 - $3 ))e-2" \
    '. + {case: $case, broker_cpu_s: $broker_cpu_s}' >>"$OUT/results.jsonl"
  elapsed=$(json_field "$j" elapsed_s)
  broker_pct=$(awk -v t=$(( $4 - $3 )) -v e="$elapsed" 'BEGIN { if (e > 0) printf "%.0f", t / e; else print "-" }')
  client_pct=$(awk -v c="$(json_field "$j" client_cpu_s)" -v e="$elapsed" 'BEGIN { if (e > 0 && c != "") printf "%.0f", 100 * c / e; else print "-" }')
  RESULTS+=("$(printf '%s\t%s\t%.0f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s' "$name" \
    "$(json_field "$j" records)" "$(json_field "$j" records_per_s)" "$(json_field "$j" mb_per_s)" \
    "$(json_field "$j" p50_ms)" "$(json_field "$j" p99_ms)" "$(json_field "$j" p999_ms)" \
    "$broker_pct" "$client_pct" "$(json_field "$j" errors)")")
}

# run_rate_case PARTITIONS ACKS: produce at a fixed rate for MAX_SECONDS, latency only.
run_rate_case() {
  local parts=$1 acks=$2 topic="bench-rate-p$1-acks$2" out rc c0 c1
  local n=$(( RATE * MAX_SECONDS ))
  log "case p=$parts acks=$acks rate=$RATE/s: produce $n records"
  if [[ ${BENCH_CREATE_TOPICS:-1} == 1 ]] && ! "$BENCH" create-topic "${CLIENT_ARGS[@]}" --brokers "$BROKERS" \
      --topic "$topic" --partitions "$parts" --replication-factor 1 >>"$OUT/bench.log" 2>&1; then
    RESULTS+=("produce p=$parts acks=$acks @$RATE/s	FAILED")
    FAILED=1
    return
  fi
  c0=$(cpu_ticks "$NODE_PID")
  rc=0
  out=$("$BENCH" produce "${CLIENT_ARGS[@]}" --brokers "$BROKERS" --topic "$topic" --records "$n" --rate "$RATE" \
    --record-size "$RECORD_SIZE" --acks "$acks" --linger-ms "$LINGER_MS" \
    --compression "$COMPRESSION" --max-seconds $(( MAX_SECONDS + 10 )) --json 2>>"$OUT/bench.log") || rc=$?
  c1=$(cpu_ticks "$NODE_PID")
  if [[ -z $out ]]; then
    RESULTS+=("produce p=$parts acks=$acks @$RATE/s	FAILED")
    FAILED=1
    return
  fi
  [[ $rc == 0 ]] || FAILED=1
  record_row "produce p=$parts acks=$acks @$RATE/s" "$out" "$c0" "$c1"
}

# ---------------------------------------------------------------------------------------------
# Transactions (issue #17). run_txn_cases WHERE BROKERS RF PARTITIONS CPU_TICKS_FN [ARGS…]:
# on a fresh topic each, idempotent acks=all produce (the baseline), then produce-txn with each
# of TXN_SIZES records per transaction; with RF=3 also the largest size at half its measured
# records/s, for the commit latency at half of max load. ARGS go to every shoal-bench call.
txn_topic() {   # txn_topic BROKERS RF PARTITIONS TOPIC [ARGS…]
  local brokers=$1 rf=$2 parts=$3 topic=$4
  shift 4
  local -a cfg=()
  [[ $rf -lt 3 ]] || cfg=(--topic-config min.insync.replicas=2)
  [[ ${BENCH_CREATE_TOPICS:-1} == 1 ]] || return 0
  "$BENCH" create-topic "$@" --brokers "$brokers" --topic "$topic" --partitions "$parts" \
    --replication-factor "$rf" "${cfg[@]}" >>"$OUT/bench.log" 2>&1
}
node_cpu_ticks() { cpu_ticks "$NODE_PID"; }
# txn_row NAME JSON BASELINE_RECORDS_PER_S: a row of the transactions table.
txn_row() {
  local j=$2 pct
  pct=$(awk -v t="$(json_field "$j" records_per_s)" -v b="$3" \
    'BEGIN { if (b > 0 && t != "") printf "%.1f", 100 * t / b; else print "-" }')
  TXN_RESULTS+=("$(printf '%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$1" \
    "$(json_field "$j" records_per_txn)" "$(json_field "$j" records_per_s)" "$pct" \
    "$(json_field "$j" transactions_per_s)" "$(json_field "$j" commit_p50_ms)" \
    "$(json_field "$j" commit_p99_ms)" "$(json_field "$j" commit_p999_ms)" \
    "$(json_field "$j" flush_p99_ms)" "$(json_field "$j" end_txn_p99_ms)" \
    "$(json_field "$j" aborted_transactions)")")
}
run_txn_cases() {
  local where=$1 brokers=$2 rf=$3 parts=$4 cpufn=$5
  shift 5
  local -a args=("$@")
  local topic out rc c0 c1 name size base_rps="" last_rps="" last_size="" rate txn_tag=""
  [[ $TXN_LINGER_MS == "$LINGER_MS" ]] || txn_tag=" linger=$TXN_LINGER_MS"
  [[ $TXN_PRODUCERS == 1 ]] || txn_tag+=" producers=$TXN_PRODUCERS"
  topic=bench-txn-idempotent
  # The baseline uses as many producers (clients and threads) as the transactional cases, so
  # the comparison isolates what transactions cost.
  name="produce idempotent $where p=$parts acks=all"
  [[ $TXN_PRODUCERS == 1 ]] || name+=" producers=$TXN_PRODUCERS"
  log "case $name"
  if ! txn_topic "$brokers" "$rf" "$parts" "$topic" "${args[@]}"; then
    log "create-topic $topic failed (see $OUT/bench.log)"
    RESULTS+=("$name	FAILED"); FAILED=1
  else
    c0=$($cpufn); rc=0
    out=$("$BENCH" produce "${args[@]}" --brokers "$brokers" --topic "$topic" --records "$RECORDS" \
      --record-size "$RECORD_SIZE" --acks all -X enable.idempotence=true --linger-ms "$LINGER_MS" \
      --producers "$TXN_PRODUCERS" --compression "$COMPRESSION" --max-seconds "$MAX_SECONDS" \
      --json 2>>"$OUT/bench.log") || rc=$?
    c1=$($cpufn)
    if [[ -n $out ]]; then
      [[ $rc == 0 ]] || { log "$name reported errors: $(tail -n 1 "$OUT/bench.log")"; FAILED=1; }
      record_row "$name" "$out" "$c0" "$c1"
      base_rps=$(json_field "$out" records_per_s)
      TXN_RESULTS+=("$(printf '%s\t-\t%.0f\t100\t\t\t\t\t\t\t' "$name" "$base_rps")")
    else
      log "$name failed (see $OUT/bench.log)"
      RESULTS+=("$name	FAILED"); FAILED=1
    fi
  fi

  for size in $TXN_SIZES; do
    topic=bench-txn-$size
    name="produce txn=$size $where p=$parts$txn_tag"
    log "case $name: up to $RECORDS records (max ${MAX_SECONDS} s)"
    if ! txn_topic "$brokers" "$rf" "$parts" "$topic" "${args[@]}"; then
      log "create-topic $topic failed (see $OUT/bench.log)"
      RESULTS+=("$name	FAILED"); FAILED=1
      continue
    fi
    c0=$($cpufn); rc=0
    out=$("$BENCH" produce-txn "${args[@]}" --brokers "$brokers" --topic "$topic" \
      --records "$RECORDS" --records-per-txn "$size" --producers "$TXN_PRODUCERS" --record-size "$RECORD_SIZE" \
      --linger-ms "$TXN_LINGER_MS" --compression "$COMPRESSION" --max-seconds "$MAX_SECONDS" \
      --json 2>>"$OUT/bench.log") || rc=$?
    c1=$($cpufn)
    if [[ -z $out ]]; then
      log "$name failed: $(tail -n 1 "$OUT/bench.log")"
      RESULTS+=("$name	FAILED"); FAILED=1
      continue
    fi
    [[ $rc == 0 ]] || { log "$name reported errors: $(tail -n 1 "$OUT/bench.log")"; FAILED=1; }
    record_row "$name" "$out" "$c0" "$c1"
    txn_row "$name" "$out" "$base_rps"
    log "$name: $(json_field "$out" transactions_per_s) transactions/s, commit p50 $(json_field "$out" commit_p50_ms) ms p99 $(json_field "$out" commit_p99_ms) ms, $(json_field "$out" aborted_transactions) aborted"
    last_rps=$(json_field "$out" records_per_s); last_size=$size
  done
  if [[ -n $last_rps && -n $base_rps ]]; then
    TXN_TARGETS+=("$where: $last_size records per transaction at $(awk -v t="$last_rps" -v b="$base_rps" \
      'BEGIN { printf "%.1f", 100 * t / b }') % of idempotent throughput (target for 1000: >= 80 %)")
  fi

  # Commit latency at half of the measured maximum (three nodes only: the issue's target).
  if [[ $rf -ge 3 && -n $last_rps ]]; then
    rate=$(awk -v r="$last_rps" 'BEGIN { printf "%d", r / 2 }')
    if [[ $rate -lt 1 ]]; then
      log "no half-rate run: the txn=$last_size run measured $last_rps records/s"
      return
    fi
    topic=bench-txn-rate
    name="produce txn=$last_size $where p=$parts$txn_tag @$rate/s"
    log "case $name"
    if ! txn_topic "$brokers" "$rf" "$parts" "$topic" "${args[@]}"; then
      RESULTS+=("$name	FAILED"); FAILED=1
      return
    fi
    c0=$($cpufn); rc=0
    out=$("$BENCH" produce-txn "${args[@]}" --brokers "$brokers" --topic "$topic" \
      --records $(( rate * MAX_SECONDS )) --rate "$rate" --records-per-txn "$last_size" --producers "$TXN_PRODUCERS" \
      --record-size "$RECORD_SIZE" --linger-ms "$TXN_LINGER_MS" --compression "$COMPRESSION" \
      --max-seconds $(( MAX_SECONDS + 10 )) --json 2>>"$OUT/bench.log") || rc=$?
    c1=$($cpufn)
    if [[ -z $out ]]; then
      log "$name failed: $(tail -n 1 "$OUT/bench.log")"
      RESULTS+=("$name	FAILED"); FAILED=1
      return
    fi
    [[ $rc == 0 ]] || { log "$name reported errors: $(tail -n 1 "$OUT/bench.log")"; FAILED=1; }
    record_row "$name" "$out" "$c0" "$c1"
    txn_row "$name" "$out" "$base_rps"
    TXN_TARGETS+=("$where: commit p50 $(json_field "$out" commit_p50_ms) ms, p99 $(json_field "$out" commit_p99_ms) ms at $rate records/s, half of the txn=$last_size maximum (target: p99 <= 20 ms)")
  fi
}

for parts in $PARTITIONS_LIST; do
  for acks in $ACKS_LIST; do
    run_case "$parts" "$acks"
  done
done
if [[ $RATE != 0 ]]; then
  rparts=$(for p in $PARTITIONS_LIST; do echo "$p"; done | sort -n | tail -n 1)
  for acks in $ACKS_LIST; do
    run_rate_case "$rparts" "$acks"
  done
fi
AFTER_RSS=$(rss_mib "$NODE_PID")
PEAK_RSS=$(hwm_mib "$NODE_PID")

# ---------------------------------------------------------------------------------------------
# Optional profile of the broker during one more produce + consume (8 partitions, acks=1).
PERF_EVENT=""
if [[ $PROFILE != 0 ]] && command -v perf >/dev/null; then
  if perf stat -e instructions true 2>&1 | grep -q 'instructions' &&
     ! perf stat -e instructions true 2>&1 | grep -qE 'not supported|not counted'; then
    PERF_EVENT=cycles
  elif perf stat -e cpu-clock true >/dev/null 2>&1; then
    PERF_EVENT=cpu-clock   # no hardware counters (VM): software timer sampling
  fi
fi
if [[ -n $PERF_EVENT ]]; then
  ptopic=bench-profile
  pparts=$(for p in $PARTITIONS_LIST; do echo "$p"; done | sort -n | tail -n 1)
  log "profiling the broker with perf ($PERF_EVENT) during produce + consume on $ptopic"
  [[ ${BENCH_CREATE_TOPICS:-1} == 1 ]] &&
    "$BENCH" create-topic "${CLIENT_ARGS[@]}" --brokers "$BROKERS" --topic "$ptopic" --partitions "$pparts" \
      >>"$OUT/bench.log" 2>&1 || true
  perf record -e "$PERF_EVENT" -F 999 -p "$NODE_PID" -o "$OUT/perf.data" >>"$OUT/perf.log" 2>&1 &
  PERF_PID=$!
  sleep 0.5
  "$BENCH" produce "${CLIENT_ARGS[@]}" --brokers "$BROKERS" --topic "$ptopic" --records "$RECORDS" \
    --record-size "$RECORD_SIZE" --acks 1 --linger-ms "$LINGER_MS" --max-seconds "$MAX_SECONDS" \
    >>"$OUT/profile-run.txt" 2>&1 || true
  "$BENCH" consume "${CLIENT_ARGS[@]}" --brokers "$BROKERS" --topic "$ptopic" --records "$RECORDS" --max-seconds 60 \
    >>"$OUT/profile-run.txt" 2>&1 || true
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || true
  PERF_PID=""
  perf report -i "$OUT/perf.data" --stdio --no-children --sort comm,dso,sym --percent-limit 0.5 \
    -g none >"$OUT/perf-report.txt" 2>/dev/null || true
  perf report -i "$OUT/perf.data" --stdio --no-children --sort comm --percent-limit 0.5 \
    -g none >"$OUT/perf-threads.txt" 2>/dev/null || true
elif [[ $PROFILE == 1 ]]; then
  log "perf does not work here; profile skipped"
fi

# After the RSS readings and the profile, so that those stay comparable with runs before the
# transactional cases existed. (The shutdown below now also closes __transaction_state.)
if [[ $TXN != 0 ]]; then
  tparts=$(for p in $PARTITIONS_LIST; do echo "$p"; done | sort -n | tail -n 1)
  run_txn_cases "1 node" "$BROKERS" 1 "$tparts" node_cpu_ticks "${CLIENT_ARGS[@]}"
fi

stop_node
log "node stopped in ${SHUTDOWN_MS} ms"

# ---------------------------------------------------------------------------------------------
# Three combined nodes (controller + broker), RF=3, min.insync.replicas=2.
CLUSTER_STARTUP_MS=""
FAILOVER_SUMMARY=""
cluster_cpu_ticks() {
  local total=0 pid
  for pid in "${CLUSTER_PIDS[@]}"; do total=$(( total + $(cpu_ticks "$pid") )); done
  echo "$total"
}
stop_cluster() {
  local pid
  for pid in "${CLUSTER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${CLUSTER_PIDS[@]}"; do
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  CLUSTER_PIDS=()
}
run_cluster_cases() {
  local n voters="" cluster_id t0 ready code parts=${BENCH_CLUSTER_PARTITIONS:-8}
  local -a kafka ctrl admin repl
  fresh_ports 12
  for n in 0 1 2; do
    kafka[n]=${PORTS[n]}; ctrl[n]=${PORTS[n+3]}; admin[n]=${PORTS[n+6]}; repl[n]=${PORTS[n+9]}
    voters+="${voters:+,}$((n + 1))@127.0.0.1:${ctrl[n]}"
  done
  cluster_id=$(python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
  t0=$(now_ms)
  for n in 0 1 2; do
    mkdir -p "$DATA/cluster/node$((n + 1))"
    "$SHOAL" --node-id $((n + 1)) --data-dir "$DATA/cluster/node$((n + 1))" \
      --override "listeners=PLAINTEXT://127.0.0.1:${kafka[n]},CONTROLLER://127.0.0.1:${ctrl[n]}" \
      --override "advertised.listeners=PLAINTEXT://127.0.0.1:${kafka[n]}" \
      --override "controller.quorum.voters=$voters" --override "cluster.id=$cluster_id" \
      --override "admin.listener=127.0.0.1:${admin[n]}" \
      --override "replication.listener=127.0.0.1:${repl[n]}" \
      ${CLUSTER_NODE_ARGS//\{id\}/$((n + 1))} \
      >"$OUT/cluster-node$((n + 1)).log" 2>&1 &
    CLUSTER_PIDS+=($!)
  done
  for n in 0 1 2; do
    ready=0
    for _ in $(seq 1 3000); do
      code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:${admin[n]}/readyz" || true)
      [[ $code == 200 ]] && { ready=1; break; }
      sleep 0.01
    done
    [[ $ready == 1 ]] || { log "cluster node $((n + 1)) not ready"; FAILED=1; stop_cluster; return; }
  done
  CLUSTER_STARTUP_MS=$(( $(now_ms) - t0 ))
  log "three-node cluster ready in ${CLUSTER_STARTUP_MS} ms"
  BROKERS=127.0.0.1:${kafka[0]},127.0.0.1:${kafka[1]},127.0.0.1:${kafka[2]}
  local topic=bench-rf3 out rc c0 c1 produced
  if ! "$BENCH" create-topic --brokers "$BROKERS" --topic "$topic" --partitions "$parts" \
      --replication-factor 3 --topic-config min.insync.replicas=2 >>"$OUT/bench.log" 2>&1; then
    log "create-topic failed on the cluster"; FAILED=1; stop_cluster; return
  fi
  sleep 1
  local name="produce 3 nodes RF=3 p=$parts acks=all"
  log "case $name"
  c0=$(cluster_cpu_ticks); rc=0
  out=$("$BENCH" produce --brokers "$BROKERS" --topic "$topic" --records "$RECORDS" \
    --record-size "$RECORD_SIZE" --acks all --linger-ms "$LINGER_MS" \
    --max-seconds "$MAX_SECONDS" --json 2>>"$OUT/bench.log") || rc=$?
  c1=$(cluster_cpu_ticks)
  if [[ -n $out ]]; then
    [[ $rc == 0 ]] || FAILED=1
    record_row "$name" "$out" "$c0" "$c1"
    produced=$(json_field "$out" records)
    c0=$(cluster_cpu_ticks); rc=0
    out=$("$BENCH" consume --brokers "$BROKERS" --topic "$topic" --records "$produced" \
      --max-seconds 120 --json 2>>"$OUT/bench.log") || rc=$?
    c1=$(cluster_cpu_ticks)
    if [[ -n $out && $rc == 0 && $(json_field "$out" records) == "$produced" ]]; then
      record_row "consume 3 nodes RF=3 p=$parts" "$out" "$c0" "$c1"
    else
      RESULTS+=("consume 3 nodes RF=3	FAILED"); FAILED=1
    fi
  else
    RESULTS+=("$name	FAILED"); FAILED=1
  fi
  if [[ $RATE != 0 ]]; then
    local rate=$(( RATE / 2 ))
    "$BENCH" create-topic --brokers "$BROKERS" --topic bench-rf3-rate --partitions "$parts" \
      --replication-factor 3 --topic-config min.insync.replicas=2 >>"$OUT/bench.log" 2>&1 || true
    sleep 1
    name="produce 3 nodes RF=3 p=$parts acks=all @$rate/s"
    log "case $name"
    c0=$(cluster_cpu_ticks); rc=0
    out=$("$BENCH" produce --brokers "$BROKERS" --topic bench-rf3-rate --records $(( rate * MAX_SECONDS )) \
      --rate "$rate" --record-size "$RECORD_SIZE" --acks all --linger-ms "$LINGER_MS" \
      --max-seconds $(( MAX_SECONDS + 10 )) --json 2>>"$OUT/bench.log") || rc=$?
    c1=$(cluster_cpu_ticks)
    if [[ -n $out ]]; then
      [[ $rc == 0 ]] || FAILED=1
      record_row "$name" "$out" "$c0" "$c1"
    else
      RESULTS+=("$name	FAILED"); FAILED=1
    fi
  fi
  if [[ $TXN != 0 ]]; then
    run_txn_cases "3 nodes RF=3" "$BROKERS" 3 "$parts" cluster_cpu_ticks
  fi
  stop_cluster
}
if [[ ${BENCH_CLUSTER:-1} != 0 ]]; then
  run_cluster_cases
fi

# Failover: the fault-loop test (60 s of idempotent acks=all writes, SIGKILL / SIGSTOP of real
# nodes every ~10 s) prints how long after each fault every partition took writes again.
if [[ ${BENCH_FAILOVER:-1} != 0 && -x .venv/bin/pytest ]]; then
  log "failover: the fault-loop test (about 80 s)"
  if SHOAL_BIN=$SHOAL .venv/bin/pytest tests/python/test_replication.py -k fault_loop -s -q \
      -p no:cacheprovider >"$OUT/failover.log" 2>&1; then
    FAILOVER_SUMMARY=$(grep -oE '(kill|pause) node [0-9]+ at \+[0-9.]+s: all partitions writable again after [0-9.]+s' "$OUT/failover.log" |
      awk '{kind=$1; t=$NF; sub(/s$/, "", t); all[NR]=t; n++; if (kind=="kill") {k[++nk]=t} else {p[++np]=t}}
        function med(a, m,   i, j, x) { for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
          return m ? (m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2) : "-" }
        function mx(a, m,   i, x) { x = 0; for (i = 1; i <= m; i++) if (a[i] + 0 > x) x = a[i] + 0; return m ? x : "-" }
        END { printf "failover (time until every partition takes acks=all writes again): SIGKILL x%d median %s s, max %s s; SIGSTOP past the session x%d median %s s, max %s s", nk, med(k, nk), mx(k, nk), np, med(p, np), mx(p, np) }')
    FAILOVER_SUMMARY+="; $(grep -oE 'acked=[0-9]+ observed=[0-9]+ lost=[0-9]+ duplicated=[0-9]+' "$OUT/failover.log" | head -n 1)"
  else
    FAILOVER_SUMMARY="failover run FAILED (see $OUT/failover.log)"
    FAILED=1
  fi
  log "$FAILOVER_SUMMARY"
fi

# A partition move under an acks=all load, unthrottled and with `reassign --throttle` (issue
# #18): producer latency in three windows (tests/bench/throttled_move.py).
THROTTLE_SUMMARY=""
if [[ ${BENCH_THROTTLE:-1} != 0 && ${BENCH_CLUSTER:-1} != 0 && -x .venv/bin/python ]]; then
  log "throttled move: three 12 s load windows around two 300 MB moves (about 2 min)"
  if SHOAL_BIN=$SHOAL SHOAL_BENCH_BIN=$BENCH SHOALCTL_BIN=$OUT/bin/shoalctl \
      .venv/bin/python tests/bench/throttled_move.py \
      >"$OUT/throttled-move.log" 2>&1; then
    THROTTLE_SUMMARY=$(grep -m1 '^throttled move:' "$OUT/throttled-move.log")
  else
    THROTTLE_SUMMARY="throttled-move run FAILED (see $OUT/throttled-move.log)"
    FAILED=1
  fi
  log "$THROTTLE_SUMMARY"
fi

# A producer over its client quota next to one without (issue #19): the quota's accuracy and
# the other client's latency in three windows (tests/bench/client_quotas.py).
QUOTA_SUMMARY=""
if [[ ${BENCH_QUOTA:-1} != 0 && -x .venv/bin/python ]]; then
  log "client quota: three 30 s windows, one node (about 2 min)"
  if SHOAL_BIN=$SHOAL SHOAL_BENCH_BIN=$BENCH SHOALCTL_BIN=$OUT/bin/shoalctl \
      .venv/bin/python tests/bench/client_quotas.py \
      >"$OUT/client-quotas.log" 2>&1; then
    QUOTA_SUMMARY=$(grep -m1 '^client quota:' "$OUT/client-quotas.log")
  else
    QUOTA_SUMMARY="client-quota run FAILED (see $OUT/client-quotas.log)"
    FAILED=1
  fi
  log "$QUOTA_SUMMARY"
fi

# ---------------------------------------------------------------------------------------------
{
  echo "# Shoal benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo "records: ${RECORD_SIZE} B values, no keys, linger ${LINGER_MS} ms, up to ${RECORDS} records or ${MAX_SECONDS} s per produce run; one node: replication factor 1; 3 nodes: RF=3, min.insync.replicas=2; client and brokers on this machine"
  echo
  echo "| case | records | records/s | MB/s | p50 ms | p99 ms | p99.9 ms | broker CPU % | client CPU % | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for row in "${RESULTS[@]}"; do
    echo "| ${row//	/ | } |"
  done
  echo
  if [[ ${#TXN_RESULTS[@]} -gt 0 ]]; then
    echo "transactions ($TXN_PRODUCERS producer(s) per run, linger ${TXN_LINGER_MS} ms): records/s as in the table above (committed"
    echo "records, first send -> end of the last commit); % = of the idempotent acks=all row of the same"
    echo "cluster; commit = end of a transaction's sends -> commit_transaction returned = flush (delivery"
    echo "of its last records, sent at once, as a flush does) + EndTxn (until the coordinator answers)"
    echo
    echo "| case | records/txn | records/s | % of idempotent | txn/s | commit p50 ms | commit p99 ms | commit p99.9 ms | flush p99 ms | EndTxn p99 ms | aborted |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for row in "${TXN_RESULTS[@]}"; do
      echo "| ${row//	/ | } |"
    done
    echo
    for line in "${TXN_TARGETS[@]}"; do
      echo "issue #17: $line"
    done
    echo
  fi
  echo "start-up (exec -> /readyz 200): ${STARTUP_MS} ms"
  echo "idle RSS: ${IDLE_RSS} MiB; RSS after the runs: ${AFTER_RSS} MiB (peak ${PEAK_RSS} MiB)"
  echo "shutdown (SIGTERM -> exit): ${SHUTDOWN_MS} ms"
  [[ -z $CLUSTER_STARTUP_MS ]] || echo "three-node cluster start-up (all /readyz 200): ${CLUSTER_STARTUP_MS} ms; broker CPU % of 3-node rows = sum of the three nodes"
  [[ -z $FAILOVER_SUMMARY ]] || echo "$FAILOVER_SUMMARY"
  [[ -z $THROTTLE_SUMMARY ]] || echo "$THROTTLE_SUMMARY"
  [[ -z $QUOTA_SUMMARY ]] || echo "$QUOTA_SUMMARY"
  echo "load average before: ${LOAD_BEFORE}; after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "MB = 10^6 bytes of record values; latency = send -> delivery report (librdkafka);"
  echo "CPU % = CPU time / wall time of the run (100 = one core)."
  if [[ -s $OUT/perf-report.txt ]]; then
    echo
    echo "broker profile ($PERF_EVENT samples, produce + consume), top symbols:"
    echo '```'
    grep -E '^ +[0-9.]+%' "$OUT/perf-report.txt" | head -n 30
    echo '```'
  fi
} | tee "$OUT/summary.md"
log "results in $OUT"
exit "$FAILED"
