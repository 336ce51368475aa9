//! DescribeAcls: the ACLs in force that a filter matches, from this broker's image, grouped
//! by resource pattern as Kafka answers. Needs DESCRIBE on the cluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse, ResponseKind};
use shoal_acl::{AclFilter, Operation, PatternType, ResourceType};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::str_bytes;

fn refused(error: ResponseError, message: String) -> Reply {
    Reply::Ready(ResponseKind::DescribeAcls(
        DescribeAclsResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(&message))),
    ))
}

pub fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: DescribeAclsRequest) -> Reply {
    if !broker.authorization.is_enabled() {
        return refused(
            ResponseError::SecurityDisabled,
            "No Authorizer is configured.".to_owned(),
        );
    }
    if !broker
        .authorization
        .allowed_on_cluster(ctx, Operation::Describe)
    {
        return refused(ResponseError::ClusterAuthorizationFailed, String::new());
    }
    let filter = match AclFilter::from_wire(
        request.resource_type_filter,
        request.resource_name_filter.as_ref().map(|s| s.as_str()),
        request.pattern_type_filter,
        request.principal_filter.as_ref().map(|s| s.as_str()),
        request.host_filter.as_ref().map(|s| s.as_str()),
        request.operation,
        request.permission_type,
    ) {
        Ok(filter) => filter,
        Err(e) => {
            return refused(
                ResponseError::InvalidRequest,
                format!("Invalid filter: {e}"),
            );
        }
    };
    let image = broker.image();
    let mut by_pattern: BTreeMap<(ResourceType, &str, PatternType), Vec<AclDescription>> =
        BTreeMap::new();
    for acl in image.acls.values().filter(|acl| filter.matches(acl)) {
        let p = &acl.pattern;
        by_pattern
            .entry((p.resource_type, p.name.as_str(), p.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(str_bytes(&acl.entry.principal.to_string()))
                    .with_host(str_bytes(&acl.entry.host))
                    .with_operation(acl.entry.operation.code())
                    .with_permission_type(acl.entry.permission.code()),
            );
    }
    let resources = by_pattern
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type.code())
                .with_resource_name(str_bytes(name))
                .with_pattern_type(pattern_type.code())
                .with_acls(acls)
        })
        .collect();
    Reply::Ready(ResponseKind::DescribeAcls(
        DescribeAclsResponse::default().with_resources(resources),
    ))
}
