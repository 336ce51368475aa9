//! Broker-level defaults for topics, as Kafka broker config names.
//!
//! The server passes its configuration (`num.partitions`, `default.replication.factor`,
//! `log.retention.ms`, ...) as a plain name → value map. This type validates it once at start-up
//! so the controller never has to cope with a malformed default while serving a request.

use std::collections::BTreeMap;

use crate::topic_config::validate_broker_topic_defaults;

pub const NUM_PARTITIONS: &str = "num.partitions";
pub const DEFAULT_REPLICATION_FACTOR: &str = "default.replication.factor";

/// Validated broker defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerDefaults {
    configs: BTreeMap<String, String>,
    num_partitions: i32,
    default_replication_factor: i16,
}

impl Default for BrokerDefaults {
    fn default() -> Self {
        BrokerDefaults {
            configs: BTreeMap::new(),
            num_partitions: 1,
            default_replication_factor: 1,
        }
    }
}

impl BrokerDefaults {
    /// Parses and validates broker configs; the error names the offending config.
    pub fn from_configs(configs: BTreeMap<String, String>) -> Result<Self, String> {
        let num_partitions = parse_positive::<i32>(&configs, NUM_PARTITIONS, 1)?;
        let default_replication_factor =
            parse_positive::<i16>(&configs, DEFAULT_REPLICATION_FACTOR, 1)?;
        validate_broker_topic_defaults(&configs)?;
        Ok(BrokerDefaults {
            configs,
            num_partitions,
            default_replication_factor,
        })
    }

    /// `num.partitions`: partitions of a topic created without an explicit count.
    pub fn num_partitions(&self) -> i32 {
        self.num_partitions
    }

    /// `default.replication.factor`: replicas per partition when not given.
    pub fn default_replication_factor(&self) -> i16 {
        self.default_replication_factor
    }

    /// All broker configs, for resolving topic config defaults.
    pub fn configs(&self) -> &BTreeMap<String, String> {
        &self.configs
    }
}

fn parse_positive<T>(
    configs: &BTreeMap<String, String>,
    name: &str,
    default: T,
) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + From<u8> + Copy,
{
    let Some(raw) = configs.get(name) else {
        return Ok(default);
    };
    match raw.trim().parse::<T>() {
        Ok(v) if v >= T::from(1) => Ok(v),
        _ => Err(format!(
            "broker config {name}={raw} must be a positive integer"
        )),
    }
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
