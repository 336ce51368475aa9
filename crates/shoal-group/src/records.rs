//! The records of `__consumer_offsets`, byte for byte as Kafka writes them, so the topic means
//! the same to Kafka's tools and a compacted key is always the same bytes.
//!
//! A key is an `int16` version (which is the record type) then the key struct; a value is an
//! `int16` version then the value struct; a null value is a tombstone. Written: key v1 +
//! value v3 for an offset commit (v1 for one with an expire time, which only v1 can hold, as
//! Kafka does), key v2 + value v3 for group metadata (Kafka 3.x/4.0's).
//! Read: offset values v0-v3 and group values v0-v3; other record types are skipped on load.
//! Non-flexible encoding: strings `int16` length (-1 null), bytes `int32` length, arrays
//! `int32` count. Every length is checked against what is left before it is used.
//!
//! KIP-848 consumer groups (record types 3-8) have their keys here too; their values are
//! flexible (compact lengths, tagged fields) and live in `consumer::records`.

use bytes::{BufMut, Bytes, BytesMut};

/// A key that does not decode (corrupt, or a record type this version does not know).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("__consumer_offsets record: {0}")]
pub struct RecordError(pub String);

type Result<T> = std::result::Result<T, RecordError>;

const OFFSET_COMMIT_KEY_V0: i16 = 0;
const OFFSET_COMMIT_KEY_V1: i16 = 1;
const GROUP_METADATA_KEY_V2: i16 = 2;
const OFFSET_COMMIT_VALUE_WRITTEN: i16 = 3;
/// The only offset value version with an expire timestamp (and without a leader epoch).
const OFFSET_COMMIT_VALUE_WITH_EXPIRY: i16 = 1;
const GROUP_METADATA_VALUE_WRITTEN: i16 = 3;
/// KIP-848 record types (Kafka's `CoordinatorRecordType`): the key's version is the type.
const CONSUMER_GROUP_METADATA_KEY: i16 = 3;
const CONSUMER_GROUP_PARTITION_METADATA_KEY: i16 = 4;
const CONSUMER_GROUP_MEMBER_METADATA_KEY: i16 = 5;
const CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY: i16 = 6;
const CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY: i16 = 7;
const CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY: i16 = 8;

/// A record's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordKey {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
    /// A consumer group's epoch (KIP-848).
    ConsumerGroup {
        group: String,
    },
    /// Kafka 3.7-4.0's subscription metadata of a consumer group: never written by Shoal (the
    /// group epoch record's metadata hash replaces it, as in Kafka 4.1), tombstoned on delete.
    ConsumerPartitionMetadata {
        group: String,
    },
    ConsumerMember {
        group: String,
        member: String,
    },
    ConsumerTargetAssignmentMetadata {
        group: String,
    },
    ConsumerTargetAssignmentMember {
        group: String,
        member: String,
    },
    ConsumerCurrentAssignment {
        group: String,
        member: String,
    },
}

impl RecordKey {
    pub fn group(&self) -> &str {
        match self {
            RecordKey::Offset { group, .. }
            | RecordKey::Group { group }
            | RecordKey::ConsumerGroup { group }
            | RecordKey::ConsumerPartitionMetadata { group }
            | RecordKey::ConsumerMember { group, .. }
            | RecordKey::ConsumerTargetAssignmentMetadata { group }
            | RecordKey::ConsumerTargetAssignmentMember { group, .. }
            | RecordKey::ConsumerCurrentAssignment { group, .. } => group,
        }
    }
}

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    /// -1 = none.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// When the offset expires, if its commit said (OffsetCommit v2-v4 `retention_time_ms`):
    /// then, whatever its group does — Kafka's rule for those versions. `None` = the group's
    /// `offsets.retention.minutes` rule.
    pub expire_timestamp_ms: Option<i64>,
}

/// One member in a stored group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    /// "" for none.
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// -1 = none.
    pub current_state_timestamp_ms: i64,
    pub members: Vec<StoredMember>,
}

