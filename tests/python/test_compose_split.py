"""deploy/docker-compose.split.yml: three controller-only and three broker-only containers (the
KRaft production layout). Host clients reach the brokers on 127.0.0.1:19092-19094; the
controllers serve no Kafka clients. Skips without a Docker engine."""

from __future__ import annotations

import pytest

from checker import check
from clients import ck_admin, ck_create_topic, unique_topic
from test_chaos import CLUSTER_PORTS, port_in_use
from test_compose import BOOTSTRAP, IMAGE, docker_answers, sh
from workload import IdempotentWorkload, read_all

pytestmark = pytest.mark.skipif(docker_answers() is not None,
                                reason=f"container tests need Docker: {docker_answers()}")


@pytest.fixture(scope="module")
def split():
    busy = [p for p in CLUSTER_PORTS if port_in_use(p)]
    if busy:
        pytest.fail(f"ports {busy} are taken (is `make cluster` or `make compose-up` running?)")
    sh("bash", "deploy/image/build.sh", IMAGE, timeout=600)
    try:
        sh("bash", "deploy/compose.sh", "up", "split", timeout=240)
        yield
    finally:
        sh("bash", "deploy/compose.sh", "clean", "split", timeout=180, check_rc=False)


@pytest.mark.timeout(300)
def test_split_roles_serve_clients_from_the_brokers_only(split):
    topic = unique_topic("split")
    ck_create_topic(BOOTSTRAP, topic, partitions=6, replication_factor=3,
                    config={"min.insync.replicas": "2"})
    md = ck_admin(BOOTSTRAP).list_topics(topic=topic, timeout=10)
    # Only the broker-only nodes (ids 4-6) are brokers; they lead and replicate everything.
    assert sorted(md.brokers) == [4, 5, 6]
    parts = md.topics[topic].partitions.values()
    assert {p.leader for p in parts} == {4, 5, 6}
    assert all(sorted(p.replicas) == [4, 5, 6] for p in parts)
    w = IdempotentWorkload(BOOTSTRAP, topic, 6, rate=3000, max_records=6000).start()
    log = w.finish(timeout=120)
    assert not log.errors, log.errors[:5]
    rep = check(log.acked, read_all(BOOTSTRAP, topic, 6))
    assert rep.ok and rep.observed == 6000, rep.summary()
