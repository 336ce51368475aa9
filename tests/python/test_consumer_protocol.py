"""KIP-848's consumer group protocol (`group.protocol=consumer`) with librdkafka against one
node: the broker assigns, a member that joins takes partitions from the others without
stopping them, and bad heartbeats get Kafka's error codes over a real socket.

Members run as separate processes (group_member.py, client "ck848"); what they read is checked
with the history checker.
"""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, Producer

from checker import Acked, check
from clients import ck_admin, ck_create_topic, ck_produce, make_value, unique_topic
from kafka_wire import Conn, api_versions, consumer_group_heartbeat
from members import Member, group_reads, wait_until
from test_cli import ctl, js, ok
from test_groups_cluster import find_coordinator

# A heartbeat every second, so a move takes at least one (the newcomer's second heartbeat
# collects what the others released): long enough to see the others read meanwhile.
SHOAL_OVERRIDES = {
    "offsets.topic.num.partitions": 10,
    "group.consumer.heartbeat.interval.ms": 1000,
    "group.consumer.min.heartbeat.interval.ms": 100,
    "group.consumer.session.timeout.ms": 6000,
    "group.consumer.min.session.timeout.ms": 1000,
    # Classic members (the online migration test) with short sessions and a quick first
    # rebalance.
    "group.min.session.timeout.ms": 1000,
    "group.initial.rebalance.delay.ms": 500,
}

FENCED_MEMBER_EPOCH = 110
UNRELEASED_INSTANCE_ID = 111
UNSUPPORTED_ASSIGNOR = 112
UNKNOWN_MEMBER_ID = 25
INVALID_REQUEST = 42
GROUP_ID_NOT_FOUND = 69
INVALID_REGULAR_EXPRESSION = 128


class SteadyProducer:
    """Produces small batches until stopped (bounded: at most `limit` records or `max_s`)."""

    def __init__(self, bootstrap: str, topic: str, *, per_tick: int = 60, tick_s: float = 0.05,
                 limit: int = 60_000, max_s: float = 90.0):
        self.acked: list[Acked] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                            "enable.idempotence": True})
        self._args = (topic, per_tick, tick_s, limit, max_s)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        topic, per_tick, tick_s, limit, max_s = self._args
        deadline = time.monotonic() + max_s
        sent = 0
        while not self._stop.is_set() and sent < limit and time.monotonic() < deadline:
            for _ in range(per_tick):
                seq = sent

                def done(err, msg, seq=seq):
                    with self._lock:
                        if err is not None:
                            self.errors.append(str(err))
                        else:
                            self.acked.append(Acked(f"s-{seq:08d}", msg.partition(), msg.offset(), seq=seq))

                self._p.produce(topic, value=make_value("s", seq), on_delivery=done)
                sent += 1
            self._p.poll(0)
            time.sleep(tick_s)
        self._p.flush(60)

    def stop(self) -> list[Acked]:
        self._stop.set()
        self._thread.join(90)
        with self._lock:
            return sorted(self.acked, key=lambda a: a.seq)


