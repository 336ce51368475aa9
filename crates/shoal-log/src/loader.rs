//! Opening a partition directory: finding segments and recovering them (Kafka's `LogLoader`).
//!
//! After a clean shutdown (marker present) nothing is scanned: each segment's indexes get an
//! O(1) sanity check and only the active segment reads the few batch headers after its last
//! index entry. After a crash, every segment from the one holding the recovery point to the
//! end is rescanned with CRC checks (safety rule 6): the first torn, corrupt or out-of-sequence
//! batch and everything after it — including all later segments — is removed, and indexes are
//! rebuilt. A segment whose indexes fail the sanity check is recovered the same way even on a
//! clean open. Recovered segments are fsynced before the loader returns, so the recovery
//! point can move to the log end.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::Path;

use crate::checkpoint::{TEMP_FILE_SUFFIX, sync_dir};
use crate::clean_shutdown;
use crate::cleaner;
use crate::config::LogConfig;
use crate::error::{IoResultExt, Result};
use crate::partition_checkpoint::{PARTITION_CHECKPOINT_FILE, PartitionCheckpoint};
use crate::segment::{
    INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX, LogSegment, TIME_INDEX_FILE_SUFFIX, TXN_INDEX_FILE_SUFFIX,
    parse_segment_file_name, segment_file_path,
};

/// Suffix Kafka gives segments scheduled for deletion; leftovers are removed at load.
const DELETED_FILE_SUFFIX: &str = "deleted";

/// The segments of a freshly loaded log, consistent with each other and flushed.
pub(crate) struct LoadedSegments {
    pub(crate) sealed: BTreeMap<i64, LogSegment>,
    pub(crate) active: LogSegment,
    pub(crate) log_end_offset: i64,
    pub(crate) checkpoint: Option<PartitionCheckpoint>,
    pub(crate) had_clean_shutdown: bool,
}

pub(crate) fn load(dir: &Path, config: &LogConfig, now_ms: i64) -> Result<LoadedSegments> {
    fs::create_dir_all(dir).at(dir)?;
    let had_clean_shutdown = clean_shutdown::take_marker(dir)?;
    let checkpoint_existed = dir.join(PARTITION_CHECKPOINT_FILE).exists();
    let checkpoint = PartitionCheckpoint::read_or_set_aside(dir)?;
    // A checkpoint that was there but is not now was damaged: trust nothing on this disk
    // that a rescan can check, clean-shutdown marker included.
    let had_clean_shutdown = had_clean_shutdown && (checkpoint.is_some() || !checkpoint_existed);
    let mut segments = VecDeque::new();
    for base_offset in discover_segments(dir)? {
        segments.push_back(LogSegment::open(dir, base_offset, config, now_ms)?);
    }
    let Some(first) = segments.front() else {
        let base_offset = checkpoint.map_or(0, |c| c.log_start_offset);
        let active = LogSegment::create(dir, base_offset, config, now_ms)?;
        sync_dir(dir)?;
        return Ok(LoadedSegments {
            sealed: BTreeMap::new(),
            active,
            log_end_offset: base_offset,
            checkpoint,
            had_clean_shutdown,
        });
    };

    // Index of the first segment to rescan: none after a clean shutdown, otherwise the one
    // holding the recovery point (or the first, with no checkpoint).
    let recover_from = if had_clean_shutdown {
        segments.len()
    } else {
        let recovery_point = checkpoint.map_or(first.base_offset(), |c| c.recovery_point);
        segments
            .iter()
            .rposition(|s| s.base_offset() <= recovery_point)
            .unwrap_or(0)
    };

    let mut kept: Vec<LogSegment> = Vec::with_capacity(segments.len());
    let mut recovered: Vec<usize> = Vec::new();
    // Set when the previous segment was rescanned: where the next one must start.
    let mut expected_base_offset: Option<i64> = None;
    let mut active_end_offset: Option<i64> = None;
    while let Some(mut segment) = segments.pop_front() {
        // Offsets only grow across segments; a gap is compaction's (see `cleaner`), an
        // overlap is damage.
        if let Some(expected) = expected_base_offset
            && segment.base_offset() < expected
        {
            tracing::warn!(
                dir = %dir.display(),
                offset = expected,
                found_base_offset = segment.base_offset(),
                "a segment overlaps the recovered one before it; deleting it and every later segment"
            );
            segments.push_front(segment);
            delete_newest_first(segments)?;
            break;
        }
        let next_base_offset = segments.front().map(LogSegment::base_offset);
        let must_recover =
            kept.len() >= recover_from || !segment.indexes_are_sane(next_base_offset)?;
        if !must_recover {
            expected_base_offset = None;
            kept.push(segment);
            continue;
        }
        let outcome = segment.recover(config.index_interval_bytes)?;
        recovered.push(kept.len());
        expected_base_offset = Some(outcome.next_offset);
        active_end_offset = Some(outcome.next_offset);
        let truncated = outcome.truncated_bytes > 0;
        if truncated {
            tracing::warn!(
                dir = %dir.display(),
                segment = %segment.log_path().display(),
                offset = outcome.next_offset,
                bytes_truncated = outcome.truncated_bytes,
                reason = outcome.reason.as_deref().unwrap_or(""),
                later_segments_deleted = segments.len(),
                "recovery truncated the log at a torn or corrupt batch"
            );
        }
        kept.push(segment);
        if truncated {
            delete_newest_first(std::mem::take(&mut segments))?;
            break;
        }
    }

    let Some(mut active) = kept.pop() else {
        unreachable!("the first segment is always kept");
    };
    let log_end_offset = match active_end_offset.filter(|_| recovered.last() == Some(&kept.len())) {
        Some(end_offset) => end_offset,
        None => match active.activate()? {
            Some(end_offset) => end_offset,
            None => {
                tracing::warn!(
                    dir = %dir.display(),
                    segment = %active.log_path().display(),
                    "active segment disagrees with its index; rescanning it"
                );
                let outcome = active.recover(config.index_interval_bytes)?;
                if outcome.truncated_bytes > 0 {
                    tracing::warn!(
                        dir = %dir.display(),
                        offset = outcome.next_offset,
                        bytes_truncated = outcome.truncated_bytes,
                        reason = outcome.reason.as_deref().unwrap_or(""),
                        "recovery truncated the log at a torn or corrupt batch"
                    );
                }
                recovered.push(kept.len());
                outcome.next_offset
            }
        },
    };

    let mut sealed = BTreeMap::new();
    for (index, mut segment) in kept.into_iter().enumerate() {
        if recovered.contains(&index) {
            segment.flush()?;
        }
        segment.seal()?;
        sealed.insert(segment.base_offset(), segment);
    }
    if recovered.last().is_some_and(|&i| i == sealed.len()) {
        active.flush()?;
    }
    if !recovered.is_empty() {
        sync_dir(dir)?;
        tracing::info!(
            dir = %dir.display(),
            segments_recovered = recovered.len(),
            log_end_offset,
            "log recovered after an unclean shutdown or a damaged index"
        );
    }
    Ok(LoadedSegments {
        sealed,
        active,
        log_end_offset,
        checkpoint,
        had_clean_shutdown,
    })
}

