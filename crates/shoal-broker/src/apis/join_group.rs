//! JoinGroup: a member joins (or rejoins) its group and waits for the rebalance to complete.
//!
//! The request parks in the coordinator until every member has rejoined or the rebalance
//! timeout passes (the connection waits, as Kafka's does: one request at a time). v0 has no
//! rebalance timeout (the session timeout serves); v4+ hand an unknown member an id first
//! (MEMBER_ID_REQUIRED); v5+ carry static membership.
//!
//! Authorization (Kafka's `handleJoinGroupRequest`): READ on the group, checked before the
//! request reaches the coordinator, else GROUP_AUTHORIZATION_FAILED with no member id.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use shoal_acl::{Operation, ResourceType};
use shoal_group::JoinRequest;
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::{MAX_GROUP_PROTOCOLS, client_host, str_bytes};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: JoinGroupRequest,
) -> Reply {
    let version = ctx.api_version;
    let group_id = request.group_id.0.to_string();
    if !broker
        .authorization
        .allowed(ctx, Operation::Read, ResourceType::Group, &group_id)
    {
        // Kafka's JoinGroupRequest.getErrorResponse: no generation, member or protocol.
        return Reply::Ready(ResponseKind::JoinGroup(
            JoinGroupResponse::default()
                .with_error_code(ResponseError::GroupAuthorizationFailed.code())
                .with_generation_id(-1)
                .with_protocol_name((version < 7).then(StrBytes::default)),
        ));
    }
    if request.protocols.len() > MAX_GROUP_PROTOCOLS {
        tracing::warn!(
            group = group_id,
            protocols = request.protocols.len(),
            "JoinGroup with too many protocols"
        );
        return Reply::Ready(ResponseKind::JoinGroup(
            JoinGroupResponse::default()
                .with_error_code(shoal_group::GroupError::InconsistentGroupProtocol.code())
                .with_generation_id(-1)
                .with_member_id(request.member_id),
        ));
    }
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        group_instance_id: if version >= 5 {
            request.group_instance_id.map(|s| s.to_string())
        } else {
            None
        },
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: client_host(ctx),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let joined = broker.groups.coordinator.join(&group_id, join).await;
    let members = joined
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(m.member_id))
                .with_group_instance_id(if version >= 5 {
                    m.group_instance_id.as_deref().map(str_bytes)
                } else {
                    None
                })
                .with_metadata(m.metadata)
        })
        .collect();
    // v7+ send "no protocol" as null, older versions as "".
    let protocol_name = match (joined.protocol_name, version >= 7) {
        (Some(name), _) if !name.is_empty() => Some(StrBytes::from_string(name)),
        (_, true) => None,
        (_, false) => Some(StrBytes::default()),
    };
    let response = JoinGroupResponse::default()
        .with_error_code(joined.error.code())
        .with_generation_id(joined.generation_id)
        .with_protocol_type(if version >= 7 {
            joined.protocol_type.as_deref().map(str_bytes)
        } else {
            None
        })
        .with_protocol_name(protocol_name)
        .with_leader(StrBytes::from_string(joined.leader))
        .with_member_id(StrBytes::from_string(joined.member_id))
        .with_skip_assignment(version >= 9 && joined.skip_assignment)
        .with_members(members);
    Reply::Ready(ResponseKind::JoinGroup(response))
}
