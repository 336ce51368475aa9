//! The controller gRPC server: one tonic server on the controller listener carrying the Raft
//! transport (`RaftService`), forwarded controller requests (`ControllerService`), the
//! committed metadata log for brokers (`MetadataLog`) and the admin API (`QuorumAdmin`).
//!
//! It runs as a background task over an already bound listener, so callers (and tests with
//! port 0) know the real address before any peer needs it. Stopping is graceful (HTTP/2 GOAWAY,
//! in-flight RPCs finish) but bounded: after `STOP_GRACE_MS` the task is aborted, because a
//! node that is shutting down must stop answering Raft RPCs promptly.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_internode::{NodeIncoming, NodeTls};
use shoal_net::{ConnectionLimiter, ConnectionLimits, LimitedIncoming};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};

use crate::controller::Controller;
use crate::controller_service::ControllerGrpcService;
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::meta_properties::{format_directory_id, parse_directory_id};
use crate::metadata_log::service::MetadataLogService;
use crate::metadata_log::{MetadataJournal, Observers};
use crate::proto::controller_service_server::ControllerServiceServer;
use crate::proto::metadata_log_server::MetadataLogServer;
use crate::proto::quorum_admin_server::{QuorumAdmin, QuorumAdminServer};
use crate::proto::raft_service_server::RaftServiceServer;
use crate::proto::{
    AddVoterRequest, AddVoterResponse, BrokerListener, BrokerStatus, DescribeBrokersRequest,
    DescribeBrokersResponse, DescribeQuorumRequest, DescribeQuorumResponse,
};
use crate::quorum_status::{Directories, quorum_status};
use crate::raft::MAX_RAFT_MESSAGE_BYTES;
use crate::raft::grpc_service::RaftGrpcService;
use crate::raft::types::MetaRaft;
use crate::voter_directory::ObservedDirectories;

/// Bound on a graceful stop before the server task is aborted.
const STOP_GRACE_MS: u64 = 1_000;
/// Longest an AddVoter may take to commit its record.
const MAX_ADD_VOTER_TIMEOUT_MS: u64 = 60_000;

/// Answers `DescribeQuorum` from this node's Raft metrics and `DescribeBrokers` from its image.
struct QuorumAdminService {
    raft: MetaRaft,
    cluster_id: String,
    node_id: i32,
    voters: BTreeMap<i32, String>,
    images: watch::Receiver<Arc<MetadataImage>>,
    observers: Arc<Observers>,
    controller: Arc<Controller>,
    request_timeout_ms: u64,
    directory_id: uuid::Uuid,
    observed_directories: Arc<ObservedDirectories>,
}

/// A refused AddVoter as a gRPC status.
fn add_voter_status(error: ControllerError) -> Status {
    match error {
        ControllerError::NotController { leader_hint } => Status::failed_precondition(format!(
            "not the metadata leader; the leader is {}",
            leader_hint.map_or_else(|| "unknown".to_string(), |l| format!("node {l}"))
        )),
        ControllerError::RequestTimedOut => {
            Status::deadline_exceeded("the record did not commit in time; retry")
        }
        ControllerError::InvalidRequest(m) | ControllerError::UnsupportedVersion(m) => {
            Status::failed_precondition(m)
        }
        other => Status::internal(other.to_string()),
    }
}

#[tonic::async_trait]
impl QuorumAdmin for QuorumAdminService {
    async fn describe_quorum(
        &self,
        _request: Request<DescribeQuorumRequest>,
    ) -> Result<Response<DescribeQuorumResponse>, Status> {
        let image = self.images.borrow().clone();
        let mut reported = self.observed_directories.all();
        reported.insert(self.node_id, self.directory_id);
        let status = quorum_status(
            &self.raft,
            &self.cluster_id,
            self.node_id,
            &self.voters,
            &self.observers,
            Directories {
                recorded: &image.voter_directories,
                reported,
            },
        )
        .await;
        Ok(Response::new(status.into()))
    }

    async fn add_voter(
        &self,
        request: Request<AddVoterRequest>,
    ) -> Result<Response<AddVoterResponse>, Status> {
        let request = request.into_inner();
        let requested = match request.directory_id.trim() {
            "" => None,
            text => Some(
                parse_directory_id(text)
                    .or_else(|| uuid::Uuid::parse_str(text).ok())
                    .ok_or_else(|| {
                        Status::invalid_argument(format!(
                            "'{text}' is not a directory id (meta.properties directory.id)"
                        ))
                    })?,
            ),
        };
        let timeout_ms = match request.timeout_ms {
            0 => self.request_timeout_ms,
            ms => ms.min(MAX_ADD_VOTER_TIMEOUT_MS),
        };
        let (plan, log_index) = self
            .controller
            .add_voter(
                request.voter_id,
                requested,
                Duration::from_millis(timeout_ms),
            )
            .await
            .map_err(add_voter_status)?;
        Ok(Response::new(AddVoterResponse {
            voter_id: plan.voter_id,
            directory_id: format_directory_id(plan.directory_id),
            previous_directory_id: plan.previous.map(format_directory_id).unwrap_or_default(),
            log_index,
        }))
    }

