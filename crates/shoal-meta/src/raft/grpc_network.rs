//! The Raft transport between controllers: openraft's `RaftNetwork` over tonic gRPC clients.
//!
//! **Why this shape.** openraft drives the protocol; the transport only has to move its
//! messages and, crucially, classify failures: `Unreachable` makes openraft back off (a dead or
//! restarting peer), `Network` makes it retry on its own schedule (a hiccup), `RemoteError` is
//! the peer's Raft answering with an error. Payloads are versioned (`raft::payload`): entries
//! travel in the same versioned encoding as in the sled log, wrapped in the envelope of
//! `proto/controller.proto`.
//!
//! **Addresses come from the configured voter list** (`controller.quorum.voters`) where it names
//! the peer, like Kafka's static quorum: moving such a controller to another host is a config
//! change. A controller added later (AddVoter) is reached at the address it was added with,
//! which openraft's membership stores and hands to `new_client`.
//!
//! **Membership in every envelope.** Each request names the voters and the log index of this
//! node's Raft membership, for the receiver's check (`raft::membership_check`).
//!
//! **Connections.** A client is created lazily on the first RPC to a peer (tonic
//! `connect_lazy`: no I/O until used). After a transport failure it is dropped, so the next RPC
//! after openraft's back-off builds a fresh one. Every RPC is bounded by openraft's per-RPC
//! deadline (`RPCOption::hard_ttl`, derived by openraft from the heartbeat interval for
//! AppendEntries, the election timeout for Vote and `install_snapshot_timeout` for snapshots),
//! which is also sent to the server as `grpc-timeout`.
//!
//! **Directory ids.** Each request names the metadata directory this node's committed image
//! records for the addressee (`crate::voter_directory`); each reply names the responder's, which
//! is noted in [`ObservedDirectories`] for the controller to record. A reply from another
//! directory than the recorded one is turned into `Unreachable`: a wiped voter's
//! acknowledgements and votes never count.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftMetrics};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shoal_internode::{ClientTls, NodeConnector};
use tonic::transport::Channel;

use crate::image::MetadataImage;
use crate::proto::raft_reply;
use crate::proto::raft_service_client::RaftServiceClient;
use crate::proto::{RaftReply, RaftRequest};
use crate::raft::MAX_RAFT_MESSAGE_BYTES;
use crate::raft::membership_check::MembershipView;
use crate::raft::payload;
use crate::raft::types::{NodeId, TypeConfig, to_kafka_node_id};
use crate::voter_directory::{self, ObservedDirectories};

/// Who this node is, and what it knows about the voters' directories.
#[derive(Debug, Clone)]
pub struct DirectoryContext {
    /// This node's metadata directory id.
    pub own: uuid::Uuid,
    /// The applied image: its `voter_directories` are the committed voter keys.
    pub images: tokio::sync::watch::Receiver<Arc<MetadataImage>>,
    /// Where replies' directory ids are noted.
    pub observed: Arc<ObservedDirectories>,
    /// This node's Raft metrics, set once Raft exists: every envelope names its membership.
    pub membership: MembershipSource,
}

/// AppendEntries payloads above this (with more than one entry) are split: openraft gives an
/// AppendEntries RPC one heartbeat interval to complete, and a batch of this size still fits
/// into 50 ms on a LAN. A single larger entry is sent alone (up to `MAX_RAFT_MESSAGE_BYTES`).
const APPEND_SPLIT_BYTES: usize = 1024 * 1024;

/// What every connection of this node needs to know.
#[derive(Debug)]
struct NetworkContext {
    cluster_id: String,
    source_node_id: i32,
    /// Configured voters: node id → host:port.
    voters: BTreeMap<i32, String>,
    connect_timeout: Duration,
    /// Sleep between attempts to reach an unreachable peer.
    backoff: Duration,
    /// Mutual TLS to the other voters, when the controller listener uses SSL.
    tls: Option<ClientTls>,
    directories: DirectoryContext,
}

