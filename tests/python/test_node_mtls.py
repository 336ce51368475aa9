"""Issue #16: mutual TLS between nodes, end to end with the real binary. Three combined nodes
with `CONTROLLER:SSL` and `REPLICATION:SSL`, each with its own certificate (CN=node-<id>) of one
CA: the quorum forms, acks=all records replicate three ways, and when the active controller is
SIGKILLed another takes over and nothing acknowledged is lost, while silent peers hold
connections on every node listener without starting a handshake. A plaintext peer on the
controller port gets no HTTP/2 answer.

(The Rust tests crates/shoal-meta/tests/mutual_tls.rs and crates/shoal-broker/tests/
replication_mtls.rs check the refusals in detail: another CA, another node's id, no node id.)"""

from __future__ import annotations

import socket
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from cluster import Cluster, create_topic, leader_id, quorum, wait_new_leader
from tls_certs import make_ca, make_node_keystore


@pytest.fixture
def secured(tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    ca = make_ca(certs, "cluster-ca")
    c = Cluster(tmp_path, overrides={
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL,REPLICATION:SSL",
        "ssl.truststore.location": str(ca[0]),
        "min.insync.replicas": "2",
    })
    for n in c.nodes:
        n.overrides["ssl.keystore.location"] = str(make_node_keystore(certs, ca, n.node_id))
    c.start()
    yield c
    c.close()


def produce(bootstrap: str, topic: str, keys: list[str], timeout: float = 30.0) -> set[str]:
    """Produces one acks=all record per key; returns the keys acknowledged."""
    acked: set[str] = set()

    def on_delivery(err, msg):
        if err is None:
            acked.add(msg.key().decode())

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "enable.idempotence": True, "message.timeout.ms": int(timeout * 1000)})
    for k in keys:
        p.produce(topic, key=k.encode(), value=b"v", on_delivery=on_delivery)
    p.flush(timeout + 5)
    return acked


def read_keys(bootstrap: str, topic: str, partitions: int, expected: int,
              timeout: float = 30.0) -> list[str]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "mtls-read",
                  "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        keys: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(keys) < expected:
            keys += [m.key().decode() for m in c.consume(500, timeout=0.5) if m.error() is None]
        end = time.monotonic() + 1  # a little longer, so duplicates would show
        while time.monotonic() < end:
            keys += [m.key().decode() for m in c.consume(500, timeout=0.2) if m.error() is None]
        return keys
    finally:
        c.close()


def plaintext_http2_answer(port: int) -> bytes:
    """What a plaintext gRPC peer gets from the controller port after the HTTP/2 preface."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
        s.settimeout(5)
        got = b""
        try:
            while len(got) < 64:
                chunk = s.recv(64)
                if not chunk:
                    break
                got += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return got


@pytest.mark.timeout(180)
def test_nodes_replicate_and_fail_over_over_mutual_tls(secured):
    create_topic(secured.bootstrap, "secured", partitions=3, rf=3)
    first = [f"a{i}" for i in range(300)]
    assert produce(secured.bootstrap, "secured", first) == set(first)

    # A plaintext peer on the controller port: no HTTP/2 SETTINGS frame comes back.
    answer = plaintext_http2_answer(secured.nodes[0].controller_port)
    assert not (len(answer) >= 4 and answer[3] == 0x04), answer

    # Peers that connect and never start a TLS handshake hold a connection each on every node
    # listener, but must not hold up the accept loop: the failover below reconnects through it.
    silent = [socket.create_connection(("127.0.0.1", port), timeout=5)
              for n in secured.nodes for port in (n.controller_port, n.replication_port)]

    old = leader_id(secured)
    secured.node(old).kill()
    new = wait_new_leader(secured, old, timeout=10)
    survivors = [n for n in secured.nodes if n.node_id != old]
    create_topic(survivors[0].bootstrap, "after-failover", timeout=10)

    second = [f"b{i}" for i in range(300)]
    assert produce(secured.bootstrap, "secured", second) == set(second)
    keys = read_keys(secured.bootstrap, "secured", 3, len(first) + len(second))
    assert sorted(keys) == sorted(first + second), (
        f"lost {len(set(first + second) - set(keys))}, duplicated {len(keys) - len(set(keys))}")

    for sock in silent:
        sock.close()

    # The killed node comes back and rejoins over mutual TLS.
    secured.node(old).start()
    deadline = time.monotonic() + 30
    while True:
        voters = {v["node_id"]: v for v in quorum(secured.node(new)).get("voters", [])}
        if old in voters and voters[old].get("lag", 1) == 0:
            break
        assert time.monotonic() < deadline, f"node {old} did not rejoin: {voters}"
        time.sleep(0.2)
