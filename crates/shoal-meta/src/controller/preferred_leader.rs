//! Planning preferred-leader elections (Kafka's `auto.leader.rebalance.enable`).
//!
//! **Why.** Placement spreads preferred leaders (the first replica of each partition) evenly
//! over the brokers. Every failover moves leadership off its preferred replica, and nothing
//! moves it back, so after a few failures some brokers lead most partitions. Like Kafka, the
//! active controller periodically checks each broker's share of partitions it is preferred for
//! but does not lead; above `leader.imbalance.per.broker.percentage`, those partitions move
//! back — each only if its preferred replica is unfenced and in the ISR (a clean election: it
//! holds every committed record).

use std::collections::BTreeMap;

use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// The leader changes that restore preferred leaders on imbalanced brokers. A broker is
/// imbalanced when more than `threshold_percent` of the partitions it is preferred for are led
/// by another broker; 0 restores every eligible partition.
pub fn plan_preferred_leader_election(
    image: &MetadataImage,
    threshold_percent: u32,
) -> Vec<MetadataRecord> {
    // Preferred broker → (partitions it is preferred for, of which not led by it).
    let mut counts: BTreeMap<i32, (u64, u64)> = BTreeMap::new();
    for topic in image.topics.values() {
        for p in &topic.partitions {
            if let Some(preferred) = p.replicas.first() {
                let entry = counts.entry(*preferred).or_default();
                entry.0 += 1;
                if p.leader != *preferred {
                    entry.1 += 1;
                }
            }
        }
    }
    let imbalanced = |broker: i32| {
        counts.get(&broker).is_some_and(|(total, off)| {
            *off > 0 && off * 100 > u64::from(threshold_percent) * total
        })
    };
    let eligible = |broker: i32| image.brokers.get(&broker).is_some_and(|b| !b.fenced);
    let mut records = Vec::new();
    for topic in image.topics.values() {
        for p in &topic.partitions {
            let Some(&preferred) = p.replicas.first() else {
                continue;
            };
            if p.leader != preferred
                && imbalanced(preferred)
                && eligible(preferred)
                && p.isr.contains(&preferred)
            {
                records.push(MetadataRecord::PartitionChange {
                    topic_id: topic.id,
                    partition: p.partition,
                    leader: Some(preferred),
                    isr: None,
                    replicas: None,
                    adding_replicas: None,
                    removing_replicas: None,
                });
            }
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(partitions: &[(&[i32], &[i32], i32)], fenced: &[i32]) -> MetadataImage {
        crate::controller::test_images::image_with(3, fenced, partitions)
    }

    fn moved(records: &[MetadataRecord]) -> Vec<(i32, i32)> {
        records
            .iter()
            .filter_map(|r| match r {
                MetadataRecord::PartitionChange {
                    partition,
                    leader: Some(l),
                    ..
                } => Some((*partition, *l)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn leadership_returns_to_preferred_replicas_in_sync() {
        let image = image(
            &[
                (&[1, 2, 3], &[1, 2, 3], 2), // 1 preferred, in ISR: moves back
                (&[1, 3, 2], &[3, 2], 3),    // 1 preferred, not in ISR: stays
                (&[2, 1, 3], &[2, 1, 3], 2), // already preferred
                (&[3, 1, 2], &[3, 1, 2], 1), // 3 is fenced: stays
            ],
            &[3],
        );
        assert_eq!(
            moved(&plan_preferred_leader_election(&image, 10)),
            vec![(0, 1)]
        );
    }

    #[test]
    fn a_broker_within_the_threshold_is_left_alone() {
        // Broker 1 is preferred for 4 partitions and leads 3: 25 % imbalance.
        let parts: &[(&[i32], &[i32], i32)] = &[
            (&[1, 2], &[1, 2], 1),
            (&[1, 2], &[1, 2], 1),
            (&[1, 2], &[1, 2], 1),
            (&[1, 2], &[1, 2], 2),
        ];
        let image = image(parts, &[]);
        assert!(plan_preferred_leader_election(&image, 25).is_empty());
        assert_eq!(
            moved(&plan_preferred_leader_election(&image, 24)),
            vec![(3, 1)]
        );
        assert_eq!(
            moved(&plan_preferred_leader_election(&image, 0)),
            vec![(3, 1)]
        );
    }
}
