"""Offsets sent to a transaction (TxnOffsetCommit) with a real client (confluent-kafka /
librdkafka's `send_offsets_to_transaction`) against one node.

The consume-transform-produce loop of exactly-once processing: a group's offsets committed
inside a producer's transaction appear exactly when it commits and never if it aborts; while it
is open, a read_committed consumer's committed() (OffsetFetch with require_stable) waits, and
the offsets survive a restart of the node.
"""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from clients import ck_create_topic, ck_produce, unique_topic

SHOAL_OVERRIDES = {
    "transaction.state.log.num.partitions": 3,
    "offsets.topic.num.partitions": 3,
    "group.initial.rebalance.delay.ms": 0,
}


def consumer(bootstrap: str, group: str, isolation: str = "read_committed") -> Consumer:
    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": isolation,
    })


def committed(bootstrap: str, group: str, topic: str, isolation: str, timeout: float = 10.0):
    """The group's committed offset of `topic`-0, as a consumer of `isolation` reads it."""
    c = consumer(bootstrap, group, isolation)
    try:
        return c.committed([TopicPartition(topic, 0)], timeout=timeout)[0].offset
    finally:
        c.close()


@pytest.mark.timeout(180)
def test_offsets_sent_to_a_transaction_appear_exactly_when_it_commits(shoal):
    source, sink = unique_topic("eos-in"), unique_topic("eos-out")
    group = unique_topic("eos-group")
    ck_create_topic(shoal.bootstrap, source, partitions=1)
    ck_create_topic(shoal.bootstrap, sink, partitions=1)
    ck_produce(shoal.bootstrap, source, 30)

    c = consumer(shoal.bootstrap, group)
    c.assign([TopicPartition(source, 0, 0)])
    p = Producer({"bootstrap.servers": shoal.bootstrap, "transactional.id": unique_topic("eos")})
    p.init_transactions(30)

    def process(count: int) -> None:
        """Reads `count` records and writes them on, in the open transaction."""
        seen = 0
        while seen < count:
            msg = c.poll(10)
            assert msg is not None, "the source ran dry"
            assert msg.error() is None, msg.error()
            p.produce(sink, value=msg.value())
            seen += 1

    # Committed: the group's offset moves to the consumer's position.
    p.begin_transaction()
    process(10)
    p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
    p.commit_transaction(30)
    assert committed(shoal.bootstrap, group, source, "read_committed") == 10

    # Aborted: the offset stays.
    p.begin_transaction()
    process(10)
    p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
    p.abort_transaction(30)
    assert committed(shoal.bootstrap, group, source, "read_committed") == 10
    assert committed(shoal.bootstrap, group, source, "read_uncommitted") == 10

    # Open: a read_committed consumer cannot read the offset (UNSTABLE_OFFSET_COMMIT, retried
    # until its timeout); a read_uncommitted one reads the last committed offset.
    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(source, 0, 25)],
                                  c.consumer_group_metadata(), 30)
    with pytest.raises(KafkaException):
        committed(shoal.bootstrap, group, source, "read_committed", timeout=3)
    assert committed(shoal.bootstrap, group, source, "read_uncommitted") == 10
    p.commit_transaction(30)
    assert committed(shoal.bootstrap, group, source, "read_committed") == 25
    c.close()

    # The committed, aborted and committed again offsets read back from the log.
    shoal.restart()
    assert committed(shoal.bootstrap, group, source, "read_committed", timeout=30) == 25


@pytest.mark.timeout(120)
def test_kafka_python_sends_offsets_to_its_transactions(shoal):
    from kafka import KafkaProducer, TopicPartition as KTopicPartition
    from kafka.structs import OffsetAndMetadata

    source, group = unique_topic("kp-eos-in"), unique_topic("kp-eos-group")
    ck_create_topic(shoal.bootstrap, source, partitions=1)
    p = KafkaProducer(bootstrap_servers=shoal.bootstrap, transactional_id=unique_topic("kpeos"))
    p.init_transactions()
    for offset, commit in [(7, True), (9, False), (12, True)]:
        p.begin_transaction()
        p.send_offsets_to_transaction(
            {KTopicPartition(source, 0): OffsetAndMetadata(offset, "", -1)}, group)
        if commit:
            p.commit_transaction()
        else:
            p.abort_transaction()
        want = offset if commit else 7
        assert committed(shoal.bootstrap, group, source, "read_committed") == want
    p.close()
