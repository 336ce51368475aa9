//! OffsetFetch: a group's committed offsets (where its consumers resume).
//!
//! v1–7 ask for one group, v8+ for several, each answered with its own error. `topics` null
//! (v2+) means every partition the group committed. A partition with no commit answers
//! offset −1, and the consumer falls back to `auto.offset.reset`. v1 has no group-level error
//! field, so a group error is repeated in every partition. Every offset answered here is
//! already replicated (the coordinator applies a commit only after its write is). Offsets a
//! transaction committed (TxnOffsetCommit) are not answered until it commits; with
//! `require_stable` (v7+) a partition with one pending answers UNSTABLE_OFFSET_COMMIT (offset
//! −1) instead of its committed offset, and the consumer retries until the transaction ends.
//!
//! Authorization (Kafka's `handleOffsetFetchRequestFromCoordinator`), per group and before the
//! coordinator is asked: DESCRIBE on the group, else GROUP_AUTHORIZATION_FAILED (the group's
//! error code, or every asked partition's at v1). Of the topics asked for, those without
//! DESCRIBE are not looked up and answer TOPIC_AUTHORIZATION_FAILED per partition (after the
//! others, as Kafka orders them); when every topic is asked for (`topics` null), those without
//! DESCRIBE are silently left out.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    GroupId, OffsetFetchRequest, OffsetFetchResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use shoal_acl::{Operation, ResourceType};
use shoal_group::GroupError;
use shoal_group::records::OffsetValue;
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::{MAX_BATCH_ITEMS, topic_name};

type Wanted = Option<Vec<(String, Vec<i32>)>>;
/// A topic's partitions with their committed offsets (`None` = no commit), or the partition's
/// error code (UNSTABLE_OFFSET_COMMIT).
type TopicOffsets = (String, Vec<(i32, Result<Option<OffsetValue>, i16>)>);

/// One group's answer: partitions grouped by topic, in the order asked (or sorted for "all").
struct GroupOffsets {
    /// The group's error code (0 = none).
    error: i16,
    topics: Vec<TopicOffsets>,
    /// Topics asked for that the principal may not describe: answered after `topics`, every
    /// partition TOPIC_AUTHORIZATION_FAILED.
    denied: Vec<(String, Vec<i32>)>,
}

/// One answered partition: index, committed offset, leader epoch, metadata, error code.
type Row = (i32, i64, i32, StrBytes, i16);

impl GroupOffsets {
    /// A group-level `error`; v1 repeats it per asked partition, so those are kept.
    fn failed(error: i16, wanted: Wanted) -> Self {
        GroupOffsets {
            error,
            topics: wanted
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| (t, ps.into_iter().map(|p| (p, Ok(None))).collect()))
                .collect(),
            denied: Vec::new(),
        }
    }

    /// The answered topics; `partition_error` is the code of every partition not denied and
    /// without an error of its own.
    fn rows(self, partition_error: i16) -> Vec<(String, Vec<Row>)> {
        let denied_code = ResponseError::TopicAuthorizationFailed.code();
        let answered = self.topics.into_iter().map(|(topic, partitions)| {
            let rows = partitions
                .into_iter()
                .map(|(p, v)| match v {
                    Ok(v) => {
                        let (offset, epoch, metadata) = committed(&v);
                        (p, offset, epoch, metadata, partition_error)
                    }
                    Err(code) => (p, -1, -1, StrBytes::default(), code),
                })
                .collect();
            (topic, rows)
        });
        let denied = self.denied.into_iter().map(|(topic, partitions)| {
            let rows = partitions
                .into_iter()
                .map(|p| (p, -1, -1, StrBytes::default(), denied_code))
                .collect();
            (topic, rows)
        });
        answered.chain(denied).collect()
    }
}

