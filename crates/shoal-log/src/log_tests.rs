//! Behaviour of an open log: appends, reads, rolls, lookups, retention, truncation, epochs.

use std::path::Path;

use super::*;
use crate::batch::{RecordBatchHeader, batches, verify_crc};
use crate::testing::{BatchSpec, build_batch, build_batch_with, decode_records};

pub(crate) const NOW_MS: i64 = 1_700_000_000_000;

/// Small segments and dense indexes so a few KiB exercise rolls and index lookups.
pub(super) fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1_024,
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

pub(crate) fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(dir, config, NOW_MS).unwrap()
}

/// A producer batch of `count` records of `value_bytes` bytes, timestamps from `timestamp_ms`.
pub(super) fn producer_batch(count: usize, value_bytes: usize, timestamp_ms: i64) -> Vec<u8> {
    let value = vec![b'v'; value_bytes];
    let values: Vec<&[u8]> = (0..count).map(|_| &value[..]).collect();
    build_batch(0, timestamp_ms, &values)
}

/// What a producer batch looks like on disk once the leader assigned it offsets.
pub(super) fn as_stored(batch: &[u8], base_offset: i64, leader_epoch: i32) -> Vec<u8> {
    let mut stored = batch.to_vec();
    stored[0..8].copy_from_slice(&base_offset.to_be_bytes());
    stored[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    stored
}

/// Every batch from the log start to the end, concatenated.
pub(crate) fn read_all(log: &Log) -> Vec<u8> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let read = log.read(next, usize::MAX, i64::MAX, true).unwrap();
        assert!(!read.records.is_empty(), "no progress at offset {next}");
        let mut last = next;
        for batch in batches(&read.records) {
            let batch = batch.unwrap();
            verify_crc(batch.bytes).unwrap();
            last = batch.header.last_offset();
        }
        out.extend_from_slice(&read.records);
        next = last + 1;
    }
    out
}

fn headers_of(records: &[u8]) -> Vec<RecordBatchHeader> {
    batches(records).map(|b| b.unwrap().header).collect()
}

#[test]
fn append_then_read_returns_the_exact_bytes_with_offsets_and_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let batch = producer_batch(3, 10, 1_000);
    let info = log.append_as_leader(&batch, 4, NOW_MS).unwrap();
    assert_eq!(
        info,
        AppendInfo {
            first_offset: 0,
            last_offset: 2,
            max_timestamp: 1_002,
            offset_of_max_timestamp: 2,
            log_append_time_ms: -1,
            record_count: 3,
            size_bytes: batch.len(),
        }
    );
    let read = log.read(0, 1 << 20, i64::MAX, false).unwrap();
    assert_eq!(read.records.as_ref(), &as_stored(&batch, 0, 4)[..]);
    assert_eq!(read.first_batch_base_offset, Some(0));
    verify_crc(&read.records).unwrap();
    let records = decode_records(&read.records).unwrap();
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
}

#[test]
fn offsets_continue_across_calls_and_multi_batch_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let mut request = producer_batch(2, 5, 10);
    request.extend_from_slice(&producer_batch(3, 5, 20));
    let first = log.append_as_leader(&request, 0, NOW_MS).unwrap();
    assert_eq!(
        (first.first_offset, first.last_offset, first.record_count),
        (0, 4, 5)
    );
    let second = log
        .append_as_leader(&producer_batch(1, 5, 30), 0, NOW_MS)
        .unwrap();
    assert_eq!((second.first_offset, second.last_offset), (5, 5));
    assert_eq!(log.log_end_offset(), 6);
    let stored = headers_of(&read_all(&log));
    let ranges: Vec<_> = stored
        .iter()
        .map(|h| (h.base_offset, h.last_offset()))
        .collect();
    assert_eq!(ranges, vec![(0, 1), (2, 4), (5, 5)]);
}

#[test]
fn reading_from_the_middle_of_a_batch_returns_the_whole_containing_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    for _ in 0..3 {
        log.append_as_leader(&producer_batch(5, 8, 0), 0, NOW_MS)
            .unwrap();
    }
    let read = log.read(7, 1 << 20, i64::MAX, false).unwrap();
    assert_eq!(read.first_batch_base_offset, Some(5));
    let stored = headers_of(&read.records);
    assert_eq!(
        stored.iter().map(|h| h.base_offset).collect::<Vec<_>>(),
        vec![5, 10]
    );
}

