//! DescribeTopicPartitions (KIP-966): topics with their partitions, paginated by a cursor, what
//! Kafka's admin client `describeTopics` and `kafka-topics --describe` use from Kafka 3.8 on.
//!
//! As Kafka (`DescribeTopicPartitionsRequestHandler`, `KRaftMetadataCache`): the topics asked
//! for (all the principal may DESCRIBE when none), by name; an unknown one
//! UNKNOWN_TOPIC_OR_PARTITION and one it may not describe TOPIC_AUTHORIZATION_FAILED, each
//! without partitions; a cursor naming a topic that is not among those asked for
//! INVALID_REQUEST. At most `min(response_partition_limit, max.request.partition.size.limit)`
//! partitions are answered, from the cursor's topic and partition on; `next_cursor` says where
//! the next page starts, null on the last. Each topic carries the principal's authorized
//! operations. Eligible leader replicas (the rest of KIP-966) are not kept: null.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, ResponseKind,
    TopicName,
};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::{MetadataImage, TopicImage};

use crate::Broker;
use crate::apis::metadata::{PartitionView, partition_view};
use crate::apis::str_bytes;
use crate::authorization::TOPIC_OPERATIONS;
use crate::replica_manager::ReplicaManager;

/// Kafka's default of `max.request.partition.size.limit`.
const DEFAULT_PARTITION_LIMIT: usize = 2000;

/// One topic of a page: the partitions `from..to` of the topic at `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slice {
    pub index: usize,
    pub from: i32,
    pub to: i32,
}

/// The page of `topics` (name, partition count; in order) that starts at `cursor` and holds
/// at most `limit` partitions, and where the next page starts.
pub(crate) fn page(
    topics: &[(&str, i32)],
    cursor: Option<(&str, i32)>,
    limit: usize,
) -> (Vec<Slice>, Option<(String, i32)>) {
    let mut left = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
    let mut slices = Vec::new();
    let start = cursor.map_or(0, |(name, _)| {
        topics
            .iter()
            .position(|(t, _)| *t >= name)
            .unwrap_or(topics.len())
    });
    for (index, (name, count)) in topics.iter().enumerate().skip(start) {
        let from = match cursor {
            Some((cursor_name, partition)) if cursor_name == *name => partition.max(0),
            _ => 0,
        };
        let from = from.min(*count);
        if left == 0 {
            return (slices, Some((name.to_string(), from)));
        }
        let available = i64::from(*count - from);
        let taken = available.min(left);
        let to = from + i32::try_from(taken).unwrap_or(i32::MAX);
        // A cursor past a topic's last partition takes nothing of it.
        if taken > 0 || from == 0 {
            slices.push(Slice { index, from, to });
        }
        left -= taken;
        if to < *count {
            return (slices, Some((name.to_string(), to)));
        }
    }
    (slices, None)
}

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeTopicPartitionsRequest,
) -> Reply {
    let image = broker.image();
    let authz = &broker.authorization;
    let limit =
        shoal_config::effective(&broker.config.settings, "max.request.partition.size.limit")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(DEFAULT_PARTITION_LIMIT)
            .min(usize::try_from(request.response_partition_limit.max(1)).unwrap_or(1));
    let mut response = DescribeTopicPartitionsResponse::default();
    let cursor = request
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.0.to_string(), c.partition_index));
    // (name, known topic), in name order; errors for those that cannot be described.
    let mut described: Vec<&TopicImage> = Vec::new();
    let mut refused: Vec<DescribeTopicPartitionsResponseTopic> = Vec::new();
    if request.topics.is_empty() {
        let mut all: Vec<&TopicImage> = image
            .topics
            .values()
            .filter(|t| {
                authz.allowed_quietly(ctx, Operation::Describe, ResourceType::Topic, &t.name)
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        described = all;
    } else {
        let mut names: Vec<String> = request
            .topics
            .iter()
            .map(|t| t.name.0.to_string())
            .collect();
        names.sort();
        names.dedup();
        if let Some((cursor_topic, _)) = &cursor
            && !names.contains(cursor_topic)
        {
            response.topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_name(Some(TopicName(str_bytes(cursor_topic)))),
            );
            return Reply::Ready(ResponseKind::DescribeTopicPartitions(response));
        }
        for name in names {
            if cursor.as_ref().is_some_and(|(c, _)| name < *c) {
                continue;
            }
            let error = if !authz.allowed(ctx, Operation::Describe, ResourceType::Topic, &name) {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if image.topic_by_name(&name).is_none() {
                Some(ResponseError::UnknownTopicOrPartition)
            } else {
                None
            };
            match (error, image.topic_by_name(&name)) {
                (None, Some(topic)) => described.push(topic),
                (error, _) => refused.push(
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_error_code(
                            error
                                .unwrap_or(ResponseError::UnknownTopicOrPartition)
                                .code(),
                        )
                        .with_name(Some(TopicName(str_bytes(&name))))
                        .with_is_internal(shoal_meta::topic_name::is_internal(&name)),
                ),
            }
        }
    }
    let counts: Vec<(&str, i32)> = described
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
            )
        })
        .collect();
    let (slices, next) = page(
        &counts,
        cursor.as_ref().map(|(t, p)| (t.as_str(), *p)),
        limit,
    );
    let mut topics: Vec<DescribeTopicPartitionsResponseTopic> = slices
        .iter()
        .filter_map(|slice| {
            let topic = described.get(slice.index)?;
            Some(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(TopicName(str_bytes(&topic.name))))
                    .with_topic_id(topic.id)
                    .with_is_internal(shoal_meta::topic_name::is_internal(&topic.name))
                    .with_partitions(partitions(&image, topic, slice, &broker.replicas))
                    .with_topic_authorized_operations(authz.authorized_operations(
                        ctx,
                        ResourceType::Topic,
                        &topic.name,
                        &TOPIC_OPERATIONS,
                    )),
            )
        })
        .collect();
    topics.extend(refused);
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    response.topics = topics;
    response.next_cursor = next.map(|(topic, partition)| {
        Cursor::default()
            .with_topic_name(TopicName(str_bytes(&topic)))
            .with_partition_index(partition)
    });
    Reply::Ready(ResponseKind::DescribeTopicPartitions(response))
}

