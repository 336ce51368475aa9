//! Forwarding controller requests to the active controller (client side of
//! `ControllerService`, see `proto/controller.proto` section 2).
//!
//! **Why forward instead of answering NOT_CONTROLLER.** Kafka clients send admin requests to
//! any broker, and the broker's handlers call [`crate::ControllerClient`] on their own node.
//! Only the Raft leader may plan and propose (single writer), so the client sends the request
//! to the leader it knows of, which runs it locally; the reply's `log_index` is a Raft index,
//! identical on every node, so the caller waits for it in its own image.
//!
//! **Bounded.** The client's `route` tries at most `MAX_ROUTE_ATTEMPTS` times and never
//! past the caller's request timeout: a target that is unreachable or answers NotController is
//! retried on the new leader hint (or on whoever Raft names next) after a short, doubling pause.
//! A request that timed out in flight is *not* retried: its outcome is unknown (Kafka's
//! REQUEST_TIMED_OUT). A request in flight to a leader that Raft has since replaced (a
//! controller paused or cut off keeps its connections open and answers nothing) is abandoned
//! and sent to the new leader, as Kafka's controller channel drops its connection when the
//! controller changes; the old leader can no longer commit it unless it already had. A retry after a connection failed mid-request may find the first attempt
//! committed (e.g. TOPIC_ALREADY_EXISTS), as with Kafka's own admin client retries.
//!
//! Payloads are the JSON of this crate's request types ([`CreateTopicsCall`] etc.) and results,
//! labelled with [`FORWARD_PAYLOAD_VERSION`] (0, from releases before versioning, is the same
//! JSON). Their JSON shape is pinned by golden fixtures (`tests/fixtures/forwarded/`): changing
//! it needs a new payload version, read alongside the old one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shoal_internode::{ClientTls, NodeConnector};
use tonic::transport::Channel;

use crate::controller::requests::{
    AlterBrokerConfigs, AlterGroupConfigs, AlterTopicConfigs, ControllerResults, CreatePartitions,
    CreateTopic, ElectionType, TopicRef,
};
use crate::error::{BrokerError, ControllerError};
use crate::proto::ForwardedRequest;
use crate::proto::controller_service_client::ControllerServiceClient;
use crate::raft::MAX_RAFT_MESSAGE_BYTES;
use crate::voter_book::VoterBook;

/// The payload version of forwarded requests and replies this binary writes; it reads
/// `0..=FORWARD_PAYLOAD_VERSION`.
pub const FORWARD_PAYLOAD_VERSION: u32 = 1;

/// Refuses a forwarded payload version this binary does not read, naming both.
pub fn check_forward_payload_version(version: u32) -> Result<(), String> {
    crate::format::FormatError::check_version(
        "forwarded controller payload",
        version,
        0,
        FORWARD_PAYLOAD_VERSION,
    )
    .map_err(|e| e.to_string())
}

/// Most tries of one request (each to the leader known at that moment).
pub const MAX_ROUTE_ATTEMPTS: usize = 20;
/// First pause before retrying when no new leader is known; doubles up to the maximum.
pub const ROUTE_BACKOFF_MIN_MS: u64 = 20;
pub const ROUTE_BACKOFF_MAX_MS: u64 = 200;
/// How often a request in flight checks whether another node became the leader meanwhile.
pub const LEADER_WATCH_INTERVAL_MS: u64 = 50;