pub fn encode_key(key: &RecordKey) -> Bytes {
    let mut out = BytesMut::new();
    match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => {
            out.put_i16(OFFSET_COMMIT_KEY_V1);
            put_string(&mut out, group);
            put_string(&mut out, topic);
            out.put_i32(*partition);
        }
        RecordKey::Group { group } => {
            out.put_i16(GROUP_METADATA_KEY_V2);
            put_string(&mut out, group);
        }
        RecordKey::ConsumerGroup { group } => {
            out.put_i16(CONSUMER_GROUP_METADATA_KEY);
            put_string(&mut out, group);
        }
        RecordKey::ConsumerPartitionMetadata { group } => {
            out.put_i16(CONSUMER_GROUP_PARTITION_METADATA_KEY);
            put_string(&mut out, group);
        }
        RecordKey::ConsumerMember { group, member } => {
            out.put_i16(CONSUMER_GROUP_MEMBER_METADATA_KEY);
            put_string(&mut out, group);
            put_string(&mut out, member);
        }
        RecordKey::ConsumerTargetAssignmentMetadata { group } => {
            out.put_i16(CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY);
            put_string(&mut out, group);
        }
        RecordKey::ConsumerTargetAssignmentMember { group, member } => {
            out.put_i16(CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY);
            put_string(&mut out, group);
            put_string(&mut out, member);
        }
        RecordKey::ConsumerCurrentAssignment { group, member } => {
            out.put_i16(CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY);
            put_string(&mut out, group);
            put_string(&mut out, member);
        }
    }
    out.freeze()
}

pub fn encode_offset_value(value: &OffsetValue) -> Bytes {
    let mut out = BytesMut::new();
    match value.expire_timestamp_ms {
        Some(expire_timestamp_ms) => {
            out.put_i16(OFFSET_COMMIT_VALUE_WITH_EXPIRY);
            out.put_i64(value.offset);
            put_string(&mut out, &value.metadata);
            out.put_i64(value.commit_timestamp_ms);
            out.put_i64(expire_timestamp_ms);
        }
        None => {
            out.put_i16(OFFSET_COMMIT_VALUE_WRITTEN);
            out.put_i64(value.offset);
            out.put_i32(value.leader_epoch);
            put_string(&mut out, &value.metadata);
            out.put_i64(value.commit_timestamp_ms);
        }
    }
    out.freeze()
}

pub fn encode_group_value(value: &GroupValue) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(GROUP_METADATA_VALUE_WRITTEN);
    put_string(&mut out, &value.protocol_type);
    out.put_i32(value.generation);
    put_nullable_string(&mut out, value.protocol.as_deref());
    put_nullable_string(&mut out, value.leader.as_deref());
    out.put_i64(value.current_state_timestamp_ms);
    out.put_i32(i32::try_from(value.members.len()).unwrap_or(i32::MAX));
    for m in &value.members {
        put_string(&mut out, &m.member_id);
        put_nullable_string(&mut out, m.group_instance_id.as_deref());
        put_string(&mut out, &m.client_id);
        put_string(&mut out, &m.client_host);
        out.put_i32(m.rebalance_timeout_ms);
        out.put_i32(m.session_timeout_ms);
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out.freeze()
}

/// `Ok(None)` for a record type this version does not handle (skipped on load).
pub fn decode_key(bytes: &[u8]) -> Result<Option<RecordKey>> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    let key = match version {
        OFFSET_COMMIT_KEY_V0 | OFFSET_COMMIT_KEY_V1 => RecordKey::Offset {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
        },
        GROUP_METADATA_KEY_V2 => RecordKey::Group { group: r.string()? },
        CONSUMER_GROUP_METADATA_KEY => RecordKey::ConsumerGroup { group: r.string()? },
        CONSUMER_GROUP_PARTITION_METADATA_KEY => {
            RecordKey::ConsumerPartitionMetadata { group: r.string()? }
        }
        CONSUMER_GROUP_MEMBER_METADATA_KEY => RecordKey::ConsumerMember {
            group: r.string()?,
            member: r.string()?,
        },
        CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA_KEY => {
            RecordKey::ConsumerTargetAssignmentMetadata { group: r.string()? }
        }
        CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER_KEY => RecordKey::ConsumerTargetAssignmentMember {
            group: r.string()?,
            member: r.string()?,
        },
        CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT_KEY => RecordKey::ConsumerCurrentAssignment {
            group: r.string()?,
            member: r.string()?,
        },
        _ => return Ok(None),
    };
    Ok(Some(key))
}

pub fn decode_offset_value(bytes: &[u8]) -> Result<OffsetValue> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = r.i64()?;
    // -1 is Kafka's "no expire timestamp".
    let expire_timestamp_ms = if version == OFFSET_COMMIT_VALUE_WITH_EXPIRY {
        Some(r.i64()?).filter(|t| *t >= 0)
    } else {
        None
    };
    if !(0..=3).contains(&version) {
        return Err(RecordError(format!(
            "offset value version {version} is not supported"
        )));
    }
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
        expire_timestamp_ms,
    })
}

