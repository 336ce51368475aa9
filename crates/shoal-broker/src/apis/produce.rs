//! Produce: append producers' batches as leader, then answer per acks.
//!
//! Appends happen while the connection's requests are processed in order, so batches of one
//! producer connection land in the order sent: they run on a blocking thread (they write to
//! disk, and recompress when the topic's `compression.type` asks for it), and `handle` waits
//! for them before the connection passes in its next request.
//! acks=all waits (deferred) until the high watermark passes each partition's last offset,
//! bounded by the request's timeout.
//!
//! Transactional batches need WRITE on the request's transactional id. Before a producer's
//! first transactional write to a partition, the partition takes a verification guard and the
//! transactional id's coordinator is asked whether the partition is in the producer's open
//! transaction (KIP-890 part 1, `transactions::verifier`); the append then carries the guard,
//! which a marker written meanwhile has voided. This runs before the blocking append.
//! Produce v12+ speaks transaction version 2 (KIP-890 part 2): the client sent no
//! AddPartitionsToTxn, and the same question *adds* the partition to its transaction.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use shoal_kafka::{Reply, RequestContext};
use shoal_log::LogError;
use shoal_replica::{AppendOrigin, Partition, PartitionError, RequiredAcks, VerificationGuard};

use crate::Broker;
use crate::apis::internal_topics;
use crate::apis::{bounded_timeout_ms, str_bytes};
use crate::blocking::run_blocking;
use crate::error_codes::partition_error_code;
use crate::time::wall_ms;
use crate::transactions::TxnPartitionCheck;
use crate::transactions::verifier::client_code_for_verification_error;
use shoal_acl::{Operation, ResourceType};

/// The first Produce version of transaction-version-2 clients (KIP-890 part 2).
pub(crate) const PRODUCE_TRANSACTION_V2_MIN_VERSION: i16 = 12;

/// Upper bound on how long an acks=all produce may wait, whatever the client asks.
const MAX_PRODUCE_TIMEOUT_MS: u64 = 300_000;

struct PendingAck {
    topic_index: usize,
    partition_index: usize,
    partition: Arc<Partition>,
    required_offset: i64,
    /// The leader epoch the batch was appended in.
    leader_epoch: i32,
}

/// A partition that may need KIP-890 verification: (topic, partition), its (topic index,
/// partition index) in the request, and the replica.
/// (topic, partition), (topic index, partition index), the partition, the batch's first
/// sequence.
type Candidate = ((String, i32), (usize, usize), Arc<Partition>, i32);

/// A transactional partition's verdict before the append, by (topic index, partition index):
/// append with this guard (`None`: no verification needed), or answer this code.
type Verdicts = HashMap<(usize, usize), Result<Option<VerificationGuard>, i16>>;

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: ProduceRequest) -> Reply {
    if let Some(refusal) = transactional_id_refusal(broker, ctx, &request) {
        return refusal;
    }
    let verdicts = transactional_verdicts(broker, ctx, &request).await;
    let throttle_ms = record_produce_quota(broker, ctx, &request);
    let broker = Arc::clone(broker);
    let ctx = ctx.clone();
    run_blocking(move || append_all(&broker, &ctx, request, &verdicts, throttle_ms))
        .await
        .unwrap_or(Reply::NoResponse)
}

/// Counts the request's record bytes against the client's produce quota (Kafka counts before
/// appending, whatever the outcome) and mutes the connection when it is over; the throttle
/// time the response carries.
fn record_produce_quota(broker: &Broker, ctx: &RequestContext, request: &ProduceRequest) -> i32 {
    let image = broker.image();
    if image.client_quotas.is_empty() {
        return 0;
    }
    let bytes: usize = request
        .topic_data
        .iter()
        .flat_map(|t| t.partition_data.iter())
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    let throttle_ms = broker.client_quotas.produce.record(
        &image.client_quotas,
        &ctx.principal.name,
        ctx.client_id.as_deref().unwrap_or(""),
        bytes as u64,
    );
    if throttle_ms > 0 {
        ctx.mute.mute_for(Duration::from_millis(throttle_ms));
    }
    i32::try_from(throttle_ms).unwrap_or(i32::MAX)
}

