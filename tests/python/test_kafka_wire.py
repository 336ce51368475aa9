"""Self-tests of the raw-socket encoders (no server): the batches kafka_wire
builds parse and validate with kafka-python's own record code."""

import struct

import pytest
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.legacy_records import LegacyRecordBatch

import kafka_wire as kw

pytestmark = pytest.mark.timeout(30)


def test_crc32c_known_vector():
    assert kw.crc32c(b"123456789") == 0xE3069283
    assert kw.crc32c(b"") == 0


def test_zigzag_varints():
    assert kw.zigzag_varint(0) == b"\x00"
    assert kw.zigzag_varint(-1) == b"\x01"
    assert kw.zigzag_varint(1) == b"\x02"
    assert kw.zigzag_varint(300) == b"\xd8\x04"


def test_request_header_v1():
    assert kw.request_header_v1(18, 3, 7, "c") == struct.pack(">hhih", 18, 3, 7, 1) + b"c"
    assert kw.request_header_v1(18, 0, 1, None)[-2:] == b"\xff\xff"
    assert kw.request(18, 0, 1, b"")[:4] == struct.pack(">i", 10 + len("shoal-tests"))


def test_v2_batch_parses_and_validates():
    batch = kw.record_batch_v2([(b"k1", b"v1"), (None, b"v2"), (b"k3", None)], base_timestamp=1_700_000_000_000)
    b = DefaultRecordBatch(batch)
    assert b.magic == 2 and b.validate_crc()
    recs = list(b)
    assert [(r.offset, r.key, r.value, r.timestamp) for r in recs] == [
        (0, b"k1", b"v1", 1_700_000_000_000), (1, None, b"v2", 1_700_000_000_000),
        (2, b"k3", None, 1_700_000_000_000)]


def test_corrupt_crc_fails_validation():
    b = DefaultRecordBatch(kw.record_batch_v2([(b"k", b"v")], corrupt_crc=True))
    assert not b.validate_crc()


def test_legacy_message_is_magic_1():
    msg = kw.legacy_message_v1(b"k", b"old")
    assert msg[16] == 1  # magic at offset 16, like v2 batches
    b = LegacyRecordBatch(msg, 1)
    assert b.validate_crc()
    (r,) = list(b)
    assert (r.key, r.value) == (b"k", b"old")


def test_produce_v3_body_layout():
    body = kw.produce_v3_body("t", 2, b"REC", acks=-1, timeout_ms=5)
    assert body == (b"\xff\xff" + struct.pack(">hi", -1, 5) + struct.pack(">i", 1) + b"\x00\x01t"
                    + struct.pack(">ii", 1, 2) + struct.pack(">i", 3) + b"REC")


def test_parse_api_versions_v0_and_produce_v3():
    body = struct.pack(">hi", 35, 1) + struct.pack(">hhh", 18, 0, 4)
    av = kw.parse_api_versions_v0(kw.Reader(body))
    assert av.error_code == 35 and av.apis == {18: (0, 4)}
    resp = (struct.pack(">i", 1) + kw.string("t") + struct.pack(">i", 1)
            + struct.pack(">ihqq", 0, 2, -1, -1) + struct.pack(">i", 0))
    (p,) = kw.parse_produce_v3(kw.Reader(resp))
    assert (p.topic, p.partition, p.error_code, p.base_offset) == ("t", 0, 2, -1)


def test_reader_refuses_huge_counts():
    with pytest.raises(ValueError):
        kw.Reader(struct.pack(">i", 1 << 30)).array_len()
