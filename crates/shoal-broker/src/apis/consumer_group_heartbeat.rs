//! ConsumerGroupHeartbeat (KIP-848): a member of a consumer group joins, stays, learns its
//! partitions, and leaves — one API instead of JoinGroup/SyncGroup/Heartbeat/LeaveGroup.
//!
//! v0: the coordinator names a joining member; v1 (KIP-1082): the member names itself.
//! The request's shape is checked first (`validate_heartbeat`, Kafka's rules: INVALID_REQUEST
//! or UNSUPPORTED_ASSIGNOR with the reason); then the group decides.
//!
//! Authorization (Kafka's `handleConsumerGroupHeartbeatRequest`): READ on the group, else
//! GROUP_AUTHORIZATION_FAILED; a subscription naming topics the principal may not DESCRIBE,
//! TOPIC_AUTHORIZATION_FAILED (so a subscription cannot probe which topics exist).

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, ResponseKind,
};
use shoal_acl::{Operation, ResourceType};
use shoal_group::consumer::assignor::{self, AssignorName};
use shoal_group::consumer::group::HeartbeatRequest;
use shoal_group::coordinator::validate_heartbeat;
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::{client_host, str_bytes};

/// Most topics one subscription may name, and partitions one heartbeat may report owning.
const MAX_SUBSCRIBED_TOPICS: usize = 10_000;
const MAX_OWNED_PARTITIONS: usize = 100_000;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> Reply {
    let fail = |error: ResponseError, message: String| {
        Reply::Ready(ResponseKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatResponse::default()
                .with_error_code(error.code())
                .with_error_message(Some(str_bytes(&message)))
                .with_member_epoch(-1),
        ))
    };
    let group_id = request.group_id.0.to_string();
    if !broker
        .authorization
        .allowed(ctx, Operation::Read, ResourceType::Group, &group_id)
    {
        return fail(
            ResponseError::GroupAuthorizationFailed,
            "Group authorization failed.".into(),
        );
    }
    if let Some(names) = &request.subscribed_topic_names {
        let denied = names.iter().any(|n| {
            !broker.authorization.allowed_quietly(
                ctx,
                Operation::Describe,
                ResourceType::Topic,
                n.0.as_str(),
            )
        });
        if denied {
            return fail(
                ResponseError::TopicAuthorizationFailed,
                "Topic authorization failed.".into(),
            );
        }
    }
    let req = match to_request(ctx, request) {
        Ok(req) => req,
        Err(message) => return fail(ResponseError::InvalidRequest, message),
    };
    if let Err(refusal) = validate_heartbeat(&group_id, &req, ctx.api_version, |name| {
        AssignorName::parse(name).is_some_and(|a| {
            broker
                .groups
                .config
                .coordinator
                .consumer
                .assignors()
                .any(|b| b == a)
        })
    }) {
        return Reply::Ready(ResponseKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatResponse::default()
                .with_error_code(refusal.error.code())
                .with_error_message(Some(str_bytes(&refusal.message)))
                .with_member_epoch(-1),
        ));
    }
    let answer = broker
        .groups
        .coordinator
        .consumer_heartbeat(&group_id, req)
        .await;
    let assignment = answer.assignment.map(|a| {
        Assignment::default().with_topic_partitions(
            a.into_iter()
                .map(|(topic_id, partitions)| {
                    TopicPartitions::default()
                        .with_topic_id(topic_id)
                        .with_partitions(partitions.into_iter().collect())
                })
                .collect(),
        )
    });
    Reply::Ready(ResponseKind::ConsumerGroupHeartbeat(
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(answer.error.code())
            .with_error_message(answer.message.as_deref().map(str_bytes))
            .with_member_id(
                Some(answer.member_id)
                    .filter(|m| !m.is_empty())
                    .map(|m| str_bytes(&m)),
            )
            .with_member_epoch(answer.member_epoch)
            .with_heartbeat_interval_ms(answer.heartbeat_interval_ms)
            .with_assignment(assignment),
    ))
}

/// The request as the coordinator takes it; an over-long list is refused by its bound.
fn to_request(
    ctx: &RequestContext,
    r: ConsumerGroupHeartbeatRequest,
) -> Result<HeartbeatRequest, String> {
    if r.subscribed_topic_names
        .as_ref()
        .is_some_and(|n| n.len() > MAX_SUBSCRIBED_TOPICS)
    {
        return Err(format!(
            "SubscribedTopicNames names more than {MAX_SUBSCRIBED_TOPICS} topics."
        ));
    }
    let owned = match r.topic_partitions {
        None => None,
        Some(topics) => {
            let count: usize = topics.iter().map(|t| t.partitions.len()).sum();
            if count > MAX_OWNED_PARTITIONS {
                return Err(format!(
                    "TopicPartitions lists more than {MAX_OWNED_PARTITIONS} partitions."
                ));
            }
            let mut owned = assignor::Assignment::new();
            for t in topics {
                let parts: BTreeSet<i32> = t.partitions.into_iter().collect();
                if !parts.is_empty() {
                    owned.entry(t.topic_id).or_default().extend(parts);
                }
            }
            Some(owned)
        }
    };
    Ok(HeartbeatRequest {
        member_id: r.member_id.to_string(),
        member_epoch: r.member_epoch,
        instance_id: r.instance_id.map(|s| s.to_string()),
        rack_id: r.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: r.rebalance_timeout_ms,
        subscribed_topic_names: r
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|n| n.0.to_string()).collect()),
        subscribed_topic_regex: r.subscribed_topic_regex.map(|s| s.to_string()),
        server_assignor: r.server_assignor.map(|s| s.to_string()),
        owned,
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: client_host(ctx),
    })
}
