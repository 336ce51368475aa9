//! Log compaction (Kafka's `LogCleaner`): for `cleanup.policy=compact`, keep the latest record
//! of every key; a tombstone (null value) keeps its key deleted for `delete.retention.ms` and
//! then goes too. Offsets never change: kept records stay in their batches at their offsets,
//! and a batch whose records all go is dropped, leaving a gap consumers skip.
//!
//! **Three phases, so the log is locked only briefly.** Sealed segments never change, so the
//! work that reads and writes them needs no lock:
//! 1. [`crate::Log::plan_clean`] (under the log's lock) picks the cleanable segments: sealed,
//!    wholly below the first uncleanable offset (the high watermark and the last stable
//!    offset, the smaller), older than `min.compaction.lag.ms`, and only when the
//!    *dirty* share (written since the last cleaning, per the cleaner checkpoint) reaches
//!    `min.cleanable.dirty.ratio` or a dirty segment's first batch is older than
//!    `max.compaction.lag.ms` ([`cleaning_due`]).
//! 2. [`run`] (no lock) maps each key of the dirty segments to its latest offset — whole
//!    segments only, within `map_budget_bytes` — then rewrites every planned segment below the
//!    map's end into a `.cleaned` file, streaming batch by batch.
//! 3. [`crate::Log::finish_clean`] (under the lock) swaps each cleaned file in for its
//!    segments, if they are all still there unchanged (retention may have deleted one
//!    meanwhile), and moves the checkpoint to the map's end.
//!
//! **Crash safety.** A cleaned segment is fsynced as `<base>.log.cleaned`, renamed to
//! `<base>.log.swap` (the commit point, one atomic rename), then the old indexes are deleted
//! and the swap file is renamed over the `.log`. At load, `.cleaned` files are deleted and a
//! `.swap` file finishes its swap (see `loader`); missing indexes are rebuilt.
//!
//! **Bounded.** The key map holds at most `map_budget_bytes` of keys (an exact map: no hash
//! collisions can delete a live record); a batch decompresses to at most
//! `compression::MAX_DECOMPRESSED_BYTES`, and one that would not is kept whole; reads and
//! writes go through an [`IoThrottle`] (`log.cleaner.io.max.bytes.per.second`); the broker runs
//! one cleaning at a time.
//!
//! **Small segments merge.** Cleaning shrinks segments, and a log that only ever cleaned them
//! one by one would keep every segment it ever rolled. Consecutive planned segments are
//! cleaned into one file while their sizes together stay within `segment.bytes` and their
//! offsets within one segment's index (Kafka's `groupSegmentsBySize`); the file takes the
//! first one's name. Its swap is still one rename: the merged-away segments are deleted after
//! it, and a crash in between is finished by the loader, which deletes every segment whose
//! offsets the swap file covers.
//!
//! **Unreadable batches are kept.** A batch whose records cannot be read (stored before the
//! leader validated records, or damaged on disk under a valid CRC) adds no keys to the map and
//! is copied as it is: cleaning goes on around it rather than stopping for good, and nothing
//! is dropped silently. [`crate::Log::finish_clean`] logs each such batch once and counts it
//! ([`crate::Log::cleaner_skipped_batches`], exported as
//! `shoal_log_cleaner_skipped_batches_total`).
//!
//! **Transactions** (Kafka's rules; the decisions are in `cleaner_txn`). The planned segments
//! lie below the last stable offset, so every transaction in them is decided. Walking the
//! batches beside the segments' aborted-transaction entries, the map skips the records of
//! aborted transactions (they never shadow an older value) and takes committed transactional
//! records like any; the rewrite removes aborted batches whole and compacts committed ones by
//! key, keeping their header fields. A marker stays while a batch of its transaction does and
//! then until its delete horizon (KIP-534's attribute bit, set by the pass that first finds it
//! removable, `delete.retention.ms` ahead), and stays whole if the partition's producer state
//! may need it ([`ActiveProducers`], passed with [`CleanPlan::keep_for_producers`]). A run's
//! entries that still describe something (an aborted transaction whose data this pass
//! removed, so its marker stays one more pass) are written, in order, into
//! `<first base>.txnindex.cleaned`, which becomes `.txnindex.swap` just before the commit
//! rename and the segment's `.txnindex` just before the final one — or, written empty, removes
//! the old one (the loader finishes or discards it with the `.log.swap`).
//!
//! Limits left as they are: a data batch is not kept for its producer's sake (Kafka keeps the
//! last batch of each active producer, emptied), so an idempotent producer whose every batch
//! was compacted away is unknown after a restart that rebuilds the producer state from the log
//! (no snapshot), as after a producer-state eviction; a protected marker is kept whole, not
//! emptied; a marker the producer state protects may keep a few of its older siblings (all of
//! its epoch after its last data batch).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::batch::{LOG_OVERHEAD_BYTES, RECORD_BATCH_HEADER_BYTES, RecordBatchHeader};
use crate::checkpoint::{read_bounded, set_aside_damaged, sync_dir, write_atomically};
use crate::cleaner_throttle::IoThrottle;
pub use crate::cleaner_txn::ActiveProducers;
use crate::cleaner_txn::{
    CleanedTxns, DataTxn, IndexEntries, MarkerCase, MarkerFate, classify_control, delete_horizon,
    marker_fate, with_delete_horizon, write_entries,
};
use crate::compression::{self, MAX_DECOMPRESSED_BYTES};
use crate::error::{IoResultExt, LogError, Result};
use crate::record_view::records;
use crate::segment::TXN_INDEX_FILE_SUFFIX;
use crate::txn_index::AbortedTxn;

