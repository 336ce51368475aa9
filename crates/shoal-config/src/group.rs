//! Group configs (KIP-848, Kafka 4.0's `ConfigResource.Type.GROUP`): per-group overrides of
//! a consumer group's session timeout and heartbeat interval.
//!
//! As topic configs, a group config has no type or default of its own: it borrows them from
//! the broker setting that supplies its value when the group has no override
//! (`consumer.session.timeout.ms` ← `group.consumer.session.timeout.ms`), and its range is
//! the one the broker allows (`group.consumer.min/max.session.timeout.ms`), so a group can
//! never be given a value its coordinator would refuse from a client. Kafka checks them the
//! same way (`GroupConfig.validateValues`), on the controller's settings.
//!
//! Kafka's `share.*` group configs are not here: Shoal has no share groups, and a setting
//! stored without effect would tell the operator it worked when it did not.

use std::collections::BTreeMap;

use crate::broker::broker_config_def;
use crate::def::{ConfigDef, ConfigError, normalize};
use crate::effective::effective;

/// The definition of one group config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfigDef {
    pub name: &'static str,
    /// The broker setting that supplies the type and the value without an override.
    pub broker: &'static str,
    /// The broker settings bounding it (inclusive).
    pub min: &'static str,
    pub max: &'static str,
    pub documentation: &'static str,
}

/// `consumer.session.timeout.ms`
pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
/// `consumer.heartbeat.interval.ms`
pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";

/// Every group config, by name.
pub static GROUP_CONFIGS: &[GroupConfigDef] = &[
    GroupConfigDef {
        name: CONSUMER_HEARTBEAT_INTERVAL_MS,
        broker: "group.consumer.heartbeat.interval.ms",
        min: "group.consumer.min.heartbeat.interval.ms",
        max: "group.consumer.max.heartbeat.interval.ms",
        documentation: "How often this group's members (consumer protocol) heartbeat; below consumer.session.timeout.ms.",
    },
    GroupConfigDef {
        name: CONSUMER_SESSION_TIMEOUT_MS,
        broker: "group.consumer.session.timeout.ms",
        min: "group.consumer.min.session.timeout.ms",
        max: "group.consumer.max.session.timeout.ms",
        documentation: "How long a member of this group (consumer protocol) may go without a heartbeat before it is removed.",
    },
];

/// The definition of group config `name`.
pub fn group_config_def(name: &str) -> Option<&'static GroupConfigDef> {
    GROUP_CONFIGS.iter().find(|d| d.name == name)
}

impl GroupConfigDef {
    /// The broker setting's definition (a test proves each exists).
    pub fn broker_def(&self) -> Option<&'static ConfigDef> {
        broker_config_def(self.broker)
    }

    /// The value without an override: the broker setting's effective value.
    pub fn default_value(&self, broker_settings: &BTreeMap<String, String>) -> String {
        effective(broker_settings, self.broker).unwrap_or_default()
    }
}

/// A group config's value and whether it is the group's own (`true`) or the broker's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedGroupConfig {
    pub def: &'static GroupConfigDef,
    pub value: String,
    pub overridden: bool,
}

/// Every group config of a group with `overrides`, in table order.
pub fn resolve_group_configs(
    overrides: Option<&BTreeMap<String, String>>,
    broker_settings: &BTreeMap<String, String>,
) -> Vec<ResolvedGroupConfig> {
    GROUP_CONFIGS
        .iter()
        .map(|def| match overrides.and_then(|o| o.get(def.name)) {
            Some(value) => ResolvedGroupConfig {
                def,
                value: value.clone(),
                overridden: true,
            },
            None => ResolvedGroupConfig {
                def,
                value: def.default_value(broker_settings),
                overridden: false,
            },
        })
        .collect()
}

fn refuse(name: &str, message: String) -> ConfigError {
    ConfigError {
        name: name.to_string(),
        message,
    }
}

