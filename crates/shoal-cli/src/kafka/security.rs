//! How `shoalctl` reaches brokers: Kafka client properties (`--command-config`, as Kafka's
//! `kafka-*.sh --command-config`) give the security protocol, TLS settings and the SASL login
//! (librdkafka's `sasl.username` / `sasl.password`, or the Java client's `sasl.jaas.config`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};

/// The client properties of `--command-config` (empty without one).
#[derive(Debug, Clone, Default)]
pub struct ClientProperties(BTreeMap<String, String>);

impl ClientProperties {
    /// Reads a Java properties file.
    /// The properties of `path` (if given) with `overrides` (`--command-property`) on top.
    pub fn load(
        path: Option<&Path>,
        overrides: &[(String, String)],
    ) -> anyhow::Result<ClientProperties> {
        let mut properties = Self::load_file(path)?;
        for (name, value) in overrides {
            properties.0.insert(name.clone(), value.clone());
        }
        Ok(properties)
    }

    fn load_file(path: Option<&Path>) -> anyhow::Result<ClientProperties> {
        let Some(path) = path else {
            return Ok(ClientProperties::default());
        };
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot read --command-config {}", path.display()))?;
        let map = java_properties::read(std::io::BufReader::new(file)).with_context(|| {
            format!(
                "--command-config {} is not a properties file",
                path.display()
            )
        })?;
        Ok(ClientProperties(
            map.into_iter()
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect(),
        ))
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    /// The properties as librdkafka settings: the Java client's PEM names become librdkafka's
    /// (a keystore file holds the key and the chain, so it serves as both).
    pub fn librdkafka(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, value) in &self.0 {
            match name.as_str() {
                "ssl.truststore.location" => out.push(("ssl.ca.location".into(), value.clone())),
                "ssl.keystore.location" => {
                    out.push(("ssl.certificate.location".into(), value.clone()));
                    out.push(("ssl.key.location".into(), value.clone()));
                }
                "ssl.truststore.type" | "ssl.keystore.type" => {}
                // librdkafka has no JAAS: the login becomes its username and password.
                "sasl.jaas.config" => {
                    if let Some((username, password)) = jaas_login(value)
                        && self.get("sasl.username").is_none()
                    {
                        out.push(("sasl.username".into(), username));
                        out.push(("sasl.password".into(), password));
                    }
                }
                _ => out.push((name.clone(), value.clone())),
            }
        }
        out
    }
}

/// `username="…"` and `password="…"` of a Java `sasl.jaas.config` (PlainLoginModule or
/// ScramLoginModule).
fn jaas_login(jaas: &str) -> Option<(String, String)> {
    let value = |key: &str| {
        let start = jaas.find(&format!("{key}=\""))? + key.len() + 2;
        let end = jaas[start..].find('"')? + start;
        Some(jaas[start..end].to_owned())
    };
    Some((value("username")?, value("password")?))
}

