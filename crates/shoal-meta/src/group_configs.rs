//! Group configs (KIP-848): per-group overrides of a consumer group's session timeout and
//! heartbeat interval, as the metadata image holds them.
//!
//! **Why in the metadata log.** A group's coordinator can move to any broker (its
//! `__consumer_offsets` partition changes leader), and the new one must hold the group to the
//! same timeouts from its first heartbeat. So IncrementalAlterConfigs on a GROUP resource
//! becomes `GroupConfig` records (Kafka's ConfigRecord of a GROUP resource), and every broker's
//! image has them; coordinators read the image. Like Kafka's, they belong to the group id and
//! outlive the group itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Group id → config name → value (only groups with at least one override).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupConfigs {
    pub groups: BTreeMap<String, BTreeMap<String, String>>,
}

impl GroupConfigs {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The overrides of `group`, if it has any.
    pub fn of(&self, group: &str) -> Option<&BTreeMap<String, String>> {
        self.groups.get(group)
    }

    /// `group`'s override of `name`.
    pub fn get(&self, group: &str, name: &str) -> Option<&str> {
        self.groups.get(group)?.get(name).map(String::as_str)
    }

    /// Sets (`Some`) or removes (`None`) one override; a group left without any is dropped.
    pub fn set(&mut self, group: &str, name: &str, value: Option<&str>) {
        match value {
            Some(v) => {
                self.groups
                    .entry(group.to_string())
                    .or_default()
                    .insert(name.to_string(), v.to_string());
            }
            None => {
                if let Some(configs) = self.groups.get_mut(group) {
                    configs.remove(name);
                    if configs.is_empty() {
                        self.groups.remove(group);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_without_overrides_is_forgotten() {
        let mut configs = GroupConfigs::default();
        configs.set("g", "consumer.session.timeout.ms", Some("50000"));
        configs.set("g", "consumer.heartbeat.interval.ms", Some("6000"));
        assert_eq!(
            configs.get("g", "consumer.session.timeout.ms"),
            Some("50000")
        );
        configs.set("g", "consumer.session.timeout.ms", None);
        assert_eq!(configs.of("g").map(BTreeMap::len), Some(1));
        configs.set("g", "consumer.heartbeat.interval.ms", None);
        assert!(configs.is_empty());
        // Removing what is not there changes nothing.
        configs.set("h", "consumer.session.timeout.ms", None);
        assert!(configs.is_empty());
    }
}
