//! Planning UnregisterBroker (`kafka-cluster unregister`, `shoalctl broker unregister`): the
//! last step of retiring a broker, after its replicas have been moved away.
//!
//! Kafka removes any registration it is asked to; Shoal refuses where that could strand data
//! or be undone at once: a broker that still holds a replica of some partition (those
//! partitions would name a broker that no longer exists; move them first), and a broker that
//! is still running (unfenced: it would just register again). The record carries the broker
//! epoch, so it removes exactly the registration that was checked.

use crate::controller::plan::Planned;
use crate::error::ControllerError;
use crate::features::UNREGISTER_BROKER_METADATA_VERSION;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// The records that remove `broker_id`'s registration, or why not.
pub fn plan_unregister_broker(image: &MetadataImage, broker_id: i32) -> Planned<()> {
    if image.metadata_version() < UNREGISTER_BROKER_METADATA_VERSION {
        return Err(ControllerError::UnsupportedVersion(format!(
            "Unregistering a broker needs metadata.version {UNREGISTER_BROKER_METADATA_VERSION}; \
             this cluster is at {}.",
            image.metadata_version()
        )));
    }
    let broker = image.brokers.get(&broker_id).ok_or_else(|| {
        ControllerError::BrokerIdNotRegistered(format!("Broker {broker_id} is not registered."))
    })?;
    let mut holding = image.topics.values().flat_map(|t| {
        t.partitions
            .iter()
            .filter(|p| p.replicas.contains(&broker_id))
            .map(move |p| format!("{}-{}", t.name, p.partition))
    });
    if let Some(first) = holding.next() {
        return Err(ControllerError::InvalidRequest(format!(
            "Broker {broker_id} still holds replicas of {} partition(s) (first: {first}); move \
             them to other brokers first (shoalctl broker decommission {broker_id}).",
            1 + holding.count()
        )));
    }
    if !broker.fenced {
        return Err(ControllerError::InvalidRequest(format!(
            "Broker {broker_id} is running (unfenced); stop it first, or it registers again."
        )));
    }
    Ok((
        (),
        vec![MetadataRecord::UnregisterBroker {
            broker_id,
            broker_epoch: broker.broker_epoch,
        }],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::test_images::image_with;
    use crate::features::METADATA_VERSION;
    use crate::image::ApplyOutcome;

    fn at_level(mut image: MetadataImage, level: i16) -> MetadataImage {
        let record = MetadataRecord::FeatureLevel {
            name: METADATA_VERSION.into(),
            level,
        };
        assert_eq!(image.apply(&record), ApplyOutcome::Applied);
        image
    }

    #[test]
    fn only_a_stopped_broker_without_replicas_is_unregistered() {
        // Broker 4 is stopped and holds nothing; 3 is stopped but holds a replica; 2 runs.
        let image = at_level(
            image_with(4, &[3, 4], &[(&[1, 2], &[1, 2], 1), (&[1, 3], &[1], 1)]),
            4,
        );
        let ((), records) = plan_unregister_broker(&image, 4).unwrap();
        let mut after = image.clone();
        for r in &records {
            assert_eq!(after.apply(r), ApplyOutcome::Applied);
        }
        assert!(!after.brokers.contains_key(&4));
        assert_eq!(after.brokers.len(), 3);

        let refused = |id: i32| plan_unregister_broker(&image, id).unwrap_err();
        assert!(
            matches!(refused(3), ControllerError::InvalidRequest(m) if m.contains("t-1") && m.contains("1 partition"))
        );
        assert!(matches!(refused(2), ControllerError::InvalidRequest(m) if m.contains("t-0")));
        assert!(matches!(
            refused(9),
            ControllerError::BrokerIdNotRegistered(_)
        ));
        let running = at_level(image_with(2, &[], &[(&[1], &[1], 1)]), 4);
        assert!(matches!(
            plan_unregister_broker(&running, 2),
            Err(ControllerError::InvalidRequest(m)) if m.contains("running")
        ));
        assert!(matches!(
            plan_unregister_broker(&image_with(4, &[4], &[]), 4),
            Err(ControllerError::UnsupportedVersion(_))
        ));
    }

    #[test]
    fn an_unregistration_removes_only_the_epoch_it_names() {
        let mut image = at_level(image_with(2, &[2], &[]), 4);
        let stale = MetadataRecord::UnregisterBroker {
            broker_id: 2,
            broker_epoch: 0,
        };
        assert!(matches!(image.apply(&stale), ApplyOutcome::Skipped(_)));
        assert!(image.brokers.contains_key(&2));
    }
}
