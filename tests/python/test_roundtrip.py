"""Round trip of 100,000 keyed records with headers through each real client:
kcat (librdkafka 2.0.2 from Debian), confluent-kafka and kafka-python.

Each test creates a 3-partition topic explicitly, produces, reads every
partition back from the beginning by manual assignment, and checks content,
keys, headers, timestamps and per-partition order (via checker.py).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import defaultdict

import pytest

from checker import Acked, check
from clients import (
    KCAT_FORMAT, Rec, ck_consume, ck_create_topic, ck_produce, kcat, kp_admin, kp_consume, kp_produce,
    make_key, make_value, observed, parse_kcat_line, unique_topic, value_id, wait_for_partitions,
)

N = int(os.environ.get("SHOAL_ROUNDTRIP_RECORDS", "100000"))
PARTITIONS = [0, 1, 2]


def verify_roundtrip(recs: list[Rec], acked: list[Acked], *, prefix: str, n: int, expected_headers,
                     check_timestamp) -> None:
    assert len(recs) == n, f"read {len(recs)} records, expected {n}"
    rep = check(acked, observed(recs), by_key=True)
    assert rep.ok, rep.summary()
    assert not rep.unacked, rep.summary()

    by_part: dict[int, list[int]] = defaultdict(list)
    key_parts: dict[bytes, set[int]] = defaultdict(set)
    for r in recs:
        rid = value_id(r.value)
        assert rid.startswith(prefix + "-"), r
        i = int(rid.split("-")[-1])
        assert r.value == make_value(prefix, i), f"value of {rid} changed: {r.value[:80]!r}"
        assert r.key == make_key(i), f"key of {rid}: {r.key!r}"
        assert r.headers == expected_headers(i), f"headers of {rid}: {r.headers!r}"
        check_timestamp(i, r)
        by_part[r.partition].append(r.offset)
        key_parts[r.key].add(r.partition)
    assert set(by_part) == set(PARTITIONS), f"records landed on partitions {sorted(by_part)}"
    for p, offs in by_part.items():
        assert sorted(offs) == list(range(len(offs))), f"partition {p}: offsets are not 0..{len(offs) - 1}"
    split = {k: ps for k, ps in key_parts.items() if len(ps) > 1}
    assert not split, f"keys spread over several partitions: {list(split.items())[:3]}"


@pytest.mark.timeout(240)
def test_confluent_kafka_roundtrip(shoal):
    topic = unique_topic("ck")
    ck_create_topic(shoal.bootstrap, topic, partitions=3)
    res = ck_produce(shoal.bootstrap, topic, N, prefix="ck", conf={"acks": "all"})
    assert not res.errors, res.errors[:5]
    assert len(res.acked) == N
    recs = ck_consume(shoal.bootstrap, topic, PARTITIONS, N)

    def ts(i, r):
        assert (r.timestamp_type, r.timestamp) == ("create", res.base_ts + i), (i, r.timestamp_type, r.timestamp)

    verify_roundtrip(recs, res.acked, prefix="ck", n=N,
                     expected_headers=lambda i: [("seq", str(i).encode()), ("src", b"ck")],
                     check_timestamp=ts)


@pytest.mark.timeout(300)
def test_kafka_python_roundtrip(shoal):
    topic = unique_topic("kp")
    admin = kp_admin(shoal.bootstrap)
    try:
        admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}})
    finally:
        admin.close()
    wait_for_partitions(shoal.bootstrap, topic, 3)
    res = kp_produce(shoal.bootstrap, topic, N, prefix="kp", acks="all")
    assert not res.errors, res.errors[:5]
    assert len(res.acked) == N
    recs = kp_consume(shoal.bootstrap, topic, PARTITIONS, N)

    def ts(i, r):
        assert (r.timestamp_type, r.timestamp) == ("create", res.base_ts + i), (i, r.timestamp_type, r.timestamp)

    verify_roundtrip(recs, res.acked, prefix="kp", n=N,
                     expected_headers=lambda i: [("seq", str(i).encode()), ("src", b"kp")],
                     check_timestamp=ts)


@pytest.mark.timeout(240)
def test_kcat_roundtrip(shoal, tmp_path):
    assert shutil.which("kcat"), "kcat is not installed (make test-deps installs it)"
    topic = unique_topic("kc")
    ck_create_topic(shoal.bootstrap, topic, partitions=3)

    src = tmp_path / "in.txt"
    with open(src, "wb") as f:
        for i in range(N):
            f.write(make_key(i) + b":" + make_value("kc", i) + b"\n")

    start_ms = int(time.time() * 1000)
    prod = kcat(["-P", "-b", shoal.bootstrap, "-t", topic, "-K:", "-H", "src=kcat", "-H", "run=rt",
                 "-X", "linger.ms=5", "-X", "batch.num.messages=10000",
                 "-X", "queue.buffering.max.messages=500000", "-X", "acks=all", "-l", str(src)])
    end_ms = int(time.time() * 1000)
    assert prod.returncode == 0, prod.stderr.decode(errors="replace")[-3000:]
    assert b"Delivery failed" not in prod.stderr, prod.stderr.decode(errors="replace")[-3000:]

    cons = kcat(["-C", "-b", shoal.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
                 "-f", KCAT_FORMAT, "-X", "fetch.message.max.bytes=10485760",
                 "-X", "queued.min.messages=200000"])
    assert cons.returncode == 0, cons.stderr.decode(errors="replace")[-3000:]
    recs = [parse_kcat_line(line) for line in cons.stdout.split(b"\n") if line]

    # kcat reports no offsets: acked = everything sent, in file order.
    acked = [Acked(f"kc-{i:08d}", -1, None, key=make_key(i), seq=i) for i in range(N)]

    def ts(i, r):
        # librdkafka stamps CreateTime when kcat hands it the record.
        assert start_ms - 1000 <= r.timestamp <= end_ms + 1000, (i, r.timestamp, start_ms, end_ms)

    verify_roundtrip(recs, acked, prefix="kc", n=N,
                     expected_headers=lambda i: [("src", b"kcat"), ("run", b"rt")],
                     check_timestamp=ts)


@pytest.mark.timeout(60)
def test_kcat_metadata_lists_topic_and_broker(shoal):
    topic = unique_topic("kcmd")
    ck_create_topic(shoal.bootstrap, topic, partitions=3)
    out = kcat(["-L", "-b", shoal.bootstrap, "-t", topic, "-J"], timeout=30)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    md = json.loads(out.stdout)
    assert [b["name"] for b in md["brokers"]] == [shoal.bootstrap]
    (t,) = md["topics"]
    assert t["topic"] == topic
    assert sorted(p["partition"] for p in t["partitions"]) == PARTITIONS


@pytest.mark.timeout(120)
def test_cross_client_confluent_to_kafka_python(shoal):
    """What one client writes, another reads identically."""
    n = 5000
    topic = unique_topic("x")
    ck_create_topic(shoal.bootstrap, topic, partitions=3)
    res = ck_produce(shoal.bootstrap, topic, n, prefix="x", conf={"acks": 1})
    assert not res.errors, res.errors[:5]
    a = sorted(ck_consume(shoal.bootstrap, topic, PARTITIONS, n), key=lambda r: (r.partition, r.offset))
    b = sorted(kp_consume(shoal.bootstrap, topic, PARTITIONS, n), key=lambda r: (r.partition, r.offset))
    assert [(r.partition, r.offset, r.key, r.value, r.headers, r.timestamp, r.timestamp_type) for r in a] == \
           [(r.partition, r.offset, r.key, r.value, r.headers, r.timestamp, r.timestamp_type) for r in b]