#[test]
fn max_offset_and_max_bytes_limit_reads_to_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let batch = producer_batch(2, 100, 0);
    for _ in 0..5 {
        log.append_as_leader(&batch, 0, NOW_MS).unwrap();
    }
    let size = batch.len();

    // The high watermark at 5 hides batch [4, 5] and everything after.
    let read = log.read(0, 1 << 20, 5, false).unwrap();
    assert_eq!(
        headers_of(&read.records).last().map(|h| h.last_offset()),
        Some(3)
    );
    assert!(log.read(4, 1 << 20, 5, false).unwrap().records.is_empty());
    assert!(
        log.read(5, 1 << 20, 5, true).unwrap().records.is_empty(),
        "min_one_batch never crosses the HW"
    );

    // max_bytes cuts at a batch boundary, never inside a batch.
    let read = log.read(0, 2 * size + size / 2, i64::MAX, false).unwrap();
    assert_eq!(read.records.len(), 2 * size);
    let read = log.read(0, size - 1, i64::MAX, false).unwrap();
    assert!(
        read.records.is_empty(),
        "a first batch over max_bytes is withheld"
    );
    let read = log.read(0, size - 1, i64::MAX, true).unwrap();
    assert_eq!(
        read.records.len(),
        size,
        "min_one_batch returns the first batch whole (KIP-74)"
    );
    let read = log.read(3, 1, i64::MAX, true).unwrap();
    assert_eq!(read.first_batch_base_offset, Some(2));
}

#[test]
fn reads_outside_the_log_are_out_of_range_and_the_end_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&producer_batch(2, 1, 0), 0, NOW_MS)
        .unwrap();
    assert!(matches!(
        log.read(3, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange {
            offset: 3,
            log_start_offset: 0,
            log_end_offset: 2
        })
    ));
    assert!(matches!(
        log.read(-1, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.read(2, 100, i64::MAX, true).unwrap(), ReadInfo::empty());
}

#[test]
fn rolls_by_segment_bytes_and_reads_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    let batch = producer_batch(1, 200, 0);
    let mut expected = Vec::new();
    for offset in 0..20 {
        log.append_as_leader(&batch, 0, NOW_MS).unwrap();
        expected.extend_from_slice(&as_stored(&batch, offset, 0));
    }
    let per_segment = 1_024 / batch.len();
    assert_eq!(log.segment_count(), 20usize.div_ceil(per_segment));
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            assert!(
                std::fs::metadata(&path).unwrap().len() <= 1_024,
                "{} too big",
                path.display()
            );
        }
    }
    assert_eq!(read_all(&log), expected);
    assert!(
        log.sealed.values().all(|s| !s.indexes_are_resident()),
        "sealed indexes stay on disk"
    );
    assert!(log.active.indexes_are_resident());
}

#[test]
fn roll_now_seals_a_non_empty_active_segment_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    assert!(
        !log.roll_now(NOW_MS).unwrap(),
        "an empty active segment stays"
    );
    let batch = producer_batch(2, 50, 0);
    log.append_as_leader(&batch, 0, NOW_MS).unwrap();
    assert!(log.active_segment_bytes() > 0);
    assert!(log.roll_now(NOW_MS).unwrap());
    assert_eq!(log.segment_count(), 2);
    assert_eq!(log.active_segment_bytes(), 0);
    assert_eq!(log.active.base_offset(), 2);
    assert!(!log.roll_now(NOW_MS).unwrap());
    log.append_as_leader(&batch, 0, NOW_MS).unwrap();
    let mut expected = as_stored(&batch, 0, 0);
    expected.extend_from_slice(&as_stored(&batch, 2, 0));
    assert_eq!(read_all(&log), expected);
}

#[test]
fn rolls_by_segment_ms_measured_on_batch_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 60_000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    log.append_as_leader(&producer_batch(1, 1, 1_000), 0, NOW_MS)
        .unwrap();
    log.append_as_leader(&producer_batch(1, 1, 61_000), 0, NOW_MS)
        .unwrap();
    assert_eq!(
        log.segment_count(),
        1,
        "exactly segment.ms old does not roll"
    );
    log.append_as_leader(&producer_batch(1, 1, 61_001), 0, NOW_MS)
        .unwrap();
    assert_eq!(log.segment_count(), 2);
    assert_eq!(log.active.base_offset(), 2);
}

