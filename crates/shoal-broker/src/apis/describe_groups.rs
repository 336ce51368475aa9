//! DescribeGroups: a group's state, protocol and members (with their assignments), as
//! `kafka-consumer-groups --describe --members` shows them.
//!
//! A group nobody knows is "Dead" with no error up to v5; v6 (KIP-1043) says
//! GROUP_ID_NOT_FOUND.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use shoal_group::{GroupError, GroupState};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::{MAX_BATCH_ITEMS, str_bytes};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeGroupsRequest,
) -> Reply {
    let version = ctx.api_version;
    let mut groups = Vec::with_capacity(request.groups.len().min(MAX_BATCH_ITEMS));
    for (i, group_id) in request.groups.into_iter().enumerate() {
        let mut described = if i >= MAX_BATCH_ITEMS {
            shoal_group::coordinator::GroupDescription {
                error: GroupError::InvalidRequest,
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol_data: String::new(),
                members: Vec::new(),
            }
        } else {
            broker
                .groups
                .coordinator
                .describe(group_id.0.as_str())
                .await
        };
        let mut message = None;
        if version >= 6 && described.error.is_ok() && described.state == GroupState::Dead {
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
        groups.push(
            DescribedGroup::default()
                .with_error_code(described.error.code())
                .with_error_message(message)
                .with_group_id(group_id)
                .with_group_state(str_bytes(described.state.name()))
                .with_protocol_type(StrBytes::from_string(described.protocol_type))
                .with_protocol_data(StrBytes::from_string(described.protocol_data))
                .with_members(members),
        );
    }
    Reply::Ready(ResponseKind::DescribeGroups(
        DescribeGroupsResponse::default().with_groups(groups),
    ))
}
