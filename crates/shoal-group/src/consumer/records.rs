//! The values of a KIP-848 consumer group's records in `__consumer_offsets`, in Kafka's
//! layout: each is version 0 of a flexible schema (compact strings and arrays, tagged fields
//! at the end of every struct), so the topic means the same to Kafka's tools and a newer
//! writer's tagged fields are skipped rather than refused.
//!
//! | key (type) | value | what |
//! |---|---|---|
//! | `ConsumerGroupMetadataKey` (3) | [`GroupEpochValue`] | the group epoch; tag 0 the subscribed topics' metadata hash (Kafka 4.1) |
//! | `ConsumerGroupMemberMetadataKey` (5) | [`MemberMetadataValue`] | a member's subscription and client |
//! | `ConsumerGroupTargetAssignmentMetadataKey` (6) | [`TargetAssignmentEpochValue`] | the epoch the target assignment was computed at |
//! | `ConsumerGroupTargetAssignmentMemberKey` (7) | an [`Assignment`] | a member's target partitions |
//! | `ConsumerGroupCurrentMemberAssignmentKey` (8) | [`CurrentAssignmentValue`] | what a member owns now, and its epoch |
//!
//! Record type 4 (the subscription metadata of Kafka 3.7-4.0) is never written: the metadata
//! hash replaces it. Its values are not read; its key is tombstoned when a group is deleted.

use bytes::{BufMut, Bytes, BytesMut};

use crate::consumer::assignor::Assignment;
use crate::records::{
    Reader, RecordError, put_compact_count, put_compact_nullable_string, put_compact_string,
    put_uvarint,
};

type Result<T> = std::result::Result<T, RecordError>;

/// The only value version of every consumer group record.
const VALUE_VERSION: i16 = 0;
/// `ConsumerGroupMetadataValue`'s tag of the metadata hash.
const METADATA_HASH_TAG: u32 = 0;
/// Bytes of the smallest partition list element: a uuid, an empty compact array, no tags.
const MIN_TOPIC_PARTITIONS_SIZE: usize = 16 + 1 + 1;

/// `ConsumerGroupMetadataValue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupEpochValue {
    pub epoch: i32,
    /// A hash of the subscribed topics' ids and partition counts: when it changes, the group
    /// epoch is bumped and partitions are assigned again. 0 = none.
    pub metadata_hash: i64,
}

/// `ConsumerGroupMemberMetadataValue`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadataValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    /// Tag 0: set while the member speaks the classic protocol (a group being migrated).
    pub classic: Option<ClassicMemberMetadata>,
}

/// `ConsumerGroupMemberMetadataValue.ClassicMemberMetadata`: what a classic member joined
/// with, kept so its SyncGroup can be answered and the group turned back into a classic one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassicMemberMetadata {
    pub session_timeout_ms: i32,
    /// (name, metadata) in the member's order of preference.
    pub supported_protocols: Vec<(String, Bytes)>,
}

/// `ConsumerGroupMemberMetadataValue`'s tag of a classic member's metadata.
const CLASSIC_MEMBER_TAG: u32 = 0;

/// `ConsumerGroupTargetAssignmentMetadataValue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TargetAssignmentEpochValue {
    pub assignment_epoch: i32,
}

/// `ConsumerGroupCurrentMemberAssignmentValue`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentAssignmentValue {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// Kafka's `MemberState` byte: 0 stable, 1 unrevoked partitions, 2 unreleased partitions.
    pub state: i8,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
}

fn start() -> BytesMut {
    let mut out = BytesMut::new();
    out.put_i16(VALUE_VERSION);
    out
}

fn no_tags(out: &mut BytesMut) {
    put_uvarint(out, 0);
}

fn reader<'a>(bytes: &'a [u8], what: &str) -> Result<Reader<'a>> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if version != VALUE_VERSION {
        return Err(RecordError(format!(
            "{what} value version {version} is not supported"
        )));
    }
    Ok(r)
}

fn skip_tags(r: &mut Reader<'_>) -> Result<()> {
    r.tagged_fields(|_, _| Ok(()))
}

pub fn encode_group_epoch(value: &GroupEpochValue) -> Bytes {
    let mut out = start();
    out.put_i32(value.epoch);
    if value.metadata_hash == 0 {
        no_tags(&mut out);
    } else {
        put_uvarint(&mut out, 1);
        put_uvarint(&mut out, METADATA_HASH_TAG);
        put_uvarint(&mut out, 8);
        out.put_i64(value.metadata_hash);
    }
    out.freeze()
}

