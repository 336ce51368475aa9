//! Planning AlterPartition: a leader's proposal to shrink or expand a partition's ISR.
//!
//! **Why the controller decides.** Only the leader knows which followers are caught up, but an
//! ISR is also the set a future leader is elected from, so it must be one committed fact that
//! every broker agrees on. The leader proposes with the leader epoch and partition epoch it
//! acts on; the proposal applies only if both are still current (a leader that was replaced,
//! or that has not seen a change committed in between, is refused and must re-read the
//! metadata). Checks follow KRaft's `ReplicationControlManager.alterPartition`:
//!
//! - the sender's broker epoch is its current registration (STALE_BROKER_EPOCH);
//! - the partition exists (UNKNOWN_TOPIC_ID / UNKNOWN_TOPIC_OR_PARTITION);
//! - the leader epoch is current (FENCED_LEADER_EPOCH) and the sender leads at it;
//! - the partition epoch is current (INVALID_UPDATE_VERSION);
//! - the new ISR is non-empty, without duplicates, a subset of the replicas, and contains the
//!   leader (INVALID_REQUEST);
//! - every member being added is registered, unfenced, and at the broker epoch the leader saw
//!   it fetch with (INELIGIBLE_REPLICA, KIP-903).
//!
//! Shrinking below `min.insync.replicas` is allowed, as in Kafka: the ISR must tell the truth,
//! and acks=all produce then fails with NOT_ENOUGH_REPLICAS instead.

