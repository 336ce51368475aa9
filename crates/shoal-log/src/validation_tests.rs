//! Issue #15: producer batches whose header and CRC are sound but whose records are not (or
//! break a topic rule) are refused whole, as Kafka's `LogValidator` refuses them, and nothing
//! is stored; valid batches of every codec are stored byte for byte.

use super::tests::{NOW_MS, as_stored, open, read_all};
use super::*;
use crate::batch::{RECORD_BATCH_HEADER_BYTES, reseal_with_codec};
use crate::compression::{self, GZIP, LZ4, NONE, SNAPPY, ZSTD};
use crate::config::CleanupPolicy;
use crate::testing::{BatchSpec, TestRecord, build_batch_with, encode_record};

const HOUR_MS: i64 = 3_600_000;

/// One record's bytes, length prefix included, with one record header (`h` = `1`).
fn record(offset_delta: i64, timestamp_delta_ms: i64, key: Option<&[u8]>, value: &[u8]) -> Vec<u8> {
    let record = TestRecord {
        key,
        value: Some(value),
        timestamp_delta_ms,
    };
    encode_record(offset_delta, &record, &[(b"h", Some(b"1"))])
}

/// `count` keyed records with offset deltas 0, 1, 2, ….
fn good_section(count: i64) -> Vec<u8> {
    (0..count)
        .flat_map(|i| record(i, 0, Some(format!("k{i}").as_bytes()), b"value"))
        .collect()
}

/// A batch at `NOW_MS` whose records section is `packed` exactly as given, claiming `count`
/// records, with codec bits `codec` and a correct CRC.
fn batch_raw(packed: &[u8], count: i32, codec: u8, attributes: i16) -> Vec<u8> {
    let template = build_batch_with(&BatchSpec {
        base_timestamp_ms: NOW_MS,
        attributes,
        ..BatchSpec::new(&[b"x"])
    });
    let mut batch = template[..RECORD_BATCH_HEADER_BYTES].to_vec();
    batch[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    batch[35..43].copy_from_slice(&NOW_MS.to_be_bytes());
    batch[57..61].copy_from_slice(&count.to_be_bytes());
    batch.extend_from_slice(packed);
    reseal_with_codec(&mut batch, codec).unwrap();
    batch
}

/// A batch of `section` compressed with `codec`.
fn batch(section: &[u8], count: i32, codec: u8) -> Vec<u8> {
    batch_raw(
        &compression::compress(codec, section).unwrap(),
        count,
        codec,
        0,
    )
}

fn compacted() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..LogConfig::default()
    }
}

/// Appends `records` as leader to a fresh log; asserts it was refused and nothing stored.
fn refused(config: LogConfig, records: &[u8]) -> LogError {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), config);
    let error = log
        .append_as_leader(records, 0, NOW_MS)
        .expect_err("the batch must be refused");
    assert_eq!(log.log_end_offset(), 0, "{error:?}");
    assert_eq!(log.size_bytes(), 0, "{error:?}");
    // The log still takes a good batch.
    log.append_as_leader(&batch(&good_section(1), 1, NONE), 0, NOW_MS)
        .unwrap();
    error
}

/// Refused as INVALID_RECORD: the CRC holds, so the batch was built wrong, not damaged in
/// transit, and a client must not retry it (CORRUPT_MESSAGE is retriable).
fn assert_invalid(config: LogConfig, records: &[u8], case: &str) {
    let error = refused(config, records);
    assert!(
        matches!(error, LogError::InvalidRecord(_)),
        "{case}: {error:?}"
    );
}

/// The per-record errors of a refused batch, as (batch_index, message), and whether the
/// batch's error is INVALID_TIMESTAMP.
fn record_errors(error: LogError) -> (bool, Vec<(i32, String)>) {
    let LogError::RecordErrors {
        error,
        record_errors,
    } = error
    else {
        panic!("expected per-record errors, got {error:?}");
    };
    let timestamp = match *error {
        LogError::InvalidTimestamp(_) => true,
        LogError::InvalidRecord(_) => false,
        other => panic!("unexpected {other:?}"),
    };
    let errors = record_errors
        .into_iter()
        .map(|e| (e.batch_index, e.message))
        .collect();
    (timestamp, errors)
}

#[test]
fn a_record_count_that_lies_high_or_low_is_an_invalid_record() {
    for codec in [NONE, GZIP] {
        assert_invalid(
            LogConfig::default(),
            &batch(&good_section(1), 2, codec),
            "high",
        );
        assert_invalid(
            LogConfig::default(),
            &batch(&good_section(2), 1, codec),
            "low",
        );
        assert_invalid(
            LogConfig::default(),
            &batch(&good_section(1), i32::MAX, codec),
            "2^31-1 claimed, one present",
        );
    }
}

