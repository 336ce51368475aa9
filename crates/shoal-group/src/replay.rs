//! `OffsetsReplay`: a `__consumer_offsets` partition read back into groups and offsets.
//!
//! The loader feeds it every batch from the log start in offset order; it keeps only the latest
//! value per key (a later record replaces an earlier one, a tombstone deletes), so its memory
//! is bounded by the live state, not by how much history the log still holds.
//!
//! Transactions (TxnOffsetCommit): the offset records of a producer's transactional batch are
//! kept pending for that producer ([`OffsetsReplay::begin_batch`]) until its marker follows
//! ([`OffsetsReplay::end_txn`]): a commit makes them the group's offsets unless a later record
//! holds the partition, an abort drops them. Those still undecided at the end of the log stay
//! pending in the loaded shard, for the marker still to come.

use std::collections::{BTreeMap, HashMap};

use crate::consumer::group::{ConsumerGroup, ConsumerRecord};
use crate::consumer::records::{
    decode_current_assignment, decode_group_epoch, decode_member_metadata,
    decode_target_assignment, decode_target_assignment_epoch,
};
use crate::records::{
    GroupValue, OffsetValue, RecordError, RecordKey, decode_group_value, decode_key,
    decode_offset_value,
};
use crate::txn_offsets::PendingTxnOffsets;

/// A committed (or pending) offset and the log offset of its record in the partition: of two
/// commits of one partition, the later record wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOffset {
    pub value: OffsetValue,
    pub record_offset: i64,
}

pub(crate) type Offsets = BTreeMap<(String, i32), StoredOffset>;

#[derive(Debug, Default)]
pub struct OffsetsReplay {
    /// `None` = a tombstone seen after the group's last value.
    pub(crate) groups: HashMap<String, Option<GroupValue>>,
    /// KIP-848 consumer groups, their records replayed in log order as they were applied.
    pub(crate) consumer_groups: HashMap<String, ConsumerGroup>,
    pub(crate) offsets: HashMap<String, Offsets>,
    pub(crate) pending: PendingTxnOffsets,
    /// The producer of the batch being replayed, when it is transactional.
    batch_producer: Option<i64>,
    /// Log offset of the next record when the caller gives none ([`OffsetsReplay::apply`]).
    next_offset: i64,
    pub(crate) records: usize,
    pub(crate) skipped: usize,
}

impl OffsetsReplay {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records replayed so far.
    pub fn records(&self) -> usize {
        self.records
    }

    /// The records that follow belong to a batch of `producer_id` (-1 = none), transactional
    /// or not. Offset records of a transactional batch wait for the producer's marker.
    pub fn begin_batch(&mut self, producer_id: i64, transactional: bool) {
        self.batch_producer = (transactional && producer_id >= 0).then_some(producer_id);
    }

    /// A transaction marker of `producer_id`: its pending offsets are committed or dropped.
    pub fn end_txn(&mut self, producer_id: i64, commit: bool) {
        let done = self
            .pending
            .complete(producer_id, commit, i64::MAX, &mut self.offsets);
        if done.superseded > 0 {
            tracing::debug!(
                producer_id,
                superseded = done.superseded,
                "replayed transactional offsets older than a later commit"
            );
        }
    }

    /// Producers whose transactional offsets are still undecided.
    pub fn pending_producers(&self) -> usize {
        self.pending.producers()
    }