/// Kafka's first check of a Produce (`handleProduceRequest`): transactional records need WRITE
/// on the transactional id the request names, else the whole request fails with
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED before any topic is looked at.
fn transactional_id_refusal(
    broker: &Broker,
    ctx: &RequestContext,
    request: &ProduceRequest,
) -> Option<Reply> {
    let transactional = request.topic_data.iter().any(|t| {
        t.partition_data
            .iter()
            .any(|p| transactional_producer(p.records.as_deref()).is_some())
    });
    if !transactional {
        return None;
    }
    let authorized = request.transactional_id.as_ref().is_some_and(|id| {
        broker.authorization.allowed(
            ctx,
            Operation::Write,
            ResourceType::TransactionalId,
            id.0.as_str(),
        )
    });
    if authorized {
        return None;
    }
    tracing::debug!(client = ?ctx.client_id, peer = %ctx.peer, "transactional produce without WRITE on its transactional id");
    if RequiredAcks::from_wire(request.acks) == Some(RequiredAcks::None) {
        return Some(Reply::NoResponse);
    }
    let code = ResponseError::TransactionalIdAuthorizationFailed.code();
    let by_id = ctx.api_version >= 13;
    let responses = request
        .topic_data
        .iter()
        .map(|topic| {
            let partitions = topic
                .partition_data
                .iter()
                .map(|data| {
                    PartitionProduceResponse::default()
                        .with_index(data.index)
                        .with_error_code(code)
                        .with_base_offset(-1)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(-1)
                })
                .collect();
            let response = TopicProduceResponse::default().with_partition_responses(partitions);
            if by_id {
                response.with_topic_id(topic.topic_id)
            } else {
                response.with_name(topic.name.clone())
            }
        })
        .collect();
    Some(Reply::Ready(ResponseKind::Produce(
        ProduceResponse::default().with_responses(responses),
    )))
}

/// The producer id and epoch of a transactional first batch.
fn transactional_producer(records: Option<&[u8]>) -> Option<(i64, i16, i32)> {
    let header = shoal_log::batch::RecordBatchHeader::parse(records?).ok()?;
    (header.is_transactional() && header.producer_id >= 0).then_some((
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
    ))
}

/// Verifies, with the transactional id's coordinator, every partition that takes a producer's
/// first transactional write (KIP-890 part 1).
async fn transactional_verdicts(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: &ProduceRequest,
) -> Verdicts {
    let mut verdicts = Verdicts::new();
    let image = broker.image();
    let by_id = ctx.api_version >= 13;
    let supports_epoch_bump = ctx.api_version >= PRODUCE_TRANSACTION_V2_MIN_VERSION;
    let check = TxnPartitionCheck::for_request(supports_epoch_bump);
    // WRITE on it was checked first ([`transactional_id_refusal`]).
    let transactional_id = request.transactional_id.as_ref().map(|id| id.0.as_str());
    // Partitions that may need verification: (topic, partition) → (indexes, partition); one
    // producer per request.
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut producer = None;
    for (ti, topic) in request.topic_data.iter().enumerate() {
        let topic_image = if by_id {
            image.topic(&topic.topic_id)
        } else {
            image.topic_by_name(topic.name.0.as_str())
        };
        for (pi, data) in topic.partition_data.iter().enumerate() {
            let Some((producer_id, producer_epoch, first_sequence)) =
                transactional_producer(data.records.as_deref())
            else {
                continue;
            };
            if !(supports_epoch_bump
                || broker
                    .transactions
                    .coordinator
                    .config()
                    .verification_enabled)
            {
                continue;
            }
            let Some(t) = topic_image else { continue };
            let Some(partition) = broker.replicas.partition(t.id, data.index) else {
                continue;
            };
            if producer.is_some_and(|p| p != (producer_id, producer_epoch)) {
                verdicts.insert((ti, pi), Err(ResponseError::InvalidRecord.code()));
                continue;
            }
            producer = Some((producer_id, producer_epoch));
            candidates.push((
                (t.name.clone(), data.index),
                (ti, pi),
                partition,
                first_sequence,
            ));
        }
    }
    let (Some(transactional_id), Some((producer_id, producer_epoch))) =
        (transactional_id, producer)
    else {
        return verdicts;
    };
    // Taking a guard locks the partition's state, which an append holds across its write:
    // tried here without waiting, and only the partitions whose lock is busy go to a blocking
    // thread (a trip there costs more than the check).
    let mut to_verify: HashMap<(String, i32), ((usize, usize), VerificationGuard)> = HashMap::new();
    let mut busy = Vec::new();
    for (tp, indexes, partition, first_sequence) in candidates {
        match partition.try_txn_verification_needed(
            producer_id,
            producer_epoch,
            supports_epoch_bump,
            first_sequence,
        ) {
            Some(Some(guard)) => {
                to_verify.insert(tp, (indexes, guard));
            }
            Some(None) => {}
            None => busy.push((tp, indexes, partition, first_sequence)),
        }
    }
    if !busy.is_empty() {
        let waited: Vec<_> = run_blocking(move || {
            busy.into_iter()
                .filter_map(|(tp, indexes, partition, first_sequence)| {
                    partition
                        .txn_verification_needed(
                            producer_id,
                            producer_epoch,
                            supports_epoch_bump,
                            first_sequence,
                        )
                        .map(|guard| (tp, (indexes, guard)))
                })
                .collect()
        })
        .await
        .unwrap_or_default();
        to_verify.extend(waited);
    }
    if to_verify.is_empty() {
        return verdicts;
    }
    let partitions: BTreeSet<(String, i32)> = to_verify.keys().cloned().collect();
    let answer = broker
        .transactions
        .verifier
        .verify(
            transactional_id,
            producer_id,
            producer_epoch,
            &partitions,
            check,
        )
        .await;
    for (tp, (indexes, guard)) in to_verify {
        let verdict = match &answer {
            Ok(per_partition) => match per_partition.get(&tp) {
                Some(Ok(())) => Ok(Some(guard)),
                // Not in the transaction: the write would open a transaction nobody ends.
                Some(Err(_)) | None => Err(ResponseError::InvalidTxnState.code()),
            },
            Err(code) => Err(client_code_for_verification_error(
                *code,
                check,
                ResponseError::NotEnoughReplicas,
            )),
        };
        if let Err(code) = verdict {
            tracing::debug!(
                transactional_id,
                topic = tp.0,
                partition = tp.1,
                code,
                "transactional produce not verified"
            );
        }
        verdicts.insert(indexes, verdict);
    }
    verdicts
}

