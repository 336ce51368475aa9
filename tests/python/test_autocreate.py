"""auto.create.topics.enable=true: a Metadata request that allows auto
creation, or a producer, creates an unknown topic with num.partitions."""

from __future__ import annotations

import time

import pytest

import kafka_wire as kw
from clients import ck_consume, ck_produce, topic_names, unique_topic, wait_for_partitions

NUM_PARTITIONS = 4
SHOAL_OVERRIDES = {"auto.create.topics.enable": "true", "num.partitions": NUM_PARTITIONS}
pytestmark = pytest.mark.timeout(90)


def test_metadata_auto_creates_with_num_partitions(shoal):
    name = unique_topic("auto")
    deadline = time.monotonic() + 20
    with kw.Conn("127.0.0.1", shoal.kafka_port) as c:
        cid = 10
        while True:
            topics = kw.metadata_v4(c, [name], allow_auto_create=True, correlation_id=cid)
            t = topics[name]
            # Kafka answers LEADER_NOT_AVAILABLE (5) or UNKNOWN_TOPIC_OR_PARTITION (3) while creating
            if t.error_code == 0 and len(t.partitions) == NUM_PARTITIONS:
                break
            assert t.error_code in (0, 3, 5), t
            assert time.monotonic() < deadline, f"topic not auto-created: {t}"
            cid += 1
            time.sleep(0.2)
    assert sorted(t.partitions) == list(range(NUM_PARTITIONS))
    assert name in topic_names(shoal.bootstrap)


def test_metadata_without_allow_does_not_create(shoal):
    name = unique_topic("noauto")
    with kw.Conn("127.0.0.1", shoal.kafka_port) as c:
        topics = kw.metadata_v4(c, [name], allow_auto_create=False)
    assert topics[name].error_code == kw.UNKNOWN_TOPIC_OR_PARTITION
    time.sleep(0.5)
    assert name not in topic_names(shoal.bootstrap)


def test_producer_auto_creates(shoal):
    name = unique_topic("autoprod")
    res = ck_produce(shoal.bootstrap, name, 100, prefix="ap", conf={"acks": "all"}, timeout=60)
    assert not res.errors, res.errors[:3]
    wait_for_partitions(shoal.bootstrap, name, NUM_PARTITIONS)
    recs = ck_consume(shoal.bootstrap, name, list(range(NUM_PARTITIONS)), 100)
    assert len(recs) == 100