/// The RPC a forwarded request travels as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardMethod {
    CreateTopics,
    DeleteTopics,
    CreatePartitions,
    ElectLeaders,
    IncrementalAlterConfigs,
    AllocateProducerIds,
    CreateAcls,
    DeleteAcls,
    AlterUserScramCredentials,
    UpdateFeatures,
    AlterPartitionReassignments,
    UnregisterBroker,
    AlterClientQuotas,
    RegisterBroker,
    BrokerHeartbeat,
    AlterPartition,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreateTopicsCall {
    pub topics: Vec<CreateTopic>,
    pub validate_only: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DeleteTopicsCall {
    pub topics: Vec<TopicRef>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreatePartitionsCall {
    pub topics: Vec<CreatePartitions>,
    pub validate_only: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ElectLeadersCall {
    pub election: ElectionType,
    pub partitions: Vec<(String, i32)>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AlterConfigsCall {
    pub resources: Vec<AlterTopicConfigs>,
    /// Broker resources (metadata.version 6): absent from the JSON when there are none, so
    /// the payload of a topic-only call is unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brokers: Vec<AlterBrokerConfigs>,
    /// Group resources (metadata.version 9): absent when there are none, as `brokers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<AlterGroupConfigs>,
    pub validate_only: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AllocateProducerIdsCall {}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreateAclsCall {
    pub acls: Vec<shoal_acl::AclBinding>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AlterUserScramCredentialsCall {
    pub alterations: Vec<crate::controller::requests::UserScramAlteration>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UpdateFeaturesCall {
    pub updates: Vec<crate::controller::requests::FeatureUpdate>,
    pub validate_only: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AlterPartitionReassignmentsCall {
    pub partitions: Vec<crate::controller::requests::PartitionReassignment>,
    pub allow_replication_factor_change: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UnregisterBrokerCall {
    pub broker_id: i32,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AlterClientQuotasCall {
    pub alterations: Vec<crate::controller::requests::ClientQuotaAlteration>,
    pub validate_only: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DeleteAclsCall {
    pub filters: Vec<shoal_acl::AclFilter>,
}

/// A result that may say "not the controller, try `leader_hint`" (and nothing was done).
pub trait Routed {
    /// `Some(leader_hint)` if the callee refused as not the controller.
    fn not_controller(&self) -> Option<Option<i32>>;
}

fn hint_of(e: &ControllerError) -> Option<Option<i32>> {
    match e {
        ControllerError::NotController { leader_hint } => Some(*leader_hint),
        _ => None,
    }
}

impl<T> Routed for ControllerResults<T> {
    fn not_controller(&self) -> Option<Option<i32>> {
        if self.log_index.is_some() || self.results.is_empty() {
            return None;
        }
        let mut hint = None;
        for result in &self.results {
            hint = Some(hint_of(result.as_ref().err()?)?);
        }
        hint
    }
}

impl<T> Routed for Result<T, ControllerError> {
    fn not_controller(&self) -> Option<Option<i32>> {
        self.as_ref().err().and_then(hint_of)
    }
}

impl<T> Routed for Result<T, BrokerError> {
    fn not_controller(&self) -> Option<Option<i32>> {
        match self {
            Err(BrokerError::Controller(e)) => hint_of(e),
            _ => None,
        }
    }
}

/// How a forwarded call failed in transport.
#[derive(Debug)]
pub enum ForwardError {
    /// Not reached (refused, reset, unknown address): safe to try elsewhere.
    Unreachable(String),
    /// No answer within the time left: the outcome is unknown.
    TimedOut,
    /// The target refused the envelope (other cluster, wrong node): a misconfiguration.
    Rejected(String),
}

/// gRPC clients to the other voters' controller services, created lazily.
#[derive(Debug)]
pub struct Forwarder {
    cluster_id: String,
    node_id: i32,
    voters: Arc<VoterBook>,
    connect_timeout: Duration,
    /// Mutual TLS to the voters, when the controller listener uses SSL.
    tls: Option<ClientTls>,
    /// By voter id, with the address the client was made for (a voter re-added elsewhere gets
    /// a new one).
    clients: Mutex<BTreeMap<i32, (String, ControllerServiceClient<Channel>)>>,
}

impl Forwarder {
    pub fn new(
        cluster_id: &str,
        node_id: i32,
        voters: Arc<VoterBook>,
        connect_timeout: Duration,
        tls: Option<ClientTls>,
    ) -> Self {
        Forwarder {
            cluster_id: cluster_id.to_string(),
            node_id,
            voters,
            connect_timeout,
            tls,
            clients: Mutex::new(BTreeMap::new()),
        }
    }

    fn client(&self, target: i32) -> Result<ControllerServiceClient<Channel>, ForwardError> {
        let address = self.voters.address(target).ok_or_else(|| {
            ForwardError::Unreachable(format!("node {target} is not a controller voter"))
        })?;
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, client)) = clients.get(&target)
            && *at == address
        {
            return Ok(client.clone());
        }
        let channel = NodeConnector::new(self.tls.clone(), Some(target))
            .channel(&address, self.connect_timeout)
            .map_err(|e| {
                ForwardError::Unreachable(format!(
                    "controller address '{address}' of node {target} is invalid: {e}"
                ))
            })?;
        let client = ControllerServiceClient::new(channel)
            .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES);
        clients.insert(target, (address, client.clone()));
        Ok(client)
    }

    fn forget(&self, target: i32) {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.remove(&target);
    }

    /// Sends `payload` to `target`'s controller service and returns the reply payload.
    pub async fn call(
        &self,
        target: i32,
        method: ForwardMethod,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, ForwardError> {
        let mut client = self.client(target)?;
        let mut request = tonic::Request::new(ForwardedRequest {
            cluster_id: self.cluster_id.clone(),
            source_node_id: self.node_id,
            target_node_id: target,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            payload,
            payload_version: FORWARD_PAYLOAD_VERSION,
        });
        request.set_timeout(timeout);
        let send = async move {
            match method {
                ForwardMethod::CreateTopics => client.create_topics(request).await,
                ForwardMethod::DeleteTopics => client.delete_topics(request).await,
                ForwardMethod::CreatePartitions => client.create_partitions(request).await,
                ForwardMethod::ElectLeaders => client.elect_leaders(request).await,
                ForwardMethod::IncrementalAlterConfigs => {
                    client.incremental_alter_configs(request).await
                }
                ForwardMethod::AllocateProducerIds => client.allocate_producer_ids(request).await,
                ForwardMethod::CreateAcls => client.create_acls(request).await,
                ForwardMethod::DeleteAcls => client.delete_acls(request).await,
                ForwardMethod::AlterUserScramCredentials => {
                    client.alter_user_scram_credentials(request).await
                }
                ForwardMethod::UpdateFeatures => client.update_features(request).await,
                ForwardMethod::AlterPartitionReassignments => {
                    client.alter_partition_reassignments(request).await
                }
                ForwardMethod::UnregisterBroker => client.unregister_broker(request).await,
                ForwardMethod::AlterClientQuotas => client.alter_client_quotas(request).await,
                ForwardMethod::RegisterBroker => client.register_broker(request).await,
                ForwardMethod::BrokerHeartbeat => client.broker_heartbeat(request).await,
                ForwardMethod::AlterPartition => client.alter_partition(request).await,
            }
        };
        match tokio::time::timeout(timeout, send).await {
            Err(_) => Err(ForwardError::TimedOut),
            Ok(Ok(reply)) => {
                let reply = reply.into_inner();
                check_forward_payload_version(reply.payload_version)
                    .map_err(|e| ForwardError::Rejected(format!("node {target}: {e}")))?;
                Ok(reply.payload)
            }
            Ok(Err(status)) => {
                let what = format!("node {target}: {}: {}", status.code(), status.message());
                match status.code() {
                    tonic::Code::DeadlineExceeded => Err(ForwardError::TimedOut),
                    // Refused for what the request is (another cluster, not a node of this
                    // one, over a rate): another voter would refuse it too.
                    tonic::Code::FailedPrecondition
                    | tonic::Code::PermissionDenied
                    | tonic::Code::ResourceExhausted => Err(ForwardError::Rejected(what)),
                    _ => {
                        self.forget(target);
                        Err(ForwardError::Unreachable(what))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_payload_versions_above_ours_are_refused_by_name() {
        assert!(
            check_forward_payload_version(0).is_ok(),
            "releases before versioning"
        );
        assert!(check_forward_payload_version(FORWARD_PAYLOAD_VERSION).is_ok());
        let err = check_forward_payload_version(FORWARD_PAYLOAD_VERSION + 1).unwrap_err();
        assert!(
            err.contains("forwarded controller payload version 2") && err.contains("0 to 1"),
            "{err}"
        );
    }

    #[test]
    fn only_an_untouched_all_not_controller_result_is_rerouted() {
        let nc = |h| ControllerError::NotController { leader_hint: h };
        let all: ControllerResults<()> = ControllerResults::all_failed(2, nc(Some(3)));
        assert_eq!(all.not_controller(), Some(Some(3)));
        let mixed = ControllerResults::<()> {
            results: vec![Ok(()), Err(nc(Some(3)))],
            log_index: None,
        };
        assert_eq!(mixed.not_controller(), None);
        let committed = ControllerResults::<()> {
            results: vec![Err(nc(None))],
            log_index: Some(4),
        };
        assert_eq!(committed.not_controller(), None);
        let r: Result<(), BrokerError> = Err(BrokerError::Controller(nc(None)));
        assert_eq!(r.not_controller(), Some(None));
        let r: Result<(), BrokerError> = Err(BrokerError::BrokerIdNotRegistered { broker_id: 1 });
        assert_eq!(r.not_controller(), None);
    }
}
