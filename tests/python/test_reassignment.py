"""Partition reassignment (KIP-455) on real processes: three controllers and broker-only
nodes 4-7. Moves run under an idempotent acks=all load, through `shoalctl partition
reassign`, and through faults (SIGSTOP of the broker a partition moves to, SIGKILL of the
active controller and of the leader that is leaving); the checker compares every
acknowledged record with what the brokers serve afterwards."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

import kafka_wire as kw
from checker import check
from cluster import (Cluster, broker_states, leader_id, metadata_from, new_cluster_id, wait_for_topics,
                     wait_new_leader)
from conftest import ShoalNode
from test_cli import ctl, ok, one_line_error
from workload import IdempotentWorkload, read_all


@pytest.fixture
def four(tmp_path):
    """Controllers 1-3 and brokers 4-6 running; broker 7 configured but not started."""
    c = Cluster(tmp_path, brokers=4)
    for n in c.nodes[:-1]:
        n.start(wait=False)
    for n in c.nodes[:-1]:
        n.wait_ready()
    yield c
    c.close()


def create(bootstrap: str, topic: str, assignment: list[list[int]]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fut = admin.create_topics([NewTopic(topic, len(assignment), -1, replica_assignment=assignment)],
                              operation_timeout=15, request_timeout=15)[topic]
    fut.result(timeout=20)


def partitions_of(node, topic: str) -> dict[int, tuple[int, list[int], list[int]]]:
    """partition -> (leader, replicas, ISR) as `node` serves them."""
    return {p: (leader, list(replicas), sorted(isr))
            for p, (_, leader, replicas, isr) in metadata_from(node, [topic]).topics[topic].items()}


def moving(node, *args: str) -> list[dict]:
    return json.loads(ok(ctl(node, "-o", "json", "partition", "reassignments", *args)))


def wait_until(what: str, predicate, timeout: float = 60.0, every: float = 0.3):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(every)


def assert_clean(report, log=None) -> None:
    """The checker's verdict; on a failure, with librdkafka's idempotence events."""
    why = report.summary() + (f"\nlibrdkafka idempotence events:\n{log.idempotence_trail()}" if log else "")
    assert not report.lost, why
    assert not report.duplicated, why
    assert not report.misplaced, why
    assert not report.reordered and not report.consume_order, why


def loaded_topic(cluster, topic: str, count: int, rate: int, max_records: int) -> IdempotentWorkload:
    """`topic` with `count` partitions spread over brokers 4-6, under an idempotent acks=all
    load through brokers 5 and 6 that has had some records acknowledged."""
    assert count == 6
    create(cluster.bootstrap, topic, [[4, 5, 6], [5, 6, 4], [6, 4, 5], [4, 6, 5], [5, 4, 6], [6, 5, 4]])
    wait_for_topics(cluster.node(5), [topic])
    load = IdempotentWorkload(cluster.node(5).bootstrap + "," + cluster.node(6).bootstrap, topic, count,
                              rate=rate, max_records=max_records).start()
    wait_until("records acknowledged", lambda: load.acked_count() > rate)
    return load


def start_broker_7(cluster) -> None:
    cluster.node(7).start()
    wait_until("broker 7 unfenced", lambda: broker_states(cluster.node(1)).get(7) is False)


@pytest.mark.timeout(240)
def test_moving_every_partition_off_a_broker_under_load_loses_nothing(four):
    """A fourth broker joins and gets nothing by itself; `partition reassign --wait` moves
    every replica of broker 4 to it while an idempotent producer writes; leadership leaves 4
    where it led. Every partition ends on its target replicas, fully in sync, broker 4 deleted
    its logs, and the checker finds nothing lost, duplicated or reordered."""
    topic, count = "moves", 6
    # Broker 4 leads partitions 0 and 3 and follows in the others.
    assignment = [[4, 5, 6], [5, 6, 4], [6, 4, 5], [4, 6, 5], [5, 4, 6], [6, 5, 4]]
    create(four.bootstrap, topic, assignment)
    wait_for_topics(four.node(4), [topic])
    load = IdempotentWorkload(four.bootstrap, topic, count, rate=1500, max_records=200_000).start()
    wait_until("records acknowledged", lambda: load.acked_count() > 1500)

    new = four.node(7)
    new.start()
    wait_until("broker 7 registered and unfenced", lambda: broker_states(four.node(1)).get(7) is False)
    placed = partitions_of(four.node(5), topic)
    assert all(7 not in replicas for _, replicas, _ in placed.values()), placed

    targets = {p: [7 if b == 4 else b for b in replicas] for p, replicas in enumerate(assignment)}
    args = [f"--move={topic}:{p}={','.join(map(str, t))}" for p, t in targets.items()]
    r = ctl(four.node(5), "partition", "reassign", *args, "--wait", "--wait-timeout-ms", "120000",
            timeout=150)
    assert r.returncode == 0, r.stderr
    assert "started" in r.stdout and "TARGET" in r.stdout, r.stdout
    assert "all 6 moves completed" in r.stderr, r.stderr

    after = wait_until("every partition on its target, all in sync", lambda: (
        (parts := partitions_of(four.node(6), topic))
        and all(replicas == targets[p] and isr == sorted(targets[p]) for p, (_, replicas, isr) in parts.items())
        and parts))
    for p, (leader, _, _) in after.items():
        assert leader != 4 and leader in targets[p], (p, leader)
    assert moving(four.node(6)) == []
    wait_until("broker 4 deleted the moved logs",
               lambda: not list(four.node(4).data_dir.glob(f"{topic}-*")), timeout=20)

    log = load.stop()
    report = check(log.acked, read_all(four.bootstrap, topic, count), by_key=False)
    print(f"{report.summary()}; {len(log.acked)} acknowledged")
    assert len(log.acked) > 1500
    assert_clean(report, log)


@pytest.mark.timeout(240)
def test_a_move_survives_the_controller_and_the_leaving_leader_dying(four):
    """A move to broker 7 while 7 is paused (SIGSTOP: fenced, yet a valid target, as in
    Kafka) cannot complete; the active controller and the leader that is leaving are
    SIGKILLed mid-move. The move is still listed by the new controller's cluster; another
    move is cancelled and its original replicas come back. SIGCONT 7: it catches up, the move
    completes without the dead leader, and no acknowledged record is lost."""
    topic = "failover"
    create(four.bootstrap, topic, [[4, 5, 6], [5, 6, 4]])
    wait_for_topics(four.node(5), [topic])
    new = four.node(7)
    new.start()
    wait_until("broker 7 unfenced", lambda: broker_states(four.node(1)).get(7) is False)

    load = IdempotentWorkload(four.node(5).bootstrap + "," + four.node(6).bootstrap, topic, 2,
                              rate=1000, max_records=200_000).start()
    wait_until("records acknowledged", lambda: load.acked_count() > 1000)
    new.proc.send_signal(signal.SIGSTOP)
    try:
        wait_until("broker 7 fenced", lambda: broker_states(four.node(1)).get(7) is True, timeout=20)
        out = json.loads(ok(ctl(four.node(5), "-o", "json", "partition", "reassign",
                                f"--move={topic}:0=7,5,6", f"--move={topic}:1=5,6,7")))
        assert [(m["partition"], m["result"]) for m in out] == [(0, "started"), (1, "started")], out
        listed = {m["partition"]: m for m in moving(four.node(6))}
        assert listed[0]["adding_replicas"] == [7] and listed[0]["removing_replicas"] == [4], listed
        assert listed[0]["replicas"] == [7, 5, 6, 4], listed

        # Cancel partition 1's move: its replicas go back to the original set.
        out = json.loads(ok(ctl(four.node(5), "-o", "json", "partition", "reassign", "--cancel",
                                f"--move={topic}:1")))
        assert out[0]["result"] == "cancelled", out
        wait_until("partition 1 back on 5,6,4", lambda: sorted(partitions_of(four.node(5), topic)[1][1]) == [4, 5, 6])
        # Nothing left to cancel: a clear error, nothing changed.
        one_line_error(ctl(four.node(5), "partition", "reassign", "--cancel", f"--move={topic}:1"), 1,
                       "NO_REASSIGNMENT_IN_PROGRESS")

        controller = leader_id(four)
        four.node(controller).kill()
        four.node(4).kill()
        wait_new_leader(four, controller, timeout=15)
        wait_until("partition 0 led by a surviving replica",
                   lambda: partitions_of(four.node(5), topic)[0][0] in (5, 6), timeout=30)
        listed = {m["partition"]: m for m in moving(four.node(6))}
        assert listed.get(0, {}).get("adding_replicas") == [7], f"the move must still run: {listed}"
    finally:
        new.proc.send_signal(signal.SIGCONT)

    done = wait_until("partition 0 moved to 7,5,6 and in sync", lambda: (
        (p := partitions_of(four.node(5), topic)[0])[1] == [7, 5, 6] and p[2] == [5, 6, 7] and p),
        timeout=90)
    assert done[0] in (5, 6, 7)
    wait_until("no move left", lambda: moving(four.node(6)) == [])

    log = load.stop()
    survivors = four.node(5).bootstrap + "," + four.node(6).bootstrap
    report = check(log.acked, read_all(survivors, topic, 2), by_key=False)
    print(f"{report.summary()}; {len(log.acked)} acknowledged")
    assert_clean(report, log)


def test_bad_reassignments_are_refused_and_change_nothing(four):
    topic = "bad-moves"
    create(four.bootstrap, topic, [[4, 5], [5, 6]])
    wait_for_topics(four.node(4), [topic])
    before = partitions_of(four.node(4), topic)
    for spec, error in [
        (f"{topic}:0=4,9", "INVALID_REPLICA_ASSIGNMENT"),   # unknown broker
        (f"{topic}:0=4,4", "INVALID_REPLICA_ASSIGNMENT"),   # twice
        (f"{topic}:7=4,5", "UNKNOWN_TOPIC_OR_PARTITION"),
        ("nope:0=4,5", "UNKNOWN_TOPIC_OR_PARTITION"),
    ]:
        one_line_error(ctl(four.node(4), "partition", "reassign", f"--move={spec}"), 1, error)
    one_line_error(ctl(four.node(4), "partition", "reassign", f"--move={topic}:0="), 1, "broker ids")
    one_line_error(ctl(four.node(4), "partition", "reassign", "--disallow-replication-factor-change",
                       f"--move={topic}:0=4,5,6"), 1, "INVALID_REPLICATION_FACTOR")
    assert partitions_of(four.node(4), topic) == before
    assert moving(four.node(4)) == []


@pytest.mark.timeout(300)
def test_grow_balance_and_retire_a_broker_under_load(four):
    """Issue #18's operator story on real processes, under an idempotent acks=all load: a
    fourth broker joins, `cluster balance --execute --wait` gives it its share, `broker
    decommission 4` moves everything off broker 4 (internal topics included), 4 is stopped
    and `broker unregister 4` removes it. Every partition ends fully in sync on brokers 5-7,
    and the checker finds nothing lost, duplicated or reordered."""
    topic, count = "elastic", 6
    load = loaded_topic(four, topic, count, rate=1000, max_records=200_000)
    start_broker_7(four)
    dry = json.loads(ok(ctl(four.node(5), "-o", "json", "cluster", "balance")))
    assert dry["moves"] and all(7 in m["to"] for m in dry["moves"] if set(m["to"]) != set(m["from"])), dry
    assert moving(four.node(5)) == [], "a plan without --execute moves nothing"
    r = ctl(four.node(5), "cluster", "balance", "--execute", "--wait", timeout=150)
    assert r.returncode == 0, r.stderr
    assert "moves completed" in r.stderr, r.stderr
    counts = {b: 0 for b in (4, 5, 6, 7)}
    for _, replicas, isr in partitions_of(four.node(5), topic).values():
        assert sorted(replicas) == isr, (replicas, isr)
        for b in replicas:
            counts[b] += 1
    assert counts[7] >= 3, f"the new broker got its share of {topic}: {counts}"

    r = ctl(four.node(5), "broker", "decommission", "4", timeout=150)
    assert r.returncode == 0, r.stderr
    assert "stop it, then run `shoalctl broker unregister 4`" in r.stderr, r.stderr
    for name in (topic, "__consumer_offsets"):
        parts = partitions_of(four.node(5), name) if name in metadata_from(four.node(5)).topics else {}
        for p, (leader, replicas, isr) in parts.items():
            assert 4 not in replicas and sorted(replicas) == isr and leader in replicas, (name, p, replicas, isr)
    # Still running: it may not be unregistered yet.
    one_line_error(ctl(four.node(5), "broker", "unregister", "4"), 1, "running")
    four.node(4).stop()
    wait_until("broker 4 fenced", lambda: broker_states(four.node(1)).get(4) is True, timeout=20)
    out = json.loads(ok(ctl(four.node(5), "-o", "json", "broker", "unregister", "4")))
    assert out == {"broker": 4, "unregistered": True}, out
    # The broker that answered waited for the change; a follower controller applies it soon after.
    assert 4 not in broker_states(four.node(5))
    wait_until("broker 4 gone from every voter's image",
               lambda: all(4 not in broker_states(four.node(n)) for n in (1, 2, 3)), timeout=10)

    log = load.stop()
    report = check(log.acked, read_all(four.node(5).bootstrap, topic, count), by_key=False)
    print(f"{report.summary()}; {len(log.acked)} acknowledged")
    assert_clean(report, log)
    final = partitions_of(four.node(6), topic)
    assert all(set(replicas) <= {5, 6, 7} and len(replicas) == 3 for _, replicas, _ in final.values()), final


def replica_counts(node, brokers) -> dict[int, int]:
    """broker -> replicas it holds, over every topic (internal ones too)."""
    counts = {b: 0 for b in brokers}
    for parts in metadata_from(node).topics.values():
        for _, _, replicas, _ in parts.values():
            for b in replicas:
                counts[b] = counts.get(b, 0) + 1
    return counts


def all_in_sync(node) -> bool:
    return all(sorted(replicas) == sorted(isr)
               for parts in metadata_from(node).topics.values()
               for _, _, replicas, isr in parts.values())


def set_cluster_config(node, name: str, value: str) -> None:
    """A cluster-wide dynamic broker config (an empty broker name, which Python clients refuse)."""
    conn = kw.Conn("127.0.0.1", node.kafka_port)
    try:
        assert kw.incremental_alter_configs_v0(conn, kw.RESOURCE_BROKER, "", [(name, 0, value)]) == (0, None)
    finally:
        conn.close()


@pytest.mark.timeout(240)
def test_the_continuous_balancer_fills_a_new_broker_but_not_a_cordoned_one(tmp_path):
    """Issue #18's continuous balancer, under an idempotent acks=all load: with
    `shoal.balancer.enabled` turned on while running (a cluster-wide dynamic config), the
    active controller gives a joining broker its share, a few moves per round, through
    reassignment; while that broker is cordoned (`shoalctl broker cordon`, KIP-1066's
    `cordoned.log.dirs`) it gets nothing. Replica counts end within one of each other, every
    partition in sync, and the checker finds nothing lost, duplicated or reordered."""
    topic, count = "drift", 6
    cluster = Cluster(tmp_path, {"shoal.balancer.check.interval.ms": 500,
                                 "shoal.balancer.max.concurrent.moves": 3}, brokers=4)
    try:
        for n in cluster.nodes[:-1]:
            n.start(wait=False)
        for n in cluster.nodes[:-1]:
            n.wait_ready()
        load = loaded_topic(cluster, topic, count, rate=500, max_records=100_000)
        start_broker_7(cluster)
        out = json.loads(ok(ctl(cluster.node(5), "-o", "json", "broker", "cordon", "7")))
        assert out == {"broker": 7, "cordoned": True}, out
        set_cluster_config(cluster.node(5), "shoal.balancer.enabled", "true")
        # Six checks: the balancer would have started moves by now if it ignored the cordon.
        time.sleep(3)
        assert replica_counts(cluster.node(5), (4, 5, 6, 7))[7] == 0, "a cordoned broker gets nothing"
        assert moving(cluster.node(5)) == []

        ok(ctl(cluster.node(5), "broker", "uncordon", "7"))
        wait_until("the balancer fills broker 7 and settles", lambda: (
            (counts := replica_counts(cluster.node(5), (4, 5, 6, 7)))
            and max(counts.values()) - min(counts.values()) <= 1
            and moving(cluster.node(5)) == [] and all_in_sync(cluster.node(5))), timeout=150)

        log = load.stop()
        report = check(log.acked, read_all(cluster.node(5).bootstrap, topic, count), by_key=False)
        print(f"{report.summary()}; {len(log.acked)} acknowledged; counts "
              f"{replica_counts(cluster.node(5), (4, 5, 6, 7))}")
        assert_clean(report, log)
        final = partitions_of(cluster.node(6), topic)
        assert all(len(replicas) == 3 and sorted(replicas) == isr for _, replicas, isr in final.values()), final
    finally:
        cluster.close()


@pytest.mark.timeout(180)
def test_internal_topics_of_a_single_node_cluster_grow_when_brokers_join(tmp_path):
    """Issue #18: a cluster born as one node has `__consumer_offsets` with one replica (the
    single-node rule). When brokers join and `offsets.topic.replication.factor` (3) of them are
    up, the controller grows every partition to 3 replicas through reassignment, without an
    operator: the new replicas copy the partition and join the ISR, the leader stays, and the
    group's committed offsets are still there."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    cluster_id = new_cluster_id()
    first = ShoalNode(tmp_path / "node1", {"cluster.id": cluster_id, "offsets.topic.num.partitions": 6},
                      node_id=1, name="node1")
    voters = f"1@127.0.0.1:{first.controller_port}"
    first.overrides["controller.quorum.voters"] = voters
    joining = [ShoalNode(tmp_path / f"node{i}", name=f"node{i}", node_id=i) for i in (2, 3)]
    for n in joining:
        n.overrides.update({"process.roles": "broker", "listeners": f"PLAINTEXT://127.0.0.1:{n.kafka_port}",
                            "controller.quorum.voters": voters, "cluster.id": cluster_id})
    try:
        first.start()
        producer = Producer({"bootstrap.servers": first.bootstrap})
        for i in range(20):
            producer.produce("grown", value=b"%d" % i)
        assert producer.flush(15) == 0
        consumer = Consumer({"bootstrap.servers": first.bootstrap, "group.id": "g",
                             "enable.auto.commit": False})
        consumer.commit(offsets=[TopicPartition("grown", 0, 17)], asynchronous=False)
        consumer.close()
        offsets = partitions_of(first, "__consumer_offsets")
        assert offsets and all(replicas == [1] for _, replicas, _ in offsets.values()), offsets

        for n in joining:
            n.start()
        grown = wait_until("every __consumer_offsets partition on 3 brokers, all in sync", lambda: (
            (parts := partitions_of(first, "__consumer_offsets"))
            and all(sorted(replicas) == [1, 2, 3] and isr == [1, 2, 3] for _, replicas, isr in parts.values())
            and parts), timeout=90)
        assert all(leader == 1 and replicas[0] == 1 for leader, replicas, _ in grown.values()), grown
        assert moving(first) == []
        consumer = Consumer({"bootstrap.servers": first.bootstrap, "group.id": "g"})
        (committed,) = consumer.committed([TopicPartition("grown", 0)], timeout=15)
        consumer.close()
        assert committed.offset == 17
    finally:
        for n in [*joining, first]:
            n.close()


