//! gRPC channels to other brokers' replication listeners, one per broker, kept between calls
//! (tonic reconnects a channel as needed). A call that fails drops its channel, so the next
//! one dials again, to the address the metadata then names.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use shoal_internode::{ClientTls, NodeConnector};
use tonic::transport::Channel;

const CONNECT_TIMEOUT_MS: u64 = 5_000;

/// How this broker reaches its peers' replication listeners: the cluster id its calls carry
/// and the TLS of the links, if any.
#[derive(Clone)]
pub struct PeerLinks {
    pub cluster_id: String,
    pub tls: Option<ClientTls>,
}

pub struct PeerChannels {
    links: PeerLinks,
    channels: Mutex<HashMap<i32, (String, Channel)>>,
}

impl PeerChannels {
    pub fn new(links: PeerLinks) -> Self {
        Self {
            links,
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// The cluster id calls to peers carry.
    pub fn cluster_id(&self) -> &str {
        &self.links.cluster_id
    }

    /// A channel to broker `node` at `address`; dials (checking the peer's node id on TLS
    /// links) unless one to that address is kept.
    pub async fn get(&self, node: i32, address: &str) -> Result<Channel, String> {
        let kept = self
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node)
            .filter(|(known, _)| known == address)
            .map(|(_, channel)| channel.clone());
        if let Some(channel) = kept {
            return Ok(channel);
        }
        let channel = NodeConnector::new(self.links.tls.clone(), Some(node))
            .connect(address, Duration::from_millis(CONNECT_TIMEOUT_MS))
            .await
            .map_err(|e| shoal_internode::error_chain(&e))?;
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node, (address.to_string(), channel.clone()));
        Ok(channel)
    }

    /// Drops the channel to `node` after a failed call.
    pub fn forget(&self, node: i32) {
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&node);
    }
}
