//! OffsetDelete: drop a group's committed offsets for some partitions (KIP-496), refused with
//! GROUP_SUBSCRIBED_TO_TOPIC for topics its live consumers subscribe to.
//!
//! Authorization (Kafka's `handleOffsetDeleteRequest`), before anything else: DELETE on the
//! group, else the top-level GROUP_AUTHORIZATION_FAILED and nothing is deleted; then READ on
//! each topic, else that topic's partitions answer TOPIC_AUTHORIZATION_FAILED (ahead of the
//! existence check) and keep their offsets.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, ResponseKind};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: OffsetDeleteRequest,
) -> Reply {
    if !broker.authorization.allowed(
        ctx,
        Operation::Delete,
        ResourceType::Group,
        request.group_id.0.as_str(),
    ) {
        return Reply::Ready(ResponseKind::OffsetDelete(
            OffsetDeleteResponse::default()
                .with_error_code(ResponseError::GroupAuthorizationFailed.code()),
        ));
    }
    let image = broker.image();
    let mut positions = Vec::new();
    let mut wanted = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    // One decision per distinct topic name, as Kafka's `filterByAuthorized`.
    let mut readable: HashMap<String, bool> = HashMap::new();
    for (t, topic) in request.topics.into_iter().enumerate() {
        let name = topic.name.0.as_str().to_string();
        let authorized = *readable.entry(name.clone()).or_insert_with(|| {
            broker
                .authorization
                .allowed(ctx, Operation::Read, ResourceType::Topic, &name)
        });
        let known = image.topic_by_name(&name);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for (p, partition) in topic.partitions.into_iter().enumerate() {
            let mut answer = OffsetDeleteResponsePartition::default()
                .with_partition_index(partition.partition_index);
            if !authorized {
                answer.error_code = ResponseError::TopicAuthorizationFailed.code();
            } else if known.is_some_and(|k| k.partition(partition.partition_index).is_some()) {
                positions.push((t, p));
                wanted.push((name.clone(), partition.partition_index));
            } else {
                answer.error_code = ResponseError::UnknownTopicOrPartition.code();
            }
            partitions.push(answer);
        }
        topics.push(
            OffsetDeleteResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    let (error, results) = broker
        .groups
        .coordinator
        .delete_offsets(request.group_id.0.as_str(), wanted)
        .await;
    let mut response = OffsetDeleteResponse::default().with_error_code(error.code());
    if error.is_ok() {
        for ((t, p), e) in positions.into_iter().zip(results) {
            if let Some(answer) = topics.get_mut(t).and_then(|t| t.partitions.get_mut(p)) {
                answer.error_code = e.code();
            }
        }
        response.topics = topics;
    }
    Reply::Ready(ResponseKind::OffsetDelete(response))
}
