//! `MetaNode`: one metadata quorum member, wired together and started.
//!
//! Start-up: check the directory identity (`meta.properties`), open sled, load the state
//! machine from its last snapshot, start openraft (which re-applies committed entries) with the
//! gRPC transport, bootstrap or check the membership, then serve the controller gRPC API.
//!
//! **Bootstrap exactly once, even when every voter starts at the same moment.** Every voter
//! whose storage is pristine calls `Raft::initialize` with the *same* full static voter set
//! (`controller.quorum.voters`). openraft documents this as safe: "More than one node performing
//! `initialize()` with the same config is safe, with different config will result in split
//! brain condition" (openraft-0.9.25 `src/raft/mod.rs`, doc of `Raft::initialize`), and
//! `src/docs/cluster_control/cluster-formation.md` ("with the same `membership`, it is safe, as
//! the voting protocol ensures consistency"): each node writes the identical membership entry at
//! log id `(term 0, node 0, index 0)` and the election decides the rest. openraft refuses to
//! initialize a node with any log or vote, so a restart never re-bootstraps. The "different
//! config" hazard is closed twice: a node whose stored membership differs from its configured
//! voters refuses to start, and every Raft RPC carries the sender's voter ids, which the
//! receiver must share (see `raft::grpc_service`). The gRPC server starts only after
//! `initialize`, so no peer can reach a node between "pristine" and "initialized".
//!
//! **Leader at start-up.** A lone voter elects itself at once instead of waiting out an
//! election timeout, and `start` waits (bounded) until it leads, as before. With several
//! voters `start` returns without waiting: the node is a working member as soon as it serves,
//! and a quorum may need peers that start later. Use [`MetaNode::wait_for_leader`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::net::SocketAddr;

use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::broker_defaults::BrokerDefaults;
use crate::client::ControllerClient;
use crate::controller::{
    Controller, ControllerSettings, LeaderBalancing, balancer::run_replica_balancing,
    run_leader_balancing, run_session_checks,
};
use crate::controller_server::{ControllerServer, ServerParts};
use crate::error::MetaError;
use crate::image::MetadataImage;
use crate::meta_properties;
use crate::metadata_log::Observers;
use crate::quorum_marker;
use crate::quorum_status::{Directories, QuorumStatus, quorum_status};
use crate::quorum_voters::format_quorum_voters;
use crate::raft::grpc_network::{DirectoryContext, GrpcNetworkFactory, MembershipSource};
use crate::raft::log_store::SledLogStore;
use crate::raft::state_machine::MetaStateMachine;
use crate::raft::types::{MetaRaft, NodeId, to_kafka_node_id, to_raft_node_id};
use crate::records::MetadataRecord;
use crate::voter_book::VoterBook;
use crate::voter_directory::{self, ObservedDirectories, Standing};

/// Directory under `data_dir` holding the sled database.
pub const SLED_DIR: &str = "raft";
/// How long to retry opening sled while a previous instance in this process releases its lock.
const SLED_LOCK_WAIT_MS: u64 = 2_000;
/// sled's page cache bound; metadata is small, and sled's default (1 GiB) is far more than needed.
const SLED_CACHE_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;
/// The voter list when none is configured: this node alone, on Kafka's controller port.
pub const DEFAULT_CONTROLLER_ADDRESS: &str = "127.0.0.1:9093";
/// Default `broker.heartbeat.interval.ms` (see [`MetaConfig::broker_session_timeout_ms`]).
pub const DEFAULT_BROKER_HEARTBEAT_INTERVAL_MS: u64 = 250;
/// Default `broker.session.timeout.ms` (see [`MetaConfig::broker_session_timeout_ms`]).
pub const DEFAULT_BROKER_SESSION_TIMEOUT_MS: u64 = 1_500;
/// Default bound on waiting for a controller request (Kafka's request.timeout.ms is 30 s).
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Raw snapshot bytes per InstallSnapshot RPC (well under `MAX_RAFT_MESSAGE_BYTES`).
const SNAPSHOT_CHUNK_BYTES: u64 = 4 * 1024 * 1024;

