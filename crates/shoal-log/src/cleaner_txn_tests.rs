//! Compaction of a log with transactions (see `cleaner_txn`): aborted records go and never
//! shadow an older value, committed transactional records are compacted by key, a marker stays
//! while its transaction has data and until its delete horizon, an aborted-transaction entry
//! goes with the last of its data, nothing at or above the last stable offset is touched, a
//! reopen (also after a crash at the swap) rebuilds the same log, and a `read_committed` read
//! of the cleaned log returns exactly its committed records.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::tests::{NOW_MS, open, read_all};
use super::*;
use crate::batch::batches;
use crate::cleaner::{self, ActiveProducers, CleanerLimits};
use crate::config::CleanupPolicy;
use crate::control::{ControlType, build_marker_batch, parse_marker};
use crate::testing::{BatchSpec, TestRecord, build_batch_with, decode_records};
use crate::txn_index::AbortedTxn;

const RETENTION_MS: i64 = 60_000;

/// Segments roll only when a test says so (`Log::roll`), so several fit one cleaned file.
fn compacted() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 100,
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: RETENTION_MS,
        ..LogConfig::default()
    }
}

/// A batch of keyed records; `producer` makes it transactional.
fn keyed(records: &[(&str, Option<&str>)], producer: Option<i64>) -> Vec<u8> {
    let (producer_id, producer_epoch, base_sequence, attributes) = match producer {
        Some(id) => (id, 0, 0, 0x10),
        None => (-1, -1, -1, 0),
    };
    build_batch_with(&BatchSpec {
        base_timestamp_ms: NOW_MS,
        producer_id,
        producer_epoch,
        base_sequence,
        attributes,
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

/// A non-transactional record; its offset.
fn put(log: &mut Log, key: &str, value: &str) -> i64 {
    log.append_as_leader(&keyed(&[(key, Some(value))], None), 0, NOW_MS)
        .unwrap()
        .first_offset
}

/// A transactional batch of `producer_id`; its first offset.
fn txn_put(log: &mut Log, producer_id: i64, records: &[(&str, Option<&str>)]) -> i64 {
    log.append_as_leader(&keyed(records, Some(producer_id)), 0, NOW_MS)
        .unwrap()
        .first_offset
}

/// A marker, as the coordinator writes it; its offset.
fn marker(log: &mut Log, producer_id: i64, control: ControlType) -> i64 {
    let batch = build_marker_batch(producer_id, 0, 0, control, NOW_MS);
    log.append_as_leader_from(&batch, 0, NOW_MS, AppendOrigin::Coordinator)
        .unwrap()
        .first_offset
}

/// An ABORT marker and its entry (`lso`: the last stable offset after it, `None` = after the
/// marker, no other transaction open).
fn abort(log: &mut Log, producer_id: i64, first_offset: i64, lso: Option<i64>) -> AbortedTxn {
    let last_offset = marker(log, producer_id, ControlType::Abort);
    let entry = AbortedTxn {
        producer_id,
        first_offset,
        last_offset,
        last_stable_offset: lso.unwrap_or(last_offset + 1),
    };
    log.append_aborted_txn(entry).unwrap();
    entry
}

/// Something new in a sealed segment, so that the next plan has dirty bytes.
fn dirty(log: &mut Log) {
    let end = log.log_end_offset();
    put(log, &format!("filler-{end}"), "f");
    log.roll(NOW_MS).unwrap();
}

fn clean_with(
    log: &mut Log,
    now_ms: i64,
    first_uncleanable_offset: i64,
    producers: ActiveProducers,
) -> Option<CleanStats> {
    let mut plan = log.plan_clean(now_ms, first_uncleanable_offset).unwrap()?;
    plan.keep_for_producers(producers);
    let outcome = cleaner::run(&plan, &CleanerLimits::default()).unwrap();
    Some(log.finish_clean(outcome).unwrap())
}

fn clean(log: &mut Log) -> Option<CleanStats> {
    clean_at(log, NOW_MS)
}

fn clean_at(log: &mut Log, now_ms: i64) -> Option<CleanStats> {
    let end = log.log_end_offset();
    clean_with(log, now_ms, end, ActiveProducers::default())
}

/// One stored batch, as a test looks at it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    base_offset: i64,
    last_offset: i64,
    control: Option<ControlType>,
    transactional: bool,
    producer: (i64, i16, i32),
    horizon_ms: Option<i64>,
    records: Vec<(i64, String, Option<String>)>,
}

fn text(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn stored(log: &Log) -> Vec<Stored> {
    let bytes = read_all(log);
    batches(&bytes)
        .map(|batch| {
            let batch = batch.unwrap();
            let h = batch.header;
            let control = if h.is_control() {
                parse_marker(batch.bytes).unwrap().map(|(c, _)| c)
            } else {
                None
            };
            let records = if h.is_control() {
                Vec::new()
            } else {
                decode_records(batch.bytes)
                    .unwrap()
                    .into_iter()
                    .map(|r| (r.offset, text(r.key).unwrap(), text(r.value)))
                    .collect()
            };
            Stored {
                base_offset: h.base_offset,
                last_offset: h.last_offset(),
                control,
                transactional: h.is_transactional(),
                producer: (h.producer_id, h.producer_epoch, h.base_sequence),
                horizon_ms: (h.attributes & 0x40 != 0).then_some(h.base_timestamp),
                records,
            }
        })
        .collect()
}

/// Every data record: offset → (key, value).
fn contents(log: &Log) -> BTreeMap<i64, (String, Option<String>)> {
    stored(log)
        .into_iter()
        .flat_map(|b| b.records)
        .map(|(offset, key, value)| (offset, (key, value)))
        .collect()
}

fn markers(log: &Log) -> Vec<Stored> {
    stored(log)
        .into_iter()
        .filter(|b| b.control.is_some())
        .collect()
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

/// What a `read_committed` consumer gets from the log below `upper` (Kafka's consumer: fetch by
/// fetch, each with the aborted transactions of its range; a producer is skipped from an
/// aborted transaction's first offset until its ABORT marker).
fn read_committed(log: &Log, upper: i64) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < upper {
        let read = log.read(next, 300, upper, true).unwrap();
        if read.records.is_empty() {
            break;
        }
        let end = batches(&read.records)
            .map(|b| b.unwrap().header.next_offset())
            .max()
            .unwrap();
        let mut aborted = log.collect_aborted_txns(next, end).unwrap();
        aborted.sort_by_key(|t| t.first_offset);
        let mut aborted = std::collections::VecDeque::from(aborted);
        let mut skipping: HashSet<i64> = HashSet::new();
        for batch in batches(&read.records) {
            let batch = batch.unwrap();
            let h = batch.header;
            if h.last_offset() < next {
                continue;
            }
            if h.producer_id >= 0 {
                while aborted
                    .front()
                    .is_some_and(|t| t.first_offset <= h.last_offset())
                {
                    skipping.insert(aborted.pop_front().unwrap().producer_id);
                }
                if h.is_control() {
                    if let Some((ControlType::Abort, _)) = parse_marker(batch.bytes).unwrap() {
                        skipping.remove(&h.producer_id);
                    }
                    continue;
                }
                if h.is_transactional() && skipping.contains(&h.producer_id) {
                    continue;
                }
            }
            if h.is_control() {
                continue;
            }
            for r in decode_records(batch.bytes).unwrap() {
                if r.offset >= next && r.offset < upper {
                    out.push((r.offset, text(r.key).unwrap(), text(r.value)));
                }
            }
        }
        next = end;
    }
    out
}

/// The records of `log` a committed read must return: every stored data record not in
/// `aborted` (offsets of aborted transactions' records the cleaner has not reached).
fn committed_in(log: &Log, aborted: &BTreeSet<i64>) -> Vec<(i64, String, Option<String>)> {
    contents(log)
        .into_iter()
        .filter(|(offset, _)| !aborted.contains(offset))
        .map(|(offset, (key, value))| (offset, key, value))
        .collect()
}

// ─── Aborted and committed data ────────────────────────────────────────────────────────────

#[test]
fn aborted_records_go_and_do_not_shadow_older_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compacted());
    let v0 = put(&mut log, "k", "v0");
    let first = txn_put(
        &mut log,
        7,
        &[("k", Some("aborted")), ("j", Some("aborted"))],
    );
    let between = put(&mut log, "m", "between");
    txn_put(&mut log, 7, &[("k", None)]); // an aborted delete of k
    let entry = abort(&mut log, 7, first, None);
    log.roll(NOW_MS).unwrap();
    dirty(&mut log);
    let aborted: BTreeSet<i64> = [first, first + 1, first + 3].into();
    assert_eq!(
        read_committed(&log, log.log_end_offset()),
        committed_in(&log, &aborted)
    );

    let stats = clean(&mut log).expect("something to clean");
    assert_eq!(stats.aborted_records_removed, 3, "{stats:?}");
    assert_eq!(stats.records_removed, 3, "{stats:?}");
    assert_eq!(stats.markers_removed, 0, "{stats:?}");
    let after = contents(&log);
    assert_eq!(
        after[&v0],
        ("k".into(), Some("v0".into())),
        "v0 is still k's value"
    );
    assert_eq!(after[&between], ("m".into(), Some("between".into())));
    assert!(
        after.values().all(|(_, v)| v.as_deref() != Some("aborted")),
        "{after:?}"
    );
    assert!(
        !after.contains_key(&(first + 3)),
        "the aborted delete is gone"
    );
    // This pass saw the transaction's data: its marker and entry stay for one more.
    assert_eq!(markers(&log).len(), 1);
    assert_eq!(markers(&log)[0].horizon_ms, None);
    assert_eq!(all_entries(&log), vec![entry]);
    assert_eq!(
        read_committed(&log, log.log_end_offset()),
        committed_in(&log, &BTreeSet::new())
    );
}

#[test]
fn committed_transactional_records_are_compacted_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compacted());
    let v0 = put(&mut log, "k", "v0");
    let t1 = txn_put(&mut log, 7, &[("k", Some("t1")), ("z", Some("t1"))]);
    let commit1 = marker(&mut log, 7, ControlType::Commit);
    let v2 = put(&mut log, "k", "v2"); // supersedes t1's k, not its z
    let t2 = txn_put(&mut log, 8, &[("j", Some("t2")), ("k", Some("t2"))]);
    marker(&mut log, 8, ControlType::Commit);
    log.roll(NOW_MS).unwrap();
    dirty(&mut log);

    let stats = clean(&mut log).expect("something to clean");
    assert_eq!(stats.records_removed, 3, "v0, t1's k, v2: {stats:?}");
    assert_eq!(stats.aborted_records_removed, 0);
    let after = contents(&log);
    for gone in [v0, t1, v2] {
        assert!(!after.contains_key(&gone), "offset {gone} should be gone");
    }
    assert_eq!(after[&(t1 + 1)], ("z".into(), Some("t1".into())));
    assert_eq!(after[&(t2 + 1)], ("k".into(), Some("t2".into())));
    // The rewritten batch keeps its header: offsets, producer, sequence, transactional bit.
    let batches = stored(&log);
    let rewritten = batches.iter().find(|b| b.base_offset == t1).unwrap();
    assert_eq!(rewritten.last_offset, t1 + 1);
    assert!(rewritten.transactional && rewritten.control.is_none());
    assert_eq!(rewritten.producer, (7, 0, 0));
    assert_eq!(rewritten.records.len(), 1);
    // Both transactions had batches in this pass: their markers stay, no horizon yet.
    let kept: Vec<(i64, Option<i64>)> = markers(&log)
        .iter()
        .map(|m| (m.base_offset, m.horizon_ms))
        .collect();
    assert_eq!(kept, vec![(commit1, None), (t2 + 2, None)]);
    assert_eq!(
        read_committed(&log, log.log_end_offset()),
        committed_in(&log, &BTreeSet::new())
    );
}

