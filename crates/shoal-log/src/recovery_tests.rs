//! Opening after clean and unclean shutdowns: torn tails, corruption, damaged indexes, and a
//! randomized crash test against a model.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use super::tests::{NOW_MS, as_stored, open, producer_batch, read_all, small_config};
use super::*;
use crate::batch::{RecordBatchHeader, verify_crc};
use crate::clean_shutdown::CLEAN_SHUTDOWN_FILE;
use crate::segment::{
    INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX, segment_file_path,
};

/// Simulates a process crash: no flush, no checkpoint, no clean-shutdown marker.
fn crash(log: Log) {
    drop(log);
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn flip_byte(path: &Path, position: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[position] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == LOG_FILE_SUFFIX))
        .collect();
    files.sort();
    files
}

#[test]
fn a_torn_tail_is_cut_and_appends_continue_at_the_right_offset() {
    for cut_bytes in [7, 40] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), LogConfig::default());
        let batch = producer_batch(2, 50, 0);
        for _ in 0..5 {
            log.append_as_leader(&batch, 0, NOW_MS).unwrap();
        }
        let expected = read_all(&log)[..4 * batch.len()].to_vec();
        crash(log);
        let path = segment_file_path(dir.path(), 0, LOG_FILE_SUFFIX);
        set_len(&path, (5 * batch.len() - cut_bytes) as u64);

        let mut log = open(dir.path(), LogConfig::default());
        assert_eq!(log.log_end_offset(), 8, "cut {cut_bytes}");
        assert_eq!(read_all(&log), expected);
        assert_eq!(fs::metadata(&path).unwrap().len(), expected.len() as u64);
        assert_eq!(
            log.append_as_leader(&batch, 0, NOW_MS)
                .unwrap()
                .first_offset,
            8
        );
    }
}

#[test]
fn a_corrupt_batch_mid_log_is_removed_with_everything_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    let batch = producer_batch(1, 200, 0);
    for i in 0..20 {
        log.append_as_leader(&batch, i / 5, NOW_MS).unwrap();
    }
    let per_segment = log.sealed.keys().nth(1).copied().unwrap();
    assert!(log.segment_count() > 4);
    let expected = read_all(&log)[..7 * batch.len()].to_vec();
    crash(log);

    // Offset 7 lives in the segment starting at 7 - 7 % per_segment.
    let segment_base = 7 - 7 % per_segment;
    let position = (7 - segment_base) as usize * batch.len() + 70;
    flip_byte(
        &segment_file_path(dir.path(), segment_base, LOG_FILE_SUFFIX),
        position,
    );

    let log = open(dir.path(), small_config());
    assert_eq!(log.log_end_offset(), 7);
    assert_eq!(read_all(&log), expected);
    assert_eq!(
        log_files(dir.path()).len(),
        (segment_base / per_segment + 1) as usize,
        "later segments deleted"
    );
    assert_eq!(log.segment_count(), log_files(dir.path()).len());
    assert_eq!(
        log.epoch_entries(),
        &[
            EpochEntry {
                epoch: 0,
                start_offset: 0
            },
            EpochEntry {
                epoch: 1,
                start_offset: 5
            }
        ]
    );
}

#[test]
fn a_clean_open_does_not_rescan_sealed_segments_but_an_unclean_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    let batch = producer_batch(1, 200, 0);
    for _ in 0..12 {
        log.append_as_leader(&batch, 0, NOW_MS).unwrap();
    }
    let segments = log.segment_count();
    log.close().unwrap();
    flip_byte(
        &segment_file_path(dir.path(), 0, LOG_FILE_SUFFIX),
        batch.len() + 70,
    );

    // Clean: the damage goes unnoticed, which proves the sealed segment was not scanned.
    let log = open(dir.path(), small_config());
    assert_eq!((log.log_end_offset(), log.segment_count()), (12, segments));
    let read = log.read(1, 1, i64::MAX, true).unwrap();
    assert!(
        verify_crc(&read.records).is_err(),
        "the corrupt batch is still there"
    );
    crash(log);

    // Unclean with the recovery point at 0 (a crash before any flush): it is found and cut.
    PartitionCheckpoint {
        log_start_offset: 0,
        recovery_point: 0,
        high_watermark: 0,
    }
    .write(dir.path())
    .unwrap();
    let log = open(dir.path(), small_config());
    assert_eq!((log.log_end_offset(), log.segment_count()), (1, 1));
}

