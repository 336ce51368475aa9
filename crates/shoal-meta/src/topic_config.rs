//! The schema of topic configs: Kafka's names, types, defaults and validation rules.
//!
//! Why a schema here: a topic config override is validated once, by the controller, before it
//! becomes a record; after that every broker trusts the image. The same schema lets the broker
//! answer DescribeConfigs with Kafka's sources: a value is a topic override
//! (DYNAMIC_TOPIC_CONFIG), else the broker config that supplies the default (e.g. `retention.ms`
//! ← `log.retention.ms`, STATIC_BROKER_CONFIG), else the schema default (DEFAULT_CONFIG).
//!
//! Values are stored normalized (trimmed; booleans lower case; integers canonical; lists joined
//! by `,` without spaces), so equal settings compare equal in the image.

use std::collections::BTreeMap;

use crate::error::ControllerError;

/// Kafka's config value types (`ConfigDef.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Int,
    Long,
    Double,
    Boolean,
    String,
    List,
}

impl ConfigType {
    /// The name Kafka uses in DescribeConfigs (`ConfigType` in KIP-569).
    pub fn kafka_name(self) -> &'static str {
        match self {
            ConfigType::Int => "INT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::List => "LIST",
        }
    }
}

/// What values are legal beyond the type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validator {
    Any,
    /// Integer at least this value.
    AtLeast(i64),
    /// Integer within `[min, max]`, or exactly `or` (a "codec default" sentinel such as -1).
    IntBetween {
        min: i64,
        max: i64,
        or: Option<i64>,
    },
    /// Double within `[min, max]`.
    Between(f64, f64),
    /// String equal to one of these (case-sensitive, as Kafka).
    OneOf(&'static [&'static str]),
    /// Non-empty list whose elements are each one of these, without duplicates.
    ListOf(&'static [&'static str]),
}

/// A broker config that supplies a topic config's default, with the factor that converts its
/// unit to the topic config's unit (`log.retention.hours` → `retention.ms` is 3 600 000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerSynonym {
    pub name: &'static str,
    pub scale: i64,
}

/// The definition of one topic config.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub config_type: ConfigType,
    /// Default when neither the topic nor the broker sets it.
    pub default: &'static str,
    pub documentation: &'static str,
    /// Broker configs that supply the default, highest precedence first.
    pub broker_synonyms: &'static [BrokerSynonym],
    pub validator: Validator,
}

const fn syn(name: &'static str) -> BrokerSynonym {
    BrokerSynonym { name, scale: 1 }
}

const fn syn_scaled(name: &'static str, scale: i64) -> BrokerSynonym {
    BrokerSynonym { name, scale }
}

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_HOUR: i64 = 3_600_000;

