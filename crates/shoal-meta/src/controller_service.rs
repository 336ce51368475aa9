//! The server side of `ControllerService`: requests forwarded by other nodes'
//! `ControllerClient`s, executed here by this node's controller (see `client::forward` for the
//! client side).
//!
//! **Never forwards again.** The handler runs the `*_local` controller method, which answers
//! NotController (with this node's leader hint) if this node does not lead; the sender retries
//! there. So a request makes at most one hop, and two nodes with different views of the leader
//! cannot bounce it between them.
//!
//! **Envelope first**, as for Raft RPCs: a request from another cluster, or addressed to
//! another node id, is refused with FAILED_PRECONDITION before its payload is decoded.
//!
//! **Only nodes, each for itself.** The cluster id is no secret, so the sender must be a node
//! of the cluster (a voter or a registered broker), and a broker RPC (registration, heartbeat,
//! AlterPartition) from a node that is not a voter must be for the broker that sends it: else
//! PERMISSION_DENIED. A forged
//! shutdown heartbeat for a real broker also needs that broker's current epoch. Producer-id
//! blocks (one Raft entry each) are rate-limited per node. On plaintext links a sender can still
//! claim another node's id; with mutual TLS (`shoal_internode`) the id is its certificate's.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::watch;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::{Request, Response, Status};

use crate::client::forward::{
    AllocateProducerIdsCall, AlterClientQuotasCall, AlterConfigsCall,
    AlterPartitionReassignmentsCall, AlterUserScramCredentialsCall, CreateAclsCall,
    CreatePartitionsCall, CreateTopicsCall, DeleteAclsCall, DeleteTopicsCall, ElectLeadersCall,
    FORWARD_PAYLOAD_VERSION, UnregisterBrokerCall, UpdateFeaturesCall,
    check_forward_payload_version,
};
use crate::controller::Controller;
use crate::controller::{AlterPartitionRequest, BrokerHeartbeat, BrokerRegistrationRequest};
use crate::image::MetadataImage;
use crate::proto::controller_service_server::ControllerService;
use crate::proto::{ForwardedReply, ForwardedRequest};

/// Producer-id blocks one node may allocate per second through this service, and in a burst.
/// A broker needs one block per 1,000 producers it initializes; a loop asking for blocks would
/// otherwise append one Raft entry per call.
pub const PRODUCER_ID_BLOCKS_PER_SECOND: u32 = 10;
pub const PRODUCER_ID_BLOCKS_BURST: u32 = 50;

/// Executes forwarded requests on this node's controller.
pub struct ControllerGrpcService {
    controller: Arc<Controller>,
    cluster_id: String,
    node_id: i32,
    request_timeout_ms: u64,
    /// The controller voters: they may send requests, as may registered brokers.
    voters: Arc<crate::voter_book::VoterBook>,
    images: watch::Receiver<Arc<MetadataImage>>,
    producer_id_blocks: DefaultKeyedRateLimiter<i32>,
}

/// Who a request speaks for: a broker RPC names its broker, an admin request nobody.
#[derive(Clone, Copy)]
enum SpeaksFor {
    Broker(i32),
    Admin,
}

