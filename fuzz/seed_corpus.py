"""Seeds the fuzz corpora from real client traffic (`make fuzz-seeds`).

Starts a Shoal node (the release binary), puts a recording TCP proxy in front of it, and runs
librdkafka (confluent-kafka) and kafka-python through the proxy: admin calls, produce with every
codec, consume in a group. Then writes
- every request frame a client sent → corpus/kafka_request/
- every record batch the node stored (as the clients sent them) → corpus/record_batch/
- every segment file → corpus/segment_load/
and copies the metadata format fixtures (what real nodes' encoders wrote: Raft entries of every
record type and version, snapshots, state values, legacy JSON) → corpus/metadata_record/.
Files are named by the SHA-1 of their bytes, so re-running only adds what is new.
"""

from __future__ import annotations

import hashlib
import socket
import struct
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "python"))

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic  # noqa: E402

from conftest import ShoalNode  # noqa: E402

CORPUS = HERE / "corpus"
METADATA_FIXTURES = HERE.parent / "crates" / "shoal-meta" / "tests" / "fixtures"
MAX_SEED_BYTES = 64 << 10


def save(target: str, data: bytes) -> None:
    if not data or len(data) > MAX_SEED_BYTES:
        return
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


class RecordingProxy:
    """Forwards 127.0.0.1:<port> to the node and records each client request frame."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.frames: list[bytes] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _requests(self, src: socket.socket, dst: socket.socket) -> None:
        buf = b""
        try:
            while chunk := src.recv(1 << 16):
                dst.sendall(chunk)
                buf += chunk
                while len(buf) >= 4:
                    (size,) = struct.unpack(">i", buf[:4])
                    if len(buf) < 4 + size:
                        break
                    with self.lock:
                        self.frames.append(buf[4:4 + size])
                    buf = buf[4 + size:]
        except OSError:
            pass
        finally:
            dst.close()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(1 << 16):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            dst.close()


def traffic(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = {f"seed-{codec}": codec for codec in ["none", "gzip", "snappy", "lz4", "zstd"]}
    topics["seed-compact"] = "none"
    futures = admin.create_topics([
        NewTopic(name, 2, 1, config={"cleanup.policy": "compact"} if name == "seed-compact" else {})
        for name in topics])
    for f in futures.values():
        f.result(30)
    admin.create_partitions([NewPartitions("seed-none", 3)])["seed-none"].result(30)
    for name, codec in topics.items():
        p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 5,
                      "enable.idempotence": name != "seed-none", "acks": "all"})
        for i in range(300):
            p.produce(name, key=f"k{i % 7}".encode(), value=f"value {i} ".encode() * (1 + i % 5),
                      headers=[("h", b"v")] if i % 3 == 0 else None)
        p.flush(30)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "seed-group",
                  "auto.offset.reset": "earliest"})
    c.subscribe(list(topics))
    got = 0
    for _ in range(60):
        got += len(c.consume(500, timeout=0.5))
        if got >= 300 * len(topics):
            break
    c.commit(asynchronous=False)
    c.close()
    try:
        from kafka import KafkaConsumer, KafkaProducer
        kp = KafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip")
        for i in range(50):
            kp.send("seed-gzip", f"kafka-python {i}".encode())
        kp.flush(30)
        kp.close()
        kc = KafkaConsumer("seed-gzip", bootstrap_servers=bootstrap, group_id="seed-kp",
                           auto_offset_reset="earliest", consumer_timeout_ms=3000)
        for _ in kc:
            pass
        kc.close()
    except ImportError:
        pass


def batches(segment: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos + 12 <= len(segment):
        (length,) = struct.unpack(">i", segment[pos + 8:pos + 12])
        if length <= 0 or pos + 12 + length > len(segment):
            break
        out.append(segment[pos:pos + 12 + length])
        pos += 12 + length
    return out


def main() -> None:
    work = HERE / "seed-work"
    node = ShoalNode(work)
    node.start()
    try:
        proxy = RecordingProxy(("127.0.0.1", node.kafka_port))
        # Clients learn the node's advertised address from Metadata; point it at the proxy.
        node.stop()
        node.overrides["advertised.listeners"] = f"PLAINTEXT://127.0.0.1:{proxy.port}"
        node.start()
        traffic(f"127.0.0.1:{proxy.port}")
    finally:
        node.stop()
    for frame in proxy.frames:
        save("kafka_request", frame)
    for log in sorted(node.data_dir.glob("seed-*/*.log")):
        data = log.read_bytes()
        save("segment_load", data[:MAX_SEED_BYTES])
        for batch in batches(data):
            save("record_batch", batch)
    for fixture in sorted(METADATA_FIXTURES.glob("*/*")):
        if fixture.is_file() and fixture.suffix in (".bin", ".json"):
            save("metadata_record", fixture.read_bytes())
    for target in ["kafka_request", "record_batch", "segment_load", "metadata_record"]:
        print(target, len(list((CORPUS / target).glob("*"))), "seeds")


if __name__ == "__main__":
    main()
