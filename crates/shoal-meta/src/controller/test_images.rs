//! Small metadata images for the planners' unit tests.

use uuid::Uuid;

use crate::image::{ApplyOutcome, MetadataImage};
use crate::records::{Endpoint, MetadataRecord};

/// The id of topic "t" in [`image_with`].
pub const TOPIC_ID: Uuid = Uuid::from_u128(9);

/// Brokers `1..=brokers` at epoch 1 (those in `fenced` fenced), and topic "t" whose partition
/// i is `partitions[i]` = (replicas, ISR, leader), all at leader epoch 5, partition epoch 7.
pub fn image_with(
    brokers: i32,
    fenced: &[i32],
    partitions: &[(&[i32], &[i32], i32)],
) -> MetadataImage {
    let mut image = MetadataImage::empty("c");
    let mut apply = |r: MetadataRecord| assert_eq!(image.apply(&r), ApplyOutcome::Applied);
    for id in 1..=brokers {
        apply(MetadataRecord::RegisterBroker {
            log_dirs: Vec::new(),
            broker_id: id,
            incarnation_id: Uuid::from_u128(id as u128),
            broker_epoch: 1,
            listeners: vec![Endpoint {
                name: "P".into(),
                host: "h".into(),
                port: 1,
            }],
            rack: None,
            supported_features: None,
        });
        if !fenced.contains(&id) {
            apply(MetadataRecord::UnfenceBroker {
                broker_id: id,
                broker_epoch: 1,
            });
        }
    }
    apply(MetadataRecord::Topic {
        name: "t".into(),
        topic_id: TOPIC_ID,
    });
    for (i, (replicas, isr, leader)) in partitions.iter().enumerate() {
        apply(MetadataRecord::Partition {
            topic_id: TOPIC_ID,
            partition: i as i32,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader: *leader,
            leader_epoch: 5,
            partition_epoch: 7,
        });
    }
    image
}

/// Three brokers, no topic, at `metadata.version` `level`.
pub fn image_at_version(level: i16) -> MetadataImage {
    let mut image = image_with(3, &[], &[]);
    let record = MetadataRecord::FeatureLevel {
        name: crate::features::METADATA_VERSION.into(),
        level,
    };
    assert_eq!(image.apply(&record), ApplyOutcome::Applied);
    image
}