impl ControllerGrpcService {
    pub fn new(
        controller: Arc<Controller>,
        cluster_id: &str,
        node_id: i32,
        request_timeout_ms: u64,
        voters: Arc<crate::voter_book::VoterBook>,
        images: watch::Receiver<Arc<MetadataImage>>,
    ) -> Self {
        let per_second = NonZeroU32::new(PRODUCER_ID_BLOCKS_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(PRODUCER_ID_BLOCKS_BURST).unwrap_or(NonZeroU32::MIN);
        ControllerGrpcService {
            controller,
            cluster_id: cluster_id.to_string(),
            node_id,
            request_timeout_ms,
            voters,
            images,
            producer_id_blocks: RateLimiter::keyed(
                Quota::per_second(per_second).allow_burst(burst),
            ),
        }
    }

    /// The sender must be a node of this cluster, and a broker RPC must be its own.
    ///
    /// This node's image may lag the log (a leader elected a moment ago still applying, a
    /// follower a heartbeat behind), so a sender it does not know is looked up again in an
    /// image caught up to the commit before it is refused; if that cannot be had here (not the
    /// leader, no quorum) the answer is UNAVAILABLE, which the sender retries elsewhere.
    async fn check_sender(
        &self,
        source: i32,
        speaks_for: SpeaksFor,
        deadline: Instant,
    ) -> Result<(), Status> {
        // Voters are the control plane (they could write anything to the log); any other
        // node speaks only for itself.
        let voter = self.voters.contains(source);
        if let SpeaksFor::Broker(broker_id) = speaks_for
            && broker_id != source
            && !voter
        {
            tracing::warn!(
                source,
                broker_id,
                "refused a broker RPC sent on behalf of another broker"
            );
            return Err(Status::permission_denied(format!(
                "node {source} sent a request on behalf of broker {broker_id}; a broker speaks \
                 only for itself"
            )));
        }
        // A broker's first registration comes before it is known.
        let registering = matches!(speaks_for, SpeaksFor::Broker(_));
        if voter || registering || self.images.borrow().brokers.contains_key(&source) {
            return Ok(());
        }
        match self.controller.caught_up_image(deadline).await {
            Ok(image) if image.brokers.contains_key(&source) => Ok(()),
            Ok(image) => {
                tracing::warn!(
                    source,
                    metadata_offset = image.last_applied_index,
                    "refused a controller request from a node that is not in the cluster"
                );
                Err(Status::permission_denied(format!(
                    "node {source} is neither a voter nor a registered broker of this cluster \
                     (metadata at log index {})",
                    image.last_applied_index
                )))
            }
            Err(e) => Err(Status::unavailable(format!(
                "node {}: cannot confirm that node {source} belongs to the cluster: {e}",
                self.node_id
            ))),
        }
    }

    /// Checks the envelope and the sender, decodes the payload, runs `handle` with the deadline
    /// the sender has left (capped by ours) and encodes its result.
    async fn serve<Req, Resp, F>(
        &self,
        request: Request<ForwardedRequest>,
        speaks_for: impl FnOnce(&Req) -> SpeaksFor,
        handle: impl FnOnce(Arc<Controller>, Req, Instant) -> F,
    ) -> Result<Response<ForwardedReply>, Status>
    where
        Req: DeserializeOwned,
        Resp: Serialize,
        F: Future<Output = Resp>,
    {
        shoal_internode::check_claim(request.extensions(), request.get_ref().source_node_id)?;
        let request = request.into_inner();
        if request.cluster_id != self.cluster_id {
            return Err(Status::failed_precondition(format!(
                "cluster id mismatch: node {} belongs to cluster '{}', node {} to cluster '{}'",
                request.source_node_id, request.cluster_id, self.node_id, self.cluster_id
            )));
        }
        if request.target_node_id != self.node_id {
            return Err(Status::failed_precondition(format!(
                "node {} addressed node {}, but this is node {}; check controller.quorum.voters",
                request.source_node_id, request.target_node_id, self.node_id
            )));
        }
        check_forward_payload_version(request.payload_version).map_err(|e| {
            Status::failed_precondition(format!("node {}: {e}", request.source_node_id))
        })?;
        let call: Req = serde_json::from_slice(&request.payload).map_err(|e| {
            Status::invalid_argument(format!("forwarded request does not decode: {e}"))
        })?;
        let timeout_ms = request.timeout_ms.min(self.request_timeout_ms);
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        self.check_sender(request.source_node_id, speaks_for(&call), deadline)
            .await?;
        let result = handle(self.controller.clone(), call, deadline).await;
        let payload = serde_json::to_vec(&result)
            .map_err(|e| Status::internal(format!("cannot encode reply: {e}")))?;
        Ok(Response::new(ForwardedReply {
            payload,
            payload_version: FORWARD_PAYLOAD_VERSION,
        }))
    }
}

fn admin<T>(_: &T) -> SpeaksFor {
    SpeaksFor::Admin
}

#[tonic::async_trait]
impl ControllerService for ControllerGrpcService {
    async fn create_topics(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
            admin,
            |c, call: CreateTopicsCall, deadline| async move {
                c.create_topics_local(call.topics, call.validate_only, deadline)
                    .await
            },
        )
        .await
    }