/// Every topic config Shoal knows, in name order.
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        config_type: ConfigType::List,
        default: "delete",
        documentation: "How old log segments are discarded: delete them, compact them by key, or both.",
        broker_synonyms: &[syn("log.cleanup.policy")],
        validator: Validator::ListOf(&["compact", "delete"]),
    },
    TopicConfigDef {
        name: "compression.gzip.level",
        config_type: ConfigType::Int,
        default: "-1",
        documentation: "Compression level when compression.type is gzip: 1..9, or -1 for the codec default.",
        broker_synonyms: &[syn("compression.gzip.level")],
        validator: Validator::IntBetween {
            min: 1,
            max: 9,
            or: Some(-1),
        },
    },
    TopicConfigDef {
        name: "compression.lz4.level",
        config_type: ConfigType::Int,
        default: "9",
        documentation: "Compression level when compression.type is lz4.",
        broker_synonyms: &[syn("compression.lz4.level")],
        validator: Validator::IntBetween {
            min: 1,
            max: 17,
            or: None,
        },
    },
    TopicConfigDef {
        name: "compression.type",
        config_type: ConfigType::String,
        default: "producer",
        documentation: "Compression codec the leader stores batches with: 'producer' keeps each batch as sent; any other codec recompresses batches sent with a different one.",
        broker_synonyms: &[syn("compression.type")],
        validator: Validator::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
    },
    TopicConfigDef {
        name: "compression.zstd.level",
        config_type: ConfigType::Int,
        default: "3",
        documentation: "Compression level when compression.type is zstd (negative levels are zstd's fast modes).",
        broker_synonyms: &[syn("compression.zstd.level")],
        validator: Validator::IntBetween {
            min: -131_072,
            max: 22,
            or: None,
        },
    },
    TopicConfigDef {
        name: "delete.retention.ms",
        config_type: ConfigType::Long,
        default: "86400000",
        documentation: "How long delete tombstones are kept for compacted topics.",
        broker_synonyms: &[syn("log.cleaner.delete.retention.ms")],
        validator: Validator::AtLeast(0),
    },
    TopicConfigDef {
        name: "file.delete.delay.ms",
        config_type: ConfigType::Long,
        default: "60000",
        documentation: "Time to wait before deleting a file from the filesystem.",
        broker_synonyms: &[syn("log.segment.delete.delay.ms")],
        validator: Validator::AtLeast(0),
    },
    TopicConfigDef {
        name: "flush.messages",
        config_type: ConfigType::Long,
        default: "9223372036854775807",
        documentation: "Force an fsync of the log after this many messages.",
        broker_synonyms: &[syn("log.flush.interval.messages")],
        validator: Validator::AtLeast(1),
    },
    TopicConfigDef {
        name: "flush.ms",
        config_type: ConfigType::Long,
        default: "9223372036854775807",
        documentation: "Force an fsync of the log after this much time.",
        broker_synonyms: &[syn("log.flush.interval.ms")],
        validator: Validator::AtLeast(0),
    },
    TopicConfigDef {
        name: "index.interval.bytes",
        config_type: ConfigType::Int,
        default: "4096",
        documentation: "How many log bytes between two offset index entries.",
        broker_synonyms: &[syn("log.index.interval.bytes")],
        validator: Validator::AtLeast(0),
    },
    TopicConfigDef {
        name: "max.compaction.lag.ms",
        config_type: ConfigType::Long,
        default: "9223372036854775807",
        documentation: "Longest time a message stays ineligible for compaction.",
        broker_synonyms: &[syn("log.cleaner.max.compaction.lag.ms")],
        validator: Validator::AtLeast(1),
    },
    TopicConfigDef {
        name: "max.message.bytes",
        config_type: ConfigType::Int,
        default: "1048588",
        documentation: "Largest record batch size the topic accepts.",
        broker_synonyms: &[syn("message.max.bytes")],
        validator: Validator::AtLeast(0),
    },
    TopicConfigDef {
        name: "message.timestamp.after.max.ms",
        config_type: ConfigType::Long,
        default: "3600000",
        documentation: "How far a message timestamp may be ahead of the broker's clock.",
        broker_synonyms: &[syn("log.message.timestamp.after.max.ms")],
        validator: Validator::AtLeast(0),
    },
    TopicConfigDef {
        name: "message.timestamp.before.max.ms",
        config_type: ConfigType::Long,
        default: "9223372036854775807",
        documentation: "How far a message timestamp may be behind the broker's clock.",
        broker_synonyms: &[syn("log.message.timestamp.before.max.ms")],
        validator: Validator::AtLeast(0),
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        config_type: ConfigType::String,
        default: "CreateTime",
        documentation: "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime).",
        broker_synonyms: &[syn("log.message.timestamp.type")],
        validator: Validator::OneOf(&["CreateTime", "LogAppendTime"]),
    },
    TopicConfigDef {
        name: "min.cleanable.dirty.ratio",
        config_type: ConfigType::Double,
        default: "0.5",
        documentation: "Minimum ratio of dirty log to total log for a log to be compacted.",
        broker_synonyms: &[syn("log.cleaner.min.cleanable.ratio")],
        validator: Validator::Between(0.0, 1.0),
    },
    TopicConfigDef {
        name: "min.compaction.lag.ms",
        config_type: ConfigType::Long,
        default: "0",
        documentation: "Shortest time a message stays uncompacted.",
        broker_synonyms: &[syn("log.cleaner.min.compaction.lag.ms")],
        validator: Validator::AtLeast(0),
    },
    TopicConfigDef {
        name: "min.insync.replicas",
        config_type: ConfigType::Int,
        default: "1",
        documentation: "Minimum ISR size for an acks=all produce to succeed.",
        broker_synonyms: &[syn("min.insync.replicas")],
        validator: Validator::AtLeast(1),
    },
    TopicConfigDef {
        name: "preallocate",
        config_type: ConfigType::Boolean,
        default: "false",
        documentation: "Preallocate the file when creating a new segment.",
        broker_synonyms: &[syn("log.preallocate")],
        validator: Validator::Any,
    },
    TopicConfigDef {
        name: "retention.bytes",
        config_type: ConfigType::Long,
        default: "-1",
        documentation: "Largest size a partition may grow to before old segments are deleted; -1 = no limit.",
        broker_synonyms: &[syn("log.retention.bytes")],
        validator: Validator::AtLeast(-1),
    },
    TopicConfigDef {
        name: "retention.ms",
        config_type: ConfigType::Long,
        default: "604800000",
        documentation: "Longest time a segment is kept before it is deleted; -1 = no limit.",
        broker_synonyms: &[
            syn("log.retention.ms"),
            syn_scaled("log.retention.minutes", MS_PER_MINUTE),
            syn_scaled("log.retention.hours", MS_PER_HOUR),
        ],
        validator: Validator::AtLeast(-1),
    },
    TopicConfigDef {
        name: "segment.bytes",
        config_type: ConfigType::Int,
        default: "1073741824",
        documentation: "Size at which the active segment is rolled.",
        broker_synonyms: &[syn("log.segment.bytes")],
        validator: Validator::AtLeast(14),
    },
    TopicConfigDef {
        name: "segment.index.bytes",
        config_type: ConfigType::Int,
        default: "10485760",
        documentation: "Size of the offset index file of a segment.",
        broker_synonyms: &[syn("log.index.size.max.bytes")],
        validator: Validator::AtLeast(4),
    },
    TopicConfigDef {
        name: "segment.jitter.ms",
        config_type: ConfigType::Long,
        default: "0",
        documentation: "Largest random jitter subtracted from segment.ms to avoid rolling all at once.",
        broker_synonyms: &[
            syn("log.roll.jitter.ms"),
            syn_scaled("log.roll.jitter.hours", MS_PER_HOUR),
        ],
        validator: Validator::AtLeast(0),
    },
    TopicConfigDef {
        name: "segment.ms",
        config_type: ConfigType::Long,
        default: "604800000",
        documentation: "Age at which the active segment is rolled even if not full.",
        broker_synonyms: &[
            syn("log.roll.ms"),
            syn_scaled("log.roll.hours", MS_PER_HOUR),
        ],
        validator: Validator::AtLeast(1),
    },
    TopicConfigDef {
        name: "unclean.leader.election.enable",
        config_type: ConfigType::Boolean,
        default: "false",
        documentation: "Allow a replica outside the ISR to become leader, at the cost of data loss.",
        broker_synonyms: &[syn("unclean.leader.election.enable")],
        validator: Validator::Any,
    },
];

