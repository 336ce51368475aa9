//! Sparse map from offset to file position within one segment (Kafka's `OffsetIndex`).
//!
//! An entry `(L, P)` says "the batch starting at byte P has last offset L". Entries are added
//! at most every `index.interval.bytes` of log, so the batch holding an offset is found by
//! taking the last entry with `L <= offset` and scanning forward a few batch headers. Offsets
//! are stored relative to the segment's base offset as u32, positions as u32 (segments stay
//! below 4 GiB). Both columns strictly increase.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::OFFSET_INDEX_ENTRY_BYTES;
use crate::error::Result;
use crate::index_file::{IndexEntry, IndexFile};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OffsetEntry {
    relative_offset: u32,
    position: u32,
}

impl IndexEntry for OffsetEntry {
    const SIZE_BYTES: usize = OFFSET_INDEX_ENTRY_BYTES;

    fn encode_into(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> Self {
        let mut relative_offset = [0u8; 4];
        let mut position = [0u8; 4];
        relative_offset.copy_from_slice(&bytes[..4]);
        position.copy_from_slice(&bytes[4..8]);
        Self {
            relative_offset: u32::from_be_bytes(relative_offset),
            position: u32::from_be_bytes(position),
        }
    }
}

/// An absolute offset and the file position of the batch it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OffsetPosition {
    pub(crate) offset: i64,
    pub(crate) position: u32,
}

pub(crate) struct OffsetIndex {
    base_offset: i64,
    file: IndexFile<OffsetEntry>,
}

impl OffsetIndex {
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

    /// The last entry at or below `target_offset`, or the segment start.
    pub(crate) fn lookup(&self, target_offset: i64) -> Result<OffsetPosition> {
        let start = OffsetPosition {
            offset: self.base_offset,
            position: 0,
        };
        let Some(relative) = target_offset
            .checked_sub(self.base_offset)
            .filter(|r| *r >= 0)
        else {
            return Ok(start);
        };
        let relative = u32::try_from(relative).unwrap_or(u32::MAX);
        match self
            .file
            .partition_point(|e| e.relative_offset <= relative)?
        {
            0 => Ok(start),
            n => Ok(self.absolute(self.file.entry(n - 1)?)),
        }
    }

    /// Adds `(last_offset, position)`; dropped if the index is full or the offset does not
    /// fit (the roll policy prevents both, and a missing entry only lengthens a scan).
    pub(crate) fn append(&mut self, last_offset: i64, position: u64) {
        let (Ok(relative_offset), Ok(position)) = (
            u32::try_from(last_offset - self.base_offset),
            u32::try_from(position),
        ) else {
            debug_assert!(
                false,
                "({last_offset}, {position}) does not fit segment {}",
                self.base_offset
            );
            return;
        };
        self.file.append(
            OffsetEntry {
                relative_offset,
                position,
            },
            false,
        );
    }

    pub(crate) fn last_entry(&self) -> Result<Option<OffsetPosition>> {
        Ok(self.file.last()?.map(|e| self.absolute(e)))
    }

    /// Drops entries pointing at or past `log_size_bytes` (the log was truncated there).
    pub(crate) fn truncate_to_size(&mut self, log_size_bytes: u64) -> Result<()> {
        let keep = self
            .file
            .partition_point(|e| u64::from(e.position) < log_size_bytes)?;
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

    fn absolute(&self, entry: OffsetEntry) -> OffsetPosition {
        OffsetPosition {
            offset: self.base_offset + i64::from(entry.relative_offset),
            position: entry.position,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_floor_entry_or_the_segment_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = OffsetIndex::create(dir.path().join("a.index"), 1_000, 100).unwrap();
        index.append(1_009, 500);
        index.append(1_019, 1_000);
        index.append(1_029, 1_500);
        let at = |offset| index.lookup(offset).unwrap();
        assert_eq!(
            at(999),
            OffsetPosition {
                offset: 1_000,
                position: 0
            }
        );
        assert_eq!(
            at(1_005),
            OffsetPosition {
                offset: 1_000,
                position: 0
            }
        );
        assert_eq!(
            at(1_009),
            OffsetPosition {
                offset: 1_009,
                position: 500
            }
        );
        assert_eq!(
            at(1_025),
            OffsetPosition {
                offset: 1_019,
                position: 1_000
            }
        );
        assert_eq!(
            at(i64::MAX),
            OffsetPosition {
                offset: 1_029,
                position: 1_500
            }
        );
    }

    #[test]
    fn truncate_to_size_drops_entries_past_the_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = OffsetIndex::create(dir.path().join("a.index"), 0, 100).unwrap();
        index.append(9, 100);
        index.append(19, 200);
        index.append(29, 300);
        index.truncate_to_size(200).unwrap();
        assert_eq!(
            index.last_entry().unwrap(),
            Some(OffsetPosition {
                offset: 9,
                position: 100
            })
        );
    }
}
