"""Multi-node clusters of real `shoal` processes on 127.0.0.1, for the cluster tests.

`Cluster(base)` is three combined nodes (controller + broker, ids 1-3). `Cluster(base,
brokers=3)` splits the roles: controllers 1-3 (`process.roles=controller`, no Kafka
listener) and broker-only nodes 4-6 that follow the metadata log over gRPC. Every node gets
free ports; faults are signals to the real processes (SIGKILL, SIGSTOP, SIGCONT)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid

from confluent_kafka.admin import AdminClient, NewTopic

from conftest import STOP_TIMEOUT, ShoalNode
from kafka_wire import Conn, metadata_v4_full

SESSION_TIMEOUT_MS = 1500


def new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class Cluster:
    def __init__(self, base, overrides: dict | None = None, brokers: int = 0):
        self.combined = brokers == 0
        self.controllers = [ShoalNode(base / f"node{i}", node_id=i, name=f"node{i}") for i in (1, 2, 3)]
        self.brokers_only = [ShoalNode(base / f"node{i}", node_id=i, name=f"node{i}")
                             for i in range(4, 4 + brokers)]
        self.nodes = self.controllers + self.brokers_only
        self.voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.controllers)
        self.cluster_id = new_cluster_id()
        extra = {k: str(v) for k, v in (overrides or {}).items()}
        common = {
            "controller.quorum.voters": self.voters,
            "cluster.id": self.cluster_id,
            "default.replication.factor": "3",
            "offsets.topic.replication.factor": "3",
        }
        for n in self.controllers:
            if self.combined:
                n.overrides.update({
                    "listeners": f"PLAINTEXT://127.0.0.1:{n.kafka_port},CONTROLLER://127.0.0.1:{n.controller_port}",
                    **common, **extra,
                })
            else:
                n.overrides.update({
                    "process.roles": "controller",
                    "listeners": f"CONTROLLER://127.0.0.1:{n.controller_port}",
                    "advertised.listeners": "",
                    **common, **extra,
                })
        for n in self.brokers_only:
            n.overrides.update({
                "process.roles": "broker",
                "listeners": f"PLAINTEXT://127.0.0.1:{n.kafka_port}",
                **common, **extra,
            })

    @property
    def brokers(self) -> list[ShoalNode]:
        """The nodes that serve Kafka clients."""
        return self.controllers if self.combined else self.brokers_only

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.brokers if n.running)

    def start(self) -> None:
        for n in self.nodes:  # all at once: bootstrap must still happen exactly once
            n.start(wait=False)
        for n in self.nodes:
            n.wait_ready()

    def node(self, node_id: int) -> ShoalNode:
        return next(n for n in self.nodes if n.node_id == node_id)

    def close(self) -> None:
        """Teardown. Broker-only nodes stop together first, while the controllers still run
        (a broker's controlled shutdown asks them to move its leaderships; stopping the
        controllers first would leave each broker waiting for them), then the controllers
        together. Combined nodes stop one by one, so the quorum outlives all but the last."""
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                try:
                    os.kill(n.proc.pid, signal.SIGCONT)
                except OSError:
                    pass
        if self.combined:
            for n in self.nodes:
                n.close()
            return
        for group in (self.brokers_only, self.controllers):
            running = [n for n in group if n.running]
            for n in running:
                n.proc.send_signal(signal.SIGTERM)
            for n in group:
                if n not in running:
                    n.close()
                    continue
                try:
                    n._reap(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    n.proc.kill()
                    n._reap(10)


def quorum(node: ShoalNode) -> dict:
    with urllib.request.urlopen(f"{node.admin_url}/v1/quorum", timeout=5) as r:
        return json.loads(r.read())


def broker_states(node: ShoalNode) -> dict[int, bool]:
    """broker id -> fenced, from the node's admin listener."""
    with urllib.request.urlopen(f"{node.admin_url}/v1/brokers", timeout=5) as r:
        return {b["broker_id"]: b["fenced"] for b in json.loads(r.read())["brokers"]}


def leader_id(cluster: Cluster, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n in cluster.controllers:
            if n.running:
                try:
                    q = quorum(n)
                except OSError:
                    continue
                if q.get("leader_id") is not None:
                    return q["leader_id"]
        time.sleep(0.1)
    raise AssertionError("no metadata leader")


def create_topic(bootstrap: str, name: str, partitions: int = 3, rf: int = 3, timeout: float = 10.0,
                 config: dict | None = None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fut = admin.create_topics([NewTopic(name, partitions, rf, config=config or {})],
                              operation_timeout=timeout, request_timeout=timeout)[name]
    return fut.result(timeout=timeout + 5)


def metadata_from(n: ShoalNode, topics=None):
    with Conn("127.0.0.1", n.kafka_port) as c:
        return metadata_v4_full(c, topics)


def wait_for_topics(n: ShoalNode, names, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        topics = metadata_from(n).topics
        if all(name in topics for name in names):
            return topics
        assert time.monotonic() < deadline, f"node {n.node_id} lacks {names}: {sorted(topics)}"
        time.sleep(0.1)


def wait_new_leader(cluster: Cluster, old: int, timeout: float = 5.0) -> int:
    """The controller the surviving nodes elect after `old` died, within `timeout` seconds."""
    survivors = [n for n in cluster.nodes if n.node_id != old]
    deadline = time.monotonic() + timeout
    new = None
    while time.monotonic() < deadline:
        try:
            new = quorum(survivors[0]).get("leader_id")
        except OSError:
            pass
        if new is not None and new != old:
            return new
        time.sleep(0.05)
    raise AssertionError(f"no new controller within {timeout} s (last seen: {new})")
