//! The records of `__transaction_state`, byte for byte as Kafka writes them, so the topic means
//! the same to Kafka's tools and a compacted key is always the same bytes.
//!
//! A key is an `int16` version (0, the only one; it doubles as the coordinator record type)
//! then `TransactionLogKey` v0: the transactional id as a non-flexible string (`int16` length).
//! A value is an `int16` version then `TransactionLogValue`:
//!
//! - v0 (non-flexible; written when `transaction.version` is 0): `ProducerId` int64,
//!   `ProducerEpoch` int16, `TransactionTimeoutMs` int32, `TransactionStatus` int8 (the state's
//!   id), `TransactionPartitions` nullable array (`int32` count, -1 null) of { `Topic` string
//!   (`int16` length), `PartitionIds` array of int32 (`int32` count) }, `TransactionLastUpdate
//!   TimestampMs` int64, `TransactionStartTimestampMs` int64.
//! - v1 (flexible, KIP-890; written from `transaction.version` 1): the same fields with compact
//!   encodings (unsigned varint length + 1, 0 = null) and an empty tagged-field section after
//!   each partition entry, then the value's tagged fields: 0 `PreviousProducerId` int64, 1
//!   `NextProducerId` int64 (both default -1), 2 `ClientTransactionVersion` int16 (default 0),
//!   each written only when it differs from its default, in tag order.
//!
//! The partitions are null in an Empty state and ignored when reading one. Kafka groups the
//! partitions by topic in hash order; Shoal writes topics and partitions sorted, which Kafka
//! reads the same. A null value is a tombstone: the transactional id expired.
//!
//! Decoding never panics: every length and count is checked against the bytes left (and the
//! named limits below) before anything is allocated, unknown tagged fields are skipped, and a
//! value version this code does not know is its own error so a loader can skip the record.
//! As in Kafka, bytes after the last field of a known version are not read.

use std::collections::BTreeSet;
use std::fmt;

use crate::metadata::TopicPartition;
use crate::state::TransactionState;

/// The only key version (also the coordinator record type `TRANSACTION_LOG`).
pub const KEY_VERSION: i16 = 0;
/// The value versions this code reads and writes.
pub const VALUE_VERSION_V0: i16 = 0;
pub const VALUE_VERSION_V1: i16 = 1;

/// At most this many topics in one value; a larger count is corrupt, not allocated.
pub const MAX_TOPICS_PER_VALUE: usize = 100_000;
/// At most this many partition ids under one topic of a value.
pub const MAX_PARTITIONS_PER_TOPIC: usize = 1_000_000;
/// At most this many tagged fields in one tagged-field section.
pub const MAX_TAGGED_FIELDS: usize = 1_024;

const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
const TAG_NEXT_PRODUCER_ID: u32 = 1;
const TAG_CLIENT_TRANSACTION_VERSION: u32 = 2;
const DEFAULT_PRODUCER_ID: i64 = -1;
const DEFAULT_CLIENT_TRANSACTION_VERSION: i16 = 0;

/// Why a record does not encode or decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// A value version this code does not read (a loader skips the record, as Kafka does).
    UnknownValueVersion(i16),
    /// Truncated, corrupt or out of the limits.
    Malformed(String),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::UnknownValueVersion(v) => {
                write!(f, "__transaction_state value version {v} is not supported")
            }
            RecordError::Malformed(why) => write!(f, "__transaction_state record: {why}"),
        }
    }
}

impl std::error::Error for RecordError {}

type Result<T> = std::result::Result<T, RecordError>;

fn malformed<T>(why: impl Into<String>) -> Result<T> {
    Err(RecordError::Malformed(why.into()))
}

/// `TransactionLogValue`, with the partitions as a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionLogValue {
    pub producer_id: i64,
    /// v1 tag 0; -1 when absent (and always in v0).
    pub previous_producer_id: i64,
    /// v1 tag 1; -1 when absent.
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    pub transaction_timeout_ms: i32,
    pub state: TransactionState,
    /// Empty for an Empty state (written as null).
    pub partitions: BTreeSet<TopicPartition>,
    pub last_update_timestamp_ms: i64,
    pub start_timestamp_ms: i64,
    /// v1 tag 2, the `transaction.version` level the client used; 0 when absent.
    pub client_transaction_version: i16,
}

/// What one record of the topic says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnRecord {
    Value {
        transactional_id: String,
        value: TransactionLogValue,
    },
    /// The transactional id expired.
    Tombstone { transactional_id: String },
    /// A key version this code does not know: skipped on load.
    UnknownKeyVersion(i16),
}

pub fn encode_key(transactional_id: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.extend_from_slice(&KEY_VERSION.to_be_bytes());
    put_string(&mut out, transactional_id)?;
    Ok(out)
}

/// The transactional id of a key; `None` for a key version this code does not know.
pub fn decode_key(bytes: &[u8]) -> Result<Option<String>> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if version != KEY_VERSION {
        return Ok(None);
    }
    // Like Kafka, bytes after the fields of a known version are not read.
    Ok(Some(r.string()?))
}

