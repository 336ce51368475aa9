//! Idempotent-producer sequence checks for one partition (Kafka's ProducerStateManager).
//!
//! An idempotent producer numbers its batches per partition; a retry of a batch whose first
//! attempt was written must not be written again, and a gap means a batch was lost in between.
//! The rules (Kafka's `ProducerAppendInfo.checkSequence` and its duplicate check over the last
//! five batches) are pure decisions over a bounded table, rebuilt from the log on open.
//!
//! Bounds: each producer keeps `BATCHES_PER_PRODUCER` batches (librdkafka and the Java client
//! keep at most five in flight), and the table keeps `MAX_PRODUCERS` producers, evicting the one
//! idle longest. An evicted or never-seen producer is "unknown", and as in Kafka an unknown
//! producer's first batch is accepted at any sequence.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

pub const BATCHES_PER_PRODUCER: usize = 5;
pub const MAX_PRODUCERS: usize = 50_000;

/// Sequence numbers and offsets of one written batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
    last_write_ms: i64,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    Append,
    /// Already written: answer success with the original offsets, write nothing.
    Duplicate(BatchMetadata),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    /// INVALID_PRODUCER_EPOCH: a newer epoch of this producer id has written here.
    #[error("producer epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch { current: i16, got: i16 },
    /// OUT_OF_ORDER_SEQUENCE_NUMBER: a gap (or a new epoch not starting at 0).
    #[error("out of order sequence number: expected {expected}, got {got}")]
    OutOfOrderSequence { expected: i32, got: i32 },
}

