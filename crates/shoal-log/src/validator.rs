//! Validation and offset assignment for appends (Kafka's `LogValidator`).
//!
//! Every batch of an append is checked before a byte is written, so an append is all or
//! nothing. A producer's batch is checked as Kafka's leader does it: header, CRC, and then
//! every record, because a batch whose header and CRC are sound can still hold records a
//! consumer cannot read (a count that lies, a length that overruns, junk inside a valid
//! compressed stream); librdkafka consumers stall on such a batch, and on a compacted topic it
//! would stop the cleaner. The walk is one pass over bytes already in memory: uncompressed
//! records are read in place, compressed ones are decompressed once (bounded by
//! `compression::MAX_DECOMPRESSED_BYTES`), as Kafka decompresses them. Validation only reads:
//! stored bytes stay as sent. Followers store the leader's batches with header checks only.
//!
//! Where Shoal differs from Kafka, it is stricter because it never rewrites a batch: inner
//! offset deltas must be 0, 1, 2, … (Kafka rewrites a compressed batch whose deltas are not,
//! and does not look at an uncompressed batch's), and record framing errors are
//! CORRUPT_MESSAGE. Offset assignment rewrites `baseOffset` and `partitionLeaderEpoch`, which
//! lie outside the CRC, so the CRC is recomputed only when LogAppendTime changes the timestamp.

pub use crate::append_origin::AppendOrigin;
use crate::batch::{
    NO_TIMESTAMP, RECORD_BATCH_HEADER_BYTES, RecordBatchHeader, batches, set_base_offset,
    set_log_append_time, set_partition_leader_epoch, verify_crc,
};
use crate::compression::{self, NONE, ZSTD};
use crate::config::{CompressionType, LogConfig, TimestampType};
use crate::error::{LogError, RecordError, Result};
use crate::recompress::{decompression_limit, recompression_target};
use crate::record_view::{RecordView, walk};

/// Most per-record errors one refused batch reports (Kafka reports all; a batch of a million
/// keyless records would otherwise make a response of a million strings).
const MAX_RECORD_ERRORS: usize = 100;

/// Validates the batches a producer sent, records included (see the module docs), under the
/// topic's `config` at `now_ms`. Fills `headers` (cleared first) with one header per batch, and
/// `sections` (cleared first) with the decompressed records of each batch `compression.type`
/// will rewrite (`None` for the others), so the rewrite does not decompress them again.
/// Checks the batches a producer sent as a leader append would, without appending: every
/// header, CRC and record (see the module docs). The entry point of the record-batch fuzz
/// target (`make fuzz`).
pub fn validate_produce(records: &[u8], config: &LogConfig, now_ms: i64) -> Result<()> {
    let mut headers = Vec::new();
    let mut sections = Vec::new();
    validate_leader_append(
        records,
        config,
        now_ms,
        AppendOrigin::Client,
        &mut headers,
        &mut sections,
    )
}

pub(crate) fn validate_leader_append(
    records: &[u8],
    config: &LogConfig,
    now_ms: i64,
    origin: AppendOrigin,
    headers: &mut Vec<RecordBatchHeader>,
    sections: &mut Vec<Option<Vec<u8>>>,
) -> Result<()> {
    sections.clear();
    validate_batch_headers(records, config.max_message_bytes, headers)?;
    let mut position = 0;
    for header in headers.iter() {
        let end = position + header.size_bytes();
        let batch = records.get(position..end).ok_or_else(|| {
            LogError::CorruptRecord(format!("batch at byte {position} runs past the request"))
        })?;
        check_producer_batch(header, position, origin)?;
        let target = recompression_target(config.compression_type, header);
        let section = validate_records(batch, header, target, config, now_ms)?;
        if config.compression_type != CompressionType::Producer {
            sections.push(section.filter(|_| target.is_some()));
        }
        if config.message_timestamp_type == TimestampType::CreateTime {
            check_batch_timestamps(
                std::slice::from_ref(header),
                now_ms,
                config.message_timestamp_before_max_ms,
                config.message_timestamp_after_max_ms,
            )?;
        }
        position = end;
    }
    Ok(())
}

