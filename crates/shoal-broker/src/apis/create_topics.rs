//! CreateTopics: validated and committed by the controller, answered once in effect here.
//!
//! The response waits until this broker has applied the new topics, so a client that produces
//! right after CreateTopics returns finds its partitions open (Kafka clients otherwise retry
//! through UNKNOWN_TOPIC_OR_PARTITION for a while).
//!
//! Authorization is Kafka's (`ControllerApis.createTopics`): CREATE on the cluster, or else
//! CREATE on the topic, checked before anything is sent to the controller, so a topic the
//! principal may not create is answered TOPIC_AUTHORIZATION_FAILED and never created. From v5
//! the answer carries the new topic's configs, partition count and replication factor only if
//! the principal may DESCRIBE_CONFIGS the topic; otherwise `topic_config_error_code` is
//! TOPIC_AUTHORIZATION_FAILED, as in Kafka.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, ResponseKind};
use shoal_acl::{Operation, ResourceType};
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::topic_config::{ConfigSource, resolve_all_topic_configs};
use shoal_meta::{ControllerError, CreateTopic};

use crate::Broker;
use crate::apis::internal_topics::{self, AdminAction};
use crate::apis::{bounded_timeout_ms, str_bytes};
use crate::authorization::CLUSTER_NAME;
use crate::error_codes::controller_error_code;

const MAX_ADMIN_TIMEOUT_MS: u64 = 120_000;

// CreateTopics response ConfigSource values (same numbering as DescribeConfigs).
const SOURCE_DYNAMIC_TOPIC_CONFIG: i8 = 1;
const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
const SOURCE_DEFAULT_CONFIG: i8 = 5;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: CreateTopicsRequest,
) -> Reply {
    let names: Vec<_> = request.topics.iter().map(|t| t.name.clone()).collect();
    let authorization = &broker.authorization;
    // Kafka asks about the cluster without logging a denial (most creators hold topic ACLs).
    let cluster_create =
        authorization.allowed_quietly(ctx, Operation::Create, ResourceType::Cluster, CLUSTER_NAME);
    let authorized: Vec<bool> = names
        .iter()
        .map(|name| {
            cluster_create
                || authorization.allowed(
                    ctx,
                    Operation::Create,
                    ResourceType::Topic,
                    name.0.as_str(),
                )
        })
        .collect();
    let requests: Vec<CreateTopic> = request
        .topics
        .into_iter()
        .zip(&authorized)
        .filter_map(|(t, allowed)| allowed.then_some(t))
        .map(|t| CreateTopic {
            name: t.name.0.as_str().to_string(),
            num_partitions: (t.num_partitions != -1).then_some(t.num_partitions),
            replication_factor: (t.replication_factor != -1).then_some(t.replication_factor),
            assignments: (!t.assignments.is_empty()).then(|| {
                t.assignments
                    .into_iter()
                    .map(|a| {
                        (
                            a.partition_index,
                            a.broker_ids.into_iter().map(|b| b.0).collect(),
                        )
                    })
                    .collect::<BTreeMap<i32, Vec<i32>>>()
            }),
            configs: t
                .configs
                .into_iter()
                .filter_map(|c| {
                    c.value
                        .map(|v| (c.name.as_str().to_string(), v.as_str().to_string()))
                })
                .collect(),
        })
        .collect();
    let outcome = internal_topics::forward_allowed(
        requests,
        |t| internal_topics::refusal(AdminAction::Create, &t.name),
        |allowed| {
            broker
                .controller
                .create_topics(allowed, request.validate_only)
        },
    )
    .await;
    if let Some(index) = outcome.log_index {
        let timeout =
            Duration::from_millis(bounded_timeout_ms(request.timeout_ms, MAX_ADMIN_TIMEOUT_MS));
        broker.wait_for_metadata(index, timeout).await;
    }
    let image = broker.image();
    let mut forwarded = outcome.results.into_iter();
    let topics = names
        .into_iter()
        .zip(authorized)
        .map(|(name, allowed)| {
            let response = CreatableTopicResult::default().with_name(name.clone());
            if !allowed {
                return response
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(Some(str_bytes("Authorization failed.")));
            }
            let result = forwarded.next().unwrap_or_else(|| {
                Err(ControllerError::Internal(
                    "the controller answered fewer topics than it was sent".to_string(),
                ))
            });
            match result {
                Ok(created) => {
                    let mut response = response;
                    if ctx.api_version >= 7 {
                        response.topic_id = created.topic_id;
                    }
                    let describable = ctx.api_version >= 5
                        && authorization.allowed_quietly(
                            ctx,
                            Operation::DescribeConfigs,
                            ResourceType::Topic,
                            name.0.as_str(),
                        );
                    if ctx.api_version >= 5 && !describable {
                        // Kafka's ReplicationControlManager: no configs, partition count or
                        // replication factor for a principal that may not describe them.
                        response.topic_config_error_code =
                            ResponseError::TopicAuthorizationFailed.code();
                    }
                    if describable {
                        response.num_partitions = created.num_partitions;
                        response.replication_factor = created.replication_factor;
                        let overrides = image
                            .topic(&created.topic_id)
                            .map(|t| t.configs.clone())
                            .unwrap_or_default();
                        let configs =
                            resolve_all_topic_configs(&overrides, &broker.config.settings)
                                .into_iter()
                                .map(|c| {
                                    let source = match c.source {
                                        ConfigSource::TopicOverride => SOURCE_DYNAMIC_TOPIC_CONFIG,
                                        ConfigSource::BrokerDefault { .. } => {
                                            SOURCE_STATIC_BROKER_CONFIG
                                        }
                                        ConfigSource::SchemaDefault => SOURCE_DEFAULT_CONFIG,
                                    };
                                    CreatableTopicConfigs::default()
                                        .with_name(str_bytes(c.def.name))
                                        .with_value(Some(str_bytes(&c.value)))
                                        .with_config_source(source)
                                })
                                .collect();
                        response.configs = Some(configs);
                    }
                    response
                }
                Err(error) => {
                    if !matches!(error, shoal_meta::ControllerError::TopicAlreadyExists(_)) {
                        tracing::info!(topic = name.0.as_str(), %error, "CreateTopics refused");
                    }
                    response
                        .with_error_code(controller_error_code(&error))
                        .with_error_message(
                            (ctx.api_version >= 1).then(|| str_bytes(&error.to_string())),
                        )
                }
            }
        })
        .collect();
    Reply::Ready(ResponseKind::CreateTopics(
        CreateTopicsResponse::default().with_topics(topics),
    ))
}
