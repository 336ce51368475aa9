//! The follower side of replication: one fetcher per leader broker (Kafka's
//! `ReplicaFetcherThread`), copying every partition this broker follows from that leader over
//! one `Replication.Fetch` stream.
//!
//! Loop: build a request from each partition's log position, send it, wait for the answer,
//! apply it (append, truncate on divergence, take the HW), repeat. The answer to a caught-up
//! request comes when the leader appends, so replication runs at the pace of produce.
//!
//! **Stale answers are harmless by construction.** Every call into the partition names the
//! leader epoch the request was built for, and the partition refuses it if it no longer
//! follows at that epoch; so when leadership moves mid-request the late answer is dropped.
//! To follow a new leader promptly, a change of this fetcher's partitions abandons the
//! request in flight and starts a new stream.
//!
//! Bounded: one request in flight, at most `FETCH_RESPONSE_MAX_BYTES` per answer, backoff
//! (`RETRY_MIN_MS`..`RETRY_MAX_MS`) on connection failures and per partition on errors. A
//! replica the follower's replication throttle holds back (`quota`) is left out of requests
//! until the rate is under its bound again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use shoal_internode::{ClientTls, NodeConnector};
use shoal_meta::MetadataImage;
use shoal_replica::{EpochEndOffset, Partition, PartitionError};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::replica_manager::{PartitionKey, ReplicaManager};
use crate::replication::proto::replication_client::ReplicationClient;
use crate::replication::proto::{FetchRequest, FetchResponse, PartitionData, PartitionFetch};
use crate::replication::{
    FETCH_MAX_WAIT_MS, FETCH_PARTITION_MAX_BYTES, FETCH_RESPONSE_MAX_BYTES, MAX_MESSAGE_BYTES,
    REPLICATION_LISTENER_NAME, topic_id_bytes, topic_id_from,
};
use crate::time::wall_ms;

const RETRY_MIN_MS: u64 = 50;
const RETRY_MAX_MS: u64 = 1_000;
const CONNECT_TIMEOUT_MS: u64 = 1_000;
/// An answer later than this after the leader's wait expired means the stream is stuck.
const RESPONSE_SLACK_MS: u64 = 5_000;

/// The partitions one fetcher copies, with the leader epoch each follows.
pub type Assignment = BTreeMap<PartitionKey, i32>;

/// What every fetcher of this broker shares.
pub struct FetcherContext {
    pub cluster_id: String,
    pub broker_id: i32,
    pub broker_epoch: i64,
    pub replicas: Arc<ReplicaManager>,
    /// For the leaders' replication addresses.
    pub images: watch::Receiver<Arc<MetadataImage>>,
    /// Mutual TLS to the leaders (`REPLICATION:SSL`).
    pub tls: Option<ClientTls>,
}

/// Runs the fetcher for `leader_id` until its assignment channel closes.
pub async fn run_fetcher(
    ctx: Arc<FetcherContext>,
    leader_id: i32,
    mut assignment: watch::Receiver<Arc<Assignment>>,
) {
    let mut backoff_ms = RETRY_MIN_MS;
    let mut partition_retry: HashMap<PartitionKey, (i32, Instant)> = HashMap::new();
    loop {
        if assignment.borrow_and_update().is_empty() {
            if assignment.changed().await.is_err() {
                return;
            }
            continue;
        }
        let outcome = fetch_session(&ctx, leader_id, &mut assignment, &mut partition_retry).await;
        match outcome {
            SessionEnd::Closed => return,
            SessionEnd::AssignmentChanged => backoff_ms = RETRY_MIN_MS,
            SessionEnd::Failed(error) => {
                tracing::debug!(leader_id, %error, "replica fetch stream failed; reconnecting");
                let wait = tokio::time::sleep(Duration::from_millis(backoff_ms));
                tokio::select! {
                    _ = wait => {}
                    changed = assignment.changed() => if changed.is_err() { return },
                }
                backoff_ms = (backoff_ms * 2).min(RETRY_MAX_MS);
            }
        }
    }
}

enum SessionEnd {
    /// The manager dropped this fetcher.
    Closed,
    /// The partitions changed: start over at once.
    AssignmentChanged,
    Failed(String),
}

