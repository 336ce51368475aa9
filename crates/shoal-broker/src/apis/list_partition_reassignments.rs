//! ListPartitionReassignments (KIP-455; `kafka-reassign-partitions --verify`,
//! `shoalctl partition reassignments`): the partitions being moved, with their replicas and
//! the replicas being added and removed.
//!
//! Answered from this broker's metadata image: a move is a committed fact of the metadata
//! log, so any broker can list it (one that applied the log a moment later lists it a moment
//! later). DESCRIBE on the cluster, as Kafka; topics and partitions that do not exist or are
//! not moving are left out of the answer, as Kafka does.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, ResponseKind,
    TopicName,
};
use shoal_acl::Operation;
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::controller::reassignment::reassignments_in_progress;

use crate::Broker;
use crate::apis::str_bytes;

fn broker_ids(ids: &[i32]) -> Vec<BrokerId> {
    ids.iter().copied().map(BrokerId).collect()
}

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ListPartitionReassignmentsRequest,
) -> Reply {
    if !broker
        .authorization
        .allowed_on_cluster(ctx, Operation::Describe)
    {
        return Reply::Ready(ResponseKind::ListPartitionReassignments(
            ListPartitionReassignmentsResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                .with_error_message(Some(str_bytes("Cluster authorization failed."))),
        ));
    }
    let named: Option<Vec<(String, i32)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.name.0.to_string();
                t.partition_indexes
                    .into_iter()
                    .map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let image = broker.image();
    let mut by_topic: BTreeMap<&str, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    for (topic, p) in reassignments_in_progress(&image, named.as_deref()) {
        by_topic.entry(topic).or_default().push(
            OngoingPartitionReassignment::default()
                .with_partition_index(p.partition)
                .with_replicas(broker_ids(&p.replicas))
                .with_adding_replicas(broker_ids(&p.adding_replicas))
                .with_removing_replicas(broker_ids(&p.removing_replicas)),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            OngoingTopicReassignment::default()
                .with_name(TopicName(str_bytes(name)))
                .with_partitions(partitions)
        })
        .collect();
    Reply::Ready(ResponseKind::ListPartitionReassignments(
        ListPartitionReassignmentsResponse::default().with_topics(topics),
    ))
}
