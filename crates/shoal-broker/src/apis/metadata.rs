//! Metadata: brokers, topics and partition leaders, from this broker's metadata image.
//!
//! Brokers are listed with the endpoint of the listener the request came in on, so a client on
//! the host and one inside a container network each get addresses they can reach. A topic that
//! does not exist is created when `auto.create.topics.enable` and the request allow it; unlike
//! Kafka's LEADER_NOT_AVAILABLE first answer, the broker waits briefly for the new topic to be
//! in effect locally and returns it, saving the client a retry round.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, ResponseKind};
use shoal_kafka::{Reply, RequestContext};
use shoal_meta::{CreateTopic, MetadataImage, TopicImage};
use uuid::Uuid;

use crate::Broker;
use crate::apis::{str_bytes, topic_name};
use crate::authorization::{CLUSTER_NAME, CLUSTER_OPERATIONS, TOPIC_OPERATIONS};
use crate::error_codes::controller_error_code;
use crate::replica_manager::ReplicaManager;
use crate::single_node::{ClusterShape, single_node_replication_factor};
use shoal_acl::{Operation, ResourceType};

const AUTO_CREATE_WAIT: Duration = Duration::from_secs(5);

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, request: MetadataRequest) -> Reply {
    let version = ctx.api_version;
    // v0 has no null: an empty list there means all topics.
    let requested: Option<Vec<(Option<String>, Uuid)>> = match request.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(
            t.into_iter()
                .map(|r| (r.name.map(|n| n.0.as_str().to_string()), r.topic_id))
                .collect(),
        ),
    };
    let allow_auto_create = version < 4 || request.allow_auto_topic_creation;
    let authz = &broker.authorization;

    // Requested names the principal may not DESCRIBE, or may not auto-create: answered
    // TOPIC_AUTHORIZATION_FAILED whether or not they exist (Kafka's checks).
    let mut denied: HashSet<String> = HashSet::new();
    if let Some(requested) = &requested {
        for (name, _) in requested {
            if let Some(name) = name
                && !authz.allowed(ctx, Operation::Describe, ResourceType::Topic, name)
            {
                denied.insert(name.clone());
            }
        }
    }
    let mut image = broker.image();
    if let Some(requested) = &requested
        && allow_auto_create
        && broker.config.auto_create_topics_enable
    {
        let missing: Vec<String> = requested
            .iter()
            .filter_map(|(name, _)| name.clone())
            .filter(|name| !denied.contains(name))
            .filter(|name| image.topic_by_name(name).is_none())
            .filter(|name| shoal_meta::topic_name::validate_topic_name(name).is_ok())
            .collect();
        let cluster_create = !missing.is_empty()
            && authz.allowed_quietly(ctx, Operation::Create, ResourceType::Cluster, CLUSTER_NAME);
        let (creatable, not_creatable): (Vec<String>, Vec<String>) =
            missing.into_iter().partition(|name| {
                cluster_create || authz.allowed(ctx, Operation::Create, ResourceType::Topic, name)
            });
        denied.extend(not_creatable);
        if !creatable.is_empty() {
            auto_create(broker, creatable).await;
            image = broker.image();
        }
    }
    let topic_operations = |name: &str| {
        if version >= 8 && request.include_topic_authorized_operations {
            authz.authorized_operations(ctx, ResourceType::Topic, name, &TOPIC_OPERATIONS)
        } else {
            i32::MIN
        }
    };
    let answer = |t: &TopicImage| {
        topic_response(&image, t, version, &broker.replicas)
            .with_topic_authorized_operations(topic_operations(&t.name))
    };
    let unauthorized = || {
        MetadataResponseTopic::default()
            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
    };

    let topics: Vec<MetadataResponseTopic> = match &requested {
        // All topics: those the principal may DESCRIBE, without an audit line per topic.
        None => image
            .topics
            .values()
            .filter(|t| {
                authz.allowed_quietly(ctx, Operation::Describe, ResourceType::Topic, &t.name)
            })
            .map(answer)
            .collect(),
        Some(requested) => requested
            .iter()
            .map(|(name, id)| match name {
                Some(name) if denied.contains(name) => {
                    unauthorized().with_name(Some(topic_name(name)))
                }
                Some(name) => match image.topic_by_name(name) {
                    Some(t) => answer(t),
                    None => {
                        let code = if shoal_meta::topic_name::validate_topic_name(name).is_err() {
                            ResponseError::InvalidTopicException.code()
                        } else {
                            ResponseError::UnknownTopicOrPartition.code()
                        };
                        MetadataResponseTopic::default()
                            .with_error_code(code)
                            .with_name(Some(topic_name(name)))
                    }
                },
                None => match image.topic(id) {
                    Some(t)
                        if !authz.allowed(
                            ctx,
                            Operation::Describe,
                            ResourceType::Topic,
                            &t.name,
                        ) =>
                    {
                        unauthorized().with_topic_id(*id)
                    }
                    Some(t) => answer(t),
                    None => MetadataResponseTopic::default()
                        .with_error_code(ResponseError::UnknownTopicId.code())
                        .with_topic_id(*id),
                },
            })
            .collect(),
    };

    let response = MetadataResponse::default()
        .with_brokers(brokers(&image, &ctx.listener))
        .with_cluster_id((version >= 2).then(|| str_bytes(&image.cluster_id)))
        .with_controller_id(BrokerId(if version >= 1 {
            broker.controller_id_for_clients()
        } else {
            -1
        }))
        .with_topics(topics)
        .with_cluster_authorized_operations(
            if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
                // Kafka reports the cluster's operations only to who may DESCRIBE it.
                if !authz.allowed_quietly(
                    ctx,
                    Operation::Describe,
                    ResourceType::Cluster,
                    CLUSTER_NAME,
                ) {
                    0
                } else {
                    authz.authorized_operations(
                        ctx,
                        ResourceType::Cluster,
                        CLUSTER_NAME,
                        &CLUSTER_OPERATIONS,
                    )
                }
            } else {
                i32::MIN
            },
        );
    Reply::Ready(ResponseKind::Metadata(response))
}

