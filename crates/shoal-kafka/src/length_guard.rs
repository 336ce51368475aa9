//! Pre-validation of every length in a request body before `kafka-protocol` decodes it.
//!
//! `kafka-protocol` 0.18 sizes collections from the wire: `Array` and `CompactArray` call
//! `Vec::with_capacity(count)` with the count as read (up to 2^31 or 2^32 elements), and
//! `String`/`CompactString`/`Bytes` decoders into owned buffers `vec![0; len]` before checking
//! that `len` bytes remain. A 20-byte frame could therefore ask for many gigabytes and abort
//! the process (Architecture safety rule 7).
//!
//! The guard walks the body with Kafka's own layout of the message ([`crate::schema`]),
//! mirroring the decoder's reads, and rejects the request if any array count, string, bytes
//! or tagged-field length is larger than the bytes left in the frame (Apache Kafka's generated
//! readers apply the same rule). A body that passes has every element it announces actually
//! present, so the decoder's allocations are bounded by what the client really sent. The walk
//! itself allocates nothing and runs at most one step per body byte.

use crate::schema::{Field, FieldKind, RequestSchema};

/// Why a request body was rejected before decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LengthGuardError {
    #[error(
        "{what} {length} of {field} at body offset {offset_bytes} exceeds the {remaining_bytes} bytes left"
    )]
    LengthExceedsFrame {
        field: &'static str,
        what: &'static str,
        length: u64,
        offset_bytes: usize,
        remaining_bytes: usize,
    },
    #[error("negative {what} {length} of {field} at body offset {offset_bytes}")]
    NegativeLength {
        field: &'static str,
        what: &'static str,
        length: i32,
        offset_bytes: usize,
    },
    #[error("body ends at offset {offset_bytes}, inside a field")]
    Truncated { offset_bytes: usize },
    #[error("tag {tag} is not valid for version {version}")]
    TagNotInVersion { tag: u32, version: i16 },
    #[error("version {version} is outside the schema's range")]
    VersionOutOfRange { version: i16 },
}

/// Checks every length in `body` (a request body of `schema` at `version`, header already
/// removed). Returns the number of bytes the layout covers.
pub(crate) fn check_request_lengths(
    schema: &'static RequestSchema,
    version: i16,
    body: &[u8],
) -> Result<usize, LengthGuardError> {
    if !schema.valid_versions.contains(version) {
        return Err(LengthGuardError::VersionOutOfRange { version });
    }
    let mut walker = Walker {
        body,
        position: 0,
        version,
        flexible: schema.flexible_versions.contains(version),
    };
    walker.walk_struct(&schema.fields)?;
    Ok(walker.position)
}

struct Walker<'a> {
    body: &'a [u8],
    position: usize,
    version: i16,
    flexible: bool,
}

