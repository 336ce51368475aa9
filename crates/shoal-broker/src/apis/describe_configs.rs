//! DescribeConfigs: a topic's effective configs with their sources, the broker's settings, and
//! a group's configs (KIP-848: its overrides, else the broker's `group.consumer.*` values).
//!
//! Tools show users where a value comes from (a topic override, a broker setting, or the
//! built-in default), so each entry carries Kafka's `ConfigSource` and, when asked, synonyms.
//!
//! Authorization is Kafka's (`KafkaApis.handleDescribeConfigsRequest`), per resource: a topic
//! needs DESCRIBE_CONFIGS on the topic (else TOPIC_AUTHORIZATION_FAILED, whether or not it
//! exists); the broker, its loggers and client metrics need DESCRIBE_CONFIGS on the cluster
//! (else CLUSTER_AUTHORIZATION_FAILED); a group needs it on the group.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use shoal_acl::{Operation, ResourceType};
use shoal_config::effective::ValueSource;
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::topic_config::{ConfigSource, ResolvedConfig, resolve_all_topic_configs};

use crate::Broker;
use crate::apis::str_bytes;
use crate::authorization::CLUSTER_NAME;

// Kafka's ConfigResource.Type ids.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;
pub const RESOURCE_CLIENT_METRICS: i8 = 16;
pub const RESOURCE_GROUP: i8 = 32;

/// The error Kafka answers when the principal may not do `operation` (DESCRIBE_CONFIGS or
/// ALTER_CONFIGS) on a config resource, if it may not: topics and groups are authorized on
/// themselves, the broker, broker loggers and client metrics on the cluster. Resource types
/// Kafka does not know are left to the caller's INVALID_REQUEST.
pub fn config_authorization_error(
    broker: &Broker,
    ctx: &RequestContext,
    operation: Operation,
    resource_type: i8,
    resource_name: &str,
) -> Option<ResponseError> {
    let authorization = &broker.authorization;
    let (allowed, error) = match resource_type {
        RESOURCE_TOPIC => (
            authorization.allowed(ctx, operation, ResourceType::Topic, resource_name),
            ResponseError::TopicAuthorizationFailed,
        ),
        RESOURCE_GROUP => (
            authorization.allowed(ctx, operation, ResourceType::Group, resource_name),
            ResponseError::GroupAuthorizationFailed,
        ),
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER | RESOURCE_CLIENT_METRICS => (
            authorization.allowed(ctx, operation, ResourceType::Cluster, CLUSTER_NAME),
            ResponseError::ClusterAuthorizationFailed,
        ),
        _ => return None,
    };
    (!allowed).then_some(error)
}

/// Kafka's message for an authorization error (`Errors.message()`).
fn authorization_message(error: ResponseError) -> &'static str {
    match error {
        ResponseError::TopicAuthorizationFailed => "Topic authorization failed.",
        ResponseError::GroupAuthorizationFailed => "Group authorization failed.",
        _ => "Cluster authorization failed.",
    }
}

