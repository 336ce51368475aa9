"""Prometheus metrics on the admin listener: the text parses with prometheus_client's parser,
every family is `shoal_`-prefixed, the produce/fetch counters move by exactly what a real client
produced and consumed, errors are counted under Kafka's error names, group lag is log end minus
committed, and on a three-node cluster a SIGKILL shows up as under-replicated partitions on the
surviving leaders and clears after the restart."""

from __future__ import annotations

import time
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from clients import ck_create_topic, unique_topic
from cluster import Cluster, create_topic

SHOAL_OVERRIDES = {"group.initial.rebalance.delay.ms": 0}


def scrape(admin_url: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, from a real Prometheus text parser."""
    with urllib.request.urlopen(f"{admin_url}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("shoal_"), family.name
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))), 0.0)


def produce(bootstrap: str, topic: str, count: int, partitions: int = 1) -> int:
    """Produces `count` records, returns the value bytes sent."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    sent = 0
    for i in range(count):
        v = f"value-{i:06d}".encode()
        p.produce(topic, value=v, partition=i % partitions)
        sent += len(v)
    assert p.flush(30) == 0
    return sent


def test_metrics_parse_and_counters_move_by_what_was_produced_and_consumed(shoal):
    topic = unique_topic("metrics")
    ck_create_topic(shoal.bootstrap, topic, partitions=2)
    before = scrape(shoal.admin_url)
    produce(shoal.bootstrap, topic, 1000, partitions=2)
    after_produce = scrape(shoal.admin_url)
    assert value(after_produce, "shoal_topic_records_in_total", topic=topic) == 1000
    assert value(after_produce, "shoal_topic_bytes_in_total", topic=topic) > 1000 * 12
    produce_requests = (value(after_produce, "shoal_kafka_requests_total", api="Produce")
                        - value(before, "shoal_kafka_requests_total", api="Produce"))
    assert produce_requests >= 1
    # The latency histogram of Produce counts every Produce request.
    assert value(after_produce, "shoal_kafka_request_duration_seconds_count", api="Produce") == \
        value(after_produce, "shoal_kafka_requests_total", api="Produce")
    assert value(after_produce, "shoal_kafka_request_duration_seconds_bucket", api="Produce", le="+Inf") >= 1

    c = Consumer({"bootstrap.servers": shoal.bootstrap, "group.id": "metrics-reader",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 50})
    c.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
    got, deadline = 0, time.monotonic() + 30
    while got < 1000 and time.monotonic() < deadline:
        got += sum(1 for m in c.consume(500, timeout=0.5) if m.error() is None)
    c.close()
    assert got == 1000
    after_fetch = scrape(shoal.admin_url)
    assert value(after_fetch, "shoal_topic_records_out_total", topic=topic) == 1000
    assert value(after_fetch, "shoal_topic_bytes_out_total", topic=topic) == \
        value(after_fetch, "shoal_topic_bytes_in_total", topic=topic)

    # State gauges of a single node.
    assert value(after_fetch, "shoal_active_controller") == 1
    assert value(after_fetch, "shoal_broker_unfenced") == 1
    assert value(after_fetch, "shoal_under_replicated_partitions") == 0
    assert value(after_fetch, "shoal_offline_partitions") == 0
    assert value(after_fetch, "shoal_high_watermark", topic=topic, partition=0) == 500
    assert value(after_fetch, "shoal_log_end_offset", topic=topic, partition=1) == 500
    assert value(after_fetch, "shoal_log_size_bytes", topic=topic, partition=0) > 0
    assert value(after_fetch, "shoal_leader_partitions") >= 2
    assert value(after_fetch, "shoal_raft_term") >= 1
    assert value(after_fetch, "shoal_raft_applied_index") >= 1
    assert value(after_fetch, "shoal_process_resident_memory_bytes") > 1_000_000
    assert value(after_fetch, "shoal_process_open_fds") > 3
    assert value(after_fetch, "shoal_process_uptime_seconds") > 0
    assert ("shoal_isr_shrinks_total", ()) in after_fetch


def test_errors_are_counted_under_kafka_error_names(shoal):
    before = scrape(shoal.admin_url)
    # The client's own limit raised, so the broker is the one that refuses.
    p = Producer({"bootstrap.servers": shoal.bootstrap, "message.timeout.ms": 3000,
                  "message.max.bytes": 4_000_000, "retries": 0})
    topic = unique_topic("big")
    ck_create_topic(shoal.bootstrap, topic, partitions=1)
    # A record over message.max.bytes is refused by the broker with MESSAGE_TOO_LARGE.
    p.produce(topic, value=b"x" * 1_100_000, partition=0)
    p.flush(10)
    after = scrape(shoal.admin_url)
    key = dict(api="Produce", error="MESSAGE_TOO_LARGE")
    assert value(after, "shoal_kafka_request_errors_total", **key) > \
        value(before, "shoal_kafka_request_errors_total", **key)


def test_group_lag_is_log_end_minus_committed(shoal):
    topic = unique_topic("lag")
    ck_create_topic(shoal.bootstrap, topic, partitions=1)
    produce(shoal.bootstrap, topic, 300)
    group = unique_topic("lag-group")
    c = Consumer({"bootstrap.servers": shoal.bootstrap, "group.id": group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got, deadline = 0, time.monotonic() + 30
    while got < 120 and time.monotonic() < deadline:
        for m in c.consume(120 - got, timeout=0.5):
            if m.error() is None:
                got += 1
    c.commit(offsets=[TopicPartition(topic, 0, 120)], asynchronous=False)
    c.close()
    deadline = time.monotonic() + 10
    while True:
        samples = scrape(shoal.admin_url)
        committed = value(samples, "shoal_consumer_group_committed_offset", group=group, topic=topic, partition=0)
        if committed == 120 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert committed == 120
    assert value(samples, "shoal_consumer_group_lag", group=group, topic=topic, partition=0) == 300 - 120
    assert value(samples, "shoal_consumer_groups") >= 1


def test_healthz_and_readyz_are_separate(shoal):
    with urllib.request.urlopen(f"{shoal.admin_url}/healthz", timeout=5) as r:
        assert r.status == 200 and r.read() == b"ok\n"
    with urllib.request.urlopen(f"{shoal.admin_url}/readyz", timeout=5) as r:
        assert r.status == 200 and r.read() == b"ready\n"


@pytest.mark.timeout(180)
def test_a_killed_node_shows_as_under_replicated_on_the_survivors(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    try:
        topic = unique_topic("urp")
        create_topic(c.bootstrap, topic, partitions=6, rf=3)
        samples = {n.node_id: scrape(n.admin_url) for n in c.nodes}
        assert sum(value(s, "shoal_active_controller") for s in samples.values()) == 1
        assert sum(value(s, "shoal_under_replicated_partitions") for s in samples.values()) == 0

        victim = c.node(3)
        victim.kill()
        survivors = [n for n in c.nodes if n.node_id != 3]

        def urp() -> float:
            return sum(value(scrape(n.admin_url), "shoal_under_replicated_partitions") for n in survivors)

        deadline = time.monotonic() + 30
        while urp() == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert urp() > 0
        fenced = max(value(scrape(n.admin_url), "shoal_fenced_brokers") for n in survivors)
        assert fenced == 1

        victim.restart()
        deadline = time.monotonic() + 60
        while urp() > 0 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert urp() == 0
        assert max(value(scrape(n.admin_url), "shoal_fenced_brokers") for n in c.nodes) == 0
        assert sum(value(scrape(n.admin_url), "shoal_active_controller") for n in c.nodes) == 1
    finally:
        c.close()


def test_the_grafana_dashboard_uses_only_documented_metrics():
    import json
    import re

    from conftest import REPO

    dashboard = json.loads((REPO / "deploy" / "grafana" / "shoal.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {re.sub(r"_(bucket|count|sum)$", "", m) for e in exprs for m in re.findall(r"shoal_[a-z_]+", e)}
    assert len(used) >= 15
    documented = (REPO / "docs" / "metrics.md").read_text()
    names = (REPO / "crates" / "shoal-metrics" / "src" / "names.rs").read_text()
    for name in sorted(used):
        assert f"`{name}`" in documented, f"{name} is on the dashboard but not in docs/metrics.md"
        assert f'"{name}"' in names, f"{name} is on the dashboard but Shoal does not export it"
    for name in re.findall(r'"(shoal_[a-z_]+)"', names):
        assert f"`{name}`" in documented, f"{name} is exported but not in docs/metrics.md"