#[test]
fn rolls_by_segment_ms_on_the_wall_clock_without_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 60_000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let untimed = producer_batch(1, 1, -1);
    log.append_as_leader(&untimed, 0, NOW_MS).unwrap();
    log.append_as_leader(&untimed, 0, NOW_MS + 60_000).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append_as_leader(&untimed, 0, NOW_MS + 60_001).unwrap();
    assert_eq!(log.segment_count(), 2);
}

#[test]
fn offset_lookups_across_many_segments_before_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 4_096,
        index_interval_bytes: 300,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    for i in 0..300 {
        log.append_as_leader(&producer_batch(1 + i % 3, 20 + i % 50, i as i64), 0, NOW_MS)
            .unwrap();
    }
    assert!(log.segment_count() > 10);
    let check = |log: &Log| {
        for offset in 0..log.log_end_offset() {
            let read = log.read(offset, 1, i64::MAX, true).unwrap();
            let header = RecordBatchHeader::parse(&read.records).unwrap();
            assert!(
                header.base_offset <= offset && offset <= header.last_offset(),
                "offset {offset}"
            );
            assert_eq!(read.records.len(), header.size_bytes());
        }
    };
    check(&log);
    let end = log.log_end_offset();
    log.close().unwrap();
    let log = open(dir.path(), config);
    assert_eq!(log.log_end_offset(), end);
    check(&log);
}

#[test]
fn finds_batches_by_timestamp_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    // Timestamps rise by 100 per batch, with one out-of-order batch in the middle.
    for i in 0..30i64 {
        let timestamp_ms = if i == 15 { 50 } else { 1_000 + i * 100 };
        log.append_as_leader(&producer_batch(2, 150, timestamp_ms), 0, NOW_MS)
            .unwrap();
    }
    assert!(log.segment_count() > 3);
    for target in [0, 999, 1_000, 1_001, 1_050, 2_401, 3_900, 3_901] {
        let found = log.find_batch_by_timestamp(target).unwrap().unwrap();
        // Brute force: the first batch whose max timestamp reaches the target.
        let expected = headers_of(&read_all(&log))
            .into_iter()
            .find(|h| h.max_timestamp >= target)
            .unwrap();
        assert_eq!(found.base_offset, expected.base_offset, "target {target}");
        assert_eq!(found.max_timestamp, expected.max_timestamp);
        assert_eq!(RecordBatchHeader::parse(&found.records).unwrap(), expected);
    }
    assert_eq!(log.find_batch_by_timestamp(3_902).unwrap(), None);
    assert_eq!(log.max_timestamp_and_offset(), Some((3_901, 59)));
}

#[test]
fn time_and_size_retention_delete_old_segments_but_not_past_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    let batch_bytes = producer_batch(1, 200, 0).len() as u64;
    for i in 0..20i64 {
        log.append_as_leader(&producer_batch(1, 200, i * 1_000), 0, NOW_MS)
            .unwrap();
    }
    let segments = log.segment_count();
    let per_segment = 1_024 / batch_bytes as i64;

    // Time: batch i has timestamp i * 1000 and segment k holds batches [k * n, (k + 1) * n).
    // With a cutoff just above the first segment's newest timestamp only it expires.
    let cutoff_ms = (per_segment - 1) * 1_000 + 500;
    log.set_config(LogConfig {
        retention_ms: 10_000,
        ..small_config()
    })
    .unwrap();
    let now_ms = cutoff_ms + 10_000;
    let pinned = log.enforce_retention(now_ms, per_segment - 1).unwrap();
    assert_eq!(
        pinned.deleted_segments, 0,
        "the high watermark pins the first segment"
    );
    let result = log.enforce_retention(now_ms, 20).unwrap();
    assert_eq!(result.deleted_segments, 1);
    assert_eq!(result.log_start_offset, per_segment);
    assert_eq!(log.log_start_offset(), per_segment);
    assert!(matches!(
        log.read(0, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.segment_count(), segments - 1);

    // Size: keep at least 2 segments' worth of bytes.
    let keep_bytes = 2 * per_segment as u64 * batch_bytes;
    log.set_config(LogConfig {
        retention_ms: -1,
        retention_bytes: keep_bytes as i64,
        ..small_config()
    })
    .unwrap();
    let result = log.enforce_retention(now_ms, 20).unwrap();
    assert!(result.deleted_segments > 0);
    assert!(log.size_bytes() >= keep_bytes);
    assert!(log.size_bytes() - log.sealed.values().next().unwrap().size_bytes() < keep_bytes);
    assert_eq!(read_all(&log).len() as u64, log.size_bytes());
}

#[test]
fn retention_of_every_segment_rolls_and_keeps_an_empty_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            retention_ms: 1_000,
            ..small_config()
        },
    );
    for _ in 0..3 {
        log.append_as_leader(&producer_batch(1, 10, 0), 0, NOW_MS)
            .unwrap();
    }
    let result = log.enforce_retention(NOW_MS, 3).unwrap();
    assert_eq!(result.deleted_segments, 1);
    assert_eq!(log.segment_count(), 1);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (3, 3));
    assert_eq!(log.size_bytes(), 0);
    let info = log
        .append_as_leader(&producer_batch(1, 10, 0), 0, NOW_MS)
        .unwrap();
    assert_eq!(info.first_offset, 3);
}

