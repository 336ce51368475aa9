//! Feature levels, Kafka-style (`metadata.version`; `kafka-features` / UpdateFeatures /
//! ApiVersions `finalized_features`).
//!
//! **Why.** In a rolling upgrade old and new binaries run side by side. A new record version
//! or record type must not be written while some node cannot read it, or that node stops
//! (it refuses unknown versions by design). So what may be written is decided by one
//! cluster-wide number in the metadata log, the finalized `metadata.version`; a binary
//! supports a range of levels and reports it when its broker registers. Writers derive the
//! record versions they use from the finalized level; new content appears only once the
//! level allows it, and the encoder writes the lowest version that can represent a value.
//!
//! Levels of `metadata.version`:
//! - 1: the first versioned formats (every record at version 0, snapshot format 2, entry
//!   frame 1). Also the level of any cluster that never finalized one (created before feature
//!   levels existed, including data dirs of the unversioned JSON era).
//! - 2: `FeatureLevel` records; `RegisterBroker` version 1 (brokers report their supported
//!   features); snapshot format 3 (features in the image).
//! - 3: ACLs and SCRAM credentials: `AccessControlEntry` / `RemoveAccessControlEntry` and
//!   `UserScramCredential` / `RemoveUserScramCredential` records; snapshot format 4 (both in
//!   the image).
//!
//! A new cluster finalizes the newest level this binary supports at bootstrap (one
//! `FeatureLevel` entry, Kafka's bootstrap metadata.version); an existing cluster stays at its
//! level until raised (UpdateFeatures; see docs/upgrading.md).
//!
//! `transaction.version` is Kafka's feature of the same name, with Kafka's levels (0: the
//! classic protocol; 1: flexible `__transaction_state` values; 2: KIP-890 part 2, an epoch bump
//! on every EndTxn, partitions added by their leaders). Clients read it from ApiVersions and
//! speak version 2 only when it is finalized at 2, so it is finalized only once every broker
//! serves it: a new cluster at `metadata.version` 2 or more (brokers report their ranges)
//! finalizes it at bootstrap, as Kafka 4 does; an existing one stays at 0 (absent) until raised.

use crate::image::MetadataImage;
use crate::records::{MetadataRecord, SupportedFeature};

/// Kafka's name of the metadata format feature.
pub const METADATA_VERSION: &str = "metadata.version";
/// The level of a cluster that never finalized one.
pub const BASELINE_METADATA_VERSION: i16 = 1;
/// The newest `metadata.version` this binary reads and writes.
pub const MAX_METADATA_VERSION: i16 = 3;
/// The level from which brokers report their supported features (`RegisterBroker` v1).
pub const BROKER_FEATURES_METADATA_VERSION: i16 = 2;
/// The level from which ACLs may be written (`AccessControlEntry` records).
pub const ACLS_METADATA_VERSION: i16 = 3;
/// The level from which SCRAM credentials may be written (`UserScramCredential` records).
pub const SCRAM_METADATA_VERSION: i16 = 3;

/// Kafka's name of the transaction protocol feature (KIP-890).
pub const TRANSACTION_VERSION: &str = "transaction.version";
/// The newest `transaction.version` this binary serves.
pub const MAX_TRANSACTION_VERSION: i16 = 2;
/// The lowest `metadata.version` at which `transaction.version` may be finalized (brokers
/// report their supported ranges from there on).
pub const TRANSACTION_VERSION_METADATA_VERSION: i16 = BROKER_FEATURES_METADATA_VERSION;

/// The features this binary supports, as its broker reports them on registration.
pub fn supported_features() -> Vec<SupportedFeature> {
    vec![
        SupportedFeature {
            name: METADATA_VERSION.to_string(),
            min_level: BASELINE_METADATA_VERSION,
            max_level: MAX_METADATA_VERSION,
        },
        SupportedFeature {
            name: TRANSACTION_VERSION.to_string(),
            min_level: 0,
            max_level: MAX_TRANSACTION_VERSION,
        },
    ]
}

