//! `shoal --healthcheck`: asks this node's own `/readyz` and exits 0 when it answers 200.
//!
//! Container images built from `scratch` have no curl, so the binary probes itself; it reads
//! the same configuration the node does, so the port always matches.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::NodeConfig;

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
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .new_agent();
    let response = agent
        .get(format!("http://{addr}/readyz"))
        .call()
        .with_context(|| format!("no answer from http://{addr}/readyz"))?;
    Ok(response.status() == 200)
}
