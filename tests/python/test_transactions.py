"""Transactions with real clients against one node (confluent-kafka / librdkafka, kafka-python).

What a read_committed consumer sees is checked against what each transaction wrote: exactly the
records of committed transactions, none of an aborted one (Jepsen's aborted read, G1a), and
every record of each committed transaction (no partial transaction, G1b). A zombie producer is
fenced, and a transaction left open by a SIGKILLed producer is aborted at its timeout so the
last stable offset moves on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from confluent_kafka import KafkaException, Producer

import kafka_wire as kw
from clients import ck_consume, ck_create_topic, unique_topic

TXN_TIMEOUT_MS = 4000
SHOAL_OVERRIDES = {
    "transaction.state.log.num.partitions": 5,
    "offsets.topic.num.partitions": 5,
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500,
    "group.initial.rebalance.delay.ms": 0,
}


def txn_producer(bootstrap: str, transactional_id: str, **conf) -> Producer:
    return Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": transactional_id,
        "linger.ms": 5,
        **conf,
    })


def values(bootstrap: str, topic: str, partitions: int, isolation: str, expected: int,
           idle: float = 4.0) -> list[bytes]:
    """Every value of `topic`, read as `isolation` until `expected` arrived and no more come."""
    recs = ck_consume(bootstrap, topic, list(range(partitions)), expected + 10_000,
                      conf={"isolation.level": isolation}, timeout=60, idle=idle)
    return [r.value for r in recs]


def produce_txn(p: Producer, topics: list[str], tag: str, count: int) -> list[tuple[str, bytes]]:
    written = []
    for topic in topics:
        for i in range(count):
            value = f"{tag}-{topic}-{i}".encode()
            p.produce(topic, value=value, key=str(i).encode())
            written.append((topic, value))
    return written


@pytest.mark.timeout(180)
def test_read_committed_sees_exactly_the_committed_transactions(shoal):
    topics = [unique_topic(f"txn{i}") for i in range(3)]
    for t in topics:
        ck_create_topic(shoal.bootstrap, t, partitions=2)
    p = txn_producer(shoal.bootstrap, unique_topic("tid"))
    p.init_transactions(30)
    committed: list[tuple[str, bytes]] = []
    aborted: list[tuple[str, bytes]] = []
    for round_, commit in enumerate([True, False, True, False, True]):
        p.begin_transaction()
        written = produce_txn(p, topics, f"r{round_}", 7)
        if commit:
            p.commit_transaction(30)
            committed += written
        else:
            p.flush(30)  # the aborted records are in the log, not just in the client
            p.abort_transaction(30)
            aborted += written
    for topic in topics:
        want_committed = sorted(v for t, v in committed if t == topic)
        want_all = sorted(v for t, v in committed + aborted if t == topic)
        got = values(shoal.bootstrap, topic, 2, "read_committed", len(want_committed))
        assert sorted(got) == want_committed, f"{topic}: read_committed saw the wrong records"
        assert len(got) == len(set(got)), f"{topic}: duplicates"
        got_all = values(shoal.bootstrap, topic, 2, "read_uncommitted", len(want_all))
        assert sorted(got_all) == want_all, f"{topic}: read_uncommitted should see both"


@pytest.mark.timeout(120)
def test_a_zombie_producer_is_fenced(shoal):
    topic = unique_topic("zombie")
    ck_create_topic(shoal.bootstrap, topic, partitions=1)
    transactional_id = unique_topic("ztid")
    zombie = txn_producer(shoal.bootstrap, transactional_id)
    zombie.init_transactions(30)
    zombie.begin_transaction()
    produce_txn(zombie, [topic], "zombie", 5)
    zombie.flush(30)
    successor = txn_producer(shoal.bootstrap, transactional_id)
    successor.init_transactions(30)  # bumps the epoch, aborts the zombie's open transaction
    with pytest.raises(KafkaException) as fenced:
        zombie.commit_transaction(30)
    assert fenced.value.args[0].fatal() or "fenced" in str(fenced.value).lower(), fenced.value
    successor.begin_transaction()
    written = produce_txn(successor, [topic], "successor", 5)
    successor.commit_transaction(30)
    got = values(shoal.bootstrap, topic, 1, "read_committed", len(written))
    assert sorted(got) == sorted(v for _, v in written)


HANGING_PRODUCER = textwrap.dedent("""
    import sys
    from confluent_kafka import Producer
    bootstrap, topic, tid, timeout_ms = sys.argv[1:5]
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid,
                  "transaction.timeout.ms": int(timeout_ms)})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(5):
        p.produce(topic, value=f"hanging-{i}".encode())
    p.flush(30)
    print("ready", flush=True)
    sys.stdin.read()
