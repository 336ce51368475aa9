//! Shared pieces of request planning: limits, the planning loop, manual-assignment checks.
//!
//! Planning is pure: it takes the latest applied image and a request and returns, per item,
//! either an error or the records that implement it. Items are planned in order against a
//! *working copy* of the image to which earlier successful items' records have been applied, so
//! two items of one request see each other exactly as they will once committed.

use uuid::Uuid;

use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::placement::PlacementSeed;
use crate::records::MetadataRecord;

/// Most partitions one topic may have (and most one CreateTopics item may ask for).
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;
/// Most records in one Raft entry; larger batches are split between items (an item is never
/// split, and one topic is at most `MAX_PARTITIONS_PER_TOPIC` + configs + 1 records).
pub const MAX_RECORDS_PER_ENTRY: usize = 20_000;
/// Most items (topics, resources) in one admin request.
pub const MAX_ITEMS_PER_REQUEST: usize = 10_000;
/// Most listeners a broker may register.
pub const MAX_LISTENERS_PER_BROKER: usize = 16;
/// Longest host name, listener name or rack id accepted.
pub const MAX_NAME_LENGTH: usize = 255;

/// One planned item: its result and the records that implement it.
pub type Planned<T> = Result<(T, Vec<MetadataRecord>), ControllerError>;

/// Plans `items` in order against a working copy of `image` (see the module docs).
pub fn plan_in_order<I, T>(
    image: &MetadataImage,
    items: Vec<Result<I, ControllerError>>,
    mut plan_one: impl FnMut(&MetadataImage, I) -> Planned<T>,
) -> Vec<Planned<T>> {
    let mut working = image.clone();
    items
        .into_iter()
        .map(|item| {
            let planned = plan_one(&working, item?)?;
            for record in &planned.1 {
                if let crate::image::ApplyOutcome::Skipped(reason) = working.apply(record) {
                    // A planner produced a record its own image rejects: a bug, not bad input.
                    debug_assert!(false, "planned record skipped: {reason}");
                    return Err(ControllerError::Internal(format!(
                        "planned record was rejected: {reason}"
                    )));
                }
            }
            Ok(planned)
        })
        .collect()
}

/// Marks every item whose key appears more than once as an `InvalidRequest`, as Kafka does.
pub fn reject_duplicates<I, K: Ord + Clone + std::fmt::Display>(
    items: Vec<I>,
    key: impl Fn(&I) -> K,
    what: &str,
) -> Vec<Result<I, ControllerError>> {
    let mut counts = std::collections::BTreeMap::new();
    for item in &items {
        *counts.entry(key(item)).or_insert(0usize) += 1;
    }
    items
        .into_iter()
        .map(|item| {
            let k = key(&item);
            if counts.get(&k).copied().unwrap_or(0) > 1 {
                Err(ControllerError::InvalidRequest(format!(
                    "Duplicate {what} in request: {k}"
                )))
            } else {
                Ok(item)
            }
        })
        .collect()
}

/// Placement start points derived from the (random) topic id.
pub fn placement_seed(topic_id: Uuid) -> PlacementSeed {
    let v = topic_id.as_u128();
    PlacementSeed {
        start_index: (v & 0xffff) as usize,
        replica_shift: ((v >> 16) & 0xffff) as usize,
    }
}

/// Checks one manually assigned replica list: non-empty, no duplicates, only unfenced
/// registered brokers, and the same length as the other partitions (`expected_rf`).
pub fn validate_replica_list(
    image: &MetadataImage,
    partition: i32,
    replicas: &[i32],
    expected_rf: Option<usize>,
) -> Result<(), ControllerError> {
    let invalid = |msg: String| Err(ControllerError::InvalidReplicaAssignment(msg));
    if replicas.is_empty() {
        return invalid(format!(
            "The manual partition assignment for partition {partition} is an empty replica list."
        ));
    }
    if let Some(rf) = expected_rf
        && replicas.len() != rf
    {
        return invalid(format!(
            "The manual partition assignment for partition {partition} has {} replica(s), which \
             is not consistent with the other partitions, which have {rf} replica(s).",
            replicas.len()
        ));
    }
    for (i, broker) in replicas.iter().enumerate() {
        if replicas[..i].contains(broker) {
            return invalid(format!(
                "The manual partition assignment for partition {partition} includes broker \
                 {broker} more than once."
            ));
        }
        match image.brokers.get(broker) {
            Some(b) if !b.fenced => {}
            _ => {
                return invalid(format!(
                    "The manual partition assignment includes broker {broker}, but no such \
                     broker is registered and unfenced."
                ));
            }
        }
    }
    Ok(())
}

/// The record of a new partition: all replicas in sync, the first one leads, epochs start at 0.
pub fn new_partition_record(topic_id: Uuid, partition: i32, replicas: Vec<i32>) -> MetadataRecord {
    debug_assert!(!replicas.is_empty());
    let leader = replicas
        .first()
        .copied()
        .unwrap_or(crate::records::NO_LEADER);
    MetadataRecord::Partition {
        topic_id,
        partition,
        isr: replicas.clone(),
        replicas,
        leader,
        leader_epoch: 0,
        partition_epoch: 0,
    }
}
