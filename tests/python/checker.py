"""History checker: lost, duplicated and reordered records.

Input:
- `acked`: what the producer was told succeeded, in send order. Each `Acked`
  carries the payload id (unique per record), the partition, the offset from
  the delivery report (None when the client does not report one, e.g. acks=0
  or kcat), an optional key and a send sequence number (`seq`; defaults to the
  position in `acked`).
- `observed`: what a consumer read back, in the order the consumer delivered
  it (`Observed`: id, partition, offset, key).

Report:
- lost: acked ids never observed.
- duplicated: ids observed at more than one (partition, offset).
- misplaced: acked with a (partition, offset) but observed somewhere else.
- redelivered / consume-order: within a partition the consumer delivered
  offsets that did not strictly increase (a repeat or a step backwards).
- reordered: within a partition, in offset order, two acked records of the
  same ordering group (same key, or the whole partition when by_key=False)
  whose send sequence goes backwards.
- unacked: observed ids that were never acked. Not an error (a write can land
  without its ack reaching the client, e.g. across a crash); reported for
  information.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Hashable, Iterable


@dataclass(frozen=True)
class Acked:
    id: Hashable
    partition: int
    offset: int | None = None
    key: Hashable = None
    seq: int | None = None


@dataclass(frozen=True)
class Observed:
    id: Hashable
    partition: int
    offset: int
    key: Hashable = None


@dataclass(frozen=True)
class Reorder:
    partition: int
    offset: int
    id: Hashable
    previous_offset: int
    previous_id: Hashable
    group: Hashable

    def __str__(self) -> str:
        return (f"p{self.partition}: id {self.id!r}@{self.offset} was sent before "
                f"id {self.previous_id!r}@{self.previous_offset} (group {self.group!r})")


@dataclass
class Report:
    acked: int = 0
    observed: int = 0
    lost: list[Acked] = field(default_factory=list)
    duplicated: dict[Hashable, list[tuple[int, int]]] = field(default_factory=dict)
    misplaced: list[tuple[Acked, list[tuple[int, int]]]] = field(default_factory=list)
    consume_order: list[tuple[int, int, int]] = field(default_factory=list)  # (partition, prev offset, offset)
    reordered: list[Reorder] = field(default_factory=list)
    unacked: list[Hashable] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.misplaced or self.consume_order or self.reordered)

    def summary(self, limit: int = 5) -> str:
        def few(xs):
            xs = list(xs)
            more = f" (+{len(xs) - limit} more)" if len(xs) > limit else ""
            return ", ".join(str(x) for x in xs[:limit]) + more

        lines = [
            f"acked={self.acked} observed={self.observed} lost={len(self.lost)} "
            f"duplicated={len(self.duplicated)} misplaced={len(self.misplaced)} "
            f"consume_order={len(self.consume_order)} reordered={len(self.reordered)} "
            f"unacked_present={len(self.unacked)}"
        ]
        if self.lost:
            lines.append("lost: " + few(f"{a.id!r}@p{a.partition}/{a.offset}" for a in self.lost))
        if self.duplicated:
            lines.append("duplicated: " + few(f"{k!r} at {v}" for k, v in self.duplicated.items()))
        if self.misplaced:
            lines.append("misplaced: " + few(f"{a.id!r} acked p{a.partition}/{a.offset} seen {v}" for a, v in self.misplaced))
        if self.consume_order:
            lines.append("consume order: " + few(f"p{p}: {a} then {b}" for p, a, b in self.consume_order))
        if self.reordered:
            lines.append("reordered: " + few(self.reordered))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def check(acked: Iterable[Acked], observed: Iterable[Observed], *, by_key: bool = True) -> Report:
    acked = list(acked)
    observed = list(observed)
    rep = Report(acked=len(acked), observed=len(observed))

    ack_by_id: dict[Hashable, Acked] = {}
    seq_by_id: dict[Hashable, int] = {}
    for pos, a in enumerate(acked):
        if a.id in ack_by_id:
            raise ValueError(f"payload id {a.id!r} acked twice: ids must be unique per record")
        ack_by_id[a.id] = a
        seq_by_id[a.id] = a.seq if a.seq is not None else pos

    # Where each id was seen (distinct positions) and the consumer's delivery order.
    seen_at: dict[Hashable, list[tuple[int, int]]] = defaultdict(list)
    last_offset: dict[int, int] = {}
    for o in observed:
        pos = (o.partition, o.offset)
        if pos not in seen_at[o.id]:
            seen_at[o.id].append(pos)
        prev = last_offset.get(o.partition)
        if prev is not None and o.offset <= prev:
            rep.consume_order.append((o.partition, prev, o.offset))
        last_offset[o.partition] = o.offset if prev is None else max(prev, o.offset)

    for a in acked:
        where = seen_at.get(a.id)
        if not where:
            rep.lost.append(a)
        elif a.offset is not None and a.offset >= 0 and (a.partition, a.offset) not in where:
            rep.misplaced.append((a, list(where)))

    for rid, where in seen_at.items():
        if len(where) > 1:
            rep.duplicated[rid] = list(where)
        if rid not in ack_by_id:
            rep.unacked.append(rid)

    # Order: per partition, in offset order, send sequence must increase within a group.
    by_partition: dict[int, dict[int, Observed]] = defaultdict(dict)
    for o in observed:
        by_partition[o.partition].setdefault(o.offset, o)
    for partition, recs in sorted(by_partition.items()):
        last_in_group: dict[Hashable, tuple[int, Observed]] = {}
        for offset in sorted(recs):
            o = recs[offset]
            if o.id not in seq_by_id:
                continue
            a = ack_by_id[o.id]
            group = (a.key if a.key is not None else o.key) if by_key else None
            seq = seq_by_id[o.id]
            prev = last_in_group.get(group)
            if prev is not None and seq < prev[0]:
                rep.reordered.append(Reorder(partition, offset, o.id, prev[1].offset, prev[1].id, group))
            if prev is None or seq > prev[0]:
                last_in_group[group] = (seq, o)
    return rep
