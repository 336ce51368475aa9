//! Planning CreatePartitions: partitions can only be added (Kafka never removes them, because
//! keyed data would be re-hashed to other partitions); new ones keep the topic's replication
//! factor and continue its placement pattern.

use crate::broker_defaults::BrokerDefaults;
use crate::controller::partition_limit::check_broker_partition_limit;
use crate::controller::plan::{
    MAX_PARTITIONS_PER_TOPIC, Planned, new_partition_record, placement_seed, plan_in_order,
    reject_duplicates, validate_replica_list,
};
use crate::controller::requests::CreatePartitions;
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::placement::assign_replicas;
use crate::topic_config::check_log_config;

/// Plans each topic of a CreatePartitions request; the result is the new partition count.
pub fn plan_create_partitions(
    image: &MetadataImage,
    defaults: &BrokerDefaults,
    topics: Vec<CreatePartitions>,
) -> Vec<Planned<i32>> {
    let items = reject_duplicates(topics, |t| t.topic.clone(), "topic name");
    plan_in_order(image, items, |working, request| {
        plan_one(working, defaults, request)
    })
}

fn plan_one(
    image: &MetadataImage,
    defaults: &BrokerDefaults,
    request: CreatePartitions,
) -> Planned<i32> {
    let Some(topic) = image.topic_by_name(&request.topic) else {
        return Err(ControllerError::UnknownTopicOrPartition(request.topic));
    };
    // The new partitions open logs with the topic's effective config: it must be one they can
    // run with (broker settings may have changed since the topic was created).
    check_log_config(&topic.configs, defaults.configs())?;
    let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    let new_total = request.new_total_count;
    if new_total < current {
        return Err(ControllerError::InvalidPartitions(format!(
            "Topic currently has {current} partitions, which is higher than the requested \
             {new_total}."
        )));
    }
    if new_total == current {
        return Err(ControllerError::InvalidPartitions(format!(
            "Topic already has {current} partitions."
        )));
    }
    if new_total > MAX_PARTITIONS_PER_TOPIC {
        return Err(ControllerError::InvalidPartitions(format!(
            "Requested partition count {new_total} is larger than the limit of \
             {MAX_PARTITIONS_PER_TOPIC} per topic."
        )));
    }
    let added = new_total - current;
    let rf = topic.replication_factor();
    let replica_lists = match request.assignments {
        Some(assignments) => {
            if i32::try_from(assignments.len()).ok() != Some(added) {
                return Err(ControllerError::InvalidReplicaAssignment(format!(
                    "Increasing the number of partitions by {added} but {} assignments provided.",
                    assignments.len()
                )));
            }
            for (partition, replicas) in (current..).zip(&assignments) {
                validate_replica_list(image, partition, replicas, Some(rf))?;
            }
            assignments
        }
        None => assign_replicas(
            &image.placement_brokers(),
            added,
            i32::try_from(rf).unwrap_or(i32::MAX),
            current,
            placement_seed(topic.id),
        )
        .map_err(|e| ControllerError::InvalidReplicationFactor(e.to_string()))?,
    };
    check_broker_partition_limit(image, &replica_lists, defaults.max_broker_partitions())?;
    let records = (current..)
        .zip(replica_lists)
        .map(|(partition, replicas)| new_partition_record(topic.id, partition, replicas))
        .collect();
    Ok((new_total, records))
}
