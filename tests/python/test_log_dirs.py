"""Several log directories per broker (`log.dirs`, Kafka's JBOD; issue #18), on the real binary:
new partitions spread over the directories, stay where they are across a restart, and
DescribeLogDirs (`shoalctl cluster log-dirs`) reports each directory with its partitions. A
directory that belongs to another node, or log.dirs entries inside each other, are refused at
start with the reason."""

from __future__ import annotations

import os
import subprocess

from confluent_kafka import Consumer, Producer, TopicPartition

from cluster import create_topic
from conftest import ShoalNode
from test_cli import ctl, js


def produce(bootstrap: str, topic: str, partitions: int, per_partition: int) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(per_partition):
        for part in range(partitions):
            p.produce(topic, value=f"v{i}".encode(), partition=part)
    assert p.flush(30) == 0


def count(bootstrap: str, topic: str, partitions: int, expected: int) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "log-dirs-count", "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        total = 0
        for _ in range(60):
            total += sum(1 for m in c.consume(1000, timeout=0.5) if m.error() is None)
            if total >= expected:
                break
        return total
    finally:
        c.close()


def placement(dirs: list, topic: str, partitions: int) -> dict[int, int]:
    """partition -> position of the log directory that holds it."""
    found = {}
    for p in range(partitions):
        holders = [i for i, d in enumerate(dirs) if (d / f"{topic}-{p}").is_dir()]
        assert len(holders) == 1, (p, holders)
        found[p] = holders[0]
    return found


def test_partitions_spread_over_log_dirs_and_survive_a_restart(tmp_path):
    node = ShoalNode(tmp_path / "jbod", name="jbod")
    extra = tmp_path / "jbod" / "second-disk"
    dirs = [node.data_dir, extra]
    node.overrides["log.dirs"] = f"{node.data_dir},{extra}"
    node.start()
    try:
        topic, partitions = "spread", 4
        create_topic(node.bootstrap, topic, partitions=partitions, rf=1)
        produce(node.bootstrap, topic, partitions, 50)
        placed = placement(dirs, topic, partitions)
        assert sorted(placed.values()) == [0, 0, 1, 1], placed
        props = (extra / "meta.properties").read_text()
        assert "directory.id=" in props and "node.id=1" in props, props

        out = js(ctl(node.bootstrap, "cluster", "log-dirs", "--topic", topic, "-o", "json"))
        (broker,) = out["brokers"]
        reported = {d["logDir"]: sorted(p["partition"] for p in d["partitions"]) for d in broker["logDirs"]}
        assert reported == {
            str(d.resolve()): sorted(f"{topic}-{p}" for p, i in placed.items() if i == pos)
            for pos, d in enumerate(dirs)
        }, reported
        assert all(d["error"] is None and d["usableBytes"] > 0 for d in broker["logDirs"])

        node.restart()
        assert placement(dirs, topic, partitions) == placed
        produce(node.bootstrap, topic, partitions, 50)
        assert count(node.bootstrap, topic, partitions, 400) == 400
    finally:
        node.close()


def refuses(node: ShoalNode) -> str:
    proc = subprocess.run(node.args(), cwd=node.workdir, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=20, env={k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")})
    out = (proc.stdout + proc.stderr).decode(errors="replace")
    assert proc.returncode != 0, out
    return out


def test_a_foreign_or_nested_log_dir_is_refused(tmp_path):
    nested = ShoalNode(tmp_path / "nested", name="nested")
    nested.overrides["log.dirs"] = f"{nested.data_dir},{nested.data_dir / 'inside'}"
    assert "one is the other or inside it" in refuses(nested)

    foreign = ShoalNode(tmp_path / "foreign", name="foreign")
    other = tmp_path / "foreign" / "other-node"
    other.mkdir(parents=True)
    (other / "meta.properties").write_text(
        "version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=5\ndirectory.id=AAAAAAAAAAAAAAAAAAAAAQ\n")
    foreign.overrides["log.dirs"] = f"{foreign.data_dir},{other}"
    out = refuses(foreign)
    assert "other-node" in out and "5" in out, out
    # Nothing was written into the refused directory.
    assert sorted(p.name for p in other.iterdir()) == ["meta.properties"]
