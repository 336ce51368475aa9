//! Walking the records inside an (uncompressed) v2 batch: where each record's bytes are, its
//! offset delta, its key, and whether it is a tombstone.
//!
//! The leader's validator walks every produced batch with it (in place when uncompressed), and
//! the cleaner walks the batches it compacts. A record is `length varint, attributes i8,
//! timestampDelta varlong, offsetDelta varint, keyLength varint, key, valueLength varint,
//! value, headerCount varint, headers...`; the varints are zigzag (protobuf sint). Every length
//! is checked against the bytes present before it is used, and nothing is copied.

use crate::error::{LogError, Result};

/// One record of a batch's records section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The whole record, length prefix included: what a rewritten batch copies.
    pub bytes: &'a [u8],
    /// Milliseconds from the batch's `baseTimestamp`.
    pub timestamp_delta_ms: i64,
    pub offset_delta: i32,
    /// `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// `None` for a null value (a tombstone).
    pub value: Option<&'a [u8]>,
    /// A null value (a tombstone).
    pub is_tombstone: bool,
}

/// The records of one whole stored batch (decompressing at most
/// `compression::MAX_DECOMPRESSED_BYTES`); the returned buffer holds the records section the
/// views point into.
pub fn decompressed_section(batch: &[u8]) -> Result<Vec<u8>> {
    let header = crate::batch::RecordBatchHeader::parse(batch)?;
    let compressed = batch
        .get(crate::batch::RECORD_BATCH_HEADER_BYTES..header.size_bytes())
        .ok_or_else(|| bad("a batch shorter than its length".to_string()))?;
    crate::compression::decompress(
        header.compression_codec(),
        compressed,
        crate::compression::MAX_DECOMPRESSED_BYTES,
    )
}

/// The `count` records of `section` (a batch's bytes after its 61-byte header, decompressed).
pub fn records(section: &[u8], count: usize) -> Result<Vec<RecordView<'_>>> {
    let mut out = Vec::with_capacity(count.min(section.len() / 7 + 1));
    walk(section, count, |_, record| {
        out.push(record);
        Ok(())
    })?;
    Ok(out)
}

/// Calls `f` with each of the `count` records of `section` and its index, in order, without
/// copying (Kafka's `DefaultRecord.readFrom`): every record's fields, headers included, must
/// fill exactly the bytes its length varint claims, and the records must fill `section`
/// exactly. Stops at `f`'s first error.
pub fn walk<'a>(
    section: &'a [u8],
    count: usize,
    mut f: impl FnMut(usize, RecordView<'a>) -> Result<()>,
) -> Result<()> {
    let mut at = 0;
    for index in 0..count {
        if at == section.len() {
            return Err(bad(format!(
                "the batch claims {count} records but holds {index}"
            )));
        }
        let record = read_record(section, &mut at)?;
        f(index, record)?;
    }
    if at != section.len() {
        return Err(bad(format!(
            "{} bytes follow the batch's {count} records",
            section.len() - at
        )));
    }
    Ok(())
}

/// One record at `*at`; moves `*at` past it.
fn read_record<'a>(section: &'a [u8], at: &mut usize) -> Result<RecordView<'a>> {
    let start = *at;
    let length = zigzag(section, at)?;
    let end = usize::try_from(length)
        .ok()
        .and_then(|l| at.checked_add(l))
        .filter(|end| *end <= section.len())
        .ok_or_else(|| bad(format!("record length {length} runs past the batch")))?;
    let body = &section[..end];
    let body_start = *at;
    *at += 1; // attributes, unused in v2
    let timestamp_delta_ms = zigzag(body, at)?;
    let offset_delta = zigzag(body, at)?;
    let offset_delta = i32::try_from(offset_delta)
        .map_err(|_| bad(format!("offset delta {offset_delta} out of range")))?;
    let key = nullable(body, at)?;
    let value = nullable(body, at)?;
    let header_count = zigzag(body, at)?;
    if header_count < 0 {
        return Err(bad(format!(
            "invalid number of record headers {header_count}"
        )));
    }
    // Each header takes at least two bytes, so a lying count runs out of record first.
    for _ in 0..header_count {
        if nullable(body, at)?.is_none() {
            return Err(bad("a record header with a null key".to_string()));
        }
        nullable(body, at)?;
    }
    if *at != end {
        return Err(bad(format!(
            "record length {length} but its fields take {} bytes",
            *at - body_start
        )));
    }
    Ok(RecordView {
        bytes: &section[start..end],
        timestamp_delta_ms,
        offset_delta,
        key,
        value,
        is_tombstone: value.is_none(),
    })
}

/// A batch whose CRC holds but whose records do not parse was built wrong, not damaged on the
/// way: INVALID_RECORD, which clients do not retry (Kafka's `InvalidRecordException` from its
/// record iterator), where CORRUPT_MESSAGE would have them resend it forever.
fn bad(why: String) -> LogError {
    LogError::InvalidRecord(why)
}

/// A length-prefixed byte string; -1 is null.
fn nullable<'a>(buf: &'a [u8], at: &mut usize) -> Result<Option<&'a [u8]>> {
    let length = zigzag(buf, at)?;
    if length == -1 {
        return Ok(None);
    }
    let length = usize::try_from(length)
        .ok()
        .filter(|l| *l <= buf.len().saturating_sub(*at))
        .ok_or_else(|| bad(format!("field length {length} runs past the record")))?;
    let bytes = &buf[*at..*at + length];
    *at += length;
    Ok(Some(bytes))
}

/// A zigzag varint of at most 10 bytes.
fn zigzag(buf: &[u8], at: &mut usize) -> Result<i64> {
    let mut value: u64 = 0;
    for shift in (0..70).step_by(7) {
        let byte = *buf
            .get(*at)
            .ok_or_else(|| bad("a varint runs past the record".to_string()))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(bad("a varint is longer than 10 bytes".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{BatchSpec, TestRecord, build_batch_with};

    #[test]
    fn walks_the_records_of_a_built_batch() {
        let record = |key: Option<&'static [u8]>, value: Option<&'static [u8]>| TestRecord {
            key,
            value,
            timestamp_delta_ms: 0,
        };
        let batch = build_batch_with(&BatchSpec {
            records: vec![
                record(Some(b"k1"), Some(b"v1")),
                record(None, Some(b"v2")),
                record(Some(b"k3"), None),
            ],
            ..BatchSpec::new(&[b""])
        });
        let records = records(&batch[61..], 3).unwrap();
        let found: Vec<(i32, Option<&[u8]>, bool)> = records
            .iter()
            .map(|r| (r.offset_delta, r.key, r.is_tombstone))
            .collect();
        assert_eq!(
            found,
            vec![
                (0, Some(&b"k1"[..]), false),
                (1, None, false),
                (2, Some(&b"k3"[..]), true)
            ]
        );
        let total: usize = records.iter().map(|r| r.bytes.len()).sum();
        assert_eq!(total, batch.len() - 61);
    }

    #[test]
    fn lengths_past_the_end_are_corrupt() {
        let batch = build_batch_with(&BatchSpec::new(&[b"abc"]));
        let section = &batch[61..];
        assert!(records(section, 2).is_err(), "more records than present");
        assert!(
            records(&section[..section.len() - 1], 1).is_err(),
            "cut short"
        );
        assert!(records(&[0xff; 12], 1).is_err(), "endless varint");
        let mut extra = section.to_vec();
        extra.push(0);
        assert!(records(&extra, 1).is_err(), "trailing bytes");
    }
}
