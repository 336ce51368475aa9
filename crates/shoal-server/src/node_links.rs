//! The security of this node's links to other nodes, from Kafka-style settings.
//!
//! The controller listener's entry in `listener.security.protocol.map` (e.g. `CONTROLLER:SSL`)
//! secures the controller links: the listener, and this node's connections to the voters —
//! also on a broker-only node that binds no controller listener, as in Kafka, where brokers
//! reach the controllers by the controller listener's protocol. The reserved listener name
//! `REPLICATION` does the same for replication (`REPLICATION:SSL`; absent: PLAINTEXT). SSL on
//! these links is always mutual TLS; the stores are read with the listener's prefix
//! (`listener.name.controller.ssl.keystore.location`, …) falling back to the plain `ssl.*`
//! names, so one keystore can serve every listener.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use shoal_internode::NodeTls;

use crate::config::NodeConfig;

pub struct NodeLinks {
    /// `CONTROLLER:SSL`: the controller listener and the connections to the voters.
    pub controller: Option<Arc<NodeTls>>,
    /// `REPLICATION:SSL`: the replication listener and the fetchers' connections to leaders.
    pub replication: Option<Arc<NodeTls>>,
}

/// Whether the node link `listener` is TLS, by its protocol map entry (`None`: no entry).
pub fn link_uses_tls(listener: &str, protocol: Option<&str>) -> anyhow::Result<bool> {
    match protocol.unwrap_or("PLAINTEXT") {
        "PLAINTEXT" => Ok(false),
        "SSL" => Ok(true),
        other => bail!(
            "{listener} is a node link and uses {other}; node links authenticate with \
             certificates: use SSL (mutual TLS) or PLAINTEXT"
        ),
    }
}

/// Loads the TLS of the node links the protocol map secures.
pub fn node_links(
    config: &NodeConfig,
    controller_listener: &str,
    runs_broker: bool,
) -> anyhow::Result<NodeLinks> {
    let map = crate::node::protocol_map(config)?;
    let load = |listener: &str| -> anyhow::Result<Option<Arc<NodeTls>>> {
        if !link_uses_tls(listener, map.get(listener).map(String::as_str))? {
            return Ok(None);
        }
        let settings =
            shoal_tls::TlsSettings::from_lookup(|name| config.listener_get(listener, name))
                .with_context(|| format!("node listener {listener}"))?;
        let tls = NodeTls::load(listener, settings)
            .with_context(|| format!("node listener {listener}"))?;
        Ok(Some(tls))
    };
    let controller = load(controller_listener)?;
    let replication_name = shoal_broker::replication::REPLICATION_LISTENER_NAME;
    let replication = if runs_broker {
        load(replication_name)?
    } else {
        None
    };
    if runs_broker && controller.is_some() != replication.is_some() {
        tracing::warn!(
            controller = controller.is_some(),
            replication = replication.is_some(),
            "only one of the node links uses mutual TLS; set both {controller_listener}:SSL and \
             {replication_name}:SSL in listener.security.protocol.map to secure them all"
        );
    }
    Ok(NodeLinks {
        controller,
        replication,
    })
}

impl NodeLinks {
    /// Reloads each link's files when they change, every `ssl.keystore.reload.interval.ms`.
    pub fn spawn_reloaders(&self, config: &NodeConfig) -> Vec<tokio::task::JoinHandle<()>> {
        [&self.controller, &self.replication]
            .into_iter()
            .flatten()
            .map(|tls| {
                let interval_ms = config
                    .listener_get(tls.listener(), "ssl.keystore.reload.interval.ms")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(10_000)
                    .max(100);
                tls.spawn_reloader(Duration::from_millis(interval_ms))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_links_are_plaintext_or_mutual_tls() {
        assert!(!link_uses_tls("REPLICATION", None).unwrap());
        assert!(!link_uses_tls("CONTROLLER", Some("PLAINTEXT")).unwrap());
        assert!(link_uses_tls("CONTROLLER", Some("SSL")).unwrap());
        for refused in ["SASL_SSL", "SASL_PLAINTEXT", "TLS"] {
            let e = link_uses_tls("REPLICATION", Some(refused)).unwrap_err();
            assert!(
                e.to_string().contains("use SSL (mutual TLS) or PLAINTEXT"),
                "{e}"
            );
        }
    }
}