async fn auto_create(broker: &Arc<Broker>, names: Vec<String>) {
    // The controller applies default.replication.factor; only the single-node rule changes it.
    let configured = shoal_config::effective(&broker.config.settings, "default.replication.factor")
        .and_then(|v| v.parse::<i16>().ok())
        .unwrap_or(1);
    let shape = ClusterShape::of(&broker.image(), broker.config.quorum_voters);
    let replication_factor = single_node_replication_factor(configured, shape);
    if let Some(reduced) = replication_factor {
        tracing::warn!(
            "default.replication.factor" = configured,
            replicas = reduced,
            "single-node cluster: auto-creating {names:?} with {reduced} replica(s)"
        );
    }
    let requests = names
        .iter()
        .map(|name| CreateTopic {
            name: name.clone(),
            num_partitions: None,
            replication_factor,
            assignments: None,
            configs: Default::default(),
        })
        .collect();
    let outcome = broker.controller.create_topics(requests, false).await;
    for (name, result) in names.iter().zip(outcome.results) {
        match result {
            Ok(created) => {
                tracing::info!(
                    topic = name,
                    partitions = created.num_partitions,
                    "auto-created topic"
                );
            }
            Err(error) => {
                // Losing a race with another creator is fine; anything else the client sees as
                // an unknown topic and retries.
                let code = controller_error_code(&error);
                if code != ResponseError::TopicAlreadyExists.code() {
                    tracing::warn!(topic = name, %error, "auto-creating topic failed");
                }
            }
        }
    }
    if let Some(index) = outcome.log_index {
        broker.wait_for_metadata(index, AUTO_CREATE_WAIT).await;
    }
}

pub(crate) fn brokers(image: &MetadataImage, listener: &str) -> Vec<MetadataResponseBroker> {
    image
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .filter_map(|b| {
            let endpoint = b.listeners.iter().find(|e| e.name == listener)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.broker_id))
                    .with_host(str_bytes(&endpoint.host))
                    .with_port(i32::from(endpoint.port))
                    .with_rack(b.rack.as_deref().map(str_bytes)),
            )
        })
        .collect()
}

/// Fields newer than `version` stay at their defaults: the codec refuses to encode them.
/// Replicas on fenced brokers are offline, and so is this broker's replica when its log could
/// not be opened here; a leader whose log is offline answers KAFKA_STORAGE_ERROR.
/// What Metadata and DescribeTopicPartitions say of a partition's replicas.
pub(crate) struct PartitionView {
    /// This broker holds a replica it could not open.
    pub local_offline: bool,
    /// Replicas on fenced or unknown brokers, and this broker's if offline here.
    pub offline: Vec<BrokerId>,
    pub leader_alive: bool,
}

pub(crate) fn partition_view(
    image: &MetadataImage,
    topic: &TopicImage,
    p: &shoal_meta::image::PartitionImage,
    local: &ReplicaManager,
) -> PartitionView {
    let local_offline = local.is_offline(topic.id, p.partition);
    let offline = p
        .replicas
        .iter()
        .filter(|id| {
            image.brokers.get(id).is_none_or(|b| b.fenced)
                || (**id == local.local_id() && local_offline)
        })
        .map(|id| BrokerId(*id))
        .collect();
    PartitionView {
        local_offline,
        offline,
        leader_alive: p.leader >= 0 && image.brokers.get(&p.leader).is_some_and(|b| !b.fenced),
    }
}

fn topic_response(
    image: &MetadataImage,
    topic: &TopicImage,
    version: i16,
    local: &ReplicaManager,
) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let PartitionView {
                local_offline,
                offline,
                leader_alive,
            } = partition_view(image, topic, p, local);
            MetadataResponsePartition::default()
                .with_error_code(if !leader_alive {
                    ResponseError::LeaderNotAvailable.code()
                } else if local_offline && p.leader == local.local_id() {
                    ResponseError::KafkaStorageError.code()
                } else {
                    0
                })
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(if leader_alive { p.leader } else { -1 }))
                .with_leader_epoch(if version >= 7 { p.leader_epoch } else { -1 })
                .with_replica_nodes(p.replicas.iter().map(|id| BrokerId(*id)).collect())
                .with_isr_nodes(p.isr.iter().map(|id| BrokerId(*id)).collect())
                .with_offline_replicas(if version >= 5 { offline } else { Vec::new() })
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(if version >= 10 { topic.id } else { Uuid::nil() })
        .with_is_internal(version >= 1 && shoal_meta::topic_name::is_internal(&topic.name))
        .with_partitions(partitions)
}
