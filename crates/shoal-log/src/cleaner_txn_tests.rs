//! Compaction keeps a compacted topic's aborted transactions aborted: the cleaned (and merged)
//! segments carry the aborted-transaction entries of the segments they replace, in order, also
//! across a crash at the swap's commit point.

use std::collections::{BTreeMap, BTreeSet};

use super::tests::{NOW_MS, open};
use super::*;
use crate::cleaner::{self, CleanerLimits};
use crate::config::CleanupPolicy;
use crate::control::{ControlType, build_marker_batch};
use crate::testing::{BatchSpec, TestRecord, build_batch_with};
use crate::txn_index::AbortedTxn;

fn compacted() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        index_interval_bytes: 100,
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    }
}

fn keyed(key: &str, value: &str, producer: Option<(i64, i32)>) -> Vec<u8> {
    let (producer_id, base_sequence, attributes) = match producer {
        Some((id, seq)) => (id, seq, 0x10),
        None => (-1, -1, 0),
    };
    build_batch_with(&BatchSpec {
        base_timestamp_ms: NOW_MS,
        producer_id,
        producer_epoch: if producer.is_some() { 0 } else { -1 },
        base_sequence,
        attributes,
        records: vec![TestRecord {
            key: Some(key.as_bytes()),
            value: Some(value.as_bytes()),
            timestamp_delta_ms: 0,
        }],
        ..BatchSpec::new(&[b""])
    })
}

/// Writes overwritten keys and, every few batches, one aborted transaction of its own
/// producer (data, ABORT marker, index entry). Returns the entries.
fn write_history(log: &mut Log, rounds: usize, producer_base: i64) -> Vec<AbortedTxn> {
    let mut entries = Vec::new();
    for round in 0..rounds {
        for k in 0..3 {
            log.append_as_leader(
                &keyed(&format!("k{k}"), &format!("v{round}"), None),
                0,
                NOW_MS,
            )
            .unwrap();
        }
        if round % 2 == 0 {
            let producer_id = producer_base + round as i64;
            let first = log
                .append_as_leader(&keyed("t", "aborted", Some((producer_id, 0))), 0, NOW_MS)
                .unwrap()
                .first_offset;
            log.append_as_leader(&keyed("k0", "between", None), 0, NOW_MS)
                .unwrap();
            let marker = build_marker_batch(producer_id, 0, 0, ControlType::Abort, NOW_MS);
            let last = log
                .append_as_leader_from(&marker, 0, NOW_MS, AppendOrigin::Coordinator)
                .unwrap()
                .first_offset;
            let entry = AbortedTxn {
                producer_id,
                first_offset: first,
                last_offset: last,
                last_stable_offset: last + 1,
            };
            log.append_aborted_txn(entry).unwrap();
            entries.push(entry);
        }
    }
    entries
}

/// Every segment's entries, by segment base offset; checks each lies in its segment.
fn entries_by_segment(log: &Log) -> BTreeMap<i64, Vec<AbortedTxn>> {
    let bases: Vec<i64> = log.segments().map(LogSegment::base_offset).collect();
    let mut out = BTreeMap::new();
    for (i, segment) in log.segments().enumerate() {
        let end = bases.get(i + 1).copied().unwrap_or(i64::MAX);
        let mut found = Vec::new();
        segment
            .collect_aborted_txns(i64::MIN, i64::MAX, usize::MAX, &mut found)
            .unwrap();
        for entry in &found {
            assert!(
                (segment.base_offset()..end).contains(&entry.last_offset),
                "{entry:?} is in segment {} ending at {end}",
                segment.base_offset()
            );
        }
        if !found.is_empty() {
            out.insert(segment.base_offset(), found);
        }
    }
    out
}

fn all_entries(log: &Log) -> Vec<AbortedTxn> {
    entries_by_segment(log).into_values().flatten().collect()
}

fn clean(log: &mut Log) -> Option<CleanStats> {
    let plan = log.plan_clean(NOW_MS, log.log_end_offset()).unwrap()?;
    let outcome = cleaner::run(&plan, &CleanerLimits::default()).unwrap();
    Some(log.finish_clean(outcome).unwrap())
}

/// Segments that now hold entries whose markers were in different segments before.
fn merged_holders(before: &BTreeMap<i64, Vec<AbortedTxn>>, log: &Log) -> usize {
    let origin: BTreeMap<i64, i64> = before
        .iter()
        .flat_map(|(base, entries)| entries.iter().map(move |e| (e.last_offset, *base)))
        .collect();
    entries_by_segment(log)
        .values()
        .filter(|entries| {
            let origins: BTreeSet<i64> = entries.iter().map(|e| origin[&e.last_offset]).collect();
            origins.len() > 1
        })
        .count()
}

