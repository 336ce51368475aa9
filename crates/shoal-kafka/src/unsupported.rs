//! Replies to requests whose API or version this broker does not accept.
//!
//! Apache Kafka fails such requests at parse time and closes the connection. Where it can say
//! more, this front does: if the API's response has a top-level `error_code` **at the requested
//! version** and `kafka-protocol` can encode that version, the reply is the default response
//! with `error_code = UNSUPPORTED_VERSION (35)`; otherwise the connection is closed with a
//! warning. Which APIs get which (see [`with_error_code`] for the full list):
//!
//! - error reply, at versions `kafka-protocol` encodes and where the field exists: Fetch (v7+),
//!   Metadata (v13), FindCoordinator (v0–3), OffsetFetch (v2–7), JoinGroup, Heartbeat,
//!   LeaveGroup, SyncGroup, ListGroups, SaslHandshake, SaslAuthenticate, InitProducerId,
//!   AddOffsetsToTxn, AddPartitionsToTxn (v4+), EndTxn, DescribeAcls, DescribeClientQuotas,
//!   DescribeCluster, DescribeLogDirs (v3+), ElectLeaders (v1+), OffsetDelete, UpdateFeatures,
//!   ListTransactions, consumer/share group heartbeats, telemetry, delegation tokens,
//!   reassignments, and the controller/raft APIs;
//! - connection closed: Produce, ListOffsets, OffsetCommit, CreateTopics, DeleteTopics,
//!   DeleteRecords, DescribeGroups, DescribeConfigs, AlterConfigs, CreatePartitions,
//!   IncrementalAlterConfigs, TxnOffsetCommit, OffsetForLeaderEpoch, WriteTxnMarkers (their
//!   errors live per topic/partition), and any API at a version `kafka-protocol` cannot encode.
//!
//! ApiVersions has its own rule ([`crate::api_versions`]).

use bytes::BytesMut;
use kafka_protocol::messages::*;

use crate::api_versions::UNSUPPORTED_VERSION;

/// The UNSUPPORTED_VERSION reply for `api_key` at `version`, or `None` if none can be sent.
pub(crate) fn unsupported_version_response(api_key: ApiKey, version: i16) -> Option<ResponseKind> {
    let response = with_error_code(api_key, version, UNSUPPORTED_VERSION)?;
    // Defensive: a reply that cannot be encoded is no reply (the connection is closed instead).
    let mut scratch = BytesMut::new();
    response.encode(&mut scratch, version).ok()?;
    Some(response)
}

macro_rules! default_with_error_code {
    ($api_key:expr, $version:expr, $error_code:expr, $(($name:ident, $response:ident, $min:literal, $max:literal)),* $(,)?) => {
        match $api_key {
            $(ApiKey::$name if ($min..=$max).contains(&$version) => {
                let mut response = $response::default();
                response.error_code = $error_code;
                Some(ResponseKind::$name(response))
            })*
            _ => None,
        }
    };
}