/// Where the transport reads this node's membership; filled right after `Raft::new`, which
/// needs the transport first.
pub type MembershipSource =
    Arc<OnceLock<tokio::sync::watch::Receiver<RaftMetrics<NodeId, BasicNode>>>>;

/// Creates one [`GrpcConnection`] per peer; owned by openraft.
#[derive(Debug, Clone)]
pub struct GrpcNetworkFactory {
    context: Arc<NetworkContext>,
}

impl GrpcNetworkFactory {
    /// `connect_timeout` bounds a TCP + HTTP/2 handshake; `backoff` is how long openraft waits
    /// before retrying a peer that was unreachable.
    pub fn new(
        cluster_id: &str,
        source_node_id: i32,
        voters: BTreeMap<i32, String>,
        connect_timeout: Duration,
        backoff: Duration,
        tls: Option<ClientTls>,
        directories: DirectoryContext,
    ) -> Self {
        GrpcNetworkFactory {
            context: Arc::new(NetworkContext {
                cluster_id: cluster_id.to_string(),
                source_node_id,
                voters,
                connect_timeout,
                backoff,
                tls,
                directories,
            }),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for GrpcNetworkFactory {
    type Network = GrpcConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        let target_node_id = to_kafka_node_id(target).unwrap_or(-1);
        let address = self
            .context
            .voters
            .get(&target_node_id)
            .cloned()
            .unwrap_or_else(|| node.addr.clone());
        GrpcConnection {
            context: self.context.clone(),
            target,
            target_node_id,
            address,
            client: None,
        }
    }
}

/// openraft's connection to one peer.
#[derive(Debug)]
pub struct GrpcConnection {
    context: Arc<NetworkContext>,
    target: NodeId,
    target_node_id: i32,
    address: String,
    /// `None` until the first RPC and after a transport failure.
    client: Option<RaftServiceClient<Channel>>,
}

/// How one RPC failed, before it is typed for openraft.
enum Failure {
    /// The peer could not be reached or refused the envelope: back off.
    Unreachable(String),
    /// The exchange failed in flight (timeout, garbled reply): retry normally.
    Network(String),
}

#[derive(Debug)]
struct TransportError(String);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TransportError {}

#[derive(Clone, Copy)]
enum RaftRpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

impl GrpcConnection {
    fn client(&mut self) -> Result<RaftServiceClient<Channel>, Failure> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let channel = NodeConnector::new(self.context.tls.clone(), Some(self.target_node_id))
            .channel(&self.address, self.context.connect_timeout)
            .map_err(|e| {
                Failure::Unreachable(format!(
                    "controller address '{}' of node {} is invalid: {e}",
                    self.address, self.target_node_id
                ))
            })?;
        let client = RaftServiceClient::new(channel)
            .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES);
        self.client = Some(client.clone());
        Ok(client)
    }

    /// The directory this node's committed metadata records for the addressee.
    fn expected_directory(&self) -> Option<uuid::Uuid> {
        self.context
            .directories
            .images
            .borrow()
            .voter_directories
            .get(&self.target_node_id)
            .copied()
    }

    fn envelope(&self, payload: Vec<u8>, snapshot_chunk: Vec<u8>) -> RaftRequest {
        let membership = self
            .context
            .directories
            .membership
            .get()
            .map(|metrics| MembershipView::from_metrics(&metrics.borrow()))
            .unwrap_or_default();
        RaftRequest {
            target_directory_id: voter_directory::to_wire(self.expected_directory()),
            source_directory_id: voter_directory::to_wire(Some(self.context.directories.own)),
            cluster_id: self.context.cluster_id.clone(),
            target_node_id: self.target_node_id,
            source_node_id: self.context.source_node_id,
            voter_ids: membership.voter_ids,
            membership_index: membership.index,
            payload,
            snapshot_chunk,
            payload_version: payload::RAFT_PAYLOAD_VERSION,
        }
    }

