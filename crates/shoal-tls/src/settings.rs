//! A listener's TLS settings, by Kafka's names (KIP-651 PEM stores).
//!
//! Kafka users already have these in their property files: `ssl.keystore.location` (one PEM
//! file holding the private key and the certificate chain) or `ssl.keystore.certificate.chain`
//! with `ssl.keystore.key` (the same as inline PEM text), `ssl.truststore.location` or
//! `ssl.truststore.certificates` (the CAs client certificates must chain to), `ssl.client.auth`
//! and `ssl.enabled.protocols`. Only PEM stores are read: JKS and PKCS12 need Java's tooling to
//! write anyway, and PEM is what openssl, cert-manager and Vault hand out. Parsing is pure: the
//! caller passes a lookup that already resolved Kafka's `listener.name.<name>.` prefix.

use std::path::PathBuf;

use crate::error::TlsError;

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// Asked for; a client without one still connects (it is then anonymous).
    Requested,
    /// A client without a certificate that chains to the truststore is refused.
    Required,
}

/// A TLS protocol version `ssl.enabled.protocols` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// Where the listener's own certificate chain and key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keystore {
    /// `ssl.keystore.location`: one PEM file with the key and the chain.
    File(PathBuf),
    /// `ssl.keystore.certificate.chain` + `ssl.keystore.key`: PEM text.
    Inline { chain: String, key: String },
}

/// Where the CAs that client certificates must chain to come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Truststore {
    /// `ssl.truststore.location`: a PEM file of CA certificates.
    File(PathBuf),
    /// `ssl.truststore.certificates`: PEM text.
    Inline(String),
}

/// Everything needed to build the listener's TLS server configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub keystore: Keystore,
    pub truststore: Option<Truststore>,
    pub client_auth: ClientAuth,
    /// Ascending, not empty.
    pub protocols: Vec<TlsVersion>,
    /// `ssl.principal.mapping.rules`: how a client certificate's subject becomes a principal.
    pub principal_mapper: crate::principal::PrincipalMapper,
}

impl PartialEq for crate::principal::PrincipalMapper {
    fn eq(&self, other: &Self) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

impl Eq for crate::principal::PrincipalMapper {}

impl TlsSettings {
    /// Reads the settings through `lookup` (a setting's value, or `None` when unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, TlsError> {
        let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        for (name, default) in [("ssl.keystore.type", "PEM"), ("ssl.truststore.type", "PEM")] {
            let kind = set(name).unwrap_or_else(|| default.to_owned());
            if !kind.trim().eq_ignore_ascii_case("PEM") {
                return Err(TlsError::Setting {
                    name: name.to_owned(),
                    reason: format!(
                        "{kind:?} is not supported: Shoal reads PEM stores only (KIP-651); \
                         convert with `openssl pkcs12 -in store.p12 -nodes`"
                    ),
                });
            }
        }
        if set("ssl.key.password").is_some() {
            return Err(TlsError::Setting {
                name: "ssl.key.password".to_owned(),
                reason: "encrypted private keys are not supported; give an unencrypted PEM key \
                         readable only by the node's user"
                    .to_owned(),
            });
        }
        let keystore = match (
            set("ssl.keystore.location"),
            set("ssl.keystore.certificate.chain"),
            set("ssl.keystore.key"),
        ) {
            (Some(location), None, None) => Keystore::File(PathBuf::from(location.trim())),
            (None, Some(chain), Some(key)) => Keystore::Inline { chain, key },
            (None, None, None) => {
                return Err(TlsError::Setting {
                    name: "ssl.keystore.location".to_owned(),
                    reason: "a TLS listener needs its certificate and key: set \
                             ssl.keystore.location (or ssl.keystore.certificate.chain and \
                             ssl.keystore.key)"
                        .to_owned(),
                });
            }
            _ => {
                return Err(TlsError::Setting {
                    name: "ssl.keystore.location".to_owned(),
                    reason: "give either ssl.keystore.location, or both \
                             ssl.keystore.certificate.chain and ssl.keystore.key"
                        .to_owned(),
                });
            }
        };
        let truststore = match (
            set("ssl.truststore.location"),
            set("ssl.truststore.certificates"),
        ) {
            (Some(location), None) => Some(Truststore::File(PathBuf::from(location.trim()))),
            (None, Some(pem)) => Some(Truststore::Inline(pem)),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(TlsError::Setting {
                    name: "ssl.truststore.location".to_owned(),
                    reason: "give ssl.truststore.location or ssl.truststore.certificates, not both"
                        .to_owned(),
                });
            }
        };
        let client_auth = match set("ssl.client.auth")
            .unwrap_or_else(|| "none".to_owned())
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "none" => ClientAuth::None,
            "requested" => ClientAuth::Requested,
            "required" => ClientAuth::Required,
            other => {
                return Err(TlsError::Setting {
                    name: "ssl.client.auth".to_owned(),
                    reason: format!("{other:?} is not one of none, requested, required"),
                });
            }
        };
        if client_auth != ClientAuth::None && truststore.is_none() {
            return Err(TlsError::Setting {
                name: "ssl.truststore.location".to_owned(),
                reason: format!(
                    "ssl.client.auth={} needs the CAs client certificates chain to",
                    if client_auth == ClientAuth::Required {
                        "required"
                    } else {
                        "requested"
                    }
                ),
            });
        }
        let protocols = parse_protocols(
            &set("ssl.enabled.protocols").unwrap_or_else(|| "TLSv1.2,TLSv1.3".to_owned()),
        )?;
        let principal_mapper = crate::principal::PrincipalMapper::parse(
            &set("ssl.principal.mapping.rules").unwrap_or_else(|| "DEFAULT".to_owned()),
        )?;
        Ok(TlsSettings {
            keystore,
            truststore,
            client_auth,
            protocols,
            principal_mapper,
        })
    }

    /// The files the settings read (watched for reload).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if let Keystore::File(path) = &self.keystore {
            files.push(path.clone());
        }
        if let Some(Truststore::File(path)) = &self.truststore {
            files.push(path.clone());
        }
        files
    }
}