/// One stream to the leader, fetching until it fails or the assignment changes.
async fn fetch_session(
    ctx: &FetcherContext,
    leader_id: i32,
    assignment: &mut watch::Receiver<Arc<Assignment>>,
    partition_retry: &mut HashMap<PartitionKey, (i32, Instant)>,
) -> SessionEnd {
    let Some(address) = replication_address(&ctx.images.borrow(), leader_id) else {
        return SessionEnd::Failed(format!(
            "broker {leader_id} has no {REPLICATION_LISTENER_NAME} endpoint in the metadata"
        ));
    };
    let connect = NodeConnector::new(ctx.tls.clone(), Some(leader_id))
        .connect(&address, Duration::from_millis(CONNECT_TIMEOUT_MS));
    let channel: Channel = tokio::select! {
        connected = connect => match connected {
            Ok(channel) => channel,
            Err(e) => {
                let why = shoal_internode::error_chain(&e);
                return SessionEnd::Failed(format!("cannot connect to {address}: {why}"));
            }
        },
        changed = assignment.changed() => return match changed {
            Ok(()) => SessionEnd::AssignmentChanged,
            Err(_) => SessionEnd::Closed,
        },
    };
    let mut client = ReplicationClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let (requests, outbound) = mpsc::channel::<FetchRequest>(1);
    let mut inbound = match client.fetch(ReceiverStream::new(outbound)).await {
        Ok(response) => response.into_inner(),
        Err(status) => return SessionEnd::Failed(format!("{address}: {status}")),
    };
    loop {
        let current = Arc::clone(&assignment.borrow_and_update());
        if current.is_empty() {
            return SessionEnd::AssignmentChanged;
        }
        partition_retry.retain(|key, (epoch, _)| current.get(key) == Some(epoch));
        let now = Instant::now();
        let (request, in_request) = build_request(ctx, &current, partition_retry, now);
        if request.partitions.is_empty() {
            // Everything is backing off: wait for the earliest retry or a change.
            let until = partition_retry
                .values()
                .map(|(_, at)| *at)
                .min()
                .unwrap_or(now + Duration::from_millis(RETRY_MAX_MS));
            tokio::select! {
                _ = tokio::time::sleep_until(until) => continue,
                changed = assignment.changed() => return match changed {
                    Ok(()) => SessionEnd::AssignmentChanged,
                    Err(_) => SessionEnd::Closed,
                },
            }
        }
        if requests.send(request).await.is_err() {
            return SessionEnd::Failed("the request stream closed".to_string());
        }
        let wait = Duration::from_millis(u64::from(FETCH_MAX_WAIT_MS) + RESPONSE_SLACK_MS);
        let response: FetchResponse = tokio::select! {
            answer = tokio::time::timeout(wait, inbound.message()) => match answer {
                Ok(Ok(Some(response))) => response,
                Ok(Ok(None)) => return SessionEnd::Failed("the leader closed the stream".to_string()),
                Ok(Err(status)) => {
                    if status.code() == tonic::Code::FailedPrecondition {
                        tracing::error!(leader_id, message = status.message(), "replica fetch refused");
                    }
                    return SessionEnd::Failed(format!("{address}: {status}"));
                }
                Err(_) => return SessionEnd::Failed(format!("no answer from {address} within {wait:?}")),
            },
            changed = assignment.changed() => return match changed {
                Ok(()) => SessionEnd::AssignmentChanged,
                Err(_) => SessionEnd::Closed,
            },
        };
        let replicas = Arc::clone(&ctx.replicas);
        let applied =
            tokio::task::spawn_blocking(move || apply_response(&replicas, response, &in_request))
                .await;
        match applied {
            Ok(retries) => {
                let now = Instant::now();
                for (key, epoch, delay) in retries {
                    partition_retry.insert(key, (epoch, now + delay));
                }
            }
            Err(e) => return SessionEnd::Failed(format!("applying a fetch response failed: {e}")),
        }
    }
}

/// The request for every assigned partition not backing off; also the epoch each was built for.
fn build_request(
    ctx: &FetcherContext,
    assignment: &Assignment,
    partition_retry: &HashMap<PartitionKey, (i32, Instant)>,
    now: Instant,
) -> (FetchRequest, HashMap<PartitionKey, i32>) {
    let mut partitions = Vec::with_capacity(assignment.len());
    let mut in_request = HashMap::with_capacity(assignment.len());
    for (key, leader_epoch) in assignment {
        if partition_retry
            .get(key)
            .is_some_and(|(epoch, at)| epoch == leader_epoch && *at > now)
        {
            continue;
        }
        let Some((partition, throttles)) = ctx.replicas.partition_with_throttles(key.0, key.1)
        else {
            continue;
        };
        // Kafka's `shouldFollowerThrottle`: a throttled replica out of the ISR is left out of
        // the request while this broker's throttled fetching is over its rate.
        let quota = &ctx.replicas.quotas.follower;
        let throttled =
            throttles.follower && quota.is_bounded() && !partition.isr_contains(ctx.broker_id);
        if throttled && quota.is_exceeded() {
            continue;
        }
        let Ok(position) = partition.fetch_position(*leader_epoch) else {
            // The partition moved on (new epoch, or it leads now): the manager will update us.
            continue;
        };
        partitions.push(PartitionFetch {
            topic_id: topic_id_bytes(key.0),
            partition: key.1,
            current_leader_epoch: *leader_epoch,
            fetch_offset: position.fetch_offset,
            last_fetched_epoch: position.last_fetched_epoch,
            max_bytes: match (throttled, quota.chunk_bytes()) {
                (true, Some(chunk)) => u32::try_from(chunk)
                    .unwrap_or(u32::MAX)
                    .min(FETCH_PARTITION_MAX_BYTES),
                _ => FETCH_PARTITION_MAX_BYTES,
            },
            log_start_offset: Some(position.log_start_offset),
        });
        in_request.insert(*key, *leader_epoch);
    }
    let request = FetchRequest {
        cluster_id: ctx.cluster_id.clone(),
        replica_id: ctx.broker_id,
        broker_epoch: ctx.broker_epoch,
        max_wait_ms: FETCH_MAX_WAIT_MS,
        max_bytes: FETCH_RESPONSE_MAX_BYTES,
        partitions,
    };
    (request, in_request)
}

