//! Per-log configuration, named and defaulted like Kafka's topic configs.
//!
//! A config is validated once (`LogConfig::validate`) when a log is opened or reconfigured, so
//! the rest of the crate can rely on its ranges: sizes fit the `u32` file positions the indexes
//! store, and every index can hold at least one entry.

use crate::batch::RECORD_BATCH_HEADER_BYTES;
use crate::error::{LogError, Result};

/// Which timestamp a batch carries (`message.timestamp.type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimestampType {
    /// Keep the producer's timestamps (Kafka's default).
    #[default]
    CreateTime,
    /// Stamp each batch with the broker's clock at append.
    LogAppendTime,
}

/// `compression.type`: the codec the leader stores batches with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CompressionType {
    /// Keep each batch as the producer compressed it (Kafka's default).
    #[default]
    Producer,
    Uncompressed,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl CompressionType {
    /// Parses Kafka's value (`producer`, `uncompressed`, `gzip`, `snappy`, `lz4`, `zstd`).
    pub fn parse(value: &str) -> Option<CompressionType> {
        Some(match value.trim() {
            "producer" => CompressionType::Producer,
            "uncompressed" => CompressionType::Uncompressed,
            "gzip" => CompressionType::Gzip,
            "snappy" => CompressionType::Snappy,
            "lz4" => CompressionType::Lz4,
            "zstd" => CompressionType::Zstd,
            _ => return None,
        })
    }

    /// The batch codec id this type stores, `None` for `producer` (whatever was sent).
    pub fn codec(self) -> Option<u8> {
        use crate::compression::{GZIP, LZ4, NONE, SNAPPY, ZSTD};
        match self {
            CompressionType::Producer => None,
            CompressionType::Uncompressed => Some(NONE),
            CompressionType::Gzip => Some(GZIP),
            CompressionType::Snappy => Some(SNAPPY),
            CompressionType::Lz4 => Some(LZ4),
            CompressionType::Zstd => Some(ZSTD),
        }
    }
}

/// Kafka's `compression.gzip.level` range (besides -1, the codec default).
pub const GZIP_LEVELS: std::ops::RangeInclusive<i32> = 1..=9;
/// Kafka's `compression.lz4.level` range.
pub const LZ4_LEVELS: std::ops::RangeInclusive<i32> = 1..=17;
/// Kafka's `compression.zstd.level` range (zstd's negative "fast" levels included).
pub const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = -131_072..=22;

/// Byte size of one offset index entry (relative offset u32, file position u32).
pub(crate) const OFFSET_INDEX_ENTRY_BYTES: usize = 8;
/// Byte size of one time index entry (timestamp i64, relative offset u32).
pub(crate) const TIME_INDEX_ENTRY_BYTES: usize = 12;

const MS_PER_DAY: i64 = 24 * 60 * 60 * 1000;

/// Configuration of one partition log. Field docs give the Kafka config name.
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment before the active one would exceed this.
    pub segment_bytes: u32,
    /// `segment.ms`: roll when the active segment's first batch is older than this.
    pub segment_ms: i64,
    /// `retention.ms`: delete segments whose newest timestamp is older than this; -1 keeps all.
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest segments while the log is larger than this; -1 keeps all.
    pub retention_bytes: i64,
    /// `max.message.bytes`: largest record batch accepted, including its 12-byte log overhead.
    pub max_message_bytes: u32,
    /// `index.interval.bytes`: bytes of log between two offset index entries.
    pub index_interval_bytes: u32,
    /// `segment.index.bytes`: size limit of each index file; a full index rolls the segment.
    pub segment_index_bytes: u32,
    /// `flush.messages`: fsync after this many records; `i64::MAX` leaves it to the OS.
    pub flush_messages: i64,
    /// `flush.ms`: fsync when the last flush is this old; `i64::MAX` leaves it to the OS.
    pub flush_ms: i64,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `cleanup.policy`: `delete` (time/size retention), `compact` (latest record per key),
    /// or both.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long a tombstone stays after the cleaner first kept it.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: clean once this share of the log is uncleaned.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: records younger than this are never compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a compacted log whose oldest dirty batch is older than this is
    /// cleaned whatever its dirty ratio, and its active segment rolls at this age.
    pub max_compaction_lag_ms: i64,
    /// `segment.jitter.ms`: each segment rolls up to this much before `segment.ms`.
    pub segment_jitter_ms: i64,
    /// `compression.type`: what the leader stores batches as.
    pub compression_type: CompressionType,
    /// `compression.gzip.level`: 1..=9, or -1 for the codec default.
    pub compression_gzip_level: i32,
    /// `compression.lz4.level`: 1..=17.
    pub compression_lz4_level: i32,
    /// `compression.zstd.level`: -131072..=22.
    pub compression_zstd_level: i32,
    /// `message.timestamp.before.max.ms`: a CreateTime record this far behind the broker's
    /// clock is refused.
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: a CreateTime record this far ahead of the broker's
    /// clock is refused.
    pub message_timestamp_after_max_ms: i64,
}

