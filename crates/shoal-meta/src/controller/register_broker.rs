//! Planning a broker registration.
//!
//! The broker epoch must grow with every new registration of a broker id, so a fenced or
//! restarted broker's old requests can be told apart. KRaft uses the offset of the registration
//! record; we cannot know the Raft index before proposing, so we use a lower bound of it, the
//! image's last applied index + 1 (and never less than the previous epoch + 1). A retry with
//! the same incarnation id is idempotent and proposes nothing.
//!
//! A registration is fenced (KRaft): the broker is unfenced by a later heartbeat that reports
//! it has applied the registration (see `liveness`). A new incarnation replacing an old one
//! also takes the old one's leaderships and ISR memberships away in the same entry (KRaft's
//! unclean-shutdown handling): the new process cannot vouch for what the old one acknowledged.
//! A new incarnation is refused while the old one is alive ([`check_not_duplicate`]).
//!
//! Feature levels: a broker must support the finalized `metadata.version`; from level 2 its
//! supported features are recorded (RegisterBroker version 1, see `crate::features`).

use crate::controller::fence_broker::{
    UncleanPolicy, plan_remove_broker_from_partitions, plan_remove_replaced_broker,
};
use crate::controller::plan::{MAX_LISTENERS_PER_BROKER, MAX_NAME_LENGTH, Planned};
use crate::controller::requests::BrokerRegistrationRequest;
use crate::error::{BrokerError, ControllerError};
use crate::features;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// Plans a registration; the result is the broker epoch.
pub fn plan_register_broker(
    image: &MetadataImage,
    request: BrokerRegistrationRequest,
    unclean: UncleanPolicy<'_>,
) -> Planned<i64> {
    validate(&request)?;
    check_supports_finalized(image, &request)?;
    let existing = image.brokers.get(&request.broker_id);
    if let Some(existing) = existing
        && existing.incarnation_id == request.incarnation_id
    {
        return Ok((existing.broker_epoch, Vec::new()));
    }
    let after_log = i64::try_from(image.last_applied_index)
        .unwrap_or(i64::MAX - 1)
        .saturating_add(1);
    let broker_epoch = existing.map_or(after_log, |b| {
        after_log.max(b.broker_epoch.saturating_add(1))
    });
    // Features are recorded (RegisterBroker v1) only once every node can read that version.
    let supported_features = (image.metadata_version()
        >= features::BROKER_FEATURES_METADATA_VERSION)
        .then(|| request.supported_features.unwrap_or_default());
    // Directory ids likewise (RegisterBroker v2).
    let log_dirs = if image.metadata_version() >= features::DIRECTORY_IDS_METADATA_VERSION {
        request.log_dirs
    } else {
        Vec::new()
    };
    let replaced = existing.is_some_and(|e| directories_replaced(&e.log_dirs, &log_dirs));
    let mut records = vec![MetadataRecord::RegisterBroker {
        broker_id: request.broker_id,
        incarnation_id: request.incarnation_id,
        broker_epoch,
        listeners: request.listeners,
        rack: request.rack,
        supported_features,
        log_dirs,
    }];
    if replaced {
        tracing::warn!(
            broker_id = request.broker_id,
            "broker registered with new log directories (its disk was replaced): it leaves \
             every ISR, and a partition it alone was in sync for goes offline"
        );
        records.extend(plan_remove_replaced_broker(
            image,
            request.broker_id,
            unclean,
        ));
    } else if existing.is_some() {
        records.extend(plan_remove_broker_from_partitions(
            image,
            request.broker_id,
            unclean,
        ));
    }
    Ok((broker_epoch, records))
}

/// Whether a broker lost a log directory: both registrations report directory ids and one of
/// the previous ones is missing now (a broker of a release before directory ids, or one
/// registered below metadata.version 4, reports none: nothing can be told). With several log
/// directories (JBOD) the controller does not know which partitions were in the lost one, so
/// the broker leaves every ISR, as when its only directory is replaced; a directory added
/// keeps it in.
pub fn directories_replaced(previous: &[uuid::Uuid], now: &[uuid::Uuid]) -> bool {
    !previous.is_empty() && !now.is_empty() && previous.iter().any(|d| !now.contains(d))
}

/// Refuses a registration by a new incarnation while the registered one is `alive`
/// (Kafka's DUPLICATE_BROKER_REGISTRATION). The same incarnation again is a retry, not a
/// duplicate.
pub fn check_not_duplicate(
    image: &MetadataImage,
    request: &BrokerRegistrationRequest,
    alive: bool,
) -> Result<(), BrokerError> {
    match image.brokers.get(&request.broker_id) {
        Some(existing) if existing.incarnation_id != request.incarnation_id && alive => {
            Err(BrokerError::DuplicateBrokerRegistration {
                broker_id: request.broker_id,
            })
        }
        _ => Ok(()),
    }
}

