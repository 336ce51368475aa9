//! DeleteGroups: an Empty group and its committed offsets go (tombstones in
//! `__consumer_offsets`); a group with members answers NON_EMPTY_GROUP.
//!
//! Authorization (Kafka's `handleDeleteGroupsRequest`): DELETE on each group, else that group
//! answers GROUP_AUTHORIZATION_FAILED and the coordinator is not asked about it.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, ResponseKind};
use shoal_acl::{Operation, ResourceType};
use shoal_group::GroupError;
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::MAX_BATCH_ITEMS;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DeleteGroupsRequest,
) -> Reply {
    let mut seen = HashSet::new();
    let mut results = Vec::new();
    for group_id in request.groups_names {
        if !seen.insert(group_id.clone()) {
            continue;
        }
        let error = if results.len() >= MAX_BATCH_ITEMS {
            GroupError::InvalidRequest.code()
        } else if !broker.authorization.allowed(
            ctx,
            Operation::Delete,
            ResourceType::Group,
            group_id.0.as_str(),
        ) {
            ResponseError::GroupAuthorizationFailed.code()
        } else {
            broker
                .groups
                .coordinator
                .delete_group(group_id.0.as_str())
                .await
                .code()
        };
        if error == 0 {
            tracing::info!(group = group_id.0.as_str(), "deleted consumer group");
        }
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(error),
        );
    }
    Reply::Ready(ResponseKind::DeleteGroups(
        DeleteGroupsResponse::default().with_results(results),
    ))
}
