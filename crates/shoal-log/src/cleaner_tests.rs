//! Compaction of a real log on disk: the latest record per key survives at its offset,
//! tombstones go after `delete.retention.ms`, only committed sealed segments are touched, and
//! every crash point of the swap leaves a loadable, complete log.

use std::collections::BTreeMap;

use super::tests::{NOW_MS, open, read_all};
use super::*;
use crate::batch::batches;
use crate::cleaner::{self, CleanerLimits};
use crate::compression;
use crate::config::CleanupPolicy;
use crate::testing::{BatchSpec, TestRecord, build_batch_with, decode_records};

fn compacted() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        index_interval_bytes: 100,
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 60_000,
        ..LogConfig::default()
    }
}

/// One batch of (key, value) records; `None` values are tombstones.
fn keyed(records: &[(&str, Option<&str>)], timestamp_ms: i64) -> Vec<u8> {
    build_batch_with(&BatchSpec {
        base_timestamp_ms: timestamp_ms,
        records: records
            .iter()
            .map(|(k, v)| TestRecord {
                key: Some(k.as_bytes()),
                value: v.map(str::as_bytes),
                timestamp_delta_ms: 0,
            })
            .collect(),
        ..BatchSpec::new(&[b""])
    })
}

/// Records by offset: (key, value).
type Contents = BTreeMap<i64, (String, Option<String>)>;

/// Every record in the log.
fn contents(log: &Log) -> Contents {
    let mut out = BTreeMap::new();
    let bytes = read_all(log);
    for batch in batches(&bytes) {
        for r in decode_records(batch.unwrap().bytes).unwrap() {
            let text = |b: Option<Vec<u8>>| b.map(|b| String::from_utf8(b).unwrap());
            out.insert(r.offset, (text(r.key).unwrap(), text(r.value)));
        }
    }
    out
}

fn clean(log: &mut Log, now_ms: i64) -> Option<CleanStats> {
    let hw = log.log_end_offset();
    let plan = log.plan_clean(now_ms, hw).unwrap()?;
    let outcome = cleaner::run(&plan, &CleanerLimits::default()).unwrap();
    Some(log.finish_clean(outcome).unwrap())
}

/// Writes `rounds` rounds of keys k0..k{keys}, each round's values v<round>, then deletes k1.
fn write_history(log: &mut Log, keys: usize, rounds: usize) -> BTreeMap<String, (i64, String)> {
    let mut latest = BTreeMap::new();
    for round in 0..rounds {
        for k in 0..keys {
            let key = format!("k{k}");
            let value = format!("v{round}");
            let info = log
                .append_as_leader(&keyed(&[(&key, Some(&value))], NOW_MS), 0, NOW_MS)
                .unwrap();
            latest.insert(key, (info.first_offset, value));
        }
    }
    let info = log
        .append_as_leader(&keyed(&[("k1", None)], NOW_MS), 0, NOW_MS)
        .unwrap();
    latest.insert("k1".to_string(), (info.first_offset, String::new()));
    latest
}

#[test]
fn keeps_the_latest_record_per_key_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compacted());
    let latest = write_history(&mut log, 5, 20);
    let end = log.log_end_offset();
    let before = contents(&log);
    assert!(log.segment_count() > 3, "the history should span segments");

    let stats = clean(&mut log, NOW_MS).expect("something to clean");
    assert!(
        stats.records_removed > 0 && stats.bytes_after < stats.bytes_before,
        "{stats:?}"
    );
    assert_eq!(log.log_end_offset(), end, "the log end never moves");
    let after = contents(&log);
    // Everything left is as it was, at the same offset.
    for (offset, record) in &after {
        assert_eq!(before.get(offset), Some(record), "offset {offset} changed");
    }
    // In the cleaned part (sealed segments), each key appears once, at its latest offset;
    // the active segment is untouched.
    let active_base = log.active.base_offset();
    let mut seen: BTreeMap<&str, i64> = BTreeMap::new();
    for (offset, (key, _)) in after.range(..active_base) {
        assert!(
            seen.insert(key, *offset).is_none(),
            "{key} kept twice below {active_base}"
        );
    }
    for (key, (offset, _)) in &latest {
        assert!(
            after.contains_key(offset),
            "latest {key}@{offset} was removed"
        );
    }
    // The tombstone is kept: it is within delete.retention.ms.
    assert_eq!(after[&latest["k1"].0].1, None);
    // Reads across the gaps see the same records, also after a reopen.
    drop(log);
    let log = open(dir.path(), compacted());
    assert_eq!(contents(&log), after);
}

