//! How `shoalctl` reaches brokers: Kafka client properties (`--command-config`, as Kafka's
//! `kafka-*.sh --command-config`) give the security protocol and TLS settings.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};

/// The client properties of `--command-config` (empty without one).
#[derive(Debug, Clone, Default)]
pub struct ClientProperties(BTreeMap<String, String>);

impl ClientProperties {
    /// Reads a Java properties file.
    pub fn load(path: Option<&Path>) -> anyhow::Result<ClientProperties> {
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
                _ => out.push((name.clone(), value.clone())),
            }
        }
        out
    }
}

/// The transport to the brokers.
#[derive(Clone)]
pub enum Transport {
    Plaintext,
    Tls(Arc<rustls::ClientConfig>),
}

impl Transport {
    pub fn from_properties(properties: &ClientProperties) -> anyhow::Result<Transport> {
        let protocol = properties
            .get("security.protocol")
            .unwrap_or_else(|| "PLAINTEXT".to_owned())
            .to_ascii_uppercase();
        match protocol.as_str() {
            "PLAINTEXT" => Ok(Transport::Plaintext),
            "SSL" => Ok(Transport::Tls(
                shoal_tls::client_config(|name| properties.get(name))
                    .context("--command-config")?,
            )),
            "SASL_PLAINTEXT" | "SASL_SSL" => {
                bail!("security.protocol={protocol}: shoalctl does not speak SASL yet")
            }
            other => bail!("security.protocol={other:?} is not PLAINTEXT or SSL"),
        }
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
        assert!(matches!(
            Transport::from_properties(&props(&[])).unwrap(),
            Transport::Plaintext
        ));
        assert!(matches!(
            Transport::from_properties(&props(&[("security.protocol", "plaintext")])).unwrap(),
            Transport::Plaintext
        ));
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
