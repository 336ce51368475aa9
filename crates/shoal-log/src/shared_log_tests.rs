//! Concurrency of [`SharedLog`]: reads beside an append's write, reads across a truncation.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::LogConfig;
use crate::batch::{batches, verify_crc};
use crate::testing::{build_batch, decode_records};

const NOW_MS: i64 = 1_700_000_000_000;
/// Far longer than a read takes; reaching it means the read was blocked.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

fn shared(dir: &std::path::Path) -> SharedLog {
    SharedLog::new(Log::open(dir, LogConfig::default(), NOW_MS).unwrap())
}

/// Values of every record in `records`, in order.
fn values(records: &[u8]) -> Vec<Vec<u8>> {
    batches(records)
        .flat_map(|b| {
            let b = b.unwrap();
            verify_crc(b.bytes).unwrap();
            decode_records(b.bytes).unwrap()
        })
        .map(|r| r.value.unwrap_or_default())
        .collect()
}

#[test]
fn reads_complete_while_an_append_is_writing() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(shared(dir.path()));
    log.append_as_leader(&build_batch(0, NOW_MS, &[b"first"]), 0, NOW_MS)
        .unwrap();

    let second = build_batch(0, NOW_MS, &[b"second"]);
    let appended = log
        .append_with(
            &second,
            NOW_MS,
            |l| l.prepare_leader_append(&second, 0, NOW_MS, AppendOrigin::Client),
            || {
                // The append has written its bytes and still holds the writer side: a reader
                // on another thread must not wait for it, and must not see the new batch.
                let reader = Arc::clone(&log);
                let (tx, rx) = mpsc::channel();
                std::thread::spawn(move || {
                    let from_start = reader.read(0, usize::MAX, i64::MAX, true);
                    let at_end = reader.read(1, usize::MAX, i64::MAX, true);
                    let _ = tx.send((from_start, at_end));
                });
                let (from_start, at_end) = rx
                    .recv_timeout(READ_TIMEOUT)
                    .expect("a read waited for an append's write");
                assert_eq!(
                    values(&from_start.unwrap().records),
                    vec![b"first".to_vec()]
                );
                assert!(at_end.unwrap().records.is_empty(), "uncommitted bytes seen");
            },
        )
        .unwrap();
    assert_eq!(appended.info.first_offset, 1);
    assert_eq!(appended.log_end_offset, 2);
    let all = log.read(0, usize::MAX, i64::MAX, true).unwrap();
    assert_eq!(
        values(&all.records),
        vec![b"first".to_vec(), b"second".to_vec()]
    );
}

#[test]
fn a_read_that_overlaps_a_truncation_is_redone() {
    let dir = tempfile::tempdir().unwrap();
    let log = shared(dir.path());
    log.append_as_leader(
        &build_batch(0, NOW_MS, &[b"old-1", b"old-2", b"old-3"]),
        0,
        NOW_MS,
    )
    .unwrap();
    let mut truncated = false;
    let read = log
        .read_with(0, usize::MAX, i64::MAX, true, || {
            // Between finding the segment and reading it, a new leader's log replaces ours.
            if !truncated {
                truncated = true;
                log.with_mut(|l| {
                    l.truncate_to(0)?;
                    l.append_as_follower(&build_batch(0, NOW_MS, &[b"new"]), NOW_MS)
                })
                .unwrap();
            }
        })
        .unwrap();
    assert!(truncated);
    assert_eq!(values(&read.records), vec![b"new".to_vec()]);
}

#[test]
fn concurrent_readers_see_only_whole_batches_below_their_bound() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(SharedLog::new(
        Log::open(
            dir.path(),
            LogConfig {
                segment_bytes: 4_096,
                index_interval_bytes: 100,
                ..LogConfig::default()
            },
            NOW_MS,
        )
        .unwrap(),
    ));
    const BATCHES: i64 = 400;
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut next = 0;
                while next < BATCHES * 2 {
                    // The bound a consumer is given: the log end when it looked.
                    let bound = log.with(Log::log_end_offset);
                    let read = log.read(next, 1_000, bound, true).unwrap();
                    for batch in batches(&read.records) {
                        let batch = batch.unwrap();
                        verify_crc(batch.bytes).unwrap();
                        assert!(batch.header.last_offset() < bound);
                        assert!(batch.header.last_offset() >= next);
                        next = batch.header.last_offset() + 1;
                    }
                }
            })
        })
        .collect();
    for i in 0..BATCHES {
        let value = format!("value-{i}");
        let batch = build_batch(0, NOW_MS, &[value.as_bytes(), b"x"]);
        log.append_as_leader(&batch, 0, NOW_MS).unwrap();
    }
    for reader in readers {
        reader.join().unwrap();
    }
    assert!(log.with(Log::segment_count) > 1, "the test crosses rolls");
}

fn light(log: &SharedLog, value: &[u8], epoch: i32) -> Option<i64> {
    log.try_append_as_leader_light(
        &build_batch(0, NOW_MS, &[value]),
        epoch,
        NOW_MS,
        AppendOrigin::Client,
    )
    .map(|appended| appended.unwrap().info.first_offset)
}

#[test]
fn a_light_append_happens_only_when_it_is_a_page_cache_write() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 2_000,
        ..LogConfig::default()
    };
    let log = Arc::new(SharedLog::new(
        Log::open(dir.path(), config, NOW_MS).unwrap(),
    ));
    log.append_as_leader(&build_batch(0, NOW_MS, &[b"first"]), 0, NOW_MS)
        .unwrap();

    // A new leader epoch must be checkpointed first: not light.
    assert_eq!(light(&log, b"x", 1), None);
    assert_eq!(log.with(Log::log_end_offset), 1, "nothing was appended");
    // The same epoch, room in the segment, no flush policy: appended here.
    assert_eq!(light(&log, b"second", 0), Some(1));
    // A reader in the middle of its in-memory step, or another append: not light.
    assert_eq!(log.with(|_| light(&log, b"x", 0)), None);
    let third = build_batch(0, NOW_MS, &[b"third"]);
    let nested = log
        .append_with(
            &third,
            NOW_MS,
            |l| l.prepare_leader_append(&third, 0, NOW_MS, AppendOrigin::Client),
            || assert_eq!(light(&log, b"x", 0), None),
        )
        .unwrap();
    assert_eq!(nested.info.first_offset, 2);
    // A batch the active segment cannot take would roll it: not light; the blocking append
    // rolls.
    let big = vec![7u8; 1_800];
    assert_eq!(light(&log, &big, 0), None);
    assert_eq!(log.with(Log::segment_count), 1);
    log.append_as_leader(&build_batch(0, NOW_MS, &[&big]), 0, NOW_MS)
        .unwrap();
    assert_eq!(log.with(Log::segment_count), 2);
    assert_eq!(light(&log, b"fourth", 0), Some(4));
    // A read stops at a segment's end.
    assert_eq!(
        values(&log.read(0, usize::MAX, i64::MAX, true).unwrap().records),
        vec![b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]
    );
    assert_eq!(
        values(&log.read(3, usize::MAX, i64::MAX, true).unwrap().records),
        vec![big, b"fourth".to_vec()]
    );
}

#[test]
fn a_light_append_never_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_messages: 1,
        ..LogConfig::default()
    };
    let log = SharedLog::new(Log::open(dir.path(), config, NOW_MS).unwrap());
    log.append_as_leader(&build_batch(0, NOW_MS, &[b"first"]), 0, NOW_MS)
        .unwrap();
    assert_eq!(
        light(&log, b"x", 0),
        None,
        "flush.messages=1 fsyncs every append"
    );
}