#[test]
fn tombstones_go_after_delete_retention_and_only_once_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compacted());
    let latest = write_history(&mut log, 3, 30);
    let tombstone = latest["k1"].0;
    // Roll past the tombstone so it lands in a sealed segment.
    for _ in 0..20 {
        log.append_as_leader(&keyed(&[("k0", Some("later"))], NOW_MS), 0, NOW_MS)
            .unwrap();
    }
    assert!(log.active.base_offset() > tombstone);
    clean(&mut log, NOW_MS).unwrap();
    assert!(
        contents(&log).contains_key(&tombstone),
        "first cleaning keeps it"
    );
    // Much later: the tombstone, cleaned once already, is past delete.retention.ms.
    for _ in 0..20 {
        log.append_as_leader(&keyed(&[("k2", Some("again"))], NOW_MS), 0, NOW_MS)
            .unwrap();
    }
    let later = NOW_MS + compacted().delete_retention_ms + 1;
    let stats = clean(&mut log, later).unwrap();
    assert!(stats.tombstones_removed >= 1, "{stats:?}");
    let after = contents(&log);
    assert!(!after.contains_key(&tombstone));
    assert!(
        !after.values().any(|(k, _)| k == "k1"),
        "k1 is gone entirely"
    );
}

#[test]
fn only_committed_sealed_segments_are_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compacted());
    write_history(&mut log, 2, 40);
    // A high watermark at the log start: nothing is committed, nothing is cleanable.
    assert!(
        log.plan_clean(NOW_MS, log.log_start_offset())
            .unwrap()
            .is_none()
    );
    // Not compacted: never planned.
    let mut delete_only = compacted();
    delete_only.cleanup_policy = CleanupPolicy::DELETE;
    let other = tempfile::tempdir().unwrap();
    let mut plain = open(other.path(), delete_only);
    write_history(&mut plain, 2, 40);
    assert!(
        plain
            .plan_clean(NOW_MS, plain.log_end_offset())
            .unwrap()
            .is_none()
    );
    // min.compaction.lag.ms keeps young segments.
    let lagged = tempfile::tempdir().unwrap();
    let mut young = open(
        lagged.path(),
        LogConfig {
            min_compaction_lag_ms: 10_000,
            ..compacted()
        },
    );
    write_history(&mut young, 2, 40);
    assert!(
        young
            .plan_clean(NOW_MS, young.log_end_offset())
            .unwrap()
            .is_none()
    );
    assert!(
        young
            .plan_clean(NOW_MS + 10_001, young.log_end_offset())
            .unwrap()
            .is_some()
    );
    // After a cleaning nothing is dirty until more is written; the dirty ratio gates it.
    clean(&mut log, NOW_MS).unwrap();
    assert!(
        log.plan_clean(NOW_MS, log.log_end_offset())
            .unwrap()
            .is_none()
    );
    let strict_dir = tempfile::tempdir().unwrap();
    let mut strict = open(
        strict_dir.path(),
        LogConfig {
            min_cleanable_dirty_ratio: 1.0,
            ..compacted()
        },
    );
    write_history(&mut strict, 2, 40);
    assert!(
        strict
            .plan_clean(NOW_MS, strict.log_end_offset())
            .unwrap()
            .is_some()
    );
}

