//! Leader epoch → start offset history (Kafka's `LeaderEpochFileCache`, KIP-101/KIP-279).
//!
//! Each entry says "leader epoch E wrote its first batch at offset S". A follower that starts
//! following a new leader asks for the end offset of its latest epoch and truncates to the
//! divergence point, which is what keeps replicas from silently disagreeing after a leader
//! change (safety rule 3). Invariant: epochs and start offsets both strictly increase; `assign`
//! removes entries that would break it, as Kafka does. Every change is written to
//! `leader-epoch-checkpoint` atomically before the call returns.

use std::path::{Path, PathBuf};

use crate::checkpoint::{read_bounded, set_aside_damaged, write_atomically};
use crate::error::{LogError, Result};

/// File name inside the partition directory.
pub(crate) const LEADER_EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
const VERSION: &str = "0";
/// Entries kept; the oldest are dropped beyond it (each entry is one leader change).
pub(crate) const MAX_EPOCH_ENTRIES: usize = 65_536;
/// Longest line is "2147483647 9223372036854775807\n" = 31 bytes; leave room for the header.
const MAX_FILE_BYTES: u64 = (MAX_EPOCH_ENTRIES as u64 + 2) * 32;

/// One leader epoch and the offset of its first batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

pub(crate) struct LeaderEpochFileCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochFileCache {
    /// Loads the checkpoint in `dir`: `None` if there is none, or if it is damaged (then it is
    /// set aside: the caller rebuilds the cache from the log's batch headers).
    pub(crate) fn load(dir: &Path) -> Result<Option<Self>> {
        let mut cache = Self::empty(dir);
        let text = match read_bounded(&cache.path, MAX_FILE_BYTES) {
            Ok(Some(text)) => text,
            Ok(None) => return Ok(None),
            Err(LogError::CorruptCheckpoint { path, reason }) => {
                set_aside_damaged(&path, &reason)?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let parsed = match parse(&text) {
            Ok(parsed) => parsed,
            Err(reason) => {
                set_aside_damaged(&cache.path, &reason)?;
                return Ok(None);
            }
        };
        // Replaying through assign() restores the invariant even if the file broke it.
        for entry in parsed {
            cache.assign_in_memory(entry);
        }
        Ok(Some(cache))
    }

    /// A cache with no entries that will persist to `dir` (nothing is written yet).
    pub(crate) fn empty(dir: &Path) -> Self {
        Self {
            path: dir.join(LEADER_EPOCH_CHECKPOINT_FILE),
            entries: Vec::new(),
        }
    }

    /// Rebuilds the cache from `(partition_leader_epoch, base_offset)` of every batch in the
    /// log, in offset order, as Kafka's recovery does: each epoch starts at its first batch.
    /// Persisted once at the end.
    pub(crate) fn rebuild(&mut self, batches: impl IntoIterator<Item = (i32, i64)>) -> Result<()> {
        self.entries.clear();
        for (epoch, start_offset) in batches {
            if epoch >= 0 && start_offset >= 0 {
                self.assign_in_memory(EpochEntry {
                    epoch,
                    start_offset,
                });
            }
        }
        self.persist()
    }

    pub(crate) fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`. A no-op if that is already the latest
    /// epoch (at the same or an earlier offset). Negative values are ignored: they mean "no
    /// epoch" in a batch header.
    pub(crate) fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        if epoch < 0 || start_offset < 0 {
            return Ok(());
        }
        if self.assign_in_memory(EpochEntry {
            epoch,
            start_offset,
        }) {
            self.persist()?;
        }
        Ok(())
    }

    /// Kafka's `endOffsetFor`: the largest epoch <= `requested_epoch` and the start offset of
    /// the next larger epoch (or `log_end_offset` if `requested_epoch` is the latest). `None`
    /// is UNDEFINED (-1, -1): an undefined request, an empty cache, or an epoch newer than
    /// every entry. An epoch older than every entry answers `(requested_epoch, first start)`
    /// exactly as Kafka does, so the follower truncates to where the known history begins.
    pub(crate) fn end_offset_for(
        &self,
        requested_epoch: i32,
        log_end_offset: i64,
    ) -> Option<(i32, i64)> {
        if requested_epoch < 0 {
            return None;
        }
        if self.latest_epoch() == Some(requested_epoch) {
            return Some((requested_epoch, log_end_offset));
        }
        let higher_at = self.entries.partition_point(|e| e.epoch <= requested_epoch);
        let higher = self.entries.get(higher_at)?;
        match higher_at.checked_sub(1).and_then(|i| self.entries.get(i)) {
            None => Some((requested_epoch, higher.start_offset)),
            Some(floor) => Some((floor.epoch, higher.start_offset)),
        }
    }

    /// Removes entries starting at or after `end_offset` (the log was truncated there).
    pub(crate) fn truncate_from_end(&mut self, end_offset: i64) -> Result<()> {
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.persist()?;
        }
        Ok(())
    }

    /// Drops entries wholly below the new log start offset; the last of them is kept and moved
    /// up to `start_offset`, since its epoch still owns the first offsets of the log.
    pub(crate) fn truncate_from_start(&mut self, start_offset: i64) -> Result<()> {
        let below = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        if below == 0 {
            return Ok(());
        }
        let owner = self.entries[below - 1].epoch;
        let moved = EpochEntry {
            epoch: owner,
            start_offset,
        };
        if below == 1 && self.entries[0] == moved {
            return Ok(());
        }
        self.entries.drain(..below - 1);
        self.entries[0] = moved;
        self.persist()
    }

    /// Forgets every entry (the log was emptied and restarted at a new offset).
    pub(crate) fn clear(&mut self) -> Result<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        self.entries.clear();
        self.persist()
    }

    /// Returns true if the cache changed.
    fn assign_in_memory(&mut self, entry: EpochEntry) -> bool {
        if let Some(latest) = self.entries.last()
            && latest.epoch == entry.epoch
            && latest.start_offset <= entry.start_offset
        {
            return false;
        }
        // Kafka's maybeTruncateNonMonotonicEntries: a new entry wins over any entry with an
        // epoch or start offset at or above it.
        let keep = self
            .entries
            .partition_point(|e| e.epoch < entry.epoch && e.start_offset < entry.start_offset);
        if keep < self.entries.len() {
            tracing::warn!(
                path = %self.path.display(),
                epoch = entry.epoch,
                start_offset = entry.start_offset,
                removed = ?&self.entries[keep..],
                "leader epoch entries removed to keep the cache monotonic"
            );
            self.entries.truncate(keep);
        }
        self.entries.push(entry);
        if self.entries.len() > MAX_EPOCH_ENTRIES {
            self.entries.remove(0);
        }
        true
    }

    fn persist(&self) -> Result<()> {
        let mut text = format!("{VERSION}\n{}\n", self.entries.len());
        for entry in &self.entries {
            text.push_str(&format!("{} {}\n", entry.epoch, entry.start_offset));
        }
        write_atomically(&self.path, text.as_bytes())
    }
}

fn parse(text: &str) -> std::result::Result<Vec<EpochEntry>, String> {
    let mut lines = text.lines();
    match lines.next() {
        Some(VERSION) => {}
        other => return Err(format!("unsupported version line {other:?}")),
    }
    let count: usize = lines
        .next()
        .and_then(|line| line.parse().ok())
        .ok_or("missing or malformed entry count")?;
    if count > MAX_EPOCH_ENTRIES {
        return Err(format!(
            "{count} entries exceed the limit of {MAX_EPOCH_ENTRIES}"
        ));
    }
    let mut entries = Vec::with_capacity(count);
    for line in lines.by_ref().take(count) {
        let (epoch, offset) = line
            .split_once(' ')
            .ok_or_else(|| format!("malformed line {line:?}"))?;
        let epoch = epoch
            .parse()
            .map_err(|_| format!("malformed epoch in {line:?}"))?;
        let start_offset = offset
            .parse()
            .map_err(|_| format!("malformed offset in {line:?}"))?;
        entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }
    if entries.len() != count {
        return Err(format!("expected {count} entries, found {}", entries.len()));
    }
    if let Some(extra) = lines.next() {
        return Err(format!("unexpected trailing line {extra:?}"));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_with(entries: &[(i32, i64)]) -> (tempfile::TempDir, LeaderEpochFileCache) {
        let dir = tempfile::tempdir().unwrap();
        assert!(LeaderEpochFileCache::load(dir.path()).unwrap().is_none());
        let mut cache = LeaderEpochFileCache::empty(dir.path());
        for &(epoch, offset) in entries {
            cache.assign(epoch, offset).unwrap();
        }
        (dir, cache)
    }

    fn pairs(cache: &LeaderEpochFileCache) -> Vec<(i32, i64)> {
        cache
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn assign_appends_new_epochs_and_ignores_repeats() {
        let (_dir, mut cache) = cache_with(&[(0, 0), (0, 5), (2, 10), (2, 12), (5, 20)]);
        assert_eq!(pairs(&cache), vec![(0, 0), (2, 10), (5, 20)]);
        assert_eq!(cache.latest_epoch(), Some(5));
        cache.assign(-1, 30).unwrap();
        assert_eq!(cache.latest_epoch(), Some(5));
    }

    #[test]
    fn assign_removes_non_monotonic_entries() {
        let (_dir, mut cache) = cache_with(&[(1, 0), (3, 10), (5, 20)]);
        cache.assign(4, 15).unwrap();
        assert_eq!(pairs(&cache), vec![(1, 0), (3, 10), (4, 15)]);
        cache.assign(6, 5).unwrap();
        assert_eq!(pairs(&cache), vec![(1, 0), (6, 5)]);
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let (_dir, cache) = cache_with(&[(2, 10), (4, 30), (7, 50)]);
        let leo = 80;
        assert_eq!(
            cache.end_offset_for(7, leo),
            Some((7, 80)),
            "latest epoch ends at the LEO"
        );
        assert_eq!(cache.end_offset_for(4, leo), Some((4, 50)));
        assert_eq!(cache.end_offset_for(2, leo), Some((2, 30)));
        assert_eq!(
            cache.end_offset_for(5, leo),
            Some((4, 50)),
            "unknown epoch maps to its floor"
        );
        assert_eq!(cache.end_offset_for(6, leo), Some((4, 50)));
        assert_eq!(
            cache.end_offset_for(1, leo),
            Some((1, 10)),
            "older than the first entry"
        );
        assert_eq!(cache.end_offset_for(8, leo), None, "newer than every entry");
        assert_eq!(cache.end_offset_for(-1, leo), None);
        let (_dir2, empty) = cache_with(&[]);
        assert_eq!(empty.end_offset_for(0, leo), None);
    }

    #[test]
    fn truncation_from_end_and_start() {
        let (_dir, mut cache) = cache_with(&[(1, 0), (2, 10), (3, 20), (4, 30)]);
        cache.truncate_from_end(20).unwrap();
        assert_eq!(pairs(&cache), vec![(1, 0), (2, 10)]);
        cache.truncate_from_end(100).unwrap();
        assert_eq!(pairs(&cache), vec![(1, 0), (2, 10)]);
        cache.truncate_from_start(15).unwrap();
        assert_eq!(pairs(&cache), vec![(2, 15)]);
        cache.truncate_from_start(15).unwrap();
        assert_eq!(pairs(&cache), vec![(2, 15)]);
        cache.truncate_from_start(3).unwrap();
        assert_eq!(
            pairs(&cache),
            vec![(2, 15)],
            "an older start offset changes nothing"
        );
        cache.clear().unwrap();
        assert!(cache.entries().is_empty());
    }

    #[test]
    fn survives_reload_in_kafkas_text_format() {
        let (dir, cache) = cache_with(&[(0, 0), (3, 42)]);
        drop(cache);
        let text = std::fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE)).unwrap();
        assert_eq!(text, "0\n2\n0 0\n3 42\n");
        let reloaded = LeaderEpochFileCache::load(dir.path()).unwrap().unwrap();
        assert_eq!(pairs(&reloaded), vec![(0, 0), (3, 42)]);
    }

    #[test]
    fn damaged_checkpoints_are_set_aside() {
        for text in [
            "",
            "1\n0\n",
            "0\n2\n0 0\n",
            "0\n1\n0 x\n",
            "0\n1\n0 0\n1 1\n",
            "0\n99999999\n",
            "\u{0}\u{1}binary",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE);
            std::fs::write(&path, text).unwrap();
            assert!(
                LeaderEpochFileCache::load(dir.path()).unwrap().is_none(),
                "accepted {text:?}"
            );
            assert!(!path.exists(), "{text:?} not set aside");
            let aside = dir.path().join("leader-epoch-checkpoint.damaged");
            assert_eq!(std::fs::read_to_string(aside).unwrap(), text);
        }
    }

    #[test]
    fn rebuild_keeps_the_first_offset_of_each_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochFileCache::empty(dir.path());
        cache
            .rebuild([(-1, 0), (0, 1), (0, 5), (2, 9), (2, 12), (5, 20)])
            .unwrap();
        assert_eq!(pairs(&cache), vec![(0, 1), (2, 9), (5, 20)]);
        let reloaded = LeaderEpochFileCache::load(dir.path()).unwrap().unwrap();
        assert_eq!(pairs(&reloaded), vec![(0, 1), (2, 9), (5, 20)]);
    }
}
