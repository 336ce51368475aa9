"""Transactions on a three-node cluster while nodes are SIGKILLed: the transaction coordinator's
node (the leader of the transactional id's `__transaction_state` partition, replicated three
ways) and a partition leader, in the middle of commits.

A transactional producer runs numbered transactions, some aborted on purpose, while the test
kills nodes. Afterwards a read_committed consumer reads everything and the checker asserts:
every record of a committed transaction is there, exactly once (no partial transaction, G1b);
no record of an aborted transaction is (aborted read, G1a); a transaction whose outcome the
client could not learn (its node died mid-commit) is whole or absent; and the last stable
offset reached the end, so nothing hung beyond the transaction timeout.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from confluent_kafka import KafkaException, Producer

import kafka_wire as kw
from clients import ck_consume, unique_topic
from cluster import Cluster, create_topic, metadata_from
from members import wait_until

PARTITIONS = 3
RECORDS_PER_TXN = 6
MAX_TXNS = 400
RUN_SECONDS = 40
TXN_TIMEOUT_MS = 10_000


class TxnRunner:
    """Runs transactions until stopped (bounded by MAX_TXNS) and records each outcome."""

    def __init__(self, bootstrap: str, topic: str, transactional_id: str):
        self.bootstrap = bootstrap
        self.topic = topic
        self.transactional_id = transactional_id
        self.committed: dict[int, list[bytes]] = {}
        self.aborted: dict[int, list[bytes]] = {}
        self.unknown: dict[int, list[bytes]] = {}
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.rng = random.Random(17)

    def producer(self) -> Producer:
        p = Producer({
            "bootstrap.servers": self.bootstrap,
            "transactional.id": self.transactional_id,
            "transaction.timeout.ms": TXN_TIMEOUT_MS,
            "linger.ms": 2,
            "message.timeout.ms": TXN_TIMEOUT_MS,
        })
        deadline = time.monotonic() + 60
        while True:
            try:
                p.init_transactions(30)
                return p
            except KafkaException as e:
                err = e.args[0]
                if not err.retriable() or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def run(self) -> None:
        try:
            p = self.producer()
            for n in range(MAX_TXNS):
                if self.stop.is_set():
                    break
                values = [f"txn{n}-{i}".encode() for i in range(RECORDS_PER_TXN)]
                commit = self.rng.random() >= 0.25
                try:
                    p.begin_transaction()
                    for i, v in enumerate(values):
                        p.produce(self.topic, value=v, partition=i % PARTITIONS)
                    if commit:
                        p.commit_transaction(30)
                        self.committed[n] = values
                    else:
                        p.abort_transaction(30)
                        self.aborted[n] = values
                except KafkaException as e:
                    err = e.args[0]
                    if err.txn_requires_abort():
                        try:
                            p.abort_transaction(30)
                            self.aborted[n] = values
                            continue
                        except KafkaException:
                            pass
                    # Fatal, or the abort failed too: the outcome is unknown (a commit may have
                    # been prepared). A new producer fences this one and settles it.
                    self.unknown[n] = values
                    p = self.producer()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))


def coordinator_of(node, transactional_id: str) -> int:
    with kw.Conn("127.0.0.1", node.kafka_port) as conn:
        deadline = time.monotonic() + 30
        while True:
            err, coordinator = kw.find_transaction_coordinator_v1(conn, transactional_id)
            if err == 0:
                return coordinator
            assert time.monotonic() < deadline, f"FindCoordinator: error {err}"
            time.sleep(0.2)


@pytest.mark.timeout(300)
def test_killing_the_coordinator_and_a_leader_mid_commit_loses_no_transaction(tmp_path):
    c = Cluster(tmp_path, overrides={
        "transaction.state.log.num.partitions": 3,
        "offsets.topic.num.partitions": 3,
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": 1000,
    })
    c.start()
    runner = None
    try:
        topic = unique_topic("txn3")
        create_topic(c.bootstrap, topic, PARTITIONS, 3, config={"min.insync.replicas": "2"})
        first = c.nodes[0]
        wait_until(lambda: all(len(isr) == 3 for _, _, _, isr in metadata_from(first, [topic]).topics[topic].values()),
                   30, "full ISRs")
        transactional_id = unique_topic("tid3")
        runner = TxnRunner(c.bootstrap, topic, transactional_id)
        runner.thread.start()
        wait_until(lambda: len(runner.committed) >= 5 or runner.errors, 60, "the first commits")
        assert not runner.errors, runner.errors

        coordinator = coordinator_of(first, transactional_id)
        c.node(coordinator).kill()
        before = len(runner.committed)
        wait_until(lambda: len(runner.committed) >= before + 5 or runner.errors, 90,
                   "commits through the new coordinator")
        c.node(coordinator).start()

        survivor = next(n for n in c.nodes if n.running and n.node_id != coordinator)
        leaders = {leader for _, leader, _, _ in metadata_from(survivor, [topic]).topics[topic].values()}
        victim = next(iter(sorted(leaders)))
        c.node(victim).kill()
        before = len(runner.committed)
        wait_until(lambda: len(runner.committed) >= before + 5 or runner.errors, 90,
                   "commits after a partition leader died")
        c.node(victim).start()
        time.sleep(min(RUN_SECONDS, 5))
        runner.stop.set()
        runner.thread.join(60)
        assert not runner.thread.is_alive(), "the transactional producer did not stop"
        assert not runner.errors, runner.errors

        # Everything committed must become readable: the LSO cannot stay behind a transaction
        # longer than its timeout (plus the abort check interval).
        expected = sum(len(v) for v in runner.committed.values())
        recs = ck_consume(c.bootstrap, topic, list(range(PARTITIONS)), expected,
                          conf={"isolation.level": "read_committed"},
                          timeout=TXN_TIMEOUT_MS / 1000 + 60, idle=None)
        extra = ck_consume(c.bootstrap, topic, list(range(PARTITIONS)), len(recs) + 10_000,
                           conf={"isolation.level": "read_committed"}, timeout=60, idle=5)
        seen = [r.value for r in extra]
        assert len(seen) == len(set(seen)), "a record was read twice"
        seen_set = set(seen)
        missing = [(n, v) for n, vs in runner.committed.items() for v in vs if v not in seen_set]
        assert not missing, f"records of committed transactions missing: {missing[:5]}"
        aborted_read = [(n, v) for n, vs in runner.aborted.items() for v in vs if v in seen_set]
        assert not aborted_read, f"records of aborted transactions read: {aborted_read[:5]}"
        partial = [n for n, vs in runner.unknown.items()
                   if 0 < sum(v in seen_set for v in vs) < len(vs)]
        assert not partial, f"transactions seen in part: {partial}"
        known = {v for vs in list(runner.committed.values()) + list(runner.unknown.values()) for v in vs}
        strangers = [v for v in seen if v not in known]
        assert not strangers, f"records of no recorded transaction: {strangers[:5]}"
        print(f"committed={len(runner.committed)} aborted={len(runner.aborted)} unknown={len(runner.unknown)} "
              f"read={len(seen)} coordinator={coordinator} victim={victim}")
        assert len(runner.aborted) > 0 and len(runner.committed) >= 15, (
            len(runner.committed), len(runner.aborted), len(runner.unknown))
    finally:
        if runner is not None:
            runner.stop.set()
        c.close()


RETRIABLE_TXN = {14, 15, 16, 51}  # COORDINATOR_LOAD_IN_PROGRESS, _NOT_AVAILABLE, NOT_COORDINATOR, CONCURRENT_TRANSACTIONS


def retrying(call, what: str, timeout: float = 30.0, retriable=frozenset(RETRIABLE_TXN | {6, 19, 20})):
    """`call()` until its error code (first element) is not retriable; bounded by `timeout`.
    Also retried: NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS(_AFTER_APPEND)."""
    deadline = time.monotonic() + timeout
    while True:
        result = call()
        if result[0] not in retriable or time.monotonic() >= deadline:
            return result
        time.sleep(0.1)


@pytest.mark.timeout(240)
def test_a_version_2_producer_is_added_to_its_transaction_by_leaders_on_other_nodes(tmp_path):
    """KIP-890 part 2 across nodes: Produce v12 to a partition whose leader is not the
    transaction coordinator makes that leader add the partition to the transaction over the
    coordinator's replication listener (no AddPartitionsToTxn); EndTxn v5 answers the bumped
    epoch and the markers reach the remote leader. A classic Produce (v3) of the same write is
    refused, so the v12 write was added by the leader, not by accident."""
    c = Cluster(tmp_path, overrides={
        "transaction.state.log.num.partitions": 3,
        "offsets.topic.num.partitions": 3,
    })
    c.start()
    try:
        topic = unique_topic("tv2")
        create_topic(c.bootstrap, topic, PARTITIONS, 3, config={"min.insync.replicas": "2"})
        first = c.nodes[0]
        wait_until(lambda: all(len(isr) == 3 for _, _, _, isr in metadata_from(first, [topic]).topics[topic].values()),
                   30, "full ISRs")
        transactional_id = unique_topic("tid-tv2")
        coordinator = coordinator_of(first, transactional_id)
        leaders = {p: leader for p, (_, leader, _, _) in metadata_from(first, [topic]).topics[topic].items()}
        remote = sorted(p for p, leader in leaders.items() if leader != coordinator)
        assert remote, f"every partition is led by the coordinator {coordinator}: {leaders}"
        partition = remote[0]
        leader = c.node(leaders[partition])

        with kw.Conn("127.0.0.1", c.node(coordinator).kafka_port) as coord, \
                kw.Conn("127.0.0.1", leader.kafka_port) as lead:
            err, pid, epoch = retrying(lambda: kw.init_producer_id_v1(coord, transactional_id, 30_000),
                                       "InitProducerId")
            assert err == 0, f"InitProducerId: {err}"

            committed = [b"v2-commit-%d" % i for i in range(3)]
            batch = kw.producer_batch_v2([(None, v) for v in committed], pid, epoch, 0)
            # Classic: the partition is not in the transaction (no AddPartitionsToTxn).
            classic = kw.parse_produce_v3(lead.roundtrip(
                kw.PRODUCE, 3, 40, kw.produce_v3_body(topic, partition, batch, transactional_id=transactional_id)))
            assert [r.error_code for r in classic] == [48], f"classic produce not refused: {classic}"
            err, _ = retrying(lambda: kw.produce_v12(lead, transactional_id, topic, partition, batch), "Produce v12")
            assert err == 0, f"Produce v12 through the remote leader: {err}"
            err, pid2, epoch2 = retrying(lambda: kw.end_txn_v5(coord, transactional_id, pid, epoch, True), "EndTxn")
            assert (err, pid2, epoch2) == (0, pid, epoch + 1), (err, pid2, epoch2)

            # The next transaction writes with the bumped epoch from sequence 0, and aborts.
            aborted = [b"v2-abort-%d" % i for i in range(2)]
            batch = kw.producer_batch_v2([(None, v) for v in aborted], pid, epoch2, 0)
            err, _ = retrying(lambda: kw.produce_v12(lead, transactional_id, topic, partition, batch), "Produce v12")
            assert err == 0, f"Produce v12 at the bumped epoch: {err}"
            err, _, epoch3 = retrying(lambda: kw.end_txn_v5(coord, transactional_id, pid, epoch2, False), "EndTxn")
            assert (err, epoch3) == (0, epoch2 + 1), (err, epoch3)

            # The epoch before the bump is fenced.
            stale = kw.producer_batch_v2([(None, b"zombie")], pid, epoch, 3)
            err, _ = retrying(lambda: kw.produce_v12(lead, transactional_id, topic, partition, stale), "Produce v12")
            assert err != 0, "a write at a fenced epoch was accepted"

        # Read past what is expected, until idle: an aborted or fenced record would show.
        seen = ck_consume(c.bootstrap, topic, [partition], len(committed) + 10,
                          conf={"isolation.level": "read_committed"}, timeout=60, idle=3)
        assert [r.value for r in seen] == committed
        everything = ck_consume(c.bootstrap, topic, [partition], len(committed) + len(aborted) + 10,
                                conf={"isolation.level": "read_uncommitted"}, timeout=60, idle=3)
        assert [r.value for r in everything] == committed + aborted
    finally:
        c.close()