pub fn decode_group_epoch(bytes: &[u8]) -> Result<GroupEpochValue> {
    let mut r = reader(bytes, "consumer group metadata")?;
    let epoch = r.i32()?;
    let mut metadata_hash = 0;
    r.tagged_fields(|tag, field| {
        if tag == METADATA_HASH_TAG {
            metadata_hash = field.i64()?;
        }
        Ok(())
    })?;
    Ok(GroupEpochValue {
        epoch,
        metadata_hash,
    })
}

pub fn encode_member_metadata(value: &MemberMetadataValue) -> Bytes {
    let mut out = start();
    put_compact_nullable_string(&mut out, value.instance_id.as_deref());
    put_compact_nullable_string(&mut out, value.rack_id.as_deref());
    put_compact_string(&mut out, &value.client_id);
    put_compact_string(&mut out, &value.client_host);
    put_compact_count(&mut out, value.subscribed_topic_names.len());
    for name in &value.subscribed_topic_names {
        put_compact_string(&mut out, name);
    }
    put_compact_nullable_string(&mut out, value.subscribed_topic_regex.as_deref());
    out.put_i32(value.rebalance_timeout_ms);
    put_compact_nullable_string(&mut out, value.server_assignor.as_deref());
    match &value.classic {
        None => no_tags(&mut out),
        Some(classic) => {
            // A nullable struct in a tagged field: its size counts a presence varint (1)
            // written before it (Kafka's generated writer).
            let field = encode_classic_member(classic);
            put_uvarint(&mut out, 1);
            put_uvarint(&mut out, CLASSIC_MEMBER_TAG);
            put_uvarint(
                &mut out,
                u32::try_from(field.len()).unwrap_or(u32::MAX - 1) + 1,
            );
            put_uvarint(&mut out, 1);
            out.put_slice(&field);
        }
    }
    out.freeze()
}

fn encode_classic_member(classic: &ClassicMemberMetadata) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_i32(classic.session_timeout_ms);
    put_compact_count(&mut out, classic.supported_protocols.len());
    for (name, metadata) in &classic.supported_protocols {
        put_compact_string(&mut out, name);
        put_uvarint(
            &mut out,
            u32::try_from(metadata.len()).unwrap_or(u32::MAX - 1) + 1,
        );
        out.put_slice(metadata);
        no_tags(&mut out);
    }
    no_tags(&mut out);
    out
}

fn decode_classic_member(r: &mut Reader<'_>) -> Result<ClassicMemberMetadata> {
    let session_timeout_ms = r.i32()?;
    // A protocol: a name (1 byte at least), metadata (1) and its tags (1).
    let count = r.compact_count(3)?;
    let mut supported_protocols = Vec::with_capacity(count);
    for _ in 0..count {
        let name = r.compact_string()?;
        let len = r.compact_count(1)?;
        let metadata = Bytes::copy_from_slice(r.take(len)?);
        skip_tags(r)?;
        supported_protocols.push((name, metadata));
    }
    skip_tags(r)?;
    Ok(ClassicMemberMetadata {
        session_timeout_ms,
        supported_protocols,
    })
}

pub fn decode_member_metadata(bytes: &[u8]) -> Result<MemberMetadataValue> {
    let mut r = reader(bytes, "consumer group member")?;
    let instance_id = r.compact_nullable_string()?;
    let rack_id = r.compact_nullable_string()?;
    let client_id = r.compact_string()?;
    let client_host = r.compact_string()?;
    let count = r.compact_count(1)?;
    let mut subscribed_topic_names = Vec::with_capacity(count);
    for _ in 0..count {
        subscribed_topic_names.push(r.compact_string()?);
    }
    let subscribed_topic_regex = r.compact_nullable_string()?;
    let rebalance_timeout_ms = r.i32()?;
    let server_assignor = r.compact_nullable_string()?;
    let mut classic = None;
    r.tagged_fields(|tag, field| {
        // A presence varint first: 0 is null.
        if tag == CLASSIC_MEMBER_TAG && field.uvarint()? > 0 {
            classic = Some(decode_classic_member(field)?);
        }
        Ok(())
    })?;
    Ok(MemberMetadataValue {
        instance_id,
        rack_id,
        client_id,
        client_host,
        subscribed_topic_names,
        subscribed_topic_regex,
        rebalance_timeout_ms,
        server_assignor,
        classic,
    })
}

fn put_partitions(out: &mut BytesMut, assignment: &Assignment) {
    put_compact_count(out, assignment.len());
    for (topic_id, partitions) in assignment {
        out.put_slice(topic_id.as_bytes());
        put_compact_count(out, partitions.len());
        for p in partitions {
            out.put_i32(*p);
        }
        no_tags(out);
    }
}

