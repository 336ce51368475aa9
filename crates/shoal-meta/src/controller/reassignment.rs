//! Planning partition reassignment (KIP-455, KRaft's `ReplicationControlManager`
//! `alterPartitionReassignment` and `PartitionReassignmentReplicas`).
//!
//! **How a move runs.** Asked to move a partition from replicas `R` to a target `T`, the
//! controller commits one change: `replicas = T ++ (R − T)`, `adding = T − R`,
//! `removing = R − T`. Brokers in `adding` open an empty log and fetch from the leader like any
//! follower; the leader adds each to the ISR once caught up (AlterPartition). As soon as every
//! adding replica is in the ISR, the move completes in one more change: `replicas = T`, the ISR
//! loses the removed replicas, and if the leader is leaving the first in-sync target replica
//! that is unfenced leads (new leader epoch). Removed brokers then drop the partition and
//! delete its log (they see themselves gone from `replicas`).
//!
//! **Why it is safe.** Nothing leaves the ISR or the replicas before its replacement holds
//! every committed record: completion requires the whole target-side ISR non-empty and every
//! adding replica in it, and a new leader is elected only from that ISR. The state is in the
//! metadata image (`adding_replicas` / `removing_replicas`), not in the controller's memory,
//! so a move survives a controller failover: the next active controller completes it from the
//! image ([`plan_complete_reassignments`], run after every ISR change and on the session
//! check tick).
//!
//! **Cancelling** (a `None` target) restores the replicas without the adding ones, in their
//! order, and the ISR without them; refused if that would leave no in-sync replica (Kafka:
//! it would need an unclean election).
//!
//! A new target while a move runs replaces it, computed against the current replicas (all of
//! them, adding included), as KRaft does.

use crate::controller::plan::{Planned, plan_in_order, reject_duplicates};
use crate::controller::requests::PartitionReassignment;
use crate::error::ControllerError;
use crate::features::REASSIGNMENT_METADATA_VERSION;
use crate::image::{MetadataImage, PartitionImage, TopicImage};
use crate::records::{MetadataRecord, NO_LEADER};

/// One result per item, in order (Kafka's AlterPartitionReassignments). With
/// `allow_replication_factor_change` false (KIP-860) a target of another length is refused.
pub fn plan_alter_reassignments(
    image: &MetadataImage,
    items: Vec<PartitionReassignment>,
    allow_replication_factor_change: bool,
) -> Vec<Planned<()>> {
    if image.metadata_version() < REASSIGNMENT_METADATA_VERSION {
        let why = format!(
            "Partition reassignment needs metadata.version {REASSIGNMENT_METADATA_VERSION}; this \
             cluster is at {} (raise it with UpdateFeatures).",
            image.metadata_version()
        );
        return items
            .iter()
            .map(|_| Err(ControllerError::UnsupportedVersion(why.clone())))
            .collect();
    }
    let items = reject_duplicates(
        items,
        |i| format!("{}-{}", i.topic, i.partition),
        "partition",
    );
    plan_in_order(image, items, |image, item| {
        plan_one(image, item, allow_replication_factor_change)
    })
}

fn plan_one(
    image: &MetadataImage,
    item: PartitionReassignment,
    allow_replication_factor_change: bool,
) -> Planned<()> {
    let unknown =
        || ControllerError::UnknownTopicOrPartition(format!("{}-{}", item.topic, item.partition));
    let topic = image.topic_by_name(&item.topic).ok_or_else(unknown)?;
    let p = topic.partition(item.partition).ok_or_else(unknown)?;
    let next = match item.replicas {
        None => cancelled(image, topic, p)?,
        Some(target) => {
            validate_target(image, &item.topic, item.partition, &target)?;
            let current_rf = p.target_replicas().len();
            if !allow_replication_factor_change && target.len() != current_rf {
                return Err(ControllerError::InvalidReplicationFactor(format!(
                    "The replication factor of {}-{} is {current_rf}; the target {target:?} \
                     would change it, and the request does not allow that.",
                    item.topic, item.partition
                )));
            }
            let started = started(p, &target);
            completed(image, &started).unwrap_or(started)
        }
    };
    Ok(((), change_record(topic, p, &next).into_iter().collect()))
}

