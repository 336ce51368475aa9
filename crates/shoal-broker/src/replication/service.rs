//! The leader side of replication: serves follower fetch streams from this broker's
//! partitions.
//!
//! One task per follower stream handles its requests in order. A request is answered at once
//! when any named partition has batches past the follower's position (or an error, or a
//! divergence to report), otherwise it is parked until one of them appends or `max_wait_ms`
//! passes: a caught-up follower receives new batches as soon as they are written, which is
//! what acks=all latency rides on. The follower's positions are recorded when the request
//! arrives (that is what advances the high watermark), and once only, as Kafka does. Each pass
//! over the partitions reads the disk, so it runs on a blocking thread. A replica the leader's
//! replication throttle holds back (`quota`) gets its offsets but no records.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use futures::Stream;
use kafka_protocol::ResponseError;
use shoal_internode::NodePeer;
use shoal_replica::{FollowerFetch, Partition, PartitionError};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::blocking::run_blocking;
use crate::error_codes::partition_error_code;
use crate::replica_manager::{PartitionKey, ReplicaManager};
use crate::replication::proto::replication_server::Replication;
use crate::replication::proto::{
    EpochEndOffset, FetchRequest, FetchResponse, PartitionData, PartitionFetch,
    VerifyTxnPartitionsRequest, VerifyTxnPartitionsResponse, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
};
use crate::replication::{
    FETCH_MAX_WAIT_MS, FETCH_PARTITION_MAX_BYTES, FETCH_RESPONSE_MAX_BYTES,
    MAX_PARTITIONS_PER_FETCH, topic_id_bytes, topic_id_from,
};
use crate::time::wall_ms;
use crate::transactions::TxnCoordinator;
use crate::transactions::verifier::{addition_codes, verification_codes};
use shoal_txn::TransactionVersion;

/// Most markers one WriteTxnMarkers request may carry.
const MAX_MARKERS_PER_REQUEST: usize = 10_000;

/// Longest a leader parks a fetch, whatever the follower asks.
const MAX_WAIT_CAP_MS: u32 = 5 * FETCH_MAX_WAIT_MS;

pub struct ReplicationService {
    cluster_id: String,
    replicas: Arc<ReplicaManager>,
    /// The transaction coordinator, once the broker has built it (it needs the replication
    /// listener's address first); until then verification answers COORDINATOR_NOT_AVAILABLE.
    transactions: Arc<OnceLock<Arc<TxnCoordinator>>>,
    /// Partitions whose follower may now join the ISR (to the ISR manager; bounded, lossy:
    /// the manager's periodic check catches anything dropped).
    isr_nudges: mpsc::Sender<PartitionKey>,
}

impl ReplicationService {
    pub fn new(
        cluster_id: &str,
        replicas: Arc<ReplicaManager>,
        isr_nudges: mpsc::Sender<PartitionKey>,
        transactions: Arc<OnceLock<Arc<TxnCoordinator>>>,
    ) -> Self {
        ReplicationService {
            cluster_id: cluster_id.to_string(),
            replicas,
            transactions,
            isr_nudges,
        }
    }
}

type FetchStream = Pin<Box<dyn Stream<Item = Result<FetchResponse, Status>> + Send>>;

impl ReplicationService {
    fn check_cluster(&self, cluster_id: &str) -> Result<(), Status> {
        if cluster_id == self.cluster_id {
            Ok(())
        } else {
            Err(Status::failed_precondition(format!(
                "cluster id {cluster_id} is not this cluster's ({})",
                self.cluster_id
            )))
        }
    }
}

#[tonic::async_trait]
impl Replication for ReplicationService {
    type FetchStream = FetchStream;

