//! Fetch: serve committed batches as stored bytes, long-polling when there is too little.
//!
//! Records are never decoded here: the log returns whole batches, which go into the response
//! as they are (one copy, when the response is encoded). A fetch with less than `min_bytes`
//! available waits for any of its partitions' high watermarks (last stable offsets, for
//! read_committed) to move, up to `max_wait_ms`.
//! Every pass over the partitions reads the disk, so it runs on a blocking thread.
//! Fetch sessions (KIP-227) are not kept: every response is sessionless (session id 0), which
//! clients handle by sending full fetches.
//!
//! **Memory.** Kafka sends records from the page cache; Shoal reads them into the response, so
//! a response's record bytes are counted against `fetch.response.pool.bytes` from before the
//! read until the connection has written them (a consumer that stops reading keeps its
//! responses counted). Each read takes as much of `fetch.max.bytes` as the pool has free and
//! waits while less than [`FETCH_MIN_RESERVATION_BYTES`] is; KIP-74's one batch beyond the
//! limit is taken past the pool's capacity, since it is already read. So record memory stays
//! within the pool plus one batch per in-flight fetch, however many consumers there are.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ResponseKind, TopicName};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{ConnectionMute, HeldResponse, MemoryPool, Reply, RequestContext, Reservation};
use shoal_replica::{IsolationLevel, Partition};
use tokio::sync::watch;
use uuid::Uuid;

use crate::Broker;
use crate::apis::bounded_timeout_ms;
use crate::blocking::run_blocking;
use crate::error_codes::partition_error_code;

/// A fetch waits for at least this much of the pool (or its whole `max_bytes`, if smaller).
pub const FETCH_MIN_RESERVATION_BYTES: usize = 1 << 20;

/// Kafka's upper bound on a fetch's wait is the client's request timeout; this caps it server-side.
const MAX_FETCH_WAIT_MS: u64 = 60_000;

/// One partition of a fetch, resolved against the metadata once.
struct FetchTarget {
    topic_index: usize,
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: usize,
    current_leader_epoch: i32,
    replica: Result<Arc<Partition>, i16>,
}

struct FetchPlan {
    topics: Vec<(TopicName, Uuid)>,
    targets: Vec<FetchTarget>,
    max_bytes: usize,
    min_bytes: usize,
    isolation: IsolationLevel,
}

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: FetchRequest) -> Reply {
    if request.session_id != 0 || request.session_epoch > 0 {
        // We never hand out sessions, so a client naming one has to start over with a full fetch.
        let response = FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .with_session_id(0);
        return Reply::Ready(ResponseKind::Fetch(response));
    }
    let by_id = ctx.api_version >= 13;
    let image = broker.image();
    let mut plan = FetchPlan {
        topics: Vec::with_capacity(request.topics.len()),
        targets: Vec::new(),
        max_bytes: usize::try_from(request.max_bytes)
            .unwrap_or(0)
            .min(broker.config.fetch_max_bytes),
        min_bytes: usize::try_from(request.min_bytes).unwrap_or(0),
        isolation: IsolationLevel::from_wire(request.isolation_level),
    };
    // A fetch from a follower (replica id set) needs CLUSTER_ACTION, as in Kafka; Shoal's own
    // followers replicate over gRPC, so only a tool would send one.
    let replica_id = if ctx.api_version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let follower_denied = replica_id >= 0
        && !broker
            .authorization
            .allowed_on_cluster(ctx, Operation::ClusterAction);
    for (topic_index, topic) in request.topics.into_iter().enumerate() {
        let topic_image = if by_id {
            image.topic(&topic.topic_id)
        } else {
            image.topic_by_name(topic.topic.0.as_str())
        };
        // READ before existence, as Kafka (a denied name reveals nothing; an unknown id stays
        // UNKNOWN_TOPIC_ID).
        let read_name = match (by_id, topic_image) {
            (true, Some(t)) => Some(t.name.as_str()),
            (true, None) => None,
            (false, _) => Some(topic.topic.0.as_str()),
        };
        let authorized = !follower_denied
            && (replica_id >= 0
                || read_name.is_none_or(|name| {
                    broker
                        .authorization
                        .allowed(ctx, Operation::Read, ResourceType::Topic, name)
                }));
        plan.topics.push((topic.topic.clone(), topic.topic_id));
        for p in topic.partitions {
            let replica = match topic_image {
                _ if !authorized => Err(ResponseError::TopicAuthorizationFailed.code()),
                None if by_id => Err(ResponseError::UnknownTopicId.code()),
                None => Err(ResponseError::UnknownTopicOrPartition.code()),
                Some(t) if t.partition(p.partition).is_none() => {
                    Err(ResponseError::UnknownTopicOrPartition.code())
                }
                Some(t) => broker
                    .replicas
                    .partition(t.id, p.partition)
                    .ok_or_else(|| broker.replicas.not_served_code(t.id, p.partition)),
            };
            plan.targets.push(FetchTarget {
                topic_index,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                partition_max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                current_leader_epoch: p.current_leader_epoch,
                replica,
            });
        }
    }

    let plan = Arc::new(plan);
    let pool = Arc::clone(&broker.fetch_pool);
    let version = ctx.api_version;
    let read = read_reserved(&plan, version, &pool).await;
    let max_wait_ms = bounded_timeout_ms(request.max_wait_ms, MAX_FETCH_WAIT_MS);
    // Consumers count against their fetch quota; replicas never do (Kafka's rule too).
    let quota = (replica_id < 0 && !broker.image().client_quotas.is_empty()).then(|| FetchQuota {
        broker: Arc::clone(broker),
        user: ctx.principal.name.clone(),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        mute: ctx.mute.clone(),
    });
    if read.bytes >= plan.min_bytes || read.has_error || max_wait_ms == 0 || plan.targets.is_empty()
    {
        return Reply::Held(Box::pin(std::future::ready(finish(
            &plan,
            read,
            quota.as_ref(),
        ))));
    }
    // Nothing worth sending yet: give the memory back while waiting.
    drop(read);
    Reply::Held(Box::pin(long_poll(
        plan,
        version,
        Duration::from_millis(max_wait_ms),
        pool,
        quota,
    )))
}