/// A target is non-empty, without duplicates, and only of registered brokers. Unlike a new
/// topic's, it may name a fenced broker (as Kafka allows): a move to a broker that is down for
/// a moment waits for it instead of failing; the data stays where it is until it catches up.
fn validate_target(
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    target: &[i32],
) -> Result<(), ControllerError> {
    let invalid = |why: String| {
        Err(ControllerError::InvalidReplicaAssignment(format!(
            "The reassignment of {topic}-{partition} to {target:?} {why}."
        )))
    };
    if target.is_empty() {
        return invalid("is an empty replica list".to_string());
    }
    for (i, broker) in target.iter().enumerate() {
        if target[..i].contains(broker) {
            return invalid(format!("includes broker {broker} more than once"));
        }
        if !image.brokers.contains_key(broker) {
            return invalid(format!(
                "includes broker {broker}, but no such broker is registered"
            ));
        }
    }
    Ok(())
}

/// The state right after a move to `target` begins (KRaft's `PartitionReassignmentReplicas`).
fn started(p: &PartitionImage, target: &[i32]) -> PartitionImage {
    let leaving: Vec<i32> = p
        .replicas
        .iter()
        .copied()
        .filter(|id| !target.contains(id))
        .collect();
    let adding: Vec<i32> = target
        .iter()
        .copied()
        .filter(|id| !p.replicas.contains(id))
        .collect();
    PartitionImage {
        replicas: target
            .iter()
            .copied()
            .chain(leaving.iter().copied())
            .collect(),
        adding_replicas: adding,
        removing_replicas: leaving,
        ..p.clone()
    }
}

/// The state after cancelling the move in progress.
fn cancelled(
    image: &MetadataImage,
    topic: &TopicImage,
    p: &PartitionImage,
) -> Result<PartitionImage, ControllerError> {
    if !p.is_reassigning() {
        return Err(ControllerError::NoReassignmentInProgress(format!(
            "No partition reassignment is in progress for {}-{}.",
            topic.name, p.partition
        )));
    }
    let replicas = p.original_replicas();
    let isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|id| replicas.contains(id))
        .collect();
    let leader = leader_among(image, p.leader, &replicas, &isr);
    if leader == NO_LEADER {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "Unable to revert the reassignment of {}-{}: no live in-sync replica of the original \
             replicas {replicas:?} is left (ISR {:?}); it would need an unclean leader election.",
            topic.name, p.partition, p.isr
        )));
    }
    Ok(settled(p, replicas, isr, leader))
}

/// The completed state of `p`'s move, if it can complete now: every adding replica is in the
/// ISR, the ISR without the removed replicas is not empty, and a live member of it can lead.
pub fn completed(image: &MetadataImage, p: &PartitionImage) -> Option<PartitionImage> {
    if !p.is_reassigning() {
        return None;
    }
    let isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|id| !p.removing_replicas.contains(id))
        .collect();
    if isr.is_empty() || !p.adding_replicas.iter().all(|id| isr.contains(id)) {
        return None;
    }
    let replicas = p.target_replicas();
    let leader = leader_among(image, p.leader, &replicas, &isr);
    if leader == NO_LEADER {
        return None;
    }
    Some(settled(p, replicas, isr, leader))
}

/// `p` with no move in progress: these replicas, ISR and leader.
fn settled(p: &PartitionImage, replicas: Vec<i32>, isr: Vec<i32>, leader: i32) -> PartitionImage {
    PartitionImage {
        replicas,
        isr,
        leader,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
        ..p.clone()
    }
}

/// The current leader if it stays in sync, else the first live in-sync one of `replicas`.
fn leader_among(image: &MetadataImage, current: i32, replicas: &[i32], isr: &[i32]) -> i32 {
    if isr.contains(&current) {
        current
    } else {
        first_live_in_sync(image, replicas, isr)
    }
}