/// The header-only half of [`validate_leader_append`]: size, CRC, record count. Enough for
/// batches the broker rewrote itself from validated records.
pub(crate) fn validate_batch_headers(
    records: &[u8],
    max_message_bytes: u32,
    headers: &mut Vec<RecordBatchHeader>,
) -> Result<()> {
    headers.clear();
    if records.is_empty() {
        return Err(LogError::InvalidRecord(
            "the append carries no record batches".to_owned(),
        ));
    }
    for batch in batches(records) {
        let batch = batch?;
        check_size(batch.bytes.len(), max_message_bytes)?;
        verify_crc(batch.bytes)?;
        let header = batch.header;
        if header.record_count < 1 {
            return Err(LogError::InvalidRecord(format!(
                "batch at byte {} has recordCount {}",
                batch.position, header.record_count
            )));
        }
        if header.last_offset_delta != header.record_count - 1 {
            return Err(LogError::InvalidRecord(format!(
                "batch at byte {} has lastOffsetDelta {} but recordCount {}",
                batch.position, header.last_offset_delta, header.record_count
            )));
        }
        headers.push(header);
    }
    Ok(())
}

/// Kafka's `validateBatch` rules; the control and sequence rules are for clients only.
fn check_producer_batch(
    header: &RecordBatchHeader,
    position: usize,
    origin: AppendOrigin,
) -> Result<()> {
    let client = origin == AppendOrigin::Client;
    if client && header.is_control() {
        return Err(LogError::InvalidRecord(
            "Clients are not allowed to write control records".to_owned(),
        ));
    }
    if client && header.producer_id >= 0 && header.base_sequence < 0 {
        return Err(LogError::InvalidRecord(format!(
            "Invalid sequence number {} in record batch with producerId {} at byte {position}",
            header.base_sequence, header.producer_id
        )));
    }
    if header.compression_codec() > ZSTD {
        return Err(compression::unknown_codec(header.compression_codec()));
    }
    Ok(())
}

/// Walks the records of one batch (decompressing them once if compressed) and applies
/// Kafka's `validateRecord` rules to each; rule breaks are collected per record, as Kafka's
/// `processRecordErrors` does, framing errors end the walk. Returns the decompressed records
/// of a compressed batch. `target` is the codec `compression.type` will rewrite it into.
fn validate_records(
    batch: &[u8],
    header: &RecordBatchHeader,
    target: Option<u8>,
    config: &LogConfig,
    now_ms: i64,
) -> Result<Option<Vec<u8>>> {
    let packed = batch
        .get(RECORD_BATCH_HEADER_BYTES..)
        .ok_or_else(|| LogError::CorruptRecord("a batch shorter than its header".to_owned()))?;
    let codec = header.compression_codec();
    let decompressed = if codec == NONE {
        None
    } else {
        let limit = decompression_limit(target, config.max_message_bytes);
        Some(compression::decompress(codec, packed, limit)?)
    };
    let section = decompressed.as_deref().unwrap_or(packed);
    let count = usize::try_from(header.record_count).unwrap_or(0);
    let mut errors = RecordErrors::default();
    walk(section, count, |index, record| {
        check_record(index, &record, header, config, now_ms, &mut errors);
        Ok(())
    })?;
    errors.into_result()?;
    Ok(decompressed)
}

fn check_record(
    index: usize,
    record: &RecordView<'_>,
    header: &RecordBatchHeader,
    config: &LogConfig,
    now_ms: i64,
    errors: &mut RecordErrors,
) {
    if usize::try_from(record.offset_delta) != Ok(index) {
        errors.push(
            index,
            false,
            format!(
                "Record {index} has offset delta {}: a batch's records must have deltas 0, 1, 2, …",
                record.offset_delta
            ),
        );
    }
    if config.cleanup_policy.compact && record.key.is_none() {
        errors.push(
            index,
            false,
            "Compacted topic cannot accept message without key".to_owned(),
        );
    }
    if config.message_timestamp_type == TimestampType::CreateTime {
        let timestamp_ms = match header.timestamp_type() {
            TimestampType::LogAppendTime => header.max_timestamp,
            TimestampType::CreateTime => header
                .base_timestamp
                .saturating_add(record.timestamp_delta_ms),
        };
        if let Err(e) = check_timestamp(
            timestamp_ms,
            now_ms,
            config.message_timestamp_before_max_ms,
            config.message_timestamp_after_max_ms,
        ) {
            errors.push(index, true, e.to_string());
        }
    }
}

/// Kafka's `processRecordErrors`: INVALID_TIMESTAMP if any record's timestamp is out of
/// bounds, else INVALID_RECORD, with every record's error (up to `MAX_RECORD_ERRORS`).
#[derive(Default)]
struct RecordErrors {
    errors: Vec<RecordError>,
    total: usize,
    any_timestamp: bool,
}

