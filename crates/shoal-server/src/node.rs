//! Assembles a node from its configuration and runs it until SIGTERM/SIGINT.
//!
//! `process.roles` picks what runs, as in KRaft: `controller` (a voter of the metadata quorum,
//! no Kafka listener), `broker` (serves Kafka clients; follows the metadata log from the
//! voters and reaches the active controller over gRPC), or both in one process.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shoal_broker::disk_space::DiskSpace;
use shoal_broker::{
    AdvertisedListener, Broker, BrokerConfig, BrokerHandler, MetadataSource, served_apis,
};
use shoal_internode::ClientTls;
use shoal_kafka::{KafkaServer, MemoryPool, ServerConfig};
use shoal_meta::meta_properties;
use shoal_meta::{
    ControllerClient, KnownLeader, MetaConfig, MetaNode, MetadataFollower, MetadataFollowerConfig,
    VoterBook,
};
use tokio::sync::watch;

use crate::admin_http::{AdminServer, AdminState, Readiness};
use crate::admin_token::AdminToken;
use crate::config::NodeConfig;
use crate::listeners::{Listener, parse_listeners};

/// Fires once when the node starts shutting down; every server waits on a clone of it.
#[derive(Clone)]
struct ShutdownSignal(watch::Receiver<bool>);

impl ShutdownSignal {
    async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Which parts run in this process (`process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub broker: bool,
    pub controller: bool,
}

impl Roles {
    pub fn parse(spec: &str) -> anyhow::Result<Roles> {
        let mut roles = Roles {
            broker: false,
            controller: false,
        };
        for role in spec.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            match role {
                "broker" => roles.broker = true,
                "controller" => roles.controller = true,
                other => {
                    bail!("process.roles={spec:?}: unknown role {other:?} (broker, controller)")
                }
            }
        }
        if !roles.broker && !roles.controller {
            bail!("process.roles={spec:?} names no role; use broker, controller, or both");
        }
        Ok(roles)
    }
}

/// The listeners of this node, split into Kafka and controller ones.
struct NodeListeners {
    kafka: Vec<Listener>,
    /// The TLS of each Kafka listener whose security protocol is SSL, loaded at start-up so a
    /// bad store stops the node before anything else starts.
    tls: std::collections::BTreeMap<String, Arc<shoal_tls::TlsListener>>,
    /// The SASL settings of each SASL_PLAINTEXT or SASL_SSL listener.
    sasl: std::collections::BTreeMap<String, SaslSettings>,
    advertised: Vec<Listener>,
    controller_bind: Option<String>,
    /// The TLS of the links between nodes (controller, replication), when they use SSL.
    links: crate::node_links::NodeLinks,
    /// The admin HTTP listener's TLS (`ADMIN:SSL`).
    admin_tls: Option<Arc<shoal_tls::TlsListener>>,
}

fn node_listeners(config: &NodeConfig, roles: Roles) -> anyhow::Result<NodeListeners> {
    let controller_names: Vec<String> = config
        .string("controller.listener.names")?
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let listeners = parse_listeners(&config.string("listeners")?)?;
    let protocols = security_protocols(config, &listeners, &controller_names)?;
    let kafka: Vec<Listener> = listeners
        .iter()
        .filter(|l| !controller_names.contains(&l.name))
        .cloned()
        .collect();
    if roles.broker && kafka.is_empty() {
        bail!("listeners has no Kafka (non-controller) listener, but this node runs a broker");
    }
    if !roles.broker && !kafka.is_empty() {
        bail!(
            "listeners names Kafka listener(s) {:?}, but process.roles=controller serves no Kafka \
             clients; list only the controller listener ({})",
            kafka.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            controller_names.join(",")
        );
    }
    if let Some(l) = kafka
        .iter()
        .find(|l| l.name == shoal_broker::replication::REPLICATION_LISTENER_NAME)
    {
        bail!(
            "listener name {} is reserved for replication (set replication.listener instead)",
            l.name
        );
    }
    if let Some(l) = kafka.iter().find(|l| l.name == ADMIN_LISTENER_NAME) {
        bail!(
            "listener name {} is reserved for the admin HTTP listener (set admin.listener instead)",
            l.name
        );
    }
    // Kafka 4 lets controllers advertise their listener too; clients are told only the Kafka ones.
    let advertised = match config.get("advertised.listeners") {
        Some(spec) if !spec.trim().is_empty() => parse_listeners(&spec)?
            .into_iter()
            .filter(|l| !controller_names.contains(&l.name))
            .collect(),
        _ => kafka.clone(),
    };
    for l in &advertised {
        if !kafka.iter().any(|k| k.name == l.name) {
            bail!(
                "advertised listener {} has no matching entry in listeners",
                l.name
            );
        }
    }
    let controller_bind = listeners
        .iter()
        .find(|l| controller_names.contains(&l.name))
        .map(|l| {
            let host = if l.host.is_empty() {
                "0.0.0.0"
            } else {
                &l.host
            };
            format!("{host}:{}", l.port)
        });
    if roles.controller && !roles.broker && controller_bind.is_none() {
        bail!("a controller-only node needs a controller listener in listeners");
    }
    let mut sasl = std::collections::BTreeMap::new();
    for listener in &kafka {
        if protocols.get(&listener.name).is_some_and(|p| p.sasl()) {
            sasl.insert(
                listener.name.clone(),
                sasl_settings(config, &listener.name)?,
            );
        }
    }
    let mut tls = std::collections::BTreeMap::new();
    for listener in &kafka {
        if let Some(protocol) = protocols.get(&listener.name).filter(|p| p.tls()) {
            let settings = shoal_tls::TlsSettings::from_lookup(|name| {
                config.listener_tls_get(&listener.name, protocol.sasl(), name)
            })
            .with_context(|| format!("listener {}", listener.name))?;
            let loaded = shoal_tls::TlsListener::load(&listener.name, settings)
                .with_context(|| format!("listener {}", listener.name))?;
            tls.insert(listener.name.clone(), loaded);
        }
    }
    // The first controller listener name is the one nodes reach the controllers by (Kafka).
    let controller_listener = controller_names
        .first()
        .map_or("CONTROLLER", String::as_str);
    let links = crate::node_links::node_links(config, controller_listener, roles.broker)?;
    let admin_tls = admin_tls(config)?;
    Ok(NodeListeners {
        kafka,
        tls,
        sasl,
        advertised,
        controller_bind,
        links,
        admin_tls,
    })
}

/// The name under which `listener.security.protocol.map` and `listener.name.<name>.ssl.*`
/// configure the admin HTTP listener (`admin.listener`).
pub(crate) const ADMIN_LISTENER_NAME: &str = "ADMIN";

/// The admin listener's TLS when the protocol map says `ADMIN:SSL` (absent: PLAINTEXT).
pub(crate) fn admin_tls(
    config: &NodeConfig,
) -> anyhow::Result<Option<Arc<shoal_tls::TlsListener>>> {
    let map = protocol_map(config)?;
    match map
        .get(ADMIN_LISTENER_NAME)
        .map_or("PLAINTEXT", String::as_str)
    {
        "PLAINTEXT" => Ok(None),
        "SSL" => {
            let settings = shoal_tls::TlsSettings::from_lookup(|name| {
                config.listener_get(ADMIN_LISTENER_NAME, name)
            })
            .context("admin listener (ADMIN)")?;
            Ok(Some(
                shoal_tls::TlsListener::load(ADMIN_LISTENER_NAME, settings)
                    .context("admin listener (ADMIN)")?,
            ))
        }
        other => bail!(
            "the admin listener (ADMIN) uses {other}; it serves HTTP: use SSL (with \
             admin.listener.token.file or ssl.client.auth for credentials) or PLAINTEXT"
        ),
    }
}

/// A SASL listener's settings (the credential store is the broker's, added when it runs).
#[derive(Debug, Clone)]
struct SaslSettings {
    mechanisms: Vec<shoal_kafka::sasl::SaslMechanism>,
    reauth_ms: u64,
    failed_delay_ms: u64,
    oauth: Option<Arc<shoal_sasl::OAuthValidator>>,
    /// The JWKS file OAUTHBEARER tokens are checked against, reloaded when it changes.
    jwks: Option<crate::oauth::JwksFile>,
}

fn sasl_settings(config: &NodeConfig, listener: &str) -> anyhow::Result<SaslSettings> {
    let get = |name: &str| config.listener_get(listener, name).unwrap_or_default();
    let mut mechanisms = Vec::new();
    for name in shoal_config::list_elements(&get("sasl.enabled.mechanisms")) {
        let mechanism = shoal_kafka::sasl::SaslMechanism::from_name(name.trim()).with_context(|| {
            format!(
                "listener {listener}: sasl.enabled.mechanisms names {name:?}; Shoal serves PLAIN, \
                 SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER"
            )
        })?;
        if !mechanisms.contains(&mechanism) {
            mechanisms.push(mechanism);
        }
    }
    if mechanisms.is_empty() {
        bail!("listener {listener} uses SASL but sasl.enabled.mechanisms is empty");
    }
    let number = |name: &str| -> anyhow::Result<u64> {
        let raw = get(name);
        raw.trim()
            .parse::<u64>()
            .with_context(|| format!("listener {listener}: {name}={raw:?} is not a count of ms"))
    };
    let (oauth, jwks) = if mechanisms.contains(&shoal_kafka::sasl::SaslMechanism::OAuthBearer) {
        let (validator, jwks) = crate::oauth::oauth_validator(listener, &get)?;
        (Some(Arc::new(validator)), jwks)
    } else {
        (None, None)
    };
    Ok(SaslSettings {
        mechanisms,
        reauth_ms: number("connections.max.reauth.ms")?,
        failed_delay_ms: number("connection.failed.authentication.delay.ms")?,
        oauth,
        jwks,
    })
}

fn millis(config: &NodeConfig, name: &str, floor: i64) -> anyhow::Result<u64> {
    Ok(u64::try_from(config.i64(name)?.max(floor)).unwrap_or(u64::MAX))
}

/// A listener's security protocol (Kafka's `listener.security.protocol.map`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// `listener.security.protocol.map`: listener name → protocol name.
pub(crate) fn protocol_map(
    config: &NodeConfig,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let map_spec = config.string("listener.security.protocol.map")?;
    let mut map = std::collections::BTreeMap::new();
    for entry in shoal_config::list_elements(&map_spec) {
        let (name, protocol) = entry.split_once(':').with_context(|| {
            format!("listener.security.protocol.map entry {entry:?} must be NAME:PROTOCOL")
        })?;
        map.insert(name.trim().to_string(), protocol.trim().to_string());
    }
    Ok(map)
}

/// The security protocol of each listener. Kafka listeners serve all four of Kafka's; the
/// controller listener (gRPC between nodes) serves PLAINTEXT or SSL, which is mutual TLS
/// (`node_links`). A protocol a listener cannot serve is refused rather than served without
/// the security the operator asked for.
fn security_protocols(
    config: &NodeConfig,
    listeners: &[Listener],
    controller_names: &[String],
) -> anyhow::Result<std::collections::BTreeMap<String, SecurityProtocol>> {
    let map = protocol_map(config)?;
    let mut protocols = std::collections::BTreeMap::new();
    for listener in listeners {
        let protocol = map
            .get(&listener.name)
            .map(String::as_str)
            .unwrap_or(listener.name.as_str());
        let is_controller = controller_names.contains(&listener.name);
        let protocol = match protocol {
            "PLAINTEXT" => SecurityProtocol::Plaintext,
            "SSL" => SecurityProtocol::Ssl,
            "SASL_PLAINTEXT" if !is_controller => SecurityProtocol::SaslPlaintext,
            "SASL_SSL" if !is_controller => SecurityProtocol::SaslSsl,
            "SASL_PLAINTEXT" | "SASL_SSL" => bail!(
                "controller listener {} uses {protocol}; node links authenticate with \
                 certificates, not SASL: use SSL (mutual TLS) or PLAINTEXT",
                listener.name
            ),
            other => bail!(
                "listener {} has no security protocol: add {}:PLAINTEXT (or {}:SSL) to \
                 listener.security.protocol.map (found {other:?})",
                listener.name,
                listener.name,
                listener.name
            ),
        };
        protocols.insert(listener.name.clone(), protocol);
    }
    Ok(protocols)
}

/// `controller.quorum.voters`, or, when unset on a node that runs a controller, this node alone
/// at its controller listener (Kafka's `kafka-storage format --standalone`).
fn quorum_voters(
    config: &NodeConfig,
    node_id: i32,
    roles: Roles,
    listeners: &NodeListeners,
) -> anyhow::Result<String> {
    if let Some(voters) = config.get("controller.quorum.voters") {
        return Ok(voters);
    }
    match (&listeners.controller_bind, roles.controller) {
        (Some(bind), true) => {
            let (host, port) = bind
                .rsplit_once(':')
                .with_context(|| format!("controller listener {bind} has no port"))?;
            // A wildcard bind is reachable on loopback, which is where a lone voter talks to itself.
            let host = if host == "0.0.0.0" || host.is_empty() {
                "127.0.0.1"
            } else {
                host
            };
            Ok(format!("{node_id}@{host}:{port}"))
        }
        // No controller listener named: the controller serves on the classic default port.
        (None, true) => Ok(format!("{node_id}@127.0.0.1:9093")),
        (_, false) => {
            bail!("controller.quorum.voters is not set: a broker-only node must be told the voters")
        }
    }
}

/// How this node finds the controller quorum.
struct Quorum {
    /// The voters to start from (empty for a controller restarting in bootstrap mode: its own
    /// log has them).
    voters: BTreeMap<i32, String>,
    /// How they were given, for messages.
    voter_list: String,
    /// Found through `controller.quorum.bootstrap.servers`: never initialize a quorum.
    join_existing_quorum: bool,
    /// `cluster.id`, or the one the bootstrap servers reported.
    cluster_id: Option<String>,
}

/// `controller.quorum.voters` (static), or `controller.quorum.bootstrap.servers` (KIP-853:
/// ask a controller for the voters; a controller restarting with its log skips the question,
/// so a whole quorum can restart at once), or this node alone.
async fn find_quorum(
    config: &NodeConfig,
    node_id: i32,
    roles: Roles,
    listeners: &NodeListeners,
    meta_dir: &std::path::Path,
) -> anyhow::Result<Quorum> {
    let configured_cluster_id = config.get("cluster.id");
    let Some(spec) = config.get("controller.quorum.bootstrap.servers") else {
        let voter_list = quorum_voters(config, node_id, roles, listeners)?;
        return Ok(Quorum {
            voters: shoal_meta::parse_quorum_voters(&voter_list)?,
            voter_list,
            join_existing_quorum: false,
            cluster_id: configured_cluster_id,
        });
    };
    if config.get("controller.quorum.voters").is_some() {
        bail!(
            "controller.quorum.voters and controller.quorum.bootstrap.servers are both set: a \
             quorum is either static (voters) or found through bootstrap servers; keep one"
        );
    }
    let servers = shoal_meta::parse_bootstrap_servers(&spec)?;
    let voter_list = format!("controller.quorum.bootstrap.servers={spec}");
    if roles.controller && shoal_meta::quorum_marker::was_initialized(meta_dir)? {
        return Ok(Quorum {
            voters: BTreeMap::new(),
            voter_list,
            join_existing_quorum: true,
            cluster_id: configured_cluster_id,
        });
    }
    // Kafka's stock server.properties names only this node (`localhost:9093`, formatted with
    // `kafka-storage format --standalone`): a new one-voter quorum, not one to join.
    if roles.controller
        && let Some(bind) = &listeners.controller_bind
        && servers.iter().all(|s| is_own_controller_address(s, bind))
        && let Some(own) = servers.first()
    {
        tracing::info!(
            bootstrap_servers = %spec,
            "controller.quorum.bootstrap.servers names only this node: starting a one-voter \
             quorum (Kafka's --standalone); add controllers with shoalctl cluster quorum add-voter"
        );
        return Ok(Quorum {
            voters: BTreeMap::from([(node_id, own.clone())]),
            voter_list,
            join_existing_quorum: false,
            cluster_id: configured_cluster_id,
        });
    }
    let found = shoal_meta::discover_quorum(
        &servers,
        listeners.links.controller.clone().map(ClientTls::Node),
        Duration::from_millis(BOOTSTRAP_CONNECT_TIMEOUT_MS),
        Duration::from_millis(BOOTSTRAP_DISCOVERY_TIMEOUT_MS),
    )
    .await?;
    if let Some(configured) = &configured_cluster_id
        && *configured != found.cluster_id
    {
        bail!(
            "cluster.id is {configured}, but controller.quorum.bootstrap.servers belong to \
             cluster {}",
            found.cluster_id
        );
    }
    Ok(Quorum {
        voters: found.voters,
        voter_list,
        join_existing_quorum: true,
        cluster_id: Some(found.cluster_id),
    })
}

/// Whether bootstrap server `server` (host:port) is this node's own controller listener bound
/// at `bind` (host:port): the same port, and a loopback host or the bound host itself.
fn is_own_controller_address(server: &str, bind: &str) -> bool {
    let (Some((host, port)), Some((bind_host, bind_port))) =
        (server.rsplit_once(':'), bind.rsplit_once(':'))
    else {
        return false;
    };
    if port != bind_port {
        return false;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback || host == bind_host.trim_start_matches('[').trim_end_matches(']')
}

/// Connecting to one bootstrap server.
const BOOTSTRAP_CONNECT_TIMEOUT_MS: u64 = 1_000;
/// Asking the bootstrap servers, in rounds, before the start fails.
const BOOTSTRAP_DISCOVERY_TIMEOUT_MS: u64 = 120_000;

/// Runs the node; `bootstrap_scram` are the `--add-scram` credentials of a new cluster,
/// `bootstrap_features` its `--feature` levels.
pub async fn run(
    config: NodeConfig,
    bootstrap_scram: Vec<(String, shoal_sasl::ScramCredential)>,
    bootstrap_features: Vec<(String, i16)>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    for (name, reason) in config.ignored_settings() {
        tracing::warn!(setting = name, "{name} is accepted and ignored: {reason}");
    }
    let node_id = config.node_id()?;
    let roles = Roles::parse(&config.string("process.roles")?)?;
    let listeners = node_listeners(&config, roles)?;
    let links = &listeners.links;
    let admin_token = match config.get("admin.listener.token.file") {
        Some(path) if !path.trim().is_empty() => {
            Some(AdminToken::load(std::path::Path::new(path.trim()))?)
        }
        _ => None,
    };
    let data_dir = config.data_dir()?;
    let Quorum {
        voters,
        voter_list,
        join_existing_quorum,
        cluster_id,
    } = find_quorum(&config, node_id, roles, &listeners, &data_dir.join("meta")).await?;
    if roles.controller && !join_existing_quorum && !voters.contains_key(&node_id) {
        bail!(
            "node {node_id} runs a controller but is not in controller.quorum.voters={voter_list}"
        );
    }
    if !roles.controller && voters.contains_key(&node_id) {
        bail!(
            "node {node_id} is listed in controller.quorum.voters={voter_list}, but \
             process.roles=broker runs no controller; a voter must run one (broker,controller or \
             controller), and a broker-only node needs an id of its own"
        );
    }
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    // Before the metadata store opens: a nearly full disk gives back the space reserve, so the
    // node can start (it then refuses appends until space returns; docs/operations.md).
    let min_free_bytes = u64::try_from(config.i64("log.dir.min.free.bytes")?).unwrap_or(0);
    {
        let dir = data_dir.clone();
        tokio::task::spawn_blocking(move || DiskSpace::open(&dir, min_free_bytes))
            .await
            .context("checking the log directory's free space")?;
    }
    let settings = config.explicit_shared();
    // max.broker.partitions defaults to what the open-file limit allows (see fd_limit).
    let mut broker_defaults = settings.clone();
    let nofile = crate::fd_limit::raise_nofile_limit();
    if !broker_defaults.contains_key("max.broker.partitions") {
        let capacity = crate::fd_limit::partition_capacity(nofile.unwrap_or(u64::MAX));
        tracing::info!(max_broker_partitions = capacity, open_file_limit = ?nofile, "max.broker.partitions derived from the open-file limit");
        broker_defaults.insert("max.broker.partitions".to_string(), capacity.to_string());
    }
    let heartbeat_interval_ms = millis(&config, "broker.heartbeat.interval.ms", 10)?;
    let session_timeout_ms = millis(&config, "broker.session.timeout.ms", 100)?;
    if session_timeout_ms <= heartbeat_interval_ms {
        bail!(
            "broker.session.timeout.ms ({session_timeout_ms}) must be larger than \
             broker.heartbeat.interval.ms ({heartbeat_interval_ms})"
        );
    }

    let meta = if roles.controller {
        let meta = MetaNode::start(MetaConfig {
            cluster_id: cluster_id.clone(),
            broker_defaults: broker_defaults.clone(),
            voters: voters.clone(),
            join_existing_quorum,
            listen_address: listeners.controller_bind.clone(),
            broker_heartbeat_interval_ms: heartbeat_interval_ms,
            broker_session_timeout_ms: session_timeout_ms,
            bootstrap_scram_credentials: bootstrap_scram,
            bootstrap_features,
            tls: links.controller.clone(),
            ..MetaConfig::new(node_id, data_dir.join("meta"))
        })
        .await
        .map_err(|e| anyhow::anyhow!("metadata quorum failed to start: {e}"))?;
        Some(meta)
    } else {
        None
    };

    // A broker without a local voter follows the log remotely.
    let mut follower = None;
    let source = match (&meta, roles.broker) {
        (_, false) => None,
        (Some(meta), true) => Some(MetadataSource {
            images: meta.subscribe(),
            controller: meta.client(),
            directory_id: meta.directory_id(),
        }),
        (None, true) => {
            let meta_dir = data_dir.join("meta");
            let formatted = meta_dir
                .join(meta_properties::META_PROPERTIES_FILE)
                .exists();
            let configured = cluster_id.clone();
            if !formatted && configured.is_none() {
                bail!(
                    "{} is not formatted and no cluster.id is configured: a broker-only node \
                     must be told which cluster it joins",
                    data_dir.display()
                );
            }
            std::fs::create_dir_all(&meta_dir)
                .with_context(|| format!("cannot create {}", meta_dir.display()))?;
            let props = meta_properties::load_or_create(&meta_dir, node_id, configured.as_deref())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let known_leader = Arc::new(KnownLeader::default());
            let connect_timeout = Duration::from_millis(500);
            let voter_book = Arc::new(VoterBook::new(voters.clone()));
            let following = MetadataFollower::start(
                MetadataFollowerConfig {
                    cluster_id: props.cluster_id.clone(),
                    node_id,
                    voters: Arc::clone(&voter_book),
                    connect_timeout,
                    tls: links.controller.clone().map(ClientTls::Node),
                },
                Arc::clone(&known_leader),
            );
            let images = following.subscribe();
            follower = Some(following);
            Some(MetadataSource {
                images,
                controller: ControllerClient::remote(
                    &props.cluster_id,
                    node_id,
                    voter_book,
                    shoal_meta::node::DEFAULT_REQUEST_TIMEOUT_MS,
                    connect_timeout,
                    known_leader,
                    links.controller.clone().map(ClientTls::Node),
                ),
                directory_id: props.directory_id,
            })
        }
    };

    // The voters now (a controller restarting in bootstrap mode knows them only from its log),
    // for the single-node rule.
    let quorum_size = match &meta {
        Some(meta) => meta.raft_metrics().await.voters.len().max(1),
        None => voters.len(),
    };
    let broker = match source {
        Some(source) => Some(
            start_broker(
                &config,
                node_id,
                &data_dir,
                &listeners,
                heartbeat_interval_ms,
                quorum_size,
                source,
            )
            .await?,
        ),
        None => None,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let shutdown = ShutdownSignal(stop_rx);
    let mut servers = Vec::new();
    let mut tls_reloaders = links.spawn_reloaders(&config);
    if let Some(broker) = &broker {
        let handler = Arc::new(BrokerHandler::new(Arc::clone(broker)));
        // Seeds the decoy SCRAM credentials of unknown users; never leaves this process.
        let decoy_secret: Arc<[u8]> = {
            use ring::rand::SecureRandom;
            let mut secret = [0u8; 32];
            ring::rand::SystemRandom::new()
                .fill(&mut secret)
                .map_err(|_| anyhow::anyhow!("the system random source failed"))?;
            Arc::from(&secret[..])
        };
        // One request memory pool for every Kafka listener of the node.
        let request_pool = MemoryPool::new(config.usize("queued.max.request.bytes")?);
        let per_ip_overrides =
            shoal_net::parse_per_ip_overrides(&config.string("max.connections.per.ip.overrides")?)
                .map_err(|e| anyhow::anyhow!("max.connections.per.ip.overrides: {e}"))?;
        for listener in &listeners.kafka {
            let server_config = ServerConfig {
                socket_request_max_bytes: config.usize("socket.request.max.bytes")?,
                max_connections: config.usize("max.connections")?,
                max_connections_per_ip: config.usize("max.connections.per.ip")?,
                max_connections_per_ip_overrides: per_ip_overrides.clone(),
                queued_max_request_bytes: request_pool.capacity_bytes(),
                request_read_timeout_ms: millis(&config, "socket.request.read.timeout.ms", 1)?,
                response_write_timeout_ms: millis(&config, "socket.response.write.timeout.ms", 1)?,
                max_inflight_per_connection: config.usize("queued.max.requests.per.connection")?,
                idle_timeout_ms: millis(&config, "connections.max.idle.ms", 1000)?,
                ..ServerConfig::new(listener.name.clone(), listener.bind_addr()?)
            };
            let server =
                KafkaServer::bind(server_config, served_apis(broker), Arc::clone(&handler))
                    .await
                    .with_context(|| {
                        format!(
                            "cannot bind Kafka listener {}://{}:{}",
                            listener.name, listener.host, listener.port
                        )
                    })?
                    .with_memory_pool(Arc::clone(&request_pool));
            let server = match listeners.sasl.get(&listener.name) {
                Some(settings) => {
                    if let Some(jwks) = &settings.jwks {
                        tls_reloaders.push(jwks.spawn_reloader());
                    }
                    server.with_sasl(Arc::new(shoal_kafka::sasl::SaslConfig {
                        mechanisms: settings.mechanisms.clone(),
                        reauth_ms: settings.reauth_ms,
                        failed_delay_ms: settings.failed_delay_ms,
                        store: broker.credential_store(),
                        decoy_secret: Arc::clone(&decoy_secret),
                        oauth: settings.oauth.clone(),
                    }))
                }
                None => server,
            };
            let server = match listeners.tls.get(&listener.name) {
                Some(tls) => {
                    let interval = Duration::from_millis(u64::try_from(
                        config
                            .listener_get(&listener.name, "ssl.keystore.reload.interval.ms")
                            .and_then(|v| v.parse::<i64>().ok())
                            .unwrap_or(10_000)
                            .max(100),
                    )?);
                    tls_reloaders.push(tls.spawn_reloader(interval));
                    server.with_tls(Arc::clone(tls))
                }
                None => server,
            };
            tracing::info!(listener = %listener.name, addr = %server.local_addr(),
                tls = listeners.tls.contains_key(&listener.name),
                sasl = listeners.sasl.contains_key(&listener.name), "Kafka listener up");
            let signal = shutdown.clone();
            servers.push(tokio::spawn(server.run(signal.wait())));
        }
    }

    let readiness = Arc::new(Readiness::new(broker.clone(), meta.clone()));
    let admin_addr = config
        .string("admin.listener")?
        .parse()
        .with_context(|| "admin.listener must be host:port with a numeric host")?;
    let images = match (&broker, &meta) {
        (Some(broker), _) => broker.replicas.subscribe(),
        (None, Some(meta)) => meta.subscribe(),
        (None, None) => bail!("no role to run"),
    };
    let metrics = Arc::new(crate::metrics::StateSources {
        broker: broker.clone(),
        meta: meta.clone(),
        images: images.clone(),
        node_id,
    });
    let admin = AdminServer::bind(
        admin_addr,
        AdminState {
            readiness: Arc::clone(&readiness),
            meta: meta.clone(),
            images,
            node_id,
            metrics,
            token: admin_token,
            client_auth: listeners
                .admin_tls
                .as_ref()
                .is_some_and(|tls| tls.asks_for_client_certificates()),
        },
        listeners.admin_tls.clone(),
    )
    .await?;
    if let Some(tls) = &listeners.admin_tls {
        tls_reloaders.push(
            tls.spawn_reloader(Duration::from_millis(
                config
                    .listener_get(ADMIN_LISTENER_NAME, "ssl.keystore.reload.interval.ms")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(10_000)
                    .max(100),
            )),
        );
    }
    tracing::info!(addr = %admin.local_addr(), tls = listeners.admin_tls.is_some(),
        "admin listener up");
    let admin_task = tokio::spawn(admin.run(shutdown.clone().wait()));

    readiness.set_started(true);
    tracing::info!(
        node_id,
        roles = config.string("process.roles")?.as_str(),
        startup_ms = started.elapsed().as_millis() as u64,
        "shoal node started"
    );

    wait_for_signal().await?;
    tracing::info!("shutting down");
    readiness.set_started(false);
    if let Some(broker) = &broker
        && config.bool("controlled.shutdown.enable")?
    {
        broker.controlled_shutdown(Duration::from_secs(5)).await;
    }
    let _ = stop_tx.send(true);
    for reloader in tls_reloaders {
        reloader.abort();
    }
    let drain = Duration::from_millis(millis(&config, "shutdown.timeout.ms", 0)?);
    for server in servers {
        match tokio::time::timeout(drain, server).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "Kafka listener task failed"),
            Err(_) => tracing::warn!("Kafka listener did not drain in time"),
        }
    }
    if let Some(broker) = &broker {
        broker.shutdown().await;
    }
    if let Some(follower) = &follower {
        follower.stop();
    }
    if let Some(meta) = &meta
        && let Err(error) = meta.shutdown().await
    {
        tracing::warn!(%error, "metadata quorum shutdown failed");
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), admin_task).await;
    tracing::info!("shutdown complete");
    Ok(())
}

async fn start_broker(
    config: &NodeConfig,
    node_id: i32,
    data_dir: &std::path::Path,
    listeners: &NodeListeners,
    heartbeat_interval_ms: u64,
    quorum_voters: usize,
    source: MetadataSource,
) -> anyhow::Result<Arc<Broker>> {
    let (replication_bind, replication_advertised) = replication_listener(config)?;
    let settings = config.explicit_shared();
    let broker_config = BrokerConfig {
        node_id,
        quorum_voters,
        data_dir: data_dir.to_path_buf(),
        other_log_dirs: config.log_dirs()?.into_iter().skip(1).collect(),
        advertised_listeners: listeners
            .advertised
            .iter()
            .map(|l| AdvertisedListener {
                name: l.name.clone(),
                host: if l.host.is_empty() {
                    "127.0.0.1".into()
                } else {
                    l.host.clone()
                },
                port: l.port,
            })
            .collect(),
        rack: config.get("broker.rack"),
        auto_create_topics_enable: config.bool("auto.create.topics.enable")?,
        delete_topic_enable: config.bool("delete.topic.enable")?,
        fetch_max_bytes: config.usize("fetch.max.bytes")?,
        fetch_response_pool_bytes: config.usize("fetch.response.pool.bytes")?,
        maintenance_interval_ms: millis(config, "log.flush.scheduler.interval.ms", 10)?,
        high_watermark_checkpoint_interval_ms: millis(
            config,
            "replica.high.watermark.checkpoint.interval.ms",
            10,
        )?,
        retention_check_interval_ms: millis(config, "log.retention.check.interval.ms", 10)?,
        heartbeat_interval_ms,
        session_timeout_ms: millis(config, "broker.session.timeout.ms", 100)?,
        replication_bind,
        replication_advertised,
        replication_tls: listeners.links.replication.clone(),
        replica_lag_time_max_ms: config.i64("replica.lag.time.max.ms")?.max(1),
        log_cleaner_backoff_ms: millis(config, "log.cleaner.backoff.ms", 10)?,
        log_dir_min_free_bytes: u64::try_from(config.i64("log.dir.min.free.bytes")?).unwrap_or(0),
        settings,
    };
    Broker::start(broker_config, source).await
}

/// `replication.listener` (host:port to bind) and the host other brokers are told to use:
/// `advertised.replication.listener`'s, else the bound one, which must then be a real address.
fn replication_listener(
    config: &NodeConfig,
) -> anyhow::Result<(std::net::SocketAddr, Option<(String, u16)>)> {
    use std::net::ToSocketAddrs;
    let spec = config.string("replication.listener")?;
    let bind = spec
        .to_socket_addrs()
        .with_context(|| format!("replication.listener={spec:?} must be host:port"))?
        .next()
        .with_context(|| format!("replication.listener={spec:?} resolves to no address"))?;
    let advertised = match config.get("advertised.replication.listener") {
        Some(spec) if !spec.trim().is_empty() => {
            let (host, port) = spec.rsplit_once(':').with_context(|| {
                format!("advertised.replication.listener={spec:?} must be host:port")
            })?;
            let port: u16 = port.parse().with_context(|| {
                format!("advertised.replication.listener={spec:?} has a bad port")
            })?;
            Some((
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port,
            ))
        }
        _ => None,
    };
    if advertised.is_none() && bind.ip().is_unspecified() {
        bail!(
            "replication.listener={spec} binds every interface; set \
             advertised.replication.listener to the address other brokers reach this one at"
        );
    }
    Ok((bind, advertised))
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_like_kafkas() {
        let both = Roles {
            broker: true,
            controller: true,
        };
        assert_eq!(Roles::parse("broker,controller").unwrap(), both);
        assert_eq!(Roles::parse(" controller , broker ").unwrap(), both);
        assert!(Roles::parse("broker").unwrap().broker);
        assert!(!Roles::parse("broker").unwrap().controller);
        assert!(Roles::parse("controller").unwrap().controller);
        assert!(Roles::parse("").is_err());
        assert!(Roles::parse("broker,zookeeper").is_err());
    }

    #[test]
    fn a_bootstrap_server_is_this_node_on_its_port_at_a_loopback_or_its_bound_host() {
        for (server, bind, own) in [
            // Kafka's stock server.properties: CONTROLLER://:9093 and localhost:9093.
            ("localhost:9093", "0.0.0.0:9093", true),
            ("127.0.0.1:9093", "0.0.0.0:9093", true),
            ("[::1]:9093", "0.0.0.0:9093", true),
            ("10.0.0.7:9093", "10.0.0.7:9093", true),
            ("localhost:9094", "0.0.0.0:9093", false),
            ("10.0.0.8:9093", "10.0.0.7:9093", false),
            ("controller-2:9093", "0.0.0.0:9093", false),
            ("no-port", "0.0.0.0:9093", false),
        ] {
            assert_eq!(
                is_own_controller_address(server, bind),
                own,
                "{server} {bind}"
            );
        }
    }
}
