//! Helpers shared by the MetaNode integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use std::time::Duration;

use shoal_meta::{
    BrokerError, BrokerHeartbeat, BrokerLifecycle, BrokerLifecycleConfig,
    BrokerRegistrationRequest, ControllerClient, CreateTopic, Endpoint, HeartbeatReply, MetaConfig,
    MetaNode, MetadataImage,
};
use uuid::Uuid;

pub fn config(dir: &Path) -> MetaConfig {
    let mut config = MetaConfig::new(1, dir.join("meta"));
    config.request_timeout_ms = 10_000;
    config
}

pub async fn start(dir: &Path) -> Arc<MetaNode> {
    MetaNode::start(config(dir)).await.expect("node starts")
}

pub fn broker(id: i32) -> BrokerRegistrationRequest {
    BrokerRegistrationRequest {
        broker_id: id,
        incarnation_id: Uuid::from_u128(0xb0b0_0000 + id as u128),
        listeners: vec![Endpoint {
            name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port: 9092 + id as u16,
        }],
        rack: None,
        supported_features: Some(shoal_meta::features::supported_features()),
        log_dirs: vec![Uuid::from_u128(0xd1d1_0000 + id as u128)],
    }
}

/// Registers brokers `1..=n` through `node` and returns once all are unfenced. They heartbeat
/// until the returned lifecycles are dropped.
#[must_use]
pub async fn register_brokers(node: &MetaNode, n: i32) -> Vec<Arc<BrokerLifecycle>> {
    let mut brokers = Vec::new();
    for id in 1..=n {
        brokers.push(live_broker(node, id, 250).await);
    }
    brokers
}

/// One broker registered through `node`, heartbeating every `heartbeat_ms`, once unfenced.
pub async fn live_broker(node: &MetaNode, id: i32, heartbeat_ms: u64) -> Arc<BrokerLifecycle> {
    live_broker_in_rack(node, id, None, heartbeat_ms).await
}

/// [`live_broker`] with a `broker.rack`.
pub async fn live_broker_in_rack(
    node: &MetaNode,
    id: i32,
    rack: Option<&str>,
    heartbeat_ms: u64,
) -> Arc<BrokerLifecycle> {
    registered_broker(node.client(), node.subscribe(), id, rack, heartbeat_ms).await
}

/// Broker `id` registered through `client` with the images of `images`, once unfenced.
async fn registered_broker(
    client: Arc<ControllerClient>,
    images: tokio::sync::watch::Receiver<Arc<MetadataImage>>,
    id: i32,
    rack: Option<&str>,
    heartbeat_ms: u64,
) -> Arc<BrokerLifecycle> {
    let template = broker(id);
    let lifecycle = BrokerLifecycle::start(
        client,
        images,
        BrokerLifecycleConfig {
            broker_id: id,
            listeners: template.listeners,
            rack: rack.map(str::to_string),
            heartbeat_interval_ms: heartbeat_ms,
            session_timeout_ms: 1500,
            registration_timeout_ms: 10_000,
            log_dirs: Vec::new(),
        },
        shoal_meta::client::ReplicaReports::none(),
    )
    .await
    .expect("broker registers");
    assert!(
        lifecycle.wait_until_unfenced(Duration::from_secs(10)).await,
        "broker {id} was not unfenced"
    );
    lifecycle
}

/// A broker-only node's view of the quorum: it follows the metadata log and sends its
/// requests over gRPC, starting from `voters` and following the voter set as it changes.
pub struct RemoteBroker {
    pub follower: shoal_meta::MetadataFollower,
    pub lifecycle: Arc<BrokerLifecycle>,
    /// The voters as this broker knows them.
    pub voters: Arc<shoal_meta::VoterBook>,
}

/// Broker `id`, registered through the voters at `voters`, once unfenced.
pub async fn remote_broker(
    cluster_id: &str,
    voters: &BTreeMap<i32, String>,
    id: i32,
) -> RemoteBroker {
    let book = Arc::new(shoal_meta::VoterBook::new(voters.clone()));
    let known = Arc::new(shoal_meta::KnownLeader::default());
    let follower = shoal_meta::MetadataFollower::start(
        shoal_meta::MetadataFollowerConfig {
            cluster_id: cluster_id.to_string(),
            node_id: id,
            voters: Arc::clone(&book),
            connect_timeout: Duration::from_millis(300),
            tls: None,
        },
        Arc::clone(&known),
    );
    let client = ControllerClient::remote(
        cluster_id,
        id,
        Arc::clone(&book),
        3_000,
        Duration::from_millis(300),
        known,
        None,
    );
    let lifecycle = registered_broker(client, follower.subscribe(), id, None, 250).await;
    RemoteBroker {
        follower,
        lifecycle,
        voters: book,
    }
}

/// One heartbeat of `broker_id` at `epoch`, reporting `caught_up`.
pub async fn heartbeat(
    client: &ControllerClient,
    broker_id: i32,
    broker_epoch: i64,
    caught_up: u64,
) -> Result<HeartbeatReply, BrokerError> {
    let heartbeat = BrokerHeartbeat {
        broker_id,
        broker_epoch,
        caught_up_metadata_offset: caught_up,
        want_shutdown: false,
        offline_replicas: Vec::new(),
        replica_sizes: Vec::new(),
    };
    client
        .broker_heartbeat(heartbeat, client.request_timeout())
        .await
}

pub fn topic(name: &str, partitions: i32, rf: i16) -> CreateTopic {
    CreateTopic {
        name: name.into(),
        num_partitions: Some(partitions),
        replication_factor: Some(rf),
        ..Default::default()
    }
}

pub fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The image without the applied index (a restart may append a leader's blank entry).
pub fn content(image: &MetadataImage) -> MetadataImage {
    let mut image = image.clone();
    image.last_applied_index = 0;
    image
}

/// Multi-node tests of one binary run one at a time: several three-voter clusters with 50 ms
/// heartbeats on a loaded 2-core CI machine starve each other into needless elections.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Opens sled at `path`, waiting (bounded) for a node or handle dropped just before to release
/// its file lock: sled's flusher thread lets go a moment after the last `Db` is dropped, so a
/// test that reads the store right after a shutdown would otherwise fail under load.
pub fn open_released_sled(path: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("sled does not open at {}: {e}", path.display()),
        }
    }
}

/// The leader every node of `nodes` agrees on (one of them), within `timeout`.
pub async fn agreed_leader(nodes: &BTreeMap<i32, Arc<MetaNode>>, timeout: Duration) -> i32 {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let leaders: Vec<Option<i32>> = nodes.values().map(|n| n.leader_id()).collect();
        if let Some(Some(leader)) = leaders.first()
            && nodes.contains_key(leader)
            && leaders.iter().all(|l| l == &Some(*leader))
        {
            return *leader;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no agreed leader: {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