    async fn write_txn_markers(
        &self,
        request: Request<WriteTxnMarkersRequest>,
    ) -> Result<Response<WriteTxnMarkersResponse>, Status> {
        // Only a node may write markers: on mTLS links the certificate must name the coordinator.
        shoal_internode::check_claim(request.extensions(), request.get_ref().coordinator_id)?;
        let request = request.into_inner();
        self.check_cluster(&request.cluster_id)?;
        if request.markers.len() > MAX_MARKERS_PER_REQUEST {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_MARKERS_PER_REQUEST} markers per request"
            )));
        }
        let results =
            crate::transactions::markers::serve_write_markers(&self.replicas, request.markers)
                .await;
        Ok(Response::new(WriteTxnMarkersResponse { results }))
    }

    async fn verify_txn_partitions(
        &self,
        request: Request<VerifyTxnPartitionsRequest>,
    ) -> Result<Response<VerifyTxnPartitionsResponse>, Status> {
        let request = request.into_inner();
        self.check_cluster(&request.cluster_id)?;
        if request.partitions.len() > MAX_PARTITIONS_PER_FETCH {
            return Err(Status::invalid_argument("too many partitions"));
        }
        let Some(coordinator) = self.transactions.get() else {
            return Ok(Response::new(VerifyTxnPartitionsResponse {
                error_code: i32::from(ResponseError::CoordinatorNotAvailable.code()),
                partition_error_codes: Vec::new(),
            }));
        };
        let Ok(producer_epoch) = i16::try_from(request.producer_epoch) else {
            return Err(Status::invalid_argument("producer epoch out of range"));
        };
        let partitions: std::collections::BTreeSet<(String, i32)> = request
            .partitions
            .iter()
            .map(|p| (p.topic.clone(), p.partition))
            .collect();
        let answer = if request.add {
            addition_codes(
                coordinator
                    .add_partitions(
                        &request.transactional_id,
                        request.producer_id,
                        producer_epoch,
                        &partitions,
                        TransactionVersion::Tv2,
                    )
                    .await,
                &partitions,
            )
        } else {
            verification_codes(coordinator.verify_partitions(
                &request.transactional_id,
                request.producer_id,
                producer_epoch,
                &partitions,
            ))
        };
        let response = match answer {
            Ok(per_partition) => VerifyTxnPartitionsResponse {
                error_code: 0,
                partition_error_codes: request
                    .partitions
                    .iter()
                    .map(|p| {
                        let answer = per_partition.get(&(p.topic.clone(), p.partition));
                        i32::from(match answer {
                            Some(Ok(())) => 0,
                            Some(Err(code)) => *code,
                            None => ResponseError::UnknownServerError.code(),
                        })
                    })
                    .collect(),
            },
            Err(code) => VerifyTxnPartitionsResponse {
                error_code: i32::from(code),
                partition_error_codes: Vec::new(),
            },
        };
        Ok(Response::new(response))
    }

    async fn fetch(
        &self,
        request: Request<Streaming<FetchRequest>>,
    ) -> Result<Response<FetchStream>, Status> {
        // Each request names the follower it fetches for; on mTLS links the certificate must
        // name the same broker (a broker cannot read partitions as another replica).
        let node_peer = request
            .extensions()
            .get::<NodePeer>()
            .cloned()
            .unwrap_or_default();
        let peer = node_peer.remote_addr;
        let mut inbound = request.into_inner();
        // One response in flight per stream: the follower sends its next request only after
        // the previous answer, so a bound of one is backpressure, not a limit.
        let (tx, rx) = mpsc::channel(1);
        let session = FollowerSession {
            cluster_id: self.cluster_id.clone(),
            replicas: Arc::clone(&self.replicas),
            isr_nudges: self.isr_nudges.clone(),
            log_ends: HashMap::new(),
        };
        tokio::spawn(async move {
            let mut session = session;
            loop {
                let request = match inbound.message().await {
                    Ok(Some(request)) => request,
                    Ok(None) => return,
                    Err(status) => {
                        tracing::debug!(?peer, %status, "follower stream ended");
                        return;
                    }
                };
                let reply = match node_peer.may_speak_for(request.replica_id) {
                    Ok(()) => session.answer(request).await,
                    Err(status) => Err(status),
                };
                let failed = reply.is_err();
                if tx.send(reply).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// The state of one follower's stream.
struct FollowerSession {
    cluster_id: String,
    replicas: Arc<ReplicaManager>,
    isr_nudges: mpsc::Sender<PartitionKey>,
    /// Log end watches of the partitions this follower fetches, kept across requests, with
    /// the replica each watches.
    log_ends: HashMap<PartitionKey, (Weak<Partition>, watch::Receiver<i64>)>,
}

impl FollowerSession {
    async fn answer(&mut self, request: FetchRequest) -> Result<FetchResponse, Status> {
        if request.cluster_id != self.cluster_id {
            tracing::warn!(
                replica_id = request.replica_id,
                their_cluster_id = %request.cluster_id,
                "refused a replica fetch from another cluster"
            );
            return Err(Status::failed_precondition(format!(
                "cluster id mismatch: broker {} belongs to cluster '{}', this one to '{}'",
                request.replica_id, request.cluster_id, self.cluster_id
            )));
        }
        if request.partitions.len() > MAX_PARTITIONS_PER_FETCH {
            return Err(Status::invalid_argument(format!(
                "a fetch may name at most {MAX_PARTITIONS_PER_FETCH} partitions, got {}",
                request.partitions.len()
            )));
        }
        let request = Arc::new(request);
        let wait = Duration::from_millis(u64::from(request.max_wait_ms.min(MAX_WAIT_CAP_MS)));
        let deadline = tokio::time::Instant::now() + wait;
        self.log_ends
            .retain(|key, _| request.partitions.iter().any(|p| same_key(p, key)));
        let mut first = true;
        loop {
            for partition in &request.partitions {
                if let Some(key) = key_of(partition)
                    && let Some(rx) = self.log_end_watch(key)
                {
                    rx.borrow_and_update();
                }
            }
            let (replicas, isr_nudges, pass) = (
                Arc::clone(&self.replicas),
                self.isr_nudges.clone(),
                Arc::clone(&request),
            );
            let served = run_blocking(move || serve(&replicas, &isr_nudges, &pass, first))
                .await
                .ok_or_else(|| Status::unavailable("the broker is shutting down"))?;
            first = false;
            if served.worth_sending || tokio::time::Instant::now() >= deadline {
                return Ok(served.response);
            }
            let changes: Vec<_> = self
                .log_ends
                .iter_mut()
                .filter(|(key, _)| !served.held.contains(key))
                .map(|(_, (_, rx))| Box::pin(rx.changed()))
                .collect();
            if changes.is_empty() {
                tokio::time::sleep_until(deadline).await;
                continue;
            }
            let _ = tokio::time::timeout_at(deadline, futures::future::select_all(changes)).await;
        }
    }

    /// The log-end watch of the replica hosted for `key` now: a replica reopened (moved to
    /// another log directory) is a new one, watched afresh.
    fn log_end_watch(&mut self, key: PartitionKey) -> Option<&mut watch::Receiver<i64>> {
        let Some(partition) = self.replicas.partition(key.0, key.1) else {
            // Not hosted (any more): a watch of a dropped replica would end every wait at once.
            self.log_ends.remove(&key);
            return None;
        };
        let current = self
            .log_ends
            .get(&key)
            .is_some_and(|(watched, _)| std::ptr::eq(watched.as_ptr(), Arc::as_ptr(&partition)));
        if !current {
            self.log_ends.insert(
                key,
                (
                    Arc::downgrade(&partition),
                    partition.subscribe_log_end_offset(),
                ),
            );
        }
        self.log_ends.get_mut(&key).map(|(_, rx)| rx)
    }
}

/// One pass over the request's partitions (blocking: it reads the logs).
struct Served {
    response: FetchResponse,
    /// It carries something a follower needs now (records, an error, a divergence).
    worth_sending: bool,
    /// Partitions whose records the leader's throttle held back: their appends do not end
    /// the wait (the throttle would hold them back again).
    held: Vec<PartitionKey>,
}

fn serve(
    replicas: &ReplicaManager,
    isr_nudges: &mpsc::Sender<PartitionKey>,
    request: &FetchRequest,
    record: bool,
) -> Served {
    let mut held = Vec::new();
    let now = wall_ms();
    let mut budget = request.max_bytes.clamp(1, FETCH_RESPONSE_MAX_BYTES) as usize;
    let mut worth_sending = false;
    let mut partitions = Vec::with_capacity(request.partitions.len());
    for p in &request.partitions {
        let mut data = PartitionData {
            topic_id: p.topic_id.clone(),
            partition: p.partition,
            error_code: 0,
            high_watermark: -1,
            log_start_offset: -1,
            log_end_offset: -1,
            diverging_epoch: None,
            records: Vec::new(),
        };
        let Some(key) = key_of(p) else {
            data.error_code = i32::from(ResponseError::UnknownTopicId.code());
            worth_sending = true;
            partitions.push(data);
            continue;
        };
        let Some((partition, throttles)) = replicas.partition_with_throttles(key.0, key.1) else {
            data.error_code = i32::from(ResponseError::NotLeaderOrFollower.code());
            worth_sending = true;
            partitions.push(data);
            continue;
        };
        // Kafka's `shouldLeaderThrottle`: a throttled replica out of the ISR gets no records
        // while the leader's throttled traffic is over its rate (its offsets still count).
        let quota = &replicas.quotas.leader;
        let throttled =
            throttles.leader && quota.is_bounded() && !partition.isr_contains(request.replica_id);
        let held_back = throttled && quota.is_exceeded();
        if held_back {
            held.push(key);
        }
        let fetch = FollowerFetch {
            replica_id: request.replica_id,
            broker_epoch: request.broker_epoch,
            current_leader_epoch: p.current_leader_epoch,
            fetch_offset: p.fetch_offset,
            last_fetched_epoch: p.last_fetched_epoch,
            // With the budget spent, later partitions still report their offsets.
            max_bytes: if budget == 0 || held_back {
                0
            } else {
                let chunk = match throttled {
                    true => quota.chunk_bytes().unwrap_or(usize::MAX),
                    false => usize::MAX,
                };
                (p.max_bytes.clamp(1, FETCH_PARTITION_MAX_BYTES) as usize)
                    .min(budget)
                    .min(chunk)
            },
            log_start_offset: p.log_start_offset,
        };
        match partition.fetch_for_follower(&fetch, now, record) {
            Ok(result) => {
                data.high_watermark = result.high_watermark;
                data.log_start_offset = result.log_start_offset;
                data.log_end_offset = result.log_end_offset;
                if let Some(d) = result.diverging {
                    data.diverging_epoch = Some(EpochEndOffset {
                        epoch: d.epoch,
                        end_offset: d.end_offset,
                    });
                    worth_sending = true;
                }
                if fetch.max_bytes > 0 && !result.records.is_empty() {
                    if throttles.leader {
                        quota.record(result.records.len());
                    }
                    budget = budget.saturating_sub(result.records.len());
                    data.records = result.records.to_vec();
                    worth_sending = true;
                }
                if result.may_join_isr {
                    // Lossy on purpose: the periodic ISR check catches a dropped nudge.
                    let _ = isr_nudges.try_send(key);
                }
            }
            Err(error) => {
                if let PartitionError::Log(shoal_log::LogError::OffsetOutOfRange {
                    log_start_offset,
                    log_end_offset,
                    ..
                }) = &error
                {
                    data.log_start_offset = *log_start_offset;
                    data.log_end_offset = *log_end_offset;
                }
                data.error_code = i32::from(partition_error_code(&error));
                worth_sending = true;
            }
        }
        partitions.push(data);
    }
    Served {
        response: FetchResponse { partitions },
        worth_sending,
        held,
    }
}

fn key_of(p: &PartitionFetch) -> Option<PartitionKey> {
    Some((topic_id_from(&p.topic_id)?, p.partition))
}

fn same_key(p: &PartitionFetch, key: &PartitionKey) -> bool {
    p.partition == key.1 && p.topic_id == topic_id_bytes(key.0)
}
