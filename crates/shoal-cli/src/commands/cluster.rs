//! `shoalctl cluster ...`: identity and brokers (DescribeCluster), health (Metadata and
//! DescribeConfigs, as `kafka-topics.sh --under-replicated-partitions` etc.), and the quorum
//! (`kafka-metadata-quorum.sh describe --status --replication`, over the controller gRPC API).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{DescribeClusterRequest, DescribeConfigsRequest};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;
use shoal_proto::controller::DescribeQuorumRequest;
use shoal_proto::controller::quorum_admin_client::QuorumAdminClient;

use super::check;
use crate::cli::ClusterCommand;
use crate::kafka::Client;
use crate::output::{Output, list};

pub async fn run(
    client: &mut Client,
    command: &ClusterCommand,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    match command {
        ClusterCommand::Info => info(client, out).await,
        ClusterCommand::Health => health(client, out).await,
        ClusterCommand::Quorum(_) => unreachable_quorum(),
        ClusterCommand::LogDirs(args) => super::log_dirs::run(client, args, out).await,
        ClusterCommand::Features => super::features::describe(client, out).await,
        ClusterCommand::Upgrade(args) => super::features::upgrade(client, args, out).await,
        ClusterCommand::Balance(args) => super::broker::balance(client, args, out).await,
    }
}

fn unreachable_quorum() -> anyhow::Result<ExitCode> {
    bail!("cluster quorum is answered by the controllers, not through --brokers")
}

struct BrokerRow {
    id: i32,
    host: String,
    port: i32,
    rack: Option<String>,
    fenced: bool,
}

async fn brokers(client: &mut Client) -> anyhow::Result<(String, i32, Vec<BrokerRow>)> {
    let version = client.any().version::<DescribeClusterRequest>()?;
    // v2 (KIP-1073) lists fenced brokers too and says which they are.
    let request = DescribeClusterRequest::default().with_include_fenced_brokers(version >= 2);
    let response = client.any().call_at(request, version).await?;
    check(
        "DescribeCluster",
        response.error_code,
        response.error_message.as_deref(),
    )?;
    let mut rows: Vec<BrokerRow> = response
        .brokers
        .iter()
        .map(|b| BrokerRow {
            id: b.broker_id.0,
            host: b.host.to_string(),
            port: b.port,
            rack: b.rack.as_ref().map(|r| r.to_string()),
            fenced: b.is_fenced,
        })
        .collect();
    rows.sort_by_key(|b| b.id);
    Ok((
        response.cluster_id.to_string(),
        response.controller_id.0,
        rows,
    ))
}

async fn info(client: &mut Client, out: &Output) -> anyhow::Result<ExitCode> {
    let (cluster_id, controller, rows) = brokers(client).await?;
    let value = json!({
        "cluster_id": cluster_id,
        "controller_id": controller,
        "brokers": rows.iter().map(|b| json!({"id": b.id, "host": b.host, "port": b.port, "rack": b.rack,
            "state": if b.fenced { "fenced" } else { "unfenced" }})).collect::<Vec<_>>(),
    });
    let title = format!("cluster {cluster_id}, controller {controller}");
    out.emit(
        &value,
        &[(
            &title,
            vec!["ID", "HOST", "PORT", "RACK", "STATE"],
            rows.iter()
                .map(|b| {
                    vec![
                        b.id.to_string(),
                        b.host.clone(),
                        b.port.to_string(),
                        b.rack.clone().unwrap_or_else(|| "-".into()),
                        if b.fenced {
                            "fenced".into()
                        } else {
                            "unfenced".into()
                        },
                    ]
                })
                .collect(),
        )],
    );
    Ok(ExitCode::SUCCESS)
}

