//! OffsetFetch: a group's committed offsets (where its consumers resume).
//!
//! v1–7 ask for one group, v8+ for several, each answered with its own error. `topics` null
//! (v2+) means every partition the group committed. A partition with no commit answers
//! offset −1, and the consumer falls back to `auto.offset.reset`. v1 has no group-level error
//! field, so a group error is repeated in every partition. Every offset answered here is
//! already replicated (the coordinator applies a commit only after its write is), so
//! `require_stable` needs nothing more without transactions.

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    GroupId, OffsetFetchRequest, OffsetFetchResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use shoal_group::GroupError;
use shoal_group::records::OffsetValue;
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::{MAX_BATCH_ITEMS, topic_name};

type Wanted = Option<Vec<(String, Vec<i32>)>>;
/// A topic's partitions with their committed offsets (`None` = no commit).
type TopicOffsets = (String, Vec<(i32, Option<OffsetValue>)>);

/// One group's answer: partitions grouped by topic, in the order asked (or sorted for "all").
struct GroupOffsets {
    error: GroupError,
    topics: Vec<TopicOffsets>,
}

async fn fetch_group(broker: &Arc<Broker>, group_id: &str, wanted: Wanted) -> GroupOffsets {
    let keys = wanted.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
            .collect::<Vec<_>>()
    });
    match broker
        .groups
        .coordinator
        .fetch_offsets(group_id, keys)
        .await
    {
        Err(error) => GroupOffsets {
            error,
            // v1 repeats the error per asked partition.
            topics: wanted
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| (t, ps.into_iter().map(|p| (p, None)).collect()))
                .collect(),
        },
        Ok(found) => {
            let mut topics: Vec<TopicOffsets> = Vec::new();
            for ((topic, partition), value) in found {
                match topics.last_mut() {
                    Some((t, ps)) if *t == topic => ps.push((partition, value)),
                    _ => topics.push((topic, vec![(partition, value)])),
                }
            }
            GroupOffsets {
                error: GroupError::None,
                topics,
            }
        }
    }
}

fn committed(value: &Option<OffsetValue>) -> (i64, i32, StrBytes) {
    match value {
        Some(v) => (
            v.offset,
            v.leader_epoch,
            StrBytes::from_string(v.metadata.clone()),
        ),
        None => (-1, -1, StrBytes::default()),
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: OffsetFetchRequest,
) -> Reply {
    let version = ctx.api_version;
    let mut response = OffsetFetchResponse::default();
    if version >= 8 {
        if request.groups.len() > MAX_BATCH_ITEMS {
            tracing::warn!(
                groups = request.groups.len(),
                "OffsetFetch with too many groups refused"
            );
        }
        for group in request.groups {
            let group_id = group.group_id.0.to_string();
            let fetched = if response.groups.len() >= MAX_BATCH_ITEMS {
                GroupOffsets {
                    error: GroupError::InvalidRequest,
                    topics: Vec::new(),
                }
            } else {
                let wanted = group.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                fetch_group(broker, &group_id, wanted).await
            };
            let topics = if fetched.error.is_ok() {
                fetched
                    .topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(topic_name(&topic))
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|(p, v)| {
                                        let (offset, epoch, metadata) = committed(&v);
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(Some(metadata))
                                    })
                                    .collect(),
                            )
                    })
                    .collect()
            } else {
                Vec::new()
            };
            response.groups.push(
                OffsetFetchResponseGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(group_id)))
                    .with_error_code(fetched.error.code())
                    .with_topics(topics),
            );
        }
        return Reply::Ready(ResponseKind::OffsetFetch(response));
    }
    let wanted: Wanted = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let fetched = fetch_group(broker, request.group_id.0.as_str(), wanted).await;
    let per_partition_error = if version < 2 { fetched.error.code() } else { 0 };
    if version >= 2 {
        response.error_code = fetched.error.code();
    }
    if fetched.error.is_ok() || version < 2 {
        response.topics = fetched
            .topics
            .into_iter()
            .map(|(topic, partitions)| {
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic)))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(p, v)| {
                                let (offset, epoch, metadata) = committed(&v);
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(if version >= 5 {
                                        epoch
                                    } else {
                                        -1
                                    })
                                    .with_metadata(Some(metadata))
                                    .with_error_code(per_partition_error)
                            })
                            .collect(),
                    )
            })
            .collect();
    }
    Reply::Ready(ResponseKind::OffsetFetch(response))
}