#[test]
fn cleaned_and_merged_segments_carry_their_aborted_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compacted());
    let mut expected = write_history(&mut log, 20, 1_000);
    clean(&mut log).expect("something to clean");
    assert_eq!(
        all_entries(&log),
        expected,
        "a first cleaning keeps them all"
    );
    // More history, then a second cleaning merges the segments the first one shrank.
    expected.extend(write_history(&mut log, 20, 2_000));
    let before = entries_by_segment(&log);
    let segments_before = log.segment_count();
    clean(&mut log).expect("something to clean");
    assert!(log.segment_count() < segments_before, "segments merged");
    assert_eq!(all_entries(&log), expected);
    assert!(
        merged_holders(&before, &log) > 0,
        "a merged segment holds the entries of several"
    );
    // Fetches find them through the log as before; a reopen reads the carried files.
    assert_eq!(log.collect_aborted_txns(0, i64::MAX).unwrap(), expected);
    log.close().unwrap();
    let log = open(dir.path(), compacted());
    assert_eq!(all_entries(&log), expected);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".cleaned") || name.ends_with(".swap"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A log whose second cleaning has run but not been swapped in, the entries, and the run
/// that merges several segments with entries.
fn pending_merge(dir: &std::path::Path) -> (Log, Vec<AbortedTxn>, cleaner::CleanOutcome) {
    let mut log = open(dir, compacted());
    let mut expected = write_history(&mut log, 20, 1_000);
    clean(&mut log).unwrap();
    expected.extend(write_history(&mut log, 20, 2_000));
    let plan = log
        .plan_clean(NOW_MS, log.log_end_offset())
        .unwrap()
        .unwrap();
    let outcome = cleaner::run(&plan, &CleanerLimits::default()).unwrap();
    (log, expected, outcome)
}

fn merged_run_with_entries(outcome: &cleaner::CleanOutcome) -> &cleaner::CleanedGroup {
    outcome
        .cleaned
        .iter()
        .find(|c| c.planned.len() > 1 && c.cleaned_path.is_some() && c.cleaned_txn_index.is_some())
        .expect("a merged run with aborted transactions")
}

#[test]
fn a_crash_after_the_commit_keeps_the_carried_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (log, expected, outcome) = pending_merge(dir.path());
    let run = merged_run_with_entries(&outcome);
    let log_path = &run.planned[0].path;
    // Staged and committed, nothing after: the loader finishes the swap.
    let txn_swap = cleaner::txn_index_swap_path(log_path);
    std::fs::rename(run.cleaned_txn_index.as_ref().unwrap(), &txn_swap).unwrap();
    std::fs::rename(
        run.cleaned_path.as_ref().unwrap(),
        log_path.with_extension("log.swap"),
    )
    .unwrap();
    drop(log);
    let log = open(dir.path(), compacted());
    assert!(!txn_swap.exists());
    assert_eq!(all_entries(&log), expected);
    assert!(
        entries_by_segment(&log)
            .get(&run.planned[0].base_offset)
            .is_some_and(|e| e.len() > 1),
        "the merged segment holds the run's entries"
    );
}

#[test]
fn a_crash_before_the_commit_keeps_the_original_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (log, expected, outcome) = pending_merge(dir.path());
    let before = entries_by_segment(&log);
    let run = merged_run_with_entries(&outcome);
    // Staged, not committed: the carried copy is a leftover.
    let txn_swap = cleaner::txn_index_swap_path(&run.planned[0].path);
    std::fs::rename(run.cleaned_txn_index.as_ref().unwrap(), &txn_swap).unwrap();
    drop(log);
    let log = open(dir.path(), compacted());
    assert!(!txn_swap.exists());
    assert_eq!(entries_by_segment(&log), before);
    assert_eq!(all_entries(&log), expected);
}

#[test]
fn a_cleaning_that_is_not_swapped_in_leaves_no_carried_index() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, expected, outcome) = pending_merge(dir.path());
    let carried: Vec<std::path::PathBuf> = outcome
        .cleaned
        .iter()
        .filter_map(|c| c.cleaned_txn_index.clone())
        .collect();
    assert!(!carried.is_empty());
    // A truncation (here: of nothing but the index) since the plan voids the cleaning.
    log.truncate_aborted_txns_from(log.log_end_offset())
        .unwrap();
    assert_eq!(log.finish_clean(outcome).unwrap(), CleanStats::default());
    assert!(carried.iter().all(|p| !p.exists()));
    assert_eq!(all_entries(&log), expected);
}