    /// Sends one envelope and returns the decoded reply: `Ok(Ok(response))`, or
    /// `Ok(Err(raft_error))` when the peer's Raft answered with an error.
    async fn call<Resp, E>(
        &mut self,
        rpc: RaftRpc,
        request: RaftRequest,
        deadline: Duration,
    ) -> Result<Result<Resp, E>, Failure>
    where
        Resp: DeserializeOwned,
        E: DeserializeOwned,
    {
        let mut client = self.client()?;
        let mut request = tonic::Request::new(request);
        request.set_timeout(deadline);
        let send = async move {
            match rpc {
                RaftRpc::AppendEntries => client.append_entries(request).await,
                RaftRpc::Vote => client.vote(request).await,
                RaftRpc::InstallSnapshot => client.install_snapshot(request).await,
            }
        };
        let reply = match tokio::time::timeout(deadline, send).await {
            Err(_) => {
                return Err(Failure::Network(format!(
                    "no reply from node {} ({}) within {} ms",
                    self.target_node_id,
                    self.address,
                    deadline.as_millis()
                )));
            }
            Ok(Err(status)) => return Err(self.classify(status)),
            Ok(Ok(reply)) => reply.into_inner(),
        };
        let replied = voter_directory::from_wire(&reply.directory_id).map_err(|e| {
            Failure::Network(format!(
                "garbled reply from node {}: {e}",
                self.target_node_id
            ))
        })?;
        if let Some(directory_id) = replied {
            self.context
                .directories
                .observed
                .record(self.target_node_id, directory_id);
        }
        // A wiped voter forgot its term and its log: an answer from it must not count (not an
        // acknowledgement towards a commit, nor a vote) until its new directory is recorded.
        let expected = self.expected_directory();
        if let Some(reason) = voter_directory::reply_refusal(expected, replied) {
            return Err(Failure::Unreachable(format!(
                "node {}: {reason}",
                self.target_node_id
            )));
        }
        decode_reply(reply).map_err(|e| {
            Failure::Network(format!(
                "garbled reply from node {}: {e}",
                self.target_node_id
            ))
        })
    }

    fn classify(&mut self, status: tonic::Status) -> Failure {
        let what = format!(
            "node {} ({}): {}: {}",
            self.target_node_id,
            self.address,
            status.code(),
            status.message()
        );
        match status.code() {
            // Connection refused/reset, or the server is going away: start afresh next time.
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled => {
                self.client = None;
                Failure::Unreachable(what)
            }
            // The peer refused our envelope (other cluster, other voter list, wrong node id):
            // a misconfiguration, so back off rather than hammer it.
            tonic::Code::FailedPrecondition => {
                tracing::warn!(peer = %what, "controller peer rejected this node");
                Failure::Unreachable(what)
            }
            tonic::Code::DeadlineExceeded => Failure::Network(what),
            _ => {
                self.client = None;
                Failure::Network(what)
            }
        }
    }

    async fn exchange<Resp, E>(
        &mut self,
        rpc: RaftRpc,
        payload: Vec<u8>,
        snapshot_chunk: Vec<u8>,
        deadline: Duration,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let request = self.envelope(payload, snapshot_chunk);
        match self
            .call::<Resp, RaftError<NodeId, E>>(rpc, request, deadline)
            .await
        {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            Err(Failure::Unreachable(m)) => {
                Err(RPCError::Unreachable(Unreachable::new(&TransportError(m))))
            }
            Err(Failure::Network(m)) => {
                Err(RPCError::Network(NetworkError::new(&TransportError(m))))
            }
        }
    }
}

/// JSON of an openraft request; failure is a local bug, reported as a network error.
fn encode<T: Serialize>(request: &T) -> Result<Vec<u8>, Box<NetworkError>> {
    serde_json::to_vec(request).map_err(|e| {
        Box::new(NetworkError::new(&TransportError(format!(
            "cannot encode Raft request: {e}"
        ))))
    })
}