#[test]
fn a_crash_during_the_swap_loads_a_complete_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compacted());
    write_history(&mut log, 4, 25);
    let before = contents(&log);
    let plan = log
        .plan_clean(NOW_MS, log.log_end_offset())
        .unwrap()
        .unwrap();
    let outcome = cleaner::run(&plan, &CleanerLimits::default()).unwrap();
    let cleaned: Vec<std::path::PathBuf> = outcome
        .cleaned
        .iter()
        .filter_map(|c| c.cleaned_path.clone())
        .collect();
    assert!(!cleaned.is_empty());
    // Crash 1: the `.cleaned` files are written, nothing swapped. They are discarded.
    #[allow(clippy::drop_non_drop)]
    drop(log);
    let log = open(dir.path(), compacted());
    assert_eq!(contents(&log), before);
    assert!(cleaned.iter().all(|p| !p.exists()), "leftovers removed");
    drop(log);

    // Crash 2: one segment reached its commit point (`.swap`) before the crash.
    let log = open(dir.path(), compacted());
    let plan = log
        .plan_clean(NOW_MS, log.log_end_offset())
        .unwrap()
        .unwrap();
    let outcome = cleaner::run(&plan, &CleanerLimits::default()).unwrap();
    let first = outcome
        .cleaned
        .iter()
        .find_map(|c| {
            c.cleaned_path
                .clone()
                .map(|p| (p, c.planned[0].path.clone()))
        })
        .unwrap();
    std::fs::rename(&first.0, first.1.with_extension("log.swap")).unwrap();
    drop(log);
    let log = open(dir.path(), compacted());
    let after = contents(&log);
    for (offset, record) in &after {
        assert_eq!(before.get(offset), Some(record));
    }
    assert!(
        after.len() < before.len(),
        "the swapped segment is the cleaned one"
    );
    // Nothing the dirty part holds as latest was lost: every key still has its last value.
    let last_of = |m: &BTreeMap<i64, (String, Option<String>)>| {
        let mut last = BTreeMap::new();
        for (key, value) in m.values() {
            last.insert(key.clone(), value.clone());
        }
        last
    };
    assert_eq!(last_of(&after), last_of(&before));
}

#[test]
fn compressed_batches_are_rewritten_with_their_codec() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compacted());
    // A gzip batch holding a stale and a latest record, then newer versions of the stale key.
    let plain = keyed(&[("a", Some("old")), ("b", Some("keep"))], NOW_MS);
    let section = compression::compress(compression::GZIP, &plain[61..]).unwrap();
    let mut gz = plain[..61].to_vec();
    gz.extend_from_slice(&section);
    let length = (gz.len() - 12) as i32;
    gz[8..12].copy_from_slice(&length.to_be_bytes());
    let attributes = i16::from(compression::GZIP);
    gz[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&gz[21..]);
    gz[17..21].copy_from_slice(&crc.to_be_bytes());
    log.append_as_leader(&gz, 0, NOW_MS).unwrap();
    for _ in 0..30 {
        log.append_as_leader(&keyed(&[("a", Some("new"))], NOW_MS), 0, NOW_MS)
            .unwrap();
    }
    clean(&mut log, NOW_MS).unwrap();
    let read = log.read(0, 1 << 20, i64::MAX, true).unwrap();
    let first = batches(&read.records).next().unwrap().unwrap();
    assert_eq!(first.header.compression_codec(), compression::GZIP);
    assert_eq!(first.header.record_count, 1);
    assert_eq!(
        first.header.last_offset_delta, 1,
        "the batch keeps its offset range"
    );
    crate::batch::verify_crc(first.bytes).unwrap();
    let records = compression::decompress(compression::GZIP, &first.bytes[61..], 1 << 20).unwrap();
    let kept = crate::record_view::records(&records, 1).unwrap();
    assert_eq!((kept[0].key, kept[0].offset_delta), (Some(&b"b"[..]), 1));
}

#[test]
fn a_map_budget_too_small_for_one_segment_cleans_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compacted());
    write_history(&mut log, 5, 20);
    let before = contents(&log);
    let plan = log
        .plan_clean(NOW_MS, log.log_end_offset())
        .unwrap()
        .unwrap();
    assert!(matches!(
        cleaner::run(
            &plan,
            &CleanerLimits {
                map_budget_bytes: 10,
                io_max_bytes_per_second: None,
            }
        ),
        Err(LogError::InvalidConfig(_))
    ));
    assert_eq!(contents(&log), before);
}

