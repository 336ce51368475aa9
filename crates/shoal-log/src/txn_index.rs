//! The aborted-transaction index of one segment (Kafka's `TransactionIndex`, `.txnindex`).
//!
//! A `read_committed` consumer must drop the records of aborted transactions, and it learns
//! which from the fetch response's aborted list: the aborted transactions whose offsets overlap
//! what it fetched. This file is where that list comes from. Each entry is one aborted
//! transaction, written when its ABORT marker is appended, to the segment holding the marker:
//! `version i16 (0), producer_id i64, first_offset i64, last_offset i64 (the marker),
//! last_stable_offset i64`, 34 bytes, big-endian, in increasing `last_offset` order — Kafka's
//! layout, so Kafka's tools read it.
//!
//! The file is created on the first entry (most segments never see an abort). Appends write
//! straight to the file (a `pwrite` of 34 bytes), so nothing is resident; reads `pread` it in
//! bounded chunks ([`READ_CHUNK_ENTRIES`]).
//!
//! Damage: a size that is not a multiple of 34 is a torn last write; the tail is cut with a
//! WARN, and the producer-state replay at open writes any entry the cut lost back (it truncates
//! the index from its replay start and re-appends the aborts it replays). An entry with an
//! unknown version was written by something newer than this broker: the log refuses to open
//! rather than serve `read_committed` fetches from an index it cannot read.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{IoResultExt, LogError, Result};

/// Bytes of one entry.
pub const TXN_INDEX_ENTRY_BYTES: usize = 34;
/// The entry version Shoal writes and reads (Kafka's `AbortedTxn.CURRENT_VERSION`).
pub const TXN_INDEX_VERSION: i16 = 0;
/// Entries read per `pread` (about 34 KiB).
const READ_CHUNK_ENTRIES: usize = 1024;
/// Most aborted transactions one [`crate::Log::collect_aborted_txns`] returns (about 2 MiB in
/// memory, more than a fetch response of any sane size lists); more is an error.
pub const MAX_ABORTED_TXNS_COLLECTED: usize = 1 << 16;

