"""Fault-test workload: a rate-bounded idempotent producer in a background thread that records
every acknowledgement with its time, and a consumer that reads partitions back to their end.

Records are numbered (`<prefix>-<n:08d>|...`), sent round-robin to explicit partitions, so the
checker can tell lost, duplicated and reordered records apart per partition, and the ack
times show how long each partition could not take writes after a fault."""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from checker import Acked, Observed
from clients import make_value, value_id


@dataclass
class AckLog:
    acked: list[Acked] = field(default_factory=list)
    # (monotonic time, partition) of every successful delivery, in arrival order.
    ack_times: list[tuple[float, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sent: int = 0
    # librdkafka's idempotence events (`debug=eos`: drains, epoch bumps, sequence errors),
    # the last EVENT_TRAIL_LINES of them: why a retry was renumbered, if the checker finds a
    # duplicate.
    events: collections.deque = field(default_factory=lambda: collections.deque(maxlen=EVENT_TRAIL_LINES))

    def idempotence_trail(self) -> str:
        """The events that change what librdkafka resends: sequence errors and epoch bumps."""
        keys = ("ERRSEQ", "DUPSEQ", "bump", "Bump", "UNKPID", "drain", "DRAIN")
        return "\n".join(line for line in self.events if any(k in line for k in keys))


EVENT_TRAIL_LINES = 2000


class _EventTrail(logging.Handler):
    """Keeps librdkafka's log lines in the workload's log (they come through `poll`)."""

    def __init__(self, events: collections.deque):
        super().__init__(logging.DEBUG)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(f"{record.created:.3f} {record.getMessage()}")


class IdempotentWorkload:
    """acks=all, enable.idempotence=true, `rate` records/s spread over `partitions`."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, *, rate: int = 2000,
                 prefix: str = "w", max_records: int = 1_000_000, conf: dict | None = None):
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        self.rate, self.prefix, self.max_records = rate, prefix, max_records
        self.conf = {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            # Ride through failovers: retry until the leader is back, well within the test.
            "message.timeout.ms": 120_000,
            "request.timeout.ms": 5_000,
            # A paused (SIGSTOP) broker keeps its connections open: give up on a request to it
            # after 5 s instead of librdkafka's 60 s, as a latency-sensitive producer would.
            "socket.timeout.ms": 5_000,
            "retry.backoff.ms": 50,
            "retry.backoff.max.ms": 500,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
            "topic.metadata.refresh.interval.ms": 1000,
            **(conf or {}),
        }
        self.log = AckLog()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.failure: BaseException | None = None

    def start(self) -> "IdempotentWorkload":
        self._thread.start()
        return self

    def acked_count(self) -> int:
        with self._lock:
            return len(self.log.acked)

    def _run(self) -> None:
        try:
            trail = logging.getLogger(f"workload-{id(self)}")
            trail.propagate = False
            trail.setLevel(logging.DEBUG)
            trail.addHandler(_EventTrail(self.log.events))
            producer = Producer({"debug": "eos", **self.conf}, logger=trail)
            started = time.monotonic()
            n = 0
            while not self._stop.is_set() and n < self.max_records:
                due = int((time.monotonic() - started) * self.rate)
                while n < due and n < self.max_records:
                    partition = n % self.partitions
                    rid = f"{self.prefix}-{n:08d}"

                    def on_delivery(err, msg, rid=rid, partition=partition, seq=n):
                        with self._lock:
                            if err is None:
                                self.log.acked.append(Acked(rid, msg.partition(), msg.offset(), None, seq))
                                self.log.ack_times.append((time.monotonic(), msg.partition()))
                            else:
                                self.log.errors.append(f"{rid}: {err}")

                    try:
                        producer.produce(self.topic, value=make_value(self.prefix, n), partition=partition,
                                         on_delivery=on_delivery)
                    except BufferError:
                        producer.poll(0.05)
                        continue
                    n += 1
                    self.log.sent = n
                producer.poll(0.01)
            remaining = producer.flush(150)
            if remaining:
                self.log.errors.append(f"{remaining} records still in flight after the final flush")
        except BaseException as e:  # noqa: BLE001 - reported to the test
            self.failure = e

    def stop(self, timeout: float = 180.0) -> AckLog:
        """Stops sending, waits for the outstanding acks, returns the log."""
        self._stop.set()
        return self.finish(timeout)

    def finish(self, timeout: float = 180.0) -> AckLog:
        """Waits until all `max_records` were sent and acknowledged (or failed)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "producer did not finish"
        if self.failure is not None:
            raise self.failure
        return self.log


def read_all(bootstrap: str, topic: str, partitions: int, *, timeout: float = 120.0,
             conf: dict | None = None) -> list[Observed]:
    """Reads every partition from the beginning to its high watermark (as of the start); `conf`
    adds client settings (security)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-all-{topic}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "fetch.wait.max.ms": 100, **(conf or {})})
    try:
        deadline = time.monotonic() + timeout
        ends = {}
        for p in range(partitions):
            while True:
                try:
                    ends[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
                    break
                except KafkaException:
                    assert time.monotonic() < deadline, f"no watermarks for partition {p}"
                    time.sleep(0.2)
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        out: list[Observed] = []
        position = {p: 0 for p in range(partitions)}
        while any(position[p] < ends[p] for p in ends):
            assert time.monotonic() < deadline, f"read stalled at {position}, ends {ends}"
            for m in c.consume(2000, timeout=0.5):
                if m.error() is not None:
                    continue
                out.append(Observed(value_id(m.value()), m.partition(), m.offset()))
                position[m.partition()] = m.offset() + 1
        return out
    finally:
        c.close()


def unavailability(ack_times: list[tuple[float, int]], fault_at: float, partitions: set[int]) -> float | None:
    """Seconds from `fault_at` until every partition in `partitions` acknowledged a write again
    (None if one never did)."""
    first: dict[int, float] = {}
    for at, p in ack_times:
        if at >= fault_at and p in partitions and p not in first:
            first[p] = at
    if set(first) != partitions:
        return None
    return max(first.values()) - fault_at