use crate::controller::check_heartbeat_epoch;
use crate::controller::requests::{AlterPartitionRequest, AlteredPartition};
use crate::error::{BrokerError, ControllerError};
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// Validates `request` against `image`; returns the resulting state and the records (none if
/// the ISR already is the proposed one).
pub fn plan_alter_partition(
    image: &MetadataImage,
    request: &AlterPartitionRequest,
) -> Result<(AlteredPartition, Vec<MetadataRecord>), BrokerError> {
    check_heartbeat_epoch(image, request.broker_id, request.broker_epoch)?;
    let topic = image
        .topic(&request.topic_id)
        .ok_or(ControllerError::UnknownTopicId(request.topic_id))?;
    let p = topic.partition(request.partition).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(format!("{}-{}", topic.name, request.partition))
    })?;
    if request.leader_epoch != p.leader_epoch {
        return Err(BrokerError::FencedLeaderEpoch {
            topic_id: request.topic_id,
            partition: request.partition,
            leader_epoch: request.leader_epoch,
            current_epoch: p.leader_epoch,
        });
    }
    if p.leader != request.broker_id {
        return Err(ControllerError::InvalidRequest(format!(
            "Broker {} is not the leader of {}-{} at leader epoch {} (the leader is {}).",
            request.broker_id, topic.name, request.partition, p.leader_epoch, p.leader
        ))
        .into());
    }
    if request.partition_epoch != p.partition_epoch {
        return Err(BrokerError::InvalidUpdateVersion {
            topic_id: request.topic_id,
            partition: request.partition,
            partition_epoch: request.partition_epoch,
            current_epoch: p.partition_epoch,
        });
    }
    let new_isr: Vec<i32> = request.new_isr.iter().map(|m| m.broker_id).collect();
    let invalid = |why: String| -> Result<(AlteredPartition, Vec<MetadataRecord>), BrokerError> {
        Err(ControllerError::InvalidRequest(format!(
            "Invalid ISR {new_isr:?} for {}-{}: {why}",
            topic.name, request.partition
        ))
        .into())
    };
    if new_isr.is_empty() {
        return invalid("an ISR cannot be empty".to_string());
    }
    for (i, id) in new_isr.iter().enumerate() {
        if new_isr[..i].contains(id) {
            return invalid(format!("broker {id} is listed twice"));
        }
        if !p.replicas.contains(id) {
            return invalid(format!("broker {id} is not a replica ({:?})", p.replicas));
        }
    }
    if !new_isr.contains(&p.leader) {
        return invalid(format!("the leader {} must stay in the ISR", p.leader));
    }
    for member in request
        .new_isr
        .iter()
        .filter(|m| !p.isr.contains(&m.broker_id))
    {
        let ineligible = |reason: String| BrokerError::IneligibleReplica {
            broker_id: member.broker_id,
            reason,
        };
        let broker = image
            .brokers
            .get(&member.broker_id)
            .ok_or_else(|| ineligible("it is not registered".to_string()))?;
        if broker.fenced {
            return Err(ineligible("it is fenced".to_string()));
        }
        match member.broker_epoch {
            Some(epoch) if epoch == broker.broker_epoch => {}
            Some(epoch) => {
                return Err(ineligible(format!(
                    "the leader saw it fetch at broker epoch {epoch}, but it is registered at \
                     {}",
                    broker.broker_epoch
                )));
            }
            None => {
                return Err(ineligible(
                    "a replica joining the ISR must carry the broker epoch it fetched with"
                        .to_string(),
                ));
            }
        }
    }
    // Keep the replica order: it is the order elections prefer.
    let ordered: Vec<i32> = p
        .replicas
        .iter()
        .copied()
        .filter(|id| new_isr.contains(id))
        .collect();
    let mut current_sorted = p.isr.clone();
    current_sorted.sort_unstable();
    let mut new_sorted = ordered.clone();
    new_sorted.sort_unstable();
    if current_sorted == new_sorted {
        return Ok((
            AlteredPartition {
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                isr: p.isr.clone(),
                log_index: None,
            },
            Vec::new(),
        ));
    }
    let record = MetadataRecord::PartitionChange {
        topic_id: request.topic_id,
        partition: request.partition,
        leader: None,
        isr: Some(ordered.clone()),
        replicas: None,
        adding_replicas: None,
        removing_replicas: None,
    };
    Ok((
        AlteredPartition {
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch.saturating_add(1),
            isr: ordered,
            log_index: None,
        },
        vec![record],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::requests::IsrMember;
    use crate::image::ApplyOutcome;
    use crate::records::Endpoint;
    use uuid::Uuid;

    const TOPIC: Uuid = Uuid::from_u128(9);

    /// Brokers 1-4 at epoch 10+id (4 fenced); partition 0 replicas [1,2,3], ISR [1,2], leader 1,
    /// leader epoch 5, partition epoch 7.
    fn image() -> MetadataImage {
        let mut image = MetadataImage::empty("c");
        let mut apply = |r: MetadataRecord| assert_eq!(image.apply(&r), ApplyOutcome::Applied);
        for id in 1..=4 {
            apply(MetadataRecord::RegisterBroker {
                log_dirs: Vec::new(),
                broker_id: id,
                incarnation_id: Uuid::from_u128(id as u128),
                broker_epoch: 10 + i64::from(id),
                listeners: vec![Endpoint {
                    name: "P".into(),
                    host: "h".into(),
                    port: 1,
                }],
                rack: None,
                supported_features: None,
            });
            if id != 4 {
                apply(MetadataRecord::UnfenceBroker {
                    broker_id: id,
                    broker_epoch: 10 + i64::from(id),
                });
            }
        }
        apply(MetadataRecord::Topic {
            name: "t".into(),
            topic_id: TOPIC,
        });
        apply(MetadataRecord::Partition {
            topic_id: TOPIC,
            partition: 0,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2],
            leader: 1,
            leader_epoch: 5,
            partition_epoch: 7,
        });
        image
    }

    fn member(broker_id: i32) -> IsrMember {
        IsrMember {
            broker_id,
            broker_epoch: Some(10 + i64::from(broker_id)),
        }
    }

    fn request(new_isr: Vec<IsrMember>) -> AlterPartitionRequest {
        AlterPartitionRequest {
            broker_id: 1,
            broker_epoch: 11,
            topic_id: TOPIC,
            partition: 0,
            leader_epoch: 5,
            partition_epoch: 7,
            new_isr,
        }
    }

    fn isr_after(image: &MetadataImage, records: &[MetadataRecord]) -> (Vec<i32>, i32, i32) {
        let mut image = image.clone();
        for r in records {
            assert_eq!(image.apply(r), ApplyOutcome::Applied);
        }
        let p = &image.topic(&TOPIC).unwrap().partitions[0];
        (p.isr.clone(), p.leader_epoch, p.partition_epoch)
    }

    #[test]
    fn expand_and_shrink_bump_only_the_partition_epoch() {
        let image = image();
        let (altered, records) =
            plan_alter_partition(&image, &request(vec![member(3), member(1), member(2)])).unwrap();
        assert_eq!(altered.isr, vec![1, 2, 3], "replica order is kept");
        assert_eq!((altered.leader_epoch, altered.partition_epoch), (5, 8));
        assert_eq!(isr_after(&image, &records), (vec![1, 2, 3], 5, 8));

        let shrink = IsrMember {
            broker_id: 1,
            broker_epoch: None,
        };
        let (altered, records) = plan_alter_partition(&image, &request(vec![shrink])).unwrap();
        assert_eq!(altered.isr, vec![1]);
        assert_eq!(isr_after(&image, &records), (vec![1], 5, 8));
    }

    #[test]
    fn the_same_isr_proposes_nothing() {
        let image = image();
        let (altered, records) =
            plan_alter_partition(&image, &request(vec![member(2), member(1)])).unwrap();
        assert!(records.is_empty());
        assert_eq!((altered.isr, altered.partition_epoch), (vec![1, 2], 7));
    }

    #[test]
    fn stale_epochs_are_refused() {
        let image = image();
        let mut r = request(vec![member(1)]);
        r.leader_epoch = 4;
        assert!(matches!(
            plan_alter_partition(&image, &r),
            Err(BrokerError::FencedLeaderEpoch {
                current_epoch: 5,
                ..
            })
        ));
        let mut r = request(vec![member(1)]);
        r.partition_epoch = 6;
        assert!(matches!(
            plan_alter_partition(&image, &r),
            Err(BrokerError::InvalidUpdateVersion {
                current_epoch: 7,
                ..
            })
        ));
        let mut r = request(vec![member(1)]);
        r.broker_epoch = 3;
        assert!(matches!(
            plan_alter_partition(&image, &r),
            Err(BrokerError::StaleBrokerEpoch { .. })
        ));
        // A follower cannot propose, even at the current epochs.
        let mut r = request(vec![member(2)]);
        r.broker_id = 2;
        r.broker_epoch = 12;
        assert!(matches!(
            plan_alter_partition(&image, &r),
            Err(BrokerError::Controller(ControllerError::InvalidRequest(_)))
        ));
    }

    #[test]
    fn malformed_isrs_are_invalid_requests() {
        let image = image();
        for isr in [
            vec![],
            vec![member(2)],            // without the leader
            vec![member(1), member(1)], // duplicate
            vec![member(1), member(4)], // not a replica
        ] {
            let outcome = plan_alter_partition(&image, &request(isr.clone()));
            assert!(
                matches!(
                    outcome,
                    Err(BrokerError::Controller(ControllerError::InvalidRequest(_)))
                ),
                "{isr:?}: {outcome:?}"
            );
        }
        let mut r = request(vec![member(1)]);
        r.topic_id = Uuid::from_u128(1);
        assert!(matches!(
            plan_alter_partition(&image, &r),
            Err(BrokerError::Controller(ControllerError::UnknownTopicId(_)))
        ));
        let mut r = request(vec![member(1)]);
        r.partition = 3;
        assert!(matches!(
            plan_alter_partition(&image, &r),
            Err(BrokerError::Controller(
                ControllerError::UnknownTopicOrPartition(_)
            ))
        ));
    }

    #[test]
    fn added_members_must_be_live_at_the_epoch_the_leader_saw() {
        let mut image = image();
        // Broker 3 restarted: a new registration (epoch 40), fenced until it catches up.
        assert_eq!(
            image.apply(&MetadataRecord::RegisterBroker {
                log_dirs: Vec::new(),
                broker_id: 3,
                incarnation_id: Uuid::from_u128(33),
                broker_epoch: 40,
                listeners: vec![],
                rack: None,
                supported_features: None,
            }),
            ApplyOutcome::Applied
        );
        let ineligible = |r: Result<_, BrokerError>| {
            matches!(r, Err(BrokerError::IneligibleReplica { broker_id: 3, .. }))
        };
        assert!(ineligible(plan_alter_partition(
            &image,
            &request(vec![member(1), member(2), member(3)])
        )));
        assert_eq!(
            image.apply(&MetadataRecord::UnfenceBroker {
                broker_id: 3,
                broker_epoch: 40,
            }),
            ApplyOutcome::Applied
        );
        // Unfenced now, but the leader's view of it is from the old incarnation (epoch 13).
        assert!(ineligible(plan_alter_partition(
            &image,
            &request(vec![member(1), member(2), member(3)])
        )));
        let unknown_epoch = IsrMember {
            broker_id: 3,
            broker_epoch: None,
        };
        assert!(ineligible(plan_alter_partition(
            &image,
            &request(vec![member(1), member(2), unknown_epoch])
        )));
        let current = IsrMember {
            broker_id: 3,
            broker_epoch: Some(40),
        };
        let (altered, _) =
            plan_alter_partition(&image, &request(vec![member(1), member(2), current])).unwrap();
        assert_eq!(altered.isr, vec![1, 2, 3]);
    }
}