/// File (in the partition directory) holding the first dirty offset: everything below it has
/// been cleaned at least once.
pub(crate) const CLEANER_CHECKPOINT_FILE: &str = "cleaner-checkpoint";
pub(crate) const CLEANED_SUFFIX: &str = "cleaned";
pub(crate) const SWAP_SUFFIX: &str = "swap";
/// Bytes one key costs in the map besides its own bytes (the offset, the map's overhead).
const MAP_ENTRY_OVERHEAD_BYTES: usize = 48;
/// Default budget of the key map (Kafka's `log.cleaner.dedupe.buffer.size`).
pub const DEFAULT_MAP_BUDGET_BYTES: usize = 128 << 20;

/// What one cleaning may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanerLimits {
    /// `log.cleaner.dedupe.buffer.size`: bytes of keys the map may hold.
    pub map_budget_bytes: usize,
    /// `log.cleaner.io.max.bytes.per.second` (reads plus writes); `None` = no limit.
    pub io_max_bytes_per_second: Option<u64>,
}

impl Default for CleanerLimits {
    fn default() -> Self {
        CleanerLimits {
            map_budget_bytes: DEFAULT_MAP_BUDGET_BYTES,
            io_max_bytes_per_second: None,
        }
    }
}
/// Largest batch the cleaner reads (a stored batch was accepted under `max.message.bytes`).
const MAX_BATCH_BYTES: usize = 64 << 20;

/// One sealed segment the plan covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedSegment {
    pub(crate) base_offset: i64,
    /// The next segment's base offset: this one holds offsets below it.
    pub(crate) end_offset: i64,
    pub(crate) path: PathBuf,
    pub(crate) size_bytes: u64,
}

/// What phase 1 decided; phase 2 works from it alone.
#[derive(Debug, Clone)]
pub struct CleanPlan {
    pub(crate) segments: Vec<PlannedSegment>,
    /// Offsets below were cleaned before (tombstones there may expire).
    pub(crate) first_dirty_offset: i64,
    pub(crate) delete_retention_ms: i64,
    pub(crate) now_ms: i64,
    /// The log's truncation count when planned (see `Log::finish_clean`).
    pub(crate) truncations: u64,
    pub(crate) merge: MergeLimits,
    /// The aborted transactions that began in the planned segments and end after them (their
    /// entries are in later segments' indexes).
    pub(crate) later_aborted_txns: Vec<AbortedTxn>,
    /// What the partition's producer state needs kept (see `cleaner_txn`).
    pub(crate) producers: ActiveProducers,
}

