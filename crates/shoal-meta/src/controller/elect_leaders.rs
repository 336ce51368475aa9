//! Planning ElectLeaders (`kafka-leader-election.sh`): an operator moving leadership back to
//! preferred replicas after failovers, or, for a partition left without any leader, electing
//! one uncleanly by hand instead of enabling unclean election for the whole topic.
//!
//! Preferred elections are always clean: the preferred replica must be unfenced and in the
//! ISR, so it holds every committed record. An unclean election still prefers an in-sync
//! replica; only when none is live does it take the first live replica, whose log becomes
//! the truth (what it lacks is lost) and whose ISR is just itself.

use crate::controller::fence_broker::choose_leader;
use crate::controller::plan::{Planned, plan_in_order, reject_duplicates};
use crate::controller::requests::ElectionType;
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::records::{MetadataRecord, NO_LEADER};

/// One result per (topic, partition), in order: the partition's leader after the election.
pub fn plan_elect_leaders(
    image: &MetadataImage,
    election: ElectionType,
    partitions: Vec<(String, i32)>,
) -> Vec<Planned<i32>> {
    let items = reject_duplicates(partitions, |(t, p)| format!("{t}-{p}"), "partition");
    plan_in_order(image, items, |image, (topic, partition)| {
        plan_one(image, election, &topic, partition)
    })
}

fn plan_one(
    image: &MetadataImage,
    election: ElectionType,
    topic_name: &str,
    partition: i32,
) -> Planned<i32> {
    let unknown = || ControllerError::UnknownTopicOrPartition(format!("{topic_name}-{partition}"));
    let topic = image.topic_by_name(topic_name).ok_or_else(unknown)?;
    let p = topic.partition(partition).ok_or_else(unknown)?;
    let live = |id: i32| image.brokers.get(&id).is_some_and(|b| !b.fenced);
    let change = |leader: i32, isr: Option<Vec<i32>>| MetadataRecord::PartitionChange {
        topic_id: topic.id,
        partition,
        leader: Some(leader),
        isr,
        replicas: None,
        adding_replicas: None,
        removing_replicas: None,
    };
    match election {
        ElectionType::Preferred => {
            let preferred = *p.replicas.first().ok_or_else(unknown)?;
            if p.leader == preferred {
                return Err(ControllerError::ElectionNotNeeded(format!(
                    "{topic_name}-{partition}: the preferred replica {preferred} already leads"
                )));
            }
            if !live(preferred) || !p.isr.contains(&preferred) {
                return Err(ControllerError::PreferredLeaderNotAvailable(format!(
                    "{topic_name}-{partition}: the preferred replica {preferred} is {}",
                    if live(preferred) {
                        "not in the ISR"
                    } else {
                        "fenced or not registered"
                    }
                )));
            }
            Ok((preferred, vec![change(preferred, None)]))
        }
        ElectionType::Unclean => {
            if p.leader != NO_LEADER {
                return Err(ControllerError::ElectionNotNeeded(format!(
                    "{topic_name}-{partition} has a leader ({})",
                    p.leader
                )));
            }
            let clean = choose_leader(p, &p.isr, live);
            if clean != NO_LEADER {
                return Ok((clean, vec![change(clean, None)]));
            }
            match p.replicas.iter().copied().find(|id| live(*id)) {
                Some(leader) => {
                    tracing::warn!(topic = topic_name, partition, leader, isr = ?p.isr,
                        "unclean leader election requested: a replica outside the ISR leads");
                    Ok((leader, vec![change(leader, Some(vec![leader]))]))
                }
                None => Err(ControllerError::EligibleLeadersNotAvailable(format!(
                    "{topic_name}-{partition}: no replica of {:?} is live",
                    p.replicas
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ApplyOutcome;

    fn image(partitions: &[(&[i32], &[i32], i32)], fenced: &[i32]) -> MetadataImage {
        crate::controller::test_images::image_with(3, fenced, partitions)
    }

    fn run(
        image: &MetadataImage,
        election: ElectionType,
        partition: i32,
    ) -> (Result<i32, ControllerError>, MetadataImage) {
        let mut planned = plan_elect_leaders(image, election, vec![("t".into(), partition)]);
        let mut after = image.clone();
        let result = match planned.remove(0) {
            Ok((leader, records)) => {
                for r in &records {
                    assert_eq!(after.apply(r), ApplyOutcome::Applied);
                }
                Ok(leader)
            }
            Err(e) => Err(e),
        };
        (result, after)
    }

    fn leader_and_isr(image: &MetadataImage, p: usize) -> (i32, Vec<i32>) {
        let part = &image
            .topic_by_name("t")
            .map(|t| t.partitions[p].clone())
            .unwrap_or_else(|| unreachable!());
        (part.leader, part.isr.clone())
    }

    #[test]
    fn preferred_election_moves_leadership_back_when_the_preferred_replica_is_in_sync() {
        let img = image(&[(&[1, 2, 3], &[1, 2, 3], 2)], &[]);
        let (result, after) = run(&img, ElectionType::Preferred, 0);
        assert_eq!(result, Ok(1));
        assert_eq!(leader_and_isr(&after, 0), (1, vec![1, 2, 3]));
    }

    #[test]
    fn preferred_election_is_refused_when_not_needed_or_not_clean() {
        let img = image(
            &[
                (&[1, 2, 3], &[1, 2, 3], 1),
                (&[1, 2, 3], &[2, 3], 2),
                (&[3, 1, 2], &[3, 1, 2], 1),
            ],
            &[3],
        );
        assert!(matches!(
            run(&img, ElectionType::Preferred, 0).0,
            Err(ControllerError::ElectionNotNeeded(_))
        ));
        // Out of the ISR: electing it could lose committed records.
        assert!(matches!(
            run(&img, ElectionType::Preferred, 1).0,
            Err(ControllerError::PreferredLeaderNotAvailable(_))
        ));
        // Fenced.
        assert!(matches!(
            run(&img, ElectionType::Preferred, 2).0,
            Err(ControllerError::PreferredLeaderNotAvailable(_))
        ));
        assert!(matches!(
            run(&img, ElectionType::Preferred, 9).0,
            Err(ControllerError::UnknownTopicOrPartition(_))
        ));
    }

    #[test]
    fn unclean_election_prefers_an_in_sync_replica_then_any_live_one() {
        // Leaderless, the ISR's only member (1) fenced, 2 live but out of sync.
        let img = image(
            &[
                (&[1, 2, 3], &[1], NO_LEADER),
                (&[1, 2, 3], &[1, 3], NO_LEADER),
            ],
            &[1],
        );
        let (result, after) = run(&img, ElectionType::Unclean, 0);
        assert_eq!(result, Ok(2));
        assert_eq!(leader_and_isr(&after, 0), (2, vec![2]));
        // An in-sync replica (3) is live: that one, and the ISR is kept.
        let (result, after) = run(&img, ElectionType::Unclean, 1);
        assert_eq!(result, Ok(3));
        assert_eq!(leader_and_isr(&after, 1), (3, vec![1, 3]));
    }

    #[test]
    fn unclean_election_needs_a_leaderless_partition_and_a_live_replica() {
        let img = image(
            &[(&[1, 2, 3], &[1, 2, 3], 1), (&[1, 2], &[1], NO_LEADER)],
            &[1, 2],
        );
        assert!(matches!(
            run(&img, ElectionType::Unclean, 0).0,
            Err(ControllerError::ElectionNotNeeded(_))
        ));
        assert!(matches!(
            run(&img, ElectionType::Unclean, 1).0,
            Err(ControllerError::EligibleLeadersNotAvailable(_))
        ));
    }
}