/// Configuration of a metadata node.
#[derive(Debug, Clone)]
pub struct MetaConfig {
    /// This node's id (Kafka `node.id`), ≥ 0.
    pub node_id: i32,
    /// The metadata directory, conventionally `<data>/meta`.
    pub data_dir: PathBuf,
    /// The cluster id to require; `None` = generate on first start, reuse afterwards.
    pub cluster_id: Option<String>,
    /// Broker configs by Kafka name (`num.partitions`, `log.retention.ms`, ...).
    pub broker_defaults: BTreeMap<String, String>,
    /// The static voter set, Kafka's `controller.quorum.voters`: node id → `host:port` its peers
    /// connect to (parse the Kafka string with [`crate::parse_quorum_voters`]). Must contain
    /// `node_id`; every voter must be given the same set. Default: this node alone at
    /// [`DEFAULT_CONTROLLER_ADDRESS`].
    pub voters: BTreeMap<i32, String>,
    /// This node joins a quorum that already exists (`controller.quorum.bootstrap.servers`,
    /// KIP-853): it never initializes one, need not be among `voters` (there, the voters the
    /// bootstrap servers named), and votes once AddVoter makes it a voter.
    pub join_existing_quorum: bool,
    /// Where the controller gRPC server binds (`host:port`, port 0 = ephemeral), if anywhere.
    /// Required with more than one voter (unless a listener is passed to
    /// [`MetaNode::start_with_listener`]); a lone voter may run without a server.
    pub listen_address: Option<String>,
    /// Raft heartbeat; also the deadline of every AppendEntries RPC (openraft 0.9 uses the
    /// heartbeat interval as that deadline, see `replication/mod.rs`).
    ///
    /// Defaults 50 ms heartbeat, 150–300 ms election timeout, for fast failover: measured in
    /// `tests/quorum.rs`, a new leader is agreed 0.5–0.7 s after the leader stops (openraft
    /// needs about one election timeout to notice plus one for the leader lease to expire at
    /// the voters), against a 2 s target. Tried 100 ms / 300–600 ms: about 1.0–1.25 s, too
    /// close to the target. The cost is sensitivity to stalls: an AppendEntries round trip
    /// must fit in 50 ms, so the transport splits batches above 1 MiB, and a node starved of
    /// CPU for ~150 ms may cause a needless election (a leader change, not a safety issue).
    /// Across slow networks raise all three together (e.g. 150 / 500–1000).
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many entries since the last one.
    pub snapshot_interval_entries: u64,
    /// Entries kept in the log behind the latest snapshot (for slow followers).
    pub entries_kept_after_snapshot: u64,
    /// Bound on waiting for a proposal to commit.
    pub request_timeout_ms: u64,
    /// Bound on waiting for a leader at start-up.
    pub startup_timeout_ms: u64,
    /// Kafka's `broker.heartbeat.interval.ms`: how often a broker tells the active controller
    /// it is alive. Default 250 ms (Kafka: 2000). See `broker_session_timeout_ms`.
    pub broker_heartbeat_interval_ms: u64,
    /// Kafka's `broker.session.timeout.ms`: a broker silent for longer is fenced, and its
    /// partitions get new leaders. Default 1500 ms (Kafka: 9000).
    ///
    /// **Why 250 / 1500.** The target is "leadership moved in under 2 s after a broker dies".
    /// A dead broker's last heartbeat was at most at its death, so it is fenced at most
    /// `session + check interval` later (the check runs every `heartbeat / 2` = 125 ms): 1.625 s.
    /// The fence entry (FenceBroker + every PartitionChange) then commits in one Raft round trip
    /// (tens of ms with the 50 ms Raft heartbeat) and is applied by the brokers: ~1.7 s, inside
    /// 2 s with room for a slow commit. Six heartbeats per session means a live broker is only
    /// fenced after ~5 consecutive heartbeats are lost or late (a 1.25 s stall). KRaft's
    /// defaults (2000 / 9000, the same ratio) fail over in ~9 s; we trade 8× the heartbeat
    /// traffic (one tiny RPC per broker per 250 ms) for that speed. Raise both together on
    /// slow or overloaded hosts.
    pub broker_session_timeout_ms: u64,
    /// SCRAM credentials a *new* cluster starts with (`shoal --add-scram`, Kafka's
    /// `kafka-storage format --add-scram`): committed in the bootstrap entry with
    /// `metadata.version`, so a secured cluster has its first user before any client can
    /// connect. Ignored (with a warning) when the quorum already exists.
    pub bootstrap_scram_credentials: Vec<(String, shoal_sasl::ScramCredential)>,
    /// Feature levels a *new* cluster finalizes instead of this binary's newest (`shoal
    /// --feature NAME=LEVEL`, Kafka's `kafka-storage format --feature`), e.g.
    /// `transaction.version=0` for a cluster that starts on the classic transaction protocol
    /// and is raised later with UpdateFeatures. Checked at every start; applied only when the
    /// quorum is created (give every voter the same ones: the first leader's apply).
    pub bootstrap_features: Vec<(String, i16)>,
    /// Mutual TLS on the controller links (`CONTROLLER:SSL`): this node's listener and its
    /// connections to the other voters. `None`: plaintext.
    pub tls: Option<Arc<shoal_internode::NodeTls>>,
}

