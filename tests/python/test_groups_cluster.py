"""Consumer groups on a three-node cluster: the coordinator is the leader of the group's
`__consumer_offsets` partition (replicated three ways), so when its node is SIGKILLed the
group finds the new leader, which has every acknowledged commit."""

from __future__ import annotations

import dataclasses
import os
import signal
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from checker import check
from clients import ck_admin, ck_produce, unique_topic
from cluster import Cluster, create_topic, metadata_from
from kafka_wire import Conn, Reader, i8, i32, request, string
from members import Member, group_reads, wait_until
from test_groups import committed_offsets, end_offsets

PARTITIONS = 6


def describe(bootstrap: str, group: str):
    admin = ck_admin(bootstrap)  # must outlive the future: a destroyed client never answers
    return admin.describe_consumer_groups([group], request_timeout=20)[group].result(timeout=30)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("client", ["ck", "ck848"])
def test_sigkilled_coordinator_loses_no_committed_offset(tmp_path, client):
    """Classic and KIP-848 (`ck848`) groups alike: the new coordinator rebuilds the group from
    the replicated partition, with every commit."""
    c = Cluster(tmp_path, overrides={
        "offsets.topic.num.partitions": 3,
        "group.initial.rebalance.delay.ms": 500,
        "group.min.session.timeout.ms": 1000,
        "group.consumer.session.timeout.ms": 10_000,
        "group.consumer.min.session.timeout.ms": 1000,
        "group.consumer.heartbeat.interval.ms": 500,
        "group.consumer.min.heartbeat.interval.ms": 100,
    })
    c.start()
    members: list[Member] = []
    try:
        topic = unique_topic("grp3")
        group = f"g-{topic}"
        create_topic(c.bootstrap, topic, PARTITIONS, 3, config={"min.insync.replicas": "2"})
        n = c.nodes[0]
        wait_until(lambda: all(len(isr) == 3 for _, _, _, isr in metadata_from(n, [topic]).topics[topic].values()),
                   30, "full ISRs")
        first = ck_produce(c.bootstrap, topic, 3000, prefix="a", conf={"acks": "all"})
        assert not first.errors, first.errors[:3]
        members = [Member(client, c.bootstrap, topic, group, f"m{i}", log_dir=tmp_path, session_timeout_ms=10_000)
                   for i in range(2)]
        wait_until(lambda: len({(p, o) for m in members for _, p, o in m.records()}) >= 3000,
                   90, "the first 3000 records consumed", members)
        before = end_offsets(first.acked)
        wait_until(lambda: committed_offsets(c.bootstrap, group, topic, PARTITIONS) == before, 30,
                   "commits of everything read")

        coordinator = describe(c.bootstrap, group).coordinator.id
        c.node(coordinator).kill()
        survivors = ",".join(x.bootstrap for x in c.brokers if x.running)
        second = ck_produce(survivors, topic, 3000, prefix="b",
                            conf={"acks": "all", "enable.idempotence": True, "message.timeout.ms": 90_000})
        assert not second.errors, second.errors[:3]
        wait_until(lambda: len({(p, o) for m in members for _, p, o in m.records()}) >= 6000,
                   120, "consumption to continue after the coordinator died", members)

        acked = first.acked + [dataclasses.replace(a, seq=a.seq + len(first.acked)) for a in second.acked]
        reads = group_reads({m.name: m.snapshot() for m in members})
        assert not reads.steps_back, f"a member stepped back within one ownership: {reads.steps_back[:5]}"
        rep = check(acked, reads.seen, by_key=False)
        assert rep.ok and not rep.unacked, rep.summary()
        # Had the new coordinator lost a commit, its partition would be read again from an older
        # offset: nothing below the offsets committed before the kill may come back.
        reread = [r for r in reads.repeats if r[2] < before.get(r[1], 0)]
        assert not reread, f"records committed before the kill were read again: {reread[:5]}"

        after = describe(survivors, group)
        assert after.coordinator.id != coordinator
        assert len(after.members) == 2, after
        ends = end_offsets(acked)
        wait_until(lambda: committed_offsets(survivors, group, topic, PARTITIONS) == ends, 30,
                   "the new coordinator to hold every commit")
    finally:
        for m in members:
            m.stop()
        c.close()


