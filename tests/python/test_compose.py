"""The container cluster users run: the image shoal:dev (FROM scratch), deploy/docker-compose.yml
with three combined nodes on a private network, the host reaching them on 127.0.0.1:19092-19094
(EXTERNAL listener) and containers on nodeN:9092 (INTERNAL listener). Faults are the Docker
engine's: `docker kill`, `docker start`, `docker network disconnect` / `connect`.

Needs a Docker engine; every test here skips with the reason when none answers. The cluster
runs under its own project / container prefix (shoaltest) on its own network, and is torn down
with its volumes at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from checker import check
from clients import ck_admin, ck_create_topic, unique_topic
from conftest import REPO
from test_chaos import CLUSTER_PORTS, port_in_use
from workload import IdempotentWorkload, read_all

PREFIX = "shoaltest"
IMAGE = "shoal:dev"
NET = f"{PREFIX}-net"
BOOTSTRAP = "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
ADMIN = {1: 19644, 2: 19645, 3: 19646}
ENV = {**os.environ, "SHOAL_COMPOSE_PREFIX": PREFIX}


def docker_answers() -> str | None:
    """None when a Docker engine answers, else why not."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    try:
        r = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                           capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "docker info timed out"
    if r.returncode != 0:
        return f"no Docker engine answers: {r.stderr.strip()[:200]}"
    return None


pytestmark = pytest.mark.skipif(docker_answers() is not None,
                                reason=f"container tests need Docker: {docker_answers()}")


def sh(*args: str, timeout: float = 120, check_rc: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=ENV, cwd=REPO)
    if check_rc and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} -> {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


def ready(node: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN[node]}/readyz", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def brokers_seen_by(node: int) -> dict[int, bool]:
    """broker id -> fenced, from a node's /v1/brokers."""
    with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN[node]}/v1/brokers", timeout=3) as r:
        body = json.load(r)
    return {b["broker_id"]: b["fenced"] for b in body["brokers"]}


