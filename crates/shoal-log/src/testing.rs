//! Builders and a decoder for uncompressed v2 record batches, for tests.
//!
//! Built by hand from the protocol layout (`kafka-clients.md` §4) rather than with the
//! `kafka-protocol` crate, so `shoal-log` stays free of protocol code and its tests check its
//! own header parsing against an independent writer. Enabled in this crate's tests and, for
//! other crates, with the `testing` feature.

use crate::batch::{MAGIC_V2, RECORD_BATCH_HEADER_BYTES, RecordBatchHeader};
use crate::config::TimestampType;

/// One record to put in a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestRecord<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// Added to the batch's base timestamp.
    pub timestamp_delta_ms: i64,
}

/// Everything `build_batch_with` writes into a batch header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchSpec<'a> {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    pub base_timestamp_ms: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// Attribute bits; the compression bits must stay 0 (records are written uncompressed).
    pub attributes: i16,
    pub records: Vec<TestRecord<'a>>,
}

impl<'a> BatchSpec<'a> {
    /// A non-idempotent batch at offset 0, timestamp 0, of records with null keys whose
    /// timestamp deltas are 0, 1, 2, ….
    pub fn new(values: &[&'a [u8]]) -> Self {
        let records = values
            .iter()
            .zip(0i64..)
            .map(|(value, delta)| TestRecord {
                key: None,
                value: Some(value),
                timestamp_delta_ms: delta,
            })
            .collect();
        Self {
            base_offset: 0,
            partition_leader_epoch: -1,
            base_timestamp_ms: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            attributes: 0,
            records,
        }
    }
}

/// A valid batch of `values` (null keys) at `base_offset`; record `i` has timestamp
/// `base_timestamp_ms + i`, so the batch's max timestamp is `base_timestamp_ms + len - 1`.
pub fn build_batch(base_offset: i64, base_timestamp_ms: i64, values: &[&[u8]]) -> Vec<u8> {
    build_batch_with(&BatchSpec {
        base_offset,
        base_timestamp_ms,
        ..BatchSpec::new(values)
    })
}

/// A valid batch as described by `spec`, with a correct CRC-32C.
///
/// # Panics
/// If `spec` has no records or sets compression bits (a test bug, not input).
pub fn build_batch_with(spec: &BatchSpec<'_>) -> Vec<u8> {
    assert!(
        !spec.records.is_empty(),
        "a v2 batch holds at least one record"
    );
    assert_eq!(
        spec.attributes & 0x07,
        0,
        "build_batch_with writes uncompressed records"
    );
    let mut records = Vec::new();
    for (record, offset_delta) in spec.records.iter().zip(0i64..) {
        records.extend_from_slice(&encode_record(offset_delta, record, &[]));
    }
    let max_delta = spec
        .records
        .iter()
        .map(|r| r.timestamp_delta_ms)
        .max()
        .unwrap_or(0);
    let count = spec.records.len() as i32;
    let mut batch = Vec::with_capacity(RECORD_BATCH_HEADER_BYTES + records.len());
    batch.extend_from_slice(&spec.base_offset.to_be_bytes());
    let batch_length = (RECORD_BATCH_HEADER_BYTES - 12 + records.len()) as i32;
    batch.extend_from_slice(&batch_length.to_be_bytes());
    batch.extend_from_slice(&spec.partition_leader_epoch.to_be_bytes());
    batch.push(MAGIC_V2 as u8);
    batch.extend_from_slice(&[0u8; 4]); // CRC, filled below
    batch.extend_from_slice(&spec.attributes.to_be_bytes());
    batch.extend_from_slice(&(count - 1).to_be_bytes());
    batch.extend_from_slice(&spec.base_timestamp_ms.to_be_bytes());
    batch.extend_from_slice(&(spec.base_timestamp_ms + max_delta).to_be_bytes());
    batch.extend_from_slice(&spec.producer_id.to_be_bytes());
    batch.extend_from_slice(&spec.producer_epoch.to_be_bytes());
    batch.extend_from_slice(&spec.base_sequence.to_be_bytes());
    batch.extend_from_slice(&count.to_be_bytes());
    batch.extend_from_slice(&records);
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// One record's bytes, length prefix included, at `offset_delta`, with `headers` (key, value).
pub fn encode_record(
    offset_delta: i64,
    record: &TestRecord<'_>,
    headers: &[(&[u8], Option<&[u8]>)],
) -> Vec<u8> {
    let mut body = vec![0u8]; // record attributes, unused
    put_varlong(&mut body, record.timestamp_delta_ms);
    put_varlong(&mut body, offset_delta);
    put_bytes(&mut body, record.key);
    put_bytes(&mut body, record.value);
    put_varlong(&mut body, headers.len() as i64);
    for (key, value) in headers {
        put_bytes(&mut body, Some(key));
        put_bytes(&mut body, *value);
    }
    let mut out = Vec::with_capacity(body.len() + 5);
    put_varlong(&mut out, body.len() as i64);
    out.extend_from_slice(&body);
    out
}

/// One record read back by [`decode_records`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedRecord {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Decodes the records of one uncompressed v2 batch (header counts must match the body).
/// For a LogAppendTime batch every record gets the batch's max timestamp, as consumers do.
pub fn decode_records(batch: &[u8]) -> Result<Vec<DecodedRecord>, String> {
    let header = RecordBatchHeader::parse(batch).map_err(|e| e.to_string())?;
    if header.size_bytes() != batch.len() {
        return Err(format!(
            "batch says {} bytes, buffer has {}",
            header.size_bytes(),
            batch.len()
        ));
    }
    if header.compression_codec() != 0 {
        return Err("compressed batches are not supported by the test decoder".to_owned());
    }
    let mut input = &batch[RECORD_BATCH_HEADER_BYTES..];
    let mut decoded = Vec::new();
    for _ in 0..header.record_count.max(0) {
        let length = usize::try_from(get_varlong(&mut input)?).map_err(|_| "negative length")?;
        let mut body = take(&mut input, length)?;
        take(&mut body, 1)?; // record attributes
        let timestamp_delta = get_varlong(&mut body)?;
        let offset_delta = get_varlong(&mut body)?;
        let key = get_bytes(&mut body)?;
        let value = get_bytes(&mut body)?;
        let timestamp_ms = match header.timestamp_type() {
            TimestampType::LogAppendTime => header.max_timestamp,
            TimestampType::CreateTime => header.base_timestamp + timestamp_delta,
        };
        decoded.push(DecodedRecord {
            offset: header.base_offset + offset_delta,
            timestamp_ms,
            key,
            value,
        });
    }
    if !input.is_empty() {
        return Err(format!(
            "{} bytes left after {} records",
            input.len(),
            header.record_count
        ));
    }
    Ok(decoded)
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varlong(out, -1),
        Some(bytes) => {
            put_varlong(out, bytes.len() as i64);
            out.extend_from_slice(bytes);
        }
    }
}

fn get_varlong(input: &mut &[u8]) -> Result<i64, String> {
    let mut zigzag = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *take(input, 1)?.first().ok_or("empty")?;
        zigzag |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((zigzag >> 1) as i64 ^ -((zigzag & 1) as i64));
        }
    }
    Err("varint longer than 10 bytes".to_owned())
}

