//! Heartbeat: a member says it is alive, and learns whether a rebalance has begun
//! (REBALANCE_IN_PROGRESS tells it to rejoin).
//!
//! Authorization (Kafka's `handleHeartbeatRequest`): READ on the group, else
//! GROUP_AUTHORIZATION_FAILED before the coordinator sees the request.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse, ResponseKind};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: HeartbeatRequest,
) -> Reply {
    if !broker.authorization.allowed(
        ctx,
        Operation::Read,
        ResourceType::Group,
        request.group_id.0.as_str(),
    ) {
        return Reply::Ready(ResponseKind::Heartbeat(
            HeartbeatResponse::default()
                .with_error_code(ResponseError::GroupAuthorizationFailed.code()),
        ));
    }
    let instance_id = if ctx.api_version >= 3 {
        request.group_instance_id.as_ref().map(|s| s.as_str())
    } else {
        None
    };
    let error = broker
        .groups
        .coordinator
        .heartbeat(
            request.group_id.0.as_str(),
            request.generation_id,
            request.member_id.as_str(),
            instance_id,
        )
        .await;
    Reply::Ready(ResponseKind::Heartbeat(
        HeartbeatResponse::default().with_error_code(error.code()),
    ))
}
