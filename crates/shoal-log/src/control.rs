//! Transaction markers: the control batches that end a transaction in a partition (Kafka's
//! `EndTransactionMarker` and `ControlRecordType`).
//!
//! A marker is a v2 batch with the transactional and control attribute bits, the producer's id
//! and epoch, base sequence -1 and one record whose key is `version i16 (0), type i16` and
//! whose value is `version i16 (0), coordinator_epoch i32`. [`build_marker_batch`] writes it
//! byte for byte as Kafka's `MemoryRecords.withEndTransactionMarker` does (base offset 0,
//! partition leader epoch -1, CreateTime, uncompressed; the leader's append assigns both), so
//! Kafka tools and clients read Shoal's markers as their own.
//!
//! Decoding is checked and bounded: every length is checked against the bytes present, a
//! compressed control batch decompresses to at most [`MAX_CONTROL_SECTION_BYTES`]. As in
//! Kafka, a key version above 0 is read as version 0 and a control type other than ABORT and
//! COMMIT (KRaft's LEADER_CHANGE, snapshot headers, …) is not a transaction marker: it is
//! skipped, not an error.

use crate::batch::{MAGIC_V2, RECORD_BATCH_HEADER_BYTES, RecordBatchHeader};
use crate::compression::{self, NONE};
use crate::error::{LogError, Result};
use crate::record_view::walk;

/// Kafka's `ControlRecordType` ids of the two transaction markers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum ControlType {
    Abort = 0,
    Commit = 1,
}

impl ControlType {
    /// The type id stored in the control record's key.
    pub fn id(self) -> i16 {
        self as i16
    }

    /// The marker type of a control record type id; `None` for any other control type.
    pub fn from_id(id: i16) -> Option<Self> {
        match id {
            0 => Some(Self::Abort),
            1 => Some(Self::Commit),
            _ => None,
        }
    }
}

/// Version of the control record key Shoal writes (Kafka's `CURRENT_CONTROL_RECORD_KEY_VERSION`).
pub const CONTROL_KEY_VERSION: i16 = 0;
/// Version of the end-transaction marker value (Kafka's `CURRENT_END_TXN_MARKER_VERSION`).
pub const END_TXN_MARKER_VERSION: i16 = 0;
/// Bytes of a control record key: version, type.
const CONTROL_KEY_BYTES: usize = 4;
/// Bytes of an end-transaction marker value: version, coordinator epoch.
const END_TXN_MARKER_VALUE_BYTES: usize = 6;
/// Most bytes a compressed control batch may expand to (a marker record is 17 bytes).
pub const MAX_CONTROL_SECTION_BYTES: usize = 64 << 10;
/// Kafka's `RecordBatch.NO_PARTITION_LEADER_EPOCH`; the append assigns the real one.
const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// Kafka's `RecordBatch.NO_SEQUENCE`: control batches carry no sequence.
pub const NO_SEQUENCE: i32 = -1;
/// Attributes of a marker batch: transactional (0x10) and control (0x20), CreateTime, no codec.
const MARKER_ATTRIBUTES: i16 = 0x10 | 0x20;