impl CleanPlan {
    /// Markers the partition's producer state still needs stay (see `cleaner_txn`): a
    /// partition passes its tracked producers and its producer snapshot's offset here before
    /// [`run`]. Without it no marker is protected.
    pub fn keep_for_producers(&mut self, producers: ActiveProducers) {
        self.producers = producers;
    }
}

/// How far segments may be merged: what one segment may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MergeLimits {
    /// `segment.bytes`
    pub(crate) max_segment_bytes: u64,
    /// Index entries one segment may hold (`segment.index.bytes` over the larger entry, the
    /// time index's 12 bytes).
    pub(crate) max_index_entries: u64,
    /// `index.interval.bytes`: one index entry per this many bytes, at most.
    pub(crate) index_interval_bytes: u64,
}

/// Segments rewritten by phase 2 into one file, waiting to be swapped in.
#[derive(Debug)]
pub(crate) struct CleanedGroup {
    /// Consecutive segments, never empty; the file replaces them all under the first's name.
    pub(crate) planned: Vec<PlannedSegment>,
    /// The `.cleaned` file, or `None` when nothing in them survived.
    pub(crate) cleaned_path: Option<PathBuf>,
    /// The aborted-transaction entries the cleaned file keeps (an empty file: none, and the
    /// first segment had some; `None`: none, and it had none).
    pub(crate) cleaned_txn_index: Option<PathBuf>,
}

impl CleanedGroup {
    /// Removes the files of a cleaning that will not be swapped in.
    pub(crate) fn discard(&self) {
        for path in [&self.cleaned_path, &self.cleaned_txn_index]
            .into_iter()
            .flatten()
        {
            let _ = fs::remove_file(path);
        }
    }
}

/// Phase 2's result.
#[derive(Debug)]
pub struct CleanOutcome {
    pub(crate) cleaned: Vec<CleanedGroup>,
    /// The plan's truncation count.
    pub(crate) truncations: u64,
    /// The new first dirty offset (where the key map ended).
    pub(crate) clean_end_offset: i64,
    pub(crate) records_removed: u64,
    pub(crate) tombstones_removed: u64,
    pub(crate) aborted_records_removed: u64,
    pub(crate) markers_removed: u64,
    /// Batches whose records could not be read, kept whole: (base offset, why).
    pub(crate) unreadable_batches: Vec<(i64, String)>,
}

/// What a finished cleaning did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub segments_cleaned: usize,
    pub segments_deleted: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Data records removed: superseded, expired tombstones, and aborted.
    pub records_removed: u64,
    /// Of `records_removed`, expired tombstones.
    pub tombstones_removed: u64,
    /// Of `records_removed`, records of aborted transactions.
    pub aborted_records_removed: u64,
    /// Transaction markers (control batches) removed.
    pub markers_removed: u64,
    pub first_dirty_offset: i64,
}

/// How much of the cleanable part of a log is dirty, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirtyShare {
    pub(crate) dirty_bytes: u64,
    pub(crate) total_bytes: u64,
    /// The oldest first-batch timestamp of a dirty segment, when known.
    pub(crate) earliest_dirty_timestamp_ms: Option<i64>,
}

/// Kafka's `LogCleanerManager` rule: clean when the dirty share reaches
/// `min.cleanable.dirty.ratio`, or, whatever the ratio, when some dirty record is older than
/// `max.compaction.lag.ms` (so a key's old values are gone within a known time, e.g. for
/// erasure requests). Nothing dirty, nothing to do.
pub(crate) fn cleaning_due(share: DirtyShare, config: &crate::LogConfig, now_ms: i64) -> bool {
    if share.dirty_bytes == 0 {
        return false;
    }
    let ratio_due =
        share.dirty_bytes as f64 >= config.min_cleanable_dirty_ratio * share.total_bytes as f64;
    let clean_until_ms = now_ms.saturating_sub(config.max_compaction_lag_ms);
    let lag_due = share
        .earliest_dirty_timestamp_ms
        .is_some_and(|ts| ts < clean_until_ms);
    ratio_due || lag_due
}

