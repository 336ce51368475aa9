"""Client quotas (KIP-546, issue #19): AlterClientQuotas / DescribeClientQuotas over the wire
and through `shoalctl quota`, surviving a restart, with Kafka's codes for bad input; and the
quotas enforced: a producer and a consumer over their byte rates are held to them, and a client
over its request_percentage is throttled (the broker answers throttle_time_ms and mutes the
connection), while a client without a quota on the same broker is never throttled."""

from __future__ import annotations

import re
import threading
import time
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition

from cluster import create_topic
from conftest import ShoalNode
import kafka_wire as kw
from kafka_wire import Conn, alter_client_quotas_v0, describe_client_quotas_v0
from test_cli import ctl, js, one_line_error

INVALID_REQUEST = 42
UNSUPPORTED_VERSION = 35
MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2


def wire(node: ShoalNode) -> Conn:
    host, port = node.bootstrap.split(":")
    return Conn(host, int(port))


def test_quotas_are_set_described_refused_and_survive_a_restart(tmp_path):
    node = ShoalNode(tmp_path / "quotas", name="quotas")
    node.start()
    try:
        # shoalctl: set, list (table and JSON), per entity kind and the defaults.
        r = ctl(node, "quota", "set", "--user", "alice", "--quota", "producer_byte_rate=1048576",
                "--quota", "consumer_byte_rate=2097152")
        assert r.returncode == 0, r.stderr
        assert ctl(node, "quota", "set", "--user-default", "--client-id", "app",
                   "--quota", "producer_byte_rate=4096").returncode == 0
        assert ctl(node, "quota", "set", "--client-id-default", "--quota", "consumer_byte_rate=8192").returncode == 0
        # validate-only changes nothing.
        assert ctl(node, "quota", "set", "--user", "carol", "--quota", "producer_byte_rate=1",
                   "--validate-only").returncode == 0
        rows = js(ctl(node, "-o", "json", "quota", "list"))
        assert {(json_part(r["user"]), json_part(r["client_id"]), r["quota"], r["value"]) for r in rows} == {
            ("alice", None, "producer_byte_rate", 1048576.0),
            ("alice", None, "consumer_byte_rate", 2097152.0),
            ("<default>", "app", "producer_byte_rate", 4096.0),
            (None, "<default>", "consumer_byte_rate", 8192.0),
        }
        table = ctl(node, "quota", "list", "--user", "alice").stdout
        assert re.search(r"^alice\s+-\s+producer_byte_rate\s+1048576$", table, re.M), table

        # Over the wire (v0): filters as Kafka matches them.
        with wire(node) as conn:
            code, _, entries = describe_client_quotas_v0(conn, [("user", MATCH_DEFAULT, None)])
            assert code == 0 and entries == [({"user": None, "client-id": "app"}, {"producer_byte_rate": 4096.0})]
            code, _, entries = describe_client_quotas_v0(conn, [("client-id", MATCH_SPECIFIED, None)], strict=True)
            assert code == 0 and entries == [({"client-id": None}, {"consumer_byte_rate": 8192.0})]
            code, _, entries = describe_client_quotas_v0(conn, [("user", MATCH_EXACT, "nobody")])
            assert (code, entries) == (0, [])

            # Bad input: Kafka's codes, nothing changes.
            for entity, ops, needle in [
                ([("user", "bob")], [("producer_byte_rate", -5.0, False)], "must be greater than 0"),
                ([("user", "bob")], [("no_such_rate", 5.0, False)], "Invalid configuration key no_such_rate"),
                ([("user", "bob")], [("controller_mutation_rate", 50.0, False)], "Invalid configuration key"),
                ([("user", "bob")], [("producer_byte_rate", 1.5, False)], "must be a Long value"),
                ([], [("producer_byte_rate", 5.0, False)], "empty client quota entity"),
                ([("user", "a"), ("user", "b")], [("producer_byte_rate", 5.0, False)], "Duplicate user"),
                ([("topic", "t")], [("producer_byte_rate", 5.0, False)], "Unhandled client quota entity type"),
                ([("ip", "10.0.0.1")], [("connection_creation_rate", 5.0, False)], "IP quotas"),
            ]:
                code, message = alter_client_quotas_v0(conn, entity, ops)
                assert code == INVALID_REQUEST and needle in (message or ""), (entity, ops, code, message)
            for components, want in [
                ([("user", MATCH_EXACT, None)], INVALID_REQUEST),
                ([("user", MATCH_DEFAULT, "x")], INVALID_REQUEST),
                ([("user", MATCH_DEFAULT, None), ("user", MATCH_SPECIFIED, None)], INVALID_REQUEST),
                ([("topic", MATCH_SPECIFIED, None)], UNSUPPORTED_VERSION),
                ([("user", 9, None)], UNSUPPORTED_VERSION),
            ]:
                code, message, entries = describe_client_quotas_v0(conn, components)
                assert code == want and message and entries == [], (components, code, message)
        one_line_error(ctl(node, "quota", "set", "--user", "bob", "--quota", "producer_byte_rate=0"), 1,
                       "INVALID_REQUEST", "must be greater than 0")
        one_line_error(ctl(node, "quota", "delete", "--user", "nobody"), 1, "user=nobody has no quotas")

        # The quotas are metadata: a restart keeps them.
        node.restart()
        after = js(ctl(node, "-o", "json", "quota", "list"))
        assert sorted(map(str, after)) == sorted(map(str, rows))

        # delete: one key, then every key of an entity.
        assert ctl(node, "quota", "delete", "--user", "alice", "--quota", "consumer_byte_rate").returncode == 0
        assert [r["quota"] for r in js(ctl(node, "-o", "json", "quota", "list", "--user", "alice"))] == [
            "producer_byte_rate"]
        assert ctl(node, "quota", "delete", "--user", "alice").returncode == 0
        assert js(ctl(node, "-o", "json", "quota", "list", "--user", "alice", "--strict")) == []
    finally:
        node.close()


