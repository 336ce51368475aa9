//! Topic configs: Kafka's names, each backed by the broker setting that supplies its default.
//!
//! A topic config has no type, default or range of its own: it borrows them from its broker
//! setting (`retention.ms` ← `log.retention.ms`), so the two can never disagree. A topic's
//! effective value is its override (DYNAMIC_TOPIC_CONFIG), else the broker setting or one of its
//! synonyms if set explicitly (STATIC_BROKER_CONFIG), else the default (DEFAULT_CONFIG).
//!
//! The few with no broker setting in Kafka (`*.replication.throttled.replicas`) carry their
//! own definition ([`Backing::TopicOnly`]): an override, else the default.

use std::collections::BTreeMap;

use crate::broker::broker_config_def;
use crate::def::{ConfigDef, ConfigError, ConfigType, Validator, normalize, normalize_as};
use crate::effective::{explicit_source, synonyms_of};

pub use crate::def::list_elements;

/// The definition of one topic config.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfigDef {
    pub name: &'static str,
    /// Where the default, type and range come from.
    pub backing: Backing,
    pub documentation: &'static str,
}

/// What a topic config borrows its type, range and default from.
#[derive(Debug, Clone, PartialEq)]
pub enum Backing {
    /// The broker setting of this name, which also supplies the default when set.
    Broker(&'static str),
    /// A definition of its own: the topic's override, else this default (Kafka has no broker
    /// setting for it).
    TopicOnly(&'static ConfigDef),
}

impl TopicConfigDef {
    /// The definition behind this config: its broker setting's (a test proves every one
    /// exists), or its own.
    pub fn broker_def(&self) -> &'static ConfigDef {
        static FALLBACK: ConfigDef = crate::broker::def(
            "",
            ConfigType::String,
            None,
            crate::def::Unit::None,
            Validator::Any,
            crate::def::Section::Log,
            "",
        );
        match self.backing {
            Backing::Broker(name) => broker_config_def(name).unwrap_or(&FALLBACK),
            Backing::TopicOnly(def) => def,
        }
    }

    pub fn config_type(&self) -> ConfigType {
        self.broker_def().config_type
    }

    pub fn validator(&self) -> Validator {
        self.broker_def().validator
    }

    /// The built-in default: the broker setting's.
    pub fn default(&self) -> &'static str {
        self.broker_def().default.unwrap_or("")
    }

    /// Broker settings that supply the default, highest precedence first (none for a
    /// topic-only config).
    pub fn broker_synonyms(&self) -> Vec<&'static str> {
        match self.backing {
            Backing::Broker(name) => std::iter::once(name)
                .chain(synonyms_of(name).map(|d| d.name))
                .collect(),
            Backing::TopicOnly(_) => Vec::new(),
        }
    }
}

const fn topic(
    name: &'static str,
    broker: &'static str,
    documentation: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        backing: Backing::Broker(broker),
        documentation,
    }
}

const fn topic_only(def: &'static ConfigDef, documentation: &'static str) -> TopicConfigDef {
    TopicConfigDef {
        name: def.name,
        backing: Backing::TopicOnly(def),
        documentation,
    }
}

/// A replica list a replication throttle applies to (Kafka's `ThrottledReplicaListValidator`).
const fn throttled_replicas(name: &'static str, doc: &'static str) -> ConfigDef {
    crate::broker::def(
        name,
        ConfigType::List,
        Some(""),
        crate::def::Unit::None,
        Validator::ThrottledReplicas,
        crate::def::Section::Replication,
        doc,
    )
}

const LEADER_THROTTLED_REPLICAS_DOC: &str = "Replicas whose replication the leader throttles to leader.replication.throttled.rate while they are out of the ISR: partition:broker pairs naming the leader's broker, or * for every replica.";
static LEADER_THROTTLED_REPLICAS: ConfigDef = throttled_replicas(
    "leader.replication.throttled.replicas",
    LEADER_THROTTLED_REPLICAS_DOC,
);
const FOLLOWER_THROTTLED_REPLICAS_DOC: &str = "Replicas whose fetching the follower throttles to follower.replication.throttled.rate while they are out of the ISR: partition:broker pairs naming the follower's broker, or * for every replica.";
static FOLLOWER_THROTTLED_REPLICAS: ConfigDef = throttled_replicas(
    "follower.replication.throttled.replicas",
    FOLLOWER_THROTTLED_REPLICAS_DOC,
);

