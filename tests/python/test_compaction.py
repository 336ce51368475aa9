"""Log compaction with real clients: a compacted topic keeps the latest record per key at its
original offset and drops keys deleted by a tombstone; `__consumer_offsets`, compacted the same
way, stays small however often a group commits, and its offsets survive a SIGKILL. A batch
whose records cannot be read, planted in a segment file, does not stop the cleaning (issue #15):
it is kept and counted in `shoal_log_cleaner_skipped_batches_total`. A transactional producer's
aborted records are removed and never hide the committed values (issue #17), also for
consumers reading markers the cleaner stamped with their delete horizon, and after a SIGKILL.

The cleaner runs every 200 ms here (`log.cleaner.backoff.ms`) and small segments make most of
the data cleanable; the tests poll until the cleaner is done, bounded in time."""

from __future__ import annotations

import struct
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import kafka_wire as kw
from clients import ck_consume, ck_create_topic, unique_topic
from test_groups import committed_offsets
from test_metrics import scrape, value

SHOAL_OVERRIDES = {
    "log.cleaner.backoff.ms": 200,
    "offsets.topic.num.partitions": 1,
    "offsets.topic.segment.bytes": 16384,
}

KEYS = 50
VERSIONS = 40
DELETED = range(10)  # keys 0-9 end with a tombstone


def produce_keyed(bootstrap: str, topic: str, records: list[tuple[bytes, bytes | None]]) -> list[int]:
    """Produce in order to partition 0 with acks=all; the offset of each record."""
    # Small batches, so segments roll (a segment rolls between batches) and become cleanable.
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2, "enable.idempotence": True,
                  "batch.num.messages": 20})
    offsets: list[int | None] = [None] * len(records)

    def done(i):
        def cb(err, msg):
            assert err is None, err
            offsets[i] = msg.offset()
        return cb

    for i, (k, v) in enumerate(records):
        p.produce(topic, key=k, value=v, partition=0, on_delivery=done(i))
        if i % 500 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    assert None not in offsets
    return offsets


def read_back(bootstrap: str, topic: str) -> list[tuple[int, bytes, bytes | None]]:
    recs = ck_consume(bootstrap, topic, [0], 1 << 30, idle=2.0, timeout=60)
    return [(r.offset, r.key, r.value) for r in recs]


@pytest.mark.timeout(120)
def test_compacted_topic_keeps_the_latest_value_per_key_at_its_offset(shoal):
    topic = unique_topic("compact")
    ck_create_topic(shoal.bootstrap, topic, partitions=1, config={
        "cleanup.policy": "compact",
        "segment.bytes": "4096",
        "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "0",
    })
    history = [(f"k{k}".encode(), f"k{k}-v{v}".encode()) for v in range(VERSIONS) for k in range(KEYS)]
    history += [(f"k{k}".encode(), None) for k in DELETED]
    # Unique-key filler rolls the segments so the whole history becomes cleanable.
    history += [(f"filler-{i}".encode(), b"f" * 100) for i in range(100)]
    offsets = produce_keyed(shoal.bootstrap, topic, history)
    acked_at = {o: rec for o, rec in zip(offsets, history)}
    latest: dict[bytes, int] = {}
    for o, (k, _) in zip(offsets, history):
        latest[k] = o

    deadline = time.monotonic() + 60
    while True:
        got = read_back(shoal.bootstrap, topic)
        keyed = [r for r in got if not r[1].startswith(b"filler-")]
        if len(keyed) <= KEYS or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(keyed) <= KEYS, f"{len(keyed)} records of {KEYS} keys after 60 s: not compacted"

    # Offsets never change: every record is exactly what was acknowledged at its offset.
    for offset, key, value in got:
        assert acked_at[offset] == (key, value), f"offset {offset} holds {key!r}={value!r}"
    assert [o for o, _, _ in got] == sorted({o for o, _, _ in got}), "offsets out of order"
    by_key: dict[bytes, list[int]] = {}
    for offset, key, _ in got:
        by_key.setdefault(key, []).append(offset)
    for k in range(KEYS):
        key = f"k{k}".encode()
        if k in DELETED:
            # Gone, or only the tombstone itself (delete.retention.ms may not have passed a clean).
            assert by_key.get(key, []) in ([], [latest[key]]), f"deleted {key!r} at {by_key.get(key)}"
        else:
            assert by_key.get(key) == [latest[key]], f"{key!r} at {by_key.get(key)}, latest {latest[key]}"
            assert acked_at[latest[key]][1] == f"k{k}-v{VERSIONS - 1}".encode()
    fillers = [o for o, key, _ in got if key.startswith(b"filler-")]
    assert fillers == [latest[f"filler-{i}".encode()] for i in range(100)], "unique keys must all stay"


