//! Internal topics grow to their configured replication factor once enough brokers exist.
//!
//! **Why.** The single-node rule (`shoal-broker/src/single_node.rs`) creates `__consumer_offsets`
//! and `__transaction_state` with one replica on a cluster that is, and always was, one node.
//! When that cluster later gains brokers, its committed offsets and transaction state would
//! otherwise stay on one disk forever. So the active controller adds replicas to every internal
//! partition below `offsets.topic.replication.factor` / `transaction.state.log.replication.factor`
//! (`share.coordinator.state.topic.replication.factor`) as soon as that many brokers are
//! unfenced, through partition reassignment (KIP-455): the new replicas copy the partition and
//! join the ISR, nothing is removed, and the leader stays where it is.
//!
//! A partition grows only to the full factor (never halfway, so one move per partition), a
//! bounded number of moves runs at once (`MAX_GROWTH_MOVES_IN_FLIGHT`), and the brokers are
//! picked as for a new topic: new racks first, then the brokers holding the fewest replicas.

use std::collections::{BTreeMap, BTreeSet};

use crate::controller::{Controller, PartitionReassignment, plan_alter_reassignments};
use crate::features::REASSIGNMENT_METADATA_VERSION;
use crate::image::MetadataImage;

/// At most this many internal partitions are being grown at any time.
pub const MAX_GROWTH_MOVES_IN_FLIGHT: usize = 8;

/// The internal topics and the broker settings of their replication factors.
pub const INTERNAL_TOPIC_FACTORS: [(&str, &str); 3] = [
    ("__consumer_offsets", "offsets.topic.replication.factor"),
    (
        "__transaction_state",
        "transaction.state.log.replication.factor",
    ),
    (
        "__share_group_state",
        "share.coordinator.state.topic.replication.factor",
    ),
];

/// The reassignments that grow internal partitions to `targets` (topic name → factor).
pub fn plan_internal_topic_growth(
    image: &MetadataImage,
    targets: &BTreeMap<String, usize>,
) -> Vec<PartitionReassignment> {
    if image.metadata_version() < REASSIGNMENT_METADATA_VERSION {
        return Vec::new();
    }
    let below = |name: &String, target: &usize| {
        image.topic_by_name(name).is_some_and(|t| {
            t.partitions
                .iter()
                .any(|p| !p.is_reassigning() && p.replicas.len() < *target)
        })
    };
    if !targets.iter().any(|(name, target)| below(name, target)) {
        return Vec::new();
    }
    let unfenced: Vec<i32> = image.placement_brokers().iter().map(|b| b.id).collect();
    let mut in_flight = 0;
    let mut load: BTreeMap<i32, usize> = unfenced.iter().map(|b| (*b, 0)).collect();
    for topic in image.topics.values() {
        for p in &topic.partitions {
            for r in &p.replicas {
                if let Some(n) = load.get_mut(r) {
                    *n += 1;
                }
            }
        }
    }
    for name in targets.keys() {
        if let Some(topic) = image.topic_by_name(name) {
            in_flight += topic
                .partitions
                .iter()
                .filter(|p| p.is_reassigning())
                .count();
        }
    }
    let mut moves = Vec::new();
    for (name, target) in targets {
        let Some(topic) = image.topic_by_name(name) else {
            continue;
        };
        for p in &topic.partitions {
            if in_flight + moves.len() >= MAX_GROWTH_MOVES_IN_FLIGHT {
                return moves;
            }
            if p.is_reassigning() || p.replicas.len() >= *target {
                continue;
            }
            let need = target - p.replicas.len();
            let Some(added) = pick_brokers(image, &unfenced, &p.replicas, need, &load) else {
                continue;
            };
            for b in &added {
                if let Some(n) = load.get_mut(b) {
                    *n += 1;
                }
            }
            let mut replicas = p.replicas.clone();
            replicas.extend(added);
            moves.push(PartitionReassignment {
                topic: name.clone(),
                partition: p.partition,
                replicas: Some(replicas),
            });
        }
    }
    moves
}

impl Controller {
    /// The factor each internal topic should have: its broker setting on this controller.
    fn internal_topic_targets(&self) -> BTreeMap<String, usize> {
        INTERNAL_TOPIC_FACTORS
            .iter()
            .filter_map(|(topic, setting)| {
                let factor = self.defaults.effective(setting)?.parse::<usize>().ok()?;
                Some((topic.to_string(), factor))
            })
            .collect()
    }

    /// Starts the moves that grow internal topics (see the module docs). Run by the session
    /// check on the leader; cheap when nothing needs to grow.
    pub(crate) async fn grow_internal_topics(&self) {
        let targets = self.internal_topic_targets();
        if plan_internal_topic_growth(&self.images.borrow(), &targets).is_empty() {
            return;
        }
        let Some((_writer, image, deadline)) =
            self.background_writer("internal topic growth").await
        else {
            return;
        };
        let moves = plan_internal_topic_growth(&image, &targets);
        if moves.is_empty() {
            return;
        }
        let described: Vec<String> = moves
            .iter()
            .map(|m| format!("{}-{} -> {:?}", m.topic, m.partition, m.replicas))
            .collect();
        let outcome = self
            .propose_planned(plan_alter_reassignments(&image, moves, true), deadline)
            .await;
        match outcome.log_index {
            Some(log_index) => tracing::info!(
                log_index,
                moves = ?described,
                "growing internal topics to their configured replication factor"
            ),
            None => tracing::debug!(
                results = ?outcome.results,
                "could not start growing internal topics"
            ),
        }
    }
}

