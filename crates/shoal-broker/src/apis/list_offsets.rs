//! ListOffsets: earliest, latest, max-timestamp and by-timestamp offset lookups.
//!
//! Consumers use it to start at the beginning or end of a partition, or at a point in time.
//! "Latest" is the high watermark (what a read_uncommitted consumer can see). A new leader
//! answers OFFSET_NOT_AVAILABLE until its HW reaches the start of its epoch: the HW it brought
//! from its follower days lags, and "latest" must never hide an acknowledged record. A timestamp lookup
//! finds the first batch whose max timestamp reaches the target through the log's time index,
//! then walks that batch's records for the exact first record at or after it, as Kafka does.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, ResponseKind};
use kafka_protocol::records::RecordBatchDecoder;
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};
use shoal_replica::{IsolationLevel, Partition};

use crate::Broker;
use crate::blocking::run_blocking;
use crate::error_codes::partition_error_code;

const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
const LATEST_TIERED_TIMESTAMP: i64 = -5;
/// The `replica_id` of a consumer's request (-2 is a debugging tool's).
const CONSUMER_REPLICA_ID: i32 = -1;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ListOffsetsRequest,
) -> Reply {
    let broker = Arc::clone(broker);
    let ctx = ctx.clone();
    // The offset queries take a partition's state lock, which an append holds across its disk
    // write, and timestamp lookups read the index and the log: off the async threads.
    run_blocking(move || list_offsets(&broker, &ctx, request))
        .await
        .unwrap_or(Reply::NoResponse)
}

fn list_offsets(broker: &Arc<Broker>, ctx: &RequestContext, request: ListOffsetsRequest) -> Reply {
    // leader_epoch exists from v4 (KIP-320); earlier versions must leave it at its default.
    let with_epoch = ctx.api_version >= 4;
    let client_request = request.replica_id.0 == CONSUMER_REPLICA_ID;
    // isolation_level exists from v2 (KIP-98): read_committed offsets stop at the last stable
    // offset instead of the high watermark.
    let read_committed = ctx.api_version >= 2
        && IsolationLevel::from_wire(request.isolation_level) == IsolationLevel::ReadCommitted;
    let image = broker.image();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let topic_image = image.topic_by_name(topic.name.0.as_str());
            let authorized = broker.authorization.allowed(
                ctx,
                Operation::Describe,
                ResourceType::Topic,
                topic.name.0.as_str(),
            );
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    if !authorized {
                        return response
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let partition = match topic_image {
                        Some(t) if t.partition(p.partition_index).is_some() => {
                            match broker.replicas.partition(t.id, p.partition_index) {
                                Some(partition) => partition,
                                None => {
                                    return response.with_error_code(
                                        ResponseError::NotLeaderOrFollower.code(),
                                    );
                                }
                            }
                        }
                        _ => {
                            return response
                                .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                        }
                    };
                    if let Err(error) = partition.check_fetch_epoch(p.current_leader_epoch) {
                        return response.with_error_code(partition_error_code(&error));
                    }
                    // Kafka answers clients OFFSET_NOT_AVAILABLE while a new leader's HW lags
                    // the start of its epoch; a tool's debug request (replica -2) gets the HW.
                    let high_watermark = match (client_request, read_committed) {
                        (true, false) => partition.high_watermark_for_offset_query(),
                        (true, true) => partition.last_stable_offset_for_offset_query(),
                        (false, false) => Ok(partition.high_watermark()),
                        (false, true) => Ok(partition.last_stable_offset()),
                    };
                    let high_watermark = match high_watermark {
                        Ok(hw) => hw,
                        Err(error) => {
                            return response.with_error_code(partition_error_code(&error));
                        }
                    };
                    match lookup(&partition, p.timestamp, high_watermark) {
                        Ok(Some((timestamp, offset))) => response
                            .with_timestamp(timestamp)
                            .with_offset(offset)
                            .with_leader_epoch(if with_epoch {
                                partition.leader_epoch()
                            } else {
                                -1
                            }),
                        Ok(None) => response,
                        Err(code) => response.with_error_code(code),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    Reply::Ready(ResponseKind::ListOffsets(
        ListOffsetsResponse::default().with_topics(topics),
    ))
}

/// Kafka's `offsetOfMaxTimestamp` of a batch: its first record with the batch's largest
/// timestamp (every record of a LogAppendTime batch has it).
fn offset_of_max_timestamp(
    records: &[kafka_protocol::records::Record],
    timestamp: i64,
) -> Option<i64> {
    records
        .iter()
        .find(|r| {
            r.timestamp_type == kafka_protocol::records::TimestampType::LogAppend
                || r.timestamp == timestamp
        })
        .map(|r| r.offset)
}

/// `(timestamp, offset)` for the query, or None when no record matches (Kafka answers -1, -1).
fn lookup(
    partition: &Partition,
    query: i64,
    high_watermark: i64,
) -> Result<Option<(i64, i64)>, i16> {
    match query {
        LATEST_TIMESTAMP | LATEST_TIERED_TIMESTAMP => Ok(Some((-1, high_watermark))),
        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => partition
            .read_log(|log| Ok(log.log_start_offset()))
            .map(|offset| Some((-1, offset)))
            .map_err(|e| partition_error_code(&e)),
        MAX_TIMESTAMP => {
            let found = partition
                .read_log(|log| Ok(log.max_timestamp_and_offset()))
                .map_err(|e| partition_error_code(&e))?;
            let Some((timestamp, batch_last_offset)) =
                found.filter(|(_, offset)| *offset < high_watermark)
            else {
                return Ok(None);
            };
            // KAFKA-16310: the offset of the first record carrying it, not the batch's last.
            let read = partition
                .read_records(batch_last_offset, 1, i64::MAX, true)
                .map_err(|e| partition_error_code(&e))?;
            let mut bytes = read.records.clone();
            let record_set = match RecordBatchDecoder::decode(&mut bytes) {
                Ok(set) => set,
                Err(error) => {
                    tracing::warn!(topic = partition.topic(), partition = partition.index(), %error, "cannot decode a stored batch for a MAX_TIMESTAMP lookup");
                    return Err(ResponseError::CorruptMessage.code());
                }
            };
            Ok(Some((
                timestamp,
                offset_of_max_timestamp(&record_set.records, timestamp)
                    .unwrap_or(batch_last_offset),
            )))
        }
        t if t < 0 => Err(ResponseError::InvalidRequest.code()),
        target => {
            let batch = partition
                .read_log(|log| log.find_batch_by_timestamp(target))
                .map_err(|e| partition_error_code(&e))?;
            let Some(batch) = batch else { return Ok(None) };
            let mut bytes = batch.records.clone();
            let record_set = match RecordBatchDecoder::decode(&mut bytes) {
                Ok(set) => set,
                Err(error) => {
                    tracing::warn!(topic = partition.topic(), partition = partition.index(), %error, "cannot decode a stored batch for a timestamp lookup");
                    return Err(ResponseError::CorruptMessage.code());
                }
            };
            Ok(record_set
                .records
                .iter()
                .find(|r| r.timestamp >= target && r.offset < high_watermark)
                .map(|r| (r.timestamp, r.offset)))
        }
    }
}