/// Whether the principal may describe `topic`: one decision per distinct name, as Kafka's
/// `partitionSeqByAuthorized`.
fn may_describe(
    broker: &Broker,
    ctx: &RequestContext,
    decided: &mut HashMap<String, bool>,
    topic: &str,
) -> bool {
    if let Some(allowed) = decided.get(topic) {
        return *allowed;
    }
    let allowed =
        broker
            .authorization
            .allowed(ctx, Operation::Describe, ResourceType::Topic, topic);
    decided.insert(topic.to_owned(), allowed);
    allowed
}

async fn fetch_group(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    group_id: &str,
    wanted: Wanted,
    require_stable: bool,
    member: Option<(&str, i32)>,
) -> GroupOffsets {
    if !broker
        .authorization
        .allowed(ctx, Operation::Describe, ResourceType::Group, group_id)
    {
        return GroupOffsets::failed(ResponseError::GroupAuthorizationFailed.code(), wanted);
    }
    let mut decided = HashMap::new();
    let (wanted, denied) = match wanted {
        None => (None, Vec::new()),
        Some(topics) => {
            let (allowed, denied): (Vec<_>, Vec<_>) = topics
                .into_iter()
                .partition(|(t, _)| may_describe(broker, ctx, &mut decided, t));
            (Some(allowed), denied)
        }
    };
    let all_topics = wanted.is_none();
    let keys = wanted.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
            .collect::<Vec<_>>()
    });
    match broker
        .groups
        .coordinator
        .offset_fetch(group_id, keys, require_stable, member)
        .await
    {
        Err(error) => GroupOffsets::failed(error.code(), wanted),
        Ok(found) => {
            let mut topics: Vec<TopicOffsets> = Vec::new();
            for ((topic, partition), value) in found {
                let value = value.map_err(|e| e.code());
                match topics.last_mut() {
                    Some((t, ps)) if *t == topic => ps.push((partition, value)),
                    _ => topics.push((topic, vec![(partition, value)])),
                }
            }
            if all_topics {
                // Clients may not see offsets of topics they may not describe.
                topics.retain(|(t, _)| may_describe(broker, ctx, &mut decided, t));
            }
            GroupOffsets {
                error: 0,
                topics,
                denied,
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
                GroupOffsets::failed(GroupError::InvalidRequest.code(), None)
            } else {
                let wanted = group.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                // v9: a KIP-848 member names itself and its epoch (checked as Kafka does).
                let member_id = group.member_id.as_ref().map(|m| m.as_str());
                let member =
                    (version >= 9).then_some((member_id.unwrap_or(""), group.member_epoch));
                fetch_group(
                    broker,
                    ctx,
                    &group_id,
                    wanted,
                    request.require_stable,
                    member,
                )
                .await
            };
            let error = fetched.error;
            let topics = if error == 0 {
                fetched
                    .rows(0)
                    .into_iter()
                    .map(|(topic, rows)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(topic_name(&topic))
                            .with_partitions(
                                rows.into_iter()
                                    .map(|(p, offset, epoch, metadata, error)| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(Some(metadata))
                                            .with_error_code(error)
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
                    .with_error_code(error)
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
    // `require_stable` is v7+ (false before).
    let fetched = fetch_group(
        broker,
        ctx,
        request.group_id.0.as_str(),
        wanted,
        request.require_stable,
        None,
    )
    .await;
    let error = fetched.error;
    let per_partition_error = if version < 2 { error } else { 0 };
    if version >= 2 {
        response.error_code = error;
    }
    if error == 0 || version < 2 {
        response.topics = fetched
            .rows(per_partition_error)
            .into_iter()
            .map(|(topic, rows)| {
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic)))
                    .with_partitions(
                        rows.into_iter()
                            .map(|(p, offset, epoch, metadata, error)| {
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(if version >= 5 {
                                        epoch
                                    } else {
                                        -1
                                    })
                                    .with_metadata(Some(metadata))
                                    .with_error_code(error)
                            })
                            .collect(),
                    )
            })
            .collect();
    }
    Reply::Ready(ResponseKind::OffsetFetch(response))
}
