//! What the broker needs from the node's configuration, already parsed and typed.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// An address clients are told to connect to, under a listener name (Kafka's advertised.listeners).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedListener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    /// Voters of the metadata quorum (`controller.quorum.voters`), for the single-node rule.
    pub quorum_voters: usize,
    /// The first log directory (`log.dirs`): it also holds the metadata (`meta/`).
    pub data_dir: PathBuf,
    /// The other `log.dirs` entries (JBOD), each a log directory of its own.
    pub other_log_dirs: Vec<PathBuf>,
    pub advertised_listeners: Vec<AdvertisedListener>,
    pub rack: Option<String>,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    /// fetch.max.bytes: the most record bytes one Fetch response carries, whatever the client
    /// asks (bounds the memory a single request can pin).
    pub fetch_max_bytes: usize,
    /// fetch.response.pool.bytes: record bytes of Fetch responses read but not yet written to
    /// their sockets, across all connections (see `apis::fetch`).
    pub fetch_response_pool_bytes: usize,
    /// How often retention, the flush policy and HW checkpoints run (log.retention.check.interval.ms
    /// bounds retention; flushing runs at log.flush.scheduler.interval.ms).
    pub maintenance_interval_ms: u64,
    pub retention_check_interval_ms: u64,
    /// replica.high.watermark.checkpoint.interval.ms (Kafka: 5000).
    pub high_watermark_checkpoint_interval_ms: u64,
    /// broker.heartbeat.interval.ms: how often the broker tells the active controller it is
    /// alive (fenced after broker.session.timeout.ms of silence).
    pub heartbeat_interval_ms: u64,
    /// broker.session.timeout.ms: the lease a heartbeat grants when the controller does not
    /// state its own (see `shoal_meta::ControllerLease`).
    pub session_timeout_ms: u64,
    /// replication.listener: where followers fetch from this broker (port 0 = any).
    pub replication_bind: std::net::SocketAddr,
    /// advertised.replication.listener (host, port): what other brokers connect to; `None` =
    /// the bound address.
    pub replication_advertised: Option<(String, u16)>,
    /// Mutual TLS on replication (`REPLICATION:SSL`): the listener and the fetchers' links to
    /// leaders. `None`: plaintext.
    pub replication_tls: Option<std::sync::Arc<shoal_internode::NodeTls>>,
    /// replica.lag.time.max.ms: a follower not caught up for this long leaves the ISR.
    pub replica_lag_time_max_ms: i64,
    /// log.cleaner.backoff.ms: how often compacted logs are checked for cleaning.
    pub log_cleaner_backoff_ms: u64,
    /// log.dir.min.free.bytes: appends are refused while the log directory has less free.
    pub log_dir_min_free_bytes: u64,
    /// The broker settings given explicitly (file, env or flag), by the name given; everything
    /// else is the schema's default (`shoal_config::effective`). Topics inherit from these, and
    /// DescribeConfigs tells a given setting from a defaulted one.
    pub settings: BTreeMap<String, String>,
}
