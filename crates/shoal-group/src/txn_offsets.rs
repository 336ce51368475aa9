//! Transactional offsets (TxnOffsetCommit, the producer's `sendOffsetsToTransaction`): offsets a
//! producer commits inside a transaction wait here, invisible to OffsetFetch, until a marker of
//! that producer on the offsets partition decides them — committed they join the group's
//! offsets, aborted they are dropped (Kafka's `pendingTransactionalOffsets` and
//! `openTransactions` of `OffsetMetadataManager`).
//!
//! **Which commit wins.** A group may mix plain and transactional commits of one partition.
//! Each offset keeps the log offset of its record, and a committed transaction's offset is
//! applied only if no record written after it already holds the partition's offset — the
//! partition's log order decides, as it does when the partition is read back (and as Kafka
//! does, so a compacted log replays to the same answer).
//!
//! **A marker decides only what is before it.** [`PendingTxnOffsets::complete`] takes the
//! marker's log offset and leaves a record written after it pending: it belongs to the
//! producer's next transaction, which gets a marker of its own.
//!
//! Pure and bounded: [`MAX_PENDING_TXN_OFFSETS`] partitions per (group, producer).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::replay::{Offsets, StoredOffset};

/// Most partitions one producer may have pending in one group: a transaction committing
/// offsets for more is refused (INVALID_COMMIT_OFFSET_SIZE), so a runaway producer cannot grow
/// the coordinator's memory without bound. Kafka has no such bound; a real transaction commits
/// the partitions one producer consumes, far fewer.
pub const MAX_PENDING_TXN_OFFSETS: usize = 10_000;

/// A (topic, partition).
pub type PartitionKey = (String, i32);

/// What a marker did to the pending offsets of its producer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Completed {
    /// Committed and now the group's offset.
    pub materialized: usize,
    /// Committed, but a later plain commit of the partition already holds its offset.
    pub superseded: usize,
    /// Aborted.
    pub dropped: usize,
}

/// The pending transactional offsets of one offsets partition.
#[derive(Debug, Default)]
pub struct PendingTxnOffsets {
    /// producer id → group → partition → offset.
    by_producer: HashMap<i64, HashMap<String, Offsets>>,
    /// group → partition → producers with an offset pending there.
    open: HashMap<String, BTreeMap<PartitionKey, BTreeSet<i64>>>,
}

