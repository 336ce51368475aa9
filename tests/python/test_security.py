"""Security (issue #16). TLS on Kafka listeners: an SSL listener beside a PLAINTEXT one,
served to librdkafka (confluent-kafka and kcat) and kafka-python with Kafka's client settings;
client certificates required; a plaintext client on the TLS port refused; a renewed
certificate picked up without a restart; stores that cannot be used stop the node at start-up;
shoalctl over TLS with --command-config. The admin listener's bearer token.

Certificates are made per test with the openssl CLI (tls_certs.py); nothing is checked in.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

import kafka_wire as kw
from clients import ck_consume, ck_create_topic, ck_produce, kcat, unique_topic
from conftest import free_port
from test_metrics import scrape, value
from test_replication import wait_until
from tls_certs import Certs, make_certs, not_after_unix, serial_of


def ssl_node(shoal_factory, certs: Certs, extra: dict | None = None, start: bool = True):
    """A node with a PLAINTEXT listener and an SSL listener (node.ssl_port)."""
    ssl_port = free_port()
    node = shoal_factory(start=False)
    node.ssl_port = ssl_port
    node.overrides.update({
        "listeners": f"PLAINTEXT://127.0.0.1:{node.kafka_port},SSL://127.0.0.1:{ssl_port},"
                     f"CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.kafka_port},SSL://127.0.0.1:{ssl_port}",
        "listener.name.ssl.ssl.keystore.location": str(certs.server_keystore),
        **{k: str(v) for k, v in (extra or {}).items()},
    })
    if start:
        node.start()
    return node


def ssl_conf(certs: Certs, client_cert: bool = False, stranger: bool = False) -> dict:
    conf = {"security.protocol": "SSL", "ssl.ca.location": str(certs.ca)}
    if client_cert:
        conf["ssl.certificate.location"] = str(certs.client_cert)
        conf["ssl.key.location"] = str(certs.client_key)
    if stranger:
        conf["ssl.certificate.location"] = str(certs.stranger_cert)
        conf["ssl.key.location"] = str(certs.stranger_key)
    return conf


def can_list_topics(bootstrap: str, conf: dict, timeout: float = 8.0) -> bool:
    admin = AdminClient({"bootstrap.servers": bootstrap, **conf})
    try:
        admin.list_topics(timeout=timeout)
        return True
    except KafkaException:
        return False


def handshake_failures(node) -> float:
    return value(scrape(node.admin_url), "shoal_tls_handshake_failures_total", listener="SSL")


def peer_serial(port: int, certs: Certs) -> int:
    """The serial number of the certificate a fresh TLS connection is shown."""
    context = ssl.create_default_context(cafile=str(certs.ca))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem.encode(),
                         capture_output=True, timeout=30, check=True).stdout.decode()
    return int(out.strip().split("=", 1)[1], 16)


@pytest.mark.timeout(240)
def test_ssl_listener_serves_librdkafka_kcat_and_kafka_python(shoal_factory, tmp_path):
    certs = make_certs(tmp_path / "certs")
    node = ssl_node(shoal_factory, certs)
    bootstrap = f"127.0.0.1:{node.ssl_port}"
    conf = ssl_conf(certs)
    topic = unique_topic("tls")
    admin = AdminClient({"bootstrap.servers": bootstrap, **conf})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)

    # confluent-kafka over TLS, both ways.
    produced = ck_produce(bootstrap, topic, 300, prefix="ck", conf={**conf, "acks": "all"})
    assert not produced.errors and len(produced.acked) == 300, produced.errors[:3]
    got = ck_consume(bootstrap, topic, [0, 1], 300, conf=conf, timeout=60)
    assert len(got) == 300

    # kcat over TLS: produce 5 lines, then read all 305 records back.
    kcat_tls = ["-b", bootstrap, "-X", "security.protocol=ssl", "-X", f"ssl.ca.location={certs.ca}"]
    lines = tmp_path / "lines.txt"
    lines.write_bytes(b"k1\nk2\nk3\nk4\nk5\n")
    with open(lines, "rb") as stdin:
        proc = kcat([*kcat_tls, "-P", "-t", topic, "-p", "0"], stdin=stdin, timeout=60)
    assert proc.returncode == 0, proc.stderr
    proc = kcat([*kcat_tls, "-C", "-t", topic, "-o", "beginning", "-e", "-q"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 305, proc.stdout[-500:]

    # kafka-python over TLS.
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    producer = KafkaProducer(bootstrap_servers=bootstrap, security_protocol="SSL",
                             ssl_cafile=str(certs.ca), acks="all")
    for i in range(20):
        producer.send(topic, value=f"kp-{i}".encode(), partition=1).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, security_protocol="SSL",
                             ssl_cafile=str(certs.ca), enable_auto_commit=False,
                             consumer_timeout_ms=5000, auto_offset_reset="earliest")
    consumer.assign([TopicPartition(topic, 1)])
    values = [m.value for m in consumer]
    consumer.close()
    assert [v for v in values if v.startswith(b"kp-")] == [f"kp-{i}".encode() for i in range(20)]

    # The PLAINTEXT listener still serves, and sees the same records.
    assert can_list_topics(node.bootstrap, {})
    # A plaintext client on the TLS port is refused (its bytes are not a TLS handshake).
    before = handshake_failures(node)
    with kw.Conn("127.0.0.1", node.ssl_port) as c:
        c.send(kw.request(18, 0, 1, b""))
        closed, _ = c.wait_closed(timeout=15)
    assert closed, "a plaintext ApiVersions on the SSL listener was not refused"
    wait_until("the failed handshake is counted", lambda: handshake_failures(node) > before)
    # A client that does not trust the node's CA is refused too.
    assert not can_list_topics(bootstrap, {"security.protocol": "SSL",
                                           "ssl.ca.location": str(certs.stranger_cert)}, timeout=5)
    assert node.running, node.tail()
    expiry = value(scrape(node.admin_url), "shoal_tls_certificate_expiry_timestamp_seconds", listener="SSL")
    assert expiry == not_after_unix(certs.server_cert)


@pytest.mark.timeout(180)
def test_required_client_certificates(shoal_factory, tmp_path):
    certs = make_certs(tmp_path / "certs")
    node = ssl_node(shoal_factory, certs, {
        "listener.name.ssl.ssl.client.auth": "required",
        "listener.name.ssl.ssl.truststore.location": str(certs.ca),
    })
    bootstrap = f"127.0.0.1:{node.ssl_port}"
    assert can_list_topics(bootstrap, ssl_conf(certs, client_cert=True))
    assert not can_list_topics(bootstrap, ssl_conf(certs), timeout=5), "no client certificate"
    assert not can_list_topics(bootstrap, ssl_conf(certs, stranger=True), timeout=5), \
        "a client certificate of another CA"
    topic = unique_topic("mtls")
    conf = ssl_conf(certs, client_cert=True)
    ck_create_topic(node.bootstrap, topic, partitions=1)
    produced = ck_produce(bootstrap, topic, 50, conf={**conf, "acks": "all"})
    assert not produced.errors and len(produced.acked) == 50
    assert len(ck_consume(bootstrap, topic, [0], 50, conf=conf, timeout=60)) == 50
    # The plaintext listener has no client-certificate requirement (per-listener settings).
    assert can_list_topics(node.bootstrap, {})


@pytest.mark.timeout(120)
def test_a_client_certificate_no_mapping_rule_maps_is_refused(shoal_factory, tmp_path):
    """ssl.principal.mapping.rules decides who a certificate is; a subject no rule maps is
    refused, as Kafka refuses it (the trusted CA alone is not enough)."""
    certs = make_certs(tmp_path / "certs")
    node = ssl_node(shoal_factory, certs, {
        "listener.name.ssl.ssl.client.auth": "required",
        "listener.name.ssl.ssl.truststore.location": str(certs.ca),
        "listener.name.ssl.ssl.principal.mapping.rules": "RULE:^CN=(admin)$/$1/",
    })
    before = handshake_failures(node)
    assert not can_list_topics(f"127.0.0.1:{node.ssl_port}", ssl_conf(certs, client_cert=True), timeout=5)
    wait_until("the unmapped client is counted", lambda: handshake_failures(node) > before)
    assert "maps to no principal" in node.tail()


@pytest.mark.timeout(120)
def test_a_renewed_certificate_is_served_without_a_restart(shoal_factory, tmp_path):
    certs = make_certs(tmp_path / "certs")
    node = ssl_node(shoal_factory, certs, {"ssl.keystore.reload.interval.ms": 200})
    first = peer_serial(node.ssl_port, certs)
    assert first == serial_of(certs.server_cert)
    renewed = certs.renew_server("localhost")
    wanted = serial_of(renewed)
    assert wanted != first
    wait_until("the renewed certificate is served", lambda: peer_serial(node.ssl_port, certs) == wanted,
               timeout=30)
    samples = scrape(node.admin_url)
    assert value(samples, "shoal_tls_reloads_total", listener="SSL", result="ok") >= 1
    # A broken file keeps the renewed certificate in service.
    certs.server_keystore.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n")
    wait_until("the failed reload is counted",
               lambda: value(scrape(node.admin_url), "shoal_tls_reloads_total",
                             listener="SSL", result="failed") >= 1, timeout=30)
    assert peer_serial(node.ssl_port, certs) == wanted
    assert node.running, node.tail()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("extra,fragment", [
    ({"listener.name.ssl.ssl.keystore.location": ""}, "ssl.keystore.location"),
    ({"listener.name.ssl.ssl.keystore.location": "/nonexistent/server.pem"}, "/nonexistent/server.pem"),
    ({"listener.name.ssl.ssl.client.auth": "required"}, "ssl.truststore.location"),
    ({"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:SASL_PLAINTEXT"}, "SASL_PLAINTEXT"),
    ({"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
      "sasl.enabled.mechanisms": "GSSAPI"}, "GSSAPI"),
], ids=["no-keystore", "missing-file", "client-auth-without-truststore", "sasl-on-controller",
        "unknown-sasl-mechanism"])
def test_tls_settings_that_cannot_be_served_stop_the_node(shoal_factory, tmp_path, extra, fragment):
    certs = make_certs(tmp_path / "certs")
    node = ssl_node(shoal_factory, certs, extra, start=False)
    if extra.get("listener.name.ssl.ssl.keystore.location") == "":
        del node.overrides["listener.name.ssl.ssl.keystore.location"]
    proc = subprocess.run(node.args(), cwd=node.workdir, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=60)
    out = proc.stderr.decode(errors="replace") + proc.stdout.decode(errors="replace")
    assert proc.returncode != 0, out[-2000:]
    assert fragment in out, out[-2000:]
    assert "panicked" not in out, out[-2000:]


@pytest.mark.timeout(180)
def test_shoalctl_over_tls_with_command_config(shoal_factory, tmp_path):
    """shoalctl --command-config FILE (Kafka's client properties) against an SSL listener that
    requires client certificates: admin verbs over its own client, the console producer and
    consumer over librdkafka; without the file it is refused."""
    from test_cli import ctl, js, ok

    certs = make_certs(tmp_path / "certs")
    node = ssl_node(shoal_factory, certs, {
        "listener.name.ssl.ssl.client.auth": "required",
        "listener.name.ssl.ssl.truststore.location": str(certs.ca),
    })
    bootstrap = f"127.0.0.1:{node.ssl_port}"
    config = tmp_path / "client.properties"
    # The Java client's PEM names: shoalctl reads them, and maps them for librdkafka.
    keystore = tmp_path / "alice.pem"
    keystore.write_text(certs.client_key.read_text() + certs.client_cert.read_text())
    config.write_text(f"security.protocol=SSL\nssl.truststore.type=PEM\n"
                      f"ssl.truststore.location={certs.ca}\nssl.keystore.type=PEM\n"
                      f"ssl.keystore.location={keystore}\n")
    secure = ["--command-config", str(config)]
    topic = unique_topic("ctltls")
    ok(ctl(bootstrap, *secure, "topic", "create", topic, "-p", "2"))
    names = [t["name"] for t in js(ctl(bootstrap, *secure, "topic", "list", "-o", "json"))]
    assert topic in names
    r = ctl(bootstrap, *secure, "topic", "produce", topic, stdin="one\ntwo\nthree\n")
    assert r.returncode == 0, r.stderr
    r = ctl(bootstrap, *secure, "topic", "consume", topic, "--from-beginning", "-n", "3",
            "-o", "json")
    assert r.returncode == 0, r.stderr
    assert sorted(json.loads(line)["value"] for line in r.stdout.splitlines()) == ["one", "three", "two"]
    info = js(ctl(bootstrap, *secure, "cluster", "info", "-o", "json"))
    assert info, info
    # Without the client properties: no TLS, refused; with librdkafka's names it works too.
    plain = ctl(bootstrap, "topic", "list", timeout=60)
    assert plain.returncode != 0
    rdkafka_names = tmp_path / "rdkafka.properties"
    rdkafka_names.write_text(f"security.protocol=ssl\nssl.ca.location={certs.ca}\n"
                             f"ssl.certificate.location={certs.client_cert}\n"
                             f"ssl.key.location={certs.client_key}\n")
    names = [t["name"] for t in js(ctl(bootstrap, "--command-config", str(rdkafka_names),
                                       "topic", "list", "-o", "json"))]
    assert topic in names


@pytest.mark.timeout(120)
def test_admin_metrics_and_v1_need_the_bearer_token_when_configured(shoal_factory, tmp_path):
    import urllib.error
    import urllib.request

    token = "f3a9c1e07b5d42e8a6c19d0b7e2f4a51"
    token_file = tmp_path / "admin.token"
    token_file.write_text(token + "\n")
    node = shoal_factory({"admin.listener.token.file": str(token_file)})

    def get(path: str, bearer: str | None = None) -> int:
        request = urllib.request.Request(node.admin_url + path)
        if bearer is not None:
            request.add_header("Authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code

    for path in ("/metrics", "/v1/brokers", "/v1/quorum"):
        assert get(path) == 401, path
        assert get(path, "wrong-token-wrong-token") == 401, path
        assert get(path, token) == 200, path
    # The probes stay open: orchestrators call them without credentials.
    assert get("/healthz") == 200
    assert get("/readyz") == 200


@pytest.mark.timeout(120)
def test_the_admin_listener_over_tls_takes_the_token_or_a_client_certificate(shoal_factory, tmp_path):
    """ADMIN:SSL with ssl.client.auth=requested and a token file: every endpoint over HTTPS,
    the probes open, /metrics and /v1/* for the token or a client certificate of the CA;
    plain HTTP and a certificate of another CA get nothing; `shoal --healthcheck` probes over
    TLS."""
    import http.client
    import urllib.error
    import urllib.request

    certs = make_certs(tmp_path / "certs")
    token = "9d2c7e41a0b84f35b6e1c28d7a3f9e60"
    token_file = tmp_path / "admin.token"
    token_file.write_text(token + "\n")
    node = shoal_factory({
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,ADMIN:SSL",
        "listener.name.admin.ssl.keystore.location": str(certs.server_keystore),
        "listener.name.admin.ssl.truststore.location": str(certs.ca),
        "listener.name.admin.ssl.client.auth": "requested",
        "admin.listener.token.file": str(token_file),
    }, start=False)
    node.start(wait=False)
    base = f"https://127.0.0.1:{node.admin_port}"

    def context(cert=None, key=None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(certs.ca))
        if cert is not None:
            ctx.load_cert_chain(str(cert), str(key))
        return ctx

    anonymous = context()
    with_cert = context(certs.client_cert, certs.client_key)
    stranger = context(certs.stranger_cert, certs.stranger_key)

    def get(path: str, ctx: ssl.SSLContext, bearer: str | None = None) -> int:
        request = urllib.request.Request(base + path)
        if bearer is not None:
            request.add_header("Authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(request, timeout=5, context=ctx) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code

    deadline = time.monotonic() + 30
    while True:
        try:
            if get("/readyz", anonymous) == 200:
                break
        except OSError:
            pass
        assert node.running and time.monotonic() < deadline, node.tail()
        time.sleep(0.2)
    assert get("/healthz", anonymous) == 200
    for path in ("/metrics", "/v1/brokers", "/v1/quorum"):
        assert get(path, anonymous) == 401, path
        assert get(path, anonymous, "wrong-token-wrong-token") == 401, path
        assert get(path, anonymous, token) == 200, path
        assert get(path, with_cert) == 200, path
    with pytest.raises(OSError):
        get("/healthz", stranger)
    # Plain HTTP gets a TLS alert, not an HTTP answer.
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://127.0.0.1:{node.admin_port}/healthz", timeout=5)
    probe = subprocess.run([*node.args(), "--healthcheck"], capture_output=True, timeout=30)
    assert probe.returncode == 0, probe.stderr.decode(errors="replace")[-2000:]


@pytest.mark.timeout(120)
def test_an_admin_listener_requiring_client_certificates_is_probed_with_the_nodes_own(shoal_factory, tmp_path):
    """ADMIN:SSL with ssl.client.auth=required: a client without a certificate gets no answer
    (probes included), one with a certificate of the CA gets everything without a token, and
    `shoal --healthcheck` presents the node's own certificate (valid as a TLS client)."""
    import urllib.request

    from tls_certs import make_node_keystore

    certs = make_certs(tmp_path / "certs")
    ca_key = (certs.ca, certs.directory / "ca.key")
    keystore = make_node_keystore(certs.directory, ca_key, 1)
    node = shoal_factory({
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,ADMIN:SSL",
        "listener.name.admin.ssl.keystore.location": str(keystore),
        "listener.name.admin.ssl.truststore.location": str(certs.ca),
        "listener.name.admin.ssl.client.auth": "required",
    }, start=False)
    node.start(wait=False)
    base = f"https://127.0.0.1:{node.admin_port}"
    with_cert = ssl.create_default_context(cafile=str(certs.ca))
    with_cert.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=5, context=with_cert) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        assert node.running and time.monotonic() < deadline, node.tail()
        time.sleep(0.2)
    with urllib.request.urlopen(base + "/v1/brokers", timeout=5, context=with_cert) as r:
        assert r.status == 200
    anonymous = ssl.create_default_context(cafile=str(certs.ca))
    with pytest.raises(OSError):
        urllib.request.urlopen(base + "/healthz", timeout=5, context=anonymous).read()
    probe = subprocess.run([*node.args(), "--healthcheck"], capture_output=True, timeout=30)
    assert probe.returncode == 0, probe.stderr.decode(errors="replace")[-2000:]


@pytest.mark.timeout(60)
def test_a_token_file_that_is_not_a_token_stops_the_node(shoal_factory, tmp_path):
    token_file = tmp_path / "admin.token"
    token_file.write_text("short\n")
    node = shoal_factory({"admin.listener.token.file": str(token_file)}, start=False)
    proc = subprocess.run(node.args(), cwd=node.workdir, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=60)
    out = proc.stderr.decode(errors="replace") + proc.stdout.decode(errors="replace")
    assert proc.returncode != 0 and "admin.listener.token.file" in out, out[-2000:]


@pytest.mark.timeout(120)
def test_garbage_truncated_and_stalled_tls_handshakes_are_closed(shoal_factory, tmp_path):
    """Bad input on a TLS port: random bytes, a ClientHello cut short, and a client that opens
    a connection and says nothing each get a closed connection and a count, never a crash;
    the listener keeps serving real clients."""
    import os

    certs = make_certs(tmp_path / "certs")
    node = ssl_node(shoal_factory, certs)
    before = handshake_failures(node)
    # A real ClientHello's first bytes, from Python's own TLS client.
    context = ssl.create_default_context(cafile=str(certs.ca))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert hello[0] == 0x16, hello[:5]
    for payload in (os.urandom(4096), hello[: len(hello) // 2]):
        with socket.create_connection(("127.0.0.1", node.ssl_port), timeout=30) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(30)
            try:
                while s.recv(4096):
                    pass
            except (ConnectionResetError, TimeoutError):
                pass
    # Says nothing: closed after the 10 s handshake timeout.
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", node.ssl_port), timeout=30) as s:
        s.settimeout(30)
        try:
            assert s.recv(1) == b""
        except ConnectionResetError:
            pass
    waited = time.monotonic() - started
    assert 5 < waited < 25, f"a silent client was closed after {waited:.1f} s"
    wait_until("every bad handshake is counted", lambda: handshake_failures(node) >= before + 3)
    assert node.running, node.tail()
    assert can_list_topics(f"127.0.0.1:{node.ssl_port}", ssl_conf(certs))
