"""`shoalctl` against live nodes: every verb in table and JSON form, a script that uses only
the JSON, lag checked against what a real consumer committed, bad input as one-line errors
with Kafka's error names and exit codes (0 done, 1 failed, 2 usage), and `cluster health`
going unhealthy (exit 1) and back when a node of three is SIGKILLed and restarted."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from clients import ck_create_topic, ck_produce, unique_topic
from cluster import Cluster, create_topic
from conftest import REPO, free_port
from test_metrics import produce

SHOAL_OVERRIDES = {"group.initial.rebalance.delay.ms": 0}


def shoalctl_bin() -> Path:
    path = Path(os.environ.get("SHOALCTL_BIN") or REPO / "target" / "release" / "shoalctl")
    if not path.is_file():
        raise RuntimeError(f"{path} not built: run `make build-tools` (make test-python does)")
    return path


def ctl(node_or_bootstrap, *args: str, controllers: str | None = None, timeout: float = 60,
        stdin: str | None = None) -> subprocess.CompletedProcess:
    bootstrap = node_or_bootstrap if isinstance(node_or_bootstrap, str) else node_or_bootstrap.bootstrap
    cmd = [str(shoalctl_bin()), "--brokers", bootstrap]
    if controllers:
        cmd += ["--controllers", controllers]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, input=stdin)


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr}"
    return r.stdout


def js(r: subprocess.CompletedProcess):
    return json.loads(ok(r))


def one_line_error(r: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shoalctl: error: "), r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert "panicked" not in r.stderr and "backtrace" not in r.stderr.lower()


def test_topic_verbs_in_table_and_json(shoal):
    topic = unique_topic("ctl")
    out = ok(ctl(shoal, "topic", "create", topic, "-p", "3", "-c", "retention.ms=3600000"))
    assert topic in out and "created" in out
    listed = js(ctl(shoal, "topic", "list", "-o", "json"))
    assert {"name": topic, "partitions": 3, "replication_factor": 1, "internal": False} in listed
    table = ok(ctl(shoal, "topic", "list"))
    header, *rows = table.splitlines()
    assert header.split() == ["NAME", "PARTITIONS", "REPLICAS"]
    assert [topic, "3", "1"] in [r.split() for r in rows]
    # Columns are aligned: every row starts its second column where the header does.
    col = header.index("PARTITIONS")
    assert all(r[col - 1] == " " and r[col] != " " for r in rows)

    produce(shoal.bootstrap, topic, 30, partitions=3)
    d = js(ctl(shoal, "topic", "describe", topic, "-o", "json"))
    assert d["name"] == topic and len(d["partitions"]) == 3
    for p in d["partitions"]:
        assert p["leader"] == 1 and p["replicas"] == [1] and p["isr"] == [1] and p["leader_epoch"] >= 0
        assert p["log_start_offset"] == 0 and p["high_watermark"] == 10
    assert d["configs"] == {"retention.ms": "3600000"}
    text = ok(ctl(shoal, "topic", "describe", topic))
    assert "PARTITION  LEADER  EPOCH  REPLICAS  ISR  LOG_START  HIGH_WATERMARK" in text
    assert "retention.ms  3600000" in text

    ok(ctl(shoal, "topic", "alter-config", topic, "--set", "retention.ms=7200000", "--set", "cleanup.policy=compact"))
    d = js(ctl(shoal, "topic", "describe", topic, "-o", "json"))
    assert d["configs"] == {"retention.ms": "7200000", "cleanup.policy": "compact"}
    ok(ctl(shoal, "topic", "alter-config", topic, "--delete", "cleanup.policy"))
    assert js(ctl(shoal, "topic", "describe", topic, "-o", "json"))["configs"] == {"retention.ms": "7200000"}

    assert js(ctl(shoal, "topic", "add-partitions", topic, "--count", "5", "-o", "json")) == {"topic": topic, "partitions": 5}
    assert len(js(ctl(shoal, "topic", "describe", topic, "-o", "json"))["partitions"]) == 5

    deleted = js(ctl(shoal, "topic", "delete", topic, "-o", "json"))
    assert deleted == [{"topic": topic, "deleted": True, "error": None}]
    assert topic not in [t["name"] for t in js(ctl(shoal, "topic", "list", "-o", "json"))]


def test_bad_input_is_one_line_with_the_kafka_error_name(shoal):
    topic = unique_topic("bad")
    ok(ctl(shoal, "topic", "create", topic, "-p", "1"))
    one_line_error(ctl(shoal, "topic", "create", topic), 1, "TOPIC_ALREADY_EXISTS")
    one_line_error(ctl(shoal, "topic", "describe", "no-such-topic"), 1, "UNKNOWN_TOPIC_OR_PARTITION")
    one_line_error(ctl(shoal, "topic", "create", unique_topic("rf"), "-r", "3"), 1, "INVALID_REPLICATION_FACTOR")
    one_line_error(ctl(shoal, "topic", "alter-config", topic, "--set", "no.such.config=1"), 1, "INVALID_CONFIG")
    one_line_error(ctl(shoal, "topic", "alter-config", topic, "--set", "retention.ms=soon"), 1, "INVALID_CONFIG")
    one_line_error(ctl(shoal, "group", "describe", "no-such-group"), 1, "GROUP_ID_NOT_FOUND")
    # Unreachable brokers: a bounded, one-line failure.
    started = time.monotonic()
    one_line_error(ctl(f"127.0.0.1:{free_port()}", "--timeout-ms", "2000", "topic", "list"), 1, "no broker reachable")
    assert time.monotonic() - started < 20
    # Usage errors are clap's, exit 2.
    r = ctl(shoal, "topic", "frobnicate")
    assert r.returncode == 2 and "frobnicate" in r.stderr
    r = ctl(shoal, "topic", "create")
    assert r.returncode == 2
    r = ctl(shoal, "-o", "yaml", "topic", "list")
    assert r.returncode == 2


def test_group_describe_lag_is_log_end_minus_committed(shoal):
    topic = unique_topic("lag")
    ck_create_topic(shoal.bootstrap, topic, partitions=2)
    produce(shoal.bootstrap, topic, 200, partitions=2)  # 100 per partition
    group = unique_topic("ctl-group")
    c = Consumer({"bootstrap.servers": shoal.bootstrap, "group.id": group, "client.id": "lag-checker",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    seen, deadline = 0, time.monotonic() + 30
    while seen < 200 and time.monotonic() < deadline:
        seen += sum(1 for m in c.consume(200, timeout=0.5) if m.error() is None)
    c.commit(offsets=[TopicPartition(topic, 0, 40), TopicPartition(topic, 1, 75)], asynchronous=False)
    try:
        d = js(ctl(shoal, "group", "describe", group, "-o", "json"))
        assert d["state"] == "Stable" and d["protocol_type"] == "consumer"
        assert len(d["members"]) == 1 and d["members"][0]["client_id"] == "lag-checker"
        assigned = {(a["topic"], a["partition"]) for a in d["members"][0]["assignment"]}
        assert assigned == {(topic, 0), (topic, 1)}
        rows = {(o["topic"], o["partition"]): o for o in d["offsets"]}
        assert rows[(topic, 0)]["committed_offset"] == 40 and rows[(topic, 0)]["log_end_offset"] == 100
        assert rows[(topic, 0)]["lag"] == 60
        assert rows[(topic, 1)]["lag"] == 25
        text = ok(ctl(shoal, "group", "describe", group))
        assert "TOPIC" in text and "LAG" in text and " 60 " in f" {text} "
        groups = js(ctl(shoal, "group", "list", "-o", "json"))
        assert {"group": group, "state": "Stable", "protocol_type": "consumer", "coordinator": 1} in groups
        # A group with a member cannot be deleted.
        one_line_error(ctl(shoal, "group", "delete", group), 1, "NON_EMPTY_GROUP")
    finally:
        c.close()
    assert js(ctl(shoal, "group", "delete", group, "-o", "json")) == [{"group": group, "deleted": True, "error": None}]


def test_a_script_uses_only_the_json(shoal):
    """What an operator's script does: create, wait until every partition has a leader, read
    the high watermarks, all through `-o json`."""
    topic = unique_topic("script")
    ok(ctl(shoal, "-o", "json", "topic", "create", topic, "-p", "4"))
    produce(shoal.bootstrap, topic, 40, partitions=4)
    d = js(ctl(shoal, "-o", "json", "topic", "describe", topic))
    assert all(p["leader"] >= 0 for p in d["partitions"])
    assert sum(p["high_watermark"] for p in d["partitions"]) == 40
    info = js(ctl(shoal, "-o", "json", "cluster", "info"))
    assert info["controller_id"] == 1 and info["brokers"] == [
        {"id": 1, "host": "127.0.0.1", "port": shoal.kafka_port, "rack": None, "state": "unfenced"}]
    health = js(ctl(shoal, "-o", "json", "cluster", "health"))
    assert health["healthy"] is True and health["under_replicated_partitions"] == []


@pytest.mark.timeout(90)
def test_cluster_features_and_upgrade(shoal_factory):
    """kafka-features.sh's describe and upgrade: a cluster created at transaction.version 0
    (`shoal --feature`) is raised to 2; a dry run changes nothing; a downgrade and Kafka's own
    metadata.version are refused on one line."""
    node = shoal_factory(start=False)
    node.extra_args = ["--feature", "transaction.version=0"]
    node.start()

    def finalized() -> dict:
        rows = js(ctl(node, "cluster", "features", "-o", "json"))["features"]
        return {r["name"]: r["finalized"] for r in rows}

    assert finalized()["transaction.version"] == 0
    assert "transaction.version" in ok(ctl(node, "cluster", "features"))
    dry = js(ctl(node, "cluster", "upgrade", "--feature", "transaction.version=2", "--dry-run", "-o", "json"))
    assert dry["dry_run"] is True and dry["features"][0]["state"] == "valid"
    assert finalized()["transaction.version"] == 0
    assert "finalized" in ok(ctl(node, "cluster", "upgrade", "--feature", "transaction.version=2"))
    levels = finalized()
    assert levels["transaction.version"] == 2 and levels["shoal.metadata.version"] >= 3, levels
    one_line_error(ctl(node, "cluster", "upgrade", "--feature", "transaction.version=1"), 1,
                   "INVALID_UPDATE_VERSION", "cannot be downgraded")
    one_line_error(ctl(node, "cluster", "upgrade", "--feature", "metadata.version=25"), 1,
                   "INVALID_UPDATE_VERSION", "shoal.metadata.version")
    one_line_error(ctl(node, "cluster", "upgrade", "--feature", "transaction.version"), 1, "NAME=LEVEL")


def test_quorum_unreachable_and_completion(shoal):
    one_line_error(ctl(shoal, "--timeout-ms", "1000", "cluster", "quorum", controllers=f"127.0.0.1:{free_port()}"),
                   1, "no controller reachable")
    for shell in ("bash", "zsh", "fish"):
        script = ok(ctl(shoal, "completion", shell))
        assert "shoalctl" in script and "topic" in script


@pytest.mark.timeout(240)
def test_cluster_verbs_on_three_nodes_and_health_after_a_kill(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    try:
        topic = unique_topic("health")
        create_topic(c.bootstrap, topic, partitions=6, rf=3)
        controllers = ",".join(f"127.0.0.1:{n.controller_port}" for n in c.nodes)
        info = js(ctl(c.bootstrap, "cluster", "info", "-o", "json"))
        assert [b["id"] for b in info["brokers"]] == [1, 2, 3]
        assert all(b["state"] == "unfenced" for b in info["brokers"])
        # Asked through any controller, the answer comes from the leader (match indexes known).
        q = js(ctl(c.bootstrap, "cluster", "quorum", "-o", "json", controllers=controllers))
        assert sorted(v["node_id"] for v in q["voters"]) == [1, 2, 3] and q["replication_known"]
        assert q["leader_id"] in (1, 2, 3) and q["current_term"] >= 1
        assert [v["role"] for v in q["voters"]].count("Leader") == 1
        assert all(v["lag"] >= 0 for v in q["voters"])
        text = ok(ctl(c.bootstrap, "cluster", "quorum", controllers=controllers))
        assert "NODE  ADDRESS" in text and "Leader" in text and "Follower" in text
        assert ok(ctl(c.bootstrap, "cluster", "health")).startswith("cluster healthy")

        # Disk usage (DescribeLogDirs to each broker): every replica of the topic, with sizes.
        produced = ck_produce(c.bootstrap, topic, 60, conf={"acks": "all"}, value_size=500)
        assert len(produced.acked) == 60
        dirs = js(ctl(c.bootstrap, "cluster", "log-dirs", "--topic", topic, "-o", "json"))
        assert [b["broker"] for b in dirs["brokers"]] == [1, 2, 3]
        for b in dirs["brokers"]:
            (d,) = b["logDirs"]
            assert d["error"] is None and d["logDir"] == str(c.node(b["broker"]).data_dir.resolve())
            assert sorted(p["partition"] for p in d["partitions"]) == sorted(f"{topic}-{i}" for i in range(6))
            assert sum(p["size"] for p in d["partitions"]) >= 60 * 500
            assert 0 < d["usableBytes"] <= d["totalBytes"]
        text = ok(ctl(c.bootstrap, "cluster", "log-dirs", "--broker", "3"))
        assert "USABLE_BYTES" in text and "OFFSET_LAG" in text and f"{topic}" in text

        victim = c.node(2)
        victim.kill()
        survivors = ",".join(n.bootstrap for n in c.nodes if n.node_id != 2)
        deadline = time.monotonic() + 30
        while True:
            r = ctl(survivors, "cluster", "health", "-o", "json")
            if r.returncode == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert r.returncode == 1, r.stdout
        h = json.loads(r.stdout)
        assert h["healthy"] is False and h["fenced_brokers"] == [2]
        assert len(h["under_replicated_partitions"]) == 6
        assert "NOT healthy" in ctl(survivors, "cluster", "health").stdout
        r = ctl(survivors, "cluster", "log-dirs", "--broker", "2", "--broker", "1", "-o", "json")
        assert r.returncode == 1, r.stdout
        answered = {b["broker"]: b["logDirs"][0] for b in json.loads(r.stdout)["brokers"]}
        assert answered[2]["error"] and answered[1]["error"] is None, answered

        victim.restart()
        deadline = time.monotonic() + 60
        while ctl(c.bootstrap, "cluster", "health").returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert js(ctl(c.bootstrap, "cluster", "health", "-o", "json"))["healthy"] is True
    finally:
        c.close()


def test_group_reset_offsets_dry_run_execute_and_refusal(shoal):
    topic = unique_topic("reset")
    ck_create_topic(shoal.bootstrap, topic, partitions=1)
    produce(shoal.bootstrap, topic, 100)
    group = unique_topic("reset-group")
    c = Consumer({"bootstrap.servers": shoal.bootstrap, "group.id": group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    seen, deadline = 0, time.monotonic() + 30
    while seen < 50 and time.monotonic() < deadline:
        seen += sum(1 for m in c.consume(50 - seen, timeout=0.5) if m.error() is None)
    c.commit(offsets=[TopicPartition(topic, 0, 50)], asynchronous=False)
    # A group with an active member is refused: its next commit would undo the reset.
    one_line_error(ctl(shoal, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute"),
                   1, "active member")
    c.close()

    def committed() -> int:
        d = js(ctl(shoal, "group", "describe", group, "-o", "json"))
        return {(o["topic"], o["partition"]): o["committed_offset"] for o in d["offsets"]}[(topic, 0)]

    dry = js(ctl(shoal, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "-o", "json"))
    assert dry == {"group": group, "executed": False,
                   "offsets": [{"topic": topic, "partition": 0, "current_offset": 50, "new_offset": 0}]}
    assert committed() == 50  # a dry run commits nothing
    assert "dry run" in ok(ctl(shoal, "group", "reset-offsets", group, "--topic", topic, "--to-earliest"))

    cases = [
        (["--to-offset", "10"], 10),
        (["--shift-by", "-5"], 5),
        (["--shift-by", "500"], 100),    # clamped to the log end
        (["--to-offset", "-3"], 0),      # clamped to the log start
        (["--to-latest"], 100),
        (["--to-datetime", "1970-01-01T00:00:00Z"], 0),
        (["--to-datetime", "2999-01-01T00:00:00Z"], 100),
    ]
    for flags, expected in cases:
        r = js(ctl(shoal, "group", "reset-offsets", group, f"--topic={topic}:0", *flags, "--execute", "-o", "json"))
        assert r["executed"] and r["offsets"][0]["new_offset"] == expected, (flags, r)
        assert committed() == expected, flags
    all_topics = js(ctl(shoal, "group", "reset-offsets", group, "--all-topics", "--to-earliest", "-o", "json"))
    assert [(o["topic"], o["new_offset"]) for o in all_topics["offsets"]] == [(topic, 0)]

    # Usage: exactly one --to-*, and topics named somehow.
    assert ctl(shoal, "group", "reset-offsets", group, "--topic", topic).returncode == 2
    assert ctl(shoal, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--to-latest").returncode == 2
    assert ctl(shoal, "group", "reset-offsets", group, "--to-earliest").returncode == 2
    one_line_error(ctl(shoal, "group", "reset-offsets", group, "--topic", f"{topic}:7", "--to-earliest"),
                   1, "UNKNOWN_TOPIC_OR_PARTITION")
    one_line_error(ctl(shoal, "group", "reset-offsets", group, "--topic", topic, "--to-datetime", "soon"),
                   1, "to-datetime")


def test_console_producer_and_consumer_round_trip_keys_values_and_headers(shoal):
    topic = unique_topic("console")
    ok(ctl(shoal, "topic", "create", topic, "-p", "2"))
    lines = "".join(f"trace:t{i},kind:k{i % 3}\tkey-{i}=value {i} ünïcode\n" for i in range(50))
    r = ctl(shoal, "topic", "produce", topic, "-K", "=", "--parse-headers", "-H", "source=test", stdin=lines)
    ok(r)
    assert "produced 50 records" in r.stderr

    got = ctl(shoal, "topic", "consume", topic, "--from-beginning", "-n", "50", "-o", "json", timeout=60)
    records = [json.loads(line) for line in ok(got).splitlines()]
    assert len(records) == 50
    by_key = {r["key"]: r for r in records}
    for i in range(50):
        rec = by_key[f"key-{i}"]
        assert rec["value"] == f"value {i} ünïcode"
        assert rec["headers"] == [{"key": "source", "value": "test"}, {"key": "trace", "value": f"t{i}"},
                                  {"key": "kind", "value": f"k{i % 3}"}]
        assert rec["topic"] == topic and rec["partition"] in (0, 1) and rec["timestamp"] > 0
    # Same key, same partition; per partition, offsets dense and in order.
    for p in (0, 1):
        offsets = [r["offset"] for r in records if r["partition"] == p]
        assert sorted(offsets) == list(range(len(offsets)))

    # The text format, one partition, from an offset.
    text = ok(ctl(shoal, "topic", "consume", topic, "-p", "0", "--offset", "1", "-n", "2",
                  "-f", "%p|%o|%k|%v|%h\\n", timeout=60))
    rows = text.splitlines()
    assert len(rows) == 2 and all(r.startswith("0|") for r in rows)
    assert [r.split("|")[1] for r in rows] == ["1", "2"]
    assert "source=test,trace=t" in rows[0]

    # In a group: reads everything once, and commits what it printed.
    group = unique_topic("console-group")
    grouped = ok(ctl(shoal, "topic", "consume", topic, "-g", group, "--from-beginning", "-n", "50", timeout=60))
    assert sorted(grouped.splitlines()) == sorted(f"value {i} ünïcode" for i in range(50))
    d = js(ctl(shoal, "group", "describe", group, "-o", "json"))
    assert sum(o["committed_offset"] for o in d["offsets"]) == 50
    # A bounded idle timeout ends a consumer that has caught up.
    started = time.monotonic()
    assert ok(ctl(shoal, "topic", "consume", topic, "--idle-timeout-ms", "1000", timeout=30)) == ""
    assert time.monotonic() - started < 20

    # Bad input: a line without the key separator, an unknown partition.
    one_line_error(ctl(shoal, "topic", "produce", topic, "-K", "=", stdin="no separator here\n"), 1, "key separator")
    one_line_error(ctl(shoal, "topic", "consume", topic, "-p", "9", "-n", "1"), 1, "UNKNOWN_TOPIC_OR_PARTITION")


@pytest.mark.timeout(240)
def test_partition_elect_leaders_preferred_and_unclean(tmp_path):
    from confluent_kafka.admin import AdminClient, NewTopic

    from test_replication import isrs, leaders, wait_until

    # Separate roles, so two brokers can die while the quorum stays; no automatic rebalance,
    # so only the command moves leaders back.
    c = Cluster(tmp_path, brokers=3, overrides={"auto.leader.rebalance.enable": "false"})
    c.start()
    try:
        a, b, watcher = c.brokers
        preferred, stuck = unique_topic("preferred"), unique_topic("stuck")
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        futures = admin.create_topics([
            NewTopic(preferred, 1, -1, replica_assignment=[[a.node_id, b.node_id, watcher.node_id]]),
            NewTopic(stuck, 1, -1, replica_assignment=[[a.node_id, b.node_id]]),
        ], operation_timeout=10)
        for f in futures.values():
            f.result(15)
        wait_until("full ISRs", lambda: len(isrs(watcher, preferred)[0]) == 3 and len(isrs(watcher, stuck)[0]) == 2)

        # Nothing to do yet: the preferred replica leads.
        r = js(ctl(c.bootstrap, "partition", "elect-leaders", "--preferred", "--topic", preferred, "-o", "json"))
        assert r == [{"topic": preferred, "partition": 0, "result": "ELECTION_NOT_NEEDED", "leader": a.node_id,
                      "message": r[0]["message"]}]

        # A restarts: leadership moved to B and stays there (no auto rebalance).
        a.kill()
        wait_until("B leads", lambda: leaders(watcher, preferred)[0] == b.node_id, timeout=15)
        a.restart()
        wait_until("A back in the ISR", lambda: a.node_id in isrs(watcher, preferred)[0], timeout=30)
        assert leaders(watcher, preferred)[0] == b.node_id
        text = ok(ctl(c.bootstrap, "partition", "elect-leaders", "--preferred", "--topic", f"{preferred}:0"))
        assert "elected" in text
        # The broker that answered has applied the election; the watcher follows within its
        # metadata lag.
        wait_until("A leads again", lambda: leaders(watcher, preferred)[0] == a.node_id, timeout=15)

        # B dies (fenced, out of the ISR), then A, the last in-sync replica: no leader, and a
        # clean election cannot help. B comes back; only an unclean election gives it the lead.
        b.kill()
        wait_until("B out of the ISR", lambda: isrs(watcher, stuck)[0] == [a.node_id], timeout=15)
        a.kill()
        wait_until("no leader", lambda: leaders(watcher, stuck)[0] == -1, timeout=15)
        b.restart()
        wait_until("B registered", lambda: js(ctl(watcher.bootstrap, "cluster", "info", "-o", "json"))["brokers"]
                   and any(x["id"] == b.node_id and x["state"] == "unfenced"
                           for x in js(ctl(watcher.bootstrap, "cluster", "info", "-o", "json"))["brokers"]), timeout=30)
        assert leaders(watcher, stuck)[0] == -1
        one_line_error(ctl(watcher.bootstrap, "partition", "elect-leaders", "--preferred", "--topic", stuck),
                       1, "PREFERRED_LEADER_NOT_AVAILABLE")
        r = js(ctl(watcher.bootstrap, "partition", "elect-leaders", "--unclean", "-o", "json"))
        assert {"topic": stuck, "partition": 0, "result": "elected", "leader": b.node_id, "message": None} in r
        assert leaders(watcher, stuck)[0] == b.node_id and isrs(watcher, stuck)[0] == [b.node_id]
        assert ctl(c.bootstrap, "partition", "elect-leaders").returncode == 2
    finally:
        c.close()


def test_user_create_list_delete_scram_credentials(shoal):
    """`user create|list|delete`: SCRAM credentials over AlterUserScramCredentials and
    DescribeUserScramCredentials; the password is salted locally and never printed."""
    outputs: list[str] = []

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        r = ctl(shoal, "user", *args, stdin=stdin)
        outputs.extend([r.stdout, r.stderr])
        return r

    def listed(*names: str) -> list[dict]:
        return [c for c in js(run("list", *names, "-o", "json")) if c["user"] == "alice"]

    created = js(run("create", "alice", "--mechanism", "SCRAM-SHA-256", "--mechanism", "SCRAM-SHA-512",
                     "--password", "s3cret", "-o", "json"))
    assert created == [{"user": "alice", "mechanisms": ["SCRAM-SHA-256", "SCRAM-SHA-512"], "iterations": 8192,
                        "created": True, "error": None, "message": None}]
    assert listed() == [{"user": "alice", "mechanism": "SCRAM-SHA-256", "iterations": 8192},
                        {"user": "alice", "mechanism": "SCRAM-SHA-512", "iterations": 8192}]
    header, *rows = ok(run("list", "alice")).splitlines()
    assert header.split() == ["USER", "MECHANISM", "ITERATIONS"]
    assert [r.split() for r in rows] == [["alice", "SCRAM-SHA-256", "8192"], ["alice", "SCRAM-SHA-512", "8192"]]

    # Kafka's iteration bounds are checked before anything is sent: a usage error (exit 2).
    r = run("create", "alice", "--password", "s3cret", "--iterations", "100")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "must be 4096 to 16384" in r.stderr and "not 100" in r.stderr, r.stderr
    # An empty password from stdin is refused (exit 1), nothing sent.
    one_line_error(run("create", "alice", "--password-stdin", stdin="\n"), 1, "the password is empty")
    assert [c["iterations"] for c in listed("alice")] == [8192, 8192]

    # --password-stdin replaces SCRAM-SHA-256 (the default mechanism), at 4096 iterations.
    out = ok(run("create", "alice", "--password-stdin", "--iterations", "4096", stdin="an0ther\n"))
    assert out.splitlines()[1].split() == ["alice", "SCRAM-SHA-256", "4096", "created"]
    assert listed("alice") == [{"user": "alice", "mechanism": "SCRAM-SHA-256", "iterations": 4096},
                               {"user": "alice", "mechanism": "SCRAM-SHA-512", "iterations": 8192}]

    out = ok(run("delete", "alice", "--mechanism", "SCRAM-SHA-512"))
    assert out.splitlines()[1].split() == ["alice", "SCRAM-SHA-512", "deleted"]
    assert listed("alice") == [{"user": "alice", "mechanism": "SCRAM-SHA-256", "iterations": 4096}]
    # A mechanism the user does not have: the broker's RESOURCE_NOT_FOUND, exit 1.
    one_line_error(run("delete", "alice", "--mechanism", "SCRAM-SHA-512"), 1, "alice", "RESOURCE_NOT_FOUND")

    # Without --mechanism: every one the user has.
    deleted = js(run("delete", "alice", "-o", "json"))
    assert deleted == [{"user": "alice", "mechanisms": ["SCRAM-SHA-256"], "deleted": True, "error": None,
                        "message": None}]
    one_line_error(run("list", "alice"), 1, "alice", "RESOURCE_NOT_FOUND")
    one_line_error(run("delete", "alice"), 1, "alice", "RESOURCE_NOT_FOUND")
    assert listed() == []

    # The passwords were never printed.
    assert not any("s3cret" in o or "an0ther" in o for o in outputs)
