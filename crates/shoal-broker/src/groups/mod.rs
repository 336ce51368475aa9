//! Consumer groups on this broker: the `shoal-group` coordinator, wired to the log and the
//! metadata.
//!
//! The coordinator itself knows nothing of partitions or metadata. This module gives it its
//! storage (`storage`: appends to `__consumer_offsets` that resolve once replicated), follows
//! leadership of that topic's partitions to load and unload its shards (`loader`), creates the
//! topic on first use (`offsets_topic`), and reads its settings (`config`). The Kafka APIs in
//! `apis/` call the coordinator through [`Groups`].

pub mod config;
pub mod lag;
pub mod loader;
pub mod offsets_topic;
pub mod storage;

use std::sync::Arc;

use shoal_group::{GroupCoordinator, OFFSETS_TOPIC};
use shoal_meta::{ControllerClient, MetadataImage};

use crate::replica_manager::ReplicaManager;
pub use config::GroupsConfig;
use loader::OffsetsLoader;
use offsets_topic::OffsetsTopicCreator;
use storage::LogOffsetsStorage;

pub struct Groups {
    pub coordinator: Arc<GroupCoordinator>,
    pub config: GroupsConfig,
    creator: OffsetsTopicCreator,
    loader: Arc<OffsetsLoader>,
    replicas: Arc<ReplicaManager>,
}

/// Where a group's coordinator is, as FindCoordinator answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorLocation {
    /// The leader of the group's offsets partition (it may still be loading).
    Broker(i32),
    /// No topic yet, or the partition has no live leader: retriable.
    NotAvailable,
}

impl Groups {
    pub fn new(
        config: GroupsConfig,
        replicas: Arc<ReplicaManager>,
        controller: Arc<ControllerClient>,
        quorum_voters: usize,
    ) -> Self {
        let storage = Arc::new(LogOffsetsStorage::new(Arc::clone(&replicas)));
        let coordinator = GroupCoordinator::new(config.coordinator, storage);
        let loader = OffsetsLoader::new(Arc::clone(&coordinator), Arc::clone(&replicas));
        Self {
            creator: OffsetsTopicCreator::new(
                config.offsets_topic,
                controller,
                Arc::clone(&replicas),
                quorum_voters,
            ),
            coordinator,
            config,
            loader,
            replicas,
        }
    }

    /// The background tasks: shard loading/unloading and group timers.
    pub fn spawn_tasks(&self) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            tokio::spawn(Arc::clone(&self.loader).run()),
            tokio::spawn(Arc::clone(&self.coordinator).run_timers()),
        ]
    }

    /// FindCoordinator for a group: the leader of its offsets partition, creating the topic on
    /// first use.
    pub async fn locate(&self, group_id: &str) -> CoordinatorLocation {
        let mut image = self.replicas.image();
        if image.topic_by_name(OFFSETS_TOPIC).is_none() {
            if !self.creator.ensure().await {
                return CoordinatorLocation::NotAvailable;
            }
            image = self.replicas.image();
        }
        coordinator_of(group_id, &image)
    }
}

/// The live leader of `group_id`'s offsets partition in `image`.
pub fn coordinator_of(group_id: &str, image: &MetadataImage) -> CoordinatorLocation {
    let Some(topic) = image.topic_by_name(OFFSETS_TOPIC) else {
        return CoordinatorLocation::NotAvailable;
    };
    let partitions = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    let index = shoal_group::coordinator_key::partition_for(group_id, partitions);
    match topic.partition(index) {
        Some(p) if p.leader >= 0 && image.brokers.get(&p.leader).is_some_and(|b| !b.fenced) => {
            CoordinatorLocation::Broker(p.leader)
        }
        _ => CoordinatorLocation::NotAvailable,
    }
}
