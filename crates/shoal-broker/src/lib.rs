//! The broker: hosts partitions and answers Kafka clients.
//!
//! It wires three things together and owns none of their logic: the metadata image (from
//! `shoal-meta`, which decides what exists and who leads), the partitions it hosts (from
//! `shoal-replica`, over `shoal-log`), and the Kafka front (`shoal-kafka`), whose requests the
//! `apis` modules answer. The broker applies metadata in one place (`ReplicaManager`) and
//! serves requests from the image it has applied, so a client never sees a topic whose
//! partitions this broker has not opened yet.
//!
//! Consumer groups (`groups`) ride on the same partitions: a group's coordinator is the leader
//! of its `__consumer_offsets` partition here, loaded when this broker becomes that leader.
//!
//! The broker does not care whether its node is also a controller: it gets a stream of
//! committed images and a [`ControllerClient`] ([`MetadataSource`]), from the local quorum
//! member on a combined node or from a remote follower on a broker-only one.

pub mod apis;
pub mod authorization;
mod blocking;
pub mod broker_loggers;
pub mod config;
pub mod credentials;
pub mod disk_space;
pub mod error_codes;
pub mod features;
pub mod groups;
pub mod handler;
pub mod internal_topic;
pub mod log_config;
pub mod log_dir_set;
pub mod log_dirs;
pub mod producer_ids;
pub mod quotas;
pub mod replica_manager;
pub mod replica_moves;
pub mod replication;
pub mod single_node;
pub mod time;
pub mod transactions;

use std::sync::Arc;
use std::time::Duration;

use log_dir_set::LogDirSet;
use shoal_meta::{
    BrokerLifecycle, BrokerLifecycleConfig, ControllerClient, Endpoint, MetadataImage, ReplicaRef,
    ReplicaReports, ReplicaSize,
};
use shoal_replica::MaintenanceDue;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{AdvertisedListener, BrokerConfig};
pub use handler::{BrokerHandler, served_apis, supported_apis};
pub use replica_manager::ReplicaManager;
use replication::REPLICATION_LISTENER_NAME;
use replication::fetcher::FetcherContext;
use replication::fetcher_manager::FetcherManager;
use replication::isr_manager::{IsrManagerConfig, NUDGE_CAPACITY, run_isr_manager};
use replication::server::ReplicationServer;
use replication::service::ReplicationService;

/// How long start-up waits for the metadata quorum before giving up.
const STARTUP_METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a broker gets its metadata and sends its controller requests.
#[derive(Clone)]
pub struct MetadataSource {
    /// Committed metadata images, newest last (a voter's state machine, or a follower's copy).
    pub images: watch::Receiver<Arc<MetadataImage>>,
    pub controller: Arc<ControllerClient>,
    /// This node's data directory id (`directory.id` in meta.properties), registered so a
    /// replaced disk is recognised.
    pub directory_id: uuid::Uuid,
}

