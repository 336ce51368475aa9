//! Client quotas (KIP-546): byte rates per user, per client id, per both, and their defaults.
//!
//! **Why in the metadata log.** A quota is a cluster-wide promise ("alice produces at most
//! 1 MB/s on every broker"): every broker must enforce the same value from the same moment, and
//! a restart must not forget it. So an AlterClientQuotas becomes `ClientQuota` records (Kafka's
//! ClientQuotaRecord), applied into [`ClientQuotas`] of the image; brokers enforce what their
//! image holds (`shoal-broker`'s `quotas`).
//!
//! **The entity.** Kafka names a quota by an entity: a user, a client id, or both, each either
//! a name or the default of its type (a null name on the wire, `<default>` in Kafka's tools).
//! Kafka's IP entities (connection creation rates) are not served: the planner refuses them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Bytes per second a (user, client id) may produce, on each broker.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
/// Bytes per second a (user, client id) may fetch, on each broker.
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";

/// Percent of one request-handling thread's time a (user, client id) may take, on each
/// broker (100: one thread's worth).
pub const REQUEST_PERCENTAGE: &str = "request_percentage";

/// The quota keys Shoal enforces, and whether each value must be a whole number. Kafka also
/// has `controller_mutation_rate`; Shoal refuses it rather than store a quota that nothing
/// enforces.
pub const QUOTA_KEYS: [(&str, QuotaValueKind); 3] = [
    (PRODUCER_BYTE_RATE, QuotaValueKind::Long),
    (CONSUMER_BYTE_RATE, QuotaValueKind::Long),
    (REQUEST_PERCENTAGE, QuotaValueKind::Double),
];

/// Kafka's entity type names on the wire.
pub const USER_ENTITY: &str = "user";
pub const CLIENT_ID_ENTITY: &str = "client-id";
pub const IP_ENTITY: &str = "ip";

/// Most quota entities a cluster keeps (each with up to [`QUOTA_KEYS`] values): a bound on
/// the image and on what every broker resolves against.
pub const MAX_QUOTA_ENTITIES: usize = 100_000;

/// How a quota key's value is typed (Kafka's ConfigDef type of the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaValueKind {
    /// A whole number, sent as a double.
    Long,
    /// Any positive number.
    Double,
}

/// The kind of a quota key, `None` for a key Shoal does not serve.
pub fn quota_key_kind(key: &str) -> Option<QuotaValueKind> {
    QUOTA_KEYS
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, kind)| *kind)
}

/// One part of an entity: a name, or the default of its type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QuotaEntityName {
    Default,
    Name(String),
}

impl QuotaEntityName {
    /// From Kafka's nullable entity name.
    pub fn from_wire(name: Option<&str>) -> Self {
        name.map_or(QuotaEntityName::Default, |n| {
            QuotaEntityName::Name(n.to_string())
        })
    }

    /// Kafka's nullable entity name.
    pub fn as_wire(&self) -> Option<&str> {
        match self {
            QuotaEntityName::Default => None,
            QuotaEntityName::Name(n) => Some(n),
        }
    }
}

impl fmt::Display for QuotaEntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuotaEntityName::Default => f.write_str("<default>"),
            QuotaEntityName::Name(n) => f.write_str(n),
        }
    }
}

/// A quota's entity: a user, a client id, or both (at least one).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientQuotaEntity {
    pub user: Option<QuotaEntityName>,
    pub client_id: Option<QuotaEntityName>,
}

impl ClientQuotaEntity {
    pub fn user(name: QuotaEntityName) -> Self {
        ClientQuotaEntity {
            user: Some(name),
            client_id: None,
        }
    }

    pub fn client_id(name: QuotaEntityName) -> Self {
        ClientQuotaEntity {
            user: None,
            client_id: Some(name),
        }
    }

    pub fn user_and_client_id(user: QuotaEntityName, client_id: QuotaEntityName) -> Self {
        ClientQuotaEntity {
            user: Some(user),
            client_id: Some(client_id),
        }
    }

    /// Whether this names anything (an empty entity is never stored).
    pub fn is_valid(&self) -> bool {
        self.user.is_some() || self.client_id.is_some()
    }
}

impl fmt::Display for ClientQuotaEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.user, &self.client_id) {
            (Some(u), Some(c)) => write!(f, "user={u} client-id={c}"),
            (Some(u), None) => write!(f, "user={u}"),
            (None, Some(c)) => write!(f, "client-id={c}"),
            (None, None) => f.write_str("(none)"),
        }
    }
}

/// A quota value (Kafka stores doubles). Compared by its bits, so images stay `Eq`; the
/// planner never stores NaN.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct QuotaValue(pub f64);

impl PartialEq for QuotaValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for QuotaValue {}

/// The quotas in force: each entity's values by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientQuotas {
    pub entities: BTreeMap<ClientQuotaEntity, BTreeMap<String, QuotaValue>>,
}

impl ClientQuotas {
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// `key`'s value for exactly `entity`.
    pub fn get(&self, entity: &ClientQuotaEntity, key: &str) -> Option<f64> {
        self.entities
            .get(entity)
            .and_then(|values| values.get(key))
            .map(|v| v.0)
    }

    /// Sets (`Some`) or removes (`None`) one value; an entity left without values is dropped.
    pub fn set(&mut self, entity: &ClientQuotaEntity, key: &str, value: Option<f64>) {
        match value {
            Some(v) => {
                self.entities
                    .entry(entity.clone())
                    .or_default()
                    .insert(key.to_string(), QuotaValue(v));
            }
            None => {
                if let Some(values) = self.entities.get_mut(entity) {
                    values.remove(key);
                    if values.is_empty() {
                        self.entities.remove(entity);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> ClientQuotaEntity {
        ClientQuotaEntity::user(QuotaEntityName::Name("alice".into()))
    }

    #[test]
    fn set_and_remove_drop_empty_entities() {
        let mut quotas = ClientQuotas::default();
        quotas.set(&alice(), PRODUCER_BYTE_RATE, Some(1024.0));
        quotas.set(&alice(), CONSUMER_BYTE_RATE, Some(2048.0));
        assert_eq!(quotas.get(&alice(), PRODUCER_BYTE_RATE), Some(1024.0));
        quotas.set(&alice(), PRODUCER_BYTE_RATE, None);
        assert_eq!(quotas.get(&alice(), PRODUCER_BYTE_RATE), None);
        assert!(!quotas.is_empty());
        quotas.set(&alice(), CONSUMER_BYTE_RATE, None);
        assert!(quotas.is_empty());
        // Removing what is not there changes nothing.
        quotas.set(&alice(), CONSUMER_BYTE_RATE, None);
        assert!(quotas.is_empty());
    }

    #[test]
    fn names_display_as_kafka_tools_do() {
        let entity = ClientQuotaEntity::user_and_client_id(
            QuotaEntityName::Default,
            QuotaEntityName::Name("app".into()),
        );
        assert_eq!(entity.to_string(), "user=<default> client-id=app");
        assert_eq!(QuotaEntityName::from_wire(None), QuotaEntityName::Default);
        assert_eq!(QuotaEntityName::from_wire(Some("x")).as_wire(), Some("x"));
    }
}