impl MetaConfig {
    pub fn new(node_id: i32, data_dir: impl Into<PathBuf>) -> Self {
        MetaConfig {
            node_id,
            data_dir: data_dir.into(),
            cluster_id: None,
            broker_defaults: BTreeMap::new(),
            voters: BTreeMap::from([(node_id, DEFAULT_CONTROLLER_ADDRESS.to_string())]),
            join_existing_quorum: false,
            listen_address: None,
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            snapshot_interval_entries: 1_000,
            entries_kept_after_snapshot: 100,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            startup_timeout_ms: 10_000,
            broker_heartbeat_interval_ms: DEFAULT_BROKER_HEARTBEAT_INTERVAL_MS,
            broker_session_timeout_ms: DEFAULT_BROKER_SESSION_TIMEOUT_MS,
            bootstrap_scram_credentials: Vec::new(),
            bootstrap_features: Vec::new(),
            tls: None,
        }
    }

    /// How this node's connections to the voters are secured.
    pub fn client_tls(&self) -> Option<shoal_internode::ClientTls> {
        self.tls.clone().map(shoal_internode::ClientTls::Node)
    }

    /// How long connecting to another voter may take before it counts as unreachable.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.election_timeout_max_ms.max(100))
    }

    /// How often the active controller looks for expired broker sessions.
    pub fn session_check_interval_ms(&self) -> u64 {
        (self.broker_heartbeat_interval_ms / 2).clamp(10, 1_000)
    }

    fn raft_config(&self, cluster_id: &str) -> Result<openraft::Config, MetaError> {
        openraft::Config {
            cluster_name: cluster_id.to_string(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_interval_entries),
            max_in_snapshot_log_to_keep: self.entries_kept_after_snapshot,
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
            ..Default::default()
        }
        .validate()
        .map_err(|e| MetaError::Config(format!("raft timing: {e}")))
    }
}

/// Raft progress of this node, for status pages and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftStatus {
    pub node_id: i32,
    /// `Leader`, `Follower`, `Candidate`, `Learner` or `Shutdown`.
    pub state: String,
    pub current_term: u64,
    pub leader_id: Option<i32>,
    pub last_log_index: Option<u64>,
    pub committed_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub voters: Vec<i32>,
}

/// A running metadata node: Raft member, state machine, controller and controller gRPC server.
pub struct MetaNode {
    node_id: i32,
    cluster_id: String,
    /// The metadata directory's id (`meta.properties`): new when the directory was wiped.
    directory_id: uuid::Uuid,
    voters: Arc<VoterBook>,
    raft: MetaRaft,
    images: watch::Receiver<Arc<MetadataImage>>,
    controller: Arc<Controller>,
    client: Arc<ControllerClient>,
    observers: Arc<Observers>,
    observed_directories: Arc<ObservedDirectories>,
    /// Released at shutdown so the directory can be reopened while this value still lives.
    db: Mutex<Option<sled::Db>>,
    /// Taken (and stopped) at shutdown.
    server: Mutex<Option<ControllerServer>>,
    /// The broker session checks and the leader balancing; aborted at shutdown.
    session_checks: Mutex<Vec<JoinHandle<()>>>,
    server_address: Option<SocketAddr>,
    shut_down: AtomicBool,
}

impl MetaNode {
    /// Opens (or formats) the metadata directory, starts the Raft node and, if
    /// `config.listen_address` is set, the controller gRPC server on it.
    pub async fn start(config: MetaConfig) -> Result<Arc<MetaNode>, MetaError> {
        let listener = match &config.listen_address {
            Some(address) => {
                Some(
                    TcpListener::bind(address)
                        .await
                        .map_err(|source| MetaError::Bind {
                            address: address.clone(),
                            source,
                        })?,
                )
            }
            None => None,
        };
        Self::start_inner(config, listener).await
    }

    /// Like [`MetaNode::start`], but serves the controller gRPC API on an already bound
    /// `listener` (`config.listen_address` is ignored). Tests bind port 0 first, so every
    /// node's real address is known before any config is built.
    pub async fn start_with_listener(
        config: MetaConfig,
        listener: TcpListener,
    ) -> Result<Arc<MetaNode>, MetaError> {
        Self::start_inner(config, Some(listener)).await
    }

