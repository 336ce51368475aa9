//! ListGroups: the groups this broker coordinates (clients ask every broker and merge).
//!
//! v4+ filter by state (case-insensitive, Kafka's names); v5+ by type: "classic" or
//! "consumer" (KIP-848).
//!
//! Authorization (Kafka's `handleListGroupsRequest`): DESCRIBE on the cluster lists every group;
//! otherwise only the groups the principal may DESCRIBE are listed (the others are left out,
//! with no error). Neither check writes an audit line (Kafka's `logIfDenied = false`).

use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::str_bytes;
use crate::authorization::CLUSTER_NAME;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ListGroupsRequest,
) -> Reply {
    let version = ctx.api_version;
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.as_str().to_ascii_lowercase())
        .collect();
    let types: Vec<String> = request
        .types_filter
        .iter()
        .map(|s| s.as_str().to_ascii_lowercase())
        .collect();
    // As Kafka, neither check logs a denial: a listing that leaves groups out is no refusal.
    let every_group = broker.authorization.allowed_quietly(
        ctx,
        Operation::Describe,
        ResourceType::Cluster,
        CLUSTER_NAME,
    );
    let mut response = ListGroupsResponse::default();
    match broker.groups.coordinator.list().await {
        Err(error) => response.error_code = error.code(),
        Ok(listed) => {
            response.groups = listed
                .into_iter()
                .filter(|g| states.is_empty() || states.contains(&g.state.to_ascii_lowercase()))
                .filter(|g| types.is_empty() || types.iter().any(|t| t == g.group_type))
                .filter(|g| {
                    every_group
                        || broker.authorization.allowed_quietly(
                            ctx,
                            Operation::Describe,
                            ResourceType::Group,
                            &g.group_id,
                        )
                })
                .map(|g| {
                    let mut entry = ListedGroup::default()
                        .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                        .with_protocol_type(StrBytes::from_string(g.protocol_type));
                    if version >= 4 {
                        entry.group_state = str_bytes(g.state);
                    }
                    if version >= 5 {
                        entry.group_type = str_bytes(g.group_type);
                    }
                    entry
                })
                .collect();
        }
    }
    Reply::Ready(ResponseKind::ListGroups(response))
}
