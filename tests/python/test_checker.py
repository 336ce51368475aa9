"""Unit tests of the history checker (no server needed)."""

import pytest

from checker import Acked, Observed, check
from members import group_reads

pytestmark = pytest.mark.timeout(30)


def clean_history():
    acked = [
        Acked("a", 0, 0, key="k1"),
        Acked("b", 1, 0, key="k2"),
        Acked("c", 0, 1, key="k1"),
        Acked("d", 1, 1, key="k2"),
        Acked("e", 0, 2, key="k3"),
    ]
    observed = [Observed(a.id, a.partition, a.offset, a.key) for a in acked]
    return acked, observed


def test_clean_history_is_ok():
    acked, observed = clean_history()
    rep = check(acked, observed)
    assert rep.ok, rep.summary()
    assert (rep.acked, rep.observed) == (5, 5)
    assert not rep.unacked


def test_interleaved_partitions_are_not_reordering():
    acked, observed = clean_history()
    # A consumer may deliver partitions interleaved in any way.
    observed = sorted(observed, key=lambda o: (o.partition, o.offset), reverse=False)
    assert check(acked, observed).ok


def test_lost_record():
    acked, observed = clean_history()
    observed = [o for o in observed if o.id != "c"]
    rep = check(acked, observed)
    assert not rep.ok
    assert [a.id for a in rep.lost] == ["c"]
    assert not rep.duplicated and not rep.reordered and not rep.misplaced


def test_duplicated_record():
    acked, observed = clean_history()
    observed.append(Observed("b", 1, 2, "k2"))  # written twice: a second copy at a new offset
    rep = check(acked, observed)
    assert not rep.ok
    assert rep.duplicated == {"b": [(1, 0), (1, 2)]}
    assert not rep.lost


def test_reordered_record_within_key():
    acked = [Acked("x1", 0, None, key="k"), Acked("x2", 0, None, key="k"), Acked("x3", 0, None, key="k")]
    # x2 landed after x3 in the log.
    observed = [Observed("x1", 0, 0, "k"), Observed("x3", 0, 1, "k"), Observed("x2", 0, 2, "k")]
    rep = check(acked, observed)
    assert not rep.ok
    assert len(rep.reordered) == 1
    r = rep.reordered[0]
    assert (r.partition, r.offset, r.id, r.previous_id) == (0, 2, "x2", "x3")
    assert not rep.lost and not rep.duplicated


def test_different_keys_may_interleave_unless_partition_order_required():
    acked = [Acked("p", 0, None, key="k1"), Acked("q", 0, None, key="k2")]
    observed = [Observed("q", 0, 0, "k2"), Observed("p", 0, 1, "k1")]
    assert check(acked, observed, by_key=True).ok
    rep = check(acked, observed, by_key=False)
    assert [r.id for r in rep.reordered] == ["p"]


def test_misplaced_offset():
    acked, observed = clean_history()
    observed = [Observed(o.id, o.partition, o.offset + (10 if o.id == "e" else 0), o.key) for o in observed]
    rep = check(acked, observed)
    assert [a.id for a, _ in rep.misplaced] == ["e"]


def test_consumer_redelivery_and_step_back():
    acked, observed = clean_history()
    observed.append(observed[0])  # same (partition, offset) delivered again
    rep = check(acked, observed)
    assert rep.consume_order == [(0, 2, 0)]
    assert not rep.duplicated  # same position is not a duplicate write


def test_unacked_present_is_not_an_error():
    acked, observed = clean_history()
    observed.append(Observed("zz", 1, 2, None))
    rep = check(acked, observed)
    assert rep.ok
    assert rep.unacked == ["zz"]


def test_explicit_seq_and_acks_without_offsets():
    acked = [Acked(i, i % 2, None, seq=100 + i) for i in range(6)]
    observed = [Observed(i, i % 2, i // 2) for i in range(6)]
    assert check(acked, observed, by_key=False).ok


def test_ids_must_be_unique():
    with pytest.raises(ValueError):
        check([Acked("a", 0, 0), Acked("a", 0, 1)], [])


def test_summary_mentions_each_problem():
    acked = [Acked("a", 0, 0), Acked("b", 0, 1), Acked("c", 0, 2)]
    observed = [Observed("c", 0, 0), Observed("b", 0, 1), Observed("b", 0, 2)]
    text = check(acked, observed, by_key=False).summary()
    assert "lost=1" in text and "duplicated=1" in text and "reordered=" in text


# ---- a group's reads (members.group_reads) ----

def reads_of(partition: int, offsets) -> dict:
    return {"event": "records", "recs": [[f"r{partition}-{o}", partition, o] for o in offsets]}


def test_a_partition_handed_over_is_one_clean_history():
    # m1 owned p0 alone first; after the rebalance m0 goes on from m1's commit. Listed m0 first,
    # as a test lists its members, the concatenated streams would step back from 9 to 0.
    streams = {
        "m0": [{"event": "assigned", "partitions": [0]}, reads_of(0, range(5, 10))],
        "m1": [{"event": "assigned", "partitions": [0, 1]}, reads_of(0, range(5)), reads_of(1, range(3)),
               {"event": "revoked", "partitions": [0, 1]}, {"event": "assigned", "partitions": [1]},
               reads_of(1, range(3, 6))],
    }
    concatenated = [Observed(rid, p, o) for evs in streams.values() for e in evs
                    if e["event"] == "records" for rid, p, o in e["recs"]]
    acked = [Acked(f"r0-{o}", 0, o) for o in range(10)] + [Acked(f"r1-{o}", 1, o) for o in range(6)]
    assert check(acked, concatenated, by_key=False).consume_order, "the artefact group_reads avoids"

    reads = group_reads(streams)
    assert reads.steps_back == [] and reads.repeats == []
    assert [(o.partition, o.offset) for o in reads.seen] == [(0, o) for o in range(10)] + [(1, o) for o in range(6)]
    assert check(acked, reads.seen, by_key=False).ok


def test_reads_repeated_after_a_rebalance_are_repeats_not_steps_back():
    streams = {
        "m0": [reads_of(0, range(5)), {"event": "revoked", "partitions": [0]}],
        "m1": [{"event": "assigned", "partitions": [0]}, reads_of(0, range(3, 8))],  # commit was at 3
    }
    reads = group_reads(streams)
    assert reads.steps_back == []
    assert [(p, o) for _, p, o in reads.repeats] == [(0, 3), (0, 4)]
    assert len(reads.seen) == 8


def test_a_step_back_within_one_ownership_is_reported():
    streams = {"m0": [{"event": "assigned", "partitions": [0]}, reads_of(0, [5, 6]), reads_of(0, [2, 7])]}
    reads = group_reads(streams)
    assert reads.steps_back == [("m0", 0, 6, 2)]
