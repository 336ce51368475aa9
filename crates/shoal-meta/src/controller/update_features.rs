//! Planning UpdateFeatures (KIP-584 / KIP-778; `kafka-features upgrade`): raising a finalized
//! feature level, all or nothing, as one Raft entry of FeatureLevel records.
//!
//! **Why the checks.** A finalized level is a promise that every node can read what is written
//! at it (`crate::features`): a broker that cannot would stop at the first record it does not
//! know. So a level is finalized only if every registered broker reported a range that holds
//! it, and this controller's binary supports it too; a broker that reported nothing (a
//! registration of a release before feature reporting) supports `metadata.version` 1 and no
//! other feature, so it must re-register with a newer binary first (a rolling restart).
//! `transaction.version` above 0 needs `metadata.version` 2 (from there brokers report their
//! ranges; the level asked in the same request counts).
//!
//! **Downgrades are refused**: records written at the higher level may already exist, and the
//! image of every release refuses to lower a level (`image.rs`), so a downgrade record would
//! be skipped by some nodes and applied by none; Kafka 4 refuses metadata.version downgrades
//! too. Asking for the current level is a no-op that succeeds.

use std::collections::BTreeMap;

use crate::controller::plan::Planned;
use crate::controller::requests::FeatureUpdate;
use crate::error::ControllerError;
use crate::features::{
    BASELINE_METADATA_VERSION, METADATA_VERSION, REPORTED_METADATA_VERSION, TRANSACTION_VERSION,
    TRANSACTION_VERSION_METADATA_VERSION, supported_range,
};
use crate::image::MetadataImage;
use crate::records::{MetadataRecord, SupportedFeature};

/// The features a level can be finalized for.
const UPDATABLE: [&str; 2] = [METADATA_VERSION, TRANSACTION_VERSION];

/// The FeatureLevel records that finalize `updates` (those that change a level), or why none
/// may be written. `controller_supports` is this controller's own range per feature;
/// `reported` what brokers whose registration records no features (below `metadata.version`
/// 2) reported when they registered with this controller.
pub fn plan_update_features(
    image: &MetadataImage,
    updates: &[FeatureUpdate],
    controller_supports: &[SupportedFeature],
    reported: &BTreeMap<i32, Vec<SupportedFeature>>,
) -> Planned<()> {
    let invalid = |msg: String| Err(ControllerError::InvalidUpdateVersion(msg));
    if updates.is_empty() {
        return Err(ControllerError::InvalidRequest(
            "No feature updates were given.".to_string(),
        ));
    }
    let mut asked: BTreeMap<&str, &FeatureUpdate> = BTreeMap::new();
    for u in updates {
        if asked.insert(u.name.as_str(), u).is_some() {
            return Err(ControllerError::InvalidRequest(format!(
                "Feature {} appears more than once in the request.",
                u.name
            )));
        }
    }
    let current = |name: &str| -> i16 {
        if name == METADATA_VERSION {
            image.metadata_version()
        } else {
            image.finalized_features.get(name).copied().unwrap_or(0)
        }
    };
    let mut records = Vec::new();
    for u in asked.values() {
        if !UPDATABLE.contains(&u.name.as_str()) {
            return invalid(format!(
                "Feature {} is not known to this cluster; it finalizes {REPORTED_METADATA_VERSION} \
                 and {TRANSACTION_VERSION}.",
                u.name
            ));
        }
        let now = current(&u.name);
        if u.level == now {
            continue;
        }
        if u.level < now || u.downgrade {
            return invalid(format!(
                "Feature {} cannot be downgraded (finalized at {now}, asked {}); records \
                 written at the higher level may exist.",
                shown(&u.name),
                u.level
            ));
        }
        let ours = supported_range(Some(controller_supports), &u.name);
        if !ours.is_some_and(|(min, max)| (min..=max).contains(&u.level)) {
            return invalid(format!(
                "This controller supports {} {}, not level {}.",
                shown(&u.name),
                describe(ours),
                u.level
            ));
        }
        for broker in image.brokers.values() {
            let features = broker
                .supported_features
                .as_deref()
                .or_else(|| reported.get(&broker.broker_id).map(Vec::as_slice));
            let range = supported_range(features, &u.name);
            if !range.is_some_and(|(min, max)| (min..=max).contains(&u.level)) {
                return invalid(format!(
                    "Broker {} supports {} {}, not level {}; restart it with a release that \
                     does (it reports its range when it registers).",
                    broker.broker_id,
                    shown(&u.name),
                    describe(range),
                    u.level
                ));
            }
        }
        records.push(MetadataRecord::FeatureLevel {
            name: u.name.clone(),
            level: u.level,
        });
    }
    let metadata_version_after = asked
        .get(METADATA_VERSION)
        .map_or(current(METADATA_VERSION), |u| u.level);
    if let Some(tv) = asked.get(TRANSACTION_VERSION)
        && tv.level > current(TRANSACTION_VERSION)
        && metadata_version_after < TRANSACTION_VERSION_METADATA_VERSION
    {
        return invalid(format!(
            "{TRANSACTION_VERSION} {} needs {REPORTED_METADATA_VERSION} \
             {TRANSACTION_VERSION_METADATA_VERSION} or higher (it is {metadata_version_after}).",
            tv.level
        ));
    }
    // FeatureLevel records exist from metadata.version 2: raising to 2 writes the first one,
    // readable because every broker supports 2 (checked above). metadata.version first, so
    // the entry never carries a record its own level lacks.
    records.sort_by_key(|r| match r {
        MetadataRecord::FeatureLevel { name, .. } => name != METADATA_VERSION,
        _ => true,
    });
    debug_assert!(metadata_version_after >= BASELINE_METADATA_VERSION);
    Ok(((), records))
}