/// The first dirty offset the last cleaning recorded; `None` if there is none, or if the file
/// was damaged (set aside: the next cleaning then starts at the log start, redoing work only).
pub(crate) fn read_checkpoint(dir: &Path) -> Result<Option<i64>> {
    let path = dir.join(CLEANER_CHECKPOINT_FILE);
    let parsed = match read_bounded(&path, 64) {
        Ok(None) => return Ok(None),
        Ok(Some(text)) => text
            .trim()
            .parse::<i64>()
            .map_err(|e| e.to_string())
            .and_then(|offset| {
                if offset >= 0 {
                    Ok(offset)
                } else {
                    Err(format!("negative offset {offset}"))
                }
            }),
        Err(LogError::CorruptCheckpoint { reason, .. }) => Err(reason),
        Err(e) => return Err(e),
    };
    match parsed {
        Ok(offset) => Ok(Some(offset)),
        Err(reason) => {
            set_aside_damaged(&path, &reason)?;
            Ok(None)
        }
    }
}

pub(crate) fn write_checkpoint(dir: &Path, first_dirty_offset: i64) -> Result<()> {
    write_atomically(
        &dir.join(CLEANER_CHECKPOINT_FILE),
        format!("{first_dirty_offset}\n").as_bytes(),
    )
}

/// Phase 2: builds the key map and writes the cleaned segments (see the module docs).
pub fn run(plan: &CleanPlan, limits: &CleanerLimits) -> Result<CleanOutcome> {
    let mut throttle = IoThrottle::new(limits.io_max_bytes_per_second);
    let (latest, clean_end_offset) = build_map(plan, limits.map_budget_bytes, &mut throttle)?;
    let mut outcome = CleanOutcome {
        cleaned: Vec::new(),
        truncations: plan.truncations,
        clean_end_offset,
        records_removed: 0,
        tombstones_removed: 0,
        aborted_records_removed: 0,
        markers_removed: 0,
        unreadable_batches: Vec::new(),
    };
    let cleanable: Vec<PlannedSegment> = plan
        .segments
        .iter()
        .filter(|s| s.end_offset <= clean_end_offset)
        .cloned()
        .collect();
    // One walk over every cleaned run, in order: a transaction may span runs.
    let mut txns = CleanedTxns::new(txn_entries(plan, 0));
    for group in group_segments(&cleanable, &plan.merge) {
        match clean_group(plan, group, &latest, &mut txns, &mut outcome, &mut throttle) {
            Ok(cleaned) => outcome.cleaned.push(cleaned),
            Err(e) => {
                // Leave nothing half-written behind; the next pass starts over.
                for done in &outcome.cleaned {
                    done.discard();
                }
                return Err(e);
            }
        }
    }
    Ok(outcome)
}

/// The aborted-transaction entries of the planned segments from the `from`th on, in order,
/// then those of later segments whose transactions began in the plan.
fn txn_entries(plan: &CleanPlan, from: usize) -> IndexEntries {
    let paths = plan.segments[from.min(plan.segments.len())..]
        .iter()
        .map(|s| s.path.with_extension(TXN_INDEX_FILE_SUFFIX))
        .collect();
    IndexEntries::new(paths, plan.later_aborted_txns.clone())
}

