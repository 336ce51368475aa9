//! DescribeGroups: a group's state, protocol and members (with their assignments), as
//! `kafka-consumer-groups --describe --members` shows them.
//!
//! A group nobody knows is "Dead" with no error up to v5; v6 (KIP-1043) says
//! GROUP_ID_NOT_FOUND.
//!
//! Authorization (Kafka's `handleDescribeGroupsRequest`): DESCRIBE on each group, else that
//! group answers GROUP_AUTHORIZATION_FAILED with no state, protocol or members — whether or not
//! it exists, and without the coordinator being asked. v3+ asked to include authorized
//! operations get Kafka's bit field of the group operations the principal may do (all of them
//! with no authorizer, as Kafka).

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use shoal_acl::{Operation, ResourceType};
use shoal_group::{GroupError, GroupState};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::{MAX_BATCH_ITEMS, str_bytes};

/// The operations Kafka reports for a group (`AclEntry.supportedOperations(GROUP)`).
pub(crate) const GROUP_OPERATIONS: [Operation; 5] = [
    Operation::Read,
    Operation::Describe,
    Operation::Delete,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
];

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeGroupsRequest,
) -> Reply {
    let version = ctx.api_version;
    let include_operations = version >= 3 && request.include_authorized_operations;
    let mut groups = Vec::with_capacity(request.groups.len().min(MAX_BATCH_ITEMS));
    for (i, group_id) in request.groups.into_iter().enumerate() {
        let mut described = if i >= MAX_BATCH_ITEMS {
            shoal_group::coordinator::GroupDescription {
                error: GroupError::InvalidRequest,
                state: GroupState::Dead.name(),
                protocol_type: String::new(),
                protocol_data: String::new(),
                members: Vec::new(),
            }
        } else if !broker.authorization.allowed(
            ctx,
            Operation::Describe,
            ResourceType::Group,
            group_id.0.as_str(),
        ) {
            // Kafka's DescribeGroupsResponse.groupError: unknown state and protocol.
            groups.push(
                DescribedGroup::default()
                    .with_error_code(ResponseError::GroupAuthorizationFailed.code())
                    .with_error_message(
                        (version >= 6).then(|| str_bytes("Group authorization failed.")),
                    )
                    .with_group_id(group_id),
            );
            continue;
        } else {
            broker
                .groups
                .coordinator
                .describe(group_id.0.as_str())
                .await
        };
        let mut message = None;
        if version >= 6 && described.error.is_ok() && described.state == GroupState::Dead.name() {
            described.error = GroupError::GroupIdNotFound;
            message = Some(str_bytes(&format!(
                "group {} not found",
                group_id.0.as_str()
            )));
        }
        let members = described
            .members
            .into_iter()
            .map(|m| {
                DescribedGroupMember::default()
                    .with_member_id(StrBytes::from_string(m.member_id))
                    .with_group_instance_id(if version >= 4 {
                        m.group_instance_id.as_deref().map(str_bytes)
                    } else {
                        None
                    })
                    .with_client_id(StrBytes::from_string(m.client_id))
                    .with_client_host(StrBytes::from_string(m.client_host))
                    .with_member_metadata(m.metadata)
                    .with_member_assignment(m.assignment)
            })
            .collect();
        let authorized_operations = if include_operations && described.error.is_ok() {
            broker.authorization.authorized_operations(
                ctx,
                ResourceType::Group,
                group_id.0.as_str(),
                &GROUP_OPERATIONS,
            )
        } else {
            i32::MIN
        };
        groups.push(
            DescribedGroup::default()
                .with_authorized_operations(authorized_operations)
                .with_error_code(described.error.code())
                .with_error_message(message)
                .with_group_id(group_id)
                .with_group_state(str_bytes(described.state))
                .with_protocol_type(StrBytes::from_string(described.protocol_type))
                .with_protocol_data(StrBytes::from_string(described.protocol_data))
                .with_members(members),
        );
    }
    Reply::Ready(ResponseKind::DescribeGroups(
        DescribeGroupsResponse::default().with_groups(groups),
    ))
}