/// A feature as operators see it (`metadata.version` is `shoal.metadata.version` outside).
fn shown(name: &str) -> &str {
    if name == METADATA_VERSION {
        REPORTED_METADATA_VERSION
    } else {
        name
    }
}

fn describe(range: Option<(i16, i16)>) -> String {
    range.map_or("no level".to_string(), |(min, max)| {
        format!("levels {min} to {max}")
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use uuid::Uuid;

    use super::*;
    use crate::features::supported_features;
    use crate::records::Endpoint;

    /// With nothing reported outside the image.
    fn plan(
        img: &MetadataImage,
        updates: &[FeatureUpdate],
        ours: &[SupportedFeature],
    ) -> Planned<()> {
        plan_update_features(img, updates, ours, &BTreeMap::new())
    }

    fn update(name: &str, level: i16) -> FeatureUpdate {
        FeatureUpdate {
            name: name.into(),
            level,
            downgrade: false,
        }
    }

    fn feature(name: &str, min: i16, max: i16) -> SupportedFeature {
        SupportedFeature {
            name: name.into(),
            min_level: min,
            max_level: max,
        }
    }

    /// An image at `metadata.version` `mv` (1: nothing finalized) and `transaction.version`
    /// `tv`, with brokers reporting `brokers` (None: a registration without features).
    fn image(mv: i16, tv: i16, brokers: &[Option<Vec<SupportedFeature>>]) -> MetadataImage {
        let mut image = MetadataImage::empty("c");
        let mut records = Vec::new();
        if mv > 1 {
            records.push(MetadataRecord::FeatureLevel {
                name: METADATA_VERSION.into(),
                level: mv,
            });
        }
        if tv > 0 {
            records.push(MetadataRecord::FeatureLevel {
                name: TRANSACTION_VERSION.into(),
                level: tv,
            });
        }
        for (i, features) in brokers.iter().enumerate() {
            let id = i32::try_from(i).unwrap() + 1;
            records.push(MetadataRecord::RegisterBroker {
                log_dirs: Vec::new(),
                broker_id: id,
                incarnation_id: Uuid::from_u128(id as u128),
                broker_epoch: 1,
                listeners: vec![Endpoint {
                    name: "PLAINTEXT".into(),
                    host: "h".into(),
                    port: 9092,
                }],
                rack: None,
                supported_features: features.clone(),
            });
        }
        image.apply_batch(1, &records);
        image
    }

    fn levels(planned: Planned<()>) -> Result<Vec<(String, i16)>, String> {
        match planned {
            Ok(((), records)) => Ok(records
                .into_iter()
                .map(|r| match r {
                    MetadataRecord::FeatureLevel { name, level } => (name, level),
                    other => panic!("unexpected {other:?}"),
                })
                .collect()),
            Err(ControllerError::InvalidUpdateVersion(m)) => Err(format!("invalid: {m}")),
            Err(ControllerError::InvalidRequest(m)) => Err(format!("request: {m}")),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn raises_transaction_version_once_every_broker_supports_it() {
        let new = Some(supported_features());
        let old = Some(vec![feature(METADATA_VERSION, 1, 3)]); // no transaction.version
        let ours = supported_features();
        // (image, asked, result: Ok(levels) or the start of the error)
        let img = image(3, 0, &[new.clone(), new.clone()]);
        assert_eq!(
            levels(plan(&img, &[update(TRANSACTION_VERSION, 2)], &ours)),
            Ok(vec![(TRANSACTION_VERSION.into(), 2)])
        );
        let img = image(3, 0, &[new.clone(), old.clone()]);
        let err = levels(plan(&img, &[update(TRANSACTION_VERSION, 2)], &ours)).unwrap_err();
        assert!(
            err.contains("Broker 2 supports transaction.version no level"),
            "{err}"
        );
        // Nothing at the current level; a downgrade is refused, so is one flagged as such.
        let img = image(3, 2, std::slice::from_ref(&new));
        assert_eq!(
            levels(plan(&img, &[update(TRANSACTION_VERSION, 2)], &ours)),
            Ok(vec![])
        );
        assert!(
            levels(plan(&img, &[update(TRANSACTION_VERSION, 1)], &ours))
                .unwrap_err()
                .contains("cannot be downgraded")
        );
        let mut flagged = update(TRANSACTION_VERSION, 3);
        flagged.downgrade = true;
        assert!(levels(plan(&img, &[flagged], &ours)).is_err());
    }

    #[test]
    fn levels_beyond_any_binary_and_unknown_features_are_refused() {
        let new = Some(supported_features());
        let ours = supported_features();
        let img = image(3, 0, std::slice::from_ref(&new));
        let err = levels(plan(&img, &[update(TRANSACTION_VERSION, 9)], &ours)).unwrap_err();
        assert!(err.contains("This controller supports"), "{err}");
        let err = levels(plan(&img, &[update("group.version", 1)], &ours)).unwrap_err();
        assert!(err.contains("not known"), "{err}");
        let err = levels(plan(&img, &[], &ours)).unwrap_err();
        assert!(err.starts_with("request:"), "{err}");
        let twice = [
            update(TRANSACTION_VERSION, 1),
            update(TRANSACTION_VERSION, 2),
        ];
        assert!(
            levels(plan(&img, &twice, &ours))
                .unwrap_err()
                .starts_with("request:")
        );
    }

    #[test]
    fn metadata_version_first_and_transaction_version_needs_level_2() {
        let ours = supported_features();
        let reported = Some(supported_features());
        // A legacy broker registration (no features) pins metadata.version at 1.
        let legacy = image(1, 0, &[None]);
        let err = levels(plan(&legacy, &[update(METADATA_VERSION, 2)], &ours)).unwrap_err();
        assert!(
            err.contains("Broker 1 supports shoal.metadata.version levels 1 to 1"),
            "{err}"
        );
        // With brokers that support both, one request raises both, metadata.version first.
        let img = image(1, 0, std::slice::from_ref(&reported));
        assert_eq!(
            levels(plan(
                &img,
                &[update(TRANSACTION_VERSION, 2), update(METADATA_VERSION, 3)],
                &ours
            )),
            Ok(vec![
                (METADATA_VERSION.into(), 3),
                (TRANSACTION_VERSION.into(), 2)
            ])
        );
        let err = levels(plan(&img, &[update(TRANSACTION_VERSION, 2)], &ours)).unwrap_err();
        assert!(err.contains("needs shoal.metadata.version 2"), "{err}");
    }
}
