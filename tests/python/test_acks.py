"""acks=0, 1 and all each deliver; a record over message.max.bytes is refused
with MESSAGE_TOO_LARGE (10)."""

from __future__ import annotations

import dataclasses
import os

import pytest
from confluent_kafka import KafkaError, Producer

from checker import check
from clients import ck_consume, ck_create_topic, ck_produce, kp_consume, kp_produce, observed, unique_topic

MAX_MESSAGE_BYTES = 262_144
SHOAL_OVERRIDES = {"message.max.bytes": MAX_MESSAGE_BYTES}
N = 3000


@pytest.mark.timeout(120)
@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_confluent_acks(shoal, acks):
    topic = unique_topic(f"acks{acks}")
    ck_create_topic(shoal.bootstrap, topic, partitions=3)
    res = ck_produce(shoal.bootstrap, topic, N, prefix=f"a{acks}", conf={"acks": acks})
    assert not res.errors, res.errors[:5]
    assert len(res.acked) == N
    if acks == "0":
        # No response, so no offset the broker vouched for; what librdkafka reports here is not
        # from the broker (usually nothing, sometimes a local value), so the check ignores it.
        res.acked = [dataclasses.replace(a, offset=None) for a in res.acked]
    else:
        assert all(a.offset is not None for a in res.acked)
    recs = ck_consume(shoal.bootstrap, topic, [0, 1, 2], N)
    rep = check(res.acked, observed(recs))
    assert rep.ok and rep.observed == N, rep.summary()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_kafka_python_acks(shoal, acks):
    topic = unique_topic(f"kpacks{acks}")
    ck_create_topic(shoal.bootstrap, topic, partitions=3)
    res = kp_produce(shoal.bootstrap, topic, 1000, prefix=f"k{acks}", acks=acks)
    assert not res.errors, res.errors[:5]
    recs = kp_consume(shoal.bootstrap, topic, [0, 1, 2], 1000)
    rep = check(res.acked, observed(recs))
    assert rep.ok and rep.observed == 1000, rep.summary()


def _produce_one(bootstrap, topic, value):
    p = Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "compression.type": "none",
        # keep the client's own limit above the record so the broker is the one to judge it
        "message.max.bytes": 8 * 1024 * 1024, "message.timeout.ms": 20_000, "retries": 0,
    })
    result = {}

    def cb(err, msg):
        result["err"], result["offset"] = err, msg.offset()

    p.produce(topic, value=value, key=b"big", on_delivery=cb)
    assert p.flush(30) == 0, "delivery report did not arrive"
    return result


@pytest.mark.timeout(90)
def test_record_over_message_max_bytes_is_refused(shoal):
    topic = unique_topic("big")
    ck_create_topic(shoal.bootstrap, topic, partitions=1)
    ok = _produce_one(shoal.bootstrap, topic, os.urandom(MAX_MESSAGE_BYTES // 2))
    assert ok["err"] is None, ok
    too_big = _produce_one(shoal.bootstrap, topic, os.urandom(1024 * 1024 + 1024))  # 1 MiB + 1 KiB
    assert too_big["err"] is not None, "oversized record was accepted"
    assert too_big["err"].code() == KafkaError.MSG_SIZE_TOO_LARGE, too_big["err"]
    # the partition holds only the first record, and the node still serves
    recs = ck_consume(shoal.bootstrap, topic, [0], 1)
    assert [r.offset for r in recs] == [0]
    assert len(ck_consume(shoal.bootstrap, topic, [0], 2, idle=3, timeout=30)) == 1
