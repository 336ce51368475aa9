//! Transactions in the log: coordinator appends of markers, control batches from followers,
//! and the aborted-transaction index across segments, truncation, retention and reopening.

use std::path::{Path, PathBuf};

use super::tests::{NOW_MS, open, read_all, small_config};
use super::*;
use crate::batch::batches;
use crate::control::{ControlType, build_marker_batch};
use crate::segment::{TXN_INDEX_FILE_SUFFIX, segment_file_path};
use crate::testing::{BatchSpec, build_batch_with};
use crate::txn_index::AbortedTxn;

const PRODUCER_ID: i64 = 77;

/// A transactional batch of producer 77 (epoch 0) of `values`, at sequence `seq`.
fn txn_batch(seq: i32, values: &[&[u8]]) -> Vec<u8> {
    build_batch_with(&BatchSpec {
        producer_id: PRODUCER_ID,
        producer_epoch: 0,
        base_sequence: seq,
        attributes: 0x10,
        base_timestamp_ms: NOW_MS,
        ..BatchSpec::new(values)
    })
}

fn marker(control: ControlType) -> Vec<u8> {
    build_marker_batch(PRODUCER_ID, 0, 3, control, NOW_MS)
}

fn aborted(first_offset: i64, last_offset: i64) -> AbortedTxn {
    AbortedTxn {
        producer_id: PRODUCER_ID,
        first_offset,
        last_offset,
        last_stable_offset: last_offset + 1,
    }
}

fn txn_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    segment_file_path(dir, base_offset, TXN_INDEX_FILE_SUFFIX)
}

fn all_aborted(log: &Log) -> Vec<AbortedTxn> {
    log.collect_aborted_txns(0, i64::MAX).unwrap()
}

#[test]
fn only_the_coordinator_appends_markers_and_unsequenced_producer_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let abort = marker(ControlType::Abort);
    assert!(matches!(
        log.append_as_leader(&abort, 0, NOW_MS),
        Err(LogError::InvalidRecord(m)) if m.contains("control records")
    ));
    let unsequenced = build_batch_with(&BatchSpec {
        producer_id: PRODUCER_ID,
        producer_epoch: 0,
        base_sequence: -1,
        attributes: 0x10,
        ..BatchSpec::new(&[b"offset commit"])
    });
    assert!(log.append_as_leader(&unsequenced, 0, NOW_MS).is_err());
    assert_eq!(log.log_end_offset(), 0, "nothing written");

    let info = log
        .append_as_leader_from(&unsequenced, 4, NOW_MS, AppendOrigin::Coordinator)
        .unwrap();
    assert_eq!(info.first_offset, 0);
    let info = log
        .append_as_leader_from(&abort, 4, NOW_MS, AppendOrigin::Coordinator)
        .unwrap();
    assert_eq!((info.first_offset, info.last_offset), (1, 1));
    let stored = read_all(&log);
    let stored_marker = batches(&stored).nth(1).unwrap().unwrap();
    assert_eq!(stored_marker.header.base_offset, 1);
    assert_eq!(stored_marker.header.partition_leader_epoch, 4);
    assert_eq!(
        stored_marker.bytes[16..],
        abort[16..],
        "only the offset and epoch are assigned"
    );
    assert_eq!(
        crate::control::parse_marker(stored_marker.bytes).unwrap(),
        Some((ControlType::Abort, 3))
    );
}

#[test]
fn a_topic_compression_type_leaves_markers_uncompressed() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        compression_type: crate::config::CompressionType::Gzip,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    log.append_as_leader_from(
        &marker(ControlType::Commit),
        0,
        NOW_MS,
        AppendOrigin::Coordinator,
    )
    .unwrap();
    let stored = read_all(&log);
    let header = batches(&stored).next().unwrap().unwrap().header;
    assert_eq!(header.compression_codec(), 0);
    assert!(header.is_control());
}

#[test]
fn followers_store_the_leaders_control_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let mut records = super::tests::as_stored(&txn_batch(0, &[b"a", b"b"]), 0, 2);
    records.extend(super::tests::as_stored(&marker(ControlType::Commit), 2, 2));
    let info = log.append_as_follower(&records, NOW_MS).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 2));
    assert_eq!(read_all(&log), records);
}