/// `need` unfenced brokers outside `current`: racks not yet used first, then the least loaded,
/// then the lowest id. `None` if there are not enough.
fn pick_brokers(
    image: &MetadataImage,
    unfenced: &[i32],
    current: &[i32],
    need: usize,
    load: &BTreeMap<i32, usize>,
) -> Option<Vec<i32>> {
    let rack_of = |b: &i32| image.brokers.get(b).and_then(|r| r.rack.clone());
    let mut racks: BTreeSet<String> = current.iter().filter_map(rack_of).collect();
    let mut candidates: Vec<i32> = unfenced
        .iter()
        .copied()
        .filter(|b| !current.contains(b))
        .collect();
    if candidates.len() < need {
        return None;
    }
    let mut picked = Vec::with_capacity(need);
    for _ in 0..need {
        let best = candidates.iter().copied().min_by_key(|b| {
            let new_rack = rack_of(b).is_some_and(|r| !racks.contains(&r));
            (!new_rack, load.get(b).copied().unwrap_or(0), *b)
        })?;
        if let Some(r) = rack_of(&best) {
            racks.insert(r);
        }
        candidates.retain(|b| *b != best);
        picked.push(best);
    }
    Some(picked)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::features::METADATA_VERSION;
    use crate::image::ApplyOutcome;
    use crate::records::{MetadataRecord, NO_LEADER};

    /// Brokers 1..=`brokers` (racks from `racks`, cycling), unfenced, at metadata.version 4,
    /// and `__consumer_offsets` with `partitions` partitions on `replicas`.
    fn image(brokers: i32, racks: &[&str], replicas: &[i32], partitions: i32) -> MetadataImage {
        let mut image = MetadataImage::empty("c");
        let mut apply = |r: MetadataRecord| assert_eq!(image.apply(&r), ApplyOutcome::Applied);
        apply(MetadataRecord::FeatureLevel {
            name: METADATA_VERSION.into(),
            level: REASSIGNMENT_METADATA_VERSION,
        });
        for id in 1..=brokers {
            let rack = (!racks.is_empty())
                .then(|| racks[usize::try_from(id - 1).unwrap_or(0) % racks.len()].to_string());
            apply(MetadataRecord::RegisterBroker {
                log_dirs: Vec::new(),
                broker_id: id,
                incarnation_id: Uuid::from_u128(id as u128),
                broker_epoch: 1,
                listeners: Vec::new(),
                rack,
                supported_features: None,
            });
            apply(MetadataRecord::UnfenceBroker {
                broker_id: id,
                broker_epoch: 1,
            });
        }
        let topic_id = Uuid::from_u128(0xc0);
        apply(MetadataRecord::Topic {
            name: "__consumer_offsets".into(),
            topic_id,
        });
        for partition in 0..partitions {
            apply(MetadataRecord::Partition {
                topic_id,
                partition,
                replicas: replicas.to_vec(),
                isr: replicas.to_vec(),
                leader: replicas.first().copied().unwrap_or(NO_LEADER),
                leader_epoch: 0,
                partition_epoch: 0,
            });
        }
        image
    }

    fn targets(rf: usize) -> BTreeMap<String, usize> {
        BTreeMap::from([("__consumer_offsets".to_string(), rf)])
    }

    fn planned(moves: &[PartitionReassignment]) -> Vec<(i32, Vec<i32>)> {
        moves
            .iter()
            .map(|m| (m.partition, m.replicas.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn grows_only_to_the_full_factor_and_only_when_enough_brokers_are_up() {
        // One broker: nowhere to grow.
        assert!(plan_internal_topic_growth(&image(1, &[], &[1], 2), &targets(3)).is_empty());
        // Two brokers, factor 3: not halfway.
        assert!(plan_internal_topic_growth(&image(2, &[], &[1], 2), &targets(3)).is_empty());
        // Three: each partition gets both others, the leader first as before.
        assert_eq!(
            planned(&plan_internal_topic_growth(
                &image(3, &[], &[1], 2),
                &targets(3)
            )),
            vec![(0, vec![1, 2, 3]), (1, vec![1, 2, 3])]
        );
        // Already at the factor, or the factor is 1: nothing.
        assert!(plan_internal_topic_growth(&image(3, &[], &[1, 2, 3], 2), &targets(3)).is_empty());
        assert!(plan_internal_topic_growth(&image(3, &[], &[1], 2), &targets(1)).is_empty());
    }

    #[test]
    fn new_racks_first_then_the_least_loaded_broker() {
        // Factor 2 on four brokers: rack-a = {1, 3}, rack-b = {2, 4}. Partition 0 on 1 gets a
        // rack-b broker (2, lower id); partition 1 then gets 4 (2 carries more now).
        let moves = plan_internal_topic_growth(&image(4, &["a", "b"], &[1], 2), &targets(2));
        assert_eq!(planned(&moves), vec![(0, vec![1, 2]), (1, vec![1, 4])]);
    }

    #[test]
    fn moves_in_flight_are_bounded_and_running_ones_left_alone() {
        let image = image(3, &[], &[1], 20);
        let moves = plan_internal_topic_growth(&image, &targets(3));
        assert_eq!(moves.len(), MAX_GROWTH_MOVES_IN_FLIGHT);
        // Start them: the next plan adds none until some complete.
        let mut started = image.clone();
        let records: Vec<MetadataRecord> =
            crate::controller::plan_alter_reassignments(&started, moves, true)
                .into_iter()
                .flat_map(|planned| planned.map(|(_, records)| records).unwrap_or_default())
                .collect();
        started.apply_batch(started.last_applied_index + 1, &records);
        assert!(plan_internal_topic_growth(&started, &targets(3)).is_empty());
    }

    #[test]
    fn nothing_below_the_reassignment_metadata_version() {
        let mut image = image(3, &[], &[1], 2);
        image.finalized_features.insert(METADATA_VERSION.into(), 3);
        assert!(plan_internal_topic_growth(&image, &targets(3)).is_empty());
    }
}
