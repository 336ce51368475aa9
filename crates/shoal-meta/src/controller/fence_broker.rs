//! Planning what fencing and unfencing a broker do to partitions (KRaft's `handleBrokerFenced`
//! / `handleBrokerUnfenced`).
//!
//! **Fencing** moves every role the broker has: for each partition it leads, a new leader is
//! the first replica (preferred order = replica order) that is in the ISR without the fenced
//! broker and is itself unfenced, or [`NO_LEADER`] if there is none; and the broker leaves the
//! ISR of every partition, unless it is the last member (as KRaft does: an ISR never becomes
//! empty, so the last member can later be elected cleanly). A `PartitionChange` with a leader
//! bumps the leader epoch, every one bumps the partition epoch (see `image`). The whole result is
//! proposed as ONE Raft entry with the FenceBroker record, so no observer ever sees a fenced
//! broker still leading.
//!
//! **Unfencing** gives leaderless partitions whose ISR contains the broker a leader again (a
//! partition left with NO_LEADER when its last ISR member was fenced recovers when it returns).
//!
//! **Unclean election** (`unclean.leader.election.enable=true` for the topic, an explicit
//! opt-in as in Kafka): when no in-sync replica can lead, an unfenced replica outside the ISR
//! leads instead, with an ISR of itself alone. It may lack acknowledged records; that is the
//! trade the topic opted into (availability over durability). `unclean` says, per topic,
//! whether it is allowed.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::image::{MetadataImage, PartitionImage, TopicImage};
use crate::records::{MetadataRecord, NO_LEADER};

/// Whether a topic allows unclean leader election.
pub type UncleanPolicy<'a> = &'a dyn Fn(&TopicImage) -> bool;

/// No topic allows unclean election (tests, and callers that must never elect uncleanly).
pub fn never_unclean(_: &TopicImage) -> bool {
    false
}

/// FenceBroker for `broker_id` at `broker_epoch`, followed by the partition changes.
pub fn plan_fence_broker(
    image: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
    unclean: UncleanPolicy<'_>,
) -> Vec<MetadataRecord> {
    let mut records = vec![MetadataRecord::FenceBroker {
        broker_id,
        broker_epoch,
    }];
    records.extend(plan_remove_broker_from_partitions(
        image, broker_id, unclean,
    ));
    records
}

/// The PartitionChange records that take leadership and ISR membership away from
/// `broker_id` (used by fencing and by the re-registration of a new incarnation).
pub fn plan_remove_broker_from_partitions(
    image: &MetadataImage,
    broker_id: i32,
    unclean: UncleanPolicy<'_>,
) -> Vec<MetadataRecord> {
    plan_remove_broker_where(image, broker_id, unclean, |_, _| true, |_, _, _| true)
}

/// [`plan_remove_broker_from_partitions`] limited to the partitions `applies_to(topic_id,
/// partition)` selects, electing only replicas that are unfenced, not `broker_id`, and
/// `can_lead(broker, topic_id, partition)`.
pub fn plan_remove_broker_where(
    image: &MetadataImage,
    broker_id: i32,
    unclean: UncleanPolicy<'_>,
    applies_to: impl Fn(Uuid, i32) -> bool,
    can_lead: impl Fn(i32, Uuid, i32) -> bool,
) -> Vec<MetadataRecord> {
    remove_broker(image, broker_id, unclean, applies_to, can_lead, true)
}

/// Like [`plan_remove_broker_from_partitions`] for a broker whose log directories were
/// replaced (a re-registration with none of its previous directory ids): it leaves every ISR,
/// **even as the last member**, since it no longer holds what it acknowledged. A partition
/// whose only in-sync replica it was is left without a leader and with an empty ISR (offline)
/// rather than led by an empty log; only an unclean election (the topic's opt-in, or an
/// operator's) can bring it back, as for any partition without an in-sync replica.
pub fn plan_remove_replaced_broker(
    image: &MetadataImage,
    broker_id: i32,
    unclean: UncleanPolicy<'_>,
) -> Vec<MetadataRecord> {
    remove_broker(
        image,
        broker_id,
        unclean,
        |_, _| true,
        |_, _, _| true,
        false,
    )
}