@pytest.mark.timeout(120)
def test_consumer_offsets_stay_bounded_over_many_commits(shoal):
    topic = unique_topic("commits")
    group = f"g-{topic}"
    ck_create_topic(shoal.bootstrap, topic, partitions=6)
    c = Consumer({"bootstrap.servers": shoal.bootstrap, "group.id": group, "enable.auto.commit": False})
    commits = 3000
    try:
        for i in range(1, commits + 1):
            c.commit(offsets=[TopicPartition(topic, p, i * 10 + p) for p in range(6)], asynchronous=False)
    finally:
        c.close()
    final = {p: commits * 10 + p for p in range(6)}
    assert committed_offsets(shoal.bootstrap, group, topic, 6) == final

    # One offsets partition holds every group here; commits wrote ~18k records to it.
    log_dir = shoal.data_dir / "__consumer_offsets-0"

    def stored_bytes() -> int:
        return sum(f.stat().st_size for f in log_dir.glob("*.log"))

    deadline = time.monotonic() + 60
    while stored_bytes() > 64 * 1024 and time.monotonic() < deadline:
        time.sleep(0.5)
    size = stored_bytes()
    assert size <= 64 * 1024, f"__consumer_offsets-0 holds {size} bytes after {commits} commits"

    # What compaction left is enough: the offsets come back after a crash.
    shoal.kill()
    shoal.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if committed_offsets(shoal.bootstrap, group, topic, 6) == final:
                break
        except Exception:  # the coordinator may still be loading
            pass
        time.sleep(0.5)
    assert committed_offsets(shoal.bootstrap, group, topic, 6) == final


@pytest.mark.timeout(180)
def test_an_unreadable_batch_is_kept_and_counted_while_cleaning_goes_on(shoal_factory):
    node = shoal_factory(SHOAL_OVERRIDES)
    topic = unique_topic("compact-junk")
    ck_create_topic(node.bootstrap, topic, partitions=1, config={
        "cleanup.policy": "compact", "segment.bytes": "4096", "min.cleanable.dirty.ratio": "0.01",
    })
    history = [(f"k{k}".encode(), f"v{v}".encode()) for v in range(10) for k in range(20)]
    end = max(produce_keyed(node.bootstrap, topic, history)) + 1

    # Planted as damage under a valid CRC would be (Produce refuses it now): recordCount 3,
    # two records, at the log end with the last batch's leader epoch, in the active segment.
    node.stop()
    part = node.data_dir / f"{topic}-0"
    (part / "clean-shutdown").unlink(missing_ok=True)  # make the node rescan the tail
    active = sorted(part.glob("*.log"))[-1]
    data = active.read_bytes()
    pos, epoch = 0, 0
    while pos + 61 <= len(data):
        (length,) = struct.unpack_from(">i", data, pos + 8)
        (epoch,) = struct.unpack_from(">i", data, pos + 12)
        pos += 12 + length
    records = b"".join(kw.encode_record(i, 0, f"junk{i}".encode(), b"x") for i in range(2))
    junk = bytearray(kw.batch_v2_raw(records, 3))
    junk[0:8] = struct.pack(">q", end)  # base offset and epoch lie outside the CRC
    junk[12:16] = struct.pack(">i", epoch)
    with active.open("ab") as f:
        f.write(bytes(junk))
    node.start()

    # More history rolls the planted batch into a sealed, committed segment.
    produce_keyed(node.bootstrap, topic, history)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        skipped = value(scrape(node.admin_url), "shoal_log_cleaner_skipped_batches_total",
                        topic=topic, partition=0)
        if skipped >= 1:
            break
        time.sleep(0.5)
    assert skipped == 1, f"shoal_log_cleaner_skipped_batches_total is {skipped}"
    with kw.Conn("127.0.0.1", node.kafka_port) as c:
        stored = kw.all_stored_batches(c, topic, 0)
    assert any((b.base_offset, b.record_count) == (end, 3) for b in stored), "the batch was not kept"
    kept = sum(b.record_count for b in stored)
    assert kept < 2 * len(history), f"{kept} records kept of {2 * len(history)}: nothing compacted"


TXN_KEYS = 10
# Each round is one transaction over every key; the last ones abort, so aborted values are the
# newest of their keys and must not hide the committed ones.
TXN_ROUNDS = [True, False, True, True, False, True, False, False]


def marker_attributes(port: int, topic: str) -> list[int]:
    """The attributes of every control batch of partition 0, read with raw Fetch v4."""
    out, offset = [], 0
    with kw.Conn("127.0.0.1", port) as c:
        for correlation_id in range(10, 10_000):
            res = kw.fetch_v4(c, topic, 0, offset, correlation_id)
            assert res.error_code == 0, res.error_code
            pos, records = 0, res.records
            while pos + 61 <= len(records):
                base, length = struct.unpack_from(">qi", records, pos)
                if pos + 12 + length > len(records):
                    break
                (attributes,) = struct.unpack_from(">h", records, pos + 21)
                (last_delta,) = struct.unpack_from(">i", records, pos + 23)
                if attributes & 0x20:
                    out.append(attributes)
                offset = base + last_delta + 1
                pos += 12 + length
            if offset >= res.high_watermark:
                return out
    raise AssertionError("too many fetches")


