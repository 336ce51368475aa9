"""Consumer groups with real clients (confluent-kafka, kafka-python, kcat) against one node.

Members run as separate processes (group_member.py) so one can be SIGKILLed like a crashed
consumer; what each consumed is checked with the history checker: every acknowledged record
read, none twice except what a killed member had not committed yet.
"""

from __future__ import annotations

import dataclasses
import time

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition

from checker import Acked, Observed, check
from clients import ck_admin, ck_create_topic, ck_produce, kcat, unique_topic
from members import Member, group_reads, wait_until

SESSION_TIMEOUT_MS = 3000
SHOAL_OVERRIDES = {
    "offsets.topic.num.partitions": 10,
    "group.initial.rebalance.delay.ms": 1000,
    "group.min.session.timeout.ms": 1000,
}


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    admin = ck_admin(bootstrap)
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])
    result = admin.list_consumer_group_offsets([req], request_timeout=20)[group].result(timeout=30)
    return {tp.partition: tp.offset for tp in result.topic_partitions}


def end_offsets(acked: list[Acked]) -> dict[int, int]:
    ends: dict[int, int] = {}
    for a in acked:
        ends[a.partition] = max(ends.get(a.partition, 0), a.offset + 1)
    return ends


def first_occurrences(records) -> tuple[list[Observed], list[tuple[str, int, int]]]:
    """Observations with each (partition, offset) once, and the repeats."""
    seen, out, repeats = set(), [], []
    for rid, p, o in records:
        if (p, o) in seen:
            repeats.append((rid, p, o))
            continue
        seen.add((p, o))
        out.append(Observed(rid, p, o))
    return out, repeats


@pytest.mark.timeout(240)
@pytest.mark.parametrize("client", ["ck", "kp"])
def test_three_members_share_six_partitions_and_survive_a_sigkilled_member(shoal, tmp_path, client):
    topic = unique_topic(f"grp-{client}")
    group = f"g-{topic}"
    ck_create_topic(shoal.bootstrap, topic, partitions=6)
    members = [Member(client, shoal.bootstrap, topic, group, f"{client}-m{i}", log_dir=tmp_path,
                      session_timeout_ms=SESSION_TIMEOUT_MS) for i in range(3)]
    try:
        # One generation holds all three (group.initial.rebalance.delay.ms): two partitions each.
        wait_until(lambda: all(m.assignment() is not None and len(m.assignment()) == 2 for m in members),
                   60, "two partitions per member", members)
        assert sorted(p for m in members for p in m.assignment()) == list(range(6))

        first = ck_produce(shoal.bootstrap, topic, 3000, prefix="a", conf={"acks": "all"})
        assert not first.errors, first.errors[:3]
        wait_until(lambda: len({(p, o) for m in members for _, p, o in m.records()}) >= 3000,
                   60, "3000 records consumed", members)
        reads = group_reads({m.name: m.snapshot() for m in members})
        assert not reads.repeats, f"read twice while nobody failed: {reads.repeats[:5]}"
        assert not reads.steps_back, f"a member stepped back: {reads.steps_back[:5]}"
        rep = check(first.acked, reads.seen, by_key=False)
        assert rep.ok and not rep.unacked, rep.summary()
        for m in members:
            assert {p for _, p, _ in m.records()} <= set(m.assignment()), f"{m.name} read outside its assignment"

        # SIGKILL one member: it cannot leave, so its partitions move once its session expires.
        victim, survivors = members[0], members[1:]
        lost_partitions = set(victim.assignment())
        killed_at = victim.kill()
        second = ck_produce(shoal.bootstrap, topic, 3000, prefix="b", conf={"acks": "all"})
        assert not second.errors, second.errors[:3]

        def moved() -> bool:
            return sorted(p for m in survivors for p in (m.assignment() or [])) == list(range(6))
        wait_until(moved, SESSION_TIMEOUT_MS / 1000 + 30, "the survivors to take all six partitions", survivors)
        reassigned_at = min(t for m in survivors for t, ps in m.assignments_since(killed_at)
                            if lost_partitions & set(ps))
        assert all(m.revocations_since(killed_at) for m in survivors), "a rebalance revokes first"
        waited = reassigned_at - killed_at
        assert waited >= 0.8 * SESSION_TIMEOUT_MS / 1000, f"partitions moved after {waited:.2f}s, before the session expired"
        assert waited <= SESSION_TIMEOUT_MS / 1000 + 20, f"partitions took {waited:.2f}s to move"

        wait_until(lambda: len({(p, o) for m in members for _, p, o in m.records()}) >= 6000,
                   90, "all 6000 records consumed", survivors)
        reads = group_reads({m.name: m.snapshot() for m in members})
        assert not reads.steps_back, f"a member stepped back within one ownership: {reads.steps_back[:5]}"
        # Both runs number from 0: the second one's sends came later.
        acked = first.acked + [dataclasses.replace(a, seq=a.seq + len(first.acked)) for a in second.acked]
        rep = check(acked, reads.seen, by_key=False)
        assert rep.ok and not rep.unacked, rep.summary()
        # Only what the victim read but had not committed may be read again.
        may_repeat = {(p, o) for _, p, o in victim.uncommitted()}
        unexplained = [r for r in reads.repeats if (r[1], r[2]) not in may_repeat]
        assert not unexplained, f"read twice without a failure to explain it: {unexplained[:5]}"
        # The survivors committed everything: a restart of the group would not re-read.
        ends = end_offsets(first.acked + second.acked)
        wait_until(lambda: committed_offsets(shoal.bootstrap, group, topic, 6) == ends, 30,
                   f"committed offsets to reach the log ends {ends}")
    finally:
        for m in members:
            m.stop()