/// The default response of `api_key` at `version` with its top-level `error_code` set, if that
/// version has one. The ranges are the "Supported API versions" of each response's top-level
/// `error_code` in `kafka-protocol` 0.18 (ApiVersions excluded: see `api_versions`). They matter
/// because `kafka-protocol` silently drops an ignorable field absent at the encoded version.
pub(crate) fn with_error_code(
    api_key: ApiKey,
    version: i16,
    error_code: i16,
) -> Option<ResponseKind> {
    default_with_error_code!(
        api_key,
        version,
        error_code,
        (AddOffsetsToTxn, AddOffsetsToTxnResponse, 0, 4),
        (AddPartitionsToTxn, AddPartitionsToTxnResponse, 4, 5),
        (AddRaftVoter, AddRaftVoterResponse, 0, 0),
        (AllocateProducerIds, AllocateProducerIdsResponse, 0, 0),
        (
            AlterPartitionReassignments,
            AlterPartitionReassignmentsResponse,
            0,
            1
        ),
        (AlterPartition, AlterPartitionResponse, 2, 3),
        (AlterShareGroupOffsets, AlterShareGroupOffsetsResponse, 0, 0),
        (AssignReplicasToDirs, AssignReplicasToDirsResponse, 0, 0),
        (BeginQuorumEpoch, BeginQuorumEpochResponse, 0, 1),
        (BrokerHeartbeat, BrokerHeartbeatResponse, 0, 1),
        (BrokerRegistration, BrokerRegistrationResponse, 0, 4),
        (ConsumerGroupHeartbeat, ConsumerGroupHeartbeatResponse, 0, 1),
        (ControllerRegistration, ControllerRegistrationResponse, 0, 0),
        (CreateDelegationToken, CreateDelegationTokenResponse, 1, 3),
        (
            DeleteShareGroupOffsets,
            DeleteShareGroupOffsetsResponse,
            0,
            0
        ),
        (DescribeAcls, DescribeAclsResponse, 1, 3),
        (DescribeClientQuotas, DescribeClientQuotasResponse, 0, 1),
        (DescribeCluster, DescribeClusterResponse, 0, 2),
        (
            DescribeDelegationToken,
            DescribeDelegationTokenResponse,
            1,
            3
        ),
        (DescribeLogDirs, DescribeLogDirsResponse, 3, 4),
        (DescribeQuorum, DescribeQuorumResponse, 0, 2),
        (
            DescribeUserScramCredentials,
            DescribeUserScramCredentialsResponse,
            0,
            0
        ),
        (ElectLeaders, ElectLeadersResponse, 1, 2),
        (EndQuorumEpoch, EndQuorumEpochResponse, 0, 1),
        (EndTxn, EndTxnResponse, 0, 5),
        (Envelope, EnvelopeResponse, 0, 0),
        (ExpireDelegationToken, ExpireDelegationTokenResponse, 1, 2),
        (Fetch, FetchResponse, 7, 18),
        (FetchSnapshot, FetchSnapshotResponse, 0, 1),
        (FindCoordinator, FindCoordinatorResponse, 0, 3),
        (
            GetTelemetrySubscriptions,
            GetTelemetrySubscriptionsResponse,
            0,
            0
        ),
        (Heartbeat, HeartbeatResponse, 0, 4),
        (InitProducerId, InitProducerIdResponse, 0, 6),
        (JoinGroup, JoinGroupResponse, 0, 9),
        (LeaveGroup, LeaveGroupResponse, 0, 5),
        (ListConfigResources, ListConfigResourcesResponse, 0, 1),
        (ListGroups, ListGroupsResponse, 0, 5),
        (
            ListPartitionReassignments,
            ListPartitionReassignmentsResponse,
            0,
            0
        ),
        (ListTransactions, ListTransactionsResponse, 0, 2),
        (Metadata, MetadataResponse, 13, 13),
        (OffsetDelete, OffsetDeleteResponse, 0, 0),
        (OffsetFetch, OffsetFetchResponse, 2, 7),
        (PushTelemetry, PushTelemetryResponse, 0, 0),
        (RemoveRaftVoter, RemoveRaftVoterResponse, 0, 0),
        (RenewDelegationToken, RenewDelegationTokenResponse, 1, 2),
        (SaslAuthenticate, SaslAuthenticateResponse, 0, 2),
        (SaslHandshake, SaslHandshakeResponse, 0, 1),
        (ShareAcknowledge, ShareAcknowledgeResponse, 1, 1),
        (ShareFetch, ShareFetchResponse, 1, 1),
        (ShareGroupHeartbeat, ShareGroupHeartbeatResponse, 1, 1),
        (SyncGroup, SyncGroupResponse, 0, 5),
        (UnregisterBroker, UnregisterBrokerResponse, 0, 0),
        (UpdateFeatures, UpdateFeaturesResponse, 0, 2),
        (UpdateRaftVoter, UpdateRaftVoterResponse, 0, 0),
        (Vote, VoteResponse, 0, 2),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reply_only_where_the_version_has_a_top_level_error_code() {
        assert!(unsupported_version_response(ApiKey::Heartbeat, 0).is_some());
        assert!(unsupported_version_response(ApiKey::Fetch, 7).is_some());
        assert!(unsupported_version_response(ApiKey::FindCoordinator, 3).is_some());
        // Fetch v4–6 and FindCoordinator v4+ have no top-level error_code.
        assert!(unsupported_version_response(ApiKey::Fetch, 6).is_none());
        assert!(unsupported_version_response(ApiKey::FindCoordinator, 4).is_none());
        // Metadata gained its error_code in v13 only; Produce never has one.
        assert!(unsupported_version_response(ApiKey::Metadata, 12).is_none());
        assert!(unsupported_version_response(ApiKey::Metadata, 13).is_some());
        assert!(unsupported_version_response(ApiKey::Produce, 9).is_none());
        // Versions kafka-protocol cannot encode.
        assert!(unsupported_version_response(ApiKey::Heartbeat, 99).is_none());
    }

    #[test]
    fn reply_carries_unsupported_version() {
        let Some(ResponseKind::Heartbeat(response)) =
            unsupported_version_response(ApiKey::Heartbeat, 3)
        else {
            panic!("expected a Heartbeat reply");
        };
        assert_eq!(response.error_code, 35);
    }
}
