//! Group coordinator and `__consumer_offsets` settings, by Kafka name, from the broker settings.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use shoal_group::{CoordinatorConfig, GroupSettings};

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

#[derive(Debug, Clone, Copy)]
pub struct GroupsConfig {
    pub coordinator: CoordinatorConfig,
    pub offsets_topic: OffsetsTopicConfig,
}

/// Every setting this module reads, with Kafka's default.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("offsets.topic.num.partitions", "50"),
    ("offsets.topic.replication.factor", "3"),
    ("offsets.topic.segment.bytes", "104857600"),
    ("offsets.commit.timeout.ms", "5000"),
    ("offset.metadata.max.bytes", "4096"),
    ("group.initial.rebalance.delay.ms", "3000"),
    ("group.min.session.timeout.ms", "6000"),
    ("group.max.session.timeout.ms", "1800000"),
    ("group.max.size", "2147483647"),
    ("offsets.retention.minutes", "10080"),
    ("offsets.retention.check.interval.ms", "600000"),
];

fn get<T: std::str::FromStr>(settings: &BTreeMap<String, String>, name: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    let raw = match settings.get(name) {
        Some(v) => v.as_str(),
        None => DEFAULTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| *d)
            .with_context(|| format!("no default for {name}"))?,
    };
    raw.trim()
        .parse::<T>()
        .map_err(|e| anyhow::anyhow!("{name}={raw:?}: {e}"))
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
        if retention_minutes < 1 {
            bail!("offsets.retention.minutes must be at least 1, not {retention_minutes}");
        }
        if retention_check_interval_ms < 1 {
            bail!("offsets.retention.check.interval.ms must be at least 1");
        }
        if num_partitions < 1 {
            bail!("offsets.topic.num.partitions must be at least 1, not {num_partitions}");
        }
        if replication_factor < 1 {
            bail!("offsets.topic.replication.factor must be at least 1, not {replication_factor}");
        }
        if segment_bytes < 1024 {
            bail!("offsets.topic.segment.bytes must be at least 1024, not {segment_bytes}");
        }
        if commit_timeout_ms < 1 {
            bail!("offsets.commit.timeout.ms must be at least 1");
        }
        if initial_rebalance_delay_ms < 0 {
            bail!("group.initial.rebalance.delay.ms must not be negative");
        }
        if min_session_timeout_ms < 0 || max_session_timeout_ms < min_session_timeout_ms {
            bail!(
                "group.min.session.timeout.ms={min_session_timeout_ms} must be ≥ 0 and at most \
                 group.max.session.timeout.ms={max_session_timeout_ms}"
            );
        }
        if max_size < 1 {
            bail!("group.max.size must be at least 1, not {max_size}");
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
            },
            offsets_topic: OffsetsTopicConfig {
                num_partitions,
                replication_factor,
                segment_bytes,
            },
        })
    }
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