/// Checks a group's whole set of overrides after a change, as Kafka's `GroupConfig.validate`:
/// known names, integers of at least 1, each within the bounds the broker settings give, and
/// the session timeout (override or broker value) above the heartbeat interval. Returns the
/// overrides normalized.
pub fn validate_group_configs(
    overrides: &BTreeMap<String, String>,
    broker_settings: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut normalized = BTreeMap::new();
    for (name, raw) in overrides {
        let def = group_config_def(name)
            .ok_or_else(|| refuse(name, format!("Unknown group config name: {name}")))?;
        let broker_def = def.broker_def().ok_or_else(|| {
            refuse(
                name,
                format!("{name}: its broker setting {} is unknown", def.broker),
            )
        })?;
        // The broker setting's type and validator (INT, at least 1), under the group's name.
        let value = normalize(broker_def, raw)
            .map_err(|e| refuse(name, e.message.replace(def.broker, def.name)))?;
        let bound = |setting: &str| -> i64 {
            effective(broker_settings, setting)
                .and_then(|v| v.parse().ok())
                .unwrap_or(i64::from(i32::MAX))
        };
        let n: i64 = value.parse().unwrap_or_default();
        if n < bound(def.min) {
            return Err(refuse(
                name,
                format!("{name} must be greater than or equal to {}", def.min),
            ));
        }
        if n > bound(def.max) {
            return Err(refuse(
                name,
                format!("{name} must be less than or equal to {}", def.max),
            ));
        }
        normalized.insert(name.clone(), value);
    }
    let value_of = |name: &str| -> i64 {
        let def = group_config_def(name);
        normalized
            .get(name)
            .cloned()
            .or_else(|| def.map(|d| d.default_value(broker_settings)))
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    };
    if value_of(CONSUMER_SESSION_TIMEOUT_MS) <= value_of(CONSUMER_HEARTBEAT_INTERVAL_MS) {
        return Err(refuse(
            CONSUMER_SESSION_TIMEOUT_MS,
            format!(
                "{CONSUMER_SESSION_TIMEOUT_MS} must be greater than {CONSUMER_HEARTBEAT_INTERVAL_MS}"
            ),
        ));
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_group_config_borrows_an_int_broker_setting_and_its_bounds() {
        for def in GROUP_CONFIGS {
            let broker = def.broker_def().expect(def.broker);
            assert_eq!(
                broker.config_type,
                crate::def::ConfigType::Int,
                "{}",
                def.name
            );
            assert!(broker_config_def(def.min).is_some(), "{}", def.min);
            assert!(broker_config_def(def.max).is_some(), "{}", def.max);
        }
    }

    #[test]
    fn overrides_are_checked_as_kafka_checks_them() {
        let broker = BTreeMap::new();
        let ok = |pairs: &[(&str, &str)]| validate_group_configs(&map(pairs), &broker);
        assert_eq!(
            ok(&[(CONSUMER_SESSION_TIMEOUT_MS, " 50000 ")]),
            Ok(map(&[(CONSUMER_SESSION_TIMEOUT_MS, "50000")]))
        );
        assert_eq!(ok(&[]), Ok(BTreeMap::new()));
        // (overrides, what the message says)
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("consumer.unknown", "1")],
                "Unknown group config name: consumer.unknown",
            ),
            (
                &[("share.session.timeout.ms", "45000")],
                "Unknown group config name",
            ),
            (
                &[(CONSUMER_SESSION_TIMEOUT_MS, "abc")],
                "Not a number of type INT",
            ),
            (
                &[(CONSUMER_SESSION_TIMEOUT_MS, "0")],
                "Invalid value 0 for configuration consumer.session.timeout.ms: Value must be at least 1",
            ),
            (
                &[(CONSUMER_SESSION_TIMEOUT_MS, "44999")],
                "must be greater than or equal to group.consumer.min.session.timeout.ms",
            ),
            (
                &[(CONSUMER_SESSION_TIMEOUT_MS, "60001")],
                "must be less than or equal to group.consumer.max.session.timeout.ms",
            ),
            (
                &[(CONSUMER_HEARTBEAT_INTERVAL_MS, "4999")],
                "must be greater than or equal to group.consumer.min.heartbeat.interval.ms",
            ),
            (
                &[(CONSUMER_HEARTBEAT_INTERVAL_MS, "15001")],
                "must be less than or equal to group.consumer.max.heartbeat.interval.ms",
            ),
        ];
        for (pairs, needle) in cases {
            let err = ok(pairs).expect_err(needle);
            assert!(err.message.contains(needle), "{pairs:?}: {}", err.message);
        }
    }

    #[test]
    fn the_session_timeout_stays_above_the_heartbeat_interval_whichever_is_overridden() {
        // Wide broker bounds so only the cross-check can refuse.
        let broker = map(&[
            ("group.consumer.min.session.timeout.ms", "1000"),
            ("group.consumer.min.heartbeat.interval.ms", "1000"),
            ("group.consumer.max.heartbeat.interval.ms", "60000"),
        ]);
        let check = |pairs: &[(&str, &str)]| validate_group_configs(&map(pairs), &broker);
        // The broker's heartbeat interval (5000) against the group's session timeout.
        assert!(check(&[(CONSUMER_SESSION_TIMEOUT_MS, "5000")]).is_err());
        assert!(check(&[(CONSUMER_SESSION_TIMEOUT_MS, "5001")]).is_ok());
        // The group's heartbeat interval against the broker's session timeout (45000).
        assert!(check(&[(CONSUMER_HEARTBEAT_INTERVAL_MS, "45000")]).is_err());
        assert!(check(&[(CONSUMER_HEARTBEAT_INTERVAL_MS, "44999")]).is_ok());
        // Both overridden.
        assert!(
            check(&[
                (CONSUMER_SESSION_TIMEOUT_MS, "2000"),
                (CONSUMER_HEARTBEAT_INTERVAL_MS, "1000")
            ])
            .is_ok()
        );
    }

    #[test]
    fn a_group_without_overrides_has_the_broker_values() {
        let broker = map(&[("group.consumer.session.timeout.ms", "50000")]);
        let own = map(&[(CONSUMER_HEARTBEAT_INTERVAL_MS, "6000")]);
        let resolved = resolve_group_configs(Some(&own), &broker);
        let got: Vec<(&str, &str, bool)> = resolved
            .iter()
            .map(|c| (c.def.name, c.value.as_str(), c.overridden))
            .collect();
        assert_eq!(
            got,
            vec![
                (CONSUMER_HEARTBEAT_INTERVAL_MS, "6000", true),
                (CONSUMER_SESSION_TIMEOUT_MS, "50000", false),
            ]
        );
    }
}