    async fn start_inner(
        config: MetaConfig,
        listener: Option<TcpListener>,
    ) -> Result<Arc<MetaNode>, MetaError> {
        let started = Instant::now();
        let raft_id = to_raft_node_id(config.node_id).ok_or_else(|| {
            MetaError::Config(format!("node id {} must not be negative", config.node_id))
        })?;
        check_voters(&config, listener.is_some())?;
        let (bootstrap_metadata_version, bootstrap_transaction_version) =
            crate::features::bootstrap_levels(&config.bootstrap_features)
                .map_err(MetaError::Config)?;
        let formatted = config
            .data_dir
            .join(meta_properties::META_PROPERTIES_FILE)
            .exists();
        if (config.voters.len() > 1 || config.join_existing_quorum)
            && config.cluster_id.is_none()
            && !formatted
        {
            return Err(MetaError::Config(format!(
                "{} is not formatted and no cluster.id is configured: with several voters every \
                 voter must be formatted with the same cluster id, or each would invent its own",
                config.data_dir.display()
            )));
        }
        let defaults = BrokerDefaults::from_configs(config.broker_defaults.clone())
            .map_err(MetaError::Config)?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| MetaError::Io {
            path: config.data_dir.clone(),
            source,
        })?;
        let props = meta_properties::load_or_create(
            &config.data_dir,
            config.node_id,
            config.cluster_id.as_deref(),
        )?;
        let raft_config = Arc::new(config.raft_config(&props.cluster_id)?);

        let store_path = config.data_dir.join(SLED_DIR);
        let initialized_before = quorum_marker::was_initialized(&config.data_dir)?;
        let damaged = |reason: String| MetaError::DamagedStore {
            path: store_path.clone(),
            marker: quorum_marker::marker_path(&config.data_dir),
            reason,
        };
        if initialized_before && !store_path.exists() {
            return Err(damaged("the directory is missing".to_string()));
        }
        let db = match open_sled(&store_path).await {
            Ok(db) => db,
            // An I/O error (a full disk, permissions) is not damage: report it as it is.
            Err(MetaError::Sled(e)) if initialized_before && !matches!(e, sled::Error::Io(_)) => {
                return Err(damaged(e.to_string()));
            }
            Err(e) => return Err(e),
        };
        let log_store = SledLogStore::open(&db)?;
        // Refuse a store this binary cannot read before openraft reads or writes any of it.
        log_store.check_readable()?;
        let (state_machine, images) = MetaStateMachine::open(&db, &props.cluster_id)?;
        let journal = state_machine.journal();
        let observers = Arc::new(Observers::default());
        let observed_directories = Arc::new(ObservedDirectories::default());

        let voters = Arc::new(VoterBook::new(config.voters.clone()));
        let membership: MembershipSource = Arc::default();
        let network = GrpcNetworkFactory::new(
            &props.cluster_id,
            config.node_id,
            config.voters.clone(),
            // A handshake slower than the shortest election timeout is as good as no answer.
            Duration::from_millis(config.election_timeout_min_ms),
            // Retry an unreachable peer a few heartbeats later: quick to notice a restarted
            // peer, without spinning on a dead one.
            Duration::from_millis(config.heartbeat_interval_ms.saturating_mul(4).max(100)),
            config.client_tls(),
            DirectoryContext {
                own: props.directory_id,
                images: images.clone(),
                observed: Arc::clone(&observed_directories),
                membership: Arc::clone(&membership),
            },
        );
        let raft = MetaRaft::new(raft_id, raft_config, network, log_store, state_machine)
            .await
            .map_err(|e| MetaError::Raft(e.to_string()))?;
        // Before any RPC can be sent: the first election timeout is still ahead.
        let _ = membership.set(raft.metrics());
        follow_membership(&raft, &voters);
        // Before any election timeout can fire: a node whose directory is not its voter's
        // does not campaign.
        let mut standing = apply_standing(
            &raft,
            &images.borrow(),
            config.node_id,
            props.directory_id,
            None,
        );

        let store_initialized = raft
            .is_initialized()
            .await
            .map_err(|e| MetaError::Raft(e.to_string()))?;
        if let Err(reason) = quorum_marker::check_store(initialized_before, store_initialized) {
            let _ = raft.shutdown().await;
            return Err(damaged(reason.to_string()));
        }
        let initialized_now = match bootstrap_or_check_membership(&raft, &config).await {
            Ok(initialized_now) => initialized_now,
            Err(e) => {
                let _ = raft.shutdown().await;
                return Err(e);
            }
        };
        if let Err(e) =
            quorum_marker::record_initialized(&config.data_dir, &props.cluster_id, config.node_id)
        {
            let _ = raft.shutdown().await;
            return Err(e);
        }
        // A quorum initialized by this start is a new cluster: it finalizes the newest
        // metadata.version (Kafka's bootstrap metadata.version), or the one `--feature` chose.
        // An existing one keeps its levels.
        let bootstrap_metadata_version = initialized_now.then_some(bootstrap_metadata_version);
        if !initialized_now && !config.bootstrap_features.is_empty() {
            tracing::warn!(
                "--feature applies only when a cluster is created; this one exists, so its \
                 feature levels are left as they are (use UpdateFeatures)"
            );
        }
        let bootstrap_records: Vec<MetadataRecord> = if initialized_now {
            config
                .bootstrap_scram_credentials
                .iter()
                .map(|(name, credential)| MetadataRecord::UserScramCredential {
                    name: name.clone(),
                    credential: credential.clone(),
                })
                .collect()
        } else {
            if !config.bootstrap_scram_credentials.is_empty() {
                tracing::warn!(
                    "--add-scram applies only when a cluster is created; this one exists, so \
                     its credentials are left as they are (use AlterUserScramCredentials)"
                );
            }
            Vec::new()
        };

