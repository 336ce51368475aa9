//! Topic configs as the controller sees them: the schema of `shoal-config`, with its errors as
//! the controller's INVALID_CONFIG.
//!
//! Why validate here: a topic config override is validated once, by the controller, before it
//! becomes a record; after that every broker trusts the image. Values are stored normalized
//! (trimmed; booleans lower case; integers canonical; lists joined by `,` without spaces), so
//! equal settings compare equal in the image.

use std::collections::BTreeMap;

pub use shoal_config::topic::{
    ConfigSource, ResolvedConfig, TOPIC_CONFIGS, TopicConfigDef, list_elements,
    resolve_all_topic_configs, topic_config_def,
};
pub use shoal_config::{ConfigType, Validator};

use crate::error::ControllerError;

/// Validates a value for a topic config and returns it normalized.
pub fn validate_topic_config(name: &str, value: &str) -> Result<String, ControllerError> {
    shoal_config::validate_topic_config(name, value)
        .map_err(|e| ControllerError::InvalidConfig(e.message))
}

/// Resolves a topic's effective value for `name`: its override, else the broker setting, else
/// the default. Unknown names are an `InvalidConfig` error.
pub fn resolve_topic_config(
    name: &str,
    overrides: &BTreeMap<String, String>,
    broker_settings: &BTreeMap<String, String>,
) -> Result<ResolvedConfig, ControllerError> {
    shoal_config::resolve_topic_config(name, overrides, broker_settings)
        .map_err(|e| ControllerError::InvalidConfig(e.message))
}

/// Builds the log configuration a partition of a topic with these overrides would run with,
/// and refuses with INVALID_CONFIG what no log could run with (the message names the config
/// and its allowed range). The broker builds the same configuration with the same function when
/// it opens the log, so what passes here opens there.
pub fn check_log_config(
    overrides: &BTreeMap<String, String>,
    broker_settings: &BTreeMap<String, String>,
) -> Result<(), ControllerError> {
    shoal_log::LogConfig::from_topic_configs(|name| {
        shoal_config::resolve_topic_config(name, overrides, broker_settings)
            .ok()
            .map(|r| r.value)
    })
    .map(|_| ())
    .map_err(|e| match e {
        shoal_log::LogError::InvalidConfig(reason) => {
            ControllerError::InvalidConfig(format!("Invalid topic config: {reason}"))
        }
        other => ControllerError::InvalidConfig(other.to_string()),
    })
}
