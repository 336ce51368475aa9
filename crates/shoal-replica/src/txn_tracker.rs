//! Which transactions hold the last stable offset back (Kafka's `ongoingTxns` and
//! `unreplicatedTxns` of `ProducerStateManager`).
//!
//! A `read_committed` consumer may read only what is decided: below the first offset of every
//! transaction still open, and — since a marker above the high watermark may yet be lost with a
//! leader change — below the first offset of every transaction whose marker the high watermark
//! has not passed. The last stable offset is the smaller of that first unstable offset and the
//! high watermark. Both sets are keyed by the transaction's first offset, so the first unstable
//! offset is a lookup; each is bounded by the producers with open transactions.

use std::collections::BTreeMap;

use crate::transaction::CompletedTxn;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TxnTracker {
    /// Open transactions: first offset → producer id.
    ongoing: BTreeMap<i64, i64>,
    /// Ended by a marker at or above the high watermark: first offset → the transaction.
    unreplicated: BTreeMap<i64, CompletedTxn>,
}

impl TxnTracker {
    /// A producer's transaction began at `first_offset`.
    pub fn start(&mut self, producer_id: i64, first_offset: i64) {
        self.ongoing.insert(first_offset, producer_id);
    }

    /// Kafka's `lastStableOffset(completedTxn)`: the last stable offset once `txn` is decided —
    /// the first offset of the earliest transaction of another producer still open, or the
    /// offset after the marker. Asked before [`Self::complete`].
    pub fn last_stable_offset_after(&self, txn: &CompletedTxn) -> i64 {
        self.ongoing
            .iter()
            .find(|(_, producer_id)| **producer_id != txn.producer_id)
            .map_or(txn.last_offset.saturating_add(1), |(first_offset, _)| {
                *first_offset
            })
    }

    /// A marker decided `txn`: it stops being open and waits for the high watermark.
    pub fn complete(&mut self, txn: CompletedTxn) {
        self.ongoing.remove(&txn.first_offset);
        self.unreplicated.insert(txn.first_offset, txn);
    }

    /// Forgets decided transactions whose marker is below `high_watermark` (replicated).
    pub fn on_high_watermark(&mut self, high_watermark: i64) {
        self.unreplicated
            .retain(|_, txn| txn.last_offset >= high_watermark);
    }

    /// The first offset a `read_committed` reader may not pass because of a transaction.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let ongoing = self.ongoing.keys().next().copied();
        let unreplicated = self.unreplicated.keys().next().copied();
        match (ongoing, unreplicated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Open transactions, oldest first: (first offset, producer id).
    pub fn ongoing(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing.iter().map(|(first, id)| (*first, *id))
    }

    /// Decided transactions not yet below the high watermark, by first offset.
    pub fn unreplicated(&self) -> impl Iterator<Item = &CompletedTxn> + '_ {
        self.unreplicated.values()
    }

    pub fn ongoing_count(&self) -> usize {
        self.ongoing.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(producer_id: i64, first_offset: i64, last_offset: i64) -> CompletedTxn {
        CompletedTxn {
            producer_id,
            first_offset,
            last_offset,
            is_aborted: true,
        }
    }

    #[test]
    fn the_first_unstable_offset_is_the_earliest_undecided_or_unreplicated_start() {
        let mut t = TxnTracker::default();
        assert_eq!(t.first_unstable_offset(), None);
        t.start(1, 10);
        t.start(2, 15);
        assert_eq!(t.first_unstable_offset(), Some(10));
        // Producer 1 decided at 20: still unstable until the high watermark passes 20.
        t.complete(done(1, 10, 20));
        assert_eq!(t.first_unstable_offset(), Some(10));
        t.on_high_watermark(20);
        assert_eq!(
            t.first_unstable_offset(),
            Some(10),
            "the marker is not below 20"
        );
        t.on_high_watermark(21);
        assert_eq!(t.first_unstable_offset(), Some(15));
        t.complete(done(2, 15, 30));
        t.on_high_watermark(100);
        assert_eq!(t.first_unstable_offset(), None);
        assert_eq!(t.ongoing_count(), 0);
    }

    #[test]
    fn an_unreplicated_decision_can_precede_an_open_transaction() {
        let mut t = TxnTracker::default();
        t.start(1, 5);
        t.start(2, 8);
        t.complete(done(1, 5, 9));
        assert_eq!(t.first_unstable_offset(), Some(5));
        t.on_high_watermark(10);
        assert_eq!(t.first_unstable_offset(), Some(8));
    }

    #[test]
    fn an_aborts_last_stable_offset_skips_its_own_producer() {
        // (open transactions (producer, first), the decided one, expected LSO)
        type Case = (&'static [(i64, i64)], CompletedTxn, i64);
        let cases: [Case; 4] = [
            (&[(1, 10)], done(1, 10, 20), 21),
            (&[(1, 10), (2, 12)], done(1, 10, 20), 12),
            (&[(2, 3), (1, 10)], done(1, 10, 20), 3),
            (&[], done(1, 10, i64::MAX), i64::MAX),
        ];
        for (open, txn, expected) in cases {
            let mut t = TxnTracker::default();
            for (producer_id, first) in open {
                t.start(*producer_id, *first);
            }
            assert_eq!(t.last_stable_offset_after(&txn), expected, "{open:?}");
        }
    }
}