def commit_offset(bootstrap: str, group: str, topic: str, offset: int) -> None:
    """OffsetCommit of `offset` for partition 0 by a consumer that never joins (generation -1)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        consumer.close()


def find_coordinator(node, group: str) -> int:
    """The node id `node` names as `group`'s coordinator (FindCoordinator v1), -1 on an error."""
    with Conn("127.0.0.1", node.kafka_port, timeout=5) as conn:
        r = conn.roundtrip(10, 1, 1, string(group) + i8(0))
        r.i32()  # throttle
        error = r.i16()
        r.string()
        node_id = r.i32()
        return node_id if error == 0 else -1


def offset_fetch_v1(group: str, topic: str) -> bytes:
    return string(group) + i32(1) + string(topic) + i32(1) + i32(0)


def parse_offset_fetch_v1(r: Reader) -> tuple[int, int]:
    """(offset, error code) of the one partition asked for."""
    assert r.array_len() == 1
    r.string()
    assert r.array_len() == 1
    r.i32()
    offset = r.i64()
    r.string()
    return offset, r.i16()


@pytest.mark.timeout(180)
def test_a_resumed_paused_coordinator_never_answers_a_stale_offset(tmp_path):
    """SIGSTOP the group coordinator until it is fenced and another node coordinates the group,
    commit a newer offset there, then SIGCONT it with an OffsetFetch already waiting in its
    socket. Its shards are still loaded and its image still names it leader, but its lease with
    the controller lapsed while it was stopped: it must answer NOT_COORDINATOR (or the new
    offset), never the offset it remembers."""
    c = Cluster(tmp_path, overrides={"offsets.topic.num.partitions": 3})
    c.start()
    try:
        topic = unique_topic("stale")
        group = f"g-{topic}"
        create_topic(c.bootstrap, topic, 1, 3)
        commit_offset(c.bootstrap, group, topic, 10)
        coordinator = describe(c.bootstrap, group).coordinator.id
        victim = c.node(coordinator)
        others = ",".join(n.bootstrap for n in c.brokers if n.node_id != coordinator)
        survivor = next(n for n in c.brokers if n.node_id != coordinator)
        conn = Conn("127.0.0.1", victim.kafka_port)
        try:
            r = conn.roundtrip(9, 1, 1, offset_fetch_v1(group, topic))
            assert parse_offset_fetch_v1(r) == (10, 0), "the coordinator answers before the pause"
            os.kill(victim.proc.pid, signal.SIGSTOP)
            try:
                # Raw FindCoordinator, not librdkafka's admin client: a describe that times out
                # on the stopped node can abort the interpreter (librdkafka 2.12).
                def moved() -> bool:
                    try:
                        return find_coordinator(survivor, group) not in (-1, coordinator)
                    except (OSError, ConnectionError):
                        return False
                wait_until(moved, 90, "another node to coordinate the group")
                commit_offset(others, group, topic, 20)
                assert committed_offsets(others, group, topic, 1) == {0: 20}
                # Queued while stopped: answered the moment the process runs again.
                conn.send(request(9, 1, 2, offset_fetch_v1(group, topic)))
            finally:
                os.kill(victim.proc.pid, signal.SIGCONT)
            r = Reader(conn.recv_frame())
            assert r.i32() == 2
            offset, error = parse_offset_fetch_v1(r)
        finally:
            conn.close()
        assert offset != 10, f"the resumed node answered the stale offset (error {error})"
        assert (error, offset) in ((16, -1), (0, 20)), (error, offset)
        # And it comes back as a member of the cluster: every node leads to the new offset. (Raw
        # requests again: librdkafka's admin ListConsumerGroupOffsets crashes the interpreter
        # on NOT_COORDINATOR, librdkafka #5040.)
        def served_everywhere() -> bool:
            for n in c.brokers:
                try:
                    found = find_coordinator(n, group)
                    if found < 0:
                        return False
                    with Conn("127.0.0.1", c.node(found).kafka_port, timeout=5) as fetch:
                        r = fetch.roundtrip(9, 1, 3, offset_fetch_v1(group, topic))
                        if parse_offset_fetch_v1(r) != (20, 0):
                            return False
                except (OSError, ConnectionError):
                    return False
            return True
        wait_until(served_everywhere, 30, "the group to be served after the resume")
    finally:
        c.close()