def read_keyed(bootstrap: str, topic: str, isolation: str) -> list[tuple[int, bytes, bytes | None]]:
    recs = ck_consume(bootstrap, topic, [0], 1 << 30, conf={"isolation.level": isolation},
                      idle=2.0, timeout=60)
    return [(r.offset, r.key, r.value) for r in recs if not r.key.startswith(b"filler-")]


@pytest.mark.timeout(240)
def test_transactions_on_a_compacted_topic_keep_exactly_the_committed_latest_values(shoal_factory):
    node = shoal_factory({**SHOAL_OVERRIDES, "transaction.state.log.num.partitions": 1})
    topic = unique_topic("compact-txn")
    ck_create_topic(node.bootstrap, topic, partitions=1, config={
        "cleanup.policy": "compact",
        "segment.bytes": "4096",
        "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "100",
    })
    p = Producer({"bootstrap.servers": node.bootstrap, "transactional.id": unique_topic("ctid"),
                  "linger.ms": 2, "batch.num.messages": 5})
    p.init_transactions(30)
    acked: dict[tuple[bytes, bytes], int] = {}

    def record(err, msg):
        assert err is None, err
        acked[(msg.key(), msg.value())] = msg.offset()

    latest: dict[bytes, bytes] = {}  # the latest committed value of each key
    aborted_values: set[bytes] = set()
    pad = b"." * 120  # rounds fill segments, so both outcomes span several
    for round_, commit in enumerate(TXN_ROUNDS):
        p.begin_transaction()
        written = {}
        for k in range(TXN_KEYS):
            key, value = f"k{k}".encode(), f"r{round_}-k{k}-".encode() + pad
            p.produce(topic, key=key, value=value, partition=0, on_delivery=record)
            written[key] = value
        if not commit:
            # Keys only aborted transactions ever wrote: never to be seen.
            p.produce(topic, key=f"ghost-{round_}".encode(), value=b"ghost" + pad, partition=0)
        p.flush(30)  # in the log, not just in the client
        if commit:
            p.commit_transaction(30)
            latest.update(written)
        else:
            p.abort_transaction(30)
            aborted_values.update(written.values())
    # Unique-key filler rolls the segments, so every transaction lies in cleanable ones.
    produce_keyed(node.bootstrap, topic, [(f"filler-{i}".encode(), b"f" * 100) for i in range(150)])
    expected = sorted((acked[(k, v)], k, v) for k, v in latest.items())

    def cleaned(got: list[tuple[int, bytes, bytes | None]]) -> bool:
        return sorted(got) == expected

    deadline = time.monotonic() + 90
    while True:
        uncommitted = read_keyed(node.bootstrap, topic, "read_uncommitted")
        if cleaned(uncommitted) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    leftovers = [(o, k, v[:12]) for o, k, v in uncommitted if v in aborted_values or k.startswith(b"ghost")]
    assert not leftovers, f"aborted records left after 90 s: {leftovers[:5]}"
    assert cleaned(uncommitted), f"{len(uncommitted)} records for {TXN_KEYS} keys: not compacted"
    # read_committed sees the same: the latest committed value of each key, where it was written.
    assert sorted(read_keyed(node.bootstrap, topic, "read_committed")) == expected

    # A later pass finds markers whose transaction has no data left and stamps them with their
    # delete horizon (attribute 0x40, KIP-534); consumers read such markers as any other.
    produce_keyed(node.bootstrap, topic, [(f"filler-more-{i}".encode(), b"f" * 100) for i in range(60)])
    deadline = time.monotonic() + 60
    while not any(a & 0x40 for a in marker_attributes(node.kafka_port, topic)):
        assert time.monotonic() < deadline, "no marker got its delete horizon in 60 s"
        time.sleep(0.5)
    assert sorted(read_keyed(node.bootstrap, topic, "read_committed")) == expected
    assert cleaned(read_keyed(node.bootstrap, topic, "read_uncommitted"))

    # A crash and restart rebuilds the producer state from the cleaned log: the last stable
    # offset is not held back by a transaction whose end the cleaner removed.
    node.kill()
    node.start()
    deadline = time.monotonic() + 60
    while True:
        try:
            got = read_keyed(node.bootstrap, topic, "read_committed")
        except AssertionError:  # the partition may still be loading
            got = []
        if sorted(got) == expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sorted(got) == expected
    assert cleaned(read_keyed(node.bootstrap, topic, "read_uncommitted"))
