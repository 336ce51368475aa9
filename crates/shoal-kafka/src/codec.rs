//! The versions `kafka-protocol` 0.18 can really decode (request) and encode (response).
//!
//! `ApiKey::valid_versions()` is not that: for some APIs it lists a newer version than the
//! message types implement (e.g. OffsetCommit 2–10 while `OffsetCommitRequest` stops at 9), so
//! the ranges come from each message type's `Message::VERSIONS`. Covered: the APIs that have
//! an embedded request layout ([`crate::schema`]), the only ones this front dispatches.

use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Message, VersionRange};

/// The intersection of the request's and the response's implemented versions, if known.
pub(crate) fn codec_versions(api_key: ApiKey) -> Option<VersionRange> {
    use ApiKey::*;
    let range = match api_key {
        AddOffsetsToTxn => both::<AddOffsetsToTxnRequest, AddOffsetsToTxnResponse>(),
        AddPartitionsToTxn => both::<AddPartitionsToTxnRequest, AddPartitionsToTxnResponse>(),
        AlterClientQuotas => both::<AlterClientQuotasRequest, AlterClientQuotasResponse>(),
        AlterConfigs => both::<AlterConfigsRequest, AlterConfigsResponse>(),
        ConsumerGroupDescribe => {
            both::<ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse>()
        }
        ConsumerGroupHeartbeat => {
            both::<ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse>()
        }
        AlterPartitionReassignments => {
            both::<AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse>()
        }
        AlterReplicaLogDirs => both::<AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse>(),
        AlterUserScramCredentials => {
            both::<AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse>()
        }
        ApiVersions => both::<ApiVersionsRequest, ApiVersionsResponse>(),
        CreateAcls => both::<CreateAclsRequest, CreateAclsResponse>(),
        CreatePartitions => both::<CreatePartitionsRequest, CreatePartitionsResponse>(),
        CreateTopics => both::<CreateTopicsRequest, CreateTopicsResponse>(),
        DeleteAcls => both::<DeleteAclsRequest, DeleteAclsResponse>(),
        DeleteGroups => both::<DeleteGroupsRequest, DeleteGroupsResponse>(),
        DeleteRecords => both::<DeleteRecordsRequest, DeleteRecordsResponse>(),
        DeleteTopics => both::<DeleteTopicsRequest, DeleteTopicsResponse>(),
        DescribeAcls => both::<DescribeAclsRequest, DescribeAclsResponse>(),
        DescribeClientQuotas => both::<DescribeClientQuotasRequest, DescribeClientQuotasResponse>(),
        DescribeCluster => both::<DescribeClusterRequest, DescribeClusterResponse>(),
        DescribeConfigs => both::<DescribeConfigsRequest, DescribeConfigsResponse>(),
        DescribeGroups => both::<DescribeGroupsRequest, DescribeGroupsResponse>(),
        DescribeLogDirs => both::<DescribeLogDirsRequest, DescribeLogDirsResponse>(),
        DescribeProducers => both::<DescribeProducersRequest, DescribeProducersResponse>(),
        DescribeQuorum => both::<DescribeQuorumRequest, DescribeQuorumResponse>(),
        DescribeTopicPartitions => {
            both::<DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse>()
        }
        DescribeTransactions => both::<DescribeTransactionsRequest, DescribeTransactionsResponse>(),
        DescribeUserScramCredentials => {
            both::<DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse>()
        }
        ElectLeaders => both::<ElectLeadersRequest, ElectLeadersResponse>(),
        EndTxn => both::<EndTxnRequest, EndTxnResponse>(),
        Fetch => both::<FetchRequest, FetchResponse>(),
        FindCoordinator => both::<FindCoordinatorRequest, FindCoordinatorResponse>(),
        Heartbeat => both::<HeartbeatRequest, HeartbeatResponse>(),
        IncrementalAlterConfigs => {
            both::<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>()
        }
        InitProducerId => both::<InitProducerIdRequest, InitProducerIdResponse>(),
        JoinGroup => both::<JoinGroupRequest, JoinGroupResponse>(),
        LeaveGroup => both::<LeaveGroupRequest, LeaveGroupResponse>(),
        ListConfigResources => both::<ListConfigResourcesRequest, ListConfigResourcesResponse>(),
        ListGroups => both::<ListGroupsRequest, ListGroupsResponse>(),
        ListOffsets => both::<ListOffsetsRequest, ListOffsetsResponse>(),
        ListPartitionReassignments => {
            both::<ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse>()
        }
        ListTransactions => both::<ListTransactionsRequest, ListTransactionsResponse>(),
        Metadata => both::<MetadataRequest, MetadataResponse>(),
        OffsetCommit => both::<OffsetCommitRequest, OffsetCommitResponse>(),
        OffsetDelete => both::<OffsetDeleteRequest, OffsetDeleteResponse>(),
        OffsetFetch => both::<OffsetFetchRequest, OffsetFetchResponse>(),
        OffsetForLeaderEpoch => both::<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse>(),
        Produce => both::<ProduceRequest, ProduceResponse>(),
        SaslAuthenticate => both::<SaslAuthenticateRequest, SaslAuthenticateResponse>(),
        SaslHandshake => both::<SaslHandshakeRequest, SaslHandshakeResponse>(),
        SyncGroup => both::<SyncGroupRequest, SyncGroupResponse>(),
        TxnOffsetCommit => both::<TxnOffsetCommitRequest, TxnOffsetCommitResponse>(),
        UnregisterBroker => both::<UnregisterBrokerRequest, UnregisterBrokerResponse>(),
        UpdateFeatures => both::<UpdateFeaturesRequest, UpdateFeaturesResponse>(),
        WriteTxnMarkers => both::<WriteTxnMarkersRequest, WriteTxnMarkersResponse>(),
        _ => return None,
    };
    (!range.is_empty()).then_some(range)
}

fn both<Req: Message, Resp: Message>() -> VersionRange {
    Req::VERSIONS.intersect(&Resp::VERSIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ranges_not_api_key_ranges() {
        assert_eq!(ApiKey::OffsetCommit.valid_versions().max, 10);
        assert_eq!(
            codec_versions(ApiKey::OffsetCommit),
            Some(VersionRange { min: 2, max: 9 })
        );
        assert_eq!(
            codec_versions(ApiKey::Produce),
            Some(VersionRange { min: 3, max: 13 })
        );
        assert_eq!(codec_versions(ApiKey::ShareGroupHeartbeat), None);
    }
}