/// An expired transactional id: its key and no value.
pub fn tombstone(transactional_id: &str) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
    Ok((encode_key(transactional_id)?, None))
}

/// Read one record (`value` `None` is a tombstone), as a loader does.
pub fn decode_record(key: &[u8], value: Option<&[u8]>) -> Result<TxnRecord> {
    let Some(transactional_id) = decode_key(key)? else {
        let mut r = Reader::new(key);
        return Ok(TxnRecord::UnknownKeyVersion(r.i16()?));
    };
    Ok(match value {
        None => TxnRecord::Tombstone { transactional_id },
        Some(bytes) => TxnRecord::Value {
            transactional_id,
            value: decode_value(bytes)?,
        },
    })
}

/// `version` is [`crate::TransactionVersion::log_value_version`] of the cluster.
pub fn encode_value(value: &TransactionLogValue, version: i16) -> Result<Vec<u8>> {
    let flexible = match version {
        VALUE_VERSION_V0 => false,
        VALUE_VERSION_V1 => true,
        other => return Err(RecordError::UnknownValueVersion(other)),
    };
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&value.producer_id.to_be_bytes());
    out.extend_from_slice(&value.producer_epoch.to_be_bytes());
    out.extend_from_slice(&value.transaction_timeout_ms.to_be_bytes());
    out.push(value.state.id().to_be_bytes()[0]);
    if value.state == TransactionState::Empty {
        if flexible {
            put_uvarint(&mut out, 0);
        } else {
            out.extend_from_slice(&(-1i32).to_be_bytes());
        }
    } else {
        let topics = group_by_topic(&value.partitions);
        put_count(&mut out, topics.len(), flexible)?;
        for (topic, ids) in &topics {
            if flexible {
                put_compact_string(&mut out, topic)?;
            } else {
                put_string(&mut out, topic)?;
            }
            put_count(&mut out, ids.len(), flexible)?;
            for id in ids {
                out.extend_from_slice(&id.to_be_bytes());
            }
            if flexible {
                put_uvarint(&mut out, 0); // the entry's tagged fields: none
            }
        }
    }
    out.extend_from_slice(&value.last_update_timestamp_ms.to_be_bytes());
    out.extend_from_slice(&value.start_timestamp_ms.to_be_bytes());
    if flexible {
        let mut tags: Vec<(u32, Vec<u8>)> = Vec::new();
        if value.previous_producer_id != DEFAULT_PRODUCER_ID {
            tags.push((
                TAG_PREVIOUS_PRODUCER_ID,
                value.previous_producer_id.to_be_bytes().to_vec(),
            ));
        }
        if value.next_producer_id != DEFAULT_PRODUCER_ID {
            tags.push((
                TAG_NEXT_PRODUCER_ID,
                value.next_producer_id.to_be_bytes().to_vec(),
            ));
        }
        if value.client_transaction_version != DEFAULT_CLIENT_TRANSACTION_VERSION {
            tags.push((
                TAG_CLIENT_TRANSACTION_VERSION,
                value.client_transaction_version.to_be_bytes().to_vec(),
            ));
        }
        put_uvarint(&mut out, tags.len() as u32);
        for (tag, data) in tags {
            put_uvarint(&mut out, tag);
            put_uvarint(&mut out, data.len() as u32);
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

pub fn decode_value(bytes: &[u8]) -> Result<TransactionLogValue> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    let flexible = match version {
        VALUE_VERSION_V0 => false,
        VALUE_VERSION_V1 => true,
        other => return Err(RecordError::UnknownValueVersion(other)),
    };
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let transaction_timeout_ms = r.i32()?;
    let status = r.i8()?;
    let state = TransactionState::from_id(status)
        .ok_or_else(|| RecordError::Malformed(format!("unknown transaction status {status}")))?;
    let mut partitions = BTreeSet::new();
    // Each topic entry takes at least: its string length, its id count, (flexible) its tags.
    let min_topic_bytes = if flexible { 3 } else { 6 };
    if let Some(topics) = r.nullable_count(flexible, MAX_TOPICS_PER_VALUE, min_topic_bytes)? {
        for _ in 0..topics {
            let topic = if flexible {
                r.compact_string()?
            } else {
                r.string()?
            };
            let ids = r
                .nullable_count(flexible, MAX_PARTITIONS_PER_TOPIC, 4)?
                .ok_or_else(|| RecordError::Malformed("null partition ids".to_string()))?;
            for _ in 0..ids {
                let id = r.i32()?;
                if state != TransactionState::Empty {
                    partitions.insert((topic.clone(), id));
                }
            }
            if flexible {
                r.skip_tagged_fields(|_, _| Ok(false))?;
            }
        }
    }
    let last_update_timestamp_ms = r.i64()?;
    let start_timestamp_ms = r.i64()?;
    let mut value = TransactionLogValue {
        producer_id,
        previous_producer_id: DEFAULT_PRODUCER_ID,
        next_producer_id: DEFAULT_PRODUCER_ID,
        producer_epoch,
        transaction_timeout_ms,
        state,
        partitions,
        last_update_timestamp_ms,
        start_timestamp_ms,
        client_transaction_version: DEFAULT_CLIENT_TRANSACTION_VERSION,
    };
    if flexible {
        r.skip_tagged_fields(|tag, data| {
            match tag {
                TAG_PREVIOUS_PRODUCER_ID => value.previous_producer_id = fixed_i64(data)?,
                TAG_NEXT_PRODUCER_ID => value.next_producer_id = fixed_i64(data)?,
                TAG_CLIENT_TRANSACTION_VERSION => {
                    let b: [u8; 2] = data.try_into().map_err(|_| {
                        RecordError::Malformed(format!("tag {tag} has {} bytes", data.len()))
                    })?;
                    value.client_transaction_version = i16::from_be_bytes(b);
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
    }
    Ok(value)
}

fn fixed_i64(data: &[u8]) -> Result<i64> {
    let b: [u8; 8] = data
        .try_into()
        .map_err(|_| RecordError::Malformed(format!("an int64 tag has {} bytes", data.len())))?;
    Ok(i64::from_be_bytes(b))
}

fn group_by_topic(partitions: &BTreeSet<TopicPartition>) -> Vec<(&str, Vec<i32>)> {
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in partitions {
        match topics.last_mut() {
            Some((t, ids)) if *t == topic.as_str() => ids.push(*partition),
            _ => topics.push((topic.as_str(), vec![*partition])),
        }
    }
    topics
}

fn put_string(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let len = i16::try_from(s.len())
        .map_err(|_| RecordError::Malformed(format!("a {}-byte string", s.len())))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_compact_string(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let len = i16::try_from(s.len())
        .map_err(|_| RecordError::Malformed(format!("a {}-byte string", s.len())))?;
    put_uvarint(out, len as u32 + 1);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_count(out: &mut Vec<u8>, n: usize, flexible: bool) -> Result<()> {
    let n = i32::try_from(n).map_err(|_| RecordError::Malformed(format!("{n} entries")))?;
    if flexible {
        put_uvarint(out, n as u32 + 1);
    } else {
        out.extend_from_slice(&n.to_be_bytes());
    }
    Ok(())
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return malformed(format!("needs {n} bytes, {} left", self.buf.len()));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn i8(&mut self) -> Result<i8> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Kafka's unsigned varint: at most 5 bytes for 32 bits.
    fn uvarint(&mut self) -> Result<u32> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.take(1)?[0];
            if i == 4 && b > 0x0f {
                return malformed("varint overflows 32 bits");
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        malformed("varint longer than 5 bytes")
    }

    fn utf8(bytes: &[u8]) -> Result<String> {
        String::from_utf8(bytes.to_vec())
            .map_err(|e| RecordError::Malformed(format!("string is not UTF-8: {e}")))
    }

    fn string(&mut self) -> Result<String> {
        let len = self.i16()?;
        let len = usize::try_from(len)
            .map_err(|_| RecordError::Malformed(format!("string length {len}")))?;
        Self::utf8(self.take(len)?)
    }

    fn compact_string(&mut self) -> Result<String> {
        let len = self.uvarint()?;
        let len = len
            .checked_sub(1)
            .ok_or_else(|| RecordError::Malformed("a non-nullable string is null".into()))?;
        if len > i16::MAX as u32 {
            return malformed(format!("string length {len}"));
        }
        Self::utf8(self.take(len as usize)?)
    }

    /// An array count (`None` = null), refused above `limit` or when `min_entry_bytes` each
    /// would not fit in what is left.
    fn nullable_count(
        &mut self,
        flexible: bool,
        limit: usize,
        min_entry_bytes: usize,
    ) -> Result<Option<usize>> {
        let count: i64 = if flexible {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i32()?)
        };
        if count < 0 {
            return if count == -1 {
                Ok(None)
            } else {
                malformed(format!("array count {count}"))
            };
        }
        let count = usize::try_from(count)
            .map_err(|_| RecordError::Malformed(format!("array count {count}")))?;
        if count > limit {
            return malformed(format!("{count} entries, the limit is {limit}"));
        }
        if count.saturating_mul(min_entry_bytes) > self.buf.len() {
            return malformed(format!("{count} entries in {} bytes", self.buf.len()));
        }
        Ok(Some(count))
    }

    /// A tagged-field section; `known(tag, data)` reads a tag it knows and answers whether it
    /// did; the others are skipped.
    fn skip_tagged_fields(
        &mut self,
        mut known: impl FnMut(u32, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let count = self.uvarint()? as usize;
        if count > MAX_TAGGED_FIELDS || count.saturating_mul(2) > self.buf.len() {
            return malformed(format!("{count} tagged fields"));
        }
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            let data = self.take(size)?;
            known(tag, data)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
