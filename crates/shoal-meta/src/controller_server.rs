//! The controller gRPC server: one tonic server on the controller listener carrying the Raft
//! transport (`RaftService`), forwarded controller requests (`ControllerService`), the
//! committed metadata log for brokers (`MetadataLog`) and the admin API (`QuorumAdmin`).
//!
//! It runs as a background task over an already bound listener, so callers (and tests with
//! port 0) know the real address before any peer needs it. Stopping is graceful (HTTP/2 GOAWAY,
//! in-flight RPCs finish) but bounded: after `STOP_GRACE_MS` the task is aborted, because a
//! node that is shutting down must stop answering Raft RPCs promptly.

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
use crate::controller::voter_changes::{VoterChange, VoterChangeError, VoterChangeFailure};
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
    DescribeBrokersResponse, DescribeQuorumRequest, DescribeQuorumResponse, RemoveVoterRequest,
    RemoveVoterResponse,
};
use crate::quorum_status::{Directories, quorum_status};
use crate::raft::MAX_RAFT_MESSAGE_BYTES;
use crate::raft::grpc_service::RaftGrpcService;
use crate::raft::membership_check::MembershipView;
use crate::raft::types::MetaRaft;
use crate::voter_book::VoterBook;
use crate::voter_directory::ObservedDirectories;

/// Bound on a graceful stop before the server task is aborted.
const STOP_GRACE_MS: u64 = 1_000;
/// Longest an AddVoter or RemoveVoter may take (a new controller catching up included).
const MAX_ADD_VOTER_TIMEOUT_MS: u64 = 60_000;

/// Answers `DescribeQuorum` from this node's Raft metrics and `DescribeBrokers` from its image.
struct QuorumAdminService {
    raft: MetaRaft,
    cluster_id: String,
    node_id: i32,
    voters: Arc<VoterBook>,
    images: watch::Receiver<Arc<MetadataImage>>,
    observers: Arc<Observers>,
    controller: Arc<Controller>,
    request_timeout_ms: u64,
    directory_id: uuid::Uuid,
    observed_directories: Arc<ObservedDirectories>,
}

/// A directory id as an operator writes it (meta.properties form or UUID text); empty: none.
fn parse_requested_directory(text: &str) -> Result<Option<uuid::Uuid>, Status> {
    match text.trim() {
        "" => Ok(None),
        text => parse_directory_id(text)
            .or_else(|| uuid::Uuid::parse_str(text).ok())
            .map(Some)
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "'{text}' is not a directory id (meta.properties directory.id)"
                ))
            }),
    }
}

/// A failed voter change as a gRPC status; the message leads with Kafka's error name.
fn voter_change_status(failure: VoterChangeFailure) -> Status {
    match failure {
        VoterChangeFailure::Refused(e) => {
            let message = format!("{}: {e}", kafka_error_name(e.kafka_code()));
            match e {
                VoterChangeError::InProgress => Status::aborted(message),
                VoterChangeError::InvalidRequest(_) => Status::invalid_argument(message),
                _ => Status::failed_precondition(message),
            }
        }
        VoterChangeFailure::Controller(e) => add_voter_status(e),
    }
}

fn kafka_error_name(code: i16) -> &'static str {
    match code {
        35 => "UNSUPPORTED_VERSION",
        7 => "REQUEST_TIMED_OUT",
        126 => "DUPLICATE_VOTER",
        127 => "VOTER_NOT_FOUND",
        42 => "INVALID_REQUEST",
        _ => "UNKNOWN_SERVER_ERROR",
    }
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

impl QuorumAdminService {
    /// A voter change's time bound: the request's, capped, or this node's request timeout.
    fn voter_change_timeout(&self, requested_ms: u64) -> Duration {
        Duration::from_millis(match requested_ms {
            0 => self.request_timeout_ms,
            ms => ms.min(MAX_ADD_VOTER_TIMEOUT_MS),
        })
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
            &self.voters.voters(),
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
        let requested = parse_requested_directory(&request.directory_id)?;
        let timeout = self.voter_change_timeout(request.timeout_ms);
        let is_voter = MembershipView::from_metrics(&self.raft.metrics().borrow())
            .voter_ids
            .contains(&request.voter_id);
        if !is_voter {
            // A controller that is not a voter yet (KIP-853 with a new node id).
            if request.address.trim().is_empty() {
                return Err(Status::failed_precondition(format!(
                    "node {} is not a voter; to add a new controller, give its address",
                    request.voter_id
                )));
            }
            let Some(directory_id) = requested else {
                return Err(Status::invalid_argument(format!(
                    "node {} is not a voter: name its metadata directory id (shoalctl reads it \
                     from the node)",
                    request.voter_id
                )));
            };
            let outcome = self
                .controller
                .change_voters(
                    VoterChange::Add {
                        id: request.voter_id,
                        address: request.address.trim().to_string(),
                        directory_id,
                    },
                    timeout,
                )
                .await
                .map_err(voter_change_status)?;
            return Ok(Response::new(AddVoterResponse {
                voter_id: request.voter_id,
                directory_id: format_directory_id(directory_id),
                previous_directory_id: String::new(),
                log_index: outcome.log_index,
                voters: outcome.voters,
            }));
        }
        let (plan, log_index) = self
            .controller
            .add_voter(request.voter_id, requested, timeout)
            .await
            .map_err(add_voter_status)?;
        Ok(Response::new(AddVoterResponse {
            voter_id: plan.voter_id,
            directory_id: format_directory_id(plan.directory_id),
            previous_directory_id: plan.previous.map(format_directory_id).unwrap_or_default(),
            log_index,
            voters: self.controller.voter_ids(),
        }))
    }

    async fn remove_voter(
        &self,
        request: Request<RemoveVoterRequest>,
    ) -> Result<Response<RemoveVoterResponse>, Status> {
        let request = request.into_inner();
        let directory_id = parse_requested_directory(&request.directory_id)?;
        let outcome = self
            .controller
            .change_voters(
                VoterChange::Remove {
                    id: request.voter_id,
                    directory_id,
                },
                self.voter_change_timeout(request.timeout_ms),
            )
            .await
            .map_err(voter_change_status)?;
        Ok(Response::new(RemoveVoterResponse {
            voter_id: request.voter_id,
            directory_id: outcome
                .directory_id
                .map(format_directory_id)
                .unwrap_or_default(),
            log_index: outcome.log_index,
            voters: outcome.voters,
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
    pub voters: Arc<VoterBook>,
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
            Arc::clone(&voters),
        ))
        .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES);
        let controller_service = ControllerServiceServer::new(ControllerGrpcService::new(
            Arc::clone(&controller),
            &cluster_id,
            node_id,
            request_timeout_ms,
            Arc::clone(&voters),
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
