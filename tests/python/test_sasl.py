"""SASL logins (issue #16) with real clients: SASL_PLAINTEXT and SASL_SSL listeners, PLAIN,
SCRAM-SHA-256 and SCRAM-SHA-512, against credentials stored with AlterUserScramCredentials
(PLAIN checks the password against the same SCRAM credential). confluent-kafka, kcat and
kafka-python produce and consume on each; a wrong password, an unknown user, an unsupported
mechanism and a client that skips SASL are refused, and failures are counted by mechanism.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

import kafka_wire as kw
from clients import ck_consume, ck_produce, kcat, unique_topic
from conftest import free_port
from test_metrics import scrape, value
from tls_certs import make_certs

MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def sasl_node(shoal_factory, tmp_path, extra: dict | None = None):
    """PLAINTEXT (for set-up), SASL_PLAINTEXT and SASL_SSL listeners; alice has credentials for
    both SCRAM mechanisms (password s3cret)."""
    certs = make_certs(tmp_path / "certs")
    node = shoal_factory(start=False)
    node.sasl_port, node.sasl_ssl_port = free_port(), free_port()
    kafka = (f"PLAINTEXT://127.0.0.1:{node.kafka_port},SASL_PLAINTEXT://127.0.0.1:{node.sasl_port},"
             f"SASL_SSL://127.0.0.1:{node.sasl_ssl_port}")
    node.overrides.update({
        "listeners": f"{kafka},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": kafka,
        "listener.security.protocol.map":
            "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        "listener.name.sasl_ssl.ssl.keystore.location": str(certs.server_keystore),
        **{k: str(v) for k, v in (extra or {}).items()},
    })
    node.start()
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    upserts = [UserScramCredentialUpsertion("alice", ScramCredentialInfo(m, 4096), b"s3cret")
               for m in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(30)
    return node, certs


def ck_conf(protocol: str, mechanism: str, certs, user: str = "alice", password: str = "s3cret") -> dict:
    conf = {"security.protocol": protocol, "sasl.mechanism": mechanism,
            "sasl.username": user, "sasl.password": password}
    if protocol == "SASL_SSL":
        conf["ssl.ca.location"] = str(certs.ca)
    return conf


def port_of(node, protocol: str) -> int:
    return node.sasl_port if protocol == "SASL_PLAINTEXT" else node.sasl_ssl_port


def refused(bootstrap: str, conf: dict) -> str:
    admin = AdminClient({"bootstrap.servers": bootstrap, **conf})
    with pytest.raises(KafkaException) as e:
        admin.list_topics(timeout=8)
    return str(e.value)


def failed_logins(node, mechanism: str) -> float:
    return value(scrape(node.admin_url), "shoal_sasl_authentications_total",
                 mechanism=mechanism, result="failed")


@pytest.mark.timeout(300)
def test_every_client_logs_in_with_every_mechanism_on_both_protocols(shoal_factory, tmp_path):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    node, certs = sasl_node(shoal_factory, tmp_path)
    for protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        bootstrap = f"127.0.0.1:{port_of(node, protocol)}"
        for mechanism in MECHANISMS:
            conf = ck_conf(protocol, mechanism, certs)
            topic = unique_topic(f"{protocol}-{mechanism}".lower().replace("_", "-"))
            admin = AdminClient({"bootstrap.servers": bootstrap, **conf})
            admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
            # confluent-kafka both ways.
            produced = ck_produce(bootstrap, topic, 20, conf={**conf, "acks": "all"})
            assert not produced.errors and len(produced.acked) == 20, (protocol, mechanism, produced.errors[:2])
            assert len(ck_consume(bootstrap, topic, [0], 20, conf=conf, timeout=60)) == 20
            # kcat: 3 lines in, all 23 out.
            x = [f"-X{k}={v}" for k, v in conf.items()]
            lines = tmp_path / "lines.txt"
            lines.write_bytes(b"a\nb\nc\n")
            with open(lines, "rb") as stdin:
                proc = kcat(["-b", bootstrap, *x, "-P", "-t", topic, "-p", "0"], stdin=stdin, timeout=60)
            assert proc.returncode == 0, (protocol, mechanism, proc.stderr)
            proc = kcat(["-b", bootstrap, *x, "-C", "-t", topic, "-o", "beginning", "-e", "-q"], timeout=60)
            assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 23, (protocol, mechanism, proc.stderr)
            # kafka-python.
            kp = dict(security_protocol=protocol, sasl_mechanism=mechanism,
                      sasl_plain_username="alice", sasl_plain_password="s3cret")
            if protocol == "SASL_SSL":
                kp["ssl_cafile"] = str(certs.ca)
            producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", **kp)
            for i in range(5):
                producer.send(topic, value=f"kp-{i}".encode(), partition=0).get(timeout=30)
            producer.close()
            consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                     consumer_timeout_ms=3000, auto_offset_reset="earliest", **kp)
            consumer.assign([TopicPartition(topic, 0)])
            values = [m.value for m in consumer]
            consumer.close()
            assert len(values) == 28 and values[-5:] == [f"kp-{i}".encode() for i in range(5)], \
                (protocol, mechanism, len(values))
    assert node.running, node.tail()


@pytest.mark.timeout(180)
def test_wrong_passwords_unknown_users_and_skipped_sasl_are_refused(shoal_factory, tmp_path):
    node, certs = sasl_node(shoal_factory, tmp_path)
    bootstrap = f"127.0.0.1:{node.sasl_port}"
    for mechanism in MECHANISMS:
        before = failed_logins(node, mechanism)
        for user, password in (("alice", "wrong"), ("mallory", "s3cret")):
            refused(bootstrap, ck_conf("SASL_PLAINTEXT", mechanism, certs, user, password))
        # Refused by the broker, not lost in transport: counted as failed logins.
        assert failed_logins(node, mechanism) >= before + 2
    # A mechanism the listener does not offer.
    # UNSUPPORTED_SASL_MECHANISM with the enabled list, then the connection closes.
    with kw.Conn("127.0.0.1", node.sasl_port) as c:
        mechanism = b"GSSAPI"
        r = c.roundtrip(17, 1, 7, len(mechanism).to_bytes(2, "big") + mechanism)
        assert r.i16() == 33
        offered = [r.string() for _ in range(r.i32())]
        assert offered == MECHANISMS, offered
        closed, _ = c.wait_closed(timeout=15)
    assert closed
    # A client that skips SASL: its Metadata closes the connection; ApiVersions is answered.
    with kw.Conn("127.0.0.1", node.sasl_port) as c:
        c.roundtrip(18, 0, 1, b"")
        c.send(kw.request(3, 1, 2, b"\xff\xff\xff\xff"))
        closed, _ = c.wait_closed(timeout=15)
    assert closed, "a Metadata request before SASL authentication was served"
    # PLAINTEXT bytes on the SASL_SSL port are not a TLS handshake.
    with kw.Conn("127.0.0.1", node.sasl_ssl_port) as c:
        c.send(kw.request(18, 0, 1, b""))
        closed, _ = c.wait_closed(timeout=15)
    assert closed
    # A failed login costs the client connection.failed.authentication.delay.ms.
    t0 = time.monotonic()
    refused(bootstrap, ck_conf("SASL_PLAINTEXT", "PLAIN", certs, "alice", "wrong"))
    assert time.monotonic() - t0 >= 0.1
    assert node.running, node.tail()
    assert "SASL authentication failed" in node.log_path.read_text(errors="replace")


@pytest.mark.timeout(180)
def test_sasl_principals_are_what_acls_name(shoal_factory, tmp_path):
    """The SASL user is the principal ACLs name: alice may read only what her ACL allows."""
    from test_cli import ctl, ok

    node, certs = sasl_node(shoal_factory, tmp_path, {
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:ANONYMOUS",  # the PLAINTEXT set-up listener
    })
    bootstrap = f"127.0.0.1:{node.sasl_port}"
    setup = AdminClient({"bootstrap.servers": node.bootstrap})
    for topic in ("orders-eu", "payments"):
        setup.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    ok(ctl(node, "acl", "create", "--topic", "orders-", "--resource-pattern-type", "prefixed",
           "--allow-principal", "User:alice", "--operation", "Read"))
    alice = ck_conf("SASL_PLAINTEXT", "SCRAM-SHA-512", certs)
    alice_admin = AdminClient({"bootstrap.servers": bootstrap, **alice})
    topics = alice_admin.list_topics(timeout=30).topics
    assert sorted(topics) == ["orders-eu"]


@pytest.mark.timeout(180)
def test_a_secured_cluster_starts_with_its_admin_and_no_plaintext_window(shoal_factory, tmp_path):
    """--add-scram (kafka-storage format's) seeds the first user in the bootstrap entry: a node
    with only a SASL listener and the authorizer on is usable by its admin from the first
    request; a later --add-scram is ignored (credentials change through the Kafka API)."""
    node = shoal_factory(start=False)
    node.overrides.update({
        "listeners": f"SASL_PLAINTEXT://127.0.0.1:{node.kafka_port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"SASL_PLAINTEXT://127.0.0.1:{node.kafka_port}",
        "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin",
    })
    node.extra_args = ["--add-scram", "SCRAM-SHA-512=[name=admin,password=admin-secret]"]
    node.start()
    admin_conf = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                  "sasl.username": "admin", "sasl.password": "admin-secret"}
    admin = AdminClient({"bootstrap.servers": node.bootstrap, **admin_conf})
    admin.create_topics([NewTopic("first", 1, 1)])["first"].result(30)
    produced = ck_produce(node.bootstrap, "first", 10, conf={**admin_conf, "acks": "all"})
    assert not produced.errors and len(produced.acked) == 10
    # Nobody else gets in, and alice exists only once the admin creates her.
    refused(node.bootstrap, {**admin_conf, "sasl.username": "alice", "sasl.password": "pw"})
    # A restart with another --add-scram changes nothing: the cluster exists.
    node.stop()
    node.extra_args = ["--add-scram", "SCRAM-SHA-512=[name=admin,password=changed]"]
    node.start()
    assert "applies only when a cluster is created" in node.log_path.read_text(errors="replace")
    admin = AdminClient({"bootstrap.servers": node.bootstrap, **admin_conf})
    assert "first" in admin.list_topics(timeout=30).topics
    refused(node.bootstrap, {**admin_conf, "sasl.password": "changed"})
    # A malformed --add-scram stops the node before it starts.
    bad = shoal_factory(start=False)
    bad.extra_args = ["--add-scram", "SCRAM-SHA-512=[name=admin]"]
    proc = subprocess.run(bad.args(), cwd=bad.workdir, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=60)
    assert proc.returncode != 0 and b"password" in proc.stderr, proc.stderr[-500:]
