"""Settings that mean what they say: a node with no arguments, Kafka's stock property file,
and start-up errors that name the setting.

The no-argument node runs exactly as a new user starts it: `shoal` alone, in an empty working
directory (data in ./data), on the default ports 9092-9094 and 9644, which must be free.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from checker import check
from clients import ck_admin, ck_create_topic, ck_produce, unique_topic
from conftest import ShoalNode, free_port, port_in_use, shoal_bin
from members import Member, group_reads, wait_until
from test_groups import committed_offsets, end_offsets

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DEFAULT_PORTS = {"kafka": 9092, "controller": 9093, "replication": 9094, "admin": 9644}
SESSION_TIMEOUT_MS = 10_000  # within the default group.min/max.session.timeout.ms


class BareNode(ShoalNode):
    """`shoal` with no arguments at all, in its own working directory."""

    def __init__(self, workdir: Path):
        super().__init__(workdir, name="bare")
        self.kafka_port = DEFAULT_PORTS["kafka"]
        self.admin_port = DEFAULT_PORTS["admin"]
        self.controller_port = DEFAULT_PORTS["controller"]
        self.replication_port = DEFAULT_PORTS["replication"]

    def args(self) -> list[str]:
        return [str(shoal_bin())]


class PropertiesNode(ShoalNode):
    """`shoal --config server.properties`, plus Shoal's own two listeners on free ports."""

    def __init__(self, workdir: Path, properties: Path):
        super().__init__(workdir, name="stock")
        self.properties = properties

    def args(self) -> list[str]:
        return [str(shoal_bin()), "--config", str(self.properties),
                "--override", f"admin.listener=127.0.0.1:{self.admin_port}",
                "--override", f"replication.listener=127.0.0.1:{self.replication_port}"]


@pytest.mark.timeout(300)
def test_a_node_with_no_arguments_serves_consumer_groups(tmp_path):
    busy = [f"{name} {port}" for name, port in DEFAULT_PORTS.items() if port_in_use(port)]
    assert not busy, f"the default ports must be free for this test; in use: {busy}"
    node = BareNode(tmp_path / "bare").start()
    members: list[Member] = []
    try:
        bootstrap = node.bootstrap
        topic = unique_topic("bare")
        group = f"g-{topic}"
        ck_create_topic(bootstrap, topic, partitions=6, replication_factor=1)
        first = ck_produce(bootstrap, topic, 3000, prefix="a", conf={"acks": "all"})
        assert not first.errors, first.errors[:3]

        members = [Member("ck", bootstrap, topic, group, f"bare-m{i}", log_dir=tmp_path,
                          session_timeout_ms=SESSION_TIMEOUT_MS, max_seconds=240) for i in range(3)]
        wait_until(lambda: all(m.assignment() is not None and len(m.assignment()) == 2 for m in members),
                   90, "two partitions per member", members)
        assert sorted(p for m in members for p in m.assignment()) == list(range(6))
        wait_until(lambda: len({(p, o) for m in members for _, p, o in m.records()}) >= 3000,
                   90, "3000 records consumed", members)
        reads = group_reads({m.name: m.snapshot() for m in members})
        rep = check(first.acked, reads.seen, by_key=False)
        assert rep.ok and not rep.unacked, rep.summary()
        wait_until(lambda: committed_offsets(bootstrap, group, topic, 6) == end_offsets(first.acked), 60,
                   "the group's commits to reach the log ends")
        for m in members:
            m.stop()

        # A member that starts again resumes from the commits: it reads only what came after.
        second = ck_produce(bootstrap, topic, 600, prefix="b", conf={"acks": "all"})
        assert not second.errors, second.errors[:3]
        again = Member("ck", bootstrap, topic, group, "bare-again", log_dir=tmp_path,
                       session_timeout_ms=SESSION_TIMEOUT_MS, max_seconds=120)
        members.append(again)
        wait_until(lambda: len(again.records()) >= 600, 90, "the 600 new records", [again])
        time.sleep(1)  # anything re-read would show up now
        old = {(a.partition, a.offset) for a in first.acked}
        reread = [r for r in again.records() if (r[1], r[2]) in old]
        assert not reread, f"re-read records committed before the restart: {reread[:5]}"
        rep = check(second.acked, group_reads({again.name: again.snapshot()}).seen, by_key=False)
        assert rep.ok and not rep.unacked, rep.summary()
        log = node.log_path.read_text(errors="replace")
        assert "single-node cluster: creating __consumer_offsets with 1 replica" in log
    finally:
        for m in members:
            m.stop()
        node.stop()