impl RecordErrors {
    fn push(&mut self, index: usize, timestamp: bool, message: String) {
        self.total += 1;
        self.any_timestamp |= timestamp;
        if self.errors.len() < MAX_RECORD_ERRORS {
            self.errors.push(RecordError {
                batch_index: i32::try_from(index).unwrap_or(i32::MAX),
                message,
            });
        }
    }

    fn into_result(self) -> Result<()> {
        if self.total == 0 {
            return Ok(());
        }
        let error = if self.any_timestamp {
            LogError::InvalidTimestamp(
                "One or more records have been rejected due to invalid timestamp".to_owned(),
            )
        } else {
            let first: Vec<String> = self
                .errors
                .iter()
                .take(3)
                .map(|e| format!("{} at index {}", e.message, e.batch_index))
                .collect();
            LogError::InvalidRecord(format!(
                "One or more records have been rejected due to {} record errors in total, and \
                 only showing the first three errors at most: [{}]",
                self.total,
                first.join("; ")
            ))
        };
        Err(LogError::RecordErrors {
            error: Box::new(error),
            record_errors: self.errors,
        })
    }
}

/// Validates batches copied from a leader: they already carry offsets, which must continue
/// the log at `log_end_offset` without gaps.
pub(crate) fn validate_follower_append(
    records: &[u8],
    max_message_bytes: u32,
    log_end_offset: i64,
    headers: &mut Vec<RecordBatchHeader>,
) -> Result<()> {
    headers.clear();
    let mut expected_offset = log_end_offset;
    for batch in batches(records) {
        let batch = batch?;
        check_size(batch.bytes.len(), max_message_bytes)?;
        verify_crc(batch.bytes)?;
        let header = batch.header;
        // A leader's compacted log has gaps where whole batches were cleaned away; offsets
        // must only grow.
        if header.base_offset < expected_offset {
            return Err(LogError::UnexpectedAppendOffset {
                expected: expected_offset,
                actual: header.base_offset,
            });
        }
        if header.last_offset_delta < 0 || header.last_offset() == i64::MAX {
            return Err(LogError::InvalidRecord(format!(
                "batch at offset {} has lastOffsetDelta {}",
                header.base_offset, header.last_offset_delta
            )));
        }
        expected_offset = header.next_offset();
        headers.push(header);
    }
    Ok(())
}

/// Rewrites the validated batches in `buf` (a copy of the producer's bytes) with offsets from
/// `first_offset` and `leader_epoch`, and with `log_append_time_ms` when the topic uses
/// LogAppendTime. Updates `headers` to match what is now in `buf`.
pub(crate) fn assign_offsets(
    buf: &mut [u8],
    headers: &mut [RecordBatchHeader],
    first_offset: i64,
    leader_epoch: i32,
    log_append_time_ms: Option<i64>,
) {
    let mut position = 0;
    let mut next_offset = first_offset;
    for header in headers.iter_mut() {
        let end = position + header.size_bytes();
        let batch = &mut buf[position..end];
        set_base_offset(batch, next_offset);
        set_partition_leader_epoch(batch, leader_epoch);
        header.base_offset = next_offset;
        header.partition_leader_epoch = leader_epoch;
        if let Some(now_ms) = log_append_time_ms {
            set_log_append_time(batch, header, now_ms);
        }
        next_offset = header.next_offset();
        position = end;
    }
    debug_assert_eq!(
        position,
        buf.len(),
        "headers must describe the whole buffer"
    );
}

/// KIP-937: a CreateTime timestamp must lie within `[now - before_max_ms, now + after_max_ms]`
/// (Kafka's `LogValidator.validateTimestamp`); `NO_TIMESTAMP` (-1) is not checked, and
/// `i64::MAX` (the default of `message.timestamp.before.max.ms`) is no bound at all.
pub(crate) fn check_timestamp(
    timestamp_ms: i64,
    now_ms: i64,
    before_max_ms: i64,
    after_max_ms: i64,
) -> Result<()> {
    if timestamp_ms == NO_TIMESTAMP {
        return Ok(());
    }
    let behind_ms = i128::from(now_ms) - i128::from(timestamp_ms);
    let too_old = before_max_ms != i64::MAX && behind_ms > i128::from(before_max_ms);
    let too_new = after_max_ms != i64::MAX && -behind_ms > i128::from(after_max_ms);
    if too_old || too_new {
        return Err(LogError::InvalidTimestamp(format!(
            "Timestamp {timestamp_ms} of message is out of range. The timestamp should be within [{}, {}]",
            now_ms.saturating_sub(before_max_ms),
            now_ms.saturating_add(after_max_ms)
        )));
    }
    Ok(())
}