/// The latest offset of every key written from `first_dirty_offset` on, over whole dirty
/// segments that fit the budget; returns the map and the offset it covers up to. Records of
/// aborted transactions add no keys (`cleaner_txn`).
fn build_map(
    plan: &CleanPlan,
    budget: usize,
    throttle: &mut IoThrottle,
) -> Result<(HashMap<Vec<u8>, i64>, i64)> {
    let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
    let mut used = 0usize;
    let mut covered_to = plan.first_dirty_offset;
    let first_dirty = plan
        .segments
        .iter()
        .position(|s| s.end_offset > plan.first_dirty_offset)
        .unwrap_or(plan.segments.len());
    let mut txns = CleanedTxns::new(txn_entries(plan, first_dirty));
    for segment in &plan.segments[first_dirty..] {
        let mut segment_keys: Vec<(Vec<u8>, i64)> = Vec::new();
        let mut segment_bytes = 0usize;
        for_each_batch(&segment.path, segment.size_bytes, |header, batch| {
            throttle.account(batch.len());
            if header.is_control() {
                let (control, _) = classify_control(header, batch);
                txns.on_control(header.into(), control)?;
                return Ok(());
            }
            let aborted = txns.on_data(header.into())? == DataTxn::Aborted;
            if aborted || header.last_offset() < plan.first_dirty_offset || !compactable(header) {
                return Ok(());
            }
            let Ok(section) = records_section(header, batch) else {
                return Ok(());
            };
            // An unreadable batch adds no keys; `filter_batch` keeps it whole and reports it.
            let Ok(all) = records(&section, record_count(header)) else {
                return Ok(());
            };
            for record in all {
                let offset = header.base_offset + i64::from(record.offset_delta);
                if offset < plan.first_dirty_offset {
                    continue;
                }
                if let Some(key) = record.key {
                    segment_bytes += key.len() + MAP_ENTRY_OVERHEAD_BYTES;
                    segment_keys.push((key.to_vec(), offset));
                }
            }
            Ok(())
        })?;
        // Only the decisions matter here; entries are kept by the cleaning walk.
        txns.end_segment(segment.end_offset);
        if used + segment_bytes > budget {
            if covered_to == plan.first_dirty_offset {
                return Err(LogError::InvalidConfig(format!(
                    "{}: one segment's keys need {segment_bytes} bytes, more than the cleaner's \
                     {budget}-byte map; not compacting",
                    segment.path.display()
                )));
            }
            break;
        }
        for (key, offset) in segment_keys {
            let entry = latest.entry(key).or_insert(offset);
            *entry = (*entry).max(offset);
        }
        used += segment_bytes;
        covered_to = segment.end_offset;
    }
    Ok((latest, covered_to))
}

/// Splits consecutive segments into runs that fit one segment together: their sizes before
/// cleaning within `segment.bytes` (so the merged file is, whatever cleaning removes), their
/// offsets within what a segment's index can address, and their index entries within its
/// index. A segment alone always forms a run.
pub(crate) fn group_segments<'a>(
    segments: &'a [PlannedSegment],
    limits: &MergeLimits,
) -> Vec<&'a [PlannedSegment]> {
    let mut groups = Vec::new();
    let mut start = 0;
    let mut size_bytes = 0u64;
    for (i, segment) in segments.iter().enumerate() {
        let first = &segments[start];
        let size_with = size_bytes + segment.size_bytes;
        let fits = i > start
            && size_with <= limits.max_segment_bytes
            && segment.end_offset - 1 - first.base_offset <= i64::from(i32::MAX)
            && size_with / limits.index_interval_bytes.max(1) < limits.max_index_entries;
        if i > start && !fits {
            groups.push(&segments[start..i]);
            start = i;
            size_bytes = segment.size_bytes;
        } else {
            size_bytes = size_with;
        }
    }
    if start < segments.len() {
        groups.push(&segments[start..]);
    }
    groups
}