// ─── Markers ────────────────────────────────────────────────────────────────────────────────

/// A log with one transaction of producer 7 ending with `control`, its data superseded (for a
/// commit) or aborted, all of it in sealed segments. Returns (log, marker offset, its entry).
fn one_transaction(dir: &std::path::Path, control: ControlType) -> (Log, i64, Option<AbortedTxn>) {
    let mut log = open(dir, compacted());
    let first = txn_put(&mut log, 7, &[("k", Some("t"))]);
    let (at, entry) = match control {
        ControlType::Abort => {
            let entry = abort(&mut log, 7, first, None);
            (entry.last_offset, Some(entry))
        }
        ControlType::Commit => (marker(&mut log, 7, ControlType::Commit), None),
    };
    put(&mut log, "k", "later");
    log.roll(NOW_MS).unwrap();
    dirty(&mut log);
    (log, at, entry)
}

#[test]
fn a_marker_stays_while_its_transaction_has_data_and_until_its_horizon() {
    for control in [ControlType::Abort, ControlType::Commit] {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, at, entry) = one_transaction(dir.path(), control);
        let end = log.log_end_offset();
        let check_reads = |log: &Log| {
            assert_eq!(
                read_committed(log, log.log_end_offset()),
                committed_in(log, &BTreeSet::new()),
                "{control:?}"
            );
        };
        // Pass 1 sees the transaction's batch and removes it (aborted, or superseded).
        let stats = clean_at(&mut log, NOW_MS).unwrap();
        assert_eq!(stats.records_removed, 1, "{control:?}: {stats:?}");
        let m = markers(&log);
        assert_eq!(
            (m.len(), m[0].base_offset, m[0].horizon_ms),
            (1, at, None),
            "{control:?}"
        );
        assert_eq!(all_entries(&log), entry.into_iter().collect::<Vec<_>>());
        check_reads(&log);

        // Pass 2: no data left; the marker gets its horizon, the entry goes.
        dirty(&mut log);
        let pass2 = NOW_MS + 1_000;
        let stats = clean_at(&mut log, pass2).unwrap();
        assert_eq!(stats.markers_removed, 0);
        let m = markers(&log);
        assert_eq!(m.len(), 1, "{control:?}");
        assert_eq!(m[0].horizon_ms, Some(pass2 + RETENTION_MS), "{control:?}");
        assert_eq!(m[0].producer, (7, 0, -1), "{control:?}");
        assert_eq!(all_entries(&log), vec![], "{control:?}");
        check_reads(&log);

        // Before the horizon: kept as it is.
        dirty(&mut log);
        let stats = clean_at(&mut log, pass2 + RETENTION_MS - 1).unwrap();
        assert_eq!(stats.markers_removed, 0);
        assert_eq!(markers(&log)[0].horizon_ms, Some(pass2 + RETENTION_MS));
        // At the horizon: gone.
        dirty(&mut log);
        let stats = clean_at(&mut log, pass2 + RETENTION_MS).unwrap();
        assert_eq!(stats.markers_removed, 1, "{control:?}");
        assert!(markers(&log).is_empty(), "{control:?}");
        check_reads(&log);
        assert_eq!(log.log_end_offset(), end + 3, "offsets never move");
    }
}