/// The first of `replicas` (their order is the election preference) in `isr` and unfenced.
fn first_live_in_sync(image: &MetadataImage, replicas: &[i32], isr: &[i32]) -> i32 {
    replicas
        .iter()
        .copied()
        .find(|id| isr.contains(id) && image.brokers.get(id).is_some_and(|b| !b.fenced))
        .unwrap_or(NO_LEADER)
}

/// The PartitionChange taking `p` to `next` (fields that differ only), or none if equal.
fn change_record(
    topic: &TopicImage,
    p: &PartitionImage,
    next: &PartitionImage,
) -> Option<MetadataRecord> {
    let differs = |a: &Vec<i32>, b: &Vec<i32>| (a != b).then(|| b.clone());
    let record = MetadataRecord::PartitionChange {
        topic_id: topic.id,
        partition: p.partition,
        leader: (next.leader != p.leader).then_some(next.leader),
        isr: differs(&p.isr, &next.isr),
        replicas: differs(&p.replicas, &next.replicas),
        adding_replicas: differs(&p.adding_replicas, &next.adding_replicas),
        removing_replicas: differs(&p.removing_replicas, &next.removing_replicas),
    };
    match &record {
        MetadataRecord::PartitionChange {
            leader: None,
            isr: None,
            replicas: None,
            adding_replicas: None,
            removing_replicas: None,
            ..
        } => None,
        _ => Some(record),
    }
}

/// The changes that complete every move that can complete now (see [`completed`]): run by
/// the active controller after an ISR change and periodically, so a move whose last replica
/// caught up under another controller still completes.
pub fn plan_complete_reassignments(image: &MetadataImage) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics.values() {
        for p in topic.partitions.iter().filter(|p| p.is_reassigning()) {
            if let Some(next) = completed(image, p) {
                records.extend(change_record(topic, p, &next));
            }
        }
    }
    records
}