async fn health(client: &mut Client, out: &Output) -> anyhow::Result<ExitCode> {
    let (_, _, brokers) = brokers(client).await?;
    let fenced: Vec<i32> = brokers.iter().filter(|b| b.fenced).map(|b| b.id).collect();
    let md = client.metadata(None).await?;
    // min.insync.replicas of every topic, in one DescribeConfigs.
    let names: Vec<String> = md
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    let mut min_isr: BTreeMap<String, usize> = BTreeMap::new();
    if !names.is_empty() {
        let response = client
            .any()
            .call(
                DescribeConfigsRequest::default().with_resources(
                    names
                        .iter()
                        .map(|n| {
                            DescribeConfigsResource::default()
                                .with_resource_type(2)
                                .with_resource_name(StrBytes::from_string(n.clone()))
                                .with_configuration_keys(Some(vec![StrBytes::from_static_str(
                                    "min.insync.replicas",
                                )]))
                        })
                        .collect(),
                ),
            )
            .await?;
        for r in response.results {
            if let Some(n) = r
                .configs
                .iter()
                .find(|c| c.name.as_str() == "min.insync.replicas")
                .and_then(|v| v.value.as_ref())
                .and_then(|s| s.parse().ok())
            {
                min_isr.insert(r.resource_name.to_string(), n);
            }
        }
    }
    let (mut offline, mut under_replicated, mut under_min_isr) =
        (Vec::new(), Vec::new(), Vec::new());
    for t in &md.topics {
        let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
            continue;
        };
        for p in &t.partitions {
            let key = format!("{name}/{}", p.partition_index);
            // No leader, or a leader whose log cannot be opened (KAFKA_STORAGE_ERROR = 56).
            if p.leader_id.0 < 0 || p.error_code == 56 || p.offline_replicas.contains(&p.leader_id)
            {
                offline.push(key.clone());
            }
            if p.isr_nodes.len() < p.replica_nodes.len() {
                under_replicated.push(key.clone());
            }
            if min_isr.get(&name).is_some_and(|m| p.isr_nodes.len() < *m) {
                under_min_isr.push(key);
            }
        }
    }
    let healthy = offline.is_empty()
        && under_replicated.is_empty()
        && under_min_isr.is_empty()
        && fenced.is_empty();
    let value = json!({
        "healthy": healthy,
        "offline_partitions": offline,
        "under_replicated_partitions": under_replicated,
        "under_min_isr_partitions": under_min_isr,
        "fenced_brokers": fenced,
        "brokers": brokers.len(),
    });
    let show = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(",")
        }
    };
    out.emit(
        &value,
        &[(
            if healthy {
                "cluster healthy"
            } else {
                "cluster NOT healthy"
            },
            vec!["CHECK", "COUNT", "WHICH"],
            vec![
                vec![
                    "offline partitions".into(),
                    offline.len().to_string(),
                    show(&offline),
                ],
                vec![
                    "under-replicated partitions".into(),
                    under_replicated.len().to_string(),
                    show(&under_replicated),
                ],
                vec![
                    "under-min-ISR partitions".into(),
                    under_min_isr.len().to_string(),
                    show(&under_min_isr),
                ],
                vec![
                    "fenced brokers".into(),
                    fenced.len().to_string(),
                    if fenced.is_empty() {
                        "-".into()
                    } else {
                        list(&fenced)
                    },
                ],
            ],
        )],
    );
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Asks the first controller that answers; if it is not the leader, asks the leader, which
/// alone knows every voter's match index.
pub async fn quorum(
    controllers: &str,
    out: &Output,
    timeout: Duration,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> anyhow::Result<ExitCode> {
    let tls = tls.map(shoal_internode::ClientTls::Config);
    let (mut status, leader) = leader_status(controllers, timeout, tls.clone()).await?;
    if !status.replication_known
        && let Some(address) = leader
        && let Ok(s) = describe_quorum(&address, timeout, tls.clone()).await
    {
        status = s;
    }
    let voters: Vec<Vec<String>> = status
        .voters
        .iter()
        .map(|v| {
            let role = if v.node_id == status.leader_id {
                "Leader"
            } else {
                "Follower"
            };
            vec![
                v.node_id.to_string(),
                v.address.clone(),
                role.into(),
                v.match_index.to_string(),
                v.lag.to_string(),
                or_dash(&v.directory_id),
                votes(v).into(),
            ]
        })
        .collect();
    // A controller being added replicates without voting: Kafka lists it as an observer.
    let learners = status.learners.iter().map(|id| {
        vec![
            id.to_string(),
            "-".into(),
            "-".into(),
            "-".into(),
            "(learner)".into(),
        ]
    });
    let observers: Vec<Vec<String>> = learners
        .chain(status.observers.iter().map(|o| {
            vec![
                o.node_id.to_string(),
                o.applied_offset.to_string(),
                o.lag.to_string(),
                o.last_fetch_ms_ago.to_string(),
                String::new(),
            ]
        }))
        .collect();
    let value = json!({
        "cluster_id": status.cluster_id,
        "leader_id": status.leader_id,
        "current_term": status.current_term,
        "last_log_index": status.last_log_index,
        "commit_index": status.commit_index,
        "applied_index": status.applied_index,
        "replication_known": status.replication_known,
        "voters": status.voters.iter().map(|v| json!({"node_id": v.node_id, "address": v.address,
            "role": if v.node_id == status.leader_id { "Leader" } else { "Follower" },
            "log_end_offset": v.match_index, "lag": v.lag,
            "directory_id": (!v.directory_id.is_empty()).then_some(&v.directory_id),
            "reported_directory_id": (!v.reported_directory_id.is_empty()).then_some(&v.reported_directory_id),
            "votes": votes(v)})).collect::<Vec<_>>(),
        "observers": status.observers.iter().map(|o| json!({"node_id": o.node_id, "log_end_offset": o.applied_offset,
            "lag": o.lag, "last_fetch_ms_ago": o.last_fetch_ms_ago})).collect::<Vec<_>>(),
        "learners": status.learners,
    });
    let title = format!(
        "cluster {}: leader {}, term {}, commit index {}",
        status.cluster_id, status.leader_id, status.current_term, status.commit_index
    );
    out.emit(
        &value,
        &[
            (
                &title,
                vec![
                    "NODE",
                    "ADDRESS",
                    "ROLE",
                    "LOG_END_OFFSET",
                    "LAG",
                    "DIRECTORY",
                    "VOTES",
                ],
                voters,
            ),
            (
                "observers:",
                vec!["NODE", "LOG_END_OFFSET", "LAG", "LAST_FETCH_MS_AGO", "NOTE"],
                observers,
            ),
        ],
    );
    Ok(ExitCode::SUCCESS)
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text.to_string()
    }
}

