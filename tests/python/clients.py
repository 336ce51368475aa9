"""Client helpers shared by the tests: workloads for confluent-kafka,
kafka-python and kcat, each bounded in count and time.

A record of a workload has a unique id in its value (`<prefix>-<id:08d>|...`),
a key, headers and an explicit CreateTime timestamp (where the client allows).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from checker import Acked, Observed

OP_TIMEOUT = 30.0  # seconds for one admin operation

# Confluent settings that make 100k-record loads quick on loopback.
FAST_PRODUCER = {
    "linger.ms": 5,
    "batch.num.messages": 10000,
    "batch.size": 1_000_000,
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "message.timeout.ms": 60_000,
    "max.in.flight.requests.per.connection": 5,
}
FAST_CONSUMER = {
    "fetch.max.bytes": 52_428_800,
    "max.partition.fetch.bytes": 10_485_760,
    "fetch.wait.max.ms": 100,
    "queued.min.messages": 200_000,
}


def unique_topic(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Rec:
    """One record as read back by a consumer."""
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp: int | None = None
    timestamp_type: str | None = None  # "create", "log_append" or None


def make_value(prefix: str, i: int, size: int = 64) -> bytes:
    head = f"{prefix}-{i:08d}|".encode()
    return head + b"x" * max(0, size - len(head))


def value_id(value: bytes) -> str:
    return value.split(b"|", 1)[0].decode()


def make_key(i: int, nkeys: int = 97) -> bytes:
    return f"key-{i % nkeys}".encode()


# ------------------------------------------------------------------ confluent-kafka
def ck_admin(bootstrap: str, **conf) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, **conf})


def ck_create_topic(bootstrap: str, name: str, partitions: int = 3, config: dict | None = None,
                    replication_factor: int = 1) -> None:
    admin = ck_admin(bootstrap)
    fut = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor, config=config or {})],
        operation_timeout=OP_TIMEOUT, request_timeout=OP_TIMEOUT,
    )[name]
    fut.result(timeout=OP_TIMEOUT)
    wait_for_partitions(bootstrap, name, partitions)


def wait_for_partitions(bootstrap: str, topic: str, partitions: int, timeout: float = 20.0) -> None:
    """Wait (bounded) until metadata shows the topic with `partitions` partitions, each with a leader."""
    admin = ck_admin(bootstrap)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        md = admin.list_topics(topic=topic, timeout=5)
        t = md.topics.get(topic)
        last = t
        if t is not None and t.error is None and len(t.partitions) == partitions and all(
            p.leader >= 0 and p.error is None for p in t.partitions.values()
        ):
            return
        time.sleep(0.2)
    raise AssertionError(f"topic {topic} not ready with {partitions} partitions: {last}")


def topic_names(bootstrap: str) -> set[str]:
    md = ck_admin(bootstrap).list_topics(timeout=10)
    return {name for name, t in md.topics.items() if t.error is None}


@dataclass
class ProduceResult:
    acked: list[Acked] = field(default_factory=list)
    errors: list[tuple[int, KafkaError]] = field(default_factory=list)  # (seq, error)
    sent: int = 0
    start_ms: int = 0
    end_ms: int = 0
    base_ts: int = 0  # CreateTime of record i is base_ts + i (when timestamps are set)


def ck_produce(bootstrap: str, topic: str, count: int, *, prefix: str = "ck", conf: dict | None = None,
               headers: bool = True, value_size: int = 64, timestamps: bool = True,
               partition: int | None = None, timeout: float = 120.0, stop=None,
               result: ProduceResult | None = None, flush_timeout: float | None = None) -> ProduceResult:
    """Produce `count` records; collect every delivery report. `stop()` may end the loop early;
    `result` lets another thread watch the acks as they arrive."""
    res = result if result is not None else ProduceResult()
    p = Producer({"bootstrap.servers": bootstrap, **FAST_PRODUCER, **(conf or {})})
    base_ts = int(time.time() * 1000) - 10 * 60 * 1000  # 10 minutes ago, 1 ms apart
    res.start_ms = int(time.time() * 1000)
    res.base_ts = base_ts
    deadline = time.monotonic() + timeout

    def on_delivery(seq, key):
        def cb(err, msg):
            if err is not None:
                res.errors.append((seq, err))
            else:
                off = msg.offset()  # None (or -1) when acks=0
                res.acked.append(Acked(f"{prefix}-{seq:08d}", msg.partition(),
                                       off if off is not None and off >= 0 else None, key=key, seq=seq))
        return cb

    for i in range(count):
        if stop is not None and stop():
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"producing {count} records took over {timeout}s (sent {i})")
        key = make_key(i)
        kw = {"key": key, "value": make_value(prefix, i, value_size), "on_delivery": on_delivery(i, key)}
        if headers:
            kw["headers"] = [("seq", str(i).encode()), ("src", prefix.encode())]
        if timestamps:
            kw["timestamp"] = base_ts + i
        if partition is not None:
            kw["partition"] = partition
        queued = False
        while not queued:
            try:
                p.produce(topic, **kw)
                queued = True
            except BufferError:
                if stop is not None and stop():
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"producer queue stayed full until the {timeout}s deadline")
                p.poll(0.05)
        if not queued:
            break
        res.sent += 1
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(flush_timeout if flush_timeout is not None else max(1.0, deadline - time.monotonic()))
    res.end_ms = int(time.time() * 1000)
    if left:
        res.errors.append((-1, KafkaError(KafkaError._MSG_TIMED_OUT, f"{left} records still in queue")))
    return res


def ck_consume(bootstrap: str, topic: str, partitions: list[int], expected: int, *, conf: dict | None = None,
               timeout: float = 120.0, idle: float | None = None) -> list[Rec]:
    """Assign `partitions` from the beginning; read until `expected` records, or `idle` seconds without
    new records (if given), or `timeout` (then fail)."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"shoal-tests-{uuid.uuid4().hex[:8]}",  # required by the client; no group is joined
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        "auto.offset.reset": "earliest",
        **FAST_CONSUMER,
        **(conf or {}),
    })
    out: list[Rec] = []
    try:
        c.assign([TopicPartition(topic, p, -2) for p in partitions])  # -2 = OFFSET_BEGINNING
        deadline = time.monotonic() + timeout
        last_new = time.monotonic() + 5  # grace for connecting before `idle` counts
        while len(out) < expected:
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"consumed {len(out)} of {expected} records in {timeout}s")
            if idle is not None and now - last_new > idle:
                break
            for m in c.consume(num_messages=10000, timeout=0.5):
                err = m.error()
                if err is not None:
                    if err.fatal():
                        raise KafkaException(err)
                    continue  # e.g. no group coordinator: harmless with manual assignment
                ts_type, ts = m.timestamp()
                out.append(Rec(
                    m.partition(), m.offset(), m.key(), m.value(), list(m.headers() or []), ts,
                    {1: "create", 2: "log_append"}.get(ts_type),
                ))
                last_new = time.monotonic()
    finally:
        c.close()
    return out


