"""ACL authorization (issue #16) with real clients: principals from TLS client certificates
(ssl.principal.mapping.rules), ACLs created with kafka-python's admin client and shoalctl,
listed with confluent-kafka's, and enforced on librdkafka, kcat and kafka-python.

The issue's scenario: alice may only READ topics prefixed `orders-` and the group `billing`.
She consumes `orders-eu` in `billing`, cannot read `payments`, cannot produce, and sees only
`orders-eu` in Metadata; the anonymous PLAINTEXT listener sees nothing. Denials are audit log
lines and counted in /metrics.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   ResourcePatternType, ResourceType)

from clients import ck_produce, kcat
from test_cli import ctl, js, ok
from test_metrics import scrape, value
from test_security import ssl_conf, ssl_node
from tls_certs import make_certs, make_leaf

STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


def secured_node(shoal_factory, tmp_path):
    """An SSL listener requiring client certificates (CN=<name> is User:<name>), the
    authorizer on, User:admin a super user; returns (node, certs, admin_conf, alice_conf)."""
    certs = make_certs(tmp_path / "certs")
    admin_cert, admin_key = make_leaf(certs.directory, (certs.ca, certs.directory / "ca.key"),
                                      "admin", server=False)
    node = ssl_node(shoal_factory, certs, {
        "listener.name.ssl.ssl.client.auth": "required",
        "listener.name.ssl.ssl.truststore.location": str(certs.ca),
        "ssl.principal.mapping.rules": "RULE:^CN=([a-z]+)$/$1/",
        "authorizer.class.name": STANDARD_AUTHORIZER,
        "super.users": "User:admin",
    })
    admin_conf = {**ssl_conf(certs), "ssl.certificate.location": str(admin_cert),
                  "ssl.key.location": str(admin_key)}
    alice_conf = ssl_conf(certs, client_cert=True)  # CN=alice
    return node, certs, admin_conf, alice_conf


def consume_group(bootstrap: str, conf: dict, group: str, topic: str, expected: int,
                  timeout: float = 60.0) -> tuple[int, list[int]]:
    """Consume `topic` in `group` until `expected` records or the first error; commit.
    Returns (records, error codes seen)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **conf,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got, errors = 0, []
    deadline = time.monotonic() + timeout
    try:
        while got < expected and not errors and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                errors.append(msg.error().code())
                continue
            got += 1
        if got and not errors:
            c.commit(asynchronous=False)
    finally:
        c.close()
    return got, errors