@pytest.mark.timeout(240)
def test_three_members_share_six_partitions_and_a_join_pauses_only_what_moves(shoal, tmp_path):
    topic = unique_topic("kip848")
    group = f"g-{topic}"
    ck_create_topic(shoal.bootstrap, topic, partitions=6)
    members = [Member("ck848", shoal.bootstrap, topic, group, f"m{i}", log_dir=tmp_path) for i in range(2)]
    producer = None
    try:
        wait_until(lambda: all(len(m.assignment() or []) == 3 for m in members), 60,
                   "three partitions for each of two members", members)
        producer = SteadyProducer(shoal.bootstrap, topic)
        wait_until(lambda: len(members[0].records()) + len(members[1].records()) >= 600, 60,
                   "the first records consumed", members)
        before = {m.name: set(m.assignment()) for m in members}
        t_join = time.monotonic()
        members.append(Member("ck848", shoal.bootstrap, topic, group, "m2", log_dir=tmp_path))
        wait_until(lambda: all(len(m.assignment() or []) == 2 for m in members), 60,
                   "two partitions each", members)
        t_settled = time.monotonic()
        assert sorted(p for m in members for p in m.assignment()) == list(range(6))

        moved = set(members[2].assignment())
        # Uniform and sticky: the newcomer takes one partition from each.
        assert all(len(before[m.name] & moved) == 1 for m in members[:2]), (before, moved)
        for m in members[:2]:
            revoked = {p for batch in m.revocations_since(t_join) for p in batch}
            kept = before[m.name] - moved
            # Only the partitions that went to the new member paused; the rest were never
            # revoked (the classic protocol revokes every partition of every member).
            assert revoked == before[m.name] & moved, (m.name, revoked, before[m.name], moved)
            assert set(m.assignment()) == kept
        # And the members that kept partitions went on reading them while the group moved.
        kept_all = {p for m in members[:2] for p in m.assignment()}
        during = [e for m in members[:2] for e in m.snapshot()
                  if e["event"] == "records" and t_join <= e["t"] <= t_settled
                  and any(r[1] in kept_all for r in e["recs"])]
        assert during, f"no kept partition was read in the {t_settled - t_join:.2f} s the move took"
        print(f"join settled in {t_settled - t_join:.2f} s; {len(during)} batches of kept partitions read meanwhile")

        acked = producer.stop()
        assert not producer.errors, producer.errors[:3]
        producer = None
        wait_until(lambda: {(p, o) for m in members for _, p, o in m.records()}
                   >= {(a.partition, a.offset) for a in acked}, 60, "every record consumed", members)
        reads = group_reads({m.name: m.snapshot() for m in members})
        assert not reads.steps_back, f"a member stepped back: {reads.steps_back[:5]}"
        rep = check(acked, reads.seen, by_key=False)
        assert rep.ok and not rep.unacked, rep.summary()
        # A record is read twice only on a partition that moved (read, then handed over
        # before its commit landed).
        assert all(p in moved for _, p, _ in reads.repeats), reads.repeats[:5]

        admin = ck_admin(shoal.bootstrap)  # must outlive the future
        d = admin.describe_consumer_groups([group], request_timeout=20)[group].result(timeout=30)
        assert len(d.members) == 3
        assert sorted(tp.partition for m in d.members for tp in m.assignment.topic_partitions) == list(range(6))

        # shoalctl shows each member's epoch and target beside what it owns.
        shown = js(ctl(shoal, "group", "describe", group, "-o", "json"))
        assert shown["type"] == "consumer" and shown["state"] == "Stable", shown
        assert shown["group_epoch"] == shown["assignment_epoch"] == 3, shown
        for m in shown["members"]:
            assert m["member_epoch"] == 3, m
            assert m["assignment"] == m["target_assignment"] and len(m["assignment"]) == 2, m
        table = ok(ctl(shoal, "group", "describe", group))
        assert "group epoch 3, assignment epoch 3, assignor uniform" in table, table
        assert "TARGET" in table.splitlines()[1], table

        # The newcomer leaves (a clean close): the others only gain partitions, none revoked.
        kept = {m.name: set(m.assignment()) for m in members[:2]}
        t_leave = time.monotonic()
        members[2].stop()
        wait_until(lambda: all(len(m.assignment() or []) == 3 for m in members[:2]), 60,
                   "three partitions each again", members[:2])
        for m in members[:2]:
            assert m.revocations_since(t_leave) == [], (m.name, m.revocations_since(t_leave))
            assert set(m.assignment()) > kept[m.name], (m.name, m.assignment(), kept[m.name])
    finally:
        if producer is not None:
            producer.stop()
        for m in members:
            m.stop()


