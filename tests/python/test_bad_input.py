"""Bad input over a raw socket. Each case is followed by a check that the node
still serves a fresh connection (raw ApiVersions) and a real client.

Expectations (Kafka's behaviour, ARCHITECTURE.md safety rule 7):
- frame size over socket.request.max.bytes, negative size, a header that
  cannot be parsed, an unknown api key, an array count larger than the frame:
  the connection is closed;
- ApiVersions at an unsupported version: UNSUPPORTED_VERSION (35) in a v0 body
  that lists at least the ApiVersions entry;
- Produce v3 with a bad CRC: CORRUPT_MESSAGE (2) for that partition, nothing
  appended. A magic-1 or truncated batch: CORRUPT_MESSAGE (2) — or INVALID_RECORD
  (87), which is what Apache Kafka's ProduceRequest.validateRecords answers
  (InvalidRecordException); either is accepted, nothing appended.
- Produce v8 of a batch whose header and CRC are sound but whose records are not
  (issue #15, Kafka's LogValidator): a record count that lies, a record length
  that overruns, junk inside or instead of a compressed stream: INVALID_RECORD
  (87), as Kafka's record iterator answers: the CRC holds, so the batch was built
  wrong and a client must not resend it (CORRUPT_MESSAGE is retriable); codec ids
  6 and 7: UNSUPPORTED_COMPRESSION_TYPE (76); inner offsets out
  of order, a keyless record on a compacted topic, a control batch:
  INVALID_RECORD (87); a record timestamp out of bounds: INVALID_TIMESTAMP (32).
  Rule breaks name the records in `record_errors`. Nothing is stored, the
  connection stays usable, and librdkafka still reads the good records.
"""

from __future__ import annotations

import gzip
import os
import resource
import socket
import time

import pytest

import kafka_wire as kw
from clients import ck_consume, ck_create_topic, ck_produce, topic_names, unique_topic
from test_metrics import scrape, value
from test_replication import wait_until

MAX_REQUEST = 1_048_576
SHOAL_OVERRIDES = {"socket.request.max.bytes": MAX_REQUEST}
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def topic(shoal):
    name = unique_topic("raw")
    ck_create_topic(shoal.bootstrap, name, partitions=1)
    return name


def assert_alive(shoal):
    """The node runs and serves a fresh connection from 127.0.0.1 and a real client."""
    assert shoal.running, f"node died\n{shoal.tail()}"
    with kw.Conn("127.0.0.1", shoal.kafka_port) as c:
        av = kw.api_versions(c, correlation_id=77)
    assert av.error_code == 0 and kw.API_VERSIONS in av.apis
    assert topic_names(shoal.bootstrap) is not None  # a real client still gets metadata