/// Applies one response; returns the partitions to back off, with their epoch and delay.
fn apply_response(
    replicas: &ReplicaManager,
    response: FetchResponse,
    in_request: &HashMap<PartitionKey, i32>,
) -> Vec<(PartitionKey, i32, Duration)> {
    let mut retries = Vec::new();
    for data in response.partitions {
        let Some(topic_id) = topic_id_from(&data.topic_id) else {
            continue;
        };
        let key = (topic_id, data.partition);
        // Only partitions this request asked for, at the epoch it asked for.
        let Some(&leader_epoch) = in_request.get(&key) else {
            continue;
        };
        let Some((partition, throttles)) =
            replicas.partition_with_throttles(topic_id, data.partition)
        else {
            continue;
        };
        if throttles.follower {
            replicas.quotas.follower.record(data.records.len());
        }
        // A nearly full disk takes no replicated bytes either: back off until space returns
        // (the leader drops this follower from the ISR meanwhile, as for any lag).
        if !data.records.is_empty() && !replicas.appends_allowed(topic_id, data.partition) {
            retries.push((key, leader_epoch, Duration::from_millis(RETRY_MAX_MS)));
            continue;
        }
        replicas.note_written(topic_id, data.partition, data.records.len() as u64);
        if let Some(delay) = apply_partition(replicas, topic_id, &partition, leader_epoch, data) {
            retries.push((key, leader_epoch, delay));
        }
    }
    retries
}

/// Applies one partition's answer; `Some(delay)` to back off.
fn apply_partition(
    replicas: &ReplicaManager,
    topic_id: uuid::Uuid,
    partition: &Partition,
    leader_epoch: i32,
    data: PartitionData,
) -> Option<Duration> {
    let code = data.error_code;
    let outcome = if code == 0 {
        match data.diverging_epoch {
            Some(d) => partition
                .truncate_for_divergence(
                    leader_epoch,
                    EpochEndOffset {
                        epoch: d.epoch,
                        end_offset: d.end_offset,
                    },
                )
                .map(|_| ()),
            None => {
                let appended = if data.records.is_empty() {
                    Ok(())
                } else {
                    partition
                        .append_as_follower(leader_epoch, &data.records, wall_ms())
                        .map(|_| ())
                };
                appended.and_then(|()| {
                    partition.update_follower_offsets(
                        leader_epoch,
                        data.high_watermark,
                        data.log_start_offset,
                    )
                })
            }
        }
    } else if code == i32::from(ResponseError::OffsetOutOfRange.code()) {
        partition
            .reset_to_leader_range(leader_epoch, data.log_start_offset, data.log_end_offset)
            .map(|_| ())
    } else if code == i32::from(ResponseError::FencedLeaderEpoch.code()) {
        // This broker's metadata is behind; the fetcher is re-pointed when it catches up.
        return Some(Duration::from_millis(RETRY_MAX_MS));
    } else {
        // The leader has not applied its leadership yet (UNKNOWN_LEADER_EPOCH,
        // NOT_LEADER_OR_FOLLOWER), or a storage error there: try again shortly.
        tracing::debug!(
            topic = partition.topic(),
            partition = partition.index(),
            leader_epoch,
            error_code = code,
            "replica fetch error"
        );
        return Some(Duration::from_millis(RETRY_MIN_MS));
    };
    match outcome {
        Ok(()) => None,
        // The partition moved on while the request was out: drop the answer.
        Err(
            PartitionError::FencedLeaderEpoch
            | PartitionError::UnknownLeaderEpoch
            | PartitionError::NotLeaderOrFollower
            | PartitionError::Closed,
        ) => None,
        Err(error) => {
            tracing::warn!(
                topic = partition.topic(),
                partition = partition.index(),
                leader_epoch,
                %error,
                "applying replicated data failed"
            );
            replicas.storage_error(topic_id, partition.index(), &error);
            Some(Duration::from_millis(RETRY_MAX_MS))
        }
    }
}

/// The `REPLICATION` endpoint of `broker_id` in `image`, as `host:port`.
pub fn replication_address(image: &MetadataImage, broker_id: i32) -> Option<String> {
    let endpoint = image
        .brokers
        .get(&broker_id)?
        .listeners
        .iter()
        .find(|l| l.name == REPLICATION_LISTENER_NAME)?;
    Some(if endpoint.host.contains(':') {
        format!("[{}]:{}", endpoint.host, endpoint.port)
    } else {
        format!("{}:{}", endpoint.host, endpoint.port)
    })
}
