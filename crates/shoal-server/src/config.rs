//! The node's configuration: Kafka's broker config names, from four layers.
//!
//! Users bring Kafka knowledge (and Kafka property files), so every setting keeps its Kafka name
//! (`num.partitions`, `log.retention.ms`, …). Layers, weakest first: built-in defaults, a TOML file
//! (`--config`), `SHOAL_*` environment variables, `--override key=value` flags. A TOML file may
//! write `num.partitions = 3` (TOML reads that as nested tables; they are flattened back into the
//! dotted name) or quote the key. Unknown names are an error at start-up, not a silent typo.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// One known setting: its Kafka name and default (None = no default, e.g. advertised.listeners).
struct Setting {
    name: &'static str,
    default: Option<&'static str>,
}

const fn s(name: &'static str, default: &'static str) -> Setting {
    Setting {
        name,
        default: Some(default),
    }
}

const fn unset(name: &'static str) -> Setting {
    Setting {
        name,
        default: None,
    }
}

/// Every broker/controller setting this node reads.
const SETTINGS: &[Setting] = &[
    s("node.id", "1"),
    s("process.roles", "broker,controller"),
    s("log.dir", "./data"),
    s(
        "listeners",
        "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
    ),
    unset("advertised.listeners"),
    s("inter.broker.listener.name", "PLAINTEXT"),
    s("controller.listener.names", "CONTROLLER"),
    s("controller.quorum.voters", "1@127.0.0.1:9093"),
    unset("cluster.id"),
    s("admin.listener", "127.0.0.1:9644"),
    s("replication.listener", "127.0.0.1:9094"),
    unset("advertised.replication.listener"),
    s("num.partitions", "1"),
    s("default.replication.factor", "1"),
    s("min.insync.replicas", "1"),
    s("auto.create.topics.enable", "true"),
    s("delete.topic.enable", "true"),
    s("unclean.leader.election.enable", "false"),
    s("socket.request.max.bytes", "104857600"),
    s("max.connections", "10000"),
    s("connections.max.idle.ms", "600000"),
    s("queued.max.requests.per.connection", "64"),
    s("message.max.bytes", "1048588"),
    s("fetch.max.bytes", "57671680"),
    s("log.segment.bytes", "1073741824"),
    s("log.roll.ms", "604800000"),
    s("log.retention.ms", "604800000"),
    s("log.retention.bytes", "-1"),
    s("log.retention.check.interval.ms", "300000"),
    s("log.cleanup.policy", "delete"),
    s("log.cleaner.backoff.ms", "15000"),
    s("log.cleaner.dedupe.buffer.size", "134217728"),
    s(
        "log.cleaner.io.max.bytes.per.second",
        "1.7976931348623157E308",
    ),
    s("log.index.interval.bytes", "4096"),
    s("log.index.size.max.bytes", "10485760"),
    s("log.flush.interval.messages", "9223372036854775807"),
    s("log.flush.interval.ms", "9223372036854775807"),
    s("log.flush.scheduler.interval.ms", "1000"),
    s("log.message.timestamp.type", "CreateTime"),
    s("compression.type", "producer"),
    s("compression.gzip.level", "-1"),
    s("compression.lz4.level", "9"),
    s("compression.zstd.level", "3"),
    s("replica.lag.time.max.ms", "30000"),
    s("auto.leader.rebalance.enable", "true"),
    s("leader.imbalance.check.interval.seconds", "300"),
    s("leader.imbalance.per.broker.percentage", "10"),
    s("broker.heartbeat.interval.ms", "250"),
    s("broker.session.timeout.ms", "1500"),
    s("replica.high.watermark.checkpoint.interval.ms", "5000"),
    s("controlled.shutdown.enable", "true"),
    s("shutdown.timeout.ms", "10000"),
    // Consumer groups (shoal_broker::groups::config::DEFAULTS must agree; a test checks).
    s("offsets.topic.num.partitions", "50"),
    s("offsets.topic.replication.factor", "3"),
    s("offsets.topic.segment.bytes", "104857600"),
    s("offsets.commit.timeout.ms", "5000"),
    s("offset.metadata.max.bytes", "4096"),
    s("group.initial.rebalance.delay.ms", "3000"),
    s("group.min.session.timeout.ms", "6000"),
    s("group.max.session.timeout.ms", "1800000"),
    s("group.max.size", "2147483647"),
    s("offsets.retention.minutes", "10080"),
    s("offsets.retention.check.interval.ms", "600000"),
];

