//! DeleteAcls: each filter removes the ACLs it matches (committed by the controller) and
//! reports them. Needs ALTER on the cluster; SECURITY_DISABLED without an authorizer.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse, ResponseKind};
use shoal_acl::{AclFilter, Operation};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::{ItemOutcome, cluster_change_allowed, forward_valid, str_bytes};
use crate::error_codes::controller_error_code;

fn failed(code: i16, message: &str) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult::default()
        .with_error_code(code)
        .with_error_message(Some(str_bytes(message)))
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DeleteAclsRequest,
) -> Reply {
    let count = request.filters.len();
    let refuse_all = |error: ResponseError, message: &str| {
        Reply::Ready(ResponseKind::DeleteAcls(
            DeleteAclsResponse::default()
                .with_filter_results(vec![failed(error.code(), message); count]),
        ))
    };
    if let Err((error, message)) =
        cluster_change_allowed(broker, ctx, Operation::Alter, count, true)
    {
        return refuse_all(error, &message);
    }
    let parsed: Vec<Result<AclFilter, String>> = request
        .filters
        .iter()
        .map(|f| {
            AclFilter::from_wire(
                f.resource_type_filter,
                f.resource_name_filter.as_ref().map(|s| s.as_str()),
                f.pattern_type_filter,
                f.principal_filter.as_ref().map(|s| s.as_str()),
                f.host_filter.as_ref().map(|s| s.as_str()),
                f.operation,
                f.permission_type,
            )
            .map_err(|e| format!("Invalid filter: {e}"))
        })
        .collect();
    let outcomes = forward_valid(broker, parsed, async |valid| {
        broker.controller.delete_acls(valid).await
    })
    .await;
    let results = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            ItemOutcome::Invalid(message) => failed(ResponseError::InvalidRequest.code(), &message),
            ItemOutcome::Done(_, deleted) => {
                let matching = deleted
                    .iter()
                    .map(|acl| {
                        tracing::info!(target: "shoal::audit", principal = %ctx.principal,
                            acl = ?acl, "ACL deleted");
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(acl.pattern.resource_type.code())
                            .with_resource_name(str_bytes(&acl.pattern.name))
                            .with_pattern_type(acl.pattern.pattern_type.code())
                            .with_principal(str_bytes(&acl.entry.principal.to_string()))
                            .with_host(str_bytes(&acl.entry.host))
                            .with_operation(acl.entry.operation.code())
                            .with_permission_type(acl.entry.permission.code())
                    })
                    .collect();
                DeleteAclsFilterResult::default().with_matching_acls(matching)
            }
            ItemOutcome::Refused(error) => {
                failed(controller_error_code(&error), &error.to_string())
            }
        })
        .collect();
    Reply::Ready(ResponseKind::DeleteAcls(
        DeleteAclsResponse::default().with_filter_results(results),
    ))
}
