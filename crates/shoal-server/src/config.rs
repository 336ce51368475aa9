//! The node's configuration: Kafka's broker setting names, from four layers, checked against the
//! one schema in `shoal-config`.
//!
//! Users bring Kafka knowledge (and Kafka property files), so every setting keeps its Kafka name
//! (`num.partitions`, `log.retention.hours`, …). Layers, weakest first: built-in defaults, a file
//! (`--config`: Kafka's `.properties` format, or TOML), `SHOAL_*` environment variables,
//! `--override key=value` flags. Only what the layers set is kept ([`NodeConfig::explicit`]);
//! everything else is the schema's default when asked for, so "was it set?" stays answerable and
//! a synonym (`log.retention.hours`) is not shadowed by its canonical setting's default.
//! Unknown names and invalid values are errors at start-up that name the setting (and the
//! closest known name, or the allowed range), never a silent fallback.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use shoal_config::def::normalize;
use shoal_config::suggest::closest_setting;
use shoal_config::{BROKER_CONFIGS, Support, broker_config_def, effective};

/// The resolved settings, by Kafka name.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Settings given by a layer, normalized, under the name they were given (synonyms too).
    explicit: BTreeMap<String, String>,
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
        let mut explicit = BTreeMap::new();
        if let Some(path) = &sources.file {
            for (name, value) in read_config_file(path)? {
                let value =
                    checked(&name, &value).with_context(|| format!("in {}", path.display()))?;
                explicit.insert(name, value);
            }
        }
        for (var, value) in &sources.env {
            if let Some(name) = setting_for_env_var(var) {
                let value = checked(name, value).with_context(|| format!("in ${var}"))?;
                explicit.insert(name.to_string(), value);
            }
        }
        for (name, value) in &sources.overrides {
            let value = checked(name, value).context("in --override")?;
            explicit.insert(name.clone(), value);
        }
        let config = Self { explicit };
        config.validate()?;
        Ok(config)
    }

    /// The defaults alone.
    #[cfg(test)]
    pub fn defaults() -> anyhow::Result<Self> {
        Self::load(&ConfigSources::default())
    }

    /// The effective value: set explicitly (under its name or a synonym), else the default.
    pub fn get(&self, name: &str) -> Option<String> {
        effective(&self.explicit, name)
    }

    /// A setting as one listener sees it: Kafka's `listener.name.<listener>.<name>` (listener
    /// name lower-cased) if given, else the node-wide value.
    pub fn listener_get(&self, listener: &str, name: &str) -> Option<String> {
        let scoped = format!("{LISTENER_PREFIX}{}.{name}", listener.to_ascii_lowercase());
        self.explicit
            .get(&scoped)
            .cloned()
            .or_else(|| self.get(name))
    }

    /// A TLS setting of a Kafka listener: [`Self::listener_get`], except that a SASL_SSL
    /// listener takes `ssl.client.auth` only from its own `listener.name.<name>.` setting
    /// (KIP-684, as Kafka: SASL authenticates its clients, so a node-wide `required` meant for
    /// SSL listeners does not demand certificates there).
    pub fn listener_tls_get(&self, listener: &str, sasl: bool, name: &str) -> Option<String> {
        if sasl && name == "ssl.client.auth" {
            let scoped = format!("{LISTENER_PREFIX}{}.{name}", listener.to_ascii_lowercase());
            return self.explicit.get(&scoped).cloned();
        }
        self.listener_get(listener, name)
    }

    pub fn string(&self, name: &str) -> anyhow::Result<String> {
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

    /// The data directory: the first `log.dirs` entry (or its synonym `log.dir`). It holds the
    /// metadata (`meta/`) and partition logs.
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        let dirs = self.log_dirs()?;
        dirs.into_iter()
            .next()
            .context("log.dirs names no directory")
    }

    /// Every `log.dirs` entry (Kafka's JBOD): distinct, none inside another, at most
    /// `shoal_broker::log_dir_set::MAX_LOG_DIRS`.
    pub fn log_dirs(&self) -> anyhow::Result<Vec<PathBuf>> {
        let dirs: Vec<PathBuf> = shoal_config::list_elements(&self.string("log.dirs")?)
            .into_iter()
            .map(PathBuf::from)
            .collect();
        check_log_dirs(&dirs)?;
        Ok(dirs)
    }

    pub fn node_id(&self) -> anyhow::Result<i32> {
        self.i32("node.id")
    }

    /// What the layers set, by the name they used, without the per-listener (`listener.name.*`)
    /// settings: the broker and controller resolve topic defaults from it, and DescribeConfigs
    /// tells set from defaulted (listener TLS is this node's business only).
    pub fn explicit_shared(&self) -> BTreeMap<String, String> {
        self.explicit
            .iter()
            .filter(|(name, _)| !name.starts_with(LISTENER_PREFIX))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }

    /// Settings given that Shoal deliberately ignores, with the reason (warned at start-up).
    pub fn ignored_settings(&self) -> Vec<(&'static str, &'static str)> {
        BROKER_CONFIGS
            .iter()
            .filter(|def| self.explicit.contains_key(def.name))
            .filter_map(|def| match def.support {
                Support::Ignored(reason) => Some((def.name, reason)),
                Support::Applied => None,
            })
            .collect()
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.log_dirs()?;
        self.node_id()?;
        self.data_dir()?;
        if !shoal_config::list_elements(&self.string("cordoned.log.dirs")?).is_empty() {
            bail!(
                "cordoned.log.dirs is set on a running cluster, per broker, with \
                 IncrementalAlterConfigs (kafka-configs --entity-type brokers --entity-name N \
                 --alter --add-config cordoned.log.dirs=*, or shoalctl broker decommission N): \
                 the controller that places replicas reads it from the cluster metadata, never \
                 from a properties file"
            );
        }
        let min = self.i64("group.min.session.timeout.ms")?;
        let max = self.i64("group.max.session.timeout.ms")?;
        if max < min {
            bail!(
                "group.max.session.timeout.ms={max} must be at least \
                 group.min.session.timeout.ms={min}"
            );
        }
        Ok(())
    }
}