// Kafka's DescribeConfigsResponse ConfigSource values.
const SOURCE_DYNAMIC_TOPIC_CONFIG: i8 = 1;
const SOURCE_DYNAMIC_BROKER_CONFIG: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
const SOURCE_DEFAULT_CONFIG: i8 = 5;
const SOURCE_DYNAMIC_BROKER_LOGGER_CONFIG: i8 = 6;
const SOURCE_GROUP_CONFIG: i8 = 8;
/// DescribeConfigs' STRING config type.
const CONFIG_TYPE_STRING: i8 = 2;

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeConfigsRequest,
) -> Reply {
    // config_type and documentation exist from v3.
    let typed = ctx.api_version >= 3;
    let image = broker.image();
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let keys: Option<Vec<String>> = resource
                .configuration_keys
                .map(|k| k.iter().map(|s| s.as_str().to_string()).collect());
            // Null or empty: every config (Kafka's ConfigHelper).
            let wanted = |name: &str| {
                keys.as_ref()
                    .is_none_or(|k| k.is_empty() || k.iter().any(|w| w == name))
            };
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            if let Some(error) = config_authorization_error(
                broker,
                ctx,
                Operation::DescribeConfigs,
                resource.resource_type,
                resource.resource_name.as_str(),
            ) {
                return result
                    .with_error_code(error.code())
                    .with_error_message(Some(str_bytes(authorization_message(error))));
            }
            match resource.resource_type {
                RESOURCE_TOPIC => match image.topic_by_name(resource.resource_name.as_str()) {
                    None => result
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        .with_error_message(Some(str_bytes(&format!(
                            "Topic {} does not exist.",
                            resource.resource_name.as_str()
                        )))),
                    Some(topic) => {
                        let configs =
                            resolve_all_topic_configs(&topic.configs, &broker.config.settings)
                                .into_iter()
                                .filter(|c| wanted(c.def.name))
                                .map(|c| {
                                    topic_entry(
                                        &c,
                                        request.include_synonyms,
                                        request.include_documentation && typed,
                                        typed,
                                    )
                                })
                                .collect();
                        result.with_configs(configs)
                    }
                },
                RESOURCE_BROKER => {
                    let name = resource.resource_name.as_str();
                    if !name.is_empty() && name != broker.config.node_id.to_string() {
                        return result
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str_bytes(&format!(
                                "Broker {name} is not this broker ({}); ask it directly.",
                                broker.config.node_id
                            ))));
                    }
                    let dynamic = &image.broker_configs;
                    let node_id = broker.config.node_id;
                    // The cluster default (empty name) is its dynamic configs only, as Kafka's
                    // `--entity-default`; a broker is every canonical setting of the schema with
                    // its effective value (synonyms such as log.retention.hours are reported
                    // under the canonical name): its own dynamic value, else the cluster
                    // default's, else the static setting or the built-in default.
                    let configs = shoal_config::BROKER_CONFIGS
                        .iter()
                        .filter(|def| def.synonym_of.is_none() && wanted(def.name))
                        .filter_map(|def| {
                            let (value, source) = if name.is_empty() {
                                let value = dynamic.cluster.get(def.name)?;
                                (value.clone(), SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG)
                            } else if let Some((value, own)) = dynamic.value(node_id, def.name) {
                                let source = match own {
                                    true => SOURCE_DYNAMIC_BROKER_CONFIG,
                                    false => SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG,
                                };
                                (value.to_string(), source)
                            } else {
                                let effective = shoal_config::effective_value(
                                    &broker.config.settings,
                                    def.name,
                                )?;
                                let source = match effective.source {
                                    ValueSource::Explicit(_) => SOURCE_STATIC_BROKER_CONFIG,
                                    ValueSource::Default => SOURCE_DEFAULT_CONFIG,
                                };
                                (effective.value, source)
                            };
                            // Secrets are reported as sensitive, never shown (as Kafka).
                            let value = (!def.sensitive).then(|| str_bytes(&value));
                            let mut entry = DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(def.name))
                                .with_value(value)
                                .with_is_sensitive(def.sensitive)
                                .with_read_only(!def.is_alterable())
                                .with_config_source(source)
                                .with_config_type(if typed {
                                    def.config_type.describe_configs_id()
                                } else {
                                    0
                                });
                            if request.include_documentation && typed {
                                entry.documentation = Some(str_bytes(def.doc));
                            }
                            Some(entry)
                        })
                        .collect();
                    result.with_configs(configs)
                }
                RESOURCE_BROKER_LOGGER => {
                    let name = resource.resource_name.as_str();
                    if name != broker.config.node_id.to_string() {
                        return result
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str_bytes(&format!(
                                "Unexpected broker id, expected {} but received {name}",
                                broker.config.node_id
                            ))));
                    }
                    let Some(loggers) = crate::broker_loggers::installed() else {
                        return result
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str_bytes(
                                "this process does not manage its log levels",
                            )));
                    };
                    let configs = loggers
                        .describe()
                        .into_iter()
                        .filter(|(logger, _)| wanted(logger))
                        .map(|(logger, level)| {
                            DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(&logger))
                                .with_value(Some(str_bytes(&level)))
                                .with_config_source(SOURCE_DYNAMIC_BROKER_LOGGER_CONFIG)
                                .with_config_type(if typed { CONFIG_TYPE_STRING } else { 0 })
                        })
                        .collect();
                    result.with_configs(configs)
                }
                RESOURCE_GROUP => {
                    let group = resource.resource_name.as_str();
                    if group.is_empty() {
                        return result
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str_bytes("Group name must not be empty")));
                    }
                    // Any group id, existing or not (Kafka's ConfigHelper): its overrides,
                    // else the broker's values as DEFAULT_CONFIG.
                    let configs = shoal_config::resolve_group_configs(
                        image.group_configs.of(group),
                        &broker.config.settings,
                    )
                    .into_iter()
                    .filter(|c| wanted(c.def.name))
                    .map(|c| {
                        let source = match c.overridden {
                            true => SOURCE_GROUP_CONFIG,
                            false => SOURCE_DEFAULT_CONFIG,
                        };
                        let mut entry = DescribeConfigsResourceResult::default()
                            .with_name(str_bytes(c.def.name))
                            .with_value(Some(str_bytes(&c.value)))
                            .with_read_only(false)
                            .with_is_sensitive(false)
                            .with_config_source(source)
                            .with_config_type(if typed {
                                shoal_config::ConfigType::Int.describe_configs_id()
                            } else {
                                0
                            });
                        if request.include_synonyms {
                            entry.synonyms = vec![
                                DescribeConfigsSynonym::default()
                                    .with_name(str_bytes(c.def.name))
                                    .with_value(Some(str_bytes(&c.value)))
                                    .with_source(source),
                            ];
                        }
                        if request.include_documentation && typed {
                            entry.documentation = Some(str_bytes(c.def.documentation));
                        }
                        entry
                    })
                    .collect();
                    result.with_configs(configs)
                }
                other => result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(&format!(
                        "Resource type {other} is not supported."
                    )))),
            }
        })
        .collect();
    Reply::Ready(ResponseKind::DescribeConfigs(
        DescribeConfigsResponse::default().with_results(results),
    ))
}

