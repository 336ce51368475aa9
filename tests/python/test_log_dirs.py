"""Several log directories per broker (`log.dirs`, Kafka's JBOD; issue #18), on the real binary:
new partitions spread over the directories, stay where they are across a restart, and
DescribeLogDirs (`shoalctl cluster log-dirs`) reports each directory with its partitions. A
directory that belongs to another node, or log.dirs entries inside each other, are refused at
start with the reason. A broker whose second disk was replaced leaves every ISR and copies
back what it lost."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from cluster import Cluster, create_topic, metadata_from
from conftest import ShoalNode
from test_cli import ctl, js
from test_reassignment import all_in_sync, wait_until


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


def jbod_cluster(tmp_path):
    """Three combined nodes, node 3 with a second log directory; started. Returns it and that
    directory."""
    c = Cluster(tmp_path)
    extra = tmp_path / "node3-second-disk"
    c.node(3).overrides["log.dirs"] = f"{c.node(3).data_dir},{extra}"
    c.start()
    return c, extra


def test_a_broker_that_lost_one_of_its_log_dirs_leaves_every_isr_and_catches_up(tmp_path):
    """Node 3 of three keeps its partitions in two directories. Its second disk is replaced by
    an empty one while it is down: it comes back with a new directory id, so the controller
    takes it out of every ISR (it cannot tell which partitions the lost disk held), and node 3
    copies what it lost from the leaders. Every acknowledged record is still there, on node 3
    too, and every partition ends fully in sync."""
    c, extra = jbod_cluster(tmp_path)
    node3 = c.node(3)
    try:
        topic, partitions = "lost-disk", 6
        create_topic(c.bootstrap, topic, partitions=partitions, rf=3)
        produce(c.bootstrap, topic, partitions, 100)
        lost = [p for p in range(partitions) if (extra / f"{topic}-{p}").is_dir()]
        assert lost, "node 3 put some partitions on its second disk"
        old_id = (extra / "meta.properties").read_text()

        node3.stop()
        shutil.rmtree(extra)
        node3.start()
        assert (extra / "meta.properties").read_text() != old_id
        # Out of the ISRs at once (the re-registration), back in once caught up.
        wait_until("the controller takes node 3 out of the ISRs", lambda: any(
            "broker registered with new log directories" in n.log_path.read_text(errors="replace")
            for n in c.nodes), timeout=20)
        wait_until("every partition in sync again", lambda: all_in_sync(c.node(1)), timeout=60)
        for p in lost:
            assert (extra / f"{topic}-{p}").is_dir() or (node3.data_dir / f"{topic}-{p}").is_dir()
        # Node 3 holds every partition again, caught up.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sizes = {}
            out = js(ctl(node3.bootstrap, "cluster", "log-dirs", "--broker", "3", "--topic", topic, "-o", "json"))
            for d in out["brokers"][0]["logDirs"]:
                for part in d["partitions"]:
                    sizes[part["partition"]] = (part["size"], part["offsetLag"])
            if len(sizes) == partitions and all(size > 0 and lag == 0 for size, lag in sizes.values()):
                break
            time.sleep(0.5)
        assert len(sizes) == partitions and all(s > 0 for s, _ in sizes.values()), sizes
        assert count(c.bootstrap, topic, partitions, 600) == 600
        assert all_in_sync(c.node(2)), metadata_from(c.node(2)).topics[topic]
    finally:
        c.close()


def test_a_log_dir_that_fails_while_running_goes_offline_and_nothing_is_lost(tmp_path):
    """Node 3 of three keeps partitions in two directories; under an idempotent acks=all load
    its second directory vanishes (removed from under the running broker: the next segment it
    rolls there cannot be created). That directory goes offline alone: node 3 reports its
    partitions offline, the controller takes node 3 out of their ISRs and moves their
    leadership; the partitions in node 3's first directory stay in sync. The checker finds
    nothing lost, duplicated or reordered, and DescribeLogDirs reports the failed directory
    with KAFKA_STORAGE_ERROR."""
    from checker import check
    from test_reassignment import assert_clean
    from workload import IdempotentWorkload, read_all

    c, extra = jbod_cluster(tmp_path)
    node3 = c.node(3)
    try:
        topic, partitions = "failing-disk", 6
        create_topic(c.bootstrap, topic, partitions=partitions, rf=3, config={"segment.bytes": "16384"})
        load = IdempotentWorkload(c.bootstrap, topic, partitions, rate=1000, max_records=100_000).start()
        wait_until("records acknowledged", lambda: load.acked_count() > 1000)
        lost = sorted(p for p in range(partitions) if (extra / f"{topic}-{p}").is_dir())
        kept = sorted(set(range(partitions)) - set(lost))
        assert lost and kept, (lost, kept)

        shutil.rmtree(extra)

        def isr(p):
            return sorted(metadata_from(c.node(1)).topics[topic][p][3])
        wait_until("node 3 leaves the ISRs of the lost partitions",
                   lambda: all(3 not in isr(p) for p in lost), timeout=30)
        acked_then = load.acked_count()
        wait_until("the load goes on", lambda: load.acked_count() > acked_then + 1000, timeout=30)
        assert all(3 in isr(p) for p in kept), {p: isr(p) for p in kept}
        assert node3.running, "the broker keeps running"
        out = ctl(node3.bootstrap, "cluster", "log-dirs", "--broker", "3", "-o", "json")
        dirs = {d["logDir"]: d for d in json.loads(out.stdout)["brokers"][0]["logDirs"]}
        assert dirs[str(extra.resolve())]["error"], dirs
        assert dirs[str(node3.data_dir.resolve())]["error"] is None, dirs

        log = load.stop()
        report = check(log.acked, read_all(c.bootstrap, topic, partitions), by_key=False)
        print(f"{report.summary()}; {len(log.acked)} acknowledged")
        assert_clean(report, log)
    finally:
        c.close()


def futures_in(dirs) -> list[str]:
    return sorted(p.name for d in dirs if d.is_dir() for p in d.iterdir() if p.name.endswith("-future"))


def test_replicas_move_between_log_dirs_under_load_and_a_kill_mid_move_loses_nothing(tmp_path):
    """AlterReplicaLogDirs on the real binary, under an idempotent acks=all load on three
    nodes: `shoalctl partition move-dir --wait` moves every replica of node 3 to its other
    directory (DescribeLogDirs shows each copy as a future replica while it runs); then, with
    the copy throttled by the dynamic replica.alter.log.dirs.io.max.bytes.per.second, node 3 is
    SIGKILLed mid-copy and restarted: the copy is dropped, and the replica is where it was and
    in sync. A reassignment file with log_dirs puts a new replica in the directory it names.
    The checker finds nothing lost, duplicated or reordered."""
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                       ResourceType)
    from checker import check
    from test_reassignment import assert_clean
    from workload import IdempotentWorkload, read_all

    c, extra = jbod_cluster(tmp_path)
    node3 = c.node(3)
    dirs = [node3.data_dir, extra]
    try:
        topic, partitions = "moving", 4
        create_topic(c.bootstrap, topic, partitions=partitions, rf=3, config={"segment.bytes": "16384"})
        load = IdempotentWorkload(c.bootstrap, topic, partitions, rate=1000, max_records=100_000).start()
        wait_until("records acknowledged", lambda: load.acked_count() > 2000, timeout=30)
        before = placement(dirs, topic, partitions)
        assert sorted(set(before.values())) == [0, 1], before

        # Every replica of node 3 to its other directory.
        specs = [f"{topic}:{p}={dirs[1 - i].resolve()}" for p, i in before.items()]
        r = ctl(node3.bootstrap, "partition", "move-dir", "--broker", "3",
                *[a for s in specs for a in ("--move", s)], "--wait", "--wait-timeout-ms", "60000",
                "-o", "json")
        assert r.returncode == 0, r.stderr
        assert {row["status"] for row in json.loads(r.stdout)} == {"moved"}, r.stdout
        after = placement(dirs, topic, partitions)
        assert after == {p: 1 - i for p, i in before.items()}, (before, after)
        assert futures_in(dirs) == []
        # Asking for a directory the broker does not have: LOG_DIR_NOT_FOUND, nothing moves.
        r = ctl(node3.bootstrap, "partition", "move-dir", "--broker", "3",
                "--move", f"{topic}:0={tmp_path / 'no-such-dir'}")
        assert r.returncode == 1 and "LOG_DIR_NOT_FOUND" in r.stdout, (r.stdout, r.stderr)

        # A slow copy, killed in the middle: the next start drops it.
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        res = ConfigResource(ResourceType.BROKER, "3", incremental_configs=[ConfigEntry(
            "replica.alter.log.dirs.io.max.bytes.per.second", "20000",
            incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([res])[res].result(30)
        node3_admin = AdminClient({"bootstrap.servers": node3.bootstrap})

        def node3_throttle():
            described = node3_admin.describe_configs([ConfigResource(ResourceType.BROKER, "3")])
            (configs,) = [f.result(30) for f in described.values()]
            return configs["replica.alter.log.dirs.io.max.bytes.per.second"].value
        wait_until("node 3 applies the throttle", lambda: node3_throttle() == "20000", timeout=10)
        p0_dir = after[0]
        r = ctl(node3.bootstrap, "partition", "move-dir", "--broker", "3",
                "--move", f"{topic}:0={dirs[1 - p0_dir].resolve()}")
        assert r.returncode == 0, (r.stdout, r.stderr)
        wait_until("the copy is being made", lambda: futures_in(dirs) != [], timeout=10)
        out = js(ctl(node3.bootstrap, "cluster", "log-dirs", "--broker", "3", "--topic", topic, "-o", "json"))
        moving = [(d["logDir"], part) for d in out["brokers"][0]["logDirs"] for part in d["partitions"]
                  if part["isFuture"]]
        assert [(d, part["partition"]) for d, part in moving] == [(str(dirs[1 - p0_dir].resolve()), f"{topic}-0")], out
        node3.kill()
        assert futures_in(dirs) != [], "killed mid-copy"
        node3.start()
        assert futures_in(dirs) == []
        assert placement(dirs, topic, partitions) == after
        wait_until("every partition in sync again", lambda: all_in_sync(c.node(1)), timeout=60)

        # A reassignment file with log_dirs (kafka-reassign-partitions' format): node 3 gets a
        # new replica, created in the directory the file names for it.
        from confluent_kafka.admin import NewTopic
        fut = admin.create_topics([NewTopic("placed", 1, -1, replica_assignment=[[1, 2]])])["placed"]
        fut.result(30)
        plan = tmp_path / "reassign.json"
        plan.write_text(json.dumps({"version": 1, "partitions": [
            {"topic": "placed", "partition": 0, "replicas": [1, 2, 3],
             "log_dirs": ["any", "any", str(extra.resolve())]}]}))
        r = ctl(c.bootstrap, "partition", "reassign", "--reassignment-json-file", str(plan), "--wait",
                "--wait-timeout-ms", "60000")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert (extra / "placed-0").is_dir() and not (node3.data_dir / "placed-0").exists()

        log = load.stop()
        report = check(log.acked, read_all(c.bootstrap, topic, partitions), by_key=False)
        print(f"{report.summary()}; {len(log.acked)} acknowledged")
        assert_clean(report, log)
    finally:
        c.close()
