//! The Kafka v2 record batch header: the part of the record format reads and writes use.
//!
//! Everything the log needs to store and serve a batch — offsets, size, timestamps, CRC —
//! sits in the fixed 61-byte header (see `kafka-clients.md` §4), so reads, follower appends and
//! recovery cost one header parse per batch whatever the batch holds. Records are walked only
//! by the leader's validator and the cleaner (`record_view`). Parsing bounds every length against the
//! buffer it came from before anything is sliced, so a lying `batchLength` is an error, never
//! an allocation or a panic.

use crate::config::TimestampType;
use crate::error::{LogError, Result};

/// `baseOffset` + `batchLength`: the bytes in front of what `batchLength` counts.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// Size of the fixed v2 batch header, up to and including `recordCount`.
pub const RECORD_BATCH_HEADER_BYTES: usize = 61;
/// The only record format the log accepts.
pub const MAGIC_V2: i8 = 2;
/// Kafka's "no timestamp" value.
pub const NO_TIMESTAMP: i64 = -1;

const MIN_BATCH_LENGTH: i32 = (RECORD_BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;

const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const PARTITION_LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
/// The CRC covers the batch from here to its end.
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;

const COMPRESSION_CODEC_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// The parsed fixed header of one v2 record batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordBatchHeader {
    pub base_offset: i64,
    /// Bytes after the `batchLength` field; at least 49.
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl RecordBatchHeader {
    /// Parses the header at the start of `buf`, checking the two fields that make the batch
    /// safe to walk: magic 2 and `batchLength` covering at least the header. Does not check
    /// that `buf` holds the whole batch, nor the CRC.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        if buf.len() < RECORD_BATCH_HEADER_BYTES {
            return Err(LogError::CorruptRecord(format!(
                "a record batch header needs {RECORD_BATCH_HEADER_BYTES} bytes, only {} present",
                buf.len()
            )));
        }
        let magic = buf[MAGIC_AT] as i8;
        if magic != MAGIC_V2 {
            return Err(LogError::CorruptRecord(format!(
                "record batch magic is {magic}, only v2 (magic 2) is supported"
            )));
        }
        let batch_length = read_i32(buf, BATCH_LENGTH_AT);
        if batch_length < MIN_BATCH_LENGTH {
            return Err(LogError::CorruptRecord(format!(
                "batchLength {batch_length} is shorter than the {MIN_BATCH_LENGTH}-byte header"
            )));
        }
        Ok(Self {
            base_offset: read_i64(buf, BASE_OFFSET_AT),
            batch_length,
            partition_leader_epoch: read_i32(buf, PARTITION_LEADER_EPOCH_AT),
            magic,
            crc: read_i32(buf, CRC_AT) as u32,
            attributes: read_i16(buf, ATTRIBUTES_AT),
            last_offset_delta: read_i32(buf, LAST_OFFSET_DELTA_AT),
            base_timestamp: read_i64(buf, BASE_TIMESTAMP_AT),
            max_timestamp: read_i64(buf, MAX_TIMESTAMP_AT),
            producer_id: read_i64(buf, PRODUCER_ID_AT),
            producer_epoch: read_i16(buf, PRODUCER_EPOCH_AT),
            base_sequence: read_i32(buf, BASE_SEQUENCE_AT),
            record_count: read_i32(buf, RECORD_COUNT_AT),
        })
    }

    /// Whole batch size on disk, log overhead included.
    pub fn size_bytes(&self) -> usize {
        debug_assert!(
            self.batch_length >= MIN_BATCH_LENGTH,
            "parse() checked the length"
        );
        LOG_OVERHEAD_BYTES + self.batch_length as usize
    }

    /// Offset of the batch's last record (saturating: the header may come from outside).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// The offset right after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// Compression codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression_codec(&self) -> u8 {
        (self.attributes & COMPRESSION_CODEC_MASK) as u8
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

/// Checks the CRC-32C of a whole batch (bytes 21..end against the stored value).
pub fn verify_crc(batch: &[u8]) -> Result<()> {
    if batch.len() < RECORD_BATCH_HEADER_BYTES {
        return Err(LogError::CorruptRecord(format!(
            "record batch of {} bytes is shorter than its header",
            batch.len()
        )));
    }
    let stored = read_i32(batch, CRC_AT) as u32;
    let computed = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    if stored != computed {
        return Err(LogError::CorruptRecord(format!(
            "CRC mismatch at base offset {}: stored {stored:#010x}, computed {computed:#010x}",
            read_i64(batch, BASE_OFFSET_AT)
        )));
    }
    Ok(())
}

/// Where the CRC-covered part of a batch starts, relative to the batch start.
pub(crate) const CRC_COVERED_FROM: usize = ATTRIBUTES_AT;