#[test]
fn advancing_the_log_start_deletes_emptied_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    for _ in 0..20 {
        log.append_as_leader(&producer_batch(1, 200, 0), 0, NOW_MS)
            .unwrap();
    }
    let segments = log.segment_count();
    let per_segment = log.sealed.keys().nth(1).copied().unwrap();
    let new_start = per_segment + 1;
    log.advance_log_start_offset(new_start).unwrap();
    assert_eq!(log.log_start_offset(), new_start);
    assert_eq!(
        log.segment_count(),
        segments - 1,
        "the first segment emptied, the second still holds the start"
    );
    assert!(matches!(
        log.read(per_segment, 100, i64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    let read = log.read(new_start, 1, i64::MAX, true).unwrap();
    assert_eq!(read.first_batch_base_offset, Some(new_start));
    assert!(matches!(
        log.advance_log_start_offset(21),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    log.advance_log_start_offset(1).unwrap();
    assert_eq!(log.log_start_offset(), new_start, "never moves back");
    log.close().unwrap();
    let log = open(dir.path(), small_config());
    assert_eq!(log.log_start_offset(), new_start, "persisted");
}

#[test]
fn truncate_to_removes_the_tail_across_segments_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    let batch = producer_batch(2, 150, 0);
    for epoch in 0..12 {
        log.append_as_leader(&batch, epoch / 3, NOW_MS).unwrap();
    }
    assert_eq!(log.log_end_offset(), 24);
    let before = read_all(&log);
    log.truncate_to(9).unwrap();
    assert_eq!(
        log.log_end_offset(),
        8,
        "the batch holding 8 and 9 goes whole"
    );
    assert_eq!(read_all(&log), before[..4 * batch.len()]);
    assert_eq!(
        log.epoch_entries(),
        &[
            EpochEntry {
                epoch: 0,
                start_offset: 0
            },
            EpochEntry {
                epoch: 1,
                start_offset: 6
            }
        ]
    );
    let info = log.append_as_leader(&batch, 5, NOW_MS).unwrap();
    assert_eq!(info.first_offset, 8);
    log.truncate_to(100).unwrap();
    assert_eq!(
        log.log_end_offset(),
        10,
        "truncating past the end is a no-op"
    );

    log.close().unwrap();
    let log = open(dir.path(), small_config());
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(log.latest_epoch(), Some(5));
}

#[test]
fn truncate_fully_restarts_the_log_at_an_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    for _ in 0..10 {
        log.append_as_leader(&producer_batch(1, 200, 0), 2, NOW_MS)
            .unwrap();
    }
    log.truncate_fully_and_start_at(500).unwrap();
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (500, 500, 1)
    );
    assert!(log.epoch_entries().is_empty());
    assert_eq!(
        log.append_as_leader(&producer_batch(1, 1, 0), 3, NOW_MS)
            .unwrap()
            .first_offset,
        500
    );
    log.close().unwrap();
    let log = open(dir.path(), small_config());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 501));
}

