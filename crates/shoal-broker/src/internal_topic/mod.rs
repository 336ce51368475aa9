//! Creating an internal topic (`__consumer_offsets`, `__transaction_state`) the first time a
//! client looks for its coordinator, as Kafka does.
//!
//! Creation waits until the topic's replication factor's worth of brokers are registered and
//! unfenced rather than settling for fewer copies: a topic created with one replica would keep
//! one forever, and every committed offset or transaction state would die with that broker.
//! Until then FindCoordinator answers COORDINATOR_NOT_AVAILABLE (retriable) and the broker logs
//! why. The one exception is a cluster that is and always was a single node
//! (`crate::single_node`): there the topic is created with one replica and a `min.insync.replicas`
//! no larger than that.

pub mod authority;
pub mod leadership;
pub mod reader;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use shoal_meta::{ControllerClient, CreateTopic, MetadataImage};

use crate::replica_manager::ReplicaManager;
use crate::single_node::{ClusterShape, single_node_replication_factor};

/// How long a creating FindCoordinator waits for the new topic to be in effect here.
const CREATE_WAIT: Duration = Duration::from_secs(5);

/// What an internal topic is created with.
#[derive(Debug, Clone)]
pub struct InternalTopicSpec {
    pub name: &'static str,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// The setting `replication_factor` came from, for the operator's log lines.
    pub replication_factor_setting: &'static str,
    /// `min.insync.replicas` of the topic, if it sets one (capped at the replica count).
    pub min_insync_replicas: Option<i32>,
    /// Topic-level configs (compaction, segment size, ...).
    pub configs: BTreeMap<String, String>,
}

/// Creates an internal topic unless it exists; one creation at a time per broker.
pub struct InternalTopicCreator {
    spec: InternalTopicSpec,
    controller: Arc<ControllerClient>,
    replicas: Arc<ReplicaManager>,
    /// Voters of the metadata quorum, for the single-node rule.
    quorum_voters: usize,
    in_flight: tokio::sync::Mutex<()>,
    /// When "not enough brokers" was last logged: clients retry FindCoordinator every second.
    last_warned: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How often the "not enough brokers" warning may repeat.
const WARN_EVERY: Duration = Duration::from_secs(30);

impl InternalTopicCreator {
    pub fn new(
        spec: InternalTopicSpec,
        controller: Arc<ControllerClient>,
        replicas: Arc<ReplicaManager>,
        quorum_voters: usize,
    ) -> Self {
        Self {
            spec,
            controller,
            replicas,
            quorum_voters,
            in_flight: tokio::sync::Mutex::new(()),
            last_warned: std::sync::Mutex::new(None),
        }
    }

    /// Tries to create the topic and waits briefly until it is applied here. Returns whether it
    /// exists now.
    pub async fn ensure(&self) -> bool {
        let _single = self.in_flight.lock().await;
        let name = self.spec.name;
        let setting = self.spec.replication_factor_setting;
        let image = self.replicas.image();
        if image.topic_by_name(name).is_some() {
            return true;
        }
        let shape = ClusterShape::of(&image, self.quorum_voters);
        let mut replication_factor = self.spec.replication_factor;
        if let Some(reduced) = single_node_replication_factor(replication_factor, shape) {
            tracing::warn!(
                setting,
                configured = replication_factor,
                replicas = reduced,
                "single-node cluster: creating {name} with {reduced} replica(s); it keeps \
                 that many when brokers are added (reassign it to add copies)"
            );
            replication_factor = reduced;
        }
        let brokers = shape.brokers_unfenced;
        let wanted = usize::try_from(replication_factor).unwrap_or(usize::MAX);
        if brokers < wanted {
            let mut last = self.last_warned.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < WARN_EVERY) {
                return false;
            }
            *last = Some(std::time::Instant::now());
            tracing::warn!(
                brokers,
                setting,
                configured = self.spec.replication_factor,
                "not creating {name} until enough brokers are registered; its coordinators are \
                 unavailable until then (lower {setting} on a smaller cluster)"
            );
            return false;
        }
        let mut configs = self.spec.configs.clone();
        if let Some(min_isr) = self.spec.min_insync_replicas {
            let min_isr = min_isr.min(i32::from(replication_factor)).max(1);
            configs.insert("min.insync.replicas".to_string(), min_isr.to_string());
        }
        let request = CreateTopic {
            name: name.to_string(),
            num_partitions: Some(self.spec.num_partitions),
            replication_factor: Some(replication_factor),
            assignments: None,
            configs,
        };
        let outcome = self.controller.create_topics(vec![request], false).await;
        match outcome.results.into_iter().next() {
            Some(Ok(created)) => tracing::info!(
                partitions = created.num_partitions,
                replication_factor = created.replication_factor,
                "created {name}"
            ),
            Some(Err(error)) => {
                tracing::debug!(%error, "creating {name} did not succeed here")
            }
            None => {}
        }
        if let Some(index) = outcome.log_index {
            self.replicas.wait_for_applied(index, CREATE_WAIT).await;
        }
        self.replicas.image().topic_by_name(name).is_some()
    }
}

/// Where a coordinator is, as FindCoordinator answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorLocation {
    /// The leader of the key's partition (it may still be loading).
    Broker(i32),
    /// No topic yet, or the partition has no live leader: retriable.
    NotAvailable,
}

/// The live leader of `key`'s partition of the internal `topic` in `image` (Kafka's
/// `partitionFor`: the Java string hash of the key modulo the partition count).
pub fn coordinator_of(topic: &str, key: &str, image: &MetadataImage) -> CoordinatorLocation {
    let Some(topic) = image.topic_by_name(topic) else {
        return CoordinatorLocation::NotAvailable;
    };
    let partitions = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    let index = shoal_group::coordinator_key::partition_for(key, partitions);
    match topic.partition(index) {
        Some(p) if p.leader >= 0 && image.brokers.get(&p.leader).is_some_and(|b| !b.fenced) => {
            CoordinatorLocation::Broker(p.leader)
        }
        _ => CoordinatorLocation::NotAvailable,
    }
}
