"""Consumer groups on a three-node cluster: the coordinator is the leader of the group's
`__consumer_offsets` partition (replicated three ways), so when its node is SIGKILLed the
group finds the new leader, which has every acknowledged commit."""

from __future__ import annotations

import dataclasses
import time

import pytest

from checker import check
from clients import ck_admin, ck_produce, unique_topic
from cluster import Cluster, create_topic, metadata_from
from members import Member, group_reads, wait_until
from test_groups import committed_offsets, end_offsets

PARTITIONS = 6


def describe(bootstrap: str, group: str):
    admin = ck_admin(bootstrap)  # must outlive the future: a destroyed client never answers
    return admin.describe_consumer_groups([group], request_timeout=20)[group].result(timeout=30)


@pytest.mark.timeout(300)
def test_sigkilled_coordinator_loses_no_committed_offset(tmp_path):
    c = Cluster(tmp_path, overrides={
        "offsets.topic.num.partitions": 3,
        "group.initial.rebalance.delay.ms": 500,
        "group.min.session.timeout.ms": 1000,
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
        members = [Member("ck", c.bootstrap, topic, group, f"m{i}", log_dir=tmp_path, session_timeout_ms=10_000)
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
