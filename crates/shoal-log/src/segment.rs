//! One segment of a partition log: a `.log` file of batches plus its two indexes (Kafka's
//! `LogSegment`).
//!
//! Invariants:
//! - the `.log` file holds whole v2 batches back to back from byte 0 to `size_bytes`, with
//!   contiguous offsets starting at `base_offset`;
//! - it stays below 4 GiB, so positions fit the offset index's u32;
//! - only the active segment's indexes are resident; sealed ones are read from their files;
//! - `max_timestamp_ms` is the largest batch timestamp in the segment (the time index's last
//!   entry for a sealed segment), `NO_TIMESTAMP` if no batch had one.
//!
//! All reads use `pread` on an `Arc<File>`, so they need only `&self` and keep working on a
//! file that retention has already unlinked. A [`SegmentSlice`] carries what a read needs
//! (the file and the byte range that was whole when it was taken), so the read itself can run
//! without the log's lock while an append writes past the end of that range.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use bytes::Bytes;

use crate::batch::{
    NO_TIMESTAMP, RECORD_BATCH_HEADER_BYTES, RecordBatchHeader, read_offsets, read_size_bytes,
};
use crate::batch_scanner::{BatchScanner, Scanned, Verify};
use crate::config::LogConfig;
use crate::error::{IoResultExt, LogError, Result};
use crate::log::{FoundBatch, ReadInfo};
use crate::offset_index::OffsetIndex;
use crate::time_index::TimeIndex;
use crate::txn_index::{AbortedTxn, Collected, TxnIndex};

pub(crate) const LOG_FILE_SUFFIX: &str = "log";
pub(crate) const INDEX_FILE_SUFFIX: &str = "index";
pub(crate) const TIME_INDEX_FILE_SUFFIX: &str = "timeindex";
pub(crate) const TXN_INDEX_FILE_SUFFIX: &str = "txnindex";
/// Positions are u32 in the offset index.
const MAX_SEGMENT_BYTES: u64 = u32::MAX as u64;
/// Digits of the zero-padded base offset in segment file names.
const FILE_NAME_DIGITS: usize = 20;

/// `<dir>/<base_offset as 20 digits>.<suffix>`.
pub(crate) fn segment_file_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!(
        "{base_offset:0width$}.{suffix}",
        width = FILE_NAME_DIGITS
    ))
}

/// Splits a segment file name into base offset and suffix (`"...042.log"` → `(42, "log")`).
pub(crate) fn parse_segment_file_name(name: &str) -> Option<(i64, &str)> {
    let (stem, suffix) = name.split_once('.')?;
    if stem.len() != FILE_NAME_DIGITS || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, suffix))
}

/// Why the active segment must roll before an append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RollReason {
    SegmentBytes,
    SegmentMs,
    IndexFull,
    RelativeOffsetOverflow,
}

/// What the roll policy needs to know about an append.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingAppend {
    pub(crate) size_bytes: u64,
    pub(crate) max_timestamp_ms: i64,
    pub(crate) last_offset: i64,
}

/// Result of rescanning a segment.
#[derive(Clone, Debug)]
pub(crate) struct SegmentRecovery {
    pub(crate) next_offset: i64,
    pub(crate) truncated_bytes: u64,
    /// Why the scan stopped early, if it did.
    pub(crate) reason: Option<String>,
}

pub(crate) struct LogSegment {
    base_offset: i64,
    log_path: Arc<Path>,
    log_file: Arc<File>,
    size_bytes: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    /// Aborted transactions whose ABORT marker is in this segment (see `txn_index`).
    txn_index: TxnIndex,
    bytes_since_last_index_entry: u64,
    max_timestamp_ms: i64,
    offset_of_max_timestamp: i64,
    /// Max timestamp of the first batch: what `segment.ms` measures age from.
    first_batch_timestamp_ms: Option<i64>,
    /// When this process created or opened the segment; the age fallback without timestamps.
    created_ms: i64,
    /// How much earlier than `segment.ms` this segment rolls (`segment.jitter.ms`), chosen
    /// once per segment so segments of many partitions do not all roll at once.
    roll_jitter_ms: i64,
}

/// Kafka's `LogConfig.randomSegmentJitter`: `random` reduced into `[0, min(jitter, segment.ms))`,
/// or 0 without jitter.
pub(crate) fn roll_jitter_ms(segment_jitter_ms: i64, segment_ms: i64, random: u64) -> i64 {
    let bound = segment_jitter_ms.min(segment_ms);
    match u64::try_from(bound) {
        Ok(bound) if bound > 0 => i64::try_from(random % bound).unwrap_or(0),
        _ => 0,
    }
}