fn read_partitions(r: &mut Reader<'_>) -> Result<Assignment> {
    let count = r.compact_count(MIN_TOPIC_PARTITIONS_SIZE)?;
    let mut assignment = Assignment::new();
    for _ in 0..count {
        let topic_id = r.uuid()?;
        let n = r.compact_count(4)?;
        let partitions = assignment.entry(topic_id).or_default();
        for _ in 0..n {
            partitions.insert(r.i32()?);
        }
        // Tag 0 (KIP-1251's per-partition assignment epochs) is not used yet.
        skip_tags(r)?;
    }
    assignment.retain(|_, p| !p.is_empty());
    Ok(assignment)
}

pub fn encode_target_assignment(assignment: &Assignment) -> Bytes {
    let mut out = start();
    put_partitions(&mut out, assignment);
    no_tags(&mut out);
    out.freeze()
}

pub fn decode_target_assignment(bytes: &[u8]) -> Result<Assignment> {
    let mut r = reader(bytes, "consumer group target assignment")?;
    let assignment = read_partitions(&mut r)?;
    skip_tags(&mut r)?;
    Ok(assignment)
}

pub fn encode_target_assignment_epoch(value: &TargetAssignmentEpochValue) -> Bytes {
    let mut out = start();
    out.put_i32(value.assignment_epoch);
    no_tags(&mut out);
    out.freeze()
}

pub fn decode_target_assignment_epoch(bytes: &[u8]) -> Result<TargetAssignmentEpochValue> {
    let mut r = reader(bytes, "consumer group target assignment metadata")?;
    let assignment_epoch = r.i32()?;
    skip_tags(&mut r)?;
    Ok(TargetAssignmentEpochValue { assignment_epoch })
}

pub fn encode_current_assignment(value: &CurrentAssignmentValue) -> Bytes {
    let mut out = start();
    out.put_i32(value.member_epoch);
    out.put_i32(value.previous_member_epoch);
    out.put_i8(value.state);
    put_partitions(&mut out, &value.assigned);
    put_partitions(&mut out, &value.pending_revocation);
    no_tags(&mut out);
    out.freeze()
}