@pytest.mark.timeout(120)
def test_a_regex_subscription_follows_the_topics_it_matches(shoal):
    prefix = unique_topic("kip848re")
    for i in range(2):
        ck_create_topic(shoal.bootstrap, f"{prefix}-{i}", partitions=2)
    ck_create_topic(shoal.bootstrap, f"x{prefix}", partitions=2)  # matches only a prefix
    c = Consumer({"bootstrap.servers": shoal.bootstrap, "group.id": f"g-{prefix}",
                  "group.protocol": "consumer", "topic.metadata.refresh.interval.ms": 1000,
                  "auto.offset.reset": "earliest"})
    try:
        c.subscribe([f"^{prefix}-.*"])

        def assigned() -> set[tuple[str, int]]:
            c.poll(0.2)
            return {(tp.topic, tp.partition) for tp in c.assignment()}

        want = {(f"{prefix}-{i}", p) for i in range(2) for p in range(2)}
        wait_until(lambda: assigned() == want, 60, f"the matching topics assigned: {want}")
        ck_create_topic(shoal.bootstrap, f"{prefix}-2", partitions=1)
        want |= {(f"{prefix}-2", 0)}
        wait_until(lambda: assigned() == want, 60, "a new matching topic assigned too")
    finally:
        c.close()


@pytest.mark.timeout(120)
def test_bad_heartbeats_get_kafka_codes_over_a_socket(shoal):
    topic = unique_topic("kip848-bad")
    group = f"g-{topic}"
    ck_create_topic(shoal.bootstrap, topic, partitions=2)
    # FindCoordinator creates __consumer_offsets; one node coordinates everything.
    wait_until(lambda: find_coordinator(shoal, group) >= 0, 30, "a coordinator")
    with Conn("127.0.0.1", shoal.kafka_port, timeout=15) as conn:
        def beat(member: str, epoch: int, **kw):
            return consumer_group_heartbeat(conn, group, member, epoch, **kw)

        joined = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            joined = beat("member-a", 0, topics=[topic], owned={}, rebalance_timeout_ms=30_000)
            if joined.error_code == 0:
                break
            time.sleep(0.2)  # COORDINATOR_NOT_AVAILABLE until the offsets topic is there
        assert joined is not None and joined.error_code == 0, joined
        assert joined.member_id == "member-a" and joined.member_epoch >= 1
        assert joined.heartbeat_interval_ms == 1000
        assert joined.assignment is not None and sum(len(p) for p in joined.assignment.values()) == 2
        epoch = joined.member_epoch
        owned = joined.assignment

        # (what, answer, expected code)
        cases = [
            ("an epoch from the future", beat("member-a", epoch + 5, owned=owned), FENCED_MEMBER_EPOCH),
            ("an unknown member", beat("member-z", 3), UNKNOWN_MEMBER_ID),
            ("a join without a rebalance timeout", beat("member-b", 0, topics=[topic], owned={}), INVALID_REQUEST),
            ("a join that claims partitions", beat("member-b", 0, topics=[topic], owned=owned,
                                                   rebalance_timeout_ms=1000), INVALID_REQUEST),
            ("an assignor the broker lacks", beat("member-b", 0, topics=[topic], owned={}, rebalance_timeout_ms=1000,
                                                  server_assignor="sticky"), UNSUPPORTED_ASSIGNOR),
            ("an epoch below -2", beat("member-a", -3), INVALID_REQUEST),
            ("v1 without a member id", beat("", 0, topics=[topic], owned={}, rebalance_timeout_ms=1000),
             INVALID_REQUEST),
            ("a regular expression that does not compile",
             beat("member-b", 0, topics=[], owned={}, rebalance_timeout_ms=1000, regex="(unclosed"),
             INVALID_REGULAR_EXPRESSION),
            ("a member id past what a record key holds",
             beat("m" * 40_000, 0, topics=[topic], owned={}, rebalance_timeout_ms=1000), INVALID_REQUEST),
            ("a regular expression past its bound",
             beat("member-b", 0, topics=[], owned={}, rebalance_timeout_ms=1000, regex="a" * 5000),
             INVALID_REGULAR_EXPRESSION),
        ]
        for what, answer, code in cases:
            assert answer.error_code == code, (what, answer)
            assert answer.error_message, what
        # The member is still in the group at its epoch.
        ok = beat("member-a", epoch, owned=owned)
        assert (ok.error_code, ok.member_epoch) == (0, epoch), ok

        # v0: the coordinator names the member.
        named = beat("", 0, topics=[topic], owned={}, rebalance_timeout_ms=30_000, version=0)
        assert named.error_code == 0 and named.member_id, named

        # Static membership: a second incarnation while the first holds the instance id.
        first = beat("static-1", 0, topics=[topic], owned={}, rebalance_timeout_ms=30_000, instance_id="i-1")
        assert first.error_code == 0, first
        second = beat("static-2", 0, topics=[topic], owned={}, rebalance_timeout_ms=30_000, instance_id="i-1")
        assert second.error_code == UNRELEASED_INSTANCE_ID, second

        # A member that leaves is gone; a heartbeat of a group nobody made is refused.
        left = beat("member-a", -1)
        assert (left.error_code, left.member_epoch) == (0, -1), left
        assert beat("member-a", epoch, owned=owned).error_code == UNKNOWN_MEMBER_ID
        assert consumer_group_heartbeat(conn, f"{group}-none", "x", 1).error_code == GROUP_ID_NOT_FOUND


