//! `shoal --healthcheck`: asks this node's own `/readyz` and exits 0 when it answers 200.
//!
//! Container images built from `scratch` have no curl, so the binary probes itself; it reads
//! the same configuration the node does, so the port and the scheme always match. On a TLS
//! admin listener (`ADMIN:SSL`) the probe does not check the certificate's name (it asks its
//! own process over loopback, which the certificate need not name, and sends nothing secret);
//! with `ssl.client.auth=required` it presents the node's own certificate.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use shoal_tls::{ClientAuth, Keystore};
use ureq::tls::{ClientCert, PemItem, TlsConfig, TlsProvider};

use crate::config::NodeConfig;
use crate::node::ADMIN_LISTENER_NAME;

/// The address to probe: the admin listener, with a wildcard host replaced by loopback.
fn probe_addr(config: &NodeConfig) -> anyhow::Result<SocketAddr> {
    let spec = config.string("admin.listener")?;
    let mut addr: SocketAddr = spec.parse().with_context(|| {
        format!("admin.listener={spec:?} must be host:port with a numeric host")
    })?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(addr)
}

/// Ok(true) when the node is ready, Ok(false) when it answers but is not.
pub fn ready(config: &NodeConfig) -> anyhow::Result<bool> {
    let addr = probe_addr(config)?;
    let builder = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false);
    let (scheme, builder) = match crate::node::admin_tls(config)? {
        None => ("http", builder),
        Some(listener) => ("https", builder.tls_config(probe_tls(config, &listener)?)),
    };
    let url = format!("{scheme}://{addr}/readyz");
    let response = builder
        .build()
        .new_agent()
        .get(&url)
        .call()
        .with_context(|| format!("no answer from {url}"))?;
    Ok(response.status() == 200)
}

fn probe_tls(config: &NodeConfig, listener: &shoal_tls::TlsListener) -> anyhow::Result<TlsConfig> {
    // ureq's rustls needs a process-wide provider; the node's is ring. An error means one is
    // installed already.
    let _ = shoal_tls::material::crypto_provider().install_default();
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .disable_verification(true);
    let settings =
        shoal_tls::TlsSettings::from_lookup(|name| config.listener_get(ADMIN_LISTENER_NAME, name))?;
    if !listener.asks_for_client_certificates() || settings.client_auth != ClientAuth::Required {
        return Ok(tls.build());
    }
    let pem = match &settings.keystore {
        Keystore::File(path) => shoal_tls::material::read_pem_file(path)?,
        Keystore::Inline { chain, key } => format!("{key}\n{chain}").into_bytes(),
    };
    let mut chain = Vec::new();
    let mut key = None;
    for item in ureq::tls::parse_pem(&pem) {
        match item.context("the admin listener's keystore")? {
            PemItem::Certificate(cert) => chain.push(cert.to_owned()),
            PemItem::PrivateKey(k) => key = Some(k.to_owned()),
            _ => {}
        }
    }
    let key = key.context("the admin listener's keystore has no private key")?;
    Ok(tls
        .client_cert(Some(ClientCert::new_with_certs(&chain, key)))
        .build())
}
