//! A sorted file of fixed-size entries: the storage shared by the offset and time indexes
//! (Kafka's `AbstractIndex`).
//!
//! Memory must not grow with data stored, so only the active segment's index is *resident*:
//! its entries live in a `Vec`, new entries are appended there and written to the file in one
//! `pwrite` when the segment is flushed, rolled or closed (recovery rebuilds anything a crash
//! loses). A sealed segment's index is *on disk*: lookups binary-search the file with `pread`
//! and the OS page cache does the caching.
//!
//! Capacity: `max_entries` decides when the index counts as full (which rolls the segment);
//! one more slot is allowed for the final time-index entry written at seal, so an index never
//! holds more than `max_entries + 1` entries and loading one never allocates more than that.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{IoResultExt, LogError, Result};

/// Largest entry size of any index; sizes a stack buffer.
const MAX_ENTRY_BYTES: usize = 16;

/// A fixed-size, big-endian index entry.
pub(crate) trait IndexEntry: Copy {
    const SIZE_BYTES: usize;
    fn encode_into(&self, out: &mut [u8]);
    fn decode(bytes: &[u8]) -> Self;
}

enum Residency<E> {
    /// All entries in memory; the first `persisted` are also in the file.
    Resident { entries: Vec<E>, persisted: usize },
    /// Entries only in the file.
    OnDisk { count: usize },
}

pub(crate) struct IndexFile<E: IndexEntry> {
    path: PathBuf,
    file: Arc<File>,
    max_entries: usize,
    residency: Residency<E>,
    /// False if the file was missing or had a torn entry when opened.
    intact_at_open: bool,
}

