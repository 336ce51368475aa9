//! Idempotent-producer state survives a clean restart (snapshot) and a crash (log replay):
//! a retry after either is still recognised as a duplicate, so it is not written twice.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use shoal_log::LogConfig;
use shoal_log::testing::{BatchSpec, build_batch_with};
use shoal_replica::{Partition, PartitionState, RequiredAcks};

fn state() -> PartitionState {
    PartitionState {
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 0,
        replicas: vec![1],
        isr: vec![1],
    }
}

fn open(dir: &std::path::Path) -> Partition {
    Partition::open(dir, "t", 0, 1, LogConfig::default(), 1, state(), 1_000).unwrap()
}

fn batch(first_seq: i32, values: &[&[u8]]) -> Vec<u8> {
    build_batch_with(&BatchSpec {
        producer_id: 42,
        producer_epoch: 0,
        base_sequence: first_seq,
        ..BatchSpec::new(values)
    })
}

#[test]
fn retry_after_clean_restart_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path());
    let first = p
        .append_as_leader(&batch(0, &[b"a", b"b"]), RequiredAcks::AllInSync, 1_000)
        .unwrap();
    assert!(!first.duplicate);
    p.append_as_leader(&batch(2, &[b"c"]), RequiredAcks::AllInSync, 1_000)
        .unwrap();
    p.close().unwrap();

    let p = open(dir.path());
    let retry = p
        .append_as_leader(&batch(0, &[b"a", b"b"]), RequiredAcks::AllInSync, 2_000)
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.info.first_offset, 0);
    let next = p
        .append_as_leader(&batch(3, &[b"d"]), RequiredAcks::AllInSync, 2_000)
        .unwrap();
    assert_eq!(next.info.first_offset, 3);
    assert!(
        p.append_as_leader(&batch(9, &[b"x"]), RequiredAcks::AllInSync, 2_000)
            .is_err(),
        "a gap is refused"
    );
}

#[test]
fn retry_after_crash_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let p = open(dir.path());
        p.append_as_leader(&batch(0, &[b"a"]), RequiredAcks::Leader, 1_000)
            .unwrap();
        p.append_as_leader(&batch(1, &[b"b", b"c"]), RequiredAcks::Leader, 1_000)
            .unwrap();
        // Dropped without close: no snapshot, no clean-shutdown marker (a SIGKILL).
    }
    assert!(
        !dir.path()
            .join(shoal_replica::producer_snapshot::SNAPSHOT_FILE)
            .exists()
    );
    let p = open(dir.path());
    let retry = p
        .append_as_leader(&batch(1, &[b"b", b"c"]), RequiredAcks::Leader, 2_000)
        .unwrap();
    assert!(
        retry.duplicate,
        "the producer table must be rebuilt from the log"
    );
    assert_eq!(retry.info.first_offset, 1);
    assert_eq!(p.with_log(|log| Ok(log.log_end_offset())).unwrap(), 3);
}

#[test]
fn stale_snapshot_beyond_the_log_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    {
        let p = open(dir.path());
        p.append_as_leader(&batch(0, &[b"a"]), RequiredAcks::Leader, 1_000)
            .unwrap();
        p.close().unwrap();
    }
    // A snapshot claiming more of the log than exists (the tail was lost after it was taken).
    let path = dir
        .path()
        .join(shoal_replica::producer_snapshot::SNAPSHOT_FILE);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"log_end_offset\":1", "\"log_end_offset\":99");
    std::fs::write(&path, text).unwrap();
    let p = open(dir.path());
    let retry = p
        .append_as_leader(&batch(0, &[b"a"]), RequiredAcks::Leader, 2_000)
        .unwrap();
    assert!(
        retry.duplicate,
        "rebuilt from the log instead of trusting the snapshot"
    );
}
