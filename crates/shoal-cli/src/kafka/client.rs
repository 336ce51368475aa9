//! The cluster as `shoalctl` sees it: bootstrap servers, the brokers Metadata names, and one
//! connection per broker opened on first use.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::connection::Connection;
use super::security::Transport;

pub struct Client {
    timeout: Duration,
    transport: Transport,
    /// The bootstrap connection (any broker: admin requests are forwarded to the controller).
    any: Connection,
    brokers: HashMap<i32, String>,
    connections: HashMap<i32, Connection>,
}

/// FindCoordinator key types.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

impl Client {
    /// Connects to the first bootstrap server that answers; the error names each failure.
    pub async fn connect(
        bootstrap: &str,
        timeout: Duration,
        transport: Transport,
    ) -> anyhow::Result<Client> {
        let servers: Vec<String> = bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if servers.is_empty() {
            bail!("--brokers is empty");
        }
        let mut failures = Vec::new();
        for server in &servers {
            match Connection::open(server, timeout, &transport).await {
                Ok(any) => {
                    return Ok(Client {
                        timeout,
                        transport,
                        any,
                        brokers: HashMap::new(),
                        connections: HashMap::new(),
                    });
                }
                Err(e) => failures.push(format!("{e:#}")),
            }
        }
        bail!("no broker reachable: {}", failures.join("; "))
    }

    pub fn any(&mut self) -> &mut Connection {
        &mut self.any
    }

    /// Metadata for `topics` (all topics for `None`); remembers the brokers it lists.
    pub async fn metadata(
        &mut self,
        topics: Option<&[String]>,
    ) -> anyhow::Result<MetadataResponse> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|n| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let response = self.any.call(request).await?;
        for b in &response.brokers {
            self.brokers
                .insert(b.node_id.0, format!("{}:{}", b.host, b.port));
        }
        Ok(response)
    }

    /// A connection to broker `id` (Metadata must have named it).
    pub async fn broker(&mut self, id: i32) -> anyhow::Result<&mut Connection> {
        if !self.connections.contains_key(&id) {
            if self.brokers.is_empty() {
                self.metadata(Some(&[])).await?;
            }
            let address = self
                .brokers
                .get(&id)
                .cloned()
                .with_context(|| format!("broker {id} is not in the cluster's metadata"))?;
            let connection = Connection::open(&address, self.timeout, &self.transport).await?;
            self.connections.insert(id, connection);
        }
        self.connections.get_mut(&id).context("connection vanished")
    }

    pub fn broker_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.brokers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The coordinator of `group` (FindCoordinator, retried while it is loading or moving).
    pub async fn coordinator(&mut self, group: &str) -> anyhow::Result<&mut Connection> {
        self.coordinator_of(KEY_TYPE_GROUP, group).await
    }

    /// The transaction coordinator of `transactional_id`.
    pub async fn transaction_coordinator(
        &mut self,
        transactional_id: &str,
    ) -> anyhow::Result<&mut Connection> {
        self.coordinator_of(KEY_TYPE_TRANSACTION, transactional_id)
            .await
    }

    async fn coordinator_of(
        &mut self,
        key_type: i8,
        group: &str,
    ) -> anyhow::Result<&mut Connection> {
        let what = if key_type == KEY_TYPE_TRANSACTION {
            "transactional id"
        } else {
            "group"
        };
        let mut last = String::new();
        for _ in 0..20 {
            let version = self.any.version::<FindCoordinatorRequest>()?;
            let key = StrBytes::from_string(group.to_string());
            let request = if version >= 4 {
                FindCoordinatorRequest::default().with_coordinator_keys(vec![key])
            } else {
                FindCoordinatorRequest::default().with_key(key)
            }
            .with_key_type(key_type);
            let response = self.any.call_at(request, version).await?;
            // v4+ answers per key; older versions at the top level.
            let (code, node) = match response.coordinators.first() {
                Some(c) => (c.error_code, c.node_id),
                None => (response.error_code, response.node_id),
            };
            match code {
                0 => {
                    let BrokerId(id) = node;
                    self.metadata(Some(&[])).await?;
                    return self.broker(id).await;
                }
                // COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS: wait and ask again.
                14 | 15 => {
                    last = shoal_kafka::error_name(code).to_string();
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                other => bail!(
                    "FindCoordinator for {what} {group}: {}",
                    shoal_kafka::error_name(other)
                ),
            }
        }
        bail!("no coordinator for {what} {group}: {last}")
    }
}
