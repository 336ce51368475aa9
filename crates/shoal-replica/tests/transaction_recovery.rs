//! Transactions survive a restart: after a clean close, a crash (with and without a producer
//! snapshot), a torn or lost aborted-transaction index, and a snapshot of an unknown format,
//! the open transactions, the last stable offset, the index and the producers are exactly
//! what they were.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use crate::txn_common;

use std::path::Path;

use shoal_log::AbortedTxn;
use shoal_replica::producer_snapshot::SNAPSHOT_FILE;
use shoal_replica::{
    ControlType, MaintenanceDue, OngoingTxn, Partition, PartitionError, ProducerEntryInfo,
    RequiredAcks,
};
use txn_common::*;

/// What must survive a restart.
#[derive(Debug, PartialEq)]
struct Observed {
    ongoing: Vec<OngoingTxn>,
    last_stable_offset: i64,
    high_watermark: i64,
    index: Vec<AbortedTxn>,
    producers: Vec<ProducerEntryInfo>,
    committed_read: (Vec<u8>, Vec<AbortedTxn>),
}

fn observe(p: &Partition) -> Observed {
    let fetched = read_committed(p, 0);
    Observed {
        ongoing: p.ongoing_transactions(),
        last_stable_offset: p.last_stable_offset(),
        high_watermark: p.high_watermark(),
        index: index(p),
        producers: p.producer_entries(),
        committed_read: (fetched.records.to_vec(), fetched.aborted_transactions),
    }
}

fn snapshot(p: &Partition) {
    p.run_maintenance(
        NOW_MS,
        MaintenanceDue {
            producer_snapshot: true,
            ..MaintenanceDue::default()
        },
    )
    .unwrap();
}

/// Two aborts, a commit and a transaction left open, on one replica; `snapshot_midway` takes a
/// producer snapshot after the first abort. Returns the partition.
fn history(dir: &Path, snapshot_midway: bool) -> Partition {
    let p = open(dir, 1, &state(1, 0, &[1]));
    p.append_as_leader(&plain(&[b"a"]), RequiredAcks::Leader, NOW_MS)
        .unwrap(); // 0
    txn_write(&p, 7, 0, 0, &[b"p7"]).unwrap(); // 1
    txn_write(&p, 8, 0, 0, &[b"p8"]).unwrap(); // 2, left open
    txn_write(&p, 7, 0, 1, &[b"p7 again"]).unwrap(); // 3
    end_txn(&p, 7, 0, 3, ControlType::Abort).unwrap(); // 4
    if snapshot_midway {
        snapshot(&p);
    }
    txn_write(&p, 9, 0, 0, &[b"p9"]).unwrap(); // 5
    end_txn(&p, 9, 0, 3, ControlType::Commit).unwrap(); // 6
    p.append_as_leader(&plain(&[b"b"]), RequiredAcks::Leader, NOW_MS)
        .unwrap(); // 7
    txn_write(&p, 10, 0, 0, &[b"p10"]).unwrap(); // 8
    end_txn(&p, 10, 0, 3, ControlType::Abort).unwrap(); // 9
    let observed = observe(&p);
    assert_eq!(observed.last_stable_offset, 2, "held by producer 8");
    assert_eq!(
        observed.index,
        vec![
            AbortedTxn {
                producer_id: 7,
                first_offset: 1,
                last_offset: 4,
                last_stable_offset: 2
            },
            AbortedTxn {
                producer_id: 10,
                first_offset: 8,
                last_offset: 9,
                last_stable_offset: 2
            },
        ]
    );
    p
}

fn reopen(dir: &Path) -> Partition {
    open(dir, 1, &state(1, 0, &[1]))
}

