//! One listener's TLS: the current server configuration, swapped when its files change.
//!
//! Certificates are short-lived in most deployments (cert-manager, Vault), so a node must pick
//! up renewed files without a restart. A watcher checks the files' modification times and sizes
//! every `interval`; when they change, the stores are loaded again and, only if that succeeds,
//! new connections use them (connections already open keep the session they negotiated). A
//! failed reload is logged and counted and the previous configuration stays.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio_rustls::TlsAcceptor;

use crate::error::TlsError;
use crate::material::{self, Material};
use crate::settings::TlsSettings;

/// What identifies a file's version without reading it.
type Stamp = Option<(SystemTime, u64)>;

pub struct TlsListener {
    listener: String,
    settings: TlsSettings,
    current: RwLock<Arc<rustls::ServerConfig>>,
    stamps: RwLock<Vec<(PathBuf, Stamp)>>,
    /// When the current certificate expires (seconds since the epoch).
    not_after_unix_s: AtomicI64,
}

impl TlsListener {
    /// Loads the stores of `settings` for the listener named `listener`.
    pub fn load(listener: &str, settings: TlsSettings) -> Result<Arc<TlsListener>, TlsError> {
        let stamps = stamps(&settings.files());
        let material = material::load(&settings)?;
        announce(listener, &material, "TLS certificate loaded");
        Ok(Arc::new(TlsListener {
            listener: listener.to_owned(),
            settings,
            current: RwLock::new(material.config),
            stamps: RwLock::new(stamps),
            not_after_unix_s: AtomicI64::new(material.not_after_unix_s),
        }))
    }

    /// An acceptor with the current configuration.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        TlsAcceptor::from(Arc::clone(&config))
    }

    pub fn listener(&self) -> &str {
        &self.listener
    }

    /// Whether clients are asked for certificates (`ssl.client.auth` requested or required).
    pub fn asks_for_client_certificates(&self) -> bool {
        self.settings.client_auth != crate::settings::ClientAuth::None
    }

    /// The principal of a client that completed the handshake: `User:ANONYMOUS` without a
    /// certificate, else its subject mapped by `ssl.principal.mapping.rules` (an error when no
    /// rule maps it: the connection must be refused).
    pub fn principal(
        &self,
        peer_certificates: Option<&[rustls_pki_types::CertificateDer<'_>]>,
    ) -> Result<String, TlsError> {
        let Some(leaf) = peer_certificates.and_then(|certs| certs.first()) else {
            return Ok(crate::principal::ANONYMOUS.to_owned());
        };
        let name = crate::principal::distinguished_name(leaf.as_ref())?;
        self.settings
            .principal_mapper
            .principal(&name)
            .ok_or_else(|| TlsError::Setting {
                name: "ssl.principal.mapping.rules".to_owned(),
                reason: format!("no rule maps the client certificate subject {name:?}"),
            })
    }

    /// When the current certificate expires (seconds since the epoch).
    pub fn not_after_unix_s(&self) -> i64 {
        self.not_after_unix_s.load(Ordering::Relaxed)
    }

    /// Loads the stores again if a file changed since the last load; returns whether the
    /// configuration was replaced. A failed load keeps the old configuration.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = stamps(&self.settings.files());
        {
            let seen = self
                .stamps
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if *seen == now {
                return Ok(false);
            }
        }
        // Remember the new stamps even if loading fails: the next change is tried again,
        // this one is not retried every interval.
        *self
            .stamps
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = now;
        match material::load(&self.settings) {
            Ok(material) => {
                announce(&self.listener, &material, "TLS certificate reloaded");
                self.not_after_unix_s
                    .store(material.not_after_unix_s, Ordering::Relaxed);
                *self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = material.config;
                shoal_metrics::record_tls_reload(&self.listener, true);
                Ok(true)
            }
            Err(error) => {
                tracing::error!(listener = %self.listener, %error,
                    "TLS files changed but do not load; keeping the previous certificate");
                shoal_metrics::record_tls_reload(&self.listener, false);
                Err(error)
            }
        }
    }

    /// Checks for changed files every `interval` until the returned task is aborted.
    pub fn spawn_reloader(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        // The expiry gauge again, in case the metrics recorder was installed after loading.
        shoal_metrics::record_tls_certificate_expiry(&self.listener, self.not_after_unix_s());
        spawn_every(interval, move || {
            let _ = this.reload_if_changed();
        })
    }
}

/// Runs `check` (blocking work: file reads and parsing) off the async threads every
/// `interval`, the first time one interval from now, until the returned task is aborted.
pub fn spawn_every(
    interval: Duration,
    check: impl Fn() + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    let check = Arc::new(check);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let check = Arc::clone(&check);
            let _ = tokio::task::spawn_blocking(move || check()).await;
        }
    })
}

fn stamps(files: &[PathBuf]) -> Vec<(PathBuf, Stamp)> {
    files
        .iter()
        .map(|path| {
            let stamp = std::fs::metadata(path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            (path.clone(), stamp)
        })
        .collect()
}

fn announce(listener: &str, material: &Material, message: &'static str) {
    shoal_metrics::record_tls_certificate_expiry(listener, material.not_after_unix_s);
    let now_s = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let days_left = (material.not_after_unix_s - now_s) / 86_400;
    if material.not_after_unix_s <= now_s {
        tracing::error!(listener, subject = %material.subject, not_after_unix_s = material.not_after_unix_s,
            "{message}: the certificate has EXPIRED; clients will refuse it");
    } else {
        tracing::info!(listener, subject = %material.subject, not_after_unix_s = material.not_after_unix_s,
            days_left, "{message}");
    }
}
