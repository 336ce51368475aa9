"""One consumer group member in its own process, so a test can SIGKILL it mid-flight.

    python group_member.py --client ck|ck848|kp --bootstrap B --topic T --group G --name N
        [--session-timeout-ms 3000] [--max-seconds 120] [--instance-id I]

It subscribes, polls, and after every batch it delivered commits synchronously (so the
committed offset is always "everything delivered so far"). It reports on stdout, one JSON
object per line, flushed at once:
    {"event": "assigned", "partitions": [..], "t": <monotonic>}   on every assignment change
    {"event": "records", "recs": [[id, partition, offset], ..]}     after each batch delivered
    {"event": "committed", "offsets": {"<partition>": offset}}      after each commit returns
    {"event": "revoked", "partitions": [..], "t": <monotonic>}      when a rebalance starts
It exits after --max-seconds (bounded like every load loop) or on SIGTERM (closing cleanly,
which leaves the group).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time


def emit(**event) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def value_id(value: bytes) -> str:
    return value.split(b"|", 1)[0].decode()


class Stop:
    requested = False


def run_confluent(args) -> None:
    from confluent_kafka import Consumer, KafkaException

    if args.client == "ck848":
        # KIP-848: the broker assigns and sets the session and heartbeat timing.
        protocol = {"group.protocol": "consumer"}
    else:
        protocol = {
            "session.timeout.ms": args.session_timeout_ms,
            "heartbeat.interval.ms": max(100, args.session_timeout_ms // 6),
            "partition.assignment.strategy": "range",
        }
    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "client.id": args.name,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        **protocol,
        "topic.metadata.refresh.interval.ms": 1000,
        **({"group.instance.id": args.instance_id} if args.instance_id else {}),
        "fetch.wait.max.ms": 100,
        "socket.timeout.ms": 5000,
    })
    # Revocations are reported (the classic "range" protocol revokes everything at each
    # rebalance; KIP-848 only what moves), so a test can tell which partitions paused.
    c.subscribe([args.topic],
                on_revoke=lambda _c, parts: emit(event="revoked", partitions=sorted(p.partition for p in parts),
                                                 t=time.monotonic()))
    last: list[int] | None = None
    deadline = time.monotonic() + args.max_seconds
    try:
        while not Stop.requested and time.monotonic() < deadline:
            msgs = c.consume(num_messages=500, timeout=0.2)
            now = sorted(tp.partition for tp in c.assignment())
            if now != last:
                last = now
                emit(event="assigned", partitions=now, t=time.monotonic())
            recs = []
            for m in msgs:
                if m.error() is not None:
                    if m.error().fatal():
                        raise KafkaException(m.error())
                    continue
                recs.append([value_id(m.value()), m.partition(), m.offset()])
            if recs:
                emit(event="records", recs=recs, t=time.monotonic())
                try:
                    committed = c.commit(asynchronous=False)
                except KafkaException as e:  # e.g. a rebalance took the partitions away
                    emit(event="commit_failed", error=str(e))
                    continue
                emit(event="committed",
                     offsets={str(tp.partition): tp.offset for tp in committed or [] if tp.offset >= 0})
    finally:
        c.close()


def run_kafka_python(args) -> None:
    from kafka import ConsumerRebalanceListener, KafkaConsumer
    from kafka.errors import CommitFailedError, KafkaError

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            emit(event="revoked", partitions=sorted(tp.partition for tp in revoked), t=time.monotonic())

        def on_partitions_assigned(self, assigned):
            pass

    c = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        client_id=args.name,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=max(100, args.session_timeout_ms // 6),
        metadata_max_age_ms=1000,
        **({"group_instance_id": args.instance_id} if args.instance_id else {}),
    )
    # Report leadership: kafka-python runs the assignor only on the group leader.
    from kafka.coordinator.consumer import ConsumerCoordinator

    assign = ConsumerCoordinator._perform_assignment

    def traced(coordinator, *a, **kw):
        emit(event="leader", t=time.monotonic())
        return assign(coordinator, *a, **kw)

    ConsumerCoordinator._perform_assignment = traced
    c.subscribe([args.topic], listener=Listener())
    last: list[int] | None = None
    deadline = time.monotonic() + args.max_seconds
    try:
        while not Stop.requested and time.monotonic() < deadline:
            batch = c.poll(timeout_ms=200, max_records=500)
            now = sorted(tp.partition for tp in c.assignment())
            if now != last:
                last = now
                emit(event="assigned", partitions=now, t=time.monotonic())
            recs = [[value_id(m.value), m.partition, m.offset] for ms in batch.values() for m in ms]
            if recs:
                emit(event="records", recs=recs)
                try:
                    c.commit()
                except (CommitFailedError, KafkaError) as e:
                    emit(event="commit_failed", error=str(e))
                    continue
                emit(event="committed",
                     offsets={str(tp.partition): ms[-1].offset + 1 for tp, ms in batch.items() if ms})
    finally:
        c.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", choices=["ck", "ck848", "kp"], required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--session-timeout-ms", type=int, default=3000)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--instance-id", default=None, help="group.instance.id (static membership)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: setattr(Stop, "requested", True))
    (run_kafka_python if args.client == "kp" else run_confluent)(args)


if __name__ == "__main__":
    main()
