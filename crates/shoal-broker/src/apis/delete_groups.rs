//! DeleteGroups: an Empty group and its committed offsets go (tombstones in
//! `__consumer_offsets`); a group with members answers NON_EMPTY_GROUP.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, ResponseKind};
use shoal_group::GroupError;
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::MAX_BATCH_ITEMS;

pub async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    request: DeleteGroupsRequest,
) -> Reply {
    let mut seen = HashSet::new();
    let mut results = Vec::new();
    for group_id in request.groups_names {
        if !seen.insert(group_id.clone()) {
            continue;
        }
        let error = if results.len() >= MAX_BATCH_ITEMS {
            GroupError::InvalidRequest
        } else {
            broker
                .groups
                .coordinator
                .delete_group(group_id.0.as_str())
                .await
        };
        if error.is_ok() {
            tracing::info!(group = group_id.0.as_str(), "deleted consumer group");
        }
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(error.code()),
        );
    }
    Reply::Ready(ResponseKind::DeleteGroups(
        DeleteGroupsResponse::default().with_results(results),
    ))
}