#[test]
fn a_commit_marker_stays_while_a_batch_of_its_transaction_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compacted());
    let first = txn_put(&mut log, 7, &[("a", Some("t"))]);
    txn_put(&mut log, 7, &[("b", Some("t"))]);
    let at = marker(&mut log, 7, ControlType::Commit);
    put(&mut log, "a", "later"); // one batch of the transaction goes, the other stays
    log.roll(NOW_MS).unwrap();
    for pass in 0..4 {
        dirty(&mut log);
        clean_at(&mut log, NOW_MS + pass * RETENTION_MS * 2).unwrap();
        assert!(!contents(&log).contains_key(&first));
        let m = markers(&log);
        assert_eq!(
            (m.len(), m[0].base_offset, m[0].horizon_ms),
            (1, at, None),
            "pass {pass}"
        );
    }
}

#[test]
fn markers_the_producer_state_needs_stay() {
    // (what, producers, kept)
    let cases = [
        ("nothing tracked", ActiveProducers::default(), false),
        (
            "its producer tracked, the marker after its last data",
            {
                let mut p = ActiveProducers::new(None);
                p.insert(7, 0, Some(0));
                p
            },
            true,
        ),
        (
            "its producer tracked at a newer epoch",
            {
                let mut p = ActiveProducers::new(None);
                p.insert(7, 1, None);
                p
            },
            false,
        ),
        (
            "another producer tracked",
            {
                let mut p = ActiveProducers::new(None);
                p.insert(8, 0, None);
                p
            },
            false,
        ),
        (
            "the producer snapshot below it",
            ActiveProducers::new(Some(1)),
            true,
        ),
        (
            "the producer snapshot after it",
            ActiveProducers::new(Some(2)),
            false,
        ),
    ];
    for (what, producers, kept) in cases {
        for control in [ControlType::Abort, ControlType::Commit] {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, at, _) = one_transaction(dir.path(), control);
            assert_eq!(at, 1);
            let mut now = NOW_MS;
            for _ in 0..3 {
                let end = log.log_end_offset();
                clean_with(&mut log, now, end, producers.clone()).unwrap();
                dirty(&mut log);
                now += RETENTION_MS * 2;
            }
            let m = markers(&log);
            assert_eq!(m.len(), usize::from(kept), "{what}, {control:?}");
            if kept {
                // Kept whole, with the horizon it got when it became removable.
                assert_eq!(
                    m[0].horizon_ms,
                    Some(NOW_MS + 2 * RETENTION_MS + RETENTION_MS)
                );
            }
        }
    }
}