/// The timestamp bounds on the zero-copy path, from batch headers alone: the base timestamp
/// (the first record's) and the max timestamp. Records are checked one by one only where they
/// are decoded anyway (recompression); see docs/configuration.md.
pub(crate) fn check_batch_timestamps(
    headers: &[RecordBatchHeader],
    now_ms: i64,
    before_max_ms: i64,
    after_max_ms: i64,
) -> Result<()> {
    for header in headers {
        if header.timestamp_type() == crate::config::TimestampType::CreateTime {
            check_timestamp(header.base_timestamp, now_ms, before_max_ms, after_max_ms)?;
        }
        check_timestamp(header.max_timestamp, now_ms, before_max_ms, after_max_ms)?;
    }
    Ok(())
}

fn check_size(size_bytes: usize, max_message_bytes: u32) -> Result<()> {
    let max_message_bytes = max_message_bytes as usize;
    if size_bytes > max_message_bytes {
        return Err(LogError::RecordTooLarge {
            size_bytes,
            max_message_bytes,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TimestampType;
    use crate::testing::{BatchSpec, build_batch, build_batch_with};

    fn two_batches() -> Vec<u8> {
        let mut records = build_batch(0, 10, &[b"a", b"b"]);
        records.extend_from_slice(&build_batch(0, 20, &[b"c"]));
        records
    }

    #[test]
    fn leader_append_accepts_valid_batches_and_assigns_offsets() {
        let mut records = two_batches();
        let mut headers = Vec::new();
        validate_batch_headers(&records, 1 << 20, &mut headers).unwrap();
        assert_eq!(headers.len(), 2);
        assign_offsets(&mut records, &mut headers, 500, 3, None);
        let parsed: Vec<_> = batches(&records).map(|b| b.unwrap()).collect();
        assert_eq!(parsed[0].header.base_offset, 500);
        assert_eq!(parsed[1].header.base_offset, 502);
        assert_eq!(parsed[1].header.partition_leader_epoch, 3);
        assert_eq!(parsed[1].header, headers[1]);
        for batch in &parsed {
            verify_crc(batch.bytes).unwrap();
        }
    }

    #[test]
    fn log_append_time_rewrites_every_batch() {
        let mut records = two_batches();
        let mut headers = Vec::new();
        validate_batch_headers(&records, 1 << 20, &mut headers).unwrap();
        assign_offsets(&mut records, &mut headers, 0, 0, Some(77_777));
        for batch in batches(&records) {
            let batch = batch.unwrap();
            verify_crc(batch.bytes).unwrap();
            assert_eq!(batch.header.max_timestamp, 77_777);
            assert_eq!(batch.header.timestamp_type(), TimestampType::LogAppendTime);
        }
        assert_eq!(headers[0].max_timestamp, 77_777);
    }

    #[test]
    fn leader_append_rejections() {
        let mut headers = Vec::new();
        let valid = build_batch(0, 0, &[b"x"]);

        let mut bad_crc = valid.clone();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 1;
        assert!(matches!(
            validate_batch_headers(&bad_crc, 1 << 20, &mut headers),
            Err(LogError::CorruptRecord(_))
        ));

        let mut bad_magic = valid.clone();
        bad_magic[16] = 0;
        assert!(matches!(
            validate_batch_headers(&bad_magic, 1 << 20, &mut headers),
            Err(LogError::CorruptRecord(_))
        ));

        assert!(matches!(
            validate_batch_headers(&valid[..valid.len() - 1], 1 << 20, &mut headers),
            Err(LogError::CorruptRecord(_))
        ));
        assert!(matches!(
            validate_batch_headers(&valid[..30], 1 << 20, &mut headers),
            Err(LogError::CorruptRecord(_))
        ));

        let mut huge_length = valid.clone();
        huge_length[8..12].copy_from_slice(&0x7fff_fff0i32.to_be_bytes());
        assert!(matches!(
            validate_batch_headers(&huge_length, 1 << 20, &mut headers),
            Err(LogError::CorruptRecord(_))
        ));

        assert!(matches!(
            validate_batch_headers(&valid, (valid.len() - 1) as u32, &mut headers),
            Err(LogError::RecordTooLarge { size_bytes, .. }) if size_bytes == valid.len()
        ));
        validate_batch_headers(&valid, valid.len() as u32, &mut headers).unwrap();

        assert!(matches!(
            validate_batch_headers(&[], 1 << 20, &mut headers),
            Err(LogError::InvalidRecord(_))
        ));
    }

    #[test]
    fn timestamp_bounds() {
        const NOW: i64 = 1_000_000;
        const HOUR: i64 = 3_600_000;
        // (timestamp, before.max.ms, after.max.ms, accepted)
        let cases = [
            (NOW, 0, 0, true),
            (NOW - 1, 0, 0, false),
            (NOW + 1, 0, 0, false),
            (NOW - 500, 500, 0, true),
            (NOW - 501, 500, 0, false),
            (NOW + HOUR, i64::MAX, HOUR, true),
            (NOW + HOUR + 1, i64::MAX, HOUR, false),
            (i64::MIN, i64::MAX, HOUR, true),
            (i64::MIN, NOW, HOUR, false),
            (i64::MAX, i64::MAX, i64::MAX, true),
            (0, NOW, 0, true),
            (-1, 0, 0, true),
            (-2, 0, 0, false),
        ];
        for (timestamp, before, after, accepted) in cases {
            let result = check_timestamp(timestamp, NOW, before, after);
            assert_eq!(
                result.is_ok(),
                accepted,
                "{timestamp} with before {before}, after {after}: {result:?}"
            );
            if let Err(e) = result {
                assert!(matches!(e, LogError::InvalidTimestamp(_)), "{e:?}");
            }
        }
    }

    #[test]
    fn batch_timestamps_check_base_and_max() {
        let headers = |base: i64| {
            let batch = build_batch(0, base, &[b"a", b"b", b"c"]);
            vec![RecordBatchHeader::parse(&batch).unwrap()]
        };
        check_batch_timestamps(&headers(1_000), 1_000, 0, 2).unwrap();
        assert!(
            check_batch_timestamps(&headers(1_000), 1_000, 0, 1).is_err(),
            "max is +2"
        );
        assert!(
            check_batch_timestamps(&headers(999), 1_001, 1, 10).is_err(),
            "base is -2"
        );
        check_batch_timestamps(&headers(999), 1_001, 2, 10).unwrap();
    }

    #[test]
    fn record_count_must_match_last_offset_delta() {
        let mut headers = Vec::new();
        let mut batch = build_batch(0, 0, &[b"x", b"y"]);
        // recordCount 3 with lastOffsetDelta 1; fix the CRC so only the count rule fails.
        batch[57..61].copy_from_slice(&3i32.to_be_bytes());
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate_batch_headers(&batch, 1 << 20, &mut headers),
            Err(LogError::InvalidRecord(_))
        ));

        batch[57..61].copy_from_slice(&0i32.to_be_bytes());
        batch[23..27].copy_from_slice(&(-1i32).to_be_bytes());
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate_batch_headers(&batch, 1 << 20, &mut headers),
            Err(LogError::InvalidRecord(_))
        ));
    }

    #[test]
    fn follower_append_requires_growing_offsets_from_the_log_end() {
        let mut headers = Vec::new();
        let mut records = build_batch(10, 0, &[b"a", b"b"]);
        records.extend_from_slice(&build_batch(12, 0, &[b"c"]));
        validate_follower_append(&records, 1 << 20, 10, &mut headers).unwrap();
        assert_eq!(headers.len(), 2);

        // Starting past the log end is a gap too; starting below it overlaps.
        validate_follower_append(&records, 1 << 20, 9, &mut headers).unwrap();
        assert!(matches!(
            validate_follower_append(&records, 1 << 20, 11, &mut headers),
            Err(LogError::UnexpectedAppendOffset {
                expected: 11,
                actual: 10
            })
        ));

        // A gap (a batch the leader's cleaner removed) is accepted; an overlap is not.
        let mut gap = build_batch(10, 0, &[b"a", b"b"]);
        gap.extend_from_slice(&build_batch_with(&BatchSpec {
            base_offset: 13,
            ..BatchSpec::new(&[b"c"])
        }));
        validate_follower_append(&gap, 1 << 20, 10, &mut headers).unwrap();
        let mut overlap = build_batch(10, 0, &[b"a", b"b"]);
        overlap.extend_from_slice(&build_batch_with(&BatchSpec {
            base_offset: 11,
            ..BatchSpec::new(&[b"c"])
        }));
        assert!(matches!(
            validate_follower_append(&overlap, 1 << 20, 10, &mut headers),
            Err(LogError::UnexpectedAppendOffset {
                expected: 12,
                actual: 11
            })
        ));
    }
}