#[test]
fn an_unclean_open_rescans_only_from_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    let batch = producer_batch(1, 200, 0);
    for _ in 0..12 {
        log.append_as_leader(&batch, 0, NOW_MS).unwrap();
    }
    log.flush().unwrap();
    let segments = log.segment_count();
    crash(log);
    flip_byte(&segment_file_path(dir.path(), 0, LOG_FILE_SUFFIX), 70);
    let log = open(dir.path(), small_config());
    assert_eq!(
        (log.log_end_offset(), log.segment_count()),
        (12, segments),
        "below the recovery point"
    );
}

/// Closes a multi-segment log and returns the bytes of segment 0's two index files.
fn closed_log_with_indexes(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let config = LogConfig {
        segment_bytes: 2_048,
        index_interval_bytes: 100,
        ..LogConfig::default()
    };
    let mut log = open(dir, config);
    for i in 0..40 {
        log.append_as_leader(&producer_batch(2, 60, i * 10), 0, NOW_MS)
            .unwrap();
    }
    assert!(log.segment_count() > 2);
    log.close().unwrap();
    let index = fs::read(segment_file_path(dir, 0, INDEX_FILE_SUFFIX)).unwrap();
    let time_index = fs::read(segment_file_path(dir, 0, TIME_INDEX_FILE_SUFFIX)).unwrap();
    assert!(
        index.len() >= 16 && time_index.len() >= 24,
        "the test needs several entries"
    );
    (index, time_index)
}

fn assert_every_offset_readable(log: &Log) {
    for offset in log.log_start_offset()..log.log_end_offset() {
        let read = log.read(offset, 1, i64::MAX, true).unwrap();
        let header = RecordBatchHeader::parse(&read.records).unwrap();
        assert!(header.base_offset <= offset && offset <= header.last_offset());
    }
}

#[test]
fn damaged_index_files_are_rebuilt_on_a_clean_open() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 4] = [
        ("missing offset index", |dir| {
            fs::remove_file(segment_file_path(dir, 0, INDEX_FILE_SUFFIX)).unwrap()
        }),
        ("missing time index", |dir| {
            fs::remove_file(segment_file_path(dir, 0, TIME_INDEX_FILE_SUFFIX)).unwrap()
        }),
        ("torn offset index", |dir| {
            let path = segment_file_path(dir, 0, INDEX_FILE_SUFFIX);
            let len = fs::metadata(&path).unwrap().len();
            set_len(&path, len - 3);
        }),
        ("offset index pointing past the log", |dir| {
            let path = segment_file_path(dir, 0, INDEX_FILE_SUFFIX);
            let mut bytes = fs::read(&path).unwrap();
            let len = bytes.len();
            bytes[len - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
            fs::write(&path, bytes).unwrap();
        }),
    ];
    for (name, damage) in damages {
        let dir = tempfile::tempdir().unwrap();
        let (index, time_index) = closed_log_with_indexes(dir.path());
        damage(dir.path());
        let log = open(
            dir.path(),
            LogConfig {
                segment_bytes: 2_048,
                index_interval_bytes: 100,
                ..LogConfig::default()
            },
        );
        assert_eq!(
            fs::read(segment_file_path(dir.path(), 0, INDEX_FILE_SUFFIX)).unwrap(),
            index,
            "{name}"
        );
        assert_eq!(
            fs::read(segment_file_path(dir.path(), 0, TIME_INDEX_FILE_SUFFIX)).unwrap(),
            time_index,
            "{name}"
        );
        assert_eq!(log.log_end_offset(), 80);
        assert_every_offset_readable(&log);
    }
}

#[test]
fn the_active_index_lost_in_a_crash_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    for _ in 0..50 {
        log.append_as_leader(&producer_batch(1, 30, 0), 0, NOW_MS)
            .unwrap();
    }
    crash(log);
    let index_path = segment_file_path(dir.path(), 0, INDEX_FILE_SUFFIX);
    assert_eq!(
        fs::metadata(&index_path).unwrap().len(),
        0,
        "entries were only in memory"
    );
    let log = open(dir.path(), config);
    assert_eq!(fs::metadata(&index_path).unwrap().len(), 49 * 8);
    assert_every_offset_readable(&log);
}

#[test]
fn crash_leftovers_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&producer_batch(1, 1, 0), 0, NOW_MS)
        .unwrap();
    log.close().unwrap();
    let leftovers = [
        dir.path().join("partition-checkpoint.tmp"),
        segment_file_path(dir.path(), 99, INDEX_FILE_SUFFIX),
        segment_file_path(dir.path(), 99, TIME_INDEX_FILE_SUFFIX),
        dir.path().join("00000000000000000050.log.deleted"),
    ];
    for path in &leftovers {
        fs::write(path, b"junk").unwrap();
    }
    let log = open(dir.path(), LogConfig::default());
    for path in &leftovers {
        assert!(!path.exists(), "{} survived", path.display());
    }
    assert_eq!(log.log_end_offset(), 1);
    assert!(
        !dir.path().join(CLEAN_SHUTDOWN_FILE).exists(),
        "the marker is taken at open"
    );
}