/// The open transaction goes on after the restart, and its rules hold.
fn producer_8_goes_on(p: &Partition) {
    assert!(matches!(
        p.append_as_leader(
            &producer_batch(8, 0, 1, false, &[b"outside"]),
            RequiredAcks::Leader,
            NOW_MS
        ),
        Err(PartitionError::InvalidTxnState)
    ));
    assert_eq!(p.txn_verification_needed(8, 0, false, 0), None);
    p.append_as_leader(
        &producer_batch(8, 0, 1, true, &[b"p8 again"]),
        RequiredAcks::Leader,
        NOW_MS,
    )
    .unwrap();
    end_txn(p, 8, 0, 3, ControlType::Commit).unwrap();
    assert_eq!(p.last_stable_offset(), p.high_watermark());
    assert!(p.ongoing_transactions().is_empty());
}

fn txn_index_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txnindex"))
        .collect()
}

#[test]
fn a_clean_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let p = history(dir.path(), false);
    let before = observe(&p);
    p.close().unwrap();
    let p = reopen(dir.path());
    assert_eq!(observe(&p), before);
    producer_8_goes_on(&p);
}

#[test]
fn a_crash_without_a_snapshot_rebuilds_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let p = history(dir.path(), false);
    let before = observe(&p);
    drop(p); // no close: no snapshot, no clean-shutdown marker
    assert!(!dir.path().join(SNAPSHOT_FILE).exists());
    let p = reopen(dir.path());
    assert_eq!(observe(&p), before);
    producer_8_goes_on(&p);
}

#[test]
fn a_crash_after_a_snapshot_replays_from_it_and_repairs_a_torn_index() {
    let dir = tempfile::tempdir().unwrap();
    let p = history(dir.path(), true);
    let before = observe(&p);
    drop(p);
    // The last entry (written after the snapshot) was torn by the crash.
    let files = txn_index_files(dir.path());
    assert_eq!(files.len(), 1);
    let bytes = std::fs::read(&files[0]).unwrap();
    std::fs::write(&files[0], &bytes[..34 + 20]).unwrap();
    let p = reopen(dir.path());
    assert_eq!(observe(&p), before);
    assert_eq!(
        std::fs::read(&files[0]).unwrap(),
        bytes,
        "rewritten as it was"
    );
    producer_8_goes_on(&p);
}

#[test]
fn a_lost_snapshot_and_index_are_rebuilt_identically() {
    let dir = tempfile::tempdir().unwrap();
    let p = history(dir.path(), true);
    let before = observe(&p);
    let index_bytes: Vec<Vec<u8>> = txn_index_files(dir.path())
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    p.close().unwrap();
    std::fs::remove_file(dir.path().join(SNAPSHOT_FILE)).unwrap();
    for file in txn_index_files(dir.path()) {
        std::fs::remove_file(file).unwrap();
    }
    let p = reopen(dir.path());
    assert_eq!(observe(&p), before);
    let rebuilt: Vec<Vec<u8>> = txn_index_files(dir.path())
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert_eq!(rebuilt, index_bytes, "byte for byte");
    producer_8_goes_on(&p);
}

#[test]
fn a_snapshot_of_an_unknown_format_is_discarded_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let p = history(dir.path(), false);
    let before = observe(&p);
    p.close().unwrap();
    let path = dir.path().join(SNAPSHOT_FILE);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"version\":1", "\"version\":99");
    assert!(text.contains("\"version\":99"));
    std::fs::write(&path, text).unwrap();
    let p = reopen(dir.path());
    assert_eq!(observe(&p), before);
    producer_8_goes_on(&p);
}

#[test]
fn a_snapshot_taken_before_the_marker_keeps_the_transaction_decided_only_by_the_log() {
    // The snapshot sees producer 7's transaction open; the ABORT after it is replayed.
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), 1, &state(1, 0, &[1]));
    txn_write(&p, 7, 0, 0, &[b"p7"]).unwrap();
    snapshot(&p);
    end_txn(&p, 7, 0, 0, ControlType::Abort).unwrap();
    let before = observe(&p);
    assert!(before.ongoing.is_empty());
    assert_eq!(before.index.len(), 1);
    drop(p);
    let p = reopen(dir.path());
    assert_eq!(observe(&p), before);
}