/// Appends every partition's batches (blocking) and answers, or defers the answer for acks=all.
fn append_all(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ProduceRequest,
    verdicts: &Verdicts,
    throttle_time_ms: i32,
) -> Reply {
    let acks = RequiredAcks::from_wire(request.acks);
    let image = broker.image();
    let now = wall_ms();
    let by_id = ctx.api_version >= 13;
    let mut pending: Vec<PendingAck> = Vec::new();
    let mut responses = Vec::with_capacity(request.topic_data.len());
    for (topic_index, topic) in request.topic_data.into_iter().enumerate() {
        let topic_image = if by_id {
            image.topic(&topic.topic_id)
        } else {
            image.topic_by_name(topic.name.0.as_str())
        };
        let unknown_topic_code = if by_id {
            ResponseError::UnknownTopicId.code()
        } else {
            ResponseError::UnknownTopicOrPartition.code()
        };
        // Kafka checks WRITE before existence (a denied name reveals nothing); an unknown id
        // stays UNKNOWN_TOPIC_ID.
        let write_name = match (by_id, topic_image) {
            (true, Some(t)) => Some(t.name.as_str()),
            (true, None) => None,
            (false, _) => Some(topic.name.0.as_str()),
        };
        let authorized = write_name.is_none_or(|name| {
            broker
                .authorization
                .allowed(ctx, Operation::Write, ResourceType::Topic, name)
        });
        let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
        for (partition_index, data) in topic.partition_data.into_iter().enumerate() {
            let mut response = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let verdict = verdicts.get(&(topic_index, partition_index));
            let refused = match verdict {
                Some(Err(code)) => Some(*code),
                _ => None,
            };
            let result = match (acks, topic_image) {
                (None, _) => Err(ResponseError::InvalidRequiredAcks.code()),
                _ if !authorized => Err(ResponseError::TopicAuthorizationFailed.code()),
                (_, None) => Err(unknown_topic_code),
                (Some(_), Some(t)) if internal_topics::produce_refusal(&t.name).is_some() => {
                    tracing::warn!(topic = t.name, client = ?ctx.client_id, peer = %ctx.peer, "refused a client's produce to an internal topic");
                    Err(ResponseError::InvalidTopicException.code())
                }
                (Some(_), Some(_)) if refused.is_some() => Err(refused.unwrap_or(-1)),
                (Some(acks), Some(t)) => match t.partition(data.index) {
                    None => Err(ResponseError::UnknownTopicOrPartition.code()),
                    Some(_) => match broker.replicas.partition(t.id, data.index) {
                        None => Err(broker.replicas.not_served_code(t.id, data.index)),
                        // A nearly full disk refuses writes (logged once, by DiskSpace).
                        Some(_) if !broker.replicas.appends_allowed(t.id, data.index) => {
                            Err(ResponseError::KafkaStorageError.code())
                        }
                        Some(partition) => match data.records.as_deref() {
                            None | Some([]) => Err(ResponseError::CorruptMessage.code()),
                            Some(records) if zstd_before_v7(ctx.api_version, records) => {
                                Err(ResponseError::UnsupportedCompressionType.code())
                            }
                            Some(records) => partition
                                .append_as_leader_from(
                                    records,
                                    acks,
                                    now,
                                    AppendOrigin::Client {
                                        verification: verdict
                                            .and_then(|v| v.as_ref().ok().cloned().flatten()),
                                    },
                                )
                                .map(|appended| (partition, appended))
                                .map_err(|error| {
                                    if !matches!(error, shoal_replica::PartitionError::NotLeaderOrFollower) {
                                        tracing::warn!(topic = t.name, partition = data.index, client = ?ctx.client_id, %error, "produce rejected");
                                    }
                                    broker.replicas.storage_error(t.id, data.index, &error);
                                    let code = partition_error_code(&error);
                                    if ctx.api_version >= 8 {
                                        describe_error(&mut response, &error);
                                    }
                                    code
                                }),
                        },
                    },
                },
            };
            match result {
                Ok((partition, appended)) => {
                    let records = appended.info.last_offset - appended.info.first_offset + 1;
                    let bytes = data.records.as_ref().map_or(0, |r| r.len());
                    if let Some(t) = topic_image {
                        broker
                            .replicas
                            .note_written(t.id, partition.index(), bytes as u64);
                    }
                    shoal_metrics::record_produced(
                        partition.topic(),
                        u64::try_from(records).unwrap_or(0),
                        bytes as u64,
                    );
                    response.base_offset = appended.info.first_offset;
                    response.log_append_time_ms = appended.info.log_append_time_ms;
                    if ctx.api_version >= 5 {
                        response.log_start_offset = appended.log_start_offset;
                    }
                    if acks == Some(RequiredAcks::AllInSync) {
                        pending.push(PendingAck {
                            topic_index,
                            partition_index,
                            partition,
                            required_offset: appended.info.last_offset + 1,
                            leader_epoch: appended.leader_epoch,
                        });
                    }
                }
                Err(code) => response.error_code = code,
            }
            partition_responses.push(response);
        }
        let mut topic_response =
            TopicProduceResponse::default().with_partition_responses(partition_responses);
        if by_id {
            topic_response.topic_id = topic.topic_id;
        } else {
            topic_response.name = topic.name;
        }
        responses.push(topic_response);
    }
    let response = ProduceResponse::default()
        .with_responses(responses)
        .with_throttle_time_ms(throttle_time_ms);
    if acks == Some(RequiredAcks::None) {
        return Reply::NoResponse;
    }
    // Already replicated, in the epoch of the append (else the wait below tells which).
    pending.retain(|p| {
        p.partition.high_watermark() < p.required_offset
            || p.partition.leader_epoch() != p.leader_epoch
    });
    if pending.is_empty() {
        return Reply::Ready(ResponseKind::Produce(response));
    }
    let timeout = Duration::from_millis(bounded_timeout_ms(
        request.timeout_ms,
        MAX_PRODUCE_TIMEOUT_MS,
    ));
    Reply::Deferred(Box::pin(wait_for_acks(
        response,
        pending,
        timeout,
        ctx.api_version,
    )))
}

