//! OffsetCommit: store a group's consumed positions, answered once replicated.
//!
//! As in Kafka, a partition the metadata does not know gets UNKNOWN_TOPIC_OR_PARTITION here,
//! before the coordinator, and the request's other partitions are still committed. The
//! coordinator checks membership and generation (generation −1 with no member id is a
//! "simple" commit, accepted for a group nobody is a member of). v2-v4's `retention_time_ms`
//! is honoured as Kafka does: such an offset expires that long after its commit.
//!
//! Authorization (Kafka's `handleOffsetCommitRequest`), before anything else: READ on the group,
//! else every partition of the request answers GROUP_AUTHORIZATION_FAILED and nothing is
//! written; then READ on each topic, else that topic's partitions answer
//! TOPIC_AUTHORIZATION_FAILED (ahead of the existence check, so a denied client learns nothing
//! about which topics exist) while the authorized topics are committed.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, ResponseKind};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::commit_plan::{self, AskedPartition};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: OffsetCommitRequest,
) -> Reply {
    let version = ctx.api_version;
    if !broker.authorization.allowed(
        ctx,
        Operation::Read,
        ResourceType::Group,
        request.group_id.0.as_str(),
    ) {
        return Reply::Ready(ResponseKind::OffsetCommit(every_partition(
            request,
            ResponseError::GroupAuthorizationFailed.code(),
        )));
    }
    // v2-v4 may give a retention of their own; -1 (and later versions) leave it to the broker.
    let retention_ms = ((2..=4).contains(&version) && request.retention_time_ms != -1)
        .then_some(request.retention_time_ms);
    let names: Vec<_> = request.topics.iter().map(|t| t.name.clone()).collect();
    let asked = request.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|p| {
            let epoch = (version >= 6).then_some(p.committed_leader_epoch);
            let metadata = p.committed_metadata.as_ref().map(|m| m.as_str());
            AskedPartition::new(p.partition_index, p.committed_offset, epoch, metadata)
        });
        (topic.name.0.to_string(), partitions.collect())
    });
    let mut plan = commit_plan::plan(broker, ctx, asked, retention_ms);
    if !plan.offsets.is_empty() {
        let instance_id = if version >= 7 {
            request.group_instance_id.as_ref().map(|s| s.as_str())
        } else {
            None
        };
        let results = broker
            .groups
            .coordinator
            .commit(
                request.group_id.0.as_str(),
                request.generation_id_or_member_epoch,
                request.member_id.as_str(),
                instance_id,
                std::mem::take(&mut plan.offsets),
                version >= 9,
            )
            .await;
        plan.answered(results.into_iter().map(|e| e.code()));
    }
    let topics = plan.respond(
        names,
        |name, partitions| {
            OffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        },
        |index, code| {
            OffsetCommitResponsePartition::default()
                .with_partition_index(index)
                .with_error_code(code)
        },
    );
    Reply::Ready(ResponseKind::OffsetCommit(
        OffsetCommitResponse::default().with_topics(topics),
    ))
}

/// Kafka's `OffsetCommitRequest.getErrorResponse`: `error` for every partition asked about.
fn every_partition(request: OffsetCommitRequest, error: i16) -> OffsetCommitResponse {
    OffsetCommitResponse::default().with_topics(
        request
            .topics
            .into_iter()
            .map(|topic| failed_topic(topic, error))
            .collect(),
    )
}

/// `error` for each of `topic`'s partitions.
fn failed_topic(topic: OffsetCommitRequestTopic, error: i16) -> OffsetCommitResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            OffsetCommitResponsePartition::default()
                .with_partition_index(p.partition_index)
                .with_error_code(error)
        })
        .collect();
    OffsetCommitResponseTopic::default()
        .with_name(topic.name)
        .with_partitions(partitions)
}
