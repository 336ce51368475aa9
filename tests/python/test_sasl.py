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
from confluent_kafka import KafkaException, Producer
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
        admin.list_topics(timeout=3)
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


@pytest.mark.timeout(180)
def test_shoalctl_over_sasl_with_command_config(shoal_factory, tmp_path):
    """shoalctl --command-config with a Java client's SCRAM jaas config (its own client) and
    librdkafka's PLAIN names (the console verbs run librdkafka), and the same as
    --command-property flags: every verb kind works."""
    from test_cli import ctl, js, ok

    node, certs = sasl_node(shoal_factory, tmp_path)
    bootstrap = f"127.0.0.1:{node.sasl_ssl_port}"
    java = tmp_path / "java.properties"
    java.write_text(
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="alice" password="s3cret";\n'
        f"ssl.truststore.type=PEM\nssl.truststore.location={certs.ca}\n")
    rdkafka = tmp_path / "rdkafka.properties"
    rdkafka.write_text(f"security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=alice\n"
                       f"sasl.password=s3cret\nssl.ca.location={certs.ca}\n")
    # The same settings as --command-property flags, no file.
    flags = [a for pair in (("security.protocol", "SASL_SSL"), ("sasl.mechanism", "SCRAM-SHA-256"),
                            ("sasl.username", "alice"), ("sasl.password", "s3cret"),
                            ("ssl.ca.location", str(certs.ca)))
             for a in ("--command-property", "=".join(pair))]
    for secure in (["--command-config", str(java)], ["--command-config", str(rdkafka)], flags):
        topic = unique_topic("ctlsasl")
        ok(ctl(bootstrap, *secure, "topic", "create", topic, "-p", "1"))
        assert topic in [t["name"] for t in js(ctl(bootstrap, *secure, "topic", "list", "-o", "json"))]
        r = ctl(bootstrap, *secure, "topic", "produce", topic, stdin="one\ntwo\n")
        assert r.returncode == 0, r.stderr
        r = ctl(bootstrap, *secure, "topic", "consume", topic, "--from-beginning", "-n", "2", "-o", "json")
        assert r.returncode == 0 and len(r.stdout.splitlines()) == 2, r.stderr
        users = js(ctl(bootstrap, *secure, "user", "list", "-o", "json"))
        assert {u["user"] for u in users} == {"alice"}, users
    # A wrong password is a one-line error naming the failure; a flag wins over the file.
    r = ctl(bootstrap, "--command-config", str(rdkafka), "--command-property", "sasl.password=nope",
            "topic", "list", timeout=60)
    assert r.returncode != 0 and "SASL_AUTHENTICATION_FAILED" in r.stderr, r.stderr