#[test]
fn a_log_start_past_the_recovered_end_restarts_the_log_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let batch = producer_batch(1, 10, 0);
    for _ in 0..10 {
        log.append_as_leader(&batch, 0, NOW_MS).unwrap();
    }
    log.advance_log_start_offset(8).unwrap();
    crash(log);
    set_len(
        &segment_file_path(dir.path(), 0, LOG_FILE_SUFFIX),
        5 * batch.len() as u64,
    );
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (8, 8, 1)
    );
    assert!(log.epoch_entries().is_empty());
}

/// xorshift64*: deterministic, dependency-free randomness for the model test.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// One stored batch as the model expects it.
struct ModelBatch {
    base_offset: i64,
    last_offset: i64,
    epoch: i32,
    bytes: Vec<u8>,
}

#[test]
fn random_appends_closes_crashes_and_torn_tails_match_a_model() {
    for seed in 1..=16u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: [700, 3_000, 1 << 20][rng.below(3) as usize],
            index_interval_bytes: [0, 64, 4_096][rng.below(3) as usize],
            ..LogConfig::default()
        };
        let mut log = Log::open(dir.path(), config.clone(), NOW_MS).unwrap();
        let mut model: Vec<ModelBatch> = Vec::new();
        let mut epoch = 0;
        for step in 0..80 {
            let context = format!("seed {seed} step {step}");
            match rng.below(12) {
                0..=6 => {
                    if rng.below(6) == 0 {
                        epoch += 1;
                    }
                    let mut request = Vec::new();
                    let mut batches = Vec::new();
                    for _ in 0..=rng.below(3) {
                        let batch = producer_batch(
                            1 + rng.below(4) as usize,
                            1 + rng.below(300) as usize,
                            0,
                        );
                        request.extend_from_slice(&batch);
                        batches.push(batch);
                    }
                    let info = log.append_as_leader(&request, epoch, NOW_MS).unwrap();
                    let mut next = info.first_offset;
                    for batch in batches {
                        let count = RecordBatchHeader::parse(&batch).unwrap().record_count as i64;
                        let bytes = as_stored(&batch, next, epoch);
                        model.push(ModelBatch {
                            base_offset: next,
                            last_offset: next + count - 1,
                            epoch,
                            bytes,
                        });
                        next += count;
                    }
                }
                7 => {
                    log.close().unwrap();
                    log = Log::open(dir.path(), config.clone(), NOW_MS).unwrap();
                }
                8 => {
                    crash(log);
                    log = Log::open(dir.path(), config.clone(), NOW_MS).unwrap();
                }
                9 | 10 => {
                    // Crash and tear the newest segment file at a random byte.
                    crash(log);
                    let newest = log_files(dir.path()).pop().unwrap();
                    let len = fs::metadata(&newest).unwrap().len();
                    if len > 0 {
                        let cut = rng.below(len);
                        set_len(&newest, cut);
                        let segment_base: i64 = newest
                            .file_stem()
                            .unwrap()
                            .to_str()
                            .unwrap()
                            .parse()
                            .unwrap();
                        let mut position = 0;
                        let keep = model
                            .iter()
                            .position(|b| {
                                if b.base_offset < segment_base {
                                    return false;
                                }
                                position += b.bytes.len() as u64;
                                position > cut
                            })
                            .unwrap_or(model.len());
                        model.truncate(keep);
                    }
                    log = Log::open(dir.path(), config.clone(), NOW_MS).unwrap();
                }
                _ => {
                    let offset = rng.below(log.log_end_offset() as u64 + 1) as i64;
                    log.truncate_to(offset).unwrap();
                    let keep = model
                        .iter()
                        .position(|b| b.last_offset >= offset)
                        .unwrap_or(model.len());
                    model.truncate(keep);
                }
            }
            let expected_end = model
                .last()
                .map_or(log.log_start_offset(), |b| b.last_offset + 1);
            assert_eq!(log.log_end_offset(), expected_end, "{context}");
            let expected: Vec<u8> = model.iter().flat_map(|b| b.bytes.iter().copied()).collect();
            assert!(
                read_all(&log) == expected,
                "{context}: content differs from the model"
            );
            let mut expected_epochs: Vec<EpochEntry> = Vec::new();
            for batch in &model {
                if expected_epochs.last().is_none_or(|e| e.epoch < batch.epoch) {
                    expected_epochs.push(EpochEntry {
                        epoch: batch.epoch,
                        start_offset: batch.base_offset,
                    });
                }
            }
            assert_eq!(log.epoch_entries(), &expected_epochs[..], "{context}");
        }
        log.close().unwrap();
    }
}

