//! Sparse map from timestamp to offset within one segment (Kafka's `TimeIndex`).
//!
//! An entry `(T, O)` says "the largest timestamp in the segment up to offset O is T"; one is
//! added next to an offset-index entry only when the running maximum grew, so timestamps
//! strictly increase even when producers' clocks do not. A segment's last entry is its largest
//! timestamp (an entry is forced at seal), which is what time retention and ListOffsets
//! MAX_TIMESTAMP read without scanning the log.

use std::path::PathBuf;
use std::sync::Arc;

use crate::batch::NO_TIMESTAMP;
use crate::config::TIME_INDEX_ENTRY_BYTES;
use crate::error::Result;
use crate::index_file::{IndexEntry, IndexFile};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TimeEntry {
    timestamp_ms: i64,
    relative_offset: u32,
}

impl IndexEntry for TimeEntry {
    const SIZE_BYTES: usize = TIME_INDEX_ENTRY_BYTES;

    fn encode_into(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> Self {
        let mut timestamp_ms = [0u8; 8];
        let mut relative_offset = [0u8; 4];
        timestamp_ms.copy_from_slice(&bytes[..8]);
        relative_offset.copy_from_slice(&bytes[8..12]);
        Self {
            timestamp_ms: i64::from_be_bytes(timestamp_ms),
            relative_offset: u32::from_be_bytes(relative_offset),
        }
    }
}

/// A timestamp and the (absolute) offset of the batch that carried it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimestampOffset {
    pub(crate) timestamp_ms: i64,
    pub(crate) offset: i64,
}

pub(crate) struct TimeIndex {
    base_offset: i64,
    file: IndexFile<TimeEntry>,
}

impl TimeIndex {
    pub(crate) fn create(path: PathBuf, base_offset: i64, max_entries: usize) -> Result<Self> {
        Ok(Self {
            base_offset,
            file: IndexFile::create(path, max_entries)?,
        })
    }

    pub(crate) fn open(path: PathBuf, base_offset: i64, max_entries: usize) -> Result<Self> {
        Ok(Self {
            base_offset,
            file: IndexFile::open(path, max_entries)?,
        })
    }

    /// The last entry whose timestamp is strictly below `timestamp_ms`: every batch up to its
    /// offset is older than `timestamp_ms`, so a search for the first batch at or after
    /// `timestamp_ms` may start there.
    pub(crate) fn lookup_before(&self, timestamp_ms: i64) -> Result<Option<TimestampOffset>> {
        match self
            .file
            .partition_point(|e| e.timestamp_ms < timestamp_ms)?
        {
            0 => Ok(None),
            n => Ok(Some(self.absolute(self.file.entry(n - 1)?))),
        }
    }

    /// Adds `(timestamp_ms, offset)` if the timestamp is newer than the last entry's.
    /// `at_seal` lets the segment's final entry use the spare slot of a full index.
    pub(crate) fn maybe_append(
        &mut self,
        timestamp_ms: i64,
        offset: i64,
        at_seal: bool,
    ) -> Result<()> {
        let last_timestamp_ms = self.file.last()?.map_or(NO_TIMESTAMP, |e| e.timestamp_ms);
        if timestamp_ms <= last_timestamp_ms {
            return Ok(());
        }
        let Ok(relative_offset) = u32::try_from(offset - self.base_offset) else {
            debug_assert!(
                false,
                "offset {offset} is outside segment {}",
                self.base_offset
            );
            return Ok(());
        };
        self.file.append(
            TimeEntry {
                timestamp_ms,
                relative_offset,
            },
            at_seal,
        );
        Ok(())
    }

    pub(crate) fn last_entry(&self) -> Result<Option<TimestampOffset>> {
        Ok(self.file.last()?.map(|e| self.absolute(e)))
    }

    /// Drops entries for offsets at or after `offset` (the log was truncated there).
    pub(crate) fn truncate_to_offset(&mut self, offset: i64) -> Result<()> {
        let base_offset = self.base_offset;
        let keep = self
            .file
            .partition_point(|e| base_offset + i64::from(e.relative_offset) < offset)?;
        self.file.truncate(keep)
    }

    pub(crate) fn storage(&self) -> &IndexFile<impl IndexEntry> {
        &self.file
    }

    pub(crate) fn storage_mut(&mut self) -> &mut IndexFile<impl IndexEntry> {
        &mut self.file
    }

    pub(crate) fn file(&self) -> Arc<std::fs::File> {
        Arc::clone(self.file.file())
    }

    fn absolute(&self, entry: TimeEntry) -> TimestampOffset {
        TimestampOffset {
            timestamp_ms: entry.timestamp_ms,
            offset: self.base_offset + i64::from(entry.relative_offset),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_growing_timestamps_are_indexed_and_lookup_is_strictly_before() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TimeIndex::create(dir.path().join("a.timeindex"), 100, 100).unwrap();
        index.maybe_append(NO_TIMESTAMP, 100, false).unwrap();
        index.maybe_append(1_000, 104, false).unwrap();
        index.maybe_append(900, 110, false).unwrap();
        index.maybe_append(1_000, 112, false).unwrap();
        index.maybe_append(2_000, 120, false).unwrap();
        assert_eq!(index.storage().len(), 2);
        assert_eq!(index.lookup_before(1_000).unwrap(), None);
        assert_eq!(
            index.lookup_before(1_001).unwrap(),
            Some(TimestampOffset {
                timestamp_ms: 1_000,
                offset: 104
            })
        );
        assert_eq!(
            index.lookup_before(i64::MAX).unwrap(),
            Some(TimestampOffset {
                timestamp_ms: 2_000,
                offset: 120
            })
        );
        index.truncate_to_offset(120).unwrap();
        assert_eq!(
            index.last_entry().unwrap(),
            Some(TimestampOffset {
                timestamp_ms: 1_000,
                offset: 104
            })
        );
    }
}
