//! IncrementalAlterConfigs: set, delete, append to or subtract from topic configs.
//!
//! Broker configs are static in this version (set at start-up), so altering them is refused
//! with INVALID_REQUEST and a message saying so, rather than silently ignored.
//!
//! Authorization is Kafka's (`ControllerApis.authorizeAlterResource`), per resource and before
//! anything is validated or sent to the controller: a topic needs ALTER_CONFIGS on the topic
//! (else TOPIC_AUTHORIZATION_FAILED); the broker, its loggers and client metrics need
//! ALTER_CONFIGS on the cluster (else CLUSTER_AUTHORIZATION_FAILED); a group needs it on the
//! group. An unauthorized resource is left unchanged; the others proceed.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ResponseKind,
};
use shoal_acl::Operation;
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::{AlterConfigOp, AlterConfigOpType, AlterTopicConfigs};

use crate::Broker;
use crate::apis::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC, config_authorization_error};
use crate::apis::str_bytes;
use crate::error_codes::controller_error_code;

const APPLY_WAIT: Duration = Duration::from_secs(30);

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> Reply {
    let mut responses: Vec<Option<AlterConfigsResourceResponse>> =
        Vec::with_capacity(request.resources.len());
    let mut topic_requests = Vec::new();
    let mut topic_slots = Vec::new();
    for resource in request.resources {
        let base = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        if let Some(error) = config_authorization_error(
            broker,
            ctx,
            Operation::AlterConfigs,
            resource.resource_type,
            resource.resource_name.as_str(),
        ) {
            // Kafka's ApiError without a message.
            responses.push(Some(
                base.with_error_code(error.code()).with_error_message(None),
            ));
            continue;
        }
        match resource.resource_type {
            RESOURCE_TOPIC => {
                let mut ops = Vec::with_capacity(resource.configs.len());
                let mut bad_op = None;
                for c in resource.configs {
                    let op = match c.config_operation {
                        0 => AlterConfigOpType::Set,
                        1 => AlterConfigOpType::Delete,
                        2 => AlterConfigOpType::Append,
                        3 => AlterConfigOpType::Subtract,
                        other => {
                            bad_op = Some(other);
                            break;
                        }
                    };
                    ops.push(AlterConfigOp {
                        name: c.name.as_str().to_string(),
                        op,
                        value: c.value.map(|v| v.as_str().to_string()),
                    });
                }
                if let Some(op) = bad_op {
                    responses.push(Some(
                        base.with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str_bytes(&format!("Unknown config operation {op}.")))),
                    ));
                    continue;
                }
                topic_slots.push(responses.len());
                responses.push(None);
                topic_requests.push((base, AlterTopicConfigs { topic: resource.resource_name.as_str().to_string(), ops }));
            }
            RESOURCE_BROKER => responses.push(Some(
                base.with_error_code(ResponseError::InvalidRequest.code()).with_error_message(Some(str_bytes(
                    "Broker configs are static in this version; set them in the config file or with --override.",
                ))),
            )),
            other => responses.push(Some(
                base.with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(&format!("Resource type {other} is not supported.")))),
            )),
        }
    }
    let (bases, alters): (Vec<_>, Vec<_>) = topic_requests.into_iter().unzip();
    // Nothing to alter (every resource refused or not a topic): the controller is not asked.
    let outcome = if alters.is_empty() {
        shoal_meta::ControllerResults {
            results: Vec::new(),
            log_index: None,
        }
    } else {
        broker
            .controller
            .incremental_alter_configs(alters, request.validate_only)
            .await
    };
    if let Some(index) = outcome.log_index {
        broker.wait_for_metadata(index, APPLY_WAIT).await;
    }
    for ((slot, base), result) in topic_slots.into_iter().zip(bases).zip(outcome.results) {
        let response = match result {
            Ok(()) => base,
            Err(error) => base
                .with_error_code(controller_error_code(&error))
                .with_error_message(Some(str_bytes(&error.to_string()))),
        };
        if let Some(entry) = responses.get_mut(slot) {
            *entry = Some(response);
        }
    }
    let responses = responses.into_iter().flatten().collect();
    Reply::Ready(ResponseKind::IncrementalAlterConfigs(
        IncrementalAlterConfigsResponse::default().with_responses(responses),
    ))
}