""")


@pytest.mark.timeout(120)
def test_a_killed_producers_transaction_is_aborted_at_its_timeout(shoal):
    topic = unique_topic("hang")
    ck_create_topic(shoal.bootstrap, topic, partitions=1)
    child = subprocess.Popen(
        [sys.executable, "-c", HANGING_PRODUCER, shoal.bootstrap, topic, unique_topic("htid"),
         str(TXN_TIMEOUT_MS)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        killed_at = time.monotonic()
        # Another producer commits after the hanging transaction's records: a read_committed
        # consumer sees them only once the coordinator has aborted the hanging one.
        p = txn_producer(shoal.bootstrap, unique_topic("after"))
        p.init_transactions(30)
        p.begin_transaction()
        written = produce_txn(p, [topic], "after", 5)
        p.commit_transaction(30)
        # Records of the hanging transaction precede these: if they were not aborted they
        # would come first (or hold the LSO, and nothing would come).
        recs = ck_consume(shoal.bootstrap, topic, [0], len(written),
                          conf={"isolation.level": "read_committed"}, timeout=60)
        got = [r.value for r in recs]
        waited = time.monotonic() - killed_at
        assert sorted(got) == sorted(v for _, v in written), got
        assert waited < TXN_TIMEOUT_MS / 1000 + 20, f"the LSO moved only after {waited:.1f}s"
    finally:
        if child.poll() is None:
            child.kill()


@pytest.mark.timeout(120)
def test_kafka_python_commits_and_aborts(shoal):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTopicPartition

    topic = unique_topic("kptxn")
    ck_create_topic(shoal.bootstrap, topic, partitions=1)
    p = KafkaProducer(bootstrap_servers=shoal.bootstrap, transactional_id=unique_topic("kptid"))
    p.init_transactions()
    p.begin_transaction()
    for i in range(5):
        p.send(topic, value=f"kp-commit-{i}".encode())
    p.commit_transaction()
    p.begin_transaction()
    for i in range(5):
        p.send(topic, value=f"kp-abort-{i}".encode())
    p.flush()
    p.abort_transaction()
    p.close()
    c = KafkaConsumer(bootstrap_servers=shoal.bootstrap, isolation_level="read_committed",
                      enable_auto_commit=False, consumer_timeout_ms=5000)
    c.assign([KTopicPartition(topic, 0)])
    c.seek_to_beginning()
    got = sorted(m.value for m in c)
    c.close()
    assert got == sorted(f"kp-commit-{i}".encode() for i in range(5))


# ---------------------------------------------------------------- bad input over a raw socket
def coordinator_ready(conn, transactional_id: str) -> None:
    """FindCoordinator until the transaction coordinator exists (one node: this one)."""
    deadline = time.monotonic() + 30
    while True:
        err, node = kw.find_transaction_coordinator_v1(conn, transactional_id)
        if err == 0:
            return
        assert err == 15, f"FindCoordinator: error {err}"  # COORDINATOR_NOT_AVAILABLE: retry
        assert time.monotonic() < deadline, "no transaction coordinator"
        time.sleep(0.1)


def init_raw(conn, transactional_id: str) -> tuple[int, int]:
    coordinator_ready(conn, transactional_id)
    deadline = time.monotonic() + 30
    while True:
        err, pid, epoch = kw.init_producer_id_v1(conn, transactional_id)
        if err == 0:
            return pid, epoch
        assert err in (14, 16, 51), f"InitProducerId: error {err}"  # loading / moving / busy
        assert time.monotonic() < deadline, "InitProducerId kept failing"
        time.sleep(0.1)


@pytest.mark.timeout(60)
def test_api_versions_reports_transaction_version_2(shoal):
    """A new cluster finalizes transaction.version 2, as Kafka 4 does, and says so in
    ApiVersions v3+: that is what makes a Kafka 4 producer speak KIP-890 part 2 (Produce v12+
    and EndTxn v5 without AddPartitionsToTxn). v3 leaves out ranges that start at 0 (clients
    before KIP-1022 reject them); Shoal's own metadata.version goes out under its own name."""
    host, port = shoal.bootstrap.split(":")
    with kw.Conn(host, int(port)) as conn:
        v3 = kw.api_versions_flexible(conn, 3)
        v4 = kw.api_versions_flexible(conn, 4, correlation_id=2)
    for r in (v3, v4):
        assert r.error_code == 0 and r.apis[kw.PRODUCE][1] >= 12 and r.apis[kw.END_TXN][1] >= 5, r.apis
        assert r.finalized_features.get("transaction.version") == 2, r.finalized_features
        assert "metadata.version" not in r.finalized_features, r.finalized_features
        assert r.finalized_features.get("shoal.metadata.version", 0) >= 3, r.finalized_features
        assert r.finalized_features_epoch > 0
    assert "transaction.version" not in v3.supported_features, v3.supported_features
    assert v4.supported_features["transaction.version"] == (0, 2), v4.supported_features