impl Walker<'_> {
    fn remaining(&self) -> usize {
        self.body.len() - self.position
    }

    fn take(&mut self, size_bytes: usize) -> Result<&[u8], LengthGuardError> {
        if size_bytes > self.remaining() {
            return Err(LengthGuardError::Truncated {
                offset_bytes: self.body.len(),
            });
        }
        let start = self.position;
        self.position += size_bytes;
        Ok(&self.body[start..self.position])
    }

    fn read_i8(&mut self) -> Result<i8, LengthGuardError> {
        Ok(i8::from_be_bytes([self.take(1)?[0]]))
    }

    fn read_i16(&mut self) -> Result<i16, LengthGuardError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn read_i32(&mut self) -> Result<i32, LengthGuardError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Same arithmetic as `kafka-protocol`'s `UnsignedVarInt` (at most 5 bytes, high bits dropped),
    /// so both read the same value from the same bytes.
    fn read_uvarint(&mut self) -> Result<u32, LengthGuardError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = u32::from(self.take(1)?[0]);
            value |= (b & 0x7f) << (i * 7);
            if b < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    /// Reads a length prefix; `None` is the null marker. Checks `length <= remaining` so the
    /// decoder never sizes a buffer or collection from a length the frame cannot back.
    fn read_length(
        &mut self,
        field: &'static str,
        what: &'static str,
        wide: bool,
    ) -> Result<Option<usize>, LengthGuardError> {
        let offset_bytes = self.position;
        let length: u64 = if self.flexible {
            match self.read_uvarint()? {
                0 => return Ok(None),
                n => u64::from(n - 1),
            }
        } else {
            let n = if wide {
                self.read_i32()?
            } else {
                i32::from(self.read_i16()?)
            };
            match n {
                -1 => return Ok(None),
                n if n < 0 => {
                    return Err(LengthGuardError::NegativeLength {
                        field,
                        what,
                        length: n,
                        offset_bytes,
                    });
                }
                n => n.unsigned_abs().into(),
            }
        };
        self.check_fits(field, what, length, offset_bytes).map(Some)
    }

    fn check_fits(
        &self,
        field: &'static str,
        what: &'static str,
        length: u64,
        offset_bytes: usize,
    ) -> Result<usize, LengthGuardError> {
        let remaining_bytes = self.remaining();
        match usize::try_from(length) {
            Ok(n) if n <= remaining_bytes => Ok(n),
            _ => Err(LengthGuardError::LengthExceedsFrame {
                field,
                what,
                length,
                offset_bytes,
                remaining_bytes,
            }),
        }
    }

    fn walk_struct(&mut self, fields: &'static [Field]) -> Result<(), LengthGuardError> {
        for field in fields {
            if !field.versions.contains(self.version) {
                continue;
            }
            if self.flexible && field.is_tagged_in(self.version) {
                continue;
            }
            self.walk_kind(&field.name, &field.kind)?;
        }
        if self.flexible {
            self.walk_tagged_fields(fields)?;
        }
        Ok(())
    }

    /// Mirrors `kafka-protocol`: a known tag is decoded in place as its type (its size is not
    /// used), an unknown tag is skipped by its size.
    fn walk_tagged_fields(&mut self, fields: &'static [Field]) -> Result<(), LengthGuardError> {
        let offset_bytes = self.position;
        let count = u64::from(self.read_uvarint()?);
        let count = self.check_fits("tagged fields", "count", count, offset_bytes)?;
        for _ in 0..count {
            let tag = self.read_uvarint()?;
            let size_offset = self.position;
            let size = u64::from(self.read_uvarint()?);
            let size_bytes = self.check_fits("tagged field", "size", size, size_offset)?;
            match fields.iter().find(|f| f.tag == Some(tag)) {
                Some(field) if field.versions.contains(self.version) => {
                    self.walk_kind(&field.name, &field.kind)?
                }
                Some(_) => {
                    return Err(LengthGuardError::TagNotInVersion {
                        tag,
                        version: self.version,
                    });
                }
                None => {
                    self.take(size_bytes)?;
                }
            }
        }
        Ok(())
    }

    fn walk_kind(
        &mut self,
        field: &'static str,
        kind: &'static FieldKind,
    ) -> Result<(), LengthGuardError> {
        match kind {
            FieldKind::Fixed(size_bytes) => {
                self.take(*size_bytes)?;
            }
            FieldKind::String => {
                if let Some(length) = self.read_length(field, "string length", false)? {
                    self.take(length)?;
                }
            }
            FieldKind::Bytes => {
                if let Some(length) = self.read_length(field, "bytes length", true)? {
                    self.take(length)?;
                }
            }
            FieldKind::Array(element) => {
                if let Some(count) = self.read_length(field, "array count", true)? {
                    for _ in 0..count {
                        self.walk_kind(field, element)?;
                    }
                }
            }
            FieldKind::Struct { fields, nullable } => {
                // kafka-protocol's OptionStruct: i8 marker, 1 = present, anything else = null.
                if nullable.contains(self.version) && self.read_i8()? != 1 {
                    return Ok(());
                }
                self.walk_struct(fields)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::request_schema;

    fn metadata() -> &'static RequestSchema {
        request_schema(3).unwrap()
    }

    #[test]
    fn huge_array_count_in_small_body_is_rejected() {
        // Metadata v1: topics array count 0x7fffffff, then nothing.
        let body = [0x7f, 0xff, 0xff, 0xff];
        let err = check_request_lengths(metadata(), 1, &body).unwrap_err();
        assert!(
            matches!(
                err,
                LengthGuardError::LengthExceedsFrame {
                    field: "Topics",
                    what: "array count",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn huge_compact_array_count_is_rejected() {
        // Metadata v12 (flexible): compact count 0xffffffff as uvarint.
        let body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0];
        let err = check_request_lengths(metadata(), 12, &body).unwrap_err();
        assert!(
            matches!(err, LengthGuardError::LengthExceedsFrame { .. }),
            "{err}"
        );
    }

    #[test]
    fn string_longer_than_body_is_rejected() {
        // Metadata v1: one topic whose name claims 1000 bytes.
        let body = [0, 0, 0, 1, 0x03, 0xe8, b'a'];
        let err = check_request_lengths(metadata(), 1, &body).unwrap_err();
        assert!(
            matches!(
                err,
                LengthGuardError::LengthExceedsFrame {
                    what: "string length",
                    length: 1000,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn null_array_and_valid_body_pass() {
        // Metadata v4: null topics (-1) then allow_auto_topic_creation.
        let body = [0xff, 0xff, 0xff, 0xff, 1];
        assert_eq!(check_request_lengths(metadata(), 4, &body), Ok(5));
        // One topic "ab" at v1.
        let body = [0, 0, 0, 1, 0, 2, b'a', b'b'];
        assert_eq!(check_request_lengths(metadata(), 1, &body), Ok(8));
    }

    #[test]
    fn negative_length_other_than_null_is_rejected() {
        let body = [0xff, 0xff, 0xff, 0xfe];
        let err = check_request_lengths(metadata(), 1, &body).unwrap_err();
        assert!(
            matches!(err, LengthGuardError::NegativeLength { length: -2, .. }),
            "{err}"
        );
    }

    #[test]
    fn unknown_tagged_field_larger_than_body_is_rejected() {
        // Metadata v12: topics = [] (compact 1), auto create, topic ops, then 1 tagged field
        // with tag 9 and size 100 but only 1 byte left.
        let body = [1, 1, 0, 1, 9, 100, 0];
        let err = check_request_lengths(metadata(), 12, &body).unwrap_err();
        assert!(
            matches!(
                err,
                LengthGuardError::LengthExceedsFrame {
                    field: "tagged field",
                    what: "size",
                    ..
                }
            ),
            "{err}"
        );
    }
}

/// Cross-checks the guard against `kafka-protocol` itself: for every embedded layout and every
/// version both know, the guard must walk exactly the bytes the encoder wrote, and must never
/// reject a body the decoder accepts.
#[cfg(test)]
mod conformance_tests {
    use super::*;
    use crate::schema::request_schema;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;

    fn default_request(api_key: ApiKey) -> RequestKind {
        use ApiKey::*;
        match api_key {
            AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(AddOffsetsToTxnRequest::default()),
            AddPartitionsToTxn => {
                RequestKind::AddPartitionsToTxn(AddPartitionsToTxnRequest::default())
            }
            AlterClientQuotas => {
                RequestKind::AlterClientQuotas(AlterClientQuotasRequest::default())
            }
            AlterConfigs => RequestKind::AlterConfigs(AlterConfigsRequest::default()),
            ConsumerGroupDescribe => {
                RequestKind::ConsumerGroupDescribe(ConsumerGroupDescribeRequest::default())
            }
            ConsumerGroupHeartbeat => {
                RequestKind::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest::default())
            }
            AlterPartitionReassignments => RequestKind::AlterPartitionReassignments(
                AlterPartitionReassignmentsRequest::default(),
            ),
            AlterReplicaLogDirs => {
                RequestKind::AlterReplicaLogDirs(AlterReplicaLogDirsRequest::default())
            }
            AlterUserScramCredentials => {
                RequestKind::AlterUserScramCredentials(AlterUserScramCredentialsRequest::default())
            }
            ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
            CreateAcls => RequestKind::CreateAcls(CreateAclsRequest::default()),
            CreatePartitions => RequestKind::CreatePartitions(CreatePartitionsRequest::default()),
            CreateTopics => RequestKind::CreateTopics(CreateTopicsRequest::default()),
            DeleteAcls => RequestKind::DeleteAcls(DeleteAclsRequest::default()),
            DeleteGroups => RequestKind::DeleteGroups(DeleteGroupsRequest::default()),
            DeleteRecords => RequestKind::DeleteRecords(DeleteRecordsRequest::default()),
            DeleteTopics => RequestKind::DeleteTopics(DeleteTopicsRequest::default()),
            DescribeAcls => RequestKind::DescribeAcls(DescribeAclsRequest::default()),
            DescribeClientQuotas => {
                RequestKind::DescribeClientQuotas(DescribeClientQuotasRequest::default())
            }
            DescribeCluster => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
            DescribeConfigs => RequestKind::DescribeConfigs(DescribeConfigsRequest::default()),
            DescribeGroups => RequestKind::DescribeGroups(DescribeGroupsRequest::default()),
            DescribeLogDirs => RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default()),
            DescribeProducers => {
                RequestKind::DescribeProducers(DescribeProducersRequest::default())
            }
            DescribeQuorum => RequestKind::DescribeQuorum(DescribeQuorumRequest::default()),
            DescribeTopicPartitions => {
                RequestKind::DescribeTopicPartitions(DescribeTopicPartitionsRequest::default())
            }
            DescribeTransactions => {
                RequestKind::DescribeTransactions(DescribeTransactionsRequest::default())
            }
            DescribeUserScramCredentials => RequestKind::DescribeUserScramCredentials(
                DescribeUserScramCredentialsRequest::default(),
            ),
            ElectLeaders => RequestKind::ElectLeaders(ElectLeadersRequest::default()),
            EndTxn => RequestKind::EndTxn(EndTxnRequest::default()),
            Fetch => RequestKind::Fetch(FetchRequest::default()),
            FindCoordinator => RequestKind::FindCoordinator(FindCoordinatorRequest::default()),
            Heartbeat => RequestKind::Heartbeat(HeartbeatRequest::default()),
            IncrementalAlterConfigs => {
                RequestKind::IncrementalAlterConfigs(IncrementalAlterConfigsRequest::default())
            }
            InitProducerId => RequestKind::InitProducerId(InitProducerIdRequest::default()),
            JoinGroup => RequestKind::JoinGroup(JoinGroupRequest::default()),
            LeaveGroup => RequestKind::LeaveGroup(LeaveGroupRequest::default()),
            ListConfigResources => {
                RequestKind::ListConfigResources(ListConfigResourcesRequest::default())
            }
            ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
            ListOffsets => RequestKind::ListOffsets(ListOffsetsRequest::default()),
            ListPartitionReassignments => {
                RequestKind::ListPartitionReassignments(ListPartitionReassignmentsRequest::default())
            }
            ListTransactions => RequestKind::ListTransactions(ListTransactionsRequest::default()),
            Metadata => RequestKind::Metadata(MetadataRequest::default()),
            OffsetCommit => RequestKind::OffsetCommit(OffsetCommitRequest::default()),
            OffsetDelete => RequestKind::OffsetDelete(OffsetDeleteRequest::default()),
            OffsetFetch => RequestKind::OffsetFetch(OffsetFetchRequest::default()),
            OffsetForLeaderEpoch => {
                RequestKind::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default())
            }
            Produce => RequestKind::Produce(ProduceRequest::default()),
            SaslAuthenticate => RequestKind::SaslAuthenticate(SaslAuthenticateRequest::default()),
            SaslHandshake => RequestKind::SaslHandshake(SaslHandshakeRequest::default()),
            SyncGroup => RequestKind::SyncGroup(SyncGroupRequest::default()),
            TxnOffsetCommit => RequestKind::TxnOffsetCommit(TxnOffsetCommitRequest::default()),
            UnregisterBroker => RequestKind::UnregisterBroker(UnregisterBrokerRequest::default()),
            UpdateFeatures => RequestKind::UpdateFeatures(UpdateFeaturesRequest::default()),
            WriteTxnMarkers => RequestKind::WriteTxnMarkers(WriteTxnMarkersRequest::default()),
            other => panic!("no default request for {other:?}"),
        }
    }

    fn versions_of(api_key: ApiKey) -> std::ops::RangeInclusive<i16> {
        let schema = request_schema(api_key as i16).unwrap();
        let codec = crate::codec::codec_versions(api_key).unwrap();
        codec.min.max(schema.valid_versions.min)..=codec.max.min(schema.valid_versions.max)
    }

    fn assert_walks_exactly(api_key: ApiKey, version: i16, request: &RequestKind) -> Option<Bytes> {
        let mut buf = BytesMut::new();
        // Some sample values are not representable at every version; those are skipped.
        request.encode(&mut buf, version).ok()?;
        let schema = request_schema(api_key as i16).unwrap();
        let walked = check_request_lengths(schema, version, &buf)
            .unwrap_or_else(|e| panic!("{api_key:?} v{version}: guard rejected a valid body: {e}"));
        assert_eq!(
            walked,
            buf.len(),
            "{api_key:?} v{version}: guard and encoder disagree on the layout"
        );
        Some(buf.freeze())
    }

    #[test]
    fn default_requests_of_every_api_and_version_walk_exactly() {
        let mut checked = 0;
        for api_key in ApiKey::iter().filter(|k| request_schema(*k as i16).is_some()) {
            for version in versions_of(api_key) {
                assert!(
                    assert_walks_exactly(api_key, version, &default_request(api_key)).is_some(),
                    "{api_key:?} v{version}: default request does not encode"
                );
                checked += 1;
            }
        }
        assert!(checked > 200, "only {checked} (api, version) pairs checked");
    }

    fn name(s: &'static str) -> StrBytes {
        StrBytes::from_static_str(s)
    }

    fn samples() -> Vec<(ApiKey, RequestKind)> {
        let produce = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                produce_request::TopicProduceData::default()
                    .with_name(TopicName(name("orders")))
                    .with_partition_data(vec![
                        produce_request::PartitionProduceData::default()
                            .with_index(3)
                            .with_records(Some(Bytes::from_static(&[7; 70]))),
                        produce_request::PartitionProduceData::default()
                            .with_index(4)
                            .with_records(None),
                    ]),
            ]);
        let fetch = FetchRequest::default()
            .with_max_wait_ms(500)
            .with_cluster_id(Some(name("c1")))
            .with_topics(vec![
                fetch_request::FetchTopic::default()
                    .with_topic(TopicName(name("orders")))
                    .with_partitions(vec![
                        fetch_request::FetchPartition::default()
                            .with_partition(1)
                            .with_fetch_offset(42)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ])
            .with_forgotten_topics_data(vec![
                fetch_request::ForgottenTopic::default()
                    .with_topic(TopicName(name("old")))
                    .with_partitions(vec![1, 2]),
            ])
            .with_rack_id(name("r1"));
        let metadata = MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(name("a")))),
            metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(name("bb")))),
        ]));
        let create = CreateTopicsRequest::default()
            .with_timeout_ms(1000)
            .with_topics(vec![
                create_topics_request::CreatableTopic::default()
                    .with_name(TopicName(name("t")))
                    .with_num_partitions(3)
                    .with_replication_factor(3)
                    .with_assignments(vec![
                        create_topics_request::CreatableReplicaAssignment::default()
                            .with_partition_index(0)
                            .with_broker_ids(vec![BrokerId(1), BrokerId(2)]),
                    ])
                    .with_configs(vec![
                        create_topics_request::CreatableTopicConfig::default()
                            .with_name(name("retention.ms"))
                            .with_value(None),
                    ]),
            ]);
        let join = JoinGroupRequest::default()
            .with_group_id(GroupId(name("g")))
            .with_member_id(name("m"))
            .with_protocol_type(name("consumer"))
            .with_protocols(vec![
                join_group_request::JoinGroupRequestProtocol::default()
                    .with_name(name("range"))
                    .with_metadata(Bytes::from_static(b"meta")),
            ]);
        vec![
            (ApiKey::Produce, RequestKind::Produce(produce)),
            (ApiKey::Fetch, RequestKind::Fetch(fetch)),
            (ApiKey::Metadata, RequestKind::Metadata(metadata)),
            (ApiKey::CreateTopics, RequestKind::CreateTopics(create)),
            (ApiKey::JoinGroup, RequestKind::JoinGroup(join)),
        ]
    }

    #[test]
    fn populated_requests_walk_exactly() {
        let mut checked = 0;
        for (api_key, request) in samples() {
            for version in versions_of(api_key) {
                checked += usize::from(assert_walks_exactly(api_key, version, &request).is_some());
            }
        }
        assert!(checked > 40, "only {checked} samples encoded");
    }

    /// Mutated bodies: whenever kafka-protocol decodes one, the guard must have accepted it.
    #[test]
    fn guard_is_never_stricter_than_the_decoder() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut decoded = 0;
        for (api_key, request) in samples() {
            let schema = request_schema(api_key as i16).unwrap();
            for version in versions_of(api_key) {
                let Some(valid) = assert_walks_exactly(api_key, version, &request) else {
                    continue;
                };
                for _ in 0..300 {
                    let mut body = valid.to_vec();
                    for _ in 0..1 + next() % 3 {
                        let at = (next() % body.len() as u64) as usize;
                        body[at] = match next() % 4 {
                            0 => 0,
                            1 => 0xff,
                            2 => 0x7f,
                            _ => next() as u8,
                        };
                    }
                    if next() % 4 == 0 {
                        body.truncate((next() % body.len() as u64) as usize);
                    }
                    let guard = check_request_lengths(schema, version, &body);
                    // Only decode what the guard let through: that is the production order.
                    if guard.is_ok() {
                        if RequestKind::decode(api_key, &mut Bytes::from(body), version).is_ok() {
                            decoded += 1;
                        }
                    } else if let Err(e) = &guard {
                        // The decoder must also fail on it, unless the guard refused an
                        // allocation the decoder would have attempted before failing.
                        if !matches!(e, LengthGuardError::LengthExceedsFrame { .. }) {
                            assert!(
                                RequestKind::decode(
                                    api_key,
                                    &mut Bytes::from(body.clone()),
                                    version
                                )
                                .is_err(),
                                "{api_key:?} v{version}: guard refused ({e}) a body the decoder accepts"
                            );
                        }
                    }
                }
            }
        }
        assert!(
            decoded > 100,
            "mutations too destructive: only {decoded} decoded"
        );
    }
}