/// Base offsets of the `.log` files in `dir`, ascending. Deletes crash leftovers on the way:
/// temp checkpoints, `.deleted` files, half-written `.cleaned` segments, a carried
/// `.txnindex.swap` whose cleaning never committed, and index files whose log is gone;
/// finishes the swap of a `.swap` segment (the cleaner's commit point).
fn discover_segments(dir: &Path) -> Result<Vec<i64>> {
    finish_cleaner_swaps(dir)?;
    let uncommitted_txn_swap = format!(".{TXN_INDEX_FILE_SUFFIX}.{}", cleaner::SWAP_SUFFIX);
    let mut logs = BTreeSet::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let is_leftover = [
            TEMP_FILE_SUFFIX,
            DELETED_FILE_SUFFIX,
            cleaner::CLEANED_SUFFIX,
        ]
        .iter()
        .any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|stem| stem.ends_with('.'))
        }) || name.ends_with(&uncommitted_txn_swap);
        if is_leftover {
            tracing::info!(path = %path.display(), "removing a leftover file");
            fs::remove_file(&path).at(&path)?;
            continue;
        }
        match parse_segment_file_name(name) {
            Some((base_offset, LOG_FILE_SUFFIX)) => {
                logs.insert(base_offset);
            }
            Some((
                base_offset,
                INDEX_FILE_SUFFIX | TIME_INDEX_FILE_SUFFIX | TXN_INDEX_FILE_SUFFIX,
            )) => {
                indexes.push((base_offset, path));
            }
            _ => {}
        }
    }
    for (base_offset, path) in indexes {
        if !logs.contains(&base_offset) {
            tracing::info!(path = %path.display(), "removing an index without a log");
            fs::remove_file(&path).at(&path)?;
        }
    }
    Ok(logs.into_iter().collect())
}

/// Completes every `<base>.log.swap` a crash left: its cleaned content is whole (it was
/// fsynced before the rename that made it a swap file), so it replaces the segment's log, the
/// old indexes go (they are rebuilt), and so does every later segment whose offsets it covers
/// (merged into it; the cleaner deletes them between the commit and the final rename).
fn finish_cleaner_swaps(dir: &Path) -> Result<()> {
    let swap_suffix = format!(".{LOG_FILE_SUFFIX}.{}", cleaner::SWAP_SUFFIX);
    for entry in fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(&swap_suffix) else {
            continue;
        };
        let Ok(base_offset) = stem.parse::<i64>() else {
            continue;
        };
        let log_path = segment_file_path(dir, base_offset, LOG_FILE_SUFFIX);
        let indexes = [
            segment_file_path(dir, base_offset, INDEX_FILE_SUFFIX),
            segment_file_path(dir, base_offset, TIME_INDEX_FILE_SUFFIX),
        ];
        tracing::info!(path = %path.display(), "finishing a compaction swap");
        let end_offset = cleaner::swap_end_offset(&path, base_offset)?;
        for merged in segments_within(dir, base_offset, end_offset)? {
            tracing::info!(
                base_offset = merged,
                "deleting a segment merged into the swap"
            );
            for suffix in [
                LOG_FILE_SUFFIX,
                INDEX_FILE_SUFFIX,
                TIME_INDEX_FILE_SUFFIX,
                TXN_INDEX_FILE_SUFFIX,
            ] {
                let file = segment_file_path(dir, merged, suffix);
                match fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).at(&file),
                }
            }
        }
        sync_dir(dir)?;
        cleaner::finish_swap(&path, &log_path, &indexes)?;
    }
    Ok(())
}

/// Base offsets of the `.log` files in `dir` strictly after `after` and below `before`.
fn segments_within(dir: &Path, after: i64, before: i64) -> Result<Vec<i64>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some((base_offset, LOG_FILE_SUFFIX)) = parse_segment_file_name(name)
            && base_offset > after
            && base_offset < before
        {
            found.push(base_offset);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Deletes segments newest first, so a crash part-way leaves a contiguous prefix.
fn delete_newest_first(segments: VecDeque<LogSegment>) -> Result<()> {
    for segment in segments.into_iter().rev() {
        tracing::warn!(segment = %segment.log_path().display(), "deleting a segment after the recovered end");
        segment.delete()?;
    }
    Ok(())
}
