//! Planning what a broker's offline replicas do to partitions (KRaft's handling of the
//! `OfflineLogDirs` a BrokerHeartbeat reports, KIP-858; here per partition).
//!
//! **Why.** A broker that cannot open a partition's log still heartbeats, so fencing never
//! moves that partition: it would stay led by a replica that answers KAFKA_STORAGE_ERROR to
//! every produce and fetch, while another in-sync replica holds every committed record.
//! Like fencing, but only for the reported partitions, the broker leaves their ISR (unless it
//! is the last member: an ISR never becomes empty) and gives up their leadership to the first
//! in-sync replica that is unfenced and has not reported the same partition offline; with none,
//! the partition has no leader (or, where the topic allows it, an unclean one).

use std::collections::BTreeSet;

use crate::controller::fence_broker::{UncleanPolicy, plan_remove_broker_where};
use crate::controller::requests::ReplicaRef;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// The PartitionChange records that take `broker_id` out of the ISR and leadership of each
/// partition in `offline`. `can_lead(broker, replica)` says whether another broker may lead
/// it (false where that broker reported it offline too). Empty when nothing needs to change,
/// so a steady report costs no Raft entry.
pub fn plan_offline_replicas(
    image: &MetadataImage,
    broker_id: i32,
    offline: &BTreeSet<ReplicaRef>,
    can_lead: impl Fn(i32, ReplicaRef) -> bool,
    unclean: UncleanPolicy<'_>,
) -> Vec<MetadataRecord> {
    if offline.is_empty() {
        return Vec::new();
    }
    plan_remove_broker_where(
        image,
        broker_id,
        unclean,
        |topic_id, partition| {
            offline.contains(&ReplicaRef {
                topic_id,
                partition,
            })
        },
        |broker, topic_id, partition| {
            can_lead(
                broker,
                ReplicaRef {
                    topic_id,
                    partition,
                },
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::fence_broker::never_unclean;
    use crate::image::ApplyOutcome;
    use crate::records::NO_LEADER;

    fn image_with(partitions: &[(&[i32], &[i32], i32)], fenced: &[i32]) -> MetadataImage {
        crate::controller::test_images::image_with(4, fenced, partitions)
    }

    fn replica(image: &MetadataImage, p: usize) -> ReplicaRef {
        let topic = image.topics.values().next().unwrap();
        ReplicaRef {
            topic_id: topic.id,
            partition: topic.partitions[p].partition,
        }
    }

    /// (leader, isr) of partition `p` after applying `records`.
    fn after(image: &MetadataImage, records: &[MetadataRecord], p: usize) -> (i32, Vec<i32>) {
        let mut image = image.clone();
        for record in records {
            assert!(matches!(image.apply(record), ApplyOutcome::Applied));
        }
        let partition = &image.topics.values().next().unwrap().partitions[p];
        (partition.leader, partition.isr.clone())
    }

    #[test]
    fn table() {
        // (replicas, isr, leader), fenced brokers, reporting broker, offline partitions,
        // partitions also reported offline by broker 2, expected (leader, isr) per partition.
        type Case<'a> = (
            &'a [(&'a [i32], &'a [i32], i32)],
            &'a [i32],
            i32,
            &'a [usize],
            &'a [usize],
            &'a [(i32, &'a [i32])],
        );
        let cases: &[Case] = &[
            // The leader's replica is offline: the next in-sync replica leads.
            (
                &[(&[1, 2, 3], &[1, 2, 3], 1)],
                &[],
                1,
                &[0],
                &[],
                &[(2, &[2, 3])],
            ),
            // Only the reported partition moves.
            (
                &[(&[1, 2, 3], &[1, 2, 3], 1), (&[1, 2, 3], &[1, 2, 3], 1)],
                &[],
                1,
                &[1],
                &[],
                &[(1, &[1, 2, 3]), (2, &[2, 3])],
            ),
            // A follower's replica is offline: it leaves the ISR, the leader stays.
            (
                &[(&[1, 2, 3], &[1, 2, 3], 2)],
                &[],
                1,
                &[0],
                &[],
                &[(2, &[2, 3])],
            ),
            // A fenced next replica is skipped.
            (
                &[(&[1, 2, 3], &[1, 2, 3], 1)],
                &[2],
                1,
                &[0],
                &[],
                &[(3, &[2, 3])],
            ),
            // A replica that reported the same partition offline is skipped.
            (
                &[(&[1, 2, 3], &[1, 2, 3], 1)],
                &[],
                1,
                &[0],
                &[0],
                &[(3, &[2, 3])],
            ),
            // The last ISR member: no leader, the ISR keeps it (never empty).
            (
                &[(&[1, 2, 3], &[1], 1)],
                &[],
                1,
                &[0],
                &[],
                &[(NO_LEADER, &[1])],
            ),
            // Not in the ISR and not leading: nothing to do.
            (
                &[(&[1, 2, 3], &[2, 3], 2)],
                &[],
                1,
                &[0],
                &[],
                &[(2, &[2, 3])],
            ),
        ];
        for (i, (partitions, fenced, broker, offline, also_offline, expected)) in
            cases.iter().enumerate()
        {
            let image = image_with(partitions, fenced);
            let offline: BTreeSet<ReplicaRef> =
                offline.iter().map(|p| replica(&image, *p)).collect();
            let also: BTreeSet<ReplicaRef> =
                also_offline.iter().map(|p| replica(&image, *p)).collect();
            let records = plan_offline_replicas(
                &image,
                *broker,
                &offline,
                |b, r| !(b == 2 && also.contains(&r)),
                &never_unclean,
            );
            for (p, (leader, isr)) in expected.iter().enumerate() {
                assert_eq!(
                    after(&image, &records, p),
                    (*leader, isr.to_vec()),
                    "case {i} p{p}"
                );
            }
        }
    }

    #[test]
    fn a_steady_report_plans_nothing_more() {
        let image = image_with(&[(&[1, 2, 3], &[1, 2, 3], 1)], &[]);
        let offline: BTreeSet<ReplicaRef> = [replica(&image, 0)].into();
        let records = plan_offline_replicas(&image, 1, &offline, |_, _| true, &never_unclean);
        assert!(!records.is_empty());
        let mut moved = image.clone();
        for record in &records {
            assert_eq!(moved.apply(record), ApplyOutcome::Applied);
        }
        assert!(plan_offline_replicas(&moved, 1, &offline, |_, _| true, &never_unclean).is_empty());
        assert!(
            plan_offline_replicas(&image, 1, &BTreeSet::new(), |_, _| true, &never_unclean)
                .is_empty()
        );
    }
}
