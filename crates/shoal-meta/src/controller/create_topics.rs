//! Planning CreateTopics: validation in Kafka's order, then the Topic, Partition and TopicConfig
//! records of each new topic (one topic = one atomic group of records).

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::broker_defaults::BrokerDefaults;
use crate::controller::partition_limit::check_broker_partition_limit;
use crate::controller::plan::{
    MAX_PARTITIONS_PER_TOPIC, Planned, new_partition_record, placement_seed, plan_in_order,
    reject_duplicates, validate_replica_list,
};
use crate::controller::requests::{CreateTopic, CreatedTopic};
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::placement::assign_replicas;
use crate::records::MetadataRecord;
use crate::topic_config::{check_log_config, validate_topic_config};
use crate::topic_name::{collision_key, validate_topic_name};

/// How many times to draw a new topic id before giving up (a collision is ~impossible).
const MAX_TOPIC_ID_ATTEMPTS: usize = 16;

/// Plans each topic of a CreateTopics request. `new_topic_id` supplies fresh random ids.
pub fn plan_create_topics(
    image: &MetadataImage,
    defaults: &BrokerDefaults,
    topics: Vec<CreateTopic>,
    new_topic_id: &mut dyn FnMut() -> Uuid,
) -> Vec<Planned<CreatedTopic>> {
    let items = reject_duplicates(topics, |t| t.name.clone(), "topic name");
    plan_in_order(image, items, |working, topic| {
        plan_one(working, defaults, topic, new_topic_id)
    })
}

fn plan_one(
    image: &MetadataImage,
    defaults: &BrokerDefaults,
    topic: CreateTopic,
    new_topic_id: &mut dyn FnMut() -> Uuid,
) -> Planned<CreatedTopic> {
    validate_topic_name(&topic.name)?;
    if image.topic_by_name(&topic.name).is_some() {
        return Err(ControllerError::TopicAlreadyExists(topic.name));
    }
    // Kafka uses -1 on the wire for "use the default".
    let num_partitions = topic.num_partitions.filter(|n| *n != -1);
    let replication_factor = topic.replication_factor.filter(|r| *r != -1);
    let assignments = topic.assignments.filter(|a| !a.is_empty());
    if assignments.is_some() && (num_partitions.is_some() || replication_factor.is_some()) {
        return Err(ControllerError::InvalidRequest(
            "Both numPartitions or replicationFactor and replicasAssignments were set. Both \
             cannot be used at the same time."
                .to_string(),
        ));
    }

    let mut configs = BTreeMap::new();
    for (name, value) in &topic.configs {
        configs.insert(name.clone(), validate_topic_config(name, value)?);
    }
    check_log_config(&configs, defaults.configs())?;

    let key = collision_key(&topic.name);
    if let Some(existing) = image
        .topic_ids_by_name
        .keys()
        .find(|existing| collision_key(existing) == key)
    {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic '{}' collides with existing topic: {existing}",
            topic.name
        )));
    }

    let topic_id = fresh_topic_id(image, new_topic_id)?;
    let replica_lists = match assignments {
        Some(assignments) => manual_replicas(image, &assignments)?,
        None => {
            let n = num_partitions.unwrap_or(defaults.num_partitions());
            if n <= 0 {
                return Err(ControllerError::InvalidPartitions(
                    "Number of partitions was set to an invalid non-positive value.".to_string(),
                ));
            }
            check_partition_limit(n)?;
            let rf = replication_factor.unwrap_or(defaults.default_replication_factor());
            if rf <= 0 {
                return Err(ControllerError::InvalidReplicationFactor(
                    "Replication factor must be larger than 0, or -1 to use the default value."
                        .to_string(),
                ));
            }
            assign_replicas(
                &image.placement_brokers(),
                n,
                i32::from(rf),
                0,
                placement_seed(topic_id),
            )
            .map_err(|e| ControllerError::InvalidReplicationFactor(e.to_string()))?
        }
    };

    check_broker_partition_limit(image, &replica_lists, defaults.max_broker_partitions())?;
    let num_partitions = i32::try_from(replica_lists.len())
        .map_err(|_| ControllerError::InvalidPartitions("Too many partitions.".to_string()))?;
    let replication_factor = replica_lists
        .first()
        .and_then(|r| i16::try_from(r.len()).ok())
        .ok_or_else(|| {
            ControllerError::InvalidReplicationFactor("Invalid replication factor.".to_string())
        })?;

    let mut records = Vec::with_capacity(1 + replica_lists.len() + configs.len());
    records.push(MetadataRecord::Topic {
        name: topic.name,
        topic_id,
    });
    for (partition, replicas) in (0..).zip(replica_lists) {
        records.push(new_partition_record(topic_id, partition, replicas));
    }
    for (name, value) in configs {
        records.push(MetadataRecord::TopicConfig {
            topic_id,
            name,
            value: Some(value),
        });
    }
    Ok((
        CreatedTopic {
            topic_id,
            num_partitions,
            replication_factor,
        },
        records,
    ))
}

fn check_partition_limit(n: i32) -> Result<(), ControllerError> {
    if n > MAX_PARTITIONS_PER_TOPIC {
        return Err(ControllerError::InvalidPartitions(format!(
            "Number of partitions {n} is larger than the limit of {MAX_PARTITIONS_PER_TOPIC} per \
             topic."
        )));
    }
    Ok(())
}

fn manual_replicas(
    image: &MetadataImage,
    assignments: &BTreeMap<i32, Vec<i32>>,
) -> Result<Vec<Vec<i32>>, ControllerError> {
    let n = i32::try_from(assignments.len()).unwrap_or(i32::MAX);
    check_partition_limit(n)?;
    let mut lists = Vec::with_capacity(assignments.len());
    for (expected, (partition, replicas)) in (0..).zip(assignments) {
        if *partition != expected {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Partitions of the manual assignment should be a consecutive 0-based integer \
                 sequence, but partition {expected} is missing."
            )));
        }
        let expected_rf = lists.first().map(Vec::len);
        validate_replica_list(image, *partition, replicas, expected_rf)?;
        lists.push(replicas.clone());
    }
    Ok(lists)
}

fn fresh_topic_id(
    image: &MetadataImage,
    new_topic_id: &mut dyn FnMut() -> Uuid,
) -> Result<Uuid, ControllerError> {
    for _ in 0..MAX_TOPIC_ID_ATTEMPTS {
        let id = new_topic_id();
        if !id.is_nil() && !image.topics.contains_key(&id) {
            return Ok(id);
        }
    }
    Err(ControllerError::Internal(
        "could not generate an unused topic id".to_string(),
    ))
}