/// `ssl.enabled.protocols`: TLSv1.2 and TLSv1.3 only (older ones are broken).
fn parse_protocols(list: &str) -> Result<Vec<TlsVersion>, TlsError> {
    let mut versions = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let version = match name {
            "TLSv1.2" => TlsVersion::Tls12,
            "TLSv1.3" => TlsVersion::Tls13,
            other => {
                return Err(TlsError::Setting {
                    name: "ssl.enabled.protocols".to_owned(),
                    reason: format!("{other:?} is not supported; use TLSv1.2 and/or TLSv1.3"),
                });
            }
        };
        if !versions.contains(&version) {
            versions.push(version);
        }
    }
    if versions.is_empty() {
        return Err(TlsError::Setting {
            name: "ssl.enabled.protocols".to_owned(),
            reason: "names no protocol".to_owned(),
        });
    }
    versions.sort();
    Ok(versions)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<TlsSettings, TlsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TlsSettings::from_lookup(|name| map.get(name).cloned())
    }

    fn refused_setting(pairs: &[(&str, &str)]) -> String {
        match parse(pairs) {
            Err(TlsError::Setting { name, .. }) => name,
            other => panic!("{pairs:?} gave {other:?}"),
        }
    }

    #[test]
    fn a_keystore_file_with_defaults() {
        let s = parse(&[("ssl.keystore.location", "/etc/shoal/node.pem")]).unwrap();
        assert_eq!(s.keystore, Keystore::File("/etc/shoal/node.pem".into()));
        assert_eq!(s.truststore, None);
        assert_eq!(s.client_auth, ClientAuth::None);
        assert_eq!(s.protocols, vec![TlsVersion::Tls12, TlsVersion::Tls13]);
        assert_eq!(s.files(), vec![PathBuf::from("/etc/shoal/node.pem")]);
    }

    #[test]
    fn inline_pem_and_client_auth() {
        let s = parse(&[
            ("ssl.keystore.certificate.chain", "CHAIN"),
            ("ssl.keystore.key", "KEY"),
            ("ssl.truststore.certificates", "CA"),
            ("ssl.client.auth", "required"),
            ("ssl.enabled.protocols", "TLSv1.3"),
        ])
        .unwrap();
        assert_eq!(
            s.keystore,
            Keystore::Inline {
                chain: "CHAIN".into(),
                key: "KEY".into()
            }
        );
        assert_eq!(s.truststore, Some(Truststore::Inline("CA".into())));
        assert_eq!(s.client_auth, ClientAuth::Required);
        assert_eq!(s.protocols, vec![TlsVersion::Tls13]);
        assert!(s.files().is_empty());
    }

    #[test]
    fn refusals_name_the_setting() {
        let k = ("ssl.keystore.location", "/k.pem");
        for (pairs, name) in [
            (vec![], "ssl.keystore.location"),
            (
                vec![k, ("ssl.keystore.key", "KEY")],
                "ssl.keystore.location",
            ),
            (vec![k, ("ssl.keystore.type", "JKS")], "ssl.keystore.type"),
            (
                vec![k, ("ssl.truststore.type", "PKCS12")],
                "ssl.truststore.type",
            ),
            (vec![k, ("ssl.key.password", "x")], "ssl.key.password"),
            (vec![k, ("ssl.client.auth", "maybe")], "ssl.client.auth"),
            (
                vec![k, ("ssl.client.auth", "required")],
                "ssl.truststore.location",
            ),
            (
                vec![k, ("ssl.enabled.protocols", "TLSv1.1")],
                "ssl.enabled.protocols",
            ),
            (
                vec![k, ("ssl.principal.mapping.rules", "RULE:^CN=(.*)$")],
                "ssl.principal.mapping.rules",
            ),
            (
                vec![k, ("ssl.enabled.protocols", " ")],
                "ssl.keystore.location",
            ),
            (
                vec![
                    k,
                    ("ssl.truststore.location", "/ca.pem"),
                    ("ssl.truststore.certificates", "CA"),
                ],
                "ssl.truststore.location",
            ),
        ] {
            if name == "ssl.keystore.location" && pairs.len() == 2 && pairs[1].1 == " " {
                // A blank list is unset: the default protocols apply.
                assert!(parse(&pairs).is_ok());
                continue;
            }
            assert_eq!(refused_setting(&pairs), name, "{pairs:?}");
        }
    }
}