/// Who a consumer's fetch counts against (client quotas).
struct FetchQuota {
    broker: Arc<Broker>,
    user: String,
    client_id: String,
    mute: ConnectionMute,
}

/// The response of a completed read: its metrics counted and, for a consumer with a fetch
/// quota, its bytes recorded and the client throttled when over (the response says how long;
/// the connection is muted that long).
fn finish(plan: &FetchPlan, mut read: Read, quota: Option<&FetchQuota>) -> HeldResponse {
    record_metrics(plan, &read.response);
    if let Some(q) = quota {
        let image = q.broker.image();
        let throttle_ms = q.broker.client_quotas.fetch.record(
            &image.client_quotas,
            &q.user,
            &q.client_id,
            read.bytes as u64,
        );
        if throttle_ms > 0 {
            q.mute.mute_for(Duration::from_millis(throttle_ms));
            read.response.throttle_time_ms = i32::try_from(throttle_ms).unwrap_or(i32::MAX);
        }
    }
    read.held()
}

async fn long_poll(
    plan: Arc<FetchPlan>,
    version: i16,
    max_wait: Duration,
    pool: Arc<MemoryPool>,
    quota: Option<FetchQuota>,
) -> HeldResponse {
    let deadline = tokio::time::Instant::now() + max_wait;
    let mut watchers: Vec<watch::Receiver<i64>> = plan
        .targets
        .iter()
        .filter_map(|t| {
            // read_committed data becomes readable when the last stable offset moves.
            t.replica.as_ref().ok().map(|p| match plan.isolation {
                IsolationLevel::ReadCommitted => p.subscribe_last_stable_offset(),
                IsolationLevel::ReadUncommitted => p.subscribe_high_watermark(),
            })
        })
        .collect();
    loop {
        if watchers.is_empty() {
            let read = read_reserved(&plan, version, &pool).await;
            return finish(&plan, read, quota.as_ref());
        }
        let changed =
            futures::future::select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        // A closed channel means the partition went away: answer now rather than spin.
        let (timed_out, closed) = match tokio::time::timeout_at(deadline, changed).await {
            Err(_) => (true, false),
            Ok((result, _, _)) => (false, result.is_err()),
        };
        let read = read_reserved(&plan, version, &pool).await;
        if timed_out
            || closed
            || read.bytes >= plan.min_bytes
            || read.has_error
            || tokio::time::Instant::now() >= deadline
        {
            return finish(&plan, read, quota.as_ref());
        }
    }
}

/// One pass over a fetch's partitions and the pool memory its records are counted against.
struct Read {
    response: FetchResponse,
    bytes: usize,
    has_error: bool,
    memory: Reservation,
}

impl Read {
    fn held(self) -> HeldResponse {
        HeldResponse {
            response: ResponseKind::Fetch(self.response),
            memory: Some(self.memory),
        }
    }
}

