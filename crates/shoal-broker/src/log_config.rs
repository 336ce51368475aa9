//! A topic's effective configs → the settings its partition logs run with.
//!
//! The metadata layer resolves each topic config (override, broker setting, default); this turns
//! those strings into typed `LogConfig` values with the same conversion the controller used to
//! validate them.

use std::collections::BTreeMap;

use shoal_log::{CleanerLimits, LogConfig};
use shoal_meta::topic_config::resolve_topic_config;

/// Log settings plus the replication setting the partition leader enforces.
#[derive(Debug, Clone)]
pub struct PartitionConfig {
    pub log: LogConfig,
    pub min_insync_replicas: usize,
}

/// The configuration a partition of a topic with these overrides runs with. The conversion is
/// `LogConfig::from_topic_configs`, the one the controller ran before it committed the config;
/// an error here (a broker setting changed since, or a newer writer) leaves the partition
/// offline and reported, never running with a config nobody chose.
pub fn partition_config(
    overrides: &BTreeMap<String, String>,
    broker_settings: &BTreeMap<String, String>,
) -> Result<PartitionConfig, String> {
    let value = |name: &'static str| -> Option<String> {
        resolve_topic_config(name, overrides, broker_settings)
            .ok()
            .map(|r| r.value)
    };
    let log = LogConfig::from_topic_configs(value).map_err(|e| e.to_string())?;
    let min_insync_replicas = value("min.insync.replicas")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| "min.insync.replicas must be at least 1".to_string())?;
    Ok(PartitionConfig {
        log,
        min_insync_replicas,
    })
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
    use shoal_log::CompressionType;

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
        let config = partition_config(&topic, &broker).unwrap();
        assert_eq!(config.log.segment_bytes, 2048);
        assert_eq!(config.log.retention_ms, 7000);
        assert_eq!(
            config.log.message_timestamp_type,
            shoal_log::TimestampType::LogAppendTime
        );
        assert_eq!(
            config.log.max_message_bytes,
            LogConfig::default().max_message_bytes
        );
        assert_eq!(config.min_insync_replicas, 1);
    }

    #[test]
    fn a_config_no_log_can_run_with_is_an_error_naming_it() {
        let broker = BTreeMap::new();
        let e = partition_config(&map(&[("segment.bytes", "20")]), &broker).unwrap_err();
        assert!(e.contains("segment.bytes=20") && e.contains("[61,"), "{e}");
        let e = partition_config(&map(&[("segment.index.bytes", "4")]), &broker).unwrap_err();
        assert!(e.contains("segment.index.bytes"), "{e}");
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
        let log = partition_config(&topic, &broker).unwrap().log;
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
        let defaults = partition_config(&BTreeMap::new(), &BTreeMap::new())
            .unwrap()
            .log;
        assert_eq!(defaults, LogConfig::default());
    }
}