@pytest.mark.timeout(240)
def test_throttled_moves_copy_no_faster_than_the_throttled_rate(tmp_path):
    """Replication throttles, as Kafka's: a topic's `leader.replication.throttled.replicas`
    (`0:1`: partition 0 when broker 1 leads it) and `follower.replication.throttled.replicas`
    (`0:3`: partition 0's replica on broker 3) name the replicas a move copies, and the brokers'
    dynamic `*.replication.throttled.rate` (set while running: broker 1's own leader rate, the
    cluster-wide default follower rate) bound what those copy while out of the ISR. Each side
    alone holds a 2.5 MB copy to about 250 kB/s, so each move takes seconds, not the fraction
    of a second an unthrottled copy takes; acks=all producers are never held back (the in-sync
    followers are not throttled), and every moved replica ends in sync with every record."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
    rate = 250_000
    cluster = Cluster(tmp_path, {
        # One-second samples, two of them: a burst allowance of about one second's worth.
        "replication.quota.window.num": 2,
        "replication.quota.window.size.seconds": 1,
    })
    try:
        cluster.start()
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        res = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[ConfigEntry(
            "leader.replication.throttled.rate", str(rate), incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=20)
        # The cluster-wide default: an empty resource name, which the Python clients refuse.
        conn = kw.Conn("127.0.0.1", cluster.node(2).kafka_port)
        try:
            assert kw.incremental_alter_configs_v0(conn, kw.RESOURCE_BROKER, "", [
                ("follower.replication.throttled.rate", 0, str(rate))]) == (0, None)
        finally:
            conn.close()
        for topic, replicas, config in (("lead", [1, 2], "leader"), ("follow", [2, 1], "follower"),
                                        ("free", [1, 2], None), ("tool", [1, 2], None)):
            create(cluster.bootstrap, topic, [replicas])
            if config:
                res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[ConfigEntry(
                    f"{config}.replication.throttled.replicas", "0:1" if config == "leader" else "0:3",
                    incremental_operation=AlterConfigOpType.SET)])
                admin.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=20)
        wait_for_topics(cluster.node(1), ["lead", "follow", "free", "tool"])
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5})
        value = b"x" * 1000
        for topic in ("lead", "follow", "free", "tool"):
            for i in range(2500):
                producer.produce(topic, value=value, key=b"%d" % i)
                if i % 500 == 0:
                    producer.poll(0)
        assert producer.flush(60) == 0

        def move(topic: str, target: list[int]) -> float:
            started = time.monotonic()
            r = ctl(cluster.node(1), "partition", "reassign", f"--move={topic}:0={','.join(map(str, target))}",
                    "--wait", "--wait-timeout-ms", "120000", timeout=150)
            assert r.returncode == 0, r.stderr
            return time.monotonic() - started

        free = move("free", [1, 2, 3])
        # The leader's side: broker 1 serves broker 3 no faster than the rate while 3 catches up.
        # Meanwhile acks=all writes to that partition are acknowledged (the ISR is {1, 2}).
        during = []
        t = threading.Thread(target=lambda: during.append(move("lead", [1, 2, 3])))
        t.start()
        acked = 0
        while t.is_alive() and acked < 200:
            producer.produce("lead", value=b"during", key=b"d")
            assert producer.flush(30) == 0
            acked += 1
            time.sleep(0.02)
        t.join(160)
        lead = during[0]
        follow = move("follow", [2, 1, 3])

        # Kafka's tool in one command: with the rates above removed, `partition reassign
        # --throttle` names the moving replicas, sets every involved broker's rates, and removes
        # all of it once the move completed.
        res = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[ConfigEntry(
            "leader.replication.throttled.rate", None, incremental_operation=AlterConfigOpType.DELETE)])
        admin.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=20)
        conn = kw.Conn("127.0.0.1", cluster.node(2).kafka_port)
        try:
            assert kw.incremental_alter_configs_v0(conn, kw.RESOURCE_BROKER, "", [
                ("follower.replication.throttled.rate", 1, None)]) == (0, None)
        finally:
            conn.close()
        started = time.monotonic()
        r = ctl(cluster.node(1), "partition", "reassign", "--move=tool:0=1,2,3", "--throttle", str(rate),
                "--wait", "--wait-timeout-ms", "120000", timeout=150)
        tool = time.monotonic() - started
        assert r.returncode == 0, r.stderr
        assert "throttled to 250000 bytes/s on brokers 1,2,3" in r.stderr and "throttle removed" in r.stderr, r.stderr
        topic_configs = admin.describe_configs([ConfigResource(ResourceType.TOPIC, "tool")])
        left = {k: v.value for k, v in list(topic_configs.values())[0].result(timeout=20).items()
                if "throttled" in k}
        assert left == {"leader.replication.throttled.replicas": "",
                        "follower.replication.throttled.replicas": ""}, left
        for broker in ("1", "2", "3"):
            res = ConfigResource(ResourceType.BROKER, broker)
            rates = admin.describe_configs([res])[res].result(timeout=20)
            assert rates["leader.replication.throttled.rate"].value == "9223372036854775807", broker

        print(f"2.5 MB moves: unthrottled {free:.1f} s, leader-throttled {lead:.1f} s, "
              f"follower-throttled {follow:.1f} s, shoalctl --throttle {tool:.1f} s; "
              f"{acked} acks=all writes during the throttled move")
        # 2.5 MB at 250 kB/s less a one-second burst: about 9 s. Slower is fine; a throttle that
        # did not hold would copy it within a second or two.
        assert lead >= 5, (lead, free)
        assert follow >= 5, (follow, free)
        assert tool >= 5, (tool, free)
        assert acked > 0
        for topic, total in (("lead", 2500 + acked), ("follow", 2500), ("free", 2500), ("tool", 2500)):
            parts = partitions_of(cluster.node(3), topic)
            assert sorted(parts[0][1]) == [1, 2, 3] and parts[0][2] == [1, 2, 3], (topic, parts)
            assert len(read_all(cluster.node(3).bootstrap, topic, 1)) == total, topic
    finally:
        cluster.close()
