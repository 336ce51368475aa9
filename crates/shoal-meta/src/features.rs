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
//! - 4: partition reassignment (KIP-455): `PartitionChange` version 1 (`adding_replicas` /
//!   `removing_replicas`); snapshot format 5 (reassignments in progress in the image);
//!   `UnregisterBroker` records (a retired broker's registration removed); `RegisterBroker`
//!   version 2 (the broker's log directory ids, so a replaced disk is recognised).
//! - 5: `VoterDirectory` records (each controller voter's directory id, KIP-853, so a voter
//!   whose disk was wiped cannot vote); snapshot format 6 (them in the image).
//! - 6: `BrokerConfig` records (dynamic broker configs, per broker or cluster-wide, such as
//!   the replication throttle rates); snapshot format 7 (them in the image).
//! - 7: dynamic controller quorum changes (KIP-853 AddVoter / RemoveVoter).
//! - 8: `ClientQuota` records (KIP-546 client quotas); snapshot format 8 (them in the image).
//! - 9: `GroupConfig` records (KIP-848 group configs); snapshot format 9 (them in the image).
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
/// The name `metadata.version` goes by outside the quorum (ApiVersions, UpdateFeatures,
/// `shoal --feature`): Shoal's levels are its own, not Kafka's releases, so Kafka's name would
/// mislead Kafka tools.
pub const REPORTED_METADATA_VERSION: &str = "shoal.metadata.version";

/// The internal name of a feature named `name` outside the quorum; Kafka's own
/// `metadata.version` has none here (its levels are Kafka releases).
pub fn internal_feature_name(name: &str) -> Option<&str> {
    match name {
        REPORTED_METADATA_VERSION => Some(METADATA_VERSION),
        METADATA_VERSION => None,
        other => Some(other),
    }
}

/// The level of a cluster that never finalized one.
pub const BASELINE_METADATA_VERSION: i16 = 1;
/// The newest `metadata.version` this binary reads and writes.
pub const MAX_METADATA_VERSION: i16 = 9;
/// The level from which brokers report their supported features (`RegisterBroker` v1).
pub const BROKER_FEATURES_METADATA_VERSION: i16 = 2;
/// The level from which ACLs may be written (`AccessControlEntry` records).
pub const ACLS_METADATA_VERSION: i16 = 3;
/// The level from which SCRAM credentials may be written (`UserScramCredential` records).
pub const SCRAM_METADATA_VERSION: i16 = 3;
/// The level from which partitions may be reassigned (`PartitionChange` version 1).
pub const REASSIGNMENT_METADATA_VERSION: i16 = 4;
/// The level from which a retired broker may be unregistered (`UnregisterBroker` records).
pub const UNREGISTER_BROKER_METADATA_VERSION: i16 = 4;
/// The level from which brokers' log directory ids are recorded (`RegisterBroker` v2).
pub const DIRECTORY_IDS_METADATA_VERSION: i16 = 4;
/// The level from which controller voters' directory ids are recorded (`VoterDirectory`).
pub const VOTER_DIRECTORIES_METADATA_VERSION: i16 = 5;
/// The level from which dynamic broker configs may be written (`BrokerConfig`).
pub const BROKER_CONFIGS_METADATA_VERSION: i16 = 6;
/// Controller voters may be added and removed (KIP-853): every controller reads the membership
/// index in Raft envelopes and accepts RPCs from members that are not in its configured list.
pub const DYNAMIC_QUORUM_METADATA_VERSION: i16 = 7;
/// The level from which client quotas may be written (`ClientQuota`).
pub const CLIENT_QUOTAS_METADATA_VERSION: i16 = 8;
/// The level from which group configs may be written (`GroupConfig`).
pub const GROUP_CONFIGS_METADATA_VERSION: i16 = 9;

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

