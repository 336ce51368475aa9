//! Group coordinator and `__consumer_offsets` settings, by Kafka name, from the broker settings.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use shoal_group::consumer::assignor::AssignorName;
use shoal_group::consumer::group::{ConsumerGroupSettings, MigrationPolicy};
use shoal_group::{CoordinatorConfig, GroupSettings};

use crate::internal_topic::InternalTopicSpec;

/// How the offsets topic is created the first time a client looks for a coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetsTopicConfig {
    /// `offsets.topic.num.partitions`
    pub num_partitions: i32,
    /// `offsets.topic.replication.factor`: creation waits until this many brokers registered,
    /// as in Kafka; an offsets topic with fewer copies would lose commits with one broker.
    pub replication_factor: i16,
    /// `offsets.topic.segment.bytes`
    pub segment_bytes: u64,
}

impl OffsetsTopicConfig {
    /// How `__consumer_offsets` is created (Kafka's `groupMetadataTopicConfigs`).
    pub fn spec(&self) -> InternalTopicSpec {
        InternalTopicSpec {
            name: shoal_group::OFFSETS_TOPIC,
            num_partitions: self.num_partitions,
            replication_factor: self.replication_factor,
            replication_factor_setting: "offsets.topic.replication.factor",
            min_insync_replicas: None,
            configs: [
                ("cleanup.policy", "compact".to_string()),
                ("compression.type", "producer".to_string()),
                ("segment.bytes", self.segment_bytes.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct GroupsConfig {
    pub coordinator: CoordinatorConfig,
    pub offsets_topic: OffsetsTopicConfig,
}

/// A group setting's effective value (explicit, else the schema's default), validated by the
/// schema and parsed.
pub(crate) fn get<T: std::str::FromStr>(
    settings: &BTreeMap<String, String>,
    name: &str,
) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    let def = shoal_config::broker_config_def(name)
        .with_context(|| format!("{name} is not in the configuration schema"))?;
    let raw = shoal_config::effective(settings, name)
        .with_context(|| format!("{name} has no value and no default"))?;
    let value = shoal_config::def::normalize(def, &raw)?;
    value
        .parse::<T>()
        .map_err(|e| anyhow::anyhow!("{name}={value:?}: {e}"))
}

impl GroupsConfig {
    pub fn from_settings(settings: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let num_partitions: i32 = get(settings, "offsets.topic.num.partitions")?;
        let replication_factor: i16 = get(settings, "offsets.topic.replication.factor")?;
        let segment_bytes: u64 = get(settings, "offsets.topic.segment.bytes")?;
        let commit_timeout_ms: u64 = get(settings, "offsets.commit.timeout.ms")?;
        let metadata_max_bytes: usize = get(settings, "offset.metadata.max.bytes")?;
        let initial_rebalance_delay_ms: i64 = get(settings, "group.initial.rebalance.delay.ms")?;
        let min_session_timeout_ms: i32 = get(settings, "group.min.session.timeout.ms")?;
        let max_session_timeout_ms: i32 = get(settings, "group.max.session.timeout.ms")?;
        let max_size: i32 = get(settings, "group.max.size")?;
        let retention_minutes: i64 = get(settings, "offsets.retention.minutes")?;
        let retention_check_interval_ms: u64 =
            get(settings, "offsets.retention.check.interval.ms")?;
        let consumer = consumer_settings(settings)?;
        if max_session_timeout_ms < min_session_timeout_ms {
            bail!(
                "group.min.session.timeout.ms={min_session_timeout_ms} must be at most \
                 group.max.session.timeout.ms={max_session_timeout_ms}"
            );
        }
        Ok(GroupsConfig {
            coordinator: CoordinatorConfig {
                offsets_partitions: num_partitions,
                group: GroupSettings {
                    initial_rebalance_delay_ms,
                    max_size: usize::try_from(max_size).unwrap_or(usize::MAX),
                },
                min_session_timeout_ms,
                max_session_timeout_ms,
                metadata_max_bytes,
                commit_timeout_ms,
                offsets_retention_ms: retention_minutes.saturating_mul(60_000),
                retention_check_interval_ms,
                consumer,
                consumer_protocol: protocols(settings)?.contains(&"consumer".to_string()),
            },
            offsets_topic: OffsetsTopicConfig {
                num_partitions,
                replication_factor,
                segment_bytes,
            },
        })
    }
}

fn protocols(settings: &BTreeMap<String, String>) -> anyhow::Result<Vec<String>> {
    let raw: String = get(settings, "group.coordinator.rebalance.protocols")?;
    Ok(raw.split(',').map(|s| s.trim().to_string()).collect())
}

/// `group.consumer.*`, with Kafka's checks: the session timeout and heartbeat interval within
/// their bounds, and the interval below the session timeout.
fn consumer_settings(settings: &BTreeMap<String, String>) -> anyhow::Result<ConsumerGroupSettings> {
    let session_timeout_ms: i32 = get(settings, "group.consumer.session.timeout.ms")?;
    let min_session_ms: i32 = get(settings, "group.consumer.min.session.timeout.ms")?;
    let max_session_ms: i32 = get(settings, "group.consumer.max.session.timeout.ms")?;
    let heartbeat_interval_ms: i32 = get(settings, "group.consumer.heartbeat.interval.ms")?;
    let min_heartbeat_ms: i32 = get(settings, "group.consumer.min.heartbeat.interval.ms")?;
    let max_heartbeat_ms: i32 = get(settings, "group.consumer.max.heartbeat.interval.ms")?;
    let max_size: i32 = get(settings, "group.consumer.max.size")?;
    let assignors: String = get(settings, "group.consumer.assignors")?;
    let migration: String = get(settings, "group.consumer.migration.policy")?;
    let migration_policy = MigrationPolicy::parse(&migration)
        .with_context(|| format!("group.consumer.migration.policy: unknown policy {migration}"))?;
    if !(min_session_ms..=max_session_ms).contains(&session_timeout_ms) {
        bail!(
            "group.consumer.session.timeout.ms={session_timeout_ms} must be within \
             group.consumer.min.session.timeout.ms={min_session_ms} and \
             group.consumer.max.session.timeout.ms={max_session_ms}"
        );
    }
    if !(min_heartbeat_ms..=max_heartbeat_ms).contains(&heartbeat_interval_ms) {
        bail!(
            "group.consumer.heartbeat.interval.ms={heartbeat_interval_ms} must be within \
             group.consumer.min.heartbeat.interval.ms={min_heartbeat_ms} and \
             group.consumer.max.heartbeat.interval.ms={max_heartbeat_ms}"
        );
    }
    if heartbeat_interval_ms >= session_timeout_ms {
        bail!(
            "group.consumer.heartbeat.interval.ms={heartbeat_interval_ms} must be below \
             group.consumer.session.timeout.ms={session_timeout_ms}"
        );
    }
    let mut list = [None; 2];
    let names = assignors
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty());
    for (slot, name) in list.iter_mut().zip(names) {
        *slot = Some(
            AssignorName::parse(name)
                .with_context(|| format!("group.consumer.assignors: unknown assignor {name}"))?,
        );
    }
    Ok(ConsumerGroupSettings {
        session_timeout_ms,
        heartbeat_interval_ms,
        max_size: usize::try_from(max_size).unwrap_or(usize::MAX),
        assignors: list,
        migration_policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kafka_defaults_when_unset() {
        let c = GroupsConfig::from_settings(&BTreeMap::new()).unwrap();
        assert_eq!(c.offsets_topic.num_partitions, 50);
        assert_eq!(c.offsets_topic.replication_factor, 3);
        assert_eq!(c.coordinator.group.initial_rebalance_delay_ms, 3_000);
        assert_eq!(c.coordinator.min_session_timeout_ms, 6_000);
        assert_eq!(c.coordinator.metadata_max_bytes, 4_096);
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        for (name, value) in [
            ("offsets.topic.num.partitions", "0"),
            ("offsets.topic.replication.factor", "-1"),
            ("group.max.size", "0"),
            ("group.initial.rebalance.delay.ms", "soon"),
        ] {
            let e = GroupsConfig::from_settings(&settings(&[(name, value)])).unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
        let e = GroupsConfig::from_settings(&settings(&[
            ("group.min.session.timeout.ms", "10000"),
            ("group.max.session.timeout.ms", "5000"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("group.max.session.timeout.ms"));
    }
}