pub fn decode_group_value(bytes: &[u8]) -> Result<GroupValue> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(RecordError(format!(
            "group value version {version} is not supported"
        )));
    }
    let protocol_type = r.string()?;
    let generation = r.i32()?;
    let protocol = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let current_state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
    let count = r.count()?;
    let mut members = Vec::with_capacity(count.min(r.remaining() / 16));
    for _ in 0..count {
        let member_id = r.string()?;
        let group_instance_id = if version >= 3 {
            r.nullable_string()?
        } else {
            None
        };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout_ms = r.i32()?;
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        members.push(StoredMember {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

pub(crate) fn put_string(out: &mut BytesMut, s: &str) {
    let bytes = s.as_bytes();
    let len = i16::try_from(bytes.len()).unwrap_or(i16::MAX);
    out.put_i16(len);
    out.put_slice(&bytes[..len as usize]);
}

fn put_nullable_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.put_i16(-1),
    }
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
    out.put_slice(b);
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(RecordError(format!(
                "needs {n} bytes, {} left",
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn i16(&mut self) -> Result<i16> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn i64(&mut self) -> Result<i64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    pub(crate) fn nullable_string(&mut self) -> Result<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let bytes = self.take(len as usize)?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|e| RecordError(format!("string is not UTF-8: {e}")))
    }

    pub(crate) fn string(&mut self) -> Result<String> {
        self.nullable_string()?
            .ok_or_else(|| RecordError("a non-nullable string is null".to_string()))
    }

    pub(crate) fn bytes(&mut self) -> Result<Bytes> {
        let len = self.i32()?;
        let len = usize::try_from(len).map_err(|_| RecordError(format!("bytes length {len}")))?;
        Ok(Bytes::copy_from_slice(self.take(len)?))
    }

    pub(crate) fn count(&mut self) -> Result<usize> {
        let n = self.i32()?;
        usize::try_from(n).map_err(|_| RecordError(format!("array count {n}")))
    }

    pub(crate) fn i8(&mut self) -> Result<i8> {
        Ok(i8::from_be_bytes([self.take(1)?[0]]))
    }

    /// An unsigned varint of at most 32 bits (flexible versions' lengths and counts).
    pub(crate) fn uvarint(&mut self) -> Result<u32> {
        let mut value: u32 = 0;
        for shift in (0..35).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError("varint longer than 5 bytes".to_string()))
    }

    /// A compact length (`n + 1`, 0 = null), checked against the bytes left at `min_size`
    /// bytes per element, so a lying length cannot make the caller allocate.
    fn compact_len(&mut self, min_size: usize) -> Result<Option<usize>> {
        let n = self.uvarint()?;
        let Some(len) = n.checked_sub(1) else {
            return Ok(None);
        };
        let len = len as usize;
        if len.saturating_mul(min_size) > self.remaining() {
            return Err(RecordError(format!(
                "compact length {len} but {} bytes left",
                self.remaining()
            )));
        }
        Ok(Some(len))
    }

    pub(crate) fn compact_nullable_string(&mut self) -> Result<Option<String>> {
        let Some(len) = self.compact_len(1)? else {
            return Ok(None);
        };
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|e| RecordError(format!("string is not UTF-8: {e}")))
    }

    pub(crate) fn compact_string(&mut self) -> Result<String> {
        self.compact_nullable_string()?
            .ok_or_else(|| RecordError("a non-nullable string is null".to_string()))
    }

    /// A non-null compact array's element count; each element takes at least `min_size` bytes.
    pub(crate) fn compact_count(&mut self, min_size: usize) -> Result<usize> {
        self.compact_len(min_size)?
            .ok_or_else(|| RecordError("a non-nullable array is null".to_string()))
    }

    pub(crate) fn uuid(&mut self) -> Result<uuid::Uuid> {
        let b = self.take(16)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Ok(uuid::Uuid::from_bytes(a))
    }

    /// A tagged-field section: each field handed to `on_tag` (tag, its bytes); unknown ones
    /// are for it to ignore, as a newer writer's fields are.
    pub(crate) fn tagged_fields(
        &mut self,
        mut on_tag: impl FnMut(u32, &mut Reader<'a>) -> Result<()>,
    ) -> Result<()> {
        let count = self.uvarint()?;
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            let mut field = Reader::new(self.take(size)?);
            on_tag(tag, &mut field)?;
        }
        Ok(())
    }
}

