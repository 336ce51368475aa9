//! CreateAcls: new ACLs, committed by the controller as metadata records (Kafka's KRaft
//! `AclControlManager`). Needs ALTER on the cluster; without an authorizer configured, Kafka
//! answers SECURITY_DISABLED, and so does Shoal.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse, ResponseKind};
use shoal_acl::{AclBinding, Operation};
use shoal_kafka::{Reply, RequestContext};

use crate::Broker;
use crate::apis::{ItemOutcome, cluster_change_allowed, forward_valid, str_bytes};
use crate::error_codes::controller_error_code;

fn failed(error: ResponseError, message: &str) -> AclCreationResult {
    AclCreationResult::default()
        .with_error_code(error.code())
        .with_error_message(Some(str_bytes(message)))
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: CreateAclsRequest,
) -> Reply {
    let count = request.creations.len();
    let refuse_all = |error: ResponseError, message: &str| {
        Reply::Ready(ResponseKind::CreateAcls(
            CreateAclsResponse::default().with_results(vec![failed(error, message); count]),
        ))
    };
    if let Err((error, message)) =
        cluster_change_allowed(broker, ctx, Operation::Alter, count, true)
    {
        return refuse_all(error, &message);
    }
    // Parse every creation; the valid ones go to the controller in one call.
    let parsed: Vec<Result<AclBinding, String>> = request
        .creations
        .iter()
        .map(|c| {
            AclBinding::from_wire(
                c.resource_type,
                c.resource_name.as_str(),
                c.resource_pattern_type,
                c.principal.as_str(),
                c.host.as_str(),
                c.operation,
                c.permission_type,
            )
            .map_err(|e| format!("Invalid ACL creation: {e}"))
        })
        .collect();
    let outcomes = forward_valid(broker, parsed, async |valid| {
        broker.controller.create_acls(valid).await
    })
    .await;
    let results = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            ItemOutcome::Invalid(message) => failed(ResponseError::InvalidRequest, &message),
            ItemOutcome::Done(acl, ()) => {
                tracing::info!(target: "shoal::audit", principal = %ctx.principal,
                    acl = ?acl, "ACL created");
                AclCreationResult::default()
            }
            ItemOutcome::Refused(error) => AclCreationResult::default()
                .with_error_code(controller_error_code(&error))
                .with_error_message(Some(str_bytes(&error.to_string()))),
        })
        .collect::<Vec<_>>();
    Reply::Ready(ResponseKind::CreateAcls(
        CreateAclsResponse::default().with_results(results),
    ))
}