@pytest.mark.timeout(120)
def test_kafkas_stock_server_properties_starts_a_node(tmp_path):
    """Apache Kafka 4.0's config/server.properties, with only its paths and ports rewritten."""
    kafka_port, controller_port = free_port(), free_port()
    text = (FIXTURES / "kafka-4.0-server.properties").read_text()
    text = text.replace("/tmp/kraft-combined-logs", str(tmp_path / "kraft-combined-logs"))
    # Tests listen on 127.0.0.1 only, on ports of their own.
    text = text.replace("://:9092", f"://127.0.0.1:{kafka_port}").replace("://:9093", f"://127.0.0.1:{controller_port}")
    text = text.replace("localhost:9092", f"localhost:{kafka_port}").replace("localhost:9093", f"localhost:{controller_port}")
    props = tmp_path / "server.properties"
    props.write_text(text)
    node = PropertiesNode(tmp_path / "stock", props)
    node.kafka_port = kafka_port
    node.start()
    try:
        topic = unique_topic("stock")
        ck_create_topic(node.bootstrap, topic, partitions=2, replication_factor=1)
        produced = ck_produce(node.bootstrap, topic, 200, prefix="s", conf={"acks": "all"})
        assert not produced.errors, produced.errors[:3]
        # log.retention.hours=168 from the file is in effect (as retention.ms), not a default.
        admin = ck_admin(node.bootstrap)
        from confluent_kafka.admin import ConfigResource
        res = ConfigResource(ConfigResource.Type.TOPIC, topic)
        configs = admin.describe_configs([res])[res].result(timeout=20)
        retention = configs["retention.ms"]
        assert retention.value == str(168 * 3600 * 1000)
        assert retention.source == 4, retention  # STATIC_BROKER_CONFIG
        assert (tmp_path / "kraft-combined-logs" / f"{topic}-0").is_dir()
        log = node.log_path.read_text(errors="replace")
        for ignored in ["num.network.threads", "num.io.threads", "socket.send.buffer.bytes"]:
            assert len(re.findall(rf"{re.escape(ignored)} is accepted and ignored", log)) == 1, ignored
        # The stock file's transaction settings (replication factor 1, min ISR 1) are applied.
        assert "transaction.state.log.replication.factor is accepted and ignored" not in log
        # Its controller.quorum.bootstrap.servers names only this node: a one-voter quorum, as
        # `kafka-storage format --standalone` makes; a restart finds the voters in its own log.
        assert "names only this node: starting a one-voter quorum" in log
        node.restart()
        again = ck_produce(node.bootstrap, topic, 20, prefix="r", conf={"acks": "all"})
        assert not again.errors, again.errors[:3]
    finally:
        node.stop()


@pytest.mark.parametrize(
    "override,expected",
    [
        ("num.partitionz=3", 'unknown config "num.partitionz" (did you mean "num.partitions"?)'),
        ("log.retention.ms=-5", "Invalid value -5 for configuration log.retention.ms: Value must be at least -1"),
        ("log.cleanup.policy=bogus", "log.cleanup.policy"),
        ("listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL", "CONTROLLER uses SASL_SSL"),
        ("listener.security.protocol.map=PLAINTEXT:SASL_SSL,CONTROLLER:PLAINTEXT", "ssl.keystore.location"),
        ("listener.security.protocol.map=PLAINTEXT:SSL,CONTROLLER:PLAINTEXT", "ssl.keystore.location"),
    ],
)
def test_startup_errors_name_the_setting(tmp_path, override, expected):
    admin, kafka, ctl = free_port(), free_port(), free_port()
    proc = subprocess.run(
        [str(shoal_bin()), "--data-dir", str(tmp_path / "data"),
         "--override", f"listeners=PLAINTEXT://127.0.0.1:{kafka},CONTROLLER://127.0.0.1:{ctl}",
         "--override", f"admin.listener=127.0.0.1:{admin}",
         "--override", f"replication.listener=127.0.0.1:{free_port()}",
         "--override", override],
        capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode != 0
    assert expected in proc.stderr.decode(errors="replace"), proc.stderr.decode(errors="replace")
