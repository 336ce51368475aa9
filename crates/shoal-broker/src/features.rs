//! Publishes the cluster's feature levels from each applied metadata image to the Kafka front,
//! which reports them in ApiVersions (`shoal_kafka::SharedFeatures`).
//!
//! `transaction.version` goes out under Kafka's name: its levels mean what Kafka's mean, and a
//! Kafka 4 producer speaks transaction version 2 only when it sees it finalized at 2. Shoal's
//! `metadata.version` levels are its own (level 3 is not Kafka's 3.0-IV3), so they are reported
//! as `shoal.metadata.version`, which no Kafka tool misreads as a Kafka release.

use std::sync::Arc;

use shoal_kafka::{FeatureLevels, SharedFeatures};
use shoal_meta::MetadataImage;
pub use shoal_meta::features::REPORTED_METADATA_VERSION;
use shoal_meta::features::{METADATA_VERSION, supported_features};

use crate::replica_manager::ReplicaManager;

fn reported_name(name: &str) -> String {
    if name == METADATA_VERSION {
        REPORTED_METADATA_VERSION.to_string()
    } else {
        name.to_string()
    }
}

/// The levels ApiVersions reports for `image` (pure).
pub fn feature_levels(image: &MetadataImage) -> FeatureLevels {
    let mut finalized: Vec<(String, i16)> = image
        .finalized_features
        .iter()
        .map(|(name, level)| (reported_name(name), *level))
        .collect();
    if !image.finalized_features.contains_key(METADATA_VERSION) {
        finalized.push((
            REPORTED_METADATA_VERSION.to_string(),
            image.metadata_version(),
        ));
    }
    finalized.sort();
    FeatureLevels {
        supported: supported_features()
            .into_iter()
            .map(|f| (reported_name(&f.name), f.min_level, f.max_level))
            .collect(),
        finalized,
        epoch: i64::try_from(image.last_applied_index).unwrap_or(i64::MAX),
    }
}

/// Runs until the replica manager goes away, publishing each applied image's levels.
pub async fn publish_feature_levels(replicas: Arc<ReplicaManager>, features: SharedFeatures) {
    let mut images = replicas.subscribe();
    loop {
        let levels = feature_levels(&images.borrow_and_update());
        features.publish(levels);
        if images.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_meta::MetadataRecord;

    #[test]
    fn levels_of_an_image() {
        let mut image = MetadataImage::empty("c");
        let old = feature_levels(&image);
        assert_eq!(old.finalized, vec![(REPORTED_METADATA_VERSION.into(), 1)]);
        assert!(
            old.supported
                .iter()
                .any(|(n, min, max)| n == "transaction.version" && (*min, *max) == (0, 2))
        );
        assert!(!old.supported.iter().any(|(n, _, _)| n == METADATA_VERSION));
        image.apply_batch(
            7,
            &shoal_meta::features::plan_bootstrap_features(&image, 3, 2, &[] as &[MetadataRecord]),
        );
        let new = feature_levels(&image);
        assert_eq!(
            new.finalized,
            vec![
                (REPORTED_METADATA_VERSION.into(), 3),
                ("transaction.version".into(), 2)
            ]
        );
        assert_eq!(new.epoch, 7);
    }
}
