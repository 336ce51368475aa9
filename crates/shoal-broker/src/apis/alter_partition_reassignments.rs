//! AlterPartitionReassignments (KIP-455; `kafka-reassign-partitions --execute / --cancel`,
//! `shoalctl partition reassign`): start, replace or cancel partition moves. The controller
//! plans them (`shoal_meta::controller::reassignment`); the move itself runs through ordinary
//! replication and completes when the new replicas are in sync.
//!
//! As Kafka's `ControllerApis.handleAlterPartitionReassignments`: ALTER on the cluster, else
//! CLUSTER_AUTHORIZATION_FAILED at the top level; otherwise one result per partition named.
//! `allow_replication_factor_change` (v1, KIP-860) defaults to true, as in v0. The answer comes
//! once this broker has applied the change, so a ListPartitionReassignments sent here next
//! already sees the move.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ResponseKind,
};
use shoal_acl::Operation;
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::PartitionReassignment;

use crate::Broker;
use crate::apis::{bounded_timeout_ms, str_bytes};
use crate::error_codes::controller_error_code;

const MAX_ADMIN_TIMEOUT_MS: u64 = 120_000;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterPartitionReassignmentsRequest,
) -> Reply {
    let allow_replication_factor_change =
        ctx.api_version == 0 || request.allow_replication_factor_change;
    let response = AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(allow_replication_factor_change);
    if !broker
        .authorization
        .allowed_on_cluster(ctx, Operation::Alter)
    {
        return Reply::Ready(ResponseKind::AlterPartitionReassignments(
            response
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                .with_error_message(Some(str_bytes("Cluster authorization failed."))),
        ));
    }
    let items: Vec<PartitionReassignment> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| PartitionReassignment {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                replicas: p
                    .replicas
                    .as_ref()
                    .map(|r| r.iter().map(|id| id.0).collect()),
            })
        })
        .collect();
    let outcome = if items.is_empty() {
        shoal_meta::ControllerResults {
            results: Vec::new(),
            log_index: None,
        }
    } else {
        broker
            .controller
            .alter_partition_reassignments(items, allow_replication_factor_change)
            .await
    };
    if let Some(index) = outcome.log_index {
        let timeout =
            Duration::from_millis(bounded_timeout_ms(request.timeout_ms, MAX_ADMIN_TIMEOUT_MS));
        broker.wait_for_metadata(index, timeout).await;
    }
    let mut results = outcome.results.into_iter();
    let responses = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    match results.next() {
                        Some(Ok(())) => r,
                        Some(Err(error)) => r
                            .with_error_code(controller_error_code(&error))
                            .with_error_message(Some(str_bytes(&error.to_string()))),
                        None => r
                            .with_error_code(ResponseError::UnknownServerError.code())
                            .with_error_message(Some(str_bytes("The controller gave no result."))),
                    }
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    Reply::Ready(ResponseKind::AlterPartitionReassignments(
        response.with_responses(responses),
    ))
}
