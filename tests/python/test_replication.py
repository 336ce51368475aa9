"""Replication across real `shoal` processes (ARCHITECTURE.md "Safety rules" 1-5): acks=all
means every ISR member has the batch, leaders fail over to in-sync replicas without losing an
acknowledged record, a deposed leader cannot get a write acknowledged, ISRs shrink and expand
through the controller, and unclean / preferred elections happen only as configured.

Faults are SIGKILL, SIGSTOP/SIGCONT and SIGTERM of the real processes; every history is
checked by `checker.check` (lost, duplicated, misplaced, reordered), never by eye."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from checker import check
from cluster import SESSION_TIMEOUT_MS, Cluster, create_topic, metadata_from, wait_for_topics
from clients import unique_topic
from kafka_wire import PRODUCE, Conn, parse_produce_v3, produce_v3_body, record_batch_v2
from workload import IdempotentWorkload, read_all, unavailability

PARTITIONS = 6


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    yield c
    c.close()


def leaders(n, topic) -> dict[int, int]:
    return {p: leader for p, (_, leader, _, _) in metadata_from(n, [topic]).topics[topic].items()}


def isrs(n, topic) -> dict[int, list[int]]:
    return {p: sorted(isr) for p, (_, _, _, isr) in metadata_from(n, [topic]).topics[topic].items()}


def wait_until(what: str, cond, timeout: float = 15.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def full_isr(cluster, topic, partitions=PARTITIONS):
    n = next(x for x in cluster.nodes if x.running)
    return wait_until("full ISRs", lambda: all(len(i) == 3 for i in isrs(n, topic).values())
                      and len(isrs(n, topic)) == partitions, timeout=20)


def segment_bytes(node, topic, partition) -> bytes:
    d = node.data_dir / f"{topic}-{partition}"
    return b"".join(p.read_bytes() for p in sorted(d.glob("*.log")))


def assert_clean(report):
    assert not report.lost, report.summary()
    assert not report.duplicated, report.summary()
    assert not report.misplaced, report.summary()
    assert not report.reordered and not report.consume_order, report.summary()


@pytest.mark.timeout(120)
def test_acks_all_reaches_every_replica_byte_for_byte(cluster):
    topic = unique_topic("rf3")
    create_topic(cluster.bootstrap, topic, PARTITIONS, 3, config={"min.insync.replicas": "2"})
    full_isr(cluster, topic)
    w = IdempotentWorkload(cluster.bootstrap, topic, PARTITIONS, rate=20_000, max_records=30_000).start()
    log = w.finish()
    assert len(log.acked) == 30_000 and not log.errors, log.errors[:3]
    report = check(log.acked, read_all(cluster.bootstrap, topic, PARTITIONS), by_key=False)
    assert_clean(report)
    # Every replica holds the leader's bytes exactly (followers copy batches as stored).
    node1 = cluster.nodes[0]
    for p in range(PARTITIONS):
        wait_until(f"partition {p} replicated", lambda p=p: len({segment_bytes(n, topic, p) for n in cluster.nodes}) == 1)
        assert len(segment_bytes(node1, topic, p)) > 0


@pytest.mark.timeout(150)
def test_killing_a_leader_during_produce_loses_nothing(cluster):
    topic = unique_topic("kill")
    create_topic(cluster.bootstrap, topic, PARTITIONS, 3, config={"min.insync.replicas": "2"})
    full_isr(cluster, topic)
    w = IdempotentWorkload(cluster.bootstrap, topic, PARTITIONS, rate=3000).start()
    wait_until("acks", lambda: w.acked_count() > 3000)
    victim = cluster.node(leaders(cluster.nodes[0], topic)[0])
    victim.kill()
    killed_at = time.monotonic()
    wait_until("acks after the kill", lambda: w.acked_count() > 3000 + 6000, timeout=30)
    victim.start()
    full_isr(cluster, topic)
    log = w.stop()
    report = check(log.acked, read_all(cluster.bootstrap, topic, PARTITIONS), by_key=False)
    took = unavailability(log.ack_times, killed_at, set(range(PARTITIONS)))
    print(f"{report.summary()}; every partition took writes again {took:.2f} s after the kill")
    assert_clean(report)
    assert took is not None


@pytest.mark.timeout(150)
def test_a_paused_ex_leader_cannot_get_a_write_acknowledged(cluster):
    topic = unique_topic("paused")
    create_topic(cluster.bootstrap, topic, 1, 3, config={"min.insync.replicas": "2"})
    full_isr(cluster, topic, partitions=1)
    w = IdempotentWorkload(cluster.bootstrap, topic, 1, rate=500).start()
    wait_until("acks", lambda: w.acked_count() > 500)
    old = cluster.node(leaders(cluster.nodes[0], topic)[0])
    watcher = next(n for n in cluster.nodes if n is not old)
    os.kill(old.proc.pid, signal.SIGSTOP)
    try:
        wait_until("a new leader", lambda: leaders(watcher, topic)[0] not in (old.node_id, -1),
                   timeout=SESSION_TIMEOUT_MS / 1000 + 10)
        acked_before = w.acked_count()
        # The client gives up on the paused leader only after request.timeout.ms.
        wait_until("acks from the new leader", lambda: w.acked_count() > acked_before + 500, timeout=30)
    finally:
        os.kill(old.proc.pid, signal.SIGCONT)
    # Straight after resuming, the old leader may still believe it leads at its old epoch.
    # Whatever it answers, a success must mean the record is really committed.
    marker = "stale-leader-write"
    body = produce_v3_body(topic, 0, record_batch_v2([(None, marker.encode())]), acks=-1, timeout_ms=3000)
    with Conn("127.0.0.1", old.kafka_port, timeout=20) as c:
        code = parse_produce_v3(c.roundtrip(PRODUCE, 3, 3, body))[0].error_code
    log = w.stop()
    final = read_all(cluster.bootstrap, topic, 1)
    report = check(log.acked, final, by_key=False)
    assert_clean(report)
    present = any(o.id == marker for o in final)
    print(f"stale leader answered error {code}; marker present: {present}; {report.summary()}")
    assert code != 0 or present, "an acknowledged write to the deposed leader was lost"


@pytest.mark.timeout(150)
def test_isr_shrinks_for_a_stuck_follower_and_expands_when_it_catches_up(tmp_path):
    # A long session (no fencing) and a short replica lag: only the leader's ISR logic acts.
    c = Cluster(tmp_path, overrides={"broker.session.timeout.ms": 60_000, "replica.lag.time.max.ms": 1500})
    c.start()
    try:
        topic = unique_topic("isr")
        create_topic(c.bootstrap, topic, 3, 3)
        full_isr(c, topic, partitions=3)
        leader_of_0 = leaders(c.nodes[0], topic)[0]
        stuck = next(n for n in c.nodes if n.node_id != leader_of_0)
        watcher = next(n for n in c.nodes if n is not stuck)
        w = IdempotentWorkload(c.bootstrap, topic, 3, rate=500, conf={"acks": "all"}).start()
        os.kill(stuck.proc.pid, signal.SIGSTOP)
        try:
            wait_until("the stuck follower out of partition 0's ISR",
                       lambda: stuck.node_id not in isrs(watcher, topic)[0], timeout=20)
            acked = w.acked_count()
            wait_until("acks with the smaller ISR", lambda: w.acked_count() > acked + 200, timeout=20)
        finally:
            os.kill(stuck.proc.pid, signal.SIGCONT)
        wait_until("the follower back in every ISR",
                   lambda: all(stuck.node_id in i for i in isrs(watcher, topic).values()), timeout=30)
        log = w.stop()
        assert_clean(check(log.acked, read_all(c.bootstrap, topic, 3), by_key=False))
    finally:
        c.close()


@pytest.mark.timeout(150)
def test_unclean_election_only_where_the_topic_opts_in(tmp_path):
    # Separate roles, so two brokers can die while the controller quorum stays.
    c = Cluster(tmp_path, brokers=3)
    c.start()
    try:
        a, b, watcher = c.brokers
        clean, unclean = unique_topic("clean"), unique_topic("unclean")
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        futures = admin.create_topics([
            NewTopic(clean, 1, -1, replica_assignment=[[a.node_id, b.node_id]]),
            NewTopic(unclean, 1, -1, replica_assignment=[[a.node_id, b.node_id]],
                     config={"unclean.leader.election.enable": "true"}),
        ], operation_timeout=10)
        for f in futures.values():
            f.result(15)
        wait_for_topics(watcher, [clean, unclean])
        for t in (clean, unclean):
            wait_until("ISR of two", lambda t=t: isrs(watcher, t)[0] == sorted([a.node_id, b.node_id]))
        # B dies: fenced and out of both ISRs; A keeps leading alone. Then A dies too.
        b.kill()
        wait_until("B out of the ISRs", lambda: all(isrs(watcher, t)[0] == [a.node_id] for t in (clean, unclean)),
                   timeout=SESSION_TIMEOUT_MS / 1000 + 10)
        a.kill()
        wait_until("no leader for either", lambda: all(leaders(watcher, t)[0] == -1 for t in (clean, unclean)),
                   timeout=SESSION_TIMEOUT_MS / 1000 + 10)
        # B returns: it may lead the topic that opted in (ISR of itself), never the other.
        b.start()
        wait_until("unclean leader", lambda: leaders(watcher, unclean)[0] == b.node_id)
        assert isrs(watcher, unclean)[0] == [b.node_id]
        time.sleep(1)
        assert leaders(watcher, clean)[0] == -1, "a clean topic must wait for its last in-sync replica"
        a.start()
        wait_until("clean leader back", lambda: leaders(watcher, clean)[0] == a.node_id)
    finally:
        c.close()


@pytest.mark.timeout(150)
def test_sigterm_moves_leadership_before_exit_and_preferred_leaders_return(tmp_path):
    c = Cluster(tmp_path, overrides={"leader.imbalance.check.interval.seconds": 1,
                                     "leader.imbalance.per.broker.percentage": 0})
    c.start()
    try:
        topic = unique_topic("term")
        create_topic(c.bootstrap, topic, PARTITIONS, 3, config={"min.insync.replicas": "2"})
        full_isr(c, topic)
        preferred = {p: replicas[0] for p, (_, _, replicas, _) in metadata_from(c.nodes[0], [topic]).topics[topic].items()}
        w = IdempotentWorkload(c.bootstrap, topic, PARTITIONS, rate=2000).start()
        wait_until("acks", lambda: w.acked_count() > 2000)
        victim = c.nodes[1]
        watcher = c.nodes[0]
        assert victim.node_id in leaders(watcher, topic).values()
        code = victim.stop()
        assert code == 0
        # By the time the process is gone, it leads nothing.
        assert victim.node_id not in leaders(watcher, topic).values(), leaders(watcher, topic)
        acked = w.acked_count()
        wait_until("acks after the controlled shutdown", lambda: w.acked_count() > acked + 2000)
        victim.start()
        wait_until("preferred leaders back", lambda: leaders(watcher, topic) == preferred, timeout=30)
        log = w.stop()
        assert not log.errors, log.errors[:3]
        assert_clean(check(log.acked, read_all(c.bootstrap, topic, PARTITIONS), by_key=False))
    finally:
        c.close()


@pytest.mark.timeout(300)
def test_fault_loop_kills_and_pauses_while_an_idempotent_producer_writes(cluster):
    """The issue's fault test: 60 s of acks=all idempotent writes to 6 partitions (RF=3,
    min.insync.replicas=2) while a bounded fault loop SIGKILLs a random node and restarts it
    every ~10 s, and SIGSTOPs a leader for longer than the session timeout, then resumes it."""
    duration_s = float(os.environ.get("SHOAL_FAULT_SECONDS", "60"))
    rng = random.Random(int(os.environ.get("SHOAL_FAULT_SEED", "7")))
    topic = unique_topic("faults")
    create_topic(cluster.bootstrap, topic, PARTITIONS, 3, config={"min.insync.replicas": "2"})
    full_isr(cluster, topic)
    w = IdempotentWorkload(cluster.bootstrap, topic, PARTITIONS, rate=2000).start()
    started = time.monotonic()
    faults: list[tuple[str, int, float]] = []
    step = 0
    while time.monotonic() - started < duration_s and step < 20:
        time.sleep(max(0.0, started + 10 * (step + 1) - 5 - time.monotonic()))
        alive = [n for n in cluster.nodes if n.running]
        watcher = alive[0]
        if step % 3 == 2:
            # Pause a leader past the session timeout, then resume it.
            lead = leaders(watcher, topic)
            victim = cluster.node(rng.choice(sorted(set(v for v in lead.values() if v >= 0))))
            os.kill(victim.proc.pid, signal.SIGSTOP)
            faults.append(("pause", victim.node_id, time.monotonic()))
            time.sleep(SESSION_TIMEOUT_MS / 1000 + 1.5)
            os.kill(victim.proc.pid, signal.SIGCONT)
        else:
            victim = rng.choice(alive)
            victim.kill()
            faults.append(("kill", victim.node_id, time.monotonic()))
            time.sleep(3)
            victim.start()
        full_isr(cluster, topic)
        step += 1
    log = w.stop()
    final = read_all(cluster.bootstrap, topic, PARTITIONS)
    report = check(log.acked, final, by_key=False)
    lines = [f"faults: {len(faults)}; {report.summary()}; producer errors: {len(log.errors)}"]
    times = []
    for kind, node_id, at in faults:
        took = unavailability(log.ack_times, at, set(range(PARTITIONS)))
        times.append(took)
        lines.append(f"  {kind} node {node_id} at +{at - started:.1f}s: all partitions writable again after "
                     f"{'never' if took is None else f'{took:.2f}s'}")
    print("\n".join(lines))
    assert len(faults) >= 5, "the fault loop did too little"
    assert report.acked > 50_000, f"only {report.acked} acked"
    assert_clean(report)
    assert all(t is not None for t in times), "a partition never took writes again"