/// Every topic config Shoal knows, in name order.
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    topic(
        "cleanup.policy",
        "log.cleanup.policy",
        "How old log segments are discarded: delete them, compact them by key, or both.",
    ),
    topic(
        "compression.gzip.level",
        "compression.gzip.level",
        "Compression level when compression.type is gzip: 1..9, or -1 for the codec default.",
    ),
    topic(
        "compression.lz4.level",
        "compression.lz4.level",
        "Compression level when compression.type is lz4.",
    ),
    topic(
        "compression.type",
        "compression.type",
        "Compression codec the leader stores batches with: 'producer' keeps each batch as sent; any other codec recompresses batches sent with a different one.",
    ),
    topic(
        "compression.zstd.level",
        "compression.zstd.level",
        "Compression level when compression.type is zstd (negative levels are zstd's fast modes).",
    ),
    topic(
        "delete.retention.ms",
        "log.cleaner.delete.retention.ms",
        "How long delete tombstones are kept for compacted topics.",
    ),
    topic(
        "file.delete.delay.ms",
        "log.segment.delete.delay.ms",
        "Time to wait before deleting a file from the filesystem.",
    ),
    topic(
        "flush.messages",
        "log.flush.interval.messages",
        "Force an fsync of the log after this many messages.",
    ),
    topic(
        "flush.ms",
        "log.flush.interval.ms",
        "Force an fsync of the log after this much time.",
    ),
    topic_only(
        &FOLLOWER_THROTTLED_REPLICAS,
        FOLLOWER_THROTTLED_REPLICAS_DOC,
    ),
    topic(
        "index.interval.bytes",
        "log.index.interval.bytes",
        "How many log bytes between two offset index entries.",
    ),
    topic_only(&LEADER_THROTTLED_REPLICAS, LEADER_THROTTLED_REPLICAS_DOC),
    topic(
        "max.compaction.lag.ms",
        "log.cleaner.max.compaction.lag.ms",
        "Longest time a message stays ineligible for compaction.",
    ),
    topic(
        "max.message.bytes",
        "message.max.bytes",
        "Largest record batch size the topic accepts.",
    ),
    topic(
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
        "How far a message timestamp may be ahead of the broker's clock.",
    ),
    topic(
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
        "How far a message timestamp may be behind the broker's clock.",
    ),
    topic(
        "message.timestamp.type",
        "log.message.timestamp.type",
        "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime).",
    ),
    topic(
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
        "Minimum ratio of dirty log to total log for a log to be compacted.",
    ),
    topic(
        "min.compaction.lag.ms",
        "log.cleaner.min.compaction.lag.ms",
        "Shortest time a message stays uncompacted.",
    ),
    topic(
        "min.insync.replicas",
        "min.insync.replicas",
        "Minimum ISR size for an acks=all produce to succeed.",
    ),
    topic(
        "preallocate",
        "log.preallocate",
        "Preallocate the file when creating a new segment.",
    ),
    topic(
        "retention.bytes",
        "log.retention.bytes",
        "Largest size a partition may grow to before old segments are deleted; -1 = no limit.",
    ),
    topic(
        "retention.ms",
        "log.retention.ms",
        "Longest time a segment is kept before it is deleted; -1 = no limit.",
    ),
    topic(
        "segment.bytes",
        "log.segment.bytes",
        "Size at which the active segment is rolled.",
    ),
    topic(
        "segment.index.bytes",
        "log.index.size.max.bytes",
        "Size of the offset index file of a segment.",
    ),
    topic(
        "segment.jitter.ms",
        "log.roll.jitter.ms",
        "Largest random jitter subtracted from segment.ms to avoid rolling all at once.",
    ),
    topic(
        "segment.ms",
        "log.roll.ms",
        "Age at which the active segment is rolled even if not full.",
    ),
    topic(
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        "Allow a replica outside the ISR to become leader, at the cost of data loss.",
    ),
];

/// Looks up a topic config definition by its Kafka name.
pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

/// Validates a value for a topic config and returns it normalized; the error names the config
/// and the allowed range.
pub fn validate_topic_config(name: &str, value: &str) -> Result<String, ConfigError> {
    let def = topic_config_def(name).ok_or_else(|| ConfigError {
        name: name.to_string(),
        message: format!("Unknown topic config name: {name}"),
    })?;
    normalize_as(def.config_type(), &def.validator(), value)
        .map_err(|reason| ConfigError::invalid_value(name, value.trim(), &reason))
}

/// Where an effective topic config value came from (Kafka's DescribeConfigs `ConfigSource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A per-topic override (DYNAMIC_TOPIC_CONFIG).
    TopicOverride,
    /// A broker setting (STATIC_BROKER_CONFIG); `broker_config` is the name that was set.
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

/// Resolves a topic's effective value for `name`: its override, else the broker setting (set
/// explicitly in `broker_settings`, under its name or a synonym), else the default.
pub fn resolve_topic_config(
    name: &str,
    overrides: &BTreeMap<String, String>,
    broker_settings: &BTreeMap<String, String>,
) -> Result<ResolvedConfig, ConfigError> {
    let def = topic_config_def(name).ok_or_else(|| ConfigError {
        name: name.to_string(),
        message: format!("Unknown topic config name: {name}"),
    })?;
    Ok(resolve_def(def, overrides, broker_settings))
}