pub(crate) fn put_uvarint(out: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// `len + 1`, saturated: a length past `u32::MAX - 1` cannot occur (group ids, member ids and
/// topic names are bounded far below).
fn compact_len_of(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX - 1).saturating_add(1)
}

pub(crate) fn put_compact_nullable_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        None => put_uvarint(out, 0),
        Some(s) => {
            put_uvarint(out, compact_len_of(s.len()));
            out.put_slice(s.as_bytes());
        }
    }
}

pub(crate) fn put_compact_string(out: &mut BytesMut, s: &str) {
    put_compact_nullable_string(out, Some(s));
}

pub(crate) fn put_compact_count(out: &mut BytesMut, n: usize) {
    put_uvarint(out, compact_len_of(n));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_records_round_trip_in_kafkas_layout() {
        let key = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        let bytes = encode_key(&key);
        // version 1, "g", "t", partition 3
        assert_eq!(&bytes[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3][..]);
        assert_eq!(decode_key(&bytes).unwrap(), Some(key));
        let value = OffsetValue {
            offset: 42,
            leader_epoch: 7,
            metadata: "meta".into(),
            commit_timestamp_ms: 1_000,
            expire_timestamp_ms: None,
        };
        let encoded = encode_offset_value(&value);
        assert_eq!(&encoded[..2], &[0, 3]);
        assert_eq!(decode_offset_value(&encoded).unwrap(), value);
    }

    #[test]
    fn an_offset_with_an_expire_time_is_written_as_value_v1() {
        let value = OffsetValue {
            offset: 42,
            leader_epoch: -1,
            metadata: "meta".into(),
            commit_timestamp_ms: 1_000,
            expire_timestamp_ms: Some(61_000),
        };
        let encoded = encode_offset_value(&value);
        // v1, offset 42, "meta", commit 1000, expire 61000: Kafka's layout, no leader epoch.
        let mut expected = BytesMut::new();
        expected.put_i16(1);
        expected.put_i64(42);
        put_string(&mut expected, "meta");
        expected.put_i64(1_000);
        expected.put_i64(61_000);
        assert_eq!(encoded, expected.freeze());
        assert_eq!(decode_offset_value(&encoded).unwrap(), value);
    }

    #[test]
    fn older_offset_values_decode() {
        // v1: offset, metadata, commit ts, expire ts.
        let mut v1 = BytesMut::new();
        v1.put_i16(1);
        v1.put_i64(5);
        put_string(&mut v1, "m");
        v1.put_i64(10);
        v1.put_i64(20);
        let decoded = decode_offset_value(&v1).unwrap();
        assert_eq!((decoded.offset, decoded.leader_epoch), (5, -1));
        assert_eq!(decoded.expire_timestamp_ms, Some(20));
        let mut v9 = BytesMut::new();
        v9.put_i16(9);
        v9.put_i64(5);
        assert!(decode_offset_value(&v9).is_err());
    }

    #[test]
    fn group_records_round_trip() {
        let value = GroupValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 99,
            members: vec![StoredMember {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let bytes = encode_group_value(&value);
        assert_eq!(decode_group_value(&bytes).unwrap(), value);
        let key = RecordKey::Group { group: "g".into() };
        assert_eq!(decode_key(&encode_key(&key)).unwrap(), Some(key));
    }

    #[test]
    fn unknown_types_are_skipped_and_garbage_is_an_error() {
        assert_eq!(decode_key(&[0, 9, 0, 0]).unwrap(), None);
        assert!(decode_key(&[0]).is_err());
        assert!(
            decode_key(&[0, 1, 0, 200, b'x']).is_err(),
            "length past the end"
        );
        assert!(decode_group_value(&[0, 3, 0, 0, 0, 0, 0, 1, 255, 255, 255, 255]).is_err());
        // A huge member count cannot make the decoder allocate: it fails on the data.
        let mut lying = BytesMut::new();
        lying.put_i16(3);
        put_string(&mut lying, "consumer");
        lying.put_i32(1);
        lying.put_i16(-1);
        lying.put_i16(-1);
        lying.put_i64(0);
        lying.put_i32(i32::MAX);
        assert!(decode_group_value(&lying).is_err());
    }
}