/// The resolved settings, by Kafka name.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    values: BTreeMap<String, String>,
}

/// Where each layer comes from; `main` fills it from the command line and the environment.
#[derive(Debug, Default)]
pub struct ConfigSources {
    pub file: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub overrides: Vec<(String, String)>,
}

impl NodeConfig {
    pub fn load(sources: &ConfigSources) -> anyhow::Result<Self> {
        let mut values: BTreeMap<String, String> = SETTINGS
            .iter()
            .filter_map(|s| s.default.map(|d| (s.name.to_string(), d.to_string())))
            .collect();
        if let Some(path) = &sources.file {
            for (name, value) in read_toml_file(path)? {
                check_known(&name).with_context(|| format!("in {}", path.display()))?;
                values.insert(name, value);
            }
        }
        for (var, value) in &sources.env {
            if let Some(name) = setting_for_env_var(var) {
                values.insert(name.to_string(), value.clone());
            }
        }
        for (name, value) in &sources.overrides {
            check_known(name)?;
            values.insert(name.clone(), value.clone());
        }
        let config = Self { values };
        config.validate()?;
        Ok(config)
    }

    /// The defaults alone.
    #[cfg(test)]
    pub fn defaults() -> anyhow::Result<Self> {
        Self::load(&ConfigSources::default())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn string(&self, name: &str) -> anyhow::Result<&str> {
        self.get(name)
            .with_context(|| format!("config {name} is not set"))
    }

    pub fn i64(&self, name: &str) -> anyhow::Result<i64> {
        let raw = self.string(name)?;
        raw.trim()
            .parse::<i64>()
            .with_context(|| format!("config {name}={raw:?} is not an integer"))
    }

    pub fn i32(&self, name: &str) -> anyhow::Result<i32> {
        let value = self.i64(name)?;
        i32::try_from(value).with_context(|| format!("config {name}={value} is out of range"))
    }

    pub fn usize(&self, name: &str) -> anyhow::Result<usize> {
        let value = self.i64(name)?;
        usize::try_from(value)
            .with_context(|| format!("config {name}={value} must not be negative"))
    }

    pub fn bool(&self, name: &str) -> anyhow::Result<bool> {
        match self.string(name)?.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => bail!("config {name}={other:?} must be true or false"),
        }
    }

    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        Ok(PathBuf::from(self.string("log.dir")?))
    }

    pub fn node_id(&self) -> anyhow::Result<i32> {
        self.i32("node.id")
    }

    /// All resolved values (DescribeConfigs for the broker resource shows them).
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    pub fn is_default(&self, name: &str) -> bool {
        SETTINGS
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.default)
            .is_some_and(|d| self.get(name) == Some(d))
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.node_id()?;
        let roles = self.string("process.roles")?;
        for role in roles.split(',').map(str::trim) {
            if role != "broker" && role != "controller" {
                bail!("process.roles={roles:?}: each role must be broker or controller");
            }
        }
        for name in [
            "num.partitions",
            "default.replication.factor",
            "min.insync.replicas",
            "socket.request.max.bytes",
            "message.max.bytes",
            "fetch.max.bytes",
            "log.segment.bytes",
            "queued.max.requests.per.connection",
            "max.connections",
        ] {
            if self.i64(name)? < 1 {
                bail!("config {name} must be at least 1");
            }
        }
        for name in [
            "auto.create.topics.enable",
            "delete.topic.enable",
            "unclean.leader.election.enable",
        ] {
            self.bool(name)?;
        }
        Ok(())
    }
}