/// One aborted transaction (Kafka's `AbortedTxn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AbortedTxn {
    pub producer_id: i64,
    /// Offset of the transaction's first batch in this partition.
    pub first_offset: i64,
    /// Offset of its ABORT marker.
    pub last_offset: i64,
    /// The partition's last stable offset once the abort was written: the first offset of the
    /// earliest other transaction still open then, or `last_offset + 1`. A fetch whose data
    /// ends at or below it needs no entry from later in the index.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub(crate) fn encode(&self) -> [u8; TXN_INDEX_ENTRY_BYTES] {
        let mut out = [0u8; TXN_INDEX_ENTRY_BYTES];
        out[0..2].copy_from_slice(&TXN_INDEX_VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// One entry; `Err(version)` if its version is not one this broker knows.
    pub(crate) fn decode(bytes: &[u8; TXN_INDEX_ENTRY_BYTES]) -> std::result::Result<Self, i16> {
        let i64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            i64::from_be_bytes(b)
        };
        let version = i16::from_be_bytes([bytes[0], bytes[1]]);
        if version != TXN_INDEX_VERSION {
            return Err(version);
        }
        Ok(Self {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// What [`TxnIndex::collect`] found in one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Collected {
    /// An entry's last stable offset reached the upper bound: later segments hold nothing more.
    Complete,
    /// Read to the end; later segments may hold more.
    Partial,
}

pub(crate) struct TxnIndex {
    path: PathBuf,
    /// `None` until the first entry is written (or if the file was absent at open).
    file: Option<Arc<File>>,
    entries: u64,
    /// `last_offset` of the last entry: new ones must be above it.
    last_offset: Option<i64>,
    /// Written since the last fsync.
    dirty: bool,
}

impl TxnIndex {
    /// The index of a new segment: no file yet.
    pub(crate) fn empty(path: PathBuf) -> Self {
        Self {
            path,
            file: None,
            entries: 0,
            last_offset: None,
            dirty: false,
        }
    }

    /// Opens the index at `path` if there is one: cuts a torn tail (WARN), refuses unknown
    /// entry versions (see the module docs).
    pub(crate) fn open(path: PathBuf) -> Result<Self> {
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Self::empty(path)),
            Err(e) => return Err(e).at(&path),
        };
        let size_bytes = file.metadata().at(&path)?.len();
        let entry_bytes = TXN_INDEX_ENTRY_BYTES as u64;
        let torn_bytes = size_bytes % entry_bytes;
        if torn_bytes != 0 {
            tracing::warn!(
                path = %path.display(),
                size_bytes,
                torn_bytes,
                "cutting a torn entry off a transaction index; the producer-state replay rewrites it"
            );
            file.set_len(size_bytes - torn_bytes).at(&path)?;
        }
        let mut index = Self {
            path,
            file: Some(Arc::new(file)),
            entries: size_bytes / entry_bytes,
            last_offset: None,
            dirty: torn_bytes != 0,
        };
        let mut last_offset = None;
        index.scan(|txn| {
            last_offset = Some(txn.last_offset);
            true
        })?;
        index.last_offset = last_offset;
        Ok(index)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, if one exists (for a background fsync).
    pub(crate) fn file(&self) -> Option<Arc<File>> {
        self.file.clone()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.entries
    }

    /// Appends an entry; its `last_offset` must be above every entry's already there.
    pub(crate) fn append(&mut self, txn: &AbortedTxn) -> Result<()> {
        if let Some(last) = self.last_offset
            && txn.last_offset <= last
        {
            return Err(LogError::InvalidRecord(format!(
                "{}: an aborted transaction ending at {} appended after one ending at {last}",
                self.path.display(),
                txn.last_offset
            )));
        }
        let file = match &self.file {
            Some(file) => Arc::clone(file),
            None => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&self.path)
                    .at(&self.path)?;
                let file = Arc::new(file);
                self.file = Some(Arc::clone(&file));
                file
            }
        };
        let position = self.entries * TXN_INDEX_ENTRY_BYTES as u64;
        if let Err(e) = file.write_all_at(&txn.encode(), position) {
            // Leave whole entries only.
            let _ = file.set_len(position);
            return Err(e).at(&self.path);
        }
        self.entries += 1;
        self.last_offset = Some(txn.last_offset);
        self.dirty = true;
        Ok(())
    }

    /// Appends `txn` to `out` for every entry with `last_offset >= start_offset` and
    /// `first_offset < upper_bound_offset`, stopping after the first entry whose last stable
    /// offset reaches `upper_bound_offset` (Kafka's `collectAbortedTxns`). At most `limit`
    /// entries end up in `out`; one more is an error.
    pub(crate) fn collect(
        &self,
        start_offset: i64,
        upper_bound_offset: i64,
        limit: usize,
        out: &mut Vec<AbortedTxn>,
    ) -> Result<Collected> {
        let mut complete = false;
        let mut over_limit = false;
        self.scan(|txn| {
            if txn.last_offset >= start_offset && txn.first_offset < upper_bound_offset {
                if out.len() >= limit {
                    over_limit = true;
                    return false;
                }
                out.push(txn);
            }
            if txn.last_stable_offset >= upper_bound_offset {
                complete = true;
                return false;
            }
            true
        })?;
        if over_limit {
            return Err(LogError::TooManyAbortedTxns {
                start_offset,
                upper_bound_offset,
                limit,
            });
        }
        Ok(if complete {
            Collected::Complete
        } else {
            Collected::Partial
        })
    }

    /// Removes every entry with `last_offset >= offset` (its marker is gone or being replayed).
    pub(crate) fn truncate_from(&mut self, offset: i64) -> Result<()> {
        let Some(file) = self.file.clone() else {
            return Ok(());
        };
        let mut keep = 0u64;
        let mut last_kept = None;
        self.scan(|txn| {
            if txn.last_offset >= offset {
                return false;
            }
            keep += 1;
            last_kept = Some(txn.last_offset);
            true
        })?;
        if keep == self.entries {
            return Ok(());
        }
        file.set_len(keep * TXN_INDEX_ENTRY_BYTES as u64)
            .at(&self.path)?;
        self.entries = keep;
        self.last_offset = last_kept;
        self.dirty = true;
        Ok(())
    }

    /// fsyncs the file if it changed since the last fsync.
    pub(crate) fn flush(&mut self) -> Result<()> {
        if let Some(file) = &self.file
            && self.dirty
        {
            file.sync_data().at(&self.path)?;
        }
        self.dirty = false;
        Ok(())
    }

    /// Removes the file (a missing one is fine).
    pub(crate) fn delete_file(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).at(&self.path),
        }
    }

    /// Calls `visit` with each entry in order until it returns false; reads the file in
    /// chunks of [`READ_CHUNK_ENTRIES`]. An unknown entry version is an error.
    fn scan(&self, mut visit: impl FnMut(AbortedTxn) -> bool) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        // No bigger than the file: most indexes hold a handful of entries.
        let chunk_entries = self.entries.min(READ_CHUNK_ENTRIES as u64) as usize;
        let mut chunk = vec![0u8; chunk_entries * TXN_INDEX_ENTRY_BYTES];
        let mut next = 0u64;
        while next < self.entries {
            let count = (self.entries - next).min(chunk_entries as u64) as usize;
            let bytes = &mut chunk[..count * TXN_INDEX_ENTRY_BYTES];
            file.read_exact_at(bytes, next * TXN_INDEX_ENTRY_BYTES as u64)
                .at(&self.path)?;
            for (i, raw) in bytes.chunks_exact(TXN_INDEX_ENTRY_BYTES).enumerate() {
                let mut entry = [0u8; TXN_INDEX_ENTRY_BYTES];
                entry.copy_from_slice(raw);
                let txn = AbortedTxn::decode(&entry).map_err(|version| LogError::CorruptIndex {
                    path: self.path.clone(),
                    reason: format!(
                        "entry {} has version {version}; this broker reads version {TXN_INDEX_VERSION} only",
                        next + i as u64
                    ),
                })?;
                if !visit(txn) {
                    return Ok(());
                }
            }
            next += count as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "txn_index_tests.rs"]
mod tests;