/// Which cleanups a log runs (`cleanup.policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };

    /// Parses Kafka's list value (`delete`, `compact`, `compact,delete`).
    pub fn parse(value: &str) -> Option<CleanupPolicy> {
        let mut policy = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => return None,
            }
        }
        (policy.delete || policy.compact).then_some(policy)
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: 7 * MS_PER_DAY,
            retention_ms: 7 * MS_PER_DAY,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 << 20,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            message_timestamp_type: TimestampType::CreateTime,
            cleanup_policy: CleanupPolicy::DELETE,
            delete_retention_ms: MS_PER_DAY,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            segment_jitter_ms: 0,
            compression_type: CompressionType::Producer,
            compression_gzip_level: -1,
            compression_lz4_level: 9,
            compression_zstd_level: 3,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: 3_600_000,
        }
    }
}

// Configs are compared whole (to spot changes); the ratio is never NaN (validated).
impl Eq for LogConfig {}

impl LogConfig {
    /// Checks every value against the range the log relies on.
    pub fn validate(&self) -> Result<()> {
        let int_max = i32::MAX as u32;
        let header_bytes = RECORD_BATCH_HEADER_BYTES as u32;
        check(
            (header_bytes..=int_max).contains(&self.segment_bytes),
            format!(
                "segment.bytes={} must be in [{header_bytes}, {int_max}]",
                self.segment_bytes
            ),
        )?;
        check(
            self.segment_ms >= 1,
            format!("segment.ms={} must be >= 1", self.segment_ms),
        )?;
        check(
            self.retention_ms >= -1,
            format!("retention.ms={} must be >= -1", self.retention_ms),
        )?;
        check(
            self.retention_bytes >= -1,
            format!("retention.bytes={} must be >= -1", self.retention_bytes),
        )?;
        check(
            self.max_message_bytes <= int_max,
            format!(
                "max.message.bytes={} must be <= {int_max}",
                self.max_message_bytes
            ),
        )?;
        check(
            self.index_interval_bytes <= int_max,
            format!(
                "index.interval.bytes={} must be <= {int_max}",
                self.index_interval_bytes
            ),
        )?;
        let min_index_bytes = TIME_INDEX_ENTRY_BYTES as u32;
        check(
            (min_index_bytes..=int_max).contains(&self.segment_index_bytes),
            format!(
                "segment.index.bytes={} must be in [{min_index_bytes}, {int_max}]",
                self.segment_index_bytes
            ),
        )?;
        check(
            self.flush_messages >= 1,
            format!("flush.messages={} must be >= 1", self.flush_messages),
        )?;
        check(
            self.flush_ms >= 0,
            format!("flush.ms={} must be >= 0", self.flush_ms),
        )?;
        check(
            self.delete_retention_ms >= 0,
            format!(
                "delete.retention.ms={} must be >= 0",
                self.delete_retention_ms
            ),
        )?;
        check(
            (0.0..=1.0).contains(&self.min_cleanable_dirty_ratio),
            format!(
                "min.cleanable.dirty.ratio={} must be in [0, 1]",
                self.min_cleanable_dirty_ratio
            ),
        )?;
        check(
            self.min_compaction_lag_ms >= 0,
            format!(
                "min.compaction.lag.ms={} must be >= 0",
                self.min_compaction_lag_ms
            ),
        )?;
        check(
            self.max_compaction_lag_ms >= 1,
            format!(
                "max.compaction.lag.ms={} must be >= 1",
                self.max_compaction_lag_ms
            ),
        )?;
        check(
            self.segment_jitter_ms >= 0,
            format!("segment.jitter.ms={} must be >= 0", self.segment_jitter_ms),
        )?;
        check(
            self.compression_gzip_level == -1 || GZIP_LEVELS.contains(&self.compression_gzip_level),
            format!(
                "compression.gzip.level={} must be -1 or in [1, 9]",
                self.compression_gzip_level
            ),
        )?;
        check(
            LZ4_LEVELS.contains(&self.compression_lz4_level),
            format!(
                "compression.lz4.level={} must be in [1, 17]",
                self.compression_lz4_level
            ),
        )?;
        check(
            ZSTD_LEVELS.contains(&self.compression_zstd_level),
            format!(
                "compression.zstd.level={} must be in [-131072, 22]",
                self.compression_zstd_level
            ),
        )?;
        check(
            self.message_timestamp_before_max_ms >= 0,
            format!(
                "message.timestamp.before.max.ms={} must be >= 0",
                self.message_timestamp_before_max_ms
            ),
        )?;
        check(
            self.message_timestamp_after_max_ms >= 0,
            format!(
                "message.timestamp.after.max.ms={} must be >= 0",
                self.message_timestamp_after_max_ms
            ),
        )?;
        Ok(())
    }

