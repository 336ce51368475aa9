//! `MetaNode`: one metadata quorum member, wired together and started.
//!
//! Start-up: check the directory identity (`meta.properties`), open sled, load the state
//! machine from its last snapshot, start openraft (which re-applies committed entries), and on
//! the very first start initialize the quorum with this node as its only voter. Openraft refuses
//! to initialize a node that has any log or vote, so "exactly once" holds across crashes. Then
//! wait (bounded) for a leader; a lone voter that restarts without a committed vote elects itself
//! at once instead of waiting out an election timeout.
//!
//! Adding voters later means a real `RaftNetworkFactory` and membership changes; nothing here
//! assumes a single voter except the bootstrap member list.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, SnapshotPolicy};
use tokio::sync::watch;

use crate::broker_defaults::BrokerDefaults;
use crate::controller::Controller;
use crate::error::MetaError;
use crate::image::MetadataImage;
use crate::meta_properties;
use crate::raft::log_store::SledLogStore;
use crate::raft::network::UnreachableNetworkFactory;
use crate::raft::state_machine::MetaStateMachine;
use crate::raft::types::{MetaRaft, NodeId, to_kafka_node_id, to_raft_node_id};

/// Directory under `data_dir` holding the sled database.
pub const SLED_DIR: &str = "raft";
/// How long to retry opening sled while a previous instance in this process releases its lock.
const SLED_LOCK_WAIT_MS: u64 = 2_000;
/// sled's page cache bound; metadata is small, and sled's default (1 GiB) is far more than needed.
const SLED_CACHE_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

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
    /// This node's controller address, recorded in the Raft membership for the future transport.
    pub controller_address: String,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many entries since the last one.
    pub snapshot_interval_entries: u64,
    /// Entries kept in the log behind the latest snapshot (for slow followers).
    pub entries_kept_after_snapshot: u64,
    /// Bound on waiting for a proposal to commit.
    pub request_timeout_ms: u64,
    /// Bound on waiting for a leader at start-up.
    pub startup_timeout_ms: u64,
}

impl MetaConfig {
    pub fn new(node_id: i32, data_dir: impl Into<PathBuf>) -> Self {
        MetaConfig {
            node_id,
            data_dir: data_dir.into(),
            cluster_id: None,
            broker_defaults: BTreeMap::new(),
            controller_address: String::new(),
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            snapshot_interval_entries: 1_000,
            entries_kept_after_snapshot: 100,
            request_timeout_ms: 30_000,
            startup_timeout_ms: 10_000,
        }
    }

    fn raft_config(&self, cluster_id: &str) -> Result<openraft::Config, MetaError> {
        openraft::Config {
            cluster_name: cluster_id.to_string(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_interval_entries),
            max_in_snapshot_log_to_keep: self.entries_kept_after_snapshot,
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

/// A running metadata node: Raft member, state machine and controller.
pub struct MetaNode {
    node_id: i32,
    cluster_id: String,
    raft: MetaRaft,
    images: watch::Receiver<Arc<MetadataImage>>,
    controller: Arc<Controller>,
    /// Released at shutdown so the directory can be reopened while this value still lives.
    db: Mutex<Option<sled::Db>>,
    shut_down: AtomicBool,
}

impl MetaNode {
    /// Opens (or formats) the metadata directory and starts the Raft node.
    pub async fn start(config: MetaConfig) -> Result<Arc<MetaNode>, MetaError> {
        let started = Instant::now();
        let raft_id = to_raft_node_id(config.node_id).ok_or_else(|| {
            MetaError::Config(format!("node id {} must not be negative", config.node_id))
        })?;
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

        let db = open_sled(&config.data_dir.join(SLED_DIR)).await?;
        let log_store = SledLogStore::open(&db)?;
        let (state_machine, images) = MetaStateMachine::open(&db, &props.cluster_id)?;

        let raft = MetaRaft::new(
            raft_id,
            raft_config,
            UnreachableNetworkFactory,
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| MetaError::Raft(e.to_string()))?;

        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| MetaError::Raft(e.to_string()))?;
        if !initialized {
            let members = BTreeMap::from([(raft_id, BasicNode::new(&config.controller_address))]);
            match raft.initialize(members).await {
                Ok(()) => tracing::info!(node_id = config.node_id, "initialized metadata quorum"),
                Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                    tracing::info!(error = %e, "metadata quorum already initialized");
                }
                Err(e) => return Err(MetaError::Raft(e.to_string())),
            }
        }

        let node = Arc::new(MetaNode {
            node_id: config.node_id,
            cluster_id: props.cluster_id,
            controller: Arc::new(Controller::new(
                raft.clone(),
                images.clone(),
                defaults,
                config.request_timeout_ms,
            )),
            raft,
            images,
            db: Mutex::new(Some(db)),
            shut_down: AtomicBool::new(false),
        });
        node.wait_for_leader(raft_id, config.startup_timeout_ms)
            .await?;
        tracing::info!(
            node_id = node.node_id,
            cluster_id = %node.cluster_id,
            elapsed_ms = started.elapsed().as_millis() as u64,
            applied_index = node.image().last_applied_index,
            "metadata node started"
        );
        Ok(node)
    }

    async fn wait_for_leader(&self, raft_id: NodeId, timeout_ms: u64) -> Result<(), MetaError> {
        let sole_voter = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let voters: BTreeSet<NodeId> = m.membership_config.membership().voter_ids().collect();
            m.current_leader.is_none() && voters == BTreeSet::from([raft_id])
        };
        if sole_voter {
            // Nobody else can win; do not sit out an election timeout.
            self.raft
                .trigger()
                .elect()
                .await
                .map_err(|e| MetaError::Raft(e.to_string()))?;
        }
        self.raft
            .wait(Some(Duration::from_millis(timeout_ms)))
            .metrics(|m| m.current_leader.is_some(), "a metadata leader is known")
            .await
            .map_err(|_| MetaError::Timeout {
                what: "a metadata leader".to_string(),
                timeout_ms,
            })?;
        Ok(())
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The latest applied image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.images.borrow().clone()
    }

    /// A receiver that sees every newly applied image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.images.clone()
    }

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

    /// Stops Raft and flushes sled. Idempotent.
    pub async fn shutdown(&self) -> Result<(), MetaError> {
        if self.shut_down.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
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
