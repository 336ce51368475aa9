//! Turning PEM stores into a rustls server configuration.
//!
//! Loading is all-or-nothing and side-effect free: a reload that fails leaves the listener on
//! the configuration it had, so a half-copied certificate never takes a listener down.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::TlsError;
use crate::settings::{ClientAuth, Keystore, TlsSettings, TlsVersion, Truststore};

/// PEM files are small; a larger one is not a certificate store.
pub const MAX_PEM_FILE_BYTES: u64 = 1 << 20;

/// A built server configuration and what it was built from.
pub struct Material {
    pub config: Arc<rustls::ServerConfig>,
    /// Seconds since the epoch at which the listener's own certificate expires.
    pub not_after_unix_s: i64,
    /// The leaf certificate's subject, for logs.
    pub subject: String,
}

/// The keystore's certificate chain and key, and what to call it in errors.
fn keystore(
    settings: &TlsSettings,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String), TlsError> {
    Ok(match &settings.keystore {
        Keystore::File(path) => {
            let name = format!("ssl.keystore.location {}", path.display());
            let pem = read_pem_file(path)?;
            (certificates(&pem, &name)?, private_key(&pem, &name)?, name)
        }
        Keystore::Inline { chain, key } => (
            certificates(chain.as_bytes(), "ssl.keystore.certificate.chain")?,
            private_key(key.as_bytes(), "ssl.keystore.key")?,
            "ssl.keystore.certificate.chain".to_owned(),
        ),
    })
}

fn protocol_versions(settings: &TlsSettings) -> Vec<&'static rustls::SupportedProtocolVersion> {
    settings
        .protocols
        .iter()
        .map(|v| match v {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        })
        .collect()
}

/// The client side of a node-to-node link: the node's own keystore as its client certificate,
/// the truststore as the CAs a peer's server certificate must chain to. Built from the same
/// settings as the node's listener, so one certificate serves both directions.
pub fn node_client_config(settings: &TlsSettings) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let (chain, key, keystore_name) = keystore(settings)?;
    let Some(truststore) = &settings.truststore else {
        return Err(TlsError::Setting {
            name: "ssl.truststore.location".to_owned(),
            reason: "mutual TLS between nodes needs the cluster CA as the truststore".to_owned(),
        });
    };
    let roots = root_store(truststore)?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(crypto_provider()))
        .with_protocol_versions(&protocol_versions(settings))
        .map_err(|source| TlsError::Rustls {
            what: "ssl.enabled.protocols".to_owned(),
            source,
        })?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|source| TlsError::Rustls {
            what: keystore_name,
            source,
        })?;
    Ok(Arc::new(config))
}

/// Reads the stores of `settings` and builds the server configuration.
pub fn load(settings: &TlsSettings) -> Result<Material, TlsError> {
    let (chain, key, keystore_name) = keystore(settings)?;
    let (not_after_unix_s, subject) = leaf_validity(&chain[0], &keystore_name)?;
    let provider = Arc::new(crypto_provider());
    let versions = protocol_versions(settings);
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|source| TlsError::Rustls {
            what: "ssl.enabled.protocols".to_owned(),
            source,
        })?;
    let builder = match (&settings.truststore, settings.client_auth) {
        (_, ClientAuth::None) => builder.with_no_client_auth(),
        (None, _) => {
            return Err(TlsError::Setting {
                name: "ssl.truststore.location".to_owned(),
                reason: "client authentication needs a truststore".to_owned(),
            });
        }
        (Some(truststore), auth) => {
            let roots = Arc::new(root_store(truststore)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| TlsError::Pem {
                what: "ssl.truststore".to_owned(),
                reason: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::Rustls {
            what: keystore_name,
            source,
        })?;
    Ok(Material {
        config: Arc::new(config),
        not_after_unix_s,
        subject,
    })
}

/// rustls with *ring*: no C build beyond `cc` (aws-lc needs cmake), at the price of no
/// post-quantum key exchange (docs/security.md).
#[allow(
    deprecated,
    reason = "ring's provider lacks post-quantum groups; accepted, see above"
)]
pub fn crypto_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The CAs of a truststore.
pub fn root_store(truststore: &Truststore) -> Result<RootCertStore, TlsError> {
    let (pem, name) = match truststore {
        Truststore::File(path) => (
            read_pem_file(path)?,
            format!("ssl.truststore.location {}", path.display()),
        ),
        Truststore::Inline(pem) => (
            pem.as_bytes().to_vec(),
            "ssl.truststore.certificates".to_owned(),
        ),
    };
    let mut roots = RootCertStore::empty();
    for cert in certificates(&pem, &name)? {
        roots.add(cert).map_err(|source| TlsError::Rustls {
            what: name.clone(),
            source,
        })?;
    }
    Ok(roots)
}

/// Reads a PEM file, refusing one larger than [`MAX_PEM_FILE_BYTES`] before reading it.
pub fn read_pem_file(path: &std::path::Path) -> Result<Vec<u8>, TlsError> {
    let read = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read)?.len();
    if size > MAX_PEM_FILE_BYTES {
        return Err(TlsError::Pem {
            what: path.display().to_string(),
            reason: format!(
                "{size} bytes is larger than a PEM store can be ({MAX_PEM_FILE_BYTES})"
            ),
        });
    }
    std::fs::read(path).map_err(read)
}

pub(crate) fn certificates(
    pem: &[u8],
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: what.to_owned(),
            reason: format!("not PEM certificates: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: what.to_owned(),
            reason: "holds no CERTIFICATE block".to_owned(),
        });
    }
    Ok(certs)
}

pub(crate) fn private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    if std::str::from_utf8(pem).is_ok_and(|text| text.contains("ENCRYPTED PRIVATE KEY")) {
        return Err(TlsError::Pem {
            what: what.to_owned(),
            reason: "the private key is encrypted; Shoal needs an unencrypted PEM key".to_owned(),
        });
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Pem {
        what: what.to_owned(),
        reason: format!("no usable PRIVATE KEY block: {e}"),
    })
}

/// The leaf certificate's expiry (seconds since the epoch) and subject.
fn leaf_validity(leaf: &CertificateDer<'_>, what: &str) -> Result<(i64, String), TlsError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| TlsError::Pem {
            what: what.to_owned(),
            reason: format!("the first certificate does not parse: {e}"),
        })?;
    Ok((
        cert.validity().not_after.timestamp(),
        cert.subject().to_string(),
    ))
}