/// `cleanup.policy=compact,delete`: retention deletes old segments as for `delete`, and the
/// cleaner compacts what is left.
#[test]
fn compact_delete_applies_retention_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: true,
            compact: true,
        },
        retention_bytes: 2_000,
        ..compacted()
    };
    let mut log = open(dir.path(), config.clone());
    let latest = write_history(&mut log, 5, 20);
    let end = log.log_end_offset();
    let deleted = log.enforce_retention(NOW_MS, end).unwrap();
    assert!(
        deleted.deleted_segments > 0,
        "retention.bytes deletes segments"
    );
    assert!(log.log_start_offset() > 0);
    let stats = clean(&mut log, NOW_MS).expect("compaction runs too");
    assert!(stats.records_removed > 0, "{stats:?}");
    let after = contents(&log);
    let active_base = log.active.base_offset();
    let mut seen: BTreeMap<&str, i64> = BTreeMap::new();
    for (offset, (key, _)) in after.range(..active_base) {
        assert!(seen.insert(key, *offset).is_none(), "{key} kept twice");
    }
    for (offset, _) in latest.values() {
        assert!(
            after.contains_key(offset),
            "a latest record at {offset} was removed"
        );
    }
}

/// Every key's last value, in offset order.
fn last_values(m: &Contents) -> BTreeMap<String, Option<String>> {
    m.values().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// One cleaning, then more writes: the segments it shrank can merge in the next one.
fn clean_twice(log: &mut Log) {
    clean(log, NOW_MS).expect("a first cleaning");
    for round in 0..40 {
        let value = format!("late{round}");
        log.append_as_leader(&keyed(&[("k0", Some(&value))], NOW_MS), 0, NOW_MS)
            .unwrap();
    }
}

#[test]
fn segments_shrunk_by_cleaning_merge_within_segment_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compacted());
    write_history(&mut log, 4, 40);
    clean_twice(&mut log);
    let before = contents(&log);
    let segments_before = log.segment_count();
    let bases_before: Vec<i64> = log.sealed.keys().copied().collect();
    let stats = clean(&mut log, NOW_MS).expect("a second cleaning");
    assert!(log.segment_count() < segments_before, "{stats:?}");
    let after = contents(&log);
    // Merged, not just emptied: one segment now holds kept records that two held before.
    let bases_after: Vec<i64> = log.sealed.keys().copied().collect();
    let merged = bases_after.iter().enumerate().any(|(i, base)| {
        let next = bases_after
            .get(i + 1)
            .copied()
            .unwrap_or(log.active.base_offset());
        bases_before
            .iter()
            .filter(|b| *b > base && **b < next)
            .any(|b| after.range(*b..next).next().is_some())
    });
    assert!(
        merged,
        "no segment holds records of two: {bases_before:?} -> {bases_after:?}"
    );
    for (offset, record) in &after {
        assert_eq!(before.get(offset), Some(record), "offset {offset} changed");
    }
    assert_eq!(last_values(&after), last_values(&before));
    for segment in log.sealed.values() {
        assert!(
            segment.size_bytes() <= u64::from(compacted().segment_bytes),
            "a merged segment of {} bytes",
            segment.size_bytes()
        );
    }
    // Reads by offset find every kept record in the merged segments, also after a reopen.
    drop(log);
    let log = open(dir.path(), compacted());
    assert_eq!(contents(&log), after);
    for offset in after.keys() {
        let read = log.read(*offset, 1, log.log_end_offset(), true).unwrap();
        let first = batches(&read.records).next().unwrap().unwrap();
        assert!(first.header.base_offset <= *offset && *offset <= first.header.last_offset());
    }
}

/// A log whose second cleaning has run but not been swapped in: the log, its contents, and
/// the outcome (which merges segments shrunk by the first cleaning).
fn a_pending_merge(dir: &std::path::Path) -> (Log, Contents, cleaner::CleanOutcome) {
    let mut log = open(dir, compacted());
    write_history(&mut log, 4, 40);
    clean_twice(&mut log);
    let before = contents(&log);
    let plan = log
        .plan_clean(NOW_MS, log.log_end_offset())
        .unwrap()
        .unwrap();
    let outcome = cleaner::run(&plan, &CleanerLimits::default()).unwrap();
    (log, before, outcome)
}