#[test]
fn leader_epochs_are_recorded_answered_truncated_and_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let batch = producer_batch(2, 1, 0);
    for epoch in [0, 0, 2, 2, 2, 5] {
        log.append_as_leader(&batch, epoch, NOW_MS).unwrap();
    }
    assert_eq!(
        log.epoch_entries(),
        &[
            EpochEntry {
                epoch: 0,
                start_offset: 0
            },
            EpochEntry {
                epoch: 2,
                start_offset: 4
            },
            EpochEntry {
                epoch: 5,
                start_offset: 10
            },
        ]
    );
    assert_eq!(log.latest_epoch(), Some(5));
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 12)));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 10)));
    assert_eq!(log.end_offset_for_epoch(3), Some((2, 10)));
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 4)));
    assert_eq!(log.end_offset_for_epoch(6), None);

    // A stale leader's epoch does not rewrite history.
    log.append_as_leader(&batch, 1, NOW_MS).unwrap();
    assert_eq!(log.latest_epoch(), Some(5));

    log.truncate_to(10).unwrap();
    assert_eq!(log.latest_epoch(), Some(2));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 10)));
    log.close().unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.epoch_entries().len(), 2);
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 4)));
}

#[test]
fn log_append_time_stamps_batches_and_keeps_the_crc_valid() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    let mut request = producer_batch(2, 5, 1_000);
    request.extend_from_slice(&producer_batch(1, 5, 2_000));
    let info = log.append_as_leader(&request, 0, NOW_MS).unwrap();
    assert_eq!(info.log_append_time_ms, NOW_MS);
    assert_eq!(
        (info.max_timestamp, info.offset_of_max_timestamp),
        (NOW_MS, 1)
    );
    let read = log.read(0, 1 << 20, i64::MAX, false).unwrap();
    for batch in batches(&read.records) {
        let batch = batch.unwrap();
        verify_crc(batch.bytes).unwrap();
        assert_eq!(batch.header.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(batch.header.max_timestamp, NOW_MS);
        assert!(
            decode_records(batch.bytes)
                .unwrap()
                .iter()
                .all(|r| r.timestamp_ms == NOW_MS)
        );
    }
}

#[test]
fn invalid_appends_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            max_message_bytes: 200,
            ..LogConfig::default()
        },
    );
    log.append_as_leader(&producer_batch(1, 10, 0), 0, NOW_MS)
        .unwrap();
    let size_before = log.size_bytes();

    let good = producer_batch(1, 10, 0);
    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 1;
    let mut bad_magic = good.clone();
    bad_magic[16] = 1;
    let mut lying_length = good.clone();
    lying_length[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    type IsExpected = fn(&LogError) -> bool;
    let cases: Vec<(Vec<u8>, IsExpected)> = vec![
        ([good.clone(), bad_crc].concat(), |e| {
            matches!(e, LogError::CorruptRecord(_))
        }),
        ([good.clone(), bad_magic].concat(), |e| {
            matches!(e, LogError::CorruptRecord(_))
        }),
        ([good.clone(), lying_length].concat(), |e| {
            matches!(e, LogError::CorruptRecord(_))
        }),
        (good[..40].to_vec(), |e| {
            matches!(e, LogError::CorruptRecord(_))
        }),
        ([good.clone(), producer_batch(1, 300, 0)].concat(), |e| {
            matches!(e, LogError::RecordTooLarge { .. })
        }),
        (Vec::new(), |e| matches!(e, LogError::InvalidRecord(_))),
    ];
    for (records, expected) in cases {
        let error = log.append_as_leader(&records, 0, NOW_MS).unwrap_err();
        assert!(expected(&error), "unexpected {error:?}");
        assert_eq!(log.log_end_offset(), 1);
        assert_eq!(log.size_bytes(), size_before);
    }
}