        let controller = Controller::new(
            raft.clone(),
            images.clone(),
            defaults,
            ControllerSettings {
                node_id: config.node_id,
                request_timeout_ms: config.request_timeout_ms,
                broker_session_timeout_ms: config.broker_session_timeout_ms,
                bootstrap_metadata_version,
                bootstrap_transaction_version,
                bootstrap_records,
                voters: Arc::clone(&voters),
                directory_id: props.directory_id,
                observed_directories: Arc::clone(&observed_directories),
            },
        );
        let client = ControllerClient::with_local(
            Arc::clone(&controller),
            &props.cluster_id,
            config.node_id,
            Arc::clone(&voters),
            config.request_timeout_ms,
            config.connect_timeout(),
            config.client_tls(),
        );
        let server = match listener {
            Some(listener) => Some(
                ControllerServer::spawn(ServerParts {
                    listener,
                    raft: raft.clone(),
                    cluster_id: props.cluster_id.clone(),
                    node_id: config.node_id,
                    voters: Arc::clone(&voters),
                    controller: controller.clone(),
                    request_timeout_ms: config.request_timeout_ms,
                    journal,
                    images: images.clone(),
                    observers: Arc::clone(&observers),
                    tls: config.tls.clone(),
                    directory_id: props.directory_id,
                    observed_directories: Arc::clone(&observed_directories),
                })
                .map_err(|source| MetaError::Bind {
                    address: config.listen_address.clone().unwrap_or_default(),
                    source,
                })?,
            ),
            None => None,
        };
        let server_address = server.as_ref().map(ControllerServer::local_address);

