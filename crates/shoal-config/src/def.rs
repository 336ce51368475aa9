//! What a setting is: its definition, and the rules that parse and validate one value.
//!
//! Values are normalized when accepted (trimmed; booleans lower case; integers canonical; lists
//! joined by `,` without spaces), so equal settings compare equal wherever they are stored.

use std::fmt;

/// Kafka's config value types (`ConfigDef.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    /// 16-bit integer (replication factors).
    Short,
    Int,
    Long,
    Double,
    String,
    /// Comma-separated values.
    List,
}

impl ConfigType {
    /// The name Kafka uses in DescribeConfigs (`ConfigType` in KIP-569).
    pub fn kafka_name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::Short => "SHORT",
            ConfigType::Int => "INT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::String => "STRING",
            ConfigType::List => "LIST",
        }
    }

    /// The number DescribeConfigs v3+ sends for this type (`DescribeConfigsResponse.ConfigType`).
    pub fn describe_configs_id(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
        }
    }
}

/// What values are legal beyond the type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validator {
    Any,
    /// Integer at least this value.
    AtLeast(i64),
    /// Integer within `[min, max]`.
    Between(i64, i64),
    /// Integer within `[min, max]`, or exactly `or` (a "codec default" sentinel such as -1).
    BetweenOr {
        min: i64,
        max: i64,
        or: i64,
    },
    /// Double within `[min, max]`.
    BetweenF(f64, f64),
    /// Double greater than zero.
    Positive,
    /// String equal to one of these (case-sensitive, as Kafka).
    OneOf(&'static [&'static str]),
    /// Non-empty list whose elements are each one of these, without duplicates.
    ListOf(&'static [&'static str]),
    /// Non-empty string (or list with at least one element).
    NonEmpty,
    /// Kafka's `ThrottledReplicaListValidator`: empty, `*`, or `partition:broker` entries.
    ThrottledReplicas,
}

impl Validator {
    /// The allowed values in words, for documentation and error messages.
    pub fn describe(&self) -> Option<String> {
        match self {
            Validator::Any => None,
            Validator::AtLeast(min) => Some(format!("[{min},...]")),
            Validator::Between(min, max) => Some(format!("[{min},...,{max}]")),
            Validator::BetweenOr { min, max, or } => Some(format!("{or}, or [{min},...,{max}]")),
            Validator::BetweenF(min, max) => Some(format!("[{min},...,{max}]")),
            Validator::Positive => Some("> 0".to_string()),
            Validator::OneOf(values) | Validator::ListOf(values) => Some(values.join(", ")),
            Validator::NonEmpty => Some("non-empty".to_string()),
            Validator::ThrottledReplicas => {
                Some("[partitionId]:[brokerId],[partitionId]:[brokerId],... or *".to_string())
            }
        }
    }
}

/// The unit of a numeric setting (documentation; synonyms convert between them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    None,
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
    Bytes,
    BytesPerSecond,
    Count,
    Percent,
    Ratio,
}

impl Unit {
    pub fn label(self) -> &'static str {
        match self {
            Unit::None => "",
            Unit::Milliseconds => "ms",
            Unit::Seconds => "s",
            Unit::Minutes => "min",
            Unit::Hours => "h",
            Unit::Bytes => "bytes",
            Unit::BytesPerSecond => "bytes/s",
            Unit::Count => "count",
            Unit::Percent => "%",
            Unit::Ratio => "ratio",
        }
    }
}

/// Which table of docs/configuration.md a setting belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// Identity, roles, data directory, quorum.
    Node,
    /// Listeners and client connection limits.
    Network,
    /// Replication, leadership and liveness.
    Replication,
    /// Broker defaults that topics inherit, and log maintenance.
    Log,
    /// The log cleaner (compaction).
    Cleaner,
    /// Consumer groups and `__consumer_offsets`.
    Groups,
    /// The transaction coordinator and `__transaction_state`.
    Transactions,
    /// Accepted from Kafka property files and ignored, with the reason.
    Ignored,
}

impl Section {
    pub const ALL: [Section; 8] = [
        Section::Node,
        Section::Network,
        Section::Replication,
        Section::Log,
        Section::Cleaner,
        Section::Groups,
        Section::Transactions,
        Section::Ignored,
    ];

    /// The marker name of the generated table in docs/configuration.md.
    pub fn marker(self) -> &'static str {
        match self {
            Section::Node => "node",
            Section::Network => "network",
            Section::Replication => "replication",
            Section::Log => "log",
            Section::Cleaner => "cleaner",
            Section::Groups => "groups",
            Section::Transactions => "transactions",
            Section::Ignored => "ignored",
        }
    }
}

/// Kafka's dynamic-update scope of a broker setting (`DynamicBrokerConfig`): what
/// IncrementalAlterConfigs on a BROKER resource may change without a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicScope {
    /// Only at start-up.
    ReadOnly,
    /// Per broker (`--entity-name N`).
    PerBroker,
    /// Cluster-wide default or per broker (`--entity-default`).
    ClusterWide,
}