fn remove_broker(
    image: &MetadataImage,
    broker_id: i32,
    unclean: UncleanPolicy<'_>,
    applies_to: impl Fn(Uuid, i32) -> bool,
    can_lead: impl Fn(i32, Uuid, i32) -> bool,
    keep_last_in_isr: bool,
) -> Vec<MetadataRecord> {
    let unfenced: BTreeSet<i32> = image
        .unfenced_broker_ids()
        .into_iter()
        .filter(|id| *id != broker_id)
        .collect();
    let mut records = Vec::new();
    for topic in image.topics.values() {
        for p in &topic.partitions {
            let in_isr = p.isr.contains(&broker_id);
            if !in_isr && p.leader != broker_id || !applies_to(topic.id, p.partition) {
                continue;
            }
            let eligible = |id: i32| unfenced.contains(&id) && can_lead(id, topic.id, p.partition);
            let isr = if in_isr && (p.isr.len() > 1 || !keep_last_in_isr) {
                p.isr
                    .iter()
                    .copied()
                    .filter(|id| *id != broker_id)
                    .collect()
            } else {
                p.isr.clone()
            };
            let mut isr = isr;
            let leader = (p.leader == broker_id).then(|| {
                let clean = choose_leader(p, &isr, eligible);
                if clean != NO_LEADER || !unclean(topic) {
                    return clean;
                }
                match choose_unclean_leader(p, eligible) {
                    Some(leader) => {
                        tracing::warn!(
                            topic = %topic.name,
                            partition = p.partition,
                            leader,
                            isr = ?p.isr,
                            "unclean leader election: no in-sync replica can lead"
                        );
                        isr = vec![leader];
                        leader
                    }
                    None => NO_LEADER,
                }
            });
            let isr_changed = isr != p.isr;
            if leader.is_none() && !isr_changed {
                continue;
            }
            records.push(MetadataRecord::PartitionChange {
                topic_id: topic.id,
                partition: p.partition,
                leader,
                isr: isr_changed.then_some(isr),
                replicas: None,
                adding_replicas: None,
                removing_replicas: None,
            });
        }
    }
    records
}

/// UnfenceBroker for `broker_id`, followed by leader elections for leaderless partitions whose
/// ISR contains it (or, where the topic allows unclean election, that it is a replica of).
pub fn plan_unfence_broker(
    image: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
    unclean: UncleanPolicy<'_>,
) -> Vec<MetadataRecord> {
    let mut records = vec![MetadataRecord::UnfenceBroker {
        broker_id,
        broker_epoch,
    }];
    for topic in image.topics.values() {
        for p in &topic.partitions {
            if p.leader != NO_LEADER || !p.replicas.contains(&broker_id) {
                continue;
            }
            let isr = if p.isr.contains(&broker_id) {
                None
            } else if unclean(topic) {
                tracing::warn!(
                    topic = %topic.name,
                    partition = p.partition,
                    leader = broker_id,
                    isr = ?p.isr,
                    "unclean leader election: a returning replica outside the ISR leads"
                );
                Some(vec![broker_id])
            } else {
                continue;
            };
            records.push(MetadataRecord::PartitionChange {
                topic_id: topic.id,
                partition: p.partition,
                leader: Some(broker_id),
                isr,
                replicas: None,
                adding_replicas: None,
                removing_replicas: None,
            });
        }
    }
    records
}

/// The first unfenced replica, in replica order, for an unclean election.
fn choose_unclean_leader(p: &PartitionImage, eligible: impl Fn(i32) -> bool) -> Option<i32> {
    p.replicas.iter().copied().find(|id| eligible(*id))
}