#[test]
fn shrinking_segment_index_bytes_keeps_sealed_indexes_and_caps_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 2_048,
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    for i in 0..30 {
        log.append_as_leader(&producer_batch(1, 50, i), 0, NOW_MS)
            .unwrap();
    }
    let active_base = log.active.base_offset();
    assert!(active_base > 0 && log.log_end_offset() - active_base > 4);
    log.close().unwrap();
    let sealed_index = fs::read(segment_file_path(dir.path(), 0, INDEX_FILE_SUFFIX)).unwrap();
    assert!(sealed_index.len() > 3 * 8);

    let shrunk = LogConfig {
        segment_index_bytes: 24,
        ..config
    };
    let mut log = open(dir.path(), shrunk);
    let reread = fs::read(segment_file_path(dir.path(), 0, INDEX_FILE_SUFFIX)).unwrap();
    assert_eq!(
        reread, sealed_index,
        "a sealed index over the new limit is used as it is"
    );
    let active_index = segment_file_path(dir.path(), active_base, INDEX_FILE_SUFFIX);
    assert_eq!(
        fs::metadata(&active_index).unwrap().len(),
        3 * 8,
        "the active index is rebuilt within the limit"
    );
    assert_every_offset_readable(&log);
    let end = log.log_end_offset();
    log.append_as_leader(&producer_batch(1, 50, 99), 0, NOW_MS)
        .unwrap();
    assert_eq!(
        log.active.base_offset(),
        end,
        "a full index rolls at the next append"
    );
}

/// Checkpoints are hints (issue #15): garbage in any of them costs a rescan, never a record,
/// and never stops the log from opening. The damaged files are kept beside it for inspection.
#[test]
fn garbage_checkpoints_are_set_aside_and_rebuilt_from_the_log() {
    for crashed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), small_config());
        let batch = producer_batch(1, 200, 0);
        for epoch in [0, 0, 0, 2, 2, 2, 2, 5, 5, 5, 5, 5] {
            log.append_as_leader(&batch, epoch, NOW_MS).unwrap();
        }
        log.flush().unwrap();
        let expected = read_all(&log);
        let epochs = log.epoch_entries().to_vec();
        assert_eq!(epochs.len(), 3);
        let segments = log.segment_count();
        if crashed {
            crash(log);
        } else {
            log.close().unwrap();
        }
        for name in [
            "partition-checkpoint",
            "leader-epoch-checkpoint",
            crate::cleaner::CLEANER_CHECKPOINT_FILE,
        ] {
            fs::write(dir.path().join(name), b"\x00\xffgarbage\n").unwrap();
        }

        let log = open(dir.path(), small_config());
        assert_eq!(log.log_end_offset(), 12, "crashed {crashed}");
        assert_eq!(log.log_start_offset(), 0);
        assert_eq!(log.segment_count(), segments);
        assert_eq!(read_all(&log), expected);
        assert_eq!(log.epoch_entries(), &epochs[..]);
        for name in ["partition-checkpoint", "leader-epoch-checkpoint"] {
            let damaged = dir.path().join(format!("{name}.damaged"));
            assert_eq!(fs::read(&damaged).unwrap(), b"\x00\xffgarbage\n", "{name}");
        }
        // The cleaner's is read when cleaning is planned: without it cleaning starts over.
        assert_eq!(crate::cleaner::read_checkpoint(dir.path()).unwrap(), None);
        assert!(dir.path().join("cleaner-checkpoint.damaged").exists());
        log.close().unwrap();
        let log = open(dir.path(), small_config());
        assert_eq!(log.epoch_entries(), &epochs[..], "rewritten checkpoint");
        assert_eq!(read_all(&log), expected);
    }
}

#[test]
fn a_lost_leader_epoch_checkpoint_is_rebuilt_from_batch_headers() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config());
    let batch = producer_batch(1, 200, 0);
    for epoch in [1, 1, 3, 3, 3, 4] {
        log.append_as_leader(&batch, epoch, NOW_MS).unwrap();
    }
    let epochs = log.epoch_entries().to_vec();
    log.close().unwrap();
    fs::remove_file(dir.path().join("leader-epoch-checkpoint")).unwrap();
    let log = open(dir.path(), small_config());
    assert_eq!(log.epoch_entries(), &epochs[..]);
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 5)));
}
