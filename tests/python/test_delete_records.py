"""DeleteRecords (issue #19) with real clients: confluent-kafka's AdminClient.delete_records and
`shoalctl topic trim`, on one node and replicated on three (the followers move their log start
too, so a new leader after a SIGKILL starts where the old one did), surviving a restart; the
bad cases answer Kafka's codes."""

from __future__ import annotations

import json

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from cluster import Cluster, create_topic, metadata_from
from conftest import ShoalNode
from test_cli import ctl, js
from test_reassignment import wait_until

OP_TIMEOUT = 30


def produce(bootstrap: str, topic: str, partitions: int, per_partition: int) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(per_partition):
        for part in range(partitions):
            p.produce(topic, value=f"{part}-{i}".encode(), partition=part)
    assert p.flush(30) == 0


def earliest(bootstrap: str, topic: str, partition: int) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    tp = TopicPartition(topic, partition)
    return admin.list_offsets({tp: OffsetSpec.earliest()}, request_timeout=OP_TIMEOUT)[tp].result(OP_TIMEOUT).offset


def first_offset_read(bootstrap: str, topic: str, partition: int) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "delete-records", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(topic, partition, 0)])  # below the log start: reset to earliest
        for _ in range(40):
            for m in c.consume(10, timeout=0.5):
                if m.error() is None:
                    return m.offset()
        raise AssertionError("nothing consumed")
    finally:
        c.close()


def delete(bootstrap: str, topic: str, partition: int, offset: int):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    tp = TopicPartition(topic, partition, offset)
    return admin.delete_records([tp], operation_timeout=OP_TIMEOUT, request_timeout=OP_TIMEOUT)[tp].result(OP_TIMEOUT)


def error_code(exc: BaseException) -> int:
    err = exc.args[0]
    assert isinstance(err, KafkaError), exc
    return err.code()


def test_delete_records_on_one_node_survives_a_restart(tmp_path):
    node = ShoalNode(tmp_path / "one", name="one")
    node.start()
    try:
        topic = "trimmed"
        create_topic(node.bootstrap, topic, partitions=2, rf=1)
        produce(node.bootstrap, topic, 2, 100)
        deleted = delete(node.bootstrap, topic, 0, 40)
        assert deleted.low_watermark == 40
        assert earliest(node.bootstrap, topic, 0) == 40
        assert first_offset_read(node.bootstrap, topic, 0) == 40
        # shoalctl topic trim: to the high watermark by default.
        r = ctl(node.bootstrap, "topic", "trim", topic, "--partition", "1", "-o", "json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == [{"topic": topic, "partition": 1, "low_watermark": 100, "result": "trimmed"}]
        assert earliest(node.bootstrap, topic, 1) == 100

        # Bad input: beyond the high watermark, a compact-only topic, an internal topic, an
        # unknown partition; nothing moves.
        try:
            delete(node.bootstrap, topic, 0, 101)
            raise AssertionError("deleting beyond the high watermark was accepted")
        except Exception as e:  # noqa: BLE001 - the KafkaException carries the code
            assert error_code(e) == KafkaError.OFFSET_OUT_OF_RANGE, e
        admin = AdminClient({"bootstrap.servers": node.bootstrap})
        admin.create_topics([NewTopic("compacted", 1, 1, config={"cleanup.policy": "compact"})])["compacted"].result(30)
        r = ctl(node.bootstrap, "topic", "trim", "compacted", "--offset", "0")
        assert r.returncode == 1 and "POLICY_VIOLATION" in r.stdout, (r.stdout, r.stderr)
        # A committed offset creates __consumer_offsets.
        committer = Consumer({"bootstrap.servers": node.bootstrap, "group.id": "g", "enable.auto.commit": False})
        committer.commit(offsets=[TopicPartition(topic, 0, 50)], asynchronous=False)
        committer.close()
        r = ctl(node.bootstrap, "topic", "trim", "__consumer_offsets", "--partition", "0", "--offset", "0")
        assert r.returncode == 1 and "INVALID_TOPIC_EXCEPTION" in r.stdout, (r.stdout, r.stderr)
        r = ctl(node.bootstrap, "topic", "trim", topic, "--partition", "9")
        assert r.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in r.stdout, (r.stdout, r.stderr)
        assert earliest(node.bootstrap, topic, 0) == 40

        node.restart()
        assert earliest(node.bootstrap, topic, 0) == 40
        assert earliest(node.bootstrap, topic, 1) == 100
        assert first_offset_read(node.bootstrap, topic, 0) == 40
    finally:
        node.stop()


def test_delete_records_is_replicated_and_a_new_leader_starts_where_the_old_one_did(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    try:
        topic = "trimmed-rf3"
        create_topic(c.bootstrap, topic, partitions=1, rf=3)
        produce(c.bootstrap, topic, 1, 200)
        deleted = delete(c.bootstrap, topic, 0, 150)
        # Acknowledged only once every in-sync replica moved its log start.
        assert deleted.low_watermark >= 150
        leader = metadata_from(c.node(1)).topics[topic][0][1]
        c.node(leader).kill()
        others = [n for n in c.nodes if n.node_id != leader]

        def new_leader():
            p = metadata_from(others[0]).topics[topic][0]
            return p[1] not in (-1, leader)
        wait_until("a new leader", new_leader, timeout=20)
        assert earliest(others[0].bootstrap, topic, 0) == 150
        assert first_offset_read(others[0].bootstrap, topic, 0) == 150
        c.node(leader).start()
        out = js(ctl(c.bootstrap, "topic", "trim", topic, "-o", "json"))
        assert out[0]["result"] == "trimmed" and out[0]["low_watermark"] == 200, out
    finally:
        c.close()