/// Refuses a broker whose binary cannot read the cluster's finalized `metadata.version` (Kafka
/// refuses such a registration with UNSUPPORTED_VERSION): it would stop at the first record
/// of a version it does not know. Likewise for every other finalized feature above level 0
/// (`transaction.version`): clients rely on every broker serving it.
fn check_supports_finalized(
    image: &MetadataImage,
    request: &BrokerRegistrationRequest,
) -> Result<(), ControllerError> {
    let metadata_version = image.metadata_version();
    let finalized = std::iter::once((features::METADATA_VERSION, metadata_version)).chain(
        image
            .finalized_features
            .iter()
            .filter(|(name, level)| name.as_str() != features::METADATA_VERSION && **level > 0)
            .map(|(name, level)| (name.as_str(), *level)),
    );
    for (name, level) in finalized {
        let range = features::supported_range(request.supported_features.as_deref(), name);
        if range.is_some_and(|(min, max)| (min..=max).contains(&level)) {
            continue;
        }
        let supported = range.map_or("none".to_string(), |(min, max)| format!("{min} to {max}"));
        return Err(ControllerError::InvalidRequest(format!(
            "Broker {} supports {name} {supported}, but the cluster's finalized {name} is \
             {level}; run a Shoal release that supports it.",
            request.broker_id
        )));
    }
    Ok(())
}