    /// One record, right after the previous one (see [`OffsetsReplay::apply_at`]).
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.apply_at(self.next_offset, key, value);
    }

    /// One record at log offset `offset` (`value` `None` = tombstone). Records that do not
    /// decode are counted and skipped, as Kafka's loader does: one bad record must not cost
    /// every group.
    pub fn apply_at(&mut self, offset: i64, key: &[u8], value: Option<&[u8]>) {
        self.records += 1;
        self.next_offset = self.next_offset.max(offset.saturating_add(1));
        let key = match decode_key(key) {
            Ok(Some(key)) => key,
            Ok(None) => return,
            Err(e) => {
                self.skip("key", &e.to_string());
                return;
            }
        };
        match key {
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => match value.map(decode_offset_value) {
                None => {
                    let key = (topic, partition);
                    if let Some(o) = self.offsets.get_mut(&group) {
                        o.remove(&key);
                    }
                    self.pending.remove_partition(&group, &key);
                }
                Some(Ok(value)) => {
                    let stored = StoredOffset {
                        value,
                        record_offset: offset,
                    };
                    match self.batch_producer {
                        Some(producer_id) => {
                            self.pending
                                .add(producer_id, &group, (topic, partition), stored)
                        }
                        None => {
                            self.offsets
                                .entry(group)
                                .or_default()
                                .insert((topic, partition), stored);
                        }
                    }
                }
                Some(Err(e)) => self.skip("offset", &e.to_string()),
            },
            RecordKey::Group { group } => match value.map(decode_group_value) {
                None => {
                    self.offsets.remove(&group);
                    self.pending.remove_group(&group);
                    self.groups.insert(group, None);
                }
                Some(Ok(v)) => {
                    // A classic group written after a consumer group of that id replaced it.
                    self.consumer_groups.remove(&group);
                    self.groups.insert(group, Some(v));
                }
                Some(Err(e)) => self.skip("group", &e.to_string()),
            },
            key => match consumer_record(&key, value) {
                Ok(Some(record)) => self.apply_consumer(key.group(), &record),
                Ok(None) => {}
                Err(e) => self.skip("consumer group", &e.to_string()),
            },
        }
    }

    fn apply_consumer(&mut self, group: &str, record: &ConsumerRecord) {
        // An empty classic group that became a consumer group keeps its old record (a classic
        // tombstone would take its offsets): the later consumer record supersedes it.
        self.groups.remove(group);
        if let ConsumerRecord::GroupEpoch(None) = record {
            // The group was deleted.
            self.consumer_groups.remove(group);
            return;
        }
        self.consumer_groups
            .entry(group.to_string())
            .or_insert_with(|| ConsumerGroup::new(group))
            .replay(record);
    }

    /// Records skipped so far (undecodable records, and every record of an unreadable batch).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// A whole batch whose records cannot be read (its compressed payload or record framing is
    /// junk): skipped and counted like an undecodable record, so the partition still loads.
    pub fn skip_batch(&mut self, base_offset: i64, record_count: i32, error: &str) {
        let records = usize::try_from(record_count.max(1)).unwrap_or(1);
        self.records += records;
        self.skipped += records;
        tracing::warn!(
            base_offset,
            record_count,
            error,
            "skipped an unreadable __consumer_offsets batch"
        );
    }

    fn skip(&mut self, what: &str, error: &str) {
        self.skipped += 1;
        tracing::warn!(
            what,
            error,
            "skipped an undecodable __consumer_offsets record"
        );
    }
}