/// A SASL login: the mechanism and the user's password.
#[derive(Clone)]
pub struct SaslLogin {
    pub mechanism: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslLogin")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The transport to the brokers: TLS or not, SASL or not.
#[derive(Clone, Default)]
pub struct Transport {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<SaslLogin>,
}

impl Transport {
    pub fn from_properties(properties: &ClientProperties) -> anyhow::Result<Transport> {
        let protocol = properties
            .get("security.protocol")
            .unwrap_or_else(|| "PLAINTEXT".to_owned())
            .to_ascii_uppercase();
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => bail!(
                "security.protocol={other:?} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
            ),
        };
        let tls = if tls {
            Some(
                shoal_tls::client_config(|name| properties.get(name))
                    .context("--command-config")?,
            )
        } else {
            None
        };
        let sasl = if sasl {
            let mechanism = properties
                .get("sasl.mechanism")
                .map(|m| m.to_ascii_uppercase())
                .context("security.protocol uses SASL: set sasl.mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")?;
            if !matches!(
                mechanism.as_str(),
                "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"
            ) {
                bail!(
                    "sasl.mechanism={mechanism}: shoalctl speaks PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512"
                );
            }
            let (username, password) = match (properties.get("sasl.username"), properties.get("sasl.password")) {
                (Some(u), Some(p)) => (u, p),
                _ => properties
                    .get("sasl.jaas.config")
                    .as_deref()
                    .and_then(jaas_login)
                    .context("SASL needs sasl.username and sasl.password (or sasl.jaas.config with username=\"…\" password=\"…\")")?,
            };
            Some(SaslLogin {
                mechanism,
                username,
                password,
            })
        } else {
            None
        };
        Ok(Transport { tls, sasl })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn props(pairs: &[(&str, &str)]) -> ClientProperties {
        ClientProperties(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn command_properties_win_over_the_file() {
        let path = std::env::temp_dir().join(format!("shoalctl-props-{}", std::process::id()));
        std::fs::write(&path, "security.protocol=SSL\nsasl.mechanism = PLAIN\n").unwrap();
        let overrides = [("security.protocol".to_owned(), "SASL_SSL".to_owned())];
        let merged = ClientProperties::load(Some(&path), &overrides).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(merged.get("security.protocol").as_deref(), Some("SASL_SSL"));
        assert_eq!(merged.get("sasl.mechanism").as_deref(), Some("PLAIN"));
        let flags_only = ClientProperties::load(None, &overrides).unwrap();
        assert_eq!(
            flags_only.get("security.protocol").as_deref(),
            Some("SASL_SSL")
        );
    }

    #[test]
    fn sasl_logins_from_librdkafka_or_java_properties() {
        let t = Transport::from_properties(&props(&[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"s3 cret\";",
            ),
            ("ssl.ca.location", "/nonexistent/ca.pem"),
        ]));
        // The CA file does not exist: the TLS part fails, naming the setting.
        assert!(t.is_err());
        let t = Transport::from_properties(&props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "plain"),
            ("sasl.username", "bob"),
            ("sasl.password", "pw"),
        ]))
        .unwrap();
        let login = t.sasl.unwrap();
        assert_eq!(
            (
                login.mechanism.as_str(),
                login.username.as_str(),
                login.password.as_str()
            ),
            ("PLAIN", "bob", "pw")
        );
        assert!(!format!("{login:?}").contains("pw"), "never the password");
        assert!(t.tls.is_none());
        let p = props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            (
                "sasl.jaas.config",
                "x required username=\"alice\" password=\"s3cret\";",
            ),
        ]);
        let login = Transport::from_properties(&p).unwrap().sasl.unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("alice", "s3cret")
        );
        let mut rdkafka = p.librdkafka();
        rdkafka.sort();
        assert!(rdkafka.contains(&("sasl.username".into(), "alice".into())));
        assert!(!rdkafka.iter().any(|(k, _)| k == "sasl.jaas.config"));
        for bad in [
            vec![("security.protocol", "SASL_PLAINTEXT")],
            vec![
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "GSSAPI"),
                ("sasl.username", "a"),
                ("sasl.password", "b"),
            ],
            vec![
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "PLAIN"),
            ],
        ] {
            assert!(Transport::from_properties(&props(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn java_pem_names_become_librdkafkas() {
        let p = props(&[
            ("security.protocol", "SSL"),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", "/ca.pem"),
            ("ssl.keystore.location", "/me.pem"),
        ]);
        let mut got = p.librdkafka();
        got.sort();
        let want: Vec<(String, String)> = [
            ("security.protocol", "SSL"),
            ("ssl.ca.location", "/ca.pem"),
            ("ssl.certificate.location", "/me.pem"),
            ("ssl.key.location", "/me.pem"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn protocols() {
        for plain in [props(&[]), props(&[("security.protocol", "plaintext")])] {
            let t = Transport::from_properties(&plain).unwrap();
            assert!(t.tls.is_none() && t.sasl.is_none());
        }
        // SASL without a mechanism and login, and an unknown protocol.
        for bad in ["SASL_SSL", "SASL_PLAINTEXT", "TLS"] {
            assert!(
                Transport::from_properties(&props(&[("security.protocol", bad)])).is_err(),
                "{bad}"
            );
        }
        let missing = Transport::from_properties(&props(&[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", "/nonexistent/ca.pem"),
        ]));
        assert!(format!("{:#}", missing.err().unwrap()).contains("/nonexistent/ca.pem"));
    }
}