/// Whether the voter's vote counts: `yes` when it runs with its recorded directory, `no` when
/// it reports another one (wiped: `add-voter` makes it a voter again), `unknown` otherwise (no
/// directory recorded yet, or not heard from).
fn votes(v: &shoal_proto::controller::VoterStatus) -> &'static str {
    match (v.directory_id.as_str(), v.reported_directory_id.as_str()) {
        ("", _) | (_, "") => "unknown",
        (recorded, reported) if recorded == reported => "yes",
        _ => "no",
    }
}

/// The status from the first controller that answers, then from the leader it names.
async fn leader_status(
    controllers: &str,
    timeout: Duration,
    tls: Option<shoal_internode::ClientTls>,
) -> anyhow::Result<(
    shoal_proto::controller::DescribeQuorumResponse,
    Option<String>,
)> {
    let mut failures = Vec::new();
    for address in controllers
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        match describe_quorum(address, timeout, tls.clone()).await {
            Ok(status) => {
                let leader = status
                    .voters
                    .iter()
                    .find(|v| v.node_id == status.leader_id)
                    .map(|v| v.address.clone());
                return Ok((status, leader));
            }
            Err(e) => failures.push(format!("{address}: {e:#}")),
        }
    }
    bail!("no controller reachable: {}", failures.join("; "))
}

/// A client of the quorum leader's QuorumAdmin service.
async fn leader_client(
    controllers: &str,
    timeout: Duration,
    tls: Option<shoal_internode::ClientTls>,
) -> anyhow::Result<(QuorumAdminClient<shoal_internode::Channel>, String)> {
    let (_, leader) = leader_status(controllers, timeout, tls.clone()).await?;
    let leader = leader.context("the quorum has no leader now; retry when it has one")?;
    let channel = shoal_internode::NodeConnector::new(tls, None)
        .connect(&leader, timeout)
        .await
        .map_err(|e| anyhow::anyhow!(shoal_internode::error_chain(&e)))?;
    Ok((QuorumAdminClient::new(channel), leader))
}