#[test]
fn record_lengths_that_do_not_match_their_fields_are_invalid_records() {
    // First record's length claims 3 bytes more than its fields: it runs into the second.
    let mut section = good_section(2);
    section[0] += 6; // zigzag: +3
    assert_invalid(LogConfig::default(), &batch(&section, 2, NONE), "overrun");
    // A length 3 bytes short of its fields.
    let mut section = good_section(2);
    section[0] -= 6;
    assert_invalid(LogConfig::default(), &batch(&section, 2, NONE), "short");
    // The last record's length runs past the batch.
    let mut section = good_section(1);
    section[0] += 2;
    assert_invalid(
        LogConfig::default(),
        &batch(&section, 1, NONE),
        "past the end",
    );
    // A header count that lies.
    let mut section = record(0, 0, Some(b"k"), b"v");
    let header_count_at = section.len() - 5;
    section[header_count_at] = 4; // zigzag 2, one present
    assert_invalid(LogConfig::default(), &batch(&section, 1, NONE), "headers");
}

#[test]
fn junk_inside_a_valid_compressed_stream_is_an_invalid_record() {
    let junk = b"\xde\xad\xbe\xef this is not a record at all, just bytes".repeat(4);
    for codec in [GZIP, SNAPPY, LZ4, ZSTD] {
        assert_invalid(
            LogConfig::default(),
            &batch(&junk, 1, codec),
            &format!("codec {codec}"),
        );
    }
}

#[test]
fn bytes_that_are_not_what_their_codec_says_are_invalid_records() {
    let plain = good_section(2);
    for codec in [GZIP, SNAPPY, LZ4, ZSTD] {
        assert_invalid(
            LogConfig::default(),
            &batch_raw(&plain, 2, codec, 0),
            &format!("plain records marked codec {codec}"),
        );
    }
    // A gzip stream cut short.
    let gzip = compression::compress(GZIP, &plain).unwrap();
    assert_invalid(
        LogConfig::default(),
        &batch_raw(&gzip[..gzip.len() - 12], 2, GZIP, 0),
        "truncated gzip",
    );
}

#[test]
fn unknown_codec_ids_are_unsupported() {
    for codec in [5, 6, 7] {
        let error = refused(
            LogConfig::default(),
            &batch_raw(&good_section(1), 1, codec, 0),
        );
        assert!(
            matches!(error, LogError::UnsupportedCompressionType(_)),
            "codec {codec}: {error:?}"
        );
    }
}

#[test]
fn inner_offset_deltas_must_be_0_1_2() {
    for codec in [NONE, GZIP, ZSTD] {
        let gap: Vec<u8> = [
            record(0, 0, Some(b"a"), b"v"),
            record(2, 0, Some(b"b"), b"v"),
        ]
        .concat();
        let (timestamp, errors) =
            record_errors(refused(LogConfig::default(), &batch(&gap, 2, codec)));
        assert!(!timestamp);
        assert_eq!(
            errors.iter().map(|e| e.0).collect::<Vec<_>>(),
            [1],
            "{errors:?}"
        );
        let swapped: Vec<u8> = [
            record(1, 0, Some(b"a"), b"v"),
            record(0, 0, Some(b"b"), b"v"),
        ]
        .concat();
        let (_, errors) = record_errors(refused(LogConfig::default(), &batch(&swapped, 2, codec)));
        assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), [0, 1]);
    }
}

#[test]
fn compacted_topics_refuse_records_without_a_key() {
    let section: Vec<u8> = [
        record(0, 0, Some(b"a"), b"v"),
        record(1, 0, None, b"v"),
        record(2, 0, Some(b"c"), b"v"),
    ]
    .concat();
    for codec in [NONE, LZ4] {
        let input = batch(&section, 3, codec);
        let (timestamp, errors) = record_errors(refused(compacted(), &input));
        assert!(!timestamp);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, 1);
        assert!(
            errors[0]
                .1
                .contains("Compacted topic cannot accept message without key"),
            "{errors:?}"
        );
        // The same batch is fine where keys are optional.
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), LogConfig::default());
        log.append_as_leader(&input, 0, NOW_MS).unwrap();
    }
}

