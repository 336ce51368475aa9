"""The secured container cluster: deploy/docker-compose.secure.yml (`make compose-secure-up`), three
combined nodes whose INTERNAL and EXTERNAL listeners are SASL_SSL (SCRAM-SHA-512 and -256), with
the StandardAuthorizer on and User:admin its only super-user, seeded by `--add-scram` at the
first start. Certificates come from deploy/secure/gen-certs.sh, made here in a temporary
directory (removed at the end).

Checks: the admin produces and consumes over SASL_SSL through all three nodes, each node serving
its own certificate (CN=node-<id>); a plaintext client, a wrong password and an unprivileged user
are refused; a container on the compose network reaches the INTERNAL listener with `shoal-chaos
-X`; a short shoal-chaos run from the host (`--command-config` with the admin's settings) kills
and pauses nodes and loses and duplicates nothing. Torn down with its volumes.

Between the nodes, mutual TLS (CONTROLLER:SSL, REPLICATION:SSL). Needs a Docker engine; skips with the reason when none answers. Runs under its own
container prefix (shoalsectest) on its own network.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

from checker import check
from clients import unique_topic
from conftest import REPO
from test_chaos import CLUSTER_PORTS, chaos_bin, passed, port_in_use
from test_compose import docker_answers, wait_until
from test_metrics import scrape, value
from workload import IdempotentWorkload, read_all

PREFIX = "shoalsectest"
IMAGE = "shoal:dev"
NET = f"{PREFIX}-secure-net"
CONTAINERS = [f"{PREFIX}-secure-node{n}" for n in (1, 2, 3)]
BOOTSTRAP = "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
PORTS = {1: 19092, 2: 19093, 3: 19094}
ADMIN = {1: 19644, 2: 19645, 3: 19646}
PASSWORD = f"pw-{uuid.uuid4().hex[:12]}"

pytestmark = pytest.mark.skipif(docker_answers() is not None,
                                reason=f"container tests need Docker: {docker_answers()}")


def sh(env: dict, *args: str, timeout: float = 120, check_rc: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    if check_rc and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} -> {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


class Secure:
    def __init__(self, certs: Path, env: dict):
        self.certs, self.env = certs, env

    def conf(self, user: str = "admin", password: str = PASSWORD, mechanism: str = "SCRAM-SHA-512") -> dict:
        return {"security.protocol": "SASL_SSL", "sasl.mechanism": mechanism,
                "sasl.username": user, "sasl.password": password,
                "ssl.ca.location": str(self.certs / "ca.pem"),
                "ssl.endpoint.identification.algorithm": "https"}

    def admin(self, **kw) -> AdminClient:
        return AdminClient({"bootstrap.servers": BOOTSTRAP, **self.conf(**kw)})


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    busy = [p for p in CLUSTER_PORTS if port_in_use(p)]
    if busy:
        pytest.fail(f"ports {busy} are taken (is `make cluster` or a `make compose-*-up` cluster running?)")
    certs = tmp_path_factory.mktemp("secure-certs")
    env = {**os.environ, "SHOAL_COMPOSE_PREFIX": PREFIX, "SHOAL_CERTS_DIR": str(certs),
           "SHOAL_ADMIN_PASSWORD": PASSWORD}
    try:
        sh(env, "bash", "deploy/secure/gen-certs.sh", str(certs))
        sh(env, "bash", "deploy/image/build.sh", IMAGE, timeout=600)
        try:
            sh(env, "bash", "deploy/compose.sh", "up", "secure", timeout=240)
            yield Secure(certs, env)
        finally:
            print(sh(env, "bash", "deploy/compose.sh", "status", "secure", check_rc=False).stdout)
            sh(env, "bash", "deploy/compose.sh", "clean", "secure", timeout=180, check_rc=False)
            left = sh(env, "docker", "volume", "ls", "-q", "--filter", f"name={PREFIX}-secure_").stdout.split()
            assert not left, f"volumes left after compose.sh clean: {left}"
    finally:
        shutil.rmtree(certs, ignore_errors=True)  # private keys do not outlive the test


def served_certificate(ca: Path, port: int) -> dict:
    """The certificate a listener serves, verified against `ca` and for the address 127.0.0.1."""
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.getpeercert()


def client_errors(conf: dict, timeout: float = 0.0) -> list[str]:
    """A client that must not get metadata (fails if it does); its errors, polled until
    librdkafka has reported at least one or `timeout` passes."""
    errors: list[str] = []
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP, "error_cb": lambda e: errors.append(str(e)), **conf})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    deadline = time.monotonic() + timeout
    while not errors and time.monotonic() < deadline:
        admin.poll(0.2)
    return errors


def failed_logins(mechanism: str) -> float:
    return sum(value(scrape(f"http://127.0.0.1:{ADMIN[n]}"), "shoal_sasl_authentications_total",
                     mechanism=mechanism, result="failed") for n in ADMIN)


@pytest.mark.timeout(600)
def test_nodes_are_healthy_and_each_serves_its_own_certificate(secure):
    for name in CONTAINERS:
        health = sh(secure.env, "docker", "inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip()
        assert health == "healthy", name
        # The cluster seeded its admin at the first start (no PLAINTEXT window).
        assert "--add-scram" in sh(secure.env, "docker", "inspect", "-f", "{{json .Args}}", name).stdout
    for node, port in PORTS.items():
        cert = served_certificate(secure.certs / "ca.pem", port)
        assert cert["subject"] == ((("commonName", f"node-{node}"),),), cert
        assert ("DNS", f"node{node}") in cert["subjectAltName"]


@pytest.mark.timeout(300)
def test_admin_produces_and_consumes_over_sasl_ssl_through_all_three_nodes(secure):
    topic = unique_topic("secure")
    admin = secure.admin()
    admin.create_topics([NewTopic(topic, 6, 3, config={"min.insync.replicas": "2"})],
                        operation_timeout=30, request_timeout=30)[topic].result(30)

    def led_by_every_node():
        md = admin.list_topics(topic=topic, timeout=5)
        t = md.topics[topic]
        return t.error is None and len(t.partitions) == 6 and {p.leader for p in t.partitions.values()} == {1, 2, 3}

    wait_until("partitions led by all three nodes", led_by_every_node, timeout=30)
    md = admin.list_topics(topic=topic, timeout=10)
    # The host is told the EXTERNAL addresses, one per node.
    assert sorted((b.host, b.port) for b in md.brokers.values()) == [
        ("127.0.0.1", 19092), ("127.0.0.1", 19093), ("127.0.0.1", 19094)]

    w = IdempotentWorkload(BOOTSTRAP, topic, 6, rate=3000, max_records=6000, conf=secure.conf()).start()
    log = w.finish(timeout=120)
    assert not log.errors, log.errors[:5]
    # Read back with the other SCRAM mechanism.
    rep = check(log.acked, read_all(BOOTSTRAP, topic, 6, conf=secure.conf(mechanism="SCRAM-SHA-256")))
    assert rep.ok and rep.observed == 6000, rep.summary()


@pytest.mark.timeout(300)
def test_plaintext_clients_wrong_passwords_and_unprivileged_users_are_refused(secure):
    # PLAINTEXT bytes on a SASL_SSL listener: no TLS handshake, no metadata.
    client_errors({})
    # A wrong password: the broker refuses the login (counted), the client reports it.
    before = failed_logins("SCRAM-SHA-512")
    errors = client_errors(secure.conf(password="not-the-password"), timeout=15)
    assert any("uthentication" in e for e in errors), errors
    wait_until("the failed login counted", lambda: failed_logins("SCRAM-SHA-512") > before, timeout=20)
    # TLS but no login at all: the first request before SASL closes the connection.
    client_errors({"security.protocol": "SSL", "ssl.ca.location": str(secure.certs / "ca.pem")})

    # A user with a password but no ACL: logs in, may see and touch nothing.
    topic = unique_topic("secure-acl")
    admin = secure.admin()
    admin.create_topics([NewTopic(topic, 1, 3)], operation_timeout=30, request_timeout=30)[topic].result(30)
    upsert = UserScramCredentialUpsertion("bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"bob-pw")
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(30)
    bob = secure.admin(user="bob", password="bob-pw")

    def bob_denied():
        t = bob.list_topics(topic=topic, timeout=5).topics[topic]
        return t.error is not None and t.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    # Every broker applies the credential within its metadata lag.
    wait_until("bob logged in and denied the topic", bob_denied, timeout=30)
    assert topic not in {name for name, t in bob.list_topics(timeout=10).topics.items() if t.error is None}


@pytest.mark.timeout(300)
def test_a_container_reaches_the_internal_listener_with_client_flags(secure):
    """shoal-chaos from the image on the compose network, no faults, its clients configured with
    -X only: nodeN:9092 over SASL_SSL (the certificates name nodeN too)."""
    r = sh(secure.env, "docker", "run", "--rm", "--network", NET,
           "-v", f"{secure.certs / 'ca.pem'}:/tls/ca.pem:ro", "--entrypoint", "/usr/bin/shoal-chaos", IMAGE,
           "--target", "none", "--brokers", "node1:9092,node2:9092,node3:9092",
           "--admin", "node1:9644,node2:9644,node3:9644", "--duration-s", "10", "--consumers", "1",
           "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanism=SCRAM-SHA-256",
           "-X", "sasl.username=admin", "-X", f"sasl.password={PASSWORD}",
           "-X", "ssl.ca.location=/tls/ca.pem", "--out", "/tmp/report", "--json", timeout=200)
    report = json.loads(r.stdout)
    assert report["verdict"] == "pass"
    assert report["counts"]["acked"] >= 5000 and report["counts"]["failed"] == 0
    assert report["counts"]["stored"] == report["counts"]["acked"]


@pytest.mark.timeout(480)
def test_short_chaos_run_over_sasl_ssl_loses_nothing(secure, tmp_path):
    out = tmp_path / "report"
    args = [str(chaos_bin()), "--target", "compose", "--containers", ",".join(CONTAINERS), "--network", NET,
            "--command-config", str(secure.certs / "admin.properties"),
            "--duration-s", "30", "--interval-s", "10", "--faults", "kill,pause", "--seed", "7",
            "--out", str(out), "--json"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=420, env=secure.env, cwd=REPO)
    report = passed(r)
    counts = report["counts"]
    # 2 producers x 500 rec/s for >= 30 s, all acknowledged, all stored.
    assert counts["sent"] >= 25_000, counts
    assert counts["failed"] == 0, report["producer_errors"]
    assert counts["undelivered"] == 0 and counts["acked"] == counts["sent"]
    assert counts["stored"] == counts["acked"] + report["anomalies"]["unacked_stored"]
    assert counts["group_consumed"] >= counts["acked"] and counts["group_commits"] > 0
    kinds = [f["kind"] for f in report["faults"]]
    assert "kill" in kinds and "pause" in kinds, kinds
    assert all(f["unavailable_ms"] is not None for f in report["faults"]), report["faults"]
