//! Retiring brokers: every replica on a leaving broker gets a new home.
//!
//! Each leaving replica is replaced in place (its position in the replica list is kept, so a
//! partition's preferred order changes as little as possible) by the accepting broker that
//! (1) costs the partition no rack it spans, (2) holds the fewest replicas so far, (3) the
//! fewest bytes, (4) has the lowest id. All or nothing: if any partition has nowhere to go the
//! plan is an error and nothing is moved.

use std::collections::BTreeMap;

use crate::load::{rack_count, rack_of};
use crate::{ClusterView, Plan, PlanError, finish};

/// The plan moving every replica off `leaving`.
pub fn plan_decommission(view: &ClusterView, leaving: &[i32]) -> Result<Plan, PlanError> {
    for id in leaving {
        if !view.brokers.iter().any(|b| b.id == *id) {
            return Err(PlanError::UnknownBroker(*id));
        }
    }
    let destinations: Vec<i32> = view
        .brokers
        .iter()
        .filter(|b| b.accepting && !leaving.contains(&b.id))
        .map(|b| b.id)
        .collect();
    let mut count: BTreeMap<i32, usize> = destinations.iter().map(|id| (*id, 0)).collect();
    let mut bytes: BTreeMap<i32, u64> = destinations.iter().map(|id| (*id, 0)).collect();
    for p in &view.partitions {
        for id in &p.replicas {
            if let Some(c) = count.get_mut(id) {
                *c += 1;
            }
            if let Some(b) = bytes.get_mut(id) {
                *b += p.size_bytes;
            }
        }
    }
    let mut target = Vec::with_capacity(view.partitions.len());
    for p in &view.partitions {
        let mut replicas = p.replicas.clone();
        for slot in 0..replicas.len() {
            let old = replicas[slot];
            if !leaving.contains(&old) {
                continue;
            }
            let racks_before = rack_count(&view.brokers, &replicas);
            let best = destinations
                .iter()
                .copied()
                .filter(|id| !replicas.contains(id))
                .min_by_key(|id| {
                    let mut trial = replicas.clone();
                    trial[slot] = *id;
                    let loses_rack = rack_count(&view.brokers, &trial) < racks_before;
                    let same_rack = rack_of(&view.brokers, *id) == rack_of(&view.brokers, old);
                    (
                        loses_rack,
                        !same_rack,
                        count.get(id).copied().unwrap_or(0),
                        bytes.get(id).copied().unwrap_or(0),
                        *id,
                    )
                })
                .ok_or_else(|| PlanError::NoDestination {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    replicas: p.replicas.clone(),
                    broker: old,
                })?;
            replicas[slot] = best;
            *count.entry(best).or_insert(0) += 1;
            *bytes.entry(best).or_insert(0) += p.size_bytes;
        }
        target.push(replicas);
    }
    Ok(finish(view, &target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BrokerView, PartitionView};

    fn broker(id: i32, rack: Option<&str>) -> BrokerView {
        BrokerView {
            id,
            rack: rack.map(str::to_string),
            accepting: true,
        }
    }

    fn partition(p: i32, replicas: &[i32], size_bytes: u64) -> PartitionView {
        PartitionView {
            topic: "t".into(),
            partition: p,
            replicas: replicas.to_vec(),
            size_bytes,
        }
    }

    #[test]
    fn every_replica_leaves_and_the_load_spreads() {
        let view = ClusterView {
            brokers: (1..=4).map(|id| broker(id, None)).collect(),
            partitions: vec![
                partition(0, &[1, 2, 3], 100),
                partition(1, &[2, 1, 4], 100),
                partition(2, &[3, 4, 2], 100),
                partition(3, &[1, 3, 4], 100),
            ],
        };
        let plan = plan_decommission(&view, &[1]).unwrap();
        let to: Vec<(i32, Vec<i32>)> = plan
            .moves
            .iter()
            .map(|m| (m.partition, m.to.clone()))
            .collect();
        // In place: partition 0's preferred leader becomes 4 (the least loaded that lacks it).
        assert_eq!(
            to,
            vec![(0, vec![4, 2, 3]), (1, vec![2, 3, 4]), (3, vec![2, 3, 4])]
        );
        assert!(plan.moves.iter().all(|m| m.bytes_to_copy == 100));
        let after: Vec<(i32, usize)> = plan.after.iter().map(|l| (l.broker, l.replicas)).collect();
        assert_eq!(after, vec![(1, 0), (2, 4), (3, 4), (4, 4)]);
    }

    #[test]
    fn a_replacement_keeps_the_partition_on_its_racks() {
        // Racks: a = {1, 2}, b = {3, 4}. Partition on 1 (a) and 3 (b): 1 must go to 2, not 4.
        let view = ClusterView {
            brokers: vec![
                broker(1, Some("a")),
                broker(2, Some("a")),
                broker(3, Some("b")),
                broker(4, Some("b")),
            ],
            partitions: vec![partition(0, &[1, 3], 10), partition(1, &[4, 2], 10)],
        };
        let plan = plan_decommission(&view, &[1]).unwrap();
        assert_eq!(plan.moves.len(), 1);
        assert_eq!(plan.moves[0].to, vec![2, 3]);
    }

    #[test]
    fn nowhere_to_go_is_an_error() {
        let view = ClusterView {
            brokers: (1..=3).map(|id| broker(id, None)).collect(),
            partitions: vec![partition(0, &[1, 2, 3], 1)],
        };
        assert!(matches!(
            plan_decommission(&view, &[1]),
            Err(PlanError::NoDestination { broker: 1, .. })
        ));
        // A broker that does not accept replicas is no destination either.
        let mut view = ClusterView {
            brokers: (1..=3).map(|id| broker(id, None)).collect(),
            partitions: vec![partition(0, &[1, 2], 1)],
        };
        view.brokers[2].accepting = false;
        assert!(plan_decommission(&view, &[1]).is_err());
        assert_eq!(
            plan_decommission(&view, &[9]),
            Err(PlanError::UnknownBroker(9))
        );
    }

    #[test]
    fn a_broker_without_replicas_needs_no_moves() {
        let view = ClusterView {
            brokers: (1..=3).map(|id| broker(id, None)).collect(),
            partitions: vec![partition(0, &[1, 2], 1)],
        };
        assert!(plan_decommission(&view, &[3]).unwrap().moves.is_empty());
    }
}
