//! SyncGroup: the leader hands in the assignment; every member gets its part.
//!
//! A follower's request waits until the leader's assignment is stored in
//! `__consumer_offsets` (replicated), so no member starts consuming on an assignment a
//! coordinator failover could forget.
//!
//! Authorization (Kafka's `handleSyncGroupRequest`): after the v5+ mandatory-field check, READ on
//! the group, else GROUP_AUTHORIZATION_FAILED before the coordinator sees the request.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ResponseKind, SyncGroupRequest, SyncGroupResponse};
use shoal_acl::{Operation, ResourceType};
use shoal_group::{GroupError, SyncRequest};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::str_bytes;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: SyncGroupRequest,
) -> Reply {
    let version = ctx.api_version;
    let respond = |error: GroupError, response: SyncGroupResponse| {
        Reply::Ready(ResponseKind::SyncGroup(
            response.with_error_code(error.code()),
        ))
    };
    if version >= 5 && (request.protocol_type.is_none() || request.protocol_name.is_none()) {
        return respond(
            GroupError::InconsistentGroupProtocol,
            SyncGroupResponse::default(),
        );
    }
    let group_id = request.group_id.0.to_string();
    if !broker
        .authorization
        .allowed(ctx, Operation::Read, ResourceType::Group, &group_id)
    {
        return Reply::Ready(ResponseKind::SyncGroup(
            SyncGroupResponse::default()
                .with_error_code(ResponseError::GroupAuthorizationFailed.code()),
        ));
    }
    let sync = SyncRequest {
        generation_id: request.generation_id,
        member_id: request.member_id.to_string(),
        group_instance_id: if version >= 3 {
            request.group_instance_id.map(|s| s.to_string())
        } else {
            None
        },
        protocol_type: request.protocol_type.map(|s| s.to_string()),
        protocol_name: request.protocol_name.map(|s| s.to_string()),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let synced = broker.groups.coordinator.sync(&group_id, sync).await;
    let mut response = SyncGroupResponse::default().with_assignment(synced.assignment);
    if version >= 5 {
        response.protocol_type = synced.protocol_type.as_deref().map(str_bytes);
        response.protocol_name = synced.protocol_name.as_deref().map(str_bytes);
    }
    respond(synced.error, response)
}