def json_part(part):
    if part is None:
        return None
    return "<default>" if part.get("default") else part["name"]


def throttle_series(node: ShoalNode) -> dict[tuple[str, str], int]:
    """{(quota_type, client_id): throttled responses} from the node's /metrics."""
    text = urllib.request.urlopen(f"{node.admin_url}/metrics", timeout=10).read().decode()
    series = {}
    for m in re.finditer(r'^shoal_quota_throttle_time_seconds_count\{([^}]*)\} (\S+)$', text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        series[(labels["quota_type"], labels["client_id"])] = int(float(m.group(2)))
    return series


QUOTA_BYTES_PER_SECOND = 200 * 1024
VALUE_BYTES = 1000
WARMUP_S = 3.0
MEASURE_S = 15.0


def test_a_producer_over_its_quota_is_held_to_it_and_a_client_without_one_is_not_throttled(tmp_path):
    node = ShoalNode(tmp_path / "enforced", name="enforced")
    node.start()
    try:
        create_topic(node.bootstrap, "quota-in", partitions=2, rf=1)
        r = ctl(node, "quota", "set", "--client-id", "throttled",
                "--quota", f"producer_byte_rate={QUOTA_BYTES_PER_SECOND}")
        assert r.returncode == 0, r.stderr

        delivered: list[tuple[float, int]] = []
        errors: list[str] = []

        def on_delivery(err, msg):
            if err is not None:
                errors.append(str(err))
            else:
                delivered.append((time.monotonic(), len(msg.value())))

        # Small batches, so the rate is measured in fine steps (one 1 MB batch would be five
        # seconds of this quota).
        p = Producer({"bootstrap.servers": node.bootstrap, "client.id": "throttled", "acks": "all",
                      "linger.ms": 5, "batch.size": 16384, "queue.buffering.max.messages": 2000})
        free_done: list[int] = []

        def free_producer():
            # A client without a quota, on the same broker at the same time.
            f = Producer({"bootstrap.servers": node.bootstrap, "client.id": "free", "acks": "all", "linger.ms": 5})
            sent = 0
            deadline = time.monotonic() + WARMUP_S + MEASURE_S
            while time.monotonic() < deadline and sent < 200_000:
                f.produce("quota-in", value=b"y" * 100)
                sent += 1
                if sent % 500 == 0:
                    f.flush(30)
                    time.sleep(0.05)
            assert f.flush(30) == 0
            free_done.append(sent)

        free = threading.Thread(target=free_producer)
        free.start()
        start = time.monotonic()
        end = start + WARMUP_S + MEASURE_S
        produced = 0
        while time.monotonic() < end and produced < 1_000_000:
            try:
                p.produce("quota-in", value=b"x" * VALUE_BYTES, on_delivery=on_delivery)
                produced += 1
            except BufferError:
                p.poll(0.05)
            p.poll(0)
        free.join(60)
        assert free_done, "the unthrottled producer did not finish"
        p.flush(60)
        assert not errors, errors[:3]

        window = [n for t, n in delivered if start + WARMUP_S <= t < end]
        rate = sum(window) / MEASURE_S
        print(f"produce: {rate:.0f} B/s against a quota of {QUOTA_BYTES_PER_SECOND}")
        assert abs(rate - QUOTA_BYTES_PER_SECOND) / QUOTA_BYTES_PER_SECOND < 0.10, \
            f"{rate:.0f} B/s against a quota of {QUOTA_BYTES_PER_SECOND}"
        series = throttle_series(node)
        assert series.get(("produce", "throttled"), 0) > 0, series
        assert not any(client == "free" for _, client in series), series
    finally:
        node.close()


CONSUMER_QUOTA_BYTES_PER_SECOND = 256 * 1024


def test_a_consumer_over_its_quota_is_held_to_it(tmp_path):
    node = ShoalNode(tmp_path / "fetch", name="fetch")
    node.start()
    try:
        create_topic(node.bootstrap, "quota-out", partitions=1, rf=1)
        p = Producer({"bootstrap.servers": node.bootstrap, "client.id": "loader", "linger.ms": 20, "batch.size": 16384})
        for _ in range(8_000):
            p.produce("quota-out", value=b"z" * VALUE_BYTES)
            p.poll(0)
        assert p.flush(60) == 0
        assert ctl(node, "quota", "set", "--client-id", "slow-reader",
                   "--quota", f"consumer_byte_rate={CONSUMER_QUOTA_BYTES_PER_SECOND}").returncode == 0
        # Small fetches, so the rate is measured in fine steps.
        c = Consumer({"bootstrap.servers": node.bootstrap, "client.id": "slow-reader", "group.id": "slow",
                      "enable.auto.commit": False, "fetch.max.bytes": 65536, "message.max.bytes": 65536,
                      "max.partition.fetch.bytes": 65536})
        try:
            c.assign([TopicPartition("quota-out", 0, 0)])
            start = time.monotonic()
            end = start + WARMUP_S + MEASURE_S
            counted = 0
            while time.monotonic() < end:
                for m in c.consume(100, timeout=0.2):
                    if m.error() is None and time.monotonic() >= start + WARMUP_S:
                        counted += len(m.value())
        finally:
            c.close()
        rate = counted / MEASURE_S
        print(f"fetch: {rate:.0f} B/s against a quota of {CONSUMER_QUOTA_BYTES_PER_SECOND}")
        assert abs(rate - CONSUMER_QUOTA_BYTES_PER_SECOND) / CONSUMER_QUOTA_BYTES_PER_SECOND < 0.10, \
            f"{rate:.0f} B/s against a quota of {CONSUMER_QUOTA_BYTES_PER_SECOND}"
        assert throttle_series(node).get(("fetch", "slow-reader"), 0) > 0
    finally:
        node.close()


def metadata_throttle_ms(conn: Conn, client_id: str, correlation_id: int) -> int:
    """One Metadata v4 request as `client_id`; the answer's throttle_time_ms."""
    conn.send(kw.request(3, 4, correlation_id, kw.metadata_v4_body(None, False), client_id=client_id))
    r = kw.Reader(conn.recv_frame())
    assert r.i32() == correlation_id
    return r.i32()


def test_a_client_over_its_request_percentage_is_throttled_and_muted(tmp_path):
    node = ShoalNode(tmp_path / "requests", name="requests")
    node.start()
    try:
        # 0.01 % of a thread: 100 microseconds of request handling per second.
        assert ctl(node, "quota", "set", "--client-id", "busy", "--quota", "request_percentage=0.01").returncode == 0
        with wire(node) as busy, wire(node) as free:
            throttled = None
            deadline = time.monotonic() + 20
            for i in range(1, 500):
                if time.monotonic() > deadline:
                    break
                assert metadata_throttle_ms(free, "free", i) == 0, "a client without a quota was throttled"
                t = metadata_throttle_ms(busy, "busy", i)
                if t > 0:
                    throttled = t
                    break
            assert throttled, "a client over its request_percentage was never throttled"
            # The connection is muted for the throttle time: the next answer comes no sooner.
            started = time.monotonic()
            metadata_throttle_ms(busy, "busy", 1000)
            waited_ms = (time.monotonic() - started) * 1000
            assert waited_ms >= 0.8 * throttled, f"answered after {waited_ms:.0f} ms, throttled {throttled} ms"
        assert throttle_series(node).get(("request", "busy"), 0) > 0
    finally:
        node.close()
