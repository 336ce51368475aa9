//! `max.broker.partitions` (KIP-578's name): how many partition replicas one broker may hold.
//!
//! A broker opens three files per partition; past its file-descriptor limit a partition the
//! controller assigned simply never opens (NOT_LEADER_OR_FOLLOWER forever). So a CreateTopics or
//! CreatePartitions that would place more replicas on any broker than the bound is refused
//! whole with POLICY_VIOLATION, before anything is written. The server derives the bound from
//! its file-descriptor limit unless it is set.

use std::collections::BTreeMap;

use crate::error::ControllerError;
use crate::image::MetadataImage;

/// Refuses `new_replicas` (one list per new partition) if, added to what `image` already
/// places, any broker would hold more than `max_per_broker` replicas.
pub fn check_broker_partition_limit(
    image: &MetadataImage,
    new_replicas: &[Vec<i32>],
    max_per_broker: Option<u32>,
) -> Result<(), ControllerError> {
    let Some(max) = max_per_broker else {
        return Ok(());
    };
    let mut added: BTreeMap<i32, u64> = BTreeMap::new();
    for broker in new_replicas.iter().flatten() {
        *added.entry(*broker).or_default() += 1;
    }
    if added.is_empty() {
        return Ok(());
    }
    let mut held: BTreeMap<i32, u64> = added.keys().map(|b| (*b, 0)).collect();
    for topic in image.topics.values() {
        for partition in &topic.partitions {
            for broker in &partition.replicas {
                if let Some(count) = held.get_mut(broker) {
                    *count += 1;
                }
            }
        }
    }
    for (broker, extra) in added {
        let now = held.get(&broker).copied().unwrap_or(0);
        if now + extra > u64::from(max) {
            return Err(ControllerError::PolicyViolation(format!(
                "This would place {} partition replicas on broker {broker} ({now} now, {extra} \
                 more), above max.broker.partitions={max}; a broker cannot open more partitions \
                 than its file-descriptor limit allows. Use fewer partitions, more brokers, or \
                 raise the limit (ulimit -n) and max.broker.partitions.",
                now + extra
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::test_images::image_with;

    #[test]
    fn partitions_beyond_a_brokers_bound_are_refused() {
        // Broker 1 holds 3 replicas, broker 2 holds 3, in the image.
        let image = image_with(
            3,
            &[],
            &[
                (&[1, 2], &[1, 2], 1),
                (&[1, 2], &[1, 2], 1),
                (&[2, 1], &[2, 1], 2),
            ],
        );
        // (new replicas, bound, allowed)
        let table: Vec<(Vec<Vec<i32>>, Option<u32>, bool)> = vec![
            (vec![vec![1], vec![1]], Some(5), true),
            (vec![vec![1], vec![1], vec![1]], Some(5), false),
            (vec![vec![3], vec![3], vec![3]], Some(3), true),
            (vec![vec![3]; 4], Some(3), false),
            (vec![vec![1, 2]; 100], None, true),
            (vec![], Some(0), true),
        ];
        for (new_replicas, max, allowed) in table {
            let result = check_broker_partition_limit(&image, &new_replicas, max);
            assert_eq!(
                result.is_ok(),
                allowed,
                "{new_replicas:?} max {max:?}: {result:?}"
            );
            if let Err(e) = result {
                assert!(
                    matches!(e, ControllerError::PolicyViolation(ref m) if m.contains("max.broker.partitions"))
                );
            }
        }
    }
}
