//! Broker-level defaults for topics, as Kafka broker config names.
//!
//! The server passes the settings it was given (`num.partitions`, `log.retention.hours`, ...) as
//! a plain name → value map; defaults come from the schema in `shoal-config`. This type validates
//! the map once at start-up so the controller never has to cope with a malformed default while
//! serving a request.

use std::collections::BTreeMap;

pub const NUM_PARTITIONS: &str = "num.partitions";
pub const DEFAULT_REPLICATION_FACTOR: &str = "default.replication.factor";
pub const MAX_BROKER_PARTITIONS: &str = "max.broker.partitions";

/// Validated broker defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerDefaults {
    configs: BTreeMap<String, String>,
    num_partitions: i32,
    default_replication_factor: i16,
    /// `max.broker.partitions`; `None` = no bound (the server always sets one).
    max_broker_partitions: Option<u32>,
}

impl Default for BrokerDefaults {
    fn default() -> Self {
        BrokerDefaults {
            configs: BTreeMap::new(),
            num_partitions: schema_default(NUM_PARTITIONS),
            default_replication_factor: schema_default(DEFAULT_REPLICATION_FACTOR),
            max_broker_partitions: None,
        }
    }
}

/// The schema default of a numeric setting (a unit test proves these parse).
fn schema_default<T: std::str::FromStr + From<u8>>(name: &str) -> T {
    shoal_config::effective(&BTreeMap::new(), name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(T::from(1))
}

impl BrokerDefaults {
    /// Validates every given setting against the schema; the error names the offending one.
    pub fn from_configs(configs: BTreeMap<String, String>) -> Result<Self, String> {
        for (name, value) in &configs {
            let def = shoal_config::broker_config_def(name)
                .ok_or_else(|| format!("unknown broker config {name}"))?;
            shoal_config::def::normalize(def, value).map_err(|e| e.message)?;
        }
        let num_partitions = parse(&configs, NUM_PARTITIONS)?;
        let default_replication_factor = parse(&configs, DEFAULT_REPLICATION_FACTOR)?;
        let max_broker_partitions = match configs.get(MAX_BROKER_PARTITIONS) {
            Some(_) => Some(parse(&configs, MAX_BROKER_PARTITIONS)?),
            None => None,
        };
        Ok(BrokerDefaults {
            configs,
            num_partitions,
            default_replication_factor,
            max_broker_partitions,
        })
    }

    /// `max.broker.partitions`: partition replicas one broker may hold, if bounded.
    pub fn max_broker_partitions(&self) -> Option<u32> {
        self.max_broker_partitions
    }

    /// `num.partitions`: partitions of a topic created without an explicit count.
    pub fn num_partitions(&self) -> i32 {
        self.num_partitions
    }

    /// `default.replication.factor`: replicas per partition when not given.
    pub fn default_replication_factor(&self) -> i16 {
        self.default_replication_factor
    }

    /// The settings given explicitly, for resolving topic config defaults.
    pub fn configs(&self) -> &BTreeMap<String, String> {
        &self.configs
    }

    /// The effective value of a broker setting: given, or the schema default.
    pub fn effective(&self, name: &str) -> Option<String> {
        shoal_config::effective(&self.configs, name)
    }
}

fn parse<T: std::str::FromStr>(
    configs: &BTreeMap<String, String>,
    name: &str,
) -> Result<T, String> {
    let raw =
        shoal_config::effective(configs, name).ok_or_else(|| format!("{name} has no value"))?;
    raw.parse()
        .map_err(|_| format!("broker config {name}={raw} is not a valid number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_defaults_and_rejects_bad_values() {
        let d = BrokerDefaults::from_configs(BTreeMap::new()).unwrap();
        assert_eq!((d.num_partitions(), d.default_replication_factor()), (1, 1));

        let mut m = BTreeMap::new();
        m.insert(NUM_PARTITIONS.to_string(), "6".to_string());
        m.insert(DEFAULT_REPLICATION_FACTOR.to_string(), "3".to_string());
        let d = BrokerDefaults::from_configs(m.clone()).unwrap();
        assert_eq!((d.num_partitions(), d.default_replication_factor()), (6, 3));

        m.insert(NUM_PARTITIONS.to_string(), "0".to_string());
        assert!(BrokerDefaults::from_configs(m.clone()).is_err());
        m.insert(NUM_PARTITIONS.to_string(), "2".to_string());
        m.insert(DEFAULT_REPLICATION_FACTOR.to_string(), "70000".to_string());
        assert!(BrokerDefaults::from_configs(m.clone()).is_err());
        m.insert(DEFAULT_REPLICATION_FACTOR.to_string(), "1".to_string());
        m.insert("log.retention.ms".to_string(), "-7".to_string());
        let err = BrokerDefaults::from_configs(m).unwrap_err();
        assert!(err.contains("log.retention.ms"), "{err}");
    }
}
