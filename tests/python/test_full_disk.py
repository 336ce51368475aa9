"""A full data disk costs writes, never the node (issue #15).

The data directory lives on a small tmpfs mounted for the test (root only; skipped otherwise).
Shoal itself fills it: produce gets KAFKA_STORAGE_ERROR once free space is below
`log.dir.min.free.bytes`, reads go on. Then something else fills the rest while the node is
stopped: the node still starts (its space reserve is given back to the metadata store), serves
reads, refuses writes, and takes writes again once space returns. Every acknowledged record
is read back at the end.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

import kafka_wire as kw
from clients import ck_consume, ck_create_topic, unique_topic

KAFKA_STORAGE_ERROR = 56
MIB = 1 << 20
DISK_BYTES = 96 * MIB
MIN_FREE_BYTES = 8 * MIB
RECORD = b"x" * 64000


def _mount_tmpfs(path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(path)],
                       capture_output=True, timeout=30)
    return r.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs as the data disk")
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk):
        pytest.skip("cannot mount a tmpfs here (no CAP_SYS_ADMIN?)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, timeout=30)


def produce_one(conn, topic: str, value: bytes) -> tuple[int, int]:
    [result] = kw.produce_v3(conn, topic, 0, kw.record_batch_v2([(None, value)]))
    return result.error_code, result.base_offset


def value(i: int) -> bytes:
    return f"rec-{i:08d}|".encode() + RECORD


@pytest.mark.timeout(240)
def test_a_full_disk_refuses_writes_keeps_reads_and_still_starts(small_disk, shoal_factory):
    # small_disk first: torn down (unmounted) only after the node is stopped.
    node = shoal_factory({"log.dir.min.free.bytes": MIN_FREE_BYTES, "log.segment.bytes": 4 * MIB},
                         start=False)
    node.data_dir = small_disk / "data"
    node.start()
    topic = unique_topic("full")
    ck_create_topic(node.bootstrap, topic, partitions=1)
    acked: list[int] = []

    # 1. Shoal fills the disk: writes stop at the minimum free, with KAFKA_STORAGE_ERROR.
    conn = kw.Conn("127.0.0.1", node.kafka_port)
    refused = None
    try:
        for i in range(DISK_BYTES // len(RECORD) + 1000):
            code, _ = produce_one(conn, topic, value(i))
            if code == 0:
                acked.append(i)
                continue
            refused = code
            break
    finally:
        conn.close()
    assert refused == KAFKA_STORAGE_ERROR, f"after {len(acked)} records: error {refused}"
    assert len(acked) > 100
    # Reads go on.
    assert len(ck_consume(node.bootstrap, topic, [0], 100)) >= 100

    # 2. Something else fills the rest while the node is down; the node still starts.
    node.stop()
    filler = small_disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * MIB)
                f.flush()
        except OSError:
            pass
    node.start()
    conn = kw.Conn("127.0.0.1", node.kafka_port)
    try:
        assert produce_one(conn, topic, value(10**7))[0] == KAFKA_STORAGE_ERROR

        # 3. Space returns (the filler goes, the volume grows): writes resume without a restart.
        filler.unlink()
        r = subprocess.run(["mount", "-o", f"remount,size={2 * DISK_BYTES}", str(small_disk)],
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 60
        i = len(acked) + 100
        while True:
            code, _ = produce_one(conn, topic, value(i))
            if code == 0:
                acked.append(i)
                break
            assert code == KAFKA_STORAGE_ERROR, code
            assert time.monotonic() < deadline, "writes did not resume after space returned"
            time.sleep(0.5)
    finally:
        conn.close()

    # Every acknowledged record is there, once, in order.
    recs = ck_consume(node.bootstrap, topic, [0], len(acked))
    seen = [int(r.value.split(b"|", 1)[0][4:]) for r in recs]
    assert seen == acked