/// The v2 batch of one transaction marker, as Kafka writes it (see the module docs).
pub fn build_marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    control: ControlType,
    timestamp_ms: i64,
) -> Vec<u8> {
    let mut key = [0u8; CONTROL_KEY_BYTES];
    key[..2].copy_from_slice(&CONTROL_KEY_VERSION.to_be_bytes());
    key[2..].copy_from_slice(&control.id().to_be_bytes());
    let mut value = [0u8; END_TXN_MARKER_VALUE_BYTES];
    value[..2].copy_from_slice(&END_TXN_MARKER_VERSION.to_be_bytes());
    value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());

    // One record: attributes 0, timestamp delta 0, offset delta 0, key, value, no headers.
    // Every length here is below 64, so each varint is one byte (zigzag: 2n).
    let body_len = 1 + 1 + 1 + 1 + CONTROL_KEY_BYTES + 1 + END_TXN_MARKER_VALUE_BYTES + 1;
    let mut record = Vec::with_capacity(1 + body_len);
    record.push(zigzag_byte(body_len));
    record.extend_from_slice(&[0, 0, 0]);
    record.push(zigzag_byte(CONTROL_KEY_BYTES));
    record.extend_from_slice(&key);
    record.push(zigzag_byte(END_TXN_MARKER_VALUE_BYTES));
    record.extend_from_slice(&value);
    record.push(0);

    let mut batch = Vec::with_capacity(RECORD_BATCH_HEADER_BYTES + record.len());
    batch.extend_from_slice(&0i64.to_be_bytes());
    let batch_length = (RECORD_BATCH_HEADER_BYTES - 12 + record.len()) as i32;
    batch.extend_from_slice(&batch_length.to_be_bytes());
    batch.extend_from_slice(&NO_PARTITION_LEADER_EPOCH.to_be_bytes());
    batch.push(MAGIC_V2 as u8);
    batch.extend_from_slice(&[0u8; 4]); // CRC, filled below
    batch.extend_from_slice(&MARKER_ATTRIBUTES.to_be_bytes());
    batch.extend_from_slice(&0i32.to_be_bytes()); // lastOffsetDelta
    batch.extend_from_slice(&timestamp_ms.to_be_bytes()); // baseTimestamp
    batch.extend_from_slice(&timestamp_ms.to_be_bytes()); // maxTimestamp
    batch.extend_from_slice(&producer_id.to_be_bytes());
    batch.extend_from_slice(&producer_epoch.to_be_bytes());
    batch.extend_from_slice(&NO_SEQUENCE.to_be_bytes());
    batch.extend_from_slice(&1i32.to_be_bytes()); // recordCount
    batch.extend_from_slice(&record);
    let crc = crc32c::crc32c(&batch[crate::batch::CRC_COVERED_FROM..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// A small non-negative length as a one-byte zigzag varint.
fn zigzag_byte(n: usize) -> u8 {
    debug_assert!(n < 64, "one-byte varints only");
    (n as u8) << 1
}

/// The marker a whole control batch (`batch`, header included) carries: `Ok(None)` for a
/// control batch that is not a transaction marker (another control type, or a batch emptied by
/// compaction), an error for a batch that is not a control batch or whose record is malformed.
pub fn parse_marker(batch: &[u8]) -> Result<Option<(ControlType, i32)>> {
    let header = RecordBatchHeader::parse(batch)?;
    if !header.is_control() {
        return Err(LogError::InvalidRecord(format!(
            "batch at offset {} is not a control batch",
            header.base_offset
        )));
    }
    let packed = batch
        .get(RECORD_BATCH_HEADER_BYTES..header.size_bytes())
        .ok_or_else(|| {
            LogError::CorruptRecord(format!(
                "control batch at offset {} is shorter than its length",
                header.base_offset
            ))
        })?;
    if header.record_count < 1 {
        return Ok(None);
    }
    let decompressed;
    let section = if header.compression_codec() == NONE {
        packed
    } else {
        decompressed = compression::decompress(
            header.compression_codec(),
            packed,
            MAX_CONTROL_SECTION_BYTES,
        )?;
        &decompressed
    };
    let count = usize::try_from(header.record_count).unwrap_or(0);
    let mut first = None;
    walk(section, count, |index, record| {
        if index == 0 {
            first = Some((record.key, record.value));
        }
        Ok(())
    })?;
    let Some((key, value)) = first else {
        return Ok(None);
    };
    let key = key.ok_or_else(|| bad(&header, "a control record without a key"))?;
    let (key_version, type_id) = match key {
        [v0, v1, t0, t1, ..] => (
            i16::from_be_bytes([*v0, *v1]),
            i16::from_be_bytes([*t0, *t1]),
        ),
        _ => return Err(bad(&header, "a control record key shorter than 4 bytes")),
    };
    if key_version < 0 {
        return Err(bad(&header, "a control record key with a negative version"));
    }
    let Some(control) = ControlType::from_id(type_id) else {
        return Ok(None);
    };
    let value = value.ok_or_else(|| bad(&header, "a transaction marker without a value"))?;
    match value {
        [v0, v1, e0, e1, e2, e3, ..] => {
            if i16::from_be_bytes([*v0, *v1]) < 0 {
                return Err(bad(&header, "a transaction marker with a negative version"));
            }
            Ok(Some((control, i32::from_be_bytes([*e0, *e1, *e2, *e3]))))
        }
        _ => Err(bad(
            &header,
            "a transaction marker value shorter than 6 bytes",
        )),
    }
}

fn bad(header: &RecordBatchHeader, why: &str) -> LogError {
    LogError::InvalidRecord(format!(
        "control batch at offset {}: {why}",
        header.base_offset
    ))
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