def assert_closed(shoal, payload: bytes, what: str):
    with kw.Conn("127.0.0.1", shoal.kafka_port) as c:
        try:
            c.send(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending: fine
        closed, got = c.wait_closed(timeout=10)
    assert closed, f"{what}: connection still open after 10 s (received {got[:64]!r})"
    assert_alive(shoal)


def versions(shoal) -> dict[int, tuple[int, int]]:
    with kw.Conn("127.0.0.1", shoal.kafka_port) as c:
        return kw.api_versions(c).apis


def test_frame_over_socket_request_max_bytes_is_closed(shoal):
    # Only the size prefix and a little data: the node must not wait for (or allocate) 16 MiB.
    assert_closed(shoal, kw.i32(16 * MAX_REQUEST) + b"\x00" * 64, "oversized frame")


def test_frame_just_over_the_limit_is_closed(shoal):
    assert_closed(shoal, kw.i32(MAX_REQUEST + 1) + b"\x00" * 64, "frame of max+1 bytes")


@pytest.mark.parametrize("size", [-1, -2147483648])
def test_negative_frame_size_is_closed(shoal, size):
    assert_closed(shoal, kw.i32(size), f"size {size}")


@pytest.mark.parametrize("payload", [
    kw.frame(b"\x00\x12"),  # header cut after api_key
    kw.frame(b"\x00\x12\x00\x00\x00\x00"),  # header cut inside correlation id
    kw.frame(kw.i16(18) + kw.i16(0) + kw.i32(1) + kw.i16(500) + b"abc"),  # client_id longer than the frame
    kw.frame(kw.i16(18) + kw.i16(0) + kw.i32(1) + kw.i16(-7)),  # client_id length below -1
], ids=["cut-api-key", "cut-correlation", "client-id-too-long", "client-id-negative"])
def test_garbage_header_is_closed(shoal, payload):
    assert_closed(shoal, payload, "garbage header")


def test_random_bytes_are_closed(shoal):
    payload = kw.i32(200) + os.urandom(200)
    # make sure the api key is not a real one so the frame cannot be valid by luck
    payload = payload[:4] + b"\x7f\x00" + payload[6:]
    assert_closed(shoal, payload, "random frame")


@pytest.mark.parametrize("api_key", [9999, 32767, -1])
def test_unknown_api_key_is_closed(shoal, api_key):
    assert_closed(shoal, kw.request(api_key, 0, 5, b""), f"api key {api_key}")


def test_api_versions_unsupported_version_replies_v0_body(shoal):
    with kw.Conn("127.0.0.1", shoal.kafka_port) as c:
        # header v2 (ApiVersions >= 3 is flexible), then a body the node must not try to parse
        r = c.roundtrip(kw.API_VERSIONS, 127, 4242, b"\xff\xfe\xfd", header_v2=True)
        av = kw.parse_api_versions_v0(r)
        assert r.remaining() == 0, f"{r.remaining()} extra bytes after the v0 body"
        assert av.error_code == kw.UNSUPPORTED_VERSION
        assert kw.API_VERSIONS in av.apis, av.apis
        lo, hi = av.apis[kw.API_VERSIONS]
        assert lo == 0 and hi >= 3, (lo, hi)
        # the connection stays usable: a retry at v0 works
        again = kw.api_versions(c, correlation_id=4243)
        assert again.error_code == 0
    assert_alive(shoal)


def _produce_version(shoal) -> int:
    lo, hi = versions(shoal)[kw.PRODUCE]
    assert lo <= 3 <= hi, f"Produce v3 not advertised ({lo}..{hi})"
    return 3


def _latest_offset(shoal, topic) -> int:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": shoal.bootstrap, "group.id": "shoal-tests-raw"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        c.close()


def test_produce_good_batch_is_accepted(shoal, topic):
    """Sanity check of the encoders: a correct batch is appended."""
    _produce_version(shoal)
    before = _latest_offset(shoal, topic)
    batch = kw.record_batch_v2([(b"k", b"good-1"), (None, b"good-2")])
    with kw.Conn("127.0.0.1", shoal.kafka_port) as c:
        (res,) = kw.produce_v3(c, topic, 0, batch)
    assert (res.topic, res.partition, res.error_code) == (topic, 0, kw.NONE)
    assert res.base_offset == before
    recs = ck_consume(shoal.bootstrap, topic, [0], before + 2)
    assert [r.value for r in recs[-2:]] == [b"good-1", b"good-2"]
    assert recs[-2].key == b"k" and recs[-1].key is None


def test_produce_bad_crc_is_corrupt_message(shoal, topic):
    _produce_version(shoal)
    before = _latest_offset(shoal, topic)
    batch = kw.record_batch_v2([(b"k", b"v")], corrupt_crc=True)
    with kw.Conn("127.0.0.1", shoal.kafka_port) as c:
        (res,) = kw.produce_v3(c, topic, 0, batch)
    assert (res.partition, res.error_code) == (0, kw.CORRUPT_MESSAGE)
    assert _latest_offset(shoal, topic) == before, "a corrupt batch was appended"
    assert_alive(shoal)


def test_produce_flipped_record_byte_is_corrupt_message(shoal, topic):
    batch = bytearray(kw.record_batch_v2([(b"key", b"value-123")]))
    batch[-3] ^= 0x01  # inside the record, covered by the CRC
    before = _latest_offset(shoal, topic)
    with kw.Conn("127.0.0.1", shoal.kafka_port) as c:
        (res,) = kw.produce_v3(c, topic, 0, bytes(batch))
    assert res.error_code == kw.CORRUPT_MESSAGE
    assert _latest_offset(shoal, topic) == before


def test_produce_magic_1_is_corrupt_message(shoal, topic):
    before = _latest_offset(shoal, topic)
    with kw.Conn("127.0.0.1", shoal.kafka_port) as c:
        (res,) = kw.produce_v3(c, topic, 0, kw.legacy_message_v1(b"k", b"old-format"))
    assert res.partition == 0 and res.error_code in (kw.CORRUPT_MESSAGE, kw.INVALID_RECORD), res
    assert _latest_offset(shoal, topic) == before
    assert_alive(shoal)


def test_produce_truncated_batch_is_corrupt_message(shoal, topic):
    batch = kw.record_batch_v2([(b"k", b"v" * 100)])
    before = _latest_offset(shoal, topic)
    with kw.Conn("127.0.0.1", shoal.kafka_port) as c:
        (res,) = kw.produce_v3(c, topic, 0, batch[:-20])  # batchLength promises more than there is
    assert res.error_code in (kw.CORRUPT_MESSAGE, kw.INVALID_RECORD), res
    assert _latest_offset(shoal, topic) == before


@pytest.mark.parametrize("where", ["topics", "partitions"])
def test_produce_huge_array_count_is_closed(shoal, topic, where):
    if where == "topics":
        body = kw.string(None) + kw.i16(1) + kw.i32(1000) + kw.i32(0x7FFFFFFF) + kw.string(topic)
    else:
        body = (kw.string(None) + kw.i16(1) + kw.i32(1000) + kw.i32(1) + kw.string(topic)
                + kw.i32(0x7FFFFFFF) + kw.i32(0))
    assert_closed(shoal, kw.request(kw.PRODUCE, 3, 9, body), f"huge {where} count")


def test_huge_records_length_in_small_frame_is_closed(shoal, topic):
    body = (kw.string(None) + kw.i16(1) + kw.i32(1000) + kw.i32(1) + kw.string(topic)
            + kw.i32(1) + kw.i32(0) + kw.i32(0x7FFFFFF0) + b"\x00" * 16)
    assert_closed(shoal, kw.request(kw.PRODUCE, 3, 10, body), "records length beyond the frame")


JOIN_GROUP, OFFSET_COMMIT = 11, 8
INVALID_SESSION_TIMEOUT = 26


def join_group_v2(group: str, session_timeout_ms: int, protocols: bytes) -> bytes:
    return (kw.string(group) + kw.i32(session_timeout_ms) + kw.i32(10_000) + kw.string("")
            + kw.string("consumer") + protocols)


def test_join_group_huge_protocol_count_is_closed(shoal):
    body = join_group_v2("g", 10_000, kw.i32(0x7FFFFFFF) + kw.string("range"))
    assert_closed(shoal, kw.request(JOIN_GROUP, 2, 11, body), "huge protocols count")


def test_offset_commit_huge_topic_count_is_closed(shoal):
    # v2: group, generation, member, retention_time_ms, topics[...]
    body = kw.string("g") + kw.i32(-1) + kw.string("") + kw.i64(-1) + kw.i32(0x7FFFFFFF) + kw.string("t")
    assert_closed(shoal, kw.request(OFFSET_COMMIT, 2, 12, body), "huge topics count")


def test_join_group_out_of_range_session_timeout_is_a_kafka_error(shoal):
    protocols = kw.i32(1) + kw.string("range") + kw.kbytes(b"")
    with kw.Conn("127.0.0.1", shoal.kafka_port) as c:
        r = c.roundtrip(JOIN_GROUP, 2, 13, join_group_v2("g", 0x7FFFFFFF, protocols))
        r.i32()  # throttle_time_ms
        assert r.i16() == INVALID_SESSION_TIMEOUT
    assert_alive(shoal)


def test_many_connections_then_still_serves(shoal):
    """A burst of half-open and garbage connections does not wedge the node."""
    conns = []
    try:
        for i in range(50):
            c = kw.Conn("127.0.0.1", shoal.kafka_port)
            c.send(kw.i32(100) + b"\x00" * (i % 7))  # incomplete frames left hanging
            conns.append(c)
        assert_alive(shoal)
    finally:
        for c in conns:
            c.close()
    assert_alive(shoal)


# ---------------------------------------------------------------- records checked one by one (issue #15)
HOUR_MS = 3_600_000


def _records(*specs) -> bytes:
    """(offset_delta, timestamp_delta, key) per record; values are b"v"."""
    return b"".join(kw.encode_record(od, td, k, b"v") for od, td, k in specs)


def _overrun() -> bytes:
    first = bytearray(_records((0, 0, b"a")))
    first[0] += 6  # zigzag: the length claims 3 bytes more, running into the next record
    return bytes(first) + _records((1, 0, b"b"))


TWO = _records((0, 0, b"a"), (1, 0, b"b"))
JUNK = b"\xde\xad\xbe\xef not a record, only bytes " * 3

# id: (compacted topic, batch, error code, indexes in record_errors or None)
BAD_BATCHES = {
    "count-2^31-1-holding-one": (False, lambda: kw.batch_v2_raw(_records((0, 0, b"a")), 2**31 - 1),
                                 kw.INVALID_RECORD, None),
    "count-lies-low": (False, lambda: kw.batch_v2_raw(TWO, 1), kw.INVALID_RECORD, None),
    "record-length-overruns": (False, lambda: kw.batch_v2_raw(_overrun(), 2), kw.INVALID_RECORD, None),
    "junk-inside-valid-gzip": (False, lambda: kw.batch_v2_raw(gzip.compress(JUNK), 1, attributes=1),
                               kw.INVALID_RECORD, None),
    "plain-marked-gzip": (False, lambda: kw.batch_v2_raw(TWO, 2, attributes=1), kw.INVALID_RECORD, None),
    "plain-marked-snappy": (False, lambda: kw.batch_v2_raw(TWO, 2, attributes=2), kw.INVALID_RECORD, None),
    "junk-marked-lz4": (False, lambda: kw.batch_v2_raw(JUNK, 2, attributes=3), kw.INVALID_RECORD, None),
    "junk-marked-zstd": (False, lambda: kw.batch_v2_raw(JUNK, 2, attributes=4), kw.INVALID_RECORD, None),
    "codec-6": (False, lambda: kw.batch_v2_raw(TWO, 2, attributes=6), kw.UNSUPPORTED_COMPRESSION_TYPE, None),
    "codec-7": (False, lambda: kw.batch_v2_raw(TWO, 2, attributes=7), kw.UNSUPPORTED_COMPRESSION_TYPE, None),
    "offset-deltas-out-of-order": (False, lambda: kw.batch_v2_raw(_records((0, 0, b"a"), (2, 0, b"b")), 2),
                                   kw.INVALID_RECORD, [1]),
    "record-timestamp-2h-ahead": (False, lambda: kw.batch_v2_raw(_records((0, 0, b"a"), (1, 2 * HOUR_MS, b"b")), 2),
                                  kw.INVALID_TIMESTAMP, [1]),
    "control-batch": (False, lambda: kw.batch_v2_raw(TWO, 2, attributes=0x20), kw.INVALID_RECORD, None),
    "no-key-on-compacted-topic": (True, lambda: kw.batch_v2_raw(_records((0, 0, b"a"), (1, 0, None)), 2),
                                  kw.INVALID_RECORD, [1]),
}


@pytest.fixture(scope="module")
def compacted_topic(shoal):
    name = unique_topic("raw-compacted")
    ck_create_topic(shoal.bootstrap, name, partitions=1, config={"cleanup.policy": "compact"})
    return name


@pytest.mark.parametrize("case", list(BAD_BATCHES), ids=list(BAD_BATCHES))
def test_produce_batch_with_bad_records_is_refused_whole(shoal, topic, compacted_topic, case):
    compacted, build, code, indexes = BAD_BATCHES[case]
    name = compacted_topic if compacted else topic
    good = lambda n: kw.record_batch_v2([(b"good-key", f"{case}-{n}".encode())])  # noqa: E731
    with kw.Conn("127.0.0.1", shoal.kafka_port) as c:
        assert kw.produce_v8(c, name, 0, good(1), correlation_id=81).error_code == kw.NONE
        before = _latest_offset(shoal, name)
        res = kw.produce_v8(c, name, 0, build(), correlation_id=82)
        assert res.error_code == code, res
        assert res.error_message, res
        if indexes is not None:
            assert [i for i, _ in res.record_errors] == indexes, res
            assert all(m for _, m in res.record_errors), res
        if case == "no-key-on-compacted-topic":
            assert "Compacted topic cannot accept message without key" in res.record_errors[0][1]
        assert _latest_offset(shoal, name) == before, "a refused batch was stored"
        # The same connection goes on.
        after = kw.produce_v8(c, name, 0, good(2), correlation_id=83)
        assert (after.error_code, after.base_offset) == (kw.NONE, before), after
    # librdkafka reads every record of the partition: nothing unreadable was stored.
    end = before + 1
    recs = ck_consume(shoal.bootstrap, name, [0], end, timeout=30)
    assert len(recs) == end
    assert [r.value for r in recs[-2:]] == [f"{case}-1".encode(), f"{case}-2".encode()]
    assert_alive(shoal)


def test_produce_zstd_before_v7_is_unsupported_compression_type(shoal, topic):
    """As Kafka's ProduceRequest.validateRecords: clients older than Produce v7 know no zstd."""
    before = _latest_offset(shoal, topic)
    with kw.Conn("127.0.0.1", shoal.kafka_port) as c:
        (res,) = kw.produce_v3(c, topic, 0, kw.batch_v2_raw(TWO, 2, attributes=4))
    assert res.error_code == kw.UNSUPPORTED_COMPRESSION_TYPE, res
    assert _latest_offset(shoal, topic) == before
# ---------------------------------------------------------------- bounded resources (issue #15)
# Each test starts its own node (shoal_factory) with the bound it exercises made small, so the
# bound, not the machine, decides the outcome. Every loop is bounded in count and time.

MiB = 1 << 20


def rss_bytes(node) -> int:
    """The node process's resident set size (VmRSS)."""
    with open(f"/proc/{node.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def pool_used_bytes(node) -> float:
    return value(scrape(node.admin_url), "shoal_kafka_request_memory_pool_used_bytes")


def raw_connect(port: int, source: str = "127.0.0.1", sndbuf: int | None = None) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if sndbuf is not None:
        # A fixed send buffer: stalled senders must not make the kernel autotune megabytes each.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def produce_and_consume(node, count: int = 200) -> None:
    """A real client still produces and consumes (bounded by the helpers' timeouts)."""
    topic = unique_topic("bounds")
    ck_create_topic(node.bootstrap, topic, partitions=1)
    res = ck_produce(node.bootstrap, topic, count, timeout=60)
    assert not res.errors, res.errors[:3]
    got = ck_consume(node.bootstrap, topic, [0], count, timeout=60)
    assert len(got) == count


# 100 connections each announce a frame and stall after 16 MiB of its body: without the pool
# the node would buffer 100 x 16 MiB. Two cases: a small 64 MiB pool with 30 MiB frames (two
# fit at once), and the default pool (256 MiB) with 90 MiB frames, the attack. The
# read timeout is long so the stall lasts through the measurement.
DEFAULT_POOL_BYTES = 256 * MiB  # queued.max.request.bytes' default
STALLED_BODY_BYTES = 16 * MiB
STALLED_CONNECTIONS = 100
# Documented allowance above the pool: per-connection read buffers (64 KiB each), the stalled
# buffers' doubling growth, the client's produce/consume and allocator slack.
RSS_BASELINE_ALLOWANCE_BYTES = 64 * MiB


@pytest.mark.timeout(60)
def test_frame_larger_than_queued_max_request_bytes_is_refused(shoal_factory):
    node = shoal_factory({"queued.max.request.bytes": 64 * MiB})
    # Within socket.request.max.bytes, but it could never be granted: refused at once.
    with kw.Conn("127.0.0.1", node.kafka_port) as c:
        c.send(kw.i32(90 * MiB) + b"\x00" * 4096)
        closed, _ = c.wait_closed(timeout=10)
    assert closed, "a 90 MiB frame with a 64 MiB pool was not refused"
    assert value(scrape(node.admin_url), "shoal_kafka_frames_refused_total",
                 reason="larger_than_pool") >= 1
    assert_alive(node)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("pool_bytes,frame_bytes", [
    (64 * MiB, 30 * MiB),
    (None, 90 * MiB),
], ids=["64MiB-pool-30MiB-frames", "default-pool-90MiB-frames"])
def test_stalled_frames_are_bounded_by_queued_max_request_bytes(shoal_factory, pool_bytes,
                                                                frame_bytes):
    overrides = {"socket.request.read.timeout.ms": 600_000}
    if pool_bytes is not None:
        overrides["queued.max.request.bytes"] = pool_bytes
    else:
        pool_bytes = DEFAULT_POOL_BYTES
    node = shoal_factory(overrides)
    produce_and_consume(node)  # warm up the client path before the baseline
    baseline = rss_bytes(node)

    conns = [raw_connect(node.kafka_port, sndbuf=256 * 1024) for _ in range(STALLED_CONNECTIONS)]
    try:
        for s in conns:
            s.sendall(kw.i32(frame_bytes))
            s.setblocking(False)
        sent = [0] * len(conns)
        chunk = b"\x00" * (256 * 1024)
        deadline = time.monotonic() + 60
        idle_since = time.monotonic()
        # Push bodies until every socket is full (paused by the node) or has sent its share.
        while time.monotonic() < deadline and time.monotonic() - idle_since < 2:
            for i, s in enumerate(conns):
                if sent[i] >= STALLED_BODY_BYTES:
                    continue
                try:
                    n = s.send(chunk[: STALLED_BODY_BYTES - sent[i]])
                except BlockingIOError:
                    continue
                if n:
                    sent[i] += n
                    idle_since = time.monotonic()
        granted = frame_bytes * (pool_bytes // frame_bytes)
        wait_until("the pool holds the stalled frames", lambda: pool_used_bytes(node) >= granted,
                   timeout=30)
        samples = scrape(node.admin_url)
        assert value(samples, "shoal_kafka_request_memory_pool_capacity_bytes") == pool_bytes
        assert value(samples, "shoal_kafka_request_memory_pool_used_bytes") <= pool_bytes
        assert value(samples, "shoal_kafka_request_memory_pool_waits_total") >= 1
        # Meanwhile a normal client still produces and consumes.
        produce_and_consume(node)
        assert node.running, node.tail()
        rss = rss_bytes(node)
        print(f"RSS baseline {baseline / MiB:.0f} MiB, with {STALLED_CONNECTIONS} stalled frames "
              f"{rss / MiB:.0f} MiB; body bytes sent {sum(sent) / MiB:.0f} MiB")
        assert rss <= baseline + pool_bytes + RSS_BASELINE_ALLOWANCE_BYTES, (
            f"RSS {rss / MiB:.0f} MiB > baseline {baseline / MiB:.0f} MiB + pool + allowance")
    finally:
        for s in conns:
            s.close()
    wait_until("the pool is empty again", lambda: pool_used_bytes(node) == 0, timeout=30)
    assert_alive(node)


@pytest.mark.timeout(120)
def test_trickled_frame_is_closed_after_the_read_timeout(shoal_factory):
    node = shoal_factory({"socket.request.read.timeout.ms": 2000})
    s = raw_connect(node.kafka_port)
    started = time.monotonic()
    closed = False
    try:
        s.sendall(kw.i32(100 * 1024))
        s.settimeout(0.1)
        for _ in range(300):  # one byte per ~100 ms, at most ~30 s
            try:
                s.sendall(b"\x00")
                if s.recv(64) == b"":
                    closed = True
                    break
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
    finally:
        s.close()
    elapsed = time.monotonic() - started
    assert closed, "a frame trickled at 10 bytes/s was never timed out"
    assert elapsed >= 1.5, f"closed after {elapsed:.1f}s, before the 2 s read timeout"
    assert value(scrape(node.admin_url), "shoal_kafka_frames_refused_total", reason="read_timeout") >= 1
    assert_alive(node)


PEER_CONNECTIONS = 10_000


@pytest.mark.timeout(300)
def test_one_peer_with_10000_connections_does_not_lock_others_out(shoal_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = PEER_CONNECTIONS + 2_000
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {want}")
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    # The node inherits the raised limit: max.connections (10,000) and not the fd limit is
    # what would lock clients out without max.connections.per.ip.
    node = shoal_factory()
    conns = []
    refused = 0
    try:
        deadline = time.monotonic() + 120
        for _ in range(PEER_CONNECTIONS):
            assert time.monotonic() < deadline, f"only {len(conns)} connections in 120 s"
            try:
                conns.append(raw_connect(node.kafka_port, source="127.0.0.2"))
            except OSError:
                refused += 1  # the accept queue may refuse while the node closes the extra ones
        rejected = PEER_CONNECTIONS - 1000 - refused

        def all_rejected():
            samples = scrape(node.admin_url)
            n = value(samples, "shoal_listener_connections_rejected_total",
                      listener="kafka:PLAINTEXT", reason="max_connections_per_ip")
            return samples if n >= rejected else None

        samples = wait_until("the extra connections are rejected", all_rejected, timeout=60)
        assert value(samples, "shoal_listener_connections", listener="kafka:PLAINTEXT") <= 1000 + 5
        # A client from another address still gets in and works.
        assert_alive(node)
        produce_and_consume(node)
    finally:
        for s in conns:
            s.close()


@pytest.mark.timeout(120)
def test_admin_listener_closes_connections_beyond_its_bound(shoal_factory):
    admin_max_connections = 256  # shoal_net::ADMIN_MAX_CONNECTIONS
    node = shoal_factory()
    conns = []
    try:
        for _ in range(admin_max_connections):
            conns.append(raw_connect(node.admin_port))
        # The next one is closed at once, without an answer.
        extra = raw_connect(node.admin_port)
        extra.settimeout(10)
        try:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            got = extra.recv(64)
        except (BrokenPipeError, ConnectionResetError):
            got = b""
        finally:
            extra.close()
        assert got == b"", f"a connection beyond the admin bound was served: {got!r}"
    finally:
        for s in conns[:16]:
            s.close()
        del conns[:16]
    try:
        samples = wait_until("/metrics answers again", lambda: scrape_or_none(node.admin_url))
        assert value(samples, "shoal_listener_connections_rejected_total", listener="admin",
                     reason="max_connections") >= 1
        assert value(samples, "shoal_listener_max_connections", listener="admin") == admin_max_connections
        assert value(samples, "shoal_listener_max_connections", listener="controller") > 0
        assert value(samples, "shoal_listener_max_connections", listener="replication") > 0
    finally:
        for s in conns:
            s.close()


def scrape_or_none(admin_url: str):
    try:
        return scrape(admin_url)
    except OSError:
        return None


# ------------------------------------------------ fetch response memory (issue #15)
# Consumers that send pipelined Fetches and never read the responses: without a bound every
# response waits in memory (30 connections x 6 fetches x 8 MiB = 1.4 GiB); with
# fetch.response.pool.bytes the records read for them stay within the pool.
STALLED_CONSUMERS = 30
FETCHES_PER_CONSUMER = 6
FETCH_POOL_BYTES = 32 * MiB
TOPIC_DATA_BYTES = 8 * MiB


def fetch_pool_used_bytes(node) -> float:
    return value(scrape(node.admin_url), "shoal_kafka_fetch_response_pool_used_bytes")


def stalled_consumer(port: int, topic: str, fetches: int) -> socket.socket:
    """A connection that asks for the whole topic `fetches` times and reads nothing back."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive buffer: the kernel must not absorb the responses on the client's behalf.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    body = kw.fetch_v4_body(topic, 0, 0, max_bytes=TOPIC_DATA_BYTES)
    s.sendall(b"".join(kw.request(kw.FETCH, 4, 100 + i, body) for i in range(fetches)))
    return s


def topic_with_data(node, prefix: str) -> str:
    topic = unique_topic(prefix)
    ck_create_topic(node.bootstrap, topic, partitions=1)
    count = TOPIC_DATA_BYTES // 1024
    res = ck_produce(node.bootstrap, topic, count, value_size=1000, partition=0, timeout=120)
    assert not res.errors and len(res.acked) == count, res.errors[:3]
    return topic


@pytest.mark.timeout(300)
def test_stalled_consumers_are_bounded_by_fetch_response_pool_bytes(shoal_factory):
    node = shoal_factory({"fetch.response.pool.bytes": FETCH_POOL_BYTES,
                          "socket.response.write.timeout.ms": 600_000})
    topic = topic_with_data(node, "fetchpool")
    produce_and_consume(node)  # warm up the client path before the baseline
    baseline = rss_bytes(node)
    conns = [stalled_consumer(node.kafka_port, topic, FETCHES_PER_CONSUMER)
             for _ in range(STALLED_CONSUMERS)]
    try:
        # The pool fills with responses nobody reads, and stays within its capacity (plus at
        # most one batch per fetch beyond a reservation, KIP-74; batches here are < 1 MiB).
        wait_until("the stalled responses fill the pool",
                   lambda: fetch_pool_used_bytes(node) >= FETCH_POOL_BYTES - 2 * MiB, timeout=60)
        time.sleep(2)  # let anything unbounded pile up before measuring
        samples = scrape(node.admin_url)
        assert value(samples, "shoal_kafka_fetch_response_pool_capacity_bytes") == FETCH_POOL_BYTES
        assert value(samples, "shoal_kafka_fetch_response_pool_used_bytes") <= FETCH_POOL_BYTES
        assert value(samples, "shoal_kafka_fetch_response_pool_waits_total") >= 1
        rss = rss_bytes(node)
        print(f"RSS baseline {baseline / MiB:.0f} MiB, with {STALLED_CONSUMERS} x "
              f"{FETCHES_PER_CONSUMER} unread 8 MiB fetches {rss / MiB:.0f} MiB")
        assert rss <= baseline + FETCH_POOL_BYTES + RSS_BASELINE_ALLOWANCE_BYTES, (
            f"RSS {rss / MiB:.0f} MiB > baseline {baseline / MiB:.0f} MiB + pool + allowance")
        assert node.running, node.tail()
    finally:
        for s in conns:
            s.close()
    # Closing the connections gives the memory back, and consumers are served again.
    wait_until("the fetch pool is empty again", lambda: fetch_pool_used_bytes(node) == 0, timeout=60)
    got = ck_consume(node.bootstrap, topic, [0], TOPIC_DATA_BYTES // 1024, timeout=120)
    assert len(got) == TOPIC_DATA_BYTES // 1024
    assert_alive(node)


@pytest.mark.timeout(180)
def test_a_client_that_stops_reading_is_closed_after_the_write_timeout(shoal_factory):
    node = shoal_factory({"fetch.response.pool.bytes": FETCH_POOL_BYTES,
                          "socket.response.write.timeout.ms": 2000})
    topic = topic_with_data(node, "wtimeout")
    conns = [stalled_consumer(node.kafka_port, topic, FETCHES_PER_CONSUMER) for _ in range(8)]
    try:
        # Every stalled connection is closed (its unread responses' memory given back), and a
        # consumer that does read gets the whole topic.
        wait_until("the stalled connections are closed",
                   lambda: value(scrape(node.admin_url), "shoal_kafka_frames_refused_total",
                                 reason="write_timeout") >= 8, timeout=60)
        wait_until("the fetch pool is empty again", lambda: fetch_pool_used_bytes(node) == 0,
                   timeout=30)
        got = ck_consume(node.bootstrap, topic, [0], TOPIC_DATA_BYTES // 1024, timeout=120)
        assert len(got) == TOPIC_DATA_BYTES // 1024
    finally:
        for s in conns:
            s.close()
    assert_alive(node)