def consume_some(client: str, bootstrap: str, topic: str, group: str, want: int, *, reset: str = "earliest",
                 timeout: float = 60.0) -> list[tuple[str, int, int]]:
    """Join `group`, read until `want` records, commit them synchronously, close."""
    got: list[tuple[str, int, int]] = []
    deadline = time.monotonic() + timeout
    if client == "ck":
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": reset,
                      "enable.auto.commit": False, "session.timeout.ms": 6000})
        c.subscribe([topic])
        try:
            while len(got) < want and time.monotonic() < deadline:
                for m in c.consume(num_messages=min(500, want - len(got)), timeout=0.5):
                    if m.error() is None:
                        got.append((m.value().split(b"|")[0].decode(), m.partition(), m.offset()))
            if got:
                c.commit(asynchronous=False)
        finally:
            c.close()
    else:
        from kafka import KafkaConsumer
        c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset=reset,
                          enable_auto_commit=False, session_timeout_ms=6000)
        try:
            while len(got) < want and time.monotonic() < deadline:
                batch = c.poll(timeout_ms=500, max_records=min(500, want - len(got)))
                for ms in batch.values():
                    got.extend((m.value.split(b"|")[0].decode(), m.partition, m.offset) for m in ms)
            if got:
                c.commit()
        finally:
            c.close()
    assert len(got) >= want, f"read {len(got)} of {want} in {timeout}s"
    return got


@pytest.mark.timeout(180)
@pytest.mark.parametrize("client", ["ck", "kp"])
def test_commit_stop_restart_resumes_at_committed_offsets(shoal, client):
    topic = unique_topic(f"resume-{client}")
    group = f"g-{topic}"
    ck_create_topic(shoal.bootstrap, topic, partitions=3)
    produced = ck_produce(shoal.bootstrap, topic, 2000, prefix="r", conf={"acks": "all"})
    assert not produced.errors
    first = consume_some(client, shoal.bootstrap, topic, group, 800)
    positions: dict[int, int] = {}
    for _, p, o in first:
        positions[p] = max(positions.get(p, 0), o + 1)
    committed = committed_offsets(shoal.bootstrap, group, topic, 3)
    # kafka-python also commits position 0 of a partition it read nothing from.
    assert {p: max(o, 0) for p, o in committed.items()} == {p: positions.get(p, 0) for p in range(3)}

    # The broker goes down hard; the offsets come back from __consumer_offsets.
    shoal.kill()
    shoal.start()
    wait_until(lambda: committed_offsets(shoal.bootstrap, group, topic, 3) == committed, 30,
               "the committed offsets after the restart")

    rest = consume_some(client, shoal.bootstrap, topic, group, 2000 - len(first))
    starts: dict[int, int] = {}
    for _, p, o in rest:
        starts.setdefault(p, o)
    for p, o in starts.items():
        assert o == positions.get(p, 0), f"partition {p} resumed at {o}, committed {positions.get(p, 0)}"
    seen, repeats = first_occurrences(first + rest)
    assert not repeats, f"re-read after resuming: {repeats[:5]}"
    rep = check(produced.acked, seen, by_key=False)
    assert rep.ok and not rep.unacked, rep.summary()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("client", ["ck", "kp"])