impl PendingTxnOffsets {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.by_producer.is_empty()
    }

    /// Producers with pending offsets.
    pub fn producers(&self) -> usize {
        self.by_producer.len()
    }

    /// `offset` of `producer_id` for `group`'s `key` waits for the producer's marker (a later
    /// one of the same producer and partition replaces it).
    pub fn add(&mut self, producer_id: i64, group: &str, key: PartitionKey, offset: StoredOffset) {
        self.open
            .entry(group.to_string())
            .or_default()
            .entry(key.clone())
            .or_default()
            .insert(producer_id);
        self.by_producer
            .entry(producer_id)
            .or_default()
            .entry(group.to_string())
            .or_default()
            .insert(key, offset);
    }

    /// Whether some producer has an offset pending for `group`'s `key`.
    pub fn is_pending(&self, group: &str, key: &PartitionKey) -> bool {
        self.open.get(group).is_some_and(|o| o.contains_key(key))
    }

    /// Whether some producer has an offset pending in `group`.
    pub fn group_has_pending(&self, group: &str) -> bool {
        self.open.contains_key(group)
    }

    /// Groups with pending offsets.
    pub fn groups(&self) -> impl Iterator<Item = &String> {
        self.open.keys()
    }

    /// `group`'s partitions with a pending offset.
    pub fn partitions(&self, group: &str) -> Vec<PartitionKey> {
        self.open
            .get(group)
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// How many partitions `producer_id` has pending in `group`.
    pub fn count(&self, producer_id: i64, group: &str) -> usize {
        self.by_producer
            .get(&producer_id)
            .and_then(|g| g.get(group))
            .map_or(0, |o| o.len())
    }

    /// Whether `producer_id` may add `keys` in `group` and stay within `max` partitions.
    pub fn fits(&self, producer_id: i64, group: &str, keys: &[PartitionKey], max: usize) -> bool {
        let current = self
            .by_producer
            .get(&producer_id)
            .and_then(|g| g.get(group));
        let new: BTreeSet<&PartitionKey> = keys
            .iter()
            .filter(|k| current.is_none_or(|c| !c.contains_key(*k)))
            .collect();
        current.map_or(0, |c| c.len()) + new.len() <= max
    }

    /// `group`'s `key` was tombstoned (OffsetDelete, a deleted topic, expiry): every pending
    /// offset of it goes too, so a marker that follows brings nothing back.
    pub fn remove_partition(&mut self, group: &str, key: &PartitionKey) {
        let Some(open) = self.open.get_mut(group) else {
            return;
        };
        let Some(producers) = open.remove(key) else {
            return;
        };
        if open.is_empty() {
            self.open.remove(group);
        }
        for producer_id in producers {
            self.remove_from_producer(producer_id, group, key);
        }
    }

    /// `group` was deleted: all its pending offsets go.
    pub fn remove_group(&mut self, group: &str) {
        for key in self.partitions(group) {
            self.remove_partition(group, &key);
        }
    }

    fn remove_from_producer(&mut self, producer_id: i64, group: &str, key: &PartitionKey) {
        let Some(groups) = self.by_producer.get_mut(&producer_id) else {
            return;
        };
        if let Some(offsets) = groups.get_mut(group) {
            offsets.remove(key);
            if offsets.is_empty() {
                groups.remove(group);
            }
        }
        if groups.is_empty() {
            self.by_producer.remove(&producer_id);
        }
    }

    fn close(&mut self, producer_id: i64, group: &str, key: &PartitionKey) {
        let Some(open) = self.open.get_mut(group) else {
            return;
        };
        if let Some(producers) = open.get_mut(key) {
            producers.remove(&producer_id);
            if producers.is_empty() {
                open.remove(key);
            }
        }
        if open.is_empty() {
            self.open.remove(group);
        }
    }

    /// A commit (`commit`) or abort marker of `producer_id` at log offset `marker_offset`: its
    /// pending offsets written before the marker are applied to `committed` (unless a later
    /// record already holds the partition) or dropped.
    pub fn complete(
        &mut self,
        producer_id: i64,
        commit: bool,
        marker_offset: i64,
        committed: &mut HashMap<String, Offsets>,
    ) -> Completed {
        let mut done = Completed::default();
        let Some(groups) = self.by_producer.get_mut(&producer_id) else {
            return done;
        };
        let mut decided: Vec<(String, PartitionKey, StoredOffset)> = Vec::new();
        for (group, offsets) in groups.iter_mut() {
            let keys: Vec<PartitionKey> = offsets
                .iter()
                .filter(|(_, o)| o.record_offset < marker_offset)
                .map(|(k, _)| k.clone())
                .collect();
            for key in keys {
                if let Some(offset) = offsets.remove(&key) {
                    decided.push((group.clone(), key, offset));
                }
            }
        }
        groups.retain(|_, offsets| !offsets.is_empty());
        if groups.is_empty() {
            self.by_producer.remove(&producer_id);
        }
        for (group, key, offset) in decided {
            self.close(producer_id, &group, &key);
            if !commit {
                done.dropped += 1;
                continue;
            }
            let offsets = committed.entry(group).or_default();
            match offsets.get(&key) {
                Some(current) if current.record_offset > offset.record_offset => {
                    done.superseded += 1;
                }
                _ => {
                    offsets.insert(key, offset);
                    done.materialized += 1;
                }
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::OffsetValue;

    fn stored(offset: i64, record_offset: i64) -> StoredOffset {
        StoredOffset {
            value: OffsetValue {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 0,
                expire_timestamp_ms: None,
            },
            record_offset,
        }
    }

    fn key(p: i32) -> PartitionKey {
        ("t".to_string(), p)
    }

    fn committed_offset(c: &HashMap<String, Offsets>, group: &str, p: i32) -> Option<i64> {
        c.get(group)
            .and_then(|o| o.get(&key(p)))
            .map(|s| s.value.offset)
    }

    /// (offset, record offset).
    type At = (i64, i64);
    /// Committed before, pending, commit?, marker offset → committed after, why.
    type Case = (Option<At>, At, bool, i64, Option<i64>, &'static str);

    #[test]
    fn a_marker_decides_the_pending_offset_against_the_committed_one() {
        let cases: &[Case] = &[
            (None, (10, 5), true, 6, Some(10), "commit materializes"),
            (None, (10, 5), false, 6, None, "abort drops"),
            (
                Some((3, 1)),
                (10, 5),
                true,
                6,
                Some(10),
                "commit replaces an older commit",
            ),
            (
                Some((3, 1)),
                (10, 5),
                false,
                6,
                Some(3),
                "abort keeps the older commit",
            ),
            (
                Some((20, 7)),
                (10, 5),
                true,
                8,
                Some(20),
                "a plain commit written after the transactional one wins",
            ),
            (
                None,
                (10, 9),
                true,
                8,
                None,
                "a record after the marker is not its",
            ),
        ];
        for (before, (offset, record), commit, marker, after, why) in cases {
            let mut committed: HashMap<String, Offsets> = HashMap::new();
            if let Some((o, r)) = before {
                committed
                    .entry("g".into())
                    .or_default()
                    .insert(key(0), stored(*o, *r));
            }
            let mut pending = PendingTxnOffsets::new();
            pending.add(7, "g", key(0), stored(*offset, *record));
            assert!(pending.is_pending("g", &key(0)), "{why}");
            pending.complete(7, *commit, *marker, &mut committed);
            assert_eq!(committed_offset(&committed, "g", 0), *after, "{why}");
            let still = *record > *marker;
            assert_eq!(pending.is_pending("g", &key(0)), still, "{why}");
            assert_eq!(pending.is_empty(), !still, "{why}");
        }
    }

    #[test]
    fn a_marker_decides_only_its_producer() {
        let mut pending = PendingTxnOffsets::new();
        pending.add(1, "g", key(0), stored(10, 1));
        pending.add(2, "g", key(0), stored(20, 2));
        pending.add(2, "h", key(1), stored(30, 2));
        let mut committed = HashMap::new();
        let done = pending.complete(2, true, 3, &mut committed);
        assert_eq!(done.materialized, 2);
        assert_eq!(committed_offset(&committed, "g", 0), Some(20));
        assert_eq!(committed_offset(&committed, "h", 1), Some(30));
        assert!(pending.is_pending("g", &key(0)), "producer 1 is still open");
        assert!(!pending.group_has_pending("h"));
        // Producer 1's commit, written before producer 2's record, loses to it.
        let done = pending.complete(1, true, 4, &mut committed);
        assert_eq!((done.materialized, done.superseded), (0, 1));
        assert_eq!(committed_offset(&committed, "g", 0), Some(20));
        assert!(pending.is_empty());
        // A marker for a producer with nothing pending changes nothing.
        assert_eq!(
            pending.complete(9, true, 10, &mut committed),
            Completed::default()
        );
    }

    #[test]
    fn tombstones_remove_pending_offsets() {
        let mut pending = PendingTxnOffsets::new();
        pending.add(1, "g", key(0), stored(10, 1));
        pending.add(2, "g", key(0), stored(11, 2));
        pending.add(2, "g", key(1), stored(12, 2));
        pending.remove_partition("g", &key(0));
        assert!(!pending.is_pending("g", &key(0)));
        assert_eq!(pending.partitions("g"), vec![key(1)]);
        assert_eq!(pending.producers(), 1, "producer 1 had nothing else");
        let mut committed = HashMap::new();
        pending.complete(1, true, 5, &mut committed);
        assert!(committed.is_empty(), "the tombstone came first");
        pending.remove_group("g");
        assert!(pending.is_empty() && !pending.group_has_pending("g"));
    }

    #[test]
    fn the_bound_counts_distinct_partitions_per_group_and_producer() {
        let mut pending = PendingTxnOffsets::new();
        pending.add(1, "g", key(0), stored(1, 1));
        pending.add(1, "g", key(1), stored(1, 1));
        assert_eq!(pending.count(1, "g"), 2);
        // Re-committing pending partitions adds nothing; a repeated key counts once.
        assert!(pending.fits(1, "g", &[key(0), key(1)], 2));
        assert!(pending.fits(1, "g", &[key(2), key(2)], 3));
        assert!(!pending.fits(1, "g", &[key(2)], 2));
        // Other producers and groups have their own room.
        assert!(pending.fits(2, "g", &[key(2), key(3)], 2));
        assert!(pending.fits(1, "h", &[key(2), key(3)], 2));
    }
}