fn merged_run(outcome: &cleaner::CleanOutcome) -> &cleaner::CleanedGroup {
    outcome
        .cleaned
        .iter()
        .find(|c| c.planned.len() > 1 && c.cleaned_path.is_some())
        .expect("a run of several segments")
}

#[test]
fn a_crash_after_a_merged_swap_commits_deletes_the_merged_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (log, before, outcome) = a_pending_merge(dir.path());
    let merged = merged_run(&outcome);
    let swap = merged.planned[0].path.with_extension("log.swap");
    // The commit point and nothing after it: the merged-away segments are all still there.
    std::fs::rename(merged.cleaned_path.as_ref().unwrap(), &swap).unwrap();
    let merged_away: Vec<std::path::PathBuf> =
        merged.planned[1..].iter().map(|p| p.path.clone()).collect();
    drop(log);
    let log = open(dir.path(), compacted());
    assert!(!swap.exists());
    assert!(
        merged_away.iter().all(|p| !p.exists()),
        "segments covered by the swap are gone"
    );
    let after = contents(&log);
    for (offset, record) in &after {
        assert_eq!(before.get(offset), Some(record), "offset {offset} changed");
    }
    assert_eq!(last_values(&after), last_values(&before));
    assert_eq!(log.log_end_offset(), before.keys().last().unwrap() + 1);
}

#[test]
fn runs_of_segments_stay_within_one_segments_limits() {
    let seg = |base: i64, end: i64, size_bytes: u64| cleaner::PlannedSegment {
        base_offset: base,
        end_offset: end,
        path: std::path::PathBuf::from(format!("{base}.log")),
        size_bytes,
    };
    let limits = cleaner::MergeLimits {
        max_segment_bytes: 1_000,
        max_index_entries: 100,
        index_interval_bytes: 1,
    };
    let sizes = |groups: Vec<&[cleaner::PlannedSegment]>| -> Vec<Vec<i64>> {
        groups
            .iter()
            .map(|g| g.iter().map(|s| s.base_offset).collect())
            .collect()
    };
    // Bytes: 400 + 500 fit, 200 more would not; a segment alone always forms a run.
    let segments = [
        seg(0, 10, 400),
        seg(10, 20, 500),
        seg(20, 30, 200),
        seg(30, 40, 2_000),
    ];
    let roomy = cleaner::MergeLimits {
        max_index_entries: u64::MAX,
        ..limits
    };
    assert_eq!(
        sizes(cleaner::group_segments(&segments, &roomy)),
        vec![vec![0, 10], vec![20], vec![30]]
    );
    // Index entries: one per byte here and at most 100 of them, so no two of these merge.
    assert_eq!(
        sizes(cleaner::group_segments(&segments, &limits)),
        vec![vec![0], vec![10], vec![20], vec![30]]
    );
    // Offsets: a run may not span more than a segment's index can address.
    let far = [seg(0, 10, 1), seg(10, i64::from(i32::MAX) + 2, 1)];
    assert_eq!(
        sizes(cleaner::group_segments(&far, &roomy)),
        vec![vec![0], vec![10]]
    );
    assert!(cleaner::group_segments(&[], &roomy).is_empty());
    // Exactly at the limits still fits.
    let full = [seg(0, 10, 600), seg(10, 20, 400)];
    assert_eq!(
        sizes(cleaner::group_segments(&full, &roomy)),
        vec![vec![0, 10]]
    );
    let widest = [seg(0, 10, 1), seg(10, i64::from(i32::MAX) + 1, 1)];
    assert_eq!(
        sizes(cleaner::group_segments(&widest, &roomy)),
        vec![vec![0, 10]]
    );
}