#[test]
fn entries_go_to_the_segment_of_their_marker_and_are_collected_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    // Producer 77's transaction spans segments; its ABORT marker lands in a later one.
    let value = [b'v'; 300];
    let mut seq = 0;
    while log.segment_count() < 3 {
        log.append_as_leader(&txn_batch(seq, &[&value]), 0, NOW_MS)
            .unwrap();
        seq += 1;
    }
    let first_segment_end = log.sealed.keys().nth(1).copied().unwrap();
    let abort = log
        .append_as_leader_from(
            &marker(ControlType::Abort),
            0,
            NOW_MS,
            AppendOrigin::Coordinator,
        )
        .unwrap()
        .first_offset;
    let entry = aborted(0, abort);
    log.append_aborted_txn(entry).unwrap();
    let marker_segment = log.active.base_offset();
    assert!(txn_index_path(dir.path(), marker_segment).exists());
    assert!(
        !txn_index_path(dir.path(), 0).exists(),
        "created on the first entry only"
    );
    // A fetch from the first segment learns of the abort from the later segment's index.
    assert_eq!(log.collect_aborted_txns(0, 1).unwrap(), vec![entry]);
    assert_eq!(
        log.collect_aborted_txns(first_segment_end, first_segment_end + 1)
            .unwrap(),
        vec![entry]
    );
    assert_eq!(
        log.collect_aborted_txns(abort + 1, abort + 5).unwrap(),
        vec![]
    );

    // Entries outside the log are refused; ones out of order too.
    assert!(matches!(
        log.append_aborted_txn(aborted(0, log.log_end_offset())),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(log.append_aborted_txn(aborted(0, abort)).is_err());
    // An entry for a marker in a sealed segment goes there (the replay after a truncation).
    log.append_aborted_txn(aborted(0, 1)).unwrap();
    assert!(txn_index_path(dir.path(), 0).exists());

    log.close().unwrap();
    let log = open(dir.path(), small_config());
    assert_eq!(all_aborted(&log), vec![aborted(0, 1), entry]);
}

#[test]
fn collecting_stops_at_the_first_entry_whose_lso_covers_the_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    let value = [b'v'; 300];
    for seq in 0..12 {
        log.append_as_leader(&txn_batch(seq, &[&value]), 0, NOW_MS)
            .unwrap();
    }
    let bases: Vec<i64> = log.sealed.keys().copied().collect();
    assert!(bases.len() >= 3);
    // One entry per segment: the first one's LSO (5) says nothing was open after it.
    let first = AbortedTxn {
        producer_id: 1,
        first_offset: 0,
        last_offset: bases[1] - 1,
        last_stable_offset: 5,
    };
    let second = AbortedTxn {
        producer_id: 2,
        first_offset: 2,
        last_offset: bases[2] - 1,
        last_stable_offset: bases[2],
    };
    log.append_aborted_txn(first).unwrap();
    log.append_aborted_txn(second).unwrap();
    // [0, 3): the first entry's LSO reaches 3, so the second segment is not read.
    assert_eq!(log.collect_aborted_txns(0, 3).unwrap(), vec![first]);
    // [0, 6): the scan goes on; the second transaction started at 2.
    assert_eq!(log.collect_aborted_txns(0, 6).unwrap(), vec![first, second]);
    // From inside the second segment: only entries from the segment holding the start.
    assert_eq!(
        log.collect_aborted_txns(bases[1], bases[2]).unwrap(),
        vec![second]
    );
}

#[test]
fn truncation_and_retention_take_the_entries_of_what_they_remove() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: 1,
        ..small_config()
    };
    let mut log = open(dir.path(), config.clone());
    let value = [b'v'; 300];
    for seq in 0..12 {
        log.append_as_leader(&txn_batch(seq, &[&value]), 0, NOW_MS)
            .unwrap();
    }
    let bases: Vec<i64> = log.sealed.keys().copied().collect();
    let entries: Vec<AbortedTxn> = bases[1..]
        .iter()
        .map(|b| aborted(0, b - 1))
        .chain([aborted(0, log.log_end_offset() - 1)])
        .collect();
    for entry in &entries {
        log.append_aborted_txn(*entry).unwrap();
    }
    let end = log.log_end_offset();

    // Cutting inside the active segment drops its entry; cutting a sealed one deletes the
    // later segments' files.
    log.truncate_to(end - 1).unwrap();
    assert_eq!(all_aborted(&log), entries[..entries.len() - 1]);
    let active_base = log.active.base_offset();
    assert!(txn_index_path(dir.path(), active_base).exists());
    log.truncate_to(bases[bases.len() - 1] - 1).unwrap();
    assert!(!txn_index_path(dir.path(), active_base).exists());
    assert_eq!(all_aborted(&log), entries[..3]);

    // truncate_aborted_txns_from drops entries ending at or after the offset, everywhere.
    log.truncate_aborted_txns_from(bases[1]).unwrap();
    assert_eq!(all_aborted(&log), entries[..1]);
    log.flush_txn_indexes().unwrap();

    // Retention deletes the first segment and its index file.
    assert!(txn_index_path(dir.path(), 0).exists());
    let result = log.enforce_retention(NOW_MS, log.log_end_offset()).unwrap();
    assert!(result.deleted_segments > 0);
    assert!(!txn_index_path(dir.path(), 0).exists());
    assert!(all_aborted(&log).is_empty());

    log.truncate_fully_and_start_at(500).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "txnindex"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_torn_index_is_cut_and_an_unknown_version_refuses_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    for seq in 0..3 {
        log.append_as_leader(&txn_batch(seq, &[b"x"]), 0, NOW_MS)
            .unwrap();
    }
    log.append_aborted_txn(aborted(0, 1)).unwrap();
    log.append_aborted_txn(aborted(0, 2)).unwrap();
    log.close().unwrap();
    let path = txn_index_path(dir.path(), 0);
    let bytes = std::fs::read(&path).unwrap();

    std::fs::write(&path, &bytes[..50]).unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(all_aborted(&log), vec![aborted(0, 1)]);
    log.close().unwrap();

    let mut unknown = bytes.clone();
    unknown[34] = 0x7f;
    std::fs::write(&path, &unknown).unwrap();
    assert!(matches!(
        Log::open(dir.path(), LogConfig::default(), NOW_MS),
        Err(LogError::CorruptIndex { .. })
    ));
}

#[test]
fn an_orphaned_txn_index_is_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), LogConfig::default()));
    let orphan = txn_index_path(dir.path(), 1_000);
    std::fs::write(&orphan, [0u8; 34]).unwrap();
    let uncommitted = dir.path().join("00000000000000000000.txnindex.swap");
    std::fs::write(&uncommitted, [0u8; 34]).unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert!(!orphan.exists());
    assert!(
        !uncommitted.exists(),
        "a carried index whose cleaning never committed"
    );
    assert!(all_aborted(&log).is_empty());
}
