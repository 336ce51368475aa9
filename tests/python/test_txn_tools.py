"""The operator's tools for transactions, against one node: `shoalctl partition describe` (the
last stable offset and its lag behind the high watermark) and `shoalctl txn find-hanging`.

The node runs with `transaction.partition.verification.enable=false`, as a broker without
KIP-890 would: that is how a truly hanging transaction is made here — a transactional batch
written over a raw socket by a producer that never added the partition to its transaction, so
its coordinator (which knows the transactional id, in state Empty) will never write a marker.
A confluent-kafka producer's open transaction, by contrast, is open on its coordinator with
that partition, and `find-hanging` must not report it even with `--max-transaction-timeout 0`.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from confluent_kafka import Producer

import kafka_wire as kw
from clients import ck_create_topic, unique_topic
from test_cli import ctl, js, ok

SHOAL_OVERRIDES = {
    "transaction.state.log.num.partitions": 5,
    "offsets.topic.num.partitions": 5,
    "transaction.partition.verification.enable": "false",
    "group.initial.rebalance.delay.ms": 0,
}


def txn_producer(bootstrap: str, transactional_id: str) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                     "linger.ms": 5})


def exit_json(r: subprocess.CompletedProcess, code: int):
    """The JSON a command printed, after checking its exit code."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


def rows_by_partition(node, *args: str) -> dict[int, dict]:
    return {row["partition"]: row for row in js(ctl(node, "partition", "describe", *args, "-o", "json"))}


