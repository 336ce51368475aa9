//! DeleteRecords: move partitions' log start offsets up (`kafka-delete-records`, admin
//! clients' `delete_records`, Kafka Streams purging its repartition topics).
//!
//! As Kafka (`KafkaApis.handleDeleteRecordsRequest`, `ReplicaManager.deleteRecords`, its
//! `DelayedDeleteRecords`): DELETE on the topic, else TOPIC_AUTHORIZATION_FAILED; an unknown
//! partition UNKNOWN_TOPIC_OR_PARTITION; an internal topic INVALID_TOPIC_EXCEPTION; a broker
//! that does not lead it NOT_LEADER_OR_FOLLOWER; the rest is the leader's decision
//! (`shoal_replica::delete_records`: POLICY_VIOLATION, OFFSET_OUT_OF_RANGE). The answer per
//! partition waits, within `timeout_ms`, until the low watermark (the smallest log start
//! offset over the in-sync replicas) reaches the offset: then every replica that could lead
//! has deleted the records. One that does not in time is REQUEST_TIMED_OUT (the leader has
//! deleted them; the followers follow as they fetch). Every low watermark is the one reached.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, ResponseKind};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::topic_name::is_internal;

use crate::Broker;
use crate::apis::{bounded_timeout_ms, str_bytes};
use crate::blocking::run_blocking;
use crate::error_codes::partition_error_code;

/// Longest a DeleteRecords waits for the followers (Kafka bounds it by the request timeout).
pub const MAX_DELETE_RECORDS_WAIT_MS: u64 = 300_000;

/// Most partitions one request names.
pub const MAX_PARTITIONS_PER_REQUEST: usize = 10_000;

/// One partition's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    error_code: i16,
    low_watermark: i64,
}

fn refused(code: i16) -> Outcome {
    Outcome {
        error_code: code,
        low_watermark: -1,
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DeleteRecordsRequest,
) -> Reply {
    let timeout = Duration::from_millis(bounded_timeout_ms(
        request.timeout_ms,
        MAX_DELETE_RECORDS_WAIT_MS,
    ));
    let image = broker.replicas.image();
    let named: usize = request.topics.iter().map(|t| t.partitions.len()).sum();
    let mut outcomes: BTreeMap<(String, i32), Outcome> = BTreeMap::new();
    let mut waits = Vec::new();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let allowed =
            broker
                .authorization
                .allowed(ctx, Operation::Delete, ResourceType::Topic, &name);
        for p in &topic.partitions {
            let key = (name.clone(), p.partition_index);
            let known = image
                .topic_by_name(&name)
                .filter(|t| t.partition(p.partition_index).is_some());
            let outcome = if named > MAX_PARTITIONS_PER_REQUEST {
                refused(ResponseError::InvalidRequest.code())
            } else if !allowed {
                refused(ResponseError::TopicAuthorizationFailed.code())
            } else if let Some(t) = known {
                if is_internal(&name) {
                    refused(ResponseError::InvalidTopicException.code())
                } else {
                    match broker.replicas.partition(t.id, p.partition_index) {
                        None => refused(broker.replicas.not_served_code(t.id, p.partition_index)),
                        Some(partition) => {
                            let offset = p.offset;
                            let deleting = Arc::clone(&partition);
                            match run_blocking(move || deleting.delete_records(offset)).await {
                                None => return Reply::NoResponse,
                                Some(Err(error)) => refused(partition_error_code(&error)),
                                Some(Ok(target)) => {
                                    waits.push((key.clone(), partition, target));
                                    refused(ResponseError::RequestTimedOut.code())
                                }
                            }
                        }
                    }
                }
            } else {
                refused(ResponseError::UnknownTopicOrPartition.code())
            };
            outcomes.insert(key, outcome);
        }
    }
    // Wait for the followers, all partitions at once, within one deadline.
    let deadline = tokio::time::Instant::now() + timeout;
    let reached = futures::future::join_all(waits.into_iter().map(|(key, partition, target)| {
        async move {
            let mut low = partition.subscribe_low_watermark();
            let error_code =
                match tokio::time::timeout_at(deadline, low.wait_for(|lw| *lw >= target)).await {
                    Ok(Ok(_)) => 0,
                    // Closed (moved, shut down): the client asks the leader again.
                    Ok(Err(_)) => ResponseError::NotLeaderOrFollower.code(),
                    Err(_) => ResponseError::RequestTimedOut.code(),
                };
            let low_watermark = *low.borrow();
            (
                key,
                Outcome {
                    error_code,
                    low_watermark,
                },
            )
        }
    }))
    .await;
    outcomes.extend(reached);
    let mut by_topic: BTreeMap<String, Vec<DeleteRecordsPartitionResult>> = BTreeMap::new();
    for ((topic, partition), outcome) in outcomes {
        by_topic.entry(topic).or_default().push(
            DeleteRecordsPartitionResult::default()
                .with_partition_index(partition)
                .with_low_watermark(outcome.low_watermark)
                .with_error_code(outcome.error_code),
        );
    }
    Reply::Ready(ResponseKind::DeleteRecords(
        DeleteRecordsResponse::default().with_topics(
            by_topic
                .into_iter()
                .map(|(name, partitions)| {
                    DeleteRecordsTopicResult::default()
                        .with_name(str_bytes(&name).into())
                        .with_partitions(partitions)
                })
                .collect(),
        ),
    ))
}