impl<E: IndexEntry> IndexFile<E> {
    /// Creates an empty, resident index, replacing any file at `path`.
    pub(crate) fn create(path: PathBuf, max_entries: usize) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .at(&path)?;
        Ok(Self {
            path,
            file: Arc::new(file),
            max_entries,
            residency: Residency::Resident {
                entries: Vec::new(),
                persisted: 0,
            },
            intact_at_open: true,
        })
    }

    /// Opens an existing index on disk (creating an empty file if it is missing, which
    /// `intact_at_open` then reports).
    pub(crate) fn open(path: PathBuf, max_entries: usize) -> Result<Self> {
        debug_assert!(E::SIZE_BYTES <= MAX_ENTRY_BYTES);
        let existed = path.try_exists().at(&path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at(&path)?;
        let len_bytes = file.metadata().at(&path)?.len();
        let entry_bytes = E::SIZE_BYTES as u64;
        let count = usize::try_from(len_bytes / entry_bytes).unwrap_or(usize::MAX);
        Ok(Self {
            path,
            file: Arc::new(file),
            max_entries,
            residency: Residency::OnDisk { count },
            intact_at_open: existed && len_bytes % entry_bytes == 0,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn file(&self) -> &Arc<File> {
        &self.file
    }

    pub(crate) fn len(&self) -> usize {
        match &self.residency {
            Residency::Resident { entries, .. } => entries.len(),
            Residency::OnDisk { count } => *count,
        }
    }

    pub(crate) fn is_resident(&self) -> bool {
        matches!(self.residency, Residency::Resident { .. })
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len() >= self.max_entries
    }

    /// True if the file existed and held whole entries when opened.
    pub(crate) fn is_intact(&self) -> bool {
        self.intact_at_open
    }

    /// True if `load_resident` may load the entries (at most `max_entries + 1`). A sealed
    /// index over the limit (the config shrank) is still usable on disk.
    pub(crate) fn fits_in_memory(&self) -> bool {
        self.len() <= self.max_entries + 1
    }

    pub(crate) fn set_max_entries(&mut self, max_entries: usize) {
        self.max_entries = max_entries;
    }

    /// The entry at `index` (< `len()`).
    pub(crate) fn entry(&self, index: usize) -> Result<E> {
        debug_assert!(index < self.len());
        match &self.residency {
            Residency::Resident { entries, .. } => Ok(entries[index]),
            Residency::OnDisk { .. } => {
                let mut buf = [0u8; MAX_ENTRY_BYTES];
                let bytes = &mut buf[..E::SIZE_BYTES];
                let at = (index * E::SIZE_BYTES) as u64;
                self.file.read_exact_at(bytes, at).at(&self.path)?;
                Ok(E::decode(bytes))
            }
        }
    }

    pub(crate) fn last(&self) -> Result<Option<E>> {
        match self.len() {
            0 => Ok(None),
            len => self.entry(len - 1).map(Some),
        }
    }

    /// How many leading entries satisfy `pred`; entries must be partitioned by it (sorted).
    pub(crate) fn partition_point(&self, pred: impl Fn(&E) -> bool) -> Result<usize> {
        match &self.residency {
            Residency::Resident { entries, .. } => Ok(entries.partition_point(pred)),
            Residency::OnDisk { count } => {
                let (mut low, mut high) = (0, *count);
                while low < high {
                    let mid = low + (high - low) / 2;
                    if pred(&self.entry(mid)?) {
                        low = mid + 1;
                    } else {
                        high = mid;
                    }
                }
                Ok(low)
            }
        }
    }

    /// Appends to a resident index; returns false (and drops the entry) when full.
    /// `use_spare_slot` lets the final time-index entry of a segment in past a full index.
    pub(crate) fn append(&mut self, entry: E, use_spare_slot: bool) -> bool {
        let capacity = self.max_entries + usize::from(use_spare_slot);
        match &mut self.residency {
            Residency::Resident { entries, .. } if entries.len() < capacity => {
                entries.push(entry);
                true
            }
            Residency::Resident { .. } => false,
            Residency::OnDisk { .. } => {
                debug_assert!(false, "append to the on-disk index {}", self.path.display());
                false
            }
        }
    }

    /// Writes entries not yet in the file, in one `pwrite`.
    pub(crate) fn persist(&mut self) -> Result<()> {
        let Self {
            path,
            file,
            residency,
            ..
        } = self;
        if let Residency::Resident { entries, persisted } = residency
            && *persisted < entries.len()
        {
            let pending = &entries[*persisted..];
            let mut bytes = vec![0u8; pending.len() * E::SIZE_BYTES];
            for (entry, out) in pending.iter().zip(bytes.chunks_exact_mut(E::SIZE_BYTES)) {
                entry.encode_into(out);
            }
            file.write_all_at(&bytes, (*persisted * E::SIZE_BYTES) as u64)
                .at(path)?;
            *persisted = entries.len();
        }
        Ok(())
    }

    /// Reads every entry into memory so the index can take appends again.
    pub(crate) fn load_resident(&mut self) -> Result<()> {
        let Residency::OnDisk { count } = self.residency else {
            return Ok(());
        };
        if count > self.max_entries + 1 {
            return Err(LogError::CorruptIndex {
                path: self.path.clone(),
                reason: format!(
                    "{count} entries, more than the {} allowed",
                    self.max_entries + 1
                ),
            });
        }
        let mut bytes = vec![0u8; count * E::SIZE_BYTES];
        self.file.read_exact_at(&mut bytes, 0).at(&self.path)?;
        let entries = bytes.chunks_exact(E::SIZE_BYTES).map(E::decode).collect();
        self.residency = Residency::Resident {
            entries,
            persisted: count,
        };
        Ok(())
    }

    /// Persists and drops the in-memory entries.
    pub(crate) fn seal(&mut self) -> Result<()> {
        self.persist()?;
        self.residency = Residency::OnDisk { count: self.len() };
        Ok(())
    }

    /// Empties the index (file and memory) and makes it resident, for a rebuild.
    pub(crate) fn reset(&mut self) -> Result<()> {
        self.file.set_len(0).at(&self.path)?;
        self.residency = Residency::Resident {
            entries: Vec::new(),
            persisted: 0,
        };
        self.intact_at_open = true;
        Ok(())
    }

    /// Keeps only the first `keep` entries.
    pub(crate) fn truncate(&mut self, keep: usize) -> Result<()> {
        if keep >= self.len() {
            return Ok(());
        }
        let in_file = match &mut self.residency {
            Residency::Resident { entries, persisted } => {
                entries.truncate(keep);
                *persisted = (*persisted).min(keep);
                *persisted
            }
            Residency::OnDisk { count } => {
                *count = keep;
                keep
            }
        };
        self.file
            .set_len((in_file * E::SIZE_BYTES) as u64)
            .at(&self.path)
    }

    /// fsyncs what `persist` wrote.
    pub(crate) fn sync(&self) -> Result<()> {
        self.file.sync_data().at(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Pair(u32, u32);

    impl IndexEntry for Pair {
        const SIZE_BYTES: usize = 8;
        fn encode_into(&self, out: &mut [u8]) {
            out[..4].copy_from_slice(&self.0.to_be_bytes());
            out[4..8].copy_from_slice(&self.1.to_be_bytes());
        }
        fn decode(bytes: &[u8]) -> Self {
            let mut a = [0u8; 4];
            let mut b = [0u8; 4];
            a.copy_from_slice(&bytes[..4]);
            b.copy_from_slice(&bytes[4..8]);
            Pair(u32::from_be_bytes(a), u32::from_be_bytes(b))
        }
    }

    #[test]
    fn resident_appends_persist_and_search_the_same_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        let mut index = IndexFile::<Pair>::create(path.clone(), 100).unwrap();
        for i in 0..50 {
            assert!(index.append(Pair(i * 2, i * 10), false));
        }
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            0,
            "nothing written before persist"
        );
        index.persist().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 400);
        let resident_point = index.partition_point(|e| e.0 <= 31).unwrap();
        index.seal().unwrap();
        assert_eq!(
            index.partition_point(|e| e.0 <= 31).unwrap(),
            resident_point
        );
        assert_eq!(resident_point, 16);
        assert_eq!(index.entry(15).unwrap(), Pair(30, 150));

        let reopened = IndexFile::<Pair>::open(path, 100).unwrap();
        assert!(reopened.is_intact());
        assert_eq!(reopened.last().unwrap(), Some(Pair(98, 490)));
        assert_eq!(reopened.partition_point(|e| e.0 <= 1000).unwrap(), 50);
        assert_eq!(reopened.partition_point(|e| e.0 < 2).unwrap(), 1);
    }

    #[test]
    fn capacity_is_enforced_with_one_spare_slot() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = IndexFile::<Pair>::create(dir.path().join("x.index"), 2).unwrap();
        assert!(index.append(Pair(1, 1), false));
        assert!(index.append(Pair(2, 2), false));
        assert!(index.is_full());
        assert!(!index.append(Pair(3, 3), false));
        assert!(index.append(Pair(3, 3), true));
        assert!(!index.append(Pair(4, 4), true));
        assert_eq!(index.len(), 3);
    }

    #[test]
    fn torn_and_missing_files_are_not_intact_and_oversized_ones_stay_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        assert!(
            !IndexFile::<Pair>::open(path.clone(), 10)
                .unwrap()
                .is_intact(),
            "missing"
        );
        std::fs::write(&path, [0u8; 12]).unwrap();
        assert!(
            !IndexFile::<Pair>::open(path.clone(), 10)
                .unwrap()
                .is_intact(),
            "torn"
        );
        std::fs::write(&path, [0u8; 8 * 12]).unwrap();
        let mut oversized = IndexFile::<Pair>::open(path.clone(), 10).unwrap();
        assert!(oversized.is_intact() && !oversized.fits_in_memory());
        assert!(matches!(
            oversized.load_resident(),
            Err(LogError::CorruptIndex { .. })
        ));
        std::fs::write(&path, [0u8; 16]).unwrap();
        assert!(IndexFile::<Pair>::open(path, 10).unwrap().is_intact());
    }

    #[test]
    fn truncate_cuts_memory_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        let mut index = IndexFile::<Pair>::create(path.clone(), 100).unwrap();
        for i in 0..10 {
            index.append(Pair(i, i), false);
        }
        index.persist().unwrap();
        index.append(Pair(10, 10), false);
        index.truncate(4).unwrap();
        assert_eq!(index.len(), 4);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 32);
        index.append(Pair(20, 20), false);
        index.persist().unwrap();
        let reopened = IndexFile::<Pair>::open(path, 100).unwrap();
        assert_eq!(reopened.len(), 5);
        assert_eq!(reopened.last().unwrap(), Some(Pair(20, 20)));
    }
}
