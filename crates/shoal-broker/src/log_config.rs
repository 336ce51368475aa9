//! A topic's effective configs → the settings its partition logs run with.
//!
//! The metadata layer resolves each topic config (override, broker default, built-in default);
//! this turns those strings into typed `LogConfig` values. The values were validated when they
//! were committed, so a parse failure here means a bug or a newer writer: it falls back to the
//! built-in default and logs, rather than refusing to host the partition.

use std::collections::BTreeMap;

use shoal_log::{CleanerLimits, CleanupPolicy, CompressionType, LogConfig, TimestampType};
use shoal_meta::topic_config::resolve_topic_config;

/// Log settings plus the replication setting the partition leader enforces.
#[derive(Debug, Clone)]
pub struct PartitionConfig {
    pub log: LogConfig,
    pub min_insync_replicas: usize,
}

pub fn partition_config(
    overrides: &BTreeMap<String, String>,
    broker_settings: &BTreeMap<String, String>,
) -> PartitionConfig {
    let get = |name: &str| -> Option<String> {
        match resolve_topic_config(name, overrides, broker_settings) {
            Ok(resolved) => Some(resolved.value),
            Err(error) => {
                tracing::warn!(config = name, %error, "topic config did not resolve; using the default");
                None
            }
        }
    };
    let int = |name: &str| -> Option<i64> { get(name).and_then(|v| v.trim().parse::<i64>().ok()) };
    let defaults = LogConfig::default();
    let log = LogConfig {
        segment_bytes: int("segment.bytes")
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(defaults.segment_bytes),
        segment_ms: int("segment.ms").unwrap_or(defaults.segment_ms),
        retention_ms: int("retention.ms").unwrap_or(defaults.retention_ms),
        retention_bytes: int("retention.bytes").unwrap_or(defaults.retention_bytes),
        max_message_bytes: int("max.message.bytes")
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(defaults.max_message_bytes),
        index_interval_bytes: int("index.interval.bytes")
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(defaults.index_interval_bytes),
        segment_index_bytes: int("segment.index.bytes")
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(defaults.segment_index_bytes),
        flush_messages: int("flush.messages").unwrap_or(defaults.flush_messages),
        flush_ms: int("flush.ms").unwrap_or(defaults.flush_ms),
        message_timestamp_type: match get("message.timestamp.type").as_deref() {
            Some("LogAppendTime") => TimestampType::LogAppendTime,
            _ => TimestampType::CreateTime,
        },
        cleanup_policy: get("cleanup.policy")
            .and_then(|v| CleanupPolicy::parse(&v))
            .unwrap_or(defaults.cleanup_policy),
        delete_retention_ms: int("delete.retention.ms").unwrap_or(defaults.delete_retention_ms),
        min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|r| (0.0..=1.0).contains(r))
            .unwrap_or(defaults.min_cleanable_dirty_ratio),
        min_compaction_lag_ms: int("min.compaction.lag.ms")
            .unwrap_or(defaults.min_compaction_lag_ms),
        max_compaction_lag_ms: int("max.compaction.lag.ms")
            .filter(|v| *v >= 1)
            .unwrap_or(defaults.max_compaction_lag_ms),
        segment_jitter_ms: int("segment.jitter.ms")
            .filter(|v| *v >= 0)
            .unwrap_or(defaults.segment_jitter_ms),
        compression_type: get("compression.type")
            .and_then(|v| CompressionType::parse(&v))
            .unwrap_or(defaults.compression_type),
        compression_gzip_level: int("compression.gzip.level")
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(defaults.compression_gzip_level),
        compression_lz4_level: int("compression.lz4.level")
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(defaults.compression_lz4_level),
        compression_zstd_level: int("compression.zstd.level")
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(defaults.compression_zstd_level),
        message_timestamp_before_max_ms: int("message.timestamp.before.max.ms")
            .filter(|v| *v >= 0)
            .unwrap_or(defaults.message_timestamp_before_max_ms),
        message_timestamp_after_max_ms: int("message.timestamp.after.max.ms")
            .filter(|v| *v >= 0)
            .unwrap_or(defaults.message_timestamp_after_max_ms),
    };
    let min_insync_replicas = int("min.insync.replicas")
        .and_then(|v| usize::try_from(v).ok())
        .unwrap_or(1)
        .max(1);
    PartitionConfig {
        log,
        min_insync_replicas,
    }
}