// ─── The last stable offset ────────────────────────────────────────────────────────────────

#[test]
fn nothing_at_or_above_the_last_stable_offset_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compacted());
    let v0 = put(&mut log, "k", "v0");
    let v1 = put(&mut log, "k", "v1");
    log.roll(NOW_MS).unwrap();
    // An open transaction: the last stable offset is its first offset.
    let lso = txn_put(&mut log, 7, &[("k", Some("open"))]);
    let v2 = put(&mut log, "k", "v2");
    let j_aborted = txn_put(&mut log, 8, &[("j", Some("aborted"))]);
    abort(&mut log, 8, j_aborted, Some(lso));
    log.roll(NOW_MS).unwrap();
    dirty(&mut log);
    let segments_above: Vec<(i64, Vec<u8>)> = log
        .segments()
        .filter(|s| s.base_offset() >= lso)
        .map(|s| (s.base_offset(), std::fs::read(s.log_path()).unwrap()))
        .collect();

    let stats = clean_with(&mut log, NOW_MS, lso, ActiveProducers::default()).unwrap();
    assert_eq!(stats.records_removed, 1, "only v0: {stats:?}");
    let after = contents(&log);
    assert!(!after.contains_key(&v0));
    // v1 stays: the open transaction's k (and v2 after it) are not the cleaner's to see.
    for offset in [v1, lso, v2, j_aborted] {
        assert!(after.contains_key(&offset), "offset {offset} was touched");
    }
    for (base, bytes) in &segments_above {
        let segment = log.segments().find(|s| s.base_offset() == *base).unwrap();
        assert_eq!(
            &std::fs::read(segment.log_path()).unwrap(),
            bytes,
            "segment {base}"
        );
    }
    assert_eq!(all_entries(&log).len(), 1);

    // The transaction commits: everything is decided, and k's latest is v2.
    let commit = marker(&mut log, 7, ControlType::Commit);
    log.roll(NOW_MS).unwrap();
    dirty(&mut log);
    clean(&mut log).unwrap();
    let after = contents(&log);
    for gone in [v1, lso, j_aborted] {
        assert!(!after.contains_key(&gone), "offset {gone} should be gone");
    }
    assert_eq!(after[&v2], ("k".into(), Some("v2".into())));
    assert!(markers(&log).iter().any(|m| m.base_offset == commit));
}