@pytest.mark.timeout(120)
def test_update_features_raises_transaction_version_on_a_cluster_created_without_it(shoal_factory):
    """A cluster created on the classic protocol (`shoal --feature transaction.version=0`,
    Kafka's `kafka-storage format --feature`) is raised to transaction version 2 with
    UpdateFeatures (KIP-584), all or nothing, upgrades only; ApiVersions shows the new level and
    a KIP-890 part 2 transaction (Produce v12 without AddPartitionsToTxn, EndTxn v5) commits."""
    node = shoal_factory(start=False)
    node.extra_args = ["--feature", "transaction.version=0"]
    node.start()
    topic = unique_topic("raise-tv")
    ck_create_topic(node.bootstrap, topic, 1)
    host, port = node.bootstrap.split(":")
    with kw.Conn(host, int(port)) as conn:
        before = kw.api_versions_flexible(conn, 4)
        assert "transaction.version" not in before.finalized_features, before.finalized_features
        # Bad input first: nothing may change.
        err, msg, results = kw.update_features(conn, [("transaction.version", 1, kw.SAFE_DOWNGRADE)])
        assert err == 95 and results == [("transaction.version", 95)], (err, msg)  # INVALID_UPDATE_VERSION
        err, msg, _ = kw.update_features(conn, [("transaction.version", 9, kw.UPGRADE)])
        assert err == 95 and "supports" in msg, (err, msg)
        err, msg, _ = kw.update_features(conn, [("metadata.version", 25, kw.UPGRADE)])
        assert err == 95 and "shoal.metadata.version" in msg, (err, msg)
        err, msg, _ = kw.update_features(conn, [("transaction.version", 2, kw.UPGRADE)], validate_only=True)
        assert (err, msg) == (0, None), (err, msg)
        assert "transaction.version" not in kw.api_versions_flexible(conn, 4).finalized_features
        # The real upgrade (v2: no per-feature results), answered once applied here.
        err, msg, results = kw.update_features(conn, [("transaction.version", 2, kw.UPGRADE)], version=2)
        assert (err, msg, results) == (0, None, []), (err, msg)
        after = kw.api_versions_flexible(conn, 4)
        assert after.finalized_features.get("transaction.version") == 2, after.finalized_features
        assert after.finalized_features_epoch > before.finalized_features_epoch
        err, msg, _ = kw.update_features(conn, [("transaction.version", 1, kw.SAFE_DOWNGRADE)])
        assert err == 95 and "cannot be downgraded" in msg, (err, msg)

        # A transaction of version 2 now commits with no AddPartitionsToTxn.
        transactional_id = unique_topic("tid-raised")
        pid, epoch = init_raw(conn, transactional_id)
        batch = kw.producer_batch_v2([(None, b"raised")], pid, epoch, 0)
        err, _ = kw.produce_v12(conn, transactional_id, topic, 0, batch)
        assert err == 0, f"Produce v12: {err}"
        err, pid2, epoch2 = kw.end_txn_v5(conn, transactional_id, pid, epoch, True)
        assert (err, pid2, epoch2) == (0, pid, epoch + 1), (err, pid2, epoch2)
    seen = ck_consume(node.bootstrap, topic, [0], 5, conf={"isolation.level": "read_committed"},
                      timeout=30, idle=2)
    assert [r.value for r in seen] == [b"raised"]