/// The cleaner's limits from the broker settings `log.cleaner.dedupe.buffer.size` and
/// `log.cleaner.io.max.bytes.per.second` (Kafka's default, 1.797e308, means no limit). Unlike
/// topic configs these were not validated by the controller, so bad values stop start-up.
pub fn cleaner_limits(settings: &BTreeMap<String, String>) -> anyhow::Result<CleanerLimits> {
    let defaults = CleanerLimits::default();
    let map_budget_bytes = match settings.get("log.cleaner.dedupe.buffer.size") {
        None => defaults.map_budget_bytes,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|b| *b >= 1024)
            .ok_or_else(|| {
                anyhow::anyhow!("log.cleaner.dedupe.buffer.size={v:?} must be at least 1024 bytes")
            })?,
    };
    let io_max_bytes_per_second = match settings.get("log.cleaner.io.max.bytes.per.second") {
        None => None,
        Some(v) => {
            let rate = v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|r| *r > 0.0)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "log.cleaner.io.max.bytes.per.second={v:?} must be a positive number"
                    )
                })?;
            (rate < u64::MAX as f64).then_some(rate as u64)
        }
    };
    Ok(CleanerLimits {
        map_budget_bytes,
        io_max_bytes_per_second,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaner_limits_default_to_kafkas_and_refuse_nonsense() {
        let none = BTreeMap::new();
        assert_eq!(cleaner_limits(&none).unwrap(), CleanerLimits::default());
        let unlimited = map(&[(
            "log.cleaner.io.max.bytes.per.second",
            "1.7976931348623157E308",
        )]);
        assert_eq!(
            cleaner_limits(&unlimited).unwrap().io_max_bytes_per_second,
            None
        );
        let limited = map(&[("log.cleaner.io.max.bytes.per.second", "1048576")]);
        assert_eq!(
            cleaner_limits(&limited).unwrap().io_max_bytes_per_second,
            Some(1_048_576)
        );
        for bad in [
            ("log.cleaner.io.max.bytes.per.second", "-1"),
            ("log.cleaner.dedupe.buffer.size", "12"),
        ] {
            let e = cleaner_limits(&map(&[bad])).unwrap_err();
            assert!(e.to_string().contains(bad.0), "{e}");
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn override_beats_broker_default_beats_built_in() {
        let broker = map(&[("log.segment.bytes", "2048"), ("log.retention.ms", "5000")]);
        let topic = map(&[
            ("retention.ms", "7000"),
            ("message.timestamp.type", "LogAppendTime"),
        ]);
        let config = partition_config(&topic, &broker);
        assert_eq!(config.log.segment_bytes, 2048);
        assert_eq!(config.log.retention_ms, 7000);
        assert_eq!(
            config.log.message_timestamp_type,
            TimestampType::LogAppendTime
        );
        assert_eq!(
            config.log.max_message_bytes,
            LogConfig::default().max_message_bytes
        );
        assert_eq!(config.min_insync_replicas, 1);
    }

    #[test]
    fn every_applied_topic_config_reaches_the_log_config() {
        let topic = map(&[
            ("compression.type", "zstd"),
            ("compression.zstd.level", "-7"),
            ("compression.lz4.level", "12"),
            ("message.timestamp.before.max.ms", "1000"),
            ("message.timestamp.after.max.ms", "2000"),
            ("segment.jitter.ms", "300"),
            ("max.compaction.lag.ms", "4000"),
        ]);
        let broker = map(&[("compression.gzip.level", "4")]);
        let log = partition_config(&topic, &broker).log;
        log.validate().unwrap();
        assert_eq!(log.compression_type, CompressionType::Zstd);
        assert_eq!(
            (
                log.compression_gzip_level,
                log.compression_lz4_level,
                log.compression_zstd_level
            ),
            (4, 12, -7)
        );
        assert_eq!(
            (
                log.message_timestamp_before_max_ms,
                log.message_timestamp_after_max_ms
            ),
            (1000, 2000)
        );
        assert_eq!(log.segment_jitter_ms, 300);
        assert_eq!(log.max_compaction_lag_ms, 4000);
        let defaults = partition_config(&BTreeMap::new(), &BTreeMap::new()).log;
        assert_eq!(defaults, LogConfig::default());
    }
}