// ─── Reopen and crashes ────────────────────────────────────────────────────────────────────

/// Everything a reopen must find as it was.
fn state(log: &Log) -> (Vec<Stored>, BTreeMap<i64, Vec<AbortedTxn>>, i64, i64) {
    (
        stored(log),
        entries_by_segment(log),
        log.log_start_offset(),
        log.log_end_offset(),
    )
}

/// A history whose first cleaning removes aborted data (keeping markers and entries); the
/// second one finds the markers without data.
fn history_cleaned_once(dir: &std::path::Path) -> Log {
    let mut log = open(dir, compacted());
    for round in 0..6 {
        put(&mut log, "k", &format!("v{round}"));
        let first = txn_put(&mut log, 100 + round, &[("k", Some("aborted"))]);
        abort(&mut log, 100 + round, first, None);
        txn_put(&mut log, 200 + round, &[("c", Some(&format!("c{round}")))]);
        marker(&mut log, 200 + round, ControlType::Commit);
        log.roll(NOW_MS).unwrap();
    }
    dirty(&mut log);
    clean(&mut log).unwrap();
    assert_eq!(all_entries(&log).len(), 6);
    dirty(&mut log);
    log
}

#[test]
fn a_reopen_after_cleaning_rebuilds_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = history_cleaned_once(dir.path());
    clean_at(&mut log, NOW_MS + 1).unwrap();
    assert!(
        all_entries(&log).is_empty(),
        "the data went in the first pass"
    );
    assert!(markers(&log).iter().any(|m| m.horizon_ms.is_some()));
    let before = state(&log);
    let committed = read_committed(&log, log.log_end_offset());
    log.close().unwrap();
    let log = open(dir.path(), compacted());
    assert_eq!(state(&log), before);
    assert_eq!(read_committed(&log, log.log_end_offset()), committed);
    // An unclean reopen (recovery rescans the segments) too.
    drop(log);
    std::fs::remove_file(dir.path().join("clean-shutdown")).ok();
    let log = open(dir.path(), compacted());
    assert_eq!(state(&log), before);
}