/// Resolves every known topic config, in name order (DescribeConfigs of a whole topic).
pub fn resolve_all_topic_configs(
    overrides: &BTreeMap<String, String>,
    broker_settings: &BTreeMap<String, String>,
) -> Vec<ResolvedConfig> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| resolve_def(def, overrides, broker_settings))
        .collect()
}

fn resolve_def(
    def: &'static TopicConfigDef,
    overrides: &BTreeMap<String, String>,
    broker_settings: &BTreeMap<String, String>,
) -> ResolvedConfig {
    if let Some(value) = overrides.get(def.name) {
        return ResolvedConfig {
            def,
            value: value.clone(),
            source: ConfigSource::TopicOverride,
        };
    }
    // Broker settings are validated at start-up; a value that does not normalize here would be a
    // bug, and the default is the safe answer.
    if let Backing::Broker(broker) = def.backing
        && let Some((broker_config, raw)) = explicit_source(broker_settings, broker)
        && let Ok(value) = normalize(def.broker_def(), &raw)
    {
        return ResolvedConfig {
            def,
            value,
            source: ConfigSource::BrokerDefault { broker_config },
        };
    }
    ResolvedConfig {
        def,
        value: def.default().to_string(),
        source: ConfigSource::SchemaDefault,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_only_config_is_its_override_or_its_default_never_a_broker_setting() {
        let name = "leader.replication.throttled.replicas";
        // Not a broker setting: a same-named entry in the broker's settings is ignored.
        let settings = map(&[(name, "*")]);
        let r = resolve_topic_config(name, &BTreeMap::new(), &settings).unwrap();
        assert_eq!(
            (r.value.as_str(), &r.source),
            ("", &ConfigSource::SchemaDefault)
        );
        let r = resolve_topic_config(name, &map(&[(name, "0:1")]), &settings).unwrap();
        assert_eq!(
            (r.value.as_str(), &r.source),
            ("0:1", &ConfigSource::TopicOverride)
        );
        assert!(topic_config_def(name).unwrap().broker_synonyms().is_empty());
        assert!(validate_topic_config(name, "0:1,x").is_err());
        assert_eq!(
            validate_topic_config("follower.replication.throttled.replicas", " 0:4 , 1:4 ")
                .as_deref(),
            Ok("0:4,1:4")
        );
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_topic_config_has_a_canonical_broker_setting_with_a_valid_default() {
        for pair in TOPIC_CONFIGS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} !< {}",
                pair[0].name,
                pair[1].name
            );
        }
        for def in TOPIC_CONFIGS {
            let broker = match def.backing {
                Backing::Broker(name) => broker_config_def(name)
                    .unwrap_or_else(|| panic!("{}: no broker setting {name}", def.name)),
                Backing::TopicOnly(own) => {
                    assert_eq!(own.name, def.name);
                    assert!(broker_config_def(def.name).is_none(), "{}", def.name);
                    own
                }
            };
            assert!(broker.synonym_of.is_none(), "{} → a synonym", def.name);
            assert!(
                broker.default.is_some(),
                "{}: broker setting has no default",
                def.name
            );
            assert_eq!(
                validate_topic_config(def.name, def.default()).as_deref(),
                Ok(def.default()),
                "{}",
                def.name
            );
        }
    }

    #[test]
    fn validates_and_normalizes_values() {
        let ok = [
            ("retention.ms", " -1 ", "-1"),
            ("retention.ms", "+5", "5"),
            ("cleanup.policy", "compact, delete", "compact,delete"),
            ("unclean.leader.election.enable", "TRUE", "true"),
            ("min.cleanable.dirty.ratio", "1", "1"),
            ("compression.type", "zstd", "zstd"),
            ("message.timestamp.type", "LogAppendTime", "LogAppendTime"),
        ];
        for (name, raw, want) in ok {
            assert_eq!(
                validate_topic_config(name, raw).as_deref(),
                Ok(want),
                "{name}"
            );
        }
        let bad = [
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
        ];
        for (name, value) in bad {
            let err = validate_topic_config(name, value).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        let err = validate_topic_config("retention.hours", "1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unknown topic config name: retention.hours"
        );
    }

    #[test]
    fn resolves_override_then_broker_then_default() {
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

        let unlimited = map(&[("log.retention.hours", "-5")]);
        let r = resolve_topic_config("retention.ms", &BTreeMap::new(), &unlimited).unwrap();
        assert_eq!(r.value, "-1");

        assert_eq!(
            resolve_all_topic_configs(&overrides, &broker).len(),
            TOPIC_CONFIGS.len()
        );
        assert!(resolve_topic_config("nope", &overrides, &broker).is_err());
    }
}