/// Reads `baseOffset` and `lastOffsetDelta` without a full parse (for walking stored data).
pub(crate) fn read_offsets(batch: &[u8]) -> Option<(i64, i32)> {
    (batch.len() >= RECORD_BATCH_HEADER_BYTES).then(|| {
        (
            read_i64(batch, BASE_OFFSET_AT),
            read_i32(batch, LAST_OFFSET_DELTA_AT),
        )
    })
}

/// Reads the whole-batch size from the 12-byte log overhead, if it is at least a header.
pub(crate) fn read_size_bytes(batch: &[u8]) -> Option<usize> {
    if batch.len() < LOG_OVERHEAD_BYTES {
        return None;
    }
    let batch_length = read_i32(batch, BATCH_LENGTH_AT);
    (batch_length >= MIN_BATCH_LENGTH).then(|| LOG_OVERHEAD_BYTES + batch_length as usize)
}

/// Overwrites `baseOffset`; it lies outside the CRC, so the CRC stays valid.
pub(crate) fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Overwrites `partitionLeaderEpoch`; it lies outside the CRC, so the CRC stays valid.
pub(crate) fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
        .copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch LogAppendTime with `now_ms` as its max timestamp and recomputes the CRC.
///
/// Like Kafka's `DefaultRecordBatch.setMaxTimestamp`, only `maxTimestamp` changes: record
/// timestamps are deltas from `baseTimestamp`, and consumers use the batch's max timestamp for
/// every record of a LogAppendTime batch.
/// `header` is updated to match.
pub(crate) fn set_log_append_time(batch: &mut [u8], header: &mut RecordBatchHeader, now_ms: i64) {
    let attributes = read_i16(batch, ATTRIBUTES_AT) | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    header.attributes = attributes;
    header.max_timestamp = now_ms;
    header.crc = crc;
}

/// Finishes a batch whose records section was replaced (`batch` is the whole new batch): sets
/// `batchLength` from its size, the compression codec bits to `codec`, and recomputes the CRC.
/// Every other header field is left as it was.
pub(crate) fn reseal_with_codec(batch: &mut [u8], codec: u8) -> Result<()> {
    if batch.len() < RECORD_BATCH_HEADER_BYTES {
        return Err(LogError::CorruptRecord(format!(
            "record batch of {} bytes is shorter than its header",
            batch.len()
        )));
    }
    let batch_length = i32::try_from(batch.len() - LOG_OVERHEAD_BYTES).map_err(|_| {
        LogError::InvalidRecord(format!("a batch of {} bytes is too large", batch.len()))
    })?;
    batch[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = (read_i16(batch, ATTRIBUTES_AT) & !COMPRESSION_CODEC_MASK)
        | (i16::from(codec) & COMPRESSION_CODEC_MASK);
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// One batch found in a buffer by [`batches`].
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// Offset of the batch within the buffer.
    pub position: usize,
    pub header: RecordBatchHeader,
    /// The whole batch, log overhead included.
    pub bytes: &'a [u8],
}

/// Walks the batches of a buffer of concatenated v2 batches (a Produce request's records).
/// Yields an error and stops at the first batch that is malformed or does not fit; trailing
/// bytes shorter than a header are an error too, so a buffer is accepted only if it is whole.
/// CRCs are not checked here.
pub fn batches(buf: &[u8]) -> BatchIter<'_> {
    BatchIter {
        buf,
        position: 0,
        failed: false,
    }
}

/// Iterator returned by [`batches`].
#[derive(Debug)]
pub struct BatchIter<'a> {
    buf: &'a [u8],
    position: usize,
    failed: bool,
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<Batch<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position == self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.position..];
        let result = RecordBatchHeader::parse(rest).and_then(|header| {
            let size_bytes = header.size_bytes();
            if size_bytes > rest.len() {
                return Err(LogError::CorruptRecord(format!(
                    "batch at byte {} claims {size_bytes} bytes but only {} remain",
                    self.position,
                    rest.len()
                )));
            }
            Ok(Batch {
                position: self.position,
                header,
                bytes: &rest[..size_bytes],
            })
        });
        match &result {
            Ok(batch) => self.position += batch.bytes.len(),
            Err(_) => self.failed = true,
        }
        Some(result)
    }
}

fn read_i16(buf: &[u8], at: usize) -> i16 {
    let mut bytes = [0u8; 2];
    bytes.copy_from_slice(&buf[at..at + 2]);
    i16::from_be_bytes(bytes)
}

fn read_i32(buf: &[u8], at: usize) -> i32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(bytes)
}