/// The first replica, in replica order, that is in `isr` and `eligible`; else [`NO_LEADER`].
pub fn choose_leader(p: &PartitionImage, isr: &[i32], eligible: impl Fn(i32) -> bool) -> i32 {
    p.replicas
        .iter()
        .copied()
        .find(|id| isr.contains(id) && eligible(*id))
        .unwrap_or(NO_LEADER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ApplyOutcome;

    fn image_with(partitions: &[(&[i32], &[i32], i32)], fenced: &[i32]) -> MetadataImage {
        crate::controller::test_images::image_with(4, fenced, partitions)
    }

    fn after(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
        let mut image = image.clone();
        for r in records {
            assert_eq!(image.apply(r), ApplyOutcome::Applied, "{r:?}");
        }
        image
    }

    fn state(image: &MetadataImage, p: usize) -> (i32, Vec<i32>, i32, i32) {
        let p = &image.topic_by_name("t").unwrap().partitions[p];
        (p.leader, p.isr.clone(), p.leader_epoch, p.partition_epoch)
    }

    #[test]
    fn fencing_moves_leadership_in_replica_order_and_shrinks_isr() {
        let image = image_with(
            &[
                (&[1, 2, 3], &[1, 2, 3], 1), // led by 1: 2 takes over
                (&[1, 3, 2], &[1, 2, 3], 1), // replica order, not ISR order: 3
                (&[2, 1, 3], &[2, 1, 3], 2), // follower: leaves ISR only
                (&[1], &[1], 1),             // last ISR member: stays in ISR, no leader
                (&[2, 3], &[2, 3], 2),       // untouched
                (&[1, 4, 2], &[1, 4, 2], 1), // 4 is fenced: skipped, 2 leads
            ],
            &[4],
        );
        let records = plan_fence_broker(&image, 1, 1, &never_unclean);
        assert_eq!(
            records[0],
            MetadataRecord::FenceBroker {
                broker_id: 1,
                broker_epoch: 1
            }
        );
        assert_eq!(records.len(), 1 + 5, "{records:#?}");
        let image = after(&image, &records);
        assert!(image.brokers[&1].fenced);
        assert_eq!(state(&image, 0), (2, vec![2, 3], 6, 8));
        assert_eq!(state(&image, 1), (3, vec![2, 3], 6, 8));
        assert_eq!(state(&image, 2), (2, vec![2, 3], 5, 8));
        assert_eq!(state(&image, 3), (NO_LEADER, vec![1], 6, 8));
        assert_eq!(state(&image, 4), (2, vec![2, 3], 5, 7));
        assert_eq!(state(&image, 5), (2, vec![4, 2], 6, 8));
    }

    #[test]
    fn no_eligible_isr_member_means_no_leader() {
        let image = image_with(&[(&[1, 4], &[1, 4], 1)], &[4]);
        let image = after(&image, &plan_fence_broker(&image, 1, 1, &never_unclean));
        assert_eq!(state(&image, 0), (NO_LEADER, vec![4], 6, 8));
    }

    #[test]
    fn unfencing_elects_leaderless_partitions_it_is_in_sync_for() {
        let image = image_with(&[(&[1], &[1], 1), (&[1, 2], &[2], 2)], &[]);
        let fenced = after(&image, &plan_fence_broker(&image, 1, 1, &never_unclean));
        assert_eq!(state(&fenced, 0), (NO_LEADER, vec![1], 6, 8));
        let back = after(&fenced, &plan_unfence_broker(&fenced, 1, 1, &never_unclean));
        assert!(!back.brokers[&1].fenced);
        assert_eq!(state(&back, 0), (1, vec![1], 7, 9));
        // Not in the ISR: stays a follower until the leader adds it back.
        assert_eq!(state(&back, 1), (2, vec![2], 5, 7));
    }

    #[test]
    fn unclean_election_only_where_the_topic_allows_it() {
        // Partition 0: ISR is {1} alone; 2 and 3 are live replicas outside it.
        let image = image_with(&[(&[1, 2, 3], &[1], 1)], &[]);
        let clean = after(&image, &plan_fence_broker(&image, 1, 1, &never_unclean));
        assert_eq!(state(&clean, 0), (NO_LEADER, vec![1], 6, 8));
        let allowed = |_: &TopicImage| true;
        let unclean = after(&image, &plan_fence_broker(&image, 1, 1, &allowed));
        assert_eq!(state(&unclean, 0), (2, vec![2], 6, 8));
        // A leaderless partition gets a returning out-of-sync replica only when allowed.
        let fenced_all = image_with(&[(&[1, 2], &[1], NO_LEADER)], &[2]);
        let back = plan_unfence_broker(&fenced_all, 2, 1, &never_unclean);
        assert_eq!(back.len(), 1, "only the UnfenceBroker record");
        let back = after(
            &fenced_all,
            &plan_unfence_broker(&fenced_all, 2, 1, &allowed),
        );
        assert_eq!(state(&back, 0), (2, vec![2], 6, 8));
    }
}