pub struct Broker {
    pub config: BrokerConfig,
    pub controller: Arc<ControllerClient>,
    pub lifecycle: Arc<BrokerLifecycle>,
    pub replicas: Arc<ReplicaManager>,
    pub producer_ids: Arc<producer_ids::ProducerIdManager>,
    pub groups: groups::Groups,
    pub transactions: transactions::Transactions,
    /// `fetch.response.pool.bytes`: the memory Fetch responses may hold (see `apis::fetch`).
    pub fetch_pool: Arc<shoal_kafka::MemoryPool>,
    /// ACL authorization (`authorizer.class.name`); allows everything when none is configured.
    pub authorization: Arc<authorization::Authorization>,
    /// The feature levels ApiVersions reports, published from each applied image.
    pub features: shoal_kafka::SharedFeatures,
    /// Client quotas (KIP-546): produce and fetch byte rates measured per (user, client id).
    pub client_quotas: quotas::ClientQuotaManagers,
    fetchers: Arc<FetcherManager>,
    replication_server: std::sync::Mutex<Option<ReplicationServer>>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Broker {
    /// Registers with the controller, opens the partitions the metadata assigns here, starts
    /// following metadata changes and running log maintenance, and returns once the controller
    /// has unfenced this broker (it is then offered to clients and may lead).
    pub async fn start(
        config: BrokerConfig,
        source: MetadataSource,
    ) -> anyhow::Result<Arc<Broker>> {
        let groups_config = groups::GroupsConfig::from_settings(&config.settings)?;
        let txn_config = transactions::TxnConfig::from_settings(&config.settings)?;
        let authorization = Arc::new(authorization::Authorization::from_settings(
            &config.settings,
        )?);
        let cleaner_limits = log_config::cleaner_limits(&config.settings)?;
        // The replication listener is bound first: its real address goes into the registration.
        let replication_listener = tokio::net::TcpListener::bind(config.replication_bind)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot bind the replication listener {}: {e}",
                    config.replication_bind
                )
            })?;
        let bound = replication_listener.local_addr()?;
        let (host, port) = config
            .replication_advertised
            .clone()
            .unwrap_or_else(|| (bound.ip().to_string(), bound.port()));
        let replication_endpoint = Endpoint {
            name: REPLICATION_LISTENER_NAME.to_string(),
            host,
            port,
        };
        let cluster_id = source.images.borrow().cluster_id.clone();
        let log_dirs = {
            let (data_dir, others) = (config.data_dir.clone(), config.other_log_dirs.clone());
            let (directory_id, node_id) = (source.directory_id, config.node_id);
            let (cluster_id, min_free) = (cluster_id.clone(), config.log_dir_min_free_bytes);
            tokio::task::spawn_blocking(move || {
                LogDirSet::open(
                    &data_dir,
                    directory_id,
                    &others,
                    &cluster_id,
                    node_id,
                    min_free,
                )
            })
            .await
            .map_err(|e| anyhow::anyhow!("opening the log directories: {e}"))?
            .map_err(|e| anyhow::anyhow!(e))?
        };
        let directory_ids = log_dirs.directory_ids();
        let replicas = Arc::new(ReplicaManager::new(
            config.node_id,
            Arc::new(log_dirs),
            config.settings.clone(),
            source.images.borrow().clone(),
        ));
        let (nudge_tx, nudge_rx) = tokio::sync::mpsc::channel(NUDGE_CAPACITY);
        let txn_coordinator = Arc::new(std::sync::OnceLock::new());
        let replication_server = ReplicationServer::spawn(
            replication_listener,
            ReplicationService::new(
                &cluster_id,
                Arc::clone(&replicas),
                nudge_tx,
                Arc::clone(&txn_coordinator),
            ),
            config.replication_tls.clone(),
        )?;

        let mut listeners: Vec<Endpoint> = config
            .advertised_listeners
            .iter()
            .map(|l| Endpoint {
                name: l.name.clone(),
                host: l.host.clone(),
                port: l.port,
            })
            .collect();
        listeners.push(replication_endpoint);
        let lifecycle = BrokerLifecycle::start(
            Arc::clone(&source.controller),
            source.images.clone(),
            BrokerLifecycleConfig {
                broker_id: config.node_id,
                listeners,
                rack: config.rack.clone(),
                heartbeat_interval_ms: config.heartbeat_interval_ms,
                session_timeout_ms: config.session_timeout_ms,
                registration_timeout_ms: STARTUP_METADATA_TIMEOUT.as_millis() as u64,
                log_dirs: directory_ids,
            },
            replica_reports(&replicas),
        )
        .await;
        let lifecycle = match lifecycle {
            Ok(lifecycle) => lifecycle,
            Err(e) => {
                replication_server.stop().await;
                anyhow::bail!("broker registration failed: {e}");
            }
        };

        // Apply the caught-up image before serving anything, so strays are judged correctly
        // and every hosted partition is open when the first request arrives.
        let mut meta_images = source.images.clone();
        let first = meta_images.borrow_and_update().clone();
        authorization.update(&first);
        let applier = Arc::clone(&replicas);
        let applied = Arc::clone(&first);
        tokio::task::spawn_blocking(move || applier.apply_image(applied)).await?;
        let fetchers = Arc::new(FetcherManager::new(FetcherContext {
            cluster_id: cluster_id.clone(),
            broker_id: config.node_id,
            broker_epoch: lifecycle.broker_epoch(),
            replicas: Arc::clone(&replicas),
            images: source.images.clone(),
            tls: config
                .replication_tls
                .clone()
                .map(shoal_internode::ClientTls::Node),
        }));
        fetchers.update(&first);

        let producer_ids = Arc::new(producer_ids::ProducerIdManager::new(Arc::clone(
            &source.controller,
        )));
        let isr_manager = tokio::spawn(run_isr_manager(
            Arc::clone(&replicas),
            Arc::clone(&source.controller),
            IsrManagerConfig {
                broker_id: config.node_id,
                broker_epoch: lifecycle.broker_epoch(),
                lag_max_ms: config.replica_lag_time_max_ms,
            },
            nudge_rx,
        ));
        let groups = groups::Groups::new(
            groups_config,
            Arc::clone(&replicas),
            Arc::clone(&source.controller),
            config.quorum_voters,
            lifecycle.lease(),
        );
        // Transaction markers on `__consumer_offsets` decide the groups' pending offsets.
        replicas.set_marker_listener(groups.marker_listener());
        let transactions = transactions::Transactions::new(
            txn_config,
            Arc::clone(&replicas),
            Arc::clone(&source.controller),
            Arc::clone(&producer_ids),
            config.quorum_voters,
            transactions::PeerLinks {
                cluster_id,
                tls: config
                    .replication_tls
                    .clone()
                    .map(shoal_internode::ClientTls::Node),
            },
            lifecycle.lease(),
        );
        // The replication listener answers verification from now on.
        let _ = txn_coordinator.set(Arc::clone(&transactions.coordinator));
        let fetch_pool = shoal_kafka::MemoryPool::of_kind(
            shoal_kafka::PoolKind::FetchResponses,
            config.fetch_response_pool_bytes.max(1),
        );
        let client_quotas = quotas::ClientQuotaManagers::from_settings(&config.settings);
        let broker = Arc::new(Broker {
            fetch_pool,
            client_quotas,
            authorization,
            config,
            controller: source.controller,
            lifecycle,
            replicas,
            producer_ids,
            groups,
            transactions,
            features: shoal_kafka::SharedFeatures::default(),
            fetchers,
            replication_server: std::sync::Mutex::new(Some(replication_server)),
            tasks: std::sync::Mutex::new(Vec::new()),
        });
        let follower = tokio::spawn(follow_metadata(
            Arc::clone(&broker.authorization),
            Arc::clone(&broker.replicas),
            Arc::clone(&broker.fetchers),
            meta_images,
        ));
        broker.lock_tasks().push(isr_manager);
        let maintenance = tokio::spawn(run_maintenance(
            Arc::clone(&broker.replicas),
            MaintenanceSchedule {
                tick: Duration::from_millis(broker.config.maintenance_interval_ms.max(10)),
                retention: Duration::from_millis(broker.config.retention_check_interval_ms.max(10)),
                high_watermark_checkpoint: Duration::from_millis(
                    broker.config.high_watermark_checkpoint_interval_ms.max(10),
                ),
                producer_snapshot: PRODUCER_SNAPSHOT_INTERVAL,
                compaction: Duration::from_millis(broker.config.log_cleaner_backoff_ms.max(10)),
                cleaner_limits,
            },
        ));
        let disk_space: Vec<_> = broker
            .replicas
            .log_dirs
            .dirs()
            .iter()
            .map(|d| tokio::spawn(Arc::clone(&d.disk_space).run()))
            .collect();
        let features = tokio::spawn(features::publish_feature_levels(
            Arc::clone(&broker.replicas),
            broker.features.clone(),
        ));
        broker.lock_tasks().extend(
            [follower, maintenance, features]
                .into_iter()
                .chain(disk_space),
        );
        let group_tasks = broker.groups.spawn_tasks();
        broker.lock_tasks().extend(group_tasks);
        let txn_tasks = broker.transactions.spawn_tasks();
        broker.lock_tasks().extend(txn_tasks);
        if !broker
            .lifecycle
            .wait_until_unfenced(STARTUP_METADATA_TIMEOUT)
            .await
        {
            broker.shutdown().await;
            anyhow::bail!(
                "the controller did not unfence this broker within {STARTUP_METADATA_TIMEOUT:?}"
            );
        }
        Ok(broker)
    }

    /// The SCRAM credentials SASL listeners authenticate against (this broker's image).
    pub fn credential_store(&self) -> Arc<dyn shoal_kafka::sasl::CredentialStore> {
        Arc::new(credentials::ImageCredentials(Arc::clone(&self.replicas)))
    }

    /// Whether the controller has this broker unfenced (registered, caught up, heartbeating).
    pub fn is_unfenced(&self) -> bool {
        self.lifecycle.is_unfenced()
    }

    /// The metadata image requests are served from.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.replicas.image()
    }

    /// The node id clients should send controller-bound requests to. As in KRaft, clients never
    /// reach the controllers directly: any broker accepts admin requests and forwards them.
    pub fn controller_id_for_clients(&self) -> i32 {
        self.config.node_id
    }

    /// Waits until metadata at `offset` (a Raft log index) is in effect on this broker.
    pub async fn wait_for_metadata(&self, offset: u64, timeout: Duration) -> bool {
        self.replicas.wait_for_applied(offset, timeout).await
    }

    /// Controlled shutdown (Kafka's, on SIGTERM): the controller fences this broker now, moving
    /// the leadership of its partitions to other in-sync replicas, and ends its session so the
    /// next start registers at once. Bounded by `timeout`; on failure the session simply expires.
    pub async fn controlled_shutdown(&self, timeout: Duration) {
        self.lifecycle.controlled_shutdown(timeout).await;
    }

    /// The address followers fetch from (the bound replication listener).
    pub fn replication_address(&self) -> Option<std::net::SocketAddr> {
        self.replication_server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(ReplicationServer::local_address)
    }

    /// Stops background work and closes every log cleanly (flushed, clean-shutdown marker).
    pub async fn shutdown(&self) {
        self.lifecycle.stop();
        for task in self.lock_tasks().drain(..) {
            task.abort();
        }
        self.fetchers.stop();
        let server = self
            .replication_server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(server) = server {
            server.stop().await;
        }
        let replicas = Arc::clone(&self.replicas);
        if let Err(error) = tokio::task::spawn_blocking(move || replicas.close_all()).await {
            tracing::error!(%error, "closing logs failed");
        }
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the heartbeats report: replicas whose log cannot be opened, and the sizes of the
/// partitions this broker leads (the continuous balancer's weights). Held weakly: the
/// lifecycle must not keep a shut-down replica manager alive.
fn replica_reports(replicas: &Arc<ReplicaManager>) -> ReplicaReports {
    let offline = Arc::downgrade(replicas);
    let led = Arc::downgrade(replicas);
    ReplicaReports {
        offline: Arc::new(move || {
            offline.upgrade().map_or_else(Vec::new, |replicas| {
                replicas
                    .offline_partitions()
                    .into_iter()
                    .map(|((topic_id, partition), _)| ReplicaRef {
                        topic_id,
                        partition,
                    })
                    .collect()
            })
        }),
        sizes: Arc::new(move || {
            led.upgrade().map_or_else(Vec::new, |replicas| {
                replicas
                    .led_partitions()
                    .into_iter()
                    .filter_map(|((topic_id, partition), p)| {
                        let size_bytes = p.read_log(|log| Ok(log.size_bytes())).ok()?;
                        Some(ReplicaSize {
                            topic_id,
                            partition,
                            size_bytes,
                        })
                    })
                    .collect()
            })
        }),
    }
}

async fn follow_metadata(
    authorization: Arc<authorization::Authorization>,
    replicas: Arc<ReplicaManager>,
    fetchers: Arc<FetcherManager>,
    mut images: watch::Receiver<Arc<MetadataImage>>,
) {
    while images.changed().await.is_ok() {
        let image = images.borrow_and_update().clone();
        // Before the image takes effect: whoever waits for it sees its ACLs in force.
        authorization.update(&image);
        let applier = Arc::clone(&replicas);
        let applied = Arc::clone(&image);
        if let Err(error) = tokio::task::spawn_blocking(move || applier.apply_image(applied)).await
        {
            tracing::error!(%error, "applying a metadata image failed");
            continue;
        }
        fetchers.update(&image);
    }
}

/// Periodic producer snapshots bound how much log a crash restart replays to rebuild
/// idempotent-producer state; a clean shutdown always writes one.
const PRODUCER_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(60);

struct MaintenanceSchedule {
    tick: Duration,
    retention: Duration,
    high_watermark_checkpoint: Duration,
    producer_snapshot: Duration,
    compaction: Duration,
    cleaner_limits: shoal_log::CleanerLimits,
}

async fn run_maintenance(replicas: Arc<ReplicaManager>, schedule: MaintenanceSchedule) {
    let mut ticker = tokio::time::interval(schedule.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = tokio::time::Instant::now();
    let periods = [
        schedule.retention,
        schedule.high_watermark_checkpoint,
        schedule.producer_snapshot,
        schedule.compaction,
    ];
    let mut next = periods.map(|period| start + period);
    loop {
        ticker.tick().await;
        let now = tokio::time::Instant::now();
        let mut due = [false; 4];
        for i in 0..4 {
            if now >= next[i] {
                due[i] = true;
                next[i] = now + periods[i];
            }
        }
        let due = MaintenanceDue {
            retention: due[0],
            high_watermark_checkpoint: due[1],
            producer_snapshot: due[2],
            compaction: due[3].then_some(schedule.cleaner_limits),
        };
        let worker = Arc::clone(&replicas);
        if let Err(error) = tokio::task::spawn_blocking(move || worker.run_maintenance(due)).await {
            tracing::error!(%error, "log maintenance task failed");
        }
    }
}
