//! DescribeProducers (KIP-664): the active producers of partitions this broker leads, with
//! each one's open transaction, as `kafka-transactions.sh describe-producers` and
//! `find-hanging` read them.
//!
//! Per partition, as Kafka answers: TOPIC_AUTHORIZATION_FAILED without READ on the topic;
//! UNKNOWN_TOPIC_OR_PARTITION for one that does not exist; NOT_LEADER_OR_FOLLOWER unless this
//! broker leads it.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, ProducerId, ResponseKind,
};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::MAX_BATCH_ITEMS;
use crate::blocking::run_blocking;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeProducersRequest,
) -> Reply {
    let broker = Arc::clone(broker);
    let ctx = ctx.clone();
    // Reading a partition's producers takes its state lock, which an append holds across its
    // write: off the async threads.
    run_blocking(move || describe(&broker, &ctx, request))
        .await
        .map_or(Reply::NoResponse, |r| {
            Reply::Ready(ResponseKind::DescribeProducers(r))
        })
}

fn describe(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let image = broker.image();
    let mut budget = MAX_BATCH_ITEMS;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.as_str();
            let authorized =
                broker
                    .authorization
                    .allowed(ctx, Operation::Read, ResourceType::Topic, name);
            let topic_image = image.topic_by_name(name);
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|index| {
                    let response = PartitionResponse::default().with_partition_index(*index);
                    if budget == 0 {
                        return response.with_error_code(ResponseError::InvalidRequest.code());
                    }
                    budget -= 1;
                    if !authorized {
                        return response
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let Some(t) = topic_image.filter(|t| t.partition(*index).is_some()) else {
                        return response
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let Some(partition) = broker
                        .replicas
                        .partition(t.id, *index)
                        .filter(|p| p.is_leader())
                    else {
                        return response.with_error_code(ResponseError::NotLeaderOrFollower.code());
                    };
                    response.with_active_producers(
                        partition
                            .producer_entries()
                            .into_iter()
                            .map(|p| {
                                ProducerState::default()
                                    .with_producer_id(ProducerId(p.producer_id))
                                    .with_producer_epoch(i32::from(p.producer_epoch))
                                    .with_last_sequence(p.last_sequence)
                                    .with_last_timestamp(p.last_timestamp_ms)
                                    .with_coordinator_epoch(p.coordinator_epoch)
                                    .with_current_txn_start_offset(p.current_txn_start_offset)
                            })
                            .collect(),
                    )
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
