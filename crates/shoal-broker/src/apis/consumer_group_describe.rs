//! ConsumerGroupDescribe (KIP-848): a consumer group's state, epochs and assignor, and each
//! member's subscription, epoch, current and target partitions — what
//! `kafka-consumer-groups --describe --members --verbose` and `shoalctl group describe` show.
//!
//! A group that is not a consumer group (unknown, or classic) answers GROUP_ID_NOT_FOUND.
//! Authorization: DESCRIBE on each group, else GROUP_AUTHORIZATION_FAILED for it; v0+ asked to
//! include authorized operations get Kafka's bit field of the group operations allowed.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ResponseKind,
};
use shoal_acl::{Operation, ResourceType};
use shoal_group::consumer::assignor;
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::MetadataImage;

use crate::Broker;
use crate::apis::describe_groups::GROUP_OPERATIONS;
use crate::apis::{MAX_BATCH_ITEMS, str_bytes, topic_name};

/// KIP-848's `MemberType`: the member speaks the consumer protocol.
const MEMBER_TYPE_CONSUMER: i8 = 1;
/// A member that joined with the classic protocol (a group being migrated).
const MEMBER_TYPE_CLASSIC: i8 = 0;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ConsumerGroupDescribeRequest,
) -> Reply {
    let image = broker.replicas.image();
    let mut groups = Vec::with_capacity(request.group_ids.len().min(MAX_BATCH_ITEMS));
    for (i, group_id) in request.group_ids.into_iter().enumerate() {
        let id = group_id.0.to_string();
        let failed = |error: ResponseError, message: &str| {
            DescribedGroup::default()
                .with_group_id(group_id.clone())
                .with_error_code(error.code())
                .with_error_message(Some(str_bytes(message)))
                .with_authorized_operations(i32::MIN)
        };
        if i >= MAX_BATCH_ITEMS {
            groups.push(failed(ResponseError::InvalidRequest, "Too many groups."));
            continue;
        }
        if !broker
            .authorization
            .allowed(ctx, Operation::Describe, ResourceType::Group, &id)
        {
            groups.push(failed(
                ResponseError::GroupAuthorizationFailed,
                "Group authorization failed.",
            ));
            continue;
        }
        let described = match broker.groups.coordinator.describe_consumer_group(&id).await {
            Ok(d) => d,
            Err(e) => {
                let message = if e == shoal_group::GroupError::GroupIdNotFound {
                    format!("Group {id} is not a consumer group.")
                } else {
                    format!("{e:?}")
                };
                groups.push(
                    DescribedGroup::default()
                        .with_group_id(group_id)
                        .with_error_code(e.code())
                        .with_error_message(Some(str_bytes(&message)))
                        .with_authorized_operations(i32::MIN),
                );
                continue;
            }
        };
        let members = described
            .members
            .into_iter()
            .map(|(m, target)| {
                let member_type = if m.metadata.classic.is_some() {
                    MEMBER_TYPE_CLASSIC
                } else {
                    MEMBER_TYPE_CONSUMER
                };
                Member::default()
                    .with_member_id(str_bytes(&m.member_id))
                    .with_instance_id(m.metadata.instance_id.as_deref().map(str_bytes))
                    .with_rack_id(m.metadata.rack_id.as_deref().map(str_bytes))
                    .with_member_epoch(m.member_epoch)
                    .with_client_id(str_bytes(&m.metadata.client_id))
                    .with_client_host(str_bytes(&m.metadata.client_host))
                    .with_subscribed_topic_names(
                        m.metadata
                            .subscribed_topic_names
                            .iter()
                            .map(|n| topic_name(n))
                            .collect(),
                    )
                    .with_subscribed_topic_regex(
                        m.metadata.subscribed_topic_regex.as_deref().map(str_bytes),
                    )
                    .with_assignment(assignment(&m.assigned, &image))
                    .with_target_assignment(assignment(&target, &image))
                    .with_member_type(member_type)
            })
            .collect();
        let authorized_operations = if request.include_authorized_operations {
            broker.authorization.authorized_operations(
                ctx,
                ResourceType::Group,
                &id,
                &GROUP_OPERATIONS,
            )
        } else {
            i32::MIN
        };
        groups.push(
            DescribedGroup::default()
                .with_group_id(group_id)
                .with_group_state(str_bytes(described.state))
                .with_group_epoch(described.group_epoch)
                .with_assignment_epoch(described.assignment_epoch)
                .with_assignor_name(str_bytes(&described.assignor))
                .with_members(members)
                .with_authorized_operations(authorized_operations),
        );
    }
    Reply::Ready(ResponseKind::ConsumerGroupDescribe(
        ConsumerGroupDescribeResponse::default().with_groups(groups),
    ))
}

/// Partitions by topic, named from the metadata (a deleted topic's are left out).
fn assignment(a: &assignor::Assignment, image: &MetadataImage) -> Assignment {
    Assignment::default().with_topic_partitions(
        a.iter()
            .filter_map(|(id, parts)| {
                let topic = image.topic(id)?;
                Some(
                    TopicPartitions::default()
                        .with_topic_id(*id)
                        .with_topic_name(topic_name(&topic.name))
                        .with_partitions(parts.iter().copied().collect()),
                )
            })
            .collect(),
    )
}