#[test]
fn follower_appends_keep_offsets_and_epochs_accept_gaps_and_reject_overlaps() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let spec = |base_offset, partition_leader_epoch| BatchSpec {
        base_offset,
        partition_leader_epoch,
        ..BatchSpec::new(&[b"a", b"b"])
    };
    let mut records = build_batch_with(&spec(0, 1));
    records.extend_from_slice(&build_batch_with(&spec(2, 1)));
    records.extend_from_slice(&build_batch_with(&spec(4, 3)));
    let info = log.append_as_follower(&records, NOW_MS).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.record_count),
        (0, 5, 6)
    );
    assert_eq!(
        read_all(&log),
        records,
        "stored exactly as the leader sent them"
    );
    assert_eq!(
        log.epoch_entries(),
        &[
            EpochEntry {
                epoch: 1,
                start_offset: 0
            },
            EpochEntry {
                epoch: 3,
                start_offset: 4
            }
        ]
    );

    // A gap is a batch the leader's cleaner removed: the follower mirrors it.
    let after_gap = build_batch_with(&spec(7, 3));
    log.append_as_follower(&after_gap, NOW_MS).unwrap();
    assert_eq!(log.log_end_offset(), 9);
    let overlap = build_batch_with(&spec(8, 3));
    assert!(matches!(
        log.append_as_follower(&overlap, NOW_MS),
        Err(LogError::UnexpectedAppendOffset {
            expected: 9,
            actual: 8
        })
    ));
    assert_eq!(log.log_end_offset(), 9);
    assert_eq!(log.append_as_follower(&[], NOW_MS).unwrap().record_count, 0);
}

#[test]
fn flush_messages_fsyncs_and_advances_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            flush_messages: 5,
            ..LogConfig::default()
        },
    );
    log.append_as_leader(&producer_batch(3, 1, 0), 0, NOW_MS)
        .unwrap();
    assert_eq!(log.recovery_point(), 0);
    log.append_as_leader(&producer_batch(3, 1, 0), 0, NOW_MS)
        .unwrap();
    assert_eq!(log.recovery_point(), 6);
    assert_eq!(
        PartitionCheckpoint::read(dir.path())
            .unwrap()
            .unwrap()
            .recovery_point,
        6
    );
}

#[test]
fn flush_ms_is_checked_by_maybe_flush() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            flush_ms: 1_000,
            ..LogConfig::default()
        },
    );
    log.append_as_leader(&producer_batch(1, 1, 0), 0, NOW_MS + 10)
        .unwrap();
    assert!(!log.maybe_flush(NOW_MS + 999).unwrap());
    assert_eq!(log.recovery_point(), 0);
    assert!(log.maybe_flush(NOW_MS + 1_000).unwrap());
    assert_eq!(log.recovery_point(), 1);
    assert!(
        !log.maybe_flush(NOW_MS + 5_000).unwrap(),
        "nothing new to flush"
    );
}

#[test]
fn default_flush_policy_never_fsyncs_on_append_but_rolls_flush_in_background() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    for _ in 0..3 {
        log.append_as_leader(&producer_batch(1, 200, 0), 0, NOW_MS)
            .unwrap();
    }
    assert_eq!(log.recovery_point(), 0);
    for _ in 0..3 {
        log.append_as_leader(&producer_batch(1, 200, 0), 0, NOW_MS)
            .unwrap();
    }
    assert_eq!(log.segment_count(), 2);
    log.flusher.wait();
    assert_eq!(
        log.recovery_point(),
        log.active.base_offset(),
        "sealed segment fsynced"
    );
}

#[test]
fn high_watermark_checkpoint_is_clamped_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&producer_batch(10, 1, 0), 0, NOW_MS)
        .unwrap();
    log.checkpoint_high_watermark(7).unwrap();
    assert_eq!(log.high_watermark_checkpoint(), 7);
    log.checkpoint_high_watermark(50).unwrap();
    assert_eq!(log.high_watermark_checkpoint(), 10);
    log.checkpoint_high_watermark(8).unwrap();
    drop(log);
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.high_watermark_checkpoint(), 8);
}

#[test]
fn set_config_takes_effect_at_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&producer_batch(1, 500, 0), 0, NOW_MS)
        .unwrap();
    assert!(matches!(
        log.set_config(LogConfig {
            segment_bytes: 1,
            ..LogConfig::default()
        }),
        Err(LogError::InvalidConfig(_))
    ));
    log.set_config(LogConfig {
        segment_bytes: 600,
        ..LogConfig::default()
    })
    .unwrap();
    log.append_as_leader(&producer_batch(1, 500, 0), 0, NOW_MS)
        .unwrap();
    assert_eq!(log.segment_count(), 2);
}

