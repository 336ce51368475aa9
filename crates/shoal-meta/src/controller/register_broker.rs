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

use crate::controller::fence_broker::{UncleanPolicy, plan_remove_broker_from_partitions};
use crate::controller::plan::{MAX_LISTENERS_PER_BROKER, MAX_NAME_LENGTH, Planned};
use crate::controller::requests::BrokerRegistrationRequest;
use crate::error::{BrokerError, ControllerError};
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// Plans a registration; the result is the broker epoch.
pub fn plan_register_broker(
    image: &MetadataImage,
    request: BrokerRegistrationRequest,
    unclean: UncleanPolicy<'_>,
) -> Planned<i64> {
    validate(&request)?;
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
    let mut records = vec![MetadataRecord::RegisterBroker {
        broker_id: request.broker_id,
        incarnation_id: request.incarnation_id,
        broker_epoch,
        listeners: request.listeners,
        rack: request.rack,
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