fn get_bytes(input: &mut &[u8]) -> Result<Option<Vec<u8>>, String> {
    let length = get_varlong(input)?;
    if length < 0 {
        return Ok(None);
    }
    let length = usize::try_from(length).map_err(|_| "length overflow")?;
    Ok(Some(take(input, length)?.to_vec()))
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if input.len() < n {
        return Err(format!("needed {n} bytes, {} left", input.len()));
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_keys_values_and_timestamps() {
        let spec = BatchSpec {
            base_offset: 100,
            base_timestamp_ms: 1_000,
            records: vec![
                TestRecord {
                    key: Some(b"k1"),
                    value: Some(b"v1"),
                    timestamp_delta_ms: 0,
                },
                TestRecord {
                    key: None,
                    value: None,
                    timestamp_delta_ms: 300,
                },
                TestRecord {
                    key: Some(b""),
                    value: Some(&[7u8; 200]),
                    timestamp_delta_ms: 5,
                },
            ],
            ..BatchSpec::new(&[])
        };
        let batch = build_batch_with(&spec);
        let header = RecordBatchHeader::parse(&batch).unwrap();
        assert_eq!(header.max_timestamp, 1_300);
        let records = decode_records(&batch).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(
            records[1],
            DecodedRecord {
                offset: 101,
                timestamp_ms: 1_300,
                key: None,
                value: None
            }
        );
        assert_eq!(records[2].value.as_deref(), Some(&[7u8; 200][..]));
        assert_eq!(records[2].offset, 102);
    }

    #[test]
    fn varlongs_round_trip_extremes() {
        for value in [0, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, 300, -300] {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            let mut input = &out[..];
            assert_eq!(get_varlong(&mut input).unwrap(), value);
            assert!(input.is_empty());
        }
    }
}
