"""A partition whose log cannot be opened is reported offline, not silently unusable.

The node is stopped, the partition's checkpoint file is overwritten with garbage (damaged
storage is refused, never re-initialised), and the node started again: the other partition
keeps serving, while the damaged one is visible everywhere an operator or client looks:
Metadata (KAFKA_STORAGE_ERROR, the replica listed offline), Produce (KAFKA_STORAGE_ERROR),
`/metrics` (shoal_offline_replicas) and `shoalctl cluster health` (offline, exit 1).
"""

from __future__ import annotations

import json

import pytest
import kafka_wire as kw
from clients import ck_create_topic, ck_produce, unique_topic
from test_cli import ctl
from test_metrics import scrape

KAFKA_STORAGE_ERROR = 56


@pytest.mark.timeout(120)
def test_a_partition_that_cannot_open_is_reported_offline(shoal_factory):
    node = shoal_factory()
    topic = unique_topic("offline")
    ck_create_topic(node.bootstrap, topic, partitions=2)
    produced = ck_produce(node.bootstrap, topic, 100, prefix="o", conf={"acks": "all"})
    assert not produced.errors
    node.stop()
    checkpoint = node.data_dir / f"{topic}-1" / "partition-checkpoint"
    assert checkpoint.is_file(), list((node.data_dir / f"{topic}-1").iterdir())
    original = checkpoint.read_bytes()
    checkpoint.write_bytes(b"\x00garbage\xffnot a checkpoint\n" * 3)
    node.start()

    conn = kw.Conn("127.0.0.1", node.kafka_port)
    try:
        parts = kw.metadata_v4_full(conn, [topic]).topics[topic]
        assert parts[0][0] == 0, parts
        assert parts[1][0] == KAFKA_STORAGE_ERROR, parts
        batch = kw.record_batch_v2([(b"k", b"v")])
        assert [r.error_code for r in kw.produce_v3(conn, topic, 0, batch)] == [0]
        assert [r.error_code for r in kw.produce_v3(conn, topic, 1, batch)] == [KAFKA_STORAGE_ERROR]
    finally:
        conn.close()

    metrics = scrape(node.admin_url)
    assert metrics[("shoal_offline_replicas", ())] == 1.0

    r = ctl(node, "cluster", "health", "-o", "json")
    assert r.returncode == 1, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["healthy"] is False
    assert report["offline_partitions"] == [f"{topic}/1"]
    # Nothing was re-initialised: the damaged file is as it was left.
    assert checkpoint.read_bytes().startswith(b"\x00garbage")
    assert original != checkpoint.read_bytes()
