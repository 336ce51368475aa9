"""A partition whose log cannot be opened is reported offline, not silently unusable.

The node is stopped, the partition's first segment file is replaced by something that cannot
be opened as a file (damaged storage is refused, never re-initialised), and the node started
again: the other partition keeps serving, while the damaged one is visible everywhere an
operator or client looks: Metadata (once the heartbeat has reported it, the controller takes the
leadership away: LEADER_NOT_AVAILABLE, no leader), Produce (KAFKA_STORAGE_ERROR), `/readyz`,
`/metrics` (shoal_offline_replicas) and `shoalctl cluster health` (offline, exit 1).

Checkpoint files are hints, not storage: garbage in them is set aside and rebuilt from the log,
and every acknowledged record is still served.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
import kafka_wire as kw
from clients import ck_consume, ck_create_topic, ck_produce, unique_topic
from test_cli import ctl
from test_metrics import scrape

KAFKA_STORAGE_ERROR = 56
LEADER_NOT_AVAILABLE = 5


def stopped_node_with_records(shoal_factory, prefix: str, partitions: int, count: int):
    """A node that acknowledged `count` records on a new topic, then stopped: (node, topic)."""
    node = shoal_factory()
    topic = unique_topic(prefix)
    ck_create_topic(node.bootstrap, topic, partitions=partitions)
    produced = ck_produce(node.bootstrap, topic, count, prefix=prefix[0], conf={"acks": "all"})
    assert not produced.errors
    node.stop()
    return node, topic


def readyz(node) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(node.admin_url + "/readyz", timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError):
        return None, ""


@pytest.mark.timeout(120)
def test_a_partition_that_cannot_open_is_reported_offline(shoal_factory):
    node, topic = stopped_node_with_records(shoal_factory, "offline", 2, 100)
    segment = node.data_dir / f"{topic}-1" / "00000000000000000000.log"
    assert segment.is_file(), list((node.data_dir / f"{topic}-1").iterdir())
    damaged = segment.with_name(segment.name + ".moved-by-test")
    segment.rename(damaged)
    segment.mkdir()  # a segment name the log cannot open as a file (EISDIR)
    node.start(wait=False)
    # Not ready, naming the replica that cannot open (the rest of the node serves meanwhile).
    deadline = time.monotonic() + 60
    while True:
        status, body = readyz(node)
        if status == 503 and f"{topic}/1" in body:
            break
        assert node.running, node.tail()
        assert time.monotonic() < deadline, f"/readyz never reported the offline replica: {status} {body}"
        time.sleep(0.2)
    assert "offline" in body, body

    conn = kw.Conn("127.0.0.1", node.kafka_port)
    try:
        # The broker reports the replica offline in its next heartbeat; the controller takes
        # the leadership away (no other replica can lead here, so the partition has none).
        deadline = time.monotonic() + 30
        while True:
            parts = kw.metadata_v4_full(conn, [topic]).topics[topic]
            if parts[1][1] == -1:
                break
            assert time.monotonic() < deadline, f"the offline replica still leads: {parts}"
            time.sleep(0.2)
        assert parts[0][0] == 0, parts
        assert parts[1][0] == LEADER_NOT_AVAILABLE, parts
        batch = kw.record_batch_v2([(b"k", b"v")])
        assert [r.error_code for r in kw.produce_v3(conn, topic, 0, batch)] == [0]
        assert [r.error_code for r in kw.produce_v3(conn, topic, 1, batch)] == [KAFKA_STORAGE_ERROR]
    finally:
        conn.close()

    metrics = scrape(node.admin_url)
    assert metrics[("shoal_offline_replicas", ())] == 1.0

    r = ctl(node, "cluster", "health", "-o", "json")
    assert r.returncode == 1, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["healthy"] is False
    assert report["offline_partitions"] == [f"{topic}/1"]
    # Nothing was re-initialised: the damaged segment is as it was left, the data beside it.
    assert segment.is_dir() and not any(segment.iterdir())
    assert damaged.is_file()


@pytest.mark.timeout(120)
def test_garbage_checkpoints_are_rebuilt_from_the_log_and_nothing_is_lost(shoal_factory):
    """Issue #15: a garbage partition checkpoint used to keep the partition closed forever."""
    node, topic = stopped_node_with_records(shoal_factory, "ckpt", 2, 200)
    for partition in (0, 1):
        directory = node.data_dir / f"{topic}-{partition}"
        for name in ("partition-checkpoint", "leader-epoch-checkpoint"):
            path = directory / name
            assert path.is_file(), list(directory.iterdir())
            path.write_bytes(b"\x00garbage\xffnot a checkpoint\n" * 3)
    node.start()
    deadline = time.monotonic() + 60
    while (status := readyz(node))[0] != 200:
        assert node.running, node.tail()
        assert time.monotonic() < deadline, f"never ready: {status}"
        time.sleep(0.2)
    records = ck_consume(node.bootstrap, topic, [0, 1], 200, timeout=60)
    assert len(records) == 200, len(records)
    assert len({(r.partition, r.offset) for r in records}) == 200
    for partition in (0, 1):
        directory = node.data_dir / f"{topic}-{partition}"
        for name in ("partition-checkpoint", "leader-epoch-checkpoint"):
            assert (directory / f"{name}.damaged").read_bytes().startswith(b"\x00garbage")
            assert not (directory / name).read_bytes().startswith(b"\x00garbage")
    # The partition takes writes again, after the records it had.
    produced = ck_produce(node.bootstrap, topic, 10, prefix="after", partition=1,
                          conf={"acks": "all"})
    had = sum(1 for r in records if r.partition == 1)
    assert not produced.errors and min(a.offset for a in produced.acked) == had, produced.acked[:3]


