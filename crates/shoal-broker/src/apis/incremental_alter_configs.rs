//! IncrementalAlterConfigs: set, delete, append to or subtract from topic configs; set or
//! delete dynamic broker configs for one broker (resource name: its id) or as the cluster
//! default (empty name), as Kafka's `kafka-configs --entity-type brokers` does; and set or
//! delete a group's configs (KIP-848, Kafka 4.0's GROUP resources, metadata.version 9).
//!
//! BROKER_LOGGER resources change this process's log levels (`broker_loggers`), here and not
//! in the metadata, as Kafka's.
//!
//! Only the broker settings Shoal applies while running may change (the replication throttle
//! rates); the controller refuses the others with INVALID_CONFIG and says which are dynamic.
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
use shoal_meta::features::GROUP_CONFIGS_METADATA_VERSION;
use shoal_meta::{
    AlterBrokerConfigs, AlterConfigOp, AlterConfigOpType, AlterGroupConfigs, AlterTopicConfigs,
};

use crate::Broker;
use crate::apis::describe_configs::{
    RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_GROUP, RESOURCE_TOPIC,
    config_authorization_error,
};
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
    let mut broker_requests = Vec::new();
    let mut group_requests = Vec::new();
    let metadata_version = broker.image().metadata_version();
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
        let refuse = |base: AlterConfigsResourceResponse, message: String| {
            Some(
                base.with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(&message))),
            )
        };
        if let Some(message) = preprocess_refusal(&resource.configs) {
            responses.push(refuse(base, message));
            continue;
        }
        if resource.resource_type == RESOURCE_BROKER_LOGGER {
            // This process's log levels: changed here, never in the metadata (as Kafka).
            let (code, message) = alter_loggers(
                broker.config.node_id,
                resource.resource_name.as_str(),
                &resource.configs,
                request.validate_only,
            );
            responses.push(Some(
                base.with_error_code(code)
                    .with_error_message(message.map(|m| str_bytes(&m))),
            ));
            continue;
        }
        if !matches!(
            resource.resource_type,
            RESOURCE_TOPIC | RESOURCE_BROKER | RESOURCE_GROUP
        ) {
            let other = resource.resource_type;
            responses.push(refuse(
                base,
                format!("Resource type {other} is not supported."),
            ));
            continue;
        }
        let ops = match ops_of(resource.configs) {
            Ok(ops) => ops,
            Err(op) => {
                responses.push(refuse(base, format!("Unknown config operation {op}.")));
                continue;
            }
        };
        let name = resource.resource_name.as_str();
        if resource.resource_type == RESOURCE_GROUP {
            // Checked here too: a controller of an older release would not see the groups.
            if metadata_version < GROUP_CONFIGS_METADATA_VERSION {
                responses.push(refuse(
                    base,
                    format!(
                        "Group configs need metadata.version {GROUP_CONFIGS_METADATA_VERSION}; \
                         this cluster is at {metadata_version} (shoalctl cluster features upgrade)"
                    ),
                ));
                continue;
            }
            group_requests.push((
                responses.len(),
                base,
                AlterGroupConfigs {
                    group: name.to_string(),
                    ops,
                },
            ));
            responses.push(None);
            continue;
        }
        if resource.resource_type == RESOURCE_TOPIC {
            topic_requests.push((
                responses.len(),
                base,
                AlterTopicConfigs {
                    topic: name.to_string(),
                    ops,
                },
            ));
            responses.push(None);
            continue;
        }
        // A broker resource is a broker id, or empty for the cluster default (Kafka's rule).
        let broker_id = match name {
            "" => None,
            id => match id.parse::<i32>() {
                Ok(id) if id >= 0 => Some(id),
                _ => {
                    responses.push(refuse(base, format!("Invalid broker id {name:?}: expected a broker id or an empty name (the cluster default).")));
                    continue;
                }
            },
        };
        broker_requests.push((responses.len(), base, AlterBrokerConfigs { broker_id, ops }));
        responses.push(None);
    }
    let (mut slots, mut bases) = (Vec::new(), Vec::new());
    let mut topics = Vec::with_capacity(topic_requests.len());
    for (slot, base, alter) in topic_requests {
        slots.push(slot);
        bases.push(base);
        topics.push(alter);
    }
    let mut brokers = Vec::with_capacity(broker_requests.len());
    for (slot, base, alter) in broker_requests {
        slots.push(slot);
        bases.push(base);
        brokers.push(alter);
    }
    let mut groups = Vec::with_capacity(group_requests.len());
    for (slot, base, alter) in group_requests {
        slots.push(slot);
        bases.push(base);
        groups.push(alter);
    }
    // Nothing to alter (every resource refused): the controller is not asked.
    let outcome = if topics.is_empty() && brokers.is_empty() && groups.is_empty() {
        shoal_meta::ControllerResults {
            results: Vec::new(),
            log_index: None,
        }
    } else {
        broker
            .controller
            .alter_config_resources(topics, brokers, groups, request.validate_only)
            .await
    };
    if let Some(index) = outcome.log_index {
        broker.wait_for_metadata(index, APPLY_WAIT).await;
    }
    // The controller answers topics, then brokers, then groups: the order `slots` was built in.
    // A resource it gave no answer for (a controller of an older release that did not read
    // it) is answered with an error, never left out.
    let mut results = outcome.results.into_iter();
    for (slot, base) in slots.into_iter().zip(bases) {
        let response = match results.next() {
            // Kafka answers a null message on success.
            Some(Ok(())) => base.with_error_message(None),
            Some(Err(error)) => base
                .with_error_code(controller_error_code(&error))
                .with_error_message(Some(str_bytes(&error.to_string()))),
            None => base
                .with_error_code(ResponseError::UnknownServerError.code())
                .with_error_message(Some(str_bytes(
                    "the active controller gave no answer for this resource",
                ))),
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

/// A BROKER_LOGGER resource's changes (Kafka's `ConfigAdminManager` checks): the error code
/// and message.
fn alter_loggers(
    node_id: i32,
    name: &str,
    configs: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
    validate_only: bool,
) -> (i16, Option<String>) {
    use crate::broker_loggers::{LoggerChange, LoggerRefusal, installed};
    if name != node_id.to_string() {
        return (
            ResponseError::InvalidRequest.code(),
            Some(format!(
                "Unexpected broker id, expected {node_id} but received {name}"
            )),
        );
    }
    let Some(loggers) = installed() else {
        return (
            ResponseError::InvalidRequest.code(),
            Some("this process does not manage its log levels".into()),
        );
    };
    let mut changes = Vec::with_capacity(configs.len());
    for c in configs {
        let logger = c.name.to_string();
        match c.config_operation {
            0 => changes.push(LoggerChange::Set {
                logger,
                level: c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
            }),
            1 => changes.push(LoggerChange::Delete { logger }),
            op => {
                return (
                    ResponseError::InvalidRequest.code(),
                    Some(format!(
                        "{} operations are not supported for BROKER_LOGGER",
                        if op == 2 { "APPEND" } else { "SUBTRACT" }
                    )),
                );
            }
        }
    }
    match loggers.apply(&changes, validate_only) {
        Ok(()) => (0, None),
        Err(LoggerRefusal::InvalidConfig(m)) => (ResponseError::InvalidConfig.code(), Some(m)),
        Err(LoggerRefusal::InvalidRequest(m)) => (ResponseError::InvalidRequest.code(), Some(m)),
    }
}

/// Kafka's checks of every resource before anything else (`ConfigAdminManager.preprocess`):
/// a config named twice, or a null value in anything but a DELETE, is INVALID_REQUEST.
fn preprocess_refusal(
    configs: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
) -> Option<String> {
    let mut seen = std::collections::BTreeSet::new();
    if configs.iter().any(|c| !seen.insert(c.name.as_str())) {
        return Some("Error due to duplicate config keys".to_string());
    }
    let nulls: Vec<&str> = configs
        .iter()
        .filter(|c| c.config_operation != 1 && c.value.is_none())
        .map(|c| c.name.as_str())
        .collect();
    (!nulls.is_empty()).then(|| format!("Null value not supported for : {}", nulls.join(", ")))
}

/// The request's operations, or the first unknown operation code.
fn ops_of(
    configs: Vec<kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig>,
) -> Result<Vec<AlterConfigOp>, i8> {
    configs
        .into_iter()
        .map(|c| {
            let op = match c.config_operation {
                0 => AlterConfigOpType::Set,
                1 => AlterConfigOpType::Delete,
                2 => AlterConfigOpType::Append,
                3 => AlterConfigOpType::Subtract,
                other => return Err(other),
            };
            Ok(AlterConfigOp {
                name: c.name.as_str().to_string(),
                op,
                value: c.value.map(|v| v.as_str().to_string()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;

    use super::*;

    fn config(name: &str, op: i8, value: Option<&str>) -> AlterableConfig {
        AlterableConfig::default()
            .with_name(str_bytes(name))
            .with_config_operation(op)
            .with_value(value.map(str_bytes))
    }

    #[test]
    fn duplicates_and_null_values_are_refused_before_anything_else() {
        let cases: Vec<(Vec<AlterableConfig>, Option<&str>)> = vec![
            (vec![config("a", 0, Some("1")), config("b", 1, None)], None),
            (
                vec![config("a", 0, Some("1")), config("a", 1, None)],
                Some("Error due to duplicate config keys"),
            ),
            (
                vec![
                    config("a", 0, None),
                    config("b", 2, None),
                    config("c", 1, None),
                ],
                Some("Null value not supported for : a, b"),
            ),
        ];
        for (configs, expected) in cases {
            assert_eq!(preprocess_refusal(&configs).as_deref(), expected);
        }
    }
}