/// Sequences wrap from i32::MAX to 0, as in Kafka.
fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX { 0 } else { seq + 1 }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStateTable {
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> Result<SequenceCheck, SequenceError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if epoch < entry.epoch {
            return Err(SequenceError::InvalidProducerEpoch {
                current: entry.epoch,
                got: epoch,
            });
        }
        if epoch > entry.epoch {
            return if first_seq == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(SequenceError::OutOfOrderSequence {
                    expected: 0,
                    got: first_seq,
                })
            };
        }
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return Ok(SequenceCheck::Duplicate(*dup));
        }
        match entry.batches.back() {
            Some(last) if next_seq(last.last_seq) != first_seq => {
                Err(SequenceError::OutOfOrderSequence {
                    expected: next_seq(last.last_seq),
                    got: first_seq,
                })
            }
            _ => Ok(SequenceCheck::Append),
        }
    }

    /// Records a written batch (from an append, or from the log when rebuilding).
    pub fn record(&mut self, producer_id: i64, epoch: i16, batch: BatchMetadata, now_ms: i64) {
        if !self.producers.contains_key(&producer_id) && self.producers.len() >= MAX_PRODUCERS {
            self.evict_idlest();
        }
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch,
                batches: VecDeque::with_capacity(BATCHES_PER_PRODUCER),
                last_write_ms: now_ms,
            });
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
        entry.batches.push_back(batch);
        entry.last_write_ms = now_ms;
        debug_assert!(entry.batches.len() <= BATCHES_PER_PRODUCER);
    }

    /// Forgets batches at or above `offset` (the log was truncated there). A producer left with
    /// no batch becomes unknown, so its next batch is accepted at any sequence, as after an
    /// eviction.
    pub fn truncate_to(&mut self, offset: i64) {
        self.producers.retain(|_, entry| {
            entry.batches.retain(|b| b.last_offset < offset);
            !entry.batches.is_empty()
        });
    }

    fn evict_idlest(&mut self) {
        if let Some(id) = self
            .producers
            .iter()
            .min_by_key(|(_, e)| e.last_write_ms)
            .map(|(id, _)| *id)
        {
            self.producers.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(first_seq: i32, last_seq: i32, first_offset: i64) -> BatchMetadata {
        BatchMetadata {
            first_seq,
            last_seq,
            first_offset,
            last_offset: first_offset + i64::from(last_seq - first_seq),
        }
    }

    #[test]
    fn truncation_forgets_the_batches_it_removed() {
        let mut t = ProducerStateTable::default();
        t.record(7, 0, meta(0, 9, 100), 1);
        t.record(7, 0, meta(10, 19, 110), 1);
        t.record(8, 0, meta(0, 4, 120), 1);
        t.truncate_to(110);
        // Producer 7 continues after its surviving batch; the removed one may be written again.
        assert_eq!(t.check(7, 0, 10, 19), Ok(SequenceCheck::Append));
        assert!(matches!(
            t.check(7, 0, 0, 9),
            Ok(SequenceCheck::Duplicate(_))
        ));
        // Producer 8 lost everything: unknown.
        assert_eq!(t.len(), 1);
        assert_eq!(t.check(8, 0, 3, 4), Ok(SequenceCheck::Append));
    }

    #[test]
    fn unknown_producer_is_accepted_at_any_sequence() {
        let t = ProducerStateTable::default();
        assert_eq!(t.check(7, 0, 42, 44), Ok(SequenceCheck::Append));
    }

    #[test]
    fn in_order_batches_append_and_gaps_are_refused() {
        let mut t = ProducerStateTable::default();
        t.record(7, 0, meta(0, 9, 100), 1);
        assert_eq!(t.check(7, 0, 10, 19), Ok(SequenceCheck::Append));
        assert_eq!(
            t.check(7, 0, 11, 19),
            Err(SequenceError::OutOfOrderSequence {
                expected: 10,
                got: 11
            })
        );
        assert_eq!(
            t.check(7, 0, 5, 9),
            Err(SequenceError::OutOfOrderSequence {
                expected: 10,
                got: 5
            })
        );
    }

    #[test]
    fn retries_of_the_last_five_batches_are_duplicates() {
        let mut t = ProducerStateTable::default();
        for i in 0..6 {
            t.record(7, 0, meta(i * 10, i * 10 + 9, 1000 + i64::from(i) * 10), 1);
        }
        assert_eq!(
            t.check(7, 0, 50, 59),
            Ok(SequenceCheck::Duplicate(meta(50, 59, 1050)))
        );
        assert_eq!(
            t.check(7, 0, 10, 19),
            Ok(SequenceCheck::Duplicate(meta(10, 19, 1010)))
        );
        // The sixth-newest batch has been forgotten: it is no longer recognised.
        assert!(matches!(
            t.check(7, 0, 0, 9),
            Err(SequenceError::OutOfOrderSequence { .. })
        ));
    }

    #[test]
    fn epochs_fence_and_reset() {
        let mut t = ProducerStateTable::default();
        t.record(7, 3, meta(0, 4, 0), 1);
        assert_eq!(
            t.check(7, 2, 5, 5),
            Err(SequenceError::InvalidProducerEpoch { current: 3, got: 2 })
        );
        assert_eq!(t.check(7, 4, 0, 3), Ok(SequenceCheck::Append));
        assert_eq!(
            t.check(7, 4, 5, 6),
            Err(SequenceError::OutOfOrderSequence {
                expected: 0,
                got: 5
            })
        );
        t.record(7, 4, meta(0, 3, 10), 2);
        assert_eq!(t.check(7, 4, 4, 4), Ok(SequenceCheck::Append));
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        let mut t = ProducerStateTable::default();
        t.record(7, 0, meta(i32::MAX - 1, i32::MAX, 0), 1);
        assert_eq!(t.check(7, 0, 0, 3), Ok(SequenceCheck::Append));
    }

    #[test]
    fn table_is_bounded_and_evicts_the_idlest() {
        let mut t = ProducerStateTable::default();
        for id in 0..MAX_PRODUCERS as i64 {
            t.record(id, 0, meta(0, 0, id), 10 + id);
        }
        t.record(-5, 0, meta(0, 0, 0), 1_000_000);
        assert_eq!(t.len(), MAX_PRODUCERS);
        // Producer 0 was idle longest and is gone, so it is unknown again.
        assert_eq!(t.check(0, 0, 17, 17), Ok(SequenceCheck::Append));
        assert!(matches!(
            t.check(1, 0, 17, 17),
            Err(SequenceError::OutOfOrderSequence { .. })
        ));
    }
}
