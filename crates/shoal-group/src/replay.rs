//! `OffsetsReplay`: a `__consumer_offsets` partition read back into groups and offsets.
//!
//! The loader feeds it every record from the log start in offset order; it keeps only the
//! latest value per key (a later record replaces an earlier one, a tombstone deletes), so its
//! memory is bounded by the live state, not by how much history the log still holds.

use std::collections::{BTreeMap, HashMap};

use crate::records::{
    GroupValue, OffsetValue, RecordKey, decode_group_value, decode_key, decode_offset_value,
};

pub(crate) type Offsets = BTreeMap<(String, i32), OffsetValue>;

#[derive(Debug, Default)]
pub struct OffsetsReplay {
    /// `None` = a tombstone seen after the group's last value.
    pub(crate) groups: HashMap<String, Option<GroupValue>>,
    pub(crate) offsets: HashMap<String, Offsets>,
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

    /// One record (`value` `None` = tombstone). Records that do not decode are counted and
    /// skipped, as Kafka's loader does: one bad record must not cost every group.
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.records += 1;
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
                    if let Some(o) = self.offsets.get_mut(&group) {
                        o.remove(&(topic, partition));
                    }
                }
                Some(Ok(v)) => {
                    self.offsets
                        .entry(group)
                        .or_default()
                        .insert((topic, partition), v);
                }
                Some(Err(e)) => self.skip("offset", &e.to_string()),
            },
            RecordKey::Group { group } => match value.map(decode_group_value) {
                None => {
                    self.offsets.remove(&group);
                    self.groups.insert(group, None);
                }
                Some(Ok(v)) => {
                    self.groups.insert(group, Some(v));
                }
                Some(Err(e)) => self.skip("group", &e.to_string()),
            },
        }
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
