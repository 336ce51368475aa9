"""Retention through the whole node: topic configs reach the log, and the periodic
retention check (log.retention.check.interval.ms) deletes whole old segments, moving the
earliest offset forward while the latest stays put."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from clients import ck_create_topic, ck_produce, unique_topic

OVERRIDES = {"log.retention.check.interval.ms": 300}


def watermarks(bootstrap: str, topic: str) -> tuple[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "wm", "enable.auto.commit": False})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        c.close()


def wait_for_start_offset_above(bootstrap: str, topic: str, floor: int, timeout: float = 15.0) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    low, high = watermarks(bootstrap, topic)
    while low <= floor and time.monotonic() < deadline:
        time.sleep(0.2)
        low, high = watermarks(bootstrap, topic)
    return low, high


@pytest.mark.timeout(90)
def test_retention_bytes_deletes_old_segments(shoal_factory):
    node = shoal_factory(OVERRIDES)
    topic = unique_topic("retb")
    ck_create_topic(node.bootstrap, topic, partitions=1,
                    config={"segment.bytes": "4096", "retention.bytes": "8192"})
    res = ck_produce(node.bootstrap, topic, 2000, prefix="rb", conf={"acks": "all", "linger.ms": 0,
                                                                    "batch.size": 1024})
    assert not res.errors and len(res.acked) == 2000
    low, high = wait_for_start_offset_above(node.bootstrap, topic, 0)
    assert high == 2000, "retention must never touch the end of the log"
    assert low > 0, "old segments were not deleted"
    assert high - low < 2000


@pytest.mark.timeout(90)
def test_retention_ms_deletes_segments_older_than_the_limit(shoal_factory):
    node = shoal_factory(OVERRIDES)
    topic = unique_topic("retms")
    ck_create_topic(node.bootstrap, topic, partitions=1,
                    config={"segment.bytes": "4096", "retention.ms": "60000"})
    # Records stamped two hours ago are past retention.ms at once; the rest are fresh.
    p = Producer({"bootstrap.servers": node.bootstrap, "acks": "all", "linger.ms": 0, "batch.size": 1024})
    two_hours_ago = int(time.time() * 1000) - 2 * 3600 * 1000
    errors = []
    for i in range(1000):
        stamp = two_hours_ago + i if i < 500 else int(time.time() * 1000)
        p.produce(topic, value=b"x" * 64, partition=0, timestamp=stamp,
                  on_delivery=lambda err, _msg: err and errors.append(err))
        p.poll(0)
    assert p.flush(30) == 0 and not errors, errors[:3]
    low, high = wait_for_start_offset_above(node.bootstrap, topic, 0)
    assert high == 1000
    assert low > 0, "segments of old records were not deleted"
    assert low <= 500, "segments holding fresh records must stay"