pub fn decode_current_assignment(bytes: &[u8]) -> Result<CurrentAssignmentValue> {
    let mut r = reader(bytes, "consumer group current assignment")?;
    let member_epoch = r.i32()?;
    let previous_member_epoch = r.i32()?;
    let state = r.i8()?;
    let assigned = read_partitions(&mut r)?;
    let pending_revocation = read_partitions(&mut r)?;
    skip_tags(&mut r)?;
    Ok(CurrentAssignmentValue {
        member_epoch,
        previous_member_epoch,
        state,
        assigned,
        pending_revocation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{RecordKey, decode_key, encode_key};
    use uuid::Uuid;

    fn assignment(topic: Uuid, partitions: &[i32]) -> Assignment {
        let mut a = Assignment::new();
        a.insert(topic, partitions.iter().copied().collect());
        a
    }

    #[test]
    fn keys_carry_kafkas_record_types() {
        let cases = [
            (RecordKey::ConsumerGroup { group: "g".into() }, 3),
            (
                RecordKey::ConsumerPartitionMetadata { group: "g".into() },
                4,
            ),
            (
                RecordKey::ConsumerMember {
                    group: "g".into(),
                    member: "m".into(),
                },
                5,
            ),
            (
                RecordKey::ConsumerTargetAssignmentMetadata { group: "g".into() },
                6,
            ),
            (
                RecordKey::ConsumerTargetAssignmentMember {
                    group: "g".into(),
                    member: "m".into(),
                },
                7,
            ),
            (
                RecordKey::ConsumerCurrentAssignment {
                    group: "g".into(),
                    member: "m".into(),
                },
                8,
            ),
        ];
        for (key, record_type) in cases {
            let bytes = encode_key(&key);
            assert_eq!(i16::from_be_bytes([bytes[0], bytes[1]]), record_type);
            assert_eq!(decode_key(&bytes).unwrap(), Some(key));
        }
    }

    #[test]
    fn group_epoch_is_kafkas_layout_with_the_hash_tagged() {
        let plain = GroupEpochValue {
            epoch: 7,
            metadata_hash: 0,
        };
        // version 0, epoch 7, no tagged fields.
        assert_eq!(&encode_group_epoch(&plain)[..], &[0, 0, 0, 0, 0, 7, 0]);
        let hashed = GroupEpochValue {
            epoch: 7,
            metadata_hash: -2,
        };
        let bytes = encode_group_epoch(&hashed);
        // one tagged field: tag 0, 8 bytes.
        assert_eq!(&bytes[6..9], &[1, 0, 8]);
        assert_eq!(decode_group_epoch(&bytes).unwrap(), hashed);
        assert_eq!(
            decode_group_epoch(&encode_group_epoch(&plain)).unwrap(),
            plain
        );
    }

    #[test]
    fn member_and_assignment_values_round_trip() {
        let member = MemberMetadataValue {
            instance_id: Some("i-1".into()),
            rack_id: None,
            client_id: "rdkafka".into(),
            client_host: "/127.0.0.1".into(),
            subscribed_topic_names: vec!["a".into(), "b".into()],
            subscribed_topic_regex: None,
            rebalance_timeout_ms: 300_000,
            server_assignor: Some("uniform".into()),
            classic: None,
        };
        assert_eq!(
            decode_member_metadata(&encode_member_metadata(&member)).unwrap(),
            member
        );
        // A classic member's metadata rides in tag 0.
        let classic = MemberMetadataValue {
            server_assignor: None,
            classic: Some(ClassicMemberMetadata {
                session_timeout_ms: 45_000,
                supported_protocols: vec![
                    ("range".into(), Bytes::from_static(b"\x00\x03sub")),
                    ("roundrobin".into(), Bytes::new()),
                ],
            }),
            ..member.clone()
        };
        let bytes = encode_member_metadata(&classic);
        let plain = encode_member_metadata(&MemberMetadataValue {
            classic: None,
            ..classic.clone()
        });
        // Same fields, then one tagged field (tag 0) instead of none: its size, the presence
        // varint (1) the size counts, then the session timeout (45000 = 0x0000afc8).
        let at = plain.len() - 1;
        assert_eq!(bytes[..at], plain[..at]);
        assert_eq!(&bytes[at..at + 2], &[1, 0]);
        assert_eq!(usize::from(bytes[at + 2]), bytes.len() - at - 3);
        assert_eq!(&bytes[at + 3..at + 8], &[1, 0, 0, 0xaf, 0xc8]);
        assert_eq!(decode_member_metadata(&bytes).unwrap(), classic);
        // A writer's explicit null (presence 0) reads as no classic metadata.
        let mut null = plain[..at].to_vec();
        null.extend_from_slice(&[1, 0, 1, 0]);
        assert_eq!(decode_member_metadata(&null).unwrap().classic, None);
        for cut in plain.len()..bytes.len() {
            assert!(
                decode_member_metadata(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let t = Uuid::from_u128(0x1234);
        let target = assignment(t, &[0, 2, 4]);
        assert_eq!(
            decode_target_assignment(&encode_target_assignment(&target)).unwrap(),
            target
        );
        let epoch = TargetAssignmentEpochValue {
            assignment_epoch: 9,
        };
        assert_eq!(
            decode_target_assignment_epoch(&encode_target_assignment_epoch(&epoch)).unwrap(),
            epoch
        );
        let current = CurrentAssignmentValue {
            member_epoch: 9,
            previous_member_epoch: 8,
            state: 1,
            assigned: assignment(t, &[0]),
            pending_revocation: assignment(t, &[2]),
        };
        assert_eq!(
            decode_current_assignment(&encode_current_assignment(&current)).unwrap(),
            current
        );
    }

    #[test]
    fn a_newer_writers_tagged_fields_are_skipped() {
        // A current assignment whose topic entry carries tag 0 (KIP-1251's assignment epochs)
        // and whose value carries an unknown tag 5.
        let t = Uuid::from_u128(7);
        let mut out = BytesMut::new();
        out.put_i16(0);
        out.put_i32(3);
        out.put_i32(2);
        out.put_i8(0);
        put_compact_count(&mut out, 1);
        out.put_slice(t.as_bytes());
        put_compact_count(&mut out, 1);
        out.put_i32(4);
        put_uvarint(&mut out, 1); // one tag
        put_uvarint(&mut out, 0); // tag 0
        put_uvarint(&mut out, 2); // 2 bytes: a compact array of one... truncated, skipped whole
        out.put_slice(&[2, 0]);
        put_compact_count(&mut out, 0);
        put_uvarint(&mut out, 1);
        put_uvarint(&mut out, 5);
        put_uvarint(&mut out, 3);
        out.put_slice(&[9, 9, 9]);
        let decoded = decode_current_assignment(&out).unwrap();
        assert_eq!(decoded.member_epoch, 3);
        assert_eq!(decoded.assigned, assignment(t, &[4]));
    }

    #[test]
    fn lying_lengths_are_errors_not_allocations() {
        let mut out = BytesMut::new();
        out.put_i16(0);
        put_uvarint(&mut out, u32::MAX); // a partition list of 4 billion topics
        assert!(decode_target_assignment(&out).is_err());
        let mut out = BytesMut::new();
        out.put_i16(0);
        out.put_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]); // a varint past 5 bytes
        assert!(decode_target_assignment(&out).is_err());
        assert!(
            decode_group_epoch(&[0, 1, 0, 0, 0, 1, 0]).is_err(),
            "version 1"
        );
        assert!(decode_group_epoch(&[0, 0, 0, 0]).is_err(), "truncated");
    }
}