@pytest.mark.timeout(300)
def test_a_reader_of_orders_consumes_orders_and_nothing_else(shoal_factory, tmp_path):
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType,
                             ACLResourcePatternType, KafkaAdminClient, ResourcePattern,
                             ResourcePatternFilter)
    from kafka.admin import ResourceType as KpResourceType

    node, certs, admin_conf, alice_conf = secured_node(shoal_factory, tmp_path)
    bootstrap = f"127.0.0.1:{node.ssl_port}"
    admin = AdminClient({"bootstrap.servers": bootstrap, **admin_conf})
    from confluent_kafka.admin import NewTopic
    for topic in ("orders-eu", "payments"):
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        produced = ck_produce(bootstrap, topic, 50, conf={**admin_conf, "acks": "all"})
        assert not produced.errors and len(produced.acked) == 50, produced.errors[:3]

    # kafka-python's admin client (as the super user) grants READ on the prefix orders-.
    kp_ssl = dict(security_protocol="SSL", ssl_cafile=str(certs.ca),
                  ssl_certfile=admin_conf["ssl.certificate.location"],
                  ssl_keyfile=admin_conf["ssl.key.location"])
    kp_admin = KafkaAdminClient(bootstrap_servers=bootstrap, **kp_ssl)
    read_orders = ACL(principal="User:alice", host="*", operation=ACLOperation.READ,
                      permission_type=ACLPermissionType.ALLOW,
                      resource_pattern=ResourcePattern(KpResourceType.TOPIC, "orders-",
                                                       ACLResourcePatternType.PREFIXED))
    result = kp_admin.create_acls([read_orders])
    assert not result["failed"] and len(result["succeeded"]) == 1, result
    # shoalctl (kafka-acls' flags) grants READ on the group billing.
    props = tmp_path / "admin.properties"
    props.write_text(f"security.protocol=SSL\nssl.ca.location={certs.ca}\n"
                     f"ssl.certificate.location={admin_conf['ssl.certificate.location']}\n"
                     f"ssl.key.location={admin_conf['ssl.key.location']}\n")
    secure = ["--command-config", str(props)]
    ok(ctl(bootstrap, *secure, "acl", "create", "--group", "billing",
           "--allow-principal", "User:alice", "--operation", "Read"))
    # confluent-kafka's admin client lists both; so do kafka-python's and shoalctl.
    listed = admin.describe_acls(AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
        AclOperation.ANY, AclPermissionType.ANY)).result(30)
    assert sorted((b.restype.name, b.name, b.resource_pattern_type.name, b.principal,
                   b.operation.name) for b in listed) == [
        ("GROUP", "billing", "LITERAL", "User:alice", "READ"),
        ("TOPIC", "orders-", "PREFIXED", "User:alice", "READ"),
    ]
    acls, error = kp_admin.describe_acls(ACLFilter(
        principal="User:alice", host="*", operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(KpResourceType.ANY, None, ACLResourcePatternType.ANY)))
    assert error is kafka_no_error() and len(acls) == 2, (acls, error)
    rows = js(ctl(bootstrap, *secure, "acl", "list", "-o", "json"))
    assert {(r["resource_type"], r["name"]) for r in rows} == {("GROUP", "billing"), ("TOPIC", "orders-")}

    # alice consumes orders-eu in billing (librdkafka: join, fetch, commit).
    got, errors = consume_group(bootstrap, alice_conf, "billing", "orders-eu", 50)
    assert (got, errors) == (50, []), errors
    # ... but not payments, and not in another group.
    got, errors = consume_group(bootstrap, alice_conf, "billing", "payments", 1, timeout=30)
    assert got == 0 and KafkaError.TOPIC_AUTHORIZATION_FAILED in errors, errors
    got, errors = consume_group(bootstrap, alice_conf, "other", "orders-eu", 1, timeout=30)
    assert got == 0 and KafkaError.GROUP_AUTHORIZATION_FAILED in errors, errors
    # She cannot produce, even to the topic she reads.
    produced = ck_produce(bootstrap, "orders-eu", 3, conf={**alice_conf, "acks": "all",
                                                           "message.timeout.ms": 10000})
    assert not produced.acked and produced.errors, produced
    assert all("TOPIC_AUTHORIZATION_FAILED" in str(e) for e in produced.errors), produced.errors[:3]
    # Metadata: she sees only orders-eu (librdkafka and kcat); anonymous PLAINTEXT sees nothing.
    alice_admin = AdminClient({"bootstrap.servers": bootstrap, **alice_conf})
    assert sorted(alice_admin.list_topics(timeout=30).topics) == ["orders-eu"]
    kcat_alice = ["-b", bootstrap, "-X", "security.protocol=ssl", "-X", f"ssl.ca.location={certs.ca}",
                  "-X", f"ssl.certificate.location={certs.client_cert}",
                  "-X", f"ssl.key.location={certs.client_key}"]
    proc = kcat([*kcat_alice, "-L", "-J"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [t["topic"] for t in json.loads(proc.stdout)["topics"]] == ["orders-eu"]
    proc = kcat([*kcat_alice, "-C", "-t", "orders-eu", "-p", "0", "-o", "beginning", "-e", "-q"], timeout=60)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 50, proc.stderr
    anonymous = AdminClient({"bootstrap.servers": node.bootstrap})
    assert sorted(anonymous.list_topics(timeout=30).topics) == []

    # DescribeLogDirs needs DESCRIBE on the cluster: alice gets no directories, the admin one.
    kp_alice = KafkaAdminClient(bootstrap_servers=bootstrap, security_protocol="SSL",
                                ssl_cafile=str(certs.ca), ssl_certfile=str(certs.client_cert),
                                ssl_keyfile=str(certs.client_key))
    try:
        assert [r["log_dirs"] for r in kp_alice.describe_log_dirs()] == [[]]
        # UpdateFeatures needs ALTER on the cluster (kafka-python's update_features).
        with pytest.raises(Exception, match="ClusterAuthorizationFailed"):
            kp_alice.update_features({"transaction.version": 2})
    finally:
        kp_alice.close()
    # Reassignments and unregistering a broker need ALTER on the cluster, listing moves
    # DESCRIBE (shoalctl as alice): refused whole, nothing changes.
    alice_props = tmp_path / "alice.properties"
    alice_props.write_text(f"security.protocol=SSL\nssl.ca.location={certs.ca}\n"
                           f"ssl.certificate.location={alice_conf['ssl.certificate.location']}\n"
                           f"ssl.key.location={alice_conf['ssl.key.location']}\n")
    as_alice = ["--command-config", str(alice_props)]
    for verb in (["partition", "reassign", f"--move=orders-eu:0={node.node_id}"],
                 ["partition", "reassignments"], ["broker", "unregister", "77"]):
        r = ctl(bootstrap, *as_alice, *verb)
        assert r.returncode == 1 and "CLUSTER_AUTHORIZATION_FAILED" in r.stderr, (verb, r.stderr)
    assert js(ctl(bootstrap, *secure, "partition", "reassignments", "-o", "json")) == []
    (admin_dirs,) = kp_admin.describe_log_dirs()
    assert [d["error_code"] for d in admin_dirs["log_dirs"]] == [0], admin_dirs
    assert kp_admin.update_features({"transaction.version": 2}) == {"transaction.version": "OK"}

    # Every denial is an audit line and a count.
    log = node.log_path.read_text(errors="replace")
    assert any("shoal::audit" in line and "User:alice" in line and "denied" in line
               for line in log.splitlines()), node.tail()
    denials = value(scrape(node.admin_url), "shoal_authorization_denials_total", api="Produce")
    assert denials >= 1

    # shoalctl acl delete: lists without --force, deletes with it; alice loses the topic.
    r = ctl(bootstrap, *secure, "acl", "delete", "--topic", "orders-", "--resource-pattern-type", "prefixed")
    assert r.returncode == 1 and "orders-" in r.stdout, (r.stdout, r.stderr)
    ok(ctl(bootstrap, *secure, "acl", "delete", "--topic", "orders-", "--resource-pattern-type",
           "prefixed", "--force"))
    assert sorted(alice_admin.list_topics(timeout=30).topics) == []
    kp_admin.close()


def kafka_no_error():
    from kafka.errors import NoError
    return NoError


@pytest.mark.timeout(180)
def test_acls_need_the_authorizer_and_outlive_a_restart(shoal_factory, tmp_path):
    """Without authorizer.class.name the ACL APIs answer SECURITY_DISABLED (Kafka's answer);
    with it, ACLs are metadata records and survive a restart; a bad ACL is refused."""
    node = shoal_factory()
    r = ctl(node, "acl", "list")
    assert r.returncode != 0 and "SECURITY_DISABLED" in r.stderr, (r.stdout, r.stderr)
    node.stop()
    node.overrides.update({"authorizer.class.name": STANDARD_AUTHORIZER,
                           "super.users": "User:ANONYMOUS"})
    node.start()
    topic = f"audit-{uuid.uuid4().hex[:6]}"
    ok(ctl(node, "acl", "create", "--topic", topic, "--allow-principal", "User:bob",
           "--operation", "Write", "--operation", "Describe"))
    r = ctl(node, "acl", "create", "--topic", "*", "--resource-pattern-type", "prefixed",
            "--allow-principal", "User:bob")
    assert r.returncode != 0 and "wildcard" in r.stderr, (r.stdout, r.stderr)
    before = js(ctl(node, "acl", "list", "-o", "json"))
    assert len(before) == 2, before
    node.stop()
    node.start()
    assert js(ctl(node, "acl", "list", "-o", "json")) == before
    # The anonymous super user still produces (super.users bypasses the ACLs).
    producer = Producer({"bootstrap.servers": node.bootstrap})
    producer.produce(topic, b"x")
    assert producer.flush(30) == 0