def until(condition, what: str, timeout: float = 30):
    """Calls `condition()` until it returns something truthy; fails naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        got = condition()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        time.sleep(0.2)


@pytest.mark.timeout(120)
def test_partition_describe_shows_the_lso_an_open_transaction_holds(shoal):
    topic = unique_topic("pdesc")
    ck_create_topic(shoal.bootstrap, topic, partitions=2)
    p = txn_producer(shoal.bootstrap, unique_topic("pdesc-tid"))
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, value=f"open-{i}".encode(), partition=0)
    p.flush(30)

    rows = rows_by_partition(shoal, "--topic", topic)
    assert sorted(rows) == [0, 1], rows
    held = rows[0]
    assert (held["log_start_offset"], held["last_stable_offset"], held["high_watermark"],
            held["lso_lag"]) == (0, 0, 3, 3), held
    assert (held["leader"], held["replicas"], held["isr"], held["error"]) == (1, [1], [1], None), held
    assert (rows[1]["last_stable_offset"], rows[1]["high_watermark"], rows[1]["lso_lag"]) == (0, 0, 0)
    table = ok(ctl(shoal, "partition", "describe", "--topic", f"{topic}:0"))
    header, line = table.splitlines()[:2]
    assert header.split() == ["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "LOG_START", "LSO",
                              "HIGH_WATERMARK", "LSO_LAG", "ERROR"], table
    assert line.split() == [topic, "0", "1", "1", "1", "0", "0", "3", "3", "-"], table

    # Open on its coordinator with this partition: not hanging, even when every open
    # transaction is a candidate (--max-transaction-timeout 0); with the default 15 minutes
    # it is not even a candidate.
    found = exit_json(ctl(shoal, "txn", "find-hanging", "--topic", topic,
                          "--max-transaction-timeout", "0", "-o", "json"), 0)
    assert (found["partitions_searched"], found["candidates"], found["hanging"]) == (2, 1, []), found
    found = exit_json(ctl(shoal, "txn", "find-hanging", "--topic", topic, "--partition", "0", "-o", "json"), 0)
    assert (found["partitions_searched"], found["candidates"], found["hanging"]) == (1, 0, []), found
    assert "no hanging transactions" in ok(ctl(shoal, "txn", "find-hanging", "--broker-id", "1"))

    p.commit_transaction(30)
    # The commit marker (offset 3) releases the LSO: it reaches the high watermark.
    rows = until(lambda: (r := rows_by_partition(shoal, "--topic", f"{topic}:0"))[0]["lso_lag"] == 0 and r,
                 "the LSO reaching the high watermark after the commit")
    assert (rows[0]["last_stable_offset"], rows[0]["high_watermark"]) == (4, 4), rows

    # Bad input: a partition the topic lacks is its row's error (exit 1 after the rows); an
    # unknown topic fails the command; neither is a crash.
    r = ctl(shoal, "partition", "describe", "--topic", f"{topic}:0,7", "-o", "json")
    rows = {row["partition"]: row for row in exit_json(r, 1)}
    assert rows[0]["error"] is None and rows[7]["error"] == "UNKNOWN_TOPIC_OR_PARTITION", rows
    assert "1 of 2 partition(s) could not be described" in r.stderr, r.stderr
    r = ctl(shoal, "partition", "describe", "--topic", unique_topic("nope"))
    assert r.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in r.stderr, r.stderr
    assert "panicked" not in r.stderr


def init_raw(conn, transactional_id: str) -> tuple[int, int]:
    """InitProducerId over the raw socket, retried while the coordinator is being created."""
    deadline = time.monotonic() + 30
    while True:
        err, _ = kw.find_transaction_coordinator_v1(conn, transactional_id)
        if err == 0:
            err, pid, epoch = kw.init_producer_id_v1(conn, transactional_id)
            if err == 0:
                return pid, epoch
        # COORDINATOR_NOT_AVAILABLE, _LOAD_IN_PROGRESS, NOT_COORDINATOR, CONCURRENT_TRANSACTIONS
        assert err in (14, 15, 16, 51), f"error {err}"
        assert time.monotonic() < deadline, "no transaction coordinator"
        time.sleep(0.1)


@pytest.mark.timeout(120)
def test_find_hanging_reports_a_transaction_no_coordinator_will_end(shoal):
    topic = unique_topic("hanging")
    ck_create_topic(shoal.bootstrap, topic, partitions=1)
    tid = unique_topic("hanging-tid")
    host, port = shoal.bootstrap.split(":")
    with kw.Conn(host, int(port)) as conn:
        pid, epoch = init_raw(conn, tid)
        # A transactional write to a partition never added to the transaction: accepted with
        # verification off; the coordinator still has the id Empty, with no partitions.
        batch = kw.producer_batch_v2([(b"k", b"hanging")], pid, epoch, 0)
        r = kw.parse_produce_v3(conn.roundtrip(kw.PRODUCE, 3, 30,
                                               kw.produce_v3_body(topic, 0, batch, transactional_id=tid)))
        assert r[0].error_code == 0, r
    assert rows_by_partition(shoal, "--topic", topic)[0]["lso_lag"] == 1

    # Younger than the default 15 minutes: not a candidate yet.
    found = exit_json(ctl(shoal, "txn", "find-hanging", "--topic", topic, "-o", "json"), 0)
    assert (found["candidates"], found["hanging"]) == (0, []), found
    # Any age: found, with its transactional id (its coordinator knows the producer id).
    found = exit_json(ctl(shoal, "txn", "find-hanging", "--topic", topic, "--partition", "0",
                          "--max-transaction-timeout", "0", "-o", "json"), 1)
    assert found["max_transaction_timeout_ms"] == 0 and found["candidates"] == 1, found
    [hanging] = found["hanging"]
    assert {k: hanging[k] for k in ("topic", "partition", "producer_id", "producer_epoch", "start_offset",
                                    "coordinator_epoch", "transactional_id")} == {
        "topic": topic, "partition": 0, "producer_id": pid, "producer_epoch": epoch, "start_offset": 0,
        "coordinator_epoch": -1, "transactional_id": tid}, hanging
    assert hanging["duration_ms"] >= 0 and hanging["last_timestamp_ms"] > 0, hanging
    # The broker-wide search finds it too, among every partition node 1 replicates.
    r = ctl(shoal, "txn", "find-hanging", "--broker-id", "1", "--max-transaction-timeout", "0")
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = [line.split() for line in r.stdout.splitlines()]
    assert [topic, "0", str(pid), str(epoch), "-1", "0"] in [line[:6] for line in lines], r.stdout

    # Scope is required, --partition needs --topic, the timeout is whole minutes >= 0: usage errors.
    for args in ([], ["--partition", "0"], ["--topic", topic, "--max-transaction-timeout", "-1"]):
        r = ctl(shoal, "txn", "find-hanging", *args)
        assert r.returncode == 2, (args, r.stderr)
    # A partition the topic lacks, a topic that does not exist: one-line errors, exit 1.
    r = ctl(shoal, "txn", "find-hanging", "--topic", topic, "--partition", "9")
    assert r.returncode == 1 and f"{topic} has no partition 9" in r.stderr, r.stderr
    r = ctl(shoal, "txn", "find-hanging", "--topic", unique_topic("nope"))
    assert r.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in r.stderr, r.stderr

    # The way out: abort it at its start offset; then nothing hangs and the LSO moves on.
    ok(ctl(shoal, "txn", "abort", "--topic", topic, "--partition", "0", "--start-offset", "0", "--force"))
    found = exit_json(ctl(shoal, "txn", "find-hanging", "--topic", topic,
                          "--max-transaction-timeout", "0", "-o", "json"), 0)
    assert (found["candidates"], found["hanging"]) == (0, []), found
    row = until(lambda: (r := rows_by_partition(shoal, "--topic", topic)[0])["lso_lag"] == 0 and r,
                "the LSO moving past the aborted transaction")
    assert (row["last_stable_offset"], row["high_watermark"]) == (2, 2), row