/// `cluster quorum add-voter`: a replaced voter's new directory, or a new controller.
pub async fn add_voter(
    controllers: &str,
    args: &crate::cli::AddVoterArgs,
    out: &Output,
    timeout: Duration,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> anyhow::Result<ExitCode> {
    let tls = tls.map(shoal_internode::ClientTls::Config);
    let address = args.address.as_deref().map(str::trim).unwrap_or_default();
    let directory_id = match (&args.directory_id, address) {
        (Some(directory_id), _) => directory_id.clone(),
        (None, "") => String::new(),
        // A new controller reports its own directory in DescribeQuorum.
        (None, address) => {
            let status = describe_quorum(address, timeout, tls.clone())
                .await
                .with_context(|| format!("cannot ask the new controller at {address}"))?;
            if status.node_id != args.id {
                bail!(
                    "{address} is node {}, not node {}; check --id and --address",
                    status.node_id,
                    args.id
                );
            }
            if status.directory_id.is_empty() {
                bail!(
                    "the controller at {address} does not report its directory id; pass --directory-id"
                );
            }
            status.directory_id
        }
    };
    let (mut client, leader) = leader_client(controllers, timeout, tls).await?;
    let request = shoal_proto::controller::AddVoterRequest {
        voter_id: args.id,
        directory_id,
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        address: address.to_string(),
    };
    let reply = tokio::time::timeout(timeout, client.add_voter(request))
        .await
        .map_err(|_| anyhow::anyhow!("no answer from the leader ({leader}) within {timeout:?}"))?
        .map_err(|status| anyhow::anyhow!("{}", status.message()))?
        .into_inner();
    let voters = join_ids(&reply.voters);
    let value = json!({
        "voter_id": reply.voter_id,
        "directory_id": reply.directory_id,
        "previous_directory_id": (!reply.previous_directory_id.is_empty()).then_some(&reply.previous_directory_id),
        "log_index": reply.log_index,
        "voters": reply.voters,
    });
    out.emit(
        &value,
        &[(
            "voter added:",
            vec![
                "NODE",
                "DIRECTORY",
                "PREVIOUS_DIRECTORY",
                "LOG_INDEX",
                "VOTERS",
            ],
            vec![vec![
                reply.voter_id.to_string(),
                reply.directory_id.clone(),
                or_dash(&reply.previous_directory_id),
                reply.log_index.to_string(),
                voters,
            ]],
        )],
    );
    Ok(ExitCode::SUCCESS)
}

/// `cluster quorum remove-voter`.
pub async fn remove_voter(
    controllers: &str,
    args: &crate::cli::RemoveVoterArgs,
    out: &Output,
    timeout: Duration,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> anyhow::Result<ExitCode> {
    let tls = tls.map(shoal_internode::ClientTls::Config);
    let (mut client, leader) = leader_client(controllers, timeout, tls).await?;
    let request = shoal_proto::controller::RemoveVoterRequest {
        voter_id: args.id,
        directory_id: args.directory_id.clone().unwrap_or_default(),
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    };
    let reply = tokio::time::timeout(timeout, client.remove_voter(request))
        .await
        .map_err(|_| anyhow::anyhow!("no answer from the leader ({leader}) within {timeout:?}"))?
        .map_err(|status| anyhow::anyhow!("{}", status.message()))?
        .into_inner();
    let value = json!({
        "voter_id": reply.voter_id,
        "directory_id": (!reply.directory_id.is_empty()).then_some(&reply.directory_id),
        "log_index": reply.log_index,
        "voters": reply.voters,
    });
    out.emit(
        &value,
        &[(
            "voter removed:",
            vec!["NODE", "DIRECTORY", "LOG_INDEX", "VOTERS"],
            vec![vec![
                reply.voter_id.to_string(),
                or_dash(&reply.directory_id),
                reply.log_index.to_string(),
                join_ids(&reply.voters),
            ]],
        )],
    );
    Ok(ExitCode::SUCCESS)
}

fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

async fn describe_quorum(
    address: &str,
    timeout: Duration,
    tls: Option<shoal_internode::ClientTls>,
) -> anyhow::Result<shoal_proto::controller::DescribeQuorumResponse> {
    let channel = shoal_internode::NodeConnector::new(tls, None)
        .connect(address, timeout)
        .await
        .map_err(|e| anyhow::anyhow!(shoal_internode::error_chain(&e)))?;
    let mut client = QuorumAdminClient::new(channel);
    let reply = tokio::time::timeout(timeout, client.describe_quorum(DescribeQuorumRequest {}))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {timeout:?}"))??;
    Ok(reply.into_inner())
}