    async fn describe_brokers(
        &self,
        _request: Request<DescribeBrokersRequest>,
    ) -> Result<Response<DescribeBrokersResponse>, Status> {
        let image = self.images.borrow().clone();
        let brokers = image
            .brokers
            .values()
            .map(|b| BrokerStatus {
                broker_id: b.broker_id,
                broker_epoch: b.broker_epoch,
                incarnation_id: b.incarnation_id.to_string(),
                fenced: b.fenced,
                rack: b.rack.clone().unwrap_or_default(),
                listeners: b
                    .listeners
                    .iter()
                    .map(|l| BrokerListener {
                        name: l.name.clone(),
                        host: l.host.clone(),
                        port: u32::from(l.port),
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(DescribeBrokersResponse {
            cluster_id: image.cluster_id.clone(),
            node_id: self.node_id,
            metadata_offset: image.last_applied_index,
            brokers,
        }))
    }
}

/// What the server serves.
pub(crate) struct ServerParts {
    pub listener: TcpListener,
    pub raft: MetaRaft,
    pub cluster_id: String,
    pub node_id: i32,
    pub voters: BTreeMap<i32, String>,
    pub controller: Arc<Controller>,
    pub request_timeout_ms: u64,
    pub journal: Arc<Mutex<MetadataJournal>>,
    pub images: watch::Receiver<Arc<MetadataImage>>,
    pub observers: Arc<Observers>,
    /// Mutual TLS on this listener (`CONTROLLER:SSL`); `None` serves plaintext.
    pub tls: Option<Arc<NodeTls>>,
    /// This node's metadata directory id.
    pub directory_id: uuid::Uuid,
    pub observed_directories: Arc<ObservedDirectories>,
}

/// A running controller gRPC server.
pub(crate) struct ControllerServer {
    local_address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl ControllerServer {
    /// Starts serving on `listener`.
    pub(crate) fn spawn(parts: ServerParts) -> std::io::Result<Self> {
        let ServerParts {
            listener,
            raft,
            cluster_id,
            node_id,
            voters,
            controller,
            request_timeout_ms,
            journal,
            images,
            observers,
            tls,
            directory_id,
            observed_directories,
        } = parts;
        let local_address = listener.local_addr()?;
        let raft_service = RaftServiceServer::new(RaftGrpcService::new(
            raft.clone(),
            &cluster_id,
            node_id,
            voters.keys().copied().collect(),
            directory_id,
        ))
        .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES);
        let metadata_service = MetadataLogServer::new(MetadataLogService::new(
            &cluster_id,
            node_id,
            raft.clone(),
            journal,
            images.clone(),
            Arc::clone(&observers),
        ))
        .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES);
        let controller_service = ControllerServiceServer::new(ControllerGrpcService::new(
            Arc::clone(&controller),
            &cluster_id,
            node_id,
            request_timeout_ms,
            voters.keys().copied().collect(),
            images.clone(),
        ))
        .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES);
        let admin_service = QuorumAdminServer::new(QuorumAdminService {
            raft,
            cluster_id: cluster_id.clone(),
            node_id,
            voters,
            images,
            observers,
            controller,
            request_timeout_ms,
            directory_id,
            observed_directories,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let router = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(raft_service)
            .add_service(controller_service)
            .add_service(metadata_service)
            .add_service(admin_service);
        let task = tokio::spawn(async move {
            // `Server::tcp_nodelay` applies only to listeners tonic binds itself; an accepted
            // socket without TCP_NODELAY holds small responses for the peer's delayed ACK
            // (~40 ms on Linux), which once made every acks=all produce wait that long, so
            // LimitedIncoming sets it. It also bounds the listener's connections (issue #15):
            // closed on accept beyond `shoal_net::CONTROLLER_MAX_CONNECTIONS`.
            let incoming = NodeIncoming::new(
                LimitedIncoming::new(
                    listener,
                    ConnectionLimiter::new(
                        "controller",
                        ConnectionLimits::total(shoal_net::CONTROLLER_MAX_CONNECTIONS),
                    ),
                ),
                tls,
            );
            let shutdown = async {
                // A dropped sender also means stop.
                let _ = stopped.await;
            };
            if let Err(e) = router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
            {
                tracing::error!(error = %e, "controller gRPC server failed");
            }
        });
        tracing::info!(node_id, address = %local_address, "controller gRPC server listening");
        Ok(ControllerServer {
            local_address,
            stop: Some(stop),
            task,
        })
    }

    pub(crate) fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    /// Stops accepting, lets in-flight RPCs finish for up to `STOP_GRACE_MS`, then aborts.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let grace = Duration::from_millis(STOP_GRACE_MS);
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            tracing::warn!(
                address = %self.local_address,
                "controller gRPC server did not stop within {STOP_GRACE_MS} ms; aborting it"
            );
            self.task.abort();
        }
    }
}