/// Looks up a topic config definition by its Kafka name.
pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

/// Validates a value for a topic config and returns it normalized.
pub fn validate_topic_config(name: &str, value: &str) -> Result<String, ControllerError> {
    let def = topic_config_def(name).ok_or_else(|| unknown_config(name))?;
    normalize_value(def, value).map_err(|reason| {
        ControllerError::InvalidConfig(format!(
            "Invalid value {value} for configuration {name}: {reason}"
        ))
    })
}

fn unknown_config(name: &str) -> ControllerError {
    ControllerError::InvalidConfig(format!("Unknown topic config name: {name}"))
}

/// Splits a list value into its trimmed, non-empty elements.
pub fn list_elements(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn normalize_value(def: &TopicConfigDef, raw: &str) -> Result<String, String> {
    let value = raw.trim();
    match def.config_type {
        ConfigType::Int => {
            let n: i32 = value
                .parse()
                .map_err(|_| "Not a number of type INT".to_string())?;
            check_at_least(def, i64::from(n))?;
            Ok(n.to_string())
        }
        ConfigType::Long => {
            let n: i64 = value
                .parse()
                .map_err(|_| "Not a number of type LONG".to_string())?;
            check_at_least(def, n)?;
            Ok(n.to_string())
        }
        ConfigType::Double => {
            let n: f64 = value
                .parse()
                .map_err(|_| "Not a number of type DOUBLE".to_string())?;
            if !n.is_finite() {
                return Err("Value must be a finite number".to_string());
            }
            if let Validator::Between(min, max) = def.validator
                && !(min..=max).contains(&n)
            {
                return Err(format!("Value must be between {min} and {max}"));
            }
            Ok(value.to_string())
        }
        ConfigType::Boolean => {
            if value.eq_ignore_ascii_case("true") {
                Ok("true".to_string())
            } else if value.eq_ignore_ascii_case("false") {
                Ok("false".to_string())
            } else {
                Err("Expected value to be either true or false".to_string())
            }
        }
        ConfigType::String => {
            if let Validator::OneOf(allowed) = def.validator
                && !allowed.contains(&value)
            {
                return Err(format!("String must be one of: {}", allowed.join(", ")));
            }
            Ok(value.to_string())
        }
        ConfigType::List => {
            let elements = list_elements(value);
            if let Validator::ListOf(allowed) = def.validator {
                if elements.is_empty() {
                    return Err(format!(
                        "List must not be empty; allowed values: {}",
                        allowed.join(", ")
                    ));
                }
                for (i, element) in elements.iter().enumerate() {
                    if !allowed.contains(&element.as_str()) {
                        return Err(format!(
                            "Invalid value '{element}'; allowed values: {}",
                            allowed.join(", ")
                        ));
                    }
                    if elements[..i].contains(element) {
                        return Err(format!("Duplicate value '{element}'"));
                    }
                }
            }
            Ok(elements.join(","))
        }
    }
}

fn check_at_least(def: &TopicConfigDef, n: i64) -> Result<(), String> {
    match def.validator {
        Validator::AtLeast(min) if n < min => Err(format!("Value must be at least {min}")),
        Validator::IntBetween { min, max, or } if !(min..=max).contains(&n) && or != Some(n) => {
            Err(match or {
                Some(or) => format!("Value must be {or} or between {min} and {max}"),
                None => format!("Value must be between {min} and {max}"),
            })
        }
        _ => Ok(()),
    }
}

/// Where an effective config value came from (Kafka's DescribeConfigs `ConfigSource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A per-topic override (DYNAMIC_TOPIC_CONFIG).
    TopicOverride,
    /// A broker config (STATIC_BROKER_CONFIG); `broker_config` is its name.
    BrokerDefault { broker_config: &'static str },
    /// The built-in default (DEFAULT_CONFIG).
    SchemaDefault,
}

/// A topic config's effective value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedConfig {
    pub def: &'static TopicConfigDef,
    pub value: String,
    pub source: ConfigSource,
}