/// Rewrites a run of segments into `<first base>.log.cleaned`, and the aborted-transaction
/// entries it keeps into `<first base>.txnindex.cleaned`.
fn clean_group<I: Iterator<Item = Result<AbortedTxn>>>(
    plan: &CleanPlan,
    group: &[PlannedSegment],
    latest: &HashMap<Vec<u8>, i64>,
    txns: &mut CleanedTxns<I>,
    outcome: &mut CleanOutcome,
    throttle: &mut IoThrottle,
) -> Result<CleanedGroup> {
    let Some(first) = group.first() else {
        return Err(LogError::InvalidConfig(
            "an empty group of segments to clean".to_owned(),
        ));
    };
    let cleaned_path = first.path.with_extension(format!("log.{CLEANED_SUFFIX}"));
    let file = File::create(&cleaned_path).at(&cleaned_path)?;
    let mut out = BufWriter::new(file);
    let mut size_after = 0u64;
    let horizon_ms = plan.now_ms.saturating_sub(plan.delete_retention_ms);
    for segment in group {
        for_each_batch(&segment.path, segment.size_bytes, |header, batch| {
            throttle.account(batch.len());
            let kept = if header.is_control() {
                let kept = filter_control(plan, txns, header, batch)?;
                outcome.markers_removed += u64::from(matches!(kept.bytes, Kept::None));
                kept
            } else if txns.on_data(header.into())? == DataTxn::Aborted {
                let count = u64::try_from(header.record_count.max(0)).unwrap_or(0);
                outcome.aborted_records_removed += count;
                Filtered {
                    bytes: Kept::None,
                    removed: count,
                    tombstones_removed: 0,
                    unreadable: None,
                }
            } else {
                filter_batch(header, batch, latest, plan.first_dirty_offset, horizon_ms)?
            };
            outcome.records_removed += kept.removed;
            outcome.tombstones_removed += kept.tombstones_removed;
            if let Some(reason) = kept.unreadable {
                outcome
                    .unreadable_batches
                    .push((header.base_offset, reason));
            }
            let bytes: &[u8] = match &kept.bytes {
                Kept::All => batch,
                Kept::None => return Ok(()),
                Kept::Rewritten(bytes) => bytes,
            };
            out.write_all(bytes).at(&cleaned_path)?;
            throttle.account(bytes.len());
            size_after += bytes.len() as u64;
            Ok(())
        })?;
    }
    let file = out
        .into_inner()
        .map_err(|e| e.into_error())
        .at(&cleaned_path)?;
    file.sync_all().at(&cleaned_path)?;
    drop(file);
    // The run's aborted transactions whose data or marker stays, in order (see the module docs).
    let end_offset = group.last().map_or(first.end_offset, |s| s.end_offset);
    let retained = txns.end_segment(end_offset);
    let txn_cleaned = first
        .path
        .with_extension(format!("{TXN_INDEX_FILE_SUFFIX}.{CLEANED_SUFFIX}"));
    let cleaned_txn_index = first
        .path
        .with_extension(TXN_INDEX_FILE_SUFFIX)
        .try_exists()
        .at(&first.path)
        .and_then(|had_entries| {
            if retained.is_empty() && !had_entries {
                return Ok(None);
            }
            write_entries(&txn_cleaned, &retained)?;
            throttle.account(retained.len() * crate::txn_index::TXN_INDEX_ENTRY_BYTES);
            Ok(Some(txn_cleaned.clone()))
        });
    let cleaned_txn_index = match cleaned_txn_index {
        Ok(path) => path,
        Err(e) => {
            let _ = fs::remove_file(&cleaned_path);
            let _ = fs::remove_file(&txn_cleaned);
            return Err(e);
        }
    };
    if size_after == 0 {
        fs::remove_file(&cleaned_path).at(&cleaned_path)?;
        return Ok(CleanedGroup {
            planned: group.to_vec(),
            cleaned_path: None,
            cleaned_txn_index,
        });
    }
    Ok(CleanedGroup {
        planned: group.to_vec(),
        cleaned_path: Some(cleaned_path),
        cleaned_txn_index,
    })
}

enum Kept {
    All,
    None,
    Rewritten(Vec<u8>),
}

struct Filtered {
    bytes: Kept,
    removed: u64,
    tombstones_removed: u64,
    /// Why the batch's records could not be read (it is kept whole).
    unreadable: Option<String>,
}

/// A control batch: kept, rewritten with a delete horizon, or removed (see `cleaner_txn`).
fn filter_control<I: Iterator<Item = Result<AbortedTxn>>>(
    plan: &CleanPlan,
    txns: &mut CleanedTxns<I>,
    header: &RecordBatchHeader,
    batch: &[u8],
) -> Result<Filtered> {
    let (control, mut unreadable) = classify_control(header, batch);
    let removable = txns.on_control(header.into(), control)?;
    let case = MarkerCase {
        removable,
        horizon_ms: delete_horizon(header),
        protected: plan.producers.keeps_marker(header),
        empty: header.record_count < 1,
    };
    let bytes = match marker_fate(case, plan.now_ms, plan.delete_retention_ms) {
        MarkerFate::Keep => Kept::All,
        MarkerFate::Remove => Kept::None,
        MarkerFate::SetHorizon(horizon_ms) => {
            match with_delete_horizon(header, batch, horizon_ms) {
                Ok(bytes) => Kept::Rewritten(bytes),
                Err(error) => {
                    unreadable = Some(error.to_string());
                    Kept::All
                }
            }
        }
    };
    Ok(Filtered {
        bytes,
        removed: 0,
        tombstones_removed: 0,
        unreadable,
    })
}

