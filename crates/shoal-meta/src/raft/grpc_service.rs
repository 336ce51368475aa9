//! The server side of the Raft transport: `RaftService` RPCs forwarded to this node's openraft.
//!
//! **Why the envelope check comes first.** Raft's safety assumes every message comes from a
//! member of *this* quorum. A controller of another cluster (a copied config, a reused host)
//! or one configured with a different voter list would otherwise be able to vote here or
//! overwrite our log. So before decoding anything, the request's cluster id and addressee must
//! be ours, and the sender's membership must fit ours (`raft::membership_check`: equal voter
//! lists while neither changed since creation); otherwise the RPC fails with
//! `FAILED_PRECONDITION` and a message naming both sides, and Raft never sees it. The cluster
//! id is no secret (clients see it in Metadata), so the sender must also be another member (or
//! know a newer membership), and the vote inside
//! (a candidate's, or the leader's on AppendEntries and InstallSnapshot) must be its own:
//! otherwise `PERMISSION_DENIED`. A non-voter can then neither make the leader step down with a
//! higher-term vote nor have entries committed. Without mTLS (issue #16) a sender can still lie
//! about its id; with it, the id is the certificate's.
//!
//! A Vote addressed to another metadata directory than this node's is refused too
//! (`crate::voter_directory`): the candidate knows this voter by a directory that was wiped.
//! Every reply carries this node's directory id, so the leader learns each voter's.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use openraft::raft::{InstallSnapshotRequest, VoteRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::{Request, Response, Status};

use crate::format::FormatError;
use crate::proto::raft_reply;
use crate::proto::raft_service_server::RaftService;
use crate::proto::{RaftReply, RaftRequest};
use crate::raft::membership_check::{MembershipRefusal, MembershipView, membership_refusal};
use crate::raft::payload;
use crate::raft::types::{MetaRaft, NodeId, TypeConfig, to_raft_node_id};
use crate::voter_directory;

/// Forwards accepted Raft RPCs to the local Raft node.
pub struct RaftGrpcService {
    raft: MetaRaft,
    cluster_id: String,
    node_id: i32,
    /// This node's metadata directory id.
    directory_id: uuid::Uuid,
    /// When a refused sender was last logged at WARN (a removed controller left running
    /// campaigns every election timeout).
    refusals_logged: std::sync::Mutex<BTreeMap<i32, Instant>>,
}

/// A refused sender is logged at WARN at most this often; the rest at DEBUG.
const REFUSAL_LOG_INTERVAL_MS: u64 = 10_000;
/// Senders whose last WARN is remembered; the map is cleared beyond it.
const MAX_REFUSED_SENDERS_TRACKED: usize = 64;

