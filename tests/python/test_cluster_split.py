"""Separate roles, as real processes: three controller-only nodes (the metadata quorum, no
Kafka listener) and three broker-only nodes that follow the committed metadata log over
gRPC and reach the active controller from outside the quorum.

Faults are SIGKILL, SIGSTOP and SIGCONT of the real processes; bad configurations are real
starts of the binary that must refuse with a clear message."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from cluster import (SESSION_TIMEOUT_MS, Cluster, broker_states, create_topic, leader_id,
                     metadata_from, quorum, wait_for_topics)
from conftest import ShoalNode, shoal_bin
from test_cli import ctl


@pytest.fixture
def split(tmp_path):
    c = Cluster(tmp_path, brokers=3)
    c.start()
    yield c
    c.close()


def produce(bootstrap: str, topic: str, count: int, timeout: float = 20.0) -> int:
    """Produces `count` acks=all records; returns how many were acknowledged."""
    acked = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "message.timeout.ms": int(timeout * 1000)})
    for i in range(count):
        p.produce(topic, value=f"v{i}".encode(), key=f"k{i}".encode(),
                  on_delivery=lambda err, msg: acked.append(err is None))
    p.flush(timeout + 5)
    return sum(acked)


def count_records(bootstrap: str, topic: str, partitions: int, expected: int, timeout: float = 20.0) -> int:
    """Reads from the start until `expected` records arrived or `timeout` passed (an idle
    window ended too early on a loaded machine: one partition's first fetch came after it)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "split-count",
                  "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        total = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and total < expected:
            batch = c.consume(500, timeout=0.5)
            got = [m for m in batch if m.error() is None]
            total += len(got)
        # A little longer, so that duplicates (more than expected) would show.
        end = time.monotonic() + 1
        while time.monotonic() < end:
            total += sum(1 for m in c.consume(500, timeout=0.2) if m.error() is None)
        return total
    finally:
        c.close()


@pytest.mark.timeout(150)
def test_brokers_follow_the_quorum_and_serve_clients(split):
    # Controllers serve no Kafka clients; only brokers are offered to clients.
    for n in split.brokers:
        create_topic(n.bootstrap, f"via-{n.node_id}")
    names = [f"via-{n.node_id}" for n in split.brokers]
    views = [wait_for_topics(n, names) for n in split.brokers]
    deadline = time.monotonic() + 10
    while True:
        metas = [metadata_from(n) for n in split.brokers]
        if all(sorted(m.brokers) == [4, 5, 6] for m in metas) and all(m.topics == metas[0].topics for m in metas):
            break
        assert time.monotonic() < deadline, f"brokers disagree: {[(sorted(m.brokers), m.topics) for m in metas]}"
        time.sleep(0.2)
    for parts in metas[0].topics.values():
        for err, leader, replicas, isr in parts.values():
            assert err == 0 and leader in (4, 5, 6) and sorted(replicas) == [4, 5, 6]
    assert len(views) == 3
    # Records round-trip through the broker-only nodes, replicated three ways.
    create_topic(split.bootstrap, "data", partitions=3, config={"min.insync.replicas": "2"})
    assert produce(split.bootstrap, "data", 300) == 300
    assert count_records(split.bootstrap, "data", 3, 300) == 300
    # The controllers know the brokers as fetching observers, and as registered brokers.
    leader = split.node(leader_id(split))
    observers = {o["node_id"] for o in quorum(leader)["observers"]}
    assert {4, 5, 6} <= observers, quorum(leader)
    assert broker_states(leader) == {4: False, 5: False, 6: False}
    # A broker-only node has no quorum to describe.
    with pytest.raises(Exception):
        quorum(split.node(4))


@pytest.mark.timeout(240)
def test_losing_the_active_controller_or_a_majority(split):
    create_topic(split.bootstrap, "steady", partitions=3, config={"min.insync.replicas": "2"})
    old = leader_id(split)
    split.node(old).kill()
    killed_at = time.monotonic()
    create_topic(split.bootstrap, "after-failover", timeout=5)
    assert time.monotonic() - killed_at < 5 + 5
    split.node(old).start()

    # Two of three controllers down: admin requests fail cleanly; existing leaders keep
    # serving produce and fetch.
    down = [n for n in split.controllers if n.node_id != leader_id(split)][:1] + \
        [split.node(leader_id(split))]
    for n in down:
        n.kill()
    started = time.monotonic()
    with pytest.raises(Exception):
        create_topic(split.bootstrap, "during-outage", timeout=8)
    assert time.monotonic() - started < 30, "admin request hung instead of failing"
    assert produce(split.bootstrap, "steady", 200) == 200
    assert count_records(split.bootstrap, "steady", 3, 200) == 200
    for n in down:
        n.start(wait=False)
    for n in down:
        n.wait_ready()
    create_topic(split.bootstrap, "after-outage", timeout=10)
    for n in split.brokers:
        wait_for_topics(n, ["steady", "after-failover", "after-outage"])

    # A voter whose disk is wiped (issue #18, KIP-853). "kept" commits on {keeper, wiped}
    # while `stale` is down; then keeper and wiped die, wiped loses its directory, and wiped
    # and stale start. stale's log lacks "kept" and wiped's is empty: were the wiped node's
    # vote counted, stale would lead without "kept". It must not: no leader until keeper is
    # back. Then the wiped node catches up without voting, and `add-voter` gives it its vote.
    controllers = ",".join(f"127.0.0.1:{n.controller_port}" for n in split.controllers)
    assert wait_votes(split, controllers, lambda v: v == "yes"), "voter directories recorded"
    keeper = leader_id(split)
    stale, wiped = [n.node_id for n in split.controllers if n.node_id != keeper]
    split.node(stale).kill()
    create_topic(split.bootstrap, "kept", timeout=10)
    split.node(keeper).kill()
    split.node(wiped).kill()
    shutil.rmtree(split.node(wiped).data_dir)
    split.node(wiped).start(wait=False)
    split.node(stale).start(wait=False)
    deadline = time.monotonic() + 4  # many election timeouts: stale campaigns, never wins
    while time.monotonic() < deadline:
        for n in (stale, wiped):
            try:
                q = quorum(split.node(n))
            except OSError:
                continue
            # (A restarted follower names the leader of its persisted vote until it times out;
            # being elected is what counts.)
            assert q["state"] != "Leader", f"a leader was elected with a wiped voter's vote: {q}"
        time.sleep(0.1)
    split.node(keeper).start()
    assert wait_votes(split, controllers, lambda v: v == "no", voter=wiped), "the wiped voter does not vote"
    assert leader_id(split) != wiped
    r = ctl(split.bootstrap, "-o", "json", "cluster", "quorum", "add-voter", "--id", str(wiped),
            controllers=controllers)
    assert r.returncode == 0, r.stderr
    added = json.loads(r.stdout)
    assert added["voter_id"] == wiped and added["previous_directory_id"] != added["directory_id"], added
    assert wait_votes(split, controllers, lambda v: v == "yes"), "the wiped voter votes again"
    create_topic(split.bootstrap, "after-replace", timeout=10)
    for n in split.brokers:
        wait_for_topics(n, ["kept", "after-replace"])


def wait_votes(split: Cluster, controllers: str, ok, voter: int | None = None, timeout: float = 30.0) -> bool:
    """Waits until `ok(votes)` holds for `voter` (or every voter) in `cluster quorum`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = ctl(split.bootstrap, "-o", "json", "cluster", "quorum", controllers=controllers)
        if r.returncode == 0:
            voters = json.loads(r.stdout)["voters"]
            if all(ok(v["votes"]) for v in voters if voter in (None, v["node_id"])):
                return True
        time.sleep(0.3)
    return False


@pytest.mark.timeout(150)
def test_a_paused_broker_is_fenced_and_comes_back(split):
    create_topic(split.bootstrap, "fence", partitions=6)
    victim, watcher = split.node(5), split.node(4)
    os.kill(victim.proc.pid, signal.SIGSTOP)
    paused_at = time.monotonic()
    try:
        deadline = paused_at + SESSION_TIMEOUT_MS / 1000 + 5
        while True:
            meta = metadata_from(watcher, ["fence"])
            leaders = [leader for _, leader, _, _ in meta.topics["fence"].values()]
            if 5 not in meta.brokers and 5 not in leaders:
                break
            assert time.monotonic() < deadline, f"not fenced: brokers {sorted(meta.brokers)}, leaders {leaders}"
            time.sleep(0.1)
        assert all(leader >= 0 for leader in leaders), "every partition needs a live leader"
        assert broker_states(split.node(leader_id(split)))[5] is True
    finally:
        os.kill(victim.proc.pid, signal.SIGCONT)
    deadline = time.monotonic() + 15
    while 5 not in metadata_from(watcher).brokers or victim.readyz() != 200:
        assert time.monotonic() < deadline, "resumed broker did not come back"
        time.sleep(0.2)
    assert broker_states(split.node(leader_id(split))) == {4: False, 5: False, 6: False}

    # A killed broker-only node restarts on its data and registers a new incarnation.
    victim.kill()
    victim.start()
    assert 5 in metadata_from(watcher).brokers or wait_broker(watcher, 5)


def produce_acked(bootstrap: str, topic: str, first: int, count: int,
                  timeout: float = 30.0) -> dict[int, list[tuple[int, str]]]:
    """Produces values first..first+count (idempotent, acks=all); returns partition ->
    [(offset, value)] of the acknowledged ones."""
    acked: dict[int, list[tuple[int, str]]] = {}

    def on_delivery(err, msg):
        if err is None:
            acked.setdefault(msg.partition(), []).append((msg.offset(), msg.value().decode()))

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "message.timeout.ms": int(timeout * 1000)})
    for i in range(first, first + count):
        p.produce(topic, value=str(i).encode(), key=str(i).encode(), on_delivery=on_delivery)
        p.poll(0)
    p.flush(timeout + 5)
    return acked


@pytest.mark.timeout(240)
def test_a_wiped_broker_re_replicates_everything_and_rejoins_every_isr(split):
    """A broker-only node SIGKILLed, its data directory deleted, started again with the same
    id (issue #18): it registers as a new incarnation, fetches every partition it holds from
    the leaders and rejoins every ISR with no operator action. Then the other two brokers are
    SIGKILLed: it leads every partition alone and serves every acknowledged record, once and
    in order: it holds the data, not just an ISR entry."""
    topic, partitions = "wiped", 6
    create_topic(split.bootstrap, topic, partitions=partitions)
    wait_for_topics(split.node(4), [topic])
    acked: dict[int, list[tuple[int, str]]] = {}

    def add(more):
        for partition, rows in more.items():
            acked.setdefault(partition, []).extend(rows)

    add(produce_acked(split.bootstrap, topic, 0, 600))
    victim = split.node(6)
    victim.kill()
    shutil.rmtree(victim.data_dir)
    add(produce_acked(split.bootstrap, topic, 600, 300))  # while it is gone
    victim.start()
    add(produce_acked(split.bootstrap, topic, 900, 300))  # while it catches up
    assert sum(len(rows) for rows in acked.values()) == 1200

    deadline = time.monotonic() + 60
    while True:
        parts = metadata_from(split.node(4), [topic]).topics[topic]
        if len(parts) == partitions and all(6 in isr for _, _, _, isr in parts.values()):
            break
        assert time.monotonic() < deadline, f"broker 6 not back in every ISR: {parts}"
        time.sleep(0.3)

    for n in (split.node(4), split.node(5)):
        n.kill()
    deadline = time.monotonic() + 30
    while True:
        parts = metadata_from(victim, [topic]).topics[topic]
        if all(leader == 6 for _, leader, _, _ in parts.values()):
            break
        assert time.monotonic() < deadline, f"broker 6 does not lead everything: {parts}"
        time.sleep(0.2)

    c = Consumer({"bootstrap.servers": victim.bootstrap, "group.id": "wiped-check",
                  "enable.auto.commit": False})
    got: dict[int, list[tuple[int, str]]] = {}
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + 30
        while sum(len(r) for r in got.values()) < 1200 and time.monotonic() < deadline:
            for m in c.consume(500, timeout=0.5):
                if m.error() is None:
                    got.setdefault(m.partition(), []).append((m.offset(), m.value().decode()))
    finally:
        c.close()
    for partition, rows in acked.items():
        served = got.get(partition, [])
        offsets = [o for o, _ in served]
        assert offsets == sorted(set(offsets)), f"partition {partition}: reordered or duplicated"
        missing = set(rows) - set(served)
        assert not missing, f"partition {partition}: {len(missing)} acknowledged records lost"


def test_a_wiped_broker_that_was_the_last_in_sync_replica_is_not_elected(split):
    """The case a directory id exists for (issue #18, KIP-858's idea): broker 4 is the only
    in-sync replica of a partition (broker 5, the other replica, is down), acknowledges
    records alone, then loses its disk and comes back with the same id. Without directory
    ids it would be elected again, with an empty log, and the acknowledged records would be
    silently gone. With them the controller sees a new directory, takes it out of the ISR
    even as its last member, and the partition stays offline (no leader, empty ISR) instead;
    the data is lost to that disk either way, but nothing pretends otherwise."""
    from confluent_kafka.admin import AdminClient, NewTopic
    topic = "last-isr"
    admin = AdminClient({"bootstrap.servers": split.bootstrap})
    admin.create_topics([NewTopic(topic, 1, -1, replica_assignment=[[4, 5]])],
                        operation_timeout=15)[topic].result(timeout=20)
    wait_for_topics(split.node(6), [topic])
    split.node(5).kill()
    deadline = time.monotonic() + 30
    while metadata_from(split.node(6), [topic]).topics[topic][0][3] != [4]:
        assert time.monotonic() < deadline, "broker 5 never left the ISR"
        time.sleep(0.2)
    assert produce(split.node(4).bootstrap, topic, 50) == 50

    victim = split.node(4)
    victim.kill()
    shutil.rmtree(victim.data_dir)
    victim.start()
    wait_broker(split.node(6), 4, timeout=20)
    # Give the controller every chance to (wrongly) elect it: registered, unfenced, caught up.
    deadline = time.monotonic() + 20
    while broker_states(split.node(leader_id(split))).get(4) is not False:
        assert time.monotonic() < deadline, "broker 4 never unfenced"
        time.sleep(0.2)
    _, leader, replicas, isr = metadata_from(split.node(6), [topic]).topics[topic][0]
    assert (leader, isr) == (-1, []), f"a wiped last ISR member must not lead: leader {leader} isr {isr}"
    assert list(replicas) == [4, 5]
    assert any("its disk was replaced" in split.node(c).log_path.read_text(errors="replace")
               for c in (1, 2, 3)), "the controller says why"


def wait_broker(n: ShoalNode, broker_id: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while broker_id not in metadata_from(n).brokers:
        assert time.monotonic() < deadline, f"broker {broker_id} not back"
        time.sleep(0.2)
    return True


def refuses(tmp_path, name: str, overrides: dict, node_id: int = 9) -> str:
    """Starts the binary with `overrides`; it must exit non-zero within 20 s. Returns its output."""
    n = ShoalNode(tmp_path / name, overrides, node_id=node_id, name=name)
    proc = subprocess.run(n.args(), cwd=n.workdir, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=20, env={k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")})
    out = (proc.stdout + proc.stderr).decode(errors="replace")
    assert proc.returncode != 0, out
    return out


@pytest.mark.timeout(90)
def test_bad_role_configurations_are_refused(tmp_path):
    assert shoal_bin()
    voters = "1@127.0.0.1:1,2@127.0.0.1:2,3@127.0.0.1:3"
    out = refuses(tmp_path, "voter-as-broker", {"process.roles": "broker", "controller.quorum.voters": voters,
                                                "cluster.id": "AAAAAAAAAAAAAAAAAAAAAA"}, node_id=2)
    assert "broker-only node needs an id of its own" in out, out
    out = refuses(tmp_path, "not-a-voter", {"process.roles": "controller", "controller.quorum.voters": voters,
                                            "listeners": "CONTROLLER://127.0.0.1:0", "advertised.listeners": ""})
    assert "is not in controller.quorum.voters" in out, out
    out = refuses(tmp_path, "controller-with-kafka", {
        "process.roles": "controller", "controller.quorum.voters": "9@127.0.0.1:1"})
    assert "serves no Kafka clients" in out, out
    out = refuses(tmp_path, "unformatted-broker", {"process.roles": "broker", "controller.quorum.voters": voters})
    assert "must be told which cluster it joins" in out, out
    out = refuses(tmp_path, "bad-role", {"process.roles": "broker,zookeeper"})
    assert "process.roles" in out and "Invalid value 'zookeeper'; allowed values: broker, controller" in out, out


@pytest.mark.timeout(90)
def test_a_broker_with_another_clusters_data_refuses_to_start(split, tmp_path):
    broker = split.node(6)
    broker.stop()
    other = dict(broker.overrides, **{"cluster.id": "BBBBBBBBBBBBBBBBBBBBBB"})
    n = ShoalNode(broker.workdir, other, node_id=6, name="node6-other")
    n.kafka_port, n.admin_port = broker.kafka_port, broker.admin_port
    proc = subprocess.run(n.args(), cwd=n.workdir, stdin=subprocess.DEVNULL, capture_output=True, timeout=20,
                          env={k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")})
    out = (proc.stdout + proc.stderr).decode(errors="replace")
    assert proc.returncode != 0 and "cluster id mismatch" in out, out
    # Its own cluster id still works.
    broker.start()