impl DynamicScope {
    pub fn label(self) -> &'static str {
        match self {
            DynamicScope::ReadOnly => "read-only",
            DynamicScope::PerBroker => "per-broker",
            DynamicScope::ClusterWide => "cluster-wide",
        }
    }
}

/// Whether Shoal acts on a setting it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// The setting does what Kafka's does (or what its documentation here says).
    Applied,
    /// Accepted so Kafka property files start, with one warning naming it and this reason.
    Ignored(&'static str),
}

/// This setting is another unit of a canonical one (`log.retention.hours` of
/// `log.retention.ms`): its value times `scale` is the canonical value. Synonyms are consulted in
/// table order after the canonical name, as Kafka does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synonym {
    pub of: &'static str,
    pub scale: i64,
}

/// The definition of one setting.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigDef {
    pub name: &'static str,
    pub config_type: ConfigType,
    /// `None`: unset unless given (e.g. `advertised.listeners`, or a synonym).
    pub default: Option<&'static str>,
    pub unit: Unit,
    pub validator: Validator,
    pub doc: &'static str,
    pub section: Section,
    pub dynamic: DynamicScope,
    pub support: Support,
    pub synonym_of: Option<Synonym>,
    /// A Shoal setting with no Kafka counterpart (documented as such).
    pub shoal_only: bool,
    /// A secret (Kafka's PASSWORD type): DescribeConfigs reports it as sensitive, never its value.
    pub sensitive: bool,
    /// Shoal applies a change while running: a dynamic setting (`dynamic` not read-only) that
    /// IncrementalAlterConfigs may set for one broker or the cluster. Kafka's other dynamic
    /// settings are read at start-up in Shoal and refused there.
    pub reloaded: bool,
}

impl ConfigDef {
    /// Whether IncrementalAlterConfigs may change it on a running cluster: a dynamic setting
    /// Shoal applies at once, or one Kafka treats as dynamic that does nothing here as it does
    /// nothing on Kafka without the feature it tunes (Kafka's GSSAPI settings).
    pub fn is_alterable(&self) -> bool {
        let applied_or_inert = self.reloaded || matches!(self.support, Support::Ignored(_));
        applied_or_inert && self.dynamic != DynamicScope::ReadOnly && self.synonym_of.is_none()
    }
}

/// A value refused by the schema, naming the setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub name: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub fn invalid_value(name: &str, value: &str, reason: &str) -> Self {
        ConfigError {
            name: name.to_string(),
            message: format!("Invalid value {value} for configuration {name}: {reason}"),
        }
    }
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

/// Parses, validates and normalizes one value of `def`. The error names the setting and the
/// allowed range.
pub fn normalize(def: &ConfigDef, raw: &str) -> Result<String, ConfigError> {
    normalize_as(def.config_type, &def.validator, raw)
        .map_err(|reason| ConfigError::invalid_value(def.name, raw.trim(), &reason))
}

