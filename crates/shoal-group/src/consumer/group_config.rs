//! A consumer group's own session timeout and heartbeat interval (KIP-848 group configs,
//! `consumer.session.timeout.ms` / `consumer.heartbeat.interval.ms`), over the broker's
//! `group.consumer.*` values.
//!
//! The overrides live in the cluster metadata (the broker's image); the coordinator asks for a
//! group's at each heartbeat and deadline, as Kafka's `GroupMetadataManager` asks its
//! `GroupConfigManager`, so a change applies from each member's next heartbeat.

use crate::consumer::group::ConsumerGroupSettings;

/// One group's overrides; `None`: the broker's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupOverrides {
    pub session_timeout_ms: Option<i32>,
    pub heartbeat_interval_ms: Option<i32>,
}

/// Where the coordinator finds a group's overrides.
pub trait GroupConfigSource: Send + Sync {
    fn overrides(&self, group_id: &str) -> GroupOverrides;
}

impl ConsumerGroupSettings {
    /// These settings with a group's overrides in force.
    pub fn with_overrides(mut self, overrides: GroupOverrides) -> Self {
        if let Some(ms) = overrides.session_timeout_ms {
            self.session_timeout_ms = ms;
        }
        if let Some(ms) = overrides.heartbeat_interval_ms {
            self.heartbeat_interval_ms = ms;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_replaces_only_its_own_setting() {
        let broker = ConsumerGroupSettings::default();
        let session_only = GroupOverrides {
            session_timeout_ms: Some(50_000),
            heartbeat_interval_ms: None,
        };
        let s = broker.with_overrides(session_only);
        assert_eq!(
            (s.session_timeout_ms, s.heartbeat_interval_ms),
            (50_000, 5_000)
        );
        let s = broker.with_overrides(GroupOverrides::default());
        assert_eq!(
            (s.session_timeout_ms, s.heartbeat_interval_ms),
            (45_000, 5_000)
        );
    }
}