#[test]
fn a_crash_after_the_commit_removes_an_index_left_empty() {
    // The same history twice: one finishes its second cleaning, one crashes at its commit.
    let done_dir = tempfile::tempdir().unwrap();
    let mut done = history_cleaned_once(done_dir.path());
    clean_at(&mut done, NOW_MS + 1).unwrap();
    let expected = state(&done);
    assert!(expected.1.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let log = history_cleaned_once(dir.path());
    let plan = log
        .plan_clean(NOW_MS + 1, log.log_end_offset())
        .unwrap()
        .unwrap();
    let outcome = cleaner::run(&plan, &CleanerLimits::default()).unwrap();
    let run = outcome
        .cleaned
        .iter()
        .find(|c| {
            c.cleaned_txn_index
                .as_ref()
                .is_some_and(|p| std::fs::metadata(p).unwrap().len() == 0)
        })
        .expect("a run whose entries all went");
    let log_path = run.planned[0].path.clone();
    let txn_index = log_path.with_extension("txnindex");
    assert!(txn_index.exists());
    // Staged and committed, nothing after.
    std::fs::rename(
        run.cleaned_txn_index.as_ref().unwrap(),
        cleaner::txn_index_swap_path(&log_path),
    )
    .unwrap();
    std::fs::rename(
        run.cleaned_path.as_ref().unwrap(),
        log_path.with_extension("log.swap"),
    )
    .unwrap();
    for other in outcome
        .cleaned
        .iter()
        .filter(|c| c.planned[0].path != log_path)
    {
        other.discard();
    }
    drop(log);
    let log = open(dir.path(), compacted());
    assert!(!txn_index.exists(), "the old entries went with the swap");
    assert!(!cleaner::txn_index_swap_path(&log_path).exists());
    let reopened = state(&log);
    assert!(reopened.1.is_empty(), "{:?}", reopened.1);
    // What the other runs would have done is redone by the next cleaning.
    drop(log);
    let mut log = open(dir.path(), compacted());
    clean_at(&mut log, NOW_MS + 1).unwrap();
    clean_at(&mut done, NOW_MS + 1);
    assert_eq!(contents(&log), contents(&done));
    assert_eq!(entries_by_segment(&log), entries_by_segment(&done));
}

// ─── Carried entries across merged segments ────────────────────────────────────────────────

/// Writes overwritten keys and, every other round, one aborted transaction of its own producer
/// (data, ABORT marker, index entry); a segment per round. Returns the entries.
fn write_history(log: &mut Log, rounds: usize, producer_base: i64) -> Vec<AbortedTxn> {
    let mut entries = Vec::new();
    for round in 0..rounds {
        for k in 0..3 {
            put(log, &format!("k{k}"), &format!("v{round}"));
        }
        if round % 2 == 0 {
            let producer_id = producer_base + round as i64;
            let first = txn_put(log, producer_id, &[("t", Some("aborted"))]);
            put(log, "k0", "between");
            entries.push(abort(log, producer_id, first, None));
        }
        log.roll(NOW_MS).unwrap();
    }
    entries
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
    let expected = write_history(&mut log, 20, 1_000);
    let before = entries_by_segment(&log);
    let segments_before = log.segment_count();
    let stats = clean(&mut log).expect("something to clean");
    assert_eq!(stats.aborted_records_removed, 10, "{stats:?}");
    assert!(log.segment_count() < segments_before, "segments merged");
    // The pass that removed the aborted data keeps every entry, in the merged segments.
    assert_eq!(all_entries(&log), expected);
    assert!(
        merged_holders(&before, &log) > 0,
        "a merged segment holds the entries of several"
    );
    // Fetches find them through the log as before; a reopen reads the written files.
    assert_eq!(log.collect_aborted_txns(0, i64::MAX).unwrap(), expected);
    log.close().unwrap();
    let mut log = open(dir.path(), compacted());
    assert_eq!(all_entries(&log), expected);
    // The next pass finds no data under them: the entries go, the markers wait for their
    // horizon.
    dirty(&mut log);
    clean(&mut log).unwrap();
    assert_eq!(all_entries(&log), vec![]);
    assert_eq!(markers(&log).len(), expected.len());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".cleaned") || name.ends_with(".swap"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A log whose first cleaning has run but not been swapped in, and the entries.
fn pending_merge(dir: &std::path::Path) -> (Log, Vec<AbortedTxn>, cleaner::CleanOutcome) {
    let mut log = open(dir, compacted());
    let expected = write_history(&mut log, 20, 1_000);
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
        .find(|c| {
            c.planned.len() > 1
                && c.cleaned_path.is_some()
                && c.cleaned_txn_index
                    .as_ref()
                    .is_some_and(|p| std::fs::metadata(p).unwrap().len() > 34)
        })
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

// ─── Reading committed records ─────────────────────────────────────────────────────────────

/// A deterministic history of interleaved transactions (committed and aborted), plain writes
/// and tombstones over a few keys, in many segments. Returns the offsets of aborted records.
fn interleaved_history(log: &mut Log, steps: usize, seed: u64) -> BTreeSet<i64> {
    let mut state = seed;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    // Open transactions: producer → (first offset, its record offsets).
    let mut open: BTreeMap<i64, (i64, Vec<i64>)> = BTreeMap::new();
    let mut aborted = BTreeSet::new();
    for step in 0..steps {
        let key = format!("k{}", next(6));
        let value = format!("s{step}");
        match next(10) {
            0..=2 => {
                let value = (next(8) != 0).then_some(value.as_str());
                log.append_as_leader(&keyed(&[(&key, value)], None), 0, NOW_MS)
                    .unwrap();
            }
            3..=6 => {
                let producer = 1 + next(3) as i64;
                let at = txn_put(log, producer, &[(&key, Some(&value)), ("t", Some(&value))]);
                let entry = open.entry(producer).or_insert((at, Vec::new()));
                entry.1.extend([at, at + 1]);
            }
            _ => {
                let Some(&producer) = open.keys().nth(next(3) as usize) else {
                    continue;
                };
                let (first, records) = open.remove(&producer).unwrap();
                if next(2) == 0 {
                    marker(log, producer, ControlType::Commit);
                } else {
                    let lso = open.values().map(|(f, _)| *f).min();
                    abort(log, producer, first, lso);
                    aborted.extend(records);
                }
            }
        }
        if next(4) == 0 {
            log.roll(NOW_MS).unwrap();
        }
    }
    while let Some((producer, (first, records))) = open.pop_first() {
        let lso = open.values().map(|(f, _)| *f).min();
        abort(log, producer, first, lso);
        aborted.extend(records);
    }
    log.roll(NOW_MS).unwrap();
    aborted
}

#[test]
fn a_committed_read_of_the_cleaned_log_returns_exactly_the_committed_records() {
    for seed in 1..=8 {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), compacted());
        let aborted = interleaved_history(&mut log, 120, seed);
        dirty(&mut log);
        let before = contents(&log);
        let committed_before = read_committed(&log, log.log_end_offset());
        assert_eq!(
            committed_before,
            committed_in(&log, &aborted),
            "seed {seed}"
        );
        // The latest committed value of each key, where it was written.
        let mut latest: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
        for (offset, key, value) in &committed_before {
            latest.insert(key.clone(), (*offset, value.clone()));
        }

        let mut now = NOW_MS;
        let mut totals = CleanStats::default();
        for pass in 0..4 {
            let stats = clean_at(&mut log, now).unwrap();
            totals.aborted_records_removed += stats.aborted_records_removed;
            totals.markers_removed += stats.markers_removed;
            let got = read_committed(&log, log.log_end_offset());
            let what = format!("seed {seed}, pass {pass}");
            // No aborted record is left, and a committed read returns every record left.
            let after = contents(&log);
            assert!(after.keys().all(|o| !aborted.contains(o)), "{what}");
            assert_eq!(got, committed_in(&log, &BTreeSet::new()), "{what}");
            // Each record read is as written; each key's latest committed value is read.
            for (offset, key, value) in &got {
                match before.get(offset) {
                    Some(written) => assert_eq!(written, &(key.clone(), value.clone()), "{what}"),
                    None => assert!(key.starts_with("filler-"), "{what}: {key} at {offset}"),
                }
            }
            for (key, (offset, value)) in &latest {
                let kept = got.iter().find(|(o, _, _)| o == offset);
                match value {
                    Some(value) => assert_eq!(
                        kept.map(|(_, _, v)| v.as_deref()),
                        Some(Some(value.as_str())),
                        "{what}: {key} latest at {offset}"
                    ),
                    // A tombstone may go after its retention; never an older value instead.
                    None => assert!(
                        got.iter()
                            .filter(|(_, k, _)| k == key)
                            .all(|(o, _, _)| o == offset),
                        "{what}: deleted {key}"
                    ),
                }
            }
            // All of it was cleaned (the active segment is empty): one record per key.
            let keys: Vec<&String> = got.iter().map(|(_, k, _)| k).collect();
            let distinct: BTreeSet<&String> = keys.iter().copied().collect();
            assert_eq!(keys.len(), distinct.len(), "{what}");
            dirty(&mut log);
            now += RETENTION_MS * 2;
        }
        assert_eq!(
            totals.aborted_records_removed,
            aborted.len() as u64,
            "seed {seed}"
        );
        assert!(totals.markers_removed > 0, "seed {seed}");
        // In the end every entry went, and every marker but the COMMIT of a transaction that
        // still has a batch (no producer state protects any here).
        assert!(all_entries(&log).is_empty(), "seed {seed}");
        let mut has_batch: BTreeSet<i64> = BTreeSet::new();
        for batch in stored(&log) {
            let producer = batch.producer.0;
            match batch.control {
                None if batch.transactional => {
                    has_batch.insert(producer);
                }
                None => {}
                Some(control) => {
                    assert_eq!(control, ControlType::Commit, "seed {seed}: {batch:?}");
                    assert!(has_batch.remove(&producer), "seed {seed}: {batch:?}");
                }
            }
        }
    }
}