/// Which records of one batch survive; rebuilds the batch if only some do.
fn filter_batch(
    header: &RecordBatchHeader,
    batch: &[u8],
    latest: &HashMap<Vec<u8>, i64>,
    first_dirty_offset: i64,
    horizon_ms: i64,
) -> Result<Filtered> {
    let keep_all = Filtered {
        bytes: Kept::All,
        removed: 0,
        tombstones_removed: 0,
        unreadable: None,
    };
    if !compactable(header) {
        return Ok(keep_all);
    }
    let unreadable = |error: LogError| Filtered {
        bytes: Kept::All,
        removed: 0,
        tombstones_removed: 0,
        unreadable: Some(error.to_string()),
    };
    let section = match records_section(header, batch) {
        Ok(section) => section,
        Err(error) => return Ok(unreadable(error)),
    };
    let all = match records(&section, record_count(header)) {
        Ok(all) => all,
        Err(error) => return Ok(unreadable(error)),
    };
    let mut kept: Vec<&[u8]> = Vec::with_capacity(all.len());
    let mut tombstones_removed = 0;
    for record in &all {
        let offset = header.base_offset + i64::from(record.offset_delta);
        let Some(key) = record.key else {
            kept.push(record.bytes);
            continue;
        };
        let superseded = latest.get(key).is_some_and(|latest| *latest > offset);
        if superseded {
            continue;
        }
        // A tombstone that survived an earlier cleaning and is past its retention goes.
        if record.is_tombstone && offset < first_dirty_offset && header.max_timestamp < horizon_ms {
            tombstones_removed += 1;
            continue;
        }
        kept.push(record.bytes);
    }
    let removed = (all.len() - kept.len()) as u64;
    let bytes = if kept.len() == all.len() {
        Kept::All
    } else if kept.is_empty() {
        Kept::None
    } else {
        Kept::Rewritten(rebuild_batch(header, batch, &kept)?)
    };
    Ok(Filtered {
        bytes,
        removed,
        tombstones_removed,
        unreadable: None,
    })
}