/// Reserves as much of the fetch's `max_bytes` as the pool has free (waiting for at least
/// [`FETCH_MIN_RESERVATION_BYTES`]), reads at most that, and keeps the reservation at what was
/// read.
async fn read_reserved(plan: &Arc<FetchPlan>, version: i16, pool: &Arc<MemoryPool>) -> Read {
    let want = plan.max_bytes.clamp(1, pool.capacity_bytes());
    let least = want.min(FETCH_MIN_RESERVATION_BYTES);
    let mut memory = match pool.try_reserve_up_to(want, least) {
        Some(memory) => memory,
        None => {
            shoal_metrics::record_fetch_pool_wait();
            pool.reserve(least).await
        }
    };
    let (response, bytes, has_error) = read_all_blocking(plan, version, memory.bytes()).await;
    memory.resize(bytes);
    Read {
        response,
        bytes,
        has_error,
        memory,
    }
}

/// Records and bytes out per topic, counted once per response sent (a long poll reads more
/// than once). Whole batches only: the last one may be cut off at the size limit.
fn record_metrics(plan: &FetchPlan, response: &FetchResponse) {
    for (index, topic) in response.responses.iter().enumerate() {
        // v13+ fetches name topics by id only: the name comes from a resolved partition.
        let Some(name) = plan
            .targets
            .iter()
            .filter(|t| t.topic_index == index)
            .find_map(|t| t.replica.as_ref().ok().map(|p| p.topic().to_string()))
        else {
            continue;
        };
        let (mut records, mut bytes) = (0u64, 0u64);
        for p in &topic.partitions {
            let Some(data) = p.records.as_ref().filter(|r| !r.is_empty()) else {
                continue;
            };
            bytes += data.len() as u64;
            records += shoal_log::batch::batches(data)
                .map_while(Result::ok)
                .map(|b| u64::try_from(b.header.record_count).unwrap_or(0))
                .sum::<u64>();
        }
        if bytes > 0 {
            shoal_metrics::record_fetched(&name, records, bytes);
        }
    }
}

/// [`read_all`] on a blocking thread (an error response if the runtime is shutting down).
async fn read_all_blocking(
    plan: &Arc<FetchPlan>,
    version: i16,
    max_bytes: usize,
) -> (FetchResponse, usize, bool) {
    let plan = Arc::clone(plan);
    run_blocking(move || read_all(&plan, version, max_bytes))
        .await
        .unwrap_or_else(|| {
            let response =
                FetchResponse::default().with_error_code(ResponseError::UnknownServerError.code());
            (response, 0, true)
        })
}

/// Reads every target once, at most `max_bytes` of records (beyond it only KIP-74's first
/// batch); returns the response, the record bytes in it, and whether any partition failed
/// (Kafka answers at once when one does).
fn read_all(plan: &FetchPlan, version: i16, max_bytes: usize) -> (FetchResponse, usize, bool) {
    let by_id = version >= 13;
    let mut topics: Vec<FetchableTopicResponse> = plan
        .topics
        .iter()
        .map(|(name, id)| {
            let mut t = FetchableTopicResponse::default();
            if by_id {
                t.topic_id = *id;
            } else {
                t.topic = name.clone();
            }
            t
        })
        .collect();
    let mut total_bytes = 0usize;
    let mut has_error = false;
    for target in &plan.targets {
        let mut data = PartitionData::default()
            .with_partition_index(target.partition)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_aborted_transactions(Some(Vec::new()))
            .with_records(Some(Bytes::new()));
        let remaining = max_bytes.min(plan.max_bytes).saturating_sub(total_bytes);
        let result = target.replica.clone().and_then(|partition| {
            partition
                .check_fetch_epoch(target.current_leader_epoch)
                .map_err(|e| partition_error_code(&e))?;
            // KIP-74: the first batch of the first non-empty partition is returned even if it
            // exceeds the limits, so a consumer can always make progress.
            let min_one_batch = total_bytes == 0;
            partition
                .read_committed(
                    target.fetch_offset,
                    target.partition_max_bytes.min(remaining),
                    min_one_batch,
                    plan.isolation,
                )
                .map_err(|e| partition_error_code(&e))
        });
        match result {
            Ok(fetched) => {
                total_bytes += fetched.records.len();
                data.high_watermark = fetched.high_watermark;
                data.last_stable_offset = fetched.last_stable_offset;
                data.aborted_transactions = Some(
                    fetched
                        .aborted_transactions
                        .iter()
                        .map(|t| {
                            AbortedTransaction::default()
                                .with_producer_id(t.producer_id.into())
                                .with_first_offset(t.first_offset)
                        })
                        .collect(),
                );
                if version >= 5 {
                    data.log_start_offset = fetched.log_start_offset;
                }
                data.records = Some(fetched.records);
            }
            Err(code) => {
                has_error = true;
                data.error_code = code;
            }
        }
        if let Some(t) = topics.get_mut(target.topic_index) {
            t.partitions.push(data);
        }
    }
    let response = FetchResponse::default()
        .with_session_id(0)
        .with_responses(topics);
    (response, total_bytes, has_error)
}
