"""Durability across restarts: SIGTERM + restart keeps topics, configs and
records; SIGKILL during an acks=all produce run loses no acknowledged record."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka.admin import ConfigResource, ResourceType

from checker import check
from clients import (
    OP_TIMEOUT, ProduceResult, ck_admin, ck_consume, ck_create_topic, ck_produce, observed, topic_names,
    unique_topic, wait_for_partitions,
)

PARTITIONS = [0, 1, 2]


def retention_ms(bootstrap, topic) -> str:
    res = ConfigResource(ResourceType.TOPIC, topic)
    admin = ck_admin(bootstrap)  # keep a reference until the future resolves
    entries = admin.describe_configs([res], request_timeout=OP_TIMEOUT)[res].result(timeout=OP_TIMEOUT)
    return entries["retention.ms"].value


@pytest.mark.timeout(180)
def test_sigterm_restart_keeps_topics_configs_and_records(shoal_factory):
    node = shoal_factory()
    topic = unique_topic("keep")
    ck_create_topic(node.bootstrap, topic, partitions=3, config={"retention.ms": "123456789"})
    n = 20_000
    res = ck_produce(node.bootstrap, topic, n, prefix="keep", conf={"acks": "all"})
    assert not res.errors and len(res.acked) == n, res.errors[:5]

    assert node.stop() == 0, "SIGTERM must be a clean shutdown (exit 0)"
    node.start()
    assert node.healthz() == 200

    assert topic in topic_names(node.bootstrap)
    wait_for_partitions(node.bootstrap, topic, 3)
    assert retention_ms(node.bootstrap, topic) == "123456789"
    recs = ck_consume(node.bootstrap, topic, PARTITIONS, n)
    rep = check(res.acked, observed(recs), by_key=False)
    assert rep.ok and rep.observed == n and not rep.unacked, rep.summary()

    # the log continues where it stopped
    more = ck_produce(node.bootstrap, topic, 300, prefix="more", conf={"acks": "all"})
    assert not more.errors
    end = {p: max(a.offset for a in res.acked if a.partition == p) for p in PARTITIONS}
    for a in more.acked:
        assert a.offset > end[a.partition], f"offset {a.offset} reused on partition {a.partition}"

    # and a second clean restart still has everything
    assert node.stop() == 0
    node.start()
    assert len(ck_consume(node.bootstrap, topic, PARTITIONS, n + 300)) == n + 300


@pytest.mark.timeout(240)
def test_sigkill_during_produce_loses_no_acknowledged_record(shoal_factory):
    node = shoal_factory()
    topic = unique_topic("kill")
    ck_create_topic(node.bootstrap, topic, partitions=3)

    res = ProduceResult()
    stop = threading.Event()
    failure: list[BaseException] = []

    def produce():
        try:
            ck_produce(node.bootstrap, topic, 5_000_000, prefix="kill", result=res, stop=stop.is_set,
                       timeout=150, flush_timeout=30,
                       conf={"acks": "all", "message.timeout.ms": 5000, "retries": 2,
                             "retry.backoff.ms": 100, "reconnect.backoff.max.ms": 500})
        except BaseException as e:  # noqa: BLE001
            failure.append(e)

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while len(res.acked) < 30_000:
        assert t.is_alive() or failure, "producer finished before the kill"
        assert not failure, failure
        assert time.monotonic() < deadline, f"only {len(res.acked)} acks after 60 s"
        time.sleep(0.05)

    node.kill()
    acked_at_kill = len(res.acked)
    time.sleep(0.5)
    stop.set()
    t.join(timeout=60)
    assert not t.is_alive(), "producer did not finish after the kill"
    assert not failure, failure
    assert res.sent > len(res.acked), "the kill should interrupt in-flight records"

    node.start()
    wait_for_partitions(node.bootstrap, topic, 3)
    # read everything there is (at least every acked record)
    recs = ck_consume(node.bootstrap, topic, PARTITIONS, res.sent, idle=5, timeout=120)
    rep = check(res.acked, observed(recs), by_key=False)
    print(f"acked before kill: {acked_at_kill}, acked total: {len(res.acked)}, sent: {res.sent}; {rep.summary()}")
    assert not rep.lost, rep.summary()
    assert not rep.misplaced, rep.summary()
    assert not rep.duplicated, rep.summary()
    assert not rep.reordered and not rep.consume_order, rep.summary()
    # offsets stay dense after recovery
    for p in PARTITIONS:
        offs = sorted(r.offset for r in recs if r.partition == p)
        assert offs == list(range(len(offs))), f"partition {p}: gap in offsets after recovery"


@pytest.mark.timeout(90)
def test_sigkill_when_idle_keeps_metadata(shoal_factory):
    node = shoal_factory()
    topics = [unique_topic("idle") for _ in range(3)]
    for i, topic in enumerate(topics):
        ck_create_topic(node.bootstrap, topic, partitions=i + 1)
    node.kill()
    node.start()
    for i, topic in enumerate(topics):
        wait_for_partitions(node.bootstrap, topic, i + 1)