/// A KIP-848 record decoded (`None` for a key that is not one).
fn consumer_record(
    key: &RecordKey,
    value: Option<&[u8]>,
) -> Result<Option<ConsumerRecord>, RecordError> {
    Ok(Some(match key {
        RecordKey::ConsumerGroup { .. } => {
            ConsumerRecord::GroupEpoch(value.map(decode_group_epoch).transpose()?)
        }
        RecordKey::ConsumerPartitionMetadata { .. } => ConsumerRecord::PartitionMetadata,
        RecordKey::ConsumerMember { member, .. } => ConsumerRecord::Member(
            member.clone(),
            value.map(decode_member_metadata).transpose()?,
        ),
        RecordKey::ConsumerTargetAssignmentMember { member, .. } => ConsumerRecord::TargetMember(
            member.clone(),
            value.map(decode_target_assignment).transpose()?,
        ),
        RecordKey::ConsumerTargetAssignmentMetadata { .. } => ConsumerRecord::TargetEpoch(
            value
                .map(decode_target_assignment_epoch)
                .transpose()?
                .map(|v| v.assignment_epoch),
        ),
        RecordKey::ConsumerCurrentAssignment { member, .. } => ConsumerRecord::Current(
            member.clone(),
            value.map(decode_current_assignment).transpose()?,
        ),
        RecordKey::Offset { .. } | RecordKey::Group { .. } => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{encode_key, encode_offset_value};

    fn record(group: &str, partition: i32, offset: i64) -> (bytes::Bytes, bytes::Bytes) {
        let key = RecordKey::Offset {
            group: group.into(),
            topic: "t".into(),
            partition,
        };
        let value = OffsetValue {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 0,
            expire_timestamp_ms: None,
        };
        (encode_key(&key), encode_offset_value(&value))
    }

    fn tombstone(group: &str, partition: i32) -> bytes::Bytes {
        encode_key(&RecordKey::Offset {
            group: group.into(),
            topic: "t".into(),
            partition,
        })
    }

    fn committed(replay: &OffsetsReplay, group: &str, partition: i32) -> Option<i64> {
        replay
            .offsets
            .get(group)
            .and_then(|o| o.get(&("t".to_string(), partition)))
            .map(|s| s.value.offset)
    }

    /// One step of a partition: a batch (producer, transactional, records as (partition,
    /// offset or tombstone)), or a marker (producer, commit).
    enum Step {
        Batch(i64, bool, Vec<(i32, Option<i64>)>),
        Marker(i64, bool),
    }

    fn replay(steps: &[Step]) -> OffsetsReplay {
        let mut r = OffsetsReplay::new();
        let mut at = 0i64;
        for step in steps {
            match step {
                Step::Batch(producer, transactional, records) => {
                    r.begin_batch(*producer, *transactional);
                    for (partition, offset) in records {
                        match offset {
                            Some(o) => {
                                let (k, v) = record("g", *partition, *o);
                                r.apply_at(at, &k, Some(&v));
                            }
                            None => r.apply_at(at, &tombstone("g", *partition), None),
                        }
                        at += 1;
                    }
                }
                Step::Marker(producer, commit) => {
                    r.end_txn(*producer, *commit);
                    at += 1;
                }
            }
        }
        r
    }

    #[test]
    fn transactional_batches_wait_for_their_marker() {
        use Step::*;
        // (steps, committed offset of partition 0 after, still pending, why)
        let cases: Vec<(Vec<Step>, Option<i64>, bool, &str)> = vec![
            (
                vec![Batch(7, true, vec![(0, Some(10))])],
                None,
                true,
                "undecided stays pending",
            ),
            (
                vec![Batch(7, true, vec![(0, Some(10))]), Marker(7, true)],
                Some(10),
                false,
                "a commit marker materializes",
            ),
            (
                vec![
                    Batch(-1, false, vec![(0, Some(5))]),
                    Batch(7, true, vec![(0, Some(10))]),
                    Marker(7, false),
                ],
                Some(5),
                false,
                "an abort marker drops",
            ),
            (
                vec![
                    Batch(7, true, vec![(0, Some(10))]),
                    Batch(-1, false, vec![(0, Some(20))]),
                    Marker(7, true),
                ],
                Some(20),
                false,
                "a later plain commit wins over the committed transaction",
            ),
            (
                vec![
                    Batch(7, true, vec![(0, Some(10))]),
                    Batch(-1, false, vec![(0, None)]),
                    Marker(7, true),
                ],
                None,
                false,
                "a tombstone drops the pending offset",
            ),
            (
                vec![Batch(7, true, vec![(0, Some(10))]), Marker(8, true)],
                None,
                true,
                "another producer's marker decides nothing",
            ),
            (
                vec![Batch(7, false, vec![(0, Some(10))])],
                Some(10),
                false,
                "an idempotent, non-transactional batch applies at once",
            ),
        ];
        for (steps, after, pending, why) in cases {
            let r = replay(&steps);
            assert_eq!(committed(&r, "g", 0), after, "{why}");
            assert_eq!(
                r.pending.is_pending("g", &("t".to_string(), 0)),
                pending,
                "{why}"
            );
        }
    }
}
