//! A setting's effective value from the explicitly given ones, with Kafka's synonym precedence.
//!
//! Nodes pass around only what the operator set (file, environment, flags); defaults come from
//! the schema when asked for. That keeps "was this set?" answerable (DescribeConfigs reports
//! STATIC_BROKER_CONFIG vs DEFAULT_CONFIG) and lets a synonym (`log.retention.hours=24`) win
//! over a default of its canonical setting instead of losing to it.

use std::collections::BTreeMap;

use crate::broker::{BROKER_CONFIGS, broker_config_def};
use crate::def::Synonym;

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    /// Set explicitly under this name (the canonical one or a synonym).
    Explicit(&'static str),
    /// The schema's default.
    Default,
}

/// A setting's value in its canonical unit, and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveValue {
    pub value: String,
    pub source: ValueSource,
}

/// The explicitly set value of canonical setting `name`, from its own name or else its
/// synonyms in precedence order, converted to `name`'s unit. `None` when none is set.
pub fn explicit_source(
    explicit: &BTreeMap<String, String>,
    name: &str,
) -> Option<(&'static str, String)> {
    let def = broker_config_def(name)?;
    if let Some(value) = explicit.get(name) {
        return Some((def.name, value.clone()));
    }
    for synonym_def in synonyms_of(name) {
        let Some(raw) = explicit.get(synonym_def.name) else {
            continue;
        };
        let Some(synonym) = synonym_def.synonym_of else {
            continue;
        };
        if let Some(value) = scale(raw, synonym) {
            return Some((synonym_def.name, value));
        }
    }
    None
}

/// The effective value of `name` with its source; `None` if it is neither set nor defaulted.
pub fn effective_value(explicit: &BTreeMap<String, String>, name: &str) -> Option<EffectiveValue> {
    if let Some((source, value)) = explicit_source(explicit, name) {
        return Some(EffectiveValue {
            value,
            source: ValueSource::Explicit(source),
        });
    }
    let default = broker_config_def(name)?.default?;
    Some(EffectiveValue {
        value: default.to_string(),
        source: ValueSource::Default,
    })
}

/// The effective value of `name` (explicit, a synonym, or the default).
pub fn effective(explicit: &BTreeMap<String, String>, name: &str) -> Option<String> {
    effective_value(explicit, name).map(|v| v.value)
}

/// The synonyms of canonical setting `name`, in precedence order.
pub fn synonyms_of(name: &str) -> impl Iterator<Item = &'static crate::ConfigDef> + '_ {
    BROKER_CONFIGS
        .iter()
        .filter(move |def| def.synonym_of.is_some_and(|s| s.of == name))
}

/// A synonym's value in the canonical unit. Kafka: a negative retention in hours or minutes
/// means "no limit", i.e. -1 ms.
fn scale(raw: &str, synonym: Synonym) -> Option<String> {
    if synonym.scale == 1 {
        return Some(raw.trim().to_string());
    }
    let n = raw.trim().parse::<i64>().ok()?;
    if n < 0 {
        Some("-1".to_string())
    } else {
        n.checked_mul(synonym.scale).map(|v| v.to_string())
    }
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

    /// (explicit settings, setting asked, expected value, expected source)
    type Case = (
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static str,
        ValueSource,
    );

    #[test]
    fn kafka_precedence_for_synonyms() {
        let cases: &[Case] = &[
            (&[], "log.retention.ms", "604800000", ValueSource::Default),
            (
                &[("log.retention.hours", "24")],
                "log.retention.ms",
                "86400000",
                ValueSource::Explicit("log.retention.hours"),
            ),
            (
                &[
                    ("log.retention.hours", "24"),
                    ("log.retention.minutes", "5"),
                ],
                "log.retention.ms",
                "300000",
                ValueSource::Explicit("log.retention.minutes"),
            ),
            (
                &[("log.retention.hours", "24"), ("log.retention.ms", "7")],
                "log.retention.ms",
                "7",
                ValueSource::Explicit("log.retention.ms"),
            ),
            (
                &[("log.retention.hours", "-1")],
                "log.retention.ms",
                "-1",
                ValueSource::Explicit("log.retention.hours"),
            ),
            (
                &[("log.roll.hours", "2")],
                "log.roll.ms",
                "7200000",
                ValueSource::Explicit("log.roll.hours"),
            ),
            (
                &[("log.dir", "/var/lib/a")],
                "log.dirs",
                "/var/lib/a",
                ValueSource::Explicit("log.dir"),
            ),
            (
                &[("log.dir", "/a"), ("log.dirs", "/b")],
                "log.dirs",
                "/b",
                ValueSource::Explicit("log.dirs"),
            ),
            (
                &[("broker.id", "4")],
                "node.id",
                "4",
                ValueSource::Explicit("broker.id"),
            ),
        ];
        for (explicit, name, value, source) in cases {
            let got = effective_value(&map(explicit), name).unwrap();
            assert_eq!(got.value, *value, "{name} from {explicit:?}");
            assert_eq!(got.source, *source, "{name} from {explicit:?}");
        }
        assert_eq!(effective(&BTreeMap::new(), "advertised.listeners"), None);
        assert_eq!(effective(&BTreeMap::new(), "no.such.setting"), None);
    }
}