        let node = Arc::new(MetaNode {
            node_id: config.node_id,
            cluster_id: props.cluster_id,
            directory_id: props.directory_id,
            voters,
            session_checks: Mutex::new(vec![
                tokio::spawn(run_session_checks(
                    Arc::downgrade(&controller),
                    Duration::from_millis(config.session_check_interval_ms()),
                )),
                tokio::spawn(run_leader_balancing(
                    Arc::downgrade(&controller),
                    LeaderBalancing::from_configs(&config.broker_defaults),
                )),
                tokio::spawn(run_replica_balancing(
                    Arc::downgrade(&controller),
                    Duration::from_millis(
                        shoal_config::effective(
                            &config.broker_defaults,
                            "shoal.balancer.check.interval.ms",
                        )
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(30_000),
                    ),
                )),
                tokio::spawn({
                    let raft = raft.clone();
                    let mut images = images.clone();
                    let (node_id, own) = (config.node_id, props.directory_id);
                    async move {
                        while images.changed().await.is_ok() {
                            let image = images.borrow_and_update().clone();
                            standing = apply_standing(&raft, &image, node_id, own, Some(standing));
                        }
                    }
                }),
            ]),
            controller,
            client,
            observers,
            observed_directories,
            raft,
            images,
            db: Mutex::new(Some(db)),
            server: Mutex::new(server),
            server_address,
            shut_down: AtomicBool::new(false),
        });
        if config.voters.len() == 1 && !config.join_existing_quorum {
            // Nobody else can win; do not sit out an election timeout.
            let waited = node.elect_sole_voter(raft_id).await;
            let waited = match waited {
                Ok(()) => node.wait_for_leader(config.startup_timeout_ms).await,
                Err(e) => Err(e),
            };
            if let Err(e) = waited {
                let _ = node.shutdown().await;
                return Err(e);
            }
            // So a new one-voter cluster is at its level before anything registers (with
            // several voters the leader does it in its first session check).
            if bootstrap_metadata_version.is_some()
                && let Err(e) = node.controller.bootstrap_features().await
            {
                tracing::warn!(error = %e, "could not finalize metadata.version yet; will retry");
            }
        }
        tracing::info!(
            node_id = node.node_id,
            cluster_id = %node.cluster_id,
            directory_id = %meta_properties::format_directory_id(node.directory_id),
            voters = %format_quorum_voters(&node.voters.voters()),
            controller_address = ?node.server_address,
            elapsed_ms = started.elapsed().as_millis() as u64,
            applied_index = node.image().last_applied_index,
            "metadata node started"
        );
        Ok(node)
    }

    async fn elect_sole_voter(&self, raft_id: NodeId) -> Result<(), MetaError> {
        let sole_voter = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let voters: BTreeSet<NodeId> = m.membership_config.membership().voter_ids().collect();
            m.current_leader.is_none() && voters == BTreeSet::from([raft_id])
        };
        if sole_voter {
            self.raft
                .trigger()
                .elect()
                .await
                .map_err(|e| MetaError::Raft(e.to_string()))?;
        }
        Ok(())
    }

    /// Waits until this node knows a leader (itself or a peer), for at most `timeout_ms`.
    pub async fn wait_for_leader(&self, timeout_ms: u64) -> Result<i32, MetaError> {
        let metrics = self
            .raft
            .wait(Some(Duration::from_millis(timeout_ms)))
            .metrics(|m| m.current_leader.is_some(), "a metadata leader is known")
            .await
            .map_err(|_| MetaError::Timeout {
                what: "a metadata leader".to_string(),
                timeout_ms,
            })?;
        metrics
            .current_leader
            .and_then(to_kafka_node_id)
            .ok_or_else(|| MetaError::Raft("leader id out of range".to_string()))
    }

    /// The address the controller gRPC server listens on, if it runs (the real port when
    /// bound to port 0).
    pub fn controller_address(&self) -> Option<SocketAddr> {
        self.server_address
    }

    /// The controller voters now (node id → `host:port`): configured, then following the
    /// Raft membership.
    pub fn voters(&self) -> BTreeMap<i32, String> {
        self.voters.voters()
    }

    /// The shared voter book (see [`VoterBook`]).
    pub fn voter_book(&self) -> Arc<VoterBook> {
        Arc::clone(&self.voters)
    }

    /// The quorum as this node sees it (DescribeQuorum); replication details on the leader only.
    pub async fn describe_quorum(&self) -> QuorumStatus {
        let image = self.image();
        let mut reported = self.observed_directories.all();
        reported.insert(self.node_id, self.directory_id);
        quorum_status(
            &self.raft,
            &self.cluster_id,
            self.node_id,
            &self.voters.voters(),
            &self.observers,
            Directories {
                recorded: &image.voter_directories,
                reported,
            },
        )
        .await
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// This node's metadata directory id (see `meta_properties`).
    pub fn directory_id(&self) -> uuid::Uuid {
        self.directory_id
    }

    /// The latest applied image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.images.borrow().clone()
    }

    /// A receiver that sees every newly applied image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.images.clone()
    }

    /// How this node sends controller requests (run here when this node leads, forwarded
    /// otherwise).
    pub fn client(&self) -> Arc<ControllerClient> {
        self.client.clone()
    }

    /// This voter's active-controller logic (tests and the node's own wiring).
    pub fn controller(&self) -> Arc<Controller> {
        self.controller.clone()
    }

    /// The Raft handle, for the RPC server of the multi-voter transport.
    pub fn raft(&self) -> &MetaRaft {
        &self.raft
    }

    /// The current Raft leader's node id, if known.
    pub fn leader_id(&self) -> Option<i32> {
        self.raft
            .metrics()
            .borrow()
            .current_leader
            .and_then(to_kafka_node_id)
    }

    /// Raft progress (term, commit, applied, snapshot, purge).
    pub async fn raft_metrics(&self) -> RaftStatus {
        let committed_index = self
            .raft
            .with_raft_state(|st| st.committed.map(|c| c.index))
            .await
            .ok()
            .flatten();
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        RaftStatus {
            node_id: self.node_id,
            state: format!("{:?}", m.state),
            current_term: m.current_term,
            leader_id: m.current_leader.and_then(to_kafka_node_id),
            last_log_index: m.last_log_index,
            committed_index,
            applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            voters: m
                .membership_config
                .membership()
                .voter_ids()
                .filter_map(to_kafka_node_id)
                .collect(),
        }
    }

    /// Waits until the image includes the entry at `log_index`; returns that image.
    pub async fn wait_for_applied(
        &self,
        log_index: u64,
        timeout_ms: u64,
    ) -> Result<Arc<MetadataImage>, MetaError> {
        let mut images = self.images.clone();
        let wait = images.wait_for(|image| image.last_applied_index >= log_index);
        match tokio::time::timeout(Duration::from_millis(timeout_ms), wait).await {
            Ok(Ok(image)) => Ok(image.clone()),
            Ok(Err(_)) => Err(MetaError::ShutDown),
            Err(_) => Err(MetaError::Timeout {
                what: format!("metadata log index {log_index} to be applied"),
                timeout_ms,
            }),
        }
    }

    /// Stops the controller gRPC server and Raft, and flushes sled. Idempotent.
    pub async fn shutdown(&self) -> Result<(), MetaError> {
        if self.shut_down.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        // Stop judging broker liveness before anything else. Stopping the server below refuses
        // new heartbeats at once but drains in-flight RPCs (a broker-only node's metadata long
        // poll holds it for up to a second), while this node's Raft still leads and the other
        // voters still send brokers here. A session check running then would fence every live
        // broker that could not get through; the next leader grants them a full session instead.
        let session_checks = self
            .session_checks
            .lock()
            .map_or_else(|_| Vec::new(), |mut t| std::mem::take(&mut *t));
        for task in &session_checks {
            task.abort();
        }
        for task in session_checks {
            // Returns once the task is gone, so no check overlaps the drain below.
            let _ = task.await;
        }
        // Stop answering peers next, so nobody sees a half-stopped Raft node.
        let server = self.server.lock().map_or(None, |mut server| server.take());
        if let Some(server) = server {
            server.stop().await;
        }
        self.client.stop();
        self.controller.stop();
        self.raft
            .shutdown()
            .await
            .map_err(|e| MetaError::Raft(format!("raft shutdown: {e}")))?;
        let db = self.db.lock().map_or(None, |mut db| db.take());
        if let Some(db) = db {
            db.flush_async().await?;
        }
        tracing::info!(node_id = self.node_id, "metadata node shut down");
        Ok(())
    }
}