/// The partitions being moved, for ListPartitionReassignments: (topic, partition image), in
/// topic name then partition order; `filter` limits them to the (topic, partition)s named.
pub fn reassignments_in_progress<'a>(
    image: &'a MetadataImage,
    filter: Option<&[(String, i32)]>,
) -> Vec<(&'a str, &'a PartitionImage)> {
    let mut out = Vec::new();
    for (name, id) in &image.topic_ids_by_name {
        let Some(topic) = image.topic(id) else {
            continue;
        };
        for p in topic.partitions.iter().filter(|p| p.is_reassigning()) {
            let named =
                filter.is_none_or(|f| f.iter().any(|(t, i)| t == name && *i == p.partition));
            if named {
                out.push((name.as_str(), p));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::test_images::{TOPIC_ID, image_with};
    use crate::features::METADATA_VERSION;
    use crate::image::ApplyOutcome;

    /// Brokers 1-5 (those in `fenced` fenced) at metadata.version 4; topic "t" with the
    /// partitions given as (replicas, ISR, leader).
    fn image(fenced: &[i32], partitions: &[(&[i32], &[i32], i32)]) -> MetadataImage {
        let mut image = image_with(5, fenced, partitions);
        assert_eq!(
            image.apply(&MetadataRecord::FeatureLevel {
                name: METADATA_VERSION.into(),
                level: REASSIGNMENT_METADATA_VERSION,
            }),
            ApplyOutcome::Applied
        );
        image
    }

    fn item(partition: i32, replicas: Option<&[i32]>) -> PartitionReassignment {
        PartitionReassignment {
            topic: "t".into(),
            partition,
            replicas: replicas.map(<[i32]>::to_vec),
        }
    }

    /// Plans `items` and applies the records; the results and the image after.
    fn run(
        image: &MetadataImage,
        items: Vec<PartitionReassignment>,
    ) -> (Vec<Result<usize, ControllerError>>, MetadataImage) {
        let mut after = image.clone();
        let results = plan_alter_reassignments(image, items, true)
            .into_iter()
            .map(|planned| {
                planned.map(|((), records)| {
                    for r in &records {
                        assert_eq!(after.apply(r), ApplyOutcome::Applied, "{r:?}");
                    }
                    records.len()
                })
            })
            .collect();
        (results, after)
    }

    /// (replicas, ISR, leader, adding, removing) of partition `i`.
    type State = (Vec<i32>, Vec<i32>, i32, Vec<i32>, Vec<i32>);

    fn state(image: &MetadataImage, i: usize) -> State {
        let p = &image.topic(&TOPIC_ID).unwrap().partitions[i];
        (
            p.replicas.clone(),
            p.isr.clone(),
            p.leader,
            p.adding_replicas.clone(),
            p.removing_replicas.clone(),
        )
    }

    /// The ISR change the leader would propose once `joined` caught up.
    fn isr_joins(image: &mut MetadataImage, joined: &[i32]) {
        let p = &image.topic(&TOPIC_ID).unwrap().partitions[0];
        let mut isr = p.isr.clone();
        isr.extend_from_slice(joined);
        let record = MetadataRecord::PartitionChange {
            topic_id: TOPIC_ID,
            partition: 0,
            leader: None,
            isr: Some(isr),
            replicas: None,
            adding_replicas: None,
            removing_replicas: None,
        };
        assert_eq!(image.apply(&record), ApplyOutcome::Applied);
    }

    fn complete(image: &mut MetadataImage) -> usize {
        let records = plan_complete_reassignments(image);
        for r in &records {
            assert_eq!(image.apply(r), ApplyOutcome::Applied);
        }
        records.len()
    }

    #[test]
    fn a_move_starts_catches_up_and_completes_with_the_leader_moving_off() {
        let image = image(&[], &[(&[1, 2, 3], &[1, 2, 3], 1)]);
        let (results, mut after) = run(&image, vec![item(0, Some(&[4, 5, 3]))]);
        assert_eq!(results, vec![Ok(1)]);
        assert_eq!(
            state(&after, 0),
            (
                vec![4, 5, 3, 1, 2],
                vec![1, 2, 3],
                1,
                vec![4, 5],
                vec![1, 2]
            )
        );
        // Not complete until every adding replica is in sync.
        isr_joins(&mut after, &[4]);
        assert_eq!(complete(&mut after), 0);
        let leader_epoch = after.topic(&TOPIC_ID).unwrap().partitions[0].leader_epoch;
        isr_joins(&mut after, &[5]);
        assert_eq!(complete(&mut after), 1);
        assert_eq!(
            state(&after, 0),
            (vec![4, 5, 3], vec![3, 4, 5], 4, vec![], vec![])
        );
        let p = &after.topic(&TOPIC_ID).unwrap().partitions[0];
        assert_eq!(
            p.leader_epoch,
            leader_epoch + 1,
            "a new leader, a new epoch"
        );
        assert_eq!(complete(&mut after), 0, "nothing left to complete");
    }

    #[test]
    fn a_staying_leader_keeps_its_epoch_when_the_move_completes() {
        let image = image(&[], &[(&[1, 2, 3], &[1, 2, 3], 1)]);
        let (_, mut after) = run(&image, vec![item(0, Some(&[1, 4, 3]))]);
        assert_eq!(
            state(&after, 0),
            (vec![1, 4, 3, 2], vec![1, 2, 3], 1, vec![4], vec![2])
        );
        let epoch = after.topic(&TOPIC_ID).unwrap().partitions[0].leader_epoch;
        isr_joins(&mut after, &[4]);
        assert_eq!(complete(&mut after), 1);
        assert_eq!(
            state(&after, 0),
            (vec![1, 4, 3], vec![1, 3, 4], 1, vec![], vec![])
        );
        assert_eq!(
            after.topic(&TOPIC_ID).unwrap().partitions[0].leader_epoch,
            epoch
        );
    }

    #[test]
    fn a_target_already_in_sync_completes_at_once() {
        // Shrinking the replication factor, and reordering (a new preferred leader).
        let image = image(&[], &[(&[1, 2, 3], &[1, 2, 3], 1), (&[1, 2], &[1, 2], 1)]);
        let (results, after) = run(&image, vec![item(0, Some(&[3, 2])), item(1, Some(&[2, 1]))]);
        assert_eq!(results, vec![Ok(1), Ok(1)]);
        assert_eq!(
            state(&after, 0),
            (vec![3, 2], vec![2, 3], 3, vec![], vec![])
        );
        assert_eq!(
            state(&after, 1),
            (vec![2, 1], vec![1, 2], 1, vec![], vec![])
        );
        // The same target again changes nothing.
        let (results, _) = run(&after, vec![item(1, Some(&[2, 1]))]);
        assert_eq!(results, vec![Ok(0)]);
    }

    #[test]
    fn a_move_waits_while_no_in_sync_target_replica_can_lead() {
        let image = image(&[], &[(&[1, 2], &[1, 2], 1)]);
        let (_, mut after) = run(&image, vec![item(0, Some(&[3]))]);
        isr_joins(&mut after, &[3]);
        // Broker 3 is fenced before the move completes: it cannot take over.
        assert_eq!(
            after.apply(&MetadataRecord::FenceBroker {
                broker_id: 3,
                broker_epoch: 1
            }),
            ApplyOutcome::Applied
        );
        assert_eq!(complete(&mut after), 0);
        assert_eq!(state(&after, 0).3, vec![3], "still moving");
    }

    #[test]
    fn cancelling_restores_the_original_replicas() {
        let image = image(&[], &[(&[1, 2, 3], &[1, 2, 3], 1)]);
        let (_, mut moving) = run(&image, vec![item(0, Some(&[4, 5, 3]))]);
        isr_joins(&mut moving, &[4]);
        let (results, after) = run(&moving, vec![item(0, None)]);
        assert_eq!(results, vec![Ok(1)]);
        // Kafka's revert: the replicas without the adding ones, in their current order.
        assert_eq!(
            state(&after, 0),
            (vec![3, 1, 2], vec![1, 2, 3], 1, vec![], vec![])
        );
        // Nothing to cancel now.
        let (results, _) = run(&after, vec![item(0, None)]);
        assert!(matches!(
            results[0],
            Err(ControllerError::NoReassignmentInProgress(_))
        ));
    }

    #[test]
    fn a_move_to_a_fenced_broker_waits_for_it() {
        let image = image(&[4], &[(&[1, 2], &[1, 2], 1)]);
        let (results, mut after) = run(&image, vec![item(0, Some(&[4, 2]))]);
        assert_eq!(results, vec![Ok(1)]);
        assert_eq!(complete(&mut after), 0);
        assert_eq!(
            state(&after, 0),
            (vec![4, 2, 1], vec![1, 2], 1, vec![4], vec![1])
        );
        // Back and caught up: it joins the ISR, then leads as the first in-sync target.
        assert_eq!(
            after.apply(&MetadataRecord::UnfenceBroker {
                broker_id: 4,
                broker_epoch: 1
            }),
            ApplyOutcome::Applied
        );
        isr_joins(&mut after, &[4]);
        assert_eq!(complete(&mut after), 1);
        assert_eq!(
            state(&after, 0),
            (vec![4, 2], vec![2, 4], 4, vec![], vec![])
        );
    }

    #[test]
    fn a_cancel_that_needs_an_unclean_election_is_refused() {
        // Moving 1 → 2; 2 caught up, then 1 left the ISR (it failed): only 2 is in sync.
        let image = image(&[], &[(&[1], &[1], 1)]);
        let (_, mut moving) = run(&image, vec![item(0, Some(&[2, 3]))]);
        isr_joins(&mut moving, &[2]);
        let record = MetadataRecord::PartitionChange {
            topic_id: TOPIC_ID,
            partition: 0,
            leader: Some(2),
            isr: Some(vec![2]),
            replicas: None,
            adding_replicas: None,
            removing_replicas: None,
        };
        assert_eq!(moving.apply(&record), ApplyOutcome::Applied);
        let (results, after) = run(&moving, vec![item(0, None)]);
        assert!(
            matches!(&results[0], Err(ControllerError::InvalidReplicaAssignment(m)) if m.contains("unclean")),
            "{results:?}"
        );
        assert_eq!(state(&after, 0), state(&moving, 0), "nothing changed");
    }

    #[test]
    fn a_new_target_replaces_the_move_in_progress() {
        let image = image(&[], &[(&[1, 2], &[1, 2], 1)]);
        let (_, moving) = run(&image, vec![item(0, Some(&[3, 4]))]);
        let (results, after) = run(&moving, vec![item(0, Some(&[1, 5]))]);
        assert_eq!(results, vec![Ok(1)]);
        // Against all current replicas, as KRaft computes it.
        assert_eq!(
            state(&after, 0),
            (vec![1, 5, 3, 4, 2], vec![1, 2], 1, vec![5], vec![3, 4, 2])
        );
    }

    #[test]
    fn bad_targets_are_refused_and_change_nothing() {
        let image = image(&[], &[(&[1, 2, 3], &[1, 2, 3], 1)]);
        type Expected = fn(&ControllerError) -> bool;
        let cases: Vec<(PartitionReassignment, Expected)> = vec![
            (item(0, Some(&[])), |e| {
                matches!(e, ControllerError::InvalidReplicaAssignment(_))
            }),
            (item(0, Some(&[1, 1, 2])), |e| {
                matches!(e, ControllerError::InvalidReplicaAssignment(_))
            }),
            (item(0, Some(&[1, 9])), |e| {
                matches!(e, ControllerError::InvalidReplicaAssignment(_))
            }),
            (item(7, Some(&[1])), |e| {
                matches!(e, ControllerError::UnknownTopicOrPartition(_))
            }),
            (
                PartitionReassignment {
                    topic: "nope".into(),
                    partition: 0,
                    replicas: Some(vec![1]),
                },
                |e| matches!(e, ControllerError::UnknownTopicOrPartition(_)),
            ),
        ];
        for (case, expected) in cases {
            let (results, after) = run(&image, vec![case.clone()]);
            assert!(
                results[0].as_ref().is_err_and(expected),
                "{case:?}: {results:?}"
            );
            assert_eq!(after, image, "{case:?} changed the image");
        }
        // The same partition twice in one request: both refused.
        let (results, _) = run(&image, vec![item(0, Some(&[1])), item(0, Some(&[2]))]);
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(ControllerError::InvalidRequest(_))))
        );
        // KIP-860: the replication factor may be kept fixed.
        let planned = plan_alter_reassignments(&image, vec![item(0, Some(&[1, 2]))], false);
        assert!(matches!(
            planned[0],
            Err(ControllerError::InvalidReplicationFactor(_))
        ));
        assert!(
            plan_alter_reassignments(&image, vec![item(0, Some(&[2, 3, 4]))], false)[0].is_ok()
        );
    }

    #[test]
    fn a_cluster_below_metadata_version_4_cannot_reassign() {
        let image = image_with(3, &[], &[(&[1], &[1], 1)]);
        let planned = plan_alter_reassignments(&image, vec![item(0, Some(&[2]))], true);
        assert!(
            matches!(&planned[0], Err(ControllerError::UnsupportedVersion(m)) if m.contains("metadata.version 4")),
            "{planned:?}"
        );
    }

    #[test]
    fn in_progress_moves_are_listed_by_topic_and_partition() {
        let image = image(&[], &[(&[1], &[1], 1), (&[2], &[2], 2), (&[3], &[3], 3)]);
        let (_, moving) = run(&image, vec![item(2, Some(&[4])), item(0, Some(&[5]))]);
        let listed: Vec<(String, i32)> = reassignments_in_progress(&moving, None)
            .into_iter()
            .map(|(t, p)| (t.to_string(), p.partition))
            .collect();
        assert_eq!(listed, vec![("t".to_string(), 0), ("t".to_string(), 2)]);
        let only = [("t".to_string(), 2), ("t".to_string(), 1)];
        let listed = reassignments_in_progress(&moving, Some(&only));
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].1.adding_replicas, vec![4]);
    }
}