def _b64url(data: bytes) -> str:
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Idp:
    """A token issuer of the test: an RSA and a P-256 key, their JWKS, signed JWTs."""

    def __init__(self):
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())

    def jwks(self) -> str:
        import json
        n = self.rsa.public_key().public_numbers()
        e = self.ec.public_key().public_numbers()
        as_bytes = lambda v, size: v.to_bytes(size, "big")  # noqa: E731
        return json.dumps({"keys": [
            {"kty": "RSA", "kid": "rsa1", "alg": "RS256",
             "n": _b64url(as_bytes(n.n, 256)), "e": _b64url(as_bytes(n.e, 3))},
            {"kty": "EC", "kid": "ec1", "crv": "P-256",
             "x": _b64url(as_bytes(e.x, 32)), "y": _b64url(as_bytes(e.y, 32))},
        ]})

    def token(self, alg: str, claims: dict) -> str:
        import json
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        kid = "rsa1" if alg == "RS256" else "ec1"
        signed = (_b64url(json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}).encode()) + "."
                  + _b64url(json.dumps(claims).encode()))
        if alg == "RS256":
            signature = self.rsa.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(self.ec.sign(signed.encode(), ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signed + "." + _b64url(signature)


@pytest.mark.timeout(240)
def test_oauthbearer_unsecured_and_signed_tokens_with_confluent_kafka(shoal_factory, tmp_path):
    """OAUTHBEARER: librdkafka's unsecured JWT on a listener without a JWKS; RS256 and ES256
    tokens from a token callback on a listener validating against a JWKS file (issuer,
    audience, expiry). The subject is the principal; forged, expired and foreign tokens fail.
    A rotated JWKS file is loaded again without a restart; a broken one keeps the old keys."""
    idp = _Idp()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(idp.jwks())
    node = shoal_factory(start=False)
    node.unsecured_port, node.signed_port = free_port(), free_port()
    kafka = (f"PLAINTEXT://127.0.0.1:{node.kafka_port},UNSECURED://127.0.0.1:{node.unsecured_port},"
             f"SIGNED://127.0.0.1:{node.signed_port}")
    node.overrides.update({
        "listeners": f"{kafka},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": kafka,
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,UNSECURED:SASL_PLAINTEXT,"
                                          "SIGNED:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "listener.name.signed.sasl.oauthbearer.jwks.endpoint.url": f"file://{jwks}",
        "listener.name.signed.sasl.oauthbearer.expected.issuer": "https://idp.test",
        "listener.name.signed.sasl.oauthbearer.expected.audience": "shoal",
        "listener.name.signed.sasl.oauthbearer.jwks.endpoint.refresh.ms": "200",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:ANONYMOUS;User:alice",
    })
    node.start()
    assert "unsecured tokens" in node.log_path.read_text(errors="replace")
    setup = AdminClient({"bootstrap.servers": node.bootstrap})
    setup.create_topics([NewTopic("tokens", 1, 1)])["tokens"].result(30)

    # librdkafka's own unsecured JWT (principal=alice), both ways.
    unsecured = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER",
                 "enable.sasl.oauthbearer.unsecure.jwt": True,
                 "sasl.oauthbearer.config": "principal=alice"}
    bootstrap = f"127.0.0.1:{node.unsecured_port}"
    produced = ck_produce(bootstrap, "tokens", 10, conf={**unsecured, "acks": "all"})
    assert not produced.errors and len(produced.acked) == 10, produced.errors[:2]
    assert len(ck_consume(bootstrap, "tokens", [0], 10, conf=unsecured, timeout=60)) == 10
    # The signed listener refuses it (alg none).
    refused(f"127.0.0.1:{node.signed_port}", unsecured)

    now = int(time.time())
    good = {"sub": "alice", "iss": "https://idp.test", "aud": "shoal", "iat": now, "exp": now + 600}

    def with_token(token: str) -> dict:
        return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER",
                "oauth_cb": lambda _config: (token, time.time() + 600)}

    signed = f"127.0.0.1:{node.signed_port}"
    for alg in ("RS256", "ES256"):
        conf = with_token(idp.token(alg, good))
        produced = ck_produce(signed, "tokens", 5, conf={**conf, "acks": "all"})
        assert not produced.errors and len(produced.acked) == 5, (alg, produced.errors[:2])
    other = _Idp()
    before = failed_logins(node, "OAUTHBEARER")
    for case, token in [
        ("another issuer's key", other.token("RS256", good)),
        ("expired", idp.token("ES256", {**good, "exp": now - 120})),
        ("wrong issuer", idp.token("RS256", {**good, "iss": "https://evil.test"})),
        ("wrong audience", idp.token("RS256", {**good, "aud": "other"})),
    ]:
        refused(signed, with_token(token))
    assert failed_logins(node, "OAUTHBEARER") >= before + 4
    # The token's subject is the principal: bob is no super user and has no ACL.
    bob = with_token(idp.token("RS256", {**good, "sub": "bob"}))
    bob_admin = AdminClient({"bootstrap.servers": signed, **bob})
    assert sorted(bob_admin.list_topics(timeout=30).topics) == []

    # The identity provider rotates its keys: within a refresh interval of the JWKS file
    # changing, the new key's tokens log in and the old key's are refused.
    jwks.write_text(other.jwks())
    rotated = with_token(other.token("RS256", good))
    deadline = time.monotonic() + 15
    while True:
        probe = AdminClient({"bootstrap.servers": signed, **rotated})
        try:
            probe.list_topics(timeout=3)
            break
        except KafkaException:
            assert time.monotonic() < deadline, node.tail()
            time.sleep(0.2)
    refused(signed, with_token(idp.token("RS256", good)))
    # A file that does not parse keeps the keys it would have replaced.
    jwks.write_text('{"keys": [')
    deadline = time.monotonic() + 15
    while "does not load; keeping the previous keys" not in node.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, node.tail()
        time.sleep(0.2)
    still = AdminClient({"bootstrap.servers": signed, **rotated})
    assert "tokens" in still.list_topics(timeout=30).topics


@pytest.mark.timeout(120)
def test_librdkafka_reauthenticates_before_its_session_ends(shoal_factory, tmp_path):
    """KIP-368 with a real client: with connections.max.reauth.ms=2000 the broker tells
    librdkafka each session's lifetime, and librdkafka (2.2+) logs in again on the same
    connection before it ends. A client that did not would have its next request after expiry
    answered by a closed connection, which the node logs ("the SASL session expired")."""
    node, certs = sasl_node(shoal_factory, tmp_path, {"connections.max.reauth.ms": 2000})
    bootstrap = f"127.0.0.1:{port_of(node, 'SASL_SSL')}"
    conf = ck_conf("SASL_SSL", "SCRAM-SHA-512", certs)
    topic = unique_topic("reauth")
    admin = AdminClient({"bootstrap.servers": bootstrap, **conf})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)

    def logins() -> float:
        return value(scrape(node.admin_url), "shoal_sasl_authentications_total",
                     mechanism="SCRAM-SHA-512", result="ok")

    before = logins()
    errors: list[str] = []
    acked: list[int] = []
    producer = Producer({"bootstrap.servers": bootstrap, **conf, "acks": "all", "linger.ms": 0,
                         "error_cb": lambda e: errors.append(str(e))})
    started = time.monotonic()
    sent = 0
    # One record every 50 ms for 7 s (three session lifetimes), bounded in count.
    while time.monotonic() - started < 7 and sent < 200:
        producer.produce(topic, value=str(sent).encode(),
                         on_delivery=lambda err, msg: acked.append(0 if err is None else 1))
        producer.poll(0)
        sent += 1
        time.sleep(0.05)
    assert producer.flush(30) == 0
    assert acked.count(0) == sent and not errors, (sent, acked.count(1), errors[:3])
    # Every broker connection logged in again at least twice (sessions of 2 s over 7 s) ...
    assert logins() - before >= 3, (before, logins())
    # ... on the connection it had: the node never closed one for an expired session.
    log = node.log_path.read_text(errors="replace")
    assert "the SASL session expired" not in log, node.tail()