/// Opens sled, retrying briefly if its file lock is still held by a previous instance in this
/// process that is finishing its shutdown.
async fn open_sled(path: &Path) -> Result<sled::Db, MetaError> {
    let deadline = Instant::now() + Duration::from_millis(SLED_LOCK_WAIT_MS);
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(SLED_CACHE_CAPACITY_BYTES)
            .open()
        {
            Ok(db) => return Ok(db),
            // sled reports a held lock only through the message of an `Other` I/O error.
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Checks the voter set against this node's role and transport.
fn check_voters(config: &MetaConfig, has_listener: bool) -> Result<(), MetaError> {
    let voters = format_quorum_voters(&config.voters);
    if config.join_existing_quorum {
        if !has_listener {
            return Err(MetaError::Config(
                "a controller joining an existing quorum needs a controller listener: the \
                 leader replicates to it there"
                    .to_string(),
            ));
        }
        return Ok(());
    }
    if !config.voters.contains_key(&config.node_id) {
        return Err(MetaError::Config(format!(
            "node {} is not in controller.quorum.voters '{voters}'; this node runs a \
             controller, so it must be one of the voters",
            config.node_id
        )));
    }
    if let Some(negative) = config.voters.keys().find(|id| **id < 0) {
        return Err(MetaError::Config(format!(
            "controller.quorum.voters '{voters}' has negative node id {negative}"
        )));
    }
    if config.voters.len() > 1 && !has_listener {
        return Err(MetaError::Config(format!(
            "controller.quorum.voters '{voters}' names several voters, but this node has no \
             controller listener to reach it on"
        )));
    }
    Ok(())
}

/// On pristine storage, initializes the quorum with the full static voter set (safe on every
/// voter at once, see the module docs); otherwise checks the stored voters against the
/// configured ones.
/// Initializes a new quorum (returns `true`) or checks the stored voters against the
/// configured ones (returns `false`).
/// Turns elections on or off for this node from its standing in `image` (see
/// `crate::voter_directory`); logs when the standing changes. Returns the standing.
fn apply_standing(
    raft: &MetaRaft,
    image: &MetadataImage,
    node_id: i32,
    own: uuid::Uuid,
    previous: Option<Standing>,
) -> Standing {
    let now = voter_directory::standing(&image.voter_directories, node_id, own);
    if previous == Some(now) {
        return now;
    }
    raft.runtime_config().elect(now.may_campaign());
    match now {
        Standing::Replaced { recorded } => tracing::error!(
            node_id,
            directory_id = %meta_properties::format_directory_id(own),
            recorded = %meta_properties::format_directory_id(recorded),
            "this controller's metadata directory is not the one its voter was recorded with (its \
             disk was wiped or replaced): its answers do not count and it does not stand for \
             election until `shoalctl cluster quorum add-voter --id {node_id}` names this \
             directory"
        ),
        Standing::Voter if previous.is_some() => tracing::info!(
            node_id,
            directory_id = %meta_properties::format_directory_id(own),
            "this controller's metadata directory is its voter's: it votes and stands for election"
        ),
        _ => {}
    }
    now
}

async fn bootstrap_or_check_membership(
    raft: &MetaRaft,
    config: &MetaConfig,
) -> Result<bool, MetaError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| MetaError::Raft(e.to_string()))?;
    if !initialized && config.join_existing_quorum {
        tracing::info!(
            node_id = config.node_id,
            voters = %format_quorum_voters(&config.voters),
            "joining the existing metadata quorum: waiting for its leader to add this node \
             (shoalctl cluster quorum add-voter)"
        );
        return Ok(false);
    }
    if !initialized {
        let mut members = BTreeMap::new();
        for (id, address) in &config.voters {
            if let Some(raft_id) = to_raft_node_id(*id) {
                members.insert(raft_id, BasicNode::new(address));
            }
        }
        match raft.initialize(members).await {
            Ok(()) => {
                tracing::info!(
                    node_id = config.node_id,
                    voters = %format_quorum_voters(&config.voters),
                    "initialized metadata quorum"
                );
                return Ok(true);
            }
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                tracing::info!(error = %e, "metadata quorum already initialized");
            }
            Err(e) => return Err(MetaError::Raft(e.to_string())),
        }
    }
    let (index, stored): (Option<u64>, Vec<i32>) = raft
        .with_raft_state(|st| {
            let effective = st.membership_state.effective();
            (
                effective.log_id().map(|l| l.index),
                effective
                    .membership()
                    .voter_ids()
                    .filter_map(to_kafka_node_id)
                    .collect(),
            )
        })
        .await
        .map_err(|e| MetaError::Raft(e.to_string()))?;
    let configured: Vec<i32> = config.voters.keys().copied().collect();
    match stored_membership_verdict(index, &stored, &configured, config.join_existing_quorum) {
        Ok(()) => {}
        Err(StoredMembership::Changed) => tracing::info!(
            node_id = config.node_id,
            stored = ?stored,
            configured = ?configured,
            "the controller voters changed since the quorum was created \
             (add-voter / remove-voter): the stored voters are the quorum's, and the \
             configured ones only a starting point for finding it"
        ),
        Err(StoredMembership::Mismatch) => {
            return Err(MetaError::VoterSetMismatch { stored, configured });
        }
    }
    Ok(false)
}

