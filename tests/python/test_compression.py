"""Compressed batches round-trip intact: confluent-kafka with every codec,
kafka-python with gzip (the codec it supports without extra libraries); and a topic's
compression.type decides how the leader stores them (the codec read from raw Fetch)."""

from __future__ import annotations

import pytest

from checker import check
from kafka_wire import Conn, all_stored_batches
from clients import ck_consume, ck_create_topic, ck_produce, kp_consume, kp_produce, make_key, make_value, \
    observed, unique_topic, value_id

N = 5000
PARTITIONS = [0, 1, 2]


def verify(recs, res, prefix):
    assert len(recs) == N, f"read {len(recs)} of {N}"
    rep = check(res.acked, observed(recs))
    assert rep.ok, rep.summary()
    for r in recs:
        i = int(value_id(r.value).split("-")[-1])
        assert r.value == make_value(prefix, i, 300), f"record {i} changed"
        assert r.key == make_key(i)
        assert r.headers == [("seq", str(i).encode()), ("src", prefix.encode())]
        assert r.timestamp == res.base_ts + i


@pytest.mark.timeout(120)
@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_confluent_compression(shoal, codec):
    topic = unique_topic(f"c-{codec}")
    ck_create_topic(shoal.bootstrap, topic, partitions=3)
    prefix = f"c{codec}"
    res = ck_produce(shoal.bootstrap, topic, N, prefix=prefix, value_size=300,
                     conf={"compression.type": codec, "acks": "all"})
    assert not res.errors, res.errors[:5]
    verify(ck_consume(shoal.bootstrap, topic, PARTITIONS, N), res, prefix)


@pytest.mark.timeout(180)
def test_kafka_python_gzip(shoal):
    topic = unique_topic("kp-gzip")
    ck_create_topic(shoal.bootstrap, topic, partitions=3)
    res = kp_produce(shoal.bootstrap, topic, N, prefix="kpgz", acks="all", compression="gzip", value_size=300)
    assert not res.errors, res.errors[:5]
    verify(kp_consume(shoal.bootstrap, topic, PARTITIONS, N), res, "kpgz")
    # and librdkafka decompresses what kafka-python compressed
    verify(ck_consume(shoal.bootstrap, topic, PARTITIONS, N), res, "kpgz")


CODEC_IDS = {"none": 0, "uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def stored_codecs(bootstrap: str, topic: str) -> set[int]:
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    with Conn(host, int(port)) as conn:
        batches = [b for p in PARTITIONS for b in all_stored_batches(conn, topic, p)]
    assert sum(b.record_count for b in batches) == N
    return {b.codec for b in batches}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("topic_codec,producer_codec,stored", [
    ("zstd", "none", "zstd"),        # the leader compresses
    ("producer", "gzip", "gzip"),    # kept as sent
    ("uncompressed", "lz4", "none"),  # the leader decompresses
    ("lz4", "snappy", "lz4"),        # the leader recompresses
    ("gzip", "gzip", "gzip"),        # same codec: kept as sent
])
def test_topic_compression_type(shoal, topic_codec, producer_codec, stored):
    topic = unique_topic(f"ct-{topic_codec}-{producer_codec}")
    ck_create_topic(shoal.bootstrap, topic, partitions=3, config={"compression.type": topic_codec})
    prefix = f"ct{topic_codec}{producer_codec}"
    res = ck_produce(shoal.bootstrap, topic, N, prefix=prefix, value_size=300,
                     conf={"compression.type": producer_codec, "acks": "all"})
    assert not res.errors, res.errors[:5]
    assert stored_codecs(shoal.bootstrap, topic) == {CODEC_IDS[stored]}
    # Same records, keys, headers and timestamps, whatever the broker did to the batches.
    verify(ck_consume(shoal.bootstrap, topic, PARTITIONS, N), res, prefix)