def observed(recs: list[Rec]) -> list[Observed]:
    return [Observed(value_id(r.value), r.partition, r.offset, r.key) for r in recs]


# ------------------------------------------------------------------ kafka-python
def kp_admin(bootstrap: str):
    from kafka import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(OP_TIMEOUT * 1000))


def kp_produce(bootstrap: str, topic: str, count: int, *, prefix: str = "kp", acks=1, compression=None,
               value_size: int = 64, timeout: float = 180.0) -> ProduceResult:
    from kafka import KafkaProducer

    res = ProduceResult()
    p = KafkaProducer(
        bootstrap_servers=bootstrap, acks=acks, compression_type=compression,
        linger_ms=10, batch_size=512 * 1024,
        max_request_size=8 * 1024 * 1024, request_timeout_ms=30000,
    )
    base_ts = int(time.time() * 1000) - 10 * 60 * 1000
    res.start_ms = int(time.time() * 1000)
    deadline = time.monotonic() + timeout
    futures = []
    try:
        for i in range(count):
            if time.monotonic() > deadline:
                raise AssertionError(f"producing {count} records took over {timeout}s (sent {i})")
            key = make_key(i)
            futures.append((i, key, p.send(
                topic, key=key, value=make_value(prefix, i, value_size),
                headers=[("seq", str(i).encode()), ("src", prefix.encode())], timestamp_ms=base_ts + i,
            )))
            res.sent += 1
        p.flush(timeout=max(1.0, deadline - time.monotonic()))
        for i, key, f in futures:
            try:
                md = f.get(timeout=max(0.1, deadline - time.monotonic()))
                # with acks=0 kafka-python reports a batch-relative guess, not an offset
                off = md.offset if acks != 0 and md.offset is not None and md.offset >= 0 else None
                res.acked.append(Acked(f"{prefix}-{i:08d}", md.partition, off, key=key, seq=i))
            except Exception as e:  # noqa: BLE001 - record every failure
                res.errors.append((i, e))
    finally:
        p.close(timeout=10)
    res.end_ms = int(time.time() * 1000)
    res.base_ts = base_ts
    return res


def kp_consume(bootstrap: str, topic: str, partitions: list[int], expected: int, timeout: float = 180.0) -> list[Rec]:
    from kafka import KafkaConsumer, TopicPartition as KTP

    c = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
        fetch_max_bytes=52_428_800, max_partition_fetch_bytes=10_485_760, max_poll_records=20_000,
        fetch_max_wait_ms=100, request_timeout_ms=30_000,
    )
    out: list[Rec] = []
    try:
        tps = [KTP(topic, p) for p in partitions]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        while len(out) < expected:
            if time.monotonic() > deadline:
                raise AssertionError(f"kafka-python consumed {len(out)} of {expected} records in {timeout}s")
            for _tp, msgs in c.poll(timeout_ms=500, max_records=20_000).items():
                for m in msgs:
                    out.append(Rec(m.partition, m.offset, m.key, m.value, list(m.headers or []), m.timestamp,
                                   {0: "create", 1: "log_append"}.get(m.timestamp_type)))
    finally:
        c.close()
    return out


# ------------------------------------------------------------------ kcat
KCAT_FORMAT = r"%p\t%o\t%T\t%k\t%h\t%s\n"


def kcat(args: list[str], *, timeout: float = 180.0, stdin=None) -> subprocess.CompletedProcess:
    proc = subprocess.run(["kcat", *args], stdin=stdin if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)
    return proc


def parse_kcat_line(line: bytes) -> Rec:
    part, off, ts, key, hdrs, value = line.split(b"\t", 5)
    headers = []
    if hdrs:
        for kv in hdrs.split(b","):
            k, _, v = kv.partition(b"=")
            headers.append((k.decode(), v))
    return Rec(int(part), int(off), key, value, headers, int(ts), None)
