//! Which partitions of an internal topic this broker leads, for the coordinators' loaders: a
//! coordinator serves a partition exactly while this broker leads it, at the epoch it loaded.

use std::collections::BTreeMap;
use std::sync::Arc;

use shoal_meta::MetadataImage;
use shoal_replica::Partition;
use uuid::Uuid;

use crate::replica_manager::ReplicaManager;

/// Led partitions: index → (leader epoch, replica).
pub type Led = BTreeMap<i32, (i32, Arc<Partition>)>;

/// The topic's id (`None`: it does not exist) and the partitions of it this broker leads, by
/// the image and by the replica itself (the replica applies an image before it says so).
pub fn led_partitions(
    replicas: &ReplicaManager,
    image: &MetadataImage,
    topic_name: &str,
) -> (Option<Uuid>, Led) {
    let Some(topic) = image.topic_by_name(topic_name) else {
        return (None, BTreeMap::new());
    };
    let local = replicas.local_id();
    let led = topic
        .partitions
        .iter()
        .filter(|p| p.leader == local)
        .filter_map(|p| {
            let partition = replicas.partition(topic.id, p.partition)?;
            partition
                .is_leader()
                .then(|| (p.partition, (partition.leader_epoch(), partition)))
        })
        .collect();
    (Some(topic.id), led)
}