@pytest.mark.timeout(120)
def test_api_versions_offer_the_consumer_protocol_only_where_enabled(shoal, shoal_factory):
    """ConsumerGroupHeartbeat (68) and ConsumerGroupDescribe (69) are offered unless
    `group.coordinator.rebalance.protocols` leaves out `consumer`; then librdkafka's
    `group.protocol=consumer` has nothing to speak to, as with Kafka. The KIP-714 telemetry
    APIs (71, 72) are not offered, as Kafka does without a metrics plugin: clients never push."""
    with Conn("127.0.0.1", shoal.kafka_port, timeout=10) as conn:
        apis = api_versions(conn).apis
    assert {68, 69} <= set(apis), apis
    assert apis[68] == (0, 1) and apis[69] == (0, 1), (apis[68], apis[69])
    assert not {71, 72} & set(apis), "telemetry is not offered"

    classic = shoal_factory({"group.coordinator.rebalance.protocols": "classic"})
    with Conn("127.0.0.1", classic.kafka_port, timeout=10) as conn:
        apis = api_versions(conn).apis
    assert not {68, 69} & set(apis), apis
    assert 11 in apis, "JoinGroup is still offered"


def consume_ids(conf: dict, topic: str, want: int, timeout_s: float = 60.0) -> list[str]:
    """Record ids a fresh consumer of `conf` reads (committing each batch), until `want`."""
    c = Consumer({**conf, "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    ids: list[str] = []
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + timeout_s
        while len(ids) < want and time.monotonic() < deadline:
            msgs = c.consume(num_messages=500, timeout=0.5)
            batch = [m.value().split(b"|", 1)[0].decode() for m in msgs if m.error() is None]
            if batch:
                ids.extend(batch)
                c.commit(asynchronous=False)
    finally:
        c.close()
    return ids


@pytest.mark.timeout(180)
def test_a_classic_group_moves_to_the_consumer_protocol_with_its_commits(shoal):
    """A classic group whose members have left becomes a consumer group at the first
    `group.protocol=consumer` join, and starts from the classic group's commits: nothing lost,
    nothing read again. (A group with members still in it does not move yet: docs/groups.md.)"""
    topic = unique_topic("kip848-move")
    group = f"g-{topic}"
    ck_create_topic(shoal.bootstrap, topic, partitions=2)
    first = ck_produce(shoal.bootstrap, topic, 300, prefix="a", conf={"acks": "all"})
    assert not first.errors, first.errors[:3]
    base = {"bootstrap.servers": shoal.bootstrap, "group.id": group}
    classic = consume_ids({**base, "session.timeout.ms": 6000}, topic, 300)
    assert sorted(classic) == sorted(a.id for a in first.acked)

    second = ck_produce(shoal.bootstrap, topic, 200, prefix="b", conf={"acks": "all"})
    assert not second.errors, second.errors[:3]
    moved = consume_ids({**base, "group.protocol": "consumer"}, topic, 200)
    assert sorted(moved) == sorted(a.id for a in second.acked), "read from the classic commits on"

    shown = js(ctl(shoal, "group", "describe", group, "-o", "json"))
    assert shown["type"] == "consumer", shown
    ends = {}
    for a in first.acked + second.acked:
        ends[a.partition] = max(ends.get(a.partition, 0), a.offset + 1)
    assert {o["partition"]: o["committed_offset"] for o in shown["offsets"]} == ends, shown


def unconfirmed_reads(members: list[Member]) -> set[tuple[int, int]]:
    """(partition, offset) of every batch whose commit did not return: the only reads another
    member may repeat."""
    out: set[tuple[int, int]] = set()
    for m in members:
        pending: list[tuple[int, int]] = []
        for e in m.snapshot():
            if e["event"] == "records":
                out.update(pending)
                pending = [(p, o) for _, p, o in e["recs"]]
            elif e["event"] == "committed":
                pending = []
        out.update(pending)
    return out


@pytest.mark.timeout(420)
@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
def test_a_live_classic_group_rolls_to_the_consumer_protocol_and_back(shoal, tmp_path, static):
    """Kafka 4.x's online migration: three classic librdkafka members under steady production
    are replaced one at a time by `group.protocol=consumer` members (the group becomes a
    consumer group at the first, its classic members assigned by the coordinator meanwhile),
    then rolled back one at a time (the group is classic again when the last consumer-protocol
    member goes). Dynamic members: each new process starts before the old one stops and leaves.
    Static ones (`group.instance.id`): a rolling restart, each process stopped (it does not
    leave) and started again with the other protocol under its instance id, taking its
    place. Nothing is lost, no committed record is read again, and the commits carry over
    both ways."""
    topic = unique_topic("kip848-roll")
    group = f"g-{topic}"
    ck_create_topic(shoal.bootstrap, topic, partitions=6)
    live: list[Member] = []
    gone: list[Member] = []
    producer = None
    serial = iter(range(100))

    def start(client: str, instance: str | None = None) -> Member:
        m = Member(client, shoal.bootstrap, topic, group, f"{client}-{next(serial)}",
                   log_dir=tmp_path, session_timeout_ms=6000, max_seconds=300,
                   instance_id=instance)
        m.instance = instance
        live.append(m)
        return m

    def stop(m: Member) -> None:
        m.stop()
        live.remove(m)
        gone.append(m)

    def shared_by(members: list[Member], each: int | None) -> bool:
        got = [m.assignment() or [] for m in members]
        return sorted(p for a in got for p in a) == list(range(6)) and (
            each is None or all(len(a) == each for a in got))

    def group_type() -> str:
        return js(ctl(shoal, "group", "describe", group, "-o", "json"))["type"]

    try:
        for i in range(3):
            start("ck", f"{topic}-i{i}" if static else None)
        wait_until(lambda: shared_by(live, 2), 60, "two partitions for each classic member", live)
        assert group_type() == "classic"
        producer = SteadyProducer(shoal.bootstrap, topic, max_s=240)
        wait_until(lambda: sum(len(m.records()) for m in live) >= 300, 60,
                   "the first records consumed", live)

        for step, (old_client, new_client) in enumerate([("ck", "ck848")] * 3 + [("ck848", "ck")] * 3):
            old = next(m for m in live if m.name.startswith(old_client + "-"))
            if static:
                stop(old)
                new = start(new_client, old.instance)
            else:
                new = start(new_client)
                wait_until(lambda: bool(new.assignment()) and shared_by(live, None), 90,
                           f"step {step}: {new.name} consuming beside the others", live)
                stop(old)
            wait_until(lambda: shared_by(live, 2), 90, f"step {step}: two partitions each", live)
            # A consumer group from the first consumer-protocol join until the last one left.
            want = "classic" if step == 5 else "consumer"
            wait_until(lambda: group_type() == want, 30, f"step {step}: a {want} group")
            if want == "consumer":
                # Classic and consumer-protocol members side by side, each shown as such.
                shown = js(ctl(shoal, "group", "describe", group, "-o", "json"))
                protocols = sorted(m["member_protocol"] for m in shown["members"])
                classic = 2 - step if step < 3 else step - 2
                assert protocols == ["classic"] * classic + ["consumer"] * (3 - classic), shown
            print(f"step {step}: {old.name} -> {new.name}, a {want} group")

        acked = producer.stop()
        assert not producer.errors, producer.errors[:3]
        producer = None
        everyone = gone + live
        wait_until(lambda: {(p, o) for m in everyone for _, p, o in m.records()}
                   >= {(a.partition, a.offset) for a in acked}, 60, "every record consumed", live)
        reads = group_reads({m.name: m.snapshot() for m in everyone})
        assert not reads.steps_back, f"a member stepped back: {reads.steps_back[:5]}"
        rep = check(acked, reads.seen, by_key=False)
        assert rep.ok and not rep.unacked, rep.summary()
        # A record is read again only where the batch holding it was never committed.
        repeated = {(p, o) for _, p, o in reads.repeats}
        assert repeated <= unconfirmed_reads(everyone), sorted(repeated - unconfirmed_reads(everyone))[:5]
        print(f"{len(acked)} records, {len(repeated)} read twice (uncommitted batches)")

        # The classic group's commits are the last ones every member made, through both moves.
        for m in live:
            m.stop()
        ends: dict[int, int] = {}
        for a in acked:
            ends[a.partition] = max(ends.get(a.partition, 0), a.offset + 1)
        shown = js(ctl(shoal, "group", "describe", group, "-o", "json"))
        assert shown["type"] == "classic", shown
        assert {o["partition"]: o["committed_offset"] for o in shown["offsets"]} == ends, shown
    finally:
        if producer is not None:
            producer.stop()
        for m in live:
            m.stop()


@pytest.mark.timeout(180)
def test_group_configs_are_set_described_enforced_and_kept(shoal_factory):
    """KIP-848 group configs (Kafka 4.0's GROUP config resources): a group's own
    consumer.session.timeout.ms and consumer.heartbeat.interval.ms, set through
    confluent-kafka's AdminClient, described with their source, refused with Kafka's codes when
    out of the broker's bounds, given to members in the heartbeat answer, holding a silent
    member to the group's session, and kept across a restart (the metadata log)."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, ResourceType

    import kafka_wire as kw

    node = shoal_factory(SHOAL_OVERRIDES)
    admin = ck_admin(node.bootstrap)
    topic = unique_topic("kip848-cfg")
    group = f"g-{topic}"
    ck_create_topic(node.bootstrap, topic, partitions=2)
    session, interval = "consumer.session.timeout.ms", "consumer.heartbeat.interval.ms"

    def described(name: str) -> dict:
        res = ConfigResource(ResourceType.GROUP, name)
        entries = admin.describe_configs([res], request_timeout=30)[res].result(timeout=30)
        return {k: (e.value, getattr(e.source, "value", e.source)) for k, e in entries.items()}

    def alter(name: str, *entries):
        res = ConfigResource(ResourceType.GROUP, name, incremental_configs=list(entries))
        return admin.incremental_alter_configs([res], request_timeout=30)[res]

    def put(name, value):
        return ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)

    def drop(name):
        return ConfigEntry(name, None, incremental_operation=AlterConfigOpType.DELETE)

    def code_of(fut) -> int:
        with pytest.raises(KafkaException) as ei:
            fut.result(timeout=30)
        return ei.value.args[0].code()

    # Any group id, existing or not: the broker's values, as DEFAULT_CONFIG.
    assert described(group) == {session: ("6000", ConfigSource.DEFAULT_CONFIG.value),
                                interval: ("1000", ConfigSource.DEFAULT_CONFIG.value)}
    alter(group, put(session, "1500"), put(interval, "200")).result(timeout=30)
    assert described(group) == {session: ("1500", ConfigSource.GROUP_CONFIG.value),
                                interval: ("200", ConfigSource.GROUP_CONFIG.value)}
    assert described(f"{group}-other")[session] == ("6000", ConfigSource.DEFAULT_CONFIG.value)

    # (entries, expected code): bounds are the broker's group.consumer.min/max.*.
    for entries, code in [
        ([put(session, "999")], KafkaError.INVALID_CONFIG),  # below min.session (1000)
        ([put(session, "60001")], KafkaError.INVALID_CONFIG),  # above max.session (60000)
        ([put(interval, "1500")], KafkaError.INVALID_CONFIG),  # not below the group's session
        ([put(session, "soon")], KafkaError.INVALID_CONFIG),
        ([put("share.session.timeout.ms", "45000")], KafkaError.INVALID_CONFIG),
        ([put("no.such.config", "1")], KafkaError.INVALID_CONFIG),
    ]:
        assert code_of(alter(group, *entries)) == code, entries
    host, port = node.bootstrap.split(":")
    with kw.Conn(host, int(port)) as conn:
        code, message = kw.incremental_alter_configs_v0(conn, kw.RESOURCE_GROUP, "", [(session, 0, "2000")])
        assert code == KafkaError.INVALID_REQUEST and "Default group" in message, (code, message)
        code, message = kw.incremental_alter_configs_v0(conn, kw.RESOURCE_GROUP, group, [(session, 0, None)])
        assert code == KafkaError.INVALID_REQUEST and "Null value" in message, (code, message)
        # Removing a config the group does not have, even one Kafka does not know, changes nothing.
        assert kw.incremental_alter_configs_v0(conn, kw.RESOURCE_GROUP, group, [("typo.ms", 1, None)]) == (0, None)
        code, configs = kw.describe_configs_v1(conn, kw.RESOURCE_GROUP, group)
        assert (code, configs[session]) == (0, ("1500", 8)), "a refused change changes nothing"
        # An empty list of names is every config, as a null one (Kafka's ConfigHelper).
        assert kw.describe_configs_v1(conn, kw.RESOURCE_GROUP, group, keys=[]) == (code, configs)
        assert kw.describe_configs_v1(conn, kw.RESOURCE_GROUP, group, keys=[interval]) == \
            (0, {interval: ("200", 8)})

    # A member of the group is told the group's interval and held to its session.
    wait_until(lambda: find_coordinator(node, group) >= 0, 30, "a coordinator")
    with Conn("127.0.0.1", node.kafka_port, timeout=15) as conn:
        def join(g: str, member: str):
            deadline = time.monotonic() + 30
            while True:
                answer = consumer_group_heartbeat(conn, g, member, 0, topics=[topic], owned={},
                                                  rebalance_timeout_ms=30_000)
                if answer.error_code == 0 or time.monotonic() > deadline:
                    return answer
                time.sleep(0.2)  # COORDINATOR_NOT_AVAILABLE until the offsets topic loads

        mine = join(group, "m-1")
        other = join(f"{group}-other", "m-1")
        assert (mine.error_code, mine.heartbeat_interval_ms) == (0, 200), mine
        assert (other.error_code, other.heartbeat_interval_ms) == (0, 1000), other
        # Silent for 1.5 s (the group's session) and more: the member is gone; the other
        # group's member (6 s session) is not.
        time.sleep(2.5)
        gone = consumer_group_heartbeat(conn, group, "m-1", mine.member_epoch)
        assert gone.error_code == UNKNOWN_MEMBER_ID, gone
        kept = consumer_group_heartbeat(conn, f"{group}-other", "m-1", other.member_epoch)
        assert kept.error_code == 0, kept

    # shoalctl shows and changes the same configs.
    shown = js(ctl(node, "-o", "json", "group", "config", group))
    assert {c["name"]: (c["value"], c["source"]) for c in shown["configs"]} == {
        session: ("1500", "DYNAMIC_GROUP_CONFIG"), interval: ("200", "DYNAMIC_GROUP_CONFIG")}
    changed = js(ctl(node, "-o", "json", "group", "config", group, "--delete", interval))
    assert {c["name"]: c["source"] for c in changed["configs"]}[interval] == "DEFAULT_CONFIG"

    # Kept in the metadata log: the same after a restart.
    node.restart()
    admin = ck_admin(node.bootstrap)
    assert described(group) == {session: ("1500", ConfigSource.GROUP_CONFIG.value),
                                interval: ("1000", ConfigSource.DEFAULT_CONFIG.value)}
    alter(group, drop(session)).result(timeout=30)
    assert described(group)[session] == ("6000", ConfigSource.DEFAULT_CONFIG.value)