fn topic_entry(
    config: &ResolvedConfig,
    include_synonyms: bool,
    include_documentation: bool,
    typed: bool,
) -> DescribeConfigsResourceResult {
    let (source, synonym_name): (i8, StrBytes) = match &config.source {
        ConfigSource::TopicOverride => (SOURCE_DYNAMIC_TOPIC_CONFIG, str_bytes(config.def.name)),
        ConfigSource::BrokerDefault { broker_config } => {
            (SOURCE_STATIC_BROKER_CONFIG, str_bytes(broker_config))
        }
        ConfigSource::SchemaDefault => (SOURCE_DEFAULT_CONFIG, str_bytes(config.def.name)),
    };
    let mut entry = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(config.def.name))
        .with_value(Some(str_bytes(&config.value)))
        .with_read_only(false)
        .with_config_source(source)
        .with_is_sensitive(false)
        .with_config_type(if typed {
            config.def.config_type().describe_configs_id()
        } else {
            0
        });
    if include_synonyms {
        let mut synonyms = vec![
            DescribeConfigsSynonym::default()
                .with_name(synonym_name)
                .with_value(Some(str_bytes(&config.value)))
                .with_source(source),
        ];
        if source != SOURCE_DEFAULT_CONFIG {
            synonyms.push(
                DescribeConfigsSynonym::default()
                    .with_name(str_bytes(config.def.name))
                    .with_value(Some(str_bytes(config.def.default())))
                    .with_source(SOURCE_DEFAULT_CONFIG),
            );
        }
        entry.synonyms = synonyms;
    }
    if include_documentation {
        entry.documentation = Some(str_bytes(config.def.documentation));
    }
    entry
}