#[test]
fn every_record_timestamp_is_checked() {
    // The header's timestamps are in bounds; the second record is 2 hours ahead.
    let section: Vec<u8> = [
        record(0, 0, Some(b"a"), b"v"),
        record(1, 2 * HOUR_MS, Some(b"b"), b"v"),
    ]
    .concat();
    for codec in [NONE, SNAPPY] {
        let input = batch(&section, 2, codec);
        let (timestamp, errors) = record_errors(refused(LogConfig::default(), &input));
        assert!(timestamp, "INVALID_TIMESTAMP");
        assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), [1]);
        // One behind the clock by more than message.timestamp.before.max.ms.
        let late: Vec<u8> = [
            record(0, 0, Some(b"a"), b"v"),
            record(1, -2 * HOUR_MS, Some(b"b"), b"v"),
        ]
        .concat();
        let before = LogConfig {
            message_timestamp_before_max_ms: HOUR_MS,
            ..LogConfig::default()
        };
        let (timestamp, _) = record_errors(refused(before, &batch(&late, 2, codec)));
        assert!(timestamp);
        // LogAppendTime topics overwrite timestamps: nothing to check.
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            message_timestamp_type: TimestampType::LogAppendTime,
            ..LogConfig::default()
        };
        let mut log = open(dir.path(), config);
        log.append_as_leader(&input, 0, NOW_MS).unwrap();
    }
}

#[test]
fn control_batches_from_producers_are_refused() {
    let input = batch_raw(&good_section(1), 1, NONE, 0x30);
    let error = refused(LogConfig::default(), &input);
    assert!(matches!(error, LogError::InvalidRecord(_)), "{error:?}");
}

#[test]
fn valid_batches_of_every_codec_are_stored_as_sent() {
    let section: Vec<u8> = [
        good_section(3),
        // An empty value, an empty key and a large value.
        record(3, 5, Some(b""), b""),
        record(4, 9, Some(b"big"), &vec![b'x'; 100_000]),
    ]
    .concat();
    for config in [LogConfig::default(), compacted()] {
        for codec in [NONE, GZIP, SNAPPY, LZ4, ZSTD] {
            let input = batch(&section, 5, codec);
            let dir = tempfile::tempdir().unwrap();
            let mut log = open(dir.path(), config.clone());
            log.append_as_leader(&input, 0, NOW_MS).unwrap();
            assert_eq!(read_all(&log), as_stored(&input, 0, 0), "codec {codec}");
        }
    }
}

#[test]
fn topics_that_recompress_store_the_validated_records_in_their_codec() {
    use crate::config::CompressionType;
    let section = good_section(20);
    let cases = [
        (GZIP, CompressionType::Zstd),
        (NONE, CompressionType::Lz4),
        (ZSTD, CompressionType::Uncompressed),
    ];
    for (source, target) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            compression_type: target,
            ..LogConfig::default()
        };
        let mut log = open(dir.path(), config);
        log.append_as_leader(&batch(&section, 20, source), 0, NOW_MS)
            .unwrap();
        let stored = read_all(&log);
        let header = crate::batch::RecordBatchHeader::parse(&stored).unwrap();
        assert_eq!(Some(header.compression_codec()), target.codec());
        assert_eq!(
            crate::record_view::decompressed_section(&stored).unwrap(),
            section
        );
    }
    // For an uncompressed topic, decompression stops at what could be stored.
    let bomb = batch(&record(0, 0, Some(b"k"), &vec![0u8; 2 << 20]), 1, ZSTD);
    let config = LogConfig {
        compression_type: CompressionType::Uncompressed,
        ..LogConfig::default()
    };
    let error = refused(config, &bomb);
    assert!(
        matches!(error, LogError::DecompressedTooLarge { limit_bytes, .. } if limit_bytes < 1 << 20),
        "{error:?}"
    );
}

#[test]
fn an_idempotent_batch_needs_a_sequence() {
    let input = build_batch_with(&BatchSpec {
        base_timestamp_ms: NOW_MS,
        producer_id: 7,
        producer_epoch: 0,
        base_sequence: -1,
        ..BatchSpec::new(&[b"x"])
    });
    let error = refused(LogConfig::default(), &input);
    assert!(matches!(error, LogError::InvalidRecord(_)), "{error:?}");
}

#[test]
fn record_errors_are_bounded_but_all_counted() {
    let section: Vec<u8> = (0..150).flat_map(|i| record(i, 0, None, b"v")).collect();
    let error = refused(compacted(), &batch(&section, 150, NONE));
    let message = error.to_string();
    let (_, errors) = record_errors(error);
    assert_eq!(errors.len(), 100);
    assert_eq!(errors.last().map(|e| e.0), Some(99));
    assert!(message.contains("150 record errors"), "{message}");
}