def wait_until(what: str, cond, timeout: float = 60.0, every: float = 0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
        except Exception as e:  # noqa: BLE001 - a node may be down mid-fault
            last = e
        if last is True or (last and not isinstance(last, Exception)):
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def isr_full(topic: str) -> bool:
    md = ck_admin(BOOTSTRAP).list_topics(topic=topic, timeout=5)
    t = md.topics.get(topic)
    return t is not None and t.error is None and bool(t.partitions) and all(
        p.leader >= 0 and len(p.isrs) == len(p.replicas) for p in t.partitions.values())


def leaders(topic: str) -> dict[int, int]:
    md = ck_admin(BOOTSTRAP).list_topics(topic=topic, timeout=5)
    return {p.id: p.leader for p in md.topics[topic].partitions.values()}


@pytest.fixture(scope="module")
def compose():
    busy = [p for p in CLUSTER_PORTS if port_in_use(p)]
    if busy:
        pytest.fail(f"ports {busy} are taken (is `make cluster` or `make compose-up` running?)")
    built = sh("bash", "deploy/image/build.sh", IMAGE, timeout=600)
    try:
        sh("bash", "deploy/compose.sh", "up", "combined", timeout=240)
        yield built.stdout
    finally:
        logs = sh("bash", "deploy/compose.sh", "status", "combined", check_rc=False)
        print(logs.stdout)
        sh("bash", "deploy/compose.sh", "clean", "combined", timeout=180, check_rc=False)


def test_the_image_is_small_non_root_and_health_checked(compose):
    assert "built" in compose
    info = json.loads(sh("docker", "image", "inspect", IMAGE).stdout)[0]
    cfg = info["Config"]
    assert cfg["User"] == "10001:10001"
    assert cfg["Healthcheck"]["Test"][-1] == "--healthcheck"
    assert "/data" in cfg["Volumes"]
    assert info["Size"] < 100 * 1024 * 1024, info["Size"]
    # FROM scratch: exactly the two layers the build made (root filesystem, empty /data).
    assert len(info["RootFS"]["Layers"]) == 2, info["RootFS"]
    for n in (1, 2, 3):
        health = sh("docker", "inspect", "-f", "{{.State.Health.Status}}", f"{PREFIX}-node{n}").stdout.strip()
        assert health == "healthy"


@pytest.mark.timeout(240)
def test_host_clients_produce_and_consume_through_all_three_nodes(compose):
    topic = unique_topic("compose")
    ck_create_topic(BOOTSTRAP, topic, partitions=6, replication_factor=3,
                    config={"min.insync.replicas": "2"})
    md = ck_admin(BOOTSTRAP).list_topics(topic=topic, timeout=10)
    # The host is told the EXTERNAL addresses, one per node.
    assert sorted((b.host, b.port) for b in md.brokers.values()) == [
        ("127.0.0.1", 19092), ("127.0.0.1", 19093), ("127.0.0.1", 19094)]
    assert set(leaders(topic).values()) == {1, 2, 3}
    w = IdempotentWorkload(BOOTSTRAP, topic, 6, rate=3000, max_records=6000).start()
    log = w.finish(timeout=120)
    assert not log.errors, log.errors[:5]
    rep = check(log.acked, read_all(BOOTSTRAP, topic, 6))
    assert rep.ok and rep.observed == 6000, rep.summary()


@pytest.mark.timeout(240)
def test_containers_reach_the_internal_listener(compose):
    """A client inside the compose network (shoal-chaos from the image, no faults) talks to
    nodeN:9092 and is told the INTERNAL names."""
    r = sh("docker", "run", "--rm", "--network", NET, "--entrypoint", "/usr/bin/shoal-chaos", IMAGE,
           "--target", "none", "--brokers", "node1:9092,node2:9092,node3:9092",
           "--admin", "node1:9644,node2:9644,node3:9644", "--duration-s", "10",
           "--consumers", "1", "--out", "/tmp/report", "--json", timeout=200)
    report = json.loads(r.stdout)
    assert report["verdict"] == "pass"
    assert report["counts"]["acked"] >= 5000 and report["counts"]["failed"] == 0
    assert report["counts"]["stored"] == report["counts"]["acked"]


@pytest.mark.timeout(300)
def test_docker_kill_keeps_writes_flowing_and_the_node_rejoins(compose):
    topic = unique_topic("kill")
    ck_create_topic(BOOTSTRAP, topic, partitions=6, replication_factor=3,
                    config={"min.insync.replicas": "2"})
    w = IdempotentWorkload(BOOTSTRAP, topic, 6, rate=1000, max_records=200_000).start()
    wait_until("acks before the fault", lambda: w.acked_count() > 1000, timeout=30)
    victim = 2
    sh("docker", "kill", f"{PREFIX}-node{victim}")
    killed_at = w.acked_count()
    # Writes flow again once leadership has moved off the dead node.
    wait_until("acks after the kill", lambda: w.acked_count() > killed_at + 3000, timeout=40)
    assert victim not in leaders(topic).values()
    sh("docker", "start", f"{PREFIX}-node{victim}")
    wait_until(f"node {victim} ready again", lambda: ready(victim), timeout=60)
    wait_until("the restarted node back in every ISR", lambda: isr_full(topic), timeout=60)
    log = w.stop()
    assert not log.errors, log.errors[:5]
    rep = check(log.acked, read_all(BOOTSTRAP, topic, 6))
    assert rep.ok, rep.summary()


@pytest.mark.timeout(300)
def test_a_node_cut_off_the_network_is_fenced_then_rejoins_on_its_own(compose):
    topic = unique_topic("partition")
    ck_create_topic(BOOTSTRAP, topic, partitions=6, replication_factor=3,
                    config={"min.insync.replicas": "2"})
    w = IdempotentWorkload(BOOTSTRAP, topic, 6, rate=1000, max_records=200_000).start()
    wait_until("acks before the fault", lambda: w.acked_count() > 1000, timeout=30)
    victim, watcher = 3, 1
    name = f"{PREFIX}-node{victim}"
    aliases = json.loads(sh("docker", "inspect", "-f",
                            f'{{{{json (index .NetworkSettings.Networks "{NET}").Aliases}}}}', name).stdout)
    sh("docker", "network", "disconnect", NET, name)
    try:
        wait_until(f"node {victim} fenced", lambda: brokers_seen_by(watcher).get(victim) is True, timeout=20)
        cut_at = w.acked_count()
        wait_until("acks without the cut-off node", lambda: w.acked_count() > cut_at + 2000, timeout=40)
    finally:
        args = ["docker", "network", "connect"]
        for a in aliases or []:
            if not name.startswith(a):
                args += ["--alias", a]
        sh(*args, NET, name)
    # No operator action: it re-registers, catches up, and the leaders take it back into ISR.
    wait_until(f"node {victim} unfenced", lambda: brokers_seen_by(watcher).get(victim) is False, timeout=60)
    wait_until("the node back in every ISR", lambda: isr_full(topic), timeout=90)
    log = w.stop()
    assert not log.errors, log.errors[:5]
    rep = check(log.acked, read_all(BOOTSTRAP, topic, 6))
    assert rep.ok, rep.summary()


@pytest.mark.timeout(240)
def test_a_data_volume_of_another_cluster_is_refused(compose):
    name = f"{PREFIX}-node1"
    sh("docker", "stop", "--time", "30", name, timeout=60)
    try:
        volume = f"{PREFIX}_data1"
        r = sh("docker", "run", "--rm", "-v", f"{volume}:/data",
               "-e", "SHOAL_CLUSTER_ID=some-other-cluster", "-e", "SHOAL_NODE_ID=1",
               "-e", "SHOAL_CONTROLLER_QUORUM_VOTERS=1@node1:9093,2@node2:9093,3@node3:9093",
               IMAGE, timeout=60, check_rc=False)
        assert r.returncode != 0
        err = r.stderr + r.stdout
        assert "cluster id mismatch" in err and "some-other-cluster" in err, err[-2000:]
        assert "panicked" not in err
    finally:
        sh("docker", "start", name)
    wait_until("node 1 ready again", lambda: ready(1), timeout=60)


@pytest.mark.timeout(420)
def test_chaos_with_replaced_disks_and_moved_partitions_loses_nothing(compose, tmp_path):
    """Issue #18's container faults: shoal-chaos against the compose cluster with `replace`
    (docker kill, the node's data volume emptied by the image itself, docker start: it
    re-replicates every partition and, as a controller, gets its vote back through add-voter
    run inside another container) and `reassign` (a partition moved off a node and back with
    `shoalctl partition reassign --wait`). The checker finds nothing lost, duplicated or
    reordered."""
    from test_chaos import chaos_bin, passed
    out = tmp_path / "report"
    r = subprocess.run([str(chaos_bin()), "--target", "compose", "--brokers", BOOTSTRAP,
                        "--admin", ",".join(f"127.0.0.1:{p}" for p in ADMIN.values()),
                        "--containers", ",".join(f"{PREFIX}-node{n}" for n in (1, 2, 3)),
                        "--network", NET, "--duration-s", "45", "--interval-s", "8",
                        "--faults", "replace,reassign", "--seed", "3", "--out", str(out), "--json"],
                       capture_output=True, text=True, timeout=400, env=ENV, cwd=REPO)
    report = passed(r)
    assert report["counts"]["acked"] > 0
    kinds = {f["kind"] for f in report["faults"]}
    assert kinds == {"replace", "reassign"}, report["faults"]
    for f in report["faults"]:
        assert f["unavailable_ms"] is not None, f