    async fn delete_topics(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
            admin,
            |c, call: DeleteTopicsCall, deadline| async move {
                c.delete_topics_local(call.topics, deadline).await
            },
        )
        .await
    }

    async fn create_partitions(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
            admin,
            |c, call: CreatePartitionsCall, deadline| async move {
                c.create_partitions_local(call.topics, call.validate_only, deadline)
                    .await
            },
        )
        .await
    }

    async fn elect_leaders(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
            admin,
            |c, call: ElectLeadersCall, deadline| async move {
                c.elect_leaders_local(call.election, call.partitions, deadline)
                    .await
            },
        )
        .await
    }

    async fn incremental_alter_configs(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
            admin,
            |c, call: AlterConfigsCall, deadline| async move {
                c.incremental_alter_configs_local(
                    call.resources,
                    call.brokers,
                    call.groups,
                    call.validate_only,
                    deadline,
                )
                .await
            },
        )
        .await
    }

    async fn alter_client_quotas(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
            admin,
            |c, call: AlterClientQuotasCall, deadline| async move {
                c.alter_client_quotas_local(call.alterations, call.validate_only, deadline)
                    .await
            },
        )
        .await
    }

    async fn create_acls(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
            admin,
            |c, call: CreateAclsCall, deadline| async move {
                c.create_acls_local(call.acls, deadline).await
            },
        )
        .await
    }

    async fn alter_user_scram_credentials(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
            admin,
            |c, call: AlterUserScramCredentialsCall, deadline| async move {
                c.alter_user_scram_credentials_local(call.alterations, deadline)
                    .await
            },
        )
        .await
    }

    async fn update_features(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
            admin,
            |c, call: UpdateFeaturesCall, deadline| async move {
                c.update_features_local(call.updates, call.validate_only, deadline)
                    .await
            },
        )
        .await
    }

    async fn alter_partition_reassignments(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
            admin,
            |c, call: AlterPartitionReassignmentsCall, deadline| async move {
                c.alter_partition_reassignments_local(
                    call.partitions,
                    call.allow_replication_factor_change,
                    deadline,
                )
                .await
            },
        )
        .await
    }

    async fn unregister_broker(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
            admin,
            |c, call: UnregisterBrokerCall, deadline| async move {
                c.unregister_broker_local(call.broker_id, deadline).await
            },
        )
        .await
    }

    async fn delete_acls(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
            admin,
            |c, call: DeleteAclsCall, deadline| async move {
                c.delete_acls_local(call.filters, deadline).await
            },
        )
        .await
    }

    async fn allocate_producer_ids(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        let source = request.get_ref().source_node_id;
        if self.producer_id_blocks.check_key(&source).is_err() {
            tracing::warn!(
                source,
                "refused a producer-id block: allocation rate exceeded"
            );
            return Err(Status::resource_exhausted(format!(
                "node {source} asks for producer-id blocks faster than \
                 {PRODUCER_ID_BLOCKS_PER_SECOND}/s (burst {PRODUCER_ID_BLOCKS_BURST})"
            )));
        }
        self.serve(
            request,
            admin,
            |c, _call: AllocateProducerIdsCall, deadline| async move {
                c.allocate_producer_ids_local(deadline).await
            },
        )
        .await
    }

    async fn register_broker(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
            |call: &BrokerRegistrationRequest| SpeaksFor::Broker(call.broker_id),
            |c, call: BrokerRegistrationRequest, deadline| async move {
                c.register_local(call, deadline).await
            },
        )
        .await
    }

    async fn broker_heartbeat(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
            |call: &BrokerHeartbeat| SpeaksFor::Broker(call.broker_id),
            |c, call: BrokerHeartbeat, deadline| async move {
            c.heartbeat_local(call, deadline).await
        })
        .await
    }

    async fn alter_partition(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
            |call: &AlterPartitionRequest| SpeaksFor::Broker(call.broker_id),
            |c, call: AlterPartitionRequest, deadline| async move {
                c.alter_partition_local(call, deadline).await
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Endpoint;
    use crate::node::{MetaConfig, MetaNode};

    fn forwarded(cluster_id: &str, source: i32) -> Request<ForwardedRequest> {
        let call = CreateTopicsCall {
            topics: Vec::new(),
            validate_only: true,
        };
        Request::new(ForwardedRequest {
            cluster_id: cluster_id.to_string(),
            source_node_id: source,
            target_node_id: 1,
            timeout_ms: 5_000,
            payload: serde_json::to_vec(&call).expect("encodes"),
            payload_version: FORWARD_PAYLOAD_VERSION,
        })
    }

    /// CI failure of test_cluster_split: a broker's CreateTopics reached a controller whose image
    /// did not show that broker yet, and was refused as from a stranger. The service here sees
    /// an image that lags the log (the empty one), as a just-elected leader's may.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sender_missing_from_a_lagging_image_is_looked_up_in_the_caught_up_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = MetaNode::start(MetaConfig::new(1, dir.path().join("meta")))
            .await
            .expect("node starts");
        node.client()
            .register(BrokerRegistrationRequest {
                log_dirs: Vec::new(),
                broker_id: 5,
                incarnation_id: uuid::Uuid::from_u128(5),
                listeners: vec![Endpoint {
                    name: "PLAINTEXT".into(),
                    host: "127.0.0.1".into(),
                    port: 9097,
                }],
                rack: None,
                supported_features: Some(crate::features::supported_features()),
            })
            .await
            .expect("broker 5 registers");
        let cluster_id = node.cluster_id().to_string();
        let (_lagging, images) = watch::channel(Arc::new(MetadataImage::empty(&cluster_id)));
        let service = ControllerGrpcService::new(
            node.controller(),
            &cluster_id,
            1,
            5_000,
            node.voter_book(),
            images,
        );

        let reply = service.create_topics(forwarded(&cluster_id, 5)).await;
        assert!(reply.is_ok(), "broker 5 is registered: {reply:?}");
        let refused = service
            .create_topics(forwarded(&cluster_id, 20))
            .await
            .expect_err("node 20 is no node of this cluster");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert!(
            refused
                .message()
                .contains("neither a voter nor a registered broker"),
            "{}",
            refused.message()
        );
        node.shutdown().await.expect("shuts down");
    }
}