/// The levels a new cluster finalizes: each given in `chosen` (Kafka's `kafka-storage format
/// --feature NAME=LEVEL`, Shoal's `shoal --feature`), else this binary's newest. Refuses an
/// unknown feature, a level this binary does not support, and `transaction.version` above 0
/// below `metadata.version` 2.
pub fn bootstrap_levels(chosen: &[(String, i16)]) -> Result<(i16, i16), String> {
    let mut metadata_version = MAX_METADATA_VERSION;
    let mut transaction_version = MAX_TRANSACTION_VERSION;
    for (name, level) in chosen {
        let (slot, min, max) = match internal_feature_name(name) {
            Some(METADATA_VERSION) => (
                &mut metadata_version,
                BASELINE_METADATA_VERSION,
                MAX_METADATA_VERSION,
            ),
            Some(TRANSACTION_VERSION) => (&mut transaction_version, 0, MAX_TRANSACTION_VERSION),
            _ => {
                return Err(format!(
                    "--feature {name}: unknown feature; a new cluster finalizes \
                     {REPORTED_METADATA_VERSION} and {TRANSACTION_VERSION}"
                ));
            }
        };
        if !(min..=max).contains(level) {
            return Err(format!(
                "--feature {name}={level}: this binary supports levels {min} to {max}"
            ));
        }
        *slot = *level;
    }
    if metadata_version < TRANSACTION_VERSION_METADATA_VERSION && transaction_version > 0 {
        // Below metadata.version 2 nothing but metadata.version 1 exists.
        if chosen.iter().any(|(n, _)| n == TRANSACTION_VERSION) {
            return Err(format!(
                "--feature {TRANSACTION_VERSION}={transaction_version} needs \
                 {REPORTED_METADATA_VERSION} {TRANSACTION_VERSION_METADATA_VERSION} or higher"
            ));
        }
        transaction_version = 0;
    }
    Ok((metadata_version, transaction_version))
}

/// The records that finalize `metadata.version` at `level` on a new cluster: one
/// FeatureLevel, `transaction.version` at `transaction_version` when above 0 (at a
/// `metadata.version` that has it), then `extra` (the `--add-scram` credentials; only at a
/// level that has them), unless a level is already finalized (pure).
pub fn plan_bootstrap_features(
    image: &MetadataImage,
    level: i16,
    transaction_version: i16,
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
    if level >= TRANSACTION_VERSION_METADATA_VERSION && transaction_version > 0 {
        records.push(MetadataRecord::FeatureLevel {
            name: TRANSACTION_VERSION.to_string(),
            level: transaction_version,
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
        assert!(plan_bootstrap_features(&image, 1, 2, &[]).is_empty());
        let records = plan_bootstrap_features(&image, 2, 2, &[]);
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
        assert!(plan_bootstrap_features(&image, 2, 2, &[]).is_empty());
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
            plan_bootstrap_features(&image, 2, 2, std::slice::from_ref(&credential)).len(),
            2,
            "level 2 has no SCRAM records"
        );
        let records = plan_bootstrap_features(&image, 3, 2, std::slice::from_ref(&credential));
        assert_eq!(records.len(), 3);
        assert_eq!(records[2], credential);
    }

    #[test]
    fn bootstrap_levels_default_to_the_newest_and_are_checked() {
        let f = |pairs: &[(&str, i16)]| {
            bootstrap_levels(
                &pairs
                    .iter()
                    .map(|(n, l)| (n.to_string(), *l))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(f(&[]), Ok((MAX_METADATA_VERSION, MAX_TRANSACTION_VERSION)));
        assert_eq!(
            f(&[(TRANSACTION_VERSION, 0)]),
            Ok((MAX_METADATA_VERSION, 0))
        );
        let mv = REPORTED_METADATA_VERSION;
        assert_eq!(f(&[(mv, 2)]), Ok((2, MAX_TRANSACTION_VERSION)));
        assert_eq!(f(&[(mv, 1)]), Ok((1, 0)));
        assert!(f(&[(mv, 1), (TRANSACTION_VERSION, 2)]).is_err());
        assert!(f(&[(TRANSACTION_VERSION, MAX_TRANSACTION_VERSION + 1)]).is_err());
        assert!(f(&[(mv, 0)]).is_err());
        assert!(
            f(&[(METADATA_VERSION, 2)]).is_err(),
            "Kafka's metadata.version levels are releases, not Shoal's"
        );
        assert!(f(&[("group.version", 1)]).is_err());
        // A cluster at transaction.version 0 records no FeatureLevel for it.
        let image = MetadataImage::empty("c");
        assert_eq!(plan_bootstrap_features(&image, 3, 0, &[]).len(), 1);
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