@pytest.mark.timeout(120)
def test_a_damaged_raft_store_is_refused_not_replaced_by_a_new_quorum(shoal_factory):
    """Issue #15: the node used to open an emptied sled store as a new quorum, report ready,
    set every partition aside as a stray and serve an empty topic under the same name."""
    import shutil
    import subprocess

    node, topic = stopped_node_with_records(shoal_factory, "raftdmg", 1, 50)
    store = node.data_dir / "meta" / "raft"
    assert store.is_dir() and (node.data_dir / "meta" / "quorum.initialized").is_file()
    shutil.rmtree(store)
    store.mkdir()  # what an operator's "fresh start" or a damaged file looks like: empty
    for attempt in range(2):
        proc = subprocess.run(node.args(), cwd=node.workdir, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=60)
        err = proc.stderr.decode(errors="replace") + proc.stdout.decode(errors="replace")
        assert proc.returncode != 0, f"start {attempt} must be refused:\n{err[-3000:]}"
        assert str(store) in err and "damaged" in err, err[-3000:]
        assert "panicked" not in err, err[-3000:]
    # The partition's data is where it was: not set aside, not re-created.
    assert (node.data_dir / f"{topic}-0").is_dir()
    assert not [p for p in node.data_dir.iterdir() if p.name.endswith("-stray")]


@pytest.mark.timeout(180)
def test_a_replica_that_cannot_open_loses_leadership_and_isr_to_one_that_can(tmp_path):
    """Issue #15: an offline replica is reported to the controller. Node 1 cannot create any
    partition directory of the new topic (a file is in the way); without the report it would
    lead a third of the partitions forever, answering KAFKA_STORAGE_ERROR while two in-sync
    replicas could serve. The controller moves leadership and ISR membership off it instead,
    and every acknowledged record is read back."""
    from checker import check
    from cluster import Cluster, create_topic, metadata_from
    from workload import read_all

    partitions = 3
    c = Cluster(tmp_path, overrides={"leader.imbalance.check.interval.seconds": 1,
                                     "leader.imbalance.per.broker.percentage": 0})
    c.start()
    try:
        topic = unique_topic("offrep")
        damaged = c.node(1)
        for p in range(partitions):
            (damaged.data_dir / f"{topic}-{p}").write_bytes(b"in the way\n")
        create_topic(c.bootstrap, topic, partitions, 3, config={"min.insync.replicas": "2"})
        watcher = c.node(2)

        def state():
            return metadata_from(watcher, [topic]).topics.get(topic, {})

        deadline = time.monotonic() + 30
        while True:
            parts = state()
            settled = len(parts) == partitions and all(
                leader not in (-1, 1) and 1 not in isr and sorted(isr) == [2, 3]
                for (_, leader, _, isr) in parts.values())
            if settled:
                break
            assert time.monotonic() < deadline, f"node 1 still leads or is in sync: {parts}"
            time.sleep(0.2)
        # Node 1 was the preferred leader of one partition; with rebalancing every second it
        # must still not be handed back a leadership it cannot serve.
        time.sleep(3)
        assert all(leader != 1 and 1 not in isr for (_, leader, _, isr) in state().values()), state()

        produced = ck_produce(c.bootstrap, topic, 600, prefix="o", conf={"acks": "all"})
        assert not produced.errors and len(produced.acked) == 600, produced.errors[:3]
        report = check(produced.acked, read_all(c.bootstrap, topic, partitions), by_key=False)
        assert not report.lost and not report.duplicated and not report.misplaced, report.summary()
        status, body = readyz(damaged)
        assert status == 503 and f"{topic}/0" in body, (status, body)
    finally:
        c.close()