/// Resolves a topic's effective value for `name`: its override, else the broker default, else
/// the schema default. Unknown names are an `InvalidConfig` error.
pub fn resolve_topic_config(
    name: &str,
    overrides: &BTreeMap<String, String>,
    broker_defaults: &BTreeMap<String, String>,
) -> Result<ResolvedConfig, ControllerError> {
    let def = topic_config_def(name).ok_or_else(|| unknown_config(name))?;
    Ok(resolve_def(def, overrides, broker_defaults))
}

/// Resolves every known topic config, in name order (for DescribeConfigs of a whole topic).
pub fn resolve_all_topic_configs(
    overrides: &BTreeMap<String, String>,
    broker_defaults: &BTreeMap<String, String>,
) -> Vec<ResolvedConfig> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| resolve_def(def, overrides, broker_defaults))
        .collect()
}

fn resolve_def(
    def: &'static TopicConfigDef,
    overrides: &BTreeMap<String, String>,
    broker_defaults: &BTreeMap<String, String>,
) -> ResolvedConfig {
    if let Some(value) = overrides.get(def.name) {
        return ResolvedConfig {
            def,
            value: value.clone(),
            source: ConfigSource::TopicOverride,
        };
    }
    for synonym in def.broker_synonyms {
        if let Some(raw) = broker_defaults.get(synonym.name)
            && let Some(value) = broker_value(def, *synonym, raw)
        {
            return ResolvedConfig {
                def,
                value,
                source: ConfigSource::BrokerDefault {
                    broker_config: synonym.name,
                },
            };
        }
    }
    ResolvedConfig {
        def,
        value: def.default.to_string(),
        source: ConfigSource::SchemaDefault,
    }
}