impl RaftGrpcService {
    pub fn new(raft: MetaRaft, cluster_id: &str, node_id: i32, directory_id: uuid::Uuid) -> Self {
        RaftGrpcService {
            raft,
            cluster_id: cluster_id.to_string(),
            node_id,
            directory_id,
            refusals_logged: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether a refusal of `from` should be logged at WARN now.
    fn warn_refusal(&self, from: i32) -> bool {
        let now = Instant::now();
        let mut logged = self
            .refusals_logged
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if logged.len() >= MAX_REFUSED_SENDERS_TRACKED && !logged.contains_key(&from) {
            logged.clear();
        }
        match logged.get(&from) {
            Some(at)
                if now.duration_since(*at) < Duration::from_millis(REFUSAL_LOG_INTERVAL_MS) =>
            {
                false
            }
            _ => {
                logged.insert(from, now);
                true
            }
        }
    }

    /// Refuses a Vote whose candidate knows this voter by another directory.
    fn check_directory(&self, request: &RaftRequest) -> Result<(), Status> {
        let expected = voter_directory::from_wire(&request.target_directory_id)
            .map_err(|e| Status::invalid_argument(format!("target_directory_id: {e}")))?;
        match voter_directory::vote_refusal(self.directory_id, expected) {
            None => Ok(()),
            Some(reason) => {
                tracing::warn!(
                    from = request.source_node_id,
                    "refused a Vote addressed to another metadata directory: {reason}"
                );
                Err(Status::failed_precondition(reason))
            }
        }
    }

    fn reply<T: Serialize, E: Serialize>(
        &self,
        outcome: Result<T, E>,
    ) -> Result<Response<RaftReply>, Status> {
        let mut reply = reply(outcome)?;
        reply.get_mut().directory_id = voter_directory::to_wire(Some(self.directory_id));
        Ok(reply)
    }

    /// Checks the envelope; on success returns the payload to decode.
    fn accept(&self, request: &RaftRequest) -> Result<(), Status> {
        let from = request.source_node_id;
        if request.cluster_id != self.cluster_id {
            tracing::warn!(
                from,
                their_cluster_id = %request.cluster_id,
                "rejected a Raft RPC from another cluster"
            );
            return Err(Status::failed_precondition(format!(
                "cluster id mismatch: node {from} belongs to cluster '{}', node {} to cluster \
                 '{}'; Raft RPCs between clusters are refused",
                request.cluster_id, self.node_id, self.cluster_id
            )));
        }
        if request.target_node_id != self.node_id {
            return Err(Status::failed_precondition(format!(
                "node {from} addressed node {}, but this is node {}; check \
                 controller.quorum.voters",
                request.target_node_id, self.node_id
            )));
        }
        let ours = MembershipView::from_metrics(&self.raft.metrics().borrow());
        let their_index = request.membership_index.unwrap_or(0);
        match membership_refusal(self.node_id, &ours, from, their_index, &request.voter_ids) {
            None => {}
            Some(MembershipRefusal::VoterSetMismatch) => {
                tracing::warn!(
                    from,
                    their_voters = ?request.voter_ids,
                    our_voters = ?ours.voter_ids,
                    "rejected a Raft RPC from a node with another voter list"
                );
                return Err(Status::failed_precondition(format!(
                    "voter set mismatch: node {from} is configured with voters {:?}, node {} \
                     with {:?}; every controller must have the same controller.quorum.voters",
                    request.voter_ids, self.node_id, ours.voter_ids
                )));
            }
            Some(MembershipRefusal::NotAMember) => {
                if self.warn_refusal(from) {
                    tracing::warn!(
                        from,
                        members = ?ours.members,
                        "rejected a Raft RPC from a node that is not another member (a removed \
                         controller still running is refused like this until it is stopped; \
                         logged once per {REFUSAL_LOG_INTERVAL_MS} ms per node)"
                    );
                } else {
                    tracing::debug!(
                        from,
                        "rejected a Raft RPC from a node that is not another member"
                    );
                }
                return Err(Status::permission_denied(format!(
                    "node {from} is not another member of this quorum (members {:?}, this is \
                     node {}) and knows no newer membership; Raft RPCs are accepted only from \
                     the other members",
                    ours.members, self.node_id
                )));
            }
        }
        Ok(())
    }

    /// The vote an RPC carries must be the sender's own: a Vote's candidate, or the leader of an
    /// AppendEntries or InstallSnapshot, is the node the envelope names.
    fn check_claim(&self, from: i32, rpc: &str, claimed: u64) -> Result<(), Status> {
        if to_raft_node_id(from) == Some(claimed) {
            return Ok(());
        }
        tracing::warn!(
            from,
            rpc,
            claimed,
            "rejected a Raft RPC claiming another node's vote"
        );
        Err(Status::permission_denied(format!(
            "node {from} sent a {rpc} on behalf of node {claimed}; a Raft RPC must carry its \
             sender's own vote"
        )))
    }
}

/// A payload version this node does not read is a peer of a newer release: refused as a
/// precondition (the sender backs off), naming both versions. Garbage is an invalid argument.
fn refuse(e: FormatError) -> Status {
    match e {
        FormatError::UnsupportedVersion { .. } => Status::failed_precondition(e.to_string()),
        other => Status::invalid_argument(format!("Raft payload does not decode: {other}")),
    }
}

fn decode<T: DeserializeOwned>(request: &RaftRequest) -> Result<T, Status> {
    payload::check_version(request.payload_version).map_err(refuse)?;
    payload::decode_json(&request.payload).map_err(refuse)
}

fn reply<T: Serialize, E: Serialize>(outcome: Result<T, E>) -> Result<Response<RaftReply>, Status> {
    let encode = |e: serde_json::Error| Status::internal(format!("cannot encode reply: {e}"));
    let result = match outcome {
        Ok(ok) => raft_reply::Result::Ok(serde_json::to_vec(&ok).map_err(encode)?),
        Err(err) => raft_reply::Result::RaftError(serde_json::to_vec(&err).map_err(encode)?),
    };
    Ok(Response::new(RaftReply {
        result: Some(result),
        payload_version: payload::RAFT_PAYLOAD_VERSION,
        directory_id: Vec::new(),
    }))
}

#[tonic::async_trait]
impl RaftService for RaftGrpcService {
    async fn append_entries(
        &self,
        request: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        // Before the payload is decoded: on mTLS links the certificate must be the sender's.
        shoal_internode::check_claim(request.extensions(), request.get_ref().source_node_id)?;
        let request = request.into_inner();
        self.accept(&request)?;
        let rpc = payload::decode_append_entries(request.payload_version, &request.payload)
            .map_err(refuse)?;
        self.check_claim(
            request.source_node_id,
            "AppendEntries",
            rpc.vote.leader_id().node_id,
        )?;
        self.reply(self.raft.append_entries(rpc).await)
    }

    async fn vote(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        // Before the payload is decoded: on mTLS links the certificate must be the sender's.
        shoal_internode::check_claim(request.extensions(), request.get_ref().source_node_id)?;
        let request = request.into_inner();
        self.accept(&request)?;
        let rpc: VoteRequest<NodeId> = decode(&request)?;
        self.check_claim(request.source_node_id, "Vote", rpc.vote.leader_id().node_id)?;
        self.check_directory(&request)?;
        self.reply(self.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        // Before the payload is decoded: on mTLS links the certificate must be the sender's.
        shoal_internode::check_claim(request.extensions(), request.get_ref().source_node_id)?;
        let request = request.into_inner();
        self.accept(&request)?;
        let mut rpc: InstallSnapshotRequest<TypeConfig> = decode(&request)?;
        self.check_claim(
            request.source_node_id,
            "InstallSnapshot",
            rpc.vote.leader_id().node_id,
        )?;
        rpc.data = request.snapshot_chunk;
        self.reply(self.raft.install_snapshot(rpc).await)
    }
}
