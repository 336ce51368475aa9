//! LeaveGroup: members leave at once instead of waiting out their session (a clean consumer
//! close), which starts the rebalance that hands their partitions to the others.
//!
//! v0–2 name one member; v3+ (KIP-345) a batch, each by member id and/or static instance id.
//!
//! Authorization (Kafka's `handleLeaveGroupRequest`): READ on the group, else the top-level
//! GROUP_AUTHORIZATION_FAILED with no member results, before the coordinator sees the request.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::{MAX_BATCH_ITEMS, str_bytes};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: LeaveGroupRequest,
) -> Reply {
    let version = ctx.api_version;
    if !broker.authorization.allowed(
        ctx,
        Operation::Read,
        ResourceType::Group,
        request.group_id.0.as_str(),
    ) {
        return Reply::Ready(ResponseKind::LeaveGroup(
            LeaveGroupResponse::default()
                .with_error_code(ResponseError::GroupAuthorizationFailed.code()),
        ));
    }
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    if members.len() > MAX_BATCH_ITEMS {
        tracing::warn!(
            members = members.len(),
            "LeaveGroup with too many members refused"
        );
        return Reply::Ready(ResponseKind::LeaveGroup(
            LeaveGroupResponse::default().with_error_code(ResponseError::InvalidRequest.code()),
        ));
    }
    let (error, results) = broker
        .groups
        .coordinator
        .leave(request.group_id.0.as_str(), &members)
        .await;
    let mut response = LeaveGroupResponse::default();
    if version >= 3 {
        response.error_code = error.code();
        response.members = members
            .iter()
            .zip(&results)
            .map(|((member_id, instance_id), e)| {
                MemberResponse::default()
                    .with_member_id(StrBytes::from_string(member_id.clone()))
                    .with_group_instance_id(instance_id.as_deref().map(str_bytes))
                    .with_error_code(e.code())
            })
            .collect();
    } else {
        response.error_code = if error.is_ok() {
            results.first().map_or(0, |e| e.code())
        } else {
            error.code()
        };
    }
    Reply::Ready(ResponseKind::LeaveGroup(response))
}