/// Kafka's `ProduceRequest.validateRecords`: zstd needs Produce v7 (the clients that know it).
fn zstd_before_v7(version: i16, records: &[u8]) -> bool {
    version < 7
        && shoal_log::batch::batches(records)
            .map_while(Result::ok)
            .any(|b| b.header.compression_codec() == shoal_log::compression::ZSTD)
}

/// v8+: the error's text and, for records refused one by one (Kafka's
/// `RecordValidationException`), which records and why.
fn describe_error(response: &mut PartitionProduceResponse, error: &PartitionError) {
    let message = match error {
        PartitionError::Log(log) => log.to_string(),
        other => other.to_string(),
    };
    response.error_message = Some(str_bytes(&message));
    if let PartitionError::Log(LogError::RecordErrors { record_errors, .. }) = error {
        response.record_errors = record_errors
            .iter()
            .map(|e| {
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(e.batch_index)
                    .with_batch_index_error_message(Some(str_bytes(&e.message)))
            })
            .collect();
    }
}

async fn wait_for_acks(
    mut response: ProduceResponse,
    pending: Vec<PendingAck>,
    timeout: Duration,
    version: i16,
) -> ResponseKind {
    let deadline = tokio::time::Instant::now() + timeout;
    for p in pending {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if let Err(error) = p
            .partition
            .wait_for_acks_in_epoch(p.required_offset, p.leader_epoch, left)
            .await
            && let Some(r) = response
                .responses
                .get_mut(p.topic_index)
                .and_then(|t| t.partition_responses.get_mut(p.partition_index))
        {
            r.error_code = partition_error_code(&error);
            if version >= 8 {
                r.error_message = Some(str_bytes(&error.to_string()));
            }
        }
    }
    ResponseKind::Produce(response)
}