fn validate(request: &BrokerRegistrationRequest) -> Result<(), ControllerError> {
    let invalid = |msg: String| Err(ControllerError::InvalidRequest(msg));
    if request.broker_id < 0 {
        return invalid(format!(
            "Broker id {} must not be negative.",
            request.broker_id
        ));
    }
    if request.listeners.is_empty() {
        return invalid("A broker must register at least one listener.".to_string());
    }
    if request.listeners.len() > MAX_LISTENERS_PER_BROKER {
        return invalid(format!(
            "A broker may register at most {MAX_LISTENERS_PER_BROKER} listeners."
        ));
    }
    for (i, l) in request.listeners.iter().enumerate() {
        if l.name.is_empty() || l.name.len() > MAX_NAME_LENGTH {
            return invalid(format!("Listener name '{}' is empty or too long.", l.name));
        }
        if l.host.is_empty() || l.host.len() > MAX_NAME_LENGTH {
            return invalid(format!(
                "Listener {} has an empty or too long host.",
                l.name
            ));
        }
        if l.port == 0 {
            return invalid(format!("Listener {} has port 0.", l.name));
        }
        if request.listeners[..i]
            .iter()
            .any(|other| other.name == l.name)
        {
            return invalid(format!("Listener {} is registered twice.", l.name));
        }
    }
    if let Some(rack) = &request.rack
        && (rack.is_empty() || rack.len() > MAX_NAME_LENGTH)
    {
        return invalid("Rack id must be 1 to 255 characters.".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{METADATA_VERSION, supported_features};
    use crate::records::{Endpoint, SupportedFeature};

    fn request(features: Option<Vec<SupportedFeature>>) -> BrokerRegistrationRequest {
        BrokerRegistrationRequest {
            log_dirs: Vec::new(),
            broker_id: 1,
            incarnation_id: uuid::Uuid::from_u128(1),
            listeners: vec![Endpoint {
                name: "PLAINTEXT".into(),
                host: "h".into(),
                port: 9092,
            }],
            rack: None,
            supported_features: features,
        }
    }

    fn at_level(level: Option<i16>) -> MetadataImage {
        let mut image = MetadataImage::empty("c");
        if let Some(level) = level {
            image.apply_batch(
                1,
                &[MetadataRecord::FeatureLevel {
                    name: METADATA_VERSION.into(),
                    level,
                }],
            );
        }
        image
    }

    fn recorded(planned: Planned<i64>) -> Option<Vec<SupportedFeature>> {
        let (_, records) = planned.expect("registration accepted");
        match &records[0] {
            MetadataRecord::RegisterBroker {
                supported_features, ..
            } => supported_features.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn features_are_recorded_only_from_metadata_version_2() {
        let never = &|_: &crate::image::TopicImage| false;
        // Level 1 (never finalized): the record stays version 0, whatever the broker reports.
        for features in [None, Some(supported_features())] {
            let planned = plan_register_broker(&at_level(None), request(features), never);
            assert_eq!(recorded(planned), None);
        }
        // Level 2: recorded.
        let planned = plan_register_broker(
            &at_level(Some(2)),
            request(Some(supported_features())),
            never,
        );
        assert_eq!(recorded(planned), Some(supported_features()));
    }

    #[test]
    fn a_broker_that_cannot_read_the_finalized_level_is_refused() {
        let never = &|_: &crate::image::TopicImage| false;
        let only = |min, max| {
            Some(vec![SupportedFeature {
                name: METADATA_VERSION.into(),
                min_level: min,
                max_level: max,
            }])
        };
        for (level, features, accepted) in [
            (None, None, true),
            (None, only(1, 2), true),
            (None, only(2, 3), false),
            (Some(2), None, false),
            (Some(2), only(1, 1), false),
            (Some(2), only(1, 2), true),
            (Some(2), Some(vec![]), false),
            (Some(3), only(1, 2), false),
        ] {
            let planned = plan_register_broker(&at_level(level), request(features.clone()), never);
            assert_eq!(planned.is_ok(), accepted, "{level:?} {features:?}");
            if let Err(e) = planned {
                assert!(e.to_string().contains("metadata.version"), "{e}");
            }
        }
    }

    #[test]
    fn directories_are_replaced_when_both_report_and_one_is_gone() {
        let d = |n: u128| uuid::Uuid::from_u128(n);
        for (previous, now, replaced) in [
            (vec![], vec![d(1)], false),
            (vec![d(1)], vec![], false),
            (vec![d(1)], vec![d(1)], false),
            // A log directory added (JBOD), or the same ones in another order.
            (vec![d(1)], vec![d(1), d(2)], false),
            (vec![d(1), d(2)], vec![d(2), d(1)], false),
            // One of several lost or replaced: which partitions it held is not known here.
            (vec![d(1), d(2)], vec![d(2), d(3)], true),
            (vec![d(1), d(2)], vec![d(1)], true),
            (vec![d(1)], vec![d(2)], true),
        ] {
            assert_eq!(
                directories_replaced(&previous, &now),
                replaced,
                "{previous:?} -> {now:?}"
            );
        }
    }

    /// Broker 1 was the last in-sync replica of partition 0 (fenced since, no leader) and
    /// one of two of partition 1; it comes back as a new incarnation.
    fn after_reregistration(new_dirs: Vec<uuid::Uuid>) -> MetadataImage {
        let mut image = crate::controller::test_images::image_with(
            2,
            &[1],
            &[
                (&[1, 2], &[1], crate::records::NO_LEADER),
                (&[1, 2], &[1, 2], 2),
            ],
        );
        let level = MetadataRecord::FeatureLevel {
            name: METADATA_VERSION.into(),
            level: crate::features::MAX_METADATA_VERSION,
        };
        image.apply_batch(2, &[level]);
        // Its registration before the crash reported directory 0xd1.
        let first = BrokerRegistrationRequest {
            incarnation_id: uuid::Uuid::from_u128(7),
            log_dirs: vec![uuid::Uuid::from_u128(0xd1)],
            ..request(Some(supported_features()))
        };
        let never = &|_: &crate::image::TopicImage| false;
        let (_, records) = plan_register_broker(&image, first, never).unwrap();
        image.apply_batch(3, &records);
        let again = BrokerRegistrationRequest {
            incarnation_id: uuid::Uuid::from_u128(8),
            log_dirs: new_dirs,
            ..request(Some(supported_features()))
        };
        let (_, records) = plan_register_broker(&image, again, never).unwrap();
        image.apply_batch(4, &records);
        image
    }

    fn isrs(image: &MetadataImage) -> Vec<Vec<i32>> {
        let topic = &image.topics[&crate::controller::test_images::TOPIC_ID];
        topic.partitions.iter().map(|p| p.isr.clone()).collect()
    }

    #[test]
    fn a_replaced_disk_leaves_even_the_isr_it_was_alone_in() {
        // A restart with the same directory: it stays the last ISR member (it holds the data).
        let restarted = after_reregistration(vec![uuid::Uuid::from_u128(0xd1)]);
        assert_eq!(isrs(&restarted), vec![vec![1], vec![2]]);
        // A new directory: it holds nothing it acknowledged, so partition 0 has no in-sync
        // replica left (offline, not led by an empty log).
        let replaced = after_reregistration(vec![uuid::Uuid::from_u128(0xd2)]);
        assert_eq!(isrs(&replaced), vec![Vec::<i32>::new(), vec![2]]);
        let p0 = &replaced.topics[&crate::controller::test_images::TOPIC_ID].partitions[0];
        assert_eq!(p0.leader, crate::records::NO_LEADER);
        assert_eq!(
            replaced.brokers[&1].log_dirs,
            vec![uuid::Uuid::from_u128(0xd2)]
        );
        // Unfencing it elects nothing there.
        let never = &|_: &crate::image::TopicImage| false;
        let epoch = replaced.brokers[&1].broker_epoch;
        let records = crate::controller::plan_unfence_broker(&replaced, 1, epoch, never);
        assert_eq!(records.len(), 1, "only the UnfenceBroker: {records:?}");
    }
}
