//! `MetadataJournal`: the voter's bounded memory of recently applied batches.
//!
//! **Why in memory, not the Raft log.** The Raft log holds uncommitted entries and is purged
//! behind snapshots; serving from it would mean reading sled and re-checking commit state on
//! every fetch. The journal holds exactly what the state machine applied, in order, so anything
//! in it is committed. It is bounded by a record count; a follower further behind than the
//! journal reaches gets the whole image instead, so a bound never costs correctness.
//!
//! Invariant: every applied batch with an index greater than `covers_after` is in `batches`,
//! in index order, and `last_offset` is the highest index applied (with or without records).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::records::MetadataBatch;

/// Most records the journal keeps before dropping its oldest batches.
pub const MAX_JOURNAL_RECORDS: usize = 100_000;
/// Most records one fetch returns (at least one batch is always returned, and a batch holds at
/// most `MAX_RECORDS_PER_ENTRY` records).
pub const MAX_FETCH_RECORDS: usize = 20_000;

#[derive(Debug)]
pub struct MetadataJournal {
    batches: VecDeque<(u64, Arc<MetadataBatch>)>,
    records: usize,
    max_records: usize,
    covers_after: u64,
    last_offset: u64,
}

/// What the journal has after an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalRead {
    /// The batches after the offset (at most `MAX_FETCH_RECORDS` records) and the offset they
    /// bring the reader to.
    Batches {
        batches: Vec<(u64, Arc<MetadataBatch>)>,
        last_offset: u64,
    },
    /// The offset is older than what the journal keeps: send the image.
    TooOld,
}

impl MetadataJournal {
    /// An empty journal whose state starts at `offset` (the image the state machine loaded).
    pub fn new(offset: u64) -> Self {
        Self::with_limit(offset, MAX_JOURNAL_RECORDS)
    }

    pub fn with_limit(offset: u64, max_records: usize) -> Self {
        MetadataJournal {
            batches: VecDeque::new(),
            records: 0,
            max_records: max_records.max(1),
            covers_after: offset,
            last_offset: offset,
        }
    }

    pub fn last_offset(&self) -> u64 {
        self.last_offset
    }

    /// Records that the entry at `index` was applied, with `batch` if it carried records.
    pub fn applied(&mut self, index: u64, batch: Option<Arc<MetadataBatch>>) {
        debug_assert!(
            index >= self.last_offset,
            "journal offsets must not go back"
        );
        self.last_offset = index.max(self.last_offset);
        let Some(batch) = batch.filter(|b| !b.is_empty()) else {
            return;
        };
        self.records += batch.len();
        self.batches.push_back((index, batch));
        while self.records > self.max_records && self.batches.len() > 1 {
            if let Some((dropped, batch)) = self.batches.pop_front() {
                self.records -= batch.len();
                self.covers_after = dropped;
            }
        }
    }

    /// The state jumped to `offset` (a snapshot was installed): forget everything before it.
    pub fn reset(&mut self, offset: u64) {
        self.batches.clear();
        self.records = 0;
        self.covers_after = offset;
        self.last_offset = offset;
    }

    /// What a reader at `offset` needs next.
    pub fn read_after(&self, offset: u64) -> JournalRead {
        if offset < self.covers_after {
            return JournalRead::TooOld;
        }
        let start = self.batches.partition_point(|(index, _)| *index <= offset);
        let mut batches = Vec::new();
        let mut records = 0;
        let mut last_offset = self.last_offset.max(offset);
        for (index, batch) in self.batches.iter().skip(start) {
            if !batches.is_empty() && records + batch.len() > MAX_FETCH_RECORDS {
                // Stop before this batch: the reader is then at the index just below it.
                last_offset = index.saturating_sub(1);
                break;
            }
            records += batch.len();
            batches.push((*index, Arc::clone(batch)));
        }
        JournalRead::Batches {
            batches,
            last_offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::MetadataRecord;

    fn batch(n: usize) -> Arc<MetadataBatch> {
        Arc::new(
            (0..n)
                .map(|i| MetadataRecord::ProducerIds {
                    next_producer_id_block_start: i as i64,
                })
                .collect(),
        )
    }

    fn indexes(read: &JournalRead) -> (Vec<u64>, u64) {
        match read {
            JournalRead::Batches {
                batches,
                last_offset,
            } => (batches.iter().map(|(i, _)| *i).collect(), *last_offset),
            JournalRead::TooOld => panic!("too old"),
        }
    }

    #[test]
    fn reads_after_an_offset_and_moves_past_empty_entries() {
        let mut j = MetadataJournal::new(3);
        j.applied(4, Some(batch(1)));
        j.applied(5, None);
        j.applied(6, Some(batch(2)));
        j.applied(7, None);
        assert_eq!(indexes(&j.read_after(3)), (vec![4, 6], 7));
        assert_eq!(indexes(&j.read_after(4)), (vec![6], 7));
        assert_eq!(indexes(&j.read_after(6)), (vec![], 7));
        assert_eq!(indexes(&j.read_after(7)), (vec![], 7));
        assert_eq!(j.read_after(2), JournalRead::TooOld);
    }

    #[test]
    fn the_bound_drops_the_oldest_batches() {
        let mut j = MetadataJournal::with_limit(0, 5);
        for index in 1..=4 {
            j.applied(index, Some(batch(2)));
        }
        // 8 records > 5: batches 1 and 2 dropped; only readers at ≥ 2 are served.
        assert_eq!(j.read_after(1), JournalRead::TooOld);
        assert_eq!(indexes(&j.read_after(2)), (vec![3, 4], 4));
        j.reset(10);
        assert_eq!(j.read_after(9), JournalRead::TooOld);
        assert_eq!(indexes(&j.read_after(10)), (vec![], 10));
    }

    #[test]
    fn one_fetch_is_bounded_but_always_makes_progress() {
        let mut j = MetadataJournal::new(0);
        j.applied(1, Some(batch(MAX_FETCH_RECORDS)));
        j.applied(2, Some(batch(1)));
        j.applied(3, None);
        assert_eq!(indexes(&j.read_after(0)), (vec![1], 1));
        assert_eq!(indexes(&j.read_after(1)), (vec![2], 3));
    }
}
