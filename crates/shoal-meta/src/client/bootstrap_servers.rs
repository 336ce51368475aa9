//! `controller.quorum.bootstrap.servers` (KIP-853): finding the controller voters from a list
//! of controller addresses instead of a configured voter list.
//!
//! **Why.** A static `controller.quorum.voters` must name every voter on every node, and be
//! edited everywhere when a voter is added or removed. With bootstrap servers a node only
//! needs to reach one controller: it asks for the quorum (DescribeQuorum), learns the voters,
//! their addresses and the cluster id, and from then on follows the voter set as it changes
//! (`crate::voter_book`). Any listed controller that answers will do: every controller knows
//! the voters, leader or not.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use shoal_internode::{ClientTls, NodeConnector};

use crate::error::MetaError;
use crate::proto::DescribeQuorumRequest;
use crate::proto::quorum_admin_client::QuorumAdminClient;
use crate::quorum_voters::MAX_VOTERS;

/// Most bootstrap servers read from the setting.
pub const MAX_BOOTSTRAP_SERVERS: usize = 64;
/// Pause between rounds over the list while no server answers.
const RETRY_BACKOFF_MS: u64 = 500;

/// What the bootstrap servers said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredQuorum {
    pub cluster_id: String,
    /// Voter id → controller address.
    pub voters: BTreeMap<i32, String>,
}

/// Parses `host:port[,host:port...]`.
pub fn parse_bootstrap_servers(spec: &str) -> Result<Vec<String>, MetaError> {
    let servers: Vec<String> = spec
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if servers.is_empty() || servers.len() > MAX_BOOTSTRAP_SERVERS {
        return Err(MetaError::Config(format!(
            "controller.quorum.bootstrap.servers '{spec}' must name 1 to {MAX_BOOTSTRAP_SERVERS} \
             controllers (host:port,...)"
        )));
    }
    for server in &servers {
        let port_ok = server.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !port_ok {
            return Err(MetaError::Config(format!(
                "controller.quorum.bootstrap.servers: '{server}' is not host:port"
            )));
        }
    }
    Ok(servers)
}

/// Asks the servers in turn until one describes a quorum with voters, for at most `timeout`.
pub async fn discover_quorum(
    servers: &[String],
    tls: Option<ClientTls>,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<DiscoveredQuorum, MetaError> {
    let deadline = Instant::now() + timeout;
    let mut last_errors: Vec<String> = Vec::new();
    loop {
        last_errors.clear();
        for server in servers {
            match describe(server, tls.clone(), connect_timeout).await {
                Ok(found) => {
                    tracing::info!(
                        server = %server,
                        cluster_id = %found.cluster_id,
                        voters = %crate::quorum_voters::format_quorum_voters(&found.voters),
                        "found the controller quorum through controller.quorum.bootstrap.servers"
                    );
                    return Ok(found);
                }
                Err(e) => last_errors.push(format!("{server}: {e}")),
            }
        }
        if Instant::now() + Duration::from_millis(RETRY_BACKOFF_MS) >= deadline {
            return Err(MetaError::Config(format!(
                "no controller.quorum.bootstrap.servers described the quorum within {} ms: {}",
                timeout.as_millis(),
                last_errors.join("; ")
            )));
        }
        tracing::warn!(errors = %last_errors.join("; "), "no bootstrap server answered yet; retrying");
        tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
    }
}

async fn describe(
    server: &str,
    tls: Option<ClientTls>,
    connect_timeout: Duration,
) -> Result<DiscoveredQuorum, String> {
    let channel = NodeConnector::new(tls, None)
        .connect(server, connect_timeout)
        .await
        .map_err(|e| shoal_internode::error_chain(&e))?;
    let mut client = QuorumAdminClient::new(channel);
    let status = tokio::time::timeout(
        connect_timeout * 4,
        client.describe_quorum(DescribeQuorumRequest {}),
    )
    .await
    .map_err(|_| "no answer in time".to_string())?
    .map_err(|s| format!("{}: {}", s.code(), s.message()))?
    .into_inner();
    let voters: BTreeMap<i32, String> = status
        .voters
        .into_iter()
        .filter(|v| !v.address.is_empty())
        .map(|v| (v.node_id, v.address))
        .collect();
    if voters.is_empty() || voters.len() > MAX_VOTERS {
        return Err(format!(
            "it knows {} voters (a controller still waiting to be added knows none)",
            voters.len()
        ));
    }
    Ok(DiscoveredQuorum {
        cluster_id: status.cluster_id,
        voters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_servers_are_host_port_lists() {
        assert_eq!(
            parse_bootstrap_servers(" h1:9093, 10.0.0.2:9093 ").expect("valid"),
            vec!["h1:9093".to_string(), "10.0.0.2:9093".to_string()]
        );
        for bad in ["", " , ", "h1", "h1:0", ":9093", "h1:x"] {
            assert!(parse_bootstrap_servers(bad).is_err(), "{bad:?}");
        }
    }
}