impl LogSegment {
    /// Creates the files of a new, empty, active segment. Fails if its `.log` already exists.
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Self> {
        debug_assert!(base_offset >= 0);
        let log_path = segment_file_path(dir, base_offset, LOG_FILE_SUFFIX);
        let log_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&log_path)
            .at(&log_path)?;
        let offset_index = OffsetIndex::create(
            segment_file_path(dir, base_offset, INDEX_FILE_SUFFIX),
            base_offset,
            config.max_offset_index_entries(),
        )?;
        let time_index = TimeIndex::create(
            segment_file_path(dir, base_offset, TIME_INDEX_FILE_SUFFIX),
            base_offset,
            config.max_time_index_entries(),
        )?;
        // A leftover index of an earlier segment at this offset holds nothing of this one.
        let txn_index = TxnIndex::empty(segment_file_path(dir, base_offset, TXN_INDEX_FILE_SUFFIX));
        txn_index.delete_file()?;
        Ok(Self::new(
            base_offset,
            log_path,
            log_file,
            0,
            offset_index,
            time_index,
            txn_index,
            now_ms,
        )
        .with_roll_jitter(config))
    }

    /// Opens an existing segment without reading its data; indexes stay on disk.
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Self> {
        let log_path = segment_file_path(dir, base_offset, LOG_FILE_SUFFIX);
        let log_file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .at(&log_path)?;
        let size_bytes = log_file.metadata().at(&log_path)?.len();
        if size_bytes > MAX_SEGMENT_BYTES {
            return Err(LogError::CorruptRecord(format!(
                "{} is {size_bytes} bytes, above the {MAX_SEGMENT_BYTES}-byte segment limit",
                log_path.display()
            )));
        }
        let offset_index = OffsetIndex::open(
            segment_file_path(dir, base_offset, INDEX_FILE_SUFFIX),
            base_offset,
            config.max_offset_index_entries(),
        )?;
        let time_index = TimeIndex::open(
            segment_file_path(dir, base_offset, TIME_INDEX_FILE_SUFFIX),
            base_offset,
            config.max_time_index_entries(),
        )?;
        let txn_index = TxnIndex::open(segment_file_path(dir, base_offset, TXN_INDEX_FILE_SUFFIX))?;
        let mut segment = Self::new(
            base_offset,
            log_path,
            log_file,
            size_bytes,
            offset_index,
            time_index,
            txn_index,
            now_ms,
        )
        .with_roll_jitter(config);
        if segment.time_index.storage().is_intact()
            && let Some(last) = segment.time_index.last_entry()?
        {
            segment.max_timestamp_ms = last.timestamp_ms;
            segment.offset_of_max_timestamp = last.offset;
        }
        Ok(segment)
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        base_offset: i64,
        log_path: PathBuf,
        log_file: File,
        size_bytes: u64,
        offset_index: OffsetIndex,
        time_index: TimeIndex,
        txn_index: TxnIndex,
        now_ms: i64,
    ) -> Self {
        Self {
            base_offset,
            log_path: Arc::from(log_path),
            log_file: Arc::new(log_file),
            size_bytes,
            offset_index,
            time_index,
            txn_index,
            bytes_since_last_index_entry: 0,
            max_timestamp_ms: NO_TIMESTAMP,
            offset_of_max_timestamp: -1,
            first_batch_timestamp_ms: None,
            created_ms: now_ms,
            roll_jitter_ms: 0,
        }
    }

    /// Draws this segment's roll jitter from `segment.jitter.ms` (Kafka draws it when it
    /// creates or loads the segment object, as here).
    fn with_roll_jitter(mut self, config: &LogConfig) -> Self {
        self.roll_jitter_ms = roll_jitter_ms(
            config.segment_jitter_ms,
            config.segment_ms,
            fastrand::u64(..),
        );
        self
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Calls `visit` with the header of every batch, in order, reading headers only (for
    /// rebuilding the leader epoch cache). Stops at data that is not a batch: the loader has
    /// already cut such a tail, so finding one here is reported as an error.
    pub(crate) fn for_each_batch_header(
        &self,
        mut visit: impl FnMut(&RecordBatchHeader),
    ) -> Result<()> {
        let mut scanner = self.scanner(0, Verify::Header);
        loop {
            match scanner.next_batch()? {
                Scanned::End => return Ok(()),
                Scanned::Batch { header, .. } => visit(&header),
                Scanned::Invalid { position, reason } => {
                    return Err(LogError::CorruptSegment {
                        path: self.log_path.to_path_buf(),
                        position,
                        reason,
                    });
                }
            }
        }
    }

    /// Max timestamp of the first batch (Kafka's `getFirstBatchTimestamp`), read from disk if
    /// not cached; `None` for an empty segment or one without timestamps.
    pub(crate) fn first_batch_timestamp_ms(&self) -> Result<Option<i64>> {
        let timestamp_ms = match self.first_batch_timestamp_ms {
            Some(ts) => ts,
            None if self.size_bytes == 0 => return Ok(None),
            None => self.read_header_at(0)?.max_timestamp,
        };
        Ok((timestamp_ms >= 0).then_some(timestamp_ms))
    }

    /// Largest timestamp and the offset of the batch that carried it.
    pub(crate) fn max_timestamp_and_offset(&self) -> Option<(i64, i64)> {
        (self.max_timestamp_ms >= 0)
            .then_some((self.max_timestamp_ms, self.offset_of_max_timestamp))
    }

    /// What time retention compares: the largest timestamp, or the file's modification time
    /// when no batch carried a timestamp (as Kafka does).
    pub(crate) fn largest_timestamp_for_retention_ms(&self) -> Result<i64> {
        if self.max_timestamp_ms >= 0 {
            return Ok(self.max_timestamp_ms);
        }
        let modified = self
            .log_file
            .metadata()
            .and_then(|m| m.modified())
            .at(&self.log_path)?;
        let since_epoch = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        Ok(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }

    pub(crate) fn set_max_index_entries(&mut self, config: &LogConfig) {
        self.offset_index
            .storage_mut()
            .set_max_entries(config.max_offset_index_entries());
        self.time_index
            .storage_mut()
            .set_max_entries(config.max_time_index_entries());
    }

    /// Cheap checks that the indexes can be trusted without a rescan: files present with whole
    /// entries, within capacity, last entries inside the log and before `upper_bound_offset`
    /// (the next segment's base offset, if any).
    pub(crate) fn indexes_are_sane(&self, upper_bound_offset: Option<i64>) -> Result<bool> {
        if !self.offset_index.storage().is_intact() || !self.time_index.storage().is_intact() {
            return Ok(false);
        }
        let below_upper = |offset: i64| upper_bound_offset.is_none_or(|upper| offset < upper);
        if let Some(last) = self.offset_index.last_entry()?
            && (u64::from(last.position) >= self.size_bytes || !below_upper(last.offset))
        {
            return Ok(false);
        }
        if let Some(last) = self.time_index.last_entry()?
            && !below_upper(last.offset)
        {
            return Ok(false);
        }
        Ok(true)
    }

    /// Rescans the whole segment with CRC checks, rebuilding both indexes (left resident) and
    /// cutting the file at the first batch that is torn, corrupt or out of sequence.
    pub(crate) fn recover(&mut self, index_interval_bytes: u32) -> Result<SegmentRecovery> {
        self.offset_index.storage_mut().reset()?;
        self.time_index.storage_mut().reset()?;
        self.bytes_since_last_index_entry = 0;
        self.max_timestamp_ms = NO_TIMESTAMP;
        self.offset_of_max_timestamp = -1;
        self.first_batch_timestamp_ms = None;

        let mut scanner = self.scanner(0, Verify::Crc);
        let mut next_offset = self.base_offset;
        let mut valid_bytes = 0;
        let mut reason = None;
        loop {
            match scanner.next_batch()? {
                Scanned::End => break,
                Scanned::Invalid {
                    position,
                    reason: why,
                } => {
                    reason = Some(format!("at position {position}: {why}"));
                    break;
                }
                Scanned::Batch { position, header } => {
                    // Offsets only grow; a gap is a compacted-away batch, not damage (an
                    // append-only file cannot lose a batch between two intact ones). A batch
                    // beyond the segment's offset range (relative offsets are 32-bit) is
                    // damage: appends roll before that (found by the segment_load fuzzer).
                    if header.base_offset < next_offset
                        || header.last_offset_delta < 0
                        || header.last_offset() - self.base_offset > i64::from(i32::MAX)
                    {
                        reason = Some(format!(
                            "batch at position {position} covers offsets {}..={}, expected to start at {next_offset}",
                            header.base_offset,
                            header.last_offset()
                        ));
                        break;
                    }
                    self.index_batch(position, &header, index_interval_bytes)?;
                    next_offset = header.next_offset();
                    valid_bytes = position + header.size_bytes() as u64;
                }
            }
        }
        let truncated_bytes = self.size_bytes - valid_bytes;
        if truncated_bytes > 0 {
            self.log_file.set_len(valid_bytes).at(&self.log_path)?;
            self.size_bytes = valid_bytes;
        }
        // Entries of markers the cut removed (the producer-state replay rewrites the rest).
        self.txn_index.truncate_from(next_offset)?;
        // As Kafka's LogSegment.recover: the last time entry is the segment's max timestamp.
        self.time_index
            .maybe_append(self.max_timestamp_ms, self.offset_of_max_timestamp, true)?;
        self.offset_index.storage_mut().persist()?;
        self.time_index.storage_mut().persist()?;
        Ok(SegmentRecovery {
            next_offset,
            truncated_bytes,
            reason,
        })
    }

    /// Makes a cleanly closed segment the active one: loads its indexes into memory and reads
    /// the few batch headers after the last index entry to find the next offset and the
    /// running max timestamp. `None` if what it reads disagrees with the indexes (the caller
    /// then recovers the segment).
    pub(crate) fn activate(&mut self) -> Result<Option<i64>> {
        let offset_index = self.offset_index.storage();
        let time_index = self.time_index.storage();
        let loadable = offset_index.is_intact()
            && offset_index.fits_in_memory()
            && time_index.is_intact()
            && time_index.fits_in_memory();
        if !loadable {
            return Ok(None);
        }
        self.offset_index.storage_mut().load_resident()?;
        self.time_index.storage_mut().load_resident()?;
        let anchor = self.offset_index.last_entry()?;
        let start = anchor.map_or(0, |a| u64::from(a.position));
        if start > self.size_bytes {
            return Ok(None);
        }
        let (mut max_timestamp_ms, mut offset_of_max_timestamp) = self
            .time_index
            .last_entry()?
            .map_or((NO_TIMESTAMP, -1), |e| (e.timestamp_ms, e.offset));
        let mut scanner = self.scanner(start, Verify::Header);
        let mut expected_offset = anchor.is_none().then_some(self.base_offset);
        let mut scanned_any = false;
        loop {
            let header = match scanner.next_batch()? {
                Scanned::End => break,
                Scanned::Invalid { .. } => return Ok(None),
                Scanned::Batch { header, .. } => header,
            };
            let anchor_mismatch =
                !scanned_any && anchor.is_some_and(|a| a.offset != header.last_offset());
            if anchor_mismatch || expected_offset.is_some_and(|e| e != header.base_offset) {
                return Ok(None);
            }
            if header.max_timestamp > max_timestamp_ms {
                max_timestamp_ms = header.max_timestamp;
                offset_of_max_timestamp = header.last_offset();
            }
            expected_offset = Some(header.next_offset());
            scanned_any = true;
        }
        if anchor.is_some() && !scanned_any {
            return Ok(None);
        }
        let first_batch_timestamp_ms = if self.size_bytes == 0 {
            None
        } else {
            match self.read_header_at(0) {
                Ok(header) => Some(header.max_timestamp),
                Err(LogError::CorruptRecord(_)) => return Ok(None),
                Err(e) => return Err(e),
            }
        };
        self.max_timestamp_ms = max_timestamp_ms;
        self.offset_of_max_timestamp = offset_of_max_timestamp;
        self.bytes_since_last_index_entry = self.size_bytes - start;
        self.first_batch_timestamp_ms = first_batch_timestamp_ms;
        Ok(Some(expected_offset.unwrap_or(self.base_offset)))
    }

    /// Kafka's `shouldRoll`: would appending `append` break a limit of this segment?
    pub(crate) fn roll_reason(
        &self,
        config: &LogConfig,
        append: &PendingAppend,
        now_ms: i64,
    ) -> Option<RollReason> {
        if self.size_bytes == 0 {
            return None;
        }
        if self.size_bytes + append.size_bytes > u64::from(config.segment_bytes) {
            return Some(RollReason::SegmentBytes);
        }
        // Age is measured on the batches' own clock when they have one (Kafka's
        // timeWaitedForRoll), so replaying old data does not roll on every append.
        let age_ms = match self.first_batch_timestamp_ms {
            Some(first_ms) if first_ms >= 0 => append.max_timestamp_ms.saturating_sub(first_ms),
            _ => now_ms.saturating_sub(self.created_ms),
        };
        if age_ms > config.max_segment_ms().saturating_sub(self.roll_jitter_ms) {
            return Some(RollReason::SegmentMs);
        }
        if self.offset_index.storage().is_full() || self.time_index.storage().is_full() {
            return Some(RollReason::IndexFull);
        }
        if append.last_offset - self.base_offset > i64::from(i32::MAX) {
            return Some(RollReason::RelativeOffsetOverflow);
        }
        None
    }

    /// Writes `bytes` (whole batches described by `headers`) at the end with one `pwrite`,
    /// then indexes them in memory.
    #[cfg(test)]
    pub(crate) fn append(
        &mut self,
        bytes: &[u8],
        headers: &[RecordBatchHeader],
        index_interval_bytes: u32,
    ) -> Result<()> {
        let target = self.append_target(bytes.len())?;
        target.write(bytes)?;
        self.commit_append(&target, headers, index_interval_bytes)
    }

    /// Where an append of `size_bytes` goes: the end of the file. Writing there touches no
    /// byte a reader may be reading (readers stop at `size_bytes`).
    pub(crate) fn append_target(&self, size_bytes: usize) -> Result<AppendTarget> {
        let position = self.size_bytes;
        let end = position + size_bytes as u64;
        if end > MAX_SEGMENT_BYTES {
            return Err(LogError::InvalidRecord(format!(
                "an append of {size_bytes} bytes would grow segment {} past {MAX_SEGMENT_BYTES} bytes",
                self.base_offset
            )));
        }
        Ok(AppendTarget {
            base_offset: self.base_offset,
            log_path: Arc::clone(&self.log_path),
            log_file: Arc::clone(&self.log_file),
            position,
            size_bytes: size_bytes as u64,
        })
    }

    /// Makes the bytes `target` wrote part of the segment: indexes them and moves the end.
    pub(crate) fn commit_append(
        &mut self,
        target: &AppendTarget,
        headers: &[RecordBatchHeader],
        index_interval_bytes: u32,
    ) -> Result<()> {
        let position = target.position;
        let end = position + target.size_bytes;
        if target.base_offset != self.base_offset || position != self.size_bytes {
            return Err(LogError::InvalidRecord(format!(
                "an append prepared for segment {} at byte {position} does not continue segment {} at byte {}",
                target.base_offset, self.base_offset, self.size_bytes
            )));
        }
        let mut batch_position = position;
        for header in headers {
            self.index_batch(batch_position, header, index_interval_bytes)?;
            batch_position += header.size_bytes() as u64;
        }
        debug_assert_eq!(
            batch_position, end,
            "headers must describe exactly the bytes written"
        );
        self.size_bytes = end;
        Ok(())
    }

    /// Kafka's per-batch index maintenance: an offset entry (and a time entry if the max
    /// timestamp grew) once more than `index_interval_bytes` were written since the last one.
    fn index_batch(
        &mut self,
        position: u64,
        header: &RecordBatchHeader,
        index_interval_bytes: u32,
    ) -> Result<()> {
        let last_offset = header.last_offset();
        if header.max_timestamp > self.max_timestamp_ms {
            self.max_timestamp_ms = header.max_timestamp;
            self.offset_of_max_timestamp = last_offset;
        }
        if self.bytes_since_last_index_entry > u64::from(index_interval_bytes) {
            self.offset_index.append(last_offset, position);
            self.time_index.maybe_append(
                self.max_timestamp_ms,
                self.offset_of_max_timestamp,
                false,
            )?;
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += header.size_bytes() as u64;
        if self.first_batch_timestamp_ms.is_none() {
            self.first_batch_timestamp_ms = Some(header.max_timestamp);
        }
        Ok(())
    }

    /// Turns the active segment into a sealed one: final time entry, indexes written out and
    /// dropped from memory. Idempotent.
    pub(crate) fn seal(&mut self) -> Result<()> {
        if self.time_index.storage().is_resident() {
            self.time_index.maybe_append(
                self.max_timestamp_ms,
                self.offset_of_max_timestamp,
                true,
            )?;
        }
        // Write both before dropping either, so a failed write leaves the segment active.
        self.persist_indexes()?;
        self.offset_index.storage_mut().seal()?;
        self.time_index.storage_mut().seal()
    }

    /// Writes pending index entries and fsyncs the log and its indexes.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.offset_index.storage_mut().persist()?;
        self.time_index.storage_mut().persist()?;
        self.log_file.sync_data().at(&self.log_path)?;
        self.offset_index.storage().sync()?;
        self.time_index.storage().sync()?;
        self.txn_index.flush()
    }

    /// fsyncs the transaction index if it changed since its last fsync.
    pub(crate) fn flush_txn_index(&mut self) -> Result<()> {
        self.txn_index.flush()
    }

    /// Records an aborted transaction whose marker is in this segment.
    pub(crate) fn append_aborted_txn(&mut self, txn: &AbortedTxn) -> Result<()> {
        self.txn_index.append(txn)
    }

    /// See `TxnIndex::collect`.
    pub(crate) fn collect_aborted_txns(
        &self,
        start_offset: i64,
        upper_bound_offset: i64,
        limit: usize,
        out: &mut Vec<AbortedTxn>,
    ) -> Result<Collected> {
        self.txn_index
            .collect(start_offset, upper_bound_offset, limit, out)
    }

    /// Removes the aborted transactions whose marker is at or after `offset`.
    pub(crate) fn truncate_aborted_txns_from(&mut self, offset: i64) -> Result<()> {
        self.txn_index.truncate_from(offset)
    }

    /// Writes pending index entries without fsync (for a clean close after `flush`).
    pub(crate) fn persist_indexes(&mut self) -> Result<()> {
        self.offset_index.storage_mut().persist()?;
        self.time_index.storage_mut().persist()
    }

    #[cfg(test)]
    pub(crate) fn indexes_are_resident(&self) -> bool {
        self.offset_index.storage().is_resident() || self.time_index.storage().is_resident()
    }

    /// The segment's files, for a background fsync.
    pub(crate) fn files(&self) -> Vec<Arc<File>> {
        let mut files = vec![
            Arc::clone(&self.log_file),
            self.offset_index.file(),
            self.time_index.file(),
        ];
        files.extend(self.txn_index.file());
        files
    }

    /// Whole batches from the one holding `start_offset`: only batches whose last offset is
    /// below `max_offset`, at most `max_bytes` unless `min_one_batch` lets a larger first
    /// batch through. `None` if the segment has nothing at or after `start_offset`.
    #[cfg(test)]
    pub(crate) fn read(
        &self,
        start_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<Option<ReadInfo>> {
        self.slice_from(start_offset)?
            .read(start_offset, max_bytes, max_offset, min_one_batch)
    }

    /// What a read from `start_offset` needs, to run without the log's lock: the file, the
    /// position of the offset index entry at or below it, and the segment's current end.
    pub(crate) fn slice_from(&self, start_offset: i64) -> Result<SegmentSlice> {
        Ok(SegmentSlice {
            base_offset: self.base_offset,
            log_path: Arc::clone(&self.log_path),
            log_file: Arc::clone(&self.log_file),
            start_position: u64::from(self.offset_index.lookup(start_offset)?.position),
            end_position: self.size_bytes,
        })
    }

    /// The first batch whose max timestamp is at least `timestamp_ms`, skipping batches that
    /// end below `min_offset` (the log start offset).
    pub(crate) fn find_batch_by_timestamp(
        &self,
        timestamp_ms: i64,
        min_offset: i64,
    ) -> Result<Option<FoundBatch>> {
        let from_offset = self
            .time_index
            .lookup_before(timestamp_ms)?
            .map_or(self.base_offset, |entry| entry.offset)
            .max(min_offset);
        let mut position = u64::from(self.offset_index.lookup(from_offset)?.position);
        while position < self.size_bytes {
            let header = self.read_header_at(position)?;
            if header.last_offset() >= min_offset && header.max_timestamp >= timestamp_ms {
                let mut bytes = vec![0u8; header.size_bytes()];
                self.log_file
                    .read_exact_at(&mut bytes, position)
                    .at(&self.log_path)?;
                return Ok(Some(FoundBatch {
                    records: Bytes::from(bytes),
                    base_offset: header.base_offset,
                    last_offset: header.last_offset(),
                    max_timestamp: header.max_timestamp,
                }));
            }
            position += header.size_bytes() as u64;
        }
        Ok(None)
    }

    /// Cuts the segment before the batch holding `offset` (the whole batch goes, as in
    /// Kafka). Returns the bytes removed. Indexes are trimmed but may be left on disk: call
    /// `activate` next.
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<u64> {
        let Some((position, header)) = self.locate(offset)? else {
            return Ok(0);
        };
        self.log_file.set_len(position).at(&self.log_path)?;
        let removed_bytes = self.size_bytes - position;
        self.size_bytes = position;
        self.offset_index.truncate_to_size(position)?;
        self.time_index.truncate_to_offset(header.base_offset)?;
        self.txn_index.truncate_from(header.base_offset)?;
        Ok(removed_bytes)
    }

    /// Paths of the two index files.
    pub(crate) fn index_paths(&self) -> Vec<std::path::PathBuf> {
        vec![
            self.offset_index.storage().path().to_path_buf(),
            self.time_index.storage().path().to_path_buf(),
        ]
    }

    /// Removes the segment's files (the open handles stay readable until dropped).
    pub(crate) fn delete(self) -> Result<()> {
        self.delete_files()
    }

    /// Removes the files but keeps the handles, for a caller that replaces the segment next.
    pub(crate) fn delete_files(&self) -> Result<()> {
        // The log first: an index without its log is an orphan the loader deletes, while a log
        // without its index would merely be re-indexed.
        let paths = [
            &self.log_path,
            self.offset_index.storage().path(),
            self.time_index.storage().path(),
            self.txn_index.path(),
        ];
        for path in paths {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e).at(path),
            }
        }
        Ok(())
    }

    /// Position and header of the first batch whose last offset is at least `target_offset`:
    /// from the offset index entry at or below it, a forward walk reading only batch headers.
    fn locate(&self, target_offset: i64) -> Result<Option<(u64, RecordBatchHeader)>> {
        self.slice_from(target_offset)?.locate(target_offset)
    }

    /// Reads and checks the batch header at `position`, which must be a batch boundary.
    fn read_header_at(&self, position: u64) -> Result<RecordBatchHeader> {
        read_header_at(&self.log_file, &self.log_path, self.size_bytes, position)
    }

    fn scanner(&self, start: u64, verify: Verify) -> BatchScanner {
        BatchScanner::new(
            Arc::clone(&self.log_file),
            self.log_path.to_path_buf(),
            start,
            self.size_bytes,
            verify,
        )
    }
}

/// Where an append writes: the end of the active segment as it was when the append was
/// prepared. [`AppendTarget::write`] needs no lock; [`LogSegment::commit_append`] then makes
/// the bytes visible.
#[derive(Debug)]
pub(crate) struct AppendTarget {
    base_offset: i64,
    log_path: Arc<Path>,
    log_file: Arc<File>,
    position: u64,
    size_bytes: u64,
}

impl AppendTarget {
    /// One `pwrite` of `bytes` (exactly the size the target was made for).
    pub(crate) fn write(&self, bytes: &[u8]) -> Result<()> {
        debug_assert_eq!(bytes.len() as u64, self.size_bytes);
        if let Err(e) = self.log_file.write_all_at(bytes, self.position) {
            // Drop whatever part of the write landed so the file ends on a batch boundary.
            if let Err(cleanup) = self.log_file.set_len(self.position) {
                tracing::error!(path = %self.log_path.display(), error = %cleanup, "cannot trim a failed append");
            }
            return Err(e).at(&self.log_path);
        }
        Ok(())
    }
}

/// One segment's bytes as they were when the slice was taken (see the module docs): reads
/// through it see only batches that were whole then, whatever is appended meanwhile.
#[derive(Clone, Debug)]
pub(crate) struct SegmentSlice {
    base_offset: i64,
    log_path: Arc<Path>,
    log_file: Arc<File>,
    /// A batch boundary at or before the batch a read wants (from the offset index).
    start_position: u64,
    /// The segment's size when the slice was taken.
    end_position: u64,
}

impl SegmentSlice {
    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Whole batches from the one holding `start_offset`: only batches whose last offset is
    /// below `max_offset`, at most `max_bytes` unless `min_one_batch` lets a larger first
    /// batch through. `None` if the slice has nothing at or after `start_offset`.
    pub(crate) fn read(
        &self,
        start_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<Option<ReadInfo>> {
        let Some((position, first)) = self.locate(start_offset)? else {
            return Ok(None);
        };
        if first.last_offset() >= max_offset {
            return Ok(Some(ReadInfo::empty()));
        }
        let first_size = first.size_bytes();
        let remaining = usize::try_from(self.end_position - position).unwrap_or(usize::MAX);
        let read_len = if first_size <= max_bytes {
            max_bytes.min(remaining)
        } else if min_one_batch {
            first_size
        } else {
            return Ok(Some(ReadInfo::empty()));
        };
        // One pread of the whole range, then cut it back to whole batches below max_offset.
        let mut buf = vec![0u8; read_len];
        self.log_file
            .read_exact_at(&mut buf, position)
            .at(&self.log_path)?;
        let kept = whole_batches_below(&self.log_path, &buf, max_offset)?;
        debug_assert!(kept >= first_size, "the first batch was checked to fit");
        buf.truncate(kept);
        Ok(Some(ReadInfo {
            records: Bytes::from(buf),
            first_batch_base_offset: Some(first.base_offset),
        }))
    }

    /// Position and header of the first batch whose last offset is at least `target_offset`:
    /// a forward walk from `start_position` reading only batch headers.
    fn locate(&self, target_offset: i64) -> Result<Option<(u64, RecordBatchHeader)>> {
        let mut position = self.start_position;
        while position < self.end_position {
            let header =
                read_header_at(&self.log_file, &self.log_path, self.end_position, position)?;
            if header.last_offset() >= target_offset {
                return Ok(Some((position, header)));
            }
            position += header.size_bytes() as u64;
        }
        Ok(None)
    }
}

/// Reads and checks the batch header at `position` (a batch boundary) of a file whose whole
/// batches end at `size_bytes`.
fn read_header_at(
    log_file: &File,
    log_path: &Path,
    size_bytes: u64,
    position: u64,
) -> Result<RecordBatchHeader> {
    let remaining = size_bytes.saturating_sub(position);
    if remaining < RECORD_BATCH_HEADER_BYTES as u64 {
        return Err(LogError::CorruptRecord(format!(
            "{}: {remaining} bytes at position {position} cannot hold a batch header",
            log_path.display()
        )));
    }
    let mut buf = [0u8; RECORD_BATCH_HEADER_BYTES];
    log_file.read_exact_at(&mut buf, position).at(log_path)?;
    let header = RecordBatchHeader::parse(&buf).map_err(|e| {
        LogError::CorruptRecord(format!(
            "{} at position {position}: {e}",
            log_path.display()
        ))
    })?;
    if header.size_bytes() as u64 > remaining {
        return Err(LogError::CorruptRecord(format!(
            "{}: batch at position {position} runs past the end of the segment",
            log_path.display()
        )));
    }
    Ok(header)
}

/// Length of the longest prefix of `buf` made of whole batches ending below `max_offset`.
fn whole_batches_below(log_path: &Path, buf: &[u8], max_offset: i64) -> Result<usize> {
    let mut end = 0;
    loop {
        let rest = &buf[end..];
        let Some((base_offset, last_offset_delta)) = read_offsets(rest) else {
            return Ok(end);
        };
        let Some(size_bytes) = read_size_bytes(rest) else {
            return Err(LogError::CorruptRecord(format!(
                "{}: batch at offset {base_offset} has an impossible length",
                log_path.display()
            )));
        };
        if size_bytes > rest.len()
            || base_offset.saturating_add(i64::from(last_offset_delta)) >= max_offset
        {
            return Ok(end);
        }
        end += size_bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::build_batch;

    fn config() -> LogConfig {
        LogConfig {
            index_interval_bytes: 0,
            ..LogConfig::default()
        }
    }

    fn append(segment: &mut LogSegment, base_offset: i64, timestamp_ms: i64, values: &[&[u8]]) {
        let batch = build_batch(base_offset, timestamp_ms, values);
        let header = RecordBatchHeader::parse(&batch).unwrap();
        segment.append(&batch, &[header], 0).unwrap();
    }

    #[test]
    fn file_names_round_trip() {
        let path = segment_file_path(Path::new("/d"), 42, LOG_FILE_SUFFIX);
        assert_eq!(path, Path::new("/d/00000000000000000042.log"));
        assert_eq!(
            parse_segment_file_name("00000000000000000042.log"),
            Some((42, "log"))
        );
        assert_eq!(
            parse_segment_file_name("00000000000000000042.timeindex"),
            Some((42, "timeindex"))
        );
        assert_eq!(parse_segment_file_name("42.log"), None);
        assert_eq!(parse_segment_file_name("0000000000000000004x.log"), None);
        assert_eq!(parse_segment_file_name("leader-epoch-checkpoint"), None);
    }

    #[test]
    fn reads_locate_the_containing_batch_through_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = LogSegment::create(dir.path(), 100, &config(), 0).unwrap();
        for i in 0..10 {
            append(&mut segment, 100 + i * 3, 1_000 + i, &[b"a", b"b", b"c"]);
        }
        assert!(
            segment.offset_index.storage().len() >= 9,
            "interval 0 indexes every batch"
        );
        let read = segment
            .read(107, 1 << 20, i64::MAX, false)
            .unwrap()
            .unwrap();
        assert_eq!(read.first_batch_base_offset, Some(106));
        let first = RecordBatchHeader::parse(&read.records).unwrap();
        assert_eq!(first.base_offset, 106);
        assert!(
            segment
                .read(130, 1 << 20, i64::MAX, false)
                .unwrap()
                .is_none()
        );

        segment.seal().unwrap();
        assert!(!segment.offset_index.storage().is_resident());
        let sealed = segment
            .read(107, 1 << 20, i64::MAX, false)
            .unwrap()
            .unwrap();
        assert_eq!(
            sealed.records, read.records,
            "on-disk lookups agree with resident ones"
        );
    }

    #[test]
    fn recover_rebuilds_indexes_and_cuts_at_the_first_bad_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = LogSegment::create(dir.path(), 0, &config(), 0).unwrap();
        for i in 0..5 {
            append(&mut segment, i, 10 * i, &[b"x"]);
        }
        let batch_size = segment.size_bytes() / 5;
        segment.seal().unwrap();
        let entries_before = segment.offset_index.storage().len();

        let log_path = segment.log_path().to_path_buf();
        let mut bytes = std::fs::read(&log_path).unwrap();
        bytes[(3 * batch_size + 65) as usize] ^= 0xff;
        std::fs::write(&log_path, &bytes).unwrap();

        let outcome = segment.recover(0).unwrap();
        assert_eq!(outcome.next_offset, 3);
        assert_eq!(outcome.truncated_bytes, 2 * batch_size);
        assert!(outcome.reason.unwrap().contains("CRC"));
        assert_eq!(std::fs::metadata(&log_path).unwrap().len(), 3 * batch_size);
        assert_eq!(
            segment.offset_index.storage().len(),
            2,
            "entries for batches 1 and 2"
        );
        assert!(entries_before > 2);
        assert_eq!(segment.max_timestamp_and_offset(), Some((20, 2)));
    }

    #[test]
    fn a_batch_beyond_the_segments_offset_range_is_cut_as_damage() {
        // The segment_load fuzzer's find: an intact batch (CRC and all) whose offsets lie more
        // than i32::MAX past the segment's base made the time index assert.
        let dir = tempfile::tempdir().unwrap();
        let mut segment = LogSegment::create(dir.path(), 0, &config(), 0).unwrap();
        append(&mut segment, 0, 10, &[b"kept"]);
        let kept_bytes = segment.size_bytes();
        segment.seal().unwrap();
        let log_path = segment.log_path().to_path_buf();
        let mut bytes = std::fs::read(&log_path).unwrap();
        bytes.extend(build_batch(i64::from(i32::MAX) + 1, 20, &[b"far"]));
        bytes.extend(build_batch(1, 30, &[b"after"]));
        std::fs::write(&log_path, &bytes).unwrap();
        drop(segment);

        let mut segment = LogSegment::open(dir.path(), 0, &config(), 0).unwrap();
        let outcome = segment.recover(0).unwrap();
        assert_eq!(outcome.next_offset, 1);
        assert_eq!(std::fs::metadata(&log_path).unwrap().len(), kept_bytes);
        assert!(outcome.reason.unwrap().contains("covers offsets"));
        assert_eq!(segment.max_timestamp_and_offset(), Some((10, 0)));
    }

    #[test]
    fn activate_finds_the_end_from_the_last_index_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = LogSegment::create(dir.path(), 0, &config(), 0).unwrap();
        for i in 0..4 {
            append(&mut segment, i * 2, 50 - i, &[b"x", b"y"]);
        }
        segment.seal().unwrap();
        let mut reopened = LogSegment::open(dir.path(), 0, &config(), 0).unwrap();
        assert!(reopened.indexes_are_sane(None).unwrap());
        assert_eq!(reopened.activate().unwrap(), Some(8));
        assert_eq!(reopened.max_timestamp_and_offset(), Some((51, 1)));
        append(&mut reopened, 8, 60, &[b"z"]);
        assert_eq!(reopened.max_timestamp_and_offset(), Some((60, 8)));
    }

    #[test]
    fn roll_jitter_is_below_jitter_and_segment_ms() {
        // (segment.jitter.ms, segment.ms, random, jitter)
        let cases = [
            (0, 100, 77, 0),
            (10, 100, 77, 7),
            (10, 100, 10, 0),
            (1_000, 100, 250, 50),
            (
                i64::MAX,
                i64::MAX,
                u64::MAX,
                (u64::MAX % i64::MAX as u64) as i64,
            ),
            (10, 100, 0, 0),
        ];
        for (jitter, segment_ms, random, expected) in cases {
            assert_eq!(
                roll_jitter_ms(jitter, segment_ms, random),
                expected,
                "jitter {jitter}, segment.ms {segment_ms}, random {random}"
            );
        }
        let config = LogConfig {
            segment_ms: 100,
            segment_jitter_ms: 40,
            ..config()
        };
        let dir = tempfile::tempdir().unwrap();
        let drawn: std::collections::BTreeSet<i64> = (0..40)
            .map(|base| {
                LogSegment::create(dir.path(), base, &config, 0)
                    .unwrap()
                    .roll_jitter_ms
            })
            .collect();
        assert!(drawn.iter().all(|j| (0..40).contains(j)), "{drawn:?}");
        assert!(drawn.len() > 1, "one jitter for every segment: {drawn:?}");
    }

    #[test]
    fn segment_ms_roll_comes_earlier_by_the_jitter() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_ms: 100,
            segment_jitter_ms: 50,
            ..config()
        };
        let mut segment = LogSegment::create(dir.path(), 0, &config, 0).unwrap();
        segment.roll_jitter_ms = 30;
        append(&mut segment, 0, 1_000, &[b"x"]);
        let at = |max_timestamp_ms| PendingAppend {
            size_bytes: 10,
            max_timestamp_ms,
            last_offset: 1,
        };
        assert_eq!(segment.roll_reason(&config, &at(1_070), 0), None);
        assert_eq!(
            segment.roll_reason(&config, &at(1_071), 0),
            Some(RollReason::SegmentMs)
        );
        // A compacted log also rolls by max.compaction.lag.ms (minus the same jitter).
        let compacted = LogConfig {
            cleanup_policy: crate::config::CleanupPolicy::parse("compact").unwrap(),
            max_compaction_lag_ms: 60,
            ..config
        };
        assert_eq!(segment.roll_reason(&compacted, &at(1_030), 0), None);
        assert_eq!(
            segment.roll_reason(&compacted, &at(1_031), 0),
            Some(RollReason::SegmentMs)
        );
    }

    #[test]
    fn roll_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 1_000,
            segment_ms: 100,
            ..config()
        };
        let mut segment = LogSegment::create(dir.path(), 0, &config, 0).unwrap();
        let small = PendingAppend {
            size_bytes: 10,
            max_timestamp_ms: 1_050,
            last_offset: 1,
        };
        assert_eq!(
            segment.roll_reason(&config, &small, 0),
            None,
            "an empty segment never rolls"
        );
        append(&mut segment, 0, 1_000, &[b"x"]);
        assert_eq!(segment.roll_reason(&config, &small, 0), None);
        let big = PendingAppend {
            size_bytes: 1_000,
            ..small
        };
        assert_eq!(
            segment.roll_reason(&config, &big, 0),
            Some(RollReason::SegmentBytes)
        );
        let late = PendingAppend {
            max_timestamp_ms: 1_101,
            ..small
        };
        assert_eq!(
            segment.roll_reason(&config, &late, 0),
            Some(RollReason::SegmentMs)
        );
        let far = PendingAppend {
            last_offset: i64::from(i32::MAX) + 1,
            ..small
        };
        assert_eq!(
            segment.roll_reason(&config, &far, 0),
            Some(RollReason::RelativeOffsetOverflow)
        );
    }
}