/// Kafka's per-listener prefix: `listener.name.<listener>.<setting>`.
pub const LISTENER_PREFIX: &str = "listener.name.";

/// Settings that may be given per listener (Kafka's listener-prefixed configs: TLS, SASL and
/// the SASL session settings).
fn is_listener_scoped(setting: &str) -> bool {
    setting.starts_with("ssl.")
        || setting.starts_with("sasl.")
        || matches!(
            setting,
            "connections.max.reauth.ms" | "connection.failed.authentication.delay.ms"
        )
}

/// A value given under `name`, checked against the schema and normalized.
fn checked(name: &str, value: &str) -> anyhow::Result<String> {
    if let Some(rest) = name.strip_prefix(LISTENER_PREFIX) {
        let (listener, setting) = rest
            .split_once('.')
            .with_context(|| format!("{name:?}: expected {LISTENER_PREFIX}<listener>.<setting>"))?;
        if listener.is_empty() || listener != listener.to_ascii_lowercase() {
            bail!(
                "{name:?}: the listener name in {LISTENER_PREFIX}<listener>. is lower-case, as in Kafka"
            );
        }
        if !is_listener_scoped(setting) || broker_config_def(setting).is_none() {
            bail!(
                "{name:?}: {setting:?} cannot be set per listener (ssl.* and sasl.* settings can)"
            );
        }
        return checked(setting, value).with_context(|| format!("in {name}"));
    }
    let Some(def) = broker_config_def(name) else {
        match closest_setting(name) {
            Some(close) => bail!("unknown config {name:?} (did you mean {close:?}?)"),
            None => bail!("unknown config {name:?}"),
        }
    };
    normalize(def, value).map_err(|e| {
        // Name the valid range unless the reason already lists it.
        let range = def
            .validator
            .describe()
            .filter(|r| !e.message.contains(r.as_str()))
            .map(|r| format!("; valid values: {r}"))
            .unwrap_or_default();
        anyhow::anyhow!("{e}{range}")
    })
}

