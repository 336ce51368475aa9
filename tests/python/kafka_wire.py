"""Small Kafka wire encoders/decoders for raw-socket tests.

Only what the bad-input and exact-error-code tests need: request header v1,
ApiVersions v0, Metadata v4, Produce v3 (non-flexible), a v2 record batch
builder (CRC-32C) and a legacy magic-1 message. All integers are big-endian.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

try:  # C implementation from PyPI (tests/requirements.txt)
    from crc32c import crc32c as _crc32c_impl
except ImportError:  # pragma: no cover - fallback: table-driven Castagnoli
    _CRC_TABLE = []
    for _i in range(256):
        _c = _i
        for _ in range(8):
            _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
        _CRC_TABLE.append(_c)

    def _crc32c_impl(data: bytes) -> int:
        crc = 0xFFFFFFFF
        for b in data:
            crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF


def crc32c(data: bytes) -> int:
    return _crc32c_impl(data) & 0xFFFFFFFF


# API keys and error codes used by the tests.
PRODUCE = 0
METADATA = 3
API_VERSIONS = 18

NONE = 0
CORRUPT_MESSAGE = 2
INVALID_TIMESTAMP = 32
UNSUPPORTED_COMPRESSION_TYPE = 76
UNKNOWN_TOPIC_OR_PARTITION = 3
UNSUPPORTED_VERSION = 35
INVALID_RECORD = 87


# ---------------------------------------------------------------- primitives
def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def string(s: str | None) -> bytes:
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def kbytes(b: bytes | None) -> bytes:
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def uvarint(v: int) -> bytes:
    """Unsigned varint (flexible versions' lengths and tags; zigzag-encoded inside records)."""
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag_varint(v: int) -> bytes:
    """Signed (zigzag) varint, as used inside v2 records."""
    return uvarint(((v << 1) ^ (v >> 63)) & ((1 << 64) - 1))


class Reader:
    """Cursor over a response body."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError(f"short read at {self.pos}: need {size}, have {len(self.data) - self.pos}")
        (v,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return v

    def i8(self) -> int:
        return self._take(">b")

    def i16(self) -> int:
        return self._take(">h")

    def i32(self) -> int:
        return self._take(">i")

    def i64(self) -> int:
        return self._take(">q")

    def string(self) -> str | None:
        n = self.i16()
        if n < 0:
            return None
        if self.pos + n > len(self.data):
            raise ValueError("short string")
        s = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return s

    def array_len(self) -> int:
        n = self.i32()
        if n > len(self.data):  # sanity: never trust a huge count
            raise ValueError(f"array count {n} larger than the response")
        return n

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def uvarint(self) -> int:
        """Unsigned varint (flexible versions' lengths and tags), at most 5 bytes."""
        value = 0
        for shift in range(0, 35, 7):
            b = self._take(">B")
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
        raise ValueError("uvarint longer than 5 bytes")

    def compact_len(self) -> int:
        """A compact array's or string's length (-1: null), checked against the response."""
        n = self.uvarint() - 1
        if n > self.remaining():
            raise ValueError(f"compact length {n} larger than the response")
        return n

    def compact_string(self) -> str | None:
        n = self.compact_len()
        if n < 0:
            return None
        s = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return s

    def tagged_fields(self) -> dict[int, bytes]:
        fields = {}
        for _ in range(self.uvarint()):
            tag, size = self.uvarint(), self.uvarint()
            if size > self.remaining():
                raise ValueError(f"tagged field of {size} bytes larger than the response")
            fields[tag] = self.data[self.pos : self.pos + size]
            self.pos += size
        return fields


# ---------------------------------------------------------------- framing
def request_header_v1(api_key: int, api_version: int, correlation_id: int, client_id: str | None = "shoal-tests") -> bytes:
    return i16(api_key) + i16(api_version) + i32(correlation_id) + string(client_id)


def request_header_v2(api_key: int, api_version: int, correlation_id: int, client_id: str | None = "shoal-tests") -> bytes:
    """Header v2 (flexible request versions): v1 plus an empty tagged-field section.
    client_id stays a non-compact i16 string."""
    return request_header_v1(api_key, api_version, correlation_id, client_id) + b"\x00"


def frame(payload: bytes) -> bytes:
    return i32(len(payload)) + payload


def request(api_key: int, api_version: int, correlation_id: int, body: bytes, client_id: str | None = "shoal-tests") -> bytes:
    return frame(request_header_v1(api_key, api_version, correlation_id, client_id) + body)


class Conn:
    """A blocking socket with bounded reads."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "Conn":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self, max_size: int = 64 * 1024 * 1024) -> bytes:
        (size,) = struct.unpack(">i", self._recv_exact(4))
        if size < 0 or size > max_size:
            raise ValueError(f"bad response frame size {size}")
        return self._recv_exact(size)

    def roundtrip(self, api_key: int, api_version: int, correlation_id: int, body: bytes,
                  header_v2: bool = False) -> Reader:
        """Send one request, read one response (header v0), check the correlation id."""
        if header_v2:
            self.send(frame(request_header_v2(api_key, api_version, correlation_id) + body))
        else:
            self.send(request(api_key, api_version, correlation_id, body))
        r = Reader(self.recv_frame())
        got = r.i32()
        if got != correlation_id:
            raise AssertionError(f"correlation id {got} != {correlation_id}")
        return r

    def wait_closed(self, timeout: float = 10.0) -> tuple[bool, bytes]:
        """Wait (bounded) for the peer to close. Returns (closed, bytes received meanwhile)."""
        deadline = time.monotonic() + timeout
        got = bytearray()
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
                return True, bytes(got)
            if not chunk:
                return True, bytes(got)
            got += chunk
            if len(got) > 1 << 20:
                break
        return False, bytes(got)


# ---------------------------------------------------------------- ApiVersions
@dataclass
class ApiVersionsV0:
    error_code: int
    apis: dict[int, tuple[int, int]] = field(default_factory=dict)


def parse_api_versions_v0(r: Reader) -> ApiVersionsV0:
    """Body of an ApiVersions v0 response (also the format of the UNSUPPORTED_VERSION reply)."""
    err = r.i16()
    n = r.array_len()
    apis = {}
    for _ in range(n):
        key, lo, hi = r.i16(), r.i16(), r.i16()
        apis[key] = (lo, hi)
    return ApiVersionsV0(err, apis)


def api_versions(conn: Conn, correlation_id: int = 1) -> ApiVersionsV0:
    return parse_api_versions_v0(conn.roundtrip(API_VERSIONS, 0, correlation_id, b""))


@dataclass
class ApiVersionsFlexible:
    error_code: int
    apis: dict[int, tuple[int, int]]
    supported_features: dict[str, tuple[int, int]]
    finalized_features: dict[str, int]
    finalized_features_epoch: int


def api_versions_flexible(conn: Conn, version: int = 3, correlation_id: int = 1) -> ApiVersionsFlexible:
    """ApiVersions v3/v4 (request header v2, response header v0) with its feature tags:
    SupportedFeatures (0), FinalizedFeaturesEpoch (1), FinalizedFeatures (2)."""
    body = b"\x0cshoal-tests" + b"\x060.1.0" + b"\x00"  # compact names (len + 1), no tags
    r = conn.roundtrip(API_VERSIONS, version, correlation_id, body, header_v2=True)
    err = r.i16()
    apis = {}
    for _ in range(r.compact_len()):
        key, lo, hi = r.i16(), r.i16(), r.i16()
        r.tagged_fields()
        apis[key] = (lo, hi)
    r.i32()  # throttle
    tags = r.tagged_fields()
    supported, finalized, epoch = {}, {}, -1
    if 0 in tags:
        t = Reader(tags[0])
        for _ in range(t.compact_len()):
            name, lo, hi = t.compact_string(), t.i16(), t.i16()
            t.tagged_fields()
            supported[name] = (lo, hi)
    if 1 in tags:
        epoch = Reader(tags[1]).i64()
    if 2 in tags:
        t = Reader(tags[2])
        for _ in range(t.compact_len()):
            name, max_level, min_level = t.compact_string(), t.i16(), t.i16()
            t.tagged_fields()
            assert min_level == max_level, (name, min_level, max_level)
            finalized[name] = max_level
    return ApiVersionsFlexible(err, apis, supported, finalized, epoch)


# ---------------------------------------------------------------- Metadata v4
@dataclass
class TopicMeta:
    error_code: int
    name: str
    partitions: dict[int, int]  # partition index -> error code


def metadata_v4_body(topics: list[str] | None, allow_auto_create: bool) -> bytes:
    if topics is None:
        arr = i32(-1)
    else:
        arr = i32(len(topics)) + b"".join(string(t) for t in topics)
    return arr + i8(1 if allow_auto_create else 0)


def parse_metadata_v4(r: Reader) -> dict[str, TopicMeta]:
    r.i32()  # throttle
    for _ in range(r.array_len()):  # brokers
        r.i32(), r.string(), r.i32(), r.string()
    r.string()  # cluster id
    r.i32()  # controller id
    topics = {}
    for _ in range(r.array_len()):
        err = r.i16()
        name = r.string()
        r.i8()  # is_internal
        parts = {}
        for _ in range(r.array_len()):
            perr, idx = r.i16(), r.i32()
            r.i32()  # leader
            for _ in range(r.array_len()):
                r.i32()
            for _ in range(r.array_len()):
                r.i32()
            parts[idx] = perr
        topics[name] = TopicMeta(err, name, parts)
    return topics


def metadata_v4(conn: Conn, topics: list[str] | None, allow_auto_create: bool, correlation_id: int = 2) -> dict[str, TopicMeta]:
    return parse_metadata_v4(conn.roundtrip(METADATA, 4, correlation_id, metadata_v4_body(topics, allow_auto_create)))


@dataclass
class ClusterMeta:
    brokers: dict[int, tuple[str, int]]            # node id -> (host, port)
    controller_id: int
    # topic -> partition -> (error, leader, replicas, isr)
    topics: dict[str, dict[int, tuple[int, int, list[int], list[int]]]]


def parse_metadata_v4_full(r: Reader) -> ClusterMeta:
    r.i32()  # throttle
    brokers = {}
    for _ in range(r.array_len()):
        node, host, port = r.i32(), r.string(), r.i32()
        r.string()  # rack
        brokers[node] = (host, port)
    r.string()  # cluster id
    controller = r.i32()
    topics = {}
    for _ in range(r.array_len()):
        r.i16()
        name = r.string()
        r.i8()
        parts = {}
        for _ in range(r.array_len()):
            perr, idx, leader = r.i16(), r.i32(), r.i32()
            replicas = [r.i32() for _ in range(r.array_len())]
            isr = [r.i32() for _ in range(r.array_len())]
            parts[idx] = (perr, leader, replicas, isr)
        topics[name] = parts
    return ClusterMeta(brokers, controller, topics)


def metadata_v4_full(conn: Conn, topics: list[str] | None, correlation_id: int = 2) -> ClusterMeta:
    """Metadata as this one broker answers it (no client routing in between)."""
    return parse_metadata_v4_full(conn.roundtrip(METADATA, 4, correlation_id, metadata_v4_body(topics, False)))


# ---------------------------------------------------------------- record batches
def encode_record(offset_delta: int, timestamp_delta: int, key: bytes | None, value: bytes | None,
                  headers: list[tuple[str, bytes | None]] = ()) -> bytes:
    body = bytearray()
    body += i8(0)  # attributes
    body += zigzag_varint(timestamp_delta)
    body += zigzag_varint(offset_delta)
    if key is None:
        body += zigzag_varint(-1)
    else:
        body += zigzag_varint(len(key)) + key
    if value is None:
        body += zigzag_varint(-1)
    else:
        body += zigzag_varint(len(value)) + value
    body += zigzag_varint(len(headers))
    for hk, hv in headers:
        hkb = hk.encode()
        body += zigzag_varint(len(hkb)) + hkb
        if hv is None:
            body += zigzag_varint(-1)
        else:
            body += zigzag_varint(len(hv)) + hv
    return zigzag_varint(len(body)) + bytes(body)


def record_batch_v2(records: list[tuple[bytes | None, bytes | None]], base_timestamp: int | None = None,
                    magic: int = 2, corrupt_crc: bool = False) -> bytes:
    """An uncompressed, non-idempotent v2 batch. `corrupt_crc` flips the stored CRC."""
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    recs = b"".join(encode_record(i, 0, k, v) for i, (k, v) in enumerate(records))
    after_crc = (
        i16(0)  # attributes: no compression, CreateTime
        + i32(len(records) - 1)  # lastOffsetDelta
        + i64(base_timestamp)
        + i64(base_timestamp)  # maxTimestamp
        + i64(-1)  # producerId
        + i16(-1)  # producerEpoch
        + i32(-1)  # baseSequence
        + i32(len(records))
        + recs
    )
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    after_length = i32(0) + i8(magic) + struct.pack(">I", crc) + after_crc  # partitionLeaderEpoch, magic, crc
    return i64(0) + i32(len(after_length)) + after_length


def batch_v2_raw(records: bytes, count: int, *, attributes: int = 0, last_offset_delta: int | None = None,
                 base_timestamp: int | None = None, max_timestamp: int | None = None) -> bytes:
    """A v2 batch around `records` (a records section taken as given: already compressed, or
    junk) claiming `count` records, with a correct CRC: for batches whose header is sound but
    whose records are not."""
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    if max_timestamp is None:
        max_timestamp = base_timestamp
    if last_offset_delta is None:
        last_offset_delta = count - 1
    after_crc = (
        i16(attributes) + i32(last_offset_delta) + i64(base_timestamp) + i64(max_timestamp)
        + i64(-1) + i16(-1) + i32(-1)  # producerId, producerEpoch, baseSequence
        + i32(count) + records
    )
    after_length = i32(0) + i8(2) + struct.pack(">I", crc32c(after_crc)) + after_crc
    return i64(0) + i32(len(after_length)) + after_length


def legacy_message_v1(key: bytes | None, value: bytes | None, timestamp: int | None = None) -> bytes:
    """One magic-1 message (old MessageSet format), as offset + size + message."""
    import zlib

    if timestamp is None:
        timestamp = int(time.time() * 1000)
    body = i8(1) + i8(0) + i64(timestamp) + kbytes(key) + kbytes(value)
    msg = struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF) + body
    return i64(0) + i32(len(msg)) + msg


# ---------------------------------------------------------------- Produce v3
def produce_v3_body(topic: str, partition: int, records: bytes, acks: int = -1, timeout_ms: int = 10000,
                    transactional_id: str | None = None) -> bytes:
    return (
        string(transactional_id)
        + i16(acks)
        + i32(timeout_ms)
        + i32(1)  # topics
        + string(topic)
        + i32(1)  # partitions
        + i32(partition)
        + kbytes(records)
    )


@dataclass
class ProducePartitionResult:
    topic: str
    partition: int
    error_code: int
    base_offset: int


def parse_produce_v3(r: Reader) -> list[ProducePartitionResult]:
    out = []
    for _ in range(r.array_len()):
        topic = r.string()
        for _ in range(r.array_len()):
            idx, err, base = r.i32(), r.i16(), r.i64()
            r.i64()  # log_append_time
            out.append(ProducePartitionResult(topic, idx, err, base))
    r.i32()  # throttle
    return out


def produce_v3(conn: Conn, topic: str, partition: int, records: bytes, correlation_id: int = 3) -> list[ProducePartitionResult]:
    return parse_produce_v3(conn.roundtrip(PRODUCE, 3, correlation_id, produce_v3_body(topic, partition, records)))


@dataclass
class ProduceV8Result:
    error_code: int
    base_offset: int
    record_errors: list[tuple[int, str | None]]  # (batch_index, batch_index_error_message)
    error_message: str | None


def produce_v8(conn: Conn, topic: str, partition: int, records: bytes, correlation_id: int = 8) -> ProduceV8Result:
    """Produce v8 (the first with per-record errors; not flexible): one partition's result."""
    r = conn.roundtrip(PRODUCE, 8, correlation_id, produce_v3_body(topic, partition, records))
    result = None
    for _ in range(r.array_len()):
        r.string()
        for _ in range(r.array_len()):
            r.i32()  # partition
            err, base = r.i16(), r.i64()
            r.i64(), r.i64()  # log_append_time, log_start_offset
            record_errors = [(r.i32(), r.string()) for _ in range(r.array_len())]
            result = ProduceV8Result(err, base, record_errors, r.string())
    r.i32()  # throttle
    if result is None:
        raise AssertionError("produce response without the partition")
    return result


# ---------------------------------------------------------------- Fetch v4 (raw stored batches)
FETCH = 1


def fetch_v4_body(topic: str, partition: int, offset: int, max_bytes: int = 1 << 20) -> bytes:
    return (
        i32(-1)  # replica_id: a consumer
        + i32(0)  # max_wait_ms
        + i32(1)  # min_bytes
        + i32(max_bytes)
        + i8(0)  # isolation_level: read_uncommitted
        + i32(1)  # topics
        + string(topic)
        + i32(1)  # partitions
        + i32(partition)
        + i64(offset)
        + i32(max_bytes)
    )


@dataclass
class FetchPartitionResult:
    error_code: int
    high_watermark: int
    records: bytes


def parse_fetch_v4(r: Reader) -> FetchPartitionResult:
    r.i32()  # throttle
    result = None
    for _ in range(r.array_len()):
        r.string()
        for _ in range(r.array_len()):
            r.i32()  # partition
            err, hw = r.i16(), r.i64()
            r.i64()  # last stable offset
            aborted = r.i32()
            for _ in range(max(aborted, 0)):
                r.i64(), r.i64()
            size = r.i32()
            data = b"" if size < 0 else r.data[r.pos : r.pos + size]
            r.pos += max(size, 0)
            result = FetchPartitionResult(err, hw, bytes(data))
    if result is None:
        raise AssertionError("fetch response without the partition")
    return result


def fetch_v4(conn: Conn, topic: str, partition: int, offset: int, correlation_id: int = 4) -> FetchPartitionResult:
    return parse_fetch_v4(conn.roundtrip(FETCH, 4, correlation_id, fetch_v4_body(topic, partition, offset)))


@dataclass
class StoredBatch:
    base_offset: int
    last_offset: int
    codec: int  # attributes & 7: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
    record_count: int


def stored_batches(records: bytes) -> list[StoredBatch]:
    """Headers of the whole v2 batches in a Fetch response's records (a partial tail is skipped)."""
    out = []
    pos = 0
    while pos + 61 <= len(records):
        base, length = struct.unpack_from(">qi", records, pos)
        if pos + 12 + length > len(records):
            break
        (attributes,) = struct.unpack_from(">h", records, pos + 21)
        (last_delta,) = struct.unpack_from(">i", records, pos + 23)
        (count,) = struct.unpack_from(">i", records, pos + 57)
        out.append(StoredBatch(base, base + last_delta, attributes & 7, count))
        pos += 12 + length
    return out


def all_stored_batches(conn: Conn, topic: str, partition: int) -> list[StoredBatch]:
    """Every batch of a partition up to its high watermark, read with raw Fetch v4."""
    out: list[StoredBatch] = []
    offset = 0
    for correlation_id in range(10, 100_000):
        res = fetch_v4(conn, topic, partition, offset, correlation_id)
        if res.error_code != NONE:
            raise AssertionError(f"fetch {topic}-{partition}@{offset}: error {res.error_code}")
        found = stored_batches(res.records)
        out.extend(found)
        if found:
            offset = found[-1].last_offset + 1
        if offset >= res.high_watermark:
            return out
        if not found:
            raise AssertionError(f"no progress at {topic}-{partition}@{offset}, hw {res.high_watermark}")
    raise AssertionError("too many fetches")


# ---------------------------------------------------------------- transactions (non-flexible v1)
FIND_COORDINATOR = 10
INIT_PRODUCER_ID = 22
ADD_PARTITIONS_TO_TXN = 24
END_TXN = 26
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20


def producer_batch_v2(records: list[tuple[bytes | None, bytes | None]], producer_id: int, producer_epoch: int,
                      base_sequence: int, *, attributes: int = TRANSACTIONAL_BIT) -> bytes:
    """An uncompressed v2 batch of an idempotent producer; transactional by default."""
    ts = int(time.time() * 1000)
    recs = b"".join(encode_record(i, 0, k, v) for i, (k, v) in enumerate(records))
    after_crc = (
        i16(attributes) + i32(len(records) - 1) + i64(ts) + i64(ts)
        + i64(producer_id) + i16(producer_epoch) + i32(base_sequence)
        + i32(len(records)) + recs
    )
    after_length = i32(0) + i8(2) + struct.pack(">I", crc32c(after_crc)) + after_crc
    return i64(0) + i32(len(after_length)) + after_length


def find_transaction_coordinator_v1(conn: Conn, transactional_id: str, correlation_id: int = 20) -> tuple[int, int]:
    """(error code, node id) of FindCoordinator v1 with key type TRANSACTION."""
    r = conn.roundtrip(FIND_COORDINATOR, 1, correlation_id, string(transactional_id) + i8(1))
    r.i32()  # throttle
    err = r.i16()
    r.string()  # error message
    node = r.i32()
    return err, node


def init_producer_id_v1(conn: Conn, transactional_id: str | None, timeout_ms: int = 60000,
                        correlation_id: int = 21) -> tuple[int, int, int]:
    """(error code, producer id, producer epoch)."""
    r = conn.roundtrip(INIT_PRODUCER_ID, 1, correlation_id, string(transactional_id) + i32(timeout_ms))
    r.i32()  # throttle
    return r.i16(), r.i64(), r.i16()


def add_partitions_to_txn_v1(conn: Conn, transactional_id: str, producer_id: int, producer_epoch: int,
                             partitions: list[tuple[str, int]], correlation_id: int = 22) -> dict[tuple[str, int], int]:
    """Error code per (topic, partition)."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    body = string(transactional_id) + i64(producer_id) + i16(producer_epoch) + i32(len(by_topic))
    for topic, parts in by_topic.items():
        body += string(topic) + i32(len(parts)) + b"".join(i32(p) for p in parts)
    r = conn.roundtrip(ADD_PARTITIONS_TO_TXN, 1, correlation_id, body)
    r.i32()  # throttle
    out = {}
    for _ in range(r.array_len()):
        topic = r.string()
        for _ in range(r.array_len()):
            partition = r.i32()
            out[(topic, partition)] = r.i16()
    return out


def end_txn_v1(conn: Conn, transactional_id: str, producer_id: int, producer_epoch: int, committed: bool,
               correlation_id: int = 23) -> int:
    body = string(transactional_id) + i64(producer_id) + i16(producer_epoch) + i8(1 if committed else 0)
    r = conn.roundtrip(END_TXN, 1, correlation_id, body)
    r.i32()  # throttle
    return r.i16()


# ---------------------------------------------------------------- transaction version 2 (flexible)

def compact_string(s: str | None) -> bytes:
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def compact_bytes(b: bytes | None) -> bytes:
    if b is None:
        return uvarint(0)
    return uvarint(len(b) + 1) + b


NO_TAGS = b"\x00"


def produce_v12(conn: Conn, transactional_id: str | None, topic: str, partition: int, records: bytes,
                correlation_id: int = 30) -> tuple[int, int]:
    """Produce v12 (transaction version 2: the leader adds the partition to the producer's
    transaction itself), acks=all, one partition. (error code, base offset)."""
    body = (
        compact_string(transactional_id) + i16(-1) + i32(10_000)
        + uvarint(2) + compact_string(topic)
        + uvarint(2) + i32(partition) + compact_bytes(records) + NO_TAGS
        + NO_TAGS + NO_TAGS
    )
    r = conn.roundtrip(PRODUCE, 12, correlation_id, body, header_v2=True)
    r.tagged_fields()  # response header v1
    results = []
    for _ in range(r.compact_len()):
        r.compact_string()
        for _ in range(r.compact_len()):
            index, err, base_offset = r.i32(), r.i16(), r.i64()
            r.i64()  # log append time
            r.i64()  # log start offset
            for _ in range(r.compact_len()):  # record errors
                r.i32()
                r.compact_string()
                r.tagged_fields()
            r.compact_string()  # error message
            r.tagged_fields()
            results.append((index, err, base_offset))
        r.tagged_fields()
    assert len(results) == 1 and results[0][0] == partition, results
    return results[0][1], results[0][2]


def end_txn_v5(conn: Conn, transactional_id: str, producer_id: int, producer_epoch: int, committed: bool,
               correlation_id: int = 31) -> tuple[int, int, int]:
    """EndTxn v5 (transaction version 2): (error code, producer id, producer epoch), where the
    epoch is the bumped one the producer's next transaction uses."""
    body = compact_string(transactional_id) + i64(producer_id) + i16(producer_epoch) + i8(1 if committed else 0) + NO_TAGS
    r = conn.roundtrip(END_TXN, 5, correlation_id, body, header_v2=True)
    r.tagged_fields()  # response header v1
    r.i32()  # throttle
    err = r.i16()
    pid, epoch = r.i64(), r.i16()
    return err, pid, epoch


# ---------------------------------------------------------------- UpdateFeatures (flexible from v0)
UPDATE_FEATURES = 57
UPGRADE = 1
SAFE_DOWNGRADE = 2


def update_features(conn: Conn, updates: list[tuple[str, int, int]], validate_only: bool = False,
                    version: int = 1, correlation_id: int = 57) -> tuple[int, str | None, list[tuple[str, int]]]:
    """UpdateFeatures v1/v2: `updates` are (feature, level, upgrade type). Returns the top-level
    (error code, message) and the per-feature (name, error code) results (none in v2)."""
    body = i32(30000) + uvarint(len(updates) + 1)
    for name, level, upgrade_type in updates:
        body += compact_string(name) + i16(level) + i8(upgrade_type) + NO_TAGS
    body += i8(1 if validate_only else 0) + NO_TAGS
    r = conn.roundtrip(UPDATE_FEATURES, version, correlation_id, body, header_v2=True)
    r.tagged_fields()  # response header v1
    r.i32()  # throttle
    err, message = r.i16(), r.compact_string()
    results = []
    if version < 2:
        for _ in range(r.compact_len()):
            name, code = r.compact_string(), r.i16()
            r.compact_string()
            r.tagged_fields()
            results.append((name, code))
    return err, message, results


# ---------------------------------------------------------------- configs (non-flexible versions)
DESCRIBE_CONFIGS = 32
INCREMENTAL_ALTER_CONFIGS = 44
RESOURCE_BROKER = 4
RESOURCE_GROUP = 32


def incremental_alter_configs_v0(conn: Conn, resource_type: int, resource_name: str,
                                 ops: list[tuple[str, int, str | None]], correlation_id: int = 44) -> tuple[int, str | None]:
    """One resource's (name, operation, value) changes; returns (error code, message). An empty
    broker name is the cluster default, which some admin clients refuse to send."""
    configs = b"".join(string(n) + i8(op) + string(v) for n, op, v in ops)
    body = i32(1) + i8(resource_type) + string(resource_name) + i32(len(ops)) + configs + i8(0)
    r = conn.roundtrip(INCREMENTAL_ALTER_CONFIGS, 0, correlation_id, body)
    r.i32()  # throttle
    assert r.array_len() == 1
    code, message = r.i16(), r.string()
    r.i8(), r.string()
    return code, message


def describe_configs_v1(conn: Conn, resource_type: int, resource_name: str,
                        correlation_id: int = 32,
                        keys: list[str] | None = None) -> tuple[int, dict[str, tuple[str | None, int]]]:
    """The configs of one resource named by `keys` (None: every one; Kafka reads an empty list
    the same way): (error code, {name: (value, source)})."""
    names = i32(-1) if keys is None else i32(len(keys)) + b"".join(string(k) for k in keys)
    body = i32(1) + i8(resource_type) + string(resource_name) + names + i8(0)
    r = conn.roundtrip(DESCRIBE_CONFIGS, 1, correlation_id, body)
    r.i32()  # throttle
    assert r.array_len() == 1
    code = r.i16()
    r.string(), r.i8(), r.string()
    configs = {}
    for _ in range(r.array_len()):
        name, value = r.string(), r.string()
        r.i8()  # read only
        source = r.i8()
        r.i8()  # sensitive
        for _ in range(r.array_len()):
            r.string(), r.string(), r.i8()
        configs[name] = (value, source)
    return code, configs


# ---------------------------------------------------------------- client quotas (v0, KIP-546)
DESCRIBE_CLIENT_QUOTAS = 48
ALTER_CLIENT_QUOTAS = 49


def alter_client_quotas_v0(conn: Conn, entity: list[tuple[str, str | None]],
                           ops: list[tuple[str, float, bool]], validate_only: bool = False,
                           correlation_id: int = 49) -> tuple[int, str | None]:
    """One entity's (key, value, remove) changes; returns (error code, message)."""
    parts = b"".join(string(t) + string(n) for t, n in entity)
    changes = b"".join(string(k) + struct.pack(">d", v) + i8(int(remove)) for k, v, remove in ops)
    body = i32(1) + i32(len(entity)) + parts + i32(len(ops)) + changes + i8(int(validate_only))
    r = conn.roundtrip(ALTER_CLIENT_QUOTAS, 0, correlation_id, body)
    r.i32()  # throttle
    assert r.array_len() == 1
    code, message = r.i16(), r.string()
    for _ in range(r.array_len()):
        r.string(), r.string()
    return code, message


def describe_client_quotas_v0(conn: Conn, components: list[tuple[str, int, str | None]], strict: bool = False,
                              correlation_id: int = 48):
    """(error code, message, [(entity {type: name}, {key: value})]) for a filter of
    (entity type, match type, match) components."""
    body = i32(len(components)) + b"".join(string(t) + i8(m) + string(s) for t, m, s in components) + i8(int(strict))
    r = conn.roundtrip(DESCRIBE_CLIENT_QUOTAS, 0, correlation_id, body)
    r.i32()  # throttle
    code, message = r.i16(), r.string()
    n = r.array_len()
    entries = []
    for _ in range(max(n, 0)):
        entity = {}
        for _ in range(r.array_len()):
            t = r.string()
            entity[t] = r.string()
        values = {}
        for _ in range(r.array_len()):
            k = r.string()
            values[k] = r._take(">d")
        entries.append((entity, values))
    return code, message, entries


# ---------------------------------------------------------------- ConsumerGroupHeartbeat (KIP-848)
CONSUMER_GROUP_HEARTBEAT = 68


def compact_string(s: str | None) -> bytes:
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


@dataclass
class ConsumerHeartbeat:
    error_code: int
    error_message: str | None
    member_id: str | None
    member_epoch: int
    heartbeat_interval_ms: int
    # topic id (16 bytes) -> partitions; None when the answer carries no assignment
    assignment: dict[bytes, list[int]] | None


def consumer_group_heartbeat(conn: Conn, group: str, member_id: str, member_epoch: int, *,
                             topics: list[str] | None = None, owned: dict[bytes, list[int]] | None = None,
                             rebalance_timeout_ms: int = -1, instance_id: str | None = None,
                             server_assignor: str | None = None, regex: str | None = None,
                             version: int = 1, correlation_id: int = 68) -> ConsumerHeartbeat:
    """ConsumerGroupHeartbeat v0/v1 (flexible), header v2; its answer decoded."""
    body = compact_string(group) + compact_string(member_id) + i32(member_epoch)
    body += compact_string(instance_id) + compact_string(None)  # instance id, rack id
    body += i32(rebalance_timeout_ms)
    if topics is None:
        body += uvarint(0)
    else:
        body += uvarint(len(topics) + 1) + b"".join(compact_string(t) for t in topics)
    if version >= 1:
        body += compact_string(regex)  # SubscribedTopicRegex
    body += compact_string(server_assignor)
    if owned is None:
        body += uvarint(0)
    else:
        body += uvarint(len(owned) + 1)
        for topic_id, parts in owned.items():
            body += topic_id + uvarint(len(parts) + 1) + b"".join(i32(p) for p in parts) + b"\x00"
    body += b"\x00"  # tagged fields
    r = conn.roundtrip(CONSUMER_GROUP_HEARTBEAT, version, correlation_id, body, header_v2=True)
    r.tagged_fields()  # response header v1
    r.i32()  # throttle
    error_code = r.i16()
    error_message = r.compact_string()
    member = r.compact_string()
    epoch = r.i32()
    interval = r.i32()
    assignment = None
    if r.i8() >= 0:
        assignment = {}
        for _ in range(r.compact_len()):
            topic_id = bytes(r.data[r.pos : r.pos + 16])
            r.pos += 16
            assignment[topic_id] = [r.i32() for _ in range(r.compact_len())]
            r.tagged_fields()
        r.tagged_fields()
    r.tagged_fields()
    return ConsumerHeartbeat(error_code, error_message, member, epoch, interval, assignment)