fn decode_reply<Resp: DeserializeOwned, E: DeserializeOwned>(
    reply: RaftReply,
) -> Result<Result<Resp, E>, String> {
    payload::check_version(reply.payload_version).map_err(|e| e.to_string())?;
    match reply.result {
        Some(raft_reply::Result::Ok(bytes)) => serde_json::from_slice(&bytes)
            .map(Ok)
            .map_err(|e| e.to_string()),
        Some(raft_reply::Result::RaftError(bytes)) => serde_json::from_slice(&bytes)
            .map(Err)
            .map_err(|e| e.to_string()),
        None => Err("reply has neither a result nor an error".to_string()),
    }
}

impl RaftNetwork<TypeConfig> for GrpcConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let payload = payload::encode_append_entries(&rpc).map_err(|e| {
            RPCError::Network(NetworkError::new(&TransportError(format!(
                "cannot encode AppendEntries: {e}"
            ))))
        })?;
        // openraft retries with at most the hinted number of entries.
        if payload.len() > APPEND_SPLIT_BYTES && rpc.entries.len() > 1 {
            let hint = u64::try_from(rpc.entries.len() / 2).unwrap_or(1);
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(hint),
            ));
        }
        self.exchange(
            RaftRpc::AppendEntries,
            payload,
            Vec::new(),
            option.hard_ttl(),
        )
        .await
    }

    async fn install_snapshot(
        &mut self,
        mut rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let chunk = std::mem::take(&mut rpc.data);
        let payload = encode(&rpc).map_err(|e| RPCError::Network(*e))?;
        self.exchange(RaftRpc::InstallSnapshot, payload, chunk, option.hard_ttl())
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let payload = encode(&rpc).map_err(|e| RPCError::Network(*e))?;
        self.exchange(RaftRpc::Vote, payload, Vec::new(), option.hard_ttl())
            .await
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.context.backoff))
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

    use super::*;
    use crate::records::MetadataRecord;

    fn connection() -> GrpcConnection {
        let factory = GrpcNetworkFactory::new(
            "c",
            1,
            // Nothing listens on port 1: a request that gets sent fails as unreachable.
            BTreeMap::from([
                (1, "127.0.0.1:1".to_string()),
                (2, "127.0.0.1:1".to_string()),
            ]),
            Duration::from_millis(100),
            Duration::from_millis(100),
            None,
            DirectoryContext {
                own: uuid::Uuid::from_u128(1),
                images: tokio::sync::watch::channel(Arc::new(MetadataImage::empty("c"))).1,
                observed: Arc::default(),
                membership: Arc::default(),
            },
        );
        GrpcConnection {
            context: factory.context,
            target: 2,
            target_node_id: 2,
            address: "127.0.0.1:1".to_string(),
            client: None,
        }
    }

    fn append(entries: usize, name_bytes: usize) -> AppendEntriesRequest<TypeConfig> {
        let entries = (1..=entries as u64)
            .map(|index| Entry::<TypeConfig> {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
                payload: EntryPayload::Normal(vec![MetadataRecord::Topic {
                    name: "x".repeat(name_bytes),
                    topic_id: uuid::Uuid::nil(),
                }]),
            })
            .collect();
        AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: None,
            leader_commit: None,
            entries,
        }
    }

    #[tokio::test]
    async fn large_batches_are_split_and_dead_peers_are_unreachable() {
        let option = RPCOption::new(Duration::from_millis(200));
        let mut conn = connection();
        match conn
            .append_entries(append(4, 512 * 1024), option.clone())
            .await
        {
            Err(RPCError::PayloadTooLarge(too_large)) => {
                assert_eq!(too_large.entries_hint(), 2)
            }
            other => panic!("expected PayloadTooLarge, got {other:?}"),
        }
        // One big entry is sent alone; small batches are sent as they are.
        for request in [append(1, 2 * 1024 * 1024), append(4, 10)] {
            match conn.append_entries(request, option.clone()).await {
                Err(RPCError::Unreachable(_)) => {}
                other => panic!("expected Unreachable, got {other:?}"),
            }
            assert!(conn.client.is_none(), "a failed client is dropped");
        }
    }
}
