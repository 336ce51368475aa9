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

use crate::controller::fence_broker::{UncleanPolicy, plan_remove_broker_from_partitions};
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
    let mut records = vec![MetadataRecord::RegisterBroker {
        broker_id: request.broker_id,
        incarnation_id: request.incarnation_id,
        broker_epoch,
        listeners: request.listeners,
        rack: request.rack,
        supported_features,
    }];
    if existing.is_some() {
        records.extend(plan_remove_broker_from_partitions(
            image,
            request.broker_id,
            unclean,
        ));
    }
    Ok((broker_epoch, records))
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
}
