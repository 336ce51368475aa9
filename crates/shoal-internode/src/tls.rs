//! One node listener's certificates, for both directions of its links.
//!
//! A node serves its listener with its certificate and dials its peers with the same one as a
//! client certificate, so one `ssl.keystore.*` and one truststore (the cluster CA) per listener
//! do both. Client certificates are always required on node listeners, whatever
//! `ssl.client.auth` says: without them the node id of a peer could not be checked. Files are
//! reloaded when they change (renewed certificates apply to new connections).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use shoal_tls::{ClientAuth, TlsAcceptor, TlsConnector, TlsError, TlsListener, TlsSettings};

use crate::identity::{PeerCertificate, node_id_of};

pub struct NodeTls {
    server: Arc<TlsListener>,
    settings: TlsSettings,
    client: RwLock<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTls")
            .field("listener", &self.listener())
            .finish_non_exhaustive()
    }
}

impl NodeTls {
    /// Loads the certificates of node listener `listener` (e.g. `CONTROLLER`), forcing
    /// `ssl.client.auth=required`.
    pub fn load(listener: &str, mut settings: TlsSettings) -> Result<Arc<NodeTls>, TlsError> {
        if settings.truststore.is_none() {
            return Err(TlsError::Setting {
                name: "ssl.truststore.location".to_owned(),
                reason: format!(
                    "node listener {listener} uses SSL, which is mutual TLS between nodes: set \
                     the cluster CA as its truststore"
                ),
            });
        }
        settings.client_auth = ClientAuth::Required;
        let client = shoal_tls::material::node_client_config(&settings)?;
        let server = TlsListener::load(listener, settings.clone())?;
        Ok(Arc::new(NodeTls {
            server,
            settings,
            client: RwLock::new(client),
        }))
    }

    pub fn listener(&self) -> &str {
        self.server.listener()
    }

    /// An acceptor with the current certificates.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.server.acceptor()
    }

    /// A connector with the current certificates.
    pub fn connector(&self) -> TlsConnector {
        let config = self
            .client
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        TlsConnector::from(Arc::clone(&config))
    }

    /// What a verified peer certificate chain says about its owner; an error when no
    /// `ssl.principal.mapping.rules` rule maps its subject (the connection is refused).
    pub fn identify(
        &self,
        chain: Option<&[CertificateDer<'_>]>,
    ) -> Result<PeerCertificate, TlsError> {
        let principal = self.server.principal(chain)?;
        let principal = principal
            .strip_prefix("User:")
            .unwrap_or(&principal)
            .to_owned();
        Ok(PeerCertificate {
            node_id: node_id_of(&principal),
            principal,
        })
    }

    /// Loads the files again if they changed; both directions switch together.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        if !self.server.reload_if_changed()? {
            return Ok(false);
        }
        let client = shoal_tls::material::node_client_config(&self.settings)?;
        *self
            .client
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = client;
        Ok(true)
    }

    /// Checks for changed files every `interval` until the returned task is aborted.
    pub fn spawn_reloader(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        shoal_metrics::record_tls_certificate_expiry(
            self.server.listener(),
            self.server.not_after_unix_s(),
        );
        shoal_tls::spawn_every(interval, move || {
            let _ = this.reload_if_changed();
        })
    }
}