    /// Builds a log configuration from a topic's effective configs, by Kafka name (`value`
    /// answers each: override, broker setting or default), and validates it. This is the one
    /// conversion: the controller runs it before committing a topic config, the broker when it
    /// opens a log, so a config the controller accepts is one every log can run with. Errors name
    /// the topic config and the allowed range.
    pub fn from_topic_configs(value: impl Fn(&'static str) -> Option<String>) -> Result<LogConfig> {
        let defaults = LogConfig::default();
        let raw = |name: &'static str| value(name).map(|v| v.trim().to_string());
        let int = |name: &'static str, default: i64| -> Result<i64> {
            match raw(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<i64>()
                    .map_err(|_| LogError::InvalidConfig(format!("{name}={v} is not an integer"))),
            }
        };
        let u32_of = |name: &'static str, default: u32| -> Result<u32> {
            let n = int(name, i64::from(default))?;
            u32::try_from(n).map_err(|_| {
                LogError::InvalidConfig(format!("{name}={n} must be in [0, {}]", u32::MAX))
            })
        };
        let i32_of = |name: &'static str, default: i32| -> Result<i32> {
            let n = int(name, i64::from(default))?;
            i32::try_from(n).map_err(|_| {
                LogError::InvalidConfig(format!("{name}={n} is outside the INT range"))
            })
        };
        let config = LogConfig {
            segment_bytes: u32_of("segment.bytes", defaults.segment_bytes)?,
            segment_ms: int("segment.ms", defaults.segment_ms)?,
            retention_ms: int("retention.ms", defaults.retention_ms)?,
            retention_bytes: int("retention.bytes", defaults.retention_bytes)?,
            max_message_bytes: u32_of("max.message.bytes", defaults.max_message_bytes)?,
            index_interval_bytes: u32_of("index.interval.bytes", defaults.index_interval_bytes)?,
            segment_index_bytes: u32_of("segment.index.bytes", defaults.segment_index_bytes)?,
            flush_messages: int("flush.messages", defaults.flush_messages)?,
            flush_ms: int("flush.ms", defaults.flush_ms)?,
            message_timestamp_type: match raw("message.timestamp.type").as_deref() {
                None | Some("CreateTime") => TimestampType::CreateTime,
                Some("LogAppendTime") => TimestampType::LogAppendTime,
                Some(other) => {
                    return Err(LogError::InvalidConfig(format!(
                        "message.timestamp.type={other} must be CreateTime or LogAppendTime"
                    )));
                }
            },
            cleanup_policy: match raw("cleanup.policy") {
                None => defaults.cleanup_policy,
                Some(v) => CleanupPolicy::parse(&v).ok_or_else(|| {
                    LogError::InvalidConfig(format!(
                        "cleanup.policy={v} must be delete, compact or compact,delete"
                    ))
                })?,
            },
            delete_retention_ms: int("delete.retention.ms", defaults.delete_retention_ms)?,
            min_cleanable_dirty_ratio: match raw("min.cleanable.dirty.ratio") {
                None => defaults.min_cleanable_dirty_ratio,
                Some(v) => v.parse::<f64>().map_err(|_| {
                    LogError::InvalidConfig(format!(
                        "min.cleanable.dirty.ratio={v} is not a number"
                    ))
                })?,
            },
            min_compaction_lag_ms: int("min.compaction.lag.ms", defaults.min_compaction_lag_ms)?,
            max_compaction_lag_ms: int("max.compaction.lag.ms", defaults.max_compaction_lag_ms)?,
            segment_jitter_ms: int("segment.jitter.ms", defaults.segment_jitter_ms)?,
            compression_type: match raw("compression.type") {
                None => defaults.compression_type,
                Some(v) => CompressionType::parse(&v).ok_or_else(|| {
                    LogError::InvalidConfig(format!(
                        "compression.type={v} must be producer, uncompressed, gzip, snappy, lz4 or zstd"
                    ))
                })?,
            },
            compression_gzip_level: i32_of("compression.gzip.level", defaults.compression_gzip_level)?,
            compression_lz4_level: i32_of("compression.lz4.level", defaults.compression_lz4_level)?,
            compression_zstd_level: i32_of("compression.zstd.level", defaults.compression_zstd_level)?,
            message_timestamp_before_max_ms: int(
                "message.timestamp.before.max.ms",
                defaults.message_timestamp_before_max_ms,
            )?,
            message_timestamp_after_max_ms: int(
                "message.timestamp.after.max.ms",
                defaults.message_timestamp_after_max_ms,
            )?,
        };
        config.validate()?;
        Ok(config)
    }

    /// The level `compression.<codec>.level` sets for `codec` (`None`: the codec has none, or
    /// gzip's -1, the codec default).
    pub fn compression_level(&self, codec: u8) -> Option<i32> {
        use crate::compression::{GZIP, LZ4, ZSTD};
        match codec {
            GZIP => (self.compression_gzip_level != -1).then_some(self.compression_gzip_level),
            LZ4 => Some(self.compression_lz4_level),
            ZSTD => Some(self.compression_zstd_level),
            _ => None,
        }
    }

    /// The age at which the active segment rolls: `segment.ms`, or `max.compaction.lag.ms` if
    /// smaller on a compacted log, so the cleaner can reach records within it (Kafka's
    /// `LogConfig.maxSegmentMs`).
    pub(crate) fn max_segment_ms(&self) -> i64 {
        if self.cleanup_policy.compact {
            self.segment_ms.min(self.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }

    /// Entries an offset index may hold before the segment rolls.
    pub(crate) fn max_offset_index_entries(&self) -> usize {
        self.segment_index_bytes as usize / OFFSET_INDEX_ENTRY_BYTES
    }

    /// Entries a time index may hold before the segment rolls.
    pub(crate) fn max_time_index_entries(&self) -> usize {
        self.segment_index_bytes as usize / TIME_INDEX_ENTRY_BYTES
    }
}

fn check(ok: bool, message: String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(LogError::InvalidConfig(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas_and_valid() {
        let config = LogConfig::default();
        config.validate().unwrap();
        assert_eq!(config.segment_bytes, 1_073_741_824);
        assert_eq!(config.segment_ms, 604_800_000);
        assert_eq!(config.retention_ms, 604_800_000);
        assert_eq!(config.retention_bytes, -1);
        assert_eq!(config.max_message_bytes, 1_048_588);
        assert_eq!(config.index_interval_bytes, 4096);
        assert_eq!(config.segment_index_bytes, 10_485_760);
        assert_eq!(config.flush_messages, i64::MAX);
        assert_eq!(config.flush_ms, i64::MAX);
        assert_eq!(config.message_timestamp_type, TimestampType::CreateTime);
        assert_eq!(config.max_offset_index_entries(), 1_310_720);
        assert_eq!(config.cleanup_policy, CleanupPolicy::DELETE);
        assert_eq!(config.delete_retention_ms, 86_400_000);
        assert_eq!(config.max_compaction_lag_ms, i64::MAX);
        assert_eq!(config.compression_type, CompressionType::Producer);
        assert_eq!(
            (
                config.compression_gzip_level,
                config.compression_lz4_level,
                config.compression_zstd_level
            ),
            (-1, 9, 3)
        );
        assert_eq!(config.message_timestamp_before_max_ms, i64::MAX);
        assert_eq!(config.message_timestamp_after_max_ms, 3_600_000);
    }

    #[test]
    fn compression_types_and_levels() {
        use crate::compression::{GZIP, LZ4, NONE, SNAPPY, ZSTD};
        let cases = [
            ("producer", None),
            ("uncompressed", Some(NONE)),
            ("gzip", Some(GZIP)),
            ("snappy", Some(SNAPPY)),
            ("lz4", Some(LZ4)),
            ("zstd", Some(ZSTD)),
        ];
        for (name, codec) in cases {
            assert_eq!(CompressionType::parse(name).map(|t| t.codec()), Some(codec));
        }
        assert_eq!(CompressionType::parse("none"), None);
        let config = LogConfig {
            compression_zstd_level: -5,
            compression_lz4_level: 17,
            ..LogConfig::default()
        };
        config.validate().unwrap();
        assert_eq!(
            config.compression_level(GZIP),
            None,
            "-1 is the codec default"
        );
        assert_eq!(config.compression_level(LZ4), Some(17));
        assert_eq!(config.compression_level(ZSTD), Some(-5));
        assert_eq!(config.compression_level(SNAPPY), None);
    }

    #[test]
    fn compacted_logs_roll_by_max_compaction_lag_too() {
        let lagged = LogConfig {
            segment_ms: 1_000,
            max_compaction_lag_ms: 300,
            ..LogConfig::default()
        };
        assert_eq!(lagged.max_segment_ms(), 1_000, "delete-only logs ignore it");
        let compacted = LogConfig {
            cleanup_policy: CleanupPolicy::parse("compact").unwrap(),
            ..lagged
        };
        assert_eq!(compacted.max_segment_ms(), 300);
    }

    #[test]
    fn cleanup_policies_parse_like_kafkas_list() {
        let both = CleanupPolicy {
            delete: true,
            compact: true,
        };
        assert_eq!(CleanupPolicy::parse("delete"), Some(CleanupPolicy::DELETE));
        assert_eq!(CleanupPolicy::parse("compact, delete"), Some(both));
        assert_eq!(
            CleanupPolicy::parse("compact").map(|p| p.delete),
            Some(false)
        );
        assert_eq!(CleanupPolicy::parse(""), None);
        assert_eq!(CleanupPolicy::parse("shred"), None);
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let bad = [
            LogConfig {
                segment_bytes: 10,
                ..LogConfig::default()
            },
            LogConfig {
                segment_bytes: u32::MAX,
                ..LogConfig::default()
            },
            LogConfig {
                segment_ms: 0,
                ..LogConfig::default()
            },
            LogConfig {
                retention_ms: -2,
                ..LogConfig::default()
            },
            LogConfig {
                retention_bytes: -5,
                ..LogConfig::default()
            },
            LogConfig {
                segment_index_bytes: 11,
                ..LogConfig::default()
            },
            LogConfig {
                flush_messages: 0,
                ..LogConfig::default()
            },
            LogConfig {
                flush_ms: -1,
                ..LogConfig::default()
            },
            LogConfig {
                min_cleanable_dirty_ratio: 1.5,
                ..LogConfig::default()
            },
            LogConfig {
                min_cleanable_dirty_ratio: f64::NAN,
                ..LogConfig::default()
            },
            LogConfig {
                delete_retention_ms: -1,
                ..LogConfig::default()
            },
            LogConfig {
                max_compaction_lag_ms: 0,
                ..LogConfig::default()
            },
            LogConfig {
                segment_jitter_ms: -1,
                ..LogConfig::default()
            },
            LogConfig {
                compression_gzip_level: 0,
                ..LogConfig::default()
            },
            LogConfig {
                compression_gzip_level: 10,
                ..LogConfig::default()
            },
            LogConfig {
                compression_lz4_level: 18,
                ..LogConfig::default()
            },
            LogConfig {
                compression_zstd_level: 23,
                ..LogConfig::default()
            },
            LogConfig {
                compression_zstd_level: -131_073,
                ..LogConfig::default()
            },
            LogConfig {
                message_timestamp_before_max_ms: -1,
                ..LogConfig::default()
            },
            LogConfig {
                message_timestamp_after_max_ms: -1,
                ..LogConfig::default()
            },
        ];
        for config in bad {
            assert!(
                matches!(config.validate(), Err(LogError::InvalidConfig(_))),
                "accepted {config:?}"
            );
        }
    }
}