def test_auto_offset_reset_earliest_and_latest(shoal, client):
    topic = unique_topic(f"reset-{client}")
    ck_create_topic(shoal.bootstrap, topic, partitions=1)
    assert not ck_produce(shoal.bootstrap, topic, 10, prefix="old", conf={"acks": "all"}).errors
    early = consume_some(client, shoal.bootstrap, topic, f"early-{topic}", 10, reset="earliest")
    assert [o for _, _, o in early] == list(range(10))

    # latest: a new group starts at the log end; only records produced after it joined arrive.
    # librdkafka shows no position before the first record, so records are produced one at a
    # time until five arrive: none may be old, and none produced after the reset may be missed.
    group = f"late-{topic}"
    if client == "ck":
        c = Consumer({"bootstrap.servers": shoal.bootstrap, "group.id": group, "auto.offset.reset": "latest",
                      "enable.auto.commit": False})
        c.subscribe([topic])
        poll = lambda: [(m.value(), m.offset()) for m in c.consume(num_messages=100, timeout=0.3)
                        if m.error() is None]
        assigned = lambda: bool(c.assignment())
    else:
        from kafka import KafkaConsumer
        c = KafkaConsumer(topic, bootstrap_servers=shoal.bootstrap, group_id=group, auto_offset_reset="latest",
                          enable_auto_commit=False)
        poll = lambda: [(m.value, m.offset) for ms in c.poll(timeout_ms=300).values() for m in ms]
        assigned = lambda: bool(c.assignment())
    try:
        got = []
        deadline = time.monotonic() + 30
        while not assigned() and time.monotonic() < deadline:
            got += poll()
        assert assigned(), "no assignment within 30 s"
        if client == "kp":
            tp = next(iter(c.assignment()))
            assert c.position(tp) == 10, f"latest did not start at the log end: {c.position(tp)}"
        sent = 0
        deadline = time.monotonic() + 30
        while len(got) < 5 and time.monotonic() < deadline:
            assert not ck_produce(shoal.bootstrap, topic, 1, prefix=f"new{sent}", conf={"acks": "all"}).errors
            sent += 1
            got += poll()
        assert len(got) >= 5, f"only {got} arrived of {sent} new records"
        assert all(v.startswith(b"new") for v, _ in got), f"an old record was read: {got}"
        offsets = [o for _, o in got]
        assert offsets[0] >= 10 and offsets == list(range(offsets[0], offsets[0] + len(offsets))), offsets
        if client == "kp":
            assert offsets[0] == 10
    finally:
        c.close()


@pytest.mark.timeout(120)
def test_kcat_joins_a_group_and_commits(shoal):
    topic = unique_topic("kcat-grp")
    group = f"g-{topic}"
    ck_create_topic(shoal.bootstrap, topic, partitions=3)
    produced = ck_produce(shoal.bootstrap, topic, 300, prefix="k", conf={"acks": "all"})
    assert not produced.errors

    def kcat_group(count: int) -> list[tuple[int, int]]:
        out = kcat(["-b", shoal.bootstrap, "-G", group, "-X", "auto.offset.reset=earliest",
                    "-c", str(count), "-f", "%p %o\n", "-q", topic], timeout=60)
        assert out.returncode == 0, out.stderr.decode(errors="replace")
        return [tuple(map(int, line.split())) for line in out.stdout.decode().splitlines() if line.strip()]

    got = kcat_group(300)
    assert sorted(got) == sorted((a.partition, a.offset) for a in produced.acked)
    ends = end_offsets(produced.acked)
    wait_until(lambda: committed_offsets(shoal.bootstrap, group, topic, 3) == ends, 30,
               "kcat's commits to reach the log ends")
    more = ck_produce(shoal.bootstrap, topic, 30, prefix="k2", conf={"acks": "all"})
    assert not more.errors
    again = kcat_group(30)
    assert sorted(again) == sorted((a.partition, a.offset) for a in more.acked), "kcat did not resume"