fn partitions(
    image: &MetadataImage,
    topic: &TopicImage,
    slice: &Slice,
    local: &ReplicaManager,
) -> Vec<DescribeTopicPartitionsResponsePartition> {
    topic
        .partitions
        .iter()
        .filter(|p| (slice.from..slice.to).contains(&p.partition))
        .map(|p| {
            let PartitionView {
                offline,
                leader_alive,
                ..
            } = partition_view(image, topic, p, local);
            DescribeTopicPartitionsResponsePartition::default()
                .with_error_code(if leader_alive {
                    0
                } else {
                    ResponseError::LeaderNotAvailable.code()
                })
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(if leader_alive { p.leader } else { -1 }))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().map(|id| BrokerId(*id)).collect())
                .with_isr_nodes(p.isr.iter().map(|id| BrokerId(*id)).collect())
                .with_eligible_leader_replicas(None)
                .with_last_known_elr(None)
                .with_offline_replicas(offline)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(index: usize, from: i32, to: i32) -> Slice {
        Slice { index, from, to }
    }

    #[test]
    fn pages_hold_at_most_the_limit_and_say_where_the_next_starts() {
        let topics = [("a", 3), ("b", 2), ("c", 4)];
        let next = |t: &str, p: i32| Some((t.to_string(), p));
        // (cursor, limit, slices, next cursor)
        type Case<'a> = (
            Option<(&'a str, i32)>,
            usize,
            Vec<Slice>,
            Option<(String, i32)>,
        );
        let cases: Vec<Case> = vec![
            (None, 100, vec![s(0, 0, 3), s(1, 0, 2), s(2, 0, 4)], None),
            (None, 4, vec![s(0, 0, 3), s(1, 0, 1)], next("b", 1)),
            // Exactly at a topic's end: the next page starts at the next topic.
            (None, 3, vec![s(0, 0, 3)], next("b", 0)),
            (
                Some(("b", 1)),
                4,
                vec![s(1, 1, 2), s(2, 0, 3)],
                next("c", 3),
            ),
            (Some(("c", 3)), 4, vec![s(2, 3, 4)], None),
            // A cursor past a topic's last partition: nothing of it.
            (Some(("a", 9)), 2, vec![s(1, 0, 2)], next("c", 0)),
            // A cursor topic between known names starts at the next one.
            (Some(("bb", 0)), 10, vec![s(2, 0, 4)], None),
            // A limit of 0 is taken as 1.
            (None, 0, vec![s(0, 0, 1)], next("a", 1)),
        ];
        for (cursor, limit, slices, next_cursor) in cases {
            assert_eq!(
                page(&topics, cursor, limit),
                (slices, next_cursor),
                "{cursor:?} {limit}"
            );
        }
        assert_eq!(page(&[], None, 5), (vec![], None));
    }
}
