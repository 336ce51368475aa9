//! Why a listener's TLS could not be set up. Each names the setting or file to fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A setting with a value Shoal cannot use.
    #[error("{name}: {reason}")]
    Setting { name: String, reason: String },
    /// A PEM file that cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// PEM text that does not hold what it must (named by `what`, e.g. `ssl.keystore.location
    /// /etc/shoal/node.pem`).
    #[error("{what}: {reason}")]
    Pem { what: String, reason: String },
    /// rustls refused the material (a key that does not match the certificate, …).
    #[error("{what}: {source}")]
    Rustls {
        what: String,
        #[source]
        source: rustls::Error,
    },
}
