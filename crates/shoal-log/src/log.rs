//! The partition log (Kafka's `UnifiedLog` over `LocalLog`): an ordered set of segments plus
//! the offsets and epoch history that make them a replicated log.
//!
//! Invariants, upheld by every `&mut self` method:
//! - `log_start_offset <= high_watermark <= log_end_offset`, and
//!   `recovery_point() <= log_end_offset`;
//! - segments are contiguous: each sealed segment ends where the next begins, the active
//!   (last) segment ends at `log_end_offset`, and the first starts at or below
//!   `log_start_offset`;
//! - exactly one segment is active (writable, indexes resident); there is always one;
//! - leader-epoch entries all start below `log_end_offset` and at or after `log_start_offset`.
//!
//! The log is synchronous and single-writer. Shared between threads it goes into a
//! [`SharedLog`](crate::SharedLog), which splits appends and reads into short in-memory steps
//! under a lock and the file I/O outside it ([`Log::prepare_leader_append`] /
//! [`Log::commit_append`], [`Log::plan_read`]), so fetches run in parallel with each other and
//! with the data write of an append.

use std::collections::BTreeMap;
use std::fs::File;
use std::iter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::{NO_TIMESTAMP, RecordBatchHeader};
use crate::checkpoint::sync_dir;
use crate::clean_shutdown;
use crate::cleaner::{self, CleanOutcome, CleanPlan, CleanStats, PlannedSegment};
use crate::config::{LogConfig, TimestampType};
use crate::epoch_cache::{EpochEntry, LeaderEpochFileCache};
use crate::error::{IoResultExt, LogError, Result};
use crate::loader;
use crate::partition_checkpoint::PartitionCheckpoint;
use crate::recompress::compress_for_topic;
use crate::retention::{RetentionCandidate, deletable_prefix};
use crate::segment::{AppendTarget, LogSegment, PendingAppend, SegmentSlice};
use crate::segment_flusher::SegmentFlusher;
use crate::validator::{
    AppendOrigin, assign_offsets, validate_batch_headers, validate_follower_append,
    validate_leader_append,
};

/// Scratch capacity kept between appends; a larger request's buffer is freed afterwards.
const APPEND_BUFFER_RETAINED_BYTES: usize = 8 << 20;
/// Batch headers kept between appends (61+ bytes of input each).
const APPEND_HEADERS_RETAINED: usize = APPEND_BUFFER_RETAINED_BYTES / 61;

/// What an append wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    /// Largest batch timestamp appended, `-1` if none carried one.
    pub max_timestamp: i64,
    /// Last offset of the first batch carrying `max_timestamp` (`-1` if none).
    pub offset_of_max_timestamp: i64,
    /// The broker time stamped on the batches, `-1` unless the topic uses LogAppendTime.
    pub log_append_time_ms: i64,
    pub record_count: u64,
    pub size_bytes: usize,
}

/// Whole batches returned by [`Log::read`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadInfo {
    /// Stored batches, byte for byte; empty if nothing was readable.
    pub records: Bytes,
    /// Base offset of the first batch (it may start before the requested offset).
    pub first_batch_base_offset: Option<i64>,
}

impl ReadInfo {
    pub fn empty() -> Self {
        Self::default()
    }
}

/// A batch found by timestamp; callers decode it to find the exact record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundBatch {
    pub records: Bytes,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

/// An append whose offsets are assigned and whose place in the active segment is fixed, but
/// whose bytes are not written yet: [`PreparedAppend::write`] writes them without the log's
/// lock, then [`Log::commit_append`] makes them visible. Nothing else may change the log in
/// between (a [`SharedLog`](crate::SharedLog) holds its writer lock throughout).
#[derive(Debug)]
pub(crate) struct PreparedAppend {
    info: AppendInfo,
    target: AppendTarget,
    headers: Vec<RecordBatchHeader>,
    /// The leader's copy with offsets assigned; `None`: a follower writes the records as received.
    buffer: Option<Vec<u8>>,
}

impl PreparedAppend {
    /// One `pwrite` of the batches; `records` is what was passed to the prepare call.
    pub(crate) fn write(&self, records: &[u8]) -> Result<()> {
        self.target.write(self.buffer.as_deref().unwrap_or(records))
    }
}

/// The next step of a read (see [`Log::plan_read`]).
#[derive(Debug)]
pub(crate) enum ReadStep {
    /// The answer, known without reading a segment.
    Done(ReadInfo),
    /// Read this segment; if it holds nothing at or after the start offset, plan again with
    /// its base offset as `after_base`.
    Segment(SegmentSlice),
}

/// What a retention pass deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionResult {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
    pub log_start_offset: i64,
}

