"""Three combined nodes (controller + broker) as real processes: the metadata quorum survives
the loss of its leader and of a majority, admin requests work through any node, and a broker
that stops heartbeating is fenced and comes back.

Each node is the real `shoal` binary on its own 127.0.0.1 ports; faults are SIGKILL, SIGSTOP
and SIGCONT of those processes."""

from __future__ import annotations

import time

import pytest

from cluster import (SESSION_TIMEOUT_MS, Cluster, broker_states, create_topic, leader_id,
                     metadata_from, wait_for_topics, wait_new_leader)


def node(cluster: Cluster, node_id: int):
    return cluster.node(node_id)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    yield c
    c.close()


@pytest.mark.timeout(120)
def test_rf3_topic_through_any_node_and_every_node_agrees(cluster):
    for i, n in enumerate(cluster.nodes):
        create_topic(n.bootstrap, f"any-{i}")
    deadline = time.monotonic() + 10
    while True:
        views = [metadata_from(n) for n in cluster.nodes]
        if all(len(v.brokers) == 3 and all(f"any-{i}" in v.topics for i in range(3)) for v in views) \
                and all(v.topics == views[0].topics for v in views):
            break
        assert time.monotonic() < deadline, f"nodes disagree: {[v.topics for v in views]}"
        time.sleep(0.2)
    for parts in views[0].topics.values():
        for err, leader, replicas, isr in parts.values():
            assert err == 0 and leader in replicas and sorted(replicas) == [1, 2, 3]
    # preferred leaders are spread over the brokers
    leaders = {leader for parts in views[0].topics.values() for _, leader, _, _ in parts.values()}
    assert len(leaders) == 3, leaders


@pytest.mark.timeout(120)
def test_killing_the_active_controller_elects_another(cluster):
    create_topic(cluster.bootstrap, "before")
    old = leader_id(cluster)
    node(cluster, old).kill()
    killed_at = time.monotonic()
    survivors = [n for n in cluster.nodes if n.node_id != old]
    wait_new_leader(cluster, old, timeout=5)
    create_topic(survivors[1].bootstrap, "after-failover", timeout=5)
    assert time.monotonic() - killed_at < 10
    node(cluster, old).start()
    deadline = time.monotonic() + 15
    while "after-failover" not in metadata_from(node(cluster, old)).topics:
        assert time.monotonic() < deadline, "restarted node did not catch up"
        time.sleep(0.2)
    assert "before" in metadata_from(node(cluster, old)).topics


@pytest.mark.timeout(120)
def test_requests_in_flight_to_a_paused_controller_go_to_its_successor(cluster):
    """A paused controller keeps its connections open and answers nothing: a request forwarded
    to it must move to the leader elected in its place, not wait out the 30 s controller
    request timeout (an idempotent producer's first InitProducerId needs a producer id block
    from the controller; librdkafka gave up on it after 5 s again and again)."""
    import os
    import signal
    from kafka_wire import Conn, init_producer_id_v1
    old = leader_id(cluster)
    asker = next(n for n in cluster.nodes if n.node_id != old)
    os.kill(node(cluster, old).proc.pid, signal.SIGSTOP)
    try:
        # Sent at once, so it is forwarded to the paused node before the election.
        with Conn("127.0.0.1", asker.kafka_port, timeout=25) as c:
            err, producer_id, epoch = init_producer_id_v1(c, None)
        assert (err, epoch) == (0, 0) and producer_id >= 0, (err, producer_id, epoch)
        create_topic(asker.bootstrap, "while-paused", rf=2, timeout=20)
        assert wait_new_leader(cluster, old) != old
    finally:
        os.kill(node(cluster, old).proc.pid, signal.SIGCONT)
    wait_for_topics(node(cluster, old), ["while-paused"], timeout=20)


@pytest.mark.timeout(150)
def test_losing_a_majority_fails_admin_cleanly_then_recovers(cluster):
    create_topic(cluster.bootstrap, "kept")
    down = cluster.nodes[:2]
    for n in down:
        n.kill()
    alive = cluster.nodes[2]
    started = time.monotonic()
    with pytest.raises(Exception):
        create_topic(alive.bootstrap, "during-outage", timeout=8)
    assert time.monotonic() - started < 30, "admin request hung instead of failing"
    for n in down:
        n.start(wait=False)
    for n in down:
        n.wait_ready()
    create_topic(cluster.bootstrap, "after-outage", timeout=10)
    for n in cluster.nodes:
        # The create answered once one node applied it; the others follow within moments.
        wait_for_topics(n, ["kept", "after-outage"])


@pytest.mark.timeout(120)
def test_a_paused_broker_is_fenced_and_comes_back(cluster):
    import os
    import signal
    create_topic(cluster.bootstrap, "fence", partitions=6)
    # Pause a broker that is not the controller, so only fencing is exercised.
    ctrl = leader_id(cluster)
    victim = next(n for n in cluster.nodes if n.node_id != ctrl)
    watcher = node(cluster, ctrl)
    os.kill(victim.proc.pid, signal.SIGSTOP)
    paused_at = time.monotonic()
    try:
        deadline = paused_at + SESSION_TIMEOUT_MS / 1000 + 5
        while True:
            meta = metadata_from(watcher, ["fence"])
            leaders = [leader for _, leader, _, _ in meta.topics["fence"].values()]
            if victim.node_id not in meta.brokers and victim.node_id not in leaders:
                break
            assert time.monotonic() < deadline, f"not fenced: brokers {sorted(meta.brokers)}, leaders {leaders}"
            time.sleep(0.1)
        assert all(leader >= 0 for leader in leaders), "every partition needs a live leader"
        assert broker_states(watcher)[victim.node_id] is True, "fenced, yet still registered"
    finally:
        os.kill(victim.proc.pid, signal.SIGCONT)
    deadline = time.monotonic() + 15
    while victim.node_id not in metadata_from(watcher).brokers:
        assert time.monotonic() < deadline, "resumed broker did not come back"
        time.sleep(0.2)
    assert broker_states(watcher) == {1: False, 2: False, 3: False}
