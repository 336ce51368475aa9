//! The one configuration schema of a Shoal node, in the spirit of Kafka's `ConfigDef`.
//!
//! Why one table: a setting used to be named in the loader, defaulted in the group module,
//! validated in the controller and documented by hand, and the copies drifted (a documented
//! setting the loader refused, a topic config stored but never applied). Here every broker,
//! controller, group and topic setting is defined once — name, type, unit, default, validator,
//! synonyms, documentation, Kafka's dynamic scope, and whether Shoal applies it — and everything
//! else is a view: the server's loader ([`broker::BROKER_CONFIGS`]), topic defaults
//! ([`topic::TOPIC_CONFIGS`], whose types and defaults are those of the broker setting that
//! supplies them), group configs ([`group::GROUP_CONFIGS`], borrowed the same way), the group
//! coordinator's defaults, and the tables of docs/configuration.md
//! ([`docs`], checked by a test).
//!
//! Values travel as strings by Kafka name (they come from files, flags and the Kafka protocol);
//! [`def::normalize`] parses and validates one, [`effective`] resolves a setting from the explicit
//! ones with Kafka's synonym precedence (`log.retention.ms` over `…minutes` over `…hours`).

pub mod broker;
pub mod def;
pub mod docs;
pub mod effective;
pub mod group;
pub mod suggest;
pub mod topic;

pub use broker::{BROKER_CONFIGS, broker_config_def};
pub use def::{
    ConfigDef, ConfigError, ConfigType, DynamicScope, Section, Support, Unit, Validator,
};
pub use effective::{EffectiveValue, effective, effective_value, explicit_source};
pub use group::{
    GROUP_CONFIGS, GroupConfigDef, ResolvedGroupConfig, group_config_def, resolve_group_configs,
    validate_group_configs,
};
pub use topic::{
    ConfigSource, ResolvedConfig, TOPIC_CONFIGS, TopicConfigDef, list_elements,
    resolve_all_topic_configs, resolve_topic_config, topic_config_def, validate_topic_config,
};