@pytest.mark.timeout(120)
def test_bad_transactional_requests_get_kafkas_errors(shoal):
    topic = unique_topic("txbad")
    ck_create_topic(shoal.bootstrap, topic, partitions=2)
    host, port = shoal.bootstrap.split(":")
    with kw.Conn(host, int(port)) as conn:
        tid = unique_topic("bad-tid")
        pid, epoch = init_raw(conn, tid)
        # EndTxn for a transactional id the coordinator does not know.
        unknown = unique_topic("never-initialised")
        coordinator_ready(conn, unknown)
        assert kw.end_txn_v1(conn, unknown, pid, epoch, True) == 49  # INVALID_PRODUCER_ID_MAPPING
        # An unknown topic fails alone; the rest is not attempted.
        codes = kw.add_partitions_to_txn_v1(conn, tid, pid, epoch, [(topic, 0), ("no-such-topic", 0)])
        assert codes == {(topic, 0): 55, ("no-such-topic", 0): 3}, codes
        # Internal topics are never a client's (TOPIC_AUTHORIZATION_FAILED, as Kafka).
        codes = kw.add_partitions_to_txn_v1(conn, tid, pid, epoch, [(topic, 0), ("__consumer_offsets", 0)])
        assert codes == {(topic, 0): 55, ("__consumer_offsets", 0): 29}, codes
        # An empty transactional id (not a null one) is an invalid request.
        err, _, _ = kw.init_producer_id_v1(conn, "")
        assert err == 42, err  # INVALID_REQUEST
        # A transactional write to a partition not in the transaction (verification, KIP-890).
        batch = kw.producer_batch_v2([(b"k", b"v")], pid, epoch, 0)
        r = kw.parse_produce_v3(conn.roundtrip(kw.PRODUCE, 3, 30,
                                               kw.produce_v3_body(topic, 0, batch, transactional_id=tid)))
        assert r[0].error_code == 48, r  # INVALID_TXN_STATE
        # The transaction proper: add, write, commit; on the way, a forged commit marker from
        # the client (to a partition in the transaction, so verification passes) is refused.
        assert kw.add_partitions_to_txn_v1(conn, tid, pid, epoch, [(topic, 0), (topic, 1)]) == {
            (topic, 0): 0, (topic, 1): 0}
        forged = kw.producer_batch_v2([(b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x00")], pid, epoch, 0,
                                      attributes=kw.TRANSACTIONAL_BIT | kw.CONTROL_BIT)
        r = kw.parse_produce_v3(conn.roundtrip(kw.PRODUCE, 3, 31,
                                               kw.produce_v3_body(topic, 1, forged, transactional_id=tid)))
        assert r[0].error_code == kw.INVALID_RECORD, r
        r = kw.parse_produce_v3(conn.roundtrip(kw.PRODUCE, 3, 32,
                                               kw.produce_v3_body(topic, 0, batch, transactional_id=tid)))
        assert r[0].error_code == 0, r
        assert kw.end_txn_v1(conn, tid, pid, epoch, True) == 0
        # Changing the outcome of an ended transaction is refused; repeating it is harmless
        # (done) or told to wait while its markers are written.
        assert kw.end_txn_v1(conn, tid, pid, epoch, False) == 48  # INVALID_TXN_STATE
        assert kw.end_txn_v1(conn, tid, pid, epoch, True) in (0, 51)
        # A newer instance fences this one: v1 clients are told INVALID_PRODUCER_EPOCH.
        deadline = time.monotonic() + 30
        while True:
            err, pid2, epoch2 = kw.init_producer_id_v1(conn, tid)
            if err == 0:
                break
            assert err == 51 and time.monotonic() < deadline, f"InitProducerId: error {err}"
            time.sleep(0.1)
        assert (pid2, epoch2) == (pid, epoch + 1)
        assert kw.add_partitions_to_txn_v1(conn, tid, pid, epoch, [(topic, 1)]) == {(topic, 1): 47}
        assert kw.end_txn_v1(conn, tid, pid, epoch, True) == 47
        stale = kw.producer_batch_v2([(b"k", b"zombie")], pid, epoch, 1)
        r = kw.parse_produce_v3(conn.roundtrip(kw.PRODUCE, 3, 33,
                                               kw.produce_v3_body(topic, 0, stale, transactional_id=tid)))
        assert r[0].error_code == 47, r  # INVALID_PRODUCER_EPOCH
    # What read_committed sees: the one committed record, nothing forged or fenced.
    got = values(shoal.bootstrap, topic, 2, "read_committed", 1)
    assert got == [b"v"], got


@pytest.mark.timeout(120)
def test_shoalctl_shows_open_and_finished_transactions(shoal):
    from test_cli import ctl, js, ok

    topic = unique_topic("txctl")
    ck_create_topic(shoal.bootstrap, topic, partitions=1)
    tid = unique_topic("ctl-tid")
    p = txn_producer(shoal.bootstrap, tid)
    p.init_transactions(30)
    p.begin_transaction()
    produce_txn(p, [topic], "open", 3)
    p.flush(30)

    listed = js(ctl(shoal, "txn", "list", "--state", "Ongoing", "-o", "json"))
    mine = [t for t in listed if t["transactional_id"] == tid]
    assert len(mine) == 1 and mine[0]["state"] == "Ongoing", listed
    described = js(ctl(shoal, "txn", "describe", tid, "-o", "json"))
    assert described["state"] == "Ongoing" and described["partitions"] == [f"{topic}-0"], described
    assert described["producer_id"] == mine[0]["producer_id"]
    producers = js(ctl(shoal, "txn", "describe-producers", "--topic", topic, "--partition", "0", "-o", "json"))
    open_txn = [x for x in producers["producers"] if x["producer_id"] == described["producer_id"]]
    assert len(open_txn) == 1 and open_txn[0]["current_txn_start_offset"] == 0, producers
    table = ok(ctl(shoal, "txn", "describe", tid))
    assert "TRANSACTIONAL_ID" in table and "Ongoing" in table

    p.commit_transaction(30)
    deadline = time.monotonic() + 30
    while js(ctl(shoal, "txn", "describe", tid, "-o", "json"))["state"] != "CompleteCommit":
        assert time.monotonic() < deadline, "the transaction never completed"
        time.sleep(0.2)
    producers = js(ctl(shoal, "txn", "describe-producers", "--topic", topic, "--partition", "0", "-o", "json"))
    assert all(x["current_txn_start_offset"] == -1 for x in producers["producers"]), producers
    r = ctl(shoal, "txn", "describe", unique_topic("nobody"))
    assert r.returncode != 0 and "TRANSACTIONAL_ID_NOT_FOUND" in r.stderr, r.stderr


@pytest.mark.timeout(120)
def test_shoalctl_aborts_a_hanging_transaction(shoal):
    from test_cli import ctl, js

    topic = unique_topic("txhang")
    ck_create_topic(shoal.bootstrap, topic, partitions=1)
    # A transaction that stays open (its producer never ends it; timeout 10 minutes).
    hanging = txn_producer(shoal.bootstrap, unique_topic("hang-tid"), **{"transaction.timeout.ms": 600_000})
    hanging.init_transactions(30)
    hanging.begin_transaction()
    produce_txn(hanging, [topic], "hanging", 3)
    hanging.flush(30)
    after = txn_producer(shoal.bootstrap, unique_topic("after-tid"))
    after.init_transactions(30)
    after.begin_transaction()
    written = produce_txn(after, [topic], "after", 3)
    after.commit_transaction(30)

    producers = js(ctl(shoal, "txn", "describe-producers", "--topic", topic, "--partition", "0", "-o", "json"))
    open_txns = [x for x in producers["producers"] if x["current_txn_start_offset"] >= 0]
    assert [x["current_txn_start_offset"] for x in open_txns] == [0], producers
    refused = ctl(shoal, "txn", "abort", "--topic", topic, "--partition", "0", "--start-offset", "0")
    assert refused.returncode == 1 and "--force" in refused.stderr, refused.stderr
    # Held behind the open transaction, read_committed sees nothing yet.
    assert values(shoal.bootstrap, topic, 1, "read_committed", 0, idle=2) == []
    aborted = js(ctl(shoal, "txn", "abort", "--topic", topic, "--partition", "0", "--start-offset", "0",
                     "--force", "-o", "json"))
    assert aborted["result"] == "aborted", aborted
    got = values(shoal.bootstrap, topic, 1, "read_committed", len(written))
    assert sorted(got) == sorted(v for _, v in written), got
    r = ctl(shoal, "txn", "abort", "--topic", topic, "--partition", "0", "--start-offset", "0", "--force")
    assert r.returncode == 1 and "no open transaction" in r.stderr, r.stderr


# ---------------------------------------------------------------- metrics
def scrape_until(node, condition, what: str, timeout: float = 30):
    """Scrapes /metrics until `condition(samples)` holds; fails naming `what` at the deadline."""
    from test_metrics import scrape

    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(node.admin_url)
        if condition(samples):
            return samples
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        time.sleep(0.2)


@pytest.mark.timeout(120)
def test_open_transactions_show_in_the_metrics_until_committed(shoal):
    from test_metrics import value

    topic = unique_topic("txmetrics")
    ck_create_topic(shoal.bootstrap, topic, partitions=1)
    labels = {"topic": topic, "partition": 0}

    def series(samples, name):
        return samples.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))))

    p = txn_producer(shoal.bootstrap, unique_topic("metrics-tid"))
    p.init_transactions(30)
    p.begin_transaction()
    produce_txn(p, [topic], "open", 3)
    p.flush(30)

    # The leader counts the open transaction; the LSO stays at its first offset (0) while the
    # high watermark moves past its records; the coordinator counts it too.
    opened = scrape_until(
        shoal,
        lambda s: series(s, "shoal_open_transactions") == 1
        and series(s, "shoal_high_watermark") == 3
        and (series(s, "shoal_oldest_open_transaction_age_seconds") or 0) > 0,
        "an open transaction on the partition, with an age",
    )
    assert series(opened, "shoal_last_stable_offset") == 0, opened
    coordinator_open = value(opened, "shoal_txn_coordinator_open_transactions")
    assert coordinator_open >= 1, coordinator_open

    p.commit_transaction(30)
    # After the commit marker (offset 3) nothing is open: LSO = HW = 4, age back to 0, and the
    # coordinator counts one transaction less (others of this module may still be open).
    committed = scrape_until(
        shoal,
        lambda s: series(s, "shoal_open_transactions") == 0
        and series(s, "shoal_high_watermark") == 4
        and series(s, "shoal_last_stable_offset") == 4
        and value(s, "shoal_txn_coordinator_open_transactions") <= coordinator_open - 1,
        "the committed transaction gone from the gauges",
    )
    assert series(committed, "shoal_oldest_open_transaction_age_seconds") == 0, committed