/// How the stored membership relates to the configured voters.
#[derive(Debug, PartialEq, Eq)]
enum StoredMembership {
    /// Changed by AddVoter / RemoveVoter since creation: the stored one is the quorum's.
    Changed,
    /// Still the one the quorum was created with, and not the configured list: this node was
    /// configured for another quorum, and must not start.
    Mismatch,
}

/// Checks the stored membership (log `index`, `stored` voters) against `configured`.
fn stored_membership_verdict(
    index: Option<u64>,
    stored: &[i32],
    configured: &[i32],
    joining: bool,
) -> Result<(), StoredMembership> {
    if stored == configured {
        return Ok(());
    }
    match index {
        Some(0) if !joining => Err(StoredMembership::Mismatch),
        _ => Err(StoredMembership::Changed),
    }
}

/// Keeps `book` on the voters of this node's Raft membership, at their stored addresses.
fn follow_membership(raft: &MetaRaft, book: &Arc<VoterBook>) {
    let mut metrics = raft.metrics();
    let book = Arc::clone(book);
    tokio::spawn(async move {
        let mut seen = None;
        loop {
            let learnt = {
                let m = metrics.borrow_and_update();
                let config = &m.membership_config;
                if seen != Some(*config.log_id()) {
                    seen = Some(*config.log_id());
                    let membership = config.membership();
                    Some(
                        membership
                            .voter_ids()
                            .filter_map(|id| {
                                let node = membership.get_node(&id)?;
                                Some((to_kafka_node_id(id)?, node.addr.clone()))
                            })
                            .collect::<BTreeMap<i32, String>>(),
                    )
                } else {
                    None
                }
            };
            if let Some(learnt) = learnt {
                book.update(&learnt);
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_membership_against_the_configured_voters() {
        use StoredMembership::*;
        // (membership index, stored voters, configured voters, joining, verdict)
        type Case<'a> = (
            Option<u64>,
            &'a [i32],
            &'a [i32],
            bool,
            Result<(), StoredMembership>,
        );
        let cases: &[Case] = &[
            (Some(0), &[1, 2, 3], &[1, 2, 3], false, Ok(())),
            (Some(0), &[1, 2, 3], &[1, 2, 4], false, Err(Mismatch)),
            (Some(0), &[1, 2, 3], &[1, 2], false, Err(Mismatch)),
            (Some(57), &[1, 2, 3, 7], &[1, 2, 3], false, Err(Changed)),
            (Some(90), &[1, 2], &[1, 2, 3], false, Err(Changed)),
            // A joined node's configured list is what the bootstrap servers said.
            (Some(0), &[1, 2, 3], &[1, 2], true, Err(Changed)),
        ];
        for (index, stored, configured, joining, expected) in cases {
            assert_eq!(
                stored_membership_verdict(*index, stored, configured, *joining),
                *expected,
                "{index:?} {stored:?} {configured:?}"
            );
        }
    }
}