#[test]
fn a_swap_that_cannot_commit_leaves_the_segments_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, before, outcome) = a_pending_merge(dir.path());
    // The cleaned file of a merged run vanishes before its rename: the commit fails.
    let run = merged_run(&outcome);
    std::fs::remove_file(run.cleaned_path.as_ref().unwrap()).unwrap();
    let run_offsets = run.planned[0].base_offset..run.planned[run.planned.len() - 1].end_offset;
    assert!(log.finish_clean(outcome).is_err());
    // The run's records are all still served (runs before it may have been swapped in), and
    // the log goes on working and cleaning.
    let after = contents(&log);
    let in_run =
        |m: &Contents| -> Vec<i64> { m.range(run_offsets.clone()).map(|(o, _)| *o).collect() };
    assert!(!in_run(&before).is_empty());
    assert_eq!(in_run(&after), in_run(&before));
    assert_eq!(last_values(&after), last_values(&before));
    log.append_as_leader(&keyed(&[("k3", Some("after"))], NOW_MS), 0, NOW_MS)
        .unwrap();
    clean(&mut log, NOW_MS);
    assert_eq!(
        last_values(&contents(&log))["k3"],
        Some("after".to_string())
    );
    drop(log);
    let log = open(dir.path(), compacted());
    assert_eq!(
        last_values(&contents(&log))["k3"],
        Some("after".to_string())
    );
}

#[test]
fn a_cleaning_planned_before_a_truncation_is_not_swapped_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compacted());
    write_history(&mut log, 4, 40);
    let end = log.log_end_offset();
    let plan = log
        .plan_clean(NOW_MS, log.log_end_offset())
        .unwrap()
        .unwrap();
    let outcome = cleaner::run(&plan, &CleanerLimits::default()).unwrap();
    // A follower truncates to the second segment and re-fetches a history of the same sizes
    // but other values: the segments roll where they did, at the same sizes.
    let second = *log.sealed.keys().nth(1).unwrap();
    log.truncate_to(second).unwrap();
    for n in second..end - 1 {
        let (key, value) = (format!("k{}", n % 4), format!("w{}", n / 4));
        log.append_as_leader(&keyed(&[(&key, Some(&value))], NOW_MS), 0, NOW_MS)
            .unwrap();
    }
    log.append_as_leader(&keyed(&[("k1", None)], NOW_MS), 0, NOW_MS)
        .unwrap();
    assert!(log.sealed.contains_key(&second));
    let stats = log.finish_clean(outcome).unwrap();
    assert_eq!(
        stats,
        CleanStats::default(),
        "nothing done, nothing reported"
    );
    let stale: Vec<i64> = contents(&log)
        .range(second..)
        .filter(|(_, (_, v))| v.as_deref().is_some_and(|v| v.starts_with('v')))
        .map(|(o, _)| *o)
        .collect();
    assert!(
        stale.is_empty(),
        "cleaned data from before the truncation at {stale:?}"
    );
}

#[test]
fn cleaning_is_due_by_ratio_or_by_max_compaction_lag() {
    let config = |ratio: f64, max_lag_ms: i64| LogConfig {
        min_cleanable_dirty_ratio: ratio,
        max_compaction_lag_ms: max_lag_ms,
        ..compacted()
    };
    let share = |dirty_bytes, total_bytes, earliest| cleaner::DirtyShare {
        dirty_bytes,
        total_bytes,
        earliest_dirty_timestamp_ms: earliest,
    };
    // (share, min.cleanable.dirty.ratio, max.compaction.lag.ms, now, due)
    let cases = [
        (share(0, 100, Some(0)), 0.0, 1, 1_000, false),
        (share(50, 100, None), 0.5, i64::MAX, 1_000, true),
        (share(49, 100, None), 0.5, i64::MAX, 1_000, false),
        (share(49, 100, Some(899)), 0.5, 100, 1_000, true),
        (share(49, 100, Some(900)), 0.5, 100, 1_000, false),
        (share(1, 100, Some(0)), 1.0, i64::MAX, i64::MAX, false),
        (share(1, 100, Some(10)), 1.0, 1, 1_000, true),
    ];
    for (share, ratio, max_lag_ms, now_ms, due) in cases {
        assert_eq!(
            cleaner::cleaning_due(share, &config(ratio, max_lag_ms), now_ms),
            due,
            "{share:?} ratio {ratio} max lag {max_lag_ms} now {now_ms}"
        );
    }
}