/// Converts a broker config value to the topic config's unit and normalizes it; `None` if it is
/// not a valid value (broker defaults are validated at start-up, see
/// [`validate_broker_topic_defaults`], so this only guards against programmer error).
fn broker_value(def: &TopicConfigDef, synonym: BrokerSynonym, raw: &str) -> Option<String> {
    let scaled = if synonym.scale == 1 {
        raw.trim().to_string()
    } else {
        // Kafka: a negative hours/minutes retention means "no limit", i.e. -1 ms.
        let n = raw.trim().parse::<i64>().ok()?;
        if n < 0 {
            "-1".to_string()
        } else {
            n.checked_mul(synonym.scale)?.to_string()
        }
    };
    normalize_value(def, &scaled).ok()
}

/// Checks that every broker config which supplies a topic default holds a value that is legal
/// for that topic config. Returns a human-readable reason on the first bad one.
pub fn validate_broker_topic_defaults(
    broker_defaults: &BTreeMap<String, String>,
) -> Result<(), String> {
    for def in TOPIC_CONFIGS {
        for synonym in def.broker_synonyms {
            if let Some(raw) = broker_defaults.get(synonym.name)
                && broker_value(def, *synonym, raw).is_none()
            {
                return Err(format!(
                    "broker config {}={raw} is not a valid default for topic config {}",
                    synonym.name, def.name
                ));
            }
        }
    }
    Ok(())
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
    fn schema_is_sorted_unique_and_defaults_are_valid() {
        for pair in TOPIC_CONFIGS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} !< {}",
                pair[0].name,
                pair[1].name
            );
        }
        for def in TOPIC_CONFIGS {
            let normalized = validate_topic_config(def.name, def.default)
                .unwrap_or_else(|e| panic!("default of {} invalid: {e}", def.name));
            assert_eq!(normalized, def.default, "{}", def.name);
            assert!(!def.broker_synonyms.is_empty(), "{}", def.name);
        }
        assert_eq!(TOPIC_CONFIGS.len(), 26);
    }

    #[test]
    fn validates_and_normalizes_values() {
        assert_eq!(validate_topic_config("retention.ms", " -1 ").unwrap(), "-1");
        assert_eq!(validate_topic_config("retention.ms", "+5").unwrap(), "5");
        assert_eq!(
            validate_topic_config("cleanup.policy", "compact, delete").unwrap(),
            "compact,delete"
        );
        assert_eq!(
            validate_topic_config("unclean.leader.election.enable", "TRUE").unwrap(),
            "true"
        );
        assert_eq!(
            validate_topic_config("min.cleanable.dirty.ratio", "1").unwrap(),
            "1"
        );
        assert_eq!(
            validate_topic_config("compression.type", "zstd").unwrap(),
            "zstd"
        );
        assert_eq!(
            validate_topic_config("message.timestamp.type", "LogAppendTime").unwrap(),
            "LogAppendTime"
        );
        for (name, value) in [
            ("compression.gzip.level", "-1"),
            ("compression.gzip.level", "1"),
            ("compression.gzip.level", "9"),
            ("compression.lz4.level", "17"),
            ("compression.zstd.level", "-131072"),
            ("compression.zstd.level", "22"),
        ] {
            assert_eq!(validate_topic_config(name, value).unwrap(), value);
        }
    }

    #[test]
    fn rejects_invalid_values_naming_the_config() {
        let cases = [
            ("retention.ms", "-2"),
            ("retention.ms", "abc"),
            ("retention.bytes", "-2"),
            ("segment.bytes", "13"),
            ("segment.bytes", "99999999999"),
            ("segment.ms", "0"),
            ("max.message.bytes", "-1"),
            ("min.insync.replicas", "0"),
            ("unclean.leader.election.enable", "yes"),
            ("message.timestamp.type", "createtime"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("min.cleanable.dirty.ratio", "NaN"),
            ("compression.type", "brotli"),
            ("cleanup.policy", "remove"),
            ("cleanup.policy", ""),
            ("cleanup.policy", "delete,delete"),
            ("preallocate", "1"),
            ("compression.gzip.level", "0"),
            ("compression.gzip.level", "10"),
            ("compression.gzip.level", "-2"),
            ("compression.lz4.level", "0"),
            ("compression.lz4.level", "18"),
            ("compression.zstd.level", "23"),
            ("compression.zstd.level", "-131073"),
        ];
        for (name, value) in cases {
            let err = validate_topic_config(name, value).unwrap_err();
            assert!(
                matches!(err, ControllerError::InvalidConfig(_)),
                "{name}={value}"
            );
            assert!(err.to_string().contains(name), "{err}");
        }
        let err = validate_topic_config("retention.hours", "1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unknown topic config name: retention.hours"
        );
    }

    #[test]
    fn resolves_override_then_broker_then_schema() {
        let overrides = map(&[("retention.ms", "1000")]);
        let broker = map(&[
            ("log.retention.hours", "2"),
            ("log.segment.bytes", "1048576"),
        ]);

        let r = resolve_topic_config("retention.ms", &overrides, &broker).unwrap();
        assert_eq!(
            (r.value.as_str(), r.source),
            ("1000", ConfigSource::TopicOverride)
        );

        let r = resolve_topic_config("retention.ms", &BTreeMap::new(), &broker).unwrap();
        assert_eq!(r.value, "7200000");
        assert_eq!(
            r.source,
            ConfigSource::BrokerDefault {
                broker_config: "log.retention.hours"
            }
        );

        // log.retention.ms wins over log.retention.hours, as in Kafka.
        let broker_ms = map(&[("log.retention.hours", "2"), ("log.retention.ms", "5")]);
        let r = resolve_topic_config("retention.ms", &BTreeMap::new(), &broker_ms).unwrap();
        assert_eq!(r.value, "5");

        let r = resolve_topic_config("segment.bytes", &BTreeMap::new(), &broker).unwrap();
        assert_eq!(r.value, "1048576");

        let r = resolve_topic_config("cleanup.policy", &BTreeMap::new(), &broker).unwrap();
        assert_eq!(
            (r.value.as_str(), r.source),
            ("delete", ConfigSource::SchemaDefault)
        );

        let all = resolve_all_topic_configs(&overrides, &broker);
        assert_eq!(all.len(), TOPIC_CONFIGS.len());
        assert!(resolve_topic_config("nope", &overrides, &broker).is_err());
    }

    #[test]
    fn broker_defaults_are_validated() {
        assert!(validate_broker_topic_defaults(&map(&[("log.retention.ms", "100")])).is_ok());
        assert!(validate_broker_topic_defaults(&map(&[("num.partitions", "3")])).is_ok());
        let err = validate_broker_topic_defaults(&map(&[("log.segment.bytes", "x")])).unwrap_err();
        assert!(
            err.contains("log.segment.bytes") && err.contains("segment.bytes"),
            "{err}"
        );
        assert!(validate_broker_topic_defaults(&map(&[("log.roll.hours", "0")])).is_err());
        let unlimited = map(&[("log.retention.hours", "-5")]);
        assert!(validate_broker_topic_defaults(&unlimited).is_ok());
        let r = resolve_topic_config("retention.ms", &BTreeMap::new(), &unlimited).unwrap();
        assert_eq!(r.value, "-1");
    }
}
