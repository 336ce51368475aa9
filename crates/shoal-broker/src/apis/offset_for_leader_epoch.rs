//! OffsetForLeaderEpoch (KIP-101, KIP-320): where a leader epoch ends in this leader's log.
//!
//! Consumers send it after a leader change with the epoch of the last record they consumed:
//! if that epoch ends on the new leader below their position, the log was truncated under them
//! (an unclean election, or records they read above a stale leader's HW) and they reset. The
//! answer is the largest epoch at or below the one asked and its end offset, or UNDEFINED
//! (-1, -1); `current_leader_epoch` is checked as for Fetch (FENCED_LEADER_EPOCH /
//! UNKNOWN_LEADER_EPOCH), and only the leader answers.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ResponseKind,
};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::error_codes::partition_error_code;

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> Reply {
    let image = broker.image();
    // A follower's request (replica id set, v3+) needs CLUSTER_ACTION; a consumer's, DESCRIBE
    // on each topic (Kafka's checks).
    let from_follower = ctx.api_version >= 3 && request.replica_id.0 >= 0;
    let cluster_denied = from_follower
        && !broker
            .authorization
            .allowed_on_cluster(ctx, Operation::ClusterAction);
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let topic_image = image.topic_by_name(topic.topic.0.as_str());
            let denied = if cluster_denied {
                Some(ResponseError::ClusterAuthorizationFailed.code())
            } else if !from_follower
                && !broker.authorization.allowed(
                    ctx,
                    Operation::Describe,
                    ResourceType::Topic,
                    topic.topic.0.as_str(),
                )
            {
                Some(ResponseError::TopicAuthorizationFailed.code())
            } else {
                None
            };
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let answer = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if let Some(code) = denied {
                        return answer.with_error_code(code);
                    }
                    let Some(t) = topic_image.filter(|t| t.partition(p.partition).is_some()) else {
                        return answer
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let Some(partition) = broker.replicas.partition(t.id, p.partition) else {
                        return answer.with_error_code(ResponseError::NotLeaderOrFollower.code());
                    };
                    match partition
                        .end_offset_for_leader_epoch(p.current_leader_epoch, p.leader_epoch)
                    {
                        Ok(end) => answer
                            .with_leader_epoch(end.epoch)
                            .with_end_offset(end.end_offset),
                        Err(error) => answer.with_error_code(partition_error_code(&error)),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    Reply::Ready(ResponseKind::OffsetForLeaderEpoch(
        OffsetForLeaderEpochResponse::default().with_topics(topics),
    ))
}
