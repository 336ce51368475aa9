//! AlterConfigs: the legacy, non-incremental way to change topic, dynamic broker and group
//! configs, which many tools still send (kafka-python's `alter_configs`, older admin clients
//! and UIs).
//!
//! As Kafka's controller (`ConfigurationControlManager.legacyAlterConfigs`): the configs named
//! *replace* the resource's dynamic configs, so one set before and not named now is removed
//! (back to its default). A null value is INVALID_REQUEST, as Kafka's brokers refuse it before
//! forwarding (`ConfigAdminManager.preprocess`). That is exactly a list of
//! IncrementalAlterConfigs operations, so the request is turned into one against the configs
//! the metadata holds now and goes the same way: the same authorization (ALTER_CONFIGS), the
//! same validation and errors, the same wait until the change is applied here. A resource
//! that names a config twice is INVALID_REQUEST; BROKER_LOGGER and other types are refused as
//! IncrementalAlterConfigs refuses them.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::MetadataImage;

use crate::Broker;
use crate::apis::describe_configs::{RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};
use crate::apis::{incremental_alter_configs, str_bytes};

/// IncrementalAlterConfigs' SET and DELETE operation codes.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterConfigsRequest,
) -> Reply {
    let image = broker.replicas.image();
    let mut answers: Vec<Option<AlterConfigsResourceResponse>> = Vec::new();
    let mut incremental = Vec::new();
    for resource in request.resources {
        let base = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let named: Vec<(String, Option<String>)> = resource
            .configs
            .iter()
            .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
            .collect();
        match legacy_ops(
            &image,
            resource.resource_type,
            resource.resource_name.as_str(),
            &named,
        ) {
            Err(message) => answers.push(Some(
                base.with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(&message))),
            )),
            Ok(ops) => {
                answers.push(None);
                incremental.push(
                    AlterConfigsResource::default()
                        .with_resource_type(resource.resource_type)
                        .with_resource_name(resource.resource_name)
                        .with_configs(ops),
                );
            }
        }
    }
    let mut results = Vec::new();
    if !incremental.is_empty() {
        let request = IncrementalAlterConfigsRequest::default()
            .with_resources(incremental)
            .with_validate_only(request.validate_only);
        match incremental_alter_configs::handle(broker, ctx, request).await {
            Reply::Ready(ResponseKind::IncrementalAlterConfigs(response)) => {
                results = response.responses;
            }
            _ => return Reply::NoResponse,
        }
    }
    // The incremental answers come in the order their resources were sent.
    let mut results = results.into_iter();
    let responses = answers
        .into_iter()
        .filter_map(|answer| match answer {
            Some(refused) => Some(refused),
            None => results.next().map(|r| {
                AlterConfigsResourceResponse::default()
                    .with_error_code(r.error_code)
                    .with_error_message(r.error_message)
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name)
            }),
        })
        .collect();
    Reply::Ready(ResponseKind::AlterConfigs(
        AlterConfigsResponse::default().with_responses(responses),
    ))
}

/// The incremental operations that make `named` the resource's whole set of dynamic configs:
/// SET for each value, DELETE for each config set now and not named. A name twice or a null
/// value is refused (Kafka's messages).
fn legacy_ops(
    image: &MetadataImage,
    resource_type: i8,
    resource_name: &str,
    named: &[(String, Option<String>)],
) -> Result<Vec<AlterableConfig>, String> {
    let mut seen = BTreeSet::new();
    for (name, _) in named {
        if !seen.insert(name.as_str()) {
            return Err(format!("Error due to duplicate config keys: {name}"));
        }
    }
    let nulls: Vec<&str> = named
        .iter()
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        ));
    }
    let current: Vec<String> = match resource_type {
        RESOURCE_TOPIC => image
            .topic_by_name(resource_name)
            .map(|t| t.configs.keys().cloned().collect())
            .unwrap_or_default(),
        RESOURCE_BROKER => {
            let scope = match resource_name {
                "" => None,
                id => id.parse::<i32>().ok(),
            };
            image
                .broker_configs
                .scope(scope)
                .map(|c| c.keys().cloned().collect())
                .unwrap_or_default()
        }
        RESOURCE_GROUP => image
            .group_configs
            .of(resource_name)
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default(),
        // Refused by the incremental path with its message.
        _ => Vec::new(),
    };
    let op = |name: &str, op: i8, value: Option<&str>| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(name.to_string()))
            .with_config_operation(op)
            .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
    };
    let mut ops: Vec<AlterableConfig> = named
        .iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| op(name, OP_SET, Some(v))))
        .collect();
    ops.extend(
        current
            .iter()
            .filter(|name| !seen.contains(name.as_str()))
            .map(|name| op(name, OP_DELETE, None)),
    );
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use shoal_meta::records::MetadataRecord;
    use uuid::Uuid;

    use super::*;

    fn ops(list: &[AlterableConfig]) -> Vec<(String, i8, Option<String>)> {
        list.iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.config_operation,
                    c.value.as_ref().map(|v| v.to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn the_configs_named_replace_the_ones_set() {
        let mut image = MetadataImage::empty("c");
        let topic_id = Uuid::from_u128(1);
        for record in [
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id,
            },
            MetadataRecord::TopicConfig {
                topic_id,
                name: "retention.ms".into(),
                value: Some("1000".into()),
            },
            MetadataRecord::TopicConfig {
                topic_id,
                name: "cleanup.policy".into(),
                value: Some("compact".into()),
            },
        ] {
            assert_eq!(
                image.apply(&record),
                shoal_meta::image::ApplyOutcome::Applied
            );
        }
        let named = vec![("retention.ms".to_string(), Some("2000".to_string()))];
        let got = legacy_ops(&image, RESOURCE_TOPIC, "t", &named).unwrap_or_default();
        assert_eq!(
            ops(&got),
            vec![
                ("retention.ms".into(), OP_SET, Some("2000".into())),
                ("cleanup.policy".into(), OP_DELETE, None),
            ]
        );
        // A null value: refused, as Kafka's brokers refuse it.
        let null = vec![
            ("retention.ms".to_string(), Some("2000".to_string())),
            ("segment.bytes".to_string(), None),
        ];
        assert_eq!(
            legacy_ops(&image, RESOURCE_TOPIC, "t", &null),
            Err("Null value not supported for : segment.bytes".to_string())
        );
        // Nothing named: every override goes.
        assert_eq!(
            ops(&legacy_ops(&image, RESOURCE_TOPIC, "t", &[]).unwrap_or_default()).len(),
            2
        );
        // A name twice: refused.
        let twice = vec![
            ("retention.ms".to_string(), Some("1".to_string())),
            ("retention.ms".to_string(), Some("2".to_string())),
        ];
        assert!(legacy_ops(&image, RESOURCE_TOPIC, "t", &twice).is_err());
        // A broker's own scope and the cluster default.
        let mut image = MetadataImage::empty("c");
        image
            .broker_configs
            .set(Some(2), "leader.replication.throttled.rate", Some("10"));
        image
            .broker_configs
            .set(None, "follower.replication.throttled.rate", Some("20"));
        assert_eq!(
            ops(&legacy_ops(&image, RESOURCE_BROKER, "2", &[]).unwrap_or_default()),
            vec![("leader.replication.throttled.rate".into(), OP_DELETE, None)]
        );
        assert_eq!(
            ops(&legacy_ops(&image, RESOURCE_BROKER, "", &[]).unwrap_or_default()),
            vec![(
                "follower.replication.throttled.rate".into(),
                OP_DELETE,
                None
            )]
        );
    }
}