@pytest.mark.timeout(60)
def test_admin_lists_describes_and_deletes_groups(shoal):
    topic = unique_topic("admin-grp")
    group = f"g-{topic}"
    ck_create_topic(shoal.bootstrap, topic, partitions=2)
    assert not ck_produce(shoal.bootstrap, topic, 10, prefix="d", conf={"acks": "all"}).errors
    consume_some("ck", shoal.bootstrap, topic, group, 10)
    admin = ck_admin(shoal.bootstrap)
    listed = admin.list_consumer_groups(request_timeout=20).result(timeout=30)
    states = {g.group_id: g.state.name for g in listed.valid}
    assert states.get(group) == "EMPTY", states
    described = admin.describe_consumer_groups([group], request_timeout=20)[group].result(timeout=30)
    assert described.state.name == "EMPTY" and not described.members
    admin.delete_consumer_groups([group], request_timeout=20)[group].result(timeout=30)
    listed = admin.list_consumer_groups(request_timeout=20).result(timeout=30)
    assert group not in {g.group_id for g in listed.valid}
    assert committed_offsets(shoal.bootstrap, group, topic, 2) == {0: -1001, 1: -1001}


@pytest.mark.timeout(60)
def test_lag_is_log_end_minus_committed(shoal):
    """Consumer lag as operators (and `kafka-consumer-groups --describe`) compute it: the
    coordinator's committed offsets (OffsetFetch) against each leader's log end (ListOffsets)."""
    from confluent_kafka.admin import OffsetSpec
    topic = unique_topic("lag")
    group = f"g-{topic}"
    ck_create_topic(shoal.bootstrap, topic, partitions=3)
    produced = ck_produce(shoal.bootstrap, topic, 900, prefix="l", conf={"acks": "all"})
    assert not produced.errors
    read = consume_some("ck", shoal.bootstrap, topic, group, 400)
    consumed: dict[int, int] = {}
    for _, p, _ in read:
        consumed[p] = consumed.get(p, 0) + 1
    admin = ck_admin(shoal.bootstrap)
    latest = admin.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(3)},
                                request_timeout=20)
    ends = {tp.partition: f.result(timeout=30).offset for tp, f in latest.items()}
    committed = committed_offsets(shoal.bootstrap, group, topic, 3)
    lag = {p: ends[p] - max(committed[p], 0) for p in range(3)}
    produced_per_partition = end_offsets(produced.acked)
    assert ends == produced_per_partition
    assert lag == {p: produced_per_partition[p] - consumed.get(p, 0) for p in range(3)}
    assert sum(lag.values()) == 900 - len(read)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("client", ["ck", "kp"])
def test_a_restarted_static_member_takes_its_partitions_back_without_a_rebalance(shoal, tmp_path, client):
    """group.instance.id (KIP-345): a member that comes back under the same instance id within
    its session replaces its old self — same partitions, and the others never rebalance."""
    topic = unique_topic(f"static-{client}")
    group = f"g-{topic}"
    ck_create_topic(shoal.bootstrap, topic, partitions=4)
    session_ms = 10_000

    def member(name: str, instance: str) -> Member:
        return Member(client, shoal.bootstrap, topic, group, name, log_dir=tmp_path,
                      session_timeout_ms=session_ms, instance_id=instance)

    a, b = member("a", "instance-a"), member("b", "instance-b")
    members = [a, b]
    try:
        wait_until(lambda: all(m.assignment() is not None and len(m.assignment()) == 2 for m in (a, b)),
                   60, "two partitions each", [a, b])
        # A kafka-python leader that rejoins runs the assignor again and then, once it has
        # fetched metadata, rejoins once more, which rebalances (in Kafka too: a leader's
        # JoinGroup in a Stable group triggers one). Restart the follower, whose return must
        # not disturb anyone. (librdkafka does not say who leads; either way it rejoins quietly.)
        if a.has_led():
            a, b = b, a
        a_partitions = a.assignment()
        killed_at = a.kill()
        back = member("a-again", "instance-b" if a.name == "b" else "instance-a")
        members.append(back)
        wait_until(lambda: back.assignment() is not None and back.assignment() != [], 30,
                   "the restarted member's assignment", [back])
        returned_after = back.assignments_since(killed_at)[-1][0] - killed_at
        assert back.assignment() == a_partitions, "the instance got other partitions"
        assert returned_after < session_ms / 1000, f"took {returned_after:.1f}s: waited for the session"
        time.sleep(1.0)  # a rebalance, had one started, would reach b's heartbeat by now
        assert b.revocations_since(killed_at) == [], "the other member was rebalanced"
        assert b.assignments_since(killed_at) == []
        # Still one generation's worth of members: b and the new incarnation of a.
        admin = ck_admin(shoal.bootstrap)
        described = admin.describe_consumer_groups([group], request_timeout=20)[group].result(timeout=30)
        assert described.state.name == "STABLE"
        assert sorted(m.group_instance_id for m in described.members) == ["instance-a", "instance-b"]
    finally:
        for m in members:
            m.stop()
