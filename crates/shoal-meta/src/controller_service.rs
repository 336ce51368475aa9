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

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::{Request, Response, Status};

use crate::client::forward::{
    AllocateProducerIdsCall, AlterConfigsCall, CreatePartitionsCall, CreateTopicsCall,
    DeleteTopicsCall, ElectLeadersCall, FORWARD_PAYLOAD_VERSION, check_forward_payload_version,
};
use crate::controller::Controller;
use crate::controller::{AlterPartitionRequest, BrokerHeartbeat, BrokerRegistrationRequest};
use crate::proto::controller_service_server::ControllerService;
use crate::proto::{ForwardedReply, ForwardedRequest};

/// Executes forwarded requests on this node's controller.
pub struct ControllerGrpcService {
    controller: Arc<Controller>,
    cluster_id: String,
    node_id: i32,
    request_timeout_ms: u64,
}

impl ControllerGrpcService {
    pub fn new(
        controller: Arc<Controller>,
        cluster_id: &str,
        node_id: i32,
        request_timeout_ms: u64,
    ) -> Self {
        ControllerGrpcService {
            controller,
            cluster_id: cluster_id.to_string(),
            node_id,
            request_timeout_ms,
        }
    }

    /// Checks the envelope, decodes the payload, runs `handle` with the deadline the sender
    /// has left (capped by ours) and encodes its result.
    async fn serve<Req, Resp, F>(
        &self,
        request: Request<ForwardedRequest>,
        handle: impl FnOnce(Arc<Controller>, Req, Instant) -> F,
    ) -> Result<Response<ForwardedReply>, Status>
    where
        Req: DeserializeOwned,
        Resp: Serialize,
        F: Future<Output = Resp>,
    {
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
        let result = handle(self.controller.clone(), call, deadline).await;
        let payload = serde_json::to_vec(&result)
            .map_err(|e| Status::internal(format!("cannot encode reply: {e}")))?;
        Ok(Response::new(ForwardedReply {
            payload,
            payload_version: FORWARD_PAYLOAD_VERSION,
        }))
    }
}

#[tonic::async_trait]
impl ControllerService for ControllerGrpcService {
    async fn create_topics(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(request, |c, call: CreateTopicsCall, deadline| async move {
            c.create_topics_local(call.topics, call.validate_only, deadline)
                .await
        })
        .await
    }

    async fn delete_topics(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(request, |c, call: DeleteTopicsCall, deadline| async move {
            c.delete_topics_local(call.topics, deadline).await
        })
        .await
    }

    async fn create_partitions(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
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
        self.serve(request, |c, call: ElectLeadersCall, deadline| async move {
            c.elect_leaders_local(call.election, call.partitions, deadline)
                .await
        })
        .await
    }

    async fn incremental_alter_configs(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(request, |c, call: AlterConfigsCall, deadline| async move {
            c.incremental_alter_configs_local(call.resources, call.validate_only, deadline)
                .await
        })
        .await
    }

    async fn allocate_producer_ids(
        &self,
        request: Request<ForwardedRequest>,
    ) -> Result<Response<ForwardedReply>, Status> {
        self.serve(
            request,
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
        self.serve(request, |c, call: BrokerHeartbeat, deadline| async move {
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
            |c, call: AlterPartitionRequest, deadline| async move {
                c.alter_partition_local(call, deadline).await
            },
        )
        .await
    }
}