#[test]
fn max_compaction_lag_cleans_a_log_below_its_dirty_ratio() {
    let dir = tempfile::tempdir().unwrap();
    // Ratio 1.0: only a wholly dirty log is due by ratio.
    let strict = LogConfig {
        min_cleanable_dirty_ratio: 1.0,
        ..compacted()
    };
    let mut log = open(dir.path(), strict.clone());
    write_history(&mut log, 2, 40);
    assert!(clean(&mut log, NOW_MS).is_some(), "all dirty: due by ratio");
    write_history(&mut log, 2, 40);
    let later_ms = NOW_MS + 60_001;
    assert!(
        log.plan_clean(later_ms, log.log_end_offset())
            .unwrap()
            .is_none(),
        "partly dirty, no max lag: not due"
    );
    log.set_config(LogConfig {
        max_compaction_lag_ms: 60_000,
        ..strict
    })
    .unwrap();
    assert!(
        log.plan_clean(NOW_MS + 59_000, log.log_end_offset())
            .unwrap()
            .is_none(),
        "dirty records younger than the max lag"
    );
    let stats = clean(&mut log, later_ms).expect("due by max.compaction.lag.ms");
    assert!(stats.records_removed > 0, "{stats:?}");
}

/// A batch (header and CRC sound) whose records cannot be read, at `base_offset`.
fn unreadable_batches(base_offset: i64) -> Vec<Vec<u8>> {
    let seal = |mut batch: Vec<u8>, codec: u8| {
        let length = (batch.len() - 12) as i32;
        batch[8..12].copy_from_slice(&length.to_be_bytes());
        batch[21..23].copy_from_slice(&i16::from(codec).to_be_bytes());
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        batch
    };
    let plain = keyed(&[("a", Some("x")), ("b", Some("y"))], NOW_MS);
    // recordCount and lastOffsetDelta claim 3 records; 2 are there.
    let mut lying = plain.clone();
    lying[23..27].copy_from_slice(&2i32.to_be_bytes());
    lying[57..61].copy_from_slice(&3i32.to_be_bytes());
    // A valid gzip stream of junk, and plain records marked gzip.
    let junk = compression::compress(compression::GZIP, b"junk, not records").unwrap();
    let gzip_junk = [&plain[..61], &junk[..]].concat();
    let mut out = vec![
        seal(lying, 0),
        seal(gzip_junk, compression::GZIP),
        seal(plain.clone(), compression::GZIP),
    ];
    let mut next = base_offset;
    for batch in &mut out {
        batch[0..8].copy_from_slice(&next.to_be_bytes());
        batch[12..16].copy_from_slice(&0i32.to_be_bytes());
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        next += i64::from(i32::from_be_bytes(batch[23..27].try_into().unwrap())) + 1;
    }
    out
}

/// Issue #15: one unreadable batch on a compacted topic stopped its cleaning forever. It is
/// kept as it is, counted once, and cleaning goes on around it.
#[test]
fn an_unreadable_batch_is_kept_and_counted_and_cleaning_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compacted());
    write_history(&mut log, 3, 10);
    // Planted as a follower append would store them: header and CRC checks only.
    let junk = unreadable_batches(log.log_end_offset());
    for batch in &junk {
        log.append_as_follower(batch, NOW_MS).unwrap();
    }
    write_history(&mut log, 3, 20);
    assert!(log.segment_count() > 3);

    let stats = clean(&mut log, NOW_MS).expect("cleaning completes");
    assert!(stats.records_removed > 0, "{stats:?}");
    assert_eq!(log.cleaner_skipped_batches(), junk.len() as u64);
    let stored = read_all(&log);
    for batch in &junk {
        assert!(
            stored.windows(batch.len()).any(|w| w == &batch[..]),
            "an unreadable batch was changed or dropped"
        );
    }
    // Later passes skip them again without counting them twice.
    write_history(&mut log, 3, 20);
    clean(&mut log, NOW_MS).expect("cleaning completes");
    assert_eq!(log.cleaner_skipped_batches(), junk.len() as u64);
    let stored = read_all(&log);
    assert!(
        junk.iter()
            .all(|b| stored.windows(b.len()).any(|w| w == &b[..]))
    );
}
