//! The checker: a pure function from a [`History`] to the anomalies in it.
//!
//! It trusts nothing the cluster says about itself; only what clients were told and what a
//! reader found afterwards. The rules, each a promise Kafka makes to an idempotent producer
//! with acks=all and to a consumer group:
//! - lost: an acknowledged record the final read does not contain.
//! - duplicated: a record stored at more than one offset (idempotence broken).
//! - reordered: in one partition, two records of the same producer stored out of send order.
//! - moved: an acknowledged record found at an offset other than the one its ack named.
//! - consumed after commit: the group was handed a record below an offset it had already
//!   committed for that partition (a commit that did not hold, e.g. lost in a failover).
//!
//! Records in the log that no ack covers are fine (the write landed, the ack was lost with a
//! dying connection); they are counted, not flagged.
//!
//! The exactly-once workload has its own rules, in [`eos`].

pub mod eos;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::history::{Ack, History, Observed, RecordId};

/// How many examples of each anomaly a report lists (the counts are always complete).
pub const MAX_EXAMPLES: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Duplicate {
    pub id: RecordId,
    /// Every (partition, offset) the record was found at.
    pub at: Vec<(i32, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reorder {
    pub partition: i32,
    /// The record stored first, though sent later...
    pub earlier_offset: i64,
    pub earlier: RecordId,
    /// ...and the record stored after it, though sent earlier.
    pub later_offset: i64,
    pub later: RecordId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moved {
    pub id: RecordId,
    pub acked_at: (i32, i64),
    pub found_at: (i32, i64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumedAfterCommit {
    pub member: u32,
    pub partition: i32,
    pub offset: i64,
    /// The committed offset (next to read) that was already in force.
    pub committed: i64,
    pub committed_by: u32,
    pub at_us: u64,
}

/// A list of anomalies of one kind: the full count and the first few examples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Findings<T> {
    pub count: u64,
    pub examples: Vec<T>,
}

impl<T> Default for Findings<T> {
    fn default() -> Self {
        Findings {
            count: 0,
            examples: Vec::new(),
        }
    }
}

impl<T> Findings<T> {
    fn push(&mut self, finding: T) {
        self.count += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(finding);
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub lost: Findings<RecordId>,
    pub duplicated: Findings<Duplicate>,
    pub reordered: Findings<Reorder>,
    pub moved: Findings<Moved>,
    pub consumed_after_commit: Findings<ConsumedAfterCommit>,
    /// Stored records no ack covers (not an error).
    pub unacked_stored: u64,
    /// Records the group was handed again at or above the committed offset: at-least-once
    /// redelivery after a rebalance, allowed (not an error).
    pub group_redelivered: u64,
}

impl Verdict {
    /// True when the run kept every promise.
    pub fn passed(&self) -> bool {
        self.lost.count == 0
            && self.duplicated.count == 0
            && self.reordered.count == 0
            && self.moved.count == 0
            && self.consumed_after_commit.count == 0
    }
}

pub fn check(history: &History) -> Verdict {
    let mut verdict = Verdict::default();
    let stored = index_observed(&history.observed, &mut verdict);
    check_acks(&history.acks, &stored, &mut verdict);
    check_order(&history.observed, &mut verdict);
    check_group(history, &mut verdict);
    verdict
}

/// Where each record was found; records found more than once are reported as duplicates.
fn index_observed(observed: &[Observed], verdict: &mut Verdict) -> HashMap<RecordId, (i32, i64)> {
    let mut at: HashMap<RecordId, Vec<(i32, i64)>> = HashMap::with_capacity(observed.len());
    for o in observed {
        at.entry(o.id).or_default().push((o.partition, o.offset));
    }
    let mut duplicates: Vec<Duplicate> = at
        .iter()
        .filter(|(_, places)| places.len() > 1)
        .map(|(id, places)| Duplicate {
            id: *id,
            at: places.clone(),
        })
        .collect();
    duplicates.sort_by_key(|d| d.id);
    for d in duplicates {
        verdict.duplicated.push(d);
    }
    at.into_iter().map(|(id, places)| (id, places[0])).collect()
}

fn check_acks(acks: &[Ack], stored: &HashMap<RecordId, (i32, i64)>, verdict: &mut Verdict) {
    let mut acked: Vec<&Ack> = acks.iter().collect();
    acked.sort_by_key(|a| a.id);
    let mut covered = 0u64;
    for ack in acked {
        match stored.get(&ack.id) {
            None => verdict.lost.push(ack.id),
            Some(&found) => {
                covered += 1;
                if found != (ack.partition, ack.offset) {
                    verdict.moved.push(Moved {
                        id: ack.id,
                        acked_at: (ack.partition, ack.offset),
                        found_at: found,
                    });
                }
            }
        }
    }
    verdict.unacked_stored = (stored.len() as u64).saturating_sub(covered);
}

/// In each partition, walked in offset order, every producer's sequence numbers must rise.
fn check_order(observed: &[Observed], verdict: &mut Verdict) {
    let mut by_partition: BTreeMap<i32, Vec<&Observed>> = BTreeMap::new();
    for o in observed {
        by_partition.entry(o.partition).or_default().push(o);
    }
    for (partition, mut records) in by_partition {
        records.sort_by_key(|o| o.offset);
        let mut last: HashMap<u32, &Observed> = HashMap::new();
        for o in records {
            if let Some(prev) = last.get(&o.id.producer)
                && prev.id.seq > o.id.seq
            {
                verdict.reordered.push(Reorder {
                    partition,
                    earlier_offset: prev.offset,
                    earlier: prev.id,
                    later_offset: o.offset,
                    later: o.id,
                });
                // Keep the highest sequence seen, so one late record is one finding.
                continue;
            }
            last.insert(o.id.producer, o);
        }
    }
}

/// Merges commits and consumption in time order: a record handed to any member below the
/// highest offset already committed for its partition means a commit was not honoured.
fn check_group(history: &History, verdict: &mut Verdict) {
    enum Event<'a> {
        Commit(&'a crate::history::Commit),
        Consume(&'a crate::history::Consumed),
    }
    let mut events: Vec<(u64, u8, Event<'_>)> = Vec::new();
    // At the same microsecond a commit sorts first: it finished before the consume was seen.
    events.extend(
        history
            .commits
            .iter()
            .map(|c| (c.at_us, 0, Event::Commit(c))),
    );
    events.extend(
        history
            .consumed
            .iter()
            .map(|c| (c.at_us, 1, Event::Consume(c))),
    );
    events.sort_by_key(|(at, order, _)| (*at, *order));

    let mut committed: HashMap<i32, (i64, u32)> = HashMap::new();
    let mut consumed: HashMap<(i32, i64), u32> = HashMap::new();
    for (_, _, event) in events {
        match event {
            Event::Commit(c) => {
                let entry = committed.entry(c.partition).or_insert((c.offset, c.member));
                if c.offset > entry.0 {
                    *entry = (c.offset, c.member);
                }
            }
            Event::Consume(c) => {
                let times = consumed.entry((c.partition, c.offset)).or_insert(0);
                *times += 1;
                match committed.get(&c.partition) {
                    Some(&(offset, by)) if c.offset < offset => {
                        verdict.consumed_after_commit.push(ConsumedAfterCommit {
                            member: c.member,
                            partition: c.partition,
                            offset: c.offset,
                            committed: offset,
                            committed_by: by,
                            at_us: c.at_us,
                        })
                    }
                    _ if *times > 1 => verdict.group_redelivered += 1,
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Commit, Consumed};

    fn id(producer: u32, seq: u64) -> RecordId {
        RecordId { producer, seq }
    }

    /// A clean history: producer 0 writes seq 0..n to partition 0, producer 1 to partition 1,
    /// every record acked where it was stored and read back.
    fn clean(n: u64) -> History {
        let mut h = History::default();
        for producer in 0..2u32 {
            for seq in 0..n {
                let partition = producer as i32;
                let offset = seq as i64;
                h.acks.push(Ack {
                    id: id(producer, seq),
                    partition,
                    offset,
                    sent_us: seq * 10,
                    acked_us: seq * 10 + 5,
                });
                h.observed.push(Observed {
                    id: id(producer, seq),
                    partition,
                    offset,
                });
            }
        }
        h.sent = 2 * n;
        h
    }

    #[test]
    fn a_clean_history_passes() {
        let v = check(&clean(100));
        assert!(v.passed(), "{v:?}");
        assert_eq!(v.unacked_stored, 0);
    }

    #[test]
    fn a_lost_record_is_reported() {
        let mut h = clean(10);
        h.observed.retain(|o| o.id != id(1, 7));
        let v = check(&h);
        assert!(!v.passed());
        assert_eq!(v.lost.count, 1);
        assert_eq!(v.lost.examples, vec![id(1, 7)]);
        assert_eq!(v.duplicated.count + v.reordered.count + v.moved.count, 0);
    }

    #[test]
    fn a_duplicated_record_is_reported() {
        let mut h = clean(10);
        // A retried batch stored a second time at the end of partition 0.
        h.observed.push(Observed {
            id: id(0, 3),
            partition: 0,
            offset: 10,
        });
        let v = check(&h);
        assert!(!v.passed());
        assert_eq!(v.duplicated.count, 1);
        assert_eq!(v.duplicated.examples[0].id, id(0, 3));
        assert_eq!(v.duplicated.examples[0].at, vec![(0, 3), (0, 10)]);
        assert_eq!(v.lost.count, 0);
    }

    #[test]
    fn a_reordered_record_is_reported() {
        let mut h = clean(10);
        // Seq 4 and 5 of producer 1 stored in swapped order (acks say the same).
        for o in h.observed.iter_mut().filter(|o| o.partition == 1) {
            if o.offset == 4 {
                o.id = id(1, 5);
            } else if o.offset == 5 {
                o.id = id(1, 4);
            }
        }
        for a in h.acks.iter_mut().filter(|a| a.partition == 1) {
            if a.id == id(1, 4) {
                a.offset = 5;
            } else if a.id == id(1, 5) {
                a.offset = 4;
            }
        }
        let v = check(&h);
        assert!(!v.passed());
        assert_eq!(v.reordered.count, 1, "{v:?}");
        let r = &v.reordered.examples[0];
        assert_eq!((r.partition, r.earlier, r.later), (1, id(1, 5), id(1, 4)));
        assert_eq!(v.lost.count + v.duplicated.count + v.moved.count, 0);
    }

    #[test]
    fn interleaved_producers_in_one_partition_are_not_a_reorder() {
        let mut h = History::default();
        let order = [id(0, 0), id(1, 0), id(1, 1), id(0, 1), id(0, 2), id(1, 2)];
        for (offset, rid) in order.iter().enumerate() {
            h.acks.push(Ack {
                id: *rid,
                partition: 0,
                offset: offset as i64,
                sent_us: 0,
                acked_us: 1,
            });
            h.observed.push(Observed {
                id: *rid,
                partition: 0,
                offset: offset as i64,
            });
        }
        assert!(check(&h).passed());
    }

    #[test]
    fn an_ack_naming_another_offset_is_reported() {
        let mut h = clean(5);
        h.acks[2].offset = 99;
        let v = check(&h);
        assert_eq!(v.moved.count, 1);
        assert!(!v.passed());
    }

    #[test]
    fn stored_records_without_an_ack_are_counted_not_flagged() {
        let mut h = clean(5);
        h.acks.pop();
        let v = check(&h);
        assert!(v.passed());
        assert_eq!(v.unacked_stored, 1);
    }

    fn consume(member: u32, partition: i32, offset: i64, at_us: u64) -> Consumed {
        Consumed {
            member,
            id: id(0, offset as u64),
            partition,
            offset,
            at_us,
        }
    }

    #[test]
    fn redelivery_below_a_committed_offset_is_reported() {
        let mut h = clean(10);
        h.consumed = (0..6).map(|o| consume(1, 0, o, 100 + o as u64)).collect();
        h.commits.push(Commit {
            member: 1,
            partition: 0,
            offset: 6,
            at_us: 200,
        });
        // After a rebalance member 2 starts at offset 4: the commit of 6 did not hold.
        h.consumed
            .extend((4..10).map(|o| consume(2, 0, o, 300 + o as u64)));
        let v = check(&h);
        assert!(!v.passed());
        assert_eq!(v.consumed_after_commit.count, 2);
        let first = &v.consumed_after_commit.examples[0];
        assert_eq!((first.member, first.offset, first.committed), (2, 4, 6));
    }

    #[test]
    fn redelivery_from_the_committed_offset_is_allowed() {
        let mut h = clean(10);
        h.consumed = (0..8).map(|o| consume(1, 0, o, 100 + o as u64)).collect();
        h.commits.push(Commit {
            member: 1,
            partition: 0,
            offset: 6,
            at_us: 150,
        });
        // Member 1 read 6 and 7 but died before committing them; member 2 reads them again.
        h.consumed
            .extend((6..10).map(|o| consume(2, 0, o, 300 + o as u64)));
        let v = check(&h);
        assert!(v.passed(), "{v:?}");
        assert_eq!(v.group_redelivered, 2);
    }

    #[test]
    fn a_commit_that_finishes_after_the_consume_does_not_count_against_it() {
        let mut h = clean(4);
        h.consumed.push(consume(2, 0, 1, 100));
        h.commits.push(Commit {
            member: 1,
            partition: 0,
            offset: 3,
            at_us: 101,
        });
        assert!(check(&h).passed());
    }

    #[test]
    fn example_lists_are_bounded_but_counts_are_complete() {
        let mut h = clean(100);
        h.observed.retain(|o| o.partition != 0);
        let v = check(&h);
        assert_eq!(v.lost.count, 100);
        assert_eq!(v.lost.examples.len(), MAX_EXAMPLES);
    }
}