/// `SHOAL_LOG_RETENTION_MS` → `log.retention.ms`. Variables that name no setting are ignored
/// (SHOAL_LOG, the log filter, is not a config), so the mapping is by lookup, not by string rules.
fn setting_for_env_var(var: &str) -> Option<&'static str> {
    let rest = var.strip_prefix("SHOAL_")?;
    BROKER_CONFIGS
        .iter()
        .map(|s| s.name)
        .find(|name| name.replace('.', "_").eq_ignore_ascii_case(rest))
}

/// Name → value pairs of a config file: Kafka's properties format for `*.properties`, else TOML.
fn read_config_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let is_properties = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("properties"));
    if is_properties {
        read_properties_file(path)
    } else {
        read_toml_file(path)
    }
}

fn read_properties_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let map = java_properties::read(std::io::BufReader::new(file)).with_context(|| {
        format!(
            "config file {} is not a valid properties file",
            path.display()
        )
    })?;
    Ok(map.into_iter().collect())
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

/// `log.dirs` must name 1 to `MAX_LOG_DIRS` directories, none twice and none inside another
/// (a partition would be found twice, or the metadata directory taken for a partition).
fn check_log_dirs(dirs: &[PathBuf]) -> anyhow::Result<()> {
    let max = shoal_broker::log_dir_set::MAX_LOG_DIRS;
    if dirs.is_empty() || dirs.len() > max {
        bail!(
            "log.dirs must name 1 to {max} directories, not {}",
            dirs.len()
        );
    }
    let absolute: Vec<PathBuf> = dirs
        .iter()
        .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()))
        .collect();
    for (i, a) in absolute.iter().enumerate() {
        for b in &absolute[i + 1..] {
            if a.starts_with(b) || b.starts_with(a) {
                bail!(
                    "log.dirs names {} and {}: one is the other or inside it; give each log \
                     directory its own path",
                    a.display(),
                    b.display()
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_overrides(pairs: &[(&str, &str)]) -> anyhow::Result<NodeConfig> {
        NodeConfig::load(&ConfigSources {
            overrides: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        })
    }

    #[test]
    fn group_defaults_are_the_schemas() {
        let config = NodeConfig::defaults().unwrap();
        let groups =
            shoal_broker::groups::GroupsConfig::from_settings(&config.explicit_shared()).unwrap();
        assert_eq!(
            i64::from(groups.offsets_topic.num_partitions),
            config.i64("offsets.topic.num.partitions").unwrap()
        );
        assert_eq!(
            groups.coordinator.commit_timeout_ms,
            config.i64("offsets.commit.timeout.ms").unwrap() as u64
        );
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
        assert!(config.explicit_shared().is_empty());
        assert!(config.ignored_settings().is_empty());
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
    }

    #[test]
    fn properties_files_and_synonyms() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.properties");
        std::fs::write(
            &file,
            "# Kafka's format\nlog.retention.hours=24\nlog.dir=/tmp/x\nnum.io.threads=8\n\
             broker.id=3\n",
        )
        .unwrap();
        let config = NodeConfig::load(&ConfigSources {
            file: Some(file),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(config.i64("log.retention.ms").unwrap(), 86_400_000);
        assert_eq!(config.data_dir().unwrap(), PathBuf::from("/tmp/x"));
        assert_eq!(config.node_id().unwrap(), 3);
        assert_eq!(
            config
                .ignored_settings()
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>(),
            vec!["num.io.threads"]
        );
    }

    #[test]
    fn a_sasl_ssl_listener_asks_for_certificates_only_when_told_to_itself() {
        let config = with_overrides(&[
            ("ssl.client.auth", "required"),
            ("listener.name.sasl_mtls.ssl.client.auth", "requested"),
        ])
        .unwrap();
        let auth =
            |listener: &str, sasl: bool| config.listener_tls_get(listener, sasl, "ssl.client.auth");
        assert_eq!(auth("SSL", false).as_deref(), Some("required"));
        assert_eq!(
            auth("SASL_SSL", true),
            None,
            "the node-wide value is the SSL listeners'"
        );
        assert_eq!(auth("SASL_MTLS", true).as_deref(), Some("requested"));
    }

    #[test]
    fn ssl_settings_may_be_given_per_listener() {
        let config = with_overrides(&[
            ("ssl.client.auth", "requested"),
            ("listener.name.secure.ssl.client.auth", "required"),
            ("listener.name.secure.ssl.keystore.location", "/k.pem"),
        ])
        .unwrap();
        assert_eq!(
            config.listener_get("SECURE", "ssl.client.auth").as_deref(),
            Some("required")
        );
        assert_eq!(
            config.listener_get("OTHER", "ssl.client.auth").as_deref(),
            Some("requested")
        );
        assert_eq!(
            config
                .listener_get("SECURE", "ssl.keystore.location")
                .as_deref(),
            Some("/k.pem")
        );
        assert_eq!(config.listener_get("OTHER", "ssl.keystore.location"), None);
        assert_eq!(
            config
                .listener_get("OTHER", "ssl.enabled.protocols")
                .as_deref(),
            Some("TLSv1.2,TLSv1.3")
        );
        for (name, value, fragment) in [
            (
                "listener.name.secure.ssl.client.auth",
                "maybe",
                "none, requested, required",
            ),
            (
                "listener.name.secure.num.partitions",
                "3",
                "cannot be set per listener",
            ),
            ("listener.name.SECURE.ssl.client.auth", "none", "lower-case"),
            ("listener.name.secure", "x", "expected"),
            (
                "listener.name.secure.ssl.nonsense",
                "x",
                "cannot be set per listener",
            ),
        ] {
            let e = with_overrides(&[(name, value)]).unwrap_err();
            let text = format!("{e:#}");
            assert!(text.contains(fragment), "{name}: {text}");
        }
    }

    #[test]
    fn unknown_names_and_bad_values_are_rejected_by_name() {
        let e = with_overrides(&[("num.partitionz", "3")]).unwrap_err();
        assert!(
            format!("{e:#}").contains("did you mean \"num.partitions\""),
            "{e:#}"
        );
        for (name, value, range) in [
            ("num.partitions", "zero", "[1,...]"),
            ("num.partitions", "0", "[1,...]"),
            ("auto.create.topics.enable", "yes", "true or false"),
            ("log.retention.ms", "-2", "[-1,...]"),
            (
                "leader.imbalance.per.broker.percentage",
                "101",
                "[0,...,100]",
            ),
            ("log.cleanup.policy", "shred", "compact, delete"),
        ] {
            let e = with_overrides(&[(name, value)]).unwrap_err();
            let text = format!("{e:#}");
            assert!(text.contains(name) && text.contains(range), "{text}");
        }
        // Several log directories are fine (JBOD); one inside another, or one twice, is not.
        let two = with_overrides(&[("log.dirs", "/a,/b")]).unwrap();
        assert_eq!(
            two.log_dirs().unwrap(),
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(two.data_dir().unwrap(), PathBuf::from("/a"));
        for dirs in ["/a,/a/b", "/a,/a", "/a/b,/a"] {
            let e = with_overrides(&[("log.dirs", dirs)]).unwrap_err();
            assert!(format!("{e:#}").contains("inside it"), "{dirs}: {e:#}");
        }
        let many: Vec<String> = (0..33).map(|i| format!("/d{i}")).collect();
        let e = with_overrides(&[("log.dirs", &many.join(","))]).unwrap_err();
        assert!(format!("{e:#}").contains("1 to 32"), "{e:#}");
        let e = with_overrides(&[("cordoned.log.dirs", "*")]).unwrap_err();
        assert!(format!("{e:#}").contains("per broker"), "{e:#}");
        let e = with_overrides(&[
            ("group.min.session.timeout.ms", "10000"),
            ("group.max.session.timeout.ms", "5000"),
        ])
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("group.max.session.timeout.ms"),
            "{e:#}"
        );
    }
}