#[test]
fn a_full_index_rolls_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    // Room for 3 offset entries (and 2 time entries); every batch after the first is indexed.
    let config = LogConfig {
        segment_index_bytes: 24,
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    for i in 0..10 {
        log.append_as_leader(&producer_batch(1, 1, i), 0, NOW_MS)
            .unwrap();
    }
    assert!(log.segment_count() >= 3);
    assert_eq!(headers_of(&read_all(&log)).len(), 10);
}

#[test]
fn delete_removes_the_directory() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("topic-0");
    let mut log = open(&dir, LogConfig::default());
    log.append_as_leader(&producer_batch(1, 1, 0), 0, NOW_MS)
        .unwrap();
    log.delete().unwrap();
    assert!(!dir.exists());
}

#[test]
fn log_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
}

#[test]
fn compression_type_rewrites_on_the_leader_only() {
    use crate::compression::ZSTD;
    use crate::config::CompressionType;
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            compression_type: CompressionType::Zstd,
            ..small_config()
        },
    );
    let plain = build_batch_with(&BatchSpec {
        base_timestamp_ms: NOW_MS,
        producer_id: 9,
        producer_epoch: 1,
        base_sequence: 0,
        ..BatchSpec::new(&[b"a", b"bb", b"ccc"])
    });
    assert!(log.append_needs_recompression(&plain));
    let info = log.append_as_leader(&plain, 2, NOW_MS).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 2));
    let stored = read_all(&log);
    let header = RecordBatchHeader::parse(&stored).unwrap();
    assert_eq!(header.compression_codec(), ZSTD);
    assert_eq!(header.partition_leader_epoch, 2);
    assert_eq!(
        (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence
        ),
        (9, 1, 0)
    );
    assert_eq!(info.size_bytes, stored.len());
    assert_eq!(
        crate::record_view::decompressed_section(&stored).unwrap(),
        &plain[61..]
    );

    // A follower stores the leader's bytes as they are, whatever its own compression.type.
    let follower_dir = tempfile::tempdir().unwrap();
    let mut follower = open(
        follower_dir.path(),
        LogConfig {
            compression_type: CompressionType::Gzip,
            ..small_config()
        },
    );
    follower.append_as_follower(&stored, NOW_MS).unwrap();
    assert_eq!(read_all(&follower), stored);
}

#[test]
fn log_append_time_applies_to_recompressed_batches() {
    use crate::config::CompressionType;
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            compression_type: CompressionType::Gzip,
            message_timestamp_type: TimestampType::LogAppendTime,
            ..small_config()
        },
    );
    let info = log
        .append_as_leader(&build_batch(0, 5, &[b"x", b"y"]), 0, NOW_MS)
        .unwrap();
    assert_eq!(info.log_append_time_ms, NOW_MS);
    let stored = read_all(&log);
    let header = RecordBatchHeader::parse(&stored).unwrap();
    assert_eq!(header.compression_codec(), crate::compression::GZIP);
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(header.max_timestamp, NOW_MS);
}

#[test]
fn create_time_outside_the_timestamp_bounds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            message_timestamp_before_max_ms: 60_000,
            message_timestamp_after_max_ms: 1_000,
            ..small_config()
        },
    );
    for timestamp_ms in [NOW_MS - 60_001, NOW_MS + 1_001] {
        let refused = log.append_as_leader(&build_batch(0, timestamp_ms, &[b"x"]), 0, NOW_MS);
        // Kafka reports it per record: INVALID_TIMESTAMP with the record's index.
        assert!(
            matches!(&refused, Err(LogError::RecordErrors { error, record_errors })
                if matches!(**error, LogError::InvalidTimestamp(_))
                    && record_errors[0].batch_index == 0),
            "{timestamp_ms}: {refused:?}"
        );
    }
    assert_eq!(log.log_end_offset(), 0, "nothing written");
    log.append_as_leader(&build_batch(0, NOW_MS - 60_000, &[b"x"]), 0, NOW_MS)
        .unwrap();
    // LogAppendTime topics take the broker's clock: producer timestamps are not checked.
    log.set_config(LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..log.config().clone()
    })
    .unwrap();
    log.append_as_leader(&build_batch(0, 0, &[b"x"]), 0, NOW_MS)
        .unwrap();
}
