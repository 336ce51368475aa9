//! ElectLeaders: preferred or unclean leader elections an operator asks for
//! (`kafka-leader-election.sh`, `shoalctl partition elect-leaders`); the controller plans them.
//!
//! No partition list means every partition that needs one: for a preferred election those not
//! led by their preferred replica, for an unclean one those with no leader, as Kafka does; the
//! answer then names only those.
//!
//! Needs ALTER on the cluster (Kafka's `ControllerApis.handleElectLeaders`), checked first:
//! without it nothing is elected and the answer is CLUSTER_AUTHORIZATION_FAILED, at the top
//! level (v1+) and for every partition the request named (Kafka's `getErrorResponse`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    ElectLeadersRequest, ElectLeadersResponse, ResponseKind, TopicName,
};
use shoal_acl::Operation;
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::{ElectionType, MetadataImage};

use crate::Broker;
use crate::apis::{bounded_timeout_ms, str_bytes};
use crate::error_codes::controller_error_code;

const MAX_ADMIN_TIMEOUT_MS: u64 = 120_000;
const NO_LEADER: i32 = -1;

/// Every partition the election would change, when the request names none.
fn candidates(image: &MetadataImage, election: ElectionType) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    for topic in image.topics.values() {
        for p in &topic.partitions {
            let needed = match election {
                ElectionType::Preferred => p.replicas.first().is_some_and(|r| *r != p.leader),
                ElectionType::Unclean => p.leader == NO_LEADER,
            };
            if needed {
                out.push((topic.name.clone(), p.partition));
            }
        }
    }
    out
}

/// Kafka's answer to an unauthorized ElectLeaders: the error on every partition named.
fn unauthorized(ctx: &RequestContext, request: ElectLeadersRequest) -> ElectLeadersResponse {
    let error = ResponseError::ClusterAuthorizationFailed.code();
    let results = request
        .topic_partitions
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            ReplicaElectionResult::default()
                .with_topic(t.topic)
                .with_partition_result(
                    t.partitions
                        .into_iter()
                        .map(|p| {
                            PartitionResult::default()
                                .with_partition_id(p)
                                .with_error_code(error)
                                .with_error_message(Some(str_bytes(
                                    "Cluster authorization failed.",
                                )))
                        })
                        .collect(),
                )
        })
        .collect();
    let response = ElectLeadersResponse::default().with_replica_election_results(results);
    // v0 has no top-level error code.
    if ctx.api_version >= 1 {
        response.with_error_code(error)
    } else {
        response
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ElectLeadersRequest,
) -> Reply {
    if !broker
        .authorization
        .allowed_on_cluster(ctx, Operation::Alter)
    {
        return Reply::Ready(ResponseKind::ElectLeaders(unauthorized(ctx, request)));
    }
    // v0 has no election type: it is always a preferred election.
    let election = match (ctx.api_version, request.election_type) {
        (0, _) | (_, 0) => ElectionType::Preferred,
        (_, 1) => ElectionType::Unclean,
        (_, other) => {
            tracing::warn!(election_type = other, client = ?ctx.client_id, "ElectLeaders with an unknown election type");
            return Reply::Ready(ResponseKind::ElectLeaders(
                ElectLeadersResponse::default()
                    .with_error_code(ResponseError::InvalidRequest.code()),
            ));
        }
    };
    let partitions: Vec<(String, i32)> = match request.topic_partitions {
        Some(topics) => topics
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect(),
        None => candidates(&broker.image(), election),
    };
    let outcome = if partitions.is_empty() {
        shoal_meta::ControllerResults {
            results: Vec::new(),
            log_index: None,
        }
    } else {
        broker
            .controller
            .elect_leaders(election, partitions.clone())
            .await
    };
    if let Some(index) = outcome.log_index {
        let timeout =
            Duration::from_millis(bounded_timeout_ms(request.timeout_ms, MAX_ADMIN_TIMEOUT_MS));
        broker.wait_for_metadata(index, timeout).await;
    }
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for ((topic, partition), result) in partitions.into_iter().zip(outcome.results) {
        let r = PartitionResult::default().with_partition_id(partition);
        let r = match result {
            Ok(_) => r,
            Err(error) => r
                .with_error_code(controller_error_code(&error))
                .with_error_message(Some(str_bytes(&error.to_string()))),
        };
        by_topic.entry(topic).or_default().push(r);
    }
    let results = by_topic
        .into_iter()
        .map(|(topic, partition_result)| {
            ReplicaElectionResult::default()
                .with_topic(TopicName(str_bytes(&topic)))
                .with_partition_result(partition_result)
        })
        .collect();
    Reply::Ready(ResponseKind::ElectLeaders(
        ElectLeadersResponse::default().with_replica_election_results(results),
    ))
}