fn read_i64(buf: &[u8], at: usize) -> i64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{BatchSpec, build_batch, build_batch_with};

    #[test]
    fn parses_a_built_batch() {
        let batch = build_batch(42, 1_000, &[b"a", b"bb", b"ccc"]);
        let header = RecordBatchHeader::parse(&batch).unwrap();
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.size_bytes(), batch.len());
        assert_eq!(header.magic, MAGIC_V2);
        assert_eq!(header.record_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.last_offset(), 44);
        assert_eq!(header.next_offset(), 45);
        assert_eq!(header.base_timestamp, 1_000);
        assert_eq!(header.max_timestamp, 1_002);
        assert_eq!(header.producer_id, -1);
        assert_eq!(header.timestamp_type(), TimestampType::CreateTime);
        assert!(!header.is_control() && !header.is_transactional());
        assert_eq!(header.compression_codec(), 0);
        verify_crc(&batch).unwrap();
    }

    #[test]
    fn short_buffer_and_bad_magic_and_short_length_are_corrupt() {
        let batch = build_batch(0, 0, &[b"x"]);
        assert!(matches!(
            RecordBatchHeader::parse(&batch[..60]),
            Err(LogError::CorruptRecord(_))
        ));

        let mut bad_magic = batch.clone();
        bad_magic[MAGIC_AT] = 1;
        assert!(matches!(
            RecordBatchHeader::parse(&bad_magic),
            Err(LogError::CorruptRecord(_))
        ));

        let mut short_length = batch.clone();
        short_length[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&48i32.to_be_bytes());
        assert!(matches!(
            RecordBatchHeader::parse(&short_length),
            Err(LogError::CorruptRecord(_))
        ));

        let mut negative = batch;
        negative[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(
            RecordBatchHeader::parse(&negative),
            Err(LogError::CorruptRecord(_))
        ));
    }

    #[test]
    fn crc_detects_a_flipped_payload_byte_but_not_offset_or_epoch_changes() {
        let mut batch = build_batch(0, 5, &[b"hello", b"world"]);
        set_base_offset(&mut batch, 1_234);
        set_partition_leader_epoch(&mut batch, 7);
        verify_crc(&batch).unwrap();
        let header = RecordBatchHeader::parse(&batch).unwrap();
        assert_eq!(
            (header.base_offset, header.partition_leader_epoch),
            (1_234, 7)
        );

        let last = batch.len() - 3;
        batch[last] ^= 0x40;
        assert!(matches!(
            verify_crc(&batch),
            Err(LogError::CorruptRecord(_))
        ));
    }

    #[test]
    fn log_append_time_sets_attribute_and_max_timestamp_with_a_valid_crc() {
        let mut batch = build_batch(0, 5, &[b"a", b"b"]);
        let mut updated = RecordBatchHeader::parse(&batch).unwrap();
        set_log_append_time(&mut batch, &mut updated, 99_000);
        verify_crc(&batch).unwrap();
        let header = RecordBatchHeader::parse(&batch).unwrap();
        assert_eq!(header, updated);
        assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(header.max_timestamp, 99_000);
        assert_eq!(header.base_timestamp, 5);
    }

    #[test]
    fn iterates_concatenated_batches() {
        let mut buf = build_batch(0, 0, &[b"a"]);
        let second = build_batch_with(&BatchSpec {
            base_offset: 1,
            ..BatchSpec::new(&[b"b", b"c"])
        });
        buf.extend_from_slice(&second);
        let found: Vec<_> = batches(&buf).map(|b| b.unwrap()).collect();
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].position, buf.len() - second.len());
        assert_eq!(found[1].bytes, &second[..]);
        assert_eq!(found[1].header.record_count, 2);
    }

    #[test]
    fn a_lying_length_is_an_error_not_an_allocation() {
        let mut buf = build_batch(0, 0, &[b"a"]);
        buf[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        let mut iter = batches(&buf);
        assert!(matches!(iter.next(), Some(Err(LogError::CorruptRecord(_)))));
        assert!(iter.next().is_none(), "the iterator stops after an error");
    }

    #[test]
    fn trailing_partial_batch_is_an_error() {
        let mut buf = build_batch(0, 0, &[b"a"]);
        buf.extend_from_slice(&[0u8; 20]);
        let results: Vec<_> = batches(&buf).collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(LogError::CorruptRecord(_))));
    }

    #[test]
    fn raw_readers_bound_their_input() {
        let batch = build_batch(9, 0, &[b"a", b"b"]);
        assert_eq!(read_offsets(&batch), Some((9, 1)));
        assert_eq!(read_offsets(&batch[..60]), None);
        assert_eq!(read_size_bytes(&batch), Some(batch.len()));
        assert_eq!(read_size_bytes(&batch[..11]), None);
        assert_eq!(read_size_bytes(&[0u8; 12]), None);
    }
}