/// [`normalize`] for a type and validator (topic configs borrow their broker setting's).
pub fn normalize_as(
    config_type: ConfigType,
    validator: &Validator,
    raw: &str,
) -> Result<String, String> {
    let value = raw.trim();
    match config_type {
        ConfigType::Short => {
            let n: i16 = value
                .parse()
                .map_err(|_| "Not a number of type SHORT".to_string())?;
            check_integer(validator, i64::from(n))?;
            Ok(n.to_string())
        }
        ConfigType::Int => {
            let n: i32 = value
                .parse()
                .map_err(|_| "Not a number of type INT".to_string())?;
            check_integer(validator, i64::from(n))?;
            Ok(n.to_string())
        }
        ConfigType::Long => {
            let n: i64 = value
                .parse()
                .map_err(|_| "Not a number of type LONG".to_string())?;
            check_integer(validator, n)?;
            Ok(n.to_string())
        }
        ConfigType::Double => {
            let n: f64 = value
                .parse()
                .map_err(|_| "Not a number of type DOUBLE".to_string())?;
            if !n.is_finite() {
                return Err("Value must be a finite number".to_string());
            }
            match *validator {
                Validator::BetweenF(min, max) if !(min..=max).contains(&n) => {
                    Err(format!("Value must be between {min} and {max}"))
                }
                Validator::Positive if n <= 0.0 => Err("Value must be positive".to_string()),
                _ => Ok(value.to_string()),
            }
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
        ConfigType::String => match validator {
            Validator::OneOf(allowed) if !allowed.contains(&value) => {
                Err(format!("String must be one of: {}", allowed.join(", ")))
            }
            Validator::NonEmpty if value.is_empty() => Err("Value must not be empty".to_string()),
            _ => Ok(value.to_string()),
        },
        ConfigType::List => {
            let elements = list_elements(value);
            match validator {
                Validator::ListOf(allowed) => {
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
                Validator::NonEmpty if elements.is_empty() => {
                    return Err("List must not be empty".to_string());
                }
                Validator::ThrottledReplicas => check_throttled_replicas(&elements)?,
                _ => {}
            }
            Ok(elements.join(","))
        }
    }
}

/// `*` alone, or `partition:broker` pairs of non-negative integers (Kafka's message).
fn check_throttled_replicas(elements: &[String]) -> Result<(), String> {
    if elements.len() == 1 && elements[0] == "*" {
        return Ok(());
    }
    let pair = |e: &str| {
        e.split_once(':').is_some_and(|(p, b)| {
            p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
        })
    };
    if elements.iter().all(|e| pair(e)) {
        return Ok(());
    }
    Err(
        "must be the literal '*' or a list of replicas in the following format: \
         [partitionId]:[brokerId],[partitionId]:[brokerId],..."
            .to_string(),
    )
}

fn check_integer(validator: &Validator, n: i64) -> Result<(), String> {
    match *validator {
        Validator::AtLeast(min) if n < min => Err(format!("Value must be at least {min}")),
        Validator::Between(min, max) if !(min..=max).contains(&n) => {
            Err(format!("Value must be in the range [{min}, {max}]"))
        }
        Validator::BetweenOr { min, max, or } if !(min..=max).contains(&n) && n != or => {
            Err(format!("Value must be {or} or in the range [{min}, {max}]"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_each_type() {
        let cases: &[(ConfigType, Validator, &str, Result<&str, ()>)] = &[
            (ConfigType::Int, Validator::AtLeast(1), " 5 ", Ok("5")),
            (ConfigType::Int, Validator::AtLeast(1), "+5", Ok("5")),
            (ConfigType::Int, Validator::AtLeast(1), "0", Err(())),
            (ConfigType::Int, Validator::Any, "99999999999", Err(())),
            (ConfigType::Short, Validator::AtLeast(1), "3", Ok("3")),
            (ConfigType::Short, Validator::AtLeast(1), "70000", Err(())),
            (ConfigType::Long, Validator::AtLeast(-1), "-1", Ok("-1")),
            (ConfigType::Long, Validator::AtLeast(-1), "-2", Err(())),
            (ConfigType::Long, Validator::Between(1, 9), "10", Err(())),
            (
                ConfigType::Double,
                Validator::BetweenF(0.0, 1.0),
                "1",
                Ok("1"),
            ),
            (
                ConfigType::Double,
                Validator::BetweenF(0.0, 1.0),
                "1.5",
                Err(()),
            ),
            (ConfigType::Double, Validator::Any, "NaN", Err(())),
            (ConfigType::Double, Validator::Positive, "0", Err(())),
            (
                ConfigType::Double,
                Validator::Positive,
                "1.7976931348623157E308",
                Ok("1.7976931348623157E308"),
            ),
            (ConfigType::Boolean, Validator::Any, "TRUE", Ok("true")),
            (ConfigType::Boolean, Validator::Any, "1", Err(())),
            (
                ConfigType::String,
                Validator::OneOf(&["a", "b"]),
                "b",
                Ok("b"),
            ),
            (
                ConfigType::String,
                Validator::OneOf(&["a", "b"]),
                "B",
                Err(()),
            ),
            (ConfigType::String, Validator::NonEmpty, " ", Err(())),
            (
                ConfigType::List,
                Validator::ListOf(&["compact", "delete"]),
                "compact, delete",
                Ok("compact,delete"),
            ),
            (ConfigType::List, Validator::ListOf(&["x"]), "", Err(())),
            (ConfigType::List, Validator::ListOf(&["x"]), "x,x", Err(())),
            (ConfigType::List, Validator::NonEmpty, " , ", Err(())),
            (ConfigType::List, Validator::ThrottledReplicas, "", Ok("")),
            (
                ConfigType::List,
                Validator::ThrottledReplicas,
                " * ",
                Ok("*"),
            ),
            (
                ConfigType::List,
                Validator::ThrottledReplicas,
                "0:1, 1:2",
                Ok("0:1,1:2"),
            ),
            (
                ConfigType::List,
                Validator::ThrottledReplicas,
                "*,0:1",
                Err(()),
            ),
            (
                ConfigType::List,
                Validator::ThrottledReplicas,
                "0:x",
                Err(()),
            ),
            (
                ConfigType::List,
                Validator::ThrottledReplicas,
                "0:-1",
                Err(()),
            ),
            (ConfigType::List, Validator::ThrottledReplicas, "0", Err(())),
        ];
        for (ty, validator, raw, expected) in cases {
            let got = normalize_as(*ty, validator, raw);
            match expected {
                Ok(want) => assert_eq!(got.as_deref(), Ok(*want), "{ty:?} {raw:?}"),
                Err(()) => assert!(got.is_err(), "{ty:?} {raw:?} accepted as {got:?}"),
            }
        }
    }
}