/// One partition's log on disk. See the crate docs for layout and durability.
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    sealed: BTreeMap<i64, LogSegment>,
    active: LogSegment,
    log_start_offset: i64,
    log_end_offset: i64,
    /// Offsets below this are known fsynced (see also `flusher`).
    recovery_point: i64,
    high_watermark: i64,
    epoch_cache: LeaderEpochFileCache,
    flusher: SegmentFlusher,
    unflushed_records: i64,
    last_flush_ms: i64,
    /// The latest `now_ms` a caller passed in; the clock for calls that take none.
    latest_now_ms: i64,
    append_buffer: Vec<u8>,
    append_headers: Vec<RecordBatchHeader>,
    /// Truncations so far: a cleaning planned before one is not swapped in after it (a
    /// truncated segment re-appended to the same size is not the segment that was cleaned).
    truncations: u64,
    /// Base offsets of batches the cleaner kept because their records cannot be read, each
    /// logged once (see `cleaner`).
    cleaner_unreadable_batches: std::collections::BTreeSet<i64>,
    /// Set when the in-memory log no longer matches the disk (see [`LogError::Offline`]):
    /// reads and writes are refused rather than served from a segment map with a hole.
    offline: Option<String>,
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering it if the last shutdown was unclean.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig, now_ms: i64) -> Result<Self> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let loaded = loader::load(&dir, &config, now_ms)?;
        let epoch_cache = match LeaderEpochFileCache::load(&dir)? {
            Some(cache) => cache,
            None => rebuild_epoch_cache(&dir, &loaded)?,
        };
        let first_base_offset = loaded
            .sealed
            .keys()
            .next()
            .copied()
            .unwrap_or_else(|| loaded.active.base_offset());
        let checkpoint = loaded.checkpoint;
        let log_start_offset = checkpoint.map_or(first_base_offset, |c| {
            c.log_start_offset.max(first_base_offset)
        });
        let mut log = Self {
            flusher: SegmentFlusher::new(&dir),
            dir,
            config,
            sealed: loaded.sealed,
            active: loaded.active,
            log_start_offset,
            log_end_offset: loaded.log_end_offset,
            // The loader fsynced whatever it recovered; a clean shutdown had flushed the rest.
            recovery_point: loaded.log_end_offset,
            high_watermark: 0,
            epoch_cache,
            unflushed_records: 0,
            last_flush_ms: now_ms,
            latest_now_ms: now_ms,
            append_buffer: Vec::new(),
            append_headers: Vec::new(),
            truncations: 0,
            cleaner_unreadable_batches: std::collections::BTreeSet::new(),
            offline: None,
        };
        if log.log_start_offset > log.log_end_offset {
            // Records were deleted (DeleteRecords) past what survived recovery: start over
            // there, as Kafka does.
            tracing::warn!(
                dir = %log.dir.display(),
                log_start_offset = log.log_start_offset,
                log_end_offset = log.log_end_offset,
                "log start offset is past the recovered end; restarting the log at it"
            );
            log.truncate_fully_and_start_at(log.log_start_offset)?;
        }
        log.epoch_cache.truncate_from_end(log.log_end_offset)?;
        log.epoch_cache.truncate_from_start(log.log_start_offset)?;
        log.high_watermark = checkpoint
            .map_or(log.log_start_offset, |c| c.high_watermark)
            .clamp(log.log_start_offset, log.log_end_offset);
        log.write_checkpoint()?;
        tracing::info!(
            dir = %log.dir.display(),
            clean = loaded.had_clean_shutdown,
            segments = log.segment_count(),
            log_start_offset = log.log_start_offset,
            log_end_offset = log.log_end_offset,
            high_watermark = log.high_watermark,
            "log opened"
        );
        Ok(log)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Applies a new config; it takes effect at the next append, roll or retention check.
    pub fn set_config(&mut self, config: LogConfig) -> Result<()> {
        config.validate()?;
        self.active.set_max_index_entries(&config);
        self.config = config;
        Ok(())
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    /// Offsets below this are on stable storage (fsynced).
    pub fn recovery_point(&self) -> i64 {
        let background = self.flusher.flushed_offset().unwrap_or(i64::MIN);
        self.recovery_point.max(background).min(self.log_end_offset)
    }

    /// Total bytes of all segment files.
    pub fn size_bytes(&self) -> u64 {
        self.segments().map(LogSegment::size_bytes).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.sealed.len() + 1
    }

    /// Bytes in the active segment's log file.
    pub fn active_segment_bytes(&self) -> u64 {
        self.active.size_bytes()
    }

    /// Seals a non-empty active segment now (moving a replica between log directories copies
    /// sealed segments while the log serves, so it rolls before each catch-up pass); false if
    /// the active segment was empty.
    pub fn roll_now(&mut self, now_ms: i64) -> Result<bool> {
        if self.active.size_bytes() == 0 {
            return Ok(false);
        }
        self.roll(now_ms)?;
        Ok(true)
    }

    /// Whether [`Log::append_as_leader`] would recompress `records` (`compression.type`): CPU
    /// work that async callers move off their worker threads.
    pub fn append_needs_recompression(&self, records: &[u8]) -> bool {
        crate::recompress::needs_recompression(records, self.config.compression_type)
    }

    /// Validates a producer's batches, assigns them offsets from the log end and `leader_epoch`,
    /// and writes them with one `write`. Nothing is written if any batch is invalid. Batches
    /// whose codec differs from `compression.type` are rewritten first (see `recompress`).
    pub fn append_as_leader(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.append_as_leader_from(records, leader_epoch, now_ms, AppendOrigin::Client)
    }

    /// [`Log::append_as_leader`] for batches from `origin`: the broker's coordinators may
    /// write control batches (transaction markers) and producer batches without a sequence.
    pub fn append_as_leader_from(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<AppendInfo> {
        let prepared = self.prepare_leader_append(records, leader_epoch, now_ms, origin)?;
        let written = prepared.write(records);
        self.commit_append(prepared, written, now_ms)
    }

    /// Whether a leader append of `size_bytes` (batches timestamped `now_ms`) in
    /// `leader_epoch` is only a write into the page cache: the log is online, the epoch is
    /// already recorded (no checkpoint to write), the active segment takes it without rolling
    /// (no files to create) and the flush policy does not fsync after it. Callers that must
    /// not block long (an async thread) append only then; the byte count bounds the records.
    pub fn append_is_light(&self, size_bytes: usize, leader_epoch: i32, now_ms: i64) -> bool {
        let size = i64::try_from(size_bytes).unwrap_or(i64::MAX);
        let pending = PendingAppend {
            size_bytes: size_bytes as u64,
            max_timestamp_ms: now_ms,
            last_offset: self.log_end_offset.saturating_add(size),
        };
        self.offline.is_none()
            && self.epoch_cache.latest_epoch() == Some(leader_epoch)
            && self
                .active
                .roll_reason(&self.config, &pending, now_ms)
                .is_none()
            && self.unflushed_records.saturating_add(size) < self.config.flush_messages
            && now_ms.saturating_sub(self.last_flush_ms) < self.config.flush_ms
    }

    /// The in-memory half of [`Log::append_as_leader`] before the write: validates, assigns
    /// offsets into a copy, rolls if needed. Nothing is visible to readers yet.
    pub(crate) fn prepare_leader_append(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<PreparedAppend> {
        self.check_online()?;
        let mut headers = std::mem::take(&mut self.append_headers);
        let mut buffer = std::mem::take(&mut self.append_buffer);
        match self.prepare_leader_batches(
            records,
            leader_epoch,
            now_ms,
            origin,
            &mut buffer,
            &mut headers,
        ) {
            Ok((info, target)) => Ok(PreparedAppend {
                info,
                target,
                headers,
                buffer: Some(buffer),
            }),
            Err(e) => {
                self.restore_scratch(buffer, headers);
                Err(e)
            }
        }
    }

    /// Makes a written append part of the log (indexes, log end, flush policy); with a failed
    /// `written`, only returns the error (the file was already trimmed back).
    pub(crate) fn commit_append(
        &mut self,
        prepared: PreparedAppend,
        written: Result<()>,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        let PreparedAppend {
            info,
            target,
            headers,
            buffer,
        } = prepared;
        let result = written.and_then(|()| self.finish_write(info, &target, &headers, now_ms));
        let buffer = buffer.unwrap_or_else(|| std::mem::take(&mut self.append_buffer));
        self.restore_scratch(buffer, headers);
        result
    }

    fn prepare_leader_batches(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
        buffer: &mut Vec<u8>,
        headers: &mut Vec<RecordBatchHeader>,
    ) -> Result<(AppendInfo, AppendTarget)> {
        // Records the validator decompressed for a `compression.type` rewrite (empty unless
        // the topic recompresses: no allocation on the common path).
        let mut sections = Vec::new();
        validate_leader_append(
            records,
            &self.config,
            now_ms,
            origin,
            headers,
            &mut sections,
        )?;
        let log_append_time_ms =
            (self.config.message_timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);
        if compress_for_topic(records, headers, &sections, &self.config, buffer)? {
            // Rewritten from records just validated: their headers are what is left to check.
            validate_batch_headers(buffer, self.config.max_message_bytes, headers)?;
        } else {
            buffer.clear();
            buffer.extend_from_slice(records);
        }
        let first_offset = self.log_end_offset;
        assign_offsets(
            buffer,
            headers,
            first_offset,
            leader_epoch,
            log_append_time_ms,
        );
        if self
            .epoch_cache
            .latest_epoch()
            .is_none_or(|latest| leader_epoch > latest)
        {
            self.epoch_cache.assign(leader_epoch, first_offset)?;
        }
        self.prepare_write(
            buffer.len(),
            headers,
            log_append_time_ms.unwrap_or(-1),
            now_ms,
        )
    }

    /// Appends batches copied from the leader: they keep their offsets and epochs, and must
    /// continue the log exactly at its end. An empty `records` is a no-op.
    pub fn append_as_follower(&mut self, records: &[u8], now_ms: i64) -> Result<AppendInfo> {
        self.check_online()?;
        if records.is_empty() {
            return Ok(self.empty_append());
        }
        let prepared = self.prepare_follower_append(records, now_ms)?;
        let written = prepared.write(records);
        self.commit_append(prepared, written, now_ms)
    }

    /// What an append of nothing reports: no offsets, at the log end.
    pub(crate) fn empty_append(&self) -> AppendInfo {
        AppendInfo {
            first_offset: self.log_end_offset,
            last_offset: self.log_end_offset - 1,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: -1,
            log_append_time_ms: -1,
            record_count: 0,
            size_bytes: 0,
        }
    }

    /// The in-memory half of [`Log::append_as_follower`] before the write (`records` must not
    /// be empty).
    pub(crate) fn prepare_follower_append(
        &mut self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<PreparedAppend> {
        self.check_online()?;
        let mut headers = std::mem::take(&mut self.append_headers);
        let result = validate_follower_append(
            records,
            self.config.max_message_bytes,
            self.log_end_offset,
            &mut headers,
        )
        .and_then(|()| {
            for header in &headers {
                self.epoch_cache
                    .assign(header.partition_leader_epoch, header.base_offset)?;
            }
            self.prepare_write(records.len(), &headers, -1, now_ms)
        });
        match result {
            Ok((info, target)) => Ok(PreparedAppend {
                info,
                target,
                headers,
                buffer: None,
            }),
            Err(e) => {
                let buffer = std::mem::take(&mut self.append_buffer);
                self.restore_scratch(buffer, headers);
                Err(e)
            }
        }
    }

    /// Describes validated batches of `size_bytes` and rolls if they do not fit the active
    /// segment; returns where they go.
    fn prepare_write(
        &mut self,
        size_bytes: usize,
        headers: &[RecordBatchHeader],
        log_append_time_ms: i64,
        now_ms: i64,
    ) -> Result<(AppendInfo, AppendTarget)> {
        self.latest_now_ms = self.latest_now_ms.max(now_ms);
        let (Some(first), Some(last)) = (headers.first(), headers.last()) else {
            return Err(LogError::InvalidRecord(
                "the append carries no record batches".to_owned(),
            ));
        };
        let mut info = AppendInfo {
            first_offset: first.base_offset,
            last_offset: last.last_offset(),
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: -1,
            log_append_time_ms,
            record_count: 0,
            size_bytes,
        };
        for header in headers {
            if header.max_timestamp > info.max_timestamp {
                info.max_timestamp = header.max_timestamp;
                info.offset_of_max_timestamp = header.last_offset();
            }
            info.record_count += u64::try_from(header.record_count).unwrap_or(0);
        }
        debug_assert!(
            info.first_offset >= self.log_end_offset,
            "offsets only grow"
        );
        let pending = PendingAppend {
            size_bytes: size_bytes as u64,
            max_timestamp_ms: info.max_timestamp,
            last_offset: info.last_offset,
        };
        if let Some(reason) = self.active.roll_reason(&self.config, &pending, now_ms) {
            tracing::debug!(dir = %self.dir.display(), ?reason, new_base_offset = self.log_end_offset, "rolling segment");
            self.roll(now_ms)?;
        }
        let target = self.active.append_target(size_bytes)?;
        Ok((info, target))
    }

    /// Indexes written batches, moves the log end, and applies the flush policy.
    fn finish_write(
        &mut self,
        info: AppendInfo,
        target: &AppendTarget,
        headers: &[RecordBatchHeader],
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.active
            .commit_append(target, headers, self.config.index_interval_bytes)?;
        self.log_end_offset = info.last_offset + 1;
        self.unflushed_records = self
            .unflushed_records
            .saturating_add(i64::try_from(info.record_count).unwrap_or(i64::MAX));
        self.maybe_flush(now_ms)?;
        Ok(info)
    }

    fn restore_scratch(&mut self, mut buffer: Vec<u8>, mut headers: Vec<RecordBatchHeader>) {
        if buffer.capacity() > APPEND_BUFFER_RETAINED_BYTES {
            buffer = Vec::new();
        }
        if headers.capacity() > APPEND_HEADERS_RETAINED {
            headers = Vec::new();
        }
        self.append_buffer = buffer;
        self.append_headers = headers;
    }

    /// Seals the active segment and starts a new one at the log end; the sealed segments not
    /// yet known flushed are fsynced in the background.
    fn roll(&mut self, now_ms: i64) -> Result<()> {
        let new_base_offset = self.log_end_offset;
        let new_active = LogSegment::create(&self.dir, new_base_offset, &self.config, now_ms)?;
        if let Err(e) = self.active.seal() {
            if let Err(cleanup) = new_active.delete() {
                tracing::error!(dir = %self.dir.display(), error = %cleanup, "cannot remove a half-made segment");
            }
            return Err(e);
        }
        let sealed = std::mem::replace(&mut self.active, new_active);
        self.sealed.insert(sealed.base_offset(), sealed);
        let unflushed: Vec<Arc<File>> = self
            .sealed_from(self.recovery_point())
            .flat_map(|segment| segment.files())
            .collect();
        self.flusher.flush_in_background(unflushed, new_base_offset);
        Ok(())
    }

    /// Applies `flush.messages` / `flush.ms`; true if it flushed.
    pub fn maybe_flush(&mut self, now_ms: i64) -> Result<bool> {
        let due_by_count = self.unflushed_records >= self.config.flush_messages;
        let due_by_time = self.unflushed_records > 0
            && now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms;
        if !due_by_count && !due_by_time {
            return Ok(false);
        }
        self.flush()?;
        self.last_flush_ms = now_ms;
        Ok(true)
    }

    /// fsyncs every segment above the recovery point (log and indexes), then moves the
    /// recovery point to the log end and persists it.
    pub fn flush(&mut self) -> Result<()> {
        let from = self.recovery_point();
        let floor = self.floor_sealed_base(from);
        if from < self.active.base_offset() {
            for segment in self.sealed.range_mut(floor..).map(|(_, s)| s) {
                segment.flush()?;
            }
        }
        self.active.flush()?;
        sync_dir(&self.dir)?;
        self.recovery_point = self.log_end_offset;
        self.unflushed_records = 0;
        self.write_checkpoint()
    }

    /// Whole stored batches from the one containing `start_offset`, ending below `max_offset`
    /// (the high watermark for consumers), at most `max_bytes` — except that `min_one_batch`
    /// returns a larger first batch whole (KIP-74). Reads one segment per call.
    pub fn read(
        &self,
        start_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<ReadInfo> {
        let mut after_base = None;
        loop {
            match self.plan_read(start_offset, max_offset, after_base)? {
                ReadStep::Done(info) => return Ok(info),
                ReadStep::Segment(slice) => {
                    if let Some(info) =
                        slice.read(start_offset, max_bytes, max_offset, min_one_batch)?
                    {
                        return Ok(info);
                    }
                    after_base = Some(slice.base_offset());
                }
            }
        }
    }

    /// The lock-held step of [`Log::read`]: range checks, then the segment to read — the one
    /// holding `start_offset`, or with `after_base` the one after that base offset. Reading
    /// the returned slice needs no lock (see `SegmentSlice`).
    pub(crate) fn plan_read(
        &self,
        start_offset: i64,
        max_offset: i64,
        after_base: Option<i64>,
    ) -> Result<ReadStep> {
        self.check_online()?;
        if start_offset < self.log_start_offset || start_offset > self.log_end_offset {
            return Err(self.out_of_range(start_offset));
        }
        if start_offset == self.log_end_offset || start_offset >= max_offset {
            return Ok(ReadStep::Done(ReadInfo::empty()));
        }
        let segment = match after_base {
            None => self.segments_from(start_offset).next(),
            Some(base) => self
                .sealed
                .range(base.saturating_add(1)..)
                .map(|(_, s)| s)
                .next()
                .or_else(|| (self.active.base_offset() > base).then_some(&self.active)),
        };
        match segment {
            None => Ok(ReadStep::Done(ReadInfo::empty())),
            Some(segment) => Ok(ReadStep::Segment(segment.slice_from(start_offset)?)),
        }
    }

    /// Truncations so far: a read done without the lock that overlapped one is redone.
    pub(crate) fn truncations(&self) -> u64 {
        self.truncations
    }

    /// The first batch at or after the log start whose max timestamp is at least
    /// `timestamp_ms` (ListOffsets by time; callers refine to the record).
    pub fn find_batch_by_timestamp(&self, timestamp_ms: i64) -> Result<Option<FoundBatch>> {
        self.check_online()?;
        for segment in self.segments() {
            if segment
                .max_timestamp_and_offset()
                .is_some_and(|(max_ms, _)| max_ms >= timestamp_ms)
                && let Some(found) =
                    segment.find_batch_by_timestamp(timestamp_ms, self.log_start_offset)?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the last offset of the first batch carrying it
    /// (ListOffsets MAX_TIMESTAMP); `None` if no batch has a timestamp.
    pub fn max_timestamp_and_offset(&self) -> Option<(i64, i64)> {
        self.segments()
            .filter_map(LogSegment::max_timestamp_and_offset)
            .fold(None, |best: Option<(i64, i64)>, candidate| match best {
                Some(best) if best.0 >= candidate.0 => Some(best),
                _ => Some(candidate),
            })
    }

    /// Removes every offset at and after `offset` (a follower diverged from its leader). A
    /// batch straddling `offset` goes whole, so the new log end may be below `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        self.check_online()?;
        if offset < 0 {
            return Err(self.out_of_range(offset));
        }
        if offset >= self.log_end_offset {
            return Ok(());
        }
        self.truncations += 1;
        let first_base_offset = self
            .sealed
            .keys()
            .next()
            .copied()
            .unwrap_or_else(|| self.active.base_offset());
        if offset < first_base_offset {
            return self.truncate_fully_and_start_at(offset);
        }
        self.flusher.invalidate();
        if self.active.base_offset() >= offset {
            let Some(survivor) = self
                .sealed
                .range(..offset)
                .next_back()
                .map(|(base, _)| *base)
            else {
                return self.truncate_fully_and_start_at(offset);
            };
            if let Some(new_active) = self.sealed.remove(&survivor) {
                std::mem::replace(&mut self.active, new_active).delete()?;
            }
        }
        let doomed: Vec<i64> = self.sealed.range(offset..).map(|(base, _)| *base).collect();
        for base in doomed.into_iter().rev() {
            if let Some(segment) = self.sealed.remove(&base) {
                segment.delete()?;
            }
        }
        let removed_bytes = self.active.truncate_to(offset)?;
        let new_end = match self.active.activate()? {
            Some(end) => end,
            None => {
                self.active
                    .recover(self.config.index_interval_bytes)?
                    .next_offset
            }
        };
        // Make the cut durable before the checkpoint says where the log ends: a crash must not
        // resurrect the removed batches.
        self.active.flush()?;
        sync_dir(&self.dir)?;
        tracing::info!(dir = %self.dir.display(), offset, new_end, removed_bytes, "log truncated");
        self.log_end_offset = new_end;
        self.recovery_point = self.recovery_point.min(new_end);
        self.log_start_offset = self.log_start_offset.min(new_end);
        self.high_watermark = self.high_watermark.min(new_end);
        self.epoch_cache.truncate_from_end(new_end)?;
        self.write_checkpoint()
    }

    /// Deletes every segment and restarts the log, empty, at `offset`.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<()> {
        self.check_online()?;
        self.truncations += 1;
        if offset < 0 {
            return Err(self.out_of_range(offset));
        }
        self.flusher.invalidate();
        self.active.delete_files()?;
        for segment in std::mem::take(&mut self.sealed).into_values().rev() {
            segment.delete()?;
        }
        self.active = LogSegment::create(&self.dir, offset, &self.config, self.latest_now_ms)?;
        sync_dir(&self.dir)?;
        tracing::info!(dir = %self.dir.display(), offset, "log emptied and restarted");
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.recovery_point = offset;
        self.high_watermark = offset;
        self.epoch_cache.clear()?;
        self.write_checkpoint()
    }

    /// Moves the log start offset up (DeleteRecords) and deletes segments that end below it.
    /// The caller keeps it at or below the high watermark.
    pub fn advance_log_start_offset(&mut self, offset: i64) -> Result<()> {
        self.check_online()?;
        if offset <= self.log_start_offset {
            return Ok(());
        }
        if offset > self.log_end_offset {
            return Err(self.out_of_range(offset));
        }
        self.log_start_offset = offset;
        self.high_watermark = self.high_watermark.max(offset);
        self.epoch_cache.truncate_from_start(offset)?;
        loop {
            let mut bases = self.sealed.keys().copied();
            let Some(first_base_offset) = bases.next() else {
                break;
            };
            let end_offset = bases.next().unwrap_or_else(|| self.active.base_offset());
            if end_offset > offset {
                break;
            }
            if let Some(segment) = self.sealed.remove(&first_base_offset) {
                segment.delete()?;
            }
        }
        self.write_checkpoint()
    }

    /// Deletes whole segments past `retention.ms` / `retention.bytes`, oldest first, never one
    /// holding offsets at or above `high_watermark`. If every segment qualifies, the log rolls
    /// first so an empty active segment remains.
    pub fn enforce_retention(
        &mut self,
        now_ms: i64,
        high_watermark: i64,
    ) -> Result<RetentionResult> {
        self.check_online()?;
        if !self.config.cleanup_policy.delete {
            return Ok(RetentionResult {
                deleted_segments: 0,
                deleted_bytes: 0,
                log_start_offset: self.log_start_offset,
            });
        }
        let high_watermark = high_watermark.min(self.log_end_offset);
        let mut candidates = Vec::with_capacity(self.segment_count());
        let ends = self
            .sealed
            .keys()
            .skip(1)
            .copied()
            .chain([self.active.base_offset(), self.log_end_offset]);
        for (segment, end_offset) in self.segments().zip(ends) {
            candidates.push(RetentionCandidate {
                size_bytes: segment.size_bytes(),
                end_offset,
                largest_timestamp_ms: segment.largest_timestamp_for_retention_ms()?,
            });
        }
        let deletable = deletable_prefix(&candidates, &self.config, now_ms, high_watermark);
        if deletable == 0 {
            return Ok(RetentionResult {
                deleted_segments: 0,
                deleted_bytes: 0,
                log_start_offset: self.log_start_offset,
            });
        }
        if deletable == candidates.len() {
            self.roll(now_ms)?;
        }
        let mut deleted_bytes = 0;
        for _ in 0..deletable {
            let Some((_, segment)) = self.sealed.pop_first() else {
                break;
            };
            deleted_bytes += segment.size_bytes();
            segment.delete()?;
        }
        let first_base_offset = self
            .sealed
            .keys()
            .next()
            .copied()
            .unwrap_or_else(|| self.active.base_offset());
        if first_base_offset > self.log_start_offset {
            self.log_start_offset = first_base_offset;
            self.high_watermark = self.high_watermark.max(first_base_offset);
            self.epoch_cache.truncate_from_start(first_base_offset)?;
        }
        self.write_checkpoint()?;
        tracing::info!(
            dir = %self.dir.display(),
            deleted_segments = deletable,
            deleted_bytes,
            log_start_offset = self.log_start_offset,
            "retention deleted segments"
        );
        Ok(RetentionResult {
            deleted_segments: deletable,
            deleted_bytes,
            log_start_offset: self.log_start_offset,
        })
    }

    /// Phase 1 of compaction (see `cleaner`): what to clean now, if anything — sealed segments
    /// wholly below `first_uncleanable_offset` and older than `min.compaction.lag.ms`, when the
    /// share written since the last cleaning reaches `min.cleanable.dirty.ratio` or a dirty
    /// segment is older than `max.compaction.lag.ms` (see `cleaner::cleaning_due`).
    ///
    /// `first_uncleanable_offset` is Kafka's: the smaller of the high watermark and the last
    /// stable offset, so every transaction the cleaner sees is decided.
    pub fn plan_clean(
        &self,
        now_ms: i64,
        first_uncleanable_offset: i64,
    ) -> Result<Option<CleanPlan>> {
        self.check_online()?;
        if !self.config.cleanup_policy.compact {
            return Ok(None);
        }
        let lag_horizon_ms = now_ms.saturating_sub(self.config.min_compaction_lag_ms);
        let first_dirty_offset = cleaner::read_checkpoint(&self.dir)?
            .unwrap_or(self.log_start_offset)
            .max(self.log_start_offset);
        // max.compaction.lag.ms: the oldest first-batch timestamp among dirty segments (read
        // only when the setting is in use: it may cost a header read per segment).
        let track_lag = self.config.max_compaction_lag_ms < i64::MAX;
        let mut earliest_dirty_ms: Option<i64> = None;
        let ends = self
            .sealed
            .keys()
            .skip(1)
            .copied()
            .chain([self.active.base_offset()]);
        let mut segments = Vec::new();
        for (segment, end_offset) in self.sealed.values().zip(ends) {
            let young = segment
                .max_timestamp_and_offset()
                .is_some_and(|(ts, _)| ts > lag_horizon_ms);
            if end_offset > first_uncleanable_offset || young {
                break;
            }
            if track_lag
                && end_offset > first_dirty_offset
                && let Some(ts) = segment.first_batch_timestamp_ms()?.filter(|ts| *ts > 0)
            {
                earliest_dirty_ms = Some(earliest_dirty_ms.map_or(ts, |e| e.min(ts)));
            }
            segments.push(PlannedSegment {
                base_offset: segment.base_offset(),
                end_offset,
                path: segment.log_path().to_path_buf(),
                size_bytes: segment.size_bytes(),
            });
        }
        let total: u64 = segments.iter().map(|s| s.size_bytes).sum();
        let dirty: u64 = segments
            .iter()
            .filter(|s| s.end_offset > first_dirty_offset)
            .map(|s| s.size_bytes)
            .sum();
        let due = cleaner::cleaning_due(
            cleaner::DirtyShare {
                dirty_bytes: dirty,
                total_bytes: total,
                earliest_dirty_timestamp_ms: earliest_dirty_ms,
            },
            &self.config,
            now_ms,
        );
        if !due {
            return Ok(None);
        }
        // Aborted transactions that began in the plan and end after it: their entries are in
        // later segments (bounded like a fetch's list, by the entries' last stable offsets).
        let later_aborted_txns = match segments.last() {
            Some(last) => self.collect_aborted_txns(last.end_offset, last.end_offset)?,
            None => Vec::new(),
        };
        Ok(Some(CleanPlan {
            segments,
            first_dirty_offset,
            delete_retention_ms: self.config.delete_retention_ms,
            now_ms,
            truncations: self.truncations,
            merge: cleaner::MergeLimits {
                max_segment_bytes: u64::from(self.config.segment_bytes),
                // A time entry is added only with an offset entry: the smaller index bounds.
                max_index_entries: self
                    .config
                    .max_offset_index_entries()
                    .min(self.config.max_time_index_entries())
                    as u64,
                index_interval_bytes: u64::from(self.config.index_interval_bytes),
            },
            later_aborted_txns,
            producers: cleaner::ActiveProducers::default(),
        }))
    }

    /// Batches the cleaner found unreadable and kept as they are, since the log was opened
    /// (`shoal_log_cleaner_skipped_batches_total`).
    pub fn cleaner_skipped_batches(&self) -> u64 {
        self.cleaner_unreadable_batches.len() as u64
    }

    /// Phase 3 of compaction: swaps the cleaned files in (for runs of segments still present
    /// unchanged), deletes the segments merged away, and moves the cleaner checkpoint.
    pub fn finish_clean(&mut self, outcome: CleanOutcome) -> Result<CleanStats> {
        self.check_online()?;
        for (base_offset, reason) in &outcome.unreadable_batches {
            if self.cleaner_unreadable_batches.insert(*base_offset) {
                tracing::warn!(
                    dir = %self.dir.display(),
                    base_offset,
                    reason,
                    "the cleaner keeps a batch whose records it cannot read"
                );
            }
        }
        let mut stats = CleanStats {
            records_removed: outcome.records_removed,
            tombstones_removed: outcome.tombstones_removed,
            aborted_records_removed: outcome.aborted_records_removed,
            markers_removed: outcome.markers_removed,
            first_dirty_offset: outcome.clean_end_offset,
            ..CleanStats::default()
        };
        let first_base = self.sealed.keys().next().copied();
        let mut complete = true;
        if outcome.truncations != self.truncations {
            // Truncated since the plan: nothing cleaned from it may replace what is there now.
            for done in &outcome.cleaned {
                done.discard();
            }
            return Ok(CleanStats::default());
        }
        for done in outcome.cleaned {
            let unchanged = done.planned.iter().all(|p| {
                self.sealed
                    .get(&p.base_offset)
                    .is_some_and(|s| s.size_bytes() == p.size_bytes)
            });
            let Some(base) = done.planned.first().map(|p| p.base_offset) else {
                continue;
            };
            if !unchanged {
                complete = false;
                done.discard();
                continue;
            }
            let olds: Vec<LogSegment> = done
                .planned
                .iter()
                .filter_map(|p| self.sealed.remove(&p.base_offset))
                .collect();
            stats.bytes_before += olds.iter().map(LogSegment::size_bytes).sum::<u64>();
            let mut olds = olds.into_iter();
            let Some(first) = olds.next() else {
                continue;
            };
            match done.cleaned_path {
                None if first_base != Some(base) => {
                    done.discard();
                    stats.segments_deleted += 1 + olds.len();
                    first.delete()?;
                    for old in olds {
                        old.delete()?;
                    }
                }
                cleaned => {
                    // The first segment stays, empty if need be: it marks the log start.
                    let rest: Vec<LogSegment> = olds.collect();
                    let segment = self.swap_in_run(first, rest, cleaned, done.cleaned_txn_index)?;
                    stats.bytes_after += segment.size_bytes();
                    stats.segments_deleted += done.planned.len() - 1;
                    stats.segments_cleaned += 1;
                    self.sealed.insert(base, segment);
                }
            }
        }
        if complete {
            cleaner::write_checkpoint(&self.dir, outcome.clean_end_offset)?;
        }
        sync_dir(&self.dir)?;
        Ok(stats)
    }

    /// Replaces `first` and the segments merged into it (`rest`, taken out of `sealed`) by the
    /// cleaned file (or an empty one): commit by one rename, delete `rest`, put the file in
    /// `first`'s place, and open it. A failure before the commit puts the segments back; one
    /// after it takes the log offline, since the disk already says "swapped" and memory can
    /// no longer serve those offsets (the loader finishes the swap at the next start).
    fn swap_in_run(
        &mut self,
        first: LogSegment,
        rest: Vec<LogSegment>,
        cleaned: Option<std::path::PathBuf>,
        cleaned_txn_index: Option<std::path::PathBuf>,
    ) -> Result<LogSegment> {
        let base = first.base_offset();
        let log_path = first.log_path().to_path_buf();
        let index_paths = first.index_paths();
        let txn_swap = cleaner::txn_index_swap_path(&log_path);
        // The carried entries are in place before the commit, so whoever finishes the swap
        // (this, or the loader after a crash) has them; without a commit they are a leftover.
        let staged = match &cleaned_txn_index {
            Some(path) => std::fs::rename(path, &txn_swap)
                .at(&txn_swap)
                .and_then(|()| sync_dir(&self.dir)),
            None => Ok(()),
        };
        let committed = staged
            .and_then(|()| match cleaned {
                Some(path) => Ok(path),
                None => {
                    let path = log_path.with_extension("log.cleaned");
                    File::create(&path)
                        .and_then(|f| f.sync_all())
                        .at(&path)
                        .map(|()| path)
                }
            })
            .and_then(|cleaned| cleaner::commit_swap(&cleaned, &log_path));
        let swap = match committed {
            Ok(swap) => swap,
            Err(error) => {
                // Unless the commit rename itself landed (the loader then finishes the swap).
                let log_swap = log_path.with_extension(format!("log.{}", cleaner::SWAP_SUFFIX));
                if !log_swap.exists() {
                    for path in [Some(&txn_swap), cleaned_txn_index.as_ref()]
                        .into_iter()
                        .flatten()
                    {
                        let _ = std::fs::remove_file(path);
                    }
                }
                for segment in std::iter::once(first).chain(rest) {
                    self.sealed.insert(segment.base_offset(), segment);
                }
                return Err(error);
            }
        };
        drop(first);
        let finished = (|| {
            for old in rest {
                old.delete()?;
            }
            // The deletions are durable before the rename that ends the swap: a crash must
            // never leave the merged file beside a segment it covers and no swap to say so.
            sync_dir(&self.dir)?;
            cleaner::finish_swap(&swap, &log_path, &index_paths)?;
            let mut segment = LogSegment::open(&self.dir, base, &self.config, self.latest_now_ms)?;
            segment.recover(self.config.index_interval_bytes)?;
            segment.seal()?;
            Ok(segment)
        })();
        if let Err(error) = &finished {
            let reason =
                format!("the compaction swap of segment {base} failed after its commit: {error}");
            tracing::error!(dir = %self.dir.display(), %reason, "log offline");
            self.offline = Some(reason);
        }
        finished
    }

    pub(crate) fn check_online(&self) -> Result<()> {
        match &self.offline {
            None => Ok(()),
            Some(reason) => Err(LogError::Offline {
                dir: self.dir.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// The newest leader epoch that wrote to this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epoch_cache.latest_epoch()
    }

    /// OffsetsForLeaderEpoch: `(largest epoch <= epoch, its end offset)`; `None` is
    /// UNDEFINED (-1, -1). See `LeaderEpochFileCache::end_offset_for` for the exact cases.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epoch_cache.end_offset_for(epoch, self.log_end_offset)
    }

    pub fn epoch_entries(&self) -> &[EpochEntry] {
        self.epoch_cache.entries()
    }

    /// Persists the high watermark (clamped to the log) for the next open.
    pub fn checkpoint_high_watermark(&mut self, high_watermark: i64) -> Result<()> {
        self.high_watermark = high_watermark.clamp(self.log_start_offset, self.log_end_offset);
        self.write_checkpoint()
    }

    /// The high watermark last checkpointed (or read back at open).
    pub fn high_watermark_checkpoint(&self) -> i64 {
        self.high_watermark
    }

    /// Flushes everything, writes the checkpoints and the clean-shutdown marker.
    pub fn close(mut self) -> Result<()> {
        self.flusher.wait();
        self.flush()?;
        clean_shutdown::write_marker(&self.dir)?;
        tracing::info!(dir = %self.dir.display(), log_end_offset = self.log_end_offset, "log closed");
        Ok(())
    }

    /// Removes the partition directory and everything in it.
    pub fn delete(mut self) -> Result<()> {
        self.flusher.wait();
        std::fs::remove_dir_all(&self.dir).at(&self.dir)
    }

    fn write_checkpoint(&mut self) -> Result<()> {
        self.recovery_point = self.recovery_point();
        PartitionCheckpoint {
            log_start_offset: self.log_start_offset,
            recovery_point: self.recovery_point,
            high_watermark: self.high_watermark,
        }
        .write(&self.dir)
    }

    fn out_of_range(&self, offset: i64) -> LogError {
        LogError::OffsetOutOfRange {
            offset,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
        }
    }

    /// All segments, oldest first.
    fn segments(&self) -> impl Iterator<Item = &LogSegment> {
        self.sealed.values().chain(iter::once(&self.active))
    }

    /// Segments from the one holding `offset` to the active one.
    fn segments_from(&self, offset: i64) -> impl Iterator<Item = &LogSegment> {
        self.sealed_from(offset).chain(iter::once(&self.active))
    }

    /// Sealed segments from the one holding `offset` (none if the active one holds it).
    fn sealed_from(&self, offset: i64) -> impl Iterator<Item = &LogSegment> {
        let holds_sealed = offset < self.active.base_offset();
        let floor = self.floor_sealed_base(offset);
        holds_sealed
            .then(|| self.sealed.range(floor..).map(|(_, s)| s))
            .into_iter()
            .flatten()
    }

    /// Base offset of the sealed segment holding `offset`, or `i64::MIN` below them all.
    fn floor_sealed_base(&self, offset: i64) -> i64 {
        self.sealed
            .range(..=offset)
            .next_back()
            .map_or(i64::MIN, |(base, _)| *base)
    }
}

/// The leader epoch cache rebuilt from the batch headers of a log whose checkpoint is missing
/// or was damaged (an empty log needs no scan). Every batch carries the epoch of the leader
/// that wrote it, so this is what the checkpoint would have said, less any epoch whose batches
/// compaction or retention already removed.
fn rebuild_epoch_cache(
    dir: &Path,
    loaded: &loader::LoadedSegments,
) -> Result<LeaderEpochFileCache> {
    let mut cache = LeaderEpochFileCache::empty(dir);
    if loaded.sealed.is_empty() && loaded.active.size_bytes() == 0 {
        return Ok(cache);
    }
    // Only the first batch of each epoch is kept: bounded by leader changes, not by batches.
    let mut starts: Vec<(i32, i64)> = Vec::new();
    for segment in loaded
        .sealed
        .values()
        .chain(std::iter::once(&loaded.active))
    {
        segment.for_each_batch_header(|header| {
            if starts
                .last()
                .is_none_or(|&(epoch, _)| epoch != header.partition_leader_epoch)
            {
                starts.push((header.partition_leader_epoch, header.base_offset));
            }
        })?;
    }
    cache.rebuild(starts)?;
    tracing::info!(
        dir = %dir.display(),
        epochs = cache.entries().len(),
        "leader epoch cache rebuilt from the log"
    );
    Ok(cache)
}

#[path = "log_txn.rs"]
mod txn;

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "recovery_tests.rs"]
mod recovery_tests;

#[cfg(test)]
#[path = "cleaner_tests.rs"]
mod cleaner_tests;

#[cfg(test)]
#[path = "validation_tests.rs"]
mod validation_tests;

#[cfg(test)]
#[path = "log_txn_tests.rs"]
mod txn_tests;

#[cfg(test)]
#[path = "cleaner_txn_tests.rs"]
mod cleaner_txn_tests;
