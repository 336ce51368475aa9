//! Creating `__consumer_offsets` the first time a client looks for a coordinator, as Kafka does.
//!
//! Creation waits until `offsets.topic.replication.factor` brokers are registered and unfenced
//! rather than settling for fewer copies: a topic created with one replica would keep one
//! forever, and every committed offset would die with that broker. Until then FindCoordinator
//! answers COORDINATOR_NOT_AVAILABLE (retriable) and the broker logs why. The one exception is a
//! cluster that is and always was a single node (`crate::single_node`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use shoal_group::OFFSETS_TOPIC;
use shoal_meta::{ControllerClient, CreateTopic};

use crate::groups::config::OffsetsTopicConfig;
use crate::replica_manager::ReplicaManager;
use crate::single_node::{ClusterShape, single_node_replication_factor};

/// How long a creating FindCoordinator waits for the new topic to be in effect here.
const CREATE_WAIT: Duration = Duration::from_secs(5);

/// The topic-level configs of the offsets topic (Kafka's `groupMetadataTopicConfigs`).
pub fn topic_configs(config: &OffsetsTopicConfig) -> BTreeMap<String, String> {
    [
        ("cleanup.policy", "compact".to_string()),
        ("compression.type", "producer".to_string()),
        ("segment.bytes", config.segment_bytes.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Creates the offsets topic unless it exists; one creation at a time per broker.
pub struct OffsetsTopicCreator {
    config: OffsetsTopicConfig,
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

impl OffsetsTopicCreator {
    pub fn new(
        config: OffsetsTopicConfig,
        controller: Arc<ControllerClient>,
        replicas: Arc<ReplicaManager>,
        quorum_voters: usize,
    ) -> Self {
        Self {
            config,
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
        let image = self.replicas.image();
        if image.topic_by_name(OFFSETS_TOPIC).is_some() {
            return true;
        }
        let shape = ClusterShape::of(&image, self.quorum_voters);
        let mut replication_factor = self.config.replication_factor;
        if let Some(reduced) = single_node_replication_factor(replication_factor, shape) {
            tracing::warn!(
                "offsets.topic.replication.factor" = replication_factor,
                replicas = reduced,
                "single-node cluster: creating {OFFSETS_TOPIC} with {reduced} replica(s); it keeps \
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
                "offsets.topic.replication.factor" = self.config.replication_factor,
                "not creating {OFFSETS_TOPIC} until enough brokers are registered; consumer \
                 groups are unavailable until then (lower offsets.topic.replication.factor on \
                 a smaller cluster)"
            );
            return false;
        }
        let request = CreateTopic {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: Some(self.config.num_partitions),
            replication_factor: Some(replication_factor),
            assignments: None,
            configs: topic_configs(&self.config),
        };
        let outcome = self.controller.create_topics(vec![request], false).await;
        match outcome.results.into_iter().next() {
            Some(Ok(created)) => tracing::info!(
                partitions = created.num_partitions,
                replication_factor = created.replication_factor,
                "created {OFFSETS_TOPIC}"
            ),
            Some(Err(error)) => {
                tracing::debug!(%error, "creating {OFFSETS_TOPIC} did not succeed here")
            }
            None => {}
        }
        if let Some(index) = outcome.log_index {
            self.replicas.wait_for_applied(index, CREATE_WAIT).await;
        }
        self.replicas.image().topic_by_name(OFFSETS_TOPIC).is_some()
    }
}
