//! TLS for Shoal's own clients (`shoalctl`), from Kafka client properties.
//!
//! Both spellings Kafka users have in their client files are read: librdkafka's
//! (`ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location`) and the Java client's PEM
//! ones (`ssl.truststore.location`, `ssl.keystore.location` holding key and chain). Without a CA
//! setting the system's CA bundle is used, as librdkafka does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;

use crate::error::TlsError;
use crate::material::{certificates, crypto_provider, private_key, read_pem_file};

/// Where Linux distributions keep the system CA bundle (librdkafka probes the same files).
const SYSTEM_CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// A rustls client configuration from Kafka client properties (a lookup by name).
pub fn client_config(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    if let Some(algorithm) = lookup("ssl.endpoint.identification.algorithm")
        && !algorithm.trim().eq_ignore_ascii_case("https")
    {
        return Err(TlsError::Setting {
            name: "ssl.endpoint.identification.algorithm".to_owned(),
            reason: "only https (check the broker's name against its certificate) is supported"
                .to_owned(),
        });
    }
    let ca = set("ssl.ca.location").or_else(|| set("ssl.truststore.location"));
    let roots = match ca {
        Some(path) => roots_from(Path::new(path.trim()))?,
        None => system_roots()?,
    };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(crypto_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls {
            what: "TLS versions".to_owned(),
            source,
        })?
        .with_root_certificates(roots);
    let identity = match (
        set("ssl.certificate.location"),
        set("ssl.key.location"),
        set("ssl.keystore.location"),
    ) {
        (Some(cert), Some(key), None) => Some((PathBuf::from(cert), PathBuf::from(key))),
        (None, None, Some(both)) => Some((PathBuf::from(&both), PathBuf::from(both))),
        (None, None, None) => None,
        _ => {
            return Err(TlsError::Setting {
                name: "ssl.certificate.location".to_owned(),
                reason: "give ssl.certificate.location with ssl.key.location, or \
                         ssl.keystore.location (a PEM file with both)"
                    .to_owned(),
            });
        }
    };
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert_path, key_path)) => {
            let cert_name = format!("ssl.certificate.location {}", cert_path.display());
            let key_name = format!("ssl.key.location {}", key_path.display());
            let chain = certificates(&read_pem_file(&cert_path)?, &cert_name)?;
            let key = private_key(&read_pem_file(&key_path)?, &key_name)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|source| TlsError::Rustls {
                    what: cert_name,
                    source,
                })?
        }
    };
    Ok(Arc::new(config))
}

fn roots_from(path: &Path) -> Result<RootCertStore, TlsError> {
    let what = format!("ssl.ca.location {}", path.display());
    let mut roots = RootCertStore::empty();
    for cert in certificates(&read_pem_file(path)?, &what)? {
        roots.add(cert).map_err(|source| TlsError::Rustls {
            what: what.clone(),
            source,
        })?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let Some(bundle) = SYSTEM_CA_BUNDLES
        .iter()
        .map(Path::new)
        .find(|path| path.is_file())
    else {
        return Err(TlsError::Setting {
            name: "ssl.ca.location".to_owned(),
            reason: "no system CA bundle found; give the CA that signed the brokers' certificates"
                .to_owned(),
        });
    };
    // A system bundle may hold certificates rustls cannot use; skip those, as librdkafka does.
    let mut roots = RootCertStore::empty();
    let what = format!("system CA bundle {}", bundle.display());
    let pem = read_pem_file_large(bundle)?;
    let (added, _ignored) = roots.add_parsable_certificates(certificates(&pem, &what)?);
    if added == 0 {
        return Err(TlsError::Pem {
            what,
            reason: "no usable CA certificate".to_owned(),
        });
    }
    Ok(roots)
}

/// System bundles can be larger than a node's PEM store; still bounded.
fn read_pem_file_large(path: &Path) -> Result<Vec<u8>, TlsError> {
    const MAX_BUNDLE_BYTES: u64 = 16 << 20;
    let read = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    if std::fs::metadata(path).map_err(read)?.len() > MAX_BUNDLE_BYTES {
        return Err(TlsError::Pem {
            what: path.display().to_string(),
            reason: format!("larger than {MAX_BUNDLE_BYTES} bytes"),
        });
    }
    std::fs::read(path).map_err(read)
}