fn check_known(name: &str) -> anyhow::Result<()> {
    if SETTINGS.iter().any(|s| s.name == name) {
        Ok(())
    } else {
        bail!("unknown config {name:?}")
    }
}

/// `SHOAL_LOG_RETENTION_MS` → `log.retention.ms`. Variables that name no setting are ignored
/// (SHOAL_LOG, the log filter, is not a config), so the mapping is by lookup, not by string rules.
fn setting_for_env_var(var: &str) -> Option<&'static str> {
    let rest = var.strip_prefix("SHOAL_")?;
    SETTINGS
        .iter()
        .map(|s| s.name)
        .find(|name| name.replace('.', "_").eq_ignore_ascii_case(rest))
}

fn read_toml_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .with_context(|| format!("config file {} is not valid TOML", path.display()))?;
    let mut out = Vec::new();
    flatten("", &toml::Value::Table(table), &mut out)?;
    Ok(out)
}

fn flatten(
    prefix: &str,
    value: &toml::Value,
    out: &mut Vec<(String, String)>,
) -> anyhow::Result<()> {
    match value {
        toml::Value::Table(table) => {
            for (key, inner) in table {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&name, inner, out)?;
            }
        }
        toml::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        toml::Value::Integer(i) => out.push((prefix.to_string(), i.to_string())),
        toml::Value::Float(f) => out.push((prefix.to_string(), f.to_string())),
        toml::Value::Boolean(b) => out.push((prefix.to_string(), b.to_string())),
        toml::Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.push((prefix.to_string(), parts.join(",")));
        }
        toml::Value::Datetime(d) => bail!("config {prefix}: dates are not a config value ({d})"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_defaults_agree_with_the_broker() {
        let config = NodeConfig::defaults().unwrap();
        for (name, default) in shoal_broker::groups::config::DEFAULTS {
            assert_eq!(config.get(name), Some(*default), "{name}");
        }
    }

    #[test]
    fn defaults_give_a_single_local_node() {
        let config = NodeConfig::defaults().unwrap();
        assert_eq!(config.node_id().unwrap(), 1);
        assert_eq!(config.data_dir().unwrap(), PathBuf::from("./data"));
        assert!(
            config
                .string("listeners")
                .unwrap()
                .contains("127.0.0.1:9092")
        );
        assert!(config.is_default("num.partitions"));
    }

    #[test]
    fn layers_apply_weakest_first() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shoal.toml");
        std::fs::write(
            &file,
            "num.partitions = 3\n\"log.retention.ms\" = 1000\n[default]\nreplication.factor = 2\n",
        )
        .unwrap();
        let sources = ConfigSources {
            file: Some(file),
            env: vec![
                ("SHOAL_NUM_PARTITIONS".into(), "4".into()),
                ("SHOAL_LOG".into(), "debug".into()),
            ],
            overrides: vec![("log.retention.ms".into(), "2000".into())],
        };
        let config = NodeConfig::load(&sources).unwrap();
        assert_eq!(config.i64("num.partitions").unwrap(), 4, "env beats file");
        assert_eq!(
            config.i64("log.retention.ms").unwrap(),
            2000,
            "flag beats file"
        );
        assert_eq!(
            config.i64("default.replication.factor").unwrap(),
            2,
            "nested tables flatten"
        );
        assert!(!config.is_default("num.partitions"));
    }

    #[test]
    fn unknown_names_and_bad_values_are_rejected() {
        let unknown = ConfigSources {
            overrides: vec![("num.partitionz".into(), "3".into())],
            ..Default::default()
        };
        assert!(NodeConfig::load(&unknown).is_err());
        let bad = ConfigSources {
            overrides: vec![("num.partitions".into(), "zero".into())],
            ..Default::default()
        };
        assert!(NodeConfig::load(&bad).is_err());
        let bad_bool = ConfigSources {
            overrides: vec![("auto.create.topics.enable".into(), "yes".into())],
            ..Default::default()
        };
        assert!(NodeConfig::load(&bad_bool).is_err());
    }
}