/// The same batch with only `kept` records: header fields (base offset, last offset delta,
/// timestamps, producer) unchanged, so the batch covers the same offsets and the producer's
/// sequence range stays; record count, length and CRC updated; recompressed with its codec.
fn rebuild_batch(header: &RecordBatchHeader, batch: &[u8], kept: &[&[u8]]) -> Result<Vec<u8>> {
    let plain: Vec<u8> = kept.concat();
    let section = compression::compress(header.compression_codec(), &plain)?;
    let mut out = Vec::with_capacity(RECORD_BATCH_HEADER_BYTES + section.len());
    out.extend_from_slice(&batch[..RECORD_BATCH_HEADER_BYTES]);
    out.extend_from_slice(&section);
    let batch_length = i32::try_from(out.len() - LOG_OVERHEAD_BYTES)
        .map_err(|_| LogError::InvalidRecord("a cleaned batch is too large".to_owned()))?;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let count = i32::try_from(kept.len())
        .map_err(|_| LogError::InvalidRecord("too many records".to_owned()))?;
    out[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&out[crate::batch::CRC_COVERED_FROM..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// A data batch with records (a committed transaction's included: aborted ones never get
/// here, control batches go through `filter_control`).
fn compactable(header: &RecordBatchHeader) -> bool {
    !header.is_control() && header.record_count > 0
}

fn record_count(header: &RecordBatchHeader) -> usize {
    usize::try_from(header.record_count).unwrap_or(0)
}

/// The batch's records, decompressed (a batch that cannot be is kept whole).
fn records_section(header: &RecordBatchHeader, batch: &[u8]) -> Result<Vec<u8>> {
    let compressed = batch
        .get(RECORD_BATCH_HEADER_BYTES..)
        .ok_or_else(|| LogError::CorruptRecord("a batch shorter than its header".to_owned()))?;
    compression::decompress(
        header.compression_codec(),
        compressed,
        MAX_DECOMPRESSED_BYTES,
    )
}

/// Calls `f` with every batch of a segment file, in order, reading one batch at a time.
fn for_each_batch(
    path: &Path,
    size_bytes: u64,
    mut f: impl FnMut(&RecordBatchHeader, &[u8]) -> Result<()>,
) -> Result<()> {
    let file = File::open(path).at(path)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file.take(size_bytes));
    let mut header_bytes = [0u8; RECORD_BATCH_HEADER_BYTES];
    let mut batch = Vec::new();
    let mut position = 0u64;
    while position < size_bytes {
        reader.read_exact(&mut header_bytes).at(path)?;
        let header = RecordBatchHeader::parse(&header_bytes)?;
        let size = header.size_bytes();
        if size > MAX_BATCH_BYTES || position + size as u64 > size_bytes {
            return Err(LogError::CorruptRecord(format!(
                "{}: batch of {size} bytes at position {position} does not fit",
                path.display()
            )));
        }
        batch.clear();
        batch.extend_from_slice(&header_bytes);
        batch.resize(size, 0);
        reader
            .read_exact(&mut batch[RECORD_BATCH_HEADER_BYTES..])
            .at(path)?;
        f(&header, &batch)?;
        position += size as u64;
    }
    Ok(())
}

/// Commits a cleaning: `<base>.log.cleaned` becomes `<base>.log.swap` (one rename, the commit
/// point; see the module docs). Returns the swap file, for [`finish_swap`] once the segments
/// it merged away are deleted.
pub(crate) fn commit_swap(cleaned: &Path, log_path: &Path) -> Result<PathBuf> {
    let dir = log_path.parent().unwrap_or(Path::new("."));
    let swap = log_path.with_extension(format!("log.{SWAP_SUFFIX}"));
    fs::rename(cleaned, &swap).at(&swap)?;
    sync_dir(dir)?;
    Ok(swap)
}

/// The offset after the last batch of a (whole, fsynced) swap file; `base_offset` if empty.
pub(crate) fn swap_end_offset(swap: &Path, base_offset: i64) -> Result<i64> {
    let size_bytes = fs::metadata(swap).at(swap)?.len();
    let mut end = base_offset;
    for_each_batch(swap, size_bytes, |header, _| {
        end = end.max(header.next_offset());
        Ok(())
    })?;
    Ok(end)
}

/// Where a cleaned run's aborted-transaction entries wait between the commit and the end of
/// the swap (`<base>.txnindex.swap`).
pub(crate) fn txn_index_swap_path(log_path: &Path) -> PathBuf {
    log_path.with_extension(format!("{TXN_INDEX_FILE_SUFFIX}.{SWAP_SUFFIX}"))
}

/// The second half of a swap, also run by the loader for a `.swap` left by a crash: the old
/// offset and time indexes go (they are rebuilt), the cleaned transaction index (if any)
/// replaces the old one — an empty one removes it, the cleaned segment keeping no entry —
/// and the last rename, of the log, ends the swap. Every step can be redone after a crash.
pub(crate) fn finish_swap(swap: &Path, log_path: &Path, index_paths: &[PathBuf]) -> Result<()> {
    for index in index_paths {
        remove_if_present(index)?;
    }
    let txn_swap = txn_index_swap_path(log_path);
    if txn_swap.try_exists().at(&txn_swap)? {
        let txn_index = log_path.with_extension(TXN_INDEX_FILE_SUFFIX);
        if fs::metadata(&txn_swap).at(&txn_swap)?.len() == 0 {
            // The old index first: the empty swap file is what says it must go.
            remove_if_present(&txn_index)?;
            fs::remove_file(&txn_swap).at(&txn_swap)?;
        } else {
            fs::rename(&txn_swap, &txn_index).at(&txn_index)?;
        }
    }
    fs::rename(swap, log_path).at(log_path)?;
    sync_dir(log_path.parent().unwrap_or(Path::new(".")))
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at(path),
    }
}