/// The range of `name` a broker reported; a broker that reported nothing (`None`) supports
/// `metadata.version` 1 only, and no other feature.
pub fn supported_range(features: Option<&[SupportedFeature]>, name: &str) -> Option<(i16, i16)> {
    match features {
        Some(features) => features
            .iter()
            .find(|f| f.name == name)
            .map(|f| (f.min_level, f.max_level)),
        None if name == METADATA_VERSION => {
            Some((BASELINE_METADATA_VERSION, BASELINE_METADATA_VERSION))
        }
        None => None,
    }
}

/// The records that finalize `metadata.version` at `level` on a new cluster: one
/// FeatureLevel, `transaction.version` at its newest level (at a `metadata.version` that has
/// it), then `extra` (the `--add-scram` credentials; only at a level that has them),
/// unless a level is already finalized (pure).
pub fn plan_bootstrap_features(
    image: &MetadataImage,
    level: i16,
    extra: &[MetadataRecord],
) -> Vec<MetadataRecord> {
    if image.finalized_features.contains_key(METADATA_VERSION)
        || level < BROKER_FEATURES_METADATA_VERSION
    {
        return Vec::new();
    }
    let mut records = vec![MetadataRecord::FeatureLevel {
        name: METADATA_VERSION.to_string(),
        level,
    }];
    if level >= TRANSACTION_VERSION_METADATA_VERSION {
        records.push(MetadataRecord::FeatureLevel {
            name: TRANSACTION_VERSION.to_string(),
            level: MAX_TRANSACTION_VERSION,
        });
    }
    if level >= SCRAM_METADATA_VERSION {
        records.extend_from_slice(extra);
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_finalizes_once_and_only_levels_that_have_the_record() {
        let mut image = MetadataImage::empty("c");
        assert_eq!(image.metadata_version(), 1);
        assert!(plan_bootstrap_features(&image, 1, &[]).is_empty());
        let records = plan_bootstrap_features(&image, 2, &[]);
        assert_eq!(
            records,
            vec![
                MetadataRecord::FeatureLevel {
                    name: "metadata.version".into(),
                    level: 2
                },
                MetadataRecord::FeatureLevel {
                    name: "transaction.version".into(),
                    level: 2
                }
            ]
        );
        image.apply_batch(1, &records);
        assert_eq!(image.metadata_version(), 2);
        assert_eq!(image.transaction_version(), 2);
        assert!(plan_bootstrap_features(&image, 2, &[]).is_empty());
    }

    #[test]
    fn bootstrap_credentials_ride_with_a_level_that_has_them() {
        #[allow(clippy::unwrap_used)]
        let credential = MetadataRecord::UserScramCredential {
            name: "admin".into(),
            credential: shoal_sasl::ScramCredential::from_password(
                shoal_sasl::ScramMechanism::Sha256,
                "admin-secret",
                4096,
            )
            .unwrap(),
        };
        let image = MetadataImage::empty("c");
        assert_eq!(
            plan_bootstrap_features(&image, 2, std::slice::from_ref(&credential)).len(),
            2,
            "level 2 has no SCRAM records"
        );
        let records = plan_bootstrap_features(&image, 3, std::slice::from_ref(&credential));
        assert_eq!(records.len(), 3);
        assert_eq!(records[2], credential);
    }

    #[test]
    fn supported_ranges() {
        let reported = supported_features();
        assert_eq!(
            supported_range(Some(&reported), METADATA_VERSION),
            Some((1, MAX_METADATA_VERSION))
        );
        assert_eq!(
            supported_range(Some(&reported), TRANSACTION_VERSION),
            Some((0, MAX_TRANSACTION_VERSION))
        );
        assert_eq!(supported_range(Some(&reported), "other"), None);
        assert_eq!(supported_range(None, METADATA_VERSION), Some((1, 1)));
        assert_eq!(supported_range(None, "other"), None);
        assert_eq!(supported_range(Some(&[]), METADATA_VERSION), None);
    }
}
